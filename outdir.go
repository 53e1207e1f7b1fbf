// This file guards output folders: an exclusive lock file per folder so
// that two runs never write into the same one, the check that a new run
// does not replace an earlier run's results, and the removal of the
// temporary files a killed atomic write (writeAtomic) leaves behind.

package loope

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// LockName is the lock file LockDir creates in a folder.
const LockName = ".loope.lock"

// DirLock is an exclusive claim on an output folder (see LockDir).
type DirLock struct{ path string }

// LockDir creates dir if needed and takes its lock: LockDirAs with LockName.
func LockDir(dir string, log io.Writer) (*DirLock, error) { return LockDirAs(dir, LockName, log) }

// LockDirAs creates dir if needed and takes the lock file dir/name,
// created exclusively (O_EXCL) and holding "PID host". If another process
// holds it, the error names that PID and host. A lock left by a process of
// this host that no longer runs (a killed run) is taken over, with a line
// on log. Release the lock with Unlock.
func LockDirAs(dir, name string, log io.Writer) (*DirLock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("loope: %w", err)
	}
	if log == nil {
		log = io.Discard
	}
	host, _ := os.Hostname()
	path := filepath.Join(dir, name)
	for try := 0; ; try++ {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			_, err = fmt.Fprintf(f, "%d %s\n", os.Getpid(), host)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				os.Remove(path)
				return nil, fmt.Errorf("loope: lock %s: %w", path, err)
			}
			return &DirLock{path: path}, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("loope: lock %s: %w", path, err)
		}
		raw, rerr := os.ReadFile(path)
		if rerr != nil {
			return nil, fmt.Errorf("loope: lock %s: %w", path, rerr)
		}
		pidS, holder, _ := strings.Cut(strings.TrimSpace(string(raw)), " ")
		pid, perr := strconv.Atoi(pidS)
		switch {
		case perr != nil || pid <= 0:
			return nil, fmt.Errorf("loope: %s is locked by %s, which holds %q instead of \"PID host\"; remove it if no run uses the folder", dir, path, raw)
		case holder != host || pid == os.Getpid() || processAlive(pid):
			return nil, fmt.Errorf("loope: %s is in use by the run of PID %d on host %s (lock file %s); wait for it to end, or choose another folder",
				dir, pid, holder, path)
		}
		if try > 0 {
			return nil, fmt.Errorf("loope: lock %s: could not take over the stale lock of PID %d", path, pid)
		}
		fmt.Fprintf(log, "taking over the stale lock %s of PID %d on this host (no longer running)\n", path, pid)
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("loope: lock %s: %w", path, err)
		}
	}
}

// processAlive reports whether process pid of this host runs (or exists
// and is not ours to signal).
func processAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	err = p.Signal(syscall.Signal(0))
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Unlock releases the lock. It is safe to call more than once.
func (l *DirLock) Unlock() error {
	if l == nil || l.path == "" {
		return nil
	}
	err := os.Remove(l.path)
	l.path = ""
	return err
}

// UsedBy returns which of the files or glob patterns names exist in dir,
// as paths relative to dir: an earlier run's results, which a new run into
// dir would replace.
func UsedBy(dir string, names ...string) []string {
	var found []string
	for _, n := range names {
		m, _ := filepath.Glob(filepath.Join(dir, n))
		for _, p := range m {
			if rel, err := filepath.Rel(dir, p); err == nil {
				found = append(found, rel)
			}
		}
	}
	slices.Sort(found)
	return slices.Compact(found)
}

// tempName matches the temporary files of writeAtomic: "." + base +
// ".tmp-" + os.CreateTemp's random digits.
var tempName = regexp.MustCompile(`^\..+\.tmp-[0-9]+$`)

// RemoveStaleTemps removes the temporary files that atomic writes killed
// mid-way left in dir, and reports each on log. Call it holding dir's
// lock, so that no write of ours is under way.
func RemoveStaleTemps(dir string, log io.Writer) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("loope: %w", err)
	}
	if log == nil {
		log = io.Discard
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || !tempName.MatchString(e.Name()) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("loope: %w", err)
		}
		fmt.Fprintf(log, "removed %s, left by an interrupted write\n", p)
	}
	return nil
}
