//go:build !linux

package cleanup

import (
	"context"
	"fmt"
	"runtime"
)

type exeKey struct{}

// kill is built for Linux (/proc); elsewhere it fails with ErrUnsupported.
func (st *run) kill(_ context.Context, _ string, out *Outcome) {
	out.fail(fmt.Errorf("%w: kill_process on %s", ErrUnsupported, runtime.GOOS))
}
