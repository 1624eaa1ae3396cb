/*
 * cel_math.c - the CEL math extension (cel-go ext/math, latest version):
 * math.greatest, math.least, rounding, sign and absolute value, the
 * floating-point predicates, the bitwise functions and math.sqrt. Names
 * carry their namespace ("math.ceil") and are called as globals.
 */
#include <math.h>

#include "cel.h"
#include "cel_types.h"

static void no_overload(cel_ctx *ctx, value *out, const char *name) {
  *out = cv_error(ctx, "no matching overload: %s", name);
}

static bool is_number(const value *v) {
  return v->kind == CV_INT || v->kind == CV_UINT || v->kind == CV_DOUBLE;
}

/* math.greatest / math.least: of the arguments, or of the elements of a
 * single list argument, the first greatest (least) by CEL's numeric
 * ordering across int, uint and double, returned as it is. */
static void extremum(cel_ctx *ctx, value *out, const value *args, int nargs, const char *name,
                     int want) {
  const value *items = args;
  size_t n = (size_t)nargs;
  if (nargs == 1 && args[0].kind == CV_LIST) {
    items = args[0].items;
    n = args[0].n;
    if (n == 0) {
      *out = cv_error(ctx, "%s(list) argument must not be empty", name);
      return;
    }
  }
  const value *best = &items[0];
  for (size_t i = 0; i < n; i++) {
    if (!is_number(&items[i])) {
      no_overload(ctx, out, name);
      return;
    }
  }
  for (size_t i = 1; i < n; i++) {
    int cmp;
    if (!cel_compare(&items[i], best, &cmp)) {
      no_overload(ctx, out, name);
      return;
    }
    if (cmp == CEL_CMP_UNORDERED) {
      *out = cv_error(ctx, "%s: NaN values cannot be ordered", name);
      return;
    }
    if (cmp == want) best = &items[i];
  }
  *out = *best;
}

static void math_greatest(cel_ctx *ctx, value *out, const value *args, int nargs) {
  extremum(ctx, out, args, nargs, "math.greatest", 1);
}

static void math_least(cel_ctx *ctx, value *out, const value *args, int nargs) {
  extremum(ctx, out, args, nargs, "math.least", -1);
}

/* Functions of one double. */
#define DOUBLE_FN(fn, name, expr)                                          \
  static void fn(cel_ctx *ctx, value *out, const value *args, int nargs) { \
    (void)nargs;                                                           \
    if (args[0].kind != CV_DOUBLE) {                                       \
      no_overload(ctx, out, name);                                         \
      return;                                                              \
    }                                                                      \
    double x = args[0].d;                                                  \
    *out = expr;                                                           \
  }

DOUBLE_FN(math_ceil, "math.ceil", cv_double(ceil(x)))
DOUBLE_FN(math_floor, "math.floor", cv_double(floor(x)))
DOUBLE_FN(math_round, "math.round", cv_double(round(x))) /* halves away from zero */
DOUBLE_FN(math_trunc, "math.trunc", cv_double(trunc(x)))
DOUBLE_FN(math_is_inf, "math.isInf", cv_bool(isinf(x)))
DOUBLE_FN(math_is_nan, "math.isNaN", cv_bool(isnan(x)))
DOUBLE_FN(math_is_finite, "math.isFinite", cv_bool(isfinite(x)))

static void math_abs(cel_ctx *ctx, value *out, const value *args, int nargs) {
  (void)nargs;
  const value *v = &args[0];
  switch (v->kind) {
  case CV_INT:
    if (v->i == INT64_MIN) {
      *out = cv_error(ctx, "integer overflow");
      return;
    }
    *out = cv_int(v->i < 0 ? -v->i : v->i);
    return;
  case CV_UINT: *out = *v; return;
  case CV_DOUBLE: *out = cv_double(fabs(v->d)); return;
  default: no_overload(ctx, out, "math.abs");
  }
}

/* -1, 0 or 1 in the argument's type; NaN stays NaN. */
static void math_sign(cel_ctx *ctx, value *out, const value *args, int nargs) {
  (void)nargs;
  const value *v = &args[0];
  switch (v->kind) {
  case CV_INT: *out = cv_int(v->i > 0 ? 1 : v->i < 0 ? -1 : 0); return;
  case CV_UINT: *out = cv_uint(v->u > 0); return;
  case CV_DOUBLE:
    *out = isnan(v->d) ? *v : cv_double(v->d > 0 ? 1.0 : v->d < 0 ? -1.0 : 0.0);
    return;
  default: no_overload(ctx, out, "math.sign");
  }
}

/* sqrt of any number, as a double (negative numbers give NaN). */
static void math_sqrt(cel_ctx *ctx, value *out, const value *args, int nargs) {
  (void)nargs;
  const value *v = &args[0];
  switch (v->kind) {
  case CV_INT: *out = cv_double(sqrt((double)v->i)); return;
  case CV_UINT: *out = cv_double(sqrt((double)v->u)); return;
  case CV_DOUBLE: *out = cv_double(sqrt(v->d)); return;
  default: no_overload(ctx, out, "math.sqrt");
  }
}

/* ---- bitwise ------------------------------------------------------------------ */

typedef enum bit_op { BIT_AND, BIT_OR, BIT_XOR } bit_op;

static uint64_t bit_apply(bit_op op, uint64_t a, uint64_t b) {
  return op == BIT_AND ? (a & b) : op == BIT_OR ? (a | b) : (a ^ b);
}

/* int op int or uint op uint (no mixing, as in cel-go). */
static void bitwise(cel_ctx *ctx, value *out, const value *args, bit_op op, const char *name) {
  const value *a = &args[0], *b = &args[1];
  if (a->kind == CV_INT && b->kind == CV_INT)
    *out = cv_int((int64_t)bit_apply(op, (uint64_t)a->i, (uint64_t)b->i));
  else if (a->kind == CV_UINT && b->kind == CV_UINT)
    *out = cv_uint(bit_apply(op, a->u, b->u));
  else
    no_overload(ctx, out, name);
}

static void math_bit_and(cel_ctx *ctx, value *out, const value *args, int nargs) {
  (void)nargs;
  bitwise(ctx, out, args, BIT_AND, "math.bitAnd");
}

static void math_bit_or(cel_ctx *ctx, value *out, const value *args, int nargs) {
  (void)nargs;
  bitwise(ctx, out, args, BIT_OR, "math.bitOr");
}

static void math_bit_xor(cel_ctx *ctx, value *out, const value *args, int nargs) {
  (void)nargs;
  bitwise(ctx, out, args, BIT_XOR, "math.bitXor");
}

static void math_bit_not(cel_ctx *ctx, value *out, const value *args, int nargs) {
  (void)nargs;
  if (args[0].kind == CV_INT)
    *out = cv_int((int64_t) ~(uint64_t)args[0].i);
  else if (args[0].kind == CV_UINT)
    *out = cv_uint(~args[0].u);
  else
    no_overload(ctx, out, "math.bitNot");
}

/* Shifts of the 64-bit pattern: right shifts are logical for ints too, and
 * shifting by 64 or more gives 0. A negative shift is an error. */
static void bit_shift(cel_ctx *ctx, value *out, const value *args, bool left, const char *name) {
  const value *v = &args[0], *by = &args[1];
  if ((v->kind != CV_INT && v->kind != CV_UINT) || by->kind != CV_INT) {
    no_overload(ctx, out, name);
    return;
  }
  if (by->i < 0) {
    *out = cv_error(ctx, "%s() negative offset: %lld", name, (long long)by->i);
    return;
  }
  uint64_t bits = v->kind == CV_INT ? (uint64_t)v->i : v->u;
  uint64_t r = by->i >= 64 ? 0 : left ? bits << by->i : bits >> by->i;
  *out = v->kind == CV_INT ? cv_int((int64_t)r) : cv_uint(r);
}

static void math_bit_shift_left(cel_ctx *ctx, value *out, const value *args, int nargs) {
  (void)nargs;
  bit_shift(ctx, out, args, true, "math.bitShiftLeft");
}

static void math_bit_shift_right(cel_ctx *ctx, value *out, const value *args, int nargs) {
  (void)nargs;
  bit_shift(ctx, out, args, false, "math.bitShiftRight");
}

/* max_args 255: any number of arguments. */
const cel_builtin cel_builtins_math[] = {
    {"math.greatest", 0, 1, 255, 0, math_greatest},
    {"math.least", 0, 1, 255, 0, math_least},
    {"math.ceil", 0, 1, 1, 0, math_ceil},
    {"math.floor", 0, 1, 1, 0, math_floor},
    {"math.round", 0, 1, 1, 0, math_round},
    {"math.trunc", 0, 1, 1, 0, math_trunc},
    {"math.abs", 0, 1, 1, 0, math_abs},
    {"math.sign", 0, 1, 1, 0, math_sign},
    {"math.isInf", 0, 1, 1, 0, math_is_inf},
    {"math.isNaN", 0, 1, 1, 0, math_is_nan},
    {"math.isFinite", 0, 1, 1, 0, math_is_finite},
    {"math.bitAnd", 0, 2, 2, 0, math_bit_and},
    {"math.bitOr", 0, 2, 2, 0, math_bit_or},
    {"math.bitXor", 0, 2, 2, 0, math_bit_xor},
    {"math.bitNot", 0, 1, 1, 0, math_bit_not},
    {"math.bitShiftLeft", 0, 2, 2, 0, math_bit_shift_left},
    {"math.bitShiftRight", 0, 2, 2, 0, math_bit_shift_right},
    {"math.sqrt", 0, 1, 1, 0, math_sqrt},
    {NULL, 0, 0, 0, 0, NULL},
};
