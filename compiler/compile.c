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

#include "../vm/extern.h"
#include "../vm/options.h"
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

/* ---- modules (SPEC section 3: import) ------------------------------------------------ */

/* The installed stdlib, then (for a build run uninstalled: tests, demos)
 * the source tree's; both come from the build system. */
#ifdef CLAUSE_STDLIB_DIR
#define STDLIB_DIR CLAUSE_STDLIB_DIR
#else
#define STDLIB_DIR NULL
#endif
#ifdef CLAUSE_SRC_STDLIB_DIR
#define SRC_STDLIB_DIR CLAUSE_SRC_STDLIB_DIR
#else
#define SRC_STDLIB_DIR NULL
#endif

#define MAX_IMPORT_DEPTH 64

/* The modules a compile loads, each once, in dependency order. */
typedef struct module_set {
  arena *a;
  diag_list *d;
  const char **dirs;        /* where modules are searched, in order */
  int ndirs;
  const char *dirs_text;    /* "DIR:DIR" for messages */
  check_module *mods;
  policy_file **files;
  int nmods, cap;
  const char *loading[MAX_IMPORT_DEPTH]; /* the chain being loaded, for cycles */
  int depth;
} module_set;

static bool add_dir(module_set *ms, const char *dir, size_t n) {
  if (n == 0) return true;
  const char *copy = arena_strndup(ms->a, dir, n);
  if (!copy) return false;
  for (int i = 0; i < ms->ndirs; i++)
    if (strcmp(ms->dirs[i], copy) == 0) return true;
  ms->dirs[ms->ndirs++] = copy;
  return true;
}

/* The lib path's folders, then the installed and the source stdlib. */
static bool search_dirs(module_set *ms, const clause_options *opts) {
  const char *lib = opts ? opts->lib_path : NULL;
  int cap = 3;
  for (const char *p = lib; p && *p; p++) cap += *p == ':';
  ms->dirs = arena_alloc(ms->a, (size_t)(cap + 1) * sizeof *ms->dirs);
  if (!ms->dirs) return false;
  for (const char *p = lib; p && *p;) {
    const char *end = strchr(p, ':');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (!add_dir(ms, p, n)) return false;
    p += n + (end ? 1 : 0);
  }
  const char *builtin[] = {STDLIB_DIR, SRC_STDLIB_DIR};
  for (size_t i = 0; i < sizeof builtin / sizeof *builtin; i++)
    if (builtin[i] && !add_dir(ms, builtin[i], strlen(builtin[i]))) return false;
  outbuf o;
  ob_init_grow(&o);
  for (int i = 0; i < ms->ndirs; i++) {
    if (i) ob_putc(&o, ':');
    ob_puts(&o, ms->dirs[i]);
  }
  if (o.oom) {
    ob_free(&o);
    return false;
  }
  ms->dirs_text = ms->ndirs ? arena_strndup(ms->a, o.buf, o.len) : "(no folders)";
  ob_free(&o);
  return ms->dirs_text != NULL;
}

/* "std/geo": words of letters, digits, `_` and `-` between slashes. */
static bool module_path_ok(const char *path) {
  if (!*path) return false;
  for (const char *p = path; *p; p++) {
    bool word = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
                *p == '-';
    if (word) continue;
    if (*p != '/' || p == path || p[1] == 0 || p[1] == '/') return false;
  }
  return true;
}

/* A module declares only lets, externs and imports: anything else is an
 * error at that declaration, in the module. */
static void check_module_decls(const policy_file *m, diag_list *d) {
  const char *only = "a module holds only `let`, `extern` and `import` declarations";
  if (m->has_header) diag_error(d, m->header_loc, "%s, not a `policy` header", only);
  if (m->nfields) diag_error(d, m->fields[0].loc, "%s, not an `input` schema", only);
  for (int i = 0; i < m->ncounters; i++) diag_error(d, m->counters[i].loc, "%s, not a `counter`", only);
  for (int i = 0; i < m->nrules; i++) diag_error(d, m->rules[i].loc, "%s, not a `rule`", only);
  for (int i = 0; i < m->ntests; i++) diag_error(d, m->tests[i].loc, "%s, not a `test`", only);
}

static int find_module(const module_set *ms, const char *path) {
  for (int i = 0; i < ms->nmods; i++)
    if (strcmp(ms->mods[i].path, path) == 0) return i;
  return -1;
}

/* Reads module `path` from the first folder that has it; NULL (reported
 * at `at`) when none does or it cannot be read. */
static source *read_module(module_set *ms, const char *path, srcloc at) {
  for (int i = 0; i < ms->ndirs; i++) {
    size_t n = strlen(ms->dirs[i]) + strlen(path) + sizeof "/.clause";
    char *file = arena_alloc(ms->a, n);
    if (!file) return NULL;
    snprintf(file, n, "%s/%s.clause", ms->dirs[i], path);
    errno = 0;
    source *src = compile_read_source(file, ms->a);
    if (src) return src;
    if (errno == ENOENT || errno == ENOTDIR) continue;
    diag_error(ms->d, at, "cannot read module %s (%s): %s", path, file, strerror(errno));
    return NULL;
  }
  diag_error(ms->d, at, "no module %s in: %s", path, ms->dirs_text);
  return NULL;
}

static void load_imports(module_set *ms, const policy_file *from);

static void load_module(module_set *ms, const import_decl *im) {
  const char *path = im->path;
  if (!path) return;
  if (!module_path_ok(path)) {
    diag_error(ms->d, im->loc, "invalid module path \"%s\" (expected a path such as \"std/geo\")", path);
    return;
  }
  for (int i = 0; i < ms->depth; i++) {
    if (strcmp(ms->loading[i], path) != 0) continue;
    outbuf o;
    ob_init_grow(&o);
    for (int k = i; k < ms->depth; k++) ob_printf(&o, "%s -> ", ms->loading[k]);
    ob_puts(&o, path);
    ob_cstr(&o);
    diag_error(ms->d, im->loc, "import cycle: %s", o.oom ? path : o.buf);
    ob_free(&o);
    return;
  }
  if (find_module(ms, path) >= 0) return;
  if (ms->depth == MAX_IMPORT_DEPTH) {
    diag_error(ms->d, im->loc, "imports nest more than %d deep", MAX_IMPORT_DEPTH);
    return;
  }
  source *src = read_module(ms, path, im->loc);
  if (!src) return;
  policy_file *m = parse_policy(src, ms->a, ms->d);
  if (!m) return;
  check_module_decls(m, ms->d);
  ms->loading[ms->depth++] = path;
  load_imports(ms, m);
  ms->depth--;
  if (find_module(ms, path) >= 0) return; /* loaded through a cycle already reported */
  if (ms->nmods == ms->cap) {
    int cap = ms->cap ? ms->cap * 2 : 8;
    check_module *mods = arena_alloc(ms->a, (size_t)cap * sizeof *mods);
    policy_file **files = arena_alloc(ms->a, (size_t)cap * sizeof *files);
    if (!mods || !files) return;
    if (ms->nmods) {
      memcpy(mods, ms->mods, (size_t)ms->nmods * sizeof *mods);
      memcpy(files, ms->files, (size_t)ms->nmods * sizeof *files);
    }
    ms->mods = mods;
    ms->files = files;
    ms->cap = cap;
  }
  ms->mods[ms->nmods] = (check_module){path, m->imports, m->nimports};
  ms->files[ms->nmods++] = m;
}

static void load_imports(module_set *ms, const policy_file *from) {
  for (int i = 0; i < from->nimports; i++) load_module(ms, &from->imports[i]);
}

/* Appends the modules' lets and externs to the main file's, each marked
 * with its module's path (the checker scopes names by it). */
static bool merge_modules(module_set *ms, policy_file *pf) {
  int nlets = pf->nlets, nexterns = pf->nexterns;
  for (int i = 0; i < ms->nmods; i++) {
    nlets += ms->files[i]->nlets;
    nexterns += ms->files[i]->nexterns;
  }
  if (nlets == pf->nlets && nexterns == pf->nexterns) return true;
  let_decl *lets = arena_alloc(ms->a, (size_t)(nlets ? nlets : 1) * sizeof *lets);
  extern_decl *externs = arena_alloc(ms->a, (size_t)(nexterns ? nexterns : 1) * sizeof *externs);
  if (!lets || !externs) return false;
  if (pf->nlets) memcpy(lets, pf->lets, (size_t)pf->nlets * sizeof *lets);
  if (pf->nexterns) memcpy(externs, pf->externs, (size_t)pf->nexterns * sizeof *externs);
  int nl = pf->nlets, nx = pf->nexterns;
  for (int i = 0; i < ms->nmods; i++) {
    const policy_file *m = ms->files[i];
    for (int k = 0; k < m->nlets; k++) {
      lets[nl] = m->lets[k];
      lets[nl++].module = ms->mods[i].path;
    }
    for (int k = 0; k < m->nexterns; k++) {
      externs[nx] = m->externs[k];
      externs[nx++].module = ms->mods[i].path;
    }
  }
  pf->lets = lets;
  pf->nlets = nl;
  pf->externs = externs;
  pf->nexterns = nx;
  return true;
}

int compile_policy(const source *src, const clause_options *opts, arena *a, diag_list *d,
                   clause_program **out, policy_file **pf_out) {
  *out = NULL;
  policy_file *pf = parse_policy(src, a, d);
  if (d->errors || !pf) return CLAUSE_ERR_COMPILE;
  module_set ms = {.a = a, .d = d};
  if (pf->nimports) {
    if (!search_dirs(&ms, opts)) return CLAUSE_ERR_NOMEM;
    load_imports(&ms, pf);
    if (d->errors) return CLAUSE_ERR_COMPILE;
    if (!merge_modules(&ms, pf)) return CLAUSE_ERR_NOMEM;
  }
  if (!check_policy_modules(pf, ms.mods, ms.nmods, a, d) || d->errors) return CLAUSE_ERR_COMPILE;
  /* The modules' lets are the file's lets now: the code generator needs
   * nothing of the imports themselves. */
  clause_program draft;
  if (!codegen_policy(pf, a, d, &draft) || d->errors) return CLAUSE_ERR_COMPILE;
  if (pf_out) *pf_out = pf;
  return load_draft(&draft, d, src, out);
}

int compile_bind(clause_program *p, const policy_file *pf, const clause_options *opts, diag_list *d) {
  char err[512];
  uint32_t which;
  if (extern_bind(p, opts, err, sizeof err, &which) == 0) {
    /* Bound: the state store is the last part of preparing a program. */
    if (program_attach_store(p, opts, err, sizeof err) == CLAUSE_OK) return CLAUSE_OK;
    srcloc start = {pf->src, 1, 1, 1, 1};
    diag_error(d, start, "%s", err);
    return CLAUSE_ERR_NOMEM;
  }
  /* Reported at the declaration of the extern that failed: its `from`
   * string, or its name for a host function. */
  srcloc loc = {pf->src, 1, 1, 1, 1};
  const prog_extern *x = which < p->nexterns ? &p->externs[which] : NULL;
  for (int i = 0; x && i < pf->nexterns; i++) {
    const extern_decl *xd = &pf->externs[i];
    if (strcmp(xd->name, x->name) != 0 || !xd->lib != !x->lib || (x->lib && strcmp(xd->lib, x->lib) != 0))
      continue;
    loc = x->lib ? xd->lib_loc : xd->loc;
    break;
  }
  diag_error(d, loc, "%s", err);
  return CLAUSE_ERR_LOAD;
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
  } else {
    policy_file *pf = NULL;
    int rc = compile_policy(src, opts, &a, &d, &p, &pf);
    if (rc == CLAUSE_OK && compile_bind(p, pf, opts, &d) != CLAUSE_OK) {
      clause_program_free(p);
      p = NULL;
      rc = CLAUSE_ERR_LOAD;
    }
    if (rc != CLAUSE_OK) {
      compile_first_error(&d, err);
      if (err && !err->message[0]) snprintf(err->message, sizeof err->message, "compilation failed");
    }
  }
  diag_free(&d);
  arena_free(&a);
  return p;
}
