/*
 * store_redis.c - the Redis state store (SPEC 5.2, 5.3): counters and
 * suspensions shared by every process that names the same server, database
 * and key prefix.
 *
 * URL: redis://HOST:PORT[/DB][?prefix=P&timeout_ms=T] (prefix "clause:",
 * timeout 50 ms by default; the timeout bounds a whole call, connecting
 * included).
 *
 * Keys (PREFIX is the prefix, KEY the counter's or suspension's key bytes,
 * any bytes at all):
 *
 *   PREFIX h:ID:KEY          a sum counter: a hash of its buckets' sums
 *                            and a cached reading (see the script)
 *   PREFIX d:ID:KEY:BUCKET   a distinct counter's bucket (a HyperLogLog)
 *   PREFIX d:ID:KEY:u        the union of the buckets of a cached window
 *   PREFIX d:ID:KEY:m        the bucket whose window that union is
 *   PREFIX s:N:RULE:KEY      a suspension: "START UNTIL" in ns, decimal;
 *                            N is RULE's length, as rule ids may hold ':'
 *
 * Counter ids never hold ':' (the VM builds them from names, kinds and
 * windows; begin refuses one that does), so a sum's KEY is all that
 * follows ID, and a distinct counter's KEY lies between ID and the last
 * ':', whose last part (a decimal BUCKET, u or m) says what the key holds:
 * no two counters share a key. (Sums used to be strings under
 * c:ID:KEY:BUCKET; the new letter keeps an older process sharing the
 * server from meeting a hash where it expects a string.)
 *
 * Counters expire a little over a window after they were last written, in
 * real time (see the script); that only reclaims memory: readings never
 * look past the 60 buckets that end with now's, and a suspension holds for
 * the request times inside its stored interval, so replayed (historical)
 * traffic behaves as live traffic does (as long as it is not replayed
 * slower than it happened, as expiry runs on the server's clock). As in
 * the memory store, a sum forgets buckets more than two windows behind its
 * newest: readings up to a window behind the newest event are exact.
 *
 * One request costs one awaited round trip. begin sends one EVALSHA of the
 * script below (loaded once per connection with SCRIPT LOAD), which adds to
 * and reads every counter and fetches every suspension record, atomically.
 * commit sends a second EVALSHA with the writes that follow the decision
 * and does not wait: its reply is read by the next begin (whose call
 * follows it on the same connection, so that begin sees those writes) or
 * when the session closes; a write that failed is reported by that begin
 * as a notice. It is sent at once rather than with that begin so that
 * other processes see the writes even while this session stays idle.
 *
 * Host names are resolved by hiredis with getaddrinfo, which the timeout
 * does not bound: name the server by address (or in /etc/hosts).
 *
 * hiredis gives the connection (one redisContext per session: contexts are
 * not thread-safe) and the reply parser. Commands are formatted here into
 * the session's own buffers and written with send(MSG_NOSIGNAL): that
 * allocates nothing per request, and a server that went away cannot raise
 * SIGPIPE in the host. Every wait is a poll() bounded by the call's
 * deadline. After a failure the session drops its connection and does not
 * try again before a backoff delay (10 ms, doubling up to 1 s, reset by a
 * success); until then begin and commit fail at once with the last message.
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "cel.h"
#include "store.h"

#define BUCKETS 60
#define STR(x) STR_(x)     /* a macro's value as a string, for the script */
#define STR_(x) #x
#define STRIDE 10          /* a sum's TTL and pruning: once per STRIDE new buckets */
#define ARGS_PER_OP 6      /* the script's arguments per operation */
#define DEFAULT_PREFIX "clause:"
#define DEFAULT_TIMEOUT_MS 50
#define BACKOFF_FIRST_NS 10000000ll    /* 10 ms */
#define BACKOFF_MAX_NS 1000000000ll    /* 1 s */
#define MAX_PENDING 1024               /* unread commit replies before commit waits */
/* A TTL never needs to be longer; Redis refuses expiry times that overflow. */
#define MAX_TTL_MS (100ll * 366 * 24 * 3600 * 1000)
/* Lua numbers are doubles: bucket indices are exact below 2^53, and the
 * script reaches two windows back from one. */
#define MAX_EXACT_BUCKET ((1ll << 53) - 4 * BUCKETS)

/*
 * The script. ARGV[1] is '1' for a begin, whose operations each add (if
 * they do), then read, in turn, as the memory store does; '0' for a commit,
 * which only writes. Then six arguments per operation: KIND KEY BUCKET ARG
 * TTL_MS OUT.
 *
 *   S s   begin, a sum counter (KEY: its hash): add ARG to bucket BUCKET
 *         and read (S) or only read (s); OUT is BUCKET - 60
 *   D d   begin, a distinct counter (KEY: what its keys start with, up to
 *         ':'): add the member ARG and read (D) or only read (d)
 *   g     begin, fetch the suspension record at KEY
 *   T E   commit, add to a sum (T) or a distinct counter (E)
 *   P     commit, store the suspension record ARG at KEY (replacing any)
 *
 * Readings are cached so that a key costs a few commands, not 60 keys.
 * What a call costs is mostly the script's calls into Redis, its numbers
 * converted to and from strings and the closures it makes each time it
 * runs (so its functions keep their constants and Redis's functions in
 * locals of their own, not shared ones they would have to capture).
 *
 * Sums. The hash has nb (the newest bucket), nv (its sum), a field per
 * older bucket (its decimal index) holding that bucket's sum, and the
 * cached reading: cs, the sum of the buckets (cb-60, cb]. nb's sum is in
 * nv, a field written before any bucket's, so that the buckets a key adds
 * to and reads most are found at the hash's start: Redis keeps small
 * hashes as lists that it searches from the start, and a hash holds up to
 * 130 buckets. One HMGET fetches nb, nv, cb, cs and bucket OUT; one HSET
 * writes what changed. A reading at cb is cs, and an add to nb at cb adds
 * to nv and cs. A reading one bucket after cb (a key read once per bucket)
 * slides cs by the bucket that enters and OUT, which leaves. A reading
 * elsewhere fetches the buckets that enter and leave the cached window, or
 * sums the 60 afresh when the cache is more than 30 buckets off (a slide
 * would fetch more) or saturated (what leaves it is unknown). An add into
 * a bucket inside the cached window adds to cs too, so cs is always the
 * sum of the buckets in its window. The cache only moves forward: a
 * reading behind it (time going backwards) is computed but leaves it, so
 * that gateways whose clocks differ a little do not make it slide back
 * and forth across a bucket boundary.
 *
 * Pruning and expiry: when nb enters a new stride of STRIDE buckets, the
 * buckets two windows behind it are deleted (as the memory store does;
 * adds that far back are dropped), which keeps at most 120 + STRIDE bucket
 * fields, and a cache whose window held some is dropped (cb set to '',
 * not deleted, to keep its place at the hash's start); and the hash's
 * TTL is renewed: a bucket is read until a window after it starts, and
 * the buckets written until the next renewal start at most STRIDE buckets
 * later, so a TTL of a window, STRIDE + 1 buckets and a second (for the
 * clocks' differences) is enough. (Doing both at every new bucket would
 * double the calls for a key read once per bucket: HMGET and HSET, then
 * HDEL and PEXPIRE.)
 *
 * Exactness: Lua numbers are doubles, exact below 2^53, so Lua adds bucket
 * sums as two parts, the digits above the last nine and the last nine,
 * exact for any few hundred int64 values; totals are written and returned
 * as decimal strings, saturating at the int64 maximum.
 *
 * Distinct counters keep a HyperLogLog per bucket, KEY..BUCKET: a window
 * is the union of 60. The cache: KEY..u holds the union of the window
 * ending with the bucket that KEY..m names, built with PFMERGE when a
 * reading comes at a newer bucket; a member whose PFADD changed its
 * bucket's HyperLogLog inside that window is added to the union too (a
 * PFADD that changes nothing in the bucket changes nothing in the union).
 * A reading at that bucket is then a PFCOUNT of one key, whose count Redis
 * keeps until its registers change; the estimate is the one PFCOUNT of
 * the 60 keys gives (the registers are the same). The union outlives KEY..m
 * by a second, so that KEY..m never names a union that expired. A reading
 * behind the cache counts the 60 keys. A bucket gets its TTL (a window, a
 * bucket and a second) when a PFADD changes it, its first one included.
 */
static const char SCRIPT[] =
  "local function split(x)\n"
  "  local sub = string.sub\n"
  "  local k, hi, lo = #x, 0, nil\n"
  "  if k <= 9 then lo = tonumber(x) else hi, lo = tonumber(sub(x, 1, k - 9)), tonumber(sub(x, k - 8)) end\n"
  "  if not hi or not lo then error(redis.error_reply('ERR a counter bucket is not an integer')) end\n"
  "  return hi, lo\n"
  "end\n"
  "\n"
  "local function join(hi, lo)\n"
  "  local fmt, MAX = string.format, '9223372036854775807'\n"
  "  local c = math.floor(lo / 1e9)\n"
  "  hi, lo = hi + c, lo - c * 1e9\n"
  "  if hi > 9223372036 or (hi == 9223372036 and lo >= 854775807) then return MAX end\n"
  "  if hi < 0 then error(redis.error_reply('ERR a cached counter reading went below zero')) end\n"
  "  if hi == 0 then return fmt('%d', lo) end\n"
  "  return fmt('%d%09d', hi, lo)\n"
  "end\n"
  "\n"
  "local function plus(x, y)\n"
  "  local a, b = split(x)\n"
  "  local c, d = split(y)\n"
  "  return join(a + c, b + d)\n"
  "end\n"
  "\n"
  "local function sum_op(h, f, a, ttl, want, fout)\n"
  "  local call, fmt, floor = redis.call, string.format, math.floor\n"
  "  local W, KEEP, STRIDE, MAX = " STR(BUCKETS) ", 2 * " STR(BUCKETS) ", " STR(STRIDE) ", '9223372036854775807'\n"
  "  local m = call('HMGET', h, 'nb', 'nv', 'cb', 'cs', fout)\n"
  "  local nbs, nv, cbs, cs, vout = m[1], m[2], m[3], m[4], m[5]\n"
  "  if cbs == f and (not a or nbs == f) then\n"
  "    if a then\n"
  "      local ah, al = split(a)\n"
  "      local xh, xl = split(nv)\n"
  "      nv = join(xh + ah, xl + al)\n"
  "      xh, xl = split(cs)\n"
  "      cs = join(xh + ah, xl + al)\n"
  "      call('HSET', h, 'nv', nv, 'cs', cs)\n"
  "    end\n"
  "    return want and cs or nil\n"
  "  end\n"
  "  local b, nb, cb = tonumber(f), tonumber(nbs), tonumber(cbs)\n"
  "  local set, ns, expire, pk, pv = {}, 0, false, nil, nil\n"
  "  if a and not (nb and b <= nb - KEEP) then\n"
  "    if nb and b < nb then\n"
  "      local old = call('HGET', h, f)\n"
  "      local new = old and plus(old, a) or a\n"
  "      set[1], set[2], ns, pk, pv = f, new, 2, f, new\n"
  "    elseif nb == b then\n"
  "      nv = plus(nv, a)\n"
  "      set[1], set[2], ns = 'nv', nv, 2\n"
  "    else\n"
  "      if nb and b - nb < KEEP then\n"
  "        set[1], set[2], ns, pk, pv = nbs, nv, 2, nbs, nv\n"
  "      end\n"
  "      if not nb or floor(b / STRIDE) > floor(nb / STRIDE) then\n"
  "        expire = true\n"
  "        if nb then\n"
  "          local cut, gone = b - KEEP, {}\n"
  "          for x = floor(nb / STRIDE) * STRIDE - KEEP + 1, math.min(cut, nb) do gone[#gone + 1] = fmt('%d', x) end\n"
  "          if #gone > 0 then call('HDEL', h, unpack(gone)) end\n"
  "          if cb and cb - W < cut then\n"
  "            set[ns + 1], set[ns + 2], ns = 'cb', '', ns + 2\n"
  "            cb, cbs, cs = nil, nil, nil\n"
  "          end\n"
  "        end\n"
  "      end\n"
  "      nb, nbs, nv = b, f, a\n"
  "      set[ns + 1], set[ns + 2], set[ns + 3], set[ns + 4], ns = 'nb', f, 'nv', a, ns + 4\n"
  "    end\n"
  "    if cb and b <= cb and b > cb - W then\n"
  "      cs = plus(cs, a)\n"
  "      set[ns + 1], set[ns + 2], ns = 'cs', cs, ns + 2\n"
  "    end\n"
  "  end\n"
  "  local r\n"
  "  if want then\n"
  "    if not nb then\n"
  "      r = '0'\n"
  "    elseif cbs == f then\n"
  "      r = cs\n"
  "    elseif b - nb >= W then\n"
  "      r = '0'\n"
  "    elseif cb == b - 1 and cs ~= MAX and b >= nb then\n"
  "      local h1, l1 = split(cs)\n"
  "      if b == nb then local h2, l2 = split(nv); h1, l1 = h1 + h2, l1 + l2 end\n"
  "      local x = vout\n"
  "      if fout == pk then x = pv end\n"
  "      if x then local h2, l2 = split(x); h1, l1 = h1 - h2, l1 - l2 end\n"
  "      r = join(h1, l1)\n"
  "    else\n"
  "      local names, signs, nn, hi, lo = {}, {}, 0, 0, 0\n"
  "      local d = cb and cs and cs ~= MAX and b - cb\n"
  "      if d and d > -30 and d < 30 then\n"
  "        hi, lo = split(cs)\n"
  "        local s = d > 0 and 1 or -1\n"
  "        for x = math.min(b, cb) + 1, math.max(b, cb) do\n"
  "          names[nn + 1], signs[nn + 1] = fmt('%d', x), s\n"
  "          names[nn + 2], signs[nn + 2] = fmt('%d', x - W), -s\n"
  "          nn = nn + 2\n"
  "        end\n"
  "      else\n"
  "        for x = b - W + 1, math.min(b, nb) do\n"
  "          nn = nn + 1\n"
  "          names[nn], signs[nn] = fmt('%d', x), 1\n"
  "        end\n"
  "      end\n"
  "      if nn > 0 then\n"
  "        local vals = call('HMGET', h, unpack(names))\n"
  "        for i = 1, nn do\n"
  "          local name, x = names[i], vals[i]\n"
  "          if name == nbs then x = nv elseif name == pk then x = pv end\n"
  "          if x then\n"
  "            local xh, xl = split(x)\n"
  "            hi, lo = hi + signs[i] * xh, lo + signs[i] * xl\n"
  "          end\n"
  "        end\n"
  "      end\n"
  "      r = join(hi, lo)\n"
  "    end\n"
  "    if nb and (not cb or b > cb) then\n"
  "      set[ns + 1], set[ns + 2], set[ns + 3], set[ns + 4], ns = 'cb', f, 'cs', r, ns + 4\n"
  "    end\n"
  "  end\n"
  "  if ns > 0 then call('HSET', h, unpack(set)) end\n"
  "  if expire then call('PEXPIRE', h, ttl) end\n"
  "  return r\n"
  "end\n"
  "\n"
  "local function dist_op(k, f, member, ttl, want)\n"
  "  local call, fmt, W = redis.call, string.format, " STR(BUCKETS) "\n"
  "  local m, u = nil, k .. 'u'\n"
  "  if member and call('PFADD', k .. f, member) == 1 then\n"
  "    call('PEXPIRE', k .. f, ttl)\n"
  "    m = call('GET', k .. 'm')\n"
  "    local b, cb = tonumber(f), tonumber(m)\n"
  "    if m == f or cb and b <= cb and b > cb - W then call('PFADD', u, member) end\n"
  "  end\n"
  "  if not want then return end\n"
  "  if m == nil then m = call('GET', k .. 'm') end\n"
  "  if m == f then return call('PFCOUNT', u) end\n"
  "  local b, names = tonumber(f), {}\n"
  "  for d = 0, W - 1 do names[d + 1] = k .. fmt('%d', b - d) end\n"
  "  local cb = tonumber(m)\n"
  "  if cb and b < cb then return call('PFCOUNT', unpack(names)) end\n"
  "  if call('EXISTS', unpack(names)) == 0 then return 0 end\n"
  "  call('DEL', u)\n"
  "  call('PFMERGE', u, unpack(names))\n"
  "  call('PEXPIRE', u, fmt('%d', tonumber(ttl) + 1000))\n"
  "  call('SET', k .. 'm', f, 'PX', ttl)\n"
  "  return call('PFCOUNT', u)\n"
  "end\n"
  "\n"
  "local call = redis.call\n"
  "if ARGV[1] ~= '1' then\n"
  "  for j = 2, #ARGV, 6 do\n"
  "    local kind = ARGV[j]\n"
  "    if kind == 'T' then\n"
  "      sum_op(ARGV[j + 1], ARGV[j + 2], ARGV[j + 3], ARGV[j + 4], false, ARGV[j + 5])\n"
  "    elseif kind == 'E' then\n"
  "      dist_op(ARGV[j + 1], ARGV[j + 2], ARGV[j + 3], ARGV[j + 4], false)\n"
  "    elseif kind == 'P' then\n"
  "      call('SET', ARGV[j + 1], ARGV[j + 3], 'PX', ARGV[j + 4])\n"
  "    end\n"
  "  end\n"
  "  return 0\n"
  "end\n"
  "local out = {}\n"
  "for j = 2, #ARGV, 6 do\n"
  "  local kind, key, r = ARGV[j], ARGV[j + 1], nil\n"
  "  if kind == 'g' then\n"
  "    r = call('GET', key)\n"
  "  elseif kind == 'S' then\n"
  "    r = sum_op(key, ARGV[j + 2], ARGV[j + 3], ARGV[j + 4], true, ARGV[j + 5])\n"
  "  elseif kind == 's' then\n"
  "    r = sum_op(key, ARGV[j + 2], nil, ARGV[j + 4], true, ARGV[j + 5])\n"
  "  elseif kind == 'D' then\n"
  "    r = dist_op(key, ARGV[j + 2], ARGV[j + 3], ARGV[j + 4], true)\n"
  "  else\n"
  "    r = dist_op(key, ARGV[j + 2], nil, ARGV[j + 4], true)\n"
  "  end\n"
  "  out[#out + 1] = r\n"
  "end\n"
  "return out\n";

/* ---- byte buffers ----------------------------------------------------------------- */

typedef struct buf {
  char *p;
  size_t len, cap;
  bool oom;               /* a put failed: the contents are not to be used */
} buf;

static void buf_put(buf *b, const void *p, size_t n) {
  if (b->oom) return;
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + n) cap *= 2;
    char *g = realloc(b->p, cap);
    if (!g) {
      b->oom = true;
      return;
    }
    b->p = g;
    b->cap = cap;
  }
  if (n) memcpy(b->p + b->len, p, n);
  b->len += n;
}

static void buf_free(buf *b) {
  free(b->p);
  *b = (buf){0};
}

/* Decimal digits of v into t (at least 21 bytes); returns their count. */
static size_t fmt_i64(char *t, int64_t v) {
  char r[24];
  size_t n = 0, k = 0;
  uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
  do r[n++] = (char)('0' + u % 10); while (u /= 10);
  if (v < 0) t[k++] = '-';
  while (n) t[k++] = r[--n];
  return k;
}

/* RESP: a command is "*ARGC\r\n" and then "$LEN\r\nBYTES\r\n" per argument. */
static void put_count(buf *b, char c, int64_t n) {
  char t[32];
  t[0] = c;
  size_t k = 1 + fmt_i64(t + 1, n);
  t[k++] = '\r';
  t[k++] = '\n';
  buf_put(b, t, k);
}

static void put_arg(buf *b, const void *p, size_t n) {
  put_count(b, '$', (int64_t)n);
  buf_put(b, p, n);
  buf_put(b, "\r\n", 2);
}

static void put_arg_str(buf *b, const char *s) {
  put_arg(b, s, strlen(s));
}

static void put_arg_i64(buf *b, int64_t v) {
  char t[24];
  put_arg(b, t, fmt_i64(t, v));
}

/* ---- the store and its sessions ------------------------------------------------------ */

typedef struct redis_store {
  store base;
  char *host;
  int port;
  long db;                /* -1: the server's default database */
  char *prefix;
  size_t prefix_len;
  int64_t timeout_ns;
  char where[128];        /* "redis HOST:PORT", how messages start (cut short for long names) */
} redis_store;

typedef struct redis_session {
  store_session base;
  redisContext *c;        /* NULL when not connected */
  char sha[41];           /* the script's SHA-1, from SCRIPT LOAD */
  int64_t retry_at;       /* CLOCK_MONOTONIC ns: no connection attempt before */
  int64_t backoff_ns;     /* the next delay after a failure */
  char last_error[256];   /* what failed last, repeated while backing off */
  buf cmd;                /* the command being formatted */
  buf out;                /* bytes to send; out_sent of them already are */
  size_t out_sent;
  buf pend;               /* commits whose replies are unread, back to back */
  size_t *pend_len;       /* the length of each */
  size_t npend, cappend;
} redis_session;

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static redis_store *store_of(redis_session *s) {
  return (redis_store *)s->base.owner;
}

/* "WHERE: WHAT" into dst, cut short to fit. */
static void say(char *dst, size_t cap, const char *where, const char *what) {
  size_t n = (size_t)snprintf(dst, cap, "%s: ", where);
  if (n < cap) snprintf(dst + n, cap - n, "%s", what);
}

/* A failure that leaves the connection usable (the request failed). */
static int fail(redis_session *s, store_report *r, const char *what) {
  say(r->message, sizeof r->message, store_of(s)->where, what);
  return -1;
}

/* A failure of the connection: it is dropped with every unread commit (the
 * server may or may not have applied them), and the next attempt waits for
 * the backoff delay. */
static int fail_conn(redis_session *s, store_report *r, const char *what) {
  say(s->last_error, sizeof s->last_error, store_of(s)->where, what);
  if (r) snprintf(r->message, sizeof r->message, "%s", s->last_error);
  if (s->c) redisFree(s->c);
  s->c = NULL;
  s->out.len = s->out_sent = 0;
  s->pend.len = s->npend = 0;
  s->out.oom = s->pend.oom = false;
  if (s->backoff_ns < BACKOFF_FIRST_NS) s->backoff_ns = BACKOFF_FIRST_NS;
  s->retry_at = mono_ns() + s->backoff_ns;
  s->backoff_ns = s->backoff_ns * 2 > BACKOFF_MAX_NS ? BACKOFF_MAX_NS : s->backoff_ns * 2;
  return -1;
}

static int fail_oom(redis_session *s, store_report *r) {
  return fail_conn(s, r, "out of memory");
}

/* Waits until the socket is ready for `events` or the deadline passes. */
static int wait_fd(redis_session *s, short events, int64_t deadline, store_report *r) {
  for (;;) {
    int64_t left = deadline - mono_ns();
    if (left <= 0) {
      char msg[64];
      snprintf(msg, sizeof msg, "timed out after %lld ms",
               (long long)(store_of(s)->timeout_ns / 1000000));
      return fail_conn(s, r, msg);
    }
    struct pollfd p = {.fd = s->c->fd, .events = events};
    int n = poll(&p, 1, (int)((left + 999999) / 1000000));
    if (n > 0) return 0; /* ready, or an error that the next read or write reports */
    if (n < 0 && errno != EINTR) return fail_conn(s, r, strerror(errno));
  }
}

/* Sends what it can of s->out without waiting; 0, or -1 on an error. */
static int send_some(redis_session *s, store_report *r) {
  while (s->out_sent < s->out.len) {
    ssize_t n = send(s->c->fd, s->out.p + s->out_sent, s->out.len - s->out_sent,
                     MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      s->out_sent += (size_t)n;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return 0;
    } else {
      return fail_conn(s, r, n < 0 ? strerror(errno) : "send failed");
    }
  }
  s->out.len = s->out_sent = 0;
  return 0;
}

/* Sends all of s->out before the deadline. */
static int flush(redis_session *s, int64_t deadline, store_report *r) {
  for (;;) {
    if (send_some(s, r) < 0) return -1;
    if (s->out.len == 0) return 0;
    if (wait_fd(s, POLLOUT, deadline, r) < 0) return -1;
  }
}

/* The next reply (the caller frees it), read before the deadline. */
static int read_reply(redis_session *s, int64_t deadline, redisReply **out, store_report *r) {
  for (;;) {
    void *reply = NULL;
    if (redisGetReplyFromReader(s->c, &reply) != REDIS_OK) return fail_conn(s, r, s->c->errstr);
    if (reply) {
      *out = reply;
      return 0;
    }
    if (wait_fd(s, POLLIN, deadline, r) < 0) return -1;
    if (redisBufferRead(s->c) != REDIS_OK) return fail_conn(s, r, s->c->errstr);
  }
}

static void queue_out(redis_session *s, const buf *b) {
  buf_put(&s->out, b->p, b->len);
}

static void put_script_load(buf *b) {
  put_count(b, '*', 3);
  put_arg_str(b, "SCRIPT");
  put_arg_str(b, "LOAD");
  put_arg(b, SCRIPT, sizeof SCRIPT - 1);
}

/* Reads the reply to SCRIPT LOAD into s->sha. */
static int read_sha(redis_session *s, int64_t deadline, store_report *r) {
  redisReply *rep;
  if (read_reply(s, deadline, &rep, r) < 0) return -1;
  int rc = 0;
  if (rep->type == REDIS_REPLY_STRING && rep->len == 40)
    memcpy(s->sha, rep->str, 41);
  else
    rc = fail_conn(s, r, rep->type == REDIS_REPLY_ERROR ? rep->str : "SCRIPT LOAD: unexpected reply");
  freeReplyObject(rep);
  return rc;
}

/* Connects when not connected (unless backing off), selects the database
 * and loads the script, in one round trip after the connection is made. */
static int ensure_connected(redis_session *s, int64_t deadline, store_report *r) {
  if (s->c) return 0;
  redis_store *st = store_of(s);
  if (mono_ns() < s->retry_at) {
    snprintf(r->message, sizeof r->message, "%s", s->last_error);
    return -1;
  }
  s->c = redisConnectNonBlock(st->host, st->port);
  if (!s->c) return fail_oom(s, r);
  if (s->c->err) return fail_conn(s, r, s->c->errstr);
  /* The non-blocking connect is done when the socket is writable. */
  if (wait_fd(s, POLLOUT, deadline, r) < 0) return -1;
  int soerr = 0;
  socklen_t len = sizeof soerr;
  if (getsockopt(s->c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0) soerr = errno;
  if (soerr) return fail_conn(s, r, strerror(soerr));
  int one = 1; /* small requests, answered at once: no Nagle delay */
  setsockopt(s->c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  if (st->db >= 0) {
    s->cmd.len = 0;
    s->cmd.oom = false;
    put_count(&s->cmd, '*', 2);
    put_arg_str(&s->cmd, "SELECT");
    put_arg_i64(&s->cmd, st->db);
    queue_out(s, &s->cmd);
  }
  put_script_load(&s->out);
  if (s->cmd.oom || s->out.oom) return fail_oom(s, r);
  if (flush(s, deadline, r) < 0) return -1;
  if (st->db >= 0) {
    redisReply *rep;
    if (read_reply(s, deadline, &rep, r) < 0) return -1;
    char msg[200];
    bool ok = rep->type == REDIS_REPLY_STATUS;
    if (!ok)
      snprintf(msg, sizeof msg, "SELECT %ld: %s", st->db,
               rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
    freeReplyObject(rep);
    if (!ok) return fail_conn(s, r, msg);
  }
  return read_sha(s, deadline, r);
}

/* ---- formatting one request's script call ---------------------------------------------- */

static void put_evalsha_head(redis_session *s, size_t nops, bool read) {
  buf *b = &s->cmd;
  b->len = 0;
  b->oom = false;
  put_count(b, '*', (int64_t)(4 + ARGS_PER_OP * nops));
  put_arg_str(b, "EVALSHA");
  put_arg(b, s->sha, 40);
  put_arg(b, "0", 1);
  put_arg(b, read ? "1" : "0", 1);
}

/* A counter's key: a sum's hash, PREFIX h:ID:KEY, or what a distinct
 * counter's keys start with, PREFIX d:ID:KEY: (the script appends). */
static void put_counter_key(redis_session *s, const store_counter_op *op) {
  redis_store *st = store_of(s);
  size_t id_len = strlen(op->id);
  bool dist = op->mode == STORE_DISTINCT;
  put_count(&s->cmd, '$', (int64_t)(st->prefix_len + 2 + id_len + 1 + op->key_len + dist));
  buf_put(&s->cmd, st->prefix, st->prefix_len);
  buf_put(&s->cmd, dist ? "d:" : "h:", 2);
  buf_put(&s->cmd, op->id, id_len);
  buf_put(&s->cmd, ":", 1);
  buf_put(&s->cmd, op->key, op->key_len);
  if (dist) buf_put(&s->cmd, ":", 1);
  buf_put(&s->cmd, "\r\n", 2);
}

/* A suspension's key: PREFIX s:N:RULE:KEY. */
static void put_suspend_key(redis_session *s, const store_suspend_op *op) {
  redis_store *st = store_of(s);
  size_t rule_len = strlen(op->rule);
  char n[24];
  size_t nl = fmt_i64(n, (int64_t)rule_len);
  put_count(&s->cmd, '$', (int64_t)(st->prefix_len + 2 + nl + 1 + rule_len + 1 + op->key_len));
  buf_put(&s->cmd, st->prefix, st->prefix_len);
  buf_put(&s->cmd, "s:", 2);
  buf_put(&s->cmd, n, nl);
  buf_put(&s->cmd, ":", 1);
  buf_put(&s->cmd, op->rule, rule_len);
  buf_put(&s->cmd, ":", 1);
  buf_put(&s->cmd, op->key, op->key_len);
  buf_put(&s->cmd, "\r\n", 2);
}

static int64_t ms_ceil(int64_t ns) {
  return ns / 1000000 + (ns % 1000000 != 0);
}

/* A bucket is read until a window after it starts: its key lives a
 * window and a bucket after its first write (plus a second for the clocks'
 * differences). A sum's hash renews its TTL only when its newest bucket
 * enters a new stride of STRIDE buckets, so it lives STRIDE buckets more. */
static int64_t counter_ttl_ms(int64_t window_ns, bool sum) {
  int64_t ms = ms_ceil(window_ns) + ms_ceil(window_ns / BUCKETS) * (sum ? STRIDE + 1 : 1) + 1000;
  return ms > MAX_TTL_MS ? MAX_TTL_MS : ms;
}

/* One counter operation's arguments: KIND KEY BUCKET ARG TTL_MS OUT. */
static void put_counter_op(redis_session *s, char kind, const store_counter_op *op, int64_t b,
                           bool add) {
  bool sum = op->mode != STORE_DISTINCT;
  put_arg(&s->cmd, &kind, 1);
  put_counter_key(s, op);
  put_arg_i64(&s->cmd, b);
  if (!add)
    put_arg(&s->cmd, "", 0);
  else if (sum)
    put_arg_i64(&s->cmd, op->amount);
  else
    put_arg(&s->cmd, op->member, op->member_len);
  put_arg_i64(&s->cmd, counter_ttl_ms(op->window_ns, sum));
  if (sum)
    put_arg_i64(&s->cmd, b - BUCKETS); /* the bucket a slide by one drops: fetched at once */
  else
    put_arg(&s->cmd, "", 0);
}

/* Checks what the keys and the script need of a counter. */
static int check_counter(redis_session *s, const store_counter_op *op, int64_t b,
                         store_report *r) {
  char msg[200];
  if (strchr(op->id, ':')) {
    snprintf(msg, sizeof msg, "counter id \"%.100s\" holds ':'", op->id);
    return fail(s, r, msg);
  }
  if (b > MAX_EXACT_BUCKET || b < -MAX_EXACT_BUCKET) {
    snprintf(msg, sizeof msg, "counter \"%.100s\": bucket index %lld is beyond 2^53", op->id,
             (long long)b);
    return fail(s, r, msg);
  }
  return 0;
}

static int format_begin(redis_session *s, int64_t now_ns, const store_counter_op *ops,
                        size_t nops, const store_suspend_op *susp, size_t nsusp,
                        store_report *r) {
  put_evalsha_head(s, nops + nsusp, true);
  for (size_t i = 0; i < nops; i++) {
    const store_counter_op *op = &ops[i];
    int64_t b = store_bucket(now_ns, op->window_ns);
    if (check_counter(s, op, b, r) < 0) return -1;
    bool sum = op->mode != STORE_DISTINCT;
    bool add = op->add && (!sum || op->amount > 0); /* adding 0 changes nothing */
    put_counter_op(s, sum ? (add ? 'S' : 's') : (add ? 'D' : 'd'), op, b, add);
  }
  for (size_t i = 0; i < nsusp; i++) {
    put_arg(&s->cmd, "g", 1);
    put_suspend_key(s, &susp[i]);
    for (int k = 2; k < ARGS_PER_OP; k++) put_arg(&s->cmd, "", 0);
  }
  return s->cmd.oom ? fail_oom(s, r) : 0;
}

/* Whether commit writes this counter (adding 0 to a sum changes nothing). */
static bool commit_writes(const store_counter_op *op) {
  return op->add && (op->mode == STORE_DISTINCT || op->amount > 0);
}

/* The commit's script call, with the n operations that write. */
static int format_commit(redis_session *s, int64_t now_ns, const store_counter_op *ops,
                         size_t nops, const store_suspend_op *susp, size_t nsusp, size_t n,
                         store_report *r) {
  put_evalsha_head(s, n, false);
  for (size_t i = 0; i < nops; i++) {
    const store_counter_op *op = &ops[i];
    bool sum = op->mode != STORE_DISTINCT;
    if (!commit_writes(op)) continue;
    int64_t b = store_bucket(now_ns, op->window_ns);
    if (check_counter(s, op, b, r) < 0) return -1;
    put_counter_op(s, sum ? 'T' : 'E', op, b, true);
  }
  for (size_t i = 0; i < nsusp; i++) {
    put_arg(&s->cmd, "P", 1);
    put_suspend_key(s, &susp[i]);
    put_arg(&s->cmd, "", 0);
    /* The interval [now, until), compared with request times in C: Lua's
     * doubles cannot hold nanosecond timestamps exactly. */
    char rec[48];
    size_t k = fmt_i64(rec, now_ns);
    rec[k++] = ' ';
    k += fmt_i64(rec + k, susp[i].until_ns);
    put_arg(&s->cmd, rec, k);
    __int128 left = (__int128)susp[i].until_ns - now_ns;
    int64_t ttl = left <= 0 ? 0 : left >= (__int128)MAX_TTL_MS * 1000000 ? MAX_TTL_MS
                                                                         : ms_ceil((int64_t)left);
    put_arg_i64(&s->cmd, ttl + 1000 > MAX_TTL_MS ? MAX_TTL_MS : ttl + 1000);
    put_arg(&s->cmd, "", 0);
  }
  return s->cmd.oom ? fail_oom(s, r) : 0;
}

/* ---- reading the replies --------------------------------------------------------------- */

static bool is_noscript(const redisReply *rep) {
  return rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOSCRIPT", 8) == 0;
}

/* A decimal int64 (the whole of s[0..n)), as Redis writes them. */
static bool parse_i64(const char *s, size_t n, int64_t *out) {
  bool neg;
  uint64_t mag;
  if ((n > 0 && s[0] == '+') || /* never written by Redis */
      !cel_parse_decimal(s, n, true, (uint64_t)INT64_MAX, (uint64_t)INT64_MAX + 1, &neg, &mag))
    return false;
  *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
  return true;
}

/* A sum comes as a decimal string: Lua cannot hold every int64. */
static bool read_sum(const redisReply *e, int64_t *value) {
  return e->type == REDIS_REPLY_STRING && parse_i64(e->str, e->len, value) && *value >= 0;
}

static bool read_suspension(const redisReply *e, int64_t now_ns, bool *active) {
  if (e->type == REDIS_REPLY_NIL) {
    *active = false;
    return true;
  }
  if (e->type != REDIS_REPLY_STRING) return false;
  const char *sp = memchr(e->str, ' ', e->len);
  int64_t start, until;
  if (!sp || !parse_i64(e->str, (size_t)(sp - e->str), &start) ||
      !parse_i64(sp + 1, e->len - (size_t)(sp - e->str) - 1, &until))
    return false;
  *active = start <= now_ns && now_ns < until;
  return true;
}

/* Fills the begin's outputs from the script's reply. */
static int read_begin_reply(redis_session *s, const redisReply *rep, int64_t now_ns,
                            store_counter_op *ops, size_t nops, store_suspend_op *susp,
                            size_t nsusp, store_report *r) {
  if (rep->type == REDIS_REPLY_ERROR) return fail(s, r, rep->str);
  if (rep->type != REDIS_REPLY_ARRAY || rep->elements != nops + nsusp)
    return fail(s, r, "the script answered with an unexpected reply");
  for (size_t i = 0; i < nops; i++) {
    const redisReply *e = rep->element[i];
    bool ok;
    if (ops[i].mode == STORE_DISTINCT) {
      ok = e->type == REDIS_REPLY_INTEGER && e->integer >= 0;
      if (ok) ops[i].value = e->integer;
    } else {
      ok = read_sum(e, &ops[i].value);
    }
    if (!ok) return fail(s, r, "the script answered with an unexpected counter value");
  }
  for (size_t i = 0; i < nsusp; i++)
    if (!read_suspension(rep->element[nops + i], now_ns, &susp[i].active))
      return fail(s, r, "a suspension record is not \"START UNTIL\"");
  return 0;
}

static void notice(store_report *r, const char *msg) {
  if (r && r->notice) r->notice(r->notice_ctx, msg, strlen(msg));
}

/* The reply to a commit: a failed write is a notice, not a failure of the
 * request that reads it. Returns whether the commit is to be sent again
 * (the server had lost the script). */
static bool commit_reply(redis_session *s, const redisReply *rep, store_report *r) {
  if (is_noscript(rep)) return true;
  if (rep->type == REDIS_REPLY_ERROR) {
    char msg[300];
    snprintf(msg, sizeof msg, "%s: a pipelined write failed: %s", store_of(s)->where, rep->str);
    notice(r, msg);
  }
  return false;
}

/* Reads the replies to every queued commit. With `retry`, the commits the
 * server refused for want of the script are kept in the queue (in order);
 * else they are dropped with a notice. Returns 1 if any was kept. */
static int read_pending(redis_session *s, int64_t deadline, bool retry, store_report *r) {
  size_t kept = 0, kept_len = 0, off = 0;
  for (size_t i = 0; i < s->npend; i++) {
    redisReply *rep;
    if (read_reply(s, deadline, &rep, r) < 0) return -1;
    bool again = commit_reply(s, rep, r);
    freeReplyObject(rep);
    if (again && !retry) {
      char msg[300];
      snprintf(msg, sizeof msg, "%s: a pipelined write failed: the server lost the script",
               store_of(s)->where);
      notice(r, msg);
    } else if (again) {
      memmove(s->pend.p + kept_len, s->pend.p + off, s->pend_len[i]);
      kept_len += s->pend_len[i];
      s->pend_len[kept++] = s->pend_len[i];
    }
    off += s->pend_len[i];
  }
  s->npend = kept;
  s->pend.len = kept_len;
  return kept > 0;
}

/* ---- the store class ----------------------------------------------------------------------- */

static int redis_begin(store_session *ss, int64_t now_ns, store_counter_op *ops, size_t nops,
                       store_suspend_op *susp, size_t nsusp, store_report *r) {
  redis_session *s = (redis_session *)ss;
  if (nops + nsusp == 0 && s->npend == 0) return 0;
  int64_t deadline = mono_ns() + store_of(s)->timeout_ns;
  if (ensure_connected(s, deadline, r) < 0) return -1;
  bool call = nops + nsusp > 0;
  if (call) {
    if (format_begin(s, now_ns, ops, nops, susp, nsusp, r) < 0) return -1;
    queue_out(s, &s->cmd);
    if (s->out.oom) return fail_oom(s, r);
  }
  /* The commits' replies come first: they were queued before this call. */
  if (flush(s, deadline, r) < 0) return -1;
  int reload = read_pending(s, deadline, true, r);
  if (reload < 0) return -1;
  redisReply *rep = NULL;
  if (call && read_reply(s, deadline, &rep, r) < 0) return -1;
  if (rep && is_noscript(rep)) {
    freeReplyObject(rep);
    rep = NULL;
    reload = 1;
  }
  if (reload) {
    /* The server lost the script (SCRIPT FLUSH, a restart between two
     * calls): load it again and send again, once, what it refused. */
    put_script_load(&s->out);
    buf_put(&s->out, s->pend.p, s->pend.len);
    if (call && !rep) queue_out(s, &s->cmd); /* s->cmd still holds the begin's call */
    if (s->out.oom) return fail_oom(s, r);
    if (flush(s, deadline, r) < 0) return -1;
    if (read_sha(s, deadline, r) < 0) return -1;
    if (read_pending(s, deadline, false, r) < 0) return -1;
    if (call && !rep && read_reply(s, deadline, &rep, r) < 0) return -1;
  }
  int rc = 0;
  if (rep) {
    rc = read_begin_reply(s, rep, now_ns, ops, nops, susp, nsusp, r);
    freeReplyObject(rep);
  }
  if (rc == 0) s->backoff_ns = 0;
  return rc;
}

static int redis_commit(store_session *ss, int64_t now_ns, const store_counter_op *ops,
                        size_t nops, const store_suspend_op *susp, size_t nsusp,
                        store_report *r) {
  redis_session *s = (redis_session *)ss;
  size_t n = nsusp;
  for (size_t i = 0; i < nops; i++) n += commit_writes(&ops[i]);
  if (n == 0) return 0;
  int64_t deadline = mono_ns() + store_of(s)->timeout_ns;
  /* Connected first: the call names the script by the SHA-1 it loaded. */
  if (ensure_connected(s, deadline, r) < 0) return -1;
  if (format_commit(s, now_ns, ops, nops, susp, nsusp, n, r) < 0) return -1;
  /* A caller that commits without ever beginning again: read the oldest
   * replies now rather than let them pile up in the socket. */
  if (s->npend >= MAX_PENDING &&
      (flush(s, deadline, r) < 0 || read_pending(s, deadline, false, r) < 0))
    return -1;
  if (s->npend == s->cappend) {
    size_t cap = s->cappend ? s->cappend * 2 : 8;
    size_t *g = realloc(s->pend_len, cap * sizeof *g);
    if (!g) return fail_oom(s, r);
    s->pend_len = g;
    s->cappend = cap;
  }
  buf_put(&s->pend, s->cmd.p, s->cmd.len);
  queue_out(s, &s->cmd);
  if (s->pend.oom || s->out.oom) return fail_oom(s, r);
  s->pend_len[s->npend++] = s->cmd.len;
  /* On its way now, so that other processes see the writes even if this
   * session stays idle; the reply waits for the next begin. */
  return send_some(s, r);
}

static store_session *redis_open_session(store *st, char *err, size_t errcap) {
  return store_session_new(st, sizeof(redis_session), err, errcap);
}

static void redis_close_session(store_session *ss) {
  redis_session *s = (redis_session *)ss;
  if (s->c && s->npend) {
    /* Give the last commits their chance to be sent and answered; there is
     * nobody left to tell if they failed. */
    store_report r = {0};
    int64_t deadline = mono_ns() + store_of(s)->timeout_ns;
    if (flush(s, deadline, &r) == 0) read_pending(s, deadline, false, &r);
  }
  if (s->c) redisFree(s->c);
  buf_free(&s->cmd);
  buf_free(&s->out);
  buf_free(&s->pend);
  free(s->pend_len);
  free(s);
}

static void redis_destroy(store *st) {
  redis_store *rs = (redis_store *)st;
  free(rs->host);
  free(rs->prefix);
  free(rs);
}

static const store_class redis_class = {
  .name = "redis",
  .open_session = redis_open_session,
  .close_session = redis_close_session,
  .begin = redis_begin,
  .commit = redis_commit,
  .destroy = redis_destroy,
};

/* ---- the URL ----------------------------------------------------------------------------------- */

/* Digits only, at most `max`; false otherwise. */
static bool parse_num(const char *s, size_t n, long max, long *out) {
  long v = 0;
  if (n == 0) return false;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
    if (v > max) return false;
  }
  *out = v;
  return true;
}

static store *bad_url(redis_store *rs, const char *url, const char *why, char *err, size_t errcap) {
  snprintf(err, errcap, "bad store URL \"%s\": %s", url, why);
  redis_destroy(&rs->base);
  return NULL;
}

store *store_redis_new(const char *url, char *err, size_t errcap) {
  redis_store *rs = calloc(1, sizeof *rs);
  if (!rs) {
    snprintf(err, errcap, "out of memory");
    return NULL;
  }
  rs->base.cls = &redis_class;
  rs->base.refs = 1;
  rs->db = -1;
  rs->timeout_ns = (int64_t)DEFAULT_TIMEOUT_MS * 1000000;
  if (strncmp(url, "redis://", 8) != 0) return bad_url(rs, url, "expected redis://", err, errcap);
  const char *p = url + 8, *host, *host_end;
  /* HOST: a name, an IPv4 address, or an IPv6 address in brackets. */
  if (*p == '[') {
    host = ++p;
    while (*p && *p != ']') p++;
    if (*p != ']' || p == host) return bad_url(rs, url, "unclosed IPv6 address", err, errcap);
    host_end = p++;
    for (const char *q = host; q < host_end; q++)
      if (!strchr("0123456789abcdefABCDEF:.", *q))
        return bad_url(rs, url, "bad IPv6 address", err, errcap);
  } else {
    host = p;
    while (*p && (strchr("-._", *p) || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
                  (*p >= 'A' && *p <= 'Z')))
      p++;
    host_end = p;
    if (*p == '@' || strchr(p, '@'))
      return bad_url(rs, url, "user names and passwords are not supported", err, errcap);
    if (host_end == host) return bad_url(rs, url, "expected a host name", err, errcap);
  }
  if (*p != ':') return bad_url(rs, url, "expected :PORT after the host", err, errcap);
  const char *port = ++p;
  while (*p >= '0' && *p <= '9') p++;
  long v;
  if (!parse_num(port, (size_t)(p - port), 65535, &v) || v == 0)
    return bad_url(rs, url, "the port is not a number from 1 to 65535", err, errcap);
  rs->port = (int)v;
  if (*p == '/') {
    const char *db = ++p;
    while (*p >= '0' && *p <= '9') p++;
    if (!parse_num(db, (size_t)(p - db), INT_MAX, &rs->db))
      return bad_url(rs, url, "the database is not a number", err, errcap);
  }
  bool have_prefix = false, have_timeout = false;
  if (*p == '?') {
    p++;
    for (;;) {
      const char *name = p, *eq = NULL;
      while (*p && *p != '&') {
        if (!eq && *p == '=') eq = p;
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
          return bad_url(rs, url, "spaces and control characters are not allowed", err, errcap);
        p++;
      }
      if (!eq) return bad_url(rs, url, "expected NAME=VALUE after ? or &", err, errcap);
      const char *val = eq + 1;
      size_t name_len = (size_t)(eq - name), val_len = (size_t)(p - val);
      if (name_len == 6 && memcmp(name, "prefix", 6) == 0) {
        if (have_prefix) return bad_url(rs, url, "prefix given twice", err, errcap);
        if (val_len == 0) return bad_url(rs, url, "the prefix is empty", err, errcap);
        if (!(rs->prefix = strndup(val, val_len))) return bad_url(rs, url, "out of memory", err, errcap);
        rs->prefix_len = val_len;
        have_prefix = true;
      } else if (name_len == 10 && memcmp(name, "timeout_ms", 10) == 0) {
        if (have_timeout) return bad_url(rs, url, "timeout_ms given twice", err, errcap);
        if (!parse_num(val, val_len, 3600000, &v) || v == 0)
          return bad_url(rs, url, "timeout_ms is not a number from 1 to 3600000", err, errcap);
        rs->timeout_ns = (int64_t)v * 1000000;
        have_timeout = true;
      } else {
        char why[120];
        snprintf(why, sizeof why, "unknown parameter \"%.*s\" (expected prefix or timeout_ms)",
                 (int)(name_len > 40 ? 40 : name_len), name);
        return bad_url(rs, url, why, err, errcap);
      }
      if (!*p) break;
      p++;
    }
  }
  if (*p) return bad_url(rs, url, "unexpected text after the address", err, errcap);
  if (!rs->prefix) {
    if (!(rs->prefix = strdup(DEFAULT_PREFIX))) return bad_url(rs, url, "out of memory", err, errcap);
    rs->prefix_len = strlen(DEFAULT_PREFIX);
  }
  if (!(rs->host = strndup(host, (size_t)(host_end - host))))
    return bad_url(rs, url, "out of memory", err, errcap);
  bool v6 = memchr(host, ':', (size_t)(host_end - host)) != NULL;
  snprintf(rs->where, sizeof rs->where, v6 ? "redis [%s]:%d" : "redis %s:%d", rs->host, rs->port);
  return &rs->base;
}
