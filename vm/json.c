/*
 * json.c - the JSON reader and the schema binder (see json.h).
 *
 * Three walkers share one cursor and one set of scanners:
 *   skip_value  validates a value and builds nothing (unknown keys);
 *   parse_any   builds a value by CEL's JSON mapping (json_parse, `any`);
 *   bind_typed  converts a value to a schema type, or reports a mismatch
 *               after consuming it.
 * skip_value and parse_any keep their container stack in local arrays, so
 * nesting costs no C stack; bind_typed and bind_object recurse only as deep
 * as the schema's types and paths go, and the cursor's depth counter caps
 * everything at JSON_MAX_DEPTH.
 *
 * List and map items are collected on one value stack (malloc'd when it
 * outgrows the cursor's local array) and copied into the arena when their
 * container closes, so a container costs one arena allocation.
 */
#include "json.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../include/clause.h"
#include "cel.h"

/* bind_typed's result when the value was well-formed but of another type. */
#define JB_MISMATCH 1

/* ---- the cursor ------------------------------------------------------------------- */

typedef struct jcur {
  const char *p, *end, *start;
  arena *a;
  json_error *err;
  int depth;          /* containers open now */
  value *vs;          /* list items / map keys and values being collected */
  uint32_t vtop, vcap;
  value vs_local[32];
} jcur;

static void jcur_init(jcur *c, const char *s, size_t n, arena *a, json_error *err) {
  c->p = c->start = s;
  c->end = s + n;
  c->a = a;
  c->err = err;
  c->depth = 0;
  c->vs = c->vs_local;
  c->vtop = 0;
  c->vcap = sizeof c->vs_local / sizeof c->vs_local[0];
  if (err) {
    err->offset = 0;
    err->line = err->column = 0;
    err->message[0] = '\0';
  }
}

static void jcur_done(jcur *c) {
  if (c->vs != c->vs_local) free(c->vs);
}

static int vpush(jcur *c, value v) {
  if (c->vtop == c->vcap) {
    if (c->vcap > UINT32_MAX / 2) return CLAUSE_ERR_NOMEM;
    uint32_t cap = c->vcap * 2;
    value *nv;
    if (c->vs == c->vs_local) {
      nv = malloc((size_t)cap * sizeof *nv);
      if (nv) memcpy(nv, c->vs, (size_t)c->vtop * sizeof *nv);
    } else {
      nv = realloc(c->vs, (size_t)cap * sizeof *nv);
    }
    if (!nv) return CLAUSE_ERR_NOMEM;
    c->vs = nv;
    c->vcap = cap;
  }
  c->vs[c->vtop++] = v;
  return CLAUSE_OK;
}

/* ---- character classes ----------------------------------------------------------- */

static inline bool is_ws(unsigned char ch) {
  return ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t';
}

static inline bool is_digit(unsigned char ch) { return ch >= '0' && ch <= '9'; }

static inline void skip_ws(jcur *c) {
  const char *p = c->p, *e = c->end;
  while (p < e && is_ws((unsigned char)*p)) p++;
  c->p = p;
}

/* Length of the UTF-8 sequence a lead byte starts, 0 for a byte that
 * cannot start one (cel_utf8_valid checks the rest). */
static inline size_t utf8_lead_len(unsigned char ch) {
  if (ch < 0x80) return 1;
  if (ch >= 0xc2 && ch <= 0xdf) return 2;
  if (ch >= 0xe0 && ch <= 0xef) return 3;
  if (ch >= 0xf0 && ch <= 0xf4) return 4;
  return 0;
}

/* Whether the bytes at p start a valid UTF-8 sequence. */
static bool utf8_seq_ok(const char *p, const char *e) {
  size_t len = utf8_lead_len((unsigned char)*p);
  return len && (size_t)(e - p) >= len && cel_utf8_valid(p, len);
}

/* ---- errors ------------------------------------------------------------------------ */

/* Records an error at `at` and returns CLAUSE_ERR_JSON. An error at the
 * end of the text is always "unexpected end of input" (callers that can only
 * fail there pass ""), and one on a byte that breaks UTF-8 "invalid UTF-8". */
static int jfail(jcur *c, const char *at, const char *msg) {
  if (at >= c->end) {
    at = c->end;
    msg = "unexpected end of input";
  } else if ((unsigned char)*at >= 0x80 && !utf8_seq_ok(at, c->end)) {
    msg = "invalid UTF-8";
  }
  json_error *err = c->err;
  if (!err) return CLAUSE_ERR_JSON;
  const char *line_start = c->start, *nl;
  int line = 1;
  while ((nl = memchr(line_start, '\n', (size_t)(at - line_start))) != NULL) {
    if (line < INT_MAX) line++;
    line_start = nl + 1;
  }
  size_t column = cel_utf8_count(line_start, (size_t)(at - line_start)) + 1;
  err->offset = (size_t)(at - c->start);
  err->line = line;
  err->column = column < INT_MAX ? (int)column : INT_MAX;
  snprintf(err->message, sizeof err->message, "%s", msg);
  return CLAUSE_ERR_JSON;
}

static int fail_depth(jcur *c, const char *at) {
  char msg[64];
  snprintf(msg, sizeof msg, "nesting too deep (more than %d levels)", JSON_MAX_DEPTH);
  return jfail(c, at, msg);
}

/* ---- strings ----------------------------------------------------------------------- */

typedef struct jstr {
  const char *s; /* raw text between the quotes */
  size_t n;
  bool esc;      /* holds backslash escapes */
} jstr;

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Non-zero when any of 8 bytes is '"', '\\', a control or non-ASCII. */
static inline uint64_t swar_special(uint64_t x) {
  uint64_t q = x ^ (ONES * '"'), b = x ^ (ONES * '\\');
  return (((q - ONES) & ~q) | ((b - ONES) & ~b) | ((x - ONES * 0x20) & ~x) | x) & HIGHS;
}

/* Bytes that end a run of plain string text: '"', '\\', controls, non-ASCII. */
static const uint8_t str_stop[256] = {
    [0 ... 0x1f] = 1, ['"'] = 1, ['\\'] = 1, [0x80 ... 0xff] = 1};

static inline int hexval(unsigned char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  ch |= 0x20;
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  return -1;
}

/* Reads the 4 hex digits after "\u" at p (p points at the backslash). */
static int read_u_escape(jcur *c, const char *p, uint32_t *cp) {
  uint32_t v = 0;
  for (int k = 2; k < 6; k++) {
    if (p + k >= c->end) return jfail(c, c->end, "");
    int h = hexval((unsigned char)p[k]);
    if (h < 0) return jfail(c, p, "invalid \\u escape: expected 4 hex digits");
    v = v << 4 | (uint32_t)h;
  }
  *cp = v;
  return CLAUSE_OK;
}

/* Checks the escape at p (a backslash); returns its length via *len. */
static int check_escape(jcur *c, const char *p, size_t *len) {
  if (p + 1 >= c->end) return jfail(c, c->end, "");
  switch (p[1]) {
  case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
    *len = 2;
    return CLAUSE_OK;
  case 'u': {
    uint32_t cp = 0, lo = 0;
    int r = read_u_escape(c, p, &cp);
    if (r) return r;
    if (cp >= 0xdc00 && cp <= 0xdfff)
      return jfail(c, p, "invalid \\u escape: lone low surrogate");
    if (cp < 0xd800 || cp > 0xdbff) {
      *len = 6;
      return CLAUSE_OK;
    }
    /* A high surrogate must be followed by a \u escape of a low one. */
    const char *e = c->end;
    if (p + 6 >= e || (p[6] == '\\' && p + 7 >= e)) return jfail(c, e, "");
    if (p[6] != '\\' || p[7] != 'u')
      return jfail(c, p, "invalid \\u escape: high surrogate without a low surrogate");
    if ((r = read_u_escape(c, p + 6, &lo))) return r;
    if (lo < 0xdc00 || lo > 0xdfff)
      return jfail(c, p, "invalid \\u escape: high surrogate without a low surrogate");
    *len = 12;
    return CLAUSE_OK;
  }
  default:
    return jfail(c, p, "invalid escape");
  }
}

/* scan_string's general loop, from p (a special byte or the 8-byte tail). */
static int scan_string_slow(jcur *c, jstr *out, const char *s, const char *p) {
  const char *e = c->end;
  bool esc = false;
  goto tail;
  for (;;) {
    /* 8 bytes at a time; the lowest flagged byte is the first special one
     * (the borrows that can flag a later byte never reach an earlier one). */
    while (e - p >= 8) {
      uint64_t x;
      memcpy(&x, p, 8);
      uint64_t special = swar_special(x);
      if (special) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        p += __builtin_ctzll(special) / 8;
#else
        while (!str_stop[(unsigned char)*p]) p++;
#endif
        goto found;
      }
      p += 8;
    }
  tail:
    while (p < e && !str_stop[(unsigned char)*p]) p++;
  found:
    if (p >= e) return jfail(c, e, "");
    unsigned char ch = (unsigned char)*p;
    if (ch == '"') break;
    if (ch == '\\') {
      size_t len = 0;
      int r = check_escape(c, p, &len);
      if (r) return r;
      esc = true;
      p += len;
      continue;
    }
    if (ch < 0x20) return jfail(c, p, "unescaped control character in a string");
    /* A run of non-ASCII bytes: valid UTF-8 sequences never cross its ends. */
    const char *r = p;
    while (r < e && (unsigned char)*r >= 0x80) r++;
    if (!cel_utf8_valid(p, (size_t)(r - p))) {
      while (utf8_seq_ok(p, r)) p += utf8_lead_len((unsigned char)*p);
      return jfail(c, p, "invalid UTF-8");
    }
    p = r;
  }
  out->s = s;
  out->n = (size_t)(p - s);
  out->esc = esc;
  if (out->n >= UINT32_MAX) return jfail(c, s - 1, "string too long");
  c->p = p + 1;
  return CLAUSE_OK;
}

/* Validates the string at c->p (an opening quote) and moves past it. The
 * common case, plain ASCII ending within a few words, stays inline. */
static inline __attribute__((always_inline)) int scan_string(jcur *c, jstr *out) {
  const char *s = c->p + 1, *p = s, *e = c->end;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  while (e - p >= 8) {
    uint64_t x;
    memcpy(&x, p, 8);
    uint64_t special = swar_special(x);
    if (special) {
      p += __builtin_ctzll(special) / 8;
      if (*p != '"' || (size_t)(p - s) >= UINT32_MAX) break;
      out->s = s;
      out->n = (size_t)(p - s);
      out->esc = false;
      c->p = p + 1;
      return CLAUSE_OK;
    }
    p += 8;
  }
#endif
  return scan_string_slow(c, out, s, p);
}

static size_t utf8_put(char *o, uint32_t cp) {
  if (cp < 0x80) {
    o[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (char)(0xc0 | cp >> 6);
    o[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (char)(0xe0 | cp >> 12);
    o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
    o[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  o[0] = (char)(0xf0 | cp >> 18);
  o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
  o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
  o[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

static uint32_t hex4(const char *p) {
  return (uint32_t)(hexval((unsigned char)p[0]) << 12 | hexval((unsigned char)p[1]) << 8 |
                    hexval((unsigned char)p[2]) << 4 | hexval((unsigned char)p[3]));
}

/* Decodes a string scan_string validated into out (room for n bytes:
 * escapes never grow). Returns the decoded length. */
static size_t unescape(const char *s, size_t n, char *out) {
  const char *e = s + n;
  char *o = out;
  while (s < e) {
    const char *bs = memchr(s, '\\', (size_t)(e - s));
    if (!bs) {
      memcpy(o, s, (size_t)(e - s));
      o += e - s;
      break;
    }
    memcpy(o, s, (size_t)(bs - s));
    o += bs - s;
    s = bs + 2;
    switch (bs[1]) {
    case 'b': *o++ = '\b'; break;
    case 'f': *o++ = '\f'; break;
    case 'n': *o++ = '\n'; break;
    case 'r': *o++ = '\r'; break;
    case 't': *o++ = '\t'; break;
    case 'u': {
      uint32_t cp = hex4(bs + 2);
      s = bs + 6;
      if (cp >= 0xd800 && cp <= 0xdbff) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (hex4(bs + 8) - 0xdc00);
        s = bs + 12;
      }
      o += utf8_put(o, cp);
      break;
    }
    default: *o++ = bs[1]; break; /* " \ / */
    }
  }
  return (size_t)(o - out);
}

/* The string's text in the arena, NUL-terminated. */
static int make_string(jcur *c, const jstr *js, value *out) {
  char *buf = arena_alloc(c->a, js->n + 1);
  if (!buf) return CLAUSE_ERR_NOMEM;
  size_t n = js->n;
  if (js->esc) n = unescape(js->s, js->n, buf);
  else memcpy(buf, js->s, n);
  buf[n] = '\0';
  *out = cv_string(buf, (uint32_t)n);
  return CLAUSE_OK;
}

/* The string's decoded text without copying when it has no escapes:
 * decoded into `local` when it fits, else into the arena. */
static int string_text(jcur *c, const jstr *js, char *local, size_t local_cap,
                       const char **s, size_t *n) {
  if (!js->esc) {
    *s = js->s;
    *n = js->n;
    return CLAUSE_OK;
  }
  char *buf = js->n <= local_cap ? local : arena_alloc(c->a, js->n);
  if (!buf) return CLAUSE_ERR_NOMEM;
  *n = unescape(js->s, js->n, buf);
  *s = buf;
  return CLAUSE_OK;
}

/* ---- literals ----------------------------------------------------------------------- */

static int scan_literal(jcur *c, value *out) {
  const char *p = c->p;
  size_t avail = (size_t)(c->end - p);
  static const char *const words[3] = {"true", "false", "null"};
  int w = *p == 't' ? 0 : *p == 'f' ? 1 : 2;
  size_t len = w == 1 ? 5 : 4;
  if (avail >= len && memcmp(p, words[w], len) == 0) {
    c->p = p + len;
    *out = w == 2 ? cv_null() : cv_bool(w == 0);
    return CLAUSE_OK;
  }
  size_t k = 0;
  while (k < avail && k < len && p[k] == words[w][k]) k++;
  if (k == avail) return jfail(c, c->end, "");
  return jfail(c, p, "invalid literal: expected true, false or null");
}

/* ---- numbers ------------------------------------------------------------------------ */

typedef struct jnum {
  const char *s;       /* the whole text: s[0..len) */
  size_t len;
  const char *ip;      /* integer digits */
  size_t ni;
  const char *fp;      /* fraction digits */
  size_t nf;
  int64_t exp;         /* the explicit exponent, saturated */
  bool neg;
} jnum;

#define EXP_SATURATE 1000000000000000LL

/* Reads JSON number syntax from p. On failure returns false with *bad at
 * the offending character and *msg saying why. */
static bool num_syntax(const char *p, const char *e, jnum *m, const char **bad,
                       const char **msg) {
  m->s = p;
  m->neg = false;
  m->nf = 0;
  m->fp = NULL;
  m->exp = 0;
  if (p < e && *p == '-') {
    m->neg = true;
    p++;
  }
  m->ip = p;
  if (p < e && *p == '0') {
    p++;
    if (p < e && is_digit((unsigned char)*p)) {
      *bad = p;
      *msg = "invalid number: leading zero";
      return false;
    }
  } else if (p < e && is_digit((unsigned char)*p)) {
    while (p < e && is_digit((unsigned char)*p)) p++;
  } else {
    *bad = p;
    *msg = "invalid number: expected a digit";
    return false;
  }
  m->ni = (size_t)(p - m->ip);
  if (p < e && *p == '.') {
    p++;
    m->fp = p;
    while (p < e && is_digit((unsigned char)*p)) p++;
    m->nf = (size_t)(p - m->fp);
    if (m->nf == 0) {
      *bad = p;
      *msg = "invalid number: expected a digit after '.'";
      return false;
    }
  }
  if (p < e && (*p == 'e' || *p == 'E')) {
    p++;
    bool eneg = false;
    if (p < e && (*p == '+' || *p == '-')) eneg = *p++ == '-';
    const char *ds = p;
    int64_t x = 0;
    while (p < e && is_digit((unsigned char)*p)) {
      if (x < EXP_SATURATE) x = x * 10 + (*p - '0');
      p++;
    }
    if (p == ds) {
      *bad = p;
      *msg = "invalid number: expected a digit in the exponent";
      return false;
    }
    m->exp = eneg ? -x : x;
  }
  m->len = (size_t)(p - m->s);
  return true;
}

static int scan_number(jcur *c, jnum *m) {
  const char *bad, *msg;
  if (!num_syntax(c->p, c->end, m, &bad, &msg)) return jfail(c, bad, msg);
  c->p = m->s + m->len;
  return CLAUSE_OK;
}

static inline char num_digit(const jnum *m, size_t k) {
  return k < m->ni ? m->ip[k] : m->fp[k - m->ni];
}

/* The significant digits [*lo, *hi) of the mantissa and the power of ten
 * that scales them; false when the number is zero. */
static bool num_significand(const jnum *m, size_t *lo, size_t *hi, int64_t *e10) {
  size_t total = m->ni + m->nf, l = 0, h = total;
  while (l < total && num_digit(m, l) == '0') l++;
  if (l == total) return false;
  while (num_digit(m, h - 1) == '0') h--;
  *lo = l;
  *hi = h;
  *e10 = m->exp - (int64_t)m->nf + (int64_t)(total - h);
  return true;
}

/* The number's magnitude when it is an integer below 2^64, exactly. */
static bool num_magnitude(const jnum *m, uint64_t *out) {
  if (m->nf == 0 && m->exp == 0 && m->ni <= 19) { /* the common case */
    uint64_t v = 0;
    for (size_t k = 0; k < m->ni; k++) v = v * 10 + (uint64_t)(m->ip[k] - '0');
    *out = v;
    return true;
  }
  size_t lo, hi;
  int64_t e10;
  if (!num_significand(m, &lo, &hi, &e10)) {
    *out = 0;
    return true;
  }
  if (e10 < 0 || e10 > 20 || (hi - lo) + (uint64_t)e10 > 20) return false;
  uint64_t v = 0;
  for (size_t k = lo; k < hi; k++) {
    uint64_t d = (uint64_t)(num_digit(m, k) - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  for (int64_t k = 0; k < e10; k++) {
    if (v > UINT64_MAX / 10) return false;
    v *= 10;
  }
  *out = v;
  return true;
}

static bool num_to_int(const jnum *m, int64_t *out) {
  uint64_t v;
  if (!num_magnitude(m, &v)) return false;
  if (m->neg) {
    if (v > (uint64_t)INT64_MAX + 1) return false;
    *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
  } else {
    if (v > (uint64_t)INT64_MAX) return false;
    *out = (int64_t)v;
  }
  return true;
}

static bool num_to_uint(const jnum *m, uint64_t *out) {
  uint64_t v;
  if (!num_magnitude(m, &v) || (m->neg && v != 0)) return false;
  *out = v;
  return true;
}

static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                        1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                        1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* The correctly rounded double: exact arithmetic when the significand fits
 * in 53 bits and the power of ten is exact (Clinger's fast path), else
 * strtod on the text rewritten as DIGITSeEXP: without a decimal point it
 * reads the same in every locale. */
static int num_to_double(const jnum *m, double *out) {
  size_t lo, hi;
  int64_t e10;
  if (!num_significand(m, &lo, &hi, &e10)) {
    *out = m->neg ? -0.0 : 0.0;
    return CLAUSE_OK;
  }
  if (hi - lo <= 19 && e10 >= -22 && e10 <= 22) {
    uint64_t w = 0;
    for (size_t k = lo; k < hi; k++) w = w * 10 + (uint64_t)(num_digit(m, k) - '0');
    if (w <= (1ULL << 53)) {
      double d = (double)w;
      d = e10 < 0 ? d / pow10_exact[-e10] : d * pow10_exact[e10];
      *out = m->neg ? -d : d;
      return CLAUSE_OK;
    }
  }
  char local[128];
  size_t need = (hi - lo) + 32;
  char *buf = need <= sizeof local ? local : malloc(need);
  if (!buf) return CLAUSE_ERR_NOMEM;
  char *o = buf;
  if (m->neg) *o++ = '-';
  for (size_t k = lo; k < hi; k++) *o++ = num_digit(m, k);
  snprintf(o, 24, "e%lld", (long long)e10);
  *out = strtod(buf, NULL);
  if (buf != local) free(buf);
  return CLAUSE_OK;
}

/* ---- skipping ------------------------------------------------------------------------- */

/* After '{' or ',' in an object: a key, then ':' (positions c->p at the value). */
static int skip_key(jcur *c, bool first) {
  skip_ws(c);
  if (c->p >= c->end || *c->p != '"')
    return jfail(c, c->p, first ? "expected a string key or '}'" : "expected a string key");
  jstr key;
  int r = scan_string(c, &key);
  if (r) return r;
  skip_ws(c);
  if (c->p >= c->end || *c->p != ':') return jfail(c, c->p, "expected ':' after an object key");
  c->p++;
  return CLAUSE_OK;
}

/* Validates one value and moves past it, building nothing. */
static int skip_value(jcur *c) {
  uint64_t is_obj[JSON_MAX_DEPTH / 64 + 1];
  int d = 0, r;
  value scratch;
  jstr js;
  jnum m;
next_value:
  skip_ws(c);
  if (c->p >= c->end) return jfail(c, c->end, "");
  switch (*c->p) {
  case '"':
    if ((r = scan_string(c, &js))) return r;
    break;
  case '{':
  case '[': {
    bool obj = *c->p == '{';
    if (c->depth >= JSON_MAX_DEPTH) return fail_depth(c, c->p);
    c->depth++;
    if (obj) is_obj[d / 64] |= 1ULL << (d % 64);
    else is_obj[d / 64] &= ~(1ULL << (d % 64));
    d++;
    c->p++;
    skip_ws(c);
    if (c->p < c->end && *c->p == (obj ? '}' : ']')) {
      c->p++;
      goto closed;
    }
    if (obj && (r = skip_key(c, true))) return r;
    goto next_value;
  }
  case 't':
  case 'f':
  case 'n':
    if ((r = scan_literal(c, &scratch))) return r;
    break;
  default:
    if (*c->p != '-' && !is_digit((unsigned char)*c->p)) return jfail(c, c->p, "expected a JSON value");
    if ((r = scan_number(c, &m))) return r;
    break;
  }
after_value:
  if (d == 0) return CLAUSE_OK;
  {
    bool obj = is_obj[(d - 1) / 64] >> ((d - 1) % 64) & 1;
    skip_ws(c);
    if (c->p < c->end && *c->p == ',') {
      c->p++;
      if (obj && (r = skip_key(c, false))) return r;
      goto next_value;
    }
    if (c->p < c->end && *c->p == (obj ? '}' : ']')) {
      c->p++;
      goto closed;
    }
    return jfail(c, c->p,
                 obj ? "expected ',' or '}' after an object member" : "expected ',' or ']' after an array element");
  }
closed:
  d--;
  c->depth--;
  goto after_value;
}

/* ---- building containers ---------------------------------------------------------------- */

/* Empty lists and maps point here rather than at NULL. */
static const value no_items[1];

static bool key_equal(const value *a, const value *b) {
  if (a->kind != b->kind) return false;
  switch (a->kind) {
  case CV_STRING: return a->n == b->n && memcmp(a->s, b->s, a->n) == 0;
  case CV_BOOL: return a->b == b->b;
  default: return a->u == b->u; /* int, uint */
  }
}

static uint64_t key_hash(const value *k) {
  uint64_t h = 1469598103934665603ULL ^ k->kind;
  if (k->kind == CV_STRING) {
    for (uint32_t i = 0; i < k->n; i++) h = (h ^ (unsigned char)k->s[i]) * 1099511628211ULL;
  } else {
    h = (h ^ (k->kind == CV_BOOL ? (uint64_t)k->b : k->u)) * 1099511628211ULL;
    h ^= h >> 29;
  }
  return h;
}

/* Drops repeated keys from kv[0..2*np): the last value wins, at the first
 * key's position. Returns the number of pairs kept, or -1 out of memory. */
static int64_t dedupe_pairs(value *kv, uint32_t np) {
  uint32_t kept = 0;
  if (np <= 16) {
    for (uint32_t i = 0; i < np; i++) {
      uint32_t j = 0;
      while (j < kept && !key_equal(&kv[2 * j], &kv[2 * i])) j++;
      if (j == kept) {
        kv[2 * kept] = kv[2 * i];
        kv[2 * kept + 1] = kv[2 * i + 1];
        kept++;
      } else {
        kv[2 * j + 1] = kv[2 * i + 1];
      }
    }
    return kept;
  }
  size_t size = 32;
  while (size < (size_t)np * 2) size *= 2;
  uint32_t *slot = calloc(size, sizeof *slot); /* kept pair index + 1, 0 = empty */
  if (!slot) return -1;
  for (uint32_t i = 0; i < np; i++) {
    size_t h = (size_t)key_hash(&kv[2 * i]) & (size - 1);
    while (slot[h] && !key_equal(&kv[2 * (slot[h] - 1)], &kv[2 * i])) h = (h + 1) & (size - 1);
    if (slot[h]) {
      kv[2 * (slot[h] - 1) + 1] = kv[2 * i + 1];
    } else {
      kv[2 * kept] = kv[2 * i];
      kv[2 * kept + 1] = kv[2 * i + 1];
      slot[h] = ++kept;
    }
  }
  free(slot);
  return kept;
}

/* Turns the values collected since `base` into a list or map in the arena. */
static int close_container(jcur *c, uint32_t base, bool obj, value *out) {
  uint32_t n = c->vtop - base;
  if (obj) {
    int64_t np = dedupe_pairs(c->vs + base, n / 2);
    if (np < 0) return CLAUSE_ERR_NOMEM;
    n = (uint32_t)np * 2;
  }
  const value *items = no_items;
  if (n) {
    value *copy = arena_alloc(c->a, (size_t)n * sizeof *copy);
    if (!copy) return CLAUSE_ERR_NOMEM;
    memcpy(copy, c->vs + base, (size_t)n * sizeof *copy);
    items = copy;
  }
  c->vtop = base;
  *out = obj ? cv_map(items, n / 2) : cv_list(items, n);
  return CLAUSE_OK;
}

/* ---- CEL's JSON mapping ------------------------------------------------------------------- */

/* After '{' or ',' in an object: a key pushed as a string, then ':'. */
static int parse_key(jcur *c, bool first) {
  skip_ws(c);
  if (c->p >= c->end || *c->p != '"')
    return jfail(c, c->p, first ? "expected a string key or '}'" : "expected a string key");
  jstr js;
  value k;
  int r;
  if ((r = scan_string(c, &js)) || (r = make_string(c, &js, &k)) || (r = vpush(c, k))) return r;
  skip_ws(c);
  if (c->p >= c->end || *c->p != ':') return jfail(c, c->p, "expected ':' after an object key");
  c->p++;
  return CLAUSE_OK;
}

static int parse_any(jcur *c, value *out) {
  struct {
    uint32_t base;
    bool obj;
  } fr[JSON_MAX_DEPTH];
  int d = 0, r;
  value v;
  jstr js;
  jnum m;
next_value:
  skip_ws(c);
  if (c->p >= c->end) return jfail(c, c->end, "");
  switch (*c->p) {
  case '"':
    if ((r = scan_string(c, &js)) || (r = make_string(c, &js, &v))) return r;
    break;
  case '{':
  case '[': {
    bool obj = *c->p == '{';
    if (c->depth >= JSON_MAX_DEPTH) return fail_depth(c, c->p);
    c->depth++;
    fr[d].base = c->vtop;
    fr[d].obj = obj;
    d++;
    c->p++;
    skip_ws(c);
    if (c->p < c->end && *c->p == (obj ? '}' : ']')) {
      c->p++;
      goto closed;
    }
    if (obj && (r = parse_key(c, true))) return r;
    goto next_value;
  }
  case 't':
  case 'f':
  case 'n':
    if ((r = scan_literal(c, &v))) return r;
    break;
  default: {
    if (*c->p != '-' && !is_digit((unsigned char)*c->p)) return jfail(c, c->p, "expected a JSON value");
    double dv;
    if ((r = scan_number(c, &m)) || (r = num_to_double(&m, &dv))) return r;
    v = cv_double(dv);
    break;
  }
  }
have_value:
  if (d == 0) {
    *out = v;
    return CLAUSE_OK;
  }
  if ((r = vpush(c, v))) return r;
  {
    bool obj = fr[d - 1].obj;
    skip_ws(c);
    if (c->p < c->end && *c->p == ',') {
      c->p++;
      if (obj && (r = parse_key(c, false))) return r;
      goto next_value;
    }
    if (c->p < c->end && *c->p == (obj ? '}' : ']')) {
      c->p++;
      goto closed;
    }
    return jfail(c, c->p,
                 obj ? "expected ',' or '}' after an object member" : "expected ',' or ']' after an array element");
  }
closed:
  d--;
  c->depth--;
  if ((r = close_container(c, fr[d].base, fr[d].obj, &v))) return r;
  goto have_value;
}

static int expect_end(jcur *c, const char *msg) {
  skip_ws(c);
  if (c->p < c->end) return jfail(c, c->p, msg);
  return CLAUSE_OK;
}

int json_parse(const char *s, size_t n, arena *a, value *out, json_error *err) {
  if ((!s && n) || !a || !out) return CLAUSE_ERR_ARG;
  jcur c;
  jcur_init(&c, s ? s : "", n, a, err);
  value v;
  int r = parse_any(&c, &v);
  if (!r) r = expect_end(&c, "unexpected characters after the JSON value");
  if (!r) *out = v;
  jcur_done(&c);
  return r;
}

/* ---- typed binding ----------------------------------------------------------------------- */

void rtype_format(outbuf *o, const rtype *t) {
  if (!t) {
    ob_puts(o, "any");
    return;
  }
  switch (t->kind) {
  case CV_LIST:
    ob_puts(o, "list(");
    rtype_format(o, t->elem);
    ob_putc(o, ')');
    return;
  case CV_MAP:
    ob_puts(o, "map(");
    rtype_format(o, t->key);
    ob_puts(o, ", ");
    rtype_format(o, t->elem);
    ob_putc(o, ')');
    return;
  case CV_TIMESTAMP: ob_puts(o, "timestamp"); return;
  case CV_DURATION: ob_puts(o, "duration"); return;
  case CV_NULL: ob_puts(o, "null"); return;
  default:
    if (t->kind == RT_ANY || t->kind >= CV_KIND_COUNT) ob_puts(o, "any");
    else ob_puts(o, cv_kind_name((cv_kind)t->kind));
    return;
  }
}

static const char *json_type_of(char first) {
  switch (first) {
  case '"': return "string";
  case '{': return "object";
  case '[': return "array";
  case 't': case 'f': return "boolean";
  case 'n': return "null";
  default: return "number";
  }
}

static void wrong_type_text(outbuf *o, const prog_field *f, char first) {
  ob_puts(o, "wrong type for field ");
  ob_puts(o, f->path ? f->path : "");
  ob_puts(o, ": expected ");
  rtype_format(o, f->type);
  ob_puts(o, ", got ");
  ob_puts(o, json_type_of(first));
}

static int wrong_type(arena *a, const prog_field *f, char first, value *out) {
  char local[256];
  outbuf o;
  ob_init_fixed(&o, local, sizeof local);
  wrong_type_text(&o, f, first);
  size_t len = o.len;
  char *msg = arena_alloc(a, len + 1);
  if (!msg) return CLAUSE_ERR_NOMEM;
  if (len < sizeof local) {
    memcpy(msg, local, len + 1);
  } else {
    ob_init_fixed(&o, msg, len + 1);
    wrong_type_text(&o, f, first);
    ob_cstr(&o);
  }
  *out = cv_static_error(msg, (uint32_t)len, CV_ERR_WRONG_TYPE);
  return CLAUSE_OK;
}

static const int8_t b64_value[256] = {
    ['A'] = 1,  ['B'] = 2,  ['C'] = 3,  ['D'] = 4,  ['E'] = 5,  ['F'] = 6,  ['G'] = 7,
    ['H'] = 8,  ['I'] = 9,  ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14,
    ['O'] = 15, ['P'] = 16, ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21,
    ['V'] = 22, ['W'] = 23, ['X'] = 24, ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28,
    ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35,
    ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42,
    ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48, ['w'] = 49,
    ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
    ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['+'] = 63,
    ['/'] = 64}; /* the digit's value + 1; 0 = not in the alphabet */

/* Standard base64, padding optional (but whole when present). Writes at
 * most n*3/4 bytes to out. */
static bool base64_decode(const char *s, size_t n, char *out, size_t *outn) {
  size_t full = n;
  if (n && s[n - 1] == '=') {
    n--;
    if (n && s[n - 1] == '=') n--;
    if (full % 4) return false;
  }
  if (n % 4 == 1) return false;
  char *o = out;
  uint32_t acc = 0;
  size_t k;
  for (k = 0; k < n; k++) {
    int v = b64_value[(unsigned char)s[k]];
    if (!v) return false;
    acc = acc << 6 | (uint32_t)(v - 1);
    if (k % 4 == 3) {
      *o++ = (char)(acc >> 16);
      *o++ = (char)(acc >> 8);
      *o++ = (char)acc;
      acc = 0;
    }
  }
  if (n % 4 == 2) {
    *o++ = (char)(acc >> 4);
  } else if (n % 4 == 3) {
    *o++ = (char)(acc >> 10);
    *o++ = (char)(acc >> 2);
  }
  *outn = (size_t)(o - out);
  return true;
}

static int bind_typed(jcur *c, const rtype *t, value *out);

static int bind_list(jcur *c, const rtype *elem, value *out) {
  if (c->depth >= JSON_MAX_DEPTH) return fail_depth(c, c->p);
  c->depth++;
  c->p++;
  uint32_t base = c->vtop;
  bool bad = false;
  int r;
  skip_ws(c);
  if (c->p < c->end && *c->p == ']') {
    c->p++;
  } else {
    for (;;) {
      if (bad) {
        if ((r = skip_value(c))) return r;
      } else {
        value v;
        skip_ws(c);
        r = bind_typed(c, elem, &v);
        if (r < 0) return r;
        if (r == JB_MISMATCH) {
          bad = true;
          c->vtop = base;
        } else if ((r = vpush(c, v))) {
          return r;
        }
      }
      skip_ws(c);
      if (c->p < c->end && *c->p == ',') {
        c->p++;
        continue;
      }
      if (c->p < c->end && *c->p == ']') {
        c->p++;
        break;
      }
      return jfail(c, c->p, "expected ',' or ']' after an array element");
    }
  }
  c->depth--;
  if (bad) return JB_MISMATCH;
  return close_container(c, base, false, out);
}

/* A map key from its (decoded) text, converted to the key type. */
static int map_key(jcur *c, const rtype *kt, const jstr *js, value *out) {
  uint8_t kind = kt ? kt->kind : RT_ANY;
  if (kind != CV_INT && kind != CV_UINT && kind != CV_BOOL) return make_string(c, js, out);
  char local[64];
  const char *s;
  size_t n;
  int r = string_text(c, js, local, sizeof local, &s, &n);
  if (r) return r;
  if (kind == CV_BOOL) {
    if (n == 4 && memcmp(s, "true", 4) == 0) *out = cv_bool(true);
    else if (n == 5 && memcmp(s, "false", 5) == 0) *out = cv_bool(false);
    else return JB_MISMATCH;
    return CLAUSE_OK;
  }
  jnum m;
  const char *bad, *msg;
  if (!num_syntax(s, s + n, &m, &bad, &msg) || m.len != n) return JB_MISMATCH;
  if (kind == CV_INT) {
    int64_t i;
    if (!num_to_int(&m, &i)) return JB_MISMATCH;
    *out = cv_int(i);
  } else {
    uint64_t u;
    if (!num_to_uint(&m, &u)) return JB_MISMATCH;
    *out = cv_uint(u);
  }
  return CLAUSE_OK;
}

static int bind_map(jcur *c, const rtype *kt, const rtype *vt, value *out) {
  if (c->depth >= JSON_MAX_DEPTH) return fail_depth(c, c->p);
  c->depth++;
  c->p++;
  uint32_t base = c->vtop;
  bool bad = false, first = true;
  int r;
  skip_ws(c);
  if (c->p < c->end && *c->p == '}') {
    c->p++;
  } else {
    for (;;) {
      skip_ws(c);
      if (c->p >= c->end || *c->p != '"')
        return jfail(c, c->p, first ? "expected a string key or '}'" : "expected a string key");
      first = false;
      jstr js;
      value k, v;
      if ((r = scan_string(c, &js))) return r;
      if (!bad) {
        r = map_key(c, kt, &js, &k);
        if (r < 0) return r;
        if (r == JB_MISMATCH) bad = true;
      }
      skip_ws(c);
      if (c->p >= c->end || *c->p != ':') return jfail(c, c->p, "expected ':' after an object key");
      c->p++;
      skip_ws(c);
      if (bad) {
        if ((r = skip_value(c))) return r;
      } else {
        r = bind_typed(c, vt, &v);
        if (r < 0) return r;
        if (r == JB_MISMATCH) bad = true;
        else if ((r = vpush(c, k)) || (r = vpush(c, v))) return r;
      }
      if (bad) c->vtop = base;
      skip_ws(c);
      if (c->p < c->end && *c->p == ',') {
        c->p++;
        continue;
      }
      if (c->p < c->end && *c->p == '}') {
        c->p++;
        break;
      }
      return jfail(c, c->p, "expected ',' or '}' after an object member");
    }
  }
  c->depth--;
  if (bad) return JB_MISMATCH;
  return close_container(c, base, true, out);
}

/* Converts the value at c->p (after whitespace) to type t. Always consumes
 * one whole value; returns CLAUSE_OK, JB_MISMATCH or an error. */
static int bind_typed(jcur *c, const rtype *t, value *out) {
  uint8_t kind = t ? t->kind : RT_ANY;
  if (kind == RT_ANY) return parse_any(c, out);
  if (c->p >= c->end) return jfail(c, c->end, "");
  char first = *c->p;
  int r;
  switch (kind) {
  case CV_BOOL:
    if (first == 't' || first == 'f') return scan_literal(c, out);
    break;
  case CV_INT:
  case CV_UINT:
  case CV_DOUBLE:
    if (first == '-' || is_digit((unsigned char)first)) {
      jnum m;
      if ((r = scan_number(c, &m))) return r;
      if (kind == CV_INT) {
        int64_t i;
        if (!num_to_int(&m, &i)) return JB_MISMATCH;
        *out = cv_int(i);
      } else if (kind == CV_UINT) {
        uint64_t u;
        if (!num_to_uint(&m, &u)) return JB_MISMATCH;
        *out = cv_uint(u);
      } else {
        double d;
        if ((r = num_to_double(&m, &d))) return r;
        *out = cv_double(d);
      }
      return CLAUSE_OK;
    }
    break;
  case CV_STRING:
  case CV_BYTES:
  case CV_TIMESTAMP:
  case CV_DURATION:
    if (first == '"') {
      jstr js;
      if ((r = scan_string(c, &js))) return r;
      if (kind == CV_STRING) return make_string(c, &js, out);
      char local[64];
      const char *s;
      size_t n;
      if ((r = string_text(c, &js, local, sizeof local, &s, &n))) return r;
      if (kind == CV_BYTES) {
        char *buf = arena_alloc(c->a, n / 4 * 3 + 3);
        size_t len;
        if (!buf) return CLAUSE_ERR_NOMEM;
        if (!base64_decode(s, n, buf, &len)) return JB_MISMATCH;
        buf[len] = '\0';
        *out = cv_bytes(buf, (uint32_t)len);
      } else if (kind == CV_TIMESTAMP) {
        int64_t secs;
        uint32_t nanos;
        if (!cel_parse_timestamp(s, n, &secs, &nanos)) return JB_MISMATCH;
        *out = cv_timestamp(secs, nanos);
      } else {
        int64_t ns;
        if (!cel_parse_duration(s, n, &ns)) return JB_MISMATCH;
        *out = cv_duration(ns);
      }
      return CLAUSE_OK;
    }
    break;
  case CV_LIST:
    if (first == '[') return bind_list(c, t->elem, out);
    break;
  case CV_MAP:
    if (first == '{') return bind_map(c, t->key, t->elem, out);
    break;
  default:
    break;
  }
  if ((r = skip_value(c))) return r;
  return JB_MISMATCH;
}

/* A field's value at c->p: null is absent, a mismatch the WRONG_TYPE error. */
static int bind_field_value(jcur *c, const prog_field *f, value *out) {
  if (c->p >= c->end) return jfail(c, c->end, "");
  char first = *c->p;
  int r;
  if (first == 'n') {
    if ((r = scan_literal(c, out))) return r;
    *out = f->absent;
    return CLAUSE_OK;
  }
  r = bind_typed(c, f->type, out);
  if (r == JB_MISMATCH) return wrong_type(c->a, f, first, out);
  return r;
}

int json_bind_field(const prog_field *f, const char *s, size_t n, arena *a, value *slot,
                    json_error *err) {
  if (!f || (!s && n) || !a || !slot) return CLAUSE_ERR_ARG;
  jcur c;
  jcur_init(&c, s ? s : "", n, a, err);
  value v;
  skip_ws(&c);
  int r = bind_field_value(&c, f, &v);
  if (!r) r = expect_end(&c, "unexpected characters after the JSON value");
  if (!r) *slot = v;
  jcur_done(&c);
  return r;
}

/* ---- the binder -------------------------------------------------------------------------- */

enum { ENT_FIELD, ENT_NODE, ENT_EXPECT };

typedef struct bentry {
  uint64_t head;   /* the key's first 8 bytes, zero-padded (key_head) */
  const char *key; /* a path segment (the field's own string) */
  uint32_t len;
  uint32_t kind;   /* ENT_* */
  uint32_t index;  /* field index (ENT_FIELD) or node index (ENT_NODE) */
} bentry;

/* One object level: the keys leading to fields, sorted by (length, bytes),
 * and every field beneath it (reset to absent when its key repeats). */
typedef struct bnode {
  bentry *ents;
  uint32_t nents, cap_ents;
  uint32_t maxlen;
  uint32_t *fields;
  uint32_t nfields, cap_fields;
} bnode;

struct json_binder {
  const prog_field *fields;
  uint32_t nfields;
  bnode *nodes; /* nodes[0]: the request object */
  uint32_t nnodes, cap_nodes;
};

static const char expect_key[] = "@expect";

static bool grow_array(void **arr, uint32_t *cap, uint32_t need, size_t elem) {
  if (need <= *cap) return true;
  uint32_t ncap = *cap ? *cap * 2 : 4;
  while (ncap < need) ncap *= 2;
  void *p = realloc(*arr, (size_t)ncap * elem);
  if (!p) return false;
  *arr = p;
  *cap = ncap;
  return true;
}

/* The first min(n, 8) bytes of k, zero-padded: most keys are compared in
 * one step. `avail` bytes may be read from k. */
static inline uint64_t key_head(const char *k, size_t n, size_t avail) {
  uint64_t h = 0;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  if (avail >= 8) {
    memcpy(&h, k, 8);
    return n >= 8 ? h : h & ((1ULL << (8 * n)) - 1);
  }
#endif
  (void)avail;
  memcpy(&h, k, n < 8 ? n : 8);
  return h;
}

static inline const bentry *node_find(const bnode *nd, const char *k, size_t n, size_t avail) {
  if (n > nd->maxlen) return NULL;
  if (nd->nents <= 8) {
    uint64_t h = key_head(k, n, avail);
    for (uint32_t i = 0; i < nd->nents; i++) {
      const bentry *e = &nd->ents[i];
      if (e->head == h && e->len == n && (n <= 8 || memcmp(e->key + 8, k + 8, n - 8) == 0))
        return e;
    }
    return NULL;
  }
  uint32_t lo = 0, hi = nd->nents;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    const bentry *e = &nd->ents[mid];
    int cmp = e->len != n ? (e->len < n ? -1 : 1) : memcmp(e->key, k, n);
    if (cmp == 0) return e;
    if (cmp < 0) lo = mid + 1;
    else hi = mid;
  }
  return NULL;
}

static int entry_cmp(const void *x, const void *y) {
  const bentry *a = x, *b = y;
  if (a->len != b->len) return a->len < b->len ? -1 : 1;
  return memcmp(a->key, b->key, a->len);
}

static bool node_add(bnode *nd, const char *key, uint32_t len, uint32_t kind, uint32_t index) {
  if (!grow_array((void **)&nd->ents, &nd->cap_ents, nd->nents + 1, sizeof *nd->ents)) return false;
  nd->ents[nd->nents++] = (bentry){key_head(key, len, len), key, len, kind, index};
  if (len > nd->maxlen) nd->maxlen = len;
  return true;
}

/* Linear lookup while building (entries are sorted only at the end). */
static bentry *node_find_unsorted(bnode *nd, const char *k, size_t n) {
  for (uint32_t i = 0; i < nd->nents; i++)
    if (nd->ents[i].len == n && memcmp(nd->ents[i].key, k, n) == 0) return &nd->ents[i];
  return NULL;
}

void json_binder_free(json_binder *b) {
  if (!b) return;
  for (uint32_t i = 0; i < b->nnodes; i++) {
    free(b->nodes[i].ents);
    free(b->nodes[i].fields);
  }
  free(b->nodes);
  free(b);
}

json_binder *json_binder_new(const prog_field *fields, uint32_t nfields) {
  if (!fields && nfields) return NULL;
  json_binder *b = calloc(1, sizeof *b);
  if (!b) return NULL;
  b->fields = fields;
  b->nfields = nfields;
  if (!grow_array((void **)&b->nodes, &b->cap_nodes, 1, sizeof *b->nodes)) goto fail;
  memset(&b->nodes[0], 0, sizeof b->nodes[0]);
  b->nnodes = 1;
  for (uint32_t i = 0; i < nfields; i++) {
    const prog_field *f = &fields[i];
    if (!f->segs || f->nsegs == 0) goto fail;
    uint32_t node = 0;
    for (uint32_t k = 0; k < f->nsegs; k++) {
      const char *seg = f->segs[k];
      size_t len = seg ? strlen(seg) : 0;
      if (len == 0 || len >= UINT32_MAX) goto fail;
      bnode *nd = &b->nodes[node];
      if (!grow_array((void **)&nd->fields, &nd->cap_fields, nd->nfields + 1, sizeof *nd->fields))
        goto fail;
      nd->fields[nd->nfields++] = i;
      bentry *e = node_find_unsorted(nd, seg, len);
      if (k + 1 == f->nsegs) {
        if (e || !node_add(nd, seg, (uint32_t)len, ENT_FIELD, i)) goto fail;
        break;
      }
      if (e) {
        if (e->kind != ENT_NODE) goto fail; /* a field is a prefix of this one */
        node = e->index;
        continue;
      }
      if (!grow_array((void **)&b->nodes, &b->cap_nodes, b->nnodes + 1, sizeof *b->nodes)) goto fail;
      uint32_t child = b->nnodes++;
      memset(&b->nodes[child], 0, sizeof b->nodes[child]);
      if (!node_add(&b->nodes[node], seg, (uint32_t)len, ENT_NODE, child)) goto fail;
      node = child;
    }
  }
  if (!node_find_unsorted(&b->nodes[0], expect_key, sizeof expect_key - 1) &&
      !node_add(&b->nodes[0], expect_key, sizeof expect_key - 1, ENT_EXPECT, 0))
    goto fail;
  for (uint32_t i = 0; i < b->nnodes; i++)
    if (b->nodes[i].nents > 1)
      qsort(b->nodes[i].ents, b->nodes[i].nents, sizeof *b->nodes[i].ents, entry_cmp);
  return b;
fail:
  json_binder_free(b);
  return NULL;
}

/* Finds a key of the object being bound, decoding it first if it holds
 * escapes. */
static int lookup_key(jcur *c, const bnode *nd, const jstr *js, const bentry **out) {
  if (!js->esc) {
    *out = node_find(nd, js->s, js->n, (size_t)(c->end - js->s));
    return CLAUSE_OK;
  }
  char local[256];
  const char *s;
  size_t n;
  int r = string_text(c, js, local, sizeof local, &s, &n);
  if (r) return r;
  *out = node_find(nd, s, n, n);
  return CLAUSE_OK;
}

static int bind_expect(jcur *c, json_meta *meta) {
  int r;
  if (*c->p == '"') {
    jstr js;
    value v;
    if ((r = scan_string(c, &js)) || (r = make_string(c, &js, &v))) return r;
    meta->expect = v.s;
    meta->expect_len = v.n;
    meta->has_expect = true;
    meta->expect_invalid = false;
    return CLAUSE_OK;
  }
  bool is_null = *c->p == 'n';
  if ((r = skip_value(c))) return r;
  meta->expect = NULL;
  meta->expect_len = 0;
  meta->has_expect = false;
  meta->expect_invalid = !is_null;
  return CLAUSE_OK;
}

/* Binds the object at c->p against node `ni`. */
static int bind_object(jcur *c, const json_binder *b, uint32_t ni, value *slots, json_meta *meta) {
  const bnode *nd = &b->nodes[ni];
  if (c->depth >= JSON_MAX_DEPTH) return fail_depth(c, c->p);
  c->depth++;
  c->p++;
  skip_ws(c);
  if (c->p < c->end && *c->p == '}') {
    c->p++;
    c->depth--;
    return CLAUSE_OK;
  }
  bool first = true;
  int r;
  for (;;) {
    if (c->p >= c->end || *c->p != '"')
      return jfail(c, c->p, first ? "expected a string key or '}'" : "expected a string key");
    first = false;
    jstr key;
    const bentry *e;
    if ((r = scan_string(c, &key)) || (r = lookup_key(c, nd, &key, &e))) return r;
    skip_ws(c);
    if (c->p >= c->end || *c->p != ':') return jfail(c, c->p, "expected ':' after an object key");
    c->p++;
    skip_ws(c);
    if (c->p >= c->end) return jfail(c, c->end, "");
    if (!e) {
      r = skip_value(c);
    } else if (e->kind == ENT_FIELD) {
      r = bind_field_value(c, &b->fields[e->index], &slots[e->index]);
    } else if (e->kind == ENT_NODE) {
      /* The last occurrence of a key wins as a whole. */
      const bnode *child = &b->nodes[e->index];
      for (uint32_t k = 0; k < child->nfields; k++)
        slots[child->fields[k]] = b->fields[child->fields[k]].absent;
      r = *c->p == '{' ? bind_object(c, b, e->index, slots, meta) : skip_value(c);
    } else if (meta) {
      r = bind_expect(c, meta);
    } else {
      r = skip_value(c);
    }
    if (r) return r;
    skip_ws(c);
    if (c->p < c->end && *c->p == ',') {
      c->p++;
      skip_ws(c);
      continue;
    }
    if (c->p < c->end && *c->p == '}') {
      c->p++;
      break;
    }
    return jfail(c, c->p, "expected ',' or '}' after an object member");
  }
  c->depth--;
  return CLAUSE_OK;
}

int json_bind(const json_binder *b, const char *s, size_t n, arena *a, value *slots,
              json_meta *meta, json_error *err) {
  if (!b || (!s && n) || !a || (!slots && b->nfields)) return CLAUSE_ERR_ARG;
  if (meta) {
    meta->expect = NULL;
    meta->expect_len = 0;
    meta->has_expect = false;
    meta->expect_invalid = false;
  }
  jcur c;
  jcur_init(&c, s ? s : "", n, a, err);
  int r;
  skip_ws(&c);
  if (c.p >= c.end) r = jfail(&c, c.end, "");
  else if (*c.p != '{') r = jfail(&c, c.p, "the request is not a JSON object");
  else r = bind_object(&c, b, 0, slots, meta);
  if (!r) r = expect_end(&c, "unexpected characters after the request object");
  jcur_done(&c);
  return r;
}
