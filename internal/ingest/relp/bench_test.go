package relp

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// BenchmarkServeConn measures the server path (parse, copy, batch, Handler
// call, acks) for 200-byte syslog messages on an in-memory connection.
func BenchmarkServeConn(b *testing.B) {
	const perConn = 100000
	msg := strings.Repeat("x", 200)
	var wire bytes.Buffer
	wire.WriteString(librelpOpen)
	for i := 0; i < perConn; i++ {
		fmt.Fprintf(&wire, "%d syslog %d %s\n", i+2, len(msg), msg)
	}
	fmt.Fprintf(&wire, "%d close 0\n", perConn+2)
	data := wire.Bytes()
	srv := &Server{
		Handler: func(context.Context, ConnInfo, [][]byte) error { return nil },
		Logger:  slog.New(slog.DiscardHandler),
	}
	b.SetBytes(int64(len(data)) / perConn)
	b.ReportAllocs()
	b.ResetTimer()
	msgs := 0
	for msgs < b.N {
		if err := srv.ServeConn(context.Background(), &fakeConn{bytes.NewReader(data)}); err != nil {
			b.Fatal(err)
		}
		msgs += perConn
	}
	b.ReportMetric(float64(msgs)/b.Elapsed().Seconds(), "msgs/s")
}
