/*
** cli.h — private interfaces between the files of the `chameleon` CLI.
** The CLI is a thin client of libchameleon: besides the C library and POSIX
** it includes only the public header chameleon.h. This header holds the run
** context (parsed options plus the resources one run owns), the command
** table, the exit codes, a small JSON reader for the reports the library
** returns, and the printing helpers. Nothing here is exported by the library.
*/
#ifndef CHM_CLI_H
#define CHM_CLI_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include "chameleon.h"

/* ===================================================================== */
/* Exit codes                                                             */
/* ===================================================================== */

/* X-macro: name, value, meaning. Generates the enum and the table printed
** by `chameleon help` (docs/cli.md and chameleon.1 carry the same table). */
#define CLI_EXIT_MAP(XX)                                                       \
  XX(OK, 0, "success")                                                         \
  XX(ERROR, 1, "runtime or database error (unreadable file, locked store)")    \
  XX(USAGE, 2, "usage error: unknown command or option, missing argument")     \
  XX(INVALID, 3, "invalid workflow definition, or invalid values")             \
  XX(NOTFOUND, 4,                                                              \
     "not found: store, workflow, version, table, token, actor, "              \
     "role; no work")                                                          \
  XX(CONFLICT, 5,                                                              \
     "conflict or state: already exists, refused, stale "                      \
     "version, wrong state, not allowed")                                      \
  XX(CORRUPT, 6, "tampered or corrupt store: a log row fails its hash")

enum cli_exit {
#define CLI__XX(name, value, msg) CLI_EXIT_##name = value,
  CLI_EXIT_MAP(CLI__XX)
#undef CLI__XX
};

/* cli_exit_of(rc) -> the exit code documented for a library status. */
int cli_exit_of(int rc);

/* ===================================================================== */
/* Options and the run context                                           */
/* ===================================================================== */

/* Option identifiers; a command accepts the subset listed in its table. */
enum cli_optid {
  OPT_HELP = 1,
  OPT_META,        /* --meta PATH */
  OPT_INSTANCE,    /* --instance PATH */
  OPT_JSON,        /* --json */
  OPT_DOT,         /* --dot */
  OPT_VERSION,     /* --version N (template version, inside a command) */
  OPT_OUT,         /* --out PATH (instantiate) */
  OPT_OUTPUT,      /* -o FILE (export) */
  OPT_NAME,        /* --name NAME */
  OPT_NOW,         /* --now MS (global: the engine's virtual clock) */
  OPT_WORKFLOW,    /* --workflow W */
  OPT_ACTOR,       /* --actor A */
  OPT_ROLE,        /* --role R */
  OPT_INTERACTION, /* --interaction I */
  OPT_ATTRS,       /* --attrs JSON */
  OPT_CHANGES,     /* --changes JSON */
  OPT_PAIR,        /* --attr k=v / --set k=v (repeatable) */
  OPT_REASONING,   /* --reasoning TEXT */
  OPT_REASON,      /* --reason TEXT */
  OPT_TEXT,        /* --text TEXT */
  OPT_BATCH,       /* --batch N */
  OPT_MAX_STEPS,   /* --max-steps N */
  OPT_LEASE,       /* --lease MS */
  OPT_HISTORY,     /* --history */
  OPT_ATTRIBUTES,  /* --attributes */
  OPT_STATUS       /* --status S */
};

typedef struct cli_opt {
  const char *lng;  /* long name without dashes: "meta" */
  char shrt;        /* short letter, or 0 */
  const char *arg;  /* value placeholder ("PATH"), NULL for a flag */
  int id;           /* enum cli_optid */
  const char *help; /* one line for --help */
} cli_opt;

typedef struct cli cli;

typedef struct cli_cmd {
  const char *name;        /* "import" */
  int (*run)(cli *c);      /* returns an exit code */
  const char *args;        /* usage after the name: "[--meta PATH] FILE..." */
  const char *summary;     /* one line for the command list */
  const char *description; /* paragraph(s) for --help */
  const cli_opt *opts;     /* accepted options, ends with a {NULL} row */
  const char *example;     /* one or more example lines for --help */
  int min_args, max_args;  /* positional argument bounds (-1 = no max) */
} cli_cmd;

/* One run of the tool. Parsed options point into argv; every resource the
** run acquires is recorded here and released by cli_release, so a command
** may return early from any point without leaking. */
struct cli {
  const cli_cmd *cmd;   /* the command being run */
  const char *meta;     /* meta-store path: --meta, $CHAMELEON_META, default */
  int meta_given;       /* 1 when --meta was on the command line */
  const char *instance; /* --instance PATH */
  const char *out;      /* --out PATH */
  const char *output;   /* -o FILE */
  const char *name;     /* --name NAME */
  int version;          /* --version N; 0 = latest (submit: token version) */
  int json;             /* --json */
  int dot;              /* --dot */
  int help;             /* --help */
  char **pos;           /* positional arguments (array owned, strings not) */
  int npos;             /* number of positional arguments */
  /* Token commands (cmd_token.c). */
  const char *workflow;    /* --workflow W */
  const char *actor;       /* --actor A */
  const char *role;        /* --role R */
  const char *interaction; /* --interaction I */
  const char *attrs;       /* --attrs JSON (genesis) */
  const char *changes;     /* --changes JSON (submit) */
  const char **pairs;      /* --attr / --set k=v, in order (array owned) */
  int npairs;              /* number of pairs */
  const char *reasoning;   /* --reasoning TEXT */
  const char *reason;      /* --reason TEXT */
  const char *text;        /* --text TEXT */
  const char *status_arg;  /* --status S */
  int batch;               /* --batch N; 0 = default */
  int max_steps;           /* --max-steps N; 0 = until idle */
  long long lease_ms;      /* --lease MS; 0 = the engine's default */
  int history;             /* --history */
  int attributes;          /* --attributes */
  long long now;           /* --now MS */
  int now_given;           /* 1 when --now was on the command line */
  int status;              /* exit code of the first failure, 0 so far */
  chm_meta *m;             /* open meta-store, closed by cli_release */
  chm_instance *inst;      /* open instance store, closed by cli_release */
  FILE *outf;              /* file opened for -o, closed by cli_release */
};

/* cli_parse(c, cmd, argc, argv): parse argv[0..argc) (the command word
** already removed) against cmd's option table; options and positional
** arguments may be mixed, `--` ends options. Fills c; returns CLI_EXIT_OK
** or CLI_EXIT_USAGE after printing the problem and the usage. */
int cli_parse(cli *c, const cli_cmd *cmd, int argc, char **argv);

/* cli_set_clock(c): install the engine's virtual clock for this process
** from --now MS, else from $CHAMELEON_NOW when set (chm_clock_set_virtual).
** Returns CLI_EXIT_OK or a usage error for a value that is not a number of
** milliseconds since the epoch. */
int cli_set_clock(cli *c);

/* cli_usage(cmd, f): print "usage: chameleon NAME ARGS" to f. */
void cli_usage(const cli_cmd *cmd, FILE *f);

/* cli_help(cmd, f): print the full --help text of a command to f. */
void cli_help(const cli_cmd *cmd, FILE *f);

/* cli_usage_error(c, fmt, ...): print "chameleon: CMD: message", the
** command's usage and a pointer to --help on stderr; record and return
** CLI_EXIT_USAGE. */
int cli_usage_error(cli *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* cli_error(c, code, hint, fmt, ...): print "chameleon: CMD: message" on
** stderr (continuation lines of a multi-line message are printed as they
** are), then "hint: HINT" when hint is not NULL. Records code as the run's
** status if none was recorded yet; returns code. */
int cli_error(cli *c, int code, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* cli_open_meta(c, create): open c->meta into c->m. Without `create` a
** missing file is reported (exit 4) instead of being created. Returns an
** exit code; the error is already reported. */
int cli_open_meta(cli *c, int create);

/* cli_open_instance(c, path): open an existing instance store into
** c->inst. Returns an exit code; the error is already reported. */
int cli_open_instance(cli *c, const char *path);

/* cli_meta_fail(c, rc, hint) / cli_instance_fail(c, rc, hint): report a
** failed library call on the open handle with its errmsg and return the
** exit code of rc. */
int cli_meta_fail(cli *c, int rc, const char *hint);
int cli_instance_fail(cli *c, int rc, const char *hint);

/* cli_release(c): close every handle and file the run opened and free the
** positional array. Idempotent. */
void cli_release(cli *c);

/* The command table (main.c) and the commands (cmd_*.c). */
extern const cli_cmd cli_commands[];
const cli_cmd *cli_find_command(const char *name);

int cli_cmd_help(cli *c);
int cli_cmd_init(cli *c);
int cli_cmd_import(cli *c);
int cli_cmd_validate(cli *c);
int cli_cmd_list(cli *c);
int cli_cmd_show(cli *c);
int cli_cmd_export(cli *c);
int cli_cmd_instantiate(cli *c);
int cli_cmd_describe(cli *c);
int cli_cmd_check(cli *c);
int cli_cmd_guide(cli *c);
int cli_cmd_sql(cli *c);

/* repl.c: the interactive REPL (and its piped form). */
int cli_cmd_repl(cli *c);
int cli_cmd_genesis(cli *c);
int cli_cmd_checkout(cli *c);
int cli_cmd_heartbeat(cli *c);
int cli_cmd_submit(cli *c);
int cli_cmd_fail(cli *c);
int cli_cmd_pause(cli *c);
int cli_cmd_resume(cli *c);
int cli_cmd_clarify(cli *c);
int cli_cmd_sweep(cli *c);
int cli_cmd_run(cli *c);
int cli_cmd_token(cli *c);
int cli_cmd_queues(cli *c);
int cli_cmd_tokens(cli *c);
int cli_cmd_verify(cli *c);
int cli_cmd_memory(cli *c);

/* ===================================================================== */
/* JSON reader (json.c): the library's reports as a read-only tree       */
/* ===================================================================== */

typedef enum cli_jtype {
  CLI_JNULL,
  CLI_JFALSE,
  CLI_JTRUE,
  CLI_JNUMBER,
  CLI_JSTRING,
  CLI_JARRAY,
  CLI_JOBJECT
} cli_jtype;

typedef struct cli_jv {
  cli_jtype type;       /* kind of value */
  char *text;           /* STRING: decoded UTF-8; NUMBER: literal as sent */
  char *key;            /* member name when inside an object, else NULL */
  struct cli_jv *child; /* first element or member (ARRAY, OBJECT) */
  struct cli_jv *next;  /* next sibling */
  size_t n;             /* number of children (ARRAY, OBJECT) */
} cli_jv;

/* cli_json_parse(text, err, errlen) -> a new tree, or NULL with a message
** in err ("offset N: expected ..."). Numbers keep their literal text, so
** nothing is rounded. Free with cli_json_free. */
cli_jv *cli_json_parse(const char *text, char *err, size_t errlen);

/* cli_json_free(v): free a tree from cli_json_parse. NULL-safe. */
void cli_json_free(cli_jv *v);

/* cli_json_get(obj, key) -> the member `key` of an object, or NULL (also
** when obj is NULL or not an object). */
const cli_jv *cli_json_get(const cli_jv *obj, const char *key);

/* cli_json_any(obj, key1, key2, ..., NULL) -> the first member present
** and not null among the keys (tolerates differently named fields). */
const cli_jv *cli_json_any(const cli_jv *obj, ...) __attribute__((sentinel));

/* cli_json_truthy(v) -> 1 for true, a non-zero number, a non-empty string
** other than "0"/"false", a non-empty array or object; else 0. */
int cli_json_truthy(const cli_jv *v);

/* ===================================================================== */
/* Output helpers (output.c)                                              */
/* ===================================================================== */

/* A growable string. Zero-initialise; free with cli_buf_free. */
typedef struct cli_buf {
  char *s;    /* NUL-terminated contents, NULL while empty */
  size_t len; /* bytes used, without the NUL */
  size_t cap; /* bytes allocated */
} cli_buf;

void cli_buf_add(cli_buf *b, const char *s, size_t n);
void cli_buf_puts(cli_buf *b, const char *s);
void cli_buf_printf(cli_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void cli_buf_free(cli_buf *b);

/* cli_buf_jstr(b, s): append s as a JSON string literal (quoted, escaped). */
void cli_buf_jstr(cli_buf *b, const char *s);

/* cli_json_dump(b, v): append v as compact JSON (numbers verbatim). */
void cli_json_dump(cli_buf *b, const cli_jv *v);

/* cli_cell(b, v): append a scalar for a table cell: strings as they are,
** numbers verbatim, true/false, "" for null/missing, compact JSON for
** arrays and objects. Returns b->s (never NULL). */
const char *cli_cell(cli_buf *b, const cli_jv *v);

/* cli_time(b, v): a timestamp cell: numbers of milliseconds since the
** epoch as ISO 8601 UTC ("2025-11-22T00:47:00Z"), anything else as cli_cell. */
const char *cli_time(cli_buf *b, const cli_jv *v);

/* An aligned text table: header row plus rows of cells, columns padded to
** the widest cell (display width counted in UTF-8 characters). */
typedef struct cli_table {
  int ncol;     /* number of columns */
  char **cells; /* row-major, rows*ncol owned strings; row 0 = headers */
  size_t rows;  /* rows stored, header included */
  size_t cap;   /* rows allocated */
} cli_table;

/* cli_table_init(t, ncol, headers): start a table with ncol headers. */
void cli_table_init(cli_table *t, int ncol, const char *const *headers);

/* cli_table_add(t, cells): append a row of ncol cells (copied; NULL is
** printed as empty; control characters become spaces). */
void cli_table_add(cli_table *t, const char *const *cells);

/* cli_table_print(t, f, indent): print with `indent` leading spaces, the
** header underlined, no trailing blanks. */
void cli_table_print(const cli_table *t, FILE *f, int indent);

/* cli_table_free(t): free all cells. */
void cli_table_free(cli_table *t);

/* A column of a section table: header, how to render, and the JSON keys
** to try in order (canonical name first, store column names after). */
enum cli_colkind {
  CLI_COL_TEXT,  /* the value as text, "-" when missing or null */
  CLI_COL_YESNO, /* "yes" when truthy, else "no" */
  CLI_COL_SET,   /* "yes" when present and not null, else "no" */
  CLI_COL_TIME   /* as cli_time */
};

typedef struct cli_col {
  const char *header;  /* column title */
  int kind;            /* enum cli_colkind */
  const char *keys[4]; /* keys to try, NULL-terminated */
} cli_col;

/* cli_print_section(f, title, arr, cols, ncol, indent): print "Title (N)"
** and a table of the objects in arr; nothing when arr is not an array. */
void cli_print_section(FILE *f, const char *title, const cli_jv *arr,
                       const cli_col *cols, int ncol, int indent);

/* cli_print_graph(f, wf, indent): the roles, interactions, components and
** guardians of a workflow object, one section each (shared by show and
** describe). */
void cli_print_graph(FILE *f, const cli_jv *wf, int indent);

/* cli_print_people(f, obj, indent): the actors and assignments sections. */
void cli_print_people(FILE *f, const cli_jv *obj, int indent);

/* cli_violations(b, report, msg): the violations of a failed validation
** as text, one per line, into b: msg (the handle's message) when it says
** something, else the "errors" array of the JSON report. */
void cli_violations(cli_buf *b, const char *report, const char *msg);

/* cli_report_invalid(c, file, violations, hint): report an invalid
** definition with exit code 3: a summary line naming file, then every
** violation as the library formatted it (FILE:LINE: [rule] message). */
void cli_report_invalid(cli *c, const char *file, const char *violations,
                        const char *hint);

/* cli_put_text(f, s): write s, then a newline unless s already ends in
** one. Returns 0, or -1 when the write failed. */
int cli_put_text(FILE *f, const char *s);

/* cli_count_lines(s) -> number of non-empty lines in s. */
int cli_count_lines(const char *s);

#endif /* CHM_CLI_H */
