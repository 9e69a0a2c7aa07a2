/*
** json.c — the exact JSON codec of libchameleon: Lua values <-> JSON text.
** Owns the json null sentinel, the array metatable (its registry key is the
** address of a file-static) and the `json` library table (chm__json_open).
** Relies only on Lua's C API: every byte it allocates comes from the state's
** allocator, so a sandbox's memory cap covers encoding and decoding.
** The rules (numbers, canonical output, errors) are in docs/json.md.
*/
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chm_int.h"
#include "sandbox.h"

/* The number rules below assume IEEE doubles and 64-bit integers. */
#if LUA_FLOAT_TYPE != LUA_FLOAT_DOUBLE || LUA_INT_TYPE != LUA_INT_LONGLONG
#error "json.c needs Lua built with double floats and 64-bit integers"
#endif

#if defined(__GNUC__)
#define JSON_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define JSON_PRINTF(f, a)
#endif

/* ===================================================================== */
/* Limits and shared helpers                                              */
/* ===================================================================== */

#define MAXDEPTH 1000 /* deepest nesting of arrays/objects, both ways */
#define MSGSIZE 512   /* longest error message, "json: " included */
#define PATHSIZE 200  /* longest "$.a[2]" path quoted in an encode error */
#define KEYSHOW 40    /* longest key quoted in such a path, in bytes */

/* Its address is the registry key of the array metatable. */
static const char array_key = 0;

/* push_arraymt(L)   [-0, +1, m]
** Push the array metatable, creating it on first use. It is protected
** (__metatable = "json.array") so a script can neither read nor change
** what every array of the state shares. */
static void push_arraymt(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &array_key) == LUA_TTABLE)
    return;
  lua_pop(L, 1);
  lua_createtable(L, 0, 2);
  lua_pushliteral(L, "json.array");
  lua_setfield(L, -2, "__name");
  lua_pushliteral(L, "json.array");
  lua_setfield(L, -2, "__metatable");
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &array_key);
}

/* utf8_len(s, n) -> length (1..4) of the well-formed UTF-8 sequence at s,
** or 0 if the bytes there are not one (RFC 3629: no overlong forms, no
** surrogates, nothing above U+10FFFF, no truncated sequence). */
static int utf8_len(const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  unsigned char lo = 0x80, hi = 0xBF;
  int len, i;
  if (n == 0)
    return 0;
  if (u[0] < 0x80)
    return 1;
  if (u[0] < 0xC2)
    return 0;
  if (u[0] < 0xE0) {
    len = 2;
  } else if (u[0] < 0xF0) {
    len = 3;
    if (u[0] == 0xE0)
      lo = 0xA0;
    else if (u[0] == 0xED)
      hi = 0x9F;
  } else if (u[0] < 0xF5) {
    len = 4;
    if (u[0] == 0xF0)
      lo = 0x90;
    else if (u[0] == 0xF4)
      hi = 0x8F;
  } else {
    return 0;
  }
  if (n < (size_t)len || u[1] < lo || u[1] > hi)
    return 0;
  for (i = 2; i < len; i++)
    if (u[i] < 0x80 || u[i] > 0xBF)
      return 0;
  return len;
}

/* decimal_point(dp): the decimal point of the current C locale, as a
** string, found by formatting 0.5. printf and strtod follow LC_NUMERIC;
** JSON always uses '.', so numbers are translated on the way in and out. */
static void decimal_point(char dp[8]) {
  char t[32];
  int n = snprintf(t, sizeof t, "%.1f", 0.5); /* "0.5", "0,5", ... */
  int len = n - 2;                            /* between "0" and "5" */
  if (len < 1 || len > 7 || t[0] != '0' || t[n - 1] != '5')
    len = 1, t[1] = '.';
  memcpy(dp, t + 1, (size_t)len);
  dp[len] = '\0';
}

/* ===================================================================== */
/* Growable byte buffer held by a userdata at a fixed stack slot          */
/* ===================================================================== */

/* Unlike luaL_Buffer, this leaves the rest of the stack free for the
** codecs' own use. Growing allocates a bigger userdata through Lua (so a
** failure is a genuine LUA_ERRMEM) and drops the old one to the GC. */
typedef struct jbuf {
  lua_State *L;
  int idx;    /* stack slot of the userdata holding the bytes */
  char *b;    /* the bytes */
  size_t n;   /* bytes in use */
  size_t cap; /* bytes available */
} jbuf;

static void jbuf_init(jbuf *B, lua_State *L, size_t cap) {
  B->L = L;
  B->b = (char *)lua_newuserdatauv(L, cap, 0);
  B->idx = lua_gettop(L);
  B->n = 0;
  B->cap = cap;
}

/* jbuf_grow(B, need)   [-0, +0, m]: make room for need more bytes. */
static void jbuf_grow(jbuf *B, size_t need) {
  size_t cap = B->cap < 64 ? 64 : B->cap;
  char *nb;
  if (need > ((size_t)-1) / 4 - B->n)
    luaL_error(B->L, "json: text too large");
  while (cap - B->n < need)
    cap *= 2;
  luaL_checkstack(B->L, 1, "json: out of stack");
  nb = (char *)lua_newuserdatauv(B->L, cap, 0);
  if (B->n > 0)
    memcpy(nb, B->b, B->n);
  lua_replace(B->L, B->idx);
  B->b = nb;
  B->cap = cap;
}

/* jbuf_space(B, need) -> where to write need bytes (then add to B->n). */
static char *jbuf_space(jbuf *B, size_t need) {
  if (B->cap - B->n < need)
    jbuf_grow(B, need);
  return B->b + B->n;
}

static void jbuf_add(jbuf *B, const char *s, size_t len) {
  if (len == 0)
    return;
  memcpy(jbuf_space(B, len), s, len);
  B->n += len;
}

static void jbuf_addc(jbuf *B, char c) {
  *jbuf_space(B, 1) = c;
  B->n++;
}

#define jbuf_addlit(B, s) jbuf_add((B), "" s, sizeof(s) - 1)

/* ===================================================================== */
/* Encoder                                                                */
/* ===================================================================== */

/* One step of the path from the root to the value being encoded; the
** steps live in the C frames of the containers being encoded. */
typedef struct enc_step {
  const struct enc_step *up; /* the step into the enclosing container */
  const char *key;           /* object key (anchored on the stack) or NULL */
  size_t len;                /* its length */
  lua_Integer index;         /* array index (1-based, as in Lua) */
} enc_step;

typedef struct enc {
  lua_State *L;
  jbuf B;               /* the output */
  int pretty;           /* indent two spaces per level */
  int visiting;         /* slot: set of tables being encoded (cycles) */
  int seen;             /* slot: tables met so far, and plans (enc_table) */
  int arraymt;          /* slot: the array metatable, or nil */
  int depth;            /* containers entered so far */
  unsigned long values; /* values encoded so far (budget charging) */
  const enc_step *path; /* innermost step, NULL at the root */
  char dp[8];           /* locale decimal point, "" until needed */
  char msg[MSGSIZE];    /* the error message, once failed */
} enc;

/* A small appender for formatting paths into a fixed array. */
typedef struct strout {
  char *b;     /* destination */
  size_t n;    /* bytes written (not counting the NUL) */
  size_t size; /* capacity including the NUL */
  int full;    /* something was cut */
} strout;

static void out_add(strout *o, const char *s, size_t len) {
  if (o->full)
    return;
  if (len > o->size - 1 - o->n) {
    len = o->size - 1 - o->n;
    o->full = 1;
  }
  memcpy(o->b + o->n, s, len);
  o->n += len;
  o->b[o->n] = '\0';
}

static int is_ident(const char *s, size_t len) {
  size_t i;
  if (len == 0 || (s[0] >= '0' && s[0] <= '9'))
    return 0;
  for (i = 0; i < len; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '_'))
      return 0;
  }
  return 1;
}

/* path_format(e, out, size): "$", then ".key", ["odd key"] or [index] for
** each step; cut with "..." when longer than size. Keys longer than
** KEYSHOW bytes are shortened; bytes that are not printable ASCII or valid
** UTF-8 show as '?'. */
static void path_format(const enc *e, char *out, size_t size) {
  strout o = {out, 0, size - 3, 0}; /* keep room for "..." */
  const enc_step *chain[MAXDEPTH];
  const enc_step *st;
  int k = 0;
  for (st = e->path; st != NULL && k < MAXDEPTH; st = st->up)
    chain[k++] = st;
  out[0] = '\0';
  out_add(&o, "$", 1);
  while (k-- > 0 && !o.full) {
    st = chain[k];
    if (st->key == NULL) {
      char t[32];
      int n = snprintf(t, sizeof t, "[%lld]", (long long)st->index);
      out_add(&o, t, (size_t)n);
    } else if (st->len <= KEYSHOW && is_ident(st->key, st->len)) {
      out_add(&o, ".", 1);
      out_add(&o, st->key, st->len);
    } else {
      size_t i = 0;
      out_add(&o, "[\"", 2);
      while (i < st->len && i < KEYSHOW) {
        unsigned char c = (unsigned char)st->key[i];
        int n = utf8_len(st->key + i, st->len - i);
        if (n > 1 && i + (size_t)n <= KEYSHOW) {
          out_add(&o, st->key + i, (size_t)n);
          i += (size_t)n;
        } else if (n > 1) {
          break;
        } else {
          char ch =
              (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') ? (char)c : '?';
          out_add(&o, &ch, 1);
          i++;
        }
      }
      if (i < st->len)
        out_add(&o, "...", 3);
      out_add(&o, "\"]", 2);
    }
  }
  if (o.full) {
    o.size += 3;
    o.full = 0;
    out_add(&o, "...", 3);
  }
}

/* enc_fail(e, fmt, ...) -> -1, after writing "json: <path>: <what>". */
static int enc_fail(enc *e, const char *fmt, ...) JSON_PRINTF(2, 3);
static int enc_fail(enc *e, const char *fmt, ...) {
  char path[PATHSIZE];
  char what[MSGSIZE / 2];
  va_list ap;
  path_format(e, path, sizeof path);
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  snprintf(e->msg, sizeof e->msg, "json: %s: %s", path, what);
  return -1;
}

static void enc_newline(enc *e, int depth) {
  char *p;
  if (!e->pretty)
    return;
  p = jbuf_space(&e->B, 1 + 2 * (size_t)depth);
  p[0] = '\n';
  memset(p + 1, ' ', 2 * (size_t)depth);
  e->B.n += 1 + 2 * (size_t)depth;
}

static void enc_integer(enc *e, lua_Integer i) {
  char t[24];
  char *q = t + sizeof t;
  lua_Unsigned u = i < 0 ? 0u - (lua_Unsigned)i : (lua_Unsigned)i;
  do {
    *--q = (char)('0' + u % 10);
    u /= 10;
  } while (u != 0);
  if (i < 0)
    *--q = '-';
  jbuf_add(&e->B, q, (size_t)(t + sizeof t - q));
}

/* enc_float: the shortest %.Ng (N = 14..17; from 1 for subnormals, whose
** precision is lower) that strtod reads back as the same double, with the
** locale's decimal point turned into '.', and ".0" appended when the text
** would otherwise read back as an integer ("1.0", "-0.0"). */
static int enc_float(enc *e, lua_Number x) {
  char s[64];
  int p, n;
  char *dp;
  if (isnan(x))
    return enc_fail(e, "cannot encode NaN");
  if (isinf(x))
    return enc_fail(e, "cannot encode %s", x > 0 ? "inf" : "-inf");
  if (e->dp[0] == '\0')
    decimal_point(e->dp);
  p = (x != 0 && fabs(x) < DBL_MIN) ? 1 : 14;
  for (;; p++) {
    n = snprintf(s, sizeof s - 4, "%.*g", p, x);
    if (p >= 17 || strtod(s, NULL) == x)
      break;
  }
  if (strcmp(e->dp, ".") != 0 && (dp = strstr(s, e->dp)) != NULL) {
    size_t dl = strlen(e->dp);
    *dp = '.';
    memmove(dp + 1, dp + dl, strlen(dp + dl) + 1);
    n -= (int)dl - 1;
  }
  if (strpbrk(s, ".e") == NULL) {
    memcpy(s + n, ".0", 3);
    n += 2;
  }
  jbuf_add(&e->B, s, (size_t)n);
  return 0;
}

/* enc_string: quote s, escaping '"', '\\' and control characters; other
** bytes must be UTF-8 and pass through unchanged. */
static int enc_string(enc *e, const char *s, size_t len, int iskey) {
  static const char hex[] = "0123456789abcdef";
  jbuf *B = &e->B;
  size_t i = 0, run = 0;
  jbuf_addc(B, '"');
  while (i < len) {
    unsigned char c = (unsigned char)s[i];
    char esc[6];
    size_t elen = 2;
    if (c >= 0x80) {
      int n = utf8_len(s + i, len - i);
      if (n == 0)
        return enc_fail(e, "invalid UTF-8 at byte %zu of %s", i + 1,
                        iskey ? "the key" : "the string");
      i += (size_t)n;
      continue;
    }
    if (c >= 0x20 && c != '"' && c != '\\') {
      i++;
      continue;
    }
    esc[0] = '\\';
    switch (c) {
    case '"':
      esc[1] = '"';
      break;
    case '\\':
      esc[1] = '\\';
      break;
    case '\b':
      esc[1] = 'b';
      break;
    case '\f':
      esc[1] = 'f';
      break;
    case '\n':
      esc[1] = 'n';
      break;
    case '\r':
      esc[1] = 'r';
      break;
    case '\t':
      esc[1] = 't';
      break;
    default:
      memcpy(esc + 1, "u00", 3);
      esc[4] = hex[c >> 4];
      esc[5] = hex[c & 15];
      elen = 6;
    }
    jbuf_add(B, s + run, i - run);
    jbuf_add(B, esc, elen);
    run = ++i;
  }
  jbuf_add(B, s + run, len - run);
  jbuf_addc(B, '"');
  return 0;
}

static int enc_value(enc *e, int idx);

/* How a table is encoded, and what it costs. A table is classified by
** walking its keys (lua_next), which costs its capacity, not its size: an
** emptied table with a million slots costs a million steps to find "{}".
** So that a script cannot multiply that cost by referring to one such
** table many times, the walk is done at most twice per table and encode:
** the first visit records the table in `seen`; a second visit stores the
** plan there (the array length, or the sorted keys of the object), and
** later visits reuse it. Work is then linear in the output plus the size
** of the distinct tables, and trees (the common case) keep no plans. */

/* enc_array: the table at idx as a JSON array of its elements 1..n. */
static int enc_array(enc *e, int idx, lua_Integer n) {
  lua_State *L = e->L;
  enc_step st = {e->path, NULL, 0, 0};
  lua_Integer i;
  e->path = &st;
  jbuf_addc(&e->B, '[');
  for (i = 1; i <= n; i++) {
    if (i > 1)
      jbuf_addc(&e->B, ',');
    enc_newline(e, e->depth);
    st.index = i;
    lua_rawgeti(L, idx, i);
    if (enc_value(e, lua_gettop(L)) != 0)
      return -1;
    lua_pop(L, 1);
  }
  if (n > 0)
    enc_newline(e, e->depth - 1);
  jbuf_addc(&e->B, ']');
  e->path = st.up;
  return 0;
}

typedef struct enc_key {
  const char *s; /* key bytes, anchored by the keys table */
  size_t len;    /* their length */
  lua_Integer k; /* position of the key in the keys table */
} enc_key;

static int key_cmp(const void *a, const void *b) {
  const enc_key *x = (const enc_key *)a, *y = (const enc_key *)b;
  size_t m = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->s, y->s, m);
  if (c != 0)
    return c;
  return x->len < y->len ? -1 : x->len > y->len;
}

/* enc_object_keys(e, idx, nkeys)   [-0, +1 on success, m]
** Push the plan of an object: a userdata array of enc_key in byte order,
** whose user value is the table of the keys (which anchors the strings,
** whatever later happens to the table at idx). Fails when a key is not a
** string. nkeys is a size hint. */
static int enc_object_keys(enc *e, int idx, lua_Integer nkeys) {
  lua_State *L = e->L;
  lua_Integer i = 0;
  int kidx;
  enc_key *keys;
  lua_createtable(L, (int)(nkeys < 1000000 ? nkeys : 1000000), 0);
  kidx = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING)
      return enc_fail(e,
                      "object key of type '%s' (object keys must be "
                      "strings)",
                      luaL_typename(L, -1));
    lua_pushvalue(L, -1);
    lua_rawseti(L, kidx, ++i);
  }
  nkeys = i;
  keys = (enc_key *)lua_newuserdatauv(L, (size_t)nkeys * sizeof *keys, 1);
  for (i = 0; i < nkeys; i++) {
    lua_rawgeti(L, kidx, i + 1);
    keys[i].s = lua_tolstring(L, -1, &keys[i].len);
    keys[i].k = i + 1;
    lua_pop(L, 1);
  }
  if (nkeys > 1)
    qsort(keys, (size_t)nkeys, sizeof *keys, key_cmp);
  lua_insert(L, kidx);
  lua_setiuservalue(L, kidx, 1);
  return 0;
}

/* enc_object: the table at idx as a JSON object, following the plan (from
** enc_object_keys) at plan. */
static int enc_object(enc *e, int idx, int plan) {
  lua_State *L = e->L;
  enc_step st = {e->path, NULL, 0, 0};
  const enc_key *keys = (const enc_key *)lua_touserdata(L, plan);
  size_t i, nkeys = lua_rawlen(L, plan) / sizeof *keys;
  int kidx;
  lua_getiuservalue(L, plan, 1);
  kidx = lua_gettop(L);
  e->path = &st;
  jbuf_addc(&e->B, '{');
  for (i = 0; i < nkeys; i++) {
    if (i > 0)
      jbuf_addc(&e->B, ',');
    enc_newline(e, e->depth);
    st.key = keys[i].s;
    st.len = keys[i].len;
    if (enc_string(e, keys[i].s, keys[i].len, 1) != 0)
      return -1;
    if (e->pretty)
      jbuf_addlit(&e->B, ": ");
    else
      jbuf_addc(&e->B, ':');
    lua_rawgeti(L, kidx, keys[i].k);
    lua_rawget(L, idx);
    if (enc_value(e, lua_gettop(L)) != 0)
      return -1;
    lua_pop(L, 1);
  }
  if (nkeys > 0)
    enc_newline(e, e->depth - 1);
  jbuf_addc(&e->B, '}');
  lua_pop(L, 1); /* keys table */
  e->path = st.up;
  return 0;
}

/* enc_plan(e, idx)   [-0, +1 on success, m]
** Classify the table at idx (see chm__json_encode) and push its plan: the
** array length (an integer) or the object's keys (enc_object_keys). */
static int enc_plan(enc *e, int idx) {
  lua_State *L = e->L;
  lua_Integer nkeys = 0, maxi = 0;
  int marked = 0, badkey = LUA_TNONE;
  if (lua_getmetatable(L, idx)) {
    marked = lua_rawequal(L, -1, e->arraymt);
    lua_pop(L, 1);
  }
  /* One walk over the keys: count them, find the largest positive integer
  ** key, and note the type of the first key that is none. */
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    nkeys++;
    if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1) {
      lua_Integer k = lua_tointeger(L, -1);
      maxi = k > maxi ? k : maxi;
    } else if (badkey == LUA_TNONE) {
      badkey = lua_type(L, -1);
    }
  }
  if (!marked && !(nkeys > 0 && badkey == LUA_TNONE && maxi == nkeys))
    return enc_object_keys(e, idx, nkeys);
  if (badkey != LUA_TNONE)
    return enc_fail(e, "array has a non-index key of type '%s'",
                    lua_typename(L, badkey));
  if (maxi != nkeys) {
    lua_Integer hole = 1; /* there is one at or below nkeys + 1 */
    while (lua_rawgeti(L, idx, hole) != LUA_TNIL) {
      lua_pop(L, 1);
      hole++;
    }
    return enc_fail(e, "array has a hole at index %lld (use json.null)",
                    (long long)hole);
  }
  lua_pushinteger(L, maxi);
  return 0;
}

/* enc_table: check depth and cycles, get the table's plan, and encode it.
** Reads the table raw: no metamethod runs. */
static int enc_table(enc *e, int idx) {
  lua_State *L = e->L;
  const void *self = lua_topointer(L, idx);
  int plan, seen, rc;
  if (e->depth >= MAXDEPTH)
    return enc_fail(e, "nesting deeper than %d", MAXDEPTH);
  luaL_checkstack(L, 8, "json: out of stack");
  if (lua_rawgetp(L, e->visiting, self) != LUA_TNIL)
    return enc_fail(e, "table contains itself (cycle)");
  lua_pop(L, 1);
  seen = lua_rawgetp(L, e->seen, self);
  if (seen == LUA_TNUMBER || seen == LUA_TUSERDATA) {
    plan = lua_gettop(L); /* the plan of an earlier visit */
  } else {
    lua_pop(L, 1);
    if (enc_plan(e, idx) != 0)
      return -1;
    plan = lua_gettop(L);
    if (seen == LUA_TNIL)
      lua_pushboolean(L, 1); /* first visit: just remember the table */
    else
      lua_pushvalue(L, plan); /* second visit: keep the plan */
    lua_rawsetp(L, e->seen, self);
  }
  lua_pushboolean(L, 1);
  lua_rawsetp(L, e->visiting, self);
  e->depth++;
  if (lua_type(L, plan) == LUA_TNUMBER)
    rc = enc_array(e, idx, lua_tointeger(L, plan));
  else
    rc = enc_object(e, idx, plan);
  if (rc != 0)
    return rc; /* the caller gives up: no need to unwind */
  e->depth--;
  lua_pushnil(L);
  lua_rawsetp(L, e->visiting, self);
  lua_pop(L, 1); /* plan */
  return 0;
}

static int enc_value(enc *e, int idx) {
  lua_State *L = e->L;
  /* Charge the open sandbox door every 1024 values, so a script cannot
  ** spend unbounded time inside one encode call (no-op outside a door). */
  if ((++e->values & 1023) == 0) chm__sandbox_charge(L, 1024, "json.encode");
  switch (lua_type(L, idx)) {
  case LUA_TNIL:
    jbuf_addlit(&e->B, "null");
    return 0;
  case LUA_TBOOLEAN:
    if (lua_toboolean(L, idx))
      jbuf_addlit(&e->B, "true");
    else
      jbuf_addlit(&e->B, "false");
    return 0;
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) {
      enc_integer(e, lua_tointeger(L, idx));
      return 0;
    }
    return enc_float(e, lua_tonumber(L, idx));
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    return enc_string(e, s, len, 0);
  }
  case LUA_TTABLE:
    return enc_table(e, idx);
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, idx) == NULL) { /* the json null sentinel */
      jbuf_addlit(&e->B, "null");
      return 0;
    }
    /* FALLTHROUGH */
  default:
    return enc_fail(e, "cannot encode a value of type '%s'",
                    luaL_typename(L, idx));
  }
}

/* chm__json_encode(L, idx, pretty)   [-0, +1, m]
** Contract in chm_int.h. Also:
** - Arrays: a table carrying the array metatable (json.array, or made by
**   decode) must have keys exactly 1..n, n >= 0; an unmarked table is an
**   array when its keys are exactly 1..n with n >= 1. Any other table is an
**   object and all its keys must be strings. {} unmarked is {}.
** - Tables are read raw: metatables other than the array marker, __index,
**   __pairs and the like are ignored. nil and json.null give null.
** - Strings must be valid UTF-8 (an error otherwise, so that every text
**   this writes can be decoded again).
** - Work is linear in the output plus the size of the distinct tables
**   (see enc_table), so shared references cannot multiply it.
** - A value that cannot be encoded returns -1 with "json: <path>: <what>"
**   pushed, e.g. "json: $.steps[2].run: cannot encode a value of type
**   'function'" (indexes as in Lua, 1-based).
** - Memory errors are RAISED (longjmp) from L's allocator, like any other
**   'm' function of the Lua API: call it inside a protected call. The
**   partial output is garbage the GC reclaims; nothing leaks. So are, in
**   pathological cases, Lua's own errors: C stack overflow, or "invalid
**   key to 'next'" if a finalizer run by the GC mid-encode changes a table
**   being encoded. */
int chm__json_encode(lua_State *L, int idx, int pretty) {
  /* The state holds no resource of its own: a longjmp may skip it. */
  enc e;
  int base, rc;
  idx = lua_absindex(L, idx);
  base = lua_gettop(L);
  luaL_checkstack(L, 8, "json: out of stack");
  e.L = L;
  e.pretty = pretty;
  e.depth = 0;
  e.values = 0;
  e.path = NULL;
  e.dp[0] = '\0';
  e.msg[0] = '\0';
  lua_rawgetp(L, LUA_REGISTRYINDEX, &array_key); /* base + 1 */
  e.arraymt = lua_gettop(L);
  lua_createtable(L, 0, 0);
  e.visiting = lua_gettop(L);
  lua_createtable(L, 0, 0);
  e.seen = lua_gettop(L);
  jbuf_init(&e.B, L, 128);
  rc = enc_value(&e, idx);
  if (rc != 0)
    lua_pushstring(L, e.msg);
  else
    lua_pushlstring(L, e.B.b, e.B.n);
  lua_replace(L, base + 1);
  lua_settop(L, base + 1);
  return rc;
}

/* ===================================================================== */
/* Decoder                                                                */
/* ===================================================================== */

typedef struct dec {
  lua_State *L;
  const char *s;     /* start of the text */
  const char *p;     /* next byte to read */
  const char *end;   /* one past the last byte */
  jbuf B;            /* scratch: strings with escapes, number text */
  int arraymt;       /* slot: the array metatable */
  char dp[8];        /* locale decimal point, "" until needed */
  char msg[MSGSIZE]; /* the error message, once failed */
} dec;

/* dec_fail(d, at, fmt, ...) -> -1, after writing "json: <what> at byte N"
** where N is the 1-based offset of `at` in the text. */
static int dec_fail(dec *d, const char *at, const char *fmt, ...)
    JSON_PRINTF(3, 4);
static int dec_fail(dec *d, const char *at, const char *fmt, ...) {
  char what[MSGSIZE / 2];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  snprintf(d->msg, sizeof d->msg, "json: %s at byte %zu", what,
           (size_t)(at - d->s) + 1);
  return -1;
}

/* dec_unexpected(d, at, expected): "unexpected character 'x' at byte N",
** or end of input, with " (expected ...)" when expected is not NULL. */
static int dec_unexpected(dec *d, const char *at, const char *expected) {
  char what[64];
  unsigned char c = at < d->end ? (unsigned char)*at : 0;
  int seq = at < d->end ? utf8_len(at, (size_t)(d->end - at)) : 0;
  if (at >= d->end)
    snprintf(what, sizeof what, "unexpected end of input");
  else if (seq == 3 && memcmp(at, "\xEF\xBB\xBF", 3) == 0)
    snprintf(what, sizeof what, "unexpected byte order mark (U+FEFF)");
  else if (c > 0x20 && c < 0x7F)
    snprintf(what, sizeof what, "unexpected character '%c'", c);
  else if (seq > 1)
    snprintf(what, sizeof what, "unexpected character '%.*s'", seq, at);
  else
    snprintf(what, sizeof what, "unexpected byte 0x%02x", c);
  dec_fail(d, at, "%s", what);
  if (expected != NULL) {
    size_t n = strlen(d->msg);
    snprintf(d->msg + n, sizeof d->msg - n, " (expected %s)", expected);
  }
  return -1;
}

static void dec_skipws(dec *d) {
  while (d->p < d->end &&
         (*d->p == ' ' || *d->p == '\n' || *d->p == '\r' || *d->p == '\t'))
    d->p++;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* hex4(d, q) -> the value of "\uXXXX" at q, or -1. */
static long hex4(const dec *d, const char *q) {
  long v = 0;
  int i;
  if (d->end - q < 6 || q[0] != '\\' || q[1] != 'u')
    return -1;
  for (i = 2; i < 6; i++) {
    int h = hexval(q[i]);
    if (h < 0)
      return -1;
    v = v * 16 + h;
  }
  return v;
}

static void add_utf8(jbuf *B, unsigned long cp) {
  char *o = jbuf_space(B, 4);
  if (cp < 0x80) {
    o[0] = (char)cp;
    B->n += 1;
  } else if (cp < 0x800) {
    o[0] = (char)(0xC0 | (cp >> 6));
    o[1] = (char)(0x80 | (cp & 0x3F));
    B->n += 2;
  } else if (cp < 0x10000) {
    o[0] = (char)(0xE0 | (cp >> 12));
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F));
    B->n += 3;
  } else {
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    B->n += 4;
  }
}

/* dec_string: d->p is at the opening quote; push the string. Runs without
** escapes are pushed straight from the text; once an escape is seen, the
** string is assembled in the scratch buffer. */
static int dec_string(dec *d) {
  const char *open = d->p, *q = d->p + 1, *run = q;
  int escaped = 0;
  d->B.n = 0;
  for (;;) {
    unsigned char c;
    if (q >= d->end)
      return dec_fail(d, open, "unterminated string");
    c = (unsigned char)*q;
    if (c == '"')
      break;
    if (c < 0x20)
      return dec_fail(d, q, "unescaped control character 0x%02x in a string",
                      c);
    if (c >= 0x80) {
      int n = utf8_len(q, (size_t)(d->end - q));
      if (n == 0)
        return dec_fail(d, q, "invalid UTF-8");
      q += n;
      continue;
    }
    if (c != '\\') {
      q++;
      continue;
    }
    /* An escape: flush the run before it, then decode it. */
    escaped = 1;
    jbuf_add(&d->B, run, (size_t)(q - run));
    if (d->end - q < 2)
      return dec_fail(d, open, "unterminated string");
    switch (q[1]) {
    case '"':
      jbuf_addc(&d->B, '"');
      q += 2;
      break;
    case '\\':
      jbuf_addc(&d->B, '\\');
      q += 2;
      break;
    case '/':
      jbuf_addc(&d->B, '/');
      q += 2;
      break;
    case 'b':
      jbuf_addc(&d->B, '\b');
      q += 2;
      break;
    case 'f':
      jbuf_addc(&d->B, '\f');
      q += 2;
      break;
    case 'n':
      jbuf_addc(&d->B, '\n');
      q += 2;
      break;
    case 'r':
      jbuf_addc(&d->B, '\r');
      q += 2;
      break;
    case 't':
      jbuf_addc(&d->B, '\t');
      q += 2;
      break;
    case 'u': {
      long cp = hex4(d, q), lo;
      if (cp < 0)
        return dec_fail(d, q, "invalid \\u escape");
      if (cp >= 0xDC00 && cp <= 0xDFFF)
        return dec_fail(d, q, "lone surrogate \\u%04lX", (unsigned long)cp);
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        lo = hex4(d, q + 6);
        if (lo < 0xDC00 || lo > 0xDFFF)
          return dec_fail(d, q, "lone surrogate \\u%04lX", (unsigned long)cp);
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        q += 6;
      }
      add_utf8(&d->B, (unsigned long)cp);
      q += 6;
      break;
    }
    default: {
      unsigned char e = (unsigned char)q[1];
      if (e > 0x20 && e < 0x7F)
        return dec_fail(d, q, "invalid escape '\\%c'", e);
      return dec_fail(d, q, "invalid escape (backslash, byte 0x%02x)", e);
    }
    }
    run = q;
  }
  if (escaped) {
    jbuf_add(&d->B, run, (size_t)(q - run));
    lua_pushlstring(d->L, d->B.b, d->B.n);
  } else {
    lua_pushlstring(d->L, run, (size_t)(q - run));
  }
  d->p = q + 1;
  return 0;
}

static int is_digit(const dec *d, const char *q) {
  return q < d->end && *q >= '0' && *q <= '9';
}

/* dec_number: RFC 8259 grammar. A literal without '.', 'e' or 'E' that
** fits in int64 becomes a Lua integer; anything else a float read by
** strtod (correctly rounded), with the locale's decimal point swapped in. */
static int dec_number(dec *d) {
  const char *start = d->p, *q = d->p;
  int isfloat = 0;
  if (*q == '-')
    q++;
  if (!is_digit(d, q))
    return dec_fail(d, start, "invalid number");
  if (*q == '0') {
    q++;
    if (is_digit(d, q))
      return dec_fail(d, start, "invalid number (leading zero)");
  } else {
    while (is_digit(d, q))
      q++;
  }
  if (q < d->end && *q == '.') {
    isfloat = 1;
    q++;
    if (!is_digit(d, q))
      return dec_fail(d, start, "invalid number");
    while (is_digit(d, q))
      q++;
  }
  if (q < d->end && (*q == 'e' || *q == 'E')) {
    isfloat = 1;
    q++;
    if (q < d->end && (*q == '+' || *q == '-'))
      q++;
    if (!is_digit(d, q))
      return dec_fail(d, start, "invalid number");
    while (is_digit(d, q))
      q++;
  }
  if (!isfloat) {
    int neg = *start == '-';
    const char *r = start + neg;
    lua_Unsigned u = 0, lim = (lua_Unsigned)LUA_MAXINTEGER + (unsigned)neg;
    for (; r < q; r++) {
      unsigned dig = (unsigned)(*r - '0');
      if (u > (lim - dig) / 10)
        break;
      u = u * 10 + dig;
    }
    if (r == q) {
      if (!neg)
        lua_pushinteger(d->L, (lua_Integer)u);
      else if (u == (lua_Unsigned)LUA_MAXINTEGER + 1)
        lua_pushinteger(d->L, LUA_MININTEGER);
      else
        lua_pushinteger(d->L, -(lua_Integer)u);
      d->p = q;
      return 0;
    }
  }
  {
    size_t len = (size_t)(q - start), dl, i;
    char *t, *o;
    double x;
    if (d->dp[0] == '\0')
      decimal_point(d->dp);
    dl = strlen(d->dp);
    t = o = jbuf_space(&d->B, len + dl + 1);
    for (i = 0; i < len; i++) {
      if (start[i] == '.') {
        memcpy(o, d->dp, dl);
        o += dl;
      } else {
        *o++ = start[i];
      }
    }
    *o = '\0';
    x = strtod(t, NULL);
    if (isinf(x))
      return dec_fail(d, start, "number out of range");
    lua_pushnumber(d->L, x);
  }
  d->p = q;
  return 0;
}

/* dec_literal: true, false or null at d->p. */
static int dec_literal(dec *d, const char *word, size_t len) {
  size_t i;
  for (i = 0; i < len; i++)
    if (d->p + i >= d->end || d->p[i] != word[i])
      return dec_unexpected(d, d->p + i, NULL);
  d->p += len;
  return 0;
}

static int dec_value(dec *d, int depth);

/* dec_array: d->p at '['; push a table tagged with the array metatable. */
static int dec_array(dec *d, int depth) {
  lua_State *L = d->L;
  lua_Integer n = 0;
  lua_newtable(L);
  lua_pushvalue(L, d->arraymt);
  lua_setmetatable(L, -2);
  d->p++;
  dec_skipws(d);
  if (d->p < d->end && *d->p == ']') {
    d->p++;
    return 0;
  }
  for (;;) {
    if (dec_value(d, depth) != 0)
      return -1;
    lua_rawseti(L, -2, ++n);
    dec_skipws(d);
    if (d->p < d->end && *d->p == ',') {
      d->p++;
    } else if (d->p < d->end && *d->p == ']') {
      d->p++;
      return 0;
    } else {
      return dec_unexpected(d, d->p, "',' or ']'");
    }
  }
}

/* dec_object: d->p at '{'; push a table. A duplicate key is an error:
** silently keeping one of two values (RFC 8259 leaves it open) would let
** `{"amount": 5, "amount": 500}` say two things to two readers. */
static int dec_object(dec *d, int depth) {
  lua_State *L = d->L;
  const char *key;
  lua_newtable(L);
  d->p++;
  dec_skipws(d);
  if (d->p < d->end && *d->p == '}') {
    d->p++;
    return 0;
  }
  for (;;) {
    dec_skipws(d);
    if (d->p >= d->end || *d->p != '"')
      return dec_unexpected(d, d->p, "a string key");
    key = d->p;
    if (dec_string(d) != 0)
      return -1;
    lua_pushvalue(L, -1);
    if (lua_rawget(L, -3) != LUA_TNIL) {
      int n = (int)(d->p - key);
      return dec_fail(d, key, "duplicate key %.*s%s in an object (give each "
                      "key once)", n > 60 ? 60 : n, key, n > 60 ? "..." : "");
    }
    lua_pop(L, 1);
    dec_skipws(d);
    if (d->p >= d->end || *d->p != ':')
      return dec_unexpected(d, d->p, "':'");
    d->p++;
    if (dec_value(d, depth) != 0)
      return -1;
    lua_rawset(L, -3);
    dec_skipws(d);
    if (d->p < d->end && *d->p == ',') {
      d->p++;
    } else if (d->p < d->end && *d->p == '}') {
      d->p++;
      return 0;
    } else {
      return dec_unexpected(d, d->p, "',' or '}'");
    }
  }
}

/* dec_value: skip whitespace, push one value. depth = containers open. */
static int dec_value(dec *d, int depth) {
  dec_skipws(d);
  if (d->p >= d->end)
    return dec_unexpected(d, d->p, NULL);
  switch (*d->p) {
  case '{':
  case '[':
    if (depth >= MAXDEPTH)
      return dec_fail(d, d->p, "nesting deeper than %d", MAXDEPTH);
    luaL_checkstack(d->L, 4, "json: out of stack");
    return *d->p == '[' ? dec_array(d, depth + 1) : dec_object(d, depth + 1);
  case '"':
    return dec_string(d);
  case 't':
    if (dec_literal(d, "true", 4) != 0)
      return -1;
    lua_pushboolean(d->L, 1);
    return 0;
  case 'f':
    if (dec_literal(d, "false", 5) != 0)
      return -1;
    lua_pushboolean(d->L, 0);
    return 0;
  case 'n':
    if (dec_literal(d, "null", 4) != 0)
      return -1;
    chm__json_pushnull(d->L);
    return 0;
  case '-':
  case '0':
  case '1':
  case '2':
  case '3':
  case '4':
  case '5':
  case '6':
  case '7':
  case '8':
  case '9':
    return dec_number(d);
  default:
    return dec_unexpected(d, d->p, NULL);
  }
}

/* chm__json_decode(L, text, len)   [-0, +1, m]
** Contract in chm_int.h. Also:
** - text need not be NUL-terminated; it must be UTF-8 (no byte order
**   mark); whitespace is space, tab, CR and LF only.
** - Errors other than memory return -1 with "json: <what> at byte N"
**   pushed, N being the 1-based offset of the offending byte (len + 1 at
**   the end of input), e.g. "json: unexpected character 'x' at byte 17".
** - null decodes to the json null sentinel in arrays and objects alike, so
**   arrays have no holes and {"a":null} keeps its key.
** - Memory errors are RAISED (longjmp), as in chm__json_encode: call it
**   inside a protected call. */
int chm__json_decode(lua_State *L, const char *text, size_t len) {
  /* The state holds no resource of its own: a longjmp may skip it. */
  dec d;
  int base = lua_gettop(L), rc;
  if (text == NULL)
    text = "";
  luaL_checkstack(L, 8, "json: out of stack");
  d.L = L;
  d.s = d.p = text;
  d.end = text + len;
  d.dp[0] = '\0';
  d.msg[0] = '\0';
  push_arraymt(L); /* base + 1 */
  d.arraymt = lua_gettop(L);
  jbuf_init(&d.B, L, 64);
  rc = dec_value(&d, 0);
  if (rc == 0) {
    dec_skipws(&d);
    if (d.p < d.end)
      rc = dec_unexpected(&d, d.p, "end of input");
  }
  if (rc != 0)
    lua_pushstring(L, d.msg);
  lua_replace(L, base + 1);
  lua_settop(L, base + 1);
  return rc;
}

/* chm__json_pushnull(L)   [-0, +1, -]
** The null sentinel is the light userdata NULL: equal to itself in every
** state, never collected, and distinct from nil so it can sit in tables. */
void chm__json_pushnull(lua_State *L) { lua_pushlightuserdata(L, NULL); }

/* ===================================================================== */
/* The Lua library                                                        */
/* ===================================================================== */

/* raise_at_caller(L): raise the message on top, prefixed with the
** caller's position as luaL_error does. */
static int raise_at_caller(lua_State *L) {
  luaL_where(L, 1);
  lua_insert(L, -2);
  lua_concat(L, 2);
  return lua_error(L);
}

/* json.encode(v [, pretty]) -> string   [-0, +1, e] */
static int l_encode(lua_State *L) {
  luaL_checkany(L, 1);
  if (chm__json_encode(L, 1, lua_toboolean(L, 2)) != 0)
    return raise_at_caller(L);
  return 1;
}

/* json.decode(s) -> value   [-0, +1, e] */
static int l_decode(lua_State *L) {
  size_t len;
  const char *s;
  luaL_checktype(L, 1, LUA_TSTRING);
  s = lua_tolstring(L, 1, &len);
  if (chm__json_decode(L, s, len) != 0)
    return raise_at_caller(L);
  return 1;
}

/* json.array(t) -> t   [-0, +1, e]
** Mark t as an array (so an empty t encodes as []). Refuses a table whose
** own metatable is protected, as setmetatable does. */
static int l_array(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  push_arraymt(L);
  if (lua_getmetatable(L, 1)) {
    if (lua_rawequal(L, -1, 2)) {
      lua_settop(L, 1);
      return 1;
    }
    if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
      return luaL_error(L, "cannot change a protected metatable");
  }
  lua_settop(L, 2);
  lua_setmetatable(L, 1);
  return 1;
}

/* chm__json_open(L)   [-0, +1, m]
** Push a new table {encode, decode, array, null}: a fresh copy on every
** call, so a script that scribbles on its copy harms no one else. The
** array metatable and the null sentinel are shared by the whole state.
** Returns 1 (usable as a lua_CFunction / luaopen_ function). */
int chm__json_open(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"encode", l_encode},
      {"decode", l_decode},
      {"array", l_array},
      {NULL, NULL},
  };
  luaL_newlib(L, funcs);
  chm__json_pushnull(L);
  lua_setfield(L, -2, "null");
  return 1;
}

/* Deliberately not done:
** - No \u escaping of non-ASCII (U+2028/2029 included): output is UTF-8.
** - No comments, trailing commas, NaN/Infinity or other JSON5 liberties.
** - No __tojson/__pairs hooks: tables are read raw, so a script cannot run
**   code in the middle of an encode.
** - No sparse arrays: holes are an error; json.null stands for null. */
