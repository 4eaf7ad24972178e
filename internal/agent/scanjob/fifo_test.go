//go:build unix

package scanjob

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/mamori-soc/mamori/internal/pattern"
)

// A FIFO never blocks a worker: skipped by the walk, and skipped when it
// is swapped in for a file after listing (the open does not wait for a
// writer).
func TestFIFOSkipped(t *testing.T) {
	dir := realDir(t)
	fifo := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	write(t, filepath.Join(dir, "f"), []byte("x"))
	r := New(Options{Scanner: func() *pattern.Scanner { return eicarScanner(t) }})
	sum, err := r.Scan(context.Background(), Request{Paths: []string{dir}})
	if err != nil || sum.Files != 1 || sum.Skipped != 1 {
		t.Errorf("summary %+v, err %v", sum, err)
	}
	res := r.scanFile(context.Background(), newMeter(), fifo, nil)
	if !res.skipped || res.scanned || res.err != nil {
		t.Errorf("direct scan of a FIFO: %+v", res)
	}
}
