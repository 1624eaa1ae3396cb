/*
 * test_store.c - the state stores (vm/store.h) driven directly: the same
 * semantic cases (SPEC 5.2 suspensions, 5.3 counters) on the memory store
 * and on a real Redis, then what only Redis has: URLs, pipelined writes
 * and their failures, a lost script, two processes sharing a counter, a
 * server that stops answering, dies and comes back.
 *
 * Run through tests/store.sh, which starts a throwaway redis-server with
 * tests/redis_server.sh and passes it on in REDIS_PORT, REDIS_DIR (its pid
 * file) and REDIS_CTL (the script, to start it again after a kill). Without
 * them the Redis cases fail: they are never skipped.
 *
 * Every Redis case uses a key prefix of its own, so cases never see each
 * other's keys and nothing is ever flushed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "store.h"

#define SEC 1000000000ll
#define MIN (60 * SEC)
/* 2023-11-14T22:13:20Z: a whole second, so a bucket of a 1-minute window
 * (1 s wide) starts there. */
#define T0 (1700000000 * SEC)

static const char *const MEMORY = "memory", *const REDIS = "redis";

/* ---- the server and the stores under test ------------------------------------------ */

static const char *redis_env(const char *name) {
  const char *v = getenv(name);
  if (!v || !*v) fail_msg("%s is not set: run this test through tests/store.sh", name);
  return v;
}

static int redis_port(void) {
  return atoi(redis_env("REDIS_PORT"));
}

/* A raw connection, to look at and tamper with what the store wrote. */
static redisContext *raw_connect(void) {
  struct timeval tv = {1, 0};
  redisContext *c = redisConnectWithTimeout("127.0.0.1", redis_port(), tv);
  assert_non_null(c);
  if (c->err) fail_msg("cannot connect to the test redis: %s", c->errstr);
  return c;
}

static void raw_command(const char *fmt, ...) {
  redisContext *c = raw_connect();
  va_list ap;
  va_start(ap, fmt);
  redisReply *rep = redisvCommand(c, fmt, ap);
  va_end(ap);
  assert_non_null(rep);
  if (rep->type == REDIS_REPLY_ERROR) fail_msg("%s: %s", fmt, rep->str);
  freeReplyObject(rep);
  redisFree(c);
}

/* A key prefix no other case (or run) uses. */
static void fresh_prefix(char *buf, size_t cap) {
  static int n;
  snprintf(buf, cap, "test:%ld:%d:", (long)getpid(), ++n);
}

/* The semantic cases wait up to 2 s for an answer: make check runs tests
 * side by side on a small machine, and a slow answer is not what they test.
 * The failure cases set their own timeouts. */
#define PATIENT "&timeout_ms=2000"

static store *open_redis(const char *prefix, const char *extra) {
  char url[256], err[256];
  snprintf(url, sizeof url, "redis://127.0.0.1:%d?prefix=%s%s", redis_port(), prefix, extra);
  store *s = store_open(url, err, sizeof err);
  if (!s) fail_msg("store_open(%s): %s", url, err);
  return s;
}

static store *open_kind(const char *kind) {
  if (kind == MEMORY) {
    char err[256];
    store *s = store_open("memory", err, sizeof err);
    if (!s) fail_msg("store_open(memory): %s", err);
    return s;
  }
  char prefix[64];
  fresh_prefix(prefix, sizeof prefix);
  return open_redis(prefix, PATIENT);
}

static store_session *session(store *s) {
  char err[256];
  store_session *ss = store_open_session(s, err, sizeof err);
  if (!ss) fail_msg("store_open_session: %s", err);
  return ss;
}

/* One store and one session on it, closed at the end of the case. */
typedef struct fixture {
  store *st;
  store_session *ss;
} fixture;

static fixture open_fixture(const char *kind) {
  fixture f;
  f.st = open_kind(kind);
  f.ss = session(f.st);
  return f;
}

static void close_fixture(fixture *f) {
  store_close_session(f->ss);
  store_unref(f->st);
}

/* ---- one request's calls -------------------------------------------------------------- */

static char notices[1024];

static void collect_notice(void *ctx, const char *msg, size_t n) {
  (void)ctx;
  size_t have = strlen(notices);
  snprintf(notices + have, sizeof notices - have, "%.*s\n", (int)n, msg);
}

static store_report report(void) {
  store_report r = {.notice = collect_notice};
  return r;
}

static store_counter_op sum_op(const char *id, const char *key, int64_t window, int64_t amount) {
  store_counter_op op = {.id = id, .key = key, .key_len = strlen(key), .window_ns = window,
                         .mode = STORE_SUM, .add = amount > 0, .amount = amount};
  return op;
}

static store_counter_op distinct_op(const char *id, const char *key, int64_t window,
                                    const char *member, size_t member_len) {
  store_counter_op op = {.id = id, .key = key, .key_len = strlen(key), .window_ns = window,
                         .mode = STORE_DISTINCT, .add = member != NULL, .member = member,
                         .member_len = member_len};
  return op;
}

static void begin_ok(store_session *ss, int64_t now, store_counter_op *ops, size_t n,
                     store_suspend_op *susp, size_t nsusp) {
  store_report r = report();
  if (store_begin(ss, now, ops, n, susp, nsusp, &r) != 0) fail_msg("store_begin: %s", r.message);
}

static void commit_ok(store_session *ss, int64_t now, const store_counter_op *ops, size_t n,
                      const store_suspend_op *susp, size_t nsusp) {
  store_report r = report();
  if (store_commit(ss, now, ops, n, susp, nsusp, &r) != 0) fail_msg("store_commit: %s", r.message);
}

/* The reading of a sum counter at `now`, adding nothing. */
static int64_t sum_at(store_session *ss, const char *id, const char *key, int64_t window,
                      int64_t now) {
  store_counter_op op = sum_op(id, key, window, 0);
  begin_ok(ss, now, &op, 1, NULL, 0);
  return op.value;
}

/* Adds after the decision, as an `on` counter does. */
static void add_at(store_session *ss, const char *id, const char *key, int64_t window,
                   int64_t now, int64_t amount) {
  store_counter_op op = sum_op(id, key, window, amount);
  commit_ok(ss, now, &op, 1, NULL, 0);
}

static int64_t distinct_at(store_session *ss, const char *id, const char *key, int64_t window,
                           int64_t now, const char *member) {
  store_counter_op op = distinct_op(id, key, window, member, member ? strlen(member) : 0);
  begin_ok(ss, now, &op, 1, NULL, 0);
  return op.value;
}

static bool suspended_at(store_session *ss, const char *rule, const char *key, size_t key_len,
                         int64_t now) {
  store_suspend_op op = {.rule = rule, .key = key, .key_len = key_len};
  begin_ok(ss, now, NULL, 0, &op, 1);
  return op.active;
}

static void suspend(store_session *ss, const char *rule, const char *key, size_t key_len,
                    int64_t now, int64_t until) {
  store_suspend_op op = {.rule = rule, .key = key, .key_len = key_len, .until_ns = until};
  commit_ok(ss, now, NULL, 0, &op, 1);
}

/* ---- the cases both stores share -------------------------------------------------------- */

#define KIND ((const char *)*state)

/* A counter without `on` adds in begin and its reading includes the
 * request; adds from commit show at the next begin. */
static void test_sums_in_window(void **state) {
  fixture f = open_fixture(KIND);
  store_counter_op op = sum_op("rpm/c/60000000000", "key-1", MIN, 2);
  begin_ok(f.ss, T0, &op, 1, NULL, 0);
  assert_int_equal(op.value, 2);
  op.amount = 3;
  begin_ok(f.ss, T0 + 10 * SEC, &op, 1, NULL, 0);
  assert_int_equal(op.value, 5);
  add_at(f.ss, "rpm/c/60000000000", "key-1", MIN, T0 + 30 * SEC, 10);
  assert_int_equal(sum_at(f.ss, "rpm/c/60000000000", "key-1", MIN, T0 + 30 * SEC), 15);
  /* Another key, another counter, another window: all apart. */
  assert_int_equal(sum_at(f.ss, "rpm/c/60000000000", "key-2", MIN, T0 + 30 * SEC), 0);
  assert_int_equal(sum_at(f.ss, "rph/c/60000000000", "key-1", MIN, T0 + 30 * SEC), 0);
  /* Several counters in one begin, the reads after every add. */
  store_counter_op two[2] = {sum_op("a/c/1", "k", MIN, 1), sum_op("b/c/1", "k", MIN, 4)};
  begin_ok(f.ss, T0, two, 2, NULL, 0);
  assert_int_equal(two[0].value, 1);
  assert_int_equal(two[1].value, 4);
  close_fixture(&f);
}

/* A reading sums the 60 buckets that end with now's: an event 59 buckets
 * back counts, 60 back does not, whatever the time within the bucket. */
static void test_bucket_boundaries(void **state) {
  fixture f = open_fixture(KIND);
  const char *id = "w/c/60000000000";
  add_at(f.ss, id, "k", MIN, T0 + 999999999, 1); /* the last ns of bucket T0 */
  add_at(f.ss, id, "k", MIN, T0 + SEC, 10);      /* the next bucket's first ns */
  assert_int_equal(sum_at(f.ss, id, "k", MIN, T0 - 1), 0);
  assert_int_equal(sum_at(f.ss, id, "k", MIN, T0), 1);
  assert_int_equal(sum_at(f.ss, id, "k", MIN, T0 + 59 * SEC), 11);
  assert_int_equal(sum_at(f.ss, id, "k", MIN, T0 + 60 * SEC - 1), 11);
  assert_int_equal(sum_at(f.ss, id, "k", MIN, T0 + 60 * SEC), 10);
  assert_int_equal(sum_at(f.ss, id, "k", MIN, T0 + 61 * SEC - 1), 10);
  assert_int_equal(sum_at(f.ss, id, "k", MIN, T0 + 61 * SEC), 0);
  /* A window that is not a whole number of seconds: 7 s, buckets of
   * 116.666... ms; bucket floor(60 t / W). */
  int64_t w = 7 * SEC, t = T0 + 123456789;
  int64_t b = store_bucket(t, w);
  add_at(f.ss, "odd/c/7000000000", "k", w, t, 5);
  /* The first ns of bucket b+59 and of bucket b+60 (ceil(n W / 60)). */
  int64_t last = (int64_t)(((__int128)(b + 59) * w + 59) / 60);
  int64_t gone = (int64_t)(((__int128)(b + 60) * w + 59) / 60);
  assert_int_equal(store_bucket(last, w), b + 59);
  assert_int_equal(store_bucket(gone - 1, w), b + 59);
  assert_int_equal(store_bucket(gone, w), b + 60);
  assert_int_equal(sum_at(f.ss, "odd/c/7000000000", "k", w, gone - 1), 5);
  assert_int_equal(sum_at(f.ss, "odd/c/7000000000", "k", w, gone), 0);
  close_fixture(&f);
}

/* Traffic time going backwards: events in later buckets are not read, a
 * later event in now's own bucket is. */
static void test_time_backwards(void **state) {
  fixture f = open_fixture(KIND);
  const char *id = "b/c/60000000000";
  add_at(f.ss, id, "k", MIN, T0 + 10 * SEC, 100);
  add_at(f.ss, id, "k", MIN, T0 + 500000000, 7); /* later than T0, same bucket */
  add_at(f.ss, id, "k", MIN, T0 - 30 * SEC, 1);
  assert_int_equal(sum_at(f.ss, id, "k", MIN, T0), 8);
  assert_int_equal(sum_at(f.ss, id, "k", MIN, T0 + 9 * SEC), 8);
  assert_int_equal(sum_at(f.ss, id, "k", MIN, T0 + 10 * SEC), 108);
  /* A begin that adds at an earlier time than the last one. */
  store_counter_op op = sum_op(id, "k", MIN, 1000);
  begin_ok(f.ss, T0 - 20 * SEC, &op, 1, NULL, 0);
  assert_int_equal(op.value, 1001);
  close_fixture(&f);
}

/* Sums saturate at INT64_MAX, in a bucket and across buckets; big values
 * below it stay exact (on Redis they are summed in C, not in Lua). */
static void test_saturation(void **state) {
  fixture f = open_fixture(KIND);
  const char *id = "s/c/60000000000";
  add_at(f.ss, id, "one", MIN, T0, INT64_MAX - 1);
  add_at(f.ss, id, "one", MIN, T0, 5);
  assert_int_equal(sum_at(f.ss, id, "one", MIN, T0), INT64_MAX);
  add_at(f.ss, id, "one", MIN, T0, 1);
  assert_int_equal(sum_at(f.ss, id, "one", MIN, T0), INT64_MAX);
  add_at(f.ss, id, "two", MIN, T0, INT64_MAX);
  add_at(f.ss, id, "two", MIN, T0 + SEC, 1);
  assert_int_equal(sum_at(f.ss, id, "two", MIN, T0 + SEC), INT64_MAX);
  /* Leaving the window: what a saturated reading held is unknown, so the
   * next one is not slid from it. */
  assert_int_equal(sum_at(f.ss, id, "two", MIN, T0 + 59 * SEC), INT64_MAX);
  assert_int_equal(sum_at(f.ss, id, "two", MIN, T0 + 60 * SEC), 1);
  int64_t third = INT64_MAX / 3 + 1000;
  for (int i = 0; i < 3; i++) add_at(f.ss, id, "three", MIN, T0 + i * SEC, third);
  assert_int_equal(sum_at(f.ss, id, "three", MIN, T0 + 59 * SEC), INT64_MAX);
  assert_int_equal(sum_at(f.ss, id, "three", MIN, T0 + 60 * SEC), 2 * third);
  assert_int_equal(sum_at(f.ss, id, "three", MIN, T0 + 61 * SEC), third);
  int64_t big = 4503599627370497; /* 2^52 + 1: two of them are not a double */
  add_at(f.ss, id, "big", MIN, T0, big);
  add_at(f.ss, id, "big", MIN, T0 + SEC, big);
  add_at(f.ss, id, "big", MIN, T0 + 2 * SEC, 1);
  assert_int_equal(sum_at(f.ss, id, "big", MIN, T0 + 2 * SEC), 2 * big + 1);
  /* 13 digits in each of 60 buckets: the sum stays exact in a double. */
  for (int i = 0; i < 60; i++) add_at(f.ss, id, "wide", MIN, T0 + i * SEC, 9999999999999);
  assert_int_equal(sum_at(f.ss, id, "wide", MIN, T0 + 59 * SEC), 60 * 9999999999999);
  close_fixture(&f);
}

/* Distinct counts: the union over the window's buckets. Redis estimates
 * with HyperLogLog (SPEC: within 2%), exact for a handful of members. */
static void test_distinct(void **state) {
  fixture f = open_fixture(KIND);
  const char *id = "ips/d/60000000000";
  assert_int_equal(distinct_at(f.ss, id, "key", MIN, T0, "10.0.0.1"), 1);
  assert_int_equal(distinct_at(f.ss, id, "key", MIN, T0 + SEC, "10.0.0.2"), 2);
  assert_int_equal(distinct_at(f.ss, id, "key", MIN, T0 + 2 * SEC, "10.0.0.1"), 2);
  assert_int_equal(distinct_at(f.ss, id, "key", MIN, T0 + 3 * SEC, ""), 3);
  /* Members are bytes: a NUL inside counts. */
  store_counter_op op = distinct_op(id, "key", MIN, "10.0.0.1\0x", 10);
  begin_ok(f.ss, T0 + 3 * SEC, &op, 1, NULL, 0);
  assert_int_equal(op.value, 4);
  assert_int_equal(distinct_at(f.ss, id, "other", MIN, T0 + 3 * SEC, NULL), 0);
  /* The first member leaves the window with its bucket T0; its second
   * sighting (T0 + 2 s) keeps it. */
  assert_int_equal(distinct_at(f.ss, id, "key", MIN, T0 + 60 * SEC, NULL), 4);
  assert_int_equal(distinct_at(f.ss, id, "key", MIN, T0 + 61 * SEC, NULL), 3);
  assert_int_equal(distinct_at(f.ss, id, "key", MIN, T0 + 62 * SEC, NULL), 2);
  assert_int_equal(distinct_at(f.ss, id, "key", MIN, T0 + 63 * SEC, NULL), 0);
  /* After the decision (commit), then many members over many buckets. */
  store_counter_op late = distinct_op(id, "c", MIN, "m", 1);
  commit_ok(f.ss, T0, &late, 1, NULL, 0);
  assert_int_equal(distinct_at(f.ss, id, "c", MIN, T0, NULL), 1);
  char m[32];
  for (int i = 0; i < 3000; i++) {
    snprintf(m, sizeof m, "client-%d", i % 1000);
    store_counter_op add = distinct_op(id, "many", MIN, m, strlen(m));
    commit_ok(f.ss, T0 + (i % 60) * SEC, &add, 1, NULL, 0);
  }
  int64_t n = distinct_at(f.ss, id, "many", MIN, T0 + 59 * SEC, NULL);
  if (KIND == MEMORY)
    assert_int_equal(n, 1000);
  else if (n < 980 || n > 1020)
    fail_msg("distinct estimate %lld is not within 2%% of 1000", (long long)n);
  close_fixture(&f);
}

/* The last reading of a key is cached (in both stores): adds into its
 * window, before and after it, readings behind it, and buckets leaving it
 * must all show at once. */
static void test_cached_readings(void **state) {
  fixture f = open_fixture(KIND);
  const char *id = "cache/c/60000000000";
  int64_t t = T0 + 100 * SEC;
  add_at(f.ss, id, "k", MIN, t - 59 * SEC, 1000); /* the first bucket of t's window */
  add_at(f.ss, id, "k", MIN, t, 1);
  assert_int_equal(sum_at(f.ss, id, "k", MIN, t), 1001);
  /* At the same bucket, after adds: later in it (read), earlier in the
   * window (read), in the next bucket and just before the window (not). */
  add_at(f.ss, id, "k", MIN, t + 999999999, 2);
  add_at(f.ss, id, "k", MIN, t - 30 * SEC, 20);
  add_at(f.ss, id, "k", MIN, t + SEC, 300);
  add_at(f.ss, id, "k", MIN, t - 60 * SEC, 4000);
  assert_int_equal(sum_at(f.ss, id, "k", MIN, t), 1023);
  store_counter_op op = sum_op(id, "k", MIN, 5); /* adds and reads at the cached bucket */
  begin_ok(f.ss, t + 10, &op, 1, NULL, 0);
  assert_int_equal(op.value, 1028);
  /* A bucket on: t - 59 s leaves, t + 1 s enters. */
  assert_int_equal(sum_at(f.ss, id, "k", MIN, t + SEC), 28 + 300);
  /* Time goes back: readings behind the cache, an add behind it. */
  assert_int_equal(sum_at(f.ss, id, "k", MIN, t), 1028);
  assert_int_equal(sum_at(f.ss, id, "k", MIN, t - SEC), 4000 + 1000 + 20);
  add_at(f.ss, id, "k", MIN, t - SEC, 7);
  assert_int_equal(sum_at(f.ss, id, "k", MIN, t + SEC), 28 + 300 + 7);
  assert_int_equal(sum_at(f.ss, id, "k", MIN, t - SEC), 4000 + 1000 + 20 + 7);
  assert_int_equal(sum_at(f.ss, id, "k", MIN, t + SEC), 28 + 300 + 7);
  /* Buckets age out, one step at a time and then all at once. */
  assert_int_equal(sum_at(f.ss, id, "k", MIN, t + 29 * SEC), 28 + 300 + 7);
  assert_int_equal(sum_at(f.ss, id, "k", MIN, t + 30 * SEC), 8 + 300 + 7);
  assert_int_equal(sum_at(f.ss, id, "k", MIN, t + 58 * SEC), 8 + 300 + 7);
  assert_int_equal(sum_at(f.ss, id, "k", MIN, t + 59 * SEC), 8 + 300);
  assert_int_equal(sum_at(f.ss, id, "k", MIN, t + 60 * SEC), 300);
  assert_int_equal(sum_at(f.ss, id, "k", MIN, t + 61 * SEC), 0);
  assert_int_equal(sum_at(f.ss, id, "k", MIN, t + 200 * SEC), 0);
  add_at(f.ss, id, "k", MIN, t + 200 * SEC, 9);
  assert_int_equal(sum_at(f.ss, id, "k", MIN, t + 200 * SEC), 9);

  /* A key first written more than two windows ahead of the cached reading
   * drops the buckets that far behind it, some of them in the cached
   * window: the next reading must not slide from that cache. */
  const char *p = "prune/c/60000000000";
  add_at(f.ss, p, "k", MIN, t - 59 * SEC, 1000);
  add_at(f.ss, p, "k", MIN, t, 1);
  assert_int_equal(sum_at(f.ss, p, "k", MIN, t), 1001);
  add_at(f.ss, p, "k", MIN, t + 61 * SEC, 5);
  assert_int_equal(sum_at(f.ss, p, "k", MIN, t + SEC), 1);
  assert_int_equal(sum_at(f.ss, p, "k", MIN, t + 61 * SEC), 5);

  /* A reading one bucket on from the cached one, where the bucket that
   * leaves the window is the newest written until this request's add. */
  const char *n = "newest/c/60000000000";
  add_at(f.ss, n, "k", MIN, t, 7);
  assert_int_equal(sum_at(f.ss, n, "k", MIN, t + 59 * SEC), 7);
  op = sum_op(n, "k", MIN, 1);
  begin_ok(f.ss, t + 60 * SEC, &op, 1, NULL, 0);
  assert_int_equal(op.value, 1);
  assert_int_equal(sum_at(f.ss, n, "k", MIN, t + 59 * SEC), 7);
  assert_int_equal(sum_at(f.ss, n, "k", MIN, t + 60 * SEC), 1);

  /* Distinct: members added at the cached bucket, behind it, after it. */
  const char *d = "cache/d/60000000000";
  assert_int_equal(distinct_at(f.ss, d, "k", MIN, t - 59 * SEC, "a"), 1);
  assert_int_equal(distinct_at(f.ss, d, "k", MIN, t, "b"), 2);
  assert_int_equal(distinct_at(f.ss, d, "k", MIN, t, "b"), 2);
  assert_int_equal(distinct_at(f.ss, d, "k", MIN, t, "c"), 3);
  store_counter_op late = distinct_op(d, "k", MIN, "d", 1);
  commit_ok(f.ss, t - 10 * SEC, &late, 1, NULL, 0);
  late.member = "e";
  commit_ok(f.ss, t + SEC, &late, 1, NULL, 0);
  assert_int_equal(distinct_at(f.ss, d, "k", MIN, t, NULL), 4);
  assert_int_equal(distinct_at(f.ss, d, "k", MIN, t - SEC, NULL), 2); /* behind the cache */
  assert_int_equal(distinct_at(f.ss, d, "k", MIN, t, NULL), 4);
  assert_int_equal(distinct_at(f.ss, d, "k", MIN, t + SEC, NULL), 4); /* a leaves, e enters */
  assert_int_equal(distinct_at(f.ss, d, "k", MIN, t + 50 * SEC, NULL), 3);
  assert_int_equal(distinct_at(f.ss, d, "k", MIN, t + 60 * SEC, "b"), 2);
  assert_int_equal(distinct_at(f.ss, d, "k", MIN, t + 200 * SEC, NULL), 0);
  close_fixture(&f);
}

/* A counter named twice in one begin: each operation adds, then reads, in
 * turn. */
static void test_same_counter_twice(void **state) {
  fixture f = open_fixture(KIND);
  store_counter_op ops[5] = {
    sum_op("twice/c/60000000000", "k", MIN, 1), sum_op("twice/c/60000000000", "k", MIN, 2),
    distinct_op("twice/d/60000000000", "k", MIN, "a", 1),
    distinct_op("twice/d/60000000000", "k", MIN, "b", 1),
    sum_op("twice/c/60000000000", "k", MIN, 0),
  };
  begin_ok(f.ss, T0, ops, 5, NULL, 0);
  assert_int_equal(ops[0].value, 1);
  assert_int_equal(ops[1].value, 3);
  assert_int_equal(ops[2].value, 1);
  assert_int_equal(ops[3].value, 2);
  assert_int_equal(ops[4].value, 3);
  commit_ok(f.ss, T0, ops, 4, NULL, 0);
  assert_int_equal(sum_at(f.ss, "twice/c/60000000000", "k", MIN, T0), 6);
  close_fixture(&f);
}

/* A small deterministic generator for the randomized cases. */
static uint64_t rng_state;

static uint64_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static int64_t rng_below(int64_t n) {
  return (int64_t)(rng() % (uint64_t)n);
}

/* The next request time of a randomized case: mostly small steps forward,
 * some leaps across a part of the window or all of it, a few pauses long
 * enough that nothing kept can be read any more, some steps back; never
 * more than a window behind the newest time (what both stores keep
 * exactly). */
static int64_t next_time(int64_t now, int64_t *newest) {
  int64_t r = rng_below(100);
  if (r < 45)
    now += rng_below(3 * SEC / 2);
  else if (r < 55)
    now += 25 * SEC + rng_below(10 * SEC);
  else if (r < 60)
    now += 55 * SEC + rng_below(10 * SEC);
  else if (r < 75)
    now -= rng_below(40 * SEC);
  else if (r < 78)
    now += 2 * MIN + rng_below(5 * MIN);
  int64_t floor = (store_bucket(*newest, MIN) - 59) * SEC; /* buckets are whole seconds */
  if (now < floor) now = floor;
  if (now > *newest) *newest = now;
  return now;
}

/* One step of a random run: kind 0 commits the op's add, 1 adds and reads
 * in a begin, 2 only reads; a reading must be the oracle's `want`. */
static void random_step(fixture *f, int i, int kind, int64_t now, int64_t b, store_counter_op *op,
                        int64_t want) {
  if (kind == 0) {
    commit_ok(f->ss, now, op, 1, NULL, 0);
    return;
  }
  begin_ok(f->ss, now, op, 1, NULL, 0);
  if (op->value != want)
    fail_msg("step %d (bucket %lld, %s): read %lld, want %lld", i, (long long)(b - T0 / SEC),
             kind == 1 ? "add and read" : "read", (long long)op->value, (long long)want);
}

/* Sums against a brute-force oracle: adds in begin and in commit, readings,
 * time jumping about, big amounts and saturation. */
static void test_sums_random(void **state) {
  enum { STEPS = 1500 };
  static int64_t ev_bucket[STEPS], ev_amount[STEPS];
  fixture f = open_fixture(KIND);
  const char *id = "rand/c/60000000000";
  int nev = 0;
  int64_t now = T0, newest = T0;
  rng_state = 0x9e3779b97f4a7c15u;
  for (int i = 0; i < STEPS; i++) {
    now = next_time(now, &newest);
    int64_t r = rng_below(1000), amount;
    if (r < 25) /* three in a window saturate it */
      amount = INT64_MAX / 3 + rng_below(1000);
    else if (r < 60)
      amount = (1ll << 52) + rng_below(1ll << 40);
    else
      amount = 1 + rng_below(1000);
    int64_t b = store_bucket(now, MIN), want = 0;
    int kind = (int)rng_below(3); /* 0: commit adds, 1: begin adds and reads, 2: begin reads */
    if (kind < 2) {
      ev_bucket[nev] = b;
      ev_amount[nev++] = amount;
    }
    for (int e = 0; e < nev; e++)
      if (ev_bucket[e] > b - 60 && ev_bucket[e] <= b)
        want = want > INT64_MAX - ev_amount[e] ? INT64_MAX : want + ev_amount[e];
    store_counter_op op = sum_op(id, "k", MIN, kind < 2 ? amount : 0);
    random_step(&f, i, kind, now, b, &op, want);
  }
  close_fixture(&f);
}

/* Distinct counts against a brute-force oracle, over a few dozen members
 * (few enough that the HyperLogLog estimate is exact). */
static void test_distinct_random(void **state) {
  enum { STEPS = 1500, MEMBERS = 40 };
  static int64_t ev_bucket[STEPS];
  static int ev_member[STEPS];
  fixture f = open_fixture(KIND);
  const char *id = "rand/d/60000000000";
  int nev = 0;
  int64_t now = T0, newest = T0;
  rng_state = 0x2545f4914f6cdd1du;
  for (int i = 0; i < STEPS; i++) {
    now = next_time(now, &newest);
    int member = (int)rng_below(MEMBERS);
    char name[16];
    snprintf(name, sizeof name, "member-%d", member);
    int64_t b = store_bucket(now, MIN);
    int kind = (int)rng_below(3); /* 0: commit adds, 1: begin adds and reads, 2: begin reads */
    if (kind < 2) {
      ev_bucket[nev] = b;
      ev_member[nev++] = member;
    }
    bool seen[MEMBERS] = {false};
    int64_t want = 0;
    for (int e = 0; e < nev; e++)
      if (ev_bucket[e] > b - 60 && ev_bucket[e] <= b && !seen[ev_member[e]]) {
        seen[ev_member[e]] = true;
        want++;
      }
    store_counter_op op = distinct_op(id, "k", MIN, kind < 2 ? name : NULL, strlen(name));
    random_step(&f, i, kind, now, b, &op, want);
  }
  close_fixture(&f);
}

/* A suspension holds for request times in [start, until), whatever order
 * they come in; a new one of the same rule and key replaces it. */
static void test_suspension(void **state) {
  fixture f = open_fixture(KIND);
  assert_false(suspended_at(f.ss, "strikes", "acct-1", 6, T0));
  suspend(f.ss, "strikes", "acct-1", 6, T0, T0 + 10 * SEC);
  assert_false(suspended_at(f.ss, "strikes", "acct-1", 6, T0 - 1));
  assert_true(suspended_at(f.ss, "strikes", "acct-1", 6, T0));
  assert_true(suspended_at(f.ss, "strikes", "acct-1", 6, T0 + 10 * SEC - 1));
  assert_false(suspended_at(f.ss, "strikes", "acct-1", 6, T0 + 10 * SEC));
  assert_true(suspended_at(f.ss, "strikes", "acct-1", 6, T0 + 5 * SEC)); /* back in time */
  assert_false(suspended_at(f.ss, "strikes", "acct-2", 6, T0 + SEC));
  assert_false(suspended_at(f.ss, "other", "acct-1", 6, T0 + SEC));
  /* Replaced: the old interval no longer holds. */
  suspend(f.ss, "strikes", "acct-1", 6, T0 + 20 * SEC, T0 + 25 * SEC);
  assert_false(suspended_at(f.ss, "strikes", "acct-1", 6, T0 + 5 * SEC));
  assert_true(suspended_at(f.ss, "strikes", "acct-1", 6, T0 + 20 * SEC));
  /* Several lookups in one begin, with counters. */
  store_counter_op op = sum_op("x/c/1", "acct-1", MIN, 1);
  store_suspend_op look[2] = {{.rule = "strikes", .key = "acct-1", .key_len = 6},
                              {.rule = "other", .key = "acct-1", .key_len = 6}};
  begin_ok(f.ss, T0 + 21 * SEC, &op, 1, look, 2);
  assert_int_equal(op.value, 1);
  assert_true(look[0].active);
  assert_false(look[1].active);
  /* Nanosecond exactness far from the epoch (beyond a double's 2^53). */
  suspend(f.ss, "ns", "k", 1, 4000000000000000001, 4000000000000000003);
  assert_false(suspended_at(f.ss, "ns", "k", 1, 4000000000000000000));
  assert_true(suspended_at(f.ss, "ns", "k", 1, 4000000000000000002));
  assert_false(suspended_at(f.ss, "ns", "k", 1, 4000000000000000003));
  close_fixture(&f);
}

/* Keys, members and rule ids are arbitrary bytes: ':' and NUL inside do
 * not make two identities one. */
static void test_binary_keys(void **state) {
  fixture f = open_fixture(KIND);
  store_counter_op a = sum_op("c/c/1", "a:b", MIN, 1), b = sum_op("c/c/1", "a", MIN, 0);
  begin_ok(f.ss, T0, &a, 1, NULL, 0);
  b.key = "a\0b";
  b.key_len = 3;
  b.add = true;
  b.amount = 5;
  begin_ok(f.ss, T0, &b, 1, NULL, 0);
  assert_int_equal(b.value, 5);
  assert_int_equal(sum_at(f.ss, "c/c/1", "a:b", MIN, T0), 1);
  assert_int_equal(sum_at(f.ss, "c/c/1", "a", MIN, T0), 0);
  suspend(f.ss, "r:1", "k", 1, T0, T0 + SEC);
  assert_true(suspended_at(f.ss, "r:1", "k", 1, T0));
  assert_false(suspended_at(f.ss, "r", "1:k", 3, T0));
  suspend(f.ss, "r", "x\0y", 3, T0, T0 + SEC);
  assert_true(suspended_at(f.ss, "r", "x\0y", 3, T0));
  assert_false(suspended_at(f.ss, "r", "x\0z", 3, T0));
  assert_false(suspended_at(f.ss, "r", "x", 1, T0));
  close_fixture(&f);
}

/* Two stores (two prefixes on one Redis) never see each other's state;
 * two sessions of one store see the same state. */
static void test_isolation(void **state) {
  fixture f = open_fixture(KIND), g = open_fixture(KIND);
  add_at(f.ss, "i/c/1", "k", MIN, T0, 3);
  suspend(f.ss, "r", "k", 1, T0, T0 + SEC);
  assert_int_equal(sum_at(f.ss, "i/c/1", "k", MIN, T0), 3);
  assert_int_equal(sum_at(g.ss, "i/c/1", "k", MIN, T0), 0);
  assert_false(suspended_at(g.ss, "r", "k", 1, T0));
  store_session *second = session(f.st);
  assert_int_equal(sum_at(second, "i/c/1", "k", MIN, T0), 3);
  assert_true(suspended_at(second, "r", "k", 1, T0));
  store_close_session(second);
  close_fixture(&g);
  close_fixture(&f);
}

/* A commit's writes are visible to the session's next begin (on Redis they
 * travel ahead of it on the connection and their reply is read with it). */
static void test_commit_then_begin(void **state) {
  fixture f = open_fixture(KIND);
  for (int i = 1; i <= 50; i++) {
    store_counter_op ops[2] = {sum_op("p/c/1", "k", MIN, 1), sum_op("q/c/1", "k", MIN, 0)};
    begin_ok(f.ss, T0 + i, ops, 2, NULL, 0);
    assert_int_equal(ops[0].value, i);     /* without `on`: includes this request */
    assert_int_equal(ops[1].value, i - 1); /* with `on`: earlier requests only */
    ops[1].add = true;
    ops[1].amount = 1;
    commit_ok(f.ss, T0 + i, &ops[1], 1, NULL, 0);
  }
  /* A commit with nothing to write is no call at all. */
  store_counter_op none = sum_op("q/c/1", "k", MIN, 0);
  commit_ok(f.ss, T0, &none, 1, NULL, 0);
  assert_int_equal(sum_at(f.ss, "q/c/1", "k", MIN, T0 + 51), 50);
  close_fixture(&f);
}

/* ---- memory only ------------------------------------------------------------------------- */

static void test_memory_max_keys(void **state) {
  (void)state;
  char err[256];
  store *s = store_open("memory?max_keys=2", err, sizeof err);
  assert_non_null(s);
  store_session *ss = session(s);
  notices[0] = '\0';
  add_at(ss, "m/c/1", "a", MIN, T0, 1);
  add_at(ss, "m/c/1", "b", MIN, T0, 1);
  assert_int_equal(sum_at(ss, "m/c/1", "a", MIN, T0), 1); /* a is now the most recent */
  assert_string_equal(notices, "");
  add_at(ss, "m/c/1", "c", MIN, T0, 1);                   /* evicts b */
  assert_non_null(strstr(notices, "evicted"));
  assert_int_equal(sum_at(ss, "m/c/1", "a", MIN, T0), 1);
  assert_int_equal(sum_at(ss, "m/c/1", "b", MIN, T0), 0);
  assert_int_equal(sum_at(ss, "m/c/1", "c", MIN, T0), 1);
  store_close_session(ss);
  store_unref(s);
  assert_null(store_open("memory?max_keys=0", err, sizeof err));
  assert_null(store_open("memory?max_keys=x", err, sizeof err));
}

/* ---- Redis only ------------------------------------------------------------------------------ */

static void test_redis_urls(void **state) {
  (void)state;
  static const char *const good[] = {
    "redis://127.0.0.1:6379",
    "redis://localhost:1/0",
    "redis://[::1]:6379/15",
    "redis://cache-01.example.com:6380?prefix=app:",
    "redis://h:2?timeout_ms=5&prefix=x",
    "redis://h:2/3?prefix=a/b.c{d}",
  };
  static const struct { const char *url, *why; } bad[] = {
    {"redis://", "host"},
    {"redis://:6379", "host"},
    {"redis://h", ":PORT"},
    {"redis://h:", "port"},
    {"redis://h:0", "port"},
    {"redis://h:65536", "port"},
    {"redis://h:12x", "unexpected"},
    {"redis://h:1/", "database"},
    {"redis://h:1/x", "database"},
    {"redis://user:pw@h:1", "passwords"},
    {"redis://[::1:1", "IPv6"},
    {"redis://h:1?prefix=", "empty"},
    {"redis://h:1?prefix=a&prefix=b", "twice"},
    {"redis://h:1?timeout_ms=0", "timeout_ms"},
    {"redis://h:1?timeout_ms=1s", "timeout_ms"},
    {"redis://h:1?db=2", "unknown parameter \"db\""},
    {"redis://h:1?prefix", "NAME=VALUE"},
    {"redis://h:1?prefix=a b", "spaces"},
    {"redis://h:1#x", "unexpected"},
  };
  char err[256];
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
    store *s = store_open(good[i], err, sizeof err);
    if (!s) fail_msg("%s: %s", good[i], err);
    store_unref(s);
  }
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    err[0] = '\0';
    if (store_open(bad[i].url, err, sizeof err)) fail_msg("%s was accepted", bad[i].url);
    if (!strstr(err, bad[i].why) || !strstr(err, "bad store URL"))
      fail_msg("%s: message \"%s\" does not say \"%s\"", bad[i].url, err, bad[i].why);
  }
}

/* What the keys look like, and that each has a TTL (memory reclaim only). */
static void test_redis_keys(void **state) {
  (void)state;
  char prefix[64];
  fresh_prefix(prefix, sizeof prefix);
  store *s = open_redis(prefix, PATIENT);
  store_session *ss = session(s);
  add_at(ss, "rpm/c/60000000000", "k:1", MIN, T0, 4);
  suspend(ss, "r:x", "k", 1, T0, T0 + 10 * SEC);
  assert_int_equal(sum_at(ss, "rpm/c/60000000000", "k:1", MIN, T0), 4); /* reads the replies */
  assert_int_equal(distinct_at(ss, "ips/d/60000000000", "k", MIN, T0, "a"), 1);
  long long b = (long long)store_bucket(T0, MIN);
  char bucket[32];
  snprintf(bucket, sizeof bucket, "%lld", b);
  redisContext *c = raw_connect();
  /* A sum: one hash, its newest bucket and that bucket's sum, and the
   * cached reading. */
  redisReply *rep = redisCommand(c, "HMGET %sh:rpm/c/60000000000:k:1 nb nv cb cs", prefix);
  assert_int_equal(rep->type, REDIS_REPLY_ARRAY);
  assert_int_equal(rep->elements, 4);
  assert_string_equal(rep->element[0]->str, bucket);
  assert_string_equal(rep->element[1]->str, "4");
  assert_string_equal(rep->element[2]->str, bucket);
  assert_string_equal(rep->element[3]->str, "4");
  freeReplyObject(rep);
  rep = redisCommand(c, "PTTL %sh:rpm/c/60000000000:k:1", prefix);
  assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
  /* A window, 11 buckets (the hash renews its TTL every 10 buckets), 1 s. */
  if (!(rep->integer > 70000 && rep->integer <= 72000)) fail_msg("pttl %lld", (long long)rep->integer);
  freeReplyObject(rep);
  /* A distinct counter: its bucket, and the cached window's union and
   * bucket, the union outliving the bucket's record. */
  rep = redisCommand(c, "PFCOUNT %sd:ips/d/60000000000:k:%s", prefix, bucket);
  assert_int_equal(rep->integer, 1);
  freeReplyObject(rep);
  rep = redisCommand(c, "GET %sd:ips/d/60000000000:k:m", prefix);
  assert_int_equal(rep->type, REDIS_REPLY_STRING);
  assert_string_equal(rep->str, bucket);
  freeReplyObject(rep);
  rep = redisCommand(c, "PTTL %sd:ips/d/60000000000:k:m", prefix);
  long long ttl_m = rep->integer;
  freeReplyObject(rep);
  rep = redisCommand(c, "PTTL %sd:ips/d/60000000000:k:u", prefix);
  assert_true(ttl_m > 60000 && ttl_m <= 62000);
  assert_true(rep->integer > ttl_m && rep->integer <= 63000);
  freeReplyObject(rep);
  rep = redisCommand(c, "PTTL %sd:ips/d/60000000000:k:%s", prefix, bucket);
  assert_true(rep->integer > 60000 && rep->integer <= 62000);
  freeReplyObject(rep);
  rep = redisCommand(c, "GET %ss:3:r:x:k", prefix);
  assert_int_equal(rep->type, REDIS_REPLY_STRING);
  assert_string_equal(rep->str, "1700000000000000000 1700000010000000000");
  freeReplyObject(rep);
  rep = redisCommand(c, "PTTL %ss:3:r:x:k", prefix);
  assert_true(rep->integer > 9000 && rep->integer <= 11000);
  freeReplyObject(rep);
  redisFree(c);
  /* A counter id must not hold ':' (it would make keys ambiguous). */
  store_counter_op op = sum_op("a:b", "k", MIN, 1);
  store_report r = report();
  assert_int_equal(store_begin(ss, T0, &op, 1, NULL, 0, &r), -1);
  assert_non_null(strstr(r.message, "holds ':'"));
  store_close_session(ss);
  store_unref(s);
}

/* Fails unless every key under the prefix has a TTL. */
static void all_keys_expire(const char *prefix) {
  redisContext *c = raw_connect();
  redisReply *keys = redisCommand(c, "KEYS %s*", prefix);
  assert_int_equal(keys->type, REDIS_REPLY_ARRAY);
  assert_true(keys->elements > 0);
  for (size_t i = 0; i < keys->elements; i++) {
    redisReply *rep = redisCommand(c, "PTTL %b", keys->element[i]->str, keys->element[i]->len);
    if (rep->integer <= 0) fail_msg("%s has no TTL (%lld)", keys->element[i]->str, rep->integer);
    freeReplyObject(rep);
  }
  freeReplyObject(keys);
  redisFree(c);
}

/* Every key the store writes expires (its TTL only reclaims memory), from
 * its first write on: adds in begin and in commit, at new buckets, old ones
 * and ones behind the newest, and suspensions. */
static void test_redis_every_key_expires(void **state) {
  (void)state;
  char prefix[64];
  static const int64_t times[] = {0, 1, 30, 5, 61, 200, 150, 400, 399, 1000};
  for (int commit_first = 0; commit_first < 2; commit_first++) {
    fresh_prefix(prefix, sizeof prefix);
    store *s = open_redis(prefix, PATIENT);
    store_session *ss = session(s);
    for (size_t i = 0; i < sizeof times / sizeof *times; i++) {
      int64_t t = T0 + times[i] * SEC;
      store_counter_op ops[3] = {sum_op("e/c/60000000000", "k", MIN, 1),
                                 distinct_op("e/d/60000000000", "k", MIN, "m", 1),
                                 sum_op("f/c/60000000000", "k", MIN, 5)};
      if (commit_first) commit_ok(ss, t, ops, 3, NULL, 0);
      begin_ok(ss, t, ops, 3, NULL, 0); /* also reads the commit's reply */
      if (!commit_first) commit_ok(ss, t, ops, 3, NULL, 0);
      suspend(ss, "r", "k", 1, t, t + SEC);
      (void)sum_at(ss, "f/c/60000000000", "k", MIN, t); /* the commit is applied */
      all_keys_expire(prefix);
    }
    store_close_session(ss);
    store_unref(s);
  }
}

/* A sum's hash keeps at most two windows and a stride of buckets (and four
 * fields of its own), however long a key lives and however it leaps. */
static void test_redis_hash_bounded(void **state) {
  (void)state;
  char prefix[64];
  fresh_prefix(prefix, sizeof prefix);
  store *s = open_redis(prefix, PATIENT);
  store_session *ss = session(s);
  redisContext *c = raw_connect();
  for (int i = 0; i < 400; i++) {
    int64_t t = T0 + (i < 300 ? i : 300 + (i - 300) * 7) * SEC;
    store_counter_op op = sum_op("b/c/60000000000", "k", MIN, 1);
    begin_ok(ss, t, &op, 1, NULL, 0);
    redisReply *rep = redisCommand(c, "HLEN %sh:b/c/60000000000:k", prefix);
    if (rep->integer > 120 + 10 + 4) fail_msg("%lld fields after %d adds", rep->integer, i + 1);
    freeReplyObject(rep);
  }
  /* A leap of more than two windows leaves no old bucket behind. */
  add_at(ss, "b/c/60000000000", "j", MIN, T0, 1);
  add_at(ss, "b/c/60000000000", "j", MIN, T0 + 500 * SEC, 1);
  assert_int_equal(sum_at(ss, "b/c/60000000000", "j", MIN, T0 + 500 * SEC), 1);
  redisReply *rep = redisCommand(c, "HEXISTS %sh:b/c/60000000000:j %lld", prefix,
                                 (long long)store_bucket(T0, MIN));
  assert_int_equal(rep->integer, 0);
  freeReplyObject(rep);
  redisFree(c);
  store_close_session(ss);
  store_unref(s);
}

/* The server forgot the script (SCRIPT FLUSH): begin loads it again and
 * sends again what was refused, a queued commit included. */
static void test_redis_noscript(void **state) {
  (void)state;
  fixture f = open_fixture(REDIS);
  add_at(f.ss, "n/c/1", "k", MIN, T0, 1);
  assert_int_equal(sum_at(f.ss, "n/c/1", "k", MIN, T0), 1);
  raw_command("SCRIPT FLUSH");
  assert_int_equal(sum_at(f.ss, "n/c/1", "k", MIN, T0), 1);
  raw_command("SCRIPT FLUSH");
  add_at(f.ss, "n/c/1", "k", MIN, T0, 10); /* refused: NOSCRIPT */
  notices[0] = '\0';
  assert_int_equal(sum_at(f.ss, "n/c/1", "k", MIN, T0), 11);
  assert_string_equal(notices, "");
  close_fixture(&f);
}

/* A pipelined write that fails is a notice on the next begin, which
 * itself succeeds. */
static void test_redis_failed_write(void **state) {
  (void)state;
  char prefix[64];
  fresh_prefix(prefix, sizeof prefix);
  store *s = open_redis(prefix, PATIENT);
  store_session *ss = session(s);
  raw_command("HSET %sh:f/c/1:k nb %lld nv not-a-number", prefix, (long long)store_bucket(T0, MIN));
  add_at(ss, "f/c/1", "k", MIN, T0, 1);
  notices[0] = '\0';
  store_counter_op op = sum_op("g/c/1", "k", MIN, 1);
  begin_ok(ss, T0, &op, 1, NULL, 0);
  assert_int_equal(op.value, 1);
  assert_non_null(strstr(notices, "a pipelined write failed"));
  assert_non_null(strstr(notices, "not an integer"));
  store_close_session(ss);
  store_unref(s);
}

/* Two processes with a store each see one counter. */
static void test_redis_two_processes(void **state) {
  (void)state;
  char prefix[64];
  fresh_prefix(prefix, sizeof prefix);
  fflush(NULL);
  pid_t child = fork();
  assert_true(child >= 0);
  /* Each process: its own store, its own connection, 200 requests. */
  char url[256], err[256];
  snprintf(url, sizeof url, "redis://127.0.0.1:%d?prefix=%s&timeout_ms=1000", redis_port(),
           prefix);
  store *mine = store_open(url, err, sizeof err);
  store_session *ss = mine ? store_open_session(mine, err, sizeof err) : NULL;
  int failed = !ss;
  for (int i = 0; i < 200 && !failed; i++) {
    store_counter_op op = sum_op("shared/c/1", "k", MIN, 1);
    store_report r = report();
    failed = store_begin(ss, T0 + i, &op, 1, NULL, 0, &r) != 0;
  }
  store_close_session(ss);
  store_unref(mine);
  if (child == 0) _exit(failed);
  int status;
  assert_int_equal(waitpid(child, &status, 0), child);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  assert_false(failed);
  fixture f;
  f.st = open_redis(prefix, PATIENT);
  f.ss = session(f.st);
  assert_int_equal(sum_at(f.ss, "shared/c/1", "k", MIN, T0 + 200), 400);
  close_fixture(&f);
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static pid_t server_pid(void) {
  char path[512];
  snprintf(path, sizeof path, "%s/pid", redis_env("REDIS_DIR"));
  FILE *f = fopen(path, "r");
  if (!f) fail_msg("cannot read %s", path);
  long pid = 0;
  if (fscanf(f, "%ld", &pid) != 1 || pid <= 1) fail_msg("no pid in %s", path);
  fclose(f);
  return (pid_t)pid;
}

static void restart_server(void) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "'%s' start '%s' %d >/dev/null", redis_env("REDIS_CTL"),
           redis_env("REDIS_DIR"), redis_port());
  if (system(cmd) != 0) fail_msg("could not restart redis-server: %s", cmd);
}

/* A begin that fails: returns the seconds it took and its message. */
static double failing_begin(store_session *ss, char *msg, size_t cap) {
  store_counter_op op = sum_op("k/c/1", "k", MIN, 1);
  store_report r = report();
  double t = now_seconds();
  int rc = store_begin(ss, T0, &op, 1, NULL, 0, &r);
  t = now_seconds() - t;
  if (rc != -1) fail_msg("store_begin succeeded while the server is down");
  snprintf(msg, cap, "%s", r.message);
  return t;
}

/* Connects a session with a short timeout, retrying while the machine is
 * too busy to connect in time. */
static void warm_up(store_session *ss) {
  store_counter_op op = sum_op("warm/c/1", "k", MIN, 0);
  for (int i = 0; i < 100; i++) {
    store_report r = report();
    if (store_begin(ss, T0, &op, 1, NULL, 0, &r) == 0) return;
    usleep(30000);
  }
  fail_msg("the session could not connect");
}

/* A server that stops answering: begin gives up at the timeout. */
static void test_redis_timeout(void **state) {
  (void)state;
  char prefix[64];
  fresh_prefix(prefix, sizeof prefix);
  fixture f;
  f.st = open_redis(prefix, ""); /* the default timeout, 50 ms */
  f.ss = session(f.st);
  warm_up(f.ss);
  pid_t pid = server_pid();
  assert_int_equal(kill(pid, SIGSTOP), 0);
  char msg[256];
  double took = failing_begin(f.ss, msg, sizeof msg);
  kill(pid, SIGCONT);
  if (took < 0.045 || took > 0.5) fail_msg("the timed-out begin took %.3f s", took);
  assert_non_null(strstr(msg, "timed out after 50 ms"));
  /* The connection was dropped (a late reply would be out of step); after
   * the backoff the session connects again. */
  usleep(20000);
  warm_up(f.ss);
  close_fixture(&f);
}

/* The server dies mid-run: begin and commit fail within the timeout with a
 * message, then at once while backing off, and the session reconnects once
 * the server is back on its port. */
static void test_redis_dies_and_returns(void **state) {
  (void)state;
  char prefix[64], expect[64], msg[256];
  fresh_prefix(prefix, sizeof prefix);
  /* The failures come at once, with no wait for the timeout (the timeout
   * has its own case): a patient session keeps a busy machine from
   * failing the requests before the kill. */
  store *s = open_redis(prefix, "&timeout_ms=1000");
  store_session *ss = session(s);
  add_at(ss, "d/c/1", "k", MIN, T0, 1);
  assert_int_equal(sum_at(ss, "d/c/1", "k", MIN, T0), 1);
  add_at(ss, "d/c/1", "k", MIN, T0, 1); /* pending when the server dies */

  pid_t pid = server_pid();
  assert_int_equal(kill(pid, SIGKILL), 0);
  usleep(50000); /* let the kernel close its sockets */
  double took = failing_begin(ss, msg, sizeof msg);
  double failed_at = now_seconds();
  snprintf(expect, sizeof expect, "redis 127.0.0.1:%d: ", redis_port());
  if (strncmp(msg, expect, strlen(expect)) != 0) fail_msg("message: %s", msg);
  assert_true(took < 0.5);
  assert_null(strstr(msg, "Connection refused")); /* the connection broke */

  /* Backing off (10 ms after a first failure): no attempt, which would say
   * "Connection refused", but the same message at once. A machine too busy
   * to get here within the 10 ms proves nothing either way. */
  char again[256];
  store_counter_op op = sum_op("d/c/1", "k", MIN, 1);
  store_report r = report();
  took = failing_begin(ss, again, sizeof again);
  int commit_rc = store_commit(ss, T0, &op, 1, NULL, 0, &r);
  if (now_seconds() - failed_at < 0.009) {
    assert_true(took < 0.005);
    assert_string_equal(again, msg);
    assert_int_equal(commit_rc, -1);
    assert_string_equal(r.message, msg);
  }

  /* After the backoff: a real attempt, refused. */
  usleep(30000);
  took = failing_begin(ss, msg, sizeof msg);
  assert_non_null(strstr(msg, "Connection refused"));
  assert_true(took < 0.5);
  /* A new session of the same store has no backoff of its own yet. */
  store_session *fresh = session(s);
  failing_begin(fresh, msg, sizeof msg);
  assert_non_null(strstr(msg, "Connection refused"));
  store_close_session(fresh);

  restart_server();
  /* Backoff is at most 1 s: within a few seconds the session is back. */
  double start = now_seconds();
  int64_t v = -1;
  while (now_seconds() - start < 3) {
    store_counter_op read = sum_op("d/c/1", "k", MIN, 0);
    store_report rr = report();
    if (store_begin(ss, T0, &read, 1, NULL, 0, &rr) == 0) {
      v = read.value;
      break;
    }
    usleep(5000);
  }
  assert_int_equal(v, 0); /* the restarted server keeps nothing (no persistence) */
  add_at(ss, "d/c/1", "k", MIN, T0, 2);
  assert_int_equal(sum_at(ss, "d/c/1", "k", MIN, T0), 2);
  store_close_session(ss);
  store_unref(s);
}

/* A database other than 0, and one the server does not have. */
static void test_redis_db(void **state) {
  (void)state;
  char url[256], err[256], prefix[64];
  fresh_prefix(prefix, sizeof prefix);
  snprintf(url, sizeof url, "redis://127.0.0.1:%d/3?prefix=%s", redis_port(), prefix);
  store *s = store_open(url, err, sizeof err);
  assert_non_null(s);
  store_session *ss = session(s);
  add_at(ss, "db/c/1", "k", MIN, T0, 1);
  assert_int_equal(sum_at(ss, "db/c/1", "k", MIN, T0), 1);
  store_close_session(ss);
  store_unref(s);
  redisContext *c = raw_connect();
  redisReply *rep = redisCommand(c, "SELECT 3");
  freeReplyObject(rep);
  rep = redisCommand(c, "EXISTS %sh:db/c/1:k", prefix);
  assert_int_equal(rep->integer, 1);
  freeReplyObject(rep);
  redisFree(c);

  snprintf(url, sizeof url, "redis://127.0.0.1:%d/999?prefix=%s", redis_port(), prefix);
  s = store_open(url, err, sizeof err);
  ss = session(s);
  char msg[256];
  failing_begin(ss, msg, sizeof msg);
  assert_non_null(strstr(msg, "SELECT 999"));
  store_close_session(ss);
  store_unref(s);
}

#define BOTH(fn) cmocka_unit_test_prestate(fn, (void *)MEMORY), \
                 cmocka_unit_test_prestate(fn, (void *)REDIS)

int main(void) {
  const struct CMUnitTest tests[] = {
    BOTH(test_sums_in_window),
    BOTH(test_bucket_boundaries),
    BOTH(test_time_backwards),
    BOTH(test_saturation),
    BOTH(test_distinct),
    BOTH(test_cached_readings),
    BOTH(test_same_counter_twice),
    BOTH(test_sums_random),
    BOTH(test_distinct_random),
    BOTH(test_suspension),
    BOTH(test_binary_keys),
    BOTH(test_isolation),
    BOTH(test_commit_then_begin),
    cmocka_unit_test(test_memory_max_keys),
    cmocka_unit_test(test_redis_urls),
    cmocka_unit_test(test_redis_keys),
    cmocka_unit_test(test_redis_every_key_expires),
    cmocka_unit_test(test_redis_hash_bounded),
    cmocka_unit_test(test_redis_noscript),
    cmocka_unit_test(test_redis_failed_write),
    cmocka_unit_test(test_redis_two_processes),
    cmocka_unit_test(test_redis_db),
    cmocka_unit_test(test_redis_timeout),
    cmocka_unit_test(test_redis_dies_and_returns),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
