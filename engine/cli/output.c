/*
** output.c — printing helpers of the CLI: a growable string, JSON string
** escaping and compact re-serialisation of parsed values, table cells and
** timestamps, aligned text tables in the spirit of sqlite3's `.mode
** column`, the sections of a workflow shared by show and describe, and the
** report of an invalid definition. Owns no state; relies on json.c's tree.
*/
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

/* ===================================================================== */
/* Growable strings                                                       */
/* ===================================================================== */

/* Make room for `extra` more bytes plus the NUL; exits when out of memory
** (the CLI has nothing useful to do without memory). */
static void reserve(cli_buf *b, size_t extra) {
  size_t cap = b->cap ? b->cap : 64;
  char *p;
  if (b->len + extra + 1 <= b->cap)
    return;
  while (cap < b->len + extra + 1)
    cap *= 2;
  p = realloc(b->s, cap);
  if (!p) {
    fputs("chameleon: out of memory\n", stderr);
    exit(CLI_EXIT_ERROR);
  }
  b->s = p;
  b->cap = cap;
}

void cli_buf_add(cli_buf *b, const char *s, size_t n) {
  reserve(b, n);
  if (n)
    memcpy(b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = 0;
}

void cli_buf_puts(cli_buf *b, const char *s) { cli_buf_add(b, s, strlen(s)); }

void cli_buf_printf(cli_buf *b, const char *fmt, ...) {
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  reserve(b, (size_t)n);
  va_start(ap, fmt);
  vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

void cli_buf_free(cli_buf *b) {
  free(b->s);
  b->s = NULL;
  b->len = b->cap = 0;
}

/* ===================================================================== */
/* JSON writing                                                           */
/* ===================================================================== */

void cli_buf_jstr(cli_buf *b, const char *s) {
  cli_buf_add(b, "\"", 1);
  for (; s && *s; s++) {
    unsigned char ch = (unsigned char)*s;
    switch (ch) {
    case '"':
      cli_buf_add(b, "\\\"", 2);
      break;
    case '\\':
      cli_buf_add(b, "\\\\", 2);
      break;
    case '\n':
      cli_buf_add(b, "\\n", 2);
      break;
    case '\r':
      cli_buf_add(b, "\\r", 2);
      break;
    case '\t':
      cli_buf_add(b, "\\t", 2);
      break;
    default:
      if (ch < 0x20)
        cli_buf_printf(b, "\\u%04x", ch);
      else
        cli_buf_add(b, s, 1);
    }
  }
  cli_buf_add(b, "\"", 1);
}

void cli_json_dump(cli_buf *b, const cli_jv *v) {
  if (!v) {
    cli_buf_puts(b, "null");
    return;
  }
  switch (v->type) {
  case CLI_JNULL:
    cli_buf_puts(b, "null");
    break;
  case CLI_JTRUE:
    cli_buf_puts(b, "true");
    break;
  case CLI_JFALSE:
    cli_buf_puts(b, "false");
    break;
  case CLI_JNUMBER:
    cli_buf_puts(b, v->text);
    break;
  case CLI_JSTRING:
    cli_buf_jstr(b, v->text);
    break;
  case CLI_JARRAY:
  case CLI_JOBJECT:
    cli_buf_add(b, v->type == CLI_JARRAY ? "[" : "{", 1);
    for (const cli_jv *e = v->child; e; e = e->next) {
      if (e != v->child)
        cli_buf_add(b, ",", 1);
      if (v->type == CLI_JOBJECT) {
        cli_buf_jstr(b, e->key);
        cli_buf_add(b, ":", 1);
      }
      cli_json_dump(b, e);
    }
    cli_buf_add(b, v->type == CLI_JARRAY ? "]" : "}", 1);
    break;
  }
}

/* ===================================================================== */
/* Cells                                                                  */
/* ===================================================================== */

const char *cli_cell(cli_buf *b, const cli_jv *v) {
  b->len = 0;
  cli_buf_add(b, "", 0);
  if (!v)
    return b->s;
  switch (v->type) {
  case CLI_JNULL:
    break;
  case CLI_JSTRING:
  case CLI_JNUMBER:
    cli_buf_puts(b, v->text);
    break;
  default:
    cli_json_dump(b, v);
  }
  return b->s;
}

const char *cli_time(cli_buf *b, const cli_jv *v) {
  if (v && v->type == CLI_JNUMBER) {
    double ms = strtod(v->text, NULL);
    /* Milliseconds since the epoch: anything after 2001-09-09. */
    if (ms > 1e12 && ms < 1e15) {
      time_t t = (time_t)(ms / 1000);
      struct tm tm;
      char out[32];
      if (gmtime_r(&t, &tm) &&
          strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%SZ", &tm)) {
        b->len = 0;
        cli_buf_puts(b, out);
        return b->s;
      }
    }
  }
  return cli_cell(b, v);
}

/* ===================================================================== */
/* Tables                                                                 */
/* ===================================================================== */

static char *cell_dup(const char *s) {
  size_t n = s ? strlen(s) : 0;
  char *d = malloc(n + 1);
  if (!d) {
    fputs("chameleon: out of memory\n", stderr);
    exit(CLI_EXIT_ERROR);
  }
  for (size_t i = 0; i < n; i++)
    d[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? ' ' : s[i];
  d[n] = 0;
  return d;
}

/* Display width: UTF-8 characters, not bytes. */
static size_t width(const char *s) {
  size_t w = 0;
  for (; *s; s++)
    if (((unsigned char)*s & 0xC0) != 0x80)
      w++;
  return w;
}

void cli_table_init(cli_table *t, int ncol, const char *const *headers) {
  memset(t, 0, sizeof *t);
  t->ncol = ncol;
  cli_table_add(t, headers);
}

void cli_table_add(cli_table *t, const char *const *cells) {
  if (t->rows == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 16;
    char **p = realloc(t->cells, cap * (size_t)t->ncol * sizeof *p);
    if (!p) {
      fputs("chameleon: out of memory\n", stderr);
      exit(CLI_EXIT_ERROR);
    }
    t->cells = p;
    t->cap = cap;
  }
  for (int j = 0; j < t->ncol; j++)
    t->cells[t->rows * (size_t)t->ncol + (size_t)j] = cell_dup(cells[j]);
  t->rows++;
}

void cli_table_print(const cli_table *t, FILE *f, int indent) {
  size_t *w = calloc((size_t)t->ncol, sizeof *w);
  if (!w)
    return;
  for (size_t r = 0; r < t->rows; r++)
    for (int j = 0; j < t->ncol; j++) {
      size_t cw = width(t->cells[r * (size_t)t->ncol + (size_t)j]);
      if (cw > w[j])
        w[j] = cw;
    }
  for (size_t r = 0; r < t->rows; r++) {
    for (int pass = 0; pass < (r == 0 ? 2 : 1); pass++) {
      /* Pass 0 prints the row; pass 1 (header only) the underline. */
      cli_buf line = {0};
      for (int k = 0; k < indent; k++)
        cli_buf_add(&line, " ", 1);
      for (int j = 0; j < t->ncol; j++) {
        const char *cell = t->cells[r * (size_t)t->ncol + (size_t)j];
        size_t cw = pass ? w[j] : width(cell);
        if (j)
          cli_buf_add(&line, "  ", 2);
        if (pass)
          for (size_t k = 0; k < w[j]; k++)
            cli_buf_add(&line, "-", 1);
        else
          cli_buf_puts(&line, cell);
        for (size_t k = cw; k < w[j]; k++)
          cli_buf_add(&line, " ", 1);
      }
      while (line.len && line.s[line.len - 1] == ' ')
        line.s[--line.len] = 0;
      fprintf(f, "%s\n", line.s ? line.s : "");
      cli_buf_free(&line);
    }
  }
  free(w);
}

void cli_table_free(cli_table *t) {
  for (size_t i = 0; i < t->rows * (size_t)t->ncol; i++)
    free(t->cells[i]);
  free(t->cells);
  memset(t, 0, sizeof *t);
}

/* ===================================================================== */
/* Text                                                                   */
/* ===================================================================== */

int cli_put_text(FILE *f, const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n && fwrite(s, 1, n, f) != n)
    return -1;
  if ((n == 0 || s[n - 1] != '\n') && fputc('\n', f) == EOF)
    return -1;
  return 0;
}

int cli_count_lines(const char *s) {
  int n = 0, blank = 1;
  for (; s && *s; s++) {
    if (*s == '\n') {
      n += !blank;
      blank = 1;
    } else if (*s != ' ' && *s != '\t' && *s != '\r') {
      blank = 0;
    }
  }
  return n + !blank;
}

/* ===================================================================== */
/* Sections of a workflow (show, describe)                               */
/* ===================================================================== */

/* Render one cell of column col from object row into b. */
static const char *column_cell(cli_buf *b, const cli_jv *row,
                               const cli_col *col) {
  const cli_jv *v = NULL;
  for (int k = 0; k < 4 && col->keys[k] && !v; k++)
    v = cli_json_any(row, col->keys[k], (const char *)NULL);
  switch (col->kind) {
  case CLI_COL_YESNO:
    b->len = 0;
    cli_buf_puts(b, cli_json_truthy(v) ? "yes" : "no");
    return b->s;
  case CLI_COL_SET:
    b->len = 0;
    cli_buf_puts(b, v ? "yes" : "no");
    return b->s;
  case CLI_COL_TIME:
    cli_time(b, v);
    break;
  default:
    cli_cell(b, v);
  }
  if (!*b->s)
    cli_buf_puts(b, "-");
  return b->s;
}

void cli_print_section(FILE *f, const char *title, const cli_jv *arr,
                       const cli_col *cols, int ncol, int indent) {
  cli_table t;
  const char *heads[8];
  const char *cells[8];
  cli_buf bufs[8];

  if (!arr || arr->type != CLI_JARRAY || ncol > 8)
    return;
  fprintf(f, "\n%*s%s (%zu)\n", indent, "", title, arr->n);
  if (arr->n == 0)
    return;
  for (int j = 0; j < ncol; j++)
    heads[j] = cols[j].header;
  memset(bufs, 0, sizeof bufs);
  cli_table_init(&t, ncol, heads);
  for (const cli_jv *row = arr->child; row; row = row->next) {
    for (int j = 0; j < ncol; j++) {
      if (row->type == CLI_JOBJECT) {
        cells[j] = column_cell(&bufs[j], row, &cols[j]);
      } else { /* a bare name instead of an object */
        cells[j] = j == 0 ? cli_cell(&bufs[j], row) : "-";
      }
    }
    cli_table_add(&t, cells);
  }
  cli_table_print(&t, f, indent + 2);
  cli_table_free(&t);
  for (int j = 0; j < ncol; j++)
    cli_buf_free(&bufs[j]);
}

static const cli_col role_cols[] = {
    {"NAME", CLI_COL_TEXT, {"name"}},
    {"TYPE", CLI_COL_TEXT, {"type", "role_type"}},
    {"STRATEGY", CLI_COL_TEXT, {"strategy", "decomposition_strategy"}},
    {"CHILD WORKFLOW",
     CLI_COL_TEXT,
     {"child_workflow", "linked_workflow", "linked_local_workflow_id"}},
    {"STEP", CLI_COL_SET, {"step", "step_lua"}}};
static const cli_col interaction_cols[] = {
    {"NAME", CLI_COL_TEXT, {"name"}},
    {"STALE LIMIT (s)", CLI_COL_TEXT, {"stale_token_limit_seconds"}},
    {"DESCRIPTION", CLI_COL_TEXT, {"description"}}};
static const cli_col component_cols[] = {
    {"NAME", CLI_COL_TEXT, {"name"}},
    {"ROLE", CLI_COL_TEXT, {"role", "role_name", "role_id"}},
    {"DIRECTION", CLI_COL_TEXT, {"direction"}},
    {"INTERACTION",
     CLI_COL_TEXT,
     {"interaction", "interaction_name", "interaction_id"}},
    {"ROUTING", CLI_COL_SET, {"routing"}}};
static const cli_col guardian_cols[] = {
    {"NAME", CLI_COL_TEXT, {"name"}},
    {"TYPE", CLI_COL_TEXT, {"type", "guardian_type"}},
    {"COMPONENT",
     CLI_COL_TEXT,
     {"component", "component_name", "component_id"}}};
static const cli_col actor_cols[] = {
    {"NAME", CLI_COL_TEXT, {"name"}},
    {"TYPE", CLI_COL_TEXT, {"type", "actor_type"}},
    {"IDENTITY", CLI_COL_TEXT, {"identity_key"}}};
static const cli_col assignment_cols[] = {
    {"ACTOR", CLI_COL_TEXT, {"actor", "actor_name", "actor_id"}},
    {"ROLE", CLI_COL_TEXT, {"role", "role_name", "role_id"}},
    {"WORKFLOW", CLI_COL_TEXT, {"workflow", "workflow_name"}},
    {"STATUS", CLI_COL_TEXT, {"status"}}};

#define NCOLS(a) ((int)(sizeof(a) / sizeof(a)[0]))

void cli_print_graph(FILE *f, const cli_jv *wf, int indent) {
  cli_print_section(f, "Roles", cli_json_get(wf, "roles"), role_cols,
                    NCOLS(role_cols), indent);
  cli_print_section(f, "Interactions", cli_json_get(wf, "interactions"),
                    interaction_cols, NCOLS(interaction_cols), indent);
  cli_print_section(f, "Components", cli_json_get(wf, "components"),
                    component_cols, NCOLS(component_cols), indent);
  cli_print_section(f, "Guardians", cli_json_get(wf, "guardians"),
                    guardian_cols, NCOLS(guardian_cols), indent);
}

void cli_print_people(FILE *f, const cli_jv *obj, int indent) {
  const cli_jv *asg = cli_json_get(obj, "assignments");
  int ncol = NCOLS(assignment_cols);
  int has_wf = 0;
  /* Show the WORKFLOW column only when assignments carry one (describe). */
  if (asg && asg->type == CLI_JARRAY)
    for (const cli_jv *a = asg->child; a && !has_wf; a = a->next)
      has_wf = cli_json_any(a, "workflow", "workflow_name",
                            (const char *)NULL) != NULL;
  cli_print_section(f, "Actors", cli_json_get(obj, "actors"), actor_cols,
                    NCOLS(actor_cols), indent);
  if (has_wf) {
    cli_print_section(f, "Assignments", asg, assignment_cols, ncol, indent);
  } else {
    const cli_col cols[] = {assignment_cols[0], assignment_cols[1],
                            assignment_cols[3]};
    cli_print_section(f, "Assignments", asg, cols, NCOLS(cols), indent);
  }
}

/* ===================================================================== */
/* Invalid definitions (import, validate, check)                         */
/* ===================================================================== */

/* Report an invalid definition: a summary line, then every violation as
** the library formatted it (FILE:LINE: [rule] message), then the hint. */
void cli_report_invalid(cli *c, const char *file, const char *violations,
                        const char *hint) {
  int n = cli_count_lines(violations);
  if (n == 0) {
    cli_error(c, CLI_EXIT_INVALID, hint, "%s: %s", file,
              chm_errstr(CHM_INVALID));
    return;
  }
  cli_error(c, CLI_EXIT_INVALID, hint, "%s: definition is invalid (%d %s):\n%s",
            file, n, n == 1 ? "violation" : "violations", violations);
}

/* One violation object of a report as "FILE:LINE: [rule] message". */
static void violation_line(cli_buf *b, const cli_jv *e) {
  cli_buf cell = {0};
  const cli_jv *file = cli_json_get(e, "file");
  const cli_jv *line = cli_json_get(e, "line");
  const cli_jv *rule = cli_json_get(e, "rule");
  const cli_jv *text = cli_json_any(e, "message", "error", (const char *)NULL);
  if (e->type != CLI_JOBJECT || !text) {
    cli_buf_puts(b, cli_cell(&cell, e));
  } else {
    if (file && *cli_cell(&cell, file)) {
      cli_buf_puts(b, cell.s);
      if (line && *cli_cell(&cell, line))
        cli_buf_printf(b, ":%s", cell.s);
      cli_buf_puts(b, ": ");
    }
    if (rule && *cli_cell(&cell, rule))
      cli_buf_printf(b, "[%s] ", cell.s);
    cli_buf_puts(b, cli_cell(&cell, text));
  }
  cli_buf_add(b, "\n", 1);
  cli_buf_free(&cell);
}

/* The violations as text, one per line: the handle's message, which the
** library formats as FILE:LINE: [rule] message lines; the report's
** "errors" array only when the message is empty. */
void cli_violations(cli_buf *b, const char *report, const char *msg) {
  b->len = 0;
  cli_buf_add(b, "", 0);
  if (msg && *msg && strcmp(msg, "ok") != 0) {
    cli_buf_puts(b, msg);
  } else if (report) {
    cli_jv *r = cli_json_parse(report, NULL, 0);
    const cli_jv *errs = cli_json_get(r, "errors");
    if (errs && errs->type == CLI_JARRAY)
      for (const cli_jv *e = errs->child; e; e = e->next)
        violation_line(b, e);
    cli_json_free(r);
  }
}
