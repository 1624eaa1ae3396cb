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
 * Sums keep their non-empty buckets in a short sorted array; distinct
 * counters keep, per member, the newest bucket it was seen in and a 128-bit
 * map of the buckets before it. Both are exact under SPEC 5.3's rule for
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

#define BUCKETS 60           /* per window (SPEC 5.3) */
#define KEEP (2 * BUCKETS)   /* buckets kept behind a key's newest one */
#define SHARDS 256          /* few threads ever want the same lock */

typedef enum entry_kind { ENT_SUM = 'c', ENT_DISTINCT = 'd', ENT_SUSPENSION = 's' } entry_kind;

typedef struct bucket {
  int64_t id;
  int64_t sum;
} bucket;

#define MEMBER_INLINE 16     /* member texts this short live in the member */

typedef struct member {
  uint64_t hash;
  int64_t newest;            /* bucket */
  unsigned __int128 seen;    /* bit j: seen in bucket newest - j */
  char *text;                /* NULL: the text is in `small` */
  size_t len;
  char small[MEMBER_INLINE];
} member;

static const char *member_text(const member *m) { return m->text ? m->text : m->small; }

/* A counter or a suspension under a key. */
typedef struct item {
  uint8_t kind;              /* entry_kind */
  const char *id_seen;       /* an id pointer known to equal `id` */
  const char *id;            /* the counter's id or the suspend rule's (interned) */
  int64_t window_ns;
  int64_t dead_at;           /* ns: from then on nothing here can be read */
  union {
    struct {                 /* ENT_SUM: sorted by id, in `b` or (b NULL) in `small` */
      bucket *b;
      bucket small[2];       /* most keys see few buckets: no allocation */
      uint32_t n, cap;
      bool cached;           /* cache_sum is the reading at bucket cache_id */
      int64_t cache_id, cache_sum;
    } sum;
    struct {                 /* ENT_DISTINCT */
      member *m;
      uint32_t n, cap;
      uint32_t *index;       /* open addressing: member index + 1, or 0;
                                NULL while a linear search is as quick */
      uint32_t index_cap;    /* a power of two, >= 2n */
      int64_t newest;        /* bucket of the key's newest event */
    } dist;
    struct {                 /* ENT_SUSPENSION */
      int64_t start, until;
    } susp;
  } u;
} item;

typedef struct entry {
  struct entry *next;        /* hash chain */
  struct entry *lru_prev, *lru_next;
  uint64_t hash;
  int64_t dead_at;           /* the latest of its items' */
  item *items;               /* `inline_items` until there are more */
  uint32_t nitems, capitems;
  item inline_items[4];      /* a policy seldom keeps more under one key */
  size_t key_len;
  char key[];
} entry;

/* Cache-line aligned: threads locking neighbouring shards must not share
 * a line. */
typedef struct shard {
  _Alignas(64) pthread_mutex_t lock;
  entry **slots;
  size_t nslots, count;
  size_t sweep_at;           /* sweep when count passes this */
  bool lru;                  /* keep the LRU list (a store with a key cap) */
  entry lru_list;            /* sentinel: lru_list.lru_next is the most recent */
} shard;

typedef struct mem_store {
  store base;
  pthread_mutex_t ids_lock;  /* the counter and rule ids items name, kept */
  char **ids;                /* once each until the store goes */
  size_t nids, capids;
  size_t max_keys;           /* 0: no cap */
  size_t nshards;
  shard shards[];
} mem_store;

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

static void item_free(item *it) {
  if (it->kind == ENT_SUM) {
    free(it->u.sum.b);
  } else if (it->kind == ENT_DISTINCT) {
    for (uint32_t i = 0; i < it->u.dist.n; i++) free(it->u.dist.m[i].text);
    free(it->u.dist.m);
    free(it->u.dist.index);
  }
}

static void entry_free(entry *e) {
  for (uint32_t i = 0; i < e->nitems; i++) item_free(&e->items[i]);
  if (e->items != e->inline_items) free(e->items);
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
  e->lru_prev->lru_next = e->lru_next;
  e->lru_next->lru_prev = e->lru_prev;
}

static void lru_push(shard *sh, entry *e) {
  if (!sh->lru) return;
  e->lru_next = sh->lru_list.lru_next;
  e->lru_prev = &sh->lru_list;
  sh->lru_list.lru_next->lru_prev = e;
  sh->lru_list.lru_next = e;
}

static void shard_remove(shard *sh, entry *e) {
  entry **pp = &sh->slots[e->hash & (sh->nslots - 1)];
  while (*pp != e) pp = &(*pp)->next;
  *pp = e->next;
  lru_unlink(sh, e);
  sh->count--;
  entry_free(e);
}

static bool shard_grow(shard *sh) {
  size_t n = sh->nslots * 2;
  entry **slots = calloc(n, sizeof *slots);
  if (!slots) return false;
  for (size_t i = 0; i < sh->nslots; i++)
    for (entry *e = sh->slots[i], *next; e; e = next) {
      next = e->next;
      e->next = slots[e->hash & (n - 1)];
      slots[e->hash & (n - 1)] = e;
    }
  free(sh->slots);
  sh->slots = slots;
  sh->nslots = n;
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
  return e->hash == k->hash && e->key_len == k->key_len && memcmp(e->key, k->key, k->key_len) == 0;
}

static entry *shard_find(shard *sh, const ident *k) {
  for (entry *e = sh->slots[k->hash & (sh->nslots - 1)]; e; e = e->next)
    if (ident_is(e, k)) {
      lru_unlink(sh, e);
      lru_push(sh, e);
      return e;
    }
  return NULL;
}

/* `key "a1" (rpm, ips)` for an eviction notice: the names of its counters
 * (a counter's id is "NAME/KIND/WINDOW") and suspensions. */
static void describe(const entry *e, char *buf, size_t cap) {
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

/* Frees the entries that no reading at `now` or later can use. (Not the
 * newest time ever seen: replayed traffic that is not in time order would
 * then lose the keys of its earlier stretches.) Run when the shard has
 * grown by half since the last sweep, so its cost is spread over the
 * inserts and the shard holds at most 1.5 times its live entries. */
static void shard_sweep(shard *sh, int64_t now) {
  for (size_t i = 0; i < sh->nslots; i++)
    for (entry *e = sh->slots[i], *next; e; e = next) {
      next = e->next;
      if (e->dead_at <= now) shard_remove(sh, e);
    }
  sh->sweep_at = sh->count + (sh->count / 2 > 16 ? sh->count / 2 : 16);
}

static entry *shard_insert(mem_store *ms, shard *sh, const ident *k, int64_t now, store_report *r) {
  if (sh->count >= sh->sweep_at) shard_sweep(sh, now);
  size_t cap = ms->max_keys;
  while (cap && sh->count >= cap && sh->lru_list.lru_prev != &sh->lru_list) {
    entry *victim = sh->lru_list.lru_prev;
    if (r->notice) {
      char what[200], msg[320];
      describe(victim, what, sizeof what);
      int n = snprintf(msg, sizeof msg, "state store full (max_keys %zu): evicted the least recently used %s",
                       cap, what);
      r->notice(r->notice_ctx, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
    }
    shard_remove(sh, victim);
  }
  if (sh->count >= sh->nslots && !shard_grow(sh)) return NULL;
  entry *e = calloc(1, sizeof *e + k->key_len);
  if (!e) return NULL;
  e->hash = k->hash;
  e->items = e->inline_items;
  e->capitems = sizeof e->inline_items / sizeof e->inline_items[0];
  e->key_len = k->key_len;
  memcpy(e->key, k->key, k->key_len);
  e->next = sh->slots[k->hash & (sh->nslots - 1)];
  sh->slots[k->hash & (sh->nslots - 1)] = e;
  lru_push(sh, e);
  sh->count++;
  return e;
}

/* The item (kind, id) of an entry; a new one when `create`. NULL when
 * absent (or out of memory). */
static item *entry_item(mem_store *ms, entry *e, char kind, const char *id, bool create, int64_t window_ns) {
  for (uint32_t i = 0; i < e->nitems; i++) {
    item *it = &e->items[i];
    if (it->kind == kind && (it->id_seen == id || strcmp(it->id, id) == 0)) return it;
  }
  if (!create) return NULL;
  if (e->nitems == e->capitems) {
    uint32_t cap = 2 * e->capitems;
    item *ni = e->items == e->inline_items ? malloc(cap * sizeof *ni) : realloc(e->items, cap * sizeof *ni);
    if (!ni) return NULL;
    if (e->items == e->inline_items) memcpy(ni, e->inline_items, sizeof e->inline_items);
    e->items = ni;
    e->capitems = cap;
  }
  const char *interned = intern_id(ms, id);
  if (!interned) return NULL;
  item *it = &e->items[e->nitems++];
  memset(it, 0, sizeof *it);
  it->kind = (uint8_t)kind;
  it->id_seen = id;
  it->id = interned;
  it->window_ns = window_ns;
  return it;
}


/* The time at which bucket `id` of a window starts, saturating. */
static int64_t bucket_start(int64_t id, int64_t window_ns) {
  int64_t width = window_ns / BUCKETS;
  if (window_ns % BUCKETS == 0 && id > INT64_MIN / width && id < INT64_MAX / width)
    return id * width; /* the usual case: no 128-bit division */
  __int128 t = (__int128)id * window_ns / BUCKETS;
  if (t > INT64_MAX) return INT64_MAX;
  if (t < INT64_MIN) return INT64_MIN;
  return (int64_t)t;
}

static inline int64_t sat_add(int64_t a, int64_t b) {
  return a > INT64_MAX - b ? INT64_MAX : a + b;
}

/* ---- sums ------------------------------------------------------------------------- */

static bucket *sum_buckets(item *e) { return e->u.sum.b ? e->u.sum.b : e->u.sum.small; }

static bool sum_add(item *e, int64_t id, int64_t amount) {
  if (!e->u.sum.b && !e->u.sum.cap) e->u.sum.cap = 2; /* `small` */
  bucket *b = sum_buckets(e);
  uint32_t n = e->u.sum.n;
  int64_t newest = n ? b[n - 1].id : id;
  if (id <= newest - KEEP) return true; /* older than anything kept: dropped */
  uint32_t at = n;
  while (at > 0 && b[at - 1].id > id) at--;
  /* A hot key is read many times per bucket: keep the last reading up to
   * date instead of summing 60 buckets again (amounts are >= 0, so a
   * saturating sum does not depend on the order of additions). */
  if (e->u.sum.cached && id <= e->u.sum.cache_id && id > e->u.sum.cache_id - BUCKETS)
    e->u.sum.cache_sum = sat_add(e->u.sum.cache_sum, amount);
  if (at > 0 && b[at - 1].id == id) {
    b[at - 1].sum = sat_add(b[at - 1].sum, amount);
    return true;
  }
  if (n == e->u.sum.cap) {
    uint32_t cap = 2 * n;
    bucket *nb = e->u.sum.b ? realloc(b, cap * sizeof *nb) : malloc(cap * sizeof *nb);
    if (!nb) return false;
    if (!e->u.sum.b) memcpy(nb, e->u.sum.small, sizeof e->u.sum.small);
    e->u.sum.b = b = nb;
    e->u.sum.cap = cap;
  }
  memmove(b + at + 1, b + at, (n - at) * sizeof *b);
  b[at] = (bucket){id, amount};
  n++;
  /* Drop the buckets that fell KEEP behind the newest. */
  uint32_t drop = 0;
  while (drop < n && b[drop].id <= b[n - 1].id - KEEP) drop++;
  if (drop) {
    memmove(b, b + drop, (n - drop) * sizeof *b);
    e->u.sum.cached = false; /* the cached window may have held them */
  }
  e->u.sum.n = n - drop;
  e->dead_at = bucket_start(b[e->u.sum.n - 1].id + KEEP, e->window_ns);
  return true;
}

/* The first bucket with an id above `id` (the buckets are sorted). */
static uint32_t first_after(const bucket *b, uint32_t n, int64_t id) {
  uint32_t lo = 0, hi = n;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (b[mid].id <= id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

static int64_t sum_read(item *e, int64_t now_id) {
  if (e->u.sum.cached && e->u.sum.cache_id == now_id) return e->u.sum.cache_sum;
  const bucket *b = sum_buckets(e);
  uint32_t n = e->u.sum.n;
  int64_t total = 0;
  if (e->u.sum.cached && now_id > e->u.sum.cache_id && now_id - e->u.sum.cache_id < BUCKETS &&
      e->u.sum.cache_sum < INT64_MAX) {
    /* The window slid forward a little: add the buckets that entered it,
     * subtract those that left (exact: nothing saturated). */
    int64_t old = e->u.sum.cache_id;
    total = e->u.sum.cache_sum;
    for (uint32_t i = first_after(b, n, old); i < n && b[i].id <= now_id; i++) total = sat_add(total, b[i].sum);
    for (uint32_t i = first_after(b, n, old - BUCKETS); i < n && b[i].id <= now_id - BUCKETS; i++)
      total -= b[i].sum;
  } else {
    for (uint32_t i = first_after(b, n, now_id - BUCKETS); i < n && b[i].id <= now_id; i++)
      total = sat_add(total, b[i].sum);
  }
  e->u.sum.cached = true;
  e->u.sum.cache_id = now_id;
  e->u.sum.cache_sum = total;
  return total;
}

/* ---- distinct ------------------------------------------------------------------------ */

static bool dist_reindex(item *e, uint32_t cap) {
  uint32_t *index = calloc(cap, sizeof *index);
  if (!index) return false;
  for (uint32_t i = 0; i < e->u.dist.n; i++) {
    uint32_t s = (uint32_t)e->u.dist.m[i].hash & (cap - 1);
    while (index[s]) s = (s + 1) & (cap - 1);
    index[s] = i + 1;
  }
  free(e->u.dist.index);
  e->u.dist.index = index;
  e->u.dist.index_cap = cap;
  return true;
}

/* Drops members not seen in the KEEP buckets behind the key's newest. */
static bool dist_compact(item *e) {
  uint32_t k = 0;
  for (uint32_t i = 0; i < e->u.dist.n; i++) {
    member *m = &e->u.dist.m[i];
    if (m->newest <= e->u.dist.newest - KEEP) {
      free(m->text);
      continue;
    }
    e->u.dist.m[k++] = *m;
  }
  e->u.dist.n = k;
  return !e->u.dist.index || dist_reindex(e, e->u.dist.index_cap);
}

static void member_see(member *m, int64_t id) {
  if (id > m->newest) {
    int64_t shift = id - m->newest;
    m->seen = shift >= 128 ? 0 : m->seen << shift;
    m->seen |= 1;
    m->newest = id;
  } else if (m->newest - id < 128) {
    m->seen |= (unsigned __int128)1 << (m->newest - id);
  }
}

#define DIST_LINEAR 8 /* members searched one by one before an index pays */

static member *dist_find(item *e, uint64_t h, const char *text, size_t len) {
  if (!e->u.dist.index) {
    for (uint32_t i = 0; i < e->u.dist.n; i++) {
      member *m = &e->u.dist.m[i];
      if (m->hash == h && m->len == len && memcmp(member_text(m), text, len) == 0) return m;
    }
    return NULL;
  }
  uint32_t cap = e->u.dist.index_cap;
  for (uint32_t s = (uint32_t)h & (cap - 1); e->u.dist.index[s]; s = (s + 1) & (cap - 1)) {
    member *m = &e->u.dist.m[e->u.dist.index[s] - 1];
    if (m->hash == h && m->len == len && memcmp(member_text(m), text, len) == 0) return m;
  }
  return NULL;
}

static bool dist_add(item *e, int64_t id, const char *text, size_t len) {
  if (e->u.dist.n && id <= e->u.dist.newest - KEEP) return true;
  if (!e->u.dist.n || id > e->u.dist.newest) e->u.dist.newest = id;
  uint64_t h = hash_bytes(text, len);
  member *found = dist_find(e, h, text, len);
  if (found) {
    member_see(found, id);
    e->dead_at = bucket_start(e->u.dist.newest + KEEP, e->window_ns);
    return true;
  }
  if (e->u.dist.n == e->u.dist.cap) {
    /* Before growing, forget members gone out of reach. */
    if (e->u.dist.n && !dist_compact(e)) return false;
    if (e->u.dist.n == e->u.dist.cap) {
      uint32_t ncap = e->u.dist.cap ? 2 * e->u.dist.cap : 2;
      member *nm = realloc(e->u.dist.m, ncap * sizeof *nm);
      if (!nm) return false;
      e->u.dist.m = nm;
      e->u.dist.cap = ncap;
    }
  }
  if (e->u.dist.n + 1 > DIST_LINEAR && 2 * (e->u.dist.n + 1) > e->u.dist.index_cap &&
      !dist_reindex(e, e->u.dist.index_cap ? 2 * e->u.dist.index_cap : 32))
    return false;
  member *m = &e->u.dist.m[e->u.dist.n];
  *m = (member){h, id, 1, NULL, len, {0}};
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
  e->dead_at = bucket_start(e->u.dist.newest + KEEP, e->window_ns);
  return true;
}

static int64_t dist_read(const item *e, int64_t now_id) {
  int64_t count = 0;
  for (uint32_t i = 0; i < e->u.dist.n; i++) {
    const member *m = &e->u.dist.m[i];
    int64_t hi = now_id < m->newest ? now_id : m->newest, lo = now_id - BUCKETS + 1;
    if (hi < lo) continue;
    int64_t jmin = m->newest - hi, jmax = m->newest - lo; /* bit range to test */
    if (jmin >= 128) continue;
    if (jmax > 127) jmax = 127;
    unsigned __int128 mask = jmax - jmin + 1 >= 128 ? ~(unsigned __int128)0
                                                    : (((unsigned __int128)1 << (jmax - jmin + 1)) - 1);
    if (m->seen & (mask << jmin)) count++;
  }
  return count;
}

/* ---- the store ----------------------------------------------------------------------------- */




/* The entry of the key being worked on, with its shard locked. Consecutive
 * operations on the same key (a request's counters usually share one)
 * reuse it: one lookup, one lock. */
typedef struct cursor {
  mem_store *ms;
  shard *sh;                 /* locked, or NULL */
  entry *e;                  /* the key's entry, or NULL while it has none */
  ident k;                   /* the key, and its hash */
  int64_t now;
  store_report *r;
} cursor;

static void cursor_release(cursor *c) {
  if (c->sh) pthread_mutex_unlock(&c->sh->lock);
  c->sh = NULL;
}

/* Moves to `key`; creates its entry when `create`. NULL: the key has no
 * entry (or, with `create`, out of memory). */
static entry *cursor_at(cursor *c, const char *key, size_t key_len, bool create) {
  bool same = c->sh && key_len == c->k.key_len && (key == c->k.key || memcmp(key, c->k.key, key_len) == 0);
  if (!same) {
    cursor_release(c);
    c->k = make_ident(key, key_len);
    c->sh = &c->ms->shards[(c->k.hash >> 40) % c->ms->nshards];
    pthread_mutex_lock(&c->sh->lock);
    c->e = shard_find(c->sh, &c->k);
  }
  if (!c->e && create) c->e = shard_insert(c->ms, c->sh, &c->k, c->now, c->r);
  return c->e;
}

static void note_dead_at(entry *e, const item *it) {
  if (it->dead_at > e->dead_at) e->dead_at = it->dead_at;
}

static int out_of_memory(store_report *r) {
  snprintf(r->message, sizeof r->message, "memory store: out of memory");
  return -1;
}

/* Adds the op's event (when op->add) and, when `read`, reads the counter. */
static int counter_op(cursor *c, store_counter_op *op, bool read) {
  char kind = op->mode == STORE_DISTINCT ? ENT_DISTINCT : ENT_SUM;
  int64_t id = store_bucket(c->now, op->window_ns);
  entry *e = cursor_at(c, op->key, op->key_len, op->add);
  item *it = e ? entry_item(c->ms, e, kind, op->id, op->add, op->window_ns) : NULL;
  if (op->add) {
    if (!it) return out_of_memory(c->r);
    bool ok = kind == ENT_SUM ? sum_add(it, id, op->amount) : dist_add(it, id, op->member, op->member_len);
    if (!ok) return out_of_memory(c->r);
    note_dead_at(e, it);
  }
  if (read) op->value = !it ? 0 : kind == ENT_SUM ? sum_read(it, id) : dist_read(it, id);
  return 0;
}

static int mem_begin(store_session *ss, int64_t now, store_counter_op *ops, size_t nops,
                     store_suspend_op *susp, size_t nsusp, store_report *r) {
  cursor c = {(mem_store *)ss->owner, NULL, NULL, {NULL, 0, 0}, now, r};
  int rc = 0;
  for (size_t i = 0; i < nops && rc == 0; i++) rc = counter_op(&c, &ops[i], true);
  for (size_t i = 0; i < nsusp && rc == 0; i++) {
    entry *e = cursor_at(&c, susp[i].key, susp[i].key_len, false);
    item *it = e ? entry_item(c.ms, e, ENT_SUSPENSION, susp[i].rule, false, 0) : NULL;
    susp[i].active = it && it->u.susp.start <= now && now < it->u.susp.until;
  }
  cursor_release(&c);
  return rc;
}

static int mem_commit(store_session *ss, int64_t now, const store_counter_op *ops, size_t nops,
                      const store_suspend_op *susp, size_t nsusp, store_report *r) {
  cursor c = {(mem_store *)ss->owner, NULL, NULL, {NULL, 0, 0}, now, r};
  int rc = 0;
  for (size_t i = 0; i < nops && rc == 0; i++) {
    if (!ops[i].add) continue;
    store_counter_op op = ops[i];
    rc = counter_op(&c, &op, false);
  }
  for (size_t i = 0; i < nsusp && rc == 0; i++) {
    entry *e = cursor_at(&c, susp[i].key, susp[i].key_len, true);
    item *it = e ? entry_item(c.ms, e, ENT_SUSPENSION, susp[i].rule, true, 0) : NULL;
    if (!it) {
      rc = out_of_memory(r);
      break;
    }
    /* A new suspension of the same rule and key replaces the old one. */
    it->u.susp.start = now;
    it->u.susp.until = susp[i].until_ns;
    it->dead_at = susp[i].until_ns;
    note_dead_at(e, it);
  }
  cursor_release(&c);
  return rc;
}

static store_session *mem_open_session(store *s, char *err, size_t errcap) {
  store_session *ss = malloc(sizeof *ss);
  if (!ss) {
    snprintf(err, errcap, "out of memory");
    return NULL;
  }
  ss->owner = s;
  return ss;
}

static void mem_close_session(store_session *ss) { free(ss); }

static void mem_destroy(store *s) {
  mem_store *ms = (mem_store *)s;
  for (size_t i = 0; i < ms->nshards; i++) {
    shard *sh = &ms->shards[i];
    for (size_t j = 0; j < sh->nslots; j++)
      for (entry *e = sh->slots[j], *next; e; e = next) {
        next = e->next;
        entry_free(e);
      }
    free(sh->slots);
    pthread_mutex_destroy(&sh->lock);
  }
  for (size_t i = 0; i < ms->nids; i++) free(ms->ids[i]);
  free(ms->ids);
  pthread_mutex_destroy(&ms->ids_lock);
  free(ms);
}

static const store_class memory_class = {
    "memory", mem_open_session, mem_close_session, mem_begin, mem_commit, mem_destroy,
};

store *store_memory_new(size_t max_keys) {
  size_t nshards = max_keys ? 1 : SHARDS;
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
    sh->nslots = 64;
    sh->slots = calloc(sh->nslots, sizeof *sh->slots);
    sh->lru = max_keys != 0;
    sh->lru_list.lru_next = sh->lru_list.lru_prev = &sh->lru_list;
    sh->sweep_at = 16;
    if (!sh->slots || pthread_mutex_init(&sh->lock, NULL) != 0) {
      free(sh->slots);
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
    pthread_mutex_lock(&ms->shards[i].lock);
    n += ms->shards[i].count;
    pthread_mutex_unlock(&ms->shards[i].lock);
  }
  return n;
}
