/*
** tokenlua.c — the token engine's bridge to Lua. Judgement is trusted Lua
** (lua/judge.lua: gate, route, step) reached through the one door,
** chm__pcall; this file builds the token views it reads, calls it and
** copies its answers into C structures. It also parses the JSON the API
** receives (changes, attributes) with the library's codec, so values are
** compared and stored as canonical JSON, and it holds the skills C hosts
** register for step functions. Every touch of the lua_State happens inside
** a protected body, so a memory error can never escape as a panic.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "token_int.h"

/* Limits of the trusted calls; user scripts inside run under their own. */
static const chm_limits trusted_limits = {4000000000u, 600000, 0};

/* The deepest nesting of arrays and objects an attribute value (or a memory
** value) may have: a scalar is 0 deep, [] and {} are 1, [[1]] is 2. Checked
** where values enter (genesis, submit, children, step results, memory,
** clarify); lua/conditions.lua (MAX_DEPTH) copies values this deep for the
** views scripts read. The JSON codec itself allows 1000. */
#define VALUE_DEPTH 200
/* How deep the check looks: past the codec's 1000, so a decoded value is
** reported with its true depth. */
#define DEPTH_SCAN 1024

/* The longest error text from user code the engine keeps (a step's error,
** a `fail` reason, a rejection or routing reason, a refusal message), in
** bytes; a longer one is cut on a UTF-8 boundary and says how much went. */
#define TEXT_CAP 4096

static const char skills_key = 'k'; /* registry: name -> skill closure */
static const char judge_key = 'j';  /* registry: the judge module table */
#define SKILLRES_MT "chameleon.skillresult"

enum {
  K_GATE,
  K_CONTEXT,
  K_ROUTE,
  K_STEP,
  K_CHANGES,
  K_OBJECT,
  K_CANON,
  K_SKILL
};

/* One protected call: inputs, outputs, and what went wrong. */
typedef struct call {
  chm__tk *t;
  int kind;
  int oom;        /* a malloc failed */
  char *invalid;  /* parse kinds: what is wrong with the input */
  const char *id; /* component or role id */
  const chm__view *view;
  const char *actor, *memory, *text, *what;
  chm__gate *gate;
  chm__route *route;
  chm__step *step;
  chm__changes *changes;
  chm__kvs *kvs;
  char *canon;
  const char *name; /* skill */
  chm_skill_cb cb;
  void *ud;
  int direct; /* parse kinds: the input is a step's table, not decoded JSON */
  int doubt;  /* direct: the table needs its JSON text to be read */
} call;

/* ===================================================================== */
/* Helpers inside protected bodies                                        */
/* ===================================================================== */

/* cap_text(s) -> a malloc'ed copy of s of at most TEXT_CAP bytes plus
** "… (N bytes cut)" when s is longer, cut before a UTF-8 continuation
** byte; NULL when s is NULL or malloc fails. */
static char *cap_text(const char *s) {
  static const char tail[] = "\xe2\x80\xa6 (%zu bytes cut)";
  size_t n, keep;
  char *p;
  if (s == NULL)
    return NULL;
  if ((n = strlen(s)) <= TEXT_CAP)
    return strdup(s);
  keep = TEXT_CAP;
  while (keep > 0 && ((unsigned char)s[keep] & 0xC0) == 0x80)
    keep--;
  if ((p = malloc(keep + sizeof tail + 24)) == NULL)
    return NULL;
  memcpy(p, s, keep);
  snprintf(p + keep, sizeof tail + 24, tail, n - keep);
  return p;
}

/* Copies a C string; on failure marks the call and raises. */
static char *xdup(lua_State *L, call *k, const char *s) {
  char *p;
  if (s == NULL)
    return NULL;
  if ((p = strdup(s)) == NULL) {
    k->oom = 1;
    luaL_error(L, "out of memory");
  }
  return p;
}

/* xcap(L, k, s): cap_text(s); on failure marks the call and raises. */
static char *xcap(lua_State *L, call *k, const char *s) {
  char *p;
  if (s == NULL)
    return NULL;
  if ((p = cap_text(s)) == NULL) {
    k->oom = 1;
    luaL_error(L, "out of memory");
  }
  return p;
}

/* The string form of field `name` of the table at idx, copied; NULL when
** absent or not a string/number. */
static char *field_str(lua_State *L, call *k, int idx, const char *name) {
  char *p = NULL;
  int ty = lua_getfield(L, idx, name);
  if (ty == LUA_TSTRING || ty == LUA_TNUMBER)
    p = xdup(L, k, lua_tostring(L, -1));
  lua_pop(L, 1);
  return p;
}

/* Pushes the canonical JSON of the value at idx. Raises on failure. */
static const char *encode(lua_State *L, int idx) {
  if (chm__json_encode(L, idx, 0) != 0)
    lua_error(L);
  return lua_tostring(L, -1);
}

static int is_array(lua_State *L, int idx) {
  if (!lua_istable(L, idx))
    return 0;
  if (lua_getmetatable(L, idx)) { /* decoded arrays carry the array mt */
    lua_pop(L, 1);
    return 1;
  }
  return 0;
}

/* is_ascii(L, idx) -> 1 when the string at idx has only ASCII bytes, which
** the JSON codec encodes and decodes unchanged, whatever they are. */
static int is_ascii(lua_State *L, int idx) {
  size_t n, i;
  const unsigned char *s = (const unsigned char *)lua_tolstring(L, idx, &n);
  for (i = 0; s != NULL && i < n; i++)
    if (s[i] >= 0x80)
      return 0;
  return s != NULL;
}

/* is_marked(L, idx) -> 1 when the value at idx is a table carrying the
** codec's array metatable (a step's own tables may carry any other). The
** metatable is read off a decoded "[]".   [-0, +0, m] */
static int is_marked(lua_State *L, int idx) {
  int r;
  idx = lua_absindex(L, idx);
  if (!lua_istable(L, idx) || !lua_getmetatable(L, idx))
    return 0;
  if (chm__json_decode(L, "[]", 2) != 0)
    lua_error(L);
  if (!lua_getmetatable(L, -1)) {
    lua_pop(L, 2);
    return 0;
  }
  r = lua_rawequal(L, -1, -3);
  lua_pop(L, 3);
  return r;
}

/* push_view(L, v)   [-0, +1, e]: the token view judge functions read. */
static void push_view(lua_State *L, const chm__view *v) {
  const chm__tok *tok = v->tok;
  int i;
  lua_createtable(L, 0, 10);
  lua_pushstring(L, tok->uow_id);
  lua_setfield(L, -2, "uow_id");
  if (tok->parent_id[0] != '\0') {
    lua_pushstring(L, tok->parent_id);
    lua_setfield(L, -2, "parent_id");
  }
  lua_pushstring(L, tok->status);
  lua_setfield(L, -2, "status");
  lua_pushinteger(L, tok->version);
  lua_setfield(L, -2, "version");
  lua_pushinteger(L, tok->child_count);
  lua_setfield(L, -2, "child_count");
  lua_pushinteger(L, tok->finished_child_count);
  lua_setfield(L, -2, "finished_child_count");
  lua_pushstring(L, v->workflow);
  lua_setfield(L, -2, "workflow");
  if (tok->failure_reason != NULL) {
    lua_pushstring(L, tok->failure_reason);
    lua_setfield(L, -2, "failure_reason");
  }
  lua_createtable(L, 0, v->attrs != NULL ? v->attrs->n : 0);
  for (i = 0; v->attrs != NULL && i < v->attrs->n; i++) {
    const chm__attr *a = &v->attrs->v[i];
    if (a->value == NULL)
      chm__json_pushnull(L);
    else if (chm__json_decode(L, a->value, strlen(a->value)) != 0)
      luaL_error(L, "attribute '%s' of token %s is not valid JSON: %s", a->key,
                 tok->uow_id, lua_tostring(L, -1));
    lua_setfield(L, -2, a->key);
  }
  lua_setfield(L, -2, "attrs");
}

/* Pushes judge.<fn>; the module table is kept in the registry of the
** handle's state after the first require.   [-0, +1, e] */
static void push_judge(lua_State *L, const char *fn) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &judge_key) != LUA_TTABLE) {
    lua_pop(L, 1);
    chm__require(L, "judge");
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &judge_key);
  }
  lua_getfield(L, -1, fn);
  if (!lua_isfunction(L, -1))
    luaL_error(L, "internal: judge.%s is not a function", fn);
  lua_remove(L, -2);
}

/* ===================================================================== */
/* Gates                                                                  */
/* ===================================================================== */

static void decision_from(lua_State *L, call *k, int idx, chm__decision *d,
                          const char *dflt) {
  d->guardian_id = field_str(L, k, idx, "guardian_id");
  d->name = field_str(L, k, idx, "name");
  d->type = field_str(L, k, idx, "type");
  d->decision = field_str(L, k, idx, "decision");
  d->reason = field_str(L, k, idx, "reason");
  if (d->reason != NULL && strlen(d->reason) > TEXT_CAP) {
    char *cut = xcap(L, k, d->reason);
    free(d->reason);
    d->reason = cut;
  }
  if (d->decision == NULL)
    d->decision = xdup(L, k, dflt);
}

static void *grow(lua_State *L, call *k, void *p, int n, size_t size) {
  void *np = realloc(p, (size_t)(n + 1) * size);
  if (np == NULL) {
    k->oom = 1;
    luaL_error(L, "out of memory");
  }
  memset((char *)np + (size_t)n * size, 0, size);
  return np;
}

/* gate body: judge.gate(db, component_id, view), appended to k->gate. */
static void do_gate(lua_State *L, call *k) {
  chm__gate *g = k->gate;
  int res, i, n;
  push_judge(L, "gate");
  chm__db_push(L, k->t->c->db);
  lua_pushstring(L, k->id);
  push_view(L, k->view);
  lua_call(L, 3, 1);
  res = lua_gettop(L);
  if (!lua_istable(L, res))
    luaL_error(L, "judge.gate returned a %s, not a table",
               luaL_typename(L, res));
  lua_getfield(L, res, "pass");
  if (!lua_toboolean(L, -1))
    g->pass = 0;
  lua_getfield(L, res, "wait");
  if (lua_toboolean(L, -1))
    g->wait = 1;
  lua_pop(L, 2);
  if (lua_getfield(L, res, "rejection") == LUA_TTABLE && !g->has_rejection) {
    decision_from(L, k, lua_gettop(L), &g->rejection, "REJECT");
    g->has_rejection = 1;
  }
  lua_pop(L, 1);
  if (lua_getfield(L, res, "decisions") == LUA_TTABLE) {
    n = (int)luaL_len(L, -1);
    for (i = 1; i <= n; i++) {
      if (lua_rawgeti(L, -1, i) == LUA_TTABLE) {
        g->dec = grow(L, k, g->dec, g->ndec, sizeof *g->dec);
        g->ndec++;
        decision_from(L, k, lua_gettop(L), &g->dec[g->ndec - 1], "PASS");
      }
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  if (lua_getfield(L, res, "injections") == LUA_TTABLE) {
    n = (int)luaL_len(L, -1);
    for (i = 1; i <= n; i++) {
      if (lua_rawgeti(L, -1, i) == LUA_TTABLE) {
        int e = lua_gettop(L);
        chm__inj *j;
        g->inj = grow(L, k, g->inj, g->ninj, sizeof *g->inj);
        j = &g->inj[g->ninj++];
        j->guardian_id = field_str(L, k, e, "guardian_id");
        j->field = field_str(L, k, e, "field");
        lua_getfield(L, e, "rule_index");
        j->rule_index = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : 0;
        lua_pop(L, 1);
        lua_getfield(L, e, "value");
        j->value = xdup(L, k, encode(L, -1));
        lua_pop(L, 2);
      }
      lua_pop(L, 1);
    }
  }
  lua_settop(L, res - 1);
}

/* context body: apply g->inj to the token's context; keep only the
** injections that changed it; g->context = the new text. */
static void do_context(lua_State *L, call *k) {
  chm__gate *g = k->gate;
  const char *cur = k->view->tok->context;
  int ctx, i, kept = 0;
  if (cur == NULL || chm__json_decode(L, cur, strlen(cur)) != 0 ||
      !lua_istable(L, -1) || is_array(L, -1)) {
    lua_settop(L, 1);
    lua_newtable(L);
  }
  ctx = lua_gettop(L);
  for (i = 0; i < g->ninj; i++) {
    chm__inj *j = &g->inj[i];
    int changed = 0, v;
    if (j->field == NULL || j->value == NULL)
      goto drop;
    if (chm__json_decode(L, j->value, strlen(j->value)) != 0)
      lua_error(L);
    v = lua_gettop(L);
    if (strcmp(j->field, "knowledge") == 0) {
      int n, m, found = 0;
      if (lua_getfield(L, ctx, "knowledge") != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, ctx, "knowledge");
      }
      n = (int)luaL_len(L, -1);
      for (m = 1; m <= n && !found; m++) {
        lua_rawgeti(L, -1, m);
        found = strcmp(encode(L, -1), j->value) == 0;
        lua_pop(L, 2);
      }
      if (!found) {
        lua_pushvalue(L, v);
        lua_rawseti(L, -2, n + 1);
        changed = 1;
      }
    } else {
      if (lua_getfield(L, ctx, j->field) == LUA_TNIL ||
          strcmp(encode(L, -1), j->value) != 0) {
        lua_pushvalue(L, v);
        lua_setfield(L, ctx, j->field);
        changed = 1;
      }
    }
    lua_settop(L, ctx);
    if (changed) {
      g->inj[kept++] = *j;
      continue;
    }
  drop:
    free(j->guardian_id);
    free(j->field);
    free(j->value);
  }
  g->ninj = kept;
  if (kept > 0)
    g->context = xdup(L, k, encode(L, ctx));
}

/* ===================================================================== */
/* Routing and steps                                                      */
/* ===================================================================== */

static void changes_from(lua_State *L, call *k, int top);

static void do_route(lua_State *L, call *k) {
  chm__route *r = k->route;
  int res;
  push_judge(L, "route");
  chm__db_push(L, k->t->c->db);
  lua_pushstring(L, k->id);
  push_view(L, k->view);
  lua_call(L, 3, 1);
  res = lua_gettop(L);
  if (!lua_istable(L, res))
    luaL_error(L, "judge.route returned a %s, not a table",
               luaL_typename(L, res));
  r->component_id = field_str(L, k, res, "component_id");
  r->interaction_id = field_str(L, k, res, "interaction_id");
  r->reason = field_str(L, k, res, "reason");
  if (r->reason != NULL && strlen(r->reason) > TEXT_CAP) {
    char *cut = xcap(L, k, r->reason);
    free(r->reason);
    r->reason = cut;
  }
  if (lua_getfield(L, res, "errors") == LUA_TTABLE && luaL_len(L, -1) > 0) {
    int i, n = (int)luaL_len(L, -1);
    for (i = 1; i <= n; i++) { /* a routing function's error: user text */
      if (lua_rawgeti(L, -1, i) == LUA_TTABLE &&
          lua_getfield(L, -1, "message") == LUA_TSTRING &&
          lua_rawlen(L, -1) > TEXT_CAP) {
        /* the capped text built on the Lua stack: nothing to leak if a
        ** push raises at the memory cap */
        const char *s = lua_tostring(L, -1);
        size_t len = lua_rawlen(L, -1), keep = TEXT_CAP;
        while (keep > 0 && ((unsigned char)s[keep] & 0xC0) == 0x80)
          keep--;
        lua_pushlstring(L, s, keep);
        lua_pushfstring(L, "\xe2\x80\xa6 (%d bytes cut)", (int)(len - keep));
        lua_concat(L, 2);
        lua_setfield(L, -3, "message");
      }
      lua_settop(L, res + 1);
    }
    r->errors = xdup(L, k, encode(L, -1));
  }
  lua_pop(L, 1);
  if (lua_getfield(L, res, "decisions") == LUA_TTABLE) {
    int i, n = (int)luaL_len(L, -1);
    for (i = 1; i <= n; i++) {
      if (lua_rawgeti(L, -1, i) == LUA_TTABLE) {
        r->dec = grow(L, k, r->dec, r->ndec, sizeof *r->dec);
        r->ndec++;
        decision_from(L, k, lua_gettop(L), &r->dec[r->ndec - 1], "NO_ROUTE");
      }
      lua_pop(L, 1);
    }
  }
}

/* seed(uow_id, version) -> a PRNG seed that replays: 48 bits of
** sha256("<uow_id>:<version>"). */
static lua_Integer step_seed(const chm__tok *tok) {
  char text[64], hex[65];
  lua_Integer s = 0;
  int i;
  snprintf(text, sizeof text, "%s:%lld", tok->uow_id, (long long)tok->version);
  if (chm__sha256_hex(text, strlen(text), hex) != 0)
    return 0;
  for (i = 0; i < 12; i++)
    s = s * 16 + (hex[i] <= '9' ? hex[i] - '0' : hex[i] - 'a' + 10);
  return s;
}

/* Pushes a fresh table of the registered skills.   [-0, +1, m] */
static void push_skills(lua_State *L) {
  lua_newtable(L);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &skills_key) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, -5);
    }
  }
  lua_pop(L, 1);
}

static void do_step(lua_State *L, call *k) {
  chm__step *s = k->step;
  int base;
  push_judge(L, "step");
  chm__db_push(L, k->t->c->db);
  lua_pushstring(L, k->id);
  push_view(L, k->view);
  lua_createtable(L, 0, 5); /* ctx */
  lua_pushstring(L, k->actor);
  lua_setfield(L, -2, "actor");
  if (chm__json_decode(L, k->memory, strlen(k->memory)) != 0)
    lua_error(L);
  lua_setfield(L, -2, "memory");
  push_skills(L);
  lua_setfield(L, -2, "skills");
  lua_pushinteger(L, k->t->now);
  lua_setfield(L, -2, "now");
  lua_pushinteger(L, step_seed(k->view->tok));
  lua_setfield(L, -2, "seed");
  base = lua_gettop(L) - 5;
  lua_call(L, 4, 3);
  if (lua_toboolean(L, base + 1)) {
    if (lua_isnoneornil(L, base + 2)) {
      s->changes = xdup(L, k, "{}");
    } else if (lua_istable(L, base + 2) && !is_array(L, base + 2)) {
      /* The changes are what the table's JSON text says. Read off the
      ** table itself, in this door, they come out as the submit would
      ** read them off that text. A result the direct read is not sure of,
      ** or finds invalid, goes the long way: its JSON text (or the
      ** message that there is none), which the submit parses and refuses
      ** as it always did. */
      k->direct = 1;
      k->changes = &s->parsed;
      changes_from(L, k, base + 2);
      k->direct = 0;
      lua_settop(L, base + 3);
      if (k->invalid == NULL && !k->doubt) {
        s->has_parsed = 1;
        s->rc = CHM_OK;
        return;
      }
      free(k->invalid);
      k->invalid = NULL;
      chm__changes_free(&s->parsed);
      if (chm__json_encode(L, base + 2, 0) != 0) {
        s->rc = CHM_SCRIPT;
        s->error = xcap(L, k,
                        lua_pushfstring(L,
                                        "the step's result cannot "
                                        "be encoded as JSON: %s",
                                        lua_tostring(L, -1)));
        return;
      }
      s->changes = xdup(L, k, lua_tostring(L, -1));
    } else {
      s->rc = CHM_SCRIPT;
      s->error = xdup(L, k,
                      lua_pushfstring(L,
                                      "the step returned %s; "
                                      "expected a table of changes "
                                      "({set=..., reasoning=...})",
                                      luaL_typename(L, base + 2)));
      return;
    }
    s->rc = CHM_OK;
  } else {
    const char *code = lua_tostring(L, base + 3);
    const char *msg = luaL_tolstring(L, base + 2, NULL);
    s->rc = CHM_SCRIPT;
    if (code != NULL && strcmp(code, "BUDGET") == 0)
      s->rc = CHM_BUDGET;
    if (code != NULL && strcmp(code, "MEMORY") == 0)
      s->rc = CHM_MEMORY;
    s->error = xcap(L, k, msg);
  }
}

/* ===================================================================== */
/* Parsing JSON input                                                     */
/* ===================================================================== */

/* Sets k->invalid (formatted) and returns 1. Never raises except OOM. */
static int invalid(lua_State *L, call *k, const char *fmt, ...) {
  va_list ap;
  const char *msg;
  va_start(ap, fmt);
  msg = lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  k->invalid = xcap(L, k, msg);
  return 1;
}

static int kv_cmp(const void *a, const void *b) {
  return strcmp(((const chm__kv *)a)->key, ((const chm__kv *)b)->key);
}

/* doubt(k) -> 1, after marking a direct read as needing the JSON text. */
static int doubt(call *k) {
  k->doubt = 1;
  return 1;
}

/* escaped_key(L, key, len) -> key as the inside of a JSON string, control
** bytes (NUL above all) as \u00XX; pushed on the stack. */
static const char *escaped_key(lua_State *L, const char *key, size_t len) {
  luaL_Buffer b;
  size_t i;
  luaL_buffinit(L, &b);
  for (i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)key[i];
    if (ch < 0x20 || ch == '"' || ch == '\\') {
      char e[8];
      snprintf(e, sizeof e, "\\u%04x", ch);
      luaL_addstring(&b, e);
    } else {
      luaL_addchar(&b, (char)ch);
    }
  }
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

/* value_depth(L, idx, cap) -> how many arrays and objects nest in the
** value at idx (0 for a scalar), or cap when it reaches cap (so a cycle
** ends). Pops what it pushes.   [-0, +0, e] */
static int value_depth(lua_State *L, int idx, int cap) {
  int deepest = 0;
  idx = lua_absindex(L, idx);
  if (!lua_istable(L, idx))
    return 0;
  if (cap <= 1)
    return 1;
  luaL_checkstack(L, 3, "attribute value nested too deeply");
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int d = value_depth(L, -1, cap - 1);
    lua_pop(L, 1);
    if (d > deepest)
      deepest = d;
    if (deepest + 1 >= cap) {
      lua_pop(L, 1);
      break;
    }
  }
  return deepest + 1;
}

/* too_deep(L, k, idx, what, key) -> 1 (k->invalid set) when the value at
** idx nests deeper than VALUE_DEPTH. It is named by key in the object
** `what` ("changes.set", "changes.teach"...), or by what alone when key
** is NULL. */
static int too_deep(lua_State *L, call *k, int idx, const char *what,
                    const char *key) {
  int d = value_depth(L, idx, DEPTH_SCAN);
  const char *name;
  if (d <= VALUE_DEPTH)
    return 0;
  if (key == NULL)
    name = what;
  else if (strcmp(what, "changes.teach") == 0)
    name = lua_pushfstring(L, "memory value '%s'", key);
  else if (strncmp(what, "changes.children", 16) == 0)
    name = lua_pushfstring(L, "attribute '%s' of %s", key, what);
  else
    name = lua_pushfstring(L, "attribute '%s'", key);
  return invalid(L, k, "%s is nested %d levels deep; at most %d are allowed",
                 name, d, VALUE_DEPTH);
}

/* The object at idx as sorted key/canonical-value pairs in *out; 1 when
** it is invalid (or, k->direct, in doubt). */
static int object_kvs(lua_State *L, call *k, int idx, const char *what,
                      chm__kvs *out) {
  int n = 0, arr = k->direct ? is_marked(L, idx) : is_array(L, idx);
  if (!lua_istable(L, idx) || arr)
    return invalid(L, k, "%s must be a JSON object, not %s", what,
                   arr ? "an array" : luaL_typename(L, idx));
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    n++;
  }
  out->v = calloc((size_t)(n ? n : 1), sizeof *out->v);
  if (out->v == NULL) {
    k->oom = 1;
    luaL_error(L, "out of memory");
  }
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    size_t len = 0;
    const char *key =
        lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &len) : NULL;
    if (key == NULL)
      return invalid(L, k, "%s has a %s key; keys must be text", what,
                     luaL_typename(L, -2));
    if (*key == '\0' || strlen(key) != len) { /* left on the stack */
      const char *shown = escaped_key(L, key, len);
      return invalid(L, k,
                     "%s has the key \"%s\": an attribute key must be "
                     "non-empty text without a NUL byte (\\u0000)",
                     what, shown);
    }
    if (k->direct && (!is_ascii(L, -2) || lua_istable(L, -1))) {
      lua_pop(L, 2); /* a key to check as UTF-8, a value to check deeply */
      return doubt(k);
    }
    if (!k->direct && too_deep(L, k, -1, what, key))
      return 1;
    out->v[out->n].key = xdup(L, k, key);
    out->n++;
    if (!k->direct) {
      out->v[out->n - 1].value = xdup(L, k, encode(L, -1));
    } else if (chm__json_encode(L, -1, 0) != 0) {
      lua_pop(L, 3);
      return doubt(k);
    } else {
      out->v[out->n - 1].value = xdup(L, k, lua_tostring(L, -1));
    }
    lua_pop(L, 2); /* the JSON text and the value: the key stays for next */
  }
  qsort(out->v, (size_t)out->n, sizeof *out->v, kv_cmp);
  return 0;
}

/* Decodes k->text onto the stack; 1 (k->invalid set) when it is not JSON. */
static int decode_input(lua_State *L, call *k) {
  if (chm__json_decode(L, k->text, strlen(k->text)) != 0)
    return invalid(L, k, "%s is not valid JSON: %s", k->what,
                   lua_tostring(L, -1));
  return 0;
}

static const char *const change_keys[] = {
    "set", "reasoning", "children", "teach", "give_up", "end", "fail", NULL};

/* changes_from(L, k, top): k->changes from the changes table at top, the
** decoded JSON text, or (k->direct) a step's result that judge.step
** checked (steps.validate: known keys, their types, names as keys,
** children as a list). A direct read gives what decoding the result's
** JSON text would, or stops with k->doubt set where it cannot be sure
** without that text: a value that is a table (nesting, cycles), one that
** does not encode, a key or a string that is not ASCII (UTF-8 rules), a
** children table whose keys are not exactly 1..n. In a direct read an
** array is a table with the codec's array metatable. May leave values
** above top. */
static void changes_from(lua_State *L, call *k, int top) {
  chm__changes *c = k->changes;
  int i, n;
  top = lua_absindex(L, top);
  if (!lua_istable(L, top) ||
      (k->direct ? is_marked(L, top) : is_array(L, top))) {
    invalid(L, k,
            "changes must be a JSON object like {\"set\": {...}, "
            "\"reasoning\": \"...\"}");
    return;
  }
  lua_pushnil(L);
  while (lua_next(L, top)) { /* lua_tostring would change a number key */
    const char *key =
        lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    for (i = 0; change_keys[i] != NULL; i++)
      if (key != NULL && strcmp(key, change_keys[i]) == 0)
        break;
    if (change_keys[i] == NULL) {
      invalid(L, k,
              "unknown key '%s' in changes (expected set, reasoning, "
              "children, teach, give_up, end or fail)",
              key ? key : "?");
      return;
    }
    lua_pop(L, 1);
  }
#define ABSENT(t) ((t) == LUA_TNIL || (t) == LUA_TLIGHTUSERDATA) /* null */
  if (!ABSENT(lua_getfield(L, top, "set")) &&
      object_kvs(L, k, lua_gettop(L), "changes.set", &c->set))
    return;
  lua_settop(L, top);
  if (!ABSENT(lua_getfield(L, top, "teach")) &&
      object_kvs(L, k, lua_gettop(L), "changes.teach", &c->teach))
    return;
  lua_settop(L, top);
  i = lua_getfield(L, top, "reasoning");
  if (i == LUA_TSTRING && k->direct && !is_ascii(L, -1)) {
    doubt(k);
    return;
  }
  if (i == LUA_TSTRING)
    c->reasoning = xdup(L, k, lua_tostring(L, -1));
  else if (!ABSENT(i)) {
    invalid(L, k, "changes.reasoning must be a string, not %s",
            luaL_typename(L, -1));
    return;
  }
  lua_settop(L, top);
  i = lua_getfield(L, top, "fail");
  if (i == LUA_TSTRING && k->direct && !is_ascii(L, -1)) {
    doubt(k);
    return;
  }
  if (i == LUA_TSTRING && lua_rawlen(L, -1) > 0)
    c->fail = xcap(L, k, lua_tostring(L, -1));
  else if (!ABSENT(i) && !(i == LUA_TBOOLEAN && !lua_toboolean(L, -1))) {
    invalid(L, k, "changes.fail must be a non-empty reason string");
    return;
  }
  lua_settop(L, top);
  i = lua_getfield(L, top, "give_up");
  if (i == LUA_TBOOLEAN)
    c->give_up = lua_toboolean(L, -1);
  else if (!ABSENT(i)) {
    invalid(L, k, "changes.give_up must be true or false");
    return;
  }
  lua_settop(L, top);
  i = lua_getfield(L, top, "end");
  if (i == LUA_TBOOLEAN)
    c->end = lua_toboolean(L, -1);
  else if (!ABSENT(i)) {
    invalid(L, k, "changes.end must be true or false");
    return;
  }
  lua_settop(L, top);
  i = lua_getfield(L, top, "children");
  if (!ABSENT(i)) {
    int arr = lua_gettop(L);
    if (!k->direct && !is_array(L, arr)) { /* {} encodes as {} */
      lua_pushnil(L);
      if (!lua_istable(L, arr) || lua_next(L, arr) != 0) {
        invalid(L, k, "changes.children must be an array of objects");
        return;
      }
    }
    lua_settop(L, arr);
    n = (int)lua_rawlen(L, arr);
    if (k->direct) { /* encodes as an array of n: keys exactly 1..n */
      int keys = 0;
      lua_pushnil(L);
      while (lua_next(L, arr)) {
        lua_pop(L, 1);
        keys++;
      }
      for (i = 1; i <= n && keys == n; i++) { /* one slot at a time */
        if (lua_rawgeti(L, arr, i) == LUA_TNIL)
          keys = -1;
        lua_pop(L, 1);
      }
      lua_settop(L, arr);
      if (keys != n) {
        doubt(k);
        return;
      }
    }
    c->children = calloc((size_t)(n ? n : 1), sizeof *c->children);
    if (c->children == NULL) {
      k->oom = 1;
      luaL_error(L, "out of memory");
    }
    for (i = 1; i <= n; i++) {
      char what[48];
      lua_rawgeti(L, arr, i);
      snprintf(what, sizeof what, "changes.children[%d]", i);
      c->nchildren = i;
      if (object_kvs(L, k, lua_gettop(L), what, &c->children[i - 1]))
        return;
      lua_settop(L, arr);
    }
  }
#undef ABSENT
}

static void do_changes(lua_State *L, call *k) {
  if (decode_input(L, k))
    return;
  changes_from(L, k, lua_gettop(L));
}

static void do_object(lua_State *L, call *k) {
  if (decode_input(L, k))
    return;
  object_kvs(L, k, lua_gettop(L), k->what, k->kvs);
}

static void do_canon(lua_State *L, call *k) {
  if (decode_input(L, k) || too_deep(L, k, -1, k->what, NULL))
    return;
  k->canon = xdup(L, k, encode(L, -1));
}

/* ===================================================================== */
/* Skills                                                                 */
/* ===================================================================== */

typedef struct skillfn {
  chm_skill_cb cb;
  void *ud;
} skillfn;

typedef struct skillres {
  char *result, *error; /* malloc'ed by the callback */
} skillres;

static int skillres_gc(lua_State *L) {
  skillres *r = lua_touserdata(L, 1);
  free(r->result);
  free(r->error);
  r->result = r->error = NULL;
  return 0;
}

/* ctx.skills.<name>(args) -> result   [-n, +1, e]
** Calls the C callback with the canonical JSON of args; raises
** "skill '<name>' failed: <error>" when it fails. */
static int skill_call(lua_State *L) {
  const char *name = lua_tostring(L, lua_upvalueindex(1));
  skillfn *f = lua_touserdata(L, lua_upvalueindex(2));
  skillres *r;
  const char *args;
  int rc;
  lua_settop(L, 1);
  if (lua_isnil(L, 1)) {
    lua_pop(L, 1);
    chm__json_pushnull(L);
  }
  args = encode(L, 1);
  r = lua_newuserdatauv(L, sizeof *r, 0);
  r->result = r->error = NULL;
  if (luaL_newmetatable(L, SKILLRES_MT)) {
    lua_pushcfunction(L, skillres_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  rc = f->cb(f->ud, args, &r->result, &r->error);
  if (rc != 0)
    return luaL_error(L, "skill '%s' failed: %s", name,
                      r->error ? r->error : "error");
  if (r->result == NULL) {
    lua_pushnil(L);
    return 1;
  }
  if (chm__json_decode(L, r->result, strlen(r->result)) != 0)
    return luaL_error(L, "skill '%s' returned invalid JSON: %s", name,
                      lua_tostring(L, -1));
  return 1;
}

static void do_skill(lua_State *L, call *k) {
  skillfn *f;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &skills_key) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &skills_key);
  }
  lua_pushstring(L, k->name);
  f = lua_newuserdatauv(L, sizeof *f, 0);
  f->cb = k->cb;
  f->ud = k->ud;
  lua_pushcclosure(L, skill_call, 2);
  lua_setfield(L, -2, k->name);
}

/* ===================================================================== */
/* The protected body and its callers                                     */
/* ===================================================================== */

/* body(call)   [-1, +0, e] */
static int body(lua_State *L) {
  call *k = lua_touserdata(L, 1);
  switch (k->kind) {
  case K_GATE:
    do_gate(L, k);
    break;
  case K_CONTEXT:
    do_context(L, k);
    break;
  case K_ROUTE:
    do_route(L, k);
    break;
  case K_STEP:
    do_step(L, k);
    break;
  case K_CHANGES:
    do_changes(L, k);
    break;
  case K_OBJECT:
    do_object(L, k);
    break;
  case K_CANON:
    do_canon(L, k);
    break;
  case K_SKILL:
    do_skill(L, k);
    break;
  default:
    break;
  }
  return 0;
}

/* Runs k through the door. Returns the door's status; on failure *err (may
** be NULL) is a malloc'ed message. CHM_NOMEM when our own malloc failed. */
static int run(chm__tk *t, call *k, char **err) {
  lua_State *L = t->c->L;
  int top = lua_gettop(L), rc;
  k->t = t;
  if (err != NULL)
    *err = NULL;
  lua_pushcfunction(L, body);
  lua_pushlightuserdata(L, k);
  rc = chm__pcall(L, 1, 0, &trusted_limits);
  if (k->oom)
    rc = CHM_NOMEM;
  else if (rc != CHM_OK && err != NULL) {
    const char *m = lua_tostring(L, -1);
    *err = cap_text(m != NULL ? m : chm_errstr(rc));
    if (*err == NULL)
      rc = CHM_NOMEM;
  }
  lua_settop(L, top);
  if (rc == CHM_MEMORY)
    lua_gc(L, LUA_GCCOLLECT);
  return rc;
}

void chm__decision_free(chm__decision *d) {
  free(d->guardian_id);
  free(d->name);
  free(d->type);
  free(d->decision);
  free(d->reason);
  memset(d, 0, sizeof *d);
}

void chm__gate_free(chm__gate *g) {
  int i;
  chm__decision_free(&g->rejection);
  for (i = 0; i < g->ndec; i++)
    chm__decision_free(&g->dec[i]);
  for (i = 0; i < g->ninj; i++) {
    free(g->inj[i].guardian_id);
    free(g->inj[i].field);
    free(g->inj[i].value);
  }
  free(g->dec);
  free(g->inj);
  free(g->context);
  memset(g, 0, sizeof *g);
}

/* guarded_component(t, id, &yes): does the component carry a guardian?
** From the graph cache (guardians never change after instantiation). */
static int guarded_component(chm__tk *t, const char *id, int *yes) {
  const int *m = chm__tk_memo_get(t, CHM__M_GUARDED, id, NULL);
  sqlite3_stmt *st;
  int rc;
  *yes = 1;
  if (m != NULL) {
    *yes = *m;
    return CHM_OK;
  }
  if ((st = chm__tk_q(t, CHM__Q_COMPONENT_GUARDED, "s", id)) == NULL)
    return chm__tk_dbrc(t);
  rc = chm__tk_step(t, CHM__Q_COMPONENT_GUARDED, st);
  if (rc < 0)
    return chm__tk_dbrc(t);
  if (rc == SQLITE_ROW)
    *yes = sqlite3_column_int(st, 0);
  chm__tk_reset(st);
  chm__tk_memo_put(t, CHM__M_GUARDED, id, yes, sizeof *yes);
  return CHM_OK;
}

int chm__tk_gate(chm__tk *t, char (*ids)[CHM__ID], int n, const chm__view *v,
                 chm__gate *g) {
  call k;
  char *err = NULL;
  int i, rc;
  memset(g, 0, sizeof *g);
  g->pass = 1;
  for (i = 0; i < n; i++) {
    int guarded;
    if ((rc = guarded_component(t, ids[i], &guarded)) != CHM_OK)
      return rc;
    if (!guarded)
      continue; /* no guardian: nothing to decide, judge.gate would pass */
    memset(&k, 0, sizeof k);
    k.kind = K_GATE;
    k.id = ids[i];
    k.view = v;
    k.gate = g;
    rc = run(t, &k, &err);
    if (rc == CHM_NOMEM) {
      free(err);
      return chm__tk_err(t, CHM_NOMEM, "out of memory");
    }
    if (rc != CHM_OK) { /* the judge itself failed: a rejection */
      g->pass = 0;
      if (!g->has_rejection) {
        char *reason = chm__strdupf("judge.gate failed: %s", err ? err : "?");
        g->has_rejection = 1;
        g->rejection.name = strdup("judge");
        g->rejection.type = strdup("ENGINE");
        g->rejection.decision = strdup("REJECT");
        g->rejection.reason = reason;
      }
      free(err);
      err = NULL;
    }
  }
  if (g->has_rejection)
    g->pass = 0;
  if (g->pass && g->ninj > 0) {
    memset(&k, 0, sizeof k);
    k.kind = K_CONTEXT;
    k.view = v;
    k.gate = g;
    rc = run(t, &k, &err);
    if (rc != CHM_OK) {
      int r2 = chm__tk_err(t, rc == CHM_NOMEM ? CHM_NOMEM : CHM_ERROR,
                           "cannot apply context injections to token %s: %s",
                           v->tok->uow_id, err ? err : "out of memory");
      free(err);
      return r2;
    }
  }
  return CHM_OK;
}

void chm__route_free(chm__route *r) {
  int i;
  for (i = 0; i < r->ndec; i++)
    chm__decision_free(&r->dec[i]);
  free(r->dec);
  free(r->component_id);
  free(r->interaction_id);
  free(r->reason);
  free(r->errors);
  memset(r, 0, sizeof *r);
}

int chm__tk_route(chm__tk *t, const char *role_id, const chm__view *v,
                  chm__route *r) {
  call k;
  char *err = NULL;
  int rc;
  memset(r, 0, sizeof *r);
  memset(&k, 0, sizeof k);
  k.kind = K_ROUTE;
  k.id = role_id;
  k.view = v;
  k.route = r;
  rc = run(t, &k, &err);
  if (rc == CHM_NOMEM) {
    free(err);
    return chm__tk_err(t, CHM_NOMEM, "out of memory");
  }
  if (rc != CHM_OK) {
    chm__route_free(r);
    r->reason = chm__strdupf("routing failed: %s", err ? err : "?");
    free(err);
    if (r->reason == NULL)
      return chm__tk_err(t, CHM_NOMEM, "out of memory");
    return CHM_OK;
  }
  if (r->component_id == NULL) {
    free(r->interaction_id);
    r->interaction_id = NULL;
  }
  if (r->reason == NULL &&
      (r->reason = strdup(r->component_id ? "routed" : "no route matched")) ==
          NULL)
    return chm__tk_err(t, CHM_NOMEM, "out of memory");
  return CHM_OK;
}

void chm__step_free(chm__step *s) {
  free(s->changes);
  free(s->error);
  chm__changes_free(&s->parsed);
  memset(s, 0, sizeof *s);
}

int chm__tk_step_fn(chm__tk *t, const char *role_id, const chm__view *v,
                    const char *actor, const char *memory_json, chm__step *s) {
  call k;
  char *err = NULL;
  int rc;
  memset(s, 0, sizeof *s);
  memset(&k, 0, sizeof k);
  k.kind = K_STEP;
  k.id = role_id;
  k.view = v;
  k.actor = actor;
  k.memory = memory_json != NULL ? memory_json : "{}";
  k.step = s;
  rc = run(t, &k, &err);
  if (rc == CHM_NOMEM) {
    free(err);
    return chm__tk_err(t, CHM_NOMEM, "out of memory");
  }
  if (rc != CHM_OK) { /* the judge or the door failed: the step failed */
    chm__step_free(s);
    s->rc = rc;
    s->error = err;
    if (s->error == NULL)
      return chm__tk_err(t, CHM_NOMEM, "out of memory");
  }
  return CHM_OK;
}

void chm__kvs_free(chm__kvs *kv) {
  int i;
  for (i = 0; i < kv->n; i++) {
    free(kv->v[i].key);
    free(kv->v[i].value);
  }
  free(kv->v);
  memset(kv, 0, sizeof *kv);
}

void chm__changes_free(chm__changes *c) {
  int i;
  chm__kvs_free(&c->set);
  chm__kvs_free(&c->teach);
  for (i = 0; i < c->nchildren; i++)
    chm__kvs_free(&c->children[i]);
  free(c->children);
  free(c->reasoning);
  free(c->fail);
  memset(c, 0, sizeof *c);
}

/* Runs a parse kind; maps its outcome to CHM_OK / CHM_INVALID / CHM_NOMEM. */
static int parse(chm__tk *t, call *k) {
  char *err = NULL;
  int rc = run(t, k, &err);
  if (rc == CHM_NOMEM) {
    free(err);
    free(k->invalid);
    return chm__tk_err(t, CHM_NOMEM, "out of memory");
  }
  if (rc != CHM_OK) {
    rc = chm__tk_err(t, CHM_INVALID, "%s cannot be read: %s", k->what,
                     err ? err : "?");
    free(err);
    free(k->invalid);
    return rc;
  }
  if (k->invalid != NULL) {
    rc = chm__tk_err(t, CHM_INVALID, "%s", k->invalid);
    free(k->invalid);
    return rc;
  }
  return CHM_OK;
}

int chm__tk_parse_changes(chm__tk *t, const char *json, chm__changes *c) {
  call k;
  int rc;
  memset(c, 0, sizeof *c);
  memset(&k, 0, sizeof k);
  k.kind = K_CHANGES;
  k.text = json != NULL ? json : "{}";
  k.what = "changes";
  k.changes = c;
  rc = parse(t, &k);
  if (rc != CHM_OK)
    chm__changes_free(c);
  return rc;
}

int chm__tk_parse_object(chm__tk *t, const char *json, const char *what,
                         chm__kvs *kvs) {
  call k;
  int rc;
  memset(kvs, 0, sizeof *kvs);
  memset(&k, 0, sizeof k);
  k.kind = K_OBJECT;
  k.text = json != NULL ? json : "{}";
  k.what = what;
  k.kvs = kvs;
  rc = parse(t, &k);
  if (rc != CHM_OK)
    chm__kvs_free(kvs);
  return rc;
}

int chm__tk_canon(chm__tk *t, const char *json, const char *what, char **out) {
  call k;
  int rc;
  *out = NULL;
  memset(&k, 0, sizeof k);
  k.kind = K_CANON;
  k.text = json;
  k.what = what;
  rc = parse(t, &k);
  if (rc != CHM_OK) {
    free(k.canon);
    return rc;
  }
  *out = k.canon;
  return CHM_OK;
}

int chm__tk_skill_register(chm__tk *t, const char *name, chm_skill_cb cb,
                           void *ud) {
  call k;
  int rc;
  memset(&k, 0, sizeof k);
  k.kind = K_SKILL;
  k.name = name;
  k.cb = cb;
  k.ud = ud;
  rc = run(t, &k, NULL);
  if (rc != CHM_OK)
    return chm__tk_err(t, CHM_NOMEM, "out of memory registering skill '%s'",
                       name);
  return CHM_OK;
}

int chm_register_skill(chm_instance *inst, const char *name, chm_skill_cb cb,
                       void *ud) {
  chm__tk *t;
  const char *p;
  int rc = chm__tk_open(inst, &t);
  if (rc != CHM_OK)
    return rc;
  if (name == NULL || *name == '\0' || cb == NULL)
    return chm__tk_err(t, CHM_MISUSE,
                       "chm_register_skill: a name and a "
                       "callback are required");
  for (p = name; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
          (*p >= '0' && *p <= '9') || *p == '_'))
      return chm__tk_err(t, CHM_MISUSE,
                         "skill name '%s' may only hold "
                         "letters, digits and '_'",
                         name);
  return chm__tk_skill_register(t, name, cb, ud);
}
