//go:build unix

package quarantine

import (
	"io/fs"
	"os"
	"syscall"
)

const posix = true

// owner returns the uid and gid of fi.
func owner(fi fs.FileInfo) (uid, gid int) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), int(st.Gid)
	}
	return -1, -1
}

// chownIfRoot gives path to uid:gid when the agent runs as root; as
// another user it could not, and the file stays the agent user's.
func chownIfRoot(path string, uid, gid int) error {
	if os.Geteuid() != 0 || uid < 0 || gid < 0 {
		return nil
	}
	return os.Lchown(path, uid, gid)
}

// syncDir makes a rename or removal in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
