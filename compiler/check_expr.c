/*
 * check_expr.c - the checker's work inside one CEL expression: names
 * (comprehension variables, input fields, lets, counters, `now`, `clause
 * expr` variables, type names), macros, calls, static types, and the
 * optional-field warning.
 *
 * Typing follows CEL's checker where it can prove a mismatch and otherwise
 * defers to run time: dyn (and `any` fields) match everything, and an
 * expression whose error was reported gets T_ERROR so that nothing around
 * it reports again.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../vm/cel.h"
#include "../vm/cel_types.h"
#include "check_internal.h"
#include "parse.h"

#define MAX_CHAIN 256 /* nesting is limited to 250 by the parser */

/* ---- types ----------------------------------------------------------------- */

static const type *prim(type_kind k) { return type_prim(k); }

static bool is_error(const type *t) { return t && t->kind == T_ERROR; }

bool ck_type_unknown(const type *t) { return !t || t->kind == T_DYN || t->kind == T_ERROR; }

static bool is_numeric(const type *t) {
  return t && (t->kind == T_INT || t->kind == T_UINT || t->kind == T_DOUBLE);
}

static bool type_equal(const type *x, const type *y) {
  if (ck_type_unknown(x) || ck_type_unknown(y)) return ck_type_unknown(x) && ck_type_unknown(y);
  if (x->kind != y->kind) return false;
  if (x->kind == T_LIST) return type_equal(x->elem, y->elem);
  if (x->kind == T_MAP) return type_equal(x->key, y->key) && type_equal(x->elem, y->elem);
  return true;
}

/* Could a value of static type x equal one of type y? CEL's heterogeneous
 * equality makes the numeric types comparable; null compares (false) with
 * anything, so it is never reported. */
static bool eq_compatible(const type *x, const type *y) {
  if (ck_type_unknown(x) || ck_type_unknown(y)) return true;
  if (x->kind == T_NULL || y->kind == T_NULL) return true;
  if (is_numeric(x) && is_numeric(y)) return true;
  if (x->kind != y->kind) return false;
  if (x->kind == T_LIST) return eq_compatible(x->elem, y->elem);
  if (x->kind == T_MAP) return eq_compatible(x->key, y->key) && eq_compatible(x->elem, y->elem);
  return true;
}

/* The type of a list element or conditional result that may be x or y. */
static const type *type_join(const type *x, const type *y) {
  if (!x) return y;
  if (is_error(x) || is_error(y)) return prim(T_ERROR);
  if (type_equal(x, y)) return x;
  return prim(T_DYN);
}

const char *ck_type_name(checker *c, const type *t) {
  if (!t || t->kind == T_DYN) return "dyn";
  if (t->kind == T_ERROR) return "error";
  char buf[256];
  outbuf o;
  ob_init_fixed(&o, buf, sizeof buf);
  type_format(&o, t);
  ob_cstr(&o);
  size_t n = o.len < sizeof buf ? o.len : sizeof buf - 1;
  const char *s = arena_strndup(c->a, buf, n);
  return s ? s : "?";
}

static const type *list_of(checker *c, const type *elem) {
  const type *t = type_list(c->a, elem ? elem : prim(T_DYN));
  return t ? t : prim(T_DYN);
}

/* Reports a type error when type errors are wanted; the result is what the
 * offending expression's type becomes. */
static const type *type_error(checker *c, srcloc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static const type *type_error(checker *c, srcloc loc, const char *fmt, ...) {
  if (!c->report_types) return prim(T_DYN);
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  diag_error(c->d, loc, "%s", msg);
  return prim(T_ERROR);
}

/* An unknown name or function. Without type checking (CEL's unchecked
 * evaluation) it is an evaluation error, not a compile error: a warning
 * then, and the node stays unresolved for the code generator. Returns
 * whether it was an error. */
static bool unresolved(checker *c, srcloc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool unresolved(checker *c, srcloc loc, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (c->report_types) diag_error(c->d, loc, "%s", msg);
  else diag_warning(c->d, loc, "%s (an error when evaluated)", msg);
  return c->report_types;
}

/* ---- small helpers ----------------------------------------------------------- */

static const char *ident_name(const expr *id) { return id->name[0] == '.' ? id->name + 1 : id->name; }

static const char *strf(checker *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const char *strf(checker *c, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if ((size_t)n >= sizeof buf) n = sizeof buf - 1;
  const char *s = arena_strndup(c->a, buf, (size_t)n);
  return s ? s : "";
}

/* The nodes of a dotted name `a.b.c` (E_SELECTs down to an E_IDENT),
 * innermost first; 0 when e is not such a chain. */
static int chain_of(expr *e, expr **nodes) {
  int n = 1;
  expr *p = e;
  while (p->kind == E_SELECT) {
    if (!p->operand || n >= MAX_CHAIN) return 0;
    p = p->operand;
    n++;
  }
  if (p->kind != E_IDENT || !p->name) return 0;
  int i = n - 1;
  for (p = e; p->kind == E_SELECT; p = p->operand) nodes[i--] = p;
  nodes[0] = p;
  return n;
}

/* "a.b.c" for nodes[0..last]. */
static const char *chain_text(checker *c, expr **nodes, int last) {
  size_t len = 0;
  for (int i = 0; i <= last; i++) len += strlen(i ? nodes[i]->name : ident_name(nodes[0])) + 1;
  char *s = arena_alloc(c->a, len + 1);
  if (!s) return "";
  size_t at = 0;
  for (int i = 0; i <= last; i++) {
    const char *seg = i ? nodes[i]->name : ident_name(nodes[0]);
    if (i) s[at++] = '.';
    size_t n = strlen(seg);
    memcpy(s + at, seg, n);
    at += n;
  }
  s[at] = 0;
  return s;
}

/* "a.b" for the first n segments of a field path. */
static const char *segs_text(checker *c, const field_decl *f, int n) {
  size_t len = 1;
  for (int i = 0; i < n; i++) len += strlen(f->segs[i]) + 1;
  char *s = arena_alloc(c->a, len);
  if (!s) return "";
  size_t at = 0;
  for (int i = 0; i < n; i++) {
    if (i) s[at++] = '.';
    size_t m = strlen(f->segs[i]);
    memcpy(s + at, f->segs[i], m);
    at += m;
  }
  s[at] = 0;
  return s;
}

static void set_ref(expr *e, ref_kind r, int index, const type *t) {
  e->ref = r;
  e->ref_index = index;
  e->ty = t ? t : prim(T_DYN);
}

/* A growable list of names for did-you-mean. */
typedef struct name_list {
  const char **v;
  int n, cap;
} name_list;

static void names_add(checker *c, name_list *l, const char *s) {
  if (!s) return;
  if (l->n == l->cap) {
    int cap = l->cap ? l->cap * 2 : 32;
    const char **v = arena_alloc(c->a, (size_t)cap * sizeof *v);
    if (!v) return;
    if (l->n) memcpy(v, l->v, (size_t)l->n * sizeof *v);
    l->v = v;
    l->cap = cap;
  }
  l->v[l->n++] = s;
}

static const char *suggest(const char *word, const name_list *l) {
  return l->n ? diag_suggest(word, l->v, l->n) : NULL;
}

const ns_entry *ck_lookup(const checker *c, const char *name) {
  for (int i = 0; i < c->nnames; i++)
    if (strcmp(c->names[i].name, name) == 0) return &c->names[i];
  return NULL;
}

static const local_var *find_local(const checker *c, const char *name) {
  for (int i = c->nlocals - 1; i >= c->locals_base; i--)
    if (strcmp(c->locals[i].name, name) == 0) return &c->locals[i];
  return NULL;
}

static int find_var(const checker *c, const char *name) {
  for (int i = 0; i < c->nvars; i++)
    if (c->vars[i].name && strcmp(c->vars[i].name, name) == 0) return i;
  return -1;
}

/* Does any `clause expr` variable start with the segment `root`? */
static bool var_root(const checker *c, const char *root) {
  size_t n = strlen(root);
  for (int i = 0; i < c->nvars; i++) {
    const char *v = c->vars[i].name;
    if (v && strncmp(v, root, n) == 0 && (v[n] == 0 || v[n] == '.')) return true;
  }
  return false;
}

/* Is `root` a name of the program (so that `root.f(...)` is a method call
 * on it rather than a namespaced function such as math.greatest)? */
static bool name_declared(const checker *c, const expr *id) {
  const char *root = ident_name(id);
  if (id->name[0] != '.' && find_local(c, root)) return true;
  if (var_root(c, root) || ck_lookup(c, root)) return true;
  return strcmp(root, "now") == 0;
}

/* ---- optional-field guards ----------------------------------------------------- */

static void guard_add(checker *c, int field) {
  if (c->nguards == c->cap_guards) {
    int cap = c->cap_guards ? c->cap_guards * 2 : 16;
    int *g = arena_alloc(c->a, (size_t)cap * sizeof *g);
    if (!g) return;
    if (c->nguards) memcpy(g, c->guards, (size_t)c->nguards * sizeof *g);
    c->guards = g;
    c->cap_guards = cap;
  }
  c->guards[c->nguards++] = field;
}

static bool guarded(const checker *c, int field) {
  for (int i = c->guards_base; i < c->nguards; i++)
    if (c->guards[i] == field) return true;
  return false;
}

/* The input field a checked has() call proves present, or -1. has(f) proves
 * f; has(f.key) on a map field proves f as well. */
static int has_field(const expr *e) {
  if (e->kind != E_CALL || e->macro != M_HAS || e->nargs != 1 || !e->args[0]) return -1;
  const expr *arg = e->args[0];
  if (arg->ref == REF_FIELD) return arg->ref_index;
  if (arg->kind == E_SELECT && arg->operand && arg->operand->ref == REF_FIELD)
    return arg->operand->ref_index;
  return -1;
}

static void guards_when_false(checker *c, const expr *e);

/* Fields proven present where `e` is true: has() calls among its && chain,
 * and the has() calls under a negated || chain. */
static void guards_when_true(checker *c, const expr *e) {
  if (!e) return;
  int f = has_field(e);
  if (f >= 0) guard_add(c, f);
  else if (e->kind == E_BINARY && e->op == OP_AND) {
    guards_when_true(c, e->operand);
    if (e->nargs == 1) guards_when_true(c, e->args[0]);
  } else if (e->kind == E_UNARY && e->op == OP_NOT) {
    guards_when_false(c, e->operand);
  }
}

/* Fields proven present where `e` is false: `!has(f) || ...`. */
static void guards_when_false(checker *c, const expr *e) {
  if (!e) return;
  if (e->kind == E_UNARY && e->op == OP_NOT) guards_when_true(c, e->operand);
  else if (e->kind == E_BINARY && e->op == OP_OR) {
    guards_when_false(c, e->operand);
    if (e->nargs == 1) guards_when_false(c, e->args[0]);
  }
}

void ck_push_guards_of(checker *c, const expr *cond) { guards_when_true(c, cond); }

/* A read of input field `index` at `node`: warns when the field is optional
 * and no has() guards it. */
static void field_read(checker *c, const expr *node, int index) {
  const field_decl *f = &c->pf->fields[index];
  if (f->optional && !guarded(c, index))
    diag_warning(c->d, node->loc, "optional field `%s` read without a has() guard", f->path);
}

/* ---- names --------------------------------------------------------------------- */

static const type *select_type(checker *c, expr *node, const type *opty, bool presence);

/* Types nodes[from..n) as selections on the value of nodes[from-1]. With
 * `presence`, the last one is the has() test. */
static const type *select_values(checker *c, expr **nodes, int from, int n, bool presence) {
  for (int i = from; i < n; i++) {
    nodes[i]->ref = REF_NONE;
    nodes[i]->ty = select_type(c, nodes[i], nodes[i - 1]->ty, presence && i == n - 1);
  }
  return nodes[n - 1]->ty;
}

static const type *select_type(checker *c, expr *node, const type *opty, bool presence) {
  if (is_error(opty)) return opty;
  if (ck_type_unknown(opty)) return prim(T_DYN);
  if (opty->kind == T_MAP) {
    if (ck_type_unknown(opty->key) || opty->key->kind == T_STRING)
      return opty->elem ? opty->elem : prim(T_DYN);
    return type_error(c, node->name_loc, "cannot select field `%s` from a map with %s keys", node->name,
                      ck_type_name(c, opty->key));
  }
  if (presence)
    return type_error(c, node->name_loc, "has() cannot test field `%s` of a value of type %s", node->name,
                      ck_type_name(c, opty));
  return type_error(c, node->name_loc, "cannot select field `%s` from a value of type %s", node->name,
                    ck_type_name(c, opty));
}

/* In a test's `given` only constants may appear. */
static bool not_constant(checker *c, expr *node, const char *what) {
  if (!c->const_what) return false;
  diag_error(c->d, node->loc, "%s must be a constant: it cannot read `%s`", c->const_what, what);
  node->ty = prim(T_ERROR);
  return true;
}

/* has(x) on a plain name: only an input field can be tested that way. */
static bool bare_has(checker *c, expr *id, bool presence, int n) {
  if (!presence || n != 1) return false;
  diag_error(c->d, id->loc, "has() needs a field selection such as has(request.purpose)");
  id->ty = prim(T_ERROR);
  return true;
}

static void report_unknown_name(checker *c, expr **nodes, int n) {
  const char *root = ident_name(nodes[0]);
  name_list whole = {0}, roots = {0};
  for (int i = 0; i < c->nnames; i++) names_add(c, &roots, c->names[i].name);
  for (int i = c->locals_base; i < c->nlocals; i++) names_add(c, &roots, c->locals[i].name);
  names_add(c, &roots, "now");
  for (int i = 0; i < c->nvars; i++) {
    names_add(c, &whole, c->vars[i].name);
    const char *v = c->vars[i].name, *dot = v ? strchr(v, '.') : NULL;
    names_add(c, &roots, dot ? arena_strndup(c->a, v, (size_t)(dot - v)) : v);
  }
  if (c->pf && !c->module)
    for (int i = 0; i < c->pf->nfields; i++) names_add(c, &whole, c->pf->fields[i].path);
  if (n > 1) {
    const char *text = chain_text(c, nodes, n - 1);
    const char *s = suggest(text, &whole);
    if (s) {
      unresolved(c, nodes[n - 1]->loc, "unknown name `%s`; did you mean `%s`?", text, s);
      return;
    }
  }
  const char *s = suggest(root, &roots);
  if (s) unresolved(c, nodes[0]->loc, "unknown name `%s`; did you mean `%s`?", root, s);
  else unresolved(c, nodes[0]->loc, "unknown name `%s`", root);
}

/* How many leading segments of field f the chain repeats. */
static int field_match(const field_decl *f, expr **nodes, int n) {
  int m = 0;
  while (m < n && m < f->nsegs &&
         strcmp(f->segs[m], m ? nodes[m]->name : ident_name(nodes[0])) == 0)
    m++;
  return m;
}

/* A chain whose root is an input root: the longest declared path it starts
 * with is the field; deeper selections are on the field's value. */
static const type *resolve_field(checker *c, expr **nodes, int n, bool presence) {
  const policy_file *pf = c->pf;
  int best = -1, best_len = 0, partial = 0, partial_field = -1;
  for (int i = 0; i < pf->nfields; i++) {
    const field_decl *f = &pf->fields[i];
    int m = field_match(f, nodes, n);
    if (m == f->nsegs && m > best_len) {
      best = i;
      best_len = m;
    }
    if (m > partial) {
      partial = m;
      partial_field = i;
    }
  }
  if (best >= 0) {
    expr *node = nodes[best_len - 1];
    if (not_constant(c, node, pf->fields[best].path)) return node->ty;
    const type *fty = pf->fields[best].ty;
    set_ref(node, REF_FIELD, best, fty && fty->kind != T_ERROR ? fty : prim(T_DYN));
    if (presence && best_len == n) return node->ty; /* a presence test, not a read */
    field_read(c, node, best);
    return select_values(c, nodes, best_len, n, presence);
  }
  if (partial == n) {
    expr *node = nodes[n - 1];
    diag_error(c->d, node->loc, "`%s` is not an input field (declared fields extend it, such as `%s`)",
               chain_text(c, nodes, n - 1), pf->fields[partial_field].path);
    node->ty = prim(T_ERROR);
    return node->ty;
  }
  /* nodes[partial] names no declared path: suggest among the paths of
   * the same depth. */
  name_list cands = {0};
  for (int i = 0; i < pf->nfields; i++)
    if (pf->fields[i].nsegs > partial) names_add(c, &cands, segs_text(c, &pf->fields[i], partial + 1));
  const char *text = chain_text(c, nodes, partial);
  const char *s = suggest(text, &cands);
  expr *node = nodes[partial];
  if (s) diag_error(c->d, node->loc, "unknown field `%s`; did you mean `%s`?", text, s);
  else diag_error(c->d, node->loc, "unknown field `%s`", text);
  nodes[n - 1]->ty = prim(T_ERROR);
  return nodes[n - 1]->ty;
}

/* The names a module declares, for did-you-mean. */
static void module_names(checker *c, const char *path, name_list *out) {
  for (int i = 0; i < c->pf->nlets; i++)
    if (c->pf->lets[i].module && strcmp(c->pf->lets[i].module, path) == 0) names_add(c, out, c->pf->lets[i].name);
  for (int i = 0; i < c->pf->nexterns; i++)
    if (c->pf->externs[i].module && strcmp(c->pf->externs[i].module, path) == 0)
      names_add(c, out, c->pf->externs[i].name);
}

static bool module_loaded(const checker *c, const char *path) {
  for (int k = 0; k < c->nmods; k++)
    if (strcmp(c->mods[k].path, path) == 0) return true;
  return false;
}

/* `ALIAS.name`: a let of the imported module; deeper selections are on
 * its value. */
static const type *resolve_module_name(checker *c, expr **nodes, int n, bool presence, const import_decl *im) {
  expr *id = nodes[0];
  const char *alias = ident_name(id);
  if (n == 1) {
    diag_error(c->d, id->loc, "`%s` names the module %s: write %s.NAME", alias, im->path, alias);
    id->ty = prim(T_ERROR);
    return id->ty;
  }
  expr *node = nodes[1];
  if (!module_loaded(c, im->path)) {
    diag_error(c->d, node->loc, "module %s is not loaded (check_policy alone does not load imports)", im->path);
    node->ty = prim(T_ERROR);
    return node->ty;
  }
  int let = ck_module_let(c, im->path, node->name);
  if (let >= 0) {
    if (not_constant(c, node, chain_text(c, nodes, 1))) return node->ty;
    if (presence && n == 2) {
      diag_error(c->d, node->loc, "has() needs a field selection such as has(request.purpose)");
      node->ty = prim(T_ERROR);
      return node->ty;
    }
    set_ref(node, REF_LET, let, ck_let_type(c, let, node->loc));
    return select_values(c, nodes, 2, n, presence);
  }
  if (ck_module_extern(c, im->path, node->name) >= 0) {
    diag_error(c->d, node->loc, "`%s.%s` is an extern function: call it with arguments", alias, node->name);
  } else {
    name_list cands = {0};
    module_names(c, im->path, &cands);
    const char *s = suggest(node->name, &cands);
    if (s)
      diag_error(c->d, node->name_loc, "module %s has no `%s`; did you mean `%s.%s`?", im->path, node->name, alias, s);
    else diag_error(c->d, node->name_loc, "module %s has no `%s`", im->path, node->name);
  }
  node->ty = prim(T_ERROR);
  return node->ty;
}

/* Resolves a dotted name (nodes innermost first) in CEL's order: the
 * comprehension variables, innermost first; `clause expr` variables by the
 * longest qualified name; the declarations; `now`; type names. The node
 * that names the thing gets the ref; the nodes inside it stay unresolved
 * (dyn), the nodes outside are selections on its value. With `presence`
 * the outermost node is has()'s test: a field path there is a presence
 * test, anything else tests a map key. */
static const type *resolve_chain_at(checker *c, expr **nodes, int n, bool presence);

static const type *resolve_chain(checker *c, expr **nodes, int n, bool presence) {
  const type *t = resolve_chain_at(c, nodes, n, presence);
  nodes[n - 1]->ty = t ? t : prim(T_DYN); /* the error of an inner node, too */
  return nodes[n - 1]->ty;
}

static const type *resolve_chain_at(checker *c, expr **nodes, int n, bool presence) {
  expr *id = nodes[0];
  bool rooted = id->name[0] == '.';
  const char *root = ident_name(id);
  for (int i = 0; i < n; i++) {
    nodes[i]->ref = REF_NONE;
    nodes[i]->ty = prim(T_DYN);
  }

  const local_var *lv = rooted ? NULL : find_local(c, root);
  if (lv) {
    if (bare_has(c, id, presence, n)) return id->ty;
    set_ref(id, REF_LOCAL, lv->slot, lv->ty);
    return select_values(c, nodes, 1, n, presence);
  }

  if (c->nvars) {
    for (int j = presence ? n - 2 : n - 1; j >= 0; j--) {
      int v = find_var(c, chain_text(c, nodes, j));
      if (v < 0) continue;
      set_ref(nodes[j], REF_VAR, v, c->vars[v].ty);
      return select_values(c, nodes, j + 1, n, presence);
    }
  }

  const ns_entry *ent = ck_lookup(c, root);
  if (ent) {
    switch (ent->kind) {
    case NK_FIELD_ROOT:
      return resolve_field(c, nodes, n, presence);
    case NK_LET:
      if (not_constant(c, id, root) || bare_has(c, id, presence, n)) return id->ty;
      set_ref(id, REF_LET, ent->index, ck_let_type(c, ent->index, id->loc));
      return select_values(c, nodes, 1, n, presence);
    case NK_COUNTER:
      if (not_constant(c, id, root) || bare_has(c, id, presence, n)) return id->ty;
      if (ent->index == c->counter_self) {
        diag_error(c->d, id->loc, "counter `%s` cannot read itself in its own declaration", root);
        id->ty = prim(T_ERROR);
        return id->ty;
      }
      set_ref(id, REF_COUNTER, ent->index, prim(T_INT));
      return select_values(c, nodes, 1, n, presence);
    case NK_EXTERN:
      diag_error(c->d, id->loc, "`%s` is an extern function: call it with arguments", root);
      id->ty = prim(T_ERROR);
      return id->ty;
    case NK_ALIAS:
      return resolve_module_name(c, nodes, n, presence, &c->imports[ent->index]);
    }
  }

  if (strcmp(root, "now") == 0) {
    if (not_constant(c, id, root) || bare_has(c, id, presence, n)) return id->ty;
    set_ref(id, REF_NOW, 0, prim(T_TIMESTAMP));
    return select_values(c, nodes, 1, n, presence);
  }

  for (int j = presence ? n - 2 : n - 1; j >= 0; j--) {
    value tv;
    if (!cel_type_by_name(chain_text(c, nodes, j), &tv)) continue;
    expr *node = nodes[j];
    node->kind = E_LITERAL;
    node->lit = tv;
    node->operand = NULL;
    node->ty = prim(T_TYPE);
    return select_values(c, nodes, j + 1, n, presence);
  }
  if (bare_has(c, id, presence, n)) return id->ty;

  report_unknown_name(c, nodes, n);
  return c->report_types ? prim(T_ERROR) : prim(T_DYN);
}

/* ---- builtin signatures ----------------------------------------------------------
 * The static overloads of the common builtins, to type their results and
 * reject calls that cannot succeed. Builtins missing here (the math
 * extension, for one) type as dyn. A signature is a string of one code per
 * argument, the target of a member call first:
 *   b bool  i int  u uint  d double  s string  y bytes  t timestamp
 *   D duration  T type  A anything  L any list  M any map  S list(string)
 * and the result is one code (A: dyn). */
typedef struct builtin_sig {
  const char *name;
  uint8_t member;
  const char *params;
  char result;
} builtin_sig;

static const builtin_sig sigs[] = {
    {"size", 0, "s", 'i'}, {"size", 0, "y", 'i'}, {"size", 0, "L", 'i'}, {"size", 0, "M", 'i'},
    {"size", 1, "s", 'i'}, {"size", 1, "y", 'i'}, {"size", 1, "L", 'i'}, {"size", 1, "M", 'i'},
    {"contains", 1, "ss", 'b'}, {"startsWith", 1, "ss", 'b'}, {"endsWith", 1, "ss", 'b'},
    {"matches", 1, "ss", 'b'}, {"matches", 0, "ss", 'b'},
    /* conversions */
    {"int", 0, "i", 'i'}, {"int", 0, "u", 'i'}, {"int", 0, "d", 'i'}, {"int", 0, "s", 'i'},
    {"int", 0, "t", 'i'}, {"int", 0, "D", 'i'},
    {"uint", 0, "i", 'u'}, {"uint", 0, "u", 'u'}, {"uint", 0, "d", 'u'}, {"uint", 0, "s", 'u'},
    {"double", 0, "i", 'd'}, {"double", 0, "u", 'd'}, {"double", 0, "d", 'd'}, {"double", 0, "s", 'd'},
    {"string", 0, "i", 's'}, {"string", 0, "u", 's'}, {"string", 0, "d", 's'}, {"string", 0, "s", 's'},
    {"string", 0, "y", 's'}, {"string", 0, "b", 's'}, {"string", 0, "t", 's'}, {"string", 0, "D", 's'},
    {"bytes", 0, "s", 'y'}, {"bytes", 0, "y", 'y'},
    {"bool", 0, "b", 'b'}, {"bool", 0, "s", 'b'},
    {"timestamp", 0, "s", 't'}, {"timestamp", 0, "t", 't'}, {"timestamp", 0, "i", 't'},
    {"duration", 0, "s", 'D'}, {"duration", 0, "D", 'D'}, {"duration", 0, "i", 'D'},
    {"dyn", 0, "A", 'A'}, {"type", 0, "A", 'T'},
    /* timestamp and duration accessors (optional time zone) */
    {"getFullYear", 1, "t", 'i'}, {"getFullYear", 1, "ts", 'i'},
    {"getMonth", 1, "t", 'i'}, {"getMonth", 1, "ts", 'i'},
    {"getDayOfYear", 1, "t", 'i'}, {"getDayOfYear", 1, "ts", 'i'},
    {"getDayOfMonth", 1, "t", 'i'}, {"getDayOfMonth", 1, "ts", 'i'},
    {"getDate", 1, "t", 'i'}, {"getDate", 1, "ts", 'i'},
    {"getDayOfWeek", 1, "t", 'i'}, {"getDayOfWeek", 1, "ts", 'i'},
    {"getHours", 1, "t", 'i'}, {"getHours", 1, "ts", 'i'}, {"getHours", 1, "D", 'i'},
    {"getMinutes", 1, "t", 'i'}, {"getMinutes", 1, "ts", 'i'}, {"getMinutes", 1, "D", 'i'},
    {"getSeconds", 1, "t", 'i'}, {"getSeconds", 1, "ts", 'i'}, {"getSeconds", 1, "D", 'i'},
    {"getMilliseconds", 1, "t", 'i'}, {"getMilliseconds", 1, "ts", 'i'}, {"getMilliseconds", 1, "D", 'i'},
    /* clause's string helpers and network types */
    {"lower", 0, "s", 's'}, {"upper", 0, "s", 's'}, {"lower", 1, "s", 's'}, {"upper", 1, "s", 's'},
    {"split", 1, "ss", 'S'}, {"split", 1, "ssi", 'S'}, {"trim", 1, "s", 's'}, {"glob", 1, "ss", 'b'},
    {"ip", 0, "s", 'A'}, {"cidr", 0, "s", 'A'},
    /* the CEL string extension */
    {"charAt", 1, "si", 's'}, {"indexOf", 1, "ss", 'i'}, {"indexOf", 1, "ssi", 'i'},
    {"lastIndexOf", 1, "ss", 'i'}, {"lastIndexOf", 1, "ssi", 'i'},
    {"lowerAscii", 1, "s", 's'}, {"upperAscii", 1, "s", 's'},
    {"replace", 1, "sss", 's'}, {"replace", 1, "sssi", 's'},
    {"substring", 1, "si", 's'}, {"substring", 1, "sii", 's'},
    {"join", 1, "S", 's'}, {"join", 1, "Ss", 's'}, {"reverse", 1, "s", 's'},
    {"strings.quote", 0, "s", 's'}, {"format", 1, "sL", 's'},
};

static bool sig_accepts(char code, const type *t) {
  if (ck_type_unknown(t) || code == 'A') return true;
  switch (code) {
  case 'b': return t->kind == T_BOOL;
  case 'i': return t->kind == T_INT;
  case 'u': return t->kind == T_UINT;
  case 'd': return t->kind == T_DOUBLE;
  case 's': return t->kind == T_STRING;
  case 'y': return t->kind == T_BYTES;
  case 't': return t->kind == T_TIMESTAMP;
  case 'D': return t->kind == T_DURATION;
  case 'T': return t->kind == T_TYPE;
  case 'L': return t->kind == T_LIST;
  case 'M': return t->kind == T_MAP;
  case 'S': return t->kind == T_LIST && (ck_type_unknown(t->elem) || t->elem->kind == T_STRING);
  default: return false;
  }
}

static const type *sig_result(checker *c, char code) {
  switch (code) {
  case 'b': return prim(T_BOOL);
  case 'i': return prim(T_INT);
  case 'u': return prim(T_UINT);
  case 'd': return prim(T_DOUBLE);
  case 's': return prim(T_STRING);
  case 'y': return prim(T_BYTES);
  case 't': return prim(T_TIMESTAMP);
  case 'D': return prim(T_DURATION);
  case 'T': return prim(T_TYPE);
  case 'S': return list_of(c, prim(T_STRING));
  default: return prim(T_DYN);
  }
}

/* "(int, string)" */
static const char *arg_types_text(checker *c, const type *const *tys, int n) {
  char buf[512];
  size_t at = 0;
  buf[at++] = '(';
  for (int i = 0; i < n && at < sizeof buf - 64; i++)
    at += (size_t)snprintf(buf + at, sizeof buf - at, "%s%s", i ? ", " : "", ck_type_name(c, tys[i]));
  if (at < sizeof buf - 1) buf[at++] = ')';
  const char *s = arena_strndup(c->a, buf, at);
  return s ? s : "";
}

/* The result type of a builtin call with these argument types (target
 * first), reporting a call no overload accepts. */
static const type *builtin_result(checker *c, expr *e, const char *name, bool member,
                                  const type *const *tys, int n) {
  bool known = false, mixed = false;
  const type *res = NULL;
  for (int i = 0; i < n; i++)
    if (is_error(tys[i])) return prim(T_ERROR);
  for (size_t k = 0; k < sizeof sigs / sizeof *sigs; k++) {
    const builtin_sig *s = &sigs[k];
    if ((s->member != 0) != member || strcmp(s->name, name) != 0 || (int)strlen(s->params) != n) continue;
    known = true;
    bool ok = true;
    for (int i = 0; i < n && ok; i++) ok = sig_accepts(s->params[i], tys[i]);
    if (!ok) continue;
    const type *r = sig_result(c, s->result);
    if (res && !type_equal(res, r)) mixed = true;
    res = r;
  }
  if (!known) return prim(T_DYN);
  if (!res)
    return type_error(c, e->loc, "no matching overload for '%s' applied to %s", name, arg_types_text(c, tys, n));
  return mixed ? prim(T_DYN) : res;
}

/* Whether some builtin has this name and call style; its argument counts
 * (the target not counted). */
static bool builtin_arity(const char *name, bool member, int *lo, int *hi) {
  bool any = false;
  int n = cel_builtin_count();
  for (int i = 0; i < n; i++) {
    const cel_builtin *b = cel_builtin_at(i);
    if (!b || (b->member != 0) != member || strcmp(b->name, name) != 0) continue;
    int mn = b->min_args - (member ? 1 : 0), mx = b->max_args - (member ? 1 : 0);
    if (!any || mn < *lo) *lo = mn;
    if (!any || mx > *hi) *hi = mx;
    any = true;
  }
  return any;
}

/* Is there a global builtin whose name starts with `prefix` (a namespace
 * such as "math.")? */
static bool builtin_namespace(const char *prefix) {
  size_t n = strlen(prefix);
  int count = cel_builtin_count();
  for (int i = 0; i < count; i++) {
    const cel_builtin *b = cel_builtin_at(i);
    if (b && !b->member && strncmp(b->name, prefix, n) == 0) return true;
  }
  return false;
}

static const char *const macro_names[] = {"has", "all", "exists", "exists_one", "filter", "map"};

static void report_unknown_function(checker *c, srcloc at, const char *name) {
  name_list cands = {0};
  int count = cel_builtin_count();
  for (int i = 0; i < count; i++) {
    const cel_builtin *b = cel_builtin_at(i);
    if (b) names_add(c, &cands, b->name);
  }
  for (size_t i = 0; i < sizeof macro_names / sizeof *macro_names; i++) names_add(c, &cands, macro_names[i]);
  for (int i = 0; i < c->nnames; i++)
    if (c->names[i].kind == NK_EXTERN) names_add(c, &cands, c->names[i].name);
  const char *s = suggest(name, &cands);
  if (s) unresolved(c, at, "unknown function `%s`; did you mean `%s`?", name, s);
  else unresolved(c, at, "unknown function `%s`", name);
}

static const char *count_text(checker *c, int lo, int hi) {
  if (lo == hi) return strf(c, "%d argument%s", lo, lo == 1 ? "" : "s");
  return strf(c, "%d to %d arguments", lo, hi);
}

/* ---- calls and macros ------------------------------------------------------------ */

static const type *check_bool(checker *c, const expr *e, const type *t, const char *what) {
  if (ck_type_unknown(t) || t->kind == T_BOOL) return t;
  return type_error(c, e->loc, "%s must be bool, not %s", what, ck_type_name(c, t));
}

static const type *visit_has(checker *c, expr *e) {
  e->macro = M_HAS;
  if (e->nargs != 1 || !e->args[0]) {
    diag_error(c->d, e->name_loc, "has() takes one argument, a field selection such as has(request.purpose)");
    for (int i = 0; i < e->nargs; i++)
      if (e->args[i]) ck_expr(c, e->args[i]);
    return prim(T_ERROR);
  }
  expr *arg = e->args[0];
  expr *nodes[MAX_CHAIN];
  int n = chain_of(arg, nodes);
  if (n > 0) {
    const type *t = resolve_chain(c, nodes, n, true);
    if (is_error(t)) return t;
  } else if (arg->kind == E_SELECT && arg->operand) {
    const type *ot = ck_expr(c, arg->operand);
    arg->ref = REF_NONE;
    arg->ty = select_type(c, arg, ot, true);
    if (is_error(arg->ty)) return arg->ty;
  } else {
    diag_error(c->d, arg->loc, "has() needs a field selection such as has(request.purpose)");
    return prim(T_ERROR);
  }
  return prim(T_BOOL);
}

static macro_kind comprehension_kind(const char *name) {
  if (strcmp(name, "all") == 0) return M_ALL;
  if (strcmp(name, "exists") == 0) return M_EXISTS;
  if (strcmp(name, "exists_one") == 0) return M_EXISTS_ONE;
  if (strcmp(name, "filter") == 0) return M_FILTER;
  if (strcmp(name, "map") == 0) return M_MAP;
  return M_NONE;
}

/* target.all(x, p), .exists, .exists_one, .filter(x, p), .map(x, f),
 * .map(x, p, f): x ranges over a list's elements or a map's keys, in a
 * slot numbered by the comprehension's depth in the expression. */
static const type *visit_comprehension(checker *c, expr *e, macro_kind kind) {
  bool arity_ok = e->nargs == 2 || (kind == M_MAP && e->nargs == 3);
  if (!arity_ok) {
    diag_error(c->d, e->name_loc, "%s() takes a variable and %s", e->name,
               kind == M_MAP ? "an expression, or a variable, a predicate and an expression"
                             : "a predicate");
    ck_expr(c, e->operand);
    return prim(T_ERROR);
  }
  expr *var = e->args[0];
  if (!var || var->kind != E_IDENT || !var->name || var->name[0] == '.') {
    diag_error(c->d, var ? var->loc : e->name_loc, "the first argument of %s() must be a variable name",
               e->name);
    ck_expr(c, e->operand);
    return prim(T_ERROR);
  }
  const type *tt = ck_expr(c, e->operand);
  const type *elem = prim(T_DYN);
  if (is_error(tt)) elem = tt;
  else if (tt && tt->kind == T_LIST) elem = tt->elem ? tt->elem : prim(T_DYN);
  else if (tt && tt->kind == T_MAP) elem = tt->key ? tt->key : prim(T_DYN);
  else if (!ck_type_unknown(tt))
    elem = type_error(c, e->operand->loc, "%s() needs a list or a map, not %s", e->name, ck_type_name(c, tt));
  if (c->nlocals >= CHECK_MAX_LOCALS) {
    diag_error(c->d, e->name_loc, "comprehensions nest too deeply");
    return prim(T_ERROR);
  }
  int slot = c->nlocals - c->locals_base;
  c->locals[c->nlocals++] = (local_var){ident_name(var), is_error(elem) ? prim(T_DYN) : elem, slot};
  e->macro = kind;
  e->local_slot = slot;
  set_ref(var, REF_LOCAL, slot, c->locals[c->nlocals - 1].ty);

  const type *result;
  const char *what = strf(c, "the predicate of %s()", e->name);
  if (kind == M_MAP) {
    if (e->nargs == 3) check_bool(c, e->args[1], ck_expr(c, e->args[1]), what);
    const type *ft = ck_expr(c, e->args[e->nargs - 1]);
    result = is_error(ft) ? ft : list_of(c, ft);
  } else {
    const type *pt = check_bool(c, e->args[1], ck_expr(c, e->args[1]), what);
    if (kind == M_FILTER) result = is_error(pt) ? pt : list_of(c, is_error(elem) ? prim(T_DYN) : elem);
    else result = is_error(pt) ? pt : prim(T_BOOL);
  }
  c->nlocals--;
  if (is_error(elem) && !is_error(result)) return elem;
  if (kind == M_FILTER && tt && tt->kind == T_LIST && !is_error(result)) return tt;
  return result;
}

static const type *visit_extern_call(checker *c, expr *e, int index) {
  const extern_decl *x = &c->pf->externs[index];
  e->ref = REF_EXTERN;
  e->ref_index = index;
  e->builtin = NULL;
  bool failed = false;
  for (int i = 0; i < e->nargs; i++) {
    const type *t = ck_expr(c, e->args[i]);
    if (is_error(t)) failed = true;
    else if (i < x->nparams && !ck_type_unknown(x->params[i].ty) && !ck_type_unknown(t) &&
             !type_equal(x->params[i].ty, t)) {
      type_error(c, e->args[i]->loc, "argument %d of `%s` must be %s, not %s", i + 1, x->name,
                 ck_type_name(c, x->params[i].ty), ck_type_name(c, t));
      failed = true;
    }
  }
  if (c->const_what) {
    diag_error(c->d, e->name_loc, "%s must be a constant: it cannot call `%s`", c->const_what, x->name);
    return prim(T_ERROR);
  }
  if (e->nargs != x->nparams) {
    diag_error(c->d, e->name_loc, "`%s` takes %s, not %d", x->name, count_text(c, x->nparams, x->nparams),
               e->nargs);
    return prim(T_ERROR);
  }
  if (failed && c->report_types) return prim(T_ERROR);
  return x->ret ? x->ret : prim(T_DYN);
}

static const type *visit_call(checker *c, expr *e) {
  if (!e->name) return prim(T_ERROR);
  if (!e->operand && strcmp(e->name, "has") == 0) return visit_has(c, e);
  macro_kind mk = e->operand ? comprehension_kind(e->name) : M_NONE;
  if (mk != M_NONE) return visit_comprehension(c, e, mk);

  /* `ALIAS.f(...)`: an extern of an imported module. */
  if (e->operand && e->operand->kind == E_IDENT && e->operand->name[0] != '.' &&
      !find_local(c, e->operand->name)) {
    const ns_entry *ent = ck_lookup(c, e->operand->name);
    if (ent && ent->kind == NK_ALIAS) {
      const import_decl *im = &c->imports[ent->index];
      if (!module_loaded(c, im->path)) {
        diag_error(c->d, e->name_loc, "module %s is not loaded (check_policy alone does not load imports)",
                   im->path);
        return prim(T_ERROR);
      }
      int x = ck_module_extern(c, im->path, e->name);
      if (x >= 0) {
        e->operand = NULL;
        return visit_extern_call(c, e, x);
      }
      for (int i = 0; i < e->nargs; i++) ck_expr(c, e->args[i]);
      if (ck_module_let(c, im->path, e->name) >= 0)
        diag_error(c->d, e->name_loc, "`%s.%s` is a let, not a function", e->operand->name, e->name);
      else diag_error(c->d, e->name_loc, "module %s has no function `%s`", im->path, e->name);
      return prim(T_ERROR);
    }
  }

  /* `math.greatest(...)` arrives as a method call on `math`: when the
   * target is a dotted name the program does not declare, it is a
   * namespaced global function. */
  if (e->operand) {
    expr *nodes[MAX_CHAIN];
    int n = chain_of(e->operand, nodes);
    if (n > 0 && !name_declared(c, nodes[0])) {
      const char *ns = chain_text(c, nodes, n - 1);
      const char *qualified = strf(c, "%s.%s", ns, e->name);
      int lo, hi;
      if (builtin_arity(qualified, false, &lo, &hi)) {
        e->name = qualified;
        e->name_loc.line = nodes[0]->loc.line;
        e->name_loc.col = nodes[0]->loc.col;
        e->operand = NULL;
      } else if (builtin_namespace(strf(c, "%s.", ns))) {
        for (int i = 0; i < e->nargs; i++) ck_expr(c, e->args[i]);
        srcloc at = e->name_loc;
        at.line = nodes[0]->loc.line;
        at.col = nodes[0]->loc.col;
        report_unknown_function(c, at, qualified);
        return c->report_types ? prim(T_ERROR) : prim(T_DYN);
      }
    }
  }

  if (!e->operand) {
    const ns_entry *ent = ck_lookup(c, e->name);
    if (ent && ent->kind == NK_EXTERN) return visit_extern_call(c, e, ent->index);
  }

  bool member = e->operand != NULL;
  int n = e->nargs + (member ? 1 : 0);
  const type *tys[MAX_CHAIN];
  bool failed = false;
  int at = 0;
  if (member) tys[at++] = ck_expr(c, e->operand);
  for (int i = 0; i < e->nargs && at < MAX_CHAIN; i++) tys[at++] = ck_expr(c, e->args[i]);
  for (int i = 0; i < at; i++)
    if (is_error(tys[i])) failed = true;

  const cel_builtin *b = cel_builtin_find(e->name, member, n);
  if (!b && member && is_error(tys[0])) return prim(T_ERROR); /* the target's error says it */
  if (!b) {
    int lo, hi;
    if (builtin_arity(e->name, member, &lo, &hi))
      unresolved(c, e->name_loc, "`%s` takes %s, not %d", e->name, count_text(c, lo, hi), e->nargs);
    else if (builtin_arity(e->name, !member, &lo, &hi))
      unresolved(c, e->name_loc,
                 member ? "`%s` is not a method: call it as %s(...)" : "`%s` is a method: call it as x.%s(...)",
                 e->name, e->name);
    else report_unknown_function(c, e->name_loc, e->name);
    return c->report_types ? prim(T_ERROR) : prim(T_DYN);
  }
  e->builtin = b;
  if (failed) return prim(T_ERROR);
  return builtin_result(c, e, e->name, member, tys, at);
}

/* ---- operators -------------------------------------------------------------------- */

static const char *op_text(expr_op op) {
  switch (op) {
  case OP_NOT: return "!";
  case OP_NEG: return "-";
  case OP_ADD: return "+";
  case OP_SUB: return "-";
  case OP_MUL: return "*";
  case OP_DIV: return "/";
  case OP_MOD: return "%";
  case OP_EQ: return "==";
  case OP_NE: return "!=";
  case OP_LT: return "<";
  case OP_LE: return "<=";
  case OP_GT: return ">";
  case OP_GE: return ">=";
  case OP_IN: return "in";
  case OP_AND: return "&&";
  case OP_OR: return "||";
  default: return "?";
  }
}

static const type *no_overload(checker *c, expr *e, const char *op, const type *x, const type *y) {
  return type_error(c, e->loc, "no matching overload for '%s' applied to (%s, %s)", op, ck_type_name(c, x),
                    ck_type_name(c, y));
}

static const type *arithmetic(checker *c, expr *e, const type *x, const type *y) {
  if (is_error(x) || is_error(y)) return prim(T_ERROR);
  if (ck_type_unknown(x) || ck_type_unknown(y)) return prim(T_DYN);
  type_kind a = x->kind, b = y->kind;
  switch (e->op) {
  case OP_ADD:
    if (a == b && (is_numeric(x) || a == T_STRING || a == T_BYTES || a == T_DURATION)) return x;
    if (a == T_LIST && b == T_LIST) return type_equal(x, y) ? x : list_of(c, prim(T_DYN));
    if ((a == T_TIMESTAMP && b == T_DURATION) || (a == T_DURATION && b == T_TIMESTAMP)) return prim(T_TIMESTAMP);
    break;
  case OP_SUB:
    if (a == b && (is_numeric(x) || a == T_DURATION)) return x;
    if (a == T_TIMESTAMP && b == T_TIMESTAMP) return prim(T_DURATION);
    if (a == T_TIMESTAMP && b == T_DURATION) return x;
    break;
  case OP_MUL:
  case OP_DIV:
    if (a == b && is_numeric(x)) return x;
    break;
  case OP_MOD:
    if (a == b && (a == T_INT || a == T_UINT)) return x;
    break;
  default:
    break;
  }
  return no_overload(c, e, op_text(e->op), x, y);
}

static bool orderable(const type *x, const type *y) {
  if (ck_type_unknown(x) || ck_type_unknown(y)) return true;
  if (is_numeric(x) && is_numeric(y)) return true;
  if (x->kind != y->kind) return false;
  switch (x->kind) {
  case T_BOOL: case T_STRING: case T_BYTES: case T_TIMESTAMP: case T_DURATION: return true;
  default: return false;
  }
}

static const type *visit_binary(checker *c, expr *e) {
  expr *l = e->operand, *r = e->nargs == 1 ? e->args[0] : NULL;
  if (!l || !r) return prim(T_ERROR);
  const type *x = ck_expr(c, l);

  if (e->op == OP_AND || e->op == OP_OR) {
    /* The right side runs only where the left did not decide: has()
     * tests on the left guard optional fields on the right. */
    int saved = c->nguards;
    if (e->op == OP_AND) guards_when_true(c, l);
    else guards_when_false(c, l);
    const type *y = ck_expr(c, r);
    c->nguards = saved;
    const char *what = e->op == OP_AND ? "the operands of `&&`" : "the operands of `||`";
    x = check_bool(c, l, x, what);
    y = check_bool(c, r, y, what);
    return is_error(x) || is_error(y) ? prim(T_ERROR) : prim(T_BOOL);
  }

  const type *y = ck_expr(c, r);
  switch (e->op) {
  case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_MOD:
    return arithmetic(c, e, x, y);
  case OP_EQ: case OP_NE:
    if (is_error(x) || is_error(y)) return prim(T_ERROR);
    if (!eq_compatible(x, y)) return no_overload(c, e, op_text(e->op), x, y);
    return prim(T_BOOL);
  case OP_LT: case OP_LE: case OP_GT: case OP_GE:
    if (is_error(x) || is_error(y)) return prim(T_ERROR);
    if (!orderable(x, y)) return no_overload(c, e, op_text(e->op), x, y);
    return prim(T_BOOL);
  case OP_IN:
    if (is_error(x) || is_error(y)) return prim(T_ERROR);
    if (r->kind == E_CALL && !r->operand && r->builtin && strcmp(r->name, "cidr") == 0 && !ck_type_unknown(x))
      return type_error(c, l->loc, "the left side of `in cidr(...)` must be an ip(...) address, not %s",
                        ck_type_name(c, x));
    if (ck_type_unknown(y)) return prim(T_BOOL);
    if (y->kind == T_LIST && eq_compatible(x, y->elem)) return prim(T_BOOL);
    if (y->kind == T_MAP && eq_compatible(x, y->key)) return prim(T_BOOL);
    return no_overload(c, e, "in", x, y);
  default:
    return prim(T_ERROR);
  }
}

static const type *visit_unary(checker *c, expr *e) {
  if (!e->operand) return prim(T_ERROR);
  const type *t = ck_expr(c, e->operand);
  if (is_error(t)) return t;
  if (e->op == OP_NOT) {
    if (ck_type_unknown(t) || t->kind == T_BOOL) return prim(T_BOOL);
    return type_error(c, e->loc, "no matching overload for '!' applied to (%s)", ck_type_name(c, t));
  }
  if (ck_type_unknown(t)) return prim(T_DYN);
  if (t->kind == T_INT || t->kind == T_DOUBLE) return t;
  return type_error(c, e->loc, "no matching overload for '-' applied to (%s)", ck_type_name(c, t));
}

static const type *visit_cond(checker *c, expr *e) {
  if (!e->operand || e->nargs != 2) return prim(T_ERROR);
  const type *ct = check_bool(c, e->operand, ck_expr(c, e->operand), "the condition of `?:`");
  int saved = c->nguards;
  guards_when_true(c, e->operand);
  const type *x = ck_expr(c, e->args[0]);
  c->nguards = saved;
  guards_when_false(c, e->operand);
  const type *y = ck_expr(c, e->args[1]);
  c->nguards = saved;
  if (is_error(ct)) return ct;
  return type_join(x, y);
}

static const type *visit_index(checker *c, expr *e) {
  if (!e->operand || e->nargs != 1) return prim(T_ERROR);
  const type *x = ck_expr(c, e->operand);
  const type *k = ck_expr(c, e->args[0]);
  if (is_error(x) || is_error(k)) return prim(T_ERROR);
  if (ck_type_unknown(x)) return prim(T_DYN);
  if (x->kind == T_LIST) {
    if (ck_type_unknown(k) || k->kind == T_INT || k->kind == T_UINT) return x->elem ? x->elem : prim(T_DYN);
  } else if (x->kind == T_MAP) {
    if (eq_compatible(x->key, k)) return x->elem ? x->elem : prim(T_DYN);
  }
  return no_overload(c, e, "[]", x, k);
}

static bool key_type_ok(const type *t) {
  return ck_type_unknown(t) || t->kind == T_INT || t->kind == T_UINT || t->kind == T_BOOL || t->kind == T_STRING;
}

static const type *visit_list(checker *c, expr *e) {
  const type *elem = NULL;
  for (int i = 0; i < e->nargs; i++) elem = type_join(elem, ck_expr(c, e->args[i]));
  if (is_error(elem)) return elem;
  return list_of(c, elem);
}

static const type *visit_map(checker *c, expr *e) {
  const type *key = NULL, *val = NULL;
  bool failed = false;
  for (int i = 0; i + 1 < e->nargs; i += 2) {
    const type *k = ck_expr(c, e->args[i]);
    if (!key_type_ok(k)) {
      k = type_error(c, e->args[i]->loc, "map keys must be int, uint, bool or string, not %s", ck_type_name(c, k));
    }
    if (is_error(k)) failed = true;
    key = type_join(key, k);
    val = type_join(val, ck_expr(c, e->args[i + 1]));
  }
  if (failed || is_error(key) || is_error(val)) return prim(T_ERROR);
  const type *t = type_map(c->a, key ? key : prim(T_DYN), val ? val : prim(T_DYN));
  return t ? t : prim(T_DYN);
}

static const type *literal_type(const value *v) {
  switch ((cv_kind)v->kind) {
  case CV_NULL: return prim(T_NULL);
  case CV_BOOL: return prim(T_BOOL);
  case CV_INT: return prim(T_INT);
  case CV_UINT: return prim(T_UINT);
  case CV_DOUBLE: return prim(T_DOUBLE);
  case CV_STRING: return prim(T_STRING);
  case CV_BYTES: return prim(T_BYTES);
  case CV_TIMESTAMP: return prim(T_TIMESTAMP);
  case CV_DURATION: return prim(T_DURATION);
  case CV_TYPE: return prim(T_TYPE);
  default: return prim(T_DYN);
  }
}

/* ---- entry points ---------------------------------------------------------------- */

const type *ck_expr(checker *c, expr *e) {
  if (!e) return prim(T_ERROR);
  const type *t;
  expr *nodes[MAX_CHAIN];
  int n;
  switch (e->kind) {
  case E_LITERAL:
    t = literal_type(&e->lit);
    break;
  case E_IDENT:
  case E_SELECT:
    n = chain_of(e, nodes);
    if (n > 0) {
      resolve_chain(c, nodes, n, false);
      return e->ty; /* resolve_chain typed every node of the chain */
    }
    if (e->kind == E_IDENT || !e->operand) {
      t = prim(T_ERROR);
      break;
    }
    t = select_type(c, e, ck_expr(c, e->operand), false);
    break;
  case E_INDEX:
    t = visit_index(c, e);
    break;
  case E_CALL:
    t = visit_call(c, e);
    break;
  case E_UNARY:
    t = visit_unary(c, e);
    break;
  case E_BINARY:
    t = visit_binary(c, e);
    break;
  case E_COND:
    t = visit_cond(c, e);
    break;
  case E_LIST:
    t = visit_list(c, e);
    break;
  case E_MAP:
    t = visit_map(c, e);
    break;
  default:
    t = prim(T_ERROR);
    break;
  }
  e->ty = t ? t : prim(T_DYN);
  return e->ty;
}

const type *ck_top_expr(checker *c, expr *e) {
  int saved_base = c->locals_base, saved_n = c->nlocals;
  c->locals_base = c->nlocals;
  const type *t = ck_expr(c, e);
  c->locals_base = saved_base;
  c->nlocals = saved_n;
  return t;
}
