/*
** core.h — the handle core shared by meta.c and instance.c (see core.c).
** Internal; declared apart from chm_int.h because only the two handle
** files and the core itself use it.
*/
#ifndef CHM_CORE_H
#define CHM_CORE_H

#include "chm_int.h"

/* chm__core_open(c, path, kind, create): zero c, open the store and make
** its sandbox. On failure c holds the message; call chm__core_close. */
int chm__core_open(chm__core *c, const char *path, int kind, int create);

/* chm__core_close(c): close the state (finalizing statements), then the
** connection; free messages. Safe on a half-opened core. */
void chm__core_close(chm__core *c);

/* chm__core_invoke(c, module, fn, nargs, args, &out): call trusted
** lua/<module>.lua's fn(db, args...) (args are strings or NULL). fn returns
** a table (encoded to pretty JSON), a string (returned as is), or
** nil, message, CODE_NAME, or result, message, CODE_NAME (a report that
** also fails, e.g. validation). *out is malloc'ed (caller frees) when rc is
** CHM_OK and fn returned a value. Rolls back a transaction left open. */
int chm__core_invoke(chm__core *c, const char *module, const char *fn,
                     int nargs, const char *const *args, char **out);

/* chm__core_invoke_ex: as chm__core_invoke, with a second store `extra`
** passed to fn right after db (instantiation writes a new instance). */
int chm__core_invoke_ex(chm__core *c, const char *module, const char *fn,
                        sqlite3 *extra, int nargs, const char *const *args,
                        char **out);

/* chm__read_file(path, &text, &len, &err): whole file, NUL-terminated,
** malloc'ed (caller frees). On failure *err is a malloc'ed message naming
** the file. */
int chm__read_file(const char *path, char **text, size_t *len, char **err);

/* chm__core_query(c, sql, &json): one read-only statement → JSON rows. */
int chm__core_query(chm__core *c, const char *sql, char **out);

/* chm__core_guide(c, table, &json): rows of v_ai_schema_guide (all, or
** those of `table`, case-insensitive) as JSON (guide.c). CHM_NOTFOUND,
** naming the table and the store, when `table` has no row. */
int chm__core_guide(chm__core *c, const char *table, char **out);

/* chm__core_eval(c, src, limits, &json): sandboxed chunk → JSON result. */
int chm__core_eval(chm__core *c, const char *src, const chm_limits *limits,
                   char **out);

/* chm__repl(c, handle, fn, line, &out): call lua/repl.lua's fn ("eval"
** or "names") with the handle's engine bindings (repl.c). CHM_OK with the
** printed results (or the JSON list of names) in *out (caller frees);
** CHM_INCOMPLETE when the chunk needs more lines; else the chunk's failure
** with message and traceback in the handle's errmsg, and in *out (caller
** frees; NULL for nothing) what the chunk printed before it failed. */
int chm__repl(chm__core *c, void *handle, const char *fn, const char *line,
              char **out);

#endif
