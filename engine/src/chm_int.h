/*
** chm_int.h — internal interfaces shared by the files of libchameleon.
** Nothing here is public: the CLI and the Lua module use chameleon.h only.
** Sections: embedded files, sandbox (the one door into Lua), JSON codec,
** identifiers and time, the store (SQLite) and the handle core.
*/
#ifndef CHM_INT_H
#define CHM_INT_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>
#include <lauxlib.h>
#include <sqlite3.h>

#include "chameleon.h"

/* ===================================================================== */
/* Embedded files (lua files and sql files, generated at build time)     */
/* ===================================================================== */

typedef struct chm__blob {
  const char *name; /* path relative to the repository: "lua/expr.lua" */
  const char *data; /* file contents, NUL-terminated */
  size_t len;       /* length without the NUL */
} chm__blob;

extern const chm__blob chm__embedded[]; /* ends with a {NULL,NULL,0} row */

/* chm__embedded_find(name) -> the blob of that path, or NULL. */
const chm__blob *chm__embedded_find(const char *name);

/* ===================================================================== */
/* Sandbox (sandbox.c): one capped lua_State per open store               */
/* ===================================================================== */

/* chm__sandbox_new(memory_bytes) -> a new lua_State whose allocator refuses
** to grow the heap past memory_bytes, with only the safe standard libraries
** opened (base, string, table, math, utf8, coroutine: never io, os, debug,
** package), the string metatable locked and pointing at the bounded string
** library, and the internal `chm` table registered for trusted code.
** NULL when out of memory. Free with chm__sandbox_close. */
lua_State *chm__sandbox_new(size_t memory_bytes);

/* chm__sandbox_close(L): close a state made by chm__sandbox_new. NULL-safe. */
void chm__sandbox_close(lua_State *L);

/* chm__sandbox_set_memory(L, bytes): change the heap cap (0 = default). */
void chm__sandbox_set_memory(lua_State *L, size_t bytes);

/* chm__pcall(L, nargs, nres, limits)   [-(nargs+1), +nres | +1, -]
** THE one door into Lua: every protected call in the library goes through
** it. Calls the function below the nargs arguments with a traceback
** message handler, under the instruction budget and wall-clock deadline of
** `limits` (NULL = defaults; nested calls get the tighter of the outer and
** inner limits). A budget overrun cannot be swallowed by pcall, xpcall,
** coroutines or __close: once it fires, every further hook fires again
** until this door returns. On success leaves nres results and returns
** CHM_OK. On failure leaves one error string and returns CHM_SCRIPT,
** CHM_BUDGET or CHM_MEMORY. Restores the stack on every path. */
int chm__pcall(lua_State *L, int nargs, int nres, const chm_limits *limits);

/* chm__sandbox_interrupt(L): ask the running door to stop with the error
** "interrupted" at its next hook firing. Async-signal-safe (sets a
** sig_atomic_t); no effect on states not made by chm__sandbox_new.
** chm__sandbox_clear_interrupt(L) resets the request. */
void chm__sandbox_interrupt(lua_State *L);
void chm__sandbox_clear_interrupt(lua_State *L);

/* chm__sandbox_interrupted(L) -> 1 while an interrupt request is pending
** (the run loop stops between operations on it). */
int chm__sandbox_interrupted(lua_State *L);

/* chm__push_sandbox_env(L)   [-0, +1, m]
** Push a fresh environment table built from the allow-list (fresh copies
** of the library tables, so a script can only damage its own copies). */
void chm__push_sandbox_env(lua_State *L);

/* chm__load_text(L, src, len, chunkname, envidx)   [-0, +1, m]
** Load src as a TEXT chunk (bytecode is refused) with the table at envidx
** as its _ENV. Pushes the function and returns CHM_OK, or pushes an error
** message and returns CHM_SCRIPT. */
int chm__load_text(lua_State *L, const char *src, size_t len,
                   const char *chunkname, int envidx);

/* chm__require(L, name)   [-0, +1, e]
** Push the trusted module lua/<name>.lua from the embedded files, loading
** it once per state into the trusted environment (see lualib.c). */
void chm__require(lua_State *L, const char *name);

/* ===================================================================== */
/* JSON (json.c)                                                          */
/* ===================================================================== */

/* chm__json_encode(L, idx, pretty)   [-0, +1, m]
** Push the canonical JSON text of the value at idx: object keys sorted,
** integers as integers, floats in the shortest form that round-trips,
** UTF-8 passed through, json null sentinel as null. pretty != 0 indents
** two spaces. Memory comes from L's allocator (so the sandbox cap covers
** it). Returns 0, or pushes an error message and returns -1 (cycles,
** non-string keys in objects, NaN/inf, functions, depth > 1000). */
int chm__json_encode(lua_State *L, int idx, int pretty);

/* chm__json_decode(L, text, len)   [-0, +1, m]
** Push the Lua value of the JSON text: integers that fit in int64 as Lua
** integers, other numbers as floats, null as the null sentinel, arrays
** tagged with the array metatable (so [] survives). Returns 0, or pushes
** an error message naming the byte offset and returns -1. */
int chm__json_decode(lua_State *L, const char *text, size_t len);

/* chm__json_pushnull(L) [-0,+1,-]: push the json null sentinel. */
void chm__json_pushnull(lua_State *L);

/* chm__json_open(L) [-0,+1,m]: push the table {encode, decode, null,
** array} — the `json` library seen by scripts and by the Lua module. */
int chm__json_open(lua_State *L);

/* ===================================================================== */
/* Identifiers and time (uuid.c, clock.c)                                 */
/* ===================================================================== */

/* chm__uuid7(out): write a new RFC 9562 version-7 UUID (36 chars + NUL)
** into out[37]. Time-ordered and monotonic within the process. */
void chm__uuid7(char out[37]);

/* chm__now_ms() -> milliseconds since the epoch from the engine's clock:
** the real clock, or the virtual clock when one is set. */
int64_t chm__now_ms(void);

/* chm__mono_ms() -> a monotonic millisecond counter (deadlines only). */
int64_t chm__mono_ms(void);

/* chm__sha256_hex(data, len, out): hex SHA-256 of data into out[65];
** 0, or -1 when libcrypto fails (out is then ""). */
int chm__sha256_hex(const void *data, size_t len, char out[65]);

/* chm.sha256(s) -> hex string   [-1, +1, e] (registered in the chm table) */
int chm__l_sha256(lua_State *L);

/* ===================================================================== */
/* Store (store.c): SQLite files with embedded, versioned schemas         */
/* ===================================================================== */

enum chm__store_kind { CHM__META = 0, CHM__INSTANCE = 1 };

/* chm__store_open(path, kind, create, &db, &err): open path with WAL,
** foreign_keys=ON, synchronous=FULL, a busy timeout, then bring the schema
** to the newest version of `kind` (sql/meta/NNN_*.sql or
** sql/instance/NNN_*.sql) in one transaction. create==0 refuses a missing
** file with CHM_NOTFOUND. On failure *err is a malloc'ed message. */
int chm__store_open(const char *path, int kind, int create, sqlite3 **db,
                    char **err);

/* chm__store_status(db, what, &msg) -> the status of the last SQLite
** error on db: CHM_CORRUPT for SQLITE_CORRUPT and SQLITE_NOTADB, CHM_IO
** for SQLITE_READONLY, SQLITE_CANTOPEN and SQLITE_IOERR (extended codes
** included), else CHM_DB. For the first two kinds *msg is a malloc'ed
** message naming the store file and what to do, with `what` (the failed
** operation) and SQLite's text; else *msg is NULL. */
int chm__store_status(sqlite3 *db, const char *what, char **msg);

/* chm__db_push(L, db)   [-0, +1, m]
** Push a `db` userdata over the connection (not owned: the core closes
** it) for TRUSTED Lua only. Methods (all raise on SQL errors, with the
** statement's text in the message):
**   db:exec(sql, ...) -> number of changed rows
**   db:rows(sql, ...) -> array of row tables (column -> value; NULL -> nil)
**   db:one(sql, ...)  -> first row table or nil
**   db:begin() / db:commit() / db:rollback()  (BEGIN IMMEDIATE ...)
** Parameters bind integers, floats, strings, booleans (0/1), nil and the
** json null (NULL). Statements are prepared once and cached (dbbind.c). */
void chm__db_push(lua_State *L, sqlite3 *db);

/* The statement cache belongs to L (one store per state): it is finalized
** when L is closed, so close the state before the connection. */

/* ===================================================================== */
/* Handle core (core.c)                                                   */
/* ===================================================================== */

typedef struct chm__core {
  sqlite3 *db;      /* the store */
  lua_State *L;     /* its sandbox */
  int kind;         /* CHM__META or CHM__INSTANCE */
  char *path;       /* file path (malloc'ed) */
  char *errmsg;     /* last detailed message (malloc'ed) or NULL = "ok" */
  chm_write_fn out_fn; /* REPL print sink (chm_*_repl_output) or NULL */
  void *out_ud;        /* its user data */
} chm__core;

/* chm__strdupf(fmt, ...) -> a malloc'ed formatted string (NULL on OOM). */
char *chm__strdupf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* chm__core_seterr(c, rc, fmt, ...) -> rc, after storing the message. */
int chm__core_seterr(chm__core *c, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* chm__core_errmsg(c) -> message or "ok". */
const char *chm__core_errmsg(const chm__core *c);

/* chm__instance_core(inst) -> the core of an instance handle (instance.c),
** for the token engine's files; NULL when inst is NULL. */
chm__core *chm__instance_core(chm_instance *inst);
#define CHM_HAVE_INSTANCE_CORE 1

/* chm__meta_core(m) -> the core of a meta handle (meta.c), for
** exprfn.c; NULL when m is NULL. */
chm__core *chm__meta_core(chm_meta *m);

#endif /* CHM_INT_H */
