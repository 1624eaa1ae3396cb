/*
 * options.h - struct clause_options (opaque in clause.h): settings shared
 * by the programs loaded with them.
 */
#ifndef CLAUSE_OPTIONS_H
#define CLAUSE_OPTIONS_H

#include <stddef.h>

#include "../include/clause.h"

/* A host function registered with clause_options_add_function (extern.c). */
typedef struct host_function {
  char *name;
  clause_type params[CLAUSE_MAX_PARAMS];
  size_t nparams;
  clause_type ret;
  clause_host_fn fn;
  void *user_data;
  void (*destroy)(void *);
  unsigned flags;
} host_function;

struct store;

struct clause_options {
  char *extern_path; /* colon-separated folders, or NULL */
  char *lib_path;    /* colon-separated folders, or NULL */
  struct store *store; /* shared by the programs loaded with these options */
  host_function *functions; /* registered host functions */
  size_t nfunctions, capfunctions;
};

#endif
