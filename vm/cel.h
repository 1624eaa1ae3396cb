/*
 * cel.h - CEL semantics on runtime values: operators, equality and ordering,
 * conversions, the builtin function table, time and text helpers.
 *
 * Every operation takes its operands by pointer and writes one result value.
 * Operands are never errors: the VM propagates errors before calling (except
 * where a function says otherwise). A failing operation writes an error
 * value made with cv_error(); its message starts with the SPEC texts where
 * they apply: "division by zero", "integer overflow", "no matching overload",
 * "index out of range", "no such key: ...".
 */
#ifndef CLAUSE_CEL_H
#define CLAUSE_CEL_H

#include "value.h"

/* ---- operators ---------------------------------------------------------- */
typedef enum cel_binop {
  CEL_ADD, CEL_SUB, CEL_MUL, CEL_DIV, CEL_MOD,
  CEL_EQ, CEL_NE, CEL_LT, CEL_LE, CEL_GT, CEL_GE,
  CEL_IN,     /* a in b: list membership, map key presence */
  CEL_INDEX   /* a[b]: list index, map lookup */
} cel_binop;

void cel_binary(cel_ctx *ctx, cel_binop op, value *out, const value *a, const value *b);
void cel_negate(cel_ctx *ctx, value *out, const value *a); /* -a */
void cel_not(cel_ctx *ctx, value *out, const value *a);    /* !a */

/* CEL equality (heterogeneous numeric equality; lists and maps deep). */
bool cel_equal(const value *a, const value *b);
/* Ordering: sets *cmp to <0, 0, >0 and returns true, or returns false when
 * the operands cannot be ordered (no matching overload). Numerics compare
 * exactly across int, uint and double; NaN is unordered (returns true with
 * a result that makes every comparison false: see cel_binary). */
bool cel_compare(const value *a, const value *b, int *cmp);

/* Field selection on a map value: m.name (error "no such key: name" when
 * absent). `present` variant for has(): true/false, or an error when the
 * operand is not a map. */
void cel_select(cel_ctx *ctx, value *out, const value *m, const char *name, uint32_t n);
void cel_has_field(cel_ctx *ctx, value *out, const value *m, const char *name, uint32_t n);

/* ---- builtin functions ---------------------------------------------------
 * Functions called by name: size, contains, startsWith, endsWith, matches,
 * int, uint, double, string, bytes, bool, timestamp, duration, dyn, type,
 * getFullYear ... getMilliseconds, and the clause additions (ip, cidr, glob,
 * lower, upper, split, trim) and the CEL string and math extensions.
 * `member` functions are called as target.name(args): args[0] is the
 * target. Overloads are resolved at run time on the argument kinds. */
typedef void (*cel_builtin_fn)(cel_ctx *ctx, value *out, const value *args, int nargs);

typedef struct cel_builtin {
  const char *name;   /* e.g. "startsWith"; conversions use the type name */
  uint8_t member;     /* 1: called as target.name(...); 0: global name(...) */
  uint8_t min_args;   /* counting the target of a member call */
  uint8_t max_args;
  uint8_t errors_in;  /* 1: may receive error values as arguments */
  cel_builtin_fn fn;
} cel_builtin;

/* The builtin with this name and call style accepting nargs arguments
 * (target included), or NULL. */
const cel_builtin *cel_builtin_find(const char *name, bool member, int nargs);
/* The table's size, and the builtin at an index (stable within one build;
 * bytecode names builtins by name, not index). */
int cel_builtin_count(void);
const cel_builtin *cel_builtin_at(int i);

/* `in` on the network values of ip() and cidr() (cel_net.c): when `coll` is
 * a cidr() value, writes elem's membership (an ip() address, or a narrower
 * cidr() prefix; anything else is an error) and returns true; false when
 * `coll` is no cidr() value. */
bool cel_net_in(cel_ctx *ctx, value *out, const value *elem, const value *coll);

/* ---- time ---------------------------------------------------------------- */
/* RFC 3339 text -> timestamp (years 0001..9999, any offset, up to 9
 * fraction digits). false when malformed or out of range. */
bool cel_parse_timestamp(const char *s, size_t n, int64_t *secs, uint32_t *nanos);
/* CEL duration text ("1.5s", "-2h45m", "1ns") -> nanoseconds. */
bool cel_parse_duration(const char *s, size_t n, int64_t *ns);
/* "2024-05-01T10:00:00Z" / "...:00.250Z": UTC, fraction of 0, 3, 6 or 9. */
void cel_format_timestamp(outbuf *o, int64_t secs, uint32_t nanos);
/* "1.5s", "-3600s", "0.000000001s": seconds, fraction of 0, 3, 6 or 9. */
void cel_format_duration(outbuf *o, int64_t ns);

/* ---- text forms ------------------------------------------------------------ */
/* The canonical value text of ../shared/cel/README.md (i:1, s:"x", ...). */
void cel_canon(outbuf *o, const value *v);
/* The JSON form of SPEC section 5.4 (timestamps and durations as strings,
 * bytes base64, NaN/Inf null, doubles in shortest round-trip form). */
void cel_to_json(outbuf *o, const value *v);
/* JSON string literal with only ", \ and control characters escaped. */
void cel_json_string(outbuf *o, const char *s, size_t n);
/* Shortest text that reads back as the same double ("1.5", "1e+300"). */
void cel_format_double(outbuf *o, double d);
/* The value as `string(v)` would give it (keys of counters use this). */
void cel_to_string(cel_ctx *ctx, value *out, const value *v);

/* ---- numbers ----------------------------------------------------------------- */
/* Decimal digits (an optional sign when `sign_ok`) -> magnitude and sign;
 * false on any other text or when the magnitude exceeds the limit of its
 * sign. */
bool cel_parse_decimal(const char *s, size_t n, bool sign_ok, uint64_t limit_pos, uint64_t limit_neg,
                       bool *neg, uint64_t *mag);

/* ---- UTF-8 ------------------------------------------------------------------- */
bool cel_utf8_valid(const char *s, size_t n);
size_t cel_utf8_count(const char *s, size_t n);

#endif
