/*
 * strset.h - a hash set over a constant list of strings, built when a
 * program loads, so that `x in ["a", "b", ...]` against a constant costs
 * one hash and a probe or two instead of a scan of the list (and `k in m`
 * and m[k] against a constant map, over its keys).
 */
#ifndef CLAUSE_STRSET_H
#define CLAUSE_STRSET_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "arena.h"
#include "value.h"

/* A slot keeps its string's length and first bytes (str_key), so that a
 * probe settles strings of up to 8 bytes without reading them. */
typedef struct strset_slot {
  const value *e;         /* the element, NULL for an empty slot */
  uint64_t key;
  uint32_t n;
} strset_slot;

typedef struct strset {
  uint32_t mask;          /* table size - 1 (a power of two) */
  uint32_t shift;         /* 64 - log2(table size): a hash's top bits pick the slot */
  strset_slot *slots;
} strset;

/* A set over `list` when it is a non-empty list of strings (or a map with
 * string keys: the set of its keys, each followed by its value); NULL
 * otherwise (or when out of memory). */
strset *strset_build(arena *a, const value *list);

/* Strings are read a word at a time, with overlapping loads instead of
 * byte loops or calls to memcpy/memcmp (the strings sets and conditions
 * compare are short words). */
static inline uint64_t str_load8(const char *s) {
  uint64_t x;
  memcpy(&x, s, 8);
  return x;
}

/* The n <= 8 bytes of s packed into a word; two strings of the same
 * length n are equal exactly when their words are (the two loads
 * overlap, and between them cover every byte). */
static inline uint64_t str_load_short(const char *s, uint32_t n) {
  if (n >= 4) {
    uint32_t lo, hi;
    memcpy(&lo, s, 4);
    memcpy(&hi, s + n - 4, 4);
    return lo | (uint64_t)hi << 32;
  }
  if (n >= 2) {
    uint16_t lo, hi;
    memcpy(&lo, s, 2);
    memcpy(&hi, s + n - 2, 2);
    return lo | (uint64_t)hi << 16;
  }
  return n ? (uint8_t)s[0] : 0;
}

/* Byte equality of two strings of the same length n. */
static inline bool str_same(const char *a, const char *b, uint32_t n) {
  if (n <= 8) return str_load_short(a, n) == str_load_short(b, n);
  if (str_load8(a) != str_load8(b)) return false;
  for (uint32_t i = 8; i + 8 < n; i += 8)
    if (str_load8(a + i) != str_load8(b + i)) return false;
  return str_load8(a + n - 8) == str_load8(b + n - 8);
}

/* The first bytes of a string as a word: all of them when n <= 8 (two
 * strings of the same length n <= 8 are equal exactly when their keys
 * are), else the first 8. */
static inline uint64_t str_key(const char *s, uint32_t n) {
  return n <= 8 ? str_load_short(s, n) : str_load8(s);
}

/* Hashes the length, the key and at most the last 8 bytes, with one
 * multiplication whose top bits pick the slot: constant time whatever the
 * string, and enough to spread the short words sets hold (probes compare
 * whole strings anyway). */
static inline uint64_t strset_hash(const char *s, uint32_t n, uint64_t key) {
  uint64_t tail = n > 8 ? str_load8(s + n - 8) : 0;
  return (key ^ tail ^ n) * 0x9e3779b97f4a7c15u;
}

/* The element equal to s, or NULL (for a map's set: its key, the value
 * being the next item). */
__attribute__((always_inline)) static inline const value *strset_find(const strset *set, const char *s,
                                                                      uint32_t n) {
  uint64_t key = str_key(s, n);
  for (uint32_t i = (uint32_t)(strset_hash(s, n, key) >> set->shift);; i = (i + 1) & set->mask) {
    const strset_slot *slot = &set->slots[i];
    if (!slot->e) return NULL;
    if (slot->n == n && slot->key == key && (n <= 8 || str_same(slot->e->s, s, n))) return slot->e;
  }
}

__attribute__((always_inline)) static inline bool strset_has(const strset *set, const char *s, uint32_t n) {
  return strset_find(set, s, n) != NULL;
}

#endif
