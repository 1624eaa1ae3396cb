/*
 * regex.c - CEL `matches` on PCRE2 (see regex.h).
 *
 * PCRE2 accepts a superset of what RE2 accepts; the constructs that make
 * matching non-regular (backreferences, lookaround, recursion), read
 * arbitrary bytes (\C) or change how the rest of the pattern is read
 * (verbs, the x flag, comments) are refused by a scan before compiling, so
 * that the scan itself cannot be fooled by text it misreads. Matching runs
 * under match, depth and heap limits.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "regex.h"

#include <pcre2.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Backtracking frames live on the heap; this bounds their total (KiB). */
#define REGEX_HEAP_LIMIT_KIB (32u * 1024u)

struct regex {
  pcre2_code *code;
};

struct regex_cache {
  pcre2_match_data *match_data;
  pcre2_match_context *match_context;
};

static void set_error(char *errbuf, size_t errcap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_error(char *errbuf, size_t errcap, const char *fmt, ...) {
  if (!errbuf || errcap == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errbuf, errcap, fmt, ap);
  va_end(ap);
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static bool is_letter(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }

/* What follows "(?" at p[i] (n bytes in all): why the group is refused, or
 * NULL. */
static const char *check_group(const char *p, size_t n, size_t i) {
  char d = i < n ? p[i] : '\0';
  char d2 = i + 1 < n ? p[i + 1] : '\0';
  switch (d) {
  case '=':
  case '!': return "lookaround is not supported";
  case '<': return d2 == '=' || d2 == '!' ? "lookaround is not supported" : NULL;
  case 'P':
    if (d2 == '=') return "backreferences are not supported";
    if (d2 == '>') return "recursion is not supported";
    return NULL;
  case 'R':
  case '&':
  case '+': return "recursion is not supported";
  case '-':
    if (is_digit(d2)) return "recursion is not supported";
    break;
  case 'C': return "callouts are not supported";
  case '(': return "conditional groups are not supported";
  case '#': return "comments are not supported";
  default:
    if (is_digit(d)) return "recursion is not supported";
    break;
  }
  /* Option letters up to ':' or ')': only RE2's flags. Others (x above
   * all, which turns '#' into a comment) would change how the rest reads. */
  size_t j = i;
  while (j < n && (is_letter(p[j]) || p[j] == '-' || p[j] == '^')) j++;
  if (j > i && j < n && (p[j] == ':' || p[j] == ')')) {
    for (size_t k = i; k < j; k++)
      if (!strchr("imsU-", p[k])) return "only the flags i, m, s and U are supported";
  }
  return NULL;
}

/* Why the pattern is refused, or NULL; *at is the construct's offset. */
static const char *unsupported_construct(const char *p, size_t n, size_t *at) {
  bool in_class = false;
  size_t class_body = 0; /* where a class's members start: a ']' there is literal */
  for (size_t i = 0; i < n; i++) {
    char c = p[i];
    *at = i;
    if (c == '\\') {
      if (i + 1 >= n) return NULL; /* PCRE2 reports the trailing backslash */
      char e = p[i + 1];
      if (e == 'Q') { /* literal text up to \E or the end */
        size_t j = i + 2;
        while (j + 1 < n && !(p[j] == '\\' && p[j + 1] == 'E')) j++;
        if (j + 1 >= n) return NULL;
        i = j + 1;
        continue;
      }
      if ((e >= '1' && e <= '9') || e == 'g' || e == 'k') return "backreferences are not supported";
      if (e == 'C') return "\\C is not supported";
      i += e == 'c' ? 2 : 1; /* \cX: X is part of the escape, whatever it is */
      continue;
    }
    if (in_class) {
      if (c == '[' && i + 1 < n && (p[i + 1] == ':' || p[i + 1] == '.' || p[i + 1] == '=')) {
        /* [:alpha:] and friends */
        for (size_t j = i + 2; j + 1 < n; j++) {
          if (p[j] == p[i + 1] && p[j + 1] == ']') {
            i = j + 1;
            break;
          }
        }
        continue;
      }
      if (c == ']' && i > class_body) in_class = false;
      continue;
    }
    if (c == '[') {
      in_class = true;
      class_body = i + 1;
      if (class_body < n && p[class_body] == '^') class_body++;
      continue;
    }
    if (c == '(' && i + 1 < n) {
      if (p[i + 1] == '*') return "PCRE2 verbs are not supported";
      if (p[i + 1] == '?') {
        const char *why = check_group(p, n, i + 2);
        if (why) return why;
      }
    }
  }
  return NULL;
}

regex *regex_compile(const char *pat, size_t n, char *errbuf, size_t errcap) {
  if (n == 0) pat = "";
  size_t at = 0;
  const char *why = unsupported_construct(pat, n, &at);
  if (why) {
    set_error(errbuf, errcap, "invalid regular expression: %s (at offset %zu)", why, at);
    return NULL;
  }
  int errcode;
  PCRE2_SIZE erroff;
  uint32_t options = PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_NEVER_BACKSLASH_C | PCRE2_NEVER_UCP;
  pcre2_code *code = pcre2_compile((PCRE2_SPTR)pat, n, options, &errcode, &erroff, NULL);
  if (!code) {
    PCRE2_UCHAR msg[160];
    if (pcre2_get_error_message(errcode, msg, sizeof msg) < 0) strcpy((char *)msg, "error");
    set_error(errbuf, errcap, "invalid regular expression: %s (at offset %zu)", (char *)msg,
              (size_t)erroff);
    return NULL;
  }
  /* The scan should have caught every backreference; PCRE2 knows for sure. */
  uint32_t backrefmax = 0;
  if (pcre2_pattern_info(code, PCRE2_INFO_BACKREFMAX, &backrefmax) != 0 || backrefmax != 0) {
    pcre2_code_free(code);
    set_error(errbuf, errcap, "invalid regular expression: backreferences are not supported");
    return NULL;
  }
  regex *re = malloc(sizeof *re);
  if (!re) {
    pcre2_code_free(code);
    set_error(errbuf, errcap, "out of memory");
    return NULL;
  }
  /* JIT-compile when the platform allows: several times faster, same
   * results; the match limit still applies. Without JIT, PCRE2 interprets. */
  (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  re->code = code;
  return re;
}

void regex_free(regex *re) {
  if (!re) return;
  pcre2_code_free(re->code);
  free(re);
}

regex_cache *regex_cache_new(void) {
  regex_cache *c = malloc(sizeof *c);
  if (!c) return NULL;
  /* One offset pair is enough: we only ask whether there is a match
   * (pcre2_match returns 0 for "matched, ovector too small"). */
  c->match_data = pcre2_match_data_create(1, NULL);
  c->match_context = pcre2_match_context_create(NULL);
  if (!c->match_data || !c->match_context) {
    regex_cache_free(c);
    return NULL;
  }
  return c;
}

void regex_cache_free(regex_cache *c) {
  if (!c) return;
  pcre2_match_data_free(c->match_data);
  pcre2_match_context_free(c->match_context);
  free(c);
}

int regex_match_cached(const regex *re, regex_cache *cache, const char *s, size_t n,
                       uint32_t match_limit, char *errbuf, size_t errcap) {
  regex_cache *c = cache ? cache : regex_cache_new();
  if (!c) {
    set_error(errbuf, errcap, "out of memory");
    return -1;
  }
  uint32_t limit = match_limit ? match_limit : REGEX_DEFAULT_MATCH_LIMIT;
  pcre2_set_match_limit(c->match_context, limit);
  pcre2_set_depth_limit(c->match_context, limit);
  pcre2_set_heap_limit(c->match_context, REGEX_HEAP_LIMIT_KIB);
  int rc =
      pcre2_match(re->code, (PCRE2_SPTR)(n ? s : ""), n, 0, 0, c->match_data, c->match_context);
  if (!cache) regex_cache_free(c);

  if (rc >= 0) return 1;
  if (rc == PCRE2_ERROR_NOMATCH) return 0;
  if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT || rc == PCRE2_ERROR_HEAPLIMIT ||
      rc == PCRE2_ERROR_JIT_STACKLIMIT) {
    set_error(errbuf, errcap, "regex match limit exceeded");
    return -1;
  }
  PCRE2_UCHAR msg[160];
  if (pcre2_get_error_message(rc, msg, sizeof msg) < 0) strcpy((char *)msg, "error");
  set_error(errbuf, errcap, "regex match failed: %s", (char *)msg);
  return -1;
}

int regex_match(const regex *re, const char *s, size_t n, uint32_t match_limit, char *errbuf,
                size_t errcap) {
  return regex_match_cached(re, NULL, s, n, match_limit, errbuf, errcap);
}
