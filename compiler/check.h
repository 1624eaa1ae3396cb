/*
 * check.h - the semantic checker: resolves every name of a parsed policy
 * (input fields, lets, counters, externs, `now`, comprehension variables,
 * builtins) and gives every expression a static type, filling the
 * "Filled by the checker" fields of ast.h. Errors and warnings go to a
 * diag_list; the AST is only fit for code generation when no error was
 * reported.
 */
#ifndef CLAUSE_CHECK_H
#define CLAUSE_CHECK_H

#include <stdbool.h>

#include "ast.h"
#include "diag.h"

/* Resolves names and types in a parsed policy; reports errors and warnings
 * into d. Checks the policy settings and fills pf->default_effect, combine,
 * on_error_deny, on_store_error_allow and version. New nodes and strings
 * are allocated in `a`. Returns true when no error was reported. */
bool check_policy(policy_file *pf, arena *a, diag_list *d);

/* A module loaded for `import` (compile.c). Its lets and externs are
 * appended to the importing policy_file's, with `module` set to `path`;
 * inside the module, names resolve among them and its own imports'
 * aliases. An import's module is the one whose path equals its path. */
typedef struct check_module {
  const char *path;             /* "std/geo" */
  const import_decl *imports;   /* the module's own imports */
  int nimports;
} check_module;

/* check_policy for a file whose imports are loaded: `mods` are all the
 * modules (those the file imports and theirs). */
bool check_policy_modules(policy_file *pf, const check_module *mods, int nmods, arena *a, diag_list *d);

/* A `clause expr` variable. A dotted name like "a.b.c" is ONE qualified
 * variable; `ty` NULL means dyn. */
typedef struct check_var {
  const char *name;
  const type *ty;
} check_var;

/* Resolves and types a standalone CEL expression over `vars` (REF_VAR,
 * ref_index = the variable's index; the longest matching qualified name
 * wins). `now` resolves to REF_NOW unless a variable is named so. With
 * disable_check, names are resolved but no type error is reported.
 * Returns true when no error was reported. */
bool check_expression(expr *e, const check_var *vars, int nvars, bool disable_check,
                      arena *a, diag_list *d);

#endif
