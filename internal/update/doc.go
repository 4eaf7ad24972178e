// Package update owns Mamori's signed pattern-release repository and the
// agent-side client that verifies it, following The Update Framework (TUF,
// https://theupdateframework.io) with go-tuf/v2's metadata and
// trustedmetadata packages.
//
// What it owns:
//
//   - Releases: a release is an immutable, versioned set of opaque one-line
//     records on a channel ("main", "bandage", "cleanup", ...). Its content
//     is the sorted, de-duplicated list of lines ([Records], [Canonical]).
//   - Blobs: a full blob (zstd of a small header and the canonical content)
//     and delta blobs (zstd of a record-level set difference between two
//     versions), content-addressed by sha256 under <dir>/blobs/.
//   - TUF metadata: an offline root (threshold of ed25519 keys), online
//     timestamp, snapshot and targets keys, and a delegated "bandage" role
//     trusted only for targets under "bandage/". Consistent snapshots:
//     every metadata file but timestamp.json is versioned and immutable.
//   - [Repo]: publishing, rollback-by-republishing, root rotation, periodic
//     re-signing and fan-out of the new timestamp to subscribers.
//   - [Handler]: the HTTP surface (metadata, blobs, server-sent events),
//     mount-point agnostic; authentication is the caller's job.
//   - [Client]: the agent side. It verifies timestamp → snapshot → targets
//     (→ bandage) exactly as TUF requires, picks a delta from the installed
//     version when one is published and the full blob otherwise, verifies
//     the blob and the resulting content, and returns the new [Installed].
//
// What it does not own: the meaning of a record (the pattern package gives
// each signature its one-line canonical text), which agent is pinned to
// which version (server policy), agent authentication, and persistence of
// the installed set on the agent.
//
// Security posture in one paragraph: nothing fetched is used before it is
// verified against signed metadata; every fetch has a size bound known
// before reading (signed lengths where TUF provides them, configured limits
// otherwise); decoding happens only after the blob's signed sha256 matched;
// decoders bound their output; and every rejection wraps one of the package's
// sentinel errors so callers can tell a rollback from an expiry from a
// tampered file.
package update
