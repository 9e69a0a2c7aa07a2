/*
** lmodule.c — the Lua module `chameleon` (require "chameleon" from plain
** lua5.4 or busted). A thin client of the public C API: every method calls
** one chm_* function and turns its JSON answer into Lua tables. Expected
** failures return nil, message, CODE; misuse (wrong argument types, a
** closed handle) raises an error.
*/
#include <string.h>

#include "chm_int.h"

#define META_MT "chameleon.meta"
#define INST_MT "chameleon.instance"

typedef struct meta_ud {
  chm_meta *m; /* NULL once closed */
} meta_ud;

typedef struct inst_ud {
  chm_instance *i; /* NULL once closed */
} inst_ud;

/* Pushes nil, msg, CODE and returns 3.   [-0, +3, m] */
static int push_fail(lua_State *L, int rc, const char *msg) {
  lua_pushnil(L);
  lua_pushstring(L, msg != NULL ? msg : chm_errstr(rc));
  lua_pushstring(L, chm_errname(rc));
  return 3;
}

/* Decodes malloc'ed JSON text into a Lua value, frees it.   [-0, +1, e] */
static void push_json(lua_State *L, char *text) {
  int bad;
  if (text == NULL) {
    lua_pushboolean(L, 1);
    return;
  }
  bad = chm__json_decode(L, text, strlen(text));
  chm_free(text);
  if (bad) lua_error(L);
}

/* Turns (rc, out, msg) into Lua results. A failing call that still
** produced a report returns nil, msg, CODE, report. */
static int finish(lua_State *L, int rc, char *out, const char *msg,
                  int as_text) {
  if (rc == CHM_OK) {
    if (as_text) {
      lua_pushstring(L, out);
      chm_free(out);
    } else {
      push_json(L, out);
    }
    return 1;
  }
  push_fail(L, rc, msg);
  if (out != NULL) {
    push_json(L, out);
    return 4;
  }
  return 3;
}

/* ---- meta-store ---------------------------------------------------------- */

static chm_meta *checkmeta(lua_State *L) {
  meta_ud *u = luaL_checkudata(L, 1, META_MT);
  if (u->m == NULL) luaL_error(L, "attempt to use a closed meta-store");
  return u->m;
}

/* chameleon.open_meta(path) -> meta | nil, err, code   [-1, +1|3, e] */
static int l_open_meta(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  meta_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
  int rc;
  u->m = NULL;
  luaL_setmetatable(L, META_MT);
  rc = chm_meta_open(path, &u->m);
  if (rc != CHM_OK) {
    int n = push_fail(L, rc, chm_meta_errmsg(u->m));
    chm_meta_close(u->m);
    u->m = NULL;
    return n;
  }
  return 1;
}

/* meta:close()   [-1, +0, -]; also __gc and __close. */
static int l_meta_close(lua_State *L) {
  meta_ud *u = luaL_checkudata(L, 1, META_MT);
  chm_meta_close(u->m);
  u->m = NULL;
  return 0;
}

/* meta:import(path) -> report | nil, err, code   [-2, +1|3, e] */
static int l_meta_import(lua_State *L) {
  chm_meta *m = checkmeta(L);
  char *out = NULL;
  int rc = chm_meta_import(m, luaL_checkstring(L, 2), &out);
  return finish(L, rc, out, chm_meta_errmsg(m), 0);
}

/* meta:validate(path) -> report | nil, err, code, report   [-2, +1|4, e] */
static int l_meta_validate(lua_State *L) {
  chm_meta *m = checkmeta(L);
  char *out = NULL;
  int rc = chm_meta_validate(m, luaL_checkstring(L, 2), &out);
  return finish(L, rc, out, chm_meta_errmsg(m), 0);
}

/* meta:list() -> {workflow...} | nil, err, code   [-1, +1|3, e] */
static int l_meta_list(lua_State *L) {
  chm_meta *m = checkmeta(L);
  char *out = NULL;
  int rc = chm_meta_list(m, &out);
  return finish(L, rc, out, chm_meta_errmsg(m), 0);
}

/* meta:show(name [, version]) -> table | nil, err, code   [-2|3, +1|3, e] */
static int l_meta_show(lua_State *L) {
  chm_meta *m = checkmeta(L);
  char *out = NULL;
  int rc = chm_meta_show(m, luaL_checkstring(L, 2),
                         (int)luaL_optinteger(L, 3, 0), &out);
  return finish(L, rc, out, chm_meta_errmsg(m), 0);
}

/* meta:export(name [, "json"|"dot" [, version]]) -> text | nil, err, code */
static int l_meta_export(lua_State *L) {
  static const char *const fmts[] = {"json", "dot", NULL};
  chm_meta *m = checkmeta(L);
  char *out = NULL;
  int fmt = luaL_checkoption(L, 3, "json", fmts);
  int rc = chm_meta_export(m, luaL_checkstring(L, 2),
                           (int)luaL_optinteger(L, 4, 0),
                           fmt == 1 ? CHM_EXPORT_DOT : CHM_EXPORT_JSON, &out);
  return finish(L, rc, out, chm_meta_errmsg(m), 1);
}

/* meta:instantiate(name, path [, {name=, version=}]) -> report | nil, ... */
static int l_meta_instantiate(lua_State *L) {
  chm_meta *m = checkmeta(L);
  const char *name = luaL_checkstring(L, 2);
  const char *path = luaL_checkstring(L, 3);
  const char *iname = NULL;
  int version = 0, rc;
  char *out = NULL;
  if (!lua_isnoneornil(L, 4)) {
    luaL_checktype(L, 4, LUA_TTABLE);
    lua_getfield(L, 4, "name");
    iname = lua_tostring(L, -1);
    lua_getfield(L, 4, "version");
    version = (int)luaL_optinteger(L, -1, 0);
  }
  rc = chm_meta_instantiate(m, name, version, path, iname, &out);
  return finish(L, rc, out, chm_meta_errmsg(m), 0);
}

/* meta:query(sql) -> rows | nil, err, code */
static int l_meta_query(lua_State *L) {
  chm_meta *m = checkmeta(L);
  char *out = NULL;
  int rc = chm_meta_query(m, luaL_checkstring(L, 2), &out);
  return finish(L, rc, out, chm_meta_errmsg(m), 0);
}

/* Reads {instructions=, deadline_ms=, memory_bytes=} at idx into lim. */
static void check_limits(lua_State *L, int idx, chm_limits *lim) {
  memset(lim, 0, sizeof *lim);
  if (lua_isnoneornil(L, idx)) return;
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_getfield(L, idx, "instructions");
  lim->instructions = (uint64_t)luaL_optinteger(L, -1, 0);
  lua_getfield(L, idx, "deadline_ms");
  lim->deadline_ms = (uint32_t)luaL_optinteger(L, -1, 0);
  lua_getfield(L, idx, "memory_bytes");
  lim->memory_bytes = (size_t)luaL_optinteger(L, -1, 0);
  lua_pop(L, 3);
}

/* meta:eval(source [, limits]) -> value | nil, err, code */
static int l_meta_eval(lua_State *L) {
  chm_meta *m = checkmeta(L);
  chm_limits lim;
  char *out = NULL;
  int rc;
  check_limits(L, 3, &lim);
  rc = chm_meta_eval(m, luaL_checkstring(L, 2), &lim, &out);
  if (rc == CHM_OK && out != NULL && strcmp(out, "null") == 0) {
    chm_free(out);
    lua_pushnil(L);
    return 1;
  }
  return finish(L, rc, out, chm_meta_errmsg(m), 0);
}

static const luaL_Reg meta_methods[] = {
    {"import", l_meta_import}, {"validate", l_meta_validate},
    {"list", l_meta_list},     {"show", l_meta_show},
    {"export", l_meta_export}, {"instantiate", l_meta_instantiate},
    {"query", l_meta_query},   {"eval", l_meta_eval},
    {"close", l_meta_close},   {NULL, NULL}};

/* ---- instance stores ----------------------------------------------------- */

static chm_instance *checkinst(lua_State *L) {
  inst_ud *u = luaL_checkudata(L, 1, INST_MT);
  if (u->i == NULL) luaL_error(L, "attempt to use a closed instance");
  return u->i;
}

/* chameleon.open_instance(path) -> instance | nil, err, code */
static int l_open_instance(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  inst_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
  int rc;
  u->i = NULL;
  luaL_setmetatable(L, INST_MT);
  rc = chm_instance_open(path, &u->i);
  if (rc != CHM_OK) {
    int n = push_fail(L, rc, chm_instance_errmsg(u->i));
    chm_instance_close(u->i);
    u->i = NULL;
    return n;
  }
  return 1;
}

static int l_inst_close(lua_State *L) {
  inst_ud *u = luaL_checkudata(L, 1, INST_MT);
  chm_instance_close(u->i);
  u->i = NULL;
  return 0;
}

/* instance:describe() -> table | nil, err, code */
static int l_inst_describe(lua_State *L) {
  chm_instance *i = checkinst(L);
  char *out = NULL;
  int rc = chm_instance_describe(i, &out);
  return finish(L, rc, out, chm_instance_errmsg(i), 0);
}

/* instance:validate() -> report | nil, err, code, report */
static int l_inst_validate(lua_State *L) {
  chm_instance *i = checkinst(L);
  char *out = NULL;
  int rc = chm_instance_validate(i, &out);
  return finish(L, rc, out, chm_instance_errmsg(i), 0);
}

/* instance:query(sql) -> rows | nil, err, code */
static int l_inst_query(lua_State *L) {
  chm_instance *i = checkinst(L);
  char *out = NULL;
  int rc = chm_instance_query(i, luaL_checkstring(L, 2), &out);
  return finish(L, rc, out, chm_instance_errmsg(i), 0);
}

/* instance:eval(source [, limits]) -> value | nil, err, code */
static int l_inst_eval(lua_State *L) {
  chm_instance *i = checkinst(L);
  chm_limits lim;
  char *out = NULL;
  int rc;
  check_limits(L, 3, &lim);
  rc = chm_instance_eval(i, luaL_checkstring(L, 2), &lim, &out);
  if (rc == CHM_OK && out != NULL && strcmp(out, "null") == 0) {
    chm_free(out);
    lua_pushnil(L);
    return 1;
  }
  return finish(L, rc, out, chm_instance_errmsg(i), 0);
}

static const luaL_Reg inst_methods[] = {
    {"describe", l_inst_describe}, {"validate", l_inst_validate},
    {"query", l_inst_query},       {"eval", l_inst_eval},
    {"close", l_inst_close},       {NULL, NULL}};

/* ---- module -------------------------------------------------------------- */

/* chameleon.clock_set_virtual(ms) / clock_advance(ms) / clock_real() /
** clock_now() -> ms */
static int l_clock_set_virtual(lua_State *L) {
  chm_clock_set_virtual((int64_t)luaL_checkinteger(L, 1));
  return 0;
}
static int l_clock_advance(lua_State *L) {
  chm_clock_advance((int64_t)luaL_checkinteger(L, 1));
  return 0;
}
static int l_clock_real(lua_State *L) {
  chm_clock_set_real();
  return 0;
}
static int l_clock_now(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)chm_clock_now());
  return 1;
}

static const luaL_Reg module_funcs[] = {
    {"open_meta", l_open_meta},
    {"open_instance", l_open_instance},
    {"clock_set_virtual", l_clock_set_virtual},
    {"clock_advance", l_clock_advance},
    {"clock_real", l_clock_real},
    {"clock_now", l_clock_now},
    {NULL, NULL}};

/* Creates a handle metatable with methods, __gc, __close, __index. */
static void new_class(lua_State *L, const char *name, const luaL_Reg *methods,
                      lua_CFunction close) {
  luaL_newmetatable(L, name);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, close);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, close);
  lua_setfield(L, -2, "__close");
  lua_pop(L, 1);
}

int luaopen_chameleon(lua_State *L);

/* luaopen_chameleon(L) -> module table   [-0, +1, m] */
int luaopen_chameleon(lua_State *L) {
  new_class(L, META_MT, meta_methods, l_meta_close);
  new_class(L, INST_MT, inst_methods, l_inst_close);
  luaL_newlib(L, module_funcs);
  chm__json_open(L);
  lua_setfield(L, -2, "json");
  lua_pushstring(L, chm_version());
  lua_setfield(L, -2, "version");
  return 1;
}
