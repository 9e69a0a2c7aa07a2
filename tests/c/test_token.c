/*
** test_token.c — the token engine against real instance stores: every
** transition and every refusal of docs/token-engine.md, the hash chain,
** the sweeps under the virtual clock, the run loop with steps and skills,
** and recursive gateways. Workflows come from tests/fixtures/engine/ and
** go through the public API (meta-store import, instantiate); checks read
** the store through a second, plain SQLite connection. One fresh instance
** per test. The last output line is "N passed, N failed"; the exit status
** is 1 on failure. Run one test with: test_token NAME.
*/
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "chameleon.h"
#include "harness.h"

/* ===================================================================== */
/* Harness                                                                */
/* ===================================================================== */

static char dir[256];       /* temp directory of this run */
static chm_meta *meta;      /* holds the fixture workflows */
static chm_instance *inst;  /* the current test's instance */
static sqlite3 *raw;        /* a plain connection to it, for checks */
static char inst_path[300]; /* its file */
static int ninst;           /* instances made so far */

#define T0 1800000000000LL /* the virtual clock at the start of a test */

/* A call's status, with the handle's message when it is not the one
** expected. */
#define ASSERT_RC(call, want)                                                  \
  do {                                                                         \
    int rc_ = (call);                                                          \
    if (rc_ != (want))                                                         \
      FAIL_AT("%s\n    returned %s (%s), expected %s", #call,                  \
              chm_errname(rc_), chm_instance_errmsg(inst), chm_errname(want)); \
  } while (0)

#define ASSERT_MSG(needle) ASSERT_CONTAINS(chm_instance_errmsg(inst), needle)

#define TEST(name) static void test_##name(void)

/* ===================================================================== */
/* Helpers                                                                */
/* ===================================================================== */

/* q(fmt, ...) -> first column of the first row as text (a static buffer;
** "(null)" for NULL, "(none)" for no row). %q / %Q quote like SQLite. */
static const char *q(const char *fmt, ...) {
  static char buf[4][4096];
  static int slot;
  char *sql, *out = buf[slot++ % 4];
  sqlite3_stmt *st = NULL;
  va_list ap;
  va_start(ap, fmt);
  sql = sqlite3_vmprintf(fmt, ap);
  va_end(ap);
  snprintf(out, 4096, "(none)");
  if (sqlite3_prepare_v2(raw, sql, -1, &st, NULL) != SQLITE_OK) {
    snprintf(out, 4096, "(SQL error: %s)", sqlite3_errmsg(raw));
  } else if (sqlite3_step(st) == SQLITE_ROW) {
    const char *v = (const char *)sqlite3_column_text(st, 0);
    snprintf(out, 4096, "%s", v ? v : "(null)");
  }
  sqlite3_finalize(st);
  sqlite3_free(sql);
  return out;
}

static long long qi(const char *fmt, ...) {
  char *sql;
  sqlite3_stmt *st = NULL;
  long long v = -999999;
  va_list ap;
  va_start(ap, fmt);
  sql = sqlite3_vmprintf(fmt, ap);
  va_end(ap);
  if (sqlite3_prepare_v2(raw, sql, -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_free(sql);
  return v;
}

/* Status and interaction name of a token. */
static const char *status_of(const char *id) {
  return q("SELECT status FROM UnitsOfWork WHERE uow_id = %Q", id);
}
static const char *place_of(const char *id) {
  return q("SELECT i.name FROM UnitsOfWork u JOIN Local_Interactions i ON "
           "i.interaction_id = u.current_interaction_id WHERE uow_id = %Q",
           id);
}
static long long version_of(const char *id) {
  return qi("SELECT version FROM UnitsOfWork WHERE uow_id = %Q", id);
}
static const char *attr(const char *id, const char *key) {
  return q("SELECT value FROM UOW_Attributes WHERE uow_id = %Q AND key = %Q "
           "ORDER BY version DESC LIMIT 1",
           id, key);
}
static long long nlog(void) {
  return qi("SELECT count(*) FROM Interaction_Logs");
}
static long long nattr(void) {
  return qi("SELECT count(*) FROM UOW_Attributes");
}

/* The integer after "key": in json (-1 when absent). */
static long long jint(const char *json, const char *key) {
  char pat[64];
  const char *p;
  snprintf(pat, sizeof pat, "\"%s\":", key);
  if (json == NULL || (p = strstr(json, pat)) == NULL)
    return -1;
  return strtoll(p + strlen(pat), NULL, 10);
}

/* The string after "key": in json, into a static buffer. */
static const char *jstr(const char *json, const char *key) {
  static char buf[2][256];
  static int slot;
  char pat[64], *out = buf[slot++ % 2];
  const char *p, *e;
  snprintf(pat, sizeof pat, "\"%s\":\"", key);
  out[0] = '\0';
  if (json == NULL || (p = strstr(json, pat)) == NULL)
    return out;
  p += strlen(pat);
  if ((e = strchr(p, '"')) == NULL)
    return out;
  snprintf(out, sizeof buf[0], "%.*s", (int)(e - p), p);
  return out;
}

/* genesis(attrs, id): a token of the master workflow made by alice. */
static int genesis(const char *attrs, char id[37]) {
  char *out = NULL;
  int rc = chm_genesis(inst, NULL, attrs, "alice", &out);
  snprintf(id, 37, "%s", out ? out : "");
  chm_free(out);
  return rc;
}

/* checkout(actor, role, id, &version): the checked out token's id and
** version. */
static int checkout(const char *actor, const char *role, char id[37],
                    long long *version) {
  char *json = NULL;
  int rc = chm_checkout(inst, actor, role, NULL, &json);
  snprintf(id, 37, "%s", jstr(json, "uow_id"));
  if (version != NULL)
    *version = jint(json, "version");
  chm_free(json);
  return rc;
}

static int submit(const char *id, const char *actor, long long version,
                  const char *changes) {
  char *out = NULL;
  int rc = chm_submit(inst, id, actor, version, changes, &out);
  chm_free(out);
  return rc;
}

static void new_instance(const char *workflow) {
  char *report = NULL;
  snprintf(inst_path, sizeof inst_path, "%s/i%d.db", dir, ++ninst);
  if (chm_meta_instantiate(meta, workflow, 0, inst_path, NULL, &report) !=
      CHM_OK) {
    printf("  cannot instantiate %s: %s\n", workflow, chm_meta_errmsg(meta));
    exit(2);
  }
  chm_free(report);
  if (chm_instance_open(inst_path, &inst) != CHM_OK) {
    printf("  cannot open %s: %s\n", inst_path, chm_instance_errmsg(inst));
    exit(2);
  }
  sqlite3_open(inst_path, &raw);
  sqlite3_busy_timeout(raw, 5000);
  chm_clock_set_virtual(T0);
}

/* ===================================================================== */
/* Genesis                                                                */
/* ===================================================================== */

TEST(genesis) {
  char id[37], *out = NULL;
  new_instance("TK-BASIC");
  ASSERT_RC(genesis("{\"amount\": 5, \"route\": \"review\"}", id), CHM_OK);
  ASSERT_INT_EQ(strlen(id), 36);
  ASSERT_STR_EQ(status_of(id), "PENDING");
  ASSERT_STR_EQ(place_of(id), "inbox");
  ASSERT_INT_EQ(version_of(id), 1);
  ASSERT_INT_EQ(qi("SELECT max_interactions FROM UnitsOfWork"), 3);
  ASSERT_INT_EQ(qi("SELECT created_at FROM UnitsOfWork"), T0);
  ASSERT_INT_EQ(qi("SELECT entered_at FROM UnitsOfWork"), T0);
  ASSERT_STR_EQ(q("SELECT group_concat(key || '=' || value || '@' || version "
                  "|| ':' || reasoning, ' ') FROM (SELECT * FROM "
                  "UOW_Attributes ORDER BY key)"),
                "amount=5@1:genesis route=\"review\"@1:genesis");
  ASSERT_STR_EQ(q("SELECT a.name FROM UOW_Attributes u JOIN Local_Actors a "
                  "USING (actor_id) LIMIT 1"),
                "alice");
  ASSERT_STR_EQ(q("SELECT event || ' ' || to_status || ' ' || decision FROM "
                  "Interaction_Logs"),
                "GENESIS PENDING inbox");
  ASSERT_INT_EQ(qi("SELECT queue_seq FROM UnitsOfWork"),
                qi("SELECT log_id FROM Interaction_Logs"));
  /* actor NULL is "system", assigned to the ALPHA role */
  ASSERT_RC(chm_genesis(inst, "TK-BASIC", NULL, NULL, &out), CHM_OK);
  chm_free(out);
  ASSERT_INT_EQ(qi("SELECT count(*) FROM UnitsOfWork"), 2);
}

TEST(genesis_refusals) {
  char *out = (char *)"x";
  long long logs;
  new_instance("TK-BASIC");
  logs = nlog();
  ASSERT_RC(chm_genesis(inst, "NOPE", NULL, "alice", &out), CHM_NOTFOUND);
  ASSERT_MSG("no workflow 'NOPE' in instance");
  ASSERT_MSG("(it has: TK-BASIC)");
  ASSERT_TRUE(out == NULL);
  ASSERT_RC(chm_genesis(inst, NULL, NULL, "bob", &out), CHM_DENIED);
  ASSERT_MSG("actor 'bob' holds no ACTIVE assignment on role 'start' of "
             "workflow 'TK-BASIC'");
  ASSERT_RC(chm_genesis(inst, NULL, NULL, "nobody", &out), CHM_NOTFOUND);
  ASSERT_MSG("no actor 'nobody'");
  ASSERT_RC(chm_genesis(inst, NULL, "[1, 2]", "alice", &out), CHM_INVALID);
  ASSERT_MSG("genesis attributes must be a JSON object, not an array");
  ASSERT_RC(chm_genesis(inst, NULL, "{\"a\": ", "alice", &out), CHM_INVALID);
  ASSERT_MSG("genesis attributes is not valid JSON");
  ASSERT_RC(chm_genesis(inst, NULL, NULL, "alice", NULL), CHM_MISUSE);
  ASSERT_INT_EQ(nlog(), logs);
  ASSERT_INT_EQ(qi("SELECT count(*) FROM UnitsOfWork"), 0);
  ASSERT_INT_EQ(nattr(), 0);
}

/* ===================================================================== */
/* Checkout                                                               */
/* ===================================================================== */

TEST(checkout_fifo_lease) {
  char a[37], b[37], got[37], *json = NULL;
  long long v;
  new_instance("TK-BASIC");
  ASSERT_RC(chm_set_lease_ms(inst, 1000), CHM_OK);
  ASSERT_RC(genesis("{\"amount\": 5}", a), CHM_OK);
  chm_clock_advance(10);
  ASSERT_RC(genesis("{\"amount\": 6}", b), CHM_OK);
  chm_clock_advance(10);
  ASSERT_RC(chm_checkout(inst, "alice", "worker", NULL, &json), CHM_OK);
  ASSERT_STR_EQ(jstr(json, "uow_id"), a); /* FIFO: the older first */
  ASSERT_STR_EQ(jstr(json, "status"), "ACTIVE");
  ASSERT_STR_EQ(jstr(json, "role"), "worker");
  ASSERT_STR_EQ(jstr(json, "interaction"), "inbox");
  ASSERT_STR_EQ(jstr(json, "workflow"), "TK-BASIC");
  ASSERT_INT_EQ(jint(json, "version"), 2);
  ASSERT_INT_EQ(jint(json, "lease_expires_at"), T0 + 20 + 1000);
  ASSERT_CONTAINS(json, "\"attributes\":{\"amount\":5}");
  ASSERT_CONTAINS(json, "\"context\":{\"instructions\":\"check the amount\"}");
  ASSERT_CONTAINS(json, "\"memory\":{}");
  ASSERT_CONTAINS(json, "\"parent_id\":null");
  chm_free(json);
  ASSERT_STR_EQ(status_of(a), "ACTIVE");
  ASSERT_INT_EQ(qi("SELECT checkout_count FROM UnitsOfWork WHERE uow_id = "
                   "%Q",
                   a),
                1);
  ASSERT_STR_EQ(q("SELECT a.name FROM UnitsOfWork u JOIN Local_Actors a ON "
                  "a.actor_id = u.lease_holder_actor_id WHERE uow_id = %Q",
                  a),
                "alice");
  ASSERT_RC(checkout("bob", "worker", got, &v), CHM_OK);
  ASSERT_STR_EQ(got, b);
  ASSERT_RC(checkout("alice", "worker", got, &v), CHM_NOTFOUND);
  ASSERT_STR_EQ(chm_instance_errmsg(inst),
                "no work for role 'worker' in 'inbox'");
  ASSERT_STR_EQ(q("SELECT group_concat(event, ',') FROM (SELECT event FROM "
                  "Interaction_Logs WHERE uow_id = %Q ORDER BY log_id)",
                  a),
                "GENESIS,GUARDIAN,GUARDIAN,INJECT,CHECKOUT");
  ASSERT_INT_EQ(
      qi("SELECT count(*) FROM Context_Injections WHERE uow_id = %Q", a), 1);
}

TEST(checkout_refusals) {
  char a[37], got[37], *json = (char *)"x";
  long long logs;
  new_instance("TK-BASIC");
  ASSERT_RC(genesis("{\"amount\": 5}", a), CHM_OK);
  logs = nlog();
  ASSERT_RC(chm_checkout(inst, "mallory", "worker", NULL, &json), CHM_DENIED);
  ASSERT_MSG("actor 'mallory' may not act as role 'worker' of workflow "
             "'TK-BASIC': the assignment is REVOKED");
  ASSERT_TRUE(json == NULL);
  ASSERT_RC(checkout("bob", "doctor", got, NULL), CHM_DENIED);
  ASSERT_MSG("actor 'bob' holds no ACTIVE assignment on role 'doctor'");
  ASSERT_RC(checkout("alice", "start", got, NULL), CHM_INVALID);
  ASSERT_MSG("role 'start' is the ALPHA of workflow 'TK-BASIC': it takes no "
             "work");
  ASSERT_RC(checkout("alice", "ghost", got, NULL), CHM_NOTFOUND);
  ASSERT_MSG("no role 'ghost' in instance");
  ASSERT_RC(checkout("ghost", "worker", got, NULL), CHM_NOTFOUND);
  ASSERT_MSG("no actor 'ghost'");
  ASSERT_RC(chm_checkout(inst, "alice", "worker", "review", &json),
            CHM_NOTFOUND);
  ASSERT_MSG("role 'worker' does not take work from 'review' (its inbound: "
             "'inbox')");
  ASSERT_RC(chm_checkout(inst, "alice", "worker", NULL, NULL), CHM_MISUSE);
  ASSERT_INT_EQ(nlog(), logs);
  ASSERT_STR_EQ(status_of(a), "PENDING");
  /* qualified role names and a chosen interaction work */
  ASSERT_RC(chm_checkout(inst, "alice", "TK-BASIC/worker", "inbox", &json),
            CHM_OK);
  chm_free(json);
}

TEST(gate_reject) {
  char bad[37], good[37], lone[37], got[37];
  new_instance("TK-BASIC");
  ASSERT_RC(genesis("{\"amount\": -5}", bad), CHM_OK);
  ASSERT_RC(genesis("{\"amount\": 7}", good), CHM_OK);
  ASSERT_RC(checkout("alice", "worker", got, NULL), CHM_OK);
  ASSERT_STR_EQ(got, good); /* the rejected one was skipped */
  ASSERT_STR_EQ(status_of(bad), "FAILED");
  ASSERT_STR_EQ(place_of(bad), "ate");
  ASSERT_STR_EQ(q("SELECT guardian_name || ' ' || guardian_type FROM "
                  "Token_Rejections WHERE uow_id = %Q",
                  bad),
                "positive CRITERIA_GATE");
  ASSERT_CONTAINS(q("SELECT failure_reason FROM UnitsOfWork WHERE uow_id = "
                    "%Q",
                    bad),
                  "rejected by guardian 'positive' (CRITERIA_GATE) on "
                  "'inbox': ");
  ASSERT_STR_EQ(q("SELECT group_concat(event || ':' || coalesce(decision, ''),"
                  " ',') FROM (SELECT * FROM Interaction_Logs WHERE uow_id = "
                  "%Q ORDER BY log_id)",
                  bad),
                "GENESIS:inbox,GUARDIAN:REJECT,REJECT:ate");
  ASSERT_INT_EQ(qi("SELECT count(*) FROM Interaction_Logs WHERE uow_id = %Q "
                   "AND guardian_id IS NOT NULL",
                   bad),
                1);
  /* a rejection with nothing else eligible is still committed */
  ASSERT_RC(genesis("{\"amount\": -1}", lone), CHM_OK);
  ASSERT_RC(checkout("alice", "worker", got, NULL), CHM_NOTFOUND);
  ASSERT_STR_EQ(status_of(lone), "FAILED");
  ASSERT_INT_EQ(qi("SELECT count(*) FROM Token_Rejections"), 2);
  /* a missing field rejects too, without crashing */
  ASSERT_RC(genesis("{}", lone), CHM_OK);
  ASSERT_RC(checkout("alice", "worker", got, NULL), CHM_NOTFOUND);
  ASSERT_STR_EQ(status_of(lone), "FAILED");
}

TEST(context_injection) {
  char a[37], got[37], *json = NULL;
  long long v;
  new_instance("TK-BASIC");
  ASSERT_RC(chm_set_lease_ms(inst, 1000), CHM_OK);
  ASSERT_RC(genesis("{\"amount\": 500}", a), CHM_OK);
  ASSERT_RC(chm_checkout(inst, "alice", "worker", NULL, &json), CHM_OK);
  ASSERT_CONTAINS(json, "\"context\":{\"instructions\":\"check the amount\","
                        "\"knowledge\":[\"big amounts need a second look\"],"
                        "\"model\":\"large\"}");
  chm_free(json);
  ASSERT_STR_EQ(q("SELECT group_concat(field || '@' || rule_index, ',') FROM "
                  "(SELECT * FROM Context_Injections ORDER BY rowid)"),
                "model@1,knowledge@1,instructions@2");
  ASSERT_INT_EQ(qi("SELECT count(*) FROM Interaction_Logs WHERE event = "
                   "'INJECT'"),
                3);
  /* back in the inbox (lease lapses, Chronos, Tau): a second checkout
  ** changes nothing in the context, so it records nothing */
  chm_clock_advance(1001);
  ASSERT_RC(chm_sweep(inst, NULL), CHM_OK);
  ASSERT_RC(checkout("alice", "clock", got, &v), CHM_OK);
  ASSERT_RC(submit(a, "alice", v, NULL), CHM_OK);
  ASSERT_STR_EQ(place_of(a), "inbox");
  ASSERT_RC(chm_checkout(inst, "alice", "worker", NULL, &json), CHM_OK);
  ASSERT_CONTAINS(json, "\"knowledge\":[\"big amounts need a second look\"],");
  chm_free(json);
  ASSERT_INT_EQ(qi("SELECT count(*) FROM Context_Injections"), 3);
  ASSERT_INT_EQ(qi("SELECT count(*) FROM Interaction_Logs WHERE event = "
                   "'INJECT'"),
                3);
}

TEST(ambiguity_lock) {
  char a[37], got[37];
  long long v;
  new_instance("TK-BASIC");
  ASSERT_RC(
      genesis("{\"amount\": 5, \"fixable\": true, \"fix\": \"retry\"}", a),
      CHM_OK);
  /* 1: worker, 2: doctor (back to inbox), 3: worker, 4: doctor */
  ASSERT_RC(checkout("alice", "worker", got, &v), CHM_OK);
  ASSERT_RC(chm_fail(inst, a, "alice", "first try"), CHM_OK);
  ASSERT_RC(checkout("alice", "doctor", got, &v), CHM_OK);
  ASSERT_STR_EQ(got, a);
  ASSERT_RC(submit(a, "alice", v, NULL), CHM_OK);
  ASSERT_STR_EQ(status_of(a), "PENDING");
  ASSERT_STR_EQ(place_of(a), "inbox");
  ASSERT_RC(checkout("alice", "worker", got, &v), CHM_OK);
  ASSERT_RC(chm_fail(inst, a, "alice", "second try"), CHM_OK);
  ASSERT_RC(checkout("alice", "doctor", got, &v), CHM_OK);
  ASSERT_RC(submit(a, "alice", v, NULL), CHM_OK);
  ASSERT_INT_EQ(qi("SELECT checkout_count FROM UnitsOfWork"), 4);
  /* the bound (3) is reached: the token becomes ZOMBIED_SOFT */
  ASSERT_RC(checkout("alice", "worker", got, &v), CHM_NOTFOUND);
  ASSERT_STR_EQ(status_of(a), "ZOMBIED_SOFT");
  ASSERT_CONTAINS(q("SELECT failure_reason FROM UnitsOfWork"),
                  "ambiguity lock: checked out 4 times (max_interactions 3)");
  ASSERT_STR_EQ(q("SELECT event FROM Interaction_Logs ORDER BY log_id DESC "
                  "LIMIT 1"),
                "ZOMBIE");
  /* clarify: PENDING again, count reset, the text as an attribute */
  ASSERT_RC(chm_clarify(inst, a, "alice", "amount is right"), CHM_OK);
  ASSERT_STR_EQ(status_of(a), "PENDING");
  ASSERT_INT_EQ(qi("SELECT checkout_count FROM UnitsOfWork"), 0);
  ASSERT_STR_EQ(attr(a, "clarification"), "\"amount is right\"");
  ASSERT_STR_EQ(q("SELECT reasoning FROM UOW_Attributes WHERE key = "
                  "'clarification'"),
                "clarification by 'alice'");
  ASSERT_RC(chm_clarify(inst, a, "alice", "again"), CHM_STATE);
  ASSERT_STR_EQ(chm_instance_errmsg(inst),
                q("SELECT 'token ' || %Q || ' is "
                  "PENDING; clarify needs ZOMBIED_SOFT'",
                  a));
  ASSERT_RC(checkout("alice", "worker", got, &v), CHM_OK);
  ASSERT_STR_EQ(got, a);
}

/* ===================================================================== */
/* Submit                                                                 */
/* ===================================================================== */

TEST(submit_routes) {
  char r[37], d[37], n[37], s[37], got[37], *out = NULL;
  long long v;
  new_instance("TK-BASIC");
  ASSERT_RC(genesis("{\"amount\": 5, \"route\": \"review\"}", r), CHM_OK);
  ASSERT_RC(genesis("{\"amount\": 5, \"route\": \"done\"}", d), CHM_OK);
  ASSERT_RC(genesis("{\"amount\": 5, \"route\": \"nowhere\"}", n), CHM_OK);
  ASSERT_RC(genesis("{\"amount\": 5, \"route\": \"sink\"}", s), CHM_OK);
  /* ACTIVE -> PENDING (a BETA consumes review) */
  ASSERT_RC(checkout("alice", "worker", got, &v), CHM_OK);
  ASSERT_STR_EQ(got, r);
  ASSERT_RC(chm_submit(inst, r, "alice", v,
                       "{\"set\": {\"note\": \"ok\", \"amount\": 5}, "
                       "\"reasoning\": \"looked fine\"}",
                       &out),
            CHM_OK);
  ASSERT_STR_EQ(out, q("SELECT '{\"uow_id\":\"' || %Q || '\",\"status\":"
                       "\"PENDING\",\"interaction\":\"review\",\"version\":3,"
                       "\"children\":[]}'",
                       r));
  chm_free(out);
  ASSERT_STR_EQ(status_of(r), "PENDING");
  ASSERT_STR_EQ(place_of(r), "review");
  /* only the changed value was written */
  ASSERT_INT_EQ(qi("SELECT count(*) FROM UOW_Attributes WHERE uow_id = %Q", r),
                3);
  ASSERT_STR_EQ(q("SELECT reasoning FROM UOW_Attributes WHERE key = 'note'"),
                "looked fine");
  ASSERT_STR_EQ(q("SELECT lease_holder_actor_id IS NULL AND lease_expires_at "
                  "IS NULL FROM UnitsOfWork WHERE uow_id = %Q",
                  r),
                "1");
  /* ACTIVE -> COMPLETED (the Cerberus room) */
  ASSERT_RC(checkout("alice", "worker", got, &v), CHM_OK);
  ASSERT_RC(submit(d, "alice", v, "{}"), CHM_OK);
  ASSERT_STR_EQ(status_of(d), "COMPLETED");
  ASSERT_STR_EQ(place_of(d), "joined");
  /* ACTIVE -> FAILED (no route matches: the Ate) */
  ASSERT_RC(checkout("alice", "worker", got, &v), CHM_OK);
  ASSERT_RC(submit(n, "alice", v, NULL), CHM_OK);
  ASSERT_STR_EQ(status_of(n), "FAILED");
  ASSERT_STR_EQ(place_of(n), "ate");
  ASSERT_CONTAINS(q("SELECT failure_reason FROM UnitsOfWork WHERE uow_id = "
                    "%Q",
                    n),
                  "no route matched after role 'worker': tried "
                  "'worker:out:review' (routing: no branch matched");
  /* it says "no route matched" once */
  ASSERT_TRUE(strstr(q("SELECT failure_reason FROM UnitsOfWork WHERE uow_id "
                       "= %Q",
                       n),
                     "no route matched for") == NULL);
  /* ACTIVE -> COMPLETED (a role with no outbound) */
  ASSERT_RC(checkout("alice", "worker", got, &v), CHM_OK);
  ASSERT_RC(submit(s, "alice", v, NULL), CHM_OK);
  ASSERT_STR_EQ(status_of(s), "PENDING");
  ASSERT_STR_EQ(place_of(s), "sink");
  ASSERT_RC(checkout("alice", "drain", got, &v), CHM_OK);
  ASSERT_RC(submit(s, "alice", v, NULL), CHM_OK);
  ASSERT_STR_EQ(status_of(s), "COMPLETED");
  ASSERT_STR_EQ(place_of(s), "sink");
  /* the reviewer moves r on */
  ASSERT_RC(checkout("bob", "reviewer", got, &v), CHM_OK);
  ASSERT_STR_EQ(got, r);
  ASSERT_RC(submit(r, "bob", v, NULL), CHM_OK);
  ASSERT_STR_EQ(status_of(r), "COMPLETED");
  ASSERT_STR_EQ(q("SELECT decision FROM Interaction_Logs WHERE uow_id = %Q "
                  "AND event = 'SUBMIT' ORDER BY log_id DESC LIMIT 1",
                  r),
                "joined");
}

TEST(submit_refusals) {
  char a[37], p[37], e[37], got[37];
  long long v, logs, attrs;
  new_instance("TK-BASIC");
  ASSERT_RC(chm_set_lease_ms(inst, 1000), CHM_OK);
  ASSERT_RC(genesis("{\"amount\": 5, \"route\": \"done\"}", a), CHM_OK);
  ASSERT_RC(genesis("{\"amount\": 5}", p), CHM_OK);
  ASSERT_RC(checkout("alice", "worker", got, &v), CHM_OK);
  ASSERT_STR_EQ(got, a);
  logs = nlog();
  attrs = nattr();
  ASSERT_RC(submit(a, "bob", v, NULL), CHM_DENIED);
  ASSERT_STR_EQ(chm_instance_errmsg(inst),
                q("SELECT 'token ' || %Q || ' is held by ''alice''; only the "
                  "lease holder may submit it (''bob'' may not)'",
                  a));
  ASSERT_RC(submit(a, "alice", v - 1, "{\"set\": {\"x\": 1}}"), CHM_CONFLICT);
  ASSERT_STR_EQ(chm_instance_errmsg(inst),
                q("SELECT 'token ' || %Q || ' is at version 2, not 1: it "
                  "changed since it was read (now ACTIVE in ''inbox''); read "
                  "it again'",
                  a));
  ASSERT_RC(submit(a, "alice", v, "{\"sett\": {}}"), CHM_INVALID);
  ASSERT_MSG("unknown key 'sett' in changes");
  ASSERT_RC(submit(a, "alice", v, "{\"set\": [1]}"), CHM_INVALID);
  ASSERT_MSG("changes.set must be a JSON object, not an array");
  ASSERT_RC(submit(a, "alice", v, "[]"), CHM_INVALID);
  ASSERT_RC(submit(a, "alice", v, "{\"set\": {\"x\": 1}, \"give_up\": true}"),
            CHM_INVALID);
  ASSERT_MSG("give_up is for EPSILON roles; role 'worker' is BETA");
  ASSERT_RC(submit(a, "alice", v, "{\"end\": true}"), CHM_INVALID);
  ASSERT_MSG("end is for TAU roles");
  ASSERT_RC(submit(a, "alice", v, "{\"children\": [{\"a\": 1}, {\"b\": 2}]}"),
            CHM_INVALID);
  ASSERT_MSG("role 'worker' is HOMOGENEOUS, so every child needs the same "
             "keys; child 1 has a, child 2 has b");
  ASSERT_RC(submit(a, "alice", v, "{\"fail\": \"x\", \"children\": [{}]}"),
            CHM_INVALID);
  ASSERT_RC(submit(p, "alice", 1, NULL), CHM_STATE);
  ASSERT_STR_EQ(chm_instance_errmsg(inst),
                q("SELECT 'token ' || %Q || ' is PENDING; submit needs ACTIVE "
                  "(check it out first)'",
                  p));
  ASSERT_RC(submit("01234567-89ab-7def-8123-456789abcdef", "alice", 1, NULL),
            CHM_NOTFOUND);
  ASSERT_MSG("no token '01234567-89ab-7def-8123-456789abcdef'");
  ASSERT_RC(submit(a, "nobody", v, NULL), CHM_NOTFOUND);
  /* nothing was written by any refusal */
  ASSERT_INT_EQ(nlog(), logs);
  ASSERT_INT_EQ(nattr(), attrs);
  ASSERT_INT_EQ(version_of(a), v);
  /* an expired lease refuses submit and heartbeat */
  chm_clock_advance(1001);
  ASSERT_RC(submit(a, "alice", v, NULL), CHM_STATE);
  ASSERT_MSG("expired at 2027-01-15T08:00:01.000Z");
  ASSERT_RC(chm_heartbeat(inst, a, "alice"), CHM_STATE);
  /* children on a role without a strategy (an EPSILON) */
  ASSERT_RC(genesis("{\"amount\": 5, \"fixable\": true}", e), CHM_OK);
  ASSERT_RC(checkout("alice", "worker", got, &v), CHM_OK);
  ASSERT_STR_EQ(got, p);
  ASSERT_RC(chm_fail(inst, p, "alice", NULL), CHM_OK);
  ASSERT_STR_EQ(
      q("SELECT failure_reason FROM UnitsOfWork WHERE uow_id = %Q", p),
      "failed by 'alice'");
  ASSERT_RC(checkout("alice", "worker", got, &v), CHM_OK);
  ASSERT_RC(chm_fail(inst, e, "alice", "needs a doctor"), CHM_OK);
  ASSERT_RC(checkout("alice", "doctor", got, &v), CHM_OK);
  ASSERT_STR_EQ(got, e);
  ASSERT_RC(submit(e, "alice", v, "{\"children\": [{\"a\": 1}]}"), CHM_INVALID);
  ASSERT_MSG("role 'doctor' has no decomposition strategy");
}

TEST(fail) {
  char a[37], got[37];
  long long v, logs;
  new_instance("TK-BASIC");
  ASSERT_RC(genesis("{\"amount\": 5}", a), CHM_OK);
  ASSERT_RC(chm_fail(inst, a, "alice", "x"), CHM_STATE);
  ASSERT_MSG("is PENDING; fail needs ACTIVE");
  ASSERT_RC(chm_set_lease_ms(inst, 1000), CHM_OK);
  ASSERT_RC(checkout("alice", "worker", got, &v), CHM_OK);
  logs = nlog();
  ASSERT_RC(chm_fail(inst, a, "bob", "x"), CHM_DENIED);
  ASSERT_STR_EQ(chm_instance_errmsg(inst),
                q("SELECT 'token ' || %Q || ' is held by ''alice''; only the "
                  "lease holder may fail it (''bob'' may not)'",
                  a));
  /* nothing changed: log, version, status, lease holder and expiry */
  ASSERT_INT_EQ(nlog(), logs);
  ASSERT_INT_EQ(version_of(a), v);
  ASSERT_STR_EQ(q("SELECT u.status || ' ' || h.name || ' ' || "
                  "u.lease_expires_at || ' ' || (u.failure_reason IS NULL) "
                  "FROM UnitsOfWork u JOIN Local_Actors h ON h.actor_id = "
                  "u.lease_holder_actor_id"),
                q("SELECT 'ACTIVE alice ' || %lld || ' 1'", T0 + 1000));
  ASSERT_RC(chm_fail(inst, a, "alice", "the scan is unreadable"), CHM_OK);
  ASSERT_STR_EQ(status_of(a), "FAILED");
  ASSERT_STR_EQ(place_of(a), "ate");
  ASSERT_STR_EQ(q("SELECT failure_reason FROM UnitsOfWork"),
                "the scan is unreadable");
  ASSERT_STR_EQ(q("SELECT event || ' ' || from_status || ' ' || to_status "
                  "FROM Interaction_Logs ORDER BY log_id DESC LIMIT 1"),
                "FAIL ACTIVE FAILED");
  ASSERT_RC(chm_fail(inst, a, "alice", "x"), CHM_STATE);
}

/* ===================================================================== */
/* Sweeps                                                                 */
/* ===================================================================== */

TEST(heartbeat_and_zombie_sweep) {
  char a[37], got[37], *report = NULL;
  long long v, logs;
  new_instance("TK-BASIC");
  ASSERT_RC(chm_set_lease_ms(inst, 1000), CHM_OK);
  ASSERT_RC(genesis("{\"amount\": 5}", a), CHM_OK);
  ASSERT_RC(checkout("alice", "worker", got, &v), CHM_OK);
  chm_clock_advance(800);
  logs = nlog();
  ASSERT_RC(chm_heartbeat(inst, a, "bob"), CHM_DENIED);
  ASSERT_STR_EQ(chm_instance_errmsg(inst),
                q("SELECT 'token ' || %Q || ' is held by ''alice''; only the "
                  "lease holder may heartbeat it (''bob'' may not)'",
                  a));
  /* nothing changed: log, version, status, lease holder and expiry */
  ASSERT_INT_EQ(nlog(), logs);
  ASSERT_INT_EQ(version_of(a), v);
  ASSERT_STR_EQ(q("SELECT u.status || ' ' || h.name || ' ' || "
                  "u.lease_expires_at FROM UnitsOfWork u JOIN Local_Actors h "
                  "ON h.actor_id = u.lease_holder_actor_id"),
                q("SELECT 'ACTIVE alice ' || %lld", T0 + 1000));
  ASSERT_RC(chm_heartbeat(inst, a, "alice"), CHM_OK);
  ASSERT_INT_EQ(qi("SELECT lease_expires_at FROM UnitsOfWork"), T0 + 1800);
  ASSERT_INT_EQ(version_of(a), v); /* a heartbeat is not a change of data */
  chm_clock_advance(900);
  ASSERT_RC(chm_sweep(inst, &report), CHM_OK);
  ASSERT_STR_EQ(report, "{\"zombies\":0,\"stale\":0,\"zombie_ids\":[],"
                        "\"stale_ids\":[]}");
  chm_free(report);
  ASSERT_STR_EQ(status_of(a), "ACTIVE");
  chm_clock_advance(101);
  ASSERT_RC(chm_sweep(inst, &report), CHM_OK);
  ASSERT_INT_EQ(jint(report, "zombies"), 1);
  ASSERT_CONTAINS(report, a);
  chm_free(report);
  ASSERT_STR_EQ(status_of(a), "FAILED");
  ASSERT_STR_EQ(place_of(a), "chronos");
  ASSERT_STR_EQ(q("SELECT lease_holder_actor_id IS NULL FROM UnitsOfWork"),
                "1");
  ASSERT_STR_EQ(q("SELECT failure_reason FROM UnitsOfWork"),
                "lease of 'alice' expired at 2027-01-15T08:00:01.800Z "
                "without a heartbeat");
  ASSERT_STR_EQ(q("SELECT event FROM Interaction_Logs ORDER BY log_id DESC "
                  "LIMIT 1"),
                "ZOMBIE_SWEEP");
  ASSERT_RC(submit(a, "alice", v, NULL), CHM_CONFLICT);
}

TEST(stale_sweep) {
  char d[37], c[37], got[37], *report = NULL;
  long long v;
  new_instance("TK-BASIC");
  /* a COMPLETED base waits in the Cerberus room (limit 120 s) with a
  ** COMPLETED child: only the base is stale */
  ASSERT_RC(genesis("{\"amount\": 5, \"route\": \"done\"}", d), CHM_OK);
  ASSERT_RC(checkout("alice", "worker", got, &v), CHM_OK);
  ASSERT_RC(submit(d, "alice", v, "{\"children\": [{\"sku\": \"a\"}]}"),
            CHM_OK);
  ASSERT_RC(checkout("alice", "pricer", c, &v), CHM_OK);
  ASSERT_RC(submit(c, "alice", v, NULL), CHM_OK);
  ASSERT_STR_EQ(status_of(d), "COMPLETED");
  ASSERT_STR_EQ(status_of(c), "COMPLETED");
  chm_clock_advance(119000);
  ASSERT_RC(chm_sweep(inst, &report), CHM_OK);
  ASSERT_INT_EQ(jint(report, "stale"), 0);
  chm_free(report);
  chm_clock_advance(2000);
  ASSERT_RC(chm_sweep(inst, &report), CHM_OK);
  ASSERT_INT_EQ(jint(report, "stale"), 1);
  ASSERT_INT_EQ(jint(report, "zombies"), 0);
  ASSERT_CONTAINS(report, d);
  chm_free(report);
  ASSERT_STR_EQ(status_of(d), "TIMEOUT");
  ASSERT_STR_EQ(place_of(d), "chronos");
  ASSERT_STR_EQ(status_of(c), "COMPLETED");
  ASSERT_INT_EQ(qi("SELECT finished_child_count FROM UnitsOfWork WHERE "
                   "uow_id = %Q",
                   d),
                1);
  ASSERT_STR_EQ(
      q("SELECT failure_reason FROM UnitsOfWork WHERE uow_id = %Q", d),
      "stale: COMPLETED in 'joined' since 2027-01-15T08:00:00.000Z, "
      "longer than its stale_token_limit_seconds");
}

TEST(stale_pending) {
  char a[37], *report = NULL;
  new_instance("TK-BASIC");
  ASSERT_RC(genesis("{\"amount\": 5}", a), CHM_OK);
  chm_clock_advance(59000);
  ASSERT_RC(chm_sweep(inst, &report), CHM_OK);
  ASSERT_INT_EQ(jint(report, "stale"), 0);
  chm_free(report);
  chm_clock_advance(1001);
  ASSERT_RC(chm_sweep(inst, &report), CHM_OK);
  ASSERT_STR_EQ(report, q("SELECT '{\"zombies\":0,\"stale\":1,\"zombie_ids\":"
                          "[],\"stale_ids\":[\"' || %Q || '\"]}'",
                          a));
  chm_free(report);
  ASSERT_STR_EQ(status_of(a), "TIMEOUT");
  ASSERT_STR_EQ(place_of(a), "chronos");
  ASSERT_STR_EQ(q("SELECT event || ' ' || from_status || ' ' || to_status "
                  "FROM Interaction_Logs ORDER BY log_id DESC LIMIT 1"),
                "STALE_SWEEP PENDING TIMEOUT");
}

/* ===================================================================== */
/* Epsilon, Tau, Omega, decomposition                                     */
/* ===================================================================== */

TEST(epsilon) {
  char waits[37], fix[37], retry[37], quit[37], got[37];
  long long v, wv, logs;
  new_instance("TK-BASIC");
  ASSERT_RC(genesis("{\"amount\": 5}", waits), CHM_OK);
  ASSERT_RC(genesis("{\"amount\": 5, \"fixable\": true}", fix), CHM_OK);
  ASSERT_RC(
      genesis("{\"amount\": 5, \"fixable\": true, \"fix\": \"retry\"}", retry),
      CHM_OK);
  ASSERT_RC(genesis("{\"amount\": 5, \"fixable\": true}", quit), CHM_OK);
  for (int i = 0; i < 4; i++) {
    ASSERT_RC(checkout("alice", "worker", got, &v), CHM_OK);
    ASSERT_RC(chm_fail(inst, got, "alice", "to the Ate"), CHM_OK);
  }
  /* the first in the Ate fails the doctor's gate: it stays where it is,
  ** skipped, and the rejection is recorded (log row and record) */
  wv = version_of(waits);
  ASSERT_RC(checkout("alice", "doctor", got, &v), CHM_OK);
  ASSERT_STR_EQ(got, fix);
  ASSERT_STR_EQ(status_of(waits), "FAILED");
  ASSERT_STR_EQ(place_of(waits), "ate");
  ASSERT_INT_EQ(version_of(waits), wv);
  ASSERT_INT_EQ(qi("SELECT count(*) FROM Token_Rejections"), 1);
  ASSERT_STR_EQ(q("SELECT guardian_name || ' ' || guardian_type FROM "
                  "Token_Rejections WHERE uow_id = %Q",
                  waits),
                "fixable CRITERIA_GATE");
  ASSERT_STR_EQ(q("SELECT group_concat(l.event || ':' || l.decision || ':' || "
                  "g.name || ':' || json_extract(l.details, "
                  "'$.token_version'), ',') FROM Interaction_Logs l JOIN "
                  "Local_Guardians g USING (guardian_id) WHERE l.uow_id = %Q "
                  "AND l.decision = 'REJECT'",
                  waits),
                q("SELECT 'GUARDIAN:REJECT:fixable:' || %lld", wv));
  /* routed into the Cerberus room: REMEDIATED */
  ASSERT_RC(submit(fix, "alice", v, "{\"set\": {\"fixed\": true}}"), CHM_OK);
  ASSERT_STR_EQ(status_of(fix), "REMEDIATED");
  ASSERT_STR_EQ(place_of(fix), "joined");
  /* routed elsewhere: PENDING; the unchanged rejected token is not
  ** recorded again */
  ASSERT_RC(checkout("alice", "doctor", got, &v), CHM_OK);
  ASSERT_STR_EQ(got, retry);
  ASSERT_INT_EQ(qi("SELECT count(*) FROM Token_Rejections"), 1);
  ASSERT_INT_EQ(qi("SELECT count(*) FROM Interaction_Logs WHERE uow_id = %Q "
                   "AND event = 'GUARDIAN' AND decision = 'REJECT'",
                   waits),
                1);
  ASSERT_RC(submit(retry, "alice", v, NULL), CHM_OK);
  ASSERT_STR_EQ(status_of(retry), "PENDING");
  ASSERT_STR_EQ(place_of(retry), "inbox");
  /* give_up: ARCHIVED, in place */
  ASSERT_RC(checkout("alice", "doctor", got, &v), CHM_OK);
  ASSERT_STR_EQ(got, quit);
  ASSERT_RC(submit(quit, "alice", v, "{\"give_up\": true}"), CHM_OK);
  ASSERT_STR_EQ(status_of(quit), "ARCHIVED");
  ASSERT_STR_EQ(place_of(quit), "ate");
  logs = nlog();
  ASSERT_RC(checkout("alice", "doctor", got, &v), CHM_NOTFOUND);
  ASSERT_STR_EQ(chm_instance_errmsg(inst),
                q("SELECT 'no work for role ''doctor'' in ''ate'': 1 token "
                  "waits there but none can be taken: token ' || %Q || ' was "
                  "rejected by guardian ''fixable'' (CRITERIA_GATE): ' || "
                  "reason FROM Token_Rejections",
                  waits));
  ASSERT_INT_EQ(nlog(), logs); /* polling again records nothing */
  ASSERT_INT_EQ(qi("SELECT count(*) FROM Token_Rejections"), 1);
  /* a new version of the token is a new decision: recorded once more */
  ASSERT_RC(chm_pause(inst, waits, "alice"), CHM_OK);
  ASSERT_RC(chm_resume(inst, waits, "alice"), CHM_OK);
  ASSERT_STR_EQ(status_of(waits), "FAILED");
  ASSERT_RC(checkout("alice", "doctor", got, &v), CHM_NOTFOUND);
  ASSERT_INT_EQ(qi("SELECT count(*) FROM Token_Rejections WHERE uow_id = %Q",
                   waits),
                2);
  ASSERT_RC(checkout("alice", "doctor", got, &v), CHM_NOTFOUND);
  ASSERT_INT_EQ(qi("SELECT count(*) FROM Token_Rejections WHERE uow_id = %Q",
                   waits),
                2);
  /* Omega takes a REMEDIATED base */
  ASSERT_RC(checkout("alice", "close", got, &v), CHM_OK);
  ASSERT_STR_EQ(got, fix);
  ASSERT_RC(submit(fix, "alice", v, NULL), CHM_OK);
  ASSERT_STR_EQ(status_of(fix), "FINALIZED");
}

TEST(tau) {
  char up[37], back[37], got[37], *report = NULL;
  long long v;
  new_instance("TK-BASIC");
  ASSERT_RC(genesis("{\"amount\": 5}", up), CHM_OK);
  ASSERT_RC(genesis("{\"amount\": 5}", back), CHM_OK);
  chm_clock_advance(61000);
  ASSERT_RC(chm_sweep(inst, &report), CHM_OK);
  ASSERT_INT_EQ(jint(report, "stale"), 2);
  chm_free(report);
  /* TIMEOUT in Chronos -> ACTIVE; routed to the Ate: FAILED (escalation) */
  ASSERT_RC(checkout("alice", "clock", got, &v), CHM_OK);
  ASSERT_STR_EQ(got, up);
  ASSERT_RC(submit(up, "alice", v, "{\"set\": {\"escalate\": true}}"), CHM_OK);
  ASSERT_STR_EQ(status_of(up), "FAILED");
  ASSERT_STR_EQ(place_of(up), "ate");
  ASSERT_STR_EQ(
      q("SELECT failure_reason FROM UnitsOfWork WHERE uow_id = %Q", up),
      "sent to 'ate' by role 'clock'");
  /* elsewhere: PENDING */
  ASSERT_RC(checkout("alice", "clock", got, &v), CHM_OK);
  ASSERT_STR_EQ(got, back);
  ASSERT_RC(submit(back, "alice", v, NULL), CHM_OK);
  ASSERT_STR_EQ(status_of(back), "PENDING");
  ASSERT_STR_EQ(place_of(back), "inbox");
}

TEST(tau_end_finalizes_children) {
  char base[37], got[37], *out = NULL, *report = NULL;
  long long v;
  new_instance("TK-BASIC");
  ASSERT_RC(chm_set_lease_ms(inst, 1000), CHM_OK);
  ASSERT_RC(genesis("{\"amount\": 5, \"route\": \"review\"}", base), CHM_OK);
  ASSERT_RC(checkout("alice", "worker", got, &v), CHM_OK);
  ASSERT_RC(submit(base, "alice", v,
                   "{\"children\": [{\"sku\": \"a\"}, {\"sku\": \"b\"}]}"),
            CHM_OK);
  ASSERT_STR_EQ(place_of(base), "review");
  ASSERT_RC(checkout("bob", "reviewer", got, &v), CHM_OK);
  chm_clock_advance(1001);
  ASSERT_RC(chm_sweep(inst, &report), CHM_OK); /* FAILED to Chronos */
  chm_free(report);
  ASSERT_STR_EQ(place_of(base), "chronos");
  ASSERT_RC(chm_checkout(inst, "alice", "clock", NULL, &out), CHM_OK);
  ASSERT_STR_EQ(jstr(out, "uow_id"), base);
  ASSERT_INT_EQ(jint(out, "child_count"), 2);
  v = jint(out, "version");
  chm_free(out);
  ASSERT_RC(submit(base, "alice", v, "{\"end\": true}"), CHM_OK);
  ASSERT_STR_EQ(status_of(base), "FINALIZED");
  ASSERT_INT_EQ(qi("SELECT count(*) FROM UnitsOfWork WHERE parent_id = %Q "
                   "AND status = 'FINALIZED'",
                   base),
                2);
  ASSERT_INT_EQ(qi("SELECT finished_child_count FROM UnitsOfWork WHERE "
                   "uow_id = %Q",
                   base),
                2);
  ASSERT_INT_EQ(qi("SELECT count(*) FROM Interaction_Logs WHERE event = "
                   "'FINALIZE_CHILD'"),
                2);
}

/* A checkout that finds tokens waiting but none it may take says which
** one waits first and why, and changes nothing. */
TEST(no_work_names_the_token) {
  char base[37], kid[37], done[37], k2[2][37], got[37];
  long long v, logs, vb, vk;
  new_instance("TK-BASIC");
  /* a child COMPLETED in the Cerberus room, its base still in review */
  ASSERT_RC(genesis("{\"amount\": 5, \"route\": \"review\"}", base), CHM_OK);
  ASSERT_RC(checkout("alice", "worker", got, &v), CHM_OK);
  ASSERT_RC(submit(base, "alice", v, "{\"children\": [{\"sku\": \"a\"}]}"),
            CHM_OK);
  ASSERT_RC(checkout("alice", "pricer", kid, &v), CHM_OK);
  ASSERT_RC(submit(kid, "alice", v, NULL), CHM_OK);
  ASSERT_STR_EQ(status_of(kid), "COMPLETED");
  ASSERT_STR_EQ(place_of(kid), "joined");
  logs = nlog();
  vk = version_of(kid);
  ASSERT_RC(checkout("alice", "close", got, &v), CHM_NOTFOUND);
  ASSERT_STR_EQ(chm_instance_errmsg(inst),
                q("SELECT 'no work for role ''close'' in ''joined'': 1 token "
                  "waits there but none can be taken: token ' || %Q || ' is "
                  "a child (parent ' || %Q || ') — OMEGA takes only base "
                  "tokens, which bring their children'",
                  kid, base));
  ASSERT_INT_EQ(nlog(), logs);
  ASSERT_INT_EQ(version_of(kid), vk);
  ASSERT_STR_EQ(status_of(kid), "COMPLETED");
  /* a Cerberus wait, in a fresh instance: a base COMPLETED in the room
  ** with 1 of 2 children finished (the base came first, so it is named) */
  chm_instance_close(inst);
  sqlite3_close(raw);
  new_instance("TK-BASIC");
  ASSERT_RC(genesis("{\"amount\": 5, \"route\": \"done\"}", done), CHM_OK);
  ASSERT_RC(checkout("alice", "worker", got, &v), CHM_OK);
  ASSERT_STR_EQ(got, done);
  ASSERT_RC(
      submit(done, "alice", v,
             "{\"children\": [{\"sku\": \"b\"}, {\"sku\": \"c\"}]}"),
      CHM_OK);
  ASSERT_RC(checkout("alice", "pricer", k2[0], &v), CHM_OK);
  ASSERT_RC(submit(k2[0], "alice", v, NULL), CHM_OK);
  ASSERT_STR_EQ(status_of(done), "COMPLETED");
  logs = nlog();
  vb = version_of(done);
  ASSERT_RC(checkout("alice", "close", got, &v), CHM_NOTFOUND);
  ASSERT_STR_EQ(chm_instance_errmsg(inst),
                q("SELECT 'no work for role ''close'' in ''joined'': 2 tokens "
                  "wait there but none can be taken: base ' || %Q || ' waits "
                  "for its children (1 of 2 finished)'",
                  done));
  ASSERT_INT_EQ(nlog(), logs);
  ASSERT_INT_EQ(version_of(done), vb);
  ASSERT_STR_EQ(status_of(done), "COMPLETED");
  /* Epsilon and a token in the Ate that is not FAILED (paused there) */
  ASSERT_RC(genesis("{\"amount\": 5, \"fixable\": true}", k2[1]), CHM_OK);
  ASSERT_RC(checkout("alice", "worker", got, &v), CHM_OK);
  ASSERT_STR_EQ(got, k2[1]);
  ASSERT_RC(chm_fail(inst, got, "alice", "to the Ate"), CHM_OK);
  ASSERT_RC(chm_pause(inst, got, "alice"), CHM_OK);
  logs = nlog();
  vb = version_of(got);
  ASSERT_RC(checkout("alice", "doctor", got, &v), CHM_NOTFOUND);
  ASSERT_STR_EQ(chm_instance_errmsg(inst),
                q("SELECT 'no work for role ''doctor'' in ''ate'': 1 token "
                  "waits there but none can be taken: token ' || %Q || ' is "
                  "PAUSED — EPSILON takes only FAILED tokens (resume it "
                  "first)'",
                  k2[1]));
  ASSERT_INT_EQ(nlog(), logs);
  ASSERT_INT_EQ(version_of(k2[1]), vb);
  ASSERT_STR_EQ(status_of(k2[1]), "PAUSED");
  /* nothing waiting at all: the short answer */
  ASSERT_RC(checkout("alice", "drain", got, &v), CHM_NOTFOUND);
  ASSERT_STR_EQ(chm_instance_errmsg(inst), "no work for role 'drain' in 'sink'");
}

/* Tau's forced end refuses while a descendant is ACTIVE under a lease,
** and changes nothing; paused, it is finalized with the base. */
TEST(tau_end_refuses_active_child) {
  char base[37], kids[2][37], got[37], *report = NULL;
  long long v, logs, vb;
  new_instance("TK-BASIC");
  ASSERT_RC(chm_set_lease_ms(inst, 1000), CHM_OK);
  ASSERT_RC(genesis("{\"amount\": 5, \"route\": \"review\"}", base), CHM_OK);
  ASSERT_RC(checkout("alice", "worker", got, &v), CHM_OK);
  ASSERT_RC(submit(base, "alice", v,
                   "{\"children\": [{\"sku\": \"a\"}, {\"sku\": \"b\"}]}"),
            CHM_OK);
  ASSERT_RC(checkout("bob", "reviewer", got, &v), CHM_OK);
  chm_clock_advance(1001);
  ASSERT_RC(chm_sweep(inst, &report), CHM_OK); /* base FAILED to Chronos */
  chm_free(report);
  ASSERT_STR_EQ(place_of(base), "chronos");
  ASSERT_RC(checkout("alice", "pricer", kids[0], &v), CHM_OK);
  ASSERT_STR_EQ(status_of(kids[0]), "ACTIVE");
  ASSERT_STR_EQ(q("SELECT uow_id FROM UnitsOfWork WHERE parent_id = %Q AND "
                  "uow_id <> %Q",
                  base, kids[0]),
                q("SELECT uow_id FROM UnitsOfWork WHERE parent_id = %Q AND "
                  "status = 'PENDING'",
                  base));
  snprintf(kids[1], 37, "%s",
           q("SELECT uow_id FROM UnitsOfWork WHERE parent_id = %Q AND "
             "status = 'PENDING'",
             base));
  ASSERT_RC(checkout("alice", "clock", got, &v), CHM_OK);
  ASSERT_STR_EQ(got, base);
  logs = nlog();
  vb = version_of(base);
  ASSERT_RC(submit(base, "alice", v, "{\"end\": true}"), CHM_STATE);
  ASSERT_STR_EQ(chm_instance_errmsg(inst),
                q("SELECT 'submit of token ' || %Q || ': end refused: its "
                  "child token ' || %Q || ' is ACTIVE, leased to ''alice'' "
                  "until 2027-01-15T08:00:02.001Z; wait for that lease to end "
                  "(its holder submits or fails it, or the zombie sweep takes "
                  "it) or pause it, then end again'",
                  base, kids[0]));
  /* nothing changed */
  ASSERT_INT_EQ(nlog(), logs);
  ASSERT_INT_EQ(version_of(base), vb);
  ASSERT_STR_EQ(status_of(base), "ACTIVE");
  ASSERT_STR_EQ(status_of(kids[0]), "ACTIVE");
  ASSERT_STR_EQ(q("SELECT a.name || ' ' || u.lease_expires_at FROM "
                  "UnitsOfWork u JOIN Local_Actors a ON a.actor_id = "
                  "u.lease_holder_actor_id WHERE uow_id = %Q",
                  kids[0]),
                q("SELECT 'alice ' || %lld", T0 + 2001));
  ASSERT_STR_EQ(status_of(kids[1]), "PENDING");
  /* paused, the child is finalized with the base, as the PENDING one */
  ASSERT_RC(chm_pause(inst, kids[0], "alice"), CHM_OK);
  ASSERT_RC(submit(base, "alice", v, "{\"end\": true}"), CHM_OK);
  ASSERT_STR_EQ(status_of(base), "FINALIZED");
  ASSERT_STR_EQ(status_of(kids[0]), "FINALIZED");
  ASSERT_STR_EQ(status_of(kids[1]), "FINALIZED");
}

/* Attribute keys are non-empty text without NUL: a NUL would cut the key
** short in C (overwriting another attribute). Refused everywhere,
** nothing written. */
TEST(attribute_keys_without_nul) {
  char a[37], got[37], *out = NULL;
  long long v, logs, attrs;
  new_instance("TK-BASIC");
  ASSERT_RC(genesis("{\"amount\": 5}", a), CHM_OK);
  logs = nlog();
  attrs = nattr();
  ASSERT_RC(chm_genesis(inst, NULL, "{\"a\": 1, \"a\\u0000b\": 2}", "alice",
                        &out),
            CHM_INVALID);
  ASSERT_MSG("genesis attributes has the key \"a\\u0000b\": an attribute key "
             "must be non-empty text without a NUL byte (\\u0000)");
  ASSERT_TRUE(out == NULL);
  ASSERT_RC(chm_genesis(inst, NULL, "{\"\": 1}", "alice", &out), CHM_INVALID);
  ASSERT_MSG("has the key \"\": an attribute key must be non-empty");
  ASSERT_INT_EQ(qi("SELECT count(*) FROM UnitsOfWork"), 1);
  ASSERT_RC(checkout("alice", "worker", got, &v), CHM_OK);
  ASSERT_INT_EQ(nlog(), logs + 4); /* two GUARDIAN, one INJECT, CHECKOUT */
  logs = nlog();
  ASSERT_RC(submit(a, "alice", v, "{\"set\": {\"amount\\u0000evil\": 999}}"),
            CHM_INVALID);
  ASSERT_MSG("changes.set has the key \"amount\\u0000evil\"");
  ASSERT_RC(submit(a, "alice", v,
                   "{\"children\": [{\"sku\": 1}, {\"sku\\u0000x\": 2}]}"),
            CHM_INVALID);
  ASSERT_MSG("has the key \"sku\\u0000x\"");
  ASSERT_RC(submit(a, "alice", v, "{\"teach\": {\"tip\\u0000\": 1}}"),
            CHM_INVALID);
  ASSERT_MSG("has the key \"tip\\u0000\"");
  ASSERT_INT_EQ(nlog(), logs);
  ASSERT_INT_EQ(nattr(), attrs);
  ASSERT_INT_EQ(version_of(a), v);
  ASSERT_STR_EQ(attr(a, "amount"), "5");
  ASSERT_INT_EQ(qi("SELECT count(*) FROM Local_Role_Attributes"), 0);
  ASSERT_INT_EQ(qi("SELECT count(*) FROM UnitsOfWork"), 1);
}

/* An actor's Personal Playbook reaches the actor at checkout, never a
** token: not the base's attributes, not its children's. */
TEST(private_memory_never_crosses) {
  char base[37], got[37], *json = NULL;
  long long v;
  new_instance("TK-BASIC");
  ASSERT_RC(chm_memory_set(inst, "worker", "alice", "secret", "\"s3cret\""),
            CHM_OK);
  ASSERT_RC(genesis("{\"amount\": 5, \"route\": \"done\"}", base), CHM_OK);
  ASSERT_RC(chm_checkout(inst, "alice", "worker", NULL, &json), CHM_OK);
  ASSERT_CONTAINS(json, "\"memory\":{\"secret\":\"s3cret\"}");
  v = jint(json, "version");
  chm_free(json);
  ASSERT_RC(submit(base, "alice", v,
                   "{\"set\": {\"n\": 1}, \"children\": [{\"sku\": \"a\"}, "
                   "{\"sku\": \"b\"}], \"teach\": {\"tip\": 2}}"),
            CHM_OK);
  ASSERT_INT_EQ(qi("SELECT count(*) FROM UnitsOfWork WHERE parent_id = %Q",
                   base),
                2);
  ASSERT_INT_EQ(qi("SELECT count(*) FROM UOW_Attributes WHERE key IN "
                   "('secret', 'tip') OR value LIKE '%%s3cret%%'"),
                0);
  /* the children carry the parent's values, none of the memory */
  ASSERT_STR_EQ(q("SELECT group_concat(k, ',') FROM (SELECT DISTINCT a.key "
                  "AS k FROM UOW_Attributes a JOIN UnitsOfWork u USING "
                  "(uow_id) WHERE u.parent_id = %Q ORDER BY k)",
                  base),
                "amount,n,route,sku");
  ASSERT_RC(checkout("alice", "pricer", got, &v), CHM_OK);
  (void)got;
  ASSERT_STR_EQ(q("SELECT a.name FROM Local_Role_Attributes m JOIN "
                  "Local_Actors a USING (actor_id) WHERE key = 'tip'"),
                "alice");
}

TEST(decomposition_and_omega) {
  char base[37], c1[37], c2[37], got[37];
  long long v;
  new_instance("TK-BASIC");
  ASSERT_RC(genesis("{\"amount\": 5, \"route\": \"done\"}", base), CHM_OK);
  ASSERT_RC(checkout("alice", "worker", got, &v), CHM_OK);
  ASSERT_RC(submit(base, "alice", v,
                   "{\"set\": {\"lines\": 2}, \"children\": [{\"sku\": \"a\", "
                   "\"amount\": 1}, {\"amount\": 5, \"sku\": \"b\"}], "
                   "\"reasoning\": \"split\"}"),
            CHM_OK);
  ASSERT_STR_EQ(status_of(base), "COMPLETED");
  ASSERT_STR_EQ(place_of(base), "joined");
  ASSERT_INT_EQ(
      qi("SELECT child_count FROM UnitsOfWork WHERE uow_id = %Q", base), 2);
  snprintf(c1, 37, "%s",
           q("SELECT uow_id FROM UnitsOfWork WHERE parent_id = "
             "%Q ORDER BY queue_seq LIMIT 1",
             base));
  snprintf(c2, 37, "%s",
           q("SELECT uow_id FROM UnitsOfWork WHERE parent_id = "
             "%Q ORDER BY queue_seq DESC LIMIT 1",
             base));
  ASSERT_STR_EQ(status_of(c1), "PENDING");
  ASSERT_STR_EQ(place_of(c1), "lines");
  /* version 1 rows copy the parent's current values, with lineage */
  ASSERT_INT_EQ(qi("SELECT count(*) FROM UOW_Attributes c JOIN UOW_Attributes "
                   "p ON p.attribute_id = c.lineage_attribute_id WHERE "
                   "c.uow_id = %Q AND c.version = 1 AND p.uow_id = %Q AND "
                   "p.value = c.value",
                   c1, base),
                3);
  ASSERT_STR_EQ(attr(c1, "lines"), "2");
  ASSERT_STR_EQ(attr(c1, "amount"), "1");
  ASSERT_INT_EQ(qi("SELECT max(version) FROM UOW_Attributes WHERE uow_id = %Q "
                   "AND key = 'amount'",
                   c1),
                2);
  ASSERT_INT_EQ(qi("SELECT max(version) FROM UOW_Attributes WHERE uow_id = %Q "
                   "AND key = 'amount'",
                   c2),
                1); /* same value: no row */
  ASSERT_STR_EQ(attr(c2, "sku"), "\"b\"");
  /* Cerberus: the base waits; Omega never takes a child */
  ASSERT_RC(checkout("alice", "close", got, &v), CHM_NOTFOUND);
  ASSERT_RC(checkout("alice", "pricer", got, &v), CHM_OK);
  ASSERT_STR_EQ(got, c1);
  ASSERT_RC(submit(c1, "alice", v, NULL), CHM_OK);
  ASSERT_STR_EQ(status_of(c1), "COMPLETED");
  ASSERT_INT_EQ(qi("SELECT finished_child_count FROM UnitsOfWork WHERE "
                   "uow_id = %Q",
                   base),
                1);
  ASSERT_RC(checkout("alice", "close", got, &v), CHM_NOTFOUND);
  /* leaving a finished state counts down, coming back counts up */
  ASSERT_RC(chm_pause(inst, c1, "alice"), CHM_OK);
  ASSERT_INT_EQ(qi("SELECT finished_child_count FROM UnitsOfWork WHERE "
                   "uow_id = %Q",
                   base),
                0);
  ASSERT_RC(chm_resume(inst, c1, "alice"), CHM_OK);
  ASSERT_INT_EQ(qi("SELECT finished_child_count FROM UnitsOfWork WHERE "
                   "uow_id = %Q",
                   base),
                1);
  ASSERT_RC(checkout("alice", "pricer", got, &v), CHM_OK);
  ASSERT_RC(submit(c2, "alice", v, NULL), CHM_OK);
  ASSERT_INT_EQ(qi("SELECT finished_child_count FROM UnitsOfWork WHERE "
                   "uow_id = %Q",
                   base),
                2);
  /* now Omega receives the base, and finalizes the children with it */
  ASSERT_RC(checkout("alice", "close", got, &v), CHM_OK);
  ASSERT_STR_EQ(got, base);
  ASSERT_RC(submit(base, "alice", v, NULL), CHM_OK);
  ASSERT_STR_EQ(status_of(base), "FINALIZED");
  ASSERT_STR_EQ(status_of(c1), "FINALIZED");
  ASSERT_STR_EQ(status_of(c2), "FINALIZED");
  ASSERT_INT_EQ(qi("SELECT finished_child_count FROM UnitsOfWork WHERE "
                   "uow_id = %Q",
                   base),
                2);
  ASSERT_RC(checkout("alice", "close", got, &v), CHM_NOTFOUND);
}

/* ===================================================================== */
/* Kill switches                                                          */
/* ===================================================================== */

TEST(pause_resume) {
  char a[37], got[37];
  long long v;
  new_instance("TK-BASIC");
  ASSERT_RC(chm_set_lease_ms(inst, 1000), CHM_OK);
  ASSERT_RC(genesis("{\"amount\": 5, \"route\": \"done\"}", a), CHM_OK);
  ASSERT_RC(chm_pause(inst, a, "bob"), CHM_OK);
  ASSERT_STR_EQ(status_of(a), "PAUSED");
  ASSERT_STR_EQ(q("SELECT paused_from_status FROM UnitsOfWork"), "PENDING");
  ASSERT_RC(checkout("alice", "worker", got, &v), CHM_NOTFOUND);
  ASSERT_RC(chm_pause(inst, a, "bob"), CHM_STATE);
  ASSERT_MSG("is PAUSED; pause needs a live token");
  ASSERT_RC(chm_resume(inst, a, NULL), CHM_OK);
  ASSERT_STR_EQ(status_of(a), "PENDING");
  ASSERT_STR_EQ(q("SELECT paused_from_status IS NULL FROM UnitsOfWork"), "1");
  ASSERT_RC(chm_resume(inst, a, NULL), CHM_STATE);
  ASSERT_MSG("is PENDING; resume needs PAUSED");
  /* an ACTIVE token: the lease is kept, renewed on resume; version moves */
  ASSERT_RC(checkout("alice", "worker", got, &v), CHM_OK);
  chm_clock_advance(900);
  ASSERT_RC(chm_pause(inst, a, NULL), CHM_OK);
  chm_clock_advance(5000);
  ASSERT_RC(chm_resume(inst, a, NULL), CHM_OK);
  ASSERT_STR_EQ(status_of(a), "ACTIVE");
  ASSERT_INT_EQ(qi("SELECT lease_expires_at FROM UnitsOfWork"), T0 + 6900);
  ASSERT_RC(submit(a, "alice", v, NULL), CHM_CONFLICT);
  ASSERT_RC(submit(a, "alice", v + 2, NULL), CHM_OK);
  ASSERT_STR_EQ(status_of(a), "COMPLETED");
  ASSERT_RC(checkout("alice", "close", got, &v), CHM_OK);
  ASSERT_RC(submit(a, "alice", v, NULL), CHM_OK);
  ASSERT_RC(chm_pause(inst, a, NULL), CHM_STATE);
  ASSERT_MSG("is FINALIZED; pause needs a live token");
  ASSERT_RC(chm_pause(inst, a, "ghost"), CHM_NOTFOUND);
}

TEST(instance_pause) {
  char a[37], got[37], *out = NULL;
  new_instance("TK-BASIC");
  ASSERT_RC(genesis("{\"amount\": 5}", a), CHM_OK);
  ASSERT_RC(chm_instance_pause(inst), CHM_OK);
  ASSERT_RC(chm_instance_pause(inst), CHM_STATE);
  ASSERT_MSG("is already PAUSED");
  ASSERT_RC(genesis("{}", got), CHM_STATE);
  ASSERT_MSG("is PAUSED; resume it first");
  ASSERT_RC(checkout("alice", "worker", got, NULL), CHM_STATE);
  ASSERT_RC(chm_pause(inst, a, NULL), CHM_STATE);
  ASSERT_RC(chm_sweep(inst, &out), CHM_STATE);
  ASSERT_RC(chm_run(inst, NULL, &out), CHM_STATE);
  ASSERT_RC(chm_memory_set(inst, "worker", NULL, "k", "1"), CHM_STATE);
  ASSERT_RC(chm_clarify(inst, a, NULL, "x"), CHM_STATE);
  /* queries and verify still work */
  ASSERT_RC(chm_token_get(inst, a, &out), CHM_OK);
  chm_free(out);
  ASSERT_RC(chm_tokens(inst, NULL, &out), CHM_OK);
  chm_free(out);
  ASSERT_RC(chm_queues(inst, &out), CHM_OK);
  chm_free(out);
  ASSERT_RC(chm_verify(inst, &out), CHM_OK);
  chm_free(out);
  ASSERT_STR_EQ(q("SELECT status FROM Instance_Context"), "PAUSED");
  ASSERT_RC(chm_instance_resume(inst), CHM_OK);
  ASSERT_RC(chm_instance_resume(inst), CHM_STATE);
  ASSERT_RC(checkout("alice", "worker", got, NULL), CHM_OK);
  ASSERT_STR_EQ(q("SELECT group_concat(event, ',') FROM Interaction_Logs "
                  "WHERE uow_id IS NULL"),
                "INSTANCE_PAUSE,INSTANCE_RESUME");
}

/* ===================================================================== */
/* The log                                                                */
/* ===================================================================== */

TEST(verify_and_tamper) {
  char a[37], got[37], *out = NULL;
  chm_instance *other = NULL;
  long long v;
  new_instance("TK-BASIC");
  ASSERT_RC(genesis("{\"amount\": 5, \"route\": \"done\"}", a), CHM_OK);
  ASSERT_RC(checkout("alice", "worker", got, &v), CHM_OK);
  /* a second handle on the same file continues the same chain */
  ASSERT_TRUE(chm_instance_open(inst_path, &other) == CHM_OK);
  ASSERT_TRUE(chm_genesis(other, NULL, "{\"amount\": 1}", "alice", &out) ==
              CHM_OK);
  chm_free(out);
  chm_instance_close(other);
  ASSERT_RC(submit(a, "alice", v, NULL), CHM_OK);
  ASSERT_RC(chm_verify(inst, &out), CHM_OK);
  ASSERT_STR_EQ(out, q("SELECT '{\"rows\":' || count(*) || ',\"ok\":true,"
                       "\"first_bad\":null,\"head_log_id\":' || max(log_id) "
                       "|| ',\"head_hash\":\"' || (SELECT hash FROM "
                       "Interaction_Logs ORDER BY log_id DESC LIMIT 1) || "
                       "'\"}' FROM Interaction_Logs"));
  chm_free(out);
  /* deleting the newest row leaves a chain that verifies (nothing in the
  ** store anchors the tail): the head the report gave is what shows it */
  {
    char head[200], *again = NULL;
    snprintf(head, sizeof head, "%s",
             q("SELECT '\"head_log_id\":' || log_id || ',\"head_hash\":\"' "
               "|| hash || '\"' FROM Interaction_Logs ORDER BY log_id DESC "
               "LIMIT 1"));
    ASSERT_TRUE(sqlite3_exec(raw,
                             "DROP TRIGGER Interaction_Logs_no_delete; "
                             "DELETE FROM Interaction_Logs WHERE log_id = "
                             "(SELECT max(log_id) FROM Interaction_Logs)",
                             NULL, NULL, NULL) == SQLITE_OK);
    ASSERT_RC(chm_verify(inst, &again), CHM_OK);
    ASSERT_CONTAINS(again, "\"ok\":true");
    ASSERT_TRUE(strstr(again, head) == NULL);
    ASSERT_CONTAINS(again, q("SELECT '\"head_log_id\":' || max(log_id) FROM "
                             "Interaction_Logs"));
    chm_free(again);
  }
  ASSERT_STR_EQ(q("SELECT prev_hash FROM Interaction_Logs WHERE log_id = 1"),
                "0000000000000000000000000000000000000000000000000000000000"
                "000000");
  ASSERT_INT_EQ(qi("SELECT count(*) FROM Interaction_Logs l JOIN "
                   "Interaction_Logs p ON p.log_id = l.log_id - 1 WHERE "
                   "l.prev_hash <> p.hash"),
                0);
  /* the ledger refuses edits; a forced edit is found */
  ASSERT_TRUE(sqlite3_exec(raw, "UPDATE Interaction_Logs SET event = 'X'", NULL,
                           NULL, NULL) != SQLITE_OK);
  ASSERT_TRUE(sqlite3_exec(raw,
                           "DROP TRIGGER Interaction_Logs_no_update; "
                           "UPDATE Interaction_Logs SET details = '{}' WHERE "
                           "log_id = 3",
                           NULL, NULL, NULL) == SQLITE_OK);
  ASSERT_RC(chm_verify(inst, &out), CHM_CORRUPT);
  ASSERT_MSG("Interaction_Logs row 3 does not match its hash (stored ");
  ASSERT_CONTAINS(out, "\"ok\":false,\"first_bad\":3,\"head_log_id\":");
  chm_free(out);
}

/* ===================================================================== */
/* Queries and memory                                                     */
/* ===================================================================== */

TEST(queries) {
  char a[37], got[37], *out = NULL;
  long long v;
  new_instance("TK-BASIC");
  ASSERT_RC(genesis("{\"amount\": 5, \"route\": \"review\"}", a), CHM_OK);
  ASSERT_RC(checkout("alice", "worker", got, &v), CHM_OK);
  ASSERT_RC(submit(a, "alice", v, "{\"set\": {\"amount\": 6}}"), CHM_OK);
  ASSERT_RC(chm_token_get(inst, a, &out), CHM_OK);
  ASSERT_STR_EQ(jstr(out, "status"), "PENDING");
  ASSERT_STR_EQ(jstr(out, "interaction"), "review");
  ASSERT_STR_EQ(jstr(out, "role"), "worker");
  ASSERT_INT_EQ(jint(out, "version"), 3);
  ASSERT_CONTAINS(out, "\"attributes\":{\"amount\":6,\"route\":\"review\"}");
  ASSERT_CONTAINS(out, "\"lease\":null");
  ASSERT_CONTAINS(out, "\"rejections\":[]");
  chm_free(out);
  ASSERT_RC(chm_token_history(inst, a, &out), CHM_OK);
  ASSERT_CONTAINS(out, "\"event\":\"GENESIS\"");
  ASSERT_CONTAINS(out, "\"event\":\"SUBMIT\",\"from_status\":\"ACTIVE\","
                       "\"to_status\":\"PENDING\",\"actor\":\"alice\","
                       "\"role\":\"worker\",\"interaction\":\"review\"");
  chm_free(out);
  ASSERT_RC(chm_token_attributes(inst, a, &out), CHM_OK);
  ASSERT_CONTAINS(out, "{\"key\":\"amount\",\"version\":1,\"value\":5,"
                       "\"actor\":\"alice\",\"reasoning\":\"genesis\"");
  ASSERT_CONTAINS(out, "{\"key\":\"amount\",\"version\":2,\"value\":6,"
                       "\"actor\":\"alice\",\"reasoning\":\"submit by "
                       "'alice' as 'worker'\"");
  chm_free(out);
  ASSERT_RC(chm_queues(inst, &out), CHM_OK);
  ASSERT_CONTAINS(out,
                  "{\"workflow\":\"TK-BASIC\",\"interaction\":\"review\","
                  "\"consumers\":[\"reviewer\"],\"counts\":{\"PENDING\":1},"
                  "\"total\":1}");
  chm_free(out);
  ASSERT_RC(chm_tokens(inst, "PENDING", &out), CHM_OK);
  ASSERT_CONTAINS(out, a);
  chm_free(out);
  ASSERT_RC(chm_tokens(inst, "ACTIVE", &out), CHM_OK);
  ASSERT_STR_EQ(out, "[]");
  chm_free(out);
  ASSERT_RC(chm_tokens(inst, "BUSY", &out), CHM_INVALID);
  ASSERT_MSG("unknown token status 'BUSY'");
  ASSERT_RC(chm_token_get(inst, "nope", &out), CHM_NOTFOUND);
  ASSERT_TRUE(out == NULL);
  ASSERT_RC(chm_token_history(inst, "nope", &out), CHM_NOTFOUND);
}

TEST(memory) {
  char a[37], b[37], got[37], *json = NULL, mid[37];
  long long v;
  int removed = -1;
  new_instance("TK-BASIC");
  ASSERT_RC(chm_memory_set(inst, "worker", NULL, "tone", "\"formal\""), CHM_OK);
  ASSERT_RC(chm_memory_set(inst, "worker", "alice", "tone", "\"casual\""),
            CHM_OK);
  ASSERT_RC(chm_memory_set(inst, "worker", NULL, "lang", " \"en\" "), CHM_OK);
  ASSERT_RC(chm_memory_set(inst, "worker", NULL, "bad", "{\"b\":1, \"a\":2}"),
            CHM_OK);
  ASSERT_STR_EQ(q("SELECT value FROM Local_Role_Attributes WHERE key = 'bad'"),
                "{\"a\":2,\"b\":1}"); /* canonical */
  snprintf(mid, 37, "%s",
           q("SELECT memory_id FROM Local_Role_Attributes "
             "WHERE key = 'bad'"));
  ASSERT_RC(chm_memory_mark_toxic(inst, mid), CHM_OK);
  ASSERT_RC(chm_memory_mark_toxic(inst, "nope"), CHM_NOTFOUND);
  ASSERT_RC(chm_memory_set(inst, "worker", NULL, "x", "{"), CHM_INVALID);
  ASSERT_RC(chm_memory_set(inst, "ghost", NULL, "x", "1"), CHM_NOTFOUND);
  ASSERT_RC(genesis("{\"amount\": 5}", a), CHM_OK);
  ASSERT_RC(genesis("{\"amount\": 5}", b), CHM_OK);
  ASSERT_RC(chm_checkout(inst, "alice", "worker", NULL, &json), CHM_OK);
  ASSERT_CONTAINS(json, "\"memory\":{\"lang\":\"en\",\"tone\":\"casual\"}");
  chm_free(json);
  ASSERT_RC(chm_checkout(inst, "bob", "worker", NULL, &json), CHM_OK);
  ASSERT_CONTAINS(json, "\"memory\":{\"lang\":\"en\",\"tone\":\"formal\"}");
  chm_free(json);
  ASSERT_STR_EQ(q("SELECT count(*) FROM Local_Role_Attributes WHERE "
                  "last_accessed_at = '2027-01-15T08:00:00.000Z'"),
                "3");
  /* teach writes the actor's playbook, never an attribute */
  v = version_of(a);
  ASSERT_RC(submit(a, "alice", v, "{\"teach\": {\"tip\": [1, 2]}}"), CHM_OK);
  ASSERT_STR_EQ(q("SELECT a.name || ':' || m.value FROM Local_Role_Attributes "
                  "m JOIN Local_Actors a USING (actor_id) WHERE key = 'tip'"),
                "alice:[1,2]");
  ASSERT_STR_EQ(attr(a, "tip"), "(none)");
  (void)got;
  /* decay: rows not read for 5 days go */
  chm_clock_advance(10LL * 86400000);
  ASSERT_RC(chm_memory_decay(inst, 5, &removed), CHM_OK);
  ASSERT_INT_EQ(removed, 5);
  ASSERT_INT_EQ(qi("SELECT count(*) FROM Local_Role_Attributes"), 0);
  ASSERT_RC(chm_memory_decay(inst, -1, &removed), CHM_MISUSE);
}

TEST(two_handles) {
  char a[37], b[37], x[37], y[37], *json = NULL;
  chm_instance *other = NULL;
  new_instance("TK-BASIC");
  ASSERT_RC(genesis("{\"amount\": 5}", a), CHM_OK);
  ASSERT_RC(genesis("{\"amount\": 5}", b), CHM_OK);
  ASSERT_TRUE(chm_instance_open(inst_path, &other) == CHM_OK);
  ASSERT_RC(checkout("alice", "worker", x, NULL), CHM_OK);
  ASSERT_TRUE(chm_checkout(other, "bob", "worker", NULL, &json) == CHM_OK);
  snprintf(y, 37, "%s", jstr(json, "uow_id"));
  chm_free(json);
  ASSERT_TRUE(chm_checkout(other, "bob", "worker", NULL, &json) ==
              CHM_NOTFOUND);
  chm_instance_close(other);
  ASSERT_STR_EQ(x, a);
  ASSERT_STR_EQ(y, b);
  ASSERT_RC(chm_verify(inst, NULL), CHM_OK);
}

/* Routing written as a Lua function: its answer decides; nil or an
** error sends the token to the Ate with the reason recorded. */
TEST(lua_function_routing) {
  char big[37], small[37], none[37], boom[37], got[37];
  long long v;
  new_instance("TK-LUAROUTE");
  ASSERT_RC(genesis("{\"amount\": 500}", big), CHM_OK);
  ASSERT_RC(genesis("{\"amount\": 5}", small), CHM_OK);
  ASSERT_RC(genesis("{\"note\": \"no amount\"}", none), CHM_OK);
  ASSERT_RC(genesis("{\"amount\": 1, \"boom\": \"this\"}", boom), CHM_OK);
  ASSERT_RC(checkout("alice", "sorter", got, &v), CHM_OK);
  ASSERT_RC(submit(big, "alice", v, "{}"), CHM_OK);
  ASSERT_RC(checkout("alice", "sorter", got, &v), CHM_OK);
  ASSERT_RC(submit(small, "alice", v, "{}"), CHM_OK);
  ASSERT_RC(checkout("alice", "sorter", got, &v), CHM_OK);
  ASSERT_RC(submit(none, "alice", v, "{}"), CHM_OK);
  ASSERT_RC(checkout("alice", "sorter", got, &v), CHM_OK);
  ASSERT_RC(submit(boom, "alice", v, "{}"), CHM_OK);
  ASSERT_STR_EQ(status_of(big), "PENDING");
  ASSERT_STR_EQ(place_of(big), "big");
  ASSERT_STR_EQ(status_of(small), "PENDING");
  ASSERT_STR_EQ(place_of(small), "small");
  ASSERT_STR_EQ(status_of(none), "FAILED");
  ASSERT_STR_EQ(place_of(none), "ate");
  ASSERT_STR_EQ(status_of(boom), "FAILED");
  ASSERT_STR_EQ(place_of(boom), "ate");
  /* the reasons are on the log rows that moved them */
  ASSERT_CONTAINS(q("SELECT details FROM Interaction_Logs WHERE uow_id = %Q "
                    "ORDER BY log_id DESC LIMIT 1", none),
                  "no route matched");
  ASSERT_CONTAINS(q("SELECT details FROM Interaction_Logs WHERE uow_id = %Q "
                    "ORDER BY log_id DESC LIMIT 1", boom),
                  "cannot sort this");
  ASSERT_RC(chm_verify(inst, NULL), CHM_OK);
}

/* Several processes on one file: each token is checked out exactly once
** and the hash chain stays whole. */
TEST(concurrent_checkout) {
  enum { TOKENS = 40, PROCS = 3 };
  char id[37];
  pid_t pids[PROCS];
  int i, total = 0;
  new_instance("TK-BASIC");
  for (i = 0; i < TOKENS; i++)
    ASSERT_RC(genesis("{\"amount\": 5}", id), CHM_OK);
  for (i = 0; i < PROCS; i++) {
    if ((pids[i] = fork()) == 0) {
      chm_instance *h = NULL;
      char *json = NULL;
      int n = 0, rc;
      if (chm_instance_open(inst_path, &h) != CHM_OK)
        _exit(255);
      while ((rc = chm_checkout(h, i % 2 ? "bob" : "alice", "worker", NULL,
                                &json)) == CHM_OK) {
        chm_free(json);
        n++;
      }
      chm_instance_close(h);
      _exit(rc == CHM_NOTFOUND ? n : 255);
    }
  }
  for (i = 0; i < PROCS; i++) {
    int st = 0;
    waitpid(pids[i], &st, 0);
    ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) != 255);
    total += WEXITSTATUS(st);
  }
  ASSERT_INT_EQ(total, TOKENS);
  ASSERT_INT_EQ(qi("SELECT count(*) FROM UnitsOfWork WHERE status = 'ACTIVE' "
                   "AND checkout_count = 1"),
                TOKENS);
  ASSERT_INT_EQ(qi("SELECT count(*) FROM Interaction_Logs WHERE event = "
                   "'CHECKOUT'"),
                TOKENS);
  ASSERT_RC(chm_verify(inst, NULL), CHM_OK);
}

/* ===================================================================== */
/* The run loop                                                           */
/* ===================================================================== */

static int double_cb(void *ud, const char *args, char **result, char **error) {
  long long n;
  const char *p = strstr(args, "\"n\":");
  (*(int *)ud)++;
  if (p == NULL) {
    *error = strdup("no n");
    return 1;
  }
  n = strtoll(p + 4, NULL, 10);
  *result = malloc(64);
  snprintf(*result, 64, "{\"n\":%lld}", n * 2);
  return 0;
}

/* A skill that asks the run to stop, as a SIGINT handler calling
** chm_instance_interrupt would, then answers normally. */
static int interrupting_cb(void *ud, const char *args, char **result,
                           char **error) {
  (void)args;
  (void)error;
  chm_instance_interrupt((chm_instance *)ud);
  *result = strdup("{\"n\": 1}");
  return 0;
}

static void auto_tokens(char ok[37], char err[37], char slow[37],
                        char skill[37], char bad[37], char lost[37]) {
  char *out = NULL;
#define G(id, attrs)                                                           \
  chm_genesis(inst, NULL, attrs, NULL, &out);                                  \
  snprintf(id, 37, "%s", out ? out : "");                                      \
  chm_free(out);                                                               \
  out = NULL
  G(ok, "{\"kind\": \"ok\", \"n\": 2}");
  G(err, "{\"kind\": \"err\", \"n\": 3}");
  G(slow, "{\"kind\": \"slow\"}");
  G(skill, "{\"kind\": \"skill\", \"n\": 21}");
  G(bad, "{\"kind\": \"bad\"}");
  G(lost, "{\"kind\": \"lost\"}");
#undef G
}

/* Ctrl-C during a run stops it between operations: the operation that was
** interrupted is undone, no token is failed, and the next run goes on. */
TEST(run_interrupted) {
  char *out = NULL, first[37], second[37];
  int calls = 0;
  new_instance("TK-AUTO");
  ASSERT_RC(chm_register_skill(inst, "double", interrupting_cb, inst), CHM_OK);
  ASSERT_RC(chm_genesis(inst, NULL, "{\"kind\": \"skill\", \"n\": 1}", NULL,
                        &out), CHM_OK);
  snprintf(first, sizeof first, "%s", out);
  chm_free(out);
  ASSERT_RC(chm_genesis(inst, NULL, "{\"kind\": \"ok\", \"n\": 2}", NULL,
                        &out), CHM_OK);
  snprintf(second, sizeof second, "%s", out);
  chm_free(out);
  out = NULL;
  ASSERT_RC(chm_run(inst, NULL, &out), CHM_BUDGET);
  ASSERT_CONTAINS(chm_instance_errmsg(inst), "interrupted");
  chm_free(out);
  out = NULL;
  ASSERT_INT_EQ(atoi(q("SELECT count(*) FROM UnitsOfWork WHERE status IN "
                       "('FAILED', 'ACTIVE')")), 0);
  ASSERT_STR_EQ(status_of(second), "PENDING");
  ASSERT_RC(chm_register_skill(inst, "double", double_cb, &calls), CHM_OK);
  ASSERT_RC(chm_run(inst, NULL, &out), CHM_OK);
  chm_free(out);
  ASSERT_STR_EQ(status_of(first), "FINALIZED");
  ASSERT_STR_EQ(status_of(second), "FINALIZED");
}

/* ...and an interrupt that lands inside a step undoes that operation: the
** token is back where it was, PENDING, not FAILED. */
TEST(run_interrupted_in_step) {
  char *out = NULL, id[37];
  int calls = 0;
  new_instance("TK-AUTO");
  ASSERT_RC(chm_register_skill(inst, "double", interrupting_cb, inst), CHM_OK);
  ASSERT_RC(chm_genesis(inst, NULL,
                        "{\"kind\": \"skill\", \"n\": 4, \"spin_after\": true}",
                        NULL, &out), CHM_OK);
  snprintf(id, sizeof id, "%s", out);
  chm_free(out);
  out = NULL;
  ASSERT_RC(chm_run(inst, NULL, &out), CHM_BUDGET);
  ASSERT_CONTAINS(chm_instance_errmsg(inst), "during the step of role 'skilled'");
  chm_free(out);
  out = NULL;
  ASSERT_STR_EQ(status_of(id), "PENDING");
  ASSERT_STR_EQ(place_of(id), "skill");
  ASSERT_INT_EQ(atoi(q("SELECT count(*) FROM Interaction_Logs WHERE event = "
                       "'STEP_ERROR'")), 0);
  ASSERT_RC(chm_register_skill(inst, "double", double_cb, &calls), CHM_OK);
  ASSERT_RC(chm_run(inst, NULL, &out), CHM_OK);
  chm_free(out);
  ASSERT_STR_EQ(status_of(id), "FINALIZED");
  ASSERT_STR_EQ(attr(id, "skill_result"), "8");
  ASSERT_RC(chm_verify(inst, &out), CHM_OK);
  chm_free(out);
}

TEST(run_steps) {
  char ok[37], err[37], slow[37], skill[37], bad[37], lost[37], *out = NULL;
  int calls = 0;
  new_instance("TK-AUTO");
  ASSERT_RC(chm_register_skill(inst, "double", double_cb, &calls), CHM_OK);
  ASSERT_RC(chm_register_skill(inst, "bad name", double_cb, &calls),
            CHM_MISUSE);
  ASSERT_RC(chm_memory_set(inst, "good", NULL, "greeting", "\"hello\""),
            CHM_OK);
  auto_tokens(ok, err, slow, skill, bad, lost);
  ASSERT_STR_EQ(status_of(lost), "PENDING");
  ASSERT_RC(chm_run(inst, NULL, &out), CHM_OK);
  ASSERT_STR_EQ(chm_instance_errmsg(inst), "ok");
  /* 6 dispatches, 5 steps, 2 Omega finalizations */
  ASSERT_STR_EQ(out, "{\"steps\":13,\"moves\":9,\"failed\":4,\"commits\":13}");
  chm_free(out);
  ASSERT_STR_EQ(status_of(ok), "FINALIZED");
  ASSERT_STR_EQ(attr(ok, "doubled"), "4");
  ASSERT_STR_EQ(attr(ok, "memo"), "\"hello\"");
  ASSERT_STR_EQ(q("SELECT value FROM Local_Role_Attributes WHERE key = "
                  "'last_n'"),
                "2");
  ASSERT_STR_EQ(status_of(skill), "FINALIZED");
  ASSERT_STR_EQ(attr(skill, "skill_result"), "42");
  ASSERT_INT_EQ(calls, 1);
  ASSERT_STR_EQ(status_of(err), "FAILED");
  ASSERT_STR_EQ(place_of(err), "ate");
  ASSERT_CONTAINS(q("SELECT failure_reason FROM UnitsOfWork WHERE uow_id = "
                    "%Q",
                    err),
                  "step of role 'boom' failed (SCRIPT): ");
  ASSERT_CONTAINS(q("SELECT failure_reason FROM UnitsOfWork WHERE uow_id = "
                    "%Q",
                    err),
                  "boom: cannot handle 3");
  ASSERT_STR_EQ(status_of(slow), "FAILED");
  ASSERT_CONTAINS(q("SELECT failure_reason FROM UnitsOfWork WHERE uow_id = "
                    "%Q",
                    slow),
                  "step of role 'spin' failed (BUDGET)");
  ASSERT_STR_EQ(status_of(bad), "FAILED");
  ASSERT_CONTAINS(q("SELECT failure_reason FROM UnitsOfWork WHERE uow_id = "
                    "%Q",
                    bad),
                  "give_up is for EPSILON roles");
  ASSERT_STR_EQ(status_of(lost), "FAILED");
  ASSERT_CONTAINS(q("SELECT failure_reason FROM UnitsOfWork WHERE uow_id = "
                    "%Q",
                    lost),
                  "no route matched after role 'dispatch'");
  ASSERT_INT_EQ(qi("SELECT count(*) FROM Interaction_Logs WHERE event = "
                   "'STEP_ERROR'"),
                3);
  /* a second run finds nothing */
  ASSERT_RC(chm_run(inst, NULL, &out), CHM_OK);
  ASSERT_STR_EQ(out, "{\"steps\":0,\"moves\":0,\"failed\":0,\"commits\":0}");
  chm_free(out);
  ASSERT_RC(chm_verify(inst, NULL), CHM_OK);
}

TEST(run_batch_and_limits) {
  char ok[37], err[37], slow[37], skill[37], bad[37], lost[37], *out = NULL;
  int calls = 0;
  chm_run_opts opts = {0, 0};
  new_instance("TK-AUTO");
  ASSERT_RC(chm_register_skill(inst, "double", double_cb, &calls), CHM_OK);
  auto_tokens(ok, err, slow, skill, bad, lost);
  opts.max_steps = 2;
  ASSERT_RC(chm_run(inst, &opts, &out), CHM_OK);
  ASSERT_STR_EQ(out, "{\"steps\":2,\"moves\":2,\"failed\":0,\"commits\":2}");
  chm_free(out);
  opts.max_steps = 0;
  opts.batch = 50;
  ASSERT_RC(chm_run(inst, &opts, &out), CHM_OK);
  ASSERT_STR_EQ(out, "{\"steps\":11,\"moves\":7,\"failed\":4,\"commits\":1}");
  chm_free(out);
  ASSERT_STR_EQ(status_of(ok), "FINALIZED");
  ASSERT_STR_EQ(status_of(skill), "FINALIZED");
  ASSERT_STR_EQ(status_of(err), "FAILED");
  ASSERT_RC(chm_verify(inst, NULL), CHM_OK);
}

/* ===================================================================== */
/* Step results at the limits (TK-STEPS)                                  */
/* ===================================================================== */

/* nested(depth, leaf) -> a malloc'ed JSON text: leaf inside depth arrays. */
static char *nested(int depth, const char *leaf) {
  size_t n = strlen(leaf);
  char *p = malloc(2 * (size_t)depth + n + 1);
  memset(p, '[', (size_t)depth);
  memcpy(p + depth, leaf, n);
  memset(p + depth + n, ']', (size_t)depth);
  p[2 * depth + n] = '\0';
  return p;
}

/* steps_token(attrs, id): a TK-STEPS token made by system. */
static int steps_token(const char *attrs, char id[37]) {
  char *out = NULL;
  int rc = chm_genesis(inst, NULL, attrs, "system", &out);
  snprintf(id, 37, "%s", out ? out : "");
  chm_free(out);
  return rc;
}

static const char *reason_of(const char *id) {
  return q("SELECT failure_reason FROM UnitsOfWork WHERE uow_id = %Q", id);
}

/* full_reason(id) -> the whole failure_reason of a token, malloc'ed (q()
** keeps 4095 bytes). */
static char *full_reason(const char *id) {
  sqlite3_stmt *st = NULL;
  char *out = NULL;
  if (sqlite3_prepare_v2(raw,
                         "SELECT failure_reason FROM UnitsOfWork WHERE "
                         "uow_id = ?",
                         -1, &st, NULL) == SQLITE_OK &&
      sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
    out = strdup((const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  return out != NULL ? out : strdup("(none)");
}

/* utf8_ok(s) -> 1 when s is well-formed UTF-8 (no cut sequence). */
static int utf8_ok(const unsigned char *s) {
  while (*s) {
    int n = *s < 0x80 ? 0 : (*s & 0xE0) == 0xC0 ? 1 : (*s & 0xF0) == 0xE0 ? 2
                        : (*s & 0xF8) == 0xF0 ? 3 : -1;
    if (n < 0)
      return 0;
    for (s++; n > 0; n--, s++)
      if ((*s & 0xC0) != 0x80)
        return 0;
  }
  return 1;
}

/* A step returning 5000 children: every child is made, the parent's
** counters say so, and the chain verifies (the children's key check once
** pushed one stack slot per child and wrote past the Lua stack). */
TEST(run_many_children) {
  char p[37], *out = NULL;
  new_instance("TK-STEPS");
  ASSERT_RC(steps_token("{\"kind\": \"split\", \"n\": 5000}", p), CHM_OK);
  ASSERT_RC(chm_run(inst, NULL, &out), CHM_OK);
  chm_free(out);
  ASSERT_STR_EQ(status_of(p), "COMPLETED");
  ASSERT_STR_EQ(place_of(p), "joined");
  ASSERT_INT_EQ(
      qi("SELECT child_count FROM UnitsOfWork WHERE uow_id = %Q", p), 5000);
  ASSERT_INT_EQ(
      qi("SELECT finished_child_count FROM UnitsOfWork WHERE uow_id = %Q", p),
      0);
  ASSERT_INT_EQ(qi("SELECT count(*) FROM UnitsOfWork WHERE parent_id = %Q "
                   "AND status = 'PENDING'",
                   p),
                5000);
  ASSERT_INT_EQ(qi("SELECT count(DISTINCT a.value) FROM UOW_Attributes a "
                   "JOIN UnitsOfWork u USING (uow_id) WHERE u.parent_id = %Q "
                   "AND a.key = 'line'",
                   p),
                5000);
  ASSERT_INT_EQ(qi("SELECT min(CAST(a.value AS INTEGER)) + "
                   "max(CAST(a.value AS INTEGER)) FROM UOW_Attributes a JOIN "
                   "UnitsOfWork u USING (uow_id) WHERE u.parent_id = %Q AND "
                   "a.key = 'line'",
                   p),
                5001);
  ASSERT_RC(chm_verify(inst, &out), CHM_OK);
  chm_free(out);
}

/* One depth limit (200) wherever an attribute or memory value enters; a
** refusal names the value and writes nothing. */
TEST(value_depth_limit) {
  char id[37], got[37], json[700], *d200 = nested(200, "1"),
       *d201 = nested(201, "1"), *d999 = nested(999, "1");
  long long v, logs, attrs;
  new_instance("TK-BASIC");
  logs = nlog();
  attrs = nattr();
  snprintf(json, sizeof json, "{\"amount\": 5, \"a\": %s}", d201);
  ASSERT_RC(genesis(json, id), CHM_INVALID);
  ASSERT_MSG("attribute 'a' is nested 201 levels deep; at most 200 are "
             "allowed");
  ASSERT_INT_EQ(nlog(), logs);
  ASSERT_INT_EQ(nattr(), attrs);
  ASSERT_INT_EQ(qi("SELECT count(*) FROM UnitsOfWork"), 0);
  {
    char *big = malloc(strlen(d999) + 32);
    sprintf(big, "{\"b\": %s}", d999);
    ASSERT_RC(genesis(big, id), CHM_INVALID);
    free(big);
  }
  ASSERT_MSG("attribute 'b' is nested 999 levels deep; at most 200");
  snprintf(json, sizeof json,
           "{\"amount\": 5, \"route\": \"done\", \"a\": %s}", d200);
  ASSERT_RC(genesis(json, id), CHM_OK);
  ASSERT_RC(checkout("alice", "worker", got, &v), CHM_OK);
  logs = nlog();
  attrs = nattr();
  snprintf(json, sizeof json, "{\"set\": {\"b\": %s}}", d201);
  ASSERT_RC(submit(id, "alice", v, json), CHM_INVALID);
  ASSERT_MSG("attribute 'b' is nested 201 levels deep; at most 200 are "
             "allowed");
  snprintf(json, sizeof json,
           "{\"children\": [{\"c\": 1}, {\"c\": %s}]}", d201);
  ASSERT_RC(submit(id, "alice", v, json), CHM_INVALID);
  ASSERT_MSG("attribute 'c' of changes.children[2] is nested 201 levels "
             "deep");
  snprintf(json, sizeof json, "{\"teach\": {\"m\": %s}}", d201);
  ASSERT_RC(submit(id, "alice", v, json), CHM_INVALID);
  ASSERT_MSG("memory value 'm' is nested 201 levels deep");
  ASSERT_RC(chm_memory_set(inst, "worker", NULL, "m", d201), CHM_INVALID);
  ASSERT_MSG("the memory value is nested 201 levels deep; at most 200");
  ASSERT_INT_EQ(nlog(), logs);
  ASSERT_INT_EQ(nattr(), attrs);
  ASSERT_INT_EQ(version_of(id), v);
  ASSERT_RC(chm_memory_set(inst, "worker", NULL, "m", d200), CHM_OK);
  snprintf(json, sizeof json, "{\"set\": {\"b\": %s}}", d200);
  ASSERT_RC(submit(id, "alice", v, json), CHM_OK);
  ASSERT_STR_EQ(attr(id, "b"), d200);
  free(d200);
  free(d201);
  free(d999);
}

/* Steps meet the same limit: a value of 200 levels is read and written,
** one of 201 fails the token with a reason naming it. */
TEST(step_value_depth) {
  char ok[37], rd[37], set[37], kid[37], teach[37], old[37], json[700],
      *d200 = nested(200, "\"x\""), *d250 = nested(250, "\"x\""), *out = NULL,
      *sql;
  int rc;
  new_instance("TK-STEPS");
  ASSERT_RC(steps_token("{\"kind\": \"deep\", \"depth\": 200}", ok), CHM_OK);
  snprintf(json, sizeof json,
           "{\"kind\": \"deep\", \"depth\": 0, \"where\": \"read\", "
           "\"big\": %s}",
           d200);
  ASSERT_RC(steps_token(json, rd), CHM_OK);
  ASSERT_RC(steps_token("{\"kind\": \"deep\", \"depth\": 201}", set), CHM_OK);
  ASSERT_RC(steps_token("{\"kind\": \"deep\", \"depth\": 201, \"where\": "
                        "\"children\"}",
                        kid),
            CHM_OK);
  ASSERT_RC(steps_token("{\"kind\": \"deep\", \"depth\": 201, \"where\": "
                        "\"teach\"}",
                        teach),
            CHM_OK);
  snprintf(json, sizeof json,
           "{\"kind\": \"deep\", \"depth\": 0, \"where\": \"read\", "
           "\"big\": 1}");
  ASSERT_RC(steps_token(json, old), CHM_OK);
  /* a store written before the limit: the step names the attribute */
  sql = sqlite3_mprintf("UPDATE UOW_Attributes SET value = %Q WHERE uow_id "
                        "= %Q AND key = 'big'",
                        d250, old);
  rc = sqlite3_exec(raw, sql, NULL, NULL, NULL);
  sqlite3_free(sql);
  ASSERT_INT_EQ(rc, SQLITE_OK);
  ASSERT_RC(chm_run(inst, NULL, &out), CHM_OK);
  chm_free(out);
  ASSERT_STR_EQ(status_of(ok), "FINALIZED");
  ASSERT_INT_EQ(qi("SELECT json_array_length(%Q) IS NOT NULL AND "
                   "length(%Q) = 2 * 200 + 8",
                   attr(ok, "d"), attr(ok, "d")),
                1);
  ASSERT_STR_EQ(status_of(rd), "FINALIZED");
  ASSERT_STR_EQ(attr(rd, "seen"), "true");
  ASSERT_STR_EQ(status_of(set), "FAILED");
  ASSERT_STR_EQ(place_of(set), "ate");
  ASSERT_CONTAINS(reason_of(set), "attribute 'd' is nested 201 levels deep; "
                                  "at most 200 are allowed");
  ASSERT_STR_EQ(attr(set, "d"), "(none)");
  ASSERT_STR_EQ(status_of(kid), "FAILED");
  ASSERT_CONTAINS(reason_of(kid), "attribute 'd' of changes.children[1] is "
                                  "nested 201 levels deep");
  ASSERT_INT_EQ(
      qi("SELECT count(*) FROM UnitsOfWork WHERE parent_id = %Q", kid), 0);
  ASSERT_STR_EQ(status_of(teach), "FAILED");
  ASSERT_CONTAINS(reason_of(teach), "memory value 'd' is nested 201 levels");
  ASSERT_INT_EQ(qi("SELECT count(*) FROM Local_Role_Attributes"), 0);
  ASSERT_STR_EQ(status_of(old), "FAILED");
  ASSERT_CONTAINS(reason_of(old), "attribute 'big' is nested more than 200 "
                                  "levels deep; at most 200 are allowed");
  ASSERT_TRUE(strstr(reason_of(old), "traceback") == NULL);
  ASSERT_TRUE(strchr(reason_of(old), '\n') == NULL);
  free(d200);
  free(d250);
}

/* A step result holding what JSON cannot (a function, a thread) fails the
** token with a reason naming the value; it is never dropped. */
TEST(step_non_json_values) {
  static const char *const cases[][2] = {
      {"function", "returned set.x = function; expected a JSON value"},
      {"nested", "returned set.x.list[2] = function; expected a JSON value"},
      {"thread", "returned set.x = thread; expected a JSON value"},
      {"child", "returned children[2].x = function; expected a JSON value"},
      {"teach", "returned teach.x = thread; expected a JSON value"},
  };
  char ids[5][37], fine[37], json[128], *out = NULL;
  int i;
  new_instance("TK-STEPS");
  for (i = 0; i < 5; i++) {
    snprintf(json, sizeof json, "{\"kind\": \"odd\", \"what\": \"%s\"}",
             cases[i][0]);
    ASSERT_RC(steps_token(json, ids[i]), CHM_OK);
  }
  ASSERT_RC(steps_token("{\"kind\": \"odd\", \"what\": \"none\"}", fine),
            CHM_OK);
  ASSERT_RC(chm_run(inst, NULL, &out), CHM_OK);
  chm_free(out);
  for (i = 0; i < 5; i++) {
    if (strcmp(status_of(ids[i]), "FAILED") != 0)
      FAIL_AT("case %s: %s", cases[i][0], status_of(ids[i]));
    ASSERT_CONTAINS(reason_of(ids[i]), "step of role 'oddball' failed");
    ASSERT_STR_EQ(place_of(ids[i]), "ate");
    ASSERT_CONTAINS(reason_of(ids[i]), cases[i][1]);
    ASSERT_STR_EQ(attr(ids[i], "x"), "(none)");
  }
  ASSERT_STR_EQ(status_of(fine), "FINALIZED");
  ASSERT_STR_EQ(attr(fine, "x"), "1");
  ASSERT_INT_EQ(qi("SELECT count(*) FROM Local_Role_Attributes"), 0);
}

/* Error texts from user code are kept to 4 KiB, cut on a UTF-8 boundary,
** saying how much was cut: a step's raised error (reason and log details),
** a `fail` reason, and a routing function's error. */
TEST(step_error_text_capped) {
  char big[37], utf[37], fail[37], noisy[37], *out = NULL, *text;
  long long len;
  int ok;
  new_instance("TK-STEPS");
  ASSERT_RC(steps_token("{\"kind\": \"loud\", \"size\": 10000000}", big),
            CHM_OK);
  /* 1366 three-byte characters, 4098 bytes: byte 4096 is inside the last,
  ** which goes whole */
  ASSERT_RC(steps_token("{\"kind\": \"loud\", \"size\": 1366, \"unit\": "
                        "\"\\u20ac\"}",
                        utf),
            CHM_OK);
  ASSERT_RC(steps_token("{\"kind\": \"loud\", \"size\": 100000, \"how\": "
                        "\"fail\"}",
                        fail),
            CHM_OK);
  ASSERT_RC(steps_token("{\"kind\": \"noisy\", \"size\": 1000000}", noisy),
            CHM_OK);
  ASSERT_RC(chm_run(inst, NULL, &out), CHM_OK);
  chm_free(out);
  ASSERT_STR_EQ(status_of(noisy), "FAILED");
  ASSERT_TRUE(qi("SELECT length(failure_reason) FROM UnitsOfWork WHERE "
                 "uow_id = %Q",
                 noisy) < 8500);
  ASSERT_TRUE(qi("SELECT max(length(details)) FROM Interaction_Logs WHERE "
                 "uow_id = %Q",
                 noisy) < 8500);
  ASSERT_INT_EQ(qi("SELECT count(*) FROM Interaction_Logs WHERE uow_id = %Q "
                   "AND instr(details, 'RRR\xe2\x80\xa6 (995952 bytes cut)') > 0",
                   noisy),
                1);
  ASSERT_STR_EQ(status_of(big), "FAILED");
  len = qi("SELECT length(CAST(failure_reason AS BLOB)) FROM UnitsOfWork "
           "WHERE uow_id = %Q",
           big);
  ASSERT_TRUE(len > 4096 && len < 4300);
  ASSERT_CONTAINS(reason_of(big), "step of role 'shouter' failed (SCRIPT): "
                                  "EEEE");
  ASSERT_STR_EQ(q("SELECT substr(failure_reason, -26) FROM UnitsOfWork "
                  "WHERE uow_id = %Q",
                  big),
                "EEEEE\xe2\x80\xa6 (9995904 bytes cut)");
  ASSERT_TRUE(qi("SELECT max(length(CAST(details AS BLOB))) FROM "
                 "Interaction_Logs WHERE uow_id = %Q",
                 big) < 4400);
  ASSERT_INT_EQ(qi("SELECT instr(details, '\xe2\x80\xa6 (9995904 bytes cut)') > 0 "
                   "FROM Interaction_Logs WHERE uow_id = %Q AND event = "
                   "'STEP_ERROR'",
                   big),
                1);
  ASSERT_STR_EQ(status_of(utf), "FAILED");
  text = full_reason(utf);
  ok = utf8_ok((const unsigned char *)text) &&
       strstr(text, "\xe2\x82\xac\xe2\x80\xa6 (3 bytes cut)") != NULL;
  if (!ok)
    printf("  reason ends: %s\n", text + strlen(text) - 30);
  free(text);
  ASSERT_TRUE(ok);
  ASSERT_STR_EQ(status_of(fail), "FAILED");
  len = qi("SELECT length(CAST(failure_reason AS BLOB)) FROM UnitsOfWork "
           "WHERE uow_id = %Q",
           fail);
  ASSERT_TRUE(len > 4096 && len < 4300);
  ASSERT_INT_EQ(qi("SELECT failure_reason LIKE '%%EE\xe2\x80\xa6 (95904 bytes "
                   "cut)' FROM UnitsOfWork WHERE uow_id = %Q",
                   fail),
                1);
  ASSERT_RC(chm_verify(inst, NULL), CHM_OK);
}

/* ===================================================================== */
/* Recursive gateways                                                     */
/* ===================================================================== */

TEST(gateway) {
  char p[37], c[37], got[37], *out = NULL;
  long long v;
  new_instance("TK-PARENT");
  ASSERT_RC(chm_genesis(inst, NULL, "{\"applicant\": \"ann\"}", NULL, &out),
            CHM_OK);
  snprintf(p, 37, "%s", out);
  chm_free(out);
  ASSERT_RC(chm_run(inst, NULL, &out), CHM_OK);
  ASSERT_STR_EQ(out, "{\"steps\":1,\"moves\":1,\"failed\":0,\"commits\":1}");
  chm_free(out);
  ASSERT_STR_EQ(status_of(p), "ACTIVE");
  ASSERT_STR_EQ(q("SELECT lease_expires_at IS NULL FROM UnitsOfWork WHERE "
                  "uow_id = %Q",
                  p),
                "1");
  snprintf(c, 37, "%s",
           q("SELECT uow_id FROM UnitsOfWork WHERE "
             "return_uow_id = %Q",
             p));
  ASSERT_STR_EQ(status_of(c), "PENDING");
  ASSERT_STR_EQ(place_of(c), "c-in");
  ASSERT_STR_EQ(attr(c, "applicant"), "\"ann\"");
  ASSERT_INT_EQ(qi("SELECT count(*) FROM UOW_Attributes WHERE uow_id = %Q AND "
                   "lineage_attribute_id IS NOT NULL",
                   c),
                1);
  /* the waiting parent cannot be submitted */
  ASSERT_RC(submit(p, "system", version_of(p), NULL), CHM_STATE);
  ASSERT_MSG("waits for its child workflow (gateway role 'gw')");
  /* work the child by hand; its finalization returns to the parent */
  ASSERT_RC(checkout("alice", "c-work", got, &v), CHM_OK);
  ASSERT_STR_EQ(got, c);
  ASSERT_RC(submit(c, "alice", v, "{\"set\": {\"verified\": true}}"), CHM_OK);
  ASSERT_STR_EQ(status_of(c), "COMPLETED");
  ASSERT_RC(checkout("alice", "c-finish", got, &v), CHM_OK);
  ASSERT_RC(submit(c, "alice", v, NULL), CHM_OK);
  ASSERT_STR_EQ(status_of(c), "FINALIZED");
  ASSERT_STR_EQ(status_of(p), "PENDING");
  ASSERT_STR_EQ(place_of(p), "p-checked");
  ASSERT_STR_EQ(attr(p, "verified"), "true");
  ASSERT_STR_EQ(q("SELECT reasoning FROM UOW_Attributes WHERE uow_id = %Q AND "
                  "key = 'verified'",
                  p),
                q("SELECT 'returned from child workflow token ' || %Q", c));
  ASSERT_STR_EQ(q("SELECT lease_holder_actor_id IS NULL FROM UnitsOfWork "
                  "WHERE uow_id = %Q",
                  p),
                "1");
  ASSERT_STR_EQ(q("SELECT event FROM Interaction_Logs WHERE uow_id = %Q "
                  "ORDER BY log_id DESC LIMIT 1",
                  p),
                "RETURN");
}

TEST(gateway_archived_and_paused) {
  char p[37], c[37], got[37], *out = NULL;
  long long v;
  new_instance("TK-PARENT");
  /* a checkout on the gateway starts the child and says which */
  ASSERT_RC(chm_genesis(inst, NULL, "{\"applicant\": \"bo\"}", NULL, &out),
            CHM_OK);
  snprintf(p, 37, "%s", out);
  chm_free(out);
  ASSERT_RC(chm_checkout(inst, "system", "gw", NULL, &out), CHM_OK);
  ASSERT_STR_EQ(jstr(out, "uow_id"), p);
  snprintf(c, 37, "%s", jstr(out, "child_uow_id"));
  ASSERT_CONTAINS(out, "\"lease_expires_at\":null");
  chm_free(out);
  ASSERT_STR_EQ(q("SELECT return_uow_id FROM UnitsOfWork WHERE uow_id = %Q", c),
                p);
  /* the child is given up: the parent fails to its Ate */
  ASSERT_RC(checkout("alice", "c-work", got, &v), CHM_OK);
  ASSERT_RC(chm_fail(inst, c, "alice", "no id"), CHM_OK);
  ASSERT_RC(checkout("alice", "c-doctor", got, &v), CHM_OK);
  ASSERT_RC(submit(c, "alice", v, "{\"give_up\": true}"), CHM_OK);
  ASSERT_STR_EQ(status_of(c), "ARCHIVED");
  ASSERT_STR_EQ(status_of(p), "FAILED");
  ASSERT_STR_EQ(place_of(p), "p-ate");
  ASSERT_STR_EQ(
      q("SELECT failure_reason FROM UnitsOfWork WHERE uow_id = %Q", p),
      q("SELECT 'child workflow token ' || %Q || ' was archived "
        "(given up)'",
        c));
  /* a paused gateway token: the return waits for resume */
  ASSERT_RC(chm_genesis(inst, NULL, "{\"applicant\": \"cy\"}", NULL, &out),
            CHM_OK);
  snprintf(p, 37, "%s", out);
  chm_free(out);
  ASSERT_RC(chm_checkout(inst, "system", "gw", NULL, &out), CHM_OK);
  snprintf(c, 37, "%s", jstr(out, "child_uow_id"));
  chm_free(out);
  ASSERT_RC(chm_pause(inst, p, NULL), CHM_OK);
  ASSERT_RC(checkout("alice", "c-work", got, &v), CHM_OK);
  ASSERT_RC(submit(c, "alice", v, "{\"set\": {\"ok\": 1}}"), CHM_OK);
  ASSERT_RC(checkout("alice", "c-finish", got, &v), CHM_OK);
  ASSERT_RC(submit(c, "alice", v, NULL), CHM_OK);
  ASSERT_STR_EQ(status_of(p), "PAUSED");
  ASSERT_STR_EQ(q("SELECT event FROM Interaction_Logs WHERE uow_id = %Q "
                  "ORDER BY log_id DESC LIMIT 1",
                  p),
                "RETURN_DEFERRED");
  ASSERT_RC(chm_resume(inst, p, NULL), CHM_OK);
  ASSERT_STR_EQ(status_of(p), "PENDING");
  ASSERT_STR_EQ(place_of(p), "p-checked");
  ASSERT_STR_EQ(attr(p, "ok"), "1");
}

/* ===================================================================== */
/* Given-up children, rejections at checkout, cleared failures            */
/* ===================================================================== */

/* base_with_kids(route, n, base, kids): a fixable base split by the worker
** into n children PENDING in 'lines' (kids in queue order). */
static void base_with_kids(const char *route, int n, char base[37],
                           char kids[][37]) {
  char got[37], attrs[128];
  long long v;
  int i;
  snprintf(attrs, sizeof attrs,
           "{\"amount\": 5, \"route\": \"%s\", \"fixable\": true}", route);
  if (genesis(attrs, base) != CHM_OK ||
      checkout("alice", "worker", got, &v) != CHM_OK ||
      submit(base, "alice", v,
             n == 2 ? "{\"children\": [{\"sku\": \"a\"}, {\"sku\": \"b\"}]}"
                    : "{\"children\": [{\"sku\": \"a\"}, {\"sku\": \"b\"}, "
                      "{\"sku\": \"c\"}]}") != CHM_OK) {
    printf("  cannot split a base: %s\n", chm_instance_errmsg(inst));
    exit(2);
  }
  for (i = 0; i < n; i++)
    snprintf(kids[i], 37, "%s",
             q("SELECT uow_id FROM UnitsOfWork WHERE parent_id = %Q ORDER BY "
               "queue_seq LIMIT 1 OFFSET %d",
               base, i));
}

/* Epsilon gives up a child whose base already waits COMPLETED in the
** Cerberus room: in the same transaction Cerberus rejects the base (the
** join can never pass) and it goes FAILED to the Ate, with the rejection
** record and log rows; Epsilon can then decide about it. */
TEST(give_up_child_fails_waiting_base) {
  char base[37], kids[2][37], got[37];
  long long v;
  new_instance("TK-BASIC");
  base_with_kids("done", 2, base, kids);
  ASSERT_RC(checkout("alice", "pricer", got, &v), CHM_OK);
  ASSERT_RC(submit(kids[0], "alice", v, NULL), CHM_OK);
  ASSERT_RC(checkout("alice", "pricer", got, &v), CHM_OK);
  ASSERT_RC(chm_fail(inst, kids[1], "alice", "bad line"), CHM_OK);
  ASSERT_STR_EQ(status_of(base), "COMPLETED");
  ASSERT_STR_EQ(place_of(base), "joined");
  ASSERT_RC(checkout("alice", "doctor", got, &v), CHM_OK);
  ASSERT_STR_EQ(got, kids[1]);
  ASSERT_RC(submit(kids[1], "alice", v, "{\"give_up\": true}"), CHM_OK);
  ASSERT_STR_EQ(status_of(kids[1]), "ARCHIVED");
  ASSERT_STR_EQ(status_of(base), "FAILED");
  ASSERT_STR_EQ(place_of(base), "ate");
  ASSERT_STR_EQ(q("SELECT guardian_name || ' ' || guardian_type || ': ' || "
                  "reason FROM Token_Rejections WHERE uow_id = %Q",
                  base),
                q("SELECT 'join CERBERUS: head 3 (children finished): child "
                  "token ' || %Q || ' was given up (ARCHIVED), so base ' || "
                  "%Q || ' can never be joined'",
                  kids[1], base));
  ASSERT_CONTAINS(q("SELECT failure_reason FROM UnitsOfWork WHERE uow_id = %Q",
                    base),
                  "rejected by guardian 'join' (CERBERUS) on 'joined': head 3");
  ASSERT_STR_EQ(q("SELECT group_concat(event || ':' || coalesce(decision, ''),"
                  " ',') FROM (SELECT * FROM Interaction_Logs WHERE uow_id = "
                  "%Q AND log_id > (SELECT max(log_id) FROM Interaction_Logs "
                  "WHERE uow_id = %Q AND event = 'GIVE_UP') ORDER BY log_id)",
                  base, kids[1]),
                "GUARDIAN:REJECT,REJECT:ate");
  /* Epsilon now takes the base (it is fixable) */
  ASSERT_RC(checkout("alice", "doctor", got, &v), CHM_OK);
  ASSERT_STR_EQ(got, base);
}

/* A base that reaches the Cerberus room after one of its children was
** given up is rejected by the next Omega checkout and moved FAILED to the
** Ate (not left waiting for ever); the no-work answer says so. */
TEST(cerberus_rejects_archived_child) {
  char base[37], kids[2][37], got[37];
  long long v;
  new_instance("TK-BASIC");
  base_with_kids("review", 2, base, kids);
  ASSERT_RC(checkout("alice", "pricer", got, &v), CHM_OK);
  ASSERT_RC(submit(kids[0], "alice", v, NULL), CHM_OK);
  ASSERT_RC(checkout("alice", "pricer", got, &v), CHM_OK);
  ASSERT_RC(chm_fail(inst, kids[1], "alice", "bad line"), CHM_OK);
  ASSERT_RC(checkout("alice", "doctor", got, &v), CHM_OK);
  ASSERT_RC(submit(kids[1], "alice", v, "{\"give_up\": true}"), CHM_OK);
  ASSERT_STR_EQ(status_of(base), "PENDING"); /* not in the room yet */
  ASSERT_RC(checkout("bob", "reviewer", got, &v), CHM_OK);
  ASSERT_RC(submit(base, "bob", v, NULL), CHM_OK);
  ASSERT_STR_EQ(status_of(base), "COMPLETED");
  ASSERT_STR_EQ(place_of(base), "joined");
  ASSERT_RC(checkout("alice", "close", got, &v), CHM_NOTFOUND);
  ASSERT_STR_EQ(
      chm_instance_errmsg(inst),
      q("SELECT 'no work for role ''close'' in ''joined'': token ' || %Q || "
        "' was rejected by guardian ''join'' (CERBERUS): head 3 (children "
        "finished): child token ' || %Q || ' was given up (ARCHIVED), so "
        "base ' || %Q || ' can never be joined, and moved FAILED to ''ate''; "
        "1 token waits there but none can be taken: token ' || %Q || ' is a "
        "child (parent ' || %Q || ') — OMEGA takes only base tokens, which "
        "bring their children'",
        base, kids[1], base, kids[0], base));
  ASSERT_STR_EQ(status_of(base), "FAILED"); /* committed with NOTFOUND */
  ASSERT_STR_EQ(place_of(base), "ate");
  ASSERT_INT_EQ(qi("SELECT count(*) FROM Token_Rejections WHERE uow_id = %Q",
                   base),
                1);
  ASSERT_INT_EQ(qi("SELECT count(*) FROM Interaction_Logs WHERE uow_id = %Q "
                   "AND event = 'REJECT'",
                   base),
                1);
}

/* Epsilon giving up a base archives its unfinished descendants with it,
** leaves finished ones alone, and is refused (nothing changed) while one
** is ACTIVE. */
TEST(give_up_base_archives_children) {
  char base[37], kids[3][37], got[37];
  long long v, vb, logs;
  new_instance("TK-BASIC");
  base_with_kids("review", 3, base, kids);
  ASSERT_RC(checkout("alice", "pricer", got, &v), CHM_OK);
  ASSERT_RC(submit(kids[0], "alice", v, NULL), CHM_OK); /* COMPLETED */
  ASSERT_RC(checkout("bob", "reviewer", got, &v), CHM_OK);
  ASSERT_RC(chm_fail(inst, base, "bob", "wrong vendor"), CHM_OK);
  ASSERT_RC(checkout("alice", "pricer", got, &v), CHM_OK);
  ASSERT_STR_EQ(got, kids[1]); /* ACTIVE under alice */
  ASSERT_RC(checkout("alice", "doctor", got, &vb), CHM_OK);
  ASSERT_STR_EQ(got, base);
  logs = nlog();
  ASSERT_RC(submit(base, "alice", vb, "{\"give_up\": true}"), CHM_STATE);
  ASSERT_STR_EQ(chm_instance_errmsg(inst),
                q("SELECT 'submit of token ' || %Q || ': give_up refused: "
                  "its child token ' || %Q || ' is ACTIVE, leased to "
                  "''alice'' until ' || strftime('%%Y-%%m-%%dT%%H:%%M:%%fZ', "
                  "lease_expires_at / 1000.0, 'unixepoch') || '; wait for "
                  "that lease to end (its holder submits or fails it, or the "
                  "zombie sweep takes it) or pause it, then give up again' "
                  "FROM UnitsOfWork WHERE uow_id = %Q",
                  base, kids[1], kids[1]));
  ASSERT_INT_EQ(nlog(), logs);
  ASSERT_STR_EQ(status_of(base), "ACTIVE");
  ASSERT_STR_EQ(status_of(kids[1]), "ACTIVE");
  ASSERT_STR_EQ(status_of(kids[2]), "PENDING");
  /* paused, the child is archived with the base, as the PENDING one */
  ASSERT_RC(chm_pause(inst, kids[1], "alice"), CHM_OK);
  ASSERT_RC(submit(base, "alice", vb, "{\"give_up\": true}"), CHM_OK);
  ASSERT_STR_EQ(status_of(base), "ARCHIVED");
  ASSERT_STR_EQ(status_of(kids[0]), "COMPLETED");
  ASSERT_STR_EQ(status_of(kids[1]), "ARCHIVED");
  ASSERT_STR_EQ(status_of(kids[2]), "ARCHIVED");
  ASSERT_STR_EQ(q("SELECT group_concat(uow_id || ':' || json_extract(details, "
                  "'$.base'), ',') FROM (SELECT * FROM Interaction_Logs WHERE "
                  "event = 'GIVE_UP_CHILD' ORDER BY log_id)"),
                q("SELECT %Q || ':' || %Q || ',' || %Q || ':' || %Q", kids[1],
                  base, kids[2], base));
  ASSERT_RC(checkout("alice", "pricer", got, &v), CHM_NOTFOUND);
}

/* A Beta checkout that rejected tokens and found nothing else says which
** token it rejected, why, and where it went (several: count and first). */
TEST(no_work_names_the_rejected) {
  char a[37], b[37], got[37];
  long long v;
  new_instance("TK-BASIC");
  ASSERT_RC(genesis("{\"amount\": -5}", a), CHM_OK);
  ASSERT_RC(checkout("alice", "worker", got, &v), CHM_NOTFOUND);
  ASSERT_STR_EQ(chm_instance_errmsg(inst),
                q("SELECT 'no work for role ''worker'' in ''inbox'': token ' "
                  "|| %Q || ' was rejected by guardian ''positive'' "
                  "(CRITERIA_GATE): ' || reason || ', and moved FAILED to "
                  "''ate''' FROM Token_Rejections WHERE uow_id = %Q",
                  a, a));
  ASSERT_STR_EQ(status_of(a), "FAILED");
  ASSERT_RC(genesis("{\"amount\": -6}", a), CHM_OK);
  ASSERT_RC(genesis("{\"amount\": -7}", b), CHM_OK);
  ASSERT_RC(checkout("alice", "worker", got, &v), CHM_NOTFOUND);
  ASSERT_STR_EQ(chm_instance_errmsg(inst),
                q("SELECT 'no work for role ''worker'' in ''inbox'': 2 tokens "
                  "were rejected and moved FAILED to the Ate; the first: "
                  "token ' || %Q || ' was rejected by guardian ''positive'' "
                  "(CRITERIA_GATE): ' || reason || ', and moved FAILED to "
                  "''ate''' FROM Token_Rejections WHERE uow_id = %Q",
                  a, a));
  ASSERT_STR_EQ(status_of(b), "FAILED");
}

/* failure_reason describes the last failure only while the token is in
** it (and while Epsilon or Tau holds it to treat it): back on the normal
** path it is cleared; the log keeps the history. */
TEST(failure_reason_cleared) {
  char id[37], got[37];
  long long v;
  new_instance("TK-BASIC");
  ASSERT_RC(genesis("{\"amount\": 5, \"fixable\": true, \"fix\": \"retry\"}",
                    id),
            CHM_OK);
  ASSERT_RC(checkout("alice", "worker", got, &v), CHM_OK);
  ASSERT_RC(chm_fail(inst, id, "alice", "vendor unknown"), CHM_OK);
  ASSERT_STR_EQ(q("SELECT failure_reason FROM UnitsOfWork WHERE uow_id = %Q",
                  id),
                "vendor unknown");
  ASSERT_RC(checkout("alice", "doctor", got, &v), CHM_OK);
  ASSERT_STR_EQ(q("SELECT failure_reason FROM UnitsOfWork WHERE uow_id = %Q",
                  id),
                "vendor unknown"); /* what Epsilon treats */
  ASSERT_RC(submit(id, "alice", v, NULL), CHM_OK);
  ASSERT_STR_EQ(status_of(id), "PENDING");
  ASSERT_STR_EQ(q("SELECT failure_reason FROM UnitsOfWork WHERE uow_id = %Q",
                  id),
                "(null)");
  ASSERT_RC(checkout("alice", "worker", got, &v), CHM_OK);
  ASSERT_STR_EQ(q("SELECT failure_reason FROM UnitsOfWork WHERE uow_id = %Q",
                  id),
                "(null)");
  ASSERT_INT_EQ(qi("SELECT count(*) FROM Interaction_Logs WHERE uow_id = %Q "
                   "AND event = 'FAIL'",
                   id),
                1);
  /* remediated into the Cerberus room: cleared too */
  ASSERT_RC(chm_fail(inst, id, "alice", "again"), CHM_OK);
  ASSERT_RC(checkout("alice", "doctor", got, &v), CHM_OK);
  ASSERT_RC(submit(id, "alice", v, "{\"set\": {\"fix\": \"none\"}}"), CHM_OK);
  ASSERT_STR_EQ(status_of(id), "REMEDIATED");
  ASSERT_STR_EQ(q("SELECT failure_reason FROM UnitsOfWork WHERE uow_id = %Q",
                  id),
                "(null)");
}

/* ===================================================================== */
/* Main                                                                   */
/* ===================================================================== */

#define TEST_LIST(X)                                                           \
  X(genesis)                                                                   \
  X(genesis_refusals)                                                          \
  X(checkout_fifo_lease)                                                       \
  X(checkout_refusals)                                                         \
  X(gate_reject)                                                               \
  X(context_injection)                                                         \
  X(ambiguity_lock)                                                            \
  X(submit_routes)                                                             \
  X(submit_refusals)                                                           \
  X(fail)                                                                      \
  X(heartbeat_and_zombie_sweep)                                                \
  X(stale_sweep)                                                               \
  X(stale_pending)                                                             \
  X(epsilon)                                                                   \
  X(tau)                                                                       \
  X(tau_end_finalizes_children)                                                \
  X(tau_end_refuses_active_child)                                              \
  X(no_work_names_the_token)                                                   \
  X(attribute_keys_without_nul)                                                \
  X(private_memory_never_crosses)                                              \
  X(decomposition_and_omega)                                                   \
  X(pause_resume)                                                              \
  X(instance_pause)                                                            \
  X(verify_and_tamper)                                                         \
  X(queries)                                                                   \
  X(memory)                                                                    \
  X(two_handles)                                                               \
  X(lua_function_routing)                                                      \
  X(concurrent_checkout)                                                       \
  X(run_interrupted)                                                           \
  X(run_interrupted_in_step)                                                   \
  X(run_steps)                                                                 \
  X(run_batch_and_limits)                                                      \
  X(run_many_children)                                                         \
  X(value_depth_limit)                                                         \
  X(step_value_depth)                                                          \
  X(step_non_json_values)                                                      \
  X(step_error_text_capped)                                                    \
  X(gateway)                                                                   \
  X(gateway_archived_and_paused)                                               \
  X(give_up_child_fails_waiting_base)                                          \
  X(cerberus_rejects_archived_child)                                           \
  X(give_up_base_archives_children)                                            \
  X(no_work_names_the_rejected)                                                \
  X(failure_reason_cleared)

static const harness_test tests[] = {
#define TEST_ROW(name) {#name, test_##name},
    TEST_LIST(TEST_ROW)
#undef TEST_ROW
};

/* Imports the fixture workflows into a fresh meta-store. */
static void setup(void) {
  static const char *const files[] = {"tk_basic.lua", "tk_auto.lua",
                                      "tk_child.lua", "tk_parent.lua",
                                      "tk_luaroute.lua", "tk_steps.lua",
                                      NULL};
  char path[512], *report = NULL;
  const char *fixtures = getenv("CHM_FIXTURES");
  int i;
  snprintf(dir, sizeof dir, "/tmp/chm_test_token.XXXXXX");
  if (mkdtemp(dir) == NULL) {
    perror("mkdtemp");
    exit(2);
  }
  snprintf(path, sizeof path, "%s/meta.db", dir);
  if (chm_meta_open(path, &meta) != CHM_OK) {
    printf("cannot open the meta-store: %s\n", chm_meta_errmsg(meta));
    exit(2);
  }
  for (i = 0; files[i] != NULL; i++) {
    snprintf(path, sizeof path, "%s/%s",
             fixtures ? fixtures : "tests/fixtures/engine", files[i]);
    if (chm_meta_import(meta, path, &report) != CHM_OK) {
      printf("cannot import %s: %s\n", path, chm_meta_errmsg(meta));
      exit(2);
    }
    chm_free(report);
  }
}

static void teardown(void) {
  char cmd[300];
  chm_meta_close(meta);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    printf("could not remove %s\n", dir);
}

/* After each test: close what it opened, back to the real clock. */
static void after_each(void) {
  chm_instance_close(inst);
  inst = NULL;
  sqlite3_close(raw);
  raw = NULL;
  chm_clock_set_real();
}

int main(int argc, char **argv) {
  int failed;
  setup();
  failed = harness_run(tests, sizeof tests / sizeof tests[0], argc, argv,
                       after_each);
  teardown();
  return failed > 0;
}
