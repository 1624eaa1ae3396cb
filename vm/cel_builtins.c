/*
 * cel_builtins.c - the builtin function table, and the core CEL builtins:
 * size, contains, startsWith, endsWith and the type conversions.
 *
 * The table is the concatenation of NULL-name-terminated arrays: the core
 * functions here, then the time accessors (cel_time.c), the string helpers
 * (cel_strings.c), the math extension (cel_math.c) and ip/cidr
 * (cel_net.c). Lookup takes the first entry that fits, so a name defined
 * twice resolves to the earlier array.
 */
#define _GNU_SOURCE /* memmem */
#include "cel.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cel_types.h"

extern const cel_builtin cel_builtins_time[], cel_builtins_strings[], cel_builtins_math[],
    cel_builtins_net[];

/* "no matching overload: NAME(KIND, KIND)" for the arguments received. */
static value no_overload(cel_ctx *ctx, const char *name, const value *args, int nargs) {
  char kinds[160];
  outbuf o;
  ob_init_fixed(&o, kinds, sizeof kinds);
  for (int k = 0; k < nargs; k++) {
    if (k) ob_puts(&o, ", ");
    ob_puts(&o, cv_kind_name((cv_kind)args[k].kind));
  }
  ob_cstr(&o);
  return cv_error(ctx, "no matching overload: %s(%s)", name, kinds);
}

/* Errors in arguments pass through (the VM filters them first; this is for
 * other callers such as a constant folder). */
#define PASS_ERRORS(args, nargs)                                                                   \
  do {                                                                                             \
    for (int k_ = 0; k_ < (nargs); k_++)                                                           \
      if ((args)[k_].kind == CV_ERROR) {                                                           \
        *out = (args)[k_];                                                                         \
        return;                                                                                    \
      }                                                                                            \
  } while (0)

/* ---- size and string tests ----------------------------------------------------------- */

static void fn_size(cel_ctx *ctx, value *out, const value *args, int nargs) {
  PASS_ERRORS(args, nargs);
  const value *v = &args[0];
  switch (v->kind) {
  case CV_STRING: *out = cv_int((int64_t)cel_utf8_count(v->s, v->n)); return;
  case CV_BYTES: case CV_LIST: case CV_MAP: *out = cv_int(v->n); return;
  default: *out = no_overload(ctx, "size", args, nargs); return;
  }
}

static bool both_strings(const value *args, int nargs) {
  return nargs == 2 && args[0].kind == CV_STRING && args[1].kind == CV_STRING;
}

static void fn_contains(cel_ctx *ctx, value *out, const value *args, int nargs) {
  PASS_ERRORS(args, nargs);
  if (!both_strings(args, nargs)) {
    *out = no_overload(ctx, "contains", args, nargs);
    return;
  }
  const value *s = &args[0], *sub = &args[1];
  *out = cv_bool(sub->n == 0 || (sub->n <= s->n && memmem(s->s, s->n, sub->s, sub->n) != NULL));
}

static void fn_starts_with(cel_ctx *ctx, value *out, const value *args, int nargs) {
  PASS_ERRORS(args, nargs);
  if (!both_strings(args, nargs)) {
    *out = no_overload(ctx, "startsWith", args, nargs);
    return;
  }
  const value *s = &args[0], *p = &args[1];
  *out = cv_bool(p->n <= s->n && (p->n == 0 || memcmp(s->s, p->s, p->n) == 0));
}

static void fn_ends_with(cel_ctx *ctx, value *out, const value *args, int nargs) {
  PASS_ERRORS(args, nargs);
  if (!both_strings(args, nargs)) {
    *out = no_overload(ctx, "endsWith", args, nargs);
    return;
  }
  const value *s = &args[0], *p = &args[1];
  *out = cv_bool(p->n <= s->n && (p->n == 0 || memcmp(s->s + (s->n - p->n), p->s, p->n) == 0));
}

/* ---- number parsing ------------------------------------------------------------------ */

bool cel_parse_decimal(const char *s, size_t n, bool sign_ok, uint64_t limit_pos, uint64_t limit_neg,
                       bool *neg, uint64_t *mag) {
  size_t k = 0;
  *neg = false;
  if (sign_ok && n > 0 && (s[0] == '+' || s[0] == '-')) {
    *neg = s[0] == '-';
    k = 1;
  }
  if (k == n) return false;
  uint64_t limit = *neg ? limit_neg : limit_pos, m = 0;
  for (; k < n; k++) {
    if (s[k] < '0' || s[k] > '9') return false;
    unsigned d = (unsigned)(s[k] - '0');
    if (m > (limit - d) / 10) return false;
    m = m * 10 + d;
  }
  *mag = m;
  return true;
}

/* Go's strconv.ParseFloat, which CEL's double(string) follows: decimal or
 * hexadecimal (with a p exponent) text, "inf"/"infinity"/"nan" in any case;
 * no spaces; out of range is an error (underflow to zero is not). */
static bool parse_double(cel_ctx *ctx, const char *s, uint32_t n, double *out) {
  if (n == 0 || memchr(s, '(', n) || memchr(s, ' ', n)) return false;
  unsigned char c0 = (unsigned char)s[0];
  if (c0 <= ' ') return false; /* strtod would skip leading space */
  size_t off = (s[0] == '+' || s[0] == '-') ? 1 : 0;
  bool hex = n > off + 1 && s[off] == '0' && (s[off + 1] == 'x' || s[off + 1] == 'X');
  if (hex && !memchr(s, 'p', n) && !memchr(s, 'P', n)) return false;
  char small[128];
  char *buf = small;
  if (n >= sizeof small) {
    buf = ctx && ctx->scratch ? arena_alloc(ctx->scratch, (size_t)n + 1) : NULL;
    if (!buf) return false;
  }
  memcpy(buf, s, n);
  buf[n] = '\0';
  char *end;
  errno = 0;
  double d = strtod(buf, &end);
  if (end != buf + n) return false;
  if (errno == ERANGE && isinf(d)) return false;
  *out = d;
  return true;
}

/* ---- conversions ------------------------------------------------------------------------- */

#define TWO_63 9223372036854775808.0
#define TWO_64 18446744073709551616.0

static void fn_int(cel_ctx *ctx, value *out, const value *args, int nargs) {
  PASS_ERRORS(args, nargs);
  const value *v = &args[0];
  switch (v->kind) {
  case CV_INT: *out = *v; return;
  case CV_UINT:
    *out = v->u > INT64_MAX ? cv_error(ctx, "integer overflow: %llu out of int range", (unsigned long long)v->u)
                            : cv_int((int64_t)v->u);
    return;
  case CV_DOUBLE:
    /* Both ends excluded, as in cel-go (and the conformance suite). */
    if (!(v->d > -TWO_63 && v->d < TWO_63)) {
      *out = cv_error(ctx, "integer overflow: %g out of int range", v->d);
      return;
    }
    *out = cv_int((int64_t)v->d); /* truncates toward zero */
    return;
  case CV_STRING: {
    bool neg;
    uint64_t mag;
    if (!cel_parse_decimal(v->s, v->n, true, (uint64_t)INT64_MAX, (uint64_t)INT64_MAX + 1, &neg, &mag)) {
      *out = cv_error(ctx, "cannot convert \"%.*s\" to int", (int)(v->n > 64 ? 64 : v->n), v->s);
      return;
    }
    /* -(2^63) is reached through the unsigned magnitude */
    *out = cv_int(neg ? (int64_t)(0 - mag) : (int64_t)mag);
    return;
  }
  case CV_TIMESTAMP: *out = cv_int(v->i); return;
  case CV_DURATION: *out = cv_int(v->i); return;
  default: *out = no_overload(ctx, "int", args, nargs); return;
  }
}

static void fn_uint(cel_ctx *ctx, value *out, const value *args, int nargs) {
  PASS_ERRORS(args, nargs);
  const value *v = &args[0];
  switch (v->kind) {
  case CV_UINT: *out = *v; return;
  case CV_INT:
    *out = v->i < 0 ? cv_error(ctx, "integer overflow: %lld out of uint range", (long long)v->i)
                    : cv_uint((uint64_t)v->i);
    return;
  case CV_DOUBLE:
    if (!(v->d >= 0 && v->d < TWO_64)) {
      *out = cv_error(ctx, "integer overflow: %g out of uint range", v->d);
      return;
    }
    *out = cv_uint((uint64_t)v->d);
    return;
  case CV_STRING: {
    bool neg;
    uint64_t mag;
    if (!cel_parse_decimal(v->s, v->n, false, UINT64_MAX, 0, &neg, &mag)) {
      *out = cv_error(ctx, "cannot convert \"%.*s\" to uint", (int)(v->n > 64 ? 64 : v->n), v->s);
      return;
    }
    *out = cv_uint(mag);
    return;
  }
  default: *out = no_overload(ctx, "uint", args, nargs); return;
  }
}

static void fn_double(cel_ctx *ctx, value *out, const value *args, int nargs) {
  PASS_ERRORS(args, nargs);
  const value *v = &args[0];
  switch (v->kind) {
  case CV_DOUBLE: *out = *v; return;
  case CV_INT: *out = cv_double((double)v->i); return;
  case CV_UINT: *out = cv_double((double)v->u); return;
  case CV_STRING: {
    double d;
    if (!parse_double(ctx, v->s, v->n, &d)) {
      *out = cv_error(ctx, "cannot convert \"%.*s\" to double", (int)(v->n > 64 ? 64 : v->n), v->s);
      return;
    }
    *out = cv_double(d);
    return;
  }
  default: *out = no_overload(ctx, "double", args, nargs); return;
  }
}

static void fn_string(cel_ctx *ctx, value *out, const value *args, int nargs) {
  PASS_ERRORS(args, nargs);
  cel_to_string(ctx, out, &args[0]);
}

static void fn_bytes(cel_ctx *ctx, value *out, const value *args, int nargs) {
  PASS_ERRORS(args, nargs);
  const value *v = &args[0];
  if (v->kind == CV_BYTES) *out = *v;
  else if (v->kind == CV_STRING) *out = cv_bytes(v->s, v->n);
  else *out = no_overload(ctx, "bytes", args, nargs);
}

static bool text_is(const value *v, const char *lit) {
  size_t n = strlen(lit);
  return v->n == n && memcmp(v->s, lit, n) == 0;
}

static void fn_bool(cel_ctx *ctx, value *out, const value *args, int nargs) {
  PASS_ERRORS(args, nargs);
  const value *v = &args[0];
  if (v->kind == CV_BOOL) {
    *out = *v;
    return;
  }
  if (v->kind != CV_STRING) {
    *out = no_overload(ctx, "bool", args, nargs);
    return;
  }
  /* The spellings Go's strconv.ParseBool accepts. */
  static const char *const truths[] = {"true", "True", "TRUE", "t", "T", "1"};
  static const char *const falsehoods[] = {"false", "False", "FALSE", "f", "F", "0"};
  for (size_t k = 0; k < sizeof truths / sizeof *truths; k++) {
    if (text_is(v, truths[k])) {
      *out = cv_bool(true);
      return;
    }
    if (text_is(v, falsehoods[k])) {
      *out = cv_bool(false);
      return;
    }
  }
  *out = cv_error(ctx, "cannot convert \"%.*s\" to bool", (int)(v->n > 64 ? 64 : v->n), v->s);
}

static void fn_dyn(cel_ctx *ctx, value *out, const value *args, int nargs) {
  (void)ctx;
  (void)nargs;
  *out = args[0];
}

static void fn_type(cel_ctx *ctx, value *out, const value *args, int nargs) {
  PASS_ERRORS(args, nargs);
  uint8_t k = args[0].kind;
  if (k > CV_TYPE) {
    *out = no_overload(ctx, "type", args, nargs);
    return;
  }
  *out = cv_type((cv_kind)k);
}

static void fn_timestamp(cel_ctx *ctx, value *out, const value *args, int nargs) {
  PASS_ERRORS(args, nargs);
  const value *v = &args[0];
  switch (v->kind) {
  case CV_TIMESTAMP: *out = *v; return;
  case CV_INT:
    if (v->i < CV_TS_MIN_SECS || v->i > CV_TS_MAX_SECS) {
      *out = cv_error(ctx, "integer overflow: timestamp out of range");
      return;
    }
    *out = cv_timestamp(v->i, 0);
    return;
  case CV_STRING: {
    int64_t secs;
    uint32_t nanos;
    if (!cel_parse_timestamp(v->s, v->n, &secs, &nanos)) {
      *out = cv_error(ctx, "invalid timestamp \"%.*s\"", (int)(v->n > 64 ? 64 : v->n), v->s);
      return;
    }
    *out = cv_timestamp(secs, nanos);
    return;
  }
  default: *out = no_overload(ctx, "timestamp", args, nargs); return;
  }
}

static void fn_duration(cel_ctx *ctx, value *out, const value *args, int nargs) {
  PASS_ERRORS(args, nargs);
  const value *v = &args[0];
  switch (v->kind) {
  case CV_DURATION: *out = *v; return;
  case CV_STRING: {
    int64_t ns;
    if (!cel_parse_duration(v->s, v->n, &ns)) {
      *out = cv_error(ctx, "invalid duration \"%.*s\"", (int)(v->n > 64 ? 64 : v->n), v->s);
      return;
    }
    *out = cv_duration(ns);
    return;
  }
  default: *out = no_overload(ctx, "duration", args, nargs); return;
  }
}

/* ---- type names --------------------------------------------------------------------------- */

bool cel_type_by_name(const char *name, value *out) {
  static const struct {
    const char *name;
    cv_kind kind;
  } names[] = {
      {"int", CV_INT},
      {"uint", CV_UINT},
      {"double", CV_DOUBLE},
      {"bool", CV_BOOL},
      {"string", CV_STRING},
      {"bytes", CV_BYTES},
      {"list", CV_LIST},
      {"map", CV_MAP},
      {"null_type", CV_NULL},
      {"type", CV_TYPE},
      {"google.protobuf.Timestamp", CV_TIMESTAMP},
      {"google.protobuf.Duration", CV_DURATION},
  };
  for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
    if (strcmp(name, names[k].name) == 0) {
      *out = cv_type(names[k].kind);
      return true;
    }
  }
  return false;
}

/* ---- the table -------------------------------------------------------------------------------- */

static const cel_builtin cel_builtins_core[] = {
    /* name        member min max errors_in fn */
    {"size", 0, 1, 1, 0, fn_size},
    {"size", 1, 1, 1, 0, fn_size},
    {"contains", 1, 2, 2, 0, fn_contains},
    {"startsWith", 1, 2, 2, 0, fn_starts_with},
    {"endsWith", 1, 2, 2, 0, fn_ends_with},
    {"int", 0, 1, 1, 0, fn_int},
    {"uint", 0, 1, 1, 0, fn_uint},
    {"double", 0, 1, 1, 0, fn_double},
    {"string", 0, 1, 1, 0, fn_string},
    {"bytes", 0, 1, 1, 0, fn_bytes},
    {"bool", 0, 1, 1, 0, fn_bool},
    {"dyn", 0, 1, 1, 0, fn_dyn},
    {"type", 0, 1, 1, 0, fn_type},
    {"timestamp", 0, 1, 1, 0, fn_timestamp},
    {"duration", 0, 1, 1, 0, fn_duration},
    {NULL, 0, 0, 0, 0, NULL},
};

static const cel_builtin *const builtin_tables[] = {
    cel_builtins_core,
    cel_builtins_time,
    cel_builtins_strings,
    cel_builtins_math,
    cel_builtins_net,
};
#define N_TABLES (sizeof builtin_tables / sizeof *builtin_tables)

const cel_builtin *cel_builtin_find(const char *name, bool member, int nargs) {
  for (size_t t = 0; t < N_TABLES; t++) {
    for (const cel_builtin *b = builtin_tables[t]; b->name; b++) {
      if ((b->member != 0) == member && nargs >= b->min_args && nargs <= b->max_args && strcmp(b->name, name) == 0)
        return b;
    }
  }
  return NULL;
}

int cel_builtin_count(void) {
  int n = 0;
  for (size_t t = 0; t < N_TABLES; t++)
    for (const cel_builtin *b = builtin_tables[t]; b->name; b++) n++;
  return n;
}

const cel_builtin *cel_builtin_at(int i) {
  if (i < 0) return NULL;
  for (size_t t = 0; t < N_TABLES; t++) {
    for (const cel_builtin *b = builtin_tables[t]; b->name; b++) {
      if (i == 0) return b;
      i--;
    }
  }
  return NULL;
}
