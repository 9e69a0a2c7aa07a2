/*
** chameleon.h — the one public header of libchameleon, the embeddable
** workflow-governance engine. Everything the CLI, the REPL and the Lua
** module do goes through the functions declared here.
**
** Two opaque handles: chm_meta (a meta-store of workflow blueprints) and
** chm_instance (one air-gapped instance store). Each owns one SQLite
** connection and one sandboxed lua_State.
**
** Threads. A handle has no lock: call it from one thread at a time (two
** threads may take turns, with their own synchronisation between calls);
** two calls on one handle at once are undefined behaviour. Different
** handles are independent and may be used from different threads at the
** same time, even on the same store file: SQLite's file locks serialise
** writers, and a writer that waits longer than 10 s fails with CHM_DB.
** Exceptions, callable from any thread at any time: chm_meta_interrupt and
** chm_instance_interrupt (also async-signal-safe); the chm_clock_*
** functions (one atomic process-wide value, see "Time"); chm_version,
** chm_errstr, chm_errname, chm_limits_default and chm_free (no shared
** state). A skill callback (chm_register_skill) runs on the thread that
** called chm_run; an expression function (chm_register_function) on the
** thread of the call judging a condition (chm_checkout, chm_submit,
** chm_run).
**
** Error model (SQLite's): every function returns an int status (CHM_OK on
** success) or a pointer that is NULL on failure, never a mix.
** chm_errstr(rc) gives the static message of a code; chm_meta_errmsg() /
** chm_instance_errmsg() give the detailed message of the last failure on
** that handle. Each contract below lists the codes the function returns
** and when. Every function taking a handle also returns CHM_MISUSE for a
** NULL or closed handle or a missing required argument (without touching
** the handle's message when the handle itself is NULL), and may return
** CHM_NOMEM when memory runs out; these two are not repeated below.
**
** Memory. Strings returned through `char **out` are allocated by the
** library and freed by the caller with chm_free(); on failure they are set
** to NULL unless the contract says a report is still returned. Strings
** passed in are only read during the call; the library keeps no pointer
** to them (the `ud` of a skill or an expression function is the one
** pointer it keeps).
*/
#ifndef CHAMELEON_H
#define CHAMELEON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ===================================================================== */
/* Version                                                                */
/* ===================================================================== */

#define CHM_VERSION "0.1.0"
#define CHM_VERSION_NUMBER 100 /* major*10000 + minor*100 + patch */

/* chm_version() -> CHM_VERSION of the linked library (static string). */
const char *chm_version(void);

/* ===================================================================== */
/* Errors                                                                 */
/* ===================================================================== */

/* X-macro: code name, static message. Generates enum chm_status and the
** table behind chm_errstr(). Codes are stable: append, never reorder. */
#define CHM_STATUS_MAP(XX)                                                   \
  XX(OK, "ok")                                                               \
  XX(ERROR, "error")                                                         \
  XX(NOMEM, "out of memory")                                                 \
  XX(MISUSE, "library misuse")                                               \
  XX(IO, "file could not be read or written")                                \
  XX(DB, "database error")                                                   \
  XX(INVALID, "definition is invalid")                                       \
  XX(NOTFOUND, "not found")                                                  \
  XX(EXISTS, "already exists")                                               \
  XX(CONFLICT, "stale version: the token changed since it was read")         \
  XX(STATE, "operation not allowed in the current state")                    \
  XX(DENIED, "not permitted")                                                \
  XX(SCRIPT, "script error")                                                 \
  XX(BUDGET, "script exceeded its instruction budget or deadline")           \
  XX(MEMORY, "script exceeded its memory cap")                               \
  XX(CORRUPT, "store is corrupt or was tampered with")                        \
  XX(INCOMPLETE, "input is incomplete: the statement continues")

enum chm_status {
#define CHM__XX(name, msg) CHM_##name,
  CHM_STATUS_MAP(CHM__XX)
#undef CHM__XX
  CHM__STATUS_COUNT
};

/* chm_errstr(rc) -> static English message for a status code; never NULL
** (unknown codes give "unknown status"). */
const char *chm_errstr(int rc);

/* chm_errname(rc) -> static code name without prefix ("INVALID"). */
const char *chm_errname(int rc);

/* chm_free(p): release a string or buffer the library returned through an
** out-parameter. NULL-safe. */
void chm_free(void *p);

/* ===================================================================== */
/* Sandbox limits                                                         */
/* ===================================================================== */

/* Limits for one script call. A zero field means "use the handle default"
** (see chm_limits_default). */
typedef struct chm_limits {
  uint64_t instructions; /* Lua VM instruction budget for the call */
  uint32_t deadline_ms;  /* wall-clock deadline for the call */
  size_t memory_bytes;   /* cap on the handle's total Lua heap */
} chm_limits;

/* chm_limits_default(out): fill *out with the built-in defaults
** (10,000,000 instructions, 1000 ms, 64 MiB). */
void chm_limits_default(chm_limits *out);

/* ===================================================================== */
/* Time: one clock for the whole engine                                   */
/* ===================================================================== */

/*
** One clock for the whole process, read by every handle for timestamps,
** leases and stale limits (never for script deadlines, which use a
** monotonic counter the virtual clock does not touch). Its state is one
** C11 atomic int64: every chm_clock_* function may be called from any
** thread, concurrently with each other and with calls on any handle; a
** reader always sees a whole value some call stored. What is NOT
** guaranteed: ordering against another thread's operation. A token
** operation reads the clock once, when its transaction begins, so a
** change made meanwhile shows up in the next operation, not in the middle
** of one.
*/

/* The range of every clock reading the engine accepts: ms since the Unix
** epoch from 1970-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z, the
** years the stores' ISO-8601 timestamps (and their CHECK constraints)
** can hold. */
#define CHM_CLOCK_MIN_MS INT64_C(0)
#define CHM_CLOCK_MAX_MS INT64_C(253402300799999)

/* chm_clock_set_virtual(ms): from now on the engine's clock reads `ms`
** (milliseconds since the Unix epoch) until advanced, set again or reset.
** Process-wide, atomic; for tests, replay and simulation. Returns CHM_OK,
** or CHM_MISUSE (clock unchanged) when ms is outside
** CHM_CLOCK_MIN_MS..CHM_CLOCK_MAX_MS. */
int chm_clock_set_virtual(int64_t ms);

/* chm_clock_advance(ms): add ms (may be negative) to the virtual clock, as
** one atomic read-modify-write (two concurrent advances both count).
** Returns CHM_OK; a no-op returning CHM_OK when the real clock is in use,
** including when another thread restores it concurrently. Returns
** CHM_MISUSE (clock unchanged) when the result would leave
** CHM_CLOCK_MIN_MS..CHM_CLOCK_MAX_MS. */
int chm_clock_advance(int64_t ms);

/* chm_clock_set_real(): go back to the real clock (CLOCK_REALTIME).
** Atomic; cannot fail. */
void chm_clock_set_real(void);

/* chm_clock_is_virtual() -> 1 when a virtual clock is installed, else 0
** (a snapshot: another thread may change it right after). */
int chm_clock_is_virtual(void);

/* chm_clock_now() -> the engine's current time, ms since the epoch: the
** virtual reading when one is installed, else the real clock. Atomic
** snapshot; cannot fail. */
int64_t chm_clock_now(void);

/* ===================================================================== */
/* Meta-store: templates                                                  */
/* ===================================================================== */

typedef struct chm_meta chm_meta;

/* chm_meta_open(path, &m): open the meta-store at path, creating it (and
** its schema) if missing, migrating an older schema in one transaction.
** On success *m is a new handle the caller closes with chm_meta_close. On
** failure *m is still set when a handle could be allocated (read its
** message with chm_meta_errmsg, then close it), else NULL.
** Errors: CHM_MISUSE (m NULL: nothing allocated; path NULL or "": *m set),
** CHM_IO (the file cannot be opened or created; it or its directory is
** read-only), CHM_CORRUPT (the file is damaged), CHM_DB (not an SQLite
** database, another program's database or an instance store — refused
** before anything is written to it —, a migration failed, or the schema
** is newer than this library). */
int chm_meta_open(const char *path, chm_meta **m);

/* chm_meta_close(m): finalize statements, close the database and the Lua
** state, free m. NULL-safe. Always returns CHM_OK. */
int chm_meta_close(chm_meta *m);

/* chm_meta_errmsg(m) -> detailed message of the last failure on m (or
** "ok"). Owned by m; valid until the next call on m. m NULL gives a static
** "no handle (out of memory?)". Never NULL. */
const char *chm_meta_errmsg(const chm_meta *m);

/* chm_meta_import(m, path, &report): load a workflow file (.lua or .json),
** validate it and store it as a new version of its workflow, atomically.
** An unchanged definition of an existing name stores nothing. *report
** (JSON, caller frees; report may be NULL) is {"name","version","status":
** "created"|"unchanged","workflow_id"}.
** Errors: CHM_IO (path cannot be read), CHM_INVALID (the file does not
** parse or run, or breaks a validation rule: the errmsg lists every
** violation, one per line; nothing was written), CHM_SCRIPT (the store
** failed underneath, e.g. locked or full: the message carries SQLite's
** text), CHM_MEMORY (the handle's Lua heap cap was reached). */
int chm_meta_import(chm_meta *m, const char *path, char **report);

/* chm_meta_validate(m, path, &report): as import, but writes nothing.
** *report is {"file","name","ok":true|false,"errors":[message...]}
** ("name" null when the file does not parse; caller frees; report may be
** NULL). Returns CHM_OK when valid; CHM_INVALID when not, with *report
** still set and the errmsg listing the violations one per line. Other
** errors as chm_meta_import (CHM_IO, CHM_SCRIPT, CHM_MEMORY). */
int chm_meta_validate(chm_meta *m, const char *path, char **report);

/* chm_meta_list(m, &json): every workflow with its versions, as a JSON
** array ordered by name (caller frees): [{"name","latest","description",
** "versions":[{"version","workflow_id","created_at"}]}]; [] when empty.
** Errors: CHM_SCRIPT (the store failed underneath), CHM_MEMORY. */
int chm_meta_list(chm_meta *m, char **json);

/* chm_meta_show(m, name, version, &json): one stored workflow (version 0 =
** latest): its canonical definition (name, roles, interactions,
** components, guardians, actors, assignments...) plus "workflow_id",
** "version", "created_at", "canonical_hash" and "source_name" (caller
** frees). Errors: CHM_NOTFOUND (no workflow `name`, or not that version:
** the message names both), CHM_SCRIPT (the store failed underneath),
** CHM_MEMORY. */
int chm_meta_show(chm_meta *m, const char *name, int version, char **json);

/* Export formats for chm_meta_export. */
enum chm_export_format { CHM_EXPORT_JSON = 0, CHM_EXPORT_DOT = 1 };

/* chm_meta_export(m, name, version, format, &text): the canonical JSON
** definition (import of it gives back the same text) or a Graphviz DOT
** picture of workflow `name` (version 0 = latest). Caller frees *text.
** Errors: CHM_MISUSE (format is neither CHM_EXPORT_JSON nor
** CHM_EXPORT_DOT), CHM_NOTFOUND (as chm_meta_show), CHM_SCRIPT,
** CHM_MEMORY. */
int chm_meta_export(chm_meta *m, const char *name, int version, int format,
                    char **text);

/* chm_meta_instantiate(m, name, version, path, instance_name, &report):
** deep-copy workflow `name` (version 0 = latest) and every child workflow
** it reaches into a new instance store at `path` (which must not exist).
** instance_name NULL = "<name>@<first 13 characters of the instance id>".
** *report (caller frees; report may be NULL) is {"instance_id","name",
** "path","workflows":[{"name","version","local_workflow_id",
** "original_workflow_id","is_master"}]}, master first.
** Errors: CHM_EXISTS (a file is already at `path`; nothing is touched),
** CHM_NOTFOUND (no workflow `name` or not that version), CHM_INVALID (two
** versions of one child workflow are reached; an actor declared with two
** types; an actor named "system" that is not of type SYSTEM), CHM_IO /
** CHM_DB (the new store cannot be created), CHM_SCRIPT (a store failed
** underneath), CHM_MEMORY. On any failure the half-made file is
** removed. */
int chm_meta_instantiate(chm_meta *m, const char *name, int version,
                         const char *path, const char *instance_name,
                         char **report);

/* chm_meta_query(m, sql, &json): run one read-only SQL statement and
** return its rows as a JSON array of objects (caller frees; [] for none).
** Errors: CHM_DENIED (more than one statement, a statement that would
** write, BEGIN/SAVEPOINT, ATTACH/DETACH, or a PRAGMA that sets a value),
** CHM_DB (SQL error, empty statement), CHM_CORRUPT (the store file is
** damaged), CHM_IO (a disk I/O error), CHM_BUDGET (interrupted, or ran
** past the 600 s deadline of trusted work), CHM_MEMORY (the rows do not
** fit the handle's Lua heap cap). */
int chm_meta_query(chm_meta *m, const char *sql, char **json);

/* chm_meta_guide(m, table, &json): the schema guide of the meta-store
** (the view v_ai_schema_guide): one row per column, and per table, with
** "table_name","column_name","data_type","is_primary_key",
** "foreign_key_target","description" (and the view's other columns), as
** a JSON array (caller frees). table NULL = every table; otherwise only
** that table, matched without regard to case (any text is safe: it is
** quoted as an SQL string literal, so it cannot change the statement).
** Errors: CHM_NOTFOUND when `table` has no row ("no table 'X' in the
** schema guide of 'PATH'"); otherwise as chm_meta_query (CHM_DB,
** CHM_BUDGET, CHM_MEMORY). */
int chm_meta_guide(chm_meta *m, const char *table, char **json);

/* chm_meta_eval(m, source, limits, &json): run a Lua chunk in a fresh
** sandbox environment of m's Lua state under `limits` (NULL = defaults)
** and return its first result encoded as JSON (caller frees). A script
** failure returns CHM_SCRIPT / CHM_BUDGET / CHM_MEMORY with the message in
** chm_meta_errmsg; the handle stays usable. CHM_SCRIPT covers a syntax
** error, a runtime error and a result JSON cannot hold; CHM_BUDGET the
** instruction budget, the deadline and chm_meta_interrupt; CHM_MEMORY the
** heap cap. A result of nil gives the text "null". */
int chm_meta_eval(chm_meta *m, const char *source, const chm_limits *limits,
                  char **json);

/* ===================================================================== */
/* Instance stores                                                        */
/* ===================================================================== */

typedef struct chm_instance chm_instance;

/* chm_instance_open(path, &inst): open an existing instance store (never
** creates one: use chm_meta_instantiate). Migrates an older schema. Same
** *inst rules as chm_meta_open. The meta-store is never consulted.
** Errors: CHM_MISUSE (inst NULL; path NULL or ""), CHM_NOTFOUND (no file
** at path), CHM_IO (the file cannot be opened; it or its directory is
** read-only), CHM_CORRUPT (the file is damaged), CHM_DB (not an SQLite
** database, an empty file, another program's database or a meta-store —
** refused before anything is written to it —, a migration failed, or the
** schema is newer than this library). */
int chm_instance_open(const char *path, chm_instance **inst);

/* chm_instance_close(inst): finalize statements, close the database and
** the Lua state, free inst; skills registered on it are dropped (their
** `ud` is not touched). NULL-safe. Always returns CHM_OK. */
int chm_instance_close(chm_instance *inst);

/* chm_instance_errmsg(inst) -> detailed message of the last failure on
** inst (or "ok"). Owned by inst; valid until the next call on inst. inst
** NULL gives a static "no handle (out of memory?)". Never NULL. */
const char *chm_instance_errmsg(const chm_instance *inst);

/* chm_instance_describe(inst, &json): the instance context and its
** workflows, read from the instance store alone (caller frees):
** {"instance":{Instance_Context row},"workflows":[{definition with roles,
** interactions, components, guardians, actors, assignments, plus
** "local_workflow_id","original_workflow_id","version","is_master"}]},
** master first. Errors: CHM_CORRUPT (no Instance_Context row: the file
** was never instantiated), CHM_SCRIPT (the store failed underneath),
** CHM_MEMORY. */
int chm_instance_describe(chm_instance *inst, char **json);

/* chm_instance_dot(inst, &text): a Graphviz DOT picture of the master
** workflow with, on each interaction, the number of tokens that ever
** entered it and the number there now ("N tokens, M here"; caller frees).
** Errors: CHM_CORRUPT (no master workflow), CHM_SCRIPT (the store failed
** underneath), CHM_MEMORY. */
int chm_instance_dot(chm_instance *inst, char **text);

/* chm_instance_validate(inst, &report): re-run the import validation on
** every workflow held by the instance. *report (caller frees; report may
** be NULL) is {"ok","errors":[message...],"workflows":[names]}. CHM_OK
** when valid; CHM_INVALID otherwise, with *report still set and the
** errmsg listing the violations. Also CHM_SCRIPT, CHM_MEMORY. */
int chm_instance_validate(chm_instance *inst, char **report);

/* chm_instance_query(inst, sql, &json): read-only SQL on the instance
** store; contract and errors as chm_meta_query. Works while the instance
** is paused. */
int chm_instance_query(chm_instance *inst, const char *sql, char **json);

/* chm_instance_guide(inst, table, &json): the schema guide of the
** instance store; contract and errors as chm_meta_guide. */
int chm_instance_guide(chm_instance *inst, const char *table, char **json);

/* chm_instance_eval(inst, source, limits, &json): contract and errors as
** chm_meta_eval, in inst's Lua state. */
int chm_instance_eval(chm_instance *inst, const char *source,
                      const chm_limits *limits, char **json);

/* ===================================================================== */
/* Interactive evaluation (the REPL)                                      */
/* ===================================================================== */

/* chm_instance_repl(inst, chunk, &out) / chm_meta_repl(m, chunk, &out):
** evaluate operator input in one persistent sandbox environment of the
** handle (globals survive between calls), with the engine bound as plain
** functions: on an instance genesis checkout heartbeat submit fail pause
** resume clarify sweep run token history attributes queues tokens verify
** describe validate sql clock clock_set clock_advance clock_real print;
** on a meta-store import validate list show export instantiate sql clock
** print. Like lua.c, the chunk is tried as an expression first. CHM_OK:
** *out (caller frees) holds what print wrote and the pretty-printed
** results, one per line ("" for none). CHM_INCOMPLETE: the chunk is a
** valid beginning; append the next line and call again. Otherwise the
** chunk failed (CHM_SCRIPT, CHM_BUDGET, CHM_MEMORY): the handle's errmsg
** holds the message with a traceback, *out (caller frees; NULL for
** nothing) what print wrote before the failure; the session goes on. The
** bound functions report the engine's own failures inside the session
** (as Lua errors), never as this call's status. */
int chm_instance_repl(chm_instance *inst, const char *chunk, char **out);
int chm_meta_repl(chm_meta *m, const char *chunk, char **out);

/* A sink for text the REPL's print writes: `len` bytes at `text` (not
** NUL-terminated; the library keeps no pointer to them after the call). */
typedef void (*chm_write_fn)(void *ud, const char *text, size_t len);

/* chm_instance_repl_output(inst, fn, ud) / chm_meta_repl_output(m, fn, ud):
** stream what print writes in later chm_*_repl chunks: each print calls
** fn(ud, line, len) at once, the line ending in "\n", instead of being
** collected into *out, so long chunks show progress and nothing printed is
** held back when a chunk fails. *out then holds only the results. fn runs
** on the calling thread inside the chunk and must not call into the
** handle; the library keeps ud until the handle is closed or another call
** replaces it. fn NULL restores collecting. No error; NULL handle: nothing. */
void chm_instance_repl_output(chm_instance *inst, chm_write_fn fn, void *ud);
void chm_meta_repl_output(chm_meta *m, chm_write_fn fn, void *ud);

/* chm_instance_repl_names / chm_meta_repl_names(h, &json): the names
** bound in the session, as a JSON array (for completion; caller frees).
** Errors: only CHM_MISUSE / CHM_NOMEM (and CHM_SCRIPT, CHM_MEMORY if the
** session's state failed). */
int chm_instance_repl_names(chm_instance *inst, char **json);
int chm_meta_repl_names(chm_meta *m, char **json);

/* chm_instance_interrupt(inst) / chm_meta_interrupt(m): stop the chunk
** running on that handle with the error "interrupted" at its next budget
** check (a query stops within 1000 SQLite VM steps; chm_run stops between
** operations). Async-signal-safe and callable from any thread while
** another thread is inside a call on the handle: it only sets a flag.
** NULL-safe; no effect when nothing runs (the next call clears it). */
void chm_instance_interrupt(chm_instance *inst);
void chm_meta_interrupt(chm_meta *m);

/* ===================================================================== */
/* Expression functions: host functions for conditions                    */
/* ===================================================================== */

/* An expression function: a C function conditions call by name, next to
** the built-ins (docs/expressions.md, "Functions"), e.g. a gate's
** criteria "risk_score(amount, country) < 50" or a routing branch.
** args_json is the canonical JSON array of the evaluated arguments ("[]"
** for none; null, lists and objects as in JSON). On success return 0 and
** set *result_json to malloc'ed JSON text of one value (or leave it NULL
** for null); on failure return nonzero and optionally set *error to a
** malloc'ed message. The library frees both with free() (also the result
** of a failing call), and reads args_json only during the call.
**
** PURE, from the engine's point of view: the same arguments must give the
** same result (or the same error). It is called while guardians and
** routing are judged, inside the handle's sandbox call, as many times as
** conditions ask (zero, once, or again on a later checkout or replay), and
** it decides what happens to tokens: a result that depends on the clock,
** on a counter or on anything the audit trail does not hold makes the
** decision unexplainable afterwards. It runs on the thread that called the
** handle (chm_checkout, chm_submit, chm_run, ...), must not call the
** library on that handle, and should be quick: neither the instruction
** budget nor the deadline nor chm_*_interrupt can stop it while it runs.
**
** A failure (nonzero, or a result that is not valid JSON) is an expression
** error like a built-in's ("expression error at column N: function
** 'risk_score' failed: <error>"): a CRITERIA_GATE rejects the token with
** it as the reason; a routing branch whose condition errors is recorded
** and not taken, and when no later branch matches the router takes its
** on_error target (else its default, else the token goes to the Ate). */
typedef int (*chm_expr_fn)(void *ud, const char *args_json,
                           char **result_json, char **error);

/* chm_register_function(inst, name, fn, ud): make fn callable as name(...)
** by every condition expression inst evaluates or compiles (gates,
** injectors, routing, directional filters, chm_instance_validate); a
** condition compiled before the registration is compiled again on next
** use. Registering a name again replaces its function. The argument count
** is not checked at compile time: fn checks it. The library keeps fn and
** ud until inst is closed and never frees ud; name is copied. Errors:
** CHM_INVALID when name is not an identifier (letters, digits and '_', not
** starting with a digit), is a keyword of the language (and or not in
** true false null), or is the name of a built-in ("host function 'len'
** would shadow a built-in"; the message lists the built-ins); CHM_MISUSE
** for a NULL name or fn. */
int chm_register_function(chm_instance *inst, const char *name,
                          chm_expr_fn fn, void *ud);

/* chm_meta_register_function(m, name, fn, ud): the same on a meta-store,
** where it only matters to validation. Import, chm_meta_validate and
** instantiation compile every condition expression, and a call of an
** unknown function is an import error: a host whose workflows call its
** functions registers (or just declares) them on the meta handle before
** importing them. A meta-store never evaluates conditions, so fn may be
** NULL (a declaration: the name compiles; were a condition ever evaluated
** there, calling it would be an expression error). Same names, errors and
** ownership as chm_register_function, except that fn may be NULL. */
int chm_meta_register_function(chm_meta *m, const char *name, chm_expr_fn fn,
                               void *ud);

#ifndef CHM_HAVE_TOKEN_API
#define CHM_HAVE_TOKEN_API 1

/* ===================================================================== */
/* Tokens: moving units of work through an instance                       */
/* ===================================================================== */

/*
** Every function below acts on one instance handle and is one SQLite
** transaction (BEGIN IMMEDIATE ... COMMIT; queries a read transaction):
** either all of its effect is written, log rows included, or none of it.
** Besides CHM_MISUSE and CHM_NOMEM, every one of them may return CHM_DB
** (SQLite failed, e.g. another writer held the store for over 10 s),
** CHM_CORRUPT (the store file is damaged, or has no Instance_Context row)
** and CHM_IO (the store file or its directory is read-only, or a disk I/O
** error); the message names the file and what to do. These are not
** repeated below. Refusals return a status and
** leave a message naming the token, its status and what was expected in
** chm_instance_errmsg(). Strings returned through `char **` are JSON text
** (unless said otherwise), allocated by the library, freed with chm_free;
** on failure they are set to NULL.
**
** Names: an `actor` is a Local_Actors name (or actor_id); NULL means the
** engine's actor "system" where the contract says so. A `role` is a role
** name, "workflow/role" when the name exists in several workflows of the
** instance, or a role_id. Token ids are the UUIDs genesis returns.
**
** While the instance is PAUSED (chm_instance_pause) every operation that
** writes is refused with CHM_STATE, except chm_instance_resume; queries
** and chm_verify still work.
*/

/* The longest lease a handle gives: 366 days in ms. */
#define CHM_LEASE_MAX_MS INT64_C(31622400000)

/* chm_set_lease_ms(inst, ms): lease length given by later checkouts (and
** heartbeats, resumes) on this handle (default 300000 ms). Writes
** nothing. ms must be in 1..CHM_LEASE_MAX_MS, else CHM_MISUSE with a
** message naming the value and the range (the length is unchanged). No
** other error. */
int chm_set_lease_ms(chm_instance *inst, int64_t ms);

/* chm_genesis(inst, workflow, attrs_json, actor, &uow_id): create a base
** token in `workflow` (NULL = the master workflow) at its ALPHA role,
** holding the attributes of the JSON object attrs_json (NULL = {}) as
** version 1 (reasoning "genesis"), routed by the ALPHA role's outbound
** routing: PENDING there (COMPLETED when it is the Cerberus room; FAILED to
** the Ate when nothing matches). `actor` (NULL = "system") must hold an
** ACTIVE assignment on the ALPHA role (CHM_DENIED). Its max_interactions
** is the workflow's. *uow_id (caller frees) is the new token id.
** Errors: CHM_NOTFOUND (workflow, actor), CHM_DENIED, CHM_INVALID
** (attrs_json not a JSON object; no route matches and the workflow has no
** Ate to take the token), CHM_STATE
** (instance paused). */
int chm_genesis(chm_instance *inst, const char *workflow,
                const char *attrs_json, const char *actor, char **uow_id);

/* chm_checkout(inst, actor, role, interaction, &token_json): give the
** actor the oldest eligible token of one of the role's inbound
** interactions (NULL = all, in declaration order; else only that one).
** Eligible: BETA PENDING; OMEGA COMPLETED or REMEDIATED base tokens whose
** gates (Cerberus) pass; EPSILON FAILED in its inbound (the Ate); TAU
** TIMEOUT or FAILED in its inbound (Chronos). Gates run first: a BETA
** token a gate rejects goes FAILED to the Ate (with a Token_Rejections
** row) and the next candidate is tried; a token that must wait is
** skipped. A PENDING token whose checkout_count reached max_interactions
** becomes ZOMBIED_SOFT and is skipped. The chosen token becomes ACTIVE
** with a lease of the handle's lease length. For a recursive gateway role
** the checkout starts the child workflow instead (the token stays ACTIVE
** under the actor with no lease expiry until the child token ends).
** *token_json (caller frees): {"uow_id","version","status","workflow",
** "role","interaction","attributes":{},"context":{},"memory":{},
** "lease_expires_at":ms|null,"parent_id","child_count",
** "finished_child_count"} plus "child_uow_id" for a gateway.
** CHM_NOTFOUND when no token is eligible ("no work for role 'F-02' in
** 'extracted'"); rejections and zombies found on the way are committed.
** Errors: CHM_NOTFOUND (actor, role, interaction; no eligible token),
** CHM_DENIED (no ACTIVE assignment), CHM_INVALID (ALPHA role; a role name
** found in several workflows: name it "workflow/role"), CHM_STATE
** (instance paused). */
int chm_checkout(chm_instance *inst, const char *actor, const char *role,
                 const char *interaction, char **token_json);

/* chm_heartbeat(inst, uow_id, actor): extend the lease of an ACTIVE token
** the actor holds to now + lease length. Does not change the token's
** version. actor is required. Errors: CHM_NOTFOUND (actor, token),
** CHM_STATE (not ACTIVE, lease expired, instance paused), CHM_DENIED
** (another holder). */
int chm_heartbeat(chm_instance *inst, const char *uow_id, const char *actor);

/* chm_submit(inst, uow_id, actor, version, changes_json, &result_json):
** finish the actor's work on an ACTIVE token it holds. `version` is the
** version the actor read (checkout's); another version is CHM_CONFLICT
** and nothing is written. changes_json (NULL = {}) is an object:
**   "set": {k: v}        new attribute values (unchanged values write
**                        no version); "reasoning": text for them;
**   "children": [{k: v}] decomposition (BETA with a strategy);
**   "teach": {k: v}      the actor's personal playbook for this role;
**   "give_up": true      EPSILON: archive the token and its unfinished
**                        descendants (refused with CHM_STATE while one is
**                        ACTIVE); a given-up child sends its base FAILED
**                        to the Ate if it waits in the Cerberus room;
**   "end": true          TAU: finalize the token and its unfinished
**                        descendants (refused while one is ACTIVE);
**   "fail": "reason"     send it FAILED to the Ate instead of routing.
** Then routes it by the role's outbound routing (OMEGA: finalizes it and
** its children; a child-workflow token returns to its gateway token).
** *result_json (caller frees, may be NULL): {"uow_id","status",
** "interaction","version","children":[ids]}, plus "failure_reason" when
** the submit left the token FAILED (e.g. no route matched: the reason
** names each condition that errored).
** Errors: CHM_NOTFOUND (actor, token), CHM_CONFLICT, CHM_STATE (not
** ACTIVE, lease expired, instance paused), CHM_DENIED (another holder),
** CHM_INVALID (malformed changes, children without a strategy,
** HOMOGENEOUS children with different keys, give_up/end on the wrong role
** type). */
int chm_submit(chm_instance *inst, const char *uow_id, const char *actor,
               int64_t version, const char *changes_json, char **result_json);

/* chm_fail(inst, uow_id, actor, reason): ACTIVE token held by actor ->
** FAILED in its workflow's Ate with reason (NULL = "failed by '<actor>'").
** actor is required. Errors as chm_heartbeat. */
int chm_fail(chm_instance *inst, const char *uow_id, const char *actor,
             const char *reason);

/* chm_pause(inst, uow_id, actor) / chm_resume(inst, uow_id, actor): the
** kill switch. Pause moves a live token (any status but PAUSED, FINALIZED,
** ARCHIVED) to PAUSED, remembering its status; resume restores it (an
** ACTIVE token gets a fresh lease). actor NULL = "system"; any existing
** actor may do it. Errors: CHM_NOTFOUND (token, actor), CHM_STATE (pause
** of a PAUSED, FINALIZED or ARCHIVED token; resume of a token that is
** not PAUSED; instance paused). */
int chm_pause(chm_instance *inst, const char *uow_id, const char *actor);
int chm_resume(chm_instance *inst, const char *uow_id, const char *actor);

/* chm_instance_pause(inst) / chm_instance_resume(inst): instance-wide
** kill switch (Instance_Context.status PAUSED / ACTIVE), logged. Errors:
** CHM_STATE when already in that state (or in another status). */
int chm_instance_pause(chm_instance *inst);
int chm_instance_resume(chm_instance *inst);

/* chm_clarify(inst, uow_id, actor, text): an operator answers a token
** stuck in ZOMBIED_SOFT: stores text as a new version of the attribute
** "clarification", resets its checkout count and makes it PENDING again.
** actor NULL = "system". Errors: CHM_NOTFOUND (token, actor), CHM_STATE
** (token not ZOMBIED_SOFT, instance paused), CHM_INVALID (text cannot be
** stored as a JSON string). */
int chm_clarify(chm_instance *inst, const char *uow_id, const char *actor,
                const char *text);

/* chm_sweep(inst, &report_json): zombie sweep (ACTIVE tokens whose lease
** expired -> FAILED to Chronos) then stale sweep (PENDING tokens, and
** COMPLETED base tokens, that waited in an interaction longer than its
** stale_token_limit_seconds -> TIMEOUT to Chronos). One transaction per
** token. *report_json (caller frees; may be NULL): {"zombies":N,
** "stale":N,"zombie_ids":[...],"stale_ids":[...]}. Errors: CHM_STATE
** (instance paused); tokens swept before a failure stay swept. */
int chm_sweep(chm_instance *inst, char **report_json);

/* ---- Memory (Local_Role_Attributes) -------------------------------- */

/* chm_memory_set(inst, role, actor, key, value_json): write the role's
** Global Blueprint entry (actor NULL) or the actor's Personal Playbook
** entry: replaces the value of an existing (role, actor, key) row, else
** adds one; logs MEMORY_SET. role, a non-empty key and value_json are
** required (CHM_MISUSE). Errors: CHM_INVALID (value_json is not JSON; a
** role name found in several workflows), CHM_NOTFOUND (role, actor),
** CHM_STATE (instance paused). */
int chm_memory_set(chm_instance *inst, const char *role, const char *actor,
                   const char *key, const char *value_json);

/* chm_memory_mark_toxic(inst, memory_id): flag a memory row as toxic
** (never handed out again); logged. Errors: CHM_NOTFOUND (no such row),
** CHM_STATE (instance paused). */
int chm_memory_mark_toxic(chm_instance *inst, const char *memory_id);

/* chm_memory_decay(inst, days, &removed): delete memory rows not read
** (nor written, when never read) for `days` days (>= 0); *removed (may be
** NULL) receives how many. days < 0 is CHM_MISUSE. Errors: CHM_STATE
** (instance paused). */
int chm_memory_decay(chm_instance *inst, int days, int *removed);

/* ---- Queries (allowed while the instance is paused) ---------------- */

/* chm_token_get(inst, uow_id, &json): {"uow_id","status","workflow",
** "interaction","role","parent_id","return_uow_id","version",
** "child_count","finished_child_count","checkout_count",
** "max_interactions","lease":{"holder","expires_at"}|null,
** "paused_from_status","failure_reason","entered_at","created_at",
** "updated_at","context":{},"attributes":{},"rejections":[...]} (caller
** frees). Errors: CHM_NOTFOUND (no token uow_id). */
int chm_token_get(chm_instance *inst, const char *uow_id, char **json);

/* chm_token_history(inst, uow_id, &json): the token's log rows in order:
** [{"log_id","timestamp","event","from_status","to_status","actor",
** "role","interaction","decision","guardian","details"}] (caller frees).
** Errors: CHM_NOTFOUND (no token uow_id). */
int chm_token_history(chm_instance *inst, const char *uow_id, char **json);

/* chm_token_attributes(inst, uow_id, &json): every version of every
** attribute: [{"key","version","value","actor","reasoning","created_at",
** "lineage_attribute_id"}] ordered by key, version (caller frees).
** Errors: CHM_NOTFOUND (no token uow_id). */
int chm_token_attributes(chm_instance *inst, const char *uow_id, char **json);

/* chm_queues(inst, &json): one entry per interaction (master workflow
** first, declaration order): [{"workflow","interaction","consumers":
** [role names],"counts":{"PENDING":n,...},"total":n}] (caller frees).
** No error of its own. */
int chm_queues(chm_instance *inst, char **json);

/* chm_tokens(inst, status, &json): tokens (all, or those in `status`),
** oldest first: [{"uow_id","status","workflow","interaction","version",
** "parent_id","entered_at"}] (caller frees). Errors: CHM_INVALID for an
** unknown status (the message lists the statuses). */
int chm_tokens(chm_instance *inst, const char *status, char **json);

/* chm_verify(inst, &report_json): walk Interaction_Logs in log_id order
** recomputing the hash chain. CHM_OK with {"rows":N,"ok":true,
** "first_bad":null,"head_log_id":N,"head_hash":"<hex>"} (the head is null
** for an empty log), or CHM_CORRUPT naming the first bad row ("Interaction_
** Logs row 17 does not match its hash (...)") with "ok":false and
** "first_bad":17 in the report (still returned; caller frees). Nothing
** anchors the tail: deleting the newest rows is not detected; keep the
** head elsewhere and compare. */
int chm_verify(chm_instance *inst, char **report_json);

/* ---- The run loop and skills --------------------------------------- */

/* Options of chm_run; a zero field means its default. */
typedef struct chm_run_opts {
  int batch;     /* operations per commit (default 1) */
  int max_steps; /* stop after this many checkouts (0 = until idle) */
} chm_run_opts;

/* chm_run(inst, opts, &report_json): act as the actor "system" on every
** role it holds an ACTIVE assignment on (master workflow first, then by
** name; roles in declaration order), one token per role per pass, until a
** whole pass finds no work: a role with a step function runs it and
** submits its result; a recursive gateway starts its child workflow; any
** other role submits with no changes. A step that errors, exceeds its
** budget or memory, or returns bad changes sends the token FAILED to the
** Ate and the run goes on. opts NULL = defaults. *report_json (caller
** frees): {"steps":N,"moves":N,"failed":N,"commits":N}. An interrupt
** (chm_instance_interrupt from another thread or a signal handler) stops
** the run between operations with CHM_BUDGET; an operation it lands in is
** rolled back, leaving its token where it was; the report still tells
** what was done. Errors: CHM_NOTFOUND (the instance has no actor
** "system"), CHM_STATE (instance paused), CHM_BUDGET (interrupted);
** failures of steps are not errors of the run. */
int chm_run(chm_instance *inst, const chm_run_opts *opts, char **report_json);

/* A skill: a C function step scripts call as ctx.skills.<name>(args).
** args_json is the canonical JSON of the argument (null when none). On
** success return 0 and set *result_json to malloc'ed JSON text (or leave
** it NULL for null); on failure return nonzero and optionally set *error
** to a malloc'ed message. The library frees both with free(). */
typedef int (*chm_skill_cb)(void *ud, const char *args_json, char **result_json,
                            char **error);

/* chm_register_skill(inst, name, cb, ud): make cb callable by step
** functions of this handle as ctx.skills[name]; registering a name again
** replaces it. name: letters, digits and '_' (CHM_MISUSE otherwise, and
** for a NULL cb). The library keeps cb and ud until inst is closed and
** never frees ud. cb runs on the thread calling chm_run, inside a step;
** it must not call the library on inst. */
int chm_register_skill(chm_instance *inst, const char *name, chm_skill_cb cb,
                       void *ud);

#endif /* CHM_HAVE_TOKEN_API */

#ifdef __cplusplus
}
#endif
#endif /* CHAMELEON_H */
