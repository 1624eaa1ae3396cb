/*
 * traffic.h - the traffic reader shared by `clause check` and `clause diff`:
 * JSON lines from a file or standard input, plain or gzip-compressed (zlib
 * recognises the gzip magic whatever the name), read in batches.
 *
 * A batch is the complete lines that fit in one buffer, handed out as
 * spans into it: nothing is copied or allocated per line, and the buffer
 * is reused, so memory stays the same however long the file is. Only a
 * line longer than the buffer makes it grow (up to TRAFFIC_MAX_LINE); it
 * shrinks back once that line is done.
 *
 * Blank lines (only spaces, tabs, CR) are skipped but counted, so line
 * numbers are physical line numbers. A trailing CR is dropped. A last line
 * without a newline is still a line.
 */
#ifndef CLAUSE_TRAFFIC_H
#define CLAUSE_TRAFFIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../include/clause.h"
#include "../vm/json.h"

/* Longer lines are reported as too long and skipped. */
#define TRAFFIC_MAX_LINE ((size_t)256 << 20)

typedef enum traffic_line_status {
  TRAFFIC_LINE_OK = 0,
  TRAFFIC_LINE_TOO_LONG, /* over TRAFFIC_MAX_LINE: no text, skipped */
  TRAFFIC_LINE_NOMEM     /* longer than the memory we could get: no text */
} traffic_line_status;

typedef struct traffic_line {
  const char *text; /* not NUL-terminated; valid until the next batch */
  size_t len;
  uint64_t lineno;  /* 1-based physical line number */
  int status;       /* traffic_line_status */
} traffic_line;

typedef struct traffic_reader traffic_reader;

/* Opens FILE, or standard input for "-". NULL with a message in err
 * ("cannot open FILE: REASON") on failure. */
traffic_reader *traffic_open(const char *path, char *err, size_t errcap);

/* The name to use in messages: the path, or "<stdin>". */
const char *traffic_name(const traffic_reader *r);

/* The next batch of at most `max_lines` non-blank lines (at least one
 * unless the input is done). Returns the number of lines (*lines points to
 * them), 0 at the end of the input, -1 on a read error (traffic_error says
 * what; the lines of earlier batches stay valid results). */
long traffic_next_batch(traffic_reader *r, size_t max_lines, const traffic_line **lines);

/* The read error's message ("unexpected end of file" for a truncated gzip
 * file, or the system's reason). */
const char *traffic_error(const traffic_reader *r);

/* Closes the input (not standard input's descriptor) and frees the reader;
 * NULL is fine. */
void traffic_close(traffic_reader *r);

/* Binds one request (a traffic line, or a test's `given` as JSON) into the
 * VM as every command that reads traffic does: the JSON binder, then the
 * `@clock` check (the clock field, when the policy has one, must hold a
 * valid timestamp). `meta` may be NULL (then "@expect" is an ordinary key).
 * True when the request can be decided; otherwise false, with the reason
 * in msg and the JSON error's column in *column (0 for other reasons). */
bool traffic_bind(clause_vm *vm, const char *text, size_t len, json_meta *meta, char *msg, size_t msgcap,
                  int *column);

#endif
