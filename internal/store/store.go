package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/mamori-soc/mamori/internal/event"
)

// TenantID maps a tenant name to its numeric id (assigned by Mamori's state DB); the store uses it as the
// VictoriaLogs AccountID (ProjectID 0) so tenants are isolated by the engine itself.
//
// The id 0 is refused: it is VictoriaLogs' default tenant, where any client
// that sends no AccountID header writes and reads. A resolver that does not
// know a tenant should return an error wrapping ErrUnknownTenant.
type TenantResolver func(tenant string) (uint32, error)

// Row is one result row: field name/value pairs as returned by the engine
// (includes _time, _msg, _stream etc.). Empty values are left out, as
// VictoriaLogs does. A Row stays valid after the callback returns.
type Row []event.Field

// Get returns the value of the named field in r and whether it is present.
func (r Row) Get(name string) (string, bool) {
	for _, f := range r {
		if f.Name == name {
			return f.Value, true
		}
	}
	return "", false
}

// Store is the events store. Implementations are safe for concurrent use.
type Store interface {
	// Write stores events and returns only when they are durable (flushed to disk for the embedded engine;
	// accepted and flushed for the HTTP engine). Events of several tenants may be mixed.
	Write(ctx context.Context, events []*event.Event) error
	// Query runs a LogsQL query (filters and pipes) confined to the given tenants and the [from,to) time range,
	// calling fn for every result row. It must be impossible for a query to see another tenant's rows.
	// A zero from or to leaves that side of the range open. fn is never called concurrently;
	// an error returned by fn stops the query and is returned by Query.
	Query(ctx context.Context, tenants []string, from, to time.Time, logsql string, fn func(Row) error) error
	// DeleteBefore removes (or makes permanently unqueryable) a tenant's events older than t — retention.
	DeleteBefore(ctx context.Context, tenant string, t time.Time) error
	Close() error
}

// Appender is implemented by engines that can add rows at once and make
// them durable later, so that many appends share one flush (the embedded
// engine: a flush costs tens of milliseconds of fsyncs whatever its size).
type Appender interface {
	// Append adds events; they are not durable until a later Sync returns.
	Append(ctx context.Context, events []*event.Event) error
	// Sync makes every event appended before the call durable.
	Sync(ctx context.Context) error
}

// Sentinel errors. Errors returned by the stores wrap them (errors.Is).
var (
	// ErrUnknownTenant is returned (wrapped) when a tenant name is empty, cannot be resolved or resolves to 0.
	// TenantResolver implementations should wrap it too.
	ErrUnknownTenant = errors.New("store: unknown tenant")
	// ErrNoTenants is returned by Query when no tenant is given.
	ErrNoTenants = errors.New("store: no tenants to query")
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("store: closed")
	// ErrReadOnly is returned by the embedded engine's Write when the disk is (nearly) full.
	ErrReadOnly = errors.New("store: storage is read-only (low free disk space)")
	// ErrDeleteDisabled is returned by the HTTP engine's DeleteBefore when the server does not
	// allow deletes (start it with -delete.enable; cluster storage nodes with -internaldelete.enable).
	// The cut-off still applies to queries made through this Store.
	ErrDeleteDisabled = errors.New("store: deletes are disabled on the VictoriaLogs server")
	// ErrBadQuery is returned (wrapped) when the LogsQL query cannot be parsed.
	ErrBadQuery = errors.New("store: bad LogsQL query")
	// ErrEngine is returned (wrapped) for failures reported by the engine (HTTP status, internal panic).
	ErrEngine = errors.New("store: engine error")
)

// Open opens the store named by url:
//
//   - "" or "embedded": the embedded engine under dataDir/events;
//   - "victorialogs://host:port" (or "http://host:port"): a VictoriaLogs server or cluster over HTTP;
//   - "victorialogs+https://host:port" (or "https://host:port"): the same over HTTPS.
//
// Query parameters of an HTTP url set HTTPOptions: sync=disk (SyncToDisk),
// storage_nodes=host:port,host:port (StorageNodes for SyncToDisk on a cluster),
// force_flush=0 (do not call /internal/force_flush after inserts).
func Open(rawURL string, dataDir string, resolve TenantResolver) (Store, error) {
	switch rawURL {
	case "", "embedded":
		if dataDir == "" {
			return nil, errors.New("store: embedded engine needs a data directory")
		}
		return OpenEmbedded(filepath.Join(dataDir, "events"), resolve, EmbeddedOptions{})
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("store: parse store url %q: %w", rawURL, err)
	}
	scheme := ""
	switch u.Scheme {
	case "victorialogs", "http":
		scheme = "http"
	case "victorialogs+https", "https":
		scheme = "https"
	default:
		return nil, fmt.Errorf("store: unsupported store url %q (want embedded, victorialogs://host:port or http(s)://host:port)", rawURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("store: store url %q has no host", rawURL)
	}
	var opts HTTPOptions
	qv := u.Query()
	if qv.Get("sync") == "disk" {
		opts.SyncToDisk = true
	}
	if sn := qv.Get("storage_nodes"); sn != "" {
		for _, n := range strings.Split(sn, ",") {
			if n = strings.TrimSpace(n); n != "" {
				if !strings.Contains(n, "://") {
					n = scheme + "://" + n
				}
				opts.StorageNodes = append(opts.StorageNodes, n)
			}
		}
	}
	if qv.Get("force_flush") == "0" {
		opts.NoForceFlush = true
	}
	base := scheme + "://" + u.Host + strings.TrimRight(u.Path, "/")
	if u.User != nil {
		opts.Username = u.User.Username()
		opts.Password, _ = u.User.Password()
	}
	return OpenVictoriaLogs(base, resolve, opts)
}

// resolveTenant resolves one tenant name with the checks every engine needs.
func resolveTenant(resolve TenantResolver, tenant string) (uint32, error) {
	if tenant == "" {
		return 0, fmt.Errorf("%w: empty tenant name", ErrUnknownTenant)
	}
	if resolve == nil {
		return 0, fmt.Errorf("%w: no tenant resolver configured", ErrUnknownTenant)
	}
	id, err := resolve(tenant)
	if err != nil {
		if errors.Is(err, ErrUnknownTenant) {
			return 0, fmt.Errorf("store: resolve tenant %q: %w", tenant, err)
		}
		return 0, fmt.Errorf("store: resolve tenant %q: %w: %w", tenant, ErrUnknownTenant, err)
	}
	if id == 0 {
		return 0, fmt.Errorf("%w: tenant %q resolves to id 0 (VictoriaLogs' default tenant, refused)", ErrUnknownTenant, tenant)
	}
	return id, nil
}

// tenantCache resolves each distinct tenant once per call.
type tenantCache struct {
	resolve TenantResolver
	m       map[string]uint32
}

func (c *tenantCache) get(tenant string) (uint32, error) {
	if id, ok := c.m[tenant]; ok {
		return id, nil
	}
	id, err := resolveTenant(c.resolve, tenant)
	if err != nil {
		return 0, err
	}
	if c.m == nil {
		c.m = make(map[string]uint32)
	}
	c.m[tenant] = id
	return id, nil
}

// validateTenants checks the tenants of a query and resolves them, in order, without duplicates.
func validateTenants(resolve TenantResolver, tenants []string) ([]string, []uint32, error) {
	if len(tenants) == 0 {
		return nil, nil, ErrNoTenants
	}
	names := make([]string, 0, len(tenants))
	ids := make([]uint32, 0, len(tenants))
	seen := make(map[string]bool, len(tenants))
	for _, t := range tenants {
		if seen[t] {
			continue
		}
		seen[t] = true
		id, err := resolveTenant(resolve, t)
		if err != nil {
			return nil, nil, err
		}
		names = append(names, t)
		ids = append(ids, id)
	}
	return names, ids, nil
}
