/*
 * cmd_test.c - `clause test POLICY...`: runs the `test` blocks of rule files
 * (SPEC section 8). Each `given` is a constant map expression: it is
 * compiled on its own (the checked AST from the policy's compile), run to a
 * value, turned into JSON by CEL's JSON mapping and bound exactly like a
 * traffic line; its `expect` lines then check the decision.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../compiler/codegen.h"
#include "../vm/vm.h"
#include "cli.h"
#include "traffic.h"

static int run_test(int argc, char **argv);

const cli_command cmd_test = {
    "test", "clause test POLICY... [--lib-path DIRS] [--extern-path DIRS] [--store URL]",
    "Runs every `test` block of the rule files: each `given` request is\n"
    "evaluated and its `expect` lines are checked. Prints a line per failing\n"
    "test, then `N passed, N failed`.\n"
    "\n"
    "  --lib-path DIRS       extra folders for `import` modules\n"
    "  --extern-path DIRS    allowed folders for extern libraries\n"
    "  --store URL           state store: memory (default)\n"
    "\n"
    "Exit status: 0 all tests passed (or there are none); 1 a test failed;\n"
    "2 usage, compile or load error.\n",
    run_test};

typedef struct test_totals {
  int passed, failed;
} test_totals;

/* Evaluates a constant `given` expression and writes its JSON form. False
 * with the reason in `why` when it cannot be evaluated. */
static bool given_json(const expr *given, outbuf *json, outbuf *why) {
  arena a;
  arena_init(&a, 1 << 12);
  diag_list d;
  diag_init(&d);
  clause_program draft;
  clause_program *p = NULL;
  bool ok = false;
  if (codegen_expression(given, NULL, 0, &a, &d, &draft)) {
    outbuf bytes;
    ob_init_grow(&bytes);
    char err[256];
    if (clb_write(&draft, &bytes) == CLAUSE_OK && !bytes.oom) p = clb_read(bytes.buf, bytes.len, err, sizeof err);
    else snprintf(err, sizeof err, "out of memory");
    ob_free(&bytes);
    if (!p) ob_printf(why, "the given request could not be compiled: %s", err);
  } else {
    ob_puts(why, "the given request could not be compiled");
    for (const diag *x = d.head; x; x = x->next)
      if (x->level == DIAG_ERROR) {
        ob_printf(why, ": %s", x->message);
        break;
      }
  }
  clause_vm *vm = p ? clause_vm_new(p) : NULL;
  if (p && !vm) ob_puts(why, "out of memory");
  if (vm) {
    value v;
    vm_eval_value(vm, &v);
    if (v.kind == CV_ERROR) {
      ob_puts(why, "the given request could not be evaluated: ");
      ob_put(why, v.s, v.n);
    } else if (v.kind != CV_MAP) {
      ob_printf(why, "the given request is a %s, not a map", cv_kind_name((cv_kind)v.kind));
    } else {
      cel_to_json(json, &v);
      ok = !json->oom;
      if (!ok) ob_puts(why, "out of memory");
    }
  }
  clause_vm_free(vm);
  clause_program_free(p);
  diag_free(&d);
  arena_free(&a);
  return ok;
}

static clause_effect decision_effect(effect_kind e) {
  switch (e) {
  case EFF_THROTTLE: return CLAUSE_THROTTLE;
  case EFF_DENY: return CLAUSE_DENY;
  case EFF_SUSPEND: return CLAUSE_SUSPEND;
  default: return CLAUSE_ALLOW;
  }
}

static bool expect_holds(const expect_clause *x, const clause_decision *d) {
  if (x->flagged) {
    for (size_t i = 0; i < d->n_flags; i++)
      if (strcmp(d->flags[i], x->rule) == 0) return true;
    return false;
  }
  if (d->effect != decision_effect(x->effect)) return false;
  return !x->rule || (d->rule && strcmp(d->rule, x->rule) == 0);
}

static void put_expectation(outbuf *o, const expect_clause *x) {
  if (x->flagged) ob_printf(o, "flagged \"%s\"", x->rule);
  else if (x->rule) ob_printf(o, "%s \"%s\"", clause_effect_name(decision_effect(x->effect)), x->rule);
  else ob_puts(o, clause_effect_name(decision_effect(x->effect)));
}

static void put_decision(outbuf *o, const clause_decision *d) {
  ob_puts(o, clause_effect_name(d->effect));
  if (d->rule) ob_printf(o, " \"%s\"", d->rule);
  for (size_t i = 0; i < d->n_flags; i++) ob_printf(o, "%s\"%s\"", i ? ", " : ", flagged ", d->flags[i]);
}

/* Runs one test; on failure prints one line saying why. */
static bool run_one(const test_decl *t, clause_vm *vm) {
  outbuf why, json;
  ob_init_grow(&why);
  ob_init_grow(&json);
  const srcloc *where = &t->loc;
  int more = 0;
  for (int s = 0; s < t->nsteps; s++) {
    const test_step *st = &t->steps[s];
    json.len = 0;
    json.oom = false;
    outbuf step_why;
    ob_init_grow(&step_why);
    bool bound = false;
    if (!st->given) {
      ob_puts(&step_why, "the step has no given request");
    } else if (given_json(st->given, &json, &step_why)) {
      char msg[256];
      int column;
      bound = traffic_bind(vm, json.buf, json.len, NULL, msg, sizeof msg, &column);
      if (!bound) ob_printf(&step_why, "the given request is invalid: %s", msg);
    }
    clause_decision d;
    if (bound && clause_vm_eval(vm, &d) != CLAUSE_OK) {
      ob_puts(&step_why, "the given request could not be evaluated");
      bound = false;
    }
    if (!bound) {
      if (!why.len) {
        ob_put(&why, step_why.buf, step_why.len);
        where = st->given ? &st->given->loc : &st->loc;
      } else {
        more++;
      }
    }
    for (int e = 0; bound && e < st->nexpects; e++) {
      const expect_clause *x = &st->expects[e];
      if (expect_holds(x, &d)) continue;
      if (why.len) {
        more++;
        continue;
      }
      ob_puts(&why, "expected ");
      put_expectation(&why, x);
      ob_puts(&why, ", got ");
      put_decision(&why, &d);
      where = &x->loc;
    }
    ob_free(&step_why);
  }
  bool passed = why.len == 0;
  if (!passed) {
    printf("%s:%d:%d: test \"%s\" failed: %.*s", where->src ? where->src->path : "", where->line, where->col,
           t->name, (int)why.len, why.buf);
    if (more) printf(" (and %d more failed expectation%s)", more, more == 1 ? "" : "s");
    putchar('\n');
  }
  ob_free(&why);
  ob_free(&json);
  return passed;
}

/* Compiles one file and runs its tests. False on a compile or load error. */
static bool test_file(const char *path, const clause_options *opts, const char *store_url,
                      test_totals *tot) {
  arena a;
  arena_init(&a, 1 << 16);
  source *src = compile_read_source(path, &a);
  bool ok = false;
  if (!src) {
    fprintf(stderr, "%s: error: cannot read: %s\n", path, strerror(errno));
  } else if (src->len >= 4 && memcmp(src->text, CLB_MAGIC, 4) == 0) {
    fprintf(stderr, "%s: error: a bytecode file holds no tests; run clause test on the rule file\n", path);
  } else {
    diag_list d;
    diag_init(&d);
    clause_program *p = NULL;
    policy_file *pf = NULL;
    if (compile_policy(src, opts, &a, &d, &p, &pf) == CLAUSE_OK && compile_bind(p, pf, opts, &d) != CLAUSE_OK) {
      clause_program_free(p);
      p = NULL;
    }
    cli_render_diags(&d);
    diag_free(&d);
    clause_vm *vm = p ? clause_vm_new(p) : NULL;
    if (p && !vm) fprintf(stderr, "clause: out of memory\n");
    if (vm && pf) {
      ok = true;
      for (int i = 0; i < pf->ntests && ok; i++) {
        /* Every test starts with an empty state store (SPEC 8). */
        if (p->store && cli_use_fresh_store(vm, store_url) != 0) {
          ok = false;
          break;
        }
        if (run_one(&pf->tests[i], vm)) tot->passed++;
        else tot->failed++;
      }
    }
    clause_vm_free(vm);
    clause_program_free(p);
  }
  arena_free(&a);
  return ok;
}

static int run_test(int argc, char **argv) {
  cli_common common = {0};
  const char **files = calloc((size_t)argc, sizeof *files);
  int nfiles = 0;
  if (!files) {
    fprintf(stderr, "clause: out of memory\n");
    return EXIT_USAGE;
  }
  for (int i = 1; i < argc; i++) {
    int r;
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      free(files);
      return cli_help(&cmd_test);
    }
    if ((r = cli_common_option(&cmd_test, argc, argv, &i, &common))) {
      if (r < 0) {
        free(files);
        return EXIT_USAGE;
      }
      continue;
    }
    if (argv[i][0] == '-' && argv[i][1] != '\0') {
      free(files);
      return cli_usage_error(&cmd_test, "unknown option %s", argv[i]);
    }
    files[nfiles++] = argv[i];
  }
  if (!nfiles) {
    free(files);
    return cli_usage_error(&cmd_test, "missing POLICY");
  }
  clause_options *opts = cli_options(&common);
  bool load_error = !opts;
  test_totals tot = {0, 0};
  for (int i = 0; opts && i < nfiles; i++)
    if (!test_file(files[i], opts, common.store, &tot)) load_error = true;
  if (opts) printf("%d passed, %d failed\n", tot.passed, tot.failed);
  clause_options_free(opts);
  free(files);
  return load_error ? EXIT_USAGE : tot.failed ? EXIT_FAILED : EXIT_OK;
}
