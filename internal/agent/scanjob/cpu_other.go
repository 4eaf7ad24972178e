//go:build !linux && !darwin

package scanjob

import "time"

// threadCPU is not available here: the meter falls back to wall time.
func threadCPU() (time.Duration, bool) { return 0, false }
