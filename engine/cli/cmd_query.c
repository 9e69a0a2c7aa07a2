/*
** cmd_query.c — the read-only query commands of the CLI: guide (the
** schema guide view v_ai_schema_guide of a store, through chm_*_guide)
** and sql (one read-only statement, through chm_*_query). Either store
** can be queried: --instance PATH selects an instance store, otherwise
** the meta-store. Writing is refused by the
** library (chm_*_query), never merely by this file.
*/
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Advice for a failed statement typed by the user (sql), or NULL. */
static const char *sql_hint(int rc) {
  if (rc == CHM_DENIED)
    return "sql runs read-only statements (SELECT, WITH, EXPLAIN); data "
           "changes go through the engine";
  if (rc == CHM_DB)
    return "check the statement; 'chameleon guide' lists the tables and "
           "their columns";
  return NULL;
}

/* Run the user's sql on the store the options select; *json gets the rows
** (caller frees with chm_free). Returns an exit code; errors are reported
** with sql_hint(). */
static int query(cli *c, const char *sql, char **json) {
  int rc;
  *json = NULL;
  if (c->instance && c->meta_given)
    return cli_usage_error(c, "give --meta or --instance, not both");
  if (c->instance) {
    if ((rc = cli_open_instance(c, c->instance)))
      return rc;
    if ((rc = chm_instance_query(c->inst, sql, json)) != CHM_OK) {
      chm_free(*json);
      *json = NULL;
      return cli_instance_fail(c, rc, sql_hint(rc));
    }
  } else {
    if ((rc = cli_open_meta(c, 0)))
      return rc;
    if ((rc = chm_meta_query(c->m, sql, json)) != CHM_OK) {
      chm_free(*json);
      *json = NULL;
      return cli_meta_fail(c, rc, sql_hint(rc));
    }
  }
  return CLI_EXIT_OK;
}

/* The path of the store being queried, for messages. */
static const char *store_path(const cli *c) {
  return c->instance ? c->instance : c->meta;
}

/* Parse rows; NULL (reported) when the answer is not a JSON array. */
static cli_jv *parse_rows(cli *c, const char *json) {
  char err[128];
  cli_jv *rows = cli_json_parse(json, err, sizeof err);
  if (!rows || rows->type != CLI_JARRAY) {
    cli_error(c, CLI_EXIT_ERROR,
              "report this as a bug; --json prints the raw answer",
              "cannot read the rows returned by the library%s%s",
              rows ? "" : ": ", rows ? "" : err);
    cli_json_free(rows);
    return NULL;
  }
  return rows;
}

/* ===================================================================== */
/* guide                                                                  */
/* ===================================================================== */

int cli_cmd_guide(cli *c) {
  static const char *const heads[] = {"TABLE", "COLUMN", "TYPE",
                                      "PK",    "FK",     "DESCRIPTION"};
  static const char *const keys[] = {"table_name",         "column_name",
                                     "data_type",          "is_primary_key",
                                     "foreign_key_target", "description"};
  const char *table = c->npos ? c->pos[0] : NULL;
  char *json = NULL;
  cli_jv *rows;
  cli_table t;
  int rc;

  if (c->instance && c->meta_given)
    return cli_usage_error(c, "give --meta or --instance, not both");
  if (c->instance) {
    if ((rc = cli_open_instance(c, c->instance)))
      return rc;
    rc = chm_instance_guide(c->inst, table, &json);
  } else {
    if ((rc = cli_open_meta(c, 0)))
      return rc;
    rc = chm_meta_guide(c->m, table, &json);
  }
  if (rc != CHM_OK) {
    /* CHM_NOTFOUND: the library's message names the table and the store */
    cli_buf hint = {0};
    int code;
    if (rc == CHM_NOTFOUND)
      cli_buf_printf(&hint, "run 'chameleon guide --%s %s' to list every "
                     "table", c->instance ? "instance" : "meta", store_path(c));
    code = c->instance ? cli_instance_fail(c, rc, hint.s)
                       : cli_meta_fail(c, rc, hint.s);
    cli_buf_free(&hint);
    chm_free(json);
    return code;
  }
  if (!(rows = parse_rows(c, json))) {
    chm_free(json);
    return c->status;
  }
  if (c->json) {
    cli_put_text(stdout, json);
  } else {
    cli_table_init(&t, 6, heads);
    for (const cli_jv *row = rows->child; row; row = row->next) {
      cli_buf b[6] = {{0}};
      const char *cells[6];
      for (int j = 0; j < 6; j++)
        cells[j] = cli_cell(&b[j], cli_json_get(row, keys[j]));
      cells[3] = cli_json_truthy(cli_json_get(row, keys[3])) ? "yes" : "";
      cli_table_add(&t, cells);
      for (int j = 0; j < 6; j++)
        cli_buf_free(&b[j]);
    }
    cli_table_print(&t, stdout, 0);
    cli_table_free(&t);
  }
  cli_json_free(rows);
  chm_free(json);
  return CLI_EXIT_OK;
}

/* ===================================================================== */
/* sql                                                                    */
/* ===================================================================== */

int cli_cmd_sql(cli *c) {
  char *json = NULL;
  cli_jv *rows;
  const cli_jv *first;
  int rc;

  rc = query(c, c->pos[0], &json);
  if (rc)
    return rc;
  if (c->json) {
    cli_put_text(stdout, json);
    chm_free(json);
    return CLI_EXIT_OK;
  }
  rows = parse_rows(c, json);
  chm_free(json);
  if (!rows)
    return c->status;
  first = rows->child;
  if (first && first->type == CLI_JOBJECT && first->n > 0) {
    /* Columns: the keys of the first row, in the order they came. */
    int ncol = (int)first->n, j = 0;
    const char **heads = calloc((size_t)ncol, sizeof *heads);
    const char **cells = calloc((size_t)ncol, sizeof *cells);
    cli_buf *b = calloc((size_t)ncol, sizeof *b);
    cli_table t;
    if (!heads || !cells || !b) {
      free(heads), free(cells), free(b);
      cli_json_free(rows);
      return cli_error(c, CLI_EXIT_ERROR, NULL, "out of memory");
    }
    for (const cli_jv *m = first->child; m; m = m->next)
      heads[j++] = m->key;
    cli_table_init(&t, ncol, heads);
    for (const cli_jv *row = rows->child; row; row = row->next) {
      for (j = 0; j < ncol; j++)
        cells[j] = cli_cell(&b[j], cli_json_get(row, heads[j]));
      cli_table_add(&t, cells);
    }
    cli_table_print(&t, stdout, 0);
    cli_table_free(&t);
    for (j = 0; j < ncol; j++)
      cli_buf_free(&b[j]);
    free(heads), free(cells), free(b);
  }
  cli_json_free(rows);
  return CLI_EXIT_OK;
}
