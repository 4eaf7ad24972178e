// Package cleanup is the endpoint agent's "cleanup tools": what to do, beyond
// quarantining the detected file, to take a piece of malware off a machine —
// kill its processes, remove the files it dropped and the ways it had of
// starting again — written down per detection as data, not code, so that
// the SOC can ship a new cleanup through the pattern repository as fast as
// a new signature, and so that every step can be undone when the detection
// was wrong.
//
// # Definitions
//
// A Definition names a detection (exactly, or a glob where only '*' is
// special) and lists steps, run in order. Authors write YAML (Parse):
//
//	# cleanup.yaml
//	- detection: Mamori.Test.Dropper
//	  steps:
//	    - kill_process: {image_sha256: "<64 hex>"}   # every process running that image
//	    - quarantine_file: {path: "{detected}"}       # {detected}: the detected file
//	    - remove_persistence: {kind: systemd_unit, name: evil.service}
//	    - remove_persistence: {kind: cron, match: "/tmp/evil"}
//	    - remove_persistence: {kind: autostart, name: evil.desktop}
//
// Definitions travel in the repository's "cleanup" channel as pattern
// records of kind cleanup — "cleanup <detection> <compact JSON>" (Encode,
// Decode) — because every channel's release is parsed and compiled as
// pattern records by the server before publishing and by the agent before
// loading; any other line format would be refused by both. Find picks the
// definition for a detection: the exact name, else the most specific glob.
//
// # Running
//
// A Runner executes a definition against a Target (the detection's path
// and name) and returns a Report with each step's outcome — done, skipped
// (nothing there), failed (with the error) or planned (DryRun). A failed
// step does not stop the others: each is safe alone, and killing a
// process whose file could not be taken is still better than leaving it.
// Everything a step removes goes into the quarantine store first, so
// Undo(report) puts it back: removed files are restored, a cron file whose
// lines were removed is restored whole (the step saves the original, then
// rewrites the file in place atomically), and removed systemd enablement
// links are recreated. Killed processes stay killed.
//
// # Safety
//
// A definition may be wrong or, if the repository were compromised,
// hostile; the runner limits the damage either can do. It never signals
// pid 1, the agent or the agent's parent. It never removes a path under
// the protected list (DefaultProtected: system binary and library
// directories, account databases, the agent's own binary, the quarantine
// itself), checked with the parent directories' symbolic links resolved.
// It never follows a symbolic link to remove its target. Unit and
// autostart names cannot contain path separators, so a step cannot reach
// outside its roots. Processes are pinned by pidfd before their image is
// hashed, so a recycled pid is never signalled.
//
// # Platforms
//
// Linux is the target. kill_process (it reads /proc) and the systemd_unit,
// cron and autostart kinds fail with ErrUnsupported elsewhere, as do the
// Windows kinds run_key, service and scheduled_task everywhere: they are
// parsed, encoded and described on every platform so definitions for
// Windows hosts can be written and shipped today, but not executed — on
// Linux and macOS they cannot apply, and the Windows executor is not
// written yet. quarantine_file works on every platform.
//
// Not done: systemd drop-in directories are emptied but not removed;
// user-level units are not stopped (systemctl --user); cron's own spool
// notifications are left to cron's mtime check; /etc/ld.so.preload,
// shell profiles, udev rules and SSH authorized_keys are not persistence
// kinds yet (quarantine_file covers the whole-file cases).
package cleanup
