/*
 * vm.c - the register VM: runs verified blocks and builds the decision.
 *
 * Dispatch is computed goto under GCC (one indirect jump per instruction,
 * better branch prediction) and a plain switch elsewhere or when
 * CLAUSE_SWITCH_DISPATCH is defined (tests build both).
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

void vm_run_block(clause_vm *vm, uint32_t block, value *result) {
  const clause_program *p = vm->p;
  const bool tracing = vm->trace != NULL; /* read once, not per conjunct */
  const instr *code = tracing ? p->code : p->fast_code; /* the same but for jumps */
  const value *K = p->consts;
  value *R = vm->regs;
  cel_ctx *ctx = &vm->ctx;
  /* The next instruction: a pointer rather than an index, so dispatch
   * needs no base register. */
  const instr *ip = code + p->block_start[block];
  instr i;
  unsigned a, b, c;

#ifdef VM_COMPUTED_GOTO
  static const void *const dispatch_table[BC__COUNT] = {
#define OPCODE_LABEL(name, kinds, doc) &&L_##name,
      CLAUSE_OPCODES(OPCODE_LABEL)
#undef OPCODE_LABEL
  };
/* Each handler decodes its operands itself, so the compiler drops the
 * decoding of those it does not use. */
#define CASE(name)                                                               \
  L_##name:                                                                      \
  a = INSTR_A(i);                                                                \
  b = INSTR_B(i);                                                                \
  c = INSTR_C(i);
#define NEXT()                                                                   \
  do {                                                                           \
    i = *ip++;                                                                   \
    goto *dispatch_table[INSTR_OP(i)];                                           \
  } while (0)
#define DISPATCH() NEXT();
#else
#define CASE(name)                                                               \
  case BC_##name:                                                                \
    a = INSTR_A(i);                                                              \
    b = INSTR_B(i);                                                              \
    c = INSTR_C(i);
#define NEXT() goto next
#define DISPATCH()                                                               \
  next:                                                                          \
  i = *ip++;                                                                     \
  switch ((opcode)INSTR_OP(i))
#endif

  DISPATCH() {
    CASE(NOP) NEXT();
    CASE(MOVE) R[a] = R[b]; NEXT();
    CASE(LOADK) R[a] = K[b]; NEXT();
    CASE(ERROR) R[a] = cv_static_error(K[b].s, K[b].n, CV_ERR_GENERIC); NEXT();
    CASE(NOT) {
      if (R[b].kind == CV_BOOL) R[a] = R[b].b ? V_FALSE : V_TRUE;
      else cel_not(ctx, &R[a], &R[b]);
      NEXT();
    }
    CASE(NEG) {
      if (R[b].kind == CV_ERROR) R[a] = R[b];
      else cel_negate(ctx, &R[a], &R[b]);
      NEXT();
    }
/* FAST(x, y, dst) handles two ints inline and returns true; anything
 * else goes to the CEL library. */
#define BINARY(NAME, OP, FAST)                                                   \
  CASE(NAME) {                                                                   \
    if (R[b].kind == CV_INT && R[c].kind == CV_INT && FAST(R[b].i, R[c].i, &R[a])) \
      NEXT();                                                                    \
    if (R[b].kind == CV_ERROR) R[a] = R[b];                                      \
    else if (R[c].kind == CV_ERROR) R[a] = R[c];                                 \
    else cel_binary(ctx, OP, &R[a], &R[b], &R[c]);                              \
    NEXT();                                                                      \
  }
/* On overflow nothing is written (dst may be an operand) and the library
 * reports the error. */
#define INT_ARITH(builtin, x, y, d)                                              \
  ({                                                                             \
    int64_t t_;                                                                  \
    bool ok_ = !builtin((x), (y), &t_);                                          \
    if (ok_) *(d) = cv_int(t_);                                                  \
    ok_;                                                                         \
  })
#define INT_ADD(x, y, d) INT_ARITH(__builtin_add_overflow, x, y, d)
#define INT_SUB(x, y, d) INT_ARITH(__builtin_sub_overflow, x, y, d)
#define INT_MUL(x, y, d) INT_ARITH(__builtin_mul_overflow, x, y, d)
#define INT_CMP(expr, d) (*(d) = (expr) ? V_TRUE : V_FALSE, true)
#define INT_EQ(x, y, d) INT_CMP((x) == (y), d)
#define INT_NE(x, y, d) INT_CMP((x) != (y), d)
#define INT_LT(x, y, d) INT_CMP((x) < (y), d)
#define INT_LE(x, y, d) INT_CMP((x) <= (y), d)
#define INT_GT(x, y, d) INT_CMP((x) > (y), d)
#define INT_GE(x, y, d) INT_CMP((x) >= (y), d)
#define NO_FAST(x, y, d) false
    BINARY(ADD, CEL_ADD, INT_ADD)
    BINARY(SUB, CEL_SUB, INT_SUB)
    BINARY(MUL, CEL_MUL, INT_MUL)
    BINARY(DIV, CEL_DIV, NO_FAST)
    BINARY(MOD, CEL_MOD, NO_FAST)
    BINARY(EQ, CEL_EQ, INT_EQ)
    BINARY(NE, CEL_NE, INT_NE)
    BINARY(LT, CEL_LT, INT_LT)
    BINARY(LE, CEL_LE, INT_LE)
    BINARY(GT, CEL_GT, INT_GT)
    BINARY(GE, CEL_GE, INT_GE)
    CASE(IN) in_tagged(p, ctx, &R[a], &R[b], &R[c]); NEXT();
    CASE(INDEX) {
      if (R[b].kind == CV_ERROR) R[a] = R[b];
      else if (R[c].kind == CV_ERROR) R[a] = R[c];
      else index_fast(ctx, &R[a], &R[b], &R[c]);
      NEXT();
    }
#undef BINARY
    CASE(EQK) compare_k(ctx, CEL_EQ, &R[a], &R[b], &K[c]); NEXT();
    CASE(NEK) compare_k(ctx, CEL_NE, &R[a], &R[b], &K[c]); NEXT();
    CASE(LTK) compare_k(ctx, CEL_LT, &R[a], &R[b], &K[c]); NEXT();
    CASE(LEK) compare_k(ctx, CEL_LE, &R[a], &R[b], &K[c]); NEXT();
    CASE(GTK) compare_k(ctx, CEL_GT, &R[a], &R[b], &K[c]); NEXT();
    CASE(GEK) compare_k(ctx, CEL_GE, &R[a], &R[b], &K[c]); NEXT();
    CASE(INK) in_k(p, ctx, &R[a], &R[b], c); NEXT();
    CASE(INDEXK) {
      /* A constant map with string keys has a hash set over its keys. */
      const value *key = &R[c];
      if (K[b].kind == CV_ERROR) R[a] = K[b];
      else if (key->kind == CV_ERROR) R[a] = *key;
      else {
        const value *e = p->sets[b] && K[b].kind == CV_MAP && key->kind == CV_STRING
                             ? strset_find(p->sets[b], key->s, key->n)
                             : NULL;
        if (e) R[a] = e[1];
        else index_fast(ctx, &R[a], &K[b], key);
      }
      NEXT();
    }
    CASE(SELECT) {
      if (R[b].kind == CV_ERROR) R[a] = R[b];
      else cel_select(ctx, &R[a], &R[b], K[c].s, K[c].n);
      NEXT();
    }
    CASE(HASKEY) {
      if (R[b].kind == CV_ERROR) R[a] = R[b];
      else cel_has_field(ctx, &R[a], &R[b], K[c].s, K[c].n);
      NEXT();
    }
    CASE(HAS) R[a] = field_absent(&R[b]) ? V_FALSE : V_TRUE; NEXT();
    CASE(HASOR) R[a] = field_absent(&R[b]) ? R[c] : R[b]; NEXT();
    CASE(MATCHK) match_k(vm, &R[a], &R[b], c); NEXT();
    CASE(CALL) call_builtin(vm, &p->calls[c], &R[a], &R[b]); NEXT();
    CASE(STARTS) starts_with(vm, &R[a], &R[b], &R[c]); NEXT();
    CASE(STARTSANY) starts_any(vm, &R[a], &R[b], &K[c]); NEXT();
    CASE(ANYINK) any_in_k(p, ctx, &R[a], &R[b], c); NEXT();
    CASE(XCALL) extern_call(vm, c, (uint32_t)(ip - 1 - code), &R[a], &R[b]); NEXT();
    CASE(LIST) build_list(vm, &R[a], &R[b], c); NEXT();
    CASE(MAP) build_map(vm, &R[a], &R[b], c); NEXT();
    CASE(ANDSC) {
      if (is_false(&R[b])) {
        R[a] = V_FALSE;
        ip += c;
      }
      NEXT();
    }
    CASE(AND) logic_combine(ctx, &R[a], &R[b], &R[c], false); NEXT();
    CASE(ORSC) {
      if (is_true(&R[b])) {
        R[a] = V_TRUE;
        ip += c;
      }
      NEXT();
    }
    CASE(OR) logic_combine(ctx, &R[a], &R[b], &R[c], true); NEXT();
    CASE(TESTBOOL) {
      if (R[b].kind != CV_BOOL) {
        if (R[b].kind == CV_ERROR) R[a] = R[b];
        else R[a] = cv_error(ctx, "no matching overload: condition is %s, not bool", cv_kind_name((cv_kind)R[b].kind));
        ip += c;
      }
      NEXT();
    }
    CASE(JFALSE) {
      if (is_false(&R[a])) ip += c;
      NEXT();
    }
    CASE(JMP) ip += c; NEXT();
    CASE(LETCHK) {
      if (R[a].kind != CV_UNSET) ip += c;
      NEXT();
    }
    CASE(ITER) {
      const value *range = &R[b];
      if (range->kind == CV_LIST || range->kind == CV_MAP) {
        value it = {0};
        it.kind = CV_ITER;
        it.flag = range->kind == CV_MAP; /* maps step over key, value pairs */
        it.items = range->items;
        it.n = range->n;
        R[a] = it;
      } else {
        not_iterable(ctx, &R[a], range);
        ip += c;
      }
      NEXT();
    }
    CASE(ITERNEXT) {
      value *it = &R[b];
      if (it->kind != CV_ITER || it->n == 0) {
        ip += c;
      } else {
        R[a] = it->items[0];
        it->items += it->flag ? 2 : 1;
        it->n--;
      }
      NEXT();
    }
    CASE(LOOP) ip -= c + 1; NEXT();
    CASE(ITERERR) {
      R[a] = R[b].kind == CV_ERROR ? R[b] : cv_error(ctx, "not an iterable value");
      NEXT();
    }
    CASE(ALLSTEP) {
      if (is_false(&R[b])) {
        R[a] = V_FALSE;
        ip += c;
      } else if (!is_true(&R[b]) && R[a].kind != CV_ERROR) {
        R[a] = R[b].kind == CV_ERROR ? R[b] : cv_error(ctx, "no matching overload: predicate is %s, not bool", cv_kind_name((cv_kind)R[b].kind));
      }
      NEXT();
    }
    CASE(ANYSTEP) {
      if (any_step(ctx, &R[a], &R[b])) ip += c;
      NEXT();
    }
    CASE(ONESTEP) {
      if (is_true(&R[b])) {
        if (R[a].kind == CV_INT) R[a].i++;
      } else if (!is_false(&R[b])) {
        R[a] = R[b].kind == CV_ERROR ? R[b] : cv_error(ctx, "no matching overload: predicate is %s, not bool", cv_kind_name((cv_kind)R[b].kind));
        ip += c;
      }
      NEXT();
    }
    CASE(ONEEND) {
      if (R[b].kind == CV_ERROR) R[a] = R[b];
      else R[a] = (R[b].kind == CV_INT && R[b].i == 1) ? V_TRUE : V_FALSE;
      NEXT();
    }
    CASE(FILTER) {
      if (is_true(&R[b])) NEXT();
      if (!is_false(&R[b]) && R[a].kind != CV_ERROR)
        R[a] = R[b].kind == CV_ERROR ? R[b] : cv_error(ctx, "no matching overload: predicate is %s, not bool", cv_kind_name((cv_kind)R[b].kind));
      ip += c;
      NEXT();
    }
    CASE(APPEND) {
      if (R[a].kind == CV_ERROR) NEXT();
      if (R[b].kind == CV_ERROR) R[a] = R[b];
      else if (R[a].kind != CV_LIST) R[a] = cv_error(ctx, "not a list");
      else list_append(vm, &R[a], &R[b]);
      NEXT();
    }
#define CONJUNCT(v)                                                              \
  do {                                                                           \
    TRACE(v);                                                                    \
    if ((v)->kind == CV_BOOL) {                                                  \
      if (!(v)->b) {                                                             \
        vm->pending.kind = CV_NULL;                                              \
        ip += c;                                                                 \
      }                                                                          \
    } else {                                                                     \
      conjunct_error(vm, (v));                                                   \
    }                                                                            \
  } while (0)
/* A conjunct known to be a bool. */
#define CONJUNCT_BOOL(truth)                                                     \
  do {                                                                           \
    bool t_ = (truth);                                                           \
    TRACE(t_ ? &V_TRUE : &V_FALSE);                                              \
    if (!t_) {                                                                   \
      vm->pending.kind = CV_NULL;                                                \
      ip += c;                                                                   \
    }                                                                            \
  } while (0)
    CASE(CJFALSE) CONJUNCT(&R[a]); NEXT();
    CASE(CJABSENT) {
      bool absent = field_absent(&R[a]);
      TRACE(absent ? &V_FALSE : &V_TRUE);
      if (absent) {
        vm->pending.kind = CV_NULL;
        ip += c;
      }
      NEXT();
    }
    CASE(CJEQK) {
      if (R[a].kind == CV_STRING && K[b].kind == CV_STRING) { /* compare_k's answer, unboxed */
        CONJUNCT_BOOL(R[a].n == K[b].n && str_same(R[a].s, K[b].s, R[a].n));
        NEXT();
      }
      value t;
      compare_k(ctx, CEL_EQ, &t, &R[a], &K[b]);
      CONJUNCT(&t);
      NEXT();
    }
    CASE(CJNEK) {
      if (R[a].kind == CV_STRING && K[b].kind == CV_STRING) {
        CONJUNCT_BOOL(R[a].n != K[b].n || !str_same(R[a].s, K[b].s, R[a].n));
        NEXT();
      }
      value t;
      compare_k(ctx, CEL_NE, &t, &R[a], &K[b]);
      CONJUNCT(&t);
      NEXT();
    }
    CASE(CJINK) {
      if (p->sets[b] && R[a].kind == CV_STRING) {
        CONJUNCT_BOOL(strset_has(p->sets[b], R[a].s, R[a].n));
        NEXT();
      }
      value t;
      in_list(ctx, &t, &R[a], &K[b]);
      CONJUNCT(&t);
      NEXT();
    }
    /* Made at load in p->fast_code (clb.c: thread_conjuncts) from a CJINK
     * on a constant map and the INDEXK on the same key and map that
     * follows it: when the key is there, its value goes to the INDEXK's
     * register and the INDEXK is passed over. */
    CASE(CJINKIDX) {
      if (R[a].kind == CV_STRING) {
        const value *e = strset_find(p->sets[b], R[a].s, R[a].n);
        CONJUNCT_BOOL(e != NULL);
        if (e) R[INSTR_A(*ip++)] = e[1];
        NEXT();
      }
      value t;
      in_list(ctx, &t, &R[a], &K[b]);
      CONJUNCT(&t);
      NEXT();
    }
    /* !x and !(x in K): NOT's semantics, then the conjunct's. */
    CASE(CJNOT) {
      if (R[a].kind == CV_BOOL) {
        CONJUNCT_BOOL(!R[a].b);
        NEXT();
      }
      value t;
      cel_not(ctx, &t, &R[a]);
      CONJUNCT(&t);
      NEXT();
    }
    CASE(CJNINK) {
      if (p->sets[b] && R[a].kind == CV_STRING) {
        CONJUNCT_BOOL(!strset_has(p->sets[b], R[a].s, R[a].n));
        NEXT();
      }
      value in, t;
      in_list(ctx, &in, &R[a], &K[b]);
      if (in.kind == CV_BOOL) t = in.b ? V_FALSE : V_TRUE;
      else cel_not(ctx, &t, &in);
      CONJUNCT(&t);
      NEXT();
    }
/* Two ints (the usual case: quotas, limits) compare unboxed. */
#define CJ_COMPARE_K(NAME, OP, INT_OP)                                           \
  CASE(NAME) {                                                                   \
    if (R[a].kind == CV_INT && K[b].kind == CV_INT) {                            \
      CONJUNCT_BOOL(R[a].i INT_OP K[b].i);                                       \
      NEXT();                                                                    \
    }                                                                            \
    value t;                                                                     \
    compare_k(ctx, OP, &t, &R[a], &K[b]);                                        \
    CONJUNCT(&t);                                                                \
    NEXT();                                                                      \
  }
    CJ_COMPARE_K(CJLTK, CEL_LT, <)
    CJ_COMPARE_K(CJLEK, CEL_LE, <=)
    CJ_COMPARE_K(CJGTK, CEL_GT, >)
    CJ_COMPARE_K(CJGEK, CEL_GE, >=)
#undef CJ_COMPARE_K
#define CJ_COMPARE(NAME, OP, INT_OP)                                             \
  CASE(NAME) {                                                                   \
    if (R[a].kind == CV_INT && R[b].kind == CV_INT) {                            \
      CONJUNCT_BOOL(R[a].i INT_OP R[b].i);                                       \
      NEXT();                                                                    \
    }                                                                            \
    value t;                                                                     \
    compare_rr(ctx, OP, &t, &R[a], &R[b]);                                       \
    CONJUNCT(&t);                                                                \
    NEXT();                                                                      \
  }
    CJ_COMPARE(CJEQ, CEL_EQ, ==)
    CJ_COMPARE(CJNE, CEL_NE, !=)
    CJ_COMPARE(CJLT, CEL_LT, <)
    CJ_COMPARE(CJLE, CEL_LE, <=)
    CJ_COMPARE(CJGT, CEL_GT, >)
    CJ_COMPARE(CJGE, CEL_GE, >=)
#undef CJ_COMPARE
    CASE(CJIN) {
      value t;
      in_tagged(p, ctx, &t, &R[a], &R[b]);
      CONJUNCT(&t);
      NEXT();
    }
#undef CONJUNCT_BOOL
#undef CONJUNCT
    CASE(RCOND) {
      TRACE(vm->pending.kind == CV_ERROR ? &vm->pending : &V_TRUE);
      if (vm->pending.kind == CV_ERROR) {
        value err = vm->pending;
        vm->pending.kind = CV_NULL;
        rule_fails(vm, b, &err, "condition");
        if (vm->stop) goto halt;
        ip += c;
      }
      NEXT();
    }
    CASE(RWHEN) {
      TRACE(&R[a]);
      if (!is_true(&R[a])) {
        if (!is_false(&R[a])) rule_fails(vm, b, &R[a], "condition");
        if (vm->stop) goto halt;
        ip += c;
      }
      NEXT();
    }
    CASE(RUNLESS) {
      TRACE(&R[a]);
      if (!is_false(&R[a])) {
        if (!is_true(&R[a])) rule_fails(vm, b, &R[a], "condition");
        if (vm->stop) goto halt;
        ip += c;
      }
      NEXT();
    }
    CASE(RRETRY) {
      TRACE(&R[a]);
      if (R[a].kind == CV_DURATION && R[a].i > 0) {
        vm->pending_retry_ns = R[a].i;
      } else {
        if (R[a].kind == CV_DURATION)
          rule_fails(vm, b, &(value){.kind = CV_ERROR, .s = "retry_after must be a positive duration", .n = 39}, "retry_after");
        else
          rule_fails(vm, b, &R[a], "retry_after");
        if (vm->stop) goto halt;
        ip += c;
      }
      NEXT();
    }
    CASE(RSUSPEND) {
      const value *key = &R[a], *dur = &R[a + 1];
      TRACE(key);
      const value *bad = key->kind == CV_ERROR ? key : (dur->kind != CV_DURATION || dur->i <= 0) ? dur : NULL;
      if (bad) {
        if (bad->kind == CV_DURATION)
          rule_fails(vm, b, &(value){.kind = CV_ERROR, .s = "suspension must be a positive duration", .n = 38}, "suspend for");
        else
          rule_fails(vm, b, bad, "suspend for");
        if (vm->stop) goto halt;
        ip += c;
      } else {
        vm->pending_susp_ns = dur->i;
      }
      NEXT();
    }
    CASE(RMATCH) {
      TRACE(&V_TRUE);
      rule_matches(vm, b);
      NEXT();
    }
    CASE(OBLIG) add_obligation(vm, &p->obligs[b], &R[a]); NEXT();
    CASE(OBLIGK) record_obligation(vm, &p->obligs[b], K[c].s); NEXT();
    CASE(STATE) {
      if (!vm->state_done && state_point(vm)) goto halt; /* a suspension or the store decided */
      NEXT();
    }
    CASE(HALT) goto halt;
    CASE(RET) {
      if (result) *result = R[a];
      return;
    }
#ifndef VM_COMPUTED_GOTO
  default:
    return; /* unreachable: the verifier admits known opcodes only */
#endif
  }
halt:
  if (result) *result = cv_null();
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
