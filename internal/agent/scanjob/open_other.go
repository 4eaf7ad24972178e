//go:build !unix

package scanjob

import "os"

// openFile opens path for scanning; the caller checks that it is the
// regular file it listed.
func openFile(path string) (*os.File, error) { return os.Open(path) }

// swapped: os.Open follows links here; the SameFile check catches a swap.
func swapped(error) bool { return false }
