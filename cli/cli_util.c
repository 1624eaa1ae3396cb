/*
 * cli_util.c - option parsing, loading programs and printing diagnostics
 * for every subcommand.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../vm/program.h"
#include "../vm/store.h"
#include "../vm/vm.h"
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

/* A store of its own for one test or one side of a diff. A Redis URL gets
 * a key prefix no other run uses (its own prefix, if any, then the process
 * id, the time and a sequence number), so runs never see each other's
 * counters and nothing needs FLUSHDB. */
static store *fresh_store(const char *url, char *err, size_t errcap) {
  static unsigned seq;
  if (!url || strncmp(url, "redis://", 8) != 0) return store_open(url, err, errcap);
  const char *q = strchr(url, '?');
  size_t base = q ? (size_t)(q - url) : strlen(url);
  const char *old = "clause:";
  size_t old_len = strlen(old);
  char params[512] = "";
  for (const char *p = q ? q + 1 : NULL; p && *p;) {
    size_t n = strcspn(p, "&");
    if (strncmp(p, "prefix=", 7) == 0) {
      old = p + 7;
      old_len = n - 7;
    } else {
      size_t have = strlen(params);
      snprintf(params + have, sizeof params - have, "&%.*s", (int)n, p);
    }
    p += n + (p[n] == '&');
  }
  char fresh[1024];
  snprintf(fresh, sizeof fresh, "%.*s?prefix=%.*srun-%ld-%ld-%u:%s", (int)base, url, (int)old_len, old,
           (long)getpid(), (long)time(NULL), ++seq, params);
  return store_open(fresh, err, errcap);
}

int cli_use_fresh_store(clause_vm *vm, const char *url) {
  char err[512];
  store *s = fresh_store(url, err, sizeof err);
  if (!s) {
    fprintf(stderr, "clause: --store %s: %s\n", url ? url : "memory", err);
    return -1;
  }
  int rc = vm_use_store(vm, s);
  store_unref(s);
  if (rc != CLAUSE_OK) fprintf(stderr, "clause: out of memory\n");
  return rc == CLAUSE_OK ? 0 : -1;
}
