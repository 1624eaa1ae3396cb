/*
 * cel_types.h - CEL type names as values, and the unordered comparison
 * result of cel_compare.
 */
#ifndef CLAUSE_CEL_TYPES_H
#define CLAUSE_CEL_TYPES_H

#include <stdbool.h>

#include "value.h"

/* The type value an identifier names when it is not called (`type(1) ==
 * int`): "int", "uint", "double", "bool", "string", "bytes", "list", "map",
 * "null_type", "type", "google.protobuf.Timestamp",
 * "google.protobuf.Duration". Sets *out and returns true, or returns false
 * for any other name. */
bool cel_type_by_name(const char *name, value *out);

/* What cel_compare stores in *cmp when either operand is NaN: every
 * ordering (< <= > >=) is then false. Otherwise *cmp is -1, 0 or 1. */
#define CEL_CMP_UNORDERED 2

#endif
