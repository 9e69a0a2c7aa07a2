/*
** bench/ceiling.c — the ceiling of `make bench`: a plain C program, linked
** with SQLite and libcrypto only, that moves the tokens of a BENCH-CHAIN
** instance (bench/gen_workflow.lua) through the chain s1..sK writing
** exactly the rows chm_run writes, with the same durability, and nothing
** else. It is what the engine would cost if its judgement, lookups and
** bookkeeping were free: the figure the engine is compared with.
**
**   ceiling DB BATCH [MAX]  run on a copy of the instance the engine runs
**                        on: BATCH moves per transaction (1 = one commit
**                        per move, like chm_run's default), at most MAX
**   ceiling DB BATCH --serve   the same in steps asked for on stdin (bench.c
**                        runs it alternately with the engine)
**
** Same as the engine (engine/src/store.c, token.c, tokenops.c, sweep.c):
** the same file (a copy of the instance: same schema, indexes, triggers,
** foreign keys, page size), the same pragmas (journal_mode=WAL,
** synchronous=FULL, foreign_keys=ON), BEGIN IMMEDIATE ... COMMIT around
** each move (or batch), the log head read at the start of each
** transaction, the token picked by the FIFO queue index, and per move the
** same write statements with the same text and values:
**
**   UPDATE UnitsOfWork (TOK_UPDATE)       PENDING -> ACTIVE, lease starts
**   INSERT Interaction_Logs (LOG_INSERT)  CHECKOUT, SHA-256 chained
**   UPDATE Local_Role_Attributes (MEMORY_TOUCH)   the memory read mark
**   INSERT UOW_Attributes (ATTR_INSERT)   n = n + 1 as a new version
**   UPDATE UnitsOfWork (TOK_UPDATE)       ACTIVE -> PENDING in the next
**                                         interaction (COMPLETED at the end)
**   INSERT Interaction_Logs (LOG_INSERT)  SUBMIT, SHA-256 chained
**
** plus the two reads the values need: the queue head (token id, version,
** checkout count) and the current value of n. The graph (roles, their
** inbound and outbound interactions and components) is read once at the
** start: it never changes after instantiation. chm_verify accepts the
** chain it writes (run.sh checks it), and the row counts equal the
** engine's.
*/
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <openssl/evp.h>
#include <sqlite3.h>

#define MAXROLES 256

typedef struct role {
  char id[37], name[128];
  char in_inter[37];                     /* its inbound interaction */
  char out_comp[37], out_comp_name[160]; /* its one outbound component */
  char out_inter[37], out_inter_name[128];
  int to_omega; /* the target is an OMEGA's inbound: COMPLETED */
} role;

static sqlite3 *db;
static char instance_id[37], actor_id[37];
static role roles[MAXROLES];
static int nroles;
static int64_t last_log_id;
static char last_hash[65];

/* The statements. The write statements are the engine's text
** (engine/src/token_int.h), byte for byte. */
enum {
  Q_HEAD,
  Q_NEXT,
  Q_TOK_UPDATE,
  Q_LOG_INSERT,
  Q_ATTR,
  Q_MEMORY_TOUCH,
  Q_ATTR_INSERT,
  Q_COUNT
};
static const char *const sql[Q_COUNT] = {
    "SELECT log_id, hash FROM Interaction_Logs ORDER BY log_id DESC LIMIT 1",
    "SELECT uow_id, version, checkout_count, entered_at, queue_seq FROM "
    "UnitsOfWork WHERE "
    "current_interaction_id = ?1 AND status = 'PENDING' ORDER BY queue_seq "
    "LIMIT 1",
    "UPDATE UnitsOfWork SET status = ?3, current_interaction_id = ?4, "
    "version = version + 1, lease_holder_actor_id = ?5, "
    "lease_expires_at = ?6, entered_at = ?7, queue_seq = ?8, "
    "checkout_count = ?9, paused_from_status = ?10, last_role_id = ?11, "
    "failure_reason = ?12, context_json = ?13, updated_at = ?14 "
    "WHERE uow_id = ?1 AND version = ?2",
    "INSERT INTO Interaction_Logs (log_id, instance_id, uow_id, actor_id, "
    "role_id, interaction_id, timestamp, from_status, to_status, event, "
    "decision, guardian_id, details, prev_hash, hash) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    "SELECT value, version FROM UOW_Attributes WHERE uow_id = ?1 AND key = "
    "'n' ORDER BY version DESC LIMIT 1",
    "UPDATE Local_Role_Attributes SET last_accessed_at = ?3 WHERE "
    "role_id = ?1 AND (actor_id IS NULL OR actor_id = ?2) AND is_toxic = 0",
    "INSERT INTO UOW_Attributes (attribute_id, uow_id, instance_id, key, "
    "value, version, actor_id, reasoning, created_at, lineage_attribute_id)"
    " VALUES (?,?,?,?,?,?,?,?,?,?)",
};
static sqlite3_stmt *st[Q_COUNT];

static void die(const char *what) {
  fprintf(stderr, "ceiling: %s: %s\n", what, db ? sqlite3_errmsg(db) : "?");
  exit(1);
}

static void exec(const char *s) {
  if (sqlite3_exec(db, s, NULL, NULL, NULL) != SQLITE_OK)
    die(s);
}

static void step_done(sqlite3_stmt *s, const char *what) {
  if (sqlite3_step(s) != SQLITE_DONE)
    die(what);
  sqlite3_reset(s);
}

static double mono_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void iso(int64_t ms, char out[96]) {
  time_t secs = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  snprintf(out, 96, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
           (int)(ms % 1000));
}

/* A version-7 UUID: 48 bits of ms, a per-ms counter, random bits from
** getrandom() (what libuuid's uuid_generate_random uses). */
static void uuid7(char out[37]) {
  static int64_t last = -1;
  static unsigned counter;
  unsigned char b[16];
  int64_t ms = now_ms();
  if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b)
    die("getrandom");
  if (ms <= last) {
    ms = last;
    if (++counter > 0xfff)
      ms = ++last, counter = 0;
  } else {
    counter = 0;
  }
  last = ms;
  b[0] = (unsigned char)(ms >> 40), b[1] = (unsigned char)(ms >> 32);
  b[2] = (unsigned char)(ms >> 24), b[3] = (unsigned char)(ms >> 16);
  b[4] = (unsigned char)(ms >> 8), b[5] = (unsigned char)ms;
  b[6] = (unsigned char)(0x70 | ((counter >> 8) & 0x0f));
  b[7] = (unsigned char)(counter & 0xff);
  b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));
  snprintf(out, 37,
           "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x"
           "%02x",
           b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
           b[11], b[12], b[13], b[14], b[15]);
}

/* The hash chain of docs/token-engine.md: hex SHA-256 of prev_hash, then
** 0x1F and each field (\N for NULL). */
static void row_hash(const char *prev, const char *const *f, int n,
                     char out[65]) {
  static const char hex[] = "0123456789abcdef";
  char buf[4096];
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0, i;
  size_t len = strlen(prev);
  int k;
  memcpy(buf, prev, len);
  for (k = 0; k < n; k++) {
    const char *v = f[k] ? f[k] : "\\N";
    size_t vl = strlen(v);
    if (len + 1 + vl >= sizeof buf) {
      fprintf(stderr, "ceiling: log row too long\n");
      exit(1);
    }
    buf[len++] = '\x1f';
    memcpy(buf + len, v, vl);
    len += vl;
  }
  if (EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
    die("sha256");
  for (i = 0; i < mdlen; i++)
    out[2 * i] = hex[md[i] >> 4], out[2 * i + 1] = hex[md[i] & 15];
  out[64] = '\0';
}

static void bind_text(sqlite3_stmt *s, int i, const char *v) {
  if (v == NULL)
    sqlite3_bind_null(s, i);
  else
    sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
}

static void bind_int(sqlite3_stmt *s, int i, int64_t v, int null) {
  if (null)
    sqlite3_bind_null(s, i);
  else
    sqlite3_bind_int64(s, i, v);
}

/* Appends one log row (the engine's chm__tk_log). */
static void log_row(const char *uow, const char *role_id, const char *inter,
                    const char *ts, const char *from, const char *to,
                    const char *event, const char *decision,
                    const char *details) {
  char id[24], hash[65];
  const char *f[13];
  sqlite3_stmt *s = st[Q_LOG_INSERT];
  int64_t log_id = last_log_id + 1;
  snprintf(id, sizeof id, "%lld", (long long)log_id);
  f[0] = id, f[1] = instance_id, f[2] = uow, f[3] = actor_id, f[4] = role_id;
  f[5] = inter, f[6] = ts, f[7] = from, f[8] = to, f[9] = event;
  f[10] = decision, f[11] = NULL, f[12] = details;
  row_hash(last_hash, f, 13, hash);
  sqlite3_bind_int64(s, 1, log_id);
  for (int k = 1; k < 13; k++)
    bind_text(s, k + 1, f[k]);
  bind_text(s, 14, last_hash);
  bind_text(s, 15, hash);
  step_done(s, "log insert");
  last_log_id = log_id;
  memcpy(last_hash, hash, sizeof hash);
}

/* UPDATE UnitsOfWork with the engine's statement and argument order. */
static void tok_update(const char *uow, int64_t version, const char *status,
                       const char *inter, const char *holder, int64_t expires,
                       int has_expiry, int64_t entered, int64_t seq,
                       int64_t count, const char *role_id, int64_t now) {
  sqlite3_stmt *s = st[Q_TOK_UPDATE];
  bind_text(s, 1, uow);
  sqlite3_bind_int64(s, 2, version);
  bind_text(s, 3, status);
  bind_text(s, 4, inter);
  bind_text(s, 5, holder);
  bind_int(s, 6, expires, !has_expiry);
  sqlite3_bind_int64(s, 7, entered);
  sqlite3_bind_int64(s, 8, seq);
  sqlite3_bind_int64(s, 9, count);
  sqlite3_bind_null(s, 10);
  bind_text(s, 11, role_id);
  sqlite3_bind_null(s, 12);
  sqlite3_bind_null(s, 13);
  sqlite3_bind_int64(s, 14, now);
  step_done(s, "token update");
  if (sqlite3_changes(db) != 1) {
    fprintf(stderr, "ceiling: token %s changed underneath\n", uow);
    exit(1);
  }
}

static void begin(void) {
  sqlite3_stmt *s = st[Q_HEAD];
  exec("BEGIN IMMEDIATE");
  if (sqlite3_step(s) == SQLITE_ROW) {
    last_log_id = sqlite3_column_int64(s, 0);
    snprintf(last_hash, sizeof last_hash, "%s", sqlite3_column_text(s, 1));
  } else {
    last_log_id = 0;
    memset(last_hash, '0', 64);
    last_hash[64] = '\0';
  }
  sqlite3_reset(s);
}

/* One move of role r: checkout, step (n = n + 1), submit. 0 = no work. */
static int move(const role *r) {
  sqlite3_stmt *s = st[Q_NEXT];
  char uow[37], aid[37], ts[96], det[1024], val[32], reasoning[200];
  int64_t version, count, entered, seq, now = now_ms(), n = 0, nver = 0;
  bind_text(s, 1, r->in_inter);
  if (sqlite3_step(s) != SQLITE_ROW) {
    sqlite3_reset(s);
    return 0;
  }
  snprintf(uow, sizeof uow, "%s", sqlite3_column_text(s, 0));
  version = sqlite3_column_int64(s, 1);
  count = sqlite3_column_int64(s, 2);
  entered = sqlite3_column_int64(s, 3);
  seq = sqlite3_column_int64(s, 4);
  sqlite3_reset(s);
  iso(now, ts);

  /* checkout: ACTIVE under the actor, a 300000 ms lease, count + 1 */
  tok_update(uow, version, "ACTIVE", r->in_inter, actor_id, now + 300000, 1,
             entered, seq, count + 1, r->id, now);
  snprintf(det, sizeof det, "{\"lease_expires_at\":%lld}",
           (long long)(now + 300000));
  log_row(uow, r->id, r->in_inter, ts, "PENDING", "ACTIVE", "CHECKOUT", NULL,
          det);

  /* the step reads n; the memory read is marked */
  s = st[Q_ATTR];
  bind_text(s, 1, uow);
  if (sqlite3_step(s) == SQLITE_ROW) {
    n = sqlite3_column_int64(s, 0);
    nver = sqlite3_column_int64(s, 1);
  }
  sqlite3_reset(s);
  s = st[Q_MEMORY_TOUCH];
  bind_text(s, 1, r->id);
  bind_text(s, 2, actor_id);
  bind_text(s, 3, ts);
  step_done(s, "memory touch");

  /* submit: n + 1 as a new version, then routed on */
  uuid7(aid);
  snprintf(val, sizeof val, "%lld", (long long)(n + 1));
  snprintf(reasoning, sizeof reasoning, "submit by 'system' as '%s'", r->name);
  s = st[Q_ATTR_INSERT];
  bind_text(s, 1, aid);
  bind_text(s, 2, uow);
  bind_text(s, 3, instance_id);
  bind_text(s, 4, "n");
  bind_text(s, 5, val);
  sqlite3_bind_int64(s, 6, nver + 1);
  bind_text(s, 7, actor_id);
  bind_text(s, 8, reasoning);
  sqlite3_bind_int64(s, 9, now);
  sqlite3_bind_null(s, 10);
  step_done(s, "attribute insert");
  tok_update(uow, version + 1, r->to_omega ? "COMPLETED" : "PENDING",
             r->out_inter, NULL, 0, 0, now, last_log_id + 1, count + 1, r->id,
             now);
  snprintf(det, sizeof det,
           "{\"role\":\"%s\",\"reason\":\"single outbound component "
           "'%s'\",\"component_id\":\"%s\",\"submit\":{\"reasoning\":\"%s\","
           "\"changed\":[\"n\"]},\"children\":0}",
           r->name, r->out_comp_name, r->out_comp, reasoning);
  log_row(uow, r->id, r->out_inter, ts, "ACTIVE",
          r->to_omega ? "COMPLETED" : "PENDING", "SUBMIT", r->out_inter_name,
          det);
  return 1;
}

/* Reads the graph once: the BETA roles with a step, in position order,
** their inbound interaction and single outbound component. */
static void load_graph(void) {
  sqlite3_stmt *s;
  if (sqlite3_prepare_v2(db, "SELECT instance_id FROM Instance_Context LIMIT 1",
                         -1, &s, NULL) != SQLITE_OK ||
      sqlite3_step(s) != SQLITE_ROW)
    die("instance");
  snprintf(instance_id, sizeof instance_id, "%s", sqlite3_column_text(s, 0));
  sqlite3_finalize(s);
  if (sqlite3_prepare_v2(db,
                         "SELECT actor_id FROM Local_Actors WHERE name = "
                         "'system'",
                         -1, &s, NULL) != SQLITE_OK ||
      sqlite3_step(s) != SQLITE_ROW)
    die("actor");
  snprintf(actor_id, sizeof actor_id, "%s", sqlite3_column_text(s, 0));
  sqlite3_finalize(s);
  if (sqlite3_prepare_v2(
          db,
          "SELECT r.role_id, r.name, ci.interaction_id, co.component_id, "
          "co.name, co.interaction_id, io.name, EXISTS (SELECT 1 FROM "
          "Local_Components c JOIN Local_Roles o USING (role_id) WHERE "
          "c.interaction_id = co.interaction_id AND c.direction = 'INBOUND' "
          "AND o.role_type = 'OMEGA') FROM Local_Roles r JOIN "
          "Local_Components ci ON ci.role_id = r.role_id AND ci.direction = "
          "'INBOUND' JOIN Local_Components co ON co.role_id = r.role_id AND "
          "co.direction = 'OUTBOUND' JOIN Local_Interactions io ON "
          "io.interaction_id = co.interaction_id WHERE r.role_type = 'BETA' "
          "AND r.step_source IS NOT NULL ORDER BY r.position",
          -1, &s, NULL) != SQLITE_OK)
    die("graph");
  while (sqlite3_step(s) == SQLITE_ROW && nroles < MAXROLES) {
    role *r = &roles[nroles++];
#define COPY(dst, i)                                                           \
  snprintf(dst, sizeof dst, "%s", (const char *)sqlite3_column_text(s, i))
    COPY(r->id, 0);
    COPY(r->name, 1);
    COPY(r->in_inter, 2);
    COPY(r->out_comp, 3);
    COPY(r->out_comp_name, 4);
    COPY(r->out_inter, 5);
    COPY(r->out_inter_name, 6);
#undef COPY
    r->to_omega = sqlite3_column_int(s, 7);
  }
  sqlite3_finalize(s);
  if (nroles == 0) {
    fprintf(stderr, "ceiling: no BETA role with a step (not BENCH-CHAIN?)\n");
    exit(1);
  }
}

/* run(max, &moves, &commits): passes over the roles, one move per role per
** pass, like chm_run, until a pass finds no work or max moves (0 = no
** limit) are made; commits what is pending at the end. */
static void run(int batch, long max, long *moves, long *commits) {
  int pending = 0, in_tx = 0, i, any;
  *moves = *commits = 0;
  do {
    any = 0;
    for (i = 0; i < nroles; i++) {
      if (max > 0 && *moves >= max)
        goto stop;
      if (!in_tx)
        begin(), in_tx = 1, pending = 0;
      if (!move(&roles[i]))
        continue;
      any = 1;
      (*moves)++;
      if (++pending >= batch) {
        exec("COMMIT");
        in_tx = 0;
        (*commits)++;
      }
    }
  } while (any);
stop:
  if (in_tx) {
    exec("COMMIT");
    if (pending > 0)
      (*commits)++;
  }
}

int main(int argc, char **argv) {
  long moves = 0, commits = 0, max = 0;
  int batch, serve = 0, i;
  double t0, dt;
  if (argc == 4 && strcmp(argv[3], "--serve") == 0)
    serve = 1;
  else if (argc == 4)
    max = atol(argv[3]);
  if (argc < 3 || argc > 4 || (batch = atoi(argv[2])) < 1) {
    fprintf(stderr, "usage: ceiling DB BATCH [MAX | --serve]\n");
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
    die(argv[1]);
  sqlite3_busy_timeout(db, 10000);
  sqlite3_extended_result_codes(db, 1);
  exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
       "PRAGMA foreign_keys=ON;");
  load_graph();
  for (i = 0; i < Q_COUNT; i++)
    if (sqlite3_prepare_v3(db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st[i],
                           NULL) != SQLITE_OK)
      die(sql[i]);
  if (serve) {
    /* bench.c's duel: a line "N" asks for N more moves; the answer is
    ** "MOVES SECONDS". */
    char line[64];
    printf("ready\n");
    while (fgets(line, sizeof line, stdin) != NULL && atol(line) > 0) {
      t0 = mono_s();
      run(batch, atol(line), &moves, &commits);
      printf("%ld %.9f\n", moves, mono_s() - t0);
    }
  } else {
    t0 = mono_s();
    run(batch, max, &moves, &commits);
    dt = mono_s() - t0;
    printf("moves %ld\n", moves);
    printf("commits %ld\n", commits);
    printf("seconds %.3f\n", dt);
    printf("moves_per_s %.0f\n", (double)moves / dt);
  }
  for (i = 0; i < Q_COUNT; i++)
    sqlite3_finalize(st[i]);
  sqlite3_close(db);
  return 0;
}
