//go:build !unix

package loope

import "errors"

// makeNullDevice reports that this system makes no device nodes.
func makeNullDevice(path string) error {
	return errors.New("loope: no device nodes on this system")
}
