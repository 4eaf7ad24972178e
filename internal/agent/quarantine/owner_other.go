//go:build !unix

package quarantine

import "io/fs"

const posix = false // no unix modes or owners (Windows)

// owner is unknown here: Windows owners are SIDs and ACLs, which this
// store does not keep (yet).
func owner(fs.FileInfo) (uid, gid int) { return -1, -1 }

func chownIfRoot(string, int, int) error { return nil }

// syncDir is a no-op: Windows cannot open a directory for FlushFileBuffers
// through os.Open, and NTFS journals renames itself.
func syncDir(string) error { return nil }
