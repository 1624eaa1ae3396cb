/*
 * store_memory.c - the in-process state store (the default).
 *
 * Entries (a counter under one key, or a suspension under one key) live in
 * hash tables split into shards, each with its own lock, so that VMs on
 * different threads seldom wait for each other. A store with a key cap
 * (memory?max_keys=N) has one shard, so that "least recently used" means
 * exactly that across all keys.
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

typedef struct member {
  uint64_t hash;
  int64_t newest;            /* bucket */
  unsigned __int128 seen;    /* bit j: seen in bucket newest - j */
  char *text;
  size_t len;
} member;

typedef struct entry {
  struct entry *next;        /* hash chain */
  const char *id_seen;       /* an id pointer known to equal this entry's id */
  struct entry *lru_prev, *lru_next;
  uint64_t hash;
  int64_t dead_at;           /* ns: from then on nothing here can be read */
  uint8_t kind;              /* entry_kind */
  int64_t window_ns;
  union {
    struct {                 /* ENT_SUM: sorted by id */
      bucket *b;
      uint32_t n, cap;
      bool cached;           /* cache_sum is the reading at bucket cache_id */
      int64_t cache_id, cache_sum;
    } sum;
    struct {                 /* ENT_DISTINCT */
      member *m;
      uint32_t n, cap;
      uint32_t *index;       /* open addressing: member index + 1, or 0 */
      uint32_t index_cap;    /* a power of two, >= 2n */
      int64_t newest;        /* bucket of the key's newest event */
    } dist;
    struct {                 /* ENT_SUSPENSION */
      int64_t start, until;
    } susp;
  } u;
  size_t name_len;           /* the identity: kind, id, NUL, key */
  char name[];
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
  size_t max_keys;           /* 0: no cap */
  size_t nshards;
  shard shards[];
} mem_store;

/* ---- entries ------------------------------------------------------------------------ */

/* A multiply-mix hash, eight bytes at a time (keys are short). */
static uint64_t hash_bytes(const char *s, size_t n, uint64_t seed) {
  size_t len = n;
  uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ull);
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

static void entry_free(entry *e) {
  if (e->kind == ENT_SUM) {
    free(e->u.sum.b);
  } else if (e->kind == ENT_DISTINCT) {
    for (uint32_t i = 0; i < e->u.dist.n; i++) free(e->u.dist.m[i].text);
    free(e->u.dist.m);
    free(e->u.dist.index);
  }
  free(e);
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

/* The identity of an entry: its kind, the counter id or rule id, a NUL,
 * then the key (keys are any bytes, ids are not). */
typedef struct ident {
  char kind;
  const char *id;
  size_t id_len;
  const char *key;
  size_t key_len;
  uint64_t hash;
} ident;

/* A session remembers the hash of the ids it has seen: they are the
 * program's constant strings, so the pointer identifies them. */
#define ID_CACHE 16
typedef struct mem_session {
  store_session base;
  struct {
    const char *id;
    char kind;
    size_t len;
    uint64_t seed;
  } ids[ID_CACHE];
} mem_session;

static ident make_ident(mem_session *ms, char kind, const char *id, const char *key, size_t key_len) {
  size_t slot = ((uintptr_t)id >> 4 ^ (unsigned char)kind) % ID_CACHE;
  if (ms->ids[slot].id != id || ms->ids[slot].kind != kind) {
    ms->ids[slot].id = id;
    ms->ids[slot].kind = kind;
    ms->ids[slot].len = strlen(id);
    ms->ids[slot].seed = hash_bytes(id, ms->ids[slot].len, (unsigned char)kind);
  }
  ident k = {kind, id, ms->ids[slot].len, key, key_len, 0};
  k.hash = hash_bytes(key, key_len, ms->ids[slot].seed);
  return k;
}

static bool ident_is(const entry *e, const ident *k) {
  size_t idn = k->id_len;
  /* Ids are a program's constant strings: the same pointer is the same id. */
  return e->hash == k->hash && e->name_len == 1 + idn + 1 + k->key_len && e->name[0] == k->kind &&
         (e->id_seen == k->id || memcmp(e->name + 1, k->id, idn + 1) == 0) &&
         memcmp(e->name + 2 + idn, k->key, k->key_len) == 0;
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

/* `counter rpm, key "a1"` for an eviction notice (a counter's id is
 * "NAME/KIND/WINDOW"; the name is enough for a reader). */
static void describe(const entry *e, char *buf, size_t cap) {
  const char *id = e->name + 1;
  size_t idn = strlen(id);
  int keyn = (int)(e->name_len - 2 - idn);
  if (keyn > 64) keyn = 64;
  if (e->kind == ENT_SUSPENSION)
    snprintf(buf, cap, "suspension by rule \"%s\", key \"%.*s\"", id, keyn, e->name + 2 + idn);
  else
    snprintf(buf, cap, "counter %.*s, key \"%.*s\"", (int)strcspn(id, "/"), id, keyn, e->name + 2 + idn);
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
  size_t idn = k->id_len, n = 1 + idn + 1 + k->key_len;
  entry *e = calloc(1, sizeof *e + n);
  if (!e) return NULL;
  e->hash = k->hash;
  e->id_seen = k->id;
  e->kind = (uint8_t)k->kind;
  e->name_len = n;
  e->name[0] = k->kind;
  memcpy(e->name + 1, k->id, idn + 1);
  memcpy(e->name + 2 + idn, k->key, k->key_len);
  e->next = sh->slots[k->hash & (sh->nslots - 1)];
  sh->slots[k->hash & (sh->nslots - 1)] = e;
  lru_push(sh, e);
  sh->count++;
  return e;
}


/* The time at which bucket `id` of a window starts, saturating. */
static int64_t bucket_start(int64_t id, int64_t window_ns) {
  if (window_ns % BUCKETS == 0 && id > INT64_MIN / window_ns && id < INT64_MAX / window_ns)
    return id * (window_ns / BUCKETS); /* the usual case: no 128-bit division */
  __int128 t = (__int128)id * window_ns / BUCKETS;
  if (t > INT64_MAX) return INT64_MAX;
  if (t < INT64_MIN) return INT64_MIN;
  return (int64_t)t;
}

static inline int64_t sat_add(int64_t a, int64_t b) {
  return a > INT64_MAX - b ? INT64_MAX : a + b;
}

/* ---- sums ------------------------------------------------------------------------- */

static bool sum_add(entry *e, int64_t id, int64_t amount) {
  bucket *b = e->u.sum.b;
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
    uint32_t cap = n ? 2 * n : 4;
    bucket *nb = realloc(b, cap * sizeof *nb);
    if (!nb) return false;
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

static int64_t sum_read(entry *e, int64_t now_id) {
  if (e->u.sum.cached && e->u.sum.cache_id == now_id) return e->u.sum.cache_sum;
  int64_t total = 0;
  for (uint32_t i = 0; i < e->u.sum.n; i++) {
    int64_t id = e->u.sum.b[i].id;
    if (id > now_id - BUCKETS && id <= now_id) total = sat_add(total, e->u.sum.b[i].sum);
  }
  e->u.sum.cached = true;
  e->u.sum.cache_id = now_id;
  e->u.sum.cache_sum = total;
  return total;
}

/* ---- distinct ------------------------------------------------------------------------ */

static bool dist_reindex(entry *e, uint32_t cap) {
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
static bool dist_compact(entry *e) {
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
  return dist_reindex(e, e->u.dist.index_cap);
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

static bool dist_add(entry *e, int64_t id, const char *text, size_t len) {
  if (e->u.dist.n && id <= e->u.dist.newest - KEEP) return true;
  if (!e->u.dist.n || id > e->u.dist.newest) e->u.dist.newest = id;
  uint64_t h = hash_bytes(text, len, 0);
  uint32_t cap = e->u.dist.index_cap;
  for (uint32_t s = cap ? (uint32_t)h & (cap - 1) : 0; cap && e->u.dist.index[s]; s = (s + 1) & (cap - 1)) {
    member *m = &e->u.dist.m[e->u.dist.index[s] - 1];
    if (m->hash == h && m->len == len && memcmp(m->text, text, len) == 0) {
      member_see(m, id);
      e->dead_at = bucket_start(e->u.dist.newest + KEEP, e->window_ns);
      return true;
    }
  }
  if (e->u.dist.n == e->u.dist.cap) {
    /* Before growing, forget members gone out of reach. */
    if (e->u.dist.n && !dist_compact(e)) return false;
    if (e->u.dist.n == e->u.dist.cap) {
      uint32_t ncap = e->u.dist.cap ? 2 * e->u.dist.cap : 4;
      member *nm = realloc(e->u.dist.m, ncap * sizeof *nm);
      if (!nm) return false;
      e->u.dist.m = nm;
      e->u.dist.cap = ncap;
    }
  }
  if (2 * (e->u.dist.n + 1) > e->u.dist.index_cap &&
      !dist_reindex(e, e->u.dist.index_cap ? 2 * e->u.dist.index_cap : 8))
    return false;
  char *copy = malloc(len ? len : 1);
  if (!copy) return false;
  memcpy(copy, text, len);
  member *m = &e->u.dist.m[e->u.dist.n];
  *m = (member){h, id, 1, copy, len};
  cap = e->u.dist.index_cap;
  uint32_t s = (uint32_t)h & (cap - 1);
  while (e->u.dist.index[s]) s = (s + 1) & (cap - 1);
  e->u.dist.index[s] = ++e->u.dist.n;
  e->dead_at = bucket_start(e->u.dist.newest + KEEP, e->window_ns);
  return true;
}

static int64_t dist_read(const entry *e, int64_t now_id) {
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

static shard *shard_of(mem_store *ms, uint64_t hash) {
  return &ms->shards[(hash >> 40) % ms->nshards];
}



static int counter_op(mem_store *ms, mem_session *ss, int64_t now, store_counter_op *op, bool read,
                      store_report *r) {
  char kind = op->mode == STORE_DISTINCT ? ENT_DISTINCT : ENT_SUM;
  ident k = make_ident(ss, kind, op->id, op->key, op->key_len);
  shard *sh = shard_of(ms, k.hash);
  int64_t id = store_bucket(now, op->window_ns);
  int rc = 0;
  pthread_mutex_lock(&sh->lock);
  entry *e = shard_find(sh, &k);
  if (op->add && !e) {
    e = shard_insert(ms, sh, &k, now, r);
    if (e) e->window_ns = op->window_ns;
  }
  if (op->add && e) {
    bool ok = kind == ENT_SUM ? sum_add(e, id, op->amount) : dist_add(e, id, op->member, op->member_len);
    if (!ok) e = NULL;
  }
  if (op->add && !e) {
    snprintf(r->message, sizeof r->message, "memory store: out of memory");
    rc = -1;
  } else if (read) {
    op->value = !e ? 0 : kind == ENT_SUM ? sum_read(e, id) : dist_read(e, id);
  }
  pthread_mutex_unlock(&sh->lock);
  return rc;
}

static int mem_begin(store_session *ss, int64_t now, store_counter_op *ops, size_t nops,
                     store_suspend_op *susp, size_t nsusp, store_report *r) {
  mem_store *ms = (mem_store *)ss->owner;
  for (size_t i = 0; i < nops; i++)
    if (counter_op(ms, (mem_session *)ss, now, &ops[i], true, r) != 0) return -1;
  for (size_t i = 0; i < nsusp; i++) {
    ident k = make_ident((mem_session *)ss, ENT_SUSPENSION, susp[i].rule, susp[i].key, susp[i].key_len);
    shard *sh = shard_of(ms, k.hash);
    pthread_mutex_lock(&sh->lock);
    entry *e = shard_find(sh, &k);
    susp[i].active = e && e->u.susp.start <= now && now < e->u.susp.until;
    pthread_mutex_unlock(&sh->lock);
  }
  return 0;
}

static int mem_commit(store_session *ss, int64_t now, const store_counter_op *ops, size_t nops,
                      const store_suspend_op *susp, size_t nsusp, store_report *r) {
  mem_store *ms = (mem_store *)ss->owner;
  for (size_t i = 0; i < nops; i++) {
    if (!ops[i].add) continue;
    store_counter_op op = ops[i];
    if (counter_op(ms, (mem_session *)ss, now, &op, false, r) != 0) return -1;
  }
  for (size_t i = 0; i < nsusp; i++) {
    ident k = make_ident((mem_session *)ss, ENT_SUSPENSION, susp[i].rule, susp[i].key, susp[i].key_len);
    shard *sh = shard_of(ms, k.hash);
    pthread_mutex_lock(&sh->lock);
    entry *e = shard_find(sh, &k);
    if (!e) e = shard_insert(ms, sh, &k, now, r);
    if (e) {
      /* A new suspension of the same rule and key replaces the old one. */
      e->u.susp.start = now;
      e->u.susp.until = susp[i].until_ns;
      e->dead_at = susp[i].until_ns;
    }
    pthread_mutex_unlock(&sh->lock);
    if (!e) {
      snprintf(r->message, sizeof r->message, "memory store: out of memory");
      return -1;
    }
  }
  return 0;
}

static store_session *mem_open_session(store *s, char *err, size_t errcap) {
  mem_session *ss = calloc(1, sizeof *ss);
  if (!ss) {
    snprintf(err, errcap, "out of memory");
    return NULL;
  }
  ss->base.owner = s;
  return &ss->base;
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
