/*
 * decision_json.c - a decision's JSON form (SPEC section 5.4): compact, keys
 * in the order effect, rule, reason, cite, flags, obligations,
 * retry_after_ms, errors. Written through a fixed outbuf, so nothing is
 * allocated and a short buffer still yields the length needed.
 */
#include <limits.h>
#include <string.h>

#include "../include/clause.h"
#include "cel.h"
#include "value.h"

const char *clause_effect_name(clause_effect e) {
  switch (e) {
  case CLAUSE_ALLOW: return "allow";
  case CLAUSE_THROTTLE: return "throttle";
  case CLAUSE_DENY: return "deny";
  case CLAUSE_SUSPEND: return "suspend";
  }
  return "unknown";
}

static void put_string_or_null(outbuf *o, const char *s) {
  if (s) cel_json_string(o, s, strlen(s));
  else ob_put(o, "null", 4);
}

int clause_decision_json(const clause_decision *d, char *buf, size_t cap) {
  if (!d || (!buf && cap)) return CLAUSE_ERR_ARG;
  if ((d->n_flags && !d->flags) || (d->n_obligations && !d->obligations) ||
      (d->n_errors && !d->errors))
    return CLAUSE_ERR_ARG;
  switch (d->effect) {
  case CLAUSE_ALLOW: case CLAUSE_THROTTLE: case CLAUSE_DENY: case CLAUSE_SUSPEND: break;
  default: return CLAUSE_ERR_ARG;
  }
  outbuf o;
  ob_init_fixed(&o, buf, cap);
  ob_puts(&o, "{\"effect\":\"");
  ob_puts(&o, clause_effect_name(d->effect));
  ob_puts(&o, "\",\"rule\":");
  put_string_or_null(&o, d->rule);
  ob_puts(&o, ",\"reason\":");
  put_string_or_null(&o, d->reason);
  ob_puts(&o, ",\"cite\":");
  put_string_or_null(&o, d->cite);
  ob_puts(&o, ",\"flags\":[");
  for (size_t i = 0; i < d->n_flags; i++) {
    if (i) ob_putc(&o, ',');
    put_string_or_null(&o, d->flags[i]);
  }
  ob_puts(&o, "],\"obligations\":[");
  for (size_t i = 0; i < d->n_obligations; i++) {
    const clause_obligation *ob = &d->obligations[i];
    ob_puts(&o, i ? ",{\"rule\":" : "{\"rule\":");
    put_string_or_null(&o, ob->rule);
    ob_puts(&o, ",\"action\":");
    put_string_or_null(&o, ob->action);
    ob_puts(&o, ",\"args\":");
    ob_puts(&o, ob->args_json ? ob->args_json : "[]"); /* already JSON text */
    ob_putc(&o, '}');
  }
  ob_puts(&o, "],\"retry_after_ms\":");
  if (d->retry_after_ms < 0) ob_put(&o, "null", 4);
  else ob_put_int(&o, d->retry_after_ms);
  ob_puts(&o, ",\"errors\":[");
  for (size_t i = 0; i < d->n_errors; i++) {
    const clause_eval_error *e = &d->errors[i];
    ob_puts(&o, i ? ",{\"rule\":" : "{\"rule\":");
    put_string_or_null(&o, e->rule);
    ob_puts(&o, ",\"message\":");
    const char *msg = e->message ? e->message : "";
    cel_json_string(&o, msg, strlen(msg));
    ob_putc(&o, '}');
  }
  ob_puts(&o, "]}");
  ob_cstr(&o);
  if (o.len > INT_MAX) return CLAUSE_ERR_ARG;
  return (int)o.len;
}
