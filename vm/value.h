/*
 * value.h - the runtime value model shared by the VM, the builtins, the JSON
 * binder and the compiler's constant folder.
 *
 * A value is 16 bytes: a kind tag, a 32-bit count and an 8-byte payload.
 * Values never own memory: strings, lists and maps point into the program's
 * constants, the VM's input arena or its per-evaluation scratch arena.
 */
#ifndef CLAUSE_VALUE_H
#define CLAUSE_VALUE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"

typedef enum cv_kind {
  CV_NULL = 0,
  CV_BOOL,
  CV_INT,
  CV_UINT,
  CV_DOUBLE,
  CV_STRING, /* UTF-8, s/n (not NUL-terminated) */
  CV_BYTES,  /* s/n */
  CV_LIST,   /* items[0..n) */
  CV_MAP,    /* items[0..2n): key, value, key, value, ... */
  CV_TIMESTAMP, /* i = seconds since the epoch, n = nanoseconds 0..999999999 */
  CV_DURATION,  /* i = nanoseconds */
  CV_TYPE,      /* i = the cv_kind the type names (CV_TYPE for `type`) */
  CV_ERROR,     /* s/n = message; flag = cv_errcode */
  CV_ITER,      /* VM-internal: a comprehension iterator (never user-visible) */
  CV_UNSET,     /* VM-internal: a let not computed yet in this evaluation */
  CV_KIND_COUNT
} cv_kind;

/* Why a value is an error. Absent and wrong-typed fields read as errors but
 * `has()` reports them as not present. */
typedef enum cv_errcode {
  CV_ERR_GENERIC = 0,
  CV_ERR_ABSENT = 1,     /* "no such key: PATH" */
  CV_ERR_WRONG_TYPE = 2  /* field present with the wrong JSON type */
} cv_errcode;

typedef struct value {
  uint8_t kind;
  uint8_t flag;
  uint16_t spare;           /* a constant map's list value: its hash set's
                               number + 1 (program.h, list_sets); else 0 */
  uint32_t n;
  union {
    bool b;
    int64_t i;
    uint64_t u;
    double d;
    const char *s;
    const struct value *items;
  };
} value;

/* Constructors (cheap, inline). */
static inline value cv_null(void) { value v = {0}; v.kind = CV_NULL; return v; }
static inline value cv_bool(bool b) { value v = {0}; v.kind = CV_BOOL; v.b = b; return v; }
static inline value cv_int(int64_t i) { value v = {0}; v.kind = CV_INT; v.i = i; return v; }
static inline value cv_uint(uint64_t u) { value v = {0}; v.kind = CV_UINT; v.u = u; return v; }
static inline value cv_double(double d) { value v = {0}; v.kind = CV_DOUBLE; v.d = d; return v; }
static inline value cv_string(const char *s, uint32_t n) { value v = {0}; v.kind = CV_STRING; v.s = s; v.n = n; return v; }
static inline value cv_bytes(const char *s, uint32_t n) { value v = {0}; v.kind = CV_BYTES; v.s = s; v.n = n; return v; }
static inline value cv_list(const value *items, uint32_t n) { value v = {0}; v.kind = CV_LIST; v.items = items; v.n = n; return v; }
static inline value cv_map(const value *kv, uint32_t n) { value v = {0}; v.kind = CV_MAP; v.items = kv; v.n = n; return v; }
static inline value cv_timestamp(int64_t secs, uint32_t nanos) { value v = {0}; v.kind = CV_TIMESTAMP; v.i = secs; v.n = nanos; return v; }
static inline value cv_duration(int64_t ns) { value v = {0}; v.kind = CV_DURATION; v.i = ns; return v; }
static inline value cv_type(cv_kind k) { value v = {0}; v.kind = CV_TYPE; v.i = k; return v; }
static inline value cv_static_error(const char *msg, uint32_t n, cv_errcode code) {
  value v = {0}; v.kind = CV_ERROR; v.s = msg; v.n = n; v.flag = (uint8_t)code; return v;
}
static inline bool cv_is_error(const value *v) { return v->kind == CV_ERROR; }

/* Timestamps span 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999999Z. */
#define CV_TS_MIN_SECS (-62135596800LL)
#define CV_TS_MAX_SECS (253402300799LL)

/* The context builtins run in: where they allocate results and errors. */
typedef struct cel_ctx {
  arena *scratch;           /* per-evaluation memory, reset before each eval */
  uint32_t regex_match_limit;
  void *regex_cache;        /* vm/regex.c: per-VM match data, may be NULL */
} cel_ctx;

/* An error value whose message is formatted into ctx->scratch. On
 * out-of-memory the message is a static "out of memory". */
value cv_error(cel_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3), cold));

/* The CEL type name of a value's kind: "int", "uint", "double", "bool",
 * "string", "bytes", "list", "map", "null_type", "google.protobuf.Timestamp",
 * "google.protobuf.Duration", "type". */
const char *cv_kind_name(cv_kind k);

/* ---- output buffers -------------------------------------------------------
 * One writer for the canonical text, JSON and decisions. A fixed buffer
 * (grow == false) keeps counting past its capacity, so the caller learns the
 * size needed, as with snprintf; a growing buffer reallocates (not for the
 * evaluation hot path). */
typedef struct outbuf {
  char *buf;
  size_t cap;
  size_t len;
  bool grow;
  bool oom;
} outbuf;

void ob_init_fixed(outbuf *o, char *buf, size_t cap);
void ob_init_grow(outbuf *o);
void ob_put(outbuf *o, const char *s, size_t n);
/* A growing buffer: room for `need` more bytes (and a NUL) at o->buf +
 * o->len, to fill directly; false (and o->oom) when out of memory. */
bool ob_reserve(outbuf *o, size_t need);
void ob_puts(outbuf *o, const char *s);
void ob_putc(outbuf *o, char c);
void ob_printf(outbuf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Decimal integers, without printf's cost (reasons print counts often). */
void ob_put_int(outbuf *o, int64_t v);
void ob_put_uint(outbuf *o, uint64_t v);
/* NUL-terminates within capacity (fixed) or after len (grow); returns buf. */
char *ob_cstr(outbuf *o);
void ob_free(outbuf *o);

#endif /* CLAUSE_VALUE_H */
