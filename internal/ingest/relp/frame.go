package relp

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// Limits of the RELP frame header, as enforced by librelp.
const (
	maxTxnrDigits    = 9
	maxCmdLen        = 32
	maxDatalenDigits = 9
	maxTxnr          = 999999999
	// maxHeaderLen is the longest possible "TXNR SP COMMAND SP DATALEN SP".
	maxHeaderLen = maxTxnrDigits + 1 + maxCmdLen + 1 + maxDatalenDigits + 1
)

// errIncomplete means more bytes are needed to decide.
var errIncomplete = errors.New("relp: incomplete frame")

// header is a parsed RELP frame header. cmd aliases the parsed buffer.
type header struct {
	txnr    int
	cmd     []byte
	dataLen int
	// hdrLen is the offset of the first DATA byte, or of the trailer when
	// dataLen is 0 (no SP follows a zero DATALEN).
	hdrLen int
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformedFrame}, args...)...)
}

// parseHeader parses "TXNR SP COMMAND SP DATALEN" and the byte after it from
// the start of b, with librelp's rules: TXNR is 1-9 digits, COMMAND 1-32 ASCII
// letters, DATALEN 1-9 digits; a DATALEN of 0 is followed directly by the LF
// trailer, any other by SP and DATA. It returns errIncomplete when b ends
// before the header does, an error wrapping ErrFrameTooLarge when DATALEN
// exceeds maxData, and one wrapping ErrMalformedFrame otherwise.
func parseHeader(b []byte, maxData int) (h header, err error) {
	i := 0
	n := 0
	for ; i < len(b) && isDigit(b[i]); i++ {
		if i == maxTxnrDigits {
			return h, malformed("transaction number longer than %d digits", maxTxnrDigits)
		}
		n = n*10 + int(b[i]-'0')
	}
	switch {
	case i == len(b):
		return h, errIncomplete
	case i == 0:
		return h, malformed("frame does not start with a transaction number (byte 0x%02x)", b[i])
	case b[i] != ' ':
		return h, malformed("transaction number followed by byte 0x%02x instead of SP", b[i])
	}
	h.txnr = n
	i++

	start := i
	for ; i < len(b) && isAlpha(b[i]); i++ {
		if i-start == maxCmdLen {
			return h, malformed("command longer than %d letters", maxCmdLen)
		}
	}
	switch {
	case i == len(b):
		return h, errIncomplete
	case i == start:
		return h, malformed("missing command (byte 0x%02x)", b[i])
	case b[i] != ' ':
		return h, malformed("command followed by byte 0x%02x instead of SP", b[i])
	}
	h.cmd = b[start:i]
	i++

	start = i
	n = 0
	for ; i < len(b) && isDigit(b[i]); i++ {
		if i-start == maxDatalenDigits {
			return h, malformed("data length longer than %d digits", maxDatalenDigits)
		}
		n = n*10 + int(b[i]-'0')
	}
	switch {
	case i == len(b):
		return h, errIncomplete
	case i == start:
		return h, malformed("missing data length (byte 0x%02x)", b[i])
	case n > maxData:
		return h, fmt.Errorf("%w: data length %d, maximum %d", ErrFrameTooLarge, n, maxData)
	case n == 0:
		if b[i] != '\n' {
			return h, malformed("zero data length followed by byte 0x%02x instead of the LF trailer", b[i])
		}
		h.hdrLen = i
		return h, nil
	case b[i] != ' ':
		return h, malformed("data length followed by byte 0x%02x instead of SP", b[i])
	}
	h.dataLen = n
	h.hdrLen = i + 1
	return h, nil
}

// nextFrame parses one complete frame at the start of b. It returns the
// header, the DATA (aliasing b) and the frame's total length including the
// trailer, or errIncomplete if b does not hold the whole frame yet.
func nextFrame(b []byte, maxData int) (h header, data []byte, n int, err error) {
	h, err = parseHeader(b, maxData)
	if err != nil {
		return h, nil, 0, err
	}
	n = h.hdrLen + h.dataLen + 1
	if len(b) < n {
		return h, nil, 0, errIncomplete
	}
	if b[n-1] != '\n' {
		return h, nil, 0, malformed("frame with data length %d not followed by the LF trailer (byte 0x%02x)", h.dataLen, b[n-1])
	}
	return h, b[h.hdrLen : h.hdrLen+h.dataLen], n, nil
}

// offers is what a client's open command offers.
type offers struct {
	version    int // relp_version, -1 when absent
	badVersion bool
	syslog     bool // "syslog" is among the offered commands
	software   string
}

// parseOffers parses the DATA of an open command: offers separated by LF,
// each "name=value[,value...]" (or a bare name).
func parseOffers(data []byte) offers {
	o := offers{version: -1}
	for len(data) > 0 {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		name, value, _ := bytes.Cut(line, []byte{'='})
		switch string(name) {
		case "relp_version":
			v, err := strconv.Atoi(string(value))
			if err != nil || v < 0 {
				o.badVersion = true
				continue
			}
			o.version = v
		case "commands":
			for c := range bytes.SplitSeq(value, []byte{','}) {
				if string(c) == "syslog" {
					o.syslog = true
				}
			}
		case "relp_software":
			o.software = string(value)
		}
	}
	return o
}

// appendRsp appends "TXNR rsp DATALEN[ DATA]\n" to dst.
func appendRsp(dst []byte, txnr int, data string) []byte {
	dst = strconv.AppendInt(dst, int64(txnr), 10)
	dst = append(dst, " rsp "...)
	dst = strconv.AppendInt(dst, int64(len(data)), 10)
	if len(data) > 0 {
		dst = append(dst, ' ')
		dst = append(dst, data...)
	}
	return append(dst, '\n')
}

// serverClose is the hint a server sends before it closes a session.
const serverClose = "0 serverclose 0\n"

func nextTxnr(t int) int {
	if t >= maxTxnr {
		return 1
	}
	return t + 1
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
