/*
 * test_extern.c - extern functions (SPEC section 6) through the public API:
 * calls through libffi into tests/.libs/libclausetest.so (built by `make
 * check` from tests/libclausetest.c) with every parameter and return type,
 * externs in `when`, `reason` and `then`; the allow-list (folders, `..`,
 * symbolic links, absolute paths, symbols of other libraries); missing
 * libraries and symbols; `.clb` files re-bound at load; host functions
 * (registration, errors through the call context, missing or mismatched
 * registrations, destructors, folding of pure calls); and several threads
 * calling the same externs at once through VMs of their own.
 *
 * Counter keys calling externs are not tested: counters are not compiled
 * yet in this build.
 */
#define _GNU_SOURCE /* dl_iterate_phdr */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <link.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../include/clause.h"
#include "compile.h"
#include "program.h"
#include "test_util.h"

/* Folder names are kept short, so that the paths made from them fit. */
static char libdir[1024]; /* the realpath of the test library's folder */
static char tmpdir[1024]; /* a fresh folder for policies and copies */

static int setup(void **state) {
  (void)state;
  char real[PATH_MAX];
  if (!realpath(extern_libdir(), real) || strlen(real) >= sizeof libdir) {
    fprintf(stderr, "no test library folder %s (set CLAUSE_BUILDDIR)\n", extern_libdir());
    return -1;
  }
  memcpy(libdir, real, strlen(real) + 1);
  snprintf(tmpdir, sizeof tmpdir, "/tmp/clause-extern-XXXXXX");
  if (!mkdtemp(tmpdir)) return -1;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char cmd[PATH_MAX + 16];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  return system(cmd) == 0 ? 0 : -1;
}

/* ---- helpers ---------------------------------------------------------------------- */

static clause_options *options(const char *extern_path) {
  clause_options *o = clause_options_new();
  assert_non_null(o);
  if (extern_path) assert_int_equal(clause_options_set_extern_path(o, extern_path), CLAUSE_OK);
  return o;
}

/* Writes `text` as tmpdir/NAME.clause; returns the path (static buffer). */
static const char *write_policy(const char *name, const char *text) {
  static char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/%s.clause", tmpdir, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  return path;
}

static clause_program *compile_ok(const char *path, const clause_options *o) {
  clause_error err;
  clause_program *p = clause_compile_file(path, o, &err);
  if (!p) fail_msg("%s:%d:%d: %s", err.file, err.line, err.column, err.message);
  return p;
}

/* Compiles, expecting a failure whose message contains `want`. */
static void compile_fails(const char *path, const clause_options *o, const char *want, clause_error *err) {
  clause_program *p = clause_compile_file(path, o, err);
  if (p) {
    clause_program_free(p);
    fail_msg("%s compiled; expected an error mentioning \"%s\"", path, want);
  }
  if (!strstr(err->message, want)) fail_msg("message \"%s\" does not mention \"%s\"", err->message, want);
}

/* The decision for one request, as JSON (static buffer). */
static const char *decide(clause_vm *vm, const char *json) {
  static char out[4096];
  clause_error err;
  clause_decision d;
  if (clause_vm_set_json(vm, json, strlen(json), &err) != CLAUSE_OK) fail_msg("request does not bind: %s", err.message);
  assert_int_equal(clause_vm_eval(vm, &d), CLAUSE_OK);
  int n = clause_decision_json(&d, out, sizeof out);
  assert_true(n > 0 && (size_t)n < sizeof out);
  return out;
}

static void expect_decision(clause_vm *vm, const char *json, const char *want) {
  const char *got = decide(vm, json);
  if (strcmp(got, want) != 0) fail_msg("request %s\n  decided %s\n  expected %s", json, got, want);
}

static void copy_file(const char *from, const char *to) {
  size_t n;
  char *bytes = read_whole(from, &n);
  assert_non_null(bytes);
  FILE *f = fopen(to, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(bytes, 1, n, f), n);
  fclose(f);
  free(bytes);
}

/* Whether an object whose path contains `part` is mapped in the process. */
static int find_object(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  return info->dlpi_name && strstr(info->dlpi_name, (const char *)data) != NULL;
}

static bool object_loaded(const char *part) { return dl_iterate_phdr(find_object, (void *)part) != 0; }

/* ---- every type, through libffi ------------------------------------------------------- */

static const char types_req1[] =
    "{\"request\": {\"user\": \"abc12345\", \"flag\": true, \"n\": 42, \"u\": 7, \"x\": 2.5,"
    " \"time\": \"2024-05-01T10:00:00Z\", \"wait\": \"15s\"}}";
static const char types_dec1[] =
    "{\"effect\":\"deny\",\"rule\":\"mostly-digits\",\"reason\":\"hello, abc12345\",\"cite\":null,\"flags\":[],"
    "\"obligations\":[{\"rule\":\"mostly-digits\",\"action\":\"log\",\"args\":[\"true 42 7 2.50 abc12345 "
    "1714557600000000000 15000000000\"]}],\"retry_after_ms\":null,\"errors\":[]}";
static const char types_req2[] =
    "{\"request\": {\"user\": \"alice\", \"flag\": false, \"n\": 42, \"u\": 3, \"x\": 2.5,"
    " \"time\": \"2024-05-01T10:00:00Z\", \"wait\": \"45s\"}}";
static const char types_dec2[] =
    "{\"effect\":\"throttle\",\"rule\":\"time\",\"reason\":\"until 2024-05-01T10:01:30Z\",\"cite\":null,"
    "\"flags\":[\"arithmetic\"],\"obligations\":[],\"retry_after_ms\":null,\"errors\":[]}";
static const char types_req3[] =
    "{\"request\": {\"user\": \"carol\", \"flag\": true, \"n\": 1, \"u\": 1, \"x\": 0,"
    " \"time\": \"2024-05-01T10:00:00Z\", \"wait\": \"1s\", \"note\": \"log\"}}";
static const char types_dec3[] =
    "{\"effect\":\"allow\",\"rule\":null,\"reason\":null,\"cite\":null,\"flags\":[\"failing-argument\"],"
    "\"obligations\":[{\"rule\":\"failing-argument\",\"action\":\"log\",\"args\":[null]}],\"retry_after_ms\":null,"
    "\"errors\":[{\"rule\":\"failing\",\"message\":\"fail failed (returned NULL)\"}]}";

static const char *types_path(void) {
  static char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/tests/extern/types.clause", srcdir());
  return path;
}

static void check_types_program(clause_program *p) {
  clause_vm *vm = clause_vm_new(p);
  assert_non_null(vm);
  expect_decision(vm, types_req1, types_dec1);
  expect_decision(vm, types_req2, types_dec2);
  expect_decision(vm, types_req3, types_dec3);
  clause_vm_free(vm);
}

static void test_every_type(void **state) {
  (void)state;
  clause_options *o = options(libdir);
  clause_program *p = compile_ok(types_path(), o);
  check_types_program(p);
  clause_program_free(p);
  clause_options_free(o);
}

/* Failing calls: the rule fails and on_error applies; an error argument is
 * the call's result without a call. */
static void test_call_errors(void **state) {
  (void)state;
  const char *path = write_policy(
      "errors",
      "policy \"errors\" { on_error deny }\n"
      "input {\n  request.s string\n  request.t timestamp\n  request.note string?\n}\n"
      "extern fn fail(why: string) -> string from \"libclausetest.so\" symbol \"ext_fail\"\n"
      "extern fn bad() -> string from \"libclausetest.so\" symbol \"ext_not_utf8\"\n"
      "extern fn len(s: string) -> int from \"libclausetest.so\" symbol \"ext_length\"\n"
      "extern fn later(t: timestamp, d: duration) -> timestamp from \"libclausetest.so\" symbol \"ext_later\"\n"
      "extern fn yes() -> bool from \"libclausetest.so\" symbol \"ext_true\"\n"
      "rule \"null\" { deny when request.s == \"null\" && fail(request.s) == \"\" }\n"
      "rule \"utf8\" { deny when request.s == \"utf8\" && bad() == \"\" }\n"
      "rule \"nul\" { deny when request.s.startsWith(\"nul\") && len(request.s) > 0 }\n"
      "rule \"absent\" { deny when request.s == \"absent\" && len(request.note) > 0 }\n"
      "rule \"range\" { deny when request.s == \"range\" && later(request.t, 1s) > request.t }\n"
      "rule \"fine\" { flag when request.s == \"fine\" && yes() && len(request.s) == 4 }\n");
  clause_options *o = options(libdir);
  clause_program *p = compile_ok(path, o);
  clause_vm *vm = clause_vm_new(p);
  assert_non_null(vm);
  static const struct {
    const char *s, *t, *reason;
  } cases[] = {
      {"null", "2024-01-01T00:00:00Z", "null: fail failed (returned NULL)"},
      {"utf8", "2024-01-01T00:00:00Z", "utf8: bad returned a string that is not valid UTF-8"},
      {"nul\\u0000x", "2024-01-01T00:00:00Z", "nul: argument 1 of len holds a NUL byte"},
      {"absent", "2024-01-01T00:00:00Z", "absent: no such key: request.note"},
      {"range", "2300-01-01T00:00:00Z",
       "range: integer overflow: argument 1 of later is a timestamp outside the int64 nanosecond range"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char req[256], want[512];
    snprintf(req, sizeof req, "{\"request\": {\"s\": \"%s\", \"t\": \"%s\"}}", cases[i].s, cases[i].t);
    const char *rule = cases[i].reason;
    int rlen = (int)(strchr(rule, ':') - rule);
    snprintf(want, sizeof want,
             "{\"effect\":\"deny\",\"rule\":\"%.*s\",\"reason\":\"%s\",\"cite\":null,\"flags\":[],\"obligations\":[],"
             "\"retry_after_ms\":null,\"errors\":[{\"rule\":\"%.*s\",\"message\":\"%s\"}]}",
             rlen, rule, rule, rlen, rule, rule + rlen + 2);
    expect_decision(vm, req, want);
  }
  expect_decision(vm, "{\"request\": {\"s\": \"fine\", \"t\": \"2024-01-01T00:00:00Z\"}}",
                  "{\"effect\":\"allow\",\"rule\":null,\"reason\":null,\"cite\":null,\"flags\":[\"fine\"],"
                  "\"obligations\":[],\"retry_after_ms\":null,\"errors\":[]}");
  clause_vm_free(vm);
  clause_program_free(p);
  clause_options_free(o);
}

/* ---- the allow-list ---------------------------------------------------------------------- */

static const char *lib_policy(const char *name, const char *lib, const char *symbol) {
  char text[8192];
  snprintf(text, sizeof text,
           "input {\n  request.s string\n}\n"
           "extern fn f(s: string) -> double from \"%s\" symbol \"%s\"\n"
           "rule \"r\" {\n  deny when f(request.s) > 0.5\n}\n",
           lib, symbol);
  return write_policy(name, text);
}

static void test_allow_list(void **state) {
  (void)state;
  clause_error err;
  char dirs[4096], lib[2048];

  /* No allow-list: nothing opens; the error is at the `from` string. */
  const char *path = lib_policy("plain", "libclausetest.so", "ext_score");
  compile_fails(path, NULL, "extern `f`: library \"libclausetest.so\" is not allowed: the extern allow-list is empty",
                &err);
  assert_int_equal(err.line, 4);
  assert_int_equal(err.column, 39);
  clause_options *o = options("");
  compile_fails(path, o, "allow-list is empty", &err);
  clause_options_free(o);

  /* Folders that do not exist are skipped; the first that holds LIB wins. */
  snprintf(dirs, sizeof dirs, "/nonexistent/clause:%s::%s", tmpdir, libdir);
  o = options(dirs);
  clause_program_free(compile_ok(path, o));
  clause_options_free(o);

  /* Not in any folder. */
  o = options(tmpdir);
  compile_fails(path, o, "library \"libclausetest.so\" not found in the extern path", &err);
  clause_options_free(o);

  /* An absolute path: allowed inside a folder, refused outside. */
  snprintf(lib, sizeof lib, "%s/libclausetest.so", libdir);
  path = lib_policy("absolute", lib, "ext_score");
  o = options(libdir);
  clause_program_free(compile_ok(path, o));
  clause_options_free(o);
  o = options(tmpdir);
  compile_fails(path, o, "outside the extern path", &err);
  clause_options_free(o);

  /* `..` and a symbolic link out of the allowed folder: a copy of the
   * library in a sibling folder is never opened. */
  char allowed[2048], outside[2048], copy[4096], link[4096];
  snprintf(allowed, sizeof allowed, "%s/allowed", tmpdir);
  snprintf(outside, sizeof outside, "%s/outside", tmpdir);
  assert_int_equal(mkdir(allowed, 0700), 0);
  assert_int_equal(mkdir(outside, 0700), 0);
  snprintf(copy, sizeof copy, "%s/libescape.so", outside);
  copy_file(lib, copy);
  snprintf(link, sizeof link, "%s/liblink.so", allowed);
  assert_int_equal(symlink(copy, link), 0);
  o = options(allowed);
  path = lib_policy("dotdot", "../outside/libescape.so", "ext_score");
  compile_fails(path, o, "library \"../outside/libescape.so\" resolves to", &err);
  assert_non_null(strstr(err.message, "outside the extern path"));
  path = lib_policy("symlink", "liblink.so", "ext_score");
  compile_fails(path, o, "library \"liblink.so\" resolves to", &err);
  clause_options_free(o);
  assert_false(object_loaded("libescape.so"));
  /* The same copy from a folder that allows it does open (so the checks
   * above refused for the right reason). */
  o = options(outside);
  path = lib_policy("copy", "libescape.so", "ext_score");
  clause_program *p = compile_ok(path, o);
  assert_true(object_loaded("libescape.so"));
  clause_program_free(p);
  assert_false(object_loaded("libescape.so")); /* closed with the program */
  clause_options_free(o);

  /* A missing symbol, and a symbol of a library LIB depends on (libc). */
  o = options(libdir);
  path = lib_policy("nosym", "libclausetest.so", "ext_no_such_function");
  compile_fails(path, o, "extern `f`: library \"libclausetest.so\" has no symbol \"ext_no_such_function\"", &err);
  path = lib_policy("libcsym", "libclausetest.so", "strtod");
  compile_fails(path, o, "symbol \"strtod\" is not defined by library \"libclausetest.so\"", &err);
  clause_options_free(o);

  /* A file that is no library. */
  snprintf(copy, sizeof copy, "%s/libtext.so", allowed);
  FILE *f = fopen(copy, "w");
  assert_non_null(f);
  fputs("not a shared object\n", f);
  fclose(f);
  o = options(allowed);
  path = lib_policy("text", "libtext.so", "ext_score");
  compile_fails(path, o, "extern `f`: cannot open library \"libtext.so\"", &err);
  clause_options_free(o);
}

/* ---- .clb files ---------------------------------------------------------------------------- */

static void test_clb_rebinds(void **state) {
  (void)state;
  clause_options *o = options(libdir);
  clause_program *p = compile_ok(types_path(), o);
  char clb[PATH_MAX + 16];
  snprintf(clb, sizeof clb, "%s/types.clb", tmpdir);
  clause_error err;
  assert_int_equal(clause_program_save(p, clb, &err), CLAUSE_OK);
  clause_program_free(p);
  size_t len;
  char *bytes = read_whole(clb, &len);
  assert_non_null(bytes);

  /* Without the allow-list the load fails, naming the library. */
  assert_null(clause_load(bytes, len, NULL, &err));
  assert_non_null(strstr(err.message, "library \"libclausetest.so\" is not allowed"));
  /* With it, the program decides as the compiled one did. */
  p = clause_load(bytes, len, o, &err);
  if (!p) fail_msg("load: %s", err.message);
  check_types_program(p);
  clause_program_free(p);

  /* Loaded without binding (what `clause disasm` does): evaluating it
   * reports the unbound externs as errors and calls nothing. */
  p = program_load(bytes, len, &err);
  assert_non_null(p);
  clause_vm *vm = clause_vm_new(p);
  assert_non_null(vm);
  const char *got = decide(vm, types_req1);
  assert_non_null(strstr(got, "\"effect\":\"allow\""));
  assert_non_null(strstr(got, "score: the program was loaded without binding its externs"));
  clause_vm_free(vm);
  clause_program_free(p);
  free(bytes);
  clause_options_free(o);
}

/* A .clb naming a library outside the allow-list (made by the compiler
 * without binding, as `clause compile` does) is refused at load. */
static void test_clb_outside(void **state) {
  (void)state;
  char lib[2048];
  snprintf(lib, sizeof lib, "%s/libclausetest.so", libdir);
  const char *path = lib_policy("clbout", lib, "ext_score");
  arena a;
  arena_init(&a, 1 << 14);
  diag_list d;
  diag_init(&d);
  source *src = compile_read_source(path, &a);
  assert_non_null(src);
  clause_program *p = NULL;
  assert_int_equal(compile_policy(src, NULL, &a, &d, &p, NULL), CLAUSE_OK);
  outbuf ob;
  ob_init_grow(&ob);
  assert_int_equal(clb_write(p, &ob), CLAUSE_OK);
  clause_program_free(p);
  diag_free(&d);
  arena_free(&a);
  clause_options *o = options(tmpdir);
  clause_error err;
  assert_null(clause_load(ob.buf, ob.len, o, &err));
  assert_non_null(strstr(err.message, "outside the extern path"));
  clause_options_free(o);
  o = options(libdir);
  p = clause_load(ob.buf, ob.len, o, &err);
  assert_non_null(p);
  clause_program_free(p);
  clause_options_free(o);
  ob_free(&ob);
}

/* ---- the verifier ----------------------------------------------------------------------------- */

/* Serializes p and loads it back with o: NULL and the message in err when
 * rejected. */
static clause_program *reload(const clause_program *p, const clause_options *o, clause_error *err) {
  outbuf ob;
  ob_init_grow(&ob);
  assert_int_equal(clb_write(p, &ob), CLAUSE_OK);
  clause_program *q = clause_load(ob.buf, ob.len, o, err);
  ob_free(&ob);
  return q;
}

static void expect_rejected(const clause_program *p, const clause_options *o, const char *want) {
  clause_error err;
  clause_program *q = reload(p, o, &err);
  if (q) {
    clause_program_free(q);
    fail_msg("loaded; expected a rejection mentioning \"%s\"", want);
  }
  if (!strstr(err.message, want)) fail_msg("message \"%s\" does not mention \"%s\"", err.message, want);
}

static void twice_fn(clause_call_ctx *ctx, const clause_value *args, size_t nargs, clause_value *result) {
  (void)ctx;
  (void)nargs;
  result->i = args[0].i * 2;
}

/* Hostile extern tables and calls are rejected before anything binds. */
static void test_verifier(void **state) {
  (void)state;
  static const clause_type T_INT[] = {CLAUSE_TYPE_INT};
  clause_options *o = options(libdir);
  assert_int_equal(clause_options_add_function(o, "twice", T_INT, 1, CLAUSE_TYPE_INT, twice_fn, NULL, NULL, 0),
                   CLAUSE_OK);
  char path[4096];
  snprintf(path, sizeof path, "%s/tests/extern/mutation.clause", srcdir());
  clause_program *p = compile_ok(path, o);
  assert_int_equal(p->nexterns, 2);
  uint32_t at = 0;
  while (at < p->ncode && INSTR_OP(p->code[at]) != BC_XCALL) at++;
  assert_true(at < p->ncode);
  instr saved = p->code[at];
  unsigned a = INSTR_A(saved), b = INSTR_B(saved);

  p->code[at] = INSTR_MAKE(BC_XCALL, a, b, 2); /* no extern 2 */
  expect_rejected(p, o, "extern 2 out of range");
  /* The arguments run past the last register (the arity comes from the
   * table, so a call cannot pass fewer or more). */
  p->code[at] = INSTR_MAKE(BC_XCALL, a, p->nregs - 1, INSTR_C(saved));
  expect_rejected(p, o, "out of range");
  p->code[at] = INSTR_MAKE(BC_XCALL, 0, b, INSTR_C(saved)); /* writes an input */
  expect_rejected(p, o, "writes input register");
  p->code[at] = saved;

  prog_extern *x = &p->externs[0];
  prog_extern keep = *x;
  uint8_t params[CLAUSE_MAX_PARAMS + 1] = {0};
  x->params = params;
  x->nparams = 2;
  params[0] = CV_INT;
  params[1] = CV_LIST; /* not an extern type */
  expect_rejected(p, o, "bad bytecode: extern 0 parameter 1 has an unknown type");
  for (int k = 0; k <= CLAUSE_MAX_PARAMS; k++) params[k] = CV_INT;
  x->nparams = CLAUSE_MAX_PARAMS + 1;
  expect_rejected(p, o, "bad bytecode: extern 0 has 17 parameters");
  *x = keep;
  x->ret = CV_BYTES;
  expect_rejected(p, o, "bad bytecode: extern 0 returns an unknown type");
  *x = keep;
  x->symbol = NULL; /* a library extern without a symbol */
  expect_rejected(p, o, "bad bytecode: extern 0 has a bad library or symbol");
  x->lib = NULL; /* now a host extern named `zero`, which no one registered */
  expect_rejected(p, o, "extern `zero` has no `from` library");
  *x = keep;
  clause_error err;
  clause_program *q = reload(p, o, &err);
  if (!q) fail_msg("the restored program does not load: %s", err.message);
  clause_program_free(q);
  clause_program_free(p);
  clause_options_free(o);
}

/* ---- host functions ------------------------------------------------------------------------ */

typedef struct host_state {
  atomic_int calls;
  atomic_int destroyed;
} host_state;

static void count_destroy(void *data) { atomic_fetch_add(&((host_state *)data)->destroyed, 1); }

/* reputation(user): the user name's length / 10; an empty name fails. */
static void host_reputation(clause_call_ctx *ctx, const clause_value *args, size_t nargs, clause_value *result) {
  host_state *st = clause_call_user_data(ctx);
  atomic_fetch_add(&st->calls, 1);
  assert_int_equal(nargs, 1);
  assert_int_equal(args[0].type, CLAUSE_TYPE_STRING);
  assert_int_equal(result->type, CLAUSE_TYPE_DOUBLE);
  if (args[0].s.len == 0) {
    clause_call_error(ctx, "empty user name");
    clause_call_error(ctx, "a second error is ignored");
    return;
  }
  assert_int_equal(args[0].s.ptr[args[0].s.len], '\0');
  result->d = (double)args[0].s.len / 10;
}

/* The argument back, whatever its type (strings through a thread-local
 * buffer: the result must outlive the call). */
static void host_identity(clause_call_ctx *ctx, const clause_value *args, size_t nargs, clause_value *result) {
  static _Thread_local char buf[256];
  host_state *st = clause_call_user_data(ctx);
  atomic_fetch_add(&st->calls, 1);
  assert_int_equal(nargs, 1);
  assert_int_equal(args[0].type, result->type);
  *result = args[0];
  if (args[0].type == CLAUSE_TYPE_STRING) {
    snprintf(buf, sizeof buf, "%s", args[0].s.ptr);
    result->s.ptr = buf;
  }
}

static const char host_policy[] =
    "input {\n  request.user string\n  request.flag bool\n  request.n int\n  request.u uint\n"
    "  request.x double\n  request.time timestamp\n  request.wait duration\n  request.note string?\n}\n"
    "extern fn reputation(user: string) -> double\n"
    "extern fn id_bool(x: bool) -> bool\n"
    "extern fn id_int(x: int) -> int\n"
    "extern fn id_uint(x: uint) -> uint\n"
    "extern fn id_double(x: double) -> double\n"
    "extern fn id_string(x: string) -> string\n"
    "extern fn id_timestamp(x: timestamp) -> timestamp\n"
    "extern fn id_duration(x: duration) -> duration\n"
    "rule \"bad-reputation\" {\n  reason id_string(request.user) + \" is not welcome\"\n"
    "  deny when reputation(request.user) > 0.5\n}\n"
    "rule \"identity\" {\n  flag when id_bool(request.flag) && id_int(request.n) == 42 && id_uint(request.u) == 7u\n"
    "    && id_double(request.x) == 2.5 && id_string(request.user) == \"alice\"\n"
    "    && id_timestamp(request.time) == request.time && id_duration(request.wait) == request.wait\n"
    "  then log(id_timestamp(request.time), id_duration(request.wait))\n}\n"
    "rule \"note\" {\n  flag when reputation(request.note) > 100.0\n}\n";

static const clause_type T_STR[] = {CLAUSE_TYPE_STRING};

/* Registers reputation and the id_* functions on `o`. */
static void register_host(clause_options *o, host_state *st) {
  assert_int_equal(clause_options_add_function(o, "reputation", T_STR, 1, CLAUSE_TYPE_DOUBLE, host_reputation, st,
                                               count_destroy, 0),
                   CLAUSE_OK);
  static const struct {
    const char *name;
    clause_type t;
  } ids[] = {
      {"id_bool", CLAUSE_TYPE_BOOL},     {"id_int", CLAUSE_TYPE_INT},
      {"id_uint", CLAUSE_TYPE_UINT},     {"id_double", CLAUSE_TYPE_DOUBLE},
      {"id_string", CLAUSE_TYPE_STRING}, {"id_timestamp", CLAUSE_TYPE_TIMESTAMP},
      {"id_duration", CLAUSE_TYPE_DURATION},
  };
  for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
    assert_int_equal(
        clause_options_add_function(o, ids[i].name, &ids[i].t, 1, ids[i].t, host_identity, st, count_destroy, 0),
        CLAUSE_OK);
}

static void test_host_functions(void **state) {
  (void)state;
  host_state st = {0, 0};
  clause_options *o = options(NULL);
  register_host(o, &st);
  const char *path = write_policy("host", host_policy);
  clause_program *p = compile_ok(path, o);
  clause_vm *vm = clause_vm_new(p);
  assert_non_null(vm);
  expect_decision(vm,
                  "{\"request\": {\"user\": \"alice\", \"flag\": true, \"n\": 42, \"u\": 7, \"x\": 2.5,"
                  " \"time\": \"2024-05-01T10:00:00.250Z\", \"wait\": \"1.5s\"}}",
                  "{\"effect\":\"allow\",\"rule\":null,\"reason\":null,\"cite\":null,\"flags\":[\"identity\"],"
                  "\"obligations\":[{\"rule\":\"identity\",\"action\":\"log\",\"args\":[\"2024-05-01T10:00:00.250Z\","
                  "\"1.5s\"]}],\"retry_after_ms\":null,"
                  "\"errors\":[{\"rule\":\"note\",\"message\":\"no such key: request.note\"}]}");
  int before = atomic_load(&st.calls);
  expect_decision(vm,
                  "{\"request\": {\"user\": \"mallory\", \"flag\": false, \"n\": 1, \"u\": 1, \"x\": 0,"
                  " \"time\": \"2024-05-01T10:00:00Z\", \"wait\": \"1s\", \"note\": \"\"}}",
                  "{\"effect\":\"deny\",\"rule\":\"bad-reputation\",\"reason\":\"mallory is not welcome\",\"cite\":null,"
                  "\"flags\":[],\"obligations\":[],\"retry_after_ms\":null,"
                  "\"errors\":[{\"rule\":\"note\",\"message\":\"reputation: empty user name\"}]}");
  /* reputation twice, id_bool once (false ends the conjuncts), id_string
   * for the reason. */
  assert_int_equal(atomic_load(&st.calls) - before, 4);
  /* An absent argument is the call's error: reputation is not called. */
  before = atomic_load(&st.calls);
  decide(vm, "{\"request\": {\"user\": \"bo\", \"flag\": false, \"n\": 1, \"u\": 1, \"x\": 0,"
             " \"time\": \"2024-05-01T10:00:00Z\", \"wait\": \"1s\"}}");
  assert_int_equal(atomic_load(&st.calls) - before, 2);
  clause_vm_free(vm);
  clause_program_free(p);
  assert_int_equal(atomic_load(&st.destroyed), 0);
  clause_options_free(o);
  assert_int_equal(atomic_load(&st.destroyed), 8); /* one per registration */
}

static void test_host_load_errors(void **state) {
  (void)state;
  host_state st = {0, 0};
  clause_error err;
  const char *path = write_policy("host", host_policy);

  /* Not registered at all; then all but one. */
  compile_fails(path, NULL, "extern `reputation` has no `from` library and no host function is registered", &err);
  assert_int_equal(err.line, 11);
  assert_int_equal(err.column, 11);
  clause_options *o = options(NULL);
  static const clause_type T_BOOL[] = {CLAUSE_TYPE_BOOL};
  assert_int_equal(clause_options_add_function(o, "reputation", T_STR, 1, CLAUSE_TYPE_DOUBLE, host_reputation, &st,
                                               count_destroy, 0),
                   CLAUSE_OK);
  assert_int_equal(clause_options_add_function(o, "id_bool", T_BOOL, 1, CLAUSE_TYPE_BOOL, host_identity, &st,
                                               count_destroy, 0),
                   CLAUSE_OK);
  compile_fails(path, o, "extern `id_int` has no `from` library", &err);
  clause_options_free(o);

  /* Registered with another signature. */
  o = options(NULL);
  register_host(o, &st);
  clause_options *wrong = options(NULL);
  static const clause_type T_INT_STR[] = {CLAUSE_TYPE_INT, CLAUSE_TYPE_STRING};
  assert_int_equal(clause_options_add_function(wrong, "reputation", T_INT_STR, 2, CLAUSE_TYPE_BOOL, host_reputation,
                                               &st, count_destroy, 0),
                   CLAUSE_OK);
  compile_fails(path, wrong,
                "extern `reputation`: the host function registered is (int, string) -> bool, the program declares "
                "(string) -> double",
                &err);
  clause_options_free(wrong);

  /* The same through a .clb file. */
  clause_program *p = compile_ok(path, o);
  outbuf ob;
  ob_init_grow(&ob);
  assert_int_equal(clb_write(p, &ob), CLAUSE_OK);
  clause_program_free(p);
  assert_null(clause_load(ob.buf, ob.len, NULL, &err));
  assert_non_null(strstr(err.message, "extern `reputation` has no `from` library"));
  p = clause_load(ob.buf, ob.len, o, &err);
  assert_non_null(p);
  clause_program_free(p);
  ob_free(&ob);
  clause_options_free(o);
}

/* The destructor runs exactly once per user_data: at options free, or at
 * once when the registration fails. */
static void test_host_destructors(void **state) {
  (void)state;
  host_state st = {0, 0};
  clause_options *o = options(NULL);
  static const clause_type bad_type[] = {(clause_type)99};
  clause_type many[CLAUSE_MAX_PARAMS + 1];
  for (size_t i = 0; i < CLAUSE_MAX_PARAMS + 1; i++) many[i] = CLAUSE_TYPE_INT;
  assert_int_equal(clause_options_add_function(o, "f", T_STR, 1, CLAUSE_TYPE_BOOL, host_identity, &st, count_destroy, 0),
                   CLAUSE_OK);
  int failures = 0;
  /* Each of these fails and destroys its user data at once. */
  failures += clause_options_add_function(o, "f", T_STR, 1, CLAUSE_TYPE_BOOL, host_identity, &st, count_destroy, 0) ==
              CLAUSE_ERR_ARG; /* duplicate name */
  failures += clause_options_add_function(NULL, "g", T_STR, 1, CLAUSE_TYPE_BOOL, host_identity, &st, count_destroy,
                                          0) == CLAUSE_ERR_ARG;
  failures += clause_options_add_function(o, "1g", T_STR, 1, CLAUSE_TYPE_BOOL, host_identity, &st, count_destroy, 0) ==
              CLAUSE_ERR_ARG;
  failures += clause_options_add_function(o, NULL, T_STR, 1, CLAUSE_TYPE_BOOL, host_identity, &st, count_destroy, 0) ==
              CLAUSE_ERR_ARG;
  failures += clause_options_add_function(o, "g", T_STR, 1, CLAUSE_TYPE_BOOL, NULL, &st, count_destroy, 0) ==
              CLAUSE_ERR_ARG;
  failures += clause_options_add_function(o, "g", bad_type, 1, CLAUSE_TYPE_BOOL, host_identity, &st, count_destroy,
                                          0) == CLAUSE_ERR_ARG;
  failures += clause_options_add_function(o, "g", T_STR, 1, (clause_type)0, host_identity, &st, count_destroy, 0) ==
              CLAUSE_ERR_ARG;
  failures += clause_options_add_function(o, "g", many, CLAUSE_MAX_PARAMS + 1, CLAUSE_TYPE_BOOL, host_identity, &st,
                                          count_destroy, 0) == CLAUSE_ERR_ARG;
  failures += clause_options_add_function(o, "g", NULL, 1, CLAUSE_TYPE_BOOL, host_identity, &st, count_destroy, 0) ==
              CLAUSE_ERR_ARG;
  failures += clause_options_add_function(o, "g", T_STR, 1, CLAUSE_TYPE_BOOL, host_identity, &st, count_destroy,
                                          0x100) == CLAUSE_ERR_ARG;
  assert_int_equal(failures, 10);
  assert_int_equal(atomic_load(&st.destroyed), 10);
  /* A NULL destructor is fine; so are zero parameters. */
  assert_int_equal(clause_options_add_function(o, "g", NULL, 0, CLAUSE_TYPE_BOOL, host_identity, NULL, NULL,
                                               CLAUSE_FN_PURE),
                   CLAUSE_OK);
  clause_options_free(o);
  assert_int_equal(atomic_load(&st.destroyed), 11);
}

/* length(s): strlen, counting its calls. */
static void host_length(clause_call_ctx *ctx, const clause_value *args, size_t nargs, clause_value *result) {
  host_state *st = clause_call_user_data(ctx);
  atomic_fetch_add(&st->calls, 1);
  (void)nargs;
  result->i = (int64_t)args[0].s.len;
}

/* A pure function's calls with constant arguments are made once, at load;
 * the others on every evaluation. */
static void test_pure_folding(void **state) {
  (void)state;
  const char *path = write_policy(
      "pure",
      "input {\n  request.user string\n}\n"
      "let greeting = \"welcome\"\n"
      "extern fn length(s: string) -> int\n"
      "rule \"long\" {\n  reason \"length \" + string(length(greeting))\n"
      "  deny when length(\"constant\") == 8 && length(request.user) > 3\n}\n");
  for (int pure = 0; pure < 2; pure++) {
    host_state st = {0, 0};
    clause_options *o = options(NULL);
    assert_int_equal(clause_options_add_function(o, "length", T_STR, 1, CLAUSE_TYPE_INT, host_length, &st, NULL,
                                                 pure ? CLAUSE_FN_PURE : 0),
                     CLAUSE_OK);
    clause_program *p = compile_ok(path, o);
    assert_int_equal(atomic_load(&st.calls), pure ? 2 : 0);
    clause_vm *vm = clause_vm_new(p);
    assert_non_null(vm);
    for (int i = 0; i < 10; i++)
      expect_decision(vm, "{\"request\": {\"user\": \"eve-1\"}}",
                      "{\"effect\":\"deny\",\"rule\":\"long\",\"reason\":\"length 7\",\"cite\":null,\"flags\":[],"
                      "\"obligations\":[],\"retry_after_ms\":null,\"errors\":[]}");
    assert_int_equal(atomic_load(&st.calls), pure ? 2 + 10 : 30);
    clause_vm_free(vm);
    clause_program_free(p);
    clause_options_free(o);
  }
}

/* ---- threads --------------------------------------------------------------------------------- */

#define NTHREADS 4
#define EVALS_PER_THREAD 20000

typedef struct thread_job {
  pthread_t thread;
  const clause_program *p;
  int id;
  int wrong;
} thread_job;

/* Each thread's user has its own digits, so a reason made from another
 * thread's buffer would show. */
static void *thread_main(void *arg) {
  thread_job *j = arg;
  clause_vm *vm = clause_vm_new(j->p);
  if (!vm) {
    j->wrong = -1;
    return NULL;
  }
  char req[256], want[64];
  snprintf(req, sizeof req, "{\"request\": {\"user\": \"%d%d%d%d-x\", \"n\": %d}}", j->id, j->id, j->id, j->id, j->id);
  snprintf(want, sizeof want, "hello, %d%d%d%d-x", j->id, j->id, j->id, j->id);
  clause_error err;
  if (clause_vm_set_json(vm, req, strlen(req), &err) != CLAUSE_OK) j->wrong = -1;
  for (int i = 0; i < EVALS_PER_THREAD && !j->wrong; i++) {
    clause_decision d;
    if (clause_vm_eval(vm, &d) != CLAUSE_OK || d.effect != CLAUSE_DENY || !d.reason || strcmp(d.reason, want) != 0 ||
        d.n_errors != 0)
      j->wrong++;
  }
  clause_vm_free(vm);
  return NULL;
}

static void test_threads(void **state) {
  (void)state;
  const char *path = write_policy(
      "threads",
      "input {\n  request.user string\n  request.n int\n}\n"
      "extern fn greet(name: string) -> string from \"libclausetest.so\" symbol \"ext_greet\"\n"
      "extern fn score(s: string) -> double from \"libclausetest.so\" symbol \"ext_score\"\n"
      "extern fn count(x: int) -> int from \"libclausetest.so\" symbol \"ext_count\"\n"
      "extern fn length(s: string) -> int\n"
      "rule \"digits\" {\n  reason greet(request.user)\n"
      "  deny when score(request.user) > 0.5 && count(request.n) == request.n + 1 && length(request.user) == 6\n}\n");
  host_state st = {0, 0};
  clause_options *o = options(libdir);
  assert_int_equal(clause_options_add_function(o, "length", T_STR, 1, CLAUSE_TYPE_INT, host_length, &st, NULL, 0),
                   CLAUSE_OK);
  clause_program *p = compile_ok(path, o);
  thread_job jobs[NTHREADS];
  for (int t = 0; t < NTHREADS; t++) {
    jobs[t] = (thread_job){.p = p, .id = t + 1};
    assert_int_equal(pthread_create(&jobs[t].thread, NULL, thread_main, &jobs[t]), 0);
  }
  for (int t = 0; t < NTHREADS; t++) {
    pthread_join(jobs[t].thread, NULL);
    if (jobs[t].wrong) fail_msg("thread %d: %d wrong decisions", t + 1, jobs[t].wrong);
  }
  assert_int_equal(atomic_load(&st.calls), NTHREADS * EVALS_PER_THREAD);
  clause_program_free(p);
  clause_options_free(o);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_type),       cmocka_unit_test(test_call_errors),
      cmocka_unit_test(test_allow_list),       cmocka_unit_test(test_clb_rebinds),
      cmocka_unit_test(test_clb_outside),      cmocka_unit_test(test_verifier),
      cmocka_unit_test(test_host_functions),
      cmocka_unit_test(test_host_load_errors), cmocka_unit_test(test_host_destructors),
      cmocka_unit_test(test_pure_folding),     cmocka_unit_test(test_threads),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
