/*
 * cli.h - shared pieces of the `clause` command-line tool.
 */
#ifndef CLAUSE_CLI_H
#define CLAUSE_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "../compiler/compile.h"
#include "../include/clause.h"

/* Exit statuses (SPEC section 8). */
enum {
  EXIT_OK = 0,
  EXIT_FAILED = 1,  /* expectations or tests failed, --fail-on matched */
  EXIT_USAGE = 2,   /* usage, compile or load error */
  EXIT_INVALID = 3  /* invalid input lines (and nothing worse) */
};

/* A subcommand: its name, one-line usage, help text and entry point. */
typedef struct cli_command {
  const char *name;
  const char *usage;
  const char *help;
  int (*run)(int argc, char **argv); /* argv[0] is the subcommand */
} cli_command;

/* Options every subcommand that compiles, loads or evaluates takes. */
typedef struct cli_common {
  const char *lib_path;
  const char *extern_path;
  const char *store;
} cli_common;

/* Option parsing: argument i is `name` or `name=VALUE`; sets *value and
 * advances *i past a separate value. Returns 1 matched, 0 not this option,
 * -1 missing value (usage already printed). */
int cli_option(const cli_command *cmd, int argc, char **argv, int *i, const char *name,
               const char **value);
/* The common options; same return convention. */
int cli_common_option(const cli_command *cmd, int argc, char **argv, int *i, cli_common *c);
/* Prints the usage line(s) to stderr and returns EXIT_USAGE. */
int cli_usage_error(const cli_command *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* `--help`: the help text to stdout. */
int cli_help(const cli_command *cmd);

/* Options built from the common options; NULL and a message on error. */
clause_options *cli_options(const cli_common *c);

/* Compiles a rule file or loads a `.clb` file (recognised by its magic
 * number). With `bind`, prepares it for evaluation: its extern libraries
 * are opened (check, eval, diff); without, none is (compile, disasm).
 * Diagnostics go to stderr. NULL on failure (report printed). */
clause_program *cli_load_program(const char *path, const clause_options *opts, bool bind);

/* Gives the VM an empty state store of its own, of the kind `url` names
 * (NULL: memory); a Redis store gets a key prefix of its own. -1 and a
 * message on stderr on failure. */
int cli_use_fresh_store(clause_vm *vm, const char *url);

/* Renders diagnostics to stderr (colour when stderr is a terminal). */
void cli_render_diags(const diag_list *d);

extern const cli_command cmd_compile, cmd_disasm, cmd_eval, cmd_expr, cmd_check, cmd_test, cmd_diff;

#endif
