// This file holds openOutDir, the one way a command that writes a folder
// (train, threecell) claims it: lock, refusal to replace an earlier run's
// results, and removal of stale temporary files (loope/outdir.go).

package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/loope-go/loope"
)

// openOutDir creates dir, takes its lock and readies it for a run whose
// result files match results (names or glob patterns). A fresh run
// (keep false) into a folder that holds any of them is refused unless
// force is set, and then they are removed first, so two runs never mix;
// a resumed run (keep true) keeps them. Temporary files of interrupted
// writes are removed. The caller releases the lock with Unlock.
func openOutDir(dir string, keep, force bool, log io.Writer, results ...string) (*loope.DirLock, error) {
	lock, err := loope.LockDir(dir, log)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*loope.DirLock, error) {
		lock.Unlock()
		return nil, err
	}
	if used := loope.UsedBy(dir, results...); len(used) > 0 && !keep {
		if !force {
			return fail(fmt.Errorf("%s holds an earlier run's %s, which this run would replace: give -resume %s to continue that run, -force to replace them, or another -out",
				dir, strings.Join(used, ", "), dir))
		}
		for _, name := range used {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return fail(err)
			}
		}
		fmt.Fprintf(log, "-force: removed the earlier run's %s from %s\n", strings.Join(used, ", "), dir)
	}
	if err := loope.RemoveStaleTemps(dir, log); err != nil {
		return fail(err)
	}
	return lock, nil
}
