/*
 * parser.y - the grammar of rule files (SPEC sections 2, 3 and 5) and of
 * CEL expressions (cel-spec langdef), built into the AST of ast.h in the
 * compile arena.
 *
 * A pure parser over the reentrant scanner of lexer.l. One grammar serves
 * both entry points of parse.h: the first token, chosen by the caller,
 * selects the `file` or the `expression` start.
 *
 * Policy words are tokens of their own, but `ident` accepts every one of
 * them except the CEL reserved words `as for import let`: a complete CEL
 * expression is never followed by an identifier, so after an expression
 * the same word can only begin the next clause.
 *
 * Error handling. Errors are diagnostics queued in the diag_list; the parse
 * goes on. The grammar recovers with `error` at declaration boundaries and
 * inside the blocks (settings, input fields, rule items, test steps); a
 * declaration keyword where an open block cannot take it is read as a
 * missing '}' (replay_after_missing_brace). A declaration in which any error
 * was reported (syntax, lexical, nesting) is left out of the AST, so that
 * later passes never see a broken one. Besides syntax, the parser reports
 * what the AST cannot hold: a second `policy` header, a second cite, reason
 * or effect clause in a rule, a rule without an effect, a test without a
 * `given`, unknown type names, and 9223372036854775808 without its minus.
 *
 * Nesting. Brackets are counted by the scanner, which stops the parse at the
 * bracket that opens level 251. Every expression node also carries its depth
 * (parentheses, calls, lists, maps, indexes, selections and operators each
 * add one level): a chain of prefix operators is reported at its 251st
 * operator, any other node that reaches level 251 at its operator. The
 * parse stack itself is bounded (YYMAXDEPTH): overflowing it is the same
 * error. The AST handed on is never deeper than 250.
 */

%define api.pure full
%define api.prefix {clause_yy}
%define api.token.prefix {TK_}
%define api.location.type {srcloc}
%define parse.error custom
%define parse.lac full
%locations
%param {pstate *ps}
%expect 0

%code top {
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
}

%code requires {
#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>

#include "ast.h"
#include "diag.h"
#include "parse.h"

typedef struct pstate pstate;

/* Expressions nest at most this deep (SPEC section 2). */
#define PARSE_MAX_DEPTH 250

/* A literal token. `needs_minus`: the int literal 9223372036854775808 (or
 * 0x8000000000000000), valid only right after a unary minus. */
typedef struct lit_token {
  value v;
  bool needs_minus;
} lit_token;

/* An expression being built, with its nesting depth. */
typedef struct xexpr {
  expr *e;
  int depth;
  bool needs_minus;
} xexpr;

/* A list of expressions (arguments, list elements, map keys and values). */
typedef struct xlist {
  expr **v;
  int n, cap;
  int depth; /* the deepest element */
} xlist;

/* A chain of prefix operators (`!!`, `--`) waiting for their operand. */
typedef struct xchain {
  expr *head, *tail;
  int n;
} xchain;

typedef struct xpath {
  const char **segs;
  int n, cap;
} xpath;

typedef struct xparams {
  param_decl *v;
  int n, cap;
} xparams;

typedef struct xeffects {
  effect_kind *v;
  srcloc *locs;
  int n, cap, cap_locs;
} xeffects;

typedef struct xexpects {
  expect_clause *v;
  int n, cap;
} xexpects;

typedef struct xamount {
  expr *add, *distinct;
} xamount;

typedef struct xfrom {
  const char *lib, *symbol;
  srcloc lib_loc;
} xfrom;

typedef struct xsetting_value {
  const char *word, *string;
} xsetting_value;

struct rule_item;
struct rule_acc;
struct test_acc;
struct settings_acc;
}

%union {
  const char *name;
  lit_token lit;
  xexpr x;
  xlist xl;
  xchain chain;
  xpath path;
  xparams params;
  xeffects effects;
  xexpects expects;
  xamount amount;
  xfrom from;
  xsetting_value setval;
  expect_clause expect;
  const type *ty;
  effect_kind eff;
  expr_op op;
  bool flag;
  struct rule_item *item;
  struct rule_acc *racc;
  struct test_acc *tacc;
  struct settings_acc *sacc;
}

%code provides {
/* A token as the scanner returned it. */
typedef struct scanned_token {
  int kind;
  CLAUSE_YYSTYPE value;
  srcloc loc;
  size_t off, len; /* its bytes in the source text */
} scanned_token;

/* An open bracket, kept by the scanner: for the nesting limit and for
 * "expected '}' (to close '{' of rule "x" at line 3)". */
typedef struct open_bracket {
  char c;
  bool decl;          /* the '{' of a declaration block, not of an expression */
  srcloc loc;
  const char *label;  /* for a declaration block: `rule "x"`, `the input block` */
} open_bracket;

/* The state of one parse, shared by the scanner and the parser. */
struct pstate {
  void *scanner;         /* yyscan_t */
  const source *src;
  arena *a;
  diag_list *d;
  policy_file *file;     /* parse_policy's result */
  expr *result;          /* parse_expression's result */
  int start_token;       /* the first token: selects the start rule */
  jmp_buf fatal;         /* the scanner's fatal errors (out of memory) */

  /* The scanner's position: the next character. */
  int line, col;
  size_t off;
  bool after_cr;

  size_t tok_off, tok_len; /* the scanner's last match */

  /* The last two tokens handed to the parser: [0] the newest (the
   * lookahead when an error is reported), [1] the one before. */
  scanned_token recent[2];

  open_bracket *brackets;
  int nbrackets, cap_brackets;
  int expr_brackets;     /* open brackets that belong to expressions */

  srcloc *errors;        /* where each error reported so far starts */
  int nerrors, cap_errors;

  /* Recovery from a missing '}': a '}' is handed to the parser, then the
   * tokens that revealed it, again. */
  bool inject_close;
  scanned_token replay[2];
  int nreplay, next_replay;

  bool stop;             /* nothing more to parse: the scanner returns end of file */
  bool oom;
  int cap_imports, cap_fields, cap_lets, cap_externs, cap_counters, cap_rules, cap_tests;
  srcloc header_loc;     /* the first `policy` header */
};

/* Used by the scanner. */
void parse_error_at(pstate *ps, srcloc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* false: the bracket crosses the nesting limit (reported; the parse stops). */
bool parse_bracket_open(pstate *ps, char c, srcloc loc);
void parse_bracket_close(pstate *ps, char c);
}

%code {
#include "lexer.h"

int clause_scan(CLAUSE_YYSTYPE *yylval_param, srcloc *yylloc_param, yyscan_t yyscanner);
static int clause_yylex(CLAUSE_YYSTYPE *lval, srcloc *lloc, pstate *ps);
static void clause_yyerror(srcloc *loc, pstate *ps, const char *msg);

/* Locations span from the first symbol's start to the last one's end; an
 * empty rule sits at the end of the symbol before it. */
#define YYLLOC_DEFAULT(Cur, Rhs, N)                                   \
  do {                                                                \
    if (N) {                                                          \
      (Cur).src = YYRHSLOC(Rhs, 1).src;                               \
      (Cur).line = YYRHSLOC(Rhs, 1).line;                             \
      (Cur).col = YYRHSLOC(Rhs, 1).col;                               \
      (Cur).end_line = YYRHSLOC(Rhs, N).end_line;                     \
      (Cur).end_col = YYRHSLOC(Rhs, N).end_col;                       \
    } else {                                                          \
      (Cur).src = YYRHSLOC(Rhs, 0).src;                               \
      (Cur).line = (Cur).end_line = YYRHSLOC(Rhs, 0).end_line;        \
      (Cur).col = (Cur).end_col = YYRHSLOC(Rhs, 0).end_col;           \
    }                                                                 \
  } while (0)

/* An allocation failed: bison reports "memory exhausted" through yyerror. */
#define CHECK(p) do { if (!(p)) YYNOMEM; } while (0)

/* Appends a zeroed element to a growing arena array; NULL when out of memory. */
#define PUSH(ps, arr, n, cap)                                                          \
  __extension__({                                                                      \
    __typeof__(arr) slot_ = NULL;                                                      \
    if ((n) == (cap)) {                                                                \
      __typeof__(arr) grown_ = grow_array((ps), (arr), &(cap), sizeof *(arr));         \
      if (grown_) (arr) = grown_;                                                      \
    }                                                                                  \
    if ((n) < (cap)) slot_ = memset(&(arr)[(n)++], 0, sizeof *(arr));                  \
    slot_;                                                                             \
  })

struct rule_item {
  enum { ITEM_CITE, ITEM_REASON, ITEM_EFFECT, ITEM_THEN } kind;
  srcloc loc;            /* the item's first word */
  const char *cite;
  expr *reason;
  effect_kind effect;
  expr *when, *unless, *retry_after, *suspend_key, *suspend_for;
  then_clause then;
};

struct rule_acc {
  rule_decl r;
  int cap_thens;
  bool has_cite;
  srcloc cite_loc, reason_loc;
};

struct test_acc {
  test_step *steps;
  int n, cap;
};

struct settings_acc {
  setting *v;
  int n, cap;
};

static void *grow_array(pstate *ps, void *arr, int *cap, size_t elsize);
static void *ps_alloc(pstate *ps, size_t n);
static const char *ps_concat(pstate *ps, const char *a, const char *b);
static bool span_has_error(const pstate *ps, srcloc span);
static void brackets_drop_to_decl(pstate *ps);

static expr *new_expr(pstate *ps, expr_kind kind, srcloc loc);
static xexpr x_leaf(pstate *ps, expr_kind kind, srcloc loc);
static xexpr x_literal(pstate *ps, lit_token lit, srcloc loc);
static xexpr x_ident(pstate *ps, const char *name, srcloc loc);
static xexpr x_unary_check(pstate *ps, xexpr operand);
static xexpr x_binary(pstate *ps, xexpr left, expr_op op, srcloc oploc, xexpr right, srcloc loc);
static xexpr x_cond(pstate *ps, xexpr c, srcloc qloc, xexpr a, xexpr b, srcloc loc);
static xexpr x_select(pstate *ps, xexpr operand, const char *name, srcloc name_loc, srcloc loc);
static xexpr x_call(pstate *ps, expr *target, int target_depth, const char *name, srcloc name_loc,
                    xlist args, srcloc loc);
static xexpr x_index(pstate *ps, xexpr operand, srcloc bracket, xexpr index, srcloc loc);
static xexpr x_aggregate(pstate *ps, expr_kind kind, xlist items, srcloc loc);
static xexpr x_nest(pstate *ps, xexpr inner, srcloc open);
static xchain x_chain(pstate *ps, xchain chain, expr_op op, srcloc oploc);
static xexpr x_prefixed(pstate *ps, xchain chain, xexpr operand, bool negation, srcloc loc);
static bool xlist_push(pstate *ps, xlist *l, xexpr x);

static const type *resolve_type(pstate *ps, const char *name, srcloc loc, const type *a, const type *b,
                                int nargs);
static const char *unquoted_alias(pstate *ps, const char *path);
static void add_field(pstate *ps, xpath path, srcloc path_loc, const type *ty, bool optional, bool clock,
                      srcloc span);
static void add_item(pstate *ps, struct rule_acc *acc, struct rule_item *it);
static void finish_rule(pstate *ps, const char *id, srcloc id_loc, struct rule_acc *acc, srcloc span);
}

%initial-action {
  @$.src = ps->src;
  @$.line = @$.end_line = 1;
  @$.col = @$.end_col = 1;
}

/* The entry points (never produced by the scanner). */
%token START_FILE START_EXPR

/* Punctuation. The aliases are what messages show. */
%token LBRACE "'{'" RBRACE "'}'" LPAREN "'('" RPAREN "')'" LBRACKET "'['" RBRACKET "']'"
%token COMMA "','" COLON "':'" DOT "'.'" QUESTION "'?'" AT "'@'" ASSIGN "'='" ARROW "'->'"
%token PLUS "'+'" MINUS "'-'" STAR "'*'" SLASH "'/'" PERCENT "'%'" BANG "'!'"
%token EQ "'=='" NE "'!='" LT "'<'" LE "'<='" GT "'>'" GE "'>='" AND "'&&'" OR "'||'"

/* The policy words: keywords where a declaration, setting or rule item can
 * begin, identifiers inside expressions. (The order of the words below is
 * used: POLICY..FLAGGED are the words `ident` takes, POLICY..NUL all words.) */
%token <name> POLICY "'policy'" VERSION "'version'" DEFAULT "'default'" COMBINE "'combine'"
%token <name> ON_ERROR "'on_error'" ON_STORE_ERROR "'on_store_error'" INPUT "'input'"
%token <name> EXTERN "'extern'" FN "'fn'" FROM "'from'" SYMBOL "'symbol'" COUNTER "'counter'"
%token <name> KEY "'key'" WINDOW "'window'" ADD "'add'" DISTINCT "'distinct'" ON "'on'"
%token <name> RULE "'rule'" CITE "'cite'" REASON "'reason'" THEN "'then'" WHEN "'when'"
%token <name> UNLESS "'unless'" ALLOW "'allow'" DENY "'deny'" THROTTLE "'throttle'" FLAG "'flag'"
%token <name> SUSPEND "'suspend'" RETRY_AFTER "'retry_after'" TEST "'test'" GIVEN "'given'"
%token <name> EXPECT "'expect'" FLAGGED "'flagged'"
/* CEL's reserved words (four of them are policy words too). */
%token <name> AS "'as'" FOR "'for'" IMPORT "'import'" LET "'let'"
%token <name> BREAK "'break'" CONST "'const'" CONTINUE "'continue'" ELSE "'else'"
%token <name> FUNCTION "'function'" IF "'if'" LOOP "'loop'" PACKAGE "'package'"
%token <name> NAMESPACE "'namespace'" RETURN "'return'" VAR "'var'" VOID "'void'" WHILE "'while'"
%token <name> IN "'in'" TRUE "'true'" FALSE "'false'" NUL "'null'"

%token <name> IDENT "an identifier"
%token <name> BQNAME "a backticked name"
%token <lit> NUMBER "a number" STRING "a string" BYTES "a bytes literal"
/* A character the scanner could not read (already reported). */
%token INVALID "invalid character"

%type <name> ident selector setting_name
%type <x> expr or_expr and_expr rel_expr add_expr mul_expr unary member primary literal
%type <xl> args exprs map_inits
%type <chain> nots negs
%type <op> relop
%type <path> path
%type <ty> type
%type <flag> opt_optional opt_clock
%type <params> params param_list
%type <from> extern_from
%type <amount> counter_amount
%type <effects> counter_on effect_list
%type <eff> effect expect_effect
%type <item> item effect_clause
%type <racc> items
%type <tacc> steps
%type <expects> expects
%type <expect> expect_clause
%type <sacc> settings
%type <setval> setting_value
%type <lit> rule_head test_head policy_head

%%

start
  : START_FILE file
  | START_EXPR expr               { $2 = x_unary_check(ps, $2); ps->result = $2.e; }
  ;

file
  : %empty
  | file decl
  | file error                    { ps->nbrackets = ps->expr_brackets = 0; }
  ;

decl
  : policy_decl
  | import_decl
  | input_decl
  | let_decl
  | extern_decl
  | counter_decl
  | rule_decl
  | test_decl
  ;

/* ---- policy header ------------------------------------------------------- */

policy_decl
  : policy_head settings RBRACE {
      policy_file *f = ps->file;
      if (f->has_header) {
        parse_error_at(ps, @1, "a second `policy` header (the first is at line %d)", ps->header_loc.line);
      } else if (!span_has_error(ps, @1)) {
        f->has_header = true;
        f->name = $1.v.s;
        f->header_loc = @1;
        ps->header_loc = @1;
        f->settings = $2->v;
        f->nsettings = $2->n;
      }
    }
  ;

policy_head
  : kw_policy STRING LBRACE          { $$ = $2; @$.end_line = @2.end_line; @$.end_col = @2.end_col; }
  ;

settings
  : %empty                        { CHECK($$ = ps_alloc(ps, sizeof *$$)); }
  | settings setting_name setting_value {
      $$ = $1;
      /* (a setting read from the few tokens after an error is likely debris) */
      if (!YYRECOVERING() && !span_has_error(ps, (srcloc){@2.src, @2.line, @2.col, @3.end_line, @3.end_col})) {
        setting *s = PUSH(ps, $$->v, $$->n, $$->cap);
        CHECK(s);
        s->name = $2;
        s->loc = @2;
        s->word = $3.word;
        s->string = $3.string;
        s->value_loc = @3;
      }
    }
  | settings error                { $$ = $1; brackets_drop_to_decl(ps); }
  ;

/* Setting names are checked later (with a did-you-mean). */
setting_name
  : IDENT | VERSION | DEFAULT | COMBINE | ON_ERROR | ON_STORE_ERROR
  ;

setting_value
  : ident                         { $$.word = $1; $$.string = NULL; }
  | STRING                        { $$.word = NULL; $$.string = $1.v.s; }
  ;

/* ---- import ----------------------------------------------------------------- */

import_decl
  : kw_import STRING {
      if (!span_has_error(ps, @$)) {
        import_decl *im = PUSH(ps, ps->file->imports, ps->file->nimports, ps->cap_imports);
        CHECK(im);
        im->path = $2.v.s;
        CHECK(im->alias = unquoted_alias(ps, $2.v.s));
        im->loc = im->alias_loc = @2;
      }
    }
  | kw_import STRING AS ident {
      if (!span_has_error(ps, @$)) {
        import_decl *im = PUSH(ps, ps->file->imports, ps->file->nimports, ps->cap_imports);
        CHECK(im);
        im->path = $2.v.s;
        im->alias = $4;
        im->loc = @2;
        im->alias_loc = @4;
      }
    }
  ;

/* ---- input ------------------------------------------------------------------- */

input_decl
  : kw_input LBRACE fields RBRACE
  ;

fields
  : %empty
  | fields path type opt_optional opt_clock {
      srcloc span = @2;
      span.end_line = @5.end_line;
      span.end_col = @5.end_col;
      /* a field read from the few tokens after an error is likely debris */
      if (!YYRECOVERING()) add_field(ps, $2, @2, $3, $4, $5, span);
      CHECK(!ps->oom);
    }
  | fields error                  { brackets_drop_to_decl(ps); }
  ;

/* The first segment is an identifier; after a dot any word is a field name
 * (true false null in excepted), or a backticked name. */
path
  : ident                         { $$ = (xpath){0}; const char **s = PUSH(ps, $$.segs, $$.n, $$.cap); CHECK(s); *s = $1; }
  | path DOT selector             { $$ = $1; const char **s = PUSH(ps, $$.segs, $$.n, $$.cap); CHECK(s); *s = $3; }
  | path DOT BQNAME               { $$ = $1; const char **s = PUSH(ps, $$.segs, $$.n, $$.cap); CHECK(s); *s = $3; }
  ;

opt_optional
  : %empty                        { $$ = false; }
  | QUESTION                      { $$ = true; }
  ;

opt_clock
  : %empty                        { $$ = false; }
  | AT IDENT {
      $$ = true;
      if (strcmp($2, "clock") != 0)
        parse_error_at(ps, @2, "unknown attribute `@%s`; the only attribute is `@clock`", $2);
    }
  ;

type
  : IDENT                         { $$ = resolve_type(ps, $1, @1, NULL, NULL, 0); }
  | IDENT LPAREN type RPAREN      { $$ = resolve_type(ps, $1, @1, $3, NULL, 1); CHECK($$); }
  | IDENT LPAREN type COMMA type RPAREN { $$ = resolve_type(ps, $1, @1, $3, $5, 2); CHECK($$); }
  ;

/* ---- let, extern, counter ------------------------------------------------------- */

let_decl
  : kw_let ident ASSIGN expr {
      $4 = x_unary_check(ps, $4);
      if (!span_has_error(ps, @$)) {
        let_decl *l = PUSH(ps, ps->file->lets, ps->file->nlets, ps->cap_lets);
        CHECK(l);
        l->name = $2;
        l->loc = @2;
        l->value = $4.e;
      }
    }
  ;

extern_decl
  : kw_extern FN ident LPAREN params RPAREN ARROW type extern_from {
      if (!span_has_error(ps, @$)) {
        extern_decl *x = PUSH(ps, ps->file->externs, ps->file->nexterns, ps->cap_externs);
        CHECK(x);
        x->name = $3;
        x->loc = @3;
        x->params = $5.v;
        x->nparams = $5.n;
        x->ret = $8;
        x->lib = $9.lib;
        x->symbol = $9.symbol;
        x->lib_loc = $9.lib_loc;
      }
    }
  ;

params
  : %empty                        { $$ = (xparams){0}; }
  | param_list
  ;

param_list
  : ident COLON type              { $$ = (xparams){0}; param_decl *p = PUSH(ps, $$.v, $$.n, $$.cap); CHECK(p); *p = (param_decl){$1, $3, @1}; }
  | param_list COMMA ident COLON type { $$ = $1; param_decl *p = PUSH(ps, $$.v, $$.n, $$.cap); CHECK(p); *p = (param_decl){$3, $5, @3}; }
  ;

extern_from
  : %empty                        { $$ = (xfrom){NULL, NULL, @$}; }
  | FROM STRING                   { $$ = (xfrom){$2.v.s, NULL, @2}; }
  | FROM STRING SYMBOL STRING     { $$ = (xfrom){$2.v.s, $4.v.s, @2}; }
  ;

counter_decl
  : kw_counter ident KEY expr WINDOW expr counter_amount counter_on {
      $4 = x_unary_check(ps, $4);
      $6 = x_unary_check(ps, $6);
      if (!span_has_error(ps, @$)) {
        counter_decl *k = PUSH(ps, ps->file->counters, ps->file->ncounters, ps->cap_counters);
        CHECK(k);
        k->name = $2;
        k->loc = @2;
        k->key = $4.e;
        k->window = $6.e;
        k->add = $7.add;
        k->distinct = $7.distinct;
        k->on = $8.v;
        k->on_locs = $8.locs;
        k->non = $8.n;
      }
    }
  ;

counter_amount
  : %empty                        { $$ = (xamount){NULL, NULL}; }
  | ADD expr                      { $2 = x_unary_check(ps, $2); $$ = (xamount){$2.e, NULL}; }
  | DISTINCT expr                 { $2 = x_unary_check(ps, $2); $$ = (xamount){NULL, $2.e}; }
  ;

counter_on
  : %empty                        { $$ = (xeffects){0}; }
  | ON effect_list                { $$ = $2; }
  ;

effect_list
  : effect {
      $$ = (xeffects){0};
      effect_kind *e = PUSH(ps, $$.v, $$.n, $$.cap);
      CHECK(e);
      *e = $1;
      int n = $$.n - 1;
      srcloc *l = PUSH(ps, $$.locs, n, $$.cap_locs);
      CHECK(l);
      *l = @1;
    }
  | effect_list COMMA effect {
      $$ = $1;
      effect_kind *e = PUSH(ps, $$.v, $$.n, $$.cap);
      CHECK(e);
      *e = $3;
      int n = $$.n - 1;
      srcloc *l = PUSH(ps, $$.locs, n, $$.cap_locs);
      CHECK(l);
      *l = @3;
    }
  ;

effect
  : ALLOW                         { $$ = EFF_ALLOW; }
  | DENY                          { $$ = EFF_DENY; }
  | FLAG                          { $$ = EFF_FLAG; }
  | THROTTLE                      { $$ = EFF_THROTTLE; }
  | SUSPEND                       { $$ = EFF_SUSPEND; }
  ;

/* ---- rules ----------------------------------------------------------------------------- */

rule_decl
  : rule_head items RBRACE        { finish_rule(ps, $1.v.s, @1, $2, @$); CHECK(!ps->oom); }
  ;

rule_head
  : kw_rule STRING LBRACE            { $$ = $2; @$ = @2; }
  ;

items
  : %empty                        { CHECK($$ = ps_alloc(ps, sizeof *$$)); }
  | items item                    { $$ = $1; if (!span_has_error(ps, @2)) add_item(ps, $$, $2); CHECK(!ps->oom); }
  | items error                   { $$ = $1; brackets_drop_to_decl(ps); }
  ;

item
  : kw_cite STRING {
      CHECK($$ = ps_alloc(ps, sizeof *$$));
      $$->kind = ITEM_CITE;
      $$->loc = @1;
      $$->cite = $2.v.s;
    }
  | kw_reason expr {
      $2 = x_unary_check(ps, $2);
      CHECK($$ = ps_alloc(ps, sizeof *$$));
      $$->kind = ITEM_REASON;
      $$->loc = @1;
      $$->reason = $2.e;
    }
  | effect_clause WHEN expr {
      $3 = x_unary_check(ps, $3);
      $$ = $1;
      $$->when = $3.e;
    }
  | effect_clause WHEN expr UNLESS expr {
      $3 = x_unary_check(ps, $3);
      $5 = x_unary_check(ps, $5);
      $$ = $1;
      $$->when = $3.e;
      $$->unless = $5.e;
    }
  | kw_then ident LPAREN args RPAREN {
      CHECK($$ = ps_alloc(ps, sizeof *$$));
      $$->kind = ITEM_THEN;
      $$->loc = @1;
      $$->then = (then_clause){$2, @2, $4.v, $4.n};
    }
  ;

effect_clause
  : kw_allow                      { CHECK($$ = ps_alloc(ps, sizeof *$$)); $$->kind = ITEM_EFFECT; $$->loc = @1; $$->effect = EFF_ALLOW; }
  | kw_deny                       { CHECK($$ = ps_alloc(ps, sizeof *$$)); $$->kind = ITEM_EFFECT; $$->loc = @1; $$->effect = EFF_DENY; }
  | kw_flag                       { CHECK($$ = ps_alloc(ps, sizeof *$$)); $$->kind = ITEM_EFFECT; $$->loc = @1; $$->effect = EFF_FLAG; }
  | kw_throttle                   { CHECK($$ = ps_alloc(ps, sizeof *$$)); $$->kind = ITEM_EFFECT; $$->loc = @1; $$->effect = EFF_THROTTLE; }
  | kw_throttle RETRY_AFTER expr {
      $3 = x_unary_check(ps, $3);
      CHECK($$ = ps_alloc(ps, sizeof *$$));
      $$->kind = ITEM_EFFECT;
      $$->loc = @1;
      $$->effect = EFF_THROTTLE;
      $$->retry_after = $3.e;
    }
  | kw_suspend expr FOR expr {
      $2 = x_unary_check(ps, $2);
      $4 = x_unary_check(ps, $4);
      CHECK($$ = ps_alloc(ps, sizeof *$$));
      $$->kind = ITEM_EFFECT;
      $$->loc = @1;
      $$->effect = EFF_SUSPEND;
      $$->suspend_key = $2.e;
      $$->suspend_for = $4.e;
    }
  ;

/* ---- tests -------------------------------------------------------------------------- */

test_decl
  : test_head steps RBRACE {
      if (!span_has_error(ps, @$)) {
        if ($2->n == 0) {
          parse_error_at(ps, @1, "test \"%s\" has no `given` step", $1.v.s);
        } else {
          test_decl *t = PUSH(ps, ps->file->tests, ps->file->ntests, ps->cap_tests);
          CHECK(t);
          t->name = $1.v.s;
          t->loc = @1;
          t->steps = $2->steps;
          t->nsteps = $2->n;
        }
      }
    }
  ;

test_head
  : kw_test STRING LBRACE            { $$ = $2; @$ = @2; }
  ;

steps
  : %empty                        { CHECK($$ = ps_alloc(ps, sizeof *$$)); }
  | steps kw_given expr expects {
      $3 = x_unary_check(ps, $3);
      $$ = $1;
      test_step *s = PUSH(ps, $$->steps, $$->n, $$->cap);
      CHECK(s);
      s->given = $3.e;
      s->loc = @2;
      s->expects = $4.v;
      s->nexpects = $4.n;
    }
  | steps error                   { $$ = $1; brackets_drop_to_decl(ps); }
  ;

expects
  : expect_clause                 { $$ = (xexpects){0}; expect_clause *x = PUSH(ps, $$.v, $$.n, $$.cap); CHECK(x); *x = $1; }
  | expects expect_clause         { $$ = $1; expect_clause *x = PUSH(ps, $$.v, $$.n, $$.cap); CHECK(x); *x = $2; }
  ;

expect_clause
  : kw_expect expect_effect        { $$ = (expect_clause){false, $2, NULL, @$}; }
  | kw_expect expect_effect STRING { $$ = (expect_clause){false, $2, $3.v.s, @$}; }
  | kw_expect FLAGGED STRING      { $$ = (expect_clause){true, EFF_FLAG, $3.v.s, @$}; }
  ;

/* `expect flag` parses: the checker explains `expect flagged`. */
expect_effect
  : ALLOW                         { $$ = EFF_ALLOW; }
  | DENY                          { $$ = EFF_DENY; }
  | THROTTLE                      { $$ = EFF_THROTTLE; }
  | SUSPEND                       { $$ = EFF_SUSPEND; }
  | FLAG                          { $$ = EFF_FLAG; }
  ;

/* ---- keywords that begin a declaration or an item ----------------------------------------
 * Once one is read after a syntax error, the parser is back on track:
 * yyerrok lets the next error be reported (bison waits for three tokens). */

kw_policy: POLICY { yyerrok; } ;
kw_import: IMPORT { yyerrok; } ;
kw_input: INPUT { yyerrok; } ;
kw_let: LET { yyerrok; } ;
kw_extern: EXTERN { yyerrok; } ;
kw_counter: COUNTER { yyerrok; } ;
kw_rule: RULE { yyerrok; } ;
kw_test: TEST { yyerrok; } ;
kw_cite: CITE { yyerrok; } ;
kw_reason: REASON { yyerrok; } ;
kw_then: THEN { yyerrok; } ;
kw_allow: ALLOW { yyerrok; } ;
kw_deny: DENY { yyerrok; } ;
kw_flag: FLAG { yyerrok; } ;
kw_throttle: THROTTLE { yyerrok; } ;
kw_suspend: SUSPEND { yyerrok; } ;
kw_given: GIVEN { yyerrok; } ;
kw_expect: EXPECT { yyerrok; } ;

/* ---- names ------------------------------------------------------------------------------- */

ident
  : IDENT
  | POLICY | VERSION | DEFAULT | COMBINE | ON_ERROR | ON_STORE_ERROR | INPUT | EXTERN | FN | FROM
  | SYMBOL | COUNTER | KEY | WINDOW | ADD | DISTINCT | ON | RULE | CITE | REASON | THEN | WHEN
  | UNLESS | ALLOW | DENY | THROTTLE | FLAG | SUSPEND | RETRY_AFTER | TEST | GIVEN | EXPECT | FLAGGED
  ;

selector
  : ident
  | AS | FOR | IMPORT | LET | BREAK | CONST | CONTINUE | ELSE | FUNCTION | IF | LOOP | PACKAGE
  | NAMESPACE | RETURN | VAR | VOID | WHILE
  ;

/* ---- CEL expressions ------------------------------------------------------------------------
 * Expr = ConditionalOr ["?" ConditionalOr ":" Expr]: `a ? b ? c : d : e`
 * needs parentheses, as in CEL. */

expr
  : or_expr
  | or_expr QUESTION or_expr COLON expr { $$ = x_cond(ps, $1, @2, $3, $5, @$); CHECK($$.e); }
  ;

or_expr
  : and_expr
  | or_expr OR and_expr           { $$ = x_binary(ps, $1, OP_OR, @2, $3, @$); CHECK($$.e); }
  ;

and_expr
  : rel_expr
  | and_expr AND rel_expr         { $$ = x_binary(ps, $1, OP_AND, @2, $3, @$); CHECK($$.e); }
  ;

rel_expr
  : add_expr
  | rel_expr relop add_expr       { $$ = x_binary(ps, $1, $2, @2, $3, @$); CHECK($$.e); }
  ;

relop
  : EQ { $$ = OP_EQ; } | NE { $$ = OP_NE; } | LT { $$ = OP_LT; } | LE { $$ = OP_LE; }
  | GT { $$ = OP_GT; } | GE { $$ = OP_GE; } | IN { $$ = OP_IN; }
  ;

add_expr
  : mul_expr
  | add_expr PLUS mul_expr        { $$ = x_binary(ps, $1, OP_ADD, @2, $3, @$); CHECK($$.e); }
  | add_expr MINUS mul_expr       { $$ = x_binary(ps, $1, OP_SUB, @2, $3, @$); CHECK($$.e); }
  ;

mul_expr
  : unary
  | mul_expr STAR unary           { $$ = x_binary(ps, $1, OP_MUL, @2, $3, @$); CHECK($$.e); }
  | mul_expr SLASH unary          { $$ = x_binary(ps, $1, OP_DIV, @2, $3, @$); CHECK($$.e); }
  | mul_expr PERCENT unary        { $$ = x_binary(ps, $1, OP_MOD, @2, $3, @$); CHECK($$.e); }
  ;

/* Unary = Member | "!" {"!"} Member | "-" {"-"} Member: `!-x` is an error. */
unary
  : member                        { $$ = x_unary_check(ps, $1); }
  | nots member                   { $$ = x_prefixed(ps, $1, $2, false, @$); CHECK($$.e); }
  | negs member                   { $$ = x_prefixed(ps, $1, $2, true, @$); CHECK($$.e); }
  ;

nots
  : BANG                          { $$ = x_chain(ps, (xchain){0}, OP_NOT, @1); CHECK($$.tail); }
  | nots BANG                     { $$ = x_chain(ps, $1, OP_NOT, @2); CHECK($$.tail); }
  ;

negs
  : MINUS                         { $$ = x_chain(ps, (xchain){0}, OP_NEG, @1); CHECK($$.tail); }
  | negs MINUS                    { $$ = x_chain(ps, $1, OP_NEG, @2); CHECK($$.tail); }
  ;

member
  : primary
  | member DOT selector           { $$ = x_select(ps, $1, $3, @3, @$); CHECK($$.e); }
  | member DOT BQNAME             { $$ = x_select(ps, $1, $3, @3, @$); CHECK($$.e); }
  | member DOT selector LPAREN args RPAREN {
      $1 = x_unary_check(ps, $1);
      $$ = x_call(ps, $1.e, $1.depth, $3, @3, $5, @$);
      CHECK($$.e);
    }
  | member LBRACKET expr RBRACKET { $$ = x_index(ps, $1, @2, $3, @$); CHECK($$.e); }
  ;

primary
  : ident                         { $$ = x_ident(ps, $1, @1); CHECK($$.e); }
  | DOT ident {
      const char *name = ps_concat(ps, ".", $2);
      CHECK(name);
      $$ = x_ident(ps, name, @$);
      CHECK($$.e);
    }
  | ident LPAREN args RPAREN      { $$ = x_call(ps, NULL, 0, $1, @1, $3, @$); CHECK($$.e); }
  | DOT ident LPAREN args RPAREN {
      const char *name = ps_concat(ps, ".", $2);
      CHECK(name);
      srcloc name_loc = @1;
      name_loc.end_line = @2.end_line;
      name_loc.end_col = @2.end_col;
      $$ = x_call(ps, NULL, 0, name, name_loc, $4, @$);
      CHECK($$.e);
    }
  | LPAREN expr RPAREN            { $$ = x_nest(ps, $2, @1); }
  | LBRACKET RBRACKET             { $$ = x_aggregate(ps, E_LIST, (xlist){0}, @$); CHECK($$.e); }
  | LBRACKET exprs RBRACKET       { $$ = x_aggregate(ps, E_LIST, $2, @$); CHECK($$.e); }
  | LBRACKET exprs COMMA RBRACKET { $$ = x_aggregate(ps, E_LIST, $2, @$); CHECK($$.e); }
  | LBRACE RBRACE                 { $$ = x_aggregate(ps, E_MAP, (xlist){0}, @$); CHECK($$.e); }
  | LBRACE map_inits RBRACE       { $$ = x_aggregate(ps, E_MAP, $2, @$); CHECK($$.e); }
  | LBRACE map_inits COMMA RBRACE { $$ = x_aggregate(ps, E_MAP, $2, @$); CHECK($$.e); }
  | literal
  ;

args
  : %empty                        { $$ = (xlist){0}; }
  | exprs
  ;

exprs
  : expr                          { $$ = (xlist){0}; CHECK(xlist_push(ps, &$$, $1)); }
  | exprs COMMA expr              { $$ = $1; CHECK(xlist_push(ps, &$$, $3)); }
  ;

map_inits
  : expr COLON expr               { $$ = (xlist){0}; CHECK(xlist_push(ps, &$$, $1) && xlist_push(ps, &$$, $3)); }
  | map_inits COMMA expr COLON expr { $$ = $1; CHECK(xlist_push(ps, &$$, $3) && xlist_push(ps, &$$, $5)); }
  ;

literal
  : NUMBER                        { $$ = x_literal(ps, $1, @1); CHECK($$.e); }
  | STRING                        { $$ = x_literal(ps, $1, @1); CHECK($$.e); }
  | BYTES                         { $$ = x_literal(ps, $1, @1); CHECK($$.e); }
  | TRUE                          { $$ = x_literal(ps, (lit_token){cv_bool(true), false}, @1); CHECK($$.e); }
  | FALSE                         { $$ = x_literal(ps, (lit_token){cv_bool(false), false}, @1); CHECK($$.e); }
  | NUL                           { $$ = x_literal(ps, (lit_token){cv_null(), false}, @1); CHECK($$.e); }
  ;

%%

/* ---- memory ---------------------------------------------------------------------- */

static void *ps_alloc(pstate *ps, size_t n) {
  void *p = arena_alloc(ps->a, n);
  if (!p) {
    ps->oom = true;
    return NULL;
  }
  memset(p, 0, n);
  return p;
}

/* The array moved to room for twice as many (*cap updated), or NULL. */
static void *grow_array(pstate *ps, void *arr, int *cap, size_t elsize) {
  int ncap = *cap ? *cap * 2 : 4;
  void *p = ncap > 0 ? arena_grow(ps->a, arr, (size_t)*cap * elsize, (size_t)ncap * elsize) : NULL;
  if (!p) {
    ps->oom = true;
    return NULL;
  }
  *cap = ncap;
  return p;
}

static const char *ps_concat(pstate *ps, const char *a, const char *b) {
  size_t na = strlen(a), nb = strlen(b);
  char *s = arena_alloc(ps->a, na + nb + 1);
  if (!s) {
    ps->oom = true;
    return NULL;
  }
  memcpy(s, a, na);
  memcpy(s + na, b, nb + 1);
  return s;
}

/* ---- errors ------------------------------------------------------------------------ */

static bool pos_before(int line1, int col1, int line2, int col2) {
  return line1 < line2 || (line1 == line2 && col1 < col2);
}

/* Remembers where an error is, so that the declaration holding it can be
 * left out. */
static void record_error(pstate *ps, int line, int col) {
  srcloc *slot = PUSH(ps, ps->errors, ps->nerrors, ps->cap_errors);
  if (slot) *slot = (srcloc){ps->src, line, col, line, col};
}

void parse_error_at(pstate *ps, srcloc loc, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  diag_add(ps->d, DIAG_ERROR, loc, "%s", msg);
  record_error(ps, loc.line, loc.col);
}

/* Was an error reported inside `span` (an error at its very end belongs to
 * what follows)? Errors are recorded in source order but for the last few
 * (the scanner runs a token ahead of the parser's actions), so the search
 * stops at the first older one before the span. */
static bool span_has_error(const pstate *ps, srcloc span) {
  for (int i = ps->nerrors - 1; i >= 0; i--) {
    const srcloc *e = &ps->errors[i];
    bool before = pos_before(e->line, e->col, span.line, span.col);
    if (!before && pos_before(e->line, e->col, span.end_line, span.end_col)) return true;
    if (before && i < ps->nerrors - 4) break;
  }
  return false;
}

/* ---- brackets ------------------------------------------------------------------------ */

static bool is_decl_keyword(int kind) {
  switch (kind) {
  case TK_POLICY: case TK_IMPORT: case TK_INPUT: case TK_LET:
  case TK_EXTERN: case TK_COUNTER: case TK_RULE: case TK_TEST:
    return true;
  default:
    return false;
  }
}

bool parse_bracket_open(pstate *ps, char c, srcloc loc) {
  open_bracket b = {c, false, loc, NULL};
  if (c == '{') {
    /* The braces of `rule "x" {`, `test "x" {`, `policy "x" {`, `input {`. */
    const scanned_token *last = &ps->recent[0], *before = &ps->recent[1];
    if (last->kind == TK_STRING && before->kind == TK_RULE) b.label = "rule";
    else if (last->kind == TK_STRING && before->kind == TK_TEST) b.label = "test";
    else if (last->kind == TK_STRING && before->kind == TK_POLICY) b.label = "policy";
    else if (last->kind == TK_INPUT) b.label = "the input block";
    if (b.label) {
      b.decl = true;
      if (last->kind == TK_STRING) {
        const char *name = last->value.lit.v.s;
        char buf[200];
        snprintf(buf, sizeof buf, "%s \"%.120s%s\"", b.label, name, strlen(name) > 120 ? "..." : "");
        b.label = arena_strndup(ps->a, buf, strlen(buf));
        if (!b.label) b.label = "a declaration";
      }
    }
  }
  if (!b.decl && ps->expr_brackets >= PARSE_MAX_DEPTH) {
    parse_error_at(ps, loc, "expression nested too deeply (the limit is %d levels)", PARSE_MAX_DEPTH);
    ps->stop = true;
    return false;
  }
  open_bracket *slot = PUSH(ps, ps->brackets, ps->nbrackets, ps->cap_brackets);
  if (!slot) {
    ps->stop = true;
    return false;
  }
  *slot = b;
  if (!b.decl) ps->expr_brackets++;
  return true;
}

void parse_bracket_close(pstate *ps, char c) {
  char open = c == ')' ? '(' : c == ']' ? '[' : '{';
  if (ps->nbrackets > 0 && ps->brackets[ps->nbrackets - 1].c == open) {
    ps->nbrackets--;
    if (!ps->brackets[ps->nbrackets].decl) ps->expr_brackets--;
  }
}

/* After recovery inside a block, the brackets opened since are forgotten. */
static void brackets_drop_to_decl(pstate *ps) {
  while (ps->nbrackets > 0 && !ps->brackets[ps->nbrackets - 1].decl) {
    ps->nbrackets--;
    ps->expr_brackets--;
  }
}

/* ---- the scanner's side ---------------------------------------------------------------- */

static int clause_yylex(CLAUSE_YYSTYPE *lval, srcloc *lloc, pstate *ps) {
  int kind;
  if (ps->start_token) {
    kind = ps->start_token;
    ps->start_token = 0;
    *lloc = (srcloc){ps->src, 1, 1, 1, 1};
    return kind;
  }
  if (ps->inject_close) {
    /* Close the block the missing '}' left open, and every bracket in it. */
    ps->inject_close = false;
    while (ps->nbrackets > 0) {
      open_bracket *b = &ps->brackets[--ps->nbrackets];
      if (b->decl) break;
      ps->expr_brackets--;
    }
    *lloc = ps->replay[0].loc;
    lloc->end_line = lloc->line;
    lloc->end_col = lloc->col;
    return TK_RBRACE;
  }
  scanned_token t;
  if (ps->next_replay < ps->nreplay) {
    t = ps->replay[ps->next_replay++];
  } else if (ps->stop) {
    t = (scanned_token){TK_YYEOF, {0}, {ps->src, ps->line, ps->col, ps->line, ps->col}, ps->off, 0};
  } else {
    t.kind = clause_scan(&t.value, &t.loc, ps->scanner);
    if (ps->stop) t.kind = TK_YYEOF;
    t.off = ps->tok_off;
    t.len = ps->tok_len;
  }
  ps->recent[1] = ps->recent[0];
  ps->recent[0] = t;
  *lval = t.value;
  *lloc = t.loc;
  return t.kind;
}

/* Bison's own failures: a parse stack too deep for the nesting, or memory. */
static void clause_yyerror(srcloc *loc, pstate *ps, const char *msg) {
  (void)msg;
  if (ps->oom) return; /* reported once, at the end */
  parse_error_at(ps, *loc, "expression nested too deeply (the limit is %d levels)", PARSE_MAX_DEPTH);
}

/* ---- syntax error messages ------------------------------------------------------------ */

static bool is_decl_symbol(yysymbol_kind_t k) {
  switch (k) {
  case YYSYMBOL_POLICY: case YYSYMBOL_IMPORT: case YYSYMBOL_INPUT: case YYSYMBOL_LET:
  case YYSYMBOL_EXTERN: case YYSYMBOL_COUNTER: case YYSYMBOL_RULE: case YYSYMBOL_TEST:
    return true;
  default:
    return false;
  }
}

static bool is_reserved(yysymbol_kind_t k) {
  switch (k) {
  case YYSYMBOL_AS: case YYSYMBOL_FOR: case YYSYMBOL_IMPORT: case YYSYMBOL_LET:
  case YYSYMBOL_BREAK: case YYSYMBOL_CONST: case YYSYMBOL_CONTINUE: case YYSYMBOL_ELSE:
  case YYSYMBOL_FUNCTION: case YYSYMBOL_IF: case YYSYMBOL_LOOP: case YYSYMBOL_PACKAGE:
  case YYSYMBOL_NAMESPACE: case YYSYMBOL_RETURN: case YYSYMBOL_VAR: case YYSYMBOL_VOID:
  case YYSYMBOL_WHILE:
    return true;
  default:
    return false;
  }
}

/* The policy words that `ident` accepts. */
static bool is_ident_word(yysymbol_kind_t k) {
  return k >= YYSYMBOL_POLICY && k <= YYSYMBOL_FLAGGED;
}

static bool is_word(yysymbol_kind_t k) {
  return (k >= YYSYMBOL_POLICY && k <= YYSYMBOL_NUL) || k == YYSYMBOL_IDENT;
}

static bool starts_expression(yysymbol_kind_t k) {
  switch (k) {
  case YYSYMBOL_IDENT: case YYSYMBOL_NUMBER: case YYSYMBOL_STRING: case YYSYMBOL_BYTES:
  case YYSYMBOL_TRUE: case YYSYMBOL_FALSE: case YYSYMBOL_NUL:
  case YYSYMBOL_LPAREN: case YYSYMBOL_LBRACKET: case YYSYMBOL_LBRACE:
  case YYSYMBOL_BANG: case YYSYMBOL_MINUS: case YYSYMBOL_DOT:
    return true;
  default:
    return is_ident_word(k);
  }
}

static bool continues_expression(yysymbol_kind_t k) {
  switch (k) {
  case YYSYMBOL_PLUS: case YYSYMBOL_MINUS: case YYSYMBOL_STAR: case YYSYMBOL_SLASH:
  case YYSYMBOL_PERCENT: case YYSYMBOL_EQ: case YYSYMBOL_NE: case YYSYMBOL_LT: case YYSYMBOL_LE:
  case YYSYMBOL_GT: case YYSYMBOL_GE: case YYSYMBOL_IN: case YYSYMBOL_AND: case YYSYMBOL_OR:
  case YYSYMBOL_QUESTION: case YYSYMBOL_DOT: case YYSYMBOL_LBRACKET: case YYSYMBOL_LPAREN:
    return true;
  default:
    return false;
  }
}

static bool is_effect_word(yysymbol_kind_t k) {
  return k == YYSYMBOL_ALLOW || k == YYSYMBOL_DENY || k == YYSYMBOL_FLAG || k == YYSYMBOL_THROTTLE ||
         k == YYSYMBOL_SUSPEND;
}

/* A token's name in messages: its alias without bison's double quotes. */
static void put_symbol(outbuf *o, yysymbol_kind_t k) {
  const char *s = yysymbol_name(k);
  size_t n = strlen(s);
  if (n >= 2 && s[0] == '"' && s[n - 1] == '"') ob_put(o, s + 1, n - 2);
  else ob_puts(o, s);
}

/* The unexpected token, as written where that helps. */
static void put_unexpected(outbuf *o, const pstate *ps, yysymbol_kind_t k) {
  const char *text = ps->src->text + ps->recent[0].off;
  size_t n = ps->recent[0].len;
  for (size_t i = 0; i < n; i++)
    if (text[i] == '\n' || text[i] == '\r') n = i;
  bool cut = n > 40;
  if (cut) {
    n = 37;
    while (n > 0 && ((unsigned char)text[n] & 0xc0) == 0x80) n--; /* whole characters */
  }
  switch (k) {
  case YYSYMBOL_YYEOF:
    ob_puts(o, "end of file");
    return;
  case YYSYMBOL_IDENT:
    ob_printf(o, "identifier `%.*s`", (int)n, text);
    return;
  case YYSYMBOL_NUMBER: {
    bool hex = n > 1 && text[0] == '0' && text[1] == 'x';
    bool duration = !hex && n > 0 && strchr("smhd", text[n - 1]) != NULL;
    ob_printf(o, "%s `%.*s%s`", duration ? "duration" : "number", (int)n, text, cut ? "..." : "");
    return;
  }
  case YYSYMBOL_BQNAME:
    ob_printf(o, "backticked name %.*s%s", (int)n, text, cut ? "..." : "");
    return;
  case YYSYMBOL_STRING:
  case YYSYMBOL_BYTES:
    ob_printf(o, "%s %.*s%s", k == YYSYMBOL_STRING ? "string" : "bytes", (int)n, text, cut ? "..." : "");
    return;
  default:
    put_symbol(o, k);
  }
}

/* Lists alternatives as "A, B or C". */
typedef struct alternatives {
  const char *text[16];
  yysymbol_kind_t sym[16];
  int n;
} alternatives;

static void alt_add(alternatives *a, const char *text, yysymbol_kind_t sym) {
  if (a->n < 16) {
    a->text[a->n] = text;
    a->sym[a->n] = sym;
    a->n++;
  }
}

static const open_bracket *innermost_open(const pstate *ps, const srcloc *la) {
  for (int i = ps->nbrackets - 1; i >= 0; i--) {
    const open_bracket *b = &ps->brackets[i];
    if (b->loc.line == la->line && b->loc.col == la->col) continue; /* the lookahead itself */
    return b;
  }
  return NULL;
}

static yysymbol_kind_t closer_of(char c) {
  return c == '(' ? YYSYMBOL_RPAREN : c == '[' ? YYSYMBOL_RBRACKET : YYSYMBOL_RBRACE;
}

static void put_close_note(outbuf *o, const open_bracket *b) {
  if (b->decl) ob_printf(o, " (to close '%c' of %s at line %d)", b->c, b->label, b->loc.line);
  else ob_printf(o, " (to close '%c' at line %d)", b->c, b->loc.line);
}

/* A declaration inside an unclosed block: after the recovery has thrown
 * its first tokens away, hand the parser the missing '}' and then those
 * tokens again, so the declaration parses. It shows as a declaration
 * keyword where the block cannot take one, or, in an input block where
 * `rule` and `test` could begin a field path, as `rule "x"`. */
static const open_bracket *replay_after_missing_brace(pstate *ps) {
  if (ps->next_replay < ps->nreplay) return NULL; /* replaying already */
  const open_bracket *block = NULL;
  for (int i = ps->nbrackets - 1; i >= 0 && !block; i--)
    if (ps->brackets[i].decl) block = &ps->brackets[i];
  if (!block) return NULL;
  bool input_block = strcmp(block->label, "the input block") == 0;
  const scanned_token *last = &ps->recent[0], *before = &ps->recent[1];
  ps->nreplay = ps->next_replay = 0;
  if (is_decl_keyword(last->kind) && (!input_block || last->kind == TK_IMPORT || last->kind == TK_LET)) {
    ps->replay[ps->nreplay++] = *last;
  } else if (input_block && last->kind == TK_STRING &&
             (before->kind == TK_RULE || before->kind == TK_TEST || before->kind == TK_POLICY)) {
    ps->replay[ps->nreplay++] = *before;
    ps->replay[ps->nreplay++] = *last;
  }
  ps->inject_close = ps->nreplay > 0;
  return ps->inject_close ? block : NULL;
}

static int yyreport_syntax_error(const yypcontext_t *ctx, pstate *ps) {
  yysymbol_kind_t la = yypcontext_token(ctx);
  const srcloc *loc = yypcontext_location(ctx);
  if (la == YYSYMBOL_INVALID || ps->stop || ps->oom) return 0; /* reported already */

  yysymbol_kind_t exp[YYNTOKENS];
  int n = yypcontext_expected_tokens(ctx, exp, YYNTOKENS);
  if (n < 0) return n;
  bool want[YYNTOKENS] = {false};
  for (int i = 0; i < n; i++) want[exp[i]] = true;

  char buf[1024];
  outbuf o;
  ob_init_fixed(&o, buf, sizeof buf);
  ob_puts(&o, "unexpected ");
  put_unexpected(&o, ps, la);

  /* A declaration keyword or the end of the file where a closing bracket
   * would do: the bracket was forgotten. */
  const open_bracket *open = innermost_open(ps, loc);
  bool closer_wanted = open && want[closer_of(open->c)];
  if (closer_wanted && (la == YYSYMBOL_YYEOF || is_decl_keyword(ps->recent[0].kind))) {
    ob_printf(&o, ", expected '%c'", open->c == '(' ? ')' : open->c == '[' ? ']' : '}');
    put_close_note(&o, open);
  } else {
    /* Groups stand for their members: an expression, not every word that
     * can begin one. */
    alternatives alts = {.n = 0}, ordered = {.n = 0};
    bool expression = want[YYSYMBOL_NUMBER]; /* literals begin expressions only */
    if (expression) alt_add(&alts, "an expression", YYSYMBOL_YYEMPTY);
    bool field_name = want[YYSYMBOL_BQNAME];
    if (field_name) alt_add(&alts, "a field name", YYSYMBOL_YYEMPTY);
    bool operator = want[YYSYMBOL_PLUS];
    if (operator) alt_add(&alts, "an operator", YYSYMBOL_YYEMPTY);
    bool words = expression || field_name; /* every word is taken */
    bool declaration = !words && want[YYSYMBOL_POLICY] && want[YYSYMBOL_RULE] && !want[YYSYMBOL_IDENT];
    if (declaration) alt_add(&alts, "a declaration", YYSYMBOL_YYEMPTY);
    bool rule_item = !words && want[YYSYMBOL_CITE] && want[YYSYMBOL_THEN] && want[YYSYMBOL_DENY] && !want[YYSYMBOL_IDENT];
    if (rule_item) alt_add(&alts, "a rule item", YYSYMBOL_YYEMPTY);
    bool setting_name = !words && want[YYSYMBOL_VERSION] && want[YYSYMBOL_IDENT] && !want[YYSYMBOL_WINDOW];
    if (setting_name) alt_add(&alts, "a setting", YYSYMBOL_YYEMPTY);
    bool identifier = !words && !setting_name && want[YYSYMBOL_IDENT];
    if (identifier) /* a lone IDENT is wanted for type names (and after '@') */
      alt_add(&alts, want[YYSYMBOL_WINDOW] || ps->recent[1].kind == TK_AT ? "an identifier" : "a type", YYSYMBOL_YYEMPTY);
    for (int i = 0; i < n; i++) {
      yysymbol_kind_t k = exp[i];
      if (expression && starts_expression(k)) continue;
      if (operator && continues_expression(k)) continue;
      if (declaration && is_decl_symbol(k)) continue;
      if (rule_item && (k == YYSYMBOL_CITE || k == YYSYMBOL_REASON || k == YYSYMBOL_THEN || is_effect_word(k)))
        continue;
      if (setting_name && (k == YYSYMBOL_IDENT || (k >= YYSYMBOL_VERSION && k <= YYSYMBOL_ON_STORE_ERROR))) continue;
      if (field_name && (is_word(k) || k == YYSYMBOL_BQNAME) && k != YYSYMBOL_TRUE && k != YYSYMBOL_FALSE &&
          k != YYSYMBOL_NUL && k != YYSYMBOL_IN)
        continue;
      if (identifier && (k == YYSYMBOL_IDENT || is_ident_word(k))) continue;
      alt_add(&alts, NULL, k);
    }
    /* closing brackets and the end of the file last: "',' or ')'" */
    for (int pass = 0; pass < 2; pass++)
      for (int i = 0; i < alts.n; i++) {
        yysymbol_kind_t k = alts.sym[i];
        bool last = k == YYSYMBOL_RPAREN || k == YYSYMBOL_RBRACKET || k == YYSYMBOL_RBRACE || k == YYSYMBOL_YYEOF;
        if (last != (pass == 1)) continue;
        ordered.text[ordered.n] = alts.text[i];
        ordered.sym[ordered.n++] = k;
      }
    for (int i = 0; i < ordered.n; i++) {
      ob_puts(&o, i == 0 ? ", expected " : i == ordered.n - 1 ? " or " : ", ");
      if (ordered.text[i]) ob_puts(&o, ordered.text[i]);
      else put_symbol(&o, ordered.sym[i]);
    }
    /* An expression bracket opened on another line may be the culprit. */
    if (closer_wanted && !open->decl && open->loc.line != loc->line) put_close_note(&o, open);
    bool line_start = ps->recent[1].loc.end_line < loc->line;
    if (la == YYSYMBOL_ASSIGN && want[YYSYMBOL_EQ]) ob_puts(&o, " (did you mean '=='?)");
    else if (la == YYSYMBOL_MINUS && ps->recent[1].kind == TK_BANG) ob_puts(&o, " (write !(-x): CEL does not mix ! and -)");
    else if (la == YYSYMBOL_BANG && ps->recent[1].kind == TK_MINUS) ob_puts(&o, " (write -(!x): CEL does not mix - and !)");
    else if (is_reserved(la) && (want[YYSYMBOL_IDENT] || want[YYSYMBOL_NUMBER]) &&
             !(ps->file && line_start && is_decl_symbol(la))) /* a `let` beginning a line begins a declaration */
      ob_printf(&o, " (`%.*s` is a reserved word)", (int)ps->recent[0].len, ps->src->text + ps->recent[0].off);
  }
  const open_bracket *unclosed = replay_after_missing_brace(ps);
  if (unclosed && la == YYSYMBOL_STRING) /* `rule "x"` read as a field path */
    ob_printf(&o, " (is a '}' missing, to close '{' of %s at line %d?)", unclosed->label, unclosed->loc.line);
  /* A syntax error is shown at the token that cannot go on, but it belongs
   * to what came before: the token may well begin the next declaration. */
  diag_add(ps->d, DIAG_ERROR, *loc, "%s", ob_cstr(&o));
  record_error(ps, ps->recent[1].loc.end_line, ps->recent[1].loc.end_col - 1);
  return 0;
}

/* ---- expressions ---------------------------------------------------------------------- */

static expr *new_expr(pstate *ps, expr_kind kind, srcloc loc) {
  expr *e = ps_alloc(ps, sizeof *e);
  if (!e) return NULL;
  e->kind = kind;
  e->loc = loc;
  e->name_loc = loc;
  return e;
}

/* Reports the node that reaches one level past the limit, once: its
 * parents are deeper still and stay quiet. */
static void check_depth(pstate *ps, int depth, srcloc at) {
  if (depth == PARSE_MAX_DEPTH + 1)
    parse_error_at(ps, at, "expression nested too deeply (the limit is %d levels)", PARSE_MAX_DEPTH);
}

static xexpr x_leaf(pstate *ps, expr_kind kind, srcloc loc) {
  return (xexpr){new_expr(ps, kind, loc), 0, false};
}

static xexpr x_literal(pstate *ps, lit_token lit, srcloc loc) {
  xexpr x = x_leaf(ps, E_LITERAL, loc);
  if (x.e) x.e->lit = lit.v;
  x.needs_minus = lit.needs_minus;
  return x;
}

static xexpr x_ident(pstate *ps, const char *name, srcloc loc) {
  xexpr x = x_leaf(ps, E_IDENT, loc);
  if (x.e) x.e->name = name;
  return x;
}

/* A member used as it is (not after a '-'): 9223372036854775808 alone does
 * not fit in an int. */
static xexpr x_unary_check(pstate *ps, xexpr x) {
  if (x.needs_minus) {
    parse_error_at(ps, x.e->loc,
                   "integer literal does not fit in int64 (the largest is 9223372036854775807; "
                   "-9223372036854775808 is allowed)");
    x.needs_minus = false;
  }
  return x;
}

static int max_depth(int a, int b) { return a > b ? a : b; }

static xexpr x_binary(pstate *ps, xexpr left, expr_op op, srcloc oploc, xexpr right, srcloc loc) {
  xexpr x = x_leaf(ps, E_BINARY, loc);
  if (!x.e) return x;
  expr **args = ps_alloc(ps, sizeof *args);
  if (!args) return (xexpr){0};
  args[0] = right.e;
  x.e->op = op;
  x.e->name_loc = oploc;
  x.e->operand = left.e;
  x.e->args = args;
  x.e->nargs = 1;
  x.depth = 1 + max_depth(left.depth, right.depth);
  check_depth(ps, x.depth, oploc);
  return x;
}

static xexpr x_cond(pstate *ps, xexpr c, srcloc qloc, xexpr a, xexpr b, srcloc loc) {
  xexpr x = x_leaf(ps, E_COND, loc);
  if (!x.e) return x;
  expr **args = ps_alloc(ps, 2 * sizeof *args);
  if (!args) return (xexpr){0};
  args[0] = a.e;
  args[1] = b.e;
  x.e->name_loc = qloc;
  x.e->operand = c.e;
  x.e->args = args;
  x.e->nargs = 2;
  x.depth = 1 + max_depth(c.depth, max_depth(a.depth, b.depth));
  check_depth(ps, x.depth, qloc);
  return x;
}

static xexpr x_select(pstate *ps, xexpr operand, const char *name, srcloc name_loc, srcloc loc) {
  operand = x_unary_check(ps, operand);
  xexpr x = x_leaf(ps, E_SELECT, loc);
  if (!x.e) return x;
  x.e->operand = operand.e;
  x.e->name = name;
  x.e->name_loc = name_loc;
  x.depth = operand.depth + 1;
  check_depth(ps, x.depth, name_loc);
  return x;
}

static xexpr x_call(pstate *ps, expr *target, int target_depth, const char *name, srcloc name_loc,
                    xlist args, srcloc loc) {
  xexpr x = x_leaf(ps, E_CALL, loc);
  if (!x.e) return x;
  x.e->operand = target;
  x.e->name = name;
  x.e->name_loc = name_loc;
  x.e->args = args.v;
  x.e->nargs = args.n;
  x.depth = 1 + max_depth(target_depth, args.depth);
  check_depth(ps, x.depth, name_loc);
  return x;
}

static xexpr x_index(pstate *ps, xexpr operand, srcloc bracket, xexpr index, srcloc loc) {
  operand = x_unary_check(ps, operand);
  xexpr x = x_leaf(ps, E_INDEX, loc);
  if (!x.e) return x;
  expr **args = ps_alloc(ps, sizeof *args);
  if (!args) return (xexpr){0};
  args[0] = index.e;
  x.e->operand = operand.e;
  x.e->name_loc = bracket;
  x.e->args = args;
  x.e->nargs = 1;
  x.depth = 1 + max_depth(operand.depth, index.depth);
  check_depth(ps, x.depth, bracket);
  return x;
}

static xexpr x_aggregate(pstate *ps, expr_kind kind, xlist items, srcloc loc) {
  xexpr x = x_leaf(ps, kind, loc);
  if (!x.e) return x;
  x.e->args = items.v;
  x.e->nargs = items.n;
  srcloc open = loc;
  open.end_line = open.line;
  open.end_col = open.col + 1;
  x.e->name_loc = open;
  x.depth = 1 + items.depth;
  check_depth(ps, x.depth, open);
  return x;
}

/* Parentheses make no node, but they count as a level. */
static xexpr x_nest(pstate *ps, xexpr inner, srcloc open) {
  inner.depth++;
  check_depth(ps, inner.depth, open);
  return inner;
}

static bool xlist_push(pstate *ps, xlist *l, xexpr x) {
  expr **slot = PUSH(ps, l->v, l->n, l->cap);
  if (!slot) return false;
  *slot = x.e;
  l->depth = max_depth(l->depth, x.depth);
  return true;
}

/* `!!` and `--` become a chain of unary nodes, outermost first, whose last
 * operand is filled in once the member after them is parsed. */
static xchain x_chain(pstate *ps, xchain chain, expr_op op, srcloc oploc) {
  expr *e = new_expr(ps, E_UNARY, oploc);
  if (!e) return (xchain){0};
  e->op = op;
  if (chain.tail) chain.tail->operand = e;
  else chain.head = e;
  chain.tail = e;
  chain.n++;
  return chain;
}

static xexpr x_prefixed(pstate *ps, xchain chain, xexpr operand, bool negation, srcloc loc) {
  int n = chain.n;
  /* -5 and -1.5 are literals; -9223372036854775808 only this way. (In
   * -(-9223372036854775808) the outer minus stays: it overflows.) */
  if (negation && operand.e->kind == E_LITERAL &&
      ((operand.e->lit.kind == CV_INT && (operand.needs_minus || operand.e->lit.i != INT64_MIN)) ||
       operand.e->lit.kind == CV_DOUBLE)) {
    expr *lit = operand.e;
    if (operand.needs_minus) lit->lit = cv_int(INT64_MIN);
    else if (lit->lit.kind == CV_INT) lit->lit = cv_int(-lit->lit.i);
    else lit->lit = cv_double(-lit->lit.d);
    lit->loc.line = lit->name_loc.line = chain.tail->loc.line;
    lit->loc.col = lit->name_loc.col = chain.tail->loc.col;
    operand.needs_minus = false;
    n--;
    if (n == 0) return operand;
    /* drop the innermost '-': it is in the literal now */
    expr *e = chain.head;
    while (e->operand != chain.tail) e = e->operand;
    chain.tail = e;
  } else {
    operand = x_unary_check(ps, operand);
  }
  chain.tail->operand = operand.e;
  /* Each node spans from its operator to the end of the operand. Read
   * from the left, operator i is at level i: with more than the limit,
   * the one past it is reported; else (the operand being deep too) the
   * innermost. */
  int depth = operand.depth + n, i = 1;
  bool too_deep = depth > PARSE_MAX_DEPTH && operand.depth <= PARSE_MAX_DEPTH;
  for (expr *e = chain.head; e != operand.e; e = e->operand, i++) {
    srcloc op = e->loc;
    e->name_loc = op;
    e->loc = loc;
    e->loc.line = op.line;
    e->loc.col = op.col;
    if (too_deep && (i == PARSE_MAX_DEPTH + 1 || (n <= PARSE_MAX_DEPTH && i == n)))
      parse_error_at(ps, op, "expression nested too deeply (the limit is %d levels)", PARSE_MAX_DEPTH);
  }
  return (xexpr){chain.head, depth, false};
}

/* ---- declarations ----------------------------------------------------------------------- */

typedef struct prim_name {
  const char *name;
  type_kind kind;
} prim_name;

static const prim_name prim_names[] = {
    {"bool", T_BOOL},     {"int", T_INT},           {"uint", T_UINT},         {"double", T_DOUBLE},
    {"string", T_STRING}, {"bytes", T_BYTES},       {"timestamp", T_TIMESTAMP}, {"duration", T_DURATION},
    {"any", T_DYN},       {"dyn", T_DYN},
};
#define NPRIMS ((int)(sizeof prim_names / sizeof *prim_names))

static const type *resolve_type(pstate *ps, const char *name, srcloc loc, const type *a, const type *b,
                                int nargs) {
  if (strcmp(name, "list") == 0 || strcmp(name, "map") == 0) {
    bool list = name[0] == 'l';
    if (nargs != (list ? 1 : 2)) {
      parse_error_at(ps, loc, list ? "`list` takes one type: list(T)" : "`map` takes two types: map(K, V)");
      return type_prim(T_ERROR);
    }
    const type *t = list ? type_list(ps->a, a) : type_map(ps->a, a, b);
    if (!t) ps->oom = true;
    return t;
  }
  for (int i = 0; i < NPRIMS; i++) {
    if (strcmp(name, prim_names[i].name) != 0) continue;
    if (nargs) {
      parse_error_at(ps, loc, "`%s` takes no type arguments", name);
      return type_prim(T_ERROR);
    }
    return type_prim(prim_names[i].kind);
  }
  const char *names[NPRIMS + 2];
  for (int i = 0; i < NPRIMS; i++) names[i] = prim_names[i].name;
  names[NPRIMS] = "list";
  names[NPRIMS + 1] = "map";
  const char *near = diag_suggest(name, names, NPRIMS + 2);
  if (near) parse_error_at(ps, loc, "unknown type `%s`; did you mean `%s`?", name, near);
  else
    parse_error_at(ps, loc,
                   "unknown type `%s` (the types are bool, int, uint, double, string, bytes, timestamp, "
                   "duration, any, list(T) and map(K, V))",
                   name);
  return type_prim(T_ERROR);
}

/* The default alias of `import "std/geo"`: the last path component. */
static const char *unquoted_alias(pstate *ps, const char *path) {
  const char *slash = strrchr(path, '/');
  const char *base = slash && slash[1] ? slash + 1 : path;
  const char *alias = arena_strndup(ps->a, base, strlen(base));
  if (!alias) ps->oom = true;
  return alias;
}

static void add_field(pstate *ps, xpath path, srcloc path_loc, const type *ty, bool optional, bool clock,
                      srcloc span) {
  if (span_has_error(ps, span)) return;
  size_t len = 0;
  for (int i = 0; i < path.n; i++) len += strlen(path.segs[i]) + 1;
  char *joined = arena_alloc(ps->a, len);
  field_decl *f = joined ? PUSH(ps, ps->file->fields, ps->file->nfields, ps->cap_fields) : NULL;
  if (!f) {
    ps->oom = true;
    return;
  }
  size_t at = 0;
  for (int i = 0; i < path.n; i++) {
    size_t n = strlen(path.segs[i]);
    if (i) joined[at++] = '.';
    memcpy(joined + at, path.segs[i], n);
    at += n;
  }
  joined[at] = '\0';
  f->path = joined;
  f->segs = path.segs;
  f->nsegs = path.n;
  f->ty = ty;
  f->optional = optional;
  f->clock = clock;
  f->loc = path_loc;
}

static const char *effect_text(effect_kind e) {
  switch (e) {
  case EFF_ALLOW: return "allow";
  case EFF_FLAG: return "flag";
  case EFF_THROTTLE: return "throttle";
  case EFF_DENY: return "deny";
  case EFF_SUSPEND: return "suspend";
  }
  return "effect";
}

/* Rule items come in any order; a second cite, reason or effect clause is
 * an error at the second one. */
static void add_item(pstate *ps, struct rule_acc *acc, struct rule_item *it) {
  rule_decl *r = &acc->r;
  switch (it->kind) {
  case ITEM_CITE:
    if (acc->has_cite) {
      parse_error_at(ps, it->loc, "a second `cite` in this rule (the first is at line %d)", acc->cite_loc.line);
      return;
    }
    acc->has_cite = true;
    acc->cite_loc = it->loc;
    r->cite = it->cite;
    return;
  case ITEM_REASON:
    if (r->reason) {
      parse_error_at(ps, it->loc, "a second `reason` in this rule (the first is at line %d)", acc->reason_loc.line);
      return;
    }
    acc->reason_loc = it->loc;
    r->reason = it->reason;
    return;
  case ITEM_EFFECT:
    if (r->has_effect) {
      parse_error_at(ps, it->loc, "a second effect clause `%s` in this rule (the first, `%s`, is at line %d)",
                     effect_text(it->effect), effect_text(r->effect), r->effect_loc.line);
      return;
    }
    r->has_effect = true;
    r->effect = it->effect;
    r->effect_loc = it->loc;
    r->when = it->when;
    r->unless = it->unless;
    r->retry_after = it->retry_after;
    r->suspend_key = it->suspend_key;
    r->suspend_for = it->suspend_for;
    return;
  case ITEM_THEN: {
    then_clause *t = PUSH(ps, r->thens, r->nthens, acc->cap_thens);
    if (t) *t = it->then;
    return;
  }
  }
}

static void finish_rule(pstate *ps, const char *id, srcloc id_loc, struct rule_acc *acc, srcloc span) {
  if (span_has_error(ps, span)) return;
  if (!acc->r.has_effect) {
    parse_error_at(ps, id_loc,
                   "rule \"%s\" has no effect clause (allow, deny, flag, throttle or suspend, with `when`)", id);
    return;
  }
  rule_decl *r = PUSH(ps, ps->file->rules, ps->file->nrules, ps->cap_rules);
  if (!r) return;
  *r = acc->r;
  r->id = id;
  r->loc = id_loc;
}

/* ---- entry points ---------------------------------------------------------------------------- */

static void run_parser(pstate *ps) {
  if (clause_yylex_init_extra(ps, &ps->scanner) != 0) {
    ps->oom = true;
    return;
  }
  if (ps->src->len > INT_MAX / 2) {
    srcloc at = {ps->src, 1, 1, 1, 1};
    parse_error_at(ps, at, "the file is too large (%zu bytes)", ps->src->len);
  } else if (setjmp(ps->fatal) == 0) {
    /* The scanner reads a copy of the text, in the arena. Its only fatal
     * errors are allocation failures here, before the parse starts. A
     * byte order mark is no part of the text. */
    size_t bom = ps->src->len >= 3 && memcmp(ps->src->text, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
    ps->off = bom;
    clause_yy_scan_bytes(ps->src->text + bom, (int)(ps->src->len - bom), ps->scanner);
    clause_yyparse(ps);
  } else {
    ps->oom = true;
  }
  clause_yylex_destroy(ps->scanner);
}

static pstate *new_pstate(const source *src, arena *a, diag_list *d, int start) {
  pstate *ps = arena_alloc(a, sizeof *ps);
  if (!ps) return NULL;
  memset(ps, 0, sizeof *ps);
  ps->src = src;
  ps->a = a;
  ps->d = d;
  ps->start_token = start;
  ps->line = ps->col = 1;
  return ps;
}

static void report_oom(pstate *ps, const source *src, diag_list *d) {
  srcloc at = {src, 1, 1, 1, 1};
  if (ps) at = (srcloc){src, ps->line, ps->col, ps->line, ps->col};
  diag_error(d, at, "out of memory");
}

policy_file *parse_policy(const source *src, arena *a, diag_list *d) {
  policy_file *f = arena_alloc(a, sizeof *f);
  pstate *ps = f ? new_pstate(src, a, d, TK_START_FILE) : NULL;
  if (!ps) {
    report_oom(NULL, src, d);
    return NULL;
  }
  memset(f, 0, sizeof *f);
  f->src = src;
  ps->file = f;
  run_parser(ps);
  if (ps->oom) report_oom(ps, src, d);
  return f;
}

expr *parse_expression(const source *src, arena *a, diag_list *d) {
  pstate *ps = new_pstate(src, a, d, TK_START_EXPR);
  if (!ps) {
    report_oom(NULL, src, d);
    return NULL;
  }
  run_parser(ps);
  if (ps->oom) report_oom(ps, src, d);
  return ps->nerrors || ps->oom ? NULL : ps->result;
}
