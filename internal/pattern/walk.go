package pattern

import (
	"context"
	"io/fs"
	"path/filepath"
	"sync"
)

// FileResult is the outcome of scanning one file in Walk.
type FileResult struct {
	Path       string
	Detections []Detection
	Err        error // an unreadable file or directory; Detections may still hold partial results
}

// Walk scans every regular file under root (symbolic links are not
// followed; devices, FIFOs and sockets are skipped) with the given number
// of workers (<= 0: one). fn is called once per file, and for directories
// that could not be read, from a single goroutine, in completion order.
// Walk stops when ctx is done or fn returns an error, and returns that
// error.
func (s *Scanner) Walk(ctx context.Context, root string, workers int, fn func(FileResult) error) error {
	return WalkFiles(ctx, root, workers, func(ctx context.Context, p string) FileResult {
		dets, err := s.ScanFile(ctx, p)
		return FileResult{Path: p, Detections: dets, Err: err}
	}, fn)
}

// WalkFiles is Walk with scan doing the work for each file (another engine
// beside or instead of the Scanner, e.g. YARA, sees the same files in the
// same workers).
func WalkFiles(ctx context.Context, root string, workers int, scan func(ctx context.Context, path string) FileResult, fn func(FileResult) error) error {
	workers = max(workers, 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	paths := make(chan string, workers*4)
	results := make(chan FileResult, workers*4)
	var wg sync.WaitGroup

	// Walk errors are sent as results too; the producer is one of the
	// goroutines whose completion closes results.
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(paths)
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				select {
				case results <- FileResult{Path: p, Err: err}:
				case <-ctx.Done():
					return ctx.Err()
				}
				if d != nil && d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() {
				return nil
			}
			select {
			case paths <- p:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range paths {
				r := scan(ctx, p)
				if ctx.Err() != nil {
					return
				}
				select {
				case results <- r:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(results)
	}()

	var ferr error
	for r := range results {
		if ferr != nil {
			continue // draining after a stop
		}
		if err := fn(r); err != nil {
			ferr = err
			cancel()
		}
	}
	if ferr != nil {
		return ferr
	}
	return ctx.Err()
}
