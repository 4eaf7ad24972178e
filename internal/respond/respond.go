package respond

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Command kinds.
const (
	KindIsolate      = "isolate"       // args: Isolate
	KindRelease      = "release"       // lift an isolation; no args
	KindScan         = "scan"          // args: Scan
	KindQuarantine   = "quarantine"    // args: Quarantine
	KindRestore      = "restore"       // args: QuarantineRef
	KindUploadSample = "upload_sample" // args: QuarantineRef
)

// Command states.
const (
	StateQueued    = "queued"    // written, not yet fetched by the agent
	StateDelivered = "delivered" // fetched by the agent, no outcome yet
	StateDone      = "done"
	StateFailed    = "failed"
	StateExpired   = "expired"  // not delivered before its expiry
	StateCanceled  = "canceled" // withdrawn by an analyst before delivery
)

// Errors.
var (
	ErrInvalid  = errors.New("respond: invalid command")
	ErrNotFound = errors.New("respond: no such command")
	ErrState    = errors.New("respond: command is not in a state that allows this")
)

// Isolate are the arguments of an isolate command.
type Isolate struct {
	// For is how long the isolation lasts unless lifted earlier ("4h");
	// the agent also enforces it in the kernel, so a host whose agent dies
	// is not cut off forever. Default 24 h, at most 30 days.
	For string `json:"for,omitempty"`
	// Allow lists extra endpoints the host may still reach besides the
	// Mamori server ("10.0.0.53", "10.0.0.0/24:tcp/443", "[2001:db8::1]:udp/53").
	Allow  []string `json:"allow,omitempty"`
	Reason string   `json:"reason,omitempty"`
}

// Scan are the arguments of a scan command.
type Scan struct {
	Paths []string `json:"paths"`
}

// Quarantine are the arguments of a quarantine command.
type Quarantine struct {
	Path   string `json:"path"`
	Reason string `json:"reason,omitempty"`
}

// QuarantineRef names an object in the agent's quarantine.
type QuarantineRef struct {
	ID string `json:"id"`
}

// Command is one measure ordered for one agent.
type Command struct {
	ID        string          `json:"id"`
	Tenant    string          `json:"tenant"`
	Agent     string          `json:"agent"`
	Kind      string          `json:"kind"`
	Args      json.RawMessage `json:"args,omitempty"`
	State     string          `json:"state"`
	By        string          `json:"by,omitempty"` // who ordered it
	CreatedAt time.Time       `json:"created_at"`
	ExpiresAt time.Time       `json:"expires_at"`
	// DeliveredAt and DoneAt are zero until then.
	DeliveredAt time.Time       `json:"delivered_at,omitzero"`
	DoneAt      time.Time       `json:"done_at,omitzero"`
	Result      json.RawMessage `json:"result,omitempty"`
	Error       string          `json:"error,omitempty"`
}

// Options configure a Queue.
type Options struct {
	// TTL is how long a command waits for its agent (default 24 h).
	TTL    time.Duration
	Now    func() time.Time
	Logger *slog.Logger
}

// Queue keeps the commands in the state database and wakes the agents
// they are for.
type Queue struct {
	db  *sql.DB
	ttl time.Duration
	now func() time.Time
	log *slog.Logger

	mu     sync.Mutex
	notify func(agent string)
}

const schema = `
CREATE TABLE IF NOT EXISTS agent_commands (
	id TEXT PRIMARY KEY,
	tenant TEXT NOT NULL,
	agent_id TEXT NOT NULL,
	kind TEXT NOT NULL,
	args TEXT NOT NULL DEFAULT '',
	state TEXT NOT NULL,
	created_by TEXT NOT NULL DEFAULT '',
	created_ms INTEGER NOT NULL,
	expires_ms INTEGER NOT NULL,
	delivered_ms INTEGER NOT NULL DEFAULT 0,
	done_ms INTEGER NOT NULL DEFAULT 0,
	result TEXT NOT NULL DEFAULT '',
	error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS agent_commands_agent ON agent_commands(agent_id, state);
CREATE INDEX IF NOT EXISTS agent_commands_tenant ON agent_commands(tenant, created_ms);`

// Open prepares the queue's table in db.
func Open(ctx context.Context, db *sql.DB, o Options) (*Queue, error) {
	q := &Queue{db: db, ttl: o.TTL, now: o.Now, log: o.Logger}
	if q.ttl <= 0 {
		q.ttl = 24 * time.Hour
	}
	if q.now == nil {
		q.now = time.Now
	}
	if q.log == nil {
		q.log = slog.New(slog.DiscardHandler)
	}
	if _, err := db.ExecContext(ctx, schema); err != nil {
		return nil, fmt.Errorf("respond schema: %w", err)
	}
	return q, nil
}

// Validate checks a command's kind and arguments and returns the
// arguments in canonical form.
func Validate(kind string, args json.RawMessage) (json.RawMessage, error) {
	strict := func(v any) error {
		if len(args) == 0 || string(args) == "null" {
			args = json.RawMessage("{}")
		}
		dec := json.NewDecoder(strings.NewReader(string(args)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			return fmt.Errorf("%w: %s arguments: %v", ErrInvalid, kind, err)
		}
		return nil
	}
	var v any
	switch kind {
	case KindIsolate:
		var a Isolate
		if err := strict(&a); err != nil {
			return nil, err
		}
		if _, err := IsolationFor(a); err != nil {
			return nil, err
		}
		for _, e := range a.Allow {
			if _, err := ParseEndpoint(e); err != nil {
				return nil, err
			}
		}
		v = a
	case KindRelease:
		var a struct{}
		if err := strict(&a); err != nil {
			return nil, err
		}
		v = a
	case KindScan:
		var a Scan
		if err := strict(&a); err != nil {
			return nil, err
		}
		if len(a.Paths) == 0 {
			return nil, fmt.Errorf("%w: scan needs at least one path", ErrInvalid)
		}
		for _, p := range a.Paths {
			if !absolute(p) {
				return nil, fmt.Errorf("%w: scan path %q is not absolute", ErrInvalid, p)
			}
		}
		v = a
	case KindQuarantine:
		var a Quarantine
		if err := strict(&a); err != nil {
			return nil, err
		}
		if !absolute(a.Path) {
			return nil, fmt.Errorf("%w: quarantine path %q is not absolute", ErrInvalid, a.Path)
		}
		v = a
	case KindRestore, KindUploadSample:
		var a QuarantineRef
		if err := strict(&a); err != nil {
			return nil, err
		}
		if a.ID == "" {
			return nil, fmt.Errorf("%w: %s needs the quarantine id", ErrInvalid, kind)
		}
		v = a
	default:
		return nil, fmt.Errorf("%w: unknown kind %q (isolate, release, scan, quarantine, restore, upload_sample)", ErrInvalid, kind)
	}
	b, err := json.Marshal(v)
	return b, err
}

// absolute accepts Unix and Windows absolute paths: the server does not
// know the agent's platform when the command is issued.
func absolute(p string) bool {
	if strings.HasPrefix(p, "/") {
		return true
	}
	return len(p) >= 3 && p[1] == ':' && (p[2] == '\\' || p[2] == '/')
}

// IsolationFor returns how long an isolation lasts.
func IsolationFor(a Isolate) (time.Duration, error) {
	if a.For == "" {
		return 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(a.For)
	if err != nil || d < time.Minute || d > 30*24*time.Hour {
		return 0, fmt.Errorf("%w: isolate for %q: a duration between 1m and 720h", ErrInvalid, a.For)
	}
	return d, nil
}

// Endpoint is an address or prefix the isolated host may still reach,
// optionally restricted to one protocol and port.
type Endpoint struct {
	Prefix netip.Prefix
	Proto  string // "", tcp, udp
	Port   uint16
}

// ParseEndpoint reads "ADDR", "CIDR", "ADDR:tcp/443", "[V6]:udp/53".
func ParseEndpoint(s string) (Endpoint, error) {
	bad := func() (Endpoint, error) {
		return Endpoint{}, fmt.Errorf("%w: endpoint %q: want ADDR, CIDR, ADDR:tcp/PORT or [V6ADDR]:udp/PORT", ErrInvalid, s)
	}
	host, rest := s, ""
	if strings.HasPrefix(s, "[") {
		i := strings.Index(s, "]")
		if i < 0 {
			return bad()
		}
		host, rest = s[1:i], strings.TrimPrefix(s[i+1:], ":")
		if len(s) > i+1 && s[i+1] != ':' {
			return bad()
		}
	} else if i := strings.LastIndex(s, ":"); i >= 0 && strings.Count(s, ":") == 1 {
		host, rest = s[:i], s[i+1:]
	}
	var e Endpoint
	if strings.Contains(host, "/") {
		p, err := netip.ParsePrefix(host)
		if err != nil {
			return bad()
		}
		e.Prefix = p.Masked()
	} else {
		a, err := netip.ParseAddr(host)
		if err != nil {
			return bad()
		}
		e.Prefix = netip.PrefixFrom(a, a.BitLen())
	}
	if rest != "" {
		proto, port, ok := strings.Cut(rest, "/")
		if !ok || (proto != "tcp" && proto != "udp") {
			return bad()
		}
		var n int
		if _, err := fmt.Sscanf(port, "%d", &n); err != nil || n < 1 || n > 65535 || fmt.Sprint(n) != port {
			return bad()
		}
		e.Proto, e.Port = proto, uint16(n)
	}
	return e, nil
}

func newID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return "cmd_" + hex.EncodeToString(b)
}

// Issue queues a command for an agent of tenant and nudges the agent if
// it is connected.
func (q *Queue) Issue(ctx context.Context, tenant, agent, kind string, args json.RawMessage, by string) (Command, error) {
	canon, err := Validate(kind, args)
	if err != nil {
		return Command{}, err
	}
	now := q.now().UTC()
	c := Command{ID: newID(), Tenant: tenant, Agent: agent, Kind: kind, Args: canon, State: StateQueued, By: by,
		CreatedAt: now, ExpiresAt: now.Add(q.ttl)}
	if _, err := q.db.ExecContext(ctx, `INSERT INTO agent_commands(id, tenant, agent_id, kind, args, state, created_by, created_ms, expires_ms) VALUES (?,?,?,?,?,?,?,?,?)`,
		c.ID, c.Tenant, c.Agent, c.Kind, string(c.Args), c.State, c.By, c.CreatedAt.UnixMilli(), c.ExpiresAt.UnixMilli()); err != nil {
		return Command{}, fmt.Errorf("queue command: %w", err)
	}
	q.log.Info("command queued", "command", c.ID, "kind", kind, "agent", agent, "tenant", tenant, "by", by)
	q.nudge(agent)
	return c, nil
}

// OnIssue sets the function told of each new command's agent (the push
// stream nudges a connected agent with it).
func (q *Queue) OnIssue(fn func(agent string)) {
	q.mu.Lock()
	q.notify = fn
	q.mu.Unlock()
}

func (q *Queue) nudge(agent string) {
	q.mu.Lock()
	fn := q.notify
	q.mu.Unlock()
	if fn != nil {
		fn(agent)
	}
}

const columns = `id, tenant, agent_id, kind, args, state, created_by, created_ms, expires_ms, delivered_ms, done_ms, result, error`

func scanCommand(rows interface{ Scan(...any) error }) (Command, error) {
	var c Command
	var args, result string
	var created, expires, delivered, done int64
	if err := rows.Scan(&c.ID, &c.Tenant, &c.Agent, &c.Kind, &args, &c.State, &c.By, &created, &expires, &delivered, &done, &result, &c.Error); err != nil {
		return Command{}, err
	}
	if args != "" {
		c.Args = json.RawMessage(args)
	}
	if result != "" {
		c.Result = json.RawMessage(result)
	}
	c.CreatedAt, c.ExpiresAt = time.UnixMilli(created).UTC(), time.UnixMilli(expires).UTC()
	if delivered > 0 {
		c.DeliveredAt = time.UnixMilli(delivered).UTC()
	}
	if done > 0 {
		c.DoneAt = time.UnixMilli(done).UTC()
	}
	return c, nil
}

// Pending hands agent its queued commands, oldest first, and marks them
// delivered; commands past their expiry are marked expired instead.
// Commands delivered earlier without an outcome are handed out again (the
// agent may have died executing them; every kind is safe to repeat).
func (q *Queue) Pending(ctx context.Context, agent string) ([]Command, error) {
	// Almost always there is nothing: answer that without a write
	// transaction (every agent asks at every connection).
	var n int
	if err := q.db.QueryRowContext(ctx, `SELECT count(*) FROM agent_commands WHERE agent_id = ? AND state IN (?, ?)`,
		agent, StateQueued, StateDelivered).Scan(&n); err != nil {
		return nil, fmt.Errorf("pending commands: %w", err)
	}
	if n == 0 {
		return nil, nil
	}
	now := q.now().UTC()
	tx, err := q.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("pending commands: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE agent_commands SET state = ?, done_ms = ? WHERE agent_id = ? AND state = ? AND expires_ms <= ?`,
		StateExpired, now.UnixMilli(), agent, StateQueued, now.UnixMilli()); err != nil {
		return nil, fmt.Errorf("expire commands: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+columns+` FROM agent_commands WHERE agent_id = ? AND state IN (?, ?) ORDER BY created_ms, id`,
		agent, StateQueued, StateDelivered)
	if err != nil {
		return nil, fmt.Errorf("pending commands: %w", err)
	}
	var out []Command
	for rows.Next() {
		c, err := scanCommand(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("pending commands: %w", err)
		}
		out = append(out, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pending commands: %w", err)
	}
	for i := range out {
		if out[i].State == StateQueued {
			out[i].State, out[i].DeliveredAt = StateDelivered, now
			if _, err := tx.ExecContext(ctx, `UPDATE agent_commands SET state = ?, delivered_ms = ? WHERE id = ?`, StateDelivered, now.UnixMilli(), out[i].ID); err != nil {
				return nil, fmt.Errorf("deliver command: %w", err)
			}
		}
	}
	return out, tx.Commit()
}

// Complete records the outcome agent reports for its command id.
func (q *Queue) Complete(ctx context.Context, agent, id string, ok bool, result json.RawMessage, errMsg string) (Command, error) {
	c, err := q.Get(ctx, id)
	if err != nil || c.Agent != agent {
		return Command{}, ErrNotFound
	}
	if c.State != StateDelivered && c.State != StateQueued {
		return Command{}, fmt.Errorf("%w: %s is %s", ErrState, id, c.State)
	}
	if len(result) > 0 && !json.Valid(result) {
		return Command{}, fmt.Errorf("%w: result is not JSON", ErrInvalid)
	}
	c.State, c.DoneAt, c.Result, c.Error = StateDone, q.now().UTC(), result, errMsg
	if !ok {
		c.State = StateFailed
	}
	if _, err := q.db.ExecContext(ctx, `UPDATE agent_commands SET state = ?, done_ms = ?, result = ?, error = ? WHERE id = ?`,
		c.State, c.DoneAt.UnixMilli(), string(result), errMsg, id); err != nil {
		return Command{}, fmt.Errorf("complete command: %w", err)
	}
	q.log.Info("command "+c.State, "command", id, "kind", c.Kind, "agent", agent, "tenant", c.Tenant, "err", errMsg)
	return c, nil
}

// Cancel withdraws a command that was not delivered yet.
func (q *Queue) Cancel(ctx context.Context, id string) (Command, error) {
	res, err := q.db.ExecContext(ctx, `UPDATE agent_commands SET state = ?, done_ms = ? WHERE id = ? AND state = ?`,
		StateCanceled, q.now().UTC().UnixMilli(), id, StateQueued)
	if err != nil {
		return Command{}, fmt.Errorf("cancel command: %w", err)
	}
	c, err := q.Get(ctx, id)
	if err != nil {
		return Command{}, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return c, fmt.Errorf("%w: %s is %s", ErrState, id, c.State)
	}
	return c, nil
}

// Get returns one command.
func (q *Queue) Get(ctx context.Context, id string) (Command, error) {
	c, err := scanCommand(q.db.QueryRowContext(ctx, `SELECT `+columns+` FROM agent_commands WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Command{}, ErrNotFound
	}
	if err != nil {
		return Command{}, fmt.Errorf("get command: %w", err)
	}
	return c, nil
}

// List returns the newest commands of an agent, newest first.
func (q *Queue) List(ctx context.Context, agent string, limit int) ([]Command, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	rows, err := q.db.QueryContext(ctx, `SELECT `+columns+` FROM agent_commands WHERE agent_id = ? ORDER BY created_ms DESC, id DESC LIMIT ?`, agent, limit)
	if err != nil {
		return nil, fmt.Errorf("list commands: %w", err)
	}
	defer rows.Close()
	out := []Command{}
	for rows.Next() {
		c, err := scanCommand(rows)
		if err != nil {
			return nil, fmt.Errorf("list commands: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
