/*
** bench/bench.c — the engine side of `make bench` (driven by bench/run.sh).
** Measures libchameleon through its public API; uses the internal headers
** only to reach an instance's SQLite connection (statement trace) and its
** lua_State (judge.gate in a loop) and to make UUIDs and hashes when it
** writes the 100,000-token queue directly (only when chm_genesis would
** take over a minute, or BENCH_SQL_FILL=1). Speed is never asserted: every
** subcommand prints figures as "key value" lines and exits 0 unless
** something failed.
**
**   chm_bench prepare META WORKFLOW NAME OUT T
**       import WORKFLOW into META, instantiate NAME into OUT and create T
**       tokens with chm_genesis ({"n": 0}), one transaction each
**   chm_bench run DB BATCH        time chm_run (batch BATCH) on DB
**   chm_bench duel E C X BATCH CHUNK TOTAL CEILING
**                                 the engine on E, the ceiling on C and the
**                                 engine again on X (noise check) take
**                                 turns of CHUNK moves until TOTAL each
**   chm_bench trace DB STEPS      SQL statements per run step (warm)
**   chm_bench verify DB           chm_verify plus a summary of the store
**   chm_bench checkout DIR M      checkout latency, 1,000 vs 100,000
**                                 waiting, and behind a CRITERIA_GATE
**   chm_bench guard DIR N         judge.gate per call (CRITERIA_GATE)
**
** DIR holds meta.db with BENCH-QUEUE and BENCH-GATED already imported.
*/
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "chameleon.h"
#include "chm_int.h"

/* ===================================================================== */
/* Helpers                                                                */
/* ===================================================================== */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *msg) {
  fprintf(stderr, "chm_bench: %s: %s\n", what, msg ? msg : "?");
  exit(1);
}

static void check_inst(int rc, chm_instance *inst, const char *what) {
  if (rc != CHM_OK)
    die(what, inst ? chm_instance_errmsg(inst) : chm_errstr(rc));
}

static chm_instance *open_inst(const char *path) {
  chm_instance *inst = NULL;
  int rc = chm_instance_open(path, &inst);
  check_inst(rc, inst, path);
  return inst;
}

static chm_meta *open_meta(const char *path) {
  chm_meta *m = NULL;
  if (chm_meta_open(path, &m) != CHM_OK)
    die(path, m ? chm_meta_errmsg(m) : "cannot open");
  return m;
}

static void instantiate(chm_meta *m, const char *name, const char *out) {
  char *report = NULL;
  remove(out);
  if (chm_meta_instantiate(m, name, 0, out, NULL, &report) != CHM_OK)
    die(name, chm_meta_errmsg(m));
  chm_free(report);
}

static void genesis(chm_instance *inst, const char *attrs) {
  char *id = NULL;
  check_inst(chm_genesis(inst, NULL, attrs, NULL, &id), inst, "genesis");
  chm_free(id);
}

/* The integer after "key": in a JSON text (-1 when absent). */
static long long jint(const char *json, const char *key) {
  char pat[64];
  const char *p;
  snprintf(pat, sizeof pat, "\"%s\":", key);
  if (json == NULL || (p = strstr(json, pat)) == NULL)
    return -1;
  return strtoll(p + strlen(pat), NULL, 10);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* ===================================================================== */
/* prepare / run / verify                                                 */
/* ===================================================================== */

static int cmd_prepare(char **argv) {
  const char *meta = argv[0], *wf = argv[1], *name = argv[2], *out = argv[3];
  long t = atol(argv[4]), i;
  chm_meta *m = open_meta(meta);
  chm_instance *inst;
  char *report = NULL;
  double t0;
  if (chm_meta_import(m, wf, &report) != CHM_OK)
    die(wf, chm_meta_errmsg(m));
  chm_free(report);
  instantiate(m, name, out);
  chm_meta_close(m);
  inst = open_inst(out);
  t0 = now_s();
  for (i = 0; i < t; i++)
    genesis(inst, "{\"n\": 0}");
  if (t > 0)
    printf("genesis_per_s %.0f\n", (double)t / (now_s() - t0));
  chm_instance_close(inst);
  return 0;
}

static int cmd_run(char **argv) {
  chm_instance *inst = open_inst(argv[0]);
  chm_run_opts o = {atoi(argv[1]), 0};
  char *report = NULL;
  double t0, dt;
  int rc;
  t0 = now_s();
  rc = chm_run(inst, &o, &report);
  dt = now_s() - t0;
  check_inst(rc, inst, "chm_run");
  printf("report %s\n", report);
  printf("moves %lld\n", jint(report, "moves"));
  printf("failed %lld\n", jint(report, "failed"));
  printf("commits %lld\n", jint(report, "commits"));
  printf("seconds %.3f\n", dt);
  printf("moves_per_s %.0f\n", (double)jint(report, "moves") / dt);
  chm_free(report);
  chm_instance_close(inst);
  return 0;
}

/* What the engine's connection runs, by statement: how often and how
** long (SQLITE_TRACE_PROFILE), and by kind. */
#define MAXSTMT 128
typedef struct tally {
  struct {
    char *sql; /* the statement's text (a copy) */
    long n;
    double s;
  } by[MAXSTMT];
  int nby;
  struct {
    void *stmt;
    double t0;
  } open[16]; /* started, not yet finished statements */
  long select, insert, update, begin, commit, savepoint, release, other, total;
  int echo;
} tally;

/* SQLITE_TRACE_STMT starts the clock of a statement, SQLITE_TRACE_PROFILE
** stops it (SQLite's own profile time has a 1 ms resolution). */
static int on_trace(unsigned type, void *ud, void *p, void *x) {
  tally *t = ud;
  const char *sql = sqlite3_sql(p);
  double now = now_s();
  int i;
  (void)x;
  if (sql == NULL || strncmp(sql, "--", 2) == 0)
    return 0;
  if (type == SQLITE_TRACE_PROFILE) {
    double t0 = -1;
    for (i = 0; i < 16; i++)
      if (t->open[i].stmt == p) {
        t0 = t->open[i].t0;
        t->open[i].stmt = NULL;
        break;
      }
    if (t0 < 0)
      return 0;
    for (i = 0; i < t->nby && strcmp(t->by[i].sql, sql) != 0; i++) {
    }
    if (i == t->nby && t->nby < MAXSTMT)
      t->by[t->nby++].sql = strdup(sql);
    if (i < MAXSTMT) {
      t->by[i].n++;
      t->by[i].s += now - t0;
    }
    return 0;
  }
  if (type != SQLITE_TRACE_STMT)
    return 0;
  for (i = 0; i < 16; i++)
    if (t->open[i].stmt == NULL || t->open[i].stmt == p) {
      t->open[i].stmt = p;
      t->open[i].t0 = now;
      break;
    }
  t->total++;
  if (t->echo)
    printf("  sql %.100s\n", sql);
#define IS(w) (strncmp(sql, w, strlen(w)) == 0)
  if (IS("SELECT"))
    t->select++;
  else if (IS("INSERT"))
    t->insert++;
  else if (IS("UPDATE"))
    t->update++;
  else if (IS("BEGIN"))
    t->begin++;
  else if (IS("COMMIT"))
    t->commit++;
  else if (IS("SAVEPOINT"))
    t->savepoint++;
  else if (IS("RELEASE"))
    t->release++;
  else
    t->other++;
#undef IS
  return 0;
}

static int by_time(const void *a, const void *b) {
  double x = ((const double *)a)[0], y = ((const double *)b)[0];
  return x < y ? 1 : x > y ? -1 : 0;
}

/* trace DB STEPS: warm the handle with one step, list the statements of
** the next step, then count and time what STEPS more steps (batch 1) run. */
static int cmd_trace(char **argv) {
  chm_instance *inst = open_inst(argv[0]);
  chm__core *c = chm__instance_core(inst);
  chm_run_opts o = {1, 1};
  tally *t = calloc(1, sizeof *t);
  char *report = NULL;
  long steps = atol(argv[1]);
  double total_s = 0, t0, dt, rows[MAXSTMT][2];
  int i;
  check_inst(chm_run(inst, &o, &report), inst, "chm_run");
  chm_free(report);
  sqlite3_trace_v2(c->db, SQLITE_TRACE_STMT, on_trace, t);
  t->echo = 1;
  printf("statements of one step:\n");
  check_inst(chm_run(inst, &o, &report), inst, "chm_run");
  chm_free(report);
  t->echo = 0;
  t->total = t->select = t->insert = t->update = t->begin = t->commit = 0;
  t->savepoint = t->release = t->other = 0;
  sqlite3_trace_v2(c->db, SQLITE_TRACE_STMT | SQLITE_TRACE_PROFILE, on_trace,
                   t);
  o.max_steps = (int)steps;
  t0 = now_s();
  check_inst(chm_run(inst, &o, &report), inst, "chm_run");
  dt = now_s() - t0;
  sqlite3_trace_v2(c->db, 0, NULL, NULL);
  steps = jint(report, "steps");
  chm_free(report);
#define PER(f) (double)t->f / (double)steps
  printf("trace_steps %ld\n", steps);
  printf("stmts_per_step %.2f\n", PER(total));
  printf("select_per_step %.2f\n", PER(select));
  printf("insert_per_step %.2f\n", PER(insert));
  printf("update_per_step %.2f\n", PER(update));
  printf("begin_per_step %.2f\n", PER(begin));
  printf("commit_per_step %.2f\n", PER(commit));
  printf("savepoint_per_step %.2f\n", PER(savepoint));
  printf("release_per_step %.2f\n", PER(release));
  printf("other_per_step %.2f\n", PER(other));
#undef PER
  for (i = 0; i < t->nby; i++) {
    rows[i][0] = t->by[i].s;
    rows[i][1] = (double)i;
    total_s += t->by[i].s;
  }
  qsort(rows, (size_t)t->nby, sizeof rows[0], by_time);
  printf("step_us %.1f\n", dt / (double)steps * 1e6);
  printf("sql_us_per_step %.1f\n", total_s * 1e6 / (double)steps);
  printf("statements by time (per step: runs, us):\n");
  for (i = 0; i < t->nby; i++) {
    int k = (int)rows[i][1];
    printf("  %5.2f %6.1f  %.90s\n", (double)t->by[k].n / (double)steps,
           t->by[k].s * 1e6 / (double)steps, t->by[k].sql);
  }
  for (i = 0; i < t->nby; i++)
    free(t->by[i].sql);
  free(t);
  chm_instance_close(inst);
  return 0;
}

/* duel ENGINE_DB CEILING_DB EXP_DB BATCH CHUNK TOTAL CEILING_BIN: the
** engine (chm_run on ENGINE_DB), the ceiling (CEILING_BIN --serve on
** CEILING_DB, a child process) and the engine again on EXP_DB (a noise
** check: it once measured temp_store=MEMORY, now the engine's default)
** take turns of CHUNK moves,
** in rotating order, until each made TOTAL: they see the same disk at the
** same moments, so a slow stretch of fsync hits all three. */
static int cmd_duel(char **argv) {
  int batch = atoi(argv[3]), chunk = atoi(argv[4]), turn;
  long total = atol(argv[5]), done[3] = {0, 0, 0};
  double secs[3] = {0, 0, 0};
  chm_instance *inst[2];
  int to_child[2], from_child[2];
  FILE *cin, *cout;
  char line[128];
  pid_t pid;
  inst[0] = open_inst(argv[0]);
  inst[1] = open_inst(argv[2]);
  if (pipe(to_child) != 0 || pipe(from_child) != 0 || (pid = fork()) < 0)
    die("duel", "cannot start the ceiling");
  if (pid == 0) {
    dup2(to_child[0], 0);
    dup2(from_child[1], 1);
    close(to_child[1]);
    close(from_child[0]);
    execl(argv[6], argv[6], argv[1], argv[3], "--serve", (char *)NULL);
    _exit(127);
  }
  close(to_child[0]);
  close(from_child[1]);
  cin = fdopen(to_child[1], "w");
  cout = fdopen(from_child[0], "r");
  if (fgets(line, sizeof line, cout) == NULL || strncmp(line, "ready", 5) != 0)
    die("duel", "the ceiling did not start");
  for (turn = 0; done[0] < total || done[1] < total || done[2] < total;
       turn++) {
    int j;
    for (j = 0; j < 3; j++) {
      int who = (turn + j) % 3;
      long want = total - done[who] < chunk ? total - done[who] : chunk;
      if (want <= 0)
        continue;
      if (who == 1) { /* the ceiling */
        long m;
        double sec;
        fprintf(cin, "%ld\n", want);
        fflush(cin);
        if (fgets(line, sizeof line, cout) == NULL ||
            sscanf(line, "%ld %lf", &m, &sec) != 2)
          die("duel", "the ceiling stopped");
        if (m != want)
          die("duel", "the ceiling ran out of work");
        done[1] += m;
        secs[1] += sec;
      } else {
        chm_instance *in = inst[who / 2];
        chm_run_opts o = {batch, (int)want};
        char *report = NULL;
        double t0 = now_s();
        int rc = chm_run(in, &o, &report);
        secs[who] += now_s() - t0;
        check_inst(rc, in, "chm_run");
        if (jint(report, "moves") != want)
          die("duel: the engine ran out of work", report);
        done[who] += want;
        chm_free(report);
      }
    }
  }
  fclose(cin);
  fclose(cout);
  waitpid(pid, NULL, 0);
  chm_instance_close(inst[0]);
  chm_instance_close(inst[1]);
  printf("moves %ld\n", total);
  printf("engine_moves_per_s %.0f\n", (double)total / secs[0]);
  printf("ceiling_moves_per_s %.0f\n", (double)total / secs[1]);
  printf("experiment_moves_per_s %.0f\n", (double)total / secs[2]);
  printf("ratio %.3f\n", secs[0] / secs[1]);
  printf("experiment_ratio %.3f\n", secs[2] / secs[1]);
  return 0;
}

static void print_query(chm_instance *inst, const char *key, const char *sql) {
  char *json = NULL;
  check_inst(chm_instance_query(inst, sql, &json), inst, sql);
  printf("%s %s\n", key, json);
  chm_free(json);
}

static int cmd_verify(char **argv) {
  chm_instance *inst = open_inst(argv[0]);
  char *report = NULL;
  int rc = chm_verify(inst, &report);
  char *head = report ? strstr(report, ",\"head_log_id\"") : NULL;
  /* the head's hash covers ids and timestamps, which differ between the
  ** engine's store and the ceiling's: compare the rest of the report */
  if (head != NULL) strcpy(head, "}");
  printf("verify %s %s\n", chm_errname(rc), report ? report : "");
  chm_free(report);
  print_query(inst, "tokens",
              "SELECT status, count(*) AS n, sum(version) AS versions, "
              "sum(checkout_count) AS checkouts FROM UnitsOfWork GROUP BY "
              "status ORDER BY status");
  print_query(inst, "logs",
              "SELECT event, count(*) AS n FROM Interaction_Logs GROUP BY "
              "event ORDER BY event");
  print_query(inst, "attributes",
              "SELECT count(*) AS n, max(version) AS max_version, "
              "sum(CAST(value AS INTEGER)) AS sum_n FROM UOW_Attributes");
  chm_instance_close(inst);
  return rc == CHM_OK ? 0 : 1;
}

/* ===================================================================== */
/* Checkout latency                                                       */
/* ===================================================================== */

/* fill(path, n): append n PENDING tokens to the inbox of the BENCH-QUEUE
** instance at path with plain SQL in one transaction, writing exactly what
** chm_genesis writes (the UnitsOfWork row, the "amount" attribute, the
** hash-chained GENESIS log row), copying the constant values from the
** newest token genesis made. chm_verify checks the chain afterwards. */
static void fill(const char *path, long n) {
  sqlite3 *db;
  sqlite3_stmt *src, *tok, *attr, *log, *head;
  char prev[65], hash[65], ts[96], uid[37], aid[37], id[24];
  long long log_id;
  long i;
  const char *f[13];
  if (sqlite3_open(path, &db) != SQLITE_OK)
    die(path, sqlite3_errmsg(db));
  sqlite3_busy_timeout(db, 10000);
#define OK(x)                                                                  \
  do {                                                                         \
    if ((x) != SQLITE_OK)                                                      \
      die("fill", sqlite3_errmsg(db));                                         \
  } while (0)
  OK(sqlite3_exec(db,
                  "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
                  "PRAGMA foreign_keys=ON; BEGIN IMMEDIATE",
                  NULL, NULL, NULL));
  OK(sqlite3_prepare_v2(
      db,
      "SELECT u.instance_id, u.local_workflow_id, u.current_interaction_id, "
      "u.last_role_id, l.actor_id, l.role_id, l.interaction_id, l.decision, "
      "l.details, a.value, a.actor_id, a.reasoning FROM UnitsOfWork u JOIN "
      "Interaction_Logs l ON l.uow_id = u.uow_id AND l.event = 'GENESIS' "
      "JOIN UOW_Attributes a ON a.uow_id = u.uow_id ORDER BY l.log_id DESC "
      "LIMIT 1",
      -1, &src, NULL));
  if (sqlite3_step(src) != SQLITE_ROW)
    die("fill", "no genesis token to copy");
  OK(sqlite3_prepare_v2(db,
                        "SELECT log_id, hash FROM Interaction_Logs ORDER BY "
                        "log_id DESC LIMIT 1",
                        -1, &head, NULL));
  if (sqlite3_step(head) != SQLITE_ROW)
    die("fill", "empty log");
  log_id = sqlite3_column_int64(head, 0);
  snprintf(prev, sizeof prev, "%s", sqlite3_column_text(head, 1));
  sqlite3_finalize(head);
  /* the statements of token_int.h: TOK_INSERT, ATTR_INSERT, LOG_INSERT */
  OK(sqlite3_prepare_v2(
      db,
      "INSERT INTO UnitsOfWork (uow_id, instance_id, local_workflow_id, "
      "parent_id, current_interaction_id, status, version, entered_at, "
      "queue_seq, max_interactions, last_role_id, failure_reason, "
      "created_at, updated_at, return_uow_id) "
      "VALUES (?1,?2,?3,NULL,?4,'PENDING',1,?5,?6,NULL,?7,NULL,?5,?5,NULL)",
      -1, &tok, NULL));
  OK(sqlite3_prepare_v2(
      db,
      "INSERT INTO UOW_Attributes (attribute_id, uow_id, instance_id, key, "
      "value, version, actor_id, reasoning, created_at, "
      "lineage_attribute_id) VALUES (?,?,?,'amount',?,1,?,?,?,NULL)",
      -1, &attr, NULL));
  OK(sqlite3_prepare_v2(
      db,
      "INSERT INTO Interaction_Logs (log_id, instance_id, uow_id, actor_id, "
      "role_id, interaction_id, timestamp, from_status, to_status, event, "
      "decision, guardian_id, details, prev_hash, hash) "
      "VALUES (?,?,?,?,?,?,?,NULL,'PENDING','GENESIS',?,NULL,?,?,?)",
      -1, &log, NULL));
#define COL(i) ((const char *)sqlite3_column_text(src, i))
  for (i = 0; i < n; i++) {
    int64_t now = chm_clock_now();
    time_t secs = (time_t)(now / 1000);
    struct tm tm;
    char *buf;
    size_t len;
    gmtime_r(&secs, &tm);
    snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int)(now % 1000));
    chm__uuid7(uid);
    chm__uuid7(aid);
    log_id++;
    snprintf(id, sizeof id, "%lld", log_id);
    sqlite3_bind_text(tok, 1, uid, -1, SQLITE_STATIC);
    sqlite3_bind_text(tok, 2, COL(0), -1, SQLITE_STATIC);
    sqlite3_bind_text(tok, 3, COL(1), -1, SQLITE_STATIC);
    sqlite3_bind_text(tok, 4, COL(2), -1, SQLITE_STATIC);
    sqlite3_bind_int64(tok, 5, now);
    sqlite3_bind_int64(tok, 6, log_id);
    sqlite3_bind_text(tok, 7, COL(3), -1, SQLITE_STATIC);
    if (sqlite3_step(tok) != SQLITE_DONE)
      die("fill token", sqlite3_errmsg(db));
    sqlite3_reset(tok);
    sqlite3_bind_text(attr, 1, aid, -1, SQLITE_STATIC);
    sqlite3_bind_text(attr, 2, uid, -1, SQLITE_STATIC);
    sqlite3_bind_text(attr, 3, COL(0), -1, SQLITE_STATIC);
    sqlite3_bind_text(attr, 4, COL(9), -1, SQLITE_STATIC);
    sqlite3_bind_text(attr, 5, COL(10), -1, SQLITE_STATIC);
    sqlite3_bind_text(attr, 6, COL(11), -1, SQLITE_STATIC);
    sqlite3_bind_int64(attr, 7, now);
    if (sqlite3_step(attr) != SQLITE_DONE)
      die("fill attribute", sqlite3_errmsg(db));
    sqlite3_reset(attr);
    f[0] = id, f[1] = COL(0), f[2] = uid, f[3] = COL(4), f[4] = COL(5);
    f[5] = COL(6), f[6] = ts, f[7] = NULL, f[8] = "PENDING";
    f[9] = "GENESIS", f[10] = COL(7), f[11] = NULL, f[12] = COL(8);
    {
      size_t k, cap = 1024;
      buf = malloc(cap);
      len = 0;
      len += (size_t)snprintf(buf, cap, "%s", prev);
      for (k = 0; k < 13; k++)
        len += (size_t)snprintf(buf + len, cap - len, "\x1f%s",
                                f[k] ? f[k] : "\\N");
      if (len >= cap)
        die("fill", "log row too long");
    }
    if (chm__sha256_hex(buf, len, hash) != 0)
      die("fill", "sha256");
    free(buf);
    sqlite3_bind_int64(log, 1, log_id);
    sqlite3_bind_text(log, 2, COL(0), -1, SQLITE_STATIC);
    sqlite3_bind_text(log, 3, uid, -1, SQLITE_STATIC);
    sqlite3_bind_text(log, 4, COL(4), -1, SQLITE_STATIC);
    sqlite3_bind_text(log, 5, COL(5), -1, SQLITE_STATIC);
    sqlite3_bind_text(log, 6, COL(6), -1, SQLITE_STATIC);
    sqlite3_bind_text(log, 7, ts, -1, SQLITE_STATIC);
    sqlite3_bind_text(log, 8, COL(7), -1, SQLITE_STATIC);
    sqlite3_bind_text(log, 9, COL(8), -1, SQLITE_STATIC);
    sqlite3_bind_text(log, 10, prev, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(log, 11, hash, -1, SQLITE_STATIC);
    if (sqlite3_step(log) != SQLITE_DONE)
      die("fill log", sqlite3_errmsg(db));
    sqlite3_reset(log);
    memcpy(prev, hash, sizeof prev);
  }
#undef COL
  sqlite3_finalize(src);
  sqlite3_finalize(tok);
  sqlite3_finalize(attr);
  sqlite3_finalize(log);
  OK(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL));
#undef OK
  sqlite3_close(db);
}

/* A queue instance of workflow `name` with `api` tokens made by
** chm_genesis and then `sql` more appended by fill(). */
static chm_instance *queue_instance(chm_meta *m, const char *name,
                                    const char *path, long api, long sql) {
  chm_instance *inst = NULL;
  char *report = NULL;
  long i;
  double t0;
  instantiate(m, name, path);
  inst = open_inst(path);
  t0 = now_s();
  for (i = 0; i < api; i++)
    genesis(inst, "{\"amount\": 5}");
  /* the rest through the API too, unless that would take over a minute */
  if (sql > 0 && (double)sql * (now_s() - t0) / (double)api < 60.0 &&
      getenv("BENCH_SQL_FILL") == NULL) {
    for (i = 0; i < sql; i++)
      genesis(inst, "{\"amount\": 5}");
    printf("queue %s: %ld tokens, all by chm_genesis\n", name, api + sql);
    sql = 0;
  }
  if (sql > 0) {
    chm_instance_close(inst);
    fill(path, sql);
    inst = open_inst(path);
    check_inst(chm_verify(inst, &report), inst, "verify after fill");
    printf("queue %s: %ld tokens by chm_genesis, then %ld by SQL writing "
           "what genesis writes; chm_verify: %s\n",
           name, api, sql, report);
    chm_free(report);
  }
  check_inst(chm_set_lease_ms(inst, 86400000), inst, "lease");
  return inst;
}

typedef struct lat {
  double *v;
  int n;
} lat;

/* One timed checkout by "bench" on "worker", then (untimed) a genesis so
** the queue keeps its depth. */
static void checkout_once(chm_instance *inst, lat *l) {
  char *json = NULL;
  double t0 = now_s();
  int rc = chm_checkout(inst, "bench", "worker", NULL, &json);
  l->v[l->n++] = now_s() - t0;
  check_inst(rc, inst, "chm_checkout");
  chm_free(json);
  genesis(inst, "{\"amount\": 5}");
}

static void report_lat(const char *key, lat *l) {
  double sum = 0;
  int i;
  for (i = 0; i < l->n; i++)
    sum += l->v[i];
  qsort(l->v, (size_t)l->n, sizeof *l->v, cmp_double);
  printf("%s_mean_us %.1f\n", key, sum / l->n * 1e6);
  printf("%s_median_us %.1f\n", key, l->v[l->n / 2] * 1e6);
  printf("%s_p90_us %.1f\n", key, l->v[l->n * 9 / 10] * 1e6);
}

/* checkout DIR M: instances with 1,000 and 100,000 PENDING tokens in one
** interaction (BENCH-QUEUE) and 1,000 behind a CRITERIA_GATE
** (BENCH-GATED); M checkouts on each, interleaved. */
static int cmd_checkout(char **argv) {
  const char *dir = argv[0];
  int m = atoi(argv[1]), i;
  char path[3][512], mp[512];
  chm_meta *meta;
  chm_instance *small, *big, *gated;
  lat ls = {0}, lb = {0}, lg = {0};
  double t0;
  snprintf(mp, sizeof mp, "%s/meta.db", dir);
  snprintf(path[0], sizeof path[0], "%s/queue_1k.db", dir);
  snprintf(path[1], sizeof path[1], "%s/queue_100k.db", dir);
  snprintf(path[2], sizeof path[2], "%s/gated_1k.db", dir);
  meta = open_meta(mp);
  t0 = now_s();
  small = queue_instance(meta, "BENCH-QUEUE", path[0], 1000, 0);
  printf("genesis_1k_seconds %.2f\n", now_s() - t0);
  t0 = now_s();
  big = queue_instance(meta, "BENCH-QUEUE", path[1], 1000, 99000);
  printf("queue_100k_seconds %.2f\n", now_s() - t0);
  gated = queue_instance(meta, "BENCH-GATED", path[2], 1000, 0);
  chm_meta_close(meta);
  ls.v = calloc((size_t)m, sizeof(double));
  lb.v = calloc((size_t)m, sizeof(double));
  lg.v = calloc((size_t)m, sizeof(double));
  /* warm each handle (statements, compiled Lua) before timing */
  for (i = 0; i < 5; i++) {
    lat w = {ls.v, 0};
    checkout_once(small, &w), w.n = 0;
    checkout_once(big, &w), w.n = 0;
    checkout_once(gated, &w);
  }
  for (i = 0; i < m; i++) {
    checkout_once(small, &ls);
    checkout_once(big, &lb);
    checkout_once(gated, &lg);
  }
  printf("checkouts %d\n", m);
  report_lat("checkout_1k", &ls);
  report_lat("checkout_100k", &lb);
  report_lat("checkout_gated_1k", &lg);
  print_query(big, "queue_100k_pending",
              "SELECT count(*) AS n FROM UnitsOfWork WHERE status = "
              "'PENDING'");
  chm_instance_close(small);
  chm_instance_close(big);
  chm_instance_close(gated);
  free(ls.v);
  free(lb.v);
  free(lg.v);
  return 0;
}

/* ===================================================================== */
/* Guardian evaluation                                                    */
/* ===================================================================== */

static const chm_limits trusted = {4000000000u, 600000, 0};

typedef struct gatecall {
  const char *component;
  long n;
  double seconds;
  int passed;
} gatecall;

/* Pushes a token view like tokenlua.c's push_view for a PENDING token
** with attrs {amount = 5}.   [-0, +1] */
static void push_view(lua_State *L) {
  lua_createtable(L, 0, 10);
  lua_pushliteral(L, "0190b5a0-0000-7000-8000-000000000001");
  lua_setfield(L, -2, "uow_id");
  lua_pushliteral(L, "PENDING");
  lua_setfield(L, -2, "status");
  lua_pushinteger(L, 1);
  lua_setfield(L, -2, "version");
  lua_pushinteger(L, 0);
  lua_setfield(L, -2, "child_count");
  lua_pushinteger(L, 0);
  lua_setfield(L, -2, "finished_child_count");
  lua_pushliteral(L, "BENCH-GATED");
  lua_setfield(L, -2, "workflow");
  lua_createtable(L, 0, 1);
  lua_pushinteger(L, 5);
  lua_setfield(L, -2, "amount");
  lua_setfield(L, -2, "attrs");
}

/* body: judge.gate(db, component, view) k->n times inside one door. */
static int gate_body(lua_State *L) {
  gatecall *k = lua_touserdata(L, 1);
  chm__core *c = lua_touserdata(L, 2);
  int fn, db, comp, view;
  long i;
  double t0;
  chm__require(L, "judge");
  lua_getfield(L, -1, "gate");
  fn = lua_gettop(L);
  chm__db_push(L, c->db);
  db = lua_gettop(L);
  lua_pushstring(L, k->component);
  comp = lua_gettop(L);
  push_view(L);
  view = lua_gettop(L);
  t0 = now_s();
  for (i = 0; i < k->n; i++) {
    lua_pushvalue(L, fn);
    lua_pushvalue(L, db);
    lua_pushvalue(L, comp);
    lua_pushvalue(L, view);
    lua_call(L, 3, 1);
    lua_getfield(L, -1, "pass");
    k->passed += lua_toboolean(L, -1);
    lua_pop(L, 2);
  }
  k->seconds += now_s() - t0;
  return 0;
}

static void gate_calls(chm__core *c, gatecall *k) {
  int rc;
  lua_pushcfunction(c->L, gate_body);
  lua_pushlightuserdata(c->L, k);
  lua_pushlightuserdata(c->L, c);
  rc = chm__pcall(c->L, 2, 0, &trusted);
  if (rc != CHM_OK) {
    fprintf(stderr, "gate: %s\n", lua_tostring(c->L, -1));
    exit(1);
  }
}

/* Times one door per call, as tokenlua.c does: the view is rebuilt each
** time (inside the door), so the figure includes both. */
static int door_body(lua_State *L) {
  gatecall *k = lua_touserdata(L, 1);
  chm__core *c = lua_touserdata(L, 2);
  chm__require(L, "judge");
  lua_getfield(L, -1, "gate");
  chm__db_push(L, c->db);
  lua_pushstring(L, k->component);
  push_view(L);
  lua_call(L, 3, 1);
  lua_getfield(L, -1, "pass");
  k->passed += lua_toboolean(L, -1);
  return 0;
}

static char *one_text(chm_instance *inst, const char *sql, const char *key) {
  char *json = NULL, *p, *e, *out;
  char pat[64];
  check_inst(chm_instance_query(inst, sql, &json), inst, sql);
  snprintf(pat, sizeof pat, "\"%s\":", key);
  if ((p = strstr(json, pat)) == NULL ||
      (p = strchr(p + strlen(pat), '"')) == NULL)
    die(sql, json);
  p++;
  e = strchr(p, '"');
  out = strndup(p, (size_t)(e - p));
  chm_free(json);
  return out;
}

/* guard DIR N: judge.gate on the worker's inbound component of
** BENCH-GATED (one CRITERIA_GATE) and of BENCH-QUEUE (no guardian). */
static int cmd_guard(char **argv) {
  const char *dir = argv[0];
  long n = atol(argv[1]), i;
  const char *const names[2] = {"BENCH-GATED", "BENCH-QUEUE"};
  const char *const keys[2] = {"criteria", "empty"};
  char mp[512], path[512];
  chm_meta *meta;
  int w;
  snprintf(mp, sizeof mp, "%s/meta.db", dir);
  meta = open_meta(mp);
  for (w = 0; w < 2; w++) {
    chm_instance *inst;
    chm__core *c;
    char *comp;
    gatecall k;
    double t0;
    snprintf(path, sizeof path, "%s/guard_%d.db", dir, w);
    instantiate(meta, names[w], path);
    inst = open_inst(path);
    c = chm__instance_core(inst);
    comp = one_text(inst,
                    "SELECT c.component_id AS id FROM Local_Components c JOIN "
                    "Local_Roles r USING (role_id) WHERE r.name = 'worker' "
                    "AND c.direction = 'INBOUND'",
                    "id");
    /* warm: load and compile the gate */
    memset(&k, 0, sizeof k);
    k.component = comp;
    k.n = 1000;
    gate_calls(c, &k);
    /* many calls in one door */
    memset(&k, 0, sizeof k);
    k.component = comp;
    k.n = n;
    gate_calls(c, &k);
    if (k.passed != n)
      die("guard", "the gate did not pass");
    printf("gate_%s_loop_us %.3f\n", keys[w], k.seconds / (double)n * 1e6);
    /* one door per call */
    memset(&k, 0, sizeof k);
    k.component = comp;
    k.n = 1;
    t0 = now_s();
    for (i = 0; i < n / 4; i++) {
      int rc;
      lua_pushcfunction(c->L, door_body);
      lua_pushlightuserdata(c->L, &k);
      lua_pushlightuserdata(c->L, c);
      rc = chm__pcall(c->L, 2, 0, &trusted);
      if (rc != CHM_OK)
        die("door", lua_tostring(c->L, -1));
    }
    printf("gate_%s_door_us %.3f\n", keys[w],
           (now_s() - t0) / (double)(n / 4) * 1e6);
    free(comp);
    chm_instance_close(inst);
  }
  chm_meta_close(meta);
  return 0;
}

/* ===================================================================== */
/* Main                                                                   */
/* ===================================================================== */

int main(int argc, char **argv) {
  static const struct {
    const char *name;
    int nargs;
    int (*fn)(char **);
  } cmds[] = {{"prepare", 5, cmd_prepare},   {"run", 2, cmd_run},
              {"trace", 2, cmd_trace},       {"verify", 1, cmd_verify},
              {"checkout", 2, cmd_checkout}, {"guard", 2, cmd_guard},
              {"duel", 7, cmd_duel}};
  size_t i;
  setvbuf(stdout, NULL, _IOLBF, 0);
  for (i = 0; argc > 1 && i < sizeof cmds / sizeof cmds[0]; i++)
    if (strcmp(argv[1], cmds[i].name) == 0 && argc - 2 == cmds[i].nargs)
      return cmds[i].fn(argv + 2);
  fprintf(stderr, "usage: chm_bench prepare META WORKFLOW NAME OUT T | run DB "
                  "BATCH | duel E C X BATCH CHUNK TOTAL CEILING | trace DB "
                  "STEPS | verify DB | checkout DIR M | "
                  "guard DIR N\n");
  return 2;
}
