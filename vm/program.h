/*
 * program.h - a loaded program: bytecode, constants, schema and rule
 * tables. Built by the loader (clb.c) from `.clb` bytes and verified
 * (verify.c) before anything runs it; immutable afterwards, so any number
 * of VMs on any number of threads share it.
 *
 * The code generator fills the same struct (in its own arena) and hands it
 * to clb_write(); every program, freshly compiled or read from a file, then
 * goes through the one loader and verifier.
 *
 * Registers: [0, nfields) are the input fields (field i in register i),
 * then `now`, the lets, and temporaries.
 *
 * Blocks: the code is a sequence of blocks, each ending in a terminator.
 * Block 0 is the main block (the rules, ending in HALT; or, for an
 * expression program, the expression, ending in RET). Each rule with a
 * reason has a block of its own computing the reason (ending in RET).
 */
#ifndef CLAUSE_PROGRAM_H
#define CLAUSE_PROGRAM_H

#include <stdbool.h>
#include <stdint.h>

#include "../include/clause.h"
#include "arena.h"
#include "cel.h"
#include "opcodes.h"
#include "rtype.h"
#include "value.h"

/* Effects as rules declare them (flag included), in severity order. */
typedef enum rule_effect {
  RE_ALLOW = 0, RE_FLAG, RE_THROTTLE, RE_DENY, RE_SUSPEND, RE__COUNT
} rule_effect;

typedef enum prog_kind { PROG_POLICY = 0, PROG_EXPR = 1 } prog_kind;

#define PROG_NONE UINT32_MAX

typedef struct prog_rule {
  const char *id;
  const char *cite;       /* NULL when absent */
  uint8_t effect;         /* rule_effect */
  uint32_t reason_block;  /* block index, or PROG_NONE */
  uint32_t suspend_key_block; /* suspend rules: the key, for the check before
                                 the rules (SPEC 5.2); else PROG_NONE */
  uint32_t suspend_key_reg; /* built at load: see prog_counter.key_reg */
} prog_rule;

/* A counter (SPEC 5.3). Its reading lives in register counter_reg + index,
 * set before the rules run; the key and amount are value blocks run before
 * the store is asked. */
typedef enum counter_mode { CM_COUNT = 0, CM_ADD, CM_DISTINCT } counter_mode;

typedef struct prog_counter {
  const char *name;
  int64_t window_ns;      /* > 0 */
  uint8_t mode;           /* counter_mode */
  uint8_t on_mask;        /* bit (1 << rule_effect) per `on` effect; 0: no `on` */
  uint32_t key_block;
  uint32_t arg_block;     /* add or distinct expression; PROG_NONE for CM_COUNT */
  const char *store_id;   /* built at load: "NAME/MODE/WINDOW", see store.h */
  /* Built at load: the register that the key (arg) block only returns,
   * or PROG_NONE. Keys are usually a field alone, read without entering
   * the interpreter. */
  uint32_t key_reg, arg_reg;
} prog_counter;

typedef struct prog_oblig {
  uint32_t rule;
  const char *action;
  uint32_t nargs;
} prog_oblig;

typedef struct prog_call {
  const char *name;       /* builtin name, resolved at load */
  uint8_t member;
  uint8_t nargs;
  const cel_builtin *fn;
} prog_call;

/* An `extern fn` the program calls (SPEC section 6). Types are cv_kinds
 * from the closed set bool, int, uint, double, string, timestamp, duration
 * (extern_type_ok, verified at load). Binding it to a C function happens
 * after verification (extern.c); the result lives in `xrt`. */
typedef struct prog_extern {
  const char *name;
  const char *lib;        /* `from "LIB"`; NULL: a host function */
  const char *symbol;     /* the library's symbol; NULL for a host function */
  uint8_t ret;
  uint8_t nparams;        /* at most CLAUSE_MAX_PARAMS */
  const uint8_t *params;
} prog_extern;

/* The closed set of extern parameter and return types. */
static inline bool prog_extern_type_ok(uint8_t kind) {
  switch (kind) {
  case CV_BOOL: case CV_INT: case CV_UINT: case CV_DOUBLE: case CV_STRING: case CV_TIMESTAMP:
  case CV_DURATION:
    return true;
  default:
    return false;
  }
}

struct json_binder;
struct extern_rt;

typedef struct clause_program {
  arena mem;              /* owns everything below (loaded programs) */
  uint8_t kind;           /* prog_kind */
  const char *name;       /* policy "NAME", or "" */
  const char *version;    /* or "" */
  uint8_t default_effect; /* RE_ALLOW or RE_DENY */
  uint8_t first_match;    /* combine first_match (else deny_overrides) */
  uint8_t on_error_deny;
  uint8_t on_store_error_allow;

  uint32_t nfields;
  prog_field *fields;
  uint32_t clock_field;   /* field index, or PROG_NONE */
  uint32_t now_reg;       /* register holding `now`, or PROG_NONE */

  uint32_t nregs;
  uint32_t nlets;
  uint32_t *let_regs;     /* registers reset to UNSET before each eval */

  uint32_t nconsts;
  value *consts;
  void **regexes;         /* per constant: compiled regex for MATCHK, or NULL */
  struct strset **sets;   /* per constant: hash set for INK/CJINK, or NULL */
  /* Hash sets of the lists of strings that are values of constant maps
   * (`tier_models[tier]`): such a list carries its set's number + 1 in
   * value.spare, so that `x in M[k]` costs a probe, not a scan. */
  struct strset **list_sets;
  uint32_t nlist_sets;

  uint32_t ncalls;
  prog_call *calls;

  uint32_t nexterns;
  prog_extern *externs;

  uint32_t nrules;
  prog_rule *rules;
  uint32_t nobligs;
  prog_oblig *obligs;

  uint32_t ncounters;
  prog_counter *counters;
  uint32_t counter_reg;   /* first of ncounters registers */
  uint32_t nsuspend;      /* rules with a suspend_key_block */
  uint32_t *suspend_rules; /* their indices, in file order (built at load) */
  /* Built at load: the rules that read no counter may run before the
   * store answers (state_point). The rules block says where it needs the
   * state (STATE; programs compiled before STATE existed do not), and no
   * extern could be called for a request that a suspension then decides. */
  bool rules_before_state;
  uint8_t on_masks;       /* the counters' on_mask or'ed together (built at
                             load): a decision of no such effect adds to none */

  uint32_t ncode;
  instr *code;
  /* The code as run when no trace is asked for (built at load, clb.c:
   * build_fast_code): the same instructions, with conjunct jumps threaded
   * past rules that cannot match and two common pairs fused. */
  instr *fast_code;
  const char **debug;     /* per instruction: source text, or NULL */
  uint32_t nblocks;
  uint32_t *block_start;  /* block i is [block_start[i], block_start[i+1]) */

  struct json_binder *binder; /* built at load */
  struct store *store;        /* attached when prepared (program_attach_store);
                                 NULL for programs without state */
  struct extern_rt *xrt;  /* extern bindings (extern.c), filled once at load
                             before any VM exists; NULL: not bound */
  bool loaded;            /* owned by `mem` (false: a codegen draft) */
} clause_program;

/* ---- .clb files (clb.c) ---------------------------------------------------- */
#define CLB_MAGIC "CLB\x1a"
#define CLB_VERSION 2

/* Serializes a program (a loaded one or a code generator's draft). */
int clb_write(const clause_program *p, outbuf *o);
/* Parses and verifies bytes into a new program; NULL with `err` on failure. */
clause_program *clb_read(const void *bytes, size_t len, char *err, size_t errcap);

/* Gives a program with counters or suspend rules its state store: the
 * options' store, or (NULL options) a memory store of its own (api.c). */
struct clause_options;
int program_attach_store(clause_program *p, const struct clause_options *opts, char *err, size_t errcap);

/* clause_load without binding the externs (api.c): what `clause compile`
 * and `clause disasm` read, since they open no library. NULL with `err`. */
clause_program *program_load(const void *bytes, size_t len, clause_error *err);

/* ---- verifier (verify.c) ---------------------------------------------------- */
/* Checks every instruction and table of a parsed program (SPEC sections 7
 * and 9). 0 when sound; else -1 with a message naming the instruction.
 * `check_counts` (optional, size BC__COUNT+8) counts rejections per check. */
int verify_program(const clause_program *p, char *err, size_t errcap);

/* Which check rejected the last program (for the mutation test's counts). */
typedef enum verify_check {
  VC_OK = 0, VC_TABLES, VC_OPCODE, VC_REGISTER, VC_CONSTANT, VC_JUMP, VC_LOOP,
  VC_TYPE, VC_BLOCK_END, VC__COUNT
} verify_check;
extern const char *const verify_check_names[VC__COUNT];
int verify_program_why(const clause_program *p, char *err, size_t errcap, verify_check *why);

/* ---- disassembler (disasm.c) -------------------------------------------------- */
void program_disasm(const clause_program *p, outbuf *o);

/* ---- names ------------------------------------------------------------------ */
const char *rule_effect_name(rule_effect e);

#endif
