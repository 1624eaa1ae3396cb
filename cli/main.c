/*
 * main.c - `clause`: compile rule files, inspect bytecode, check them
 * against traffic, run their tests, compare two versions, evaluate
 * requests and expressions. One table of subcommands; each lives in its
 * own cmd_*.c.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "dev"
#endif

static const cli_command *const commands[] = {&cmd_compile, &cmd_disasm, &cmd_check, &cmd_test,
                                              &cmd_diff,    &cmd_eval,   &cmd_expr};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out) {
  fputs("usage: clause COMMAND [ARGS...]\n\ncommands:\n", out);
  for (size_t i = 0; i < NCOMMANDS; i++) fprintf(out, "  %s\n", commands[i]->usage);
  fputs("\nRun `clause COMMAND --help` for a command's options.\n", out);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return EXIT_USAGE;
  }
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
    usage(stdout);
    return EXIT_OK;
  }
  if (strcmp(argv[1], "--version") == 0) {
    puts("clause " PACKAGE_VERSION);
    return EXIT_OK;
  }
  for (size_t i = 0; i < NCOMMANDS; i++)
    if (strcmp(argv[1], commands[i]->name) == 0) return commands[i]->run(argc - 1, argv + 1);
  fprintf(stderr, "clause: unknown command '%s'\n", argv[1]);
  usage(stderr);
  return EXIT_USAGE;
}
