/*
 * check.c - the checker's work on declarations (SPEC sections 3 and 5):
 * policy settings, the one namespace (and one per imported module), the
 * input schema, externs, lets and their cycles, counters, rules and tests.
 * Expressions are check_expr.c's.
 */
#include <stdlib.h>
#include <string.h>

#include "../include/clause.h"
#include "check_internal.h"
#include "parse.h"

static const type *prim(type_kind k) { return type_prim(k); }

static bool loc_before(srcloc x, srcloc y) { return x.line < y.line || (x.line == y.line && x.col < y.col); }

static const char *effect_word(effect_kind e) {
  switch (e) {
  case EFF_ALLOW: return "allow";
  case EFF_FLAG: return "flag";
  case EFF_THROTTLE: return "throttle";
  case EFF_DENY: return "deny";
  case EFF_SUSPEND: return "suspend";
  }
  return "?";
}

/* ---- settings ------------------------------------------------------------------ */

typedef struct setting_spec {
  const char *name;
  const char *words[3]; /* the values it takes; none for version */
} setting_spec;

static const setting_spec setting_specs[] = {
    {"version", {NULL}},
    {"default", {"allow", "deny", NULL}},
    {"combine", {"deny_overrides", "first_match", NULL}},
    {"on_error", {"skip", "deny", NULL}},
    {"on_store_error", {"allow", "deny", NULL}},
};
#define NSETTINGS ((int)(sizeof setting_specs / sizeof *setting_specs))

static void check_settings(checker *c) {
  policy_file *pf = c->pf;
  pf->default_effect = EFF_ALLOW;
  pf->combine = COMBINE_DENY_OVERRIDES;
  pf->on_error_deny = false;
  pf->on_store_error_allow = false;
  pf->version = NULL;

  const char *names[NSETTINGS];
  for (int k = 0; k < NSETTINGS; k++) names[k] = setting_specs[k].name;
  const setting *seen[NSETTINGS] = {0};

  for (int i = 0; i < pf->nsettings; i++) {
    const setting *s = &pf->settings[i];
    if (!s->name) continue;
    int k = 0;
    while (k < NSETTINGS && strcmp(setting_specs[k].name, s->name) != 0) k++;
    if (k == NSETTINGS) {
      const char *near = diag_suggest(s->name, names, NSETTINGS);
      if (near) diag_error(c->d, s->loc, "unknown setting `%s`; did you mean `%s`?", s->name, near);
      else
        diag_error(c->d, s->loc,
                   "unknown setting `%s` (expected version, default, combine, on_error or on_store_error)",
                   s->name);
      continue;
    }
    if (seen[k]) {
      diag_error(c->d, s->loc, "duplicate setting `%s` (first set at line %d)", s->name, seen[k]->loc.line);
      continue;
    }
    seen[k] = s;
    const setting_spec *spec = &setting_specs[k];
    if (!spec->words[0]) { /* version */
      if (s->string) pf->version = s->string;
      else if (s->word) diag_error(c->d, s->value_loc, "`version` takes a string, such as version \"2024-01-10\"");
      continue;
    }
    const char *expected = strcmp(spec->name, "combine") == 0 ? "deny_overrides or first_match"
                           : strcmp(spec->name, "on_error") == 0 ? "skip or deny"
                                                                  : "allow or deny";
    if (!s->word) {
      if (s->string) diag_error(c->d, s->value_loc, "`%s` takes %s, not a string", s->name, expected);
      continue;
    }
    int w = 0;
    while (w < 2 && strcmp(spec->words[w], s->word) != 0) w++;
    if (w == 2) {
      const char *near = diag_suggest(s->word, spec->words, 2);
      if (near)
        diag_error(c->d, s->value_loc, "unknown value `%s` for `%s`; did you mean `%s`?", s->word, s->name, near);
      else diag_error(c->d, s->value_loc, "unknown value `%s` for `%s` (expected %s)", s->word, s->name, expected);
      continue;
    }
    if (strcmp(spec->name, "default") == 0) pf->default_effect = w == 0 ? EFF_ALLOW : EFF_DENY;
    else if (strcmp(spec->name, "combine") == 0)
      pf->combine = w == 0 ? COMBINE_DENY_OVERRIDES : COMBINE_FIRST_MATCH;
    else if (strcmp(spec->name, "on_error") == 0) pf->on_error_deny = w == 1;
    else pf->on_store_error_allow = w == 0;
  }
}

/* ---- the namespace ---------------------------------------------------------------- */

static const char *name_kind_text(name_kind k) {
  switch (k) {
  case NK_FIELD_ROOT: return "an input root";
  case NK_LET: return "a let";
  case NK_COUNTER: return "a counter";
  case NK_EXTERN: return "an extern function";
  case NK_ALIAS: return "an import alias";
  }
  return "a name";
}

static int cmp_entries(const void *x, const void *y) {
  const ns_entry *a = x, *b = y;
  if (loc_before(a->loc, b->loc)) return -1;
  if (loc_before(b->loc, a->loc)) return 1;
  return (int)a->kind - (int)b->kind;
}

static void admit_names(checker *c, ns_entry *all, int n);

/* Input roots, lets, counters, externs and import aliases share one
 * namespace with `now`: the second of two declarations is the error. */
static void build_namespace(checker *c) {
  policy_file *pf = c->pf;
  int cap = pf->nfields + pf->nlets + pf->ncounters + pf->nexterns + pf->nimports;
  ns_entry *all = cap ? arena_alloc(c->a, (size_t)cap * sizeof *all) : NULL;
  c->names = cap ? arena_alloc(c->a, (size_t)cap * sizeof *c->names) : NULL;
  if (cap && (!all || !c->names)) return;
  int n = 0;
  for (int i = 0; i < pf->nfields; i++) {
    const field_decl *f = &pf->fields[i];
    if (f->nsegs < 1) continue;
    /* one entry per root: its first field in the file */
    int k = 0;
    while (k < n && strcmp(all[k].name, f->segs[0]) != 0) k++;
    if (k < n) {
      if (loc_before(f->loc, all[k].loc)) {
        all[k].loc = f->loc;
        all[k].index = i;
      }
      continue;
    }
    all[n++] = (ns_entry){f->segs[0], NK_FIELD_ROOT, i, f->loc};
  }
  for (int i = 0; i < pf->nlets; i++)
    if (!pf->lets[i].module && pf->lets[i].name) all[n++] = (ns_entry){pf->lets[i].name, NK_LET, i, pf->lets[i].loc};
  for (int i = 0; i < pf->ncounters; i++)
    if (pf->counters[i].name) all[n++] = (ns_entry){pf->counters[i].name, NK_COUNTER, i, pf->counters[i].loc};
  for (int i = 0; i < pf->nexterns; i++)
    if (!pf->externs[i].module && pf->externs[i].name)
      all[n++] = (ns_entry){pf->externs[i].name, NK_EXTERN, i, pf->externs[i].loc};
  for (int i = 0; i < pf->nimports; i++)
    if (pf->imports[i].alias)
      all[n++] = (ns_entry){pf->imports[i].alias, NK_ALIAS, i, pf->imports[i].alias_loc};
  admit_names(c, all, n);
}

/* Admits declarations (in any order) to the current namespace in their
 * order in the source: the second of two with one name is the error. */
static void admit_names(checker *c, ns_entry *all, int n) {
  if (n > 1) qsort(all, (size_t)n, sizeof *all, cmp_entries);
  for (int i = 0; i < n; i++) {
    const ns_entry *e = &all[i];
    const ns_entry *first = ck_lookup(c, e->name);
    if (first) {
      diag_error(c->d, e->loc, "`%s` is already declared as %s at line %d", e->name, name_kind_text(first->kind),
                 first->loc.line);
    } else if (strcmp(e->name, "now") == 0) {
      diag_error(c->d, e->loc, "`now` is predefined (the request's time) and cannot be declared");
    } else {
      c->names[c->nnames++] = *e;
    }
  }
}

/* A module's namespace: its lets, externs and import aliases. */
static bool in_module(const char *module, const check_module *m) {
  return module && strcmp(module, m->path) == 0;
}

static void build_module_namespace(checker *c, int k) {
  const policy_file *pf = c->pf;
  const check_module *m = &c->mods[k];
  int cap = m->nimports;
  for (int i = 0; i < pf->nlets; i++) cap += in_module(pf->lets[i].module, m);
  for (int i = 0; i < pf->nexterns; i++) cap += in_module(pf->externs[i].module, m);
  ns_entry *all = arena_alloc(c->a, (size_t)(cap ? cap : 1) * sizeof *all);
  c->names = arena_alloc(c->a, (size_t)(cap ? cap : 1) * sizeof *c->names);
  c->nnames = 0;
  if (!all || !c->names) return;
  int n = 0;
  for (int i = 0; i < pf->nlets; i++)
    if (in_module(pf->lets[i].module, m) && pf->lets[i].name)
      all[n++] = (ns_entry){pf->lets[i].name, NK_LET, i, pf->lets[i].loc};
  for (int i = 0; i < pf->nexterns; i++)
    if (in_module(pf->externs[i].module, m) && pf->externs[i].name)
      all[n++] = (ns_entry){pf->externs[i].name, NK_EXTERN, i, pf->externs[i].loc};
  for (int i = 0; i < m->nimports; i++)
    if (m->imports[i].alias) all[n++] = (ns_entry){m->imports[i].alias, NK_ALIAS, i, m->imports[i].alias_loc};
  admit_names(c, all, n);
}

/* Makes `module` (NULL: the file) the scope names resolve in. */
static void enter_scope(checker *c, const char *module) {
  if (c->module == module || (c->module && module && strcmp(c->module, module) == 0)) return;
  if (!module) {
    c->names = c->mod_names[c->nmods];
    c->nnames = c->mod_nnames[c->nmods];
    c->imports = c->pf->imports;
    c->nimports = c->pf->nimports;
    c->module = NULL;
    return;
  }
  for (int k = 0; k < c->nmods; k++) {
    if (strcmp(c->mods[k].path, module) != 0) continue;
    c->names = c->mod_names[k];
    c->nnames = c->mod_nnames[k];
    c->imports = c->mods[k].imports;
    c->nimports = c->mods[k].nimports;
    c->module = module;
    return;
  }
}

/* Module paths are compared as strings: each import names its module by
 * its own copy of the path. */
int ck_module_let(const checker *c, const char *path, const char *name) {
  const policy_file *pf = c->pf;
  for (int i = 0; i < pf->nlets; i++)
    if (pf->lets[i].module && pf->lets[i].name && strcmp(pf->lets[i].module, path) == 0 &&
        strcmp(pf->lets[i].name, name) == 0)
      return i;
  return -1;
}

int ck_module_extern(const checker *c, const char *path, const char *name) {
  const policy_file *pf = c->pf;
  for (int i = 0; i < pf->nexterns; i++)
    if (pf->externs[i].module && pf->externs[i].name && strcmp(pf->externs[i].module, path) == 0 &&
        strcmp(pf->externs[i].name, name) == 0)
      return i;
  return -1;
}

/* ---- input, externs --------------------------------------------------------------- */

static bool path_prefix(const field_decl *shorter, const field_decl *longer) {
  if (shorter->nsegs > longer->nsegs) return false;
  for (int i = 0; i < shorter->nsegs; i++)
    if (strcmp(shorter->segs[i], longer->segs[i]) != 0) return false;
  return true;
}

static void check_fields(checker *c) {
  policy_file *pf = c->pf;
  int clock = -1;
  for (int i = 0; i < pf->nfields; i++) {
    const field_decl *f = &pf->fields[i];
    for (int j = 0; j < i; j++) {
      const field_decl *g = &pf->fields[j];
      const field_decl *later = loc_before(f->loc, g->loc) ? g : f, *earlier = later == f ? g : f;
      if (later->nsegs == earlier->nsegs) {
        if (path_prefix(later, earlier))
          diag_error(c->d, later->loc, "duplicate input field `%s` (first declared at line %d)", later->path,
                     earlier->loc.line);
      } else if (path_prefix(later, earlier)) {
        diag_error(c->d, later->loc, "input path `%s` is a prefix of the field `%s` (line %d)", later->path,
                   earlier->path, earlier->loc.line);
      } else if (path_prefix(earlier, later)) {
        diag_error(c->d, later->loc, "input path `%s` extends the field `%s` (line %d): a field cannot have fields",
                   later->path, earlier->path, earlier->loc.line);
      }
    }
    if (!f->clock) continue;
    if (clock >= 0) {
      diag_error(c->d, f->loc, "only one input field may carry @clock (`%s` already does)", pf->fields[clock].path);
      continue;
    }
    clock = i;
    if (f->ty && f->ty->kind != T_TIMESTAMP && f->ty->kind != T_ERROR)
      diag_error(c->d, f->loc, "the @clock field `%s` must be a timestamp, not %s", f->path, ck_type_name(c, f->ty));
  }
}

/* The C types of SPEC section 6. */
static bool ffi_type_ok(const type *t) {
  if (!t) return false;
  switch (t->kind) {
  case T_BOOL: case T_INT: case T_UINT: case T_DOUBLE: case T_STRING: case T_TIMESTAMP: case T_DURATION:
    return true;
  default:
    return false;
  }
}

#define FFI_TYPES "bool, int, uint, double, string, timestamp or duration"

static void check_externs(checker *c) {
  policy_file *pf = c->pf;
  for (int i = 0; i < pf->nexterns; i++) {
    const extern_decl *x = &pf->externs[i];
    for (int p = 0; p < x->nparams; p++) {
      const param_decl *pd = &x->params[p];
      if (pd->ty && pd->ty->kind != T_ERROR && !ffi_type_ok(pd->ty))
        diag_error(c->d, pd->loc, "parameter `%s` of `%s` has type %s; an extern takes " FFI_TYPES, pd->name,
                   x->name, ck_type_name(c, pd->ty));
      for (int q = 0; q < p; q++)
        if (pd->name && x->params[q].name && strcmp(pd->name, x->params[q].name) == 0) {
          diag_error(c->d, pd->loc, "duplicate parameter `%s`", pd->name);
          break;
        }
    }
    if (x->nparams > CLAUSE_MAX_PARAMS)
      diag_error(c->d, x->params[CLAUSE_MAX_PARAMS].loc, "`%s` has %d parameters; an extern takes at most %d",
                 x->name, x->nparams, CLAUSE_MAX_PARAMS);
    if (x->ret && x->ret->kind != T_ERROR && !ffi_type_ok(x->ret))
      diag_error(c->d, x->loc, "`%s` returns %s; an extern returns " FFI_TYPES, x->name, ck_type_name(c, x->ret));
  }
}

/* ---- lets ---------------------------------------------------------------------------- */

/* A let is checked on its first use (or in file order) as a top-level
 * expression of its own: no comprehension variables, guards or context
 * restrictions of the place that reads it. */
const type *ck_let_type(checker *c, int index, srcloc use) {
  policy_file *pf = c->pf;
  switch ((let_state)c->let_states[index]) {
  case LET_DONE:
    return c->let_types[index];
  case LET_CHECKING: {
    /* the cycle: the lets from `index` on the stack, back to it */
    char buf[512];
    size_t at = 0;
    int from = c->nlet_stack - 1;
    while (from > 0 && c->let_stack[from] != index) from--;
    for (int i = from; i < c->nlet_stack && at < sizeof buf - 80; i++)
      at += (size_t)snprintf(buf + at, sizeof buf - at, "`%s` -> ", pf->lets[c->let_stack[i]].name);
    snprintf(buf + at, sizeof buf - at, "`%s`", pf->lets[index].name);
    diag_error(c->d, use, "let `%s` depends on itself: %s", pf->lets[index].name, buf);
    return prim(T_ERROR);
  }
  case LET_UNCHECKED:
    break;
  }
  c->let_states[index] = LET_CHECKING;
  c->let_stack[c->nlet_stack++] = index;
  const char *saved_module = c->module;
  enter_scope(c, pf->lets[index].module);
  const char *saved_const = c->const_what;
  int saved_counter = c->counter_self, saved_guards = c->guards_base;
  c->const_what = NULL;
  c->counter_self = -1;
  c->guards_base = c->nguards;
  const expr *v = pf->lets[index].value;
  const type *t = v ? ck_top_expr(c, pf->lets[index].value) : prim(T_DYN);
  c->const_what = saved_const;
  c->counter_self = saved_counter;
  c->guards_base = saved_guards;
  enter_scope(c, saved_module);
  c->nlet_stack--;
  c->let_types[index] = t;
  c->let_states[index] = LET_DONE;
  return t;
}

/* ---- counters ------------------------------------------------------------------------- */

static void check_counter(checker *c, int index) {
  counter_decl *k = &c->pf->counters[index];
  c->counter_self = index;
  if (k->key) ck_top_expr(c, k->key);
  if (k->window) {
    expr *w = k->window;
    if (w->kind != E_LITERAL || w->lit.kind != CV_DURATION)
      diag_error(c->d, w->loc, "a counter window must be a duration literal, such as 1m or 24h");
    else if (w->lit.i <= 0)
      diag_error(c->d, w->loc, "a counter window must be positive");
    w->ty = prim(T_DURATION);
  }
  if (k->add) {
    const type *t = ck_top_expr(c, k->add);
    if (!ck_type_unknown(t) && t->kind != T_INT)
      diag_error(c->d, k->add->loc, "a counter's `add` must be int, not %s", ck_type_name(c, t));
  }
  if (k->distinct) ck_top_expr(c, k->distinct);
  for (int i = 0; i < k->non; i++) {
    if (k->on[i] == EFF_FLAG) {
      diag_error(c->d, k->on_locs[i], "`on flag` is not allowed: flag rules never decide");
      continue;
    }
    for (int j = 0; j < i; j++)
      if (k->on[j] == k->on[i]) {
        diag_error(c->d, k->on_locs[i], "`%s` is already listed in `on`", effect_word(k->on[i]));
        break;
      }
  }
  c->counter_self = -1;
}

/* ---- rules ------------------------------------------------------------------------------ */

static void expect_type(checker *c, expr *e, type_kind want, const char *what) {
  const type *t = ck_top_expr(c, e);
  if (ck_type_unknown(t) || t->kind == want) return;
  if (want == T_BOOL) diag_error(c->d, e->loc, "condition must be bool, not %s", ck_type_name(c, t));
  else diag_error(c->d, e->loc, "%s must be %s, not %s", what, ck_type_name(c, prim(want)), ck_type_name(c, t));
}

static void check_rule(checker *c, int index) {
  rule_decl *r = &c->pf->rules[index];
  for (int j = 0; j < index; j++)
    if (r->id && c->pf->rules[j].id && strcmp(r->id, c->pf->rules[j].id) == 0) {
      diag_error(c->d, r->loc, "duplicate rule id \"%s\" (first used at line %d)", r->id, c->pf->rules[j].loc.line);
      break;
    }
  if (r->when) expect_type(c, r->when, T_BOOL, "condition");
  /* Everything else runs only once `when` is true: its has() tests
   * guard them. */
  int saved = c->nguards;
  if (r->when) ck_push_guards_of(c, r->when);
  if (r->unless) expect_type(c, r->unless, T_BOOL, "condition");
  if (r->reason) expect_type(c, r->reason, T_STRING, "a reason");
  if (r->retry_after) expect_type(c, r->retry_after, T_DURATION, "retry_after");
  if (r->suspend_key) ck_top_expr(c, r->suspend_key);
  if (r->suspend_for) expect_type(c, r->suspend_for, T_DURATION, "the suspension time after `for`");
  for (int i = 0; i < r->nthens; i++)
    for (int j = 0; j < r->thens[i].nargs; j++)
      if (r->thens[i].args[j]) ck_top_expr(c, r->thens[i].args[j]);
  c->nguards = saved;
}

/* ---- tests ------------------------------------------------------------------------------ */

static int find_rule(const policy_file *pf, const char *id) {
  for (int i = 0; i < pf->nrules; i++)
    if (pf->rules[i].id && strcmp(pf->rules[i].id, id) == 0) return i;
  return -1;
}

static void check_test(checker *c, int index) {
  policy_file *pf = c->pf;
  const test_decl *t = &pf->tests[index];
  for (int s = 0; s < t->nsteps; s++) {
    test_step *st = &t->steps[s];
    if (st->given) {
      if (st->given->kind != E_MAP)
        diag_error(c->d, st->given->loc, "`given` must be a map literal, such as {\"account\": {\"id\": \"a1\"}}");
      c->const_what = "a test's `given`";
      ck_top_expr(c, st->given);
      c->const_what = NULL;
    }
    for (int e = 0; e < st->nexpects; e++) {
      const expect_clause *x = &st->expects[e];
      if (!x->flagged && x->effect == EFF_FLAG)
        diag_error(c->d, x->loc, "`flag` is not a decision; write expect flagged \"RULE\"");
      if (!x->rule) continue;
      int r = find_rule(pf, x->rule);
      if (r < 0) {
        const char **ids = arena_alloc(c->a, (size_t)(pf->nrules ? pf->nrules : 1) * sizeof *ids);
        int n = 0;
        for (int i = 0; ids && i < pf->nrules; i++)
          if (pf->rules[i].id) ids[n++] = pf->rules[i].id;
        const char *near = n ? diag_suggest(x->rule, ids, n) : NULL;
        if (near) diag_error(c->d, x->loc, "unknown rule \"%s\"; did you mean \"%s\"?", x->rule, near);
        else diag_error(c->d, x->loc, "unknown rule \"%s\"", x->rule);
      } else if (x->flagged && pf->rules[r].has_effect && pf->rules[r].effect != EFF_FLAG) {
        diag_warning(c->d, x->loc, "rule \"%s\" is a %s rule, not a flag rule: `expect flagged` cannot pass",
                     x->rule, effect_word(pf->rules[r].effect));
      }
    }
  }
}

/* ---- driver ------------------------------------------------------------------------------- */

/* Orders the records added since `mark` by position (stably), so that
 * the output follows the file whatever order the checks ran in; records of
 * imported modules stay together, each module's in its own order. */
static void sort_diags(diag_list *d, diag *mark, arena *a, const source *main_src) {
  diag *first = mark ? mark->next : d->head;
  int n = 0;
  for (diag *p = first; p; p = p->next) n++;
  if (n < 2) return;
  diag **v = arena_alloc(a, (size_t)n * sizeof *v);
  const source **srcs = arena_alloc(a, (size_t)(n + 1) * sizeof *srcs);
  int *group = arena_alloc(a, (size_t)n * sizeof *group);
  if (!v || !srcs || !group) return;
  int i = 0, nsrcs = 0;
  srcs[nsrcs++] = main_src; /* the file's own records first */
  for (diag *p = first; p; p = p->next, i++) {
    v[i] = p;
    int g = 0;
    while (g < nsrcs && srcs[g] != p->loc.src) g++;
    if (g == nsrcs) srcs[nsrcs++] = p->loc.src;
    group[i] = g;
  }
  for (int k = 1; k < n; k++) { /* insertion sort: stable, and n is small */
    diag *x = v[k];
    int gx = group[k];
    int j = k - 1;
    while (j >= 0 && (gx < group[j] || (gx == group[j] && loc_before(x->loc, v[j]->loc)))) {
      group[j + 1] = group[j];
      v[j + 1] = v[j];
      j--;
    }
    v[j + 1] = x;
    group[j + 1] = gx;
  }
  for (i = 0; i + 1 < n; i++) v[i]->next = v[i + 1];
  v[n - 1]->next = NULL;
  if (mark) mark->next = v[0];
  else d->head = v[0];
  d->tail = v[n - 1];
}

static void checker_init(checker *c, arena *a, diag_list *d) {
  memset(c, 0, sizeof *c);
  c->a = a;
  c->d = d;
  c->report_types = true;
  c->counter_self = -1;
}

bool check_policy(policy_file *pf, arena *a, diag_list *d) { return check_policy_modules(pf, NULL, 0, a, d); }

bool check_policy_modules(policy_file *pf, const check_module *mods, int nmods, arena *a, diag_list *d) {
  int errors = d->errors;
  diag *mark = d->tail;
  checker *c = arena_alloc(a, sizeof *c);
  if (!c) {
    diag_error(d, (srcloc){0}, "out of memory");
    return false;
  }
  checker_init(c, a, d);
  c->pf = pf;
  int nl = pf->nlets ? pf->nlets : 1;
  c->let_states = arena_alloc(a, (size_t)nl);
  c->let_types = arena_alloc(a, (size_t)nl * sizeof *c->let_types);
  c->let_stack = arena_alloc(a, (size_t)nl * sizeof *c->let_stack);
  if (!c->let_states || !c->let_types || !c->let_stack) {
    diag_error(d, (srcloc){0}, "out of memory");
    return false;
  }
  memset(c->let_states, 0, (size_t)nl);

  /* One namespace per module, then the file's (the last slot). */
  c->mods = mods;
  c->nmods = nmods;
  c->mod_names = arena_alloc(a, (size_t)(nmods + 1) * sizeof *c->mod_names);
  c->mod_nnames = arena_alloc(a, (size_t)(nmods + 1) * sizeof *c->mod_nnames);
  if (!c->mod_names || !c->mod_nnames) {
    diag_error(d, (srcloc){0}, "out of memory");
    return false;
  }
  for (int k = 0; k < nmods; k++) {
    build_module_namespace(c, k);
    c->mod_names[k] = c->names;
    c->mod_nnames[k] = c->nnames;
  }
  c->names = NULL;
  c->nnames = 0;
  c->imports = pf->imports;
  c->nimports = pf->nimports;

  check_settings(c);
  build_namespace(c);
  c->mod_names[nmods] = c->names;
  c->mod_nnames[nmods] = c->nnames;
  check_fields(c);
  check_externs(c);
  /* The file's lets, then the modules' (unused ones too: their errors are
   * the module's, whoever imports it). */
  for (int i = 0; i < pf->nlets; i++)
    if (!pf->lets[i].module) ck_let_type(c, i, pf->lets[i].loc);
  for (int i = 0; i < pf->nlets; i++)
    if (pf->lets[i].module) ck_let_type(c, i, pf->lets[i].loc);
  for (int i = 0; i < pf->ncounters; i++) check_counter(c, i);
  for (int i = 0; i < pf->nrules; i++) check_rule(c, i);
  for (int i = 0; i < pf->ntests; i++) check_test(c, i);

  sort_diags(d, mark, a, pf->src);
  return d->errors == errors;
}

bool check_expression(expr *e, const check_var *vars, int nvars, bool disable_check, arena *a, diag_list *d) {
  int errors = d->errors;
  diag *mark = d->tail;
  checker *c = arena_alloc(a, sizeof *c);
  if (!c) {
    diag_error(d, (srcloc){0}, "out of memory");
    return false;
  }
  checker_init(c, a, d);
  c->vars = vars;
  c->nvars = nvars;
  c->report_types = !disable_check;
  if (e) ck_top_expr(c, e);
  sort_diags(d, mark, a, e ? e->loc.src : NULL);
  return d->errors == errors;
}
