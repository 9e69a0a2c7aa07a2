/*
** token_int.h — the seams between the files of the token engine:
** token.c (per-handle state, statements, transactions, the log writer,
** set_status, attributes, lookups), tokenlua.c (the bridge to trusted Lua:
** views, judge.gate/route/step, parsing changes, skills), tokenops.c (the
** operations), tokenq.c (queries, memory, verify) and sweep.c (sweeps and
** the run loop). Nothing here is used outside those files.
*/
#ifndef CHM_TOKEN_INT_H
#define CHM_TOKEN_INT_H

#include <stdarg.h>

#include "chm_int.h"
#include "chm_int.h"

#define CHM__ID 37              /* a UUID and its NUL */
#define CHM__NULL_INT INT64_MIN /* binds as SQL NULL in chm__tk_bind */

/* ===================================================================== */
/* Growable text buffer (token.c)                                         */
/* ===================================================================== */

typedef struct chm__buf {
  char *p;    /* text, NUL-terminated (malloc'ed), NULL before first add */
  size_t n;   /* length */
  size_t cap; /* allocated bytes */
  int oom;    /* set when an allocation failed: the text is incomplete */
} chm__buf;

void chm__buf_add(chm__buf *b, const char *s);
void chm__buf_addn(chm__buf *b, const char *s, size_t n);
void chm__buf_addf(chm__buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* chm__buf_jstr(b, s): s as a JSON string, or null when s is NULL. */
void chm__buf_jstr(chm__buf *b, const char *s);
/* chm__buf_take(b) -> the malloc'ed text ("" when empty), NULL after an
** allocation failure; b is emptied either way. */
char *chm__buf_take(chm__buf *b);
void chm__buf_free(chm__buf *b);

/* ===================================================================== */
/* Statements: one named list, prepared once per connection (token.c)     */
/* ===================================================================== */

/* XX(name, sql). Reading a token always uses TOK_COLS in this order. */
#define CHM__TOK_COLS                                                          \
  "uow_id, local_workflow_id, parent_id, current_interaction_id, status, "     \
  "child_count, finished_child_count, version, lease_holder_actor_id, "        \
  "lease_expires_at, entered_at, queue_seq, checkout_count, "                  \
  "max_interactions, paused_from_status, last_role_id, failure_reason, "       \
  "return_uow_id, context_json, created_at"

#define CHM__ROLE_COLS                                                         \
  "r.role_id, r.local_workflow_id, r.name, r.role_type, "                      \
  "r.decomposition_strategy, r.is_recursive_gateway, "                         \
  "r.linked_local_workflow_id, r.step_source IS NOT NULL, w.name"

/* The current attributes of token <u> as a JSON object (a subquery result
** loses its JSON subtype, hence the json() around it). */
#define CHM__ATTRS_JSON(u)                                                     \
  "json((SELECT json_group_object(a.key, json(a.value)) FROM (SELECT a.key,"   \
  " a.value FROM UOW_Attributes a WHERE a.uow_id = " u ".uow_id AND "          \
  "a.version = (SELECT MAX(b.version) FROM UOW_Attributes b WHERE "            \
  "b.uow_id = a.uow_id AND b.key = a.key) ORDER BY a.key) a))"

#define CHM__TK_SQL(XX)                                                        \
  XX(BEGIN_WRITE, "BEGIN IMMEDIATE")                                           \
  XX(BEGIN_READ, "BEGIN")                                                      \
  XX(COMMIT, "COMMIT")                                                         \
  XX(SAVEPOINT, "SAVEPOINT chm_op")                                            \
  XX(RELEASE, "RELEASE chm_op")                                                \
  XX(CTX, "SELECT instance_id, name, status FROM Instance_Context LIMIT 1")    \
  XX(CTX_STATUS, "UPDATE Instance_Context SET status = ?2 "                    \
                 "WHERE instance_id = ?1")                                     \
  XX(LAST_LOG, "SELECT log_id, hash FROM Interaction_Logs "                    \
               "ORDER BY log_id DESC LIMIT 1")                                 \
  XX(LOG_INSERT,                                                               \
     "INSERT INTO Interaction_Logs (log_id, instance_id, uow_id, actor_id, "   \
     "role_id, interaction_id, timestamp, from_status, to_status, event, "     \
     "decision, guardian_id, details, prev_hash, hash) "                       \
     "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")                                 \
  XX(LOG_ALL,                                                                  \
     "SELECT log_id, instance_id, uow_id, actor_id, role_id, "                 \
     "interaction_id, timestamp, from_status, to_status, event, decision, "    \
     "guardian_id, details, prev_hash, hash FROM Interaction_Logs "            \
     "ORDER BY log_id")                                                        \
  XX(TOK_LOAD, "SELECT " CHM__TOK_COLS " FROM UnitsOfWork WHERE uow_id = ?")   \
  XX(TOK_INSERT,                                                               \
     "INSERT INTO UnitsOfWork (uow_id, instance_id, local_workflow_id, "       \
     "parent_id, current_interaction_id, status, version, entered_at, "        \
     "queue_seq, max_interactions, last_role_id, failure_reason, "             \
     "created_at, updated_at, return_uow_id) "                                 \
     "VALUES (?1,?2,?3,?4,?5,?6,1,?7,?8,?9,?10,?11,?7,?7,?12)")                \
  XX(TOK_UPDATE,                                                               \
     "UPDATE UnitsOfWork SET status = ?3, current_interaction_id = ?4, "       \
     "version = version + 1, lease_holder_actor_id = ?5, "                     \
     "lease_expires_at = ?6, entered_at = ?7, queue_seq = ?8, "                \
     "checkout_count = ?9, paused_from_status = ?10, last_role_id = ?11, "     \
     "failure_reason = ?12, context_json = ?13, updated_at = ?14 "             \
     "WHERE uow_id = ?1 AND version = ?2")                                     \
  XX(TOK_LEASE, "UPDATE UnitsOfWork SET lease_expires_at = ?2, "               \
                "updated_at = ?3 WHERE uow_id = ?1")                           \
  XX(TOK_COUNTS, "UPDATE UnitsOfWork SET child_count = child_count + ?2, "     \
                 "finished_child_count = finished_child_count + ?3, "          \
                 "version = version + 1, updated_at = ?4 WHERE uow_id = ?1")   \
  XX(TOK_CHILDREN, "SELECT uow_id FROM UnitsOfWork WHERE parent_id = ? "       \
                   "ORDER BY queue_seq")                                       \
  XX(TOK_ARCHIVED_CHILD, /* a given-up child: its base can never join */     \
     "SELECT uow_id FROM UnitsOfWork WHERE parent_id = ? AND status = "        \
     "'ARCHIVED' ORDER BY queue_seq LIMIT 1")                                  \
  XX(OMEGA_OF, /* the OMEGA role that consumes an interaction */              \
     "SELECT c.role_id FROM Local_Components c JOIN Local_Roles r USING "       \
     "(role_id) WHERE c.interaction_id = ? AND c.direction = 'INBOUND' AND "   \
     "r.role_type = 'OMEGA' ORDER BY c.position LIMIT 1")                      \
  XX(ROUTE_ERRORS, /* judge.route's errors (JSON array) as one text */        \
     "SELECT group_concat(json_extract(value, '$.message'), '; ') FROM "       \
     "json_each(?)")                                                           \
  XX(TOK_NEXT,                                                                 \
     "SELECT " CHM__TOK_COLS " FROM UnitsOfWork "                              \
     "WHERE current_interaction_id = ?1 AND status = ?2 AND queue_seq > ?3 "   \
     "AND (?4 = 0 OR parent_id IS NULL) ORDER BY queue_seq LIMIT 1")           \
  XX(TOK_RETURNING,                                                            \
     "SELECT uow_id, status FROM UnitsOfWork WHERE return_uow_id = ? "         \
     "ORDER BY created_at DESC, uow_id DESC LIMIT 1")                          \
  XX(ATTR_CURRENT,                                                             \
     /* SQLite: bare columns come from the row holding max(version) */      \
     "SELECT key, value, max(version), attribute_id FROM UOW_Attributes "      \
     "WHERE uow_id = ?1 GROUP BY key ORDER BY key")                            \
  XX(ATTR_INSERT,                                                              \
     "INSERT INTO UOW_Attributes (attribute_id, uow_id, instance_id, key, "    \
     "value, version, actor_id, reasoning, created_at, lineage_attribute_id)"  \
     " VALUES (?,?,?,?,?,?,?,?,?,?)")                                          \
  XX(ACTOR,                                                                    \
     "SELECT actor_id, name FROM Local_Actors "                                \
     "WHERE name = ?1 OR actor_id = ?1 ORDER BY name = ?1 DESC LIMIT 1")       \
  XX(ACTOR_NAME, "SELECT name FROM Local_Actors WHERE actor_id = ?")           \
  XX(ASSIGNED, "SELECT status FROM Local_Actor_Role_Assignments "              \
               "WHERE actor_id = ? AND role_id = ?")                           \
  XX(ROLE_BY_ID, "SELECT " CHM__ROLE_COLS " FROM Local_Roles r JOIN "          \
                 "Local_Workflows w USING (local_workflow_id) "                \
                 "WHERE r.role_id = ?")                                        \
  XX(ROLE_BY_NAME,                                                             \
     "SELECT " CHM__ROLE_COLS ", (SELECT status FROM "                         \
     "Local_Actor_Role_Assignments s WHERE s.role_id = r.role_id AND "         \
     "s.actor_id = ?2) FROM Local_Roles r JOIN Local_Workflows w "             \
     "USING (local_workflow_id) WHERE r.name = ?1 "                            \
     "ORDER BY w.is_master DESC, w.name")                                      \
  XX(ROLE_QUALIFIED,                                                           \
     "SELECT " CHM__ROLE_COLS " FROM Local_Roles r JOIN Local_Workflows w "    \
     "USING (local_workflow_id) WHERE w.name = ?1 AND r.name = ?2")            \
  XX(ROLE_OF_TYPE,                                                             \
     "SELECT " CHM__ROLE_COLS " FROM Local_Roles r JOIN Local_Workflows w "    \
     "USING (local_workflow_id) WHERE r.local_workflow_id = ?1 AND "           \
     "r.role_type = ?2 ORDER BY r.position LIMIT 1")                           \
  XX(ROLE_INBOUND,                                                             \
     "SELECT c.component_id, c.interaction_id, i.name FROM Local_Components "  \
     "c JOIN Local_Interactions i USING (interaction_id) WHERE c.role_id = ?"  \
     " AND c.direction = 'INBOUND' ORDER BY c.position")                       \
  XX(ROLE_OUTBOUND_COUNT,                                                      \
     "SELECT count(*) FROM Local_Components WHERE role_id = ? AND "            \
     "direction = 'OUTBOUND'")                                                 \
  XX(SPECIAL_INBOUND,                                                          \
     "SELECT c.interaction_id FROM Local_Components c JOIN Local_Roles r "     \
     "USING (role_id) WHERE r.local_workflow_id = ?1 AND r.role_type = ?2 "    \
     "AND c.direction = 'INBOUND' ORDER BY r.position, c.position LIMIT 1")    \
  XX(CONSUMED_BY_OMEGA,                                                        \
     "SELECT EXISTS (SELECT 1 FROM Local_Components c JOIN Local_Roles r "     \
     "USING (role_id) WHERE c.interaction_id = ? AND c.direction = "           \
     "'INBOUND' AND r.role_type = 'OMEGA')")                                   \
  XX(COMPONENT_GUARDED,                                                        \
     "SELECT EXISTS (SELECT 1 FROM Local_Guardians WHERE component_id = ?)")   \
  XX(WORKFLOW,                                                                 \
     "SELECT local_workflow_id, name, max_interactions FROM Local_Workflows "  \
     "WHERE (?1 IS NULL AND is_master = 1) OR name = ?1 "                      \
     "OR local_workflow_id = ?1 LIMIT 1")                                      \
  XX(WORKFLOW_NAMES, "SELECT group_concat(name, ', ') FROM (SELECT name "      \
                     "FROM Local_Workflows ORDER BY is_master DESC, name)")    \
  XX(INTERACTION_NAME, "SELECT name FROM Local_Interactions "                  \
                       "WHERE interaction_id = ?")                             \
  XX(REJECTION_INSERT,                                                         \
     "INSERT INTO Token_Rejections (rejection_id, uow_id, guardian_id, "       \
     "guardian_name, guardian_type, reason, created_at) "                      \
     "VALUES (?,?,?,?,?,?,?)")                                                 \
  XX(REJECTION_SEEN, /* this guardian's REJECT of this token version */     \
     "SELECT EXISTS (SELECT 1 FROM Interaction_Logs WHERE uow_id = ?1 AND "   \
     "event = 'GUARDIAN' AND decision = 'REJECT' AND "                         \
     "json_extract(details, '$.name') IS ?2 AND "                              \
     "json_extract(details, '$.token_version') = ?3)")                         \
  XX(WAITING, /* the no-work path: the oldest unfinished, unheld token */      \
     "SELECT uow_id, status, parent_id, child_count, finished_child_count, "   \
     "(SELECT count(*) FROM UnitsOfWork w WHERE w.current_interaction_id = "   \
     "?1 AND w.status NOT IN ('ACTIVE', 'FINALIZED', 'ARCHIVED')) FROM "       \
     "UnitsOfWork WHERE current_interaction_id = ?1 AND status NOT IN "        \
     "('ACTIVE', 'FINALIZED', 'ARCHIVED') ORDER BY queue_seq LIMIT 1")         \
  XX(INJECTION_INSERT,                                                         \
     "INSERT INTO Context_Injections (injection_id, uow_id, guardian_id, "     \
     "rule_index, field, value, created_at) VALUES (?,?,?,?,?,?,?)")           \
  XX(MEMORY_JSON,                                                              \
     "SELECT json_group_object(key, json(value)) FROM (SELECT m.key, "         \
     "m.value FROM Local_Role_Attributes m WHERE m.role_id = ?1 AND "          \
     "(m.actor_id IS NULL OR m.actor_id = ?2) AND m.is_toxic = 0 AND "         \
     "m.rowid = (SELECT n.rowid FROM Local_Role_Attributes n WHERE "           \
     "n.role_id = ?1 AND n.key = m.key AND (n.actor_id IS NULL OR "            \
     "n.actor_id = ?2) AND n.is_toxic = 0 ORDER BY n.actor_id IS NOT NULL "    \
     "DESC, n.rowid DESC LIMIT 1) ORDER BY m.key)")                            \
  XX(MEMORY_TOUCH,                                                             \
     "UPDATE Local_Role_Attributes SET last_accessed_at = ?3 WHERE "           \
     "role_id = ?1 AND (actor_id IS NULL OR actor_id = ?2) AND is_toxic = 0")  \
  XX(MEMORY_FIND,                                                              \
     "SELECT memory_id FROM Local_Role_Attributes WHERE role_id = ?1 AND "     \
     "actor_id IS ?2 AND key = ?3 ORDER BY rowid DESC LIMIT 1")                \
  XX(MEMORY_UPDATE,                                                            \
     "UPDATE Local_Role_Attributes SET value = ?2, is_toxic = 0, "             \
     "created_at = ?3 WHERE memory_id = ?1")                                   \
  XX(MEMORY_INSERT,                                                            \
     "INSERT INTO Local_Role_Attributes (memory_id, instance_id, role_id, "    \
     "actor_id, key, value, created_at) VALUES (?,?,?,?,?,?,?)")               \
  XX(TOKEN_JSON,                                                               \
     "SELECT json_object('uow_id', u.uow_id, 'version', u.version, "           \
     "'status', u.status, 'workflow', w.name, 'role', ?2, 'interaction', "     \
     "i.name, 'attributes', " CHM__ATTRS_JSON(                                 \
         "u") ", 'context', "                                                  \
              "json(coalesce(u.context_json, '{}')), 'memory', json(?3), "     \
              "'lease_expires_at', u.lease_expires_at, 'parent_id', "          \
              "u.parent_id, "                                                  \
              "'child_count', u.child_count, 'finished_child_count', "         \
              "u.finished_child_count) FROM UnitsOfWork u JOIN "               \
              "Local_Workflows w "                                             \
              "USING (local_workflow_id) JOIN Local_Interactions i ON "        \
              "i.interaction_id = u.current_interaction_id WHERE u.uow_id = "  \
              "?1")                                                            \
  XX(TOKEN_GET,                                                                \
     "SELECT json_object('uow_id', u.uow_id, 'status', u.status, "             \
     "'workflow', w.name, 'interaction', i.name, 'role', r.name, "             \
     "'parent_id', u.parent_id, 'return_uow_id', u.return_uow_id, "            \
     "'version', u.version, 'child_count', u.child_count, "                    \
     "'finished_child_count', u.finished_child_count, 'checkout_count', "      \
     "u.checkout_count, 'max_interactions', u.max_interactions, 'lease', "     \
     "json(CASE WHEN u.lease_holder_actor_id IS NULL THEN NULL ELSE "          \
     "json_object('holder', h.name, 'expires_at', u.lease_expires_at) END),"   \
     " 'paused_from_status', u.paused_from_status, 'failure_reason', "         \
     "u.failure_reason, 'entered_at', u.entered_at, 'created_at', "            \
     "u.created_at, 'updated_at', u.updated_at, 'context', "                   \
     "json(coalesce(u.context_json, '{}')), 'attributes', " CHM__ATTRS_JSON(   \
         "u") ", 'children', json((SELECT "                                    \
              "json_group_array(c.uow_id) FROM (SELECT uow_id FROM "           \
              "UnitsOfWork "                                                   \
              "WHERE parent_id = u.uow_id ORDER BY created_at, uow_id) c)), "  \
              "'rejections', json((SELECT "                                    \
              "json_group_array(json_object('guardian', "                      \
              "x.guardian_name, 'type', x.guardian_type, 'reason', x.reason, " \
              "'at', "                                                         \
              "x.created_at)) FROM (SELECT * FROM Token_Rejections WHERE "     \
              "uow_id = "                                                      \
              "u.uow_id ORDER BY created_at, rowid) x))) "                     \
              "FROM UnitsOfWork u JOIN Local_Workflows w USING "               \
              "(local_workflow_id) "                                           \
              "JOIN Local_Interactions i ON i.interaction_id = "               \
              "u.current_interaction_id LEFT JOIN Local_Roles r ON r.role_id " \
              "= "                                                             \
              "u.last_role_id LEFT JOIN Local_Actors h ON h.actor_id = "       \
              "u.lease_holder_actor_id WHERE u.uow_id = ?1")                   \
  XX(TOKEN_HISTORY,                                                            \
     "SELECT json_group_array(json(x)) FROM (SELECT json_object('log_id', "    \
     "l.log_id, 'timestamp', l.timestamp, 'event', l.event, 'from_status', "   \
     "l.from_status, 'to_status', l.to_status, 'actor', a.name, 'role', "      \
     "r.name, 'interaction', i.name, 'decision', l.decision, 'guardian', "     \
     "g.name, 'details', json(l.details)) AS x FROM Interaction_Logs l "       \
     "LEFT JOIN Local_Actors a ON a.actor_id = l.actor_id LEFT JOIN "          \
     "Local_Roles r ON r.role_id = l.role_id LEFT JOIN Local_Interactions i "  \
     "ON i.interaction_id = l.interaction_id LEFT JOIN Local_Guardians g ON "  \
     "g.guardian_id = l.guardian_id WHERE l.uow_id = ?1 ORDER BY l.log_id)")   \
  XX(TOKEN_ATTRIBUTES,                                                         \
     "SELECT json_group_array(json(x)) FROM (SELECT json_object('key', "       \
     "a.key, 'version', a.version, 'value', json(a.value), 'actor', c.name, "  \
     "'reasoning', a.reasoning, 'created_at', a.created_at, "                  \
     "'attribute_id', a.attribute_id, 'lineage_attribute_id', "                \
     "a.lineage_attribute_id) AS x FROM UOW_Attributes a LEFT JOIN "           \
     "Local_Actors c ON c.actor_id = a.actor_id WHERE a.uow_id = ?1 "          \
     "ORDER BY a.key, a.version)")                                             \
  XX(QUEUES,                                                                   \
     "SELECT json_group_array(json(x)) FROM (SELECT json_object('workflow', "  \
     "w.name, 'interaction', i.name, 'consumers', json((SELECT "               \
     "json_group_array(r.name) FROM (SELECT r.name FROM Local_Components c "   \
     "JOIN Local_Roles r USING (role_id) WHERE c.interaction_id = "            \
     "i.interaction_id AND c.direction = 'INBOUND' ORDER BY r.position) r)),"  \
     " 'counts', json((SELECT json_group_object(s.status, s.n) FROM (SELECT "  \
     "status, count(*) AS n FROM UnitsOfWork WHERE current_interaction_id = "  \
     "i.interaction_id GROUP BY status ORDER BY status) s)), 'total', "        \
     "(SELECT count(*) FROM UnitsOfWork WHERE current_interaction_id = "       \
     "i.interaction_id)) AS x FROM Local_Interactions i JOIN "                 \
     "Local_Workflows w USING (local_workflow_id) "                            \
     "ORDER BY w.is_master DESC, w.name, i.position)")                         \
  XX(TOKENS,                                                                   \
     "SELECT json_group_array(json(x)) FROM (SELECT json_object('uow_id', "    \
     "u.uow_id, 'status', u.status, 'workflow', w.name, 'interaction', "       \
     "i.name, 'version', u.version, 'parent_id', u.parent_id, "                \
     "'entered_at', u.entered_at) AS x FROM UnitsOfWork u JOIN "               \
     "Local_Workflows w USING (local_workflow_id) JOIN Local_Interactions i "  \
     "ON i.interaction_id = u.current_interaction_id WHERE ?1 IS NULL OR "     \
     "u.status = ?1 ORDER BY u.created_at, u.uow_id)")                         \
  XX(MEMORY_ROW, "SELECT role_id, actor_id, key FROM Local_Role_Attributes "   \
                 "WHERE memory_id = ?")                                        \
  XX(MEMORY_TOXIC, "UPDATE Local_Role_Attributes SET is_toxic = 1 "            \
                   "WHERE memory_id = ?")                                      \
  XX(MEMORY_DECAY, "DELETE FROM Local_Role_Attributes WHERE "                  \
                   "coalesce(last_accessed_at, created_at) < ?")               \
  XX(ZOMBIE_NEXT, "SELECT uow_id FROM UnitsOfWork WHERE status = 'ACTIVE' "    \
                  "AND lease_expires_at < ? ORDER BY lease_expires_at "        \
                  "LIMIT 1")                                                   \
  XX(STALE_NEXT,                                                               \
     "SELECT u.uow_id FROM Local_Interactions i JOIN UnitsOfWork u ON "        \
     "u.current_interaction_id = i.interaction_id WHERE "                      \
     "i.stale_token_limit_seconds IS NOT NULL AND u.status IN ('PENDING', "    \
     "'COMPLETED') AND (u.status = 'PENDING' OR u.parent_id IS NULL) AND "     \
     "u.entered_at + i.stale_token_limit_seconds * 1000 < ?1 LIMIT 1")         \
  XX(RUN_ROLES,                                                                \
     "SELECT r.role_id FROM Local_Actor_Role_Assignments s JOIN Local_Roles "  \
     "r USING (role_id) JOIN Local_Workflows w USING (local_workflow_id) "     \
     "WHERE s.actor_id = ? AND s.status = 'ACTIVE' AND r.role_type <> "        \
     "'ALPHA' ORDER BY w.is_master DESC, w.name, r.position")

enum chm__tk_q {
#define CHM__TK_Q(name, sql) CHM__Q_##name,
  CHM__TK_SQL(CHM__TK_Q)
#undef CHM__TK_Q
      CHM__Q_COUNT
};

/* ===================================================================== */
/* Per-handle state (token.c)                                             */
/* ===================================================================== */

typedef struct chm__memo_ent chm__memo_ent; /* token.c */

typedef struct chm__tk {
  chm_instance *inst;             /* the handle */
  chm__core *c;                   /* its core: db, L, message */
  sqlite3_stmt *st[CHM__Q_COUNT]; /* prepared on first use */
  int64_t lease_ms;               /* lease length of checkouts */
  int dbrc;                       /* status of the last database error */
  chm__memo_ent **memo;           /* the graph cache: hash buckets */
  size_t memo_nb, memo_n;         /* its bucket count and entries */
  int64_t iso_ms;                 /* the instant iso holds (or NULL_INT) */
  char iso[32];                   /* chm__tk_iso(iso_ms), for log rows */
  /* --- the open transaction (read at its start) --- */
  char instance_id[CHM__ID]; /* Instance_Context.instance_id */
  char instance_status[16];  /* ACTIVE, PAUSED, ARCHIVED */
  char instance_name[128];   /* for messages (truncated) */
  int64_t last_log_id;       /* newest Interaction_Logs row */
  char last_hash[65];        /* and its hash (64 zeros if none) */
  int64_t now;               /* engine clock at the op's start */
  int in_tx;                 /* 1 inside chm__tk_begin..commit */
} chm__tk;

/* chm__tk_open(inst, &t) -> CHM_OK with the handle's token state,
** created on first use; clears the handle's message. CHM_MISUSE for a
** NULL or closed handle, CHM_NOMEM. */
int chm__tk_open(chm_instance *inst, chm__tk **t);

/* ---- the graph cache ---- */

/* An instance's graph (Local_Workflows, Local_Roles, Local_Components,
** Local_Interactions) never changes after instantiation: nothing in the
** API writes it. The lookups that read only the graph keep each answer
** for the life of the handle, keyed by their kind and the exact text of
** their argument, in a hash owned by the per-handle state (freed by its
** __gc). Only answers are kept, never misses that raise an error, so
** messages stay those of the SQL path. */
enum chm__memo_kind {
  CHM__M_ROLE,     /* role_id -> chm__role (ROLE_BY_ID) */
  CHM__M_INBOUND,  /* role_id -> its inbound interactions (tokenops.c) */
  CHM__M_NOUT,     /* role_id -> int64_t ROLE_OUTBOUND_COUNT */
  CHM__M_SPECIAL,  /* workflow_id 0x1F type -> char[CHM__ID] interaction */
  CHM__M_OMEGA,    /* interaction_id -> int CONSUMED_BY_OMEGA */
  CHM__M_INAME,    /* interaction_id -> its name (char[]) */
  CHM__M_WORKFLOW, /* WORKFLOW by name or id -> its row (tokenops.c) */
  CHM__M_MASTER,   /* "" -> the master workflow's row (tokenops.c) */
  CHM__M_ALPHA,    /* workflow_id -> role_id of its first ALPHA role */
  CHM__M_GUARDED   /* component_id -> int: has at least one guardian */
};

/* chm__tk_memo_get(t, kind, key, &size) -> the cached value (size bytes,
** aligned for any type, valid for the life of the handle) or NULL. size
** may be NULL. */
const void *chm__tk_memo_get(chm__tk *t, int kind, const char *key,
                             size_t *size);

/* chm__tk_memo_put(t, kind, key, val, size): keep a copy of size bytes at
** val under (kind, key). Out of memory, nothing is kept: the next lookup
** asks SQLite again. */
void chm__tk_memo_put(chm__tk *t, int kind, const char *key, const void *val,
                      size_t size);

/* chm__tk_err(t, rc, fmt, ...) -> rc, after setting the handle message. */
int chm__tk_err(chm__tk *t, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* chm__tk_dberr(t, q) -> CHM_DB with SQLite's message and the query name;
** CHM_CORRUPT for a damaged store, CHM_IO for a read-only or unreadable
** one, with a message naming the file (chm__store_status). */
int chm__tk_dberr(chm__tk *t, int q);

/* chm__tk_dbrc(t) -> the status of the last database error set by
** chm__tk_dberr (CHM_DB when none), for callers that saw a failed step. */
int chm__tk_dbrc(chm__tk *t);

/* chm__tk_q(t, q, fmt, ...) -> statement q, reset and bound, or NULL
** (message set). fmt letters: 's' const char * (NULL binds NULL), 'i'
** int64_t (CHM__NULL_INT binds NULL), 'd' int. Step it with chm__tk_step
** and finish with chm__tk_reset. */
sqlite3_stmt *chm__tk_q(chm__tk *t, int q, const char *fmt, ...);

/* chm__tk_step(t, q, st) -> SQLITE_ROW, SQLITE_DONE, or -1 (message set,
** statement reset). */
int chm__tk_step(chm__tk *t, int q, sqlite3_stmt *st);

/* chm__tk_reset(st): reset and clear bindings. NULL-safe. */
void chm__tk_reset(sqlite3_stmt *st);

/* chm__tk_exec(t, q, fmt, ...) -> CHM_OK or CHM_DB: run a statement that
** returns no rows (sqlite3_changes() tells how many it changed). */
int chm__tk_exec(chm__tk *t, int q, const char *fmt, ...);

/* chm__tk_one_text(t, q, &out, fmt, ...) -> CHM_OK with *out the first
** column of the first row (malloc'ed, NULL for no row or NULL value). */
int chm__tk_one_text(chm__tk *t, int q, char **out, const char *fmt, ...);

/* chm__tk_col(st, i) -> column text or NULL. */
const char *chm__tk_col(sqlite3_stmt *st, int i);

/* chm__tk_cpy(dst, size, src): copy (truncating), "" for NULL. */
void chm__tk_cpy(char *dst, size_t size, const char *src);

/* chm__tk_iso(ms, out): ISO-8601 UTC text "YYYY-MM-DDTHH:MM:SS.mmmZ". */
void chm__tk_iso(int64_t ms, char out[32]);

/* ---- transactions ---- */

/* chm__tk_begin(t, writing) -> CHM_OK after BEGIN IMMEDIATE (writing) or
** BEGIN (reading), reading the instance context and the log head, and
** taking the op's clock. A writing begin is refused with CHM_STATE while
** the instance is PAUSED or ARCHIVED unless writing == 2. */
int chm__tk_begin(chm__tk *t, int writing);
/* chm__tk_commit(t) -> CHM_OK or CHM_DB (then rolled back). */
int chm__tk_commit(chm__tk *t);
/* chm__tk_rollback(t): roll back the open transaction, if any. */
void chm__tk_rollback(chm__tk *t);
/* chm__tk_op_start(t): refresh the op clock (batch mode). */
void chm__tk_op_start(chm__tk *t);
/* Savepoints for one operation inside a batch; the log head is saved in
** *save and restored on rollback_to. */
typedef struct chm__tk_save {
  int64_t last_log_id;
  char last_hash[65];
} chm__tk_save;
int chm__tk_savepoint(chm__tk *t, chm__tk_save *save);
int chm__tk_release(chm__tk *t);
void chm__tk_rollback_to(chm__tk *t, const chm__tk_save *save);

/* ===================================================================== */
/* The log (token.c)                                                      */
/* ===================================================================== */

typedef struct chm__logrow {
  const char *uow_id, *actor_id, *role_id, *interaction_id;
  const char *from_status, *to_status, *event, *decision, *guardian_id;
  const char *details; /* JSON object text or NULL */
} chm__logrow;

/* chm__tk_log(t, r) -> CHM_OK after appending row r (log_id =
** last_log_id + 1, hash-chained) in the open transaction. */
int chm__tk_log(chm__tk *t, const chm__logrow *r);

/* chm__tk_row_hash(prev_hash, fields, n, out): the chain hash: hex
** sha256 of prev_hash and the n fields, each preceded by U+001F, NULL
** fields written as \N. 0 or -1. */
int chm__tk_row_hash(const char *prev_hash, const char *const *fields, int n,
                     char out[65]);

/* ===================================================================== */
/* Tokens, attributes, roles (token.c)                                    */
/* ===================================================================== */

typedef struct chm__tok {
  char uow_id[CHM__ID], workflow_id[CHM__ID], parent_id[CHM__ID];
  char interaction_id[CHM__ID], lease_holder[CHM__ID];
  char last_role_id[CHM__ID], return_uow_id[CHM__ID];
  char status[20], paused_from[20];
  int64_t child_count, finished_child_count, version, lease_expires_at;
  int64_t entered_at, queue_seq, checkout_count, max_interactions;
  int64_t created_at;
  char *failure_reason; /* malloc'ed or NULL */
  char *context;        /* context_json, malloc'ed or NULL */
} chm__tok;             /* "" for NULL ids; CHM__NULL_INT for NULL ints */

/* chm__tk_load(t, uow_id, tok) -> CHM_OK, or CHM_NOTFOUND naming the id. */
int chm__tk_load(chm__tk *t, const char *uow_id, chm__tok *tok);
/* chm__tk_tok_row(t, st, tok) -> CHM_OK (or CHM_NOMEM): tok (cleared
** first) from the current row of st, a statement selecting CHM__TOK_COLS. */
int chm__tk_tok_row(chm__tk *t, sqlite3_stmt *st, chm__tok *tok);
/* chm__tok_clear(tok): free what tok owns. */
void chm__tok_clear(chm__tok *tok);

/* What a status change also does (chm__tk_set_status). */
enum chm__lease {
  CHM__LEASE_CLEAR, /* no holder, no expiry */
  CHM__LEASE_START, /* holder = the move's actor, expiry = now + lease */
  CHM__LEASE_OPEN,  /* holder = the move's actor, no expiry (gateway) */
  CHM__LEASE_KEEP,  /* unchanged */
  CHM__LEASE_RENEW  /* same holder; a fresh expiry if it had one */
};
typedef struct chm__move {
  const char *event;          /* log event: CHECKOUT, SUBMIT, ... */
  const char *actor_id;       /* who; NULL for none */
  const char *role_id;        /* role context; NULL keeps last_role_id */
  const char *decision;       /* log decision column */
  const char *details;        /* log details (JSON object text) */
  const char *failure_reason; /* stored when not NULL; NULL keeps the old
                              ** one, except into PENDING or a finished
                              ** state, which clears it */
  int lease;                  /* enum chm__lease */
  int checkout;               /* 1: checkout_count + 1; -1: reset to 0 */
} chm__move;

/* chm__tk_set_status(t, tok, status, interaction_id, m) -> CHM_OK: THE
** one function that changes a token's status or place. Updates the row
** (version + 1; entered_at and queue_seq when the token starts waiting),
** keeps the parent's finished_child_count in step (+1 into a finished
** state, -1 out of one), writes the log row, and updates *tok.
** interaction_id NULL keeps the place. */
int chm__tk_set_status(chm__tk *t, chm__tok *tok, const char *status,
                       const char *interaction_id, const chm__move *m);

/* chm__is_finished(status) -> 1 for COMPLETED, REMEDIATED, FINALIZED. */
int chm__is_finished(const char *status);

typedef struct chm__attr {
  char *key, *value; /* value: JSON text (NULL for SQL NULL) */
  char *attribute_id;
  int64_t version;
} chm__attr;
typedef struct chm__attrs {
  chm__attr *v;
  int n, cap;
} chm__attrs;

/* chm__tk_attrs_load(t, uow_id, a) -> CHM_OK with the current value of
** every key (sorted by key). Free with chm__attrs_free. */
int chm__tk_attrs_load(chm__tk *t, const char *uow_id, chm__attrs *a);
void chm__attrs_free(chm__attrs *a);
const chm__attr *chm__attrs_find(const chm__attrs *a, const char *key);
/* chm__attrs_set(a, key, value, attribute_id, version) -> 0, or -1 out of
** memory: insert or replace key in the sorted list (in memory only). */
int chm__attrs_set(chm__attrs *a, const char *key, const char *value,
                   const char *attribute_id, int64_t version);

/* chm__tk_attr_put(t, uow_id, cur, key, value, actor_id, reasoning,
** lineage, &changed) -> CHM_OK: write key = value (canonical JSON) as the
** next version unless cur (the token's current attributes, kept up to
** date) already holds that text. *changed (may be NULL) is set to 1 when a
** row was written. */
int chm__tk_attr_put(chm__tk *t, const char *uow_id, chm__attrs *cur,
                     const char *key, const char *value, const char *actor_id,
                     const char *reasoning, const char *lineage, int *changed);

typedef struct chm__role {
  char id[CHM__ID], workflow_id[CHM__ID], linked_workflow[CHM__ID];
  char name[128], type[12], strategy[16], workflow[128];
  int gateway, has_step;
} chm__role;

/* Lookups. Each returns CHM_OK, CHM_NOTFOUND with a message naming what
** is missing, or CHM_DB. */
int chm__tk_actor(chm__tk *t, const char *name, char id[CHM__ID],
                  char *name_out, size_t name_size);
int chm__tk_role_by_id(chm__tk *t, const char *role_id, chm__role *r);
/* chm__tk_role(t, spec, actor_id, r): spec is a name, "workflow/name" or a
** role_id; a plain name in several workflows picks the one the actor holds
** an ACTIVE assignment on, else CHM_INVALID asking to qualify it. */
int chm__tk_role(chm__tk *t, const char *spec, const char *actor_id,
                 chm__role *r);
/* chm__tk_assigned(t, actor_id, role) -> CHM_OK or CHM_DENIED. */
int chm__tk_assigned(chm__tk *t, const char *actor_id, const char *actor,
                     const chm__role *r);
/* chm__tk_special(t, workflow_id, type, out): the inbound interaction of
** the workflow's first role of `type` (EPSILON: the Ate; TAU: Chronos;
** OMEGA: the Cerberus room), "" when it has none. */
int chm__tk_special(chm__tk *t, const char *workflow_id, const char *type,
                    char out[CHM__ID]);
/* chm__tk_name(t, q, id, out, size): one name column by id ("?" if none). */
int chm__tk_name(chm__tk *t, int q, const char *id, char *out, size_t size);
/* chm__tk_inter_name(t, id, out, size): chm__tk_name of an interaction,
** through the graph cache. */
int chm__tk_inter_name(chm__tk *t, const char *id, char *out, size_t size);

/* ===================================================================== */
/* The bridge to trusted Lua (tokenlua.c)                                 */
/* ===================================================================== */

typedef struct chm__view {
  const chm__tok *tok;
  const char *workflow;    /* workflow name */
  const chm__attrs *attrs; /* current attributes */
} chm__view;

typedef struct chm__decision {
  char *guardian_id, *name, *type, *decision, *reason;
} chm__decision;

typedef struct chm__inj {
  char *guardian_id, *field, *value; /* value: canonical JSON */
  int64_t rule_index;
} chm__inj;

typedef struct chm__gate {
  int pass, wait;
  int has_rejection;
  chm__decision rejection;
  chm__decision *dec;
  int ndec;
  chm__inj *inj; /* the injections that changed the context */
  int ninj;
  char *context; /* new context JSON when changed, else NULL */
} chm__gate;

/* chm__tk_gate(t, component_ids, n, view, g) -> CHM_OK (or CHM_NOMEM):
** judge.gate on each component in turn, merged: pass only if every one
** passes; any WAIT makes it wait; the first rejection is kept. A failing
** judge call is a rejection with its error as the reason. Injections are
** applied to the token's context (view->tok->context). */
int chm__tk_gate(chm__tk *t, char (*component_ids)[CHM__ID], int n,
                 const chm__view *v, chm__gate *g);
void chm__gate_free(chm__gate *g);

typedef struct chm__route {
  char *component_id;   /* NULL when nothing matched */
  char *interaction_id; /* target interaction */
  char *reason;         /* why (always set) */
  char *errors;         /* JSON array of {component_id,message} or NULL */
  chm__decision *dec;   /* the DIRECTIONAL_FILTER decisions, in order */
  int ndec;
} chm__route;

/* chm__tk_route(t, role_id, view, r) -> CHM_OK (or CHM_NOMEM); a failing
** judge call leaves no target and the error as the reason. */
int chm__tk_route(chm__tk *t, const char *role_id, const chm__view *v,
                  chm__route *r);
void chm__route_free(chm__route *r);
void chm__decision_free(chm__decision *d);

typedef struct chm__kv {
  char *key, *value; /* value: canonical JSON text */
} chm__kv;

typedef struct chm__kvs {
  chm__kv *v;
  int n;
} chm__kvs;

typedef struct chm__changes {
  chm__kvs set, teach;
  chm__kvs *children;
  int nchildren;
  char *reasoning;
  char *fail; /* reason, or NULL */
  int give_up, end;
} chm__changes;

typedef struct chm__step {
  int rc;              /* CHM_OK, CHM_SCRIPT, CHM_BUDGET, CHM_MEMORY */
  int has_parsed;      /* CHM_OK: 1 when the changes are in parsed */
  chm__changes parsed; /* the result read as chm__tk_parse_changes would */
  char *changes;       /* CHM_OK otherwise: the result as changes JSON */
  char *error;         /* not CHM_OK: the message */
} chm__step;

/* chm__tk_step(t, role_id, view, actor, memory_json, s) -> CHM_OK (or
** CHM_NOMEM): judge.step with ctx {actor, memory, skills, now, seed}. A
** result the submit will accept comes parsed (has_parsed); any other
** comes as its JSON text, for the submit to refuse with its message. */
int chm__tk_step_fn(chm__tk *t, const char *role_id, const chm__view *v,
                    const char *actor, const char *memory_json, chm__step *s);
void chm__step_free(chm__step *s);

/* chm__tk_parse_changes(t, json, c) -> CHM_OK, or CHM_INVALID naming the
** offending part. json NULL = {}. */
int chm__tk_parse_changes(chm__tk *t, const char *json, chm__changes *c);
void chm__changes_free(chm__changes *c);

/* chm__tk_parse_object(t, json, what, kvs) -> CHM_OK with the keys of a
** JSON object (sorted) and their canonical values, or CHM_INVALID. */
int chm__tk_parse_object(chm__tk *t, const char *json, const char *what,
                         chm__kvs *kvs);
void chm__kvs_free(chm__kvs *k);

/* chm__tk_canon(t, json, what, &out) -> CHM_OK with the canonical JSON
** text of any JSON value (malloc'ed), or CHM_INVALID. */
int chm__tk_canon(chm__tk *t, const char *json, const char *what, char **out);

/* chm__tk_skill_register(t, name, cb, ud) -> CHM_OK or CHM_NOMEM. */
int chm__tk_skill_register(chm__tk *t, const char *name, chm_skill_cb cb,
                           void *ud);

/* ===================================================================== */
/* Operations inside an open transaction (tokenops.c), for run and sweep  */
/* ===================================================================== */

/* Who acts: resolved once per public call. */
typedef struct chm__who {
  char id[CHM__ID]; /* actor_id ("" when the instance has no such actor) */
  char name[128];
} chm__who;

int chm__tk_who(chm__tk *t, const char *name, int required, chm__who *w);

/* chm__op_checkout(t, who, role, interaction, &tok, &attrs, &out_json,
** &wrote): the checkout of chm_checkout on an open transaction. On CHM_OK
** *tok is loaded (caller clears it), *attrs (may be NULL) holds its
** current attributes (caller frees them) and *out_json (may be NULL) is
** the token JSON. *wrote is set when something was written even on
** failure (rejections, zombies), so the caller commits. */
int chm__op_checkout(chm__tk *t, const chm__who *who, const chm__role *role,
                     const char *interaction, chm__tok *tok, chm__attrs *attrs,
                     char **out_json, int *wrote);

/* chm__op_submit(t, who, tok, version, changes_json, parsed, attrs,
** &result): the submit on an open transaction (tok loaded; it is
** updated). parsed, when not NULL, are the changes already parsed (as
** chm__tk_parse_changes would; the caller keeps them) and changes_json is
** ignored. attrs, when not NULL, are tok's current attributes as the
** caller holds them: they are used instead of reading them again, and
** kept up to date. A plain submit (chm__submit_is_plain) routes before it
** writes, so when it is refused (any status but CHM_DB, CHM_NOMEM,
** CHM_MISUSE) it has written nothing. */
int chm__op_submit(chm__tk *t, const chm__who *who, chm__tok *tok,
                   int64_t version, const char *changes_json,
                   const chm__changes *parsed, chm__attrs *attrs,
                   char **result);

/* chm__submit_is_plain(c, role) -> 1 when changes c, submitted by role
** (the token's role), only set attributes and teach, then route: no
** fail, give_up, end or children, and role is not an OMEGA. */
int chm__submit_is_plain(const chm__changes *c, const chm__role *role);

/* chm__op_fail_to(t, tok, actor_id, role_id, type, reason, event): move
** tok FAILED (TIMEOUT for type "TAU" sweeps) to the Ate (type "EPSILON")
** or Chronos (type "TAU", falling back to the Ate, then to its place). */
int chm__op_fail_to(chm__tk *t, chm__tok *tok, const char *actor_id,
                    const char *role_id, const char *to_status,
                    const char *where, const char *reason, const char *event,
                    const char *details);

/* chm__tk_memory(t, role_id, actor_id, &json) -> CHM_OK with the merged
** memory (blueprint, playbook wins, toxic excluded) as a JSON object,
** marking the rows read. */
int chm__tk_memory(chm__tk *t, const char *role_id, const char *actor_id,
                   char **json);

/* chm__tk_memory_put(t, role_id, actor_id, key, value) -> CHM_OK: write
** a blueprint (actor_id NULL/"") or playbook entry, replacing the value of
** the newest (role, actor, key) row (and clearing its toxic flag). */
int chm__tk_memory_put(chm__tk *t, const char *role_id, const char *actor_id,
                       const char *key, const char *value);

#endif /* CHM_TOKEN_INT_H */
