/*
 * diag.h - compile diagnostics: records queued during compilation and
 * rendered once, as
 *
 *   terms.clause:12:8: error: unknown field `request.purpse`; did you mean `request.purpose`?
 *     deny when request.purpse == "x"
 *               ^^^^^^^^^^^^^^
 */
#ifndef CLAUSE_DIAG_H
#define CLAUSE_DIAG_H

#include <stdbool.h>
#include <stdio.h>

#include "ast.h"

typedef enum diag_level { DIAG_ERROR, DIAG_WARNING, DIAG_NOTE } diag_level;

typedef struct diag {
  diag_level level;
  srcloc loc;
  char *message;
  struct diag *next;
} diag;

typedef struct diag_list {
  diag *head, *tail;
  int errors, warnings;
  int max_errors; /* stop recording errors past this many (0: 100) */
} diag_list;

void diag_init(diag_list *d);
void diag_free(diag_list *d);
void diag_add(diag_list *d, diag_level level, srcloc loc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define diag_error(d, loc, ...) diag_add((d), DIAG_ERROR, (loc), __VA_ARGS__)
#define diag_warning(d, loc, ...) diag_add((d), DIAG_WARNING, (loc), __VA_ARGS__)

/* Renders every record, in the order added, with the source line and a
 * caret line under the span. `color`: ANSI colours. */
void diag_render(const diag_list *d, FILE *out, bool color);

/* The closest of `candidates` to `word` by edit distance (none farther than
 * a third of the word's length, at least 1), or NULL. For did-you-mean. */
const char *diag_suggest(const char *word, const char *const *candidates, int n);

#endif
