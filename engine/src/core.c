/*
** core.c — what every handle (chm_meta, chm_instance) shares: its store
** connection, its sandboxed lua_State, its last error message, and the
** three ways the public API reaches Lua: invoking a trusted module
** function, running a read-only query, and evaluating a sandboxed chunk.
** All of them go through chm__pcall (the one door) and leave no
** transaction open behind a failure.
*/
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chm_int.h"
#include "core.h"
#include "sandbox.h"

/* Limits for trusted orchestration (import, instantiate...): generous,
** because user scripts inside them run under their own, tighter limits. */
static const chm_limits trusted_limits = {4000000000u, 600000, 0};

char *chm__strdupf(const char *fmt, ...) {
  va_list ap;
  int n;
  char *s;
  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || (s = malloc((size_t)n + 1)) == NULL) return NULL;
  va_start(ap, fmt);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return s;
}

int chm__core_seterr(chm__core *c, int rc, const char *fmt, ...) {
  va_list ap;
  int n;
  char *s = NULL;
  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n >= 0 && (s = malloc((size_t)n + 1)) != NULL) {
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
  }
  free(c->errmsg);
  c->errmsg = s;
  return rc;
}

const char *chm__core_errmsg(const chm__core *c) {
  if (c == NULL) return "out of memory";
  return c->errmsg != NULL ? c->errmsg : "ok";
}

/* Clears the last message before a new operation. */
static void clear_err(chm__core *c) {
  free(c->errmsg);
  c->errmsg = NULL;
}

int chm__core_open(chm__core *c, const char *path, int kind, int create) {
  char *err = NULL;
  int rc;
  memset(c, 0, sizeof *c);
  c->kind = kind;
  if (path == NULL || *path == '\0')
    return chm__core_seterr(c, CHM_MISUSE, "no store path given");
  c->path = chm__strdupf("%s", path);
  rc = chm__store_open(path, kind, create, &c->db, &err);
  if (rc != CHM_OK) {
    chm__core_seterr(c, rc, "%s", err ? err : chm_errstr(rc));
    free(err);
    return rc;
  }
  c->L = chm__sandbox_new(0);
  if (c->L == NULL || c->path == NULL)
    return chm__core_seterr(c, CHM_NOMEM, "out of memory opening %s", path);
  return CHM_OK;
}

void chm__core_close(chm__core *c) {
  if (c->L != NULL) chm__sandbox_close(c->L); /* finalizes cached statements */
  if (c->db != NULL) sqlite3_close(c->db);
  free(c->path);
  free(c->errmsg);
  memset(c, 0, sizeof *c);
}

/* Sets c's message from a failed door, without the Lua traceback the door
** appends: trusted and query failures are about the user's input (a file,
** a statement), and the traceback of library internals only hides that. */
static int seterr_plain(chm__core *c, int rc, const char *msg) {
  const char *tb = msg != NULL ? strstr(msg, "\nstack traceback:") : NULL;
  if (msg == NULL) return chm__core_seterr(c, rc, "%s", chm_errstr(rc));
  if (tb == NULL) return chm__core_seterr(c, rc, "%s", msg);
  return chm__core_seterr(c, rc, "%.*s", (int)(tb - msg), msg);
}

/* store_fail(c, rc, what) -> rc, or CHM_CORRUPT / CHM_IO when the last
** SQLite error on c->db says the store is damaged or cannot be written;
** then c's message is set to the one naming the file and what to do.
** Call right after the failure, before anything else runs on c->db. */
static int store_fail(chm__core *c, int rc, const char *what) {
  char *msg = NULL;
  int st = chm__store_status(c->db, what, &msg);
  if (msg == NULL) return rc;
  chm__core_seterr(c, st, "%s", msg);
  free(msg);
  return st;
}

/* Maps a code name returned by trusted Lua ("INVALID") to a status. */
static int status_of(const char *name) {
  int i;
  if (name == NULL) return CHM_ERROR;
  for (i = 0; i < CHM__STATUS_COUNT; i++)
    if (strcmp(chm_errname(i), name) == 0) return i;
  return CHM_ERROR;
}

/* Copies the string at idx into a malloc'ed buffer (NULL on OOM). */
static char *dup_lua(lua_State *L, int idx) {
  size_t len;
  const char *s = lua_tolstring(L, idx, &len);
  char *out = malloc(len + 1);
  if (out != NULL) {
    memcpy(out, s, len);
    out[len] = '\0';
  }
  return out;
}

/* invoke_body(module, fn, db, args...) -> text|nil, msg, code   [-n, +3, e]
** Runs module.fn(db, args...) and turns a table result into JSON. */
static int invoke_body(lua_State *L) {
  int n = lua_gettop(L);
  chm__require(L, lua_tostring(L, 1));
  lua_getfield(L, -1, lua_tostring(L, 2));
  if (!lua_isfunction(L, -1))
    return luaL_error(L, "internal: %s.%s is not a function",
                      lua_tostring(L, 1), lua_tostring(L, 2));
  lua_replace(L, 2);
  lua_pop(L, 1);           /* module table */
  lua_call(L, n - 2, 3);   /* fn(db, args...) */
  if (lua_istable(L, -3)) {
    if (chm__json_encode(L, -3, 1) != 0) return lua_error(L);
    lua_replace(L, -4);
  } else if (!lua_isnil(L, -3) && !lua_isstring(L, -3)) {
    return luaL_error(L, "internal: unexpected result type %s",
                      luaL_typename(L, -3));
  }
  return 3;
}

int chm__core_invoke(chm__core *c, const char *module, const char *fn,
                     int nargs, const char *const *args, char **out) {
  return chm__core_invoke_ex(c, module, fn, NULL, nargs, args, out);
}

int chm__core_invoke_ex(chm__core *c, const char *module, const char *fn,
                        sqlite3 *extra, int nargs, const char *const *args,
                        char **out) {
  lua_State *L = c->L;
  int top, rc, st, i;
  if (out != NULL) *out = NULL;
  if (L == NULL) return chm__core_seterr(c, CHM_MISUSE, "handle is not open");
  clear_err(c);
  top = lua_gettop(L);
  lua_pushcfunction(L, invoke_body);
  lua_pushstring(L, module);
  lua_pushstring(L, fn);
  chm__db_push(L, c->db);
  if (extra != NULL) chm__db_push(L, extra);
  for (i = 0; i < nargs; i++) {
    if (args[i] != NULL)
      lua_pushstring(L, args[i]);
    else
      lua_pushnil(L);
  }
  rc = chm__pcall(L, 3 + nargs + (extra != NULL), 3, &trusted_limits);
  /* an SQL error raised by trusted Lua may be a damaged or read-only store */
  st = rc == CHM_SCRIPT ? store_fail(c, rc, fn) : rc;
  if (!sqlite3_get_autocommit(c->db))
    sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
  if (extra != NULL && !sqlite3_get_autocommit(extra))
    sqlite3_exec(extra, "ROLLBACK", NULL, NULL, NULL);
  if (st != rc) {
    lua_settop(L, top);
    return st;
  }
  if (rc != CHM_OK) {
    seterr_plain(c, rc, lua_tostring(L, -1));
  } else if (lua_isnil(L, -3)) {
    rc = status_of(lua_tostring(L, -1));
    chm__core_seterr(c, rc, "%s",
                     lua_isstring(L, -2) ? lua_tostring(L, -2) : chm_errstr(rc));
  } else {
    if (lua_isstring(L, -1)) { /* a result that also reports a failure */
      rc = status_of(lua_tostring(L, -1));
      chm__core_seterr(c, rc, "%s", lua_isstring(L, -2) ? lua_tostring(L, -2)
                                                        : chm_errstr(rc));
    }
    if (out != NULL && (*out = dup_lua(L, -3)) == NULL)
      rc = chm__core_seterr(c, CHM_NOMEM, "out of memory");
  }
  lua_settop(L, top);
  return rc;
}

int chm__read_file(const char *path, char **text, size_t *len, char **err) {
  FILE *f = fopen(path, "rb");
  char *buf = NULL;
  size_t cap = 0, n = 0;
  *text = NULL;
  *err = NULL;
  if (f == NULL) {
    *err = chm__strdupf("%s: cannot read: %s", path, strerror(errno));
    return CHM_IO;
  }
  for (;;) {
    size_t got;
    if (n + 4096 + 1 > cap) {
      char *nb = realloc(buf, cap = cap * 2 + 8192);
      if (nb == NULL) {
        free(buf);
        fclose(f);
        *err = chm__strdupf("%s: out of memory reading it", path);
        return CHM_NOMEM;
      }
      buf = nb;
    }
    got = fread(buf + n, 1, cap - n - 1, f);
    n += got;
    if (got == 0) break;
  }
  if (ferror(f)) {
    *err = chm__strdupf("%s: read error: %s", path, strerror(errno));
    free(buf);
    fclose(f);
    return CHM_IO;
  }
  fclose(f);
  buf[n] = '\0';
  *text = buf;
  if (len != NULL) *len = n;
  return CHM_OK;
}

/* ---------------------------------------------------------------------
** The read-only query door (chm_*_query, the CLI's `sql`, the REPL's
** `.sql`). sqlite3_stmt_readonly alone lets through statements that write
** nothing to the file yet change the connection the engine writes with:
** BEGIN/SAVEPOINT (leave a transaction open), ATTACH (read any file),
** PRAGMA assignments (foreign_keys=OFF, synchronous=OFF, query_only=ON).
** An authorizer refuses those at prepare time; a progress handler lets
** the door's deadline and Ctrl-C stop a long query.
** ------------------------------------------------------------------- */

/* Pragmas that only report. With a value, only the ones whose argument is
** a table or index name to describe are allowed; "x = v" is refused. */
static const char *const report_pragmas[] = {
    "application_id", "collation_list", "compile_options", "data_version",
    "database_list", "encoding", "foreign_key_check", "foreign_key_list",
    "foreign_keys", "freelist_count", "function_list", "index_info",
    "index_list", "index_xinfo", "integrity_check", "journal_mode",
    "module_list", "page_count", "page_size", "pragma_list", "quick_check",
    "schema_version", "synchronous", "table_info", "table_list",
    "table_xinfo", "user_version", NULL};
static const char *const described_pragmas[] = {
    "foreign_key_check", "foreign_key_list", "index_info", "index_list",
    "index_xinfo", "integrity_check", "quick_check", "table_info",
    "table_list", "table_xinfo", NULL};

static int in_list(const char *const *list, const char *name) {
  for (; name != NULL && *list != NULL; list++)
    if (sqlite3_stricmp(*list, name) == 0) return 1;
  return 0;
}

/* query_authorizer: the prepare-time check of the read-only door. */
static int query_authorizer(void *ud, int action, const char *a,
                            const char *b, const char *dbname,
                            const char *trigger) {
  (void)ud, (void)dbname, (void)trigger;
  switch (action) {
    case SQLITE_TRANSACTION:
    case SQLITE_SAVEPOINT:
    case SQLITE_ATTACH:
    case SQLITE_DETACH: return SQLITE_DENY;
    case SQLITE_PRAGMA:
      if (!in_list(report_pragmas, a)) return SQLITE_DENY;
      if (b != NULL && !in_list(described_pragmas, a)) return SQLITE_DENY;
      return SQLITE_OK;
    default: return SQLITE_OK;
  }
}

#define QUERY_POLL_EVERY 1000 /* SQLite VM steps between budget checks */

/* query_progress: charges the query's VM steps to the open door and stops
** the statement when the door is dying (deadline, budget, Ctrl-C). */
static int query_progress(void *ud) {
  return chm__sandbox_poll((lua_State *)ud, QUERY_POLL_EVERY);
}

/* A statement owned by a userdata, so that an error raised while its rows
** are turned into Lua values (out of memory) still finalizes it and takes
** the progress handler off the connection. */
typedef struct query_guard {
  sqlite3_stmt *st;
  sqlite3 *db;
} query_guard;

static int stmt_gc(lua_State *L) {
  query_guard *g = lua_touserdata(L, 1);
  if (g->st != NULL) sqlite3_finalize(g->st);
  if (g->db != NULL) sqlite3_progress_handler(g->db, 0, NULL, NULL);
  g->st = NULL;
  g->db = NULL;
  return 0;
}

/* guard_stmt(L, db, st)   [-0, +1, m]: own st, and poll the door while
** it runs. */
static void guard_stmt(lua_State *L, sqlite3 *db, sqlite3_stmt *st) {
  query_guard *g = lua_newuserdatauv(L, sizeof *g, 0);
  g->st = NULL;
  g->db = NULL;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, stmt_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  g->st = st;
  g->db = db;
  sqlite3_progress_handler(db, QUERY_POLL_EVERY, query_progress, L);
}

/* unguard_stmt(L, idx): finalize now the statement of the guard at idx. */
static void unguard_stmt(lua_State *L, int idx) {
  lua_pushcfunction(L, stmt_gc);
  lua_pushvalue(L, idx < 0 ? idx - 1 : idx);
  lua_call(L, 1, 0);
}

/* prepare_readonly(L, db, sql) -> statement   [-0, +0, v]: exactly one
** statement that neither writes nor changes the connection. */
static sqlite3_stmt *prepare_readonly(lua_State *L, sqlite3 *db,
                                      const char *sql) {
  sqlite3_stmt *st = NULL;
  const char *tail = NULL;
  int rc;
  sqlite3_set_authorizer(db, query_authorizer, NULL);
  rc = sqlite3_prepare_v2(db, sql, -1, &st, &tail);
  sqlite3_set_authorizer(db, NULL, NULL);
  if (rc == SQLITE_AUTH)
    luaL_error(L, "only one read-only statement is allowed here: "
                  "transactions, SAVEPOINT, ATTACH, DETACH and PRAGMA "
                  "settings are refused because they would change the "
                  "engine's own connection (reporting PRAGMAs such as "
                  "table_info or user_version are fine)");
  if (rc != SQLITE_OK) luaL_error(L, "SQL error: %s", sqlite3_errmsg(db));
  if (st == NULL) luaL_error(L, "SQL error: empty statement");
  while (tail != NULL && (*tail == ' ' || *tail == '\n' || *tail == '\t' ||
                          *tail == '\r' || *tail == ';'))
    tail++;
  if ((tail != NULL && *tail != '\0') || !sqlite3_stmt_readonly(st)) {
    sqlite3_finalize(st);
    luaL_error(L, "only one read-only statement is allowed here "
                  "(writes go through the engine's commands)");
  }
  return st;
}

/* query_body(db, sql) -> json   [-2, +1, e]: one read-only statement. */
static int query_body(lua_State *L) {
  sqlite3 *db = lua_touserdata(L, 1);
  sqlite3_stmt *st = prepare_readonly(L, db, lua_tostring(L, 2));
  int rc, n = 0, ncol, i;
  guard_stmt(L, db, st); /* finalized by __gc if building the rows raises */
  lua_newtable(L);
  ncol = sqlite3_column_count(st);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    lua_createtable(L, 0, ncol);
    for (i = 0; i < ncol; i++) {
      switch (sqlite3_column_type(st, i)) {
        case SQLITE_INTEGER: lua_pushinteger(L, sqlite3_column_int64(st, i)); break;
        case SQLITE_FLOAT: lua_pushnumber(L, sqlite3_column_double(st, i)); break;
        case SQLITE_NULL: chm__json_pushnull(L); break;
        default:
          lua_pushlstring(L, (const char *)sqlite3_column_text(st, i),
                          (size_t)sqlite3_column_bytes(st, i));
      }
      lua_setfield(L, -2, sqlite3_column_name(st, i));
    }
    lua_rawseti(L, -2, ++n);
  }
  if (rc != SQLITE_DONE) {
    lua_pushfstring(L, "SQL error: %s", sqlite3_errmsg(db));
    unguard_stmt(L, -3);
    if (rc == SQLITE_INTERRUPT) chm__sandbox_charge(L, 0, "SQL query");
    return lua_error(L);
  }
  unguard_stmt(L, -2);
  if (n == 0) { /* mark as array so an empty result prints [] */
    lua_pushcfunction(L, chm__json_open);
    lua_call(L, 0, 1);
    lua_getfield(L, -1, "array");
    lua_pushvalue(L, -3);
    lua_call(L, 1, 0);
    lua_pop(L, 1);
  }
  if (chm__json_encode(L, -1, 1) != 0) return lua_error(L);
  return 1;
}

int chm__core_query(chm__core *c, const char *sql, char **out) {
  lua_State *L = c->L;
  int top, rc;
  *out = NULL;
  if (sql == NULL) return chm__core_seterr(c, CHM_MISUSE, "no SQL given");
  clear_err(c);
  top = lua_gettop(L);
  lua_pushcfunction(L, query_body);
  lua_pushlightuserdata(L, c->db);
  lua_pushstring(L, sql);
  rc = chm__pcall(L, 2, 1, &trusted_limits);
  if (rc != CHM_OK) {
    const char *msg = lua_tostring(L, -1);
    const char *over = msg != NULL ? strstr(msg, "script exceeded its ")
                                   : NULL;
    if (msg != NULL && strstr(msg, "read-only statement") != NULL) {
      rc = CHM_DENIED;
    } else if (rc == CHM_BUDGET && over != NULL) {
      /* the kill text is the sandbox's, written for scripts: name the
      ** query instead ("SQL query exceeded its deadline of 30000 ms") */
      const char *end = strstr(over, "\nstack traceback:");
      chm__core_seterr(c, rc, "SQL query exceeded its %.*s; narrow it (a "
                       "WHERE clause, a LIMIT) and run it again",
                       (int)(end != NULL ? end - over - 20
                                         : (ptrdiff_t)strlen(over) - 20),
                       over + 20);
      lua_settop(L, top);
      return rc;
    } else if (rc == CHM_SCRIPT) {
      rc = store_fail(c, CHM_DB, "SQL query");
      if (rc != CHM_DB) {
        lua_settop(L, top);
        return rc;
      }
    }
    seterr_plain(c, rc, msg);
  } else if ((*out = dup_lua(L, -1)) == NULL) {
    rc = chm__core_seterr(c, CHM_NOMEM, "out of memory");
  }
  lua_settop(L, top);
  return rc;
}

/* eval_inner(f) -> json   [-1, +1, e]: runs the chunk and encodes its
** first result, both inside the script's own door, so the script's limits
** (not the trusted ones) cover building the answer. */
static int eval_inner(lua_State *L) {
  lua_call(L, 0, 1);
  if (chm__json_encode(L, -1, 0) != 0) return lua_error(L);
  return 1;
}

/* eval_body(src, limits...) -> json | nil, msg, code   [-4, +3, e] */
static int eval_body(lua_State *L) {
  size_t len;
  const char *src = lua_tolstring(L, 1, &len);
  chm_limits lim;
  int rc;
  lim.instructions = (uint64_t)lua_tointeger(L, 2);
  lim.deadline_ms = (uint32_t)lua_tointeger(L, 3);
  lim.memory_bytes = (size_t)lua_tointeger(L, 4);
  lua_settop(L, 1);
  chm__push_sandbox_env(L);                         /* 2: env */
  lua_pushcfunction(L, eval_inner);                 /* 3 */
  if (chm__load_text(L, src, len, "=eval", 2) != CHM_OK) {
    lua_pushnil(L);
    lua_insert(L, -2);
    lua_pushstring(L, "SCRIPT");
    return 3;
  }
  rc = chm__pcall(L, 1, 1, &lim);                   /* eval_inner(chunk) */
  if (rc != CHM_OK) {
    lua_pushnil(L);
    lua_insert(L, -2);
    lua_pushstring(L, chm_errname(rc));
    return 3;
  }
  lua_pushnil(L);
  lua_pushnil(L);
  return 3;
}

int chm__core_eval(chm__core *c, const char *src, const chm_limits *limits,
                   char **out) {
  lua_State *L = c->L;
  chm_limits lim;
  int top, rc;
  *out = NULL;
  if (src == NULL) return chm__core_seterr(c, CHM_MISUSE, "no source given");
  clear_err(c);
  chm_limits_default(&lim);
  if (limits != NULL) {
    if (limits->instructions) lim.instructions = limits->instructions;
    if (limits->deadline_ms) lim.deadline_ms = limits->deadline_ms;
    if (limits->memory_bytes) lim.memory_bytes = limits->memory_bytes;
  }
  top = lua_gettop(L);
  lua_pushcfunction(L, eval_body);
  lua_pushstring(L, src);
  lua_pushinteger(L, (lua_Integer)lim.instructions);
  lua_pushinteger(L, (lua_Integer)lim.deadline_ms);
  lua_pushinteger(L, (lua_Integer)lim.memory_bytes);
  rc = chm__pcall(L, 4, 3, &trusted_limits);
  if (rc != CHM_OK) {
    chm__core_seterr(c, rc, "%s", lua_tostring(L, -1));
  } else if (lua_isnil(L, -3)) {
    rc = status_of(lua_tostring(L, -1));
    chm__core_seterr(c, rc, "%s", lua_tostring(L, -2));
  } else if ((*out = dup_lua(L, -3)) == NULL) {
    rc = chm__core_seterr(c, CHM_NOMEM, "out of memory");
  }
  lua_settop(L, top);
  if (rc == CHM_MEMORY) lua_gc(L, LUA_GCCOLLECT);
  return rc;
}
