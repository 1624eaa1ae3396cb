/*
 * compile.c - the compiler driver and clause_compile_file (clause.h).
 *
 * Every program, freshly compiled or read from a `.clb` file, goes through
 * the same bytes -> loader -> verifier path: there is one way into the VM.
 */
#include "compile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../vm/program.h"
#include "codegen.h"
#include "parse.h"

source *compile_read_source(const char *path, arena *a) {
  FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 8192, len = 0;
  char *buf = malloc(cap);
  size_t got;
  while (buf && (got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
    len += got;
    if (cap - len - 1 == 0) {
      char *bigger = realloc(buf, cap * 2);
      if (!bigger) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = bigger;
      cap *= 2;
    }
  }
  int read_error = ferror(f);
  if (f != stdin) fclose(f);
  if (!buf || read_error) {
    free(buf);
    errno = read_error ? EIO : ENOMEM;
    return NULL;
  }
  source *src = arena_alloc(a, sizeof *src);
  char *text = src ? arena_strndup(a, buf, len) : NULL;
  char *name = src ? arena_strndup(a, path, strlen(path)) : NULL;
  free(buf);
  if (!src || !text || !name) {
    errno = ENOMEM;
    return NULL;
  }
  src->path = name;
  src->text = text;
  src->len = len;
  return src;
}

/* Serializes the draft and loads it back: the loader verifies it. */
static int load_draft(const clause_program *draft, diag_list *d, const source *src,
                      clause_program **out) {
  outbuf o;
  ob_init_grow(&o);
  int rc = clb_write(draft, &o);
  if (rc != CLAUSE_OK || o.oom) {
    ob_free(&o);
    return CLAUSE_ERR_NOMEM;
  }
  char err[512];
  *out = clb_read(o.buf, o.len, err, sizeof err);
  ob_free(&o);
  if (!*out) {
    /* A verifier rejection here is a compiler bug: say so plainly. */
    srcloc loc = {src, 1, 1, 1, 1};
    diag_error(d, loc, "internal error: the compiled program was rejected: %s", err);
    return CLAUSE_ERR_LOAD;
  }
  return CLAUSE_OK;
}

int compile_policy(const source *src, const clause_options *opts, arena *a, diag_list *d,
                   clause_program **out, policy_file **pf_out) {
  (void)opts; /* lib path and externs: used once imports and externs land */
  *out = NULL;
  policy_file *pf = parse_policy(src, a, d);
  if (d->errors || !pf) return CLAUSE_ERR_COMPILE;
  if (!check_policy(pf, a, d) || d->errors) return CLAUSE_ERR_COMPILE;
  clause_program draft;
  if (!codegen_policy(pf, a, d, &draft) || d->errors) return CLAUSE_ERR_COMPILE;
  if (pf_out) *pf_out = pf;
  return load_draft(&draft, d, src, out);
}

int compile_expression(const source *src, const check_var *vars, int nvars, bool disable_check,
                       arena *a, diag_list *d, clause_program **out) {
  *out = NULL;
  expr *e = parse_expression(src, a, d);
  if (d->errors || !e) return CLAUSE_ERR_COMPILE;
  if (!check_expression(e, vars, nvars, disable_check, a, d) || d->errors) return CLAUSE_ERR_COMPILE;
  const char **names = arena_alloc(a, (size_t)(nvars ? nvars : 1) * sizeof *names);
  if (!names) return CLAUSE_ERR_NOMEM;
  for (int i = 0; i < nvars; i++) names[i] = vars[i].name;
  clause_program draft;
  if (!codegen_expression(e, names, nvars, a, d, &draft) || d->errors) return CLAUSE_ERR_COMPILE;
  return load_draft(&draft, d, src, out);
}

void compile_first_error(const diag_list *d, clause_error *err) {
  if (!err) return;
  memset(err, 0, sizeof *err);
  for (const diag *x = d->head; x; x = x->next) {
    if (x->level != DIAG_ERROR) continue;
    snprintf(err->file, sizeof err->file, "%s", x->loc.src && x->loc.src->path ? x->loc.src->path : "");
    err->line = x->loc.line;
    err->column = x->loc.col;
    snprintf(err->message, sizeof err->message, "%s", x->message);
    return;
  }
}

clause_program *clause_compile_file(const char *path, const clause_options *opts,
                                    clause_error *err) {
  if (!path) {
    if (err) {
      memset(err, 0, sizeof *err);
      snprintf(err->message, sizeof err->message, "no path given");
    }
    return NULL;
  }
  arena a;
  arena_init(&a, 1 << 16);
  diag_list d;
  diag_init(&d);
  clause_program *p = NULL;
  source *src = compile_read_source(path, &a);
  if (!src) {
    if (err) {
      memset(err, 0, sizeof *err);
      snprintf(err->file, sizeof err->file, "%s", path);
      snprintf(err->message, sizeof err->message, "cannot read: %s", strerror(errno));
    }
  } else if (compile_policy(src, opts, &a, &d, &p, NULL) != CLAUSE_OK) {
    compile_first_error(&d, err);
    if (err && !err->message[0]) snprintf(err->message, sizeof err->message, "compilation failed");
  }
  diag_free(&d);
  arena_free(&a);
  return p;
}
