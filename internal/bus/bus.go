package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mamori-soc/mamori/internal/event"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Sentinel errors.
var (
	// ErrFull means the stream reached its limits: consumers are behind.
	ErrFull = errors.New("event bus full")
	// ErrUnavailable means the bus could not be reached.
	ErrUnavailable = errors.New("event bus unavailable")
)

// Stream and subject names.
const (
	StreamEvents  = "MAMORI_EVENTS"
	SubjectEvents = "mamori.events"
)

// Options configures Open.
type Options struct {
	URL      string // empty: embedded server under DataDir
	DataDir  string // embedded JetStream storage directory
	Replicas int
	MaxBytes int64
	MaxAge   time.Duration
	Logger   *slog.Logger
}

// Bus is a connection to the event stream.
type Bus struct {
	srv    *server.Server // nil with an external cluster
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	log    *slog.Logger

	published atomic.Uint64
}

// maxPayload bounds one batch message; batches are sized below it.
const maxPayload = 8 << 20

// MaxBatchBytes is the largest encoded batch Publish accepts.
const MaxBatchBytes = maxPayload - 64<<10

// Open starts the embedded server or connects to the external cluster and
// makes sure the event stream exists with the configured limits.
func Open(ctx context.Context, o Options) (*Bus, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Replicas < 1 {
		o.Replicas = 1
	}
	b := &Bus{log: o.Logger}
	var err error
	if o.URL == "" {
		if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("bus data dir: %w", err)
		}
		sopts := &server.Options{
			ServerName: "mamori-embedded",
			DontListen: true,
			JetStream:  true,
			StoreDir:   filepath.Clean(o.DataDir),
			MaxPayload: maxPayload,
			NoSigs:     true,
			NoLog:      true,
			// Every stored batch is written to the stream's files before the
			// publish is acknowledged, so it survives a crash of the process;
			// fsync runs on NATS' default interval, so a power loss can cost the
			// last interval (documented in docs/ARCHITECTURE.md).
		}
		b.srv, err = server.NewServer(sopts)
		if err != nil {
			return nil, fmt.Errorf("%w: embedded NATS: %w", ErrUnavailable, err)
		}
		go b.srv.Start()
		if !b.srv.ReadyForConnections(30 * time.Second) {
			b.srv.Shutdown()
			return nil, fmt.Errorf("%w: embedded NATS did not start in 30s", ErrUnavailable)
		}
		b.nc, err = nats.Connect("", nats.InProcessServer(b.srv), nats.Name("mamori"), nats.MaxReconnects(-1))
	} else {
		b.nc, err = nats.Connect(o.URL, nats.Name("mamori"), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(false),
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { b.log.Warn("bus disconnected", "err", err) }),
			nats.ReconnectHandler(func(c *nats.Conn) { b.log.Info("bus reconnected", "url", c.ConnectedUrlRedacted()) }))
	}
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("%w: connect %s: %w", ErrUnavailable, redact(o.URL), err)
	}
	b.js, err = jetstream.New(b.nc)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("%w: jetstream: %w", ErrUnavailable, err)
	}
	cfg := jetstream.StreamConfig{
		Name:        StreamEvents,
		Description: "Mamori normalized events (batches)",
		Subjects:    []string{SubjectEvents},
		Retention:   jetstream.InterestPolicy,
		Discard:     jetstream.DiscardNew,
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas,
		MaxBytes:    o.MaxBytes,
		MaxAge:      o.MaxAge,
		MaxMsgSize:  maxPayload,
		Duplicates:  2 * time.Minute,
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	b.stream, err = b.js.CreateOrUpdateStream(cctx, cfg)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("%w: create stream %s: %w", ErrUnavailable, StreamEvents, err)
	}
	return b, nil
}

func redact(u string) string {
	if i := strings.Index(u, "@"); i >= 0 {
		if j := strings.Index(u, "://"); j >= 0 && j < i {
			return u[:j+3] + "***" + u[i:]
		}
	}
	return u
}

// Publish sends one batch and returns when JetStream stored it (replicated,
// for a cluster). msgID, when not empty, lets JetStream drop a retried
// duplicate.
func (b *Bus) Publish(ctx context.Context, payload []byte, msgID string) error {
	var opts []jetstream.PublishOpt
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	_, err := b.js.Publish(ctx, SubjectEvents, payload, opts...)
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && (strings.Contains(apiErr.Description, "maximum")) {
			return fmt.Errorf("%w: %s", ErrFull, apiErr.Description)
		}
		if strings.Contains(err.Error(), "maximum bytes") || strings.Contains(err.Error(), "maximum messages") {
			return fmt.Errorf("%w: %w", ErrFull, err)
		}
		return fmt.Errorf("%w: publish: %w", ErrUnavailable, err)
	}
	b.published.Add(1)
	return nil
}

// Info reports the stream's current depth.
type Info struct {
	Messages uint64
	Bytes    uint64
}

// Info returns the stream depth (messages kept because a consumer has not
// acknowledged them yet).
func (b *Bus) Info(ctx context.Context) (Info, error) {
	si, err := b.stream.Info(ctx)
	if err != nil {
		return Info{}, fmt.Errorf("%w: stream info: %w", ErrUnavailable, err)
	}
	return Info{Messages: si.State.Msgs, Bytes: si.State.Bytes}, nil
}

// Delivery is one batch handed to a consumer.
type Delivery struct {
	Events []*event.Event
	// Redelivered is true when JetStream delivered this batch before without
	// an acknowledgement: some of its events may already be stored.
	Redelivered bool
	msg         jetstream.Msg
}

// Handler processes deliveries; returning nil acknowledges all of them,
// an error makes JetStream redeliver them after a short delay.
type Handler func(ctx context.Context, ds []Delivery) error

// ConsumeOptions tunes a consumer.
type ConsumeOptions struct {
	MaxMessages int           // batches per handler call
	MaxWait     time.Duration // how long to wait to fill a call
	AckWait     time.Duration
	// Workers fetch and handle concurrently (default 1). Handlers must then be
	// safe for concurrent use; batches are no longer handled in order.
	Workers int
	// ManualAck leaves acknowledging to the handler (Delivery.Ack) when it
	// returns nil, e.g. after a later group flush. AckWait must cover that delay.
	ManualAck bool
	// View decodes events without copying their strings: they share the
	// message's memory, and their structs are reused by the next fetch, so
	// they must not be kept after the handler returns.
	View bool
	// MaxAckPending bounds batches delivered but not acknowledged
	// (default MaxMessages × Workers × 4).
	MaxAckPending int
}

// Ack acknowledges the batch: the bus may delete it.
func (d Delivery) Ack() error { return d.msg.Ack() }

// Nak asks the bus to redeliver the batch after delay.
func (d Delivery) Nak(delay time.Duration) error { return d.msg.NakWithDelay(delay) }

// Consume runs a durable pull consumer until ctx is done. A restart resumes
// after the last acknowledged batch. Undecodable batches are logged and
// terminated (they could never succeed) after being counted in Corrupt.
func (b *Bus) Consume(ctx context.Context, durable string, o ConsumeOptions, h Handler) error {
	o = o.withDefaults()
	cons, err := b.ensureConsumer(ctx, durable, o)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	for i := 0; i < o.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.consumeLoop(ctx, cons, durable, o, h)
		}()
	}
	wg.Wait()
	return nil
}

// EnsureConsumer creates the durable consumer now. With interest retention
// a batch published while no consumer exists is not kept, so a server
// creates its consumers before it accepts events.
func (b *Bus) EnsureConsumer(ctx context.Context, durable string, o ConsumeOptions) error {
	_, err := b.ensureConsumer(ctx, durable, o.withDefaults())
	return err
}

func (b *Bus) ensureConsumer(ctx context.Context, durable string, o ConsumeOptions) (jetstream.Consumer, error) {
	cons, err := b.js.CreateOrUpdateConsumer(ctx, StreamEvents, jetstream.ConsumerConfig{
		Durable:       durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       o.AckWait,
		MaxAckPending: o.MaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: consumer %s: %w", ErrUnavailable, durable, err)
	}
	return cons, nil
}

func (o ConsumeOptions) withDefaults() ConsumeOptions {
	if o.MaxMessages <= 0 {
		o.MaxMessages = 16
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 50 * time.Millisecond
	}
	if o.AckWait <= 0 {
		o.AckWait = time.Minute
	}
	if o.Workers <= 0 {
		o.Workers = 1
	}
	if o.MaxAckPending <= 0 {
		o.MaxAckPending = o.MaxMessages * o.Workers * 4
	}
	return o
}

func (b *Bus) consumeLoop(ctx context.Context, cons jetstream.Consumer, durable string, o ConsumeOptions, h Handler) {
	// With View, each message of a fetch has its decoder, whose memory the
	// next fetch reuses (events do not outlive the handler call).
	var decs []*event.ViewDecoder
	for ctx.Err() == nil {
		batch, err := cons.Fetch(o.MaxMessages, jetstream.FetchMaxWait(o.MaxWait))
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			b.log.Warn("bus fetch failed", "consumer", durable, "err", err)
			sleep(ctx, time.Second)
			continue
		}
		var ds []Delivery
		for m := range batch.Messages() {
			decode := event.DecodeBatch
			if o.View {
				if len(ds) == len(decs) {
					decs = append(decs, &event.ViewDecoder{})
				}
				decode = decs[len(ds)].Decode
			}
			evs, err := decode(m.Data())
			if err != nil {
				b.log.Error("dropping undecodable batch from bus", "consumer", durable, "err", err)
				_ = m.Term()
				continue
			}
			md, _ := m.Metadata()
			ds = append(ds, Delivery{Events: evs, Redelivered: md != nil && md.NumDelivered > 1, msg: m})
		}
		if len(ds) == 0 {
			continue
		}
		if err := h(ctx, ds); err != nil {
			if ctx.Err() != nil {
				// Shutting down: hand the batches back for the next start.
				for _, d := range ds {
					_ = d.msg.Nak()
				}
				return
			}
			b.log.Warn("consumer handler failed; batches will be redelivered", "consumer", durable, "err", err)
			for _, d := range ds {
				_ = d.msg.NakWithDelay(time.Second)
			}
			continue
		}
		if o.ManualAck {
			continue
		}
		for _, d := range ds {
			// A lost ack only causes a redelivery, which consumers deduplicate.
			_ = d.msg.Ack()
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Close drains the connection and stops the embedded server.
func (b *Bus) Close() {
	if b.nc != nil {
		_ = b.nc.Drain()
		for i := 0; i < 100 && !b.nc.IsClosed(); i++ {
			time.Sleep(10 * time.Millisecond)
		}
		b.nc.Close()
	}
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	}
}
