package event

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"sort"
	"sync/atomic"
	"time"
)

// ECS field names used across parsers. Vendor fields that have no ECS home
// keep their own names, prefixed by the vendor namespace (e.g. "cef.cs1",
// "fortigate.policyid").
const (
	FieldTimestamp         = "@timestamp"
	FieldMessage           = "message"
	FieldOriginal          = "event.original"
	FieldKind              = "event.kind"
	FieldCategory          = "event.category"
	FieldType              = "event.type"
	FieldAction            = "event.action"
	FieldOutcome           = "event.outcome"
	FieldSeverity          = "event.severity"
	FieldEventCode         = "event.code"
	FieldEventDataset      = "event.dataset"
	FieldEventModule       = "event.module"
	FieldEventProvider     = "event.provider"
	FieldSourceIP          = "source.ip"
	FieldSourcePort        = "source.port"
	FieldSourceBytes       = "source.bytes"
	FieldSourceNatIP       = "source.nat.ip"
	FieldSourceNatPort     = "source.nat.port"
	FieldDestIP            = "destination.ip"
	FieldDestPort          = "destination.port"
	FieldDestBytes         = "destination.bytes"
	FieldDestNatIP         = "destination.nat.ip"
	FieldDestNatPort       = "destination.nat.port"
	FieldUserName          = "user.name"
	FieldUserDomain        = "user.domain"
	FieldHostName          = "host.name"
	FieldHostIP            = "host.ip"
	FieldProcessName       = "process.name"
	FieldProcessPID        = "process.pid"
	FieldProcessCmdLine    = "process.command_line"
	FieldProcessExe        = "process.executable"
	FieldParentName        = "process.parent.name"
	FieldParentExe         = "process.parent.executable"
	FieldFileName          = "file.name"
	FieldFilePath          = "file.path"
	FieldFileMD5           = "file.hash.md5"
	FieldFileSHA1          = "file.hash.sha1"
	FieldFileSHA256        = "file.hash.sha256"
	FieldURLOriginal       = "url.original"
	FieldURLDomain         = "url.domain"
	FieldURLPath           = "url.path"
	FieldHTTPMethod        = "http.request.method"
	FieldHTTPStatus        = "http.response.status_code"
	FieldHTTPBytes         = "http.response.body.bytes"
	FieldUserAgent         = "user_agent.original"
	FieldDNSQuestion       = "dns.question.name"
	FieldDNSQuestionType   = "dns.question.type"
	FieldEmailFrom         = "email.from.address"
	FieldEmailTo           = "email.to.address"
	FieldEmailSubject      = "email.subject"
	FieldEmailMessageID    = "email.message_id"
	FieldEmailQueueID      = "email.local_id"
	FieldObserverVendor    = "observer.vendor"
	FieldObserverProduct   = "observer.product"
	FieldObserverType      = "observer.type"
	FieldObserverHostname  = "observer.hostname"
	FieldNetworkTransport  = "network.transport"
	FieldNetworkProtocol   = "network.protocol"
	FieldNetworkDirection  = "network.direction"
	FieldNetworkBytes      = "network.bytes"
	FieldRuleName          = "rule.name"
	FieldRuleID            = "rule.id"
	FieldRuleCategory      = "rule.category"
	FieldLogLevel          = "log.level"
	FieldLogSyslogFacility = "log.syslog.facility.code"
	FieldLogSyslogSeverity = "log.syslog.severity.code"
	FieldLogSyslogAppName  = "log.syslog.appname"
	FieldLogSyslogMsgID    = "log.syslog.msgid"
	FieldLogSyslogProcID   = "log.syslog.procid"
	FieldLogSyslogVersion  = "log.syslog.version"
	FieldLogSyslogSD       = "log.syslog.structured_data"
	FieldParseError        = "error.message"
	FieldWinEventID        = "winlog.event_id"
	FieldWinChannel        = "winlog.channel"
	FieldWinProvider       = "winlog.provider_name"
	FieldWinComputer       = "winlog.computer_name"
	FieldWinRecordID       = "winlog.record_id"
)

// More ECS field names, added for the ingest parsers (internal/ingest/parse,
// internal/ingest/evtx).
const (
	FieldOriginalBase64       = "event.original_base64" // raw bytes when they are not valid UTF-8
	FieldEventStart           = "event.start"
	FieldEventEnd             = "event.end"
	FieldEventID              = "event.id"
	FieldSourceDomain         = "source.domain"
	FieldSourceMAC            = "source.mac"
	FieldSourcePackets        = "source.packets"
	FieldSourceUserName       = "source.user.name"
	FieldDestDomain           = "destination.domain"
	FieldDestMAC              = "destination.mac"
	FieldDestPackets          = "destination.packets"
	FieldDestUserName         = "destination.user.name"
	FieldObserverVersion      = "observer.version"
	FieldObserverIP           = "observer.ip"
	FieldObserverSerial       = "observer.serial_number"
	FieldNetworkCommunityID   = "network.community_id"
	FieldFileSize             = "file.size"
	FieldFileSHA512           = "file.hash.sha512"
	FieldURLQuery             = "url.query"
	FieldHTTPReferrer         = "http.request.referrer"
	FieldDNSResponseCode      = "dns.response_code"
	FieldTLSServerName        = "tls.client.server_name"
	FieldLogSyslogPriority    = "log.syslog.priority"
	FieldWinProcessPID        = "winlog.process.pid"
	FieldWinUserID            = "winlog.user.identifier"
	FieldWinEventDataPrefix   = "winlog.event_data." // + the EventData/UserData item name
	FieldHostHostname         = "host.hostname"
	FieldUserID               = "user.id"
	FieldObserverIngressIface = "observer.ingress.interface.name"
)

// ECS field names added for the vendor line parsers (internal/ingest/parse/vendor).
const (
	FieldNetworkPackets      = "network.packets"
	FieldNetworkType         = "network.type"
	FieldNetworkIANANumber   = "network.iana_number"
	FieldNetworkApplication  = "network.application"
	FieldObserverEgressIface = "observer.egress.interface.name"
	FieldObserverIngressZone = "observer.ingress.zone"
	FieldObserverEgressZone  = "observer.egress.zone"
	FieldEventDuration       = "event.duration"
	FieldEventReason         = "event.reason"
	FieldHTTPVersion         = "http.version"
	FieldHTTPMimeType        = "http.response.mime_type"
	FieldHTTPResponseBytes   = "http.response.bytes"
	FieldURLScheme           = "url.scheme"
	FieldURLPort             = "url.port"
	FieldRuleUUID            = "rule.uuid"
)

// Values of event.kind.
const (
	KindEvent    = "event"
	KindAlert    = "alert"
	KindUnparsed = "unparsed"
)

// Field is one name/value pair. Values are strings: the event store is
// columnar over strings and the query language compares numbers and CIDRs by
// parsing at query time.
type Field struct {
	Name  string
	Value string
}

// Event is one normalized event. Timestamp, Tenant, Source, ID and Original
// are first-class because every stage needs them; everything else, ECS or
// vendor, lives in Fields (kept sorted by name, unique names).
type Event struct {
	ID        string    // unique id; duplicates from a bus replay are dropped by it
	Tenant    string    // customer organisation
	Timestamp time.Time // @timestamp: when the event happened (sender's clock)
	Ingested  time.Time // event.ingested: when Mamori received it
	Source    string    // ingest path, e.g. "syslog-tcp", "relp", "http", "file"
	Original  string    // event.original: the message verbatim as received
	Fields    []Field
}

// Get returns the value of a field and whether it is set.
func (e *Event) Get(name string) (string, bool) {
	i := sort.Search(len(e.Fields), func(i int) bool { return e.Fields[i].Name >= name })
	if i < len(e.Fields) && e.Fields[i].Name == name {
		return e.Fields[i].Value, true
	}
	return "", false
}

// Value returns the value of a field or "" when unset.
func (e *Event) Value(name string) string {
	v, _ := e.Get(name)
	return v
}

// Set sets a field, replacing an earlier value. An empty value is ignored:
// "unset" and "empty" are the same thing for a log field.
func (e *Event) Set(name, value string) {
	if value == "" || name == "" {
		return
	}
	n := len(e.Fields)
	// Parsers mostly append in increasing order; check the end first.
	if n == 0 || e.Fields[n-1].Name < name {
		e.Fields = append(e.Fields, Field{name, value})
		return
	}
	i := sort.Search(n, func(i int) bool { return e.Fields[i].Name >= name })
	if i < n && e.Fields[i].Name == name {
		e.Fields[i].Value = value
		return
	}
	e.Fields = append(e.Fields, Field{})
	copy(e.Fields[i+1:], e.Fields[i:])
	e.Fields[i] = Field{name, value}
}

// SetDefault sets a field only when it is not set yet.
func (e *Event) SetDefault(name, value string) {
	if _, ok := e.Get(name); !ok {
		e.Set(name, value)
	}
}

// Delete removes a field.
func (e *Event) Delete(name string) {
	i := sort.Search(len(e.Fields), func(i int) bool { return e.Fields[i].Name >= name })
	if i < len(e.Fields) && e.Fields[i].Name == name {
		e.Fields = append(e.Fields[:i], e.Fields[i+1:]...)
	}
}

// Kind returns event.kind ("event" when unset).
func (e *Event) Kind() string {
	if v, ok := e.Get(FieldKind); ok {
		return v
	}
	return KindEvent
}

// IDGen makes event ids: 16 random bytes once per process, then a counter.
// Ids sort by creation within a process and never collide across processes.
type IDGen struct {
	prefix [8]byte
	n      atomic.Uint64
}

// NewIDGen returns a generator seeded from crypto/rand.
func NewIDGen() *IDGen {
	g := &IDGen{}
	_, _ = rand.Read(g.prefix[:])
	return g
}

// Next returns a new 32-hex-digit id.
func (g *IDGen) Next() string {
	var b [16]byte
	copy(b[:8], g.prefix[:])
	binary.BigEndian.PutUint64(b[8:], g.n.Add(1))
	return hex.EncodeToString(b[:])
}
