/*
** lualib.c — the trusted side of a sandbox state: the loader of the Lua
** modules compiled into the library (lua/<name>.lua, found with
** chm__embedded_find) and the internal `chm` table those modules use.
** Trusted code runs in one environment per state, distinct from every
** sandbox environment and reachable from none. Relies on sandbox.c (the
** door, the text loader, sandbox environments), json.c, uuid.c, clock.c
** and hash.c.
*/
#include <stdio.h>
#include <string.h>

#include "chm_int.h"
#include "sandbox.h"

/* Registry keys: the addresses of these statics. */
static const char trusted_key = 0; /* the trusted environment */
static const char chm_key = 0;     /* the chm table */
static const char modules_key = 0; /* module name -> its result */
static const char loading = 0;     /* lightuserdata: module being loaded */

/* A module's top-level code runs in a nested door with no limits of its
** own: it gets whatever the enclosing door has left. */
static const chm_limits module_limits = {UINT64_MAX, UINT32_MAX, 0};

/* ===================================================================== */
/* The chm table                                                          */
/* ===================================================================== */

/* chm.uuid() -> a new UUIDv7 string   [-0, +1, m] */
static int l_uuid(lua_State *L) {
  char out[37];
  chm__uuid7(out);
  lua_pushstring(L, out);
  return 1;
}

/* chm.now() -> engine clock, ms since the epoch   [-0, +1, -] */
static int l_now(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)chm__now_ms());
  return 1;
}

/* chm.sandbox_env() -> a fresh sandbox environment   [-0, +1, m] */
static int l_sandbox_env(lua_State *L) {
  chm__push_sandbox_env(L);
  return 1;
}

/* chm.load(src, chunkname, env) -> f | nil, err   [-3, +1|2, m]
** Text only; env (a table) becomes the chunk's _ENV. */
static int l_load(lua_State *L) {
  size_t len;
  const char *src = luaL_checklstring(L, 1, &len);
  const char *name = luaL_optstring(L, 2, "=(load)");
  luaL_checktype(L, 3, LUA_TTABLE);
  if (chm__load_text(L, src, len, name, 3) != CHM_OK) {
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  return 1;
}

/* The non-negative integer limits[name], or 0 when absent. */
static lua_Integer limit_field(lua_State *L, const char *name) {
  int ok;
  lua_Integer v;
  if (lua_getfield(L, 1, name) == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  v = lua_tointegerx(L, -1, &ok);
  if (!ok || v < 0)
    return luaL_error(L, "chm.run: limits.%s must be a non-negative integer",
                      name);
  lua_pop(L, 1);
  return v;
}

/* chm.run(limits | nil, f, ...) -> true, ... | false, err, code
** [-n, +r, e] Call f(...) through the door under limits {instructions,
** deadline_ms, memory_bytes} (absent fields: defaults; always tightened by
** the door this runs in). code is "SCRIPT", "BUDGET" or "MEMORY". */
static int l_run(lua_State *L) {
  chm_limits lim = {0, 0, 0};
  int rc;
  if (!lua_isnoneornil(L, 1)) {
    lua_Integer ms;
    luaL_checktype(L, 1, LUA_TTABLE);
    lim.instructions = (uint64_t)limit_field(L, "instructions");
    ms = limit_field(L, "deadline_ms");
    lim.deadline_ms = ms > (lua_Integer)UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
    lim.memory_bytes = (size_t)limit_field(L, "memory_bytes");
  }
  luaL_checkany(L, 2);
  rc = chm__pcall(L, lua_gettop(L) - 2, LUA_MULTRET, &lim);
  lua_pushboolean(L, rc == CHM_OK);
  lua_replace(L, 1);
  if (rc == CHM_OK) return lua_gettop(L);
  lua_pushstring(L, chm_errname(rc));
  return 3;
}

/* chm.callerline([level]) -> line, source | nil   [-0..1, +1|2, -]
** The current line of the function `level` levels above the caller of
** callerline (1, the default, is that caller itself), and its short
** source name. */
static int l_callerline(lua_State *L) {
  lua_Debug ar;
  lua_Integer level = luaL_optinteger(L, 1, 1);
  if (level < 0 || level > 1000000 || !lua_getstack(L, (int)level, &ar)) {
    lua_pushnil(L);
    return 1;
  }
  lua_getinfo(L, "Sl", &ar);
  lua_pushinteger(L, ar.currentline);
  lua_pushstring(L, ar.short_src);
  return 2;
}

/* chm.funcinfo(f) -> {source, short_src, what, linedefined,
** lastlinedefined, upvalues = {names...}}   [-1, +1, m] */
static int l_funcinfo(lua_State *L) {
  lua_Debug ar;
  const char *name;
  int i;
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_settop(L, 1);
  lua_pushvalue(L, 1);
  lua_getinfo(L, ">S", &ar);
  lua_createtable(L, 0, 6);
  lua_pushstring(L, ar.source);
  lua_setfield(L, -2, "source");
  lua_pushstring(L, ar.short_src);
  lua_setfield(L, -2, "short_src");
  lua_pushstring(L, ar.what);
  lua_setfield(L, -2, "what");
  lua_pushinteger(L, ar.linedefined);
  lua_setfield(L, -2, "linedefined");
  lua_pushinteger(L, ar.lastlinedefined);
  lua_setfield(L, -2, "lastlinedefined");
  lua_newtable(L);
  for (i = 1; (name = lua_getupvalue(L, 1, i)) != NULL; i++) {
    lua_pop(L, 1); /* the value: only names are reported */
    lua_pushstring(L, name);
    lua_rawseti(L, -2, i);
  }
  lua_setfield(L, -2, "upvalues");
  return 1;
}

/* require(name) -> module   [-1, +1, e]: the trusted environment's. */
static int l_require(lua_State *L) {
  chm__require(L, luaL_checkstring(L, 1));
  return 1;
}

/* ===================================================================== */
/* The trusted environment                                                */
/* ===================================================================== */

/* Base functions of the trusted environment: the plain ones, because the
** modules are ours. Still no dofile/loadfile/load/print: trusted code
** loads through chm.load and reports through return values. */
static const char *const trusted_base[] = {
    "assert", "error",  "ipairs",   "next",         "pairs",        "pcall",
    "xpcall", "select", "tonumber", "tostring",     "type",         "rawequal",
    "rawlen", "rawget", "rawset",   "setmetatable", "getmetatable", NULL};

/* Libraries it gets a copy of (the state's bounded ones). */
static const char *const trusted_libs[] = {"string", "table",     "math",
                                           "utf8",   "coroutine", NULL};

/* push_trusted(L)   [-0, +1, m]
** Push the trusted environment, making it (with the chm table and the
** module cache) on first use. */
static void push_trusted(lua_State *L) {
  static const luaL_Reg chm_funcs[] = {{"uuid", l_uuid},
                                       {"now", l_now},
                                       {"sha256", chm__l_sha256},
                                       {"sandbox_env", l_sandbox_env},
                                       {"load", l_load},
                                       {"run", l_run},
                                       {"callerline", l_callerline},
                                       {"funcinfo", l_funcinfo},
                                       {NULL, NULL}};
  int env, loaded, i;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &trusted_key) == LUA_TTABLE) return;
  lua_pop(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  loaded = lua_gettop(L);
  lua_createtable(L, 0, 32);
  env = lua_gettop(L);

  lua_getfield(L, loaded, LUA_GNAME);
  for (i = 0; trusted_base[i] != NULL; i++) {
    lua_getfield(L, -1, trusted_base[i]);
    lua_setfield(L, env, trusted_base[i]);
  }
  lua_pop(L, 1);
  for (i = 0; trusted_libs[i] != NULL; i++) {
    lua_newtable(L);
    lua_getfield(L, loaded, trusted_libs[i]);
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, -5);
    }
    lua_pop(L, 1);
    lua_setfield(L, env, trusted_libs[i]);
  }
  lua_pushliteral(L, LUA_VERSION);
  lua_setfield(L, env, "_VERSION");
  lua_pushcfunction(L, l_require);
  lua_setfield(L, env, "require");

  luaL_newlib(L, chm_funcs);
  chm__json_open(L);
  lua_setfield(L, -2, "json");
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &chm_key);
  lua_setfield(L, env, "chm");

  lua_newtable(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &modules_key);
  lua_pushvalue(L, env);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &trusted_key);
  lua_remove(L, loaded); /* leaves env */
}

int chm__open_internals(lua_State *L) {
  push_trusted(L);
  lua_pop(L, 1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &chm_key);
  return 1;
}

/* ===================================================================== */
/* Modules                                                                */
/* ===================================================================== */

/* A module name is a plain identifier: it becomes a path. */
static int valid_name(const char *name) {
  size_t n = 0;
  for (; name[n] != '\0'; n++)
    if (!(name[n] == '_' || (name[n] >= 'a' && name[n] <= 'z') ||
          (name[n] >= 'A' && name[n] <= 'Z') ||
          (name[n] >= '0' && name[n] <= '9')))
      return 0;
  return n > 0 && n <= 64;
}

void chm__require(lua_State *L, const char *name) {
  char path[96];
  const chm__blob *blob;
  int top = lua_gettop(L), env, mods;
  push_trusted(L);
  env = lua_gettop(L);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &modules_key);
  mods = lua_gettop(L);
  if (lua_getfield(L, mods, name) != LUA_TNIL) {
    if (lua_touserdata(L, -1) == (void *)&loading)
      luaL_error(L, "module '%s' requires itself (circular require)", name);
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
    return;
  }
  lua_pop(L, 1);
  if (!valid_name(name)) luaL_error(L, "invalid module name '%s'", name);
  snprintf(path, sizeof path, "lua/%s.lua", name);
  blob = chm__embedded_find(path);
  if (blob == NULL)
    luaL_error(L, "module '%s' not found: no %s is embedded in the library",
               name, path);
  lua_pushfstring(L, "@%s", path);
  if (chm__load_text(L, blob->data, blob->len, lua_tostring(L, -1), env) !=
      CHM_OK)
    lua_error(L);
  lua_pushlightuserdata(L, (void *)&loading);
  lua_setfield(L, mods, name);
  lua_pushstring(L, name);
  if (chm__pcall(L, 1, 1, &module_limits) != CHM_OK) {
    /* Forget the mark so a later require tries again, and re-raise the
    ** first part of the message: the enclosing door adds a traceback. */
    const char *msg = lua_tostring(L, -1);
    const char *cut = strstr(msg, "\nstack traceback:");
    lua_pushnil(L);
    lua_setfield(L, mods, name);
    if (cut != NULL) lua_pushlstring(L, msg, (size_t)(cut - msg));
    lua_error(L);
  }
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushboolean(L, 1);
  }
  lua_pushvalue(L, -1);
  lua_setfield(L, mods, name);
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
}
