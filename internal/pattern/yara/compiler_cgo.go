//go:build yara && cgo

package yara

// The compiler is driven through libyara's C API directly rather than
// go-yara's Compiler: go-yara adds files with yr_compiler_add_fd, whose
// flex buffer leaves the line counter uninitialised in libyara 3.8, so
// errors carried stale or garbage line numbers. yr_compiler_add_file
// starts counting at 1. The symbols are those of the libyara go-yara
// compiles in; the declarations below mirror its yara/compiler.h,
// yara/rules.h and yara/stream.h (only pointers to its structures are
// passed, except YR_STREAM, whose three fields are copied as they are).

/*
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct mamori_yr_compiler YR_COMPILER;
typedef struct mamori_yr_rules YR_RULES;
typedef void (*YR_COMPILER_CALLBACK_FUNC)(int error_level, const char* file_name, int line_number, const char* message, void* user_data);

int yr_compiler_create(YR_COMPILER** compiler);
void yr_compiler_destroy(YR_COMPILER* compiler);
void yr_compiler_set_callback(YR_COMPILER* compiler, YR_COMPILER_CALLBACK_FUNC callback, void* user_data);
int yr_compiler_add_file(YR_COMPILER* compiler, FILE* rules_file, const char* namespace_, const char* file_name);
char* yr_compiler_get_error_message(YR_COMPILER* compiler, char* buffer, int buffer_size);
int yr_compiler_define_integer_variable(YR_COMPILER* compiler, const char* identifier, int64_t value);
int yr_compiler_define_boolean_variable(YR_COMPILER* compiler, const char* identifier, int value);
int yr_compiler_define_float_variable(YR_COMPILER* compiler, const char* identifier, double value);
int yr_compiler_define_string_variable(YR_COMPILER* compiler, const char* identifier, const char* value);
int yr_compiler_get_rules(YR_COMPILER* compiler, YR_RULES** rules);
int yr_rules_destroy(YR_RULES* rules);

typedef size_t (*YR_STREAM_READ_FUNC)(void* ptr, size_t size, size_t count, void* user_data);
typedef size_t (*YR_STREAM_WRITE_FUNC)(const void* ptr, size_t size, size_t count, void* user_data);
typedef struct {
	void* user_data;
	YR_STREAM_READ_FUNC read;
	YR_STREAM_WRITE_FUNC write;
} YR_STREAM;
int yr_rules_save_stream(YR_RULES* rules, YR_STREAM* stream);

extern void mamoriYaraMessage(int level, char* file, int line, char* msg, uintptr_t handle);
extern size_t mamoriYaraWrite(void* ptr, size_t size, size_t count, uintptr_t handle);

static size_t mamori_yara_write(const void* ptr, size_t size, size_t count, void* user_data) {
	return mamoriYaraWrite((void*)ptr, size, count, (uintptr_t)user_data);
}

static int mamori_yara_save(YR_RULES* rules, uintptr_t handle) {
	YR_STREAM stream = { (void*)handle, NULL, mamori_yara_write };
	return yr_rules_save_stream(rules, &stream);
}

static void mamori_yara_callback(int level, const char* file, int line, const char* msg, void* user_data) {
	mamoriYaraMessage(level, (char*)file, line, (char*)msg, (uintptr_t)user_data);
}

static void mamori_yara_set_callback(YR_COMPILER* c, uintptr_t handle) {
	yr_compiler_set_callback(c, mamori_yara_callback, (void*)handle);
}
*/
import "C"

import (
	"bytes"
	"fmt"
	"path/filepath"
	"runtime/cgo"
	"unsafe"

	libyara "github.com/Velocidex/go-yara"
)

// yaraErrorLevelError is YARA_ERROR_LEVEL_ERROR (warnings are level 1).
const yaraErrorLevelError = 0

// compilerMessage is one error reported through the compiler callback.
type compilerMessage struct {
	file string
	line int
	text string
}

// compiler is one libyara compiler. It is used by one goroutine, and not
// again after a file failed to compile (libyara forbids it).
type compiler struct {
	c    *C.YR_COMPILER
	h    cgo.Handle
	msgs []compilerMessage
}

func newCompiler(opts Options) (*compiler, error) {
	cc := &compiler{}
	if rc := C.yr_compiler_create(&cc.c); rc != 0 {
		return nil, fmt.Errorf("yara: create compiler: libyara error %d", int(rc))
	}
	cc.h = cgo.NewHandle(cc)
	C.mamori_yara_set_callback(cc.c, C.uintptr_t(cc.h))
	for name, v := range opts.Externals {
		if err := cc.define(name, v); err != nil {
			cc.destroy()
			return nil, err
		}
	}
	return cc, nil
}

func (cc *compiler) define(name string, v any) error {
	id := C.CString(name)
	defer C.free(unsafe.Pointer(id))
	var rc C.int
	switch v := v.(type) {
	case string:
		s := C.CString(v)
		defer C.free(unsafe.Pointer(s))
		rc = C.yr_compiler_define_string_variable(cc.c, id, s)
	case bool:
		b := 0
		if v {
			b = 1
		}
		rc = C.yr_compiler_define_boolean_variable(cc.c, id, C.int(b))
	case int:
		rc = C.yr_compiler_define_integer_variable(cc.c, id, C.int64_t(v))
	case int64:
		rc = C.yr_compiler_define_integer_variable(cc.c, id, C.int64_t(v))
	case float64:
		rc = C.yr_compiler_define_float_variable(cc.c, id, C.double(v))
	default:
		return fmt.Errorf("yara: external variable %q: type %T (want string, bool, int, int64 or float64)", name, v)
	}
	if rc != 0 {
		return fmt.Errorf("yara: external variable %q: libyara error %d", name, int(rc))
	}
	return nil
}

// addFile compiles one rule file into the compiler. A rule error is
// returned as a *CompileError locating the first error; the error is for
// files that cannot be opened.
func (cc *compiler) addFile(name string) (*CompileError, error) {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	mode := C.CString("r")
	defer C.free(unsafe.Pointer(mode))
	fh, err := C.fopen(cname, mode)
	if fh == nil {
		return nil, fmt.Errorf("yara: open %s: %w", name, err)
	}
	defer C.fclose(fh)
	n := len(cc.msgs)
	if C.yr_compiler_add_file(cc.c, fh, nil, cname) == 0 {
		return nil, nil
	}
	ce := &CompileError{File: name}
	if len(cc.msgs) > n {
		m := cc.msgs[n]
		ce.Line, ce.Msg = m.line, m.text
		if m.file != "" && m.file != name {
			// An included file, named as the include statement wrote it.
			ce.File = m.file
			if !filepath.IsAbs(m.file) {
				ce.File = filepath.Join(filepath.Dir(name), m.file)
			}
		}
		if extra := len(cc.msgs) - n - 1; extra > 0 {
			ce.Msg += fmt.Sprintf(" (and %d more errors)", extra)
		}
	} else {
		var buf [512]C.char
		ce.Msg = C.GoString(C.yr_compiler_get_error_message(cc.c, &buf[0], C.int(len(buf))))
	}
	if ce.File != name {
		ce.Msg += " (included from " + name + ")"
	}
	return ce, nil
}

// rules returns the compiled rules as go-yara Rules, which scan them.
// go-yara builds Rules only from its own compiler or from a saved rule
// set, so the compiled form is saved to memory and read back.
func (cc *compiler) rules() (*libyara.Rules, error) {
	var yr *C.YR_RULES
	if rc := C.yr_compiler_get_rules(cc.c, &yr); rc != 0 {
		return nil, fmt.Errorf("yara: get rules: libyara error %d", int(rc))
	}
	defer C.yr_rules_destroy(yr)
	var buf bytes.Buffer
	h := cgo.NewHandle(&buf)
	defer h.Delete()
	if rc := C.mamori_yara_save(yr, C.uintptr_t(h)); rc != 0 {
		return nil, fmt.Errorf("yara: save compiled rules: libyara error %d", int(rc))
	}
	r, err := libyara.ReadRules(&buf)
	if err != nil {
		return nil, fmt.Errorf("yara: load compiled rules: %w", err)
	}
	return r, nil
}

func (cc *compiler) destroy() {
	if cc != nil && cc.c != nil {
		C.yr_compiler_destroy(cc.c)
		cc.c = nil
		cc.h.Delete()
	}
}
