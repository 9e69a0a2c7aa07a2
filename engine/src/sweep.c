/*
** sweep.c — the token engine's time-driven and automatic work: the zombie
** and stale sweeps (one transaction per token, tokens go to Chronos) and
** chm_run, the loop that acts as the SYSTEM actor "system" on every role
** assigned to it: step functions through judge.step, recursive gateways,
** pass-through submits. Batch mode groups operations into one commit with
** a SAVEPOINT per operation so one failure rolls back only itself.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "token_int.h"

/* ===================================================================== */
/* Sweeps                                                                 */
/* ===================================================================== */

/* sweep_one(t, q, zombie, sys, ids, &n) -> CHM_OK (moved one), CHM_NOTFOUND
** (nothing left) or an error: one token, one transaction. */
static int sweep_one(chm__tk *t, int q, int zombie, chm__buf *ids, int *n) {
  chm__tok tok;
  chm__who sys;
  char id[CHM__ID], holder[128], ts[32], iname[128];
  char *reason = NULL, *det = NULL;
  chm__buf b = {0};
  sqlite3_stmt *st;
  int rc;
  memset(&tok, 0, sizeof tok);
  if ((rc = chm__tk_begin(t, 1)) != CHM_OK)
    return rc;
  if ((st = chm__tk_q(t, q, "i", t->now)) == NULL) {
    rc = chm__tk_dbrc(t);
    goto out;
  }
  rc = chm__tk_step(t, q, st);
  if (rc < 0) {
    rc = chm__tk_dbrc(t);
    goto out;
  }
  if (rc != SQLITE_ROW) {
    chm__tk_reset(st);
    rc = CHM_NOTFOUND;
    goto out;
  }
  chm__tk_cpy(id, sizeof id, chm__tk_col(st, 0));
  chm__tk_reset(st);
  if ((rc = chm__tk_who(t, NULL, 0, &sys)) != CHM_OK ||
      (rc = chm__tk_load(t, id, &tok)) != CHM_OK)
    goto out;
  if (zombie) {
    if ((rc = chm__tk_name(t, CHM__Q_ACTOR_NAME, tok.lease_holder, holder,
                           sizeof holder)) != CHM_OK)
      goto out;
    chm__tk_iso(tok.lease_expires_at, ts);
    reason = chm__strdupf("lease of '%s' expired at %s without a heartbeat",
                          holder, ts);
    chm__buf_add(&b, "{\"holder\":");
    chm__buf_jstr(&b, holder);
    chm__buf_add(&b, ",\"expired_at\":");
    chm__buf_jstr(&b, ts);
    chm__buf_add(&b, "}");
  } else {
    if ((rc = chm__tk_inter_name(t, tok.interaction_id, iname, sizeof iname)) !=
        CHM_OK)
      goto out;
    chm__tk_iso(tok.entered_at, ts);
    reason = chm__strdupf("stale: %s in '%s' since %s, longer than its "
                          "stale_token_limit_seconds",
                          tok.status, iname, ts);
    chm__buf_add(&b, "{\"waited_in\":");
    chm__buf_jstr(&b, iname);
    chm__buf_add(&b, ",\"since\":");
    chm__buf_jstr(&b, ts);
    chm__buf_add(&b, "}");
  }
  det = chm__buf_take(&b);
  if (reason == NULL || det == NULL) {
    rc = chm__tk_err(t, CHM_NOMEM, "out of memory");
    goto out;
  }
  rc = chm__op_fail_to(t, &tok, sys.id, NULL, zombie ? "FAILED" : "TIMEOUT",
                       "TAU", reason, zombie ? "ZOMBIE_SWEEP" : "STALE_SWEEP",
                       det);
out:
  if (rc == CHM_OK) {
    rc = chm__tk_commit(t);
    if (rc == CHM_OK) {
      chm__buf_add(ids, (*n)++ ? "," : "");
      chm__buf_jstr(ids, id);
    }
  } else if (t->in_tx) {
    chm__tk_rollback(t);
  }
  chm__buf_free(&b);
  chm__tok_clear(&tok);
  free(reason);
  free(det);
  return rc;
}

int chm_sweep(chm_instance *inst, char **report_json) {
  chm__tk *t;
  chm__buf zids = {0}, sids = {0};
  int nz = 0, ns = 0, rc;
  if ((rc = chm__tk_open(inst, &t)) != CHM_OK)
    return rc;
  if (report_json != NULL)
    *report_json = NULL;
  while ((rc = sweep_one(t, CHM__Q_ZOMBIE_NEXT, 1, &zids, &nz)) == CHM_OK) {
  }
  if (rc == CHM_NOTFOUND)
    while ((rc = sweep_one(t, CHM__Q_STALE_NEXT, 0, &sids, &ns)) == CHM_OK) {
    }
  if (rc == CHM_NOTFOUND)
    rc = CHM_OK;
  if (rc == CHM_OK && report_json != NULL) {
    *report_json =
        chm__strdupf("{\"zombies\":%d,\"stale\":%d,\"zombie_ids\":"
                     "[%s],\"stale_ids\":[%s]}",
                     nz, ns, zids.p ? zids.p : "", sids.p ? sids.p : "");
    if (*report_json == NULL || zids.oom || sids.oom) {
      free(*report_json);
      *report_json = NULL;
      rc = chm__tk_err(t, CHM_NOMEM, "out of memory");
    }
  }
  chm__buf_free(&zids);
  chm__buf_free(&sids);
  return rc;
}

/* ===================================================================== */
/* The run loop                                                           */
/* ===================================================================== */

enum { OUT_NONE, OUT_MOVED, OUT_FAILED };

/* Submits tok with changes (JSON, or parsed) inside its own savepoint; a
** refused submit (bad changes from a step, a routing that cannot place
** the token) rolls back and sends the token FAILED to the Ate with the
** reason. A plain submit needs no savepoint: refused, it wrote nothing;
** failing on the database, the caller rolls the operation back. */
static int submit_or_fail(chm__tk *t, const chm__who *who, chm__tok *tok,
                          chm__attrs *attrs, const chm__role *role,
                          const char *changes, const chm__changes *parsed,
                          int *outcome) {
  chm__tk_save sp;
  char id[CHM__ID], *why = NULL;
  int rc, guard = parsed == NULL || !chm__submit_is_plain(parsed, role);
  if (guard && (rc = chm__tk_savepoint(t, &sp)) != CHM_OK)
    return rc;
  rc = chm__op_submit(t, who, tok, tok->version, changes, parsed, attrs, NULL);
  if (rc == CHM_OK) {
    if (guard && (rc = chm__tk_release(t)) != CHM_OK)
      return rc;
    *outcome = strcmp(tok->status, "FAILED") == 0 ? OUT_FAILED : OUT_MOVED;
    return CHM_OK;
  }
  if (guard)
    chm__tk_rollback_to(t, &sp);
  if (rc == CHM_DB || rc == CHM_CORRUPT || rc == CHM_IO || rc == CHM_NOMEM || rc == CHM_MISUSE)
    return rc;
  why = chm__strdupf("submit after the step of role '%s' was refused: %s",
                     role->name, chm_instance_errmsg(t->inst));
  chm__tk_cpy(id, sizeof id, tok->uow_id);
  if (why == NULL)
    return chm__tk_err(t, CHM_NOMEM, "out of memory");
  if ((rc = chm__tk_load(t, id, tok)) == CHM_OK)
    rc = chm__op_fail_to(t, tok, who->id, role->id, "FAILED", "EPSILON", why,
                         "STEP_ERROR", NULL);
  free(why);
  *outcome = OUT_FAILED;
  return rc;
}

/* One operation of the run: checkout on role_id as system, then the
** step, the gateway start or a plain submit. CHM_NOTFOUND = no work.
** *held is 1 when the assignment was found ACTIVE earlier in the open
** transaction (nothing in it can revoke one); run_one sets it. */
static int run_one(chm__tk *t, const chm__who *who, const char *role_id,
                   unsigned char *held, int *outcome) {
  chm__role role;
  chm__tok tok;
  chm__attrs attrs;
  chm__step s;
  char *memory = NULL, *det = NULL, *why = NULL;
  int rc, wrote = 0;
  memset(&tok, 0, sizeof tok);
  memset(&attrs, 0, sizeof attrs);
  memset(&s, 0, sizeof s);
  *outcome = OUT_NONE;
  if ((rc = chm__tk_role_by_id(t, role_id, &role)) != CHM_OK)
    return rc;
  rc = *held ? CHM_OK : chm__tk_assigned(t, who->id, who->name, &role);
  if (rc == CHM_DENIED)
    return CHM_NOTFOUND; /* revoked since the start */
  if (rc != CHM_OK)
    return rc;
  *held = 1;
  /* the checkout hands over the token's current attributes: nothing
  ** changes them before the submit, which keeps them up to date */
  rc = chm__op_checkout(t, who, &role, NULL, &tok, &attrs, NULL, &wrote);
  if (rc != CHM_OK)
    goto done;
  if (role.gateway) {
    *outcome = OUT_MOVED;
    goto done;
  }
  if (!role.has_step) { /* no changes: what "{}" parses to */
    chm__changes none;
    memset(&none, 0, sizeof none);
    rc = submit_or_fail(t, who, &tok, &attrs, &role, NULL, &none, outcome);
    goto done;
  }
  {
    chm__view v;
    char wf[128];
    chm__tk_cpy(wf, sizeof wf, role.workflow);
    if ((rc = chm__tk_memory(t, role.id, who->id, &memory)) != CHM_OK)
      goto done;
    v.tok = &tok;
    v.workflow = wf;
    v.attrs = &attrs;
    if ((rc = chm__tk_step_fn(t, role.id, &v, who->name, memory, &s)) != CHM_OK)
      goto done;
  }
  if (s.rc == CHM_OK) {
    rc = submit_or_fail(t, who, &tok, &attrs, &role, s.changes,
                        s.has_parsed ? &s.parsed : NULL, outcome);
    goto done;
  }
  if (chm__sandbox_interrupted(t->c->L)) {
    /* the operator stopped the run, not the step: undo this operation
    ** (the caller rolls it back) instead of failing the token */
    rc = chm__tk_err(t, CHM_BUDGET, "run interrupted during the step of "
                     "role '%s'; token %s is where it was",
                     role.name, tok.uow_id);
    goto done;
  }
  why = chm__strdupf("step of role '%s' failed (%s): %s", role.name,
                     chm_errname(s.rc), s.error ? s.error : "?");
  {
    chm__buf b = {0};
    chm__buf_add(&b, "{\"code\":");
    chm__buf_jstr(&b, chm_errname(s.rc));
    chm__buf_add(&b, ",\"error\":");
    chm__buf_jstr(&b, s.error);
    chm__buf_add(&b, "}");
    det = chm__buf_take(&b);
  }
  if (why == NULL || det == NULL) {
    rc = chm__tk_err(t, CHM_NOMEM, "out of memory");
    goto done;
  }
  rc = chm__op_fail_to(t, &tok, who->id, role.id, "FAILED", "EPSILON", why,
                       "STEP_ERROR", det);
  *outcome = OUT_FAILED;
done:
  if (rc == CHM_NOTFOUND && wrote)
    *outcome = OUT_NONE;
  chm__tok_clear(&tok);
  chm__attrs_free(&attrs);
  chm__step_free(&s);
  free(memory);
  free(det);
  free(why);
  return rc;
}

/* Reads the roles system runs (ids, in order). */
static int run_roles(chm__tk *t, const chm__who *who, char (**ids)[CHM__ID],
                     int *n) {
  sqlite3_stmt *st = chm__tk_q(t, CHM__Q_RUN_ROLES, "s", who->id);
  int cap = 0, rc;
  *ids = NULL;
  *n = 0;
  if (st == NULL)
    return chm__tk_dbrc(t);
  while ((rc = chm__tk_step(t, CHM__Q_RUN_ROLES, st)) == SQLITE_ROW) {
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
  return CHM_OK;
}

int chm_run(chm_instance *inst, const chm_run_opts *opts, char **report_json) {
  chm__tk *t;
  chm__who sys;
  char(*roles)[CHM__ID] = NULL;
  unsigned char *held = NULL; /* per role: assignment seen in this tx */
  int nroles = 0, batch, max_steps, rc, i, pending = 0;
  long steps = 0, moves = 0, failed = 0, commits = 0;
  if ((rc = chm__tk_open(inst, &t)) != CHM_OK)
    return rc;
  if (report_json != NULL)
    *report_json = NULL;
  chm__sandbox_clear_interrupt(t->c->L); /* a stale Ctrl-C does not count */
  batch = opts != NULL && opts->batch > 0 ? opts->batch : 1;
  max_steps = opts != NULL && opts->max_steps > 0 ? opts->max_steps : 0;
  if ((rc = chm__tk_begin(t, 1)) != CHM_OK)
    return rc;
  rc = chm__tk_who(t, "system", 1, &sys);
  if (rc == CHM_NOTFOUND)
    rc = chm__tk_err(t, CHM_NOTFOUND,
                     "instance '%s' has no actor 'system': "
                     "run acts as it",
                     t->instance_name);
  if (rc == CHM_OK)
    rc = run_roles(t, &sys, &roles, &nroles);
  chm__tk_rollback(t);
  if (rc == CHM_OK && (held = calloc((size_t)nroles + 1, 1)) == NULL)
    rc = chm__tk_err(t, CHM_NOMEM, "out of memory");
  if (rc != CHM_OK)
    goto out;
  for (;;) {
    int any = 0;
    for (i = 0; i < nroles; i++) {
      chm__tk_save sp;
      int outcome, first = 0;
      if (max_steps && steps >= max_steps)
        goto stop;
      if (chm__sandbox_interrupted(t->c->L)) { /* Ctrl-C: stop between ops */
        rc = chm__tk_err(t, CHM_BUDGET, "run interrupted after %ld steps; "
                         "run again to go on", steps);
        goto stop;
      }
      if (!t->in_tx) {
        if ((rc = chm__tk_begin(t, 1)) != CHM_OK)
          goto out;
        pending = 0;
        first = 1;
        memset(held, 0, (size_t)nroles);
      }
      chm__tk_op_start(t);
      /* The first operation of a transaction needs no savepoint: rolling
      ** the transaction back undoes exactly it (with batch 1, every
      ** operation that follows a commit). */
      if (!first && (rc = chm__tk_savepoint(t, &sp)) != CHM_OK)
        goto stop;
      rc = run_one(t, &sys, roles[i], &held[i], &outcome);
      if (rc == CHM_OK || rc == CHM_NOTFOUND) {
        if (!first && chm__tk_release(t) != CHM_OK) {
          rc = chm__tk_dbrc(t);
          goto stop;
        }
      } else {
        if (first)
          chm__tk_rollback(t);
        else
          chm__tk_rollback_to(t, &sp);
        goto stop;
      }
      if (rc == CHM_OK) {
        any = 1;
        steps++;
        if (outcome == OUT_FAILED)
          failed++;
        else
          moves++;
        if (++pending >= batch) {
          if ((rc = chm__tk_commit(t)) != CHM_OK)
            goto out;
          commits++;
        }
      }
      rc = CHM_OK;
    }
    if (!any)
      break;
  }
stop:
  if (t->in_tx) {
    int keep = rc; /* commit what succeeded before a failing op */
    if (chm__tk_commit(t) == CHM_OK && pending > 0)
      commits++;
    rc = keep;
  }
out:
  free(roles);
  free(held);
  if (rc == CHM_OK) { /* forget the "no work" messages of the last pass */
    free(t->c->errmsg);
    t->c->errmsg = NULL;
  }
  if (report_json != NULL && (rc == CHM_OK || steps > 0)) {
    *report_json = chm__strdupf("{\"steps\":%ld,\"moves\":%ld,\"failed\":%ld,"
                                "\"commits\":%ld}",
                                steps, moves, failed, commits);
    if (*report_json == NULL && rc == CHM_OK)
      rc = chm__tk_err(t, CHM_NOMEM, "out of memory");
  }
  return rc;
}
