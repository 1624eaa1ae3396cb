/*
 * cmd_check.c - `clause check POLICY --traffic FILE`: decides every request
 * of a JSON-lines traffic file (SPEC section 8) and prints the decisions
 * (jsonl) or what a person needs (text: the requests that are not allowed,
 * then a summary per effect and per rule).
 *
 * The traffic is read in batches (traffic.h). With --jobs N a batch is cut
 * into N contiguous ranges, evaluated at once by N threads that share the
 * program (each with its own VM), and the ranges' outputs are written in
 * order: the output is byte for byte the one of a single thread. Per-line
 * work allocates nothing once the buffers have grown.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../vm/json.h"
#include "../vm/vm.h"
#include "cli.h"
#include "explain.h"
#include "traffic.h"

static int run_check(int argc, char **argv);

const cli_command cmd_check = {
    "check",
    "clause check POLICY|PROGRAM.clb --traffic FILE|- [--format text|jsonl] [--expect] [--fail-on EFFECT] "
    "[--explain] [--jobs N] [--lib-path DIRS] [--extern-path DIRS] [--store URL]",
    "Decides every request of a traffic file: JSON lines, one request object a\n"
    "line (gzip-compressed files are read as they are; `-` is standard input).\n"
    "Invalid lines are reported on stderr as FILE:LINE: and get no decision.\n"
    "\n"
    "  --traffic FILE        the requests, one JSON object a line\n"
    "  --format text|jsonl   text (default): the requests that are not allowed,\n"
    "                        then counts per effect and per rule; jsonl: every\n"
    "                        decision as JSON with a leading \"line\" key\n"
    "  --expect              compare each decision with the line's \"@expect\"\n"
    "                        (\"EFFECT\" or \"EFFECT:RULE-ID\") and report mismatches\n"
    "  --fail-on EFFECT      exit 1 if a decision is EFFECT or more severe\n"
    "                        (allow, throttle, deny, suspend), or with `flag`,\n"
    "                        if a decision has a flag\n"
    "  --explain             show why the reported requests were decided so\n"
    "  --jobs N              evaluate on N threads (same output as one)\n"
    "  --lib-path DIRS       extra folders for `import` modules\n"
    "  --extern-path DIRS    allowed folders for extern libraries\n"
    "  --store URL           state store: memory (default)\n"
    "\n"
    "Exit status: 0 success; 1 an expectation failed or --fail-on matched;\n"
    "2 usage, compile, load or read error; 3 invalid lines (and nothing worse).\n",
    run_check};

/* Lines per thread and batch: large enough that the threads' meeting
 * once per batch costs nothing, small enough to keep output flowing. */
#define LINES_PER_JOB 8192
#define MAX_JOBS 256
#define FAIL_ON_FLAG 4

typedef enum check_format { FORMAT_TEXT, FORMAT_JSONL } check_format;

/* What every worker reads; fixed before the first batch. */
typedef struct check_config {
  const clause_program *p;
  const char *traffic;        /* name for messages */
  check_format format;
  bool expect, explain, color;
  int fail_on;                /* clause_effect, FAIL_ON_FLAG, or -1 */
  char *plain_json[4];        /* per effect: the JSON of a decision with no
                                 rule, flags, obligations or errors (the
                                 default's), written once and copied */
  size_t plain_len[4];
  const char **sorted_ids;    /* rule ids by address, for lookups */
  uint32_t *sorted_index;     /* their rule indices */
  explainer *explain_map;     /* --explain: which instructions are whose */
} check_config;

typedef struct rule_stats {
  uint64_t matched, decided, flagged, errors;
  uint64_t first_error_line;  /* 0: none yet */
  char *first_error;          /* its message (malloc'd once) */
} rule_stats;

/* Counts of one worker; merged at the end (all sums, or earliest lines). */
typedef struct check_stats {
  uint64_t decided;           /* requests that got a decision */
  uint64_t effects[4];        /* per clause_effect */
  uint64_t by_default;        /* decided by the policy default */
  uint64_t flagged;           /* decisions with at least one flag */
  uint64_t with_errors;       /* decisions listing errors */
  uint64_t invalid;           /* invalid lines */
  uint64_t eval_failed;       /* lines the VM could not decide */
  uint64_t expect_ok, expect_failed, expect_absent;
  uint64_t fail_on;           /* decisions that --fail-on matches */
  rule_stats *rules;          /* nrules + 1; the last: errors of no rule */
} check_stats;

/* Aligned so that workers never share a cache line; each thread makes its
 * own VM, so that VM memory comes from that thread's malloc arena. */
typedef struct worker {
  _Alignas(128) const check_config *cfg;
  clause_vm *vm;
  vm_trace trace;             /* --explain: what the VM saw, per request */
  check_stats st;
  outbuf out;                 /* this batch's stdout text */
  outbuf err;                 /* this batch's stderr text */
  const traffic_line *lines;  /* this batch's range */
  size_t nlines;
  pthread_t thread;
  bool started;
} worker;

/* ---- small helpers --------------------------------------------------------------- */

/* Room for `need` more bytes in a growing buffer. */

static const char *plural(uint64_t n) {
  return n == 1 ? "" : "s";
}

static const char *color(const check_config *cfg, const char *code) {
  return cfg->color ? code : "";
}

static const char *effect_color(const check_config *cfg, clause_effect e) {
  static const char *const codes[] = {"\033[32m", "\033[33m", "\033[31m", "\033[35m"};
  return color(cfg, codes[e]);
}

static int cmp_ptr(const void *a, const void *b) {
  uintptr_t x = (uintptr_t) * (const char *const *)a, y = (uintptr_t) * (const char *const *)b;
  return x < y ? -1 : x > y;
}

/* The index of the rule whose id is `id` (a pointer into the program, as
 * decisions hold them); nrules when it names no rule. */
static uint32_t rule_index(const check_config *cfg, const char *id) {
  const clause_program *p = cfg->p;
  size_t lo = 0, hi = p->nrules;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (cfg->sorted_ids[mid] == id) return cfg->sorted_index[mid];
    if ((uintptr_t)cfg->sorted_ids[mid] < (uintptr_t)id) lo = mid + 1;
    else hi = mid;
  }
  for (uint32_t i = 0; id && i < p->nrules; i++)
    if (strcmp(p->rules[i].id, id) == 0) return i;
  return p->nrules;
}

static bool build_rule_lookup(check_config *cfg) {
  uint32_t n = cfg->p->nrules;
  cfg->sorted_ids = malloc((n + 1) * sizeof *cfg->sorted_ids);
  cfg->sorted_index = malloc((n + 1) * sizeof *cfg->sorted_index);
  if (!cfg->sorted_ids || !cfg->sorted_index) return false;
  for (uint32_t i = 0; i < n; i++) cfg->sorted_ids[i] = cfg->p->rules[i].id;
  qsort(cfg->sorted_ids, n, sizeof *cfg->sorted_ids, cmp_ptr);
  for (uint32_t i = 0; i < n; i++)
    for (uint32_t j = 0; j < n; j++)
      if (cfg->p->rules[j].id == cfg->sorted_ids[i]) cfg->sorted_index[i] = j;
  return true;
}

/* A decision as `--expect` spells it: "deny:RULE-ID", or the effect alone
 * when the default decided. */
static void put_outcome(outbuf *o, const clause_decision *d) {
  ob_puts(o, clause_effect_name(d->effect));
  if (d->rule) {
    ob_putc(o, ':');
    ob_puts(o, d->rule);
  }
}

/* ---- one line ---------------------------------------------------------------------- */

static void report_invalid(worker *w, uint64_t lineno, int column, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void report_invalid(worker *w, uint64_t lineno, int column, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (column > 0) ob_printf(&w->err, "%s:%llu:%d: error: %s\n", w->cfg->traffic, (unsigned long long)lineno, column, msg);
  else ob_printf(&w->err, "%s:%llu: error: %s\n", w->cfg->traffic, (unsigned long long)lineno, msg);
  w->st.invalid++;
}

/*
 * --explain: why a request was decided as it was, from the trace the VM
 * recorded while deciding it (explain.h): every rule, whether it matched,
 * and the value of each condition, with parts skipped by short-circuit
 * shown as not evaluated. With `json` it writes the value of the
 * "explain" key; otherwise indented lines of text.
 */
static void explain_request(const check_config *cfg, const worker *w, outbuf *o, bool json) {
  if (json)
    explain_json(cfg->explain_map, &w->trace, o);
  else
    explain_text(cfg->explain_map, &w->trace, o, "    ");
}

/* Compares the decision with the line's "@expect"; true when it holds. */
static bool expectation_holds(const json_meta *meta, const clause_decision *d, outbuf *why) {
  const char *e = meta->expect;
  const char *colon = strchr(e, ':');
  size_t elen = colon ? (size_t)(colon - e) : meta->expect_len;
  int effect = -1;
  for (int k = CLAUSE_ALLOW; k <= CLAUSE_SUSPEND; k++) {
    const char *name = clause_effect_name((clause_effect)k);
    if (strlen(name) == elen && memcmp(name, e, elen) == 0) effect = k;
  }
  if (effect < 0 || (colon && colon[1] == '\0')) {
    ob_printf(why, "invalid @expect \"%s\": write \"EFFECT\" or \"EFFECT:RULE-ID\" with EFFECT one of "
                   "allow, throttle, deny, suspend", e);
    return false;
  }
  if ((int)d->effect == effect && (!colon || (d->rule && strcmp(d->rule, colon + 1) == 0))) return true;
  ob_printf(why, "expected %s, got ", e);
  put_outcome(why, d);
  return false;
}

/* Writes the decision's JSON with the prefix laid over its opening brace:
 * the JSON is written so that its '{' lands on the prefix's last byte. */
static void write_decision(outbuf *o, const clause_decision *d, const char *prefix, size_t plen) {
  size_t need = 1024;
  for (;;) {
    if (!ob_reserve(o, plen + need + 2)) return;
    size_t at = o->len + plen - 1;
    int n = clause_decision_json(d, o->buf + at, o->cap - at);
    if (n < 0) return;
    if ((size_t)n < o->cap - at) {
      memcpy(o->buf + o->len, prefix, plen);
      o->len = at + (size_t)n;
      return;
    }
    need = (size_t)n + 1;
  }
}

/* Precomputes the JSON of the plain decisions (the policy default's, with
 * nothing to list): most traffic is decided so. */
static bool build_plain_json(check_config *cfg) {
  for (int e = CLAUSE_ALLOW; e <= CLAUSE_SUSPEND; e++) {
    clause_decision d = {.effect = (clause_effect)e, .retry_after_ms = -1};
    int n = clause_decision_json(&d, NULL, 0);
    if (n <= 0 || !(cfg->plain_json[e] = malloc((size_t)n + 1))) return false;
    clause_decision_json(&d, cfg->plain_json[e], (size_t)n + 1);
    cfg->plain_len[e] = (size_t)n;
  }
  return true;
}

/* The decision's JSON with {"line":N, in front (and "explain" last). */
static void write_jsonl(worker *w, uint64_t lineno, const clause_decision *d) {
  outbuf *o = &w->out;
  char prefix[40] = "{\"line\":", digits[24];
  size_t plen = 8;
  int nd = 0;
  do digits[nd++] = (char)('0' + lineno % 10);
  while ((lineno /= 10) != 0);
  while (nd) prefix[plen++] = digits[--nd];
  prefix[plen++] = ',';
  const check_config *cfg = w->cfg;
  if (!d->rule && !d->reason && !d->cite && !d->n_flags && !d->n_obligations && !d->n_errors &&
      d->retry_after_ms < 0 && cfg->plain_json[d->effect]) {
    size_t n = cfg->plain_len[d->effect];
    if (!ob_reserve(o, plen + n + 1)) return;
    memcpy(o->buf + o->len, prefix, plen);
    memcpy(o->buf + o->len + plen, cfg->plain_json[d->effect] + 1, n - 1);
    o->len += plen + n - 1;
  } else {
    write_decision(o, d, prefix, plen);
  }
  if (cfg->explain && !o->oom) {
    o->len--; /* the closing brace */
    ob_puts(o, ",\"explain\":");
    explain_request(cfg, w, o, true);
    ob_putc(o, '}');
  }
  if (ob_reserve(o, 1)) o->buf[o->len++] = '\n';
}

/* A request that is not allowed, for a person. */
static void write_text(worker *w, uint64_t lineno, const clause_decision *d) {
  const check_config *cfg = w->cfg;
  outbuf *o = &w->out;
  ob_printf(o, "line %llu: %s%s%s", (unsigned long long)lineno, effect_color(cfg, d->effect),
            clause_effect_name(d->effect), color(cfg, "\033[0m"));
  if (d->rule) ob_printf(o, " %s%s%s", color(cfg, "\033[1m"), d->rule, color(cfg, "\033[0m"));
  else ob_puts(o, " (policy default)");
  if (d->reason) ob_printf(o, ": %s", d->reason);
  if (d->cite) ob_printf(o, " [%s]", d->cite);
  for (size_t i = 0; i < d->n_flags; i++) ob_printf(o, "%s%s", i ? ", " : " (flagged: ", d->flags[i]);
  if (d->n_flags) ob_putc(o, ')');
  ob_putc(o, '\n');
}

static void count_errors(worker *w, uint64_t lineno, const clause_decision *d) {
  w->st.with_errors++;
  for (size_t i = 0; i < d->n_errors; i++) {
    uint32_t r = d->errors[i].rule ? rule_index(w->cfg, d->errors[i].rule) : w->cfg->p->nrules;
    rule_stats *rs = &w->st.rules[r];
    rs->errors++;
    if (!rs->first_error_line) {
      rs->first_error_line = lineno;
      rs->first_error = strdup(d->errors[i].message);
    }
  }
}

static void check_line(worker *w, const traffic_line *l) {
  const check_config *cfg = w->cfg;
  clause_vm *vm = w->vm;
  if (l->status == TRAFFIC_LINE_TOO_LONG) {
    report_invalid(w, l->lineno, 0, "line too long (more than %zu MiB)", TRAFFIC_MAX_LINE >> 20);
    return;
  }
  if (l->status == TRAFFIC_LINE_NOMEM) {
    report_invalid(w, l->lineno, 0, "line too long for the memory available (more than %zu MiB)", l->len >> 20);
    return;
  }

  json_meta meta;
  char msg[256];
  int column;
  if (!traffic_bind(vm, l->text, l->len, cfg->expect ? &meta : NULL, msg, sizeof msg, &column)) {
    report_invalid(w, l->lineno, column, "%s", msg);
    return;
  }

  clause_decision d;
  w->trace.n = 0;
  w->trace.in_force = PROG_NONE;
  if (clause_vm_eval(vm, &d) != CLAUSE_OK) {
    ob_printf(&w->err, "%s:%llu: error: the request could not be evaluated\n", cfg->traffic,
              (unsigned long long)l->lineno);
    w->st.eval_failed++;
    return;
  }

  check_stats *st = &w->st;
  st->decided++;
  st->effects[d.effect]++;
  if (d.rule) st->rules[rule_index(cfg, d.rule)].decided++;
  else st->by_default++;
  for (size_t i = 0; i < vm->nmatched; i++) st->rules[vm->matched[i]].matched++;
  if (d.n_flags) {
    st->flagged++;
    for (size_t i = 0; i < d.n_flags; i++) st->rules[rule_index(cfg, d.flags[i])].flagged++;
  }
  if (d.n_errors) count_errors(w, l->lineno, &d);
  if (cfg->fail_on >= 0 && (cfg->fail_on == FAIL_ON_FLAG ? d.n_flags > 0 : (int)d.effect >= cfg->fail_on))
    st->fail_on++;

  bool mismatch = false;
  char why_buf[512];
  outbuf why;
  ob_init_fixed(&why, why_buf, sizeof why_buf);
  if (cfg->expect) {
    if (meta.expect_invalid) {
      ob_puts(&why, "invalid @expect: it must be a string, \"EFFECT\" or \"EFFECT:RULE-ID\"");
      mismatch = true;
    } else if (!meta.has_expect) {
      st->expect_absent++;
    } else {
      mismatch = !expectation_holds(&meta, &d, &why);
      if (!mismatch) st->expect_ok++;
    }
    if (mismatch) st->expect_failed++;
  }

  if (cfg->format == FORMAT_JSONL) {
    write_jsonl(w, l->lineno, &d);
    if (mismatch)
      ob_printf(&w->err, "%s:%llu: %s\n", cfg->traffic, (unsigned long long)l->lineno, ob_cstr(&why));
    return;
  }
  if (d.effect != CLAUSE_ALLOW) write_text(w, l->lineno, &d);
  if (mismatch)
    ob_printf(&w->out, "line %llu: %s%s%s\n", (unsigned long long)l->lineno, color(cfg, "\033[31m"), ob_cstr(&why),
              color(cfg, "\033[0m"));
  if (cfg->explain && (d.effect != CLAUSE_ALLOW || mismatch)) explain_request(cfg, w, &w->out, false);
}

static void check_range(worker *w) {
  for (size_t i = 0; i < w->nlines; i++) check_line(w, &w->lines[i]);
}

/* ---- threads ------------------------------------------------------------------------ */

/* Workers 1..n-1 run on threads; worker 0 is the main thread. */
typedef struct pool {
  pthread_mutex_t mu;
  pthread_cond_t go, done;
  uint64_t generation;
  int pending;
  bool quit;
  worker *w;
  int n;
} pool;

typedef struct thread_arg {
  pool *pl;
  int index;
} thread_arg;

static void setup_worker(worker *w) {
  w->vm = clause_vm_new(w->cfg->p);
  if (w->vm && w->cfg->explain) {
    /* Rule-level instructions run at most once each per evaluation. */
    w->trace.cap = w->cfg->p->ncode;
    w->trace.events = calloc(w->trace.cap + 1, sizeof *w->trace.events);
    if (w->trace.events) w->vm->trace = &w->trace;
  }
  w->st.rules = calloc(w->cfg->p->nrules + 1, sizeof *w->st.rules);
  ob_init_grow(&w->out);
  ob_init_grow(&w->err);
}

static void *worker_main(void *arg) {
  thread_arg *ta = arg;
  pool *pl = ta->pl;
  worker *w = &pl->w[ta->index];
  uint64_t seen = 0;
  setup_worker(w);
  pthread_mutex_lock(&pl->mu);
  if (--pl->pending == 0) pthread_cond_signal(&pl->done);
  pthread_mutex_unlock(&pl->mu);
  for (;;) {
    pthread_mutex_lock(&pl->mu);
    while (pl->generation == seen && !pl->quit) pthread_cond_wait(&pl->go, &pl->mu);
    if (pl->quit) {
      pthread_mutex_unlock(&pl->mu);
      return NULL;
    }
    seen = pl->generation;
    pthread_mutex_unlock(&pl->mu);
    check_range(w);
    pthread_mutex_lock(&pl->mu);
    if (--pl->pending == 0) pthread_cond_signal(&pl->done);
    pthread_mutex_unlock(&pl->mu);
  }
}

/* Evaluates a batch: contiguous ranges, one per worker. */
static void run_batch(pool *pl, const traffic_line *lines, size_t n) {
  size_t per = (n + (size_t)pl->n - 1) / (size_t)pl->n, at = 0;
  for (int i = 0; i < pl->n; i++) {
    size_t k = n - at < per ? n - at : per;
    pl->w[i].lines = lines + at;
    pl->w[i].nlines = k;
    at += k;
  }
  if (pl->n == 1) {
    check_range(&pl->w[0]);
    return;
  }
  pthread_mutex_lock(&pl->mu);
  pl->generation++;
  pl->pending = pl->n - 1;
  pthread_cond_broadcast(&pl->go);
  pthread_mutex_unlock(&pl->mu);
  check_range(&pl->w[0]);
  pthread_mutex_lock(&pl->mu);
  while (pl->pending) pthread_cond_wait(&pl->done, &pl->mu);
  pthread_mutex_unlock(&pl->mu);
}

/* ---- progress --------------------------------------------------------------------- */

typedef struct progress {
  bool enabled;   /* stderr is a terminal */
  bool shown;     /* a progress line is on screen */
  double start, last;
} progress;

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void progress_clear(progress *pr) {
  if (!pr->shown) return;
  fputs("\r\033[K", stderr);
  pr->shown = false;
}

/* After the first second, at most four updates a second (or at once when
 * output has just wiped the line). */
static void progress_update(progress *pr, uint64_t done, bool redraw) {
  if (!pr->enabled) return;
  double t = now_seconds();
  if (t - pr->start < 1.0 || (t - pr->last < 0.25 && !redraw)) return;
  pr->last = t;
  double elapsed = t - pr->start;
  fprintf(stderr, "\r\033[K%llu requests, %.0f/s, %.1fs", (unsigned long long)done, (double)done / elapsed, elapsed);
  pr->shown = true;
}

/* ---- summary ------------------------------------------------------------------------ */

static void merge_stats(check_stats *into, const check_stats *from, uint32_t nrules) {
  into->decided += from->decided;
  for (int e = 0; e < 4; e++) into->effects[e] += from->effects[e];
  into->by_default += from->by_default;
  into->flagged += from->flagged;
  into->with_errors += from->with_errors;
  into->invalid += from->invalid;
  into->eval_failed += from->eval_failed;
  into->expect_ok += from->expect_ok;
  into->expect_failed += from->expect_failed;
  into->expect_absent += from->expect_absent;
  into->fail_on += from->fail_on;
  for (uint32_t r = 0; r <= nrules; r++) {
    rule_stats *a = &into->rules[r];
    const rule_stats *b = &from->rules[r];
    a->matched += b->matched;
    a->decided += b->decided;
    a->flagged += b->flagged;
    a->errors += b->errors;
    if (b->first_error_line && (!a->first_error_line || b->first_error_line < a->first_error_line)) {
      a->first_error_line = b->first_error_line;
      free(a->first_error);
      a->first_error = b->first_error ? strdup(b->first_error) : NULL;
    }
  }
}

static void print_summary(const check_config *cfg, const check_stats *st) {
  const clause_program *p = cfg->p;
  const char *bold = color(cfg, "\033[1m"), *dim = color(cfg, "\033[2m"), *off = color(cfg, "\033[0m");
  if (st->effects[1] + st->effects[2] + st->effects[3] > 0) putchar('\n');
  printf("%ssummary:%s %llu request%s decided, %llu invalid line%s", bold, off, (unsigned long long)st->decided,
         plural(st->decided), (unsigned long long)st->invalid, plural(st->invalid));
  if (st->eval_failed) printf(", %llu not evaluated", (unsigned long long)st->eval_failed);
  putchar('\n');
  for (int e = CLAUSE_ALLOW; e <= CLAUSE_SUSPEND; e++) {
    printf("  %s%-9s%s %10llu", effect_color(cfg, (clause_effect)e), clause_effect_name((clause_effect)e), off,
           (unsigned long long)st->effects[e]);
    if (e == CLAUSE_ALLOW) printf("   (%llu flagged)", (unsigned long long)st->flagged);
    putchar('\n');
  }

  int width = (int)strlen("(policy default)");
  for (uint32_t r = 0; r < p->nrules; r++)
    if ((int)strlen(p->rules[r].id) > width) width = (int)strlen(p->rules[r].id);
  printf("\n  %-*s  %-8s  %9s  %9s  %9s  %9s\n", width, "rule", "effect", "matched", "decided", "flagged",
         "errors");
  for (uint32_t r = 0; r < p->nrules; r++) {
    const rule_stats *rs = &st->rules[r];
    bool flag = p->rules[r].effect == RE_FLAG;
    /* A flag rule matches exactly when it flags. */
    uint64_t matched = flag ? rs->flagged : rs->matched;
    char decided[24] = "-", flagged[24] = "-";
    if (flag) snprintf(flagged, sizeof flagged, "%llu", (unsigned long long)rs->flagged);
    else snprintf(decided, sizeof decided, "%llu", (unsigned long long)rs->decided);
    printf("  %-*s  %-8s  %9llu  %9s  %9s  %9llu", width, p->rules[r].id,
           rule_effect_name((rule_effect)p->rules[r].effect), (unsigned long long)matched, decided, flagged,
           (unsigned long long)rs->errors);
    if (!matched) printf("  %s%s%s", dim, "never matched", off);
    else if (!flag && !rs->decided) printf("  %s%s%s", dim, "never decided", off);
    putchar('\n');
  }
  printf("  %-*s  %-8s  %9s  %9llu  %9s  %9s\n", width, "(policy default)",
         rule_effect_name((rule_effect)p->default_effect), "-", (unsigned long long)st->by_default, "-", "-");

  if (st->with_errors) {
    printf("\n%llu request%s with evaluation errors:\n", (unsigned long long)st->with_errors, plural(st->with_errors));
    for (uint32_t r = 0; r <= p->nrules; r++) {
      const rule_stats *rs = &st->rules[r];
      if (!rs->errors) continue;
      printf("  %-*s  %llu error%s, the first at line %llu: %s\n", width,
             r < p->nrules ? p->rules[r].id : "(no rule)", (unsigned long long)rs->errors, rs->errors == 1 ? "" : "s",
             (unsigned long long)rs->first_error_line, rs->first_error ? rs->first_error : "out of memory");
    }
  } else {
    printf("\nno evaluation errors\n");
  }
  if (cfg->expect)
    printf("expectations: %llu met, %llu failed, %llu line%s without @expect\n", (unsigned long long)st->expect_ok,
           (unsigned long long)st->expect_failed, (unsigned long long)st->expect_absent, plural(st->expect_absent));
}

/* ---- the command -------------------------------------------------------------------- */

static int parse_fail_on(const char *s) {
  if (strcmp(s, "flag") == 0) return FAIL_ON_FLAG;
  for (int e = CLAUSE_ALLOW; e <= CLAUSE_SUSPEND; e++)
    if (strcmp(s, clause_effect_name((clause_effect)e)) == 0) return e;
  return -1;
}

static void free_workers(worker *w, int n, uint32_t nrules) {
  for (int i = 0; i < n; i++) {
    clause_vm_free(w[i].vm);
    free(w[i].trace.events);
    ob_free(&w[i].out);
    ob_free(&w[i].err);
    if (w[i].st.rules)
      for (uint32_t r = 0; r <= nrules; r++) free(w[i].st.rules[r].first_error);
    free(w[i].st.rules);
  }
  free(w);
}

/* Writes a batch's output. Large blocks bypass stdio's buffer (one copy
 * less); what stdio holds goes first. */
static bool write_out(const char *buf, size_t len) {
  if (len < (1 << 16)) return fwrite(buf, 1, len, stdout) == len;
  if (fflush(stdout) != 0) return false;
  while (len) {
    ssize_t n = write(STDOUT_FILENO, buf, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    buf += n;
    len -= (size_t)n;
  }
  return true;
}

static int check_traffic(check_config *cfg, traffic_reader *tr, int jobs) {
  const clause_program *p = cfg->p;
  int status = EXIT_USAGE;
  worker *w = aligned_alloc(_Alignof(worker), (size_t)jobs * sizeof *w);
  if (w) memset(w, 0, (size_t)jobs * sizeof *w);
  thread_arg args[MAX_JOBS];
  pool pl = {.w = w, .n = jobs};
  pthread_mutex_init(&pl.mu, NULL);
  pthread_cond_init(&pl.go, NULL);
  pthread_cond_init(&pl.done, NULL);
  check_stats total = {0};
  total.rules = calloc(p->nrules + 1, sizeof *total.rules);
  bool ok = w && total.rules;
  for (int i = 0; ok && i < jobs; i++) w[i].cfg = cfg;
  if (ok) setup_worker(&w[0]);
  pthread_mutex_lock(&pl.mu);
  for (int i = 1; ok && i < jobs; i++) {
    args[i].pl = &pl;
    args[i].index = i;
    w[i].started = pthread_create(&w[i].thread, NULL, worker_main, &args[i]) == 0;
    if (w[i].started) pl.pending++;
    else ok = false;
  }
  while (pl.pending) pthread_cond_wait(&pl.done, &pl.mu);
  pthread_mutex_unlock(&pl.mu);
  for (int i = 0; ok && i < jobs; i++) ok = w[i].vm && w[i].st.rules;
  if (!ok) fprintf(stderr, "clause: out of memory (or no threads)\n");

  progress pr = {.enabled = isatty(STDERR_FILENO) != 0};
  pr.start = pr.last = now_seconds();
  bool stdout_tty = isatty(STDOUT_FILENO) != 0;
  uint64_t lines_done = 0;
  bool read_error = false, write_error = false;
  while (ok) {
    const traffic_line *lines;
    long n = traffic_next_batch(tr, (size_t)LINES_PER_JOB * (size_t)jobs, &lines);
    if (n < 0) read_error = true;
    if (n <= 0) break;
    run_batch(&pl, lines, (size_t)n);
    bool to_terminal = false; /* then the progress line steps aside */
    for (int i = 0; i < jobs; i++) to_terminal |= w[i].err.len || (stdout_tty && w[i].out.len);
    bool redraw = to_terminal && pr.shown;
    if (to_terminal) progress_clear(&pr);
    for (int i = 0; i < jobs; i++) {
      if (w[i].out.oom || w[i].err.oom) {
        fprintf(stderr, "clause: out of memory\n");
        ok = false;
      }
      if (w[i].out.len && !write_out(w[i].out.buf, w[i].out.len)) write_error = true;
      if (w[i].err.len) {
        if (stdout_tty) fflush(stdout);
        fwrite(w[i].err.buf, 1, w[i].err.len, stderr);
      }
      w[i].out.len = w[i].err.len = 0;
    }
    if (write_error) break;
    lines_done += (uint64_t)n;
    if (redraw) fflush(stdout);
    progress_update(&pr, lines_done, redraw);
  }
  progress_clear(&pr);

  pthread_mutex_lock(&pl.mu);
  pl.quit = true;
  pthread_cond_broadcast(&pl.go);
  pthread_mutex_unlock(&pl.mu);
  for (int i = 1; w && i < jobs; i++)
    if (w[i].started) pthread_join(w[i].thread, NULL);

  if (ok) {
    for (int i = 0; i < jobs; i++) merge_stats(&total, &w[i].st, p->nrules);
    if (read_error) fprintf(stderr, "%s: error: %s\n", cfg->traffic, traffic_error(tr));
    if (total.decided + total.invalid + total.eval_failed == 0 && !read_error)
      fprintf(stderr, "%s: warning: no requests in the traffic\n", cfg->traffic);
    if (cfg->format == FORMAT_TEXT) print_summary(cfg, &total);
    else if (cfg->expect && total.expect_failed)
      fprintf(stderr, "%s: %llu expectation%s failed, %llu met\n", cfg->traffic,
              (unsigned long long)total.expect_failed, plural(total.expect_failed), (unsigned long long)total.expect_ok);
    if (fflush(stdout) != 0 || ferror(stdout)) write_error = true;
    if (write_error) fprintf(stderr, "clause: error writing the output\n");
    if (read_error || write_error) status = EXIT_USAGE;
    else if (total.expect_failed || total.fail_on) status = EXIT_FAILED;
    else if (total.invalid || total.eval_failed) status = EXIT_INVALID;
    else status = EXIT_OK;
  }
  if (total.rules)
    for (uint32_t r = 0; r <= p->nrules; r++) free(total.rules[r].first_error);
  free(total.rules);
  if (w) free_workers(w, jobs, p->nrules);
  pthread_mutex_destroy(&pl.mu);
  pthread_cond_destroy(&pl.go);
  pthread_cond_destroy(&pl.done);
  return status;
}

static int run_check(int argc, char **argv) {
  const char *policy = NULL, *traffic = NULL, *format = NULL, *fail_on = NULL, *jobs_text = NULL;
  bool expect = false, explain = false;
  cli_common common = {0};
  for (int i = 1; i < argc; i++) {
    int r;
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return cli_help(&cmd_check);
    if (strcmp(argv[i], "--expect") == 0) {
      expect = true;
      continue;
    }
    if (strcmp(argv[i], "--explain") == 0) {
      explain = true;
      continue;
    }
    if ((r = cli_common_option(&cmd_check, argc, argv, &i, &common)) ||
        (r = cli_option(&cmd_check, argc, argv, &i, "--traffic", &traffic)) ||
        (r = cli_option(&cmd_check, argc, argv, &i, "--format", &format)) ||
        (r = cli_option(&cmd_check, argc, argv, &i, "--fail-on", &fail_on)) ||
        (r = cli_option(&cmd_check, argc, argv, &i, "--jobs", &jobs_text)) ||
        (r = cli_option(&cmd_check, argc, argv, &i, "-j", &jobs_text))) {
      if (r < 0) return EXIT_USAGE;
      continue;
    }
    if (argv[i][0] == '-' && argv[i][1] != '\0') return cli_usage_error(&cmd_check, "unknown option %s", argv[i]);
    if (policy) return cli_usage_error(&cmd_check, "unexpected argument %s", argv[i]);
    policy = argv[i];
  }
  if (!policy) return cli_usage_error(&cmd_check, "missing POLICY");
  if (!traffic) return cli_usage_error(&cmd_check, "missing --traffic FILE");
  if (strcmp(policy, "-") == 0 && strcmp(traffic, "-") == 0)
    return cli_usage_error(&cmd_check, "POLICY and --traffic cannot both be standard input");
  check_config cfg = {.fail_on = -1, .expect = expect, .explain = explain};
  if (!format || strcmp(format, "text") == 0) cfg.format = FORMAT_TEXT;
  else if (strcmp(format, "jsonl") == 0) cfg.format = FORMAT_JSONL;
  else return cli_usage_error(&cmd_check, "--format must be text or jsonl, not %s", format);
  if (fail_on && (cfg.fail_on = parse_fail_on(fail_on)) < 0)
    return cli_usage_error(&cmd_check, "--fail-on takes allow, throttle, deny, suspend or flag, not %s", fail_on);
  int jobs = 1;
  if (jobs_text) {
    char *end;
    long j = strtol(jobs_text, &end, 10);
    if (*end || end == jobs_text || j < 1 || j > MAX_JOBS)
      return cli_usage_error(&cmd_check, "--jobs takes a number from 1 to %d", MAX_JOBS);
    jobs = (int)j;
  }
  cfg.color = isatty(STDOUT_FILENO) && getenv("NO_COLOR") == NULL;

  int status = EXIT_USAGE;
  clause_options *opts = cli_options(&common);
  clause_program *p = opts ? cli_load_program(policy, opts, true) : NULL;
  traffic_reader *tr = NULL;
  if (p && p->kind != PROG_POLICY) {
    fprintf(stderr, "%s: error: not a policy program\n", policy);
  } else if (p) {
    char err[512];
    tr = traffic_open(traffic, err, sizeof err);
    if (!tr) fprintf(stderr, "clause: %s\n", err);
  }
  if (tr && jobs > 1 && p->store) {
    /* Counters and suspensions depend on the order of requests: replay
     * stays in traffic order, as live traffic would count. */
    fprintf(stderr, "clause: note: %s keeps state (counters or suspensions): evaluating on one thread in traffic order\n",
            policy);
    jobs = 1;
  }
  if (tr) {
    cfg.p = p;
    cfg.traffic = traffic_name(tr);
    if (cfg.explain) cfg.explain_map = explainer_new(p);
    if (!build_rule_lookup(&cfg) || !build_plain_json(&cfg) || (cfg.explain && !cfg.explain_map))
      fprintf(stderr, "clause: out of memory\n");
    else {
      static char stdout_buffer[1 << 20];
      if (!isatty(STDOUT_FILENO)) setvbuf(stdout, stdout_buffer, _IOFBF, sizeof stdout_buffer);
      status = check_traffic(&cfg, tr, jobs);
    }
  }
  for (int e = 0; e < 4; e++) free(cfg.plain_json[e]);
  free(cfg.sorted_ids);
  free(cfg.sorted_index);
  explainer_free(cfg.explain_map);
  traffic_close(tr);
  clause_program_free(p);
  clause_options_free(opts);
  return status;
}
