/*
 * test_check.c - the semantic checker (compiler/check.c, check_expr.c).
 *
 * Golden diagnostics: every tests/golden/check/NAME.clause is parsed and
 * checked, and its rendered diagnostics (no colour) must equal NAME.err.
 * CLAUSE_REGEN=1 rewrites the .err files instead. Files are found under
 * $CLAUSE_SRCDIR (default "."). Table-driven tests cover standalone
 * expressions (types, errors, qualified variables), and the annotations
 * the code generator relies on (refs, slots, rewritten calls).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cel.h"
#include "check.h"
#include "diag.h"
#include "parse.h"
#include "test_util.h"

#define GOLDEN_DIR "tests/golden/check"

/* One compile up to the checker, with its arena and diagnostics. */
typedef struct run {
  arena a;
  diag_list d;
  source src;
  policy_file *pf;
  expr *e;
  bool ok;
} run;

static void run_policy(run *r, const char *path, const char *text) {
  arena_init(&r->a, 1 << 16);
  diag_init(&r->d);
  r->src = (source){path, text, strlen(text)};
  r->pf = parse_policy(&r->src, &r->a, &r->d);
  r->ok = false;
  /* As the compiler does: a file with syntax errors is not checked. */
  if (r->pf && r->d.errors == 0) r->ok = check_policy(r->pf, &r->a, &r->d);
}

static void run_free(run *r) {
  diag_free(&r->d);
  arena_free(&r->a);
}

static char *render(const diag_list *d) {
  char *text = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&text, &len);
  assert_non_null(mem);
  diag_render(d, mem, false);
  fclose(mem);
  return text;
}

/* ---- golden diagnostics ------------------------------------------------------------- */

static int cmp_names(const void *x, const void *y) { return strcmp(*(char *const *)x, *(char *const *)y); }

static void test_golden(void **state) {
  (void)state;
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/%s", srcdir(), GOLDEN_DIR);
  DIR *dp = opendir(dir);
  if (!dp) fail_msg("cannot open %s (set CLAUSE_SRCDIR to the source tree)", dir);
  char *names[512];
  int n = 0;
  struct dirent *ent;
  while ((ent = readdir(dp)) && n < 512) {
    size_t len = strlen(ent->d_name);
    if (len > 7 && strcmp(ent->d_name + len - 7, ".clause") == 0) names[n++] = strdup(ent->d_name);
  }
  closedir(dp);
  qsort(names, (size_t)n, sizeof *names, cmp_names);
  bool regen = getenv("CLAUSE_REGEN") && strcmp(getenv("CLAUSE_REGEN"), "1") == 0;
  int failures = 0;
  for (int i = 0; i < n; i++) {
    char path[4200], errpath[4200], shown[4200];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    snprintf(errpath, sizeof errpath, "%.*s.err", (int)(strlen(path) - 7), path);
    snprintf(shown, sizeof shown, "%s/%s", GOLDEN_DIR, names[i]);
    char *text = read_whole(path, NULL);
    assert_non_null(text);
    run r;
    run_policy(&r, shown, text);
    char *got = render(&r.d);
    if (regen) {
      FILE *f = fopen(errpath, "wb");
      assert_non_null(f);
      fputs(got, f);
      fclose(f);
    } else {
      char *want = read_whole(errpath, NULL);
      if (!want || strcmp(want, got) != 0) {
        print_error("golden mismatch: %s\n--- expected (%s)\n%s--- got\n%s", shown, errpath,
                    want ? want : "(missing)\n", got);
        failures++;
      }
      free(want);
    }
    free(got);
    free(text);
    run_free(&r);
    free(names[i]);
  }
  assert_int_equal(failures, 0);
  assert_true(n >= 20);
}

/* ---- standalone expressions ---------------------------------------------------------- */

typedef struct expr_case {
  const char *src;
  bool disable_check;
  const char *type;  /* expected type when it checks */
  const char *error; /* expected substring of the diagnostics, or NULL */
} expr_case;

static const expr_case expr_cases[] = {
    {"1 + 2", false, "int", NULL},
    {"1u * 3u", false, "uint", NULL},
    {"1.5 / 2.0", false, "double", NULL},
    {"'a' + 'b'", false, "string", NULL},
    {"b'a' + b'b'", false, "bytes", NULL},
    {"[1] + [2]", false, "list(int)", NULL},
    {"[1] + ['a']", false, "list(dyn)", NULL},
    {"1 + 1.0", false, NULL, "no matching overload for '+' applied to (int, double)"},
    {"1 + 1.0", true, NULL, NULL},
    {"'a' - 'b'", false, NULL, "no matching overload for '-' applied to (string, string)"},
    {"2.0 % 1.0", false, NULL, "no matching overload for '%' applied to (double, double)"},
    {"timestamp('2024-01-01T00:00:00Z') + duration('1h')", false, "timestamp", NULL},
    {"duration('1h') + timestamp('2024-01-01T00:00:00Z')", false, "timestamp", NULL},
    {"timestamp('2024-01-01T00:00:00Z') - timestamp('2023-01-01T00:00:00Z')", false, "duration", NULL},
    {"60s + 1m", false, "duration", NULL},
    {"1 == 1.0", false, "bool", NULL},
    {"1u < 2.5", false, "bool", NULL},
    {"1 == 'a'", false, NULL, "no matching overload for '==' applied to (int, string)"},
    {"1 == 'a'", true, NULL, NULL},
    {"'a' < 1", false, NULL, "no matching overload for '<' applied to (string, int)"},
    {"null == 1", false, "bool", NULL},
    {"[1, 2] == [1.0]", false, "bool", NULL},
    {"1 in [1, 2]", false, "bool", NULL},
    {"1.0 in [1, 2]", false, "bool", NULL},
    {"'a' in {'a': 1}", false, "bool", NULL},
    {"'a' in 'abc'", false, NULL, "no matching overload for 'in' applied to (string, string)"},
    {"true && 1", false, NULL, "the operands of `&&` must be bool, not int"},
    {"!1", false, NULL, "no matching overload for '!' applied to (int)"},
    {"-'a'", false, NULL, "no matching overload for '-' applied to (string)"},
    {"1 ? 2 : 3", false, NULL, "the condition of `?:` must be bool, not int"},
    {"true ? 1 : 2", false, "int", NULL},
    {"true ? 1 : 'a'", false, "dyn", NULL},
    {"[1, 2][0]", false, "int", NULL},
    {"[1, 2]['a']", false, NULL, "no matching overload for '[]' applied to (list(int), string)"},
    {"{'a': 1}['a']", false, "int", NULL},
    {"{'a': 1}.a", false, "int", NULL},
    {"{1.5: 1}", false, NULL, "map keys must be int, uint, bool or string, not double"},
    {"[]", false, "list(dyn)", NULL},
    {"{}", false, "map(dyn, dyn)", NULL},
    {"size('abc')", false, "int", NULL},
    {"'abc'.size()", false, "int", NULL},
    {"size(1)", false, NULL, "no matching overload for 'size' applied to (int)"},
    {"'abc'.startsWith('a')", false, "bool", NULL},
    {"'abc'.startsWith(1)", false, NULL, "no matching overload for 'startsWith' applied to (string, int)"},
    {"'abc'.startsWith()", false, NULL, "`startsWith` takes 1 argument, not 0"},
    {"size('a', 'b')", false, NULL, "`size` takes 1 argument, not 2"},
    {"sise('a')", false, NULL, "unknown function `sise`; did you mean `size`?"},
    {"int('5')", false, "int", NULL},
    {"string(5)", false, "string", NULL},
    {"dyn(5) + 1", false, "dyn", NULL},
    {"type(1) == int", false, "bool", NULL},
    {"int", false, "type", NULL},
    {"[1, 2].all(x, x > 0)", false, "bool", NULL},
    {"[1, 2].exists_one(x, x > 0)", false, "bool", NULL},
    {"[1, 2].map(x, x * 2)", false, "list(int)", NULL},
    {"[1, 2].map(x, x > 1, 'a')", false, "list(string)", NULL},
    {"[1, 2].filter(x, x > 1)", false, "list(int)", NULL},
    {"{'a': 1}.all(k, k == 'a')", false, "bool", NULL},
    {"[1, 2].all(x, x)", false, NULL, "the predicate of all() must be bool, not int"},
    {"1.all(x, true)", false, NULL, "all() needs a list or a map, not int"},
    {"[1].all(1, true)", false, NULL, "the first argument of all() must be a variable name"},
    {"[[1]].all(x, x.all(y, y > 0))", false, "bool", NULL},
    {"has({'a': 1}.a)", false, "bool", NULL},
    {"has(x)", false, NULL, "has() needs a field selection"},
    {"y + 1", false, NULL, "unknown name `y`"},
    {"y + 1", true, "dyn", NULL}, /* unchecked: an evaluation error */
    {"f_unknown(1) || true", true, "bool", NULL},
    {"size(1, 2)", true, "dyn", NULL},
    {"x + 1", false, "int", NULL},
    {"s.size()", false, "int", NULL},
    {"l[0] + x", false, "int", NULL},
    {"m['k'] + 1", false, "int", NULL},
    {"m.k + 1", false, "int", NULL},
    {"a.b.c", false, "string", NULL},
    {"a.b.d", false, "string", NULL},
    {"a.b", false, "map(string, string)", NULL},
    {"d.anything + 1", false, "dyn", NULL},
    {"x.y", false, NULL, "cannot select field `y` from a value of type int"},
    {"x.y", true, "dyn", NULL},
    {"now", false, "timestamp", NULL},
    {"xx + 1", false, NULL, "unknown name `xx`; did you mean `x`?"},
};

static const check_var *expr_vars(arena *a, int *n) {
  static check_var vars[7];
  vars[0] = (check_var){"x", type_prim(T_INT)};
  vars[1] = (check_var){"s", type_prim(T_STRING)};
  vars[2] = (check_var){"l", type_list(a, type_prim(T_INT))};
  vars[3] = (check_var){"m", type_map(a, type_prim(T_STRING), type_prim(T_INT))};
  vars[4] = (check_var){"a.b", type_map(a, type_prim(T_STRING), type_prim(T_STRING))};
  vars[5] = (check_var){"a.b.c", type_prim(T_STRING)};
  vars[6] = (check_var){"d", NULL};
  *n = 7;
  return vars;
}

/* Parses and checks one expression over expr_vars(). */
static expr *check_one(run *r, const char *text, bool disable_check) {
  arena_init(&r->a, 1 << 14);
  diag_init(&r->d);
  r->src = (source){"expr", text, strlen(text)};
  r->e = parse_expression(&r->src, &r->a, &r->d);
  if (!r->e) {
    char *got = render(&r->d);
    fail_msg("does not parse: %s\n%s", text, got);
  }
  int n;
  const check_var *vars = expr_vars(&r->a, &n);
  r->ok = check_expression(r->e, vars, n, disable_check, &r->a, &r->d);
  return r->e;
}

static char *type_text(const type *t) {
  outbuf o;
  ob_init_grow(&o);
  if (t) type_format(&o, t);
  else ob_puts(&o, "(null)");
  char *s = strdup(ob_cstr(&o));
  ob_free(&o);
  return s;
}

static void test_expressions(void **state) {
  (void)state;
  int failures = 0;
  for (size_t i = 0; i < sizeof expr_cases / sizeof *expr_cases; i++) {
    const expr_case *tc = &expr_cases[i];
    run r;
    expr *e = check_one(&r, tc->src, tc->disable_check);
    char *diags = render(&r.d);
    if (tc->error) {
      if (r.ok || !strstr(diags, tc->error)) {
        print_error("%s: want error \"%s\", got:\n%s", tc->src, tc->error, diags);
        failures++;
      }
    } else {
      char *ty = type_text(e->ty);
      if (!r.ok || r.d.errors) {
        print_error("%s: unexpected errors:\n%s", tc->src, diags);
        failures++;
      } else if (tc->type && strcmp(ty, tc->type) != 0) {
        print_error("%s: type %s, want %s\n", tc->src, ty, tc->type);
        failures++;
      }
      free(ty);
    }
    free(diags);
    run_free(&r);
  }
  assert_int_equal(failures, 0);
}

/* ---- annotations ----------------------------------------------------------------------- */

static void test_comprehension_slots(void **state) {
  (void)state;
  run r;
  /* nested: the outer variable in slot 0, the inner one in slot 1 */
  expr *e = check_one(&r, "[1, 2].all(x, [3].exists(y, y > x))", false);
  assert_true(r.ok);
  assert_int_equal(e->macro, M_ALL);
  assert_int_equal(e->local_slot, 0);
  expr *inner = e->args[1];
  assert_int_equal(inner->macro, M_EXISTS);
  assert_int_equal(inner->local_slot, 1);
  expr *cmp = inner->args[1];
  assert_int_equal(cmp->operand->ref, REF_LOCAL);
  assert_int_equal(cmp->operand->ref_index, 1);
  assert_int_equal(cmp->args[0]->ref, REF_LOCAL);
  assert_int_equal(cmp->args[0]->ref_index, 0);
  run_free(&r);

  /* siblings reuse slot 0 */
  e = check_one(&r, "[1].all(x, x > 0) && [2].exists(y, y > 0)", false);
  assert_true(r.ok);
  assert_int_equal(e->operand->local_slot, 0);
  assert_int_equal(e->args[0]->local_slot, 0);
  run_free(&r);

  /* a variable shadows a declared name */
  e = check_one(&r, "[1].all(x, x > 0)", false);
  assert_int_equal(e->args[1]->operand->ref, REF_LOCAL);
  run_free(&r);
}

static void test_qualified_vars(void **state) {
  (void)state;
  run r;
  /* the longest qualified name wins: a.b.c is the variable "a.b.c" */
  expr *e = check_one(&r, "a.b.c", false);
  assert_true(r.ok);
  assert_int_equal(e->kind, E_SELECT);
  assert_int_equal(e->ref, REF_VAR);
  assert_int_equal(e->ref_index, 5);
  run_free(&r);
  /* a.b.d is a selection on the variable "a.b" */
  e = check_one(&r, "a.b.d", false);
  assert_true(r.ok);
  assert_int_equal(e->ref, REF_NONE);
  assert_int_equal(e->operand->ref, REF_VAR);
  assert_int_equal(e->operand->ref_index, 4);
  run_free(&r);
  e = check_one(&r, "now", false);
  assert_int_equal(e->ref, REF_NOW);
  run_free(&r);
}

static void test_rewrites(void **state) {
  (void)state;
  run r;
  /* a bare type name is a type literal */
  expr *e = check_one(&r, "type(1) == int", false);
  assert_true(r.ok);
  assert_int_equal(e->args[0]->kind, E_LITERAL);
  assert_int_equal(e->args[0]->lit.kind, CV_TYPE);
  assert_int_equal(e->args[0]->lit.i, CV_INT);
  assert_non_null(e->operand->builtin);
  run_free(&r);

  /* a method call on an undeclared name may be a namespaced function */
  if (cel_builtin_find("math.greatest", false, 2)) {
    e = check_one(&r, "math.greatest(1, 2)", false);
    assert_true(r.ok);
    assert_int_equal(e->kind, E_CALL);
    assert_string_equal(e->name, "math.greatest");
    assert_null(e->operand);
    assert_non_null(e->builtin);
    run_free(&r);
  }
  e = check_one(&r, "math.gretest(1, 2)", false);
  assert_false(r.ok);
  run_free(&r);
}

/* The SPEC section 1 example, without `import` (unsupported yet): the
 * embargo list is a let of the file's own. */
static const char spec_example[] =
    "policy \"example-llm-api\" {\n"
    "  version  \"2024-01-10\"\n"
    "  default  allow\n"
    "  combine  deny_overrides\n"
    "  on_error skip\n"
    "}\n"
    "input {\n"
    "  account.id          string\n"
    "  account.tier        string\n"
    "  account.verified    bool\n"
    "  request.time        timestamp   @clock\n"
    "  request.endpoint    string\n"
    "  request.model       string\n"
    "  request.tokens_in   int\n"
    "  request.tokens_out  int\n"
    "  request.purpose     string?\n"
    "  request.tags        list(string)?\n"
    "  client.ip           string\n"
    "  client.country      string\n"
    "  headers             map(string, string)?\n"
    "}\n"
    "let competing = [\"model-training\", \"distillation\", \"competitor-evaluation\"]\n"
    "let rpm_limit = {\"free\": 3, \"tier-1\": 500, \"tier-2\": 5000}\n"
    "let embargoed = [\"CU\", \"IR\", \"KP\", \"SY\"]\n"
    "extern fn ip_reputation(ip: string) -> double from \"libiprep.so\"\n"
    "counter rpm          key account.id  window 1m\n"
    "counter daily_tokens key account.id  window 24h  add request.tokens_in + request.tokens_out\n"
    "counter violations   key account.id  window 30d  on deny, suspend\n"
    "counter key_ips      key account.id  window 1h   distinct client.ip\n"
    "rule \"no-competing-models\" {\n"
    "  cite   \"Terms of Use, section 2(c)(iii)\"\n"
    "  reason \"Output may not be used to develop models that compete with us.\"\n"
    "  deny when has(request.purpose) && request.purpose in competing\n"
    "}\n"
    "rule \"embargoed-region\" {\n"
    "  cite   \"Terms of Use, section 9 (export controls)\"\n"
    "  reason \"The service is not available in \" + client.country + \".\"\n"
    "  deny when client.country in embargoed\n"
    "}\n"
    "rule \"tier-rate-limit\" {\n"
    "  cite   \"Usage tiers and rate limits\"\n"
    "  reason \"Requests per minute above the limit of tier \" + account.tier + \".\"\n"
    "  throttle retry_after 60s when rpm > rpm_limit[account.tier]\n"
    "}\n"
    "rule \"repeat-offender\" {\n"
    "  cite   \"Terms of Use, section 7 (suspension)\"\n"
    "  reason \"Account suspended after repeated violations.\"\n"
    "  suspend account.id for 30d when violations >= 3\n"
    "}\n"
    "rule \"bad-reputation\" {\n"
    "  deny when ip_reputation(client.ip) < 0.2\n"
    "}\n"
    "rule \"eval-harness\" {\n"
    "  reason \"Traffic pattern resembles automated model evaluation.\"\n"
    "  flag when has(request.tags) && request.tags.exists(t, t in [\"bench\", \"eval\"])\n"
    "  then log(\"trust-and-safety\")\n"
    "}\n"
    "test \"distillation is denied\" {\n"
    "  given {\"account\": {\"id\": \"a1\", \"tier\": \"free\", \"verified\": true},\n"
    "         \"request\": {\"time\": \"2024-05-01T10:00:00Z\", \"endpoint\": \"/v1/chat\",\n"
    "                     \"model\": \"m-large\", \"tokens_in\": 900, \"tokens_out\": 4000,\n"
    "                     \"purpose\": \"distillation\"},\n"
    "         \"client\": {\"ip\": \"203.0.113.9\", \"country\": \"US\"}}\n"
    "  expect deny \"no-competing-models\"\n"
    "}\n";

static int rule_index(const policy_file *pf, const char *id) {
  for (int i = 0; i < pf->nrules; i++)
    if (strcmp(pf->rules[i].id, id) == 0) return i;
  return -1;
}

static void test_spec_example(void **state) {
  (void)state;
  run r;
  run_policy(&r, "example.clause", spec_example);
  char *diags = render(&r.d);
  if (!r.ok || r.d.errors || r.d.warnings) fail_msg("the SPEC example does not check cleanly:\n%s", diags);
  free(diags);
  policy_file *pf = r.pf;
  assert_int_equal(pf->default_effect, EFF_ALLOW);
  assert_int_equal(pf->combine, COMBINE_DENY_OVERRIDES);
  assert_false(pf->on_error_deny);
  assert_false(pf->on_store_error_allow);
  assert_string_equal(pf->version, "2024-01-10");

  /* has(request.purpose) && request.purpose in competing */
  const expr *w = pf->rules[rule_index(pf, "no-competing-models")].when;
  assert_int_equal(w->operand->macro, M_HAS);
  assert_int_equal(w->operand->args[0]->ref, REF_FIELD);
  const expr *in = w->args[0];
  assert_int_equal(in->operand->ref, REF_FIELD);
  assert_string_equal(pf->fields[in->operand->ref_index].path, "request.purpose");
  assert_int_equal(in->args[0]->ref, REF_LET);
  assert_int_equal(in->ty->kind, T_BOOL);

  /* rpm > rpm_limit[account.tier] */
  w = pf->rules[rule_index(pf, "tier-rate-limit")].when;
  assert_int_equal(w->operand->ref, REF_COUNTER);
  assert_int_equal(w->operand->ty->kind, T_INT);
  assert_int_equal(w->args[0]->ty->kind, T_INT);

  /* ip_reputation(client.ip) < 0.2 */
  w = pf->rules[rule_index(pf, "bad-reputation")].when;
  assert_int_equal(w->operand->ref, REF_EXTERN);
  assert_int_equal(w->operand->ty->kind, T_DOUBLE);

  /* request.tags.exists(t, ...) */
  w = pf->rules[rule_index(pf, "eval-harness")].when;
  assert_int_equal(w->args[0]->macro, M_EXISTS);
  assert_int_equal(w->args[0]->local_slot, 0);
  run_free(&r);
}

static void test_settings(void **state) {
  (void)state;
  run r;
  run_policy(&r, "s.clause",
             "policy \"p\" {\n  default deny\n  combine first_match\n  on_error deny\n  on_store_error allow\n}\n");
  assert_true(r.ok);
  assert_int_equal(r.pf->default_effect, EFF_DENY);
  assert_int_equal(r.pf->combine, COMBINE_FIRST_MATCH);
  assert_true(r.pf->on_error_deny);
  assert_true(r.pf->on_store_error_allow);
  assert_null(r.pf->version);
  run_free(&r);
  /* no header: the defaults */
  run_policy(&r, "s.clause", "rule \"r\" { deny when true }\n");
  assert_true(r.ok);
  assert_int_equal(r.pf->default_effect, EFF_ALLOW);
  assert_int_equal(r.pf->combine, COMBINE_DENY_OVERRIDES);
  assert_false(r.pf->on_error_deny);
  assert_false(r.pf->on_store_error_allow);
  run_free(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_golden),
      cmocka_unit_test(test_expressions),
      cmocka_unit_test(test_comprehension_slots),
      cmocka_unit_test(test_qualified_vars),
      cmocka_unit_test(test_rewrites),
      cmocka_unit_test(test_spec_example),
      cmocka_unit_test(test_settings),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
