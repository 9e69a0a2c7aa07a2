/*
** repl.c — the library side of `chameleon repl`: evaluates one chunk of
** operator input in a persistent sandbox environment of the handle's own
** lua_State, with the engine bound as plain functions (genesis, checkout,
** submit, token, queues, run, sql...). Each binding calls the public API on
** the same handle, re-entering the door (nested doors are allowed); its
** JSON answer is decoded into tables. Evaluation and printing are trusted
** Lua (lua/repl.lua, lua/pretty.lua). When a chunk fails, what it printed
** before failing is still handed back, so the caller can show it first.
*/
#include <stdlib.h>
#include <string.h>

#include "chm_int.h"
#include "core.h"

static const char bindings_key = 0; /* registry: the bindings table */

/* Limits of the outer (trusted) door around one REPL chunk. */
static const chm_limits repl_limits = {4000000000u, 600000, 0};

/* ---- helpers for bindings -------------------------------------------- */

typedef const char *(*errmsg_fn)(const void *h);

static const char *inst_msg(const void *h) {
  return chm_instance_errmsg((const chm_instance *)h);
}
static const char *meta_msg(const void *h) {
  return chm_meta_errmsg((const chm_meta *)h);
}

/* Turns (rc, out) into Lua results: decoded JSON (or `as_text` string, or
** true when out is NULL), else nil, message, CODE.   [-0, +1|3, e] */
static int answer(lua_State *L, int rc, char *out, errmsg_fn msg,
                  const void *h, int as_text) {
  if (rc != CHM_OK) {
    chm_free(out);
    lua_pushnil(L);
    lua_pushstring(L, msg(h));
    lua_pushstring(L, chm_errname(rc));
    return 3;
  }
  if (out == NULL) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if (as_text) {
    lua_pushstring(L, out);
    chm_free(out);
    return 1;
  }
  rc = chm__json_decode(L, out, strlen(out));
  chm_free(out);
  if (rc != 0) return lua_error(L);
  return 1;
}

/* JSON text of the argument at idx (a table or scalar), as a string on
** the stack top.   [-0, +1, e] */
static const char *json_arg(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) {
    lua_pushliteral(L, "{}");
  } else if (chm__json_encode(L, idx, 0) != 0) {
    lua_error(L);
  }
  return lua_tostring(L, -1);
}

static chm_instance *I(lua_State *L) {
  return (chm_instance *)lua_touserdata(L, lua_upvalueindex(1));
}
static chm_meta *M(lua_State *L) {
  return (chm_meta *)lua_touserdata(L, lua_upvalueindex(1));
}

#define IANS(rc, out, text) answer(L, (rc), (out), inst_msg, I(L), (text))
#define MANS(rc, out, text) answer(L, (rc), (out), meta_msg, M(L), (text))

/* ---- instance bindings ------------------------------------------------ */

/* genesis(attrs [, {workflow=, actor=}]) -> uow_id | nil, err, code */
static int b_genesis(lua_State *L) {
  const char *wf = NULL, *actor = NULL, *attrs;
  char *id = NULL;
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "workflow");
    wf = lua_tostring(L, -1);
    lua_getfield(L, 2, "actor");
    actor = lua_tostring(L, -1);
  }
  attrs = json_arg(L, 1);
  int rc = chm_genesis(I(L), wf, attrs, actor, &id);
  return IANS(rc, id, 1);
}

/* checkout(actor, role [, interaction]) -> token | nil, err, code */
static int b_checkout(lua_State *L) {
  char *out = NULL;
  int rc = chm_checkout(I(L), luaL_checkstring(L, 1), luaL_checkstring(L, 2),
                        luaL_optstring(L, 3, NULL), &out);
  return IANS(rc, out, 0);
}

/* heartbeat(uow, actor) -> true | nil, err, code */
static int b_heartbeat(lua_State *L) {
  int rc = chm_heartbeat(I(L), luaL_checkstring(L, 1),
                            luaL_checkstring(L, 2));
  return IANS(rc, NULL, 0);
}

/* submit(uow, actor, version, changes) -> result | nil, err, code */
static int b_submit(lua_State *L) {
  char *out = NULL;
  const char *changes = json_arg(L, 4);
  int rc = chm_submit(I(L), luaL_checkstring(L, 1), luaL_checkstring(L, 2),
                      (int64_t)luaL_checkinteger(L, 3), changes, &out);
  return IANS(rc, out, 0);
}

/* fail(uow, actor, reason) -> true | nil, err, code */
static int b_fail(lua_State *L) {
  int rc = chm_fail(I(L), luaL_checkstring(L, 1), luaL_checkstring(L, 2),
                       luaL_checkstring(L, 3));
  return IANS(rc, NULL, 0);
}

/* pause([uow, actor]) / resume([uow, actor]): a token, or the instance */
static int b_pause(lua_State *L) {
  int rc;
  if (lua_isnoneornil(L, 1)) {
    rc = chm_instance_pause(I(L));
    return IANS(rc, NULL, 0);
  }
  rc = chm_pause(I(L), luaL_checkstring(L, 1), luaL_checkstring(L, 2));
  return IANS(rc, NULL, 0);
}
static int b_resume(lua_State *L) {
  int rc;
  if (lua_isnoneornil(L, 1)) {
    rc = chm_instance_resume(I(L));
    return IANS(rc, NULL, 0);
  }
  rc = chm_resume(I(L), luaL_checkstring(L, 1), luaL_checkstring(L, 2));
  return IANS(rc, NULL, 0);
}

/* clarify(uow, actor, text) -> true | nil, err, code */
static int b_clarify(lua_State *L) {
  int rc = chm_clarify(I(L), luaL_checkstring(L, 1), luaL_checkstring(L, 2),
                          luaL_checkstring(L, 3));
  return IANS(rc, NULL, 0);
}

/* sweep() -> report */
static int b_sweep(lua_State *L) {
  char *out = NULL;
  int rc = chm_sweep(I(L), &out);
  return IANS(rc, out, 0);
}

/* run([{batch=, max_steps=}]) -> report */
static int b_run(lua_State *L) {
  chm_run_opts o = {0, 0};
  char *out = NULL;
  if (lua_istable(L, 1)) {
    lua_getfield(L, 1, "batch");
    o.batch = (int)luaL_optinteger(L, -1, 0);
    lua_getfield(L, 1, "max_steps");
    o.max_steps = (int)luaL_optinteger(L, -1, 0);
  }
  int rc = chm_run(I(L), &o, &out);
  return IANS(rc, out, 0);
}

/* token(uow) / history(uow) / attributes(uow) -> table */
static int b_token(lua_State *L) {
  char *out = NULL;
  int rc = chm_token_get(I(L), luaL_checkstring(L, 1), &out);
  return IANS(rc, out, 0);
}
static int b_history(lua_State *L) {
  char *out = NULL;
  int rc = chm_token_history(I(L), luaL_checkstring(L, 1), &out);
  return IANS(rc, out, 0);
}
static int b_attributes(lua_State *L) {
  char *out = NULL;
  int rc = chm_token_attributes(I(L), luaL_checkstring(L, 1), &out);
  return IANS(rc, out, 0);
}

/* queues() / tokens([status]) / verify() / describe() / validate() */
static int b_queues(lua_State *L) {
  char *out = NULL;
  int rc = chm_queues(I(L), &out);
  return IANS(rc, out, 0);
}
static int b_tokens(lua_State *L) {
  char *out = NULL;
  int rc = chm_tokens(I(L), luaL_optstring(L, 1, NULL), &out);
  return IANS(rc, out, 0);
}
static int b_verify(lua_State *L) {
  char *out = NULL;
  int rc = chm_verify(I(L), &out);
  return IANS(rc, out, 0);
}
static int b_describe(lua_State *L) {
  char *out = NULL;
  int rc = chm_instance_describe(I(L), &out);
  return IANS(rc, out, 0);
}
static int b_ivalidate(lua_State *L) {
  char *out = NULL;
  int rc = chm_instance_validate(I(L), &out);
  return IANS(rc, out, 0);
}

/* sql(query) -> rows (read-only) */
static int b_isql(lua_State *L) {
  char *out = NULL;
  int rc = chm_instance_query(I(L), luaL_checkstring(L, 1), &out);
  return IANS(rc, out, 0);
}

/* clock() -> ms; clock_set(ms); clock_advance(ms); clock_real() */
static int b_clock(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)chm_clock_now());
  return 1;
}
/* Out of range: raise, naming the value and the range the clock takes. */
static int clock_refused(lua_State *L, const char *fn, lua_Integer ms) {
  return luaL_error(L, "%s(%I): the clock would leave its range %I..%I ms "
                       "(years 1970 to 9999); the clock is unchanged",
                    fn, ms, (lua_Integer)CHM_CLOCK_MIN_MS,
                    (lua_Integer)CHM_CLOCK_MAX_MS);
}
static int b_clock_set(lua_State *L) {
  lua_Integer ms = luaL_checkinteger(L, 1);
  if (chm_clock_set_virtual((int64_t)ms) != CHM_OK)
    return clock_refused(L, "clock_set", ms);
  return 0;
}
static int b_clock_advance(lua_State *L) {
  lua_Integer ms = luaL_checkinteger(L, 1);
  if (chm_clock_advance((int64_t)ms) != CHM_OK)
    return clock_refused(L, "clock_advance", ms);
  return 0;
}
static int b_clock_real(lua_State *L) {
  chm_clock_set_real();
  return 0;
}

static const luaL_Reg instance_bindings[] = {
    {"genesis", b_genesis},     {"checkout", b_checkout},
    {"heartbeat", b_heartbeat}, {"submit", b_submit},
    {"fail", b_fail},           {"pause", b_pause},
    {"resume", b_resume},       {"clarify", b_clarify},
    {"sweep", b_sweep},         {"run", b_run},
    {"token", b_token},         {"history", b_history},
    {"attributes", b_attributes}, {"queues", b_queues},
    {"tokens", b_tokens},       {"verify", b_verify},
    {"describe", b_describe},   {"validate", b_ivalidate},
    {"sql", b_isql},            {"clock", b_clock},
    {"clock_set", b_clock_set}, {"clock_advance", b_clock_advance},
    {"clock_real", b_clock_real}, {NULL, NULL}};

/* ---- meta-store bindings ---------------------------------------------- */

static int b_import(lua_State *L) {
  char *out = NULL;
  int rc = chm_meta_import(M(L), luaL_checkstring(L, 1), &out);
  return MANS(rc, out, 0);
}
static int b_mvalidate(lua_State *L) {
  char *out = NULL;
  int rc = chm_meta_validate(M(L), luaL_checkstring(L, 1), &out);
  return MANS(rc, out, 0);
}
static int b_list(lua_State *L) {
  char *out = NULL;
  int rc = chm_meta_list(M(L), &out);
  return MANS(rc, out, 0);
}
static int b_show(lua_State *L) {
  char *out = NULL;
  int rc = chm_meta_show(M(L), luaL_checkstring(L, 1),
                            (int)luaL_optinteger(L, 2, 0), &out);
  return MANS(rc, out, 0);
}
static int b_export(lua_State *L) {
  static const char *const fmts[] = {"json", "dot", NULL};
  char *out = NULL;
  int fmt = luaL_checkoption(L, 2, "json", fmts);
  int rc = chm_meta_export(M(L), luaL_checkstring(L, 1),
                              (int)luaL_optinteger(L, 3, 0),
                              fmt ? CHM_EXPORT_DOT : CHM_EXPORT_JSON, &out);
  return MANS(rc, out, 1);
}
static int b_instantiate(lua_State *L) {
  char *out = NULL;
  int rc = chm_meta_instantiate(M(L), luaL_checkstring(L, 1), 0,
                                   luaL_checkstring(L, 2),
                                   luaL_optstring(L, 3, NULL), &out);
  return MANS(rc, out, 0);
}
static int b_msql(lua_State *L) {
  char *out = NULL;
  int rc = chm_meta_query(M(L), luaL_checkstring(L, 1), &out);
  return MANS(rc, out, 0);
}

static const luaL_Reg meta_bindings[] = {
    {"import", b_import},   {"validate", b_mvalidate},
    {"list", b_list},       {"show", b_show},
    {"export", b_export},   {"instantiate", b_instantiate},
    {"sql", b_msql},        {"clock", b_clock},
    {NULL, NULL}};

/* ---- evaluation ------------------------------------------------------- */

/* emit(text): hands one printed line to the handle's sink (upvalue: the
** core).   [-1, +0, -] */
static int emit(lua_State *L) {
  chm__core *c = lua_touserdata(L, lua_upvalueindex(1));
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  if (c->out_fn != NULL) c->out_fn(c->out_ud, s, len);
  return 0;
}

/* repl_body(handle, kind, fn, line, core) -> text | nil, msg, code
** [-5, +3, e]. core (light userdata) carries the print sink, if any. */
static int repl_body(lua_State *L) {
  chm__core *c = lua_touserdata(L, 5);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &bindings_key);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, 1); /* the handle, as every binding's upvalue */
    luaL_setfuncs(L, lua_tointeger(L, 2) == CHM__INSTANCE ? instance_bindings
                                                          : meta_bindings,
                  1);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &bindings_key);
  }
  chm__require(L, "repl");
  lua_getfield(L, -1, lua_tostring(L, 3));
  lua_pushvalue(L, -3); /* bindings */
  lua_pushvalue(L, 4);  /* line (nil for names) */
  if (c != NULL && c->out_fn != NULL) {
    lua_pushlightuserdata(L, c);
    lua_pushcclosure(L, emit, 1);
  } else {
    lua_pushnil(L); /* collect what print writes */
  }
  lua_call(L, 3, 3);
  if (lua_istable(L, -3)) { /* names: encode */
    if (chm__json_encode(L, -3, 0) != 0) return lua_error(L);
    lua_replace(L, -4);
  }
  return 3;
}

/* call(c, handle, fn, line) -> status of the door around lua/repl.lua's
** fn; pushes its three results (or the error message).   [-0, +3|1, -] */
static int call(chm__core *c, void *handle, const char *fn,
                const char *line) {
  lua_State *L = c->L;
  chm__sandbox_clear_interrupt(L);
  lua_pushcfunction(L, repl_body);
  lua_pushlightuserdata(L, handle);
  lua_pushinteger(L, c->kind);
  lua_pushstring(L, fn);
  if (line != NULL)
    lua_pushstring(L, line);
  else
    lua_pushnil(L);
  lua_pushlightuserdata(L, c);
  return chm__pcall(L, 5, 3, &repl_limits);
}

/* printed(c, handle) -> what print wrote during the chunk that just failed
** (malloc'ed), or NULL for nothing. A second door, so that output printed
** before a kill (Ctrl-C, budget) that also stopped the first one is not
** lost. */
static char *printed(chm__core *c, void *handle) {
  lua_State *L = c->L;
  int top = lua_gettop(L);
  size_t len = 0;
  const char *s = NULL;
  char *copy = NULL;
  if (call(c, handle, "printed", NULL) == CHM_OK)
    s = lua_tolstring(L, -3, &len);
  if (s != NULL && len > 0 && (copy = malloc(len + 1)) != NULL)
    memcpy(copy, s, len + 1);
  lua_settop(L, top);
  return copy;
}

int chm__repl(chm__core *c, void *handle, const char *fn, const char *line,
              char **out) {
  lua_State *L = c->L;
  int top = lua_gettop(L), rc;
  *out = NULL;
  rc = call(c, handle, fn, line);
  if (!sqlite3_get_autocommit(c->db))
    sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
  if (rc != CHM_OK) {
    chm__core_seterr(c, rc, "%s", lua_tostring(L, -1));
  } else if (lua_isnil(L, -3)) {
    const char *code = lua_tostring(L, -1);
    rc = CHM_SCRIPT;
    if (code != NULL) {
      int i;
      for (i = 0; i < CHM__STATUS_COUNT; i++)
        if (strcmp(chm_errname(i), code) == 0) rc = i;
    }
    chm__core_seterr(c, rc, "%s", lua_tostring(L, -2));
  } else {
    size_t len;
    const char *s = lua_tolstring(L, -3, &len);
    *out = malloc(len + 1);
    if (*out == NULL) {
      rc = chm__core_seterr(c, CHM_NOMEM, "out of memory");
    } else {
      memcpy(*out, s, len + 1);
      chm__core_seterr(c, CHM_OK, "ok");
    }
  }
  lua_settop(L, top);
  if (rc == CHM_MEMORY) lua_gc(L, LUA_GCCOLLECT);
  if (rc != CHM_OK && rc != CHM_INCOMPLETE && strcmp(fn, "eval") == 0)
    *out = printed(c, handle);
  return rc;
}
