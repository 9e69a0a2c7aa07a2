/*
** lmodule.c — the Lua module `chameleon` (require "chameleon" from plain
** lua5.4 or busted). A thin client of the public C API: every method calls
** one chm_* function, passes tables in as canonical JSON and turns the JSON
** answer into Lua tables. Expected failures return nil, message, CODE;
** misuse (wrong argument types, a closed handle, CHM_MISUSE) raises. Skills
** registered from Lua are functions of the HOST state, called back by the
** engine through one C trampoline (see "Skills"); expression functions
** likewise (see "Expression functions"). Reference: docs/lua-api.md.
*/
#include <stdlib.h>
#include <string.h>

#include "chm_int.h"

#define META_MT "chameleon.meta"
#define INST_MT "chameleon.instance"

typedef struct meta_ud {
  chm_meta *m; /* NULL once closed */
} meta_ud;

typedef struct inst_ud inst_ud;

/* One host function registered from Lua — a skill (steps call it with one
** argument, during inst:run()) or an expression function (conditions call
** it with a list of arguments, during any call that judges them): the `ud`
** the engine passes back to host_cb. malloc'ed, listed in its instance
** and freed after the engine handle is closed (the engine keeps the
** pointer until then). The Lua function itself lives in the instance
** userdata's user value `slot` (a table name -> function), so a function
** that captures its instance does not keep it alive forever as a registry
** reference would. */
enum { SKILLS = 1, FUNCTIONS = 2 }; /* user value slots of an instance */

typedef struct hostfn {
  struct hostfn *next; /* next host function of the same instance */
  inst_ud *owner;      /* the instance userdata (does not move) */
  int slot;            /* SKILLS or FUNCTIONS */
  char name[];         /* the name steps or conditions call */
} hostfn;

struct inst_ud {
  chm_instance *i; /* NULL once closed */
  lua_State *L;    /* host thread inside inst:run() or a host expression
                      function, else NULL (busy flag) */
  lua_State *caller; /* host thread of the latest call on the handle */
  hostfn *hosts;     /* skills and expression functions registered here */
};

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
  if (bad)
    lua_error(L);
}

/* ---- argument checks ----------------------------------------------------- */

/* Every function of the module and every method of a handle is registered
** as a closure with two upvalues: its name and whether it is a method.
** Argument errors name the function from those, not from lua_getinfo,
** which cannot name a function reached through pcall(inst.genesis, ...),
** a tail call or a local alias and would print '?'. A method's self is
** argument 0, as in luaL_argerror: "bad argument #1 to 'genesis' (table
** expected, got string)", "calling 'genesis' on bad self". */

/* Raises "bad argument #N to 'NAME' (msg)".   [-0, +0, v] */
static int arg_error(lua_State *L, int arg, const char *msg) {
  const char *name = lua_tostring(L, lua_upvalueindex(1));
  if (name == NULL) return luaL_argerror(L, arg, msg); /* __gc, __close */
  if (lua_toboolean(L, lua_upvalueindex(2))) {
    if (--arg == 0)
      return luaL_error(L, "calling '%s' on bad self (%s)", name, msg);
  }
  return luaL_error(L, "bad argument #%d to '%s' (%s)", arg, name, msg);
}

/* Raises "TYPE expected, got TYPENAME" for the argument at arg. */
static int arg_type_error(lua_State *L, int arg, const char *tname) {
  const char *got = luaL_typename(L, arg);
  if (luaL_getmetafield(L, arg, "__name") == LUA_TSTRING)
    got = lua_tostring(L, -1);
  return arg_error(L, arg, lua_pushfstring(L, "%s expected, got %s", tname,
                                           got));
}

static void arg_type(lua_State *L, int arg, int t) {
  if (lua_type(L, arg) != t) arg_type_error(L, arg, lua_typename(L, t));
}

static const char *arg_lstring(lua_State *L, int arg, size_t *len) {
  const char *s = lua_tolstring(L, arg, len);
  if (s == NULL) arg_type_error(L, arg, "string");
  return s;
}

static const char *arg_string(lua_State *L, int arg) {
  return arg_lstring(L, arg, NULL);
}

static const char *arg_optstring(lua_State *L, int arg, const char *def) {
  return lua_isnoneornil(L, arg) ? def : arg_string(L, arg);
}

static lua_Integer arg_integer(lua_State *L, int arg) {
  int isnum;
  lua_Integer v = lua_tointegerx(L, arg, &isnum);
  if (!isnum) {
    if (lua_isnumber(L, arg))
      arg_error(L, arg, "number has no integer representation");
    else
      arg_type_error(L, arg, "number");
  }
  return v;
}

static lua_Integer arg_optinteger(lua_State *L, int arg, lua_Integer def) {
  return lua_isnoneornil(L, arg) ? def : arg_integer(L, arg);
}

static int arg_option(lua_State *L, int arg, const char *def,
                      const char *const lst[]) {
  const char *name = def != NULL ? arg_optstring(L, arg, def)
                                 : arg_string(L, arg);
  int i;
  for (i = 0; lst[i]; i++)
    if (strcmp(lst[i], name) == 0) return i;
  return arg_error(L, arg, lua_pushfstring(L, "invalid option '%s'", name));
}

static void *arg_udata(lua_State *L, int arg, const char *tname) {
  void *p = luaL_testudata(L, arg, tname);
  if (p == NULL) arg_type_error(L, arg, tname);
  return p;
}

/* Turns (rc, out, msg) into Lua results. A failing call that still
** produced a report returns nil, msg, CODE, report. */
static int finish(lua_State *L, int rc, char *out, const char *msg,
                  int as_text) {
  if (rc == CHM_MISUSE) { /* a programming error: raise, as for bad args */
    chm_free(out);
    return luaL_error(L, "%s", msg != NULL ? msg : chm_errstr(rc));
  }
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

/* ---- option tables ------------------------------------------------------- */

/* Option tables ({instructions=...}, {batch=...}) are checked by name: a
** wrong value or an unknown key raises an error naming the function and
** the option ("eval: option 'instructions' must be a positive integer, got
** string"), never a stack index. */

/* Raises unless the value at idx is nil or a table whose keys are all in
** `known` (NULL-terminated). Returns 1 when a table is there.
**   [-0, +0, v] */
static int check_options(lua_State *L, int idx, const char *fn,
                         const char *const *known) {
  if (lua_isnoneornil(L, idx))
    return 0;
  if (!lua_istable(L, idx))
    return luaL_error(L, "%s: options must be a table, got %s", fn,
                      luaL_typename(L, idx));
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    const char *const *k = known;
    lua_pop(L, 1); /* the value */
    if (lua_type(L, -1) == LUA_TSTRING)
      for (; *k != NULL; k++)
        if (strcmp(*k, lua_tostring(L, -1)) == 0)
          break;
    if (lua_type(L, -1) != LUA_TSTRING || *k == NULL) {
      const char *key = luaL_tolstring(L, -1, NULL); /* [key, name] */
      luaL_Buffer b;
      luaL_buffinit(L, &b);
      for (k = known; *k != NULL; k++) {
        luaL_addstring(&b, k == known ? "" : ", ");
        luaL_addstring(&b, *k);
      }
      luaL_pushresult(&b); /* [key, name, list] */
      return luaL_error(L, "%s: unknown option '%s' (known: %s)", fn, key,
                        lua_tostring(L, -1));
    }
  }
  return 1;
}

/* The integer option `key` of the options table at idx, at least `min`
** (0 or 1), or 0 when absent. Raises naming fn and key.   [-0, +0, v] */
static lua_Integer opt_int(lua_State *L, int idx, const char *fn,
                           const char *key, lua_Integer min,
                           lua_Integer max) {
  lua_Integer v;
  int isnum;
  lua_getfield(L, idx, key);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  v = lua_tointegerx(L, -1, &isnum);
  if (!isnum || v < min)
    return luaL_error(L, "%s: option '%s' must be a %s integer, got %s", fn,
                      key, min > 0 ? "positive" : "non-negative",
                      lua_type(L, -1) == LUA_TNUMBER
                          ? luaL_tolstring(L, -1, NULL)
                          : luaL_typename(L, -1));
  if (v > max)
    return luaL_error(L, "%s: option '%s' must be at most %I, got %I", fn,
                      key, (LUAI_UACINT)max, (LUAI_UACINT)v);
  lua_pop(L, 1);
  return v;
}

/* The string option `key` of the options table at idx, or NULL when
** absent. The value stays on the stack (it anchors the string).
**   [-0, +1, v] */
static const char *opt_str(lua_State *L, int idx, const char *fn,
                           const char *key) {
  lua_getfield(L, idx, key);
  if (lua_isnil(L, -1))
    return NULL;
  if (lua_type(L, -1) != LUA_TSTRING)
    luaL_error(L, "%s: option '%s' must be a string, got %s", fn, key,
               luaL_typename(L, -1));
  return lua_tostring(L, -1);
}

/* ---- meta-store ---------------------------------------------------------- */

static chm_meta *checkmeta(lua_State *L) {
  meta_ud *u = arg_udata(L, 1, META_MT);
  if (u->m == NULL)
    luaL_error(L, "attempt to use a closed meta-store");
  return u->m;
}

/* chameleon.open_meta(path) -> meta | nil, err, code   [-1, +1|3, e] */
static int l_open_meta(lua_State *L) {
  const char *path = arg_string(L, 1);
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
  meta_ud *u = arg_udata(L, 1, META_MT);
  chm_meta_close(u->m);
  u->m = NULL;
  return 0;
}

/* meta:import(path) -> report | nil, err, code   [-2, +1|3, e] */
static int l_meta_import(lua_State *L) {
  chm_meta *m = checkmeta(L);
  char *out = NULL;
  int rc = chm_meta_import(m, arg_string(L, 2), &out);
  return finish(L, rc, out, chm_meta_errmsg(m), 0);
}

/* meta:validate(path) -> report | nil, err, code, report   [-2, +1|4, e] */
static int l_meta_validate(lua_State *L) {
  chm_meta *m = checkmeta(L);
  char *out = NULL;
  int rc = chm_meta_validate(m, arg_string(L, 2), &out);
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
  int rc = chm_meta_show(m, arg_string(L, 2),
                         (int)arg_optinteger(L, 3, 0), &out);
  return finish(L, rc, out, chm_meta_errmsg(m), 0);
}

/* meta:export(name [, "json"|"dot" [, version]]) -> text | nil, err, code */
static int l_meta_export(lua_State *L) {
  static const char *const fmts[] = {"json", "dot", NULL};
  chm_meta *m = checkmeta(L);
  char *out = NULL;
  int fmt = arg_option(L, 3, "json", fmts);
  int rc =
      chm_meta_export(m, arg_string(L, 2), (int)arg_optinteger(L, 4, 0),
                      fmt == 1 ? CHM_EXPORT_DOT : CHM_EXPORT_JSON, &out);
  return finish(L, rc, out, chm_meta_errmsg(m), 1);
}

/* meta:instantiate(name, path [, {name=, version=}]) -> report | nil, ... */
static int l_meta_instantiate(lua_State *L) {
  chm_meta *m = checkmeta(L);
  const char *name = arg_string(L, 2);
  const char *path = arg_string(L, 3);
  const char *iname = NULL;
  int version = 0, rc;
  char *out = NULL;
  static const char *const known[] = {"name", "version", NULL};
  lua_settop(L, 4);
  if (check_options(L, 4, "instantiate", known)) {
    iname = opt_str(L, 4, "instantiate", "name");
    version = (int)opt_int(L, 4, "instantiate", "version", 0, 0x7fffffff);
  }
  rc = chm_meta_instantiate(m, name, version, path, iname, &out);
  return finish(L, rc, out, chm_meta_errmsg(m), 0);
}

/* meta:guide([table]) -> rows | nil, err, code   [-1|2, +1|3, e]
** The schema guide (v_ai_schema_guide): every row, or those of one table
** (any case); NOTFOUND names a table that is not there. */
static int l_meta_guide(lua_State *L) {
  chm_meta *m = checkmeta(L);
  char *out = NULL;
  int rc = chm_meta_guide(m, arg_optstring(L, 2, NULL), &out);
  return finish(L, rc, out, chm_meta_errmsg(m), 0);
}

/* meta:query(sql) -> rows | nil, err, code */
static int l_meta_query(lua_State *L) {
  chm_meta *m = checkmeta(L);
  char *out = NULL;
  int rc = chm_meta_query(m, arg_string(L, 2), &out);
  return finish(L, rc, out, chm_meta_errmsg(m), 0);
}

/* Reads the limits table {instructions=, deadline_ms=, memory_bytes=} at
** idx (nil: all defaults) into lim; fn names the caller in errors. Each
** given limit must be a positive integer.   [-0, +0, v] */
static void check_limits(lua_State *L, int idx, const char *fn,
                         chm_limits *lim) {
  static const char *const known[] = {"instructions", "deadline_ms",
                                      "memory_bytes", NULL};
  memset(lim, 0, sizeof *lim);
  if (!check_options(L, idx, fn, known))
    return;
  lim->instructions =
      (uint64_t)opt_int(L, idx, fn, "instructions", 1, LUA_MAXINTEGER);
  lim->deadline_ms =
      (uint32_t)opt_int(L, idx, fn, "deadline_ms", 1, 0xffffffff);
  lim->memory_bytes =
      (size_t)opt_int(L, idx, fn, "memory_bytes", 1, LUA_MAXINTEGER);
}

/* meta:eval(source [, limits]) -> value | nil, err, code */
static int l_meta_eval(lua_State *L) {
  chm_meta *m = checkmeta(L);
  chm_limits lim;
  char *out = NULL;
  int rc;
  const char *src = arg_string(L, 2);
  check_limits(L, 3, "eval", &lim);
  rc = chm_meta_eval(m, src, &lim, &out);
  if (rc == CHM_OK && out != NULL && strcmp(out, "null") == 0) {
    chm_free(out);
    lua_pushnil(L);
    return 1;
  }
  return finish(L, rc, out, chm_meta_errmsg(m), 0);
}

/* meta:register_function(name [, fn]) -> true | nil, err, code
**   [-2|3, +1|3, e]
** Declares name as an expression function on the meta-store, so import
** and validation accept conditions that call it (chm_meta_register_function
** with no callback: a meta-store never evaluates conditions, so fn, when
** given, must be a function and is not kept). A refused name returns nil,
** message, "INVALID". */
static int l_meta_register_function(lua_State *L) {
  chm_meta *m = checkmeta(L);
  const char *name = arg_string(L, 2);
  int rc;
  if (!lua_isnoneornil(L, 3))
    arg_type(L, 3, LUA_TFUNCTION);
  rc = chm_meta_register_function(m, name, NULL, NULL);
  return finish(L, rc, NULL, chm_meta_errmsg(m), 0);
}

static const luaL_Reg meta_methods[] = {
    {"import", l_meta_import}, {"validate", l_meta_validate},
    {"list", l_meta_list},     {"show", l_meta_show},
    {"export", l_meta_export}, {"instantiate", l_meta_instantiate},
    {"query", l_meta_query},   {"guide", l_meta_guide},
    {"eval", l_meta_eval},     {"close", l_meta_close},
    {"register_function", l_meta_register_function},
    {NULL, NULL}};

/* ---- instance stores ----------------------------------------------------- */

/* The open instance at index 1; raises on a closed handle and on any use
** from inside one of its own skills or expression functions (the engine
** is then in the middle of a call on this very handle and cannot be
** re-entered). */
static inst_ud *checkud(lua_State *L) {
  inst_ud *u = arg_udata(L, 1, INST_MT);
  if (u->i == NULL)
    luaL_error(L, "attempt to use a closed instance");
  if (u->L != NULL)
    luaL_error(L, "attempt to use an instance from inside one of its skills "
                  "or expression functions (the engine is busy)");
  u->caller = L; /* the thread host_cb calls expression functions on */
  return u;
}

static chm_instance *checkinst(lua_State *L) { return checkud(L)->i; }

/* chameleon.open_instance(path) -> instance | nil, err, code
**   [-1, +1|3, e] */
static int l_open_instance(lua_State *L) {
  const char *path = arg_string(L, 1);
  inst_ud *u = lua_newuserdatauv(L, sizeof *u, 2);
  int rc;
  u->i = NULL;
  u->L = NULL;
  u->caller = NULL;
  u->hosts = NULL;
  luaL_setmetatable(L, INST_MT);
  lua_newtable(L); /* skill name -> host function */
  lua_setiuservalue(L, -2, SKILLS);
  lua_newtable(L); /* expression function name -> host function */
  lua_setiuservalue(L, -2, FUNCTIONS);
  rc = chm_instance_open(path, &u->i);
  if (rc != CHM_OK) {
    int n = push_fail(L, rc, chm_instance_errmsg(u->i));
    chm_instance_close(u->i);
    u->i = NULL;
    return n;
  }
  return 1;
}

/* instance:close()   [-1, +0, e]; also __gc and __close. Closes the engine
** handle first (so no skill can be called any more), then frees the skill
** records and drops the skill functions. Idempotent. */
static int l_inst_close(lua_State *L) {
  inst_ud *u = arg_udata(L, 1, INST_MT);
  hostfn *h, *next;
  if (u->L != NULL)
    return luaL_error(L, "attempt to close an instance from inside one of "
                         "its skills or expression functions");
  chm_instance_close(u->i);
  u->i = NULL;
  for (h = u->hosts; h != NULL; h = next) {
    next = h->next;
    free(h);
  }
  u->hosts = NULL;
  lua_pushnil(L);
  lua_setiuservalue(L, 1, SKILLS);
  lua_pushnil(L);
  lua_setiuservalue(L, 1, FUNCTIONS);
  return 0;
}

/* instance:describe() -> table | nil, err, code   [-1, +1|3, e] */
static int l_inst_describe(lua_State *L) {
  chm_instance *i = checkinst(L);
  char *out = NULL;
  int rc = chm_instance_describe(i, &out);
  return finish(L, rc, out, chm_instance_errmsg(i), 0);
}

/* instance:dot() -> DOT text with token counts | nil, err, code
** [-1, +1|3, e] */
static int l_inst_dot(lua_State *L) {
  chm_instance *i = checkinst(L);
  char *out = NULL;
  int rc = chm_instance_dot(i, &out);
  return finish(L, rc, out, chm_instance_errmsg(i), 1);
}

/* instance:validate() -> report | nil, err, code, report   [-1, +1|4, e] */
static int l_inst_validate(lua_State *L) {
  chm_instance *i = checkinst(L);
  char *out = NULL;
  int rc = chm_instance_validate(i, &out);
  return finish(L, rc, out, chm_instance_errmsg(i), 0);
}

/* instance:query(sql) -> rows | nil, err, code   [-2, +1|3, e] */
static int l_inst_query(lua_State *L) {
  chm_instance *i = checkinst(L);
  char *out = NULL;
  int rc = chm_instance_query(i, arg_string(L, 2), &out);
  return finish(L, rc, out, chm_instance_errmsg(i), 0);
}

/* instance:guide([table]) -> rows | nil, err, code   [-1|2, +1|3, e]
** As meta:guide, on the instance store. */
static int l_inst_guide(lua_State *L) {
  chm_instance *i = checkinst(L);
  char *out = NULL;
  int rc = chm_instance_guide(i, arg_optstring(L, 2, NULL), &out);
  return finish(L, rc, out, chm_instance_errmsg(i), 0);
}

/* instance:eval(source [, limits]) -> value | nil, err, code
**   [-2|3, +1|3, e] */
static int l_inst_eval(lua_State *L) {
  chm_instance *i = checkinst(L);
  chm_limits lim;
  char *out = NULL;
  int rc;
  const char *src = arg_string(L, 2);
  check_limits(L, 3, "eval", &lim);
  rc = chm_instance_eval(i, src, &lim, &out);
  if (rc == CHM_OK && out != NULL && strcmp(out, "null") == 0) {
    chm_free(out);
    lua_pushnil(L);
    return 1;
  }
  return finish(L, rc, out, chm_instance_errmsg(i), 0);
}

/* ---- tokens: argument helpers -------------------------------------------- */

/* JSON text of the table at idx, or NULL when the argument is absent or
** nil. The text is pushed (it lives as long as that stack slot); raises
** when the value is not a table or JSON cannot hold it.   [-0, +0|1, e] */
static const char *opt_table_json(lua_State *L, int idx, const char *what) {
  if (lua_isnoneornil(L, idx))
    return NULL;
  arg_type(L, idx, LUA_TTABLE);
  if (chm__json_encode(L, idx, 0) != 0)
    luaL_error(L, "bad argument #%d (%s): %s", idx - 1, what,
               lua_tostring(L, -1));
  return lua_tostring(L, -1);
}

/* JSON text of any value at idx (nil and none as null), pushed.
**   [-0, +1, e] */
static const char *value_json(lua_State *L, int idx, const char *what) {
  if (lua_isnoneornil(L, idx)) {
    lua_pushliteral(L, "null");
    return lua_tostring(L, -1);
  }
  if (chm__json_encode(L, idx, 0) != 0)
    luaL_error(L, "bad argument #%d (%s): %s", idx - 1, what,
               lua_tostring(L, -1));
  return lua_tostring(L, -1);
}

/* ---- tokens: operations -------------------------------------------------- */

/* instance:genesis([attrs [, {workflow=, actor=}]]) -> uow_id
**   | nil, err, code   [-1..3, +1|3, e]
** A base token of `workflow` (default: the master) made by `actor`
** (default: "system") holding the attributes of the table attrs. */
static int l_inst_genesis(lua_State *L) {
  chm_instance *i = checkinst(L);
  const char *attrs = NULL, *wf = NULL, *actor = NULL;
  char *out = NULL;
  int rc;
  static const char *const known[] = {"workflow", "actor", NULL};
  lua_settop(L, 3);
  if (check_options(L, 3, "genesis", known)) {
    wf = opt_str(L, 3, "genesis", "workflow");
    actor = opt_str(L, 3, "genesis", "actor");
  }
  attrs = opt_table_json(L, 2, "attributes");
  rc = chm_genesis(i, wf, attrs, actor, &out);
  return finish(L, rc, out, chm_instance_errmsg(i), 1);
}

/* instance:checkout(actor, role [, interaction]) -> token
**   | nil, err, code   [-3|4, +1|3, e] */
static int l_inst_checkout(lua_State *L) {
  chm_instance *i = checkinst(L);
  const char *actor = arg_string(L, 2);
  const char *role = arg_string(L, 3);
  const char *inter = arg_optstring(L, 4, NULL);
  char *out = NULL;
  int rc = chm_checkout(i, actor, role, inter, &out);
  return finish(L, rc, out, chm_instance_errmsg(i), 0);
}

/* instance:heartbeat(uow_id, actor) -> true | nil, err, code
**   [-3, +1|3, e] */
static int l_inst_heartbeat(lua_State *L) {
  chm_instance *i = checkinst(L);
  int rc = chm_heartbeat(i, arg_string(L, 2), arg_string(L, 3));
  return finish(L, rc, NULL, chm_instance_errmsg(i), 0);
}

/* instance:submit(uow_id, actor, version [, changes]) -> result
**   | nil, err, code   [-4|5, +1|3, e]
** changes: {set=, reasoning=, children=, teach=, give_up=, ["end"]=,
** fail=} as chm_submit; result {uow_id, status, interaction, version,
** children}. */
static int l_inst_submit(lua_State *L) {
  chm_instance *i = checkinst(L);
  const char *uow = arg_string(L, 2);
  const char *actor = arg_string(L, 3);
  lua_Integer version = arg_integer(L, 4);
  const char *changes;
  char *out = NULL;
  int rc;
  lua_settop(L, 5);
  changes = opt_table_json(L, 5, "changes");
  rc = chm_submit(i, uow, actor, (int64_t)version, changes, &out);
  return finish(L, rc, out, chm_instance_errmsg(i), 0);
}

/* instance:fail(uow_id, actor [, reason]) -> true | nil, err, code
**   [-3|4, +1|3, e] */
static int l_inst_fail(lua_State *L) {
  chm_instance *i = checkinst(L);
  int rc = chm_fail(i, arg_string(L, 2), arg_string(L, 3),
                    arg_optstring(L, 4, NULL));
  return finish(L, rc, NULL, chm_instance_errmsg(i), 0);
}

/* instance:pause(uow_id [, actor]) / instance:resume(uow_id [, actor])
**   -> true | nil, err, code   [-2|3, +1|3, e]; actor default "system". */
static int l_inst_pause(lua_State *L) {
  chm_instance *i = checkinst(L);
  int rc = chm_pause(i, arg_string(L, 2), arg_optstring(L, 3, NULL));
  return finish(L, rc, NULL, chm_instance_errmsg(i), 0);
}

static int l_inst_resume(lua_State *L) {
  chm_instance *i = checkinst(L);
  int rc = chm_resume(i, arg_string(L, 2), arg_optstring(L, 3, NULL));
  return finish(L, rc, NULL, chm_instance_errmsg(i), 0);
}

/* instance:pause_instance() / instance:resume_instance()
**   -> true | nil, err, code   [-1, +1|3, e] */
static int l_inst_pause_instance(lua_State *L) {
  chm_instance *i = checkinst(L);
  int rc = chm_instance_pause(i);
  return finish(L, rc, NULL, chm_instance_errmsg(i), 0);
}

static int l_inst_resume_instance(lua_State *L) {
  chm_instance *i = checkinst(L);
  int rc = chm_instance_resume(i);
  return finish(L, rc, NULL, chm_instance_errmsg(i), 0);
}

/* instance:clarify(uow_id, actor|nil, text) -> true | nil, err, code
**   [-4, +1|3, e]; actor nil = "system". */
static int l_inst_clarify(lua_State *L) {
  chm_instance *i = checkinst(L);
  const char *uow = arg_string(L, 2);
  const char *actor = arg_optstring(L, 3, NULL);
  const char *text = arg_string(L, 4);
  int rc = chm_clarify(i, uow, actor, text);
  return finish(L, rc, NULL, chm_instance_errmsg(i), 0);
}

/* instance:sweep() -> {zombies, stale, zombie_ids, stale_ids}
**   | nil, err, code   [-1, +1|3, e] */
static int l_inst_sweep(lua_State *L) {
  chm_instance *i = checkinst(L);
  char *out = NULL;
  int rc = chm_sweep(i, &out);
  return finish(L, rc, out, chm_instance_errmsg(i), 0);
}

/* instance:run([{batch=, max_steps=}]) -> {steps, moves, failed, commits}
**   | nil, err, code   [-1|2, +1|3, e]
** The only call during which skills run: the calling thread is recorded
** for host_cb and the handle refuses any other use until it returns. */
static int l_inst_run(lua_State *L) {
  inst_ud *u = checkud(L);
  chm_run_opts opts;
  char *out = NULL;
  int rc;
  static const char *const known[] = {"batch", "max_steps", NULL};
  memset(&opts, 0, sizeof opts);
  if (check_options(L, 2, "run", known)) {
    opts.batch = (int)opt_int(L, 2, "run", "batch", 0, 0x7fffffff);
    opts.max_steps = (int)opt_int(L, 2, "run", "max_steps", 0, 0x7fffffff);
  }
  u->L = L; /* nothing below raises until it is cleared */
  rc = chm_run(u->i, &opts, &out);
  u->L = NULL;
  return finish(L, rc, out, chm_instance_errmsg(u->i), 0);
}

/* ---- tokens: queries ----------------------------------------------------- */

/* instance:token(uow_id) -> token | nil, err, code   [-2, +1|3, e] */
static int l_inst_token(lua_State *L) {
  chm_instance *i = checkinst(L);
  char *out = NULL;
  int rc = chm_token_get(i, arg_string(L, 2), &out);
  return finish(L, rc, out, chm_instance_errmsg(i), 0);
}

/* instance:history(uow_id) -> {log row...} | nil, err, code
**   [-2, +1|3, e] */
static int l_inst_history(lua_State *L) {
  chm_instance *i = checkinst(L);
  char *out = NULL;
  int rc = chm_token_history(i, arg_string(L, 2), &out);
  return finish(L, rc, out, chm_instance_errmsg(i), 0);
}

/* instance:attributes(uow_id) -> {attribute version...}
**   | nil, err, code   [-2, +1|3, e] */
static int l_inst_attributes(lua_State *L) {
  chm_instance *i = checkinst(L);
  char *out = NULL;
  int rc = chm_token_attributes(i, arg_string(L, 2), &out);
  return finish(L, rc, out, chm_instance_errmsg(i), 0);
}

/* instance:queues() -> {queue...} | nil, err, code   [-1, +1|3, e] */
static int l_inst_queues(lua_State *L) {
  chm_instance *i = checkinst(L);
  char *out = NULL;
  int rc = chm_queues(i, &out);
  return finish(L, rc, out, chm_instance_errmsg(i), 0);
}

/* instance:tokens([status]) -> {token summary...} | nil, err, code
**   [-1|2, +1|3, e] */
static int l_inst_tokens(lua_State *L) {
  chm_instance *i = checkinst(L);
  char *out = NULL;
  int rc = chm_tokens(i, arg_optstring(L, 2, NULL), &out);
  return finish(L, rc, out, chm_instance_errmsg(i), 0);
}

/* instance:verify() -> {rows, ok=true, first_bad=json.null, head_log_id,
**   head_hash}
**   | nil, err, "CORRUPT", report   [-1, +1|4, e] */
static int l_inst_verify(lua_State *L) {
  chm_instance *i = checkinst(L);
  char *out = NULL;
  int rc = chm_verify(i, &out);
  return finish(L, rc, out, chm_instance_errmsg(i), 0);
}

/* ---- memory and settings ------------------------------------------------- */

/* instance:memory_set(role, actor|nil, key, value) -> true
**   | nil, err, code   [-5, +1|3, e]
** actor nil: the role's Global Blueprint; value: any JSON-able value. */
static int l_inst_memory_set(lua_State *L) {
  chm_instance *i = checkinst(L);
  const char *role = arg_string(L, 2);
  const char *actor = arg_optstring(L, 3, NULL);
  size_t klen;
  const char *key = arg_lstring(L, 4, &klen);
  const char *value;
  int rc;
  if (strlen(key) != klen) /* C would cut the key at its NUL */
    return finish(L, CHM_INVALID, NULL,
                  "memory key holds a NUL byte (\\u0000): a key must be "
                  "non-empty text without NUL",
                  0);
  lua_settop(L, 5);
  value = value_json(L, 5, "value");
  rc = chm_memory_set(i, role, actor, key, value);
  return finish(L, rc, NULL, chm_instance_errmsg(i), 0);
}

/* instance:memory_mark_toxic(memory_id) -> true | nil, err, code
**   [-2, +1|3, e] */
static int l_inst_memory_mark_toxic(lua_State *L) {
  chm_instance *i = checkinst(L);
  int rc = chm_memory_mark_toxic(i, arg_string(L, 2));
  return finish(L, rc, NULL, chm_instance_errmsg(i), 0);
}

/* instance:memory_decay(days) -> removed | nil, err, code
**   [-2, +1|3, e] */
static int l_inst_memory_decay(lua_State *L) {
  chm_instance *i = checkinst(L);
  lua_Integer days = arg_integer(L, 2);
  int removed = 0, rc;
  luaL_argcheck(L, days >= 0 && days <= 0x7fffffff, 2,
                "days must be a non-negative integer");
  rc = chm_memory_decay(i, (int)days, &removed);
  if (rc != CHM_OK)
    return finish(L, rc, NULL, chm_instance_errmsg(i), 0);
  lua_pushinteger(L, removed);
  return 1;
}

/* instance:set_lease_ms(ms) -> true   [-2, +1, e]; ms outside 1..366 days
** (31622400000) raises. */
static int l_inst_set_lease_ms(lua_State *L) {
  chm_instance *i = checkinst(L);
  int rc = chm_set_lease_ms(i, (int64_t)arg_integer(L, 2));
  return finish(L, rc, NULL, chm_instance_errmsg(i), 0);
}

/* ---- skills and expression functions ------------------------------------ */

/* A skill or an expression function registered from Lua runs in the HOST
** state, not in the engine's sandbox: the engine calls host_cb (C) from
** inside a step or a condition, and host_cb calls the host function on
** the thread of the call that is judging (inst:run() for a skill; any
** call on the instance for an expression function: u->caller, which
** checkud records), suspended in the engine and so free to run Lua. The
** handle is marked busy meanwhile, so the function cannot re-enter it.
** The host state is not a sandbox (no budget, no cap: it is the caller's
** own code), so chm__pcall, the library's one door, does not apply;
** host_cb is the one other protected call, and it must be protected: an
** error escaping it would longjmp through the engine's C frames. Its
** failure becomes the skill's error ("skill 'x' failed: ...") inside the
** step, or the expression's ("function 'x' failed: ..."). */

/* What host_cb hands to host_body across the protected call. */
typedef struct host_call {
  const hostfn *h;  /* the function being called */
  const char *args; /* its JSON: one value (skill) or an array (function) */
  char *result;     /* malloc'ed JSON of the result, or NULL (null) */
} host_call;

/* host_body(instance, call) -> nothing   [-2, +0, e]
** Decodes the arguments (a skill's one value; an expression function's
** array, spread; null arrives as nil), calls the host function, encodes
** its first result (nil is null). */
static int host_body(lua_State *L) {
  host_call *k = lua_touserdata(L, 2);
  const char *text;
  size_t n;
  int nargs = 1, i, val, null;
  if (chm__json_decode(L, k->args, strlen(k->args)) != 0)
    return lua_error(L);
  val = lua_gettop(L);
  chm__json_pushnull(L);
  null = lua_gettop(L);
  if (k->h->slot == FUNCTIONS) nargs = (int)lua_rawlen(L, val);
  luaL_checkstack(L, nargs + 4, "too many arguments");
  lua_getiuservalue(L, 1, k->h->slot);
  if (lua_getfield(L, -1, k->h->name) != LUA_TFUNCTION)
    return luaL_error(L, "no Lua function for '%s'", k->h->name);
  for (i = 1; i <= nargs; i++) {
    if (k->h->slot == FUNCTIONS)
      lua_rawgeti(L, val, i);
    else
      lua_pushvalue(L, val);
    if (lua_rawequal(L, -1, null)) {
      lua_pop(L, 1);
      lua_pushnil(L);
    }
  }
  lua_call(L, nargs, 1);
  if (lua_isnil(L, -1))
    return 0;
  if (chm__json_encode(L, -1, 0) != 0)
    return luaL_error(L, "its result cannot be sent as JSON: %s",
                      lua_tostring(L, -1));
  text = lua_tolstring(L, -1, &n);
  if ((k->result = malloc(n + 1)) == NULL)
    return luaL_error(L, "out of memory copying its result");
  memcpy(k->result, text, n + 1);
  return 0;
}

/* A malloc'ed copy of s (the engine frees it with free()), or NULL. */
static char *dup_msg(const char *s) {
  size_t n = strlen(s);
  char *p = malloc(n + 1);
  if (p != NULL)
    memcpy(p, s, n + 1);
  return p;
}

/* The chm_skill_cb and chm_expr_fn of every host function registered from
** Lua; ud is its record. Raises nothing in either state; restores the host
** stack and the busy flag on every path. */
static int host_cb(void *ud, const char *args_json, char **result_json,
                   char **error) {
  const hostfn *h = ud;
  inst_ud *u = h->owner;
  lua_State *busy = u->L;
  lua_State *L = h->slot == SKILLS ? u->L : u->caller;
  host_call k;
  int top, status;
  if (L == NULL || lua_touserdata(L, 1) != u) {
    *error = dup_msg(h->slot == SKILLS
                         ? "a Lua skill can only run inside inst:run()"
                         : "a Lua expression function can only run inside a "
                           "call on its instance");
    return 1;
  }
  if (!lua_checkstack(L, 8)) {
    *error = dup_msg("the host Lua stack is full");
    return 1;
  }
  k.h = h;
  k.args = args_json != NULL ? args_json : h->slot == SKILLS ? "null" : "[]";
  k.result = NULL;
  top = lua_gettop(L);
  lua_pushcfunction(L, host_body); /* light C function: no allocation */
  lua_pushvalue(L, 1);             /* the instance: its function tables */
  lua_pushlightuserdata(L, &k);
  u->L = L; /* busy: the function cannot re-enter the handle */
  status = lua_pcall(L, 2, 0, 0);
  u->L = busy;
  if (status != LUA_OK) {
    const char *m = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                                   : "(error object is not "
                                                     "a string)";
    free(k.result);
    *error = dup_msg(m);
    lua_settop(L, top);
    return 1;
  }
  lua_settop(L, top);
  *result_json = k.result;
  return 0;
}

/* register_host(L, slot): the body of register_skill and
** register_function — finds or makes the record of the name, registers it
** with the engine the first time, and stores the Lua function. */
static int register_host(lua_State *L, int slot) {
  inst_ud *u = checkud(L);
  const char *name = arg_string(L, 2);
  size_t n = strlen(name);
  hostfn *h;
  int rc;
  arg_type(L, 3, LUA_TFUNCTION);
  for (h = u->hosts; h != NULL; h = h->next)
    if (h->slot == slot && strcmp(h->name, name) == 0)
      break;
  if (h == NULL) {
    if ((h = malloc(sizeof *h + n + 1)) == NULL)
      return luaL_error(L, "out of memory registering '%s'", name);
    h->owner = u;
    h->slot = slot;
    memcpy(h->name, name, n + 1);
    rc = slot == SKILLS ? chm_register_skill(u->i, name, host_cb, h)
                        : chm_register_function(u->i, name, host_cb, h);
    if (rc != CHM_OK) {
      free(h);
      return finish(L, rc, NULL, chm_instance_errmsg(u->i), 0);
    }
    h->next = u->hosts;
    u->hosts = h;
  }
  lua_getiuservalue(L, 1, slot);
  lua_pushvalue(L, 3);
  lua_setfield(L, -2, name);
  lua_pushboolean(L, 1);
  return 1;
}

/* instance:register_skill(name, fn) -> true   [-3, +1, e]
** Makes the host function fn(args) -> result callable by step scripts as
** ctx.skills[name](args), during inst:run(). Arguments and results cross
** as JSON (nil is null); an error raised by fn becomes the step's error.
** Registering a name again replaces the function. A bad name raises. */
static int l_inst_register_skill(lua_State *L) {
  return register_host(L, SKILLS);
}

/* instance:register_function(name, fn) -> true | nil, err, code
**   [-3, +1|3, e]
** Makes the host function fn(...) -> value callable by the instance's
** conditions as name(...) (chm_register_function). Arguments and the
** result cross as JSON (a null argument arrives as nil; nil returned is
** null); an error raised by fn is the expression's error. fn must be pure
** (docs/lua-api.md). Registering a name again replaces the function. A
** refused name (not an identifier, a keyword, a built-in) returns nil,
** message, "INVALID". */
static int l_inst_register_function(lua_State *L) {
  return register_host(L, FUNCTIONS);
}

static const luaL_Reg inst_methods[] = {
    {"describe", l_inst_describe},
    {"dot", l_inst_dot},
    {"validate", l_inst_validate},
    {"query", l_inst_query},
    {"guide", l_inst_guide},
    {"eval", l_inst_eval},
    {"genesis", l_inst_genesis},
    {"checkout", l_inst_checkout},
    {"heartbeat", l_inst_heartbeat},
    {"submit", l_inst_submit},
    {"fail", l_inst_fail},
    {"pause", l_inst_pause},
    {"resume", l_inst_resume},
    {"pause_instance", l_inst_pause_instance},
    {"resume_instance", l_inst_resume_instance},
    {"clarify", l_inst_clarify},
    {"sweep", l_inst_sweep},
    {"run", l_inst_run},
    {"token", l_inst_token},
    {"history", l_inst_history},
    {"attributes", l_inst_attributes},
    {"queues", l_inst_queues},
    {"tokens", l_inst_tokens},
    {"verify", l_inst_verify},
    {"memory_set", l_inst_memory_set},
    {"memory_mark_toxic", l_inst_memory_mark_toxic},
    {"memory_decay", l_inst_memory_decay},
    {"set_lease_ms", l_inst_set_lease_ms},
    {"register_skill", l_inst_register_skill},
    {"register_function", l_inst_register_function},
    {"close", l_inst_close},
    {NULL, NULL}};

/* ---- module -------------------------------------------------------------- */

/* The engine's clock, process-wide (chameleon.h "Time").
** chameleon.clock_set_virtual(ms)   [-1, +0, e]
** Both raise, leaving the clock as it was, when the reading would leave
** 0..253402300799999 (years 1970..9999: what the stores can hold). */
static int l_clock_set_virtual(lua_State *L) {
  lua_Integer ms = arg_integer(L, 1);
  if (chm_clock_set_virtual((int64_t)ms) != CHM_OK)
    return arg_error(L, 1, lua_pushfstring(L, "clock reading %I ms is out of "
                                           "range: give %I to %I (years "
                                           "1970 to 9999)", ms,
                                           (lua_Integer)CHM_CLOCK_MIN_MS,
                                           (lua_Integer)CHM_CLOCK_MAX_MS));
  return 0;
}

/* chameleon.clock_advance(ms)   [-1, +0, e] */
static int l_clock_advance(lua_State *L) {
  lua_Integer ms = arg_integer(L, 1);
  if (chm_clock_advance((int64_t)ms) != CHM_OK)
    return arg_error(L, 1, lua_pushfstring(L, "advancing the clock (%I ms) "
                                           "by %I ms leaves the range %I to "
                                           "%I (years 1970 to 9999)",
                                           (lua_Integer)chm_clock_now(), ms,
                                           (lua_Integer)CHM_CLOCK_MIN_MS,
                                           (lua_Integer)CHM_CLOCK_MAX_MS));
  return 0;
}

/* chameleon.clock_real()   [-0, +0, -] */
static int l_clock_real(lua_State *L) {
  chm_clock_set_real();
  return 0;
}

/* chameleon.clock_now() -> ms   [-0, +1, -] */
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

/* Sets each function of l into the table on top as a closure over its
** name and `method` (the upvalues arg_error reads).   [-0, +0, m] */
static void set_named(lua_State *L, const luaL_Reg *l, int method) {
  for (; l->name != NULL; l++) {
    lua_pushstring(L, l->name);
    lua_pushboolean(L, method);
    lua_pushcclosure(L, l->func, 2);
    lua_setfield(L, -2, l->name);
  }
}

/* Creates a handle metatable with methods, __gc, __close, __index. */
static void new_class(lua_State *L, const char *name, const luaL_Reg *methods,
                      lua_CFunction close) {
  luaL_newmetatable(L, name);
  lua_newtable(L);
  set_named(L, methods, 1);
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
  luaL_checkversion(L);
  lua_newtable(L);
  set_named(L, module_funcs, 0);
  chm__json_open(L);
  lua_setfield(L, -2, "json");
  lua_pushstring(L, chm_version());
  lua_setfield(L, -2, "version");
  return 1;
}
