/*
 * libclausetest.c - a shared library of plain C functions for the extern
 * tests (`make check` builds it as tests/.libs/libclausetest.so). Each has
 * exactly the C signature SPEC section 6 gives its declaration:
 *
 *   bool -> bool, int -> int64_t, uint -> uint64_t, double -> double,
 *   string -> const char *, timestamp and duration -> int64_t nanoseconds.
 *
 * Every function is thread-safe: the threaded test calls them from several
 * VMs at once. Returned strings live in thread-local buffers, which the VM
 * copies before anything else runs on the thread.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char buffer[256];
static atomic_long calls;

bool ext_not(bool b) { return !b; }

int64_t ext_add(int64_t a, int64_t b) { return a + b; }

uint64_t ext_umax(uint64_t a, uint64_t b) { return a > b ? a : b; }

double ext_half(double x) { return x / 2; }

/* A reputation-like score in [0, 1]: the share of digits in the text. */
double ext_score(const char *s) {
  size_t n = strlen(s), digits = 0;
  for (size_t i = 0; i < n; i++) digits += s[i] >= '0' && s[i] <= '9';
  return n ? (double)digits / (double)n : 0;
}

int64_t ext_length(const char *s) { return (int64_t)strlen(s); }

const char *ext_greet(const char *name) {
  snprintf(buffer, sizeof buffer, "hello, %s", name);
  return buffer;
}

/* timestamp + duration -> timestamp; duration * 2 -> duration. */
int64_t ext_later(int64_t ts_ns, int64_t dur_ns) { return ts_ns + dur_ns; }

int64_t ext_twice(int64_t dur_ns) { return 2 * dur_ns; }

/* Every type at once: integer and floating-point registers interleaved. */
const char *ext_describe(bool b, int64_t i, uint64_t u, double d, const char *s, int64_t ts, int64_t dur) {
  snprintf(buffer, sizeof buffer, "%s %lld %llu %.2f %s %lld %lld", b ? "true" : "false", (long long)i,
           (unsigned long long)u, d, s, (long long)ts, (long long)dur);
  return buffer;
}

/* Failure: a string extern signals an error by returning NULL. */
const char *ext_fail(const char *why) {
  (void)why;
  return NULL;
}

const char *ext_not_utf8(void) { return "\xff\xfe"; }

bool ext_true(void) { return true; }

/* Counts its calls (the threaded test checks the total). */
int64_t ext_count(int64_t x) {
  atomic_fetch_add(&calls, 1);
  return x + 1;
}

int64_t ext_calls(void) { return (int64_t)atomic_load(&calls); }

/* Returns 0 whatever it is passed: any signature a mutated program gives
 * it reads zeros (false, 0, 0.0, or NULL: an error for a string), so the
 * mutation test can call it with anything. */
int64_t ext_zero(void) { return 0; }
