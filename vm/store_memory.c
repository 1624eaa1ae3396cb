/*
 * store_memory.c - the in-process state store (SPEC 5.3): every counter and
 * suspension in one hash table behind one mutex.
 *
 * Deliberately simple: it exists so that the store interface has a second,
 * exact implementation that the Redis store is tested against case by case
 * (tests/test_store.c). What it keeps:
 *
 *   counter     (mode, id, key) -> its buckets: index, sum, and for
 *               `distinct` the exact set of members (a hash set of copies)
 *   suspension  (rule, key)     -> [start, until)
 *
 * A counter keeps the buckets within one window of the newest bucket it has
 * seen; older ones can only be read again when traffic time goes back by
 * more than a window, and are dropped so that memory follows the live keys.
 * With max_keys, the least recently used entry goes when a new one would
 * exceed the cap, and the caller hears of it through report->notice.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

#define BUCKETS 60

/* ---- exact sets of byte strings ------------------------------------------------ */

typedef struct member {
  char *s;                /* NULL for an empty slot */
  size_t len;
  uint64_t h;
} member;

typedef struct mset {
  member *slot;           /* open addressing, linear probing */
  size_t n, cap;          /* cap is 0 or a power of two */
} mset;

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}
#define HASH_SEED 0xcbf29ce484222325ull

static member *mset_find(const mset *m, const char *s, size_t len, uint64_t h) {
  for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
    member *e = &m->slot[i];
    if (!e->s || (e->h == h && e->len == len && memcmp(e->s, s, len) == 0)) return e;
  }
}

static bool mset_grow(mset *m) {
  size_t cap = m->cap ? m->cap * 2 : 8;
  mset g = {calloc(cap, sizeof(member)), m->n, cap};
  if (!g.slot) return false;
  for (size_t i = 0; i < m->cap; i++)
    if (m->slot[i].s) *mset_find(&g, m->slot[i].s, m->slot[i].len, m->slot[i].h) = m->slot[i];
  free(m->slot);
  *m = g;
  return true;
}

/* Adds s (a copy of it with `copy`, else the pointer, which must outlive
 * the set). 1 if added, 0 if already there, -1 when out of memory. */
static int mset_add(mset *m, const char *s, size_t len, uint64_t h, bool copy) {
  if ((m->n + 1) * 4 > m->cap * 3 && !mset_grow(m)) return -1;
  member *e = mset_find(m, s, len, h);
  if (e->s) return 0;
  if (copy) {
    char *c = malloc(len + 1); /* never NULL for "", so the slot shows as used */
    if (!c) return -1;
    memcpy(c, s, len);
    s = c;
  }
  *e = (member){(char *)s, len, h};
  m->n++;
  return 1;
}

static void mset_free(mset *m, bool owned) {
  if (owned)
    for (size_t i = 0; i < m->cap; i++) free(m->slot[i].s);
  free(m->slot);
  *m = (mset){0};
}

/* ---- entries ------------------------------------------------------------------- */

enum { KIND_SUM = STORE_SUM, KIND_DISTINCT = STORE_DISTINCT, KIND_SUSPEND };

typedef struct bucket {
  int64_t b;
  int64_t sum;
  mset set;
} bucket;

typedef struct entry {
  struct entry *chain;           /* next in the hash chain */
  struct entry *newer, *older;   /* the LRU list */
  uint64_t h;
  int kind;
  char *ident;                   /* id, NUL, key */
  size_t ident_len;
  bucket *bk;                    /* counters: unordered, at most one per index */
  size_t nbk, capbk;
  int64_t newest;                /* the newest bucket index seen */
  int64_t start, until;          /* suspensions */
} entry;

typedef struct mem_store {
  store base;
  pthread_mutex_t mu;
  entry **tab;
  size_t tabcap, n;
  entry *lru_newest, *lru_oldest;
  size_t max_keys;               /* 0: no cap */
  mset scratch;                  /* unions of distinct buckets, reused */
} mem_store;

static void entry_free(entry *e) {
  for (size_t i = 0; i < e->nbk; i++) mset_free(&e->bk[i].set, true);
  free(e->bk);
  free(e->ident);
  free(e);
}

static void lru_unlink(mem_store *ms, entry *e) {
  if (e->newer) e->newer->older = e->older; else ms->lru_newest = e->older;
  if (e->older) e->older->newer = e->newer; else ms->lru_oldest = e->newer;
  e->newer = e->older = NULL;
}

static void lru_push(mem_store *ms, entry *e) {
  e->older = ms->lru_newest;
  e->newer = NULL;
  if (ms->lru_newest) ms->lru_newest->newer = e; else ms->lru_oldest = e;
  ms->lru_newest = e;
}

static void remove_entry(mem_store *ms, entry *e) {
  entry **p = &ms->tab[e->h & (ms->tabcap - 1)];
  while (*p != e) p = &(*p)->chain;
  *p = e->chain;
  lru_unlink(ms, e);
  ms->n--;
  entry_free(e);
}

static bool grow_table(mem_store *ms) {
  size_t cap = ms->tabcap ? ms->tabcap * 2 : 64;
  entry **t = calloc(cap, sizeof *t);
  if (!t) return false;
  for (size_t i = 0; i < ms->tabcap; i++)
    for (entry *e = ms->tab[i], *next; e; e = next) {
      next = e->chain;
      e->chain = t[e->h & (cap - 1)];
      t[e->h & (cap - 1)] = e;
    }
  free(ms->tab);
  ms->tab = t;
  ms->tabcap = cap;
  return true;
}

static void notice(store_report *r, const char *msg) {
  if (r && r->notice) r->notice(r->notice_ctx, msg, strlen(msg));
}

/* The entry for (kind, id, key): found (and made the most recently used),
 * or created when `create`. NULL when absent, or when out of memory (then
 * *oom is set). */
static entry *get_entry(mem_store *ms, int kind, const char *id, const char *key, size_t key_len,
                        bool create, bool *oom, store_report *r) {
  size_t id_len = strlen(id);
  uint64_t h = hash_bytes(hash_bytes(HASH_SEED ^ (uint64_t)kind, id, id_len + 1), key, key_len);
  size_t ident_len = id_len + 1 + key_len;
  if (ms->tabcap)
    for (entry *e = ms->tab[h & (ms->tabcap - 1)]; e; e = e->chain)
      if (e->h == h && e->kind == kind && e->ident_len == ident_len &&
          memcmp(e->ident, id, id_len + 1) == 0 &&
          memcmp(e->ident + id_len + 1, key, key_len) == 0) {
        lru_unlink(ms, e);
        lru_push(ms, e);
        return e;
      }
  if (!create) return NULL;
  if (ms->n >= ms->tabcap && !grow_table(ms)) goto oom;
  entry *e = calloc(1, sizeof *e);
  if (!e || !(e->ident = malloc(ident_len))) {
    free(e);
    goto oom;
  }
  memcpy(e->ident, id, id_len + 1);
  memcpy(e->ident + id_len + 1, key, key_len);
  e->ident_len = ident_len;
  e->h = h;
  e->kind = kind;
  e->newest = INT64_MIN;
  e->chain = ms->tab[h & (ms->tabcap - 1)];
  ms->tab[h & (ms->tabcap - 1)] = e;
  lru_push(ms, e);
  ms->n++;
  if (ms->max_keys && ms->n > ms->max_keys) {
    char msg[128];
    snprintf(msg, sizeof msg,
             "memory store: evicted the least recently used key (max_keys=%zu)", ms->max_keys);
    remove_entry(ms, ms->lru_oldest);
    notice(r, msg);
  }
  return e;
oom:
  *oom = true;
  return NULL;
}

/* ---- counting -------------------------------------------------------------------- */

static bucket *get_bucket(entry *e, int64_t b) {
  for (size_t i = 0; i < e->nbk; i++)
    if (e->bk[i].b == b) return &e->bk[i];
  if (e->nbk == e->capbk) {
    size_t cap = e->capbk ? e->capbk * 2 : 4;
    bucket *g = realloc(e->bk, cap * sizeof *g);
    if (!g) return NULL;
    e->bk = g;
    e->capbk = cap;
  }
  e->bk[e->nbk] = (bucket){.b = b};
  return &e->bk[e->nbk++];
}

/* Drops the buckets more than a window behind the newest one seen. */
static void prune(entry *e, int64_t b) {
  if (b <= e->newest) return;
  e->newest = b;
  for (size_t i = 0; i < e->nbk;)
    if (e->bk[i].b <= b - BUCKETS) {
      mset_free(&e->bk[i].set, true);
      e->bk[i] = e->bk[--e->nbk];
    } else {
      i++;
    }
}

static int add_event(mem_store *ms, const store_counter_op *op, int64_t now_ns, store_report *r) {
  bool oom = false;
  if (op->mode == STORE_SUM && op->amount <= 0) return 0; /* nothing to add */
  entry *e = get_entry(ms, op->mode, op->id, op->key, op->key_len, true, &oom, r);
  if (!e) return -1;
  int64_t b = store_bucket(now_ns, op->window_ns);
  prune(e, b);
  if (b <= e->newest - BUCKETS) return 0; /* too old to be read again (see the top) */
  bucket *k = get_bucket(e, b);
  if (!k) return -1;
  if (op->mode == STORE_SUM) {
    k->sum = k->sum > INT64_MAX - op->amount ? INT64_MAX : k->sum + op->amount;
    return 0;
  }
  uint64_t h = hash_bytes(HASH_SEED, op->member, op->member_len);
  return mset_add(&k->set, op->member, op->member_len, h, true) < 0 ? -1 : 0;
}

static int64_t read_counter(mem_store *ms, const store_counter_op *op, int64_t now_ns, bool *oom) {
  entry *e = get_entry(ms, op->mode, op->id, op->key, op->key_len, false, oom, NULL);
  if (!e) return 0;
  int64_t b = store_bucket(now_ns, op->window_ns), total = 0;
  bucket *in[BUCKETS];
  size_t n = 0;
  for (size_t i = 0; i < e->nbk; i++)
    if (e->bk[i].b <= b && e->bk[i].b > b - BUCKETS) in[n++] = &e->bk[i];
  if (op->mode == STORE_SUM) {
    for (size_t i = 0; i < n; i++)
      total = total > INT64_MAX - in[i]->sum ? INT64_MAX : total + in[i]->sum;
    return total;
  }
  if (n == 1) return (int64_t)in[0]->set.n;
  /* The union of the buckets' sets, in a scratch set that borrows the members. */
  mset *u = &ms->scratch;
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < in[i]->set.cap; j++) {
      member *m = &in[i]->set.slot[j];
      if (m->s && mset_add(u, m->s, m->len, m->h, false) < 0) {
        *oom = true;
        break;
      }
    }
  total = (int64_t)u->n;
  if (u->cap) memset(u->slot, 0, u->cap * sizeof(member));
  u->n = 0;
  return total;
}

/* ---- the store class ---------------------------------------------------------------- */

static void out_of_memory(store_report *r) {
  snprintf(r->message, sizeof r->message, "memory store: out of memory");
}

static int mem_begin(store_session *ss, int64_t now_ns, store_counter_op *ops, size_t nops,
                     store_suspend_op *susp, size_t nsusp, store_report *r) {
  mem_store *ms = (mem_store *)ss->owner;
  bool oom = false;
  int rc = 0;
  pthread_mutex_lock(&ms->mu);
  /* Every add first, so each reading includes all of this request's events. */
  for (size_t i = 0; i < nops && rc == 0; i++)
    if (ops[i].add) rc = add_event(ms, &ops[i], now_ns, r);
  for (size_t i = 0; i < nops && rc == 0 && !oom; i++)
    ops[i].value = read_counter(ms, &ops[i], now_ns, &oom);
  for (size_t i = 0; i < nsusp && rc == 0; i++) {
    entry *e = get_entry(ms, KIND_SUSPEND, susp[i].rule, susp[i].key, susp[i].key_len, false,
                         &oom, NULL);
    susp[i].active = e && e->start <= now_ns && now_ns < e->until;
  }
  pthread_mutex_unlock(&ms->mu);
  if (rc == 0 && !oom) return 0;
  out_of_memory(r);
  return -1;
}

static int mem_commit(store_session *ss, int64_t now_ns, const store_counter_op *ops, size_t nops,
                      const store_suspend_op *susp, size_t nsusp, store_report *r) {
  mem_store *ms = (mem_store *)ss->owner;
  bool oom = false;
  int rc = 0;
  pthread_mutex_lock(&ms->mu);
  for (size_t i = 0; i < nops && rc == 0; i++)
    if (ops[i].add) rc = add_event(ms, &ops[i], now_ns, r);
  for (size_t i = 0; i < nsusp && rc == 0; i++) {
    /* A new suspension of the same rule and key replaces the old one. */
    entry *e = get_entry(ms, KIND_SUSPEND, susp[i].rule, susp[i].key, susp[i].key_len, true,
                         &oom, r);
    if (!e) {
      rc = -1;
      break;
    }
    e->start = now_ns;
    e->until = susp[i].until_ns;
  }
  pthread_mutex_unlock(&ms->mu);
  if (rc == 0) return 0;
  out_of_memory(r);
  return -1;
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

static void mem_close_session(store_session *ss) {
  free(ss);
}

static void mem_destroy(store *s) {
  mem_store *ms = (mem_store *)s;
  for (entry *e = ms->lru_newest, *next; e; e = next) {
    next = e->older;
    entry_free(e);
  }
  free(ms->tab);
  mset_free(&ms->scratch, false);
  pthread_mutex_destroy(&ms->mu);
  free(ms);
}

static const store_class memory_class = {
  .name = "memory",
  .open_session = mem_open_session,
  .close_session = mem_close_session,
  .begin = mem_begin,
  .commit = mem_commit,
  .destroy = mem_destroy,
};

store *store_memory_new(size_t max_keys) {
  mem_store *ms = calloc(1, sizeof *ms);
  if (!ms) return NULL;
  if (pthread_mutex_init(&ms->mu, NULL) != 0) {
    free(ms);
    return NULL;
  }
  ms->base.cls = &memory_class;
  ms->base.refs = 1;
  ms->max_keys = max_keys;
  return &ms->base;
}
