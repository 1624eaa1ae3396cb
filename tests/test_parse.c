/*
 * test_parse.c - the front end: scanner (compiler/lexer.l), parser
 * (compiler/parser.y), diagnostics (compiler/diag.c) and types
 * (compiler/types.c).
 *
 * Table-driven: CEL expressions against an s-expression rendering of their
 * AST (precedence, literal values, escapes, durations, keywords used as
 * names), bad expressions against the first diagnostic. Golden files:
 * every tests/golden/parse/NAME.clause must parse without a diagnostic;
 * every tests/golden/diag/NAME.clause must give the diagnostics rendered in
 * NAME.err (CLAUSE_REGEN=1 rewrites the .err files instead). Files are
 * found under $CLAUSE_SRCDIR (default ".").
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "parse.h"
#include "test_util.h"

/* ---- helpers ------------------------------------------------------------------ */

static char *render(const diag_list *d) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  assert_non_null(f);
  diag_render(d, f, false);
  fclose(f);
  return text;
}

/* One parse, with its arena and diagnostics. */
typedef struct run {
  arena a;
  diag_list d;
  source src;
  policy_file *pf;
  expr *e;
} run;

static void run_file(run *r, const char *path, const char *text, size_t len) {
  arena_init(&r->a, 1 << 12);
  diag_init(&r->d);
  r->src = (source){path, text, len};
  r->pf = parse_policy(&r->src, &r->a, &r->d);
  r->e = NULL;
}

static void run_expr(run *r, const char *text) {
  arena_init(&r->a, 1 << 12);
  diag_init(&r->d);
  r->src = (source){"expr", text, strlen(text)};
  r->pf = NULL;
  r->e = parse_expression(&r->src, &r->a, &r->d);
}

static void run_free(run *r) {
  diag_free(&r->d);
  arena_free(&r->a);
}

/* ---- the AST as an s-expression ------------------------------------------------------
 *   literals  i:-5 u:5 d:1.5 s:"a\n" b:00ff dur:60000000000 true null
 *   a  .a  (. x f)  ([] x i)  (f args)  (.f args)  (x.f args)
 *   (op x y)  (! x)  (- x)  (?: c a b)  [e1 e2]  {k1 v1, k2 v2}       */

typedef struct sbuf {
  char s[8192];
  size_t n;
} sbuf;

static void put(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sbuf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(b->s + b->n, sizeof b->s - b->n, fmt, ap);
  va_end(ap);
  if (k > 0) b->n += (size_t)k;
  if (b->n >= sizeof b->s) b->n = sizeof b->s - 1;
}

static void put_double(sbuf *b, double d) {
  char tmp[64];
  if (d == (double)(int64_t)d && d > -1e15 && d < 1e15) {
    snprintf(tmp, sizeof tmp, "%.0f", d);
  } else {
    for (int prec = 1; prec <= 17; prec++) { /* the shortest that reads back */
      snprintf(tmp, sizeof tmp, "%.*g", prec, d);
      if (strtod(tmp, NULL) == d) break;
    }
  }
  put(b, "d:%s", tmp);
}

static const char *op_text(expr_op op) {
  static const char *const names[] = {"?", "!", "-", "+", "-", "*", "/", "%", "==",
                                      "!=", "<", "<=", ">", ">=", "in", "&&", "||"};
  return names[op];
}

static void sexpr(sbuf *b, const expr *e) {
  if (!e) {
    put(b, "NULL");
    return;
  }
  switch (e->kind) {
  case E_LITERAL:
    switch (e->lit.kind) {
    case CV_INT: put(b, "i:%" PRId64, e->lit.i); break;
    case CV_UINT: put(b, "u:%" PRIu64, e->lit.u); break;
    case CV_DOUBLE: put_double(b, e->lit.d); break;
    case CV_DURATION: put(b, "dur:%" PRId64, e->lit.i); break;
    case CV_BOOL: put(b, e->lit.b ? "true" : "false"); break;
    case CV_NULL: put(b, "null"); break;
    case CV_BYTES:
      put(b, "b:");
      for (uint32_t i = 0; i < e->lit.n; i++) put(b, "%02x", (unsigned char)e->lit.s[i]);
      break;
    case CV_STRING:
      put(b, "s:\"");
      for (uint32_t i = 0; i < e->lit.n; i++) {
        unsigned char c = (unsigned char)e->lit.s[i];
        if (c == '"' || c == '\\') put(b, "\\%c", c);
        else if (c == '\n') put(b, "\\n");
        else if (c < 0x20 || c == 0x7f) put(b, "\\x%02x", c);
        else put(b, "%c", c);
      }
      put(b, "\"");
      break;
    default:
      put(b, "?literal");
    }
    return;
  case E_IDENT:
    put(b, "%s", e->name);
    return;
  case E_SELECT:
    put(b, "(. ");
    sexpr(b, e->operand);
    put(b, " %s)", e->name);
    return;
  case E_INDEX:
    put(b, "([] ");
    sexpr(b, e->operand);
    put(b, " ");
    sexpr(b, e->args[0]);
    put(b, ")");
    return;
  case E_CALL:
    put(b, "(");
    if (e->operand) {
      sexpr(b, e->operand);
      put(b, ".");
    }
    put(b, "%s", e->name);
    for (int i = 0; i < e->nargs; i++) {
      put(b, " ");
      sexpr(b, e->args[i]);
    }
    put(b, ")");
    return;
  case E_UNARY:
    put(b, "(%s ", op_text(e->op));
    sexpr(b, e->operand);
    put(b, ")");
    return;
  case E_BINARY:
    put(b, "(%s ", op_text(e->op));
    sexpr(b, e->operand);
    put(b, " ");
    sexpr(b, e->args[0]);
    put(b, ")");
    return;
  case E_COND:
    put(b, "(?: ");
    sexpr(b, e->operand);
    put(b, " ");
    sexpr(b, e->args[0]);
    put(b, " ");
    sexpr(b, e->args[1]);
    put(b, ")");
    return;
  case E_LIST:
    put(b, "[");
    for (int i = 0; i < e->nargs; i++) {
      if (i) put(b, " ");
      sexpr(b, e->args[i]);
    }
    put(b, "]");
    return;
  case E_MAP:
    put(b, "{");
    for (int i = 0; i < e->nargs; i += 2) {
      if (i) put(b, ", ");
      sexpr(b, e->args[i]);
      put(b, " ");
      sexpr(b, e->args[i + 1]);
    }
    put(b, "}");
    return;
  }
}

/* ---- expressions ------------------------------------------------------------------------ */

typedef struct expr_case {
  const char *src;
  const char *ast;
} expr_case;

static const expr_case expr_cases[] = {
    /* precedence and associativity */
    {"1 + 2 * 3", "(+ i:1 (* i:2 i:3))"},
    {"(1 + 2) * 3", "(* (+ i:1 i:2) i:3)"},
    {"a - b - c", "(- (- a b) c)"},
    {"a / b * c % d", "(% (* (/ a b) c) d)"},
    {"a || b && c", "(|| a (&& b c))"},
    {"a && b || c && d", "(|| (&& a b) (&& c d))"},
    {"a < b == c", "(== (< a b) c)"},
    {"a + 1 < b * 2 && c in d", "(&& (< (+ a i:1) (* b i:2)) (in c d))"},
    {"x in [1, 2] || !y", "(|| (in x [i:1 i:2]) (! y))"},
    {"a ? b : c ? d : e", "(?: a b (?: c d e))"},
    {"(a ? b : c) ? d : e", "(?: (?: a b c) d e)"},
    {"a || b ? c + 1 : d", "(?: (|| a b) (+ c i:1) d)"},
    {"a ? (b ? c : d) : e", "(?: a (?: b c d) e)"},
    {"-a.b", "(- (. a b))"},
    {"!a.b()", "(! (a.b))"},
    {"!!true", "(! (! true))"},
    {"--x", "(- (- x))"},
    {"a - -b", "(- a (- b))"},
    {"a-1", "(- a i:1)"},
    {"x[1][2].y", "(. ([] ([] x i:1) i:2) y)"},
    {"a.b.c", "(. (. a b) c)"},
    {".a.b", "(. .a b)"},
    {".f(1)", "(.f i:1)"},
    {"f()", "(f)"},
    {"a.b.c(1, 2)", "((. a b).c i:1 i:2)"},
    {"has(request.purpose)", "(has (. request purpose))"},
    {"l.all(x, x > 0)", "(l.all x (> x i:0))"},
    {"[1, 2, 3][0]", "([] [i:1 i:2 i:3] i:0)"},
    {"size([[]])", "(size [[]])"},
    {"{'a': 1, 2: [3]}", "{s:\"a\" i:1, i:2 [i:3]}"},
    {"{}", "{}"},
    {"[]", "[]"},
    /* trailing commas in non-empty lists and maps */
    {"[1, 2,]", "[i:1 i:2]"},
    {"{'k': 'v',}", "{s:\"k\" s:\"v\"}"},
    /* policy words are identifiers inside expressions */
    {"headers.exists(key, key.startsWith(\"x-\"))", "(headers.exists key (key.startsWith s:\"x-\"))"},
    {"request.window + app.key", "(+ (. request window) (. app key))"},
    {"rule + policy * deny", "(+ rule (* policy deny))"},
    {"when && then || unless", "(|| (&& when then) unless)"},
    {"allow(flag, given)", "(allow flag given)"},
    /* after a dot every word but true false null in is a field name */
    {"app.for", "(. app for)"},
    {"app.let.import.as", "(. (. (. app let) import) as)"},
    {"x.while()", "(x.while)"},
    {"{'as': 1}.as", "(. {s:\"as\" i:1} as)"},
    /* backticked field names */
    {"request.`x-client-id`", "(. request x-client-id)"},
    {"a.`b.c/d e`.f", "(. (. a b.c/d e) f)"},
    /* numbers */
    {"0", "i:0"},
    {"42", "i:42"},
    {"007", "i:7"},
    {"9223372036854775807", "i:9223372036854775807"},
    {"-9223372036854775808", "i:-9223372036854775808"},
    {"-0x8000000000000000", "i:-9223372036854775808"},
    {"-(-9223372036854775808)", "(- i:-9223372036854775808)"},
    {"--19", "(- i:-19)"},
    {"- 5", "i:-5"},
    {"-(5)", "i:-5"},
    {"-x", "(- x)"},
    {"-1u", "(- u:1)"},
    {"0x55555555", "i:1431655765"},
    {"0xFFu", "u:255"},
    {"123456789U", "u:123456789"},
    {"18446744073709551615u", "u:18446744073709551615"},
    {"0.0", "d:0"},
    {"1.5", "d:1.5"},
    {"0e+0", "d:0"},
    {"-2.3e+1", "d:-23"},
    {"1e3", "d:1000"},
    {"1.5e-3", "d:0.0015"},
    {".5", "d:0.5"},
    {"0.1", "d:0.1"},
    {"1.size()", "(i:1.size)"},
    {"1e-400", "d:0"},
    /* durations */
    {"250ms", "dur:250000000"},
    {"60s", "dur:60000000000"},
    {"1m", "dur:60000000000"},
    {"24h", "dur:86400000000000"},
    {"30d", "dur:2592000000000000"},
    {"0s", "dur:0"},
    {"-5s", "(- dur:5000000000)"},
    {"now - 1h < t", "(< (- now dur:3600000000000) t)"},
    /* strings */
    {"'abc'", "s:\"abc\""},
    {"\"abc\"", "s:\"abc\""},
    {"''", "s:\"\""},
    {"'''x''x'''", "s:\"x''x\""},
    {"\"\"\"a\"b\"\"c\"\"\"", "s:\"a\\\"b\\\"\\\"c\""},
    {"'''a\nb'''", "s:\"a\\nb\""},
    {"'''a\r\nb\rc'''", "s:\"a\\nb\\nc\""},
    {"'\\a\\b\\f\\n\\r\\t\\v\\\\\\'\\\"\\`\\?'", "s:\"\\x07\\x08\\x0c\\n\\x0d\\x09\\x0b\\\\'\\\"`?\""},
    {"\"\\x41\\X42\\103\\u0044\\U00000045\"", "s:\"ABCDE\""},
    {"'\\377'", "s:\"\xc3\xbf\""},
    {"'\\xff'", "s:\"\xc3\xbf\""},
    {"'\\u270c'", "s:\"\xe2\x9c\x8c\""},
    {"'\\U0001f431'", "s:\"\xf0\x9f\x90\xb1\""},
    {"'\xc3\xa9t\xc3\xa9'", "s:\"\xc3\xa9t\xc3\xa9\""},
    {"r'\\n\\x'", "s:\"\\\\n\\\\x\""},
    {"R\"\\d+\"", "s:\"\\\\d+\""},
    {"r'''a\\'''", "s:\"a\\\\\""},
    {"r'abc\\'", "s:\"abc\\\\\""}, /* a backslash escapes nothing in a raw string */
    {"'a' + \"b\"", "(+ s:\"a\" s:\"b\")"},
    /* bytes */
    {"b'abc'", "b:616263"},
    {"B\"\"", "b:"},
    {"b'\\377\\xff\\000'", "b:ffff00"},
    {"b'\xc3\xbf'", "b:c3bf"},
    {"br'\\x'", "b:5c78"},
    {"b'''a\nb'''", "b:610a62"},
    /* others */
    {"true", "true"},
    {"false", "false"},
    {"null", "null"},
    {"x == null", "(== x null)"},
    /* comments and white space */
    {"  a // comment\n  + b\t", "(+ a b)"},
};

static void test_expressions(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof expr_cases / sizeof *expr_cases; i++) {
    const expr_case *c = &expr_cases[i];
    if (!c->ast) continue;
    run r;
    run_expr(&r, c->src);
    char *diags = render(&r.d);
    if (!r.e || r.d.errors) fail_msg("does not parse: %s\n%s", c->src, diags);
    sbuf b = {.n = 0};
    sexpr(&b, r.e);
    if (strcmp(b.s, c->ast) != 0) fail_msg("%s\n  got:  %s\n  want: %s", c->src, b.s, c->ast);
    free(diags);
    run_free(&r);
  }
}

/* ---- bad expressions: the first diagnostic ------------------------------------------------ */

typedef struct error_case {
  const char *src;
  int line, col;
  const char *message;
} error_case;

static const error_case expr_error_cases[] = {
    {"a +", 1, 4, "unexpected end of file, expected an expression"},
    {"a + )", 1, 5, "unexpected ')', expected an expression"},
    {"f(a,)", 1, 5, "unexpected ')', expected an expression"},
    {"[,]", 1, 2, "unexpected ',', expected an expression or ']'"},
    {"[1,,]", 1, 4, "unexpected ',', expected an expression or ']'"},
    {"{1: 2,,}", 1, 7, "unexpected ',', expected an expression or '}'"},
    {"f(a, b", 1, 7, "unexpected end of file, expected ')' (to close '(' at line 1)"},
    {"f(a, b c)", 1, 8, "unexpected identifier `c`, expected an operator, ',' or ')'"},
    {"a b", 1, 3, "unexpected identifier `b`, expected an operator or end of file"},
    {"a = 1", 1, 3, "unexpected '=', expected an operator or end of file (did you mean '=='?)"},
    {"!-x", 1, 2, "unexpected '-', expected an expression (write !(-x): CEL does not mix ! and -)"},
    {"-!x", 1, 2, "unexpected '!', expected an expression (write -(!x): CEL does not mix - and !)"},
    {"a ? b ? c : d : e", 1, 7, "unexpected '?', expected an operator or ':'"},
    {"a ? b", 1, 6, "unexpected end of file, expected an operator or ':'"},
    {"a.true", 1, 3, "unexpected 'true', expected a field name"},
    {"a.", 1, 3, "unexpected end of file, expected a field name"},
    {"a.`b`()", 1, 6, "unexpected '(', expected an operator or end of file"},
    {"for", 1, 1, "unexpected 'for', expected an expression (`for` is a reserved word)"},
    {"let + 1", 1, 1, "unexpected 'let', expected an expression (`let` is a reserved word)"},
    {"while(x)", 1, 1, "unexpected 'while', expected an expression (`while` is a reserved word)"},
    {"Msg{a: 1}", 1, 4, "unexpected '{', expected an operator or end of file"},
    {"((a)", 1, 5, "unexpected end of file, expected ')' (to close '(' at line 1)"},
    {"(a\n + b\n", 3, 1, "unexpected end of file, expected ')' (to close '(' at line 1)"},
    {"[a\n + b\n}", 3, 1, "unexpected '}', expected an operator, ',' or ']' (to close '[' at line 1)"},
    /* lexical errors */
    {"5min", 1, 1, "invalid number `5min`: a duration literal is a whole number followed by ms, s, m, h or d"},
    {"1hr", 1, 1, "invalid number `1hr`: a duration literal is a whole number followed by ms, s, m, h or d"},
    {"1h30m", 1, 1,
     "invalid number `1h30m`: a duration literal is a whole number followed by ms, s, m, h or d"},
    {"1.5s", 1, 1, "invalid number `1.5s`: a duration literal is a whole number followed by ms, s, m, h or d"},
    {"1_000", 1, 1, "invalid number `1_000`: `_` cannot separate digits"},
    {"0X1F", 1, 1, "invalid number `0X1F`: hexadecimal numbers start with `0x`"},
    {"0x1Fs", 1, 1, "invalid number `0x1Fs`"},
    {"1e5x", 1, 1, "invalid number `1e5x`"},
    {"x + 1.2.3", 1, 5, "invalid number `1.2.3`"},
    {"9223372036854775808", 1, 1,
     "integer literal does not fit in int64 (the largest is 9223372036854775807; -9223372036854775808 is allowed)"},
    {"1 - 9223372036854775808", 1, 5,
     "integer literal does not fit in int64 (the largest is 9223372036854775807; -9223372036854775808 is allowed)"},
    {"-(9223372036854775808)", 1, 3,
     "integer literal does not fit in int64 (the largest is 9223372036854775807; -9223372036854775808 is allowed)"},
    {"-9223372036854775809", 1, 2,
     "integer literal `9223372036854775809` does not fit in int64 (the largest is 9223372036854775807)"},
    {"0x1ffffffffffffffff", 1, 1,
     "integer literal `0x1ffffffffffffffff` does not fit in int64 (the largest is 9223372036854775807)"},
    {"18446744073709551616u", 1, 1, "unsigned literal `18446744073709551616u` does not fit in uint64"},
    {"1e400", 1, 1, "double literal `1e400` is out of range"},
    {"9999999999999999d", 1, 1, "duration literal `9999999999999999d` is out of range"},
    {"'abc", 1, 1, "unterminated string literal"},
    {"x + \"abc\n\"", 1, 5, "unterminated string literal"},
    {"'''abc''", 1, 1, "unterminated string literal"},
    {"b'abc", 1, 1, "unterminated bytes literal"},
    {"r'abc", 1, 1, "unterminated string literal"},
    {"'a\\qb'", 1, 3, "invalid escape `\\q`"},
    {"'a\\\xc3\xa9'", 1, 3, "invalid escape `\\\xc3\xa9`"},
    {"'\\x4'", 1, 2, "invalid escape `\\x4`: `\\x` takes 2 hexadecimal digits"},
    {"'\\u12g4'", 1, 2, "invalid escape `\\u12`: `\\u` takes 4 hexadecimal digits"},
    {"'\\08'", 1, 2, "invalid escape `\\0`: octal escapes take three digits, \\000 to \\377"},
    {"'\\400'", 1, 2, "invalid escape `\\4`"},
    {"'\\uD83D'", 1, 2, "invalid escape `\\uD83D`: a surrogate is not a character"},
    {"'\\U00110000'", 1, 2, "invalid escape `\\U00110000`: beyond U+10FFFF"},
    {"b'\\u0041'", 1, 3, "`\\u` escapes are not allowed in bytes literals"},
    {"'a\xff'", 1, 1, "invalid UTF-8 in a string literal"},
    {"x \xff", 1, 3, "invalid UTF-8 (byte 0xFF)"},
    {"a & b", 1, 3, "unexpected character `&` (did you mean `&&`?)"},
    {"a | b", 1, 3, "unexpected character `|` (did you mean `||`?)"},
    {"a # b", 1, 3, "unexpected character `#`"},
    {"a \xc2\xa7 b", 1, 3, "unexpected character `\xc2\xa7` (U+00A7)"},
    {"\t\xc3\xa9 + x $", 1, 2, "unexpected character `\xc3\xa9` (U+00E9)"},
    {"\xef\xbb\xbfx +", 1, 4, "unexpected end of file, expected an expression"}, /* a byte order mark */
    {"x.`ab", 1, 3, "unterminated backticked name"},
    {"x.`a$b`", 1, 3, "invalid backticked name `a$b`: it may hold letters, digits, spaces and _ . - / only"},
    {"x.``", 1, 3, "invalid backticked name ``: it may hold letters, digits, spaces and _ . - / only"},
};

static void test_expression_errors(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof expr_error_cases / sizeof *expr_error_cases; i++) {
    const error_case *c = &expr_error_cases[i];
    run r;
    run_expr(&r, c->src);
    char *diags = render(&r.d);
    if (r.e) fail_msg("parses, but should not: %s", c->src);
    if (!r.d.head) fail_msg("no diagnostic for %s", c->src);
    const diag *x = r.d.head;
    if (x->level != DIAG_ERROR || x->loc.line != c->line || x->loc.col != c->col || strcmp(x->message, c->message) != 0)
      fail_msg("%s\n  got:  %d:%d: %s\n  want: %d:%d: %s\n%s", c->src, x->loc.line, x->loc.col, x->message, c->line,
               c->col, c->message, diags);
    free(diags);
    run_free(&r);
  }
}

/* ---- locations ---------------------------------------------------------------------------- */

static void assert_loc(srcloc l, int line, int col, int end_line, int end_col) {
  if (l.line != line || l.col != col || l.end_line != end_line || l.end_col != end_col)
    fail_msg("location %d:%d-%d:%d, want %d:%d-%d:%d", l.line, l.col, l.end_line, l.end_col, line, col, end_line,
             end_col);
}

static void test_locations(void **state) {
  (void)state;
  run r;
  /*           123456789012345678          1234567890123 */
  run_expr(&r, "  a.bx(c)[d] + -1 \n  ? 'é' : '''é\n'''");
  assert_non_null(r.e);
  assert_int_equal(r.d.errors, 0);
  const expr *cond = r.e;
  assert_int_equal(cond->kind, E_COND);
  assert_loc(cond->loc, 1, 3, 3, 4);
  assert_loc(cond->name_loc, 2, 3, 2, 4);
  const expr *plus = cond->operand;
  assert_int_equal(plus->kind, E_BINARY);
  assert_loc(plus->loc, 1, 3, 1, 18);
  assert_loc(plus->name_loc, 1, 14, 1, 15);
  const expr *index = plus->operand;
  assert_int_equal(index->kind, E_INDEX);
  assert_loc(index->loc, 1, 3, 1, 13);
  assert_loc(index->name_loc, 1, 10, 1, 11);
  const expr *call = index->operand;
  assert_int_equal(call->kind, E_CALL);
  assert_string_equal(call->name, "bx");
  assert_loc(call->loc, 1, 3, 1, 10);
  assert_loc(call->name_loc, 1, 5, 1, 7);
  assert_loc(call->operand->loc, 1, 3, 1, 4);
  const expr *minus_one = plus->args[0];
  assert_int_equal(minus_one->kind, E_LITERAL);
  assert_int_equal(minus_one->lit.i, -1);
  assert_loc(minus_one->loc, 1, 16, 1, 18);
  /* columns count characters; a string may run over a line break */
  assert_loc(cond->args[0]->loc, 2, 5, 2, 8);
  assert_loc(cond->args[1]->loc, 2, 11, 3, 4);
  run_free(&r);

  run_expr(&r, "!!x.y");
  assert_non_null(r.e);
  assert_loc(r.e->loc, 1, 1, 1, 6);
  assert_loc(r.e->name_loc, 1, 1, 1, 2);
  assert_loc(r.e->operand->loc, 1, 2, 1, 6);
  assert_loc(r.e->operand->operand->name_loc, 1, 5, 1, 6); /* the field y */
  run_free(&r);

  run_expr(&r, ".f(1) + .x + m.`a-b`");
  assert_non_null(r.e);
  const expr *sel = r.e->args[0];
  assert_string_equal(sel->name, "a-b");
  assert_loc(sel->name_loc, 1, 16, 1, 21);
  const expr *dot_x = r.e->operand->args[0];
  assert_string_equal(dot_x->name, ".x");
  assert_loc(dot_x->loc, 1, 9, 1, 11);
  const expr *dot_f = r.e->operand->operand;
  assert_string_equal(dot_f->name, ".f");
  assert_null(dot_f->operand);
  assert_loc(dot_f->name_loc, 1, 1, 1, 3);
  run_free(&r);
}

/* ---- nesting ------------------------------------------------------------------------------- */

static char *repeat(const char *head, int n, const char *middle, const char *tail, int m) {
  size_t len = strlen(head) * (size_t)n + strlen(middle) + strlen(tail) * (size_t)m + 1;
  char *s = malloc(len), *p = s;
  assert_non_null(s);
  for (int i = 0; i < n; i++) p = stpcpy(p, head);
  p = stpcpy(p, middle);
  for (int i = 0; i < m; i++) p = stpcpy(p, tail);
  return s;
}

typedef struct depth_case {
  const char *head;
  int n;
  const char *middle, *tail;
  int m;
  int col; /* 0: parses */
} depth_case;

static const depth_case depth_cases[] = {
    {"(", 250, "x", ")", 250, 0},
    {"(", 251, "x", ")", 251, 251},
    {"(", 100000, "x", "", 0, 251}, /* never a stack overflow */
    {"[", 251, "", "]", 251, 251},
    {"f(", 251, "", ")", 251, 502},
    {"!", 250, "x", "", 0, 0},
    {"!", 300, "x", "", 0, 251},
    {"-", 300, "x", "", 0, 251},
    {"a + ", 250, "a", "", 0, 0},
    {"a + ", 300, "a", "", 0, 1003},   /* the 251st '+' */
    {"a.b", 1, "", ".c", 249, 0},
    {"a.b", 1, "", ".c", 300, 503},    /* the field of the 251st '.' */
    {"a ? b : ", 5000, "c", "", 0, -1}, /* somewhere: the parser's stack */
    {"a ? b : ", 400, "c", "", 0, -1},
};

static void test_depth(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof depth_cases / sizeof *depth_cases; i++) {
    const depth_case *c = &depth_cases[i];
    char *text = repeat(c->head, c->n, c->middle, c->tail, c->m);
    run r;
    run_expr(&r, text);
    if (c->col == 0) {
      if (!r.e || r.d.errors) fail_msg("case %zu does not parse: %s", i, r.d.head ? r.d.head->message : "");
    } else {
      if (r.e) fail_msg("case %zu parses", i);
      assert_non_null(r.d.head);
      assert_string_equal(r.d.head->message, "expression nested too deeply (the limit is 250 levels)");
      if (c->col > 0 && r.d.head->loc.col != c->col)
        fail_msg("case %zu: column %d, want %d", i, r.d.head->loc.col, c->col);
      assert_int_equal(r.d.errors, 1);
    }
    run_free(&r);
    free(text);
  }
}

/* ---- files ---------------------------------------------------------------------------------- */

static void test_spec_example(void **state) {
  (void)state;
  char path[4096];
  snprintf(path, sizeof path, "%s/tests/golden/parse/spec_example.clause", srcdir());
  size_t len;
  char *text = read_whole(path, &len);
  if (!text) fail_msg("cannot read %s (set CLAUSE_SRCDIR to the source tree)", path);
  run r;
  run_file(&r, "spec_example.clause", text, len);
  char *diags = render(&r.d);
  if (r.d.head) fail_msg("diagnostics:\n%s", diags);
  const policy_file *f = r.pf;
  assert_non_null(f);

  assert_true(f->has_header);
  assert_string_equal(f->name, "example-llm-api");
  assert_int_equal(f->nsettings, 4);
  assert_string_equal(f->settings[0].name, "version");
  assert_string_equal(f->settings[0].string, "2024-01-10");
  assert_null(f->settings[0].word);
  assert_string_equal(f->settings[1].name, "default");
  assert_string_equal(f->settings[1].word, "allow");
  assert_string_equal(f->settings[2].word, "deny_overrides");
  assert_string_equal(f->settings[3].name, "on_error");
  assert_string_equal(f->settings[3].word, "skip");
  assert_int_equal(f->settings[3].loc.line, 5);
  assert_int_equal(f->settings[3].value_loc.col, 12);

  assert_int_equal(f->nimports, 1);
  assert_string_equal(f->imports[0].path, "std/geo");
  assert_string_equal(f->imports[0].alias, "geo");

  assert_int_equal(f->nfields, 13);
  assert_string_equal(f->fields[0].path, "account.id");
  assert_int_equal(f->fields[0].nsegs, 2);
  assert_string_equal(f->fields[0].segs[1], "id");
  assert_int_equal(f->fields[0].ty->kind, T_STRING);
  assert_string_equal(f->fields[3].path, "request.time");
  assert_true(f->fields[3].clock);
  assert_int_equal(f->fields[3].ty->kind, T_TIMESTAMP);
  assert_string_equal(f->fields[8].path, "request.purpose");
  assert_true(f->fields[8].optional);
  assert_false(f->fields[8].clock);
  assert_int_equal(f->fields[9].ty->kind, T_LIST);
  assert_int_equal(f->fields[9].ty->elem->kind, T_STRING);
  assert_true(f->fields[9].optional);
  assert_int_equal(f->fields[12].ty->kind, T_MAP);
  assert_int_equal(f->fields[12].ty->key->kind, T_STRING);
  assert_int_equal(f->fields[12].ty->elem->kind, T_STRING);
  assert_loc(f->fields[12].loc, 23, 3, 23, 10);

  assert_int_equal(f->nlets, 2);
  assert_string_equal(f->lets[0].name, "competing");
  assert_int_equal(f->lets[0].value->kind, E_LIST);
  assert_int_equal(f->lets[1].value->kind, E_MAP);
  assert_int_equal(f->lets[1].value->nargs, 6);

  assert_int_equal(f->nexterns, 1);
  assert_string_equal(f->externs[0].name, "ip_reputation");
  assert_int_equal(f->externs[0].nparams, 1);
  assert_string_equal(f->externs[0].params[0].name, "ip");
  assert_int_equal(f->externs[0].params[0].ty->kind, T_STRING);
  assert_int_equal(f->externs[0].ret->kind, T_DOUBLE);
  assert_string_equal(f->externs[0].lib, "libiprep.so");
  assert_null(f->externs[0].symbol);

  assert_int_equal(f->ncounters, 4);
  assert_string_equal(f->counters[0].name, "rpm");
  assert_int_equal(f->counters[0].window->lit.kind, CV_DURATION);
  assert_int_equal(f->counters[0].window->lit.i, INT64_C(60000000000));
  assert_null(f->counters[0].add);
  assert_int_equal(f->counters[1].add->kind, E_BINARY);
  assert_int_equal(f->counters[2].non, 2);
  assert_int_equal(f->counters[2].on[0], EFF_DENY);
  assert_int_equal(f->counters[2].on[1], EFF_SUSPEND);
  assert_int_equal(f->counters[2].on_locs[1].col, 59);
  assert_non_null(f->counters[3].distinct);

  assert_int_equal(f->nrules, 5);
  const rule_decl *r0 = &f->rules[0];
  assert_string_equal(r0->id, "no-competing-models");
  assert_loc(r0->loc, 36, 6, 36, 27);
  assert_string_equal(r0->cite, "Terms of Use, section 2(c)(iii)");
  assert_int_equal(r0->reason->kind, E_LITERAL);
  assert_true(r0->has_effect);
  assert_int_equal(r0->effect, EFF_DENY);
  assert_int_equal(r0->when->op, OP_AND);
  assert_null(r0->unless);
  const rule_decl *r2 = &f->rules[2];
  assert_int_equal(r2->effect, EFF_THROTTLE);
  assert_int_equal(r2->retry_after->lit.i, INT64_C(60000000000));
  const rule_decl *r3 = &f->rules[3];
  assert_int_equal(r3->effect, EFF_SUSPEND);
  assert_int_equal(r3->suspend_key->kind, E_SELECT);
  assert_int_equal(r3->suspend_for->lit.kind, CV_DURATION);
  const rule_decl *r4 = &f->rules[4];
  assert_int_equal(r4->effect, EFF_FLAG);
  assert_null(r4->cite);
  assert_int_equal(r4->nthens, 1);
  assert_string_equal(r4->thens[0].action, "log");
  assert_int_equal(r4->thens[0].nargs, 1);

  assert_int_equal(f->ntests, 1);
  assert_string_equal(f->tests[0].name, "distillation is denied");
  assert_int_equal(f->tests[0].nsteps, 1);
  assert_int_equal(f->tests[0].steps[0].given->kind, E_MAP);
  assert_int_equal(f->tests[0].steps[0].nexpects, 1);
  assert_false(f->tests[0].steps[0].expects[0].flagged);
  assert_int_equal(f->tests[0].steps[0].expects[0].effect, EFF_DENY);
  assert_string_equal(f->tests[0].steps[0].expects[0].rule, "no-competing-models");

  free(diags);
  run_free(&r);
  free(text);
}

/* The .clause files of a golden folder, sorted. */
static int list_clause_files(const char *dir, char ***names) {
  DIR *dp = opendir(dir);
  if (!dp) fail_msg("cannot open %s (set CLAUSE_SRCDIR to the source tree)", dir);
  int n = 0, cap = 16;
  char **v = malloc((size_t)cap * sizeof *v);
  struct dirent *ent;
  while ((ent = readdir(dp)) != NULL) {
    size_t len = strlen(ent->d_name);
    if (len <= 7 || strcmp(ent->d_name + len - 7, ".clause") != 0) continue;
    if (n == cap) v = realloc(v, (size_t)(cap *= 2) * sizeof *v);
    v[n++] = strdup(ent->d_name);
  }
  closedir(dp);
  for (int i = 1; i < n; i++) /* insertion sort: a few dozen names */
    for (int j = i; j > 0 && strcmp(v[j - 1], v[j]) > 0; j--) {
      char *t = v[j];
      v[j] = v[j - 1];
      v[j - 1] = t;
    }
  *names = v;
  return n;
}

static void test_valid_files(void **state) {
  (void)state;
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/tests/golden/parse", srcdir());
  char **names;
  int n = list_clause_files(dir, &names);
  assert_true(n >= 1);
  for (int i = 0; i < n; i++) {
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    size_t len;
    char *text = read_whole(path, &len);
    assert_non_null(text);
    run r;
    run_file(&r, names[i], text, len);
    char *diags = render(&r.d);
    if (r.d.head) fail_msg("%s:\n%s", names[i], diags);
    free(diags);
    run_free(&r);
    free(text);
    free(names[i]);
  }
  free(names);
}

static void test_golden_diagnostics(void **state) {
  (void)state;
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/tests/golden/diag", srcdir());
  const char *regen = getenv("CLAUSE_REGEN");
  bool rewrite = regen && strcmp(regen, "1") == 0;
  char **names;
  int n = list_clause_files(dir, &names);
  assert_true(n >= 15);
  int failures = 0;
  for (int i = 0; i < n; i++) {
    char path[8192], err_path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    snprintf(err_path, sizeof err_path, "%.*s.err", (int)(strlen(path) - 7), path);
    size_t len;
    char *text = read_whole(path, &len);
    assert_non_null(text);
    run r;
    run_file(&r, names[i], text, len);
    char *got = render(&r.d);
    if (r.d.errors == 0) {
      print_error("%s: no error\n", names[i]);
      failures++;
    }
    if (rewrite) {
      FILE *f = fopen(err_path, "wb");
      assert_non_null(f);
      fputs(got, f);
      fclose(f);
    } else {
      char *want = read_whole(err_path, NULL);
      if (!want) {
        print_error("%s: missing (run with CLAUSE_REGEN=1)\n", err_path);
        failures++;
      } else if (strcmp(got, want) != 0) {
        print_error("%s: diagnostics differ\n--- got\n%s--- want\n%s", names[i], got, want);
        failures++;
      }
      free(want);
    }
    free(got);
    run_free(&r);
    free(text);
    free(names[i]);
  }
  free(names);
  assert_int_equal(failures, 0);
}

/* Recovery: the declarations around a broken one survive; the broken one
 * is left out whole. */
static void test_recovery(void **state) {
  (void)state;
  static const char text[] =
      "let a = 1\n"
      "let b = (2 +\n"
      "let c = 3\n"
      "rule \"r1\" {\n"
      "  deny when a >\n"
      "}\n"
      "rule \"r2\" {\n"
      "  allow when true\n"
      "rule \"r3\" {\n"
      "  flag when b\n"
      "  cite \"x\"\n"
      "}\n"
      "input {\n"
      "  a.b strng\n"
      "  a.c int\n"
      "}\n"
      "counter k key a window 5min\n"
      "test \"t\" { given {} expect allow }\n";
  run r;
  run_file(&r, "r.clause", text, sizeof text - 1);
  const policy_file *f = r.pf;
  assert_int_equal(r.d.errors, 5);
  assert_int_equal(f->nlets, 2);
  assert_string_equal(f->lets[0].name, "a");
  assert_string_equal(f->lets[1].name, "c");
  assert_int_equal(f->nrules, 1);
  assert_string_equal(f->rules[0].id, "r3");
  assert_string_equal(f->rules[0].cite, "x");
  assert_int_equal(f->nfields, 1);
  assert_string_equal(f->fields[0].path, "a.c");
  assert_int_equal(f->ncounters, 0);
  assert_int_equal(f->ntests, 1);
  run_free(&r);
}

/* Policy words name things; CEL's reserved words do not. */
static void test_keywords_as_names(void **state) {
  (void)state;
  static const char text[] =
      "input {\n"
      "  key.id string\n"
      "  app.window int\n"
      "  app.for.`x-y` bool\n"
      "  rule.policy list(map(string, any))\n"
      "}\n"
      "let window = key.id\n"
      "let deny = app.window > 1\n"
      "counter key key key.id window 1m distinct key.id on deny\n"
      "extern fn flag(when: int, then: string) -> bool\n"
      "import \"std/x\" as given\n"
      "rule \"r\" { then log(window, deny) deny when deny && flag(1, \"a\") unless rule.policy == [] }\n";
  run r;
  run_file(&r, "k.clause", text, sizeof text - 1);
  char *diags = render(&r.d);
  if (r.d.head) fail_msg("diagnostics:\n%s", diags);
  const policy_file *f = r.pf;
  assert_int_equal(f->nfields, 4);
  assert_string_equal(f->fields[2].path, "app.for.x-y");
  assert_string_equal(f->fields[2].segs[2], "x-y");
  assert_int_equal(f->fields[3].ty->elem->kind, T_MAP);
  assert_int_equal(f->fields[3].ty->elem->elem->kind, T_DYN);
  assert_string_equal(f->lets[0].name, "window");
  assert_string_equal(f->counters[0].name, "key");
  assert_int_equal(f->counters[0].on[0], EFF_DENY);
  assert_string_equal(f->externs[0].params[1].name, "then");
  assert_null(f->externs[0].lib);
  assert_string_equal(f->imports[0].alias, "given");
  assert_int_equal(f->rules[0].nthens, 1);
  assert_non_null(f->rules[0].unless);
  free(diags);
  run_free(&r);

  static const char *const bad[] = {
      "let for = 1\n", "let x = as\n", "input { for.x int }\n", "extern fn if() -> int\n",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    run_file(&r, "k.clause", bad[i], strlen(bad[i]));
    if (r.d.errors != 1) fail_msg("%s: %d errors", bad[i], r.d.errors);
    assert_non_null(strstr(r.d.head->message, "is a reserved word"));
    run_free(&r);
  }
}

/* ---- diagnostics ---------------------------------------------------------------------------- */

static void test_diag_render(void **state) {
  (void)state;
  static const char text[] = "a\tb\xc3\xa9 cd\r\nline two\rthree\n";
  source src = {"t.clause", text, sizeof text - 1};
  diag_list d;
  diag_init(&d);
  diag_error(&d, ((srcloc){&src, 1, 5, 1, 7}), "two wide %d", 2);   /* "é " after a tab */
  diag_warning(&d, ((srcloc){&src, 2, 6, 3, 2}), "runs on");          /* to the end of line 2 */
  diag_add(&d, DIAG_NOTE, ((srcloc){&src, 3, 3, 3, 3}), "empty span");
  diag_error(&d, ((srcloc){&src, 4, 1, 4, 1}), "at the end");          /* after the last newline */
  diag_error(&d, ((srcloc){NULL, 0, 0, 0, 0}), "nowhere");
  assert_int_equal(d.errors, 3);
  assert_int_equal(d.warnings, 1);
  char *got = render(&d);
  assert_string_equal(got,
                      "t.clause:1:5: error: two wide 2\n"
                      "a\tb\xc3\xa9 cd\n"
                      " \t  ^^\n"
                      "t.clause:2:6: warning: runs on\n"
                      "line two\n"
                      "     ^^^\n"
                      "t.clause:3:3: note: empty span\n"
                      "three\n"
                      "  ^\n"
                      "t.clause:4:1: error: at the end\n"
                      "\n"
                      "^\n"
                      "error: nowhere\n");
  free(got);
  diag_free(&d);

  /* past max_errors errors are counted, not kept */
  diag_init(&d);
  d.max_errors = 2;
  for (int i = 0; i < 5; i++) diag_error(&d, ((srcloc){&src, 1, 1, 1, 2}), "e%d", i);
  diag_warning(&d, ((srcloc){&src, 1, 1, 1, 2}), "w");
  assert_int_equal(d.errors, 5);
  int kept = 0;
  for (const diag *x = d.head; x; x = x->next) kept++;
  assert_int_equal(kept, 3);
  diag_free(&d);
  diag_free(&d); /* twice is fine */
}

static void test_diag_suggest(void **state) {
  (void)state;
  static const char *const names[] = {"request.purpose", "request.model", "string", "int", "first_match",
                                      "deny_overrides"};
  assert_string_equal(diag_suggest("request.purpse", names, 6), "request.purpose");
  assert_string_equal(diag_suggest("strng", names, 6), "string");
  assert_string_equal(diag_suggest("sting", names, 6), "string");
  assert_string_equal(diag_suggest("srting", names, 6), "string"); /* a transposition */
  assert_string_equal(diag_suggest("it", names, 6), "int");
  assert_string_equal(diag_suggest("first_mach", names, 6), "first_match");
  assert_null(diag_suggest("xyz", names, 6));
  assert_null(diag_suggest("account.id", names, 6));
  assert_null(diag_suggest("stringifier", names, 6));
  assert_null(diag_suggest("string", names, 0));
}

static void test_types(void **state) {
  (void)state;
  arena a;
  arena_init(&a, 0);
  const type *t = type_map(&a, type_prim(T_STRING), type_list(&a, type_prim(T_INT)));
  char buf[128];
  outbuf o;
  ob_init_fixed(&o, buf, sizeof buf);
  type_format(&o, t);
  assert_string_equal(ob_cstr(&o), "map(string, list(int))");
  static const struct {
    type_kind k;
    const char *name;
  } prims[] = {{T_DYN, "dyn"},       {T_BOOL, "bool"},          {T_INT, "int"},       {T_UINT, "uint"},
               {T_DOUBLE, "double"}, {T_STRING, "string"},      {T_BYTES, "bytes"},   {T_TIMESTAMP, "timestamp"},
               {T_DURATION, "duration"}, {T_NULL, "null_type"}, {T_TYPE, "type"},     {T_LIST, "list(dyn)"},
               {T_MAP, "map(dyn, dyn)"}, {T_ERROR, "error"}};
  for (size_t i = 0; i < sizeof prims / sizeof *prims; i++) {
    ob_init_fixed(&o, buf, sizeof buf);
    assert_ptr_equal(type_prim(prims[i].k), type_prim(prims[i].k));
    assert_int_equal(type_prim(prims[i].k)->kind, prims[i].k);
    type_format(&o, type_prim(prims[i].k));
    assert_string_equal(ob_cstr(&o), prims[i].name);
  }
  arena_free(&a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_expressions),     cmocka_unit_test(test_expression_errors),
      cmocka_unit_test(test_locations),       cmocka_unit_test(test_depth),
      cmocka_unit_test(test_spec_example),    cmocka_unit_test(test_valid_files),
      cmocka_unit_test(test_golden_diagnostics), cmocka_unit_test(test_recovery),
      cmocka_unit_test(test_keywords_as_names), cmocka_unit_test(test_diag_render),
      cmocka_unit_test(test_diag_suggest),    cmocka_unit_test(test_types),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
