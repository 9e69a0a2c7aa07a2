/*
** cmd_token.c — the token commands of the CLI: genesis, checkout,
** heartbeat, submit, fail, pause, resume, clarify, sweep, run (moving
** tokens), token, queues, tokens, verify (reading them) and memory. Each
** opens the instance store named by its first argument and makes one call
** of the token API in chameleon.h; every command is one transaction in
** the library. Values given as KEY=VALUE are JSON when they parse, else
** text. The engine's clock comes from --now / $CHAMELEON_NOW (args.c).
*/
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* ===================================================================== */
/* Helpers                                                                */
/* ===================================================================== */

/* Report a failed token call: cli_instance_fail with `hint`, or, when the
** command gives none, advice by status that names the instance: where to
** look up what was not found or not allowed, and how to read the token's
** state; for CHM_INVALID (bad values from the command line, never a file)
** a pointer to the command's help instead of the default advice about
** files. */
static int fail(cli *c, int rc, const char *hint) {
  const char *path = c->npos > 0 ? c->pos[0] : "INSTANCE";
  const char *msg = c->inst ? chm_instance_errmsg(c->inst) : "";
  int memory = strcmp(c->cmd->name, "memory") == 0;
  cli_buf h = {0};
  int code;
  if (!hint) {
    switch (rc) {
    case CHM_INVALID:
      cli_buf_printf(&h,
                     "check the values given; 'chameleon %s --help' "
                     "describes them",
                     c->cmd->name);
      break;
    case CHM_NOTFOUND:
      if (memory)
        cli_buf_printf(&h,
                       "'chameleon describe %s' lists the roles and actors; "
                       "memory ids are in Local_Role_Attributes.memory_id",
                       path);
      else
        cli_buf_printf(&h,
                       "'chameleon tokens %s' lists the tokens, 'chameleon "
                       "describe %s' the workflows, roles and actors",
                       path, path);
      break;
    case CHM_DENIED:
    case CHM_STATE:
      /* A token that is not in a state to allow this, or not this
      ** actor's (the message names it): how to read it. Else an actor
      ** without the role, or the instance's own state. */
      if (!memory && c->npos >= 2 && strncmp(msg, "token ", 6) == 0)
        cli_buf_printf(&h,
                       "'chameleon token %s %s' shows its status, where it "
                       "waits and who holds it",
                       path, c->pos[1]);
      else if (rc == CHM_DENIED)
        cli_buf_printf(&h,
                       "'chameleon describe %s' lists the actors and the "
                       "roles each is assigned to",
                       path);
      else if (strstr(msg, "is PAUSED"))
        cli_buf_printf(&h, "'chameleon resume %s' lets writes in again", path);
      break;
    default:
      break;
    }
    hint = h.s;
  }
  code = cli_instance_fail(c, rc, hint);
  cli_buf_free(&h);
  return code;
}

/* A required option that is missing: a usage error. */
static int need(cli *c, const char *value, const char *option) {
  if (value)
    return CLI_EXIT_OK;
  return cli_usage_error(c, "missing option %s", option);
}

/* Parse the library's JSON answer; NULL (reported, exit 1) when it does
** not parse, which would be a bug in the library. */
static cli_jv *parse_answer(cli *c, const char *json) {
  char err[128];
  cli_jv *v = cli_json_parse(json, err, sizeof err);
  if (!v)
    cli_error(c, CLI_EXIT_ERROR,
              "report this as a bug; --json prints the raw answer",
              "cannot read the answer of the library: %s", err);
  return v;
}

/* answer(c, rc, json, &v) -> an exit status to return at once, or -1 to
** go on with *v, the parsed answer of the library (caller frees it with
** cli_json_free). Frees json on every path: a failure is reported, and
** with --json the answer is printed as the library gave it. */
static int answer(cli *c, int rc, char *json, cli_jv **v) {
  *v = NULL;
  if (rc != CHM_OK) {
    chm_free(json);
    return fail(c, rc, NULL);
  }
  if (c->json) {
    cli_put_text(stdout, json);
    chm_free(json);
    return CLI_EXIT_OK;
  }
  *v = parse_answer(c, json);
  chm_free(json);
  return *v != NULL ? -1 : c->status;
}

/* Append VALUE as JSON: the value itself when it is JSON text, else the
** text as a JSON string. */
static void add_value(cli_buf *b, const char *value) {
  cli_jv *v = cli_json_parse(value, NULL, 0);
  if (v)
    cli_json_dump(b, v);
  else
    cli_buf_jstr(b, value);
  cli_json_free(v);
}

/* Whether pair i's key (the text before '=') is given again later. */
static int overridden(const cli *c, int i) {
  const char *eq = strchr(c->pairs[i], '=');
  size_t n = (size_t)(eq - c->pairs[i]);
  for (int j = i + 1; j < c->npairs; j++)
    if (strncmp(c->pairs[j], c->pairs[i], n + 1) == 0)
      return 1;
  return 0;
}

/* Whether some pair sets `key`. */
static int pair_sets(const cli *c, const char *key) {
  size_t n = strlen(key);
  for (int i = 0; i < c->npairs; i++)
    if (strncmp(c->pairs[i], key, n) == 0 && c->pairs[i][n] == '=')
      return 1;
  return 0;
}

/* Append the JSON object made of the members of `base` (an object or
** NULL) that no pair sets, then the pairs (the last of equal keys wins). */
static void merge_object(const cli *c, const cli_jv *base, cli_buf *b) {
  int first = 1;
  cli_buf_add(b, "{", 1);
  for (const cli_jv *m = base ? base->child : NULL; m; m = m->next) {
    if (pair_sets(c, m->key))
      continue;
    if (!first)
      cli_buf_add(b, ",", 1);
    first = 0;
    cli_buf_jstr(b, m->key);
    cli_buf_add(b, ":", 1);
    cli_json_dump(b, m);
  }
  for (int i = 0; i < c->npairs; i++) {
    const char *eq = strchr(c->pairs[i], '=');
    if (overridden(c, i))
      continue;
    if (!first)
      cli_buf_add(b, ",", 1);
    first = 0;
    {
      cli_buf key = {0}; /* the text before '=' */
      cli_buf_add(&key, c->pairs[i], (size_t)(eq - c->pairs[i]));
      cli_buf_jstr(b, key.s);
      cli_buf_free(&key);
    }
    cli_buf_add(b, ":", 1);
    add_value(b, eq + 1);
  }
  cli_buf_add(b, "}", 1);
}

/* Parse the JSON object given to `option`; NULL (reported, exit 3) when it
** is not one. */
static cli_jv *parse_object(cli *c, const char *text, const char *option) {
  char err[128];
  cli_jv *v = cli_json_parse(text, err, sizeof err);
  if (!v || v->type != CLI_JOBJECT) {
    cli_error(
        c, CLI_EXIT_INVALID, "give one JSON object, e.g. '{\"amount\": 120}'",
        "%s is not a JSON object%s%s", option, v ? "" : ": ", v ? "" : err);
    cli_json_free(v);
    return NULL;
  }
  return v;
}

/* Print the members of object `obj` as an indented "key  value" list
** under `title`, "(none)" when it is empty. */
static void print_members(const char *title, const cli_jv *obj) {
  size_t w = 0;
  cli_buf b = {0};
  if (!obj || obj->type != CLI_JOBJECT)
    return;
  printf("%s\n", title);
  if (!obj->child)
    puts("  (none)");
  for (const cli_jv *m = obj->child; m; m = m->next)
    if (strlen(m->key) > w)
      w = strlen(m->key);
  for (const cli_jv *m = obj->child; m; m = m->next)
    printf("  %-*s  %s\n", (int)w, m->key, cli_cell(&b, m));
  cli_buf_free(&b);
}

/* Print one "label  value" line when value is not empty. */
static void line(const char *label, const char *value) {
  if (value && *value)
    printf("%-12s %s\n", label, value);
}

/* Print a token as the library describes it (chm_checkout's answer or
** chm_token_get's): the scalar fields first, then its attributes, context
** and memory. */
static void print_token(const cli_jv *t) {
  cli_buf b = {0}, x = {0};
  const cli_jv *lease = cli_json_get(t, "lease");
  const cli_jv *v;

  line("token", cli_cell(&b, cli_json_get(t, "uow_id")));
  cli_cell(&b, cli_json_get(t, "status"));
  if (*cli_cell(&x, cli_json_get(t, "paused_from_status")))
    cli_buf_printf(&b, " (paused from %s)", x.s);
  line("status", b.s);
  line("version", cli_cell(&b, cli_json_get(t, "version")));
  line("workflow", cli_cell(&b, cli_json_get(t, "workflow")));
  line("interaction", cli_cell(&b, cli_json_get(t, "interaction")));
  line("role", cli_cell(&b, cli_json_get(t, "role")));
  if (lease && lease->type == CLI_JOBJECT) {
    cli_cell(&b, cli_json_get(lease, "holder"));
    if (*cli_time(&x, cli_json_get(lease, "expires_at")))
      cli_buf_printf(&b, " until %s", x.s);
    else
      cli_buf_puts(&b, " (no expiry)");
    line("lease", b.s);
  } else if ((v = cli_json_get(t, "lease_expires_at")) != NULL) {
    b.len = 0;
    if (v->type == CLI_JNUMBER)
      cli_buf_printf(&b, "until %s", cli_time(&x, v));
    else
      cli_buf_puts(&b, "no expiry");
    line("lease", b.s);
  }
  line("parent", cli_cell(&b, cli_json_get(t, "parent_id")));
  line("child token", cli_cell(&b, cli_json_get(t, "child_uow_id")));
  line("returns to", cli_cell(&b, cli_json_get(t, "return_uow_id")));
  if ((v = cli_json_get(t, "child_count")) && v->type == CLI_JNUMBER &&
      strcmp(v->text, "0") != 0) {
    cli_cell(&b, v);
    cli_buf_printf(&b, " (%s finished)",
                   cli_cell(&x, cli_json_get(t, "finished_child_count")));
    line("children", b.s);
  }
  if ((v = cli_json_get(t, "checkout_count"))) {
    cli_cell(&b, v);
    if (*cli_cell(&x, cli_json_get(t, "max_interactions")))
      cli_buf_printf(&b, " of %s", x.s);
    line("checkouts", b.s);
  }
  line("failure", cli_cell(&b, cli_json_get(t, "failure_reason")));
  line("entered", cli_time(&b, cli_json_get(t, "entered_at")));
  print_members("attributes", cli_json_get(t, "attributes"));
  print_members("context", cli_json_get(t, "context"));
  print_members("memory", cli_json_get(t, "memory"));
  if ((v = cli_json_get(t, "rejections")) && v->type == CLI_JARRAY &&
      v->n > 0) {
    puts("rejections");
    for (const cli_jv *r = v->child; r; r = r->next)
      printf("  %s\n", cli_cell(&b, r));
  }
  cli_buf_free(&b);
  cli_buf_free(&x);
}

/* A column of a row table: header, JSON key, whether it is a time. */
typedef struct col {
  const char *header;
  const char *key;
  int time;
} col;

/* Print the objects of array `rows` as an aligned table. */
static void print_rows(const cli_jv *rows, const col *cols, int ncol) {
  const char *heads[10] = {0}, *cells[10] = {0};
  cli_buf b[10];
  cli_table t;
  if (ncol > 10)
    return;
  memset(b, 0, sizeof b);
  for (int j = 0; j < ncol; j++)
    heads[j] = cols[j].header;
  cli_table_init(&t, ncol, heads);
  for (const cli_jv *r = rows->child; r; r = r->next) {
    for (int j = 0; j < ncol; j++) {
      const cli_jv *v = cli_json_get(r, cols[j].key);
      cells[j] = cols[j].time ? cli_time(&b[j], v) : cli_cell(&b[j], v);
      if (!*cells[j])
        cells[j] = "-";
    }
    cli_table_add(&t, cells);
  }
  cli_table_print(&t, stdout, 0);
  cli_table_free(&t);
  for (int j = 0; j < ncol; j++)
    cli_buf_free(&b[j]);
}

/* After an operation on token `uow`: with --json print the token as the
** library now describes it, else one line "token ID: STATUS in 'X'"
** followed by `extra` (may be NULL). */
static int report_token(cli *c, const char *uow, const char *extra) {
  char *json = NULL;
  cli_jv *t;
  cli_buf b = {0};
  int rc = chm_token_get(c->inst, uow, &json);
  if ((rc = answer(c, rc, json, &t)) >= 0)
    return rc;
  printf("token %s: %s", uow, cli_cell(&b, cli_json_get(t, "status")));
  printf(" in '%s'", cli_cell(&b, cli_json_get(t, "interaction")));
  if (extra)
    printf(" %s", extra);
  putchar('\n');
  cli_buf_free(&b);
  cli_json_free(t);
  return CLI_EXIT_OK;
}

/* ===================================================================== */
/* Moving tokens                                                          */
/* ===================================================================== */

int cli_cmd_genesis(cli *c) {
  cli_buf attrs = {0};
  const char *text = c->attrs;
  char *id = NULL;
  int rc;

  if (c->npairs > 0) {
    cli_jv *base = NULL;
    if (c->attrs && !(base = parse_object(c, c->attrs, "--attrs")))
      return c->status;
    merge_object(c, base, &attrs);
    cli_json_free(base);
    text = attrs.s;
  }
  if ((rc = cli_open_instance(c, c->pos[0]))) {
    cli_buf_free(&attrs);
    return rc;
  }
  rc = chm_genesis(c->inst, c->workflow, text, c->actor, &id);
  cli_buf_free(&attrs);
  if (rc != CHM_OK) {
    chm_free(id);
    return fail(c, rc, NULL);
  }
  if (c->json) {
    cli_buf b = {0};
    cli_buf_puts(&b, "{\"uow_id\":");
    cli_buf_jstr(&b, id);
    cli_buf_puts(&b, "}");
    cli_put_text(stdout, b.s);
    cli_buf_free(&b);
  } else {
    puts(id);
  }
  chm_free(id);
  return CLI_EXIT_OK;
}

/* Set the lease length of the open handle from --lease. */
static int apply_lease(cli *c) {
  int rc;
  if (c->lease_ms <= 0)
    return CLI_EXIT_OK;
  rc = chm_set_lease_ms(c->inst, (int64_t)c->lease_ms);
  return rc == CHM_OK ? CLI_EXIT_OK : fail(c, rc, NULL);
}

int cli_cmd_checkout(cli *c) {
  char *json = NULL;
  cli_jv *t;
  int rc;

  if ((rc = need(c, c->actor, "--actor A")) ||
      (rc = need(c, c->role, "--role R")))
    return rc;
  if ((rc = cli_open_instance(c, c->pos[0])) || (rc = apply_lease(c)))
    return rc;
  rc = chm_checkout(c->inst, c->actor, c->role, c->interaction, &json);
  if (rc != CHM_OK) {
    char hint[1200];
    chm_free(json);
    /* No work (rather than no such actor or role): where work waits. */
    snprintf(hint, sizeof hint, "'chameleon queues %s' shows what waits where",
             c->pos[0]);
    return fail(c, rc,
                rc == CHM_NOTFOUND &&
                        strncmp(chm_instance_errmsg(c->inst), "no work", 7) == 0
                    ? hint
                    : NULL);
  }
  if ((rc = answer(c, rc, json, &t)) >= 0)
    return rc;
  print_token(t);
  cli_json_free(t);
  return CLI_EXIT_OK;
}

int cli_cmd_heartbeat(cli *c) {
  int rc;
  if ((rc = need(c, c->actor, "--actor A")))
    return rc;
  if ((rc = cli_open_instance(c, c->pos[0])) || (rc = apply_lease(c)))
    return rc;
  if ((rc = chm_heartbeat(c->inst, c->pos[1], c->actor)) != CHM_OK)
    return fail(c, rc, NULL);
  return report_token(c, c->pos[1], "(lease extended)");
}

int cli_cmd_submit(cli *c) {
  cli_buf changes = {0};
  const char *text = c->changes;
  char *json = NULL;
  cli_jv *r;
  int rc;

  if ((rc = need(c, c->actor, "--actor A")) ||
      (rc = need(c, c->version ? "" : NULL, "--version N")))
    return rc;
  if (c->npairs > 0 || c->reasoning) {
    /* Rebuild the changes: --changes' members, "set" merged with the
    ** --set pairs, "reasoning" replaced by --reasoning. */
    cli_jv *base = NULL;
    const cli_jv *set;
    int first = 1;
    if (c->changes && !(base = parse_object(c, c->changes, "--changes")))
      return c->status;
    set = cli_json_get(base, "set");
    if (set && set->type != CLI_JOBJECT && c->npairs > 0) {
      cli_json_free(base);
      return cli_error(c, CLI_EXIT_INVALID, NULL,
                       "--changes has a \"set\" that is not an object; "
                       "cannot add the --set values to it");
    }
    cli_buf_add(&changes, "{", 1);
    for (const cli_jv *m = base ? base->child : NULL; m; m = m->next) {
      if ((c->npairs > 0 && strcmp(m->key, "set") == 0) ||
          (c->reasoning && strcmp(m->key, "reasoning") == 0))
        continue;
      cli_buf_jstr(&changes, m->key);
      cli_buf_add(&changes, ":", 1);
      cli_json_dump(&changes, m);
      cli_buf_add(&changes, ",", 1);
      first = 0;
    }
    if (c->npairs > 0) {
      cli_buf_puts(&changes, "\"set\":");
      merge_object(c, set, &changes);
      first = 0;
    } else if (!first) {
      changes.s[--changes.len] = 0; /* the trailing comma */
    }
    if (c->reasoning) {
      if (!first)
        cli_buf_add(&changes, ",", 1);
      cli_buf_puts(&changes, "\"reasoning\":");
      cli_buf_jstr(&changes, c->reasoning);
    }
    cli_buf_add(&changes, "}", 1);
    cli_json_free(base);
    text = changes.s;
  }
  if ((rc = cli_open_instance(c, c->pos[0]))) {
    cli_buf_free(&changes);
    return rc;
  }
  rc = chm_submit(c->inst, c->pos[1], c->actor, c->version, text, &json);
  cli_buf_free(&changes);
  if (rc != CHM_OK) {
    chm_free(json);
    if (rc == CHM_CONFLICT) {
      cli_buf h = {0};
      cli_buf_printf(&h,
                     "read the token again ('chameleon token %s %s') and "
                     "submit its current version",
                     c->pos[0], c->pos[1]);
      rc = fail(c, rc, h.s);
      cli_buf_free(&h);
      return rc;
    }
    return fail(c, rc, NULL);
  }
  if (c->json) {
    cli_put_text(stdout, json ? json : "null");
    chm_free(json);
    return CLI_EXIT_OK;
  }
  r = json ? parse_answer(c, json) : NULL;
  chm_free(json);
  if (r) {
    cli_buf b = {0};
    const cli_jv *kids = cli_json_get(r, "children");
    printf("token %s: %s", c->pos[1], cli_cell(&b, cli_json_get(r, "status")));
    printf(" in '%s'", cli_cell(&b, cli_json_get(r, "interaction")));
    printf(" (version %s)\n", cli_cell(&b, cli_json_get(r, "version")));
    if (*cli_cell(&b, cli_json_get(r, "failure_reason")))
      printf("failure: %s\n", b.s);
    if (kids && kids->type == CLI_JARRAY)
      for (const cli_jv *k = kids->child; k; k = k->next)
        printf("child %s\n", cli_cell(&b, k));
    cli_buf_free(&b);
    cli_json_free(r);
  }
  return c->status;
}

int cli_cmd_fail(cli *c) {
  int rc;
  if ((rc = need(c, c->actor, "--actor A")))
    return rc;
  if ((rc = cli_open_instance(c, c->pos[0])))
    return rc;
  if ((rc = chm_fail(c->inst, c->pos[1], c->actor, c->reason)) != CHM_OK)
    return fail(c, rc, NULL);
  return report_token(c, c->pos[1], NULL);
}

/* pause / resume: a token (UOW given) or the whole instance. */
static int kill_switch(cli *c, int pause) {
  int rc;
  if (c->npos < 2 && c->actor)
    return cli_usage_error(c, "--actor applies to a token: give its UOW");
  if ((rc = cli_open_instance(c, c->pos[0])))
    return rc;
  if (c->npos >= 2) {
    rc = pause ? chm_pause(c->inst, c->pos[1], c->actor)
               : chm_resume(c->inst, c->pos[1], c->actor);
    if (rc != CHM_OK)
      return fail(c, rc, NULL);
    return report_token(c, c->pos[1], NULL);
  }
  rc = pause ? chm_instance_pause(c->inst) : chm_instance_resume(c->inst);
  if (rc != CHM_OK)
    return fail(c, rc, NULL);
  if (c->json) {
    cli_buf b = {0};
    cli_buf_puts(&b, "{\"instance\":");
    cli_buf_jstr(&b, c->pos[0]);
    cli_buf_printf(&b, ",\"status\":\"%s\"}", pause ? "PAUSED" : "ACTIVE");
    cli_put_text(stdout, b.s);
    cli_buf_free(&b);
  } else {
    printf("instance %s: %s\n", c->pos[0], pause ? "PAUSED" : "ACTIVE");
  }
  return CLI_EXIT_OK;
}

int cli_cmd_pause(cli *c) { return kill_switch(c, 1); }
int cli_cmd_resume(cli *c) { return kill_switch(c, 0); }

int cli_cmd_clarify(cli *c) {
  int rc;
  if ((rc = need(c, c->text, "--text TEXT")))
    return rc;
  if ((rc = cli_open_instance(c, c->pos[0])))
    return rc;
  if ((rc = chm_clarify(c->inst, c->pos[1], c->actor, c->text)) != CHM_OK)
    return fail(c, rc, NULL);
  return report_token(c, c->pos[1], "(clarification stored)");
}

int cli_cmd_sweep(cli *c) {
  char *json = NULL;
  cli_jv *r;
  cli_buf b = {0};
  int rc;
  if ((rc = cli_open_instance(c, c->pos[0])))
    return rc;
  rc = chm_sweep(c->inst, &json);
  if ((rc = answer(c, rc, json, &r)) >= 0)
    return rc;
  printf("zombies  %s\n", cli_cell(&b, cli_json_get(r, "zombies")));
  printf("stale    %s\n", cli_cell(&b, cli_json_get(r, "stale")));
  for (int k = 0; k < 2; k++) {
    const cli_jv *ids = cli_json_get(r, k ? "stale_ids" : "zombie_ids");
    if (ids && ids->type == CLI_JARRAY)
      for (const cli_jv *e = ids->child; e; e = e->next)
        printf("%s %s\n", k ? "stale  " : "zombie ", cli_cell(&b, e));
  }
  cli_buf_free(&b);
  cli_json_free(r);
  return CLI_EXIT_OK;
}

int cli_cmd_run(cli *c) {
  static const char *const keys[] = {"steps", "moves", "failed", "commits"};
  chm_run_opts opts;
  char *json = NULL;
  cli_jv *r;
  cli_buf b = {0};
  int rc;
  memset(&opts, 0, sizeof opts);
  opts.batch = c->batch;
  opts.max_steps = c->max_steps;
  if ((rc = cli_open_instance(c, c->pos[0])))
    return rc;
  rc = chm_run(c->inst, &opts, &json);
  if ((rc = answer(c, rc, json, &r)) >= 0)
    return rc;
  for (int k = 0; k < 4; k++)
    printf("%-8s %s\n", keys[k], cli_cell(&b, cli_json_get(r, keys[k])));
  cli_buf_free(&b);
  cli_json_free(r);
  return CLI_EXIT_OK;
}

/* ===================================================================== */
/* Reading tokens                                                         */
/* ===================================================================== */

static const col history_cols[] = {
    {"LOG", "log_id", 0},       {"TIME", "timestamp", 1},
    {"EVENT", "event", 0},      {"FROM", "from_status", 0},
    {"TO", "to_status", 0},     {"ACTOR", "actor", 0},
    {"ROLE", "role", 0},        {"INTERACTION", "interaction", 0},
    {"DECISION", "decision", 0}};

static const col attribute_cols[] = {{"KEY", "key", 0},
                                     {"VERSION", "version", 0},
                                     {"VALUE", "value", 0},
                                     {"ACTOR", "actor", 0},
                                     {"REASONING", "reasoning", 0}};

#define NCOL(a) ((int)(sizeof(a) / sizeof(a)[0]))

int cli_cmd_token(cli *c) {
  const char *uow = c->pos[1];
  char *tok = NULL, *hist = NULL, *attrs = NULL;
  int rc;

  if ((rc = cli_open_instance(c, c->pos[0])))
    return rc;
  if ((rc = chm_token_get(c->inst, uow, &tok)) != CHM_OK ||
      (c->history && (rc = chm_token_history(c->inst, uow, &hist))) ||
      (c->attributes && (rc = chm_token_attributes(c->inst, uow, &attrs)))) {
    chm_free(tok), chm_free(hist), chm_free(attrs);
    return fail(c, rc, NULL);
  }
  if (c->json) {
    /* The token object, with "history" and "attribute_versions" added. */
    cli_buf b = {0};
    cli_buf_puts(&b, tok);
    while (b.len && b.s[b.len - 1] != '}')
      b.s[--b.len] = 0;
    if (b.len)
      b.s[--b.len] = 0;
    if (hist)
      cli_buf_printf(&b, ",\"history\":%s", hist);
    if (attrs)
      cli_buf_printf(&b, ",\"attribute_versions\":%s", attrs);
    cli_buf_puts(&b, "}");
    cli_put_text(stdout, b.s);
    cli_buf_free(&b);
  } else {
    cli_jv *t = parse_answer(c, tok);
    cli_jv *h = hist ? parse_answer(c, hist) : NULL;
    cli_jv *a = attrs ? parse_answer(c, attrs) : NULL;
    if (t)
      print_token(t);
    if (h) {
      printf("\nhistory (%zu)\n", h->n);
      print_rows(h, history_cols, NCOL(history_cols));
    }
    if (a) {
      printf("\nattribute versions (%zu)\n", a->n);
      print_rows(a, attribute_cols, NCOL(attribute_cols));
    }
    cli_json_free(t), cli_json_free(h), cli_json_free(a);
  }
  chm_free(tok), chm_free(hist), chm_free(attrs);
  return c->status;
}

int cli_cmd_queues(cli *c) {
  char *json = NULL;
  cli_jv *rows;
  cli_table t;
  static const char *const heads[] = {"WORKFLOW", "INTERACTION", "CONSUMERS",
                                      "TOTAL", "COUNTS"};
  int rc;

  if ((rc = cli_open_instance(c, c->pos[0])))
    return rc;
  rc = chm_queues(c->inst, &json);
  if ((rc = answer(c, rc, json, &rows)) >= 0)
    return rc;
  cli_table_init(&t, 5, heads);
  for (const cli_jv *q = rows->child; q; q = q->next) {
    cli_buf b[5] = {{0}};
    const cli_jv *cons = cli_json_get(q, "consumers");
    const cli_jv *counts = cli_json_get(q, "counts");
    const char *cells[5];
    cells[0] = cli_cell(&b[0], cli_json_get(q, "workflow"));
    cells[1] = cli_cell(&b[1], cli_json_get(q, "interaction"));
    for (const cli_jv *e = cons ? cons->child : NULL; e; e = e->next) {
      cli_buf x = {0};
      cli_buf_printf(&b[2], "%s%s", e == cons->child ? "" : ", ",
                     cli_cell(&x, e));
      cli_buf_free(&x);
    }
    cells[2] = b[2].s ? b[2].s : "-";
    cells[3] = cli_cell(&b[3], cli_json_get(q, "total"));
    for (const cli_jv *e = counts ? counts->child : NULL; e; e = e->next) {
      cli_buf x = {0};
      cli_buf_printf(&b[4], "%s%s=%s", e == counts->child ? "" : " ", e->key,
                     cli_cell(&x, e));
      cli_buf_free(&x);
    }
    cells[4] = b[4].s ? b[4].s : "-";
    cli_table_add(&t, cells);
    for (int j = 0; j < 5; j++)
      cli_buf_free(&b[j]);
  }
  cli_table_print(&t, stdout, 0);
  cli_table_free(&t);
  cli_json_free(rows);
  return CLI_EXIT_OK;
}

static const col token_cols[] = {
    {"TOKEN", "uow_id", 0},      {"STATUS", "status", 0},
    {"WORKFLOW", "workflow", 0}, {"INTERACTION", "interaction", 0},
    {"VERSION", "version", 0},   {"PARENT", "parent_id", 0},
    {"ENTERED", "entered_at", 1}};

int cli_cmd_tokens(cli *c) {
  char *json = NULL;
  cli_jv *rows;
  int rc;
  if ((rc = cli_open_instance(c, c->pos[0])))
    return rc;
  rc = chm_tokens(c->inst, c->status_arg, &json);
  if ((rc = answer(c, rc, json, &rows)) >= 0)
    return rc;
  print_rows(rows, token_cols, NCOL(token_cols));
  cli_json_free(rows);
  return CLI_EXIT_OK;
}

int cli_cmd_verify(cli *c) {
  char *json = NULL;
  int rc;
  if ((rc = cli_open_instance(c, c->pos[0])))
    return rc;
  rc = chm_verify(c->inst, &json);
  if (c->json && json)
    cli_put_text(stdout, json);
  if (rc != CHM_OK) {
    chm_free(json);
    return fail(
        c, rc,
        rc == CHM_CORRUPT
            ? "the log was changed outside the engine; restore the store "
              "from a backup and do not write to it"
            : NULL);
  }
  if (!c->json) {
    cli_jv *r = parse_answer(c, json);
    cli_buf b = {0};
    if (r)
      printf("%s: ok (%s log rows verified)\n", c->pos[0],
             cli_cell(&b, cli_json_get(r, "rows")));
    cli_buf_free(&b);
    cli_json_free(r);
  }
  chm_free(json);
  return c->status;
}

/* ===================================================================== */
/* Memory                                                                 */
/* ===================================================================== */

int cli_cmd_memory(cli *c) {
  const char *action = c->npos > 1 ? c->pos[1] : NULL;
  int rc, nargs = c->npos - 2;
  cli_buf out = {0};

  if (!action)
    return cli_usage_error(c, "missing action: set, toxic or decay");
  if (strcmp(action, "set") == 0) {
    if (nargs != 3)
      return cli_usage_error(c, "memory set takes ROLE KEY VALUE");
    if (!*c->pos[3])
      return cli_error(c, CLI_EXIT_INVALID,
                       "give a non-empty KEY, e.g. 'memory set INSTANCE "
                       "ROLE threshold 500'",
                       "the KEY of memory set is empty (role '%s')", c->pos[2]);
  } else if (strcmp(action, "toxic") == 0) {
    if (nargs != 1)
      return cli_usage_error(c, "memory toxic takes one memory ID");
  } else if (strcmp(action, "decay") == 0) {
    char *end;
    long days;
    if (nargs != 1)
      return cli_usage_error(c, "memory decay takes a number of DAYS");
    days = strtol(c->pos[2], &end, 10);
    if (end == c->pos[2] || *end || days < 0 || days > 1000000)
      return cli_usage_error(c, "DAYS must be a non-negative integer, not '%s'",
                             c->pos[2]);
  } else {
    return cli_usage_error(c, "unknown memory action '%s' (set, toxic, decay)",
                           action);
  }
  if (c->actor && strcmp(action, "set") != 0)
    return cli_usage_error(c, "--actor applies to 'memory set' only");
  if ((rc = cli_open_instance(c, c->pos[0])))
    return rc;

  if (strcmp(action, "set") == 0) {
    cli_buf value = {0};
    add_value(&value, c->pos[4]);
    rc = chm_memory_set(c->inst, c->pos[2], c->actor, c->pos[3], value.s);
    cli_buf_free(&value);
    if (rc != CHM_OK)
      return fail(c, rc, NULL);
    if (c->actor)
      cli_buf_printf(&out, "memory %s/%s set in the playbook of '%s'",
                     c->pos[2], c->pos[3], c->actor);
    else
      cli_buf_printf(&out, "memory %s/%s set in the global blueprint",
                     c->pos[2], c->pos[3]);
    if (c->json) {
      out.len = 0;
      cli_buf_puts(&out, "{\"ok\":true}");
    }
  } else if (strcmp(action, "toxic") == 0) {
    if ((rc = chm_memory_mark_toxic(c->inst, c->pos[2])) != CHM_OK)
      return fail(c, rc, NULL);
    if (c->json)
      cli_buf_puts(&out, "{\"ok\":true}");
    else
      cli_buf_printf(&out, "memory %s marked toxic", c->pos[2]);
  } else {
    int removed = 0;
    rc = chm_memory_decay(c->inst, atoi(c->pos[2]), &removed);
    if (rc != CHM_OK)
      return fail(c, rc, NULL);
    if (c->json)
      cli_buf_printf(&out, "{\"removed\":%d}", removed);
    else
      cli_buf_printf(&out, "removed %d memory row%s", removed,
                     removed == 1 ? "" : "s");
  }
  cli_put_text(stdout, out.s);
  cli_buf_free(&out);
  return CLI_EXIT_OK;
}
