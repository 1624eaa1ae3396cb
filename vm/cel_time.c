/*
 * cel_time.c - timestamps and durations: RFC 3339 and CEL duration text,
 * their canonical forms, and the CEL accessors getFullYear ...
 * getMilliseconds, with an optional time zone read from the system's IANA
 * database (/usr/share/zoneinfo TZif files, parsed here: no tzset, no
 * localtime, no global state).
 */
#include <fcntl.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cel.h"

#define NANOS_PER_SEC 1000000000LL
#define SECS_PER_DAY 86400LL

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if (a % b != 0 && ((a < 0) != (b < 0))) q--;
  return q;
}

/* ---- civil dates -----------------------------------------------------------
 * Proleptic Gregorian calendar, counted in years that begin on March 1st so
 * that the leap day ends its year: a 400-year era has 146097 days and the
 * month follows from the day of the year by a linear formula. */

static bool is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int days_in_month(int64_t y, int m) {
  static const unsigned char len[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : len[m - 1];
}

/* Days from 0000-03-01 to 1970-01-01. */
#define EPOCH_SHIFT 719468

/* Days since 1970-01-01 of year-month-day (month 1..12). */
static int64_t days_from_civil(int64_t year, int month, int day) {
  int64_t y = month <= 2 ? year - 1 : year;
  int64_t era = floor_div(y, 400);
  int64_t year_of_era = y - era * 400;                 /* 0..399 */
  int march_month = month > 2 ? month - 3 : month + 9; /* 0 = March */
  int64_t day_of_year = (153 * march_month + 2) / 5 + day - 1;
  int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + day_of_era - EPOCH_SHIFT;
}

typedef struct civil {
  int64_t year;
  int month; /* 1..12 */
  int day;   /* 1..31 */
} civil;

static civil civil_from_days(int64_t days) {
  days += EPOCH_SHIFT;
  int64_t era = floor_div(days, 146097);
  int64_t day_of_era = days - era * 146097; /* 0..146096 */
  /* Remove the leap days (one per 4 years, less one per century, plus one
   * at the era's end) to count whole 365-day years. */
  int64_t year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  int march_month = (int)((5 * day_of_year + 2) / 153);
  civil c;
  c.day = (int)(day_of_year - (153 * march_month + 2) / 5 + 1);
  c.month = march_month < 10 ? march_month + 3 : march_month - 9;
  c.year = era * 400 + year_of_era + (c.month <= 2);
  return c;
}

/* ---- timestamps ------------------------------------------------------------ */

/* The value of k decimal digits, or -1. */
static int digits_value(const char *s, int k) {
  int v = 0;
  for (int i = 0; i < k; i++) {
    if (!is_digit(s[i])) return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

/* YYYY-MM-DDTHH:MM:SS[.F{1,9}](Z|+HH:MM|-HH:MM). Lowercase 't' and 'z' are
 * accepted as RFC 3339 section 5.6 allows; leap seconds (:60) are not. */
bool cel_parse_timestamp(const char *s, size_t n, int64_t *secs, uint32_t *nanos) {
  if (n < 20) return false;
  if (s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':')
    return false;
  int year = digits_value(s, 4), month = digits_value(s + 5, 2), day = digits_value(s + 8, 2);
  int hour = digits_value(s + 11, 2), minute = digits_value(s + 14, 2);
  int second = digits_value(s + 17, 2);
  if (year < 0 || month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) ||
      hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59)
    return false;

  size_t i = 19;
  uint32_t frac = 0;
  if (s[i] == '.') {
    int ndigits = 0;
    for (i++; i < n && is_digit(s[i]); i++) {
      if (++ndigits > 9) return false;
      frac = frac * 10 + (uint32_t)(s[i] - '0');
    }
    if (ndigits == 0) return false;
    for (; ndigits < 9; ndigits++) frac *= 10;
  }

  int32_t offset = 0;
  if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
    i++;
  } else if (n - i == 6 && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
    int oh = digits_value(s + i + 1, 2), om = digits_value(s + i + 4, 2);
    if (oh < 0 || oh > 23 || om < 0 || om > 59) return false;
    offset = (oh * 60 + om) * 60;
    if (s[i] == '-') offset = -offset;
    i += 6;
  } else {
    return false;
  }
  if (i != n) return false;

  int64_t t = days_from_civil(year, month, day) * SECS_PER_DAY + hour * 3600 + minute * 60 +
              second - offset;
  if (t < CV_TS_MIN_SECS || t > CV_TS_MAX_SECS) return false;
  *secs = t;
  *nanos = frac;
  return true;
}

/* ".250", ".000250", ".000000250" or nothing: the fewest of 0, 3, 6 or 9
 * digits that show the value exactly (protobuf's JSON form). */
static void put_fraction(outbuf *o, uint32_t nanos) {
  if (nanos == 0) return;
  if (nanos % 1000000 == 0)
    ob_printf(o, ".%03u", (unsigned)(nanos / 1000000));
  else if (nanos % 1000 == 0)
    ob_printf(o, ".%06u", (unsigned)(nanos / 1000));
  else
    ob_printf(o, ".%09u", (unsigned)nanos);
}

void cel_format_timestamp(outbuf *o, int64_t secs, uint32_t nanos) {
  int64_t days = floor_div(secs, SECS_PER_DAY);
  int64_t sod = secs - days * SECS_PER_DAY;
  civil c = civil_from_days(days);
  ob_printf(o, "%04lld-%02d-%02dT%02d:%02d:%02d", (long long)c.year, c.month, c.day,
            (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60));
  put_fraction(o, nanos % NANOS_PER_SEC);
  ob_putc(o, 'Z');
}

/* ---- durations --------------------------------------------------------------- */

/* Nanoseconds in a unit of Go's time.ParseDuration, 0 for an unknown one. */
static uint64_t unit_nanos(const char *u, size_t n) {
  static const struct {
    const char *name;
    uint64_t nanos;
  } units[] = {
      {"ns", 1},
      {"us", 1000},
      {"\xC2\xB5s", 1000}, /* U+00B5 micro sign */
      {"\xCE\xBCs", 1000}, /* U+03BC greek small letter mu */
      {"ms", 1000000},
      {"s", 1000000000ULL},
      {"m", 60000000000ULL},
      {"h", 3600000000000ULL},
  };
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
    if (strlen(units[i].name) == n && memcmp(units[i].name, u, n) == 0) return units[i].nanos;
  return 0;
}

/* [-+]?("0" | (digits? ("." digits?)? unit)+), as Go's time.ParseDuration,
 * which cel-go uses; fractions are exact (truncated to whole nanoseconds). */
bool cel_parse_duration(const char *s, size_t n, int64_t *ns) {
  const uint64_t limit = (uint64_t)1 << 63; /* |INT64_MIN| */
  size_t i = 0;
  bool neg = false;
  if (i < n && (s[i] == '-' || s[i] == '+')) {
    neg = s[i] == '-';
    i++;
  }
  if (n - i == 1 && s[i] == '0') {
    *ns = 0;
    return true;
  }
  if (i == n) return false;

  uint64_t total = 0;
  while (i < n) {
    size_t start = i;
    uint64_t whole = 0;
    for (; i < n && is_digit(s[i]); i++) {
      if (whole > limit / 10) return false;
      whole = whole * 10 + (uint64_t)(s[i] - '0');
      if (whole > limit) return false;
    }
    bool has_whole = i > start;
    const char *frac = NULL;
    size_t nfrac = 0;
    if (i < n && s[i] == '.') {
      frac = s + ++i;
      while (i < n && is_digit(s[i])) i++;
      nfrac = (size_t)(s + i - frac);
    }
    if (!has_whole && nfrac == 0) return false;

    size_t unit_start = i;
    while (i < n && s[i] != '.' && !is_digit(s[i])) i++;
    uint64_t unit = unit_nanos(s + unit_start, i - unit_start);
    if (unit == 0) return false;

    if (whole > limit / unit) return false;
    uint64_t v = whole * unit;
    /* floor(0.frac * unit), digit by digit from the last: each step's
     * integer division loses nothing that a later floor would keep. */
    uint64_t part = 0;
    for (size_t k = nfrac; k-- > 0;) part = ((uint64_t)(frac[k] - '0') * unit + part) / 10;
    v += part;
    if (v > limit) return false;
    total += v;
    if (total > limit) return false;
  }
  if (!neg && total > (uint64_t)INT64_MAX) return false;
  if (neg)
    *ns = total == limit ? INT64_MIN : -(int64_t)total;
  else
    *ns = (int64_t)total;
  return true;
}

void cel_format_duration(outbuf *o, int64_t ns) {
  uint64_t mag = ns < 0 ? 0 - (uint64_t)ns : (uint64_t)ns;
  if (ns < 0) ob_putc(o, '-');
  ob_printf(o, "%llu", (unsigned long long)(mag / NANOS_PER_SEC));
  /* Durations print their fraction without trailing zeros ("1.5s"), as
   * the SPEC's examples and CEL's string(duration) do; timestamps keep
   * 3, 6 or 9 digits. */
  uint32_t frac = (uint32_t)(mag % NANOS_PER_SEC);
  if (frac) {
    char digits[11];
    snprintf(digits, sizeof digits, ".%09u", (unsigned)frac);
    size_t n = strlen(digits);
    while (digits[n - 1] == '0') n--;
    ob_put(o, digits, n);
  }
  ob_putc(o, 's');
}

/* ---- POSIX TZ rules (the footer of TZif version 2+ files) ------------------- */

typedef struct tz_date {
  char kind; /* 'J': day 1..365 without Feb 29; 'D': day 0..365; 'M': month.week.weekday */
  int month, week, day;
  int32_t secs; /* local time of day of the change, may be negative or past 24h */
} tz_date;

typedef struct posix_tz {
  int32_t std_off, dst_off; /* seconds east of UTC */
  bool has_dst;
  tz_date start, end;
} posix_tz;

typedef struct cursor {
  const char *p, *end;
} cursor;

static bool cur_eat(cursor *c, char ch) {
  if (c->p < c->end && *c->p == ch) {
    c->p++;
    return true;
  }
  return false;
}

static bool cur_number(cursor *c, int max_digits, int *out) {
  int v = 0, k = 0;
  while (c->p < c->end && is_digit(*c->p) && k < max_digits) {
    v = v * 10 + (*c->p++ - '0');
    k++;
  }
  *out = v;
  return k > 0;
}

/* A zone abbreviation: three or more letters, or <...> quoted. */
static bool ptz_name(cursor *c) {
  if (cur_eat(c, '<')) {
    while (c->p < c->end && *c->p != '>') c->p++;
    return cur_eat(c, '>');
  }
  const char *b = c->p;
  while (c->p < c->end && ((*c->p >= 'A' && *c->p <= 'Z') || (*c->p >= 'a' && *c->p <= 'z')))
    c->p++;
  return c->p - b >= 3;
}

/* [+-]h[h[h]][:mm[:ss]] in seconds. */
static bool ptz_time(cursor *c, int max_hours, int32_t *out) {
  int sign = 1, h, m = 0, s = 0;
  if (cur_eat(c, '-'))
    sign = -1;
  else
    cur_eat(c, '+');
  if (!cur_number(c, 3, &h) || h > max_hours) return false;
  if (cur_eat(c, ':')) {
    if (!cur_number(c, 2, &m) || m > 59) return false;
    if (cur_eat(c, ':') && (!cur_number(c, 2, &s) || s > 59)) return false;
  }
  *out = sign * (h * 3600 + m * 60 + s);
  return true;
}

static bool ptz_date(cursor *c, tz_date *d) {
  d->secs = 2 * 3600; /* the default time of a change: 02:00 */
  if (cur_eat(c, 'M')) {
    d->kind = 'M';
    if (!cur_number(c, 2, &d->month) || d->month < 1 || d->month > 12 || !cur_eat(c, '.') ||
        !cur_number(c, 1, &d->week) || d->week < 1 || d->week > 5 || !cur_eat(c, '.') ||
        !cur_number(c, 1, &d->day) || d->day > 6)
      return false;
  } else if (cur_eat(c, 'J')) {
    d->kind = 'J';
    if (!cur_number(c, 3, &d->day) || d->day < 1 || d->day > 365) return false;
  } else {
    d->kind = 'D';
    if (!cur_number(c, 3, &d->day) || d->day > 365) return false;
  }
  if (cur_eat(c, '/')) return ptz_time(c, 167, &d->secs);
  return true;
}

static bool ptz_parse(const char *s, size_t n, posix_tz *z) {
  cursor c = {s, s + n};
  int32_t off;
  memset(z, 0, sizeof *z);
  if (!ptz_name(&c) || !ptz_time(&c, 24, &off)) return false;
  z->std_off = -off; /* POSIX offsets count hours west of Greenwich */
  if (c.p == c.end) return true;
  if (!ptz_name(&c)) return false;
  z->dst_off = z->std_off + 3600;
  if (c.p < c.end && *c.p != ',') {
    if (!ptz_time(&c, 24, &off)) return false;
    z->dst_off = -off;
  }
  /* A DST name without rules has no portable meaning: keep standard time. */
  if (c.p == c.end) return true;
  if (!cur_eat(&c, ',') || !ptz_date(&c, &z->start) || !cur_eat(&c, ',') ||
      !ptz_date(&c, &z->end) || c.p != c.end)
    return false;
  z->has_dst = true;
  return true;
}

/* Days since the epoch of a rule's date in a year. */
static int64_t tz_date_days(const tz_date *d, int64_t year) {
  int64_t jan1 = days_from_civil(year, 1, 1);
  switch (d->kind) {
  case 'J': /* Feb 29 is never counted */
    return jan1 + d->day - 1 + (is_leap(year) && d->day >= 60);
  case 'D': return jan1 + d->day;
  default: {
    int64_t first = days_from_civil(year, d->month, 1);
    int first_weekday = (int)(((first + 4) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
    int mday = 1 + (d->day - first_weekday + 7) % 7 + (d->week - 1) * 7;
    while (mday > days_in_month(year, d->month)) mday -= 7; /* week 5: the last one */
    return first + mday - 1;
  }
  }
}

static int32_t ptz_offset(const posix_tz *z, int64_t t) {
  if (!z->has_dst) return z->std_off;
  int64_t year = civil_from_days(floor_div(t + z->std_off, SECS_PER_DAY)).year;
  /* The start is given in standard time, the end in daylight time. */
  int64_t start = tz_date_days(&z->start, year) * SECS_PER_DAY + z->start.secs - z->std_off;
  int64_t end = tz_date_days(&z->end, year) * SECS_PER_DAY + z->end.secs - z->dst_off;
  bool dst = start < end ? (t >= start && t < end) : !(t >= end && t < start);
  return dst ? z->dst_off : z->std_off;
}

/* ---- TZif files (RFC 8536) ------------------------------------------------------ */

#define ZONEINFO_DIR "/usr/share/zoneinfo/"
#define TZIF_MAX_SIZE (1u << 20)

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p) {
  return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

typedef struct tzif {
  const unsigned char *times; /* timecnt transition times, tsize bytes each */
  const unsigned char *index; /* timecnt local time type indices */
  const unsigned char *types; /* typecnt records: int32 utoff, isdst, desigidx */
  uint32_t timecnt, typecnt;
  int tsize;
  bool has_rule; /* the footer's TZ string, for times after the last transition */
  posix_tz rule;
} tzif;

/* Reads the header at b (n bytes left): the size of its data block, and
 * when z is not NULL, the block's contents. */
static bool tzif_header(const unsigned char *b, size_t n, int tsize, tzif *z, size_t *block) {
  if (n < 44 || memcmp(b, "TZif", 4) != 0) return false;
  uint64_t isutcnt = be32(b + 20), isstdcnt = be32(b + 24), leapcnt = be32(b + 28);
  uint64_t timecnt = be32(b + 32), typecnt = be32(b + 36), charcnt = be32(b + 40);
  uint64_t size = 44 + timecnt * (uint64_t)(tsize + 1) + typecnt * 6 + charcnt +
                  leapcnt * (uint64_t)(tsize + 4) + isstdcnt + isutcnt;
  if (size > n) return false;
  *block = (size_t)size;
  if (!z) return true;
  if (typecnt == 0) return false;
  z->times = b + 44;
  z->index = z->times + timecnt * (uint64_t)tsize;
  z->types = z->index + timecnt;
  z->timecnt = (uint32_t)timecnt;
  z->typecnt = (uint32_t)typecnt;
  z->tsize = tsize;
  for (uint32_t i = 0; i < z->timecnt; i++)
    if (z->index[i] >= typecnt) return false;
  return true;
}

/* Leap-second records, if any, are ignored: zoneinfo's default ("posix")
 * files have none. */
static bool tzif_parse(const unsigned char *b, size_t n, tzif *z) {
  size_t v1size, v2size;
  z->has_rule = false;
  if (n < 5) return false;
  if (b[4] < '2') return tzif_header(b, n, 4, z, &v1size); /* version 1: 32-bit data only */
  /* Version 2+: skip the 32-bit block, use the 64-bit one and its footer. */
  if (!tzif_header(b, n, 4, NULL, &v1size)) return false;
  const unsigned char *b2 = b + v1size;
  if (!tzif_header(b2, n - v1size, 8, z, &v2size)) return false;
  const unsigned char *foot = b2 + v2size, *end = b + n;
  if (foot < end && *foot == '\n') {
    const unsigned char *nl = memchr(foot + 1, '\n', (size_t)(end - foot - 1));
    if (nl && nl > foot + 1)
      z->has_rule = ptz_parse((const char *)foot + 1, (size_t)(nl - foot - 1), &z->rule);
  }
  return true;
}

static int64_t tzif_time(const tzif *z, uint32_t i) {
  return z->tsize == 8 ? be64(z->times + 8 * (size_t)i) : (int32_t)be32(z->times + 4 * (size_t)i);
}

static int32_t tzif_type_offset(const tzif *z, unsigned type) {
  return (int32_t)be32(z->types + 6 * (size_t)type);
}

static int32_t tzif_offset(const tzif *z, int64_t t) {
  if (z->timecnt == 0) return z->has_rule ? ptz_offset(&z->rule, t) : tzif_type_offset(z, 0);
  if (t < tzif_time(z, 0)) return tzif_type_offset(z, 0);
  uint32_t lo = 0, hi = z->timecnt; /* the last transition <= t is in [lo, hi) */
  while (hi - lo > 1) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (tzif_time(z, mid) <= t)
      lo = mid;
    else
      hi = mid;
  }
  if (lo == z->timecnt - 1 && z->has_rule) return ptz_offset(&z->rule, t);
  return tzif_type_offset(z, z->index[lo]);
}

/* Relative path of letters, digits and _+-. with no "." or ".." part, so
 * that it stays inside the zoneinfo directory. */
static bool zone_name_ok(const char *s, size_t n) {
  if (n == 0 || n > 255 || s[0] == '/' || s[n - 1] == '/') return false;
  size_t part = 0;
  for (size_t i = 0; i <= n; i++) {
    if (i == n || s[i] == '/') {
      size_t len = i - part;
      if (len == 0 || (len == 1 && s[part] == '.') ||
          (len == 2 && s[part] == '.' && s[part + 1] == '.'))
        return false;
      part = i + 1;
      continue;
    }
    char c = s[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) || c == '_' || c == '+' ||
          c == '-' || c == '.'))
      return false;
  }
  return true;
}

/* The offset of the IANA zone `name` at t, or an error message. The file
 * is read on each call (tens of microseconds): caching it would need state
 * that outlives the call, which belongs to the VM, not to this file. */
static const char *iana_offset(const char *name, size_t n, int64_t t, int32_t *offset) {
  if (!zone_name_ok(name, n)) return "invalid time zone";
  if (n == 3 && memcmp(name, "UTC", 3) == 0) {
    *offset = 0; /* also without a zoneinfo directory */
    return NULL;
  }
  char path[sizeof ZONEINFO_DIR + 256];
  memcpy(path, ZONEINFO_DIR, sizeof ZONEINFO_DIR - 1);
  memcpy(path + sizeof ZONEINFO_DIR - 1, name, n);
  path[sizeof ZONEINFO_DIR - 1 + n] = '\0';

  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "unknown time zone";
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 44 ||
      (uint64_t)st.st_size > TZIF_MAX_SIZE) {
    close(fd);
    return "unknown time zone";
  }
  size_t size = (size_t)st.st_size, got = 0;
  unsigned char *buf = malloc(size);
  if (!buf) {
    close(fd);
    return "out of memory";
  }
  while (got < size) {
    ssize_t r = read(fd, buf + got, size - got);
    if (r <= 0) break;
    got += (size_t)r;
  }
  close(fd);
  tzif z;
  const char *err = NULL;
  if (got != size || !tzif_parse(buf, size, &z))
    err = "invalid time zone file";
  else
    *offset = tzif_offset(&z, t);
  free(buf);
  return err;
}

/* "+05:30", "-08:00", "02:00" (cel-go: a zone with ':' is an offset). */
static bool fixed_offset(const char *s, size_t n, int32_t *offset) {
  size_t i = 0;
  int sign = 1;
  if (i < n && (s[i] == '+' || s[i] == '-')) sign = s[i++] == '-' ? -1 : 1;
  size_t h0 = i;
  int hours = 0, minutes;
  while (i < n && is_digit(s[i]) && i - h0 < 2) hours = hours * 10 + (s[i++] - '0');
  if (i == h0 || i >= n || s[i] != ':' || n - i != 3) return false;
  minutes = digits_value(s + i + 1, 2);
  if (hours > 23 || minutes < 0 || minutes > 59) return false;
  *offset = sign * (hours * 3600 + minutes * 60);
  return true;
}

/* Seconds east of UTC at t in the zone `tz`, or an error message. */
static const char *zone_offset(const char *tz, size_t n, int64_t t, int32_t *offset) {
  if (n && memchr(tz, ':', n)) return fixed_offset(tz, n, offset) ? NULL : "invalid time zone offset";
  return iana_offset(tz, n, t, offset);
}

/* ---- accessors ------------------------------------------------------------------ */

typedef enum time_part {
  PART_FULL_YEAR,
  PART_MONTH,        /* 0-based */
  PART_DATE,         /* day of the month, 1-based */
  PART_DAY_OF_MONTH, /* 0-based */
  PART_DAY_OF_WEEK,  /* 0 = Sunday */
  PART_DAY_OF_YEAR,  /* 0-based */
  PART_HOURS,
  PART_MINUTES,
  PART_SECONDS,
  PART_MILLISECONDS
} time_part;

/* Durations give totals (truncated toward zero), except milliseconds, which
 * is the part of the last second, as in cel-go. */
static bool duration_part(time_part part, int64_t ns, int64_t *out) {
  switch (part) {
  case PART_HOURS: *out = ns / (3600 * NANOS_PER_SEC); return true;
  case PART_MINUTES: *out = ns / (60 * NANOS_PER_SEC); return true;
  case PART_SECONDS: *out = ns / NANOS_PER_SEC; return true;
  case PART_MILLISECONDS: *out = ns % NANOS_PER_SEC / 1000000; return true;
  default: return false;
  }
}

static void time_accessor(cel_ctx *ctx, value *out, const value *args, int nargs, time_part part,
                          const char *name) {
  const value *t = &args[0];
  int64_t r;
  if (t->kind == CV_DURATION && nargs == 1 && duration_part(part, t->i, &r)) {
    *out = cv_int(r);
    return;
  }
  if (t->kind != CV_TIMESTAMP || (nargs == 2 && args[1].kind != CV_STRING)) {
    *out = cv_error(ctx, "no matching overload: %s", name);
    return;
  }
  int32_t offset = 0;
  if (nargs == 2) {
    const char *err = zone_offset(args[1].s, args[1].n, t->i, &offset);
    if (err) {
      *out = cv_error(ctx, "%s: %.*s", err, (int)args[1].n, args[1].s);
      return;
    }
  }
  int64_t local = t->i + offset;
  int64_t days = floor_div(local, SECS_PER_DAY);
  int64_t sod = local - days * SECS_PER_DAY;
  civil c = civil_from_days(days);
  switch (part) {
  case PART_FULL_YEAR: r = c.year; break;
  case PART_MONTH: r = c.month - 1; break;
  case PART_DATE: r = c.day; break;
  case PART_DAY_OF_MONTH: r = c.day - 1; break;
  case PART_DAY_OF_WEEK: r = ((days + 4) % 7 + 7) % 7; break; /* 1970-01-01: Thursday */
  case PART_DAY_OF_YEAR: r = days - days_from_civil(c.year, 1, 1); break;
  case PART_HOURS: r = sod / 3600; break;
  case PART_MINUTES: r = sod / 60 % 60; break;
  case PART_SECONDS: r = sod % 60; break;
  case PART_MILLISECONDS: r = t->n / 1000000; break;
  default: r = 0; break;
  }
  *out = cv_int(r);
}

#define TIME_ACCESSOR(fn, part, name)                                      \
  static void fn(cel_ctx *ctx, value *out, const value *args, int nargs) { \
    time_accessor(ctx, out, args, nargs, part, name);                      \
  }

TIME_ACCESSOR(get_full_year, PART_FULL_YEAR, "getFullYear")
TIME_ACCESSOR(get_month, PART_MONTH, "getMonth")
TIME_ACCESSOR(get_date, PART_DATE, "getDate")
TIME_ACCESSOR(get_day_of_month, PART_DAY_OF_MONTH, "getDayOfMonth")
TIME_ACCESSOR(get_day_of_week, PART_DAY_OF_WEEK, "getDayOfWeek")
TIME_ACCESSOR(get_day_of_year, PART_DAY_OF_YEAR, "getDayOfYear")
TIME_ACCESSOR(get_hours, PART_HOURS, "getHours")
TIME_ACCESSOR(get_minutes, PART_MINUTES, "getMinutes")
TIME_ACCESSOR(get_seconds, PART_SECONDS, "getSeconds")
TIME_ACCESSOR(get_milliseconds, PART_MILLISECONDS, "getMilliseconds")

/* Members on a timestamp (optional time zone) or, for hours .. milliseconds,
 * a duration. */
const cel_builtin cel_builtins_time[] = {
    {"getFullYear", 1, 1, 2, 0, get_full_year},
    {"getMonth", 1, 1, 2, 0, get_month},
    {"getDate", 1, 1, 2, 0, get_date},
    {"getDayOfMonth", 1, 1, 2, 0, get_day_of_month},
    {"getDayOfWeek", 1, 1, 2, 0, get_day_of_week},
    {"getDayOfYear", 1, 1, 2, 0, get_day_of_year},
    {"getHours", 1, 1, 2, 0, get_hours},
    {"getMinutes", 1, 1, 2, 0, get_minutes},
    {"getSeconds", 1, 1, 2, 0, get_seconds},
    {"getMilliseconds", 1, 1, 2, 0, get_milliseconds},
    {NULL, 0, 0, 0, 0, NULL},
};
