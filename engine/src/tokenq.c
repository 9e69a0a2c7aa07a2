/*
** tokenq.c — what reads the token engine's tables without moving a token:
** the queries (token, history, attributes, queues, token lists, built as
** JSON by SQLite's json functions in one statement each), the memory
** operations (set, toxic, decay) and chm_verify, which walks the
** hash-chained Interaction_Logs and names the first row that was altered.
** Queries and verify also work while the instance is paused.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "token_int.h"

static const char *nz(const char *s) { return s != NULL && *s ? s : NULL; }

/* ===================================================================== */
/* Queries                                                                */
/* ===================================================================== */

/* query(inst, q, id, need_token, &json): one JSON-producing statement in
** a read transaction, bound to id when it takes a parameter. need_token:
** id must name a token. */
static int query(chm_instance *inst, int q, const char *id, int need_token,
                 char **json) {
  chm__tk *t;
  chm__tok tok;
  int rc;
  if ((rc = chm__tk_open(inst, &t)) != CHM_OK)
    return rc;
  if (json == NULL || (need_token && id == NULL))
    return chm__tk_err(t, CHM_MISUSE, "missing argument");
  *json = NULL;
  memset(&tok, 0, sizeof tok);
  if ((rc = chm__tk_begin(t, 0)) != CHM_OK)
    return rc;
  if (need_token)
    rc = chm__tk_load(t, id, &tok);
  if (rc == CHM_OK)
    rc = q == CHM__Q_QUEUES ? chm__tk_one_text(t, q, json, "")
                            : chm__tk_one_text(t, q, json, "s", id);
  if (rc == CHM_OK && *json == NULL)
    rc = chm__tk_err(t, CHM_NOTFOUND, "no token '%s' in instance '%s'",
                     id ? id : "?", t->instance_name);
  chm__tk_rollback(t);
  chm__tok_clear(&tok);
  if (rc != CHM_OK) {
    free(*json);
    *json = NULL;
  }
  return rc;
}

int chm_token_get(chm_instance *inst, const char *uow_id, char **json) {
  return query(inst, CHM__Q_TOKEN_GET, uow_id, 1, json);
}

int chm_token_history(chm_instance *inst, const char *uow_id, char **json) {
  return query(inst, CHM__Q_TOKEN_HISTORY, uow_id, 1, json);
}

int chm_token_attributes(chm_instance *inst, const char *uow_id, char **json) {
  return query(inst, CHM__Q_TOKEN_ATTRIBUTES, uow_id, 1, json);
}

int chm_queues(chm_instance *inst, char **json) {
  return query(inst, CHM__Q_QUEUES, NULL, 0, json);
}

static const char *const statuses[] = {
    "PENDING",    "ACTIVE",    "COMPLETED",        "FAILED",
    "REMEDIATED", "TIMEOUT",   "PENDING_APPROVAL", "ZOMBIED_SOFT",
    "PAUSED",     "FINALIZED", "ARCHIVED",         NULL};

int chm_tokens(chm_instance *inst, const char *status, char **json) {
  chm__tk *t;
  int rc, i;
  if (status != NULL) {
    if ((rc = chm__tk_open(inst, &t)) != CHM_OK)
      return rc;
    for (i = 0; statuses[i] != NULL; i++)
      if (strcmp(statuses[i], status) == 0)
        break;
    if (statuses[i] == NULL) {
      if (json != NULL)
        *json = NULL;
      return chm__tk_err(t, CHM_INVALID,
                         "unknown token status '%s' (one of "
                         "PENDING, ACTIVE, COMPLETED, FAILED, "
                         "REMEDIATED, TIMEOUT, "
                         "PENDING_APPROVAL, ZOMBIED_SOFT, "
                         "PAUSED, FINALIZED, ARCHIVED)",
                         status);
    }
  }
  return query(inst, CHM__Q_TOKENS, status, 0, json);
}

/* ===================================================================== */
/* Memory                                                                 */
/* ===================================================================== */

/* Logs a memory event (no token). */
static int log_memory(chm__tk *t, const char *event, const char *role_id,
                      const char *actor_id, const char *details) {
  chm__logrow r;
  memset(&r, 0, sizeof r);
  r.actor_id = nz(actor_id);
  r.role_id = role_id;
  r.event = event;
  r.details = details;
  return chm__tk_log(t, &r);
}

int chm_memory_set(chm_instance *inst, const char *role, const char *actor,
                   const char *key, const char *value_json) {
  chm__tk *t;
  chm__who who;
  chm__role r;
  chm__buf b = {0};
  char *value = NULL, *det = NULL;
  int rc;
  if ((rc = chm__tk_open(inst, &t)) != CHM_OK)
    return rc;
  if (role == NULL || key == NULL || *key == '\0' || value_json == NULL)
    return chm__tk_err(t, CHM_MISUSE,
                       "chm_memory_set: a role, a non-empty "
                       "key and a JSON value are required");
  if ((rc = chm__tk_canon(t, value_json, "the memory value", &value)) != CHM_OK)
    return rc;
  memset(&who, 0, sizeof who);
  if ((rc = chm__tk_begin(t, 1)) != CHM_OK)
    goto out;
  if (actor != NULL && (rc = chm__tk_who(t, actor, 1, &who)) != CHM_OK)
    goto fin;
  if ((rc = chm__tk_role(t, role, who.id, &r)) != CHM_OK)
    goto fin;
  if ((rc = chm__tk_memory_put(t, r.id, who.id, key, value)) != CHM_OK)
    goto fin;
  chm__buf_add(&b, "{\"key\":");
  chm__buf_jstr(&b, key);
  chm__buf_add(&b, ",\"scope\":");
  chm__buf_jstr(&b, actor != NULL ? "playbook" : "blueprint");
  chm__buf_add(&b, "}");
  if ((det = chm__buf_take(&b)) == NULL)
    rc = chm__tk_err(t, CHM_NOMEM, "out of memory");
  else
    rc = log_memory(t, "MEMORY_SET", r.id, who.id, det);
fin:
  if (rc == CHM_OK)
    rc = chm__tk_commit(t);
  else
    chm__tk_rollback(t);
out:
  free(value);
  free(det);
  return rc;
}

int chm_memory_mark_toxic(chm_instance *inst, const char *memory_id) {
  chm__tk *t;
  sqlite3_stmt *st;
  char role[CHM__ID], actor[CHM__ID], *det = NULL;
  chm__buf b = {0};
  int rc;
  if ((rc = chm__tk_open(inst, &t)) != CHM_OK)
    return rc;
  if (memory_id == NULL)
    return chm__tk_err(t, CHM_MISUSE, "chm_memory_mark_toxic: no memory id");
  if ((rc = chm__tk_begin(t, 1)) != CHM_OK)
    return rc;
  if ((st = chm__tk_q(t, CHM__Q_MEMORY_ROW, "s", memory_id)) == NULL) {
    rc = chm__tk_dbrc(t);
    goto fin;
  }
  rc = chm__tk_step(t, CHM__Q_MEMORY_ROW, st);
  if (rc < 0) {
    rc = chm__tk_dbrc(t);
    goto fin;
  }
  if (rc != SQLITE_ROW) {
    chm__tk_reset(st);
    rc = chm__tk_err(t, CHM_NOTFOUND, "no memory row '%s' in instance '%s'",
                     memory_id, t->instance_name);
    goto fin;
  }
  chm__tk_cpy(role, sizeof role, chm__tk_col(st, 0));
  chm__tk_cpy(actor, sizeof actor, chm__tk_col(st, 1));
  chm__buf_add(&b, "{\"memory_id\":");
  chm__buf_jstr(&b, memory_id);
  chm__buf_add(&b, ",\"key\":");
  chm__buf_jstr(&b, chm__tk_col(st, 2));
  chm__buf_add(&b, "}");
  chm__tk_reset(st);
  if ((det = chm__buf_take(&b)) == NULL) {
    rc = chm__tk_err(t, CHM_NOMEM, "out of memory");
    goto fin;
  }
  if ((rc = chm__tk_exec(t, CHM__Q_MEMORY_TOXIC, "s", memory_id)) == CHM_OK)
    rc = log_memory(t, "MEMORY_TOXIC", role, actor, det);
fin:
  if (rc == CHM_OK)
    rc = chm__tk_commit(t);
  else
    chm__tk_rollback(t);
  free(det);
  return rc;
}

int chm_memory_decay(chm_instance *inst, int days, int *removed) {
  chm__tk *t;
  char cutoff[32], det[96];
  int rc, n = 0;
  if (removed != NULL)
    *removed = 0;
  if ((rc = chm__tk_open(inst, &t)) != CHM_OK)
    return rc;
  if (days < 0)
    return chm__tk_err(t, CHM_MISUSE,
                       "chm_memory_decay: days must be >= 0, "
                       "not %d",
                       days);
  if ((rc = chm__tk_begin(t, 1)) != CHM_OK)
    return rc;
  chm__tk_iso(t->now - (int64_t)days * 86400000, cutoff);
  rc = chm__tk_exec(t, CHM__Q_MEMORY_DECAY, "s", cutoff);
  if (rc == CHM_OK && (n = sqlite3_changes(t->c->db)) > 0) {
    snprintf(det, sizeof det, "{\"days\":%d,\"removed\":%d}", days, n);
    rc = log_memory(t, "MEMORY_DECAY", NULL, NULL, det);
  }
  if (rc == CHM_OK)
    rc = chm__tk_commit(t);
  else
    chm__tk_rollback(t);
  if (rc == CHM_OK && removed != NULL)
    *removed = n;
  return rc;
}

/* ===================================================================== */
/* Verify the hash chain                                                  */
/* ===================================================================== */

int chm_verify(chm_instance *inst, char **report_json) {
  chm__tk *t;
  sqlite3_stmt *st;
  char prev[65], hash[65], msg[256];
  int64_t rows = 0, bad = 0, bad_prev = 0, head = 0;
  int rc, i;
  if ((rc = chm__tk_open(inst, &t)) != CHM_OK)
    return rc;
  if (report_json != NULL)
    *report_json = NULL;
  if ((rc = chm__tk_begin(t, 0)) != CHM_OK)
    return rc;
  memset(prev, '0', 64);
  prev[64] = '\0';
  msg[0] = '\0';
  if ((st = chm__tk_q(t, CHM__Q_LOG_ALL, "")) == NULL) {
    chm__tk_rollback(t);
    return chm__tk_dbrc(t);
  }
  while ((rc = chm__tk_step(t, CHM__Q_LOG_ALL, st)) == SQLITE_ROW) {
    const char *f[13], *stored_prev = chm__tk_col(st, 13),
                       *stored = chm__tk_col(st, 14);
    rows++;
    for (i = 0; i < 13; i++)
      f[i] = chm__tk_col(st, i);
    if (bad == 0) {
      if (stored_prev == NULL || strcmp(stored_prev, prev) != 0) {
        bad = sqlite3_column_int64(st, 0);
        bad_prev = 1;
      } else if (chm__tk_row_hash(prev, f, 13, hash) != 0) {
        chm__tk_reset(st);
        chm__tk_rollback(t);
        return chm__tk_err(t, CHM_NOMEM, "cannot hash (libcrypto)");
      } else if (stored == NULL || strcmp(stored, hash) != 0) {
        bad = sqlite3_column_int64(st, 0);
        snprintf(msg, sizeof msg, "stored %.12s…, computed %.12s…",
                 stored ? stored : "NULL", hash);
      }
    }
    chm__tk_cpy(prev, sizeof prev, stored);
    head = sqlite3_column_int64(st, 0);
  }
  if (rc < 0) {
    chm__tk_rollback(t);
    return chm__tk_dbrc(t);
  }
  chm__tk_reset(st);
  chm__tk_rollback(t);
  if (report_json != NULL) {
    /* the head (newest row and its stored hash): nothing in the store
    ** anchors the tail, so deleting the newest rows leaves a chain that
    ** verifies; an operator keeps the head elsewhere and compares */
    char hd[160], first_bad[32];
    if (rows == 0)
      snprintf(hd, sizeof hd, "\"head_log_id\":null,\"head_hash\":null");
    else
      snprintf(hd, sizeof hd, "\"head_log_id\":%lld,\"head_hash\":\"%s\"",
               (long long)head, prev);
    snprintf(first_bad, sizeof first_bad, bad ? "%lld" : "null",
             (long long)bad);
    *report_json = chm__strdupf("{\"rows\":%lld,\"ok\":%s,\"first_bad\":%s,"
                                "%s}",
                                (long long)rows, bad ? "false" : "true",
                                first_bad, hd);
    if (*report_json == NULL)
      return chm__tk_err(t, CHM_NOMEM, "out of memory");
  }
  if (bad == 0)
    return CHM_OK;
  if (bad_prev)
    return chm__tk_err(t, CHM_CORRUPT,
                       "Interaction_Logs row %lld does not "
                       "match its hash (its prev_hash is not "
                       "the hash of the row before it)",
                       (long long)bad);
  return chm__tk_err(t, CHM_CORRUPT,
                     "Interaction_Logs row %lld does not "
                     "match its hash (%s)",
                     (long long)bad, msg);
}
