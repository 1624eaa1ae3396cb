/* strset.c - building the constant string sets of strset.h. */
#include "strset.h"

#define STRSET_MIN_ELEMENTS 1 /* a probe costs less than a scan even of two */

strset *strset_build(arena *a, const value *list) {
  /* A map's keys sit at every other item. */
  uint32_t step = list->kind == CV_MAP ? 2 : 1;
  if ((list->kind != CV_LIST && list->kind != CV_MAP) || list->n < STRSET_MIN_ELEMENTS) return NULL;
  for (uint32_t i = 0; i < list->n; i++)
    if (list->items[i * step].kind != CV_STRING) return NULL;
  if (list->n > (UINT32_MAX >> 3)) return NULL;
  uint32_t size = 8, shift = 64 - 3;
  while (size < 4 * list->n) { /* at most a quarter full: short probes */
    size *= 2;
    shift--;
  }
  strset *set = arena_alloc(a, sizeof *set);
  strset_slot *slots = arena_alloc(a, size * sizeof *slots);
  if (!set || !slots) return NULL;
  memset(slots, 0, size * sizeof *slots);
  set->mask = size - 1;
  set->shift = shift;
  set->slots = slots;
  for (uint32_t i = 0; i < list->n; i++) {
    const value *e = &list->items[i * step];
    if (strset_has(set, e->s, e->n)) continue; /* duplicates add nothing */
    uint64_t key = str_key(e->s, e->n);
    uint32_t k = (uint32_t)(strset_hash(e->s, e->n, key) >> shift);
    while (slots[k].e) k = (k + 1) & set->mask;
    slots[k] = (strset_slot){e, key, e->n};
  }
  return set;
}
