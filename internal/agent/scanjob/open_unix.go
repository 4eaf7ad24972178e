//go:build unix

package scanjob

import (
	"errors"
	"os"
	"syscall"
)

// openFile opens path for scanning. O_NONBLOCK keeps a FIFO swapped in
// after the path was listed from blocking the worker (reads of regular
// files ignore it); O_NOFOLLOW refuses a symbolic link swapped in.
func openFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
}

// swapped reports an open error meaning a symbolic link is now where a
// file was listed.
func swapped(err error) bool { return errors.Is(err, syscall.ELOOP) }
