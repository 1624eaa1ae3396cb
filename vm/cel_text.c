/*
 * cel_text.c - text forms of values: the canonical value text of the
 * conformance cases, JSON, CEL's string() conversion, and UTF-8 checks
 * (see cel.h).
 */
#include "cel.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char hex_digits[] = "0123456789abcdef";

/* ---- doubles ------------------------------------------------------------------ */

/* Writes d with `prec` significant digits in %g style into buf (>= 32 bytes)
 * and tells whether that text reads back as d. */
static bool g_round_trips(char *buf, size_t cap, double d, int prec) {
  snprintf(buf, cap, "%.*g", prec, d);
  return strtod(buf, NULL) == d;
}

void cel_format_double(outbuf *o, double d) {
  if (isnan(d)) {
    ob_puts(o, "NaN");
    return;
  }
  if (isinf(d)) {
    ob_puts(o, d > 0 ? "+Inf" : "-Inf");
    return;
  }
  char buf[40];
  if (d == 0 || fabs(d) >= DBL_MIN) {
    /* In the normal range %.15g already gives the shortest form when 15
     * digits or fewer suffice: every 15-digit decimal survives the trip
     * through a double. */
    if (!g_round_trips(buf, sizeof buf, d, 15) && !g_round_trips(buf, sizeof buf, d, 16))
      snprintf(buf, sizeof buf, "%.17g", d);
  } else {
    /* Subnormals carry fewer digits: search from one. */
    for (int prec = 1; prec < 17 && !g_round_trips(buf, sizeof buf, d, prec); prec++) continue;
    if (strtod(buf, NULL) != d) snprintf(buf, sizeof buf, "%.17g", d);
  }
  ob_puts(o, buf);
}

/* The shortest decimal digits of a finite nonzero |d| and its decimal
 * exponent: d = 0.DIGITS * 10^dp. Returns the number of digits. */
static int shortest_digits(double d, char digits[20], int *dp) {
  char buf[40];
  int lo = 1, hi = 17;
  /* Round-tripping is monotonic in the precision: search for the least. */
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    snprintf(buf, sizeof buf, "%.*e", mid - 1, d);
    if (strtod(buf, NULL) == d) hi = mid;
    else lo = mid + 1;
  }
  snprintf(buf, sizeof buf, "%.*e", lo - 1, fabs(d));
  int nd = 0;
  const char *p = buf;
  for (; *p && *p != 'e'; p++)
    if (*p >= '0' && *p <= '9') digits[nd++] = *p;
  while (nd > 1 && digits[nd - 1] == '0') nd--;
  digits[nd] = '\0';
  *dp = (*p == 'e' ? atoi(p + 1) : 0) + 1;
  return nd;
}

/* string(double) as CEL's reference implementation (Go's %g) writes it:
 * shortest digits, exponent form when the exponent is < -4 or >= 6. */
static void format_double_go(outbuf *o, double d) {
  if (isnan(d)) {
    ob_puts(o, "NaN");
    return;
  }
  if (isinf(d)) {
    ob_puts(o, d > 0 ? "+Inf" : "-Inf");
    return;
  }
  if (signbit(d)) ob_putc(o, '-');
  if (d == 0) {
    ob_putc(o, '0');
    return;
  }
  char digits[20];
  int dp, nd = shortest_digits(d, digits, &dp);
  int exp = dp - 1;
  if (exp < -4 || exp >= 6) {
    ob_putc(o, digits[0]);
    if (nd > 1) {
      ob_putc(o, '.');
      ob_put(o, digits + 1, (size_t)nd - 1);
    }
    ob_printf(o, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    return;
  }
  if (dp <= 0) {
    ob_puts(o, "0.");
    for (int k = dp; k < 0; k++) ob_putc(o, '0');
    ob_put(o, digits, (size_t)nd);
  } else if (dp >= nd) {
    ob_put(o, digits, (size_t)nd);
    for (int k = nd; k < dp; k++) ob_putc(o, '0');
  } else {
    ob_put(o, digits, (size_t)dp);
    ob_putc(o, '.');
    ob_put(o, digits + dp, (size_t)(nd - dp));
  }
}

/* A quoted string, raw UTF-8 with only what must be escaped escaped: for
 * JSON (SPEC section 8) `"`, `\\` and C0 controls; for the canonical text
 * (../shared/cel/README.md) the same plus DEL, and no \\b or \\f forms. */
static void quote_string(outbuf *o, const char *s, size_t n, bool json) {
  ob_putc(o, '"');
  size_t run = 0; /* bytes copied as they are, written in one go */
  for (size_t k = 0; k < n; k++) {
    unsigned char c = (unsigned char)s[k];
    if (c >= 0x20 && c != '"' && c != '\\' && (json || c != 0x7f)) continue;
    ob_put(o, s + run, k - run);
    run = k + 1;
    switch (c) {
    case '"': ob_puts(o, "\\\""); break;
    case '\\': ob_puts(o, "\\\\"); break;
    case '\n': ob_puts(o, "\\n"); break;
    case '\t': ob_puts(o, "\\t"); break;
    case '\r': ob_puts(o, "\\r"); break;
    case '\b': ob_puts(o, json ? "\\b" : "\\u0008"); break;
    case '\f': ob_puts(o, json ? "\\f" : "\\u000c"); break;
    default: ob_printf(o, "\\u%04x", c); break;
    }
  }
  ob_put(o, s + run, n - run);
  ob_putc(o, '"');
}

/* ---- canonical text ---------------------------------------------------------------- */

static void canon_string(outbuf *o, const char *s, size_t n) { quote_string(o, s, n, false); }

typedef struct key_text {
  size_t off, len;
  uint32_t index;
} key_text;

static int compare_key_text(const char *base, const key_text *x, const key_text *y) {
  size_t n = x->len < y->len ? x->len : y->len;
  int c = n ? memcmp(base + x->off, base + y->off, n) : 0;
  if (c) return c;
  return (x->len > y->len) - (x->len < y->len);
}

/* Insertion sort: maps are small, and qsort would need the text base in a
 * global. */
static void sort_keys(const char *base, key_text *keys, uint32_t n) {
  for (uint32_t i = 1; i < n; i++) {
    key_text k = keys[i];
    uint32_t j = i;
    while (j > 0 && compare_key_text(base, &keys[j - 1], &k) > 0) {
      keys[j] = keys[j - 1];
      j--;
    }
    keys[j] = k;
  }
}

static void canon_map(outbuf *o, const value *m) {
  ob_putc(o, '{');
  if (m->n == 0) {
    ob_putc(o, '}');
    return;
  }
  outbuf text;
  ob_init_grow(&text);
  key_text *keys = malloc(m->n * sizeof *keys);
  if (keys) {
    for (uint32_t k = 0; k < m->n; k++) {
      keys[k].off = text.len;
      cel_canon(&text, &m->items[2 * k]);
      keys[k].len = text.len - keys[k].off;
      keys[k].index = k;
    }
  }
  if (!keys || text.oom) {
    /* Out of memory: entries in their own order, and say so. */
    o->oom = true;
    for (uint32_t k = 0; k < m->n; k++) {
      if (k) ob_putc(o, ',');
      cel_canon(o, &m->items[2 * k]);
      ob_putc(o, ':');
      cel_canon(o, &m->items[2 * k + 1]);
    }
  } else {
    sort_keys(text.buf, keys, m->n);
    for (uint32_t k = 0; k < m->n; k++) {
      if (k) ob_putc(o, ',');
      ob_put(o, text.buf + keys[k].off, keys[k].len);
      ob_putc(o, ':');
      cel_canon(o, &m->items[2 * keys[k].index + 1]);
    }
  }
  free(keys);
  ob_free(&text);
  ob_putc(o, '}');
}

void cel_canon(outbuf *o, const value *v) {
  switch (v->kind) {
  case CV_NULL: ob_puts(o, "null"); return;
  case CV_BOOL: ob_puts(o, v->b ? "true" : "false"); return;
  case CV_INT: ob_printf(o, "i:%lld", (long long)v->i); return;
  case CV_UINT: ob_printf(o, "u:%llu", (unsigned long long)v->u); return;
  case CV_DOUBLE:
    if (isnan(v->d)) ob_puts(o, "d:NaN");
    else if (isinf(v->d)) ob_puts(o, v->d > 0 ? "d:+Inf" : "d:-Inf");
    else ob_printf(o, "d:%.17g", v->d); /* prints -0 as "-0" */
    return;
  case CV_STRING:
    ob_puts(o, "s:");
    canon_string(o, v->s, v->n);
    return;
  case CV_BYTES:
    ob_puts(o, "b:");
    for (uint32_t k = 0; k < v->n; k++) {
      unsigned char c = (unsigned char)v->s[k];
      ob_putc(o, hex_digits[c >> 4]);
      ob_putc(o, hex_digits[c & 15]);
    }
    return;
  case CV_LIST:
    ob_putc(o, '[');
    for (uint32_t k = 0; k < v->n; k++) {
      if (k) ob_putc(o, ',');
      cel_canon(o, &v->items[k]);
    }
    ob_putc(o, ']');
    return;
  case CV_MAP: canon_map(o, v); return;
  case CV_TIMESTAMP:
    ob_puts(o, "ts:");
    cel_format_timestamp(o, v->i, v->n);
    return;
  case CV_DURATION:
    ob_puts(o, "dur:");
    cel_format_duration(o, v->i);
    return;
  case CV_TYPE:
    ob_puts(o, "t:");
    ob_puts(o, cv_kind_name((cv_kind)v->i));
    return;
  case CV_ERROR:
    ob_puts(o, "error:");
    ob_put(o, v->s, v->n);
    return;
  default: ob_printf(o, "<%s>", cv_kind_name((cv_kind)v->kind)); return;
  }
}

/* ---- JSON -------------------------------------------------------------------------------- */

void cel_json_string(outbuf *o, const char *s, size_t n) { quote_string(o, s, n, true); }

static void json_base64(outbuf *o, const unsigned char *p, size_t n) {
  static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  ob_putc(o, '"');
  size_t k = 0;
  for (; k + 3 <= n; k += 3) {
    uint32_t w = (uint32_t)p[k] << 16 | (uint32_t)p[k + 1] << 8 | p[k + 2];
    char q[4] = {b64[w >> 18], b64[(w >> 12) & 63], b64[(w >> 6) & 63], b64[w & 63]};
    ob_put(o, q, 4);
  }
  if (n - k == 1) {
    uint32_t w = (uint32_t)p[k] << 16;
    char q[4] = {b64[w >> 18], b64[(w >> 12) & 63], '=', '='};
    ob_put(o, q, 4);
  } else if (n - k == 2) {
    uint32_t w = (uint32_t)p[k] << 16 | (uint32_t)p[k + 1] << 8;
    char q[4] = {b64[w >> 18], b64[(w >> 12) & 63], b64[(w >> 6) & 63], '='};
    ob_put(o, q, 4);
  }
  ob_putc(o, '"');
}

/* The text string(v) gives for a scalar, written to o; false when string()
 * has no overload for v's kind. */
static bool write_string_form(outbuf *o, const value *v) {
  switch (v->kind) {
  case CV_STRING: ob_put(o, v->s, v->n); return true;
  case CV_BYTES: ob_put(o, v->s, v->n); return true;
  case CV_BOOL: ob_puts(o, v->b ? "true" : "false"); return true;
  case CV_INT: ob_put_int(o, v->i); return true;
  case CV_UINT: ob_put_uint(o, v->u); return true;
  case CV_DOUBLE: format_double_go(o, v->d); return true;
  case CV_TIMESTAMP: cel_format_timestamp(o, v->i, v->n); return true;
  case CV_DURATION: cel_format_duration(o, v->i); return true;
  default: return false;
  }
}

static void json_key(outbuf *o, const value *k) {
  if (k->kind == CV_STRING) {
    cel_json_string(o, k->s, k->n);
    return;
  }
  char small[64];
  outbuf t;
  ob_init_fixed(&t, small, sizeof small);
  if (k->kind == CV_TYPE) ob_puts(&t, cv_kind_name((cv_kind)k->i));
  else if (k->kind == CV_NULL) ob_puts(&t, "null");
  else if (!write_string_form(&t, k)) cel_canon(&t, k);
  if (t.len < sizeof small) {
    cel_json_string(o, small, t.len);
    return;
  }
  /* A long key (bytes or a nested value): write it again, unbounded. */
  outbuf g;
  ob_init_grow(&g);
  if (k->kind == CV_BYTES) ob_put(&g, k->s, k->n);
  else cel_canon(&g, k);
  if (g.oom) o->oom = true;
  else cel_json_string(o, g.buf, g.len);
  ob_free(&g);
}

void cel_to_json(outbuf *o, const value *v) {
  switch (v->kind) {
  case CV_NULL: ob_puts(o, "null"); return;
  case CV_BOOL: ob_puts(o, v->b ? "true" : "false"); return;
  case CV_INT: ob_put_int(o, v->i); return;
  case CV_UINT: ob_put_uint(o, v->u); return;
  case CV_DOUBLE:
    if (!isfinite(v->d)) ob_puts(o, "null");
    else cel_format_double(o, v->d);
    return;
  case CV_STRING: cel_json_string(o, v->s, v->n); return;
  case CV_BYTES: json_base64(o, (const unsigned char *)v->s, v->n); return;
  case CV_LIST:
    ob_putc(o, '[');
    for (uint32_t k = 0; k < v->n; k++) {
      if (k) ob_putc(o, ',');
      cel_to_json(o, &v->items[k]);
    }
    ob_putc(o, ']');
    return;
  case CV_MAP:
    ob_putc(o, '{');
    for (uint32_t k = 0; k < v->n; k++) {
      if (k) ob_putc(o, ',');
      json_key(o, &v->items[2 * k]);
      ob_putc(o, ':');
      cel_to_json(o, &v->items[2 * k + 1]);
    }
    ob_putc(o, '}');
    return;
  case CV_TIMESTAMP:
    ob_putc(o, '"');
    cel_format_timestamp(o, v->i, v->n);
    ob_putc(o, '"');
    return;
  case CV_DURATION:
    ob_putc(o, '"');
    cel_format_duration(o, v->i);
    ob_putc(o, '"');
    return;
  case CV_TYPE: cel_json_string(o, cv_kind_name((cv_kind)v->i), strlen(cv_kind_name((cv_kind)v->i))); return;
  default: ob_puts(o, "null"); return; /* errors and VM-internal values */
  }
}

/* ---- string() ------------------------------------------------------------------------ */

void cel_to_string(cel_ctx *ctx, value *out, const value *v) {
  switch (v->kind) {
  case CV_STRING: *out = *v; return;
  case CV_BYTES:
    if (!cel_utf8_valid(v->s, v->n)) {
      *out = cv_error(ctx, "invalid UTF-8 in bytes converted to string");
      return;
    }
    *out = cv_string(v->s, v->n); /* same bytes, no copy */
    return;
  case CV_BOOL: *out = v->b ? cv_string("true", 4) : cv_string("false", 5); return;
  case CV_INT: case CV_UINT: case CV_DOUBLE: case CV_TIMESTAMP: case CV_DURATION: {
    char buf[64];
    outbuf o;
    ob_init_fixed(&o, buf, sizeof buf);
    write_string_form(&o, v);
    if (o.len >= sizeof buf) { /* cannot happen: these forms are short */
      *out = cv_error(ctx, "string(): text too long");
      return;
    }
    char *p = ctx && ctx->scratch ? arena_strndup(ctx->scratch, buf, o.len) : NULL;
    *out = p ? cv_string(p, (uint32_t)o.len) : cv_error(ctx, "out of memory");
    return;
  }
  case CV_ERROR: *out = *v; return;
  default: *out = cv_error(ctx, "no matching overload: string(%s)", cv_kind_name((cv_kind)v->kind)); return;
  }
}

/* ---- UTF-8 ------------------------------------------------------------------------------ */

bool cel_utf8_valid(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s, *end = p + n;
  if (n >= 8 && n <= 64) {
    /* A short ASCII string (an id, an address) in one pass: its words,
     * the last one overlapping the others, or'ed together. */
    uint64_t w, any = 0;
    for (size_t i = 0; i + 8 <= n; i += 8) any |= (memcpy(&w, p + i, 8), w);
    any |= (memcpy(&w, end - 8, 8), w);
    if ((any & 0x8080808080808080ull) == 0) return true;
  }
  while (p < end) {
    /* Request strings are mostly ASCII: eight bytes at a time while no
     * byte has its top bit set. */
    uint64_t w;
    if (end - p >= 8 && (memcpy(&w, p, 8), (w & 0x8080808080808080ull) == 0)) {
      p += 8;
      continue;
    }
    unsigned c = *p;
    if (c < 0x80) {
      p++;
      continue;
    }
    size_t need;
    unsigned lo = 0x80, hi = 0xbf; /* range of the second byte */
    if (c >= 0xc2 && c <= 0xdf) {
      need = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      need = 2;
      if (c == 0xe0) lo = 0xa0;      /* overlong */
      else if (c == 0xed) hi = 0x9f; /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
      need = 3;
      if (c == 0xf0) lo = 0x90;      /* overlong */
      else if (c == 0xf4) hi = 0x8f; /* above U+10FFFF */
    } else {
      return false;
    }
    if ((size_t)(end - p) <= need) return false;
    if (p[1] < lo || p[1] > hi) return false;
    for (size_t k = 2; k <= need; k++)
      if ((p[k] & 0xc0) != 0x80) return false;
    p += need + 1;
  }
  return true;
}

size_t cel_utf8_count(const char *s, size_t n) {
  size_t count = 0;
  for (size_t k = 0; k < n; k++) count += ((unsigned char)s[k] & 0xc0) != 0x80;
  return count;
}
