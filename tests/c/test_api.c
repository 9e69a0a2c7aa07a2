/*
** test_api.c — contracts of the public header (chameleon.h) that no other
** C test owns: the schema guide of both handles (chm_meta_guide,
** chm_instance_guide), the status codes documented for instantiate,
** describe, dot, memory_set and the token queries, the shape of the
** instantiate report, and the process-wide clock under concurrent
** threads. Uses tests/fixtures/engine/tk_basic.lua (or $CHM_FIXTURES).
** The last output line is "N passed, N failed"; exit status 1 on failure.
** Run one test with: test_api NAME.
*/
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chameleon.h"
#include "harness.h"

/* ===================================================================== */
/* Harness                                                                */
/* ===================================================================== */

static char dir[256];        /* temp directory of this run */
static char meta_path[300];  /* its meta-store */
static char inst_path[300];  /* the instance every test may open */
static chm_meta *meta;       /* open for the whole run */
static chm_instance *inst;   /* opened by a test, closed after it */
static char *out;            /* a test's JSON answer, freed after it */

#define TEST(name) static void test_##name(void)

/* A call's status, with both handles' messages when it is not `want`. */
#define ASSERT_RC(call, want)                                                  \
  do {                                                                         \
    int rc_ = (call);                                                          \
    if (rc_ != (want))                                                         \
      FAIL_AT("%s\n    returned %s, expected %s\n    meta: %s\n    inst: %s",  \
              #call, chm_errname(rc_), chm_errname(want),                      \
              chm_meta_errmsg(meta),                                           \
              inst ? chm_instance_errmsg(inst) : "-");                         \
  } while (0)

/* Number of occurrences of needle in hay. */
static int count(const char *hay, const char *needle) {
  int n = 0;
  size_t len = strlen(needle);
  for (const char *p = hay; p && (p = strstr(p, needle)) != NULL; p += len)
    n++;
  return n;
}

static void open_inst(void) {
  if (inst == NULL && chm_instance_open(inst_path, &inst) != CHM_OK) {
    printf("cannot open %s: %s\n", inst_path, chm_instance_errmsg(inst));
    exit(2);
  }
}

/* ===================================================================== */
/* The schema guide                                                       */
/* ===================================================================== */

TEST(meta_guide_all_and_one) {
  char *one = NULL;
  int all_rows, one_rows;
  ASSERT_RC(chm_meta_guide(meta, NULL, &out), CHM_OK);
  all_rows = count(out, "\"table_name\"");
  ASSERT_CONTAINS(out, "\"Template_Roles\"");
  ASSERT_CONTAINS(out, "\"Template_Workflows\"");
  /* one table, named in another case */
  ASSERT_RC(chm_meta_guide(meta, "template_ROLES", &one), CHM_OK);
  one_rows = count(one, "\"table_name\"");
  ASSERT_TRUE(one_rows > 5);
  ASSERT_INT_EQ(count(one, "\"Template_Roles\""), one_rows);
  ASSERT_CONTAINS(one, "\"description\"");
  chm_free(one);
  ASSERT_TRUE(all_rows > one_rows);
}

TEST(meta_guide_notfound_names_table_and_store) {
  char want[512], *rows = (char *)"untouched";
  ASSERT_RC(chm_meta_guide(meta, "No_Such_Table", &rows), CHM_NOTFOUND);
  ASSERT_TRUE(rows == NULL); /* set to NULL on failure */
  snprintf(want, sizeof want,
           "no table 'No_Such_Table' in the schema guide of '%s'", meta_path);
  ASSERT_STR_EQ(chm_meta_errmsg(meta), want);
  /* quotes are data, never SQL */
  ASSERT_RC(chm_meta_guide(meta, "x' OR '1'='1", &out), CHM_NOTFOUND);
  ASSERT_CONTAINS(chm_meta_errmsg(meta), "no table 'x' OR '1'='1'");
}

TEST(guide_misuse) {
  ASSERT_RC(chm_meta_guide(meta, NULL, NULL), CHM_MISUSE);
  ASSERT_RC(chm_meta_guide(NULL, NULL, &out), CHM_MISUSE);
  ASSERT_RC(chm_instance_guide(NULL, "Local_Roles", &out), CHM_MISUSE);
}

TEST(instance_guide) {
  open_inst();
  ASSERT_RC(chm_instance_guide(inst, "Local_Roles", &out), CHM_OK);
  ASSERT_CONTAINS(out, "\"Local_Roles\"");
  ASSERT_CONTAINS(out, "\"role_type\"");
  chm_free(out);
  out = NULL;
  /* a meta-store table is not in an instance store's guide */
  ASSERT_RC(chm_instance_guide(inst, "Template_Roles", &out), CHM_NOTFOUND);
  ASSERT_CONTAINS(chm_instance_errmsg(inst), "no table 'Template_Roles'");
  ASSERT_CONTAINS(chm_instance_errmsg(inst), inst_path);
}

/* ===================================================================== */
/* Documented codes and shapes                                            */
/* ===================================================================== */

TEST(instantiate_report_has_name) {
  char path[400];
  snprintf(path, sizeof path, "%s/named.db", dir);
  ASSERT_RC(chm_meta_instantiate(meta, "TK-BASIC", 0, path, "desk-7", &out),
            CHM_OK);
  ASSERT_CONTAINS(out, "\"name\": \"desk-7\"");
  ASSERT_CONTAINS(out, "\"instance_id\"");
  ASSERT_CONTAINS(out, "\"local_workflow_id\"");
  ASSERT_CONTAINS(out, "\"is_master\": true");
}

TEST(instantiate_exists_touches_nothing) {
  long before, after;
  FILE *f = fopen(inst_path, "rb");
  ASSERT_TRUE(f != NULL);
  fseek(f, 0, SEEK_END);
  before = ftell(f);
  fclose(f);
  ASSERT_RC(chm_meta_instantiate(meta, "TK-BASIC", 0, inst_path, NULL, &out),
            CHM_EXISTS);
  ASSERT_TRUE(out == NULL);
  ASSERT_CONTAINS(chm_meta_errmsg(meta), "already exists");
  f = fopen(inst_path, "rb");
  ASSERT_TRUE(f != NULL); /* not removed as a half-made store */
  fseek(f, 0, SEEK_END);
  after = ftell(f);
  fclose(f);
  ASSERT_INT_EQ(after, before);
}

TEST(show_export_instantiate_notfound) {
  char path[400];
  snprintf(path, sizeof path, "%s/never.db", dir);
  ASSERT_RC(chm_meta_show(meta, "NOPE", 0, &out), CHM_NOTFOUND);
  ASSERT_CONTAINS(chm_meta_errmsg(meta), "workflow 'NOPE'");
  ASSERT_RC(chm_meta_show(meta, "TK-BASIC", 99, &out), CHM_NOTFOUND);
  ASSERT_CONTAINS(chm_meta_errmsg(meta), "version 99");
  ASSERT_RC(chm_meta_export(meta, "NOPE", 0, CHM_EXPORT_JSON, &out),
            CHM_NOTFOUND);
  ASSERT_RC(chm_meta_export(meta, "TK-BASIC", 0, 7, &out), CHM_MISUSE);
  ASSERT_RC(chm_meta_instantiate(meta, "NOPE", 0, path, NULL, &out),
            CHM_NOTFOUND);
  ASSERT_TRUE(access(path, F_OK) != 0); /* the half-made file is removed */
}

TEST(instance_open_codes) {
  char path[400];
  chm_instance *h = NULL;
  snprintf(path, sizeof path, "%s/missing.db", dir);
  ASSERT_RC(chm_instance_open(path, &h), CHM_NOTFOUND);
  ASSERT_CONTAINS(chm_instance_errmsg(h), "no such store");
  chm_instance_close(h);
  h = NULL;
  ASSERT_RC(chm_instance_open("", &h), CHM_MISUSE);
  chm_instance_close(h);
  ASSERT_RC(chm_instance_open(path, NULL), CHM_MISUSE);
}

TEST(describe_dot_and_queries) {
  open_inst();
  ASSERT_RC(chm_instance_describe(inst, &out), CHM_OK);
  ASSERT_CONTAINS(out, "\"is_master\": true");
  chm_free(out);
  ASSERT_RC(chm_instance_dot(inst, &out), CHM_OK);
  ASSERT_CONTAINS(out, "0 tokens, 0 here");
  chm_free(out);
  ASSERT_RC(chm_queues(inst, &out), CHM_OK);
  ASSERT_CONTAINS(out, "\"inbox\"");
  chm_free(out);
  out = NULL;
  ASSERT_RC(chm_token_get(inst, "no-such-token", &out), CHM_NOTFOUND);
  ASSERT_TRUE(out == NULL);
  ASSERT_CONTAINS(chm_instance_errmsg(inst), "no token 'no-such-token'");
  ASSERT_RC(chm_token_history(inst, "no-such-token", &out), CHM_NOTFOUND);
  ASSERT_RC(chm_token_get(inst, NULL, &out), CHM_MISUSE);
}

TEST(memory_set_codes) {
  open_inst();
  ASSERT_RC(chm_memory_set(inst, "worker", NULL, "tone", "{not json"),
            CHM_INVALID);
  ASSERT_CONTAINS(chm_instance_errmsg(inst), "the memory value");
  ASSERT_RC(chm_memory_set(inst, "no-such-role", NULL, "tone", "\"x\""),
            CHM_NOTFOUND);
  ASSERT_RC(chm_memory_set(inst, "worker", NULL, "", "\"x\""), CHM_MISUSE);
  ASSERT_RC(chm_memory_set(inst, "worker", NULL, "tone", "\"short\""),
            CHM_OK);
  ASSERT_RC(chm_instance_pause(inst), CHM_OK);
  ASSERT_RC(chm_memory_set(inst, "worker", NULL, "tone", "\"long\""),
            CHM_STATE);
  ASSERT_RC(chm_instance_resume(inst), CHM_OK);
}

/* ===================================================================== */
/* The clock                                                              */
/* ===================================================================== */

#define CLOCK_THREADS 4
#define CLOCK_STEPS 2000000

static pthread_barrier_t clock_start; /* all threads advance at once */

static void *advance_many(void *arg) {
  (void)arg;
  pthread_barrier_wait(&clock_start);
  for (int i = 0; i < CLOCK_STEPS; i++)
    chm_clock_advance(1);
  return NULL;
}

/* Unsynchronised `virtual_ms += ms` loses updates when threads race; the
** atomic read-modify-write counts every one. */
/* The REPL's print sink: lines arrive while the chunk runs, not in *out,
** and nothing printed before a failure is held back. */
static void collect(void *ud, const char *text, size_t len) {
  char *buf = ud;
  size_t have = strlen(buf);
  if (have + len < 256) {
    memcpy(buf + have, text, len);
    buf[have + len] = '\0';
  }
}

TEST(repl_output_streams_prints) {
  char seen[256] = "";
  open_inst();
  chm_instance_repl_output(inst, collect, seen);
  ASSERT_RC(chm_instance_repl(inst, "print('a', 1); print('b'); return 7", &out),
            CHM_OK);
  ASSERT_STR_EQ(seen, "a\t1\nb\n");
  ASSERT_STR_EQ(out, "7"); /* only the result */
  chm_free(out);
  out = NULL;
  seen[0] = '\0';
  ASSERT_RC(chm_instance_repl(inst, "print('before'); error('boom')", &out),
            CHM_SCRIPT);
  ASSERT_STR_EQ(seen, "before\n");
  ASSERT_TRUE(out == NULL); /* already streamed: nothing to hand back */
  ASSERT_CONTAINS(chm_instance_errmsg(inst), "boom");
  /* NULL restores collecting */
  chm_instance_repl_output(inst, NULL, NULL);
  seen[0] = '\0';
  ASSERT_RC(chm_instance_repl(inst, "print('c')", &out), CHM_OK);
  ASSERT_STR_EQ(out, "c");
  ASSERT_STR_EQ(seen, "");
}

TEST(clock_advance_is_atomic) {
  pthread_t th[CLOCK_THREADS];
  int i;
  chm_clock_set_virtual(1000);
  pthread_barrier_init(&clock_start, NULL, CLOCK_THREADS);
  for (i = 0; i < CLOCK_THREADS; i++)
    if (pthread_create(&th[i], NULL, advance_many, NULL) != 0) {
      printf("cannot start thread %d\n", i);
      exit(2); /* the barrier would wait for it forever */
    }
  for (i = 0; i < CLOCK_THREADS; i++)
    pthread_join(th[i], NULL);
  pthread_barrier_destroy(&clock_start);
  ASSERT_INT_EQ(chm_clock_now(), 1000 + (int64_t)CLOCK_THREADS * CLOCK_STEPS);
  ASSERT_INT_EQ(chm_clock_is_virtual(), 1);
}

TEST(clock_states) {
  int64_t real;
  chm_clock_set_real();
  ASSERT_INT_EQ(chm_clock_is_virtual(), 0);
  chm_clock_advance(5000); /* a no-op on the real clock */
  ASSERT_INT_EQ(chm_clock_is_virtual(), 0);
  real = chm_clock_now();
  ASSERT_TRUE(real > 1600000000000LL);
  /* out of 1970..9999: refused, the real clock stays */
  ASSERT_RC(chm_clock_set_virtual(INT64_MIN), CHM_MISUSE);
  ASSERT_RC(chm_clock_set_virtual(-5), CHM_MISUSE);
  ASSERT_RC(chm_clock_set_virtual(CHM_CLOCK_MAX_MS + 1), CHM_MISUSE);
  ASSERT_INT_EQ(chm_clock_is_virtual(), 0);
  ASSERT_RC(chm_clock_set_virtual(10), CHM_OK);
  ASSERT_INT_EQ(chm_clock_is_virtual(), 1);
  ASSERT_RC(chm_clock_advance(-5), CHM_OK);
  ASSERT_INT_EQ(chm_clock_now(), 5);
  ASSERT_RC(chm_clock_advance(-6), CHM_MISUSE); /* before 1970 */
  ASSERT_RC(chm_clock_advance(INT64_MAX), CHM_MISUSE); /* would wrap */
  ASSERT_RC(chm_clock_advance(INT64_MIN), CHM_MISUSE);
  ASSERT_INT_EQ(chm_clock_now(), 5);
  ASSERT_RC(chm_clock_set_virtual(CHM_CLOCK_MAX_MS), CHM_OK);
  ASSERT_RC(chm_clock_advance(1), CHM_MISUSE); /* after 9999 */
  ASSERT_INT_EQ(chm_clock_now(), CHM_CLOCK_MAX_MS);
  chm_clock_set_real();
  ASSERT_TRUE(chm_clock_now() >= real);
}

/* ===================================================================== */
/* Runner                                                                 */
/* A lease outside 1..366 days is refused with a message naming it and the
** range (now + lease could overflow before). */
TEST(lease_range) {
  open_inst();
  ASSERT_RC(chm_set_lease_ms(inst, INT64_MAX), CHM_MISUSE);
  ASSERT_CONTAINS(chm_instance_errmsg(inst), "9223372036854775807");
  ASSERT_CONTAINS(chm_instance_errmsg(inst), "1 to 31622400000 ms");
  ASSERT_RC(chm_set_lease_ms(inst, 0), CHM_MISUSE);
  ASSERT_RC(chm_set_lease_ms(inst, CHM_LEASE_MAX_MS + 1), CHM_MISUSE);
  ASSERT_RC(chm_set_lease_ms(inst, CHM_LEASE_MAX_MS), CHM_OK);
  ASSERT_RC(chm_set_lease_ms(inst, 300000), CHM_OK);
}

/* ===================================================================== */

#define TEST_LIST(X)                                                           \
  X(meta_guide_all_and_one)                                                    \
  X(meta_guide_notfound_names_table_and_store)                                 \
  X(guide_misuse)                                                              \
  X(instance_guide)                                                            \
  X(instantiate_report_has_name)                                               \
  X(instantiate_exists_touches_nothing)                                        \
  X(show_export_instantiate_notfound)                                          \
  X(instance_open_codes)                                                       \
  X(describe_dot_and_queries)                                                  \
  X(memory_set_codes)                                                          \
  X(repl_output_streams_prints)                                                \
  X(clock_advance_is_atomic)                                                   \
  X(clock_states)                                                             \
  X(lease_range)

#define X(name) static void test_##name(void);
TEST_LIST(X)
#undef X

static const harness_test tests[] = {
#define TEST_ROW(name) {#name, test_##name},
    TEST_LIST(TEST_ROW)
#undef TEST_ROW
};

static void setup(void) {
  const char *fixtures = getenv("CHM_FIXTURES");
  char path[512];
  snprintf(dir, sizeof dir, "/tmp/chm_test_api.XXXXXX");
  if (mkdtemp(dir) == NULL) {
    perror("mkdtemp");
    exit(2);
  }
  snprintf(meta_path, sizeof meta_path, "%s/meta.db", dir);
  snprintf(inst_path, sizeof inst_path, "%s/inst.db", dir);
  snprintf(path, sizeof path, "%s/tk_basic.lua",
           fixtures ? fixtures : "tests/fixtures/engine");
  if (chm_meta_open(meta_path, &meta) != CHM_OK ||
      chm_meta_import(meta, path, &out) != CHM_OK ||
      (chm_free(out), chm_meta_instantiate(meta, "TK-BASIC", 0, inst_path,
                                           "api", &out)) != CHM_OK) {
    printf("setup failed: %s\n", chm_meta_errmsg(meta));
    exit(2);
  }
  chm_free(out);
  out = NULL;
}

static void after_each(void) {
  chm_instance_close(inst);
  inst = NULL;
  chm_free(out);
  out = NULL;
  chm_clock_set_real();
}

static void teardown(void) {
  char cmd[300];
  chm_meta_close(meta);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    printf("could not remove %s\n", dir);
}

int main(int argc, char **argv) {
  int failed;
  setup();
  failed = harness_run(tests, sizeof tests / sizeof tests[0], argc, argv,
                       after_each);
  teardown();
  return failed > 0;
}
