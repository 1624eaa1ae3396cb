/*
 * store.h - the state store: sliding-window counters and suspensions
 * (SPEC sections 5.2 and 5.3).
 *
 * A store is shared by every VM of a program (and by every program loaded
 * with the same clause_options); it is thread-safe and reference-counted.
 * Each VM talks to it through a session of its own (a Redis connection, or
 * nothing for the memory store), used by one thread at a time.
 *
 * One request's state work is two calls, so that a remote store needs one
 * awaited round trip per request:
 *
 *   store_begin()   before the rules: adds to every counter without `on`
 *                   (op.add), reads every counter (op.value; a counter
 *                   without `on` includes the current request), and looks
 *                   up each suspend rule's key (op.active).
 *   store_commit()  after the decision: adds to the `on` counters whose
 *                   effect decided and records a new suspension. It may
 *                   return before the store has applied the writes (Redis
 *                   sends them at once but reads the reply with the next
 *                   request's begin); a failure then shows on a later call.
 *
 * Counting is bucketed as SPEC 5.3 says, identically in every store: a
 * window W has 60 buckets of width W/60; an event at time t (ns since the
 * epoch) falls in bucket floor(60*t/W); a reading at `now` sums the 60
 * buckets ending with now's (store_bucket() computes the index).
 *
 * Identity: a counter is (id, key): `id` names the counter's declaration
 * (its name, kind and window, built by the VM, e.g. "rpm/c/60000000000"),
 * so every program naming the same counter shares it; `key` is the string()
 * form of the key expression. A suspension is (rule id, key). The id
 * strings a session is given (counter ids, rule ids) must not change or go
 * while the session is open: a store may remember them by address.
 *
 * Failure: begin/commit return 0, or -1 with a message in report->message
 * (the store is unreachable, timed out, answered garbage). Nothing is then
 * known about the request's counters; the VM applies `on_store_error`.
 * Notices that do not fail the request (the memory store evicting a key
 * under its cap) go through report->notice, and the VM lists them in the
 * decision's errors.
 */
#ifndef CLAUSE_STORE_H
#define CLAUSE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct store store;
typedef struct store_session store_session;

typedef enum store_mode { STORE_SUM = 0, STORE_DISTINCT = 1 } store_mode;

typedef struct store_counter_op {
  /* in */
  const char *id;         /* the counter's identity (see above), NUL-terminated */
  const char *key;        /* the key's string() form */
  size_t key_len;
  int64_t window_ns;      /* > 0 */
  uint8_t mode;           /* store_mode */
  bool add;               /* add this request's event (begin: counters without
                             `on`; commit: the `on` counters that apply) */
  int64_t amount;         /* STORE_SUM: >= 0; sums saturate at INT64_MAX */
  const char *member;     /* STORE_DISTINCT: the value's string() form */
  size_t member_len;
  /* out (begin) */
  int64_t value;          /* the reading at now */
} store_counter_op;

typedef struct store_suspend_op {
  /* in */
  const char *rule;       /* the suspend rule's id, NUL-terminated */
  const char *key;        /* the key's string() form */
  size_t key_len;
  int64_t until_ns;       /* commit: suspended for [now, until) */
  /* out (begin) */
  bool active;            /* a suspension [start, until) holds now */
} store_suspend_op;

typedef struct store_report {
  char message[256];      /* why a call failed */
  /* Called for notices that do not fail the request; may be NULL. */
  void (*notice)(void *ctx, const char *msg, size_t n);
  void *notice_ctx;
} store_report;

/* One implementation of the store (memory, Redis). */
typedef struct store_class {
  const char *name;
  store_session *(*open_session)(store *s, char *err, size_t errcap);
  void (*close_session)(store_session *ss);
  int (*begin)(store_session *ss, int64_t now_ns, store_counter_op *ops, size_t nops,
               store_suspend_op *susp, size_t nsusp, store_report *r);
  int (*commit)(store_session *ss, int64_t now_ns, const store_counter_op *ops, size_t nops,
                const store_suspend_op *susp, size_t nsusp, store_report *r);
  void (*destroy)(store *s);
  /* Optional (NULL: nothing to do): starts fetching what a begin on `key`
   * will need, so that work done meanwhile hides the wait. The session's
   * next call is that begin, and `key`'s bytes stay as they are, at that
   * address, until it (the store may keep what it worked out from them). */
  void (*prefetch)(store_session *ss, const char *key, size_t key_len);
} store_class;

/* Every store starts with this header, and every session with its store. */
struct store {
  const store_class *cls;
  int refs;               /* atomic */
};
struct store_session {
  store *owner;
};

/* Opens a store from a URL: "memory", "memory?max_keys=N" (evict the least
 * recently used keys past N), "redis://HOST:PORT[/DB][?prefix=P&timeout_ms=T]".
 * NULL with a message on a bad URL or out of memory. A Redis store connects
 * lazily, in each session. */
store *store_open(const char *url, char *err, size_t errcap);
store *store_ref(store *s);
void store_unref(store *s);

/* For implementations: a zeroed session of `size` bytes (a struct starting
 * with store_session) owned by s; NULL with a message when out of memory. */
store_session *store_session_new(store *s, size_t size, char *err, size_t errcap);

/* The implementations' constructors (store_open dispatches on the URL). */
store *store_memory_new(size_t max_keys);
/* How many entries (counter keys and suspensions) a memory store holds. */
size_t store_memory_entries(store *s);
store *store_redis_new(const char *url, char *err, size_t errcap);

/* Sessions: one per VM. NULL with a message when out of memory. */
static inline store_session *store_open_session(store *s, char *err, size_t errcap) {
  return s->cls->open_session(s, err, errcap);
}
static inline void store_close_session(store_session *ss) {
  if (ss) ss->owner->cls->close_session(ss);
}
static inline int store_begin(store_session *ss, int64_t now_ns, store_counter_op *ops, size_t nops,
                              store_suspend_op *susp, size_t nsusp, store_report *r) {
  return ss->owner->cls->begin(ss, now_ns, ops, nops, susp, nsusp, r);
}
static inline int store_commit(store_session *ss, int64_t now_ns, const store_counter_op *ops,
                               size_t nops, const store_suspend_op *susp, size_t nsusp,
                               store_report *r) {
  return ss->owner->cls->commit(ss, now_ns, ops, nops, susp, nsusp, r);
}

static inline void store_prefetch(store_session *ss, const char *key, size_t key_len) {
  if (ss->owner->cls->prefetch) ss->owner->cls->prefetch(ss, key, key_len);
}

/* floor(60 * t / window), exact for every int64 t. */
int64_t store_bucket_wide(int64_t t_ns, int64_t window_ns);
static inline int64_t store_bucket(int64_t t_ns, int64_t window_ns) {
  if (window_ns % 60 == 0) { /* every window of whole milliseconds times 3: 64 bits do */
    int64_t width = window_ns / 60, q = t_ns / width;
    return q - (t_ns % width != 0 && t_ns < 0);
  }
  return store_bucket_wide(t_ns, window_ns);
}

#endif
