/*
** chameleon.h — the one public header of libchameleon, the embeddable
** workflow-governance engine. Everything the CLI, the REPL and the Lua
** module do goes through the functions declared here.
**
** Two opaque handles: chm_meta (a meta-store of workflow blueprints) and
** chm_instance (one air-gapped instance store). Each owns one SQLite
** connection and one sandboxed lua_State. A handle is not thread-safe: use
** it from one thread at a time. Different handles are independent.
**
** Error model (SQLite's): every function returns an int status (CHM_OK on
** success) or a pointer that is NULL on failure, never a mix.
** chm_errstr(rc) gives the static message of a code; chm_meta_errmsg() /
** chm_instance_errmsg() give the detailed message of the last failure on
** that handle. Strings returned through `char **out` are allocated by the
** library and freed by the caller with chm_free().
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
  XX(CORRUPT, "store is corrupt or was tampered with")

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

/* chm_clock_set_virtual(ms): from now on the engine's clock reads `ms`
** (milliseconds since the Unix epoch) until advanced or reset. Process-wide;
** for tests, replay and simulation. */
void chm_clock_set_virtual(int64_t ms);

/* chm_clock_advance(ms): move the virtual clock forward (no-op when the
** real clock is in use). */
void chm_clock_advance(int64_t ms);

/* chm_clock_set_real(): go back to the real clock. */
void chm_clock_set_real(void);

/* chm_clock_is_virtual() -> 1 when a virtual clock is installed. */
int chm_clock_is_virtual(void);

/* chm_clock_now() -> the engine's current time, ms since the epoch. */
int64_t chm_clock_now(void);

/* ===================================================================== */
/* Meta-store: templates                                                  */
/* ===================================================================== */

typedef struct chm_meta chm_meta;

/* chm_meta_open(path, &m): open the meta-store at path, creating it (and
** its schema) if missing, migrating an older schema in one transaction.
** On success *m is a new handle the caller closes with chm_meta_close. On
** failure *m is still set when a handle could be allocated (read its
** message with chm_meta_errmsg, then close it), else NULL. */
int chm_meta_open(const char *path, chm_meta **m);

/* chm_meta_close(m): finalize statements, close the database and the Lua
** state. NULL-safe. Returns CHM_OK. */
int chm_meta_close(chm_meta *m);

/* chm_meta_errmsg(m) -> detailed message of the last failure on m (or
** "ok"). Owned by m; valid until the next call on m. */
const char *chm_meta_errmsg(const chm_meta *m);

/* chm_meta_import(m, path, &report): load a workflow file (.lua or .json),
** validate it and store it as a new version of its workflow, atomically.
** An unchanged definition of an existing name stores nothing. *report
** (JSON, caller frees) is {"name","version","status":"created"|
** "unchanged","workflow_id"}. On CHM_INVALID the errmsg lists every
** violation, one per line; nothing was written. */
int chm_meta_import(chm_meta *m, const char *path, char **report);

/* chm_meta_validate(m, path, &report): as import, but writes nothing.
** *report is {"name", "ok":true|false, "errors":[...]} (caller frees).
** Returns CHM_OK when valid, CHM_INVALID otherwise. */
int chm_meta_validate(chm_meta *m, const char *path, char **report);

/* chm_meta_list(m, &json): every workflow with its versions, as a JSON
** array (caller frees). */
int chm_meta_list(chm_meta *m, char **json);

/* chm_meta_show(m, name, version, &json): one stored workflow (version 0 =
** latest) with roles, interactions, components, guardians, actors. */
int chm_meta_show(chm_meta *m, const char *name, int version, char **json);

/* Export formats for chm_meta_export. */
enum chm_export_format { CHM_EXPORT_JSON = 0, CHM_EXPORT_DOT = 1 };

/* chm_meta_export(m, name, version, format, &text): the canonical JSON
** definition (import of it gives back the same text) or a Graphviz DOT
** picture. Caller frees *text. */
int chm_meta_export(chm_meta *m, const char *name, int version, int format,
                    char **text);

/* chm_meta_instantiate(m, name, version, path, instance_name, &report):
** deep-copy workflow `name` (version 0 = latest) and every child workflow
** it reaches into a new instance store at `path` (which must not exist).
** *report is {"instance_id","path","workflows":[...]} (caller frees). */
int chm_meta_instantiate(chm_meta *m, const char *name, int version,
                         const char *path, const char *instance_name,
                         char **report);

/* chm_meta_query(m, sql, &json): run one read-only SQL statement and
** return its rows as a JSON array of objects (caller frees). Statements
** that would write are refused with CHM_DENIED. */
int chm_meta_query(chm_meta *m, const char *sql, char **json);

/* chm_meta_eval(m, source, limits, &json): run a Lua chunk in a fresh
** sandbox environment of m's Lua state under `limits` (NULL = defaults)
** and return its first result encoded as JSON (caller frees). A script
** failure returns CHM_SCRIPT / CHM_BUDGET / CHM_MEMORY with the message in
** chm_meta_errmsg; the handle stays usable. */
int chm_meta_eval(chm_meta *m, const char *source, const chm_limits *limits,
                  char **json);

/* ===================================================================== */
/* Instance stores                                                        */
/* ===================================================================== */

typedef struct chm_instance chm_instance;

/* chm_instance_open(path, &inst): open an existing instance store (never
** creates one: use chm_meta_instantiate). Migrates an older schema. Same
** *inst rules as chm_meta_open. The meta-store is never consulted. */
int chm_instance_open(const char *path, chm_instance **inst);

/* chm_instance_close(inst): NULL-safe; returns CHM_OK. */
int chm_instance_close(chm_instance *inst);

/* chm_instance_errmsg(inst) -> detailed last message, owned by inst. */
const char *chm_instance_errmsg(const chm_instance *inst);

/* chm_instance_describe(inst, &json): the instance context and its
** workflows, roles, interactions, components, guardians, actors and
** assignments, read from the instance store alone (caller frees). */
int chm_instance_describe(chm_instance *inst, char **json);

/* chm_instance_validate(inst, &report): re-run the import validation on
** every workflow held by the instance. CHM_OK when valid, CHM_INVALID
** otherwise; *report as chm_meta_validate (caller frees). */
int chm_instance_validate(chm_instance *inst, char **report);

/* chm_instance_query(inst, sql, &json): read-only SQL, as chm_meta_query. */
int chm_instance_query(chm_instance *inst, const char *sql, char **json);

/* chm_instance_eval(inst, source, limits, &json): as chm_meta_eval. */
int chm_instance_eval(chm_instance *inst, const char *source,
                      const chm_limits *limits, char **json);

#ifdef __cplusplus
}
#endif
#endif /* CHAMELEON_H */
