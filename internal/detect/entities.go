package detect

import (
	"strings"

	"github.com/mamori-soc/mamori/internal/alert"
	"github.com/mamori-soc/mamori/internal/event"
)

// entityFields lists, per entity kind, the fields an alert takes its
// entities from (ECS first, then Windows event data).
var entityFields = []struct {
	kind   string
	fields []string
}{
	{alert.EntityHost, []string{"host.name", "observer.hostname", "winlog.computer_name"}},
	{alert.EntityUser, []string{"user.name", "winlog.event_data.User", "winlog.event_data.TargetUserName", "winlog.event_data.SubjectUserName"}},
	{alert.EntityIP, []string{"source.ip", "destination.ip", "client.ip", "server.ip", "winlog.event_data.IpAddress", "winlog.event_data.SourceIp", "winlog.event_data.DestinationIp"}},
	{alert.EntityHash, []string{"file.hash.sha256", "file.hash.sha1", "file.hash.md5", "process.hash.sha256"}},
	{alert.EntityDomain, []string{"dns.question.name", "url.domain", "destination.domain", "winlog.event_data.QueryName"}},
	{alert.EntityURL, []string{"url.original"}},
	{alert.EntityEmail, []string{"email.from.address", "email.to.address"}},
	{alert.EntityFile, []string{"file.path", "file.name", "process.executable", "winlog.event_data.Image", "winlog.event_data.TargetFilename"}},
}

// entities collects an event's entities. The strings are cloned: events
// decoded from the bus share the message's memory.
func entities(e *event.Event) map[string][]string {
	out := map[string][]string{}
	for _, ef := range entityFields {
		for _, f := range ef.fields {
			v, ok := e.Get(f)
			if !ok || v == "" || v == "-" {
				continue
			}
			out[ef.kind] = appendNew(out[ef.kind], strings.Clone(v))
		}
	}
	return out
}

func appendNew(list []string, v string) []string {
	for _, x := range list {
		if x == v {
			return list
		}
	}
	return append(list, v)
}

// dedupEntity is the entity an alert of a single-event rule deduplicates
// on: the host, else the user, else the source address.
func dedupEntity(ents map[string][]string) string {
	for _, k := range []string{alert.EntityHost, alert.EntityUser, alert.EntityIP} {
		if vs := ents[k]; len(vs) > 0 {
			return k + "=" + vs[0]
		}
	}
	return ""
}

// fieldLookup gives exceptions access to the event's fields; it is only
// used while the event is valid (Record evaluates exceptions at once).
func fieldLookup(e *event.Event) func(string) (string, bool) {
	return func(name string) (string, bool) {
		switch name {
		case "tenant":
			return e.Tenant, true
		case "event.original":
			return e.Original, e.Original != ""
		}
		return e.Get(name)
	}
}

// groupEntities names a correlation's group-by values as entities (a brute
// force grouped by user.name is about that user), plus the entities of the
// event that closed it.
func groupEntities(group map[string]string, ev map[string][]string) map[string][]string {
	out := map[string][]string{}
	for k, vs := range ev {
		out[k] = append([]string(nil), vs...)
	}
	for field, v := range group {
		for _, ef := range entityFields {
			for _, f := range ef.fields {
				if f == field {
					out[ef.kind] = appendNew(out[ef.kind], v)
				}
			}
		}
	}
	return out
}
