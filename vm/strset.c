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

/* The strings to number: each string constant, and each element (key) of
 * a constant that has a set; with repeats. */
static size_t atom_candidates(const value *consts, strset *const *sets, uint32_t nconsts, value *out) {
  size_t n = 0;
  for (uint32_t k = 0; k < nconsts; k++) {
    if (consts[k].kind == CV_STRING) {
      if (out) out[n] = consts[k];
      n++;
    }
    if (!sets[k]) continue;
    uint32_t step = consts[k].kind == CV_MAP ? 2 : 1;
    for (uint32_t i = 0; i < consts[k].n; i++, n++)
      if (out) out[n] = consts[k].items[i * step];
  }
  return n;
}

bool atoms_build(arena *a, atom_table *t, const value *consts, strset *const *sets, uint32_t nconsts) {
  memset(t, 0, sizeof *t);
  size_t total = atom_candidates(consts, sets, nconsts, NULL), nsets = 0;
  if (total == 0 || total > ATOM_TABLE_MAX) return true;
  for (uint32_t k = 0; k < nconsts; k++) nsets += sets[k] != NULL;

  /* Repeats dropped: a string keeps its first place, the one a set over
   * all of them finds. */
  arena tmp;
  arena_init(&tmp, 4096);
  value *all = arena_alloc(&tmp, total * sizeof *all);
  value *strings = arena_alloc(a, total * sizeof *strings);
  if (!all || !strings) {
    arena_free(&tmp);
    return false;
  }
  atom_candidates(consts, sets, nconsts, all);
  value list = cv_list(all, (uint32_t)total);
  strset *firsts = strset_build(&tmp, &list);
  if (!firsts) {
    arena_free(&tmp);
    return false;
  }
  uint32_t n = 0;
  for (size_t i = 0; i < total; i++)
    if (strset_find(firsts, all[i].s, all[i].n) == &all[i]) strings[n++] = all[i];
  arena_free(&tmp);
  if (nsets * ((size_t)n + 2) > ATOM_TABLE_MAX) return true; /* a table per set: too large */

  list = cv_list(strings, n);
  t->set = strset_build(a, &list);
  t->strings = strings;
  t->of_const = arena_alloc(a, nconsts * sizeof *t->of_const);
  t->hits = arena_alloc(a, nconsts * sizeof *t->hits);
  if (!t->set || !t->of_const || !t->hits) return false;
  t->n = n;
  for (uint32_t k = 0; k < nconsts; k++) {
    t->of_const[k] = consts[k].kind == CV_STRING ? atom_of(t, consts[k].s, consts[k].n) : 0;
    t->hits[k] = NULL;
    if (!sets[k]) continue;
    const value **hits = arena_alloc(a, (n + 2) * sizeof *hits);
    if (!hits) {
      t->n = 0;
      return false;
    }
    memset(hits, 0, (n + 2) * sizeof *hits);
    uint32_t step = consts[k].kind == CV_MAP ? 2 : 1;
    for (uint32_t i = 0; i < consts[k].n; i++) {
      const value *e = &consts[k].items[i * step];
      uint32_t atom = atom_of(t, e->s, e->n);
      if (!hits[atom]) hits[atom] = e;
    }
    t->hits[k] = hits;
  }
  return true;
}
