/*
 * test_alloc.c - evaluation allocates no heap memory in steady state (SPEC
 * section 7): once a VM's scratch space has grown to the policy's needs,
 * clause_vm_eval and clause_decision_json call no allocator at all.
 *
 * The test program replaces glibc's malloc, calloc, realloc, free and the
 * aligned allocators with wrappers that forward to glibc's own
 * (__libc_malloc, ...) and count calls while counting is switched on.
 * AddressSanitizer replaces the allocator itself, so under ASan the wrappers
 * are left out and the counting tests are skipped; the plain build runs
 * them.
 *
 * The seed policy (examples/seed/terms.clause under $CLAUSE_SRCDIR) is
 * evaluated on requests from examples/seed/traffic.jsonl chosen to reach
 * every path that uses scratch space: reasons built by concatenation,
 * obligations, flags, regular expressions, comprehensions, errors; and
 * tests/extern/alloc.clause, whose rules call externs (the test library
 * that `make check` builds, and a host function).
 *
 * The seed keeps counters and a suspension in its (memory) state store,
 * which allocates as new keys and buckets arrive. Every request is moved
 * to one fixed time, so that after warm-up the store too sees only keys
 * and buckets it holds: the counts also cover the store's steady state.
 * (Repeated denials then suspend their accounts, and rate limits and
 * quotas are crossed, which is fine: the warm-up has made those decisions
 * before counting starts.)
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../include/clause.h"
#include "test_util.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

/* ---- counting allocator ----------------------------------------------------------- */

static volatile bool counting;
static volatile size_t n_alloc, n_free;

#ifndef UNDER_ASAN
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t k, size_t n);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t align, size_t n);
extern void __libc_free(void *p);

void *malloc(size_t n) {
  if (counting) n_alloc++;
  return __libc_malloc(n);
}

void *calloc(size_t k, size_t n) {
  if (counting) n_alloc++;
  return __libc_calloc(k, n);
}

void *realloc(void *p, size_t n) {
  if (counting) n_alloc++;
  return __libc_realloc(p, n);
}

void free(void *p) {
  if (counting && p) n_free++;
  __libc_free(p);
}

void *memalign(size_t align, size_t n) {
  if (counting) n_alloc++;
  return __libc_memalign(align, n);
}

void *aligned_alloc(size_t align, size_t n) {
  if (counting) n_alloc++;
  return __libc_memalign(align, n);
}

int posix_memalign(void **out, size_t align, size_t n) {
  if (align < sizeof(void *) || (align & (align - 1))) return EINVAL;
  if (counting) n_alloc++;
  void *p = __libc_memalign(align, n);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}
#endif

static void count_start(void) {
  n_alloc = n_free = 0;
  counting = true;
}

static void count_stop(void) { counting = false; }

/* ---- fixture ----------------------------------------------------------------------- */

#define NREQ 10

static struct {
  clause_program *prog;
  clause_vm *vm[NREQ];  /* one VM per request, bound once */
  char *req[NREQ];
  size_t req_len[NREQ];
} fx;

/* Wants for the requests, in order: each picks the first traffic line
 * that contains all of its words and that no earlier want took. Together
 * they reach reasons, obligations, flags, regexes, comprehensions, an
 * optional field absent and a throttle. */
static const char *const wants[NREQ][3] = {
    {"\"purpose\": \"distillation\"", NULL, NULL},
    {"\"user_agent\": \"Mozilla/5.0", NULL, NULL},
    {"\"categories\"", NULL, NULL},
    {"\"tags\"", NULL, NULL},
    {"\"tier\": \"tier-1\"", NULL, NULL},
    {"\"key_owner\"", NULL, NULL},
    {"\"max_tokens\"", NULL, NULL},
    {"\"/v1/batches\"", NULL, NULL},
    {"\"x-origin-country\"", NULL, NULL},
    {"\"tier\": \"free\"", NULL, NULL},
};

/* A copy of the request line with request.time set to one fixed time. */
static char *at_fixed_time(const char *line) {
  static const char key[] = "\"time\": \"", fixed[] = "2024-09-02T10:00:00Z";
  const char *at = strstr(line, key);
  const char *end = at ? strchr(at + strlen(key), '"') : NULL;
  if (!end) return strdup(line);
  size_t head = (size_t)(at - line) + strlen(key);
  char *out = malloc(strlen(line) + sizeof fixed);
  if (out) sprintf(out, "%.*s%s%s", (int)head, line, fixed, end);
  return out;
}

static int setup(void **state) {
  (void)state;
  char path[4096];
  clause_error err;
  snprintf(path, sizeof path, "%s/examples/seed/terms.clause", srcdir());
  fx.prog = clause_compile_file(path, NULL, &err);
  if (!fx.prog) {
    fprintf(stderr, "%s:%d:%d: %s (set CLAUSE_SRCDIR to the source tree)\n", err.file, err.line,
            err.column, err.message);
    return -1;
  }
  snprintf(path, sizeof path, "%s/examples/seed/traffic.jsonl", srcdir());
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "cannot read %s\n", path);
    return -1;
  }
  char line[16384];
  bool taken_line[4096] = {false};
  char *lines[4096];
  size_t nlines = 0;
  while (nlines < 4096 && fgets(line, sizeof line, f)) {
    if (line[0] != '{') continue;
    line[strcspn(line, "\n")] = '\0';
    lines[nlines++] = strdup(line);
  }
  fclose(f);
  for (int k = 0; k < NREQ; k++) {
    size_t pick = nlines;
    for (size_t i = 0; i < nlines && pick == nlines; i++) {
      if (taken_line[i]) continue;
      bool all = true;
      for (int w = 0; w < 3 && wants[k][w]; w++) all = all && strstr(lines[i], wants[k][w]);
      if (all) pick = i;
    }
    if (pick == nlines) /* the traffic changed: take any line not yet taken */
      for (size_t i = 0; i < nlines && pick == nlines; i++)
        if (!taken_line[i]) pick = i;
    if (pick == nlines) return -1;
    taken_line[pick] = true;
    fx.req[k] = at_fixed_time(lines[pick]);
    if (!fx.req[k]) return -1;
    fx.req_len[k] = strlen(fx.req[k]);
  }
  for (size_t i = 0; i < nlines; i++) free(lines[i]);
  for (int k = 0; k < NREQ; k++) {
    fx.vm[k] = clause_vm_new(fx.prog);
    if (!fx.vm[k] || clause_vm_set_json(fx.vm[k], fx.req[k], fx.req_len[k], &err) != CLAUSE_OK) {
      fprintf(stderr, "request %d does not bind: %s\n", k, err.message);
      return -1;
    }
  }
  return 0;
}

static int teardown(void **state) {
  (void)state;
  for (int k = 0; k < NREQ; k++) {
    clause_vm_free(fx.vm[k]);
    free(fx.req[k]);
  }
  clause_program_free(fx.prog);
  return 0;
}

/* Evaluates request k on its VM and renders the decision; returns the JSON
 * length (> 0) so that the work cannot be optimised away. */
static int eval_one(int k, char *buf, size_t cap) {
  clause_decision d;
  if (clause_vm_eval(fx.vm[k], &d) != CLAUSE_OK) return -1;
  return clause_decision_json(&d, buf, cap);
}

#ifdef UNDER_ASAN
#define SKIP_UNDER_ASAN()                                                              \
  do {                                                                                 \
    print_message("skipped: AddressSanitizer replaces the allocator that this test counts\n"); \
    skip();                                                                            \
  } while (0)
#else
#define SKIP_UNDER_ASAN() ((void)0)
#endif

/* The wrappers see the allocations they should: a sanity check, so that a
 * zero below means something. */
static void test_counter_works(void **state) {
  (void)state;
  SKIP_UNDER_ASAN();
  count_start();
  void *p = malloc(64);
  p = realloc(p, 4096);
  free(p);
  char *s = strdup("counted"); /* libc's own calls go through the wrappers too */
  free(s);
  count_stop();
  assert_true(n_alloc >= 3);
  assert_true(n_free >= 2);
}

static void test_eval_allocates_nothing(void **state) {
  (void)state;
  SKIP_UNDER_ASAN();
  char buf[16384];
  long total = 0;
  /* Warm-up: scratch arenas grow to what each request needs. At a fixed
   * time the counters only grow, so the warm-up runs until every rate
   * limit the counted rounds could cross (up to tier-2's 500 a minute) has
   * been crossed and every such decision has been made once. */
  for (int round = 0; round < 1100; round++)
    for (int k = 0; k < NREQ; k++) {
      int n = eval_one(k, buf, sizeof buf);
      assert_true(n > 0 && (size_t)n < sizeof buf);
    }
  count_start();
  for (int round = 0; round < 500; round++)
    for (int k = 0; k < NREQ; k++) total += eval_one(k, buf, sizeof buf);
  count_stop();
  print_message("5000 evaluations of %d requests: %zu allocations, %zu frees (%ld JSON bytes)\n", NREQ,
                n_alloc, n_free, total);
  assert_int_equal(n_alloc, 0);
  assert_int_equal(n_free, 0);
}

/* The same requests evaluated one after another on a single VM: the
 * gateway's way, rebinding each request. Binding may allocate while the
 * input arena grows; once it has, neither binding nor evaluation does. */
static void test_rebinding_allocates_nothing(void **state) {
  (void)state;
  SKIP_UNDER_ASAN();
  clause_vm *vm = clause_vm_new(fx.prog);
  assert_non_null(vm);
  char buf[16384];
  clause_error err;
  clause_decision d;
  for (int round = 0; round < 40; round++)
    for (int k = 0; k < NREQ; k++) {
      assert_int_equal(clause_vm_set_json(vm, fx.req[k], fx.req_len[k], &err), CLAUSE_OK);
      assert_int_equal(clause_vm_eval(vm, &d), CLAUSE_OK);
      assert_true(clause_decision_json(&d, buf, sizeof buf) > 0);
    }
  count_start();
  int failures = 0;
  for (int round = 0; round < 300; round++)
    for (int k = 0; k < NREQ; k++) {
      failures += clause_vm_set_json(vm, fx.req[k], fx.req_len[k], &err) != CLAUSE_OK;
      failures += clause_vm_eval(vm, &d) != CLAUSE_OK;
      failures += clause_decision_json(&d, buf, sizeof buf) <= 0;
    }
  count_stop();
  clause_vm_free(vm);
  print_message("3000 bind+evaluate cycles on one VM: %zu allocations, %zu frees\n", n_alloc, n_free);
  assert_int_equal(failures, 0);
  assert_int_equal(n_alloc, 0);
  assert_int_equal(n_free, 0);
}

/* tag(user, n): "user#n" from a thread-local buffer; a negative n fails. */
static void host_tag(clause_call_ctx *ctx, const clause_value *args, size_t nargs, clause_value *result) {
  static _Thread_local char buf[128];
  (void)nargs;
  if (args[1].i < 0) {
    clause_call_error(ctx, "negative tag");
    return;
  }
  int n = snprintf(buf, sizeof buf, "%s#%lld", args[0].s.ptr, (long long)args[1].i);
  result->s.ptr = buf;
  result->s.len = n > 0 && (size_t)n < sizeof buf ? (size_t)n : 0;
}

/* Extern calls, through libffi and to a host function, with string
 * arguments and results and failing calls, allocate nothing either once
 * the scratch space has grown. */
static void test_extern_calls_allocate_nothing(void **state) {
  (void)state;
  SKIP_UNDER_ASAN();
  char path[4096];
  clause_error err;
  clause_options *o = clause_options_new();
  assert_non_null(o);
  assert_int_equal(clause_options_set_extern_path(o, extern_libdir()), CLAUSE_OK);
  static const clause_type params[] = {CLAUSE_TYPE_STRING, CLAUSE_TYPE_INT};
  assert_int_equal(clause_options_add_function(o, "tag", params, 2, CLAUSE_TYPE_STRING, host_tag, NULL, NULL, 0),
                   CLAUSE_OK);
  snprintf(path, sizeof path, "%s/tests/extern/alloc.clause", srcdir());
  clause_program *p = clause_compile_file(path, o, &err);
  if (!p) fail_msg("%s:%d:%d: %s", err.file, err.line, err.column, err.message);
  static const char *const req[] = {
      "{\"request\": {\"user\": \"u-12345678\", \"n\": 7}}",
      "{\"request\": {\"user\": \"alice\", \"n\": 1}}",
  };
  clause_vm *vm[2];
  for (int k = 0; k < 2; k++) {
    vm[k] = clause_vm_new(p);
    assert_non_null(vm[k]);
    assert_int_equal(clause_vm_set_json(vm[k], req[k], strlen(req[k]), &err), CLAUSE_OK);
  }
  char buf[4096];
  clause_decision d;
  for (int round = 0; round < 40; round++)
    for (int k = 0; k < 2; k++) {
      assert_int_equal(clause_vm_eval(vm[k], &d), CLAUSE_OK);
      assert_true(clause_decision_json(&d, buf, sizeof buf) > 0);
    }
  assert_int_equal(clause_vm_eval(vm[0], &d), CLAUSE_OK);
  assert_int_equal(d.effect, CLAUSE_DENY);
  assert_string_equal(d.reason, "hello, u-12345678 u-12345678#7");
  assert_int_equal(d.n_errors, 1); /* fail() */
  count_start();
  int failures = 0;
  for (int round = 0; round < 1000; round++)
    for (int k = 0; k < 2; k++) {
      failures += clause_vm_eval(vm[k], &d) != CLAUSE_OK;
      failures += clause_decision_json(&d, buf, sizeof buf) <= 0;
    }
  count_stop();
  print_message("2000 evaluations calling externs: %zu allocations, %zu frees\n", n_alloc, n_free);
  assert_int_equal(failures, 0);
  assert_int_equal(n_alloc, 0);
  assert_int_equal(n_free, 0);
  for (int k = 0; k < 2; k++) clause_vm_free(vm[k]);
  clause_program_free(p);
  clause_options_free(o);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_counter_works),
      cmocka_unit_test(test_eval_allocates_nothing),
      cmocka_unit_test(test_rebinding_allocates_nothing),
      cmocka_unit_test(test_extern_calls_allocate_nothing),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
