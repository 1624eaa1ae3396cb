/*
 * compile.h - the compiler driver: source -> parse -> check -> codegen ->
 * bytes -> the one loader and verifier (vm/clb.c). Used by
 * clause_compile_file and by the CLI, which renders the diagnostics.
 */
#ifndef CLAUSE_COMPILE_H
#define CLAUSE_COMPILE_H

#include <stdbool.h>

#include "../include/clause.h"
#include "ast.h"
#include "check.h"
#include "diag.h"

/* Reads a whole file into `a` (NUL-terminated). NULL with errno set. */
source *compile_read_source(const char *path, arena *a);

/* Compiles a rule file's text. On success *out is a loaded, verified
 * program owned by the caller (clause_program_free) and *pf_out (if not
 * NULL) the checked AST in `a` (for `clause test`). Diagnostics, warnings
 * included, go to d. Returns CLAUSE_OK or CLAUSE_ERR_COMPILE /
 * CLAUSE_ERR_LOAD / CLAUSE_ERR_NOMEM. */
int compile_policy(const source *src, const clause_options *opts, arena *a, diag_list *d,
                   clause_program **out, policy_file **pf_out);

/* Prepares a compiled program for evaluation: binds its externs
 * (vm/extern.h) with the options' allow-list and host functions. A failure
 * is reported into d at the extern's declaration in pf; CLAUSE_ERR_LOAD.
 * `clause compile` and `clause disasm` skip this: they open no library. */
int compile_bind(clause_program *p, const policy_file *pf, const clause_options *opts, diag_list *d);

/* Compiles one CEL expression over variables (all bound as `any`). */
int compile_expression(const source *src, const check_var *vars, int nvars, bool disable_check,
                       arena *a, diag_list *d, clause_program **out);

/* The first error of d as a clause_error. */
void compile_first_error(const diag_list *d, clause_error *err);

#endif
