/*
** cmd_meta.c — the template commands of the CLI: init, import, validate,
** list, show, export and instantiate. Each opens the meta-store through
** cli_open_meta, calls one chm_meta_* function per item and prints the
** JSON answer as it is (--json) or as text. Resources live in the run
** context, so every early return is clean (main.c releases them).
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* ===================================================================== */
/* Helpers                                                                */
/* ===================================================================== */

/* Parse a library answer; on a malformed answer report it and return NULL
** (a library bug, but the CLI must not crash on it). */
static cli_jv *parse_answer(cli *c, const char *json, const char *what) {
  char err[128];
  cli_jv *v = cli_json_parse(json, err, sizeof err);
  if (!v)
    cli_error(c, CLI_EXIT_ERROR,
              "report this as a bug; --json prints the raw answer",
              "cannot read the %s returned by the library: %s", what, err);
  return v;
}

/* Write text (plus a final newline) to -o FILE or stdout. */
static int write_output(cli *c, const char *text) {
  FILE *f = stdout;
  if (c->output) {
    if (!(c->outf = fopen(c->output, "w"))) {
      return cli_error(c, CLI_EXIT_ERROR, "check the path and its permissions",
                       "cannot write '%s': %s", c->output, strerror(errno));
    }
    f = c->outf;
  }
  if (cli_put_text(f, text) != 0 || fflush(f) != 0)
    return cli_error(c, CLI_EXIT_ERROR, NULL, "cannot write '%s': %s",
                     c->output ? c->output : "standard output",
                     strerror(errno));
  return CLI_EXIT_OK;
}

/* Report a failed call on a named workflow, with a hint that names the
** meta-store when the workflow or version is not there. */
static int workflow_fail(cli *c, int rc, const char *other_hint) {
  cli_buf hint = {0};
  int code;
  if (rc == CHM_NOTFOUND)
    cli_buf_printf(&hint,
                   "'chameleon list --meta %s' shows the stored workflows "
                   "and their versions",
                   c->meta);
  code = cli_meta_fail(c, rc, rc == CHM_NOTFOUND ? hint.s : other_hint);
  cli_buf_free(&hint);
  return code;
}

/* ===================================================================== */
/* init                                                                   */
/* ===================================================================== */

int cli_cmd_init(cli *c) {
  int existed = access(c->meta, F_OK) == 0;
  int rc = cli_open_meta(c, 1);
  if (rc)
    return rc;
  if (c->json) {
    cli_buf b = {0};
    cli_buf_puts(&b, "{\"meta\":");
    cli_buf_jstr(&b, c->meta);
    cli_buf_printf(&b, ",\"created\":%s}", existed ? "false" : "true");
    cli_put_text(stdout, b.s);
    cli_buf_free(&b);
  } else if (existed) {
    printf("meta-store %s is up to date\n", c->meta);
  } else {
    printf("created meta-store %s\n", c->meta);
  }
  return CLI_EXIT_OK;
}

/* ===================================================================== */
/* import and validate                                                    */
/* ===================================================================== */

/* One line for an import report: "imported NAME version N". */
static void print_import(const char *file, const char *report) {
  cli_jv *r = cli_json_parse(report, NULL, 0);
  const cli_jv *status = cli_json_get(r, "status");
  cli_buf name = {0}, version = {0};
  const char *verb = "imported";
  cli_cell(&name, cli_json_get(r, "name"));
  cli_cell(&version, cli_json_get(r, "version"));
  if (status && status->type == CLI_JSTRING &&
      strcmp(status->text, "created") != 0)
    verb = status->text; /* "unchanged" */
  const cli_jv *rebound = cli_json_get(r, "rebound");
  if (r && *name.s && rebound && rebound->type == CLI_JSTRING)
    printf("%s %s version %s (%s)\n", verb, name.s,
           *version.s ? version.s : "?", rebound->text);
  else if (r && *name.s)
    printf("%s %s version %s\n", verb, name.s, *version.s ? version.s : "?");
  else
    printf("%s %s\n", verb, file);
  cli_buf_free(&name);
  cli_buf_free(&version);
  cli_json_free(r);
}

/* Append one element of the --json array of import/validate. */
static void json_item(cli_buf *out, const char *file, int rc,
                      const char *report, const char *msg) {
  cli_buf_puts(out, out->len > 2 ? ",\n{\"file\":" : "{\"file\":");
  cli_buf_jstr(out, file);
  cli_buf_printf(out, ",\"ok\":%s", rc == CHM_OK ? "true" : "false");
  if (rc != CHM_OK) {
    cli_buf_puts(out, ",\"code\":");
    cli_buf_jstr(out, chm_errname(rc));
    cli_buf_puts(out, ",\"message\":");
    cli_buf_jstr(out, msg);
  }
  if (report && *report) {
    cli_jv *r = cli_json_parse(report, NULL, 0);
    cli_buf_puts(out, ",\"report\":");
    if (r)
      cli_json_dump(out, r); /* compact: one line per file */
    else
      cli_buf_puts(out, report);
    cli_json_free(r);
  }
  cli_buf_add(out, "}", 1);
}

/* Report the outcome of one file: a line on stdout, or the error on
** stderr; with --json append an element to `out` instead of the line. */
static void file_outcome(cli *c, cli_buf *out, const char *file, int rc,
                         const char *report, const char *msg, int writing) {
  cli_buf errs = {0};
  if (rc == CHM_INVALID) {
    cli_violations(&errs, report, msg);
    cli_report_invalid(c, file, errs.s,
                       writing ? "fix the lines above and import again; "
                                 "nothing was stored for this file"
                               : "fix the lines above and validate again");
    msg = errs.s;
  } else if (rc != CHM_OK) {
    cli_meta_fail(c, rc, NULL);
  } else if (!c->json) {
    if (writing)
      print_import(file, report);
    else
      printf("%s: ok\n", file);
  }
  if (c->json)
    json_item(out, file, rc, report, msg);
  cli_buf_free(&errs);
}

/* A file whose import was refused as invalid, kept for another try. */
typedef struct deferred {
  const char *file; /* path from argv */
  char *msg;        /* copy of the handle's message */
  char *report;     /* the library's report, freed with chm_free */
} deferred;

int cli_cmd_import(cli *c) {
  deferred *left = calloc((size_t)c->npos, sizeof *left);
  const char **queue = calloc((size_t)c->npos, sizeof *queue);
  cli_buf out = {0};
  int nqueue = c->npos, nleft = 0, rc;

  if (!left || !queue) {
    free(left);
    free(queue);
    return cli_error(c, CLI_EXIT_ERROR, NULL, "out of memory");
  }
  if ((rc = cli_open_meta(c, 0)) != CLI_EXIT_OK) {
    free(left);
    free(queue);
    return rc;
  }
  for (int i = 0; i < nqueue; i++)
    queue[i] = c->pos[i];
  cli_buf_add(&out, "[\n", 2);
  /* Passes: a file refused as invalid is tried again after another file
  ** was stored (it may be the child workflow it refers to), so that
  ** importing a whole directory works in any order. */
  for (;;) {
    int progress = 0;
    nleft = 0;
    for (int i = 0; i < nqueue; i++) {
      char *report = NULL;
      rc = chm_meta_import(c->m, queue[i], &report);
      if (rc == CHM_INVALID) {
        deferred *d = &left[nleft++];
        d->file = queue[i];
        d->msg = strdup(chm_meta_errmsg(c->m));
        d->report = report;
        continue;
      }
      file_outcome(c, &out, queue[i], rc, report, chm_meta_errmsg(c->m), 1);
      chm_free(report);
      progress |= rc == CHM_OK;
    }
    if (nleft == 0 || !progress)
      break;
    for (int i = 0; i < nleft; i++) {
      queue[i] = left[i].file;
      free(left[i].msg);
      chm_free(left[i].report);
    }
    nqueue = nleft;
  }
  for (int i = 0; i < nleft; i++) {
    file_outcome(c, &out, left[i].file, CHM_INVALID, left[i].report,
                 left[i].msg, 1);
    free(left[i].msg);
    chm_free(left[i].report);
  }
  cli_buf_add(&out, out.len > 2 ? "\n]" : "]", out.len > 2 ? 2 : 1);
  if (c->json)
    cli_put_text(stdout, out.s);
  cli_buf_free(&out);
  free(left);
  free(queue);
  return c->status;
}

int cli_cmd_validate(cli *c) {
  cli_buf out = {0};
  int rc, scratch = 0;

  if (access(c->meta, F_OK) == 0) {
    rc = cli_open_meta(c, 0);
  } else {
    scratch = 1;
    /* No meta-store: check the files on their own in a scratch store. */
    const char *meta = c->meta;
    c->meta = ":memory:";
    rc = cli_open_meta(c, 1);
    c->meta = meta;
  }
  if (rc)
    return rc;
  if (scratch) {
    /* Let the files name each other (a gateway and its child workflow):
    ** store what is valid in the scratch store, again while that helps. */
    int stored = 1;
    while (stored) {
      stored = 0;
      for (int i = 0; i < c->npos; i++) {
        char *r = NULL;
        if (chm_meta_import(c->m, c->pos[i], &r) == CHM_OK && r != NULL &&
            strstr(r, "\"created\"") != NULL)
          stored = 1;
        chm_free(r);
      }
    }
  }
  cli_buf_add(&out, "[\n", 2);
  for (int i = 0; i < c->npos; i++) {
    char *report = NULL;
    rc = chm_meta_validate(c->m, c->pos[i], &report);
    file_outcome(c, &out, c->pos[i], rc, report, chm_meta_errmsg(c->m), 0);
    chm_free(report);
  }
  cli_buf_add(&out, out.len > 2 ? "\n]" : "]", out.len > 2 ? 2 : 1);
  if (c->json)
    cli_put_text(stdout, out.s);
  cli_buf_free(&out);
  return c->status;
}

/* ===================================================================== */
/* list                                                                   */
/* ===================================================================== */

/* The latest version entry of a list item: the one whose version equals
** "latest", else the highest, else the last. */
static const cli_jv *latest_entry(const cli_jv *item) {
  const cli_jv *versions = cli_json_get(item, "versions");
  const cli_jv *latest = cli_json_get(item, "latest");
  const cli_jv *best = NULL;
  double want = -1, top = -1;
  if (latest && latest->type == CLI_JOBJECT)
    return latest;
  if (latest && latest->type == CLI_JNUMBER)
    want = strtod(latest->text, NULL);
  if (!versions || versions->type != CLI_JARRAY)
    return NULL;
  for (const cli_jv *v = versions->child; v; v = v->next) {
    const cli_jv *n = cli_json_get(v, "version");
    double x = n && n->type == CLI_JNUMBER ? strtod(n->text, NULL) : -1;
    if (want >= 0 && x == want)
      return v;
    if (x >= top) {
      top = x;
      best = v;
    }
  }
  return best;
}

int cli_cmd_list(cli *c) {
  static const char *const heads[] = {"NAME", "LATEST", "VERSIONS", "CREATED"};
  char *json = NULL;
  cli_jv *root;
  cli_table t;
  int rc;

  if ((rc = cli_open_meta(c, 0)))
    return rc;
  if ((rc = chm_meta_list(c->m, &json)) != CHM_OK) {
    chm_free(json);
    return cli_meta_fail(c, rc, NULL);
  }
  if (c->json) {
    cli_put_text(stdout, json);
    chm_free(json);
    return CLI_EXIT_OK;
  }
  root = parse_answer(c, json, "workflow list");
  chm_free(json);
  if (!root)
    return c->status;
  if (root->type != CLI_JARRAY || root->n == 0) {
    printf("no workflows in %s (add one with 'chameleon import FILE')\n",
           c->meta);
    cli_json_free(root);
    return CLI_EXIT_OK;
  }
  cli_table_init(&t, 4, heads);
  for (const cli_jv *item = root->child; item; item = item->next) {
    const cli_jv *last = latest_entry(item);
    const cli_jv *versions = cli_json_get(item, "versions");
    const cli_jv *latest = cli_json_get(item, "latest");
    cli_buf b[4] = {{0}};
    const char *cells[4];
    char count[32] = "-";
    cells[0] = cli_cell(
        &b[0], item->type == CLI_JOBJECT ? cli_json_get(item, "name") : item);
    if (latest && latest->type != CLI_JOBJECT)
      cells[1] = cli_cell(&b[1], latest);
    else
      cells[1] = cli_cell(&b[1], cli_json_get(last, "version"));
    if (versions && versions->type == CLI_JARRAY)
      snprintf(count, sizeof count, "%zu", versions->n);
    else if (versions)
      snprintf(count, sizeof count, "%s", cli_cell(&b[2], versions));
    cells[2] = count;
    cells[3] = cli_time(&b[3], last ? cli_json_get(last, "created_at")
                                    : cli_json_get(item, "created_at"));
    cli_table_add(&t, cells);
    for (int j = 0; j < 4; j++)
      cli_buf_free(&b[j]);
  }
  cli_table_print(&t, stdout, 0);
  cli_table_free(&t);
  cli_json_free(root);
  return CLI_EXIT_OK;
}

/* ===================================================================== */
/* show                                                                   */
/* ===================================================================== */

int cli_cmd_show(cli *c) {
  char *json = NULL;
  cli_jv *wf;
  cli_buf b = {0};
  const cli_jv *desc, *max;
  int rc;

  if ((rc = cli_open_meta(c, 0)))
    return rc;
  if ((rc = chm_meta_show(c->m, c->pos[0], c->version, &json)) != CHM_OK) {
    chm_free(json);
    return workflow_fail(c, rc, NULL);
  }
  if (c->json) {
    cli_put_text(stdout, json);
    chm_free(json);
    return CLI_EXIT_OK;
  }
  wf = parse_answer(c, json, "workflow");
  chm_free(json);
  if (!wf)
    return c->status;

  printf("%s", cli_cell(&b, cli_json_get(wf, "name")));
  if (*cli_cell(&b, cli_json_get(wf, "version")))
    printf(" version %s", b.s);
  if (*cli_cell(&b, cli_json_get(wf, "workflow_id")))
    printf("  (workflow id %s)", b.s);
  putchar('\n');
  desc = cli_json_get(wf, "description");
  if (desc && *cli_cell(&b, desc))
    printf("%s\n", b.s);
  max = cli_json_get(wf, "max_interactions");
  if (max && max->type != CLI_JNULL)
    printf("max interactions per token: %s\n", cli_cell(&b, max));
  cli_print_graph(stdout, wf, 0);
  cli_print_people(stdout, wf, 0);
  cli_buf_free(&b);
  cli_json_free(wf);
  return CLI_EXIT_OK;
}

/* ===================================================================== */
/* export                                                                 */
/* ===================================================================== */

int cli_cmd_export(cli *c) {
  char *text = NULL;
  int rc;

  if (c->json && c->dot)
    return cli_usage_error(c, "--json and --dot exclude each other");
  if ((rc = cli_open_meta(c, 0)))
    return rc;
  rc = chm_meta_export(c->m, c->pos[0], c->version,
                       c->dot ? CHM_EXPORT_DOT : CHM_EXPORT_JSON, &text);
  if (rc != CHM_OK) {
    chm_free(text);
    return workflow_fail(c, rc, NULL);
  }
  rc = write_output(c, text);
  chm_free(text);
  return rc;
}

/* ===================================================================== */
/* instantiate                                                            */
/* ===================================================================== */

int cli_cmd_instantiate(cli *c) {
  char *report = NULL;
  cli_jv *r;
  cli_buf b = {0};
  const cli_jv *wfs;
  int rc;

  if (!c->out)
    return cli_usage_error(c, "missing --out PATH (the instance to create)");
  if ((rc = cli_open_meta(c, 0)))
    return rc;
  rc = chm_meta_instantiate(c->m, c->pos[0], c->version, c->out, c->name,
                            &report);
  if (rc != CHM_OK) {
    chm_free(report);
    return workflow_fail(c, rc,
                         rc == CHM_EXISTS
                             ? "instantiate never overwrites: choose another "
                               "--out path or remove the old file"
                             : NULL);
  }
  if (c->json) {
    cli_put_text(stdout, report);
    chm_free(report);
    return CLI_EXIT_OK;
  }
  r = parse_answer(c, report, "instantiation report");
  chm_free(report);
  if (!r)
    return c->status;
  printf("instance   %s\n", cli_cell(&b, cli_json_get(r, "instance_id")));
  printf("path       %s\n",
         *cli_cell(&b, cli_json_get(r, "path")) ? b.s : c->out);
  wfs = cli_json_get(r, "workflows");
  if (wfs && wfs->type == CLI_JARRAY) {
    cli_buf line = {0}, cell = {0};
    for (const cli_jv *w = wfs->child; w; w = w->next) {
      const cli_jv *name = cli_json_get(w, "name");
      if (line.len)
        cli_buf_puts(&line, ", ");
      cli_buf_puts(&line, cli_cell(&cell, name ? name : w));
      if (cli_json_truthy(
              cli_json_any(w, "is_master", "master", (const char *)NULL)))
        cli_buf_puts(&line, " (master)");
    }
    printf("workflows  %s\n", line.s ? line.s : "-");
    cli_buf_free(&line);
    cli_buf_free(&cell);
  }
  cli_buf_free(&b);
  cli_json_free(r);
  return CLI_EXIT_OK;
}
