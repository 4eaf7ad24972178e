//go:build unix

package logship

import (
	"os"
	"syscall"
)

type fileID struct{ dev, inode uint64 }

func idOf(st os.FileInfo) fileID {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return fileID{dev: uint64(sys.Dev), inode: uint64(sys.Ino)}
	}
	return fileID{}
}
