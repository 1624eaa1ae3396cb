/*
 * json.h - our JSON reader and the schema binder (SPEC sections 3 and 8).
 *
 * One pass over the text, no DOM: the binder walks a request object against
 * a key table per object level built once from the program's schema,
 * converts the values of the fields it names straight into their slots and
 * skips everything else with a validating loop that builds nothing.
 *
 * Integers are read exactly from their text (mantissa digits and exponent),
 * never through a double, so `1e3` is an int and 18446744073709551615 a
 * uint. With duplicate keys the last one wins, nested objects included.
 * Nesting deeper than JSON_MAX_DEPTH is an error, never a deep recursion.
 *
 * Memory: every string, list and map a call produces lives in the arena
 * `a` passed to it (strings are NUL-terminated there too); nothing points
 * into the input text, which the caller may free after the call. Values are
 * valid until that arena is reset.
 *
 * Every function returns CLAUSE_OK, CLAUSE_ERR_JSON (malformed JSON; `err`,
 * when not NULL, holds the offending position and a message) or
 * CLAUSE_ERR_NOMEM (the arena could not grow). Invalid UTF-8 anywhere in
 * the text is malformed JSON; so is a \u escape that leaves a lone
 * surrogate. Thread-safe: no shared mutable state.
 */
#ifndef CLAUSE_JSON_H
#define CLAUSE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "rtype.h"
#include "value.h"

/* Containers (arrays and objects) nested deeper than this are an error. */
#define JSON_MAX_DEPTH 512

typedef struct json_error {
  size_t offset;     /* byte offset of the offending character (n at end) */
  int line;          /* 1-based */
  int column;        /* 1-based, in UTF-8 characters; a tab counts as one */
  char message[160]; /* e.g. "expected ',' or '}' after an object member" */
} json_error;

/* Generic JSON -> CEL value by CEL's JSON mapping: numbers -> double,
 * strings -> string, true/false -> bool, null -> null, arrays -> lists,
 * objects -> maps with string keys (duplicate keys: the last value wins, at
 * the first key's position). The whole text must be one value, with only
 * whitespace around it. */
int json_parse(const char *s, size_t n, arena *a, value *out, json_error *err);

/* A program's schema compiled for binding: per object level, a table of
 * the keys that lead to fields. Immutable after json_binder_new, so any
 * number of threads may bind with it at once. */
typedef struct json_binder json_binder;

/* Builds the binder for fields[0..nfields). The binder keeps pointers to
 * `fields` (paths, segments, types, absent values): they must outlive it
 * (both belong to the program). Returns a malloc'd binder, or NULL when out
 * of memory or when the schema is unusable (a field without segments, an
 * empty segment, or a path that equals or is a prefix of another). */
json_binder *json_binder_new(const prog_field *fields, uint32_t nfields);
/* NULL is fine. */
void json_binder_free(json_binder *b);

/* The request's top-level "@expect" key (SPEC section 8, `check --expect`).
 * With duplicate keys the last one counts; null counts as absent. */
typedef struct json_meta {
  const char *expect;    /* the string, copied into the arena (NUL-terminated) */
  uint32_t expect_len;
  bool has_expect;       /* "@expect" holds a string */
  bool expect_invalid;   /* "@expect" holds something other than a string or null */
} json_meta;

/* Binds a request object. For each schema field found at its dotted path,
 * stores the converted value in slots[i] (slot i = field i). On entry every
 * slot must hold its field's `absent` value (the caller resets them); a
 * field the request lacks, or holds as null, stays (or becomes) absent; a
 * value of the wrong type makes the slot an error value with flag
 * CV_ERR_WRONG_TYPE and the message "wrong type for field PATH: expected
 * TYPE, got JSONTYPE" (in `a`). Fields beneath a key whose value is not an
 * object stay absent; a repeated key replaces everything the earlier one
 * bound beneath it. Keys the schema does not name are skipped without
 * building anything. `meta` may be NULL ("@expect" is then an ordinary
 * unknown key). On CLAUSE_ERR_JSON the slots hold a partial binding: reset
 * them before using them again. A request that is not an object is
 * CLAUSE_ERR_JSON ("the request is not a JSON object"). */
int json_bind(const json_binder *b, const char *s, size_t n, arena *a, value *slots,
              json_meta *meta, json_error *err);

/* Converts one JSON text to field f's type into *slot by the same rules
 * (clause_vm_set_field_json): null -> f->absent, a wrong type -> the
 * WRONG_TYPE error value. *slot is written only on CLAUSE_OK. */
int json_bind_field(const prog_field *f, const char *s, size_t n, arena *a, value *slot,
                    json_error *err);

/* Writes a schema type as the rule language spells it: "int",
 * "list(string)", "map(string, int)", "any", "timestamp". */
void rtype_format(outbuf *o, const rtype *t);

#endif
