package loope

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestLockDir: a folder's lock is exclusive and names its holder; a stale
// lock of a dead process of this host is taken over with a message; a
// lock of another host or an unreadable one is never taken over (issue 19
// finding 2).
func TestLockDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	l, err := LockDir(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	want := fmt.Sprintf("in use by the run of PID %d on host %s", os.Getpid(), host)
	if _, err := LockDir(dir, nil); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("second lock: got %v, want %q", err, want)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	lockPath := filepath.Join(dir, LockName)
	// A dead PID of this host: a child that has exited.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := cmd.Process.Pid
	os.WriteFile(lockPath, fmt.Appendf(nil, "%d %s\n", dead, host), 0o644)
	var log strings.Builder
	if l, err = LockDir(dir, &log); err != nil || !strings.Contains(log.String(), fmt.Sprintf("stale lock %s of PID %d", lockPath, dead)) {
		t.Errorf("stale lock: %v, log %q", err, log.String())
	}
	if raw, _ := os.ReadFile(lockPath); !strings.HasPrefix(string(raw), fmt.Sprint(os.Getpid())) {
		t.Errorf("lock after takeover holds %q", raw)
	}
	l.Unlock()
	for content, want := range map[string]string{
		fmt.Sprintf("%d elsewhere.example\n", dead): "on host elsewhere.example",
		"garbage": `holds "garbage" instead of "PID host"`,
	} {
		os.WriteFile(lockPath, []byte(content), 0o644)
		if _, err := LockDir(dir, nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("lock %q: got %v, want %q", content, err, want)
		}
	}
}

// TestRemoveStaleTemps: the temporary files of interrupted atomic writes
// are removed, nothing else (issue 19 finding 11).
func TestRemoveStaleTemps(t *testing.T) {
	dir := t.TempDir()
	keep := []string{"last.safetensors", "notes.tmp-1", ".hidden", ".x.tmp-abc"}
	for _, n := range append([]string{".last.safetensors.tmp-12345", ".result.json.tmp-9"}, keep...) {
		os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o644)
	}
	var log strings.Builder
	if err := RemoveStaleTemps(dir, &log); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != ".hidden,.x.tmp-abc,last.safetensors,notes.tmp-1" || !strings.Contains(log.String(), ".last.safetensors.tmp-12345") {
		t.Errorf("left %v; log %q", got, log.String())
	}
}
