/*
 * test_util.h - small helpers shared by the unit tests.
 */
#ifndef CLAUSE_TEST_UTIL_H
#define CLAUSE_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>

/* The source tree ($CLAUSE_SRCDIR, which `make check` sets), else ".". */
static inline const char *srcdir(void) {
  const char *s = getenv("CLAUSE_SRCDIR");
  return s && *s ? s : ".";
}

/* The folder holding the extern test library libclausetest.so that `make
 * check` builds: $CLAUSE_BUILDDIR/tests/.libs (libtool's output folder),
 * else "tests/.libs" under the current folder. */
static inline const char *extern_libdir(void) {
  static char dir[4096];
  const char *b = getenv("CLAUSE_BUILDDIR");
  snprintf(dir, sizeof dir, "%s/tests/.libs", b && *b ? b : ".");
  return dir;
}

/* A whole file, NUL-terminated (malloc'd; the caller frees), with its
 * length in *len when len is not NULL. NULL when it cannot be read. */
static inline char *read_whole(const char *path, size_t *len) {
  if (len) *len = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 4096, n = 0, got;
  char *buf = malloc(cap);
  while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
    n += got;
    if (n + 1 == cap) {
      char *grown = realloc(buf, cap *= 2);
      if (!grown) free(buf);
      buf = grown;
    }
  }
  fclose(f);
  if (!buf) return NULL;
  buf[n] = '\0';
  if (len) *len = n;
  return buf;
}

#endif
