/*
** cmd_instance.c — the instance commands of the CLI: describe and check.
** Both open an existing instance store with chm_instance_open and never
** touch a meta-store (instances are air-gapped). describe prints the
** context and the graph of every workflow the instance holds, master
** first; check re-runs the import validation on them.
*/
#include <errno.h>
#include <string.h>

#include "cli.h"

/* ===================================================================== */
/* describe                                                               */
/* ===================================================================== */

/* Fields of the instance context printed first, in this order (seed 000's
** Instance_Context); any others follow in the order they came. */
static const char *const first_fields[] = {
    "instance_id", "name", "description", "status", "deployment_date", NULL};

static int is_scalar(const cli_jv *v) {
  return v->type != CLI_JARRAY && v->type != CLI_JOBJECT;
}

static void print_field(const cli_jv *m, int w, cli_buf *b) {
  int is_time = strstr(m->key, "date") || strstr(m->key, "_at");
  if (is_time)
    cli_time(b, m);
  else
    cli_cell(b, m);
  printf("%-*s  %s\n", w, m->key, *b->s ? b->s : "-");
}

/* Print the scalar members of obj as aligned "key  value" lines. */
static void print_fields(const cli_jv *obj) {
  size_t w = 0;
  cli_buf b = {0};
  for (const cli_jv *m = obj->child; m; m = m->next)
    if (is_scalar(m) && strlen(m->key) > w)
      w = strlen(m->key);
  for (int k = 0; first_fields[k]; k++) {
    const cli_jv *m = cli_json_get(obj, first_fields[k]);
    if (m && is_scalar(m))
      print_field(m, (int)w, &b);
  }
  for (const cli_jv *m = obj->child; m; m = m->next) {
    int listed = 0;
    for (int k = 0; first_fields[k] && !listed; k++)
      listed = strcmp(m->key, first_fields[k]) == 0;
    if (!listed && is_scalar(m))
      print_field(m, (int)w, &b);
  }
  cli_buf_free(&b);
}

/* Whether workflow wf is the instance's master: its own flag, or the
** context naming it. */
static int is_master(const cli_jv *wf, const cli_jv *ctx) {
  const cli_jv *flag =
      cli_json_any(wf, "is_master", "master", (const char *)NULL);
  const cli_jv *want =
      cli_json_any(ctx, "master_workflow", "master_workflow_id",
                   "master_workflow_name", (const char *)NULL);
  const char *keys[] = {"name", "local_workflow_id", "workflow_id", "id"};
  if (flag)
    return cli_json_truthy(flag);
  if (!want || want->type != CLI_JSTRING)
    return 0;
  for (int k = 0; k < 4; k++) {
    const cli_jv *v = cli_json_get(wf, keys[k]);
    if (v && v->type == CLI_JSTRING && strcmp(v->text, want->text) == 0)
      return 1;
  }
  return 0;
}

static void print_workflow(const cli_jv *wf, int master) {
  cli_buf b = {0};
  const cli_jv *desc = cli_json_get(wf, "description");
  printf("\nWorkflow %s",
         cli_cell(&b, wf->type == CLI_JOBJECT ? cli_json_get(wf, "name") : wf));
  if (*cli_cell(&b, cli_json_get(wf, "version")))
    printf(" version %s", b.s);
  printf("%s\n", master ? " (master)" : "");
  if (desc && *cli_cell(&b, desc))
    printf("  %s\n", b.s);
  cli_print_graph(stdout, wf, 2);
  cli_print_people(stdout, wf, 2);
  cli_buf_free(&b);
}

int cli_cmd_describe(cli *c) {
  char *json = NULL, err[128];
  cli_jv *root;
  const cli_jv *ctx, *wfs;
  int rc;

  if (c->json && c->dot)
    return cli_usage_error(c, "--json and --dot exclude each other");
  if (c->output && !c->dot)
    return cli_usage_error(c, "-o FILE goes with --dot");
  if ((rc = cli_open_instance(c, c->pos[0])))
    return rc;
  if (c->dot) {
    if ((rc = chm_instance_dot(c->inst, &json)) != CHM_OK) {
      chm_free(json);
      return cli_instance_fail(c, rc, NULL);
    }
    if (c->output != NULL && (c->outf = fopen(c->output, "w")) == NULL) {
      int saved = errno;
      chm_free(json);
      return cli_error(c, CLI_EXIT_ERROR, "check the path and its permissions",
                       "cannot write '%s': %s", c->output, strerror(saved));
    }
    fputs(json, c->outf != NULL ? c->outf : stdout);
    chm_free(json);
    return CLI_EXIT_OK;
  }
  if ((rc = chm_instance_describe(c->inst, &json)) != CHM_OK) {
    chm_free(json);
    return cli_instance_fail(c, rc, NULL);
  }
  if (c->json) {
    cli_put_text(stdout, json);
    chm_free(json);
    return CLI_EXIT_OK;
  }
  root = cli_json_parse(json, err, sizeof err);
  chm_free(json);
  if (!root || root->type != CLI_JOBJECT) {
    cli_json_free(root);
    return cli_error(c, CLI_EXIT_ERROR,
                     "report this as a bug; --json prints the raw answer",
                     "cannot read the description returned by the library%s%s",
                     root ? "" : ": ", root ? "" : err);
  }

  ctx = cli_json_any(root, "instance", "context", "instance_context",
                     (const char *)NULL);
  if (!ctx || ctx->type != CLI_JOBJECT)
    ctx = root;
  print_fields(ctx);
  if (ctx != root)
    print_fields(root);

  wfs = cli_json_get(root, "workflows");
  if (wfs && wfs->type == CLI_JARRAY) {
    /* Master first, then the children in the library's order. */
    for (int pass = 0; pass < 2; pass++)
      for (const cli_jv *wf = wfs->child; wf; wf = wf->next)
        if (is_master(wf, ctx) == (pass == 0))
          print_workflow(wf, pass == 0);
  }
  /* A flat answer (elements at the top level) prints the same way. */
  cli_print_graph(stdout, root, 0);
  cli_print_people(stdout, root, 0);
  cli_json_free(root);
  return CLI_EXIT_OK;
}

/* ===================================================================== */
/* check                                                                  */
/* ===================================================================== */

int cli_cmd_check(cli *c) {
  const char *path = c->pos[0];
  char *report = NULL;
  int rc;

  if ((rc = cli_open_instance(c, path)))
    return rc;
  rc = chm_instance_validate(c->inst, &report);
  if (rc == CHM_INVALID) {
    cli_buf errs = {0};
    cli_violations(&errs, report, chm_instance_errmsg(c->inst));
    cli_report_invalid(c, path, errs.s,
                       "the instance holds a workflow that no longer "
                       "validates; fix the template and instantiate again");
    cli_buf_free(&errs);
    if (c->json && report)
      cli_put_text(stdout, report);
    chm_free(report);
    return c->status;
  }
  if (rc != CHM_OK) {
    chm_free(report);
    return cli_instance_fail(c, rc, NULL);
  }
  if (c->json) {
    cli_put_text(stdout, report ? report : "{\"ok\":true}");
  } else {
    cli_jv *r = report ? cli_json_parse(report, NULL, 0) : NULL;
    const cli_jv *wfs = cli_json_get(r, "workflows");
    printf("%s: ok", path);
    if (wfs && wfs->type == CLI_JARRAY && wfs->n > 0) {
      cli_buf cell = {0};
      printf(" (%zu workflow%s:", wfs->n, wfs->n == 1 ? "" : "s");
      for (const cli_jv *w = wfs->child; w; w = w->next)
        printf("%s %s", w == wfs->child ? "" : ",", cli_cell(&cell, w));
      putchar(')');
      cli_buf_free(&cell);
    }
    putchar('\n');
    cli_json_free(r);
  }
  chm_free(report);
  return CLI_EXIT_OK;
}
