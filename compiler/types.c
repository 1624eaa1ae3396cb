/* types.c - the checker's types (parse.h): shared primitives, arena-built
 * lists and maps, and their names in messages. */
#include <stddef.h>

#include "parse.h"

static const type prims[T_ERROR + 1] = {
    [T_DYN] = {T_DYN, NULL, NULL},
    [T_BOOL] = {T_BOOL, NULL, NULL},
    [T_INT] = {T_INT, NULL, NULL},
    [T_UINT] = {T_UINT, NULL, NULL},
    [T_DOUBLE] = {T_DOUBLE, NULL, NULL},
    [T_STRING] = {T_STRING, NULL, NULL},
    [T_BYTES] = {T_BYTES, NULL, NULL},
    [T_TIMESTAMP] = {T_TIMESTAMP, NULL, NULL},
    [T_DURATION] = {T_DURATION, NULL, NULL},
    [T_NULL] = {T_NULL, NULL, NULL},
    [T_TYPE] = {T_TYPE, NULL, NULL},
    /* list and map alone mean list(dyn) and map(dyn, dyn) */
    [T_LIST] = {T_LIST, &prims[T_DYN], NULL},
    [T_MAP] = {T_MAP, &prims[T_DYN], &prims[T_DYN]},
    [T_ERROR] = {T_ERROR, NULL, NULL},
};

const type *type_prim(type_kind k) {
  if ((int)k < 0 || k > T_ERROR) return &prims[T_DYN];
  return &prims[k];
}

const type *type_list(arena *a, const type *elem) {
  type *t = arena_alloc(a, sizeof *t);
  if (!t) return NULL;
  t->kind = T_LIST;
  t->elem = elem ? elem : &prims[T_DYN];
  t->key = NULL;
  return t;
}

const type *type_map(arena *a, const type *key, const type *val) {
  type *t = arena_alloc(a, sizeof *t);
  if (!t) return NULL;
  t->kind = T_MAP;
  t->key = key ? key : &prims[T_DYN];
  t->elem = val ? val : &prims[T_DYN];
  return t;
}

static const char *const prim_names[T_ERROR + 1] = {
    [T_DYN] = "dyn",
    [T_BOOL] = "bool",
    [T_INT] = "int",
    [T_UINT] = "uint",
    [T_DOUBLE] = "double",
    [T_STRING] = "string",
    [T_BYTES] = "bytes",
    [T_TIMESTAMP] = "timestamp",
    [T_DURATION] = "duration",
    [T_NULL] = "null_type",
    [T_TYPE] = "type",
    [T_LIST] = "list",
    [T_MAP] = "map",
    [T_ERROR] = "error",
};

void type_format(outbuf *o, const type *t) {
  if (!t) {
    ob_puts(o, "dyn");
    return;
  }
  switch (t->kind) {
  case T_LIST:
    ob_puts(o, "list(");
    type_format(o, t->elem);
    ob_putc(o, ')');
    return;
  case T_MAP:
    ob_puts(o, "map(");
    type_format(o, t->key);
    ob_puts(o, ", ");
    type_format(o, t->elem);
    ob_putc(o, ')');
    return;
  default:
    ob_puts(o, (int)t->kind >= 0 && t->kind <= T_ERROR ? prim_names[t->kind] : "dyn");
    return;
  }
}
