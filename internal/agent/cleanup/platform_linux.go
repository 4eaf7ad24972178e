package cleanup

import (
	"io/fs"
	"os"
	"syscall"
)

// unixPersistence: systemd units, cron and XDG autostart exist here.
const unixPersistence = true

// DefaultRoots are the system's persistence locations: system and user
// systemd unit directories, the cron tables of cron(8) and its Debian and
// Red Hat spool layouts, and the XDG autostart directories of every user.
func DefaultRoots() Roots {
	return Roots{
		SystemdUnits: []string{
			"/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system",
			"/usr/lib/systemd/system", "/lib/systemd/system",
			"/etc/systemd/user", "/usr/lib/systemd/user", "/home/*/.config/systemd/user", "/root/.config/systemd/user",
		},
		Cron:      []string{"/etc/crontab", "/etc/cron.d", "/var/spool/cron/crontabs", "/var/spool/cron"},
		Autostart: []string{"/etc/xdg/autostart", "/home/*/.config/autostart", "/root/.config/autostart"},
	}
}

// copyOwner gives path the owner of fi when running as root: a user's
// crontab rewritten by the agent must stay the user's.
func copyOwner(path string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || os.Geteuid() != 0 {
		return nil
	}
	return os.Lchown(path, int(st.Uid), int(st.Gid))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
