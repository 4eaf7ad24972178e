//go:build !unix

package logship

import "os"

// fileID on platforms without inodes: rotation is seen as truncation
// (the new file is shorter), which reads it from the start.
type fileID struct{ dev, inode uint64 }

func idOf(os.FileInfo) fileID { return fileID{} }
