/*
 * regex.h - CEL `matches` on PCRE2 (SPEC section 4).
 *
 * Patterns compile with PCRE2_UTF | PCRE2_DOLLAR_ENDONLY (no UCP) and match
 * unanchored, as RE2 does for CEL. Constructs RE2 does not have and that
 * could make matching slow or stateful are compile errors: backreferences
 * (\1, \g, \k, (?P=name)), lookaround ((?=, (?!, (?<=, (?<!), \C,
 * recursion and subroutine calls ((?R), (?1), (?&name), (?P>name)),
 * callouts ((?C)) and PCRE2 verbs and option settings ((*...)). Every match
 * runs under a match limit; reaching it is an error.
 *
 * A compiled regex is immutable and may be shared by threads. A
 * regex_cache holds the PCRE2 match data and match context one thread
 * needs, so that matching does not allocate; a VM keeps one in
 * cel_ctx.regex_cache. Without one, each match allocates and frees its own.
 */
#ifndef CLAUSE_REGEX_H
#define CLAUSE_REGEX_H

#include <stddef.h>
#include <stdint.h>

typedef struct regex regex;
typedef struct regex_cache regex_cache;

/* The match limit used when the caller passes 0. */
#define REGEX_DEFAULT_MATCH_LIMIT 100000u

/* Compiles pat[0..n) (UTF-8, need not be NUL-terminated). Returns NULL and
 * writes a message to errbuf (NUL-terminated, cut to errcap) on error. */
regex *regex_compile(const char *pat, size_t n, char *errbuf, size_t errcap);

/* Searches s[0..n) for a match: 1 match, 0 no match, -1 error with a
 * message in errbuf ("regex match limit exceeded" when the limit is hit).
 * match_limit 0 means REGEX_DEFAULT_MATCH_LIMIT. */
int regex_match(const regex *re, const char *s, size_t n, uint32_t match_limit, char *errbuf,
                size_t errcap);

/* As regex_match, using the cache's match data when cache is not NULL. */
int regex_match_cached(const regex *re, regex_cache *cache, const char *s, size_t n,
                       uint32_t match_limit, char *errbuf, size_t errcap);

void regex_free(regex *re); /* NULL-safe */

/* One per thread (VM); NULL when out of memory. */
regex_cache *regex_cache_new(void);
void regex_cache_free(regex_cache *cache); /* NULL-safe */

#endif
