/*
 * test_json.c - the JSON reader, the schema binder and the decision JSON
 * (vm/json.c, vm/decision_json.c).
 *
 * Values are compared through a small printer of our own that keeps map
 * entries in stored order (so "last value wins, at the first position" is
 * visible): i:3 u:3 d:1.5 s:"x" b:hex true null ts:SECS.NANOS dur:NANOSns
 * [..] {k:v,..} err(FLAG):"message". Times print as raw numbers so that the
 * tests do not depend on the time formatter.
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

#include "../include/clause.h"
#include "arena.h"
#include "json.h"
#include "rtype.h"
#include "value.h"

/* ---- printing values ------------------------------------------------------------ */

static void put_value(outbuf *o, const value *v);

static void put_text(outbuf *o, const char *s, size_t n) {
  ob_putc(o, '"');
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') ob_printf(o, "\\%c", c);
    else if (c < 0x20) ob_printf(o, "\\x%02x", c);
    else ob_putc(o, (char)c);
  }
  ob_putc(o, '"');
}

static void put_value(outbuf *o, const value *v) {
  switch (v->kind) {
  case CV_NULL: ob_puts(o, "null"); break;
  case CV_BOOL: ob_puts(o, v->b ? "true" : "false"); break;
  case CV_INT: ob_printf(o, "i:%lld", (long long)v->i); break;
  case CV_UINT: ob_printf(o, "u:%llu", (unsigned long long)v->u); break;
  case CV_DOUBLE:
    if (v->d == 0 && signbit(v->d)) ob_puts(o, "d:-0");
    else ob_printf(o, "d:%.17g", v->d);
    break;
  case CV_STRING:
    ob_puts(o, "s:");
    put_text(o, v->s, v->n);
    break;
  case CV_BYTES:
    ob_puts(o, "b:");
    for (uint32_t i = 0; i < v->n; i++) ob_printf(o, "%02x", (unsigned char)v->s[i]);
    break;
  case CV_TIMESTAMP:
    ob_printf(o, "ts:%lld.%09u", (long long)v->i, (unsigned)v->n);
    break;
  case CV_DURATION:
    ob_printf(o, "dur:%lldns", (long long)v->i);
    break;
  case CV_LIST:
    ob_putc(o, '[');
    for (uint32_t i = 0; i < v->n; i++) {
      if (i) ob_putc(o, ',');
      put_value(o, &v->items[i]);
    }
    ob_putc(o, ']');
    break;
  case CV_MAP:
    ob_putc(o, '{');
    for (uint32_t i = 0; i < v->n; i++) {
      if (i) ob_putc(o, ',');
      put_value(o, &v->items[2 * i]);
      ob_putc(o, ':');
      put_value(o, &v->items[2 * i + 1]);
    }
    ob_putc(o, '}');
    break;
  case CV_ERROR:
    if (v->flag == CV_ERR_ABSENT) {
      ob_puts(o, "absent");
      break;
    }
    ob_printf(o, "err(%d):", v->flag);
    put_text(o, v->s, v->n);
    break;
  default: ob_printf(o, "<kind %d>", v->kind); break;
  }
}

/* The printed value in a static buffer (tests are single-threaded). */
static const char *show(const value *v) {
  static char buf[4096];
  outbuf o;
  ob_init_fixed(&o, buf, sizeof buf);
  put_value(&o, v);
  ob_cstr(&o);
  return buf;
}

/* ---- generic parsing ------------------------------------------------------------ */

typedef struct parse_case {
  const char *in;
  const char *want;     /* printed value, or NULL for an error */
  int line, col;        /* the error's position */
  const char *message;  /* the error's exact message */
} parse_case;

#define OK(in, want) {in, want, 0, 0, NULL}
#define ERR(in, line, col, msg) {in, NULL, line, col, msg}

static const parse_case parse_cases[] = {
    /* scalars and whitespace */
    OK("true", "true"),
    OK("false", "false"),
    OK("null", "null"),
    OK(" \t\r\n 7 \n\t", "d:7"),
    OK("\"\"", "s:\"\""),
    OK("\"abc\"", "s:\"abc\""),
    /* escapes */
    OK("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "s:\"\\\"\\\\/\\x08\\x0c\\x0a\\x0d\\x09\""),
    OK("\"\\u00e9\\u00E9\"", "s:\"\xc3\xa9\xc3\xa9\""),
    OK("\"\\u20ac\"", "s:\"\xe2\x82\xac\""),
    OK("\"\\ud83d\\ude00\"", "s:\"\xf0\x9f\x98\x80\""),
    OK("\"a\\u0000b\"", "s:\"a\\x00b\""),
    OK("\"0123456789abcdefghij\\n0123456789abcdefghij\"", "s:\"0123456789abcdefghij\\x0a0123456789abcdefghij\""),
    OK("\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 long enough to use blocks\"",
       "s:\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 long enough to use blocks\""),
    ERR("\"\\x\"", 1, 2, "invalid escape"),
    ERR("\"\\ud800\"", 1, 2, "invalid \\u escape: high surrogate without a low surrogate"),
    ERR("\"\\ud800\\u0041\"", 1, 2, "invalid \\u escape: high surrogate without a low surrogate"),
    ERR("\"\\ud800x\"", 1, 2, "invalid \\u escape: high surrogate without a low surrogate"),
    ERR("\"\\udc00\"", 1, 2, "invalid \\u escape: lone low surrogate"),
    ERR("\"\\u12g4\"", 1, 2, "invalid \\u escape: expected 4 hex digits"),
    ERR("\"\\u12", 1, 6, "unexpected end of input"),
    ERR("\"\\ud800\\u", 1, 10, "unexpected end of input"),
    ERR("\"a\nb\"", 1, 3, "unescaped control character in a string"),
    ERR("\"a\tb\"", 1, 3, "unescaped control character in a string"),
    /* numbers: doubles by CEL's JSON mapping */
    OK("0", "d:0"),
    OK("-0", "d:-0"),
    OK("1.5", "d:1.5"),
    OK("1e3", "d:1000"),
    OK("1E-2", "d:0.01"),
    OK("-12.5e+2", "d:-1250"),
    OK("0.1", "d:0.10000000000000001"),
    OK("123456789012345678901234567890", "d:1.2345678901234568e+29"),
    OK("9007199254740993", "d:9007199254740992"),
    OK("2.2250738585072014e-308", "d:2.2250738585072014e-308"),
    OK("1e400", "d:inf"),
    OK("-1e400", "d:-inf"),
    OK("1e-400", "d:0"),
    OK("0.000000000000000000000000000001e30", "d:1"),
    ERR("01", 1, 2, "invalid number: leading zero"),
    ERR("-01", 1, 3, "invalid number: leading zero"),
    ERR("1.", 1, 3, "unexpected end of input"),
    ERR("1.x", 1, 3, "invalid number: expected a digit after '.'"),
    ERR("-", 1, 2, "unexpected end of input"),
    ERR("-a", 1, 2, "invalid number: expected a digit"),
    ERR("1e", 1, 3, "unexpected end of input"),
    ERR("1e+]", 1, 4, "invalid number: expected a digit in the exponent"),
    ERR("+1", 1, 1, "expected a JSON value"),
    ERR(".5", 1, 1, "expected a JSON value"),
    ERR("NaN", 1, 1, "expected a JSON value"),
    /* literals */
    ERR("tru", 1, 4, "unexpected end of input"),
    ERR("trux", 1, 1, "invalid literal: expected true, false or null"),
    ERR("nul", 1, 4, "unexpected end of input"),
    ERR("True", 1, 1, "expected a JSON value"),
    ERR("truee", 1, 5, "unexpected characters after the JSON value"),
    /* containers */
    OK("[]", "[]"),
    OK("{}", "{}"),
    OK("[ 1 , \"a\" , [ ] , { } , null ]", "[d:1,s:\"a\",[],{},null]"),
    OK("{\"a\":{\"b\":[true,false]}}", "{s:\"a\":{s:\"b\":[true,false]}}"),
    OK("{\"a\":1,\"b\":2,\"a\":3}", "{s:\"a\":d:3,s:\"b\":d:2}"),
    OK("{\"a\":{\"x\":1},\"a\":{\"y\":2}}", "{s:\"a\":{s:\"y\":d:2}}"),
    OK("{\"\\u0061\":1,\"a\":2}", "{s:\"a\":d:2}"),
    OK("[[[[]]]]", "[[[[]]]]"),
    ERR("{1:2}", 1, 2, "expected a string key or '}'"),
    ERR("{\"a\":1,}", 1, 8, "expected a string key"),
    ERR("{\"a\" 1}", 1, 6, "expected ':' after an object key"),
    ERR("{\"a\":1 \"b\":2}", 1, 8, "expected ',' or '}' after an object member"),
    ERR("[1 2]", 1, 4, "expected ',' or ']' after an array element"),
    ERR("[1,]", 1, 4, "expected a JSON value"),
    ERR("[1}", 1, 3, "expected ',' or ']' after an array element"),
    ERR("{\"a\":1]", 1, 7, "expected ',' or '}' after an object member"),
    /* trailing garbage, empty and truncated input */
    ERR("1 2", 1, 3, "unexpected characters after the JSON value"),
    ERR("{}x", 1, 3, "unexpected characters after the JSON value"),
    ERR("", 1, 1, "unexpected end of input"),
    ERR("   ", 1, 4, "unexpected end of input"),
    ERR("{\"a\":", 1, 6, "unexpected end of input"),
    ERR("{\"a\"", 1, 5, "unexpected end of input"),
    ERR("[1,", 1, 4, "unexpected end of input"),
    ERR("\"abc", 1, 5, "unexpected end of input"),
    ERR("[", 1, 2, "unexpected end of input"),
    /* invalid UTF-8 */
    ERR("\"\xff\"", 1, 2, "invalid UTF-8"),
    ERR("\"a\xc3(\"", 1, 3, "invalid UTF-8"),
    ERR("\"\xc0\x80\"", 1, 2, "invalid UTF-8"),
    ERR("\"\xed\xa0\x80\"", 1, 2, "invalid UTF-8"),
    ERR("\"\xf4\x90\x80\x80\"", 1, 2, "invalid UTF-8"),
    ERR("\"\xc3\xa9\xe2\x82\"", 1, 3, "invalid UTF-8"),
    ERR("\xff", 1, 1, "invalid UTF-8"),
    ERR("[1,\xc3\xa9]", 1, 4, "expected a JSON value"),
    /* positions: line and column (UTF-8 characters) */
    ERR("{\n  \"a\": 1,\n  \"b\" 2\n}", 3, 7, "expected ':' after an object key"),
    ERR("[\"\xc3\xa9\xe2\x82\xac\", x]", 1, 8, "expected a JSON value"),
    ERR("[\r\n\t1,\n\tx]", 3, 2, "expected a JSON value"),
};

static void test_parse_table(void **state) {
  (void)state;
  arena a;
  arena_init(&a, 0);
  for (size_t i = 0; i < sizeof parse_cases / sizeof parse_cases[0]; i++) {
    const parse_case *pc = &parse_cases[i];
    value v;
    json_error err;
    int rc = json_parse(pc->in, strlen(pc->in), &a, &v, &err);
    if (pc->want) {
      if (rc != CLAUSE_OK) fail_msg("case %zu (%s): error %d:%d %s", i, pc->in, err.line, err.column, err.message);
      if (strcmp(show(&v), pc->want) != 0) fail_msg("case %zu (%s): got %s want %s", i, pc->in, show(&v), pc->want);
    } else {
      if (rc != CLAUSE_ERR_JSON) fail_msg("case %zu (%s): no error (rc %d)", i, pc->in, rc);
      if (err.line != pc->line || err.column != pc->col || strcmp(err.message, pc->message) != 0)
        fail_msg("case %zu (%s): got %d:%d '%s' want %d:%d '%s'", i, pc->in, err.line, err.column,
                 err.message, pc->line, pc->col, pc->message);
    }
    arena_reset(&a);
  }
  arena_free(&a);
}

static void test_parse_error_offset(void **state) {
  (void)state;
  arena a;
  arena_init(&a, 0);
  value v;
  json_error err;
  assert_int_equal(json_parse("[1,\n x]", 7, &a, &v, &err), CLAUSE_ERR_JSON);
  assert_int_equal(err.offset, 5);
  assert_int_equal(json_parse("[1", 2, &a, &v, &err), CLAUSE_ERR_JSON);
  assert_int_equal(err.offset, 2);
  /* A NUL byte is data, not the end of the text. */
  assert_int_equal(json_parse("\"a\0b\"", 5, &a, &v, &err), CLAUSE_ERR_JSON);
  assert_string_equal(err.message, "unescaped control character in a string");
  assert_int_equal(json_parse("1\0", 2, &a, &v, &err), CLAUSE_ERR_JSON);
  /* err may be NULL. */
  assert_int_equal(json_parse("[", 1, &a, &v, NULL), CLAUSE_ERR_JSON);
  assert_int_equal(json_parse(NULL, 0, &a, &v, &err), CLAUSE_ERR_JSON);
  assert_int_equal(json_parse(NULL, 1, &a, &v, &err), CLAUSE_ERR_ARG);
  /* Strings are NUL-terminated copies in the arena. */
  char text[] = "\"abc\"";
  assert_int_equal(json_parse(text, 5, &a, &v, &err), CLAUSE_OK);
  text[1] = 'X';
  assert_string_equal(v.s, "abc");
  arena_free(&a);
}

/* Nesting: JSON_MAX_DEPTH levels are fine, one more is an error, and a
 * huge line of brackets fails fast without deep recursion. */
static void test_parse_depth(void **state) {
  (void)state;
  arena a;
  arena_init(&a, 0);
  value v;
  json_error err;
  enum { n = JSON_MAX_DEPTH };
  static char small[2 * n + 2];
  char *s = small;
  memset(s, '[', n);
  memset(s + n, ']', n);
  assert_int_equal(json_parse(s, 2 * n, &a, &v, &err), CLAUSE_OK);
  memmove(s + 1, s, 2 * n);
  s[0] = '[';
  s[2 * n + 1] = ']';
  assert_int_equal(json_parse(s, 2 * n + 2, &a, &v, &err), CLAUSE_ERR_JSON);
  assert_string_equal(err.message, "nesting too deep (more than 512 levels)");
  assert_int_equal(err.column, JSON_MAX_DEPTH + 1);

  size_t big = 50u << 20;
  s = malloc(big);
  memset(s, '[', big);
  assert_int_equal(json_parse(s, big, &a, &v, &err), CLAUSE_ERR_JSON);
  assert_int_equal(err.offset, JSON_MAX_DEPTH);
  memset(s, '{', 1);
  for (size_t i = 1; i + 6 < big; i += 6) memcpy(s + i, "\"a\":{ ", 6);
  assert_int_equal(json_parse(s, big, &a, &v, &err), CLAUSE_ERR_JSON);
  assert_string_equal(err.message, "nesting too deep (more than 512 levels)");
  free(s);
  arena_free(&a);
}

/* Many keys (the hashed duplicate check) keep first positions. */
static void test_parse_many_keys(void **state) {
  (void)state;
  arena a;
  arena_init(&a, 0);
  outbuf o;
  ob_init_grow(&o);
  ob_putc(&o, '{');
  for (int i = 0; i < 100; i++) ob_printf(&o, "%s\"k%d\":%d", i ? "," : "", i % 40, i);
  ob_putc(&o, '}');
  value v;
  json_error err;
  assert_int_equal(json_parse(o.buf, o.len, &a, &v, &err), CLAUSE_OK);
  assert_int_equal(v.kind, CV_MAP);
  assert_int_equal(v.n, 40);
  for (uint32_t i = 0; i < 40; i++) {
    char key[8];
    snprintf(key, sizeof key, "k%u", i);
    assert_int_equal(v.items[2 * i].n, strlen(key));
    assert_memory_equal(v.items[2 * i].s, key, strlen(key));
    /* the last of i, i+40, i+80 */
    double want = i + 80 < 100 ? i + 80 : i + 40;
    assert_true(v.items[2 * i + 1].d == want);
  }
  ob_free(&o);
  arena_free(&a);
}

/* ---- the binder ----------------------------------------------------------------- */

static const rtype t_bool = {CV_BOOL, NULL, NULL};
static const rtype t_int = {CV_INT, NULL, NULL};
static const rtype t_uint = {CV_UINT, NULL, NULL};
static const rtype t_double = {CV_DOUBLE, NULL, NULL};
static const rtype t_string = {CV_STRING, NULL, NULL};
static const rtype t_bytes = {CV_BYTES, NULL, NULL};
static const rtype t_timestamp = {CV_TIMESTAMP, NULL, NULL};
static const rtype t_duration = {CV_DURATION, NULL, NULL};
static const rtype t_any = {RT_ANY, NULL, NULL};
static const rtype t_list_string = {CV_LIST, &t_string, NULL};
static const rtype t_map_string_string = {CV_MAP, &t_string, &t_string};
static const rtype t_map_int_int = {CV_MAP, &t_int, &t_int};
static const rtype t_map_bool_uint = {CV_MAP, &t_uint, &t_bool};
static const rtype t_list_int = {CV_LIST, &t_int, NULL};
static const rtype t_list_list_int = {CV_LIST, &t_list_int, NULL};
static const rtype t_list_any = {CV_LIST, &t_any, NULL};
static const rtype t_map_string_any = {CV_MAP, &t_any, &t_string};

typedef struct field_def {
  const char *path;
  const rtype *type;
} field_def;

/* The test schema; the comments give the slot numbers the cases use. */
static const field_def schema[] = {
    {"account.id", &t_string},              /* 0 */
    {"account.tier", &t_string},            /* 1 */
    {"account.age", &t_int},                /* 2 */
    {"account.quota", &t_uint},             /* 3 */
    {"request.score", &t_double},           /* 4 */
    {"request.streaming", &t_bool},         /* 5 */
    {"request.tags", &t_list_string},       /* 6 */
    {"request.headers", &t_map_string_string}, /* 7 */
    {"request.extra", &t_any},              /* 8 */
    {"request.at", &t_timestamp},           /* 9 */
    {"request.ttl", &t_duration},           /* 10 */
    {"request.blob", &t_bytes},             /* 11 */
    {"client.ip", &t_string},               /* 12 */
    {"n", &t_int},                          /* 13 */
    {"u", &t_uint},                         /* 14 */
    {"m.ints", &t_map_int_int},             /* 15 */
    {"lists", &t_list_list_int},            /* 16 */
    {"anys", &t_list_any},                  /* 17 */
    {"flags", &t_map_bool_uint},            /* 18 */
    {"request.meta", &t_map_string_any},    /* 19 */
    {"a.b.c.d", &t_int},                    /* 20 */
};
#define NSCHEMA (sizeof schema / sizeof schema[0])

static prog_field *make_fields(const field_def *defs, uint32_t n) {
  prog_field *fs = calloc(n, sizeof *fs);
  for (uint32_t i = 0; i < n; i++) {
    prog_field *f = &fs[i];
    f->path = strdup(defs[i].path);
    f->type = defs[i].type;
    uint32_t nsegs = 1;
    for (const char *p = f->path; *p; p++) nsegs += *p == '.';
    f->segs = calloc(nsegs, sizeof *f->segs);
    const char *p = f->path;
    for (uint32_t k = 0; k < nsegs; k++) {
      const char *dot = strchr(p, '.');
      size_t len = dot ? (size_t)(dot - p) : strlen(p);
      f->segs[k] = strndup(p, len);
      p += len + 1;
    }
    f->nsegs = nsegs;
    size_t mlen = strlen(f->path) + 14;
    char *msg = malloc(mlen + 1);
    snprintf(msg, mlen + 1, "no such key: %s", f->path);
    f->absent = cv_static_error(msg, (uint32_t)mlen, CV_ERR_ABSENT);
  }
  return fs;
}

static void free_fields(prog_field *fs, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    for (uint32_t k = 0; k < fs[i].nsegs; k++) free((char *)fs[i].segs[k]);
    free(fs[i].segs);
    free((char *)fs[i].path);
    free((char *)fs[i].absent.s);
  }
  free(fs);
}

typedef struct bind_case {
  const char *in;
  const char *want; /* "SLOT=VALUE ..." for the slots that are not absent */
} bind_case;

#define WT(path, type, got) "err(2):\"wrong type for field " path ": expected " type ", got " got "\""

static const bind_case bind_cases[] = {
    {"{}", ""},
    {" { } ", ""},
    /* a realistic request */
    {"{\"account\":{\"id\":\"acct_1\",\"tier\":\"pro\",\"age\":42,\"quota\":7},"
     "\"request\":{\"score\":0.5,\"streaming\":true,\"tags\":[\"a\",\"b\"],"
     "\"headers\":{\"ua\":\"curl\"},\"extra\":{\"k\":[1,null]},\"at\":\"2024-05-01T10:00:00Z\","
     "\"ttl\":\"1.5s\",\"blob\":\"aGVsbG8=\"},\"client\":{\"ip\":\"10.0.0.1\"},\"unknown\":[1,{}]}",
     "0=s:\"acct_1\" 1=s:\"pro\" 2=i:42 3=u:7 4=d:0.5 5=true 6=[s:\"a\",s:\"b\"] "
     "7={s:\"ua\":s:\"curl\"} 8={s:\"k\":[d:1,null]} 9=ts:1714557600.000000000 10=dur:1500000000ns "
     "11=b:68656c6c6f 12=s:\"10.0.0.1\""},
    /* null is absent; non-objects on the path leave fields absent */
    {"{\"account\":{\"id\":null,\"age\":null},\"n\":null}", ""},
    {"{\"account\":null,\"request\":5,\"client\":\"x\",\"m\":[]}", ""},
    /* duplicate keys: last wins, at the top and nested, as a whole */
    {"{\"n\":1,\"n\":2}", "13=i:2"},
    {"{\"n\":1,\"n\":null}", ""},
    {"{\"n\":1,\"n\":\"x\"}", "13=" WT("n", "int", "string")},
    {"{\"n\":\"x\",\"n\":1}", "13=i:1"},
    {"{\"account\":{\"id\":\"a\",\"tier\":\"t\"},\"account\":{\"id\":\"b\"}}", "0=s:\"b\""},
    {"{\"account\":{\"id\":\"a\"},\"account\":7}", ""},
    {"{\"account\":{\"id\":\"a\"},\"account\":null}", ""},
    {"{\"account\":{\"id\":\"a\",\"id\":\"b\"}}", "0=s:\"b\""},
    {"{\"a\":{\"b\":{\"c\":{\"d\":1}}},\"a\":{\"b\":{}}}", ""},
    {"{\"a\":{\"b\":{\"c\":{\"d\":1}},\"b\":{\"c\":{\"d\":2}}}}", "20=i:2"},
    {"{\"request\":{\"headers\":{\"x\":\"1\",\"y\":\"2\",\"x\":\"3\"}}}",
     "7={s:\"x\":s:\"3\",s:\"y\":s:\"2\"}"},
    /* int: exact, from the text */
    {"{\"n\":9223372036854775807}", "13=i:9223372036854775807"},
    {"{\"n\":-9223372036854775808}", "13=i:-9223372036854775808"},
    {"{\"n\":9223372036854775808}", "13=" WT("n", "int", "number")},
    {"{\"n\":-9223372036854775809}", "13=" WT("n", "int", "number")},
    {"{\"n\":1e3}", "13=i:1000"},
    {"{\"n\":1.0e0}", "13=i:1"},
    {"{\"n\":3.0}", "13=i:3"},
    {"{\"n\":-0}", "13=i:0"},
    {"{\"n\":-0.0e5}", "13=i:0"},
    {"{\"n\":0.5e1}", "13=i:5"},
    {"{\"n\":100e-2}", "13=i:1"},
    {"{\"n\":92233720368547758070e-1}", "13=i:9223372036854775807"},
    {"{\"n\":0.000000000000000000000000000000000000001e39}", "13=i:1"},
    {"{\"n\":1.5}", "13=" WT("n", "int", "number")},
    {"{\"n\":1e-400}", "13=" WT("n", "int", "number")},
    {"{\"n\":1e400}", "13=" WT("n", "int", "number")},
    {"{\"n\":1e19}", "13=" WT("n", "int", "number")},
    {"{\"n\":1e999999999999999999999}", "13=" WT("n", "int", "number")},
    {"{\"n\":\"3\"}", "13=" WT("n", "int", "string")},
    {"{\"n\":true}", "13=" WT("n", "int", "boolean")},
    {"{\"n\":[1]}", "13=" WT("n", "int", "array")},
    {"{\"n\":{\"a\":1}}", "13=" WT("n", "int", "object")},
    /* uint */
    {"{\"u\":9223372036854775808}", "14=u:9223372036854775808"},
    {"{\"u\":18446744073709551615}", "14=u:18446744073709551615"},
    {"{\"u\":1.8446744073709551615e19}", "14=u:18446744073709551615"},
    {"{\"u\":1e19}", "14=u:10000000000000000000"},
    {"{\"u\":18446744073709551616}", "14=" WT("u", "uint", "number")},
    {"{\"u\":99999999999999999999}", "14=" WT("u", "uint", "number")},
    {"{\"u\":-1}", "14=" WT("u", "uint", "number")},
    {"{\"u\":-0}", "14=u:0"},
    {"{\"u\":0}", "14=u:0"},
    /* double, bool, string */
    {"{\"request\":{\"score\":1}}", "4=d:1"},
    {"{\"request\":{\"score\":-2.5e-3}}", "4=d:-0.0025000000000000001"},
    {"{\"request\":{\"score\":1e400}}", "4=d:inf"},
    {"{\"request\":{\"score\":\"1\"}}", "4=" WT("request.score", "double", "string")},
    {"{\"request\":{\"streaming\":false}}", "5=false"},
    {"{\"request\":{\"streaming\":1}}", "5=" WT("request.streaming", "bool", "number")},
    {"{\"request\":{\"streaming\":\"true\"}}", "5=" WT("request.streaming", "bool", "string")},
    {"{\"account\":{\"id\":\"a\\\"b\\\\c\\u00e9\\ud83d\\ude00\"}}", "0=s:\"a\\\"b\\\\c\xc3\xa9\xf0\x9f\x98\x80\""},
    {"{\"account\":{\"id\":5}}", "0=" WT("account.id", "string", "number")},
    {"{\"account\":{\"id\":\"\"}}", "0=s:\"\""},
    /* list(string), map(string, string) */
    {"{\"request\":{\"tags\":[]}}", "6=[]"},
    {"{\"request\":{\"tags\":[\"a\",1]}}", "6=" WT("request.tags", "list(string)", "array")},
    {"{\"request\":{\"tags\":[1,\"a\",[[]],{\"x\":[]}]}}", "6=" WT("request.tags", "list(string)", "array")},
    {"{\"request\":{\"tags\":[null]}}", "6=" WT("request.tags", "list(string)", "array")},
    {"{\"request\":{\"tags\":\"a\"}}", "6=" WT("request.tags", "list(string)", "string")},
    {"{\"request\":{\"tags\":{\"a\":1}}}", "6=" WT("request.tags", "list(string)", "object")},
    {"{\"request\":{\"headers\":{}}}", "7={}"},
    {"{\"request\":{\"headers\":{\"x\":1}}}", "7=" WT("request.headers", "map(string, string)", "object")},
    {"{\"request\":{\"headers\":{\"x\":null}}}", "7=" WT("request.headers", "map(string, string)", "object")},
    {"{\"request\":{\"headers\":[\"x\"]}}", "7=" WT("request.headers", "map(string, string)", "array")},
    /* any */
    {"{\"request\":{\"extra\":[1,\"x\",null,true,{\"b\":2}]}}",
     "8=[d:1,s:\"x\",null,true,{s:\"b\":d:2}]"},
    {"{\"request\":{\"extra\":7}}", "8=d:7"},
    {"{\"request\":{\"extra\":null}}", ""},
    {"{\"request\":{\"meta\":{\"a\":null,\"b\":[1],\"a\":\"x\"}}}", "19={s:\"a\":s:\"x\",s:\"b\":[d:1]}"},
    {"{\"anys\":[1,\"a\",null,[]]}", "17=[d:1,s:\"a\",null,[]]"},
    /* timestamp, duration, bytes */
    {"{\"request\":{\"at\":\"2024-05-01T12:00:00.250+02:00\"}}", "9=ts:1714557600.250000000"},
    {"{\"request\":{\"at\":\"2024-05-01T10:00:00\\u005a\"}}", "9=ts:1714557600.000000000"},
    {"{\"request\":{\"at\":\"nope\"}}", "9=" WT("request.at", "timestamp", "string")},
    {"{\"request\":{\"at\":5}}", "9=" WT("request.at", "timestamp", "number")},
    {"{\"request\":{\"ttl\":\"-2h45m\"}}", "10=dur:-9900000000000ns"},
    {"{\"request\":{\"ttl\":\"1.5\"}}", "10=" WT("request.ttl", "duration", "string")},
    {"{\"request\":{\"blob\":\"aGVsbG8\"}}", "11=b:68656c6c6f"},
    {"{\"request\":{\"blob\":\"aGk=\"}}", "11=b:6869"},
    {"{\"request\":{\"blob\":\"aGk\"}}", "11=b:6869"},
    {"{\"request\":{\"blob\":\"+/+/\"}}", "11=b:fbffbf"},
    {"{\"request\":{\"blob\":\"\"}}", "11=b:"},
    {"{\"request\":{\"blob\":\"aGVsbG8=x\"}}", "11=" WT("request.blob", "bytes", "string")},
    {"{\"request\":{\"blob\":\"a\"}}", "11=" WT("request.blob", "bytes", "string")},
    {"{\"request\":{\"blob\":\"aGk==\"}}", "11=" WT("request.blob", "bytes", "string")},
    {"{\"request\":{\"blob\":\"aG k\"}}", "11=" WT("request.blob", "bytes", "string")},
    {"{\"request\":{\"blob\":\"-_8\"}}", "11=" WT("request.blob", "bytes", "string")},
    /* map keys converted to the key type */
    {"{\"m\":{\"ints\":{\"1\":2,\"-3\":4,\"1e1\":5}}}", "15={i:1:i:2,i:-3:i:4,i:10:i:5}"},
    {"{\"m\":{\"ints\":{\"1\":2,\"1.0\":3}}}", "15={i:1:i:3}"},
    {"{\"m\":{\"ints\":{\"x\":1}}}", "15=" WT("m.ints", "map(int, int)", "object")},
    {"{\"m\":{\"ints\":{\" 1\":1}}}", "15=" WT("m.ints", "map(int, int)", "object")},
    {"{\"m\":{\"ints\":{\"1\":\"1\"}}}", "15=" WT("m.ints", "map(int, int)", "object")},
    {"{\"flags\":{\"true\":1,\"false\":0}}", "18={true:u:1,false:u:0}"},
    {"{\"flags\":{\"yes\":1}}", "18=" WT("flags", "map(bool, uint)", "object")},
    /* nested lists */
    {"{\"lists\":[[1,2],[],[3]]}", "16=[[i:1,i:2],[],[i:3]]"},
    {"{\"lists\":[[1],[1.5]]}", "16=" WT("lists", "list(list(int))", "array")},
    {"{\"lists\":[[1],2]}", "16=" WT("lists", "list(list(int))", "array")},
    {"{\"lists\":[[[1]]]}", "16=" WT("lists", "list(list(int))", "array")},
    /* unknown keys are skipped, escaped keys are decoded */
    {"{\"zzz\":{\"deep\":[1,2,{\"x\":\"y\",\"n\":5}]},\"n\":1,\"other\":\"\\u00e9\",\"e\":-1.5e-7}", "13=i:1"},
    {"{\"\\u006e\":5}", "13=i:5"},
    {"{\"acc\\u006funt\":{\"\\u0069d\":\"x\"}}", "0=s:\"x\""},
    {"{\"Account\":{\"id\":\"x\"},\"account \":{\"id\":\"y\"},\"account.id\":\"z\"}", ""},
    {"{\"@expect\":\"deny\",\"n\":1}", "13=i:1"},
};

static void check_bind(const json_binder *b, const prog_field *fs, uint32_t nfs, const char *in,
                       const char *want, size_t idx) {
  arena a;
  arena_init(&a, 0);
  value slots[64];
  for (uint32_t i = 0; i < nfs; i++) slots[i] = fs[i].absent;
  json_error err;
  int rc = json_bind(b, in, strlen(in), &a, slots, NULL, &err);
  if (rc != CLAUSE_OK) fail_msg("case %zu (%s): error %d:%d %s", idx, in, err.line, err.column, err.message);
  char got[4096];
  outbuf o;
  ob_init_fixed(&o, got, sizeof got);
  for (uint32_t i = 0; i < nfs; i++) {
    if (slots[i].kind == CV_ERROR && slots[i].flag == CV_ERR_ABSENT) {
      /* absent slots hold the field's own absent value */
      if (slots[i].s != fs[i].absent.s) fail_msg("case %zu: slot %u absent but not the field's", idx, i);
      continue;
    }
    ob_printf(&o, "%s%u=%s", o.len ? " " : "", i, show(&slots[i]));
  }
  ob_cstr(&o);
  if (strcmp(got, want) != 0) fail_msg("case %zu (%s):\n got  %s\n want %s", idx, in, got, want);
  arena_free(&a);
}

static void test_bind_table(void **state) {
  (void)state;
  prog_field *fs = make_fields(schema, NSCHEMA);
  json_binder *b = json_binder_new(fs, NSCHEMA);
  assert_non_null(b);
  for (size_t i = 0; i < sizeof bind_cases / sizeof bind_cases[0]; i++)
    check_bind(b, fs, NSCHEMA, bind_cases[i].in, bind_cases[i].want, i);
  json_binder_free(b);
  free_fields(fs, NSCHEMA);
}

typedef struct bind_error_case {
  const char *in;
  int line, col;
  const char *message;
} bind_error_case;

static const bind_error_case bind_error_cases[] = {
    {"", 1, 1, "unexpected end of input"},
    {"  \n ", 2, 2, "unexpected end of input"},
    {"[1]", 1, 1, "the request is not a JSON object"},
    {"\"x\"", 1, 1, "the request is not a JSON object"},
    {"null", 1, 1, "the request is not a JSON object"},
    {"{\"n\":1} x", 1, 9, "unexpected characters after the request object"},
    {"{\"n\":1}{}", 1, 8, "unexpected characters after the request object"},
    {"{\"zzz\":[1,}", 1, 11, "expected a JSON value"},
    {"{\"zzz\":[1,2}", 1, 12, "expected ',' or ']' after an array element"},
    {"{\"zzz\":\"\xff\"}", 1, 9, "invalid UTF-8"},
    {"{\"zzz\xff\":1}", 1, 6, "invalid UTF-8"},
    {"{\"n\":1,}", 1, 8, "expected a string key"},
    {"{,}", 1, 2, "expected a string key or '}'"},
    {"{\"n\" 1}", 1, 6, "expected ':' after an object key"},
    {"{\"n\":1 \"u\":2}", 1, 8, "expected ',' or '}' after an object member"},
    {"{\"n\":01}", 1, 7, "invalid number: leading zero"},
    {"{\"n\":1.}", 1, 8, "invalid number: expected a digit after '.'"},
    {"{\"n\":tru}", 1, 6, "invalid literal: expected true, false or null"},
    {"{\"n\":[1,}", 1, 9, "expected a JSON value"},
    {"{\"request\":{\"tags\":[\"a\",]}}", 1, 25, "expected a JSON value"},
    {"{\"request\":{\"tags\":[1,]}}", 1, 23, "expected a JSON value"},
    {"{\"request\":{\"headers\":{\"a\":1,}}}", 1, 30, "expected a string key"},
    {"{\"request\":{\"extra\":[1,]}}", 1, 24, "expected a JSON value"},
    {"{\"account\":{\"id\":\"x\"", 1, 21, "unexpected end of input"},
    {"{\"account\":{\"id\":\"x\\q\"}}", 1, 20, "invalid escape"},
    {"{\"n\":\"\\ud800\"}", 1, 7, "invalid \\u escape: high surrogate without a low surrogate"},
    {"{\"n\":\n", 2, 1, "unexpected end of input"},
};

static void test_bind_errors(void **state) {
  (void)state;
  prog_field *fs = make_fields(schema, NSCHEMA);
  json_binder *b = json_binder_new(fs, NSCHEMA);
  arena a;
  arena_init(&a, 0);
  value slots[NSCHEMA];
  for (size_t i = 0; i < sizeof bind_error_cases / sizeof bind_error_cases[0]; i++) {
    const bind_error_case *bc = &bind_error_cases[i];
    for (uint32_t k = 0; k < NSCHEMA; k++) slots[k] = fs[k].absent;
    json_error err;
    int rc = json_bind(b, bc->in, strlen(bc->in), &a, slots, NULL, &err);
    if (rc != CLAUSE_ERR_JSON) fail_msg("case %zu (%s): rc %d", i, bc->in, rc);
    if (err.line != bc->line || err.column != bc->col || strcmp(err.message, bc->message) != 0)
      fail_msg("case %zu (%s): got %d:%d '%s' want %d:%d '%s'", i, bc->in, err.line, err.column,
               err.message, bc->line, bc->col, bc->message);
    arena_reset(&a);
  }
  arena_free(&a);
  json_binder_free(b);
  free_fields(fs, NSCHEMA);
}

/* Deep nesting inside unknown keys, `any` fields and typed lists. */
static void test_bind_depth(void **state) {
  (void)state;
  prog_field *fs = make_fields(schema, NSCHEMA);
  json_binder *b = json_binder_new(fs, NSCHEMA);
  arena a;
  arena_init(&a, 0);
  value slots[NSCHEMA];
  static const char *const prefixes[] = {"{\"zzz\":", "{\"request\":{\"extra\":",
                                         "{\"lists\":", "{\"request\":{\"tags\":",
                                         "{\"request\":{\"meta\":{\"k\":"};
  size_t big = 8u << 20;
  char *s = malloc(big);
  for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
    size_t plen = strlen(prefixes[i]);
    memcpy(s, prefixes[i], plen);
    memset(s + plen, '[', big - plen);
    for (uint32_t k = 0; k < NSCHEMA; k++) slots[k] = fs[k].absent;
    json_error err;
    assert_int_equal(json_bind(b, s, big, &a, slots, NULL, &err), CLAUSE_ERR_JSON);
    assert_string_equal(err.message, "nesting too deep (more than 512 levels)");
    assert_true(err.offset < 600);
    arena_reset(&a);
  }
  /* Up to JSON_MAX_DEPTH levels, the request object included, are fine
   * inside an unknown key and inside an `any` field; one more is not. */
  static const struct {
    const char *head, *tail;
    int outer, levels, rc;
  } deep[] = {
      {"{\"zzz\":", ",\"n\":3}", 1, 512, CLAUSE_OK},
      {"{\"zzz\":", ",\"n\":3}", 1, 513, CLAUSE_ERR_JSON},
      {"{\"request\":{\"extra\":", "},\"n\":3}", 2, 512, CLAUSE_OK},
      {"{\"request\":{\"extra\":", "},\"n\":3}", 2, 513, CLAUSE_ERR_JSON},
      {"{\"request\":{\"extra\":", "},\"n\":3}", 2, 511, CLAUSE_OK},
  };
  for (size_t i = 0; i < sizeof deep / sizeof deep[0]; i++) {
    outbuf o;
    ob_init_grow(&o);
    ob_puts(&o, deep[i].head);
    /* the rest as arrays holding objects: [{"a":[{"a":...}]}] */
    int rest = deep[i].levels - deep[i].outer, pairs = rest / 2;
    if (rest % 2) ob_putc(&o, '[');
    for (int k = 0; k < pairs; k++) ob_puts(&o, "[{\"a\":");
    ob_puts(&o, "1");
    for (int k = 0; k < pairs; k++) ob_puts(&o, "}]");
    if (rest % 2) ob_putc(&o, ']');
    ob_puts(&o, deep[i].tail);
    for (uint32_t k = 0; k < NSCHEMA; k++) slots[k] = fs[k].absent;
    json_error err;
    int rc = json_bind(b, o.buf, o.len, &a, slots, NULL, &err);
    if (rc != deep[i].rc) fail_msg("deep case %zu: rc %d (%s)", i, rc, err.message);
    if (rc == CLAUSE_OK) assert_int_equal(slots[13].i, 3);
    else assert_string_equal(err.message, "nesting too deep (more than 512 levels)");
    ob_free(&o);
    arena_reset(&a);
  }
  free(s);
  arena_free(&a);
  json_binder_free(b);
  free_fields(fs, NSCHEMA);
}

static void test_bind_meta(void **state) {
  (void)state;
  prog_field *fs = make_fields(schema, NSCHEMA);
  json_binder *b = json_binder_new(fs, NSCHEMA);
  arena a;
  arena_init(&a, 0);
  value slots[NSCHEMA];
  static const struct {
    const char *in;
    bool has, invalid;
    const char *expect;
  } cases[] = {
      {"{\"n\":1}", false, false, NULL},
      {"{\"@expect\":\"deny:no-bots\",\"n\":1}", true, false, "deny:no-bots"},
      {"{\"@expect\":\"allow\",\"@expect\":\"thro\\u0074tle\"}", true, false, "throttle"},
      {"{\"\\u0040expect\":\"deny\"}", true, false, "deny"},
      {"{\"@expect\":\"deny\",\"@expect\":null}", false, false, NULL},
      {"{\"@expect\":5}", false, true, NULL},
      {"{\"@expect\":[\"deny\"]}", false, true, NULL},
      {"{\"x\":{\"@expect\":\"deny\"}}", false, false, NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    for (uint32_t k = 0; k < NSCHEMA; k++) slots[k] = fs[k].absent;
    json_meta meta;
    memset(&meta, 0xa5, sizeof meta);
    json_error err;
    char *copy = strdup(cases[i].in);
    assert_int_equal(json_bind(b, copy, strlen(copy), &a, slots, &meta, &err), CLAUSE_OK);
    memset(copy, 'X', strlen(copy)); /* the expectation is a copy */
    free(copy);
    if (meta.has_expect != cases[i].has || meta.expect_invalid != cases[i].invalid)
      fail_msg("case %zu: has %d invalid %d", i, meta.has_expect, meta.expect_invalid);
    if (cases[i].expect) {
      assert_int_equal(meta.expect_len, strlen(cases[i].expect));
      assert_string_equal(meta.expect, cases[i].expect);
    } else {
      assert_null(meta.expect);
    }
  }
  /* Without meta, "@expect" is just an unknown key. */
  for (uint32_t k = 0; k < NSCHEMA; k++) slots[k] = fs[k].absent;
  const char *in = "{\"@expect\":{\"x\":[1]},\"n\":1}";
  assert_int_equal(json_bind(b, in, strlen(in), &a, slots, NULL, NULL), CLAUSE_OK);
  assert_int_equal(slots[13].i, 1);
  arena_free(&a);
  json_binder_free(b);
  free_fields(fs, NSCHEMA);
}

/* A message longer than the formatter's local buffer; values survive the
 * input being overwritten. */
static void test_bind_long_path(void **state) {
  (void)state;
  char path[400];
  memset(path, 'y', sizeof path - 1);
  path[0] = 'x';
  path[1] = '.';
  path[sizeof path - 1] = '\0';
  field_def defs[2] = {{path, &t_list_string}, {"x.s", &t_string}};
  prog_field *fs = make_fields(defs, 2);
  json_binder *b = json_binder_new(fs, 2);
  assert_non_null(b);
  outbuf o;
  ob_init_grow(&o);
  ob_printf(&o, "{\"x\":{\"s\":\"kept\",\"%s\":7}}", path + 2);
  arena a;
  arena_init(&a, 0);
  value slots[2] = {fs[0].absent, fs[1].absent};
  assert_int_equal(json_bind(b, o.buf, o.len, &a, slots, NULL, NULL), CLAUSE_OK);
  memset(o.buf, ' ', o.len);
  assert_int_equal(slots[0].kind, CV_ERROR);
  assert_int_equal(slots[0].flag, CV_ERR_WRONG_TYPE);
  char want[600];
  snprintf(want, sizeof want, "wrong type for field %s: expected list(string), got number", path);
  assert_int_equal(slots[0].n, strlen(want));
  assert_string_equal(slots[0].s, want);
  assert_string_equal(slots[1].s, "kept");
  ob_free(&o);
  arena_free(&a);
  json_binder_free(b);
  free_fields(fs, 2);
}

static void test_binder_schema(void **state) {
  (void)state;
  static const field_def prefix[] = {{"a.b", &t_int}, {"a", &t_int}};
  static const field_def prefix2[] = {{"a", &t_int}, {"a.b", &t_int}};
  static const field_def same[] = {{"a.b", &t_int}, {"a.b", &t_string}};
  static const field_def fine[] = {{"a.b", &t_int}, {"a.c", &t_int}, {"b", &t_int}};
  prog_field *fs = make_fields(prefix, 2);
  assert_null(json_binder_new(fs, 2));
  free_fields(fs, 2);
  fs = make_fields(prefix2, 2);
  assert_null(json_binder_new(fs, 2));
  free_fields(fs, 2);
  fs = make_fields(same, 2);
  assert_null(json_binder_new(fs, 2));
  free_fields(fs, 2);
  fs = make_fields(fine, 3);
  json_binder *b = json_binder_new(fs, 3);
  assert_non_null(b);
  json_binder_free(b);
  free_fields(fs, 3);
  b = json_binder_new(NULL, 0); /* an empty schema still reads requests */
  assert_non_null(b);
  arena a;
  arena_init(&a, 0);
  assert_int_equal(json_bind(b, "{\"a\":1}", 7, &a, NULL, NULL, NULL), CLAUSE_OK);
  assert_int_equal(json_bind(b, "[]", 2, &a, NULL, NULL, NULL), CLAUSE_ERR_JSON);
  arena_free(&a);
  json_binder_free(b);
  json_binder_free(NULL);
}

/* Many keys at one level (binary search in the key table). */
static void test_binder_wide(void **state) {
  (void)state;
  enum { N = 40 };
  field_def defs[N];
  char names[N][16];
  for (int i = 0; i < N; i++) {
    snprintf(names[i], sizeof names[i], i % 2 ? "f%d" : "field_%d", i);
    defs[i] = (field_def){names[i], &t_int};
  }
  prog_field *fs = make_fields(defs, N);
  json_binder *b = json_binder_new(fs, N);
  assert_non_null(b);
  outbuf o;
  ob_init_grow(&o);
  ob_putc(&o, '{');
  for (int i = N - 1; i >= 0; i--) ob_printf(&o, "\"%s\":%d,\"x%s\":0,", names[i], i * 3, names[i]);
  ob_puts(&o, "\"f\":1}");
  arena a;
  arena_init(&a, 0);
  value slots[N];
  for (int i = 0; i < N; i++) slots[i] = fs[i].absent;
  assert_int_equal(json_bind(b, o.buf, o.len, &a, slots, NULL, NULL), CLAUSE_OK);
  for (int i = 0; i < N; i++) {
    assert_int_equal(slots[i].kind, CV_INT);
    assert_int_equal(slots[i].i, i * 3);
  }
  ob_free(&o);
  arena_free(&a);
  json_binder_free(b);
  free_fields(fs, N);
}

typedef struct field_case {
  const rtype *type;
  const char *in;
  int rc;
  const char *want; /* printed slot on CLAUSE_OK */
} field_case;

static const field_case field_cases[] = {
    {&t_int, " 42 ", CLAUSE_OK, "i:42"},
    {&t_int, "null", CLAUSE_OK, "absent"},
    {&t_int, "\"x\"", CLAUSE_OK, WT("f", "int", "string")},
    {&t_int, "42 x", CLAUSE_ERR_JSON, NULL},
    {&t_int, "", CLAUSE_ERR_JSON, NULL},
    {&t_list_list_int, "[[1],[2,3]]", CLAUSE_OK, "[[i:1],[i:2,i:3]]"},
    {&t_any, "{\"a\":[1]}", CLAUSE_OK, "{s:\"a\":[d:1]}"},
    {&t_any, "{\"a\":[1]", CLAUSE_ERR_JSON, NULL},
    {&t_map_string_string, "{\"a\":\"b\"}", CLAUSE_OK, "{s:\"a\":s:\"b\"}"},
    {&t_timestamp, "\"1970-01-01T00:00:01Z\"", CLAUSE_OK, "ts:1.000000000"},
    {&t_string, "[\"\xff\"]", CLAUSE_ERR_JSON, NULL},
};

static void test_bind_field(void **state) {
  (void)state;
  arena a;
  arena_init(&a, 0);
  for (size_t i = 0; i < sizeof field_cases / sizeof field_cases[0]; i++) {
    const field_case *fc = &field_cases[i];
    field_def def = {"f", fc->type};
    prog_field *f = make_fields(&def, 1);
    value slot = cv_int(-99);
    json_error err;
    int rc = json_bind_field(f, fc->in, strlen(fc->in), &a, &slot, &err);
    if (rc != fc->rc) fail_msg("case %zu (%s): rc %d (%s)", i, fc->in, rc, err.message);
    if (rc == CLAUSE_OK) {
      if (strcmp(show(&slot), fc->want) != 0) fail_msg("case %zu: got %s want %s", i, show(&slot), fc->want);
    } else {
      assert_int_equal(slot.i, -99); /* untouched on failure */
    }
    free_fields(f, 1);
  }
  arena_free(&a);
}

/* ---- decision JSON --------------------------------------------------------------- */

static void test_effect_names(void **state) {
  (void)state;
  assert_string_equal(clause_effect_name(CLAUSE_ALLOW), "allow");
  assert_string_equal(clause_effect_name(CLAUSE_THROTTLE), "throttle");
  assert_string_equal(clause_effect_name(CLAUSE_DENY), "deny");
  assert_string_equal(clause_effect_name(CLAUSE_SUSPEND), "suspend");
}

static const char *const flags2[] = {"eval-harness", "caf\xc3\xa9"};
static const clause_obligation obligs2[] = {
    {"eval-harness", "log", "[\"trust-and-safety\"]"},
    {"r2", "notify", "[1,{\"a\":null}]"},
};
static const clause_eval_error errors2[] = {
    {"some-rule", "no such key: request.purpose"},
    {NULL, "missing field \"x\"\n\ttab\\"},
};

typedef struct decision_case {
  clause_decision d;
  const char *want;
} decision_case;

static const decision_case decision_cases[] = {
    {{CLAUSE_ALLOW, NULL, NULL, NULL, -1, 0, NULL, 0, NULL, 0, NULL},
     "{\"effect\":\"allow\",\"rule\":null,\"reason\":null,\"cite\":null,\"flags\":[],"
     "\"obligations\":[],\"retry_after_ms\":null,\"errors\":[]}"},
    {{CLAUSE_DENY, "no-competing-models", "Output may not be used \"to train\"",
      "Terms of Use, section 2(c)(iii)", -1, 2, flags2, 2, obligs2, 2, errors2},
     "{\"effect\":\"deny\",\"rule\":\"no-competing-models\",\"reason\":\"Output may not be used "
     "\\\"to train\\\"\",\"cite\":\"Terms of Use, section 2(c)(iii)\",\"flags\":[\"eval-harness\","
     "\"caf\xc3\xa9\"],\"obligations\":[{\"rule\":\"eval-harness\",\"action\":\"log\",\"args\":"
     "[\"trust-and-safety\"]},{\"rule\":\"r2\",\"action\":\"notify\",\"args\":[1,{\"a\":null}]}],"
     "\"retry_after_ms\":null,\"errors\":[{\"rule\":\"some-rule\",\"message\":\"no such key: "
     "request.purpose\"},{\"rule\":null,\"message\":\"missing field \\\"x\\\"\\n\\ttab\\\\\"}]}"},
    {{CLAUSE_THROTTLE, "rpm", "slow down", NULL, 1500, 0, NULL, 0, NULL, 0, NULL},
     "{\"effect\":\"throttle\",\"rule\":\"rpm\",\"reason\":\"slow down\",\"cite\":null,\"flags\":[],"
     "\"obligations\":[],\"retry_after_ms\":1500,\"errors\":[]}"},
    {{CLAUSE_SUSPEND, "abuse", NULL, NULL, 0, 0, NULL, 0, NULL, 0, NULL},
     "{\"effect\":\"suspend\",\"rule\":\"abuse\",\"reason\":null,\"cite\":null,\"flags\":[],"
     "\"obligations\":[],\"retry_after_ms\":0,\"errors\":[]}"},
};

static void test_decision_json(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof decision_cases / sizeof decision_cases[0]; i++) {
    const decision_case *dc = &decision_cases[i];
    char buf[1024];
    int n = clause_decision_json(&dc->d, buf, sizeof buf);
    assert_int_equal(n, strlen(dc->want));
    assert_string_equal(buf, dc->want);
    /* Size query, and every short capacity: truncated, NUL-terminated,
     * nothing written past cap. */
    assert_int_equal(clause_decision_json(&dc->d, NULL, 0), n);
    for (size_t cap = 1; cap <= (size_t)n + 1; cap += cap < 40 ? 1 : 37) {
      char small[1100];
      memset(small, '#', sizeof small);
      assert_int_equal(clause_decision_json(&dc->d, small, cap), n);
      assert_int_equal(strlen(small), cap - 1 < (size_t)n ? cap - 1 : (size_t)n);
      assert_memory_equal(small, dc->want, strlen(small));
      for (size_t k = cap; k < sizeof small; k++)
        if (small[k] != '#') fail_msg("case %zu cap %zu: byte %zu written", i, cap, k);
    }
  }
}

static void test_decision_json_args(void **state) {
  (void)state;
  clause_decision d = {CLAUSE_ALLOW, NULL, NULL, NULL, -1, 0, NULL, 0, NULL, 0, NULL};
  char buf[256];
  assert_true(clause_decision_json(NULL, buf, sizeof buf) < 0);
  assert_true(clause_decision_json(&d, NULL, 5) < 0);
  d.effect = (clause_effect)7;
  assert_true(clause_decision_json(&d, buf, sizeof buf) < 0);
  d.effect = CLAUSE_DENY;
  d.n_flags = 1;
  assert_true(clause_decision_json(&d, buf, sizeof buf) < 0);
  d.n_flags = 0;
  static const clause_obligation noargs = {"r", "log", NULL};
  d.n_obligations = 1;
  d.obligations = &noargs;
  assert_true(clause_decision_json(&d, buf, sizeof buf) > 0);
  assert_non_null(strstr(buf, "{\"rule\":\"r\",\"action\":\"log\",\"args\":[]}"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_table),
      cmocka_unit_test(test_parse_error_offset),
      cmocka_unit_test(test_parse_depth),
      cmocka_unit_test(test_parse_many_keys),
      cmocka_unit_test(test_bind_table),
      cmocka_unit_test(test_bind_errors),
      cmocka_unit_test(test_bind_depth),
      cmocka_unit_test(test_bind_meta),
      cmocka_unit_test(test_bind_long_path),
      cmocka_unit_test(test_binder_schema),
      cmocka_unit_test(test_binder_wide),
      cmocka_unit_test(test_bind_field),
      cmocka_unit_test(test_effect_names),
      cmocka_unit_test(test_decision_json),
      cmocka_unit_test(test_decision_json_args),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
