/*
** tokenops.c — the operations of the token engine: genesis, checkout
** (FIFO, gates, ambiguity lock, recursive gateways), heartbeat, submit
** (attributes, decomposition, routing, Omega finalization, gateway
** return), fail, pause/resume, clarify and the instance-wide kill switch.
** Each public function is one transaction; the chm__op_* functions work
** inside one so the run loop (sweep.c) can batch them. Statuses move only
** through chm__tk_set_status (token.c). Semantics: docs/token-engine.md.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "token_int.h"

static const char *nz(const char *s) { return s != NULL && *s ? s : NULL; }

/* ===================================================================== */
/* Small lookups                                                          */
/* ===================================================================== */

typedef struct wfinfo {
  char id[CHM__ID];
  char name[128];
  int64_t max_interactions; /* CHM__NULL_INT = none */
} wfinfo;

/* wf_lookup(t, spec, w): by name or id; spec NULL = the master. */
static int wf_lookup(chm__tk *t, const char *spec, wfinfo *w) {
  int kind = spec != NULL ? CHM__M_WORKFLOW : CHM__M_MASTER;
  const wfinfo *m = chm__tk_memo_get(t, kind, spec != NULL ? spec : "", NULL);
  sqlite3_stmt *st;
  char *names = NULL;
  int rc;
  if (m != NULL) {
    *w = *m;
    return CHM_OK;
  }
  if ((st = chm__tk_q(t, CHM__Q_WORKFLOW, "s", spec)) == NULL)
    return chm__tk_dbrc(t);
  rc = chm__tk_step(t, CHM__Q_WORKFLOW, st);
  if (rc < 0)
    return chm__tk_dbrc(t);
  if (rc == SQLITE_ROW) {
    memset(w, 0, sizeof *w);
    chm__tk_cpy(w->id, CHM__ID, chm__tk_col(st, 0));
    chm__tk_cpy(w->name, sizeof w->name, chm__tk_col(st, 1));
    w->max_interactions = sqlite3_column_type(st, 2) == SQLITE_NULL
                              ? CHM__NULL_INT
                              : sqlite3_column_int64(st, 2);
    chm__tk_reset(st);
    chm__tk_memo_put(t, kind, spec != NULL ? spec : "", w, sizeof *w);
    return CHM_OK;
  }
  chm__tk_reset(st);
  if (spec == NULL)
    return chm__tk_err(t, CHM_CORRUPT, "instance '%s' has no master workflow",
                       t->instance_name);
  if (chm__tk_one_text(t, CHM__Q_WORKFLOW_NAMES, &names, "") != CHM_OK)
    return chm__tk_dbrc(t);
  rc = chm__tk_err(t, CHM_NOTFOUND,
                   "no workflow '%s' in instance '%s' (it "
                   "has: %s)",
                   spec, t->instance_name, names ? names : "none");
  free(names);
  return rc;
}

/* alpha_of(t, w, r): the workflow's (first) ALPHA role. */
static int alpha_of(chm__tk *t, const wfinfo *w, chm__role *r) {
  const char *m = chm__tk_memo_get(t, CHM__M_ALPHA, w->id, NULL);
  sqlite3_stmt *st;
  char rid[CHM__ID];
  int rc;
  if (m != NULL)
    return chm__tk_role_by_id(t, m, r);
  if ((st = chm__tk_q(t, CHM__Q_ROLE_OF_TYPE, "ss", w->id, "ALPHA")) == NULL)
    return chm__tk_dbrc(t);
  rc = chm__tk_step(t, CHM__Q_ROLE_OF_TYPE, st);
  if (rc < 0)
    return chm__tk_dbrc(t);
  if (rc != SQLITE_ROW) {
    chm__tk_reset(st);
    return chm__tk_err(t, CHM_INVALID,
                       "workflow '%s' has no ALPHA role: "
                       "nothing can start a token in it",
                       w->name);
  }
  chm__tk_cpy(rid, sizeof rid, chm__tk_col(st, 0));
  chm__tk_reset(st);
  chm__tk_memo_put(t, CHM__M_ALPHA, w->id, rid, sizeof rid);
  return chm__tk_role_by_id(t, rid, r);
}

static int inter_name(chm__tk *t, const char *id, char *out, size_t size) {
  return chm__tk_inter_name(t, id, out, size);
}

static int actor_name(chm__tk *t, const char *id, char *out, size_t size) {
  if (id == NULL || *id == '\0') {
    chm__tk_cpy(out, size, "nobody");
    return CHM_OK;
  }
  return chm__tk_name(t, CHM__Q_ACTOR_NAME, id, out, size);
}

static int64_t count_outbound(chm__tk *t, const char *role_id) {
  const int64_t *m = chm__tk_memo_get(t, CHM__M_NOUT, role_id, NULL);
  sqlite3_stmt *st;
  int64_t n = -1;
  if (m != NULL)
    return *m;
  if ((st = chm__tk_q(t, CHM__Q_ROLE_OUTBOUND_COUNT, "s", role_id)) == NULL)
    return -1;
  if (chm__tk_step(t, CHM__Q_ROLE_OUTBOUND_COUNT, st) == SQLITE_ROW)
    n = sqlite3_column_int64(st, 0);
  chm__tk_reset(st);
  if (n >= 0)
    chm__tk_memo_put(t, CHM__M_NOUT, role_id, &n, sizeof n);
  return n;
}

static int consumed_by_omega(chm__tk *t, const char *inter, int *yes) {
  const int *m = chm__tk_memo_get(t, CHM__M_OMEGA, inter, NULL);
  sqlite3_stmt *st;
  int rc;
  *yes = 0;
  if (m != NULL) {
    *yes = *m;
    return CHM_OK;
  }
  if ((st = chm__tk_q(t, CHM__Q_CONSUMED_BY_OMEGA, "s", inter)) == NULL)
    return chm__tk_dbrc(t);
  rc = chm__tk_step(t, CHM__Q_CONSUMED_BY_OMEGA, st);
  if (rc < 0)
    return chm__tk_dbrc(t);
  if (rc == SQLITE_ROW)
    *yes = sqlite3_column_int(st, 0);
  chm__tk_reset(st);
  chm__tk_memo_put(t, CHM__M_OMEGA, inter, yes, sizeof *yes);
  return CHM_OK;
}

/* ===================================================================== */
/* Deciding where a token goes after a role acted (routing)               */
/* ===================================================================== */

typedef struct dest {
  char interaction[CHM__ID]; /* where it goes */
  char name[128];            /* that interaction's name */
  const char *status;        /* the status it takes there */
  char *failure;             /* failure_reason to store, or NULL */
  char *details;             /* log details (JSON object) */
  chm__decision *dec;        /* DIRECTIONAL_FILTER decisions to log */
  int ndec;
} dest;

static void dest_free(dest *d) {
  int i;
  for (i = 0; i < d->ndec; i++)
    chm__decision_free(&d->dec[i]);
  free(d->dec);
  free(d->failure);
  free(d->details);
  memset(d, 0, sizeof *d);
}

/* Logs one guardian decision row (event GUARDIAN) on token uow_id;
** version (unless CHM__NULL_INT) is the token version it was made on. */
static int log_guardian(chm__tk *t, const char *uow_id, const char *actor_id,
                        const char *role_id, const char *inter,
                        const chm__decision *dc, int64_t version) {
  chm__buf b = {0};
  chm__logrow r;
  char *det;
  int rc;
  chm__buf_add(&b, "{\"name\":");
  chm__buf_jstr(&b, dc->name);
  chm__buf_add(&b, ",\"type\":");
  chm__buf_jstr(&b, dc->type);
  chm__buf_add(&b, ",\"reason\":");
  chm__buf_jstr(&b, dc->reason);
  if (version != CHM__NULL_INT)
    chm__buf_addf(&b, ",\"token_version\":%lld", (long long)version);
  chm__buf_add(&b, "}");
  if ((det = chm__buf_take(&b)) == NULL)
    return chm__tk_err(t, CHM_NOMEM, "out of memory");
  memset(&r, 0, sizeof r);
  r.uow_id = uow_id;
  r.actor_id = nz(actor_id);
  r.role_id = role_id;
  r.interaction_id = inter;
  r.event = "GUARDIAN";
  r.decision = dc->decision;
  r.guardian_id = dc->guardian_id != NULL && strlen(dc->guardian_id) == 36
                      ? dc->guardian_id
                      : NULL;
  r.details = det;
  rc = chm__tk_log(t, &r);
  free(det);
  return rc;
}

/* The routing's guardian decisions (DIRECTIONAL_FILTER), each its own
** row, logged before the movement they decided. */
static int log_dest_decisions(chm__tk *t, const char *uow_id,
                              const char *actor_id, const char *role_id,
                              const char *inter, const dest *d) {
  int i, rc = CHM_OK;
  for (i = 0; i < d->ndec && rc == CHM_OK; i++)
    rc = log_guardian(t, uow_id, actor_id, role_id, inter, &d->dec[i],
                      CHM__NULL_INT);
  return rc;
}

/* The status a token takes in `to` after a role of type `by` sent it:
** the Ate or Chronos -> FAILED; an Omega's inbound -> COMPLETED
** (REMEDIATED when sent by an Epsilon); anything else -> PENDING. */
static int target_status(chm__tk *t, const char *workflow_id, const char *to,
                         const char *by, const char **status) {
  char ate[CHM__ID], chronos[CHM__ID];
  int omega;
  if (chm__tk_special(t, workflow_id, "EPSILON", ate) != CHM_OK ||
      chm__tk_special(t, workflow_id, "TAU", chronos) != CHM_OK ||
      consumed_by_omega(t, to, &omega) != CHM_OK)
    return chm__tk_dbrc(t);
  if (strcmp(to, ate) == 0 || strcmp(to, chronos) == 0)
    *status = "FAILED";
  else if (omega)
    *status = strcmp(by, "EPSILON") == 0 ? "REMEDIATED" : "COMPLETED";
  else
    *status = "PENDING";
  return CHM_OK;
}

/* route_why(reason, role): judge.route's reason without its own
** "no route matched for role 'R': " lead, so the failure says it once. */
static const char *route_why(const char *reason, const char *role) {
  static const char lead[] = "no route matched for role '";
  size_t n = sizeof lead - 1, k = strlen(role);
  if (strncmp(reason, lead, n) == 0 && strncmp(reason + n, role, k) == 0 &&
      strncmp(reason + n + k, "': ", 3) == 0)
    return reason + n + k + 3;
  return reason;
}

/* with_errors(t, failure, errors): appends to *failure (malloc'ed,
** replaced) the messages of judge.route's errors (a JSON array of
** {component_id, message}): a token sent FAILED because a routing
** condition errored carries the condition and its error, not only
** "(when: error)". */
static int with_errors(chm__tk *t, char **failure, const char *errors) {
  char *msgs = NULL, *f;
  int rc = chm__tk_one_text(t, CHM__Q_ROUTE_ERRORS, &msgs, "s", errors);
  if (rc != CHM_OK || msgs == NULL || *msgs == '\0') {
    free(msgs);
    return rc;
  }
  f = chm__strdupf("%s; %s", *failure, msgs);
  free(msgs);
  if (f == NULL)
    return chm__tk_err(t, CHM_NOMEM, "out of memory");
  free(*failure);
  *failure = f;
  return CHM_OK;
}

/* decide(t, tok, attrs, wfname, role, d): where tok goes after `role`
** acted on it: its routing (judge.route), or COMPLETED in place for a role
** without outbound components, or FAILED to the Ate when nothing matches.
** tok->interaction_id may be "" for a token not yet placed. */
static int decide(chm__tk *t, const chm__tok *tok, const chm__attrs *attrs,
                  const char *wfname, const chm__role *role, dest *d) {
  chm__buf b = {0};
  chm__route r;
  chm__view v;
  int64_t nout;
  int rc = CHM_OK;
  memset(d, 0, sizeof *d);
  memset(&r, 0, sizeof r);
  if ((nout = count_outbound(t, role->id)) < 0)
    return chm__tk_dbrc(t);
  chm__buf_add(&b, "{\"role\":");
  chm__buf_jstr(&b, role->name);
  if (nout == 0) {
    if (tok->interaction_id[0] == '\0') {
      chm__buf_free(&b);
      return chm__tk_err(t, CHM_INVALID,
                         "role '%s' of workflow '%s' has no "
                         "outbound component to place token "
                         "%s in",
                         role->name, wfname, tok->uow_id);
    }
    chm__tk_cpy(d->interaction, CHM__ID, tok->interaction_id);
    d->status = "COMPLETED";
    chm__buf_add(&b, ",\"reason\":\"the role has no outbound component\"");
  } else {
    v.tok = tok;
    v.workflow = wfname;
    v.attrs = attrs;
    if ((rc = chm__tk_route(t, role->id, &v, &r)) != CHM_OK)
      goto done;
    chm__buf_add(&b, ",\"reason\":");
    chm__buf_jstr(&b, r.reason);
    if (r.component_id != NULL) {
      chm__buf_add(&b, ",\"component_id\":");
      chm__buf_jstr(&b, r.component_id);
    }
    if (r.errors != NULL) {
      chm__buf_add(&b, ",\"errors\":");
      chm__buf_add(&b, r.errors);
    }
    if (r.interaction_id == NULL) {
      if ((rc = chm__tk_special(t, tok->workflow_id, "EPSILON",
                                d->interaction)) != CHM_OK)
        goto done;
      if (d->interaction[0] == '\0')
        chm__tk_cpy(d->interaction, CHM__ID, tok->interaction_id);
      if (d->interaction[0] == '\0') {
        rc = chm__tk_err(t, CHM_INVALID,
                         "no route matched for token %s after "
                         "role '%s' (%s) and workflow '%s' "
                         "has no Ate to send it to",
                         tok->uow_id, role->name, r.reason, wfname);
        goto done;
      }
      d->status = "FAILED";
      d->failure = chm__strdupf("no route matched after role '%s': %s",
                                role->name, route_why(r.reason, role->name));
    } else {
      chm__tk_cpy(d->interaction, CHM__ID, r.interaction_id);
      if ((rc = target_status(t, tok->workflow_id, d->interaction, role->type,
                              &d->status)) != CHM_OK)
        goto done;
    }
  }
  if ((rc = inter_name(t, d->interaction, d->name, sizeof d->name)) != CHM_OK)
    goto done;
  d->dec = r.dec; /* the filters' decisions, logged with the move */
  d->ndec = r.ndec;
  r.dec = NULL;
  r.ndec = 0;
  if (strcmp(d->status, "FAILED") == 0 && d->failure == NULL)
    d->failure = chm__strdupf("sent to '%s' by role '%s'", d->name, role->name);
  if (strcmp(d->status, "FAILED") == 0 && d->failure != NULL &&
      r.errors != NULL && (rc = with_errors(t, &d->failure, r.errors)) != CHM_OK)
    goto done;
  chm__buf_add(&b, "}");
  d->details = chm__buf_take(&b);
  if (d->details == NULL ||
      (strcmp(d->status, "FAILED") == 0 && d->failure == NULL))
    rc = chm__tk_err(t, CHM_NOMEM, "out of memory");
done:
  chm__buf_free(&b);
  chm__route_free(&r);
  if (rc != CHM_OK)
    dest_free(d);
  return rc;
}

/* move_to(t, tok, d, m): tok to d (status, place, failure reason). */
static int move_to(chm__tk *t, chm__tok *tok, const dest *d, chm__move m) {
  int rc = log_dest_decisions(t, tok->uow_id, m.actor_id, m.role_id,
                              tok->interaction_id, d);
  if (rc != CHM_OK)
    return rc;
  m.decision = d->name;
  m.details = d->details;
  m.failure_reason = d->failure;
  return chm__tk_set_status(t, tok, d->status, d->interaction, &m);
}

/* insert_token(t, tok, d, role_id, actor_id, event): create tok (uow_id,
** workflow_id, parent_id, return_uow_id and max_interactions filled) at
** d, keep the parent's counters, and log its creation. Attributes are
** written by the caller afterwards. */
static int insert_token(chm__tk *t, chm__tok *tok, const dest *d,
                        const char *role_id, const char *actor_id,
                        const char *event) {
  int64_t seq = t->last_log_id + 1;
  chm__logrow r;
  int rc;
  if (chm__tk_exec(t, CHM__Q_TOK_INSERT, "ssssssiiisss", tok->uow_id,
                   t->instance_id, tok->workflow_id, nz(tok->parent_id),
                   d->interaction, d->status, t->now, seq,
                   tok->max_interactions, role_id, d->failure,
                   nz(tok->return_uow_id)) != CHM_OK)
    return chm__tk_dbrc(t);
  if ((rc = log_dest_decisions(t, tok->uow_id, actor_id, role_id,
                               d->interaction, d)) != CHM_OK)
    return rc;
  if (tok->parent_id[0] != '\0' && chm__is_finished(d->status) &&
      chm__tk_exec(t, CHM__Q_TOK_COUNTS, "siii", tok->parent_id, (int64_t)0,
                   (int64_t)1, t->now) != CHM_OK)
    return chm__tk_dbrc(t);
  memset(&r, 0, sizeof r);
  r.uow_id = tok->uow_id;
  r.actor_id = nz(actor_id);
  r.role_id = role_id;
  r.interaction_id = d->interaction;
  r.to_status = d->status;
  r.event = event;
  r.decision = d->name;
  r.details = d->details;
  if (chm__tk_log(t, &r) != CHM_OK)
    return chm__tk_dbrc(t);
  chm__tk_cpy(tok->status, sizeof tok->status, d->status);
  chm__tk_cpy(tok->interaction_id, CHM__ID, d->interaction);
  chm__tk_cpy(tok->last_role_id, CHM__ID, role_id);
  tok->version = 1;
  tok->entered_at = tok->created_at = t->now;
  tok->queue_seq = seq;
  return CHM_OK;
}

/* ===================================================================== */
/* Failing, finalizing, returning from a child workflow                   */
/* ===================================================================== */

int chm__op_fail_to(chm__tk *t, chm__tok *tok, const char *actor_id,
                    const char *role_id, const char *to_status,
                    const char *where, const char *reason, const char *event,
                    const char *details) {
  char place[CHM__ID], name[128];
  chm__move m;
  int rc = chm__tk_special(t, tok->workflow_id, where, place);
  if (rc == CHM_OK && place[0] == '\0' && strcmp(where, "TAU") == 0)
    rc = chm__tk_special(t, tok->workflow_id, "EPSILON", place);
  if (rc != CHM_OK)
    return rc;
  if (place[0] == '\0')
    chm__tk_cpy(place, CHM__ID, tok->interaction_id);
  if ((rc = inter_name(t, place, name, sizeof name)) != CHM_OK)
    return rc;
  memset(&m, 0, sizeof m);
  m.event = event;
  m.actor_id = actor_id;
  m.role_id = role_id;
  m.decision = name;
  m.details = details;
  m.failure_reason = reason;
  m.lease = CHM__LEASE_CLEAR;
  return chm__tk_set_status(t, tok, to_status, place, &m);
}

/* A {"reason": r} object (malloc'ed). */
static char *reason_json(const char *key, const char *r) {
  chm__buf b = {0};
  chm__buf_add(&b, "{\"");
  chm__buf_add(&b, key);
  chm__buf_add(&b, "\":");
  chm__buf_jstr(&b, r);
  chm__buf_add(&b, "}");
  return chm__buf_take(&b);
}

/* Ids of uow_id's descendants, breadth first (*ids malloc'ed). */
static int descendants(chm__tk *t, const char *uow_id, char (**ids)[CHM__ID],
                       int *n) {
  char parent[CHM__ID];
  int cap = 0, next = 0, rc;
  *ids = NULL;
  *n = 0;
  chm__tk_cpy(parent, sizeof parent, uow_id);
  for (;;) {
    sqlite3_stmt *st = chm__tk_q(t, CHM__Q_TOK_CHILDREN, "s", parent);
    if (st == NULL)
      return chm__tk_dbrc(t);
    while ((rc = chm__tk_step(t, CHM__Q_TOK_CHILDREN, st)) == SQLITE_ROW) {
      if (*n == cap) {
        char(*nv)[CHM__ID];
        cap = cap ? cap * 2 : 16;
        if ((nv = realloc(*ids, (size_t)cap * CHM__ID)) == NULL) {
          chm__tk_reset(st);
          return chm__tk_err(t, CHM_NOMEM, "out of memory");
        }
        *ids = nv;
      }
      chm__tk_cpy((*ids)[(*n)++], CHM__ID, chm__tk_col(st, 0));
    }
    if (rc < 0)
      return chm__tk_dbrc(t);
    chm__tk_reset(st);
    if (next >= *n)
      break;
    chm__tk_cpy(parent, sizeof parent, (*ids)[next++]);
  }
  return CHM_OK;
}

static int gateway_return(chm__tk *t, const chm__tok *child,
                          const chm__who *who);

/* settle_descendants(t, base_id, who, status, event, keep_finished):
** every descendant of base_id -> status, each with an `event` log row
** ({"base": id}), skipping those already in status or ARCHIVED, and with
** keep_finished those COMPLETED, REMEDIATED or FINALIZED. Leases end. */
static int settle_descendants(chm__tk *t, const char *base_id,
                              const chm__who *who, const char *status,
                              const char *event, int keep_finished) {
  char(*ids)[CHM__ID] = NULL;
  char *cd = NULL;
  chm__tok c;
  chm__move m;
  int n = 0, i, rc;
  memset(&c, 0, sizeof c);
  if ((rc = descendants(t, base_id, &ids, &n)) != CHM_OK || n == 0)
    goto done;
  if ((cd = reason_json("base", base_id)) == NULL) {
    rc = chm__tk_err(t, CHM_NOMEM, "out of memory");
    goto done;
  }
  memset(&m, 0, sizeof m);
  m.event = event;
  m.actor_id = who->id;
  m.details = cd;
  m.lease = CHM__LEASE_CLEAR;
  for (i = 0; i < n && rc == CHM_OK; i++) {
    if ((rc = chm__tk_load(t, ids[i], &c)) != CHM_OK)
      break;
    if (strcmp(c.status, status) != 0 && strcmp(c.status, "ARCHIVED") != 0 &&
        !(keep_finished && chm__is_finished(c.status)))
      rc = chm__tk_set_status(t, &c, status, NULL, &m);
  }
done:
  chm__tok_clear(&c);
  free(ids);
  free(cd);
  return rc;
}

/* finalize(t, tok, who, role_id, event): tok and every descendant not
** already FINALIZED or ARCHIVED -> FINALIZED, then the return to a
** gateway token when tok is the base token of a child workflow. */
static int finalize(chm__tk *t, chm__tok *tok, const chm__who *who,
                    const char *role_id, const char *event,
                    const char *details) {
  chm__move m;
  int rc;
  memset(&m, 0, sizeof m);
  m.event = event;
  m.actor_id = who->id;
  m.role_id = role_id;
  m.details = details;
  m.lease = CHM__LEASE_CLEAR;
  if ((rc = chm__tk_set_status(t, tok, "FINALIZED", NULL, &m)) != CHM_OK)
    return rc;
  rc = settle_descendants(t, tok->uow_id, who, "FINALIZED", "FINALIZE_CHILD", 0);
  if (rc == CHM_OK && tok->return_uow_id[0] != '\0')
    rc = gateway_return(t, tok, who);
  return rc;
}

/* archive_descendants(t, tok, who): Epsilon gave tok up (ARCHIVED), so
** its unfinished descendants (PENDING, FAILED, TIMEOUT, PAUSED,
** ZOMBIED_SOFT, ...: any not COMPLETED, REMEDIATED, FINALIZED or ARCHIVED)
** are archived with it, each with a GIVE_UP_CHILD row. The caller has
** refused the give_up while one is ACTIVE (end_blocked). */
static int archive_descendants(chm__tk *t, const chm__tok *tok,
                               const chm__who *who) {
  return settle_descendants(t, tok->uow_id, who, "ARCHIVED", "GIVE_UP_CHILD", 1);
}

/* gateway_return(t, child, who): the base token `child` of a child
** workflow ended (FINALIZED or ARCHIVED): merge its attributes into the
** gateway token waiting for it and route that token, or fail it to its
** Ate. A gateway token that is not ACTIVE (paused) is left for resume. */
static int gateway_return(chm__tk *t, const chm__tok *child,
                          const chm__who *who) {
  chm__tok p;
  chm__attrs ca, pa;
  chm__role role;
  wfinfo w;
  dest d;
  char *reason = NULL, *det = NULL;
  int rc, i;
  memset(&p, 0, sizeof p);
  memset(&ca, 0, sizeof ca);
  memset(&pa, 0, sizeof pa);
  memset(&d, 0, sizeof d);
  if ((rc = chm__tk_load(t, child->return_uow_id, &p)) != CHM_OK)
    goto done;
  if (strcmp(p.status, "ACTIVE") != 0) {
    chm__logrow r;
    memset(&r, 0, sizeof r);
    det = chm__strdupf("{\"child\":\"%s\",\"child_status\":\"%s\","
                       "\"waiting_status\":\"%s\"}",
                       child->uow_id, child->status, p.status);
    r.uow_id = p.uow_id;
    r.actor_id = nz(who->id);
    r.role_id = nz(p.last_role_id);
    r.interaction_id = p.interaction_id;
    r.event = "RETURN_DEFERRED";
    r.details = det;
    rc = det == NULL ? chm__tk_err(t, CHM_NOMEM, "out of memory")
                     : chm__tk_log(t, &r);
    goto done;
  }
  if ((rc = chm__tk_role_by_id(t, p.last_role_id, &role)) != CHM_OK)
    goto done;
  if (strcmp(child->status, "ARCHIVED") == 0) {
    reason = chm__strdupf("child workflow token %s was archived (given up)",
                          child->uow_id);
    det = chm__strdupf("{\"child\":\"%s\"}", child->uow_id);
    if (reason == NULL || det == NULL) {
      rc = chm__tk_err(t, CHM_NOMEM, "out of memory");
      goto done;
    }
    rc = chm__op_fail_to(t, &p, who->id, role.id, "FAILED", "EPSILON", reason,
                         "RETURN", det);
    goto done;
  }
  if ((rc = chm__tk_attrs_load(t, child->uow_id, &ca)) != CHM_OK ||
      (rc = chm__tk_attrs_load(t, p.uow_id, &pa)) != CHM_OK)
    goto done;
  reason = chm__strdupf("returned from child workflow token %s", child->uow_id);
  if (reason == NULL) {
    rc = chm__tk_err(t, CHM_NOMEM, "out of memory");
    goto done;
  }
  for (i = 0; i < ca.n && rc == CHM_OK; i++)
    rc = chm__tk_attr_put(t, p.uow_id, &pa, ca.v[i].key, ca.v[i].value, who->id,
                          reason, NULL, NULL);
  if (rc != CHM_OK)
    goto done;
  if ((rc = wf_lookup(t, p.workflow_id, &w)) != CHM_OK ||
      (rc = decide(t, &p, &pa, w.name, &role, &d)) != CHM_OK)
    goto done;
  {
    chm__move m;
    memset(&m, 0, sizeof m);
    m.event = "RETURN";
    m.actor_id = who->id;
    m.role_id = role.id;
    m.lease = CHM__LEASE_CLEAR;
    rc = move_to(t, &p, &d, m);
  }
done:
  chm__tok_clear(&p);
  chm__attrs_free(&ca);
  chm__attrs_free(&pa);
  dest_free(&d);
  free(reason);
  free(det);
  return rc;
}

/* If tok (just resumed to ACTIVE) waits for a child workflow token that
** already ended, do the return now. */
static int gateway_resume(chm__tk *t, chm__tok *tok, const chm__who *who) {
  chm__role role;
  chm__tok c;
  char cid[CHM__ID], cstatus[20];
  sqlite3_stmt *st;
  int rc;
  if (strcmp(tok->status, "ACTIVE") != 0 ||
      tok->lease_expires_at != CHM__NULL_INT || tok->last_role_id[0] == '\0')
    return CHM_OK;
  if ((rc = chm__tk_role_by_id(t, tok->last_role_id, &role)) != CHM_OK)
    return rc;
  if (!role.gateway)
    return CHM_OK;
  if ((st = chm__tk_q(t, CHM__Q_TOK_RETURNING, "s", tok->uow_id)) == NULL)
    return chm__tk_dbrc(t);
  rc = chm__tk_step(t, CHM__Q_TOK_RETURNING, st);
  if (rc < 0)
    return chm__tk_dbrc(t);
  if (rc != SQLITE_ROW) {
    chm__tk_reset(st);
    return CHM_OK;
  }
  chm__tk_cpy(cid, sizeof cid, chm__tk_col(st, 0));
  chm__tk_cpy(cstatus, sizeof cstatus, chm__tk_col(st, 1));
  chm__tk_reset(st);
  if (strcmp(cstatus, "FINALIZED") != 0 && strcmp(cstatus, "ARCHIVED") != 0)
    return CHM_OK;
  memset(&c, 0, sizeof c);
  rc = chm__tk_load(t, cid, &c);
  if (rc == CHM_OK)
    rc = gateway_return(t, &c, who);
  chm__tok_clear(&c);
  return rc;
}

/* ===================================================================== */
/* Genesis                                                                */
/* ===================================================================== */

/* Attributes (sorted kvs) as an in-memory current-attribute list. */
static int kvs_to_attrs(chm__tk *t, const chm__kvs *kv, chm__attrs *a) {
  int i;
  for (i = 0; i < kv->n; i++)
    if (chm__attrs_set(a, kv->v[i].key, kv->v[i].value, "", 1) != 0)
      return chm__tk_err(t, CHM_NOMEM, "out of memory");
  return CHM_OK;
}

int chm_genesis(chm_instance *inst, const char *workflow,
                const char *attrs_json, const char *actor, char **uow_id) {
  chm__tk *t;
  chm__kvs kv;
  chm__attrs attrs;
  chm__role alpha;
  chm__who who;
  chm__tok tok;
  wfinfo w;
  dest d;
  int rc, i;
  if ((rc = chm__tk_open(inst, &t)) != CHM_OK)
    return rc;
  if (uow_id == NULL)
    return chm__tk_err(t, CHM_MISUSE, "chm_genesis: no place for the id");
  *uow_id = NULL;
  memset(&attrs, 0, sizeof attrs);
  memset(&tok, 0, sizeof tok);
  memset(&d, 0, sizeof d);
  if ((rc = chm__tk_parse_object(t, attrs_json, "genesis attributes", &kv)) !=
      CHM_OK)
    return rc;
  if ((rc = chm__tk_begin(t, 1)) != CHM_OK)
    goto out;
  if ((rc = wf_lookup(t, workflow, &w)) != CHM_OK ||
      (rc = alpha_of(t, &w, &alpha)) != CHM_OK)
    goto fail;
  if ((rc = chm__tk_who(t, actor != NULL ? actor : "system", 1, &who)) !=
          CHM_OK ||
      (rc = chm__tk_assigned(t, who.id, who.name, &alpha)) != CHM_OK)
    goto fail;
  if ((rc = kvs_to_attrs(t, &kv, &attrs)) != CHM_OK)
    goto fail;
  chm__uuid7(tok.uow_id);
  chm__tk_cpy(tok.workflow_id, CHM__ID, w.id);
  chm__tk_cpy(tok.status, sizeof tok.status, "PENDING");
  tok.version = 1;
  tok.max_interactions = w.max_interactions;
  if ((rc = decide(t, &tok, &attrs, w.name, &alpha, &d)) != CHM_OK ||
      (rc = insert_token(t, &tok, &d, alpha.id, who.id, "GENESIS")) != CHM_OK)
    goto fail;
  for (i = 0; i < kv.n && rc == CHM_OK; i++)
    rc = chm__tk_attr_put(t, tok.uow_id, NULL, kv.v[i].key, kv.v[i].value,
                          who.id, "genesis", NULL, NULL);
  if (rc != CHM_OK)
    goto fail;
  if ((rc = chm__tk_commit(t)) != CHM_OK)
    goto out;
  if ((*uow_id = strdup(tok.uow_id)) == NULL)
    rc = chm__tk_err(t, CHM_NOMEM, "out of memory");
  goto out;
fail:
  chm__tk_rollback(t);
out:
  chm__kvs_free(&kv);
  chm__attrs_free(&attrs);
  chm__tok_clear(&tok);
  dest_free(&d);
  return rc;
}

/* ===================================================================== */
/* Checkout                                                               */
/* ===================================================================== */

#define MAX_INBOUND 64

typedef struct inbound {
  char inter[CHM__ID];
  char name[128];
  char comps[8][CHM__ID]; /* the role's inbound components on it */
  int ncomps;
} inbound;

/* Reads the role's inbound interactions (grouped, declaration order),
** through the graph cache. */
static int read_inbound(chm__tk *t, const chm__role *role, inbound *in,
                        int *n) {
  size_t size;
  const inbound *m = chm__tk_memo_get(t, CHM__M_INBOUND, role->id, &size);
  sqlite3_stmt *st;
  int rc, i;
  *n = 0;
  if (m != NULL) {
    *n = (int)(size / sizeof *in);
    memcpy(in, m, size);
    return CHM_OK;
  }
  if ((st = chm__tk_q(t, CHM__Q_ROLE_INBOUND, "s", role->id)) == NULL)
    return chm__tk_dbrc(t);
  while ((rc = chm__tk_step(t, CHM__Q_ROLE_INBOUND, st)) == SQLITE_ROW) {
    const char *comp = chm__tk_col(st, 0), *inter = chm__tk_col(st, 1);
    for (i = 0; i < *n; i++)
      if (strcmp(in[i].inter, inter) == 0)
        break;
    if (i == *n) {
      if (*n == MAX_INBOUND)
        continue;
      memset(&in[i], 0, sizeof in[i]);
      chm__tk_cpy(in[i].inter, CHM__ID, inter);
      chm__tk_cpy(in[i].name, sizeof in[i].name, chm__tk_col(st, 2));
      (*n)++;
    }
    if (in[i].ncomps < 8)
      chm__tk_cpy(in[i].comps[in[i].ncomps++], CHM__ID, comp);
  }
  if (rc < 0)
    return chm__tk_dbrc(t);
  chm__tk_reset(st);
  chm__tk_memo_put(t, CHM__M_INBOUND, role->id, in, (size_t)*n * sizeof *in);
  return CHM_OK;
}

/* The oldest token in `inter` in one of the statuses after queue_seq
** `after` (base tokens only if base_only), read into *tok; *found = 0
** when there is none (tok is then left as it was). */
static int next_candidate(chm__tk *t, const char *inter,
                          const char *const *statuses, int base_only,
                          int64_t after, chm__tok *tok, int *found) {
  int i, rc;
  *found = 0;
  for (i = 0; statuses[i] != NULL; i++) {
    sqlite3_stmt *st = chm__tk_q(t, CHM__Q_TOK_NEXT, "ssid", inter, statuses[i],
                                 after, base_only);
    if (st == NULL)
      return chm__tk_dbrc(t);
    rc = chm__tk_step(t, CHM__Q_TOK_NEXT, st);
    if (rc < 0)
      return chm__tk_dbrc(t);
    if (rc == SQLITE_ROW &&
        (!*found || sqlite3_column_int64(st, 11) < tok->queue_seq)) {
      if ((rc = chm__tk_tok_row(t, st, tok)) != CHM_OK) {
        chm__tk_reset(st);
        return rc;
      }
      *found = 1;
    }
    chm__tk_reset(st);
  }
  return CHM_OK;
}

/* Logs one guardian decision row; version (unless CHM__NULL_INT) is the
** token version the decision was made on, kept in its details. */
static int log_decision(chm__tk *t, const chm__tok *tok, const chm__who *who,
                        const chm__role *role, const char *inter,
                        const chm__decision *dc, int64_t version) {
  return log_guardian(t, tok->uow_id, who->id, role->id, inter, dc, version);
}

/* A gate rejected tok (BETA; or Cerberus, a given-up child: join_broken):
** record it and send tok FAILED to the Ate. */
static int reject(chm__tk *t, chm__tok *tok, const chm__who *who,
                  const chm__role *role, const inbound *in,
                  const chm__gate *g) {
  const chm__decision *rj = &g->rejection;
  char id[CHM__ID], *reason, *det;
  chm__buf b = {0};
  int rc = CHM_OK, i;
  const char *gid = rj->guardian_id != NULL && strlen(rj->guardian_id) == 36
                        ? rj->guardian_id
                        : NULL;
  for (i = 0; i < g->ndec && rc == CHM_OK; i++)
    rc = log_decision(t, tok, who, role, in->inter, &g->dec[i], CHM__NULL_INT);
  if (rc == CHM_OK && g->ndec == 0)
    rc = log_decision(t, tok, who, role, in->inter, rj, CHM__NULL_INT);
  if (rc != CHM_OK)
    return rc;
  chm__uuid7(id);
  if (chm__tk_exec(t, CHM__Q_REJECTION_INSERT, "ssssssi", id, tok->uow_id, gid,
                   rj->name ? rj->name : "?", rj->type ? rj->type : "?",
                   rj->reason ? rj->reason : "rejected", t->now) != CHM_OK)
    return chm__tk_dbrc(t);
  reason = chm__strdupf("rejected by guardian '%s' (%s) on '%s': %s",
                        rj->name ? rj->name : "?", rj->type ? rj->type : "?",
                        in->name, rj->reason ? rj->reason : "rejected");
  chm__buf_add(&b, "{\"guardian\":");
  chm__buf_jstr(&b, rj->name);
  chm__buf_add(&b, ",\"type\":");
  chm__buf_jstr(&b, rj->type);
  chm__buf_add(&b, ",\"reason\":");
  chm__buf_jstr(&b, rj->reason);
  chm__buf_add(&b, ",\"rejection_id\":");
  chm__buf_jstr(&b, id);
  chm__buf_add(&b, "}");
  det = chm__buf_take(&b);
  if (reason == NULL || det == NULL)
    rc = chm__tk_err(t, CHM_NOMEM, "out of memory");
  else
    rc = chm__op_fail_to(t, tok, who->id, role->id, "FAILED", "EPSILON", reason,
                         "REJECT", det);
  free(reason);
  free(det);
  return rc;
}

/* A gate on the inbound of an OMEGA, EPSILON or TAU role rejected tok: the
** token stays where it is (it is already where a rejection would send
** it), but the decision is recorded once per (token, guardian, version):
** a GUARDIAN REJECT log row carrying the version, and a Token_Rejections
** row. *wrote = 1 when something was recorded. */
static int reject_in_place(chm__tk *t, const chm__tok *tok,
                           const chm__who *who, const chm__role *role,
                           const inbound *in, const chm__gate *g, int *wrote) {
  const chm__decision *rj = &g->rejection;
  const char *gid = rj->guardian_id != NULL && strlen(rj->guardian_id) == 36
                        ? rj->guardian_id
                        : NULL;
  char id[CHM__ID];
  sqlite3_stmt *st;
  int rc, seen = 0;
  if ((st = chm__tk_q(t, CHM__Q_REJECTION_SEEN, "ssi", tok->uow_id, rj->name,
                      tok->version)) == NULL)
    return chm__tk_dbrc(t);
  rc = chm__tk_step(t, CHM__Q_REJECTION_SEEN, st);
  if (rc < 0)
    return chm__tk_dbrc(t);
  if (rc == SQLITE_ROW)
    seen = sqlite3_column_int(st, 0);
  chm__tk_reset(st);
  if (seen)
    return CHM_OK;
  if ((rc = log_decision(t, tok, who, role, in->inter, rj, tok->version)) !=
      CHM_OK)
    return rc;
  chm__uuid7(id);
  if (chm__tk_exec(t, CHM__Q_REJECTION_INSERT, "ssssssi", id, tok->uow_id, gid,
                   rj->name ? rj->name : "?", rj->type ? rj->type : "?",
                   rj->reason ? rj->reason : "rejected", t->now) != CHM_OK)
    return chm__tk_dbrc(t);
  *wrote = 1;
  return CHM_OK;
}

/* join_broken(t, tok, role, g, &yes): yes = 1 when the OMEGA gate that
** did not pass the base token tok was Cerberus rejecting it because a
** child was given up (ARCHIVED): the join can never pass, so unlike other
** rejections on an OMEGA inbound the base goes FAILED to the Ate, where
** Epsilon decides about it. */
static int join_broken(chm__tk *t, const chm__tok *tok, const chm__role *role,
                       const chm__gate *g, int *yes) {
  sqlite3_stmt *st;
  int rc;
  *yes = 0;
  if (g->pass || !g->has_rejection || strcmp(role->type, "OMEGA") != 0 ||
      tok->parent_id[0] != '\0' || g->rejection.type == NULL ||
      strcmp(g->rejection.type, "CERBERUS") != 0)
    return CHM_OK;
  if ((st = chm__tk_q(t, CHM__Q_TOK_ARCHIVED_CHILD, "s", tok->uow_id)) == NULL)
    return chm__tk_dbrc(t);
  if ((rc = chm__tk_step(t, CHM__Q_TOK_ARCHIVED_CHILD, st)) < 0)
    return chm__tk_dbrc(t);
  *yes = rc == SQLITE_ROW;
  chm__tk_reset(st);
  return CHM_OK;
}

/* join_now(t, base_id, who): a child of base_id was just given up. When
** the base already waits finished (COMPLETED or REMEDIATED) in a room an
** OMEGA consumes, ask that room's gate now, in this transaction: Cerberus
** rejects it (the join can never pass) and the base goes FAILED to the Ate
** as at an Omega checkout (rejection record and log rows, under the OMEGA
** role, by who). Otherwise the next Omega checkout finds it. */
static int join_now(chm__tk *t, const char *base_id, const chm__who *who) {
  inbound in[MAX_INBOUND];
  chm__tok p;
  chm__role omega;
  chm__attrs attrs;
  chm__gate g;
  chm__view v;
  char *rid = NULL;
  int nin = 0, i, rc, broken = 0;
  memset(&p, 0, sizeof p);
  memset(&attrs, 0, sizeof attrs);
  memset(&g, 0, sizeof g);
  if ((rc = chm__tk_load(t, base_id, &p)) != CHM_OK)
    goto done;
  if (p.parent_id[0] != '\0' || (strcmp(p.status, "COMPLETED") != 0 &&
                                  strcmp(p.status, "REMEDIATED") != 0))
    goto done;
  if ((rc = chm__tk_one_text(t, CHM__Q_OMEGA_OF, &rid, "s",
                             p.interaction_id)) != CHM_OK ||
      rid == NULL)
    goto done;
  if ((rc = chm__tk_role_by_id(t, rid, &omega)) != CHM_OK ||
      (rc = read_inbound(t, &omega, in, &nin)) != CHM_OK)
    goto done;
  for (i = 0; i < nin; i++)
    if (strcmp(in[i].inter, p.interaction_id) == 0)
      break;
  if (i == nin || (rc = chm__tk_attrs_load(t, p.uow_id, &attrs)) != CHM_OK)
    goto done;
  v.tok = &p;
  v.workflow = omega.workflow;
  v.attrs = &attrs;
  if ((rc = chm__tk_gate(t, in[i].comps, in[i].ncomps, &v, &g)) != CHM_OK ||
      (rc = join_broken(t, &p, &omega, &g, &broken)) != CHM_OK)
    goto done;
  if (broken)
    rc = reject(t, &p, who, &omega, &in[i], &g);
done:
  chm__tok_clear(&p);
  chm__attrs_free(&attrs);
  chm__gate_free(&g);
  free(rid);
  return rc;
}

/* note_reject(t, tok, g, &n, &why): counts a token this checkout rejected
** and moved to the Ate (tok is there now); for the first, *why (malloc'ed)
** says which, by which guardian, why, and where it went. */
static int note_reject(chm__tk *t, const chm__tok *tok, const chm__gate *g,
                       int *n, char **why) {
  const chm__decision *rj = &g->rejection;
  char ate[128];
  int rc;
  if (++*n > 1)
    return CHM_OK;
  if ((rc = inter_name(t, tok->interaction_id, ate, sizeof ate)) != CHM_OK)
    return rc;
  *why = chm__strdupf("token %s was rejected by guardian '%s' (%s): %s, and "
                      "moved FAILED to '%s'",
                      tok->uow_id, rj->name ? rj->name : "?",
                      rj->type ? rj->type : "?",
                      rj->reason ? rj->reason : "rejected", ate);
  return *why == NULL ? chm__tk_err(t, CHM_NOMEM, "out of memory") : CHM_OK;
}

/* Why a candidate the gate did not pass cannot be taken (malloc'ed). */
static char *gate_why(const chm__tok *tok, const chm__gate *g) {
  const chm__decision *d = g->ndec > 0 ? &g->dec[g->ndec - 1] : NULL;
  if (g->wait && d != NULL && d->type != NULL &&
      strcmp(d->type, "CERBERUS") == 0)
    return chm__strdupf("base %s waits for its children (%lld of %lld "
                        "finished)",
                        tok->uow_id, (long long)tok->finished_child_count,
                        (long long)tok->child_count);
  if (g->wait)
    return chm__strdupf("token %s waits at guardian '%s' (%s): %s",
                        tok->uow_id, d && d->name ? d->name : "?",
                        d && d->type ? d->type : "?",
                        d && d->reason ? d->reason : "WAIT");
  return chm__strdupf("token %s was rejected by guardian '%s' (%s): %s",
                      tok->uow_id, g->rejection.name ? g->rejection.name : "?",
                      g->rejection.type ? g->rejection.type : "?",
                      g->rejection.reason ? g->rejection.reason : "rejected");
}

/* The no-work message: when tokens wait in the role's inbound but none
** can be taken, say how many and why the oldest cannot (seen_id/seen_why:
** the first candidate the gate did not pass); rejected (or NULL) says
** which tokens this checkout rejected and moved to the Ate (note_reject).
** Only on the no-work path. */
static int no_work(chm__tk *t, const chm__role *role, const inbound *in,
                   int nin, const char *const *statuses, int base_only,
                   const char *seen_id, const char *seen_why,
                   const char *rejected, const char *names) {
  char id[CHM__ID] = "", status[24] = "", parent[CHM__ID] = "";
  char *why = NULL;
  int64_t n = 0;
  int i, rc, k;
  if (nin == 0)
    return chm__tk_err(t, CHM_NOTFOUND,
                       "no work for role '%s': it has no inbound interaction",
                       role->name);
  for (i = 0; i < nin; i++) {
    sqlite3_stmt *st = chm__tk_q(t, CHM__Q_WAITING, "s", in[i].inter);
    if (st == NULL)
      return chm__tk_dbrc(t);
    if ((rc = chm__tk_step(t, CHM__Q_WAITING, st)) < 0)
      return chm__tk_dbrc(t);
    if (rc == SQLITE_ROW) {
      n += sqlite3_column_int64(st, 5);
      if (id[0] == '\0') {
        chm__tk_cpy(id, sizeof id, chm__tk_col(st, 0));
        chm__tk_cpy(status, sizeof status, chm__tk_col(st, 1));
        chm__tk_cpy(parent, sizeof parent, chm__tk_col(st, 2));
      }
    }
    chm__tk_reset(st);
  }
  if (n == 0)
    return chm__tk_err(t, CHM_NOTFOUND, "no work for role '%s' in '%s'%s%s",
                       role->name, names, rejected ? ": " : "",
                       rejected ? rejected : "");
  for (k = 0; statuses[k] != NULL; k++)
    if (strcmp(statuses[k], status) == 0)
      break;
  if (seen_id[0] != '\0' && strcmp(seen_id, id) == 0 && seen_why != NULL)
    why = chm__strdupf("%s", seen_why);
  else if (statuses[k] == NULL)
    why = chm__strdupf(
        "token %s is %s — %s takes only %s%s%s tokens%s", id, status,
        role->type, statuses[0], statuses[1] ? " or " : "",
        statuses[1] ? statuses[1] : "",
        strcmp(status, "ZOMBIED_SOFT") == 0
            ? " (an operator's clarify returns it to PENDING)"
        : strcmp(status, "PAUSED") == 0 ? " (resume it first)"
                                        : "");
  else if (base_only && parent[0] != '\0')
    why = chm__strdupf("token %s is a child (parent %s) — %s takes only base "
                       "tokens, which bring their children",
                       id, parent, role->type);
  else
    why = chm__strdupf("token %s is %s", id, status);
  if (why == NULL)
    return chm__tk_err(t, CHM_NOMEM, "out of memory");
  rc = chm__tk_err(t, CHM_NOTFOUND,
                   "no work for role '%s' in '%s': %s%s%lld token%s there "
                   "but none can be taken: %s",
                   role->name, names, rejected ? rejected : "",
                   rejected ? "; " : "", (long long)n,
                   n == 1 ? " waits" : "s wait", why);
  free(why);
  return rc;
}

/* Writes the context injections a passing gate made. */
static int inject(chm__tk *t, chm__tok *tok, const chm__who *who,
                  const chm__role *role, const inbound *in, chm__gate *g) {
  int i, rc = CHM_OK;
  for (i = 0; i < g->ninj && rc == CHM_OK; i++) {
    const chm__inj *j = &g->inj[i];
    const char *gid = j->guardian_id != NULL && strlen(j->guardian_id) == 36
                          ? j->guardian_id
                          : NULL;
    char id[CHM__ID], *det;
    chm__buf b = {0};
    chm__logrow r;
    chm__uuid7(id);
    if (chm__tk_exec(t, CHM__Q_INJECTION_INSERT, "sssissi", id, tok->uow_id,
                     gid, j->rule_index, j->field, j->value, t->now) != CHM_OK)
      return chm__tk_dbrc(t);
    chm__buf_addf(&b,
                  "{\"rule_index\":%lld,\"field\":", (long long)j->rule_index);
    chm__buf_jstr(&b, j->field);
    chm__buf_add(&b, ",\"value\":");
    chm__buf_add(&b, j->value);
    chm__buf_add(&b, "}");
    if ((det = chm__buf_take(&b)) == NULL)
      return chm__tk_err(t, CHM_NOMEM, "out of memory");
    memset(&r, 0, sizeof r);
    r.uow_id = tok->uow_id;
    r.actor_id = nz(who->id);
    r.role_id = role->id;
    r.interaction_id = in->inter;
    r.event = "INJECT";
    r.decision = j->field;
    r.guardian_id = gid;
    r.details = det;
    rc = chm__tk_log(t, &r);
    free(det);
  }
  if (rc == CHM_OK && g->context != NULL) {
    free(tok->context);
    tok->context = g->context;
    g->context = NULL;
  }
  return rc;
}

/* The gateway's checkout: tok ACTIVE under the actor with no expiry, and
** a base token of the child workflow carrying tok's attributes. */
static int gateway_start(chm__tk *t, chm__tok *tok, const chm__attrs *attrs,
                         const chm__who *who, const chm__role *role,
                         char child_id[CHM__ID]) {
  wfinfo w;
  chm__role alpha;
  chm__tok c;
  chm__attrs ca;
  chm__move m;
  dest d;
  char *det = NULL, *reason = NULL;
  int rc, i;
  memset(&c, 0, sizeof c);
  memset(&ca, 0, sizeof ca);
  memset(&d, 0, sizeof d);
  if (role->linked_workflow[0] == '\0')
    return chm__tk_err(t, CHM_INVALID,
                       "gateway role '%s' of workflow '%s' "
                       "has no child workflow in this "
                       "instance",
                       role->name, role->workflow);
  if ((rc = wf_lookup(t, role->linked_workflow, &w)) != CHM_OK ||
      (rc = alpha_of(t, &w, &alpha)) != CHM_OK)
    return rc;
  chm__uuid7(c.uow_id);
  chm__tk_cpy(child_id, CHM__ID, c.uow_id);
  det = chm__strdupf("{\"gateway\":true,\"child_workflow\":\"%s\","
                     "\"child\":\"%s\"}",
                     w.name, c.uow_id);
  reason = chm__strdupf("from gateway token %s", tok->uow_id);
  if (det == NULL || reason == NULL) {
    rc = chm__tk_err(t, CHM_NOMEM, "out of memory");
    goto done;
  }
  memset(&m, 0, sizeof m);
  m.event = "CHECKOUT";
  m.actor_id = who->id;
  m.role_id = role->id;
  m.details = det;
  m.lease = CHM__LEASE_OPEN;
  m.checkout = 1;
  if ((rc = chm__tk_set_status(t, tok, "ACTIVE", NULL, &m)) != CHM_OK)
    goto done;
  chm__tk_cpy(c.workflow_id, CHM__ID, w.id);
  chm__tk_cpy(c.return_uow_id, CHM__ID, tok->uow_id);
  chm__tk_cpy(c.status, sizeof c.status, "PENDING");
  c.version = 1;
  c.max_interactions = w.max_interactions;
  for (i = 0; i < attrs->n; i++)
    if (chm__attrs_set(&ca, attrs->v[i].key, attrs->v[i].value, "", 1) != 0) {
      rc = chm__tk_err(t, CHM_NOMEM, "out of memory");
      goto done;
    }
  if ((rc = decide(t, &c, &ca, w.name, &alpha, &d)) != CHM_OK ||
      (rc = insert_token(t, &c, &d, alpha.id, who->id, "GATEWAY_START")) !=
          CHM_OK)
    goto done;
  for (i = 0; i < attrs->n && rc == CHM_OK; i++)
    rc = chm__tk_attr_put(t, c.uow_id, NULL, attrs->v[i].key, attrs->v[i].value,
                          who->id, reason, attrs->v[i].attribute_id, NULL);
done:
  chm__tok_clear(&c);
  chm__attrs_free(&ca);
  dest_free(&d);
  free(det);
  free(reason);
  return rc;
}

static const char *const st_beta[] = {"PENDING", NULL};
static const char *const st_omega[] = {"COMPLETED", "REMEDIATED", NULL};
static const char *const st_epsilon[] = {"FAILED", NULL};
static const char *const st_tau[] = {"TIMEOUT", "FAILED", NULL};

int chm__op_checkout(chm__tk *t, const chm__who *who, const chm__role *role,
                     const char *interaction, chm__tok *tok,
                     chm__attrs *attrs_out, char **out_json, int *wrote) {
  inbound in[MAX_INBOUND];
  const char *const *statuses;
  chm__attrs attrs;
  chm__gate g;
  chm__buf names = {0};
  char child[CHM__ID] = "", *memory = NULL, seen_id[CHM__ID] = "";
  char *seen_why = NULL, *rej_why = NULL;
  int nin = 0, i, rc, found = 0, base_only, beta, got, broken, nrej = 0;
  memset(&attrs, 0, sizeof attrs);
  memset(&g, 0, sizeof g);
  if (out_json != NULL)
    *out_json = NULL;
  if (attrs_out != NULL)
    memset(attrs_out, 0, sizeof *attrs_out);
  *wrote = 0;
  if (strcmp(role->type, "ALPHA") == 0)
    return chm__tk_err(t, CHM_INVALID,
                       "role '%s' is the ALPHA of workflow "
                       "'%s': it takes no work (start tokens "
                       "with genesis)",
                       role->name, role->workflow);
  beta = strcmp(role->type, "BETA") == 0;
  statuses = beta                                 ? st_beta
             : strcmp(role->type, "OMEGA") == 0   ? st_omega
             : strcmp(role->type, "EPSILON") == 0 ? st_epsilon
                                                  : st_tau;
  base_only = strcmp(role->type, "OMEGA") == 0;
  if ((rc = read_inbound(t, role, in, &nin)) != CHM_OK)
    return rc;
  if (interaction != NULL) {
    for (i = 0; i < nin; i++)
      if (strcmp(in[i].name, interaction) == 0 ||
          strcmp(in[i].inter, interaction) == 0)
        break;
    if (i == nin) {
      for (i = 0; i < nin; i++) {
        chm__buf_add(&names, i ? "', '" : "");
        chm__buf_add(&names, in[i].name);
      }
      rc = chm__tk_err(t, CHM_NOTFOUND,
                       "role '%s' does not take work from "
                       "'%s' (its inbound: '%s')",
                       role->name, interaction, names.p ? names.p : "");
      chm__buf_free(&names);
      return rc;
    }
    if (i > 0)
      in[0] = in[i];
    nin = 1;
  }
  for (i = 0; i < nin && !found; i++) {
    int64_t after = CHM__NULL_INT + 1;
    for (;;) {
      chm__view v;
      if ((rc = next_candidate(t, in[i].inter, statuses, base_only, after, tok,
                               &got)) != CHM_OK)
        goto done;
      if (!got)
        break;
      after = tok->queue_seq;
      if (beta && tok->max_interactions != CHM__NULL_INT &&
          tok->checkout_count >= tok->max_interactions) {
        chm__move m;
        char *det = chm__strdupf("{\"checkout_count\":%lld,"
                                 "\"max_interactions\":%lld}",
                                 (long long)tok->checkout_count,
                                 (long long)tok->max_interactions);
        char *why = chm__strdupf("ambiguity lock: checked out %lld times "
                                 "(max_interactions %lld); needs a "
                                 "clarification",
                                 (long long)tok->checkout_count,
                                 (long long)tok->max_interactions);
        memset(&m, 0, sizeof m);
        m.event = "ZOMBIE";
        m.actor_id = who->id;
        m.role_id = role->id;
        m.details = det;
        m.failure_reason = why;
        m.lease = CHM__LEASE_CLEAR;
        rc = det == NULL || why == NULL
                 ? chm__tk_err(t, CHM_NOMEM, "out of memory")
                 : chm__tk_set_status(t, tok, "ZOMBIED_SOFT", NULL, &m);
        free(det);
        free(why);
        if (rc != CHM_OK)
          goto done;
        *wrote = 1;
        continue;
      }
      chm__attrs_free(&attrs);
      if ((rc = chm__tk_attrs_load(t, tok->uow_id, &attrs)) != CHM_OK)
        goto done;
      v.tok = tok;
      v.workflow = role->workflow;
      v.attrs = &attrs;
      chm__gate_free(&g);
      if ((rc = chm__tk_gate(t, in[i].comps, in[i].ncomps, &v, &g)) != CHM_OK)
        goto done;
      if (g.pass) {
        found = 1;
        break;
      }
      if ((rc = join_broken(t, tok, role, &g, &broken)) != CHM_OK)
        goto done;
      if ((beta && !g.wait && g.has_rejection) || broken) {
        if ((rc = reject(t, tok, who, role, &in[i], &g)) != CHM_OK ||
            (rc = note_reject(t, tok, &g, &nrej, &rej_why)) != CHM_OK)
          goto done;
        *wrote = 1;
        continue;
      }
      if (!g.wait && g.has_rejection &&
          (rc = reject_in_place(t, tok, who, role, &in[i], &g, wrote)) !=
              CHM_OK)
        goto done;
      if (seen_id[0] == '\0') { /* for the no-work message */
        chm__tk_cpy(seen_id, sizeof seen_id, tok->uow_id);
        if ((seen_why = gate_why(tok, &g)) == NULL) {
          rc = chm__tk_err(t, CHM_NOMEM, "out of memory");
          goto done;
        }
      }
    }
  }
  if (!found) {
    for (i = 0; i < nin; i++) {
      chm__buf_add(&names, i ? "', '" : "");
      chm__buf_add(&names, in[i].name);
    }
    chm__tok_clear(tok);
    if (nrej > 1) {
      char *w = chm__strdupf("%d tokens were rejected and moved FAILED to "
                             "the Ate; the first: %s",
                             nrej, rej_why);
      if (w == NULL) {
        rc = chm__tk_err(t, CHM_NOMEM, "out of memory");
        goto done;
      }
      free(rej_why);
      rej_why = w;
    }
    rc = no_work(t, role, in, nin, statuses, base_only, seen_id, seen_why,
                 rej_why, names.p ? names.p : "");
    goto done;
  }
  i--; /* the inbound the token was found in */
  {
    int k;
    for (k = 0; k < g.ndec && rc == CHM_OK; k++)
      rc = log_decision(t, tok, who, role, in[i].inter, &g.dec[k],
                        CHM__NULL_INT);
  }
  if (rc == CHM_OK)
    rc = inject(t, tok, who, role, &in[i], &g);
  if (rc != CHM_OK)
    goto done;
  if (role->gateway) {
    rc = gateway_start(t, tok, &attrs, who, role, child);
  } else {
    chm__move m;
    char det[64];
    snprintf(det, sizeof det, "{\"lease_expires_at\":%lld}",
             (long long)(t->now + t->lease_ms));
    memset(&m, 0, sizeof m);
    m.event = "CHECKOUT";
    m.actor_id = who->id;
    m.role_id = role->id;
    m.details = det;
    m.lease = CHM__LEASE_START;
    m.checkout = 1;
    rc = chm__tk_set_status(t, tok, "ACTIVE", NULL, &m);
  }
  if (rc != CHM_OK)
    goto done;
  *wrote = 1;
  if (out_json != NULL) {
    if ((rc = chm__tk_memory(t, role->id, who->id, &memory)) != CHM_OK ||
        (rc = chm__tk_one_text(t, CHM__Q_TOKEN_JSON, out_json, "sss",
                               tok->uow_id, role->name, memory)) != CHM_OK)
      goto done;
    if (*out_json != NULL && child[0] != '\0') {
      size_t n = strlen(*out_json);
      char *j = chm__strdupf("%.*s,\"child_uow_id\":\"%s\"}", (int)(n - 1),
                             *out_json, child);
      free(*out_json);
      *out_json = j;
    }
    if (*out_json == NULL)
      rc = chm__tk_err(t, CHM_NOMEM, "out of memory");
  }
  if (rc == CHM_OK && attrs_out != NULL) { /* the caller takes them */
    *attrs_out = attrs;
    memset(&attrs, 0, sizeof attrs);
  }
done:
  chm__buf_free(&names);
  chm__attrs_free(&attrs);
  chm__gate_free(&g);
  free(memory);
  free(seen_why);
  free(rej_why);
  if (rc != CHM_OK && out_json != NULL) {
    free(*out_json);
    *out_json = NULL;
  }
  return rc;
}

/* Commits when rc is CHM_OK or (keep) something was written; else rolls
** back. Returns rc (or the commit's failure). */
static int finish(chm__tk *t, int rc, int keep) {
  if (rc == CHM_OK || keep) {
    int c = chm__tk_commit(t);
    return c != CHM_OK ? c : rc;
  }
  chm__tk_rollback(t);
  return rc;
}

int chm_checkout(chm_instance *inst, const char *actor, const char *role,
                 const char *interaction, char **token_json) {
  chm__tk *t;
  chm__who who;
  chm__role r;
  chm__tok tok;
  int rc, wrote = 0;
  if ((rc = chm__tk_open(inst, &t)) != CHM_OK)
    return rc;
  if (token_json != NULL)
    *token_json = NULL;
  if (actor == NULL || role == NULL || token_json == NULL)
    return chm__tk_err(t, CHM_MISUSE,
                       "chm_checkout: an actor, a role and a "
                       "place for the token are required");
  memset(&tok, 0, sizeof tok);
  if ((rc = chm__tk_begin(t, 1)) != CHM_OK)
    return rc;
  if ((rc = chm__tk_who(t, actor, 1, &who)) == CHM_OK &&
      (rc = chm__tk_role(t, role, who.id, &r)) == CHM_OK &&
      (rc = chm__tk_assigned(t, who.id, who.name, &r)) == CHM_OK)
    rc = chm__op_checkout(t, &who, &r, interaction, &tok, NULL, token_json,
                          &wrote);
  rc = finish(t, rc, wrote && rc == CHM_NOTFOUND);
  if (rc != CHM_OK && *token_json != NULL) {
    free(*token_json);
    *token_json = NULL;
  }
  chm__tok_clear(&tok);
  return rc;
}

/* ===================================================================== */
/* Holding a token: heartbeat, fail, submit                               */
/* ===================================================================== */

/* check_holder(t, tok, who, op): tok is ACTIVE, held by who, lease live. */
static int check_holder(chm__tk *t, const chm__tok *tok, const chm__who *who,
                        const char *op) {
  char name[128], ts[32];
  if (strcmp(tok->status, "ACTIVE") != 0)
    return chm__tk_err(t, CHM_STATE,
                       "token %s is %s; %s needs ACTIVE (check "
                       "it out first)",
                       tok->uow_id, tok->status, op);
  if (strcmp(tok->lease_holder, who->id) != 0) {
    if (actor_name(t, tok->lease_holder, name, sizeof name) != CHM_OK)
      return chm__tk_dbrc(t);
    return chm__tk_err(t, CHM_DENIED,
                       "token %s is held by '%s'; only the "
                       "lease holder may %s it ('%s' may not)",
                       tok->uow_id, name, op, who->name);
  }
  if (tok->lease_expires_at != CHM__NULL_INT &&
      tok->lease_expires_at < t->now) {
    chm__tk_iso(tok->lease_expires_at, ts);
    return chm__tk_err(t, CHM_STATE,
                       "the lease of token %s expired at %s; "
                       "the zombie sweep sends it to Chronos "
                       "(%s refused)",
                       tok->uow_id, ts, op);
  }
  return CHM_OK;
}

/* begin_held(inst, &t, uow_id, actor, op, &who, &tok): what heartbeat and
** fail share — open the engine state, check the arguments, begin the
** transaction, load the actor and the token and check that the actor
** holds its lease. Returns -rc when nothing was begun (return rc as is),
** else the check's status with the transaction open (end it with
** finish). */
static int begin_held(chm_instance *inst, chm__tk **t, const char *uow_id,
                      const char *actor, const char *op, chm__who *who,
                      chm__tok *tok) {
  int rc;
  if ((rc = chm__tk_open(inst, t)) != CHM_OK)
    return -rc;
  if (uow_id == NULL || actor == NULL)
    return -chm__tk_err(*t, CHM_MISUSE,
                        "chm_%s: a token id and an actor are required", op);
  if ((rc = chm__tk_begin(*t, 1)) != CHM_OK)
    return -rc;
  if ((rc = chm__tk_who(*t, actor, 1, who)) == CHM_OK &&
      (rc = chm__tk_load(*t, uow_id, tok)) == CHM_OK)
    rc = check_holder(*t, tok, who, op);
  return rc;
}

int chm_heartbeat(chm_instance *inst, const char *uow_id, const char *actor) {
  chm__tk *t;
  chm__who who;
  chm__tok tok;
  int rc;
  memset(&tok, 0, sizeof tok);
  if ((rc = begin_held(inst, &t, uow_id, actor, "heartbeat", &who, &tok)) < 0)
    return -rc;
  if (rc == CHM_OK && tok.lease_expires_at != CHM__NULL_INT)
    rc = chm__tk_exec(t, CHM__Q_TOK_LEASE, "sii", tok.uow_id,
                      t->now + t->lease_ms, t->now);
  rc = finish(t, rc, 0);
  chm__tok_clear(&tok);
  return rc;
}

int chm_fail(chm_instance *inst, const char *uow_id, const char *actor,
             const char *reason) {
  chm__tk *t;
  chm__who who;
  chm__tok tok;
  char *why = NULL, *det = NULL;
  int rc;
  memset(&tok, 0, sizeof tok);
  if ((rc = begin_held(inst, &t, uow_id, actor, "fail", &who, &tok)) < 0)
    return -rc;
  if (rc == CHM_OK) {
    why = reason != NULL ? strdup(reason)
                         : chm__strdupf("failed by '%s'", who.name);
    det = why != NULL ? reason_json("reason", why) : NULL;
    rc = det == NULL ? chm__tk_err(t, CHM_NOMEM, "out of memory")
                     : chm__op_fail_to(t, &tok, who.id, NULL, "FAILED",
                                       "EPSILON", why, "FAIL", det);
  }
  rc = finish(t, rc, 0);
  chm__tok_clear(&tok);
  free(why);
  free(det);
  return rc;
}

/* Child i of a decomposition: parent's current values (lineage), then its
** own keys, routed by the decomposing role. */
static int spawn_child(chm__tk *t, const chm__tok *parent,
                       const chm__attrs *pattrs, const chm__kvs *own,
                       const chm__who *who, const chm__role *role,
                       const char *reasoning, char id_out[CHM__ID]) {
  chm__tok c;
  chm__attrs ca, cur;
  dest d;
  char *lin = NULL;
  int rc = CHM_OK, i;
  memset(&c, 0, sizeof c);
  memset(&ca, 0, sizeof ca);
  memset(&cur, 0, sizeof cur);
  memset(&d, 0, sizeof d);
  chm__uuid7(c.uow_id);
  chm__tk_cpy(id_out, CHM__ID, c.uow_id);
  chm__tk_cpy(c.workflow_id, CHM__ID, parent->workflow_id);
  chm__tk_cpy(c.parent_id, CHM__ID, parent->uow_id);
  chm__tk_cpy(c.interaction_id, CHM__ID, parent->interaction_id);
  chm__tk_cpy(c.status, sizeof c.status, "PENDING");
  c.version = 1;
  c.max_interactions = parent->max_interactions;
  for (i = 0; i < pattrs->n; i++)
    if (chm__attrs_set(&ca, pattrs->v[i].key, pattrs->v[i].value, "", 1) != 0)
      goto oom;
  for (i = 0; i < own->n; i++)
    if (chm__attrs_set(&ca, own->v[i].key, own->v[i].value, "", 1) != 0)
      goto oom;
  if ((rc = decide(t, &c, &ca, role->workflow, role, &d)) != CHM_OK)
    goto done;
  c.interaction_id[0] = '\0';
  if ((rc = insert_token(t, &c, &d, role->id, who->id, "SPAWN")) != CHM_OK)
    goto done;
  if ((lin = chm__strdupf("copied from parent %s", parent->uow_id)) == NULL)
    goto oom;
  for (i = 0; i < pattrs->n && rc == CHM_OK; i++)
    rc = chm__tk_attr_put(t, c.uow_id, &cur, pattrs->v[i].key,
                          pattrs->v[i].value, who->id, lin,
                          pattrs->v[i].attribute_id, NULL);
  for (i = 0; i < own->n && rc == CHM_OK; i++)
    rc = chm__tk_attr_put(t, c.uow_id, &cur, own->v[i].key, own->v[i].value,
                          who->id, reasoning, NULL, NULL);
  goto done;
oom:
  rc = chm__tk_err(t, CHM_NOMEM, "out of memory");
done:
  chm__tok_clear(&c);
  chm__attrs_free(&ca);
  chm__attrs_free(&cur);
  dest_free(&d);
  free(lin);
  return rc;
}

/* The keys of kv joined by ", " (for messages), into b. */
static void keys_of(chm__buf *b, const chm__kvs *kv) {
  int i;
  for (i = 0; i < kv->n; i++) {
    if (i)
      chm__buf_add(b, ", ");
    chm__buf_add(b, kv->v[i].key);
  }
  if (kv->n == 0)
    chm__buf_add(b, "(none)");
}

/* end_blocked(t, tok, op, again) -> CHM_OK when Tau's forced end or
** Epsilon's give_up of tok (op: "end", "give_up") may go on: no descendant
** is ACTIVE (an actor holds its lease; ending or archiving it would take
** the work from under them). Else CHM_STATE naming the first such one,
** its holder, and what to do before `again` ("end", "give up"). */
static int end_blocked(chm__tk *t, const chm__tok *tok, const char *op,
                       const char *again) {
  char(*ids)[CHM__ID] = NULL, name[128], ts[32];
  chm__tok c;
  int n = 0, i, rc;
  memset(&c, 0, sizeof c);
  if ((rc = descendants(t, tok->uow_id, &ids, &n)) != CHM_OK)
    goto done;
  for (i = 0; i < n; i++) {
    if ((rc = chm__tk_load(t, ids[i], &c)) != CHM_OK)
      goto done;
    if (strcmp(c.status, "ACTIVE") != 0)
      continue;
    if ((rc = actor_name(t, c.lease_holder, name, sizeof name)) != CHM_OK)
      goto done;
    if (c.lease_expires_at != CHM__NULL_INT)
      chm__tk_iso(c.lease_expires_at, ts);
    rc = chm__tk_err(
        t, CHM_STATE,
        "submit of token %s: %s refused: its %s token %s is ACTIVE, "
        "leased to '%s'%s%s; wait for that lease to end (its holder submits "
        "or fails it, or the zombie sweep takes it) or pause it, then %s "
        "again",
        tok->uow_id, op, strcmp(c.parent_id, tok->uow_id) == 0 ? "child"
                                                           : "descendant",
        c.uow_id, name,
        c.lease_expires_at != CHM__NULL_INT ? " until " : "",
        c.lease_expires_at != CHM__NULL_INT ? ts : "", again);
    goto done;
  }
done:
  chm__tok_clear(&c);
  free(ids);
  return rc;
}

static int check_changes(chm__tk *t, const chm__tok *tok, const chm__role *role,
                         const chm__changes *c) {
  int i, j;
  if (c->fail != NULL && (c->nchildren > 0 || c->give_up || c->end))
    return chm__tk_err(t, CHM_INVALID,
                       "submit of token %s: \"fail\" cannot "
                       "be combined with children, give_up "
                       "or end",
                       tok->uow_id);
  if (c->give_up && strcmp(role->type, "EPSILON") != 0)
    return chm__tk_err(t, CHM_INVALID,
                       "submit of token %s: give_up is for "
                       "EPSILON roles; role '%s' is %s",
                       tok->uow_id, role->name, role->type);
  if (c->end && strcmp(role->type, "TAU") != 0)
    return chm__tk_err(t, CHM_INVALID,
                       "submit of token %s: end is for TAU "
                       "roles; role '%s' is %s",
                       tok->uow_id, role->name, role->type);
  if (c->give_up && c->end)
    return chm__tk_err(t, CHM_INVALID,
                       "submit of token %s: give_up and end "
                       "together",
                       tok->uow_id);
  if (c->nchildren > 0 &&
      (strcmp(role->type, "BETA") != 0 || role->strategy[0] == '\0'))
    return chm__tk_err(t, CHM_INVALID,
                       "submit of token %s: role '%s' has no "
                       "decomposition strategy, so it cannot "
                       "create children",
                       tok->uow_id, role->name);
  if (c->nchildren > 0 && strcmp(role->strategy, "HOMOGENEOUS") == 0)
    for (i = 1; i < c->nchildren; i++) {
      int same = c->children[i].n == c->children[0].n;
      for (j = 0; same && j < c->children[0].n; j++)
        same = strcmp(c->children[i].v[j].key, c->children[0].v[j].key) == 0;
      if (!same) {
        chm__buf a = {0}, b = {0};
        int rc;
        keys_of(&a, &c->children[0]);
        keys_of(&b, &c->children[i]);
        rc = chm__tk_err(t, CHM_INVALID,
                         "submit of token %s: role '%s' is "
                         "HOMOGENEOUS, so every child needs "
                         "the same keys; child 1 has %s, "
                         "child %d has %s",
                         tok->uow_id, role->name, a.p ? a.p : "?", i + 1,
                         b.p ? b.p : "?");
        chm__buf_free(&a);
        chm__buf_free(&b);
        return rc;
      }
    }
  if (c->end)
    return end_blocked(t, tok, "end", "end");
  if (c->give_up)
    return end_blocked(t, tok, "give_up", "give up");
  return CHM_OK;
}

int chm__submit_is_plain(const chm__changes *c, const chm__role *role) {
  return c->fail == NULL && !c->give_up && !c->end && c->nchildren == 0 &&
         strcmp(role->type, "OMEGA") != 0;
}

int chm__op_submit(chm__tk *t, const chm__who *who, chm__tok *tok,
                   int64_t version, const char *changes_json,
                   const chm__changes *parsed, chm__attrs *held,
                   char **result) {
  chm__changes own;
  const chm__changes *cp = parsed != NULL ? parsed : &own;
  chm__attrs attrs, *a = held != NULL ? held : &attrs;
  chm__role role;
  chm__buf b = {0}, changed = {0};
  wfinfo w;
  dest d;
  char(*kids)[CHM__ID] = NULL;
  char *reasoning = NULL, *det = NULL, iname[128];
  int rc, i, nchanged = 0, routed = 0;
  memset(&own, 0, sizeof own);
  memset(&attrs, 0, sizeof attrs);
  memset(&d, 0, sizeof d);
  if (result != NULL)
    *result = NULL;
  if (tok->version != version) {
    if (inter_name(t, tok->interaction_id, iname, sizeof iname) != CHM_OK)
      return chm__tk_dbrc(t);
    return chm__tk_err(t, CHM_CONFLICT,
                       "token %s is at version %lld, not "
                       "%lld: it changed since it was read "
                       "(now %s in '%s'); read it again",
                       tok->uow_id, (long long)tok->version, (long long)version,
                       tok->status, iname);
  }
  if ((rc = check_holder(t, tok, who, "submit")) != CHM_OK)
    return rc;
  if ((rc = chm__tk_role_by_id(t, tok->last_role_id, &role)) != CHM_OK)
    return rc;
  if (role.gateway && tok->lease_expires_at == CHM__NULL_INT)
    return chm__tk_err(t, CHM_STATE,
                       "token %s waits for its child workflow "
                       "(gateway role '%s'); it moves on when "
                       "the child token is finalized",
                       tok->uow_id, role.name);
  if (parsed == NULL &&
      (rc = chm__tk_parse_changes(t, changes_json, &own)) != CHM_OK)
    return rc;
  if ((rc = check_changes(t, tok, &role, cp)) != CHM_OK)
    goto done;
  if ((rc = wf_lookup(t, tok->workflow_id, &w)) != CHM_OK)
    goto done;
  if (held == NULL && (rc = chm__tk_attrs_load(t, tok->uow_id, a)) != CHM_OK)
    goto done;
  reasoning = cp->reasoning != NULL ? strdup(cp->reasoning)
                                    : chm__strdupf("submit by '%s' as '%s'",
                                                   who->name, role.name);
  if (reasoning == NULL)
    goto oom;
  if (chm__submit_is_plain(cp, &role)) {
    /* Route first, on the attributes as they will be: a plain submit that
    ** is refused has then written nothing (routing reads no table the
    ** writes below change). */
    chm__attrs after;
    memset(&after, 0, sizeof after);
    for (i = 0; i < a->n && rc == CHM_OK; i++)
      if (chm__attrs_set(&after, a->v[i].key, a->v[i].value,
                         a->v[i].attribute_id, a->v[i].version) != 0)
        rc = CHM_NOMEM;
    for (i = 0; i < cp->set.n && rc == CHM_OK; i++)
      if (chm__attrs_set(&after, cp->set.v[i].key, cp->set.v[i].value, "", 0) !=
          0)
        rc = CHM_NOMEM;
    if (rc == CHM_OK)
      rc = decide(t, tok, &after, w.name, &role, &d);
    chm__attrs_free(&after);
    if (rc == CHM_NOMEM)
      goto oom;
    if (rc != CHM_OK)
      goto done;
    routed = 1;
  }
  for (i = 0; i < cp->set.n && rc == CHM_OK; i++) {
    int ch = 0;
    rc = chm__tk_attr_put(t, tok->uow_id, a, cp->set.v[i].key,
                          cp->set.v[i].value, who->id, reasoning, NULL, &ch);
    if (ch) {
      chm__buf_add(&changed, nchanged++ ? "," : "");
      chm__buf_jstr(&changed, cp->set.v[i].key);
    }
  }
  if (rc != CHM_OK)
    goto done;
  for (i = 0; i < cp->teach.n && rc == CHM_OK; i++)
    rc = chm__tk_memory_put(t, role.id, who->id, cp->teach.v[i].key,
                            cp->teach.v[i].value);
  if (rc != CHM_OK)
    goto done;
  if (cp->teach.n > 0) {
    chm__logrow r;
    chm__buf tb = {0};
    chm__buf_add(&tb, "{\"keys\":[");
    for (i = 0; i < cp->teach.n; i++) {
      chm__buf_add(&tb, i ? "," : "");
      chm__buf_jstr(&tb, cp->teach.v[i].key);
    }
    chm__buf_add(&tb, "]}");
    if ((det = chm__buf_take(&tb)) == NULL)
      goto oom;
    memset(&r, 0, sizeof r);
    r.uow_id = tok->uow_id;
    r.actor_id = nz(who->id);
    r.role_id = role.id;
    r.interaction_id = tok->interaction_id;
    r.event = "TEACH";
    r.details = det;
    if ((rc = chm__tk_log(t, &r)) != CHM_OK)
      goto done;
    free(det);
    det = NULL;
  }
  chm__buf_add(&b, "{\"reasoning\":");
  chm__buf_jstr(&b, reasoning);
  chm__buf_add(&b, ",\"changed\":[");
  if (changed.p != NULL)
    chm__buf_add(&b, changed.p);
  chm__buf_add(&b, "]}");
  if ((det = chm__buf_take(&b)) == NULL)
    goto oom;

  if (cp->fail != NULL) {
    rc = chm__op_fail_to(t, tok, who->id, role.id, "FAILED", "EPSILON",
                         cp->fail, "FAIL", det);
  } else if (cp->give_up) {
    chm__move m;
    memset(&m, 0, sizeof m);
    m.event = "GIVE_UP";
    m.actor_id = who->id;
    m.role_id = role.id;
    m.details = det;
    m.lease = CHM__LEASE_CLEAR;
    rc = chm__tk_set_status(t, tok, "ARCHIVED", NULL, &m);
    if (rc == CHM_OK)
      rc = archive_descendants(t, tok, who);
    if (rc == CHM_OK && tok->parent_id[0] != '\0')
      rc = join_now(t, tok->parent_id, who);
    if (rc == CHM_OK && tok->return_uow_id[0] != '\0')
      rc = gateway_return(t, tok, who);
  } else if (cp->end) {
    rc = finalize(t, tok, who, role.id, "END", det);
  } else if (strcmp(role.type, "OMEGA") == 0) {
    rc = finalize(t, tok, who, role.id, "FINALIZE", det);
  } else {
    if (cp->nchildren > 0) {
      if ((kids = calloc((size_t)cp->nchildren, CHM__ID)) == NULL)
        goto oom;
      if ((rc = chm__tk_exec(t, CHM__Q_TOK_COUNTS, "siii", tok->uow_id,
                             (int64_t)cp->nchildren, (int64_t)0, t->now)) !=
          CHM_OK)
        goto done;
      for (i = 0; i < cp->nchildren && rc == CHM_OK; i++)
        rc = spawn_child(t, tok, a, &cp->children[i], who, &role, reasoning,
                         kids[i]);
      if (rc != CHM_OK)
        goto done;
      /* the counters changed the row: read it again */
      {
        char id[CHM__ID];
        chm__tk_cpy(id, sizeof id, tok->uow_id);
        if ((rc = chm__tk_load(t, id, tok)) != CHM_OK)
          goto done;
      }
    }
    if (routed || (rc = decide(t, tok, a, w.name, &role, &d)) == CHM_OK) {
      chm__move m;
      chm__buf db = {0};
      /* the routing details plus the submit's */
      chm__buf_addn(&db, d.details, strlen(d.details) - 1);
      chm__buf_add(&db, ",\"submit\":");
      chm__buf_add(&db, det);
      chm__buf_addf(&db, ",\"children\":%d}", cp->nchildren);
      free(d.details);
      if ((d.details = chm__buf_take(&db)) == NULL)
        goto oom;
      memset(&m, 0, sizeof m);
      m.event = "SUBMIT";
      m.actor_id = who->id;
      m.role_id = role.id;
      m.lease = CHM__LEASE_CLEAR;
      rc = move_to(t, tok, &d, m);
    }
  }
  if (rc != CHM_OK || result == NULL)
    goto done;
  if ((rc = inter_name(t, tok->interaction_id, iname, sizeof iname)) != CHM_OK)
    goto done;
  chm__buf_add(&b, "{\"uow_id\":");
  chm__buf_jstr(&b, tok->uow_id);
  chm__buf_add(&b, ",\"status\":");
  chm__buf_jstr(&b, tok->status);
  chm__buf_add(&b, ",\"interaction\":");
  chm__buf_jstr(&b, iname);
  if (tok->failure_reason != NULL && strcmp(tok->status, "FAILED") == 0) {
    chm__buf_add(&b, ",\"failure_reason\":");
    chm__buf_jstr(&b, tok->failure_reason);
  }
  chm__buf_addf(&b, ",\"version\":%lld,\"children\":[",
                (long long)tok->version);
  for (i = 0; i < cp->nchildren; i++) {
    chm__buf_add(&b, i ? "," : "");
    chm__buf_jstr(&b, kids[i]);
  }
  chm__buf_add(&b, "]}");
  if ((*result = chm__buf_take(&b)) == NULL)
    goto oom;
  goto done;
oom:
  rc = chm__tk_err(t, CHM_NOMEM, "out of memory");
done:
  chm__buf_free(&b);
  chm__buf_free(&changed);
  chm__changes_free(&own);
  chm__attrs_free(&attrs);
  dest_free(&d);
  free(kids);
  free(reasoning);
  free(det);
  if (rc != CHM_OK && result != NULL) {
    free(*result);
    *result = NULL;
  }
  return rc;
}

int chm_submit(chm_instance *inst, const char *uow_id, const char *actor,
               int64_t version, const char *changes_json, char **result_json) {
  chm__tk *t;
  chm__who who;
  chm__tok tok;
  int rc;
  if ((rc = chm__tk_open(inst, &t)) != CHM_OK)
    return rc;
  if (result_json != NULL)
    *result_json = NULL;
  if (uow_id == NULL || actor == NULL)
    return chm__tk_err(t, CHM_MISUSE,
                       "chm_submit: a token id and an actor "
                       "are required");
  memset(&tok, 0, sizeof tok);
  if ((rc = chm__tk_begin(t, 1)) != CHM_OK)
    return rc;
  if ((rc = chm__tk_who(t, actor, 1, &who)) == CHM_OK &&
      (rc = chm__tk_load(t, uow_id, &tok)) == CHM_OK)
    rc = chm__op_submit(t, &who, &tok, version, changes_json, NULL, NULL,
                        result_json);
  rc = finish(t, rc, 0);
  if (rc != CHM_OK && result_json != NULL && *result_json != NULL) {
    free(*result_json);
    *result_json = NULL;
  }
  chm__tok_clear(&tok);
  return rc;
}

/* ===================================================================== */
/* Kill switch and clarification                                          */
/* ===================================================================== */

static int pause_resume(chm_instance *inst, const char *uow_id,
                        const char *actor, int pause) {
  chm__tk *t;
  chm__who who;
  chm__tok tok;
  chm__move m;
  int rc;
  if ((rc = chm__tk_open(inst, &t)) != CHM_OK)
    return rc;
  if (uow_id == NULL)
    return chm__tk_err(t, CHM_MISUSE, "%s: a token id is required",
                       pause ? "chm_pause" : "chm_resume");
  memset(&tok, 0, sizeof tok);
  memset(&m, 0, sizeof m);
  if ((rc = chm__tk_begin(t, 1)) != CHM_OK)
    return rc;
  if ((rc = chm__tk_who(t, actor, actor != NULL, &who)) != CHM_OK ||
      (rc = chm__tk_load(t, uow_id, &tok)) != CHM_OK)
    goto out;
  m.actor_id = who.id;
  if (pause) {
    if (strcmp(tok.status, "PAUSED") == 0 ||
        strcmp(tok.status, "FINALIZED") == 0 ||
        strcmp(tok.status, "ARCHIVED") == 0) {
      rc = chm__tk_err(t, CHM_STATE,
                       "token %s is %s; pause needs a live "
                       "token (not PAUSED, FINALIZED or "
                       "ARCHIVED)",
                       tok.uow_id, tok.status);
      goto out;
    }
    m.event = "PAUSE";
    m.lease = CHM__LEASE_KEEP;
    rc = chm__tk_set_status(t, &tok, "PAUSED", NULL, &m);
  } else {
    char back[20];
    if (strcmp(tok.status, "PAUSED") != 0) {
      rc = chm__tk_err(t, CHM_STATE, "token %s is %s; resume needs PAUSED",
                       tok.uow_id, tok.status);
      goto out;
    }
    chm__tk_cpy(back, sizeof back,
                tok.paused_from[0] ? tok.paused_from : "PENDING");
    m.event = "RESUME";
    m.lease = CHM__LEASE_RENEW;
    rc = chm__tk_set_status(t, &tok, back, NULL, &m);
    if (rc == CHM_OK)
      rc = gateway_resume(t, &tok, &who);
  }
out:
  rc = finish(t, rc, 0);
  chm__tok_clear(&tok);
  return rc;
}

int chm_pause(chm_instance *inst, const char *uow_id, const char *actor) {
  return pause_resume(inst, uow_id, actor, 1);
}

int chm_resume(chm_instance *inst, const char *uow_id, const char *actor) {
  return pause_resume(inst, uow_id, actor, 0);
}

static int instance_switch(chm_instance *inst, int pause) {
  chm__tk *t;
  chm__logrow r;
  char *det = NULL;
  const char *to = pause ? "PAUSED" : "ACTIVE";
  int rc;
  if ((rc = chm__tk_open(inst, &t)) != CHM_OK)
    return rc;
  if ((rc = chm__tk_begin(t, 2)) != CHM_OK)
    return rc;
  if (strcmp(t->instance_status, to) == 0) {
    rc = chm__tk_err(t, CHM_STATE, "instance '%s' is already %s",
                     t->instance_name, to);
    goto out;
  }
  if (strcmp(t->instance_status, "ARCHIVED") == 0) {
    rc = chm__tk_err(t, CHM_STATE,
                     "instance '%s' is ARCHIVED; it cannot be "
                     "%s",
                     t->instance_name, pause ? "paused" : "resumed");
    goto out;
  }
  if ((rc = chm__tk_exec(t, CHM__Q_CTX_STATUS, "ss", t->instance_id, to)) !=
      CHM_OK)
    goto out;
  det = reason_json("instance", t->instance_name);
  memset(&r, 0, sizeof r);
  r.from_status = t->instance_status;
  r.to_status = to;
  r.event = pause ? "INSTANCE_PAUSE" : "INSTANCE_RESUME";
  r.details = det;
  rc = det == NULL ? chm__tk_err(t, CHM_NOMEM, "out of memory")
                   : chm__tk_log(t, &r);
out:
  rc = finish(t, rc, 0);
  free(det);
  return rc;
}

int chm_instance_pause(chm_instance *inst) { return instance_switch(inst, 1); }

int chm_instance_resume(chm_instance *inst) { return instance_switch(inst, 0); }

int chm_clarify(chm_instance *inst, const char *uow_id, const char *actor,
                const char *text) {
  chm__tk *t;
  chm__who who;
  chm__tok tok;
  chm__attrs attrs;
  chm__buf b = {0};
  chm__move m;
  char *value = NULL, *raw = NULL, *reason = NULL;
  int rc;
  if ((rc = chm__tk_open(inst, &t)) != CHM_OK)
    return rc;
  if (uow_id == NULL || text == NULL)
    return chm__tk_err(t, CHM_MISUSE,
                       "chm_clarify: a token id and a text "
                       "are required");
  memset(&tok, 0, sizeof tok);
  memset(&attrs, 0, sizeof attrs);
  chm__buf_jstr(&b, text);
  if ((raw = chm__buf_take(&b)) == NULL)
    return chm__tk_err(t, CHM_NOMEM, "out of memory");
  if ((rc = chm__tk_canon(t, raw, "the clarification", &value)) != CHM_OK) {
    free(raw);
    return rc;
  }
  if ((rc = chm__tk_begin(t, 1)) != CHM_OK)
    goto out;
  if ((rc = chm__tk_who(t, actor, actor != NULL, &who)) != CHM_OK ||
      (rc = chm__tk_load(t, uow_id, &tok)) != CHM_OK)
    goto fin;
  if (strcmp(tok.status, "ZOMBIED_SOFT") != 0) {
    rc = chm__tk_err(t, CHM_STATE,
                     "token %s is %s; clarify needs "
                     "ZOMBIED_SOFT",
                     tok.uow_id, tok.status);
    goto fin;
  }
  if ((reason = chm__strdupf("clarification by '%s'", who.name)) == NULL) {
    rc = chm__tk_err(t, CHM_NOMEM, "out of memory");
    goto fin;
  }
  if ((rc = chm__tk_attrs_load(t, tok.uow_id, &attrs)) != CHM_OK ||
      (rc = chm__tk_attr_put(t, tok.uow_id, &attrs, "clarification", value,
                             who.id, reason, NULL, NULL)) != CHM_OK)
    goto fin;
  memset(&m, 0, sizeof m);
  m.event = "CLARIFY";
  m.actor_id = who.id;
  m.lease = CHM__LEASE_CLEAR;
  m.checkout = -1;
  rc = chm__tk_set_status(t, &tok, "PENDING", NULL, &m);
fin:
  rc = finish(t, rc, 0);
out:
  chm__tok_clear(&tok);
  chm__attrs_free(&attrs);
  free(raw);
  free(value);
  free(reason);
  return rc;
}
