/*
** test_exprfn.c — expression functions hosts register
** (chm_register_function, chm_meta_register_function): validation at
** import knows only the names registered on the meta handle; an instance
** calls its own callbacks from a CRITERIA_GATE and from routing branches,
** through the public API (genesis, checkout, submit); a failing callback
** rejects at the gate and sends routing to on_error; names that shadow a
** built-in are refused. Workflow: tests/fixtures/engine/tk_exprfn.lua (or
** $CHM_FIXTURES). The last output line is "N passed, N failed".
*/
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "chameleon.h"
#include "harness.h"

static char dir[256];       /* temp directory of this run */
static char fixture[512];   /* the workflow file */
static chm_meta *meta;      /* holds TK-EXPRFN */
static chm_instance *inst;  /* the current test's instance */
static sqlite3 *raw;        /* a plain connection to it, for checks */
static int ninst;           /* instances made so far */

#define ASSERT_RC(call, want)                                                  \
  do {                                                                         \
    int rc_ = (call);                                                          \
    if (rc_ != (want))                                                         \
      FAIL_AT("%s\n    returned %s (%s), expected %s", #call,                  \
              chm_errname(rc_), chm_instance_errmsg(inst), chm_errname(want)); \
  } while (0)

#define TEST(name) static void test_##name(void)

/* ===================================================================== */
/* Helpers                                                                */
/* ===================================================================== */

/* q(fmt, ...) -> first column of the first row as text (static buffer). */
static const char *q(const char *fmt, ...) {
  static char buf[4][2048];
  static int slot;
  char *sql, *out = buf[slot++ % 4];
  sqlite3_stmt *st = NULL;
  va_list ap;
  va_start(ap, fmt);
  sql = sqlite3_vmprintf(fmt, ap);
  va_end(ap);
  snprintf(out, 2048, "(none)");
  if (sqlite3_prepare_v2(raw, sql, -1, &st, NULL) != SQLITE_OK) {
    snprintf(out, 2048, "(SQL error: %s)", sqlite3_errmsg(raw));
  } else if (sqlite3_step(st) == SQLITE_ROW) {
    const char *v = (const char *)sqlite3_column_text(st, 0);
    snprintf(out, 2048, "%s", v ? v : "(null)");
  }
  sqlite3_finalize(st);
  sqlite3_free(sql);
  return out;
}

static const char *status_of(const char *id) {
  return q("SELECT status FROM UnitsOfWork WHERE uow_id = %Q", id);
}
static const char *place_of(const char *id) {
  return q("SELECT i.name FROM UnitsOfWork u JOIN Local_Interactions i ON "
           "i.interaction_id = u.current_interaction_id WHERE uow_id = %Q",
           id);
}
static const char *reason_of(const char *id) {
  return q("SELECT failure_reason FROM UnitsOfWork WHERE uow_id = %Q", id);
}
/* The details of the newest log row of a token. */
static const char *last_details(const char *id) {
  return q("SELECT details FROM Interaction_Logs WHERE uow_id = %Q ORDER BY "
           "log_id DESC LIMIT 1",
           id);
}

/* The string after "key":" in json, into a static buffer. */
static const char *jstr(const char *json, const char *key) {
  static char out[256];
  char pat[64];
  const char *p, *e;
  snprintf(pat, sizeof pat, "\"%s\":\"", key);
  out[0] = '\0';
  if (json == NULL || (p = strstr(json, pat)) == NULL)
    return out;
  p += strlen(pat);
  if ((e = strchr(p, '"')) == NULL)
    return out;
  snprintf(out, sizeof out, "%.*s", (int)(e - p), p);
  return out;
}

static long long jint(const char *json, const char *key) {
  char pat[64];
  const char *p;
  snprintf(pat, sizeof pat, "\"%s\":", key);
  if (json == NULL || (p = strstr(json, pat)) == NULL)
    return -1;
  return strtoll(p + strlen(pat), NULL, 10);
}

static int genesis(const char *attrs, char id[37]) {
  char *out = NULL;
  int rc = chm_genesis(inst, NULL, attrs, "alice", &out);
  snprintf(id, 37, "%s", out ? out : "");
  chm_free(out);
  return rc;
}

/* Checks out the next scorer token and submits it unchanged; the id of
** the token checked out goes to got. */
static int checkout_submit(char got[37]) {
  char *json = NULL, *out = NULL;
  long long v;
  int rc = chm_checkout(inst, "alice", "scorer", NULL, &json);
  snprintf(got, 37, "%.36s", jstr(json, "uow_id"));
  v = jint(json, "version");
  chm_free(json);
  if (rc != CHM_OK)
    return rc;
  rc = chm_submit(inst, got, "alice", v, "{}", &out);
  chm_free(out);
  return rc;
}

static void new_instance(void) {
  char path[300], *report = NULL;
  snprintf(path, sizeof path, "%s/i%d.db", dir, ++ninst);
  if (chm_meta_instantiate(meta, "TK-EXPRFN", 0, path, NULL, &report) !=
      CHM_OK) {
    printf("  cannot instantiate: %s\n", chm_meta_errmsg(meta));
    exit(2);
  }
  chm_free(report);
  if (chm_instance_open(path, &inst) != CHM_OK) {
    printf("  cannot open %s: %s\n", path, chm_instance_errmsg(inst));
    exit(2);
  }
  sqlite3_open(path, &raw);
  sqlite3_busy_timeout(raw, 5000);
}

/* ---- the host's functions ---------------------------------------------- */

static char last_args[256]; /* the args_json of the latest risk call */
static int risk_calls;

static char *copy_str(const char *s) {
  char *p = malloc(strlen(s) + 1);
  if (p != NULL)
    strcpy(p, s);
  return p;
}

/* risk(amount, country): amount / 10, an error for country "XX", invalid
** JSON for country "JJ". Reads the args text only (a host would parse it). */
static int risk_cb(void *ud, const char *args, char **result, char **error) {
  char buf[64];
  long long amount;
  (void)ud;
  risk_calls++;
  snprintf(last_args, sizeof last_args, "%s", args);
  if (strstr(args, "\"XX\"") != NULL) {
    *error = copy_str("no data for country XX");
    return 1;
  }
  if (strstr(args, "\"JJ\"") != NULL) {
    *result = copy_str("{not json");
    return 0;
  }
  amount = strtoll(args + 1, NULL, 10);
  snprintf(buf, sizeof buf, "%lld", amount / 10);
  *result = copy_str(buf);
  return 0;
}

/* A second risk: everything is risky (99), to test replacement. */
static int risky_cb(void *ud, const char *args, char **result, char **error) {
  (void)ud;
  (void)args;
  (void)error;
  *result = copy_str("99");
  return 0;
}

/* tier(amount): "high" from 100, "low" below, an error for 13; ud counts
** calls. */
static int tier_cb(void *ud, const char *args, char **result, char **error) {
  long long amount = strtoll(args + 1, NULL, 10);
  (*(int *)ud)++;
  if (amount == 13) {
    *error = copy_str("tier table has no row for 13");
    return 1;
  }
  *result = copy_str(amount >= 100 ? "\"high\"" : "\"low\"");
  return 0;
}

static int tier_calls;

static int register_both(void) {
  int rc = chm_register_function(inst, "risk", risk_cb, NULL);
  if (rc == CHM_OK)
    rc = chm_register_function(inst, "tier", tier_cb, &tier_calls);
  return rc;
}

/* ===================================================================== */
/* Tests                                                                  */
/* ===================================================================== */

/* Import validates calls against the names the meta handle knows. */
TEST(import_needs_the_names) {
  chm_meta *m = NULL;
  char path[300], *report = NULL;
  snprintf(path, sizeof path, "%s/fresh.db", dir);
  ASSERT_INT_EQ(chm_meta_open(path, &m), CHM_OK);
  ASSERT_INT_EQ(chm_meta_import(m, fixture, &report), CHM_INVALID);
  chm_free(report);
  report = NULL;
  ASSERT_CONTAINS(chm_meta_errmsg(m), "unknown function 'risk'");
  ASSERT_CONTAINS(chm_meta_errmsg(m), "unknown function 'tier'");
  ASSERT_CONTAINS(chm_meta_errmsg(m),
                  "(or a host function registered on this handle)");
  /* one name is not enough */
  ASSERT_INT_EQ(chm_meta_register_function(m, "risk", NULL, NULL), CHM_OK);
  ASSERT_INT_EQ(chm_meta_import(m, fixture, &report), CHM_INVALID);
  chm_free(report);
  report = NULL;
  ASSERT_TRUE(strstr(chm_meta_errmsg(m), "unknown function 'risk'") == NULL);
  ASSERT_CONTAINS(chm_meta_errmsg(m), "unknown function 'tier'");
  ASSERT_INT_EQ(chm_meta_register_function(m, "tier", tier_cb, &tier_calls),
                CHM_OK);
  ASSERT_INT_EQ(chm_meta_import(m, fixture, &report), CHM_OK);
  chm_free(report);
  chm_meta_close(m);
}

/* The gate calls risk with the evaluated arguments as a JSON array. */
TEST(gate_calls_the_function) {
  char ok[37], big[37], got[37];
  new_instance();
  ASSERT_RC(register_both(), CHM_OK);
  risk_calls = 0;
  ASSERT_RC(genesis("{\"amount\": 1000, \"country\": \"DE\"}", big), CHM_OK);
  ASSERT_RC(genesis("{\"amount\": 200, \"country\": \"DE\"}", ok), CHM_OK);
  ASSERT_RC(checkout_submit(got), CHM_OK);
  ASSERT_STR_EQ(got, ok); /* 1000 / 10 = 100 is not < 50: rejected */
  ASSERT_STR_EQ(last_args, "[200,\"DE\"]");
  ASSERT_INT_EQ(risk_calls, 2);
  ASSERT_STR_EQ(status_of(big), "FAILED");
  ASSERT_CONTAINS(reason_of(big), "rejected by guardian 'low-risk' "
                                  "(CRITERIA_GATE) on 'inbox': criteria "
                                  "\"risk(amount, country) < 50\" is false");
  /* and routing called tier: 200 is high */
  ASSERT_STR_EQ(status_of(ok), "PENDING");
  ASSERT_STR_EQ(place_of(ok), "high");
}

/* A callback's error is the gate's rejection reason; invalid JSON too. */
TEST(gate_rejects_on_callback_error) {
  char xx[37], jj[37], got[37];
  new_instance();
  ASSERT_RC(register_both(), CHM_OK);
  ASSERT_RC(genesis("{\"amount\": 5, \"country\": \"XX\"}", xx), CHM_OK);
  ASSERT_RC(genesis("{\"amount\": 5, \"country\": \"JJ\"}", jj), CHM_OK);
  ASSERT_RC(checkout_submit(got), CHM_NOTFOUND);
  ASSERT_STR_EQ(status_of(xx), "FAILED");
  ASSERT_STR_EQ(place_of(xx), "ate");
  ASSERT_CONTAINS(reason_of(xx),
                  "criteria \"risk(amount, country) < 50\" failed: "
                  "expression error at column 1: function 'risk' failed: "
                  "no data for country XX");
  ASSERT_STR_EQ(status_of(jj), "FAILED");
  ASSERT_CONTAINS(reason_of(jj), "function 'risk' failed: it returned "
                                 "invalid JSON");
  ASSERT_STR_EQ(q("SELECT guardian_name FROM Token_Rejections WHERE uow_id = "
                  "%Q",
                  xx),
                "low-risk");
}

/* Routing branches call tier; an error in them goes to on_error. */
TEST(routing_calls_the_function) {
  char lo[37], err[37], got[37];
  new_instance();
  ASSERT_RC(register_both(), CHM_OK);
  tier_calls = 0;
  ASSERT_RC(genesis("{\"amount\": 20, \"country\": \"FR\"}", lo), CHM_OK);
  ASSERT_RC(genesis("{\"amount\": 13, \"country\": \"FR\"}", err), CHM_OK);
  ASSERT_RC(checkout_submit(got), CHM_OK);
  ASSERT_STR_EQ(got, lo);
  ASSERT_STR_EQ(place_of(lo), "low");
  ASSERT_INT_EQ(tier_calls, 2); /* the first branch, then the second */
  ASSERT_RC(checkout_submit(got), CHM_OK);
  ASSERT_STR_EQ(got, err);
  ASSERT_STR_EQ(status_of(err), "PENDING");
  ASSERT_STR_EQ(place_of(err), "checks");
  ASSERT_CONTAINS(last_details(err), "function 'tier' failed: tier table "
                                     "has no row for 13");
  ASSERT_CONTAINS(last_details(err), "on_error chose 'checks'");
}

/* Registering again replaces the function, also for conditions already
** compiled; a function registered after a failed use is found. */
TEST(replace_and_late_registration) {
  char a[37], b[37], c[37], got[37];
  new_instance();
  /* nothing registered on the instance: the gate cannot compile */
  ASSERT_RC(genesis("{\"amount\": 10, \"country\": \"DE\"}", a), CHM_OK);
  ASSERT_RC(checkout_submit(got), CHM_NOTFOUND);
  ASSERT_STR_EQ(status_of(a), "FAILED");
  ASSERT_CONTAINS(reason_of(a), "unknown function 'risk'");
  /* registered now: the same gate compiles and passes */
  ASSERT_RC(register_both(), CHM_OK);
  ASSERT_RC(genesis("{\"amount\": 10, \"country\": \"DE\"}", b), CHM_OK);
  ASSERT_RC(checkout_submit(got), CHM_OK);
  ASSERT_STR_EQ(got, b);
  ASSERT_STR_EQ(place_of(b), "low");
  /* replaced: everything is risky now */
  ASSERT_RC(chm_register_function(inst, "risk", risky_cb, NULL), CHM_OK);
  ASSERT_RC(genesis("{\"amount\": 10, \"country\": \"DE\"}", c), CHM_OK);
  ASSERT_RC(checkout_submit(got), CHM_NOTFOUND);
  ASSERT_STR_EQ(status_of(c), "FAILED");
  ASSERT_CONTAINS(reason_of(c), "is false");
}

/* Re-validation on the instance uses the instance's functions. */
TEST(instance_validate) {
  char *report = NULL;
  new_instance();
  ASSERT_RC(chm_instance_validate(inst, &report), CHM_INVALID);
  chm_free(report);
  report = NULL;
  ASSERT_CONTAINS(chm_instance_errmsg(inst), "unknown function 'risk'");
  ASSERT_RC(register_both(), CHM_OK);
  ASSERT_RC(chm_instance_validate(inst, &report), CHM_OK);
  chm_free(report);
}

/* Names: built-ins, keywords and non-identifiers are refused; NULLs are
** misuse; a meta handle accepts a NULL callback, an instance does not. */
TEST(names_refused) {
  new_instance();
  ASSERT_RC(chm_register_function(inst, "len", risk_cb, NULL), CHM_INVALID);
  ASSERT_CONTAINS(chm_instance_errmsg(inst),
                  "chm_register_function: host function 'len' would shadow "
                  "a built-in");
  ASSERT_CONTAINS(chm_instance_errmsg(inst),
                  "the built-ins are abs, all, any, ceil");
  ASSERT_RC(chm_register_function(inst, "sqrt", risk_cb, NULL), CHM_INVALID);
  ASSERT_RC(chm_register_function(inst, "and", risk_cb, NULL), CHM_INVALID);
  ASSERT_CONTAINS(chm_instance_errmsg(inst), "\"and\" is not a valid name");
  ASSERT_RC(chm_register_function(inst, "risk score", risk_cb, NULL),
            CHM_INVALID);
  ASSERT_RC(chm_register_function(inst, "1risk", risk_cb, NULL), CHM_INVALID);
  ASSERT_RC(chm_register_function(inst, "", risk_cb, NULL), CHM_INVALID);
  ASSERT_RC(chm_register_function(inst, NULL, risk_cb, NULL), CHM_MISUSE);
  ASSERT_RC(chm_register_function(inst, "risk", NULL, NULL), CHM_MISUSE);
  ASSERT_RC(chm_register_function(NULL, "risk", risk_cb, NULL), CHM_MISUSE);
  ASSERT_RC(chm_register_function(inst, "risk_2", risk_cb, NULL), CHM_OK);
  ASSERT_INT_EQ(chm_meta_register_function(meta, "max", NULL, NULL),
                CHM_INVALID);
  ASSERT_CONTAINS(chm_meta_errmsg(meta), "chm_meta_register_function: host "
                                         "function 'max' would shadow a "
                                         "built-in");
  ASSERT_INT_EQ(chm_meta_register_function(NULL, "x", NULL, NULL),
                CHM_MISUSE);
}

#define TEST_LIST(X)                                                           \
  X(import_needs_the_names)                                                    \
  X(gate_calls_the_function)                                                   \
  X(gate_rejects_on_callback_error)                                            \
  X(routing_calls_the_function)                                                \
  X(replace_and_late_registration)                                             \
  X(instance_validate)                                                         \
  X(names_refused)

static const harness_test tests[] = {
#define TEST_ROW(name) {#name, test_##name},
    TEST_LIST(TEST_ROW)
#undef TEST_ROW
};

/* Imports the fixture into a fresh meta-store that declares its two
** functions (no callbacks: a meta-store never evaluates conditions). */
static void setup(void) {
  static const char *const files[] = {"tk_exprfn.lua", NULL};
  char path[512], *report = NULL;
  const char *fixtures = getenv("CHM_FIXTURES");
  int i;
  snprintf(dir, sizeof dir, "/tmp/chm_test_exprfn.XXXXXX");
  if (mkdtemp(dir) == NULL) {
    perror("mkdtemp");
    exit(2);
  }
  snprintf(path, sizeof path, "%s/meta.db", dir);
  if (chm_meta_open(path, &meta) != CHM_OK ||
      chm_meta_register_function(meta, "risk", NULL, NULL) != CHM_OK ||
      chm_meta_register_function(meta, "tier", NULL, NULL) != CHM_OK) {
    printf("cannot set up the meta-store: %s\n", chm_meta_errmsg(meta));
    exit(2);
  }
  for (i = 0; files[i] != NULL; i++) {
    snprintf(fixture, sizeof fixture, "%s/%s",
             fixtures ? fixtures : "tests/fixtures/engine", files[i]);
    if (chm_meta_import(meta, fixture, &report) != CHM_OK) {
      printf("cannot import %s: %s\n", fixture, chm_meta_errmsg(meta));
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

static void after_each(void) {
  chm_instance_close(inst);
  inst = NULL;
  sqlite3_close(raw);
  raw = NULL;
}

int main(int argc, char **argv) {
  int failed;
  setup();
  failed = harness_run(tests, sizeof tests / sizeof tests[0], argc, argv,
                       after_each);
  teardown();
  return failed > 0;
}
