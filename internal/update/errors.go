package update

import "errors"

// Sentinel errors. Every error returned by this package that is caused by
// untrusted input wraps exactly one of the first group, so an agent can act
// on the kind of failure (alert on ErrVerify, retry on ErrNotFound, take the
// full blob on ErrDelta) without parsing messages.
var (
	// ErrVerify: a signature, threshold, hash, length or a signed field did
	// not match what the trusted metadata requires (tampering, wrong key,
	// mix-and-match of metadata from different releases).
	ErrVerify = errors.New("update: verification failed")
	// ErrRollback: metadata or a release older than what is already trusted
	// or installed was offered.
	ErrRollback = errors.New("update: rollback refused")
	// ErrExpired: the metadata needed for this update has expired (a freeze
	// attack, or a repository that stopped re-signing).
	ErrExpired = errors.New("update: metadata expired")
	// ErrTooLarge: a file or decoded blob exceeds its limit; the limit was
	// enforced before the excess was read or allocated.
	ErrTooLarge = errors.New("update: too large")
	// ErrDelta: a delta blob is malformed, does not apply to the installed
	// content, or does not produce the content it promises. The caller may
	// retry without an installed version to take the full blob.
	ErrDelta = errors.New("update: delta does not apply")
	// ErrFormat: a blob or record is malformed.
	ErrFormat = errors.New("update: malformed data")
	// ErrNotFound: the requested file, channel or version does not exist.
	ErrNotFound = errors.New("update: not found")
)

// Errors about how the package is used (not about untrusted input).
var (
	// ErrInvalid: a bad argument (channel name, record with a newline,
	// unknown version to roll back to, a repository that already exists).
	ErrInvalid = errors.New("update: invalid argument")
	// ErrKeys: keys missing, unreadable, or not the ones the metadata trusts.
	ErrKeys = errors.New("update: keys")
)
