/*
 * clb.c - the `.clb` bytecode file: writer and loader (SPEC section 9).
 *
 * Layout, all integers little-endian whatever the host:
 *
 *   "CLB\x1a"  u16 format version  u16 0
 *   header     u8 kind, default, first_match, on_error_deny,
 *              on_store_error_allow; str name; str version
 *   fields     u32 n; n x (str path; type; u8 optional; u8 clock)
 *   registers  u32 clock_field; u32 now_reg; u32 nregs
 *   lets       u32 n; n x u32 register
 *   constants  u32 n; n x value
 *   calls      u32 n; n x (str builtin name; u8 member; u8 nargs)
 *   rules      u32 n; n x (str id; str cite; u8 effect; u32 reason block;
 *              u32 suspend key block)
 *   obligs     u32 n; n x (u32 rule; str action; u32 nargs)
 *   counters   u32 first register; u32 n; n x (str name; u64 window ns;
 *              u8 mode; u8 on mask; u32 key block; u32 amount block)
 *   blocks     u32 n; n x u32 first instruction
 *   code       u32 n; n x u64 instruction
 *   debug      u32 n (0 or the code's n); n x str source text
 *   externs    u32 n; n x (str name; str lib; str symbol; u8 return type;
 *              u8 nparams; nparams x u8 parameter type)   (version 2)
 *   u32 CRC-32 (IEEE, as zlib's crc32) of every byte before it
 *
 * str is u32 length + bytes (0xffffffff: NULL); type is u8 kind then, for
 * list, the element type and, for map, key and value types; a value is u8
 * kind then its payload. The loader checks every length against the bytes
 * left before allocating, so a hostile count cannot make it allocate more
 * than the file's size allows, and hands the result to the verifier.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../include/clause.h"
#include "json.h"
#include "program.h"
#include "regex.h"
#include "strset.h"

#define MAX_NESTING 32 /* types and constant values */
#define STR_NULL 0xffffffffu

/* ---- writing ------------------------------------------------------------------- */

static void put_u8(outbuf *o, uint8_t v) { ob_put(o, (const char *)&v, 1); }

static void put_u32(outbuf *o, uint32_t v) {
  unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                        (unsigned char)(v >> 24)};
  ob_put(o, (const char *)b, 4);
}

static void put_u64(outbuf *o, uint64_t v) {
  put_u32(o, (uint32_t)v);
  put_u32(o, (uint32_t)(v >> 32));
}

static void put_str(outbuf *o, const char *s) {
  if (!s) {
    put_u32(o, STR_NULL);
    return;
  }
  size_t n = strlen(s);
  put_u32(o, (uint32_t)n);
  ob_put(o, s, n);
}

static void put_type(outbuf *o, const rtype *t) {
  put_u8(o, t->kind);
  if (t->kind == CV_LIST) put_type(o, t->elem);
  if (t->kind == CV_MAP) {
    put_type(o, t->key);
    put_type(o, t->elem);
  }
}

static void put_value(outbuf *o, const value *v) {
  put_u8(o, v->kind);
  switch ((cv_kind)v->kind) {
  case CV_BOOL: put_u8(o, v->b); break;
  case CV_INT:
  case CV_UINT:
  case CV_DURATION:
  case CV_DOUBLE: put_u64(o, v->u); break;
  case CV_STRING:
  case CV_BYTES:
    put_u32(o, v->n);
    ob_put(o, v->s, v->n);
    break;
  case CV_LIST:
  case CV_MAP:
    put_u32(o, v->n);
    for (uint32_t i = 0; i < (v->kind == CV_MAP ? 2 * v->n : v->n); i++) put_value(o, &v->items[i]);
    break;
  case CV_TIMESTAMP:
    put_u64(o, (uint64_t)v->i);
    put_u32(o, v->n);
    break;
  case CV_TYPE: put_u8(o, (uint8_t)v->i); break;
  default: break; /* null; errors are never constants */
  }
}

/* The extern table (version 2): a self-contained section after the debug
 * table. Types are cv_kinds; the verifier checks they are from the closed
 * set of SPEC section 6. */
static void put_externs(outbuf *o, const clause_program *p) {
  put_u32(o, p->nexterns);
  for (uint32_t i = 0; i < p->nexterns; i++) {
    const prog_extern *x = &p->externs[i];
    put_str(o, x->name);
    put_str(o, x->lib);
    put_str(o, x->symbol);
    put_u8(o, x->ret);
    put_u8(o, x->nparams);
    for (uint32_t k = 0; k < x->nparams; k++) put_u8(o, x->params[k]);
  }
}

int clb_write(const clause_program *p, outbuf *o) {
  size_t start = o->len;
  ob_put(o, CLB_MAGIC, 4);
  put_u8(o, CLB_VERSION & 0xff);
  put_u8(o, CLB_VERSION >> 8);
  put_u8(o, 0);
  put_u8(o, 0);
  put_u8(o, p->kind);
  put_u8(o, p->default_effect);
  put_u8(o, p->first_match);
  put_u8(o, p->on_error_deny);
  put_u8(o, p->on_store_error_allow);
  put_str(o, p->name);
  put_str(o, p->version);
  put_u32(o, p->nfields);
  for (uint32_t i = 0; i < p->nfields; i++) {
    put_str(o, p->fields[i].path);
    put_type(o, p->fields[i].type);
    put_u8(o, p->fields[i].optional);
    put_u8(o, p->fields[i].clock);
  }
  put_u32(o, p->clock_field);
  put_u32(o, p->now_reg);
  put_u32(o, p->nregs);
  put_u32(o, p->nlets);
  for (uint32_t i = 0; i < p->nlets; i++) put_u32(o, p->let_regs[i]);
  put_u32(o, p->nconsts);
  for (uint32_t i = 0; i < p->nconsts; i++) put_value(o, &p->consts[i]);
  put_u32(o, p->ncalls);
  for (uint32_t i = 0; i < p->ncalls; i++) {
    put_str(o, p->calls[i].name);
    put_u8(o, p->calls[i].member);
    put_u8(o, p->calls[i].nargs);
  }
  put_u32(o, p->nrules);
  for (uint32_t i = 0; i < p->nrules; i++) {
    put_str(o, p->rules[i].id);
    put_str(o, p->rules[i].cite);
    put_u8(o, p->rules[i].effect);
    put_u32(o, p->rules[i].reason_block);
    put_u32(o, p->rules[i].suspend_key_block);
  }
  put_u32(o, p->nobligs);
  for (uint32_t i = 0; i < p->nobligs; i++) {
    put_u32(o, p->obligs[i].rule);
    put_str(o, p->obligs[i].action);
    put_u32(o, p->obligs[i].nargs);
  }
  put_u32(o, p->counter_reg);
  put_u32(o, p->ncounters);
  for (uint32_t i = 0; i < p->ncounters; i++) {
    const prog_counter *c = &p->counters[i];
    put_str(o, c->name);
    put_u64(o, (uint64_t)c->window_ns);
    put_u8(o, c->mode);
    put_u8(o, c->on_mask);
    put_u32(o, c->key_block);
    put_u32(o, c->arg_block);
  }
  put_u32(o, p->nblocks);
  for (uint32_t i = 0; i < p->nblocks; i++) put_u32(o, p->block_start[i]);
  put_u32(o, p->ncode);
  for (uint32_t i = 0; i < p->ncode; i++) put_u64(o, p->code[i]);
  put_u32(o, p->debug ? p->ncode : 0);
  if (p->debug)
    for (uint32_t i = 0; i < p->ncode; i++) put_str(o, p->debug[i]);
  put_externs(o, p);
  if (o->oom || (!o->grow && o->len > o->cap)) return CLAUSE_ERR_NOMEM;
  uLong crc = crc32(0L, (const Bytef *)o->buf + start, (uInt)(o->len - start));
  put_u32(o, (uint32_t)crc);
  return o->oom ? CLAUSE_ERR_NOMEM : CLAUSE_OK;
}

/* ---- reading --------------------------------------------------------------------- */

typedef struct reader {
  const unsigned char *p, *end;
  arena *a;
  bool bad;
  char *err;
  size_t errcap;
} reader;

static void fail(reader *r, const char *fmt, ...) {
  if (r->bad) return;
  r->bad = true;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->err, r->errcap, fmt, ap);
  va_end(ap);
}

static size_t left(const reader *r) { return (size_t)(r->end - r->p); }

static bool need(reader *r, size_t n, const char *what) {
  if (r->bad) return false;
  if (left(r) < n) {
    fail(r, "truncated bytecode: %s runs past the end", what);
    return false;
  }
  return true;
}

static uint8_t get_u8(reader *r, const char *what) {
  if (!need(r, 1, what)) return 0;
  return *r->p++;
}

static uint32_t get_u32(reader *r, const char *what) {
  if (!need(r, 4, what)) return 0;
  uint32_t v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 |
               (uint32_t)r->p[3] << 24;
  r->p += 4;
  return v;
}

static uint64_t get_u64(reader *r, const char *what) {
  uint64_t lo = get_u32(r, what);
  return lo | (uint64_t)get_u32(r, what) << 32;
}

static const char *get_str(reader *r, const char *what) {
  uint32_t n = get_u32(r, what);
  if (r->bad || n == STR_NULL) return NULL;
  if (!need(r, n, what)) return NULL;
  char *s = arena_strndup(r->a, (const char *)r->p, n);
  if (!s) fail(r, "out of memory");
  if (s && memchr(s, '\0', n)) fail(r, "%s holds a NUL byte", what);
  r->p += n;
  return s;
}

/* A count of items, each at least min_bytes long in the file. */
static uint32_t get_count(reader *r, size_t min_bytes, const char *what) {
  uint32_t n = get_u32(r, what);
  if (!r->bad && (uint64_t)n * min_bytes > left(r)) {
    fail(r, "bad bytecode: %u %s cannot fit in the file", n, what);
    return 0;
  }
  return n;
}

static void *get_array(reader *r, uint32_t n, size_t size) {
  if (r->bad) return NULL;
  void *p = arena_alloc(r->a, (n ? n : 1) * size);
  if (!p) fail(r, "out of memory");
  else memset(p, 0, (n ? n : 1) * size);
  return p;
}

static const rtype *get_type(reader *r, int depth) {
  if (depth > MAX_NESTING) {
    fail(r, "bad bytecode: field type nested too deeply");
    return NULL;
  }
  rtype *t = get_array(r, 1, sizeof *t);
  if (!t) return NULL;
  t->kind = get_u8(r, "field type");
  switch (t->kind) {
  case CV_BOOL: case CV_INT: case CV_UINT: case CV_DOUBLE: case CV_STRING: case CV_BYTES:
  case CV_TIMESTAMP: case CV_DURATION: case RT_ANY:
    break;
  case CV_LIST:
    t->elem = get_type(r, depth + 1);
    break;
  case CV_MAP:
    t->key = get_type(r, depth + 1);
    t->elem = get_type(r, depth + 1);
    break;
  default:
    fail(r, "bad bytecode: unknown field type %u", t->kind);
  }
  return r->bad ? NULL : t;
}

static void get_value(reader *r, value *v, int depth) {
  if (depth > MAX_NESTING) {
    fail(r, "bad bytecode: constant nested too deeply");
    return;
  }
  memset(v, 0, sizeof *v);
  v->kind = get_u8(r, "constant");
  switch ((cv_kind)v->kind) {
  case CV_NULL: break;
  case CV_BOOL: {
    uint8_t b = get_u8(r, "constant");
    if (b > 1) fail(r, "bad bytecode: bool constant %u", b);
    v->b = b;
    break;
  }
  case CV_INT: case CV_UINT: case CV_DURATION: case CV_DOUBLE:
    v->u = get_u64(r, "constant");
    break;
  case CV_STRING: case CV_BYTES: {
    uint32_t n = get_u32(r, "constant");
    if (!need(r, n, "string constant")) return;
    char *s = arena_strndup(r->a, (const char *)r->p, n);
    if (!s) {
      fail(r, "out of memory");
      return;
    }
    if (v->kind == CV_STRING && !cel_utf8_valid(s, n)) fail(r, "bad bytecode: string constant is not UTF-8");
    r->p += n;
    v->s = s;
    v->n = n;
    break;
  }
  case CV_LIST: case CV_MAP: {
    uint32_t n = get_count(r, v->kind == CV_MAP ? 2 : 1, "constant elements");
    uint32_t total = v->kind == CV_MAP ? 2 * n : n;
    value *items = get_array(r, total, sizeof(value));
    for (uint32_t i = 0; i < total && !r->bad; i++) get_value(r, &items[i], depth + 1);
    v->items = items;
    v->n = n;
    break;
  }
  case CV_TIMESTAMP: {
    v->i = (int64_t)get_u64(r, "constant");
    v->n = get_u32(r, "constant");
    if (!r->bad && (v->i < CV_TS_MIN_SECS || v->i > CV_TS_MAX_SECS || v->n > 999999999u))
      fail(r, "bad bytecode: timestamp constant out of range");
    break;
  }
  case CV_TYPE:
    v->i = get_u8(r, "constant");
    if (v->i >= CV_ERROR) fail(r, "bad bytecode: unknown type constant");
    break;
  default:
    fail(r, "bad bytecode: unknown constant kind %u", v->kind);
  }
}

static void make_absent(reader *r, prog_field *f) {
  size_t n = strlen(f->path) + sizeof "no such key: ";
  char *msg = arena_alloc(r->a, n);
  if (!msg) {
    fail(r, "out of memory");
    return;
  }
  snprintf(msg, n, "no such key: %s", f->path);
  f->absent = cv_static_error(msg, (uint32_t)(n - 1), CV_ERR_ABSENT);
  /* Segments, for the binder. Backticked names were unquoted at compile
   * time, so a '.' always separates segments here. */
  uint32_t nsegs = 1;
  for (const char *c = f->path; *c; c++) nsegs += *c == '.';
  const char **segs = arena_alloc(r->a, nsegs * sizeof *segs);
  char *copy = arena_strndup(r->a, f->path, strlen(f->path));
  if (!segs || !copy) {
    fail(r, "out of memory");
    return;
  }
  uint32_t k = 0;
  segs[k++] = copy;
  for (char *c = copy; *c; c++)
    if (*c == '.') {
      *c = '\0';
      segs[k++] = c + 1;
    }
  f->segs = segs;
  f->nsegs = nsegs;
}

static void get_externs(reader *r, clause_program *p) {
  p->nexterns = get_count(r, 14, "externs");
  p->externs = get_array(r, p->nexterns, sizeof(prog_extern));
  for (uint32_t i = 0; i < p->nexterns && !r->bad; i++) {
    prog_extern *x = &p->externs[i];
    x->name = get_str(r, "extern name");
    x->lib = get_str(r, "extern library");
    x->symbol = get_str(r, "extern symbol");
    x->ret = get_u8(r, "extern");
    x->nparams = get_u8(r, "extern");
    if (!need(r, x->nparams, "extern parameters")) break;
    uint8_t *params = get_array(r, x->nparams, 1);
    if (params) memcpy(params, r->p, x->nparams);
    r->p += x->nparams;
    x->params = params;
  }
}

/* The register a value block does nothing but return (`RET r`: a key that
 * is a field alone), or PROG_NONE. */
static uint32_t block_only_returns(const clause_program *p, uint32_t block) {
  if (block == PROG_NONE) return PROG_NONE;
  instr first = p->code[p->block_start[block]];
  return INSTR_OP(first) == BC_RET ? INSTR_A(first) : PROG_NONE;
}

/* Gives each list of strings that is a value of a constant map with a
 * hash set (one that INDEXK, `in` and the like read) a hash set of its
 * own, its number + 1 in the list's value.spare (program.h). False when
 * out of memory. */
static bool tag_list_values(clause_program *p) {
  uint32_t n = 0;
  for (int pass = 0; pass < 2; pass++) {
    if (pass == 1) {
      if (!n) return true;
      if (n > UINT16_MAX || !(p->list_sets = arena_alloc(&p->mem, n * sizeof *p->list_sets))) return false;
    }
    for (uint32_t k = 0; k < p->nconsts; k++) {
      const value *m = &p->consts[k];
      if (!p->sets[k] || m->kind != CV_MAP) continue; /* an INDEXK map with string keys */
      for (uint32_t i = 0; i < m->n; i++) {
        value *v = (value *)&m->items[2 * i + 1]; /* loaded into p->mem: ours to tag */
        if (v->kind != CV_LIST || v->spare) continue;
        if (pass == 0) {
          n++;
          continue;
        }
        struct strset *set = strset_build(&p->mem, v);
        if (set && p->nlist_sets < n) {
          p->list_sets[p->nlist_sets++] = set;
          v->spare = (uint16_t)p->nlist_sets;
        }
      }
    }
  }
  return true;
}

/* Whether an opcode is a conjunct of a rule's `when` (a CJ...
 * instruction): it reads registers and constants only, and when false
 * it jumps by its C operand to the next rule. */
static bool is_conjunct(unsigned op) {
  switch (op) {
  case BC_CJFALSE: case BC_CJABSENT: case BC_CJEQK: case BC_CJNEK: case BC_CJINK: case BC_CJNOT:
  case BC_CJNINK: case BC_CJLTK: case BC_CJLEK: case BC_CJGTK: case BC_CJGEK: case BC_CJEQ:
  case BC_CJNE: case BC_CJLT: case BC_CJLE: case BC_CJGT: case BC_CJGE: case BC_CJIN:
    return true;
  default:
    return false;
  }
}

/* Two conjuncts that test the same thing (they may jump apart). */
static bool same_test(instr x, instr y) {
  return INSTR_OP(x) == INSTR_OP(y) && INSTR_A(x) == INSTR_A(y) && INSTR_B(x) == INSTR_B(y);
}

/* p->fast_code, the code as run when nothing is explained: a copy of the
 * code in which
 *   - a conjunct whose false jump lands on the same conjunct (same opcode
 *     and operands: the next rule opens with `has(x)` or
 *     `endpoint == "..."` too) jumps where that one would: nothing runs
 *     between the two, so the second is false as well;
 *   - CJINK k, M followed by INDEXK r, M, k is CJINKIDX (one lookup);
 *   - CJABSENT x followed by CJINK x, K with the same jump is CJHASINK.
 * Instructions keep their places, so jumps and call sites stay valid.
 * Only a trace (--explain) could see the difference, and tracing runs
 * p->code. False when out of memory. */
static bool build_fast_code(clause_program *p) {
  if (!(p->fast_code = arena_alloc(&p->mem, (p->ncode ? p->ncode : 1) * sizeof(instr)))) return false;
  memcpy(p->fast_code, p->code, p->ncode * sizeof(instr));
  for (uint32_t pc = 0; pc < p->ncode; pc++) {
    instr i = p->code[pc];
    if (!is_conjunct(INSTR_OP(i))) continue;
    uint32_t target = pc + 1 + INSTR_C(i);
    while (target < p->ncode && same_test(p->code[target], i)) target += 1 + INSTR_C(p->code[target]);
    uint32_t c = target - pc - 1;
    if (c > INSTR_MAX_OPERAND) c = INSTR_C(i);
    /* `k in M && ... M[k]`: CJINK k, M then INDEXK r, M, k, one lookup. */
    instr next = pc + 1 < p->ncode ? p->code[pc + 1] : 0;
    bool fuse = INSTR_OP(i) == BC_CJINK && INSTR_OP(next) == BC_INDEXK && INSTR_B(next) == INSTR_B(i) &&
                INSTR_C(next) == INSTR_A(i) && p->sets[INSTR_B(i)] && p->consts[INSTR_B(i)].kind == CV_MAP;
    p->fast_code[pc] = INSTR_MAKE(fuse ? BC_CJINKIDX : INSTR_OP(i), INSTR_A(i), INSTR_B(i), c);
  }
  /* `has(x) && x in K`: CJABSENT x then CJINK x, K, both jumping to the
   * same place once threaded, are one instruction. */
  for (uint32_t pc = 0; pc + 1 < p->ncode; pc++) {
    instr i = p->fast_code[pc], next = p->fast_code[pc + 1];
    if (INSTR_OP(i) != BC_CJABSENT || INSTR_OP(next) != BC_CJINK || INSTR_A(next) != INSTR_A(i) ||
        !p->sets[INSTR_B(next)] || pc + 1 + INSTR_C(i) != pc + 2 + INSTR_C(next))
      continue;
    p->fast_code[pc] = INSTR_MAKE(BC_CJHASINK, INSTR_A(i), INSTR_B(next), INSTR_C(i));
  }
  return true;
}

clause_program *clb_read(const void *bytes, size_t len, char *err, size_t errcap) {
  const unsigned char *b = bytes;
  if (len < 12 || memcmp(b, CLB_MAGIC, 4) != 0) {
    snprintf(err, errcap, "not a clause bytecode file (bad magic number)");
    return NULL;
  }
  unsigned version = b[4] | (unsigned)b[5] << 8;
  if (version != CLB_VERSION) {
    snprintf(err, errcap, "unsupported bytecode format version %u (this build reads version %u)",
             version, CLB_VERSION);
    return NULL;
  }
  uint32_t stored = (uint32_t)b[len - 4] | (uint32_t)b[len - 3] << 8 |
                    (uint32_t)b[len - 2] << 16 | (uint32_t)b[len - 1] << 24;
  uint32_t actual = (uint32_t)crc32(0L, b, (uInt)(len - 4));
  if (stored != actual) {
    snprintf(err, errcap, "bad checksum: the file is corrupt (CRC-32 %08x, expected %08x)", actual,
             stored);
    return NULL;
  }

  clause_program *p = calloc(1, sizeof *p);
  if (!p) {
    snprintf(err, errcap, "out of memory");
    return NULL;
  }
  arena_init(&p->mem, 4096);
  p->loaded = true;
  reader rd = {b + 8, b + len - 4, &p->mem, false, err, errcap};
  reader *r = &rd;

  p->kind = get_u8(r, "header");
  p->default_effect = get_u8(r, "header");
  p->first_match = get_u8(r, "header");
  p->on_error_deny = get_u8(r, "header");
  p->on_store_error_allow = get_u8(r, "header");
  p->name = get_str(r, "policy name");
  p->version = get_str(r, "policy version");

  p->nfields = get_count(r, 7, "fields");
  prog_field *fields = get_array(r, p->nfields, sizeof *fields);
  p->fields = fields;
  for (uint32_t i = 0; i < p->nfields && !r->bad; i++) {
    fields[i].path = get_str(r, "field path");
    if (!r->bad && (!fields[i].path || !fields[i].path[0])) fail(r, "bad bytecode: field %u has no path", i);
    fields[i].type = get_type(r, 0);
    fields[i].optional = get_u8(r, "field");
    fields[i].clock = get_u8(r, "field");
    if (!r->bad) make_absent(r, &fields[i]);
  }
  p->clock_field = get_u32(r, "registers");
  p->now_reg = get_u32(r, "registers");
  p->nregs = get_u32(r, "registers");

  p->nlets = get_count(r, 4, "lets");
  p->let_regs = get_array(r, p->nlets, sizeof(uint32_t));
  for (uint32_t i = 0; i < p->nlets && !r->bad; i++) p->let_regs[i] = get_u32(r, "lets");

  p->nconsts = get_count(r, 1, "constants");
  p->consts = get_array(r, p->nconsts, sizeof(value));
  for (uint32_t i = 0; i < p->nconsts && !r->bad; i++) get_value(r, &p->consts[i], 0);

  p->ncalls = get_count(r, 6, "calls");
  p->calls = get_array(r, p->ncalls, sizeof(prog_call));
  for (uint32_t i = 0; i < p->ncalls && !r->bad; i++) {
    prog_call *c = &p->calls[i];
    c->name = get_str(r, "call");
    c->member = get_u8(r, "call");
    c->nargs = get_u8(r, "call");
    if (r->bad) break;
    c->fn = c->name ? cel_builtin_find(c->name, c->member, c->nargs) : NULL;
    if (!c->fn) fail(r, "unknown function %s%s with %u arguments", c->member ? "." : "", c->name ? c->name : "(null)", c->nargs);
  }

  p->nrules = get_count(r, 17, "rules");
  p->rules = get_array(r, p->nrules, sizeof(prog_rule));
  for (uint32_t i = 0; i < p->nrules && !r->bad; i++) {
    p->rules[i].id = get_str(r, "rule id");
    p->rules[i].cite = get_str(r, "rule cite");
    p->rules[i].effect = get_u8(r, "rule");
    p->rules[i].reason_block = get_u32(r, "rule");
    p->rules[i].suspend_key_block = get_u32(r, "rule");
    if (!r->bad && !p->rules[i].id) fail(r, "bad bytecode: rule %u has no id", i);
    p->nsuspend += p->rules[i].suspend_key_block != PROG_NONE;
  }

  p->nobligs = get_count(r, 12, "obligations");
  p->obligs = get_array(r, p->nobligs, sizeof(prog_oblig));
  for (uint32_t i = 0; i < p->nobligs && !r->bad; i++) {
    p->obligs[i].rule = get_u32(r, "obligation");
    p->obligs[i].action = get_str(r, "obligation action");
    p->obligs[i].nargs = get_u32(r, "obligation");
    if (!r->bad && !p->obligs[i].action) fail(r, "bad bytecode: obligation %u has no action", i);
  }

  p->suspend_rules = get_array(r, p->nsuspend, sizeof(uint32_t));
  for (uint32_t i = 0, k = 0; i < p->nrules && !r->bad; i++)
    if (p->rules[i].suspend_key_block != PROG_NONE) p->suspend_rules[k++] = i;

  p->counter_reg = get_u32(r, "counters");
  p->ncounters = get_count(r, 22, "counters");
  p->counters = get_array(r, p->ncounters, sizeof(prog_counter));
  for (uint32_t i = 0; i < p->ncounters && !r->bad; i++) {
    prog_counter *c = &p->counters[i];
    c->name = get_str(r, "counter name");
    c->window_ns = (int64_t)get_u64(r, "counter");
    c->mode = get_u8(r, "counter");
    c->on_mask = get_u8(r, "counter");
    c->key_block = get_u32(r, "counter");
    c->arg_block = get_u32(r, "counter");
    if (!r->bad && (!c->name || !c->name[0] || strchr(c->name, '/') || strchr(c->name, ':')))
      fail(r, "bad bytecode: counter %u has no valid name", i);
    if (r->bad) break;
    /* The store's name for the counter: programs that declare the same
     * counter (name, kind and window) share it. */
    char id[64];
    int n = snprintf(id, sizeof id, "/%c/%lld", "cad"[c->mode % 3], (long long)c->window_ns);
    char *full = arena_alloc(r->a, strlen(c->name) + (size_t)n + 1);
    if (!full) {
      fail(r, "out of memory");
      break;
    }
    memcpy(full, c->name, strlen(c->name));
    memcpy(full + strlen(c->name), id, (size_t)n + 1);
    c->store_id = full;
  }

  p->nblocks = get_count(r, 4, "blocks");
  p->block_start = get_array(r, p->nblocks + 1, sizeof(uint32_t));
  for (uint32_t i = 0; i < p->nblocks && !r->bad; i++) p->block_start[i] = get_u32(r, "blocks");

  p->ncode = get_count(r, 8, "instructions");
  p->code = get_array(r, p->ncode, sizeof(instr));
  for (uint32_t i = 0; i < p->ncode && !r->bad; i++) p->code[i] = get_u64(r, "code");
  if (!r->bad && p->block_start) p->block_start[p->nblocks] = p->ncode;

  uint32_t ndebug = get_count(r, 4, "debug entries");
  if (!r->bad && ndebug && ndebug != p->ncode) fail(r, "bad bytecode: %u debug entries for %u instructions", ndebug, p->ncode);
  if (ndebug) {
    p->debug = get_array(r, ndebug, sizeof(char *));
    for (uint32_t i = 0; i < ndebug && !r->bad; i++) p->debug[i] = get_str(r, "debug text");
  }
  get_externs(r, p);
  if (!r->bad && r->p != r->end) fail(r, "bad bytecode: %zu unexpected bytes before the checksum", left(r));

  if (!r->bad && verify_program(p, err, errcap) != 0) r->bad = true;

  if (!r->bad) {
    /* Constant patterns of MATCHK compile once, here (the verifier has
     * checked that each is a string constant). */
    p->regexes = calloc(p->nconsts ? p->nconsts : 1, sizeof(void *));
    p->sets = arena_alloc(&p->mem, (p->nconsts ? p->nconsts : 1) * sizeof(strset *));
    if (!p->regexes || !p->sets) fail(r, "out of memory");
    else memset(p->sets, 0, (p->nconsts ? p->nconsts : 1) * sizeof(strset *));
    /* Constant lists tested with `in`, and constant maps indexed by
     * INDEXK, get a hash set of their strings (NULL when not all are). */
    for (uint32_t pc = 0; pc < p->ncode && !r->bad; pc++) {
      unsigned op = INSTR_OP(p->code[pc]);
      uint32_t k = op == BC_INK || op == BC_ANYINK ? INSTR_C(p->code[pc])
                   : op == BC_CJINK || op == BC_CJNINK || op == BC_INDEXK ? INSTR_B(p->code[pc])
                                                                         : PROG_NONE;
      if (k != PROG_NONE && !p->sets[k]) p->sets[k] = strset_build(&p->mem, &p->consts[k]);
    }
    if (!r->bad && !tag_list_values(p)) fail(r, "out of memory");
    if (!r->bad && !build_fast_code(p)) fail(r, "out of memory");
    for (uint32_t pc = 0; pc < p->ncode && !r->bad; pc++) {
      if (INSTR_OP(p->code[pc]) != BC_MATCHK) continue;
      uint32_t k = INSTR_C(p->code[pc]);
      if (p->regexes[k]) continue;
      char rerr[256];
      p->regexes[k] = regex_compile(p->consts[k].s, p->consts[k].n, rerr, sizeof rerr);
      if (!p->regexes[k]) fail(r, "invalid regular expression in constant %u: %s", k, rerr);
    }
  }
  if (!r->bad) { /* verified: blocks and registers are in range */
    for (uint32_t i = 0; i < p->ncounters; i++) {
      p->counters[i].key_reg = block_only_returns(p, p->counters[i].key_block);
      p->counters[i].arg_reg = block_only_returns(p, p->counters[i].arg_block);
      p->on_masks |= p->counters[i].on_mask;
    }
    for (uint32_t i = 0; i < p->nrules; i++)
      p->rules[i].suspend_key_reg = block_only_returns(p, p->rules[i].suspend_key_block);
    bool stateful = p->ncounters || p->nsuspend;
    for (uint32_t pc = p->block_start[0]; p->kind == PROG_POLICY && pc < p->block_start[1]; pc++)
      if (INSTR_OP(p->code[pc]) == BC_STATE) p->rules_before_state = stateful && p->nexterns == 0;
  }
  if (!r->bad && p->kind == PROG_POLICY) {
    p->binder = json_binder_new(p->fields, p->nfields);
    if (!p->binder) fail(r, "bad bytecode: the input schema cannot be bound (overlapping paths?)");
  }
  if (r->bad) {
    clause_program_free(p);
    return NULL;
  }
  return p;
}
