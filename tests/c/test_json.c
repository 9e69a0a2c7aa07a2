/*
** test_json.c — tests of the JSON codec (engine/src/json.c) on plain
** lua_States: canonical output, exact integers and floats, unicode, depth
** limits, exact error texts, the Lua library, a decimal-comma locale, and
** encoding/decoding under a capped allocator (run it under ASan too).
** Cases are tables of data where that says it better than code. The last
** output line is "N passed, N failed"; the exit status is 1 on failure.
*/
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lualib.h>

#include "chm_int.h"
#include "harness.h"

/* ===================================================================== */
/* Harness (harness.h; data-driven tests call one helper per case so the  */
/* other cases still run after a failing ASSERT returns)                  */
/* ===================================================================== */

/* Same bits, so -0.0 differs from 0.0 and the sign of zero is checked. */
#define ASSERT_BITS_EQ(a, b)                                                   \
  do {                                                                         \
    double a_ = (a), b_ = (b);                                                 \
    if (memcmp(&a_, &b_, sizeof a_) != 0)                                      \
      FAIL_AT("ASSERT_BITS_EQ(%s, %s): %a != %a", #a, #b, a_, b_);             \
  } while (0)

#define TEST(name) static void test_##name(lua_State *L)

/* ===================================================================== */
/* Helpers: run the codec inside lua_pcall, as its contract requires      */
/* ===================================================================== */

/* encode_cb(v, pretty) -> text | message, rc, values pushed */
static int encode_cb(lua_State *L) {
  int top = lua_gettop(L);
  int rc = chm__json_encode(L, 1, lua_toboolean(L, 2));
  lua_pushinteger(L, rc);
  lua_pushinteger(L, lua_gettop(L) - top - 1);
  return 3;
}

/* decode_cb(s) -> value | message, rc, values pushed */
static int decode_cb(lua_State *L) {
  size_t len;
  const char *s = lua_tolstring(L, 1, &len);
  int top = lua_gettop(L);
  int rc = chm__json_decode(L, s, len);
  lua_pushinteger(L, rc);
  lua_pushinteger(L, lua_gettop(L) - top - 1);
  return 3;
}

/* call_codec(L, cb, nargs) -> the codec's rc, leaving its one result on
** top; -100 when the call raised or broke the [-0, +1] stack effect. */
static int call_codec(lua_State *L, lua_CFunction cb, int nargs) {
  int rc, pushed;
  lua_pushcfunction(L, cb);
  lua_insert(L, -(nargs + 1));
  if (lua_pcall(L, nargs, 3, 0) != LUA_OK) {
    printf("  codec raised: %s\n", lua_tostring(L, -1));
    return -100;
  }
  rc = (int)lua_tointeger(L, -2);
  pushed = (int)lua_tointeger(L, -1);
  lua_pop(L, 2);
  if (pushed != 1) {
    printf("  codec pushed %d values, not 1\n", pushed);
    return -100;
  }
  return rc;
}

/* encode(L, idx, pretty) -> rc; pushes the text or the message. */
static int encode(lua_State *L, int idx, int pretty) {
  lua_pushvalue(L, idx);
  lua_pushboolean(L, pretty);
  return call_codec(L, encode_cb, 2);
}

/* decode(L, s, len) -> rc; pushes the value or the message. */
static int decode(lua_State *L, const char *s, size_t len) {
  lua_pushlstring(L, s, len);
  return call_codec(L, decode_cb, 1);
}

/* roundtrip(L, s) -> rc; pushes encode(decode(s)) or a message. */
static int roundtrip(lua_State *L, const char *s, size_t len, int pretty) {
  int rc = decode(L, s, len);
  if (rc != 0)
    return rc;
  rc = encode(L, -1, pretty);
  lua_remove(L, -2);
  return rc;
}

/* run_lua(L, code) -> rc of luaL_dostring, leaving one result (or the
** error message) on top. `json` is a global set by the runner. */
static int run_lua(lua_State *L, const char *code) {
  int rc = luaL_loadstring(L, code);
  if (rc == LUA_OK)
    rc = lua_pcall(L, 0, 1, 0);
  return rc;
}

/* A xorshift generator: the same "random" cases on every run. */
static uint64_t rng_state = 0x9E3779B97F4A7C15u;
static uint64_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

/* ===================================================================== */
/* Canonical output: decode then encode                                   */
/* ===================================================================== */

static const struct {
  const char *in;  /* JSON text */
  const char *out; /* its canonical encoding */
} canonical_cases[] = {
    /* literals and whitespace */
    {"null", "null"},
    {"true", "true"},
    {"false", "false"},
    {" \t\r\n 1 \n", "1"},
    /* integers stay integers, exactly, over the whole int64 range */
    {"0", "0"},
    {"-0", "0"},
    {"42", "42"},
    {"9007199254740993", "9007199254740993"},
    {"-9007199254740993", "-9007199254740993"},
    {"9223372036854775807", "9223372036854775807"},
    {"-9223372036854775808", "-9223372036854775808"},
    /* beyond int64: floats */
    {"9223372036854775808", "9.223372036854776e+18"},
    {"-9223372036854775809", "-9.223372036854776e+18"},
    {"18446744073709551616", "1.8446744073709552e+19"},
    {"100000000000000000000", "1e+20"},
    /* floats: shortest text that reads back the same, always float */
    {"0.0", "0.0"},
    {"-0.0", "-0.0"},
    {"1.0", "1.0"},
    {"1.5", "1.5"},
    {"1e2", "100.0"},
    {"1E+2", "100.0"},
    {"-1e-2", "-0.01"},
    {"0.000001", "1e-06"},
    {"1e-7", "1e-07"},
    {"1e13", "10000000000000.0"},
    {"1e15", "1e+15"},
    {"1.5e300", "1.5e+300"},
    {"123456.789", "123456.789"},
    {"0.1", "0.1"},
    {"0.30000000000000004", "0.30000000000000004"},
    {"3.141592653589793", "3.141592653589793"},
    {"9007199254740993.0", "9007199254740992.0"},
    {"12345678901234567890.0", "1.2345678901234567e+19"},
    {"5e-324", "5e-324"},
    {"4.9406564584124654e-324", "5e-324"},
    {"2.2250738585072014e-308", "2.2250738585072014e-308"},
    {"1.7976931348623157e308", "1.7976931348623157e+308"},
    {"1e-400", "0.0"},
    {"-1e-400", "-0.0"},
    /* strings: escapes decoded, output is UTF-8 with minimal escapes */
    {"\"\"", "\"\""},
    {"\"a\\/b\"", "\"a/b\""},
    {"\"\\u0041\\u00e9\\u4E2D\"", "\"A\xC3\xA9\xE4\xB8\xAD\""},
    {"\"\\ud83d\\ude00\"", "\"\xF0\x9F\x98\x80\""},
    {"\"\xF0\x9F\x98\x80 \xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87\"",
     "\"\xF0\x9F\x98\x80 \xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87\""},
    {"\"\\u0000\"", "\"\\u0000\""},
    {"\"\\u001F\\u007f\"", "\"\\u001f\x7F\""},
    {"\"\\b\\f\\n\\r\\t\\\"\\\\\"", "\"\\b\\f\\n\\r\\t\\\"\\\\\""},
    {"\"\\u2028\\u2029\"", "\"\xE2\x80\xA8\xE2\x80\xA9\""},
    /* containers: [] and {} kept apart, nulls kept */
    {"[]", "[]"},
    {"{}", "{}"},
    {"[[]]", "[[]]"},
    {"[{}]", "[{}]"},
    {"{\"a\":[],\"b\":{}}", "{\"a\":[],\"b\":{}}"},
    {" [ 1 , 2 ] ", "[1,2]"},
    {"[null,1,null]", "[null,1,null]"},
    {"{\"a\":null}", "{\"a\":null}"},
    {"[1,\"1\",1.0,[1],{\"1\":1}]", "[1,\"1\",1.0,[1],{\"1\":1}]"},
    /* object keys in byte order */
    {"{\"b\":1,\"a\":2,\"B\":3,\"aa\":4,\"\\u00e9\":5,\"\":6,\"a\\u0000\":7}",
     "{\"\":6,\"B\":3,\"a\":2,\"a\\u0000\":7,\"aa\":4,\"b\":1,\"\xC3\xA9\":5}"},
    {"{\"2\":\"b\",\"1\":\"a\"}", "{\"1\":\"a\",\"2\":\"b\"}"},
    {"{\"9\":1,\"10\":2}", "{\"10\":2,\"9\":1}"},
};

static void check_canonical(lua_State *L, const char *in, const char *out) {
  int rc = roundtrip(L, in, strlen(in), 0);
  ASSERT_INT_EQ(rc, 0);
  ASSERT_STR_EQ(lua_tostring(L, -1), out);
  lua_pop(L, 1);
  /* The canonical text is a fixed point. */
  rc = roundtrip(L, out, strlen(out), 0);
  ASSERT_INT_EQ(rc, 0);
  ASSERT_STR_EQ(lua_tostring(L, -1), out);
  lua_pop(L, 1);
}

TEST(canonical_cases) {
  size_t i;
  for (i = 0; i < sizeof canonical_cases / sizeof canonical_cases[0]; i++)
    check_canonical(L, canonical_cases[i].in, canonical_cases[i].out);
}

/* ===================================================================== */
/* Decode errors: exact messages with byte offsets                        */
/* ===================================================================== */

static const struct {
  const char *in; /* JSON text */
  size_t len;     /* its length, 0 = strlen */
  const char *msg;
} decode_errors[] = {
    {"", 0, "json: unexpected end of input at byte 1"},
    {"   ", 0, "json: unexpected end of input at byte 4"},
    {"[1,2] x", 0,
     "json: unexpected character 'x' at byte 7 (expected end of input)"},
    {"[1]\0", 4,
     "json: unexpected byte 0x00 at byte 4 (expected end of input)"},
    {"{} {}", 0,
     "json: unexpected character '{' at byte 4 (expected end of input)"},
    {"[1 2]", 0,
     "json: unexpected character '2' at byte 4 (expected ',' or ']')"},
    {"[1,2", 0,
     "json: unexpected end of input at byte 5 (expected ',' or ']')"},
    {"{\"a\":1", 0,
     "json: unexpected end of input at byte 7 (expected ',' or '}')"},
    {"{\"a\":1 \"b\":2}", 0,
     "json: unexpected character '\"' at byte 8 (expected ',' or '}')"},
    {"{\"a\" 1}", 0, "json: unexpected character '1' at byte 6 (expected ':')"},
    {"{1:2}", 0,
     "json: unexpected character '1' at byte 2 (expected a string key)"},
    {"{\"a\":1,}", 0,
     "json: unexpected character '}' at byte 8 (expected a string key)"},
    {"{\"a\":1,\"a\":2}", 0,
     "json: duplicate key \"a\" in an object (give each key once) at byte 8"},
    {"[{\"k\":{},\"j\":1,\"k\":[]}]", 0,
     "json: duplicate key \"k\" in an object (give each key once) at byte 16"},
    {"[1,]", 0, "json: unexpected character ']' at byte 4"},
    {"[,1]", 0, "json: unexpected character ',' at byte 2"},
    {"01", 0, "json: invalid number (leading zero) at byte 1"},
    {"[-01]", 0, "json: invalid number (leading zero) at byte 2"},
    {"-", 0, "json: invalid number at byte 1"},
    {"-a", 0, "json: invalid number at byte 1"},
    {"1.", 0, "json: invalid number at byte 1"},
    {"1.e5", 0, "json: invalid number at byte 1"},
    {"1e", 0, "json: invalid number at byte 1"},
    {"[1e+]", 0, "json: invalid number at byte 2"},
    {".5", 0, "json: unexpected character '.' at byte 1"},
    {"+1", 0, "json: unexpected character '+' at byte 1"},
    {"0x10", 0,
     "json: unexpected character 'x' at byte 2 (expected end of input)"},
    {"1e400", 0, "json: number out of range at byte 1"},
    {"[-1e400]", 0, "json: number out of range at byte 2"},
    {"NaN", 0, "json: unexpected character 'N' at byte 1"},
    {"\"abc", 0, "json: unterminated string at byte 1"},
    {"[\"a\\", 0, "json: unterminated string at byte 2"},
    {"\"a\nb\"", 0,
     "json: unescaped control character 0x0a in a string at byte 3"},
    {"\"\t\"", 0,
     "json: unescaped control character 0x09 in a string at byte 2"},
    {"\"\\x\"", 0, "json: invalid escape '\\x' at byte 2"},
    {"\"\\'\"", 0, "json: invalid escape '\\'' at byte 2"},
    {"\"\\u12G4\"", 0, "json: invalid \\u escape at byte 2"},
    {"\"\\u12\"", 0, "json: invalid \\u escape at byte 2"},
    {"\"ab\\ud800\"", 0, "json: lone surrogate \\uD800 at byte 4"},
    {"\"\\udc00\"", 0, "json: lone surrogate \\uDC00 at byte 2"},
    {"\"\\ud800\\u0041\"", 0, "json: lone surrogate \\uD800 at byte 2"},
    {"\"\\ud800\\ud800\"", 0, "json: lone surrogate \\uD800 at byte 2"},
    {"\"\xC3\"", 0, "json: invalid UTF-8 at byte 2"},
    {"\"\xC0\xAF\"", 0, "json: invalid UTF-8 at byte 2"},     /* overlong */
    {"\"\xE0\x80\xAF\"", 0, "json: invalid UTF-8 at byte 2"}, /* overlong */
    {"\"\xED\xA0\x80\"", 0, "json: invalid UTF-8 at byte 2"}, /* surrogate */
    {"\"\xF4\x90\x80\x80\"", 0, "json: invalid UTF-8 at byte 2"}, /* >10FFFF */
    {"\"ok \xFF\"", 0, "json: invalid UTF-8 at byte 5"},
    {"\"\xE4\xB8\"", 0, "json: invalid UTF-8 at byte 2"}, /* truncated */
    {"tru", 0, "json: unexpected end of input at byte 4"},
    {"trux", 0, "json: unexpected character 'x' at byte 4"},
    {"nul", 0, "json: unexpected end of input at byte 4"},
    {"True", 0, "json: unexpected character 'T' at byte 1"},
    {"[truefalse]", 0,
     "json: unexpected character 'f' at byte 6 (expected ',' or ']')"},
    {"\xEF\xBB\xBF{}", 0,
     "json: unexpected byte order mark (U+FEFF) at byte 1"},
    {"[\xC3\xA9]", 0, "json: unexpected character '\xC3\xA9' at byte 2"},
    {"\x01", 0, "json: unexpected byte 0x01 at byte 1"},
    {"[\xFF]", 0, "json: unexpected byte 0xff at byte 2"},
    {"'a'", 0, "json: unexpected character ''' at byte 1"},
};

static void check_decode_error(lua_State *L, const char *in, size_t len,
                               const char *msg) {
  int rc = decode(L, in, len ? len : strlen(in));
  ASSERT_INT_EQ(rc, -1);
  ASSERT_STR_EQ(lua_tostring(L, -1), msg);
  lua_pop(L, 1);
}

TEST(decode_errors) {
  size_t i;
  for (i = 0; i < sizeof decode_errors / sizeof decode_errors[0]; i++)
    check_decode_error(L, decode_errors[i].in, decode_errors[i].len,
                       decode_errors[i].msg);
}

/* ===================================================================== */
/* Encoding Lua values: what becomes what, and exact error messages       */
/* ===================================================================== */

static const struct {
  const char *lua; /* a chunk returning the value (json is a global) */
  const char *out; /* its encoding, or NULL when it must fail */
  const char *msg; /* the error message when out is NULL */
} encode_cases[] = {
    {"return nil", "null", NULL},
    {"return json.null", "null", NULL},
    {"return {}", "{}", NULL},
    {"return json.array({})", "[]", NULL},
    {"return {1, 2, 3}", "[1,2,3]", NULL},
    {"return {[1] = 'a', [2] = 'b'}", "[\"a\",\"b\"]", NULL},
    {"return {[2] = 'b', [1] = 'a'}", "[\"a\",\"b\"]", NULL},
    {"return {json.null, false}", "[null,false]", NULL},
    {"return json.array({json.null})", "[null]", NULL},
    {"return {a = json.null}", "{\"a\":null}", NULL},
    {"return {b = 1, a = {}}", "{\"a\":{},\"b\":1}", NULL},
    {"return 1.0", "1.0", NULL},
    {"return -0.0", "-0.0", NULL},
    {"return 2^53", "9007199254740992.0", NULL},
    {"return 2^63", "9.223372036854776e+18", NULL},
    {"return 1/3", "0.3333333333333333", NULL},
    {"return math.maxinteger", "9223372036854775807", NULL},
    {"return math.mininteger", "-9223372036854775808", NULL},
    {"return 'a\\0b\\127'", "\"a\\u0000b\x7F\"", NULL},
    {"return '\\u{10FFFF}'", "\"\xF4\x8F\xBF\xBF\"", NULL},
    {"local s = {1} return {a = s, b = s}", "{\"a\":[1],\"b\":[1]}", NULL},
    /* tables are read raw: metamethods are ignored */
    {"return setmetatable({}, {__index = function() return 1 end})", "{}",
     NULL},
    {"return setmetatable({1}, {__pairs = error, __len = error})", "[1]", NULL},
    {"return json.array(setmetatable({}, {__name = 'x'}))", "[]", NULL},
    /* failures, with the path of the culprit */
    {"return print", NULL, "json: $: cannot encode a value of type 'function'"},
    {"return {f = print}", NULL,
     "json: $.f: cannot encode a value of type 'function'"},
    {"return {a = {1, 2, {x = coroutine.create(print)}}}", NULL,
     "json: $.a[3].x: cannot encode a value of type 'thread'"},
    {"return io.stdout", NULL,
     "json: $: cannot encode a value of type 'userdata'"},
    {"return {0/0}", NULL, "json: $[1]: cannot encode NaN"},
    {"return {x = 1/0}", NULL, "json: $.x: cannot encode inf"},
    {"return {x = {y = -1/0}}", NULL, "json: $.x.y: cannot encode -inf"},
    {"local t = {} t.a = {b = t} return t", NULL,
     "json: $.a.b: table contains itself (cycle)"},
    {"local t = json.array({}) t[1] = t return t", NULL,
     "json: $[1]: table contains itself (cycle)"},
    {"return {[true] = 1}", NULL,
     "json: $: object key of type 'boolean' (object keys must be strings)"},
    {"return {x = {1, 2, y = 3}}", NULL,
     "json: $.x: object key of type 'number' (object keys must be strings)"},
    {"return {[1] = 1, [3] = 3}", NULL,
     "json: $: object key of type 'number' (object keys must be strings)"},
    {"return {[1.5] = 1}", NULL,
     "json: $: object key of type 'number' (object keys must be strings)"},
    {"return json.array({1, nil, 3})", NULL,
     "json: $: array has a hole at index 2 (use json.null)"},
    {"return json.array({x = 1})", NULL,
     "json: $: array has a non-index key of type 'string'"},
    {"return {json.array({[0] = 1})}", NULL,
     "json: $[1]: array has a non-index key of type 'number'"},
    {"return {['odd key'] = {['a.b'] = {print}}}", NULL,
     "json: $[\"odd key\"][\"a.b\"][1]: cannot encode a value of type "
     "'function'"},
    {"return {s = 'ok\\255'}", NULL,
     "json: $.s: invalid UTF-8 at byte 3 of the string"},
    {"return {'\\237\\160\\128'}", NULL,
     "json: $[1]: invalid UTF-8 at byte 1 of the string"},
    {"return {['k\\255'] = 1}", NULL,
     "json: $[\"k?\"]: invalid UTF-8 at byte 2 of the key"},
    {"return {[string.rep('k', 50)] = print}", NULL,
     "json: $[\"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk...\"]: cannot "
     "encode a value of type 'function'"},
    {"return {['\\u{e9}t\\u{e9}'] = {print}}", NULL,
     "json: $[\"\xC3\xA9t\xC3\xA9\"][1]: cannot encode a value of type "
     "'function'"},
};

static void check_encode_case(lua_State *L, const char *lua, const char *out,
                              const char *msg) {
  int top = lua_gettop(L);
  int rc = run_lua(L, lua);
  if (rc != LUA_OK)
    FAIL_AT("chunk failed: %s: %s", lua, lua_tostring(L, -1));
  rc = encode(L, -1, 0);
  if (out != NULL) {
    ASSERT_INT_EQ(rc, 0);
    ASSERT_STR_EQ(lua_tostring(L, -1), out);
  } else {
    ASSERT_INT_EQ(rc, -1);
    ASSERT_STR_EQ(lua_tostring(L, -1), msg);
  }
  lua_settop(L, top);
}

TEST(encode_cases) {
  size_t i;
  for (i = 0; i < sizeof encode_cases / sizeof encode_cases[0]; i++)
    check_encode_case(L, encode_cases[i].lua, encode_cases[i].out,
                      encode_cases[i].msg);
}

TEST(encode_light_userdata) {
  static int x;
  lua_pushlightuserdata(L, &x);
  ASSERT_INT_EQ(encode(L, -1, 0), -1);
  ASSERT_STR_EQ(lua_tostring(L, -1),
                "json: $: cannot encode a value of type 'userdata'");
  lua_pop(L, 2);
  chm__json_pushnull(L);
  ASSERT_INT_EQ(encode(L, -1, 0), 0);
  ASSERT_STR_EQ(lua_tostring(L, -1), "null");
  lua_pop(L, 2);
}

/* ===================================================================== */
/* Numbers                                                                */
/* ===================================================================== */

static const struct {
  const char *in;
  lua_Integer value;
} integer_cases[] = {
    {"9007199254740993", 9007199254740993LL},
    {"9223372036854775807", INT64_MAX},
    {"-9223372036854775808", INT64_MIN},
    {"-0", 0},
    {"[0]", 0},
};

TEST(integers_exact) {
  size_t i;
  for (i = 0; i < sizeof integer_cases / sizeof integer_cases[0]; i++) {
    const char *in = integer_cases[i].in;
    ASSERT_INT_EQ(decode(L, in, strlen(in)), 0);
    if (lua_istable(L, -1))
      lua_rawgeti(L, -1, 1);
    ASSERT_TRUE(lua_isinteger(L, -1));
    ASSERT_INT_EQ(lua_tointeger(L, -1), integer_cases[i].value);
    lua_settop(L, 0);
  }
  /* Random bit patterns: every int64 goes out and back unchanged. */
  for (i = 0; i < 20000; i++) {
    lua_Integer v = (lua_Integer)rng();
    if (i % 3 == 0)
      v >>= (i % 60);
    lua_pushinteger(L, v);
    ASSERT_INT_EQ(encode(L, -1, 0), 0);
    ASSERT_INT_EQ(decode(L, lua_tostring(L, -1), lua_rawlen(L, -1)), 0);
    ASSERT_TRUE(lua_isinteger(L, -1));
    ASSERT_INT_EQ(lua_tointeger(L, -1), v);
    lua_settop(L, 0);
  }
}

TEST(floats_stay_floats) {
  static const char *const in[] = {
      "18446744073709551616", "1.0", "1e2", "-0.0", "1E0",
      "9223372036854775808"};
  size_t i;
  for (i = 0; i < sizeof in / sizeof in[0]; i++) {
    ASSERT_INT_EQ(decode(L, in[i], strlen(in[i])), 0);
    ASSERT_TRUE(lua_type(L, -1) == LUA_TNUMBER && !lua_isinteger(L, -1));
    lua_pop(L, 1);
  }
  ASSERT_INT_EQ(decode(L, "18446744073709551616", 20), 0);
  ASSERT_BITS_EQ(lua_tonumber(L, -1), 18446744073709551616.0);
  lua_pop(L, 1);
}

/* check_float(L, x): x goes out and back bit for bit, and stays a float. */
static void check_float(lua_State *L, double x) {
  const char *text;
  lua_pushnumber(L, x);
  ASSERT_INT_EQ(encode(L, -1, 0), 0);
  text = lua_tostring(L, -1);
  ASSERT_TRUE(strpbrk(text, ".e") != NULL);
  ASSERT_INT_EQ(decode(L, text, strlen(text)), 0);
  ASSERT_TRUE(lua_type(L, -1) == LUA_TNUMBER && !lua_isinteger(L, -1));
  ASSERT_BITS_EQ(lua_tonumber(L, -1), x);
  lua_pop(L, 3);
}

TEST(floats_bit_exact) {
  static const double fixed[] = {
      0.1,
      1.0 / 3,
      1e-300,
      5e-324,
      DBL_MAX,
      -DBL_MAX,
      -0.0,
      0.0,
      DBL_MIN,
      DBL_TRUE_MIN,
      1.0,
      -1.0,
      9007199254740992.0,
      0.1 + 0.2,
      3.141592653589793,
      2.718281828459045,
      1e21,
      1e22,
      1e23,
      123456.789,
      4.35,
      0.3,
      2.5e-8,
      1.7976931348623157e308,
      2.2250738585072009e-308, /* largest subnormal */
  };
  size_t i;
  for (i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
    check_float(L, fixed[i]);
  /* Random bit patterns, NaN and infinities excepted. */
  for (i = 0; i < 50000; i++) {
    uint64_t bits = rng();
    double x;
    memcpy(&x, &bits, sizeof x);
    if (isnan(x) || isinf(x))
      continue;
    check_float(L, x);
    if (test_failed) {
      printf("  (random case %a)\n", x);
      return;
    }
  }
}

/* ===================================================================== */
/* Unicode                                                                */
/* ===================================================================== */

static const struct {
  const char *in;    /* a JSON string */
  const char *bytes; /* the Lua string it decodes to */
} unicode_cases[] = {
    {"\"\xC3\xA9\"", "\xC3\xA9"}, /* é raw */
    {"\"\\u00e9\"", "\xC3\xA9"},  /* é escaped */
    {"\"\\u00E9\"", "\xC3\xA9"},  /* hex case does not matter */
    {"\"\xE4\xB8\xAD\xE6\x96\x87\"", "\xE4\xB8\xAD\xE6\x96\x87"}, /* 中文 */
    {"\"\\u4e2d\\u6587\"", "\xE4\xB8\xAD\xE6\x96\x87"},
    {"\"\\ud83d\\ude00\"", "\xF0\x9F\x98\x80"}, /* 😀 as a surrogate pair */
    {"\"\\uD83D\\uDE00\"", "\xF0\x9F\x98\x80"},
    {"\"\xF0\x9F\x98\x80\"", "\xF0\x9F\x98\x80"}, /* 😀 raw */
    {"\"\\udbff\\udfff\"", "\xF4\x8F\xBF\xBF"},   /* U+10FFFF */
    {"\"\\u0800\\u07ff\\u007f\"", "\xE0\xA0\x80\xDF\xBF\x7F"},
};

static void check_unicode(lua_State *L, const char *in, const char *bytes) {
  char expect[64];
  size_t len;
  const char *s;
  ASSERT_INT_EQ(decode(L, in, strlen(in)), 0);
  s = lua_tolstring(L, -1, &len);
  ASSERT_INT_EQ(len, strlen(bytes));
  ASSERT_TRUE(memcmp(s, bytes, len) == 0);
  /* Encoding passes the UTF-8 through: no \u escapes come back. */
  ASSERT_INT_EQ(encode(L, -1, 0), 0);
  snprintf(expect, sizeof expect, "\"%s\"", bytes);
  ASSERT_STR_EQ(lua_tostring(L, -1), expect);
  lua_pop(L, 2);
}

TEST(unicode) {
  size_t i;
  for (i = 0; i < sizeof unicode_cases / sizeof unicode_cases[0]; i++)
    check_unicode(L, unicode_cases[i].in, unicode_cases[i].bytes);
}

/* ===================================================================== */
/* Depth                                                                  */
/* ===================================================================== */

/* push_brackets(L, n): push "[[[...]]]" with n levels. */
static void push_brackets(lua_State *L, int n) {
  luaL_Buffer b;
  int i;
  luaL_buffinit(L, &b);
  for (i = 0; i < n; i++)
    luaL_addchar(&b, '[');
  for (i = 0; i < n; i++)
    luaL_addchar(&b, ']');
  luaL_pushresult(&b);
}

/* push_nested(L, n): push {{{...}}} with n tables, the innermost empty. */
static void push_nested(lua_State *L, int n) {
  int i;
  lua_newtable(L);
  for (i = 1; i < n; i++) {
    lua_createtable(L, 1, 0);
    lua_insert(L, -2);
    lua_rawseti(L, -2, 1);
  }
}

TEST(depth_limits) {
  static const int ok[] = {1, 999, 1000};
  size_t i;
  const char *msg;
  for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    push_brackets(L, ok[i]);
    ASSERT_INT_EQ(roundtrip(L, lua_tostring(L, -1), lua_rawlen(L, -1), 0), 0);
    ASSERT_STR_EQ(lua_tostring(L, -1), lua_tostring(L, -2));
    lua_settop(L, 0);
    push_nested(L, ok[i]);
    ASSERT_INT_EQ(encode(L, -1, 0), 0);
    ASSERT_INT_EQ(lua_rawlen(L, -1), 2 * (size_t)ok[i]);
    lua_settop(L, 0);
  }
  push_brackets(L, 1001);
  ASSERT_INT_EQ(decode(L, lua_tostring(L, -1), lua_rawlen(L, -1)), -1);
  ASSERT_STR_EQ(lua_tostring(L, -1),
                "json: nesting deeper than 1000 at byte 1001");
  lua_settop(L, 0);
  ASSERT_INT_EQ(decode(L, "[{\"a\":[{}]}]", 12), 0); /* objects count too */
  lua_settop(L, 0);
  push_nested(L, 1001);
  ASSERT_INT_EQ(encode(L, -1, 0), -1);
  msg = lua_tostring(L, -1);
  ASSERT_TRUE(strncmp(msg, "json: $[1][1][1][1]", 19) == 0);
  ASSERT_TRUE(strstr(msg, "...: nesting deeper than 1000") != NULL);
  ASSERT_TRUE(strlen(msg) < 300);
  lua_settop(L, 0);
  /* Hostile depth far past the limit fails the same way, quickly. */
  push_brackets(L, 200000);
  ASSERT_INT_EQ(decode(L, lua_tostring(L, -1), lua_rawlen(L, -1)), -1);
  ASSERT_STR_EQ(lua_tostring(L, -1),
                "json: nesting deeper than 1000 at byte 1001");
  lua_settop(L, 0);
}

TEST(shared_sparse_tables_are_cheap) {
  /* An emptied table keeps its slots; walking them for each of many
  ** references would take minutes. Plans are reused: this takes ms. */
  static const char *const code[] = {
      "local t = {} for i = 1, 200000 do t['k' .. i] = i end\n"
      "for k in pairs(t) do t[k] = nil end\n"
      "local a = {} for i = 1, 100000 do a[i] = t end return a",
      "local t = {} for i = 1, 200000 do t[i] = i end\n"
      "for i = 1, 200000 do t[i] = nil end t.x = 1\n"
      "local a = {} for i = 1, 100000 do a[i] = t end return a",
  };
  size_t i;
  for (i = 0; i < sizeof code / sizeof code[0]; i++) {
    clock_t t0 = clock();
    ASSERT_INT_EQ(run_lua(L, code[i]), LUA_OK);
    ASSERT_INT_EQ(encode(L, -1, 0), 0);
    ASSERT_INT_EQ(lua_rawlen(L, -1), i == 0 ? 300001 : 800001);
    ASSERT_TRUE(clock() - t0 < 5 * CLOCKS_PER_SEC);
    lua_settop(L, 0);
  }
}

/* ===================================================================== */
/* Whole documents                                                        */
/* ===================================================================== */

static const char nasty[] =
    " {\"\\u00e9t\\u00e9\": [1, -1, 0, -0, 0.0, -0.0, 1E3, 1e-3, 2.5E+10,\n"
    "  9007199254740993, 9223372036854775807, -9223372036854775808,\n"
    "  9223372036854775808, 123456789012345678901234567890, 0.1,\n"
    "  0.30000000000000004, 5e-324, 2.2250738585072014e-308,\n"
    "  1.7976931348623157e308],\n"
    " \"esc\": \"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000\\u001F\\u007f\\u00e9"
    "\\u4e2d\\ud83d\\ude00 raw: \xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80\",\n"
    " \"\": {}, \"empty\": [], \"nested\": [[[[]]], {\"a\": {\"b\": {\"c\":"
    " null}}}],\r\n"
    "\t\"dup\": 2, \"B\": true, \"a\": false, \"10\": \"ten\","
    " \"9\": \"nine\",\n"
    " \"nulls\": [null, null], \"mixed\": [1, \"1\", 1.0, [1], {\"1\": 1}] "
    "} ";

static const char nasty_canonical[] =
    "{\"\":{},\"10\":\"ten\",\"9\":\"nine\",\"B\":true,\"a\":false,"
    "\"dup\":2,\"empty\":[],"
    "\"esc\":\"\\\"\\\\/\\b\\f\\n\\r\\t\\u0000\\u001f\x7F\xC3\xA9\xE4\xB8\xAD"
    "\xF0\x9F\x98\x80 raw: \xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80\","
    "\"mixed\":[1,\"1\",1.0,[1],{\"1\":1}],"
    "\"nested\":[[[[]]],{\"a\":{\"b\":{\"c\":null}}}],"
    "\"nulls\":[null,null],"
    "\"\xC3\xA9t\xC3\xA9\":[1,-1,0,0,0.0,-0.0,1000.0,0.001,25000000000.0,"
    "9007199254740993,9223372036854775807,-9223372036854775808,"
    "9.223372036854776e+18,1.2345678901234568e+29,0.1,"
    "0.30000000000000004,5e-324,2.2250738585072014e-308,"
    "1.7976931348623157e+308]}";

TEST(nasty_document_round_trips) {
  /* decode -> encode -> decode -> encode: byte-identical, and canonical */
  ASSERT_INT_EQ(roundtrip(L, nasty, sizeof nasty - 1, 0), 0);
  ASSERT_STR_EQ(lua_tostring(L, -1), nasty_canonical);
  ASSERT_INT_EQ(roundtrip(L, lua_tostring(L, -1), lua_rawlen(L, -1), 0), 0);
  ASSERT_STR_EQ(lua_tostring(L, -1), nasty_canonical);
  /* the pretty form reads back to the same canonical text */
  ASSERT_INT_EQ(roundtrip(L, nasty_canonical, sizeof nasty_canonical - 1, 1),
                0);
  ASSERT_INT_EQ(roundtrip(L, lua_tostring(L, -1), lua_rawlen(L, -1), 0), 0);
  ASSERT_STR_EQ(lua_tostring(L, -1), nasty_canonical);
  lua_settop(L, 0);
}

TEST(pretty_output) {
  static const char in[] =
      "{\"b\":{\"c\":null,\"d\":[]},\"a\":[1,2.5,{},[true]],\"e\":\"x\"}";
  static const char out[] = "{\n"
                            "  \"a\": [\n"
                            "    1,\n"
                            "    2.5,\n"
                            "    {},\n"
                            "    [\n"
                            "      true\n"
                            "    ]\n"
                            "  ],\n"
                            "  \"b\": {\n"
                            "    \"c\": null,\n"
                            "    \"d\": []\n"
                            "  },\n"
                            "  \"e\": \"x\"\n"
                            "}";
  ASSERT_INT_EQ(roundtrip(L, in, sizeof in - 1, 1), 0);
  ASSERT_STR_EQ(lua_tostring(L, -1), out);
  lua_pop(L, 1);
  ASSERT_INT_EQ(roundtrip(L, "[]", 2, 1), 0);
  ASSERT_STR_EQ(lua_tostring(L, -1), "[]");
  lua_pop(L, 1);
  ASSERT_INT_EQ(roundtrip(L, "\"a\"", 3, 1), 0);
  ASSERT_STR_EQ(lua_tostring(L, -1), "\"a\"");
  lua_pop(L, 1);
}

TEST(decoded_shapes) {
  /* arrays carry the marker, objects do not; null is the sentinel */
  static const char in[] = "{\"a\":[],\"b\":{},\"c\":null,\"d\":[null]}";
  ASSERT_INT_EQ(decode(L, in, sizeof in - 1), 0);
  ASSERT_TRUE(lua_getmetatable(L, -1) == 0);
  ASSERT_INT_EQ(lua_getfield(L, -1, "a"), LUA_TTABLE);
  ASSERT_TRUE(lua_getmetatable(L, -1) == 1);
  lua_pop(L, 2);
  ASSERT_INT_EQ(lua_getfield(L, -1, "b"), LUA_TTABLE);
  ASSERT_TRUE(lua_getmetatable(L, -1) == 0);
  lua_pop(L, 1);
  ASSERT_INT_EQ(lua_getfield(L, -1, "c"), LUA_TLIGHTUSERDATA);
  ASSERT_TRUE(lua_touserdata(L, -1) == NULL);
  lua_pop(L, 1);
  ASSERT_INT_EQ(lua_getfield(L, -1, "d"), LUA_TTABLE);
  ASSERT_INT_EQ(lua_rawlen(L, -1), 1);
  ASSERT_INT_EQ(lua_rawgeti(L, -1, 1), LUA_TLIGHTUSERDATA);
  lua_settop(L, 0);
}

/* negidx_cb() -> text, top, s: encode a value below another one. */
static int negidx_cb(lua_State *L) {
  lua_pushinteger(L, 7);
  lua_pushstring(L, "below");
  lua_newtable(L);
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, "ok");
  lua_pushnil(L);
  if (chm__json_encode(L, -2, 0) != 0)
    return lua_error(L);
  lua_pushinteger(L, lua_gettop(L)); /* 5 */
  lua_pushvalue(L, 2);               /* "below" */
  return 3;
}

/* nulltext_cb() -> message, rc: decode NULL text of length 0. */
static int nulltext_cb(lua_State *L) {
  int rc = chm__json_decode(L, NULL, 0);
  lua_pushinteger(L, rc);
  return 2;
}

TEST(negative_index_and_stack) {
  lua_pushcfunction(L, negidx_cb);
  ASSERT_INT_EQ(lua_pcall(L, 0, 3, 0), LUA_OK);
  ASSERT_STR_EQ(lua_tostring(L, -3), "{\"ok\":true}");
  ASSERT_INT_EQ(lua_tointeger(L, -2), 5);
  ASSERT_STR_EQ(lua_tostring(L, -1), "below");
  lua_settop(L, 0);
  /* NULL text with length 0 is the empty text */
  lua_pushcfunction(L, nulltext_cb);
  ASSERT_INT_EQ(lua_pcall(L, 0, 2, 0), LUA_OK);
  ASSERT_INT_EQ(lua_tointeger(L, -1), -1);
  ASSERT_STR_EQ(lua_tostring(L, -2), "json: unexpected end of input at byte 1");
  lua_settop(L, 0);
}

/* ===================================================================== */
/* The Lua library (chm__json_open)                                       */
/* ===================================================================== */

static const char *const lua_checks[] = {
    /* fresh tables on every open; scribbling on one harms no other */
    "local a, b = json_open(), json_open()\n"
    "assert(a ~= b and a.null == b.null and a.null == json.null)\n"
    "a.encode = nil\n"
    "assert(type(b.encode) == 'function')\n"
    "return true",
    /* encode / decode from Lua */
    "assert(json.encode({b = 1, a = {1, 2}}) == '{\"a\":[1,2],\"b\":1}')\n"
    "assert(json.encode({x = 1}, true) == '{\\n  \"x\": 1\\n}')\n"
    "local v = json.decode('[9007199254740993, 1.0, null]')\n"
    "assert(math.type(v[1]) == 'integer' and v[1] == 9007199254740993)\n"
    "assert(math.type(v[2]) == 'float' and v[3] == json.null)\n"
    "assert(json.encode(v) == '[9007199254740993,1.0,null]')\n"
    "return true",
    /* errors are raised with the caller's position, like luaL_error */
    "local ok, err = pcall(function() return json.encode({f = print}) end)\n"
    "assert(not ok)\n"
    "assert(err == '[string \"chunk\"]:1: json: $.f: cannot encode a value "
    "of type \\'function\\'', err)\n"
    "return true",
    "local ok, err = pcall(function() return json.decode('[1,') end)\n"
    "assert(not ok and err:find('json: unexpected end of input at byte 4',"
    " 1, true), err)\n"
    "ok, err = pcall(json.decode, 5)\n"
    "assert(not ok and err:find('string expected', 1, true), err)\n"
    "ok, err = pcall(json.encode)\n"
    "assert(not ok and err:find('value expected', 1, true), err)\n"
    "return true",
    /* json.array marks, returns its argument, and is idempotent */
    "local t = {}\n"
    "assert(json.array(t) == t and json.array(t) == t)\n"
    "assert(json.encode(t) == '[]')\n"
    "assert(getmetatable(t) == 'json.array')\n"
    "assert(not pcall(setmetatable, t, nil))\n"
    "local p = setmetatable({}, {__metatable = 'mine'})\n"
    "local ok, err = pcall(json.array, p)\n"
    "assert(not ok and err:find('protected metatable', 1, true), err)\n"
    "assert(not pcall(json.array, 'x'))\n"
    "assert(getmetatable(json.decode('[]')) == 'json.array')\n"
    "assert(tostring(json.decode('[]')):find('^json.array: '))\n"
    "return true",
};

TEST(lua_library) {
  size_t i;
  for (i = 0; i < sizeof lua_checks / sizeof lua_checks[0]; i++) {
    int rc = luaL_loadbuffer(L, lua_checks[i], strlen(lua_checks[i]),
                             "=[string \"chunk\"]");
    if (rc == LUA_OK)
      rc = lua_pcall(L, 0, 1, 0);
    if (rc != LUA_OK)
      FAIL_AT("check %zu failed: %s", i + 1, lua_tostring(L, -1));
    lua_settop(L, 0);
  }
}

/* ===================================================================== */
/* Locale: a decimal comma must change nothing                            */
/* ===================================================================== */

TEST(decimal_comma_locale) {
  static const char *const names[] = {"de_DE.UTF-8", "de_DE.utf8",
                                      "fr_FR.UTF-8", "fr_FR.utf8",
                                      "de_DE",       "fr_FR"};
  size_t i;
  int set = 0;
  for (i = 0; i < sizeof names / sizeof names[0] && !set; i++)
    set = setlocale(LC_NUMERIC, names[i]) != NULL;
  if (!set) {
    printf("  (no decimal-comma locale installed: checked in C only)\n");
    return;
  }
  check_canonical(L, "[0.5,1.0,-2.25e-300,1e+300]",
                  "[0.5,1.0,-2.25e-300,1e+300]");
  check_float(L, 1.0 / 3);
  check_float(L, 5e-324);
  setlocale(LC_NUMERIC, "C");
}

/* ===================================================================== */
/* Memory cap: fail with LUA_ERRMEM inside lua_pcall, never crash or leak */
/* ===================================================================== */

typedef struct capped {
  size_t used;  /* bytes allocated now */
  size_t limit; /* refuse to grow past this */
} capped;

static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  capped *a = (capped *)ud;
  size_t old = ptr != NULL ? osize : 0;
  void *p;
  if (nsize == 0) {
    free(ptr);
    a->used -= old;
    return NULL;
  }
  if (nsize > old && (a->used > a->limit || nsize - old > a->limit - a->used))
    return NULL;
  p = realloc(ptr, nsize);
  if (p == NULL)
    return NULL;
  a->used = a->used - old + nsize;
  return p;
}

/* push_big(L, n): an array of n objects {i = i, name = <100 bytes>, f} */
static void push_big(lua_State *L, int n) {
  char name[128];
  int i;
  lua_createtable(L, n, 0);
  for (i = 1; i <= n; i++) {
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, i);
    lua_setfield(L, -2, "i");
    snprintf(name, sizeof name, "%08d %090d \xC3\xA9", i, i);
    lua_pushstring(L, name);
    lua_setfield(L, -2, "name");
    lua_pushnumber(L, i + 0.25);
    lua_setfield(L, -2, "f");
    lua_rawseti(L, -2, i);
  }
}

/* pcall_codec(CL, cb, nargs) -> lua_pcall status; leaves 1 value. */
static int pcall_codec(lua_State *CL, lua_CFunction cb, int nargs) {
  int st;
  lua_pushcfunction(CL, cb);
  lua_insert(CL, -(nargs + 1));
  st = lua_pcall(CL, nargs, 3, 0);
  if (st == LUA_OK)
    lua_pop(CL, 2);
  return st;
}

static void check_memory_cap(capped *a, lua_State *CL) {
  size_t full_len, headroom;
  int st, failed = 0, passed = 0;
  /* A big value, then a cap just above what the state already uses. */
  push_big(CL, 5000); /* about 700 KB of JSON */
  lua_pushvalue(CL, 1);
  lua_pushboolean(CL, 1);
  ASSERT_INT_EQ(pcall_codec(CL, encode_cb, 2), LUA_OK);
  full_len = lua_rawlen(CL, -1);
  ASSERT_TRUE(full_len > 500000);
  lua_settop(CL, 1);
  lua_gc(CL, LUA_GCCOLLECT);
  a->limit = a->used + 64 * 1024;
  lua_pushvalue(CL, 1);
  lua_pushboolean(CL, 1);
  st = pcall_codec(CL, encode_cb, 2);
  ASSERT_INT_EQ(st, LUA_ERRMEM);
  ASSERT_STR_EQ(lua_tostring(CL, -1), "not enough memory");
  ASSERT_INT_EQ(lua_gettop(CL), 2);
  lua_settop(CL, 1);
  /* The state is intact: with room again, the same call succeeds. */
  a->limit = (size_t)256 << 20;
  lua_pushvalue(CL, 1);
  lua_pushboolean(CL, 1);
  ASSERT_INT_EQ(pcall_codec(CL, encode_cb, 2), LUA_OK);
  ASSERT_INT_EQ(lua_rawlen(CL, -1), full_len);
  /* Decoding the text under the same kind of cap fails the same way. */
  lua_gc(CL, LUA_GCCOLLECT);
  a->limit = a->used + 64 * 1024;
  lua_pushvalue(CL, 2);
  ASSERT_INT_EQ(pcall_codec(CL, decode_cb, 1), LUA_ERRMEM);
  lua_settop(CL, 2);
  a->limit = (size_t)256 << 20;
  lua_pushvalue(CL, 2);
  ASSERT_INT_EQ(pcall_codec(CL, decode_cb, 1), LUA_OK);
  lua_settop(CL, 0);
  /* Every allocation point: sweep the headroom over a smaller value; each
  ** attempt either succeeds or fails with LUA_ERRMEM, never anything else. */
  push_big(CL, 40);
  lua_gc(CL, LUA_GCCOLLECT);
  for (headroom = 0; headroom < 48 * 1024; headroom += 96) {
    lua_gc(CL, LUA_GCCOLLECT);
    a->limit = a->used + headroom;
    lua_pushvalue(CL, 1);
    lua_pushboolean(CL, (int)(headroom / 96) % 2);
    st = pcall_codec(CL, encode_cb, 2);
    if (st == LUA_OK && lua_isstring(CL, -1)) {
      lua_pushvalue(CL, -1);
      st = pcall_codec(CL, decode_cb, 1);
    }
    if (st != LUA_OK && st != LUA_ERRMEM)
      FAIL_AT("status %d at headroom %zu: %s", st, headroom,
              lua_tostring(CL, -1));
    if (st == LUA_OK)
      passed++;
    else
      failed++;
    a->limit = (size_t)256 << 20;
    lua_settop(CL, 1);
  }
  ASSERT_TRUE(failed > 0 && passed > 0);
}

TEST(memory_cap) {
  capped a = {0, (size_t)256 << 20};
  lua_State *CL = lua_newstate(capped_alloc, &a);
  ASSERT_TRUE(CL != NULL);
  check_memory_cap(&a, CL);
  lua_close(CL);
  ASSERT_INT_EQ(a.used, 0); /* everything came back: no leak */
}

/* ===================================================================== */
/* Runner                                                                 */
/* ===================================================================== */

#define TEST_LIST(X)                                                           \
  X(canonical_cases)                                                           \
  X(decode_errors)                                                             \
  X(encode_cases)                                                              \
  X(encode_light_userdata)                                                     \
  X(integers_exact)                                                            \
  X(floats_stay_floats)                                                        \
  X(floats_bit_exact)                                                          \
  X(unicode)                                                                   \
  X(depth_limits)                                                              \
  X(shared_sparse_tables_are_cheap)                                            \
  X(nasty_document_round_trips)                                                \
  X(pretty_output)                                                             \
  X(decoded_shapes)                                                            \
  X(negative_index_and_stack)                                                  \
  X(lua_library)                                                               \
  X(decimal_comma_locale)                                                      \
  X(memory_cap)

static const struct {
  const char *name;
  void (*fn)(lua_State *L);
} tests[] = {
#define TEST_ROW(name) {#name, test_##name},
    TEST_LIST(TEST_ROW)
#undef TEST_ROW
};

int main(int argc, char **argv) {
  int passed = 0, failed = 0;
  size_t i;
  for (i = 0; i < sizeof tests / sizeof tests[0]; i++) {
    lua_State *L;
    if (argc > 1 && strcmp(argv[1], tests[i].name) != 0)
      continue;
    L = luaL_newstate();
    luaL_openlibs(L);
    chm__json_open(L);
    lua_setglobal(L, "json");
    lua_register(L, "json_open", chm__json_open);
    test_failed = 0;
    tests[i].fn(L);
    lua_close(L);
    printf("%s %s\n", test_failed ? "FAIL" : "ok  ", tests[i].name);
    if (test_failed)
      failed++;
    else
      passed++;
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed > 0;
}
