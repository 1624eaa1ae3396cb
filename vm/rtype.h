/*
 * rtype.h - the runtime form of a schema type (`list(string)`,
 * `map(string, int)`, `any`), used by the JSON binder and the setters to
 * check a value against the `input` schema.
 */
#ifndef CLAUSE_RTYPE_H
#define CLAUSE_RTYPE_H

#include <stdint.h>

#include "value.h"

/* kind is a cv_kind (CV_BOOL .. CV_DURATION, CV_LIST, CV_MAP) or RT_ANY. */
#define RT_ANY ((uint8_t)CV_KIND_COUNT)

typedef struct rtype {
  uint8_t kind;
  const struct rtype *elem; /* list element, map value */
  const struct rtype *key;  /* map key */
} rtype;

/* One `input` field of a program. Field i lives in VM register i. */
typedef struct prog_field {
  const char *path;      /* "request.purpose" */
  const char **segs;     /* the path's segments */
  uint32_t nsegs;
  const rtype *type;
  uint8_t optional;
  uint8_t clock;
  value absent;          /* the error an absent field reads as:
                            "no such key: request.purpose", CV_ERR_ABSENT */
} prog_field;

#endif
