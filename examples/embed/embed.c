/*
 * embed.c - how a gateway embeds clause: a complete example to copy.
 *
 *   cc -o embed embed.c $(pkg-config --cflags --libs clause) -lpthread
 *   ./embed [POLICY]
 *
 * The pattern, which is all a gateway needs:
 *
 *   1. At start-up, compile the policy ONCE (clause_compile_file, or
 *      clause_load for a `.clb` file made by `clause compile`). The program
 *      is immutable: every thread may share it without locks.
 *   2. Look up the index of every input field you will set ONCE
 *      (clause_field_index). Setting values by index is what keeps the
 *      per-request path cheap: no name lookups, no JSON.
 *   3. Give each worker thread its OWN clause_vm. A VM holds one request's
 *      inputs and the scratch space of its evaluations; it is never shared.
 *   4. Per request: clause_vm_reset, the typed setters for the fields the
 *      request has (a field you do not set is absent), clause_vm_eval, then
 *      act on the decision. After warm-up, evaluation allocates nothing
 *      (the state store allocates as new counter keys arrive).
 *   5. Counters and suspensions live in the state store of the options the
 *      program was compiled with (NULL options: the program's own memory
 *      store). Every VM of the program shares it, on every thread.
 *
 * This program plays four worker threads that evaluate a few requests
 * whose decisions are known from the seed policy's terms, each round from
 * fresh account ids (so the per-account rate limits do not kick in), then
 * one request each from the same free-tier account at the same second: the
 * shared store counts all four, so exactly one is over the free tier's 3
 * requests a minute. It exits 0 only when every decision is the expected
 * one. `make check` builds and runs it.
 *
 * POLICY defaults to $CLAUSE_SRCDIR/examples/seed/terms.clause (or
 * examples/seed/terms.clause when CLAUSE_SRCDIR is not set).
 */
#include <clause.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NTHREADS 4
#define ROUNDS 500 /* each thread evaluates every request this many times */

/* ---- the fields this gateway fills in ------------------------------------------
 * Indices are looked up once, after compiling, and shared read-only by the
 * threads. A field the policy does not declare has index -1: a gateway
 * would then simply not set it (the policy does not read it). */
typedef struct field_indices {
  int account_id, account_tier, account_verified, account_org;
  int request_time, request_endpoint, request_model, request_tokens_in, request_tokens_out;
  int request_purpose, request_tags, request_user_agent;
  int client_ip, client_country;
} field_indices;

static field_indices fields;

static int lookup(const clause_program *p, const char *path) {
  int i = clause_field_index(p, path);
  if (i < 0) fprintf(stderr, "embed: the policy has no field %s\n", path);
  return i;
}

/* ---- requests, as a gateway would have them after parsing its own input ---------- */

#define SECONDS(s) ((int64_t)(s) * 1000000000) /* timestamps are ns since the epoch */

typedef struct request {
  const char *name;
  const char *account_id, *tier, *org;
  bool verified;
  int64_t time_ns;
  const char *endpoint, *model;
  int64_t tokens_in, tokens_out;
  const char *purpose;    /* NULL: the client sent none (an optional field) */
  const char *tags_json;  /* NULL: none; lists are set from JSON text */
  const char *user_agent; /* NULL: none */
  const char *ip, *country;

  /* What the seed policy decides, from its terms. */
  clause_effect effect;
  const char *rule;       /* NULL: no rule decided */
  int64_t retry_after_ms; /* -1 unless a throttle with retry_after */
  const char *flag;       /* a flag that must be raised, or NULL */
} request;

static const request requests[] = {
    {"ordinary chat request", "acct_t01", "tier-2", "org-harbor", true, SECONDS(1714642200),
     "/v1/chat/completions", "m-large", 1200, 600, NULL, NULL, "corvidae-python/1.8.2",
     "198.51.100.20", "DE", CLAUSE_ALLOW, NULL, -1, NULL},
    /* Terms of Use §2(c)(iii): outputs may not train competing models. */
    {"distillation purpose", "acct_t02", "tier-3", "org-vireo", true, SECONDS(1714557600),
     "/v1/chat/completions", "m-large", 900, 4000, "distillation", NULL, NULL, "203.0.113.9", "US",
     CLAUSE_DENY, "no-competing-models", -1, NULL},
    /* Export controls decide before the tier's model list (both deny; the
     * first in file order names the decision). */
    {"embargoed country", "acct_t05", "free", "org-none", false, SECONDS(1707912000),
     "/v1/chat/completions", "m-large", 50, 50, NULL, NULL, NULL, "198.51.100.77", "IR", CLAUSE_DENY,
     "embargoed-country", -1, NULL},
    /* Over the tier-1 burst allowance: throttled, retry after 60 s. */
    {"burst over the tier-1 cap", "acct_t07", "tier-1", "org-maple", true, SECONDS(1712203444),
     "/v1/chat/completions", "m-medium", 15000, 2000, NULL, NULL, NULL, "192.0.2.8", "CA",
     CLAUSE_THROTTLE, "paid-tier-token-cap", 60000, NULL},
    /* An evaluation harness is flagged for review, not refused. */
    {"evaluation harness", "acct_t11", "tier-3", "org-heron", true, SECONDS(1728555010),
     "/v1/chat/completions", "m-reason", 700, 900, NULL, "[\"eval\", \"nightly\"]",
     "lm-eval-harness/0.4.2 python-httpx/0.27", "192.0.2.130", "SE", CLAUSE_ALLOW, NULL, -1,
     "eval-harness"},
};
#define NREQUESTS (sizeof requests / sizeof requests[0])

/* ---- binding a request ------------------------------------------------------------ */

/* Strings are copied into the VM, so the gateway's buffers may be reused
 * as soon as a setter returns. Every setter returns CLAUSE_OK or an error
 * (CLAUSE_ERR_TYPE when the policy declares the field with another type). */
static int set_string(clause_vm *vm, int field, const char *s) {
  if (field < 0 || !s) return CLAUSE_OK; /* not in the policy, or absent */
  return clause_vm_set_string(vm, field, s, strlen(s));
}

static int bind_request(clause_vm *vm, const request *r, const char *account_id) {
  int rc = CLAUSE_OK;
  clause_vm_reset(vm); /* forget the previous request: every field absent */
  rc |= set_string(vm, fields.account_id, account_id);
  rc |= set_string(vm, fields.account_tier, r->tier);
  rc |= set_string(vm, fields.account_org, r->org);
  if (fields.account_verified >= 0) rc |= clause_vm_set_bool(vm, fields.account_verified, r->verified);
  if (fields.request_time >= 0) rc |= clause_vm_set_timestamp(vm, fields.request_time, r->time_ns);
  rc |= set_string(vm, fields.request_endpoint, r->endpoint);
  rc |= set_string(vm, fields.request_model, r->model);
  if (fields.request_tokens_in >= 0) rc |= clause_vm_set_int(vm, fields.request_tokens_in, r->tokens_in);
  if (fields.request_tokens_out >= 0) rc |= clause_vm_set_int(vm, fields.request_tokens_out, r->tokens_out);
  rc |= set_string(vm, fields.request_purpose, r->purpose);
  /* Lists and maps are set from their JSON text. */
  if (fields.request_tags >= 0 && r->tags_json)
    rc |= clause_vm_set_field_json(vm, fields.request_tags, r->tags_json, strlen(r->tags_json));
  rc |= set_string(vm, fields.request_user_agent, r->user_agent);
  rc |= set_string(vm, fields.client_ip, r->ip);
  rc |= set_string(vm, fields.client_country, r->country);
  return rc; /* statuses are 0 or negative: any failure leaves it non-zero */
}

/* ---- checking a decision ------------------------------------------------------------- */

static bool same(const char *a, const char *b) { return a == b || (a && b && strcmp(a, b) == 0); }

static bool has_flag(const clause_decision *d, const char *flag) {
  for (size_t i = 0; i < d->n_flags; i++)
    if (strcmp(d->flags[i], flag) == 0) return true;
  return false;
}

/* Whether the decision is the expected one; says why not on stderr. */
static bool check(const request *r, const clause_decision *d) {
  bool ok = d->effect == r->effect && same(d->rule, r->rule) &&
            d->retry_after_ms == r->retry_after_ms && (!r->flag || has_flag(d, r->flag));
  if (!ok) {
    /* The decision's JSON form (SPEC 5.4) is the easiest way to log it. A
     * buffer on the stack is enough for most decisions; the return value
     * says how much a complete one needs, as snprintf's does. */
    char json[2048];
    int n = clause_decision_json(d, json, sizeof json);
    fprintf(stderr, "embed: %s: expected %s %s, got %s%s\n", r->name, clause_effect_name(r->effect),
            r->rule ? r->rule : "(default)", json, n >= (int)sizeof json ? "..." : "");
  }
  return ok;
}

/* ---- the worker threads ----------------------------------------------------------------- */

typedef struct worker {
  pthread_t thread;
  int id;
  const clause_program *program; /* shared by every thread */
  long decisions, unexpected, errors;
  long per_effect[4];
  clause_effect shared_account; /* the decision for the shared account */
} worker;

/* A free-tier request that every thread sends once, for one account, at a
 * time after every other request's. (The memory store frees a counter key
 * idle for two windows of request time, measured against each request's
 * time; a key of earlier traffic may go while later traffic is counted.) */
static const request shared_account_request = {
    "shared free-tier account", "acct_shared", "free", "org-wren", true, SECONDS(1733047200),
    "/v1/chat/completions", "m-small", 100, 100, NULL, NULL, NULL, "198.51.100.60", "FR",
    CLAUSE_ALLOW, NULL, -1, NULL};

static void *work(void *arg) {
  worker *w = arg;
  clause_vm *vm = clause_vm_new(w->program); /* this thread's own state */
  if (!vm) {
    w->errors++;
    return NULL;
  }
  for (int round = 0; round < ROUNDS; round++) {
    /* Each thread walks the requests from a different starting point, so
     * that threads evaluate different requests at the same moment. */
    for (size_t k = 0; k < NREQUESTS; k++) {
      const request *r = &requests[(k + (size_t)w->id) % NREQUESTS];
      char account[64];
      snprintf(account, sizeof account, "%s-%d-%d", r->account_id, w->id, round);
      if (bind_request(vm, r, account) != CLAUSE_OK) {
        fprintf(stderr, "embed: %s: a field could not be set\n", r->name);
        w->errors++;
        continue;
      }
      clause_decision d;
      if (clause_vm_eval(vm, &d) != CLAUSE_OK) {
        w->errors++;
        continue;
      }
      /* `d` and everything it points to belong to the VM: use them before
       * the next clause_vm_eval or clause_vm_reset on this VM, copy what
       * must live longer. */
      w->decisions++;
      w->per_effect[d.effect]++;
      if (!check(r, &d)) w->unexpected++;
    }
  }
  clause_decision d;
  const request *r = &shared_account_request;
  if (bind_request(vm, r, r->account_id) != CLAUSE_OK || clause_vm_eval(vm, &d) != CLAUSE_OK) w->errors++;
  else w->shared_account = d.effect;
  clause_vm_free(vm);
  return NULL;
}

int main(int argc, char **argv) {
  char default_path[4096];
  const char *path = argc > 1 ? argv[1] : NULL;
  if (!path) {
    const char *srcdir = getenv("CLAUSE_SRCDIR");
    snprintf(default_path, sizeof default_path, "%s/examples/seed/terms.clause",
             srcdir && *srcdir ? srcdir : ".");
    path = default_path;
  }

  /* 1. Compile once. NULL options: the defaults. */
  clause_error err;
  clause_program *program = clause_compile_file(path, NULL, &err);
  if (!program) {
    fprintf(stderr, "%s:%d:%d: %s\n", err.file[0] ? err.file : path, err.line, err.column,
            err.message);
    return 2;
  }

  /* 2. Field indices, once. */
  fields.account_id = lookup(program, "account.id");
  fields.account_tier = lookup(program, "account.tier");
  fields.account_verified = lookup(program, "account.verified");
  fields.account_org = lookup(program, "account.org");
  fields.request_time = lookup(program, "request.time");
  fields.request_endpoint = lookup(program, "request.endpoint");
  fields.request_model = lookup(program, "request.model");
  fields.request_tokens_in = lookup(program, "request.tokens_in");
  fields.request_tokens_out = lookup(program, "request.tokens_out");
  fields.request_purpose = lookup(program, "request.purpose");
  fields.request_tags = lookup(program, "request.tags");
  fields.request_user_agent = lookup(program, "request.user_agent");
  fields.client_ip = lookup(program, "client.ip");
  fields.client_country = lookup(program, "client.country");

  /* 3. Threads sharing the program, each with its own VM. */
  worker workers[NTHREADS];
  memset(workers, 0, sizeof workers);
  int started = 0;
  for (int t = 0; t < NTHREADS; t++) {
    workers[t].id = t;
    workers[t].program = program;
    if (pthread_create(&workers[t].thread, NULL, work, &workers[t]) != 0) {
      fprintf(stderr, "embed: cannot start thread %d\n", t);
      break;
    }
    started++;
  }
  for (int t = 0; t < started; t++) pthread_join(workers[t].thread, NULL);

  /* 4. The summary. Free the VMs (done by the threads), then the program. */
  long decisions = 0, unexpected = 0, errors = 0, throttled = 0;
  for (int t = 0; t < started; t++) {
    throttled += workers[t].shared_account == CLAUSE_THROTTLE;
    const worker *w = &workers[t];
    printf("thread %d: %ld decisions (allow %ld, throttle %ld, deny %ld, suspend %ld), %ld unexpected\n",
           t, w->decisions, w->per_effect[CLAUSE_ALLOW], w->per_effect[CLAUSE_THROTTLE],
           w->per_effect[CLAUSE_DENY], w->per_effect[CLAUSE_SUSPEND], w->unexpected);
    decisions += w->decisions;
    unexpected += w->unexpected;
    errors += w->errors;
  }
  clause_program_free(program);

  printf("shared account: %ld of %d requests throttled (the free tier allows 3 a minute)\n", throttled,
         started);
  bool ok = started == NTHREADS && unexpected == 0 && errors == 0 &&
            decisions == (long)NTHREADS * ROUNDS * (long)NREQUESTS && throttled == NTHREADS - 3;
  printf("%s: %ld decisions on %d threads sharing one program, %ld unexpected, %ld errors\n",
         ok ? "ok" : "FAILED", decisions, started, unexpected, errors);
  return ok ? 0 : 1;
}
