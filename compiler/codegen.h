/*
 * codegen.h - checked AST -> bytecode program draft (see program.h).
 */
#ifndef CLAUSE_CODEGEN_H
#define CLAUSE_CODEGEN_H

#include <stdbool.h>

#include "../vm/program.h"
#include "ast.h"
#include "diag.h"

/* Fills the draft `p` (memory from `a`) from a checked policy. Reports
 * what it cannot compile into `d`; false then. */
bool codegen_policy(const policy_file *pf, arena *a, diag_list *d, clause_program *p);

/* An expression program over `nvars` variables bound as fields 0..nvars-1
 * (type any). Its main block ends in RET with the expression's value. */
bool codegen_expression(const expr *e, const char *const *vars, int nvars, arena *a,
                        diag_list *d, clause_program *p);

#endif
