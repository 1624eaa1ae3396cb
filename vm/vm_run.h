/*
 * vm_run.h - the body of the dispatch loop, included twice by vm.c: once
 * to decide (VM_RUN_TRACING 0: no trace check on any conjunct) and once to
 * explain (VM_RUN_TRACING 1: every conjunct recorded). One loop, two
 * builds of it, so that deciding pays nothing for --explain.
 *
 * The includer defines VM_RUN_NAME and VM_RUN_TRACING, and the helpers
 * and macros the handlers use (vm.c).
 */
static void VM_RUN_NAME(clause_vm *vm, uint32_t block, value *result) {
  const clause_program *p = vm->p;
  const bool tracing = VM_RUN_TRACING;
  /* Explaining runs the code as loaded; deciding, the same code with its
   * conjunct jumps threaded (clb.c: build_fast_code). */
  const instr *code = tracing ? p->code : p->fast_code;
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
    if (LIKELY(R[b].kind == CV_INT && R[c].kind == CV_INT) && FAST(R[b].i, R[c].i, &R[a])) \
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
      if (UNLIKELY(K[b].kind == CV_ERROR)) R[a] = K[b];
      else if (UNLIKELY(key->kind == CV_ERROR)) R[a] = *key;
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
      if (LIKELY(R[a].kind == CV_STRING && K[b].kind == CV_STRING)) { /* compare_k's answer, unboxed */
        CONJUNCT_BOOL(R[a].n == K[b].n && str_same(R[a].s, K[b].s, R[a].n));
        NEXT();
      }
      value t;
      compare_k(ctx, CEL_EQ, &t, &R[a], &K[b]);
      CONJUNCT(&t);
      NEXT();
    }
    CASE(CJNEK) {
      if (LIKELY(R[a].kind == CV_STRING && K[b].kind == CV_STRING)) {
        CONJUNCT_BOOL(R[a].n != K[b].n || !str_same(R[a].s, K[b].s, R[a].n));
        NEXT();
      }
      value t;
      compare_k(ctx, CEL_NE, &t, &R[a], &K[b]);
      CONJUNCT(&t);
      NEXT();
    }
    CASE(CJINK) {
      if (LIKELY(p->sets[b] && R[a].kind == CV_STRING)) {
        CONJUNCT_BOOL(strset_has(p->sets[b], R[a].s, R[a].n));
        NEXT();
      }
      value t;
      in_list(ctx, &t, &R[a], &K[b]);
      CONJUNCT(&t);
      NEXT();
    }
    /* Made at load in p->fast_code (clb.c: build_fast_code) from a CJINK
     * on a constant map and the INDEXK on the same key and map that
     * follows it: when the key is there, its value goes to the INDEXK's
     * register and the INDEXK is passed over. */
    CASE(CJINKIDX) {
      if (LIKELY(R[a].kind == CV_STRING)) {
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
    /* Made at load in p->fast_code from `has(x) && x in K` (CJABSENT,
     * then CJINK on the same x with the same jump): a string is tested
     * against the set, the CJINK passed over; an absent x jumps; anything
     * else goes on to the CJINK. */
    CASE(CJHASINK) {
      if (R[a].kind == CV_STRING) { /* optional fields are often absent: no hint */
        bool in = strset_has(p->sets[b], R[a].s, R[a].n);
        CONJUNCT_BOOL(in);
        ip += in;
        NEXT();
      }
      if (field_absent(&R[a])) {
        vm->pending.kind = CV_NULL;
        ip += c;
      }
      NEXT();
    }
    /* !x and !(x in K): NOT's semantics, then the conjunct's. */
    CASE(CJNOT) {
      if (LIKELY(R[a].kind == CV_BOOL)) {
        CONJUNCT_BOOL(!R[a].b);
        NEXT();
      }
      value t;
      cel_not(ctx, &t, &R[a]);
      CONJUNCT(&t);
      NEXT();
    }
    CASE(CJNINK) {
      if (LIKELY(p->sets[b] && R[a].kind == CV_STRING)) {
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
    if (LIKELY(R[a].kind == CV_INT && K[b].kind == CV_INT)) {                    \
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
    if (LIKELY(R[a].kind == CV_INT && R[b].kind == CV_INT)) {                    \
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
