/*
** guide.c — the schema guide of a store (chm_meta_guide,
** chm_instance_guide): the rows of the view v_ai_schema_guide, for every
** table or for one table named without regard to case. Shared by both
** handles through the core's read-only query door (core.c); the view
** itself is sql/common/001_schema_guide.sql.
*/
#include <ctype.h>

#include "chm_int.h"
#include "core.h"

/* Only whitespace and the brackets of an empty JSON array. */
static int empty_array(const char *json) {
  int brackets = 0;
  for (; *json; json++) {
    if (*json == '[' || *json == ']')
      brackets++;
    else if (!isspace((unsigned char)*json))
      return 0;
  }
  return brackets == 2;
}

int chm__core_guide(chm__core *c, const char *table, char **out) {
  char *sql;
  int rc;
  *out = NULL;
  if (table == NULL)
    sql = sqlite3_mprintf("SELECT * FROM v_ai_schema_guide");
  else
    sql = sqlite3_mprintf("SELECT * FROM v_ai_schema_guide "
                          "WHERE table_name = %Q COLLATE NOCASE", table);
  if (sql == NULL) return chm__core_seterr(c, CHM_NOMEM, "out of memory");
  rc = chm__core_query(c, sql, out);
  sqlite3_free(sql);
  if (rc == CHM_OK && table != NULL && empty_array(*out)) {
    chm_free(*out);
    *out = NULL;
    rc = chm__core_seterr(c, CHM_NOTFOUND,
                          "no table '%s' in the schema guide of '%s'", table,
                          c->path != NULL ? c->path : "?");
  }
  return rc;
}
