/*
** dbbind.c — the `db` object that trusted Lua (lua directory) uses to read and
** write its store. Never placed in a sandbox environment. Statements are
** prepared once per state with SQLITE_PREPARE_PERSISTENT and kept in a
** cache owned by the lua_State (finalized by its __gc when the state
** closes), reset and unbound after each use.
*/
#include <stdlib.h>
#include <string.h>

#include "chm_int.h"

#define CACHE_SIZE 96

typedef struct stmt_cache {
  sqlite3 *db;                     /* connection the statements belong to */
  int n;                           /* entries in use */
  int next;                        /* next slot to evict when full */
  char *sql[CACHE_SIZE];           /* statement texts (malloc'ed) */
  sqlite3_stmt *stmt[CACHE_SIZE];  /* prepared statements */
} stmt_cache;

typedef struct dbref {
  sqlite3 *db; /* borrowed connection */
} dbref;

static const char cache_key = 'c'; /* registry key: the stmt_cache */
static const char dbref_key = 'd'; /* registry key: the db object of the
                                      state's own store (chm__db_push) */
#define DB_MT "chameleon.db"

static int cache_gc(lua_State *L) {
  stmt_cache *c = lua_touserdata(L, 1);
  int i;
  for (i = 0; i < c->n; i++) {
    sqlite3_finalize(c->stmt[i]);
    free(c->sql[i]);
  }
  c->n = 0;
  return 0;
}

/* Finds or prepares the statement for sql.   [-0, +0, e] */
static sqlite3_stmt *prepare(lua_State *L, sqlite3 *db, const char *sql) {
  stmt_cache *c;
  sqlite3_stmt *st = NULL;
  int i;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &cache_key);
  c = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (c != NULL && c->db == db)
    for (i = 0; i < c->n; i++)
      if (strcmp(c->sql[i], sql) == 0) {
        sqlite3_reset(c->stmt[i]); /* in case an error left it mid-step */
        sqlite3_clear_bindings(c->stmt[i]);
        return c->stmt[i];
      }
  if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) !=
      SQLITE_OK)
    luaL_error(L, "SQL error: %s (in: %s)", sqlite3_errmsg(db), sql);
  if (st == NULL) luaL_error(L, "SQL error: empty statement");
  if (c == NULL || c->db != db) return st; /* uncached: caller finalizes */
  if (c->n < CACHE_SIZE) {
    i = c->n++;
  } else {
    i = c->next;
    c->next = (c->next + 1) % CACHE_SIZE;
    sqlite3_finalize(c->stmt[i]);
    free(c->sql[i]);
  }
  c->sql[i] = strdup(sql);
  c->stmt[i] = st;
  if (c->sql[i] == NULL) {
    c->stmt[i] = NULL;
    sqlite3_finalize(st);
    c->n--;
    luaL_error(L, "out of memory");
  }
  return st;
}

static sqlite3 *checkdb(lua_State *L) {
  dbref *r = luaL_checkudata(L, 1, DB_MT);
  if (r->db == NULL) luaL_error(L, "attempt to use a closed store");
  return r->db;
}

/* Binds Lua values from stack index `first` onwards.   [-0, +0, e] */
static void bind_args(lua_State *L, sqlite3_stmt *st, int first) {
  int top = lua_gettop(L), i, rc = SQLITE_OK;
  for (i = first; i <= top; i++) {
    int p = i - first + 1;
    switch (lua_type(L, i)) {
      case LUA_TNIL: rc = sqlite3_bind_null(st, p); break;
      case LUA_TLIGHTUSERDATA: rc = sqlite3_bind_null(st, p); break;
      case LUA_TBOOLEAN: rc = sqlite3_bind_int(st, p, lua_toboolean(L, i)); break;
      case LUA_TNUMBER:
        if (lua_isinteger(L, i))
          rc = sqlite3_bind_int64(st, p, lua_tointeger(L, i));
        else
          rc = sqlite3_bind_double(st, p, lua_tonumber(L, i));
        break;
      case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, i, &len);
        rc = sqlite3_bind_text(st, p, s, (int)len, SQLITE_TRANSIENT);
        break;
      }
      default:
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        luaL_error(L, "SQL parameter %d: cannot bind a %s", p,
                   luaL_typename(L, i));
    }
    if (rc != SQLITE_OK) {
      sqlite3_reset(st);
      sqlite3_clear_bindings(st);
      luaL_error(L, "SQL parameter %d: %s", p, sqlite3_errstr(rc));
    }
  }
}

static void push_column(lua_State *L, sqlite3_stmt *st, int col) {
  switch (sqlite3_column_type(st, col)) {
    case SQLITE_INTEGER: lua_pushinteger(L, sqlite3_column_int64(st, col)); break;
    case SQLITE_FLOAT: lua_pushnumber(L, sqlite3_column_double(st, col)); break;
    case SQLITE_NULL: lua_pushnil(L); break;
    default:
      lua_pushlstring(L, (const char *)sqlite3_column_text(st, col),
                      (size_t)sqlite3_column_bytes(st, col));
  }
}

/* Finishes a statement after use: reset+unbind, or finalize if uncached. */
static void done(lua_State *L, sqlite3 *db, sqlite3_stmt *st) {
  stmt_cache *c;
  int i;
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &cache_key);
  c = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (c != NULL && c->db == db)
    for (i = 0; i < c->n; i++)
      if (c->stmt[i] == st) return;
  sqlite3_finalize(st);
}

/* Runs sql with args; mode 0 = exec, 1 = rows, 2 = one.   [-0, +1, e] */
static int run(lua_State *L, int mode) {
  sqlite3 *db = checkdb(L);
  const char *sql = luaL_checkstring(L, 2);
  sqlite3_stmt *st = prepare(L, db, sql);
  int rc, n = 0, ncol;
  bind_args(L, st, 3);
  if (mode != 0) lua_newtable(L);
  ncol = sqlite3_column_count(st);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    int i;
    if (mode == 0) continue;
    lua_createtable(L, 0, ncol);
    for (i = 0; i < ncol; i++) {
      push_column(L, st, i);
      lua_setfield(L, -2, sqlite3_column_name(st, i));
    }
    lua_rawseti(L, -2, ++n);
    if (mode == 2) break;
  }
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
    const char *msg = lua_pushfstring(L, "SQL error: %s (in: %s)",
                                      sqlite3_errmsg(db), sql);
    (void)msg;
    done(L, db, st);
    return lua_error(L);
  }
  done(L, db, st);
  if (mode == 0) {
    lua_pushinteger(L, sqlite3_changes(db));
  } else if (mode == 2) {
    lua_rawgeti(L, -1, 1);
  }
  return 1;
}

/* db:exec(sql, ...) -> changes   [-(n), +1, e] */
static int db_exec(lua_State *L) { return run(L, 0); }
/* db:rows(sql, ...) -> {row...}   [-(n), +1, e] */
static int db_rows(lua_State *L) { return run(L, 1); }
/* db:one(sql, ...) -> row | nil   [-(n), +1, e] */
static int db_one(lua_State *L) { return run(L, 2); }

static int simple(lua_State *L, const char *sql) {
  sqlite3 *db = checkdb(L);
  char *emsg = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &emsg) != SQLITE_OK) {
    lua_pushfstring(L, "SQL error: %s (in: %s)", emsg ? emsg : "?", sql);
    sqlite3_free(emsg);
    return lua_error(L);
  }
  return 0;
}

/* db:begin() / db:commit() / db:rollback()   [-1, +0, e] */
static int db_begin(lua_State *L) { return simple(L, "BEGIN IMMEDIATE"); }
static int db_commit(lua_State *L) { return simple(L, "COMMIT"); }
static int db_rollback(lua_State *L) {
  sqlite3 *db = checkdb(L);
  if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  return 0;
}

/* db:in_transaction() -> boolean   [-1, +1, -] */
static int db_intx(lua_State *L) {
  lua_pushboolean(L, !sqlite3_get_autocommit(checkdb(L)));
  return 1;
}

static const luaL_Reg db_methods[] = {
    {"exec", db_exec},         {"rows", db_rows},     {"one", db_one},
    {"begin", db_begin},       {"commit", db_commit}, {"rollback", db_rollback},
    {"in_transaction", db_intx}, {NULL, NULL}};

void chm__db_push(lua_State *L, sqlite3 *db) {
  dbref *r;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &cache_key);
  if (lua_isnil(L, -1)) {
    stmt_cache *c = lua_newuserdatauv(L, sizeof *c, 0);
    memset(c, 0, sizeof *c);
    c->db = db;
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, cache_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &cache_key);
  }
  lua_pop(L, 1);
  /* the state's own store is pushed on every guard, route and step call:
  ** reuse one object for it instead of allocating one per call */
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &dbref_key) == LUA_TUSERDATA &&
      ((dbref *)lua_touserdata(L, -1))->db == db)
    return;
  lua_pop(L, 1);
  r = lua_newuserdatauv(L, sizeof *r, 0);
  r->db = db;
  if (luaL_newmetatable(L, DB_MT)) {
    luaL_newlib(L, db_methods);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, "db");
    lua_setfield(L, -2, "__metatable");
  }
  lua_setmetatable(L, -2);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &dbref_key) == LUA_TNIL) {
    lua_pushvalue(L, -2); /* the first store pushed is the state's own */
    lua_rawsetp(L, LUA_REGISTRYINDEX, &dbref_key);
  }
  lua_pop(L, 1);
}
