/*
 * test_state.c - the memory state store under load: expired keys are
 * reclaimed as time moves on, a key cap evicts the least recently used key
 * and says so, and concurrent sessions count exactly. (The counting rules
 * themselves are checked end to end by the golden decision sets
 * counter_*.clause and suspension*.clause in tests/golden/decisions.)
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../include/clause.h"
#include "../vm/store.h"

#define SEC 1000000000LL
#define T0 (1714557600LL * SEC) /* 2024-05-01T10:00:00Z */

static store_counter_op count_op(const char *key, bool add) {
  store_counter_op op = {0};
  op.id = "rpm/c/60000000000";
  op.key = key;
  op.key_len = strlen(key);
  op.window_ns = 60 * SEC;
  op.mode = STORE_SUM;
  op.add = add;
  op.amount = 1;
  return op;
}

static int64_t count_at(store_session *ss, const char *key, int64_t now, bool add) {
  store_counter_op op = count_op(key, add);
  store_report rep = {0};
  assert_int_equal(store_begin(ss, now, &op, 1, NULL, 0, &rep), 0);
  return op.value;
}

/* 200,000 keys seen once each, one per 10 ms of traffic time, in a 1m
 * window: at any moment only the keys of the last two windows can still
 * be read, and the store must not hold many more than those. */
static void test_reclaims_expired_keys(void **state) {
  (void)state;
  store *s = store_memory_new(0);
  char err[128];
  store_session *ss = store_open_session(s, err, sizeof err);
  assert_non_null(ss);
  size_t peak = 0;
  for (int i = 0; i < 200000; i++) {
    char key[32];
    snprintf(key, sizeof key, "account-%d", i);
    assert_int_equal(count_at(ss, key, T0 + (int64_t)i * SEC / 100, true), 1);
    size_t n = i % 1000 == 0 ? store_memory_entries(s) : 0;
    if (n > peak) peak = n;
  }
  /* Two windows of keys are 12,000; the sweep, a few hash slots per
   * operation, lags behind by a fraction of a pass over the table. */
  print_message("peak entries: %zu of 200000 keys seen, at the end: %zu\n", peak, store_memory_entries(s));
  assert_true(peak < 25000);
  /* Counting still works for a key that is alive. */
  assert_int_equal(count_at(ss, "account-199999", T0 + 1999999 * SEC / 1000, false), 1);
  store_close_session(ss);
  store_unref(s);
}

typedef struct notices {
  char last[400];
  int n;
} notices;

static void on_notice(void *ctx, const char *msg, size_t n) {
  notices *nt = ctx;
  snprintf(nt->last, sizeof nt->last, "%.*s", (int)n, msg);
  nt->n++;
}

/* A memory store with a key cap, a session on it, and the notices it
 * reports. */
typedef struct capped_store {
  store *s;
  store_session *ss;
  notices nt;
  store_report rep;
} capped_store;

static void capped_open(capped_store *c, size_t max_keys) {
  char err[128];
  c->s = store_memory_new(max_keys);
  c->ss = store_open_session(c->s, err, sizeof err);
  c->nt = (notices){{0}, 0};
  c->rep = (store_report){.notice = on_notice, .notice_ctx = &c->nt};
}

static void capped_close(capped_store *c) {
  store_close_session(c->ss);
  store_unref(c->s);
}

static void test_key_cap_evicts_least_recently_used(void **state) {
  (void)state;
  capped_store c;
  capped_open(&c, 2);
  const char *keys[] = {"a", "b", "a", "c"}; /* b is then the least recently used */
  for (int i = 0; i < 4; i++) {
    store_counter_op op = count_op(keys[i], true);
    assert_int_equal(store_begin(c.ss, T0 + i * SEC, &op, 1, NULL, 0, &c.rep), 0);
  }
  assert_int_equal(c.nt.n, 1);
  assert_string_equal(c.nt.last, "state store full (max_keys 2): evicted the least recently used key \"b\" (rpm)");
  assert_int_equal(store_memory_entries(c.s), 2);
  c.rep.notice = NULL;
  assert_int_equal(count_at(c.ss, "a", T0 + 5 * SEC, false), 2);
  assert_int_equal(count_at(c.ss, "b", T0 + 5 * SEC, false), 0); /* forgotten */
  capped_close(&c);
}

/* A key whose buckets and members outgrow its entry's block: the entry
 * moves to a larger one (several times here), and keeps its counts and
 * its place in the LRU order. */
static void test_growing_entry_keeps_counts_and_lru_place(void **state) {
  (void)state;
  capped_store c;
  capped_open(&c, 3);
  int64_t t = T0;
  count_at(c.ss, "a", t++, true);
  count_at(c.ss, "c", t++, true);
  for (int i = 0; i < 100; i++, t += SEC) { /* 100 buckets, 100 members under b */
    char member[16];
    snprintf(member, sizeof member, "m%d", i);
    store_counter_op ops[2] = {count_op("b", true), count_op("b", true)};
    ops[1].id = "ips/d/60000000000";
    ops[1].mode = STORE_DISTINCT;
    ops[1].member = member;
    ops[1].member_len = strlen(member);
    assert_int_equal(store_begin(c.ss, t, ops, 2, NULL, 0, &c.rep), 0);
    int64_t want = i + 1 < 60 ? i + 1 : 60;
    assert_int_equal(ops[0].value, want);
    assert_int_equal(ops[1].value, want);
  }
  count_at(c.ss, "a", t++, true); /* least recently used now: c */
  store_counter_op d = count_op("d", true);
  assert_int_equal(store_begin(c.ss, t++, &d, 1, NULL, 0, &c.rep), 0);
  assert_int_equal(c.nt.n, 1);
  assert_string_equal(c.nt.last, "state store full (max_keys 3): evicted the least recently used key \"c\" (rpm)");
  store_counter_op ops[2] = {count_op("b", false), count_op("b", false)};
  ops[1].id = "ips/d/60000000000";
  ops[1].mode = STORE_DISTINCT;
  assert_int_equal(store_begin(c.ss, t - 3 * SEC, ops, 2, NULL, 0, &c.rep), 0);
  assert_int_equal(ops[0].value, 60);
  assert_int_equal(ops[1].value, 60);
  capped_close(&c);
}

typedef struct worker_arg {
  store *s;
  int n;
  int done;                  /* make_keys: requests made so far, -1 on a failure */
} worker_arg;

static void *count_many(void *p) {
  worker_arg *w = p;
  char err[128];
  store_session *ss = store_open_session(w->s, err, sizeof err);
  for (int i = 0; i < w->n; i++) {
    store_counter_op ops[2] = {count_op("shared", true), count_op(i % 2 ? "odd" : "even", true)};
    store_report rep = {0};
    if (store_begin(ss, T0, ops, 2, NULL, 0, &rep) != 0) break;
  }
  store_close_session(ss);
  return NULL;
}

static void test_threads_count_exactly(void **state) {
  (void)state;
  store *s = store_memory_new(0);
  worker_arg w = {s, 100000, 0};
  pthread_t t[2];
  for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&t[i], NULL, count_many, &w), 0);
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  char err[128];
  store_session *ss = store_open_session(s, err, sizeof err);
  assert_int_equal(count_at(ss, "shared", T0, false), 200000);
  assert_int_equal(count_at(ss, "odd", T0, false), 100000);
  store_close_session(ss);
  store_unref(s);
}

/* Two threads on one key whose buckets and members keep growing, so that
 * its entry is rebuilt (moved) while the other thread waits for it or
 * asks the store to prefetch it: every event is counted, every member
 * seen. */
/* A count and a distinct counter of a day under key "grow". */
static void grow_ops(store_counter_op ops[2], bool add, const char *member) {
  ops[0] = count_op("grow", add);
  ops[0].id = "day/c/86400000000000";
  ops[0].window_ns = 86400 * SEC;
  ops[1] = ops[0];
  ops[1].id = "ips/d/86400000000000";
  ops[1].mode = STORE_DISTINCT;
  ops[1].member = member;
  ops[1].member_len = member ? strlen(member) : 0;
}

static void *grow_shared(void *p) {
  worker_arg *w = p;
  char err[128];
  store_session *ss = store_open_session(w->s, err, sizeof err);
  for (int i = 0; i < w->n; i++) {
    char member[16];
    snprintf(member, sizeof member, "ip-%d", i % 300);
    store_counter_op ops[2];
    grow_ops(ops, true, member);
    store_report rep = {0};
    store_prefetch(ss, "grow", 4);
    if (store_begin(ss, T0 + (int64_t)i * 20 * SEC, ops, 2, NULL, 0, &rep) != 0) break;
  }
  store_close_session(ss);
  return NULL;
}

static void test_threads_grow_one_entry(void **state) {
  (void)state;
  store *s = store_memory_new(0);
  worker_arg w = {s, 4000, 0}; /* 4,000 requests 20 s apart: 80,000 s, 60 buckets of a day */
  pthread_t t[2];
  for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&t[i], NULL, grow_shared, &w), 0);
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  char err[128];
  store_session *ss = store_open_session(s, err, sizeof err);
  store_counter_op ops[2];
  grow_ops(ops, false, NULL);
  store_report rep = {0};
  assert_int_equal(store_begin(ss, T0 + 3999 * 20 * SEC, ops, 2, NULL, 0, &rep), 0);
  assert_int_equal(ops[0].value, 8000);
  assert_int_equal(ops[1].value, 300);
  store_close_session(ss);
  store_unref(s);
}

/* One thread makes 60,000 keys, 10 ms of traffic time apart (so the
 * shards' slot tables grow, and swept entries are freed), while another
 * asks the store to prefetch keys old and new: a prefetch reads a slot
 * without the shard's lock, and must never read freed memory nor change a
 * count. A stress test: under the sanitizers it caught a grow that freed
 * the old table at once in some runs, not in every run (the race's window
 * is a few instructions). */
static void *make_keys(void *p) {
  worker_arg *w = p;
  char err[128];
  store_session *ss = store_open_session(w->s, err, sizeof err);
  for (int i = 0; i < w->n; i++) {
    char key[24];
    snprintf(key, sizeof key, "key-%d", i);
    store_counter_op op = count_op(key, true);
    store_report rep = {0};
    bool ok = store_begin(ss, T0 + (int64_t)i * 10 * 1000000, &op, 1, NULL, 0, &rep) == 0 && op.value == 1;
    __atomic_store_n(&w->done, ok ? i + 1 : -1, __ATOMIC_RELEASE);
    if (!ok) break;
  }
  store_close_session(ss);
  return NULL;
}

static void prefetch_while_tables_grow(store *s) {
  worker_arg w = {s, 60000, 0};
  pthread_t maker;
  assert_int_equal(pthread_create(&maker, NULL, make_keys, &w), 0);
  char err[128];
  store_session *ss = store_open_session(s, err, sizeof err);
  unsigned x = 12345;
  for (int made; (made = __atomic_load_n(&w.done, __ATOMIC_ACQUIRE)) >= 0 && made < w.n;) {
    x = x * 1103515245u + 12345u;
    char key[24];
    snprintf(key, sizeof key, "key-%u", made ? x % (unsigned)made : 0u);
    store_prefetch(ss, key, strlen(key));
  }
  pthread_join(maker, NULL);
  assert_int_equal(w.done, w.n); /* each key read 1 when it was made */
  /* The last window's keys are still there. */
  int64_t last = T0 + (int64_t)(w.n - 1) * 10 * 1000000;
  assert_int_equal(count_at(ss, "key-59999", last, false), 1);
  assert_int_equal(count_at(ss, "key-59000", last, false), 1);
  store_close_session(ss);
  store_unref(s);
}

static void test_prefetch_while_tables_grow(void **state) {
  (void)state;
  for (int round = 0; round < 2; round++) prefetch_while_tables_grow(store_memory_new(0));
  /* A key cap makes one shard: every prefetch then reads the table that
   * grows (the cap is above the keys live at once, so nothing is evicted). */
  prefetch_while_tables_grow(store_memory_new(100000));
}

static void test_bucket_arithmetic(void **state) {
  (void)state;
  /* floor(60 t / W), exact where 60 t overflows int64, and for times
   * before the epoch. */
  assert_int_equal(store_bucket(T0, 60 * SEC), 1714557600LL);
  assert_int_equal(store_bucket(T0 + SEC - 1, 60 * SEC), 1714557600LL);
  assert_int_equal(store_bucket(T0, 24 * 3600 * SEC), 1714557600LL * 60 / 86400);
  assert_int_equal(store_bucket(-1, 60 * SEC), -1);
  assert_int_equal(store_bucket(7 * SEC, 7 * SEC), 60);
}

/* ---- through the public API ---------------------------------------------------- */

static const char counting_policy[] =
    "input { account.id string\n request.time timestamp @clock }\n"
    "counter rpm key account.id window 1m\n"
    "rule \"rpm\" { throttle when rpm > 2 }\n";

static clause_program *compile_text(const char *text, const clause_options *opts) {
  char path[] = "/tmp/clause-test-state-XXXXXX.clause";
  int fd = mkstemps(path, 7);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  clause_error err;
  clause_program *p = clause_compile_file(path, opts, &err);
  unlink(path);
  if (!p) fail_msg("%s:%d:%d: %s", err.file, err.line, err.column, err.message);
  return p;
}

static clause_effect decide(clause_program *p) {
  clause_vm *vm = clause_vm_new(p);
  static const char req[] = "{\"account\": {\"id\": \"a\"}, \"request\": {\"time\": \"2024-05-01T10:00:00Z\"}}";
  clause_error err;
  assert_int_equal(clause_vm_set_json(vm, req, strlen(req), &err), CLAUSE_OK);
  clause_decision d;
  assert_int_equal(clause_vm_eval(vm, &d), CLAUSE_OK);
  clause_effect e = d.effect;
  clause_vm_free(vm);
  return e;
}

/* SPEC 5.3: programs loaded with the same options share one store; with
 * NULL options each program has a store of its own. */
static void test_programs_share_their_options_store(void **state) {
  (void)state;
  clause_options *o = clause_options_new();
  clause_program *a = compile_text(counting_policy, o), *b = compile_text(counting_policy, o);
  assert_int_equal(decide(a), CLAUSE_ALLOW);
  assert_int_equal(decide(b), CLAUSE_ALLOW);
  assert_int_equal(decide(a), CLAUSE_THROTTLE); /* the third request of account a */
  clause_program_free(a);
  clause_program_free(b);
  clause_options_free(o);

  clause_program *c = compile_text(counting_policy, NULL), *d = compile_text(counting_policy, NULL);
  assert_int_equal(decide(c), CLAUSE_ALLOW);
  assert_int_equal(decide(d), CLAUSE_ALLOW);
  assert_int_equal(decide(c), CLAUSE_ALLOW); /* c has seen two requests, d one */
  assert_int_equal(decide(c), CLAUSE_THROTTLE);
  clause_program_free(c);
  clause_program_free(d);
}

static void test_store_urls(void **state) {
  (void)state;
  clause_options *o = clause_options_new();
  clause_error err;
  assert_int_equal(clause_options_set_store(o, "memory", &err), CLAUSE_OK);
  assert_int_equal(clause_options_set_store(o, "memory?max_keys=10", &err), CLAUSE_OK);
  assert_int_equal(clause_options_set_store(o, "memory?max_keys=0", &err), CLAUSE_ERR_ARG);
  assert_non_null(strstr(err.message, "max_keys"));
  assert_int_equal(clause_options_set_store(o, "postgres://x", &err), CLAUSE_ERR_ARG);
  assert_non_null(strstr(err.message, "unknown store URL"));
  assert_int_equal(clause_options_set_store(NULL, "memory", &err), CLAUSE_ERR_ARG);
  clause_options_free(o);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bucket_arithmetic),
      cmocka_unit_test(test_reclaims_expired_keys),
      cmocka_unit_test(test_key_cap_evicts_least_recently_used),
      cmocka_unit_test(test_growing_entry_keeps_counts_and_lru_place),
      cmocka_unit_test(test_threads_count_exactly),
      cmocka_unit_test(test_threads_grow_one_entry),
      cmocka_unit_test(test_prefetch_while_tables_grow),
      cmocka_unit_test(test_programs_share_their_options_store),
      cmocka_unit_test(test_store_urls),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
