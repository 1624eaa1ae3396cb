/*
 * cel_strings.c - the CEL strings extension (cel-go ext/strings, latest
 * version: charAt, indexOf, lastIndexOf, lowerAscii, upperAscii, replace,
 * split, substring, trim, join, reverse, strings.quote, format), clause's
 * string helpers (lower, upper, glob) and `matches`.
 *
 * Indices count code points. A result that is a slice of an argument
 * shares the argument's memory (values never own memory); new strings and
 * lists are allocated in ctx->scratch.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cel.h"
#include "regex.h"

/* Highest precision string.format accepts (%.Nf, %.Ne). */
#define FORMAT_MAX_PRECISION 100

static void no_overload(cel_ctx *ctx, value *out, const char *name) {
  *out = cv_error(ctx, "no matching overload: %s", name);
}

static void out_of_memory(cel_ctx *ctx, value *out) { *out = cv_error(ctx, "out of memory"); }

/* ---- UTF-8 ------------------------------------------------------------------ */

/* The code point at s[i] (i < n) and its length; a byte that does not start
 * a valid sequence reads as U+FFFD, one byte long. */
static size_t utf8_decode(const char *str, size_t n, size_t i, uint32_t *cp) {
  const unsigned char *s = (const unsigned char *)str;
  unsigned c = s[i];
  size_t len;
  uint32_t v, min;
  if (c < 0x80) {
    *cp = c;
    return 1;
  } else if ((c & 0xE0) == 0xC0) {
    len = 2, v = c & 0x1F, min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3, v = c & 0x0F, min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4, v = c & 0x07, min = 0x10000;
  } else {
    *cp = 0xFFFD;
    return 1;
  }
  if (n - i < len) {
    *cp = 0xFFFD;
    return 1;
  }
  for (size_t k = 1; k < len; k++) {
    if ((s[i + k] & 0xC0) != 0x80) {
      *cp = 0xFFFD;
      return 1;
    }
    v = v << 6 | (s[i + k] & 0x3F);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
    *cp = 0xFFFD;
    return 1;
  }
  *cp = v;
  return len;
}

static size_t utf8_encode(char *dst, uint32_t cp) {
  unsigned char *d = (unsigned char *)dst;
  if (cp < 0x80) {
    d[0] = (unsigned char)cp;
    return 1;
  }
  if (cp < 0x800) {
    d[0] = (unsigned char)(0xC0 | cp >> 6);
    d[1] = (unsigned char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    d[0] = (unsigned char)(0xE0 | cp >> 12);
    d[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    d[2] = (unsigned char)(0x80 | (cp & 0x3F));
    return 3;
  }
  d[0] = (unsigned char)(0xF0 | cp >> 18);
  d[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
  d[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
  d[3] = (unsigned char)(0x80 | (cp & 0x3F));
  return 4;
}

/* The byte after the code point that starts at s[i] (i < n). */
static size_t utf8_next(const char *s, size_t n, size_t i) {
  for (i++; i < n && ((unsigned char)s[i] & 0xC0) == 0x80; i++) {
  }
  return i;
}

/* Byte offset of code point number k (n when the string is shorter). */
static size_t cp_offset(const char *s, size_t n, uint64_t k) {
  size_t i = 0;
  for (; k > 0 && i < n; k--) i = utf8_next(s, n, i);
  return i;
}

/* First occurrence of needle in hay at or after byte `from`, or -1. */
static ptrdiff_t find(const char *hay, size_t hn, const char *needle, size_t nn, size_t from) {
  if (nn == 0) return from <= hn ? (ptrdiff_t)from : -1;
  while (from + nn <= hn) {
    const char *p = memchr(hay + from, needle[0], hn - nn + 1 - from);
    if (!p) return -1;
    size_t at = (size_t)(p - hay);
    if (memcmp(p, needle, nn) == 0) return (ptrdiff_t)at;
    from = at + 1;
  }
  return -1;
}

/* ---- a string built in the scratch arena ---------------------------------------- */

typedef struct sbuf {
  arena *a;
  char *p;
  size_t len, cap;
  bool oom;
} sbuf;

static void sb_init(sbuf *b, cel_ctx *ctx, size_t cap) {
  b->a = ctx->scratch;
  b->len = 0;
  b->cap = cap ? cap : 16;
  b->p = arena_alloc(b->a, b->cap);
  b->oom = b->p == NULL;
}

static bool sb_reserve(sbuf *b, size_t more) {
  if (b->oom) return false;
  if (more <= b->cap - b->len) return true;
  size_t cap = b->cap * 2 > b->len + more ? b->cap * 2 : b->len + more;
  /* In place while nothing else was allocated since; else a copy. */
  char *p = arena_grow(b->a, b->p, b->cap, cap);
  if (!p) {
    b->oom = true;
    return false;
  }
  b->p = p;
  b->cap = cap;
  return true;
}

static void sb_put(sbuf *b, const char *s, size_t n) {
  if (n && sb_reserve(b, n)) {
    memcpy(b->p + b->len, s, n);
    b->len += n;
  }
}

static void sb_putc(sbuf *b, char c) { sb_put(b, &c, 1); }

static void sb_put_cp(sbuf *b, uint32_t cp) {
  char tmp[4];
  sb_put(b, tmp, utf8_encode(tmp, cp));
}

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(sbuf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || !sb_reserve(b, (size_t)n + 1)) return;
  va_start(ap, fmt);
  vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

/* Appends invalid UTF-8 as U+FFFD, so results stay valid strings. */
static void sb_put_sanitized(sbuf *b, const char *s, size_t n) {
  if (cel_utf8_valid(s, n)) {
    sb_put(b, s, n);
    return;
  }
  for (size_t i = 0; i < n;) {
    uint32_t cp;
    size_t len = utf8_decode(s, n, i, &cp);
    if (cp == 0xFFFD && len == 1)
      sb_put_cp(b, 0xFFFD);
    else
      sb_put(b, s + i, len);
    i += len;
  }
}

static void sb_finish(sbuf *b, cel_ctx *ctx, value *out) {
  if (b->oom || b->len > UINT32_MAX)
    out_of_memory(ctx, out);
  else
    *out = cv_string(b->p, (uint32_t)b->len);
}

/* ---- strings extension ------------------------------------------------------- */

static bool is_str(const value *v) { return v->kind == CV_STRING; }
static bool is_int(const value *v) { return v->kind == CV_INT; }

static void index_error(cel_ctx *ctx, value *out, int64_t i) {
  *out = cv_error(ctx, "index out of range: %lld", (long long)i);
}

/* s.charAt(i): the code point at i; "" at the end; an error past it. */
static void str_char_at(cel_ctx *ctx, value *out, const value *args, int nargs) {
  (void)nargs;
  if (!is_str(&args[0]) || !is_int(&args[1])) {
    no_overload(ctx, out, "charAt");
    return;
  }
  const char *s = args[0].s;
  size_t n = args[0].n, count = cel_utf8_count(s, n);
  int64_t i = args[1].i;
  if (i < 0 || (uint64_t)i > count) {
    index_error(ctx, out, i);
    return;
  }
  size_t b = cp_offset(s, n, (uint64_t)i);
  size_t e = b < n ? utf8_next(s, n, b) : b;
  *out = cv_string(s + b, (uint32_t)(e - b));
}

/* s.indexOf(sub[, from]): code point index of the first sub at or after
 * from, or -1; "" is found at from. from must lie in 0..size(s). */
static void str_index_of(cel_ctx *ctx, value *out, const value *args, int nargs) {
  if (!is_str(&args[0]) || !is_str(&args[1]) || (nargs == 3 && !is_int(&args[2]))) {
    no_overload(ctx, out, "indexOf");
    return;
  }
  const char *s = args[0].s;
  size_t n = args[0].n, count = cel_utf8_count(s, n);
  int64_t from = nargs == 3 ? args[2].i : 0;
  if (from < 0 || (uint64_t)from > count) {
    index_error(ctx, out, from);
    return;
  }
  size_t b = cp_offset(s, n, (uint64_t)from);
  ptrdiff_t at = find(s, n, args[1].s, args[1].n, b);
  *out = cv_int(at < 0 ? -1 : from + (int64_t)cel_utf8_count(s + b, (size_t)at - b));
}

/* s.lastIndexOf(sub[, from]): code point index of the last sub that starts
 * at or before from (default: the end), or -1; "" is found at from. */
static void str_last_index_of(cel_ctx *ctx, value *out, const value *args, int nargs) {
  if (!is_str(&args[0]) || !is_str(&args[1]) || (nargs == 3 && !is_int(&args[2]))) {
    no_overload(ctx, out, "lastIndexOf");
    return;
  }
  const char *s = args[0].s, *sub = args[1].s;
  size_t n = args[0].n, sn = args[1].n, count = cel_utf8_count(s, n);
  int64_t from = nargs == 3 ? args[2].i : (int64_t)count;
  if (from < 0 || (uint64_t)from > count) {
    index_error(ctx, out, from);
    return;
  }
  if (sn == 0) {
    *out = cv_int(from);
    return;
  }
  if (sn > n) {
    *out = cv_int(-1);
    return;
  }
  size_t start = cp_offset(s, n, (uint64_t)from);
  if (start > n - sn) start = n - sn;
  for (size_t i = start + 1; i-- > 0;) {
    if (((unsigned char)s[i] & 0xC0) != 0x80 && memcmp(s + i, sub, sn) == 0) {
      *out = cv_int((int64_t)cel_utf8_count(s, i));
      return;
    }
  }
  *out = cv_int(-1);
}

static void ascii_case(cel_ctx *ctx, value *out, const value *args, const char *name, bool upper) {
  if (!is_str(&args[0])) {
    no_overload(ctx, out, name);
    return;
  }
  size_t n = args[0].n;
  char *p = arena_alloc(ctx->scratch, n);
  if (!p) {
    out_of_memory(ctx, out);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    char c = args[0].s[i];
    if (upper && c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A');
    if (!upper && c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
    p[i] = c;
  }
  *out = cv_string(p, (uint32_t)n);
}

static void str_lower_ascii(cel_ctx *ctx, value *out, const value *args, int nargs) {
  (void)nargs;
  ascii_case(ctx, out, args, "lowerAscii", false);
}

static void str_upper_ascii(cel_ctx *ctx, value *out, const value *args, int nargs) {
  (void)nargs;
  ascii_case(ctx, out, args, "upperAscii", true);
}

/* s.replace(old, new[, limit]), as Go's strings.Replace: at most limit
 * replacements (all when negative); an empty old matches before each code
 * point and at the end. */
static void str_replace(cel_ctx *ctx, value *out, const value *args, int nargs) {
  if (!is_str(&args[0]) || !is_str(&args[1]) || !is_str(&args[2]) ||
      (nargs == 4 && !is_int(&args[3]))) {
    no_overload(ctx, out, "replace");
    return;
  }
  const char *s = args[0].s, *old = args[1].s, *rep = args[2].s;
  size_t n = args[0].n, on = args[1].n, rn = args[2].n;
  int64_t limit = nargs == 4 ? args[3].i : -1;
  if (limit == 0 || (on == rn && (on == 0 || memcmp(old, rep, on) == 0))) {
    *out = args[0];
    return;
  }
  sbuf b;
  sb_init(&b, ctx, n + 16);
  size_t start = 0;
  for (int64_t done = 0; limit < 0 || done < limit; done++) {
    size_t at;
    if (on == 0) {
      if (done > 0) {
        if (start >= n) break;
        at = utf8_next(s, n, start);
      } else {
        at = 0;
      }
    } else {
      ptrdiff_t f = find(s, n, old, on, start);
      if (f < 0) break;
      at = (size_t)f;
    }
    sb_put(&b, s + start, at - start);
    sb_put(&b, rep, rn);
    start = at + on;
  }
  sb_put(&b, s + start, n - start);
  sb_finish(&b, ctx, out);
}

/* s.split(sep[, limit]), as Go's strings.SplitN: limit 0 gives [], a
 * negative limit splits everywhere, else at most limit parts, the last
 * holding the rest. An empty sep splits into code points. */
static void str_split(cel_ctx *ctx, value *out, const value *args, int nargs) {
  if (!is_str(&args[0]) || !is_str(&args[1]) || (nargs == 3 && !is_int(&args[2]))) {
    no_overload(ctx, out, "split");
    return;
  }
  const char *s = args[0].s, *sep = args[1].s;
  size_t n = args[0].n, sn = args[1].n;
  int64_t limit = nargs == 3 ? args[2].i : -1;
  /* The number of parts when splitting everywhere. */
  size_t parts = 1;
  if (sn == 0) {
    parts = cel_utf8_count(s, n);
  } else {
    for (ptrdiff_t at = find(s, n, sep, sn, 0); at >= 0; at = find(s, n, sep, sn, (size_t)at + sn))
      parts++;
  }
  if (limit >= 0 && (uint64_t)limit < parts) parts = (size_t)limit;
  if (parts > UINT32_MAX) {
    out_of_memory(ctx, out);
    return;
  }
  value *items = NULL;
  if (parts > 0) {
    items = arena_alloc(ctx->scratch, parts * sizeof *items);
    if (!items) {
      out_of_memory(ctx, out);
      return;
    }
  }
  size_t start = 0;
  for (size_t k = 0; k < parts; k++) {
    size_t end;
    if (k == parts - 1)
      end = n;
    else if (sn == 0)
      end = utf8_next(s, n, start);
    else
      end = (size_t)find(s, n, sep, sn, start);
    items[k] = cv_string(s + start, (uint32_t)(end - start));
    start = end + sn;
  }
  *out = cv_list(items, (uint32_t)parts);
}

/* s.substring(start[, end]): code points [start, end). */
static void str_substring(cel_ctx *ctx, value *out, const value *args, int nargs) {
  if (!is_str(&args[0]) || !is_int(&args[1]) || (nargs == 3 && !is_int(&args[2]))) {
    no_overload(ctx, out, "substring");
    return;
  }
  const char *s = args[0].s;
  size_t n = args[0].n, count = cel_utf8_count(s, n);
  int64_t start = args[1].i, end = nargs == 3 ? args[2].i : (int64_t)count;
  if (nargs == 3 && start > end) {
    *out = cv_error(ctx, "invalid substring range. start: %lld, end: %lld", (long long)start,
                    (long long)end);
    return;
  }
  if (start < 0 || (uint64_t)start > count) {
    index_error(ctx, out, start);
    return;
  }
  if ((uint64_t)end > count) {
    index_error(ctx, out, end);
    return;
  }
  size_t b = cp_offset(s, n, (uint64_t)start);
  size_t e = b + cp_offset(s + b, n - b, (uint64_t)(end - start));
  *out = cv_string(s + b, (uint32_t)(e - b));
}

/* Unicode White_Space, as Go's unicode.IsSpace (no zero-width spaces). */
static bool is_space(uint32_t c) {
  switch (c) {
  case '\t':
  case '\n':
  case '\v':
  case '\f':
  case '\r':
  case ' ':
  case 0x85:
  case 0xA0:
  case 0x1680:
  case 0x2028:
  case 0x2029:
  case 0x202F:
  case 0x205F:
  case 0x3000: return true;
  default: return c >= 0x2000 && c <= 0x200A;
  }
}

static void str_trim(cel_ctx *ctx, value *out, const value *args, int nargs) {
  (void)nargs;
  if (!is_str(&args[0])) {
    no_overload(ctx, out, "trim");
    return;
  }
  const char *s = args[0].s;
  size_t n = args[0].n, b = 0, e = 0;
  bool seen = false;
  for (size_t i = 0; i < n;) {
    uint32_t cp;
    size_t len = utf8_decode(s, n, i, &cp);
    if (!is_space(cp)) {
      if (!seen) b = i;
      seen = true;
      e = i + len;
    }
    i += len;
  }
  *out = cv_string(s + b, (uint32_t)(seen ? e - b : 0));
}

/* list.join([sep]) on a list of strings. */
static void list_join(cel_ctx *ctx, value *out, const value *args, int nargs) {
  if (args[0].kind != CV_LIST || (nargs == 2 && !is_str(&args[1]))) {
    no_overload(ctx, out, "join");
    return;
  }
  const value *items = args[0].items;
  size_t count = args[0].n, sepn = nargs == 2 ? args[1].n : 0, total = 0;
  for (size_t i = 0; i < count; i++) {
    if (!is_str(&items[i])) {
      no_overload(ctx, out, "join");
      return;
    }
    total += items[i].n + (i ? sepn : 0);
  }
  if (total > UINT32_MAX) {
    out_of_memory(ctx, out);
    return;
  }
  char *p = arena_alloc(ctx->scratch, total);
  if (!p) {
    out_of_memory(ctx, out);
    return;
  }
  size_t at = 0;
  for (size_t i = 0; i < count; i++) {
    if (i && sepn) {
      memcpy(p + at, args[1].s, sepn);
      at += sepn;
    }
    if (items[i].n) memcpy(p + at, items[i].s, items[i].n);
    at += items[i].n;
  }
  *out = cv_string(p, (uint32_t)total);
}

/* s.reverse(): the code points in reverse order. */
static void str_reverse(cel_ctx *ctx, value *out, const value *args, int nargs) {
  (void)nargs;
  if (!is_str(&args[0])) {
    no_overload(ctx, out, "reverse");
    return;
  }
  const char *s = args[0].s;
  size_t n = args[0].n;
  char *p = arena_alloc(ctx->scratch, n);
  if (!p) {
    out_of_memory(ctx, out);
    return;
  }
  for (size_t i = 0; i < n;) {
    size_t next = utf8_next(s, n, i);
    memcpy(p + (n - next), s + i, next - i);
    i = next;
  }
  *out = cv_string(p, (uint32_t)n);
}

/* strings.quote(s): a double-quoted CEL string literal for s. */
static void strings_quote(cel_ctx *ctx, value *out, const value *args, int nargs) {
  (void)nargs;
  if (!is_str(&args[0])) {
    no_overload(ctx, out, "strings.quote");
    return;
  }
  const char *s = args[0].s;
  size_t n = args[0].n;
  sbuf b;
  sb_init(&b, ctx, n + 8);
  sb_putc(&b, '"');
  for (size_t i = 0; i < n;) {
    uint32_t cp;
    size_t len = utf8_decode(s, n, i, &cp);
    const char *esc = NULL;
    switch (cp) {
    case '\a': esc = "\\a"; break;
    case '\b': esc = "\\b"; break;
    case '\f': esc = "\\f"; break;
    case '\n': esc = "\\n"; break;
    case '\r': esc = "\\r"; break;
    case '\t': esc = "\\t"; break;
    case '\v': esc = "\\v"; break;
    case '\\': esc = "\\\\"; break;
    case '"': esc = "\\\""; break;
    default: break;
    }
    if (esc)
      sb_put(&b, esc, 2);
    else if (cp == 0xFFFD && len == 1)
      sb_put_cp(&b, 0xFFFD); /* invalid UTF-8 */
    else
      sb_put(&b, s + i, len);
    i += len;
  }
  sb_putc(&b, '"');
  sb_finish(&b, ctx, out);
}

/* ---- string.format ------------------------------------------------------------ */

/* A finite double in the shortest digits that read back, without an
 * exponent (Go's strconv 'f' with precision -1): 1.5e-07 as "0.00000015",
 * 1e+21 as "1" and 21 zeros. */
static void put_plain_double(sbuf *b, double d) {
  char tmp[64];
  outbuf o;
  ob_init_fixed(&o, tmp, sizeof tmp);
  cel_format_double(&o, d);
  ob_cstr(&o);
  const char *p = tmp;
  if (*p == '-') sb_putc(b, *p++);
  char digits[40];
  int nd = 0, point = -1;
  for (; *p && *p != 'e' && *p != 'E'; p++) {
    if (*p == '.')
      point = nd;
    else if (*p >= '0' && *p <= '9' && nd < (int)sizeof digits)
      digits[nd++] = *p;
  }
  if (point < 0) point = nd;
  if (*p) point += atoi(p + 1);
  if (point <= 0) {
    sb_put(b, "0.", 2);
    for (int i = 0; i < -point; i++) sb_putc(b, '0');
    sb_put(b, digits, (size_t)nd);
  } else if (point >= nd) {
    sb_put(b, digits, (size_t)nd);
    for (int i = nd; i < point; i++) sb_putc(b, '0');
  } else {
    sb_put(b, digits, (size_t)point);
    sb_putc(b, '.');
    sb_put(b, digits + point, (size_t)(nd - point));
  }
}

/* NaN and the infinities as format writes them; false for finite d. */
static bool put_special_double(sbuf *b, double d) {
  if (isnan(d))
    sb_put(b, "NaN", 3);
  else if (isinf(d))
    sb_put(b, d > 0 ? "Infinity" : "-Infinity", d > 0 ? 8 : 9);
  else
    return false;
  return true;
}

/* A magnitude in base 2, 8 or 16, after a '-' when negative. */
static void put_base(sbuf *b, bool negative, uint64_t mag, unsigned base, bool upper) {
  const char *digit = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  char tmp[65];
  size_t i = sizeof tmp;
  do {
    tmp[--i] = digit[mag % base];
    mag /= base;
  } while (mag);
  if (negative) sb_putc(b, '-');
  sb_put(b, tmp + i, sizeof tmp - i);
}

static void put_signed_base(sbuf *b, int64_t v, unsigned base, bool upper) {
  put_base(b, v < 0, v < 0 ? 0 - (uint64_t)v : (uint64_t)v, base, upper);
}

static bool format_value(cel_ctx *ctx, sbuf *b, const value *v);

typedef struct map_text {
  const char *key, *val;
  size_t key_len, val_len;
  size_t order;
} map_text;

static int map_text_cmp(const void *pa, const void *pb) {
  const map_text *a = pa, *b = pb;
  size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
  int c = memcmp(a->key, b->key, n);
  if (c) return c;
  if (a->key_len != b->key_len) return a->key_len < b->key_len ? -1 : 1;
  return a->order < b->order ? -1 : a->order > b->order;
}

/* A map as {k: v, ...} with the entries sorted by the text of their keys. */
static bool format_map(cel_ctx *ctx, sbuf *b, const value *m) {
  map_text *e = NULL;
  if (m->n) {
    e = arena_alloc(ctx->scratch, m->n * sizeof *e);
    if (!e) {
      b->oom = true;
      return true;
    }
  }
  for (size_t i = 0; i < m->n; i++) {
    sbuf kb, vb;
    sb_init(&kb, ctx, 16);
    if (!format_value(ctx, &kb, &m->items[2 * i])) return false;
    sb_init(&vb, ctx, 16);
    if (!format_value(ctx, &vb, &m->items[2 * i + 1])) return false;
    if (kb.oom || vb.oom) b->oom = true;
    e[i] = (map_text){kb.p, vb.p, kb.len, vb.len, i};
  }
  if (b->oom) return true;
  if (m->n > 1) qsort(e, m->n, sizeof *e, map_text_cmp);
  sb_putc(b, '{');
  for (size_t i = 0; i < m->n; i++) {
    if (i) sb_put(b, ", ", 2);
    sb_put(b, e[i].key, e[i].key_len);
    sb_put(b, ": ", 2);
    sb_put(b, e[i].val, e[i].val_len);
  }
  sb_putc(b, '}');
  return true;
}

/* The %s text of any value (cel-go's formatting v2); false for a kind %s
 * does not take. Out of memory shows as b->oom. */
static bool format_value(cel_ctx *ctx, sbuf *b, const value *v) {
  char tmp[64];
  outbuf o;
  switch ((cv_kind)v->kind) {
  case CV_NULL: sb_put(b, "null", 4); return true;
  case CV_BOOL: sb_put(b, v->b ? "true" : "false", v->b ? 4 : 5); return true;
  case CV_INT: sb_printf(b, "%lld", (long long)v->i); return true;
  case CV_UINT: sb_printf(b, "%llu", (unsigned long long)v->u); return true;
  case CV_DOUBLE:
    if (!put_special_double(b, v->d)) put_plain_double(b, v->d);
    return true;
  case CV_STRING: sb_put(b, v->s, v->n); return true;
  case CV_BYTES: sb_put_sanitized(b, v->s, v->n); return true;
  case CV_TIMESTAMP:
  case CV_DURATION:
    ob_init_fixed(&o, tmp, sizeof tmp);
    if (v->kind == CV_TIMESTAMP)
      cel_format_timestamp(&o, v->i, v->n);
    else
      cel_format_duration(&o, v->i);
    sb_put(b, tmp, o.len < sizeof tmp ? o.len : sizeof tmp - 1);
    return true;
  case CV_TYPE: {
    const char *name = cv_kind_name((cv_kind)v->i);
    sb_put(b, name, strlen(name));
    return true;
  }
  case CV_LIST:
    sb_putc(b, '[');
    for (uint32_t i = 0; i < v->n; i++) {
      if (i) sb_put(b, ", ", 2);
      if (!format_value(ctx, b, &v->items[i])) return false;
    }
    sb_putc(b, ']');
    return true;
  case CV_MAP: return format_map(ctx, b, v);
  default: return false;
  }
}

typedef enum fmt_error { FMT_OK, FMT_BAD_TYPE } fmt_error;

/* One clause (verb with its precision) applied to an argument. */
static fmt_error format_clause(cel_ctx *ctx, sbuf *b, uint32_t verb, int precision, const value *v,
                               const char **what) {
  switch (verb) {
  case 's':
    *what =
        "string clause can only be used on strings, bools, bytes, ints, doubles, maps, "
        "lists, types, durations, and timestamps";
    return format_value(ctx, b, v) ? FMT_OK : FMT_BAD_TYPE;
  case 'd':
    *what = "decimal clause can only be used on ints, uints, and doubles";
    if (v->kind == CV_INT || v->kind == CV_UINT) {
      format_value(ctx, b, v);
      return FMT_OK;
    }
    if (v->kind != CV_DOUBLE) return FMT_BAD_TYPE;
    if (!put_special_double(b, v->d)) put_plain_double(b, v->d);
    return FMT_OK;
  case 'f':
  case 'e': {
    *what = verb == 'f' ? "fixed-point clause can only be used on ints, uints, and doubles"
                        : "scientific clause can only be used on ints, uints, and doubles";
    double d;
    if (v->kind == CV_INT)
      d = (double)v->i;
    else if (v->kind == CV_UINT)
      d = (double)v->u;
    else if (v->kind == CV_DOUBLE)
      d = v->d;
    else
      return FMT_BAD_TYPE;
    if (!put_special_double(b, d)) sb_printf(b, verb == 'f' ? "%.*f" : "%.*e", precision, d);
    return FMT_OK;
  }
  case 'b':
    *what = "only ints, uints, and bools can be formatted as binary";
    if (v->kind == CV_BOOL)
      sb_putc(b, v->b ? '1' : '0');
    else if (v->kind == CV_INT)
      put_signed_base(b, v->i, 2, false);
    else if (v->kind == CV_UINT)
      put_base(b, false, v->u, 2, false);
    else
      return FMT_BAD_TYPE;
    return FMT_OK;
  case 'o':
    *what = "octal clause can only be used on ints and uints";
    if (v->kind == CV_INT)
      put_signed_base(b, v->i, 8, false);
    else if (v->kind == CV_UINT)
      put_base(b, false, v->u, 8, false);
    else
      return FMT_BAD_TYPE;
    return FMT_OK;
  case 'x':
  case 'X': {
    bool upper = verb == 'X';
    *what = "only ints, uints, bytes, and strings can be formatted as hex";
    if (v->kind == CV_INT) {
      put_signed_base(b, v->i, 16, upper);
    } else if (v->kind == CV_UINT) {
      put_base(b, false, v->u, 16, upper);
    } else if (v->kind == CV_STRING || v->kind == CV_BYTES) {
      const char *digit = upper ? "0123456789ABCDEF" : "0123456789abcdef";
      for (uint32_t i = 0; i < v->n; i++) {
        unsigned char c = (unsigned char)v->s[i];
        char pair[2] = {digit[c >> 4], digit[c & 15]};
        sb_put(b, pair, 2);
      }
    } else {
      return FMT_BAD_TYPE;
    }
    return FMT_OK;
  }
  default: return FMT_BAD_TYPE; /* not reached: verbs are checked by the caller */
  }
}

/* "fmt".format(list): %s %d %f %e %b %o %x %X (with .N precision for %f
 * and %e, default 6) and %%; one list element per clause. */
static void str_format(cel_ctx *ctx, value *out, const value *args, int nargs) {
  (void)nargs;
  if (!is_str(&args[0]) || args[1].kind != CV_LIST) {
    no_overload(ctx, out, "format");
    return;
  }
  const char *f = args[0].s;
  size_t fn = args[0].n;
  const value *list = args[1].items;
  size_t nlist = args[1].n, argi = 0;
  sbuf b;
  sb_init(&b, ctx, fn + 16);
  for (size_t i = 0; i < fn;) {
    if (f[i] != '%') {
      size_t j = i;
      while (j < fn && f[j] != '%') j++;
      sb_put(&b, f + i, j - i);
      i = j;
      continue;
    }
    if (i + 1 < fn && f[i + 1] == '%') {
      sb_putc(&b, '%');
      i += 2;
      continue;
    }
    if (argi >= nlist) {
      *out = cv_error(ctx, "index %zu out of range", argi);
      return;
    }
    if (++i >= fn) {
      *out = cv_error(ctx, "unexpected end of string");
      return;
    }
    int precision = 6;
    if (f[i] == '.') {
      size_t d0 = ++i;
      long long p = 0;
      for (; i < fn && f[i] >= '0' && f[i] <= '9'; i++)
        if (p <= FORMAT_MAX_PRECISION) p = p * 10 + (f[i] - '0');
      if (i >= fn) {
        *out = cv_error(ctx,
                        "could not parse formatting clause: error while parsing precision: "
                        "could not find end of precision specifier");
        return;
      }
      if (i == d0) {
        *out = cv_error(ctx,
                        "could not parse formatting clause: error while parsing precision: "
                        "missing precision digits");
        return;
      }
      if (p > FORMAT_MAX_PRECISION) {
        *out = cv_error(ctx,
                        "could not parse formatting clause: error while parsing precision: "
                        "precision %.*s exceeds maximum allowed precision %d",
                        (int)(i - d0), f + d0, FORMAT_MAX_PRECISION);
        return;
      }
      precision = (int)p;
    }
    uint32_t verb;
    i += utf8_decode(f, fn, i, &verb);
    if (verb == 0 || verb >= 0x80 || !strchr("sdfeboxX", (int)verb)) {
      char name[4];
      size_t len = utf8_encode(name, verb);
      *out = cv_error(ctx,
                      "could not parse formatting clause: unrecognized formatting clause \"%.*s\"",
                      (int)len, name);
      return;
    }
    const char *what = "";
    const value *arg = &list[argi++];
    if (format_clause(ctx, &b, verb, precision, arg, &what) != FMT_OK) {
      *out = cv_error(ctx, "error during formatting: %s, was given %s", what,
                      cv_kind_name((cv_kind)arg->kind));
      return;
    }
  }
  sb_finish(&b, ctx, out);
}

/* ---- lower, upper ----------------------------------------------------------------
 * Simple (one code point to one code point) case mapping for the cased
 * letters of Latin, Greek, Cyrillic, Armenian, Georgian, Glagolitic,
 * Deseret and the fullwidth forms, as Go's unicode.ToLower/ToUpper map them.
 * Scripts not listed (Cherokee, Greek Extended, ...) stay unchanged. */

typedef struct case_range {
  uint32_t lo, hi; /* upper case letters lo..hi, every stride-th */
  uint32_t delta;  /* lower = upper + delta */
  uint32_t stride;
} case_range;

static const case_range case_ranges[] = {
    {0x41, 0x5A, 32, 1},       {0xC0, 0xD6, 32, 1},     {0xD8, 0xDE, 32, 1},
    {0x100, 0x12F, 1, 2},      {0x132, 0x137, 1, 2},    {0x139, 0x148, 1, 2},
    {0x14A, 0x177, 1, 2},      {0x179, 0x17E, 1, 2},    {0x386, 0x386, 38, 1},
    {0x388, 0x38A, 37, 1},     {0x38C, 0x38C, 64, 1},   {0x38E, 0x38F, 63, 1},
    {0x391, 0x3A1, 32, 1},     {0x3A3, 0x3AB, 32, 1},   {0x3D8, 0x3EF, 1, 2},
    {0x400, 0x40F, 80, 1},     {0x410, 0x42F, 32, 1},   {0x460, 0x481, 1, 2},
    {0x48A, 0x4BF, 1, 2},      {0x4C0, 0x4C0, 15, 1},   {0x4C1, 0x4CE, 1, 2},
    {0x4D0, 0x52F, 1, 2},      {0x531, 0x556, 48, 1},   {0x10A0, 0x10C5, 7264, 1},
    {0x1E00, 0x1E95, 1, 2},    {0x1EA0, 0x1EFF, 1, 2},  {0x2160, 0x216F, 16, 1},
    {0x24B6, 0x24CF, 26, 1},   {0x2C00, 0x2C2F, 48, 1}, {0xFF21, 0xFF3A, 32, 1},
    {0x10400, 0x10427, 40, 1},
};

/* Pairs outside the regular ranges: {from, to}. */
static const uint32_t to_lower_extra[][2] = {
    {0x130, 0x69}, {0x178, 0xFF}, {0x1E9E, 0xDF}, {0x2126, 0x3C9}, {0x212A, 0x6B}, {0x212B, 0xE5},
};
static const uint32_t to_upper_extra[][2] = {
    {0xB5, 0x39C}, {0xFF, 0x178}, {0x131, 0x49}, {0x17F, 0x53}, {0x3C2, 0x3A3},
};

static uint32_t map_case(uint32_t c, bool upper) {
  if (c < 0x80) {
    if (upper) return c >= 'a' && c <= 'z' ? c - 32 : c;
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
  }
  const uint32_t(*extra)[2] = upper ? to_upper_extra : to_lower_extra;
  size_t nextra = upper ? sizeof to_upper_extra / sizeof to_upper_extra[0]
                        : sizeof to_lower_extra / sizeof to_lower_extra[0];
  for (size_t i = 0; i < nextra; i++)
    if (extra[i][0] == c) return extra[i][1];
  for (size_t i = 0; i < sizeof case_ranges / sizeof case_ranges[0]; i++) {
    const case_range *r = &case_ranges[i];
    uint32_t lo = upper ? r->lo + r->delta : r->lo, hi = upper ? r->hi + r->delta : r->hi;
    if (c >= lo && c <= hi && (c - lo) % r->stride == 0) return upper ? c - r->delta : c + r->delta;
  }
  return c;
}

static void unicode_case(cel_ctx *ctx, value *out, const value *args, const char *name,
                         bool upper) {
  if (!is_str(&args[0])) {
    no_overload(ctx, out, name);
    return;
  }
  const char *s = args[0].s;
  size_t n = args[0].n, len = 0;
  char tmp[4];
  for (size_t i = 0; i < n;) { /* the mapped length first */
    uint32_t cp;
    size_t k = utf8_decode(s, n, i, &cp);
    len += cp == 0xFFFD && k == 1 ? 1 : utf8_encode(tmp, map_case(cp, upper));
    i += k;
  }
  if (len > UINT32_MAX) {
    out_of_memory(ctx, out);
    return;
  }
  char *p = arena_alloc(ctx->scratch, len);
  if (!p) {
    out_of_memory(ctx, out);
    return;
  }
  size_t at = 0;
  for (size_t i = 0; i < n;) {
    uint32_t cp;
    size_t k = utf8_decode(s, n, i, &cp);
    if (cp == 0xFFFD && k == 1)
      p[at++] = s[i]; /* invalid bytes pass through */
    else
      at += utf8_encode(p + at, map_case(cp, upper));
    i += k;
  }
  *out = cv_string(p, (uint32_t)len);
}

static void fn_lower(cel_ctx *ctx, value *out, const value *args, int nargs) {
  (void)nargs;
  unicode_case(ctx, out, args, "lower", false);
}

static void fn_upper(cel_ctx *ctx, value *out, const value *args, int nargs) {
  (void)nargs;
  unicode_case(ctx, out, args, "upper", true);
}

/* ---- glob ---------------------------------------------------------------------------
 * Shell-style patterns on code points: * any run, ? one code point, [...]
 * a set with ranges a-z, [!...] or [^...] its complement, \x the literal
 * x. A '[' without its ']' is a literal '['. '*' also matches '/'. */

/* The pattern's code point at p[i], taking a backslash escape into account. */
static size_t glob_char(const char *p, size_t pn, size_t i, uint32_t *cp) {
  if (p[i] == '\\' && i + 1 < pn) return 1 + utf8_decode(p, pn, i + 1, cp);
  return utf8_decode(p, pn, i, cp);
}

/* Matches c against the set that starts after the '[' at p[*pi]: 1 or 0,
 * with *pi moved past the ']'; -1 when the set is not closed. */
static int glob_set(const char *p, size_t pn, size_t *pi, uint32_t c) {
  size_t i = *pi;
  bool negate = false, matched = false;
  if (i < pn && (p[i] == '!' || p[i] == '^')) {
    negate = true;
    i++;
  }
  size_t first = i;
  while (i < pn) {
    if (p[i] == ']' && i > first) {
      *pi = i + 1;
      return matched != negate;
    }
    uint32_t lo, hi;
    i += glob_char(p, pn, i, &lo);
    hi = lo;
    if (i + 1 < pn && p[i] == '-' && p[i + 1] != ']') i += 1 + glob_char(p, pn, i + 1, &hi);
    if (c >= lo && c <= hi) matched = true;
  }
  return -1;
}

static bool glob_match(const char *p, size_t pn, const char *s, size_t sn) {
  size_t pi = 0, si = 0;
  size_t star_p = SIZE_MAX, star_s = 0; /* where to resume after the last '*' */
  while (si < sn) {
    if (pi < pn && p[pi] == '*') {
      star_p = ++pi;
      star_s = si;
      continue;
    }
    if (pi < pn) {
      uint32_t c, pc;
      size_t clen = utf8_decode(s, sn, si, &c), next = pi;
      bool ok;
      if (p[pi] == '?') {
        ok = true;
        next = pi + 1;
      } else if (p[pi] == '[') {
        next = pi + 1;
        int r = glob_set(p, pn, &next, c);
        if (r < 0) { /* a lone '[' */
          ok = c == '[';
          next = pi + 1;
        } else {
          ok = r == 1;
        }
      } else {
        next = pi + glob_char(p, pn, pi, &pc);
        ok = pc == c;
      }
      if (ok) {
        pi = next;
        si += clen;
        continue;
      }
    }
    if (star_p == SIZE_MAX) return false;
    /* Let the last '*' take one more code point and try again. */
    pi = star_p;
    star_s = utf8_next(s, sn, star_s);
    si = star_s;
  }
  while (pi < pn && p[pi] == '*') pi++;
  return pi == pn;
}

static void str_glob(cel_ctx *ctx, value *out, const value *args, int nargs) {
  (void)nargs;
  if (!is_str(&args[0]) || !is_str(&args[1])) {
    no_overload(ctx, out, "glob");
    return;
  }
  *out = cv_bool(glob_match(args[1].s, args[1].n, args[0].s, args[0].n));
}

/* ---- matches ---------------------------------------------------------------------------
 * s.matches(re) and matches(s, re) with a pattern known only now: compiled
 * per call (the VM compiles constant patterns once with regex_compile). The
 * match uses the VM's regex_cache when it has one. */
static void str_matches(cel_ctx *ctx, value *out, const value *args, int nargs) {
  (void)nargs;
  if (!is_str(&args[0]) || !is_str(&args[1])) {
    no_overload(ctx, out, "matches");
    return;
  }
  char err[256];
  regex *re = regex_compile(args[1].s, args[1].n, err, sizeof err);
  if (!re) {
    *out = cv_error(ctx, "%s", err);
    return;
  }
  int rc = regex_match_cached(re, (regex_cache *)ctx->regex_cache, args[0].s, args[0].n,
                              ctx->regex_match_limit, err, sizeof err);
  regex_free(re);
  *out = rc < 0 ? cv_error(ctx, "%s", err) : cv_bool(rc == 1);
}

const cel_builtin cel_builtins_strings[] = {
    {"charAt", 1, 2, 2, 0, str_char_at},
    {"indexOf", 1, 2, 3, 0, str_index_of},
    {"lastIndexOf", 1, 2, 3, 0, str_last_index_of},
    {"lowerAscii", 1, 1, 1, 0, str_lower_ascii},
    {"upperAscii", 1, 1, 1, 0, str_upper_ascii},
    {"replace", 1, 3, 4, 0, str_replace},
    {"split", 1, 2, 3, 0, str_split},
    {"substring", 1, 2, 3, 0, str_substring},
    {"trim", 1, 1, 1, 0, str_trim},
    {"join", 1, 1, 2, 0, list_join},
    {"reverse", 1, 1, 1, 0, str_reverse},
    {"format", 1, 2, 2, 0, str_format},
    {"strings.quote", 0, 1, 1, 0, strings_quote},
    {"lower", 0, 1, 1, 0, fn_lower},
    {"upper", 0, 1, 1, 0, fn_upper},
    {"glob", 1, 2, 2, 0, str_glob},
    {"matches", 1, 2, 2, 0, str_matches},
    {"matches", 0, 2, 2, 0, str_matches},
    {NULL, 0, 0, 0, 0, NULL},
};
