/*
 * cmd_expr.c - `clause expr`: evaluate one CEL expression (a REPL's
 * one-shot mode), or, with --batch, JSON lines of cases such as the CEL
 * conformance suite's. It compiles and runs through the same compiler and
 * VM as rule files.
 */
#include <stdlib.h>
#include <string.h>

#include "../vm/json.h"
#include "../vm/vm.h"
#include "cli.h"

static int run_expr(int argc, char **argv);

const cli_command cmd_expr = {
    "expr", "clause expr [--var NAME=CEL-LITERAL ...] EXPR | clause expr --batch",
    "Evaluates a CEL expression and prints its canonical value text (i:1,\n"
    "s:\"x\", ...), or `error: MESSAGE` and exits 1.\n"
    "\n"
    "  --var NAME=CEL         binds a variable to the value of a CEL literal\n"
    "  --batch                reads JSON lines {\"expr\", \"bindings_cel\",\n"
    "                         \"disable_check\"} on standard input and writes one\n"
    "                         line each: {\"canon\"}, {\"error\"} or {\"compile_error\"}\n",
    run_expr};

#define MAX_VARS 64

/* Copies a value out of a VM's scratch arena into `a`. */
static value copy_value(arena *a, const value *v) {
  value c = *v;
  if (v->kind == CV_STRING || v->kind == CV_BYTES || v->kind == CV_ERROR) {
    c.s = arena_strndup(a, v->s, v->n);
  } else if (v->kind == CV_LIST || v->kind == CV_MAP) {
    uint32_t n = v->kind == CV_MAP ? 2 * v->n : v->n;
    value *items = arena_alloc(a, (n ? n : 1) * sizeof(value));
    if (items)
      for (uint32_t i = 0; i < n; i++) items[i] = copy_value(a, &v->items[i]);
    c.items = items;
  }
  return c;
}

typedef struct expr_case {
  const char *text;
  size_t text_len; /* the text may hold NUL bytes (inside literals) */
  const char *names[MAX_VARS];
  const char *values[MAX_VARS]; /* CEL literal text per variable */
  size_t value_lens[MAX_VARS];
  int nvars;
  bool disable_check;
} expr_case;

typedef enum outcome { OUT_VALUE, OUT_ERROR, OUT_COMPILE_ERROR } outcome;

/* The first error of a compile, as one line. */
static void first_error(const diag_list *d, outbuf *msg) {
  for (const diag *x = d->head; x; x = x->next)
    if (x->level == DIAG_ERROR) {
      ob_printf(msg, "%d:%d: %s", x->loc.line, x->loc.col, x->message);
      return;
    }
  ob_puts(msg, "compilation failed");
}

/* Compiles and runs `text` over vars; the result text goes to `msg`. */
static outcome eval_text(const char *text, size_t text_len, const check_var *vars, const value *vals, int nvars,
                         bool disable_check, bool render_diags, outbuf *msg, arena *keep,
                         value *result) {
  arena a;
  arena_init(&a, 1 << 14);
  diag_list d;
  diag_init(&d);
  source src = {"<expr>", text, text_len};
  clause_program *p = NULL;
  outcome out = OUT_COMPILE_ERROR;
  compile_expression(&src, vars, nvars, disable_check, &a, &d, &p);
  if (!p) {
    if (render_diags) cli_render_diags(&d);
    first_error(&d, msg);
  } else {
    clause_vm *vm = clause_vm_new(p);
    if (!vm) {
      ob_puts(msg, "out of memory");
      out = OUT_ERROR;
    } else {
      for (int i = 0; i < nvars; i++) vm->regs[i] = vals[i];
      value v;
      vm_eval_value(vm, &v);
      if (v.kind == CV_ERROR) {
        ob_put(msg, v.s, v.n);
        out = OUT_ERROR;
      } else {
        cel_canon(msg, &v);
        if (result) *result = copy_value(keep, &v);
        out = OUT_VALUE;
      }
      clause_vm_free(vm);
    }
    clause_program_free(p);
  }
  diag_free(&d);
  arena_free(&a);
  return out;
}

/* Evaluates the case's bindings, then its expression. */
static outcome run_case(const expr_case *c, bool render_diags, outbuf *msg) {
  arena keep;
  arena_init(&keep, 1 << 12);
  check_var vars[MAX_VARS];
  value vals[MAX_VARS];
  outcome out = OUT_VALUE;
  for (int i = 0; i < c->nvars && out == OUT_VALUE; i++) {
    outbuf scratch;
    ob_init_grow(&scratch);
    out = eval_text(c->values[i], c->value_lens[i], NULL, NULL, 0, false, render_diags, &scratch, &keep, &vals[i]);
    if (out != OUT_VALUE) {
      ob_printf(msg, "binding %s: ", c->names[i]);
      ob_put(msg, scratch.buf, scratch.len);
      out = OUT_COMPILE_ERROR;
    }
    ob_free(&scratch);
    vars[i].name = c->names[i];
    vars[i].ty = NULL;
  }
  if (out == OUT_VALUE)
    out = eval_text(c->text, c->text_len, vars, vals, c->nvars, c->disable_check, render_diags, msg, &keep, NULL);
  arena_free(&keep);
  return out;
}

static const value *map_get(const value *m, const char *key) {
  if (!m || m->kind != CV_MAP) return NULL;
  const value *found = NULL;
  for (uint32_t i = 0; i < m->n; i++) {
    const value *k = &m->items[2 * i];
    if (k->kind == CV_STRING && k->n == strlen(key) && memcmp(k->s, key, k->n) == 0)
      found = &m->items[2 * i + 1];
  }
  return found;
}

/* One batch line -> one output line. */
static void batch_line(const char *line, size_t len, arena *a) {
  outbuf out, msg;
  ob_init_grow(&out);
  ob_init_grow(&msg);
  json_error jerr;
  value obj;
  const char *key = "error";
  if (json_parse(line, len, a, &obj, &jerr) != CLAUSE_OK) {
    ob_printf(&msg, "invalid JSON at column %d: %s", jerr.column, jerr.message);
  } else {
    const value *e = map_get(&obj, "expr");
    const value *b = map_get(&obj, "bindings_cel");
    const value *dc = map_get(&obj, "disable_check");
    expr_case c = {0};
    if (obj.kind != CV_MAP || !e || e->kind != CV_STRING) {
      ob_puts(&msg, "the line needs an \"expr\" string");
    } else if (b && b->kind == CV_MAP && b->n > MAX_VARS) {
      ob_puts(&msg, "too many bindings");
    } else {
      c.text = e->s;
      c.text_len = e->n;
      c.disable_check = dc && dc->kind == CV_BOOL && dc->b;
      bool ok = true;
      for (uint32_t i = 0; b && b->kind == CV_MAP && i < b->n; i++) {
        const value *k = &b->items[2 * i], *v = &b->items[2 * i + 1];
        if (k->kind != CV_STRING || v->kind != CV_STRING) {
          ok = false;
          break;
        }
        c.names[c.nvars] = k->s;
        c.value_lens[c.nvars] = v->n;
        c.values[c.nvars++] = v->s;
      }
      if (!ok) {
        ob_puts(&msg, "bindings_cel must map names to CEL literal strings");
      } else {
        outcome o = run_case(&c, false, &msg);
        key = o == OUT_VALUE ? "canon" : o == OUT_ERROR ? "error" : "compile_error";
      }
    }
  }
  ob_printf(&out, "{\"%s\":", key);
  cel_json_string(&out, msg.buf ? msg.buf : "", msg.len);
  ob_puts(&out, "}\n");
  fwrite(out.buf, 1, out.len, stdout);
  ob_free(&out);
  ob_free(&msg);
}

static int run_batch(void) {
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  arena a;
  arena_init(&a, 1 << 14);
  while ((n = getline(&line, &cap, stdin)) >= 0) {
    size_t len = (size_t)n;
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
    arena_reset(&a);
    batch_line(line, len, &a);
    fflush(stdout);
  }
  free(line);
  arena_free(&a);
  return EXIT_OK;
}

static int run_expr(int argc, char **argv) {
  expr_case c = {0};
  bool batch = false;
  for (int i = 1; i < argc; i++) {
    const char *var;
    int r;
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return cli_help(&cmd_expr);
    if (strcmp(argv[i], "--batch") == 0) {
      batch = true;
      continue;
    }
    if ((r = cli_option(&cmd_expr, argc, argv, &i, "--var", &var))) {
      if (r < 0) return EXIT_USAGE;
      const char *eq = strchr(var, '=');
      if (!eq || eq == var) return cli_usage_error(&cmd_expr, "--var takes NAME=CEL-LITERAL");
      if (c.nvars == MAX_VARS) return cli_usage_error(&cmd_expr, "too many --var options");
      c.names[c.nvars] = strndup(var, (size_t)(eq - var));
      c.value_lens[c.nvars] = strlen(eq + 1);
      c.values[c.nvars++] = eq + 1;
      continue;
    }
    if (argv[i][0] == '-' && argv[i][1] != '\0' && !c.text && strcmp(argv[i], "--") != 0) {
      /* A negative number is an expression, not an option. */
      if (!(argv[i][1] >= '0' && argv[i][1] <= '9'))
        return cli_usage_error(&cmd_expr, "unknown option %s", argv[i]);
    }
    if (c.text) return cli_usage_error(&cmd_expr, "unexpected argument %s", argv[i]);
    c.text = argv[i];
    c.text_len = strlen(argv[i]);
  }
  int status;
  if (batch) {
    status = c.text || c.nvars ? cli_usage_error(&cmd_expr, "--batch takes no expression") : run_batch();
  } else if (!c.text) {
    status = cli_usage_error(&cmd_expr, "missing EXPR");
  } else {
    outbuf msg;
    ob_init_grow(&msg);
    outcome o = run_case(&c, true, &msg);
    if (o == OUT_VALUE) {
      printf("%.*s\n", (int)msg.len, msg.buf);
      status = EXIT_OK;
    } else if (o == OUT_ERROR) {
      printf("error: %.*s\n", (int)msg.len, msg.buf);
      status = EXIT_FAILED;
    } else {
      if (msg.len) fprintf(stderr, "error: %.*s\n", (int)msg.len, msg.buf);
      status = EXIT_USAGE;
    }
    ob_free(&msg);
  }
  for (int i = 0; i < c.nvars; i++) free((char *)c.names[i]);
  return status;
}
