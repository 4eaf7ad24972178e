// Package scanjob runs the endpoint agent's file scans: on demand
// (Runner.Scan), on a schedule (Runner.Schedule) and on file change
// (Runner.Watch), with the agent's active *pattern.Scanner, under one CPU
// and one I/O budget shared by all of them. It owns walking the file
// system (symbolic links inside a tree are never followed, non-regular
// files are skipped, exclusions are honoured), pacing the reads and the
// CPU, debouncing file changes, reporting detections (Options.OnDetection)
// and the health counters the agent's heartbeat carries (Counters.ApplyTo
// fills fleet.Health). It does not act on detections: quarantine and
// cleanup belong to the agent.
//
// # Limits
//
// I/O (Options.IOBytesPerSec): files are read in chunks of at most 64 KiB
// through a token bucket shared by all workers. The bucket starts empty
// and saves up at most min(64 KiB, 50 ms of rate) while idle, so reading N
// bytes takes at least (N - that burst) / rate seconds, and at least N /
// rate from the Runner's creation.
//
// CPU (Options.CPU, a fraction of one core): a duty cycle enforced by a
// second token bucket counting CPU nanoseconds, refilled at CPU × wall
// time, saving up at most 50 ms worth (CPU × 50 ms). Each worker charges
// its busy time and sleeps off any debt: after every read chunk while a
// file is streamed, and after each whole file that is scanned from memory
// (so the granularity is one chunk's processing, or one buffered file of
// at most BufferMax, or one chunk's decompressed output in an archive,
// which the engine's MaxRatio bounds). Over any interval T the workers
// are busy at most CPU × T + 50 ms × CPU, plus the one step per worker
// not yet charged; from the Runner's creation, at most CPU × T plus that
// step.
//
// Busy time is measured per worker: on linux and darwin each worker
// goroutine is locked to its OS thread and the thread's CPU clock
// (CLOCK_THREAD_CPUTIME_ID) is read, so it is real CPU time of the scan,
// GC assists included; the directory walk, fsnotify's goroutine and the
// runtime's background GC are not counted. Elsewhere (windows) it is the
// workers' wall time minus the limiter's own sleeps, which over-counts
// (disk waits, preemption) and so throttles more, never less.
// Summary.CPUClock says which; Counters.ScanCPUMillis is its mean per
// file scan.
//
// # Fidelity
//
// The engine reaches full fidelity only when it knows an object's size and
// can read it at random. Files up to Options.BufferMax (default 16 MiB)
// are read (paced) into memory and scanned that way. Larger files are
// streamed through the paced reader with their size unknown to the
// engine: body signatures anchored at the end of file cannot match, and
// zip archives larger than the engine's MaxInMemory are reported as
// Mamori.Limit.MaxInMemory instead of being opened. A pattern API that
// takes an io.ReaderAt and a size would remove this gap.
//
// # Concurrency
//
// One Scan (on demand or scheduled) runs at a time per Runner; another
// returns ErrBusy rather than queueing, and a schedule tick that meets a
// running scan is skipped and counted. Watch runs its own workers beside
// it, under the same budgets. OnDetection calls are serialised.
package scanjob
