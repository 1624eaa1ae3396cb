/*
 * explain.h - `clause check --explain`: per request, every rule evaluated,
 * whether it matched, and the value of each condition of its `when`
 * (each top-level conjunct), `unless`, `retry_after` and `suspend`, from
 * the VM's trace (vm.h). Parts skipped by short-circuit show as not
 * evaluated.
 *
 * Use: build an explainer once per program; give each VM a vm_trace
 * (events sized to the program's code) in vm->trace; after each
 * clause_vm_eval render the trace, then set trace->n = 0.
 */
#ifndef CLAUSE_EXPLAIN_H
#define CLAUSE_EXPLAIN_H

#include "../vm/vm.h"

typedef struct explainer explainer;

explainer *explainer_new(const clause_program *p);
void explainer_free(explainer *x);

/* One line per rule, then one per condition, each prefixed by indent. */
void explain_text(const explainer *x, const vm_trace *t, outbuf *o, const char *indent);
/* A JSON array: [{"rule", "result", "conditions": [{"expr", "evaluated",
 * "value"[, "error"]}]}] — the `explain` key of `check --format jsonl`. */
void explain_json(const explainer *x, const vm_trace *t, outbuf *o);

#endif
