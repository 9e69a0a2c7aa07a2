/*
** json.c — a small, strict JSON reader for the CLI. The library answers in
** JSON (reports, listings, query rows); the CLI reads those answers into a
** read-only tree to print tables. Numbers keep their literal text so that
** nothing is rounded on the way to the screen. Relies only on the C library;
** the library's own codec is internal and not part of the public API.
*/
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define MAX_DEPTH 256 /* nesting bound: reports are shallow, input is trusted */

typedef struct parser {
  const char *s; /* whole text */
  size_t i;      /* current offset */
  char *err;     /* caller's error buffer */
  size_t errlen; /* its size */
  int failed;    /* 1 once an error was recorded */
} parser;

/* ---- errors and scanning ------------------------------------------------ */

static void fail(parser *p, const char *what) {
  if (p->failed)
    return;
  p->failed = 1;
  if (p->err && p->errlen)
    snprintf(p->err, p->errlen, "offset %zu: %s", p->i, what);
}

static void skip_ws(parser *p) {
  while (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' ||
         p->s[p->i] == '\r')
    p->i++;
}

static cli_jv *new_value(parser *p, cli_jtype type) {
  cli_jv *v = calloc(1, sizeof *v);
  if (!v)
    fail(p, "out of memory");
  else
    v->type = type;
  return v;
}

/* ---- strings ------------------------------------------------------------ */

static int hex4(const char *s, unsigned *out) {
  unsigned v = 0;
  for (int k = 0; k < 4; k++) {
    char ch = s[k];
    v <<= 4;
    if (ch >= '0' && ch <= '9')
      v |= (unsigned)(ch - '0');
    else if (ch >= 'a' && ch <= 'f')
      v |= (unsigned)(ch - 'a' + 10);
    else if (ch >= 'A' && ch <= 'F')
      v |= (unsigned)(ch - 'A' + 10);
    else
      return 0;
  }
  *out = v;
  return 1;
}

static void put_utf8(cli_buf *b, unsigned cp) {
  char u[4];
  size_t n;
  if (cp < 0x80) {
    u[0] = (char)cp;
    n = 1;
  } else if (cp < 0x800) {
    u[0] = (char)(0xC0 | (cp >> 6));
    u[1] = (char)(0x80 | (cp & 0x3F));
    n = 2;
  } else if (cp < 0x10000) {
    u[0] = (char)(0xE0 | (cp >> 12));
    u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    u[2] = (char)(0x80 | (cp & 0x3F));
    n = 3;
  } else {
    u[0] = (char)(0xF0 | (cp >> 18));
    u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    u[3] = (char)(0x80 | (cp & 0x3F));
    n = 4;
  }
  cli_buf_add(b, u, n);
}

/* Parse a string literal at p->i (on the opening quote); returns a new
** NUL-terminated decoded string or NULL. */
static char *parse_string(parser *p) {
  cli_buf b = {0};
  p->i++; /* opening quote */
  for (;;) {
    unsigned char ch = (unsigned char)p->s[p->i];
    if (ch == '"') {
      p->i++;
      break;
    }
    if (ch == 0) {
      fail(p, "unterminated string");
      goto bad;
    }
    if (ch < 0x20) {
      fail(p, "control character in string");
      goto bad;
    }
    if (ch != '\\') {
      size_t start = p->i;
      while ((unsigned char)p->s[p->i] >= 0x20 && p->s[p->i] != '"' &&
             p->s[p->i] != '\\')
        p->i++;
      cli_buf_add(&b, p->s + start, p->i - start);
      continue;
    }
    p->i++;
    switch (p->s[p->i]) {
    case '"':
      cli_buf_add(&b, "\"", 1);
      break;
    case '\\':
      cli_buf_add(&b, "\\", 1);
      break;
    case '/':
      cli_buf_add(&b, "/", 1);
      break;
    case 'b':
      cli_buf_add(&b, "\b", 1);
      break;
    case 'f':
      cli_buf_add(&b, "\f", 1);
      break;
    case 'n':
      cli_buf_add(&b, "\n", 1);
      break;
    case 'r':
      cli_buf_add(&b, "\r", 1);
      break;
    case 't':
      cli_buf_add(&b, "\t", 1);
      break;
    case 'u': {
      unsigned cp, lo;
      if (!hex4(p->s + p->i + 1, &cp)) {
        fail(p, "bad \\u escape");
        goto bad;
      }
      p->i += 4;
      if (cp >= 0xD800 && cp <= 0xDBFF && p->s[p->i + 1] == '\\' &&
          p->s[p->i + 2] == 'u' && hex4(p->s + p->i + 3, &lo) && lo >= 0xDC00 &&
          lo <= 0xDFFF) {
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        p->i += 6;
      } else if (cp >= 0xD800 && cp <= 0xDFFF) {
        cp = 0xFFFD; /* lone surrogate */
      }
      if (cp == 0)
        cp = 0xFFFD; /* keep C strings whole */
      put_utf8(&b, cp);
      break;
    }
    default:
      fail(p, "bad escape in string");
      goto bad;
    }
    p->i++;
  }
  if (!b.s)
    cli_buf_add(&b, "", 0);
  return b.s;
bad:
  cli_buf_free(&b);
  return NULL;
}

/* ---- values ------------------------------------------------------------- */

static cli_jv *parse_value(parser *p, int depth);

static cli_jv *parse_number(parser *p) {
  size_t start = p->i;
  if (p->s[p->i] == '-')
    p->i++;
  if (p->s[p->i] < '0' || p->s[p->i] > '9') {
    fail(p, "bad number");
    return NULL;
  }
  while ((p->s[p->i] >= '0' && p->s[p->i] <= '9') || p->s[p->i] == '.' ||
         p->s[p->i] == 'e' || p->s[p->i] == 'E' || p->s[p->i] == '+' ||
         p->s[p->i] == '-')
    p->i++;
  cli_jv *v = new_value(p, CLI_JNUMBER);
  if (!v)
    return NULL;
  v->text = strndup(p->s + start, p->i - start);
  if (!v->text) {
    free(v);
    fail(p, "out of memory");
    return NULL;
  }
  return v;
}

static int literal(parser *p, const char *word) {
  size_t n = strlen(word);
  if (strncmp(p->s + p->i, word, n) != 0)
    return 0;
  p->i += n;
  return 1;
}

/* Parse the members of an array or object after its opening bracket. */
static cli_jv *parse_container(parser *p, int depth, int is_object) {
  cli_jv *v = new_value(p, is_object ? CLI_JOBJECT : CLI_JARRAY);
  cli_jv **tail;
  char close = is_object ? '}' : ']';
  if (!v)
    return NULL;
  if (depth > MAX_DEPTH) {
    fail(p, "nesting too deep");
    return v;
  }
  tail = &v->child;
  p->i++;
  skip_ws(p);
  if (p->s[p->i] == close) {
    p->i++;
    return v;
  }
  for (;;) {
    char *key = NULL;
    cli_jv *item;
    skip_ws(p);
    if (is_object) {
      if (p->s[p->i] != '"') {
        fail(p, "expected a member name");
        return v;
      }
      if (!(key = parse_string(p)))
        return v;
      skip_ws(p);
      if (p->s[p->i] != ':') {
        free(key);
        fail(p, "expected ':'");
        return v;
      }
      p->i++;
    }
    item = parse_value(p, depth + 1);
    if (!item) {
      free(key);
      return v;
    }
    item->key = key;
    *tail = item;
    tail = &item->next;
    v->n++;
    if (p->failed)
      return v;
    skip_ws(p);
    if (p->s[p->i] == ',') {
      p->i++;
      continue;
    }
    if (p->s[p->i] == close) {
      p->i++;
      return v;
    }
    fail(p, is_object ? "expected ',' or '}'" : "expected ',' or ']'");
    return v;
  }
}

static cli_jv *parse_value(parser *p, int depth) {
  cli_jv *v;
  skip_ws(p);
  switch (p->s[p->i]) {
  case '{':
    return parse_container(p, depth, 1);
  case '[':
    return parse_container(p, depth, 0);
  case '"': {
    char *s = parse_string(p);
    if (!s)
      return NULL;
    if (!(v = new_value(p, CLI_JSTRING))) {
      free(s);
      return NULL;
    }
    v->text = s;
    return v;
  }
  case 't':
    if (literal(p, "true"))
      return new_value(p, CLI_JTRUE);
    break;
  case 'f':
    if (literal(p, "false"))
      return new_value(p, CLI_JFALSE);
    break;
  case 'n':
    if (literal(p, "null"))
      return new_value(p, CLI_JNULL);
    break;
  default:
    if (p->s[p->i] == '-' || (p->s[p->i] >= '0' && p->s[p->i] <= '9'))
      return parse_number(p);
  }
  fail(p, p->s[p->i] ? "unexpected character" : "unexpected end of text");
  return NULL;
}

/* ---- public (to the CLI) ------------------------------------------------ */

cli_jv *cli_json_parse(const char *text, char *err, size_t errlen) {
  parser p = {text ? text : "", 0, err, errlen, 0};
  cli_jv *v = parse_value(&p, 0);
  if (!p.failed) {
    skip_ws(&p);
    if (p.s[p.i] != 0)
      fail(&p, "text after the value");
  }
  if (p.failed) {
    cli_json_free(v);
    return NULL;
  }
  return v;
}

void cli_json_free(cli_jv *v) {
  while (v) {
    cli_jv *next = v->next;
    cli_json_free(v->child);
    free(v->text);
    free(v->key);
    free(v);
    v = next;
  }
}

const cli_jv *cli_json_get(const cli_jv *obj, const char *key) {
  if (!obj || obj->type != CLI_JOBJECT)
    return NULL;
  for (const cli_jv *m = obj->child; m; m = m->next)
    if (strcmp(m->key, key) == 0)
      return m;
  return NULL;
}

const cli_jv *cli_json_any(const cli_jv *obj, ...) {
  const cli_jv *found = NULL;
  const char *key;
  va_list ap;
  va_start(ap, obj);
  while (!found && (key = va_arg(ap, const char *)) != NULL) {
    const cli_jv *v = cli_json_get(obj, key);
    if (v && v->type != CLI_JNULL)
      found = v;
  }
  va_end(ap);
  return found;
}

int cli_json_truthy(const cli_jv *v) {
  if (!v)
    return 0;
  switch (v->type) {
  case CLI_JTRUE:
    return 1;
  case CLI_JNUMBER:
    return strtod(v->text, NULL) != 0;
  case CLI_JSTRING:
    return v->text[0] && strcmp(v->text, "0") != 0 &&
           strcmp(v->text, "false") != 0;
  case CLI_JARRAY:
  case CLI_JOBJECT:
    return v->n > 0;
  default:
    return 0;
  }
}
