/*
** bounded.c — the library functions of the sandbox whose work is charged
** to the budget, so that no C call a script makes can run for long between
** two firings of the count hook: a step-counted copy of Lua's pattern
** matcher (find, match, gmatch, gsub), a string.rep that refuses results
** larger than the memory left, table functions that charge per element,
** and cost wrappers around the other string, utf8, json and base functions.
** Relies on sandbox.c (chm__sandbox_charge, chm__sandbox_reserve); used by
** sandbox.c when it builds a state (chm__bound_lib).
**
** The pattern matcher and the table functions are adapted from lstrlib.c
** and ltablib.c of Lua 5.4 (MIT licence; the notice is at the end).
*/
#include <ctype.h>
#include <limits.h>
#include <stddef.h>
#include <string.h>

#include "chm_int.h"
#include "sandbox.h"

/* One charged unit costs about one VM instruction; copying or scanning
** 2^COPY_SHIFT bytes costs one unit. */
#define COPY_SHIFT 5

/* Matcher steps (and table moves) charged together, to keep the checks
** out of the inner loops. */
#define STEP_BATCH 1024

/* ===================================================================== */
/* Cost wrappers                                                          */
/* ===================================================================== */

/* How a wrapped function's cost is computed from its arguments. */
enum cost_kind {
  COST_STRINGS, /* 1 + #args + bytes of string arguments >> COPY_SHIFT */
  COST_BYTE,    /* 1 + values string.byte/utf8.codepoint would push */
  COST_SUB,     /* 1 + bytes string.sub would copy >> COPY_SHIFT */
  COST_ONE      /* 1: constant-time work */
};

/* The integer at idx, or def when absent or not an integer. Never raises:
** the wrapped function validates its own arguments. */
static lua_Integer opt_int(lua_State *L, int idx, lua_Integer def) {
  int ok;
  lua_Integer v = lua_tointegerx(L, idx, &ok);
  return ok ? v : def;
}

/* span(i, j, len) -> size of [i, j] in a string of len bytes after Lua's
** negative-position rules and clipping (string.sub semantics). */
static uint64_t span(lua_Integer i, lua_Integer j, size_t len) {
  lua_Integer n = (lua_Integer)len;
  if (i < 0) i = (i < -n) ? 1 : n + i + 1;
  if (i == 0) i = 1;
  if (j < 0) j = (j < -n) ? 0 : n + j + 1;
  if (j > n) j = n;
  return i > j ? 0 : (uint64_t)(j - i) + 1;
}

static uint64_t cost_of(lua_State *L, int kind) {
  int n = lua_gettop(L), i;
  uint64_t units = 1;
  size_t len = lua_type(L, 1) == LUA_TSTRING ? lua_rawlen(L, 1) : 0;
  switch (kind) {
  case COST_STRINGS:
    units += (uint64_t)n;
    for (i = 1; i <= n; i++)
      if (lua_type(L, i) == LUA_TSTRING)
        units += lua_rawlen(L, i) >> COPY_SHIFT;
    break;
  case COST_BYTE: {
    lua_Integer first = opt_int(L, 2, 1);
    units += span(first, opt_int(L, 3, first), len);
    break;
  }
  case COST_SUB:
    units += span(opt_int(L, 2, 1), opt_int(L, 3, -1), len) >> COPY_SHIFT;
    break;
  default: break;
  }
  return units;
}

/* charged(...) -> what the wrapped function returns   [-n, +r, e]
** Upvalue 1: the wrapped function; upvalue 2: cost kind * 2 + direct. A
** "direct" function is a C function without upvalues, called in this frame
** (its argument errors then name it as the script called it); any other
** function is called through lua_call. */
static int charged(lua_State *L) {
  lua_Integer how = lua_tointeger(L, lua_upvalueindex(2));
  chm__sandbox_charge(L, cost_of(L, (int)(how >> 1)), NULL);
  if (how & 1) return lua_tocfunction(L, lua_upvalueindex(1))(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

/* wrap_field(L, t, name, kind)   [-0, +0, m]
** Replace function t[name] by a charged wrapper (no-op if absent). */
static void wrap_field(lua_State *L, int t, const char *name, int kind) {
  int direct;
  if (lua_getfield(L, t, name) != LUA_TFUNCTION) {
    lua_pop(L, 1);
    return;
  }
  direct = 0;
  if (lua_iscfunction(L, -1)) {
    if (lua_getupvalue(L, -1, 1) == NULL)
      direct = 1;
    else
      lua_pop(L, 1); /* the upvalue it pushed */
  }
  lua_pushinteger(L, (lua_Integer)kind * 2 + direct);
  lua_pushcclosure(L, charged, 2);
  lua_setfield(L, t, name);
}

/* in_list(name, list) -> name is one of the NULL-terminated list. */
static int in_list(const char *name, const char *const *list) {
  for (; list != NULL && *list != NULL; list++)
    if (strcmp(name, *list) == 0) return 1;
  return 0;
}

/* wrap_all(L, t, kind, skip)   [-0, +0, m]
** Wrap every function field of t except those named in skip and those
** already wrapped. */
static void wrap_all(lua_State *L, int t, int kind, const char *const *skip) {
  lua_pushnil(L);
  while (lua_next(L, t) != 0) {
    int wrap = lua_type(L, -1) == LUA_TFUNCTION &&
               !(lua_iscfunction(L, -1) && lua_tocfunction(L, -1) == charged);
    lua_pop(L, 1);
    /* Safe during traversal: the key exists, only its value changes. */
    if (wrap && lua_type(L, -1) == LUA_TSTRING &&
        !in_list(lua_tostring(L, -1), skip))
      wrap_field(L, t, lua_tostring(L, -1), kind);
  }
}

/* ===================================================================== */
/* Pattern matching, step-counted (adapted from lstrlib.c)                */
/* ===================================================================== */

#define MAXCAPTURES 32 /* as LUA_MAXCAPTURES */
#define MAXCCALLS 200  /* recursion depth of match() */
#define CAP_UNFINISHED (-1)
#define CAP_POSITION (-2)
#define L_ESC '%'
#define SPECIALS "^$*+?.([%-"
#define uchar(c) ((unsigned char)(c))

typedef struct MatchState {
  const char *src_init; /* init of source string */
  const char *src_end;  /* end ('\0') of source string */
  const char *p_end;    /* end ('\0') of pattern */
  lua_State *L;
  int matchdepth;      /* control for recursive depth */
  unsigned steps;      /* steps left before the next charge */
  unsigned char level; /* total number of captures */
  struct {
    const char *init;
    ptrdiff_t len;
  } capture[MAXCAPTURES];
} MatchState;

/* One step of matching work; every STEP_BATCH steps are charged to the
** budget, which raises "pattern too complex (budget exceeded)" when it is
** gone. This is what bounds catastrophic backtracking. */
static void step(MatchState *ms) {
  if (--ms->steps == 0) {
    ms->steps = STEP_BATCH;
    chm__sandbox_charge(ms->L, STEP_BATCH, "pattern too complex");
  }
}

static const char *match(MatchState *ms, const char *s, const char *p);

static int check_capture(MatchState *ms, int l) {
  l -= '1';
  if (l < 0 || l >= ms->level || ms->capture[l].len == CAP_UNFINISHED)
    return luaL_error(ms->L, "invalid capture index %%%d", l + 1);
  return l;
}

static int capture_to_close(MatchState *ms) {
  int level = ms->level;
  for (level--; level >= 0; level--)
    if (ms->capture[level].len == CAP_UNFINISHED) return level;
  return luaL_error(ms->L, "invalid pattern capture");
}

static const char *classend(MatchState *ms, const char *p) {
  switch (*p++) {
  case L_ESC:
    if (p == ms->p_end) luaL_error(ms->L, "malformed pattern (ends with '%%')");
    return p + 1;
  case '[':
    if (*p == '^') p++;
    do { /* look for a ']' */
      if (p == ms->p_end) luaL_error(ms->L, "malformed pattern (missing ']')");
      if (*(p++) == L_ESC && p < ms->p_end) p++; /* skip escapes */
    } while (*p != ']');
    return p + 1;
  default: return p;
  }
}

static int match_class(int c, int cl) {
  int res;
  switch (tolower(cl)) {
  case 'a': res = isalpha(c); break;
  case 'c': res = iscntrl(c); break;
  case 'd': res = isdigit(c); break;
  case 'g': res = isgraph(c); break;
  case 'l': res = islower(c); break;
  case 'p': res = ispunct(c); break;
  case 's': res = isspace(c); break;
  case 'u': res = isupper(c); break;
  case 'w': res = isalnum(c); break;
  case 'x': res = isxdigit(c); break;
  case 'z': res = (c == 0); break; /* deprecated option */
  default: return (cl == c);
  }
  return (islower(cl) ? res : !res);
}

static int matchbracketclass(int c, const char *p, const char *ec) {
  int sig = 1;
  if (*(p + 1) == '^') {
    sig = 0;
    p++; /* skip the '^' */
  }
  while (++p < ec) {
    if (*p == L_ESC) {
      p++;
      if (match_class(c, uchar(*p))) return sig;
    } else if (*(p + 1) == '-' && (p + 2 < ec)) {
      p += 2;
      if (uchar(*(p - 2)) <= c && c <= uchar(*p)) return sig;
    } else if (uchar(*p) == c) {
      return sig;
    }
  }
  return !sig;
}

static int singlematch(MatchState *ms, const char *s, const char *p,
                       const char *ep) {
  if (s >= ms->src_end) return 0;
  switch (*p) {
  case '.': return 1; /* matches any char */
  case L_ESC: return match_class(uchar(*s), uchar(*(p + 1)));
  case '[': return matchbracketclass(uchar(*s), p, ep - 1);
  default: return (uchar(*p) == uchar(*s));
  }
}

static const char *matchbalance(MatchState *ms, const char *s, const char *p) {
  if (p >= ms->p_end - 1)
    luaL_error(ms->L, "malformed pattern (missing arguments to '%%b')");
  if (*s != *p) return NULL;
  {
    int b = *p, e = *(p + 1), cont = 1;
    while (++s < ms->src_end) {
      step(ms);
      if (*s == e) {
        if (--cont == 0) return s + 1;
      } else if (*s == b) {
        cont++;
      }
    }
  }
  return NULL; /* string ends out of balance */
}

static const char *max_expand(MatchState *ms, const char *s, const char *p,
                              const char *ep) {
  ptrdiff_t i = 0; /* counts maximum expand for item */
  while (singlematch(ms, s + i, p, ep)) {
    step(ms);
    i++;
  }
  while (i >= 0) { /* try with the maximum repetitions, then fewer */
    const char *res = match(ms, (s + i), ep + 1);
    if (res) return res;
    i--;
  }
  return NULL;
}

static const char *min_expand(MatchState *ms, const char *s, const char *p,
                              const char *ep) {
  for (;;) {
    const char *res = match(ms, s, ep + 1);
    if (res != NULL)
      return res;
    else if (singlematch(ms, s, p, ep))
      s++; /* try with one more repetition */
    else
      return NULL;
  }
}

static const char *start_capture(MatchState *ms, const char *s, const char *p,
                                 int what) {
  const char *res;
  int level = ms->level;
  if (level >= MAXCAPTURES) luaL_error(ms->L, "too many captures");
  ms->capture[level].init = s;
  ms->capture[level].len = what;
  ms->level = (unsigned char)(level + 1);
  if ((res = match(ms, s, p)) == NULL) ms->level--; /* undo capture */
  return res;
}

static const char *end_capture(MatchState *ms, const char *s, const char *p) {
  int l = capture_to_close(ms);
  const char *res;
  ms->capture[l].len = s - ms->capture[l].init; /* close capture */
  if ((res = match(ms, s, p)) == NULL)
    ms->capture[l].len = CAP_UNFINISHED; /* undo capture */
  return res;
}

static const char *match_capture(MatchState *ms, const char *s, int l) {
  size_t len;
  l = check_capture(ms, l);
  len = (size_t)ms->capture[l].len;
  if ((size_t)(ms->src_end - s) >= len &&
      memcmp(ms->capture[l].init, s, len) == 0)
    return s + len;
  return NULL;
}

static const char *match(MatchState *ms, const char *s, const char *p) {
  if (ms->matchdepth-- == 0) luaL_error(ms->L, "pattern too complex");
  step(ms);
init: /* using goto's to optimize tail recursion */
  if (p != ms->p_end) {
    switch (*p) {
    case '(':
      if (*(p + 1) == ')') /* position capture? */
        s = start_capture(ms, s, p + 2, CAP_POSITION);
      else
        s = start_capture(ms, s, p + 1, CAP_UNFINISHED);
      break;
    case ')': s = end_capture(ms, s, p + 1); break;
    case '$':
      if ((p + 1) != ms->p_end) goto dflt; /* not the last char */
      s = (s == ms->src_end) ? s : NULL;
      break;
    case L_ESC:
      switch (*(p + 1)) {
      case 'b': /* balanced string? */
        s = matchbalance(ms, s, p + 2);
        if (s != NULL) {
          p += 4;
          goto init;
        }
        break;
      case 'f': { /* frontier? */
        const char *ep;
        char previous;
        p += 2;
        if (*p != '[') luaL_error(ms->L, "missing '[' after '%%f' in pattern");
        ep = classend(ms, p);
        previous = (s == ms->src_init) ? '\0' : *(s - 1);
        if (!matchbracketclass(uchar(previous), p, ep - 1) &&
            matchbracketclass(uchar(*s), p, ep - 1)) {
          p = ep;
          goto init;
        }
        s = NULL;
        break;
      }
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
        s = match_capture(ms, s, uchar(*(p + 1)));
        if (s != NULL) {
          p += 2;
          goto init;
        }
        break;
      default: goto dflt;
      }
      break;
    default:
    dflt : {
      const char *ep = classend(ms, p); /* points to optional suffix */
      if (!singlematch(ms, s, p, ep)) {
        if (*ep == '*' || *ep == '?' || *ep == '-') { /* accept empty? */
          p = ep + 1;
          goto init;
        }
        s = NULL; /* '+' or no suffix: fail */
      } else {
        switch (*ep) {
        case '?': {
          const char *res;
          if ((res = match(ms, s + 1, ep + 1)) != NULL) {
            s = res;
          } else {
            p = ep + 1;
            goto init;
          }
          break;
        }
        case '+':
          s++; /* 1 match already done */
          /* FALLTHROUGH */
        case '*': s = max_expand(ms, s, p, ep); break;
        case '-': s = min_expand(ms, s, p, ep); break;
        default:
          s++;
          p = ep;
          goto init;
        }
      }
      break;
    }
    }
  }
  ms->matchdepth++;
  return s;
}

/* Plain substring search, charged per candidate position and per byte
** compared, so a long needle in a long haystack stays bounded. */
static const char *lmemfind(MatchState *ms, const char *s1, size_t l1,
                            const char *s2, size_t l2) {
  if (l2 == 0) return s1;
  if (l2 > l1) return NULL;
  {
    const char *init;
    unsigned cost = 1 + (unsigned)((l2 - 1) >> COPY_SHIFT);
    l2--;
    l1 = l1 - l2;
    while (l1 > 0 && (init = (const char *)memchr(s1, *s2, l1)) != NULL) {
      unsigned k;
      for (k = 0; k < cost; k++) step(ms);
      init++;
      if (memcmp(init, s2 + 1, l2) == 0) return init - 1;
      l1 -= (size_t)(init - s1);
      s1 = init;
    }
    return NULL;
  }
}

static size_t get_onecapture(MatchState *ms, int i, const char *s,
                             const char *e, const char **cap) {
  if (i >= ms->level) {
    if (i != 0) luaL_error(ms->L, "invalid capture index %%%d", i + 1);
    *cap = s;
    return (size_t)(e - s);
  } else {
    ptrdiff_t capl = ms->capture[i].len;
    *cap = ms->capture[i].init;
    if (capl == CAP_UNFINISHED)
      luaL_error(ms->L, "unfinished capture");
    else if (capl == CAP_POSITION)
      lua_pushinteger(ms->L, (ms->capture[i].init - ms->src_init) + 1);
    return (size_t)capl;
  }
}

static void push_onecapture(MatchState *ms, int i, const char *s,
                            const char *e) {
  const char *cap;
  ptrdiff_t l = (ptrdiff_t)get_onecapture(ms, i, s, e, &cap);
  if (l != CAP_POSITION) lua_pushlstring(ms->L, cap, (size_t)l);
}

static int push_captures(MatchState *ms, const char *s, const char *e) {
  int i;
  int nlevels = (ms->level == 0 && s) ? 1 : ms->level;
  luaL_checkstack(ms->L, nlevels, "too many captures");
  for (i = 0; i < nlevels; i++) push_onecapture(ms, i, s, e);
  return nlevels;
}

static int nospecials(const char *p, size_t l) {
  size_t upto = 0;
  do {
    if (strpbrk(p + upto, SPECIALS)) return 0;
    upto += strlen(p + upto) + 1; /* may have more after \0 */
  } while (upto <= l);
  return 1;
}

static void prepstate(MatchState *ms, lua_State *L, const char *s, size_t ls,
                      const char *p, size_t lp) {
  ms->L = L;
  ms->matchdepth = MAXCCALLS;
  ms->steps = STEP_BATCH;
  ms->src_init = s;
  ms->src_end = s + ls;
  ms->p_end = p + lp;
}

static void reprepstate(MatchState *ms) { ms->level = 0; }

static size_t posrelatI(lua_Integer pos, size_t len) {
  if (pos > 0) return (size_t)pos;
  if (pos == 0) return 1;
  if (pos < -(lua_Integer)len) return 1;
  return len + (size_t)pos + 1;
}

static int str_find_aux(lua_State *L, int find) {
  size_t ls, lp;
  const char *s = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  size_t init = posrelatI(luaL_optinteger(L, 3, 1), ls) - 1;
  MatchState ms;
  if (init > ls) { /* start after string's end? */
    lua_pushnil(L);
    return 1;
  }
  if (find && (lua_toboolean(L, 4) || nospecials(p, lp))) {
    const char *s2;
    prepstate(&ms, L, s, ls, p, lp);
    s2 = lmemfind(&ms, s + init, ls - init, p, lp);
    if (s2) {
      lua_pushinteger(L, (s2 - s) + 1);
      lua_pushinteger(L, (lua_Integer)((size_t)(s2 - s) + lp));
      return 2;
    }
  } else {
    const char *s1 = s + init;
    int anchor = (*p == '^');
    if (anchor) {
      p++;
      lp--;
    }
    prepstate(&ms, L, s, ls, p, lp);
    do {
      const char *res;
      reprepstate(&ms);
      if ((res = match(&ms, s1, p)) != NULL) {
        if (find) {
          lua_pushinteger(L, (s1 - s) + 1);
          lua_pushinteger(L, res - s);
          return push_captures(&ms, NULL, 0) + 2;
        }
        return push_captures(&ms, s1, res);
      }
    } while (s1++ < ms.src_end && !anchor);
  }
  lua_pushnil(L);
  return 1;
}

/* string.find(s, pattern [, init [, plain]]) -> i, j, captures... | nil
** [-2..4, +1..n, e] Lua's find with every matcher step charged. */
static int str_find(lua_State *L) { return str_find_aux(L, 1); }

/* string.match(s, pattern [, init]) -> captures... | nil   [-2..3, +n, e] */
static int str_match(lua_State *L) { return str_find_aux(L, 0); }

typedef struct GMatchState {
  const char *src;       /* current position */
  const char *p;         /* pattern */
  const char *lastmatch; /* end of last match */
  MatchState ms;         /* match state */
} GMatchState;

static int gmatch_aux(lua_State *L) {
  GMatchState *gm = (GMatchState *)lua_touserdata(L, lua_upvalueindex(3));
  const char *src;
  gm->ms.L = L;
  gm->ms.steps = STEP_BATCH;
  for (src = gm->src; src <= gm->ms.src_end; src++) {
    const char *e;
    reprepstate(&gm->ms);
    if ((e = match(&gm->ms, src, gm->p)) != NULL && e != gm->lastmatch) {
      gm->src = gm->lastmatch = e;
      return push_captures(&gm->ms, src, e);
    }
  }
  return 0;
}

/* string.gmatch(s, pattern [, init]) -> iterator   [-2..3, +1, m] */
static int str_gmatch(lua_State *L) {
  size_t ls, lp;
  const char *s = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  size_t init = posrelatI(luaL_optinteger(L, 3, 1), ls) - 1;
  GMatchState *gm;
  lua_settop(L, 2); /* keep strings on closure to avoid being collected */
  gm = (GMatchState *)lua_newuserdatauv(L, sizeof(GMatchState), 0);
  if (init > ls) init = ls + 1;
  prepstate(&gm->ms, L, s, ls, p, lp);
  gm->src = s + init;
  gm->p = p;
  gm->lastmatch = NULL;
  lua_pushcclosure(L, gmatch_aux, 3);
  return 1;
}

static void add_s(MatchState *ms, luaL_Buffer *b, const char *s,
                  const char *e) {
  size_t l;
  lua_State *L = ms->L;
  const char *news = lua_tolstring(L, 3, &l);
  const char *p;
  while ((p = (char *)memchr(news, L_ESC, l)) != NULL) {
    luaL_addlstring(b, news, (size_t)(p - news));
    p++; /* skip ESC */
    if (*p == L_ESC) {
      luaL_addchar(b, *p);
    } else if (*p == '0') {
      luaL_addlstring(b, s, (size_t)(e - s));
    } else if (isdigit(uchar(*p))) {
      const char *cap;
      ptrdiff_t resl = (ptrdiff_t)get_onecapture(ms, *p - '1', s, e, &cap);
      if (resl == CAP_POSITION)
        luaL_addvalue(b);
      else
        luaL_addlstring(b, cap, (size_t)resl);
    } else {
      luaL_error(L, "invalid use of '%c' in replacement string", L_ESC);
    }
    l -= (size_t)(p + 1 - news);
    news = p + 1;
  }
  luaL_addlstring(b, news, l);
}

static int add_value(MatchState *ms, luaL_Buffer *b, const char *s,
                     const char *e, int tr) {
  lua_State *L = ms->L;
  switch (tr) {
  case LUA_TFUNCTION: {
    int n;
    lua_pushvalue(L, 3);
    n = push_captures(ms, s, e);
    lua_call(L, n, 1);
    break;
  }
  case LUA_TTABLE:
    push_onecapture(ms, 0, s, e);
    lua_gettable(L, 3);
    break;
  default: add_s(ms, b, s, e); return 1;
  }
  if (!lua_toboolean(L, -1)) {
    lua_pop(L, 1);
    luaL_addlstring(b, s, (size_t)(e - s)); /* keep original text */
    return 0;
  } else if (!lua_isstring(L, -1)) {
    return luaL_error(L, "invalid replacement value (a %s)",
                      luaL_typename(L, -1));
  }
  luaL_addvalue(b);
  return 1;
}

/* string.gsub(s, pattern, repl [, n]) -> string, count   [-3..4, +2, e] */
static int str_gsub(lua_State *L) {
  size_t srcl, lp;
  const char *src = luaL_checklstring(L, 1, &srcl);
  const char *p = luaL_checklstring(L, 2, &lp);
  const char *lastmatch = NULL;
  int tr = lua_type(L, 3);
  lua_Integer max_s = luaL_optinteger(L, 4, (lua_Integer)srcl + 1);
  int anchor = (*p == '^');
  lua_Integer n = 0;
  int changed = 0;
  MatchState ms;
  luaL_Buffer b;
  luaL_argexpected(L,
                   tr == LUA_TNUMBER || tr == LUA_TSTRING ||
                       tr == LUA_TFUNCTION || tr == LUA_TTABLE,
                   3, "string/function/table");
  luaL_buffinit(L, &b);
  if (anchor) {
    p++;
    lp--;
  }
  prepstate(&ms, L, src, srcl, p, lp);
  while (n < max_s) {
    const char *e;
    reprepstate(&ms);
    if ((e = match(&ms, src, p)) != NULL && e != lastmatch) {
      n++;
      changed = add_value(&ms, &b, src, e, tr) | changed;
      src = lastmatch = e;
    } else if (src < ms.src_end) {
      luaL_addchar(&b, *src++);
    } else {
      break;
    }
    if (anchor) break;
  }
  if (!changed) {
    lua_pushvalue(L, 1);
  } else {
    luaL_addlstring(&b, src, (size_t)(ms.src_end - src));
    luaL_pushresult(&b);
  }
  lua_pushinteger(L, n);
  return 2;
}

/* ===================================================================== */
/* string.rep                                                             */
/* ===================================================================== */

/* string.rep(s, n [, sep]) -> string   [-2..3, +1, e]
** Lua's rep, but a result larger than the memory the door has left is
** refused up front as a memory-cap overrun (with a message naming the
** size), its copying is charged, and an empty result never loops. */
static int str_rep(lua_State *L) {
  size_t l, lsep, total;
  const char *s = luaL_checklstring(L, 1, &l);
  lua_Integer n = luaL_checkinteger(L, 2);
  const char *sep = luaL_optlstring(L, 3, "", &lsep);
  luaL_Buffer b;
  char *p;
  if (n <= 0 || l + lsep == 0) {
    lua_pushliteral(L, "");
    return 1;
  }
  if (l + lsep < l || l + lsep > (size_t)INT_MAX / (lua_Unsigned)n) {
    chm__sandbox_reserve(L, SIZE_MAX, "string.rep");
    return luaL_error(L, "resulting string too large");
  }
  total = (size_t)n * l + (size_t)(n - 1) * lsep;
  chm__sandbox_reserve(L, total, "string.rep");
  chm__sandbox_charge(L, 1 + (total >> COPY_SHIFT), NULL);
  p = luaL_buffinitsize(L, &b, total);
  while (n-- > 1) {
    memcpy(p, s, l);
    p += l;
    if (lsep > 0) {
      memcpy(p, sep, lsep);
      p += lsep;
    }
  }
  memcpy(p, s, l);
  luaL_pushresultsize(&b, total);
  return 1;
}

/* ===================================================================== */
/* Table functions, charged per element (adapted from ltablib.c)          */
/* ===================================================================== */

/* A per-call tick counter: charges STEP_BATCH units every STEP_BATCH
** elements moved or compared. */
typedef struct ticker {
  lua_State *L;
  unsigned left;
} ticker;

static void tick(ticker *t) {
  if (--t->left == 0) {
    t->left = STEP_BATCH;
    chm__sandbox_charge(t->L, STEP_BATCH, NULL);
  }
}

/* table.insert(t, [pos,] v)   [-2..3, +0, e] */
static int tab_insert(lua_State *L) {
  lua_Integer e, pos;
  ticker tk = {L, STEP_BATCH};
  luaL_checktype(L, 1, LUA_TTABLE);
  e = luaL_len(L, 1) + 1; /* first empty element */
  switch (lua_gettop(L)) {
  case 2: pos = e; break;
  case 3: {
    lua_Integer i;
    pos = luaL_checkinteger(L, 2);
    luaL_argcheck(L, (lua_Unsigned)pos - 1u < (lua_Unsigned)e, 2,
                  "position out of bounds");
    for (i = e; i > pos; i--) { /* move up elements */
      tick(&tk);
      lua_geti(L, 1, i - 1);
      lua_seti(L, 1, i);
    }
    break;
  }
  default: return luaL_error(L, "wrong number of arguments to 'insert'");
  }
  lua_seti(L, 1, pos);
  return 0;
}

/* table.remove(t [, pos]) -> removed value   [-1..2, +1, e] */
static int tab_remove(lua_State *L) {
  lua_Integer size, pos;
  ticker tk = {L, STEP_BATCH};
  luaL_checktype(L, 1, LUA_TTABLE);
  size = luaL_len(L, 1);
  pos = luaL_optinteger(L, 2, size);
  if (pos != size)
    luaL_argcheck(L, (lua_Unsigned)pos - 1u <= (lua_Unsigned)size, 2,
                  "position out of bounds");
  lua_geti(L, 1, pos);
  for (; pos < size; pos++) {
    tick(&tk);
    lua_geti(L, 1, pos + 1);
    lua_seti(L, 1, pos);
  }
  lua_pushnil(L);
  lua_seti(L, 1, pos);
  return 1;
}

/* table.move(a1, f, e, t [, a2]) -> a2   [-4..5, +1, e]
** Charged the number of elements up front (it is known from the
** arguments), so a huge range is refused before any work. */
static int tab_move(lua_State *L) {
  lua_Integer f = luaL_checkinteger(L, 2);
  lua_Integer e = luaL_checkinteger(L, 3);
  lua_Integer t = luaL_checkinteger(L, 4);
  int tt = !lua_isnoneornil(L, 5) ? 5 : 1;
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, tt, LUA_TTABLE);
  if (e >= f) {
    lua_Integer n, i;
    luaL_argcheck(L, f > 0 || e < LUA_MAXINTEGER + f, 3,
                  "too many elements to move");
    n = e - f + 1;
    luaL_argcheck(L, t <= LUA_MAXINTEGER - n + 1, 4, "destination wrap around");
    chm__sandbox_charge(L, (uint64_t)n, NULL);
    if (t > e || t <= f || (tt != 1 && !lua_compare(L, 1, tt, LUA_OPEQ))) {
      for (i = 0; i < n; i++) {
        lua_geti(L, 1, f + i);
        lua_seti(L, tt, t + i);
      }
    } else {
      for (i = n - 1; i >= 0; i--) {
        lua_geti(L, 1, f + i);
        lua_seti(L, tt, t + i);
      }
    }
  }
  lua_pushvalue(L, tt);
  return 1;
}

static void addfield(lua_State *L, luaL_Buffer *b, lua_Integer i, ticker *tk) {
  size_t len;
  lua_geti(L, 1, i);
  if (!lua_isstring(L, -1))
    luaL_error(L, "invalid value (at index %I) in table for 'concat'",
               (lua_Integer)i);
  lua_tolstring(L, -1, &len);
  chm__sandbox_charge(L, len >> COPY_SHIFT, NULL);
  tick(tk);
  luaL_addvalue(b);
}

/* table.concat(t [, sep [, i [, j]]]) -> string   [-1..4, +1, e]
** Charged per element and per byte copied. */
static int tab_concat(lua_State *L) {
  luaL_Buffer b;
  size_t lsep;
  lua_Integer i, last;
  const char *sep;
  ticker tk = {L, STEP_BATCH};
  luaL_checktype(L, 1, LUA_TTABLE);
  sep = luaL_optlstring(L, 2, "", &lsep);
  i = luaL_optinteger(L, 3, 1);
  last = luaL_opt(L, luaL_checkinteger, 4, luaL_len(L, 1));
  luaL_buffinit(L, &b);
  for (; i < last; i++) {
    addfield(L, &b, i, &tk);
    luaL_addlstring(&b, sep, lsep);
  }
  if (i == last) addfield(L, &b, i, &tk);
  luaL_pushresult(&b);
  return 1;
}

/* table.unpack(t [, i [, j]]) -> t[i], ..., t[j]   [-1..3, +n, e] */
static int tab_unpack(lua_State *L) {
  lua_Unsigned n;
  lua_Integer i = luaL_optinteger(L, 2, 1);
  lua_Integer e = luaL_opt(L, luaL_checkinteger, 3, luaL_len(L, 1));
  if (i > e) return 0;
  n = (lua_Unsigned)e - (lua_Unsigned)i;
  if (n >= (unsigned int)INT_MAX || !lua_checkstack(L, (int)(++n)))
    return luaL_error(L, "too many results to unpack");
  chm__sandbox_charge(L, (uint64_t)n, NULL);
  for (; i < e; i++) lua_geti(L, 1, i);
  lua_geti(L, 1, e);
  return (int)n;
}

/* Quicksort (Sedgewick, as in ltablib.c), every comparison ticked. A
** crafted input can still make it quadratic; the budget bounds that. */
static void set2(lua_State *L, lua_Integer i, lua_Integer j) {
  lua_seti(L, 1, i);
  lua_seti(L, 1, j);
}

static int sort_comp(ticker *tk, int a, int b) {
  lua_State *L = tk->L;
  tick(tk);
  if (!lua_isnil(L, 2)) {
    int res;
    lua_pushvalue(L, 2);
    lua_pushvalue(L, a - 1);
    lua_pushvalue(L, b - 2);
    lua_call(L, 2, 1);
    res = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return res;
  }
  return lua_compare(L, a, b, LUA_OPLT);
}

static lua_Integer partition(ticker *tk, lua_Integer lo, lua_Integer up) {
  lua_State *L = tk->L;
  lua_Integer i = lo, j = up - 1;
  for (;;) {
    while (lua_geti(L, 1, ++i), sort_comp(tk, -1, -2)) {
      if (i >= up) luaL_error(L, "invalid order function for sorting");
      lua_pop(L, 1);
    }
    while (lua_geti(L, 1, --j), sort_comp(tk, -3, -1)) {
      if (j < lo) luaL_error(L, "invalid order function for sorting");
      lua_pop(L, 1);
    }
    if (j < i) {
      lua_pop(L, 1);
      set2(L, up - 1, i);
      return i;
    }
    set2(L, i, j);
  }
}

static void auxsort(ticker *tk, lua_Integer lo, lua_Integer up) {
  lua_State *L = tk->L;
  while (lo < up) {
    lua_Integer p;
    lua_geti(L, 1, lo);
    lua_geti(L, 1, up);
    if (sort_comp(tk, -1, -2))
      set2(L, lo, up);
    else
      lua_pop(L, 2);
    if (up - lo == 1) return;
    p = (lo + up) / 2;
    lua_geti(L, 1, p);
    lua_geti(L, 1, lo);
    if (sort_comp(tk, -2, -1)) {
      set2(L, p, lo);
    } else {
      lua_pop(L, 1);
      lua_geti(L, 1, up);
      if (sort_comp(tk, -1, -2))
        set2(L, p, up);
      else
        lua_pop(L, 2);
    }
    if (up - lo == 2) return;
    lua_geti(L, 1, p);
    lua_pushvalue(L, -1);
    lua_geti(L, 1, up - 1);
    set2(L, p, up - 1);
    p = partition(tk, lo, up);
    if (p - lo < up - p) {
      auxsort(tk, lo, p - 1);
      lo = p + 1;
    } else {
      auxsort(tk, p + 1, up);
      up = p - 1;
    }
  }
}

/* table.sort(t [, comp])   [-1..2, +0, e] */
static int tab_sort(lua_State *L) {
  lua_Integer n;
  ticker tk = {L, STEP_BATCH};
  luaL_checktype(L, 1, LUA_TTABLE);
  n = luaL_len(L, 1);
  luaL_argcheck(L, n < INT_MAX, 1, "array too big");
  luaL_checkstack(L, 50, "");
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 2);
  if (n > 1) auxsort(&tk, 1, n);
  return 0;
}

/* ===================================================================== */
/* Installing the bounded functions                                       */
/* ===================================================================== */

void chm__bound_lib(lua_State *L, int idx, const char *libname) {
  static const luaL_Reg string_own[] = {
      {"find", str_find}, {"match", str_match}, {"gmatch", str_gmatch},
      {"gsub", str_gsub}, {"rep", str_rep},     {NULL, NULL}};
  static const luaL_Reg table_own[] = {{"insert", tab_insert},
                                       {"remove", tab_remove},
                                       {"move", tab_move},
                                       {"concat", tab_concat},
                                       {"unpack", tab_unpack},
                                       {"sort", tab_sort},
                                       {NULL, NULL}};
  static const char *const string_skip[] = {
      "len", "byte", "sub", "find", "match", "gmatch", "gsub", "rep", NULL};
  idx = lua_absindex(L, idx);
  if (strcmp(libname, "string") == 0) {
    wrap_field(L, idx, "len", COST_ONE);
    wrap_field(L, idx, "byte", COST_BYTE);
    wrap_field(L, idx, "sub", COST_SUB);
    lua_pushvalue(L, idx);
    luaL_setfuncs(L, string_own, 0);
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_setfield(L, idx, "dump"); /* bytecode never leaves or enters */
    wrap_all(L, idx, COST_STRINGS, string_skip); /* format, lower, ... */
  } else if (strcmp(libname, "table") == 0) {
    lua_pushvalue(L, idx);
    luaL_setfuncs(L, table_own, 0);
    lua_pop(L, 1);
    wrap_field(L, idx, "pack", COST_STRINGS);
  } else if (strcmp(libname, "utf8") == 0) {
    wrap_field(L, idx, "codepoint", COST_BYTE);
    wrap_all(L, idx, COST_STRINGS, NULL);
  } else if (strcmp(libname, "_G") == 0) {
    wrap_field(L, idx, "tonumber", COST_STRINGS);
  } else if (strcmp(libname, "json") == 0 || strcmp(libname, "stringmt") == 0) {
    wrap_all(L, idx, COST_STRINGS, NULL);
  }
}

/*
** Parts of this file are adapted from lstrlib.c and ltablib.c of Lua 5.4,
** under this licence:
**
** Copyright (C) 1994-2022 Lua.org, PUC-Rio.
**
** Permission is hereby granted, free of charge, to any person obtaining
** a copy of this software and associated documentation files (the
** "Software"), to deal in the Software without restriction, including
** without limitation the rights to use, copy, modify, merge, publish,
** distribute, sublicense, and/or sell copies of the Software, and to
** permit persons to whom the Software is furnished to do so, subject to
** the following conditions:
**
** The above copyright notice and this permission notice shall be
** included in all copies or substantial portions of the Software.
**
** THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND,
** EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF
** MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT.
** IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY
** CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT,
** TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE
** SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
*/
