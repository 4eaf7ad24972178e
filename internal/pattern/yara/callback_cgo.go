//go:build yara && cgo

package yara

/*
#include <stddef.h>
#include <stdint.h>
*/
import "C"

import (
	"bytes"
	"runtime/cgo"
	"unsafe"
)

// mamoriYaraMessage receives libyara compiler messages (see
// compiler_cgo.go); handle is the compiler's cgo.Handle.
//
//export mamoriYaraMessage
func mamoriYaraMessage(level C.int, file *C.char, line C.int, msg *C.char, handle C.uintptr_t) {
	cc, ok := cgo.Handle(handle).Value().(*compiler)
	if !ok || level != yaraErrorLevelError {
		return
	}
	cc.msgs = append(cc.msgs, compilerMessage{file: C.GoString(file), line: int(line), text: C.GoString(msg)})
}

// mamoriYaraWrite receives compiled rules saved by libyara (see
// compiler.rules); handle is a cgo.Handle of a *bytes.Buffer.
//
//export mamoriYaraWrite
func mamoriYaraWrite(ptr unsafe.Pointer, size, count C.size_t, handle C.uintptr_t) C.size_t {
	buf, ok := cgo.Handle(handle).Value().(*bytes.Buffer)
	if !ok {
		return 0
	}
	buf.Write(unsafe.Slice((*byte)(ptr), int(size*count)))
	return count
}
