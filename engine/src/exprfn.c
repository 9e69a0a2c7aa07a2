/*
** exprfn.c — expression functions hosts register (chm_register_function,
** chm_meta_register_function): each becomes a C closure in the handle's
** Lua state, registered with lua/expr.lua (expr.register) so every
** condition compiled there may call it. The closure turns the evaluated
** arguments into one canonical JSON array, calls the host's chm_expr_fn
** and decodes its answer; it runs inside whatever protected call is
** evaluating the condition (the door, chm__pcall), so its errors are
** ordinary Lua errors that lua/expr.lua makes expression errors.
*/
#include <stdlib.h>
#include <string.h>

#include "chm_int.h"

#define FNRES_MT "chameleon.exprfnresult"

/* The host's function, kept as a full userdata upvalue of its closure. */
typedef struct fnrec {
  chm_expr_fn fn; /* NULL: declared on a meta-store, not callable */
  void *ud;       /* the host's pointer, passed back */
} fnrec;

/* What the callback hands back, owned by a collectable userdata so an
** error raised after the call still frees it. */
typedef struct fnres {
  char *result, *error; /* malloc'ed by the callback */
} fnres;

static int fnres_gc(lua_State *L) {
  fnres *r = lua_touserdata(L, 1);
  free(r->result);
  free(r->error);
  r->result = r->error = NULL;
  return 0;
}

/* raise(L, msg): raise the string on top, with no position prefix (the
** expression error says where).   [-1, +0, v] */
static int raise(lua_State *L, const char *msg) {
  (void)msg;
  return lua_error(L);
}

/* name(...) -> value   [-n, +1, e]
** The closure of one expression function: upvalue 1 its name, upvalue 2
** its fnrec. Raises the callback's message (lua/expr.lua prefixes
** "function 'name' failed: "). */
static int fn_call(lua_State *L) {
  const char *name = lua_tostring(L, lua_upvalueindex(1));
  const fnrec *f = lua_touserdata(L, lua_upvalueindex(2));
  int n = lua_gettop(L), i, rc;
  luaL_Buffer b;
  fnres *r;
  if (f->fn == NULL)
    return raise(L,
                 lua_pushfstring(L,
                                 "'%s' is only declared on this handle "
                                 "(registered without a callback), so it "
                                 "cannot be evaluated here",
                                 name));
  r = lua_newuserdatauv(L, sizeof *r, 0);
  r->result = r->error = NULL;
  if (luaL_newmetatable(L, FNRES_MT)) {
    lua_pushcfunction(L, fnres_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  luaL_buffinit(L, &b);
  luaL_addchar(&b, '[');
  for (i = 1; i <= n; i++) {
    if (i > 1)
      luaL_addchar(&b, ',');
    if (lua_type(L, i) == LUA_TTABLE) { /* balanced use of the stack */
      lua_pushnil(L);
      if (lua_next(L, i) == 0) { /* empty: the language calls it a list */
        luaL_addstring(&b, "[]");
        continue;
      }
      lua_pop(L, 2);
    }
    if (chm__json_encode(L, i, 0) != 0)
      return raise(L, lua_pushfstring(L, "argument %d cannot be sent as "
                                         "JSON: %s", i, lua_tostring(L, -1)));
    luaL_addvalue(&b);
  }
  luaL_addchar(&b, ']');
  luaL_pushresult(&b);
  rc = f->fn(f->ud, lua_tostring(L, -1), &r->result, &r->error);
  if (rc != 0) {
    lua_pushstring(L, r->error != NULL ? r->error : "it returned an error");
    return lua_error(L);
  }
  if (r->result == NULL) {
    chm__json_pushnull(L);
    return 1;
  }
  if (chm__json_decode(L, r->result, strlen(r->result)) != 0)
    return raise(L, lua_pushfstring(L, "it returned invalid JSON: %s",
                                    lua_tostring(L, -1)));
  return 1;
}

/* One registration, across the protected call. */
typedef struct reg {
  const char *name;
  chm_expr_fn fn;
  void *ud;
  char *refused; /* malloc'ed reason when expr.register refuses the name */
  int oom;       /* our own malloc failed */
} reg;

/* reg_body(reg) -> nothing   [-1, +0, e]
** expr.register(name, closure); a refusal, with the built-ins' names
** (expr.builtins) appended, is copied into reg->refused. */
static int reg_body(lua_State *L) {
  reg *k = lua_touserdata(L, 1);
  fnrec *f;
  luaL_Buffer b;
  lua_Integer i, n;
  int mod;
  chm__require(L, "expr");
  mod = lua_gettop(L);
  lua_getfield(L, mod, "register");
  lua_pushstring(L, k->name);
  lua_pushstring(L, k->name);
  f = lua_newuserdatauv(L, sizeof *f, 0);
  f->fn = k->fn;
  f->ud = k->ud;
  lua_pushcclosure(L, fn_call, 2);
  lua_call(L, 2, 2);
  if (lua_toboolean(L, -2))
    return 0;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, luaL_optstring(L, mod + 2, "refused"));
  luaL_addstring(&b, "; use another name (letters, digits and '_', not a "
                     "keyword; the built-ins are ");
  lua_getfield(L, mod, "builtins");
  n = lua_istable(L, -1) ? (lua_Integer)lua_rawlen(L, -1) : 0;
  lua_pop(L, 1);
  for (i = 1; i <= n; i++) {
    if (i > 1)
      luaL_addstring(&b, ", ");
    lua_getfield(L, mod, "builtins"); /* balanced: luaL_addvalue pops */
    lua_rawgeti(L, -1, i);
    lua_remove(L, -2);
    luaL_addvalue(&b);
  }
  luaL_addchar(&b, ')');
  luaL_pushresult(&b);
  if ((k->refused = strdup(lua_tostring(L, -1))) == NULL) {
    k->oom = 1;
    return luaL_error(L, "out of memory");
  }
  return 0;
}

/* register_on(c, who, name, fn, ud, need_fn): the common body of both
** public functions; who names the function in messages. */
static int register_on(chm__core *c, const char *who, const char *name,
                       chm_expr_fn fn, void *ud, int need_fn) {
  reg k;
  int top, rc;
  if (c == NULL || c->L == NULL)
    return CHM_MISUSE;
  free(c->errmsg);
  c->errmsg = NULL;
  if (name == NULL || (need_fn && fn == NULL))
    return chm__core_seterr(c, CHM_MISUSE, "%s: a name and a callback are "
                            "required", who);
  memset(&k, 0, sizeof k);
  k.name = name;
  k.fn = fn;
  k.ud = ud;
  top = lua_gettop(c->L);
  lua_pushcfunction(c->L, reg_body);
  lua_pushlightuserdata(c->L, &k);
  rc = chm__pcall(c->L, 1, 0, NULL);
  if (k.oom || rc == CHM_MEMORY) {
    lua_settop(c->L, top);
    free(k.refused);
    return chm__core_seterr(c, CHM_NOMEM, "%s: out of memory registering "
                            "'%s'", who, name);
  }
  if (rc != CHM_OK) {
    rc = chm__core_seterr(c, rc, "%s: %s", who, lua_tostring(c->L, -1));
    lua_settop(c->L, top);
    return rc;
  }
  lua_settop(c->L, top);
  if (k.refused != NULL) {
    rc = chm__core_seterr(c, CHM_INVALID, "%s: %s", who, k.refused);
    free(k.refused);
    return rc;
  }
  return CHM_OK;
}

int chm_register_function(chm_instance *inst, const char *name,
                          chm_expr_fn fn, void *ud) {
  return register_on(chm__instance_core(inst), "chm_register_function", name,
                     fn, ud, 1);
}

int chm_meta_register_function(chm_meta *m, const char *name, chm_expr_fn fn,
                               void *ud) {
  return register_on(chm__meta_core(m), "chm_meta_register_function", name,
                     fn, ud, 0);
}
