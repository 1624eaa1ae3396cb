/*
 * state.c - counters and suspensions around one evaluation (SPEC 5.2, 5.3).
 *
 *   state_begin()   before the rules: computes every counter's key and
 *                   amount and every suspend rule's key (value blocks of
 *                   the program), asks the store in one call, puts each
 *                   reading in its counter's register, and decides at once
 *                   when a suspension holds or the store is down under
 *                   `on_store_error deny`.
 *   state_commit()  after the decision: the `on` counters whose effect
 *                   decided, and the suspension a suspend rule decided.
 *
 * Keys and distinct values are compared by their string() form.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "vm.h"

/* The request's time in ns, clamped to what int64 holds (years 1677-2262). */
static int64_t request_time_ns(const clause_vm *vm) {
  const clause_program *p = vm->p;
  value t = p->clock_field != PROG_NONE && vm->regs[p->clock_field].kind == CV_TIMESTAMP
                ? vm->regs[p->clock_field]
                : vm_wall_clock();
  int64_t ns;
  if (!__builtin_mul_overflow(t.i, (int64_t)1000000000, &ns) && !__builtin_add_overflow(ns, (int64_t)t.n, &ns))
    return ns; /* the usual case, in 64 bits */
  __int128 wide = (__int128)t.i * 1000000000 + t.n;
  return wide > INT64_MAX ? INT64_MAX : wide < INT64_MIN ? INT64_MIN : (int64_t)wide;
}

/* Lists an error of a counter (rule NULL) or a suspend key (its rule). The
 * message starts with the evaluation error, as SPEC 5.2 wants, and says
 * where it happened. */
__attribute__((cold)) static void state_error(clause_vm *vm, const char *rule, const value *err, const char *where,
                        const char *name) {
  char msg[512];
  int n = snprintf(msg, sizeof msg, "%.*s (%s%s)", (int)err->n, err->s, where, name);
  vm_add_error(vm, rule, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
}

/* A value block's value; `reg` is the register the block only returns
 * (prog_counter.key_reg), read without entering the interpreter. */
static inline value block_value(clause_vm *vm, uint32_t block, uint32_t reg) {
  if (reg != PROG_NONE) return vm->regs[reg];
  value v;
  vm_run_block(vm, block, &v);
  return v;
}

/* A value block's value in its string() form (an error value on
 * failure): read in place when the block only returns a register holding
 * a string (a counter keyed by a field), else made in *tmp. */
static inline const value *block_string(clause_vm *vm, uint32_t block, uint32_t reg, value *tmp) {
  if (reg != PROG_NONE && vm->regs[reg].kind == CV_STRING) return &vm->regs[reg];
  *tmp = block_value(vm, block, reg);
  if (tmp->kind != CV_ERROR && tmp->kind != CV_STRING) {
    value v = *tmp;
    cel_to_string(&vm->ctx, tmp, &v);
  }
  return tmp;
}

static void store_notice(void *ctx, const char *msg, size_t n) {
  vm_add_error(ctx, NULL, msg, n);
}

/* Notices go to the decision's errors; the message is written on failure
 * only, so it is not zeroed. */
static void report_init(store_report *rep, clause_vm *vm) {
  rep->notice = store_notice;
  rep->notice_ctx = vm;
  rep->message[0] = '\0';
}

/* Lists `state store unavailable: WHY`, an error of no rule. */
__attribute__((cold)) static void list_store_error(clause_vm *vm, const char *why) {
  char msg[400];
  int n = snprintf(msg, sizeof msg, "state store unavailable: %s", why);
  vm_add_error(vm, NULL, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
}

/* A store failure, under on_store_error. Returns true when it decides. */
__attribute__((cold)) static bool store_failed(clause_vm *vm, const char *why) {
  list_store_error(vm, why);
  vm->state.store_down = true;
  if (vm->p->on_store_error_allow) return false; /* counters read 0, no suspension */
  vm->best = RE_DENY;
  vm->store_reason = vm->errors[vm->nerrors - 1].message;
  return true;
}

bool state_begin(clause_vm *vm) {
  const clause_program *p = vm->p;
  vm_state *st = &vm->state;
  store_report rep;
  report_init(&rep, vm);
  st->now_ns = request_time_ns(vm);
  st->store_down = false;

  /* Keys and amounts. A counter whose key fails is left out of the store
   * call; one whose amount fails is read but not added to. */
  size_t nops = 0;
  for (uint32_t i = 0; i < p->ncounters; i++) {
    const prog_counter *c = &p->counters[i];
    value tmp;
    const value *key = block_string(vm, c->key_block, c->key_reg, &tmp);
    if (key->kind == CV_ERROR) {
      state_error(vm, NULL, key, "the key of counter ", c->name);
      vm->regs[p->counter_reg + i] = *key;
      continue;
    }
    store_counter_op *op = &st->ops[nops];
    if (st->op_counter[nops] != i) { /* the first request, or a key error moved ops up */
      *op = (store_counter_op){.id = c->store_id, .window_ns = c->window_ns, .amount = 1,
                               .mode = c->mode == CM_DISTINCT ? STORE_DISTINCT : STORE_SUM};
      st->op_counter[nops] = i;
    }
    op->key = key->s;
    op->key_len = key->n;
    bool arg_ok = true;
    if (c->mode == CM_ADD) {
      value amount = block_value(vm, c->arg_block, c->arg_reg);
      if (amount.kind == CV_INT && amount.i < 0)
        amount = cv_static_error("a counter's add must not be negative", 36, CV_ERR_GENERIC);
      if (amount.kind != CV_ERROR && amount.kind != CV_INT)
        amount = cv_static_error("no matching overload: a counter's add must be int", 49, CV_ERR_GENERIC);
      if (amount.kind == CV_ERROR) {
        state_error(vm, NULL, &amount, "the amount of counter ", c->name);
        vm->regs[p->counter_reg + i] = amount;
        arg_ok = false;
      } else {
        op->amount = amount.i;
      }
    } else if (c->mode == CM_DISTINCT) {
      value member_tmp; /* not tmp: the key may live there */
      const value *member = block_string(vm, c->arg_block, c->arg_reg, &member_tmp);
      if (member->kind == CV_ERROR) {
        state_error(vm, NULL, member, "the distinct value of counter ", c->name);
        vm->regs[p->counter_reg + i] = *member;
        arg_ok = false;
      } else {
        op->member = member->s;
        op->member_len = member->n;
      }
    }
    /* Without `on`, the request counts now and the reading includes it;
     * a failed amount makes that reading an error (set above). */
    op->add = c->on_mask == 0 && arg_ok;
    st->arg_ok[nops] = arg_ok;
    nops++;
  }
  st->nops = nops;

  size_t nsusp = 0;
  for (uint32_t i = 0; i < p->nsuspend; i++) {
    uint32_t r = p->suspend_rules[i];
    value tmp;
    const value *key = block_string(vm, p->rules[r].suspend_key_block, p->rules[r].suspend_key_reg, &tmp);
    if (key->kind == CV_ERROR) { /* the check of this rule is skipped */
      state_error(vm, p->rules[r].id, key, "the suspension key", "");
      continue;
    }
    st->susp[nsusp] = (store_suspend_op){.rule = p->rules[r].id, .key = key->s, .key_len = key->n};
    st->susp_rule[nsusp++] = r;
  }
  st->nsusp = nsusp;

  bool down = false;
  if (!st->session) {
    char err[256] = "no state store";
    if (p->store) st->session = store_open_session(p->store, err, sizeof err);
    if (!st->session) {
      if (store_failed(vm, err)) return true;
      down = true;
    }
  }
  if (!down && (nops || nsusp) &&
      store_begin(st->session, st->now_ns, st->ops, nops, st->susp, nsusp, &rep) != 0) {
    if (store_failed(vm, rep.message)) return true;
    down = true;
  }
  if (down) { /* on_store_error allow: counters read 0, no suspension holds */
    for (size_t k = 0; k < nops; k++) st->ops[k].value = 0;
    nsusp = 0;
  }

  for (size_t k = 0; k < nops; k++) {
    uint32_t i = st->op_counter[k];
    const prog_counter *c = &p->counters[i];
    if (st->arg_ok[k] || c->on_mask) vm->regs[p->counter_reg + i] = cv_int(st->ops[k].value);
  }
  for (size_t k = 0; k < nsusp; k++) {
    if (!st->susp[k].active) continue;
    /* Suspended: this rule decides at once, before any other rule. */
    uint32_t r = st->susp_rule[k];
    vm->decider = r;
    vm->best = RE_SUSPEND;
    vm->by_suspension = true;
    if (vm->trace) vm->trace->in_force = r;
    if (vm->nmatched < p->nrules) vm->matched[vm->nmatched++] = r;
    return true;
  }
  return false;
}

/* Puts errors[from, n) before errors[0, from), keeping both in order. */
static void errors_to_front(clause_vm *vm, size_t from) {
  clause_eval_error *e = vm->errors, t;
  size_t n = vm->nerrors;
  for (size_t i = 0, j = from - 1; from && i < j; i++, j--) t = e[i], e[i] = e[j], e[j] = t;
  for (size_t i = from, j = n - 1; n > from && i < j; i++, j--) t = e[i], e[i] = e[j], e[j] = t;
  for (size_t i = 0, j = n - 1; n && i < j; i++, j--) t = e[i], e[i] = e[j], e[j] = t;
}

bool state_point(clause_vm *vm) {
  size_t before = vm->nerrors; /* the errors of the rules that ran already */
  vm->state_done = true;
  bool decided = state_begin(vm);
  /* The state's errors come first, as when it is asked before the rules. */
  size_t added = vm->nerrors - before;
  if (before && added) errors_to_front(vm, before);
  if (!decided) return false;
  /* A suspension in force, or the store down under on_store_error deny,
   * decides before any rule: nothing the rules did so far counts. */
  vm->nerrors = added;
  vm->nflags = vm->nobligs_out = 0;
  if (vm->by_suspension) {
    vm->matched[0] = vm->decider; /* state_begin listed it last */
    vm->nmatched = 1;
  } else {
    vm->nmatched = 0;
    vm->decider = PROG_NONE;
  }
  vm->decider_failed = false;
  vm->pending = cv_null();
  vm->pending_retry_ns = vm->decider_retry_ns = -1;
  vm->stop = true;
  return true;
}

void state_prefetch(clause_vm *vm) {
  const clause_program *p = vm->p;
  if (!vm->state.session) return; /* opened by the first state_begin */
  /* Only a key that is a field: nothing is evaluated twice. */
  uint32_t reg = p->ncounters ? p->counters[0].key_reg : p->rules[p->suspend_rules[0]].suspend_key_reg;
  if (reg == PROG_NONE) return;
  const value *key = &vm->regs[reg];
  if (key->kind == CV_STRING) store_prefetch(vm->state.session, key->s, key->n);
}

void state_commit(clause_vm *vm) {
  const clause_program *p = vm->p;
  vm_state *st = &vm->state;
  if (st->store_down || !st->session) return;
  static const uint8_t effect_bit[] = {
      [CLAUSE_ALLOW] = 1u << RE_ALLOW, [CLAUSE_THROTTLE] = 1u << RE_THROTTLE,
      [CLAUSE_DENY] = 1u << RE_DENY,   [CLAUSE_SUSPEND] = 1u << RE_SUSPEND};
  uint8_t bit = effect_bit[vm->dec.effect];
  bool suspends = vm->decider != PROG_NONE && vm->best == RE_SUSPEND && !vm->by_suspension && !vm->decider_failed;
  if (!(p->on_masks & bit) && !suspends) return; /* the usual allow: nothing to add */
  size_t nadd = 0;
  for (size_t k = 0; k < st->nops; k++) {
    const prog_counter *c = &p->counters[st->op_counter[k]];
    st->ops[k].add = (c->on_mask & bit) && st->arg_ok[k];
    nadd += st->ops[k].add;
  }
  /* A suspend rule that decided (not one already in force, not one that
   * decided through on_error deny) suspends its key from now on. The key
   * is the one state_begin looked up for that rule: the same expression on
   * the same request (the rule could not have matched had it failed). */
  size_t nsusp = 0;
  if (suspends) {
    for (size_t k = 0; k < st->nsusp && !nsusp; k++) {
      if (st->susp_rule[k] != vm->decider) continue;
      st->susp[0] = st->susp[k];
      st->susp[0].until_ns = st->now_ns > INT64_MAX - st->suspend_ns ? INT64_MAX : st->now_ns + st->suspend_ns;
      nsusp = 1;
    }
  }
  if (!nadd && !nsusp) return;
  store_report rep;
  report_init(&rep, vm);
  if (store_commit(st->session, st->now_ns, st->ops, st->nops, st->susp, nsusp, &rep) != 0)
    list_store_error(vm, rep.message);
}
