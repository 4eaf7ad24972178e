package pattern

import (
	"bytes"
	"encoding/binary"
)

// fileType is what body signature targets are checked against. Only the
// executable formats whose detection is a cheap header check are told
// apart; everything else is typeOther and matches target 0 only.
type fileType uint8

const (
	typeOther fileType = 0
	typePE    fileType = 1
	typeELF   fileType = 6
	typeMachO fileType = 9
)

// headerLen is how much of an object's start is examined for its type and
// PE layout. Offsets that need a PE header located beyond it do not match.
const headerLen = 64 << 10

// objInfo is what offset resolution and logical-signature conditions need
// to know about the object being scanned.
type objInfo struct {
	size  int64 // -1 while unknown
	ftype fileType
	pe    *peInfo
}

type peSection struct {
	raw, rsz int64 // file offset and size of the raw data (aligned as ClamAV does)
	rva, vsz int64
}

type peInfo struct {
	ep       int64 // entry point as a file offset
	epOK     bool
	sections []peSection
}

func sniffExecutable(h []byte, size int64) (fileType, *peInfo) {
	switch {
	case len(h) >= 4 && string(h[:4]) == "\x7fELF":
		return typeELF, nil
	case len(h) >= 4 && isMachO(h):
		return typeMachO, nil
	case len(h) >= 2 && h[0] == 'M' && h[1] == 'Z':
		if pe := parsePE(h, size); pe != nil {
			return typePE, pe
		}
	}
	return typeOther, nil
}

func isMachO(h []byte) bool {
	switch binary.BigEndian.Uint32(h) {
	case 0xfeedface, 0xfeedfacf, 0xcefaedfe, 0xcffaedfe:
		return true
	case 0xcafebabe:
		// Universal binaries share their magic with Java classes; a
		// small architecture count tells them apart (as file(1) does).
		return len(h) >= 8 && binary.BigEndian.Uint32(h[4:]) > 0 && binary.BigEndian.Uint32(h[4:]) < 20
	}
	return false
}

// parsePE reads the PE layout from the first bytes of an object. It only
// trusts what lies inside h and returns nil for anything malformed. size
// is the object size or -1.
func parsePE(h []byte, size int64) *peInfo {
	if len(h) < 0x40 || !bytes.HasPrefix(h, []byte("MZ")) {
		return nil
	}
	lfanew := int64(binary.LittleEndian.Uint32(h[0x3c:]))
	if lfanew+24 > int64(len(h)) || string(h[lfanew:lfanew+4]) != "PE\x00\x00" {
		return nil
	}
	nsec := int(binary.LittleEndian.Uint16(h[lfanew+6:]))
	optSize := int64(binary.LittleEndian.Uint16(h[lfanew+20:]))
	opt := lfanew + 24
	if nsec == 0 || nsec > 96 || opt+64 > int64(len(h)) {
		return nil
	}
	switch binary.LittleEndian.Uint16(h[opt:]) {
	case 0x10b, 0x20b: // PE32, PE32+: the fields read below sit at the same offsets
	default:
		return nil
	}
	ep := int64(binary.LittleEndian.Uint32(h[opt+16:]))
	salign := int64(binary.LittleEndian.Uint32(h[opt+32:]))
	falign := int64(binary.LittleEndian.Uint32(h[opt+36:]))
	hdrSize := int64(binary.LittleEndian.Uint32(h[opt+60:]))
	if !powerOfTwo(salign) {
		salign = 0
	}
	if !powerOfTwo(falign) || falign < 0x200 {
		falign = 0
	}
	tbl := opt + optSize
	if tbl+int64(nsec)*40 > int64(len(h)) {
		return nil
	}
	pe := &peInfo{sections: make([]peSection, nsec)}
	fsize := size
	if fsize < 0 {
		fsize = 1<<62 - 1
	}
	for i := range pe.sections {
		s := h[tbl+int64(i)*40:]
		sec := peSection{
			vsz: alignUp(int64(binary.LittleEndian.Uint32(s[8:])), salign),
			rva: alignDown(int64(binary.LittleEndian.Uint32(s[12:])), salign),
			rsz: alignUp(int64(binary.LittleEndian.Uint32(s[16:])), falign),
			raw: alignDown(int64(binary.LittleEndian.Uint32(s[20:])), falign),
		}
		// Like ClamAV, raw data running past the end of the file is
		// cut at the end of the file.
		if sec.raw >= fsize {
			sec.rsz = 0
		} else if sec.raw+sec.rsz > fsize {
			sec.rsz = fsize - sec.raw
		}
		pe.sections[i] = sec
	}
	// The entry point RVA becomes a file offset the way ClamAV's
	// cli_rawaddr does it: inside the headers it is taken as is, otherwise
	// the last section whose raw data covers it maps it.
	if ep < alignUp(hdrSize, salign) {
		pe.ep, pe.epOK = ep, ep < fsize
	} else {
		for i := len(pe.sections) - 1; i >= 0; i-- {
			s := pe.sections[i]
			if s.rsz > 0 && s.rva <= ep && ep-s.rva < s.rsz {
				pe.ep, pe.epOK = ep-s.rva+s.raw, true
				break
			}
		}
	}
	return pe
}

func powerOfTwo(n int64) bool { return n > 0 && n&(n-1) == 0 }

func alignDown(v, a int64) int64 {
	if a == 0 {
		return v
	}
	return v / a * a
}

func alignUp(v, a int64) int64 {
	if a == 0 {
		return v
	}
	return (v + a - 1) / a * a
}
