/*
** meta.c — the chm_meta handle: a meta-store of workflow blueprints. Each
** public function checks its arguments at the edge and hands the work to
** trusted Lua (lua/meta.lua, lua/instantiate.lua) through the handle core.
*/
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "chm_int.h"
#include "core.h"

struct chm_meta {
  chm__core core; /* store, sandbox, last message */
};

int chm_meta_open(const char *path, chm_meta **out) {
  chm_meta *m;
  int rc;
  if (out == NULL) return CHM_MISUSE;
  *out = m = calloc(1, sizeof *m);
  if (m == NULL) return CHM_NOMEM;
  rc = chm__core_open(&m->core, path, CHM__META, 1);
  return rc;
}

int chm_meta_close(chm_meta *m) {
  if (m == NULL) return CHM_OK;
  chm__core_close(&m->core);
  free(m);
  return CHM_OK;
}

chm__core *chm__meta_core(chm_meta *m) { return m == NULL ? NULL : &m->core; }

const char *chm_meta_errmsg(const chm_meta *m) {
  return m == NULL ? "no handle (out of memory?)" : chm__core_errmsg(&m->core);
}

/* Rejects a NULL or closed handle or a NULL required argument. */
#define CHECK(m, cond)                                                    \
  do {                                                                    \
    if ((m) == NULL || (m)->core.L == NULL) return CHM_MISUSE;            \
    if (!(cond))                                                          \
      return chm__core_seterr(&(m)->core, CHM_MISUSE,                     \
                              "%s: missing argument", __func__);          \
  } while (0)

/* Reads path and calls meta.<fn>(db, path, text). */
static int with_file(chm_meta *m, const char *fn, const char *path,
                     char **report) {
  const char *args[2];
  char *text = NULL, *err = NULL;
  int rc = chm__read_file(path, &text, NULL, &err);
  if (rc != CHM_OK) {
    chm__core_seterr(&m->core, rc, "%s", err ? err : chm_errstr(rc));
    free(err);
    return rc;
  }
  args[0] = path;
  args[1] = text;
  rc = chm__core_invoke(&m->core, "meta", fn, 2, args, report);
  free(text);
  if (rc == CHM_MEMORY) {
    /* Name the file and say what to do: the cap has no option. */
    char why[256];
    snprintf(why, sizeof why, "%s", chm__core_errmsg(&m->core));
    chm__core_seterr(&m->core, rc,
                     "%s: the definition is too big to %s (%s); split the "
                     "workflow into a parent and child workflows joined by "
                     "recursive gateways (the cap is fixed: no option "
                     "raises it)", path, fn, why);
  }
  return rc;
}

int chm_meta_import(chm_meta *m, const char *path, char **report) {
  CHECK(m, path != NULL);
  return with_file(m, "import", path, report);
}

int chm_meta_validate(chm_meta *m, const char *path, char **report) {
  CHECK(m, path != NULL);
  return with_file(m, "validate", path, report);
}

int chm_meta_list(chm_meta *m, char **json) {
  CHECK(m, json != NULL);
  return chm__core_invoke(&m->core, "meta", "list", 0, NULL, json);
}

int chm_meta_show(chm_meta *m, const char *name, int version, char **json) {
  char v[24];
  const char *args[2];
  CHECK(m, name != NULL && json != NULL);
  snprintf(v, sizeof v, "%d", version);
  args[0] = name;
  args[1] = v;
  return chm__core_invoke(&m->core, "meta", "show", 2, args, json);
}

int chm_meta_export(chm_meta *m, const char *name, int version, int format,
                    char **text) {
  char v[24];
  const char *args[3];
  CHECK(m, name != NULL && text != NULL);
  if (format != CHM_EXPORT_JSON && format != CHM_EXPORT_DOT)
    return chm__core_seterr(&m->core, CHM_MISUSE,
                            "unknown export format %d (use CHM_EXPORT_JSON "
                            "or CHM_EXPORT_DOT)", format);
  snprintf(v, sizeof v, "%d", version);
  args[0] = name;
  args[1] = v;
  args[2] = format == CHM_EXPORT_DOT ? "dot" : "json";
  return chm__core_invoke(&m->core, "meta", "export", 3, args, text);
}

/* Removes a half-made instance file and its WAL companions. */
static void remove_store(const char *path) {
  char buf[4096];
  remove(path);
  snprintf(buf, sizeof buf, "%s-wal", path);
  remove(buf);
  snprintf(buf, sizeof buf, "%s-shm", path);
  remove(buf);
}

int chm_meta_instantiate(chm_meta *m, const char *name, int version,
                         const char *path, const char *instance_name,
                         char **report) {
  char v[24], *err = NULL;
  const char *args[4];
  sqlite3 *idb = NULL;
  int rc;
  CHECK(m, name != NULL && path != NULL);
  if (access(path, F_OK) == 0)
    return chm__core_seterr(&m->core, CHM_EXISTS,
                            "%s: already exists; instantiate into a new file "
                            "(each instance is its own store)", path);
  rc = chm__store_open(path, CHM__INSTANCE, 1, &idb, &err);
  if (rc != CHM_OK) {
    chm__core_seterr(&m->core, rc, "%s", err ? err : chm_errstr(rc));
    free(err);
    remove_store(path);
    return rc;
  }
  snprintf(v, sizeof v, "%d", version);
  args[0] = name;
  args[1] = v;
  args[2] = path;
  args[3] = instance_name;
  rc = chm__core_invoke_ex(&m->core, "instantiate", "run", idb, 4, args,
                           report);
  sqlite3_close(idb); /* statements cached for idb live in m's state */
  if (rc != CHM_OK) remove_store(path);
  return rc;
}

int chm_meta_query(chm_meta *m, const char *sql, char **json) {
  CHECK(m, sql != NULL && json != NULL);
  return chm__core_query(&m->core, sql, json);
}

int chm_meta_guide(chm_meta *m, const char *table, char **json) {
  if (json != NULL) *json = NULL;
  CHECK(m, json != NULL);
  return chm__core_guide(&m->core, table, json);
}

int chm_meta_eval(chm_meta *m, const char *source, const chm_limits *limits,
                  char **json) {
  CHECK(m, source != NULL && json != NULL);
  return chm__core_eval(&m->core, source, limits, json);
}

int chm_meta_repl(chm_meta *m, const char *chunk, char **out) {
  if (out != NULL) *out = NULL;
  CHECK(m, chunk != NULL && out != NULL);
  return chm__repl(&m->core, m, "eval", chunk, out);
}

void chm_meta_repl_output(chm_meta *m, chm_write_fn fn, void *ud) {
  if (m == NULL) return;
  m->core.out_fn = fn;
  m->core.out_ud = fn != NULL ? ud : NULL;
}

int chm_meta_repl_names(chm_meta *m, char **json) {
  if (json != NULL) *json = NULL;
  CHECK(m, json != NULL);
  return chm__repl(&m->core, m, "names", NULL, json);
}

void chm_meta_interrupt(chm_meta *m) {
  if (m != NULL) chm__sandbox_interrupt(m->core.L);
}
