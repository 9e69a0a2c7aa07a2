/*
** test_sandbox.c — tests of the Lua sandbox (sandbox.c, bounded.c,
** lualib.c): every hostile script in tests/fixtures/hostile must end with
** its expected outcome, stop within its deadline plus slack, and leave the
** state working; plus unit tests of nested budgets, budget reset, memory
** accounting and the trusted side. Usage: test_sandbox [FIXTURE_DIR].
** The last line of output is "N passed, N failed"; exit status 1 on any
** failure.
*/
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chm_int.h"
#include "sandbox.h"

/* ===================================================================== */
/* Harness                                                                */
/* ===================================================================== */

static int passed, failed;
static char why[2048]; /* reason of the current test's failure */

#define FAIL(...)                                                              \
  do {                                                                         \
    snprintf(why, sizeof why, __VA_ARGS__);                                    \
    return 1;                                                                  \
  } while (0)

#define ASSERT_TRUE(c)                                                         \
  do {                                                                         \
    if (!(c)) FAIL("%s:%d: expected %s", __FILE__, __LINE__, #c);              \
  } while (0)

#define ASSERT_EQ_INT(a, b)                                                    \
  do {                                                                         \
    long long a_ = (long long)(a), b_ = (long long)(b);                        \
    if (a_ != b_)                                                              \
      FAIL("%s:%d: %s == %lld, expected %lld", __FILE__, __LINE__, #a, a_,     \
           b_);                                                                \
  } while (0)

#define ASSERT_EQ_STR(a, b)                                                    \
  do {                                                                         \
    const char *a_ = (a), *b_ = (b);                                           \
    if (a_ == NULL || strcmp(a_, b_) != 0)                                     \
      FAIL("%s:%d: %s == \"%s\", expected \"%s\"", __FILE__, __LINE__, #a,     \
           a_ ? a_ : "(null)", b_);                                            \
  } while (0)

#define ASSERT_CONTAINS(hay, needle)                                           \
  do {                                                                         \
    const char *h_ = (hay), *n_ = (needle);                                    \
    if (h_ == NULL || strstr(h_, n_) == NULL)                                  \
      FAIL("%s:%d: \"%s\" does not contain \"%s\"", __FILE__, __LINE__,        \
           h_ ? h_ : "(null)", n_);                                            \
  } while (0)

static char note[64]; /* extra detail for an ok line, cleared after use */

static void report(const char *name, int rc) {
  if (rc == 0) {
    passed++;
    printf("ok     %s%s\n", name, note);
  } else {
    failed++;
    printf("FAIL   %s: %s\n", name, why);
  }
  note[0] = '\0';
  fflush(stdout);
}

static const char *rc_name(int rc) { return chm_errname(rc); }

/* run(L, src, limits, &rc) -> the result as JSON text or the error message
** (static buffer), after running src in a fresh sandbox environment. */
static const char *run(lua_State *L, const char *src, const chm_limits *lim,
                       int *rc) {
  static char out[4096];
  int top = lua_gettop(L);
  chm__push_sandbox_env(L);
  *rc = chm__load_text(L, src, strlen(src), "=test", -1);
  if (*rc == CHM_OK) *rc = chm__pcall(L, 0, 1, lim);
  if (*rc == CHM_OK && chm__json_encode(L, -1, 0) != 0) *rc = CHM_ERROR;
  snprintf(out, sizeof out, "%s",
           lua_tostring(L, -1) ? lua_tostring(L, -1) : "(not a string)");
  if (lua_gettop(L) < top + 1) snprintf(out, sizeof out, "stack lost values");
  lua_settop(L, top);
  return out;
}

static const chm_limits fixture_limits = {5000000u, 500u, (size_t)32 << 20};

/* ===================================================================== */
/* Hostile fixtures                                                       */
/* ===================================================================== */

/* slurp(path) -> the whole file, NUL-terminated, malloc'ed; NULL on error. */
static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  char *text = NULL;
  long len;
  if (f == NULL) return NULL;
  if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 &&
      fseek(f, 0, SEEK_SET) == 0 && (text = malloc((size_t)len + 1)) != NULL) {
    if (fread(text, 1, (size_t)len, f) != (size_t)len) {
      free(text);
      text = NULL;
    } else {
      text[len] = '\0';
    }
  }
  fclose(f);
  return text;
}

/* One fixture: header "-- expect: KIND [detail]" on its first line. */
static int run_fixture(lua_State *L, const char *dir, const char *file) {
  char path[1024], kind[16] = "", detail[512] = "", chunk[300];
  char *src;
  const char *res, *nl;
  int rc, n, top = lua_gettop(L);
  int64_t t0, elapsed;
  snprintf(path, sizeof path, "%s/%s", dir, file);
  if ((src = slurp(path)) == NULL) FAIL("cannot read %s", path);
  n = sscanf(src, "-- expect: %15s", kind);
  nl = strchr(src, '\n');
  if (n == 1 && nl != NULL) {
    const char *d = strstr(src, kind) + strlen(kind);
    while (*d == ' ') d++;
    snprintf(detail, sizeof detail, "%.*s", (int)(nl - d), d);
  }
  if (n != 1 || nl == NULL) {
    free(src);
    FAIL("%s: first line must be \"-- expect: KIND [detail]\"", file);
  }
  /* Load as a file would be (chunk name "@hostile/NN.lua"). */
  chm__push_sandbox_env(L);
  snprintf(chunk, sizeof chunk, "@hostile/%s", file);
  t0 = chm__mono_ms();
  rc = chm__load_text(L, src, strlen(src), chunk, -1);
  free(src);
  if (rc == CHM_OK) rc = chm__pcall(L, 0, 1, &fixture_limits);
  elapsed = chm__mono_ms() - t0;
  if (rc == CHM_OK && chm__json_encode(L, -1, 0) != 0) rc = CHM_ERROR;
  res = lua_tostring(L, -1);
  if (res == NULL) res = "(not a string)";
  {
    char got[1024];
    snprintf(got, sizeof got, "%s", res);
    lua_settop(L, top);
    if (elapsed > (int64_t)fixture_limits.deadline_ms + 5000)
      FAIL("took %lld ms (deadline %u ms + 5 s slack)", (long long)elapsed,
           fixture_limits.deadline_ms);
    if (strcmp(kind, rc_name(rc)) != 0)
      FAIL("expected %s, got %s: %s", kind, rc_name(rc), got);
    if (rc == CHM_OK && strcmp(got, detail) != 0)
      FAIL("expected result %s, got %s", detail, got);
    if (rc != CHM_OK && detail[0] != '\0' && strstr(got, detail) == NULL)
      FAIL("message \"%s\" lacks \"%s\"", got, detail);
  }
  snprintf(note, sizeof note, " (%s in %lld ms)", kind, (long long)elapsed);
  /* The same state must still work. */
  res = run(L, "return 1 + 1", NULL, &rc);
  if (rc != CHM_OK || strcmp(res, "2") != 0)
    FAIL("state broken afterwards: %s %s", rc_name(rc), res);
  ASSERT_EQ_INT(lua_gettop(L), top);
  return 0;
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void run_fixtures(lua_State *L, const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char **names = NULL;
  size_t n = 0, i;
  if (d == NULL) {
    snprintf(why, sizeof why, "cannot open %s", dir);
    report("fixtures", 1);
    return;
  }
  while ((e = readdir(d)) != NULL) {
    size_t len = strlen(e->d_name);
    if (len > 4 && strcmp(e->d_name + len - 4, ".lua") == 0) {
      names = realloc(names, (n + 1) * sizeof *names);
      names[n++] = strdup(e->d_name);
    }
  }
  closedir(d);
  qsort(names, n, sizeof *names, cmp_names);
  for (i = 0; i < n; i++) {
    char label[300];
    snprintf(label, sizeof label, "hostile/%s", names[i]);
    report(label, run_fixture(L, dir, names[i]));
    free(names[i]);
  }
  free(names);
  if (n < 25) {
    snprintf(why, sizeof why, "only %zu fixtures in %s", n, dir);
    report("fixture count", 1);
  }
}

/* ===================================================================== */
/* Unit tests                                                             */
/* ===================================================================== */

/* nested(src, instructions) -> code name, message   [-2, +2, e]
** Runs src in a sandbox env through a NESTED door with the given budget,
** as trusted C code called from inside a door would. */
static int nested(lua_State *L) {
  size_t len;
  const char *src = lua_tolstring(L, 1, &len);
  chm_limits lim = {(uint64_t)lua_tointeger(L, 2), 0, 0};
  int rc;
  chm__push_sandbox_env(L);
  if (chm__load_text(L, src, len, "=inner", -1) != CHM_OK) return lua_error(L);
  rc = chm__pcall(L, 0, 1, &lim);
  lua_pushstring(L, rc_name(rc));
  lua_insert(L, -2);
  return 2;
}

static int test_nested_budget(lua_State *L) {
  chm_limits outer = {50000000u, 5000u, 0};
  int rc;
  /* The inner door's own budget is the tighter one: it dies, the outer
  ** door goes on. */
  lua_pushcfunction(L, nested);
  lua_pushliteral(L, "while true do end");
  lua_pushinteger(L, 100000);
  rc = chm__pcall(L, 2, 2, &outer);
  ASSERT_EQ_STR(rc_name(rc), "OK");
  ASSERT_EQ_STR(lua_tostring(L, -2), "BUDGET");
  ASSERT_CONTAINS(lua_tostring(L, -1), "budget of 100000 instructions");
  lua_pop(L, 2);
  /* Here the outer budget is the tighter one: the inner door reports the
  ** outer budget, and the outer door dies too. */
  outer.instructions = 300000;
  lua_pushcfunction(L, nested);
  lua_pushliteral(L, "while true do end");
  lua_pushinteger(L, 100000000);
  rc = chm__pcall(L, 2, 2, &outer);
  ASSERT_EQ_STR(rc_name(rc), "BUDGET");
  ASSERT_CONTAINS(lua_tostring(L, -1), "budget of 300000 instructions");
  lua_pop(L, 1);
  return 0;
}

static int test_nested_chm_run(lua_State *L) {
  /* The same through chm.run, from Lua in an environment with `chm`. */
  static const char src[] =
      "local f = chm.load('while true do end', '=inner', chm.sandbox_env())\n"
      "local ok, err, code = chm.run({instructions = 100000}, f)\n"
      "local ok2, a, b = chm.run(nil, function(x, y) return x + y, 'z' end, "
      "1, 2)\n"
      "return json.array({ok, code, ok2, a, b, (err:find('100000') ~= nil)})";
  int rc, top = lua_gettop(L);
  chm__push_sandbox_env(L);
  chm__open_internals(L);
  lua_setfield(L, -2, "chm");
  rc = chm__load_text(L, src, sizeof src - 1, "=outer", -1);
  ASSERT_EQ_INT(rc, CHM_OK);
  rc = chm__pcall(L, 0, 1, NULL);
  ASSERT_EQ_STR(rc_name(rc), "OK");
  ASSERT_EQ_INT(chm__json_encode(L, -1, 0), 0);
  ASSERT_EQ_STR(lua_tostring(L, -1), "[false,\"BUDGET\",true,3,\"z\",true]");
  lua_settop(L, top);
  return 0;
}

static int test_budget_reset(lua_State *L) {
  chm_limits lim = {5000000u, 2000u, 0};
  int rc;
  const char *res = run(L, "while true do end", &lim, &rc);
  ASSERT_EQ_STR(rc_name(rc), "BUDGET");
  ASSERT_CONTAINS(res, "instruction budget of 5000000 instructions");
  /* About 3 million instructions: fits a fresh 5 million budget. */
  res = run(L, "local n = 0 for i = 1, 1000000 do n = n + i end return n", &lim,
            &rc);
  ASSERT_EQ_STR(rc_name(rc), "OK");
  ASSERT_EQ_STR(res, "500000500000");
  return 0;
}

static int test_deadline(lua_State *L) {
  chm_limits lim = {1000000000000ull, 200u, 0};
  int rc;
  int64_t t0 = chm__mono_ms();
  const char *res = run(L, "while true do end", &lim, &rc);
  ASSERT_EQ_STR(rc_name(rc), "BUDGET");
  ASSERT_CONTAINS(res, "deadline of 200 ms");
  ASSERT_TRUE(chm__mono_ms() - t0 < 5000);
  return 0;
}

static int test_memory_baseline(lua_State *L) {
  int rc, before, after;
  const char *res;
  lua_gc(L, LUA_GCCOLLECT);
  before = lua_gc(L, LUA_GCCOUNT);
  res = run(L, "local t = {} for i = 1, 1e8 do t[i] = {} end", &fixture_limits,
            &rc);
  ASSERT_EQ_STR(rc_name(rc), "MEMORY");
  ASSERT_CONTAINS(res, "script exceeded its memory cap (32 MiB)");
  lua_gc(L, LUA_GCCOLLECT);
  after = lua_gc(L, LUA_GCCOUNT);
  if (after > before + 64)
    FAIL("heap %d KiB after the bomb, %d KiB before", after, before);
  return 0;
}

static int test_set_memory(lua_State *L) {
  int rc;
  const char *res;
  chm__sandbox_set_memory(L, (size_t)8 << 20);
  res = run(L, "return #string.rep('x', 16 * 1024 * 1024)", NULL, &rc);
  ASSERT_EQ_STR(rc_name(rc), "MEMORY");
  ASSERT_CONTAINS(res, "memory cap (8 MiB)");
  chm__sandbox_set_memory(L, 0);
  res = run(L, "return #string.rep('x', 16 * 1024 * 1024)", NULL, &rc);
  ASSERT_EQ_STR(rc_name(rc), "OK");
  ASSERT_EQ_STR(res, "16777216");
  return 0;
}

static int test_error_objects(lua_State *L) {
  int rc;
  const char *res = run(L, "error({})", NULL, &rc);
  ASSERT_EQ_STR(rc_name(rc), "SCRIPT");
  ASSERT_CONTAINS(res, "(error object is a table value)");
  res = run(L, "local function f() error('boom') end f()", NULL, &rc);
  ASSERT_EQ_STR(rc_name(rc), "SCRIPT");
  ASSERT_CONTAINS(res, "test:1: boom");
  ASSERT_CONTAINS(res, "stack traceback:");
  res = run(L, "error(42)", NULL, &rc);
  ASSERT_CONTAINS(res, "42");
  return 0;
}

static int test_load_text(lua_State *L) {
  static const char bin[] = "\033LuaT\0junk";
  int top = lua_gettop(L);
  lua_newtable(L);
  ASSERT_EQ_INT(chm__load_text(L, bin, sizeof bin - 1, "=bin", -1), CHM_SCRIPT);
  ASSERT_CONTAINS(lua_tostring(L, -1), "attempt to load a binary chunk");
  lua_pop(L, 1);
  ASSERT_EQ_INT(chm__load_text(L, "return (", 8, "=bad", -1), CHM_SCRIPT);
  ASSERT_CONTAINS(lua_tostring(L, -1), "bad:1:");
  lua_settop(L, top);
  return 0;
}

static int test_fresh_envs(lua_State *L) {
  int top = lua_gettop(L);
  chm__push_sandbox_env(L);
  chm__push_sandbox_env(L);
  ASSERT_TRUE(!lua_rawequal(L, -1, -2));
  lua_getfield(L, -1, "string");
  lua_getfield(L, -3, "string");
  ASSERT_TRUE(!lua_rawequal(L, -1, -2));
  lua_getfield(L, -3, "chm");
  ASSERT_TRUE(lua_isnil(L, -1));
  lua_settop(L, top);
  return 0;
}

/* require_body(name) -> module   [-1, +1, e] */
static int require_body(lua_State *L) {
  chm__require(L, lua_tostring(L, 1));
  return 1;
}

static int test_require(lua_State *L) {
  int rc, top = lua_gettop(L);
  lua_pushcfunction(L, require_body);
  lua_pushliteral(L, "no_such_module");
  rc = chm__pcall(L, 1, 1, NULL);
  ASSERT_EQ_STR(rc_name(rc), "SCRIPT");
  ASSERT_CONTAINS(lua_tostring(L, -1), "module 'no_such_module' not found");
  lua_settop(L, top);
  lua_pushcfunction(L, require_body);
  lua_pushliteral(L, "../etc/passwd");
  rc = chm__pcall(L, 1, 1, NULL);
  ASSERT_EQ_STR(rc_name(rc), "SCRIPT");
  ASSERT_CONTAINS(lua_tostring(L, -1), "invalid module name");
  lua_settop(L, top);
  if (chm__embedded_find("lua/util.lua") != NULL) {
    lua_pushcfunction(L, require_body);
    lua_pushliteral(L, "util");
    rc = chm__pcall(L, 1, 1, NULL);
    ASSERT_EQ_STR(rc_name(rc), "OK");
    ASSERT_TRUE(lua_istable(L, -1));
    lua_pushcfunction(L, require_body); /* cached: the same table */
    lua_pushliteral(L, "util");
    rc = chm__pcall(L, 1, 1, NULL);
    ASSERT_EQ_STR(rc_name(rc), "OK");
    ASSERT_TRUE(lua_rawequal(L, -1, -2));
  }
  lua_settop(L, top);
  return 0;
}

static int test_funcinfo(lua_State *L) {
  static const char src[] =
      "local a, b = 1, 2\n"
      "local function f() return a + b end\n"
      "local i = chm.funcinfo(f)\n"
      "local line, where = chm.callerline(1)\n"
      "return json.array({i.upvalues[1], i.upvalues[2], i.linedefined,\n"
      "  i.lastlinedefined, line, where})";
  int rc, top = lua_gettop(L);
  chm__push_sandbox_env(L);
  chm__open_internals(L);
  lua_setfield(L, -2, "chm");
  rc = chm__load_text(L, src, sizeof src - 1, "=fi", -1);
  ASSERT_EQ_INT(rc, CHM_OK);
  rc = chm__pcall(L, 0, 1, NULL);
  ASSERT_EQ_STR(rc_name(rc), "OK");
  ASSERT_EQ_INT(chm__json_encode(L, -1, 0), 0);
  ASSERT_EQ_STR(lua_tostring(L, -1), "[\"a\",\"b\",2,2,4,\"fi\"]");
  lua_settop(L, top);
  return 0;
}

static int test_limits_default(lua_State *L) {
  chm_limits d;
  (void)L;
  chm_limits_default(&d);
  ASSERT_EQ_INT(d.instructions, 10000000);
  ASSERT_EQ_INT(d.deadline_ms, 1000);
  ASSERT_EQ_INT(d.memory_bytes, 64 << 20);
  return 0;
}

#define TEST_LIST(XX)                                                          \
  XX(limits_default)                                                           \
  XX(nested_budget)                                                            \
  XX(nested_chm_run)                                                           \
  XX(budget_reset)                                                             \
  XX(deadline)                                                                 \
  XX(memory_baseline)                                                          \
  XX(set_memory)                                                               \
  XX(error_objects)                                                            \
  XX(load_text)                                                                \
  XX(fresh_envs)                                                               \
  XX(require)                                                                  \
  XX(funcinfo)

int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : "tests/fixtures/hostile";
  lua_State *L = chm__sandbox_new(0);
  if (L == NULL) {
    printf("FAIL   chm__sandbox_new\n0 passed, 1 failed\n");
    return 1;
  }
#define XX(name)                                                               \
  {                                                                            \
    int top_ = lua_gettop(L), rc_ = test_##name(L);                            \
    if (rc_ == 0 && lua_gettop(L) != top_) {                                   \
      snprintf(why, sizeof why, "stack not restored");                         \
      rc_ = 1;                                                                 \
    }                                                                          \
    lua_settop(L, top_);                                                       \
    report(#name, rc_);                                                        \
  }
  TEST_LIST(XX)
#undef XX
  run_fixtures(L, dir);
  chm__sandbox_close(L);
  printf("%d passed, %d failed\n", passed, failed);
  return failed != 0;
}
