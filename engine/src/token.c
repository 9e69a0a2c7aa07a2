/*
** token.c — the core of the token engine: its per-handle state (kept in
** a userdata of the handle's lua_State, so closing the state finalizes the
** prepared statements before the connection closes), the named statement
** list, transactions, the hash-chained log writer, set_status (the one
** function that moves a token) and attribute versions, plus the lookups
** every operation shares. The operations are in tokenops.c; design in
** docs/token-engine.md.
*/
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "token_int.h"

/* ===================================================================== */
/* Text buffer                                                            */
/* ===================================================================== */

static int buf_reserve(chm__buf *b, size_t more) {
  size_t need;
  char *np;
  if (b->oom)
    return 0;
  need = b->n + more + 1;
  if (need <= b->cap)
    return 1;
  if (need < b->cap * 2)
    need = b->cap * 2;
  if (need < 64)
    need = 64;
  if ((np = realloc(b->p, need)) == NULL) {
    b->oom = 1;
    return 0;
  }
  b->p = np;
  b->cap = need;
  return 1;
}

void chm__buf_addn(chm__buf *b, const char *s, size_t n) {
  if (!buf_reserve(b, n))
    return;
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
}

void chm__buf_add(chm__buf *b, const char *s) {
  chm__buf_addn(b, s, strlen(s));
}

void chm__buf_addf(chm__buf *b, const char *fmt, ...) {
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || !buf_reserve(b, (size_t)n))
    return;
  va_start(ap, fmt);
  vsnprintf(b->p + b->n, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->n += (size_t)n;
}

void chm__buf_jstr(chm__buf *b, const char *s) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *u = (const unsigned char *)s;
  if (s == NULL) {
    chm__buf_add(b, "null");
    return;
  }
  chm__buf_addn(b, "\"", 1);
  for (; *u; u++) {
    char esc[8];
    switch (*u) {
    case '"':
      chm__buf_addn(b, "\\\"", 2);
      break;
    case '\\':
      chm__buf_addn(b, "\\\\", 2);
      break;
    case '\n':
      chm__buf_addn(b, "\\n", 2);
      break;
    case '\r':
      chm__buf_addn(b, "\\r", 2);
      break;
    case '\t':
      chm__buf_addn(b, "\\t", 2);
      break;
    default:
      if (*u < 0x20) {
        esc[0] = '\\', esc[1] = 'u', esc[2] = '0', esc[3] = '0';
        esc[4] = hex[*u >> 4], esc[5] = hex[*u & 15];
        chm__buf_addn(b, esc, 6);
      } else {
        chm__buf_addn(b, (const char *)u, 1);
      }
    }
  }
  chm__buf_addn(b, "\"", 1);
}

char *chm__buf_take(chm__buf *b) {
  char *p = b->p;
  if (b->oom) {
    free(p);
    p = NULL;
  } else if (p == NULL) {
    p = malloc(1);
    if (p != NULL)
      *p = '\0';
  }
  memset(b, 0, sizeof *b);
  return p;
}

void chm__buf_free(chm__buf *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

/* ===================================================================== */
/* The graph cache                                                        */
/* ===================================================================== */

struct chm__memo_ent {
  chm__memo_ent *next; /* next entry in the same bucket */
  unsigned hash;       /* of kind and key */
  int kind;            /* enum chm__memo_kind */
  size_t size;         /* bytes of the value */
  const char *key;     /* NUL-terminated, stored after the value */
  max_align_t val[];   /* the value, then the key */
};

static unsigned memo_hash(int kind, const char *key) {
  unsigned h = 2166136261u ^ (unsigned)kind;
  for (; *key; key++)
    h = (h ^ (unsigned char)*key) * 16777619u;
  return h;
}

const void *chm__tk_memo_get(chm__tk *t, int kind, const char *key,
                             size_t *size) {
  unsigned h;
  chm__memo_ent *e;
  if (t->memo == NULL || key == NULL)
    return NULL;
  h = memo_hash(kind, key);
  for (e = t->memo[h & (t->memo_nb - 1)]; e != NULL; e = e->next)
    if (e->hash == h && e->kind == kind && strcmp(e->key, key) == 0) {
      if (size != NULL)
        *size = e->size;
      return e->val;
    }
  return NULL;
}

/* Doubles the buckets (or makes the first 64); 0, or -1 out of memory. */
static int memo_grow(chm__tk *t) {
  size_t nb = t->memo_nb ? t->memo_nb * 2 : 64, i;
  chm__memo_ent **b = calloc(nb, sizeof *b);
  if (b == NULL)
    return -1;
  for (i = 0; i < t->memo_nb; i++) {
    chm__memo_ent *e = t->memo[i], *next;
    for (; e != NULL; e = next) {
      next = e->next;
      e->next = b[e->hash & (nb - 1)];
      b[e->hash & (nb - 1)] = e;
    }
  }
  free(t->memo);
  t->memo = b;
  t->memo_nb = nb;
  return 0;
}

void chm__tk_memo_put(chm__tk *t, int kind, const char *key, const void *val,
                      size_t size) {
  size_t klen;
  chm__memo_ent *e;
  char *k;
  if (key == NULL || chm__tk_memo_get(t, kind, key, NULL) != NULL)
    return;
  if (t->memo_n >= t->memo_nb && memo_grow(t) != 0)
    return;
  klen = strlen(key);
  if ((e = malloc(sizeof *e + size + klen + 1)) == NULL)
    return;
  k = (char *)e->val + size;
  memcpy(e->val, val, size);
  memcpy(k, key, klen + 1);
  e->key = k;
  e->kind = kind;
  e->size = size;
  e->hash = memo_hash(kind, key);
  e->next = t->memo[e->hash & (t->memo_nb - 1)];
  t->memo[e->hash & (t->memo_nb - 1)] = e;
  t->memo_n++;
}

static void memo_free(chm__tk *t) {
  size_t i;
  for (i = 0; i < t->memo_nb; i++) {
    chm__memo_ent *e = t->memo[i], *next;
    for (; e != NULL; e = next) {
      next = e->next;
      free(e);
    }
  }
  free(t->memo);
  t->memo = NULL;
  t->memo_nb = t->memo_n = 0;
}

/* ===================================================================== */
/* Per-handle state                                                       */
/* ===================================================================== */

static const char state_key = 's'; /* registry: the chm__tk userdata */

static const char *const q_sql[] = {
#define XX(name, sql) sql,
    CHM__TK_SQL(XX)
#undef XX
};

static const char *const q_name[] = {
#define XX(name, sql) #name,
    CHM__TK_SQL(XX)
#undef XX
};

/* __gc of the state: finalize every statement (the connection is still
** open: chm__core_close closes the lua_State first) and free the graph
** cache. */
static int state_gc(lua_State *L) {
  chm__tk *t = lua_touserdata(L, 1);
  int i;
  for (i = 0; i < CHM__Q_COUNT; i++) {
    if (t->st[i] != NULL)
      sqlite3_finalize(t->st[i]);
    t->st[i] = NULL;
  }
  memo_free(t);
  return 0;
}

/* state_new(inst) -> userdata   [-1, +1, m] (run through the door) */
static int state_new(lua_State *L) {
  chm_instance *inst = lua_touserdata(L, 1);
  chm__tk *t = lua_newuserdatauv(L, sizeof *t, 0);
  memset(t, 0, sizeof *t);
  t->inst = inst;
  t->c = chm__instance_core(inst);
  t->lease_ms = 300000;
  t->iso_ms = CHM__NULL_INT;
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, state_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushliteral(L, "chameleon.tokens");
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &state_key);
  return 1;
}

int chm__tk_open(chm_instance *inst, chm__tk **out) {
  chm__core *c;
  lua_State *L;
  chm__tk *t;
  int top, rc;
  *out = NULL;
  if (inst == NULL)
    return CHM_MISUSE;
  c = chm__instance_core(inst);
  if (c == NULL || c->L == NULL || c->db == NULL)
    return CHM_MISUSE;
  free(c->errmsg);
  c->errmsg = NULL;
  L = c->L;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &state_key);
  t = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (t == NULL) {
    top = lua_gettop(L);
    lua_pushcfunction(L, state_new);
    lua_pushlightuserdata(L, inst);
    rc = chm__pcall(L, 1, 1, NULL);
    t = rc == CHM_OK ? lua_touserdata(L, -1) : NULL;
    lua_settop(L, top);
    if (t == NULL)
      return chm__core_seterr(c, CHM_NOMEM,
                              "out of memory starting the "
                              "token engine");
  }
  t->inst = inst;
  t->c = c;
  t->dbrc = CHM_OK;
  *out = t;
  return CHM_OK;
}

int chm_set_lease_ms(chm_instance *inst, int64_t ms) {
  chm__tk *t;
  int rc = chm__tk_open(inst, &t);
  if (rc != CHM_OK)
    return rc;
  /* bounded so now + lease never overflows (the clock is bounded too) */
  if (ms <= 0 || ms > CHM_LEASE_MAX_MS)
    return chm__tk_err(t, CHM_MISUSE,
                       "lease length %lld ms is out of range: give 1 to "
                       "%lld ms (366 days)",
                       (long long)ms, (long long)CHM_LEASE_MAX_MS);
  t->lease_ms = ms;
  return CHM_OK;
}

int chm__tk_err(chm__tk *t, int rc, const char *fmt, ...) {
  va_list ap;
  char *s = NULL;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n >= 0 && (s = malloc((size_t)n + 1)) != NULL) {
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
  }
  free(t->c->errmsg);
  t->c->errmsg = s;
  return rc;
}

int chm__tk_dberr(chm__tk *t, int q) {
  char what[64], *msg = NULL;
  snprintf(what, sizeof what, "database error (%s)",
           q >= 0 && q < CHM__Q_COUNT ? q_name[q] : "?");
  t->dbrc = chm__store_status(t->c->db, what, &msg);
  if (msg != NULL) {
    free(t->c->errmsg);
    t->c->errmsg = msg;
    return t->dbrc;
  }
  return chm__tk_err(t, t->dbrc, "%s: %s", what, sqlite3_errmsg(t->c->db));
}

int chm__tk_dbrc(chm__tk *t) { return t->dbrc != CHM_OK ? t->dbrc : CHM_DB; }

/* ===================================================================== */
/* Statements                                                             */
/* ===================================================================== */

static sqlite3_stmt *stmt(chm__tk *t, int q) {
  if (t->st[q] == NULL &&
      sqlite3_prepare_v3(t->c->db, q_sql[q], -1, SQLITE_PREPARE_PERSISTENT,
                         &t->st[q], NULL) != SQLITE_OK) {
    chm__tk_dberr(t, q);
    t->st[q] = NULL;
  }
  return t->st[q];
}

/* vbind(t, q, st, fmt, ap, how): binds the arguments; text with `how`,
** SQLITE_STATIC where the caller steps and resets st before it returns
** (the arguments outlive the statement's use of them), else
** SQLITE_TRANSIENT. */
static int vbind(chm__tk *t, int q, sqlite3_stmt *st, const char *fmt,
                 va_list ap, sqlite3_destructor_type how) {
  int i, rc = SQLITE_OK;
  if ((size_t)sqlite3_bind_parameter_count(st) != strlen(fmt)) {
    chm__tk_err(t, CHM_MISUSE,
                "internal: statement %s takes %d parameters, "
                "not %d",
                q_name[q], sqlite3_bind_parameter_count(st), (int)strlen(fmt));
    return -1;
  }
  for (i = 1; fmt[i - 1] != '\0' && rc == SQLITE_OK; i++) {
    switch (fmt[i - 1]) {
    case 's': {
      const char *s = va_arg(ap, const char *);
      rc = s != NULL ? sqlite3_bind_text(st, i, s, -1, how)
                     : sqlite3_bind_null(st, i);
      break;
    }
    case 'i': {
      int64_t v = va_arg(ap, int64_t);
      rc = v == CHM__NULL_INT ? sqlite3_bind_null(st, i)
                              : sqlite3_bind_int64(st, i, v);
      break;
    }
    case 'd':
      rc = sqlite3_bind_int(st, i, va_arg(ap, int));
      break;
    default:
      rc = SQLITE_MISUSE;
    }
  }
  if (rc != SQLITE_OK) {
    chm__tk_dberr(t, q);
    chm__tk_reset(st);
    return -1;
  }
  return 0;
}

/* vq(t, q, fmt, ap, destructor) -> statement q, reset and bound, or NULL
** with the message set: what chm__tk_q, chm__tk_exec and chm__tk_one_text
** share. */
static sqlite3_stmt *vq(chm__tk *t, int q, const char *fmt, va_list ap,
                        sqlite3_destructor_type destructor) {
  sqlite3_stmt *st = stmt(t, q);
  if (st == NULL)
    return NULL;
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return vbind(t, q, st, fmt, ap, destructor) ? NULL : st;
}

sqlite3_stmt *chm__tk_q(chm__tk *t, int q, const char *fmt, ...) {
  sqlite3_stmt *st;
  va_list ap;
  va_start(ap, fmt);
  st = vq(t, q, fmt, ap, SQLITE_TRANSIENT);
  va_end(ap);
  return st;
}

int chm__tk_step(chm__tk *t, int q, sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW || rc == SQLITE_DONE)
    return rc;
  chm__tk_dberr(t, q);
  chm__tk_reset(st);
  return -1;
}

void chm__tk_reset(sqlite3_stmt *st) {
  if (st == NULL)
    return;
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
}

int chm__tk_exec(chm__tk *t, int q, const char *fmt, ...) {
  sqlite3_stmt *st;
  va_list ap;
  int rc;
  va_start(ap, fmt);
  st = vq(t, q, fmt, ap, SQLITE_STATIC);
  va_end(ap);
  if (st == NULL)
    return chm__tk_dbrc(t);
  rc = chm__tk_step(t, q, st);
  if (rc < 0)
    return chm__tk_dbrc(t);
  chm__tk_reset(st);
  return CHM_OK;
}

int chm__tk_one_text(chm__tk *t, int q, char **out, const char *fmt, ...) {
  sqlite3_stmt *st;
  va_list ap;
  int rc;
  *out = NULL;
  va_start(ap, fmt);
  st = vq(t, q, fmt, ap, SQLITE_STATIC);
  va_end(ap);
  if (st == NULL)
    return chm__tk_dbrc(t);
  rc = chm__tk_step(t, q, st);
  if (rc < 0)
    return chm__tk_dbrc(t);
  if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
    const char *s = (const char *)sqlite3_column_text(st, 0);
    if (s != NULL && (*out = strdup(s)) == NULL) {
      chm__tk_reset(st);
      return chm__tk_err(t, CHM_NOMEM, "out of memory");
    }
  }
  chm__tk_reset(st);
  return CHM_OK;
}

const char *chm__tk_col(sqlite3_stmt *st, int i) {
  if (sqlite3_column_type(st, i) == SQLITE_NULL)
    return NULL;
  return (const char *)sqlite3_column_text(st, i);
}

static int64_t col_int(sqlite3_stmt *st, int i) {
  if (sqlite3_column_type(st, i) == SQLITE_NULL)
    return CHM__NULL_INT;
  return sqlite3_column_int64(st, i);
}

void chm__tk_cpy(char *dst, size_t size, const char *src) {
  size_t n;
  if (src == NULL)
    src = "";
  n = strlen(src);
  if (n >= size)
    n = size - 1;
  memcpy(dst, src, n);
  dst[n] = '\0';
}

void chm__tk_iso(int64_t ms, char out[32]) {
  time_t secs = (time_t)(ms / 1000);
  struct tm tm;
  char tmp[96];
  if (ms < 0)
    secs = 0, ms = 0;
  gmtime_r(&secs, &tm);
  snprintf(tmp, sizeof tmp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
           tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
           tm.tm_sec, (int)(ms % 1000));
  chm__tk_cpy(out, 32, tmp);
}

/* now_iso(t, out): chm__tk_iso(t->now), formatted once per instant. */
static void now_iso(chm__tk *t, char out[32]) {
  if (t->iso_ms != t->now) {
    chm__tk_iso(t->now, t->iso);
    t->iso_ms = t->now;
  }
  memcpy(out, t->iso, 32);
}

/* ===================================================================== */
/* Transactions                                                           */
/* ===================================================================== */

/* tx_exec(t, q) -> CHM_OK or chm__tk_dbrc(t): one of the transaction statements
** (BEGIN_WRITE ... RELEASE), prepared once like the others; the message
** names its SQL text. */
static int tx_exec(chm__tk *t, int q) {
  sqlite3_stmt *st = stmt(t, q);
  int rc = st != NULL ? sqlite3_step(st) : SQLITE_ERROR;
  if (rc != SQLITE_DONE) {
    char what[64], *msg = NULL;
    snprintf(what, sizeof what, "database error (%s)", q_sql[q]);
    t->dbrc = chm__store_status(t->c->db, what, &msg);
    if (msg != NULL) {
      free(t->c->errmsg);
      t->c->errmsg = msg;
    } else {
      chm__tk_err(t, t->dbrc, "%s: %s", what, sqlite3_errmsg(t->c->db));
    }
    if (st != NULL)
      sqlite3_reset(st);
    return t->dbrc;
  }
  sqlite3_reset(st);
  return CHM_OK;
}

/* Reads the log head into the state. */
static int read_log_head(chm__tk *t) {
  sqlite3_stmt *st = chm__tk_q(t, CHM__Q_LAST_LOG, "");
  int rc;
  if (st == NULL)
    return chm__tk_dbrc(t);
  rc = chm__tk_step(t, CHM__Q_LAST_LOG, st);
  if (rc < 0)
    return chm__tk_dbrc(t);
  if (rc == SQLITE_ROW) {
    t->last_log_id = sqlite3_column_int64(st, 0);
    chm__tk_cpy(t->last_hash, sizeof t->last_hash, chm__tk_col(st, 1));
  } else {
    t->last_log_id = 0;
    memset(t->last_hash, '0', 64);
    t->last_hash[64] = '\0';
  }
  chm__tk_reset(st);
  return CHM_OK;
}

int chm__tk_begin(chm__tk *t, int writing) {
  sqlite3_stmt *st;
  int rc;
  if (t->in_tx || !sqlite3_get_autocommit(t->c->db))
    return chm__tk_err(t, CHM_MISUSE,
                       "a transaction is already open on "
                       "this handle");
  if (tx_exec(t, writing ? CHM__Q_BEGIN_WRITE : CHM__Q_BEGIN_READ) != CHM_OK)
    return chm__tk_dbrc(t);
  t->in_tx = 1;
  t->now = chm__now_ms();
  if ((st = chm__tk_q(t, CHM__Q_CTX, "")) == NULL)
    goto fail;
  rc = chm__tk_step(t, CHM__Q_CTX, st);
  if (rc < 0)
    goto fail;
  if (rc != SQLITE_ROW) {
    chm__tk_reset(st);
    chm__tk_rollback(t);
    return chm__tk_err(t, CHM_CORRUPT,
                       "this instance store has no "
                       "Instance_Context row (it was never "
                       "instantiated)");
  }
  chm__tk_cpy(t->instance_id, sizeof t->instance_id, chm__tk_col(st, 0));
  chm__tk_cpy(t->instance_name, sizeof t->instance_name, chm__tk_col(st, 1));
  chm__tk_cpy(t->instance_status, sizeof t->instance_status,
              chm__tk_col(st, 2));
  chm__tk_reset(st);
  if (writing == 1 && strcmp(t->instance_status, "ACTIVE") != 0) {
    chm__tk_rollback(t);
    return chm__tk_err(t, CHM_STATE,
                       "instance '%s' is %s; resume it first "
                       "(only queries work while it is %s)",
                       t->instance_name, t->instance_status,
                       t->instance_status);
  }
  if (read_log_head(t) != CHM_OK)
    goto fail;
  return CHM_OK;
fail:
  chm__tk_rollback(t);
  return chm__tk_dbrc(t);
}

void chm__tk_op_start(chm__tk *t) { t->now = chm__now_ms(); }

int chm__tk_commit(chm__tk *t) {
  int rc = tx_exec(t, CHM__Q_COMMIT);
  if (rc != CHM_OK) {
    chm__tk_rollback(t);
    return rc;
  }
  t->in_tx = 0;
  return CHM_OK;
}

void chm__tk_rollback(chm__tk *t) {
  if (!sqlite3_get_autocommit(t->c->db))
    sqlite3_exec(t->c->db, "ROLLBACK", NULL, NULL, NULL);
  t->in_tx = 0;
}

int chm__tk_savepoint(chm__tk *t, chm__tk_save *save) {
  save->last_log_id = t->last_log_id;
  memcpy(save->last_hash, t->last_hash, sizeof save->last_hash);
  return tx_exec(t, CHM__Q_SAVEPOINT);
}

int chm__tk_release(chm__tk *t) { return tx_exec(t, CHM__Q_RELEASE); }

void chm__tk_rollback_to(chm__tk *t, const chm__tk_save *save) {
  sqlite3_exec(t->c->db, "ROLLBACK TO chm_op; RELEASE chm_op", NULL, NULL,
               NULL);
  t->last_log_id = save->last_log_id;
  memcpy(t->last_hash, save->last_hash, sizeof t->last_hash);
}

/* ===================================================================== */
/* The hash-chained log                                                   */
/* ===================================================================== */

int chm__tk_row_hash(const char *prev_hash, const char *const *fields, int n,
                     char out[65]) {
  char stack[2048], *buf, *p;
  const char *f;
  size_t size, len;
  int i, rc;
  /* the text is measured first, and usually fits on the stack */
  size = strlen(prev_hash != NULL ? prev_hash : "\\N");
  for (i = 0; i < n; i++)
    size += 1 + strlen(fields[i] != NULL ? fields[i] : "\\N");
  buf = size <= sizeof stack ? stack : malloc(size);
  if (buf == NULL) {
    out[0] = '\0';
    return -1;
  }
  f = prev_hash != NULL ? prev_hash : "\\N";
  len = strlen(f);
  memcpy(buf, f, len);
  p = buf + len;
  for (i = 0; i < n; i++) {
    f = fields[i] != NULL ? fields[i] : "\\N";
    len = strlen(f);
    *p++ = '\x1f';
    memcpy(p, f, len);
    p += len;
  }
  rc = chm__sha256_hex(buf, size, out);
  if (buf != stack)
    free(buf);
  return rc;
}

int chm__tk_log(chm__tk *t, const chm__logrow *r) {
  char id[24], ts[32], hash[65];
  const char *f[13];
  int64_t log_id = t->last_log_id + 1;
  snprintf(id, sizeof id, "%lld", (long long)log_id);
  now_iso(t, ts);
  f[0] = id, f[1] = t->instance_id, f[2] = r->uow_id, f[3] = r->actor_id;
  f[4] = r->role_id, f[5] = r->interaction_id, f[6] = ts;
  f[7] = r->from_status, f[8] = r->to_status, f[9] = r->event;
  f[10] = r->decision, f[11] = r->guardian_id, f[12] = r->details;
  if (chm__tk_row_hash(t->last_hash, f, 13, hash) != 0)
    return chm__tk_err(t, CHM_NOMEM, "cannot hash a log row (libcrypto)");
  if (chm__tk_exec(t, CHM__Q_LOG_INSERT, "issssssssssssss", log_id,
                   t->instance_id, r->uow_id, r->actor_id, r->role_id,
                   r->interaction_id, ts, r->from_status, r->to_status,
                   r->event, r->decision, r->guardian_id, r->details,
                   t->last_hash, hash) != CHM_OK)
    return chm__tk_dbrc(t);
  t->last_log_id = log_id;
  memcpy(t->last_hash, hash, sizeof hash);
  return CHM_OK;
}

/* ===================================================================== */
/* Tokens                                                                 */
/* ===================================================================== */

static const char *nz(const char *s) { return s != NULL && *s ? s : NULL; }

void chm__tok_clear(chm__tok *tok) {
  free(tok->failure_reason);
  free(tok->context);
  memset(tok, 0, sizeof *tok);
}

static char *dup_or_null(const char *s) { return s != NULL ? strdup(s) : NULL; }

int chm__tk_tok_row(chm__tk *t, sqlite3_stmt *st, chm__tok *tok) {
  int rc;
  chm__tok_clear(tok);
  chm__tk_cpy(tok->uow_id, CHM__ID, chm__tk_col(st, 0));
  chm__tk_cpy(tok->workflow_id, CHM__ID, chm__tk_col(st, 1));
  chm__tk_cpy(tok->parent_id, CHM__ID, chm__tk_col(st, 2));
  chm__tk_cpy(tok->interaction_id, CHM__ID, chm__tk_col(st, 3));
  chm__tk_cpy(tok->status, sizeof tok->status, chm__tk_col(st, 4));
  tok->child_count = sqlite3_column_int64(st, 5);
  tok->finished_child_count = sqlite3_column_int64(st, 6);
  tok->version = sqlite3_column_int64(st, 7);
  chm__tk_cpy(tok->lease_holder, CHM__ID, chm__tk_col(st, 8));
  tok->lease_expires_at = col_int(st, 9);
  tok->entered_at = sqlite3_column_int64(st, 10);
  tok->queue_seq = sqlite3_column_int64(st, 11);
  tok->checkout_count = sqlite3_column_int64(st, 12);
  tok->max_interactions = col_int(st, 13);
  chm__tk_cpy(tok->paused_from, sizeof tok->paused_from, chm__tk_col(st, 14));
  chm__tk_cpy(tok->last_role_id, CHM__ID, chm__tk_col(st, 15));
  tok->failure_reason = dup_or_null(chm__tk_col(st, 16));
  chm__tk_cpy(tok->return_uow_id, CHM__ID, chm__tk_col(st, 17));
  tok->context = dup_or_null(chm__tk_col(st, 18));
  tok->created_at = sqlite3_column_int64(st, 19);
  rc = (chm__tk_col(st, 16) != NULL && tok->failure_reason == NULL) ||
       (chm__tk_col(st, 18) != NULL && tok->context == NULL);
  if (rc)
    return chm__tk_err(t, CHM_NOMEM, "out of memory");
  return CHM_OK;
}

int chm__tk_load(chm__tk *t, const char *uow_id, chm__tok *tok) {
  sqlite3_stmt *st;
  int rc;
  chm__tok_clear(tok);
  if ((st = chm__tk_q(t, CHM__Q_TOK_LOAD, "s", uow_id)) == NULL)
    return chm__tk_dbrc(t);
  rc = chm__tk_step(t, CHM__Q_TOK_LOAD, st);
  if (rc < 0)
    return chm__tk_dbrc(t);
  if (rc != SQLITE_ROW) {
    chm__tk_reset(st);
    return chm__tk_err(t, CHM_NOTFOUND, "no token '%s' in instance '%s'",
                       uow_id, t->instance_name);
  }
  rc = chm__tk_tok_row(t, st, tok);
  chm__tk_reset(st);
  return rc;
}

int chm__is_finished(const char *s) {
  return strcmp(s, "COMPLETED") == 0 || strcmp(s, "REMEDIATED") == 0 ||
         strcmp(s, "FINALIZED") == 0;
}

/* Statuses in which a token waits in a queue (its entered_at counts). */
static int is_waiting(const char *s) {
  return strcmp(s, "ACTIVE") != 0 && strcmp(s, "PAUSED") != 0 &&
         strcmp(s, "FINALIZED") != 0 && strcmp(s, "ARCHIVED") != 0;
}

int chm__tk_set_status(chm__tk *t, chm__tok *tok, const char *status,
                       const char *interaction_id, const chm__move *m) {
  char from[20], to_inter[CHM__ID], holder[CHM__ID], role[CHM__ID];
  int64_t expires = tok->lease_expires_at, entered = tok->entered_at;
  int64_t seq = tok->queue_seq, count = tok->checkout_count;
  const char *paused_from = NULL, *reason;
  int requeue, d, clear;
  chm__logrow r;

  chm__tk_cpy(from, sizeof from, tok->status);
  chm__tk_cpy(to_inter, sizeof to_inter,
              interaction_id != NULL ? interaction_id : tok->interaction_id);
  chm__tk_cpy(holder, sizeof holder, tok->lease_holder);
  chm__tk_cpy(role, sizeof role,
              m->role_id != NULL ? m->role_id : tok->last_role_id);
  requeue = strcmp(to_inter, tok->interaction_id) != 0 ||
            (is_waiting(status) && strcmp(status, from) != 0);
  if (requeue) {
    entered = t->now;
    seq = t->last_log_id + 1; /* the id of the log row written below */
  }
  switch (m->lease) {
  case CHM__LEASE_CLEAR:
    holder[0] = '\0';
    expires = CHM__NULL_INT;
    break;
  case CHM__LEASE_START:
    chm__tk_cpy(holder, sizeof holder, m->actor_id);
    expires = t->now + t->lease_ms;
    break;
  case CHM__LEASE_OPEN:
    chm__tk_cpy(holder, sizeof holder, m->actor_id);
    expires = CHM__NULL_INT;
    break;
  case CHM__LEASE_RENEW:
    if (expires != CHM__NULL_INT)
      expires = t->now + t->lease_ms;
    break;
  default:
    break;
  }
  if (m->checkout > 0)
    count++;
  if (m->checkout < 0)
    count = 0;
  if (strcmp(status, "PAUSED") == 0)
    paused_from = from;
  /* A token back on the normal path (PENDING, or finished) no longer
  ** carries its last failure; the log keeps the history. ACTIVE keeps it:
  ** the Epsilon or Tau holding the token is treating that failure. */
  clear = m->failure_reason == NULL &&
          (strcmp(status, "PENDING") == 0 || chm__is_finished(status));
  reason = m->failure_reason != NULL ? m->failure_reason
           : clear                   ? NULL
                                     : tok->failure_reason;

  if (chm__tk_exec(t, CHM__Q_TOK_UPDATE, "sisssiiiissssi", tok->uow_id,
                   tok->version, status, to_inter, nz(holder), expires, entered,
                   seq, count, paused_from, nz(role), reason, tok->context,
                   t->now) != CHM_OK)
    return chm__tk_dbrc(t);
  if (sqlite3_changes(t->c->db) != 1)
    return chm__tk_err(t, CHM_CONFLICT,
                       "token %s changed during this "
                       "operation (expected version %lld)",
                       tok->uow_id, (long long)tok->version);
  d = chm__is_finished(status) - chm__is_finished(from);
  if (tok->parent_id[0] != '\0' && d != 0 &&
      chm__tk_exec(t, CHM__Q_TOK_COUNTS, "siii", tok->parent_id, (int64_t)0,
                   (int64_t)d, t->now) != CHM_OK)
    return chm__tk_dbrc(t);

  memset(&r, 0, sizeof r);
  r.uow_id = tok->uow_id;
  r.actor_id = nz(m->actor_id);
  r.role_id = nz(role);
  r.interaction_id = to_inter;
  r.from_status = from;
  r.to_status = status;
  r.event = m->event;
  r.decision = m->decision;
  r.details = m->details;
  if (chm__tk_log(t, &r) != CHM_OK)
    return chm__tk_dbrc(t);

  /* the in-memory copy follows the row */
  if (m->failure_reason != NULL) {
    char *fr = strdup(m->failure_reason);
    if (fr == NULL)
      return chm__tk_err(t, CHM_NOMEM, "out of memory");
    free(tok->failure_reason);
    tok->failure_reason = fr;
  } else if (clear) {
    free(tok->failure_reason);
    tok->failure_reason = NULL;
  }
  chm__tk_cpy(tok->status, sizeof tok->status, status);
  chm__tk_cpy(tok->interaction_id, CHM__ID, to_inter);
  chm__tk_cpy(tok->lease_holder, CHM__ID, holder);
  chm__tk_cpy(tok->last_role_id, CHM__ID, role);
  chm__tk_cpy(tok->paused_from, sizeof tok->paused_from, paused_from);
  tok->version++;
  tok->lease_expires_at = expires;
  tok->entered_at = entered;
  tok->queue_seq = seq;
  tok->checkout_count = count;
  return CHM_OK;
}

/* ===================================================================== */
/* Attributes                                                             */
/* ===================================================================== */

void chm__attrs_free(chm__attrs *a) {
  int i;
  for (i = 0; i < a->n; i++) {
    free(a->v[i].key);
    free(a->v[i].value);
    free(a->v[i].attribute_id);
  }
  free(a->v);
  memset(a, 0, sizeof *a);
}

int chm__attrs_set(chm__attrs *a, const char *key, const char *value,
                   const char *attribute_id, int64_t version) {
  int lo = 0, hi = a->n, i;
  char *k = NULL, *v = NULL, *id = NULL;
  while (lo < hi) {
    int mid = (lo + hi) / 2, c = strcmp(a->v[mid].key, key);
    if (c == 0) {
      lo = mid;
      break;
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  if ((value != NULL && (v = strdup(value)) == NULL) ||
      (id = strdup(attribute_id)) == NULL)
    goto oom;
  if (lo < a->n && strcmp(a->v[lo].key, key) == 0) {
    free(a->v[lo].value);
    free(a->v[lo].attribute_id);
    a->v[lo].value = v;
    a->v[lo].attribute_id = id;
    a->v[lo].version = version;
    return 0;
  }
  if ((k = strdup(key)) == NULL)
    goto oom;
  if (a->n == a->cap) {
    int cap = a->cap ? a->cap * 2 : 8;
    chm__attr *nv = realloc(a->v, (size_t)cap * sizeof *nv);
    if (nv == NULL)
      goto oom;
    a->v = nv;
    a->cap = cap;
  }
  for (i = a->n; i > lo; i--)
    a->v[i] = a->v[i - 1];
  a->v[lo].key = k;
  a->v[lo].value = v;
  a->v[lo].attribute_id = id;
  a->v[lo].version = version;
  a->n++;
  return 0;
oom:
  free(k);
  free(v);
  free(id);
  return -1;
}

const chm__attr *chm__attrs_find(const chm__attrs *a, const char *key) {
  int lo = 0, hi = a->n;
  while (lo < hi) {
    int mid = (lo + hi) / 2, c = strcmp(a->v[mid].key, key);
    if (c == 0)
      return &a->v[mid];
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

int chm__tk_attrs_load(chm__tk *t, const char *uow_id, chm__attrs *a) {
  sqlite3_stmt *st;
  int rc;
  memset(a, 0, sizeof *a);
  if ((st = chm__tk_q(t, CHM__Q_ATTR_CURRENT, "s", uow_id)) == NULL)
    return chm__tk_dbrc(t);
  while ((rc = chm__tk_step(t, CHM__Q_ATTR_CURRENT, st)) == SQLITE_ROW) {
    if (chm__attrs_set(a, chm__tk_col(st, 0), chm__tk_col(st, 1),
                       chm__tk_col(st, 3), sqlite3_column_int64(st, 2)) != 0) {
      chm__tk_reset(st);
      chm__attrs_free(a);
      return chm__tk_err(t, CHM_NOMEM, "out of memory");
    }
  }
  if (rc < 0) {
    chm__attrs_free(a);
    return chm__tk_dbrc(t);
  }
  chm__tk_reset(st);
  return CHM_OK;
}

int chm__tk_attr_put(chm__tk *t, const char *uow_id, chm__attrs *cur,
                     const char *key, const char *value, const char *actor_id,
                     const char *reasoning, const char *lineage, int *changed) {
  const chm__attr *a = cur != NULL ? chm__attrs_find(cur, key) : NULL;
  int64_t version = a != NULL ? a->version + 1 : 1;
  char id[CHM__ID];
  if (changed != NULL)
    *changed = 0;
  if (a != NULL && a->value != NULL && value != NULL &&
      strcmp(a->value, value) == 0)
    return CHM_OK;
  chm__uuid7(id);
  if (chm__tk_exec(t, CHM__Q_ATTR_INSERT, "sssssissis", id, uow_id,
                   t->instance_id, key, value, version, nz(actor_id), reasoning,
                   t->now, lineage) != CHM_OK)
    return chm__tk_dbrc(t);
  if (cur != NULL && chm__attrs_set(cur, key, value, id, version) != 0)
    return chm__tk_err(t, CHM_NOMEM, "out of memory");
  if (changed != NULL)
    *changed = 1;
  return CHM_OK;
}

/* ===================================================================== */
/* Lookups                                                                */
/* ===================================================================== */

int chm__tk_actor(chm__tk *t, const char *name, char id[CHM__ID],
                  char *name_out, size_t name_size) {
  sqlite3_stmt *st = chm__tk_q(t, CHM__Q_ACTOR, "s", name);
  int rc;
  if (st == NULL)
    return chm__tk_dbrc(t);
  rc = chm__tk_step(t, CHM__Q_ACTOR, st);
  if (rc < 0)
    return chm__tk_dbrc(t);
  if (rc != SQLITE_ROW) {
    chm__tk_reset(st);
    return chm__tk_err(t, CHM_NOTFOUND, "no actor '%s' in instance '%s'", name,
                       t->instance_name);
  }
  chm__tk_cpy(id, CHM__ID, chm__tk_col(st, 0));
  if (name_out != NULL)
    chm__tk_cpy(name_out, name_size, chm__tk_col(st, 1));
  chm__tk_reset(st);
  return CHM_OK;
}

int chm__tk_who(chm__tk *t, const char *name, int required, chm__who *w) {
  int rc;
  memset(w, 0, sizeof *w);
  if (name == NULL) {
    if (required)
      return chm__tk_err(t, CHM_MISUSE, "no actor given");
    name = "system";
  }
  rc = chm__tk_actor(t, name, w->id, w->name, sizeof w->name);
  if (rc == CHM_NOTFOUND && !required && strcmp(name, "system") == 0) {
    w->id[0] = '\0';
    chm__tk_cpy(w->name, sizeof w->name, "system");
    return CHM_OK;
  }
  return rc;
}

static void role_row(sqlite3_stmt *st, chm__role *r) {
  memset(r, 0, sizeof *r);
  chm__tk_cpy(r->id, CHM__ID, chm__tk_col(st, 0));
  chm__tk_cpy(r->workflow_id, CHM__ID, chm__tk_col(st, 1));
  chm__tk_cpy(r->name, sizeof r->name, chm__tk_col(st, 2));
  chm__tk_cpy(r->type, sizeof r->type, chm__tk_col(st, 3));
  chm__tk_cpy(r->strategy, sizeof r->strategy, chm__tk_col(st, 4));
  r->gateway = sqlite3_column_int(st, 5);
  chm__tk_cpy(r->linked_workflow, CHM__ID, chm__tk_col(st, 6));
  r->has_step = sqlite3_column_int(st, 7);
  chm__tk_cpy(r->workflow, sizeof r->workflow, chm__tk_col(st, 8));
}

int chm__tk_role_by_id(chm__tk *t, const char *role_id, chm__role *r) {
  const chm__role *m = chm__tk_memo_get(t, CHM__M_ROLE, role_id, NULL);
  sqlite3_stmt *st;
  int rc;
  if (m != NULL) {
    *r = *m;
    return CHM_OK;
  }
  st = chm__tk_q(t, CHM__Q_ROLE_BY_ID, "s", role_id);
  if (st == NULL)
    return chm__tk_dbrc(t);
  rc = chm__tk_step(t, CHM__Q_ROLE_BY_ID, st);
  if (rc < 0)
    return chm__tk_dbrc(t);
  if (rc != SQLITE_ROW) {
    chm__tk_reset(st);
    return chm__tk_err(t, CHM_NOTFOUND, "no role '%s' in instance '%s'",
                       role_id, t->instance_name);
  }
  role_row(st, r);
  chm__tk_reset(st);
  chm__tk_memo_put(t, CHM__M_ROLE, role_id, r, sizeof *r);
  return CHM_OK;
}

int chm__tk_role(chm__tk *t, const char *spec, const char *actor_id,
                 chm__role *r) {
  const char *slash = strchr(spec, '/');
  sqlite3_stmt *st;
  chm__buf wfs = {0};
  chm__role first, active;
  int rc, n = 0, nactive = 0;
  if (strlen(spec) == 36) {
    rc = chm__tk_role_by_id(t, spec, r);
    if (rc != CHM_NOTFOUND)
      return rc;
  }
  if (slash != NULL) {
    char wf[256];
    size_t len = (size_t)(slash - spec);
    if (len >= sizeof wf)
      len = sizeof wf - 1;
    memcpy(wf, spec, len);
    wf[len] = '\0';
    if ((st = chm__tk_q(t, CHM__Q_ROLE_QUALIFIED, "ss", wf, slash + 1)) == NULL)
      return chm__tk_dbrc(t);
    rc = chm__tk_step(t, CHM__Q_ROLE_QUALIFIED, st);
    if (rc < 0)
      return chm__tk_dbrc(t);
    if (rc == SQLITE_ROW) {
      role_row(st, r);
      chm__tk_reset(st);
      return CHM_OK;
    }
    chm__tk_reset(st);
    /* a role name may itself contain '/': fall through to the plain name */
  }
  if ((st = chm__tk_q(t, CHM__Q_ROLE_BY_NAME, "ss", spec, nz(actor_id))) ==
      NULL)
    return chm__tk_dbrc(t);
  while ((rc = chm__tk_step(t, CHM__Q_ROLE_BY_NAME, st)) == SQLITE_ROW) {
    const char *as = chm__tk_col(st, 9);
    if (n == 0)
      role_row(st, &first);
    if (as != NULL && strcmp(as, "ACTIVE") == 0) {
      if (nactive == 0)
        role_row(st, &active);
      nactive++;
    }
    if (n > 0)
      chm__buf_add(&wfs, "', '");
    chm__buf_add(&wfs, chm__tk_col(st, 8));
    n++;
  }
  if (rc < 0) {
    chm__buf_free(&wfs);
    return chm__tk_dbrc(t);
  }
  chm__tk_reset(st);
  if (n == 0) {
    chm__buf_free(&wfs);
    return chm__tk_err(t, CHM_NOTFOUND, "no role '%s' in instance '%s'", spec,
                       t->instance_name);
  }
  if (n == 1 || nactive == 1) {
    *r = n == 1 ? first : active;
    chm__buf_free(&wfs);
    return CHM_OK;
  }
  rc = chm__tk_err(t, CHM_INVALID,
                   "role '%s' exists in workflows '%s'; "
                   "name it as '<workflow>/%s'",
                   spec, wfs.p ? wfs.p : "?", spec);
  chm__buf_free(&wfs);
  return rc;
}

int chm__tk_assigned(chm__tk *t, const char *actor_id, const char *actor,
                     const chm__role *r) {
  sqlite3_stmt *st = chm__tk_q(t, CHM__Q_ASSIGNED, "ss", actor_id, r->id);
  int rc;
  if (st == NULL)
    return chm__tk_dbrc(t);
  rc = chm__tk_step(t, CHM__Q_ASSIGNED, st);
  if (rc < 0)
    return chm__tk_dbrc(t);
  if (rc == SQLITE_ROW && strcmp(chm__tk_col(st, 0), "ACTIVE") == 0) {
    chm__tk_reset(st);
    return CHM_OK;
  }
  rc = rc == SQLITE_ROW;
  chm__tk_reset(st);
  if (rc)
    return chm__tk_err(t, CHM_DENIED,
                       "actor '%s' may not act as role '%s' "
                       "of workflow '%s': the assignment is "
                       "REVOKED",
                       actor, r->name, r->workflow);
  return chm__tk_err(t, CHM_DENIED,
                     "actor '%s' holds no ACTIVE assignment "
                     "on role '%s' of workflow '%s'",
                     actor, r->name, r->workflow);
}

int chm__tk_special(chm__tk *t, const char *workflow_id, const char *type,
                    char out[CHM__ID]) {
  char key[CHM__ID + 16];
  const char *m = NULL;
  sqlite3_stmt *st;
  int rc, cache = strlen(workflow_id) < CHM__ID && strlen(type) < 16;
  out[0] = '\0';
  if (cache) {
    snprintf(key, sizeof key, "%s\x1f%s", workflow_id, type);
    m = chm__tk_memo_get(t, CHM__M_SPECIAL, key, NULL);
  }
  if (m != NULL) {
    chm__tk_cpy(out, CHM__ID, m);
    return CHM_OK;
  }
  st = chm__tk_q(t, CHM__Q_SPECIAL_INBOUND, "ss", workflow_id, type);
  if (st == NULL)
    return chm__tk_dbrc(t);
  rc = chm__tk_step(t, CHM__Q_SPECIAL_INBOUND, st);
  if (rc < 0)
    return chm__tk_dbrc(t);
  if (rc == SQLITE_ROW)
    chm__tk_cpy(out, CHM__ID, chm__tk_col(st, 0));
  chm__tk_reset(st);
  if (cache)
    chm__tk_memo_put(t, CHM__M_SPECIAL, key, out, CHM__ID);
  return CHM_OK;
}

int chm__tk_name(chm__tk *t, int q, const char *id, char *out, size_t size) {
  sqlite3_stmt *st;
  int rc;
  chm__tk_cpy(out, size, "?");
  if (id == NULL || *id == '\0')
    return CHM_OK;
  if ((st = chm__tk_q(t, q, "s", id)) == NULL)
    return chm__tk_dbrc(t);
  rc = chm__tk_step(t, q, st);
  if (rc < 0)
    return chm__tk_dbrc(t);
  if (rc == SQLITE_ROW)
    chm__tk_cpy(out, size, chm__tk_col(st, 0));
  chm__tk_reset(st);
  return CHM_OK;
}

int chm__tk_inter_name(chm__tk *t, const char *id, char *out, size_t size) {
  const char *m = chm__tk_memo_get(t, CHM__M_INAME, id, NULL);
  sqlite3_stmt *st;
  int rc;
  if (m != NULL) {
    chm__tk_cpy(out, size, m);
    return CHM_OK;
  }
  chm__tk_cpy(out, size, "?");
  if (id == NULL || *id == '\0')
    return CHM_OK;
  if ((st = chm__tk_q(t, CHM__Q_INTERACTION_NAME, "s", id)) == NULL)
    return chm__tk_dbrc(t);
  rc = chm__tk_step(t, CHM__Q_INTERACTION_NAME, st);
  if (rc < 0)
    return chm__tk_dbrc(t);
  if (rc == SQLITE_ROW) {
    const char *name = chm__tk_col(st, 0);
    chm__tk_cpy(out, size, name);
    if (name != NULL)
      chm__tk_memo_put(t, CHM__M_INAME, id, name, strlen(name) + 1);
  }
  chm__tk_reset(st);
  return CHM_OK;
}

int chm__tk_memory(chm__tk *t, const char *role_id, const char *actor_id,
                   char **json) {
  int rc = chm__tk_one_text(t, CHM__Q_MEMORY_JSON, json, "ss", role_id,
                            nz(actor_id));
  char ts[32];
  if (rc != CHM_OK)
    return rc;
  if (*json == NULL && (*json = strdup("{}")) == NULL)
    return chm__tk_err(t, CHM_NOMEM, "out of memory");
  if (strcmp(*json, "{}") == 0) /* no row to mark: MEMORY_TOUCH is a no-op */
    return CHM_OK;
  now_iso(t, ts);
  rc = chm__tk_exec(t, CHM__Q_MEMORY_TOUCH, "sss", role_id, nz(actor_id), ts);
  if (rc != CHM_OK) {
    free(*json);
    *json = NULL;
  }
  return rc;
}

int chm__tk_memory_put(chm__tk *t, const char *role_id, const char *actor_id,
                       const char *key, const char *value) {
  char *id = NULL, ts[32], nid[CHM__ID];
  int rc = chm__tk_one_text(t, CHM__Q_MEMORY_FIND, &id, "sss", role_id,
                            nz(actor_id), key);
  if (rc != CHM_OK)
    return rc;
  now_iso(t, ts);
  if (id != NULL) {
    rc = chm__tk_exec(t, CHM__Q_MEMORY_UPDATE, "sss", id, value, ts);
    free(id);
    return rc;
  }
  chm__uuid7(nid);
  return chm__tk_exec(t, CHM__Q_MEMORY_INSERT, "sssssss", nid, t->instance_id,
                      role_id, nz(actor_id), key, value, ts);
}
