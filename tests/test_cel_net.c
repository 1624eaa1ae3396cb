/*
 * test_cel_net.c - ip(), cidr() and `in` on them (vm/cel_net.c), through
 * the builtin table and cel_binary as the VM and the constant folder call
 * them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "cel.h"

typedef struct fixture {
  arena scratch;
  cel_ctx ctx;
} fixture;

static int setup(void **state) {
  static fixture f;
  memset(&f, 0, sizeof f);
  arena_init(&f.scratch, 1024);
  f.ctx.scratch = &f.scratch;
  *state = &f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  arena_free(&f->scratch);
  return 0;
}

/* name(text) through the builtin table. */
static value call(fixture *f, const char *name, const char *text) {
  const cel_builtin *b = cel_builtin_find(name, false, 1);
  assert_non_null(b);
  value arg = cv_string(text, (uint32_t)strlen(text)), out;
  b->fn(&f->ctx, &out, &arg, 1);
  return out;
}

static void expect_error(value v, const char *prefix) {
  assert_int_equal(v.kind, CV_ERROR);
  if (strncmp(v.s, prefix, strlen(prefix)) != 0) fail_msg("error \"%.*s\", expected \"%s...\"", (int)v.n, v.s, prefix);
}

static void test_ip_parse(void **state) {
  fixture *f = *state;
  static const struct {
    const char *text;
    const char *hex; /* the 16 bytes, or NULL: invalid */
  } cases[] = {
      {"10.1.2.3", "00000000000000000000ffff0a010203"},
      {"0.0.0.0", "00000000000000000000ffff00000000"},
      {"255.255.255.255", "00000000000000000000ffffffffffff"},
      {"::ffff:10.1.2.3", "00000000000000000000ffff0a010203"}, /* IPv4-mapped: the IPv4 address */
      {"::1", "00000000000000000000000000000001"},
      {"::", "00000000000000000000000000000000"},
      {"2001:DB8::1", "20010db8000000000000000000000001"},
      {"2001:db8:0:0:1:0:0:1", "20010db8000000000001000000000001"},
      {"fe80::1:2:3:4", "fe800000000000000001000200030004"},
      {"10.0.0.256", NULL},
      {"10.0.0", NULL},
      {"10.0.0.1.2", NULL},
      {"010.0.0.1", NULL}, /* leading zeros are ambiguous (octal?) */
      {" 10.0.0.1", NULL},
      {"10.0.0.1/8", NULL},
      {"", NULL},
      {"2001:db8::1::2", NULL},
      {"fe80::1%eth0", NULL},
      {"12345::", NULL},
      {"not an address", NULL},
      {"ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255:ffff:ffff:ffff:ffff:ffff", NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    value v = call(f, "ip", cases[i].text);
    if (!cases[i].hex) {
      expect_error(v, "invalid IP address: ");
      continue;
    }
    assert_int_equal(v.kind, CV_BYTES);
    assert_int_equal(v.n, 16);
    char hex[33];
    for (int k = 0; k < 16; k++) snprintf(hex + 2 * k, 3, "%02x", (unsigned char)v.s[k]);
    assert_string_equal(hex, cases[i].hex);
  }
  /* an embedded NUL is not an address */
  const cel_builtin *b = cel_builtin_find("ip", false, 1);
  value arg = cv_string("1.2.3.4\0", 8), out;
  b->fn(&f->ctx, &out, &arg, 1);
  expect_error(out, "invalid IP address: ");
  arg = cv_int(1);
  b->fn(&f->ctx, &out, &arg, 1);
  expect_error(out, "no matching overload");
}

static void test_cidr_parse(void **state) {
  fixture *f = *state;
  static const struct {
    const char *text;
    bool ok;
  } cases[] = {
      {"10.0.0.0/8", true},       {"10.1.2.3/8", true}, /* host bits are cleared */
      {"0.0.0.0/0", true},        {"1.2.3.4/32", true},
      {"::/0", true},             {"2001:db8::/32", true},
      {"::1/128", true},          {"::ffff:10.0.0.0/104", true},
      {"10.0.0.0/33", false},     {"::/129", false},
      {"10.0.0.0", false},        {"10.0.0.0/", false},
      {"10.0.0.0/08", false},     {"10.0.0.0/+8", false},
      {"10.0.0.0/8/8", false},    {"/8", false},
      {"10.0.0.0/ 8", false},     {"10.0.0/8", false},
      {"2001:db8::/1000", false}, {"", false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    value v = call(f, "cidr", cases[i].text);
    if (!cases[i].ok) {
      expect_error(v, "invalid CIDR prefix: ");
      continue;
    }
    assert_int_equal(v.kind, CV_BYTES);
    assert_int_equal(v.n, 17);
  }
  /* the same prefix however written */
  value a = call(f, "cidr", "10.1.2.3/8"), b = call(f, "cidr", "10.0.0.0/8"),
        c = call(f, "cidr", "::ffff:10.0.0.0/104");
  assert_true(cel_equal(&a, &b));
  assert_true(cel_equal(&a, &c));
}

static void test_contains(void **state) {
  fixture *f = *state;
  static const struct {
    const char *addr, *net;
    bool inside;
  } cases[] = {
      {"10.1.2.3", "10.0.0.0/8", true},
      {"11.0.0.1", "10.0.0.0/8", false},
      {"10.255.255.255", "10.0.0.0/8", true},
      {"192.168.1.7", "192.168.1.0/24", true},
      {"192.168.2.7", "192.168.1.0/24", false},
      {"172.16.0.1", "172.16.0.0/12", true},
      {"172.32.0.1", "172.16.0.0/12", false},
      {"1.2.3.4", "1.2.3.4/32", true},
      {"1.2.3.5", "1.2.3.4/32", false},
      {"8.8.8.8", "0.0.0.0/0", true},
      {"::ffff:10.1.2.3", "10.0.0.0/8", true}, /* mapped addresses are IPv4 */
      {"10.1.2.3", "::ffff:10.0.0.0/104", true},
      {"1.2.3.4", "::ffff:0:0/96", true},
      {"1.2.3.4", "::/0", false}, /* families do not mix */
      {"::1", "0.0.0.0/0", false},
      {"2001:db8::1", "::/0", true},
      {"2001:db8:1::1", "2001:db8::/32", true},
      {"2001:db9::1", "2001:db8::/32", false},
      {"2001:db8::7", "2001:db8::/125", true},
      {"2001:db8::8", "2001:db8::/125", false},
      {"fe80::1", "fe80::/10", true},
      {"febf::1", "fe80::/10", true},
      {"fec0::1", "fe80::/10", false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    value a = call(f, "ip", cases[i].addr), n = call(f, "cidr", cases[i].net), out;
    cel_binary(&f->ctx, CEL_IN, &out, &a, &n);
    assert_int_equal(out.kind, CV_BOOL);
    if (out.b != cases[i].inside)
      fail_msg("ip(\"%s\") in cidr(\"%s\"): got %d", cases[i].addr, cases[i].net, out.b);
  }
}

static void test_prefix_in_prefix(void **state) {
  fixture *f = *state;
  static const struct {
    const char *inner, *outer;
    bool inside;
  } cases[] = {
      {"10.1.0.0/16", "10.0.0.0/8", true},  {"10.0.0.0/8", "10.0.0.0/8", true},
      {"10.0.0.0/7", "10.0.0.0/8", false},  {"11.0.0.0/16", "10.0.0.0/8", false},
      {"2001:db8::/48", "2001:db8::/32", true}, {"10.0.0.0/8", "::/0", false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    value a = call(f, "cidr", cases[i].inner), n = call(f, "cidr", cases[i].outer), out;
    cel_binary(&f->ctx, CEL_IN, &out, &a, &n);
    assert_int_equal(out.kind, CV_BOOL);
    if (out.b != cases[i].inside)
      fail_msg("cidr(\"%s\") in cidr(\"%s\"): got %d", cases[i].inner, cases[i].outer, out.b);
  }
}

/* `in` keeps its meaning everywhere else: only a cidr() value on the
 * right is new, and a string on the left of one is an error. */
static void test_in_unchanged(void **state) {
  fixture *f = *state;
  value n = call(f, "cidr", "10.0.0.0/8"), s = cv_string("10.1.2.3", 8), out;
  cel_binary(&f->ctx, CEL_IN, &out, &s, &n);
  expect_error(out, "no matching overload: string in cidr");
  value ip = call(f, "ip", "10.1.2.3"), other = cv_bytes("abc", 3);
  cel_binary(&f->ctx, CEL_IN, &out, &ip, &other);
  expect_error(out, "no matching overload");
  value list = cv_list(&n, 1); /* a list of prefixes: membership is equality */
  cel_binary(&f->ctx, CEL_IN, &out, &ip, &list);
  assert_int_equal(out.kind, CV_BOOL);
  assert_false(out.b);
  cel_binary(&f->ctx, CEL_IN, &out, &n, &list);
  assert_true(out.b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_ip_parse, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cidr_parse, setup, teardown),
      cmocka_unit_test_setup_teardown(test_contains, setup, teardown),
      cmocka_unit_test_setup_teardown(test_prefix_in_prefix, setup, teardown),
      cmocka_unit_test_setup_teardown(test_in_unchanged, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
