/*
 * store.c - what every state store shares: opening one from a URL,
 * reference counting, and the bucket arithmetic of SPEC 5.3.
 */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t store_bucket_wide(int64_t t_ns, int64_t window_ns) {
  /* 60 * t overflows int64 for any date after 1974: compute in 128 bits,
   * rounding towards minus infinity for times before the epoch. */
  __int128 n = (__int128)t_ns * 60, w = window_ns;
  __int128 q = n / w;
  if ((n % w != 0) && (n < 0)) q--;
  return (int64_t)q;
}

store_session *store_session_new(store *s, size_t size, char *err, size_t errcap) {
  store_session *ss = calloc(1, size);
  if (!ss) {
    snprintf(err, errcap, "out of memory");
    return NULL;
  }
  ss->owner = s;
  return ss;
}

store *store_ref(store *s) {
  if (s) __atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
  return s;
}

void store_unref(store *s) {
  if (s && __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) == 0) s->cls->destroy(s);
}

store *store_open(const char *url, char *err, size_t errcap) {
  if (!url || strcmp(url, "memory") == 0) {
    store *s = store_memory_new(0);
    if (!s) snprintf(err, errcap, "out of memory");
    return s;
  }
  if (strncmp(url, "memory?max_keys=", 16) == 0) {
    char *end;
    unsigned long long n = strtoull(url + 16, &end, 10);
    if (*end || end == url + 16 || n == 0) {
      snprintf(err, errcap, "bad store URL \"%s\": max_keys wants a positive number", url);
      return NULL;
    }
    store *s = store_memory_new((size_t)n);
    if (!s) snprintf(err, errcap, "out of memory");
    return s;
  }
  if (strncmp(url, "redis://", 8) == 0) return store_redis_new(url, err, errcap);
  snprintf(err, errcap, "unknown store URL \"%s\" (expected memory or redis://HOST:PORT[/DB])", url);
  return NULL;
}
