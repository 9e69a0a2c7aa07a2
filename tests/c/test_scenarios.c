/*
** test_scenarios.c — end-to-end scenarios through the public API alone
** (chameleon.h): the reference workflows in workflows/ and the small ones
** in tests/fixtures/scenarios/ are imported into a fresh meta-store,
** instantiated into a fresh instance store, and driven by chm_run (the
** automated roles) and chm_checkout / chm_submit (the human actors they
** declare). Every check reads the store back through the API: token_get,
** token_history, token_attributes, instance_query and verify. One
** meta-store and one instance per test, in one temp directory per run.
** The last output line is "N passed, N failed"; the exit status is 1 on
** failure. Run one test with: test_scenarios NAME. Run from the top of
** the tree, or point CHM_WORKFLOWS and CHM_SCENARIOS at the directories.
*/
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chameleon.h"
#include "harness.h"

/* ===================================================================== */
/* Harness                                                                */
/* ===================================================================== */

static char dir[256];      /* temp directory of this run */
static chm_meta *meta;     /* the current test's meta-store */
static chm_instance *inst; /* the current test's instance */
static int nstore;         /* stores made so far (names the files) */

#define T0 1800000000000LL /* the virtual clock at the start of a test */
#define DAY_MS 86400000LL

#define ASSERT_NOT_CONTAINS(hay, needle)                                       \
  do {                                                                         \
    const char *h_ = (hay), *n_ = (needle);                                    \
    if (h_ == NULL || strstr(h_, n_) != NULL)                                  \
      FAIL_AT("ASSERT_NOT_CONTAINS(%s, %s)\n    in    %s\n    has   %s", #hay, \
              #needle, h_ ? h_ : "(NULL)", n_);                                \
  } while (0)

/* A call's status, with the handle's message when it is not the one
** expected. */
#define ASSERT_RC(call, want)                                                  \
  do {                                                                         \
    int rc_ = (call);                                                          \
    if (rc_ != (want))                                                         \
      FAIL_AT("%s\n    returned %s (%s), expected %s", #call,                  \
              chm_errname(rc_), chm_instance_errmsg(inst), chm_errname(want)); \
  } while (0)

#define TEST(name) static void test_##name(void)

/* ===================================================================== */
/* JSON paths                                                             */
/* ===================================================================== */

/* The API answers in JSON text. These helpers read one value out of it by
** a path of object keys and array indexes: "attributes.amount",
** "[2].role", "lease.holder". They read well-formed JSON only (what the
** library writes) and never allocate: values come back in a ring of
** static buffers, so a few may be used in one expression. */

static const char *jws(const char *p) {
  while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
    p++;
  return p;
}

/* jskip(p) -> just past the JSON value at p, or NULL at the end of the
** text. */
static const char *jskip(const char *p) {
  int depth = 0;
  p = jws(p);
  do {
    if (*p == '\0')
      return NULL;
    if (*p == '"') {
      for (p++; *p != '"'; p++) {
        if (*p == '\0')
          return NULL;
        if (*p == '\\' && p[1] != '\0')
          p++;
      }
      p++;
    } else if (*p == '{' || *p == '[') {
      depth++, p++;
    } else if (*p == '}' || *p == ']') {
      depth--, p++;
    } else if (depth == 0) {
      while (*p != '\0' && strchr(",}] \n\t\r", *p) == NULL)
        p++;
    } else {
      p++;
    }
  } while (depth > 0);
  return p;
}

/* jfind(json, path) -> start of the value at path, NULL when absent. */
static const char *jfind(const char *json, const char *path) {
  const char *p = json ? jws(json) : NULL;
  while (p != NULL && *path != '\0') {
    if (*path == '.')
      path++;
    if (*path == '[') {
      int i = atoi(path + 1);
      path = strchr(path, ']') + 1;
      if (*p != '[' || *(p = jws(p + 1)) == ']')
        return NULL;
      while (i-- > 0) {
        if ((p = jskip(p)) == NULL || *(p = jws(p)) != ',')
          return NULL;
        p = jws(p + 1);
      }
    } else {
      size_t n = strcspn(path, ".[");
      if (*p != '{')
        return NULL;
      p = jws(p + 1);
      for (;;) {
        const char *k = p + 1, *ke;
        int match;
        if (*p != '"' || (ke = jskip(p)) == NULL)
          return NULL;
        match = (size_t)(ke - 1 - k) == n && strncmp(k, path, n) == 0;
        if (*(p = jws(ke)) != ':')
          return NULL;
        p = jws(p + 1);
        if (match)
          break;
        if ((p = jskip(p)) == NULL || *(p = jws(p)) != ',')
          return NULL;
        p = jws(p + 1);
      }
      path += n;
    }
  }
  return p;
}

static char *jbuf(void) {
  static char ring[16][8192];
  static int slot;
  return ring[slot++ % 16];
}

/* obuf() -> a buffer of a second ring, for helpers that build their
** answer while calling the j* functions (which use the first). */
static char *obuf(void) {
  static char ring[4][8192];
  static int slot;
  return ring[slot++ % 4];
}

/* jraw(json, path) -> the value's JSON text ("(missing)" when absent). */
static const char *jraw(const char *json, const char *path) {
  char *out = jbuf();
  const char *p = jfind(json, path), *e;
  if (p == NULL || (e = jskip(p)) == NULL)
    return "(missing)";
  snprintf(out, 8192, "%.*s", (int)(e - p), p);
  return out;
}

/* jstr(json, path) -> a string value without its quotes (escapes kept
** but \" and \\ undone); any other value as its JSON text. */
static const char *jstr(const char *json, const char *path) {
  const char *raw = jraw(json, path);
  char *out, *o;
  if (raw[0] != '"')
    return raw;
  out = o = jbuf();
  for (raw++; raw[1] != '\0'; raw++) {
    if (raw[0] == '\\' && (raw[1] == '"' || raw[1] == '\\'))
      raw++;
    *o++ = *raw;
  }
  *o = '\0';
  return out;
}

static long long jint(const char *json, const char *path) {
  const char *raw = jraw(json, path);
  return raw[0] == '(' ? -999999 : strtoll(raw, NULL, 10);
}

/* jlen(json, path) -> number of items of the array at path (-1: none). */
static int jlen(const char *json, const char *path) {
  const char *p = jfind(json, path);
  int n = 0;
  if (p == NULL || *p != '[')
    return -1;
  if (*(p = jws(p + 1)) == ']')
    return 0;
  for (;;) {
    n++;
    if ((p = jskip(p)) == NULL)
      return -1;
    if (*(p = jws(p)) != ',')
      return n;
    p = jws(p + 1);
  }
}

/* ===================================================================== */
/* Stores                                                                 */
/* ===================================================================== */

static const char *fixtures_dir(void) {
  const char *d = getenv("CHM_SCENARIOS");
  return d ? d : "tests/fixtures/scenarios";
}

static const char *workflows_dir(void) {
  const char *d = getenv("CHM_WORKFLOWS");
  return d ? d : "workflows";
}

/* fresh(master, files...): a new meta-store holding the files (in the
** order given: children first), and a new instance of `master` opened in
** inst. A name starting with "sc_" is a fixture, anything else a
** reference workflow. Exits on failure: nothing can be tested without. */
static void fresh(const char *master, ...) {
  char path[600], *report = NULL;
  const char *file;
  va_list ap;
  snprintf(path, sizeof path, "%s/meta%d.db", dir, ++nstore);
  if (chm_meta_open(path, &meta) != CHM_OK) {
    printf("  cannot open %s: %s\n", path, chm_meta_errmsg(meta));
    exit(2);
  }
  va_start(ap, master);
  while ((file = va_arg(ap, const char *)) != NULL) {
    snprintf(path, sizeof path, "%s/%s",
             strncmp(file, "sc_", 3) == 0 ? fixtures_dir() : workflows_dir(),
             file);
    if (chm_meta_import(meta, path, &report) != CHM_OK) {
      printf("  cannot import %s: %s\n", path, chm_meta_errmsg(meta));
      exit(2);
    }
    chm_free(report);
  }
  va_end(ap);
  snprintf(path, sizeof path, "%s/inst%d.db", dir, nstore);
  if (chm_meta_instantiate(meta, master, 0, path, NULL, &report) != CHM_OK) {
    printf("  cannot instantiate %s: %s\n", master, chm_meta_errmsg(meta));
    exit(2);
  }
  chm_free(report);
  if (chm_instance_open(path, &inst) != CHM_OK) {
    printf("  cannot open %s: %s\n", path, chm_instance_errmsg(inst));
    exit(2);
  }
  chm_clock_set_virtual(T0);
}

/* ===================================================================== */
/* Tokens, read back through the API                                      */
/* ===================================================================== */

/* tok(id, path) -> a field of chm_token_get ("status", "attributes.x"). */
static const char *tok(const char *id, const char *path) {
  char *json = NULL;
  const char *v;
  if (chm_token_get(inst, id, &json) != CHM_OK)
    return "(no token)";
  v = jstr(json, path);
  chm_free(json);
  return v;
}

static const char *status_of(const char *id) { return tok(id, "status"); }
static const char *place_of(const char *id) { return tok(id, "interaction"); }
static long long tok_int(const char *id, const char *path) {
  const char *v = tok(id, path);
  return v[0] == '(' ? -999999 : strtoll(v, NULL, 10);
}

/* hist(id, event, field) -> `field` of the token's log rows whose event is
** `event` (NULL: every row), in order, joined by spaces. */
static const char *hist(const char *id, const char *event, const char *field) {
  char *json = NULL, *out = obuf(), path[64];
  int i, n;
  size_t len = 0;
  out[0] = '\0';
  if (chm_token_history(inst, id, &json) != CHM_OK)
    return "(no token)";
  n = jlen(json, "");
  for (i = 0; i < n; i++) {
    snprintf(path, sizeof path, "[%d].event", i);
    if (event != NULL && strcmp(jstr(json, path), event) != 0)
      continue;
    snprintf(path, sizeof path, "[%d].%s", i, field);
    len += snprintf(out + len, 8192 - len, "%s%s", len ? " " : "",
                    jstr(json, path));
    if (len >= 8192)
      break; /* truncated; the comparison will say so */
  }
  chm_free(json);
  return out;
}

/* attr_row(id, key, version) -> "value | actor | reasoning" of one version
** of an attribute (version 0: the latest), "(none)" when there is none. */
static const char *attr_row(const char *id, const char *key, int version) {
  char *json = NULL, *out = obuf(), path[64];
  int i, n;
  snprintf(out, 8192, "(none)");
  if (chm_token_attributes(inst, id, &json) != CHM_OK)
    return "(no token)";
  n = jlen(json, "");
  for (i = 0; i < n; i++) {
    snprintf(path, sizeof path, "[%d].key", i);
    if (strcmp(jstr(json, path), key) != 0)
      continue;
    snprintf(path, sizeof path, "[%d].version", i);
    if (version != 0 && jint(json, path) != version)
      continue;
    snprintf(path, sizeof path, "[%d]", i);
    snprintf(out, 8192, "%s | %s | %s", jraw(jfind(json, path), "value"),
             jstr(jfind(json, path), "actor"),
             jstr(jfind(json, path), "reasoning"));
  }
  chm_free(json);
  return out;
}

/* nversions(id) -> how many attribute rows the token has. */
static int nversions(const char *id) {
  char *json = NULL;
  int n;
  if (chm_token_attributes(inst, id, &json) != CHM_OK)
    return -1;
  n = jlen(json, "");
  chm_free(json);
  return n;
}

/* query(path, fmt, ...) -> the value at path ("[0].n") of the rows
** chm_instance_query gives for the SQL printf(fmt, ...); the handle's
** message when the query fails. */
static const char *query(const char *path, const char *fmt, ...) {
  char sql[2048], *json = NULL;
  const char *v;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(sql, sizeof sql, fmt, ap);
  va_end(ap);
  if (chm_instance_query(inst, sql, &json) != CHM_OK)
    return chm_instance_errmsg(inst);
  v = jstr(json, path);
  chm_free(json);
  return v;
}

/* concat(a, b) -> a followed by b (in a static buffer). */
static const char *concat(const char *a, const char *b) {
  char *out = jbuf();
  snprintf(out, 8192, "%s%s", a, b);
  return out;
}

/* ===================================================================== */
/* Driving tokens                                                         */
/* ===================================================================== */

/* genesis(workflow, attrs, actor, id): a new base token. */
static int genesis(const char *workflow, const char *attrs, const char *actor,
                   char id[37]) {
  char *out = NULL;
  int rc = chm_genesis(inst, workflow, attrs, actor, &out);
  snprintf(id, 37, "%s", out ? out : "");
  chm_free(out);
  return rc;
}

/* checkout(actor, role, id, &version, &json): the checked out token's id
** and version; *json (may be NULL) keeps the whole answer (caller frees). */
static int checkout(const char *actor, const char *role, char id[37],
                    long long *version, char **json) {
  char *out = NULL;
  int rc = chm_checkout(inst, actor, role, NULL, &out);
  snprintf(id, 37, "%s", jstr(out, "uow_id"));
  if (version != NULL)
    *version = jint(out, "version");
  if (json != NULL)
    *json = out;
  else
    chm_free(out);
  return rc;
}

static int submit(const char *id, const char *actor, long long version,
                  const char *changes) {
  char *out = NULL;
  int rc = chm_submit(inst, id, actor, version, changes, &out);
  chm_free(out);
  return rc;
}

/* run() -> chm_run's report (a static copy), "(error ...)" on failure. */
static const char *run(void) {
  char *out = NULL, *buf = jbuf();
  int rc = chm_run(inst, NULL, &out);
  if (rc != CHM_OK)
    snprintf(buf, 8192, "(error %s: %s)", chm_errname(rc),
             chm_instance_errmsg(inst));
  else
    snprintf(buf, 8192, "%s", out);
  chm_free(out);
  return buf;
}

/* verified() -> 1 when chm_verify finds the hash chain whole. */
static int verified(void) {
  char *out = NULL;
  int ok =
      chm_verify(inst, &out) == CHM_OK && strcmp(jraw(out, "ok"), "true") == 0;
  chm_free(out);
  return ok;
}

/* ===================================================================== */
/* 1. WF-FIN-001 down both branches                                       */
/* ===================================================================== */

#define INVOICE(amount, po_amount)                                             \
  "{\"document\": \"Vendor: ACME-7 Amount: " amount " PO: PO-4711\", "         \
  "\"po_amount\": " po_amount "}"

TEST(fin_match) {
  char id[37];
  fresh("WF-FIN-001", "wf_fin_001.lua", NULL);
  ASSERT_RC(genesis(NULL, INVOICE("1000.00", "1000"), "ap-specialist", id),
            CHM_OK);
  ASSERT_STR_EQ(status_of(id), "PENDING");
  ASSERT_STR_EQ(place_of(id), "invoices");
  /* F-01, F-02 (pass), F-04, F-05, close: all automated */
  ASSERT_STR_EQ(run(), "{\"steps\":5,\"moves\":5,\"failed\":0,\"commits\":5}");
  ASSERT_STR_EQ(status_of(id), "FINALIZED");
  ASSERT_STR_EQ(place_of(id), "done");
  ASSERT_STR_EQ(hist(id, "CHECKOUT", "role"), "F-01 F-02 F-04 F-05 close");
  ASSERT_STR_EQ(hist(id, NULL, "event"),
                "GENESIS CHECKOUT SUBMIT CHECKOUT SUBMIT CHECKOUT SUBMIT "
                "CHECKOUT SUBMIT GUARDIAN CHECKOUT FINALIZE");
  ASSERT_STR_EQ(hist(id, "SUBMIT", "decision"),
                "extracted to_booking booked done");
  ASSERT_STR_EQ(hist(id, NULL, "to_status"),
                "PENDING ACTIVE PENDING ACTIVE PENDING ACTIVE PENDING ACTIVE "
                "COMPLETED null ACTIVE FINALIZED");
  /* Omega took it after its Cerberus passed */
  ASSERT_STR_EQ(hist(id, "GUARDIAN", "guardian"), "invoice-complete");
  ASSERT_STR_EQ(hist(id, "GUARDIAN", "decision"), "PASS");
  /* the route the PO match chose, and why */
  ASSERT_CONTAINS(hist(id, "SUBMIT", "details.reason"),
                  "next_step_logic if[1] \"output.pass == true\" chose "
                  "'F-04'");
  /* attribute versions: who wrote what, and why */
  ASSERT_STR_EQ(attr_row(id, "po_amount", 1), "1000 | ap-specialist | genesis");
  ASSERT_STR_EQ(attr_row(id, "vendor_id", 1),
                "\"ACME-7\" | system | SK-OCR-001 extracted vendor_id, amount "
                "and po_id");
  ASSERT_STR_EQ(attr_row(id, "output", 0),
                "{\"check\":\"po_match\",\"pass\":true,\"tolerance\":0.05,"
                "\"variance\":0.0} | system | variance 0.0000 against "
                "tolerance 0.05");
  ASSERT_CONTAINS(attr_row(id, "booking", 1), "\"reference\":\"GL-PO-4711\"");
  ASSERT_CONTAINS(attr_row(id, "booking", 1),
                  "| system | invoice booked to the general ledger");
  ASSERT_CONTAINS(attr_row(id, "notification", 1),
                  "| system | vendor notified");
  ASSERT_STR_EQ(attr_row(id, "handoff", 0), "(none)"); /* not F-03's path */
  ASSERT_TRUE(verified());
}

TEST(fin_mismatch) {
  char id[37], rej[37], nopo[37], got[37];
  long long v;
  fresh("WF-FIN-001", "wf_fin_001.lua", NULL);
  ASSERT_RC(genesis(NULL, INVOICE("1300.00", "1000"), "ap-specialist", id),
            CHM_OK);
  ASSERT_RC(genesis(NULL, INVOICE("1500.00", "1000"), "ap-specialist", rej),
            CHM_OK);
  ASSERT_RC(genesis(NULL, INVOICE("1500.00", "null"), "ap-specialist", nopo),
            CHM_OK);
  /* F-01, F-02 (fail), F-03 for each: all wait for the finance manager */
  ASSERT_STR_EQ(run(), "{\"steps\":9,\"moves\":9,\"failed\":0,\"commits\":9}");
  /* without a PO amount F-02 writes no output: on_error chose F-03 */
  ASSERT_STR_EQ(place_of(nopo), "manager_review");
  ASSERT_STR_EQ(attr_row(nopo, "output", 0), "(none)");
  ASSERT_CONTAINS(hist(nopo, "SUBMIT", "details.reason"),
                  "next_step_logic on_error chose 'F-03'");
  ASSERT_STR_EQ(status_of(id), "PENDING");
  ASSERT_STR_EQ(place_of(id), "manager_review");
  ASSERT_STR_EQ(hist(id, "CHECKOUT", "role"), "F-01 F-02 F-03");
  ASSERT_CONTAINS(hist(id, "SUBMIT", "details.reason"),
                  "next_step_logic if[2] \"output.pass == false\" chose "
                  "'F-03'");
  ASSERT_STR_EQ(attr_row(id, "handoff", 1),
                "{\"amount\":1300.0,\"owner\":\"FA-M-001\",\"po_id\":"
                "\"PO-4711\",\"reason\":\"PO_MISMATCH\",\"vendor_id\":"
                "\"ACME-7\"} | system | PO mismatch handed off to the finance "
                "manager with state carried over");
  /* only the declared human may take it; the run leaves it alone */
  ASSERT_RC(checkout("ap-specialist", "FA-M-001", got, &v, NULL), CHM_DENIED);
  ASSERT_STR_EQ(run(), "{\"steps\":0,\"moves\":0,\"failed\":0,\"commits\":0}");
  /* the manager approves the first: on to booking and the end */
  ASSERT_RC(checkout("finance-manager", "FA-M-001", got, &v, NULL), CHM_OK);
  ASSERT_STR_EQ(got, id);
  ASSERT_STR_EQ(tok(id, "lease.holder"), "finance-manager");
  ASSERT_RC(submit(id, "finance-manager", v,
                   "{\"set\": {\"manager_decision\": \"approve\"}, "
                   "\"reasoning\": \"price rise agreed by phone\"}"),
            CHM_OK);
  ASSERT_STR_EQ(status_of(id), "PENDING");
  ASSERT_STR_EQ(place_of(id), "to_booking");
  ASSERT_STR_EQ(attr_row(id, "manager_decision", 1),
                "\"approve\" | finance-manager | price rise agreed by phone");
  /* ... and rejects the second: no route, so it fails to the Ate */
  ASSERT_RC(checkout("finance-manager", "FA-M-001", got, &v, NULL), CHM_OK);
  ASSERT_STR_EQ(got, rej);
  ASSERT_RC(submit(rej, "finance-manager", v,
                   "{\"set\": {\"manager_decision\": \"reject\"}, "
                   "\"reasoning\": \"not what we ordered\"}"),
            CHM_OK);
  ASSERT_STR_EQ(status_of(rej), "FAILED");
  ASSERT_STR_EQ(place_of(rej), "ate");
  ASSERT_CONTAINS(tok(rej, "failure_reason"),
                  "no route matched after role 'FA-M-001'");
  /* the third is rejected too */
  ASSERT_RC(checkout("finance-manager", "FA-M-001", got, &v, NULL), CHM_OK);
  ASSERT_STR_EQ(got, nopo);
  ASSERT_RC(submit(nopo, "finance-manager", v,
                   "{\"set\": {\"manager_decision\": \"reject\"}}"),
            CHM_OK);
  ASSERT_STR_EQ(status_of(nopo), "FAILED");
  /* F-04, F-05, close finish the approved one */
  ASSERT_STR_EQ(run(), "{\"steps\":3,\"moves\":3,\"failed\":0,\"commits\":3}");
  ASSERT_STR_EQ(status_of(id), "FINALIZED");
  ASSERT_STR_EQ(hist(id, "CHECKOUT", "role"),
                "F-01 F-02 F-03 FA-M-001 F-04 F-05 close");
  ASSERT_STR_EQ(hist(id, "CHECKOUT", "actor"),
                "system system system finance-manager system system system");
  ASSERT_STR_EQ(hist(id, "SUBMIT", "decision"),
                "extracted to_review manager_review to_booking booked done");
  ASSERT_CONTAINS(hist(id, "SUBMIT", "details.reason"),
                  "when \"manager_decision == 'approve'\" holds");
  ASSERT_CONTAINS(attr_row(id, "booking", 1), "\"amount\":1300.0");
  /* the AP specialist (Epsilon) closes the rejected one for good */
  ASSERT_RC(checkout("ap-specialist", "physician", got, &v, NULL), CHM_OK);
  ASSERT_STR_EQ(got, rej);
  ASSERT_RC(submit(rej, "ap-specialist", v,
                   "{\"give_up\": true, \"set\": {\"resolution\": "
                   "\"returned to vendor\"}, \"reasoning\": \"vendor must "
                   "reissue\"}"),
            CHM_OK);
  ASSERT_STR_EQ(status_of(rej), "ARCHIVED");
  ASSERT_STR_EQ(attr_row(rej, "resolution", 1),
                "\"returned to vendor\" | ap-specialist | vendor must reissue");
  ASSERT_STR_EQ(hist(rej, "CHECKOUT", "role"),
                "F-01 F-02 F-03 FA-M-001 physician");
  /* ... and closes the third as remediated (no retry): REMEDIATED into
  ** the Cerberus room, where close finalizes it */
  ASSERT_RC(checkout("ap-specialist", "physician", got, &v, NULL), CHM_OK);
  ASSERT_STR_EQ(got, nopo);
  ASSERT_RC(submit(nopo, "ap-specialist", v,
                   "{\"set\": {\"remediation\": \"paid without PO\"}, "
                   "\"reasoning\": \"small supplier, approved by mail\"}"),
            CHM_OK);
  ASSERT_STR_EQ(status_of(nopo), "REMEDIATED");
  ASSERT_STR_EQ(place_of(nopo), "done");
  ASSERT_CONTAINS(hist(nopo, "SUBMIT", "details.reason"),
                  "routing default chose 'done'");
  ASSERT_STR_EQ(run(), "{\"steps\":1,\"moves\":1,\"failed\":0,\"commits\":1}");
  ASSERT_STR_EQ(status_of(nopo), "FINALIZED");
  ASSERT_STR_EQ(hist(nopo, "CHECKOUT", "role"),
                "F-01 F-02 F-03 FA-M-001 physician close");
  ASSERT_TRUE(verified());
}

/* ===================================================================== */
/* 2. Fan-out and the Cerberus join (WF-FANOUT-001)                       */
/* ===================================================================== */

/* child_ids(base, out, n) -> how many children the base has; their ids,
** oldest first, in out. */
static int child_ids(const char *base, char out[][37], int max) {
  char *json = NULL, path[32];
  int i, n;
  if (chm_token_get(inst, base, &json) != CHM_OK)
    return -1;
  n = jlen(json, "children");
  for (i = 0; i < n && i < max; i++) {
    snprintf(path, sizeof path, "children[%d]", i);
    snprintf(out[i], 37, "%s", jstr(json, path));
  }
  chm_free(json);
  return n;
}

TEST(fanout_join) {
  char base[37], kids[4][37], got[37], *json = NULL;
  long long v, bv;
  int i;
  fresh("WF-FANOUT-001", "wf_fanout.lua", NULL);
  /* three lines; the second has a price nobody can read */
  ASSERT_RC(genesis(NULL,
                    "{\"order\": \"SO-1\", \"lines\": ["
                    "{\"sku\": \"A-1\", \"qty\": 2, \"unit_price\": 10}, "
                    "{\"sku\": \"B-2\", \"qty\": 1, \"unit_price\": \"TBD\"}, "
                    "{\"sku\": \"C-3\", \"qty\": 4, \"unit_price\": 2.5}]}",
                    NULL, base),
            CHM_OK);
  /* split (1 step, 3 children), price 3 lines (one fails); Omega waits */
  ASSERT_STR_EQ(run(), "{\"steps\":4,\"moves\":3,\"failed\":1,\"commits\":4}");
  ASSERT_INT_EQ(child_ids(base, kids, 4), 3);
  ASSERT_STR_EQ(status_of(base), "COMPLETED");
  ASSERT_STR_EQ(place_of(base), "joined");
  ASSERT_INT_EQ(tok_int(base, "child_count"), 3);
  ASSERT_INT_EQ(tok_int(base, "finished_child_count"), 2);
  ASSERT_STR_EQ(attr_row(base, "line_count", 1),
                "3 | system | 3 lines to price");
  for (i = 0; i < 3; i++) {
    ASSERT_STR_EQ(tok(kids[i], "parent_id"), base);
    /* the parent's attributes, inherited as version 1 with lineage */
    ASSERT_STR_EQ(tok(kids[i], "attributes.order"), "SO-1");
  }
  ASSERT_STR_EQ(tok(kids[0], "attributes.sku"), "A-1");
  ASSERT_STR_EQ(status_of(kids[0]), "COMPLETED");
  ASSERT_STR_EQ(attr_row(kids[0], "line_total", 1),
                "20 | system | qty x unit_price");
  ASSERT_STR_EQ(status_of(kids[2]), "COMPLETED");
  ASSERT_STR_EQ(tok(kids[2], "attributes.line_total"), "10.0");
  ASSERT_STR_EQ(status_of(kids[1]), "FAILED");
  ASSERT_STR_EQ(place_of(kids[1]), "ate");
  ASSERT_CONTAINS(tok(kids[1], "failure_reason"), "UNPRICEABLE");
  ASSERT_STR_EQ(hist(kids[1], NULL, "event"), "SPAWN CHECKOUT FAIL");
  /* Omega cannot take the order while a line is unfinished: the run
  ** finds nothing, a checkout finds nothing, and nothing is written */
  bv = tok_int(base, "version");
  ASSERT_STR_EQ(run(), "{\"steps\":0,\"moves\":0,\"failed\":0,\"commits\":0}");
  ASSERT_RC(checkout("system", "ship", got, &v, NULL), CHM_NOTFOUND);
  ASSERT_CONTAINS(chm_instance_errmsg(inst), "no work for role 'ship'");
  ASSERT_STR_EQ(status_of(base), "COMPLETED");
  ASSERT_INT_EQ(tok_int(base, "version"), bv);
  ASSERT_STR_EQ(hist(base, "GUARDIAN", "event"), "");
  /* the order desk (Epsilon) prices the line by hand: REMEDIATED into
  ** the Cerberus room */
  ASSERT_RC(checkout("system", "line-doctor", got, &v, NULL), CHM_DENIED);
  ASSERT_RC(checkout("order-desk", "line-doctor", got, &v, &json), CHM_OK);
  ASSERT_STR_EQ(got, kids[1]);
  ASSERT_STR_EQ(jstr(json, "attributes.unit_price"), "TBD");
  chm_free(json);
  ASSERT_RC(submit(kids[1], "order-desk", v,
                   "{\"set\": {\"unit_price\": 7.5, \"line_total\": 7.5}, "
                   "\"reasoning\": \"price from the catalogue\"}"),
            CHM_OK);
  ASSERT_STR_EQ(status_of(kids[1]), "REMEDIATED");
  ASSERT_STR_EQ(place_of(kids[1]), "joined");
  ASSERT_STR_EQ(attr_row(kids[1], "unit_price", 0),
                "7.5 | order-desk | price from the catalogue");
  ASSERT_STR_EQ(attr_row(kids[1], "unit_price", 1),
                "\"TBD\" | system | 3 lines to price");
  ASSERT_INT_EQ(tok_int(base, "finished_child_count"), 3);
  /* now Omega takes the order and finalizes it with every line at once */
  ASSERT_STR_EQ(run(), "{\"steps\":1,\"moves\":1,\"failed\":0,\"commits\":1}");
  ASSERT_STR_EQ(status_of(base), "FINALIZED");
  ASSERT_INT_EQ(tok_int(base, "finished_child_count"),
                tok_int(base, "child_count"));
  ASSERT_STR_EQ(hist(base, "GUARDIAN", "guardian"), "all-lines-priced");
  ASSERT_STR_EQ(hist(base, "GUARDIAN", "decision"), "PASS");
  ASSERT_STR_EQ(hist(base, "CHECKOUT", "role"), "split-lines ship");
  for (i = 0; i < 3; i++) {
    ASSERT_STR_EQ(status_of(kids[i]), "FINALIZED");
    ASSERT_CONTAINS(hist(kids[i], NULL, "event"), "FINALIZE_CHILD");
  }
  ASSERT_STR_EQ(hist(kids[1], "CHECKOUT", "role"), "price-line line-doctor");
  ASSERT_STR_EQ(query("[0].n",
                      "SELECT count(*) AS n FROM UnitsOfWork WHERE status "
                      "<> 'FINALIZED'"),
                "0");
  ASSERT_TRUE(verified());
}

/* Lines nobody priced in time: the children time out to Chronos, the
** engine's actor (as the Tau line-clock, which has no step) escalates them
** to the Ate, the order desk remediates them, and only then does Omega
** take the order. The order itself waits in the Cerberus room, which has
** no time limit, so it is never swept. */
TEST(fanout_stale_lines) {
  char base[37], kids[4][37], got[37], *out = NULL;
  long long v;
  int i;
  chm_run_opts one = {0, 1};
  fresh("WF-FANOUT-001", "wf_fanout.lua", NULL);
  ASSERT_RC(genesis(NULL,
                    "{\"order\": \"SO-3\", \"lines\": ["
                    "{\"sku\": \"A-1\", \"qty\": 1, \"unit_price\": 3}, "
                    "{\"sku\": \"B-2\", \"qty\": 2, \"unit_price\": 4}]}",
                    NULL, base),
            CHM_OK);
  ASSERT_RC(chm_run(inst, &one, &out), CHM_OK); /* the split only */
  chm_free(out);
  ASSERT_INT_EQ(child_ids(base, kids, 4), 2);
  ASSERT_STR_EQ(status_of(kids[0]), "PENDING");
  ASSERT_STR_EQ(place_of(kids[0]), "lines");
  chm_clock_advance(3600LL * 1000 + 1);
  ASSERT_RC(chm_sweep(inst, &out), CHM_OK);
  ASSERT_STR_EQ(jraw(out, "stale"), "2");
  chm_free(out);
  ASSERT_STR_EQ(status_of(base), "COMPLETED");
  ASSERT_INT_EQ(tok_int(base, "finished_child_count"), 0);
  /* line-clock escalates both; nothing else can move */
  ASSERT_STR_EQ(run(), "{\"steps\":2,\"moves\":0,\"failed\":2,\"commits\":2}");
  for (i = 0; i < 2; i++) {
    ASSERT_STR_EQ(status_of(kids[i]), "FAILED");
    ASSERT_STR_EQ(place_of(kids[i]), "ate");
    ASSERT_STR_EQ(hist(kids[i], "CHECKOUT", "role"), "line-clock");
  }
  ASSERT_RC(checkout("system", "ship", got, &v, NULL), CHM_NOTFOUND);
  for (i = 0; i < 2; i++) {
    ASSERT_RC(checkout("order-desk", "line-doctor", got, &v, NULL), CHM_OK);
    ASSERT_STR_EQ(got, kids[i]);
    ASSERT_RC(submit(got, "order-desk", v,
                     i == 0 ? "{\"set\": {\"line_total\": 3}}"
                            : "{\"set\": {\"line_total\": 8}}"),
              CHM_OK);
    ASSERT_STR_EQ(status_of(kids[i]), "REMEDIATED");
  }
  ASSERT_INT_EQ(tok_int(base, "finished_child_count"), 2);
  ASSERT_STR_EQ(run(), "{\"steps\":1,\"moves\":1,\"failed\":0,\"commits\":1}");
  ASSERT_STR_EQ(status_of(base), "FINALIZED");
  ASSERT_STR_EQ(status_of(kids[0]), "FINALIZED");
  ASSERT_STR_EQ(status_of(kids[1]), "FINALIZED");
  ASSERT_STR_EQ(hist(kids[1], "CHECKOUT", "role"), "line-clock line-doctor");
  ASSERT_TRUE(verified());
}

/* A line given up: an ARCHIVED child never finishes, so the order can
** never be joined. The order already waits in the Cerberus room, so the
** give-up asks Cerberus at once: it rejects the order, which goes FAILED
** to the Ate in the same transaction (before, it sat in the room until
** the stale sweep moved it a day later), and the order desk decides
** (here: gives the order up too). */
TEST(fanout_line_given_up) {
  char base[37], kids[4][37], got[37];
  long long v;
  fresh("WF-FANOUT-001", "wf_fanout.lua", NULL);
  ASSERT_RC(genesis(NULL,
                    "{\"order\": \"SO-4\", \"lines\": ["
                    "{\"sku\": \"A-1\", \"qty\": 1, \"unit_price\": 3}, "
                    "{\"sku\": \"B-2\", \"qty\": 2, \"unit_price\": \"TBD\"}]}",
                    NULL, base),
            CHM_OK);
  ASSERT_STR_EQ(run(), "{\"steps\":3,\"moves\":2,\"failed\":1,\"commits\":3}");
  ASSERT_INT_EQ(child_ids(base, kids, 4), 2);
  ASSERT_STR_EQ(status_of(base), "COMPLETED");
  ASSERT_RC(checkout("order-desk", "line-doctor", got, &v, NULL), CHM_OK);
  ASSERT_STR_EQ(got, kids[1]);
  ASSERT_RC(submit(got, "order-desk", v,
                   "{\"give_up\": true, \"reasoning\": \"SKU discontinued\"}"),
            CHM_OK);
  ASSERT_STR_EQ(status_of(kids[1]), "ARCHIVED");
  ASSERT_INT_EQ(tok_int(base, "finished_child_count"), 1);
  ASSERT_STR_EQ(status_of(base), "FAILED");
  ASSERT_STR_EQ(place_of(base), "ate");
  ASSERT_RC(checkout("system", "ship", got, &v, NULL), CHM_NOTFOUND);
  ASSERT_RC(checkout("order-desk", "line-doctor", got, &v, NULL), CHM_OK);
  ASSERT_STR_EQ(got, base);
  ASSERT_RC(submit(base, "order-desk", v,
                   "{\"give_up\": true, \"reasoning\": \"customer cancelled "
                   "the order\"}"),
            CHM_OK);
  ASSERT_STR_EQ(status_of(base), "ARCHIVED");
  /* give_up archives in place: the priced line stays COMPLETED */
  ASSERT_STR_EQ(status_of(kids[0]), "COMPLETED");
  ASSERT_STR_EQ(hist(base, "CHECKOUT", "role"), "split-lines line-doctor");
  ASSERT_TRUE(verified());
}

/* The same order with the price of one line simply missing: every child
** still has the same keys (unit_price false), price-line fails that line
** and the priced one goes on. */
TEST(fanout_line_without_price) {
  char base[37], kids[4][37];
  fresh("WF-FANOUT-001", "wf_fanout.lua", NULL);
  ASSERT_RC(genesis(NULL,
                    "{\"order\": \"SO-2\", \"lines\": ["
                    "{\"sku\": \"A-1\", \"qty\": 2, \"unit_price\": 10}, "
                    "{\"sku\": \"B-2\", \"qty\": 1}]}",
                    NULL, base),
            CHM_OK);
  run();
  ASSERT_STR_EQ(tok(base, "failure_reason"), "null");
  ASSERT_STR_EQ(status_of(base), "COMPLETED");
  ASSERT_INT_EQ(child_ids(base, kids, 4), 2);
  ASSERT_STR_EQ(status_of(kids[1]), "FAILED");
  ASSERT_CONTAINS(tok(kids[1], "failure_reason"), "UNPRICEABLE");
}

/* ===================================================================== */
/* 3. Timeouts handled by Tau (WF-FIN-001)                                */
/* ===================================================================== */

TEST(tau_timeouts) {
  char esc[37], fin[37], got[37], *out = NULL;
  long long v;
  chm_run_opts one = {0, 1};
  fresh("WF-FIN-001", "wf_fin_001.lua", NULL);
  ASSERT_RC(genesis(NULL, INVOICE("1300.00", "1000"), "ap-specialist", esc),
            CHM_OK);
  ASSERT_RC(genesis(NULL, INVOICE("990.00", "500"), "ap-specialist", fin),
            CHM_OK);
  ASSERT_STR_EQ(run(), "{\"steps\":6,\"moves\":6,\"failed\":0,\"commits\":6}");
  ASSERT_STR_EQ(place_of(esc), "manager_review");
  ASSERT_STR_EQ(place_of(fin), "manager_review");
  /* manager_review allows 28800 s; at the limit nothing is stale yet */
  chm_clock_advance(28800LL * 1000);
  ASSERT_RC(chm_sweep(inst, &out), CHM_OK);
  ASSERT_STR_EQ(jraw(out, "stale"), "0");
  chm_free(out);
  chm_clock_advance(1);
  ASSERT_RC(chm_sweep(inst, &out), CHM_OK);
  ASSERT_STR_EQ(jraw(out, "zombies"), "0");
  ASSERT_STR_EQ(jraw(out, "stale"), "2");
  ASSERT_STR_EQ(jstr(out, "stale_ids[0]"), esc);
  ASSERT_STR_EQ(jstr(out, "stale_ids[1]"), fin);
  chm_free(out);
  ASSERT_STR_EQ(status_of(esc), "TIMEOUT");
  ASSERT_STR_EQ(place_of(esc), "chronos");
  ASSERT_STR_EQ(status_of(fin), "TIMEOUT");
  ASSERT_STR_EQ(hist(esc, "STALE_SWEEP", "actor"), "system");
  ASSERT_STR_EQ(hist(esc, "STALE_SWEEP", "from_status"), "PENDING");
  /* the manager comes too late */
  ASSERT_RC(checkout("finance-manager", "FA-M-001", got, &v, NULL),
            CHM_NOTFOUND);
  /* Tau's step escalates the older one to the Ate ... */
  ASSERT_RC(chm_run(inst, &one, &out), CHM_OK);
  /* (the run counts a token it leaves FAILED as failed, not as moved) */
  ASSERT_STR_EQ(out, "{\"steps\":1,\"moves\":0,\"failed\":1,\"commits\":1}");
  chm_free(out);
  ASSERT_STR_EQ(status_of(esc), "FAILED");
  ASSERT_STR_EQ(place_of(esc), "ate");
  ASSERT_STR_EQ(hist(esc, "SUBMIT", "decision"),
                "extracted to_review manager_review ate");
  ASSERT_STR_EQ(attr_row(esc, "escalation", 1),
                "\"TIMEOUT\" | system | no decision in time; escalated to the "
                "physician");
  /* ... and the engine's actor, as Tau, forces an end of the other */
  ASSERT_RC(checkout("system", "chronometer", got, &v, NULL), CHM_OK);
  ASSERT_STR_EQ(got, fin);
  ASSERT_RC(submit(fin, "system", v,
                   "{\"end\": true, \"set\": {\"closed_by\": \"timeout\"}, "
                   "\"reasoning\": \"vendor withdrew the invoice\"}"),
            CHM_OK);
  ASSERT_STR_EQ(status_of(fin), "FINALIZED");
  ASSERT_STR_EQ(hist(fin, NULL, "event"),
                "GENESIS CHECKOUT SUBMIT CHECKOUT SUBMIT CHECKOUT SUBMIT "
                "STALE_SWEEP CHECKOUT END");
  ASSERT_STR_EQ(attr_row(fin, "closed_by", 1),
                "\"timeout\" | system | vendor withdrew the invoice");
  ASSERT_STR_EQ(attr_row(fin, "booking", 0), "(none)");
  /* the escalated one: the physician amends the PO and retries */
  ASSERT_RC(checkout("ap-specialist", "physician", got, &v, NULL), CHM_OK);
  ASSERT_STR_EQ(got, esc);
  ASSERT_RC(submit(esc, "ap-specialist", v,
                   "{\"set\": {\"remediation\": \"retry\", \"po_amount\": "
                   "1300}, \"reasoning\": \"PO amended to 1300\"}"),
            CHM_OK);
  ASSERT_STR_EQ(status_of(esc), "PENDING");
  ASSERT_STR_EQ(place_of(esc), "extracted");
  ASSERT_STR_EQ(attr_row(esc, "po_amount", 2),
                "1300 | ap-specialist | PO amended to 1300");
  ASSERT_STR_EQ(run(), "{\"steps\":4,\"moves\":4,\"failed\":0,\"commits\":4}");
  ASSERT_STR_EQ(status_of(esc), "FINALIZED");
  ASSERT_STR_EQ(hist(esc, "CHECKOUT", "role"),
                "F-01 F-02 F-03 chronometer physician F-02 F-04 F-05 close");
  ASSERT_STR_EQ(tok(esc, "attributes.output.pass"), "true");
  ASSERT_TRUE(verified());
}

/* The other way into Chronos: a human holds a token and stops
** heartbeating. The zombie sweep takes it from them (FAILED to Chronos),
** their late submit is refused as stale, and Tau escalates it. */
TEST(lease_lapse) {
  char id[37], got[37], *out = NULL;
  long long v;
  fresh("WF-FIN-001", "wf_fin_001.lua", NULL);
  ASSERT_RC(chm_set_lease_ms(inst, 60000), CHM_OK);
  ASSERT_RC(genesis(NULL, INVOICE("1300.00", "1000"), "ap-specialist", id),
            CHM_OK);
  ASSERT_STR_EQ(run(), "{\"steps\":3,\"moves\":3,\"failed\":0,\"commits\":3}");
  ASSERT_RC(checkout("finance-manager", "FA-M-001", got, &v, NULL), CHM_OK);
  ASSERT_INT_EQ(tok_int(id, "lease.expires_at"), T0 + 60000);
  chm_clock_advance(50000);
  ASSERT_RC(chm_heartbeat(inst, id, "finance-manager"), CHM_OK);
  ASSERT_INT_EQ(tok_int(id, "lease.expires_at"), T0 + 110000);
  ASSERT_INT_EQ(tok_int(id, "version"), v); /* a heartbeat is no change */
  chm_clock_advance(50000);
  ASSERT_RC(chm_sweep(inst, &out), CHM_OK);
  ASSERT_STR_EQ(jraw(out, "zombies"), "0");
  chm_free(out);
  chm_clock_advance(10001);
  ASSERT_RC(chm_sweep(inst, &out), CHM_OK);
  ASSERT_STR_EQ(jraw(out, "zombies"), "1");
  ASSERT_STR_EQ(jstr(out, "zombie_ids[0]"), id);
  chm_free(out);
  ASSERT_STR_EQ(status_of(id), "FAILED");
  ASSERT_STR_EQ(place_of(id), "chronos");
  ASSERT_STR_EQ(tok(id, "lease"), "null");
  ASSERT_CONTAINS(tok(id, "failure_reason"),
                  "lease of 'finance-manager' expired");
  ASSERT_STR_EQ(hist(id, "ZOMBIE_SWEEP", "from_status"), "ACTIVE");
  /* the manager's decision arrives too late */
  ASSERT_RC(submit(id, "finance-manager", v,
                   "{\"set\": {\"manager_decision\": \"approve\"}}"),
            CHM_CONFLICT);
  ASSERT_CONTAINS(chm_instance_errmsg(inst), "now FAILED in 'chronos'");
  ASSERT_RC(chm_heartbeat(inst, id, "finance-manager"), CHM_STATE);
  ASSERT_STR_EQ(attr_row(id, "manager_decision", 0), "(none)");
  /* Tau (the physician's inbound is only FAILED tokens of the Ate, so the
  ** physician cannot take it from Chronos) escalates it to the Ate */
  ASSERT_RC(checkout("ap-specialist", "physician", got, &v, NULL),
            CHM_NOTFOUND);
  ASSERT_STR_EQ(run(), "{\"steps\":1,\"moves\":0,\"failed\":1,\"commits\":1}");
  ASSERT_STR_EQ(place_of(id), "ate");
  ASSERT_RC(checkout("ap-specialist", "physician", got, &v, NULL), CHM_OK);
  ASSERT_STR_EQ(got, id);
  ASSERT_STR_EQ(hist(id, "CHECKOUT", "role"),
                "F-01 F-02 F-03 FA-M-001 chronometer physician");
  ASSERT_TRUE(verified());
}

/* ===================================================================== */
/* 4. The recursive gateway (WF-ONBOARD-001 with child WF-KYC-001)        */
/* ===================================================================== */

/* child_of(parent) -> the child-workflow token started for parent. */
static const char *child_of(const char *parent) {
  return query("[0].uow_id",
               "SELECT uow_id FROM UnitsOfWork WHERE return_uow_id = '%s' "
               "ORDER BY created_at DESC, uow_id DESC LIMIT 1",
               parent);
}

TEST(gateway_kyc) {
  char app[37], kyc[37], got[37], why[128], *out = NULL;
  long long v;
  fresh("WF-ONBOARD-001", "wf_child_kyc.lua", "wf_gateway.lua", NULL);
  ASSERT_RC(genesis(NULL,
                    "{\"applicant_name\": \"Jane Roe\", \"id_document\": "
                    "\"AB1234567\"}",
                    NULL, app),
            CHM_OK);
  /* collect, the gateway start, the child's three roles, then the
  ** parent's activate and onboarded */
  ASSERT_STR_EQ(run(), "{\"steps\":7,\"moves\":7,\"failed\":0,\"commits\":7}");
  snprintf(kyc, sizeof kyc, "%s", child_of(app));
  ASSERT_INT_EQ(strlen(kyc), 36);
  ASSERT_STR_EQ(tok(kyc, "workflow"), "WF-KYC-001");
  ASSERT_STR_EQ(tok(kyc, "return_uow_id"), app);
  ASSERT_STR_EQ(status_of(kyc), "FINALIZED");
  ASSERT_STR_EQ(hist(kyc, NULL, "event"),
                "GATEWAY_START CHECKOUT SUBMIT CHECKOUT SUBMIT GUARDIAN "
                "CHECKOUT FINALIZE");
  ASSERT_STR_EQ(hist(kyc, "CHECKOUT", "role"),
                "verify-identity screen-sanctions kyc-complete");
  /* the child started from the parent's current attributes */
  ASSERT_STR_EQ(tok(kyc, "attributes.applicant_name"), "JANE ROE");
  /* the parent: through the gateway and on to its own end */
  ASSERT_STR_EQ(status_of(app), "FINALIZED");
  ASSERT_STR_EQ(tok(app, "workflow"), "WF-ONBOARD-001");
  ASSERT_STR_EQ(hist(app, "CHECKOUT", "role"),
                "collect kyc activate onboarded");
  ASSERT_STR_EQ(hist(app, NULL, "event"),
                "GENESIS CHECKOUT SUBMIT CHECKOUT RETURN CHECKOUT SUBMIT "
                "GUARDIAN CHECKOUT FINALIZE");
  ASSERT_STR_EQ(hist(app, "SUBMIT", "decision"), "collected activated");
  ASSERT_STR_EQ(hist(app, "RETURN", "decision"), "kyc_passed");
  /* the child's results, merged into the parent, naming the child */
  snprintf(why, sizeof why, "returned from child workflow token %s", kyc);
  ASSERT_STR_EQ(attr_row(app, "identity_verified", 1),
                concat("true | system | ", why));
  ASSERT_STR_EQ(attr_row(app, "sanctions_hit", 1),
                concat("false | system | ", why));
  ASSERT_STR_EQ(attr_row(app, "account_status", 1),
                "\"ACTIVE\" | system | KYC passed");
  ASSERT_STR_EQ(attr_row(app, "applicant_name", 0),
                "\"JANE ROE\" | system | name normalized for screening");

  /* a sanctions hit: the child waits for the compliance officer while
  ** the parent waits for the child */
  ASSERT_RC(genesis(NULL,
                    "{\"applicant_name\": \"j. doe\", \"id_document\": "
                    "\"CD7654321\"}",
                    NULL, app),
            CHM_OK);
  ASSERT_STR_EQ(run(), "{\"steps\":4,\"moves\":4,\"failed\":0,\"commits\":4}");
  snprintf(kyc, sizeof kyc, "%s", child_of(app));
  ASSERT_STR_EQ(status_of(app), "ACTIVE");
  ASSERT_STR_EQ(tok(app, "lease.holder"), "system");
  ASSERT_STR_EQ(tok(app, "lease.expires_at"), "null");
  ASSERT_STR_EQ(status_of(kyc), "PENDING");
  ASSERT_STR_EQ(place_of(kyc), "flagged");
  /* a waiting gateway token is never swept, however long it waits */
  chm_clock_advance(30 * DAY_MS);
  ASSERT_RC(chm_sweep(inst, &out), CHM_OK);
  ASSERT_STR_EQ(jraw(out, "zombies"), "0");
  ASSERT_STR_EQ(jraw(out, "stale"), "0");
  chm_free(out);
  ASSERT_STR_EQ(status_of(app), "ACTIVE");
  ASSERT_RC(checkout("compliance", "compliance-officer", got, &v, NULL),
            CHM_OK);
  ASSERT_STR_EQ(got, kyc);
  ASSERT_RC(submit(kyc, "compliance", v,
                   "{\"set\": {\"sanctions_cleared\": true}, \"reasoning\": "
                   "\"different date of birth: a namesake\"}"),
            CHM_OK);
  ASSERT_STR_EQ(status_of(kyc), "COMPLETED");
  ASSERT_STR_EQ(run(), "{\"steps\":3,\"moves\":3,\"failed\":0,\"commits\":3}");
  ASSERT_STR_EQ(status_of(kyc), "FINALIZED");
  ASSERT_STR_EQ(status_of(app), "FINALIZED");
  snprintf(why, sizeof why, "returned from child workflow token %s", kyc);
  ASSERT_STR_EQ(attr_row(app, "sanctions_hit", 1),
                concat("true | system | ", why));
  ASSERT_STR_EQ(attr_row(app, "sanctions_cleared", 1),
                concat("true | system | ", why));
  ASSERT_STR_EQ(attr_row(kyc, "sanctions_cleared", 1),
                "true | compliance | different date of birth: a namesake");
  ASSERT_STR_EQ(hist(kyc, "CHECKOUT", "role"),
                "verify-identity screen-sanctions compliance-officer "
                "kyc-complete");
  ASSERT_TRUE(verified());
}

/* A KYC that fails: the child's physician gives up, which fails the
** parent to its own Ate; the onboarding desk corrects the application and
** sends it through the gateway again, which starts a second child. */
TEST(gateway_retry) {
  char app[37], first[37], second[37], got[37], *json = NULL;
  long long v;
  fresh("WF-ONBOARD-001", "wf_child_kyc.lua", "wf_gateway.lua", NULL);
  ASSERT_RC(genesis(NULL,
                    "{\"applicant_name\": \"Ann Lee\", \"id_document\": "
                    "\"12-34\"}",
                    NULL, app),
            CHM_OK);
  /* collect, gateway start, verify-identity (fails: ID_INVALID) */
  ASSERT_STR_EQ(run(), "{\"steps\":3,\"moves\":2,\"failed\":1,\"commits\":3}");
  snprintf(first, sizeof first, "%s", child_of(app));
  ASSERT_STR_EQ(status_of(first), "FAILED");
  ASSERT_STR_EQ(place_of(first), "ate");
  ASSERT_STR_EQ(tok(first, "workflow"), "WF-KYC-001");
  ASSERT_CONTAINS(tok(first, "failure_reason"), "ID_INVALID");
  ASSERT_STR_EQ(status_of(app), "ACTIVE");
  /* the onboarding desk cannot touch the child: it is another workflow's */
  ASSERT_RC(checkout("onboarding-desk", "onboarding-physician", got, &v, NULL),
            CHM_NOTFOUND);
  ASSERT_RC(checkout("compliance", "kyc-physician", got, &v, NULL), CHM_OK);
  ASSERT_STR_EQ(got, first);
  ASSERT_RC(submit(first, "compliance", v,
                   "{\"give_up\": true, \"reasoning\": \"document number "
                   "unreadable\"}"),
            CHM_OK);
  ASSERT_STR_EQ(status_of(first), "ARCHIVED");
  ASSERT_STR_EQ(status_of(app), "FAILED");
  ASSERT_STR_EQ(place_of(app), "ate");
  ASSERT_CONTAINS(tok(app, "failure_reason"), first);
  ASSERT_CONTAINS(tok(app, "failure_reason"), "archived");
  /* the desk corrects the document and retries through the gateway */
  chm_clock_advance(60000);
  ASSERT_RC(checkout("onboarding-desk", "onboarding-physician", got, &v, &json),
            CHM_OK);
  ASSERT_STR_EQ(got, app);
  ASSERT_STR_EQ(jstr(json, "attributes.id_document"), "12-34");
  chm_free(json);
  ASSERT_RC(submit(app, "onboarding-desk", v,
                   "{\"set\": {\"id_document\": \"GB1234567\"}, "
                   "\"reasoning\": \"passport number from the scan\"}"),
            CHM_OK);
  ASSERT_STR_EQ(status_of(app), "PENDING");
  ASSERT_STR_EQ(place_of(app), "collected");
  /* gateway start, the child's three roles, activate, onboarded */
  ASSERT_STR_EQ(run(), "{\"steps\":6,\"moves\":6,\"failed\":0,\"commits\":6}");
  snprintf(second, sizeof second, "%s", child_of(app));
  ASSERT_TRUE(strcmp(first, second) != 0);
  ASSERT_STR_EQ(tok(second, "attributes.id_document"), "GB1234567");
  ASSERT_STR_EQ(status_of(second), "FINALIZED");
  ASSERT_STR_EQ(status_of(app), "FINALIZED");
  ASSERT_STR_EQ(hist(app, "CHECKOUT", "role"),
                "collect kyc onboarding-physician kyc activate onboarded");
  ASSERT_STR_EQ(
      attr_row(app, "identity_verified", 1),
      concat("true | system | returned from child workflow token ", second));
  ASSERT_STR_EQ(query("[0].n",
                      "SELECT count(*) AS n FROM UnitsOfWork WHERE "
                      "return_uow_id = '%s'",
                      app),
                "2");
  ASSERT_TRUE(verified());
}

/* The same journeys with the run loop committing in batches: the gateway
** start, the child's run, the return and the parent's end may share one
** transaction; the outcome is the one of test gateway_kyc and fin_*. */
TEST(batched_run) {
  char app[37], kyc[37], *out = NULL;
  chm_run_opts batch = {50, 0};
  fresh("WF-ONBOARD-001", "wf_child_kyc.lua", "wf_gateway.lua", NULL);
  ASSERT_RC(genesis(NULL,
                    "{\"applicant_name\": \"Jane Roe\", \"id_document\": "
                    "\"AB1234567\"}",
                    NULL, app),
            CHM_OK);
  ASSERT_RC(chm_run(inst, &batch, &out), CHM_OK);
  ASSERT_STR_EQ(out, "{\"steps\":7,\"moves\":7,\"failed\":0,\"commits\":1}");
  chm_free(out);
  snprintf(kyc, sizeof kyc, "%s", child_of(app));
  ASSERT_STR_EQ(status_of(kyc), "FINALIZED");
  ASSERT_STR_EQ(status_of(app), "FINALIZED");
  ASSERT_STR_EQ(
      attr_row(app, "identity_verified", 1),
      concat("true | system | returned from child workflow token ", kyc));
  ASSERT_TRUE(verified());
  chm_instance_close(inst);
  chm_meta_close(meta);
  fresh("WF-FIN-001", "wf_fin_001.lua", NULL);
  ASSERT_RC(genesis(NULL, INVOICE("1000.00", "1000"), "ap-specialist", app),
            CHM_OK);
  ASSERT_RC(genesis(NULL, INVOICE("1300.00", "1000"), "ap-specialist", kyc),
            CHM_OK);
  ASSERT_RC(chm_run(inst, &batch, &out), CHM_OK);
  ASSERT_STR_EQ(out, "{\"steps\":8,\"moves\":8,\"failed\":0,\"commits\":1}");
  chm_free(out);
  ASSERT_STR_EQ(status_of(app), "FINALIZED");
  ASSERT_STR_EQ(place_of(kyc), "manager_review");
  ASSERT_TRUE(verified());
}

/* ===================================================================== */
/* 5. The ambiguity lock (tests/fixtures/scenarios/sc_lock.lua)           */
/* ===================================================================== */

TEST(ambiguity_lock) {
  char id[37], got[37], *json = NULL;
  long long v;
  int i;
  fresh("SC-LOCK", "sc_lock.lua", NULL);
  ASSERT_RC(
      genesis(NULL, "{\"question\": \"Which cost centre pays?\"}", NULL, id),
      CHM_OK);
  ASSERT_STR_EQ(tok(id, "max_interactions"), "3");
  /* three checkouts, each sent back unanswered */
  for (i = 1; i <= 3; i++) {
    ASSERT_RC(checkout("analyst-1", "analyst", got, &v, NULL), CHM_OK);
    ASSERT_STR_EQ(got, id);
    ASSERT_INT_EQ(tok_int(id, "checkout_count"), i);
    ASSERT_RC(submit(id, "analyst-1", v, NULL), CHM_OK);
    ASSERT_STR_EQ(status_of(id), "PENDING");
    ASSERT_STR_EQ(place_of(id), "questions");
  }
  /* the fourth finds the bound reached: ZOMBIED_SOFT, and no work */
  ASSERT_RC(checkout("analyst-1", "analyst", got, &v, NULL), CHM_NOTFOUND);
  ASSERT_STR_EQ(status_of(id), "ZOMBIED_SOFT");
  ASSERT_CONTAINS(tok(id, "failure_reason"), "ambiguity lock");
  ASSERT_CONTAINS(tok(id, "failure_reason"), "(max_interactions 3)");
  ASSERT_INT_EQ(tok_int(id, "checkout_count"), 3);
  ASSERT_STR_EQ(hist(id, "ZOMBIE", "to_status"), "ZOMBIED_SOFT");
  ASSERT_STR_EQ(run(), "{\"steps\":0,\"moves\":0,\"failed\":0,\"commits\":0}");
  ASSERT_RC(checkout("analyst-1", "analyst", got, &v, NULL), CHM_NOTFOUND);
  /* an operator clarifies: PENDING again with the text and a fresh count */
  ASSERT_RC(chm_clarify(inst, id, "lead", "Marketing pays: MK-200"), CHM_OK);
  ASSERT_STR_EQ(status_of(id), "PENDING");
  ASSERT_STR_EQ(place_of(id), "questions");
  ASSERT_INT_EQ(tok_int(id, "checkout_count"), 0);
  ASSERT_STR_EQ(attr_row(id, "clarification", 1),
                "\"Marketing pays: MK-200\" | lead | clarification by 'lead'");
  ASSERT_STR_EQ(hist(id, "CLARIFY", "to_status"), "PENDING");
  ASSERT_RC(chm_clarify(inst, id, "lead", "again"), CHM_STATE);
  /* the analyst sees the clarification and answers */
  ASSERT_RC(checkout("analyst-1", "analyst", got, &v, &json), CHM_OK);
  ASSERT_STR_EQ(jstr(json, "attributes.clarification"),
                "Marketing pays: MK-200");
  chm_free(json);
  ASSERT_INT_EQ(tok_int(id, "checkout_count"), 1);
  ASSERT_RC(submit(id, "analyst-1", v,
                   "{\"set\": {\"answer\": \"MK-200\"}, \"reasoning\": "
                   "\"as clarified\"}"),
            CHM_OK);
  ASSERT_STR_EQ(status_of(id), "COMPLETED");
  ASSERT_STR_EQ(run(), "{\"steps\":1,\"moves\":1,\"failed\":0,\"commits\":1}");
  ASSERT_STR_EQ(status_of(id), "FINALIZED");
  ASSERT_TRUE(verified());
}

/* ===================================================================== */
/* 6. Steps that fail (tests/fixtures/scenarios/sc_faulty.lua)            */
/* ===================================================================== */

TEST(step_failures) {
  static const char *const modes[] = {"error", "plain", "budget", "memory",
                                      "plain"};
  char ids[5][37], attrs[128], got[37];
  long long v;
  int i;
  fresh("SC-FAULTY", "sc_faulty.lua", NULL);
  for (i = 0; i < 5; i++) {
    snprintf(attrs, sizeof attrs, "{\"mode\": \"%s\", \"n\": %d}", modes[i],
             i + 1);
    ASSERT_RC(genesis(NULL, attrs, NULL, ids[i]), CHM_OK);
  }
  /* five computations (three fail), two deliveries */
  ASSERT_STR_EQ(run(), "{\"steps\":7,\"moves\":4,\"failed\":3,\"commits\":7}");
  ASSERT_STR_EQ(status_of(ids[1]), "FINALIZED");
  ASSERT_STR_EQ(attr_row(ids[1], "square", 1), "4 | system | n squared");
  ASSERT_STR_EQ(status_of(ids[4]), "FINALIZED");
  ASSERT_STR_EQ(attr_row(ids[4], "square", 1), "25 | system | n squared");
  /* the steps' playbook: the first good step taught last_n = 2, the
  ** failing ones in between taught nothing, the next one read it */
  ASSERT_STR_EQ(attr_row(ids[1], "previous_n", 0), "(none)");
  ASSERT_STR_EQ(attr_row(ids[4], "previous_n", 1), "2 | system | n squared");
  ASSERT_STR_EQ(attr_row(ids[4], "last_n", 0), "(none)");
  ASSERT_STR_EQ(query("[0].v",
                      "SELECT a.name || ' ' || m.value AS v FROM "
                      "Local_Role_Attributes m JOIN Local_Actors a USING "
                      "(actor_id) WHERE m.key = 'last_n'"),
                "system 5");
  for (i = 0; i < 5; i += (i == 0 ? 2 : 1)) {
    if (i == 4)
      break;
    ASSERT_STR_EQ(status_of(ids[i]), "FAILED");
    ASSERT_STR_EQ(place_of(ids[i]), "ate");
    ASSERT_STR_EQ(hist(ids[i], NULL, "event"), "GENESIS CHECKOUT STEP_ERROR");
    ASSERT_STR_EQ(hist(ids[i], "STEP_ERROR", "to_status"), "FAILED");
    ASSERT_STR_EQ(attr_row(ids[i], "square", 0), "(none)");
    ASSERT_INT_EQ(nversions(ids[i]), 2); /* mode and n, nothing else */
  }
  ASSERT_CONTAINS(tok(ids[0], "failure_reason"),
                  "step of role 'compute' failed (SCRIPT)");
  ASSERT_CONTAINS(tok(ids[0], "failure_reason"), "cannot compute job 1");
  ASSERT_CONTAINS(hist(ids[0], "STEP_ERROR", "details"),
                  "cannot compute job 1");
  ASSERT_CONTAINS(tok(ids[2], "failure_reason"),
                  "step of role 'compute' failed (BUDGET)");
  ASSERT_CONTAINS(tok(ids[3], "failure_reason"),
                  "step of role 'compute' failed (MEMORY)");
  /* the engine is still whole: the operator repairs one, the run ends it */
  ASSERT_RC(checkout("ops", "operator", got, &v, NULL), CHM_OK);
  ASSERT_STR_EQ(got, ids[0]);
  ASSERT_RC(submit(ids[0], "ops", v,
                   "{\"set\": {\"mode\": \"plain\"}, \"reasoning\": "
                   "\"rerun without the fault\"}"),
            CHM_OK);
  ASSERT_STR_EQ(place_of(ids[0]), "jobs");
  ASSERT_STR_EQ(run(), "{\"steps\":2,\"moves\":2,\"failed\":0,\"commits\":2}");
  ASSERT_STR_EQ(status_of(ids[0]), "FINALIZED");
  ASSERT_STR_EQ(attr_row(ids[0], "square", 1), "1 | system | n squared");
  ASSERT_STR_EQ(attr_row(ids[0], "previous_n", 1), "5 | system | n squared");
  ASSERT_TRUE(verified());
}

/* ===================================================================== */
/* 7. Memory: playbooks, blueprints, toxicity, decay (WF-FIN-001)         */
/* ===================================================================== */

/* memory_of(actor, key) -> "value" of the actor's playbook row for key
** on FA-M-001 (actor NULL: the blueprint row), "(none)" when absent. */
static const char *memory_of(const char *actor, const char *key) {
  const char *v =
      query("[0].value",
            "SELECT m.value AS value FROM Local_Role_Attributes m "
            "JOIN Local_Roles r USING (role_id) "
            "LEFT JOIN Local_Actors a ON a.actor_id = m.actor_id "
            "WHERE r.name = 'FA-M-001' AND m.key = '%s' AND %s",
            key, actor ? "a.name = 'finance-manager'" : "m.actor_id IS NULL");
  return strcmp(v, "(missing)") == 0 ? "(none)" : v;
}

static const char *memory_id(const char *key) {
  return query("[0].id",
               "SELECT memory_id AS id FROM Local_Role_Attributes "
               "WHERE key = '%s' AND actor_id IS NOT NULL",
               key);
}

TEST(memory_playbook) {
  char ids[3][37], got[37], mid[37], *json = NULL;
  long long v;
  int i, removed = -1;
  fresh("WF-FIN-001", "wf_fin_001.lua", NULL);
  for (i = 0; i < 3; i++)
    ASSERT_RC(
        genesis(NULL, INVOICE("1300.00", "1000"), "ap-specialist", ids[i]),
        CHM_OK);
  ASSERT_STR_EQ(run(), "{\"steps\":9,\"moves\":9,\"failed\":0,\"commits\":9}");
  /* the role's Global Blueprint */
  ASSERT_RC(chm_memory_set(inst, "FA-M-001", NULL, "tolerance", "0.1"), CHM_OK);
  ASSERT_RC(chm_memory_set(inst, "FA-M-001", NULL, "escalate_to", "\"CFO\""),
            CHM_OK);
  ASSERT_RC(checkout("finance-manager", "FA-M-001", got, &v, &json), CHM_OK);
  ASSERT_STR_EQ(got, ids[0]);
  ASSERT_STR_EQ(jraw(json, "memory"),
                "{\"escalate_to\":\"CFO\",\"tolerance\":0.1}");
  chm_free(json);
  /* the manager teaches: the playbook, never the token */
  ASSERT_RC(submit(ids[0], "finance-manager", v,
                   "{\"set\": {\"manager_decision\": \"approve\"}, "
                   "\"teach\": {\"tolerance\": 0.3, \"acme_rule\": \"ACME-7 "
                   "may invoice 30% over PO\"}, \"reasoning\": \"known "
                   "vendor\"}"),
            CHM_OK);
  ASSERT_STR_EQ(memory_of("finance-manager", "tolerance"), "0.3");
  ASSERT_STR_EQ(memory_of("finance-manager", "acme_rule"),
                "\"ACME-7 may invoice 30% over PO\"");
  ASSERT_STR_EQ(memory_of(NULL, "tolerance"), "0.1"); /* blueprint intact */
  ASSERT_STR_EQ(memory_of(NULL, "acme_rule"), "(none)");
  ASSERT_STR_EQ(attr_row(ids[0], "acme_rule", 0), "(none)");
  ASSERT_STR_EQ(attr_row(ids[0], "tolerance", 0), "(none)");
  ASSERT_STR_EQ(tok(ids[0], "attributes.tolerance"), "(missing)");
  ASSERT_STR_EQ(hist(ids[0], "TEACH", "actor"), "finance-manager");
  /* the next checkout by the same actor: blueprint + playbook, the
  ** personal value winning */
  chm_clock_advance(DAY_MS);
  ASSERT_RC(checkout("finance-manager", "FA-M-001", got, &v, &json), CHM_OK);
  ASSERT_STR_EQ(got, ids[1]);
  ASSERT_STR_EQ(jraw(json, "memory"),
                "{\"acme_rule\":\"ACME-7 may invoice 30% over PO\","
                "\"escalate_to\":\"CFO\",\"tolerance\":0.3}");
  chm_free(json);
  ASSERT_RC(submit(ids[1], "finance-manager", v,
                   "{\"set\": {\"manager_decision\": \"approve\"}}"),
            CHM_OK);
  /* a toxic rule is never handed out again */
  snprintf(mid, sizeof mid, "%s", memory_id("acme_rule"));
  ASSERT_INT_EQ(strlen(mid), 36);
  ASSERT_RC(chm_memory_mark_toxic(inst, mid), CHM_OK);
  chm_clock_advance(DAY_MS);
  ASSERT_RC(checkout("finance-manager", "FA-M-001", got, &v, &json), CHM_OK);
  ASSERT_STR_EQ(got, ids[2]);
  ASSERT_STR_EQ(jraw(json, "memory"),
                "{\"escalate_to\":\"CFO\",\"tolerance\":0.3}");
  chm_free(json);
  /* a toxic personal value gives way to the blueprint's */
  snprintf(mid, sizeof mid, "%s", memory_id("tolerance"));
  ASSERT_RC(chm_memory_mark_toxic(inst, mid), CHM_OK);
  ASSERT_RC(submit(ids[2], "finance-manager", v,
                   "{\"set\": {\"manager_decision\": \"approve\"}}"),
            CHM_OK);
  ASSERT_RC(genesis(NULL, INVOICE("1300.00", "1000"), "ap-specialist", got),
            CHM_OK);
  /* three approved invoices booked and closed, a fourth to the manager */
  ASSERT_STR_EQ(run(),
                "{\"steps\":12,\"moves\":12,\"failed\":0,\"commits\":12}");
  for (i = 0; i < 3; i++)
    ASSERT_STR_EQ(status_of(ids[i]), "FINALIZED");
  ASSERT_RC(checkout("finance-manager", "FA-M-001", got, &v, &json), CHM_OK);
  ASSERT_STR_EQ(jraw(json, "memory"),
                "{\"escalate_to\":\"CFO\",\"tolerance\":0.1}");
  chm_free(json);
  /* decay: the toxic rule, unread since day 1, goes after 5 idle days;
  ** the rows read on day 2 stay (the toxic tolerance too: it was handed
  ** out on day 2, before it was marked) */
  chm_clock_advance(DAY_MS * 4 + DAY_MS / 2);
  ASSERT_RC(chm_memory_decay(inst, 5, &removed), CHM_OK);
  ASSERT_INT_EQ(removed, 1);
  ASSERT_STR_EQ(memory_of("finance-manager", "acme_rule"), "(none)");
  ASSERT_STR_EQ(memory_of("finance-manager", "tolerance"), "0.3");
  ASSERT_STR_EQ(memory_of(NULL, "tolerance"), "0.1");
  ASSERT_STR_EQ(memory_of(NULL, "escalate_to"), "\"CFO\"");
  chm_clock_advance(DAY_MS * 10);
  ASSERT_RC(chm_memory_decay(inst, 5, &removed), CHM_OK);
  ASSERT_INT_EQ(removed, 3);
  ASSERT_STR_EQ(
      query("[0].n", "SELECT count(*) AS n FROM Local_Role_Attributes"), "0");
  ASSERT_RC(submit(got, "finance-manager", v,
                   "{\"set\": {\"manager_decision\": \"approve\"}}"),
            CHM_STATE); /* its lease ran out long ago */
  ASSERT_TRUE(verified());
}

/* ===================================================================== */
/* WF-CLAIMS-001: the guardian tour, end to end                           */
/* ===================================================================== */

/* A claim submitted `age` ms before T0. */
static const char *claim(const char *fields, long long age) {
  char *out = jbuf();
  snprintf(out, 8192, "{%s, \"submitted_at\": %lld}", fields, T0 - age);
  return out;
}

/* rejection(id, field) -> a field of the token's first rejection record. */
static const char *rejection(const char *id, const char *field) {
  char path[64];
  snprintf(path, sizeof path, "rejections[0].%s", field);
  return tok(id, path);
}

TEST(claims_triage) {
  char eu[37], us[37], apac[37], old[37], got[37];
  long long v;
  fresh("WF-CLAIMS-001", "wf_claims_triage.lua", NULL);
  ASSERT_RC(genesis(NULL,
                    claim("\"amount\": 500, \"currency\": \"EUR\", \"region\": "
                          "\"EU\", \"policy_active\": true",
                          DAY_MS),
                    "system", eu),
            CHM_OK);
  ASSERT_RC(genesis(NULL,
                    claim("\"amount\": 20000, \"currency\": \"USD\", "
                          "\"region\": \"US\", \"policy_state\": \"NY\"",
                          DAY_MS),
                    "system", us),
            CHM_OK);
  ASSERT_RC(genesis(NULL,
                    claim("\"amount\": 700, \"currency\": \"USD\", \"region\": "
                          "\"APAC\", \"policy_active\": true",
                          DAY_MS),
                    "system", apac),
            CHM_OK);
  ASSERT_RC(genesis(NULL,
                    claim("\"amount\": 300, \"currency\": \"EUR\", \"region\": "
                          "\"EU\", \"policy_active\": true",
                          8 * DAY_MS),
                    "system", old),
            CHM_OK);
  /* triage (a step, run as system): the stale claim fails its TTL_CHECK */
  ASSERT_STR_EQ(run(), "{\"steps\":3,\"moves\":3,\"failed\":0,\"commits\":3}");
  ASSERT_STR_EQ(status_of(old), "FAILED");
  ASSERT_STR_EQ(place_of(old), "ate");
  ASSERT_STR_EQ(rejection(old, "guardian"), "fresh-claim");
  ASSERT_STR_EQ(rejection(old, "type"), "TTL_CHECK");
  ASSERT_STR_EQ(rejection(old, "reason"),
                "attribute 'submitted_at' is 691200 s old; at most 604800 s "
                "allowed");
  ASSERT_STR_EQ(hist(old, NULL, "event"), "GENESIS GUARDIAN REJECT");
  ASSERT_STR_EQ(hist(old, "GUARDIAN", "decision"), "REJECT");
  ASSERT_STR_EQ(tok(old, "attributes.risk"), "(missing)");
  /* the others were scored; the large one got the injector's context */
  ASSERT_STR_EQ(tok(eu, "attributes.risk"), "normal");
  ASSERT_STR_EQ(tok(us, "attributes.risk"), "high");
  ASSERT_STR_EQ(hist(us, "INJECT", "decision"), "model instructions");
  ASSERT_STR_EQ(tok(us, "context.model"), "claims-large-v2");
  ASSERT_STR_EQ(hist(eu, "INJECT", "decision"), "");
  ASSERT_STR_EQ(place_of(eu), "assessed");
  /* route-claim: the DIRECTIONAL_FILTER decides, logged as its own
  ** GUARDIAN row before the SUBMIT row */
  ASSERT_RC(checkout("router", "route-claim", got, &v, NULL), CHM_OK);
  ASSERT_STR_EQ(got, eu);
  ASSERT_RC(submit(eu, "router", v, NULL), CHM_OK);
  ASSERT_STR_EQ(place_of(eu), "eu_claims");
  ASSERT_STR_EQ(status_of(eu), "PENDING");
  ASSERT_STR_EQ(hist(eu, NULL, "event"),
                "GENESIS GUARDIAN GUARDIAN GUARDIAN CHECKOUT SUBMIT CHECKOUT "
                "GUARDIAN SUBMIT");
  ASSERT_STR_EQ(hist(eu, "GUARDIAN", "guardian"),
                "fresh-claim positive-amount large-claim-context by-region");
  ASSERT_STR_EQ(hist(eu, "GUARDIAN", "decision"), "PASS PASS PASS eu_claims");
  ASSERT_STR_EQ(hist(eu, "GUARDIAN", "details.type"),
                "TTL_CHECK CRITERIA_GATE CONDITIONAL_INJECTOR "
                "DIRECTIONAL_FILTER");
  ASSERT_CONTAINS(hist(eu, "GUARDIAN", "details.reason"),
                  "directional filter 'by-region': region = \"EU\" chose "
                  "'eu_claims'");
  ASSERT_STR_EQ(hist(eu, "GUARDIAN", "role"),
                "triage triage triage route-claim");
  ASSERT_RC(checkout("router", "route-claim", got, &v, NULL), CHM_OK);
  ASSERT_STR_EQ(got, us);
  ASSERT_RC(submit(us, "router", v, NULL), CHM_OK);
  ASSERT_STR_EQ(place_of(us), "us_claims");
  ASSERT_STR_EQ(hist(us, "GUARDIAN", "decision"),
                "PASS PASS PASS us_claims");
  ASSERT_RC(checkout("router", "route-claim", got, &v, NULL), CHM_OK);
  ASSERT_STR_EQ(got, apac);
  ASSERT_RC(submit(apac, "router", v, NULL), CHM_OK);
  ASSERT_STR_EQ(place_of(apac), "eu_claims"); /* the filter's default */
  ASSERT_CONTAINS(hist(apac, "GUARDIAN", "details.reason"),
                  "region = \"APAC\" has no route; default chose "
                  "'eu_claims'");
  /* eu-adjuster: COMPOSITE (currency IN, and a LUA check) passes the EU
  ** claim and rejects the USD one on its IN */
  ASSERT_RC(checkout("us-team", "eu-adjuster", got, &v, NULL), CHM_DENIED);
  ASSERT_RC(checkout("eu-team", "eu-adjuster", got, &v, NULL), CHM_OK);
  ASSERT_STR_EQ(got, eu);
  ASSERT_RC(submit(eu, "eu-team", v, NULL), CHM_OK);
  ASSERT_STR_EQ(status_of(eu), "COMPLETED");
  ASSERT_STR_EQ(place_of(eu), "settled");
  ASSERT_RC(checkout("eu-team", "eu-adjuster", got, &v, NULL), CHM_NOTFOUND);
  ASSERT_STR_EQ(status_of(apac), "FAILED");
  ASSERT_STR_EQ(place_of(apac), "ate");
  ASSERT_STR_EQ(rejection(apac, "guardian"), "eu-eligible");
  ASSERT_STR_EQ(rejection(apac, "type"), "COMPOSITE");
  ASSERT_CONTAINS(rejection(apac, "reason"), "currency");
  ASSERT_CONTAINS(rejection(apac, "reason"), "USD");
  ASSERT_STR_EQ(hist(apac, "GUARDIAN", "decision"),
                "PASS PASS PASS eu_claims REJECT");
  ASSERT_STR_EQ(hist(apac, NULL, "event"),
                "GENESIS GUARDIAN GUARDIAN GUARDIAN CHECKOUT SUBMIT CHECKOUT "
                "GUARDIAN SUBMIT GUARDIAN REJECT");
  /* us-adjuster: its expression gate, then the explicit component */
  ASSERT_RC(checkout("us-team", "us-adjuster", got, &v, NULL), CHM_OK);
  ASSERT_STR_EQ(got, us);
  ASSERT_RC(submit(us, "us-team", v, NULL), CHM_OK);
  ASSERT_STR_EQ(status_of(us), "COMPLETED");
  ASSERT_STR_EQ(place_of(us), "settled");
  /* Epsilon with a LUA guardian takes the FAILED claims back to the room:
  ** REMEDIATED */
  ASSERT_RC(checkout("claims-lead", "claims-physician", got, &v, NULL), CHM_OK);
  ASSERT_STR_EQ(got, old);
  ASSERT_STR_EQ(hist(old, "GUARDIAN", "guardian"), "fresh-claim failed-only");
  {
    char changes[128];
    snprintf(changes, sizeof changes,
             "{\"set\": {\"submitted_at\": %lld}, \"reasoning\": \"resent\"}",
             T0);
    ASSERT_RC(submit(old, "claims-lead", v, changes), CHM_OK);
  }
  ASSERT_STR_EQ(status_of(old), "REMEDIATED");
  ASSERT_STR_EQ(place_of(old), "settled");
  ASSERT_RC(checkout("claims-lead", "claims-physician", got, &v, NULL), CHM_OK);
  ASSERT_STR_EQ(got, apac);
  ASSERT_RC(submit(apac, "claims-lead", v, "{\"give_up\": true}"), CHM_OK);
  ASSERT_STR_EQ(status_of(apac), "ARCHIVED");
  /* Omega: Cerberus and the explicit amount-cap guardian, then FINALIZED */
  ASSERT_RC(checkout("claims-lead", "settle", got, &v, NULL), CHM_OK);
  ASSERT_STR_EQ(got, eu);
  ASSERT_STR_EQ(hist(eu, "GUARDIAN", "guardian"),
                "fresh-claim positive-amount large-claim-context by-region "
                "eu-eligible settlement-join amount-cap");
  ASSERT_RC(submit(eu, "claims-lead", v, NULL), CHM_OK);
  ASSERT_STR_EQ(status_of(eu), "FINALIZED");
  ASSERT_RC(checkout("claims-lead", "settle", got, &v, NULL), CHM_OK);
  ASSERT_STR_EQ(got, us);
  ASSERT_RC(submit(us, "claims-lead", v, NULL), CHM_OK);
  ASSERT_RC(checkout("claims-lead", "settle", got, &v, NULL), CHM_OK);
  ASSERT_STR_EQ(got, old);
  ASSERT_RC(submit(old, "claims-lead", v, NULL), CHM_OK);
  ASSERT_STR_EQ(status_of(us), "FINALIZED");
  ASSERT_STR_EQ(status_of(old), "FINALIZED");
  ASSERT_STR_EQ(query("[0].n", "SELECT count(*) AS n FROM Token_Rejections"),
                "2");
  ASSERT_TRUE(verified());
}

/* ===================================================================== */
/* WF-GOV-001: reviewer assignment, end to end                            */
/* ===================================================================== */

TEST(gov_reviewer_assignment) {
  char acked[37], nack[37], late[37], bogus[37], got[37], *report = NULL;
  long long v;
  fresh("WF-GOV-001", "wf_gov_001.lua", NULL);
  ASSERT_RC(genesis(NULL,
                    "{\"proposal_type\": \"new_workflow\", \"risk_score\": "
                    "0.8}",
                    "system", acked),
            CHM_OK);
  ASSERT_RC(genesis(NULL,
                    "{\"proposal_type\": \"new_skill\", \"risk_score\": 0.2}",
                    "system", nack),
            CHM_OK);
  ASSERT_RC(genesis(NULL, "{\"proposal_type\": \"update_param\"}", "system",
                    late),
            CHM_OK);
  ASSERT_RC(genesis(NULL, "{\"proposal_type\": \"bogus\"}", "system", bogus),
            CHM_OK);
  /* G-01 .. G-03 are steps; the bogus proposal fails at G-01 */
  ASSERT_STR_EQ(run(), "{\"steps\":10,\"moves\":9,\"failed\":1,"
                       "\"commits\":10}");
  ASSERT_STR_EQ(status_of(bogus), "FAILED");
  ASSERT_STR_EQ(place_of(bogus), "ate");
  ASSERT_STR_EQ(tok(bogus, "failure_reason"), "UNKNOWN_PROPOSAL_TYPE");
  ASSERT_STR_EQ(hist(acked, "CHECKOUT", "role"), "G-01 G-02 G-03");
  ASSERT_STR_EQ(place_of(acked), "awaiting_ack");
  ASSERT_STR_EQ(tok(acked, "attributes.required_domains"),
                "[\"Security\",\"Data\",\"Business\"]");
  ASSERT_STR_EQ(tok(acked, "attributes.reviewer_ids"),
                "[\"rev-sec-1\",\"rev-data-1\",\"rev-biz-1\",\"rev-ext-1\"]");
  ASSERT_STR_EQ(tok(nack, "attributes.reviewer_ids"),
                "[\"rev-sec-1\",\"rev-data-1\"]");
  ASSERT_STR_EQ(tok(acked, "attributes.notification.template"), "assign");
  /* G-04 (a human): ack -> G-05 records; no ack -> G-06 hands off */
  ASSERT_RC(checkout("reviewer", "G-04", got, &v, NULL), CHM_OK);
  ASSERT_STR_EQ(got, acked);
  ASSERT_RC(submit(acked, "reviewer", v, "{\"set\": {\"ack\": true}}"), CHM_OK);
  ASSERT_STR_EQ(place_of(acked), "acked");
  ASSERT_RC(checkout("reviewer", "G-04", got, &v, NULL), CHM_OK);
  ASSERT_STR_EQ(got, nack);
  ASSERT_RC(submit(nack, "reviewer", v, "{\"set\": {\"ack\": false}}"),
            CHM_OK);
  ASSERT_STR_EQ(place_of(nack), "timed_out");
  ASSERT_STR_EQ(run(), "{\"steps\":3,\"moves\":3,\"failed\":0,\"commits\":3}");
  ASSERT_STR_EQ(status_of(acked), "FINALIZED");
  ASSERT_STR_EQ(hist(acked, "CHECKOUT", "role"),
                "G-01 G-02 G-03 G-04 G-05 assigned");
  ASSERT_STR_EQ(tok(acked, "attributes.assignment_record.action"),
                "record_assignment");
  ASSERT_STR_EQ(place_of(nack), "qa_queue");
  ASSERT_STR_EQ(tok(nack, "attributes.handoff.reason"), "reviewer_timeout");
  ASSERT_STR_EQ(tok(nack, "attributes.handoff.owner"), "QA-M-001");
  /* the QA manager closes the handoff by hand */
  ASSERT_RC(checkout("qa-manager", "QA-M-001", got, &v, NULL), CHM_OK);
  ASSERT_STR_EQ(got, nack);
  ASSERT_RC(submit(nack, "qa-manager", v, NULL), CHM_OK);
  ASSERT_STR_EQ(place_of(nack), "closed");
  /* Epsilon repairs the bogus proposal and restarts it at G-01 */
  ASSERT_RC(checkout("qa-manager", "governance-physician", got, &v, NULL),
            CHM_OK);
  ASSERT_STR_EQ(got, bogus);
  ASSERT_RC(submit(bogus, "qa-manager", v,
                   "{\"set\": {\"proposal_type\": \"update_param\"}}"),
            CHM_OK);
  ASSERT_STR_EQ(status_of(bogus), "PENDING");
  ASSERT_STR_EQ(place_of(bogus), "proposals");
  ASSERT_STR_EQ(run(), "{\"steps\":4,\"moves\":4,\"failed\":0,\"commits\":4}");
  ASSERT_STR_EQ(status_of(nack), "FINALIZED");
  ASSERT_STR_EQ(place_of(bogus), "awaiting_ack");
  /* the SLA: nobody acknowledges within 8 h; the sweep sends it to
  ** Chronos, the Tau step to G-06 */
  chm_clock_advance(28801000LL);
  ASSERT_RC(chm_sweep(inst, &report), CHM_OK);
  ASSERT_INT_EQ(jint(report, "stale"), 2);
  chm_free(report);
  ASSERT_STR_EQ(status_of(late), "TIMEOUT");
  ASSERT_STR_EQ(place_of(late), "chronos");
  ASSERT_STR_EQ(run(), "{\"steps\":4,\"moves\":4,\"failed\":0,\"commits\":4}");
  ASSERT_STR_EQ(place_of(late), "qa_queue");
  ASSERT_STR_EQ(tok(late, "attributes.ack"), "false");
  ASSERT_STR_EQ(hist(late, "CHECKOUT", "role"),
                "G-01 G-02 G-03 sla-clock G-06");
  ASSERT_STR_EQ(tok(late, "attributes.handoff.reason"), "reviewer_timeout");
  ASSERT_TRUE(verified());
}

/* ===================================================================== */
/* HETEROGENEOUS decomposition through the engine                         */
/* ===================================================================== */

TEST(heterogeneous_children) {
  char path[600], base[37], kids[3][37], got[37], *json = NULL, *report = NULL;
  long long v, pv;
  FILE *f;
  snprintf(path, sizeof path, "%s/sc_hetero.lua", dir);
  f = fopen(path, "w");
  ASSERT_TRUE(f != NULL);
  fputs("return workflow \"SC-HETERO\" {\n"
        "  interactions = { \"in\", \"parts\", \"room\", \"ate\", "
        "\"chronos\" },\n"
        "  roles = {\n"
        "    alpha \"start\" { outbound = { \"in\" } },\n"
        "    beta \"split\" { strategy = \"HETEROGENEOUS\", inbound = { \"in\" "
        "},\n"
        "      outbound = { \"parts\", \"room\" },\n"
        "      routing = { branches = { { when = \"parent_id != null\", to = "
        "\"parts\" } }, default = \"room\" } },\n"
        "    beta \"part\" { inbound = { \"parts\" }, outbound = { \"room\" } "
        "},\n"
        "    omega \"join\" { inbound = { { \"room\", guard = cerberus "
        "\"all\" } } },\n"
        "    epsilon \"fix\" { inbound = { { \"ate\", guard = pass_thru "
        "\"any\" } }, outbound = { \"room\" } },\n"
        "    tau \"clock\" { inbound = { \"chronos\" }, outbound = { \"ate\" } "
        "},\n"
        "  },\n"
        "  actors = { actor \"ann\" { type = \"HUMAN\", roles = { \"start\", "
        "\"split\", \"part\", \"join\", \"fix\", \"clock\" } } },\n"
        "}\n",
        f);
  fclose(f);
  snprintf(path, sizeof path, "%s/meta%d.db", dir, ++nstore);
  ASSERT_TRUE(chm_meta_open(path, &meta) == CHM_OK);
  snprintf(path, sizeof path, "%s/sc_hetero.lua", dir);
  if (chm_meta_import(meta, path, &report) != CHM_OK)
    FAIL_AT("import: %s", chm_meta_errmsg(meta));
  chm_free(report);
  snprintf(path, sizeof path, "%s/inst%d.db", dir, nstore);
  if (chm_meta_instantiate(meta, "SC-HETERO", 0, path, NULL, &report) != CHM_OK)
    FAIL_AT("instantiate: %s", chm_meta_errmsg(meta));
  chm_free(report);
  ASSERT_TRUE(chm_instance_open(path, &inst) == CHM_OK);
  chm_clock_set_virtual(T0);
  ASSERT_RC(genesis(NULL, "{\"order\": \"SO-9\", \"total\": 30}", "ann", base),
            CHM_OK);
  ASSERT_RC(checkout("ann", "split", got, &v, NULL), CHM_OK);
  ASSERT_RC(submit(base, "ann", v,
                   "{\"set\": {\"total\": 31}, \"children\": [{\"sku\": "
                   "\"A\", \"qty\": 2}, {\"service\": \"install\"}, {}], "
                   "\"reasoning\": \"a part, a service, a bare line\"}"),
            CHM_OK);
  pv = tok_int(base, "version");
  ASSERT_INT_EQ(child_ids(base, kids, 3), 3);
  ASSERT_STR_EQ(place_of(base), "room");
  ASSERT_INT_EQ(tok_int(base, "child_count"), 3);
  /* each child: the parent's current values plus its own keys */
  ASSERT_RC(chm_token_get(inst, kids[0], &json), CHM_OK);
  ASSERT_STR_EQ(jraw(json, "attributes"),
                "{\"order\":\"SO-9\",\"qty\":2,\"sku\":\"A\",\"total\":31}");
  chm_free(json);
  ASSERT_RC(chm_token_get(inst, kids[1], &json), CHM_OK);
  ASSERT_STR_EQ(jraw(json, "attributes"),
                "{\"order\":\"SO-9\",\"service\":\"install\",\"total\":31}");
  chm_free(json);
  ASSERT_RC(chm_token_get(inst, kids[2], &json), CHM_OK);
  ASSERT_STR_EQ(jraw(json, "attributes"), "{\"order\":\"SO-9\",\"total\":31}");
  chm_free(json);
  /* lineage: an inherited value points at the parent's attribute version
  ** current at the split */
  ASSERT_STR_EQ(
      query("[0].ok",
            "SELECT c.lineage_attribute_id = p.attribute_id AS ok FROM "
            "UOW_Attributes c JOIN UOW_Attributes p ON p.uow_id = '%s' AND "
            "p.key = 'total' AND p.version = 2 WHERE c.uow_id = '%s' AND "
            "c.key = 'total'",
            base, kids[1]),
      "1");
  ASSERT_STR_EQ(query("[0].n",
                      "SELECT count(*) AS n FROM UOW_Attributes WHERE uow_id "
                      "IN ('%s', '%s', '%s') AND key IN ('order', 'total') "
                      "AND lineage_attribute_id IS NULL",
                      kids[0], kids[1], kids[2]),
                "0");
  ASSERT_STR_EQ(query("[0].n",
                      "SELECT count(*) AS n FROM UOW_Attributes WHERE uow_id "
                      "= '%s' AND key = 'sku' AND lineage_attribute_id IS "
                      "NULL",
                      kids[0]),
                "1");
  (void)pv;
  /* the children run and the join finalizes all four */
  for (int i = 0; i < 3; i++) {
    ASSERT_RC(checkout("ann", "part", got, &v, NULL), CHM_OK);
    ASSERT_RC(submit(got, "ann", v, NULL), CHM_OK);
  }
  ASSERT_RC(checkout("ann", "join", got, &v, NULL), CHM_OK);
  ASSERT_STR_EQ(got, base);
  ASSERT_RC(submit(base, "ann", v, NULL), CHM_OK);
  for (int i = 0; i < 3; i++)
    ASSERT_STR_EQ(status_of(kids[i]), "FINALIZED");
  ASSERT_TRUE(verified());
}

/* ===================================================================== */
/* Main                                                                   */
/* ===================================================================== */

#define TEST_LIST(X)                                                           \
  X(fin_match)                                                                 \
  X(fin_mismatch)                                                              \
  X(fanout_join)                                                               \
  X(fanout_stale_lines)                                                        \
  X(fanout_line_given_up)                                                      \
  X(fanout_line_without_price)                                                 \
  X(tau_timeouts)                                                              \
  X(lease_lapse)                                                               \
  X(gateway_kyc)                                                               \
  X(gateway_retry)                                                             \
  X(batched_run)                                                               \
  X(ambiguity_lock)                                                            \
  X(step_failures)                                                             \
  X(memory_playbook)                                                          \
  X(claims_triage)                                                             \
  X(gov_reviewer_assignment)                                                   \
  X(heterogeneous_children)

static const harness_test tests[] = {
#define TEST_ROW(name) {#name, test_##name},
    TEST_LIST(TEST_ROW)
#undef TEST_ROW
};

static void teardown(void) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    printf("could not remove %s\n", dir);
}

/* After each test: close what it opened, back to the real clock. */
static void after_each(void) {
  chm_instance_close(inst);
  inst = NULL;
  chm_meta_close(meta);
  meta = NULL;
  chm_clock_set_real();
}

int main(int argc, char **argv) {
  int failed;
  snprintf(dir, sizeof dir, "/tmp/chm_test_scenarios.XXXXXX");
  if (mkdtemp(dir) == NULL) {
    perror("mkdtemp");
    return 2;
  }
  failed = harness_run(tests, sizeof tests / sizeof tests[0], argc, argv,
                       after_each);
  teardown();
  return failed > 0;
}
