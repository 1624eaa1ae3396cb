/*
 * traffic.c - batched, streaming reader of JSON-lines traffic (traffic.h).
 *
 * Standard input and gzip files go through zlib's gzread, which
 * decompresses gzip data (several members included) and passes anything
 * else through unchanged, so compressed standard input needs no special
 * case; a regular file without the gzip magic is read with read(2).
 */
#include "traffic.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "../vm/vm.h"

/* The buffer's usual size: a batch's lines live in it. */
#define TRAFFIC_BUFFER ((size_t)4 << 20)

struct traffic_reader {
  gzFile gz;       /* stdin and gzip files */
  int fd;          /* other files: read directly, one copy less */
  char *name;
  char *buf;
  size_t cap;      /* allocated bytes */
  size_t len;      /* bytes of data in buf */
  size_t pos;      /* data before pos has been handed out */
  uint64_t lineno; /* physical lines finished so far */
  bool eof;
  bool failed;     /* a read error; reported after the data before it */
  bool skipping;   /* discarding the rest of an over-long line */
  traffic_line *lines;
  size_t lines_cap;
  char error[256];
};

traffic_reader *traffic_open(const char *path, char *err, size_t errcap) {
  bool is_stdin = strcmp(path, "-") == 0;
  int fd = is_stdin ? dup(STDIN_FILENO) : open(path, O_RDONLY);
  struct stat st;
  if (fd >= 0 && fstat(fd, &st) != 0) st.st_mode = 0;
  if (fd >= 0 && S_ISDIR(st.st_mode)) {
    close(fd);
    fd = -1;
    errno = EISDIR;
  }
  if (fd < 0) {
    snprintf(err, errcap, "cannot open %s: %s", is_stdin ? "standard input" : path, strerror(errno));
    return NULL;
  }
  /* A regular file that does not start with the gzip magic is read as it
   * is; anything else goes through zlib, which tells by itself. */
  unsigned char magic[2];
  bool plain = !is_stdin && S_ISREG(st.st_mode) &&
               !(pread(fd, magic, 2, 0) == 2 && magic[0] == 0x1f && magic[1] == 0x8b);
  traffic_reader *r = calloc(1, sizeof *r);
  if (r) {
    r->fd = plain ? fd : -1;
    r->name = strdup(is_stdin ? "<stdin>" : path);
    r->buf = malloc(TRAFFIC_BUFFER);
    r->cap = TRAFFIC_BUFFER;
    r->gz = plain ? NULL : gzdopen(fd, "rb");
  }
  if (!r || !r->name || !r->buf || (!plain && !r->gz)) {
    if (!r || (!plain && !r->gz)) close(fd);
    traffic_close(r);
    snprintf(err, errcap, "out of memory");
    return NULL;
  }
  if (r->gz) gzbuffer(r->gz, 1 << 18); /* fewer, larger reads of compressed data */
  return r;
}

const char *traffic_name(const traffic_reader *r) {
  return r->name;
}

const char *traffic_error(const traffic_reader *r) {
  return r->error;
}

void traffic_close(traffic_reader *r) {
  if (!r) return;
  if (r->gz) gzclose(r->gz);
  else if (r->fd >= 0) close(r->fd);
  free(r->name);
  free(r->buf);
  free(r->lines);
  free(r);
}

/* Records why reading stopped. zlib prefixes its messages with the
 * descriptor's name ("<fd:3>: "), which means nothing to a user. */
static void read_failed(traffic_reader *r) {
  int errnum = Z_OK;
  const char *msg = gzerror(r->gz, &errnum);
  if (errnum == Z_ERRNO) {
    msg = strerror(errno);
  } else if (msg && msg[0] == '<') {
    const char *colon = strstr(msg, ": ");
    if (colon) msg = colon + 2;
  }
  if (errnum == Z_BUF_ERROR) msg = "unexpected end of file (truncated gzip data)";
  snprintf(r->error, sizeof r->error, "%s", msg && *msg ? msg : "read error");
  r->failed = true;
}

/* Reads into the free end of the buffer. */
static void fill(traffic_reader *r) {
  size_t room = r->cap - r->len;
  if (room > (size_t)1 << 30) room = (size_t)1 << 30; /* gzread takes an unsigned */
  if (!r->gz) {
    ssize_t got;
    do got = read(r->fd, r->buf + r->len, room);
    while (got < 0 && errno == EINTR);
    if (got > 0) {
      r->len += (size_t)got;
      return;
    }
    r->eof = true;
    if (got < 0) {
      snprintf(r->error, sizeof r->error, "%s", strerror(errno));
      r->failed = true;
    }
    return;
  }
  int got = gzread(r->gz, r->buf + r->len, (unsigned)room);
  if (got > 0) {
    r->len += (size_t)got;
    return;
  }
  r->eof = true;
  int errnum = Z_OK;
  gzerror(r->gz, &errnum);
  /* A clean end reads as 0 with Z_OK; a truncated gzip stream as 0 with
   * Z_BUF_ERROR; other failures as -1. */
  if (got < 0 || errnum != Z_OK) read_failed(r);
}

static bool blank(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return false;
  return true;
}

/* Adds a line entry; false when out of memory for the entry table. */
static bool add_entry(traffic_reader *r, size_t *n, const char *text, size_t len, int status) {
  if (*n == r->lines_cap) {
    size_t cap = r->lines_cap ? 2 * r->lines_cap : 1024;
    traffic_line *bigger = realloc(r->lines, cap * sizeof *bigger);
    if (!bigger) return false;
    r->lines = bigger;
    r->lines_cap = cap;
  }
  traffic_line *l = &r->lines[(*n)++];
  l->text = text;
  l->len = len;
  l->lineno = r->lineno;
  l->status = status;
  return true;
}

/* A finished physical line [text, text+len) (newline excluded). */
static bool take_line(traffic_reader *r, size_t *n, const char *text, size_t len) {
  r->lineno++;
  if (r->lineno == 1 && len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) { /* a UTF-8 BOM */
    text += 3;
    len -= 3;
  }
  if (len && text[len - 1] == '\r') len--;
  if (len && text[0] != '{' && blank(text, len)) return true;
  if (!len) return true;
  return add_entry(r, n, text, len, TRAFFIC_LINE_OK);
}

/* Room for a line longer than the buffer: grows it, or reports the line
 * and starts skipping the rest of it. */
static bool grow_or_skip(traffic_reader *r, size_t *n) {
  if (r->cap <= TRAFFIC_MAX_LINE) {
    size_t cap = r->cap * 2 > TRAFFIC_MAX_LINE + 1 ? TRAFFIC_MAX_LINE + 1 : r->cap * 2;
    char *bigger = realloc(r->buf, cap);
    if (bigger) {
      r->buf = bigger;
      r->cap = cap;
      return true;
    }
  }
  int status = r->cap > TRAFFIC_MAX_LINE ? TRAFFIC_LINE_TOO_LONG : TRAFFIC_LINE_NOMEM;
  r->lineno++; /* the entry carries the line's own number */
  bool ok = add_entry(r, n, NULL, r->len, status);
  r->lineno--; /* counted when its newline arrives */
  r->len = 0;
  r->skipping = true;
  return ok;
}

long traffic_next_batch(traffic_reader *r, size_t max_lines, const traffic_line **lines) {
  size_t n = 0;
  if (max_lines == 0) max_lines = 1;
  for (;;) {
    /* Complete lines first. */
    while (n < max_lines && r->pos < r->len) {
      char *start = r->buf + r->pos;
      char *nl = memchr(start, '\n', r->len - r->pos);
      if (!nl) break;
      r->pos = (size_t)(nl + 1 - r->buf);
      if (r->skipping) {
        r->skipping = false;
        r->lineno++;
      } else if (!take_line(r, &n, start, (size_t)(nl - start))) {
        goto nomem;
      }
    }
    if (n > 0) break;
    if (r->eof) {
      /* A last line without a newline. */
      if (r->pos < r->len) {
        char *start = r->buf + r->pos;
        size_t len = r->len - r->pos;
        r->pos = r->len;
        if (r->skipping) {
          r->skipping = false;
          r->lineno++;
        } else if (!take_line(r, &n, start, len)) {
          goto nomem;
        }
        if (n > 0) break;
      }
      *lines = r->lines;
      return r->failed ? -1 : 0;
    }
    /* No complete line left: keep the partial one, read more. */
    if (r->pos) {
      memmove(r->buf, r->buf + r->pos, r->len - r->pos);
      r->len -= r->pos;
      r->pos = 0;
    }
    if (r->cap > TRAFFIC_BUFFER && r->len < TRAFFIC_BUFFER / 2) {
      char *smaller = realloc(r->buf, TRAFFIC_BUFFER); /* after a long line */
      if (smaller) {
        r->buf = smaller;
        r->cap = TRAFFIC_BUFFER;
      }
    }
    if (r->len == r->cap) {
      if (r->skipping) {
        r->len = 0;
      } else {
        if (!grow_or_skip(r, &n)) goto nomem;
        if (n > 0) break;
      }
    }
    fill(r);
  }
  *lines = r->lines;
  return (long)n;

nomem:
  snprintf(r->error, sizeof r->error, "out of memory");
  r->failed = r->eof = true;
  *lines = r->lines;
  return -1;
}

bool traffic_bind(clause_vm *vm, const char *text, size_t len, json_meta *meta, char *msg, size_t msgcap,
                  int *column) {
  const clause_program *p = vm->p;
  json_error jerr;
  *column = 0;
  clause_vm_reset(vm);
  int rc = json_bind(p->binder, text, len, &vm->input, vm->regs, meta, &jerr);
  if (rc != CLAUSE_OK) {
    if (rc == CLAUSE_ERR_JSON) *column = jerr.column;
    snprintf(msg, msgcap, "%s", rc == CLAUSE_ERR_JSON ? jerr.message : "out of memory");
    return false;
  }
  if (p->clock_field == PROG_NONE) return true;
  const value *clock = &vm->regs[p->clock_field];
  if (clock->kind == CV_TIMESTAMP) return true;
  const char *path = p->fields[p->clock_field].path;
  if (clock->kind == CV_ERROR && clock->flag == CV_ERR_ABSENT)
    snprintf(msg, msgcap, "missing @clock value %s", path);
  else
    snprintf(msg, msgcap, "invalid @clock value %s: expected an RFC 3339 timestamp string", path);
  return false;
}
