/*
** sandbox.c — the Lua sandbox: one capped lua_State per open store, and the
** one door into it (chm__pcall). Owns the capped allocator, the count hook
** and its stack of budget frames, the allow-listed environments user
** scripts run in, and the text-only loader. Relies on bounded.c for library
** functions that charge their work to the budget, on lualib.c for the
** trusted side (the `chm` table, embedded modules) and on json.c for the
** `json` library. After Redis's script_lua.c: commented allow-lists, and a
** hook that, once it fires, keeps firing until the door returns.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lualib.h>

#include "chm_int.h"
#include "sandbox.h"

/* ===================================================================== */
/* Settings                                                               */
/* ===================================================================== */

#define HOOK_EVERY 1000                   /* VM instructions per hook firing */
#define DEFAULT_INSTRUCTIONS 10000000u    /* chm_limits_default */
#define DEFAULT_DEADLINE_MS 1000u         /* chm_limits_default */
#define DEFAULT_MEMORY ((size_t)64 << 20) /* chm_limits_default */
#define CLOCK_EVERY 1000           /* charged units between clock reads */
#define MSG_SIZE 512               /* longest kill message kept */
#define NO_BUDGET (UINT64_MAX - 1) /* a frame's stop_at never passes it */

/* Limits of the door that builds a new state: generous, it runs no script. */
static const chm_limits init_limits = {1000000000u, 60000u, 0};

/* ===================================================================== */
/* State                                                                  */
/* ===================================================================== */

/* One open door: lives on the C stack of chm__pcall. */
typedef struct frame {
  struct frame *prev;   /* enclosing door, NULL for the outermost */
  uint64_t stop_at;     /* sandbox.count beyond which the budget is gone */
  uint64_t budget;      /* the budget to report, in instructions */
  int64_t deadline;     /* chm__mono_ms() at which time is up */
  uint32_t deadline_ms; /* the deadline to report, in ms */
  size_t saved_cap;     /* heap cap to restore when the door closes */
} frame;

/* Everything the allocator, the hook and the door share. malloc'ed apart
** from the Lua heap; reachable as the allocator's ud and through
** lua_getextraspace of every thread of the state. */
typedef struct sandbox {
  size_t used;             /* bytes currently allocated by the state */
  size_t cap;              /* cap enforced while a door is open */
  size_t base_cap;         /* the handle's cap (chm__sandbox_set_memory) */
  uint64_t count;          /* instructions and charged units, ever */
  uint64_t unclocked;      /* units charged since the clock was last read */
  frame *top;              /* innermost open door; NULL: no door is open */
  int killed;              /* 0, CHM_BUDGET or CHM_MEMORY: the door is dying */
  int refused;             /* a growth was refused and not yet retried */
  const void *refused_ptr; /* that request, to recognise Lua's retry */
  size_t refused_osize;
  size_t refused_nsize;
  char killmsg[MSG_SIZE]; /* what every hook firing raises once killed */
  volatile int interrupted; /* set by chm__sandbox_interrupt (a signal handler may) */
} sandbox;

/* Registry keys: the addresses of these statics. */
static const char base_key = 0;  /* allowed base functions, by name */
static const char libs_key = 0;  /* master library tables, by name */
static const char envmt_key = 0; /* the locked metatable of environments */

static sandbox *sandbox_of(lua_State *L) {
  return *(sandbox **)lua_getextraspace(L);
}

static void count_hook(lua_State *L, lua_Debug *ar);
static void *sandbox_alloc(void *ud, void *ptr, size_t osize, size_t nsize);

static void set_hook(lua_State *L, int every) {
  lua_sethook(L, count_hook, LUA_MASKCOUNT, every);
}

/* Formats a heap size for messages: "64 MiB", "512 KiB" or "1000 bytes". */
static void format_size(char *out, size_t size, size_t bytes) {
  if (bytes >= ((size_t)1 << 20) && bytes % ((size_t)1 << 20) == 0)
    snprintf(out, size, "%zu MiB", bytes >> 20);
  else if (bytes >= 1024 && bytes % 1024 == 0)
    snprintf(out, size, "%zu KiB", bytes >> 10);
  else
    snprintf(out, size, "%zu bytes", bytes);
}

/* ===================================================================== */
/* Killing a door                                                         */
/* ===================================================================== */

/* kill(L, sb, code, level, what, why): mark the open door as dying with
** code and remember the message every later hook firing raises:
** "<source>:<line>: " of the function `level` levels up (none when level
** is negative or L is NULL), then "what (budget exceeded): " when what is
** given, then why. The first kill wins. */
static void kill(lua_State *L, sandbox *sb, int code, int level,
                 const char *what, const char *why) {
  char where[LUA_IDSIZE + 24] = "";
  lua_Debug ar;
  if (sb->killed) return;
  if (L != NULL && level >= 0 && lua_getstack(L, level, &ar) &&
      lua_getinfo(L, "Sl", &ar) && ar.currentline > 0)
    snprintf(where, sizeof where, "%s:%d: ", ar.short_src, ar.currentline);
  if (what != NULL)
    snprintf(sb->killmsg, sizeof sb->killmsg, "%s%s (budget exceeded): %s",
             where, what, why);
  else
    snprintf(sb->killmsg, sizeof sb->killmsg, "%s%s", where, why);
  sb->killed = code;
}

/* The cap was hit: a refused growth that Lua did not (or could not)
** recover from by its emergency collection. Called without a lua_State
** from the allocator, so the message has no position. */
static void memory_kill(sandbox *sb) {
  char why[160], size[32];
  sb->refused = 0;
  format_size(size, sizeof size, sb->cap);
  snprintf(why, sizeof why, "script exceeded its memory cap (%s)", size);
  kill(NULL, sb, CHM_MEMORY, -1, NULL, why);
}

/* check_limits(L, sb, level, what) -> 1 when the open door is (now) dying.
** Compares the instruction count and the clock with the innermost frame;
** a frame already carries the tighter of its own and its enclosing
** doors' limits. */
static int check_limits(lua_State *L, sandbox *sb, int level,
                        const char *what) {
  const frame *fr = sb->top;
  char why[160];
  if (sb->killed) return 1;
  if (fr == NULL) return 0;
  sb->unclocked = 0;
  if (sb->interrupted)
    snprintf(why, sizeof why, "interrupted");
  else if (sb->count > fr->stop_at)
    snprintf(why, sizeof why,
             "script exceeded its instruction budget of %llu instructions",
             (unsigned long long)fr->budget);
  else if (chm__mono_ms() >= fr->deadline)
    snprintf(why, sizeof why, "script exceeded its deadline of %lu ms",
             (unsigned long)fr->deadline_ms);
  else
    return 0;
  kill(L, sb, CHM_BUDGET, level, what, why);
  return 1;
}

/* Raises the kill message on L, and makes L's hook fire on every
** instruction so that whatever catches this error cannot run on. */
static int raise_kill(lua_State *L, sandbox *sb) {
  if (lua_gethookcount(L) != 1) set_hook(L, 1);
  lua_pushstring(L, sb->killmsg);
  return lua_error(L);
}

/* The count hook, installed on the main thread when the state is made and
** inherited by every coroutine. Outside a door it only restores the normal
** rate. Inside one it adds the instructions run since its last firing and
** checks the limits; once the door is dying it raises on every firing, in
** every thread, until the door returns: pcall, xpcall, coroutines and
** __close handlers all run instructions, so none can swallow the kill. */
static void count_hook(lua_State *L, lua_Debug *ar) {
  sandbox *sb = sandbox_of(L);
  int every = lua_gethookcount(L);
  (void)ar;
  if (sb->top != NULL) {
    if (sb->refused) memory_kill(sb);
    if (!sb->killed) {
      sb->count += (uint64_t)every;
      check_limits(L, sb, 0, NULL);
    }
    if (sb->killed) raise_kill(L, sb);
  }
  if (every != HOOK_EVERY) set_hook(L, HOOK_EVERY); /* after a kill */
}

/* foreign_state(L) -> 1 when L was not made by chm__sandbox_new (the Lua
** module's host state, a test's plain state): charging is then a no-op. */
static int foreign_state(lua_State *L) {
  void *ud;
  return lua_getallocf(L, &ud) != sandbox_alloc;
}

void chm__sandbox_interrupt(lua_State *L) {
  if (L != NULL && !foreign_state(L)) sandbox_of(L)->interrupted = 1;
}

int chm__sandbox_interrupted(lua_State *L) {
  return L != NULL && !foreign_state(L) && sandbox_of(L)->interrupted;
}

void chm__sandbox_clear_interrupt(lua_State *L) {
  if (L != NULL && !foreign_state(L)) sandbox_of(L)->interrupted = 0;
}

void chm__sandbox_charge(lua_State *L, uint64_t units, const char *what) {
  sandbox *sb;
  if (foreign_state(L)) return;
  sb = sandbox_of(L);
  if (sb->top == NULL) return;
  if (sb->refused) memory_kill(sb);
  if (!sb->killed) {
    sb->count = units > UINT64_MAX - sb->count ? UINT64_MAX : sb->count + units;
    sb->unclocked += units;
    if (sb->count > sb->top->stop_at || sb->unclocked >= CLOCK_EVERY)
      check_limits(L, sb, 1, what);
  }
  if (sb->killed) raise_kill(L, sb);
}

int chm__sandbox_poll(lua_State *L, uint64_t units) {
  sandbox *sb;
  if (foreign_state(L)) return 0;
  sb = sandbox_of(L);
  if (sb->top == NULL) return 0;
  if (sb->refused) memory_kill(sb);
  if (!sb->killed) {
    sb->count = units > UINT64_MAX - sb->count ? UINT64_MAX : sb->count + units;
    check_limits(NULL, sb, -1, NULL);
  }
  return sb->killed != 0;
}

void chm__sandbox_reserve(lua_State *L, size_t bytes, const char *what) {
  sandbox *sb;
  char why[200], size[32];
  if (foreign_state(L)) return;
  sb = sandbox_of(L);
  if (sb->top == NULL) return;
  if (!sb->killed) {
    if (sb->used <= sb->cap && bytes <= sb->cap - sb->used) return;
    format_size(size, sizeof size, sb->cap);
    if (bytes == SIZE_MAX)
      snprintf(why, sizeof why,
               "script exceeded its memory cap (%s): %s result too large", size,
               what);
    else
      snprintf(why, sizeof why,
               "script exceeded its memory cap (%s): %s would need %zu bytes",
               size, what, bytes);
    kill(L, sb, CHM_MEMORY, 1, NULL, why);
  }
  raise_kill(L, sb);
}

/* ===================================================================== */
/* The capped allocator                                                   */
/* ===================================================================== */

/* grant(sb, ptr, osize, nsize) -> may this growth happen?
** Lua answers a refused allocation with an emergency collection and one
** retry of the very same request; only when that retry fails too (or
** when no retry comes: lauxlib's buffers and the string table do not
** retry) is the cap really hit, and the door is killed for memory. */
static int grant(sandbox *sb, const void *ptr, size_t osize, size_t nsize) {
  size_t grow = nsize - (ptr != NULL ? osize : 0);
  int retry = sb->refused && sb->refused_ptr == ptr &&
              sb->refused_osize == osize && sb->refused_nsize == nsize;
  if (sb->refused && !retry) memory_kill(sb); /* the last one was final */
  sb->refused = 0;
  if (sb->used <= sb->cap && grow <= sb->cap - sb->used) return 1;
  if (retry) {
    memory_kill(sb);
  } else {
    sb->refused = 1;
    sb->refused_ptr = ptr;
    sb->refused_osize = osize;
    sb->refused_nsize = nsize;
  }
  return 0;
}

/* The lua_Alloc of every sandbox state. The cap applies only while a door
** is open: outside one, only the engine's own C code runs, and a refusal
** there would be an unprotected error. */
static void *sandbox_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  sandbox *sb = (sandbox *)ud;
  size_t old = ptr != NULL ? osize : 0;
  void *p;
  if (nsize == 0) {
    free(ptr);
    sb->used -= old;
    return NULL;
  }
  if (nsize > old && sb->top != NULL && !grant(sb, ptr, osize, nsize))
    return NULL;
  p = realloc(ptr, nsize);
  if (p == NULL) return nsize <= old ? ptr : NULL; /* shrinking never fails */
  sb->used = sb->used - old + nsize;
  return p;
}

/* ===================================================================== */
/* The door                                                               */
/* ===================================================================== */

/* msgh(err) -> message with a traceback   [-1, +1, m]
** The one message handler. Never calls __tostring (an error object is
** script-controlled code): a non-string error becomes "(error object is
** a <type> value)". While the door is dying it adds nothing, because the
** door reports the kill message instead. */
static int msgh(lua_State *L) {
  const char *msg;
  int t = lua_type(L, 1);
  if (sandbox_of(L)->killed) return 1;
  if (t == LUA_TSTRING || t == LUA_TNUMBER)
    msg = lua_tostring(L, 1);
  else
    msg =
        lua_pushfstring(L, "(error object is a %s value)", lua_typename(L, t));
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Pushes a frame for a door with `limits` (NULL or zero fields: defaults),
** tightened by the enclosing door's frame. */
static void open_frame(sandbox *sb, frame *fr, const chm_limits *limits) {
  uint64_t budget = DEFAULT_INSTRUCTIONS;
  uint32_t ms = DEFAULT_DEADLINE_MS;
  size_t cap = sb->base_cap;
  const frame *up = sb->top;
  if (limits != NULL) {
    if (limits->instructions != 0) budget = limits->instructions;
    if (limits->deadline_ms != 0) ms = limits->deadline_ms;
    if (limits->memory_bytes != 0) cap = limits->memory_bytes;
  }
  fr->prev = sb->top;
  fr->budget = budget;
  fr->stop_at = budget > NO_BUDGET - sb->count ? NO_BUDGET : sb->count + budget;
  fr->deadline_ms = ms;
  fr->deadline = chm__mono_ms() + ms;
  fr->saved_cap = sb->cap;
  if (up != NULL) {
    if (up->stop_at < fr->stop_at) {
      fr->stop_at = up->stop_at;
      fr->budget = up->budget;
    }
    if (up->deadline < fr->deadline) {
      fr->deadline = up->deadline;
      fr->deadline_ms = up->deadline_ms;
    }
    if (sb->cap < cap) cap = sb->cap;
  }
  sb->cap = cap;
  sb->unclocked = 0;
  sb->top = fr;
}

/* Pops the frame: restores the cap, forgets the kill and the hook rate of
** this thread, then checks whether the enclosing door has run out too (it
** then dies at its next hook firing). */
static void close_frame(lua_State *L, sandbox *sb, frame *fr) {
  sb->top = fr->prev;
  sb->cap = fr->saved_cap;
  sb->killed = 0;
  sb->refused = 0;
  if (lua_gethookcount(L) != HOOK_EVERY) set_hook(L, HOOK_EVERY);
  if (sb->top != NULL) check_limits(L, sb, -1, NULL);
}

int chm__pcall(lua_State *L, int nargs, int nres, const chm_limits *limits) {
  sandbox *sb = sandbox_of(L);
  int fn = lua_gettop(L) - nargs; /* index of the function */
  int status, rc;
  char msg[MSG_SIZE];
  frame fr;
  if (sb->top != NULL && sb->refused) memory_kill(sb);
  if (sb->killed || check_limits(L, sb, -1, NULL)) {
    /* The enclosing door is dying: run nothing. */
    lua_settop(L, fn - 1);
    lua_pushstring(L, sb->killmsg);
    return sb->killed;
  }
  open_frame(sb, &fr, limits);
  lua_pushcfunction(L, msgh);
  lua_insert(L, fn);
  status = lua_pcall(L, nargs, nres, fn);
  if (sb->refused) memory_kill(sb);
  if (status == LUA_OK && !sb->killed) {
    lua_remove(L, fn);
    close_frame(L, sb, &fr);
    return CHM_OK;
  }
  if (sb->killed) {
    rc = sb->killed;
    memcpy(msg, sb->killmsg, sizeof msg);
  } else if (status == LUA_ERRMEM) {
    char size[32];
    rc = CHM_MEMORY;
    format_size(size, sizeof size, sb->cap);
    snprintf(msg, sizeof msg, "script exceeded its memory cap (%s)", size);
  } else {
    rc = CHM_SCRIPT;
  }
  close_frame(L, sb, &fr); /* before pushing: the cap is the outer one */
  if (rc == CHM_SCRIPT) {
    if (lua_type(L, -1) != LUA_TSTRING)
      lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, -1));
    lua_replace(L, fn);
    lua_settop(L, fn);
  } else {
    lua_settop(L, fn - 1);
    if (rc == CHM_MEMORY) lua_gc(L, LUA_GCCOLLECT, 0);
    lua_pushstring(L, msg);
  }
  return rc;
}

void chm_limits_default(chm_limits *out) {
  out->instructions = DEFAULT_INSTRUCTIONS;
  out->deadline_ms = DEFAULT_DEADLINE_MS;
  out->memory_bytes = DEFAULT_MEMORY;
}

/* ===================================================================== */
/* Loading text                                                           */
/* ===================================================================== */

int chm__load_text(lua_State *L, const char *src, size_t len,
                   const char *chunkname, int envidx) {
  envidx = lua_absindex(L, envidx);
  /* Mode "t": a chunk starting with the bytecode signature is refused
  ** with "attempt to load a binary chunk (mode is 't')". */
  if (luaL_loadbufferx(L, src, len, chunkname ? chunkname : "=(load)", "t") !=
      LUA_OK) {
    if (lua_type(L, -1) != LUA_TSTRING) {
      lua_pop(L, 1);
      lua_pushliteral(L, "cannot load the chunk");
    }
    return CHM_SCRIPT;
  }
  lua_pushvalue(L, envidx);
  if (lua_setupvalue(L, -2, 1) == NULL) lua_pop(L, 1); /* no _ENV upvalue */
  return CHM_OK;
}

/* ===================================================================== */
/* The sandbox's own base functions                                       */
/* ===================================================================== */

/* setmetatable(t, mt) -> t   [-2, +1, e]
** Base setmetatable, minus finalizers: a metatable with a __gc field is
** refused, because a finalizer runs whenever the collector decides, also
** outside any door and its budget. (Lua only honours __gc fields present
** when setmetatable is called, so adding one later has no effect.) */
static int sb_setmetatable(lua_State *L) {
  int t = lua_type(L, 2);
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
  if (t == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    if (lua_rawget(L, 2) != LUA_TNIL)
      return luaL_error(L, "__gc is not allowed in the sandbox");
    lua_pop(L, 1);
  }
  if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
    return luaL_error(L, "cannot change a protected metatable");
  lua_settop(L, 2);
  lua_setmetatable(L, 1);
  return 1;
}

/* getmetatable(v) -> metatable | its __metatable field | nil   [-1, +1, -]
** Base getmetatable, except that strings have none: their metatable is
** the state's, shared by every script and by trusted code. */
static int sb_getmetatable(lua_State *L) {
  luaL_checkany(L, 1);
  if (lua_type(L, 1) == LUA_TSTRING || !lua_getmetatable(L, 1)) {
    lua_pushnil(L);
    return 1;
  }
  luaL_getmetafield(L, 1, "__metatable"); /* pushes nothing when absent */
  return 1;
}

/* load(chunk [, chunkname [, mode [, env]]]) -> f | nil, err
** [-1..4, +1|2, m]
** The sandbox's load: source strings only (no reader functions), always
** mode "t" (bytecode is refused whatever mode says), and the environment
** defaults to the one this load came with (upvalue 1), never the state's
** globals. Compilation is charged by length. */
static int sb_load(lua_State *L) {
  size_t len;
  const char *src, *name;
  int env = lua_isnone(L, 4) ? lua_upvalueindex(1) : 4;
  if (lua_type(L, 1) == LUA_TFUNCTION) {
    lua_pushnil(L);
    lua_pushliteral(L, "load: the sandbox loads source strings only");
    return 2;
  }
  src = luaL_checklstring(L, 1, &len);
  name = luaL_optstring(L, 2, src);
  chm__sandbox_charge(L, 1 + (len >> 4), NULL);
  if (chm__load_text(L, src, len, name, env) != CHM_OK) {
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  return 1;
}

/* ===================================================================== */
/* The allow-list                                                         */
/* ===================================================================== */

/* Base functions a sandbox environment gets, each with the reason it is
** safe. Everything else in the base library is absent: dofile, loadfile
** (files), load (replaced by sb_load), collectgarbage (GC control would
** let a script stall or skew the heap others share), print and warn
** (output), require (there is no package library), _G (the state's
** globals). */
static const struct {
  const char *name;
  lua_CFunction replacement; /* NULL: the base library's own function */
} allowed_base[] = {
    {"assert", NULL},   /* raises an error; touches nothing else */
    {"error", NULL},    /* the same; the door never __tostring's it */
    {"ipairs", NULL},   /* iteration: each step is Lua code, budgeted */
    {"next", NULL},     /* raw iteration over a table the script holds */
    {"pairs", NULL},    /* as next; a __pairs runs under the budget */
    {"pcall", NULL},    /* cannot swallow a kill: the hook keeps firing */
    {"xpcall", NULL},   /* replaced by xpcall_src below, see there */
    {"select", NULL},   /* argument juggling, bounded by the stack */
    {"tonumber", NULL}, /* pure conversion, charged by length */
    {"tostring", NULL}, /* pure; __tostring/__name run under the budget */
    {"type", NULL},     /* pure */
    {"rawequal", NULL}, /* pure */
    {"rawlen", NULL},   /* pure */
    {"rawget", NULL},   /* reads only what the script can already reach */
    {"rawset", NULL},   /* writes only what the script can reach: its own
                           tables and its own copies of the libraries */
    {"setmetatable", sb_setmetatable}, /* no __gc, protected stays so */
    {"getmetatable", sb_getmetatable}, /* the string metatable is hidden */
    {NULL, NULL}};

/* The sandbox's xpcall, in Lua over pcall: the message handler runs AFTER
** the stack has unwound. Lua calls a message handler at the point of the
** error; when that error is the count hook's kill, that point is inside
** the hook, where hooks are off, so a handler that loops would never be
** stopped. Without the debug library a handler cannot inspect the stack
** anyway; the only visible difference is that to-be-closed variables are
** closed before the handler runs. An error in the handler becomes the
** error object, as Lua's "error in error handling" does. */
static const char xpcall_src[] =
    "local pcall, type, error = ...\n"
    "local function finish(h, ok, ...)\n"
    "  if ok then return true, ... end\n"
    "  local _, e = pcall(h, (...))\n"
    "  return false, e\n"
    "end\n"
    "return function(f, h, ...)\n"
    "  if type(h) ~= 'function' then\n"
    "    error(\"bad argument #2 to 'xpcall' (function expected)\", 2)\n"
    "  end\n"
    "  return finish(h, pcall(f, ...))\n"
    "end\n";

/* Library tables an environment gets a FRESH COPY of (so assignments and
** rawset only damage the script's own copy); the masters are the bounded
** tables of the state. */
static const char *const allowed_libs[] = {
    "string",    /* bounded: matcher steps and rep are charged; no dump */
    "table",     /* bounded: per-element charges, concat per byte */
    "math",      /* pure, minus random/randomseed: randomness comes from
                    the engine so decisions can be replayed */
    "utf8",      /* pure, charged by length */
    "coroutine", /* coroutines inherit the count hook; a kill reaches them */
    "json",      /* the engine's codec; its allocations are under the cap */
    NULL};

/* Copies every field of the table at `from` into the table at `to`. */
static void copy_fields(lua_State *L, int from, int to) {
  from = lua_absindex(L, from);
  to = lua_absindex(L, to);
  lua_pushnil(L);
  while (lua_next(L, from) != 0) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, to);
  }
}

void chm__push_sandbox_env(lua_State *L) {
  int i, env;
  lua_createtable(L, 0, 32);
  env = lua_gettop(L);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &base_key);
  copy_fields(L, -1, env);
  lua_pop(L, 1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &libs_key);
  for (i = 0; allowed_libs[i] != NULL; i++) {
    lua_getfield(L, -1, allowed_libs[i]);
    lua_createtable(L, 0, 32);
    copy_fields(L, -2, -1);
    lua_setfield(L, env, allowed_libs[i]);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_pushvalue(L, env); /* load's default environment: this one */
  lua_pushcclosure(L, sb_load, 1);
  lua_setfield(L, env, "load");
  lua_pushliteral(L, LUA_VERSION); /* _VERSION: a constant string */
  lua_setfield(L, env, "_VERSION");
  lua_rawgetp(L, LUA_REGISTRYINDEX, &envmt_key);
  lua_setmetatable(L, env); /* locked: setmetatable(_ENV, ...) fails */
}

/* ===================================================================== */
/* Making and closing states                                              */
/* ===================================================================== */

/* init_state() -> nothing   [-0, +0, e]
** Runs through the door when a state is made: opens the safe libraries,
** bounds them, locks the string metatable, builds the masters of the
** allow-list, then the trusted side (lualib.c). */
static int init_state(lua_State *L) {
  static const luaL_Reg libs[] = {{LUA_GNAME, luaopen_base},
                                  {LUA_STRLIBNAME, luaopen_string},
                                  {LUA_TABLIBNAME, luaopen_table},
                                  {LUA_MATHLIBNAME, luaopen_math},
                                  {LUA_UTF8LIBNAME, luaopen_utf8},
                                  {LUA_COLIBNAME, luaopen_coroutine},
                                  {NULL, NULL}};
  /* Dropped from the state's globals too, so that not even trusted code
  ** can reach them by accident (see allowed_base for why). */
  static const char *const dropped[] = {
      "dofile", "loadfile", "load", "collectgarbage", "print", "warn", NULL};
  const luaL_Reg *lib;
  int i, loaded, libs_t, base_t;
  for (lib = libs; lib->name != NULL; lib++) {
    luaL_requiref(L, lib->name, lib->func, 0);
    lua_pop(L, 1);
  }
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  loaded = lua_gettop(L);

  lua_getfield(L, loaded, LUA_GNAME);
  for (i = 0; dropped[i] != NULL; i++) {
    lua_pushnil(L);
    lua_setfield(L, -2, dropped[i]);
  }
  chm__bound_lib(L, -1, "_G");
  lua_pop(L, 1);

  lua_getfield(L, loaded, LUA_STRLIBNAME);
  chm__bound_lib(L, -1, "string");
  lua_pop(L, 1);
  lua_getfield(L, loaded, LUA_TABLIBNAME);
  chm__bound_lib(L, -1, "table");
  lua_pop(L, 1);
  lua_getfield(L, loaded, LUA_UTF8LIBNAME);
  chm__bound_lib(L, -1, "utf8");
  lua_pop(L, 1);
  lua_getfield(L, loaded, LUA_MATHLIBNAME);
  lua_pushnil(L);
  lua_setfield(L, -2, "random");
  lua_pushnil(L);
  lua_setfield(L, -2, "randomseed");
  lua_pop(L, 1);

  /* The string metatable: __index is the bounded string table (luaopen_
  ** string set it), its arithmetic coercions are charged, and it is
  ** protected. Scripts never see it (sb_getmetatable). */
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);
  chm__bound_lib(L, -1, "stringmt");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 2);

  /* Masters of the allow-list. */
  lua_createtable(L, 0, 8);
  libs_t = lua_gettop(L);
  for (i = 0; allowed_libs[i] != NULL; i++) {
    if (strcmp(allowed_libs[i], "json") == 0) {
      chm__json_open(L);
      chm__bound_lib(L, -1, "json");
    } else {
      lua_getfield(L, loaded, allowed_libs[i]);
    }
    lua_setfield(L, libs_t, allowed_libs[i]);
  }
  lua_rawsetp(L, LUA_REGISTRYINDEX, &libs_key);

  lua_createtable(L, 0, 24);
  base_t = lua_gettop(L);
  lua_getfield(L, loaded, LUA_GNAME);
  for (i = 0; allowed_base[i].name != NULL; i++) {
    if (allowed_base[i].replacement != NULL)
      lua_pushcfunction(L, allowed_base[i].replacement);
    else
      lua_getfield(L, -1, allowed_base[i].name);
    lua_setfield(L, base_t, allowed_base[i].name);
  }
  lua_newtable(L); /* the xpcall chunk's _ENV: it uses no globals */
  if (chm__load_text(L, xpcall_src, sizeof xpcall_src - 1, "=xpcall", -1) !=
      CHM_OK)
    return lua_error(L);
  lua_getfield(L, -3, "pcall");
  lua_getfield(L, -4, "type");
  lua_getfield(L, -5, "error");
  lua_call(L, 3, 1);
  lua_setfield(L, base_t, "xpcall");
  lua_pop(L, 2); /* its _ENV, _G */
  lua_rawsetp(L, LUA_REGISTRYINDEX, &base_key);

  lua_createtable(L, 0, 1);
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &envmt_key);

  chm__open_internals(L); /* the trusted side, made now */
  lua_pop(L, 2);          /* chm table, LOADED */
  return 0;
}

/* Unprotected errors cannot happen by design (everything runs behind the
** door); if one does, say so before Lua aborts. */
static int panic(lua_State *L) {
  const char *msg = lua_tostring(L, -1);
  fprintf(stderr, "chameleon: unprotected Lua error: %s\n",
          msg != NULL ? msg : "(not a string)");
  return 0;
}

lua_State *chm__sandbox_new(size_t memory_bytes) {
  sandbox *sb = calloc(1, sizeof *sb);
  lua_State *L;
  if (sb == NULL) return NULL;
  sb->base_cap = sb->cap = memory_bytes != 0 ? memory_bytes : DEFAULT_MEMORY;
  L = lua_newstate(sandbox_alloc, sb);
  if (L == NULL) {
    free(sb);
    return NULL;
  }
  *(sandbox **)lua_getextraspace(L) = sb; /* before any thread exists */
  lua_atpanic(L, panic);
  set_hook(L, HOOK_EVERY); /* every coroutine inherits it */
  lua_pushcfunction(L, init_state);
  if (chm__pcall(L, 0, 0, &init_limits) != CHM_OK) {
    lua_close(L);
    free(sb);
    return NULL;
  }
  return L;
}

void chm__sandbox_close(lua_State *L) {
  sandbox *sb;
  if (L == NULL) return;
  sb = sandbox_of(L);
  lua_close(L);
  free(sb);
}

void chm__sandbox_set_memory(lua_State *L, size_t bytes) {
  sandbox *sb = sandbox_of(L);
  sb->base_cap = bytes != 0 ? bytes : DEFAULT_MEMORY;
  if (sb->top == NULL) sb->cap = sb->base_cap;
}

/* Deliberately not done:
** - No per-call memory accounting: the cap is on the state's whole heap
**   (trusted modules and caches included), checked only while a door is
**   open. A script cannot keep memory past its door: its environment and
**   everything it made become garbage.
** - No preemption inside a single C call other than the bounded ones
**   (bounded.c): VM-level string concatenation and comparison of long
**   strings run to completion, each bounded by the memory cap.
** - No load() of reader functions in the sandbox: strings only.
*/
