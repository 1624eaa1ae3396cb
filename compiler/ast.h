/*
 * ast.h - the syntax tree of a rule file, built by the parser (parser.y),
 * resolved and typed by the checker (check.c), turned into bytecode by the
 * code generator (codegen.c). All nodes live in the compile's arena.
 */
#ifndef CLAUSE_AST_H
#define CLAUSE_AST_H

#include <stdbool.h>
#include <stdint.h>

#include "../vm/arena.h"
#include "../vm/value.h"

/* One source file's text, kept whole so diagnostics can show its lines. */
typedef struct source {
  const char *path;  /* as given on the command line / import resolution */
  const char *text;  /* NUL-terminated */
  size_t len;
} source;

/* A span in a source. Lines and columns are 1-based; columns count
 * characters (UTF-8 code points; a tab is one column). `end_col` is the
 * column just after the last character of the span, on line `end_line`. */
typedef struct srcloc {
  const source *src;
  int line, col;
  int end_line, end_col;
} srcloc;

/* ---- types ----------------------------------------------------------------- */
typedef enum type_kind {
  T_DYN = 0,  /* unknown until run time (`any`, `dyn`) */
  T_BOOL, T_INT, T_UINT, T_DOUBLE, T_STRING, T_BYTES,
  T_TIMESTAMP, T_DURATION, T_NULL, T_TYPE,
  T_LIST, T_MAP,
  T_ERROR     /* the checker's marker after a reported error: no more reports */
} type_kind;

typedef struct type {
  type_kind kind;
  const struct type *elem; /* T_LIST element, T_MAP value */
  const struct type *key;  /* T_MAP key */
} type;

/* ---- expressions ----------------------------------------------------------- */
typedef enum expr_kind {
  E_LITERAL,  /* lit */
  E_IDENT,    /* name (a leading-dot name keeps its dot) */
  E_SELECT,   /* operand.name ; `test_only` is unused (has() is a call) */
  E_INDEX,    /* operand[args[0]] */
  E_CALL,     /* [target.]name(args) */
  E_UNARY,    /* op operand: '!' or '-' */
  E_BINARY,   /* operand op args[0]: + - * / % == != < <= > >= in && || */
  E_COND,     /* operand ? args[0] : args[1] */
  E_LIST,     /* [args...] */
  E_MAP       /* {args[0]: args[1], args[2]: args[3], ...} */
} expr_kind;

typedef enum expr_op {
  OP_NONE = 0,
  OP_NOT, OP_NEG,
  OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MOD,
  OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_IN,
  OP_AND, OP_OR
} expr_op;

/* What a name or a dotted select chain refers to, filled in by the checker.
 * For a chain that names an input field (`request.purpose`), the outermost
 * E_SELECT node carries REF_FIELD and its operands are not visited again. */
typedef enum ref_kind {
  REF_NONE = 0,
  REF_FIELD,    /* index: input field */
  REF_LET,      /* index: let (file's own or an imported module's) */
  REF_COUNTER,  /* index: counter */
  REF_LOCAL,    /* index: comprehension variable slot, innermost scope 0.. */
  REF_NOW,      /* the request's time */
  REF_VAR,      /* index: `clause expr` variable (bound as a field) */
  REF_EXTERN    /* E_CALL to an `extern fn`; index: pf->externs (builtin NULL) */
} ref_kind;

/* Macros the checker recognises among calls. */
typedef enum macro_kind {
  M_NONE = 0, M_HAS, M_ALL, M_EXISTS, M_EXISTS_ONE, M_MAP, M_FILTER
} macro_kind;

typedef struct expr {
  expr_kind kind;
  expr_op op;
  srcloc loc;            /* the whole expression */
  srcloc name_loc;       /* E_IDENT/E_SELECT/E_CALL: the name's own span */
  value lit;             /* E_LITERAL */
  const char *name;      /* E_IDENT, E_SELECT field, E_CALL function */
  struct expr *operand;  /* E_SELECT/E_INDEX operand, E_CALL target (or NULL),
                            E_UNARY/E_BINARY left, E_COND condition */
  struct expr **args;    /* see expr_kind */
  int nargs;

  /* Filled by the checker. */
  const type *ty;
  ref_kind ref;
  int ref_index;
  macro_kind macro;      /* E_CALL: a macro; args[0] is the variable (E_IDENT)
                            for all/exists/exists_one/map/filter */
  int local_slot;        /* macros: the slot of the bound variable */
  const void *builtin;   /* E_CALL: the cel_builtin resolved, or NULL */
} expr;

/* ---- declarations ------------------------------------------------------------ */
typedef enum effect_kind {
  EFF_ALLOW = 0, EFF_FLAG, EFF_THROTTLE, EFF_DENY, EFF_SUSPEND
} effect_kind;

typedef struct field_decl {
  const char *path;       /* dotted, backticked segments unquoted: "request.x-id" */
  const char **segs;      /* path split into segments */
  int nsegs;
  const type *ty;
  bool optional;
  bool clock;             /* @clock */
  srcloc loc;             /* the path */
} field_decl;

typedef struct let_decl {
  const char *name;
  srcloc loc;             /* the name */
  expr *value;
  const char *module;     /* NULL for the file's own; import alias otherwise */
} let_decl;

typedef struct param_decl {
  const char *name;
  const type *ty;
  srcloc loc;
} param_decl;

typedef struct extern_decl {
  const char *name;
  srcloc loc;
  param_decl *params;
  int nparams;
  const type *ret;
  const char *lib;        /* NULL: host-supplied */
  const char *symbol;     /* NULL: same as name */
  srcloc lib_loc;
  const char *module;
} extern_decl;

typedef struct counter_decl {
  const char *name;
  srcloc loc;
  expr *key;
  expr *window;           /* a duration literal */
  expr *add;              /* NULL: 1 */
  expr *distinct;         /* NULL unless distinct */
  effect_kind *on;        /* the `on` effects */
  srcloc *on_locs;
  int non;
} counter_decl;

typedef struct import_decl {
  const char *path;       /* "std/geo" */
  const char *alias;      /* "geo" */
  srcloc loc;             /* the path string */
  srcloc alias_loc;
} import_decl;

typedef struct then_clause {
  const char *action;
  srcloc loc;
  expr **args;
  int nargs;
} then_clause;

typedef struct rule_decl {
  const char *id;
  srcloc loc;             /* the id string */
  const char *cite;       /* NULL when absent */
  expr *reason;           /* NULL when absent */
  effect_kind effect;
  srcloc effect_loc;
  bool has_effect;
  expr *when;
  expr *unless;           /* NULL when absent */
  expr *retry_after;      /* throttle: NULL when absent */
  expr *suspend_key;      /* suspend */
  expr *suspend_for;      /* suspend */
  then_clause *thens;
  int nthens;
} rule_decl;

typedef struct expect_clause {
  bool flagged;           /* expect flagged "RULE" */
  effect_kind effect;     /* otherwise: the effect */
  const char *rule;       /* NULL: effect alone */
  srcloc loc;
} expect_clause;

typedef struct test_step {
  expr *given;
  srcloc loc;
  expect_clause *expects;
  int nexpects;
} test_step;

typedef struct test_decl {
  const char *name;
  srcloc loc;
  test_step *steps;
  int nsteps;
} test_decl;

typedef enum combine_kind { COMBINE_DENY_OVERRIDES = 0, COMBINE_FIRST_MATCH } combine_kind;

/* A policy setting as written (`default allow`): checked after parsing. */
typedef struct setting {
  const char *name;       /* version, default, combine, on_error, on_store_error */
  srcloc loc;             /* the setting's name */
  const char *word;       /* identifier value, or NULL */
  const char *string;     /* string value (version), or NULL */
  srcloc value_loc;
} setting;

typedef struct policy_file {
  const source *src;
  bool has_header;
  const char *name;       /* policy "NAME" */
  srcloc header_loc;
  setting *settings;
  int nsettings;

  /* Settings, once checked. */
  effect_kind default_effect;   /* EFF_ALLOW or EFF_DENY */
  combine_kind combine;
  bool on_error_deny;
  bool on_store_error_allow;
  const char *version;

  import_decl *imports;   int nimports;
  field_decl *fields;     int nfields;
  let_decl *lets;         int nlets;
  extern_decl *externs;   int nexterns;
  counter_decl *counters; int ncounters;
  rule_decl *rules;       int nrules;
  test_decl *tests;       int ntests;
} policy_file;

#endif
