//go:build !linux

package isolate

import (
	"context"
	"fmt"
	"runtime"
)

// Options configures an Isolator (see the Linux documentation); on this
// platform New always fails with ErrUnsupported.
type Options struct {
	NetNSFd   int
	StateFile string
	Table     string
	OnReapply func(err error)
}

// Isolator is not implemented on this platform.
type Isolator struct{}

// New returns an error wrapping ErrUnsupported.
func New(Options) (*Isolator, error) {
	return nil, fmt.Errorf("%w: %s", ErrUnsupported, runtime.GOOS)
}

// Apply returns ErrUnsupported.
func (*Isolator) Apply(context.Context, Policy) error { return ErrUnsupported }

// Release returns ErrUnsupported.
func (*Isolator) Release(context.Context) error { return ErrUnsupported }

// Status returns ErrUnsupported.
func (*Isolator) Status(context.Context) (Status, error) { return Status{}, ErrUnsupported }

// Restore returns ErrUnsupported.
func (*Isolator) Restore(context.Context) (Status, error) { return Status{}, ErrUnsupported }

// Run returns ErrUnsupported.
func (*Isolator) Run(context.Context) error { return ErrUnsupported }
