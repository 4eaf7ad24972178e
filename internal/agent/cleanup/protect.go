package cleanup

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// DefaultProtected are the paths no cleanup step may remove: a wrong or
// hostile definition must not be able to break the system or blind the
// agent. Globs match the path and each of its parents, so "/lib*" covers
// /lib64/libc.so.6. It is deliberately coarse: a unit file under
// /usr/lib/systemd is package-owned and refused too — removing such a file
// is an analyst's decision, not an automatic step's.
func DefaultProtected() []string {
	if runtime.GOOS == "windows" {
		root := os.Getenv("SystemRoot")
		if root == "" {
			root = `C:\Windows`
		}
		return []string{root, `C:\Windows`, `C:\Program Files\Windows Defender`, `C:\Program Files\Mamori`}
	}
	return []string{
		"/bin", "/sbin", "/usr/bin", "/usr/sbin", "/lib*", "/usr/lib*", "/usr/libexec", "/boot",
		"/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow", "/etc/sudoers", "/etc/fstab",
		"/etc/ld.so.conf", "/etc/ld.so.cache", "/etc/pam.d", "/etc/ssh/sshd_config", "/etc/nsswitch.conf",
		"/proc", "/sys", "/dev",
		"/System", // macOS system volume
	}
}

// IsProtected reports whether path may not be removed (quarantined,
// unlinked) by anyone, and the protected entry that says so.
func (r *Runner) IsProtected(path string) (string, bool) { return r.isProtected(path) }

// isProtected reports whether path may not be removed, and the protected
// entry that says so. The path is checked as given and with its parent's
// symbolic links resolved, so /tmp/link/passwd with /tmp/link -> /etc is
// caught; the last element is not resolved because a link itself is only
// ever unlinked, never followed.
func (r *Runner) isProtected(path string) (string, bool) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "(unresolvable path)", true
	}
	cands := []string{abs}
	if real, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		if rp := filepath.Join(real, filepath.Base(abs)); rp != abs {
			cands = append(cands, rp)
		}
	}
	fold := func(s string) string { return s }
	if runtime.GOOS == "windows" {
		fold = strings.ToLower
	}
	for _, c := range cands {
		for a := c; ; a = filepath.Dir(a) {
			for _, p := range r.protected {
				if ok, _ := filepath.Match(fold(p), fold(a)); ok {
					return p, true
				}
			}
			if filepath.Dir(a) == a {
				break
			}
		}
	}
	return "", false
}
