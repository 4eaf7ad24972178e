//go:build !yara || !cgo

package yara

import (
	"context"

	"github.com/mamori-soc/mamori/internal/pattern"
)

// Built reports whether this binary holds the YARA engine.
const Built = false

// Rules is a compiled YARA rule set; in this build there is none.
type Rules struct{}

// Compile returns ErrNotBuilt: rebuild with -tags yara (and cgo).
func Compile(ctx context.Context, files []string, opts Options) (*Rules, []pattern.Warning, error) {
	return nil, nil, ErrNotBuilt
}

// Len is 0.
func (r *Rules) Len() int { return 0 }

// Close does nothing.
func (r *Rules) Close() {}

// ScanFile returns ErrNotBuilt.
func (r *Rules) ScanFile(ctx context.Context, path string) ([]pattern.Detection, error) {
	return nil, ErrNotBuilt
}

// ScanBytes returns ErrNotBuilt.
func (r *Rules) ScanBytes(ctx context.Context, name string, data []byte) ([]pattern.Detection, error) {
	return nil, ErrNotBuilt
}
