/*
 * conformance.c - runs the CEL conformance cases (../shared/cel/
 * conformance-plain.jsonl) through `clause expr --batch`, the same
 * compiler and VM that rule files use, and compares every answer.
 *
 * Known failures are listed in tests/conformance.xfail, one case id per
 * line followed by the reason. An unlisted failure fails the test; so does
 * a listed case that passes (remove it: the list only shrinks).
 *
 * Environment: CLAUSE (the binary), CLAUSE_SRCDIR (the source tree), and
 * CLAUSE_CEL_CASES (the cases file, default $CLAUSE_SRCDIR/../shared/cel/
 * conformance-plain.jsonl). Exits 77 (skipped) when the cases are absent,
 * as in `make distcheck`. Ends with `N passed, N failed, N skipped`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../vm/json.h"

typedef struct xfail {
  char *id;
  bool seen;
} xfail;

static const value *get(const value *m, const char *key) {
  if (m->kind != CV_MAP) return NULL;
  for (uint32_t i = 0; i < m->n; i++) {
    const value *k = &m->items[2 * i];
    if (k->kind == CV_STRING && strlen(key) == k->n && memcmp(k->s, key, k->n) == 0)
      return &m->items[2 * i + 1];
  }
  return NULL;
}

static char *path_join(const char *a, const char *b) {
  char *p = malloc(strlen(a) + strlen(b) + 2);
  if (p) sprintf(p, "%s/%s", a, b);
  return p;
}

static xfail *load_xfail(const char *path, int *n) {
  FILE *f = fopen(path, "r");
  xfail *list = NULL;
  int cap = 0;
  *n = 0;
  if (!f) return NULL;
  char line[1024];
  while (fgets(line, sizeof line, f)) {
    char *id = line + strspn(line, " \t");
    if (*id == '#' || *id == '\n' || *id == '\0') continue;
    id[strcspn(id, " \t\n")] = '\0';
    if (*n == cap) {
      cap = cap ? cap * 2 : 64;
      list = realloc(list, (size_t)cap * sizeof *list);
      if (!list) exit(99);
    }
    list[*n].id = strdup(id);
    list[*n].seen = false;
    (*n)++;
  }
  fclose(f);
  return list;
}

static xfail *find_xfail(xfail *list, int n, const char *id) {
  for (int i = 0; i < n; i++)
    if (strcmp(list[i].id, id) == 0) return &list[i];
  return NULL;
}

int main(void) {
  const char *srcdir = getenv("CLAUSE_SRCDIR") ? getenv("CLAUSE_SRCDIR") : ".";
  const char *clause = getenv("CLAUSE") ? getenv("CLAUSE") : "./clause";
  char *cases_path = getenv("CLAUSE_CEL_CASES") ? strdup(getenv("CLAUSE_CEL_CASES"))
                                                  : path_join(srcdir, "../shared/cel/conformance-plain.jsonl");
  char *xfail_path = path_join(srcdir, "tests/conformance.xfail");
  FILE *cases = fopen(cases_path, "r");
  if (!cases) {
    printf("conformance: no cases at %s: skipped\n", cases_path);
    free(cases_path);
    free(xfail_path);
    return 77;
  }
  int nx;
  xfail *xf = load_xfail(xfail_path, &nx);

  /* Answers come back in input order, one line per case. */
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "'%s' expr --batch < '%s'", clause, cases_path);
  FILE *answers = popen(cmd, "r");
  if (!answers) {
    perror("popen");
    return 99;
  }
  arena a;
  arena_init(&a, 1 << 16);
  char *cline = NULL, *aline = NULL;
  size_t ccap = 0, acap = 0;
  ssize_t clen;
  int passed = 0, failed = 0, skipped = 0, xfailed = 0, xpassed = 0, lineno = 0;
  while ((clen = getline(&cline, &ccap, cases)) > 0) {
    lineno++;
    ssize_t alen = getline(&aline, &acap, answers);
    arena_reset(&a);
    value c, ans;
    json_error err;
    if (json_parse(cline, (size_t)clen, &a, &c, &err) != 0) {
      printf("line %d: bad case: %s\n", lineno, err.message);
      failed++;
      continue;
    }
    const value *id = get(&c, "id");
    const value *want = get(&c, "expected_canon");
    const value *want_error = get(&c, "error");
    const char *idtext = id && id->kind == CV_STRING ? id->s : "?";
    xfail *x = find_xfail(xf, nx, idtext);
    if (!want && !want_error) {
      skipped++;
      continue;
    }
    bool ok = false;
    char got[600] = "(no answer)";
    if (alen > 0 && json_parse(aline, (size_t)alen, &a, &ans, &err) == 0) {
      const value *canon = get(&ans, "canon");
      const value *e = get(&ans, "error");
      const value *ce = get(&ans, "compile_error");
      if (canon && want) ok = canon->n == want->n && memcmp(canon->s, want->s, want->n) == 0;
      /* An expected error passes as an evaluation or a compile error. */
      if (want_error && (e || ce)) ok = true;
      const value *shown = canon ? canon : e ? e : ce;
      if (shown && shown->kind == CV_STRING)
        snprintf(got, sizeof got, "%s%.*s", canon ? "" : e ? "error: " : "compile error: ", (int)shown->n, shown->s);
    }
    if (x) x->seen = true;
    if (ok && x) {
      printf("XPASS %s: passes now; remove it from tests/conformance.xfail\n", idtext);
      xpassed++;
    } else if (ok) {
      passed++;
    } else if (x) {
      xfailed++;
    } else {
      const value *expr = get(&c, "expr");
      printf("FAIL %s: %.*s\n  want %s%.*s\n  got  %s\n", idtext, expr ? (int)expr->n : 0,
             expr ? expr->s : "", want ? "" : "an error", want ? (int)want->n : 0,
             want ? want->s : "", got);
      failed++;
    }
  }
  int rc = pclose(answers);
  fclose(cases);
  for (int i = 0; i < nx; i++)
    if (!xf[i].seen) printf("note: tests/conformance.xfail lists %s, which is not a case\n", xf[i].id);
  printf("expected failures (counted as skipped): %d, listed in tests/conformance.xfail\n", xfailed);
  printf("%d passed, %d failed, %d skipped\n", passed, failed + xpassed, skipped + xfailed);
  free(cline);
  free(aline);
  arena_free(&a);
  for (int i = 0; i < nx; i++) free(xf[i].id);
  free(xf);
  free(cases_path);
  free(xfail_path);
  if (rc != 0) printf("clause expr --batch exited with status %d\n", rc);
  return failed || xpassed || rc != 0 ? 1 : 0;
}
