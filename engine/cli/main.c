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
static const cli_opt opts_describe[] = {
    O_JSON,
    {"dot", 0, NULL, OPT_DOT,
     "Graphviz DOT of the master workflow with token counts"},
    {"output", 'o', "FILE", OPT_OUTPUT, "write to FILE instead of stdout"},
    O_HELP, O_END};
static const cli_opt opts_query[] = {
    {"meta", 0, "PATH", OPT_META, "query this meta-store (the default store)"},
    O_INSTANCE,
    O_JSON,
    O_HELP,
    O_END};

#define O_NOW                                                                  \
  {                                                                            \
    "now", 0, "MS", OPT_NOW,                                                   \
        "engine clock, ms since the epoch (else $CHAMELEON_NOW, else real)"    \
  }
#define O_ACTOR(help)                                                          \
  { "actor", 0, "A", OPT_ACTOR, help }

static const cli_opt opts_genesis[] = {
    {"workflow", 0, "W", OPT_WORKFLOW,
     "workflow of the token (default: the "
     "master)"},
    O_ACTOR("actor assigned to the ALPHA role (default: system)"),
    {"attrs", 0, "JSON", OPT_ATTRS, "the attributes as one JSON object"},
    {"attr", 0, "K=V", OPT_PAIR,
     "one attribute (repeatable); V is JSON when it parses, else text"},
    O_JSON,
    O_NOW,
    O_HELP,
    O_END};
static const cli_opt opts_checkout[] = {
    O_ACTOR("the actor taking the work (required)"),
    {"role", 0, "R", OPT_ROLE,
     "its role: name, workflow/role or id "
     "(required)"},
    {"interaction", 0, "I", OPT_INTERACTION,
     "take only from this inbound interaction"},
    {"lease", 0, "MS", OPT_LEASE, "lease length (default 300000 ms)"},
    O_JSON,
    O_NOW,
    O_HELP,
    O_END};
static const cli_opt opts_heartbeat[] = {O_ACTOR("the lease holder (required)"),
                                         {"lease", 0, "MS", OPT_LEASE,
                                          "new lease length from now (default "
                                          "300000 ms)"},
                                         O_JSON,
                                         O_NOW,
                                         O_HELP,
                                         O_END};
static const cli_opt opts_submit[] = {
    O_ACTOR("the lease holder (required)"),
    {"version", 0, "N", OPT_VERSION,
     "the token version checkout gave (required)"},
    {"set", 0, "K=V", OPT_PAIR,
     "set an attribute (repeatable); V is JSON when it parses, else text"},
    {"changes", 0, "JSON", OPT_CHANGES,
     "the whole changes object (set, children, teach, fail, ...)"},
    {"reasoning", 0, "TEXT", OPT_REASONING,
     "why: stored with the new "
     "values"},
    O_JSON,
    O_NOW,
    O_HELP,
    O_END};
static const cli_opt opts_fail[] = {
    O_ACTOR("the lease holder (required)"),
    {"reason", 0, "TEXT", OPT_REASON, "why it failed (default: failed by A)"},
    O_JSON,
    O_NOW,
    O_HELP,
    O_END};
static const cli_opt opts_pause[] = {
    O_ACTOR("who does it, for a token (default: system)"), O_JSON, O_NOW,
    O_HELP, O_END};
static const cli_opt opts_clarify[] = {
    O_ACTOR("the operator answering (default: system)"),
    {"text", 0, "TEXT", OPT_TEXT, "the clarification (required)"},
    O_JSON,
    O_NOW,
    O_HELP,
    O_END};
static const cli_opt opts_run[] = {
    {"batch", 0, "N", OPT_BATCH, "operations per commit (default 1)"},
    {"max-steps", 0, "N", OPT_MAX_STEPS,
     "stop after N checkouts (default: until idle)"},
    O_JSON,
    O_NOW,
    O_HELP,
    O_END};
static const cli_opt opts_token[] = {
    {"history", 0, NULL, OPT_HISTORY, "also the token's log rows"},
    {"attributes", 0, NULL, OPT_ATTRIBUTES,
     "also every version of every attribute"},
    O_JSON,
    O_NOW,
    O_HELP,
    O_END};
static const cli_opt opts_tokens[] = {
    {"status", 0, "S", OPT_STATUS, "only tokens in status S (PENDING, ...)"},
    O_JSON,
    O_NOW,
    O_HELP,
    O_END};
static const cli_opt opts_engine[] = {O_JSON, O_NOW, O_HELP, O_END};
static const cli_opt opts_repl[] = {O_NOW, O_HELP, O_END};
static const cli_opt opts_memory[] = {
    O_ACTOR("set: the actor's playbook (default: the role's blueprint)"),
    O_JSON, O_NOW, O_HELP, O_END};

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
    {"describe", cli_cmd_describe, "[--json | --dot [-o FILE]] INSTANCE.db",
     "describe an instance store",
     "Print the instance context and, for every workflow the instance holds\n"
     "(the master first), its roles, interactions, components and guardians,\n"
     "then the actors and their role assignments. Reads the instance file\n"
     "alone. --dot draws the master workflow with, on each interaction, how\n"
     "many tokens entered it and how many are there now.",
     opts_describe,
     "  chameleon describe invoices.db\n"
     "  chameleon describe --dot invoices.db | dot -Tsvg > invoices.svg",
     1, 1},
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
    {"repl", cli_cmd_repl, "[--now MS] [STORE]",
     "interactive Lua inside a store's sandbox, with the engine bound",
     "Open a Lua prompt inside STORE's own sandbox (an instance store or a\n"
     "meta-store; none: a scratch meta-store in memory) with the engine bound\n"
     "as functions (genesis, checkout, submit, token, queues, run, sql...).\n"
     "An expression prints its value; an unfinished statement continues on a\n"
     "second prompt; Tab completes names; Ctrl-C stops the running chunk;\n"
     "dot-commands: .help .roles .queue .token .log .sql .quit. Standard\n"
     "input that is not a terminal runs line by line as a script (exit 1 if\n"
     "any chunk failed). History: $CHAMELEON_HISTORY or ~/.chameleon_history.",
     opts_repl,
     "  chameleon repl invoices.db\n"
     "  echo 'queues()' | chameleon repl invoices.db",
     0, 1},
    {"genesis", cli_cmd_genesis,
     "[--workflow W] [--actor A] [--attrs JSON | --attr K=V...] [--json] "
     "INSTANCE",
     "create a token and print its id",
     "Create a base token in workflow W (default: the master workflow) at\n"
     "its ALPHA role, holding the attributes given by --attrs (one JSON\n"
     "object) and --attr K=V (V is JSON when it parses, else text; --attr\n"
     "wins over --attrs), and route it to its first queue. The actor\n"
     "(default: system) must be assigned to the ALPHA role. Prints the new\n"
     "token's id.",
     opts_genesis,
     "  chameleon genesis invoices.db --actor ap-specialist \\\n"
     "      --attr po_amount=100 --attr 'document=Vendor: ACME Amount: 120 "
     "PO: 7'",
     1, 1},
    {"checkout", cli_cmd_checkout,
     "--actor A --role R [--interaction I] [--lease MS] [--json] INSTANCE",
     "take the oldest eligible token of a role",
     "Give actor A the oldest token waiting in an inbound interaction of\n"
     "role R (only I with --interaction), after its gates pass. The token\n"
     "becomes ACTIVE under a lease (300000 ms unless --lease). Prints the\n"
     "token: id, version (give it back to submit), status, role,\n"
     "interaction, attributes, context and memory. Exit 4 when there is no\n"
     "work.",
     opts_checkout,
     "  chameleon checkout invoices.db --actor finance-manager --role "
     "FA-M-001",
     1, 1},
    {"heartbeat", cli_cmd_heartbeat,
     "--actor A [--lease MS] [--json] INSTANCE UOW",
     "extend the lease of a token the actor holds",
     "Push the lease of ACTIVE token UOW held by A to now + the lease\n"
     "length. The token's version does not change.",
     opts_heartbeat, "  chameleon heartbeat invoices.db 01a2... --actor bob", 2,
     2},
    {"submit", cli_cmd_submit,
     "--actor A --version N [--set K=V...] [--changes JSON] "
     "[--reasoning TEXT] [--json] INSTANCE UOW",
     "finish work on a token and route it on",
     "Submit the actor's work on ACTIVE token UOW: N is the version\n"
     "checkout gave (another version is a conflict, exit 5, and nothing is\n"
     "written). --set K=V sets attributes (V is JSON when it parses, else\n"
     "text); --changes gives the whole changes object (set, reasoning,\n"
     "children, teach, give_up, end, fail; see docs/token-engine.md), which\n"
     "--set and --reasoning extend. The token is then routed by the role's\n"
     "outbound routing. Prints its new status and place.",
     opts_submit,
     "  chameleon submit invoices.db 01a2... --actor finance-manager \\\n"
     "      --version 8 --set manager_decision=approve",
     2, 2},
    {"fail", cli_cmd_fail, "--actor A [--reason TEXT] [--json] INSTANCE UOW",
     "send a token the actor holds to its Ate",
     "Send ACTIVE token UOW held by A to the failure queue (the Ate) of its\n"
     "workflow with the reason.",
     opts_fail,
     "  chameleon fail invoices.db 01a2... --actor bob --reason 'unreadable'",
     2, 2},
    {"pause", cli_cmd_pause, "[--actor A] [--json] INSTANCE [UOW]",
     "pause a token, or the whole instance",
     "The kill switch. With UOW, pause that live token (it keeps its status\n"
     "for resume). Without, pause the instance: every operation that writes\n"
     "is refused (exit 5) until 'chameleon resume INSTANCE'; queries still\n"
     "work.",
     opts_pause, "  chameleon pause invoices.db", 1, 2},
    {"resume", cli_cmd_resume, "[--actor A] [--json] INSTANCE [UOW]",
     "resume a paused token, or the whole instance",
     "Undo pause: the token gets back the status it had (an ACTIVE token a\n"
     "fresh lease), or the instance accepts writes again.",
     opts_pause, "  chameleon resume invoices.db", 1, 2},
    {"clarify", cli_cmd_clarify,
     "[--actor A] --text TEXT [--json] INSTANCE UOW",
     "answer a token stuck in ZOMBIED_SOFT",
     "Store TEXT as a new version of the token's attribute \"clarification\",\n"
     "reset its checkout count and make it PENDING again.",
     opts_clarify,
     "  chameleon clarify invoices.db 01a2... --text 'the PO is 4711'", 2, 2},
    {"sweep", cli_cmd_sweep, "[--json] INSTANCE",
     "fail expired leases and time out stale tokens",
     "Zombie sweep: ACTIVE tokens whose lease expired go FAILED to Chronos.\n"
     "Stale sweep: tokens that waited in an interaction longer than its\n"
     "stale limit go TIMEOUT to Chronos. Run it from cron.",
     opts_engine, "  chameleon sweep invoices.db", 1, 1},
    {"run", cli_cmd_run, "[--batch N] [--max-steps N] [--json] INSTANCE",
     "do the automated work as the actor system",
     "Act as 'system' on every role it is assigned to: run step functions,\n"
     "start child workflows, submit, until a whole pass finds no work (or\n"
     "after N checkouts). A failing step sends its token to the Ate and the\n"
     "run goes on. Prints steps, moves, failed and commits. Skills are not\n"
     "available here (they are registered by a host program).",
     opts_run, "  chameleon run invoices.db", 1, 1},
    {"token", cli_cmd_token, "[--history] [--attributes] [--json] INSTANCE UOW",
     "show one token",
     "Print a token: status, place, version, lease, counters, attributes\n"
     "and context; --history adds its log rows, --attributes every version\n"
     "of every attribute. With --json, one object (the token, plus\n"
     "\"history\" and \"attribute_versions\" when asked).",
     opts_token, "  chameleon token invoices.db 01a2... --history", 2, 2},
    {"queues", cli_cmd_queues, "[--json] INSTANCE",
     "count the tokens waiting in every interaction",
     "One line per interaction (master workflow first): the roles that\n"
     "consume it, and how many tokens it holds in each status.",
     opts_engine, "  chameleon queues invoices.db", 1, 1},
    {"tokens", cli_cmd_tokens, "[--status S] [--json] INSTANCE",
     "list tokens, oldest first",
     "List every token (or those in status S: PENDING, ACTIVE, COMPLETED,\n"
     "FAILED, TIMEOUT, ...), oldest first.",
     opts_tokens, "  chameleon tokens invoices.db --status FAILED", 1, 1},
    {"verify", cli_cmd_verify, "[--json] INSTANCE",
     "check the hash chain of the log",
     "Recompute the hash chain of Interaction_Logs. Exit 0 when every row\n"
     "matches; exit 6, naming the first row that does not, when the log was\n"
     "changed outside the engine. --json prints the report in both cases.",
     opts_engine, "  chameleon verify invoices.db", 1, 1},
    {"memory", cli_cmd_memory,
     "[--actor A] [--json] INSTANCE (set ROLE KEY VALUE | toxic ID | decay "
     "DAYS)",
     "write, poison or decay role memory",
     "set: write the role's global blueprint entry KEY (or, with --actor,\n"
     "the actor's personal playbook entry); VALUE is JSON when it parses,\n"
     "else text. toxic: never hand memory row ID out again. decay: delete\n"
     "memory rows not read for DAYS days.",
     opts_memory,
     "  chameleon memory invoices.db set FA-M-001 tone '\"formal\"'\n"
     "  chameleon memory invoices.db decay 90",
     1, 5},
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
        "create air-gapped instance stores from them, move tokens through\n"
        "them and inspect both.\n"
        "\n"
        "Commands:\n",
        f);
  for (const cli_cmd *cmd = cli_commands; cmd->name; cmd++)
    fprintf(f, "  %-12s %s\n", cmd->name, cmd->summary);
  fputs(
      "\n"
      "Options may come before or after arguments; '--' ends options.\n"
      "Run 'chameleon COMMAND --help' for the options of one command.\n"
      "\n"
      "Global options:\n"
      "  --now MS        run with the engine's clock set to MS (milliseconds\n"
      "                  since the epoch) instead of the real time\n"
      "\n"
      "Environment:\n"
      "  CHAMELEON_META  default meta-store path (else ./chameleon-meta.db)\n"
      "  CHAMELEON_NOW   as --now MS, when --now is not given\n"
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
  case CHM_CORRUPT:
    return CLI_EXIT_CORRUPT;
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
  free(c->pairs);
  c->pairs = NULL;
  c->npairs = 0;
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
      "--meta",        "--instance", "--out",      "--output",  "--name",
      "--version",     "--now",      "--workflow", "--actor",   "--role",
      "--interaction", "--attrs",    "--attr",     "--changes", "--set",
      "--reasoning",   "--reason",   "--text",     "--batch",   "--max-steps",
      "--lease",       "--status",   "-o",         NULL};
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
  if ((rc = cli_set_clock(c)) != CLI_EXIT_OK)
    return rc;
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
