/*
 * vm.c - the register VM: runs verified blocks and builds the decision.
 *
 * Dispatch is computed goto under GCC (one indirect jump per instruction,
 * better branch prediction) and a plain switch elsewhere or when
 * CLAUSE_SWITCH_DISPATCH is defined (tests build both). The loop itself is
 * in vm_run.h, built twice: to decide, and to explain (--explain).
 *
 * Errors are values: an operation on an error operand yields that error,
 * so a rule's condition carries the first error up to RWHEN, which applies
 * on_error. The VM never trusts the program beyond what verify.c proved.
 */
#include "vm.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "extern.h"
#include "regex.h"
#include "strset.h"

#if defined(__GNUC__) && !defined(CLAUSE_SWITCH_DISPATCH)
#define VM_COMPUTED_GOTO 1
#endif

static const value V_TRUE = {.kind = CV_BOOL, .b = true};
static const value V_FALSE = {.kind = CV_BOOL, .b = false};

static inline bool is_true(const value *v) { return v->kind == CV_BOOL && v->b; }
static inline bool is_false(const value *v) { return v->kind == CV_BOOL && !v->b; }

/* has() of an input field: absent and wrong-typed fields read as errors. */
static inline bool field_absent(const value *f) {
  return f->kind == CV_ERROR && (f->flag == CV_ERR_ABSENT || f->flag == CV_ERR_WRONG_TYPE);
}

value vm_wall_clock(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return cv_timestamp((int64_t)ts.tv_sec, (uint32_t)ts.tv_nsec);
}

void vm_add_error(clause_vm *vm, const char *rule, const char *msg, size_t n) {
  if (vm->nerrors >= vm->errors_cap) return; /* sized for the worst case */
  char *copy = arena_strndup(&vm->scratch, msg, n);
  vm->errors[vm->nerrors].rule = rule;
  vm->errors[vm->nerrors].message = copy ? copy : "out of memory";
  vm->nerrors++;
}

/* A rule's condition (or retry_after, or suspend key) failed. */
static void rule_fails(clause_vm *vm, uint32_t r, const value *err, const char *what) {
  const prog_rule *rule = &vm->p->rules[r];
  const char *msg;
  size_t n;
  char buf[160];
  if (err->kind == CV_ERROR) {
    msg = err->s;
    n = err->n;
  } else {
    n = (size_t)snprintf(buf, sizeof buf, "no matching overload: %s is %s, not %s", what,
                         cv_kind_name((cv_kind)err->kind),
                         strcmp(what, "condition") == 0 ? "bool" : "a positive duration");
    if (n >= sizeof buf) n = sizeof buf - 1;
    msg = buf;
  }
  vm_add_error(vm, rule->id, msg, n);
  if (!vm->p->on_error_deny) return;
  /* on_error deny: the rule matches as a deny, whatever its own effect. */
  if (vm->nmatched < vm->p->nrules) vm->matched[vm->nmatched++] = r;
  if (vm->decider == PROG_NONE || RE_DENY > vm->best) {
    vm->decider = r;
    vm->best = RE_DENY;
    vm->decider_failed = true;
    vm->decider_msg = vm->errors[vm->nerrors - 1].message;
  }
  if (vm->p->first_match) vm->stop = true;
}

static void rule_matches(clause_vm *vm, uint32_t r) {
  const prog_rule *rule = &vm->p->rules[r];
  if (rule->effect == RE_FLAG) {
    if (vm->nflags < vm->p->nrules) vm->flags[vm->nflags++] = rule->id;
    return;
  }
  if (vm->decider == PROG_NONE || rule->effect > vm->best) {
    vm->decider = r;
    vm->best = rule->effect;
    vm->decider_failed = false;
    vm->decider_retry_ns = vm->pending_retry_ns;
    vm->state.suspend_ns = vm->pending_susp_ns;
  }
  if (vm->nmatched < vm->p->nrules) vm->matched[vm->nmatched++] = r;
  vm->pending_retry_ns = -1;
}

/* An upper bound of a scalar's JSON length, or 0 for lists and maps (whose
 * size is found by rendering them once into nothing). */
static size_t json_bound(const value *v) {
  switch ((cv_kind)v->kind) {
  case CV_STRING: return 6 * (size_t)v->n + 2; /* every byte as \u00XX */
  case CV_BYTES: return 4 * ((size_t)v->n / 3 + 1) + 2;
  case CV_LIST: case CV_MAP: return 0;
  default: return 48; /* numbers, booleans, null, timestamps, durations */
  }
}

static void record_obligation(clause_vm *vm, const prog_oblig *ob, const char *args_json) {
  if (vm->nobligs_out >= vm->p->nobligs) return; /* each OBLIG runs once per rule match */
  clause_obligation *out = &vm->obligs[vm->nobligs_out++];
  out->rule = vm->p->rules[ob->rule].id;
  out->action = ob->action;
  out->args_json = args_json;
}

static void add_obligation(clause_vm *vm, const prog_oblig *ob, const value *args) {
  size_t need = 3;
  for (uint32_t i = 0; i < ob->nargs && need; i++) {
    size_t b = args[i].kind == CV_ERROR ? 4 : json_bound(&args[i]);
    need = b ? need + b + 1 : 0;
  }
  outbuf o;
  for (int pass = need ? 1 : 0; pass < 2; pass++) {
    if (pass == 0) {
      ob_init_fixed(&o, NULL, 0); /* sizing pass */
    } else {
      if (!need) need = o.len + 1;
      char *buf = arena_alloc(&vm->scratch, need);
      if (!buf) return;
      ob_init_fixed(&o, buf, need);
    }
    ob_putc(&o, '[');
    for (uint32_t i = 0; i < ob->nargs; i++) {
      if (i) ob_putc(&o, ',');
      if (args[i].kind == CV_ERROR)
        ob_puts(&o, "null"); /* a failing argument becomes null */
      else
        cel_to_json(&o, &args[i]);
    }
    ob_putc(&o, ']');
  }
  record_obligation(vm, ob, ob_cstr(&o));
}

/* x op y for two ints and one of the comparison operators. */
static inline bool int_compare(cel_binop op, int64_t x, int64_t y) {
  switch (op) {
  case CEL_EQ: return x == y;
  case CEL_NE: return x != y;
  case CEL_LT: return x < y;
  case CEL_LE: return x <= y;
  case CEL_GT: return x > y;
  default: return x >= y;
  }
}

/* Compares a register with a constant, with fast paths for the common
 * string and int cases. */
static inline void compare_k(cel_ctx *ctx, cel_binop op, value *dst, const value *a,
                             const value *k) {
  if (a->kind == CV_ERROR) {
    *dst = *a;
    return;
  }
  if ((op == CEL_EQ || op == CEL_NE) && a->kind == CV_STRING && k->kind == CV_STRING) {
    bool eq = a->n == k->n && str_same(a->s, k->s, a->n);
    *dst = (op == CEL_EQ) == eq ? V_TRUE : V_FALSE;
    return;
  }
  if (a->kind == CV_INT && k->kind == CV_INT) {
    *dst = int_compare(op, a->i, k->i) ? V_TRUE : V_FALSE;
    return;
  }
  cel_binary(ctx, op, dst, a, k);
}

/* `in` on a list of strings: a linear scan comparing lengths first. Out of
 * line: the hash-set paths of in_k and in_tagged, inlined into the
 * handlers, are the ones requests take. */
static __attribute__((noinline)) void in_list(cel_ctx *ctx, value *dst, const value *a, const value *k) {
  if (a->kind == CV_ERROR) {
    *dst = *a;
    return;
  }
  if (a->kind == CV_STRING && k->kind == CV_MAP) { /* a key of a map with string keys */
    bool all_strings = true;
    const value *kv = k->items;
    for (uint32_t i = 0; i < k->n; i++, kv += 2) {
      if (kv->kind != CV_STRING) {
        all_strings = false; /* numeric keys: CEL's rules, below */
        continue;
      }
      if (kv->n == a->n && str_same(kv->s, a->s, a->n)) {
        *dst = V_TRUE;
        return;
      }
    }
    if (all_strings) {
      *dst = V_FALSE;
      return;
    }
  }
  if (a->kind == CV_STRING && k->kind == CV_LIST) {
    bool all_strings = true, found = false;
    for (uint32_t i = 0; i < k->n; i++) {
      const value *e = &k->items[i];
      if (e->kind != CV_STRING) {
        all_strings = false;
        break;
      }
      if (e->n == a->n && str_same(e->s, a->s, a->n)) {
        found = true;
        break;
      }
    }
    if (all_strings || found) {
      *dst = found ? V_TRUE : V_FALSE;
      return;
    }
  }
  cel_binary(ctx, CEL_IN, dst, a, k);
}

/* m[key] on a map with string keys: compare lengths before bytes. */
static inline void index_fast(cel_ctx *ctx, value *dst, const value *m, const value *key) {
  if (m->kind == CV_MAP && key->kind == CV_STRING) {
    const value *kv = m->items;
    for (uint32_t i = 0; i < m->n; i++, kv += 2)
      if (kv->kind == CV_STRING && kv->n == key->n && str_same(kv->s, key->s, key->n)) {
        *dst = kv[1];
        return;
      }
  }
  cel_binary(ctx, CEL_INDEX, dst, m, key);
}

/* R[b] op R[c] for the comparisons, as the EQ..GE handlers compute it. */
static inline void compare_rr(cel_ctx *ctx, cel_binop op, value *dst, const value *x,
                              const value *y) {
  if (x->kind == CV_INT && y->kind == CV_INT) {
    *dst = int_compare(op, x->i, y->i) ? V_TRUE : V_FALSE;
    return;
  }
  if (x->kind == CV_ERROR) *dst = *x;
  else if (y->kind == CV_ERROR) *dst = *y;
  else cel_binary(ctx, op, dst, x, y);
}

/* x in y, as the IN handler computes it. */
static inline void in_rr(cel_ctx *ctx, value *dst, const value *x, const value *y) {
  if (y->kind == CV_ERROR) *dst = x->kind == CV_ERROR ? *x : *y;
  else in_list(ctx, dst, x, y);
}

/* x in y, y a list that may be a constant map's value with a hash set
 * (clb.c: tag_list_values). */
static inline __attribute__((always_inline)) void in_tagged(const clause_program *p, cel_ctx *ctx, value *dst,
                                                             const value *x, const value *y) {
  if (y->kind == CV_LIST && y->spare && x->kind == CV_STRING)
    *dst = strset_has(p->list_sets[y->spare - 1], x->s, x->n) ? V_TRUE : V_FALSE;
  else
    in_rr(ctx, dst, x, y);
}

/* x in K[k]: through the constant's hash set when it has one. */
static inline __attribute__((always_inline)) void in_k(const clause_program *p, cel_ctx *ctx, value *dst,
                                                        const value *x, uint32_t k) {
  if (p->sets[k] && x->kind == CV_STRING)
    *dst = strset_has(p->sets[k], x->s, x->n) ? V_TRUE : V_FALSE;
  else
    in_list(ctx, dst, x, &p->consts[k]);
}

/* What ITER makes of a value that is neither a list nor a map. */
static void not_iterable(cel_ctx *ctx, value *dst, const value *range) {
  if (range->kind == CV_ERROR) *dst = *range;
  else *dst = cv_error(ctx, "no matching overload: cannot iterate over %s", cv_kind_name((cv_kind)range->kind));
}

/* One step of exists() with predicate value v: true (and *acc true) when
 * it decides; otherwise the first error (or non-bool) stays in *acc. */
static inline bool any_step(cel_ctx *ctx, value *acc, const value *v) {
  if (is_true(v)) {
    *acc = V_TRUE;
    return true;
  }
  if (!is_false(v) && acc->kind != CV_ERROR)
    *acc = v->kind == CV_ERROR ? *v : cv_error(ctx, "no matching overload: predicate is %s, not bool", cv_kind_name((cv_kind)v->kind));
  return false;
}

/* range.exists(x, x in K[k]) as ITER, ANYSTEP and INK would compute it,
 * without the loop's instructions. */
static void any_in_k(const clause_program *p, cel_ctx *ctx, value *dst, const value *range, uint32_t k) {
  if (range->kind != CV_LIST && range->kind != CV_MAP) {
    not_iterable(ctx, dst, range);
    return;
  }
  uint32_t step = range->kind == CV_MAP ? 2 : 1; /* a map's keys */
  value acc = V_FALSE, v;
  const value *x = range->items;
  for (uint32_t i = 0; i < range->n; i++, x += step) {
    in_k(p, ctx, &v, x, k);
    if (any_step(ctx, &acc, &v)) break;
  }
  *dst = acc;
}

/* Appends to a list being built by map()/filter(); capacity is the length
 * rounded up to a power of two, so the list grows by doubling. */
static void list_append(clause_vm *vm, value *acc, const value *x) {
  uint32_t n = acc->n;
  value *items = (value *)acc->items;
  if (n == 0 || (n >= 4 && (n & (n - 1)) == 0)) {
    uint32_t cap = n == 0 ? 4 : n * 2;
    value *grown = arena_alloc(&vm->scratch, cap * sizeof(value));
    if (!grown) {
      *acc = cv_static_error("out of memory", 13, CV_ERR_GENERIC);
      return;
    }
    if (n) memcpy(grown, items, n * sizeof(value));
    items = grown;
  }
  items[n] = *x;
  *acc = cv_list(items, n + 1);
}

static void build_map(clause_vm *vm, value *dst, const value *kv, uint32_t pairs) {
  for (uint32_t i = 0; i < 2 * pairs; i++)
    if (kv[i].kind == CV_ERROR) {
      *dst = kv[i];
      return;
    }
  value *items = arena_alloc(&vm->scratch, (pairs ? pairs : 1) * 2 * sizeof(value));
  if (!items) {
    *dst = cv_static_error("out of memory", 13, CV_ERR_GENERIC);
    return;
  }
  for (uint32_t i = 0; i < pairs; i++) {
    const value *k = &kv[2 * i];
    if (k->kind != CV_STRING && k->kind != CV_INT && k->kind != CV_UINT && k->kind != CV_BOOL) {
      *dst = cv_error(&vm->ctx, "unsupported map key type: %s", cv_kind_name((cv_kind)k->kind));
      return;
    }
    for (uint32_t j = 0; j < i; j++)
      if (cel_equal(&items[2 * j], k)) {
        *dst = cv_error(&vm->ctx, "repeated map key");
        return;
      }
    items[2 * i] = *k;
    items[2 * i + 1] = kv[2 * i + 1];
  }
  *dst = cv_map(items, pairs);
}

static void build_list(clause_vm *vm, value *dst, const value *elems, uint32_t n) {
  for (uint32_t i = 0; i < n; i++)
    if (elems[i].kind == CV_ERROR) {
      *dst = elems[i];
      return;
    }
  value *items = arena_alloc(&vm->scratch, (n ? n : 1) * sizeof(value));
  if (!items) {
    *dst = cv_static_error("out of memory", 13, CV_ERR_GENERIC);
    return;
  }
  memcpy(items, elems, n * sizeof(value));
  *dst = cv_list(items, n);
}

static void call_builtin(clause_vm *vm, const prog_call *c, value *dst, const value *args) {
  if (!c->fn->errors_in)
    for (uint32_t i = 0; i < c->nargs; i++)
      if (args[i].kind == CV_ERROR) {
        *dst = args[i];
        return;
      }
  value out;
  c->fn->fn(&vm->ctx, &out, args, c->nargs);
  *dst = out;
}

/* s.startsWith(prefix) for anything but two strings (errors, other
 * kinds), as the builtin answers it. */
static void starts_with_other(clause_vm *vm, value *dst, const value *s, const value *prefix) {
  const value args[2] = {*s, *prefix};
  prog_call call = {.name = "startsWith", .member = 1, .nargs = 2, .fn = cel_builtin_find("startsWith", true, 2)};
  if (call.fn) call_builtin(vm, &call, dst, args);
  else *dst = cv_static_error("no matching overload: startsWith", 32, CV_ERR_GENERIC);
}

static inline void starts_with(clause_vm *vm, value *dst, const value *s, const value *prefix) {
  if (s->kind == CV_STRING && prefix->kind == CV_STRING)
    *dst = prefix->n <= s->n && str_same(s->s, prefix->s, prefix->n) ? V_TRUE : V_FALSE;
  else
    starts_with_other(vm, dst, s, prefix);
}

/* prefixes.exists(p, s.startsWith(p)) over a constant, as ITER, ANYSTEP
 * and STARTS would compute it, without the loop's instructions. */
static void starts_any(clause_vm *vm, value *dst, const value *s, const value *prefixes) {
  if (prefixes->kind != CV_LIST && prefixes->kind != CV_MAP) {
    not_iterable(&vm->ctx, dst, prefixes);
    return;
  }
  uint32_t step = prefixes->kind == CV_MAP ? 2 : 1;
  value acc = V_FALSE, v;
  const value *prefix = prefixes->items;
  for (uint32_t i = 0; i < prefixes->n; i++, prefix += step) {
    starts_with(vm, &v, s, prefix);
    if (any_step(&vm->ctx, &acc, &v)) break;
  }
  *dst = acc;
}

/* Whether every match of a pattern goes through its first branch: false
 * when a '|' outside any group offers an alternative, and also whenever the
 * pattern uses a construct this scan does not follow (\Q quoting, option
 * settings, comments, verbs), so that true is always safe. */
static bool regex_single_branch(const char *pat, uint32_t n) {
  int depth = 0;
  for (uint32_t i = 0; i < n; i++) {
    char ch = pat[i];
    if (ch == '\\') {
      if (i + 1 < n && pat[i + 1] == 'Q') return false;
      i++;
    } else if (ch == '[') { /* a class: up to its first unescaped ']' past the first character */
      i++;
      if (i < n && pat[i] == '^') i++;
      if (i < n && pat[i] == ']') i++;
      while (i < n && pat[i] != ']') i += pat[i] == '\\' ? 2 : 1;
    } else if (ch == '(') {
      if (i + 1 < n && pat[i + 1] == '*') return false;
      if (i + 2 < n && pat[i + 1] == '?' && (!pat[i + 2] || !strchr(":=!<>'P|(", pat[i + 2]))) return false;
      depth++;
    } else if (ch == ')') {
      depth--;
    } else if (ch == '|' && depth <= 0) {
      return false;
    }
  }
  return true;
}

uint32_t vm_regex_prefix(const char *pat, uint32_t n) {
  if (n == 0 || pat[0] != '^' || !regex_single_branch(pat, n)) return 0;
  uint32_t len = 0;
  while (1 + len < n) {
    unsigned char ch = (unsigned char)pat[1 + len];
    if (ch < 0x20 || ch >= 0x7f || strchr("\\^$.[]|()?*+{}", ch)) break;
    len++;
  }
  /* A quantifier applies to the character before it. */
  if (len && 1 + len < n && strchr("?*+{", pat[1 + len])) len--;
  return len;
}

static void match_k(clause_vm *vm, value *dst, const value *s, uint32_t k) {
  if (s->kind == CV_ERROR) {
    *dst = *s;
    return;
  }
  if (s->kind != CV_STRING) {
    *dst = cv_error(&vm->ctx, "no matching overload: matches on %s", cv_kind_name((cv_kind)s->kind));
    return;
  }
  /* An anchored pattern's literal start rules most subjects out without
   * running the regex engine. */
  uint32_t lit = vm->match_prefix ? vm->match_prefix[k] : 0;
  if (lit && (s->n < lit || memcmp(s->s, vm->p->consts[k].s + 1, lit) != 0)) {
    *dst = V_FALSE;
    return;
  }
  char err[128];
  int r = regex_match_cached(vm->p->regexes[k], vm->ctx.regex_cache, s->s, s->n,
                             vm->ctx.regex_match_limit, err, sizeof err);
  if (r < 0)
    *dst = cv_error(&vm->ctx, "%s", err);
  else
    *dst = r ? V_TRUE : V_FALSE;
}

static void trace_event(clause_vm *vm, uint32_t pc, const value *v) {
  vm_trace *t = vm->trace;
  if (t->n < t->cap) t->events[t->n++] = (vm_trace_event){pc, *v};
}
#define TRACE(v)                                                                 \
  do {                                                                           \
    if (__builtin_expect(tracing, 0))                                            \
      trace_event(vm, (uint32_t)(ip - code - 1), (v));                           \
  } while (0)

/* A conjunct of a rule's `when` that is neither true nor false: the rule
 * fails with the first such error unless a later conjunct is false. */
static void conjunct_error(clause_vm *vm, const value *v) {
  if (vm->pending.kind == CV_ERROR) return;
  if (v->kind == CV_ERROR)
    vm->pending = *v;
  else
    vm->pending = cv_error(&vm->ctx, "no matching overload: condition is %s, not bool",
                           cv_kind_name((cv_kind)v->kind));
}

/* (a && b) and (a || b) once both sides are known: `absorb` (false for
 * AND, true for OR) wins over errors from either side. */
static inline void logic_combine(cel_ctx *ctx, value *dst, const value *a, const value *b,
                                 bool absorb) {
  if (b->kind == CV_BOOL && b->b == absorb) {
    *dst = *b;
    return;
  }
  const value *bad = a->kind != CV_BOOL ? a : b->kind != CV_BOOL ? b : NULL;
  if (!bad) {
    *dst = cv_bool(a->b && b->b ? true : (absorb ? a->b || b->b : false));
    return;
  }
  if (bad->kind == CV_ERROR)
    *dst = *bad;
  else
    *dst = cv_error(ctx, "no matching overload: logical operator on %s", cv_kind_name((cv_kind)bad->kind));
}

/* The handlers' fast paths (operands of the kinds the checker expects)
 * are laid out first. */
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

/* The dispatch loop, built twice (vm_run.h). */
#define VM_RUN_NAME run_block_deciding
#define VM_RUN_TRACING 0
#include "vm_run.h"
#undef VM_RUN_NAME
#undef VM_RUN_TRACING
#define VM_RUN_NAME run_block_explaining
#define VM_RUN_TRACING 1
#include "vm_run.h"
#undef VM_RUN_NAME
#undef VM_RUN_TRACING

void vm_run_block(clause_vm *vm, uint32_t block, value *result) {
  if (vm->trace) run_block_explaining(vm, block, result);
  else run_block_deciding(vm, block, result);
}

void vm_begin_eval(clause_vm *vm) {
  const clause_program *p = vm->p;
  arena_reset(&vm->scratch);
  /* Every register past the inputs starts null: no evaluation can see a
   * value, or a pointer into reused memory, left by the previous one. */
  memset(vm->regs + p->nfields, 0, (p->nregs - p->nfields) * sizeof(value));
  for (uint32_t i = 0; i < p->nlets; i++) vm->regs[p->let_regs[i]].kind = CV_UNSET;
  vm->nerrors = vm->nflags = vm->nobligs_out = vm->nmatched = 0;
}

int vm_eval_value(clause_vm *vm, value *out) {
  const clause_program *p = vm->p;
  vm_begin_eval(vm);
  if (p->now_reg != PROG_NONE) vm->regs[p->now_reg] = vm_wall_clock();
  vm_run_block(vm, 0, out);
  return CLAUSE_OK;
}
