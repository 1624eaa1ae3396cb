/*
 * clause.h - the public C API of libclause.
 *
 * clause compiles API terms of service (rule files, `*.clause`) into verified
 * bytecode and evaluates that bytecode against each request's metadata.
 *
 * The objects, and who owns what:
 *
 *   clause_options   settings shared by programs (extern allow-list, host
 *                    functions, library path, state store). Owned by the
 *                    caller; free it after every program loaded with it.
 *   clause_program   an immutable, verified program. Owned by the caller;
 *                    shareable by any number of threads at once.
 *   clause_vm        per-thread evaluation state for one program. Owned by
 *                    the caller; one thread at a time.
 *   clause_decision  the result of one evaluation. Everything it points to
 *                    belongs to the VM and stays valid until the next
 *                    clause_vm_eval, clause_vm_reset or clause_vm_free on it.
 *
 * Every function that returns int returns CLAUSE_OK (0) on success and a
 * negative clause_status on failure. The library never prints, never exits
 * and never aborts.
 */
#ifndef CLAUSE_H
#define CLAUSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum clause_status {
  CLAUSE_OK = 0,
  CLAUSE_ERR_ARG = -1,     /* a NULL or out-of-range argument */
  CLAUSE_ERR_NOMEM = -2,   /* out of memory */
  CLAUSE_ERR_IO = -3,      /* a file could not be read or written */
  CLAUSE_ERR_COMPILE = -4, /* the rule file does not compile */
  CLAUSE_ERR_LOAD = -5,    /* bytecode rejected (format, checksum, verifier) */
  CLAUSE_ERR_TYPE = -6,    /* a value of the wrong type for the field */
  CLAUSE_ERR_JSON = -7,    /* malformed JSON input */
  CLAUSE_ERR_EVAL = -8     /* evaluation could not produce a decision */
} clause_status;

/* Effects a decision can have, in increasing severity. (`flag` never
 * decides; flagged rules are listed in clause_decision.flags.) */
typedef enum clause_effect {
  CLAUSE_ALLOW = 0,
  CLAUSE_THROTTLE = 1,
  CLAUSE_DENY = 2,
  CLAUSE_SUSPEND = 3
} clause_effect;

/* Filled on failure. `file` is empty when the error has no file; `line` and
 * `column` are 1-based and 0 when unknown. */
typedef struct clause_error {
  char file[256];
  int line;
  int column;
  char message[512];
} clause_error;

typedef struct clause_options clause_options;
typedef struct clause_program clause_program;
typedef struct clause_vm clause_vm;

/* An obligation (`then ACTION(ARGS)`) of a matching rule. `args_json` is a
 * JSON array holding the arguments' JSON forms (SPEC section 5.4). */
typedef struct clause_obligation {
  const char *rule;
  const char *action;
  const char *args_json;
} clause_obligation;

/* An error met during evaluation. `rule` is NULL for errors that belong to
 * no rule (a missing required field, a store failure). */
typedef struct clause_eval_error {
  const char *rule;
  const char *message;
} clause_eval_error;

typedef struct clause_decision {
  clause_effect effect;
  const char *rule;       /* NULL when the default decided */
  const char *reason;     /* NULL when the default decided or no reason */
  const char *cite;       /* NULL when absent */
  int64_t retry_after_ms; /* -1 unless a throttle with retry_after decided */
  size_t n_flags;
  const char *const *flags;
  size_t n_obligations;
  const clause_obligation *obligations;
  size_t n_errors;
  const clause_eval_error *errors;
} clause_decision;

/* ---- options ---------------------------------------------------------- */

/* A new options object with the defaults. NULL when out of memory. */
clause_options *clause_options_new(void);
/* Frees the options; NULL is fine. Call after every program loaded with
 * them has been freed. */
void clause_options_free(clause_options *o);
/* The folders (colon-separated) from which `extern ... from "LIB"` libraries
 * may be opened. The string is copied. */
int clause_options_set_extern_path(clause_options *o, const char *dirs);
/* Extra folders (colon-separated) searched for `import` modules before the
 * installed standard library. The string is copied. */
int clause_options_set_lib_path(clause_options *o, const char *dirs);
/* The state store: "memory" (the default) or "redis://HOST:PORT[/DB]". */
int clause_options_set_store(clause_options *o, const char *url, clause_error *err);

/* ---- extern functions (SPEC section 6) ----------------------------------
 *
 * `extern fn NAME(P: TYPE, ...) -> TYPE from "LIB" [symbol "SYM"]` calls a
 * plain C function of a shared library through libffi, with these C types:
 *
 *   bool -> bool          int -> int64_t        uint -> uint64_t
 *   double -> double      string -> const char * (NUL-terminated UTF-8)
 *   timestamp -> int64_t nanoseconds since the epoch (1677..2262; a
 *                timestamp outside that range is an error, not a call)
 *   duration -> int64_t nanoseconds
 *
 * The library is opened (dlopen) when a program is prepared for evaluation
 * (clause_compile_file, clause_load), and only when it lies in a folder of
 * the extern allow-list (clause_options_set_extern_path): LIB is looked up
 * in each folder in turn, and the file it resolves to (symbolic links and
 * `..` followed) must lie inside that folder. A library outside, a missing
 * library or a missing symbol fails the load with a message naming it. The
 * symbol must be defined by LIB itself, not by a library LIB depends on.
 * Every exported function of an allowed library can be named by a program,
 * with whatever signature it declares: the allow-list is a trust decision.
 *
 * Calls, for both kinds of extern:
 *   - An argument that is an error (an absent field, a failed operation)
 *     is not passed: the call's result is that error, as for any CEL
 *     function. A string argument holding a NUL byte is an error too (it
 *     cannot be passed as a C string), and so is an argument whose run-time
 *     type differs from the declaration (a `dyn` value).
 *   - A string argument is valid only during the call.
 *   - A returned string is copied by the VM at once, before anything else
 *     runs on that thread; the function keeps ownership. It must therefore
 *     remain valid after the function returns: a literal, a static or
 *     thread-local buffer, or memory the function manages. It must be
 *     valid UTF-8, else the call fails.
 *   - A failing call makes the expression an error: the rule fails and
 *     its policy's on_error applies; a failing `reason` falls back to the
 *     rule id; a failing `then` argument becomes null.
 *   - A plain C extern (`from "LIB"`) can signal failure only by returning
 *     NULL for a string result. Host functions (below) report errors with
 *     clause_call_error.
 *   - Externs are called concurrently when several threads evaluate one
 *     program: they must be thread-safe.
 *
 * Host functions: an extern declared without `from` is supplied by the
 * embedding program, registered on the options before the program is
 * loaded. A program that calls an extern no one registered, or registered
 * with another signature, fails to load with a message naming it. */

/* The types an extern takes and returns. */
typedef enum clause_type {
  CLAUSE_TYPE_BOOL = 1,
  CLAUSE_TYPE_INT = 2,
  CLAUSE_TYPE_UINT = 3,
  CLAUSE_TYPE_DOUBLE = 4,
  CLAUSE_TYPE_STRING = 5,
  CLAUSE_TYPE_TIMESTAMP = 6, /* int64_t nanoseconds since the epoch */
  CLAUSE_TYPE_DURATION = 7   /* int64_t nanoseconds */
} clause_type;

/* An argument or result of a host function. */
typedef struct clause_value {
  clause_type type;
  union {
    bool b;      /* CLAUSE_TYPE_BOOL */
    int64_t i;   /* CLAUSE_TYPE_INT, and nanoseconds for TIMESTAMP, DURATION */
    uint64_t u;  /* CLAUSE_TYPE_UINT */
    double d;    /* CLAUSE_TYPE_DOUBLE */
    struct {
      const char *ptr; /* UTF-8; arguments are also NUL-terminated */
      size_t len;
    } s;         /* CLAUSE_TYPE_STRING */
  };
} clause_value;

/* The context of one call of a host function. */
typedef struct clause_call_ctx clause_call_ctx;

/* A host function: `nargs` arguments of the registered types, valid during
 * the call. `result->type` is already the registered return type; the
 * function fills the matching member (for a string, ptr and len, under the
 * ownership rule above), or calls clause_call_error. */
typedef void (*clause_host_fn)(clause_call_ctx *ctx, const clause_value *args, size_t nargs,
                               clause_value *result);

/* The function always returns the same result for the same arguments and
 * has no effect worth repeating: a call with constant arguments may be made
 * once, on the loading thread when the program is loaded, instead of on
 * every evaluation (a call that fails then is made again at run time). */
#define CLAUSE_FN_PURE 0x1u

/* The most parameters an extern may declare. */
#define CLAUSE_MAX_PARAMS 16

/* Registers host function `name` (an identifier; the name the program's
 * `extern fn` declares) taking `nparams` arguments of types params[0..) and
 * returning `ret`. `user_data` is handed to every call
 * (clause_call_user_data); `destroy` (may be NULL) is called with it when
 * the options are freed, and also at once when registration fails (a bad
 * argument, a name already registered, out of memory), so the caller never
 * frees it. `flags`: 0 or CLAUSE_FN_PURE. At most CLAUSE_MAX_PARAMS
 * parameters. The name
 * and the types are copied. Programs loaded with the options call the
 * function from any thread evaluating them. */
int clause_options_add_function(clause_options *o, const char *name, const clause_type *params,
                                size_t nparams, clause_type ret, clause_host_fn fn, void *user_data,
                                void (*destroy)(void *), unsigned flags);

/* The user_data given at registration. */
void *clause_call_user_data(clause_call_ctx *ctx);
/* Fails the call with a message (copied; the result is then ignored). The
 * error reads "NAME: MESSAGE" in the decision's errors. */
void clause_call_error(clause_call_ctx *ctx, const char *message);

/* ---- programs ---------------------------------------------------------- */

/* Compiles a rule file and prepares it for evaluation: the externs it
 * calls are bound (libraries opened from the options' allow-list, host
 * functions looked up), so `opts` must outlive the program. Returns NULL on
 * failure with `err` (may be NULL) holding the first error, a failing
 * extern's at its declaration. `opts` may be NULL (defaults: no extern may
 * be bound). The caller owns the program. Thread-safe: compiles share
 * nothing but the process's dynamic linker. */
clause_program *clause_compile_file(const char *path, const clause_options *opts,
                                    clause_error *err);
/* Loads and verifies bytecode (a `.clb` file's bytes), then binds its
 * externs as clause_compile_file does: the file's libraries are checked
 * against this load's allow-list, whatever machine compiled it. The bytes
 * are copied and may be freed after the call. NULL on failure, with `err`
 * saying why. */
clause_program *clause_load(const void *bytes, size_t len, const clause_options *opts,
                            clause_error *err);
/* Writes the program as a `.clb` file. */
int clause_program_save(const clause_program *p, const char *path, clause_error *err);
/* Frees a program and closes the extern libraries it opened; NULL is fine.
 * Free its VMs first. */
void clause_program_free(clause_program *p);
/* The index of the input field with this dotted path, -1 if unknown. */
int clause_field_index(const clause_program *p, const char *path);

/* ---- evaluation ---------------------------------------------------------- */

/* Per-thread evaluation state. NULL when out of memory. The program must
 * outlive the VM. A VM is used by one thread at a time. */
clause_vm *clause_vm_new(const clause_program *p);
void clause_vm_free(clause_vm *vm);
/* Clears every input field (they read as absent). */
void clause_vm_reset(clause_vm *vm);

/* Setters by field index. Strings and bytes are copied into the VM (into
 * the field's own buffer, reused while the text fits, so that a VM fed by
 * setters alone does not grow). A value of a type the schema does not
 * accept for the field is CLAUSE_ERR_TYPE and leaves the field as it was. */
int clause_vm_set_string(clause_vm *vm, int field, const char *s, size_t len);
int clause_vm_set_int(clause_vm *vm, int field, int64_t v);
int clause_vm_set_double(clause_vm *vm, int field, double v);
int clause_vm_set_bool(clause_vm *vm, int field, bool v);
int clause_vm_set_timestamp(clause_vm *vm, int field, int64_t unix_nanos);
int clause_vm_set_uint(clause_vm *vm, int field, uint64_t v);
int clause_vm_set_duration(clause_vm *vm, int field, int64_t nanos);
int clause_vm_set_bytes(clause_vm *vm, int field, const void *b, size_t len);
/* Sets one field from its JSON text (any type, lists and maps included). */
int clause_vm_set_field_json(clause_vm *vm, int field, const char *json, size_t len);
/* Clears the inputs, then binds a whole request object (SPEC section 8's
 * binding rules). Malformed JSON: CLAUSE_ERR_JSON with the position in err. */
int clause_vm_set_json(clause_vm *vm, const char *json, size_t len, clause_error *err);

/* Evaluates the policy on the current inputs. Allocates nothing once the
 * VM's scratch space has grown to the policy's needs. */
int clause_vm_eval(clause_vm *vm, clause_decision *out);

/* Writes the decision's JSON form (SPEC section 5.4) into buf (NUL-terminated
 * when cap > 0) and returns its length as snprintf does: the size needed
 * when cap is too small. Negative on a bad argument. Allocates nothing. */
int clause_decision_json(const clause_decision *d, char *buf, size_t cap);

/* The effect's name: "allow", "throttle", "deny" or "suspend". */
const char *clause_effect_name(clause_effect e);

#ifdef __cplusplus
}
#endif
#endif /* CLAUSE_H */
