/*
 * cmd_eval.c - `clause eval POLICY --input JSON`: one decision, printed as
 * its JSON form (SPEC section 5.4).
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int run_eval(int argc, char **argv);

const cli_command cmd_eval = {
    "eval", "clause eval POLICY|PROGRAM.clb --input JSON [--lib-path DIRS] [--extern-path DIRS] [--store URL]",
    "Evaluates one request (a JSON object) and prints the decision as JSON.\n"
    "Exits 0 whatever the effect; 2 when the policy does not compile or load;\n"
    "3 when the input is not valid JSON.\n"
    "\n"
    "  --input JSON          the request, as JSON text (`-` reads standard input)\n"
    "  --lib-path DIRS       extra folders for `import` modules\n"
    "  --extern-path DIRS    allowed folders for extern libraries\n"
    "  --store URL           state store: memory (default)\n",
    run_eval};

static char *read_all(FILE *f, size_t *len) {
  size_t cap = 4096, n = 0, got;
  char *buf = malloc(cap);
  while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap) {
      char *bigger = realloc(buf, cap *= 2);
      if (!bigger) free(buf);
      buf = bigger;
    }
  }
  *len = n;
  return buf;
}

static int run_eval(int argc, char **argv) {
  const char *policy = NULL, *input = NULL;
  cli_common common = {0};
  for (int i = 1; i < argc; i++) {
    int r;
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return cli_help(&cmd_eval);
    if ((r = cli_common_option(&cmd_eval, argc, argv, &i, &common)) ||
        (r = cli_option(&cmd_eval, argc, argv, &i, "--input", &input))) {
      if (r < 0) return EXIT_USAGE;
      continue;
    }
    if (argv[i][0] == '-' && argv[i][1] != '\0') return cli_usage_error(&cmd_eval, "unknown option %s", argv[i]);
    if (policy) return cli_usage_error(&cmd_eval, "unexpected argument %s", argv[i]);
    policy = argv[i];
  }
  if (!policy) return cli_usage_error(&cmd_eval, "missing POLICY");
  if (!input) return cli_usage_error(&cmd_eval, "missing --input JSON");

  char *stdin_text = NULL;
  size_t input_len = strlen(input);
  if (strcmp(input, "-") == 0) {
    stdin_text = read_all(stdin, &input_len);
    if (!stdin_text) {
      fprintf(stderr, "clause: cannot read standard input\n");
      return EXIT_USAGE;
    }
    input = stdin_text;
  }
  int status = EXIT_USAGE;
  clause_options *opts = cli_options(&common);
  clause_program *p = opts ? cli_load_program(policy, opts, true) : NULL;
  clause_vm *vm = p ? clause_vm_new(p) : NULL;
  if (p && !vm) fprintf(stderr, "clause: out of memory\n");
  if (vm) {
    clause_error err;
    clause_decision d;
    if (clause_vm_set_json(vm, input, input_len, &err) != CLAUSE_OK) {
      fprintf(stderr, "--input:%d:%d: error: %s\n", err.line, err.column, err.message);
      status = EXIT_INVALID;
    } else if (clause_vm_eval(vm, &d) != CLAUSE_OK) {
      fprintf(stderr, "clause: evaluation failed\n");
    } else {
      char small[1024];
      int n = clause_decision_json(&d, small, sizeof small);
      char *buf = (size_t)n < sizeof small ? small : malloc((size_t)n + 1);
      if (buf && buf != small) clause_decision_json(&d, buf, (size_t)n + 1);
      if (buf) printf("%s\n", buf);
      if (buf != small) free(buf);
      status = buf ? EXIT_OK : EXIT_USAGE;
    }
  }
  clause_vm_free(vm);
  clause_program_free(p);
  clause_options_free(opts);
  free(stdin_text);
  return status;
}
