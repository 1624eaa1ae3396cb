/*
 * strset.h - a hash set over a constant list of strings, built when a
 * program loads, so that `x in ["a", "b", ...]` against a constant costs
 * one hash and a probe or two instead of a scan of the list (and `k in m`
 * against a constant map, over its keys).
 */
#ifndef CLAUSE_STRSET_H
#define CLAUSE_STRSET_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "arena.h"
#include "value.h"

typedef struct strset {
  uint32_t mask;          /* table size - 1 (a power of two) */
  const value **slots;    /* the list's elements, NULL for empty slots */
} strset;

/* A set over `list` when it is a list of strings (or a map with string
 * keys: the set of its keys) long enough for hashing to beat a scan; NULL
 * otherwise (or when out of memory). */
strset *strset_build(arena *a, const value *list);

/* Hashes the length and at most the first and last 8 bytes: constant time
 * whatever the string, and enough to spread the short words sets hold
 * (probes compare whole strings anyway). */
static inline uint32_t strset_hash(const char *s, uint32_t n) {
  uint64_t head = 0, tail = 0;
  if (n >= 8) {
    memcpy(&head, s, 8);
    memcpy(&tail, s + n - 8, 8);
  } else {
    memcpy(&head, s, n);
  }
  uint64_t h = (head ^ (uint64_t)n * 0x9e3779b97f4a7c15u) * 0xff51afd7ed558ccdu;
  h = (h ^ tail ^ (h >> 29)) * 0xc4ceb9fe1a85ec53u;
  return (uint32_t)(h >> 32);
}

static inline bool strset_has(const strset *set, const char *s, uint32_t n) {
  for (uint32_t i = strset_hash(s, n) & set->mask;; i = (i + 1) & set->mask) {
    const value *e = set->slots[i];
    if (!e) return false;
    if (e->n == n && memcmp(e->s, s, n) == 0) return true;
  }
}

#endif
