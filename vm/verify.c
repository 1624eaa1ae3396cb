/*
 * verify.c - the bytecode verifier (SPEC sections 7 and 9), run on every
 * program before anything can evaluate it, as libpcap's bpf_validate.
 *
 * It proves what the VM relies on instead of checking at run time:
 *   - tables: settings in range, fields/registers/lets/rules/obligations
 *     consistent, blocks in order;
 *   - every opcode known, every operand in range for its kind (opcodes.h);
 *     inputs are never written;
 *   - jumps stay inside their block and go forward; each block ends in its
 *     terminator (HALT for the rules, RET for value blocks), so control
 *     never runs off the code;
 *   - loops: LOOP returns to an ITERNEXT, loops nest properly, and nothing
 *     inside a loop re-initialises its iterator, so every loop runs at most
 *     once per element of a finite list: every evaluation terminates;
 *   - externs: names present, at most CLAUSE_MAX_PARAMS parameters, types
 *     from the closed set of SPEC section 6; a call passes exactly its
 *     extern's arity (the count comes from the table, never the code);
 *   - operand types: string operands of SELECT/HASKEY/MATCHK are string
 *     constants; the VM checks that an ITERNEXT operand holds an iterator
 *     (registers are reused, so a register may hold an iterator in one
 *     expression and a value in the next).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../include/clause.h"
#include "program.h"

const char *const verify_check_names[VC__COUNT] = {
    "ok", "tables", "opcode", "register", "constant", "jump", "loop", "type", "block end",
};


typedef struct vstate {
  const clause_program *p;
  char *err;
  size_t errcap;
  verify_check why;
} vstate;

static int reject(vstate *v, verify_check why, const char *fmt, ...) {
  if (v->why != VC_OK) return -1;
  v->why = why;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(v->err, v->errcap, fmt, ap);
  va_end(ap);
  return -1;
}

static int check_tables(vstate *v) {
  const clause_program *p = v->p;
  if (p->kind > PROG_EXPR) return reject(v, VC_TABLES, "bad bytecode: unknown program kind %u", p->kind);
  if (p->default_effect != RE_ALLOW && p->default_effect != RE_DENY)
    return reject(v, VC_TABLES, "bad bytecode: default effect must be allow or deny");
  if (p->first_match > 1 || p->on_error_deny > 1 || p->on_store_error_allow > 1)
    return reject(v, VC_TABLES, "bad bytecode: policy setting out of range");
  if (p->nregs > INSTR_MAX_OPERAND + 1 || p->nregs < p->nfields)
    return reject(v, VC_TABLES, "bad bytecode: %u registers for %u fields", p->nregs, p->nfields);
  for (uint32_t i = 0; i < p->nfields; i++) {
    if (p->fields[i].optional > 1 || p->fields[i].clock > 1)
      return reject(v, VC_TABLES, "bad bytecode: field %u flags out of range", i);
    if (p->fields[i].clock != (i == p->clock_field))
      return reject(v, VC_TABLES, "bad bytecode: field %u clock flag disagrees with the clock field", i);
  }
  if (p->clock_field != PROG_NONE &&
      (p->clock_field >= p->nfields || p->fields[p->clock_field].type->kind != CV_TIMESTAMP))
    return reject(v, VC_TABLES, "bad bytecode: the clock field must be a timestamp field");
  if (p->now_reg != PROG_NONE && (p->now_reg < p->nfields || p->now_reg >= p->nregs))
    return reject(v, VC_TABLES, "bad bytecode: `now` register %u out of range", p->now_reg);
  for (uint32_t i = 0; i < p->nlets; i++)
    if (p->let_regs[i] < p->nfields || p->let_regs[i] >= p->nregs || p->let_regs[i] == p->now_reg)
      return reject(v, VC_TABLES, "bad bytecode: let register %u out of range", p->let_regs[i]);
  if (p->kind == PROG_EXPR && (p->nrules || p->nobligs))
    return reject(v, VC_TABLES, "bad bytecode: an expression program has no rules");
  for (uint32_t i = 0; i < p->nrules; i++) {
    const prog_rule *r = &p->rules[i];
    if (r->effect >= RE__COUNT) return reject(v, VC_TABLES, "bad bytecode: rule %u has an unknown effect", i);
    if (r->reason_block != PROG_NONE && (r->reason_block == 0 || r->reason_block >= p->nblocks))
      return reject(v, VC_TABLES, "bad bytecode: rule %u reason block out of range", i);
    if (r->suspend_key_block != PROG_NONE &&
        (r->effect != RE_SUSPEND || r->suspend_key_block == 0 || r->suspend_key_block >= p->nblocks))
      return reject(v, VC_TABLES, "bad bytecode: rule %u suspend key block out of range", i);
  }
  /* Counters: value blocks (every block but the first is one), and their
   * registers, which only the VM writes (use_reg refuses code that does). */
  if (p->ncounters) {
    uint64_t end = (uint64_t)p->counter_reg + p->ncounters;
    if (p->kind != PROG_POLICY || p->counter_reg < p->nfields || end > p->nregs ||
        (p->now_reg != PROG_NONE && p->now_reg >= p->counter_reg && p->now_reg < end))
      return reject(v, VC_TABLES, "bad bytecode: counter registers out of range");
    for (uint32_t i = 0; i < p->nlets; i++)
      if (p->let_regs[i] >= p->counter_reg && p->let_regs[i] < end)
        return reject(v, VC_TABLES, "bad bytecode: let register %u is a counter's", p->let_regs[i]);
  }
  for (uint32_t i = 0; i < p->ncounters; i++) {
    const prog_counter *c = &p->counters[i];
    bool wants_arg = c->mode != CM_COUNT;
    if (c->window_ns < 60 || c->mode > CM_DISTINCT || /* 60 buckets of at least 1 ns */
        (c->on_mask & ~((1u << RE_ALLOW) | (1u << RE_THROTTLE) | (1u << RE_DENY) | (1u << RE_SUSPEND))))
      return reject(v, VC_TABLES, "bad bytecode: counter %u has a bad window, kind or `on` list", i);
    if (c->key_block == 0 || c->key_block >= p->nblocks ||
        (wants_arg ? (c->arg_block == 0 || c->arg_block >= p->nblocks) : c->arg_block != PROG_NONE))
      return reject(v, VC_TABLES, "bad bytecode: counter %u block out of range", i);
  }
  for (uint32_t i = 0; i < p->nobligs; i++)
    if (p->obligs[i].rule >= p->nrules || p->obligs[i].nargs > p->nregs)
      return reject(v, VC_TABLES, "bad bytecode: obligation %u out of range", i);
  /* Externs: only their declarations are checked here; which library may
   * be opened is decided when the program is bound (extern.c), against the
   * allow-list of the options it is loaded with. */
  for (uint32_t i = 0; i < p->nexterns; i++) {
    const prog_extern *x = &p->externs[i];
    if (!x->name || !x->name[0]) return reject(v, VC_TABLES, "bad bytecode: extern %u has no name", i);
    if (x->lib ? !x->lib[0] || !x->symbol || !x->symbol[0] : x->symbol != NULL)
      return reject(v, VC_TABLES, "bad bytecode: extern %u has a bad library or symbol", i);
    if (x->nparams > CLAUSE_MAX_PARAMS)
      return reject(v, VC_TABLES, "bad bytecode: extern %u has %u parameters", i, x->nparams);
    if (!prog_extern_type_ok(x->ret))
      return reject(v, VC_TABLES, "bad bytecode: extern %u returns an unknown type", i);
    for (uint32_t k = 0; k < x->nparams; k++)
      if (!prog_extern_type_ok(x->params[k]))
        return reject(v, VC_TABLES, "bad bytecode: extern %u parameter %u has an unknown type", i, k);
  }
  if (p->nblocks == 0 || p->ncode == 0 || p->block_start[0] != 0)
    return reject(v, VC_TABLES, "bad bytecode: no code");
  for (uint32_t i = 1; i < p->nblocks; i++)
    if (p->block_start[i] <= p->block_start[i - 1] || p->block_start[i] >= p->ncode)
      return reject(v, VC_TABLES, "bad bytecode: block %u starts out of order", i);
  return 0;
}

static int use_reg(vstate *v, uint32_t pc, unsigned reg, char kind) {
  const clause_program *p = v->p;
  if (reg >= p->nregs) return reject(v, VC_REGISTER, "bad bytecode at %u: register r%u out of range", pc, reg);
  if ((kind == 'w' || kind == 'm' || kind == 'i') && reg < p->nfields)
    return reject(v, VC_REGISTER, "bad bytecode at %u: writes input register r%u", pc, reg);
  if ((kind == 'w' || kind == 'm' || kind == 'i') && reg == p->now_reg)
    return reject(v, VC_REGISTER, "bad bytecode at %u: writes the `now` register r%u", pc, reg);
  if ((kind == 'w' || kind == 'm' || kind == 'i') && reg >= p->counter_reg &&
      reg - p->counter_reg < p->ncounters)
    return reject(v, VC_REGISTER, "bad bytecode at %u: writes counter register r%u", pc, reg);
  return 0;
}

static int use_reg_range(vstate *v, uint32_t pc, unsigned first, uint64_t count) {
  if (first + count > v->p->nregs)
    return reject(v, VC_REGISTER, "bad bytecode at %u: registers r%u..+%llu out of range", pc, first,
                  (unsigned long long)count);
  for (uint64_t r = first; r < first + count; r++)
    if (use_reg(v, pc, (unsigned)r, 'r')) return -1;
  return 0;
}

static int check_operand(vstate *v, uint32_t pc, uint32_t block_end, char kind, unsigned x) {
  const clause_program *p = v->p;
  switch (kind) {
  case '_':
    if (x) return reject(v, VC_OPCODE, "bad bytecode at %u: unused operand is not zero", pc);
    return 0;
  case 'w': case 'r': case 'm': case 'i':
    return use_reg(v, pc, x, kind);
  case 'k':
    if (x >= p->nconsts) return reject(v, VC_CONSTANT, "bad bytecode at %u: constant k%u out of range", pc, x);
    return 0;
  case 's': case 'x':
    if (x >= p->nconsts) return reject(v, VC_CONSTANT, "bad bytecode at %u: constant k%u out of range", pc, x);
    if (p->consts[x].kind != CV_STRING)
      return reject(v, VC_TYPE, "bad bytecode at %u: constant k%u must be a string", pc, x);
    return 0;
  case 'j':
    if ((uint64_t)pc + 1 + x >= block_end)
      return reject(v, VC_JUMP, "bad bytecode at %u: jump target %llu outside its block", pc,
                    (unsigned long long)pc + 1 + x);
    return 0;
  case 'l':
    return 0; /* checked with the loop structure */
  case 'f':
    if (x >= p->ncalls) return reject(v, VC_CONSTANT, "bad bytecode at %u: call site %u out of range", pc, x);
    return 0;
  case 'e':
    if (x >= p->nexterns) return reject(v, VC_CONSTANT, "bad bytecode at %u: extern %u out of range", pc, x);
    return 0;
  case 'u':
    if (x >= p->nrules) return reject(v, VC_CONSTANT, "bad bytecode at %u: rule %u out of range", pc, x);
    return 0;
  case 'o':
    if (x >= p->nobligs) return reject(v, VC_CONSTANT, "bad bytecode at %u: obligation %u out of range", pc, x);
    return 0;
  case 'n':
    return 0; /* checked with its register range */
  default:
    return reject(v, VC_OPCODE, "bad bytecode at %u: bad operand kind", pc);
  }
}

/* Multi-register operands: calls, lists, maps, obligations, suspensions. */
static int check_ranges(vstate *v, uint32_t pc, opcode op, unsigned a, unsigned b, unsigned c) {
  const clause_program *p = v->p;
  switch (op) {
  case BC_CALL: return use_reg_range(v, pc, b, p->calls[c].nargs);
  case BC_XCALL: return use_reg_range(v, pc, b, p->externs[c].nparams);
  case BC_LIST: return use_reg_range(v, pc, b, c);
  case BC_MAP: return use_reg_range(v, pc, b, 2ull * c);
  case BC_OBLIG: return use_reg_range(v, pc, a, p->obligs[b].nargs);
  case BC_RSUSPEND: return use_reg_range(v, pc, a, 2);
  default: return 0;
  }
}

/* LOOP at `pc` goes back to an ITERNEXT at `head` in the same block; no
 * ITER inside the loop re-initialises its iterator; loops nest. */
static int check_loop(vstate *v, uint32_t pc, uint32_t block_start, unsigned back,
                      uint32_t *heads, uint32_t *tails, uint32_t *nloops) {
  const clause_program *p = v->p;
  if (back > pc - block_start)
    return reject(v, VC_LOOP, "bad bytecode at %u: loop target outside its block", pc);
  uint32_t head = pc - back;
  if (INSTR_OP(p->code[head]) != BC_ITERNEXT)
    return reject(v, VC_LOOP, "bad bytecode at %u: loop does not return to an ITERNEXT", pc);
  /* Nothing in the body may write the loop's iterator: no reset, no
   * second advance, no copy over it. */
  unsigned it = INSTR_B(p->code[head]);
  /* The exhausted iterator must leave the loop, or LOOP would return to
   * an ITERNEXT that no longer advances. */
  if ((uint64_t)head + 1 + INSTR_C(p->code[head]) <= pc)
    return reject(v, VC_LOOP, "bad bytecode at %u: loop exit lands inside the loop", head);
  for (uint32_t q = head + 1; q < pc; q++) {
    instr i = p->code[q];
    const char *kinds = opcode_kinds[INSTR_OP(i)];
    unsigned ops[3] = {INSTR_A(i), INSTR_B(i), INSTR_C(i)};
    for (int k = 0; k < 3; k++)
      if ((kinds[k] == 'w' || kinds[k] == 'm' || kinds[k] == 'i') && ops[k] == it)
        return reject(v, VC_LOOP, "bad bytecode at %u: loop body writes its own iterator r%u", q, it);
  }
  for (uint32_t k = 0; k < *nloops; k++) {
    bool disjoint = tails[k] < head || pc < heads[k];
    bool inner = head <= heads[k] && tails[k] <= pc;
    if (!disjoint && !inner)
      return reject(v, VC_LOOP, "bad bytecode at %u: loops overlap without nesting", pc);
  }
  heads[*nloops] = head;
  tails[*nloops] = pc;
  (*nloops)++;
  return 0;
}

static int check_code(vstate *v) {
  const clause_program *p = v->p;
  uint32_t *heads = calloc(p->ncode + 1, sizeof *heads);
  uint32_t *tails = calloc(p->ncode + 1, sizeof *tails);
  if (!heads || !tails) {
    free(heads);
    free(tails);
    return reject(v, VC_TABLES, "out of memory");
  }
  uint32_t nloops = 0;
  int rc = 0;
  for (uint32_t blk = 0; blk < p->nblocks && !rc; blk++) {
    uint32_t start = p->block_start[blk], end = p->block_start[blk + 1];
    bool rules_block = p->kind == PROG_POLICY && blk == 0;
    for (uint32_t pc = start; pc < end && !rc; pc++) {
      instr i = p->code[pc];
      unsigned op = INSTR_OP(i);
      if (op >= BC__COUNT || (i >> 8 & 0xff)) {
        rc = reject(v, VC_OPCODE, "bad bytecode at %u: unknown opcode %u", pc, op);
        break;
      }
      if (op == BC_CJINKIDX || op == BC_CJHASINK) { /* made at load from verified code, never read from a file */
        rc = reject(v, VC_OPCODE, "bad bytecode at %u: %s is made at load only", pc, opcode_names[op]);
        break;
      }
      bool rule_op = op == BC_RCOND || op == BC_RWHEN || op == BC_RUNLESS || op == BC_RRETRY || op == BC_RSUSPEND ||
                     op == BC_RMATCH || op == BC_OBLIG || op == BC_OBLIGK || op == BC_HALT || op == BC_STATE;
      if (rule_op != (rule_op && rules_block)) {
        rc = reject(v, VC_BLOCK_END, "bad bytecode at %u: %s outside the rules block", pc, opcode_names[op]);
        break;
      }
      if (op == BC_RET && rules_block) {
        rc = reject(v, VC_BLOCK_END, "bad bytecode at %u: RET in the rules block", pc);
        break;
      }
      const char *kinds = opcode_kinds[op];
      unsigned ops[3] = {INSTR_A(i), INSTR_B(i), INSTR_C(i)};
      for (int k = 0; k < 3 && !rc; k++) rc = check_operand(v, pc, end, kinds[k], ops[k]);
      if (!rc) rc = check_ranges(v, pc, (opcode)op, ops[0], ops[1], ops[2]);
      if (!rc && op == BC_LOOP) rc = check_loop(v, pc, start, ops[2], heads, tails, &nloops);
    }
    if (!rc) {
      unsigned last = INSTR_OP(p->code[end - 1]);
      unsigned want = rules_block ? BC_HALT : BC_RET;
      if (last != want)
        rc = reject(v, VC_BLOCK_END, "bad bytecode: block %u does not end in %s", blk, opcode_names[want]);
    }
  }
  free(heads);
  free(tails);
  return rc;
}

int verify_program_why(const clause_program *p, char *err, size_t errcap, verify_check *why) {
  vstate v = {p, err, errcap, VC_OK};
  int rc = check_tables(&v);
  if (!rc) rc = check_code(&v);
  if (why) *why = v.why;
  return rc ? -1 : 0;
}

int verify_program(const clause_program *p, char *err, size_t errcap) {
  return verify_program_why(p, err, errcap, NULL);
}

