/*
 * test_cel_lib.c - the CEL library functions on runtime values: time
 * (vm/cel_time.c), strings (vm/cel_strings.c), regex (vm/regex.c) and math
 * (vm/cel_math.c).
 *
 * Most tests are tables of calls written as small CEL-like literals, with
 * the expected result in the canonical value text of
 * ../shared/cel/README.md (cel_canon); an expected text "error:MSG" passes
 * when the result is an error whose message starts with MSG.
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
#include "regex.h"

extern const cel_builtin cel_builtins_time[], cel_builtins_strings[], cel_builtins_math[];

/* ---- fixture ------------------------------------------------------------------ */

typedef struct fixture {
  arena scratch;
  cel_ctx ctx;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  if (!f) return -1;
  arena_init(&f->scratch, 1024);
  f->ctx.scratch = &f->scratch;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  arena_free(&f->scratch);
  if (f->ctx.regex_cache) regex_cache_free(f->ctx.regex_cache);
  free(f);
  return 0;
}

/* ---- literals: 'str' b'bytes' 12 12u 1.5 nan inf -inf true false null
 * [..] {k: v} ts'RFC3339' dur'1.5s' type:NAME ----------------------------------- */

typedef struct lit_parser {
  const char *p;
  arena *a;
} lit_parser;

static void skip_space(lit_parser *lp) {
  while (*lp->p == ' ') lp->p++;
}

static bool eat(lit_parser *lp, const char *word) {
  size_t n = strlen(word);
  if (strncmp(lp->p, word, n) != 0) return false;
  lp->p += n;
  return true;
}

/* The text of a quoted literal: \\ and \' are the only escapes. */
static const char *quoted(lit_parser *lp, uint32_t *len) {
  assert_true(*lp->p == '\'');
  lp->p++;
  char *out = arena_alloc(lp->a, strlen(lp->p) + 1);
  size_t n = 0;
  while (*lp->p && *lp->p != '\'') {
    if (*lp->p == '\\' && lp->p[1]) lp->p++;
    out[n++] = *lp->p++;
  }
  assert_true(*lp->p == '\'');
  lp->p++;
  *len = (uint32_t)n;
  return out;
}

static value parse_lit(lit_parser *lp);

static value parse_seq(lit_parser *lp, char close, bool pairs) {
  value tmp[64];
  uint32_t n = 0;
  lp->p++;
  skip_space(lp);
  while (*lp->p != close) {
    tmp[n++] = parse_lit(lp);
    skip_space(lp);
    if (pairs) {
      assert_true(*lp->p == ':');
      lp->p++;
      tmp[n++] = parse_lit(lp);
      skip_space(lp);
    }
    if (*lp->p == ',') lp->p++;
    skip_space(lp);
    assert_true(n < 62);
  }
  lp->p++;
  value *items = arena_alloc(lp->a, (n ? n : 1) * sizeof *items);
  memcpy(items, tmp, n * sizeof *items);
  return pairs ? cv_map(items, n / 2) : cv_list(items, n);
}

static value parse_lit(lit_parser *lp) {
  uint32_t n;
  skip_space(lp);
  if (*lp->p == '[') return parse_seq(lp, ']', false);
  if (*lp->p == '{') return parse_seq(lp, '}', true);
  if (*lp->p == '\'') {
    const char *s = quoted(lp, &n);
    return cv_string(s, n);
  }
  if (eat(lp, "b'")) {
    lp->p--;
    const char *s = quoted(lp, &n);
    return cv_bytes(s, n);
  }
  if (eat(lp, "ts'")) {
    lp->p--;
    const char *s = quoted(lp, &n);
    int64_t secs;
    uint32_t nanos;
    assert_true(cel_parse_timestamp(s, n, &secs, &nanos));
    return cv_timestamp(secs, nanos);
  }
  if (eat(lp, "dur'")) {
    lp->p--;
    const char *s = quoted(lp, &n);
    int64_t ns;
    assert_true(cel_parse_duration(s, n, &ns));
    return cv_duration(ns);
  }
  if (eat(lp, "type:")) {
    static const struct {
      const char *name;
      cv_kind kind;
    } types[] = {{"int", CV_INT}, {"string", CV_STRING}, {"list", CV_LIST}, {"type", CV_TYPE}};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
      if (eat(lp, types[i].name)) return cv_type(types[i].kind);
    fail_msg("unknown type literal at %s", lp->p);
  }
  if (eat(lp, "true")) return cv_bool(true);
  if (eat(lp, "false")) return cv_bool(false);
  if (eat(lp, "null")) return cv_null();
  if (eat(lp, "nan")) return cv_double(NAN);
  if (eat(lp, "inf")) return cv_double(INFINITY);
  if (eat(lp, "-inf")) return cv_double(-INFINITY);
  const char *start = lp->p;
  char *end;
  if (*lp->p == '-') lp->p++;
  while ((*lp->p >= '0' && *lp->p <= '9')) lp->p++;
  if (*lp->p == 'u') {
    lp->p++;
    return cv_uint(strtoull(start, NULL, 10));
  }
  if (*lp->p == '.' || *lp->p == 'e') {
    double d = strtod(start, &end);
    lp->p = end;
    return cv_double(d);
  }
  assert_true(lp->p > start);
  return cv_int(strtoll(start, NULL, 10));
}

/* The arguments written as a list literal: "['abc', 1]". */
static int parse_args(arena *a, const char *text, value *args) {
  lit_parser lp = {text, a};
  value list = parse_lit(&lp);
  assert_int_equal(list.kind, CV_LIST);
  memcpy(args, list.items, list.n * sizeof *args);
  return (int)list.n;
}

/* ---- calling builtins ----------------------------------------------------------- */

static const cel_builtin *find_builtin(const char *name, bool member, int nargs) {
  const cel_builtin *tables[] = {cel_builtins_time, cel_builtins_strings, cel_builtins_math};
  for (size_t t = 0; t < 3; t++)
    for (const cel_builtin *b = tables[t]; b->name; b++)
      if (strcmp(b->name, name) == 0 && (b->member != 0) == member && nargs >= b->min_args &&
          nargs <= b->max_args)
        return b;
  return NULL;
}

typedef struct call_case {
  const char *name;
  bool member; /* target.name(...): the target is the first argument */
  const char *args;
  const char *expect;
} call_case;

static void check_text(const value *v, const char *expect, const char *what) {
  char buf[2048];
  outbuf o;
  ob_init_fixed(&o, buf, sizeof buf);
  cel_canon(&o, v);
  ob_cstr(&o);
  bool ok = strncmp(expect, "error:", 6) == 0 ? strncmp(buf, expect, strlen(expect)) == 0
                                              : strcmp(buf, expect) == 0;
  if (!ok) fail_msg("%s\n  got:  %s\n  want: %s", what, buf, expect);
}

static void run_calls(fixture *f, const call_case *cases, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const call_case *c = &cases[i];
    value args[64];
    int nargs = parse_args(&f->scratch, c->args, args);
    const cel_builtin *b = find_builtin(c->name, c->member, nargs);
    if (!b) fail_msg("no builtin %s/%d (member %d)", c->name, nargs, c->member);
    assert_int_equal(b->errors_in, 0);
    value out = cv_null();
    b->fn(&f->ctx, &out, args, nargs);
    char what[512];
    snprintf(what, sizeof what, "%s%s(%s)", c->member ? "." : "", c->name, c->args);
    check_text(&out, c->expect, what);
    if (out.kind == CV_STRING) assert_true(cel_utf8_valid(out.s, out.n));
  }
}

#define RUN_CALLS(state, table) run_calls(*(state), table, sizeof table / sizeof table[0])

/* ---- timestamps -------------------------------------------------------------------- */

static void test_timestamp_parse_format(void **state) {
  (void)state;
  static const struct {
    const char *in;
    const char *out; /* NULL: rejected */
  } cases[] = {
      {"2024-05-01T10:00:00Z", "2024-05-01T10:00:00Z"},
      {"2024-05-01t10:00:00z", "2024-05-01T10:00:00Z"},
      {"2024-05-01T10:00:00.25Z", "2024-05-01T10:00:00.250Z"},
      {"2024-05-01T10:00:00.5Z", "2024-05-01T10:00:00.500Z"},
      {"2024-05-01T10:00:00.000001Z", "2024-05-01T10:00:00.000001Z"},
      {"2024-05-01T10:00:00.0000015Z", "2024-05-01T10:00:00.000001500Z"},
      {"2024-05-01T10:00:00.123456789Z", "2024-05-01T10:00:00.123456789Z"},
      {"2024-05-01T10:00:00.000000000Z", "2024-05-01T10:00:00Z"},
      {"2024-05-01T15:30:00+05:30", "2024-05-01T10:00:00Z"},
      {"2024-05-01T02:00:00-08:00", "2024-05-01T10:00:00Z"},
      {"2024-05-01T00:30:00+01:00", "2024-04-30T23:30:00Z"},
      {"2024-02-29T00:00:00Z", "2024-02-29T00:00:00Z"},
      {"2000-02-29T12:00:00Z", "2000-02-29T12:00:00Z"},
      {"1969-12-31T23:59:59Z", "1969-12-31T23:59:59Z"},
      {"0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"},
      {"0001-01-01T01:00:00+01:00", "0001-01-01T00:00:00Z"},
      {"9999-12-31T23:59:59.999999999Z", "9999-12-31T23:59:59.999999999Z"},
      {"9999-12-31T22:59:59-01:00", "9999-12-31T23:59:59Z"},
      {"0000-12-31T23:59:59Z", NULL},
      {"0001-01-01T00:00:00+00:01", NULL},
      {"9999-12-31T23:59:59-00:01", NULL},
      {"10000-01-01T00:00:00Z", NULL},
      {"2024-05-01T10:00:00.1234567891Z", NULL},
      {"2024-05-01T10:00:00.Z", NULL},
      {"2024-05-01T10:00:00", NULL},
      {"2024-05-01 10:00:00Z", NULL},
      {"2024-05-01T10:00Z", NULL},
      {"2023-02-29T00:00:00Z", NULL},
      {"1900-02-29T00:00:00Z", NULL},
      {"2024-04-31T00:00:00Z", NULL},
      {"2024-13-01T00:00:00Z", NULL},
      {"2024-05-01T24:00:00Z", NULL},
      {"2024-05-01T23:60:00Z", NULL},
      {"2024-05-01T23:59:60Z", NULL},
      {"2024-05-01T10:00:00+05:3", NULL},
      {"2024-05-01T10:00:00+24:00", NULL},
      {"2024-05-01T10:00:00+0530", NULL},
      {"2024-05-01T10:00:00ZZ", NULL},
      {"2024-5-01T10:00:00Z", NULL},
      {"", NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int64_t secs = 0;
    uint32_t nanos = 0;
    bool ok = cel_parse_timestamp(cases[i].in, strlen(cases[i].in), &secs, &nanos);
    if (ok != (cases[i].out != NULL)) fail_msg("parse %s: %d", cases[i].in, ok);
    if (!ok) continue;
    char buf[64];
    outbuf o;
    ob_init_fixed(&o, buf, sizeof buf);
    cel_format_timestamp(&o, secs, nanos);
    assert_string_equal(ob_cstr(&o), cases[i].out);
  }

  int64_t secs;
  uint32_t nanos;
  assert_true(cel_parse_timestamp("2009-02-13T23:31:30Z", 20, &secs, &nanos));
  assert_int_equal(secs, 1234567890);
  assert_true(cel_parse_timestamp("1970-01-01T00:00:00Z", 20, &secs, &nanos));
  assert_int_equal(secs, 0);
  assert_true(cel_parse_timestamp("0001-01-01T00:00:00Z", 20, &secs, &nanos));
  assert_int_equal(secs, CV_TS_MIN_SECS);
  assert_true(cel_parse_timestamp("9999-12-31T23:59:59.999999999Z", 30, &secs, &nanos));
  assert_int_equal(secs, CV_TS_MAX_SECS);
  assert_int_equal(nanos, 999999999);
  /* Not NUL-terminated: only n bytes are read. */
  assert_true(cel_parse_timestamp("2009-02-13T23:31:30Zjunk", 20, &secs, &nanos));
  assert_int_equal(secs, 1234567890);
}

/* Every 13th day (all weekdays, months and many Feb 29ths) from 0001 to
 * 9999 formats and parses back. */
static void test_timestamp_round_trip(void **state) {
  (void)state;
  const int64_t step = 13 * 86400 + 1;
  for (int64_t t = CV_TS_MIN_SECS; t <= CV_TS_MAX_SECS; t += step) {
    char buf[64];
    outbuf o;
    ob_init_fixed(&o, buf, sizeof buf);
    cel_format_timestamp(&o, t, 7000);
    int64_t back;
    uint32_t nanos;
    if (!cel_parse_timestamp(buf, o.len, &back, &nanos) || back != t || nanos != 7000)
      fail_msg("round trip of %lld: %s", (long long)t, ob_cstr(&o));
  }
}

static void test_duration_parse_format(void **state) {
  (void)state;
  static const struct {
    const char *in;
    bool ok;
    int64_t ns;
    const char *out;
  } cases[] = {
      {"0", true, 0, "0s"},
      {"-0", true, 0, "0s"},
      {"+0", true, 0, "0s"},
      {"0s", true, 0, "0s"},
      {"1.5s", true, 1500000000, "1.5s"},
      {"-1.5s", true, -1500000000, "-1.5s"},
      {"+1s", true, 1000000000, "1s"},
      {"-2h45m", true, -9900000000000, "-9900s"},
      {"1h30m15.5s", true, 5415500000000, "5415.5s"},
      {"1ns", true, 1, "0.000000001s"},
      {"1us", true, 1000, "0.000001s"},
      {"1\xC2\xB5s", true, 1000, "0.000001s"},
      {"1\xCE\xBCs", true, 1000, "0.000001s"},
      {"1ms", true, 1000000, "0.001s"},
      {"250ms", true, 250000000, "0.25s"},
      {"1h", true, 3600000000000, "3600s"},
      {"1.5h", true, 5400000000000, "5400s"},
      {".5s", true, 500000000, "0.5s"},
      {"5.s", true, 5000000000, "5s"},
      {"1000000s", true, 1000000000000000, "1000000s"},
      {"123.321456789s", true, 123321456789, "123.321456789s"},
      {"0.1234567891s", true, 123456789, "0.123456789s"},
      {"0.333333333333333333333333h", true, 1199999999999, "1199.999999999s"},
      {"1.000000000000000000001h", true, 3600000000000, "3600s"},
      {"1s1s", true, 2000000000, "2s"},
      {"2562047h47m16.854775807s", true, INT64_MAX, "9223372036.854775807s"},
      {"9223372036854775807ns", true, INT64_MAX, "9223372036.854775807s"},
      {"-9223372036854775808ns", true, INT64_MIN, "-9223372036.854775808s"},
      {"-2562047h47m16.854775808s", true, INT64_MIN, "-9223372036.854775808s"},
      {"9223372036854775808ns", false, 0, NULL},
      {"2562047h47m16.854775808s", false, 0, NULL},
      {"320000000000s", false, 0, NULL},
      {"-320000000000s", false, 0, NULL},
      {"99999999999999999999s", false, 0, NULL},
      {"", false, 0, NULL},
      {"-", false, 0, NULL},
      {"s", false, 0, NULL},
      {"1", false, 0, NULL},
      {"00", false, 0, NULL},
      {"1d", false, 0, NULL},
      {"1sec", false, 0, NULL},
      {"1S", false, 0, NULL},
      {".", false, 0, NULL},
      {".s", false, 0, NULL},
      {"1..5s", false, 0, NULL},
      {"1e3s", false, 0, NULL},
      {"--1s", false, 0, NULL},
      {"1s ", false, 0, NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int64_t ns = 42;
    bool ok = cel_parse_duration(cases[i].in, strlen(cases[i].in), &ns);
    if (ok != cases[i].ok) fail_msg("parse %s: %d", cases[i].in, ok);
    if (!ok) continue;
    if (ns != cases[i].ns) fail_msg("parse %s: %lld", cases[i].in, (long long)ns);
    char buf[64];
    outbuf o;
    ob_init_fixed(&o, buf, sizeof buf);
    cel_format_duration(&o, ns);
    assert_string_equal(ob_cstr(&o), cases[i].out);
    /* The canonical form reads back as the same duration. */
    int64_t back;
    assert_true(cel_parse_duration(buf, o.len, &back));
    assert_int_equal(back, ns);
  }
}

static void test_time_accessors(void **state) {
  static const call_case cases[] = {
      /* conformance: timestamps/timestamp_selectors(_tz) */
      {"getDate", 1, "[ts'2009-02-13T23:31:30Z']", "i:13"},
      {"getDayOfMonth", 1, "[ts'2009-02-13T23:31:30Z']", "i:12"},
      {"getDayOfWeek", 1, "[ts'2009-02-13T23:31:30Z']", "i:5"},
      {"getDayOfYear", 1, "[ts'2009-02-13T23:31:30Z']", "i:43"},
      {"getFullYear", 1, "[ts'2009-02-13T23:31:30Z']", "i:2009"},
      {"getHours", 1, "[ts'2009-02-13T23:31:30Z']", "i:23"},
      {"getMilliseconds", 1, "[ts'2009-02-13T23:31:20.123456789Z']", "i:123"},
      {"getMinutes", 1, "[ts'2009-02-13T23:31:30Z']", "i:31"},
      {"getMonth", 1, "[ts'2009-02-13T23:31:30Z']", "i:1"},
      {"getSeconds", 1, "[ts'2009-02-13T23:31:30Z']", "i:30"},
      {"getDate", 1, "[ts'2009-02-13T23:31:30Z', 'Australia/Sydney']", "i:14"},
      {"getDayOfMonth", 1, "[ts'2009-02-13T23:31:30Z', 'US/Central']", "i:12"},
      {"getDayOfMonth", 1, "[ts'2009-02-13T23:31:30Z', '+11:00']", "i:13"},
      {"getDayOfMonth", 1, "[ts'2009-02-13T02:00:00Z', '-02:30']", "i:11"},
      {"getDayOfMonth", 1, "[ts'2009-02-13T02:00:00Z', 'America/St_Johns']", "i:11"},
      {"getDayOfWeek", 1, "[ts'2009-02-13T23:31:30Z', 'UTC']", "i:5"},
      {"getDayOfYear", 1, "[ts'2009-02-13T23:31:30Z', 'US/Central']", "i:43"},
      {"getFullYear", 1, "[ts'2009-02-13T23:31:30Z', '-09:30']", "i:2009"},
      {"getHours", 1, "[ts'2009-02-13T23:31:30Z', '02:00']", "i:1"},
      {"getMinutes", 1, "[ts'2009-02-13T23:31:30Z', 'Asia/Kathmandu']", "i:16"},
      {"getMonth", 1, "[ts'2009-02-13T23:31:30Z', 'UTC']", "i:1"},
      {"getSeconds", 1, "[ts'2009-02-13T23:31:30Z', '-00:00']", "i:30"},
      /* a real IANA zone: summer and winter, inside the transition table */
      {"getHours", 1, "[ts'2024-07-01T12:00:00Z', 'America/Los_Angeles']", "i:5"},
      {"getHours", 1, "[ts'2024-01-15T12:00:00Z', 'America/Los_Angeles']", "i:4"},
      {"getHours", 1, "[ts'2024-03-10T09:59:59Z', 'America/Los_Angeles']", "i:1"},
      {"getHours", 1, "[ts'2024-03-10T10:00:00Z', 'America/Los_Angeles']", "i:3"},
      {"getHours", 1, "[ts'2024-11-03T08:59:59Z', 'America/Los_Angeles']", "i:1"},
      {"getHours", 1, "[ts'2024-11-03T09:00:00Z', 'America/Los_Angeles']", "i:1"},
      /* past the table: the TZif footer's POSIX rule */
      {"getHours", 1, "[ts'2100-07-01T12:00:00Z', 'America/Los_Angeles']", "i:5"},
      {"getHours", 1, "[ts'2100-01-15T12:00:00Z', 'America/Los_Angeles']", "i:4"},
      {"getHours", 1, "[ts'9999-07-01T12:00:00Z', 'America/Los_Angeles']", "i:5"},
      {"getHours", 1, "[ts'2100-01-01T00:00:00Z', 'Australia/Sydney']", "i:11"},
      {"getHours", 1, "[ts'2100-07-01T00:00:00Z', 'Australia/Sydney']", "i:10"},
      {"getMinutes", 1, "[ts'2100-07-01T00:00:00Z', 'Asia/Kathmandu']", "i:45"},
      /* Irish rules: standard time in summer, a negative DST in winter */
      {"getHours", 1, "[ts'2100-01-15T12:00:00Z', 'Europe/Dublin']", "i:12"},
      {"getHours", 1, "[ts'2100-07-01T12:00:00Z', 'Europe/Dublin']", "i:13"},
      /* before the first transition: local mean time (-7:52:58) */
      {"getMinutes", 1, "[ts'1800-01-01T12:00:00Z', 'America/Los_Angeles']", "i:7"},
      {"getSeconds", 1, "[ts'1800-01-01T12:00:00Z', 'America/Los_Angeles']", "i:2"},
      /* fixed offsets */
      {"getHours", 1, "[ts'2024-05-01T10:00:00Z', '+05:30']", "i:15"},
      {"getMinutes", 1, "[ts'2024-05-01T10:00:00Z', '+05:30']", "i:30"},
      {"getHours", 1, "[ts'2024-05-01T10:00:00Z', '-08:00']", "i:2"},
      {"getDate", 1, "[ts'2024-05-01T01:00:00Z', '-08:00']", "i:30"},
      {"getMonth", 1, "[ts'2024-05-01T01:00:00Z', '-08:00']", "i:3"},
      {"getHours", 1, "[ts'2024-05-01T10:00:00Z', '9:15']", "i:19"},
      /* edge years and calendar */
      {"getFullYear", 1, "[ts'0001-01-01T00:00:00Z']", "i:1"},
      {"getDayOfWeek", 1, "[ts'0001-01-01T00:00:00Z']", "i:1"},
      {"getFullYear", 1, "[ts'0001-01-01T00:00:00Z', '-01:00']", "i:0"},
      {"getMonth", 1, "[ts'0001-01-01T00:00:00Z', '-01:00']", "i:11"},
      {"getFullYear", 1, "[ts'9999-12-31T23:59:59.999999999Z']", "i:9999"},
      {"getDayOfWeek", 1, "[ts'9999-12-31T23:59:59.999999999Z']", "i:5"},
      {"getDayOfYear", 1, "[ts'9999-12-31T23:59:59.999999999Z']", "i:364"},
      {"getMilliseconds", 1, "[ts'9999-12-31T23:59:59.999999999Z']", "i:999"},
      {"getFullYear", 1, "[ts'9999-12-31T23:59:59Z', '+01:00']", "i:10000"},
      {"getDayOfYear", 1, "[ts'2024-12-31T00:00:00Z']", "i:365"},
      {"getDayOfYear", 1, "[ts'2023-12-31T00:00:00Z']", "i:364"},
      {"getDayOfWeek", 1, "[ts'1970-01-01T00:00:00Z']", "i:4"},
      {"getDayOfWeek", 1, "[ts'1969-12-28T23:59:59Z']", "i:0"},
      {"getSeconds", 1, "[ts'1969-12-31T23:59:58Z']", "i:58"},
      /* durations: totals, and the milliseconds of the last second */
      {"getHours", 1, "[dur'10000s']", "i:2"},
      {"getMinutes", 1, "[dur'3730s']", "i:62"},
      {"getSeconds", 1, "[dur'3730s']", "i:3730"},
      {"getMilliseconds", 1, "[dur'123.321456789s']", "i:321"},
      {"getHours", 1, "[dur'-5400s']", "i:-1"},
      {"getMilliseconds", 1, "[dur'-1.5s']", "i:-500"},
      /* errors */
      {"getHours", 1, "[ts'2024-05-01T10:00:00Z', 'Mars/Olympus_Mons']",
       "error:unknown time zone: Mars/Olympus_Mons"},
      {"getHours", 1, "[ts'2024-05-01T10:00:00Z', '../../etc/passwd']",
       "error:invalid time zone: ../../etc/passwd"},
      {"getHours", 1, "[ts'2024-05-01T10:00:00Z', '/etc/localtime']", "error:invalid time zone"},
      {"getHours", 1, "[ts'2024-05-01T10:00:00Z', 'America']", "error:unknown time zone"},
      {"getHours", 1, "[ts'2024-05-01T10:00:00Z', '']", "error:invalid time zone"},
      {"getHours", 1, "[ts'2024-05-01T10:00:00Z', '+25:00']", "error:invalid time zone offset"},
      {"getHours", 1, "[ts'2024-05-01T10:00:00Z', '+05:3']", "error:invalid time zone offset"},
      {"getHours", 1, "[ts'2024-05-01T10:00:00Z', 'x:00']", "error:invalid time zone offset"},
      {"getHours", 1, "[ts'2024-05-01T10:00:00Z', 5]", "error:no matching overload"},
      {"getHours", 1, "[dur'1s', 'UTC']", "error:no matching overload"},
      {"getFullYear", 1, "[dur'1s']", "error:no matching overload"},
      {"getDayOfWeek", 1, "[42]", "error:no matching overload"},
  };
  RUN_CALLS(state, cases);
}

/* ---- strings --------------------------------------------------------------------- */

static void test_strings_ext(void **state) {
  static const call_case cases[] = {
      /* charAt */
      {"charAt", 1, "['tacocat', 3]", "s:\"o\""},
      {"charAt", 1, "['tacocat', 7]", "s:\"\""},
      {"charAt", 1, "['\u00a9\u03b1T', 1]", "s:\"\u03b1\""},
      {"charAt", 1, "['\U0001F431\U0001F600', 1]", "s:\"\U0001F600\""},
      {"charAt", 1, "['tacocat', 30]", "error:index out of range: 30"},
      {"charAt", 1, "['tacocat', -1]", "error:index out of range: -1"},
      {"charAt", 1, "[42, 2]", "error:no matching overload"},
      {"charAt", 1, "['hello', true]", "error:no matching overload"},
      /* indexOf */
      {"indexOf", 1, "['tacocat', '']", "i:0"},
      {"indexOf", 1, "['tacocat', 'ac']", "i:1"},
      {"indexOf", 1, "['tacocat', 'none']", "i:-1"},
      {"indexOf", 1, "['tacocat', '', 3]", "i:3"},
      {"indexOf", 1, "['tacocat', 'a', 3]", "i:5"},
      {"indexOf", 1, "['tacocat', 'at', 3]", "i:5"},
      {"indexOf", 1, "['ta\u00a9o\u00a9\u03b1T', '\u00a9']", "i:2"},
      {"indexOf", 1, "['ta\u00a9o\u00a9\u03b1T', '\u00a9', 3]", "i:4"},
      {"indexOf", 1, "['ta\u00a9o\u00a9\u03b1T', '\u00a9\u03b1T', 3]", "i:4"},
      {"indexOf", 1, "['ta\u00a9o\u00a9\u03b1T', '\u00a9\u03b1', 5]", "i:-1"},
      {"indexOf", 1, "['hello wello', 'ello', 6]", "i:7"},
      {"indexOf", 1, "['tacocat', 'a', 7]", "i:-1"},
      {"indexOf", 1, "['tacocat', '', 7]", "i:7"},
      {"indexOf", 1, "['tacocat', 'a', 30]", "error:index out of range: 30"},
      {"indexOf", 1, "['tacocat', 'a', -1]", "error:index out of range: -1"},
      {"indexOf", 1, "[24, '2']", "error:no matching overload"},
      {"indexOf", 1, "['42', 4, 0]", "error:no matching overload"},
      {"indexOf", 1, "['42', '4', '0']", "error:no matching overload"},
      /* lastIndexOf */
      {"lastIndexOf", 1, "['', '@@']", "i:-1"},
      {"lastIndexOf", 1, "['tacocat', '']", "i:7"},
      {"lastIndexOf", 1, "['tacocat', 'at']", "i:5"},
      {"lastIndexOf", 1, "['tacocat', 'none']", "i:-1"},
      {"lastIndexOf", 1, "['tacocat', '', 3]", "i:3"},
      {"lastIndexOf", 1, "['tacocat', 'a', 3]", "i:1"},
      {"lastIndexOf", 1, "['ta\u00a9o\u00a9\u03b1T', '\u00a9']", "i:4"},
      {"lastIndexOf", 1, "['ta\u00a9o\u00a9\u03b1T', '\u00a9', 3]", "i:2"},
      {"lastIndexOf", 1, "['ta\u00a9o\u00a9\u03b1T', '\u00a9\u03b1', 4]", "i:4"},
      {"lastIndexOf", 1, "['hello wello', 'ello', 6]", "i:1"},
      {"lastIndexOf", 1, "['hello wello', 'hello wello']", "i:0"},
      {"lastIndexOf", 1, "['bananananana', 'nana', 7]", "i:6"},
      {"lastIndexOf", 1, "['tacocat', 'a', -1]", "error:index out of range: -1"},
      {"lastIndexOf", 1, "['tacocat', 'a', 30]", "error:index out of range: 30"},
      /* lowerAscii, upperAscii */
      {"lowerAscii", 1, "['TacoCat']", "s:\"tacocat\""},
      {"lowerAscii", 1, "['TacoC\u00c6t Xii']", "s:\"tacoc\u00c6t xii\""},
      {"upperAscii", 1, "['tacoC\u03b1t']", "s:\"TACOC\u03b1T\""},
      {"upperAscii", 1, "[1]", "error:no matching overload"},
      /* replace */
      {"replace", 1, "['12 days 12 hours', '{0}', '2']", "s:\"12 days 12 hours\""},
      {"replace", 1, "['{0} days {0} hours', '{0}', '2']", "s:\"2 days 2 hours\""},
      {"replace", 1, "['{0} days {0} hours', '{0}', '2', 1]", "s:\"2 days {0} hours\""},
      {"replace", 1, "['1 \u00a9\u03b1T taco', '\u03b1T', 'o\u00a9\u03b1']",
       "s:\"1 \u00a9o\u00a9\u03b1 taco\""},
      {"replace", 1, "['hello hello', 'he', 'we', -1]", "s:\"wello wello\""},
      {"replace", 1, "['hello hello', 'he', 'we', 0]", "s:\"hello hello\""},
      {"replace", 1, "['ab\u00e9', '', '-']", "s:\"-a-b-\u00e9-\""},
      {"replace", 1, "['abc', '', '-', 2]", "s:\"-a-bc\""},
      {"replace", 1, "['', '', '-']", "s:\"-\""},
      {"replace", 1, "['aaa', 'a', '']", "s:\"\""},
      {"replace", 1, "['42', 2, 1]", "error:no matching overload"},
      {"replace", 1, "['42', '2', '1', '1']", "error:no matching overload"},
      /* split */
      {"split", 1, "['hello world', ' ']", "[s:\"hello\",s:\"world\"]"},
      {"split", 1, "['hello world events!', ' ', 0]", "[]"},
      {"split", 1, "['hello world events!', ' ', 1]", "[s:\"hello world events!\"]"},
      {"split", 1, "['hello world events!', ' ', 2]", "[s:\"hello\",s:\"world events!\"]"},
      {"split", 1, "['o\u00a9o\u00a9o\u00a9o', '\u00a9', -1]", "[s:\"o\",s:\"o\",s:\"o\",s:\"o\"]"},
      {"split", 1, "['a,b,', ',']", "[s:\"a\",s:\"b\",s:\"\"]"},
      {"split", 1, "['', ',']", "[s:\"\"]"},
      {"split", 1, "['abc', 'x']", "[s:\"abc\"]"},
      {"split", 1, "['a\u00e9c', '']", "[s:\"a\",s:\"\u00e9\",s:\"c\"]"},
      {"split", 1, "['a\u00e9c', '', 2]", "[s:\"a\",s:\"\u00e9c\"]"},
      {"split", 1, "['', '']", "[]"},
      {"split", 1, "['a::b', ':']", "[s:\"a\",s:\"\",s:\"b\"]"},
      {"split", 1, "[42, '2']", "error:no matching overload"},
      {"split", 1, "['42', '2', '1']", "error:no matching overload"},
      /* substring */
      {"substring", 1, "['tacocat', 4]", "s:\"cat\""},
      {"substring", 1, "['tacocat', 7]", "s:\"\""},
      {"substring", 1, "['tacocat', 0, 4]", "s:\"taco\""},
      {"substring", 1, "['tacocat', 4, 4]", "s:\"\""},
      {"substring", 1, "['ta\u00a9o\u00a9\u03b1T', 2, 6]", "s:\"\u00a9o\u00a9\u03b1\""},
      {"substring", 1, "['ta\u00a9o\u00a9\u03b1T', 7, 7]", "s:\"\""},
      {"substring", 1, "['tacocat', 40]", "error:index out of range: 40"},
      {"substring", 1, "['tacocat', -1]", "error:index out of range: -1"},
      {"substring", 1, "['tacocat', 1, 50]", "error:index out of range: 50"},
      {"substring", 1, "['tacocat', 49, 50]", "error:index out of range: 49"},
      {"substring", 1, "['tacocat', 4, 3]", "error:invalid substring range. start: 4, end: 3"},
      {"substring", 1, "['tacocat', true, 3]", "error:no matching overload"},
      /* trim: Unicode White_Space, not the zero-width characters */
      {"trim", 1, "[' \f\n\r\t\vtext  ']", "s:\"text\""},
      {"trim", 1, "['\xc2\x85\u00a0\u1680text']", "s:\"text\""},
      {"trim", 1, "['text\u2000\u2001\u2002\u2003\u2004\u2004\u2006\u2007\u2008\u2009']",
       "s:\"text\""},
      {"trim", 1, "['\u200atext\u2028\u2029\u202F\u205F\u3000']", "s:\"text\""},
      {"trim", 1, "['\u180etext\u200b\u200c\u200d\u2060\ufeff']",
       "s:\"\u180etext\u200b\u200c\u200d\u2060\ufeff\""},
      {"trim", 1, "['  a b  ']", "s:\"a b\""},
      {"trim", 1, "['   ']", "s:\"\""},
      {"trim", 1, "['']", "s:\"\""},
      /* join */
      {"join", 1, "[['x', 'y']]", "s:\"xy\""},
      {"join", 1, "[['x', 'y'], '-']", "s:\"x-y\""},
      {"join", 1, "[[]]", "s:\"\""},
      {"join", 1, "[[], '-']", "s:\"\""},
      {"join", 1, "[['\u00e9', '', '\U0001F431'], ', ']", "s:\"\u00e9, , \U0001F431\""},
      {"join", 1, "[['x', 1]]", "error:no matching overload"},
      {"join", 1, "['xy']", "error:no matching overload"},
      /* reverse */
      {"reverse", 1, "['gums']", "s:\"smug\""},
      {"reverse", 1, "['\u00a9\u03b1T\U0001F431']", "s:\"\U0001F431T\u03b1\u00a9\""},
      {"reverse", 1, "['']", "s:\"\""},
      /* strings.quote */
      {"strings.quote", 0, "['first\nsecond']", "s:\"\\\"first\\\\nsecond\\\"\""},
      {"strings.quote", 0, "['bell\a']", "s:\"\\\"bell\\\\a\\\"\""},
      {"strings.quote", 0, "['\bbackspace']", "s:\"\\\"\\\\bbackspace\\\"\""},
      {"strings.quote", 0, "['\fform feed']", "s:\"\\\"\\\\fform feed\\\"\""},
      {"strings.quote", 0, "['carriage \r return']", "s:\"\\\"carriage \\\\r return\\\"\""},
      {"strings.quote", 0, "['horizontal tab\t']", "s:\"\\\"horizontal tab\\\\t\\\"\""},
      {"strings.quote", 0, "['vertical \v tab']", "s:\"\\\"vertical \\\\v tab\\\"\""},
      {"strings.quote", 0, "['double \\\\\\\\ slash']",
       "s:\"\\\"double \\\\\\\\\\\\\\\\ slash\\\"\""},
      {"strings.quote", 0, "['mid \" quote']", "s:\"\\\"mid \\\\\\\" quote\\\"\""},
      {"strings.quote", 0, "['\U0001F431\U0001F600']", "s:\"\\\"\U0001F431\U0001F600\\\"\""},
      {"strings.quote", 0, "['']", "s:\"\\\"\\\"\""},
      {"strings.quote", 0, "[1]", "error:no matching overload"},
  };
  RUN_CALLS(state, cases);
}

static void test_strings_format(void **state) {
  static const call_case cases[] = {
      {"format", 1, "['no substitution', []]", "s:\"no substitution\""},
      {"format", 1, "['str is %s and some more', ['filler']]", "s:\"str is filler and some more\""},
      {"format", 1, "['%% and also %%', []]", "s:\"% and also %\""},
      {"format", 1, "['%%%s%%', ['text']]", "s:\"%text%\""},
      {"format", 1, "['%d %d %d, %s %s %s', [1, 2, 3, 'A', 'B', 'C']]", "s:\"1 2 3, A B C\""},
      {"format", 1, "['%.3f', [1.2345]]", "s:\"1.234\""},
      {"format", 1, "['%b', [5]]", "s:\"101\""},
      {"format", 1, "['%b', [64u]]", "s:\"1000000\""},
      {"format", 1, "['%b', [true]]", "s:\"1\""},
      {"format", 1, "['%b', [-5]]", "s:\"-101\""},
      {"format", 1, "['%o', [11]]", "s:\"13\""},
      {"format", 1, "['%o', [65535u]]", "s:\"177777\""},
      {"format", 1, "['%x is 20 in hexadecimal', [30]]", "s:\"1e is 20 in hexadecimal\""},
      {"format", 1, "['%X', [30]]", "s:\"1E\""},
      {"format", 1, "['%x', [-30]]", "s:\"-1e\""},
      {"format", 1, "['%X', [6000u]]", "s:\"1770\""},
      {"format", 1, "['%x', ['Hello world!']]", "s:\"48656c6c6f20776f726c6421\""},
      {"format", 1, "['%X', [b'byte string']]", "s:\"6279746520737472696E67\""},
      {"format", 1, "['%.6e', [1052.032911275]]", "s:\"1.052033e+03\""},
      {"format", 1, "['%f', [2.71828]]", "s:\"2.718280\""},
      {"format", 1, "['%e', [2.71828]]", "s:\"2.718280e+00\""},
      {"format", 1, "['%e', [nan]]", "s:\"NaN\""},
      {"format", 1, "['%e', [inf]]", "s:\"Infinity\""},
      {"format", 1, "['%d', [-inf]]", "s:\"-Infinity\""},
      {"format", 1, "['%f', [nan]]", "s:\"NaN\""},
      {"format", 1, "['%d', [64u]]", "s:\"64\""},
      {"format", 1, "['%d', [2.5]]", "s:\"2.5\""},
      {"format", 1, "['%f', [3]]", "s:\"3.000000\""},
      {"format", 1, "['%.2e', [1000u]]", "s:\"1.00e+03\""},
      {"format", 1, "['%s', [null]]", "s:\"null\""},
      {"format", 1, "['%s', [999999999999]]", "s:\"999999999999\""},
      {"format", 1, "['%s', [b'xyz']]", "s:\"xyz\""},
      {"format", 1, "['%s', [b'a\xffz']]", "s:\"a\xef\xbf\xbdz\""},
      {"format", 1, "['%s', [type:string]]", "s:\"string\""},
      {"format", 1, "['%s', [ts'2023-02-03T23:31:20+00:00']]", "s:\"2023-02-03T23:31:20Z\""},
      {"format", 1, "['%s', [dur'1h45m47s']]", "s:\"6347s\""},
      {"format", 1, "['%s', [['abc', 3.14, null, [9, 8, 7, 6], ts'2023-02-03T23:31:20Z']]]",
       "s:\"[abc, 3.14, null, [9, 8, 7, 6], 2023-02-03T23:31:20Z]\""},
      {"format", 1,
       "['%s', [{'key1': b'xyz', 'key5': null, 'key2': dur'2h', 'key4': true, 'key3': 2.71828}]]",
       "s:\"{key1: xyz, key2: 7200s, key3: 2.71828, key4: true, key5: null}\""},
      {"format", 1, "['%s', [{1: 'value1', 2u: 'value2', true: nan}]]",
       "s:\"{1: value1, 2: value2, true: NaN}\""},
      {"format", 1, "['%s', [{'strKey': 'x', 6: dur'422s', true: 42}]]",
       "s:\"{6: 422s, strKey: x, true: 42}\""},
      {"format", 1, "['%s, %s', [true, false]]", "s:\"true, false\""},
      {"format", 1, "['%s, %s', [32, 56.8]]", "s:\"32, 56.8\""},
      {"format", 1, "['%s', [[nan, inf, -inf]]]", "s:\"[NaN, Infinity, -Infinity]\""},
      {"format", 1, "['%s %s %s', [1e21, 1.5e-7, -0.0]]",
       "s:\"1000000000000000000000 0.00000015 -0\""},
      {"format", 1, "['%.0f', [123.000000]]", "s:\"123\""},
      {"format", 1, "['%.0f', [3.5001]]", "s:\"4\""},
      {"format", 1, "['%.0f', [3.4999]]", "s:\"3\""},
      {"format", 1, "['%.0f', [1.5]]", "s:\"2\""},
      {"format", 1, "['%.0f', [2.5]]", "s:\"2\""},
      {"format", 1, "['%.3f', [-123.4999]]", "s:\"-123.500\""},
      {"format", 1, "['%.5f', [-1.2]]", "s:\"-1.20000\""},
      {"format", 1, "['%.3s', ['abcdef']]", "s:\"abcdef\""},
      {"format", 1, "['\u00e9%s\u00e9', ['\U0001F431']]", "s:\"\u00e9\U0001F431\u00e9\""},
      /* errors */
      {"format", 1, "['%a', [1]]",
       "error:could not parse formatting clause: unrecognized formatting clause \"a\""},
      {"format", 1, "['%\u00e9', [1]]",
       "error:could not parse formatting clause: unrecognized formatting clause \"\u00e9\""},
      {"format", 1, "['%E', [0.5]]",
       "error:could not parse formatting clause: unrecognized formatting clause \"E\""},
      {"format", 1, "['%d %d %d', [0, 1]]", "error:index 2 out of range"},
      {"format", 1, "['abc %', [1]]", "error:unexpected end of string"},
      {"format", 1, "['%.3', [1.0]]",
       "error:could not parse formatting clause: error while parsing precision"},
      {"format", 1, "['%.f', [1.0]]",
       "error:could not parse formatting clause: error while parsing precision"},
      {"format", 1, "['%.101f', [1.0]]",
       "error:could not parse formatting clause: error while parsing precision: precision 101 exceeds"},
      {"format", 1, "['string is %b', ['abc']]",
       "error:error during formatting: only ints, uints, and bools can be formatted as binary, was given string"},
      {"format", 1, "['%d', [dur'30m2s']]",
       "error:error during formatting: decimal clause can only be used on ints, uints, and doubles, was given google.protobuf.Duration"},
      {"format", 1, "['octal: %o', ['a string']]",
       "error:error during formatting: octal clause can only be used on ints and uints, was given string"},
      {"format", 1, "['double is %x', [0.5]]",
       "error:error during formatting: only ints, uints, bytes, and strings can be formatted as hex, was given double"},
      {"format", 1, "['null: %d', [null]]",
       "error:error during formatting: decimal clause can only be used on ints, uints, and doubles, was given null_type"},
      {"format", 1, "['null: %e', [null]]", "error:error during formatting: scientific clause"},
      {"format", 1, "['null: %f', [null]]", "error:error during formatting: fixed-point clause"},
      {"format", 1, "['%s', 'x']", "error:no matching overload"},
  };
  RUN_CALLS(state, cases);
}

static void test_strings_clause(void **state) {
  static const call_case cases[] = {
      {"lower", 0, "['Hello WORLD']", "s:\"hello world\""},
      {"upper", 0, "['Hello world']", "s:\"HELLO WORLD\""},
      {"lower", 0, "['\u00c9COLE \u00c6\u00d8\u00c5 \u0178']",
       "s:\"\u00e9cole \u00e6\u00f8\u00e5 \u00ff\""},
      {"upper", 0, "['\u00e9cole \u00e6\u00f8\u00e5 \u00ff \u00df']",
       "s:\"\u00c9COLE \u00c6\u00d8\u00c5 \u0178 \u00df\""},
      {"upper", 0, "['\u03ba\u03b1\u03bb\u03b7\u03bc\u03ad\u03c1\u03b1 \u03c2']",
       "s:\"\u039a\u0391\u039b\u0397\u039c\u0388\u03a1\u0391 \u03a3\""},
      {"lower", 0, "['\u041f\u0420\u0418\u0412\u0415\u0422 \u0401']",
       "s:\"\u043f\u0440\u0438\u0432\u0435\u0442 \u0451\""},
      {"upper", 0, "['\u043f\u0440\u0438\u0432\u0435\u0442']",
       "s:\"\u041f\u0420\u0418\u0412\u0415\u0422\""},
      {"lower", 0, "['\u0130I\u0100\u0101']", "s:\"ii\u0101\u0101\""},
      {"upper", 0, "['\u0131i\u017f\u00b5']", "s:\"IIS\u039c\""},
      {"lower", 0, "['\uff21\U0001F431\u4e2d']", "s:\"\uff41\U0001F431\u4e2d\""},
      {"lower", 0, "[1]", "error:no matching overload"},
      /* split and trim are the strings extension's */
      {"split", 1, "['a/b/c', '/']", "[s:\"a\",s:\"b\",s:\"c\"]"},
      {"trim", 1, "['\t x \n']", "s:\"x\""},
  };
  RUN_CALLS(state, cases);
}

static void test_glob(void **state) {
  static const call_case cases[] = {
      {"glob", 1, "['api/v1/users', 'api/*']", "true"},
      {"glob", 1, "['api/v1/users', 'api/*/users']", "true"},
      {"glob", 1, "['api/v1/users', '*']", "true"},
      {"glob", 1, "['', '*']", "true"},
      {"glob", 1, "['', '']", "true"},
      {"glob", 1, "['a', '']", "false"},
      {"glob", 1, "['', '?']", "false"},
      {"glob", 1, "['abc', 'a?c']", "true"},
      {"glob", 1, "['a\u00e9c', 'a?c']", "true"},
      {"glob", 1, "['\U0001F431', '?']", "true"},
      {"glob", 1, "['\U0001F431\U0001F431', '?']", "false"},
      {"glob", 1, "['abc', 'a*c']", "true"},
      {"glob", 1, "['abcbc', 'a*bc']", "true"},
      {"glob", 1, "['abcbd', 'a*bc']", "false"},
      {"glob", 1, "['aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab', '*a*a*a*a*a*a*a*a*c']", "false"},
      {"glob", 1, "['file.txt', '*.txt']", "true"},
      {"glob", 1, "['file.txt', '*.[tc]xt']", "true"},
      {"glob", 1, "['file.cxt', '*.[!t]xt']", "true"},
      {"glob", 1, "['file.txt', '*.[!t]xt']", "false"},
      {"glob", 1, "['file.txt', '*.[^t]xt']", "false"},
      {"glob", 1, "['b', '[a-c]']", "true"},
      {"glob", 1, "['d', '[a-c]']", "false"},
      {"glob", 1, "['-', '[a-]']", "true"},
      {"glob", 1, "[']', '[]]']", "true"},
      {"glob", 1, "['x', '[]]']", "false"},
      {"glob", 1, "['\u00e9', '[\u00e0-\u00ff]']", "true"},
      {"glob", 1, "['\u03b1', '[\u00e0-\u00ff]']", "false"},
      {"glob", 1, "['[', '[']", "true"},
      {"glob", 1, "['[ab', '[ab']", "true"},
      {"glob", 1, "['*', '\\\\*']", "true"},
      {"glob", 1, "['a', '\\\\*']", "false"},
      {"glob", 1, "['a?', 'a\\\\?']", "true"},
      {"glob", 1, "['ab', 'a\\\\?']", "false"},
      {"glob", 1, "['ABC', 'abc']", "false"},
      {"glob", 1, "[1, '*']", "error:no matching overload"},
  };
  RUN_CALLS(state, cases);
}

/* ---- regex ---------------------------------------------------------------------------- */

static void test_regex_compile(void **state) {
  (void)state;
  static const struct {
    const char *pattern;
    const char *error; /* NULL: compiles; else a part of the message */
  } cases[] = {
      {"ubb", NULL},
      {"", NULL},
      {"gr(a|e)y", NULL},
      {"^[a-z]+@example\\.com$", NULL},
      {"(?i)hello", NULL},
      {"(?ims:x.y)", NULL},
      {"(?U)a+", NULL},
      {"(?P<word>\\w+)", NULL},
      {"(?<word>\\w+)", NULL},
      {"(?:ab)+", NULL},
      {"[(?=x]", NULL},     /* a class, not a lookahead */
      {"[]\\\\(?=]", NULL}, /* ']' first in a class is literal */
      {"[[:alpha:](?!]", NULL},
      {"\\Q(?=\\E", NULL}, /* quoted text */
      {"\\(?=", NULL},     /* an escaped parenthesis */
      {"\\p{Greek}+", NULL},
      {"a{2,3}", NULL},
      {"(a)\\1", "backreferences are not supported"},
      {"(a)\\g1", "backreferences are not supported"},
      {"(a)\\g{-1}", "backreferences are not supported"},
      {"(?<n>a)\\k<n>", "backreferences are not supported"},
      {"(?P<n>a)(?P=n)", "backreferences are not supported"},
      {"[\\1]", "backreferences are not supported"},
      {"a(?=b)", "lookaround is not supported"},
      {"a(?!b)", "lookaround is not supported"},
      {"(?<=a)b", "lookaround is not supported"},
      {"(?<!a)b", "lookaround is not supported"},
      {"(*pla:a)", "verbs are not supported"},
      {"(*LIMIT_MATCH=1000000000)a", "verbs are not supported"},
      {"(*UCP)\\w", "verbs are not supported"},
      {"a\\Cb", "\\C is not supported"},
      {"(a|(?R))", "recursion is not supported"},
      {"(a)(?1)", "recursion is not supported"},
      {"(?<n>a)(?&n)", "recursion is not supported"},
      {"(a)(?-1)", "recursion is not supported"},
      {"(?C1)a", "callouts are not supported"},
      {"(a)?(?(1)b|c)", "conditional groups are not supported"},
      {"(?#[)(?=a)", "comments are not supported"},
      {"(?x)#[\n(?=a)", "only the flags i, m, s and U are supported"},
      {"\\c[(?=a)", "lookaround is not supported"},
      {"\\\\(?=a)", "lookaround is not supported"},
      {"[a\\]](?=x)", "lookaround is not supported"},
      {"[^]](?=x)", "lookaround is not supported"},
      {"(", "missing closing parenthesis"},
      {"a)", "invalid regular expression"},
      {"[a", "invalid regular expression"},
      {"a\\", "invalid regular expression"},
      {"\xff", "invalid regular expression"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char err[256] = "";
    regex *re = regex_compile(cases[i].pattern, strlen(cases[i].pattern), err, sizeof err);
    if (!cases[i].error) {
      if (!re) fail_msg("%s: %s", cases[i].pattern, err);
    } else {
      if (re) fail_msg("%s compiled", cases[i].pattern);
      if (!strstr(err, cases[i].error)) fail_msg("%s: %s", cases[i].pattern, err);
    }
    regex_free(re);
  }
  regex_free(NULL);
  regex_cache_free(NULL);
}

static void test_regex_match(void **state) {
  (void)state;
  static const struct {
    const char *pattern, *subject;
    int want;
  } cases[] = {
      {"ubb", "hubba", 1},
      {"foo|bar", "", 0},
      {"", "cows", 1},
      {"", "", 1},
      {"bc", "abcd", 1},
      {"gr(a|e)y", "grey", 1},
      {"ba(na)*", "banana", 1},
      {"a+\u00f1+a+", "ma\u00f1ana", 1},
      {"(a|\U0001F600){2}", "\U0001F431\U0001F600\U0001F600", 1},
      {"^.$", "\U0001F431", 1}, /* UTF mode: one code point */
      {"^\\w$", "\u00e9", 0},   /* no UCP: \w is ASCII */
      {"a$", "a\n", 0},         /* DOLLAR_ENDONLY */
      {"^b", "a\nb", 0},
      {"(?m)^b", "a\nb", 1},
      {"(?i)HELLO", "say hello", 1},
      {"^abc$", "abc", 1},
      {"^abc$", "xabc", 0},
      {"x*", "", 1},
  };
  regex_cache *cache = regex_cache_new();
  assert_non_null(cache);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char err[256] = "";
    regex *re = regex_compile(cases[i].pattern, strlen(cases[i].pattern), err, sizeof err);
    if (!re) fail_msg("%s: %s", cases[i].pattern, err);
    size_t n = strlen(cases[i].subject);
    int a = regex_match(re, cases[i].subject, n, 0, err, sizeof err);
    int b = regex_match_cached(re, cache, cases[i].subject, n, 0, err, sizeof err);
    if (a != cases[i].want || b != cases[i].want)
      fail_msg("%s on %s: %d %d (%s)", cases[i].pattern, cases[i].subject, a, b, err);
    regex_free(re);
  }
  regex_cache_free(cache);

  /* Patterns and subjects need not be NUL-terminated. */
  char err[256];
  regex *re = regex_compile("abX", 2, err, sizeof err);
  assert_non_null(re);
  assert_int_equal(regex_match(re, "xxabyy", 4, 0, err, sizeof err), 1);
  assert_int_equal(regex_match(re, "xxabyy", 3, 0, err, sizeof err), 0);
  regex_free(re);
}

/* A catastrophic pattern stops at the match limit with an error. */
static void test_regex_match_limit(void **state) {
  (void)state;
  const char *subject = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab";
  char err[256] = "";
  regex *re = regex_compile("(a+)+$", 6, err, sizeof err);
  assert_non_null(re);
  assert_int_equal(regex_match(re, subject, strlen(subject), 0, err, sizeof err), -1);
  assert_string_equal(err, "regex match limit exceeded");
  regex_cache *cache = regex_cache_new();
  err[0] = '\0';
  assert_int_equal(regex_match_cached(re, cache, subject, strlen(subject), 5000, err, sizeof err),
                   -1);
  assert_string_equal(err, "regex match limit exceeded");
  /* The cache stays usable after an error. */
  assert_int_equal(regex_match_cached(re, cache, "aaa", 3, 0, err, sizeof err), 1);
  regex_cache_free(cache);
  regex_free(re);

  /* A limit large enough for an ordinary match. (How few steps a tiny
   * limit allows differs between PCRE2's JIT and its interpreter, so only
   * the catastrophic case above is checked for the error.) */
  re = regex_compile("(a|b)*c", 7, err, sizeof err);
  assert_non_null(re);
  assert_int_equal(regex_match(re, "ababababababababababc", 21, 1000, err, sizeof err), 1);
  regex_free(re);
}

static void test_matches_builtin(void **state) {
  static const call_case cases[] = {
      {"matches", 1, "['hubba', 'ubb']", "true"},
      {"matches", 1, "['', 'foo|bar']", "false"},
      {"matches", 1, "['cows', '']", "true"},
      {"matches", 1, "['mañana', 'a+ñ+a+']", "true"},
      {"matches", 0, "['grey', 'gr(a|e)y']", "true"},
      {"matches", 0, "['gray', '^gre']", "false"},
      {"matches", 1, "['aa', '(a)\\\\1']",
       "error:invalid regular expression: backreferences are not supported"},
      {"matches", 1, "['ab', 'a(?=b)']",
       "error:invalid regular expression: lookaround is not supported"},
      {"matches", 1, "['a', '(']", "error:invalid regular expression"},
      {"matches", 1, "['aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab', '(a+)+$']",
       "error:regex match limit exceeded"},
      {"matches", 1, "[1, 'a']", "error:no matching overload"},
      {"matches", 0, "['a', b'a']", "error:no matching overload"},
  };
  fixture *f = *state;
  RUN_CALLS(state, cases);
  /* Again with the VM's cache and a limit of its own. */
  f->ctx.regex_cache = regex_cache_new();
  assert_non_null(f->ctx.regex_cache);
  f->ctx.regex_match_limit = 50000;
  RUN_CALLS(state, cases);
}

/* ---- math ---------------------------------------------------------------------------- */

static void test_math(void **state) {
  static const call_case cases[] = {
      {"math.greatest", 0, "[-5]", "i:-5"},
      {"math.greatest", 0, "[5.0]", "d:5"},
      {"math.greatest", 0, "[5u]", "u:5"},
      {"math.greatest", 0, "[1, 1.0]", "i:1"},
      {"math.greatest", 0, "[1.0, 1]", "d:1"},
      {"math.greatest", 0, "[3, -3]", "i:3"},
      {"math.greatest", 0, "[-7, 5]", "i:5"},
      {"math.greatest", 0, "[9223372036854775807, 1]", "i:9223372036854775807"},
      {"math.greatest", 0, "[-9223372036854775808, 1]", "i:1"},
      {"math.greatest", 0, "[5u, -7]", "u:5"},
      {"math.greatest", 0, "[-3, 3u]", "u:3"},
      {"math.greatest", 0, "[18446744073709551615u, 1u]", "u:18446744073709551615"},
      {"math.greatest", 0, "[1.797693e308, 1]", "d:1.797693e+308"},
      {"math.greatest", 0, "[5.4, 10, 3u, -5.0, 9223372036854775807]", "i:9223372036854775807"},
      {"math.greatest", 0, "[[5.4, 10, 3u, -5.0, 3.5]]", "i:10"},
      {"math.greatest", 0, "[[5.4, 10.5, 3u, -5.0, 3.5]]", "d:10.5"},
      {"math.greatest", 0, "[[5.4, 10u, 3u, -5.0, 3.5]]", "u:10"},
      {"math.greatest", 0, "[[7]]", "i:7"},
      {"math.greatest", 0, "[[]]", "error:math.greatest(list) argument must not be empty"},
      {"math.greatest", 0, "[1, 'a']", "error:no matching overload"},
      {"math.greatest", 0, "[['a', 1]]", "error:no matching overload"},
      {"math.greatest", 0, "['a']", "error:no matching overload"},
      {"math.greatest", 0, "[1, nan]", "error:math.greatest: NaN values cannot be ordered"},
      {"math.greatest", 0, "[nan]", "d:NaN"},
      {"math.least", 0, "[-5]", "i:-5"},
      {"math.least", 0, "[1, 1.0]", "i:1"},
      {"math.least", 0, "[-3, 3]", "i:-3"},
      {"math.least", 0, "[5, -7]", "i:-7"},
      {"math.least", 0, "[-9223372036854775808, 1]", "i:-9223372036854775808"},
      {"math.least", 0, "[5.5, -7.5]", "d:-7.5"},
      {"math.least", 0, "[1.5, -1.797693e308]", "d:-1.797693e+308"},
      {"math.least", 0, "[5.4, 10, 3u, -5.0, 9223372036854775807]", "d:-5"},
      {"math.least", 0, "[[5.4, 10u, 3u, 1u, 3.5]]", "u:1"},
      {"math.least", 0, "[1u, 1]", "u:1"},
      {"math.ceil", 0, "[-1.2]", "d:-1"},
      {"math.ceil", 0, "[1.2]", "d:2"},
      {"math.ceil", 0, "[1]", "error:no matching overload"},
      {"math.floor", 0, "[-1.2]", "d:-2"},
      {"math.floor", 0, "[1.2]", "d:1"},
      {"math.round", 0, "[-1.6]", "d:-2"},
      {"math.round", 0, "[-1.4]", "d:-1"},
      {"math.round", 0, "[-1.5]", "d:-2"},
      {"math.round", 0, "[1.5]", "d:2"},
      {"math.round", 0, "[2.5]", "d:3"},
      {"math.round", 0, "[nan]", "d:NaN"},
      {"math.trunc", 0, "[-1.2]", "d:-1"},
      {"math.trunc", 0, "[1.2]", "d:1"},
      {"math.trunc", 0, "[nan]", "d:NaN"},
      {"math.abs", 0, "[1u]", "u:1"},
      {"math.abs", 0, "[-11]", "i:11"},
      {"math.abs", 0, "[-11.5]", "d:11.5"},
      {"math.abs", 0, "[-9223372036854775808]", "error:integer overflow"},
      {"math.abs", 0, "['x']", "error:no matching overload"},
      {"math.sign", 0, "[100u]", "u:1"},
      {"math.sign", 0, "[0u]", "u:0"},
      {"math.sign", 0, "[-11]", "i:-1"},
      {"math.sign", 0, "[0]", "i:0"},
      {"math.sign", 0, "[100.5]", "d:1"},
      {"math.sign", 0, "[-32.0]", "d:-1"},
      {"math.sign", 0, "[0.0]", "d:0"},
      {"math.sign", 0, "[nan]", "d:NaN"},
      {"math.sign", 0, "[true]", "error:no matching overload"},
      {"math.isNaN", 0, "[nan]", "true"},
      {"math.isNaN", 0, "[inf]", "false"},
      {"math.isNaN", 0, "[true]", "error:no matching overload"},
      {"math.isInf", 0, "[-inf]", "true"},
      {"math.isInf", 0, "[nan]", "false"},
      {"math.isFinite", 0, "[0.5]", "true"},
      {"math.isFinite", 0, "[nan]", "false"},
      {"math.isFinite", 0, "[inf]", "false"},
      {"math.bitAnd", 0, "[1, 3]", "i:1"},
      {"math.bitAnd", 0, "[1, -1]", "i:1"},
      {"math.bitAnd", 0, "[1u, 2u]", "u:0"},
      {"math.bitAnd", 0, "[2u, '']", "error:no matching overload"},
      {"math.bitAnd", 0, "[2u, 2]", "error:no matching overload"},
      {"math.bitOr", 0, "[4, -2]", "i:-2"},
      {"math.bitOr", 0, "[1u, 4u]", "u:5"},
      {"math.bitOr", 0, "[1.2, 1]", "error:no matching overload"},
      {"math.bitXor", 0, "[4, -2]", "i:-6"},
      {"math.bitXor", 0, "[1u, 3u]", "u:2"},
      {"math.bitXor", 0, "[[], [1]]", "error:no matching overload"},
      {"math.bitNot", 0, "[1]", "i:-2"},
      {"math.bitNot", 0, "[-1]", "i:0"},
      {"math.bitNot", 0, "[0u]", "u:18446744073709551615"},
      {"math.bitNot", 0, "['']", "error:no matching overload"},
      {"math.bitShiftLeft", 0, "[1, 2]", "i:4"},
      {"math.bitShiftLeft", 0, "[1, 200]", "i:0"},
      {"math.bitShiftLeft", 0, "[-1, 200]", "i:0"},
      {"math.bitShiftLeft", 0, "[1, 63]", "i:-9223372036854775808"},
      {"math.bitShiftLeft", 0, "[1u, 2]", "u:4"},
      {"math.bitShiftLeft", 0, "[1u, -1]", "error:math.bitShiftLeft() negative offset: -1"},
      {"math.bitShiftLeft", 0, "[4.3, 1]", "error:no matching overload"},
      {"math.bitShiftLeft", 0, "[1, 1u]", "error:no matching overload"},
      {"math.bitShiftRight", 0, "[1024, 2]", "i:256"},
      {"math.bitShiftRight", 0, "[1024, 64]", "i:0"},
      {"math.bitShiftRight", 0, "[-1024, 3]", "i:2305843009213693824"},
      {"math.bitShiftRight", 0, "[-1024, 64]", "i:0"},
      {"math.bitShiftRight", 0, "[1024u, 200]", "u:0"},
      {"math.bitShiftRight", 0, "[1u, -1]", "error:math.bitShiftRight() negative offset: -1"},
      {"math.bitShiftRight", 0, "[b'123', 1]", "error:no matching overload"},
      {"math.sqrt", 0, "[49.0]", "d:7"},
      {"math.sqrt", 0, "[16]", "d:4"},
      {"math.sqrt", 0, "[2u]", "d:1.4142135623730951"},
      {"math.sqrt", 0, "[-1.0]", "d:NaN"},
      {"math.sqrt", 0, "['4']", "error:no matching overload"},
  };
  RUN_CALLS(state, cases);
}

/* Every table is terminated and names its functions once per call style
 * and argument count. */
static void test_tables(void **state) {
  (void)state;
  const cel_builtin *tables[] = {cel_builtins_time, cel_builtins_strings, cel_builtins_math};
  for (size_t t = 0; t < 3; t++) {
    for (const cel_builtin *b = tables[t]; b->name; b++) {
      assert_non_null(b->fn);
      assert_true(b->min_args >= 1 && b->min_args <= b->max_args);
      for (int n = b->min_args; n <= b->max_args; n++)
        assert_ptr_equal(find_builtin(b->name, b->member, n), b);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_timestamp_parse_format),
      cmocka_unit_test(test_timestamp_round_trip),
      cmocka_unit_test(test_duration_parse_format),
      cmocka_unit_test_setup_teardown(test_time_accessors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_strings_ext, setup, teardown),
      cmocka_unit_test_setup_teardown(test_strings_format, setup, teardown),
      cmocka_unit_test_setup_teardown(test_strings_clause, setup, teardown),
      cmocka_unit_test_setup_teardown(test_glob, setup, teardown),
      cmocka_unit_test(test_regex_compile),
      cmocka_unit_test(test_regex_match),
      cmocka_unit_test(test_regex_match_limit),
      cmocka_unit_test_setup_teardown(test_matches_builtin, setup, teardown),
      cmocka_unit_test_setup_teardown(test_math, setup, teardown),
      cmocka_unit_test(test_tables),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
