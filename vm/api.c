/*
 * api.c - the runtime half of the public API (clause.h): options, loading,
 * VMs, setters and evaluation. The compiler's half, clause_compile_file,
 * is in compiler/compile.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../include/clause.h"
#include "extern.h"
#include "json.h"
#include "options.h"
#include "regex.h"
#include "store.h"
#include "vm.h"

static void set_error(clause_error *err, const char *file, int line, int col, const char *msg) {
  if (!err) return;
  snprintf(err->file, sizeof err->file, "%s", file ? file : "");
  err->line = line;
  err->column = col;
  snprintf(err->message, sizeof err->message, "%s", msg);
}

/* ---- options ---------------------------------------------------------------- */

clause_options *clause_options_new(void) {
  clause_options *o = calloc(1, sizeof(clause_options));
  /* The default store: memory, shared by every program loaded with these
   * options. */
  if (o && !(o->store = store_memory_new(0))) {
    free(o);
    o = NULL;
  }
  return o;
}

void clause_options_free(clause_options *o) {
  if (!o) return;
  free(o->extern_path);
  free(o->lib_path);
  store_unref(o->store);
  extern_free_functions(o);
  free(o);
}

static int replace_string(char **slot, const char *s) {
  char *copy = NULL;
  if (s && !(copy = strdup(s))) return CLAUSE_ERR_NOMEM;
  free(*slot);
  *slot = copy;
  return CLAUSE_OK;
}

int clause_options_set_extern_path(clause_options *o, const char *dirs) {
  if (!o) return CLAUSE_ERR_ARG;
  return replace_string(&o->extern_path, dirs);
}

int clause_options_set_lib_path(clause_options *o, const char *dirs) {
  if (!o) return CLAUSE_ERR_ARG;
  return replace_string(&o->lib_path, dirs);
}

int clause_options_set_store(clause_options *o, const char *url, clause_error *err) {
  if (!o || !url) {
    set_error(err, NULL, 0, 0, "no store URL given");
    return CLAUSE_ERR_ARG;
  }
  char msg[512];
  store *s = store_open(url, msg, sizeof msg);
  if (!s) {
    set_error(err, NULL, 0, 0, msg);
    return CLAUSE_ERR_ARG;
  }
  /* Programs loaded before keep the store they had (they hold a reference). */
  store_unref(o->store);
  o->store = s;
  return CLAUSE_OK;
}

/* ---- programs ------------------------------------------------------------------ */

int program_attach_store(clause_program *p, const clause_options *opts, char *err, size_t errcap) {
  if (!p->ncounters && !p->nsuspend) return CLAUSE_OK; /* a program without state needs none */
  p->store = opts && opts->store ? store_ref(opts->store) : store_memory_new(0);
  if (!p->store) {
    snprintf(err, errcap, "out of memory");
    return CLAUSE_ERR_NOMEM;
  }
  return CLAUSE_OK;
}

clause_program *program_load(const void *bytes, size_t len, clause_error *err) {
  char msg[512];
  if (!bytes && len) {
    set_error(err, NULL, 0, 0, "no bytes given");
    return NULL;
  }
  clause_program *p = clb_read(bytes, len, msg, sizeof msg);
  if (!p) {
    set_error(err, NULL, 0, 0, msg);
  } else if (p->kind != PROG_POLICY) {
    /* Expression programs are the CLI's internal business. */
    set_error(err, NULL, 0, 0, "not a policy program (an expression program)");
    clause_program_free(p);
    p = NULL;
  }
  return p;
}

clause_program *clause_load(const void *bytes, size_t len, const clause_options *opts,
                            clause_error *err) {
  clause_program *p = program_load(bytes, len, err);
  char msg[512];
  /* Prepared for evaluation: externs bound, the state store attached. */
  if (p && (extern_bind(p, opts, msg, sizeof msg, NULL) != 0 ||
            program_attach_store(p, opts, msg, sizeof msg) != CLAUSE_OK)) {
    set_error(err, NULL, 0, 0, msg);
    clause_program_free(p);
    p = NULL;
  }
  return p;
}

int clause_program_save(const clause_program *p, const char *path, clause_error *err) {
  if (!p || !path) {
    set_error(err, NULL, 0, 0, "no program or path given");
    return CLAUSE_ERR_ARG;
  }
  outbuf o;
  ob_init_grow(&o);
  int rc = clb_write(p, &o);
  if (rc == CLAUSE_OK && o.oom) rc = CLAUSE_ERR_NOMEM;
  if (rc != CLAUSE_OK) {
    ob_free(&o);
    set_error(err, path, 0, 0, "cannot serialize the program");
    return rc;
  }
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(o.buf, 1, o.len, f) != o.len || fclose(f) != 0) {
    char msg[300];
    snprintf(msg, sizeof msg, "cannot write: %s", strerror(errno));
    if (f) fclose(f);
    ob_free(&o);
    set_error(err, path, 0, 0, msg);
    return CLAUSE_ERR_IO;
  }
  ob_free(&o);
  return CLAUSE_OK;
}

void clause_program_free(clause_program *p) {
  if (!p) return;
  extern_unbind(p);
  if (p->regexes)
    for (uint32_t i = 0; i < p->nconsts; i++) regex_free(p->regexes[i]);
  free(p->regexes);
  json_binder_free(p->binder);
  store_unref(p->store);
  arena_free(&p->mem);
  free(p);
}

int clause_field_index(const clause_program *p, const char *path) {
  if (!p || !path) return -1;
  for (uint32_t i = 0; i < p->nfields; i++)
    if (strcmp(p->fields[i].path, path) == 0) return (int)i;
  return -1;
}

/* ---- VMs ------------------------------------------------------------------------ */

clause_vm *clause_vm_new(const clause_program *p) {
  if (!p) return NULL;
  clause_vm *vm = calloc(1, sizeof *vm);
  if (!vm) return NULL;
  vm->p = p;
  vm->regs = calloc(p->nregs ? p->nregs : 1, sizeof(value));
  /* Errors: one per required field, two per rule (condition and reason),
   * three per counter (key, amount, an eviction), two per suspend rule,
   * and a few that belong to no rule. */
  vm->errors_cap = p->nfields + 2 * (size_t)p->nrules + 3 * (size_t)p->ncounters + 2 * (size_t)p->nsuspend + 8;
  vm->errors = calloc(vm->errors_cap, sizeof *vm->errors);
  vm->flags = calloc(p->nrules + 1, sizeof *vm->flags);
  vm->matched = calloc(p->nrules + 1, sizeof *vm->matched);
  vm->obligs = calloc(p->nobligs + 1, sizeof *vm->obligs);
  vm->required = calloc(p->nfields + 1, sizeof *vm->required);
  vm->match_prefix = calloc(p->nconsts + 1, sizeof *vm->match_prefix);
  vm->field_text = calloc(p->nfields + 1, sizeof *vm->field_text);
  vm_state *st = &vm->state;
  st->ops = calloc(p->ncounters + 1, sizeof *st->ops);
  st->op_counter = calloc(p->ncounters + 1, sizeof *st->op_counter);
  st->arg_ok = calloc(p->ncounters + 1, sizeof *st->arg_ok);
  st->susp = calloc(p->nsuspend + 1, sizeof *st->susp);
  st->susp_rule = calloc(p->nsuspend + 1, sizeof *st->susp_rule);
  if (!vm->regs || !vm->errors || !vm->flags || !vm->matched || !vm->obligs || !vm->required || !vm->match_prefix ||
      !vm->field_text ||
      !st->ops || !st->op_counter || !st->arg_ok || !st->susp || !st->susp_rule) {
    clause_vm_free(vm);
    return NULL;
  }
  for (uint32_t i = 0; i <= p->ncounters; i++) st->op_counter[i] = PROG_NONE; /* ops not filled yet */
  for (uint32_t f = 0; f < p->nfields; f++)
    if (!p->fields[f].optional) vm->required[vm->nrequired++] = f;
  for (uint32_t pc = 0; pc < p->ncode; pc++) { /* the verifier made each a string */
    if (INSTR_OP(p->code[pc]) != BC_MATCHK) continue;
    const value *pat = &p->consts[INSTR_C(p->code[pc])];
    vm->match_prefix[INSTR_C(p->code[pc])] = vm_regex_prefix(pat->s, pat->n);
  }
  arena_init(&vm->input, 1024);
  arena_init(&vm->scratch, 4096);
  vm->ctx.scratch = &vm->scratch;
  vm->ctx.regex_match_limit = REGEX_DEFAULT_MATCH_LIMIT;
  vm->ctx.regex_cache = regex_cache_new(); /* match data reused by MATCHK */
  if (!vm->ctx.regex_cache) {
    clause_vm_free(vm);
    return NULL;
  }
  clause_vm_reset(vm);
  return vm;
}

void clause_vm_free(clause_vm *vm) {
  if (!vm) return;
  free(vm->regs);
  free(vm->errors);
  free(vm->flags);
  free(vm->matched);
  free(vm->obligs);
  free(vm->required);
  free(vm->match_prefix);
  free(vm->field_text);
  store_close_session(vm->state.session);
  store_unref(vm->state.own);
  free(vm->state.ops);
  free(vm->state.op_counter);
  free(vm->state.arg_ok);
  free(vm->state.susp);
  free(vm->state.susp_rule);
  regex_cache_free(vm->ctx.regex_cache);
  arena_free(&vm->input);
  arena_free(&vm->scratch);
  free(vm);
}

int vm_use_store(clause_vm *vm, store *s) {
  char err[256];
  store_session *ss = store_open_session(s, err, sizeof err);
  if (!ss) return CLAUSE_ERR_NOMEM;
  store_close_session(vm->state.session);
  store_unref(vm->state.own);
  vm->state.session = ss;
  vm->state.own = store_ref(s);
  return CLAUSE_OK;
}

void clause_vm_reset(clause_vm *vm) {
  if (!vm) return;
  arena_reset(&vm->input);
  memset(vm->field_text, 0, vm->p->nfields * sizeof *vm->field_text);
  for (uint32_t i = 0; i < vm->p->nfields; i++) vm->regs[i] = vm->p->fields[i].absent;
  vm->required_ok = false;
}

/* A field index in range whose schema type accepts `kind` (any accepts all). */
static int check_field(clause_vm *vm, int field, cv_kind kind) {
  if (!vm || field < 0 || (uint32_t)field >= vm->p->nfields) return CLAUSE_ERR_ARG;
  uint8_t want = vm->p->fields[field].type->kind;
  if (want != RT_ANY && want != kind) return CLAUSE_ERR_TYPE;
  return CLAUSE_OK;
}

#define SETTER_BODY(kind, make)                                                  \
  int rc = check_field(vm, field, kind);                                         \
  if (rc != CLAUSE_OK) return rc;                                                \
  vm->regs[field] = (make);                                                      \
  return CLAUSE_OK;

int clause_vm_set_int(clause_vm *vm, int field, int64_t v) { SETTER_BODY(CV_INT, cv_int(v)) }
int clause_vm_set_uint(clause_vm *vm, int field, uint64_t v) { SETTER_BODY(CV_UINT, cv_uint(v)) }
int clause_vm_set_double(clause_vm *vm, int field, double v) { SETTER_BODY(CV_DOUBLE, cv_double(v)) }
int clause_vm_set_bool(clause_vm *vm, int field, bool v) { SETTER_BODY(CV_BOOL, cv_bool(v)) }
int clause_vm_set_duration(clause_vm *vm, int field, int64_t ns) { SETTER_BODY(CV_DURATION, cv_duration(ns)) }

int clause_vm_set_timestamp(clause_vm *vm, int field, int64_t unix_nanos) {
  int64_t secs = unix_nanos / 1000000000, nanos = unix_nanos % 1000000000;
  if (nanos < 0) {
    nanos += 1000000000;
    secs--;
  }
  SETTER_BODY(CV_TIMESTAMP, cv_timestamp(secs, (uint32_t)nanos))
}

static int set_text(clause_vm *vm, int field, cv_kind kind, const char *s, size_t len) {
  int rc = check_field(vm, field, kind);
  if (rc != CLAUSE_OK) return rc;
  if ((!s && len) || len > UINT32_MAX) return CLAUSE_ERR_ARG;
  if (kind == CV_STRING && !cel_utf8_valid(s, len)) return CLAUSE_ERR_TYPE;
  /* Into the field's own buffer when the text fits: nothing but the
   * field's register points there (a decision's texts are copies), and
   * clause_vm_reset, which frees the buffer, forgets it. */
  struct field_text *ft = &vm->field_text[field];
  if (!ft->p || len >= ft->cap) {
    size_t cap = (len + 16) & ~(size_t)15; /* what the arena hands out anyway */
    if (!(ft->p = arena_alloc(&vm->input, cap))) return CLAUSE_ERR_NOMEM;
    ft->cap = cap > UINT32_MAX ? UINT32_MAX : (uint32_t)cap;
  }
  if (len) memcpy(ft->p, s, len);
  ft->p[len] = '\0';
  vm->regs[field] = kind == CV_STRING ? cv_string(ft->p, (uint32_t)len) : cv_bytes(ft->p, (uint32_t)len);
  return CLAUSE_OK;
}

int clause_vm_set_string(clause_vm *vm, int field, const char *s, size_t len) {
  return set_text(vm, field, CV_STRING, s, len);
}

int clause_vm_set_bytes(clause_vm *vm, int field, const void *b, size_t len) {
  return set_text(vm, field, CV_BYTES, b, len);
}

int clause_vm_set_field_json(clause_vm *vm, int field, const char *json, size_t len) {
  if (!vm || field < 0 || (uint32_t)field >= vm->p->nfields || (!json && len)) return CLAUSE_ERR_ARG;
  json_error jerr;
  value v = vm->p->fields[field].absent;
  int rc = json_bind_field(&vm->p->fields[field], json, len, &vm->input, &v, &jerr);
  if (rc != CLAUSE_OK) return rc;
  if (v.kind == CV_ERROR && v.flag == CV_ERR_WRONG_TYPE) return CLAUSE_ERR_TYPE;
  vm->regs[field] = v;
  vm->required_ok = false; /* a JSON null is an absent field */
  return CLAUSE_OK;
}

int clause_vm_set_json(clause_vm *vm, const char *json, size_t len, clause_error *err) {
  if (!vm || (!json && len)) {
    set_error(err, NULL, 0, 0, "no VM or JSON given");
    return CLAUSE_ERR_ARG;
  }
  clause_vm_reset(vm);
  json_error jerr = {0, 0, 0, "not a policy program"};
  int rc = json_bind(vm->p->binder, json ? json : "", len, &vm->input, vm->regs, NULL, &jerr);
  if (rc != CLAUSE_OK) {
    set_error(err, NULL, jerr.line, jerr.column, jerr.message);
    clause_vm_reset(vm);
  }
  return rc;
}

/* ---- evaluation ------------------------------------------------------------------ */

static void finish_decision(clause_vm *vm) {
  const clause_program *p = vm->p;
  clause_decision *d = &vm->dec;
  d->effect = CLAUSE_ALLOW;
  d->rule = d->reason = d->cite = NULL;
  d->retry_after_ms = -1;
  if (vm->store_reason) { /* on_store_error deny */
    d->effect = CLAUSE_DENY;
    d->reason = vm->store_reason;
  } else if (vm->decider == PROG_NONE) {
    d->effect = p->default_effect == RE_DENY ? CLAUSE_DENY : CLAUSE_ALLOW;
  } else {
    const prog_rule *r = &p->rules[vm->decider];
    switch ((rule_effect)vm->best) {
    case RE_THROTTLE: d->effect = CLAUSE_THROTTLE; break;
    case RE_DENY: d->effect = CLAUSE_DENY; break;
    case RE_SUSPEND: d->effect = CLAUSE_SUSPEND; break;
    default: d->effect = CLAUSE_ALLOW; break;
    }
    d->rule = r->id;
    d->cite = r->cite;
    if (vm->decider_failed) {
      outbuf o;
      size_t need = strlen(r->id) + 2 + strlen(vm->decider_msg) + 1;
      char *buf = arena_alloc(&vm->scratch, need);
      if (buf) {
        ob_init_fixed(&o, buf, need);
        ob_printf(&o, "%s: %s", r->id, vm->decider_msg);
        d->reason = ob_cstr(&o);
      } else {
        d->reason = r->id;
      }
    } else {
      if (r->effect == RE_THROTTLE && vm->decider_retry_ns > 0)
        d->retry_after_ms = (vm->decider_retry_ns + 999999) / 1000000;
      if (r->reason_block != PROG_NONE) {
        value reason;
        vm_run_block(vm, r->reason_block, &reason);
        if (reason.kind == CV_STRING) {
          d->reason = arena_strndup(&vm->scratch, reason.s, reason.n);
          if (!d->reason) d->reason = r->id;
        } else {
          d->reason = r->id;
          if (reason.kind == CV_ERROR)
            vm_add_error(vm, r->id, reason.s, reason.n);
          else {
            char msg[96];
            int n = snprintf(msg, sizeof msg, "reason is %s, not string", cv_kind_name((cv_kind)reason.kind));
            vm_add_error(vm, r->id, msg, (size_t)n);
          }
        }
      }
    }
  }
  d->n_flags = vm->nflags;
  d->flags = vm->flags;
  d->n_obligations = vm->nobligs_out;
  d->obligations = vm->obligs;
  d->n_errors = vm->nerrors;
  d->errors = vm->errors;
}

int clause_vm_eval(clause_vm *vm, clause_decision *out) {
  if (!vm || !out) return CLAUSE_ERR_ARG;
  const clause_program *p = vm->p;
  if (p->kind != PROG_POLICY) return CLAUSE_ERR_ARG;
  vm_begin_eval(vm);
  vm->decider = PROG_NONE;
  vm->best = RE_ALLOW;
  vm->decider_failed = false;
  vm->stop = false;
  vm->pending = cv_null();
  vm->pending_retry_ns = vm->decider_retry_ns = -1;
  vm->by_suspension = false;
  vm->store_reason = NULL;

  /* Required fields that are absent or of the wrong type are listed
   * (not looked for again while only typed setters changed fields). */
  if (!vm->required_ok) {
    const value *regs = vm->regs;
    const uint32_t *required = vm->required;
    bool ok = true;
    for (uint32_t i = 0, n = vm->nrequired; i < n; i++) {
      const value *v = &regs[required[i]];
      if (__builtin_expect(v->kind == CV_ERROR, 0)) {
        vm_add_error(vm, NULL, v->s, v->n);
        ok = false;
      }
    }
    vm->required_ok = ok;
  }
  if (p->now_reg != PROG_NONE) {
    const value *clock = p->clock_field != PROG_NONE ? &vm->regs[p->clock_field] : NULL;
    vm->regs[p->now_reg] = clock && clock->kind == CV_TIMESTAMP ? *clock : vm_wall_clock();
  }
  bool stateful = p->ncounters || p->nsuspend;
  vm->state_done = !stateful; /* a STATE in a stateless program does nothing */
  if (!stateful) {
    vm_run_block(vm, 0, NULL);
  } else if (p->rules_before_state && !vm->trace) {
    /* The rules that read no counter run while the store fetches the
     * request's state; STATE (or the line below, when a first_match
     * rule stopped before it) then asks for it. */
    state_prefetch(vm);
    vm_run_block(vm, 0, NULL);
    if (!vm->state_done) state_point(vm);
  } else { /* explaining, or externs that must not run for a suspended key */
    vm->state_done = true; /* STATE in the rules has nothing left to do */
    if (!state_begin(vm)) vm_run_block(vm, 0, NULL);
  }
  finish_decision(vm);
  if (stateful) {
    state_commit(vm);
    vm->dec.n_errors = vm->nerrors; /* the store may have added notices */
  }
  *out = vm->dec;
  return CLAUSE_OK;
}
