/*
** sandbox.h — the private seams between the three files of the sandbox:
** sandbox.c (state, allocator, budget, door, environments), bounded.c (the
** library functions bounded by the budget) and lualib.c (the trusted side:
** the `chm` table and the embedded-module loader). Internal to those files
** and to core.c; the lead may fold these declarations into chm_int.h.
*/
#ifndef CHM_SANDBOX_H
#define CHM_SANDBOX_H

#include "chm_int.h"

/* ===================================================================== */
/* Budget and memory accounting (sandbox.c)                               */
/* ===================================================================== */

/* chm__sandbox_charge(L, units, what)   [-0, +0, v]
** Charge `units` of work done inside a C library function (one unit costs
** about as much as one VM instruction) to the innermost open door, and check
** its deadline. When the budget or the deadline is gone the state is marked
** killed (every later hook firing raises again, see sandbox.c) and this
** raises "<where>: <what> (budget exceeded): <budget message>", or the plain
** budget message when what is NULL. Outside any door it does nothing. */
void chm__sandbox_charge(lua_State *L, uint64_t units, const char *what);

/* chm__sandbox_poll(L, units) -> 1 when the innermost open door is dying
** (budget, deadline, interrupt or memory), 0 otherwise   [-0, +0, -]
** The non-raising twin of chm__sandbox_charge, for C code that must not
** longjmp (an SQLite progress handler): it charges `units`, checks the
** limits and marks the state killed; the caller unwinds on its own and
** then calls chm__sandbox_charge(L, 0, what) to raise the kill message.
** Outside any door it charges nothing and returns 0. */
int chm__sandbox_poll(lua_State *L, uint64_t units);

/* chm__sandbox_reserve(L, bytes, what)   [-0, +0, v]
** Called by a C function about to build a result of `bytes` bytes: when
** that is more than the open door's memory cap leaves, mark the state
** killed for memory and raise "script exceeded its memory cap (N MiB): what
** would need `bytes` bytes". Outside any door it does nothing. */
void chm__sandbox_reserve(lua_State *L, size_t bytes, const char *what);

/* ===================================================================== */
/* Bounded library functions (bounded.c)                                  */
/* ===================================================================== */

/* chm__bound_lib(L, idx, libname)   [-0, +0, m]
** Replace, in place, the C functions of the library table at idx with
** versions that charge their work to the budget. libname says which
** library it is: "string" (also installs the step-counted pattern matcher
** for find/match/gmatch/gsub, the capped string.rep, and removes
** string.dump), "table" (bounded concat; insert/remove/move/unpack/sort/
** pack charged by size), "utf8", "_G" (tonumber), "json", or "stringmt"
** (the arithmetic metamethods of the string metatable). */
void chm__bound_lib(lua_State *L, int idx, const char *libname);

/* ===================================================================== */
/* Trusted side (lualib.c)                                                */
/* ===================================================================== */

/* chm__open_internals(L)   [-0, +1, m]
** Push the state's one `chm` table (created with the trusted environment
** on first use): json, uuid, now, sha256, sandbox_env, load, run,
** callerline, funcinfo. Trusted code only: never put it, or anything that
** reaches it, in a sandbox environment. Returns 1 (a lua_CFunction). */
int chm__open_internals(lua_State *L);

#endif /* CHM_SANDBOX_H */
