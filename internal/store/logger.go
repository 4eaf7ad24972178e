package store

import (
	"bytes"
	"context"
	"flag"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	vmlogger "github.com/VictoriaMetrics/VictoriaMetrics/lib/logger"
)

// engineLog receives the output of VictoriaMetrics' lib/logger (used by the
// embedded engine) and re-emits it through log/slog: INFO lines become
// slog Debug records (they are routine: partitions opened, merges done),
// WARN stays Warn, ERROR/FATAL/PANIC become Error. The logger is global to
// the process, so the last Logger given to OpenEmbedded (or slog.Default)
// receives the lines of every embedded store.
type engineLog struct {
	mu     sync.Mutex
	buf    []byte
	logger atomic.Pointer[slog.Logger]
}

var (
	engineLogOnce sync.Once
	engineLogSink = &engineLog{}
)

// initEngine prepares the process-wide state the embedded engine expects:
// parsed standard flags (VictoriaMetrics reads its -memory.* and -logger*
// flags through them and panics when they were not parsed) and the logger
// routing.
func initEngine(l *slog.Logger) {
	if l != nil {
		engineLogSink.logger.Store(l)
	}
	engineLogOnce.Do(func() {
		if !flag.Parsed() {
			// Parse no arguments: every flag keeps its default, and a program
			// that calls flag.Parse later still gets its own arguments parsed.
			_ = flag.CommandLine.Parse(nil)
		}
		vmlogger.SetOutputForTests(engineLogSink)
	})
}

// Write implements io.Writer for lib/logger; it receives whole lines.
func (l *engineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.emit(string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
	if len(l.buf) == 0 {
		l.buf = nil
	}
	return len(p), nil
}

// emit parses one lib/logger line: [timestamp \t] level \t caller \t message.
func (l *engineLog) emit(line string) {
	lg := l.logger.Load()
	if lg == nil {
		lg = slog.Default()
	}
	parts := strings.SplitN(line, "\t", 4)
	if len(parts) == 4 {
		parts = parts[1:] // drop the timestamp; slog adds its own
	}
	level, caller, msg := slog.LevelInfo, "", line
	if len(parts) == 3 {
		switch parts[0] {
		case "info":
			level = slog.LevelDebug
		case "warn":
			level = slog.LevelWarn
		case "error", "fatal", "panic":
			level = slog.LevelError
		}
		caller, msg = parts[1], parts[2]
	}
	ctx := context.Background()
	if !lg.Enabled(ctx, level) {
		return
	}
	lg.LogAttrs(ctx, level, msg, slog.String("component", "victorialogs"), slog.String("caller", caller))
}
