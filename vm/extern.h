/*
 * extern.h - `extern fn` at run time (SPEC section 6): binding a program's
 * externs to C functions when it is prepared for evaluation, and calling
 * them from the VM (XCALL).
 *
 * Binding happens once per program, after verification and before any VM
 * exists, on the loading thread: a `from "LIB"` extern is resolved against
 * the allow-list, opened with dlopen, its symbol found with dlsym and its
 * libffi call interface prepared (ffi_prep_cif); a host extern is matched
 * with a function registered on the options. The result (struct extern_rt)
 * belongs to the program and is read-only afterwards, so VMs on any number
 * of threads call through it at once.
 */
#ifndef CLAUSE_EXTERN_H
#define CLAUSE_EXTERN_H

#include <stddef.h>
#include <stdint.h>

#include "../include/clause.h"
#include "program.h"
#include "vm.h"

/* Binds every extern of `p` with the allow-list and the host functions of
 * `opts` (NULL: none), then makes the calls of pure host functions with
 * constant arguments once. 0 when done (at once for a program without
 * externs); else -1 with a message naming the extern and its library or
 * symbol in `err`, and *which (when not NULL) the failing extern's index.
 * Never opens a library outside the allow-list. */
int extern_bind(clause_program *p, const clause_options *opts, char *err, size_t errcap,
                uint32_t *which);

/* Closes what extern_bind opened; the program is unbound again. */
void extern_unbind(clause_program *p);

/* XCALL at `pc`: *dst := extern `x` applied to args[0 .. its arity). An
 * unbound program's call is an error value. */
void extern_call(clause_vm *vm, uint32_t x, uint32_t pc, value *dst, const value *args);

/* Frees the host functions registered on `o`, calling their destructors
 * (clause_options_free). */
void extern_free_functions(clause_options *o);

#endif
