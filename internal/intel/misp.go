package intel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// flexBool reads MISP's booleans, written as true, "1" or "true".
type flexBool bool

func (b *flexBool) UnmarshalJSON(d []byte) error {
	switch strings.Trim(string(d), `"`) {
	case "true", "1":
		*b = true
	case "false", "0", "", "null":
		*b = false
	default:
		return fmt.Errorf("not a boolean: %s", d)
	}
	return nil
}

// flexTime reads MISP times: Unix seconds as a number or a string, or
// RFC 3339 (first_seen/last_seen).
type flexTime time.Time

func (t *flexTime) UnmarshalJSON(d []byte) error {
	s := strings.Trim(string(d), `"`)
	if s == "" || s == "null" || s == "0" {
		return nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		*t = flexTime(time.Unix(n, 0).UTC())
		return nil
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("time %s is neither Unix seconds nor RFC 3339", d)
	}
	*t = flexTime(v.UTC())
	return nil
}

type mispTag struct {
	Name string `json:"name"`
}

type mispAttribute struct {
	UUID      string    `json:"uuid"`
	Type      string    `json:"type"`
	Value     string    `json:"value"`
	ToIDS     flexBool  `json:"to_ids"`
	Deleted   flexBool  `json:"deleted"`
	Comment   string    `json:"comment"`
	Timestamp flexTime  `json:"timestamp"`
	FirstSeen flexTime  `json:"first_seen"`
	LastSeen  flexTime  `json:"last_seen"`
	Tags      []mispTag `json:"Tag"`
}

type mispEvent struct {
	UUID       string          `json:"uuid"`
	Info       string          `json:"info"`
	Timestamp  flexTime        `json:"timestamp"`
	Tags       []mispTag       `json:"Tag"`
	Attributes []mispAttribute `json:"Attribute"`
	Objects    []struct {
		Name       string          `json:"name"`
		Deleted    flexBool        `json:"deleted"`
		Attributes []mispAttribute `json:"Attribute"`
	} `json:"Object"`
}

// mispTypes maps MISP attribute types to indicator types; a composite
// type ("filename|md5") lists one type per '|' part ("" skips the part).
var mispTypes = map[string][]Type{
	"ip-src": {TypeCIDR}, "ip-dst": {TypeCIDR},
	"ip-src|port": {TypeCIDR, ""}, "ip-dst|port": {TypeCIDR, ""},
	"domain": {TypeDomain}, "hostname": {TypeDomain}, "domain|ip": {TypeDomain, TypeCIDR},
	"hostname|port": {TypeDomain, ""},
	"url":           {TypeURL},
	"md5":           {TypeMD5}, "sha1": {TypeSHA1}, "sha256": {TypeSHA256},
	"filename|md5": {TypeFilename, TypeMD5}, "filename|sha1": {TypeFilename, TypeSHA1}, "filename|sha256": {TypeFilename, TypeSHA256},
	"malware-sample": {TypeFilename, TypeMD5},
	"filename":       {TypeFilename},
	"email":          {TypeEmail}, "email-src": {TypeEmail}, "email-dst": {TypeEmail}, "email-reply-to": {TypeEmail},
	"x509-fingerprint-md5": {TypeMD5}, "x509-fingerprint-sha1": {TypeSHA1}, "x509-fingerprint-sha256": {TypeSHA256},
}

// ParseMISPEvent reads one MISP event ({"Event": {…}} or the bare event):
// every attribute marked to_ids, in the event and in its objects, of a
// matchable type (ip-src/ip-dst[|port], domain, hostname[|port],
// domain|ip, url, md5/sha1/sha256, filename and filename|hash,
// malware-sample, email-src/-dst/-reply-to, x509 fingerprints). TLP comes
// from tlp:* tags (an attribute's own tag wins over the event's), other
// tags become SourceRef.Tags, an osint:certainty tag the confidence, the
// event info the description and the event uuid the Ref. Attributes not
// marked to_ids are skipped silently; to_ids attributes of other types
// are reported.
func ParseMISPEvent(r io.Reader, name string, o FeedOptions) (*Feed, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	b, err := readAll(r, name)
	if err != nil {
		return nil, err
	}
	if err := notText(b, name, "a MISP event"); err != nil {
		return nil, err
	}
	f := &Feed{Format: "misp"}
	if err := parseMISPEvent(f, &o, b, name); err != nil {
		return nil, err
	}
	return f, nil
}

func parseMISPEvent(f *Feed, o *FeedOptions, b []byte, name string) error {
	var wrapped struct {
		Event *mispEvent `json:"Event"`
	}
	if err := decodeJSON(b, &wrapped, name); err != nil {
		return err
	}
	ev := wrapped.Event
	root := "Event"
	if ev == nil {
		ev, root = &mispEvent{}, ""
		if err := decodeJSON(b, ev, name); err != nil {
			return err
		}
		if ev.UUID == "" && ev.Info == "" && ev.Attributes == nil {
			return fmt.Errorf("%w: %s is JSON but not a MISP event (no Event, uuid or Attribute)", ErrFormat, name)
		}
	}
	base := o.ref()
	base.Ref = ev.UUID
	base.Description = ev.Info
	applyMISPTags(&base, ev.Tags)
	join := func(p string) string {
		if root == "" {
			return p
		}
		return root + "." + p
	}
	for i := range ev.Attributes {
		mispAttr(f, o, base, &ev.Attributes[i], Problem{File: name, Path: join(fmt.Sprintf("Attribute[%d]", i))})
	}
	for j := range ev.Objects {
		obj := &ev.Objects[j]
		if obj.Deleted {
			continue
		}
		for i := range obj.Attributes {
			mispAttr(f, o, base, &obj.Attributes[i], Problem{File: name, Path: join(fmt.Sprintf("Object[%d].Attribute[%d]", j, i))})
		}
	}
	return nil
}

func applyMISPTags(ref *SourceRef, tags []mispTag) {
	for _, t := range tags {
		n := strings.TrimSpace(t.Name)
		low := strings.ToLower(n)
		switch {
		case strings.HasPrefix(low, "tlp:"):
			if tlp, err := NormalizeTLP(low); err == nil {
				ref.TLP = tlp
			}
		case strings.HasPrefix(low, "osint:certainty="):
			v := strings.Trim(n[len("osint:certainty="):], `"`)
			if c, err := strconv.Atoi(v); err == nil && c >= 0 && c <= 100 {
				ref.Confidence = c
			}
		default:
			if !slices.Contains(ref.Tags, n) {
				ref.Tags = append(ref.Tags, n)
			}
		}
	}
}

func mispAttr(f *Feed, o *FeedOptions, base SourceRef, a *mispAttribute, where Problem) {
	if !a.ToIDS || a.Deleted {
		return
	}
	where.ID = a.UUID
	types, ok := mispTypes[a.Type]
	if !ok {
		f.problem(where, "attribute type %q: %s", a.Type, ErrUnsupported)
		return
	}
	ref := cloneRef(base)
	applyMISPTags(&ref, a.Tags)
	ref.FirstSeen = time.Time(a.FirstSeen)
	if ref.FirstSeen.IsZero() {
		ref.FirstSeen = time.Time(a.Timestamp)
	}
	ref.LastSeen = time.Time(a.LastSeen)
	if ref.LastSeen.IsZero() {
		ref.LastSeen = time.Time(a.Timestamp)
	}
	parts := []string{a.Value}
	if len(types) > 1 {
		parts = strings.SplitN(a.Value, "|", len(types))
		if len(parts) != len(types) {
			f.problem(where, "attribute type %s wants %d values separated by '|', got %q", a.Type, len(types), a.Value)
			return
		}
	}
	for i, t := range types {
		if t == "" {
			continue
		}
		f.add(o, t, parts[i], cloneRef(ref), where)
	}
}

// ParseMISPFeed reads a MISP feed directory: manifest.json names the
// events, each in <uuid>.json. A missing or unreadable event file is a
// problem (the others are kept); a missing or broken manifest is an error.
func ParseMISPFeed(fsys fs.FS, dir string, o FeedOptions) (*Feed, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	mpath := path.Join(dir, "manifest.json")
	b, err := fs.ReadFile(fsys, mpath)
	if err != nil {
		return nil, fmt.Errorf("MISP feed %s: %w", dir, err)
	}
	if err := notText(b, mpath, "a MISP manifest"); err != nil {
		return nil, err
	}
	var manifest map[string]json.RawMessage
	if err := decodeJSON(b, &manifest, mpath); err != nil {
		return nil, err
	}
	uuids := make([]string, 0, len(manifest))
	for u := range manifest {
		uuids = append(uuids, u)
	}
	slices.Sort(uuids)
	f := &Feed{Format: "misp"}
	for _, u := range uuids {
		epath := path.Join(dir, u+".json")
		if strings.ContainsAny(u, `/\`) || u == "" || u == ".." {
			f.problem(Problem{File: mpath, Path: u}, "event id is not a file name")
			continue
		}
		eb, err := fs.ReadFile(fsys, epath)
		if err != nil {
			f.problem(Problem{File: mpath, Path: u}, "event file: %v", err)
			continue
		}
		if err := notText(eb, epath, "a MISP event"); err != nil {
			f.problem(Problem{File: epath}, "%v", err)
			continue
		}
		sub := &Feed{}
		if err := parseMISPEvent(sub, &o, bytes.TrimSpace(eb), epath); err != nil {
			if !errors.Is(err, ErrFormat) {
				return nil, err
			}
			f.problem(Problem{File: epath}, "%v", err)
			continue
		}
		f.Indicators = append(f.Indicators, sub.Indicators...)
		f.Problems = append(f.Problems, sub.Problems...)
	}
	return f, nil
}
