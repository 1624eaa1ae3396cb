/*
 * cli_util.c - option parsing, loading programs and printing diagnostics
 * for every subcommand.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../vm/program.h"
#include "cli.h"

int cli_usage_error(const cli_command *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("clause: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  fprintf(stderr, "usage: %s\n", cmd->usage);
  return EXIT_USAGE;
}

int cli_help(const cli_command *cmd) {
  printf("usage: %s\n\n%s", cmd->usage, cmd->help);
  return EXIT_OK;
}

int cli_option(const cli_command *cmd, int argc, char **argv, int *i, const char *name,
               const char **value) {
  const char *arg = argv[*i];
  size_t n = strlen(name);
  if (strncmp(arg, name, n) != 0) return 0;
  if (arg[n] == '=') {
    *value = arg + n + 1;
    return 1;
  }
  if (arg[n] != '\0') return 0;
  if (*i + 1 >= argc) {
    cli_usage_error(cmd, "option %s needs a value", name);
    return -1;
  }
  *value = argv[++*i];
  return 1;
}

int cli_common_option(const cli_command *cmd, int argc, char **argv, int *i, cli_common *c) {
  int r;
  if ((r = cli_option(cmd, argc, argv, i, "--lib-path", &c->lib_path))) return r;
  if ((r = cli_option(cmd, argc, argv, i, "--extern-path", &c->extern_path))) return r;
  return cli_option(cmd, argc, argv, i, "--store", &c->store);
}

clause_options *cli_options(const cli_common *c) {
  clause_options *o = clause_options_new();
  if (!o) {
    fprintf(stderr, "clause: out of memory\n");
    return NULL;
  }
  clause_error err;
  if ((c->lib_path && clause_options_set_lib_path(o, c->lib_path) != CLAUSE_OK) ||
      (c->extern_path && clause_options_set_extern_path(o, c->extern_path) != CLAUSE_OK)) {
    fprintf(stderr, "clause: out of memory\n");
    clause_options_free(o);
    return NULL;
  }
  if (c->store && clause_options_set_store(o, c->store, &err) != CLAUSE_OK) {
    fprintf(stderr, "clause: --store %s: %s\n", c->store, err.message);
    clause_options_free(o);
    return NULL;
  }
  return o;
}

void cli_render_diags(const diag_list *d) {
  diag_render(d, stderr, isatty(STDERR_FILENO) && getenv("NO_COLOR") == NULL);
}

clause_program *cli_load_program(const char *path, const clause_options *opts, bool bind) {
  arena a;
  arena_init(&a, 1 << 16);
  source *src = compile_read_source(path, &a);
  if (!src) {
    fprintf(stderr, "%s: error: cannot read: %s\n", path, strerror(errno));
    arena_free(&a);
    return NULL;
  }
  clause_program *p = NULL;
  if (src->len >= 4 && memcmp(src->text, CLB_MAGIC, 4) == 0) {
    clause_error err;
    p = bind ? clause_load(src->text, src->len, opts, &err) : program_load(src->text, src->len, &err);
    if (!p) fprintf(stderr, "%s: error: %s\n", path, err.message);
  } else {
    diag_list d;
    diag_init(&d);
    policy_file *pf = NULL;
    if (compile_policy(src, opts, &a, &d, &p, &pf) == CLAUSE_OK && bind && compile_bind(p, pf, opts, &d) != CLAUSE_OK) {
      clause_program_free(p);
      p = NULL;
    }
    cli_render_diags(&d);
    diag_free(&d);
  }
  arena_free(&a);
  return p;
}
