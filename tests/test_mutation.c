/*
 * test_mutation.c - hostile bytecode is rejected with an error or runs
 * safely; it never crashes the loader or the VM (SPEC sections 7 and 9).
 *
 * The seed policy (examples/seed/terms.clause, under $CLAUSE_SRCDIR) is
 * compiled and serialized, then mutated many thousands of times: bits and
 * bytes flipped, instruction words overwritten, operands set to boundary
 * values, jumps and block starts moved, the file truncated, grown, cut and
 * spliced. Each mutant gets a freshly computed CRC-32 trailer, so that it
 * gets past the checksum and reaches the parser and the verifier. A mutant
 * that loads is run on a few requests of examples/seed/traffic.jsonl: the
 * evaluation must succeed, terminate, and yield a well-formed decision.
 *
 * Mutant i is made from its own PRNG stream seeded by (SEED, i), so any one
 * can be replayed: CLAUSE_MUTANT=i runs only that mutant and writes it to
 * clause-mutant.clb. CLAUSE_MUTANTS=N changes how many are made.
 *
 * Hand-built hostile programs cover the holes a random mutant is unlikely
 * to find (loops that never exit, rule instructions run twice, registers
 * read before they are written in an evaluation), and the explicit header
 * cases (magic, version, checksum, short files) check the loader's words.
 */
#define _GNU_SOURCE /* dl_iterate_phdr */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <link.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "../include/clause.h"
#include "program.h"
#include "test_util.h"

#define SEED UINT64_C(0x636c617573652d31) /* "clause-1" */
#define DEFAULT_MUTANTS 25000
#define NREQUESTS 4
#define WATCHDOG_SECONDS 3
#define MAX_REPORTED_FAILURES 10

/* ---- fixture: the seed program, its bytes, a few requests --------------------- */

typedef struct layout {
  size_t blocks_off; /* first u32 of the block table */
  uint32_t nblocks;
  size_t code_off;   /* first instruction word */
  uint32_t ncode;
} layout;

/* What mutants are made from: a program and its .clb bytes. */
typedef struct seed {
  const clause_program *prog;
  const uint8_t *bytes; /* CRC trailer included */
  size_t len;
  layout lay;
} seed;

static struct fixture {
  clause_program *prog;
  uint8_t *bytes; /* the .clb file, CRC trailer included */
  size_t len;
  layout lay;
  char *traffic;  /* the whole traffic file; requests point into it */
  const char *req[NREQUESTS];
  size_t req_len[NREQUESTS];
} fx;

static uint32_t get_u32(const uint8_t *b) {
  return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static void put_u32(uint8_t *b, uint32_t v) {
  b[0] = (uint8_t)v;
  b[1] = (uint8_t)(v >> 8);
  b[2] = (uint8_t)(v >> 16);
  b[3] = (uint8_t)(v >> 24);
}

static void put_u64(uint8_t *b, uint64_t v) {
  put_u32(b, (uint32_t)v);
  put_u32(b + 4, (uint32_t)(v >> 32));
}

static uint64_t get_u64(const uint8_t *b) { return get_u32(b) | (uint64_t)get_u32(b + 4) << 32; }

/* Writes the CRC-32 trailer over body[0..n) at body[n..n+4); returns n + 4. */
static size_t seal(uint8_t *body, size_t n) {
  put_u32(body + n, (uint32_t)crc32(0L, body, (uInt)n));
  return n + 4;
}

static size_t str_size(const char *s) { return 4 + (s ? strlen(s) : 0); }

/* The code section sits just before the debug table and the extern table
 * at the end of the file (vm/clb.c), and the block table just before the
 * code: both are found from the end, and checked against their counts. */
static bool find_layout(const clause_program *p, const uint8_t *b, size_t len, layout *l) {
  size_t debug = 4;
  if (p->debug)
    for (uint32_t i = 0; i < p->ncode; i++) debug += str_size(p->debug[i]);
  debug += 4; /* the extern table */
  for (uint32_t i = 0; i < p->nexterns; i++)
    debug += str_size(p->externs[i].name) + str_size(p->externs[i].lib) + str_size(p->externs[i].symbol) + 2 +
             p->externs[i].nparams;
  l->ncode = p->ncode;
  l->nblocks = p->nblocks;
  if (len < 4 + debug + 8 * (size_t)p->ncode + 8 + 4 * (size_t)p->nblocks) return false;
  l->code_off = len - 4 - debug - 8 * (size_t)p->ncode;
  l->blocks_off = l->code_off - 4 - 4 * (size_t)p->nblocks;
  if (get_u32(b + l->code_off - 4) != p->ncode || get_u32(b + l->blocks_off - 4) != p->nblocks)
    return false;
  for (uint32_t i = 0; i < p->ncode; i++)
    if (get_u64(b + l->code_off + 8 * i) != p->code[i]) return false;
  return true;
}

static int setup(void **state) {
  (void)state;
  char path[4096];
  clause_error err;
  snprintf(path, sizeof path, "%s/examples/seed/terms.clause", srcdir());
  fx.prog = clause_compile_file(path, NULL, &err);
  if (!fx.prog) {
    fprintf(stderr, "%s:%d:%d: %s (set CLAUSE_SRCDIR to the source tree)\n", err.file, err.line,
            err.column, err.message);
    return -1;
  }
  outbuf o;
  ob_init_grow(&o);
  if (clb_write(fx.prog, &o) != CLAUSE_OK) return -1;
  fx.len = o.len;
  fx.bytes = malloc(o.len);
  if (!fx.bytes) return -1;
  memcpy(fx.bytes, o.buf, o.len);
  ob_free(&o);
  if (!find_layout(fx.prog, fx.bytes, fx.len, &fx.lay)) {
    fprintf(stderr, "the .clb layout is not what vm/clb.c describes\n");
    return -1;
  }

  /* Requests spread over the traffic file. */
  snprintf(path, sizeof path, "%s/examples/seed/traffic.jsonl", srcdir());
  size_t tlen;
  fx.traffic = read_whole(path, &tlen);
  if (!fx.traffic) {
    fprintf(stderr, "cannot read %s\n", path);
    return -1;
  }
  const char *lines[1024];
  size_t nlines = 0;
  for (char *s = fx.traffic; *s && nlines < 1024;) {
    char *nl = strchr(s, '\n');
    if (nl) *nl = '\0';
    if (*s == '{') lines[nlines++] = s;
    s = nl ? nl + 1 : s + strlen(s);
  }
  if (nlines < NREQUESTS) return -1;
  for (int i = 0; i < NREQUESTS; i++) {
    fx.req[i] = lines[(size_t)i * nlines / NREQUESTS + 3 * (size_t)i];
    fx.req_len[i] = strlen(fx.req[i]);
  }
  return 0;
}

static int teardown(void **state) {
  (void)state;
  clause_program_free(fx.prog);
  free(fx.bytes);
  free(fx.traffic);
  return 0;
}

/* ---- watchdog: an evaluation that does not terminate fails the test --------- */

static sigjmp_buf watchdog_env;
static volatile sig_atomic_t watchdog_armed;

static void on_alarm(int sig) {
  (void)sig;
  if (watchdog_armed) siglongjmp(watchdog_env, 1);
}

static void watchdog_install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGALRM, &sa, NULL);
}

/* ---- running a program that loaded -------------------------------------------- */

/* What a loaded program's run must satisfy. Returns NULL when it is sound,
 * else what is wrong (the caller names the mutant). */
static const char *check_decision(const clause_program *p, const clause_decision *d) {
  static char why[256];
  if (d->effect != CLAUSE_ALLOW && d->effect != CLAUSE_THROTTLE && d->effect != CLAUSE_DENY &&
      d->effect != CLAUSE_SUSPEND)
    return "effect out of range";
  /* Each rule matches at most once and each obligation is collected at most
   * once: more means the VM wrote past arrays sized from the program. */
  if (d->n_flags > p->nrules) {
    snprintf(why, sizeof why, "%zu flags from %u rules", d->n_flags, p->nrules);
    return why;
  }
  if (d->n_obligations > p->nobligs) {
    snprintf(why, sizeof why, "%zu obligations from %u declared", d->n_obligations, p->nobligs);
    return why;
  }
  for (size_t i = 0; i < d->n_flags; i++)
    if (!d->flags[i]) return "a NULL flag";
  for (size_t i = 0; i < d->n_obligations; i++)
    if (!d->obligations[i].rule || !d->obligations[i].action || !d->obligations[i].args_json)
      return "an obligation with a NULL member";
  for (size_t i = 0; i < d->n_errors; i++)
    if (!d->errors[i].message) return "an error without a message";
  int need = clause_decision_json(d, NULL, 0);
  if (need <= 0) return "clause_decision_json failed";
  char *buf = malloc((size_t)need + 1);
  if (!buf) return "out of memory";
  int got = clause_decision_json(d, buf, (size_t)need + 1);
  const char *bad = NULL;
  if (got != need || strlen(buf) != (size_t)need) bad = "clause_decision_json lengths disagree";
  else if (strncmp(buf, "{\"effect\":\"", 11) != 0 || buf[need - 1] != '}') bad = "decision JSON malformed";
  free(buf);
  return bad;
}

typedef struct run_result {
  const char *problem; /* NULL: ran safely */
  unsigned bind_failures;
} run_result;

/* The run in progress: static, so that it survives the watchdog's
 * siglongjmp intact (no locals are modified between sigsetjmp and it). */
static struct {
  clause_vm *vm;
  run_result res;
  int current;
  char why[320];
} run;

static void run_requests(const clause_program *p, const char *const *req, const size_t *req_len,
                         int n) {
  for (run.current = 0; run.current < n && !run.res.problem; run.current++) {
    int i = run.current;
    clause_error err;
    memset(&err, 0, sizeof err);
    int rc = clause_vm_set_json(run.vm, req[i], req_len[i], &err);
    if (rc != CLAUSE_OK) {
      run.res.bind_failures++;
      if (!err.message[0]) run.res.problem = "binding failed without a message";
    }
    clause_decision d;
    rc = clause_vm_eval(run.vm, &d);
    if (rc != CLAUSE_OK) {
      snprintf(run.why, sizeof run.why, "request %d: clause_vm_eval returned %d", i, rc);
      run.res.problem = run.why;
    } else {
      const char *bad = check_decision(p, &d);
      if (bad) {
        snprintf(run.why, sizeof run.why, "request %d: %s", i, bad);
        run.res.problem = run.why;
      }
    }
  }
}

/* Binds `n` requests in turn into one VM and evaluates each, under the
 * watchdog. Requests bound in sequence into one VM also expose state that
 * leaks from one evaluation into the next. */
static run_result run_program(const clause_program *p, const char *const *req, const size_t *req_len,
                              int n) {
  memset(&run, 0, sizeof run);
  run.vm = clause_vm_new(p);
  if (!run.vm) {
    run.res.problem = "clause_vm_new failed";
    return run.res;
  }
  if (sigsetjmp(watchdog_env, 1)) {
    watchdog_armed = 0;
    snprintf(run.why, sizeof run.why, "evaluation of request %d did not terminate", run.current);
    run.res.problem = run.why; /* the VM was abandoned mid-run: leak it */
    return run.res;
  }
  watchdog_armed = 1;
  alarm(WATCHDOG_SECONDS);
  run_requests(p, req, req_len, n);
  alarm(0);
  watchdog_armed = 0;
  clause_vm_free(run.vm);
  return run.res;
}

/* ---- classifying rejections by the loader's message ------------------------------ */

/* Parser checks (vm/clb.c) and verifier checks (vm/verify.c, labelled with
 * verify_check_names), recognised by the words of their messages. The
 * first matching row wins, so specific rows come before general ones. */
typedef struct reason_pattern {
  const char *label;  /* loader rows: the check's name */
  int vc;             /* verifier rows: the verify_check; -1 for the loader */
  const char *prefix; /* the message starts with this (NULL: any) */
  const char *infix;  /* and contains this after it (NULL: anything) */
} reason_pattern;

static const reason_pattern patterns[] = {
    {"bad magic", -1, "not a clause bytecode file", NULL},
    {"format version", -1, "unsupported bytecode format version", NULL},
    {"checksum", -1, "bad checksum", NULL},
    {"truncated", -1, "truncated bytecode", NULL},
    {"count larger than the file", -1, "bad bytecode: ", "cannot fit in the file"},
    {"NUL in a string", -1, NULL, "holds a NUL byte"},
    {"constant table", -1, "bad bytecode: string constant is not UTF-8", NULL},
    {"field table", -1, "bad bytecode: field type", NULL},
    {"field table", -1, "bad bytecode: unknown field type", NULL},
    {"field table", -1, "bad bytecode: field ", "has no path"},
    {"constant table", -1, "bad bytecode: unknown constant kind", NULL},
    {"constant table", -1, "bad bytecode: bool constant", NULL},
    {"constant table", -1, "bad bytecode: timestamp constant", NULL},
    {"constant table", -1, "bad bytecode: unknown type constant", NULL},
    {"constant table", -1, "bad bytecode: constant nested", NULL},
    {"call table", -1, "unknown function", NULL},
    {"rule table", -1, "bad bytecode: rule ", "has no id"},
    {"obligation table", -1, "bad bytecode: obligation ", "has no action"},
    {"debug table", -1, "bad bytecode: ", "debug entries"},
    {"trailing bytes", -1, "bad bytecode: ", "unexpected bytes before the checksum"},
    {"regular expression", -1, "invalid regular expression", NULL},
    {"input schema", -1, "bad bytecode: the input schema", NULL},
    {"out of memory", -1, "out of memory", NULL},
    {"extern binding", -1, "extern `", NULL},
    /* The verifier: per-instruction messages name the instruction first. */
    {NULL, VC_TYPE, "bad bytecode at ", "both as a value and an iterator"},
    {NULL, VC_TYPE, "bad bytecode at ", "must be a string"},
    {NULL, VC_REGISTER, "bad bytecode at ", "register"},
    {NULL, VC_CONSTANT, "bad bytecode at ", "constant k"},
    {NULL, VC_CONSTANT, "bad bytecode at ", "call site"},
    {NULL, VC_JUMP, "bad bytecode at ", "jump"},
    {NULL, VC_LOOP, "bad bytecode at ", "loop"},
    {NULL, VC_CONSTANT, "bad bytecode at ", "out of range"}, /* rule, obligation */
    {NULL, VC_OPCODE, "bad bytecode at ", "opcode"},
    {NULL, VC_OPCODE, "bad bytecode at ", "operand"},
    {NULL, VC_BLOCK_END, "bad bytecode at ", "rules block"},
    {NULL, VC_BLOCK_END, "bad bytecode: block ", "does not end in"},
    {NULL, VC_TABLES, "bad bytecode: ", NULL},
};
#define NPATTERNS (sizeof patterns / sizeof patterns[0])

static const char *pattern_label(size_t k) {
  return patterns[k].vc >= 0 ? verify_check_names[patterns[k].vc] : patterns[k].label;
}

/* The index of the matching pattern, or NPATTERNS when none does. */
static size_t classify(const char *msg) {
  for (size_t k = 0; k < NPATTERNS; k++) {
    const reason_pattern *r = &patterns[k];
    if (r->prefix && strncmp(msg, r->prefix, strlen(r->prefix)) != 0) continue;
    if (r->infix && !strstr(msg + (r->prefix ? strlen(r->prefix) : 0), r->infix)) continue;
    return k;
  }
  return NPATTERNS;
}

/* ---- the mutator ----------------------------------------------------------------- */

typedef struct rng {
  uint64_t s;
} rng;

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

static uint64_t next(rng *r) { return splitmix64(&r->s); }
static uint32_t below(rng *r, uint64_t n) { return n ? (uint32_t)(next(r) % n) : 0; }

typedef enum mutation {
  /* Structure-aware (the file keeps its length and layout). */
  MU_WORD_RANDOM, MU_WORD_SYNTH, MU_OPERAND_BOUNDARY, MU_OPCODE, MU_WORD_COPY, MU_WORD_SWAP,
  MU_JUMP, MU_BLOCK_START, MU_HEADER,
  /* Byte-level. */
  MU_BITS, MU_BYTES, MU_U32_BOUNDARY, MU_TRUNCATE, MU_GROW, MU_INSERT, MU_DELETE, MU_DUPLICATE,
  MU__COUNT
} mutation;

static const char *const mutation_names[MU__COUNT] = {
    "random instruction word", "random valid-looking instruction", "operand boundary value",
    "opcode changed", "instruction copied", "instructions swapped", "jump moved",
    "block start moved", "header setting", "bit flips", "byte overwrite", "u32 boundary value",
    "truncation", "growth", "byte run inserted", "byte run deleted", "section duplicated",
};

/* How often each mutation is picked (out of the sum). */
static const unsigned mutation_weight[MU__COUNT] = {
    6, 8, 12, 8, 5, 4, 8, 4, 3, 10, 8, 6, 5, 3, 4, 4, 4,
};

static mutation pick_mutation(rng *r) {
  unsigned total = 0;
  for (int m = 0; m < MU__COUNT; m++) total += mutation_weight[m];
  unsigned x = below(r, total);
  for (int m = 0; m < MU__COUNT; m++) {
    if (x < mutation_weight[m]) return (mutation)m;
    x -= mutation_weight[m];
  }
  return MU_BITS;
}

static bool structural(mutation m) { return m <= MU_HEADER; }

/* Boundary values for an operand of the seed program. */
static unsigned boundary_operand(rng *r, const clause_program *p) {
  const unsigned values[] = {
      0, 1, p->nregs - 1, p->nregs, p->nfields - 1, p->nfields, p->nconsts - 1, p->nconsts,
      p->ncalls, p->nrules - 1, p->nrules, p->nobligs, p->ncode, p->nexterns, 0x7fff, 0xfffe, 0xffff,
  };
  return values[below(r, sizeof values / sizeof values[0])] & 0xffffu;
}

static unsigned random_operand(rng *r, const clause_program *p) {
  switch (below(r, 3)) {
  case 0: return boundary_operand(r, p);
  case 1: return below(r, p->nregs + 2u);
  default: return below(r, 0x10000);
  }
}

static void set_operand(uint8_t *w, int slot, unsigned v) {
  uint64_t word = get_u64(w);
  int shift = 16 * (slot + 1);
  word = (word & ~((uint64_t)0xffff << shift)) | ((uint64_t)(v & 0xffff) << shift);
  put_u64(w, word);
}

typedef struct mutant {
  uint8_t *b;  /* body, then room for growth and the trailer */
  size_t n;    /* body length */
  size_t cap;
} mutant;

/* Inserts `k` bytes from `src` (or random ones when src is NULL) at `at`. */
static void insert_bytes(rng *r, mutant *m, size_t at, const uint8_t *src, size_t k) {
  if (m->n + k + 4 > m->cap) k = m->cap - 4 - m->n;
  memmove(m->b + at + k, m->b + at, m->n - at);
  for (size_t i = 0; i < k; i++) m->b[at + i] = src ? src[i] : (uint8_t)next(r);
  m->n += k;
}

static void mutate(rng *r, mutant *m, mutation mu, const clause_program *p, const layout *l) {
  uint8_t *code = m->b + l->code_off;
  uint32_t pc = below(r, l->ncode);
  switch (mu) {
  case MU_WORD_RANDOM:
    put_u64(code + 8 * pc, next(r));
    break;
  case MU_WORD_SYNTH:
    put_u64(code + 8 * pc, INSTR_MAKE(below(r, BC__COUNT), random_operand(r, p), random_operand(r, p),
                                      random_operand(r, p)));
    break;
  case MU_OPERAND_BOUNDARY:
    set_operand(code + 8 * pc, (int)below(r, 3), boundary_operand(r, p));
    break;
  case MU_OPCODE: {
    uint64_t w = get_u64(code + 8 * pc) & ~(uint64_t)0xff;
    put_u64(code + 8 * pc, w | (below(r, 8) ? below(r, BC__COUNT) : below(r, 256)));
    break;
  }
  case MU_WORD_COPY: {
    /* Often onto the next word: runs a rule instruction twice. */
    uint32_t to = below(r, 2) && pc + 1 < l->ncode ? pc + 1 : below(r, l->ncode);
    memmove(code + 8 * to, code + 8 * pc, 8);
    break;
  }
  case MU_WORD_SWAP: {
    uint8_t tmp[8];
    uint32_t other = below(r, l->ncode);
    memcpy(tmp, code + 8 * pc, 8);
    memmove(code + 8 * pc, code + 8 * other, 8);
    memcpy(code + 8 * other, tmp, 8);
    break;
  }
  case MU_JUMP: {
    /* Retarget an instruction that jumps or loops. */
    for (int tries = 0; tries < 64; tries++, pc = below(r, l->ncode)) {
      unsigned op = INSTR_OP(get_u64(code + 8 * pc));
      if (op >= BC__COUNT) continue;
      const char *kinds = opcode_kinds[op];
      if (kinds[2] != 'j' && kinds[2] != 'l') continue;
      unsigned c = INSTR_C(get_u64(code + 8 * pc));
      unsigned v = below(r, 2) ? c + below(r, 5) - 2 : below(r, l->ncode + 2);
      set_operand(code + 8 * pc, 2, v);
      break;
    }
    break;
  }
  case MU_BLOCK_START: {
    uint8_t *bs = m->b + l->blocks_off + 4 * below(r, l->nblocks);
    uint32_t v = get_u32(bs);
    put_u32(bs, below(r, 2) ? v + below(r, 5) - 2 : below(r, l->ncode + 2));
    break;
  }
  case MU_HEADER:
    m->b[8 + below(r, 5)] = (uint8_t)below(r, 4);
    break;
  case MU_BITS:
    for (uint32_t k = 1 + below(r, 8); k; k--) m->b[below(r, m->n)] ^= (uint8_t)(1u << below(r, 8));
    break;
  case MU_BYTES:
    for (uint32_t k = 1 + below(r, 4); k; k--) m->b[below(r, m->n)] = (uint8_t)next(r);
    break;
  case MU_U32_BOUNDARY: {
    static const uint32_t values[] = {0, 1, 2, 0x7f, 0x80, 0xff, 0xffff, 0x10000, 0x7fffffff,
                                      0x80000000u, 0xfffffffeu, 0xffffffffu};
    if (m->n >= 4) put_u32(m->b + below(r, m->n - 3), values[below(r, sizeof values / sizeof values[0])]);
    break;
  }
  case MU_TRUNCATE:
    m->n = below(r, 2) ? below(r, m->n) : m->n - below(r, m->n < 64 ? m->n : 64);
    break;
  case MU_GROW:
    insert_bytes(r, m, m->n, NULL, 1 + below(r, 64));
    break;
  case MU_INSERT:
    insert_bytes(r, m, below(r, m->n + 1), NULL, 1 + below(r, 32));
    break;
  case MU_DELETE: {
    size_t at = below(r, m->n), k = 1 + below(r, 32);
    if (k > m->n - at) k = m->n - at;
    memmove(m->b + at, m->b + at + k, m->n - at - k);
    m->n -= k;
    break;
  }
  case MU_DUPLICATE: {
    /* A range copied in place after itself, or elsewhere; instruction-
     * aligned runs of code half the time. */
    size_t from, k;
    if (below(r, 2) && l->code_off + 8 * (size_t)l->ncode <= m->n) {
      from = l->code_off + 8 * (size_t)pc;
      k = 8 * (size_t)(1 + below(r, 4));
      if (from + k > l->code_off + 8 * (size_t)l->ncode) k = 8;
    } else {
      from = below(r, m->n);
      k = 1 + below(r, 256);
      if (k > m->n - from) k = m->n - from;
    }
    uint8_t *copy = malloc(k);
    if (!copy) break;
    memcpy(copy, m->b + from, k);
    insert_bytes(r, m, below(r, 2) ? from + k : below(r, m->n + 1), copy, k);
    free(copy);
    break;
  }
  case MU__COUNT:
    break;
  }
}

/* Makes mutant `index`: 1 to 3 mutations, the structure-aware ones first
 * (they rely on the original layout), then the trailer. Returns the file
 * length; `names` gets the mutations applied. */
static size_t make_mutant(const seed *sd, size_t index, mutant *m, char *names, size_t names_cap) {
  rng r = {SEED ^ (index * UINT64_C(0x2545f4914f6cdd1d))};
  next(&r);
  size_t body = sd->len - 4;
  memcpy(m->b, sd->bytes, body);
  m->n = body;
  unsigned count = 1 + (below(&r, 100) < 60 ? 0 : below(&r, 100) < 60 ? 1 : 2);
  mutation mus[3];
  for (unsigned k = 0; k < count; k++) mus[k] = pick_mutation(&r);
  names[0] = '\0';
  size_t used = 0;
  for (int pass = 0; pass < 2; pass++)
    for (unsigned k = 0; k < count; k++) {
      if (structural(mus[k]) != (pass == 0)) continue;
      mutate(&r, m, mus[k], sd->prog, &sd->lay);
      int w = snprintf(names + used, names_cap - used, "%s%s", used ? " + " : "", mutation_names[mus[k]]);
      if (w > 0 && used + (size_t)w < names_cap) used += (size_t)w;
    }
  return seal(m->b, m->n);
}

/* ---- the mutation test ----------------------------------------------------------- */

static size_t env_size(const char *name, size_t dflt) {
  const char *s = getenv(name);
  if (!s || !*s) return dflt;
  return (size_t)strtoull(s, NULL, 10);
}

/* The objects (shared libraries) mapped into the process. */
typedef struct object_list {
  char *names[256];
  size_t n;
} object_list;

static int list_object(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  object_list *l = data;
  if (l->n < 256) l->names[l->n++] = strdup(info->dlpi_name ? info->dlpi_name : "");
  return 0;
}

static void objects_free(object_list *l) {
  for (size_t i = 0; i < l->n; i++) free(l->names[i]);
  l->n = 0;
}

/* An object mapped now that was not at the start and does not lie in the
 * allowed folder `dir`, or NULL. */
static const char *stray_object(const object_list *before, const char *dir) {
  static char stray[1024];
  object_list now = {{0}, 0};
  dl_iterate_phdr(list_object, &now);
  const char *found = NULL;
  size_t n = strlen(dir);
  for (size_t i = 0; i < now.n && !found; i++) {
    bool known = false;
    for (size_t k = 0; k < before->n && !known; k++) known = strcmp(now.names[i], before->names[k]) == 0;
    if (!known && !(strncmp(now.names[i], dir, n) == 0 && now.names[i][n] == '/')) {
      snprintf(stray, sizeof stray, "%s", now.names[i]);
      found = stray;
    }
  }
  objects_free(&now);
  return found;
}

/* Makes `count` mutants of the seed (CLAUSE_MUTANTS, CLAUSE_MUTANT change
 * that), loads each with `opts` and runs those that load on the requests.
 * With an allow-list in `libdir`, also checks after every load that no
 * library outside it was opened. */
static void run_mutants(const char *what, const seed *sd, const clause_options *opts, const char *libdir,
                        size_t count, const char *const *req, const size_t *req_len, int nreq) {
  watchdog_install();
  count = env_size("CLAUSE_MUTANTS", count);
  size_t only = env_size("CLAUSE_MUTANT", SIZE_MAX);
  size_t first = only == SIZE_MAX ? 0 : only, last = only == SIZE_MAX ? count : only + 1;

  size_t rejected[NPATTERNS + 1] = {0};
  size_t loaded = 0, bind_failures = 0, unclassified_shown = 0, unsafe = 0;
  mutant m = {malloc(sd->len + 4096), 0, sd->len + 4096};
  assert_non_null(m.b);
  char names[256];
  object_list before = {{0}, 0};
  if (libdir) dl_iterate_phdr(list_object, &before);

  for (size_t i = first; i < last; i++) {
    size_t len = make_mutant(sd, i, &m, names, sizeof names);
    if (only != SIZE_MAX) {
      FILE *f = fopen("clause-mutant.clb", "wb");
      if (f) {
        fwrite(m.b, 1, len, f);
        fclose(f);
      }
      print_message("mutant %zu (%s): %zu bytes, written to clause-mutant.clb\n", i, names, len);
    }
    clause_error err;
    memset(&err, 0, sizeof err);
    clause_program *p = clause_load(m.b, len, opts, &err);
    const char *stray = libdir ? stray_object(&before, libdir) : NULL;
    if (stray) fail_msg("mutant %zu (%s): opened %s, outside the allow-list", i, names, stray);
    if (!p) {
      if (!err.message[0]) fail_msg("mutant %zu (%s): rejected without a message", i, names);
      size_t k = classify(err.message);
      rejected[k]++;
      if (only != SIZE_MAX || (k == NPATTERNS && unclassified_shown++ < 5))
        print_message("mutant %zu (%s) rejected: %s\n", i, names, err.message);
      continue;
    }
    loaded++;
    run_result res = run_program(p, req, req_len, nreq);
    bind_failures += res.bind_failures;
    clause_program_free(p);
    if (res.problem) {
      /* Go on with the others, so that one run shows every kind of hole;
       * stop after a few (a hang costs the watchdog's delay each). */
      print_error("mutant %zu (%s) loaded but did not run safely: %s (replay: CLAUSE_MUTANT=%zu)\n", i,
                  names, res.problem, i);
      if (++unsafe >= MAX_REPORTED_FAILURES) {
        print_error("stopping after %zu unsafe mutants\n", unsafe);
        break;
      }
    }
  }
  free(m.b);
  objects_free(&before);

  /* The table: one line per check, rows with the same check summed. */
  size_t total_rejected = 0, by_verifier = 0;
  print_message("%zu mutants of %s (%zu bytes), seed %#llx\n", last - first, what, sd->len,
                (unsigned long long)SEED);
  for (size_t k = 0; k <= NPATTERNS; k++) {
    total_rejected += rejected[k];
    if (k < NPATTERNS && patterns[k].vc >= 0) by_verifier += rejected[k];
    bool printed = false; /* by an earlier row with the same check */
    for (size_t j = 0; j < k && k < NPATTERNS && !printed; j++)
      printed = patterns[j].vc == patterns[k].vc && strcmp(pattern_label(j), pattern_label(k)) == 0;
    if (printed) continue;
    size_t sum = rejected[k];
    for (size_t j = k + 1; j < NPATTERNS && k < NPATTERNS; j++)
      if (patterns[j].vc == patterns[k].vc && strcmp(pattern_label(j), pattern_label(k)) == 0)
        sum += rejected[j];
    if (!sum) continue;
    if (k == NPATTERNS) print_message("  rejected with an unclassified message: %zu\n", sum);
    else print_message("  rejected by %s (%s): %zu\n", patterns[k].vc >= 0 ? "verifier" : "loader",
                       pattern_label(k), sum);
  }
  print_message("  loaded and ran safely: %zu (%zu requests bound with an error)\n", loaded - unsafe,
                bind_failures);
  if (unsafe) print_message("  LOADED AND DID NOT RUN SAFELY: %zu\n", unsafe);
  print_message("  rejected in all: %zu (verifier: %zu)\n", total_rejected, by_verifier);

  if (unsafe) fail_msg("%zu mutants loaded and did not run safely", unsafe);
  if (only == SIZE_MAX && count >= 2000) {
    /* The test means something only if mutants reach every stage. */
    assert_true(by_verifier >= count / 20);
    assert_true(loaded >= count / 100);
  }
}

static void test_mutants(void **state) {
  (void)state;
  seed sd = {fx.prog, fx.bytes, fx.len, fx.lay};
  run_mutants("examples/seed/terms.clause", &sd, NULL, NULL, DEFAULT_MUTANTS, fx.req, fx.req_len, NREQUESTS);
}

/* ---- mutants of a program with externs ------------------------------------------------ */

/* twice(x): the host function of tests/extern/mutation.clause. */
static void host_twice(clause_call_ctx *ctx, const clause_value *args, size_t nargs, clause_value *result) {
  (void)ctx;
  (void)nargs;
  result->i = (int64_t)((uint64_t)args[0].i * 2u); /* wraps: any int is fine */
}

/* The extern table is mutated like the rest; mutants are loaded with the
 * test library's folder as the allow-list and the host function
 * registered. Whatever a mutant names, nothing outside the folder may be
 * opened, and a host extern binds only with the exact registered
 * signature. The library function it calls, ext_zero, takes nothing and
 * returns 0, so it is harmless under any signature a mutant gives it. */
static void test_extern_mutants(void **state) {
  (void)state;
  char path[4096], libdir[PATH_MAX];
  if (!realpath(extern_libdir(), libdir)) fail_msg("no test library folder %s", extern_libdir());
  clause_options *o = clause_options_new();
  assert_non_null(o);
  static const clause_type T_INT[] = {CLAUSE_TYPE_INT};
  assert_int_equal(clause_options_set_extern_path(o, libdir), CLAUSE_OK);
  assert_int_equal(clause_options_add_function(o, "twice", T_INT, 1, CLAUSE_TYPE_INT, host_twice, NULL, NULL, 0),
                   CLAUSE_OK);
  snprintf(path, sizeof path, "%s/tests/extern/mutation.clause", srcdir());
  clause_error err;
  clause_program *p = clause_compile_file(path, o, &err);
  if (!p) fail_msg("%s:%d:%d: %s", err.file, err.line, err.column, err.message);
  outbuf ob;
  ob_init_grow(&ob);
  assert_int_equal(clb_write(p, &ob), CLAUSE_OK);
  seed sd = {p, (const uint8_t *)ob.buf, ob.len, {0, 0, 0, 0}};
  assert_true(find_layout(p, sd.bytes, sd.len, &sd.lay));
  static const char *const req[] = {
      "{\"request\": {\"n\": 3, \"s\": \"abc\"}}",
      "{\"request\": {\"n\": -7, \"s\": \"\"}}",
      "{\"request\": {\"s\": \"x\"}}",
  };
  size_t req_len[3];
  for (int i = 0; i < 3; i++) req_len[i] = strlen(req[i]);
  run_mutants("tests/extern/mutation.clause", &sd, o, libdir, DEFAULT_MUTANTS / 5, req, req_len, 3);
  ob_free(&ob);
  clause_program_free(p);
  clause_options_free(o);
}

/* The unmutated bytes load and decide exactly as the compiled program. */
static void test_roundtrip(void **state) {
  (void)state;
  clause_error err;
  clause_program *p = clause_load(fx.bytes, fx.len, NULL, &err);
  if (!p) fail_msg("the seed program's own bytes do not load: %s", err.message);
  clause_vm *a = clause_vm_new(fx.prog), *b = clause_vm_new(p);
  assert_non_null(a);
  assert_non_null(b);
  for (int i = 0; i < NREQUESTS; i++) {
    assert_int_equal(clause_vm_set_json(a, fx.req[i], fx.req_len[i], &err), CLAUSE_OK);
    assert_int_equal(clause_vm_set_json(b, fx.req[i], fx.req_len[i], &err), CLAUSE_OK);
    clause_decision da, db;
    assert_int_equal(clause_vm_eval(a, &da), CLAUSE_OK);
    assert_int_equal(clause_vm_eval(b, &db), CLAUSE_OK);
    char ja[8192], jb[8192];
    assert_true(clause_decision_json(&da, ja, sizeof ja) < (int)sizeof ja);
    assert_true(clause_decision_json(&db, jb, sizeof jb) < (int)sizeof jb);
    assert_string_equal(ja, jb);
  }
  clause_vm_free(a);
  clause_vm_free(b);
  clause_program_free(p);
}

/* ---- the loader's own words ---------------------------------------------------------- */

static void expect_rejected(const void *bytes, size_t len, const char *want) {
  clause_error err;
  memset(&err, 0, sizeof err);
  clause_program *p = clause_load(bytes, len, NULL, &err);
  if (p) {
    clause_program_free(p);
    fail_msg("%zu bytes loaded; expected a rejection mentioning \"%s\"", len, want);
  }
  if (!err.message[0]) fail_msg("rejected without a message");
  if (want && !strstr(err.message, want))
    fail_msg("message \"%s\" does not mention \"%s\"", err.message, want);
}

static uint8_t *copy_seed(void) {
  uint8_t *b = malloc(fx.len);
  assert_non_null(b);
  memcpy(b, fx.bytes, fx.len);
  return b;
}

static void test_bad_magic(void **state) {
  (void)state;
  uint8_t *b = copy_seed();
  b[0] = 'X';
  seal(b, fx.len - 4);
  expect_rejected(b, fx.len, "magic");
  free(b);
}

static void test_wrong_version(void **state) {
  (void)state;
  uint8_t *b = copy_seed();
  b[4] = (uint8_t)(CLB_VERSION + 1);
  seal(b, fx.len - 4);
  expect_rejected(b, fx.len, "version");
  /* The version is checked before the checksum: an old file says so even
   * when its checksum has another meaning in its format. */
  b[fx.len - 1] ^= 0x5a;
  expect_rejected(b, fx.len, "version");
  free(b);
}

static void test_bad_checksum(void **state) {
  (void)state;
  uint8_t *b = copy_seed();
  b[fx.len / 2] ^= 0x10; /* no reseal */
  expect_rejected(b, fx.len, "checksum");
  memcpy(b, fx.bytes, fx.len);
  b[fx.len - 2] ^= 0x01; /* the trailer itself */
  expect_rejected(b, fx.len, "checksum");
  free(b);
}

static void test_short_files(void **state) {
  (void)state;
  uint8_t b[16] = {0};
  expect_rejected(b, 0, NULL);
  expect_rejected(NULL, 0, NULL);
  /* Every prefix of a valid header, with and without a sealed trailer. */
  for (size_t n = 1; n < 12; n++) expect_rejected(fx.bytes, n, NULL);
  /* 12 bytes: magic, version, padding and a correct CRC of those 8 bytes:
   * the checksum holds, and the header is truncated. */
  memcpy(b, fx.bytes, 8);
  seal(b, 8);
  expect_rejected(b, 12, "truncated");
  b[9] ^= 1;
  expect_rejected(b, 12, "checksum");
  /* The real file cut just before its trailer and resealed. */
  uint8_t *c = copy_seed();
  seal(c, fx.len - 8);
  expect_rejected(c, fx.len - 4, NULL);
  free(c);
}

/* ---- hand-built hostile programs ----------------------------------------------------- */

/* A tiny policy: fields x (bool) and s (string), both optional; one flag
 * rule "f" with one obligation; constants: a list of ten ints and "x". */
typedef struct hostile_case {
  const char *name;
  instr code[8];
  uint32_t ncode;
  uint32_t oblig_nargs;
} hostile_case;

#define I(op, a, b, c) INSTR_MAKE(BC_##op, a, b, c)
static const hostile_case hostile_cases[] = {
    /* ITERNEXT's exit lands inside its own loop: once the list is
     * exhausted, the loop would run forever. */
    {"loop whose exit stays inside the loop",
     {I(LOADK, 2, 0, 0), I(ITER, 3, 2, 2), I(ITERNEXT, 4, 3, 0), I(LOOP, 0, 0, 1), I(HALT, 0, 0, 0)},
     5, 0},
    /* A rule's match inside a loop: the flag rule matches ten times. */
    {"rule match inside a loop",
     {I(LOADK, 2, 0, 0), I(ITER, 3, 2, 3), I(ITERNEXT, 4, 3, 2), I(RMATCH, 0, 0, 0), I(LOOP, 0, 0, 2),
      I(HALT, 0, 0, 0)},
     6, 0},
    {"rule match repeated",
     {I(RMATCH, 0, 0, 0), I(RMATCH, 0, 0, 0), I(RMATCH, 0, 0, 0), I(HALT, 0, 0, 0)}, 4, 0},
    {"obligation repeated",
     {I(OBLIG, 0, 0, 0), I(OBLIG, 0, 0, 0), I(OBLIG, 0, 0, 0), I(HALT, 0, 0, 0)}, 4, 0},
    /* r2 is written only when x is true, then read whatever x is: in the
     * next evaluation it still points into memory reused since. */
    {"register read before it is written",
     {I(JFALSE, 0, 0, 1), I(LIST, 2, 1, 1), I(ADD, 3, 1, 1), I(IN, 4, 1, 2), I(OBLIG, 2, 0, 0),
      I(HALT, 0, 0, 0)},
     6, 1},
    /* An iterator left over from the previous evaluation. */
    {"iterator used before its ITER",
     {I(JFALSE, 0, 0, 2), I(LIST, 2, 1, 2), I(ITER, 3, 2, 0), I(ADD, 5, 1, 1), I(ITERNEXT, 4, 3, 1),
      I(OBLIG, 4, 0, 0), I(HALT, 0, 0, 0)},
     7, 1},
    /* An iterator copied into an ordinary register, compared and shown. */
    {"iterator used as a value",
     {I(LOADK, 2, 0, 0), I(ITER, 3, 2, 0), I(MOVE, 4, 3, 0), I(EQ, 5, 4, 3), I(LIST, 5, 3, 1),
      I(OBLIG, 4, 0, 0), I(HALT, 0, 0, 0)},
     7, 1},
};
#undef I

static uint8_t *build_hostile(const hostile_case *hc, uint8_t kind, size_t *len) {
  static rtype t_bool = {CV_BOOL, NULL, NULL}, t_string = {CV_STRING, NULL, NULL};
  prog_field fields[2];
  memset(fields, 0, sizeof fields);
  fields[0].path = "x";
  fields[0].type = &t_bool;
  fields[0].optional = 1;
  fields[1].path = "s";
  fields[1].type = &t_string;
  fields[1].optional = 1;
  value items[10];
  for (int i = 0; i < 10; i++) items[i] = cv_int(i);
  value consts[2] = {cv_list(items, 10), cv_string("x", 1)};
  prog_rule rules[1] = {{"f", NULL, RE_FLAG, PROG_NONE, PROG_NONE, PROG_NONE}};
  prog_oblig obligs[1] = {{0, "log", hc->oblig_nargs}};
  uint32_t blocks[2] = {0, hc->ncode};
  clause_program p;
  memset(&p, 0, sizeof p);
  p.kind = kind;
  p.name = "hostile";
  p.version = "";
  p.nfields = 2;
  p.fields = fields;
  p.clock_field = PROG_NONE;
  p.now_reg = PROG_NONE;
  p.nregs = 6;
  p.nconsts = 2;
  p.consts = consts;
  if (kind == PROG_POLICY) {
    p.nrules = 1;
    p.rules = rules;
    p.nobligs = 1;
    p.obligs = obligs;
  }
  p.nblocks = 1;
  p.block_start = blocks;
  p.ncode = hc->ncode;
  p.code = (instr *)hc->code;
  outbuf o;
  ob_init_grow(&o);
  assert_int_equal(clb_write(&p, &o), CLAUSE_OK);
  uint8_t *b = malloc(o.len);
  assert_non_null(b);
  memcpy(b, o.buf, o.len);
  *len = o.len;
  ob_free(&o);
  return b;
}

static void test_hostile_programs(void **state) {
  (void)state;
  watchdog_install();
  /* The second request's string is the bytes of a forged value (a string
   * at address 0x41414141414141): concatenated into the scratch space
   * where the first evaluation built a list, it shows whether a stale
   * register can lead the VM astray. */
  const char *req[] = {
      "{\"x\": true, \"s\": \"abcdefgh\"}",
      "{\"x\": false, \"s\": \"\\u0005\\u0000\\u0000\\u0000\\u0010\\u0000\\u0000\\u0000AAAAAAA\\u0000\"}",
      "{\"x\": true, \"s\": \"abcdefgh\"}",
  };
  size_t req_len[3];
  for (int i = 0; i < 3; i++) req_len[i] = strlen(req[i]);
  int failures = 0;
  for (size_t k = 0; k < sizeof hostile_cases / sizeof hostile_cases[0]; k++) {
    const hostile_case *hc = &hostile_cases[k];
    size_t len;
    uint8_t *b = build_hostile(hc, PROG_POLICY, &len);
    clause_error err;
    memset(&err, 0, sizeof err);
    clause_program *p = clause_load(b, len, NULL, &err);
    free(b);
    if (!p) {
      assert_true(err.message[0] != '\0');
      print_message("  %s: rejected: %s\n", hc->name, err.message);
      continue;
    }
    /* It loaded: run it in a child process, so that a crash or a heap
     * overrun is reported as this case's failure and the others still run. */
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      /* cmocka's handlers would resume the test run in the child. */
      const int fatal[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
      for (size_t f = 0; f < sizeof fatal / sizeof fatal[0]; f++) signal(fatal[f], SIG_DFL);
      run_result res = run_program(p, req, req_len, 3);
      if (res.problem) print_message("  %s: LOADED and did not run safely: %s\n", hc->name, res.problem);
      fflush(NULL);
      _exit(res.problem ? 1 : 0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    clause_program_free(p);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      print_message("  %s: loaded and ran safely\n", hc->name);
    } else {
      if (WIFSIGNALED(status))
        print_message("  %s: LOADED and crashed the VM (signal %d)\n", hc->name, WTERMSIG(status));
      else if (WEXITSTATUS(status) != 1)
        print_message("  %s: LOADED and the run failed (exit %d; see the sanitizer report above)\n",
                      hc->name, WEXITSTATUS(status));
      failures++;
    }
  }
  if (failures) fail_msg("%d hostile programs passed the verifier and misbehaved", failures);
}

/* Fills the stack below the caller with 0x7f bytes, so that a callee that
 * reads its own uninitialised locals is likely to read them. */
static __attribute__((noinline)) void paint_stack(void) {
  volatile unsigned char area[16384];
  for (size_t i = 0; i < sizeof area; i++) area[i] = 0x7f;
}

/* A well-formed expression program (the kind `clause expr` builds) handed
 * to clause_load: it has no rules to decide with, so it must either be
 * refused or fail cleanly, with a message, wherever it is used. */
static void test_expression_program(void **state) {
  (void)state;
  static const hostile_case expr = {"expression", {INSTR_MAKE(BC_LOADK, 2, 1, 0), INSTR_MAKE(BC_RET, 2, 0, 0)}, 2, 0};
  size_t len;
  uint8_t *b = build_hostile(&expr, PROG_EXPR, &len);
  clause_error err;
  memset(&err, 0, sizeof err);
  clause_program *p = clause_load(b, len, NULL, &err);
  free(b);
  if (!p) {
    assert_true(err.message[0] != '\0');
    return;
  }
  clause_vm *vm = clause_vm_new(p);
  assert_non_null(vm);
  memset(&err, 0, sizeof err);
  paint_stack(); /* a message made from uninitialised stack shows as 0x7f */
  int rc = clause_vm_set_json(vm, "{\"x\": true}", 11, &err);
  if (rc != CLAUSE_OK) {
    if (!err.message[0] || (unsigned char)err.message[0] == 0x7f)
      fail_msg("clause_vm_set_json failed (%d) without a proper message", rc);
  }
  clause_decision d;
  rc = clause_vm_eval(vm, &d);
  assert_true(rc == CLAUSE_OK || rc == CLAUSE_ERR_ARG);
  clause_vm_free(vm);
  clause_program_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip),
      cmocka_unit_test(test_bad_magic),
      cmocka_unit_test(test_wrong_version),
      cmocka_unit_test(test_bad_checksum),
      cmocka_unit_test(test_short_files),
      cmocka_unit_test(test_expression_program),
      cmocka_unit_test(test_mutants),
      cmocka_unit_test(test_extern_mutants),
      cmocka_unit_test(test_hostile_programs),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
