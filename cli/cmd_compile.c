/*
 * cmd_compile.c - `clause compile` (rule file -> .clb) and `clause disasm`
 * (the listing of a rule file's or a .clb file's bytecode).
 */
#include <stdlib.h>
#include <string.h>

#include "../vm/program.h"
#include "cli.h"

static int run_compile(int argc, char **argv);
static int run_disasm(int argc, char **argv);

const cli_command cmd_compile = {
    "compile", "clause compile POLICY [-o OUT.clb] [--lib-path DIRS] [--extern-path DIRS]",
    "Compiles a rule file to verified bytecode. Without -o the output is\n"
    "POLICY with its .clause suffix replaced by .clb.\n"
    "\n"
    "  -o, --output FILE     where to write the bytecode\n"
    "  --lib-path DIRS       extra folders for `import` modules\n"
    "  --extern-path DIRS    allowed folders for extern libraries\n"
    "  --store URL           state store (accepted for uniformity)\n",
    run_compile};

const cli_command cmd_disasm = {
    "disasm", "clause disasm POLICY|PROGRAM.clb [--lib-path DIRS] [--extern-path DIRS]",
    "Prints the bytecode of a rule file or a .clb file, one instruction a line\n"
    "with the source expression it came from.\n",
    run_disasm};

/* Parses POLICY and the options both commands share. */
static int parse_args(const cli_command *cmd, int argc, char **argv, const char **policy,
                      const char **out, cli_common *common) {
  for (int i = 1; i < argc; i++) {
    int r;
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return cli_help(cmd), -2;
    if ((r = cli_common_option(cmd, argc, argv, &i, common))) {
      if (r < 0) return -1;
      continue;
    }
    if (out && ((r = cli_option(cmd, argc, argv, &i, "-o", out)) ||
                (r = cli_option(cmd, argc, argv, &i, "--output", out)))) {
      if (r < 0) return -1;
      continue;
    }
    if (argv[i][0] == '-' && argv[i][1] != '\0') return cli_usage_error(cmd, "unknown option %s", argv[i]), -1;
    if (*policy) return cli_usage_error(cmd, "unexpected argument %s", argv[i]), -1;
    *policy = argv[i];
  }
  if (!*policy) return cli_usage_error(cmd, "missing POLICY"), -1;
  return 0;
}

static int run_compile(int argc, char **argv) {
  const char *policy = NULL, *out = NULL;
  cli_common common = {0};
  int r = parse_args(&cmd_compile, argc, argv, &policy, &out, &common);
  if (r) return r == -2 ? EXIT_OK : EXIT_USAGE;
  char *derived = NULL;
  if (!out) {
    size_t n = strlen(policy);
    derived = malloc(n + 5);
    if (!derived) return EXIT_USAGE;
    memcpy(derived, policy, n + 1);
    if (n > 7 && strcmp(policy + n - 7, ".clause") == 0) derived[n - 7] = '\0';
    strcat(derived, ".clb");
    out = derived;
  }
  clause_options *opts = cli_options(&common);
  clause_program *p = opts ? cli_load_program(policy, opts, false) : NULL;
  int status = EXIT_USAGE;
  if (p) {
    clause_error err;
    if (clause_program_save(p, out, &err) == CLAUSE_OK)
      status = EXIT_OK;
    else
      fprintf(stderr, "%s: error: %s\n", out, err.message);
  }
  clause_program_free(p);
  clause_options_free(opts);
  free(derived);
  return status;
}

static int run_disasm(int argc, char **argv) {
  const char *policy = NULL;
  cli_common common = {0};
  int r = parse_args(&cmd_disasm, argc, argv, &policy, NULL, &common);
  if (r) return r == -2 ? EXIT_OK : EXIT_USAGE;
  clause_options *opts = cli_options(&common);
  clause_program *p = opts ? cli_load_program(policy, opts, false) : NULL;
  int status = EXIT_USAGE;
  if (p) {
    outbuf o;
    ob_init_grow(&o);
    program_disasm(p, &o);
    fwrite(o.buf, 1, o.len, stdout);
    ob_free(&o);
    status = EXIT_OK;
  }
  clause_program_free(p);
  clause_options_free(opts);
  return status;
}
