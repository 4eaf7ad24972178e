//go:build !linux

package cleanup

import "io/fs"

// unixPersistence is false: systemd units, cron and XDG autostart
// removal is built for Linux only; elsewhere those steps fail with
// ErrUnsupported.
const unixPersistence = false

// DefaultRoots is empty off Linux.
func DefaultRoots() Roots {
	return Roots{SystemdUnits: []string{}, Cron: []string{}, Autostart: []string{}}
}

func copyOwner(string, fs.FileInfo) error { return nil }

func syncDir(string) error { return nil }
