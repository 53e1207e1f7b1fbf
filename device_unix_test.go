//go:build unix

package loope

import "syscall"

// makeNullDevice makes a character device node at path with the numbers
// of the null device (1, 3), for tests of what refuses non-regular files.
// It needs root.
func makeNullDevice(path string) error {
	return syscall.Mknod(path, syscall.S_IFCHR|0o666, 1<<8|3)
}
