/* arena.c - chunked bump allocator (see arena.h). */
#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct arena_chunk {
  arena_chunk *next;
  size_t size; /* usable bytes after the header */
  _Alignas(16) unsigned char data[];
};

#define ALIGN16(n) (((n) + 15u) & ~(size_t)15u)

void arena_init(arena *a, size_t chunk_size) {
  a->first = a->cur = NULL;
  a->used = 0;
  a->chunk_size = chunk_size ? chunk_size : 4096;
}

static arena_chunk *chunk_new(size_t size) {
  arena_chunk *c = malloc(sizeof *c + size);
  if (!c) return NULL;
  c->next = NULL;
  c->size = size;
  return c;
}

void *arena_alloc(arena *a, size_t n) {
  n = ALIGN16(n ? n : 1);
  if (a->cur && a->used + n <= a->cur->size) {
    void *p = a->cur->data + a->used;
    a->used += n;
    return p;
  }
  /* Move on to the next kept chunk that is big enough, else add one. A kept
   * chunk that is too small is skipped for this round. */
  arena_chunk *prev = a->cur;
  arena_chunk *c = prev ? prev->next : a->first;
  while (c && c->size < n) {
    prev = c;
    c = c->next;
  }
  if (!c) {
    size_t size = a->chunk_size;
    while (size < n) size *= 2;
    c = chunk_new(size);
    if (!c) return NULL;
    if (prev) {
      c->next = prev->next;
      prev->next = c;
    } else {
      c->next = a->first;
      a->first = c;
    }
    /* Later chunks start bigger, so a busy arena settles on few chunks. */
    if (a->chunk_size < ((size_t)1 << 24)) a->chunk_size *= 2;
  }
  a->cur = c;
  a->used = n;
  return c->data;
}

char *arena_strndup(arena *a, const char *s, size_t n) {
  char *p = arena_alloc(a, n + 1);
  if (!p) return NULL;
  if (n) memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

void *arena_grow(arena *a, void *p, size_t old_n, size_t new_n) {
  if (p && a->cur) {
    unsigned char *base = a->cur->data;
    size_t off = (size_t)((unsigned char *)p - base);
    if ((unsigned char *)p >= base && off + ALIGN16(old_n ? old_n : 1) == a->used &&
        off + ALIGN16(new_n) <= a->cur->size) {
      a->used = off + ALIGN16(new_n);
      return p;
    }
  }
  void *q = arena_alloc(a, new_n);
  if (q && p && old_n) memcpy(q, p, old_n < new_n ? old_n : new_n);
  return q;
}

void arena_reset(arena *a) {
  a->cur = NULL;
  a->used = 0;
}

void arena_free(arena *a) {
  arena_chunk *c = a->first;
  while (c) {
    arena_chunk *next = c->next;
    free(c);
    c = next;
  }
  a->first = a->cur = NULL;
  a->used = 0;
}
