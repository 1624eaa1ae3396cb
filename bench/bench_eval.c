/*
 * bench_eval.c - how fast a decision is: `make bench` runs
 *
 *   bench/bench_eval POLICY [TRAFFIC]
 *
 * with the seed policy (examples/seed/terms.clause); TRAFFIC defaults to
 * traffic.jsonl next to POLICY. It compiles the policy once, binds the
 * first 64 requests of the traffic each into a VM of its own (binding is
 * not measured), then times clause_vm_eval over those VMs round-robin:
 * several timed runs, the median reported. Then the same on two threads at
 * once (each with its own VMs), for throughput; then a single CEL
 * condition, the kind of expression one rule holds, on mixed inputs.
 *
 * The seed keeps counters in the (memory) state store, so its requests
 * are replayed as live traffic from many accounts: before each evaluation
 * account.id is set to one of N account ids drawn at random (uniformly;
 * each thread has its own accounts) and the @clock field (request.time)
 * moves 10,000 s / N forward, so that each account sends a request every
 * 10,000 s on average, about 9 a day, whatever N: most requests are
 * allowed, as in live traffic. The ids are laid out in the order they are
 * drawn, as a gateway has the id of the request it just read at hand; the
 * store's entries are reached in random order, as live traffic reaches
 * them (not in the order they were made, which the memory's prefetchers
 * would guess). Before the timed runs, two days of traffic time bring the
 * store to its steady state (the seed's longest window for reading is 24 h
 * and the memory store keeps two windows of buckets). N is 100,000 (the
 * store in main memory: each decision waits for it) and 1,000 (the store
 * in the caches). The setters are inside the timed loop (a gateway calls
 * them too); a string setter writes into the field's own buffer, so a VM
 * fed this way does not grow.
 *
 * Extern calls: with BENCH_EXTERN_PATH naming the folder of the test
 * library (tests/.libs/libclausetest.so; `make bench` builds it and sets
 * it), one-rule policies `deny when F(request.x) > 0.5` where F is nothing
 * (`request.x > 0.5`), a builtin (math.abs), a library extern (ext_half,
 * through libffi) and a host function; the extern's overhead is its time
 * minus the baseline's. For reference, a raw ffi_call of ext_half with a
 * prepared cif, and a direct call through a function pointer.
 *
 * Output: one line per figure, ready to paste into bench/RESULTS.md:
 *
 *   seed policy: median 183.2 ns/decision (5.46 M decisions/s/core), 7 runs
 *
 * BENCH_RUNS (default 7) and BENCH_SECONDS (default 1, per run) change the
 * effort; BENCH_ACCOUNTS adds a run with that number of live accounts. Times are CLOCK_MONOTONIC.
 *
 * One-thread figures run pinned to one CPU (BENCH_CPU, default the first
 * the process may use): the two vCPUs of the build machine are not alike
 * at times (the same loop took 1.6 times as long on one as on the other),
 * so an unpinned figure depends on where the scheduler put it. The
 * 2-thread figure runs unpinned.
 */
#define _GNU_SOURCE /* sched_getaffinity, pthread_setaffinity_np */
#include <clause.h>

#include <dlfcn.h>
#include <errno.h>
#include <ffi.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

#define MAX_REQUESTS 64
#define BATCH 4096 /* evaluations between two looks at the clock */

static int runs = 7;
static double run_seconds = 1.0;
static volatile unsigned sink; /* keeps the evaluations from being optimised away */


static void die(const char *fmt, const char *what, const char *detail) {
  fprintf(stderr, fmt, what, detail);
  fputc('\n', stderr);
  exit(2);
}

/* ---- a set of pre-bound requests -------------------------------------------------- */

#define CLOCK_START_NS (1725271200LL * 1000000000) /* 2024-09-02T10:00:00Z */
#define ACCOUNT_PERIOD_NS (10000LL * 1000000000)    /* between two requests of an account */
#define WARM_TRAFFIC_NS (2 * 86400LL * 1000000000)  /* two days: the store's steady state */
#define STREAM (1 << 20)                            /* account ids drawn ahead, in order */
#define ID_SIZE 24

typedef struct vm_set {
  clause_vm *vm[MAX_REQUESTS];
  char *const *requests;  /* each VM's request, to bind it again */
  int n;
  int clock_field;        /* request.time, or -1: the clock is not moved */
  int account_field;      /* account.id, or -1 */
  int64_t now_ns;         /* the simulated clock */
  int64_t step_ns;        /* its move per request */
  char (*stream)[ID_SIZE]; /* account ids in the order they come, or NULL */
  uint8_t *stream_len;
  int next;               /* in stream */
} vm_set;

static void bind_all(vm_set *s) {
  for (int i = 0; i < s->n; i++) {
    clause_error err;
    if (clause_vm_set_json(s->vm[i], s->requests[i], strlen(s->requests[i]), &err) != CLAUSE_OK)
      die("request does not bind: %s%s", err.message, "");
  }
}

/* One VM per request, each bound once. With `accounts` > 0 and a policy
 * with request.time and account.id, live traffic from that many accounts;
 * `tag` makes their ids (and seeds their draw). */
static void bind_set(vm_set *s, const clause_program *p, char *const *requests, int n, int accounts, int tag) {
  s->n = n;
  s->requests = requests;
  s->clock_field = clause_field_index(p, "request.time");
  s->account_field = clause_field_index(p, "account.id");
  s->now_ns = CLOCK_START_NS;
  s->step_ns = accounts > 0 ? ACCOUNT_PERIOD_NS / accounts : 0;
  s->stream = NULL;
  s->stream_len = NULL;
  s->next = 0;
  if (accounts > 0 && s->clock_field >= 0 && s->account_field >= 0) {
    s->stream = malloc((size_t)STREAM * sizeof *s->stream);
    s->stream_len = malloc(STREAM);
    if (!s->stream || !s->stream_len) die("%s%s", "out of memory", "");
    uint64_t x = 0x9e3779b97f4a7c15ull * (uint64_t)(tag + 1); /* xorshift64 */
    for (int i = 0; i < STREAM; i++) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      int len = snprintf(s->stream[i], ID_SIZE, "acct_t%d_%06d", tag, (int)(x % (uint64_t)accounts));
      s->stream_len[i] = (uint8_t)len;
    }
  }
  for (int i = 0; i < n; i++) {
    s->vm[i] = clause_vm_new(p);
    if (!s->vm[i]) die("%s%s", "out of memory", "");
  }
  bind_all(s);
}

static void free_set(vm_set *s) {
  for (int i = 0; i < s->n; i++) clause_vm_free(s->vm[i]);
  free(s->stream);
  free(s->stream_len);
}

/* Evaluates round-robin for about `seconds`; returns ns per evaluation. */
static double timed_run(vm_set *s, double seconds, long *count_out) {
  unsigned acc = 0;
  long count = 0;
  clause_decision d;
  double elapsed = 0;
  do {
    double start = now_seconds();
    for (int b = 0; b < BATCH; b += s->n)
      for (int i = 0; i < s->n; i++) {
        if (s->stream) { /* live traffic: the clock moves, accounts vary */
          clause_vm_set_timestamp(s->vm[i], s->clock_field, s->now_ns += s->step_ns);
          clause_vm_set_string(s->vm[i], s->account_field, s->stream[s->next], s->stream_len[s->next]);
          s->next = (s->next + 1) & (STREAM - 1);
        }
        clause_vm_eval(s->vm[i], &d);
        acc += (unsigned)d.effect + (unsigned)d.n_flags;
      }
    count += (BATCH + s->n - 1) / s->n * s->n;
    elapsed += now_seconds() - start;
  } while (elapsed < seconds);
  sink += acc;
  if (count_out) *count_out = count;
  return elapsed * 1e9 / (double)count;
}

/* Warms up: scratch space grows to its size, and live traffic runs until
 * the store holds its steady state. */
static void warm_up(vm_set *s) {
  timed_run(s, run_seconds / 4, NULL);
  while (s->stream && s->now_ns - CLOCK_START_NS < WARM_TRAFFIC_NS) timed_run(s, 0.1, NULL);
}

/* Warms up, then `runs` timed runs; returns the median ns per evaluation. */
static double measure(vm_set *s) {
  double ns[64];
  int n = runs < 64 ? runs : 64;
  warm_up(s);
  for (int r = 0; r < n; r++) ns[r] = timed_run(s, run_seconds, NULL);
  return median(ns, n);
}

/* ---- two threads at once ------------------------------------------------------------ */

typedef struct thread_job {
  pthread_t thread;
  const clause_program *p;
  char *const *requests;
  int nrequests, accounts;
  pthread_barrier_t *ready;
  int id;
  double ns[64];          /* per run */
  double per_second[64];  /* per run */
} thread_job;

static void *thread_bench(void *arg) {
  thread_job *j = arg;
  vm_set s;
  bind_set(&s, j->p, j->requests, j->nrequests, j->accounts, j->id + 1); /* accounts of its own */
  warm_up(&s);
  for (int r = 0; r < runs && r < 64; r++) {
    pthread_barrier_wait(j->ready); /* both threads start each run together */
    long count;
    j->ns[r] = timed_run(&s, run_seconds, &count);
    j->per_second[r] = 1e9 / j->ns[r];
  }
  free_set(&s);
  return NULL;
}

/* Returns the median total decisions per second; *ns_out gets the median
 * ns per decision seen by one thread. */
static double measure_threads(const clause_program *p, char *const *requests, int n, int accounts,
                              int nthreads, double *ns_out) {
  thread_job jobs[8];
  pthread_barrier_t ready;
  pthread_barrier_init(&ready, NULL, (unsigned)nthreads);
  for (int t = 0; t < nthreads; t++) {
    jobs[t] = (thread_job){.p = p, .requests = requests, .nrequests = n, .accounts = accounts, .ready = &ready, .id = t};
    if (pthread_create(&jobs[t].thread, NULL, thread_bench, &jobs[t]) != 0)
      die("%s%s", "cannot start a thread", "");
  }
  for (int t = 0; t < nthreads; t++) pthread_join(jobs[t].thread, NULL);
  pthread_barrier_destroy(&ready);
  int nr = runs < 64 ? runs : 64;
  double total[64], ns[64 * 8];
  int nns = 0;
  for (int r = 0; r < nr; r++) {
    total[r] = 0;
    for (int t = 0; t < nthreads; t++) {
      total[r] += jobs[t].per_second[r];
      ns[nns++] = jobs[t].ns[r];
    }
  }
  *ns_out = median(ns, nns);
  return median(total, nr);
}

/* ---- inputs ----------------------------------------------------------------------------- */

static int read_requests(const char *path, char **requests, int max) {
  FILE *f = fopen(path, "r");
  if (!f) die("cannot read %s: %s", path, strerror(errno));
  char line[65536];
  int n = 0;
  while (n < max && fgets(line, sizeof line, f)) {
    line[strcspn(line, "\r\n")] = '\0';
    if (line[0] != '{') continue;
    requests[n] = strdup(line);
    if (!requests[n]) die("%s%s", "out of memory", "");
    n++;
  }
  fclose(f);
  return n;
}

/* The CEL condition benchmark's policy: one rule holding the expression. */
static const char cel_policy[] =
    "input {\n"
    "  request.tier    string\n"
    "  request.tokens  int\n"
    "  request.purpose string\n"
    "}\n"
    "rule \"cel\" {\n"
    "  deny when request.tier == \"free\" && request.tokens > 1000\n"
    "            && request.purpose in [\"training\", \"distillation\"]\n"
    "}\n";

/* Mixed inputs: true, and false at each of the three conjuncts. */
static char *cel_requests[] = {
    "{\"request\": {\"tier\": \"free\", \"tokens\": 5000, \"purpose\": \"distillation\"}}",
    "{\"request\": {\"tier\": \"pro\", \"tokens\": 5000, \"purpose\": \"distillation\"}}",
    "{\"request\": {\"tier\": \"free\", \"tokens\": 10, \"purpose\": \"training\"}}",
    "{\"request\": {\"tier\": \"free\", \"tokens\": 2000, \"purpose\": \"chat\"}}",
    "{\"request\": {\"tier\": \"free\", \"tokens\": 1001, \"purpose\": \"training\"}}",
    "{\"request\": {\"tier\": \"enterprise\", \"tokens\": 0, \"purpose\": \"search\"}}",
    "{\"request\": {\"tier\": \"free\", \"tokens\": 999999, \"purpose\": \"summaries\"}}",
    "{\"request\": {\"tier\": \"tier-1\", \"tokens\": 1500, \"purpose\": \"training\"}}",
};

static clause_program *compile_or_die(const char *path, const clause_options *opts) {
  clause_error err;
  clause_program *p = clause_compile_file(path, opts, &err);
  if (!p) {
    fprintf(stderr, "%s:%d:%d: %s\n", err.file[0] ? err.file : path, err.line, err.column, err.message);
    exit(2);
  }
  return p;
}

/* Compiles policy text (through a temporary file). */
static clause_program *compile_text(const char *text, const clause_options *opts) {
  char path[] = "/tmp/clause-bench-XXXXXX.clause";
  int fd = mkstemps(path, 7);
  if (fd < 0) die("cannot create %s: %s", path, strerror(errno));
  size_t n = strlen(text);
  if (write(fd, text, n) != (ssize_t)n) die("cannot write %s: %s", path, strerror(errno));
  close(fd);
  clause_program *p = compile_or_die(path, opts);
  unlink(path);
  return p;
}

/* ---- extern calls ------------------------------------------------------------------------ */

/* The host function twin of ext_half. */
static void host_half(clause_call_ctx *ctx, const clause_value *args, size_t nargs, clause_value *result) {
  (void)ctx;
  (void)nargs;
  result->d = args[0].d / 2;
}

static char *extern_requests[] = {
    "{\"request\": {\"x\": 0.25}}", "{\"request\": {\"x\": 1.5}}",  "{\"request\": {\"x\": 3.0}}",
    "{\"request\": {\"x\": 0.75}}", "{\"request\": {\"x\": -2.0}}", "{\"request\": {\"x\": 1.01}}",
    "{\"request\": {\"x\": 0.0}}",  "{\"request\": {\"x\": 9.5}}",
};

/* ns per evaluation of a one-rule policy whose condition is `cond`. */
static double measure_condition(const char *decl, const char *cond, const clause_options *opts) {
  char text[1024];
  snprintf(text, sizeof text, "input {\n  request.x double\n}\n%s\nrule \"r\" {\n  deny when %s > 0.5\n}\n", decl,
           cond);
  clause_program *p = compile_text(text, opts);
  vm_set s;
  bind_set(&s, p, extern_requests, (int)(sizeof extern_requests / sizeof extern_requests[0]), 0, 0);
  double ns = measure(&s);
  free_set(&s);
  clause_program_free(p);
  return ns;
}

/* ns per call of `fn` through ffi_call with a prepared cif, or directly. */
static double measure_raw(double (*fn)(double), bool through_ffi) {
  ffi_cif cif;
  ffi_type *args[1] = {&ffi_type_double};
  if (ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 1, &ffi_type_double, args) != FFI_OK) die("%s%s", "ffi_prep_cif failed", "");
  double samples[64], acc = 0;
  int n = runs < 64 ? runs : 64;
  for (int r = -1; r < n; r++) { /* r = -1: warm-up */
    long count = 0;
    double start = now_seconds(), elapsed;
    do {
      for (int i = 0; i < BATCH; i++) {
        double x = (double)(i & 7), out;
        void *values[1] = {&x};
        if (through_ffi) ffi_call(&cif, (void (*)(void))fn, &out, values);
        else out = fn(x); /* from dlsym: never inlined */
        acc += out;
      }
      count += BATCH;
      elapsed = now_seconds() - start;
    } while (elapsed < (r < 0 ? run_seconds / 4 : run_seconds));
    if (r >= 0) samples[r] = elapsed * 1e9 / (double)count;
  }
  sink += (unsigned)acc;
  return median(samples, n);
}

static void bench_externs(const char *dir) {
  char lib[4096];
  snprintf(lib, sizeof lib, "%s/libclausetest.so", dir);
  void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
  if (!h) die("cannot open %s: %s", lib, dlerror());
  void *sym = dlsym(h, "ext_half");
  if (!sym) die("%s has no ext_half%s", lib, "");
  double (*half)(double);
  memcpy(&half, &sym, sizeof half);

  clause_options *o = clause_options_new();
  static const clause_type T_DOUBLE[] = {CLAUSE_TYPE_DOUBLE};
  if (!o || clause_options_set_extern_path(o, dir) != CLAUSE_OK ||
      clause_options_add_function(o, "host_half", T_DOUBLE, 1, CLAUSE_TYPE_DOUBLE, host_half, NULL, NULL, 0) !=
          CLAUSE_OK)
    die("%s%s", "cannot set the options", "");
  double base = measure_condition("", "request.x", o);
  double builtin = measure_condition("", "math.abs(request.x)", o);
  double ext = measure_condition("extern fn half(x: double) -> double from \"libclausetest.so\" symbol \"ext_half\"",
                                 "half(request.x)", o);
  double host = measure_condition("extern fn host_half(x: double) -> double", "host_half(request.x)", o);
  double raw_ffi = measure_raw(half, true), direct = measure_raw(half, false);
  printf("extern call (deny when F(request.x) > 0.5): no call %.1f ns/evaluation, builtin math.abs %.1f "
         "(+%.1f), libffi extern %.1f (+%.1f), host function %.1f (+%.1f), %d runs\n",
         base, builtin, builtin - base, ext, ext - base, host, host - base, runs);
  printf("extern call reference: raw ffi_call %.1f ns/call, direct call %.1f ns/call; extern overhead / raw "
         "ffi_call = %.2f\n",
         raw_ffi, direct, (ext - base) / raw_ffi);
  clause_options_free(o);
  dlclose(h);
}

/* The CPUs the process may use, and the one the one-thread figures use. */
static cpu_set_t all_cpus;
static int bench_cpu = -1;

static void pin(bool one) {
  if (bench_cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(bench_cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, one ? &set : &all_cpus);
}

static void choose_cpu(void) {
  if (sched_getaffinity(0, sizeof all_cpus, &all_cpus) != 0) return;
  int want = getenv("BENCH_CPU") ? atoi(getenv("BENCH_CPU")) : -1;
  for (int c = 0; c < CPU_SETSIZE && bench_cpu < 0; c++)
    if (CPU_ISSET(c, &all_cpus) && (want < 0 || c == want)) bench_cpu = c;
}

int main(int argc, char **argv) {
  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: %s POLICY [TRAFFIC.jsonl]\n", argv[0]);
    return 2;
  }
  if (getenv("BENCH_RUNS")) runs = atoi(getenv("BENCH_RUNS"));
  if (getenv("BENCH_SECONDS")) run_seconds = atof(getenv("BENCH_SECONDS"));
  if (runs < 1) runs = 1;
  if (runs > 64) runs = 64;
  if (run_seconds <= 0) run_seconds = 1.0;
  int accounts[3] = {100000, 1000, 0};
  if (getenv("BENCH_ACCOUNTS") && atoi(getenv("BENCH_ACCOUNTS")) > 0) accounts[2] = atoi(getenv("BENCH_ACCOUNTS"));

  char traffic[4096];
  if (argc == 3) {
    snprintf(traffic, sizeof traffic, "%s", argv[2]);
  } else {
    const char *slash = strrchr(argv[1], '/');
    int dir = slash ? (int)(slash - argv[1]) + 1 : 0;
    snprintf(traffic, sizeof traffic, "%.*straffic.jsonl", dir, argv[1]);
  }

  /* The seed policy on pre-bound requests, as live traffic from N
   * accounts; each N with a program (and so a memory store) of its own. */
  char *requests[MAX_REQUESTS];
  int n = read_requests(traffic, requests, MAX_REQUESTS);
  if (n == 0) die("no requests in %s%s", traffic, "");
  choose_cpu();
  printf("bench_eval: %s, %d requests of %s pre-bound, %d runs of %.1f s, one-thread figures on CPU %d\n",
         argv[1], n, traffic, runs, run_seconds, bench_cpu);
  pin(true);
  fflush(stdout);
  vm_set s;
  for (int k = 0; k < 3; k++) {
    if (!accounts[k]) continue;
    clause_program *p = compile_or_die(argv[1], NULL);
    bind_set(&s, p, requests, n, accounts[k], 0);
    double ns = measure(&s);
    printf("seed policy (with its counters, memory store), %d live accounts: median %.1f ns/decision "
           "(%.2f M decisions/s/core), %d runs\n",
           accounts[k], ns, 1e3 / ns, runs);
    fflush(stdout);
    free_set(&s);
    clause_program_free(p);
  }

  pin(false);
  clause_program *p = compile_or_die(argv[1], NULL);
  double ns_thread;
  double total = measure_threads(p, requests, n, accounts[0], 2, &ns_thread);
  printf("seed policy (with its counters, memory store), %d live accounts, 2 threads: median %.2f M decisions/s in all "
         "(%.1f ns/decision per thread), %d runs\n",
         accounts[0], total / 1e6, ns_thread, runs);
  fflush(stdout);
  clause_program_free(p);
  for (int i = 0; i < n; i++) free(requests[i]);

  pin(true);
  /* One CEL condition, through the same VM path. */
  clause_program *cel = compile_text(cel_policy, NULL);
  int ncel = (int)(sizeof cel_requests / sizeof cel_requests[0]);
  bind_set(&s, cel, cel_requests, ncel, 0, 0);
  double ns = measure(&s);
  printf("CEL condition (tier == \"free\" && tokens > 1000 && purpose in [...]): median %.1f "
         "ns/evaluation (%.2f M evaluations/s/core), %d runs\n",
         ns, 1e3 / ns, runs);
  free_set(&s);
  clause_program_free(cel);

  const char *extern_path = getenv("BENCH_EXTERN_PATH");
  if (extern_path && *extern_path) bench_externs(extern_path);
  else printf("extern calls: skipped (set BENCH_EXTERN_PATH to the folder of libclausetest.so)\n");
  return 0;
}
