/*
 * extern.c - extern functions (SPEC section 6): host function registration,
 * binding a program's externs at load, and the calls the VM makes.
 *
 * A `from "LIB"` extern is a plain C function called through libffi: its
 * ffi_cif (and the ffi_type array it points to) is prepared once, here, and
 * lives as long as the program; every call then marshals the arguments into
 * a small array of slots on the stack and goes through ffi_call. A host
 * function is called directly with clause_value arguments, no libffi.
 *
 * The allow-list is the one place that decides which files may be opened:
 * LIB is looked up in each allowed folder, the candidate is resolved with
 * realpath (following `..` and symbolic links), and dlopen is given that
 * absolute path only when it lies inside the folder, so the dynamic
 * linker's own search (LD_LIBRARY_PATH, the cache) never takes part.
 */
#define _GNU_SOURCE /* dladdr, dlinfo */
#include "extern.h"

#include <dlfcn.h>
#include <ffi.h>
#include <limits.h>
#include <link.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

/* A C bool is passed and returned as ffi_type_uint8. */
_Static_assert(sizeof(bool) == 1, "bool must be one byte");

/* One extern, bound. */
typedef struct extern_binding {
  /* from "LIB" */
  void *handle;          /* dlopen's */
  void (*fn)(void);
  ffi_cif cif;
  ffi_type *atypes[CLAUSE_MAX_PARAMS]; /* the cif points here */
  /* host function */
  clause_host_fn host;
  void *user_data;
  bool pure;
  /* both: the public types of the parameters and the result */
  clause_type ptypes[CLAUSE_MAX_PARAMS];
  clause_type rtype;
} extern_binding;

struct extern_rt {
  extern_binding *fns;   /* per extern */
  value *folded;         /* per instruction: a folded XCALL's result, else
                            CV_UNSET; NULL when nothing was folded */
  arena mem;             /* strings of folded results */
};

struct clause_call_ctx {
  const prog_extern *x;
  const extern_binding *b;
  cel_ctx *cel;          /* where the error message is copied */
  bool failed;
  value error;
};

/* ---- types ------------------------------------------------------------------- */

static const uint8_t kind_of_type[] = {
    [CLAUSE_TYPE_BOOL] = CV_BOOL,           [CLAUSE_TYPE_INT] = CV_INT,
    [CLAUSE_TYPE_UINT] = CV_UINT,           [CLAUSE_TYPE_DOUBLE] = CV_DOUBLE,
    [CLAUSE_TYPE_STRING] = CV_STRING,       [CLAUSE_TYPE_TIMESTAMP] = CV_TIMESTAMP,
    [CLAUSE_TYPE_DURATION] = CV_DURATION,
};

static bool type_valid(clause_type t) { return t >= CLAUSE_TYPE_BOOL && t <= CLAUSE_TYPE_DURATION; }

static clause_type type_of_kind(uint8_t kind) {
  for (int t = CLAUSE_TYPE_BOOL; t <= CLAUSE_TYPE_DURATION; t++)
    if (kind_of_type[t] == kind) return (clause_type)t;
  return (clause_type)0; /* unreachable: the verifier admits the closed set only */
}

/* The name as a declaration writes it. */
static const char *kind_name(uint8_t kind) {
  switch (kind) {
  case CV_TIMESTAMP: return "timestamp";
  case CV_DURATION: return "duration";
  default: return cv_kind_name((cv_kind)kind);
  }
}

static ffi_type *ffi_type_of(uint8_t kind) {
  switch (kind) {
  case CV_BOOL: return &ffi_type_uint8;
  case CV_UINT: return &ffi_type_uint64;
  case CV_DOUBLE: return &ffi_type_double;
  case CV_STRING: return &ffi_type_pointer;
  default: return &ffi_type_sint64; /* int, timestamp, duration */
  }
}

/* ---- host functions (clause.h) ---------------------------------------------------- */

static bool identifier_ok(const char *s) {
  if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_')) return false;
  for (s++; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_'))
      return false;
  return true;
}

int clause_options_add_function(clause_options *o, const char *name, const clause_type *params,
                                size_t nparams, clause_type ret, clause_host_fn fn, void *user_data,
                                void (*destroy)(void *), unsigned flags) {
  int rc = CLAUSE_OK;
  if (!o || !name || !identifier_ok(name) || !fn || nparams > CLAUSE_MAX_PARAMS || (nparams && !params) ||
      !type_valid(ret) || (flags & ~CLAUSE_FN_PURE))
    rc = CLAUSE_ERR_ARG;
  for (size_t k = 0; rc == CLAUSE_OK && k < nparams; k++)
    if (!type_valid(params[k])) rc = CLAUSE_ERR_ARG;
  /* A second registration under a name is refused rather than replacing
   * the first: programs already loaded may be calling it. */
  for (size_t i = 0; rc == CLAUSE_OK && i < o->nfunctions; i++)
    if (strcmp(o->functions[i].name, name) == 0) rc = CLAUSE_ERR_ARG;
  if (rc == CLAUSE_OK && o->nfunctions == o->capfunctions) {
    size_t cap = o->capfunctions ? 2 * o->capfunctions : 8;
    host_function *grown = realloc(o->functions, cap * sizeof *grown);
    if (grown) {
      o->functions = grown;
      o->capfunctions = cap;
    } else {
      rc = CLAUSE_ERR_NOMEM;
    }
  }
  char *copy = rc == CLAUSE_OK ? strdup(name) : NULL;
  if (rc == CLAUSE_OK && !copy) rc = CLAUSE_ERR_NOMEM;
  if (rc != CLAUSE_OK) {
    if (destroy) destroy(user_data); /* the caller handed it over either way */
    return rc;
  }
  host_function *h = &o->functions[o->nfunctions++];
  memset(h, 0, sizeof *h);
  h->name = copy;
  for (size_t k = 0; k < nparams; k++) h->params[k] = params[k];
  h->nparams = nparams;
  h->ret = ret;
  h->fn = fn;
  h->user_data = user_data;
  h->destroy = destroy;
  h->flags = flags;
  return CLAUSE_OK;
}

void extern_free_functions(clause_options *o) {
  for (size_t i = 0; i < o->nfunctions; i++) {
    if (o->functions[i].destroy) o->functions[i].destroy(o->functions[i].user_data);
    free(o->functions[i].name);
  }
  free(o->functions);
  o->functions = NULL;
  o->nfunctions = o->capfunctions = 0;
}

void *clause_call_user_data(clause_call_ctx *ctx) { return ctx ? ctx->b->user_data : NULL; }

void clause_call_error(clause_call_ctx *ctx, const char *message) {
  if (!ctx || ctx->failed) return; /* the first error stands */
  ctx->failed = true;
  ctx->error = cv_error(ctx->cel, "%s: %s", ctx->x->name, message && *message ? message : "failed");
}

/* ---- binding ------------------------------------------------------------------------- */

static void bind_error(char *err, size_t errcap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void bind_error(char *err, size_t errcap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errcap, fmt, ap);
  va_end(ap);
}

/* Whether the resolved file lies inside the resolved folder. */
static bool path_inside(const char *file, const char *dir) {
  size_t n = strlen(dir);
  if (n == 1 && dir[0] == '/') return true;
  return strncmp(file, dir, n) == 0 && file[n] == '/';
}

/* The absolute path of x->lib inside a folder of `dirs`, into `out`. */
static int resolve_library(const prog_extern *x, const char *dirs, char *out, char *err, size_t errcap) {
  if (!dirs || !*dirs) {
    bind_error(err, errcap,
               "extern `%s`: library \"%s\" is not allowed: the extern allow-list is empty "
               "(--extern-path)",
               x->name, x->lib);
    return -1;
  }
  char dir[PATH_MAX], rdir[PATH_MAX], cand[PATH_MAX], rfile[PATH_MAX], outside[PATH_MAX];
  bool found_outside = false;
  for (const char *p = dirs; *p;) {
    const char *end = strchr(p, ':');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    const char *next = p + n + (end ? 1 : 0);
    if (n == 0 || n >= sizeof dir) {
      p = next;
      continue;
    }
    memcpy(dir, p, n);
    dir[n] = '\0';
    p = next;
    if (!realpath(dir, rdir)) continue; /* a folder that does not exist holds nothing */
    int w = x->lib[0] == '/' ? snprintf(cand, sizeof cand, "%s", x->lib)
                             : snprintf(cand, sizeof cand, "%s/%s", rdir, x->lib);
    if (w < 0 || (size_t)w >= sizeof cand || !realpath(cand, rfile)) continue;
    if (path_inside(rfile, rdir)) {
      memcpy(out, rfile, strlen(rfile) + 1);
      return 0;
    }
    if (!found_outside) memcpy(outside, rfile, strlen(rfile) + 1);
    found_outside = true;
  }
  if (found_outside)
    bind_error(err, errcap, "extern `%s`: library \"%s\" resolves to %s, outside the extern path (%s)", x->name,
               x->lib, outside, dirs);
  else
    bind_error(err, errcap, "extern `%s`: library \"%s\" not found in the extern path (%s)", x->name, x->lib,
               dirs);
  return -1;
}

/* Whether `sym` is defined by the object `handle` opened, and not by one
 * of the libraries it depends on (dlsym searches those too): an allowed
 * library must not lend out the symbols of everything it links with. */
static bool defined_by(void *handle, void *sym, const char **where) {
  struct link_map *lm = NULL;
  Dl_info info;
  *where = "an unknown object";
  if (dlinfo(handle, RTLD_DI_LINKMAP, &lm) != 0 || !lm || !lm->l_name) return false;
  if (!dladdr(sym, &info) || !info.dli_fname) return false;
  *where = info.dli_fname;
  return strcmp(info.dli_fname, lm->l_name) == 0;
}

static int bind_library(const prog_extern *x, extern_binding *b, const clause_options *opts, char *err,
                        size_t errcap) {
  char path[PATH_MAX];
  if (resolve_library(x, opts ? opts->extern_path : NULL, path, err, errcap)) return -1;
  dlerror();
  b->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!b->handle) {
    const char *why = dlerror();
    bind_error(err, errcap, "extern `%s`: cannot open library \"%s\": %s", x->name, x->lib, why ? why : path);
    return -1;
  }
  dlerror();
  void *sym = dlsym(b->handle, x->symbol);
  if (!sym) {
    bind_error(err, errcap, "extern `%s`: library \"%s\" has no symbol \"%s\"", x->name, x->lib, x->symbol);
    return -1;
  }
  const char *where;
  if (!defined_by(b->handle, sym, &where)) {
    bind_error(err, errcap, "extern `%s`: symbol \"%s\" is not defined by library \"%s\" (it is in %s)", x->name,
               x->symbol, x->lib, where);
    return -1;
  }
  /* dlsym answers with an object pointer; POSIX guarantees that it converts
   * to the function pointer it is. */
  memcpy(&b->fn, &sym, sizeof b->fn);
  for (uint32_t k = 0; k < x->nparams; k++) b->atypes[k] = ffi_type_of(x->params[k]);
  if (ffi_prep_cif(&b->cif, FFI_DEFAULT_ABI, x->nparams, ffi_type_of(x->ret), b->atypes) != FFI_OK) {
    bind_error(err, errcap, "extern `%s`: libffi cannot prepare a call to \"%s\"", x->name, x->symbol);
    return -1;
  }
  return 0;
}

/* "(int, string) -> bool" from cv_kinds. */
static void signature_text(outbuf *o, const uint8_t *params, size_t n, uint8_t ret) {
  ob_putc(o, '(');
  for (size_t k = 0; k < n; k++) ob_printf(o, "%s%s", k ? ", " : "", kind_name(params[k]));
  ob_printf(o, ") -> %s", kind_name(ret));
}

static int bind_host(const prog_extern *x, extern_binding *b, const clause_options *opts, char *err,
                     size_t errcap) {
  const host_function *h = NULL;
  for (size_t i = 0; opts && i < opts->nfunctions && !h; i++)
    if (strcmp(opts->functions[i].name, x->name) == 0) h = &opts->functions[i];
  if (!h) {
    bind_error(err, errcap, "extern `%s` has no `from` library and no host function is registered under that name",
               x->name);
    return -1;
  }
  bool same = h->nparams == x->nparams && kind_of_type[h->ret] == x->ret;
  uint8_t registered[CLAUSE_MAX_PARAMS];
  for (size_t k = 0; k < h->nparams; k++) {
    registered[k] = kind_of_type[h->params[k]];
    if (k < x->nparams && registered[k] != x->params[k]) same = false;
  }
  if (!same) {
    char a[256], d[256];
    outbuf oa, od;
    ob_init_fixed(&oa, a, sizeof a);
    ob_init_fixed(&od, d, sizeof d);
    signature_text(&oa, registered, h->nparams, kind_of_type[h->ret]);
    signature_text(&od, x->params, x->nparams, x->ret);
    bind_error(err, errcap, "extern `%s`: the host function registered is %s, the program declares %s", x->name,
               ob_cstr(&oa), ob_cstr(&od));
    return -1;
  }
  b->host = h->fn;
  b->user_data = h->user_data;
  b->pure = (h->flags & CLAUSE_FN_PURE) != 0;
  return 0;
}

/* ---- calling ------------------------------------------------------------------------- */

/* timestamp -> int64 nanoseconds, false when outside its range. */
static bool timestamp_ns(const value *v, int64_t *ns) {
  int64_t t;
  return !__builtin_mul_overflow(v->i, (int64_t)1000000000, &t) && !__builtin_add_overflow(t, (int64_t)v->n, ns);
}

static value ns_timestamp(int64_t ns) {
  int64_t secs = ns / 1000000000, nanos = ns % 1000000000;
  if (nanos < 0) {
    nanos += 1000000000;
    secs--;
  }
  return cv_timestamp(secs, (uint32_t)nanos);
}

/* A returned string: copied at once (the function keeps its memory). */
static value take_string(cel_ctx *ctx, const prog_extern *x, const char *s, size_t n) {
  if (!s) return cv_error(ctx, "%s failed (returned NULL)", x->name);
  if (n > UINT32_MAX) return cv_error(ctx, "%s returned a string too long", x->name);
  if (!cel_utf8_valid(s, n)) return cv_error(ctx, "%s returned a string that is not valid UTF-8", x->name);
  char *copy = arena_strndup(ctx->scratch, s, n);
  if (!copy) return cv_static_error("out of memory", 13, CV_ERR_GENERIC);
  return cv_string(copy, (uint32_t)n);
}

/* The result, from the C value in `r` of the declared return type. */
static value result_value(cel_ctx *ctx, const prog_extern *x, const clause_value *r) {
  switch ((cv_kind)x->ret) {
  case CV_BOOL: return cv_bool(r->b);
  case CV_INT: return cv_int(r->i);
  case CV_UINT: return cv_uint(r->u);
  case CV_DOUBLE: return cv_double(r->d);
  case CV_STRING: return take_string(ctx, x, r->s.ptr, r->s.len);
  case CV_TIMESTAMP: return ns_timestamp(r->i);
  default: return cv_duration(r->i);
  }
}

/* Arguments -> C values, in one representation for both kinds of call:
 * a host function reads the clause_values, and libffi reads each one's
 * union member, which starts where the union does. False with *dst the
 * result when the function must not be called. */
static bool marshal(cel_ctx *ctx, const prog_extern *x, const extern_binding *b, const value *args,
                    clause_value *cv, value *dst) {
  for (uint32_t k = 0; k < x->nparams; k++) {
    const value *a = &args[k];
    if (__builtin_expect(a->kind != x->params[k], 0)) {
      if (a->kind == CV_ERROR) /* CEL: an error argument is the call's result */
        *dst = *a;
      else /* only `dyn` values get here: the checker types the rest */
        *dst = cv_error(ctx, "no matching overload: argument %u of %s is %s, not %s", k + 1, x->name,
                        kind_name(a->kind), kind_name(x->params[k]));
      return false;
    }
    cv[k].type = b->ptypes[k];
    switch ((cv_kind)a->kind) {
    case CV_BOOL: cv[k].b = a->b; break;
    case CV_DOUBLE: cv[k].d = a->d; break;
    case CV_TIMESTAMP:
      if (!timestamp_ns(a, &cv[k].i)) {
        *dst = cv_error(ctx, "integer overflow: argument %u of %s is a timestamp outside the int64 nanosecond range",
                        k + 1, x->name);
        return false;
      }
      break;
    case CV_STRING: {
      /* VM strings are (pointer, length); C wants a NUL at the end, and
       * cannot see past an embedded one. */
      if (memchr(a->s, '\0', a->n)) {
        *dst = cv_error(ctx, "argument %u of %s holds a NUL byte", k + 1, x->name);
        return false;
      }
      cv[k].s.ptr = arena_strndup(ctx->scratch, a->s, a->n);
      cv[k].s.len = a->n;
      if (!cv[k].s.ptr) {
        *dst = cv_static_error("out of memory", 13, CV_ERR_GENERIC);
        return false;
      }
      break;
    }
    default: cv[k].i = a->i; break; /* int, uint (same bits), duration */
    }
  }
  return true;
}

/* One call of extern `xi` of a bound program. */
static value invoke(const clause_program *p, uint32_t xi, cel_ctx *ctx, const value *args) {
  const prog_extern *x = &p->externs[xi];
  const extern_binding *b = &p->xrt->fns[xi];
  clause_value cv[CLAUSE_MAX_PARAMS];
  value out;
  if (!marshal(ctx, x, b, args, cv, &out)) return out;
  clause_value r;
  r.type = b->rtype;
  if (b->host) {
    r.s.ptr = NULL; /* a host function that sets nothing returns no string */
    r.s.len = 0;
    clause_call_ctx cc = {x, b, ctx, false, {0}};
    b->host(&cc, cv, x->nparams, &r);
    if (cc.failed) return cc.error;
  } else {
    void *avalues[CLAUSE_MAX_PARAMS];
    for (uint32_t k = 0; k < x->nparams; k++) avalues[k] = &cv[k].i;
    /* The return slot is an ffi_arg at least: narrow integers (bool) come
     * back widened to one. */
    union {
      ffi_arg a;
      int64_t i;
      double d;
      const char *s;
    } rv;
    ffi_call((ffi_cif *)&b->cif, b->fn, &rv, avalues);
    switch ((cv_kind)x->ret) {
    case CV_BOOL: r.b = (uint8_t)rv.a != 0; break;
    case CV_DOUBLE: r.d = rv.d; break;
    case CV_STRING:
      r.s.ptr = rv.s;
      r.s.len = rv.s ? strlen(rv.s) : 0;
      break;
    default: r.i = rv.i; break;
    }
  }
  return result_value(ctx, x, &r);
}

void extern_call(clause_vm *vm, uint32_t x, uint32_t pc, value *dst, const value *args) {
  const clause_program *p = vm->p;
  const struct extern_rt *rt = p->xrt;
  if (!rt) { /* loaded for listing only (clause compile, disasm) */
    *dst = cv_error(&vm->ctx, "%s: the program was loaded without binding its externs", p->externs[x].name);
    return;
  }
  if (rt->folded && rt->folded[pc].kind != CV_UNSET) {
    *dst = rt->folded[pc];
    return;
  }
  *dst = invoke(p, x, &vm->ctx, args);
}

/* ---- folding pure calls --------------------------------------------------------------- */

/* Whether some jump of the block [start, end) lands in (from, to]. */
static bool jump_lands_in(const clause_program *p, uint32_t start, uint32_t end, uint32_t from, uint32_t to) {
  for (uint32_t q = start; q < end; q++) {
    instr i = p->code[q];
    const char *kinds = opcode_kinds[INSTR_OP(i)];
    uint64_t target;
    if (kinds[2] == 'j') target = (uint64_t)q + 1 + INSTR_C(i);
    else if (kinds[2] == 'l') target = (uint64_t)q - INSTR_C(i);
    else continue;
    if (target > from && target <= to) return true;
  }
  return false;
}

/* An XCALL of a pure host function whose argument registers are all set
 * by the LOADKs just before it, with no jump landing between them, always
 * sees those constants: its result is computed now, once. A call that
 * fails is left to run time, where its error is reported per request. */
static int fold_pure_calls(clause_program *p) {
  struct extern_rt *rt = p->xrt;
  cel_ctx ctx = {.scratch = &rt->mem};
  for (uint32_t blk = 0; blk < p->nblocks; blk++) {
    uint32_t start = p->block_start[blk], end = p->block_start[blk + 1];
    for (uint32_t pc = start; pc < end; pc++) {
      instr i = p->code[pc];
      if (INSTR_OP(i) != BC_XCALL || !rt->fns[INSTR_C(i)].pure) continue;
      const prog_extern *x = &p->externs[INSTR_C(i)];
      uint32_t n = x->nparams, first = INSTR_B(i);
      if (pc - start < n) continue;
      value args[CLAUSE_MAX_PARAMS];
      bool constant = true;
      for (uint32_t k = 0; k < n && constant; k++) {
        instr load = p->code[pc - n + k];
        constant = INSTR_OP(load) == BC_LOADK && INSTR_A(load) == first + k;
        if (constant) args[k] = p->consts[INSTR_B(load)];
      }
      if (!constant || jump_lands_in(p, start, end, pc - n, pc)) continue;
      value v = invoke(p, INSTR_C(i), &ctx, args);
      if (v.kind == CV_ERROR) continue;
      if (!rt->folded) {
        rt->folded = malloc(p->ncode * sizeof(value));
        if (!rt->folded) return -1;
        for (uint32_t q = 0; q < p->ncode; q++) rt->folded[q] = (value){.kind = CV_UNSET};
      }
      rt->folded[pc] = v;
    }
  }
  return 0;
}

/* ---- binding a program ------------------------------------------------------------------ */

int extern_bind(clause_program *p, const clause_options *opts, char *err, size_t errcap, uint32_t *which) {
  if (which) *which = 0;
  if (p->nexterns == 0 || p->xrt) return 0;
  struct extern_rt *rt = calloc(1, sizeof *rt);
  if (rt) rt->fns = calloc(p->nexterns, sizeof *rt->fns);
  if (!rt || !rt->fns) {
    free(rt);
    bind_error(err, errcap, "out of memory");
    return -1;
  }
  arena_init(&rt->mem, 1024);
  p->xrt = rt; /* from here on, extern_unbind closes whatever was opened */
  for (uint32_t i = 0; i < p->nexterns; i++) {
    const prog_extern *x = &p->externs[i];
    for (uint32_t k = 0; k < x->nparams; k++) rt->fns[i].ptypes[k] = type_of_kind(x->params[k]);
    rt->fns[i].rtype = type_of_kind(x->ret);
    int rc = x->lib ? bind_library(x, &rt->fns[i], opts, err, errcap) : bind_host(x, &rt->fns[i], opts, err, errcap);
    if (rc) {
      if (which) *which = i;
      extern_unbind(p);
      return -1;
    }
  }
  if (fold_pure_calls(p)) {
    bind_error(err, errcap, "out of memory");
    extern_unbind(p);
    return -1;
  }
  return 0;
}

void extern_unbind(clause_program *p) {
  struct extern_rt *rt = p->xrt;
  if (!rt) return;
  for (uint32_t i = 0; i < p->nexterns; i++)
    if (rt->fns[i].handle) dlclose(rt->fns[i].handle);
  free(rt->fns);
  free(rt->folded);
  arena_free(&rt->mem);
  free(rt);
  p->xrt = NULL;
}
