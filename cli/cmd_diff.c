/*
 * cmd_diff.c - `clause diff OLD NEW --traffic FILE`: the impact of a new
 * version of the terms. Both policies decide every request of the traffic
 * (each with its own VM and store); the requests whose decision changes (a
 * different effect or deciding rule) are counted per change, grouped by
 * (old effect, old rule) -> (new effect, new rule), with the first few
 * line numbers of each group.
 */
#include <stdlib.h>
#include <string.h>

#include "../vm/program.h"
#include "cli.h"
#include "traffic.h"

static int run_diff(int argc, char **argv);

const cli_command cmd_diff = {
    "diff", "clause diff OLD NEW --traffic FILE|- [--lib-path DIRS] [--extern-path DIRS] [--store URL]",
    "Evaluates two policies (rule files or .clb files) on the same traffic and\n"
    "reports the requests whose decision changes - a different effect or\n"
    "deciding rule - grouped by (old effect, old rule) -> (new effect, new\n"
    "rule), with counts and the first line numbers of each group.\n"
    "\n"
    "  --traffic FILE        the requests, one JSON object a line (`-`: stdin)\n"
    "  --lib-path DIRS       extra folders for `import` modules\n"
    "  --extern-path DIRS    allowed folders for extern libraries\n"
    "  --store URL           state store: memory (default)\n"
    "\n"
    "Exit status: 0 whatever changes; 2 usage, compile, load or read error;\n"
    "3 invalid traffic lines.\n",
    run_diff};

#define FIRST_LINES 5

/* One kind of change. Rule ids are pointers into their programs (NULL: the
 * policy default decided), so equal keys have equal pointers. */
typedef struct change {
  clause_effect old_effect, new_effect;
  const char *old_rule, *new_rule;
  uint64_t count;
  uint64_t first[FIRST_LINES];
} change;

typedef struct change_table {
  change *slots; /* open addressing; count 0 = empty */
  size_t cap, used;
} change_table;

static size_t change_hash(clause_effect oe, const char *or, clause_effect ne, const char *nr) {
  uint64_t h = (uint64_t)oe * 31 + (uint64_t)ne;
  h = h * 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)or;
  h = h * 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)nr;
  h *= 0x9E3779B97F4A7C15ull;
  return (size_t)(h ^ (h >> 29));
}

static change *change_slot(change *slots, size_t cap, clause_effect oe, const char *or, clause_effect ne,
                           const char *nr) {
  size_t i = change_hash(oe, or, ne, nr) & (cap - 1);
  for (;; i = (i + 1) & (cap - 1)) {
    change *c = &slots[i];
    if (!c->count || (c->old_effect == oe && c->new_effect == ne && c->old_rule == or && c->new_rule == nr)) return c;
  }
}

static bool record_change(change_table *t, const clause_decision *o, const clause_decision *n, uint64_t lineno) {
  if (2 * (t->used + 1) > t->cap) {
    size_t cap = t->cap ? 2 * t->cap : 64;
    change *slots = calloc(cap, sizeof *slots);
    if (!slots) return false;
    for (size_t i = 0; i < t->cap; i++)
      if (t->slots[i].count) {
        const change *c = &t->slots[i];
        *change_slot(slots, cap, c->old_effect, c->old_rule, c->new_effect, c->new_rule) = *c;
      }
    free(t->slots);
    t->slots = slots;
    t->cap = cap;
  }
  change *c = change_slot(t->slots, t->cap, o->effect, o->rule, n->effect, n->rule);
  if (!c->count) {
    c->old_effect = o->effect;
    c->new_effect = n->effect;
    c->old_rule = o->rule;
    c->new_rule = n->rule;
    t->used++;
  }
  if (c->count < FIRST_LINES) c->first[c->count] = lineno;
  c->count++;
  return true;
}

/* Most requests first; ties in the order they first appeared. */
static int cmp_change(const void *a, const void *b) {
  const change *x = a, *y = b;
  if (x->count != y->count) return x->count > y->count ? -1 : 1;
  return x->first[0] < y->first[0] ? -1 : x->first[0] > y->first[0];
}

static bool same_rule(const char *a, const char *b) {
  return a == b || (a && b && strcmp(a, b) == 0);
}

static void put_side(outbuf *o, clause_effect e, const char *rule) {
  ob_puts(o, clause_effect_name(e));
  if (rule) ob_printf(o, " \"%s\"", rule);
  else ob_puts(o, " (policy default)");
}

static void print_changes(const change_table *t, uint64_t decided, uint64_t changed) {
  printf("%llu request%s decided by both, %llu decision%s change%s", (unsigned long long)decided,
         decided == 1 ? "" : "s", (unsigned long long)changed, changed == 1 ? "" : "s", changed == 1 ? "s" : "");
  if (decided) printf(" (%.1f%%)", 100.0 * (double)changed / (double)decided);
  printf("\n");
  if (!t->used) return;
  change *list = malloc(t->used * sizeof *list);
  if (!list) {
    fprintf(stderr, "clause: out of memory\n");
    return;
  }
  size_t n = 0;
  for (size_t i = 0; i < t->cap; i++)
    if (t->slots[i].count) list[n++] = t->slots[i];
  qsort(list, n, sizeof *list, cmp_change);
  putchar('\n');
  outbuf o;
  ob_init_grow(&o);
  for (size_t i = 0; i < n; i++) {
    const change *c = &list[i];
    o.len = 0;
    ob_puts(&o, "  ");
    put_side(&o, c->old_effect, c->old_rule);
    ob_puts(&o, " -> ");
    put_side(&o, c->new_effect, c->new_rule);
    ob_printf(&o, ": %llu request%s (line%s", (unsigned long long)c->count, c->count == 1 ? "" : "s",
              c->count == 1 ? "" : "s");
    for (uint64_t k = 0; k < c->count && k < FIRST_LINES; k++)
      ob_printf(&o, "%s %llu", k ? "," : "", (unsigned long long)c->first[k]);
    ob_puts(&o, c->count > FIRST_LINES ? ", ...)\n" : ")\n");
    if (!o.oom) fwrite(o.buf, 1, o.len, stdout);
  }
  ob_free(&o);
  free(list);
}

static int diff_traffic(const clause_program *old_p, const clause_program *new_p, const char *old_path,
                        const char *new_path, traffic_reader *tr, const char *store_url) {
  clause_vm *ovm = clause_vm_new(old_p), *nvm = clause_vm_new(new_p);
  change_table t = {0};
  uint64_t decided = 0, changed = 0, invalid = 0;
  const char *name = traffic_name(tr);
  bool read_error = false, ok = ovm && nvm;
  if (!ok) fprintf(stderr, "clause: out of memory\n");
  /* Each policy counts in a store of its own, so that neither sees the
   * other's requests (SPEC 8). */
  if (ok && old_p->store && cli_use_fresh_store(ovm, store_url) != 0) ok = false;
  if (ok && new_p->store && cli_use_fresh_store(nvm, store_url) != 0) ok = false;
  while (ok) {
    const traffic_line *lines;
    long n = traffic_next_batch(tr, 8192, &lines);
    if (n < 0) read_error = true;
    if (n <= 0) break;
    for (long i = 0; i < n && ok; i++) {
      const traffic_line *l = &lines[i];
      char msg[256];
      int column = 0;
      bool valid = false;
      const char *which = "";
      if (l->status == TRAFFIC_LINE_TOO_LONG) {
        snprintf(msg, sizeof msg, "line too long (more than %zu MiB)", TRAFFIC_MAX_LINE >> 20);
      } else if (l->status == TRAFFIC_LINE_NOMEM) {
        snprintf(msg, sizeof msg, "line too long for the memory available");
      } else if (!traffic_bind(ovm, l->text, l->len, NULL, msg, sizeof msg, &column)) {
        if (!column) which = old_path; /* a JSON error is the same for both */
      } else if (!traffic_bind(nvm, l->text, l->len, NULL, msg, sizeof msg, &column)) {
        which = new_path;
      } else {
        valid = true;
      }
      if (!valid) {
        invalid++;
        if (column) fprintf(stderr, "%s:%llu:%d: error: %s\n", name, (unsigned long long)l->lineno, column, msg);
        else if (*which) fprintf(stderr, "%s:%llu: error: %s (for %s)\n", name, (unsigned long long)l->lineno, msg, which);
        else fprintf(stderr, "%s:%llu: error: %s\n", name, (unsigned long long)l->lineno, msg);
        continue;
      }
      clause_decision od, nd;
      if (clause_vm_eval(ovm, &od) != CLAUSE_OK || clause_vm_eval(nvm, &nd) != CLAUSE_OK) {
        fprintf(stderr, "%s:%llu: error: the request could not be evaluated\n", name, (unsigned long long)l->lineno);
        invalid++;
        continue;
      }
      decided++;
      if (od.effect == nd.effect && same_rule(od.rule, nd.rule)) continue;
      changed++;
      if (!record_change(&t, &od, &nd, l->lineno)) {
        fprintf(stderr, "clause: out of memory\n");
        ok = false;
      }
    }
  }
  int status = EXIT_USAGE;
  if (ok) {
    if (read_error) fprintf(stderr, "%s: error: %s\n", name, traffic_error(tr));
    else if (decided + invalid == 0) fprintf(stderr, "%s: warning: no requests in the traffic\n", name);
    print_changes(&t, decided, changed);
    if (invalid) printf("%llu invalid line%s\n", (unsigned long long)invalid, invalid == 1 ? "" : "s");
    status = read_error ? EXIT_USAGE : invalid ? EXIT_INVALID : EXIT_OK;
  }
  free(t.slots);
  clause_vm_free(ovm);
  clause_vm_free(nvm);
  return status;
}

static int run_diff(int argc, char **argv) {
  const char *paths[2] = {NULL, NULL}, *traffic = NULL;
  int npaths = 0;
  cli_common common = {0};
  for (int i = 1; i < argc; i++) {
    int r;
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return cli_help(&cmd_diff);
    if ((r = cli_common_option(&cmd_diff, argc, argv, &i, &common)) ||
        (r = cli_option(&cmd_diff, argc, argv, &i, "--traffic", &traffic))) {
      if (r < 0) return EXIT_USAGE;
      continue;
    }
    if (argv[i][0] == '-' && argv[i][1] != '\0') return cli_usage_error(&cmd_diff, "unknown option %s", argv[i]);
    if (npaths == 2) return cli_usage_error(&cmd_diff, "unexpected argument %s", argv[i]);
    paths[npaths++] = argv[i];
  }
  if (npaths < 2) return cli_usage_error(&cmd_diff, npaths ? "missing NEW" : "missing OLD and NEW");
  if (!traffic) return cli_usage_error(&cmd_diff, "missing --traffic FILE");
  int from_stdin = (strcmp(paths[0], "-") == 0) + (strcmp(paths[1], "-") == 0) + (strcmp(traffic, "-") == 0);
  if (from_stdin > 1) return cli_usage_error(&cmd_diff, "only one of OLD, NEW and --traffic can be standard input");

  int status = EXIT_USAGE;
  clause_options *opts = cli_options(&common);
  clause_program *old_p = opts ? cli_load_program(paths[0], opts, true) : NULL;
  clause_program *new_p = opts ? cli_load_program(paths[1], opts, true) : NULL;
  traffic_reader *tr = NULL;
  if (old_p && new_p) {
    if (old_p->kind != PROG_POLICY || new_p->kind != PROG_POLICY) {
      fprintf(stderr, "%s: error: not a policy program\n", old_p->kind != PROG_POLICY ? paths[0] : paths[1]);
    } else {
      char err[512];
      tr = traffic_open(traffic, err, sizeof err);
      if (!tr) fprintf(stderr, "clause: %s\n", err);
    }
  }
  if (tr) status = diff_traffic(old_p, new_p, paths[0], paths[1], tr, common.store);
  traffic_close(tr);
  clause_program_free(old_p);
  clause_program_free(new_p);
  clause_options_free(opts);
  return status;
}
