/*
 * test_cel_ops.c - CEL operators, conversions and text forms on runtime
 * values. Each table row gives the expected result as canonical value text
 * (../shared/cel/README.md) or "error:PREFIX" for an error whose message
 * starts with PREFIX. Many rows mirror the CEL conformance cases
 * (integer_math, fp_math, comparisons, conversions, lists, string, fields).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cel.h"
#include "cel_types.h"

/* ---- value literals usable in static tables ---------------------------------------- */
#define NUL {.kind = CV_NULL}
#define BO(x) {.kind = CV_BOOL, .b = (x)}
#define I(x) {.kind = CV_INT, .i = (x)}
#define U(x) {.kind = CV_UINT, .u = (x)}
#define D(x) {.kind = CV_DOUBLE, .d = (x)}
#define S(x) {.kind = CV_STRING, .n = sizeof(x) - 1, .s = (x)}
#define BY(x) {.kind = CV_BYTES, .n = sizeof(x) - 1, .s = (x)}
#define TS(sec, ns) {.kind = CV_TIMESTAMP, .n = (ns), .i = (sec)}
#define DUR(ns) {.kind = CV_DURATION, .i = (ns)}
#define TY(k) {.kind = CV_TYPE, .i = (k)}
#define LIST(...) {.kind = CV_LIST, .n = sizeof((const value[]){__VA_ARGS__}) / sizeof(value), .items = (const value[]){__VA_ARGS__}}
#define EMPTY_LIST {.kind = CV_LIST, .n = 0}
#define MAP(...) {.kind = CV_MAP, .n = sizeof((const value[]){__VA_ARGS__}) / sizeof(value) / 2, .items = (const value[]){__VA_ARGS__}}
#define EMPTY_MAP {.kind = CV_MAP, .n = 0}

#define SEC 1000000000LL
#define TS_2009 1234567890LL /* 2009-02-13T23:31:30Z */

/* ---- rendering and checking ------------------------------------------------------------ */

typedef struct fixture {
  arena scratch;
  cel_ctx ctx;
} fixture;

static int setup(void **state) {
  fixture *f = test_malloc(sizeof *f);
  arena_init(&f->scratch, 256);
  f->ctx.scratch = &f->scratch;
  f->ctx.regex_match_limit = 0;
  f->ctx.regex_cache = NULL;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  arena_free(&f->scratch);
  test_free(f);
  return 0;
}

static void render(const value *v, char *buf, size_t cap) {
  outbuf o;
  ob_init_fixed(&o, buf, cap);
  cel_canon(&o, v);
  ob_cstr(&o);
}

/* Does `got` match `want` (canonical text, or "error:PREFIX")? Reports a
 * mismatch and returns false. */
static bool matches(const char *what, const value *got, const char *want) {
  char buf[512];
  render(got, buf, sizeof buf);
  bool ok;
  if (strncmp(want, "error:", 6) == 0) ok = got->kind == CV_ERROR && strncmp(buf, want, strlen(want)) == 0;
  else ok = strcmp(buf, want) == 0;
  if (!ok) print_error("%s: got %s, want %s\n", what, buf, want);
  return ok;
}

/* ---- binary operators ---------------------------------------------------------------------- */

typedef struct bin_case {
  const char *desc;
  cel_binop op;
  value a, b;
  const char *want;
} bin_case;

#define NAN_ NAN
#define INF_ INFINITY

static const bin_case bin_cases[] = {
    /* int64 math */
    {"40 + 2", CEL_ADD, I(40), I(2), "i:42"},
    {"42 + -7", CEL_ADD, I(42), I(-7), "i:35"},
    {"42 - -22", CEL_SUB, I(42), I(-22), "i:64"},
    {"40 * -2", CEL_MUL, I(40), I(-2), "i:-80"},
    {"-20 / 2", CEL_DIV, I(-20), I(2), "i:-10"},
    {"-7 / 2 truncates", CEL_DIV, I(-7), I(2), "i:-3"},
    {"47 % 5", CEL_MOD, I(47), I(5), "i:2"},
    {"43 % -5", CEL_MOD, I(43), I(-5), "i:3"},
    {"-42 % -5", CEL_MOD, I(-42), I(-5), "i:-2"},
    {"-3 % 5", CEL_MOD, I(-3), I(5), "i:-3"},
    {"34 % 0", CEL_MOD, I(34), I(0), "error:division by zero"},
    {"15 / 0", CEL_DIV, I(15), I(0), "error:division by zero"},
    {"max + 1", CEL_ADD, I(INT64_MAX), I(1), "error:integer overflow"},
    {"min - 1", CEL_SUB, I(INT64_MIN), I(1), "error:integer overflow"},
    {"min + -1", CEL_ADD, I(INT64_MIN), I(-1), "error:integer overflow"},
    {"1 - -max", CEL_SUB, I(1), I(-INT64_MAX), "error:integer overflow"},
    {"min * -1", CEL_MUL, I(INT64_MIN), I(-1), "error:integer overflow"},
    {"min / -1", CEL_DIV, I(INT64_MIN), I(-1), "error:integer overflow"},
    {"min % -1", CEL_MOD, I(INT64_MIN), I(-1), "error:integer overflow"},
    {"5e9 * 5e9", CEL_MUL, I(5000000000), I(5000000000), "error:integer overflow"},
    {"-5e9 * 5e9", CEL_MUL, I(-5000000000), I(5000000000), "error:integer overflow"},
    {"max - max", CEL_SUB, I(INT64_MAX), I(INT64_MAX), "i:0"},
    {"min + max", CEL_ADD, I(INT64_MIN), I(INT64_MAX), "i:-1"},
    /* uint64 math */
    {"42u + 2u", CEL_ADD, U(42), U(2), "u:44"},
    {"42u - 12u", CEL_SUB, U(42), U(12), "u:30"},
    {"40u * 2u", CEL_MUL, U(40), U(2), "u:80"},
    {"60u / 2u", CEL_DIV, U(60), U(2), "u:30"},
    {"42u % 5u", CEL_MOD, U(42), U(5), "u:2"},
    {"34u % 0u", CEL_MOD, U(34), U(0), "error:division by zero"},
    {"15u / 0u", CEL_DIV, U(15), U(0), "error:division by zero"},
    {"maxu + 1u", CEL_ADD, U(UINT64_MAX), U(1), "error:integer overflow"},
    {"0u - 1u", CEL_SUB, U(0), U(1), "error:integer overflow"},
    {"5e9u * 5e9u", CEL_MUL, U(5000000000), U(5000000000), "error:integer overflow"},
    {"maxu / 1u", CEL_DIV, U(UINT64_MAX), U(1), "u:18446744073709551615"},
    /* double math */
    {"4.25 + 15.25", CEL_ADD, D(4.25), D(15.25), "d:19.5"},
    {"17.75 + -7.75", CEL_ADD, D(17.75), D(-7.75), "d:10"},
    {"42.875 - -22.0", CEL_SUB, D(42.875), D(-22.0), "d:64.875"},
    {"40.75 * -2.25", CEL_MUL, D(40.75), D(-2.25), "d:-91.6875"},
    {"0.0625 / 0.002", CEL_DIV, D(0.0625), D(0.002), "d:31.25"},
    {"-8.875 / -0.0625", CEL_DIV, D(-8.875), D(-0.0625), "d:142"},
    {"15.75 / 0.0", CEL_DIV, D(15.75), D(0.0), "d:+Inf"},
    {"-1.0 / 0.0", CEL_DIV, D(-1.0), D(0.0), "d:-Inf"},
    {"0.0 / 0.0", CEL_DIV, D(0.0), D(0.0), "d:NaN"},
    {"15.36 * 0.0", CEL_MUL, D(15.36), D(0.0), "d:0"},
    {"-1.0 * 0.0", CEL_MUL, D(-1.0), D(0.0), "d:-0"},
    {"2 * 8.988466e307", CEL_MUL, D(2.0), D(8.988466e+307), "d:+Inf"},
    {"2 * -8.988466e307", CEL_MUL, D(2.0), D(-8.988466e+307), "d:-Inf"},
    {"5e-324 / 2", CEL_DIV, D(4.9406564584124654e-324), D(2.0), "d:0"},
    {"0.1 + 0.2", CEL_ADD, D(0.1), D(0.2), "d:0.30000000000000004"},
    {"47.5 % 5.5", CEL_MOD, D(47.5), D(5.5), "error:no matching overload"},
    /* arithmetic is strict */
    {"1 + 1.0", CEL_ADD, I(1), D(1.0), "error:no matching overload"},
    {"1 + 1u", CEL_ADD, I(1), U(1), "error:no matching overload"},
    {"1u * 2.0", CEL_MUL, U(1), D(2.0), "error:no matching overload"},
    {"'a' + 1", CEL_ADD, S("a"), I(1), "error:no matching overload"},
    {"true + true", CEL_ADD, BO(true), BO(true), "error:no matching overload"},
    {"null + null", CEL_ADD, NUL, NUL, "error:no matching overload"},
    {"'a' - 'a'", CEL_SUB, S("a"), S("a"), "error:no matching overload"},
    /* strings, bytes, lists */
    {"'he' + 'llo'", CEL_ADD, S("he"), S("llo"), "s:\"hello\""},
    {"'' + 'abc'", CEL_ADD, S(""), S("abc"), "s:\"abc\""},
    {"'abc' + ''", CEL_ADD, S("abc"), S(""), "s:\"abc\""},
    {"'' + ''", CEL_ADD, S(""), S(""), "s:\"\""},
    {"'r' + 'ôle'", CEL_ADD, S("r"), S("\xc3\xb4le"), "s:\"r\xc3\xb4le\""},
    {"b'abc' + b'def'", CEL_ADD, BY("abc"), BY("def"), "b:616263646566"},
    {"b'' + b'\\xffoo'", CEL_ADD, BY(""), BY("\xffoo"), "b:ff6f6f"},
    {"b'' + b''", CEL_ADD, BY(""), BY(""), "b:"},
    {"'a' + b'a'", CEL_ADD, S("a"), BY("a"), "error:no matching overload"},
    {"[0,1] + [2]", CEL_ADD, LIST(I(0), I(1)), LIST(I(2)), "[i:0,i:1,i:2]"},
    {"[2] + [2]", CEL_ADD, LIST(I(2)), LIST(I(2)), "[i:2,i:2]"},
    {"[] + []", CEL_ADD, EMPTY_LIST, EMPTY_LIST, "[]"},
    {"[] + [3, 4]", CEL_ADD, EMPTY_LIST, LIST(I(3), I(4)), "[i:3,i:4]"},
    {"[1, 2] + []", CEL_ADD, LIST(I(1), I(2)), EMPTY_LIST, "[i:1,i:2]"},
    {"[1] + ['a']", CEL_ADD, LIST(I(1)), LIST(S("a")), "[i:1,s:\"a\"]"},
    {"{} + {}", CEL_ADD, EMPTY_MAP, EMPTY_MAP, "error:no matching overload"},
    /* time */
    {"ts + 240s", CEL_ADD, TS(1234566000, 0), DUR(240 * SEC), "ts:2009-02-13T23:04:00Z"},
    {"120s + ts", CEL_ADD, DUR(120 * SEC), TS(1234566060, 0), "ts:2009-02-13T23:03:00Z"},
    {"600s + 50s", CEL_ADD, DUR(600 * SEC), DUR(50 * SEC), "dur:650s"},
    {"ts(0001..01.000000001) + -999999999ns", CEL_ADD, TS(CV_TS_MIN_SECS + 1, 1), DUR(-999999999), "ts:0001-01-01T00:00:00.000000002Z"},
    {"ts(0001..01.999999999) + 999999999ns", CEL_ADD, TS(CV_TS_MIN_SECS + 1, 999999999), DUR(999999999), "ts:0001-01-01T00:00:02.999999998Z"},
    {"ts - 600s", CEL_SUB, TS(1234566600, 0), DUR(600 * SEC), "ts:2009-02-13T23:00:00Z"},
    {"ts - -1.5s", CEL_SUB, TS(0, 0), DUR(-1500000000), "ts:1970-01-01T00:00:01.500Z"},
    {"ts - ts", CEL_SUB, TS(1234567860, 0), TS(1234567740, 0), "dur:120s"},
    {"ts - ts with nanos", CEL_SUB, TS(10, 0), TS(9, 999999999), "dur:0.000000001s"},
    {"ts - later ts", CEL_SUB, TS(9, 999999999), TS(10, 0), "dur:-0.000000001s"},
    {"900s - 42s", CEL_SUB, DUR(900 * SEC), DUR(42 * SEC), "dur:858s"},
    {"min ts - 1s", CEL_ADD, TS(CV_TS_MIN_SECS, 0), DUR(-SEC), "error:integer overflow"},
    {"max ts + 1s", CEL_ADD, TS(CV_TS_MAX_SECS, 0), DUR(SEC), "error:integer overflow"},
    {"max ts nanos + 1ns", CEL_ADD, TS(CV_TS_MAX_SECS, 999999999), DUR(1), "error:integer overflow"},
    {"min ts + -1ns", CEL_ADD, TS(CV_TS_MIN_SECS, 0), DUR(-1), "error:integer overflow"},
    {"max ts - min duration", CEL_SUB, TS(CV_TS_MAX_SECS, 0), DUR(INT64_MIN), "error:integer overflow"},
    {"min ts - min duration", CEL_SUB, TS(CV_TS_MIN_SECS, 0), DUR(INT64_MIN), "ts:0293-04-11T23:47:16.854775808Z"},
    {"ts + max duration", CEL_ADD, TS(0, 0), DUR(INT64_MAX), "ts:2262-04-11T23:47:16.854775807Z"},
    {"9999 - 0001", CEL_SUB, TS(CV_TS_MAX_SECS, 0), TS(CV_TS_MIN_SECS, 0), "error:integer overflow"},
    {"0001 - 9999", CEL_SUB, TS(CV_TS_MIN_SECS, 0), TS(CV_TS_MAX_SECS, 0), "error:integer overflow"},
    {"ts diff near int64 max", CEL_SUB, TS(9223372036, 854775807), TS(0, 0), "dur:9223372036.854775807s"},
    {"ts diff with borrow at the edge", CEL_SUB, TS(9223372037, 0), TS(0, 145224193), "dur:9223372036.854775807s"},
    {"ts diff past int64 max", CEL_SUB, TS(9223372036, 854775808), TS(0, 0), "error:integer overflow"},
    {"dur overflow +", CEL_ADD, DUR(INT64_MAX), DUR(1), "error:integer overflow"},
    {"dur overflow -", CEL_SUB, DUR(INT64_MIN), DUR(1), "error:integer overflow"},
    {"dur - ts", CEL_SUB, DUR(1), TS(0, 0), "error:no matching overload"},
    {"ts + ts", CEL_ADD, TS(0, 0), TS(0, 0), "error:no matching overload"},
    {"dur * 2", CEL_MUL, DUR(1), I(2), "error:no matching overload"},

    /* equality, heterogeneous numbers */
    {"1 == 1", CEL_EQ, I(1), I(1), "true"},
    {"-1 == 1", CEL_EQ, I(-1), I(1), "false"},
    {"1 == 1u", CEL_EQ, I(1), U(1), "true"},
    {"2 == 1u", CEL_EQ, I(2), U(1), "false"},
    {"-1 == maxu", CEL_EQ, I(-1), U(UINT64_MAX), "false"},
    {"1 == 1.0", CEL_EQ, I(1), D(1.0), "true"},
    {"1u == 1.0", CEL_EQ, U(1), D(1.0), "true"},
    {"1.0 == 1u", CEL_EQ, D(1.0), U(1), "true"},
    {"2.0 == 1", CEL_EQ, D(2.0), I(1), "false"},
    {"-0.0 == 0", CEL_EQ, D(-0.0), I(0), "true"},
    {"NaN == NaN", CEL_EQ, D(NAN_), D(NAN_), "false"},
    {"1 == NaN", CEL_EQ, I(1), D(NAN_), "false"},
    {"1u == NaN", CEL_EQ, U(1), D(NAN_), "false"},
    {"NaN != NaN", CEL_NE, D(NAN_), D(NAN_), "true"},
    {"1 != NaN", CEL_NE, I(1), D(NAN_), "true"},
    {"1u != 1", CEL_NE, U(1), I(1), "false"},
    {"24 != 24.1", CEL_NE, I(24), D(24.1), "true"},
    {"'' == \"\"", CEL_EQ, S(""), S(""), "true"},
    {"'a' == 'b'", CEL_EQ, S("a"), S("b"), "false"},
    {"'abc' == 'ABC'", CEL_EQ, S("abc"), S("ABC"), "false"},
    {"no normalization", CEL_EQ, S("Am\xc3\xa9lie"), S("Ame\xcc\x81lie"), "false"},
    {"null == null", CEL_EQ, NUL, NUL, "true"},
    {"null != null", CEL_NE, NUL, NUL, "false"},
    {"true == true", CEL_EQ, BO(true), BO(true), "true"},
    {"false == true", CEL_EQ, BO(false), BO(true), "false"},
    {"b'abc' == b'abcd'", CEL_EQ, BY("abc"), BY("abcd"), "false"},
    {"b'\\303\\277' == b'ÿ'", CEL_EQ, BY("\303\277"), BY("\xc3\xbf"), "true"},
    {"'a' == b'a'", CEL_EQ, S("a"), BY("a"), "false"},
    {"false == null", CEL_EQ, BO(false), NUL, "false"},
    {"0 == null", CEL_EQ, I(0), NUL, "false"},
    {"'' == null", CEL_EQ, S(""), NUL, "false"},
    {"[] == null", CEL_EQ, EMPTY_LIST, NUL, "false"},
    {"{} == null", CEL_EQ, EMPTY_MAP, NUL, "false"},
    {"ts(0) == null", CEL_EQ, TS(0, 0), NUL, "false"},
    {"0s == null", CEL_EQ, DUR(0), NUL, "false"},
    {"1 == '1'", CEL_EQ, I(1), S("1"), "false"},
    {"[] == []", CEL_EQ, EMPTY_LIST, EMPTY_LIST, "true"},
    {"[null] == [null]", CEL_EQ, LIST(NUL), LIST(NUL), "true"},
    {"['1','2',null] == ['1','2','3']", CEL_EQ, LIST(S("1"), S("2"), NUL), LIST(S("1"), S("2"), S("3")), "false"},
    {"[1.0, 2.0, 3] == [1u, 2, 3u]", CEL_EQ, LIST(D(1.0), D(2.0), I(3)), LIST(U(1), I(2), U(3)), "true"},
    {"[1.0, 2.1] == [1u, 2]", CEL_EQ, LIST(D(1.0), D(2.1)), LIST(U(1), I(2)), "false"},
    {"[1, 2, 3] == [1, 3, 2]", CEL_EQ, LIST(I(1), I(2), I(3)), LIST(I(1), I(3), I(2)), "false"},
    {"['one'] == [2, 3]", CEL_EQ, LIST(S("one")), LIST(I(2), I(3)), "false"},
    {"[1, 'dos', 3] == [1, 2, 4]", CEL_EQ, LIST(I(1), S("dos"), I(3)), LIST(I(1), I(2), I(4)), "false"},
    {"[[]] != [[]]", CEL_NE, LIST(EMPTY_LIST), LIST(EMPTY_LIST), "false"},
    {"{} == {}", CEL_EQ, EMPTY_MAP, EMPTY_MAP, "true"},
    {"{'k': null} == {'k': null}", CEL_EQ, MAP(S("k"), NUL), MAP(S("k"), NUL), "true"},
    {"{'k':1,'j':2} == {'k':1,'j':null}", CEL_EQ, MAP(S("k"), I(1), S("j"), I(2)), MAP(S("k"), I(1), S("j"), NUL), "false"},
    {"{1: 1.0, 2u: 3u} == {1u: 1, 2: 3.0}", CEL_EQ, MAP(I(1), D(1.0), U(2), U(3)), MAP(U(1), I(1), I(2), D(3.0)), "true"},
    {"{'k':'v','k1':'v1'} == {'k':'v'}", CEL_EQ, MAP(S("k"), S("v"), S("k1"), S("v1")), MAP(S("k"), S("v")), "false"},
    {"key order", CEL_EQ, MAP(S("k1"), S("v1"), S("k2"), S("v2")), MAP(S("k2"), S("v2"), S("k1"), S("v1")), "true"},
    {"{'k':true} != {'k1':true}", CEL_NE, MAP(S("k"), BO(true)), MAP(S("k1"), BO(true)), "true"},
    {"{'k':'v', 1:1} == {'k':'v', 1:'v1'}", CEL_EQ, MAP(S("k"), S("v"), I(1), I(1)), MAP(S("k"), S("v"), I(1), S("v1")), "false"},
    {"type(int) == type(int)", CEL_EQ, TY(CV_INT), TY(CV_INT), "true"},
    {"int == uint", CEL_EQ, TY(CV_INT), TY(CV_UINT), "false"},
    {"ts == ts", CEL_EQ, TS(5, 1), TS(5, 1), "true"},
    {"ts == ts nanos differ", CEL_EQ, TS(5, 1), TS(5, 2), "false"},
    {"60s == 3600s", CEL_EQ, DUR(60 * SEC), DUR(3600 * SEC), "false"},
    {"ts == dur", CEL_EQ, TS(0, 0), DUR(0), "false"},

    /* ordering */
    {"-1 < 0", CEL_LT, I(-1), I(0), "true"},
    {"0 < 0", CEL_LT, I(0), I(0), "false"},
    {"0u < 1u", CEL_LT, U(0), U(1), "true"},
    {"1.0 < 1.0000001", CEL_LT, D(1.0), D(1.0000001), "true"},
    {"-0.0 < 0.0", CEL_LT, D(-0.0), D(0.0), "false"},
    {"'a' < 'b'", CEL_LT, S("a"), S("b"), "true"},
    {"'' < 'a'", CEL_LT, S(""), S("a"), "true"},
    {"'Abc' < 'aBC'", CEL_LT, S("Abc"), S("aBC"), "true"},
    {"'abc' < 'abcd'", CEL_LT, S("abc"), S("abcd"), "true"},
    {"'a' < 'á'", CEL_LT, S("a"), S("\xc3\xa1"), "true"},
    {"'a' < 'AB'", CEL_LT, S("a"), S("AB"), "false"},
    {"'f' < U+1EBF", CEL_LT, S("f"), S("\xe1\xba\xbf"), "true"},
    {"U+FFFF < U+10000 (code point order)", CEL_LT, S("\xef\xbf\xbf"), S("\xf0\x90\x80\x80"), "true"},
    {"'α' > 'omega'", CEL_GT, S("\xce\xb1"), S("omega"), "true"},
    {"b'a' < b'b'", CEL_LT, BY("a"), BY("b"), "true"},
    {"b'á' < b'b'", CEL_LT, BY("\xc3\xa1"), BY("b"), "false"},
    {"b'\\x00' > b' '", CEL_GT, BY("\0"), BY(" "), "false"},
    {"b'' <= b' '", CEL_LE, BY(""), BY(" "), "true"},
    {"false < true", CEL_LT, BO(false), BO(true), "true"},
    {"true < false", CEL_LT, BO(true), BO(false), "false"},
    {"true >= true", CEL_GE, BO(true), BO(true), "true"},
    {"[0] < [1]", CEL_LT, LIST(I(0)), LIST(I(1)), "error:no matching overload"},
    {"{0:'a'} < {1:'b'}", CEL_LT, MAP(I(0), S("a")), MAP(I(1), S("b")), "error:no matching overload"},
    {"null < null", CEL_LT, NUL, NUL, "error:no matching overload"},
    {"null >= null", CEL_GE, NUL, NUL, "error:no matching overload"},
    {"'foo' < 1024", CEL_LT, S("foo"), I(1024), "error:no matching overload"},
    {"'foo' >= 1.0", CEL_GE, S("foo"), D(1.0), "error:no matching overload"},
    {"int < int (types)", CEL_LT, TY(CV_INT), TY(CV_INT), "error:no matching overload"},
    {"ts < dur", CEL_LT, TS(0, 0), DUR(0), "error:no matching overload"},
    {"1 < 2u", CEL_LT, I(1), U(2), "true"},
    {"1 < 2.0", CEL_LT, I(1), D(2.0), "true"},
    {"1u < 2", CEL_LT, U(1), I(2), "true"},
    {"1.0 < 2u", CEL_LT, D(1.0), U(2), "true"},
    {"1 < 1u", CEL_LT, I(1), U(1), "false"},
    {"1u < 1.0", CEL_LT, U(1), D(1.0), "false"},
    {"1 < 2^63 u", CEL_LT, I(1), U(9223372036854775808ULL), "true"},
    {"-1 < 0u", CEL_LT, I(-1), U(0), "true"},
    {"-1 > 0u", CEL_GT, I(-1), U(0), "false"},
    {"-1 >= 0u", CEL_GE, I(-1), U(0), "false"},
    {"1u > -1", CEL_GT, U(1), I(-1), "true"},
    {"1u < min", CEL_LT, U(1), I(INT64_MIN), "false"},
    {"2^63 u < 1", CEL_LT, U(9223372036854775808ULL), I(1), "false"},
    {"2^63 u > 1", CEL_GT, U(9223372036854775808ULL), I(1), "true"},
    /* int/uint against double: as the nearest double (conformance v0.25.1) */
    {"max < 2^63 (lossy)", CEL_LT, I(INT64_MAX), D(9223372036854775808.0), "false"},
    {"max <= 2^63", CEL_LE, I(INT64_MAX), D(9223372036854775808.0), "true"},
    {"max >= 2^63 (lossy)", CEL_GE, I(INT64_MAX), D(9223372036854775808.0), "true"},
    {"max > 2^63", CEL_GT, I(INT64_MAX), D(9223372036854775808.0), "false"},
    {"max < 9223372036854777857.0", CEL_LT, I(INT64_MAX), D(9223372036854777857.0), "true"},
    {"max >= 9223372036854777857.0", CEL_GE, I(INT64_MAX), D(9223372036854777857.0), "false"},
    {"max < -9223372036854777857.0", CEL_LT, I(INT64_MAX), D(-9223372036854777857.0), "false"},
    {"min < -9223372036854775809.0", CEL_LT, I(INT64_MIN), D(-9223372036854775809.0), "false"},
    {"min <= -9223372036854775809.0", CEL_LE, I(INT64_MIN), D(-9223372036854775809.0), "true"},
    {"min > -9223372036854777857.0", CEL_GT, I(INT64_MIN), D(-9223372036854777857.0), "true"},
    {"min <= -9223372036854777857.0", CEL_LE, I(INT64_MIN), D(-9223372036854777857.0), "false"},
    {"2^63 < max", CEL_LT, D(9223372036854775808.0), I(INT64_MAX), "false"},
    {"2^63 > max (lossy)", CEL_GT, D(9223372036854775808.0), I(INT64_MAX), "false"},
    {"2^63 <= max (lossy)", CEL_LE, D(9223372036854775808.0), I(INT64_MAX), "true"},
    {"-2^63-1 < min", CEL_LT, D(-9223372036854775809.0), I(INT64_MIN), "false"},
    {"-2^63-1 >= min", CEL_GE, D(-9223372036854775809.0), I(INT64_MIN), "true"},
    {"maxu < -1.0", CEL_LT, U(UINT64_MAX), D(-1.0), "false"},
    {"maxu < 18446744073709590000.0", CEL_LT, U(UINT64_MAX), D(18446744073709590000.0), "true"},
    {"maxu > 18446744073709590000.0", CEL_GT, U(UINT64_MAX), D(18446744073709590000.0), "false"},
    {"18446744073709553665.0 < maxu", CEL_LT, D(18446744073709553665.0), U(UINT64_MAX), "false"},
    {"18446744073709553665.0 > maxu", CEL_GT, D(18446744073709553665.0), U(UINT64_MAX), "true"},
    {"maxu >= 18446744073709553665.0", CEL_GE, U(UINT64_MAX), D(18446744073709553665.0), "false"},
    {"2^63-1 u > -1.0", CEL_GT, U(9223372036854775807ULL), D(-1.0), "true"},
    /* NaN: unordered */
    {"NaN < 1.0", CEL_LT, D(NAN_), D(1.0), "false"},
    {"NaN <= 1.0", CEL_LE, D(NAN_), D(1.0), "false"},
    {"NaN > 1.0", CEL_GT, D(NAN_), D(1.0), "false"},
    {"NaN >= 1.0", CEL_GE, D(NAN_), D(1.0), "false"},
    {"1 < NaN", CEL_LT, I(1), D(NAN_), "false"},
    {"1 >= NaN", CEL_GE, I(1), D(NAN_), "false"},
    {"1u > NaN", CEL_GT, U(1), D(NAN_), "false"},
    {"NaN <= NaN", CEL_LE, D(NAN_), D(NAN_), "false"},
    {"Inf > max double", CEL_GT, D(INF_), D(1.7976931348623157e308), "true"},
    {"-Inf < min", CEL_LT, D(-INF_), I(INT64_MIN), "true"},
    /* time ordering */
    {"ts <= ts", CEL_LE, TS(100, 0), TS(100, 0), "true"},
    {"ts <= earlier ts", CEL_LE, TS(100, 0), TS(99, 0), "false"},
    {"ts < ts by nanos", CEL_LT, TS(100, 1), TS(100, 2), "true"},
    {"negative ts < later", CEL_LT, TS(-1, 999999999), TS(0, 0), "true"},
    {"200s <= 200s", CEL_LE, DUR(200 * SEC), DUR(200 * SEC), "true"},
    {"300s <= 200s", CEL_LE, DUR(300 * SEC), DUR(200 * SEC), "false"},
    {"300s > 200s", CEL_GT, DUR(300 * SEC), DUR(200 * SEC), "true"},
    {"120s >= 200s", CEL_GE, DUR(120 * SEC), DUR(200 * SEC), "false"},
    {"-1ns < 0s", CEL_LT, DUR(-1), DUR(0), "true"},

    /* in */
    {"7 in []", CEL_IN, I(7), EMPTY_LIST, "false"},
    {"4u in [4u]", CEL_IN, U(4), LIST(U(4)), "true"},
    {"'alpha' in [...]", CEL_IN, S("alpha"), LIST(S("alpha"), S("beta"), S("gamma")), "true"},
    {"3 in [5,4,3,2,1]", CEL_IN, I(3), LIST(I(5), I(4), I(3), I(2), I(1)), "true"},
    {"3.0 in [5,4,3]", CEL_IN, D(3.0), LIST(I(5), I(4), I(3)), "true"},
    {"3u in [5,4,3]", CEL_IN, U(3), LIST(I(5), I(4), I(3)), "true"},
    {"3 in [5.0, 3.0]", CEL_IN, I(3), LIST(D(5.0), D(3.0)), "true"},
    {"3u in [5.0, 3.0]", CEL_IN, U(3), LIST(D(5.0), D(3.0)), "true"},
    {"3 in [5u, 3u]", CEL_IN, I(3), LIST(U(5), U(3)), "true"},
    {"3.0 in [5u, 3u]", CEL_IN, D(3.0), LIST(U(5), U(3)), "true"},
    {"'hawaiian' in [...]", CEL_IN, S("hawaiian"), LIST(S("meat"), S("veggie")), "false"},
    {"'elem' in [1, 'elem', 2]", CEL_IN, S("elem"), LIST(I(1), S("elem"), I(2)), "true"},
    {"'elem' in [1u, 'str', 2, b'bytes']", CEL_IN, S("elem"), LIST(U(1), S("str"), I(2), BY("bytes")), "false"},
    {"NaN in [NaN]", CEL_IN, D(NAN_), LIST(D(NAN_)), "false"},
    {"[1] in [[1]]", CEL_IN, LIST(I(1)), LIST(LIST(I(1))), "true"},
    {"7 in {}", CEL_IN, I(7), EMPTY_MAP, "false"},
    {"true in {true: 1}", CEL_IN, BO(true), MAP(BO(true), I(1)), "true"},
    {"'George' in {...}", CEL_IN, S("George"), MAP(S("John"), S("smart"), S("George"), S("quiet")), "true"},
    {"'spider' in {...}", CEL_IN, S("spider"), MAP(S("ant"), I(6), S("fly"), I(6)), "false"},
    {"3.0 in {1: 1, 2: 2, 3u: 3}", CEL_IN, D(3.0), MAP(I(1), I(1), I(2), I(2), U(3), I(3)), "true"},
    {"2u in {1u: 1, 2: 2}", CEL_IN, U(2), MAP(U(1), I(1), I(2), I(2)), "true"},
    {"1 in {1u: 1, 2: 2}", CEL_IN, I(1), MAP(U(1), I(1), I(2), I(2)), "true"},
    {"3.1 in {1: 1, 2: 2, 3u: 3}", CEL_IN, D(3.1), MAP(I(1), I(1), I(2), I(2), U(3), I(3)), "false"},
    {"'key' in {3: 3.0, 'key': 2u}", CEL_IN, S("key"), MAP(I(3), D(3.0), S("key"), U(2)), "true"},
    {"'key' in {1u: 'str', 2: b'bytes'}", CEL_IN, S("key"), MAP(U(1), S("str"), I(2), BY("bytes")), "false"},
    {"1 in 1", CEL_IN, I(1), I(1), "error:no matching overload"},
    {"'a' in 'abc'", CEL_IN, S("a"), S("abc"), "error:no matching overload"},

    /* index */
    {"[7, 8, 9][0]", CEL_INDEX, LIST(I(7), I(8), I(9)), I(0), "i:7"},
    {"[7, 8, 9][0.0]", CEL_INDEX, LIST(I(7), I(8), I(9)), D(0.0), "i:7"},
    {"[7, 8, 9][2.0]", CEL_INDEX, LIST(I(7), I(8), I(9)), D(2.0), "i:9"},
    {"[7, 8, 9][0.1]", CEL_INDEX, LIST(I(7), I(8), I(9)), D(0.1), "error:"},
    {"[7, 8, 9][NaN]", CEL_INDEX, LIST(I(7), I(8), I(9)), D(NAN_), "error:"},
    {"[7, 8, 9][Inf]", CEL_INDEX, LIST(I(7), I(8), I(9)), D(INF_), "error:"},
    {"[7, 8, 9][3.0]", CEL_INDEX, LIST(I(7), I(8), I(9)), D(3.0), "error:index out of range"},
    {"[7, 8, 9][-1.0]", CEL_INDEX, LIST(I(7), I(8), I(9)), D(-1.0), "error:index out of range"},
    {"[7, 8, 9][0u]", CEL_INDEX, LIST(I(7), I(8), I(9)), U(0), "i:7"},
    {"[7, 8, 9][3u]", CEL_INDEX, LIST(I(7), I(8), I(9)), U(3), "error:index out of range"},
    {"['George', 'John', 'Paul', 'Ringo'][3]", CEL_INDEX, LIST(S("George"), S("John"), S("Paul"), S("Ringo")), I(3), "s:\"Ringo\""},
    {"[1, 2, 3][3]", CEL_INDEX, LIST(I(1), I(2), I(3)), I(3), "error:index out of range"},
    {"[1, 2, 3][-1]", CEL_INDEX, LIST(I(1), I(2), I(3)), I(-1), "error:index out of range"},
    {"[1, 2, 3][min]", CEL_INDEX, LIST(I(1), I(2), I(3)), I(INT64_MIN), "error:index out of range"},
    {"[][0]", CEL_INDEX, EMPTY_LIST, I(0), "error:index out of range"},
    {"[1, 2, 3]['']", CEL_INDEX, LIST(I(1), I(2), I(3)), S(""), "error:no matching overload"},
    {"[1][null]", CEL_INDEX, LIST(I(1)), NUL, "error:no matching overload"},
    {"{0:1,2:2,5:true}[5]", CEL_INDEX, MAP(I(0), I(1), I(2), I(2), I(5), BO(true)), I(5), "true"},
    {"{0u:1u,2u:'happy'}[2u]", CEL_INDEX, MAP(U(0), U(1), U(2), S("happy")), U(2), "s:\"happy\""},
    {"{'name':100u}['name']", CEL_INDEX, MAP(S("name"), U(100)), S("name"), "u:100"},
    {"{true:5}[true]", CEL_INDEX, MAP(BO(true), I(5)), BO(true), "i:5"},
    {"{true:1,2:2,5u:3}[true]", CEL_INDEX, MAP(BO(true), I(1), I(2), I(2), U(5), I(3)), BO(true), "i:1"},
    {"{1u: 1.0, 2: 2.0, 3u: 3.0}[3.0]", CEL_INDEX, MAP(U(1), D(1.0), I(2), D(2.0), U(3), D(3.0)), D(3.0), "d:3"},
    {"{1u: 1.0, 2: 2.0, 3u: 3.0}[3.1]", CEL_INDEX, MAP(U(1), D(1.0), I(2), D(2.0), U(3), D(3.0)), D(3.1), "error:no such key: 3.1"},
    {"{1u: 1.0, 2: 2.0, 3u: 3.0}[2u]", CEL_INDEX, MAP(U(1), D(1.0), I(2), D(2.0), U(3), D(3.0)), U(2), "d:2"},
    {"{1u: 1.0, 2: 2.0, 3u: 3.0}[1]", CEL_INDEX, MAP(U(1), D(1.0), I(2), D(2.0), U(3), D(3.0)), I(1), "d:1"},
    {"{0:1,2:2,5:3}[1]", CEL_INDEX, MAP(I(0), I(1), I(2), I(2), I(5), I(3)), I(1), "error:no such key: 1"},
    {"{'a':1}['b']", CEL_INDEX, MAP(S("a"), I(1)), S("b"), "error:no such key: b"},
    {"{3:15.15}[3]", CEL_INDEX, MAP(I(3), D(15.15)), I(3), "d:15.15"},
    {"{0:b''}[0]", CEL_INDEX, MAP(I(0), BY("")), I(0), "b:"},
    {"{0u:[1]}[0u]", CEL_INDEX, MAP(U(0), LIST(I(1))), U(0), "[i:1]"},
    {"{'map': {'k': 'v'}}['map']", CEL_INDEX, MAP(S("map"), MAP(S("k"), S("v"))), S("map"), "{s:\"k\":s:\"v\"}"},
    {"{}[[1]]", CEL_INDEX, EMPTY_MAP, LIST(I(1)), "error:no matching overload"},
    {"'abc'[0]", CEL_INDEX, S("abc"), I(0), "error:no matching overload"},
    {"1[0]", CEL_INDEX, I(1), I(0), "error:no matching overload"},
};

static void test_binary(void **state) {
  fixture *f = *state;
  int failures = 0;
  for (size_t k = 0; k < sizeof bin_cases / sizeof *bin_cases; k++) {
    const bin_case *c = &bin_cases[k];
    value out;
    cel_binary(&f->ctx, c->op, &out, &c->a, &c->b);
    if (!matches(c->desc, &out, c->want)) failures++;
    /* The result may land on an operand (VM registers alias). */
    value a = c->a;
    cel_binary(&f->ctx, c->op, &a, &a, &c->b);
    if (!matches(c->desc, &a, c->want)) failures++;
    arena_reset(&f->scratch);
  }
  assert_int_equal(failures, 0);
}

/* cel_compare and cel_equal agree, and EQ/NE and the orderings never
 * contradict one another. */
static void test_compare_consistency(void **state) {
  (void)state;
  static const value nums[] = {I(0), I(1), I(-1), I(INT64_MAX), I(INT64_MIN), U(0), U(1), U(UINT64_MAX),
                               U(9223372036854775808ULL), D(0.0), D(-0.0), D(1.0), D(-1.0), D(0.5),
                               D(9223372036854775808.0), D(18446744073709551616.0), D(-9223372036854775808.0),
                               D(INF_), D(-INF_), D(NAN_)};
  size_t n = sizeof nums / sizeof *nums;
  for (size_t x = 0; x < n; x++) {
    for (size_t y = 0; y < n; y++) {
      int c1, c2;
      assert_true(cel_compare(&nums[x], &nums[y], &c1));
      assert_true(cel_compare(&nums[y], &nums[x], &c2));
      if (c1 == CEL_CMP_UNORDERED) {
        assert_int_equal(c2, CEL_CMP_UNORDERED);
        assert_false(cel_equal(&nums[x], &nums[y]));
        continue;
      }
      assert_int_equal(c1, -c2);
      assert_int_equal(c1 == 0, cel_equal(&nums[x], &nums[y]));
    }
  }
  int c;
  value s = cv_string("a", 1), i = cv_int(1), l = cv_list(NULL, 0);
  assert_false(cel_compare(&s, &i, &c));
  assert_false(cel_compare(&l, &l, &c));
}

/* ---- unary operators ------------------------------------------------------------------------ */

typedef struct unary_case {
  const char *desc;
  char op; /* '-' or '!' */
  value a;
  const char *want;
} unary_case;

static const unary_case unary_cases[] = {
    {"-(42)", '-', I(42), "i:-42"},
    {"-(-42)", '-', I(-42), "i:42"},
    {"-(0)", '-', I(0), "i:0"},
    {"-(min)", '-', I(INT64_MIN), "error:integer overflow"},
    {"-(max)", '-', I(INT64_MAX), "i:-9223372036854775807"},
    {"-(42u)", '-', U(42), "error:no matching overload"},
    {"-false", '-', BO(false), "error:no matching overload"},
    {"-'a'", '-', S("a"), "error:no matching overload"},
    {"-(4.5)", '-', D(4.5), "d:-4.5"},
    {"-(-1.25)", '-', D(-1.25), "d:1.25"},
    {"-(0.0)", '-', D(0.0), "d:-0"},
    {"-(NaN)", '-', D(NAN_), "d:NaN"},
    {"-(Inf)", '-', D(INF_), "d:-Inf"},
    {"-(1.5s)", '-', DUR(1500000000), "dur:-1.5s"},
    {"-(min duration)", '-', DUR(INT64_MIN), "error:integer overflow"},
    {"-ts", '-', TS(0, 0), "error:no matching overload"},
    {"!true", '!', BO(true), "false"},
    {"!false", '!', BO(false), "true"},
    {"!0", '!', I(0), "error:no matching overload"},
    {"!null", '!', NUL, "error:no matching overload"},
    {"!''", '!', S(""), "error:no matching overload"},
};

static void test_unary(void **state) {
  fixture *f = *state;
  int failures = 0;
  for (size_t k = 0; k < sizeof unary_cases / sizeof *unary_cases; k++) {
    const unary_case *c = &unary_cases[k];
    value out;
    if (c->op == '-') cel_negate(&f->ctx, &out, &c->a);
    else cel_not(&f->ctx, &out, &c->a);
    if (!matches(c->desc, &out, c->want)) failures++;
  }
  assert_int_equal(failures, 0);
}

/* Errors given as operands come back unchanged. */
static void test_error_operands(void **state) {
  fixture *f = *state;
  value e = cv_static_error("boom", 4, CV_ERR_ABSENT), one = cv_int(1), s = cv_string("x", 1), out;
  cel_binary(&f->ctx, CEL_ADD, &out, &e, &one);
  assert_int_equal(out.kind, CV_ERROR);
  assert_ptr_equal(out.s, e.s);
  assert_int_equal(out.flag, CV_ERR_ABSENT);
  cel_binary(&f->ctx, CEL_LT, &out, &s, &e);
  assert_ptr_equal(out.s, e.s);
  cel_binary(&f->ctx, CEL_EQ, &out, &one, &e);
  assert_ptr_equal(out.s, e.s);
  cel_negate(&f->ctx, &out, &e);
  assert_ptr_equal(out.s, e.s);
  cel_not(&f->ctx, &out, &e);
  assert_ptr_equal(out.s, e.s);
  cel_select(&f->ctx, &out, &e, "a", 1);
  assert_ptr_equal(out.s, e.s);
  cel_has_field(&f->ctx, &out, &e, "a", 1);
  assert_ptr_equal(out.s, e.s);
  assert_false(cel_equal(&e, &e));
}

/* ---- field selection ----------------------------------------------------------------------- */

static void test_select(void **state) {
  fixture *f = *state;
  const value m = MAP(S("a"), I(1), S("b"), I(2), S(""), S("empty"), I(7), S("int key"));
  const value nested = MAP(S("x"), MAP(S("name"), I(1024)));
  value out, i = cv_int(1);
  cel_select(&f->ctx, &out, &m, "a", 1);
  assert_true(matches("m.a", &out, "i:1"));
  cel_select(&f->ctx, &out, &m, "", 0);
  assert_true(matches("m.``", &out, "s:\"empty\""));
  cel_select(&f->ctx, &out, &m, "c", 1);
  assert_true(matches("m.c", &out, "error:no such key: c"));
  assert_int_equal(out.flag, CV_ERR_ABSENT);
  cel_select(&f->ctx, &out, &m, "ab", 1); /* only the first n bytes count */
  assert_true(matches("m.a (n=1)", &out, "i:1"));
  cel_select(&f->ctx, &out, &nested, "x", 1);
  cel_select(&f->ctx, &out, &out, "name", 4); /* aliasing */
  assert_true(matches("x.name", &out, "i:1024"));
  cel_select(&f->ctx, &out, &i, "a", 1);
  assert_true(matches("1.a", &out, "error:no matching overload"));

  cel_has_field(&f->ctx, &out, &m, "a", 1);
  assert_true(matches("has(m.a)", &out, "true"));
  cel_has_field(&f->ctx, &out, &m, "c", 1);
  assert_true(matches("has(m.c)", &out, "false"));
  const value empty = EMPTY_MAP;
  cel_has_field(&f->ctx, &out, &empty, "a", 1);
  assert_true(matches("has({}.a)", &out, "false"));
  cel_has_field(&f->ctx, &out, &i, "a", 1);
  assert_true(matches("has(1.a)", &out, "error:no matching overload"));

  const value keyed = MAP(S("a"), I(1));
  value key = cv_string("zz", 2);
  cel_binary(&f->ctx, CEL_INDEX, &out, &keyed, &key);
  assert_int_equal(out.flag, CV_ERR_ABSENT);
  arena_reset(&f->scratch);
}

/* ---- builtins -------------------------------------------------------------------------------- */

typedef struct call_case {
  const char *desc;
  const char *name;
  bool member;
  int nargs;
  value args[3];
  const char *want;
} call_case;

static const call_case call_cases[] = {
    /* size */
    {"size('')", "size", 0, 1, {S("")}, "i:0"},
    {"size('A')", "size", 0, 1, {S("A")}, "i:1"},
    {"size('ÿ')", "size", 0, 1, {S("\xc3\xbf")}, "i:1"},
    {"size('πέντε')", "size", 0, 1, {S("\xcf\x80\xce\xad\xce\xbd\xcf\x84\xce\xb5")}, "i:5"},
    {"size('🐱')", "size", 0, 1, {S("\xf0\x9f\x90\xb1")}, "i:1"},
    {"size(b'')", "size", 0, 1, {BY("")}, "i:0"},
    {"size(b'abc')", "size", 0, 1, {BY("abc")}, "i:3"},
    {"size(b'\\xc3\\xbf')", "size", 0, 1, {BY("\xc3\xbf")}, "i:2"},
    {"size([])", "size", 0, 1, {EMPTY_LIST}, "i:0"},
    {"size([1, 2, 3])", "size", 0, 1, {LIST(I(1), I(2), I(3))}, "i:3"},
    {"size({})", "size", 0, 1, {EMPTY_MAP}, "i:0"},
    {"size({1: 'one', 2: 'two'})", "size", 0, 1, {MAP(I(1), S("one"), I(2), S("two"))}, "i:2"},
    {"'four'.size()", "size", 1, 1, {S("four")}, "i:4"},
    {"[1].size()", "size", 1, 1, {LIST(I(1))}, "i:1"},
    {"size(1)", "size", 0, 1, {I(1)}, "error:no matching overload"},
    {"size(null)", "size", 0, 1, {NUL}, "error:no matching overload"},
    /* contains, startsWith, endsWith */
    {"'hello'.contains('he')", "contains", 1, 2, {S("hello"), S("he")}, "true"},
    {"'hello'.contains('')", "contains", 1, 2, {S("hello"), S("")}, "true"},
    {"'hello'.contains('ol')", "contains", 1, 2, {S("hello"), S("ol")}, "false"},
    {"'abababc'.contains('ababc')", "contains", 1, 2, {S("abababc"), S("ababc")}, "true"},
    {"'Straße'.contains('aß')", "contains", 1, 2, {S("Stra\xc3\x9f" "e"), S("a\xc3\x9f")}, "true"},
    {"'🐱😀😁'.contains('😀')", "contains", 1, 2, {S("\xf0\x9f\x90\xb1\xf0\x9f\x98\x80\xf0\x9f\x98\x81"), S("\xf0\x9f\x98\x80")}, "true"},
    {"''.contains('something')", "contains", 1, 2, {S(""), S("something")}, "false"},
    {"''.contains('')", "contains", 1, 2, {S(""), S("")}, "true"},
    {"'abc'.contains('abcd')", "contains", 1, 2, {S("abc"), S("abcd")}, "false"},
    {"'a\\0b'.contains('\\0b')", "contains", 1, 2, {S("a\0b"), S("\0b")}, "true"},
    {"'abc'.contains(1)", "contains", 1, 2, {S("abc"), I(1)}, "error:no matching overload"},
    {"b'abc'.contains(b'a')", "contains", 1, 2, {BY("abc"), BY("a")}, "error:no matching overload"},
    {"'foobar'.startsWith('foo')", "startsWith", 1, 2, {S("foobar"), S("foo")}, "true"},
    {"'foobar'.startsWith('bar')", "startsWith", 1, 2, {S("foobar"), S("bar")}, "false"},
    {"''.startsWith('foo')", "startsWith", 1, 2, {S(""), S("foo")}, "false"},
    {"'foobar'.startsWith('')", "startsWith", 1, 2, {S("foobar"), S("")}, "true"},
    {"''.startsWith('')", "startsWith", 1, 2, {S(""), S("")}, "true"},
    {"'завтра'.startsWith('за')", "startsWith", 1, 2, {S("\xd0\xb7\xd0\xb0\xd0\xb2\xd1\x82\xd1\x80\xd0\xb0"), S("\xd0\xb7\xd0\xb0")}, "true"},
    {"'foobar'.endsWith('bar')", "endsWith", 1, 2, {S("foobar"), S("bar")}, "true"},
    {"'foobar'.endsWith('foo')", "endsWith", 1, 2, {S("foobar"), S("foo")}, "false"},
    {"''.endsWith('foo')", "endsWith", 1, 2, {S(""), S("foo")}, "false"},
    {"'foobar'.endsWith('')", "endsWith", 1, 2, {S("foobar"), S("")}, "true"},
    {"'forté'.endsWith('té')", "endsWith", 1, 2, {S("fort\xc3\xa9"), S("t\xc3\xa9")}, "true"},
    {"'a'.endsWith(null)", "endsWith", 1, 2, {S("a"), NUL}, "error:no matching overload"},

    /* int() */
    {"int(42u)", "int", 0, 1, {U(42)}, "i:42"},
    {"int(0u)", "int", 0, 1, {U(0)}, "i:0"},
    {"int(2^63-1 u)", "int", 0, 1, {U(9223372036854775807ULL)}, "i:9223372036854775807"},
    {"int(maxu)", "int", 0, 1, {U(UINT64_MAX)}, "error:integer overflow"},
    {"int(-123.456)", "int", 0, 1, {D(-123.456)}, "i:-123"},
    {"int(1.9)", "int", 0, 1, {D(1.9)}, "i:1"},
    {"int(-7.9)", "int", 0, 1, {D(-7.9)}, "i:-7"},
    {"int(11.5)", "int", 0, 1, {D(11.5)}, "i:11"},
    {"int(-3.5)", "int", 0, 1, {D(-3.5)}, "i:-3"},
    {"int(-0.5)", "int", 0, 1, {D(-0.5)}, "i:0"},
    {"int(double(36028797018963968))", "int", 0, 1, {D(36028797018963968.0)}, "i:36028797018963968"},
    {"int(9223372036854775807.0)", "int", 0, 1, {D(9223372036854775807.0)}, "error:integer overflow"},
    {"int(-9223372036854775808.0)", "int", 0, 1, {D(-9223372036854775808.0)}, "error:integer overflow"},
    {"int(largest double below 2^63)", "int", 0, 1, {D(9223372036854774784.0)}, "i:9223372036854774784"},
    {"int(1e99)", "int", 0, 1, {D(1e99)}, "error:integer overflow"},
    {"int(NaN)", "int", 0, 1, {D(NAN_)}, "error:integer overflow"},
    {"int(-Inf)", "int", 0, 1, {D(-INF_)}, "error:integer overflow"},
    {"int('987')", "int", 0, 1, {S("987")}, "i:987"},
    {"int('-987')", "int", 0, 1, {S("-987")}, "i:-987"},
    {"int('+5')", "int", 0, 1, {S("+5")}, "i:5"},
    {"int('9223372036854775807')", "int", 0, 1, {S("9223372036854775807")}, "i:9223372036854775807"},
    {"int('-9223372036854775808')", "int", 0, 1, {S("-9223372036854775808")}, "i:-9223372036854775808"},
    {"int('9223372036854775808')", "int", 0, 1, {S("9223372036854775808")}, "error:"},
    {"int('-9223372036854775809')", "int", 0, 1, {S("-9223372036854775809")}, "error:"},
    {"int('99999999999999999999')", "int", 0, 1, {S("99999999999999999999")}, "error:"},
    {"int('')", "int", 0, 1, {S("")}, "error:"},
    {"int('-')", "int", 0, 1, {S("-")}, "error:"},
    {"int('0x10')", "int", 0, 1, {S("0x10")}, "error:"},
    {"int(' 1')", "int", 0, 1, {S(" 1")}, "error:"},
    {"int('1.0')", "int", 0, 1, {S("1.0")}, "error:"},
    {"int(timestamp('2004-09-16T23:59:59Z'))", "int", 0, 1, {TS(1095379199, 0)}, "i:1095379199"},
    {"int(timestamp('2009-02-13T23:31:30Z'))", "int", 0, 1, {TS(TS_2009, 0)}, "i:1234567890"},
    {"int(duration('1.5s'))", "int", 0, 1, {DUR(1500000000)}, "i:1500000000"},
    {"int(1)", "int", 0, 1, {I(1)}, "i:1"},
    {"int(true)", "int", 0, 1, {BO(true)}, "error:no matching overload"},
    {"int(null)", "int", 0, 1, {NUL}, "error:no matching overload"},
    /* uint() */
    {"uint(1729)", "uint", 0, 1, {I(1729)}, "u:1729"},
    {"uint(max)", "uint", 0, 1, {I(INT64_MAX)}, "u:9223372036854775807"},
    {"uint(-1)", "uint", 0, 1, {I(-1)}, "error:integer overflow"},
    {"uint(3.14159265)", "uint", 0, 1, {D(3.14159265)}, "u:3"},
    {"uint(1.9)", "uint", 0, 1, {D(1.9)}, "u:1"},
    {"uint(25.5)", "uint", 0, 1, {D(25.5)}, "u:25"},
    {"uint(double(36028797018963969u))", "uint", 0, 1, {D(36028797018963968.0)}, "u:36028797018963968"},
    {"uint(18446744073709551615.0)", "uint", 0, 1, {D(18446744073709551615.0)}, "error:integer overflow"},
    {"uint(6.022e23)", "uint", 0, 1, {D(6.022e23)}, "error:integer overflow"},
    {"uint(-0.5)", "uint", 0, 1, {D(-0.5)}, "error:integer overflow"},
    {"uint(-0.0)", "uint", 0, 1, {D(-0.0)}, "u:0"},
    {"uint(NaN)", "uint", 0, 1, {D(NAN_)}, "error:integer overflow"},
    {"uint('300')", "uint", 0, 1, {S("300")}, "u:300"},
    {"uint('18446744073709551615')", "uint", 0, 1, {S("18446744073709551615")}, "u:18446744073709551615"},
    {"uint('18446744073709551616')", "uint", 0, 1, {S("18446744073709551616")}, "error:"},
    {"uint('-1')", "uint", 0, 1, {S("-1")}, "error:"},
    {"uint('+1')", "uint", 0, 1, {S("+1")}, "error:"},
    {"uint('1u')", "uint", 0, 1, {S("1u")}, "error:"},
    {"uint(1u)", "uint", 0, 1, {U(1)}, "u:1"},
    {"uint(ts)", "uint", 0, 1, {TS(0, 0)}, "error:no matching overload"},
    /* double() */
    {"double(0)", "double", 0, 1, {I(0)}, "d:0"},
    {"double(1000000000000)", "double", 0, 1, {I(1000000000000)}, "d:1000000000000"},
    {"double(-1000000000000000)", "double", 0, 1, {I(-1000000000000000)}, "d:-1000000000000000"},
    {"double(-9007199254740992)", "double", 0, 1, {I(-9007199254740992)}, "d:-9007199254740992"},
    {"double(9223372036854775807)", "double", 0, 1, {I(INT64_MAX)}, "d:9.2233720368547758e+18"},
    {"double(0u)", "double", 0, 1, {U(0)}, "d:0"},
    {"double(123u)", "double", 0, 1, {U(123)}, "d:123"},
    {"double(18446744073709551615u)", "double", 0, 1, {U(UINT64_MAX)}, "d:1.8446744073709552e+19"},
    {"double('0')", "double", 0, 1, {S("0")}, "d:0"},
    {"double('0.0')", "double", 0, 1, {S("0.0")}, "d:0"},
    {"double('-0.0')", "double", 0, 1, {S("-0.0")}, "d:-0"},
    {"double('123')", "double", 0, 1, {S("123")}, "d:123"},
    {"double('123.456')", "double", 0, 1, {S("123.456")}, "d:123.456"},
    {"double('-987.654')", "double", 0, 1, {S("-987.654")}, "d:-987.654"},
    {"double('6.02214e23')", "double", 0, 1, {S("6.02214e23")}, "d:6.0221399999999997e+23"},
    {"double('1.38e-23')", "double", 0, 1, {S("1.38e-23")}, "d:1.3800000000000001e-23"},
    {"double('-84.32e7')", "double", 0, 1, {S("-84.32e7")}, "d:-843200000"},
    {"double('-5.43e-21')", "double", 0, 1, {S("-5.43e-21")}, "d:-5.4299999999999999e-21"},
    {"double('.5')", "double", 0, 1, {S(".5")}, "d:0.5"},
    {"double('NaN')", "double", 0, 1, {S("NaN")}, "d:NaN"},
    {"double('Infinity')", "double", 0, 1, {S("Infinity")}, "d:+Inf"},
    {"double('-inf')", "double", 0, 1, {S("-inf")}, "d:-Inf"},
    {"double('1e999')", "double", 0, 1, {S("1e999")}, "error:"},
    {"double('1e-999')", "double", 0, 1, {S("1e-999")}, "d:0"},
    {"double('')", "double", 0, 1, {S("")}, "error:"},
    {"double(' 1')", "double", 0, 1, {S(" 1")}, "error:"},
    {"double('1 ')", "double", 0, 1, {S("1 ")}, "error:"},
    {"double('abc')", "double", 0, 1, {S("abc")}, "error:"},
    {"double('0x10')", "double", 0, 1, {S("0x10")}, "error:"},
    {"double('nan(1)')", "double", 0, 1, {S("nan(1)")}, "error:"},
    {"double('1.5e')", "double", 0, 1, {S("1.5e")}, "error:"},
    {"double(5.5)", "double", 0, 1, {D(5.5)}, "d:5.5"},
    {"double(true)", "double", 0, 1, {BO(true)}, "error:no matching overload"},
    /* string() */
    {"string(123)", "string", 0, 1, {I(123)}, "s:\"123\""},
    {"string(-456)", "string", 0, 1, {I(-456)}, "s:\"-456\""},
    {"string(min)", "string", 0, 1, {I(INT64_MIN)}, "s:\"-9223372036854775808\""},
    {"string(9876u)", "string", 0, 1, {U(9876)}, "s:\"9876\""},
    {"string(maxu)", "string", 0, 1, {U(UINT64_MAX)}, "s:\"18446744073709551615\""},
    {"string(123.456)", "string", 0, 1, {D(123.456)}, "s:\"123.456\""},
    {"string(-4.5e-3)", "string", 0, 1, {D(-4.5e-3)}, "s:\"-0.0045\""},
    {"string(1.0)", "string", 0, 1, {D(1.0)}, "s:\"1\""},
    {"string(0.1)", "string", 0, 1, {D(0.1)}, "s:\"0.1\""},
    {"string(-0.0)", "string", 0, 1, {D(-0.0)}, "s:\"-0\""},
    {"string(100000.0)", "string", 0, 1, {D(100000.0)}, "s:\"100000\""},
    {"string(123456.5)", "string", 0, 1, {D(123456.5)}, "s:\"123456.5\""},
    {"string(1e6)", "string", 0, 1, {D(1e6)}, "s:\"1e+06\""},
    {"string(1234567.0)", "string", 0, 1, {D(1234567.0)}, "s:\"1.234567e+06\""},
    {"string(0.0001)", "string", 0, 1, {D(0.0001)}, "s:\"0.0001\""},
    {"string(0.00001)", "string", 0, 1, {D(0.00001)}, "s:\"1e-05\""},
    {"string(1e300)", "string", 0, 1, {D(1e300)}, "s:\"1e+300\""},
    {"string(5e-324)", "string", 0, 1, {D(5e-324)}, "s:\"5e-324\""},
    {"string(1.7976931348623157e308)", "string", 0, 1, {D(1.7976931348623157e308)}, "s:\"1.7976931348623157e+308\""},
    {"string(0.30000000000000004)", "string", 0, 1, {D(0.30000000000000004)}, "s:\"0.30000000000000004\""},
    {"string(NaN)", "string", 0, 1, {D(NAN_)}, "s:\"NaN\""},
    {"string(Inf)", "string", 0, 1, {D(INF_)}, "s:\"+Inf\""},
    {"string(-Inf)", "string", 0, 1, {D(-INF_)}, "s:\"-Inf\""},
    {"string(b'abc')", "string", 0, 1, {BY("abc")}, "s:\"abc\""},
    {"string(b'\\303\\277')", "string", 0, 1, {BY("\303\277")}, "s:\"\xc3\xbf\""},
    {"string(b'\\000\\xff')", "string", 0, 1, {BY("\000\xff")}, "error:invalid UTF-8"},
    {"string(b'\\xed\\xa0\\x80') surrogate", "string", 0, 1, {BY("\xed\xa0\x80")}, "error:invalid UTF-8"},
    {"string(true)", "string", 0, 1, {BO(true)}, "s:\"true\""},
    {"string(false)", "string", 0, 1, {BO(false)}, "s:\"false\""},
    {"string('hello')", "string", 0, 1, {S("hello")}, "s:\"hello\""},
    {"string(timestamp('2009-02-13T23:31:30Z'))", "string", 0, 1, {TS(TS_2009, 0)}, "s:\"2009-02-13T23:31:30Z\""},
    {"string(timestamp('9999-12-31T23:59:59.999999999Z'))", "string", 0, 1, {TS(CV_TS_MAX_SECS, 999999999)}, "s:\"9999-12-31T23:59:59.999999999Z\""},
    {"string(duration('1000000s'))", "string", 0, 1, {DUR(1000000 * SEC)}, "s:\"1000000s\""},
    {"string(null)", "string", 0, 1, {NUL}, "error:no matching overload"},
    {"string([])", "string", 0, 1, {EMPTY_LIST}, "error:no matching overload"},
    {"string({})", "string", 0, 1, {EMPTY_MAP}, "error:no matching overload"},
    /* bytes() */
    {"bytes('')", "bytes", 0, 1, {S("")}, "b:"},
    {"bytes('abc')", "bytes", 0, 1, {S("abc")}, "b:616263"},
    {"bytes('ÿ')", "bytes", 0, 1, {S("\xc3\xbf")}, "b:c3bf"},
    {"bytes(b'abc')", "bytes", 0, 1, {BY("abc")}, "b:616263"},
    {"bytes(1)", "bytes", 0, 1, {I(1)}, "error:no matching overload"},
    /* bool() */
    {"bool('1')", "bool", 0, 1, {S("1")}, "true"},
    {"bool('t')", "bool", 0, 1, {S("t")}, "true"},
    {"bool('true')", "bool", 0, 1, {S("true")}, "true"},
    {"bool('TRUE')", "bool", 0, 1, {S("TRUE")}, "true"},
    {"bool('True')", "bool", 0, 1, {S("True")}, "true"},
    {"bool('0')", "bool", 0, 1, {S("0")}, "false"},
    {"bool('f')", "bool", 0, 1, {S("f")}, "false"},
    {"bool('false')", "bool", 0, 1, {S("false")}, "false"},
    {"bool('FALSE')", "bool", 0, 1, {S("FALSE")}, "false"},
    {"bool('False')", "bool", 0, 1, {S("False")}, "false"},
    {"bool('TrUe')", "bool", 0, 1, {S("TrUe")}, "error:"},
    {"bool('FaLsE')", "bool", 0, 1, {S("FaLsE")}, "error:"},
    {"bool('')", "bool", 0, 1, {S("")}, "error:"},
    {"bool('yes')", "bool", 0, 1, {S("yes")}, "error:"},
    {"bool(true)", "bool", 0, 1, {BO(true)}, "true"},
    {"bool(1)", "bool", 0, 1, {I(1)}, "error:no matching overload"},
    /* dyn(), type() */
    {"dyn([1, 'one'])", "dyn", 0, 1, {LIST(I(1), S("one"))}, "[i:1,s:\"one\"]"},
    {"type(true)", "type", 0, 1, {BO(true)}, "t:bool"},
    {"type(0)", "type", 0, 1, {I(0)}, "t:int"},
    {"type(64u)", "type", 0, 1, {U(64)}, "t:uint"},
    {"type(3.14)", "type", 0, 1, {D(3.14)}, "t:double"},
    {"type(null)", "type", 0, 1, {NUL}, "t:null_type"},
    {"type('foo')", "type", 0, 1, {S("foo")}, "t:string"},
    {"type(b'\\xff')", "type", 0, 1, {BY("\xff")}, "t:bytes"},
    {"type([1, 2, 3])", "type", 0, 1, {LIST(I(1), I(2), I(3))}, "t:list"},
    {"type({4: 16})", "type", 0, 1, {MAP(I(4), I(16))}, "t:map"},
    {"type(int)", "type", 0, 1, {TY(CV_INT)}, "t:type"},
    {"type(type)", "type", 0, 1, {TY(CV_TYPE)}, "t:type"},
    {"type(timestamp(...))", "type", 0, 1, {TS(TS_2009, 0)}, "t:google.protobuf.Timestamp"},
    {"type(duration(...))", "type", 0, 1, {DUR(SEC)}, "t:google.protobuf.Duration"},
    /* timestamp(), duration() */
    {"timestamp('2009-02-13T23:31:30Z')", "timestamp", 0, 1, {S("2009-02-13T23:31:30Z")}, "ts:2009-02-13T23:31:30Z"},
    {"timestamp('bad')", "timestamp", 0, 1, {S("bad")}, "error:"},
    {"timestamp(1000000000)", "timestamp", 0, 1, {I(1000000000)}, "ts:2001-09-09T01:46:40Z"},
    {"timestamp(0)", "timestamp", 0, 1, {I(0)}, "ts:1970-01-01T00:00:00Z"},
    {"timestamp(-62135596800)", "timestamp", 0, 1, {I(CV_TS_MIN_SECS)}, "ts:0001-01-01T00:00:00Z"},
    {"timestamp(-62135596801)", "timestamp", 0, 1, {I(CV_TS_MIN_SECS - 1)}, "error:"},
    {"timestamp(253402300800)", "timestamp", 0, 1, {I(CV_TS_MAX_SECS + 1)}, "error:"},
    {"timestamp(ts)", "timestamp", 0, 1, {TS(5, 5)}, "ts:1970-01-01T00:00:05.000000005Z"},
    {"timestamp(1u)", "timestamp", 0, 1, {U(1)}, "error:no matching overload"},
    {"duration('100s')", "duration", 0, 1, {S("100s")}, "dur:100s"},
    {"duration('bad')", "duration", 0, 1, {S("bad")}, "error:"},
    {"duration(duration('100s'))", "duration", 0, 1, {DUR(100 * SEC)}, "dur:100s"},
    {"duration(1)", "duration", 0, 1, {I(1)}, "error:no matching overload"},
};

static void test_builtins(void **state) {
  fixture *f = *state;
  int failures = 0;
  for (size_t k = 0; k < sizeof call_cases / sizeof *call_cases; k++) {
    const call_case *c = &call_cases[k];
    const cel_builtin *b = cel_builtin_find(c->name, c->member, c->nargs);
    if (!b) {
      print_error("%s: builtin %s not found\n", c->desc, c->name);
      failures++;
      continue;
    }
    value out;
    b->fn(&f->ctx, &out, c->args, c->nargs);
    if (!matches(c->desc, &out, c->want)) failures++;
    arena_reset(&f->scratch);
  }
  assert_int_equal(failures, 0);
}

static void test_builtin_table(void **state) {
  (void)state;
  assert_non_null(cel_builtin_find("size", false, 1));
  assert_non_null(cel_builtin_find("size", true, 1));
  assert_null(cel_builtin_find("size", false, 2));
  assert_null(cel_builtin_find("contains", false, 2));
  assert_non_null(cel_builtin_find("contains", true, 2));
  assert_null(cel_builtin_find("contains", true, 1));
  assert_null(cel_builtin_find("no_such_function", false, 1));
  int n = cel_builtin_count();
  assert_true(n >= 15);
  for (int k = 0; k < n; k++) {
    const cel_builtin *b = cel_builtin_at(k);
    assert_non_null(b);
    assert_non_null(b->name);
    assert_non_null(b->fn);
    assert_true(b->min_args <= b->max_args);
    /* each entry is found by its own name and style */
    assert_non_null(cel_builtin_find(b->name, b->member, b->min_args));
  }
  assert_null(cel_builtin_at(n));
  assert_null(cel_builtin_at(-1));
  const cel_builtin *b = cel_builtin_find("int", false, 1);
  assert_string_equal(b->name, "int");
  assert_int_equal(b->member, 0);
}

static void test_type_names(void **state) {
  (void)state;
  static const struct {
    const char *name, *canon;
  } cases[] = {
      {"int", "t:int"},       {"uint", "t:uint"},
      {"double", "t:double"}, {"bool", "t:bool"},
      {"string", "t:string"}, {"bytes", "t:bytes"},
      {"list", "t:list"},     {"map", "t:map"},
      {"null_type", "t:null_type"}, {"type", "t:type"},
      {"google.protobuf.Timestamp", "t:google.protobuf.Timestamp"},
      {"google.protobuf.Duration", "t:google.protobuf.Duration"},
  };
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    value v;
    assert_true(cel_type_by_name(cases[k].name, &v));
    assert_true(matches(cases[k].name, &v, cases[k].canon));
  }
  value v;
  assert_false(cel_type_by_name("dyn", &v));
  assert_false(cel_type_by_name("timestamp", &v));
  assert_false(cel_type_by_name("", &v));
  /* type(1) == int; type(type(7)) == type(type(7u)) */
  value one = cv_int(1), t1, tint, tt1, tt2, out;
  const cel_builtin *type_fn = cel_builtin_find("type", false, 1);
  type_fn->fn(NULL, &t1, &one, 1);
  cel_type_by_name("int", &tint);
  assert_true(cel_equal(&t1, &tint));
  value seven_u = cv_uint(7), tu;
  type_fn->fn(NULL, &tu, &seven_u, 1);
  assert_false(cel_equal(&t1, &tu));
  type_fn->fn(NULL, &tt1, &t1, 1);
  type_fn->fn(NULL, &tt2, &tu, 1);
  assert_true(cel_equal(&tt1, &tt2));
  cel_binary(NULL, CEL_EQ, &out, &tt1, &tt2);
  assert_true(out.kind == CV_BOOL && out.b);
}

/* ---- text forms ----------------------------------------------------------------------------- */

typedef struct text_case {
  const char *desc;
  value v;
  const char *canon; /* NULL: not checked */
  const char *json;  /* NULL: not checked */
} text_case;

static const text_case text_cases[] = {
    {"null", NUL, "null", "null"},
    {"true", BO(true), "true", "true"},
    {"false", BO(false), "false", "false"},
    {"int", I(-5), "i:-5", "-5"},
    {"int min", I(INT64_MIN), "i:-9223372036854775808", "-9223372036854775808"},
    {"uint", U(UINT64_MAX), "u:18446744073709551615", "18446744073709551615"},
    {"1.0", D(1.0), "d:1", "1"},
    {"0.1", D(0.1), "d:0.10000000000000001", "0.1"},
    {"1.5", D(1.5), "d:1.5", "1.5"},
    {"-0.0", D(-0.0), "d:-0", "-0"},
    {"1e300", D(1e300), "d:1.0000000000000001e+300", "1e+300"},
    {"123.456", D(123.456), "d:123.456", "123.456"},
    {"15.15", D(15.15), "d:15.15", "15.15"},
    {"0.30000000000000004", D(0.30000000000000004), "d:0.30000000000000004", "0.30000000000000004"},
    {"1/3", D(1.0 / 3.0), "d:0.33333333333333331", "0.3333333333333333"},
    {"2^53+2", D(9007199254740994.0), "d:9007199254740994", "9007199254740994"},
    {"max double", D(1.7976931348623157e308), "d:1.7976931348623157e+308", "1.7976931348623157e+308"},
    {"min subnormal", D(5e-324), "d:4.9406564584124654e-324", "5e-324"},
    {"NaN", D(NAN_), "d:NaN", "null"},
    {"+Inf", D(INF_), "d:+Inf", "null"},
    {"-Inf", D(-INF_), "d:-Inf", "null"},
    {"empty string", S(""), "s:\"\"", "\"\""},
    {"string escapes", S("a\"b\\c\nd\te\rf"), "s:\"a\\\"b\\\\c\\nd\\te\\rf\"", "\"a\\\"b\\\\c\\nd\\te\\rf\""},
    {"control chars", S("\a\b\f\v\x1f\x7f"), "s:\"\\u0007\\u0008\\u000c\\u000b\\u001f\\u007f\"", "\"\\u0007\\b\\f\\u000b\\u001f\x7f\""},
    {"NUL in string", S("a\0b"), "s:\"a\\u0000b\"", "\"a\\u0000b\""},
    {"utf-8 raw", S("\xe2\x9c\x8c \xf0\x9f\x90\xb1 '"), "s:\"\xe2\x9c\x8c \xf0\x9f\x90\xb1 '\"", "\"\xe2\x9c\x8c \xf0\x9f\x90\xb1 '\""},
    {"bytes", BY("\x00\xff" "a"), "b:00ff61", "\"AP9h\""},
    {"bytes empty", BY(""), "b:", "\"\""},
    {"bytes 1", BY("f"), "b:66", "\"Zg==\""},
    {"bytes 2", BY("fo"), "b:666f", "\"Zm8=\""},
    {"bytes 3", BY("foo"), "b:666f6f", "\"Zm9v\""},
    {"bytes 4", BY("foob"), "b:666f6f62", "\"Zm9vYg==\""},
    {"bytes high", BY("\xfb\xff"), "b:fbff", "\"+/8=\""},
    {"list", LIST(I(1), S("a"), NUL), "[i:1,s:\"a\",null]", "[1,\"a\",null]"},
    {"empty list", EMPTY_LIST, "[]", "[]"},
    {"nested list", LIST(EMPTY_LIST, LIST(BO(true))), "[[],[true]]", "[[],[true]]"},
    {"map sorted", MAP(S("k1"), S("v1"), S("k"), S("v")), "{s:\"k\":s:\"v\",s:\"k1\":s:\"v1\"}", "{\"k1\":\"v1\",\"k\":\"v\"}"},
    {"map sort by canonical bytes", MAP(S("b"), I(1), I(10), I(2), I(9), I(3), BO(true), I(4), U(1), I(5)),
     "{i:10:i:2,i:9:i:3,s:\"b\":i:1,true:i:4,u:1:i:5}", "{\"b\":1,\"10\":2,\"9\":3,\"true\":4,\"1\":5}"},
    {"map nested", MAP(S("a"), MAP(S("b"), I(1))), "{s:\"a\":{s:\"b\":i:1}}", "{\"a\":{\"b\":1}}"},
    {"empty map", EMPTY_MAP, "{}", "{}"},
    {"map double key", MAP(D(1.5), I(1)), "{d:1.5:i:1}", "{\"1.5\":1}"},
    {"timestamp", TS(TS_2009, 0), "ts:2009-02-13T23:31:30Z", "\"2009-02-13T23:31:30Z\""},
    {"timestamp ms", TS(0, 500000000), "ts:1970-01-01T00:00:00.500Z", "\"1970-01-01T00:00:00.500Z\""},
    {"timestamp us", TS(0, 1000), "ts:1970-01-01T00:00:00.000001Z", "\"1970-01-01T00:00:00.000001Z\""},
    {"timestamp ns", TS(-1, 999999999), "ts:1969-12-31T23:59:59.999999999Z", "\"1969-12-31T23:59:59.999999999Z\""},
    {"duration", DUR(1500000000), "dur:1.5s", "\"1.5s\""},
    {"duration neg", DUR(-3600 * SEC), "dur:-3600s", "\"-3600s\""},
    {"duration 1ns", DUR(1), "dur:0.000000001s", "\"0.000000001s\""},
    {"type int", TY(CV_INT), "t:int", "\"int\""},
    {"type null", TY(CV_NULL), "t:null_type", "\"null_type\""},
    {"type ts", TY(CV_TIMESTAMP), "t:google.protobuf.Timestamp", "\"google.protobuf.Timestamp\""},
    {"type type", TY(CV_TYPE), "t:type", "\"type\""},
    {"error", {.kind = CV_ERROR, .s = "boom", .n = 4}, "error:boom", "null"},
    {"list with error", LIST(I(1), {.kind = CV_ERROR, .s = "x", .n = 1}), NULL, "[1,null]"},
};

static void test_text_forms(void **state) {
  (void)state;
  int failures = 0;
  for (size_t k = 0; k < sizeof text_cases / sizeof *text_cases; k++) {
    const text_case *c = &text_cases[k];
    char buf[512];
    outbuf o;
    if (c->canon) {
      ob_init_fixed(&o, buf, sizeof buf);
      cel_canon(&o, &c->v);
      if (strcmp(ob_cstr(&o), c->canon) != 0) {
        print_error("%s canon: got %s, want %s\n", c->desc, buf, c->canon);
        failures++;
      }
    }
    if (c->json) {
      ob_init_fixed(&o, buf, sizeof buf);
      cel_to_json(&o, &c->v);
      if (strcmp(ob_cstr(&o), c->json) != 0) {
        print_error("%s json: got %s, want %s\n", c->desc, buf, c->json);
        failures++;
      }
    }
  }
  assert_int_equal(failures, 0);
}

/* cel_format_double writes the shortest text that reads back exactly. */
static void test_format_double(void **state) {
  (void)state;
  static const struct {
    double d;
    const char *want;
  } cases[] = {
      {1.5, "1.5"},   {1e300, "1e+300"}, {0.1, "0.1"}, {3.0, "3"}, {-2.5, "-2.5"}, {100, "100"},
      {1e21, "1e+21"}, {1e-7, "1e-07"},  {123456789012345678.0, "1.2345678901234568e+17"},
      {5e-324, "5e-324"}, {-2.2250738585072014e-308, "-2.2250738585072014e-308"}, {1e-310, "1e-310"},
      {NAN_, "NaN"},  {INF_, "+Inf"},    {-INF_, "-Inf"},
  };
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    char buf[64];
    outbuf o;
    ob_init_fixed(&o, buf, sizeof buf);
    cel_format_double(&o, cases[k].d);
    ob_cstr(&o);
    assert_string_equal(buf, cases[k].want);
  }
  /* round trip on a spread of values */
  double d = 1.0;
  for (int k = 0; k < 2000; k++) {
    d = d * 1.37 + 0.001 * k;
    if (!isfinite(d)) d = 1.0 / (k + 3);
    char buf[64];
    outbuf o;
    ob_init_fixed(&o, buf, sizeof buf);
    cel_format_double(&o, d);
    ob_cstr(&o);
    assert_true(strtod(buf, NULL) == d);
  }
}

static void test_json_string(void **state) {
  (void)state;
  static const struct {
    const char *in;
    size_t n;
    const char *want;
  } cases[] = {
      {"", 0, "\"\""},
      {"plain", 5, "\"plain\""},
      {"q\"b\\", 4, "\"q\\\"b\\\\\""},
      {"\n\t\r\b\f", 5, "\"\\n\\t\\r\\b\\f\""},
      {"\x01\x1f\x7f", 3, "\"\\u0001\\u001f\x7f\""},
      {"\0", 1, "\"\\u0000\""},
      {"\xc3\xa9/<>", 5, "\"\xc3\xa9/<>\""},
      {"\xff", 1, "\"\xff\""}, /* raw: only escapes are added */
  };
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    char buf[64];
    outbuf o;
    ob_init_fixed(&o, buf, sizeof buf);
    cel_json_string(&o, cases[k].in, cases[k].n);
    assert_string_equal(ob_cstr(&o), cases[k].want);
  }
}

static void test_to_string_alloc(void **state) {
  fixture *f = *state;
  /* string(bytes) and string(string) share the operand's memory */
  value b = cv_bytes("abc", 3), s = cv_string("xyz", 3), out;
  cel_to_string(&f->ctx, &out, &b);
  assert_int_equal(out.kind, CV_STRING);
  assert_ptr_equal(out.s, b.s);
  cel_to_string(&f->ctx, &out, &s);
  assert_ptr_equal(out.s, s.s);
  /* without scratch memory, numbers fail cleanly */
  cel_ctx bare = {0};
  value i = cv_int(5);
  cel_to_string(&bare, &out, &i);
  assert_true(matches("string(5) without scratch", &out, "error:out of memory"));
  value list = cv_list(NULL, 0);
  cel_to_string(&bare, &out, &list);
  assert_true(matches("string([]) without scratch", &out, "error:out of memory"));
}

/* ---- UTF-8 ----------------------------------------------------------------------------------- */

static void test_utf8(void **state) {
  (void)state;
  static const struct {
    const char *s;
    size_t n;
    bool valid;
    size_t count;
  } cases[] = {
      {"", 0, true, 0},
      {"abc", 3, true, 3},
      {"\0", 1, true, 1},
      {"\xc3\xbf", 2, true, 1},
      {"\xe2\x9c\x8c", 3, true, 1},
      {"\xf0\x9f\x90\xb1", 4, true, 1},
      {"\xf4\x8f\xbf\xbf", 4, true, 1},  /* U+10FFFF */
      {"\xef\xbf\xbf", 3, true, 1},      /* U+FFFF */
      {"\xed\x9f\xbf", 3, true, 1},      /* U+D7FF */
      {"\xee\x80\x80", 3, true, 1},      /* U+E000 */
      {"\xf4\x90\x80\x80", 4, false, 0}, /* above U+10FFFF */
      {"\xed\xa0\x80", 3, false, 0},     /* surrogate U+D800 */
      {"\xed\xbf\xbf", 3, false, 0},     /* surrogate U+DFFF */
      {"\xc0\x80", 2, false, 0},         /* overlong NUL */
      {"\xc1\xbf", 2, false, 0},         /* overlong */
      {"\xe0\x9f\xbf", 3, false, 0},     /* overlong */
      {"\xf0\x8f\xbf\xbf", 4, false, 0}, /* overlong */
      {"\xf5\x80\x80\x80", 4, false, 0},
      {"\xff", 1, false, 0},
      {"\x80", 1, false, 0},             /* lone continuation */
      {"\xc3", 1, false, 0},             /* truncated */
      {"\xe2\x9c", 2, false, 0},         /* truncated */
      {"a\xc3(", 3, false, 0},           /* bad continuation */
      {"\xf0\x9f\x90(", 4, false, 0},
  };
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    if (cel_utf8_valid(cases[k].s, cases[k].n) != cases[k].valid) fail_msg("utf8 case %zu", k);
    if (cases[k].valid) assert_int_equal(cel_utf8_count(cases[k].s, cases[k].n), cases[k].count);
  }
  assert_int_equal(cel_utf8_count("\xcf\x80\xce\xad\xce\xbd\xcf\x84\xce\xb5", 10), 5);
}

/* ---- values and output buffers ---------------------------------------------------------------- */

static void test_outbuf(void **state) {
  (void)state;
  char buf[8];
  outbuf o;
  ob_init_fixed(&o, buf, sizeof buf);
  ob_puts(&o, "abc");
  ob_putc(&o, 'd');
  ob_printf(&o, "%d", 12345);
  assert_int_equal(o.len, 9); /* counts past the capacity */
  assert_string_equal(ob_cstr(&o), "abcd123");
  ob_puts(&o, "more");
  assert_int_equal(o.len, 13);
  assert_string_equal(ob_cstr(&o), "abcd123");

  ob_init_fixed(&o, buf, sizeof buf);
  ob_puts(&o, "abc");
  assert_string_equal(ob_cstr(&o), "abc");
  ob_printf(&o, "%s", "0123456789012345678901234567890123456789012345678901234567890123456789"
                      "0123456789012345678901234567890123456789012345678901234567890123456789");
  assert_int_equal(o.len, 143);
  assert_string_equal(ob_cstr(&o), "abc0123");

  ob_init_fixed(&o, NULL, 0); /* measuring only */
  ob_puts(&o, "hello");
  ob_printf(&o, "%05d", 7);
  assert_int_equal(o.len, 10);
  assert_null(ob_cstr(&o));

  outbuf g;
  ob_init_grow(&g);
  assert_string_equal(ob_cstr(&g), "");
  for (int k = 0; k < 1000; k++) ob_printf(&g, "%d,", k % 10);
  ob_put(&g, "", 0);
  assert_int_equal(g.len, 2000);
  assert_false(g.oom);
  char *s = ob_cstr(&g);
  assert_int_equal(strlen(s), 2000);
  assert_memory_equal(s, "0,1,2,", 6);
  char big[300];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  ob_printf(&g, "%s", big);
  assert_int_equal(g.len, 2299);
  assert_int_equal(strlen(ob_cstr(&g)), 2299);
  ob_free(&g);
  assert_null(g.buf);
}

static void test_cv_error(void **state) {
  fixture *f = *state;
  value e = cv_error(&f->ctx, "no such key: %s.%d", "a", 7);
  assert_int_equal(e.kind, CV_ERROR);
  assert_int_equal(e.flag, CV_ERR_GENERIC);
  assert_int_equal(e.n, strlen("no such key: a.7"));
  assert_memory_equal(e.s, "no such key: a.7", e.n);
  e = cv_error(NULL, "x %d", 1);
  assert_int_equal(e.kind, CV_ERROR);
  assert_memory_equal(e.s, "out of memory", e.n);
  cel_ctx bare = {0};
  e = cv_error(&bare, "y");
  assert_memory_equal(e.s, "out of memory", e.n);
  /* concatenation without scratch memory fails cleanly */
  value a = cv_string("a", 1), b = cv_string("b", 1), out;
  cel_binary(&bare, CEL_ADD, &out, &a, &b);
  assert_true(matches("'a' + 'b' without scratch", &out, "error:out of memory"));

  assert_string_equal(cv_kind_name(CV_INT), "int");
  assert_string_equal(cv_kind_name(CV_NULL), "null_type");
  assert_string_equal(cv_kind_name(CV_TIMESTAMP), "google.protobuf.Timestamp");
  assert_string_equal(cv_kind_name(CV_DURATION), "google.protobuf.Duration");
  assert_string_equal(cv_kind_name(CV_TYPE), "type");
  assert_string_equal(cv_kind_name(CV_LIST), "list");
  assert_string_equal(cv_kind_name(CV_MAP), "map");
}

/* A big map: canonical text sorts keys whatever their number. */
static void test_canon_big_map(void **state) {
  fixture *f = *state;
  enum { N = 300 };
  value *kv = arena_alloc(&f->scratch, 2 * N * sizeof(value));
  assert_non_null(kv);
  for (int k = 0; k < N; k++) {
    kv[2 * k] = cv_int(N - 1 - k);
    kv[2 * k + 1] = cv_bool((N - 1 - k) % 2); /* odd keys true */
  }
  value m = cv_map(kv, N);
  outbuf o;
  ob_init_grow(&o);
  cel_canon(&o, &m);
  char *s = ob_cstr(&o);
  assert_non_null(s);
  /* "i:0" < "i:1" < "i:10" < "i:100" < "i:101" ... */
  assert_memory_equal(s, "{i:0:", 5);
  assert_non_null(strstr(s, "i:0:false,i:1:true,i:10:"));
  assert_string_equal(s + o.len - 10, "i:99:true}");
  ob_free(&o);
  arena_reset(&f->scratch);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_binary, setup, teardown),
      cmocka_unit_test(test_compare_consistency),
      cmocka_unit_test_setup_teardown(test_unary, setup, teardown),
      cmocka_unit_test_setup_teardown(test_error_operands, setup, teardown),
      cmocka_unit_test_setup_teardown(test_select, setup, teardown),
      cmocka_unit_test_setup_teardown(test_builtins, setup, teardown),
      cmocka_unit_test(test_builtin_table),
      cmocka_unit_test(test_type_names),
      cmocka_unit_test(test_text_forms),
      cmocka_unit_test(test_format_double),
      cmocka_unit_test(test_json_string),
      cmocka_unit_test_setup_teardown(test_to_string_alloc, setup, teardown),
      cmocka_unit_test(test_utf8),
      cmocka_unit_test(test_outbuf),
      cmocka_unit_test_setup_teardown(test_cv_error, setup, teardown),
      cmocka_unit_test_setup_teardown(test_canon_big_map, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
