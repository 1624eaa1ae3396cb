/*
 * bench_store.c - what a request's state costs: `make bench` runs
 *
 *   tests/redis_server.sh run bench/bench_store
 *
 * against a throwaway local redis-server (REDIS_PORT). One typical request
 * is what a rate-limited API with abuse detection asks of the store:
 *
 *   begin   rpm (sum, adds 1), ips (distinct, adds the client's address),
 *           tokens (sum with `on`: read only), a suspension lookup
 *   commit  tokens += the request's tokens (its effect decided)
 *
 * over 1000 API keys and 5000 client addresses, with traffic time moving
 * 1 ms per request (buckets and windows roll). Figures, each the median of
 * BENCH_RUNS (default 5) runs of BENCH_SECONDS (default 1):
 *
 *   the raw PING round trip on one connection (the floor for any store
 *   call that waits), begin+commit on one Redis session, begin alone, and
 *   begin+commit on the memory store for comparison.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "store.h"

#include "bench_util.h"

#define SEC 1000000000ll
#define T0 (1700000000 * SEC)

static int runs = 5;
static double run_seconds = 1.0;


static void die(const char *msg, const char *detail) {
  fprintf(stderr, "bench_store: %s%s\n", msg, detail);
  exit(2);
}

/* ---- PING ------------------------------------------------------------------------------ */

static double ping_run(redisContext *c, double seconds) {
  long n = 0;
  double start = now_seconds(), elapsed;
  do {
    for (int i = 0; i < 256; i++) {
      redisReply *r = redisCommand(c, "PING");
      if (!r) die("PING failed: ", c->errstr);
      freeReplyObject(r);
    }
    n += 256;
    elapsed = now_seconds() - start;
  } while (elapsed < seconds);
  return elapsed * 1e9 / (double)n;
}

/* ---- one typical request --------------------------------------------------------------- */

typedef struct bench_req {
  char key[32], ip[32];
  int64_t tokens;
} bench_req;

static long seq; /* requests so far: picks the key, the address and the time */

static void next_request(bench_req *q) {
  unsigned long x = (unsigned long)seq * 2654435761u;
  snprintf(q->key, sizeof q->key, "key-%lu", x % 1000);
  snprintf(q->ip, sizeof q->ip, "10.0.%lu.%lu", (x >> 8) % 20, (x >> 16) % 250);
  q->tokens = (int64_t)(x % 4000);
}

/* One request; with `commit` also the post-decision write. */
static void one_request(store_session *ss, bool commit) {
  bench_req q;
  next_request(&q);
  int64_t now = T0 + seq * 1000000;
  seq++;
  size_t kl = strlen(q.key);
  store_counter_op ops[3] = {
    {.id = "rpm/c/60000000000", .key = q.key, .key_len = kl, .window_ns = 60 * SEC,
     .mode = STORE_SUM, .add = true, .amount = 1},
    {.id = "ips/d/3600000000000", .key = q.key, .key_len = kl, .window_ns = 3600 * SEC,
     .mode = STORE_DISTINCT, .add = true, .member = q.ip, .member_len = strlen(q.ip)},
    {.id = "tokens/c/86400000000000", .key = q.key, .key_len = kl, .window_ns = 86400 * SEC,
     .mode = STORE_SUM},
  };
  store_suspend_op susp = {.rule = "three-strikes", .key = q.key, .key_len = kl};
  store_report r = {0};
  if (store_begin(ss, now, ops, 3, &susp, 1, &r) != 0) die("begin failed: ", r.message);
  if (!commit) return;
  store_counter_op add = ops[2];
  add.add = true;
  add.amount = q.tokens;
  if (store_commit(ss, now, &add, 1, NULL, 0, &r) != 0) die("commit failed: ", r.message);
}

static double request_run(store_session *ss, bool commit, double seconds) {
  long n = 0;
  double start = now_seconds(), elapsed;
  do {
    for (int i = 0; i < 64; i++) one_request(ss, commit);
    n += 64;
    elapsed = now_seconds() - start;
  } while (elapsed < seconds);
  return elapsed * 1e9 / (double)n;
}

static double measure_requests(store_session *ss, bool commit) {
  double ns[64];
  int n = runs < 64 ? runs : 64;
  request_run(ss, commit, run_seconds / 4);
  for (int i = 0; i < n; i++) ns[i] = request_run(ss, commit, run_seconds);
  return median(ns, n);
}

/* The server's own time per EVALSHA since the last reset (INFO
 * commandstats): what the script costs, apart from the round trip. */
static double server_us_per_evalsha(redisContext *c, bool reset) {
  redisReply *r = redisCommand(c, reset ? "CONFIG RESETSTAT" : "INFO commandstats");
  if (!r) die("INFO failed: ", c->errstr);
  double us = 0;
  const char *p = r->type == REDIS_REPLY_STRING ? strstr(r->str, "cmdstat_evalsha:") : NULL;
  if (p && (p = strstr(p, "usec_per_call="))) us = atof(p + 14);
  freeReplyObject(r);
  return us;
}

static store_session *open_session(const char *url, store **out) {
  char err[256];
  store *s = store_open(url, err, sizeof err);
  if (!s) die("store_open: ", err);
  store_session *ss = store_open_session(s, err, sizeof err);
  if (!ss) die("store_open_session: ", err);
  *out = s;
  return ss;
}

int main(void) {
  const char *v = getenv("BENCH_RUNS");
  if (v && atoi(v) > 0) runs = atoi(v);
  v = getenv("BENCH_SECONDS");
  if (v && atof(v) > 0) run_seconds = atof(v);
  const char *port = getenv("REDIS_PORT");
  if (!port || !*port) die("REDIS_PORT is not set: run through tests/redis_server.sh run", "");

  struct timeval tv = {1, 0};
  redisContext *c = redisConnectWithTimeout("127.0.0.1", atoi(port), tv);
  if (!c || c->err) die("cannot connect: ", c ? c->errstr : "out of memory");
  double ping[64];
  int n = runs < 64 ? runs : 64;
  ping_run(c, run_seconds / 4);
  for (int i = 0; i < n; i++) ping[i] = ping_run(c, run_seconds);
  double ping_ns = median(ping, n);
  server_us_per_evalsha(c, true);
  printf("redis PING round trip: median %.1f us (%.0f round trips/s), %d runs\n", ping_ns / 1e3,
         1e9 / ping_ns, n);

  /* Each measurement starts from an empty store (a prefix of its own; the
   * keys expire with their windows) and the same requests, so that they
   * compare: the state grows alike during each. */
  char url[256];
  snprintf(url, sizeof url, "redis://127.0.0.1:%s?prefix=bench:%ld:1:&timeout_ms=1000", port,
           (long)time(NULL));
  store *s;
  store_session *ss = open_session(url, &s);
  seq = 0;
  double full = measure_requests(ss, true);
  double full_us = server_us_per_evalsha(c, false);
  printf("redis begin+commit (2 sums, 1 distinct, 1 suspension): median %.1f us/request "
         "(%.0f requests/s on one connection, %.2f PING round trips)\n",
         full / 1e3, 1e9 / full, full / ping_ns);
  store_close_session(ss);
  store_unref(s);
  snprintf(url, sizeof url, "redis://127.0.0.1:%s?prefix=bench:%ld:2:&timeout_ms=1000", port,
           (long)time(NULL));
  ss = open_session(url, &s);
  server_us_per_evalsha(c, true);
  seq = 0;
  double begin = measure_requests(ss, false);
  double begin_us = server_us_per_evalsha(c, false);
  printf("redis begin alone: median %.1f us/request (%.0f requests/s)\n", begin / 1e3,
         1e9 / begin);
  printf("redis server time per EVALSHA: %.1f us for a begin alone, %.1f us averaged over "
         "begins and commits\n", begin_us, full_us);
  redisFree(c);
  store_close_session(ss);
  store_unref(s);

  ss = open_session("memory", &s);
  seq = 0;
  double mem = measure_requests(ss, true);
  printf("memory begin+commit (same requests): median %.0f ns/request (%.2f M requests/s)\n", mem,
         1e3 / mem);
  store_close_session(ss);
  store_unref(s);
  return 0;
}
