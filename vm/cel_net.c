/*
 * cel_net.c - clause's network builtins (SPEC section 4): ip(s), cidr(s)
 * and `in` of an address (or a narrower prefix) in a prefix.
 *
 * The value model has no network kinds, and constants are folded at compile
 * time and stored in `.clb` files, so both are bytes values of a fixed
 * shape that survives any copy:
 *   ip(s)    16 bytes: the address in network order, IPv4 as the
 *            IPv4-mapped IPv6 address ::ffff:a.b.c.d;
 *   cidr(s)  17 bytes: the network in that form with the host bits cleared,
 *            then the prefix length counted over the 128 bits (an IPv4 /8
 *            is stored as 104).
 * `bytes in bytes` has no CEL overload, so giving it a meaning for these
 * shapes changes no valid CEL expression. ip("::ffff:10.0.0.1") is the IPv4
 * address 10.0.0.1 (what a dual-stack socket reports for IPv4 clients), and
 * an address of one family is never inside a prefix of the other.
 */
#include <arpa/inet.h>
#include <string.h>

#include "cel.h"

#define ADDR_LEN 16
#define CIDR_LEN 17
#define TEXT_MAX 64 /* the longest valid text is 49 characters */

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static bool is_v4(const uint8_t *addr) { return memcmp(addr, v4_mapped, sizeof v4_mapped) == 0; }

/* Do the first `bits` bits of x and y agree? */
static bool same_prefix(const uint8_t *x, const uint8_t *y, unsigned bits) {
  unsigned whole = bits / 8, rest = bits % 8;
  if (memcmp(x, y, whole) != 0) return false;
  if (!rest) return true;
  uint8_t mask = (uint8_t)(0xff << (8 - rest));
  return ((x[whole] ^ y[whole]) & mask) == 0;
}

/* Address text (no prefix, NUL-terminated) -> 16 bytes. */
static bool parse_addr(const char *text, uint8_t out[ADDR_LEN]) {
  uint8_t four[4];
  if (inet_pton(AF_INET, text, four) == 1) {
    memcpy(out, v4_mapped, sizeof v4_mapped);
    memcpy(out + 12, four, 4);
    return true;
  }
  return inet_pton(AF_INET6, text, out) == 1;
}

/* A string argument as a NUL-terminated copy; false when it cannot be an
 * address (too long, or an embedded NUL). */
static bool text_of(const value *v, char buf[TEXT_MAX]) {
  if (v->n >= TEXT_MAX || memchr(v->s, 0, v->n)) return false;
  memcpy(buf, v->s, v->n);
  buf[v->n] = 0;
  return true;
}

static void net_error(cel_ctx *ctx, value *out, const char *what, const value *arg) {
  *out = cv_error(ctx, "invalid %s: \"%.*s\"", what, (int)(arg->n > TEXT_MAX ? TEXT_MAX : arg->n), arg->s);
}

static bool result_bytes(cel_ctx *ctx, value *out, const uint8_t *bytes, uint32_t n) {
  char *mem = ctx && ctx->scratch ? arena_alloc(ctx->scratch, n) : NULL;
  if (!mem) {
    *out = cv_error(ctx, "out of memory");
    return false;
  }
  memcpy(mem, bytes, n);
  *out = cv_bytes(mem, n);
  return true;
}

static void fn_ip(cel_ctx *ctx, value *out, const value *args, int nargs) {
  (void)nargs;
  if (args[0].kind != CV_STRING) {
    *out = cv_error(ctx, "no matching overload: ip(%s)", cv_kind_name((cv_kind)args[0].kind));
    return;
  }
  char text[TEXT_MAX];
  uint8_t addr[ADDR_LEN];
  if (!text_of(&args[0], text) || !parse_addr(text, addr)) {
    net_error(ctx, out, "IP address", &args[0]);
    return;
  }
  result_bytes(ctx, out, addr, ADDR_LEN);
}

/* "10.0.0.0/8", "2001:db8::/32". Host bits may be set ("10.1.2.3/8" is
 * 10.0.0.0/8, as in Go's ParseCIDR); the length is decimal without leading
 * zeros, at most 32 for IPv4 and 128 for IPv6. */
static void fn_cidr(cel_ctx *ctx, value *out, const value *args, int nargs) {
  (void)nargs;
  if (args[0].kind != CV_STRING) {
    *out = cv_error(ctx, "no matching overload: cidr(%s)", cv_kind_name((cv_kind)args[0].kind));
    return;
  }
  char text[TEXT_MAX];
  char *slash = text_of(&args[0], text) ? strchr(text, '/') : NULL;
  if (!slash || !slash[1] || (slash[1] == '0' && slash[2]) || strspn(slash + 1, "0123456789") != strlen(slash + 1) ||
      strlen(slash + 1) > 3) {
    net_error(ctx, out, "CIDR prefix", &args[0]);
    return;
  }
  *slash = 0;
  unsigned len = 0;
  for (const char *p = slash + 1; *p; p++) len = len * 10 + (unsigned)(*p - '0');
  uint8_t net[CIDR_LEN];
  bool v4_text = strchr(text, ':') == NULL;
  if (!parse_addr(text, net) || len > (v4_text ? 32u : 128u)) {
    net_error(ctx, out, "CIDR prefix", &args[0]);
    return;
  }
  /* An IPv4 prefix counts its bits after the 96 of the mapped range; an
   * IPv4-mapped IPv6 prefix (::ffff:10.0.0.0/104) then is the same value. */
  if (v4_text) len += 96;
  for (unsigned bit = len; bit < 128; bit++) net[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
  net[ADDR_LEN] = (uint8_t)len;
  result_bytes(ctx, out, net, CIDR_LEN);
}

static bool is_cidr(const value *v) {
  if (v->kind != CV_BYTES || v->n != CIDR_LEN) return false;
  const uint8_t *b = (const uint8_t *)v->s;
  return b[ADDR_LEN] <= 128;
}

/* Is the prefix (net, len) one of IPv4 addresses? */
static bool cidr_v4(const uint8_t *net, unsigned len) { return len >= 96 && is_v4(net); }

bool cel_net_in(cel_ctx *ctx, value *out, const value *elem, const value *coll) {
  if (!is_cidr(coll)) return false;
  const uint8_t *net = (const uint8_t *)coll->s;
  unsigned len = net[ADDR_LEN];
  if (elem->kind == CV_BYTES && elem->n == ADDR_LEN) {
    const uint8_t *addr = (const uint8_t *)elem->s;
    *out = cv_bool(is_v4(addr) == cidr_v4(net, len) && same_prefix(addr, net, len));
    return true;
  }
  if (is_cidr(elem)) { /* a prefix inside a wider one */
    const uint8_t *inner = (const uint8_t *)elem->s;
    unsigned inner_len = inner[ADDR_LEN];
    *out = cv_bool(cidr_v4(inner, inner_len) == cidr_v4(net, len) && inner_len >= len &&
                   same_prefix(inner, net, len));
    return true;
  }
  *out = cv_error(ctx, "no matching overload: %s in cidr (write ip(x) in cidr(...))",
                  cv_kind_name((cv_kind)elem->kind));
  return true;
}

const cel_builtin cel_builtins_net[] = {
    {"ip", 0, 1, 1, 0, fn_ip},
    {"cidr", 0, 1, 1, 0, fn_cidr},
    {NULL, 0, 0, 0, 0, NULL},
};
