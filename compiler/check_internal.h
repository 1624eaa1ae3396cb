/*
 * check_internal.h - state shared by the checker's two halves: check.c
 * (settings, declarations, rules, tests) and check_expr.c (names, macros,
 * calls and types inside one expression). Not part of any interface.
 */
#ifndef CLAUSE_CHECK_INTERNAL_H
#define CLAUSE_CHECK_INTERNAL_H

#include <stdbool.h>

#include "check.h"

/* The one namespace of SPEC section 3 (plus `now`, which is implicit). */
typedef enum name_kind { NK_FIELD_ROOT, NK_LET, NK_COUNTER, NK_EXTERN, NK_ALIAS } name_kind;

typedef struct ns_entry {
  const char *name;
  name_kind kind;
  int index;   /* first field with this root, let, counter, extern, import */
  srcloc loc;
} ns_entry;

/* A comprehension variable in scope. */
typedef struct local_var {
  const char *name;
  const type *ty;
  int slot;
} local_var;

#define CHECK_MAX_LOCALS 256 /* the parser stops nesting at 250 */

typedef enum let_state { LET_UNCHECKED = 0, LET_CHECKING, LET_DONE } let_state;

typedef struct checker {
  arena *a;
  diag_list *d;
  policy_file *pf;           /* NULL when checking a lone expression */
  const check_var *vars;
  int nvars;
  bool report_types;         /* false: disable_check */

  /* The scope names resolve in: the file's own, or (while one of its lets
   * is checked) an imported module's. */
  ns_entry *names;           /* the winners of the namespace (no clashes) */
  int nnames;
  const char *module;        /* NULL: the file; else the module's path */
  const import_decl *imports; /* the scope's imports (NK_ALIAS indexes them) */
  int nimports;

  /* Imported modules and their namespaces. */
  const check_module *mods;
  int nmods;
  ns_entry **mod_names;
  int *mod_nnames;

  /* Restrictions of the expression being checked. */
  const char *const_what;    /* non-NULL: a constant is required here
                                ("a test's `given`"): no declarations */
  int counter_self;          /* counter whose key/add/distinct is checked, or -1 */

  /* Scope of the top-level expression being checked. A let is checked as
   * its own top-level expression, so it sets the bases to the tops. */
  local_var locals[CHECK_MAX_LOCALS];
  int nlocals, locals_base;
  int *guards;               /* input fields a has() guards here */
  int nguards, cap_guards, guards_base;

  /* Lets: state and type, and the chain being checked (for cycles). */
  uint8_t *let_states;
  const type **let_types;
  int *let_stack;
  int nlet_stack;
} checker;

/* check_expr.c */
const type *ck_top_expr(checker *c, expr *e);          /* fresh scope */
const type *ck_expr(checker *c, expr *e);              /* in the current scope */
void ck_push_guards_of(checker *c, const expr *cond);  /* has() conjuncts of cond */
const ns_entry *ck_lookup(const checker *c, const char *name);
const char *ck_type_name(checker *c, const type *t);
bool ck_type_unknown(const type *t);                    /* NULL, dyn or error */

/* check.c */
const type *ck_let_type(checker *c, int index, srcloc use); /* checks on first use */
/* The let or extern `name` of the module at `path`, or -1. */
int ck_module_let(const checker *c, const char *path, const char *name);
int ck_module_extern(const checker *c, const char *path, const char *name);

#endif
