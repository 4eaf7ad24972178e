package pattern

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strconv"
	"strings"
)

// Mail: RFC 5322 messages with MIME parts, and mbox files of them. Every
// leaf part is decoded (base64, quoted-printable) and scanned as a member
// named after its file name, or "partN" (N.M for nested multiparts).

var mailHeaders = map[string]bool{
	"from": true, "to": true, "subject": true, "date": true, "message-id": true,
	"mime-version": true, "content-type": true, "received": true, "return-path": true,
	"delivered-to": true, "reply-to": true, "cc": true, "sender": true, "x-mailer": true,
	"content-transfer-encoding": true,
}

// sniffMail recognises a message by its header block: the first line is a
// header, and at least two well-known mail headers appear before the first
// empty line or the end of the sniffed bytes.
func sniffMail(h []byte) containerType {
	kind := ctMail
	if bytes.HasPrefix(h, []byte("From ")) {
		i := bytes.IndexByte(h, '\n')
		if i < 0 {
			return ctNone
		}
		h, kind = h[i+1:], ctMbox
	}
	known := 0
	for n := 0; len(h) > 0 && n < 64; n++ {
		i := bytes.IndexByte(h, '\n')
		if i < 0 {
			break
		}
		line := bytes.TrimRight(h[:i], "\r")
		h = h[i+1:]
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if n == 0 {
				return ctNone
			}
			continue
		}
		name, _, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(name) == 0 || bytes.ContainsAny(name, " \t") {
			return ctNone
		}
		if mailHeaders[strings.ToLower(string(name))] {
			known++
		}
	}
	if known >= 2 {
		return kind
	}
	return ctNone
}

// maxMultipartNesting bounds multipart-in-multipart recursion inside one
// message (parts still count against MaxFiles).
const maxMultipartNesting = 32

type mailWalk struct {
	j     *job
	cpath []string
	depth int
	parts int
	stop  bool
}

func (j *job) extractMail(kind containerType, r io.Reader, cpath []string, depth int) {
	br := bufio.NewReaderSize(r, 64<<10)
	w := &mailWalk{j: j, cpath: cpath, depth: depth}
	if kind == ctMail {
		w.message(br, "")
		return
	}
	// mbox: messages start with a "From " line after an empty line.
	br.ReadSlice('\n') // the first message's "From " line
	for n := 1; !w.stop && j.ctx.Err() == nil; n++ {
		m := &mboxMsg{br: br, prevEmpty: false, atStart: true}
		prefix := ""
		if n > 1 {
			prefix = "msg" + strconv.Itoa(n) + "."
		}
		w.message(m, prefix)
		io.Copy(io.Discard, m)
		if !m.more {
			return
		}
	}
}

// maxHeaderBlock bounds a message's header block: net/mail reads it into
// memory without a limit of its own.
const maxHeaderBlock = 1 << 20

func (w *mailWalk) message(r io.Reader, prefix string) {
	lim := &headerLimit{r: r, left: maxHeaderBlock, on: true}
	msg, err := mail.ReadMessage(bufio.NewReaderSize(lim, 16<<10))
	if err != nil {
		return
	}
	lim.on = false
	w.entity(textproto.MIMEHeader(msg.Header), msg.Body, prefix, "1", 0)
}

// headerLimit fails reads past left bytes while on.
type headerLimit struct {
	r    io.Reader
	left int64
	on   bool
}

func (h *headerLimit) Read(p []byte) (int, error) {
	if !h.on {
		return h.r.Read(p)
	}
	if h.left <= 0 {
		return 0, fmt.Errorf("%w: mail header block over %d bytes", ErrLimit, maxHeaderBlock)
	}
	if int64(len(p)) > h.left {
		p = p[:h.left]
	}
	n, err := h.r.Read(p)
	h.left -= int64(n)
	return n, err
}

func (w *mailWalk) entity(h textproto.MIMEHeader, body io.Reader, prefix, num string, nest int) {
	if w.stop || w.j.ctx.Err() != nil {
		return
	}
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err == nil && strings.HasPrefix(mt, "multipart/") && params["boundary"] != "" {
		if nest >= maxMultipartNesting {
			w.j.limit(w.cpath, LimitDepth)
			return
		}
		mr := multipart.NewReader(body, params["boundary"])
		for i := 1; ; i++ {
			p, err := mr.NextRawPart()
			if err != nil {
				return
			}
			sub := num + "." + strconv.Itoa(i)
			if nest == 0 {
				sub = strconv.Itoa(i)
			}
			w.entity(p.Header, p, prefix, sub, nest+1)
			if w.stop {
				return
			}
		}
	}
	w.parts++
	if w.parts > w.j.s.lim.MaxFiles {
		w.j.limit(w.cpath, LimitFiles)
		w.stop = true
		return
	}
	var dec io.Reader = body
	switch strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))) {
	case "base64":
		dec = base64.NewDecoder(base64.StdEncoding, &b64Filter{r: body})
	case "quoted-printable":
		dec = quotedprintable.NewReader(body)
	}
	name := partName(h, params)
	if name == "" {
		name = "part" + num
	}
	cp := child(w.cpath, prefix+memberName(name))
	w.j.scanObject(&guard{j: w.j, r: dec, cpath: cp}, -1, nil, cp, w.depth+1)
}

func partName(h textproto.MIMEHeader, ctParams map[string]string) string {
	if _, p, err := mime.ParseMediaType(h.Get("Content-Disposition")); err == nil && p["filename"] != "" {
		return baseName(p["filename"])
	}
	if ctParams["name"] != "" {
		return baseName(ctParams["name"])
	}
	return ""
}

func baseName(s string) string {
	s = strings.ReplaceAll(s, "\\", "/")
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

// b64Filter drops everything outside the base64 alphabet, as mail
// clients do, so that line breaks and stray characters do not end the
// decoding.
type b64Filter struct {
	r io.Reader
}

func (f *b64Filter) Read(p []byte) (int, error) {
	for {
		n, err := f.r.Read(p)
		k := 0
		for _, c := range p[:n] {
			if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=' {
				p[k] = c
				k++
			}
		}
		if k > 0 || err != nil {
			return k, err
		}
	}
}

// mboxMsg reads one message of an mbox: up to the next line starting with
// "From " that follows an empty line (that line is consumed; more tells
// whether another message follows).
type mboxMsg struct {
	br        *bufio.Reader
	cur       []byte
	atStart   bool // at the start of a line
	prevEmpty bool // the previous line was empty
	done      bool
	more      bool
}

func (m *mboxMsg) Read(p []byte) (int, error) {
	for len(m.cur) == 0 {
		if m.done {
			return 0, io.EOF
		}
		line, err := m.br.ReadSlice('\n')
		if len(line) == 0 && err != nil {
			m.done = true
			return 0, io.EOF
		}
		if m.atStart && m.prevEmpty && bytes.HasPrefix(line, []byte("From ")) {
			// Consume the rest of the separator line.
			for err == bufio.ErrBufferFull {
				_, err = m.br.ReadSlice('\n')
			}
			m.done, m.more = true, err == nil
			return 0, io.EOF
		}
		complete := len(line) > 0 && line[len(line)-1] == '\n'
		if m.atStart {
			m.prevEmpty = len(bytes.TrimRight(line, "\r\n")) == 0 && complete
		} else if complete {
			m.prevEmpty = false
		}
		m.atStart = complete
		m.cur = line
		if err != nil && err != bufio.ErrBufferFull {
			m.done = true
		}
	}
	n := copy(p, m.cur)
	m.cur = m.cur[n:]
	return n, nil
}
