/*
 * diag.c - compile diagnostics (see diag.h): records queued in order and
 * rendered once, each with its source line and a caret line under the span.
 */
#include "diag.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "../vm/cel.h"

void diag_init(diag_list *d) {
  memset(d, 0, sizeof *d);
}

void diag_free(diag_list *d) {
  diag *x = d->head;
  while (x) {
    diag *next = x->next;
    free(x->message);
    free(x);
    x = next;
  }
  d->head = d->tail = NULL;
}

void diag_add(diag_list *d, diag_level level, srcloc loc, const char *fmt, ...) {
  /* Counted even when not kept (past the limit, or out of memory), so a
   * caller never mistakes a failed compile for a clean one. */
  if (level == DIAG_ERROR) {
    int max = d->max_errors > 0 ? d->max_errors : 100;
    if (d->errors++ >= max) return;
  } else if (level == DIAG_WARNING) {
    d->warnings++;
  }
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  diag *x = malloc(sizeof *x);
  char *msg = n >= 0 ? malloc((size_t)n + 1) : NULL;
  if (!x || !msg) {
    free(x);
    free(msg);
    return;
  }
  va_start(ap, fmt);
  vsnprintf(msg, (size_t)n + 1, fmt, ap);
  va_end(ap);
  x->level = level;
  x->loc = loc;
  x->message = msg;
  x->next = NULL;
  if (d->tail) d->tail->next = x;
  else d->head = x;
  d->tail = x;
}

/* ---- rendering ----------------------------------------------------------------- */

/* Line `line` (1-based) of the text: start and length without its line end.
 * Lines end at \n, \r\n or \r, as the scanner counts them. false past the
 * last line; the line after a final newline exists and is empty. */
static bool find_line(const source *src, int line, const char **start, size_t *len) {
  const char *p = src->text, *end = src->text + src->len;
  for (int at = 1; at < line; at++) {
    while (p < end && *p != '\n' && *p != '\r') p++;
    if (p == end) return false;
    p += (*p == '\r' && p + 1 < end && p[1] == '\n') ? 2 : 1;
  }
  const char *q = p;
  while (q < end && *q != '\n' && *q != '\r') q++;
  *start = p;
  *len = (size_t)(q - p);
  return true;
}

/* The byte offset of column `col` (1-based, in code points) in the line. */
static size_t col_offset(const char *s, size_t len, int col) {
  size_t i = 0;
  for (int c = 1; c < col && i < len; c++) {
    i++;
    while (i < len && ((unsigned char)s[i] & 0xc0) == 0x80) i++;
  }
  return i;
}

static const char *level_name(diag_level l) {
  return l == DIAG_ERROR ? "error" : l == DIAG_WARNING ? "warning" : "note";
}

static const char *level_color(diag_level l) {
  return l == DIAG_ERROR ? "\033[1;31m" : l == DIAG_WARNING ? "\033[1;35m" : "\033[1;36m";
}

static void render_one(const diag *x, FILE *out, bool color) {
  const srcloc *loc = &x->loc;
  const char *bold = color ? "\033[1m" : "", *reset = color ? "\033[0m" : "";
  const char *path = loc->src && loc->src->path ? loc->src->path : NULL;
  if (path && loc->line > 0) fprintf(out, "%s%s:%d:%d:%s ", bold, path, loc->line, loc->col, reset);
  else if (path) fprintf(out, "%s%s:%s ", bold, path, reset);
  fprintf(out, "%s%s:%s %s\n", color ? level_color(x->level) : "", level_name(x->level), reset, x->message);

  const char *text;
  size_t len;
  if (!loc->src || !loc->src->text || loc->line < 1 || !find_line(loc->src, loc->line, &text, &len)) return;
  if (loc->line == 1 && len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) { /* a byte order mark */
    text += 3;
    len -= 3;
  }
  fwrite(text, 1, len, out);
  fputc('\n', out);

  /* The caret line keeps the source's tabs so that it lines up. */
  size_t from = col_offset(text, len, loc->col);
  for (size_t i = 0; i < from;) {
    fputc(text[i] == '\t' ? '\t' : ' ', out);
    i++;
    while (i < from && ((unsigned char)text[i] & 0xc0) == 0x80) i++;
  }
  int width = 1;
  if (loc->end_line == loc->line && loc->end_col > loc->col) width = loc->end_col - loc->col;
  else if (loc->end_line > loc->line) /* to the end of this line */
    width = (int)cel_utf8_count(text + from, len - from);
  if (width < 1) width = 1;
  if (color) fputs("\033[1;32m", out);
  for (int i = 0; i < width; i++) fputc('^', out);
  fputs(reset, out);
  fputc('\n', out);
}

void diag_render(const diag_list *d, FILE *out, bool color) {
  for (const diag *x = d->head; x; x = x->next) render_one(x, out, color);
}

/* ---- did you mean ------------------------------------------------------------------ */

/* Edit distance with transpositions (optimal string alignment), bytes. */
static size_t edit_distance(const char *a, const char *b) {
  size_t n = strlen(a), m = strlen(b);
  if (n > 64 || m > 64) return (size_t)-1; /* names, not essays */
  size_t rows[3][65];
  size_t *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
  for (size_t j = 0; j <= m; j++) prev[j] = j;
  for (size_t i = 1; i <= n; i++) {
    cur[0] = i;
    for (size_t j = 1; j <= m; j++) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      size_t best = prev[j] + 1;
      if (cur[j - 1] + 1 < best) best = cur[j - 1] + 1;
      if (prev[j - 1] + cost < best) best = prev[j - 1] + cost;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && prev2[j - 2] + 1 < best)
        best = prev2[j - 2] + 1;
      cur[j] = best;
    }
    size_t *t = prev2;
    prev2 = prev;
    prev = cur;
    cur = t;
  }
  return prev[m];
}

const char *diag_suggest(const char *word, const char *const *candidates, int n) {
  if (!word) return NULL;
  size_t limit = strlen(word) / 3;
  if (limit < 1) limit = 1;
  const char *best = NULL;
  size_t best_d = limit + 1;
  for (int i = 0; i < n; i++) {
    if (!candidates[i]) continue;
    size_t dist = edit_distance(word, candidates[i]);
    if (dist < best_d) {
      best = candidates[i];
      best_d = dist;
    }
  }
  return best;
}
