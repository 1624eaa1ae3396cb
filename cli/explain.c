/*
 * explain.c - `--explain`: why each rule matched or not, read off the
 * trace the VM records while it evaluates (vm.h, vm_trace). No second
 * interpreter: the trace holds the values the deciding bytecode saw.
 *
 * Which instructions belong to which rule is derived from the code: every
 * condition instruction of a rule (its conjuncts, RCOND/RWHEN, RUNLESS,
 * RRETRY, RSUSPEND) jumps to the same place when the rule does not match,
 * the start of the next rule, and the rule-level ones name their rule.
 */
#include "explain.h"

#include <stdlib.h>
#include <string.h>

typedef struct cond_ref {
  uint32_t pc;
  bool shown; /* a sub-condition a person reads (not RCOND's summary) */
} cond_ref;

typedef struct rule_conds {
  cond_ref *conds;
  uint32_t n;
  uint32_t match_pc; /* RMATCH, or PROG_NONE */
} rule_conds;

struct explainer {
  const clause_program *p;
  rule_conds *rules;
  int32_t *rule_of_pc; /* rule index of each instruction of block 0, or -1 */
};

static bool is_condition(unsigned op) {
  switch (op) {
  case BC_CJFALSE: case BC_CJABSENT: case BC_CJEQK: case BC_CJNEK: case BC_CJINK:
  case BC_CJNOT: case BC_CJNINK: case BC_CJLTK: case BC_CJLEK: case BC_CJGTK: case BC_CJGEK:
  case BC_CJEQ: case BC_CJNE: case BC_CJLT: case BC_CJLE: case BC_CJGT: case BC_CJGE: case BC_CJIN:
  case BC_RCOND: case BC_RWHEN: case BC_RUNLESS: case BC_RRETRY: case BC_RSUSPEND:
    return true;
  default:
    return false;
  }
}

static bool names_rule(unsigned op) {
  return op == BC_RCOND || op == BC_RWHEN || op == BC_RUNLESS || op == BC_RRETRY || op == BC_RSUSPEND;
}

explainer *explainer_new(const clause_program *p) {
  explainer *x = calloc(1, sizeof *x);
  if (!x) return NULL;
  x->p = p;
  uint32_t end = p->nblocks > 1 ? p->block_start[1] : p->ncode;
  x->rules = calloc(p->nrules + 1, sizeof *x->rules);
  x->rule_of_pc = malloc((end + 1) * sizeof *x->rule_of_pc);
  if (!x->rules || !x->rule_of_pc) {
    explainer_free(x);
    return NULL;
  }
  for (uint32_t r = 0; r < p->nrules; r++) x->rules[r].match_pc = PROG_NONE;
  /* Exit target -> rule, from the instructions that name their rule. */
  for (uint32_t pc = 0; pc < end; pc++) {
    x->rule_of_pc[pc] = -1;
    instr i = p->code[pc];
    if (INSTR_OP(i) == BC_RMATCH) x->rules[INSTR_B(i)].match_pc = pc;
  }
  for (uint32_t pc = 0; pc < end; pc++) {
    instr i = p->code[pc];
    if (!is_condition(INSTR_OP(i))) continue;
    uint32_t target = pc + 1 + INSTR_C(i);
    int32_t rule = -1;
    for (uint32_t q = pc; q < end && rule < 0; q++) {
      instr j = p->code[q];
      if (names_rule(INSTR_OP(j)) && q + 1 + INSTR_C(j) == target) rule = (int32_t)INSTR_B(j);
    }
    if (rule < 0) continue;
    x->rule_of_pc[pc] = rule;
    rule_conds *rc = &x->rules[rule];
    cond_ref *grown = realloc(rc->conds, (rc->n + 1) * sizeof *grown);
    if (!grown) {
      explainer_free(x);
      return NULL;
    }
    rc->conds = grown;
    /* RCOND only sums up the conjuncts before it. */
    rc->conds[rc->n++] = (cond_ref){pc, INSTR_OP(i) != BC_RCOND};
  }
  return x;
}

void explainer_free(explainer *x) {
  if (!x) return;
  if (x->rules)
    for (uint32_t r = 0; r < x->p->nrules; r++) free(x->rules[r].conds);
  free(x->rules);
  free(x->rule_of_pc);
  free(x);
}

/* What a person reads for a condition: its source, with the clause it
 * belongs to when that is not the `when`. */
static void cond_label(outbuf *o, const clause_program *p, uint32_t pc) {
  unsigned op = INSTR_OP(p->code[pc]);
  if (op == BC_RUNLESS) ob_puts(o, "unless ");
  if (op == BC_RRETRY) ob_puts(o, "retry_after ");
  if (op == BC_RSUSPEND) ob_puts(o, "suspend ");
  ob_puts(o, p->debug && p->debug[pc] ? p->debug[pc] : opcode_names[op]);
}

static const vm_trace_event *event_at(const vm_trace *t, uint32_t pc) {
  for (size_t k = 0; k < t->n; k++)
    if (t->events[k].pc == pc) return &t->events[k];
  return NULL;
}

/* R_IN_FORCE: a suspension this rule started earlier holds for the
 * request's key, so it decided before any rule was evaluated. */
typedef enum rule_outcome { R_NOT_EVALUATED, R_MATCHED, R_NOT_MATCHED, R_FAILED, R_IN_FORCE } rule_outcome;

static rule_outcome outcome_of(const explainer *x, const vm_trace *t, uint32_t r, const value **err) {
  const rule_conds *rc = &x->rules[r];
  *err = NULL;
  if (t->in_force == r) return R_IN_FORCE;
  if (rc->match_pc != PROG_NONE && event_at(t, rc->match_pc)) return R_MATCHED;
  bool seen = false;
  for (uint32_t k = 0; k < rc->n; k++) {
    const vm_trace_event *e = event_at(t, rc->conds[k].pc);
    if (!e) continue;
    seen = true;
    unsigned op = INSTR_OP(x->p->code[rc->conds[k].pc]);
    /* A rule-level check that saw an error (or a non-bool) failed it. */
    if (names_rule(op) && (op == BC_RRETRY || op == BC_RSUSPEND ? e->v.kind == CV_ERROR : e->v.kind != CV_BOOL))
      *err = &e->v;
  }
  if (!seen) return R_NOT_EVALUATED;
  return *err ? R_FAILED : R_NOT_MATCHED;
}

static const char *const outcome_names[] = {"not evaluated", "matched", "not matched", "failed",
                                            "suspension in force"};

void explain_text(const explainer *x, const vm_trace *t, outbuf *o, const char *indent) {
  const clause_program *p = x->p;
  for (uint32_t r = 0; r < p->nrules; r++) {
    const value *err;
    rule_outcome out = outcome_of(x, t, r, &err);
    ob_printf(o, "%srule \"%s\" (%s): %s", indent, p->rules[r].id,
              rule_effect_name((rule_effect)p->rules[r].effect), outcome_names[out]);
    if (err) {
      ob_puts(o, ": ");
      if (err->kind == CV_ERROR) ob_put(o, err->s, err->n);
      else ob_printf(o, "%s, not bool", cv_kind_name((cv_kind)err->kind));
    }
    ob_putc(o, '\n');
    if (out == R_NOT_EVALUATED || out == R_IN_FORCE) continue;
    const rule_conds *rc = &x->rules[r];
    for (uint32_t k = 0; k < rc->n; k++) {
      if (!rc->conds[k].shown) continue;
      uint32_t pc = rc->conds[k].pc;
      size_t start = o->len;
      ob_printf(o, "%s    ", indent);
      cond_label(o, p, pc);
      for (size_t w = o->len - start; w < 48; w++) ob_putc(o, ' ');
      ob_putc(o, ' ');
      const vm_trace_event *e = event_at(t, pc);
      if (!e) ob_puts(o, "not evaluated");
      else if (e->v.kind == CV_ERROR) {
        ob_puts(o, "error: ");
        ob_put(o, e->v.s, e->v.n);
      } else if (e->v.kind == CV_DURATION || e->v.kind == CV_TIMESTAMP) {
        /* As CEL would write them: duration("30s") */
        ob_puts(o, e->v.kind == CV_DURATION ? "duration(" : "timestamp(");
        cel_to_json(o, &e->v);
        ob_putc(o, ')');
      } else {
        cel_canon(o, &e->v);
      }
      ob_putc(o, '\n');
    }
  }
}

void explain_json(const explainer *x, const vm_trace *t, outbuf *o) {
  const clause_program *p = x->p;
  ob_putc(o, '[');
  for (uint32_t r = 0; r < p->nrules; r++) {
    const value *err;
    rule_outcome out = outcome_of(x, t, r, &err);
    if (r) ob_putc(o, ',');
    ob_puts(o, "{\"rule\":");
    cel_json_string(o, p->rules[r].id, strlen(p->rules[r].id));
    ob_printf(o, ",\"result\":\"%s\",\"conditions\":[", outcome_names[out]);
    const rule_conds *rc = &x->rules[r];
    bool first = true;
    for (uint32_t k = 0; k < rc->n; k++) {
      if (!rc->conds[k].shown) continue;
      uint32_t pc = rc->conds[k].pc;
      const vm_trace_event *e = event_at(t, pc);
      ob_puts(o, first ? "{\"expr\":" : ",{\"expr\":");
      first = false;
      outbuf label;
      ob_init_grow(&label);
      cond_label(&label, p, pc);
      cel_json_string(o, label.buf ? label.buf : "", label.len);
      ob_free(&label);
      ob_printf(o, ",\"evaluated\":%s,\"value\":", e ? "true" : "false");
      if (!e || e->v.kind == CV_ERROR) ob_puts(o, "null");
      else cel_to_json(o, &e->v);
      if (e && e->v.kind == CV_ERROR) {
        ob_puts(o, ",\"error\":");
        cel_json_string(o, e->v.s, e->v.n);
      }
      ob_putc(o, '}');
    }
    ob_puts(o, "]}");
  }
  ob_putc(o, ']');
}
