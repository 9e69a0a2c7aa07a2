/*
** main.c — entry point of the `chameleon` command-line tool: the command
** table, global --help/--version, dispatch, and the one error path. As in
** lua.c, main() only sets up a run context, hands the real work to run()
** and then releases whatever the run acquired (handles, files, memory), so
** every command may fail from any point and still exit cleanly. Talks to
** the engine through chameleon.h alone; commands live in cmd_*.c.
*/
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* ===================================================================== */
/* Option tables                                                          */
/* ===================================================================== */

#define O_META                                                                 \
  { "meta", 0, "PATH", OPT_META, "meta-store to use (see below)" }
#define O_JSON                                                                 \
  { "json", 0, NULL, OPT_JSON, "machine-readable JSON output" }
#define O_VERSION                                                              \
  { "version", 0, "N", OPT_VERSION, "template version (default: the latest)" }
#define O_INSTANCE                                                             \
  { "instance", 0, "PATH", OPT_INSTANCE, "query this instance store instead" }
#define O_HELP                                                                 \
  { "help", 'h', NULL, OPT_HELP, "show this help and exit" }
#define O_END                                                                  \
  { NULL, 0, NULL, 0, NULL }

static const cli_opt opts_help[] = {O_HELP, O_END};
static const cli_opt opts_meta[] = {O_META, O_JSON, O_HELP, O_END};
static const cli_opt opts_show[] = {O_META, O_VERSION, O_JSON, O_HELP, O_END};
static const cli_opt opts_export[] = {
    O_META,
    O_VERSION,
    {"json", 0, NULL, OPT_JSON, "canonical JSON definition (the default)"},
    {"dot", 0, NULL, OPT_DOT, "Graphviz DOT picture of the graph"},
    {"output", 'o', "FILE", OPT_OUTPUT, "write to FILE instead of stdout"},
    O_HELP,
    O_END};
static const cli_opt opts_instantiate[] = {
    O_META,
    O_VERSION,
    {"out", 0, "PATH", OPT_OUT, "instance store to create (must not exist)"},
    {"name", 0, "NAME", OPT_NAME, "instance name (default: chosen by engine)"},
    O_JSON,
    O_HELP,
    O_END};
static const cli_opt opts_instance[] = {O_JSON, O_HELP, O_END};
static const cli_opt opts_query[] = {
    {"meta", 0, "PATH", OPT_META, "query this meta-store (the default store)"},
    O_INSTANCE,
    O_JSON,
    O_HELP,
    O_END};

/* ===================================================================== */
/* The command table                                                      */
/* ===================================================================== */

const cli_cmd cli_commands[] = {
    {"init", cli_cmd_init, "[--meta PATH] [--json]",
     "create or upgrade a meta-store",
     "Create the meta-store (the library of workflow blueprints) at PATH with\n"
     "its schema, or bring an existing one up to the current schema version\n"
     "in one transaction. Running it twice is harmless.",
     opts_meta, "  chameleon init --meta fin.db", 0, 0},
    {"import", cli_cmd_import, "[--meta PATH] [--json] FILE...",
     "validate workflow files and store them as new versions",
     "Load each workflow FILE (a Lua DSL file or canonical JSON), validate it\n"
     "and store it as a new version of its workflow, atomically. An\n"
     "unchanged definition stores nothing and is reported as \"unchanged\".\n"
     "An invalid file stores nothing; every violation is printed on stderr\n"
     "as FILE:LINE: [rule] message. The other files are still imported; the\n"
     "exit status is that of the first failure. A file refused as invalid\n"
     "is tried again once another file was stored (it may be the child\n"
     "workflow it refers to), so the order of the files does not matter.",
     opts_meta,
     "  chameleon import workflows/wf_fin_001.lua\n"
     "  imported WF-FIN-001 version 1",
     1, -1},
    {"validate", cli_cmd_validate, "[--meta PATH] [--json] FILE...",
     "check workflow files without storing them",
     "Run the import validation on each FILE and print \"FILE: ok\", or every\n"
     "violation on stderr. Nothing is written. References to other\n"
     "workflows are resolved against the meta-store; when it does not exist\n"
     "the files are checked against an empty one.",
     opts_meta, "  chameleon validate workflows/*.lua", 1, -1},
    {"list", cli_cmd_list, "[--meta PATH] [--json]",
     "list stored workflows and their versions",
     "Print every workflow of the meta-store: name, latest version, number\n"
     "of versions and when the latest was stored.",
     opts_meta, "  chameleon list --meta fin.db", 0, 0},
    {"show", cli_cmd_show, "[--meta PATH] [--version N] [--json] NAME",
     "show one stored workflow",
     "Print a stored workflow (the latest version unless --version is given):\n"
     "its roles, interactions, components, guardians, actors and role\n"
     "assignments.",
     opts_show, "  chameleon show WF-FIN-001 --version 2", 1, 1},
    {"export", cli_cmd_export,
     "[--meta PATH] [--version N] [--json | --dot] [-o FILE] NAME",
     "print a workflow as canonical JSON or Graphviz DOT",
     "Print the canonical JSON definition of a stored workflow (importing it\n"
     "gives back the same text byte for byte), or with --dot a Graphviz\n"
     "picture of its graph. The file named by -o is written only when the\n"
     "export succeeded.",
     opts_export,
     "  chameleon export WF-FIN-001 -o wf_fin_001.json\n"
     "  chameleon export WF-FIN-001 --dot | dot -Tsvg > wf_fin_001.svg",
     1, 1},
    {"instantiate", cli_cmd_instantiate,
     "[--meta PATH] [--version N] [--name NAME] [--json] --out PATH NAME",
     "create an air-gapped instance store from a workflow",
     "Deep-copy workflow NAME (and every child workflow it reaches) into a\n"
     "new instance store at PATH, which must not exist. From then on the\n"
     "instance never consults the meta-store: the file can be moved and\n"
     "run anywhere.",
     opts_instantiate,
     "  chameleon instantiate WF-FIN-001 --out invoices.db --name invoices", 1,
     1},
    {"describe", cli_cmd_describe, "[--json] INSTANCE.db",
     "describe an instance store",
     "Print the instance context and, for every workflow the instance holds\n"
     "(the master first), its roles, interactions, components and guardians,\n"
     "then the actors and their role assignments. Reads the instance file\n"
     "alone.",
     opts_instance, "  chameleon describe invoices.db", 1, 1},
    {"check", cli_cmd_check, "[--json] INSTANCE.db",
     "re-validate the workflows held by an instance",
     "Run the import validation again on every workflow stored in the\n"
     "instance, from the instance file alone. Prints \"INSTANCE.db: ok\" or\n"
     "every violation on stderr.",
     opts_instance, "  chameleon check invoices.db", 1, 1},
    {"guide", cli_cmd_guide, "[--meta PATH | --instance PATH] [--json] [TABLE]",
     "describe the tables and columns of a store",
     "Print the schema guide of a store (the view v_ai_schema_guide): for\n"
     "each column its table, type, primary key flag, foreign key target and\n"
     "description. With TABLE, only that table (case-insensitive).",
     opts_query, "  chameleon guide --instance invoices.db Local_Roles", 0, 1},
    {"sql", cli_cmd_sql, "[--meta PATH | --instance PATH] [--json] STATEMENT",
     "run one read-only SQL statement",
     "Run one read-only SQL statement on a store and print its rows as an\n"
     "aligned table (NULL prints as an empty cell). Statements that would\n"
     "write are refused: change data through the engine, never around it.",
     opts_query,
     "  chameleon sql --instance invoices.db \\\n"
     "      \"SELECT name, role_type FROM Local_Roles\"",
     1, 1},
    {"help", cli_cmd_help, "[COMMAND]", "show the help of a command",
     "Without COMMAND, list every command; with COMMAND, print its help\n"
     "(the same as 'chameleon COMMAND --help').",
     opts_help, "  chameleon help import", 0, 1},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, 0}};

const cli_cmd *cli_find_command(const char *name) {
  for (const cli_cmd *cmd = cli_commands; cmd->name; cmd++)
    if (strcmp(cmd->name, name) == 0)
      return cmd;
  return NULL;
}

/* ===================================================================== */
/* Global help                                                            */
/* ===================================================================== */

static void global_help(FILE *f) {
  fputs("usage: chameleon COMMAND [OPTIONS] [ARGS...]\n"
        "       chameleon --help | --version\n"
        "\n"
        "Chameleon workflow engine: keep workflow blueprints in a meta-store,\n"
        "create air-gapped instance stores from them and inspect both.\n"
        "\n"
        "Commands:\n",
        f);
  for (const cli_cmd *cmd = cli_commands; cmd->name; cmd++)
    fprintf(f, "  %-12s %s\n", cmd->name, cmd->summary);
  fputs("\n"
        "Options may come before or after arguments; '--' ends options.\n"
        "Run 'chameleon COMMAND --help' for the options of one command.\n"
        "\n"
        "Environment:\n"
        "  CHAMELEON_META  default meta-store path (else ./chameleon-meta.db)\n"
        "\n"
        "Exit status:\n",
        f);
#define XX(name, value, msg) fprintf(f, "  %d  %s\n", value, msg);
  CLI_EXIT_MAP(XX)
#undef XX
}

int cli_cmd_help(cli *c) {
  const cli_cmd *cmd;
  if (c->npos == 0) {
    global_help(stdout);
    return CLI_EXIT_OK;
  }
  if (!(cmd = cli_find_command(c->pos[0])))
    return cli_usage_error(c, "unknown command '%s'", c->pos[0]);
  cli_help(cmd, stdout);
  return CLI_EXIT_OK;
}

/* ===================================================================== */
/* Errors                                                                 */
/* ===================================================================== */

int cli_exit_of(int rc) {
  switch (rc) {
  case CHM_OK:
    return CLI_EXIT_OK;
  case CHM_INVALID:
    return CLI_EXIT_INVALID;
  case CHM_NOTFOUND:
    return CLI_EXIT_NOTFOUND;
  case CHM_EXISTS:
  case CHM_CONFLICT:
  case CHM_STATE:
  case CHM_DENIED:
    return CLI_EXIT_CONFLICT;
  default:
    return CLI_EXIT_ERROR;
  }
}

int cli_error(cli *c, int code, const char *hint, const char *fmt, ...) {
  cli_buf msg = {0};
  va_list ap;
  va_start(ap, fmt);
  {
    va_list aq;
    int n;
    va_copy(aq, ap);
    n = vsnprintf(NULL, 0, fmt, aq);
    va_end(aq);
    if (n > 0) {
      char *s = malloc((size_t)n + 1);
      if (s) {
        vsnprintf(s, (size_t)n + 1, fmt, ap);
        cli_buf_add(&msg, s, (size_t)n);
        free(s);
      }
    }
  }
  va_end(ap);
  while (msg.len && msg.s[msg.len - 1] == '\n')
    msg.s[--msg.len] = 0;
  fputs("chameleon: ", stderr);
  if (c->cmd)
    fprintf(stderr, "%s: ", c->cmd->name);
  fprintf(stderr, "%s\n", msg.s ? msg.s : chm_errstr(CHM_ERROR));
  if (hint)
    fprintf(stderr, "hint: %s\n", hint);
  cli_buf_free(&msg);
  if (!c->status)
    c->status = code;
  return code;
}

/* Advice for a failed library call when the command has none better. */
static const char *default_hint(int rc) {
  switch (rc) {
  case CHM_INVALID:
    return "fix the lines above and run the command again";
  case CHM_DB:
    return "the store may be locked by another process, read-only, or not "
           "a Chameleon store";
  case CHM_CORRUPT:
    return "restore the store from a backup; do not write to it";
  case CHM_IO:
    return "check the path and its permissions";
  case CHM_NOMEM:
    return "free some memory and try again";
  default:
    return NULL;
  }
}

/* Report rc with msg (the handle's errmsg, or the static text). */
static int handle_fail(cli *c, int rc, const char *msg, const char *hint) {
  if (!msg || !*msg || strcmp(msg, "ok") == 0)
    msg = chm_errstr(rc);
  if (rc == CHM_OK)
    rc = CHM_ERROR; /* a failure without a status */
  return cli_error(c, cli_exit_of(rc), hint ? hint : default_hint(rc), "%s",
                   msg);
}

int cli_meta_fail(cli *c, int rc, const char *hint) {
  return handle_fail(c, rc, c->m ? chm_meta_errmsg(c->m) : NULL, hint);
}

int cli_instance_fail(cli *c, int rc, const char *hint) {
  return handle_fail(c, rc, c->inst ? chm_instance_errmsg(c->inst) : NULL,
                     hint);
}

/* ===================================================================== */
/* Opening stores                                                         */
/* ===================================================================== */

int cli_open_meta(cli *c, int create) {
  int rc;
  if (!create && access(c->meta, F_OK) != 0) {
    cli_buf hint = {0};
    int code;
    cli_buf_printf(&hint,
                   "create it with 'chameleon init --meta %s', or "
                   "point --meta or CHAMELEON_META at an existing one",
                   c->meta);
    code = cli_error(c, CLI_EXIT_NOTFOUND, hint.s,
                     "meta-store '%s' does not exist", c->meta);
    cli_buf_free(&hint);
    return code;
  }
  rc = chm_meta_open(c->meta, &c->m);
  if (rc != CHM_OK) {
    const char *msg = c->m ? chm_meta_errmsg(c->m) : chm_errstr(rc);
    int code = cli_error(
        c, cli_exit_of(rc) == CLI_EXIT_OK ? CLI_EXIT_ERROR : cli_exit_of(rc),
        default_hint(rc), "cannot open meta-store '%s': %s", c->meta, msg);
    chm_meta_close(c->m);
    c->m = NULL;
    return code;
  }
  return CLI_EXIT_OK;
}

int cli_open_instance(cli *c, const char *path) {
  int rc;
  if (access(path, F_OK) != 0) {
    return cli_error(c, CLI_EXIT_NOTFOUND,
                     "create one with 'chameleon instantiate NAME --out PATH'",
                     "instance store '%s' does not exist", path);
  }
  rc = chm_instance_open(path, &c->inst);
  if (rc != CHM_OK) {
    const char *msg = c->inst ? chm_instance_errmsg(c->inst) : chm_errstr(rc);
    int code = cli_error(
        c, cli_exit_of(rc) == CLI_EXIT_OK ? CLI_EXIT_ERROR : cli_exit_of(rc),
        default_hint(rc), "cannot open instance '%s': %s", path, msg);
    chm_instance_close(c->inst);
    c->inst = NULL;
    return code;
  }
  return CLI_EXIT_OK;
}

void cli_release(cli *c) {
  chm_meta_close(c->m);
  chm_instance_close(c->inst);
  if (c->outf)
    fclose(c->outf);
  free(c->pos);
  c->m = NULL;
  c->inst = NULL;
  c->outf = NULL;
  c->pos = NULL;
  c->npos = 0;
}

/* ===================================================================== */
/* Dispatch                                                               */
/* ===================================================================== */

/* Options that take a value in some command: skipped while looking for the
** command word, so `chameleon --meta m.db list` works. */
static int takes_value(const char *a) {
  static const char *const with_value[] = {
      "--meta", "--instance", "--out", "--output",
      "--name", "--version",  "-o",    NULL};
  for (int i = 0; with_value[i]; i++)
    if (strcmp(a, with_value[i]) == 0)
      return 1;
  return 0;
}

/* Index of the command word in argv, or -1. */
static int command_index(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0)
      return i + 1 < argc ? i + 1 : -1;
    if (a[0] != '-' || a[1] == 0)
      return i;
    if (takes_value(a))
      i++;
  }
  return -1;
}

/* The real work of one run; every exit path leaves resources in c. */
static int run(cli *c, int argc, char **argv) {
  const cli_cmd *cmd;
  char **rest;
  int at, n = 0, rc;

  if (argc < 2) {
    global_help(stderr);
    return CLI_EXIT_USAGE;
  }
  if (argc == 2 &&
      (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)) {
    printf("chameleon %s", CHM_VERSION);
    if (strcmp(chm_version(), CHM_VERSION) != 0)
      printf(" (library %s)", chm_version());
    putchar('\n');
    return CLI_EXIT_OK;
  }
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    cmd = cli_find_command("help");
    at = 1;
  } else {
    at = command_index(argc, argv);
    if (at < 0)
      return cli_usage_error(c, "missing command");
    if (!(cmd = cli_find_command(argv[at])))
      return cli_usage_error(c, "unknown command '%s'", argv[at]);
  }

  rest = malloc((size_t)argc * sizeof *rest);
  if (!rest)
    return cli_error(c, CLI_EXIT_ERROR, NULL, "out of memory");
  for (int i = 1; i < argc; i++)
    if (i != at)
      rest[n++] = argv[i];
  rc = cli_parse(c, cmd, n, rest);
  free(rest);
  if (rc != CLI_EXIT_OK)
    return rc;
  if (c->help) {
    cli_help(cmd, stdout);
    return CLI_EXIT_OK;
  }
  rc = cmd->run(c);
  return rc ? rc : c->status;
}

int main(int argc, char **argv) {
  cli c;
  int status;

  memset(&c, 0, sizeof c);
  status = run(&c, argc, argv);
  cli_release(&c);
  if (fflush(stdout) != 0 || ferror(stdout)) {
    fprintf(stderr, "chameleon: %s%scannot write the output: %s\n",
            c.cmd ? c.cmd->name : "", c.cmd ? ": " : "", strerror(errno));
    if (status == CLI_EXIT_OK)
      status = CLI_EXIT_ERROR;
  }
  return status;
}
