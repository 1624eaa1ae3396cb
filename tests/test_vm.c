/*
 * test_vm.c - decisions (SPEC section 5) through the public API: the
 * effects and their combining, on_error, unless, retry_after, reasons,
 * flags, obligations and errors, and their JSON form (section 5.4).
 *
 * Golden decisions: for every tests/golden/decisions/NAME.clause, each
 * request of NAME.jsonl (one JSON object a line; blank lines and lines
 * starting with "//" are skipped) is bound with clause_vm_set_json into one
 * VM and evaluated, and the decision's JSON must equal the same line of
 * NAME.expected exactly. The expected files were written by hand from the
 * SPEC, not captured from the code. CLAUSE_REGEN=1 rewrites them instead
 * (review the diff!). Files are found under $CLAUSE_SRCDIR (default ".").
 *
 * Table-driven tests then check the C side of a decision: the struct's
 * fields, clause_decision_json's snprintf-like contract, the setters, and
 * how error messages start (SPEC 5.2 fixes only their first words).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../include/clause.h"
#include "test_util.h"
#include "../vm/vm.h"

#define GOLDEN_DIR "tests/golden/decisions"

/* Splits text into lines in place (no '\n'); returns the count. */
static size_t split_lines(char *text, char **lines, size_t max) {
  size_t n = 0;
  for (char *s = text; *s && n < max;) {
    char *nl = strchr(s, '\n');
    if (nl) *nl = '\0';
    lines[n++] = s;
    if (!nl) break;
    s = nl + 1;
  }
  return n;
}

static bool skipped_line(const char *s) {
  while (*s == ' ' || *s == '\t' || *s == '\r') s++;
  return *s == '\0' || (s[0] == '/' && s[1] == '/');
}

/* dir/name.ext into path; the test fails when it does not fit. */
static void golden_path(char *path, size_t cap, const char *dir, const char *name, const char *ext) {
  int n = snprintf(path, cap, "%s/%s.%s", dir, name, ext);
  if (n < 0 || (size_t)n >= cap) fail_msg("path too long: %s/%s.%s", dir, name, ext);
}

static clause_program *compile_golden(const char *path) {
  clause_error err;
  clause_program *p = clause_compile_file(path, NULL, &err);
  if (!p)
    print_error("%s:%d:%d: %s\n", err.file[0] ? err.file : path, err.line, err.column, err.message);
  return p;
}

/* Evaluates every request of one golden set; returns the number of
 * mismatches (or 1 when the files cannot be used). */
static int run_golden(const char *dir, const char *name, bool regen) {
  char path[4096];
  golden_path(path, sizeof path, dir, name, "clause");
  clause_program *p = compile_golden(path);
  if (!p) return 1;
  golden_path(path, sizeof path, dir, name, "jsonl");
  char *requests = read_whole(path, NULL);
  if (!requests) {
    print_error("%s: cannot read\n", path);
    clause_program_free(p);
    return 1;
  }
  char *req[512];
  size_t nreq = split_lines(requests, req, 512);

  /* The decisions, one line each. */
  clause_vm *vm = clause_vm_new(p);
  assert_non_null(vm);
  size_t cap = 1 << 16, used = 0;
  char *got = malloc(cap);
  assert_non_null(got);
  size_t ngot = 0;
  for (size_t i = 0; i < nreq; i++) {
    if (skipped_line(req[i])) continue;
    clause_error err;
    char line[8192];
    if (clause_vm_set_json(vm, req[i], strlen(req[i]), &err) != CLAUSE_OK) {
      snprintf(line, sizeof line, "{\"bind error\":\"%d:%d: %s\"}", err.line, err.column, err.message);
    } else {
      clause_decision d;
      assert_int_equal(clause_vm_eval(vm, &d), CLAUSE_OK);
      int n = clause_decision_json(&d, line, sizeof line);
      assert_true(n > 0 && (size_t)n < sizeof line);
    }
    size_t n = strlen(line);
    if (used + n + 2 > cap) {
      cap = 2 * (used + n + 2);
      got = realloc(got, cap);
      assert_non_null(got);
    }
    memcpy(got + used, line, n);
    used += n;
    got[used++] = '\n';
    got[used] = '\0';
    ngot++;
  }
  clause_vm_free(vm);
  clause_program_free(p);
  free(requests);

  golden_path(path, sizeof path, dir, name, "expected");
  int failures = 0;
  if (regen) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(got, 1, used, f) != used || fclose(f) != 0) {
      print_error("%s: cannot write\n", path);
      failures = 1;
    }
  } else {
    char *expected = read_whole(path, NULL);
    if (!expected) {
      print_error("%s: cannot read (CLAUSE_REGEN=1 writes it)\n", path);
      failures = 1;
    } else {
      char *want[512], *have[512];
      size_t nwant = split_lines(expected, want, 512);
      if (nwant && !want[nwant - 1][0]) nwant--;
      size_t nhave = split_lines(got, have, 512);
      if (nhave && !have[nhave - 1][0]) nhave--;
      for (size_t i = 0; i < nwant || i < nhave; i++) {
        const char *w = i < nwant ? want[i] : "(no line)";
        const char *h = i < nhave ? have[i] : "(no line)";
        if (strcmp(w, h) != 0) {
          print_error("%s:%zu: decision differs\n  expected: %s\n  got:      %s\n", path, i + 1, w, h);
          failures++;
        }
      }
      free(expected);
    }
  }
  free(got);
  return failures;
}

static int compare_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_golden_decisions(void **state) {
  (void)state;
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/%s", srcdir(), GOLDEN_DIR);
  DIR *dp = opendir(dir);
  if (!dp) fail_msg("cannot open %s (set CLAUSE_SRCDIR to the source tree)", dir);
  char *names[256];
  size_t nnames = 0;
  struct dirent *de;
  while ((de = readdir(dp)) && nnames < 256) {
    size_t n = strlen(de->d_name);
    if (n > 7 && strcmp(de->d_name + n - 7, ".clause") == 0) names[nnames++] = strndup(de->d_name, n - 7);
  }
  closedir(dp);
  qsort(names, nnames, sizeof names[0], compare_names);
  bool regen = getenv("CLAUSE_REGEN") && strcmp(getenv("CLAUSE_REGEN"), "1") == 0;
  int failures = 0;
  for (size_t i = 0; i < nnames; i++) {
    failures += run_golden(dir, names[i], regen);
    free(names[i]);
  }
  print_message("%zu golden decision sets%s\n", nnames, regen ? " rewritten" : "");
  assert_true(nnames > 0);
  if (failures) fail_msg("%d golden decisions differ", failures);
}

static clause_program *compile_named(const char *name) {
  char dir[4096], path[4200];
  snprintf(dir, sizeof dir, "%s/%s", srcdir(), GOLDEN_DIR);
  golden_path(path, sizeof path, dir, name, "clause");
  clause_program *p = compile_golden(path);
  if (!p) fail_msg("%s does not compile", path);
  return p;
}

/* The requests of golden set `name` (free them). */
static char *requests_named(const char *name) {
  char dir[4096], path[4200];
  snprintf(dir, sizeof dir, "%s/%s", srcdir(), GOLDEN_DIR);
  golden_path(path, sizeof path, dir, name, "jsonl");
  char *requests = read_whole(path, NULL);
  if (!requests) fail_msg("%s: cannot read", path);
  return requests;
}

/* Whether rule `name` is among the decision's flags; its error message, if any. */
static bool flagged(const clause_decision *d, const char *name) {
  for (size_t i = 0; i < d->n_flags; i++)
    if (strcmp(d->flags[i], name) == 0) return true;
  return false;
}
static const char *error_of(const clause_decision *d, const char *name) {
  for (size_t i = 0; i < d->n_errors; i++)
    if (d->errors[i].rule && strcmp(d->errors[i].rule, name) == 0) return d->errors[i].message;
  return NULL;
}

/* The fused instructions (ANYINK, STARTSANY, HASOR, CJINKIDX, CJHASINK) and `in`
 * through a constant map's list sets against the loops, branches and
 * lookups they replace: in fused.clause every rule NAME has a twin
 * NAME-loop the compiler cannot fuse, and on every request of fused.jsonl
 * both are flagged, or neither, and both fail with the same message. */
static void test_fused_twins(void **state) {
  (void)state;
  clause_program *p = compile_named("fused");
  char *requests = requests_named("fused");
  char *req[64];
  size_t nreq = split_lines(requests, req, 64);
  clause_vm *vm = clause_vm_new(p);
  assert_non_null(vm);
  static const char *const fused[] = {"in-list", "in-map", "in-ints", "prefix", "prefix-mixed",
                                      "prefix-none", "field-default", "constant-default", "map-list",
                                      "in-then-index", "has-and", "has-in"};
  size_t compared = 0;
  for (size_t i = 0; i < nreq; i++) {
    if (skipped_line(req[i])) continue;
    clause_error err;
    assert_int_equal(clause_vm_set_json(vm, req[i], strlen(req[i]), &err), CLAUSE_OK);
    clause_decision d;
    assert_int_equal(clause_vm_eval(vm, &d), CLAUSE_OK);
    for (size_t r = 0; r < sizeof fused / sizeof fused[0]; r++) {
      const char *name = fused[r];
      char twin[256];
      snprintf(twin, sizeof twin, "%s-loop", name);
      if (flagged(&d, name) != flagged(&d, twin))
        fail_msg("fused.jsonl line %zu: %s %s flagged, %s %s", i + 1, name, flagged(&d, name) ? "is" : "is not", twin,
                 flagged(&d, twin) ? "is" : "is not");
      const char *e1 = error_of(&d, name), *e2 = error_of(&d, twin);
      if ((e1 == NULL) != (e2 == NULL) || (e1 && strcmp(e1, e2) != 0))
        fail_msg("fused.jsonl line %zu: %s fails with \"%s\", %s with \"%s\"", i + 1, name, e1 ? e1 : "(nothing)", twin,
                 e2 ? e2 : "(nothing)");
      compared++;
    }
  }
  assert_int_equal(compared, 12 * 11); /* every pair on every request */
  clause_vm_free(vm);
  clause_program_free(p);
  free(requests);
}

/* The decisions of every golden set, one JSON line per request, from a
 * program of its own (a fresh store); with `trace`, explaining as
 * --explain does, which runs p->code instead of p->fast_code. */
static char *golden_decisions(const char *name, bool trace) {
  clause_program *p = compile_named(name);
  char *requests = requests_named(name);
  char *req[512];
  size_t nreq = split_lines(requests, req, 512);
  clause_vm *vm = clause_vm_new(p);
  assert_non_null(vm);
  vm_trace tr = {.cap = p->ncode, .in_force = PROG_NONE};
  tr.events = calloc(tr.cap + 1, sizeof *tr.events);
  assert_non_null(tr.events);
  if (trace) vm->trace = &tr;
  outbuf out;
  ob_init_grow(&out);
  for (size_t i = 0; i < nreq; i++) {
    if (skipped_line(req[i])) continue;
    clause_error err;
    char line[8192];
    tr.n = 0;
    tr.in_force = PROG_NONE;
    if (clause_vm_set_json(vm, req[i], strlen(req[i]), &err) != CLAUSE_OK) {
      ob_puts(&out, "bind error\n");
      continue;
    }
    clause_decision d;
    assert_int_equal(clause_vm_eval(vm, &d), CLAUSE_OK);
    int n = clause_decision_json(&d, line, sizeof line);
    assert_true(n > 0 && (size_t)n < sizeof line);
    ob_put(&out, line, (size_t)n);
    ob_putc(&out, '\n');
  }
  free(tr.events);
  clause_vm_free(vm);
  clause_program_free(p);
  free(requests);
  return ob_cstr(&out);
}

/* The code as run to decide (clb.c: build_fast_code: threaded jumps,
 * fused pairs) decides as the code as loaded: every golden set, run once
 * as usual and once explained. */
static void test_threaded_jumps(void **state) {
  (void)state;
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/%s", srcdir(), GOLDEN_DIR);
  DIR *dp = opendir(dir);
  assert_non_null(dp);
  struct dirent *de;
  int sets = 0;
  while ((de = readdir(dp))) {
    size_t n = strlen(de->d_name);
    if (n <= 7 || strcmp(de->d_name + n - 7, ".clause") != 0) continue;
    char *name = strndup(de->d_name, n - 7);
    char *plain = golden_decisions(name, false), *traced = golden_decisions(name, true);
    if (strcmp(plain, traced) != 0) fail_msg("%s: decisions differ when explained:\n%s\nagainst\n%s", name, plain, traced);
    free(plain);
    free(traced);
    free(name);
    sets++;
  }
  closedir(dp);
  assert_true(sets > 0);
}

/* ---- the decision struct ------------------------------------------------------------ */

/* The severity policy, bound field by field with the typed setters. */
typedef struct severity_case {
  bool a, f, t, d, s;
  clause_effect effect;
  const char *rule, *reason, *cite;
  int64_t retry_after_ms;
  size_t n_flags;
} severity_case;

static const severity_case severity_cases[] = {
    {false, false, false, false, false, CLAUSE_ALLOW, NULL, NULL, NULL, -1, 0},
    {true, false, false, false, false, CLAUSE_ALLOW, "allow-a", "allowed", NULL, -1, 0},
    {false, true, false, false, false, CLAUSE_ALLOW, NULL, NULL, NULL, -1, 1},
    {true, false, true, false, false, CLAUSE_THROTTLE, "throttle-t", "slow down", "T 1", 1500, 0},
    {false, true, true, true, false, CLAUSE_DENY, "deny-d", "denied", "D 1", -1, 1},
    {true, true, true, true, true, CLAUSE_SUSPEND, "suspend-s", "suspended", NULL, -1, 1},
};

static void assert_same_string(const char *want, const char *got) {
  if (!want) assert_null(got);
  else {
    assert_non_null(got);
    assert_string_equal(want, got);
  }
}

static void test_decision_struct(void **state) {
  (void)state;
  clause_program *p = compile_named("severity");
  const char *paths[] = {"a", "f", "t", "d", "s"};
  int idx[5];
  for (int k = 0; k < 5; k++) {
    idx[k] = clause_field_index(p, paths[k]);
    assert_true(idx[k] >= 0);
  }
  int id = clause_field_index(p, "id");
  assert_true(id >= 0);
  assert_int_equal(clause_field_index(p, "nope"), -1);
  assert_int_equal(clause_field_index(p, ""), -1);
  clause_vm *vm = clause_vm_new(p);
  assert_non_null(vm);
  for (size_t i = 0; i < sizeof severity_cases / sizeof severity_cases[0]; i++) {
    const severity_case *c = &severity_cases[i];
    clause_vm_reset(vm);
    char key[16];
    int n = snprintf(key, sizeof key, "key-%zu", i);
    assert_int_equal(clause_vm_set_string(vm, id, key, (size_t)n), CLAUSE_OK);
    bool v[5] = {c->a, c->f, c->t, c->d, c->s};
    for (int k = 0; k < 5; k++) assert_int_equal(clause_vm_set_bool(vm, idx[k], v[k]), CLAUSE_OK);
    clause_decision d;
    assert_int_equal(clause_vm_eval(vm, &d), CLAUSE_OK);
    assert_int_equal(d.effect, c->effect);
    assert_same_string(c->rule, d.rule);
    assert_same_string(c->reason, d.reason);
    assert_same_string(c->cite, d.cite);
    assert_int_equal(d.retry_after_ms, c->retry_after_ms);
    assert_int_equal(d.n_flags, c->n_flags);
    if (c->n_flags) assert_string_equal(d.flags[0], "flag-f");
    assert_int_equal(d.n_obligations, 0);
    assert_int_equal(d.n_errors, 0);
  }
  clause_vm_free(vm);
  clause_program_free(p);
}

/* clause_decision_json returns the length as snprintf does, writes at most
 * cap bytes and always NUL-terminates when cap > 0. */
static void test_decision_json_capacity(void **state) {
  (void)state;
  clause_program *p = compile_named("obligations");
  clause_vm *vm = clause_vm_new(p);
  assert_non_null(vm);
  const char *req = "{\"user\": \"ana\", \"at\": \"2024-05-01T10:00:00Z\", \"tokens\": 2000}";
  clause_error err;
  assert_int_equal(clause_vm_set_json(vm, req, strlen(req), &err), CLAUSE_OK);
  clause_decision d;
  assert_int_equal(clause_vm_eval(vm, &d), CLAUSE_OK);
  assert_int_equal(d.n_obligations, 3);
  assert_string_equal(d.obligations[1].rule, "big");
  assert_string_equal(d.obligations[1].action, "header");
  assert_string_equal(d.obligations[1].args_json, "[\"x-tokens\",2000]");

  char full[4096];
  int need = clause_decision_json(&d, full, sizeof full);
  assert_true(need > 0 && (size_t)need < sizeof full);
  assert_int_equal(strlen(full), (size_t)need);
  assert_int_equal(clause_decision_json(&d, NULL, 0), need);
  const size_t caps[] = {1, 2, 10, (size_t)need, (size_t)need + 1};
  for (size_t k = 0; k < sizeof caps / sizeof caps[0]; k++) {
    char buf[4096];
    memset(buf, 'X', sizeof buf);
    assert_int_equal(clause_decision_json(&d, buf, caps[k]), need);
    size_t kept = caps[k] - 1 < (size_t)need ? caps[k] - 1 : (size_t)need;
    assert_int_equal(strlen(buf), kept);
    assert_memory_equal(buf, full, kept);
    assert_int_equal(buf[caps[k]], 'X'); /* nothing written past cap */
  }
  assert_true(clause_decision_json(NULL, full, sizeof full) < 0);
  clause_vm_free(vm);
  clause_program_free(p);
}

/* Setters: a value of the wrong type is CLAUSE_ERR_TYPE and leaves the
 * field as it was; a bad index is CLAUSE_ERR_ARG; reset clears. */
typedef struct setter_case {
  const char *what;
  int (*set)(clause_vm *vm, int field);
  int want; /* status */
} setter_case;

static int set_int_7(clause_vm *vm, int f) { return clause_vm_set_int(vm, f, 7); }
static int set_bool_true(clause_vm *vm, int f) { return clause_vm_set_bool(vm, f, true); }
static int set_string_x(clause_vm *vm, int f) { return clause_vm_set_string(vm, f, "x", 1); }
static int set_double(clause_vm *vm, int f) { return clause_vm_set_double(vm, f, 1.5); }
static int set_uint(clause_vm *vm, int f) { return clause_vm_set_uint(vm, f, 7); }
static int set_duration(clause_vm *vm, int f) { return clause_vm_set_duration(vm, f, 1000); }
static int set_timestamp(clause_vm *vm, int f) { return clause_vm_set_timestamp(vm, f, 0); }
static int set_bytes(clause_vm *vm, int f) { return clause_vm_set_bytes(vm, f, "x", 1); }
static int set_json_int(clause_vm *vm, int f) { return clause_vm_set_field_json(vm, f, "12", 2); }
static int set_json_string(clause_vm *vm, int f) { return clause_vm_set_field_json(vm, f, "\"12\"", 4); }

/* On the field `n` (int) of first_match.clause. */
static const setter_case setter_cases[] = {
    {"int", set_int_7, CLAUSE_OK},
    {"bool", set_bool_true, CLAUSE_ERR_TYPE},
    {"string", set_string_x, CLAUSE_ERR_TYPE},
    {"double", set_double, CLAUSE_ERR_TYPE},
    {"uint", set_uint, CLAUSE_ERR_TYPE},
    {"duration", set_duration, CLAUSE_ERR_TYPE},
    {"timestamp", set_timestamp, CLAUSE_ERR_TYPE},
    {"bytes", set_bytes, CLAUSE_ERR_TYPE},
    {"JSON number", set_json_int, CLAUSE_OK},
    {"JSON string", set_json_string, CLAUSE_ERR_TYPE},
};

static void test_setters(void **state) {
  (void)state;
  clause_program *p = compile_named("first_match");
  int n = clause_field_index(p, "n");
  assert_true(n >= 0);
  clause_vm *vm = clause_vm_new(p);
  assert_non_null(vm);
  clause_decision d;
  for (size_t i = 0; i < sizeof setter_cases / sizeof setter_cases[0]; i++) {
    const setter_case *c = &setter_cases[i];
    /* Start from n = 1: allow-small decides. */
    clause_vm_reset(vm);
    assert_int_equal(clause_vm_set_int(vm, n, 1), CLAUSE_OK);
    int rc = c->set(vm, n);
    if (rc != c->want) fail_msg("setting %s: status %d, expected %d", c->what, rc, c->want);
    assert_int_equal(clause_vm_eval(vm, &d), CLAUSE_OK);
    if (rc == CLAUSE_OK) continue;
    /* The field was left as it was. */
    assert_non_null(d.rule);
    assert_string_equal(d.rule, "allow-small");
  }
  /* Indices out of range. */
  assert_int_equal(clause_vm_set_int(vm, -1, 1), CLAUSE_ERR_ARG);
  assert_int_equal(clause_vm_set_int(vm, 1000, 1), CLAUSE_ERR_ARG);
  assert_int_equal(clause_vm_set_string(vm, 1000, "x", 1), CLAUSE_ERR_ARG);

  /* reset: n absent, a required field: listed, no rule matches (flag-late
   * aside), every rule reading n fails. */
  clause_vm_reset(vm);
  assert_int_equal(clause_vm_eval(vm, &d), CLAUSE_OK);
  assert_null(d.rule);
  assert_true(d.n_errors >= 1);
  assert_null(d.errors[0].rule);
  assert_string_equal(d.errors[0].message, "no such key: n");

  /* Malformed JSON: CLAUSE_ERR_JSON with a position. */
  clause_error err;
  memset(&err, 0, sizeof err);
  assert_int_equal(clause_vm_set_json(vm, "{\"n\": 1,\n \"m\": }", 16, &err), CLAUSE_ERR_JSON);
  assert_int_equal(err.line, 2);
  assert_true(err.column > 0);
  assert_true(err.message[0] != '\0');
  clause_vm_free(vm);
  clause_program_free(p);
}

/* How many of a decision's errors belong to no rule (the required fields
 * found absent). */
static size_t field_errors(const clause_decision *d) {
  size_t n = 0;
  for (size_t i = 0; i < d->n_errors; i++) n += d->errors[i].rule == NULL;
  return n;
}

/* Required fields are listed on every evaluation that finds them absent,
 * whatever changed the fields since: the VM skips the look only while
 * typed setters alone (which write no errors) have changed fields since
 * an evaluation that found none. */
static void test_required_fields_listed(void **state) {
  (void)state;
  clause_program *p = compile_named("required_fields");
  clause_vm *vm = clause_vm_new(p);
  assert_non_null(vm);
  int n = clause_field_index(p, "n"), user = clause_field_index(p, "user");
  clause_error err;
  clause_decision d;
  assert_int_equal(clause_vm_set_json(vm, "{\"user\": \"a\"}", 13, &err), CLAUSE_OK);
  for (int round = 0; round < 2; round++) {
    assert_int_equal(clause_vm_eval(vm, &d), CLAUSE_OK);
    assert_int_equal(field_errors(&d), 1);
    assert_string_equal(d.errors[0].message, "no such key: n");
  }
  assert_int_equal(clause_vm_set_int(vm, n, 1), CLAUSE_OK);
  assert_int_equal(clause_vm_eval(vm, &d), CLAUSE_OK);
  assert_int_equal(field_errors(&d), 0);
  assert_int_equal(clause_vm_set_string(vm, user, "b", 1), CLAUSE_OK);
  assert_int_equal(clause_vm_eval(vm, &d), CLAUSE_OK);
  assert_int_equal(field_errors(&d), 0);
  assert_int_equal(clause_vm_set_field_json(vm, n, "null", 4), CLAUSE_OK);
  assert_int_equal(clause_vm_eval(vm, &d), CLAUSE_OK);
  assert_int_equal(field_errors(&d), 1);
  assert_int_equal(clause_vm_set_int(vm, n, 2), CLAUSE_OK);
  assert_int_equal(clause_vm_eval(vm, &d), CLAUSE_OK);
  assert_int_equal(field_errors(&d), 0);
  clause_vm_reset(vm);
  assert_int_equal(clause_vm_eval(vm, &d), CLAUSE_OK);
  assert_int_equal(field_errors(&d), 2);
  assert_int_equal(clause_vm_set_json(vm, "{\"n\": 3}", 8, &err), CLAUSE_OK);
  assert_int_equal(clause_vm_eval(vm, &d), CLAUSE_OK);
  assert_int_equal(field_errors(&d), 1);
  assert_string_equal(d.errors[0].message, "no such key: user");
  clause_vm_free(vm);
  clause_program_free(p);
}

/* clause_vm_set_string copies into the field's own buffer while the new
 * text fits: a VM fed by setters alone, request after request, does not
 * grow; a longer text gets a new buffer; a text bound from JSON is never
 * written over, nor, after clause_vm_set_json, what the inputs' memory
 * holds by then. */
static void test_setter_text_reuse(void **state) {
  (void)state;
  clause_program *p = compile_named("required_fields");
  clause_vm *vm = clause_vm_new(p);
  assert_non_null(vm);
  int user = clause_field_index(p, "user"), extra = clause_field_index(p, "extra");
  clause_error err;
  clause_decision d;
  const char *json = "{\"user\": \"a\", \"n\": 1, \"extra\": \"e\"}";
  assert_int_equal(clause_vm_set_json(vm, json, strlen(json), &err), CLAUSE_OK);
  static const char *names[] = {"root", "roo", "rooted-user", "r", "root"};
  assert_int_equal(clause_vm_set_string(vm, user, "fifteen-chars-x", 15), CLAUSE_OK);
  size_t used = vm->input.used;
  const void *chunk = vm->input.cur;
  for (int i = 0; i < 10000; i++) {
    const char *name = names[i % 5];
    assert_int_equal(clause_vm_set_string(vm, user, name, strlen(name)), CLAUSE_OK);
    assert_int_equal(clause_vm_eval(vm, &d), CLAUSE_OK);
    if ((d.n_flags == 1) != (strcmp(name, "root") == 0)) fail_msg("%s: %zu flags", name, d.n_flags);
  }
  assert_int_equal(vm->input.used, used); /* no growth */
  assert_ptr_equal(vm->input.cur, chunk);
  /* Longer than the buffer: a new one. */
  const char *long_name = "a-name-longer-than-sixteen-bytes";
  assert_int_equal(clause_vm_set_string(vm, user, long_name, strlen(long_name)), CLAUSE_OK);
  assert_true(vm->input.used > used);
  assert_int_equal(clause_vm_set_string(vm, user, "root", 4), CLAUSE_OK);
  assert_int_equal(clause_vm_eval(vm, &d), CLAUSE_OK);
  assert_int_equal(d.n_flags, 1);
  /* Bound from JSON since: its text is not written over. */
  assert_int_equal(clause_vm_set_field_json(vm, user, "\"ab\"", 4), CLAUSE_OK);
  const char *bound = vm->regs[user].s;
  assert_int_equal(clause_vm_set_string(vm, user, "x", 1), CLAUSE_OK);
  assert_memory_equal(bound, "ab", 2);
  /* After set_json (which resets the inputs), a long text bound to another
   * field lies where the buffer was: the setter takes a new one. */
  char big[300] = "{\"user\": \"a\", \"n\": 1, \"extra\": \"";
  size_t at = strlen(big);
  memset(big + at, 'e', 200);
  strcpy(big + at + 200, "\"}");
  assert_int_equal(clause_vm_set_json(vm, big, strlen(big), &err), CLAUSE_OK);
  assert_int_equal(clause_vm_set_string(vm, user, "root", 4), CLAUSE_OK);
  assert_int_equal(vm->regs[extra].n, 200);
  for (int i = 0; i < 200; i++)
    if (vm->regs[extra].s[i] != 'e') fail_msg("extra written over at %d", i);
  assert_int_equal(clause_vm_eval(vm, &d), CLAUSE_OK);
  assert_int_equal(d.n_flags, 1);
  clause_vm_free(vm);
  clause_program_free(p);
}

/* ---- error messages ------------------------------------------------------------------ */

/* SPEC 5.2 fixes how error messages start (the rest is the
 * implementation's): each rule below fails with one of them. */
static const char error_policy[] =
    "policy \"errors\" {\n  on_error skip\n}\n"
    "input {\n  n int\n  items list(int)\n  s string\n  opt int?\n}\n"
    "rule \"overflow\" { deny when n + 9223372036854775807 > 0 }\n"
    "rule \"index\" { deny when items[5] == 1 }\n"
    "rule \"overload\" { deny when dyn(s) + 1 > 0 }\n"
    "rule \"divide\" { deny when 10 / (n - 1) > 0 }\n"
    "rule \"modulo\" { deny when 10 % (n - 1) > 0 }\n"
    "rule \"absent\" { deny when opt > 0 }\n"
    "rule \"negate\" { deny when -(n - 9223372036854775807 - 2) > 0 }\n";

static const struct {
  const char *rule, *prefix;
} error_cases[] = {
    {"overflow", "integer overflow"},
    {"index", "index out of range"},
    {"overload", "no matching overload"},
    {"divide", "division by zero"},
    {"modulo", "division by zero"},
    {"absent", "no such key: opt"},
    {"negate", "integer overflow"},
};

static void test_error_messages(void **state) {
  (void)state;
  char path[] = "/tmp/clause-test-vm-XXXXXX.clause";
  int fd = mkstemps(path, 7);
  assert_true(fd >= 0);
  FILE *f = fdopen(fd, "w");
  assert_non_null(f);
  fputs(error_policy, f);
  fclose(f);
  clause_program *p = compile_golden(path);
  unlink(path);
  assert_non_null(p);
  clause_vm *vm = clause_vm_new(p);
  assert_non_null(vm);
  const char *req = "{\"n\": 1, \"items\": [1], \"s\": \"x\"}";
  clause_error err;
  assert_int_equal(clause_vm_set_json(vm, req, strlen(req), &err), CLAUSE_OK);
  clause_decision d;
  assert_int_equal(clause_vm_eval(vm, &d), CLAUSE_OK);
  assert_int_equal(d.effect, CLAUSE_ALLOW);
  assert_int_equal(d.n_errors, sizeof error_cases / sizeof error_cases[0]);
  for (size_t i = 0; i < d.n_errors; i++) {
    assert_non_null(d.errors[i].rule);
    assert_string_equal(d.errors[i].rule, error_cases[i].rule); /* file order */
    if (strncmp(d.errors[i].message, error_cases[i].prefix, strlen(error_cases[i].prefix)) != 0)
      fail_msg("rule %s: message \"%s\" does not start with \"%s\"", error_cases[i].rule,
               d.errors[i].message, error_cases[i].prefix);
  }
  clause_vm_free(vm);
  clause_program_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_golden_decisions),
      cmocka_unit_test(test_fused_twins),
      cmocka_unit_test(test_threaded_jumps),
      cmocka_unit_test(test_required_fields_listed),
      cmocka_unit_test(test_decision_struct),
      cmocka_unit_test(test_decision_json_capacity),
      cmocka_unit_test(test_setters),
      cmocka_unit_test(test_setter_text_reuse),
      cmocka_unit_test(test_error_messages),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
