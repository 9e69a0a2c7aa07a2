/*
** repl.c — `chameleon repl [STORE]`: an interactive Lua REPL inside the
** store's own sandbox with the engine bound, shaped like lua.c (doREPL →
** read a line → evaluate, continuing on a second prompt while the chunk is
** incomplete → print). Line editing, persistent history and tab completion
** come from readline; dot-commands are translated into Lua calls on the
** same session; Ctrl-C interrupts the running chunk, not the process, and
** at a prompt drops the line and any unfinished statement. Completion
** breaks words like Lua outside strings, takes a quoted string whole
** (role names hold '-'), and after a dot-command splits only at blanks.
** Standard input that is not a terminal is read line by line with the same
** evaluator and no prompts, so transcripts can be piped in and tested.
** Uses only the public header.
*/
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "cli.h"

#define PROMPT "chameleon> "
#define PROMPT2 "      ...> "
#define MAX_NAMES 512

/* A dot-command's binding that fails (nil, message, CODE) reports the
** message as an error, not as three printed values. */
#define DOT_CHECK                                                          \
  "(function(r, m, code) if r == nil and m then "                          \
  "error(m .. ' (' .. tostring(code) .. ')', 0) end return r end)"

/* The one session of this process (signal handler and completion need it). */
static chm_instance *repl_inst;     /* the open instance, or NULL */
static chm_meta *repl_meta;         /* the open meta-store, or NULL */
static volatile sig_atomic_t busy;  /* 1 while a chunk is evaluated */
static volatile sig_atomic_t drop;  /* Ctrl-C at a prompt: drop pending */
static char *names[MAX_NAMES];      /* completion candidates */
static int nnames;

static const char *const dot_help =
    ".help                 this text\n"
    ".roles                roles of every workflow (type, actors)\n"
    ".queue INTERACTION    tokens waiting in an interaction\n"
    ".token ID             one token: status, place, attributes\n"
    ".log ID               a token's history (the audit log)\n"
    ".sql QUERY            a read-only SQL query on the store\n"
    ".quit                 leave (also Ctrl-D)\n"
    "Anything else is Lua, run in the store's sandbox. An expression prints\n"
    "its value. Press Tab twice to list the bound functions (docs/repl.md).\n";

/* ---- evaluation ------------------------------------------------------- */

/* eval(chunk, &out) -> status of one chunk on the open store. */
static int eval(const char *chunk, char **out) {
  int rc;
  busy = 1;
  rc = repl_inst != NULL ? chm_instance_repl(repl_inst, chunk, out)
                         : chm_meta_repl(repl_meta, chunk, out);
  busy = 0;
  return rc;
}

static const char *errmsg(void) {
  return repl_inst != NULL ? chm_instance_errmsg(repl_inst)
                           : chm_meta_errmsg(repl_meta);
}

/* Appends s to the malloc'ed string *dst (NULL = empty), with a newline. */
static int append(char **dst, const char *s) {
  size_t a = *dst ? strlen(*dst) : 0, b = strlen(s);
  char *n = realloc(*dst, a + b + 2);
  if (n == NULL) return -1;
  if (a > 0) n[a++] = '\n';
  memcpy(n + a, s, b + 1);
  *dst = n;
  return 0;
}

/* Quotes s as a Lua long string that cannot be closed early. */
static char *lua_quote(const char *s) {
  char close[16] = "]]", open[16] = "[[";
  int level = 0;
  size_t n;
  char *q;
  while (strstr(s, close) != NULL && level < 10) {
    level++;
    snprintf(open, sizeof open, "[%.*s[", level, "==========");
    snprintf(close, sizeof close, "]%.*s]", level, "==========");
  }
  n = strlen(s) + 2 * strlen(open) + 1;
  q = malloc(n);
  if (q != NULL) snprintf(q, n, "%s%s%s", open, s, close);
  return q;
}

/* dot(line, &chunk, &quit) -> 0, or -1 when the command is wrong (message
** printed). *chunk: the Lua chunk the command stands for (malloc'ed), or
** NULL when it was handled here (.help, .quit). *quit set by .quit. */
static int dot(const char *line, char **chunk, int *quit) {
  const char *arg = line + strcspn(line, " \t");
  size_t cmdlen = (size_t)(arg - line);
  char *q;
  *chunk = NULL;
  while (*arg == ' ' || *arg == '\t') arg++;
#define IS(name) (cmdlen == strlen(name) && strncmp(line, name, cmdlen) == 0)
  if (IS(".help")) {
    fputs(dot_help, stdout);
    return 0;
  }
  if (IS(".quit") || IS(".exit")) {
    *quit = 1;
    return 0;
  }
  if (IS(".sql")) {
    if (*arg == '\0') goto need_arg;
    if ((q = lua_quote(arg)) == NULL) goto nomem;
    *chunk = malloc(strlen(q) + strlen(DOT_CHECK) + 32);
    if (*chunk != NULL) sprintf(*chunk, "return %s(sql(%s))", DOT_CHECK, q);
    free(q);
    return *chunk != NULL ? 0 : -1;
  }
  if (repl_inst == NULL && (IS(".roles") || IS(".queue") || IS(".token") ||
                            IS(".log"))) {
    fprintf(stderr, "%.*s: needs an instance store (this is a meta-store)\n",
            (int)cmdlen, line);
    return -1;
  }
  if (IS(".roles")) {
    append(chunk,
           "local out = {} for _, w in ipairs(describe().workflows) do "
           "for _, r in ipairs(w.roles) do local who = {} "
           "for _, a in ipairs(w.assignments) do if a.role == r.name and "
           "a.status == 'ACTIVE' then who[#who + 1] = a.actor end end "
           "out[#out + 1] = string.format('%-16s %-22s %-8s %s', w.name, "
           "r.name, r.type, table.concat(who, ', ')) end end "
           "print(table.concat(out, '\\n'))");
    return *chunk != NULL ? 0 : -1;
  }
  if (IS(".queue") || IS(".token") || IS(".log")) {
    size_t n;
    if (*arg == '\0') goto need_arg;
    if ((q = lua_quote(arg)) == NULL) goto nomem;
    n = strlen(q) + strlen(DOT_CHECK) + 200;
    *chunk = malloc(n);
    if (*chunk != NULL) {
      if (IS(".token"))
        snprintf(*chunk, n, "return %s(token(%s))", DOT_CHECK, q);
      else if (IS(".log"))
        snprintf(*chunk, n, "return %s(history(%s))", DOT_CHECK, q);
      else
        snprintf(*chunk, n,
                 "local q = {} for _, t in ipairs(tokens()) do "
                 "if t.interaction == %s then q[#q + 1] = t end end return q",
                 q);
    }
    free(q);
    return *chunk != NULL ? 0 : -1;
  }
  fprintf(stderr, "unknown command %.*s (try .help)\n", (int)cmdlen, line);
  return -1;
need_arg:
  fprintf(stderr, "%.*s needs an argument (try .help)\n", (int)cmdlen, line);
  return -1;
nomem:
  fprintf(stderr, "%.*s: out of memory\n", (int)cmdlen, line);
  return -1;
#undef IS
}

/* run_chunk(chunk): evaluate a complete chunk and print the outcome: what
** it printed (also when it then failed), its values, then its error.
** Returns CHM_OK, CHM_INCOMPLETE, or the failure status. */
static int run_chunk(const char *chunk) {
  char *out = NULL;
  int rc = eval(chunk, &out);
  if (out != NULL && *out != '\0') printf("%s\n", out);
  fflush(stdout);
  if (rc != CHM_OK && rc != CHM_INCOMPLETE) fprintf(stderr, "%s\n", errmsg());
  chm_free(out);
  return rc;
}

/* ---- completion ------------------------------------------------------- */

static void add_name(const char *s) {
  int i;
  if (s == NULL || nnames >= MAX_NAMES) return;
  for (i = 0; i < nnames; i++)
    if (strcmp(names[i], s) == 0) return;
  names[nnames] = strdup(s);
  if (names[nnames] != NULL) nnames++;
}

/* Collects the "name" members of every element of arr. */
static void add_names_of(const cli_jv *arr) {
  const cli_jv *e;
  if (arr == NULL) return;
  for (e = arr->child; e != NULL; e = e->next) {
    const cli_jv *n = cli_json_get(e, "name");
    if (n != NULL && n->type == CLI_JSTRING) add_name(n->text);
  }
}

/* Fills names[] with the bound API, dot-commands, and the instance's
** roles, interactions and actors. */
static void load_names(void) {
  static const char *const dots[] = {".help", ".roles", ".queue", ".token",
                                     ".log",  ".sql",   ".quit",  NULL};
  char *json = NULL, err[128];
  cli_jv *v;
  int i, rc;
  for (i = 0; dots[i] != NULL; i++) add_name(dots[i]);
  rc = repl_inst ? chm_instance_repl_names(repl_inst, &json)
                 : chm_meta_repl_names(repl_meta, &json);
  if (rc == CHM_OK && (v = cli_json_parse(json, err, sizeof err)) != NULL) {
    const cli_jv *e;
    for (e = v->child; e != NULL; e = e->next)
      if (e->type == CLI_JSTRING) add_name(e->text);
    cli_json_free(v);
  }
  chm_free(json);
  json = NULL;
  if (repl_inst != NULL && chm_instance_describe(repl_inst, &json) == CHM_OK &&
      (v = cli_json_parse(json, err, sizeof err)) != NULL) {
    const cli_jv *w, *wfs = cli_json_get(v, "workflows");
    for (w = wfs ? wfs->child : NULL; w != NULL; w = w->next) {
      add_names_of(cli_json_get(w, "roles"));
      add_names_of(cli_json_get(w, "interactions"));
      add_names_of(cli_json_get(w, "actors"));
    }
    cli_json_free(v);
  }
  chm_free(json);
}

static char *name_generator(const char *text, int state) {
  static int i;
  static size_t len;
  if (state == 0) {
    i = 0;
    len = strlen(text);
  }
  while (i < nnames) {
    const char *n = names[i++];
    if (strncmp(n, text, len) == 0) return strdup(n);
  }
  return NULL;
}

static char **complete(const char *text, int start, int end) {
  (void)start;
  (void)end;
  rl_attempted_completion_over = 1; /* never fall back to file names */
  return rl_completion_matches(text, name_generator);
}

/* Where the word to complete starts. In Lua code, at an operator or a
** bracket, so `a-b` completes `b`; after a dot-command, only at blanks, so
** `.queue ap-spec` completes `ap-spec`. Inside a quoted string readline
** takes the whole string (rl_completer_quote_characters), so
** `"FA-M-0` completes `FA-M-0` and closes the quote. */
static char lua_breaks[] = " \t\n\"'(),=+-*/%<>{}[];~#^&|:";
static char dot_breaks[] = " \t\n\"'";

static char *word_breaks(void) {
  return rl_line_buffer[0] == '.' ? dot_breaks : lua_breaks;
}

/* ---- signals ---------------------------------------------------------- */

static void on_sigint(int sig) {
  (void)sig;
  if (busy) {
    if (repl_inst != NULL) chm_instance_interrupt(repl_inst);
    if (repl_meta != NULL) chm_meta_interrupt(repl_meta);
  } else {
    /* at a prompt: drop the line and any unfinished statement (the loop
    ** frees it), like lua.c and a shell. Readline runs this handler from
    ** its own after it cleaned up, outside the interrupted code. */
    drop = 1;
    rl_set_prompt(PROMPT);
    if (write(STDOUT_FILENO, "\n", 1) < 0) return;
    rl_on_new_line();
    rl_replace_line("", 0);
    rl_redisplay();
  }
}

/* ---- the loops -------------------------------------------------------- */

/* Feeds one input line; keeps an incomplete chunk in *pending. Returns 1
** to quit. *failed is set when a chunk failed. */
static int feed(const char *line, char **pending, int *failed, int tty) {
  int quit = 0, rc;
  if (*pending == NULL && line[0] == '.') {
    char *chunk;
    if (dot(line, &chunk, &quit) != 0) *failed = 1;
    if (tty) add_history(line);
    if (chunk != NULL) {
      if (run_chunk(chunk) != CHM_OK) *failed = 1;
      free(chunk);
    }
    return quit;
  }
  if (*pending == NULL && line[strspn(line, " \t")] == '\0') return 0;
  if (append(pending, line) != 0) return 1;
  rc = run_chunk(*pending);
  if (rc == CHM_INCOMPLETE) return 0;
  if (rc != CHM_OK) *failed = 1;
  if (tty) add_history(*pending);
  free(*pending);
  *pending = NULL;
  return 0;
}

static char *history_path(void) {
  const char *env = getenv("CHAMELEON_HISTORY"), *home = getenv("HOME");
  char *p;
  if (env != NULL) return strdup(env);
  if (home == NULL) return NULL;
  p = malloc(strlen(home) + 32);
  if (p != NULL) sprintf(p, "%s/.chameleon_history", home);
  return p;
}

static int loop_tty(void) {
  char *line, *pending = NULL, *hist = history_path();
  int failed = 0;
  struct sigaction sa;
  printf("Chameleon %s REPL on %s — .help for help, Ctrl-D to leave\n",
         chm_version(), repl_inst ? "an instance store" : "a meta-store");
  load_names();
  rl_readline_name = "chameleon";
  rl_attempted_completion_function = complete;
  rl_completer_word_break_characters = lua_breaks;
  rl_completion_word_break_hook = word_breaks;
  rl_completer_quote_characters = "\"'";
  if (hist != NULL) read_history(hist);
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  while ((line = readline(pending ? PROMPT2 : PROMPT)) != NULL) {
    int quit;
    if (drop) { /* Ctrl-C while this line was read */
      drop = 0;
      free(pending);
      pending = NULL;
    }
    quit = feed(line, &pending, &failed, 1);
    free(line);
    if (quit) break;
  }
  if (line == NULL) putchar('\n');
  if (hist != NULL) {
    write_history(hist);
    history_truncate_file(hist, 1000);
  }
  free(hist);
  free(pending);
  return 0;
}

static int loop_pipe(void) {
  char *line = NULL, *pending = NULL;
  size_t cap = 0;
  ssize_t n;
  int failed = 0;
  while ((n = getline(&line, &cap, stdin)) >= 0) {
    if (n > 0 && line[n - 1] == '\n') line[n - 1] = '\0';
    if (feed(line, &pending, &failed, 0)) break;
  }
  if (pending != NULL) {
    fprintf(stderr, "%s\n", errmsg());
    failed = 1;
  }
  free(line);
  free(pending);
  return failed;
}

/* write_out: the REPL's print sink, flushed at once so that what a chunk
** prints appears while it runs, in order with messages on stderr. */
static void write_out(void *ud, const char *text, size_t len) {
  (void)ud;
  fwrite(text, 1, len, stdout);
  fflush(stdout);
}

/* chameleon repl [STORE]: an instance store, a meta-store, or (none) a
** scratch meta-store in memory. */
int cli_cmd_repl(cli *c) {
  const char *path = c->npos > 0 ? c->pos[0] : NULL;
  int rc, failed, i;
  if (path == NULL) {
    rc = chm_meta_open(":memory:", &c->m);
    if (rc != CHM_OK) return cli_meta_fail(c, rc, NULL);
    repl_meta = c->m;
  } else {
    if (access(path, F_OK) != 0)
      return cli_error(c, CLI_EXIT_NOTFOUND,
                       "give an instance store or a meta-store that exists",
                       "%s: no such store", path);
    rc = chm_instance_open(path, &c->inst);
    if (rc == CHM_OK) {
      repl_inst = c->inst;
    } else {
      chm_instance_close(c->inst);
      c->inst = NULL;
      rc = chm_meta_open(path, &c->m);
      if (rc != CHM_OK) {
        /* the library's message starts with the path: name it once */
        const char *why = chm_meta_errmsg(c->m);
        size_t n = strlen(path);
        if (strncmp(why, path, n) == 0 && strncmp(why + n, ": ", 2) == 0)
          why += n + 2;
        return cli_error(c, CLI_EXIT_ERROR,
                         "give an instance store or a meta-store ('chameleon "
                         "init' makes a meta-store, 'chameleon instantiate' "
                         "an instance store)",
                         "%s: neither an instance store nor a meta-store (%s)",
                         path, why);
      }
      repl_meta = c->m;
    }
  }
  /* print goes out as it is written, not when the chunk ends */
  if (repl_inst != NULL) chm_instance_repl_output(repl_inst, write_out, NULL);
  else chm_meta_repl_output(repl_meta, write_out, NULL);
  failed = isatty(STDIN_FILENO) ? loop_tty() : loop_pipe();
  for (i = 0; i < nnames; i++) free(names[i]);
  nnames = 0;
  repl_inst = NULL;
  repl_meta = NULL;
  return failed ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}
