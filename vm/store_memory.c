/*
 * store_memory.c - the in-process state store (the default).
 *
 * An entry holds one key and, as items, every counter and suspension kept
 * under that key: a request's counters are usually all keyed by the same
 * field (the account), so one lookup and one lock serve them all. Entries
 * live in hash tables split into shards, each with its own lock, so that
 * VMs on different threads seldom wait for each other. A store with a key
 * cap (memory?max_keys=N, N keys) has one shard, so that "least recently
 * used" means exactly that across all keys.
 *
 * Sums keep their non-empty buckets in a short sorted array, with the last
 * reading cached and slid bucket by bucket. Distinct counters keep, per
 * member, the newest bucket it was seen in and a 128-bit map of the buckets
 * before it; past a few members, also the same kind of bucket sums counting
 * the members by their newest bucket: while time moves forward, a reading
 * is then that sum (a member is in the window when its newest sighting
 * is), not a walk over the members. Both are exact under SPEC 5.3's rule for
 * every reading that lies no more than one window before the newest event
 * of the key (traffic time may go backwards that far); older buckets are
 * dropped as time moves on.
 *
 * Reclaiming: when a shard has grown by half since its last sweep, an
 * insert sweeps it, freeing the entries that no reading at or after the
 * insert's time can use any more (a key idle for two windows). Memory
 * thus follows the number of live keys, not the length of the traffic,
 * and a store whose keys are all live pays nothing for it.
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "strset.h" /* str_same: short keys compared a word at a time */

/* Paths a request seldom takes (growing, inserting, sweeping, out of
 * memory): kept out of line, so that the flattened hot path (mem_begin)
 * stays short in the instruction cache. */
#define RARE __attribute__((noinline, cold))

#define BUCKETS 60           /* per window (SPEC 5.3) */
#define KEEP (2 * BUCKETS)   /* buckets kept behind a key's newest one */
#define SHARDS 256          /* few threads ever want the same lock */

typedef enum entry_kind { ENT_SUM = 'c', ENT_DISTINCT = 'd', ENT_SUSPENSION = 's' } entry_kind;

typedef struct bucket {
  int64_t id;
  int64_t sum;
} bucket;

/* Sparse buckets, sorted by id: the n from `start` of the array `b` (or,
 * b NULL, `small`). Old buckets leave from the front by moving `start`,
 * so that a key's steady stream of new buckets moves no memory. */
typedef struct window_sums {
  bucket *b;
  bucket small[2];           /* most keys see few buckets: no allocation */
  uint32_t start, n, cap;
  bool cached;               /* cache_sum is the reading at bucket cache_id */
  uint16_t lo;               /* with cached: that window's first bucket (from
                                start), so that sliding it needs no search */
  int64_t cache_id, cache_sum;
} window_sums;

/* The id of the newest bucket (n > 0). */
static int64_t ws_newest(const window_sums *w) { return (w->b ? w->b : w->small)[w->start + w->n - 1].id; }

#define MEMBER_INLINE 24     /* member texts this short (addresses, IPv6 ones
                                included) live in the member */

typedef struct member {
  uint64_t hash;
  int64_t newest;            /* bucket */
  unsigned __int128 seen;    /* bit j: seen in bucket newest - j */
  uint32_t len;              /* a string's length (values' lengths are 32-bit) */
  union {
    char small[MEMBER_INLINE]; /* len <= MEMBER_INLINE */
    char *text;              /* longer: on the heap */
  };
} member;
_Static_assert(sizeof(member) == 64, "a member is one cache line");

static const char *member_text(const member *m) { return m->len <= MEMBER_INLINE ? m->small : m->text; }
static void member_free(member *m) {
  if (m->len > MEMBER_INLINE) free(m->text);
}

/* A counter or a suspension under a key. */
typedef struct item {
  _Alignas(16) uint8_t kind; /* entry_kind; items keep the spare area aligned */
  const char *id;            /* the counter's id or the suspend rule's, interned:
                                equal ids are the same pointer */
  int64_t window_ns;
  union {
    window_sums sum;         /* ENT_SUM */
    struct {                 /* ENT_DISTINCT */
      member *m;
      uint32_t n, cap;
      uint32_t *index;       /* open addressing: member index + 1, or 0;
                                NULL while a linear search is as quick */
      uint32_t index_cap;    /* a power of two, >= 2n */
      int64_t newest;        /* bucket of the key's newest event */
      window_sums *by_newest; /* members counted in their newest bucket,
                                kept (on the heap) once there is an index */
    } dist;
    struct {                 /* ENT_SUSPENSION */
      int64_t start, until;
    } susp;
  } u;
} item;

/* One allocation: the header, the key (a lookup reads both: short keys
 * share the header's cache line), room for INLINE_ITEMS items, a spare
 * area for their arrays (buckets, members), and in a store with a key cap
 * the entry's links in the LRU list. A key's state thus lies in one block
 * whose cache lines a lookup asks for at once (see shard_find), instead of
 * a chain of blocks each waiting for the one before. When an array
 * outgrows the spare area, or growing arrays left too much dead space in
 * it, the entry is rebuilt compacted (entry_reserve); past SPARE_MAX
 * arrays go to the heap. */
typedef struct entry {
  struct entry *next;        /* hash chain */
  uint64_t hash;
  item *items;               /* entry_inline_items() until there are more */
  uint32_t key_len;
  uint32_t item_ids;         /* id_bit() of every item's id: most absent items
                                (a suspension not in force) need no search */
  uint16_t spare_used, spare_cap; /* bytes of the spare area handed out, and in all */
  uint16_t nitems, capitems;
  _Alignas(16) char key[];
} entry;

#define INLINE_ITEMS 4       /* a policy seldom keeps more under one key */
#define SPARE_MIN 256        /* a new entry's spare area */
#define SPARE_MAX 16384      /* arrays of a key beyond this live on the heap */
#define PREFETCH_LINES 16    /* cache lines of an entry asked for at once: the
                                header, the items and the first arrays (more
                                crowd out what other keys keep in the cache) */
_Static_assert(SPARE_MAX <= UINT16_MAX, "spare sizes fit entry.spare_cap");

typedef struct lru_links {
  struct lru_links *prev, *next;
  entry *owner;              /* NULL in the list's sentinel */
} lru_links;

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }
static item *entry_inline_items(entry *e) { return (item *)(void *)(e->key + round16(e->key_len)); }
static char *entry_spare(entry *e) { return (char *)(entry_inline_items(e) + INLINE_ITEMS); }
static lru_links *entry_lru(entry *e) { return (lru_links *)(void *)(entry_spare(e) + e->spare_cap); }
static size_t entry_size(size_t key_len, size_t spare_cap, bool lru) {
  return sizeof(entry) + round16(key_len) + INLINE_ITEMS * sizeof(item) + spare_cap + (lru ? sizeof(lru_links) : 0);
}
_Static_assert(sizeof(item) % 16 == 0, "the spare area stays 16-byte aligned");

static bool in_spare(entry *e, const void *p) {
  const char *spare = entry_spare(e);
  return (const char *)p >= spare && (const char *)p < spare + e->spare_cap;
}

/* Gives back an item's array: to the heap, or to the spare area when it is
 * the last block handed out from there (otherwise its room stays unused
 * until the entry goes). */
static void entry_release(entry *e, void *p, size_t n) {
  if (!p) return;
  if (!in_spare(e, p)) {
    free(p);
    return;
  }
  if ((char *)p + round16(n) == entry_spare(e) + e->spare_used) e->spare_used -= (uint16_t)round16(n);
}

/* Resizes an item's array (old: `old_n` bytes, or NULL) to `new_n` bytes,
 * keeping its contents: in the entry's spare area while there is room (in
 * place when it is the last block there), else on the heap. NULL when out
 * of memory (the old array is then untouched). */
RARE static void *entry_resize(entry *e, void *old, size_t old_n, size_t new_n) {
  char *spare = entry_spare(e);
  old_n = round16(old_n);
  new_n = round16(new_n);
  if (old && in_spare(e, old) && (char *)old + old_n == spare + e->spare_used &&
      (size_t)((char *)old - spare) + new_n <= e->spare_cap) {
    e->spare_used = (uint16_t)((char *)old - spare + new_n);
    return old;
  }
  void *p;
  if (e->spare_used + new_n <= e->spare_cap) {
    p = spare + e->spare_used;
    e->spare_used += (uint16_t)new_n;
  } else if (!(p = malloc(new_n))) {
    return NULL;
  }
  if (old) {
    memcpy(p, old, old_n < new_n ? old_n : new_n);
    entry_release(e, old, old_n);
  }
  return p;
}

/* A shard's hash slots. mem_prefetch reads a slot without the shard's
 * lock (a lock is an atomic write that would stall the work the prefetch
 * is meant to overlap), so a table is published with one atomic pointer,
 * slot heads are written atomically, and a table outgrown stays until the
 * store goes (all of them together are less than twice the last). */
typedef struct slot_table {
  struct slot_table *older;
  size_t n;                  /* a power of two */
  entry *slots[];
} slot_table;

static slot_table *slot_table_new(size_t n, slot_table *older) {
  slot_table *t = calloc(1, sizeof *t + n * sizeof(entry *));
  if (t) {
    t->older = older;
    t->n = n;
  }
  return t;
}

/* A write of a chain link that may be a slot head (mem_prefetch reads
 * those without the lock). */
static inline void set_link(entry **link, entry *e) { __atomic_store_n(link, e, __ATOMIC_RELAXED); }

/* A shard's lock: taken with one atomic exchange, given back with a plain
 * release store. A mutex costs two atomic read-modify-writes, each a full
 * barrier on the hot path of every request; a shard is held for well under
 * a microsecond, and a waiter spins a little, then yields its CPU (as
 * nginx's shared-memory zones do). */
typedef struct shard_lock {
  int held;
} shard_lock;

static inline void shard_lock_take(shard_lock *l) {
  while (__atomic_exchange_n(&l->held, 1, __ATOMIC_ACQUIRE)) {
    for (unsigned spins = 0; __atomic_load_n(&l->held, __ATOMIC_RELAXED); spins++) {
      if (spins >= 64) sched_yield();
#if defined(__x86_64__) || defined(__i386__)
      else __builtin_ia32_pause();
#endif
    }
  }
}

static inline void shard_lock_give(shard_lock *l) { __atomic_store_n(&l->held, 0, __ATOMIC_RELEASE); }

/* Cache-line aligned: threads locking neighbouring shards must not share
 * a line. */
typedef struct shard {
  _Alignas(64) shard_lock lock;
  slot_table *table;         /* written under the lock, read by mem_prefetch */
  size_t count;
  size_t sweep_at;           /* sweep when count passes this */
  bool lru;                  /* keep the LRU list (a store with a key cap) */
  lru_links lru_list;        /* sentinel: lru_list.next is the most recent */
} shard;

typedef struct mem_store {
  store base;
  pthread_mutex_t ids_lock;  /* the counter and rule ids items name, kept */
  char **ids;                /* once each until the store goes */
  size_t nids, capids;
  size_t max_keys;           /* 0: no cap */
  size_t nshards;            /* a power of two */
  shard shards[];
} mem_store;

/* A key's shard, from its hash's high bits (its slot uses the low ones). */
static inline shard *shard_of(mem_store *ms, uint64_t hash) { return &ms->shards[(hash >> 40) & (ms->nshards - 1)]; }

/* ---- entries ------------------------------------------------------------------------ */

/* A multiply-mix hash, eight bytes at a time (keys are short). */
static uint64_t hash_bytes(const char *s, size_t n) {
  size_t len = n;
  uint64_t h = n * 0x9e3779b97f4a7c15ull;
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, s, 8);
    h = (h ^ w) * 0xff51afd7ed558ccdull;
    h ^= h >> 32;
    s += 8;
    n -= 8;
  }
  uint64_t w = 0;
  if (n && len >= 8) {
    memcpy(&w, s + n - 8, 8); /* the last 8 bytes, overlapping the ones before */
  } else {
    for (size_t i = 0; i < n; i++) w |= (uint64_t)(unsigned char)s[i] << (8 * i);
  }
  h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
  /* Finish by mixing every bit into the high ones (shards use those). */
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  return h ^ (h >> 33);
}

static void item_free(entry *owner, item *it) {
  if (it->kind == ENT_SUM) {
    entry_release(owner, it->u.sum.b, it->u.sum.cap * sizeof(bucket));
  } else if (it->kind == ENT_DISTINCT) {
    if (it->u.dist.by_newest) {
      entry_release(owner, it->u.dist.by_newest->b, it->u.dist.by_newest->cap * sizeof(bucket));
      free(it->u.dist.by_newest);
    }
    for (uint32_t i = 0; i < it->u.dist.n; i++) member_free(&it->u.dist.m[i]);
    entry_release(owner, it->u.dist.m, it->u.dist.cap * sizeof(member));
    entry_release(owner, it->u.dist.index, it->u.dist.index_cap * sizeof(uint32_t));
  }
}

static void entry_free(entry *e) {
  for (uint32_t i = 0; i < e->nitems; i++) item_free(e, &e->items[i]);
  if (e->items != entry_inline_items(e)) free(e->items);
  free(e);
}

/* The store's copy of an id, made once: items outlive the programs whose
 * constant strings named them. */
static const char *intern_id(mem_store *ms, const char *id) {
  const char *found = NULL;
  pthread_mutex_lock(&ms->ids_lock);
  for (size_t i = 0; i < ms->nids && !found; i++)
    if (strcmp(ms->ids[i], id) == 0) found = ms->ids[i];
  if (!found && ms->nids == ms->capids) {
    size_t cap = ms->capids * 2 + 8;
    char **ids = realloc(ms->ids, cap * sizeof *ids);
    if (ids) {
      ms->ids = ids;
      ms->capids = cap;
    }
  }
  if (!found && ms->nids < ms->capids) {
    char *copy = strdup(id);
    if (copy) found = ms->ids[ms->nids++] = copy;
  }
  pthread_mutex_unlock(&ms->ids_lock);
  return found;
}

static void lru_unlink(shard *sh, entry *e) {
  if (!sh->lru) return;
  lru_links *l = entry_lru(e);
  l->prev->next = l->next;
  l->next->prev = l->prev;
}

static void lru_push(shard *sh, entry *e) {
  if (!sh->lru) return;
  lru_links *l = entry_lru(e);
  l->owner = e;
  l->next = sh->lru_list.next;
  l->prev = &sh->lru_list;
  sh->lru_list.next->prev = l;
  sh->lru_list.next = l;
}

static entry **slot_of(shard *sh, uint64_t hash) { return &sh->table->slots[hash & (sh->table->n - 1)]; }

static void shard_remove(shard *sh, entry *e) {
  entry **pp = slot_of(sh, e->hash);
  while (*pp != e) pp = &(*pp)->next;
  set_link(pp, e->next);
  lru_unlink(sh, e);
  sh->count--;
  entry_free(e);
}

RARE static bool shard_grow(shard *sh) {
  slot_table *old = sh->table, *t = slot_table_new(2 * old->n, old);
  if (!t) return false;
  /* The entries are relinked into the new table, which nothing reads yet;
   * the old one keeps its slot heads for a prefetch that may be reading
   * them (their chains no longer matter to it). */
  for (size_t i = 0; i < old->n; i++)
    for (entry *e = old->slots[i], *next; e; e = next) {
      next = e->next;
      e->next = t->slots[e->hash & (t->n - 1)];
      t->slots[e->hash & (t->n - 1)] = e;
    }
  __atomic_store_n(&sh->table, t, __ATOMIC_RELEASE);
  return true;
}

/* An entry is found by its key alone. */
typedef struct ident {
  const char *key;
  size_t key_len;
  uint64_t hash;
} ident;

static ident make_ident(const char *key, size_t key_len) {
  ident k = {key, key_len, hash_bytes(key, key_len)};
  return k;
}

static bool ident_is(const entry *e, const ident *k) {
  return e->hash == k->hash && e->key_len == k->key_len && str_same(e->key, k->key, e->key_len);
}

/* Asks for all of an entry's cache lines at once: the lines of its items
 * and arrays then arrive together with its header, not one after another.
 * (Prefetching past the end of a block is harmless.) */
static inline void prefetch_entry(const entry *e) {
#pragma GCC unroll 32
  for (size_t line = 1; line < PREFETCH_LINES; line++) __builtin_prefetch((const char *)e + 64 * line, 1);
}

/* The rest of a larger entry, once its header has told its size. */
static void prefetch_rest(entry *e) {
  size_t end = (size_t)(entry_spare(e) + e->spare_used - (char *)e);
  for (size_t off = 64 * PREFETCH_LINES; off < end; off += 64) __builtin_prefetch((const char *)e + off, 1);
}

/* The key's entry, and in *link the pointer to it in its chain.
 * `fetched`, an entry whose lines mem_prefetch asked for already, is not
 * asked for again. */
static entry *shard_find(shard *sh, const ident *k, entry ***link, const entry *fetched) {
  for (entry **pp = slot_of(sh, k->hash), *e; (e = *pp); pp = &e->next) {
    if (e != fetched) prefetch_entry(e);
    if (ident_is(e, k)) {
      prefetch_rest(e);
      *link = pp;
      lru_unlink(sh, e);
      lru_push(sh, e);
      return e;
    }
  }
  return NULL;
}

/* `key "a1" (rpm, ips)` for an eviction notice: the names of its counters
 * (a counter's id is "NAME/KIND/WINDOW") and suspensions. */
RARE static void describe(const entry *e, char *buf, size_t cap) {
  int keyn = e->key_len > 64 ? 64 : (int)e->key_len;
  int n = snprintf(buf, cap, "key \"%.*s\" (", keyn, e->key);
  for (uint32_t i = 0; i < e->nitems && n > 0 && (size_t)n < cap; i++) {
    const item *it = &e->items[i];
    if (it->kind == ENT_SUSPENSION)
      n += snprintf(buf + n, cap - (size_t)n, "%ssuspension by rule \"%s\"", i ? ", " : "", it->id);
    else
      n += snprintf(buf + n, cap - (size_t)n, "%s%.*s", i ? ", " : "", (int)strcspn(it->id, "/"), it->id);
  }
  if (n > 0 && (size_t)n < cap) snprintf(buf + n, cap - (size_t)n, ")");
}

/* The time at which bucket `id` of a window starts, saturating. */
static int64_t bucket_start(int64_t id, int64_t window_ns) {
  int64_t t64;
  if (window_ns % BUCKETS == 0 && !__builtin_mul_overflow(id, window_ns / BUCKETS, &t64))
    return t64; /* the usual case: no division by a variable */
  __int128 t = (__int128)id * window_ns / BUCKETS;
  if (t > INT64_MAX) return INT64_MAX;
  if (t < INT64_MIN) return INT64_MIN;
  return (int64_t)t;
}

/* The time from which nothing of an item can be read (KEEP buckets after
 * its newest event, or a suspension's end): worked out when a sweep asks,
 * not kept up to date on every add. */
static int64_t item_dead_at(const item *it) {
  int64_t newest;
  switch (it->kind) {
  case ENT_SUM:
    if (!it->u.sum.n) return INT64_MIN;
    newest = ws_newest(&it->u.sum);
    break;
  case ENT_DISTINCT:
    if (!it->u.dist.n) return INT64_MIN;
    newest = it->u.dist.newest;
    break;
  default:
    return it->u.susp.until;
  }
  return newest > INT64_MAX - KEEP ? INT64_MAX : bucket_start(newest + KEEP, it->window_ns);
}

static bool entry_dead(const entry *e, int64_t now) {
  for (uint32_t i = 0; i < e->nitems; i++)
    if (item_dead_at(&e->items[i]) > now) return false;
  return true;
}

/* Frees the entries that no reading at `now` or later can use. (Not the
 * newest time ever seen: replayed traffic that is not in time order would
 * then lose the keys of its earlier stretches.) Run when the shard has
 * grown by half since the last sweep, so its cost is spread over the
 * inserts and the shard holds at most 1.5 times its live entries. */
RARE static void shard_sweep(shard *sh, int64_t now) {
  for (size_t i = 0; i < sh->table->n; i++)
    for (entry *e = sh->table->slots[i], *next; e; e = next) {
      next = e->next;
      if (entry_dead(e, now)) shard_remove(sh, e);
    }
  sh->sweep_at = sh->count + (sh->count / 2 > 16 ? sh->count / 2 : 16);
}

RARE static entry *shard_insert(mem_store *ms, shard *sh, const ident *k, int64_t now, store_report *r,
                           entry ***link) {
  if (sh->count >= sh->sweep_at) shard_sweep(sh, now);
  size_t cap = ms->max_keys;
  while (cap && sh->count >= cap && sh->lru_list.prev != &sh->lru_list) {
    entry *victim = sh->lru_list.prev->owner;
    if (r->notice) {
      char what[200], msg[320];
      describe(victim, what, sizeof what);
      int n = snprintf(msg, sizeof msg, "state store full (max_keys %zu): evicted the least recently used %s",
                       cap, what);
      r->notice(r->notice_ctx, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
    }
    shard_remove(sh, victim);
  }
  if (2 * sh->count >= sh->table->n && !shard_grow(sh)) return NULL; /* short chains: few entries read */
  if (k->key_len > UINT32_MAX) return NULL;
  entry *e = calloc(1, entry_size(k->key_len, SPARE_MIN, sh->lru));
  if (!e) return NULL;
  e->hash = k->hash;
  e->key_len = (uint32_t)k->key_len;
  e->items = entry_inline_items(e); /* after key_len: they follow the key */
  e->capitems = INLINE_ITEMS;
  e->spare_cap = SPARE_MIN;
  memcpy(e->key, k->key, k->key_len);
  entry **slot = slot_of(sh, k->hash);
  e->next = *slot;
  set_link(slot, e);
  *link = slot;
  lru_push(sh, e);
  sh->count++;
  return e;
}

/* An interned id's bit in entry.item_ids (ids are separate heap blocks,
 * at least 16 bytes apart). */
static inline uint32_t id_bit(const char *id) { return 1u << (((uintptr_t)id >> 4) & 31); }

/* The item (kind, id) of an entry, `id` interned; a new one when
 * `create`. NULL when absent (or out of memory). */
static inline item *entry_item(entry *e, char kind, const char *id, bool create, int64_t window_ns,
                               uint32_t hint) {
  /* Items are made in the order a program asks for them: `hint`, the
   * op's position, usually finds the item at once. */
  if (hint < e->nitems && e->items[hint].id == id && e->items[hint].kind == kind) return &e->items[hint];
  if (e->item_ids & id_bit(id))
    for (uint32_t i = 0; i < e->nitems; i++)
      if (e->items[i].id == id && e->items[i].kind == kind) return &e->items[i];
  if (!create) return NULL;
  if (e->nitems == e->capitems) {
    if (e->capitems > UINT16_MAX / 2) return NULL; /* a key with 32,768 counters: refused */
    uint16_t cap = (uint16_t)(2 * e->capitems);
    bool in_entry = e->items == entry_inline_items(e);
    item *ni = in_entry ? malloc(cap * sizeof *ni) : realloc(e->items, cap * sizeof *ni);
    if (!ni) return NULL;
    if (in_entry) memcpy(ni, e->items, INLINE_ITEMS * sizeof *ni);
    e->items = ni;
    e->capitems = cap;
  }
  item *it = &e->items[e->nitems++];
  e->item_ids |= id_bit(id);
  memset(it, 0, sizeof *it);
  it->kind = (uint8_t)kind;
  it->id = id;
  it->window_ns = window_ns;
  return it;
}


/* a + b for b >= 0, saturating. */
static inline int64_t sat_add(int64_t a, int64_t b) {
  int64_t r;
  return __builtin_add_overflow(a, b, &r) ? INT64_MAX : r;
}

/* ---- sums -------------------------------------------------------------------------- */

static bucket *ws_array(window_sums *w) { return w->b ? w->b : w->small; }
static bucket *ws_buckets(window_sums *w) { return ws_array(w) + w->start; }

static inline int64_t ws_sum(int64_t a, int64_t amount) {
  return amount >= 0 ? sat_add(a, amount) : a + amount;
}

/* Adds `amount` to bucket `id`. Sums of counters only grow (amount >= 0,
 * saturating at INT64_MAX); the members-by-newest sums of distinct
 * counters also shrink, and never come near saturation. */
static bool ws_add(entry *owner, window_sums *w, int64_t id, int64_t amount) {
  bucket *b = ws_buckets(w);
  uint32_t n = w->n;
  /* A hot key is read many times per bucket: keep the last reading up to
   * date instead of summing 60 buckets again (a saturating sum of amounts
   * >= 0 does not depend on the order of additions). */
  bool in_cache = w->cached && id <= w->cache_id && id > w->cache_id - BUCKETS;
  if (n && b[n - 1].id == id) { /* the newest bucket: the usual case */
    b[n - 1].sum = ws_sum(b[n - 1].sum, amount);
    if (in_cache) w->cache_sum = ws_sum(w->cache_sum, amount);
    return true;
  }
  if (amount >= 0 && (!n || (b[n - 1].id < id && (uint64_t)id - (uint64_t)b[n - 1].id >= KEEP))) {
    /* Every bucket kept is now too old to be read: the key's first event,
     * or one after a long pause. Start afresh, with the reading at `id`
     * (this bucket alone) cached. */
    if (!w->b && !w->cap) w->cap = 2; /* `small` */
    ws_array(w)[0] = (bucket){id, amount};
    w->start = 0;
    w->n = 1;
    w->cached = true;
    w->lo = 0;
    w->cache_id = id;
    w->cache_sum = amount;
    return true;
  }
  int64_t newest = n ? b[n - 1].id : id;
  if (id <= newest - KEEP) return true; /* older than anything kept: dropped */
  if (in_cache) w->cache_sum = ws_sum(w->cache_sum, amount);
  uint32_t at = n;
  while (at > 0 && b[at - 1].id > id) at--;
  if (at > 0 && b[at - 1].id == id) {
    b[at - 1].sum = ws_sum(b[at - 1].sum, amount);
    return true;
  }
  /* A new bucket: first drop the ones it leaves KEEP behind the newest. */
  int64_t keep_after = (id > newest ? id : newest) - KEEP;
  uint32_t drop = 0;
  while (drop < at && b[drop].id <= keep_after) drop++;
  if (drop) {
    w->start += drop;
    b += drop;
    n -= drop;
    at -= drop;
    if (w->lo >= drop) w->lo = (uint16_t)(w->lo - drop);
    else w->cached = false; /* the cached window held some */
  }
  if (!w->b && !w->cap) w->cap = 2; /* `small` */
  if (w->start + n == w->cap) {
    bucket *array = ws_array(w);
    if (w->start > 0) { /* room at the front: move down, once per `start` new buckets */
      memmove(array, b, n * sizeof *b);
    } else {
      uint32_t cap = 2 * w->cap;
      bucket *grown = entry_resize(owner, w->b, w->b ? w->cap * sizeof *b : 0, cap * sizeof *grown);
      if (!grown) return false;
      if (!w->b) memcpy(grown, w->small, sizeof w->small);
      w->b = grown;
      w->cap = cap;
    }
    w->start = 0;
    b = ws_array(w);
  }
  if (at < n) memmove(b + at + 1, b + at, (n - at) * sizeof *b);
  b[at] = (bucket){id, amount};
  w->n = n + 1;
  /* A bucket before the cached window moves that window's first one up
   * (one in or after the window lands at or after it). */
  if (w->cached && id <= w->cache_id - BUCKETS) w->lo++;
  return true;
}


/* The sum of the buckets in (from, to], found from the newest back: a
 * reading is usually at or near the newest bucket, so this walks only the
 * buckets it sums (and any after `to`, when time went backwards). *first
 * (unless NULL): the first bucket after `from`. */
static int64_t sum_back(const bucket *b, uint32_t n, int64_t from, int64_t to, uint32_t *first) {
  uint32_t i = n;
  while (i > 0 && b[i - 1].id > to) i--;
  int64_t total = 0;
  while (i > 0 && b[i - 1].id > from) total = sat_add(total, b[--i].sum);
  if (first) *first = i;
  return total;
}

/* The sum of the BUCKETS buckets ending with `now_id`. */
static inline int64_t ws_read(window_sums *w, int64_t now_id) {
  if (w->cached && w->cache_id == now_id) return w->cache_sum;
  const bucket *b = ws_buckets(w);
  uint32_t n = w->n, lo;
  int64_t total = 0;
  if (w->cached && now_id > w->cache_id && now_id - w->cache_id < BUCKETS && w->cache_sum < INT64_MAX) {
    /* The window slid forward a little: add the buckets that entered it,
     * subtract those that left, from the old window's first (exact:
     * nothing saturated). */
    total = sat_add(w->cache_sum, sum_back(b, n, w->cache_id, now_id, NULL));
    for (lo = w->lo; lo < n && b[lo].id <= now_id - BUCKETS; lo++) total -= b[lo].sum;
  } else {
    total = sum_back(b, n, now_id - BUCKETS, now_id, &lo);
  }
  w->cached = true;
  w->lo = (uint16_t)lo;
  w->cache_id = now_id;
  w->cache_sum = total;
  return total;
}

/* ---- distinct ------------------------------------------------------------------------ */

RARE static bool dist_reindex(entry *owner, item *e, uint32_t cap) {
  uint32_t *index = entry_resize(owner, NULL, 0, cap * sizeof *index);
  if (!index) return false;
  memset(index, 0, cap * sizeof *index);
  for (uint32_t i = 0; i < e->u.dist.n; i++) {
    uint32_t s = (uint32_t)e->u.dist.m[i].hash & (cap - 1);
    while (index[s]) s = (s + 1) & (cap - 1);
    index[s] = i + 1;
  }
  entry_release(owner, e->u.dist.index, e->u.dist.index_cap * sizeof *index);
  e->u.dist.index = index;
  e->u.dist.index_cap = cap;
  return true;
}

/* Drops members not seen in the KEEP buckets behind the key's newest. */
RARE static bool dist_compact(entry *owner, item *e) {
  uint32_t k = 0;
  for (uint32_t i = 0; i < e->u.dist.n; i++) {
    member *m = &e->u.dist.m[i];
    if (m->newest <= e->u.dist.newest - KEEP) {
      member_free(m);
      continue;
    }
    e->u.dist.m[k++] = *m;
  }
  e->u.dist.n = k;
  return !e->u.dist.index || dist_reindex(owner, e, e->u.dist.index_cap);
}

/* Forgets every member: the key's next event is KEEP or more buckets after
 * its newest, so none of them can be read any more (a key seen again
 * after a long pause). The arrays stay, for the members to come. */
static void dist_forget(item *e) {
  for (uint32_t i = 0; i < e->u.dist.n; i++)
    member_free(&e->u.dist.m[i]);
  e->u.dist.n = 0;
  if (e->u.dist.index) memset(e->u.dist.index, 0, e->u.dist.index_cap * sizeof *e->u.dist.index);
  window_sums *w = e->u.dist.by_newest;
  if (w) {
    w->start = w->n = 0;
    w->cached = false;
  }
}

/* Records a sighting of a known member in bucket `id`; false when out of
 * memory. */
static bool member_see(entry *owner, item *e, member *m, int64_t id) {
  if (id > m->newest) {
    /* The member moves to its new newest bucket (added there first, so
     * that an old bucket already dropped stays dropped). */
    if (e->u.dist.by_newest) {
      if (!ws_add(owner, e->u.dist.by_newest, id, 1)) return false;
      ws_add(owner, e->u.dist.by_newest, m->newest, -1); /* an existing bucket: no allocation */
    }
    int64_t shift = id - m->newest;
    m->seen = shift >= 128 ? 0 : m->seen << shift;
    m->seen |= 1;
    m->newest = id;
  } else if (m->newest - id < 128) {
    m->seen |= (unsigned __int128)1 << (m->newest - id);
  }
  return true;
}

#define DIST_LINEAR 8 /* members searched one by one before an index pays */

static member *dist_find(item *e, uint64_t h, const char *text, size_t len) {
  if (!e->u.dist.index) {
    for (uint32_t i = 0; i < e->u.dist.n; i++) {
      member *m = &e->u.dist.m[i];
      if (m->hash == h && m->len == len && str_same(member_text(m), text, m->len)) return m;
    }
    return NULL;
  }
  uint32_t cap = e->u.dist.index_cap;
  for (uint32_t s = (uint32_t)h & (cap - 1); e->u.dist.index[s]; s = (s + 1) & (cap - 1)) {
    member *m = &e->u.dist.m[e->u.dist.index[s] - 1];
    if (m->hash == h && m->len == len && str_same(member_text(m), text, m->len)) return m;
  }
  return NULL;
}

static bool dist_add(entry *owner, item *e, int64_t id, const char *text, size_t len) {
  if (len > UINT32_MAX) return false; /* a VM's strings never are */
  if (e->u.dist.n && id <= e->u.dist.newest - KEEP) return true;
  if (e->u.dist.n && id > e->u.dist.newest && (uint64_t)id - (uint64_t)e->u.dist.newest >= KEEP) dist_forget(e);
  if (!e->u.dist.n || id > e->u.dist.newest) e->u.dist.newest = id;
  uint64_t h = hash_bytes(text, len);
  member *found = dist_find(e, h, text, len);
  if (found) return member_see(owner, e, found, id);
  if (e->u.dist.n == e->u.dist.cap) {
    /* Before growing, forget members gone out of reach. */
    if (e->u.dist.n && !dist_compact(owner, e)) return false;
    if (e->u.dist.n == e->u.dist.cap) {
      uint32_t ncap = e->u.dist.cap ? 2 * e->u.dist.cap : 2;
      member *nm = entry_resize(owner, e->u.dist.m, e->u.dist.cap * sizeof *nm, ncap * sizeof *nm);
      if (!nm) return false;
      e->u.dist.m = nm;
      e->u.dist.cap = ncap;
    }
  }
  if (e->u.dist.n + 1 > DIST_LINEAR && 2 * (e->u.dist.n + 1) > e->u.dist.index_cap &&
      !dist_reindex(owner, e, e->u.dist.index_cap ? 2 * e->u.dist.index_cap : 32))
    return false;
  if (e->u.dist.index) {
    /* Many members: readings become bucket sums from now on. */
    if (!e->u.dist.by_newest) {
      if (!(e->u.dist.by_newest = calloc(1, sizeof *e->u.dist.by_newest))) return false;
      for (uint32_t i = 0; i < e->u.dist.n; i++)
        if (!ws_add(owner, e->u.dist.by_newest, e->u.dist.m[i].newest, 1)) return false;
    }
    if (!ws_add(owner, e->u.dist.by_newest, id, 1)) return false;
  }
  member *m = &e->u.dist.m[e->u.dist.n];
  *m = (member){.hash = h, .newest = id, .seen = 1, .len = (uint32_t)len};
  if (len <= MEMBER_INLINE) {
    memcpy(m->small, text, len);
  } else {
    if (!(m->text = malloc(len))) return false;
    memcpy(m->text, text, len);
  }
  e->u.dist.n++;
  if (e->u.dist.index) {
    uint32_t cap = e->u.dist.index_cap, s = (uint32_t)h & (cap - 1);
    while (e->u.dist.index[s]) s = (s + 1) & (cap - 1);
    e->u.dist.index[s] = e->u.dist.n;
  }
  return true;
}

static int64_t dist_read(item *e, int64_t now_id) {
  /* At or after the key's newest event every member's newest sighting is
   * its latest one up to now: it is in the window when that bucket is. */
  if (e->u.dist.by_newest && now_id >= e->u.dist.newest) return ws_read(e->u.dist.by_newest, now_id);
  /* Few members, or time went backwards (a member may have been seen in
   * the window and again after it): look at each. */
  int64_t count = 0, lo = now_id - BUCKETS + 1;
  for (uint32_t i = 0; i < e->u.dist.n; i++) {
    const member *m = &e->u.dist.m[i];
    if (m->newest <= now_id) { /* its newest sighting up to now is its newest */
      count += m->newest >= lo;
      continue;
    }
    /* Seen after now too: its bits say whether it was seen in the window. */
    int64_t jmin = m->newest - now_id, jmax = m->newest - lo; /* bit range to test */
    if (jmin >= 128) continue;
    if (jmax > 127) jmax = 127;
    unsigned __int128 mask = jmax - jmin + 1 >= 128 ? ~(unsigned __int128)0
                                                    : (((unsigned __int128)1 << (jmax - jmin + 1)) - 1);
    if (m->seen & (mask << jmin)) count++;
  }
  return count;
}

/* ---- the store ----------------------------------------------------------------------------- */

/* A session remembers the interned copy of each id it was asked about, by
 * the asker's address (store.h: ids do not change during a session), so
 * that items are found by comparing pointers. */
#define MEMOS 16 /* counters per request whose bucket a session remembers */

typedef struct mem_session {
  store_session base;
  struct known_id {
    const char *asked, *interned;
  } *ids;
  size_t nids, capids;
  /* Per op position (a program asks in the same order every request): the
   * id asked and its interned copy, and the bucket of the last request's
   * time with the span of time it covers. Traffic time moves little from
   * one request to the next: most fall in the same bucket and need no
   * division. */
  struct op_memo {
    const char *asked, *interned;
    int64_t window_ns, from, to, bucket;
  } memo[MEMOS];
  /* What mem_prefetch found, for the next begin: the key it was given
   * (the same bytes at the same address until that begin: store.h) and
   * its hash, not computed twice, and the entry whose lines it asked for
   * (a stale one costs a prefetch, no more). Taken by the first lookup. */
  struct {
    const char *key;
    size_t key_len;
    uint64_t hash;
    const entry *head;
  } fetched;
} mem_session;

static const char *session_id(mem_session *ss, const char *id);

/* The interned id of the op at position `i`. */
static inline const char *memo_id(mem_session *ss, size_t i, const char *id) {
  if (i >= MEMOS) return session_id(ss, id);
  struct op_memo *m = &ss->memo[i];
  if (m->asked != id) {
    const char *interned = session_id(ss, id);
    if (!interned) return NULL;
    *m = (struct op_memo){.asked = id, .interned = interned};
  }
  return m->interned;
}

/* memo_op() when the memo does not hold the op's id or `now`'s bucket:
 * computes the bucket (store_bucket()) and remembers its span. */
static const char *memo_op_slow(mem_session *ss, size_t i, const store_counter_op *op, int64_t now,
                                int64_t *bucket) {
  const char *cid = memo_id(ss, i, op->id);
  int64_t id = store_bucket(now, op->window_ns), width = op->window_ns / BUCKETS, from, to;
  if (cid && i < MEMOS && op->window_ns % BUCKETS == 0 && /* buckets of whole ns: [id * width, (id + 1) * width) */
      !__builtin_mul_overflow(id, width, &from) && !__builtin_add_overflow(from, width, &to)) {
    struct op_memo *m = &ss->memo[i];
    m->window_ns = op->window_ns;
    m->from = from;
    m->to = to;
    m->bucket = id;
  }
  *bucket = id;
  return cid;
}

/* The interned id of a counter op (memo_id()) and the bucket of `now` in
 * its window: the usual request finds both in one look at its memo. */
static inline const char *memo_op(mem_session *ss, size_t i, const store_counter_op *op, int64_t now,
                                  int64_t *bucket) {
  const struct op_memo *m = i < MEMOS ? &ss->memo[i] : NULL;
  if (m && m->asked == op->id && m->window_ns == op->window_ns && now >= m->from && now < m->to) {
    *bucket = m->bucket;
    return m->interned;
  }
  return memo_op_slow(ss, i, op, now, bucket);
}

RARE static const char *session_id(mem_session *ss, const char *id) {
  for (size_t i = 0; i < ss->nids; i++)
    if (ss->ids[i].asked == id) return ss->ids[i].interned;
  const char *interned = intern_id((mem_store *)ss->base.owner, id);
  if (!interned) return NULL;
  if (ss->nids == ss->capids) {
    size_t cap = ss->capids * 2 + 8;
    struct known_id *ids = realloc(ss->ids, cap * sizeof *ids);
    if (!ids) return interned; /* not remembered: interned again next time */
    ss->ids = ids;
    ss->capids = cap;
  }
  ss->ids[ss->nids++] = (struct known_id){id, interned};
  return interned;
}

/* The entry of the key being worked on, with its shard locked. Consecutive
 * operations on the same key (a request's counters usually share one)
 * reuse it: one lookup, one lock. */
typedef struct cursor {
  mem_store *ms;
  mem_session *ss;
  shard *sh;                 /* locked, or NULL */
  entry *e;                  /* the key's entry, or NULL while it has none */
  entry **link;              /* the pointer to e in its hash chain */
  ident k;                   /* the key, and its hash */
  int64_t now;
  store_report *r;
} cursor;

static void cursor_release(cursor *c) {
  if (c->sh) shard_lock_give(&c->sh->lock);
  c->sh = NULL;
}

/* Moves to `key`; creates its entry when `create`. NULL: the key has no
 * entry (or, with `create`, out of memory). */
static entry *cursor_move(cursor *c, const char *key, size_t key_len, bool create) {
  bool same = c->sh && key_len == c->k.key_len && memcmp(key, c->k.key, key_len) == 0;
  if (!same) {
    cursor_release(c);
    mem_session *ss = c->ss;
    bool fetched = key == ss->fetched.key && key_len == ss->fetched.key_len;
    c->k = fetched ? (ident){key, key_len, ss->fetched.hash} : make_ident(key, key_len);
    c->sh = shard_of(c->ms, c->k.hash);
    shard_lock_take(&c->sh->lock);
    c->e = shard_find(c->sh, &c->k, &c->link, fetched ? ss->fetched.head : NULL);
    ss->fetched.key = NULL;
  }
  if (!c->e && create) c->e = shard_insert(c->ms, c->sh, &c->k, c->now, c->r, &c->link);
  return c->e;
}

static inline entry *cursor_at(cursor *c, const char *key, size_t key_len, bool create) {
  if (c->e && key == c->k.key && key_len == c->k.key_len) return c->e; /* the same key string */
  return cursor_move(c, key, key_len, create);
}


RARE static int out_of_memory(store_report *r) {
  snprintf(r->message, sizeof r->message, "memory store: out of memory");
  return -1;
}

/* ---- growing an entry --------------------------------------------------------------- */

/* Moves (to != NULL) or measures (to NULL) one array of `from`'s spare
 * area; arrays on the heap stay where they are. */
static void *move_array(entry *to, entry *from, void *p, size_t n, size_t *live) {
  if (!p || !in_spare(from, p)) return p;
  n = round16(n);
  *live += n;
  if (!to) return p;
  char *q = entry_spare(to) + to->spare_used;
  memcpy(q, p, n);
  to->spare_used += (uint16_t)n;
  return q;
}

/* Every array of an item that may live in the spare area. */
static void item_arrays(entry *to, entry *from, item *it, size_t *live) {
  if (it->kind == ENT_SUM) {
    it->u.sum.b = move_array(to, from, it->u.sum.b, it->u.sum.cap * sizeof(bucket), live);
  } else if (it->kind == ENT_DISTINCT) {
    window_sums *w = it->u.dist.by_newest;
    if (w) w->b = move_array(to, from, w->b, w->cap * sizeof(bucket), live);
    it->u.dist.m = move_array(to, from, it->u.dist.m, it->u.dist.cap * sizeof(member), live);
    it->u.dist.index = move_array(to, from, it->u.dist.index, it->u.dist.index_cap * sizeof(uint32_t), live);
  }
}

/* The spare bytes the next event of an item may ask for (its arrays that
 * are full, doubled). */
static size_t ws_growth(const window_sums *w) {
  return w->start + w->n == w->cap && w->start == 0 ? round16(2 * (w->cap ? w->cap : 2) * sizeof(bucket)) : 0;
}

static size_t item_growth(const item *it) {
  if (it->kind == ENT_SUM) return ws_growth(&it->u.sum);
  if (it->kind != ENT_DISTINCT) return 0;
  uint32_t n = it->u.dist.n;
  size_t need = it->u.dist.by_newest ? ws_growth(it->u.dist.by_newest)
                : n + 1 > DIST_LINEAR ? round16(2 * (n + 1) * sizeof(bucket)) /* the sums start */
                                      : 0;
  if (n == it->u.dist.cap) need += round16(2 * (n ? n : 1) * sizeof(member));
  if (n + 1 > DIST_LINEAR && 2 * (n + 1) > it->u.dist.index_cap)
    need += round16((it->u.dist.index_cap ? 2 * it->u.dist.index_cap : 32) * sizeof(uint32_t));
  return need;
}

/* Makes room for `need` more bytes in the spare area of the cursor's
 * entry, before one of its arrays grows. When there is no room, or when
 * arrays that grew before left more than a quarter of dead space behind
 * them, the entry is copied into a new block with room for twice what it
 * needs, its live arrays packed right after its items, and put in the old
 * one's place in the hash chain and LRU list: a key's state then lies in
 * the fewest cache lines, the first of which mem_prefetch asks for.
 * Returns the entry, moved or not (not when it would pass SPARE_MAX or
 * memory is short: its arrays then go to the heap). */
RARE static entry *entry_reserve(cursor *c, size_t need) {
  entry *old = c->e;
  size_t live = 0;
  for (uint32_t i = 0; i < old->nitems; i++) item_arrays(NULL, old, &old->items[i], &live);
  if (old->spare_used + need <= old->spare_cap && old->spare_used - live <= live / 4) return old;
  size_t cap = round16(2 * (live + need));
  if (cap < SPARE_MIN) cap = SPARE_MIN;
  if (cap > SPARE_MAX) {
    if (live + need > SPARE_MAX) return old;
    cap = SPARE_MAX;
  }
  bool lru = c->sh->lru;
  entry *e = malloc(entry_size(old->key_len, cap, lru));
  if (!e) return old;
  memcpy(e, old, (size_t)(entry_spare(old) - (char *)old)); /* header, key, inline items */
  e->spare_cap = (uint16_t)cap;
  e->spare_used = 0;
  if (old->items == entry_inline_items(old)) e->items = entry_inline_items(e);
  live = 0;
  for (uint32_t i = 0; i < e->nitems; i++) item_arrays(e, old, &e->items[i], &live);
  if (lru) {
    lru_links *l = entry_lru(e);
    *l = *entry_lru(old);
    l->owner = e;
    l->prev->next = l;
    l->next->prev = l;
  }
  set_link(c->link, e);
  free(old);
  return c->e = e;
}

/* ---- operations ---------------------------------------------------------------------- */

/* Adds the op's event (when op->add) and, when `read`, reads the counter;
 * `i` is the op's position in the request's list. */
static int counter_op(cursor *c, store_counter_op *op, bool read, uint32_t i) {
  char kind = op->mode == STORE_DISTINCT ? ENT_DISTINCT : ENT_SUM;
  int64_t id;
  const char *cid = memo_op(c->ss, i, op, c->now, &id);
  if (!cid) return out_of_memory(c->r);
  entry *e = cursor_at(c, op->key, op->key_len, op->add);
  item *it = e ? entry_item(e, kind, cid, op->add, op->window_ns, i) : NULL;
  if (op->add) {
    if (!it) return out_of_memory(c->r);
    size_t need = item_growth(it);
    if (need) { /* an array grows: the entry may move (entry_reserve) */
      e = entry_reserve(c, need);
      it = entry_item(e, kind, cid, false, 0, i);
    }
    bool ok = kind == ENT_SUM ? ws_add(e, &it->u.sum, id, op->amount) : dist_add(e, it, id, op->member, op->member_len);
    if (!ok) return out_of_memory(c->r);
  }
  if (read) op->value = !it ? 0 : kind == ENT_SUM ? ws_read(&it->u.sum, id) : dist_read(it, id);
  return 0;
}

/* Flattened: every call it makes into this file is inlined, so that a
 * request's few counter ops pay no calls; the RARE paths (growing,
 * inserting, sweeping) stay calls, which halves its code. */
__attribute__((flatten)) static int mem_begin(store_session *ss, int64_t now, store_counter_op *ops,
                                              size_t nops, store_suspend_op *susp, size_t nsusp,
                                              store_report *r) {
  cursor c = {(mem_store *)ss->owner, (mem_session *)ss, NULL, NULL, NULL, {NULL, 0, 0}, now, r};
  int rc = 0;
  for (size_t i = 0; i < nops && rc == 0; i++) rc = counter_op(&c, &ops[i], true, (uint32_t)i);
  for (size_t i = 0; i < nsusp && rc == 0; i++) {
    const char *rule = memo_id(c.ss, nops + i, susp[i].rule);
    if (!rule) {
      rc = out_of_memory(r);
      break;
    }
    entry *e = cursor_at(&c, susp[i].key, susp[i].key_len, false);
    item *it = e ? entry_item(e, ENT_SUSPENSION, rule, false, 0, (uint32_t)(nops + i)) : NULL;
    susp[i].active = it && it->u.susp.start <= now && now < it->u.susp.until;
  }
  cursor_release(&c);
  return rc;
}

static int mem_commit(store_session *ss, int64_t now, const store_counter_op *ops, size_t nops,
                      const store_suspend_op *susp, size_t nsusp, store_report *r) {
  cursor c = {(mem_store *)ss->owner, (mem_session *)ss, NULL, NULL, NULL, {NULL, 0, 0}, now, r};
  int rc = 0;
  for (size_t i = 0; i < nops && rc == 0; i++) {
    if (!ops[i].add) continue;
    store_counter_op op = ops[i];
    rc = counter_op(&c, &op, false, (uint32_t)i);
  }
  for (size_t i = 0; i < nsusp && rc == 0; i++) {
    const char *rule = memo_id(c.ss, nops + i, susp[i].rule);
    entry *e = rule ? cursor_at(&c, susp[i].key, susp[i].key_len, true) : NULL;
    item *it = e ? entry_item(e, ENT_SUSPENSION, rule, true, 0, (uint32_t)(nops + i)) : NULL;
    if (!it) {
      rc = out_of_memory(r);
      break;
    }
    /* A new suspension of the same rule and key replaces the old one. */
    it->u.susp.start = now;
    it->u.susp.until = susp[i].until_ns;
  }
  cursor_release(&c);
  return rc;
}

static store_session *mem_open_session(store *s, char *err, size_t errcap) {
  return store_session_new(s, sizeof(mem_session), err, errcap);
}

static void mem_close_session(store_session *ss) {
  free(((mem_session *)ss)->ids);
  free(ss);
}

static void mem_destroy(store *s) {
  mem_store *ms = (mem_store *)s;
  for (size_t i = 0; i < ms->nshards; i++) {
    shard *sh = &ms->shards[i];
    for (slot_table *t = sh->table, *older; t; t = older) {
      for (size_t j = 0; t == sh->table && j < t->n; j++)
        for (entry *e = t->slots[j], *next; e; e = next) {
          next = e->next;
          entry_free(e);
        }
      older = t->older;
      free(t);
    }
  }
  for (size_t i = 0; i < ms->nids; i++) free(ms->ids[i]);
  free(ms->ids);
  pthread_mutex_destroy(&ms->ids_lock);
  free(ms);
}

/* Asks for the cache lines of the entry at the head of the key's chain
 * (usually the key's own): a request's rules then run while they arrive.
 * Without the lock (see slot_table): the head read may be one a writer is
 * just replacing, or an entry just freed, which costs a useless prefetch
 * at worst (a prefetch never faults). */
static void mem_prefetch(store_session *ss, const char *key, size_t key_len) {
  mem_store *ms = (mem_store *)ss->owner;
  uint64_t h = hash_bytes(key, key_len);
  shard *sh = shard_of(ms, h);
  slot_table *t = __atomic_load_n(&sh->table, __ATOMIC_ACQUIRE);
  entry *e = __atomic_load_n(&t->slots[h & (t->n - 1)], __ATOMIC_RELAXED);
  if (e) {
    __builtin_prefetch(e, 1);
    prefetch_entry(e);
  }
  mem_session *session = (mem_session *)ss;
  session->fetched.key = key;
  session->fetched.key_len = key_len;
  session->fetched.hash = h;
  session->fetched.head = e;
}

static const store_class memory_class = {
    "memory", mem_open_session, mem_close_session, mem_begin, mem_commit, mem_destroy, mem_prefetch,
};

store *store_memory_new(size_t max_keys) {
  size_t nshards = max_keys ? 1 : SHARDS;
  _Static_assert((SHARDS & (SHARDS - 1)) == 0, "shard_of masks");
  mem_store *ms = calloc(1, sizeof *ms + nshards * sizeof(shard));
  if (!ms) return NULL;
  ms->base.cls = &memory_class;
  ms->base.refs = 1;
  ms->max_keys = max_keys;
  ms->nshards = nshards;
  if (pthread_mutex_init(&ms->ids_lock, NULL) != 0) {
    free(ms);
    return NULL;
  }
  for (size_t i = 0; i < nshards; i++) {
    shard *sh = &ms->shards[i];
    sh->table = slot_table_new(64, NULL);
    sh->lru = max_keys != 0;
    sh->lru_list.next = sh->lru_list.prev = &sh->lru_list;
    sh->sweep_at = 16;
    if (!sh->table) {
      ms->nshards = i;
      mem_destroy(&ms->base);
      return NULL;
    }
  }
  return &ms->base;
}

size_t store_memory_entries(store *s) {
  mem_store *ms = (mem_store *)s;
  size_t n = 0;
  for (size_t i = 0; i < ms->nshards; i++) {
    shard_lock_take(&ms->shards[i].lock);
    n += ms->shards[i].count;
    shard_lock_give(&ms->shards[i].lock);
  }
  return n;
}
