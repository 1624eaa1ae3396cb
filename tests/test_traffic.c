/*
 * test_traffic.c - the CLI's traffic reader and request binding
 * (cli/traffic.c): batches, line numbers, blank lines, CR LF, a last line
 * without a newline, lines longer than the buffer, gzip input (whole,
 * several members, truncated), and the @clock check.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "../cli/traffic.h"
#include "../include/clause.h"

/* A temporary file holding `n` bytes; the caller unlinks it. */
static char *temp_file(const void *bytes, size_t n) {
  char *path = strdup("/tmp/clause-test-traffic-XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, bytes, n), (ssize_t)n);
  close(fd);
  return path;
}

/* The same bytes gzip-compressed, as `members` gzip members. */
static char *temp_gzip(const char *text, size_t n, int members) {
  char *path = strdup("/tmp/clause-test-traffic-XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  size_t part = n / (size_t)members;
  for (int m = 0; m < members; m++) {
    gzFile gz = gzopen(path, "ab");
    assert_non_null(gz);
    size_t len = m == members - 1 ? n - part * (size_t)m : part;
    if (len) assert_int_equal(gzwrite(gz, text + part * (size_t)m, (unsigned)len), (int)len);
    assert_int_equal(gzclose(gz), Z_OK);
  }
  return path;
}

/* Reads the whole input as "LINENO:TEXT\n" records (status instead of the
 * text for over-long lines), `max_lines` per batch. Returns the status of
 * the last batch call (0 or -1). */
static int read_all(const char *path, size_t max_lines, char **out) {
  char err[256];
  traffic_reader *r = traffic_open(path, err, sizeof err);
  assert_non_null(r);
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  long n;
  const traffic_line *lines;
  while ((n = traffic_next_batch(r, max_lines, &lines)) > 0) {
    assert_true((size_t)n <= max_lines);
    for (long i = 0; i < n; i++) {
      size_t shown = lines[i].status == TRAFFIC_LINE_OK && lines[i].len < 64 ? lines[i].len : 0;
      while (len + shown + 64 > cap) buf = realloc(buf, cap *= 2);
      if (lines[i].status != TRAFFIC_LINE_OK)
        len += (size_t)sprintf(buf + len, "%llu:<status %d>\n", (unsigned long long)lines[i].lineno, lines[i].status);
      else if (lines[i].len >= 64)
        len += (size_t)sprintf(buf + len, "%llu:<%zu bytes>\n", (unsigned long long)lines[i].lineno, lines[i].len);
      else
        len += (size_t)sprintf(buf + len, "%llu:%.*s\n", (unsigned long long)lines[i].lineno, (int)shown,
                               lines[i].text);
    }
  }
  buf[len] = '\0';
  traffic_close(r);
  *out = buf;
  return (int)n;
}

static const char sample[] = "{\"a\":1}\n"
                             "\n"
                             "   \t\r\n"
                             "{\"b\":2}\r\n"
                             "{\"c\":3}\n"
                             "{\"d\":4}";
static const char sample_lines[] = "1:{\"a\":1}\n4:{\"b\":2}\n5:{\"c\":3}\n6:{\"d\":4}\n";

static void test_lines_and_numbers(void **state) {
  (void)state;
  char *path = temp_file(sample, sizeof sample - 1);
  for (size_t max = 1; max <= 5; max++) {
    char *got;
    assert_int_equal(read_all(path, max, &got), 0);
    assert_string_equal(got, sample_lines);
    free(got);
  }
  unlink(path);
  free(path);
}

static void test_bom_and_empty(void **state) {
  (void)state;
  char *path = temp_file("\xEF\xBB\xBF{}\n{}", 8);
  char *got;
  assert_int_equal(read_all(path, 10, &got), 0);
  assert_string_equal(got, "1:{}\n2:{}\n");
  free(got);
  unlink(path);
  free(path);

  path = temp_file("", 0);
  assert_int_equal(read_all(path, 10, &got), 0);
  assert_string_equal(got, "");
  free(got);
  unlink(path);
  free(path);
}

/* A line longer than the reader's buffer grows it; the lines around it
 * are intact. */
static void test_long_line(void **state) {
  (void)state;
  size_t big = (size_t)9 << 20;
  char *text = malloc(big + 64);
  size_t n = (size_t)sprintf(text, "{\"a\":1}\n");
  memset(text + n, 'x', big);
  n += big;
  n += (size_t)sprintf(text + n, "\n{\"b\":2}\n");
  char *path = temp_file(text, n);
  char *got;
  assert_int_equal(read_all(path, 100, &got), 0);
  char want[128];
  snprintf(want, sizeof want, "1:{\"a\":1}\n2:<%zu bytes>\n3:{\"b\":2}\n", big);
  assert_string_equal(got, want);
  free(got);
  unlink(path);
  free(path);
  free(text);
}

static void test_gzip(void **state) {
  (void)state;
  for (int members = 1; members <= 3; members++) {
    char *path = temp_gzip(sample, sizeof sample - 1, members);
    char *got;
    assert_int_equal(read_all(path, 2, &got), 0);
    assert_string_equal(got, sample_lines);
    free(got);
    unlink(path);
    free(path);
  }
}

/* A truncated gzip file: the lines before the cut, then an error. */
static void test_gzip_truncated(void **state) {
  (void)state;
  char text[4096];
  size_t n = 0;
  for (int i = 0; i < 200; i++) n += (size_t)sprintf(text + n, "{\"n\":%d}\n", i);
  char *path = temp_gzip(text, n, 1);
  FILE *f = fopen(path, "rb");
  char bytes[4096];
  size_t len = fread(bytes, 1, sizeof bytes, f);
  fclose(f);
  unlink(path);
  free(path);
  path = temp_file(bytes, len - 12); /* without the trailer and some data */
  char err[256];
  traffic_reader *r = traffic_open(path, err, sizeof err);
  const traffic_line *lines;
  long got;
  while ((got = traffic_next_batch(r, 1000, &lines)) > 0) continue;
  assert_int_equal(got, -1);
  assert_non_null(strstr(traffic_error(r), "unexpected end of file"));
  traffic_close(r);
  unlink(path);
  free(path);
}

static void test_open_errors(void **state) {
  (void)state;
  char err[256];
  assert_null(traffic_open("/nonexistent/traffic.jsonl", err, sizeof err));
  assert_string_equal(err, "cannot open /nonexistent/traffic.jsonl: No such file or directory");
  assert_null(traffic_open("/tmp", err, sizeof err));
  assert_string_equal(err, "cannot open /tmp: Is a directory");
}

static const char policy[] = "input {\n"
                             "  account.id    string\n"
                             "  request.time  timestamp @clock\n"
                             "}\n"
                             "rule \"r\" { deny when account.id == \"x\" }\n";

/* traffic_bind: JSON errors with their column, and the @clock check. */
static void test_bind(void **state) {
  (void)state;
  char *path = temp_file(policy, sizeof policy - 1);
  char *clause_path = malloc(strlen(path) + 8);
  sprintf(clause_path, "%s.clause", path);
  assert_int_equal(rename(path, clause_path), 0);
  clause_error e;
  clause_program *p = clause_compile_file(clause_path, NULL, &e);
  assert_non_null(p);
  clause_vm *vm = clause_vm_new(p);
  static const struct {
    const char *json;
    bool ok;
    int column;
    const char *msg;
  } cases[] = {
      {"{\"account\": {\"id\": \"x\"}, \"request\": {\"time\": \"2024-01-01T00:00:00Z\"}}", true, 0, ""},
      {"{\"account\": {\"id\": \"x\"}}", false, 0, "missing @clock value request.time"},
      {"{\"request\": {\"time\": null}}", false, 0, "missing @clock value request.time"},
      {"{\"request\": {\"time\": \"noon\"}}", false, 0,
       "invalid @clock value request.time: expected an RFC 3339 timestamp string"},
      {"{\"request\": {\"time\": 1}}", false, 0,
       "invalid @clock value request.time: expected an RFC 3339 timestamp string"},
      {"{\"account\": ", false, 13, "unexpected end of input"},
      {"[]", false, 1, "the request is not a JSON object"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char msg[256] = "";
    int column = -1;
    json_meta meta;
    bool ok = traffic_bind(vm, cases[i].json, strlen(cases[i].json), &meta, msg, sizeof msg, &column);
    assert_int_equal(ok, cases[i].ok);
    if (!ok) {
      assert_int_equal(column, cases[i].column);
      assert_string_equal(msg, cases[i].msg);
    }
  }
  clause_decision d;
  const char *line = "{\"account\": {\"id\": \"x\"}, \"request\": {\"time\": \"2024-01-01T00:00:00Z\"}, \"@expect\": \"deny:r\"}";
  char msg[256];
  int column;
  json_meta meta;
  assert_true(traffic_bind(vm, line, strlen(line), &meta, msg, sizeof msg, &column));
  assert_true(meta.has_expect);
  assert_string_equal(meta.expect, "deny:r");
  assert_int_equal(clause_vm_eval(vm, &d), CLAUSE_OK);
  assert_int_equal(d.effect, CLAUSE_DENY);
  clause_vm_free(vm);
  clause_program_free(p);
  unlink(clause_path);
  free(clause_path);
  free(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lines_and_numbers), cmocka_unit_test(test_bom_and_empty),
      cmocka_unit_test(test_long_line),         cmocka_unit_test(test_gzip),
      cmocka_unit_test(test_gzip_truncated),    cmocka_unit_test(test_open_errors),
      cmocka_unit_test(test_bind),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
