package event

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unsafe"
)

// ErrCorrupt means a batch could not be decoded.
var ErrCorrupt = errors.New("corrupt event batch")

const codecVersion = 1

// AppendBatch encodes events in Mamori's compact bus format and appends it
// to dst. The format is: version byte, count, then per event its strings as
// length-prefixed bytes and its times as Unix nanoseconds (varints).
func AppendBatch(dst []byte, events []*Event) []byte {
	dst = append(dst, codecVersion)
	dst = binary.AppendUvarint(dst, uint64(len(events)))
	for _, e := range events {
		dst = appendString(dst, e.ID)
		dst = appendString(dst, e.Tenant)
		dst = appendString(dst, e.Source)
		dst = appendString(dst, e.Original)
		dst = binary.AppendVarint(dst, e.Timestamp.UnixNano())
		dst = binary.AppendVarint(dst, e.Ingested.UnixNano())
		dst = binary.AppendUvarint(dst, uint64(len(e.Fields)))
		for _, f := range e.Fields {
			dst = appendString(dst, f.Name)
			dst = appendString(dst, f.Value)
		}
	}
	return dst
}

// EncodedSize estimates the encoded size of one event (for batch sizing).
func EncodedSize(e *Event) int {
	n := 32 + len(e.ID) + len(e.Tenant) + len(e.Source) + len(e.Original)
	for _, f := range e.Fields {
		n += 4 + len(f.Name) + len(f.Value)
	}
	return n
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// DecodeBatch decodes a batch made by AppendBatch.
func DecodeBatch(b []byte) ([]*Event, error) {
	return decodeBatch(b, false, nil)
}

// DecodeBatchView decodes like DecodeBatch but without copying: the events'
// strings share b's memory, so b must not change while they are in use. It
// allocates the events and their fields in two blocks, which keeps the
// collector's work per batch small on the bus → store path.
func DecodeBatchView(b []byte) ([]*Event, error) {
	return decodeBatch(b, true, nil)
}

// ViewDecoder decodes like DecodeBatchView but reuses its memory from one
// call to the next, so a consumer decoding batch after batch allocates
// (and gives the collector) almost nothing: the events of a call are valid
// only until the next call.
type ViewDecoder struct {
	events []*Event
	block  []Event
	fields []Field
}

// Decode decodes b; see ViewDecoder.
func (v *ViewDecoder) Decode(b []byte) ([]*Event, error) {
	return decodeBatch(b, true, v)
}

func decodeBatch(b []byte, view bool, reuse *ViewDecoder) ([]*Event, error) {
	d := decoder{b: b, view: view}
	if len(b) == 0 || b[0] != codecVersion {
		return nil, fmt.Errorf("%w: unknown version", ErrCorrupt)
	}
	d.b = d.b[1:]
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)) {
		return nil, fmt.Errorf("%w: count %d exceeds payload", ErrCorrupt, n)
	}
	var events []*Event
	var block []Event
	var fieldBlock []Field
	switch {
	case reuse != nil:
		if uint64(cap(reuse.block)) < n {
			reuse.block = make([]Event, n)
			reuse.events = make([]*Event, 0, n)
		}
		block = reuse.block[:n]
		clear(block) // no string of the previous batch stays reachable
		events = reuse.events[:0]
		fieldBlock = reuse.fields[:0]
	case view:
		events = make([]*Event, 0, n)
		block = make([]Event, n)
	default:
		events = make([]*Event, 0, n)
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		e := &Event{}
		if view {
			e = &block[i]
		}
		e.ID = d.str()
		e.Tenant = d.str()
		e.Source = d.str()
		e.Original = d.str()
		e.Timestamp = time.Unix(0, d.varint()).UTC()
		e.Ingested = time.Unix(0, d.varint()).UTC()
		nf := d.uvarint()
		if d.err == nil && nf > uint64(len(d.b)) {
			return nil, fmt.Errorf("%w: field count %d exceeds payload", ErrCorrupt, nf)
		}
		if view {
			if uint64(cap(fieldBlock)-len(fieldBlock)) < nf {
				fieldBlock = make([]Field, 0, max(nf, 4096))
			}
			e.Fields = fieldBlock[len(fieldBlock) : len(fieldBlock) : len(fieldBlock)+int(nf)]
			fieldBlock = fieldBlock[:len(fieldBlock)+int(nf)]
		} else {
			e.Fields = make([]Field, 0, nf)
		}
		for j := uint64(0); j < nf && d.err == nil; j++ {
			name := d.str()
			e.Fields = append(e.Fields, Field{Name: name, Value: d.str()})
		}
		events = append(events, e)
	}
	if reuse != nil {
		reuse.events = events
		if cap(fieldBlock) > cap(reuse.fields) {
			reuse.fields = fieldBlock[:0]
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(d.b))
	}
	return events, nil
}

type decoder struct {
	b    []byte
	err  error
	view bool
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = fmt.Errorf("%w: bad varint", ErrCorrupt)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = fmt.Errorf("%w: bad varint", ErrCorrupt)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = fmt.Errorf("%w: string length %d exceeds payload", ErrCorrupt, n)
		return ""
	}
	var s string
	if d.view {
		s = unsafe.String(unsafe.SliceData(d.b), int(n))
	} else {
		s = string(d.b[:n])
	}
	d.b = d.b[n:]
	return s
}
