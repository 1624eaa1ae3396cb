/*
 * vm.h - per-thread evaluation state (struct clause_vm) and the
 * interpreter's entry points. The program is shared and read-only; all that
 * an evaluation writes lives here.
 */
#ifndef CLAUSE_VM_H
#define CLAUSE_VM_H

#include "../include/clause.h"
#include "program.h"
#include "store.h"

/* What `clause check --explain` records: the value each rule-level
 * instruction of block 0 saw (a conjunct's truth, a condition's value,
 * a match), in execution order. The VM fills it only when vm->trace is
 * set; evaluation is otherwise unchanged: the trace observes the same
 * bytecode that decides (p->code; without a trace the VM runs
 * p->fast_code, whose conjunct jumps may skip rules that cannot match). */
typedef struct vm_trace_event {
  uint32_t pc;
  value v;
} vm_trace_event;

typedef struct vm_trace {
  vm_trace_event *events;
  size_t n, cap;
  uint32_t in_force;  /* a suspend rule whose suspension decided before the
                         rules ran, or PROG_NONE (set by state_begin) */
} vm_trace;

/* Counters and suspensions of the request being evaluated (state.c). */
typedef struct vm_state {
  store_session *session;      /* opened at the first request that needs it */
  store *own;                  /* a store this VM was pointed at (vm_use_store) */
  int64_t now_ns;
  store_counter_op *ops;       /* cap: ncounters; counters whose key evaluated */
  uint32_t *op_counter;        /* per op: the counter's index (an op keeps its
                                  counter's id and window from one request to
                                  the next), PROG_NONE before the first */
  bool *arg_ok;                /* per op: its add/distinct evaluated */
  size_t nops;
  store_suspend_op *susp;      /* cap: nsuspend (at least 1) */
  uint32_t *susp_rule;         /* per suspension op: the rule's index */
  size_t nsusp;                /* suspension ops of this request (keys that evaluated) */
  bool store_down;             /* the store failed for this request */
  int64_t suspend_ns;          /* the deciding suspend rule's time */
} vm_state;

struct clause_vm {
  const clause_program *p;
  value *regs;           /* p->nregs registers; inputs first */
  uint32_t *required;    /* indices of the required fields */
  uint32_t nrequired;
  bool required_ok;      /* no required field holds an error (absent, wrong
                            type): set by an evaluation that found none,
                            kept by the typed setters (they write no
                            errors), cleared by whatever may write one */
  arena input;           /* strings, lists and maps of bound inputs */
  struct field_text {    /* per field: the buffer clause_vm_set_string (or
                            _bytes) last copied into, reused by the next
                            call that fits, so that a VM fed by setters
                            alone does not grow; cleared with `input` */
    char *p;
    uint32_t cap;
  } *field_text;
  arena scratch;         /* everything one evaluation makes; reset per eval */
  cel_ctx ctx;

  /* The decision being built; arrays sized from the program at vm_new. */
  clause_decision dec;
  const char **flags;          /* cap: nrules */
  clause_obligation *obligs;   /* cap: nobligs */
  clause_eval_error *errors;   /* cap: errors_cap */
  size_t nflags, nobligs_out, nerrors, errors_cap;
  int64_t pending_retry_ns;     /* retry_after of the rule being matched, -1 */
  int64_t decider_retry_ns;     /* retry_after of the decider, -1 */
  uint32_t decider;            /* rule index or PROG_NONE */
  uint8_t best;                /* rule_effect of the decider so far */
  bool decider_failed;         /* decided through on_error deny */
  const char *decider_msg;     /* its error message */
  bool stop;                   /* first_match decided */
  value pending;               /* first error among a rule's conjuncts, or null */
  vm_trace *trace;             /* NULL unless explaining */
  uint32_t *matched;           /* non-flag rules that matched, file order */
  size_t nmatched;
  uint32_t *match_prefix;      /* per constant: vm_regex_prefix of a MATCHK pattern, or 0 */
  vm_state state;
  int64_t pending_susp_ns;     /* RSUSPEND of the rule being matched */
  bool by_suspension;          /* decided by a suspension already in force */
  bool state_done;             /* state_begin ran for this evaluation */
  const char *store_reason;    /* decided by on_store_error deny: the reason */
};

/* Counters and suspensions (state.c). state_begin returns true when the
 * request is decided before the rules (a suspension in force, or the store
 * down under on_store_error deny). */
bool state_begin(clause_vm *vm);
/* state_begin where the rules block asks for it (STATE), after the rules
 * before it ran: when the state decides, their results are dropped, so
 * that the decision is the one state_begin before the rules would give.
 * Returns true when the state decided. */
bool state_point(clause_vm *vm);
/* Lets the store start fetching what state_begin will ask for. */
void state_prefetch(clause_vm *vm);
void state_commit(clause_vm *vm);
/* Points the VM at another store (clause test gives each test its own). */
int vm_use_store(clause_vm *vm, store *s);

/* Runs block `block` of the program; for value blocks, *result is the
 * block's value. */
void vm_run_block(clause_vm *vm, uint32_t block, value *result);

/* Adds an error to the decision (rule may be NULL). */
__attribute__((cold)) void vm_add_error(clause_vm *vm, const char *rule, const char *msg, size_t n);

/* Resets the per-evaluation state: scratch memory, registers past the
 * inputs, lets, and the decision's lists. */
void vm_begin_eval(clause_vm *vm);

/* Evaluates an expression program (PROG_EXPR) on the bound inputs. */
int vm_eval_value(clause_vm *vm, value *out);

/* How many characters after the leading '^' of an anchored pattern every
 * match must start with (plain ASCII text, no alternative branch); 0 when
 * unknown. A subject that does not start with them cannot match. */
uint32_t vm_regex_prefix(const char *pat, uint32_t n);

/* The current time for `now` when no @clock field is bound. */
value vm_wall_clock(void);

#endif
