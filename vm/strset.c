/* strset.c - building the constant string sets of strset.h. */
#include "strset.h"

#define STRSET_MIN_ELEMENTS 3 /* below this a scan is as fast */

strset *strset_build(arena *a, const value *list) {
  /* A map's keys sit at every other item. */
  uint32_t step = list->kind == CV_MAP ? 2 : 1;
  if ((list->kind != CV_LIST && list->kind != CV_MAP) || list->n < STRSET_MIN_ELEMENTS) return NULL;
  for (uint32_t i = 0; i < list->n; i++)
    if (list->items[i * step].kind != CV_STRING) return NULL;
  uint32_t size = 8;
  while (size < 2 * list->n) size *= 2; /* at most half full: short probes */
  strset *set = arena_alloc(a, sizeof *set);
  const value **slots = arena_alloc(a, size * sizeof *slots);
  if (!set || !slots) return NULL;
  memset(slots, 0, size * sizeof *slots);
  set->mask = size - 1;
  set->slots = slots;
  for (uint32_t i = 0; i < list->n; i++) {
    const value *e = &list->items[i * step];
    if (strset_has(set, e->s, e->n)) continue; /* duplicates add nothing */
    uint32_t k = strset_hash(e->s, e->n) & set->mask;
    while (slots[k]) k = (k + 1) & set->mask;
    slots[k] = e;
  }
  return set;
}
