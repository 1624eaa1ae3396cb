/*
 * codegen.c - checked AST -> register bytecode (a clause_program draft that
 * compile.c serializes and hands to the one loader and verifier).
 *
 * Registers: input fields first (field i in r<i>), then `now`, then one
 * register per let that is not a constant, then temporaries allocated as a
 * stack per expression. Fields are read where they live, so every read of
 * the same field shares one "load": none at all.
 *
 * Lets are evaluated lazily, at most once per request: each use is preceded
 * by `LETCHK rL, skip` and the let's code, so whichever use runs first
 * computes it. Constant subexpressions are folded with the same CEL
 * functions the VM runs, so folding cannot disagree with evaluation.
 */
#include "codegen.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../vm/cel.h"
#include "../vm/opcodes.h"

#define MAX_LOCAL_SLOTS 256

typedef struct cg {
  arena *a;
  diag_list *d;
  const policy_file *pf;
  clause_program *p;
  cel_ctx ctx;         /* for folding; allocates in the compile arena */
  bool failed;

  instr *code;
  const char **debug;
  uint32_t ncode, capcode, capdebug;
  value *consts;
  uint32_t nconsts, capconsts;
  prog_call *calls;
  uint32_t ncalls, capcalls;
  prog_oblig *obligs;
  uint32_t nobligs, capobligs;
  prog_extern *externs;    /* the externs called, in order of first call */
  uint32_t nexterns, capexterns;
  uint32_t *extern_slot;   /* per pf->externs: index in externs, or PROG_NONE */
  uint32_t *blocks;
  uint32_t nblocks, capblocks;

  uint32_t next_reg, max_reg;
  uint32_t *let_reg;       /* per let: register, or PROG_NONE when constant */
  int8_t *let_folded;      /* per let: 0 unknown, 1 constant, -1 not constant */
  uint8_t *let_seen;       /* per let: visited by counter_read (its scratch) */
  value *let_value;
  uint32_t local_reg[MAX_LOCAL_SLOTS];
  const char *src_text;    /* debug text for the instructions being emitted */
  const source *lines_of;  /* the source line_start indexes */
  uint32_t *line_start;    /* byte offset of each line (1-based index) */
  int nlines;
  srcloc err_loc;
  bool now_used;           /* an expression reads `now` */
} cg;

/* ---- growable arrays in the compile arena ------------------------------------ */

static bool grow(cg *g, void **arr, uint32_t *cap, uint32_t n, size_t size) {
  if (n < *cap) return true;
  uint32_t ncap = *cap ? *cap * 2 : 16;
  void *p = arena_alloc(g->a, ncap * size);
  if (!p) {
    g->failed = true;
    return false;
  }
  if (*arr && *cap) memcpy(p, *arr, *cap * size);
  *arr = p;
  *cap = ncap;
  return true;
}

static void fail_at(cg *g, srcloc loc, const char *fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (!g->failed) diag_error(g->d, loc, "%s", buf);
  g->failed = true;
}

/* ---- source text for the listing -------------------------------------------------- */

/* Byte offset of each line of src, computed once per source. */
static bool index_lines(cg *g, const source *src) {
  if (g->lines_of == src) return true;
  int n = 2;
  for (size_t i = 0; i < src->len; i++) n += src->text[i] == '\n';
  g->line_start = arena_alloc(g->a, (size_t)n * sizeof(uint32_t));
  if (!g->line_start) return false;
  int k = 1;
  g->line_start[k++] = 0;
  for (size_t i = 0; i < src->len; i++)
    if (src->text[i] == '\n') g->line_start[k++] = (uint32_t)(i + 1);
  g->nlines = k - 1;
  g->lines_of = src;
  return true;
}

/* The text of a span (one line at most, shortened), for `clause disasm`. */
static const char *source_text(cg *g, srcloc loc) {
  if (!loc.src || !loc.src->text || loc.line <= 0 || !index_lines(g, loc.src) || loc.line > g->nlines)
    return NULL;
  const char *t = loc.src->text + g->line_start[loc.line], *end = loc.src->text + loc.src->len;
  int col = 1;
  while (t < end && col < loc.col && *t != '\n') {
    t++;
    while (t < end && ((unsigned char)*t & 0xc0) == 0x80) t++;
    col++;
  }
  const char *start = t;
  if (loc.end_line == loc.line) {
    while (t < end && col < loc.end_col && *t != '\n') {
      t++;
      while (t < end && ((unsigned char)*t & 0xc0) == 0x80) t++;
      col++;
    }
  } else {
    while (t < end && *t != '\n') t++;
  }
  size_t n = (size_t)(t - start);
  if (n > 72) n = 72;
  while (n && ((unsigned char)start[n] & 0xc0) == 0x80) n--; /* whole characters */
  return arena_strndup(g->a, start, n);
}

/* ---- emitting ------------------------------------------------------------------------ */

static uint32_t emit(cg *g, opcode op, uint32_t a, uint32_t b, uint32_t c) {
  if (a > INSTR_MAX_OPERAND || b > INSTR_MAX_OPERAND || c > INSTR_MAX_OPERAND) {
    fail_at(g, g->err_loc, "the policy is too large: an operand does not fit in 16 bits");
    a = b = c = 0;
  }
  if (!grow(g, (void **)&g->code, &g->capcode, g->ncode, sizeof(instr))) return 0;
  if (!grow(g, (void **)&g->debug, &g->capdebug, g->ncode, sizeof(char *))) return 0;
  g->code[g->ncode] = INSTR_MAKE(op, a, b, c);
  g->debug[g->ncode] = g->src_text;
  return g->ncode++;
}

static void patch_jump(cg *g, uint32_t at) {
  uint32_t dist = g->ncode - (at + 1);
  instr i = g->code[at];
  if (dist > INSTR_MAX_OPERAND) {
    fail_at(g, g->err_loc, "the policy is too large: a jump does not fit in 16 bits");
    dist = 0;
  }
  g->code[at] = INSTR_MAKE(INSTR_OP(i), INSTR_A(i), INSTR_B(i), dist);
}

static uint32_t new_reg(cg *g) {
  uint32_t r = g->next_reg++;
  if (g->next_reg > g->max_reg) g->max_reg = g->next_reg;
  return r;
}

/* Whether two constants are the same value, kind for kind (1 and 1.0
 * are not), lists and maps item by item. */
static bool same_const(const value *a, const value *b) {
  if (a->kind != b->kind) return false;
  switch ((cv_kind)a->kind) {
  case CV_NULL: return true;
  case CV_BOOL: return a->b == b->b;
  case CV_INT: case CV_UINT: case CV_DURATION: case CV_TYPE: return a->i == b->i;
  case CV_DOUBLE: return memcmp(&a->d, &b->d, sizeof a->d) == 0;
  case CV_STRING: case CV_BYTES: return a->n == b->n && memcmp(a->s, b->s, a->n) == 0;
  case CV_TIMESTAMP: return a->i == b->i && a->n == b->n;
  case CV_LIST: case CV_MAP: {
    if (a->n != b->n) return false;
    uint32_t items = a->kind == CV_MAP ? 2 * a->n : a->n;
    for (uint32_t i = 0; i < items; i++)
      if (!same_const(&a->items[i], &b->items[i])) return false;
    return true;
  }
  default: return false;
  }
}

static uint32_t add_const(cg *g, value v) {
  /* Share constants: a let used twice is one constant (and one hash set). */
  for (uint32_t i = 0; i < g->nconsts; i++)
    if (same_const(&g->consts[i], &v)) return i;
  if (!grow(g, (void **)&g->consts, &g->capconsts, g->nconsts, sizeof(value))) return 0;
  g->consts[g->nconsts] = v;
  return g->nconsts++;
}

static uint32_t add_string_const(cg *g, const char *s) {
  return add_const(g, cv_string(s, (uint32_t)strlen(s)));
}

static uint32_t add_call(cg *g, const cel_builtin *fn, int nargs) {
  for (uint32_t i = 0; i < g->ncalls; i++)
    if (g->calls[i].fn == fn && g->calls[i].nargs == nargs) return i;
  if (!grow(g, (void **)&g->calls, &g->capcalls, g->ncalls, sizeof(prog_call))) return 0;
  prog_call *c = &g->calls[g->ncalls];
  c->name = fn->name;
  c->member = fn->member;
  c->nargs = (uint8_t)nargs;
  c->fn = fn;
  return g->ncalls++;
}

/* The cv_kind of an extern's parameter or return type (the checker has
 * limited them to the closed set of SPEC section 6). */
static uint8_t extern_kind(const type *t) {
  switch (t ? t->kind : T_DYN) {
  case T_BOOL: return CV_BOOL;
  case T_INT: return CV_INT;
  case T_UINT: return CV_UINT;
  case T_DOUBLE: return CV_DOUBLE;
  case T_STRING: return CV_STRING;
  case T_TIMESTAMP: return CV_TIMESTAMP;
  default: return CV_DURATION;
  }
}

/* The program's entry for pf->externs[index]. Every extern the policy file
 * declares is in the table (SPEC 6: its library is opened when the program
 * is prepared, used or not); a module's, only when called. */
static uint32_t add_extern(cg *g, int index) {
  const extern_decl *x = &g->pf->externs[index];
  if (!g->extern_slot) {
    g->extern_slot = arena_alloc(g->a, (size_t)g->pf->nexterns * sizeof(uint32_t));
    if (!g->extern_slot) {
      g->failed = true;
      return 0;
    }
    for (int i = 0; i < g->pf->nexterns; i++) g->extern_slot[i] = PROG_NONE;
  }
  if (g->extern_slot[index] != PROG_NONE) return g->extern_slot[index];
  uint8_t *params = arena_alloc(g->a, (size_t)(x->nparams ? x->nparams : 1));
  if (!params || !grow(g, (void **)&g->externs, &g->capexterns, g->nexterns, sizeof(prog_extern))) {
    g->failed = true;
    return 0;
  }
  for (int k = 0; k < x->nparams; k++) params[k] = extern_kind(x->params[k].ty);
  g->externs[g->nexterns] = (prog_extern){
      .name = x->name,
      .lib = x->lib,
      .symbol = x->lib ? (x->symbol ? x->symbol : x->name) : NULL,
      .ret = extern_kind(x->ret),
      .nparams = (uint8_t)x->nparams,
      .params = params,
  };
  g->extern_slot[index] = g->nexterns;
  return g->nexterns++;
}

/* ---- constant folding ------------------------------------------------------------------ */

static bool fold(cg *g, const expr *e, value *out);

static bool fold_let(cg *g, int idx, value *out) {
  if (g->let_folded[idx] == 0) {
    g->let_folded[idx] = -1; /* provisional, in case of (checked-out) cycles */
    value v;
    if (fold(g, g->pf->lets[idx].value, &v)) {
      g->let_value[idx] = v;
      g->let_folded[idx] = 1;
    }
  }
  if (g->let_folded[idx] == 1) *out = g->let_value[idx];
  return g->let_folded[idx] == 1;
}

static const cel_binop binops[] = {
    [OP_ADD] = CEL_ADD, [OP_SUB] = CEL_SUB, [OP_MUL] = CEL_MUL, [OP_DIV] = CEL_DIV,
    [OP_MOD] = CEL_MOD, [OP_EQ] = CEL_EQ,   [OP_NE] = CEL_NE,   [OP_LT] = CEL_LT,
    [OP_LE] = CEL_LE,   [OP_GT] = CEL_GT,   [OP_GE] = CEL_GE,   [OP_IN] = CEL_IN,
};

static bool fold_items(cg *g, expr *const *args, int n, value **out) {
  value *items = arena_alloc(g->a, (size_t)(n ? n : 1) * sizeof(value));
  if (!items) return false;
  for (int i = 0; i < n; i++)
    if (!fold(g, args[i], &items[i])) return false;
  *out = items;
  return true;
}

/* True when e is a compile-time constant that evaluates without error. */
static bool fold(cg *g, const expr *e, value *out) {
  value v, a, b;
  switch (e->kind) {
  case E_LITERAL:
    *out = e->lit;
    return true;
  case E_IDENT:
  case E_SELECT:
    if (e->ref == REF_LET) return fold_let(g, e->ref_index, out);
    if (e->ref != REF_NONE || e->kind == E_IDENT) return false;
    if (!fold(g, e->operand, &a)) return false;
    cel_select(&g->ctx, &v, &a, e->name, (uint32_t)strlen(e->name));
    break;
  case E_INDEX:
    if (!fold(g, e->operand, &a) || !fold(g, e->args[0], &b)) return false;
    cel_binary(&g->ctx, CEL_INDEX, &v, &a, &b);
    break;
  case E_UNARY:
    if (!fold(g, e->operand, &a)) return false;
    if (e->op == OP_NOT) cel_not(&g->ctx, &v, &a);
    else cel_negate(&g->ctx, &v, &a);
    break;
  case E_BINARY:
    if (e->op == OP_AND || e->op == OP_OR) {
      if (!fold(g, e->operand, &a) || !fold(g, e->args[0], &b)) return false;
      if (a.kind != CV_BOOL || b.kind != CV_BOOL) return false;
      v = cv_bool(e->op == OP_AND ? a.b && b.b : a.b || b.b);
      break;
    }
    if (!fold(g, e->operand, &a) || !fold(g, e->args[0], &b)) return false;
    cel_binary(&g->ctx, binops[e->op], &v, &a, &b);
    break;
  case E_COND:
    if (!fold(g, e->operand, &a) || a.kind != CV_BOOL) return false;
    return fold(g, e->args[a.b ? 0 : 1], out);
  case E_LIST: {
    value *items;
    if (!fold_items(g, e->args, e->nargs, &items)) return false;
    v = cv_list(items, (uint32_t)e->nargs);
    break;
  }
  case E_MAP: {
    value *items;
    if (!fold_items(g, e->args, e->nargs, &items)) return false;
    uint32_t pairs = (uint32_t)e->nargs / 2;
    for (uint32_t i = 0; i < pairs; i++) {
      cv_kind k = (cv_kind)items[2 * i].kind;
      if (k != CV_STRING && k != CV_INT && k != CV_UINT && k != CV_BOOL) return false;
      for (uint32_t j = 0; j < i; j++)
        if (cel_equal(&items[2 * j], &items[2 * i])) return false; /* a run-time error */
    }
    v = cv_map(items, pairs);
    break;
  }
  case E_CALL: {
    if (e->macro != M_NONE || e->ref == REF_EXTERN || !e->builtin) return false;
    const cel_builtin *fn = e->builtin;
    int n = e->nargs + (e->operand ? 1 : 0);
    value *args = arena_alloc(g->a, (size_t)(n ? n : 1) * sizeof(value));
    if (!args) return false;
    int k = 0;
    if (e->operand && !fold(g, e->operand, &args[k++])) return false;
    for (int i = 0; i < e->nargs; i++)
      if (!fold(g, e->args[i], &args[k++])) return false;
    fn->fn(&g->ctx, &v, args, n);
    break;
  }
  default:
    return false;
  }
  if (v.kind == CV_ERROR) return false; /* keep the error for run time */
  *out = v;
  return true;
}

/* ---- expressions -------------------------------------------------------------------------- */

static void gen_into(cg *g, const expr *e, uint32_t dst);

/* Register holding e's value: where it already lives (fields, lets,
 * comprehension variables) or a new temporary. */
static uint32_t gen_reg(cg *g, const expr *e) {
  if ((e->kind == E_IDENT || e->kind == E_SELECT) && e->macro == M_NONE) {
    switch (e->ref) {
    case REF_FIELD:
    case REF_VAR:
      return (uint32_t)e->ref_index;
    case REF_NOW:
      g->now_used = true;
      return g->p->now_reg;
    case REF_COUNTER:
      return g->p->counter_reg + (uint32_t)e->ref_index;
    case REF_LOCAL:
      return g->local_reg[e->ref_index];
    case REF_LET: {
      value v;
      if (fold_let(g, e->ref_index, &v)) break;
      uint32_t r = g->let_reg[e->ref_index];
      const char *saved = g->src_text;
      g->src_text = g->pf->lets[e->ref_index].name;
      uint32_t at = emit(g, BC_LETCHK, r, 0, 0);
      uint32_t mark = g->next_reg;
      gen_into(g, g->pf->lets[e->ref_index].value, r);
      g->next_reg = mark;
      patch_jump(g, at);
      g->src_text = saved;
      return r;
    }
    default:
      break;
    }
  }
  uint32_t r = new_reg(g);
  gen_into(g, e, r);
  return r;
}

static const opcode binary_ops[] = {
    [OP_ADD] = BC_ADD, [OP_SUB] = BC_SUB, [OP_MUL] = BC_MUL, [OP_DIV] = BC_DIV,
    [OP_MOD] = BC_MOD, [OP_EQ] = BC_EQ,   [OP_NE] = BC_NE,   [OP_LT] = BC_LT,
    [OP_LE] = BC_LE,   [OP_GT] = BC_GT,   [OP_GE] = BC_GE,   [OP_IN] = BC_IN,
};
static const opcode const_ops[] = {
    [OP_EQ] = BC_EQK, [OP_NE] = BC_NEK, [OP_LT] = BC_LTK, [OP_LE] = BC_LEK,
    [OP_GT] = BC_GTK, [OP_GE] = BC_GEK, [OP_IN] = BC_INK,
};

/* The field f of `has(f)` when f is an input field (HAS and CJABSENT read
 * its register, and the answer is always a bool), or NULL (`has(m.k)` on
 * a value: HASKEY). */
static const expr *has_field(const expr *e) {
  if (e->kind != E_CALL || e->macro != M_HAS) return NULL;
  const expr *f = e->args[0];
  return f->ref == REF_FIELD || f->ref == REF_VAR ? f : NULL;
}

static void gen_logic(cg *g, const expr *e, uint32_t dst) {
  bool and = e->op == OP_AND;
  gen_into(g, e->operand, dst);
  uint32_t mark = g->next_reg;
  uint32_t sc = emit(g, and ? BC_ANDSC : BC_ORSC, dst, dst, 0);
  const expr *right = e->args[0];
  if (has_field(e->operand) && right->ty && right->ty->kind == T_BOOL) {
    /* has(f) is a bool, and one that did not decide: a bool (or an
     * error) on the right is the answer as it is, with no AND or OR. */
    gen_into(g, right, dst);
  } else {
    uint32_t rb = gen_reg(g, right);
    emit(g, and ? BC_AND : BC_OR, dst, dst, rb);
  }
  patch_jump(g, sc);
  g->next_reg = mark;
}

/* A name whose register gen_reg() reads without emitting code. */
static bool is_plain_ref(const expr *e) {
  return (e->kind == E_IDENT || e->kind == E_SELECT) && e->macro == M_NONE &&
         (e->ref == REF_FIELD || e->ref == REF_VAR || e->ref == REF_NOW || e->ref == REF_COUNTER ||
          e->ref == REF_LOCAL);
}

/* `has(f) ? f : y`, y a name or a constant: one HASOR (a field's default). */
static bool gen_has_or(cg *g, const expr *e, uint32_t dst) {
  const expr *f = has_field(e->operand), *then = e->args[0], *other = e->args[1];
  if (!f) return false;
  if ((then->kind != E_IDENT && then->kind != E_SELECT) || then->macro != M_NONE || then->ref != f->ref ||
      then->ref_index != f->ref_index)
    return false;
  value v;
  if (!is_plain_ref(other) && !fold(g, other, &v)) return false;
  uint32_t mark = g->next_reg;
  uint32_t ry = gen_reg(g, other);
  g->src_text = source_text(g, e->loc);
  emit(g, BC_HASOR, dst, (uint32_t)f->ref_index, ry);
  g->next_reg = mark;
  return true;
}

static void gen_cond(cg *g, const expr *e, uint32_t dst) {
  if (gen_has_or(g, e, dst)) return;
  uint32_t mark = g->next_reg;
  uint32_t rc = gen_reg(g, e->operand);
  uint32_t test = emit(g, BC_TESTBOOL, dst, rc, 0);
  uint32_t jelse = emit(g, BC_JFALSE, rc, 0, 0);
  gen_into(g, e->args[0], dst);
  uint32_t jend = emit(g, BC_JMP, 0, 0, 0);
  patch_jump(g, jelse);
  gen_into(g, e->args[1], dst);
  patch_jump(g, jend);
  patch_jump(g, test);
  g->next_reg = mark;
}

/* Consecutive registers [first, first+n) holding args. */
static uint32_t gen_args(cg *g, const expr *target, expr *const *args, int n) {
  uint32_t first = g->next_reg;
  uint32_t total = (uint32_t)n + (target ? 1 : 0);
  for (uint32_t i = 0; i < total; i++) new_reg(g);
  uint32_t k = first;
  if (target) gen_into(g, target, k++);
  for (int i = 0; i < n; i++) gen_into(g, args[i], k++);
  return first;
}

/* exists() whose predicate tests its variable against a constant
 * (`r.exists(x, x in K)`) or runs over a constant list of prefixes
 * (`K.exists(p, s.startsWith(p))`, s a name): one instruction instead of
 * a loop of four or more. */
static bool gen_exists_fused(cg *g, const expr *e, uint32_t dst) {
  const expr *pred = e->args[1];
  value k;
  opcode op;
  const expr *operand; /* the instruction's register operand */
  if (pred->kind == E_BINARY && pred->op == OP_IN && pred->operand->kind == E_IDENT &&
      pred->operand->ref == REF_LOCAL && pred->operand->ref_index == e->local_slot && fold(g, pred->args[0], &k)) {
    op = BC_ANYINK;
    operand = e->operand;
  } else if (pred->kind == E_CALL && pred->macro == M_NONE && pred->operand && pred->nargs == 1 &&
             pred->builtin == cel_builtin_find("startsWith", true, 2) && pred->args[0]->kind == E_IDENT &&
             pred->args[0]->ref == REF_LOCAL && pred->args[0]->ref_index == e->local_slot &&
             is_plain_ref(pred->operand) &&
             !(pred->operand->ref == REF_LOCAL && pred->operand->ref_index == e->local_slot) &&
             fold(g, e->operand, &k)) {
    op = BC_STARTSANY;
    operand = pred->operand;
  } else {
    return false;
  }
  uint32_t mark = g->next_reg;
  uint32_t r = gen_reg(g, operand);
  g->src_text = source_text(g, e->loc);
  emit(g, op, dst, r, add_const(g, k));
  g->next_reg = mark;
  return true;
}

static void gen_comprehension(cg *g, const expr *e, uint32_t dst) {
  if (e->macro == M_EXISTS && gen_exists_fused(g, e, dst)) return;
  uint32_t mark = g->next_reg;
  uint32_t range = gen_reg(g, e->operand);
  uint32_t it = new_reg(g);
  uint32_t x = new_reg(g);
  if (e->local_slot < 0 || e->local_slot >= MAX_LOCAL_SLOTS) {
    fail_at(g, e->loc, "comprehensions nested too deeply");
    return;
  }
  g->local_reg[e->local_slot] = x;
  uint32_t iter = emit(g, BC_ITER, it, range, 0);
  value init;
  switch (e->macro) {
  case M_ALL: init = cv_bool(true); break;
  case M_EXISTS: init = cv_bool(false); break;
  case M_EXISTS_ONE: init = cv_int(0); break;
  default: init = cv_list(NULL, 0); break;
  }
  emit(g, BC_LOADK, dst, add_const(g, init), 0);
  uint32_t head = emit(g, BC_ITERNEXT, x, it, 0);
  uint32_t body_mark = g->next_reg;
  uint32_t exit_jump = PROG_NONE, skip = PROG_NONE;
  const expr *pred = e->args[1];
  switch (e->macro) {
  case M_ALL:
  case M_EXISTS:
  case M_EXISTS_ONE: {
    uint32_t rp = gen_reg(g, pred);
    opcode op = e->macro == M_ALL ? BC_ALLSTEP : e->macro == M_EXISTS ? BC_ANYSTEP : BC_ONESTEP;
    exit_jump = emit(g, op, dst, rp, 0);
    break;
  }
  case M_FILTER: {
    uint32_t rp = gen_reg(g, pred);
    skip = emit(g, BC_FILTER, dst, rp, 0);
    emit(g, BC_APPEND, dst, x, 0);
    break;
  }
  default: { /* M_MAP: map(x, f) or map(x, p, f) */
    if (e->nargs == 3) {
      uint32_t rp = gen_reg(g, pred);
      skip = emit(g, BC_FILTER, dst, rp, 0);
    }
    uint32_t rf = gen_reg(g, e->args[e->nargs - 1]);
    emit(g, BC_APPEND, dst, rf, 0);
    break;
  }
  }
  g->next_reg = body_mark;
  if (skip != PROG_NONE) patch_jump(g, skip);
  uint32_t loop = emit(g, BC_LOOP, 0, 0, 0);
  g->code[loop] = INSTR_MAKE(BC_LOOP, 0, 0, loop - head);
  patch_jump(g, head);
  if (exit_jump != PROG_NONE) patch_jump(g, exit_jump);
  if (e->macro == M_EXISTS_ONE) emit(g, BC_ONEEND, dst, dst, 0);
  uint32_t done = emit(g, BC_JMP, 0, 0, 0);
  patch_jump(g, iter);
  emit(g, BC_ITERERR, dst, it, 0);
  patch_jump(g, done);
  g->next_reg = mark;
}

static void gen_call(cg *g, const expr *e, uint32_t dst) {
  if (e->macro == M_HAS) {
    const expr *sel = e->args[0];
    if (has_field(e)) {
      g->src_text = source_text(g, e->loc);
      emit(g, BC_HAS, dst, (uint32_t)sel->ref_index, 0);
    } else {
      uint32_t mark = g->next_reg;
      uint32_t rm = gen_reg(g, sel->operand);
      g->src_text = source_text(g, e->loc);
      emit(g, BC_HASKEY, dst, rm, add_string_const(g, sel->name));
      g->next_reg = mark;
    }
    return;
  }
  if (e->macro != M_NONE) {
    gen_comprehension(g, e, dst);
    return;
  }
  if (e->ref == REF_EXTERN) {
    /* Bound at load: the arguments in consecutive registers, as for CALL
     * (a lone one where it lives), the count from the extern table. */
    uint32_t x = add_extern(g, e->ref_index);
    uint32_t mark = g->next_reg;
    uint32_t first = e->nargs == 1 ? gen_reg(g, e->args[0]) : e->nargs ? gen_args(g, NULL, e->args, e->nargs) : 0;
    g->src_text = source_text(g, e->loc);
    emit(g, BC_XCALL, dst, first, x);
    g->next_reg = mark;
    return;
  }
  if (!e->builtin) { /* unchecked expressions only, as for unknown names */
    char msg[300];
    snprintf(msg, sizeof msg, "no matching overload: unknown function '%s'", e->name);
    g->src_text = source_text(g, e->loc);
    emit(g, BC_ERROR, dst, add_string_const(g, arena_strndup(g->a, msg, strlen(msg))), 0);
    return;
  }
  const cel_builtin *fn = e->builtin;
  uint32_t mark = g->next_reg;
  value pattern;
  /* A constant pattern compiles once, when the program loads. */
  if (strcmp(fn->name, "matches") == 0 && e->nargs == (e->operand ? 1 : 2)) {
    const expr *subject = e->operand ? e->operand : e->args[0];
    const expr *pat = e->args[e->nargs - 1];
    if (fold(g, pat, &pattern) && pattern.kind == CV_STRING) {
      uint32_t rs = gen_reg(g, subject);
      g->src_text = source_text(g, e->loc);
      emit(g, BC_MATCHK, dst, rs, add_const(g, pattern));
      g->next_reg = mark;
      return;
    }
  }
  if (e->operand && e->nargs == 1 && fn == cel_builtin_find("startsWith", true, 2)) {
    /* Its own instruction: the operands are read where they live. */
    uint32_t rs = gen_reg(g, e->operand);
    uint32_t rp = gen_reg(g, e->args[0]);
    g->src_text = source_text(g, e->loc);
    emit(g, BC_STARTS, dst, rs, rp);
    g->next_reg = mark;
    return;
  }
  int n = e->nargs + (e->operand ? 1 : 0);
  /* A single argument is read where it lives: no copy. */
  uint32_t first = n == 1 ? gen_reg(g, e->operand ? e->operand : e->args[0])
                          : gen_args(g, e->operand, e->args, e->nargs);
  g->src_text = source_text(g, e->loc);
  emit(g, BC_CALL, dst, first, add_call(g, fn, n));
  g->next_reg = mark;
}

static void gen_into(cg *g, const expr *e, uint32_t dst) {
  if (g->failed) return;
  srcloc saved_loc = g->err_loc;
  g->err_loc = e->loc;
  value v;
  if (fold(g, e, &v)) {
    g->src_text = source_text(g, e->loc);
    emit(g, BC_LOADK, dst, add_const(g, v), 0);
    g->err_loc = saved_loc;
    return;
  }
  uint32_t mark = g->next_reg;
  switch (e->kind) {
  case E_IDENT:
  case E_SELECT:
    if (e->ref != REF_NONE) {
      uint32_t r = gen_reg(g, e);
      if (r != dst) {
        g->src_text = source_text(g, e->loc);
        emit(g, BC_MOVE, dst, r, 0);
      }
      break;
    }
    if (e->kind == E_IDENT) {
      /* Only unchecked expressions (`disable_check`) get here: as in CEL,
       * an unknown name is an evaluation error, not a compile error. */
      char msg[300];
      snprintf(msg, sizeof msg, "no such attribute: undeclared reference to '%s'", e->name);
      g->src_text = source_text(g, e->loc);
      emit(g, BC_ERROR, dst, add_string_const(g, arena_strndup(g->a, msg, strlen(msg))), 0);
      break;
    }
    {
      uint32_t rm = gen_reg(g, e->operand);
      g->src_text = source_text(g, e->loc);
      emit(g, BC_SELECT, dst, rm, add_string_const(g, e->name));
    }
    break;
  case E_INDEX: {
    if (fold(g, e->operand, &v)) { /* a constant map or list: no LOADK */
      uint32_t rb = gen_reg(g, e->args[0]);
      g->src_text = source_text(g, e->loc);
      emit(g, BC_INDEXK, dst, add_const(g, v), rb);
      break;
    }
    uint32_t ra = gen_reg(g, e->operand);
    uint32_t rb = gen_reg(g, e->args[0]);
    g->src_text = source_text(g, e->loc);
    emit(g, BC_INDEX, dst, ra, rb);
    break;
  }
  case E_UNARY: {
    uint32_t ra = gen_reg(g, e->operand);
    g->src_text = source_text(g, e->loc);
    emit(g, e->op == OP_NOT ? BC_NOT : BC_NEG, dst, ra, 0);
    break;
  }
  case E_BINARY: {
    if (e->op == OP_AND || e->op == OP_OR) {
      gen_logic(g, e, dst);
      break;
    }
    uint32_t ra = gen_reg(g, e->operand);
    if (e->op >= OP_EQ && e->op <= OP_IN && fold(g, e->args[0], &v)) {
      g->src_text = source_text(g, e->loc);
      emit(g, const_ops[e->op], dst, ra, add_const(g, v));
      break;
    }
    uint32_t rb = gen_reg(g, e->args[0]);
    g->src_text = source_text(g, e->loc);
    emit(g, binary_ops[e->op], dst, ra, rb);
    break;
  }
  case E_COND:
    gen_cond(g, e, dst);
    break;
  case E_LIST: {
    uint32_t first = gen_args(g, NULL, e->args, e->nargs);
    g->src_text = source_text(g, e->loc);
    emit(g, BC_LIST, dst, first, (uint32_t)e->nargs);
    break;
  }
  case E_MAP: {
    uint32_t first = gen_args(g, NULL, e->args, e->nargs);
    g->src_text = source_text(g, e->loc);
    emit(g, BC_MAP, dst, first, (uint32_t)e->nargs / 2);
    break;
  }
  case E_CALL:
    gen_call(g, e, dst);
    break;
  case E_LITERAL:
    break; /* folded above */
  }
  g->next_reg = mark;
  g->err_loc = saved_loc;
}

/* ---- program ---------------------------------------------------------------------------------- */

static const rtype *to_rtype(cg *g, const type *t) {
  rtype *r = arena_alloc(g->a, sizeof *r);
  if (!r) {
    g->failed = true;
    return NULL;
  }
  memset(r, 0, sizeof *r);
  switch (t ? t->kind : T_DYN) {
  case T_BOOL: r->kind = CV_BOOL; break;
  case T_INT: r->kind = CV_INT; break;
  case T_UINT: r->kind = CV_UINT; break;
  case T_DOUBLE: r->kind = CV_DOUBLE; break;
  case T_STRING: r->kind = CV_STRING; break;
  case T_BYTES: r->kind = CV_BYTES; break;
  case T_TIMESTAMP: r->kind = CV_TIMESTAMP; break;
  case T_DURATION: r->kind = CV_DURATION; break;
  case T_LIST:
    r->kind = CV_LIST;
    r->elem = to_rtype(g, t->elem);
    break;
  case T_MAP:
    r->kind = CV_MAP;
    r->key = to_rtype(g, t->key);
    r->elem = to_rtype(g, t->elem);
    break;
  default: r->kind = RT_ANY; break;
  }
  return r;
}

static void new_block(cg *g) {
  if (!grow(g, (void **)&g->blocks, &g->capblocks, g->nblocks, sizeof(uint32_t))) return;
  g->blocks[g->nblocks++] = g->ncode;
}

static void finish(cg *g) {
  clause_program *p = g->p;
  p->code = g->code;
  p->debug = g->debug;
  p->ncode = g->ncode;
  p->consts = g->consts;
  p->nconsts = g->nconsts;
  p->calls = g->calls;
  p->ncalls = g->ncalls;
  p->obligs = g->obligs;
  p->nobligs = g->nobligs;
  p->externs = g->externs;
  p->nexterns = g->nexterns;
  p->block_start = g->blocks;
  p->nblocks = g->nblocks;
  p->nregs = g->max_reg;
  /* Without a reader of `now` the VM need not fetch the time. */
  if (!g->now_used) p->now_reg = PROG_NONE;
  if (p->nregs > INSTR_MAX_OPERAND + 1) fail_at(g, g->err_loc, "the policy needs too many registers");
}

static void setup(cg *g, arena *a, diag_list *d, const policy_file *pf, clause_program *p) {
  memset(g, 0, sizeof *g);
  memset(p, 0, sizeof *p);
  g->a = a;
  g->d = d;
  g->pf = pf;
  g->p = p;
  g->ctx.scratch = a;
  g->ctx.regex_match_limit = 100000;
  p->clock_field = PROG_NONE;
  p->now_reg = PROG_NONE;
  p->name = "";
  p->version = "";
}

/* A rule's `when` as a chain of conjuncts `c1 && c2 && ...`: each jumps to
 * the next rule as soon as it is false (false absorbs errors, so nothing
 * after it matters); an error is kept aside as the rule's pending error,
 * and RCOND fails the rule with it only when no conjunct was false. A rule
 * that does not match thus costs its first false conjunct: one
 * instruction when that is a has(), an `==`/`!=` or an `in` against a
 * constant. */
#define MAX_CONJUNCTS 32

static int flatten_and(const expr *e, const expr **out, int n) {
  if (e->kind == E_BINARY && e->op == OP_AND && n < MAX_CONJUNCTS - 1) {
    n = flatten_and(e->operand, out, n);
    return flatten_and(e->args[0], out, n);
  }
  if (n < MAX_CONJUNCTS) out[n++] = e;
  return n;
}

static const opcode conjunct_const_ops[] = {
    [OP_EQ] = BC_CJEQK, [OP_NE] = BC_CJNEK, [OP_LT] = BC_CJLTK, [OP_LE] = BC_CJLEK,
    [OP_GT] = BC_CJGTK, [OP_GE] = BC_CJGEK, [OP_IN] = BC_CJINK,
};
static const opcode conjunct_ops[] = {
    [OP_EQ] = BC_CJEQ, [OP_NE] = BC_CJNE, [OP_LT] = BC_CJLT, [OP_LE] = BC_CJLE,
    [OP_GT] = BC_CJGT, [OP_GE] = BC_CJGE, [OP_IN] = BC_CJIN,
};

static bool is_comparison(const expr *e) {
  return e->kind == E_BINARY && e->op >= OP_EQ && e->op <= OP_IN;
}

static void gen_conjunct(cg *g, const expr *c, uint32_t *exits, int *nexits) {
  uint32_t mark = g->next_reg;
  value k;
  const expr *arg = has_field(c);
  const expr *negated = c->kind == E_UNARY && c->op == OP_NOT ? c->operand : NULL;
  if (arg) {
    g->src_text = source_text(g, c->loc);
    exits[(*nexits)++] = emit(g, BC_CJABSENT, (uint32_t)arg->ref_index, 0, 0);
  } else if (fold(g, c, &k)) {
    uint32_t r = gen_reg(g, c); /* a constant conjunct */
    g->src_text = source_text(g, c->loc);
    exits[(*nexits)++] = emit(g, BC_CJFALSE, r, 0, 0);
  } else if (is_comparison(c)) {
    /* The comparison and the test in one instruction. */
    uint32_t r = gen_reg(g, c->operand);
    uint32_t second;
    opcode op;
    if (fold(g, c->args[0], &k)) {
      second = add_const(g, k);
      op = conjunct_const_ops[c->op];
    } else {
      second = gen_reg(g, c->args[0]);
      op = conjunct_ops[c->op];
    }
    g->src_text = source_text(g, c->loc);
    exits[(*nexits)++] = emit(g, op, r, second, 0);
  } else if (negated && negated->kind == E_BINARY && negated->op == OP_IN &&
             fold(g, negated->args[0], &k)) {
    uint32_t r = gen_reg(g, negated->operand);
    g->src_text = source_text(g, c->loc);
    exits[(*nexits)++] = emit(g, BC_CJNINK, r, add_const(g, k), 0);
  } else if (negated) {
    uint32_t r = gen_reg(g, negated);
    g->src_text = source_text(g, c->loc);
    exits[(*nexits)++] = emit(g, BC_CJNOT, r, 0, 0);
  } else {
    uint32_t r = gen_reg(g, c);
    g->src_text = source_text(g, c->loc);
    exits[(*nexits)++] = emit(g, BC_CJFALSE, r, 0, 0);
  }
  g->next_reg = mark;
}

/* Emits the rule's condition; its exits jump to the next rule. */
static void gen_when(cg *g, const rule_decl *rd, uint32_t rule, uint32_t *exits, int *nexits) {
  const expr *conj[MAX_CONJUNCTS];
  value v;
  int n = fold(g, rd->when, &v) ? 0 : flatten_and(rd->when, conj, 0);
  if (n == 0 || n == MAX_CONJUNCTS) {
    uint32_t rw = gen_reg(g, rd->when);
    g->src_text = source_text(g, rd->when->loc);
    exits[(*nexits)++] = emit(g, BC_RWHEN, rw, rule, 0);
    return;
  }
  for (int i = 0; i < n; i++) gen_conjunct(g, conj[i], exits, nexits);
  g->src_text = source_text(g, rd->when->loc);
  exits[(*nexits)++] = emit(g, BC_RCOND, 0, rule, 0);
}

/* The JSON array of an obligation whose arguments are all constants, or
 * NULL. */
static const char *constant_args_json(cg *g, const then_clause *th) {
  outbuf o;
  ob_init_grow(&o);
  ob_putc(&o, '[');
  for (int i = 0; i < th->nargs; i++) {
    value v;
    if (!fold(g, th->args[i], &v)) {
      ob_free(&o);
      return NULL;
    }
    if (i) ob_putc(&o, ',');
    cel_to_json(&o, &v);
  }
  ob_putc(&o, ']');
  const char *json = o.oom ? NULL : arena_strndup(g->a, o.buf, o.len);
  ob_free(&o);
  return json;
}

static const rule_effect effect_of[] = {
    [EFF_ALLOW] = RE_ALLOW, [EFF_FLAG] = RE_FLAG, [EFF_THROTTLE] = RE_THROTTLE,
    [EFF_DENY] = RE_DENY,   [EFF_SUSPEND] = RE_SUSPEND,
};

/* ---- counters and suspensions ------------------------------------------------------ */

/* The counter that e reads, directly or through a let, or -1. Counter keys
 * and amounts, and suspend keys, run before the store is asked, when no
 * counter has a value yet: they must not read one. */
static int counter_read_by(const policy_file *pf, const expr *e, uint8_t *let_seen) {
  if (!e) return -1;
  if ((e->kind == E_IDENT || e->kind == E_SELECT) && e->macro == M_NONE) {
    if (e->ref == REF_COUNTER) return e->ref_index;
    if (e->ref == REF_LET) {
      if (let_seen[e->ref_index]) return -1;
      let_seen[e->ref_index] = 1;
      return counter_read_by(pf, pf->lets[e->ref_index].value, let_seen);
    }
    if (e->ref != REF_NONE) return -1;
  }
  int k = counter_read_by(pf, e->operand, let_seen);
  for (int i = 0; i < e->nargs && k < 0; i++) k = counter_read_by(pf, e->args[i], let_seen);
  return k;
}

/* counter_read_by for one expression (-1 also when out of memory, which
 * fails the generation). */
static int counter_read(cg *g, const expr *e) {
  size_t n = (size_t)g->pf->nlets + 1;
  if (!g->let_seen && !(g->let_seen = arena_alloc(g->a, n))) {
    g->failed = true;
    return -1;
  }
  memset(g->let_seen, 0, n);
  return counter_read_by(g->pf, e, g->let_seen);
}

/* Whether a rule's condition, retry_after, suspension or obligations read
 * a counter (its reason runs after all rules). */
static bool rule_reads_counter(cg *g, const rule_decl *rd) {
  const expr *parts[] = {rd->when, rd->unless, rd->retry_after, rd->suspend_key, rd->suspend_for};
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
    if (counter_read(g, parts[i]) >= 0) return true;
  for (int t = 0; t < rd->nthens; t++)
    for (int k = 0; k < rd->thens[t].nargs; k++)
      if (counter_read(g, rd->thens[t].args[k]) >= 0) return true;
  return false;
}

/* A value block computing e (for the VM to run before the rules). */
static uint32_t gen_value_block(cg *g, const expr *e, const char *what, uint32_t temps) {
  int k = counter_read(g, e);
  if (k >= 0) { /* reported for every such expression, not just the first */
    diag_error(g->d, e->loc, "%s cannot read counter `%s`: it is computed before counters are read", what,
               g->pf->counters[k].name);
    g->failed = true;
  }
  g->next_reg = temps;
  uint32_t block = g->nblocks;
  new_block(g);
  uint32_t r = gen_reg(g, e);
  g->src_text = source_text(g, e->loc);
  emit(g, BC_RET, r, 0, 0);
  return block;
}

static void gen_state_blocks(cg *g, uint32_t temps) {
  const policy_file *pf = g->pf;
  clause_program *p = g->p;
  p->ncounters = (uint32_t)pf->ncounters;
  p->counters = arena_alloc(g->a, (pf->ncounters ? pf->ncounters : 1) * sizeof(prog_counter));
  if (!p->counters) {
    g->failed = true;
    return;
  }
  for (int i = 0; i < pf->ncounters; i++) {
    const counter_decl *k = &pf->counters[i];
    prog_counter *c = &p->counters[i];
    memset(c, 0, sizeof *c);
    c->name = k->name;
    c->window_ns = k->window->lit.i;
    c->mode = k->distinct ? CM_DISTINCT : k->add ? CM_ADD : CM_COUNT;
    for (int j = 0; j < k->non; j++) c->on_mask |= (uint8_t)(1u << effect_of[k->on[j]]);
    c->key_block = gen_value_block(g, k->key, "a counter's key", temps);
    c->arg_block = k->distinct ? gen_value_block(g, k->distinct, "a counter's `distinct`", temps)
                   : k->add    ? gen_value_block(g, k->add, "a counter's `add`", temps)
                               : PROG_NONE;
  }
  for (int r = 0; r < pf->nrules; r++) {
    p->rules[r].suspend_key_block = PROG_NONE;
    if (pf->rules[r].effect != EFF_SUSPEND) continue;
    p->rules[r].suspend_key_block = gen_value_block(g, pf->rules[r].suspend_key, "a suspend key", temps);
    p->nsuspend++;
  }
}

bool codegen_policy(const policy_file *pf, arena *a, diag_list *d, clause_program *p) {
  cg g0, *g = &g0;
  setup(g, a, d, pf, p);
  p->kind = PROG_POLICY;
  p->name = pf->name ? pf->name : "";
  p->version = pf->version ? pf->version : "";
  p->default_effect = pf->default_effect == EFF_DENY ? RE_DENY : RE_ALLOW;
  p->first_match = pf->combine == COMBINE_FIRST_MATCH;
  p->on_error_deny = pf->on_error_deny;
  p->on_store_error_allow = pf->on_store_error_allow;

  p->nfields = (uint32_t)pf->nfields;
  prog_field *fields = arena_alloc(a, (pf->nfields ? pf->nfields : 1) * sizeof *fields);
  if (!fields) return false;
  memset(fields, 0, (pf->nfields ? pf->nfields : 1) * sizeof *fields);
  for (int i = 0; i < pf->nfields; i++) {
    fields[i].path = pf->fields[i].path;
    fields[i].type = to_rtype(g, pf->fields[i].ty);
    fields[i].optional = pf->fields[i].optional;
    fields[i].clock = pf->fields[i].clock;
    if (pf->fields[i].clock) p->clock_field = (uint32_t)i;
  }
  p->fields = fields;
  g->next_reg = g->max_reg = p->nfields;
  p->now_reg = new_reg(g);
  p->counter_reg = g->next_reg;
  for (int i = 0; i < pf->ncounters; i++) new_reg(g);

  /* Lets: a register each unless constant. */
  int nl = pf->nlets;
  g->let_reg = arena_alloc(a, (nl ? nl : 1) * sizeof(uint32_t));
  g->let_folded = arena_alloc(a, (nl ? nl : 1));
  g->let_value = arena_alloc(a, (nl ? nl : 1) * sizeof(value));
  p->let_regs = arena_alloc(a, (nl ? nl : 1) * sizeof(uint32_t));
  if (!g->let_reg || !g->let_folded || !g->let_value || !p->let_regs) return false;
  memset(g->let_folded, 0, nl ? nl : 1);
  for (int i = 0; i < nl; i++) {
    value v;
    if (fold_let(g, i, &v)) {
      g->let_reg[i] = PROG_NONE;
    } else {
      g->let_reg[i] = new_reg(g);
      p->let_regs[p->nlets++] = g->let_reg[i];
    }
  }
  uint32_t temps = g->next_reg;
  for (int i = 0; i < pf->nexterns; i++)
    if (!pf->externs[i].module) add_extern(g, i);

  p->nrules = (uint32_t)pf->nrules;
  p->rules = arena_alloc(a, (pf->nrules ? pf->nrules : 1) * sizeof(prog_rule));
  if (!p->rules) return false;
  new_block(g);
  /* A stateful policy asks the store (STATE) just before the first rule
   * that reads a counter: the rules before it run while the store's
   * answer is on its way (see clause_vm_eval). */
  bool stateful = pf->ncounters > 0;
  for (int r = 0; r < pf->nrules; r++) stateful |= pf->rules[r].effect == EFF_SUSPEND;
  bool state_emitted = !stateful;
  for (int r = 0; r < pf->nrules && !g->failed; r++) {
    const rule_decl *rd = &pf->rules[r];
    prog_rule *pr = &p->rules[r];
    if (!state_emitted && rule_reads_counter(g, rd)) {
      g->src_text = NULL;
      emit(g, BC_STATE, 0, 0, 0);
      state_emitted = true;
    }
    pr->id = rd->id;
    pr->cite = rd->cite;
    pr->effect = effect_of[rd->effect];
    pr->reason_block = PROG_NONE;
    g->err_loc = rd->loc;
    g->next_reg = temps;

    uint32_t exits[4 + MAX_CONJUNCTS];
    int nexits = 0;
    gen_when(g, rd, (uint32_t)r, exits, &nexits);
    if (rd->unless) {
      uint32_t ru = gen_reg(g, rd->unless);
      g->src_text = source_text(g, rd->unless->loc);
      exits[nexits++] = emit(g, BC_RUNLESS, ru, (uint32_t)r, 0);
    }
    if (rd->effect == EFF_THROTTLE && rd->retry_after) {
      uint32_t rt = gen_reg(g, rd->retry_after);
      g->src_text = source_text(g, rd->retry_after->loc);
      exits[nexits++] = emit(g, BC_RRETRY, rt, (uint32_t)r, 0);
    }
    if (rd->effect == EFF_SUSPEND) {
      uint32_t rk = new_reg(g);
      new_reg(g);
      gen_into(g, rd->suspend_key, rk);
      gen_into(g, rd->suspend_for, rk + 1);
      g->src_text = source_text(g, rd->suspend_key->loc);
      exits[nexits++] = emit(g, BC_RSUSPEND, rk, (uint32_t)r, 0);
    }
    char *label = arena_alloc(a, strlen(rd->id) + 8);
    if (label) sprintf(label, "rule \"%s\"", rd->id);
    g->src_text = label;
    emit(g, BC_RMATCH, 0, (uint32_t)r, 0);
    for (int t = 0; t < rd->nthens; t++) {
      const then_clause *th = &rd->thens[t];
      if (!grow(g, (void **)&g->obligs, &g->capobligs, g->nobligs, sizeof(prog_oblig))) break;
      g->obligs[g->nobligs] = (prog_oblig){(uint32_t)r, th->action, (uint32_t)th->nargs};
      g->src_text = label;
      const char *json = constant_args_json(g, th);
      if (json) { /* rendered once, here, instead of on every match */
        emit(g, BC_OBLIGK, 0, g->nobligs++, add_string_const(g, json));
        continue;
      }
      uint32_t mark = g->next_reg;
      uint32_t first = gen_args(g, NULL, th->args, th->nargs);
      emit(g, BC_OBLIG, th->nargs ? first : 0, g->nobligs++, 0);
      g->next_reg = mark;
    }
    if (p->first_match && rd->effect != EFF_FLAG) emit(g, BC_HALT, 0, 0, 0);
    for (int k = 0; k < nexits; k++) patch_jump(g, exits[k]);
  }
  g->src_text = NULL;
  if (!state_emitted) emit(g, BC_STATE, 0, 0, 0);
  emit(g, BC_HALT, 0, 0, 0);

  /* One value block per reason. */
  for (int r = 0; r < pf->nrules && !g->failed; r++) {
    const rule_decl *rd = &pf->rules[r];
    if (!rd->reason) continue;
    g->next_reg = temps;
    p->rules[r].reason_block = g->nblocks;
    new_block(g);
    uint32_t rr = gen_reg(g, rd->reason);
    g->src_text = source_text(g, rd->reason->loc);
    emit(g, BC_RET, rr, 0, 0);
  }
  gen_state_blocks(g, temps);
  finish(g);
  return !g->failed;
}

bool codegen_expression(const expr *e, const char *const *vars, int nvars, arena *a,
                        diag_list *d, clause_program *p) {
  cg g0, *g = &g0;
  setup(g, a, d, NULL, p);
  p->kind = PROG_EXPR;
  p->nfields = (uint32_t)nvars;
  prog_field *fields = arena_alloc(a, (nvars ? nvars : 1) * sizeof *fields);
  rtype *any = arena_alloc(a, sizeof *any);
  if (!fields || !any) return false;
  memset(any, 0, sizeof *any);
  any->kind = RT_ANY;
  for (int i = 0; i < nvars; i++) {
    memset(&fields[i], 0, sizeof fields[i]);
    fields[i].path = vars[i];
    fields[i].type = any;
    fields[i].optional = 1;
  }
  p->fields = fields;
  g->next_reg = g->max_reg = p->nfields;
  p->now_reg = new_reg(g);
  g->let_reg = NULL;
  new_block(g);
  uint32_t r = gen_reg(g, e);
  g->src_text = NULL;
  emit(g, BC_RET, r, 0, 0);
  finish(g);
  return !g->failed;
}
