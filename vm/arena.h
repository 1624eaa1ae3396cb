/*
 * arena.h - bump allocation in chunks, freed all at once.
 *
 * The compiler allocates its AST from an arena freed once after code
 * generation (as libpcap's gencode does); each VM keeps two arenas (inputs
 * and per-evaluation scratch) that are reset, not freed, so that evaluation
 * stops allocating once they have grown to a policy's needs.
 */
#ifndef CLAUSE_ARENA_H
#define CLAUSE_ARENA_H

#include <stddef.h>

typedef struct arena_chunk arena_chunk;

typedef struct arena {
  arena_chunk *first; /* chunk list, kept across resets */
  arena_chunk *cur;   /* chunk being filled */
  size_t used;        /* bytes used in cur */
  size_t chunk_size;  /* size of new chunks (grows for big requests) */
} arena;

void arena_init(arena *a, size_t chunk_size);
/* 16-byte aligned memory, NULL when out of memory. */
void *arena_alloc(arena *a, size_t n);
/* Copies n bytes and adds a NUL. */
char *arena_strndup(arena *a, const char *s, size_t n);
/* Grows the most recent allocation `p` (of old_n bytes) to new_n bytes,
 * in place when possible, else by copying. */
void *arena_grow(arena *a, void *p, size_t old_n, size_t new_n);
/* Forgets every allocation and keeps the chunks for reuse. */
void arena_reset(arena *a);
void arena_free(arena *a);

#endif
