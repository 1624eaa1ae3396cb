/*
 * parse.h - the front end's entry points: source text -> policy_file AST.
 */
#ifndef CLAUSE_PARSE_H
#define CLAUSE_PARSE_H

#include "ast.h"
#include "diag.h"

/* Parses a whole rule file. Always returns a policy_file (possibly partial)
 * allocated in `a`; syntax errors are added to `d` (several per run: the
 * parser recovers at declaration and rule-item boundaries). */
policy_file *parse_policy(const source *src, arena *a, diag_list *d);

/* Parses one CEL expression (for `clause expr` and bindings). NULL when it
 * does not parse; the errors are in `d`. */
expr *parse_expression(const source *src, arena *a, diag_list *d);

/* Types, for helpers that build them. */
const type *type_prim(type_kind k);               /* shared, static */
const type *type_list(arena *a, const type *elem);
const type *type_map(arena *a, const type *key, const type *val);
/* "int", "list(string)", "map(string, int)", "dyn" */
void type_format(outbuf *o, const type *t);

#endif
