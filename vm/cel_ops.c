/*
 * cel_ops.c - CEL operators on runtime values: arithmetic, equality,
 * ordering, membership, indexing and field selection (see cel.h).
 *
 * Numbers follow cel-spec: int and uint arithmetic report overflow, double
 * arithmetic is IEEE, and arithmetic never mixes kinds (1 + 1.0 is an
 * error) while equality and ordering compare int, uint and double with one
 * another. An int or uint meets a double as the nearest double, as the
 * conformance suite (v0.25.1) requires: 9223372036854775807 ==
 * 9223372036854775808.0 there.
 */
#include "cel.h"

#include <math.h>
#include <string.h>

#include "cel_types.h"

#define NANOS_PER_SEC 1000000000LL

static inline bool is_numeric(uint8_t k) { return k == CV_INT || k == CV_UINT || k == CV_DOUBLE; }

static const char *binop_text(cel_binop op) {
  switch (op) {
  case CEL_ADD: return "+";
  case CEL_SUB: return "-";
  case CEL_MUL: return "*";
  case CEL_DIV: return "/";
  case CEL_MOD: return "%";
  case CEL_EQ: return "==";
  case CEL_NE: return "!=";
  case CEL_LT: return "<";
  case CEL_LE: return "<=";
  case CEL_GT: return ">";
  case CEL_GE: return ">=";
  case CEL_IN: return "in";
  case CEL_INDEX: return "[]";
  }
  return "?";
}

static value no_overload2(cel_ctx *ctx, cel_binop op, const value *a, const value *b) {
  if (op == CEL_INDEX)
    return cv_error(ctx, "no matching overload: %s[%s]", cv_kind_name(a->kind), cv_kind_name(b->kind));
  return cv_error(ctx, "no matching overload: %s %s %s", cv_kind_name(a->kind), binop_text(op),
                  cv_kind_name(b->kind));
}

static value overflow(cel_ctx *ctx) { return cv_error(ctx, "integer overflow"); }
static value div_zero(cel_ctx *ctx) { return cv_error(ctx, "division by zero"); }

static void *scratch_alloc(cel_ctx *ctx, size_t n) {
  return ctx && ctx->scratch ? arena_alloc(ctx->scratch, n) : NULL;
}

/* ---- ordering and equality --------------------------------------------- */

static inline int cmp_i64(int64_t x, int64_t y) { return (x > y) - (x < y); }
static inline int cmp_u64(uint64_t x, uint64_t y) { return (x > y) - (x < y); }

static inline int cmp_f64(double x, double y) {
  if (x < y) return -1;
  if (x > y) return 1;
  if (x == y) return 0;
  return CEL_CMP_UNORDERED;
}

static int cmp_bytes(const value *a, const value *b) {
  uint32_t n = a->n < b->n ? a->n : b->n;
  int c = n ? memcmp(a->s, b->s, n) : 0;
  if (c) return c < 0 ? -1 : 1;
  return cmp_u64(a->n, b->n);
}

/* Two numbers of different kinds. */
static int cmp_mixed_numeric(const value *a, const value *b) {
  switch (a->kind) {
  case CV_INT:
    if (b->kind == CV_UINT) return a->i < 0 ? -1 : cmp_u64((uint64_t)a->i, b->u);
    return cmp_f64((double)a->i, b->d);
  case CV_UINT:
    if (b->kind == CV_INT) return b->i < 0 ? 1 : cmp_u64(a->u, (uint64_t)b->i);
    return cmp_f64((double)a->u, b->d);
  default: /* CV_DOUBLE */
    if (b->kind == CV_INT) return cmp_f64(a->d, (double)b->i);
    return cmp_f64(a->d, (double)b->u);
  }
}

bool cel_compare(const value *a, const value *b, int *cmp) {
  if (a->kind == b->kind) {
    switch (a->kind) {
    case CV_INT: *cmp = cmp_i64(a->i, b->i); return true;
    case CV_UINT: *cmp = cmp_u64(a->u, b->u); return true;
    case CV_DOUBLE: *cmp = cmp_f64(a->d, b->d); return true;
    case CV_BOOL: *cmp = (int)a->b - (int)b->b; return true;
    case CV_STRING: /* byte order of UTF-8 is code point order */
    case CV_BYTES: *cmp = cmp_bytes(a, b); return true;
    case CV_TIMESTAMP:
      *cmp = a->i != b->i ? cmp_i64(a->i, b->i) : cmp_u64(a->n, b->n);
      return true;
    case CV_DURATION: *cmp = cmp_i64(a->i, b->i); return true;
    default: return false;
    }
  }
  if (is_numeric(a->kind) && is_numeric(b->kind)) {
    *cmp = cmp_mixed_numeric(a, b);
    return true;
  }
  return false;
}

static const value *map_find(const value *m, const value *key);

bool cel_equal(const value *a, const value *b) {
  if (a->kind != b->kind) {
    if (is_numeric(a->kind) && is_numeric(b->kind)) return cmp_mixed_numeric(a, b) == 0;
    return false;
  }
  switch (a->kind) {
  case CV_NULL: return true;
  case CV_BOOL: return a->b == b->b;
  case CV_INT: return a->i == b->i;
  case CV_UINT: return a->u == b->u;
  case CV_DOUBLE: return a->d == b->d;
  case CV_STRING:
  case CV_BYTES: return a->n == b->n && (a->n == 0 || memcmp(a->s, b->s, a->n) == 0);
  case CV_TIMESTAMP: return a->i == b->i && a->n == b->n;
  case CV_DURATION: return a->i == b->i;
  case CV_TYPE: return a->i == b->i;
  case CV_LIST:
    if (a->n != b->n) return false;
    for (uint32_t k = 0; k < a->n; k++)
      if (!cel_equal(&a->items[k], &b->items[k])) return false;
    return true;
  case CV_MAP:
    if (a->n != b->n) return false;
    for (uint32_t k = 0; k < a->n; k++) {
      const value *v = map_find(b, &a->items[2 * k]);
      if (!v || !cel_equal(&a->items[2 * k + 1], v)) return false;
    }
    return true;
  default: return false; /* errors and VM-internal values equal nothing */
  }
}

/* The value under `key` in map `m`, by CEL equality (so 1, 1u and 1.0 find
 * the same entry), or NULL. */
static const value *map_find(const value *m, const value *key) {
  const value *kv = m->items;
  uint32_t n = m->n;
  if (key->kind == CV_STRING) {
    for (uint32_t k = 0; k < n; k++) {
      const value *mk = &kv[2 * k];
      if (mk->kind == CV_STRING && mk->n == key->n && (key->n == 0 || memcmp(mk->s, key->s, key->n) == 0))
        return &kv[2 * k + 1];
    }
    return NULL;
  }
  for (uint32_t k = 0; k < n; k++)
    if (cel_equal(&kv[2 * k], key)) return &kv[2 * k + 1];
  return NULL;
}

/* ---- arithmetic ------------------------------------------------------------ */

/* Joins two strings or two byte strings into scratch memory (NUL-terminated
 * for the convenience of C callers). */
static value concat_text(cel_ctx *ctx, const value *a, const value *b) {
  if (a->n == 0) return *b;
  if (b->n == 0) return *a;
  uint64_t n = (uint64_t)a->n + b->n;
  if (n > UINT32_MAX) return cv_error(ctx, "%s too long", a->kind == CV_STRING ? "string" : "bytes");
  char *p = scratch_alloc(ctx, (size_t)n + 1);
  if (!p) return cv_error(ctx, "out of memory");
  memcpy(p, a->s, a->n);
  memcpy(p + a->n, b->s, b->n);
  p[n] = '\0';
  value r = *a;
  r.s = p;
  r.n = (uint32_t)n;
  return r;
}

static value concat_list(cel_ctx *ctx, const value *a, const value *b) {
  if (a->n == 0) return *b;
  if (b->n == 0) return *a;
  uint64_t n = (uint64_t)a->n + b->n;
  if (n > UINT32_MAX / sizeof(value)) return cv_error(ctx, "list too long");
  value *items = scratch_alloc(ctx, (size_t)n * sizeof(value));
  if (!items) return cv_error(ctx, "out of memory");
  memcpy(items, a->items, a->n * sizeof(value));
  memcpy(items + a->n, b->items, b->n * sizeof(value));
  return cv_list(items, (uint32_t)n);
}

/* secs.nanos + sign * dur, within the timestamp range. */
static value timestamp_shift(cel_ctx *ctx, int64_t secs, int64_t nanos, int64_t dur, int sign) {
  int64_t q = dur / NANOS_PER_SEC, r = dur % NANOS_PER_SEC;
  if (sign < 0) {
    q = -q; /* |q| < 2^34: cannot overflow */
    r = -r;
  }
  int64_t s, ns = nanos + r;
  if (ns < 0) {
    ns += NANOS_PER_SEC;
    q--;
  } else if (ns >= NANOS_PER_SEC) {
    ns -= NANOS_PER_SEC;
    q++;
  }
  if (__builtin_add_overflow(secs, q, &s) || s < CV_TS_MIN_SECS || s > CV_TS_MAX_SECS)
    return cv_error(ctx, "integer overflow: timestamp out of range");
  return cv_timestamp(s, (uint32_t)ns);
}

static value timestamp_diff(cel_ctx *ctx, const value *a, const value *b) {
  int64_t ds, dn = (int64_t)a->n - (int64_t)b->n, r;
  if (__builtin_sub_overflow(a->i, b->i, &ds)) return overflow(ctx);
  /* Give both parts the same sign, so that the product overflows only when
   * the sum does. */
  if (ds > 0 && dn < 0) {
    ds--;
    dn += NANOS_PER_SEC;
  } else if (ds < 0 && dn > 0) {
    ds++;
    dn -= NANOS_PER_SEC;
  }
  if (__builtin_mul_overflow(ds, NANOS_PER_SEC, &r) || __builtin_add_overflow(r, dn, &r))
    return overflow(ctx);
  return cv_duration(r);
}

static value arith_int(cel_ctx *ctx, cel_binop op, int64_t x, int64_t y) {
  int64_t r;
  switch (op) {
  case CEL_ADD: if (__builtin_add_overflow(x, y, &r)) return overflow(ctx); break;
  case CEL_SUB: if (__builtin_sub_overflow(x, y, &r)) return overflow(ctx); break;
  case CEL_MUL: if (__builtin_mul_overflow(x, y, &r)) return overflow(ctx); break;
  case CEL_DIV:
    if (y == 0) return div_zero(ctx);
    if (x == INT64_MIN && y == -1) return overflow(ctx);
    r = x / y;
    break;
  default: /* CEL_MOD */
    if (y == 0) return div_zero(ctx);
    if (x == INT64_MIN && y == -1) return overflow(ctx);
    r = x % y;
    break;
  }
  return cv_int(r);
}

static value arith_uint(cel_ctx *ctx, cel_binop op, uint64_t x, uint64_t y) {
  uint64_t r;
  switch (op) {
  case CEL_ADD: if (__builtin_add_overflow(x, y, &r)) return overflow(ctx); break;
  case CEL_SUB: if (__builtin_sub_overflow(x, y, &r)) return overflow(ctx); break;
  case CEL_MUL: if (__builtin_mul_overflow(x, y, &r)) return overflow(ctx); break;
  case CEL_DIV:
    if (y == 0) return div_zero(ctx);
    r = x / y;
    break;
  default: /* CEL_MOD */
    if (y == 0) return div_zero(ctx);
    r = x % y;
    break;
  }
  return cv_uint(r);
}

/* + - * / % on operands that are not both int. */
static value arith(cel_ctx *ctx, cel_binop op, const value *a, const value *b) {
  uint8_t ka = a->kind, kb = b->kind;
  if (ka == kb) {
    switch (ka) {
    case CV_INT: return arith_int(ctx, op, a->i, b->i);
    case CV_UINT: return arith_uint(ctx, op, a->u, b->u);
    case CV_DOUBLE:
      switch (op) {
      case CEL_ADD: return cv_double(a->d + b->d);
      case CEL_SUB: return cv_double(a->d - b->d);
      case CEL_MUL: return cv_double(a->d * b->d);
      case CEL_DIV: return cv_double(a->d / b->d);
      default: break; /* CEL has no double % */
      }
      break;
    case CV_STRING:
    case CV_BYTES:
      if (op == CEL_ADD) return concat_text(ctx, a, b);
      break;
    case CV_LIST:
      if (op == CEL_ADD) return concat_list(ctx, a, b);
      break;
    case CV_DURATION: {
      int64_t r;
      if (op == CEL_ADD) return __builtin_add_overflow(a->i, b->i, &r) ? overflow(ctx) : cv_duration(r);
      if (op == CEL_SUB) return __builtin_sub_overflow(a->i, b->i, &r) ? overflow(ctx) : cv_duration(r);
      break;
    }
    case CV_TIMESTAMP:
      if (op == CEL_SUB) return timestamp_diff(ctx, a, b);
      break;
    default: break;
    }
  } else if (ka == CV_TIMESTAMP && kb == CV_DURATION) {
    if (op == CEL_ADD) return timestamp_shift(ctx, a->i, a->n, b->i, 1);
    if (op == CEL_SUB) return timestamp_shift(ctx, a->i, a->n, b->i, -1);
  } else if (ka == CV_DURATION && kb == CV_TIMESTAMP) {
    if (op == CEL_ADD) return timestamp_shift(ctx, b->i, b->n, a->i, 1);
  }
  return no_overload2(ctx, op, a, b);
}

/* ---- membership and indexing ------------------------------------------------ */

static value key_missing(cel_ctx *ctx, const value *key) {
  value text, e;
  if (key->kind == CV_STRING) {
    text = *key;
  } else {
    cel_to_string(ctx, &text, key);
    if (text.kind != CV_STRING) text = cv_string("?", 1);
  }
  e = cv_error(ctx, "no such key: %.*s", (int)text.n, text.s);
  if (e.n >= 12 && memcmp(e.s, "no such key:", 12) == 0) e.flag = CV_ERR_ABSENT; /* not when out of memory */
  return e;
}

static bool is_map_key_kind(uint8_t k) {
  return k == CV_STRING || k == CV_INT || k == CV_UINT || k == CV_BOOL || k == CV_DOUBLE;
}

static value list_index(cel_ctx *ctx, const value *list, const value *idx) {
  uint32_t n = list->n;
  switch (idx->kind) {
  case CV_INT:
    if (idx->i < 0 || idx->i >= (int64_t)n)
      return cv_error(ctx, "index out of range: %lld (size %u)", (long long)idx->i, n);
    return list->items[idx->i];
  case CV_UINT:
    if (idx->u >= n) return cv_error(ctx, "index out of range: %llu (size %u)", (unsigned long long)idx->u, n);
    return list->items[idx->u];
  case CV_DOUBLE: {
    double d = idx->d;
    if (!(d == trunc(d))) return cv_error(ctx, "invalid list index: %g is not an integer", d);
    if (d < 0 || d >= (double)n) return cv_error(ctx, "index out of range: %.17g (size %u)", d, n);
    return list->items[(uint32_t)d];
  }
  default: return no_overload2(ctx, CEL_INDEX, list, idx);
  }
}

static value member_of(cel_ctx *ctx, const value *elem, const value *coll) {
  if (coll->kind == CV_LIST) {
    for (uint32_t k = 0; k < coll->n; k++)
      if (cel_equal(elem, &coll->items[k])) return cv_bool(true);
    return cv_bool(false);
  }
  if (coll->kind == CV_MAP) return cv_bool(map_find(coll, elem) != NULL);
  value r;
  if (coll->kind == CV_BYTES && cel_net_in(ctx, &r, elem, coll)) return r; /* ip(a) in cidr(p) */
  return no_overload2(ctx, CEL_IN, elem, coll);
}

/* ---- entry points -------------------------------------------------------------- */

static value compare_op(cel_ctx *ctx, cel_binop op, const value *a, const value *b) {
  int c;
  if (!cel_compare(a, b, &c)) return no_overload2(ctx, op, a, b);
  switch (op) {
  case CEL_LT: return cv_bool(c == -1);
  case CEL_LE: return cv_bool(c == -1 || c == 0);
  case CEL_GT: return cv_bool(c == 1);
  default: return cv_bool(c == 1 || c == 0); /* CEL_GE */
  }
}

void cel_binary(cel_ctx *ctx, cel_binop op, value *out, const value *a, const value *b) {
  /* The common cases first: two ints, two strings compared for equality. */
  if (a->kind == CV_INT && b->kind == CV_INT) {
    int64_t x = a->i, y = b->i;
    switch (op) {
    case CEL_EQ: *out = cv_bool(x == y); return;
    case CEL_NE: *out = cv_bool(x != y); return;
    case CEL_LT: *out = cv_bool(x < y); return;
    case CEL_LE: *out = cv_bool(x <= y); return;
    case CEL_GT: *out = cv_bool(x > y); return;
    case CEL_GE: *out = cv_bool(x >= y); return;
    case CEL_ADD: case CEL_SUB: case CEL_MUL: case CEL_DIV: case CEL_MOD:
      *out = arith_int(ctx, op, x, y);
      return;
    default: break;
    }
  }
  if (a->kind == CV_STRING && b->kind == CV_STRING && (op == CEL_EQ || op == CEL_NE)) {
    bool eq = a->n == b->n && (a->n == 0 || memcmp(a->s, b->s, a->n) == 0);
    *out = cv_bool(eq == (op == CEL_EQ));
    return;
  }
  if (a->kind == CV_ERROR) {
    *out = *a;
    return;
  }
  if (b->kind == CV_ERROR) {
    *out = *b;
    return;
  }
  value r;
  switch (op) {
  case CEL_ADD: case CEL_SUB: case CEL_MUL: case CEL_DIV: case CEL_MOD:
    r = arith(ctx, op, a, b);
    break;
  case CEL_EQ: r = cv_bool(cel_equal(a, b)); break;
  case CEL_NE: r = cv_bool(!cel_equal(a, b)); break;
  case CEL_LT: case CEL_LE: case CEL_GT: case CEL_GE:
    r = compare_op(ctx, op, a, b);
    break;
  case CEL_IN: r = member_of(ctx, a, b); break;
  case CEL_INDEX:
    if (a->kind == CV_LIST) {
      r = list_index(ctx, a, b);
    } else if (a->kind == CV_MAP && is_map_key_kind(b->kind)) {
      const value *v = map_find(a, b);
      r = v ? *v : key_missing(ctx, b);
    } else {
      r = no_overload2(ctx, op, a, b);
    }
    break;
  default: r = cv_error(ctx, "no matching overload: unknown operator"); break;
  }
  *out = r;
}

void cel_negate(cel_ctx *ctx, value *out, const value *a) {
  switch (a->kind) {
  case CV_INT:
    *out = a->i == INT64_MIN ? overflow(ctx) : cv_int(-a->i);
    return;
  case CV_DOUBLE: *out = cv_double(-a->d); return;
  case CV_DURATION:
    *out = a->i == INT64_MIN ? overflow(ctx) : cv_duration(-a->i);
    return;
  case CV_ERROR: *out = *a; return;
  default: *out = cv_error(ctx, "no matching overload: -%s", cv_kind_name(a->kind)); return;
  }
}

void cel_not(cel_ctx *ctx, value *out, const value *a) {
  if (a->kind == CV_BOOL) *out = cv_bool(!a->b);
  else if (a->kind == CV_ERROR) *out = *a;
  else *out = cv_error(ctx, "no matching overload: !%s", cv_kind_name(a->kind));
}

static const value *map_find_name(const value *m, const char *name, uint32_t n) {
  const value *kv = m->items;
  for (uint32_t k = 0; k < m->n; k++) {
    const value *key = &kv[2 * k];
    if (key->kind == CV_STRING && key->n == n && (n == 0 || memcmp(key->s, name, n) == 0)) return &kv[2 * k + 1];
  }
  return NULL;
}

void cel_select(cel_ctx *ctx, value *out, const value *m, const char *name, uint32_t n) {
  if (m->kind == CV_MAP) {
    const value *v = map_find_name(m, name, n);
    if (v) {
      *out = *v;
    } else {
      value key = cv_string(name, n);
      *out = key_missing(ctx, &key);
    }
  } else if (m->kind == CV_ERROR) {
    *out = *m;
  } else {
    *out = cv_error(ctx, "no matching overload: field selection .%.*s on %s", (int)n, name, cv_kind_name(m->kind));
  }
}

void cel_has_field(cel_ctx *ctx, value *out, const value *m, const char *name, uint32_t n) {
  if (m->kind == CV_MAP) *out = cv_bool(map_find_name(m, name, n) != NULL);
  else if (m->kind == CV_ERROR) *out = *m;
  else *out = cv_error(ctx, "no matching overload: has(.%.*s) on %s", (int)n, name, cv_kind_name(m->kind));
}
