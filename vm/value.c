/* value.c - error values, kind names and output buffers (see value.h). */
#include "value.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char oom_message[] = "out of memory";

value cv_error(cel_ctx *ctx, const char *fmt, ...) {
  value oom = cv_static_error(oom_message, sizeof oom_message - 1, CV_ERR_GENERIC);
  if (!ctx || !ctx->scratch) return oom;
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) {
    va_end(ap2);
    return oom;
  }
  char *msg = arena_alloc(ctx->scratch, (size_t)n + 1);
  if (!msg) {
    va_end(ap2);
    return oom;
  }
  vsnprintf(msg, (size_t)n + 1, fmt, ap2);
  va_end(ap2);
  return cv_static_error(msg, (uint32_t)n, CV_ERR_GENERIC);
}

const char *cv_kind_name(cv_kind k) {
  switch (k) {
  case CV_NULL: return "null_type";
  case CV_BOOL: return "bool";
  case CV_INT: return "int";
  case CV_UINT: return "uint";
  case CV_DOUBLE: return "double";
  case CV_STRING: return "string";
  case CV_BYTES: return "bytes";
  case CV_LIST: return "list";
  case CV_MAP: return "map";
  case CV_TIMESTAMP: return "google.protobuf.Timestamp";
  case CV_DURATION: return "google.protobuf.Duration";
  case CV_TYPE: return "type";
  case CV_ERROR: return "error";
  case CV_ITER: return "iterator";
  case CV_UNSET: return "unset";
  case CV_KIND_COUNT: break;
  }
  return "unknown";
}

/* ---- output buffers ------------------------------------------------------ */

void ob_init_fixed(outbuf *o, char *buf, size_t cap) {
  o->buf = buf;
  o->cap = buf ? cap : 0;
  o->len = 0;
  o->grow = false;
  o->oom = false;
}

void ob_init_grow(outbuf *o) {
  o->buf = NULL;
  o->cap = 0;
  o->len = 0;
  o->grow = true;
  o->oom = false;
}

/* Makes room for `need` more bytes plus a NUL in a growing buffer. */
bool ob_reserve(outbuf *o, size_t need) {
  if (o->oom) return false;
  if (need > SIZE_MAX - o->len - 1) {
    o->oom = true;
    return false;
  }
  size_t want = o->len + need + 1;
  if (want <= o->cap) return true;
  size_t cap = o->cap ? o->cap : 64;
  while (cap < want) cap = cap > SIZE_MAX / 2 ? want : cap * 2;
  char *p = realloc(o->buf, cap);
  if (!p) {
    o->oom = true;
    return false;
  }
  o->buf = p;
  o->cap = cap;
  return true;
}

void ob_put(outbuf *o, const char *s, size_t n) {
  if (n == 0) return;
  if (o->grow) {
    if (!ob_reserve(o, n)) return;
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    return;
  }
  if (o->len < o->cap) {
    size_t room = o->cap - o->len;
    memcpy(o->buf + o->len, s, n < room ? n : room);
  }
  o->len += n; /* keep counting past the end, like snprintf */
}

void ob_puts(outbuf *o, const char *s) { ob_put(o, s, strlen(s)); }

void ob_putc(outbuf *o, char c) {
  if (!o->grow && o->len < o->cap) {
    o->buf[o->len++] = c;
    return;
  }
  ob_put(o, &c, 1);
}

void ob_printf(outbuf *o, const char *fmt, ...) {
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  char small[128];
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) {
    va_end(ap2);
    return;
  }
  if ((size_t)n < sizeof small) {
    va_end(ap2);
    ob_put(o, small, (size_t)n);
    return;
  }
  if (o->grow) {
    if (ob_reserve(o, (size_t)n)) {
      vsnprintf(o->buf + o->len, (size_t)n + 1, fmt, ap2);
      o->len += (size_t)n;
    }
  } else {
    /* When the text is cut, vsnprintf puts a NUL in the last byte, which is
     * where ob_cstr puts it anyway. */
    if (o->len < o->cap) vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap2);
    o->len += (size_t)n;
  }
  va_end(ap2);
}

char *ob_cstr(outbuf *o) {
  if (o->grow) {
    if (!o->buf) {
      o->buf = malloc(1);
      if (!o->buf) {
        o->oom = true;
        return NULL;
      }
      o->cap = 1;
    }
    o->buf[o->len] = '\0'; /* ob_reserve always keeps room for it */
    return o->buf;
  }
  if (o->cap == 0) return o->buf;
  o->buf[o->len < o->cap ? o->len : o->cap - 1] = '\0';
  return o->buf;
}

void ob_free(outbuf *o) {
  if (o->grow) free(o->buf);
  o->buf = NULL;
  o->cap = 0;
  o->len = 0;
}

void ob_put_uint(outbuf *o, uint64_t v) {
  char digits[20];
  int n = 0;
  do {
    digits[sizeof digits - 1 - n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  ob_put(o, digits + sizeof digits - n, (size_t)n);
}

void ob_put_int(outbuf *o, int64_t v) {
  if (v < 0) {
    ob_putc(o, '-');
    ob_put_uint(o, 0 - (uint64_t)v); /* INT64_MIN too */
  } else {
    ob_put_uint(o, (uint64_t)v);
  }
}
