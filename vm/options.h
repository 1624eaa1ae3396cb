/*
 * options.h - struct clause_options (opaque in clause.h): settings shared
 * by the programs loaded with them.
 */
#ifndef CLAUSE_OPTIONS_H
#define CLAUSE_OPTIONS_H

struct store;

struct clause_options {
  char *extern_path; /* colon-separated folders, or NULL */
  char *lib_path;    /* colon-separated folders, or NULL */
  struct store *store; /* shared by the programs loaded with these options */
};

#endif
