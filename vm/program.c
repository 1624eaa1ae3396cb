/*
 * program.c - tables that describe programs (opcode names, operand kinds,
 * effect names), expanded from the one opcode list, and the program
 * listing printed by `clause disasm`.
 */
#include <inttypes.h>
#include <string.h>

#include "program.h"

#define OPCODE_STRINGS(name, kinds, doc) #name,
const char *const opcode_names[BC__COUNT] = {CLAUSE_OPCODES(OPCODE_STRINGS)};
#undef OPCODE_STRINGS
#define OPCODE_KINDS(name, kinds, doc) kinds,
const char *const opcode_kinds[BC__COUNT] = {CLAUSE_OPCODES(OPCODE_KINDS)};
#undef OPCODE_KINDS
#define OPCODE_DOCS(name, kinds, doc) doc,
const char *const opcode_docs[BC__COUNT] = {CLAUSE_OPCODES(OPCODE_DOCS)};
#undef OPCODE_DOCS

const char *rule_effect_name(rule_effect e) {
  static const char *const names[RE__COUNT] = {"allow", "flag", "throttle", "deny", "suspend"};
  return e < RE__COUNT ? names[e] : "?";
}

/* ---- listing --------------------------------------------------------------- */

static void list_type(outbuf *o, const rtype *t) {
  switch (t->kind) {
  case CV_LIST:
    ob_puts(o, "list(");
    list_type(o, t->elem);
    ob_putc(o, ')');
    break;
  case CV_MAP:
    ob_puts(o, "map(");
    list_type(o, t->key);
    ob_puts(o, ", ");
    list_type(o, t->elem);
    ob_putc(o, ')');
    break;
  case RT_ANY: ob_puts(o, "any"); break;
  case CV_TIMESTAMP: ob_puts(o, "timestamp"); break;
  case CV_DURATION: ob_puts(o, "duration"); break;
  default: ob_puts(o, cv_kind_name((cv_kind)t->kind));
  }
}

static void list_operand(outbuf *o, const clause_program *p, uint32_t pc, char kind, unsigned x) {
  switch (kind) {
  case 'w': case 'r': case 'm': case 'i': ob_printf(o, "r%u", x); break;
  case 'k': case 's': case 'x': ob_printf(o, "k%u", x); break;
  case 'j': ob_printf(o, "->%04u", pc + 1 + x); break;
  case 'l': ob_printf(o, "->%04u", pc - x); break;
  case 'f': ob_printf(o, "%s/%u", p->calls[x].name, p->calls[x].nargs); break;
  case 'e': ob_printf(o, "%s/%u", p->externs[x].name, p->externs[x].nparams); break;
  case 'u': ob_printf(o, "\"%s\"", p->rules[x].id); break;
  case 'o': ob_printf(o, "%s/%u", p->obligs[x].action, p->obligs[x].nargs); break;
  default: ob_printf(o, "%u", x); break;
  }
}

void program_disasm(const clause_program *p, outbuf *o) {
  static const char *const settings[2][2] = {{"deny_overrides", "first_match"}, {"skip", "deny"}};
  if (p->kind == PROG_EXPR) {
    ob_puts(o, "; expression\n");
  } else {
    ob_printf(o, "; policy \"%s\" version \"%s\"\n", p->name ? p->name : "", p->version ? p->version : "");
    ob_printf(o, "; default %s, combine %s, on_error %s, on_store_error %s\n",
              rule_effect_name((rule_effect)p->default_effect), settings[0][p->first_match],
              settings[1][p->on_error_deny], p->on_store_error_allow ? "allow" : "deny");
  }
  ob_printf(o, "; %u fields, %u registers, %u constants, %u rules, %u instructions\n", p->nfields,
            p->nregs, p->nconsts, p->nrules, p->ncode);
  for (uint32_t i = 0; i < p->nfields; i++) {
    ob_printf(o, ";   r%-3u field %s ", i, p->fields[i].path);
    list_type(o, p->fields[i].type);
    ob_puts(o, p->fields[i].optional ? "?" : "");
    ob_puts(o, p->fields[i].clock ? " @clock" : "");
    ob_putc(o, '\n');
  }
  if (p->now_reg != PROG_NONE) ob_printf(o, ";   r%-3u now\n", p->now_reg);
  for (uint32_t i = 0; i < p->ncounters; i++) {
    const prog_counter *c = &p->counters[i];
    bool whole = c->window_ns % 1000000000 == 0;
    ob_printf(o, ";   r%-3u counter %s window %lld%s key block %u", p->counter_reg + i, c->name,
              (long long)(whole ? c->window_ns / 1000000000 : c->window_ns), whole ? "s" : "ns", c->key_block);
    if (c->mode != CM_COUNT) ob_printf(o, " %s block %u", c->mode == CM_ADD ? "add" : "distinct", c->arg_block);
    for (int e = RE_ALLOW; e < RE__COUNT; e++)
      if (c->on_mask & (1u << e)) ob_printf(o, " on %s", rule_effect_name((rule_effect)e));
    ob_putc(o, '\n');
  }
  for (uint32_t i = 0; i < p->nlets; i++) ob_printf(o, ";   r%-3u let\n", p->let_regs[i]);
  for (uint32_t i = 0; i < p->nconsts; i++) {
    ob_printf(o, ";   k%-3u ", i);
    cel_canon(o, &p->consts[i]);
    ob_putc(o, '\n');
  }
  for (uint32_t i = 0; i < p->nexterns; i++) {
    const prog_extern *x = &p->externs[i];
    ob_printf(o, "; extern %u %s(", i, x->name);
    for (uint32_t k = 0; k < x->nparams; k++) {
      if (k) ob_puts(o, ", ");
      list_type(o, &(rtype){.kind = x->params[k]});
    }
    ob_puts(o, ") -> ");
    list_type(o, &(rtype){.kind = x->ret});
    if (x->lib) ob_printf(o, " from \"%s\" symbol \"%s\"", x->lib, x->symbol);
    else ob_puts(o, " (host function)");
    ob_putc(o, '\n');
  }
  for (uint32_t i = 0; i < p->nrules; i++) {
    const prog_rule *r = &p->rules[i];
    ob_printf(o, "; rule %u \"%s\" %s", i, r->id, rule_effect_name((rule_effect)r->effect));
    if (r->cite) ob_printf(o, " cite \"%s\"", r->cite);
    if (r->reason_block != PROG_NONE) ob_printf(o, " reason block %u", r->reason_block);
    if (r->suspend_key_block != PROG_NONE) ob_printf(o, " suspend key block %u", r->suspend_key_block);
    ob_putc(o, '\n');
  }
  for (uint32_t b = 0; b < p->nblocks; b++) {
    if (b == 0)
      ob_printf(o, "block 0 (%s):\n", p->kind == PROG_EXPR ? "expression" : "rules");
    else
      ob_printf(o, "block %u (value):\n", b);
    for (uint32_t pc = p->block_start[b]; pc < p->block_start[b + 1]; pc++) {
      instr in = p->code[pc];
      unsigned op = INSTR_OP(in);
      size_t line_start = o->len;
      ob_printf(o, "(%04u) %-9s", pc, opcode_names[op]);
      const char *kinds = opcode_kinds[op];
      unsigned ops[3] = {INSTR_A(in), INSTR_B(in), INSTR_C(in)};
      bool first = true;
      for (int k = 0; k < 3; k++) {
        if (kinds[k] == '_') continue;
        ob_puts(o, first ? " " : ", ");
        first = false;
        list_operand(o, p, pc, kinds[k], ops[k]);
      }
      const char *src = p->debug ? p->debug[pc] : NULL;
      if (src) {
        size_t width = o->len - line_start;
        for (; width < 40; width++) ob_putc(o, ' ');
        ob_puts(o, " ; ");
        /* One line per instruction: fold the source text's newlines. */
        for (const char *c = src; *c; c++) ob_putc(o, *c == '\n' ? ' ' : *c);
      }
      ob_putc(o, '\n');
    }
  }
}
