// This file holds the progress reporting of a Three-Cell sweep: each run's
// metrics become its curve and a tagged progress line, and one overall line
// counts the steps of every run in flight.

package loope

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"
)

// benchProgress receives one run's metrics from Train (JSON lines), keeps
// them as the run's curve and reports each train line's step to the sweep.
type benchProgress struct {
	log   io.Writer
	sweep *sweepProgress
	run   int // position among the runs this process trains
	tag   string
	buf   []byte
	curve []Metric
}

func (p *benchProgress) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		var m Metric
		if err := json.Unmarshal(p.buf[:i], &m); err != nil {
			return len(b), fmt.Errorf("loope: metrics line %q: %w", p.buf[:i], err)
		}
		p.buf = p.buf[i+1:]
		p.curve = append(p.curve, m)
		if m.Split == "train" {
			p.sweep.step(p.run, m.Step)
		}
	}
}

// sweepProgress prints the overall progress line of a process's runs,
// several of which may train at once: steps done over all runs, the
// elapsed time and the ETA from the rate so far.
type sweepProgress struct {
	mu          sync.Mutex
	log         io.Writer
	runs, steps int
	start       time.Time
	at          map[int]int // the last step reported by each run
}

func (s *sweepProgress) step(run, step int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.at[run] = step
	done, finished := 0, 0
	for _, st := range s.at {
		done += st
		if st == s.steps {
			finished++
		}
	}
	el := time.Since(s.start)
	eta := time.Duration(float64(el) * float64(s.runs*s.steps-done) / float64(done))
	fmt.Fprintf(s.log, "overall: %d/%d runs trained, %d in progress, %.0f%% of the steps, elapsed %s eta %s\n",
		finished, s.runs, len(s.at)-finished, 100*float64(done)/float64(s.runs*s.steps), el.Round(time.Second), eta.Round(time.Second))
}

// lockedWriter serialises writes from the runs training side by side.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// prefixWriter prefixes every line written through it.
type prefixWriter struct {
	w      io.Writer
	prefix string
	mid    bool // inside a line
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	var out []byte
	for _, c := range b {
		if !p.mid {
			out = append(out, p.prefix...)
		}
		out = append(out, c)
		p.mid = c != '\n'
	}
	if _, err := p.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}
