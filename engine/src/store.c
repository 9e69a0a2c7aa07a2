/*
** store.c — opening SQLite files as Chameleon stores. Sets the pragmas
** every store runs with (WAL, foreign keys, full durability, busy timeout)
** and brings the schema up to date from the migrations embedded at build
** time (sql/meta/NNN_*.sql, sql/instance/NNN_*.sql): PRAGMA user_version
** holds the number of the last applied file; missing files are applied in
** one transaction, so a failed upgrade leaves the store as it was. A file
** that is not a store of the kind asked for is refused before anything is
** written to it (check_identity).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chm_int.h"

/* PRAGMA application_id of each store kind: 'CHMM' and 'CHMI'. */
static const int app_id[2] = {0x43484D4D, 0x43484D49};

/* Applies every embedded migration of `kind` newer than user_version. */
static int migrate(sqlite3 *db, int kind, const char *path, char **err) {
  const char *prefix = kind == CHM__META ? "sql/meta/" : "sql/instance/";
  size_t plen = strlen(prefix);
  const chm__blob *b;
  sqlite3_stmt *st;
  int have = 0, last = 0, rc, num;
  char *emsg = NULL;
  char buf[64];

  if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &emsg) != SQLITE_OK)
    goto fail;
  if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) !=
      SQLITE_OK)
    goto fail_db;
  if (sqlite3_step(st) == SQLITE_ROW) have = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  for (b = chm__embedded; b->name != NULL; b++) /* newest this engine knows */
    if (strncmp(b->name, prefix, plen) == 0 && atoi(b->name + plen) > last)
      last = atoi(b->name + plen);
  /* Each missing version N: sql/common/N_*.sql (shared by both kinds)
  ** first, then the kind's own N_*.sql. */
  for (num = have + 1; num <= last; num++) {
    int pass;
    for (pass = 0; pass < 2; pass++) {
      const char *dir = pass == 0 ? "sql/common/" : prefix;
      size_t dlen = strlen(dir);
      for (b = chm__embedded; b->name != NULL; b++) {
        if (strncmp(b->name, dir, dlen) != 0 || atoi(b->name + dlen) != num)
          continue;
        if (sqlite3_exec(db, b->data, NULL, NULL, &emsg) != SQLITE_OK) {
          *err = chm__strdupf("%s: schema migration failed: %s", b->name,
                              emsg ? emsg : "?");
          sqlite3_free(emsg);
          sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
          return CHM_DB;
        }
      }
    }
  }
  if (have > last) {
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    snprintf(buf, sizeof buf, "%d > %d", have, last);
    *err = chm__strdupf("%s: store schema version is newer than this engine (%s); "
                "upgrade chameleon",
                path, buf);
    return CHM_DB;
  }
  if (sqlite3_prepare_v2(db, "PRAGMA application_id", -1, &st, NULL) !=
      SQLITE_OK)
    goto fail_db;
  rc = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
  sqlite3_finalize(st);
  if ((rc != 0 && rc != app_id[kind]) || (rc == 0 && have > 0)) {
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    *err = chm__strdupf("%s: not a Chameleon %s (open it with the right command: "
                "meta-stores hold templates, instance stores hold tokens)",
                path, kind == CHM__META ? "meta-store" : "instance store");
    return CHM_DB;
  }
  if (rc == 0) {
    snprintf(buf, sizeof buf, "PRAGMA application_id = %d", app_id[kind]);
    if (sqlite3_exec(db, buf, NULL, NULL, &emsg) != SQLITE_OK) goto fail;
  }
  snprintf(buf, sizeof buf, "PRAGMA user_version = %d", last);
  if (last > have && sqlite3_exec(db, buf, NULL, NULL, &emsg) != SQLITE_OK)
    goto fail;
  if (sqlite3_exec(db, "COMMIT", NULL, NULL, &emsg) != SQLITE_OK) goto fail;
  return CHM_OK;
fail_db:
  emsg = sqlite3_mprintf("%s", sqlite3_errmsg(db));
fail:
  rc = chm__store_status(db, "preparing the store", err);
  if (*err == NULL)
    *err = chm__strdupf("%s: cannot prepare the store: %s", path,
                        emsg ? emsg : "?");
  sqlite3_free(emsg);
  sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  return rc;
}

/* dir_of(path, out, size): the directory part of path ("." when none). */
static void dir_of(const char *path, char *out, size_t size) {
  const char *slash = strrchr(path, '/');
  if (slash == NULL) {
    snprintf(out, size, ".");
  } else if (slash == path) {
    snprintf(out, size, "/");
  } else {
    snprintf(out, size, "%.*s", (int)(slash - path), path);
  }
}

/* unwritable(path, dir) -> why the store at path cannot be written: 1
** when the file is read-only, 2 when its directory is (WAL mode must
** create PATH-wal and PATH-shm there), 0 when neither. access() ignores
** permissions for root, so root always gets 0. */
static int unwritable(const char *path, const char *dir) {
  if (access(path, F_OK) == 0 && access(path, W_OK) != 0) return 1;
  if (access(dir, W_OK) != 0) return 2;
  return 0;
}

int chm__store_status(sqlite3 *db, const char *what, char **msg) {
  int prim = sqlite3_extended_errcode(db) & 0xff;
  const char *path = sqlite3_db_filename(db, "main");
  const char *text = sqlite3_errmsg(db);
  char dir[4096];
  *msg = NULL;
  if (path == NULL || *path == '\0') path = "(the store)";
  switch (prim) {
  case SQLITE_CORRUPT:
  case SQLITE_NOTADB:
    *msg = chm__strdupf("%s: the store file is damaged (%s: %s); stop "
                        "writing to it and restore it from a backup "
                        "(sqlite3 '%s' 'PRAGMA integrity_check' lists what "
                        "is broken)", path, what, text, path);
    return CHM_CORRUPT;
  case SQLITE_READONLY:
  case SQLITE_CANTOPEN:
    dir_of(path, dir, sizeof dir);
    switch (unwritable(path, dir)) {
    case 1:
      *msg = chm__strdupf("%s: cannot write the store: the file is read-only "
                          "(%s: %s); make it writable (chmod u+w '%s') or "
                          "work on a writable copy", path, what, text, path);
      break;
    case 2:
      *msg = chm__strdupf("%s: cannot use the store: its directory '%s' is "
                          "not writable, and a store needs to create its "
                          "-wal and -shm files there (%s: %s); make the "
                          "directory writable or copy the store to a "
                          "writable one", path, dir, what, text);
      break;
    default:
      *msg = chm__strdupf("%s: cannot write the store (%s: %s); check the "
                          "permissions of the file and of its directory "
                          "'%s'", path, what, text, dir);
    }
    return CHM_IO;
  case SQLITE_IOERR:
    *msg = chm__strdupf("%s: disk I/O error (%s: %s); check the disk and the "
                        "file, then retry", path, what, text);
    return CHM_IO;
  default:
    return CHM_DB;
  }
}

/* check_identity(db, kind, create, path, err) -> CHM_OK when the file may
** be opened as a store of `kind`: it already is one, or it holds nothing
** at all and `create` allows making one. Anything else (the other kind of
** store, another program's SQLite database, a file that is not SQLite) is
** refused BEFORE any pragma or migration writes to it, so opening the
** wrong file never changes it. */
static int check_identity(sqlite3 *db, int kind, int create, const char *path,
                          char **err) {
  static const char *const what[2] = {"meta-store", "instance store"};
  static const char *const make[2] = {"chameleon init", "chameleon instantiate"};
  sqlite3_stmt *st = NULL;
  int id = 0, objects = 0, rc;
  rc = sqlite3_prepare_v2(db,
                          "SELECT (SELECT application_id FROM pragma_application_id),"
                          " (SELECT count(*) FROM sqlite_schema)",
                          -1, &st, NULL);
  if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    id = sqlite3_column_int(st, 0);
    objects = sqlite3_column_int(st, 1);
    rc = SQLITE_OK;
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_OK) {
    /* damaged, read-only or in a read-only directory: say so (NOTADB is
    ** also any file that is not SQLite at all, hence the word "or") */
    int st_rc = chm__store_status(db, "reading the schema", err);
    if (sqlite3_extended_errcode(db) == SQLITE_NOTADB) {
      /* any file that is not SQLite at all: say what it is not */
      free(*err);
      *err = NULL;
      st_rc = CHM_DB;
    }
    if (*err != NULL) return st_rc;
    *err = chm__strdupf("%s: not a Chameleon %s: %s (give a store made by %s)",
                        path, what[kind], sqlite3_errmsg(db), make[kind]);
    return st_rc;
  }
  if (id == app_id[kind]) return CHM_OK;
  if (id == app_id[!kind]) {
    *err = chm__strdupf("%s: is a Chameleon %s, not %s %s (meta-stores hold "
                        "templates, instance stores hold tokens)",
                        path, what[!kind], kind == CHM__META ? "a" : "an",
                        what[kind]);
    return CHM_DB;
  }
  if (id == 0 && objects == 0) {
    if (create) return CHM_OK;
    *err = chm__strdupf("%s: not a Chameleon %s: the file holds no database "
                        "(make one with %s)", path, what[kind], make[kind]);
    return CHM_DB;
  }
  *err = chm__strdupf("%s: not a Chameleon %s: it is another SQLite database "
                      "(application_id %d, %d schema objects), left "
                      "untouched (give a store made by %s)",
                      path, what[kind], id, objects, make[kind]);
  return CHM_DB;
}

int chm__store_open(const char *path, int kind, int create, sqlite3 **out,
                    char **err) {
  sqlite3 *db = NULL;
  char *emsg = NULL;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  int rc;
  *out = NULL;
  *err = NULL;
  if (!create && access(path, F_OK) != 0) {
    *err = chm__strdupf("%s: no such store%s", path,
                kind == CHM__INSTANCE ? " (create one with instantiate)" : "");
    return CHM_NOTFOUND;
  }
  if (create) flags |= SQLITE_OPEN_CREATE;
  if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
    *err = chm__strdupf("%s: cannot open: %s", path,
                db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close(db);
    return CHM_IO;
  }
  sqlite3_busy_timeout(db, 10000);
  sqlite3_extended_result_codes(db, 1);
  if ((rc = check_identity(db, kind, create, path, err)) != CHM_OK) {
    sqlite3_close(db);
    return rc;
  }
  if (sqlite3_exec(db,
                   "PRAGMA journal_mode=WAL;"
                   "PRAGMA synchronous=FULL;"
                   /* statement journals of savepoints stay in memory: no
                   ** temp file created and unlinked per operation */
                   "PRAGMA temp_store=MEMORY;"
                   "PRAGMA foreign_keys=ON;",
                   NULL, NULL, &emsg) != SQLITE_OK) {
    rc = chm__store_status(db, "setting the pragmas", err);
    if (*err == NULL)
      *err = chm__strdupf("%s: not a usable SQLite store: %s", path,
                          emsg ? emsg : "?");
    sqlite3_free(emsg);
    sqlite3_close(db);
    return rc;
  }
  rc = migrate(db, kind, path, err);
  if (rc != CHM_OK) {
    sqlite3_close(db);
    return rc;
  }
  *out = db;
  return CHM_OK;
}
