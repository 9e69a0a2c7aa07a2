/*
** args.c — command-line parsing for the CLI: each command declares the
** options it accepts (a cli_opt table); this file matches argv against that
** table, by hand and without global state, so options and positional
** arguments may come in any order (`--` ends options). It also renders the
** usage line and the --help page of a command from the same table.
*/
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define DEFAULT_META "chameleon-meta.db"

/* --help and -h are accepted by every command, listed or not. */
static const cli_opt help_opt = {"help", 'h', NULL, OPT_HELP,
                                 "show this help and exit"};

/* --now MS is a global option: accepted by every command, listed or not
** (the token commands list it so their --help shows it). */
static const cli_opt now_opt = {"now", 0, "MS", OPT_NOW,
                                "engine clock, ms since the epoch"};

/* ---- lookup ------------------------------------------------------------- */

static const cli_opt *find_long(const cli_cmd *cmd, const char *name,
                                size_t n) {
  for (const cli_opt *o = cmd->opts; o && o->id; o++)
    if (o->lng && strlen(o->lng) == n && strncmp(o->lng, name, n) == 0)
      return o;
  if (n == 4 && strncmp(name, "help", 4) == 0)
    return &help_opt;
  if (n == 3 && strncmp(name, "now", 3) == 0)
    return &now_opt;
  return NULL;
}

static const cli_opt *find_short(const cli_cmd *cmd, char ch) {
  for (const cli_opt *o = cmd->opts; o && o->id; o++)
    if (o->shrt && o->shrt == ch)
      return o;
  if (ch == 'h')
    return &help_opt;
  return NULL;
}

/* ---- applying one option ------------------------------------------------ */

/* Parse a decimal integer in [lo, hi] into *out; 0 on success. */
static int parse_int(const char *s, long long lo, long long hi,
                     long long *out) {
  char *end;
  long long v;
  errno = 0;
  v = strtoll(s, &end, 10);
  if (end == s || *end)
    return -1;
  if (errno == ERANGE) /* beyond int64: the sign says which way */
    return v < 0 ? -2 : -3;
  if (errno || v < lo)
    return v < lo ? -2 : -1;
  if (v > hi)
    return -3;
  *out = v;
  return 0;
}

/* ms_problem(val, bad, what, lo, hi, unit) -> the problem with a number
** of milliseconds parse_int refused (bad), naming the value and the range.
** The text lives in a static buffer until the next call. */
static const char *ms_problem(const char *val, int bad, const char *what,
                              long long lo, long long hi, const char *unit) {
  static char buf[180];
  snprintf(buf, sizeof buf, "'%.40s' is %s: %s is %lld to %lld %s", val,
           bad == -1 ? "not a number" : bad == -2 ? "too small" : "too large",
           what, lo, hi, unit);
  return buf;
}

/* Store option o with value val (NULL for flags) in c. Returns NULL, or a
** static problem description for a bad value. */
static const char *apply(cli *c, const cli_opt *o, const char *val) {
  int bad;
  switch (o->id) {
  case OPT_HELP:
    c->help = 1;
    break;
  case OPT_JSON:
    c->json = 1;
    break;
  case OPT_DOT:
    c->dot = 1;
    break;
  case OPT_META:
    c->meta = val;
    c->meta_given = 1;
    break;
  case OPT_INSTANCE:
    c->instance = val;
    break;
  case OPT_OUT:
    c->out = val;
    break;
  case OPT_OUTPUT:
    c->output = val;
    break;
  case OPT_NAME:
    c->name = val;
    break;
  case OPT_VERSION: {
    long long v;
    if (parse_int(val, 1, 1000000000LL, &v))
      return "a version is a positive integer";
    c->version = (int)v;
    break;
  }
  case OPT_NOW:
    if ((bad = parse_int(val, CHM_CLOCK_MIN_MS, CHM_CLOCK_MAX_MS, &c->now)))
      return bad == -1 ? "a time is a number of milliseconds since the epoch"
                       : ms_problem(val, bad, "a time", CHM_CLOCK_MIN_MS, CHM_CLOCK_MAX_MS,
                        "milliseconds since the epoch (years 1970 to 9999)");
    c->now_given = 1;
    break;
  case OPT_WORKFLOW:
    c->workflow = val;
    break;
  case OPT_ACTOR:
    c->actor = val;
    break;
  case OPT_ROLE:
    c->role = val;
    break;
  case OPT_INTERACTION:
    c->interaction = val;
    break;
  case OPT_ATTRS:
    c->attrs = val;
    break;
  case OPT_CHANGES:
    c->changes = val;
    break;
  case OPT_PAIR:
    if (!strchr(val, '=') || val[0] == '=')
      return "expected KEY=VALUE";
    c->pairs[c->npairs++] = val;
    break;
  case OPT_REASONING:
    c->reasoning = val;
    break;
  case OPT_REASON:
    c->reason = val;
    break;
  case OPT_TEXT:
    c->text = val;
    break;
  case OPT_STATUS:
    c->status_arg = val;
    break;
  case OPT_HISTORY:
    c->history = 1;
    break;
  case OPT_ATTRIBUTES:
    c->attributes = 1;
    break;
  case OPT_BATCH:
  case OPT_MAX_STEPS: {
    long long v;
    if (parse_int(val, 1, 1000000000LL, &v))
      return "expected a positive integer";
    *(o->id == OPT_BATCH ? &c->batch : &c->max_steps) = (int)v;
    break;
  }
  case OPT_LEASE:
    if ((bad = parse_int(val, 1, CHM_LEASE_MAX_MS, &c->lease_ms)))
      return bad == -1 ? "a lease is a positive number of milliseconds"
                       : ms_problem(val, bad, "a lease", 1, CHM_LEASE_MAX_MS,
                        "ms (366 days)");
    break;
  }
  if (val && !*val && o->id != OPT_NAME && o->id != OPT_REASONING &&
      o->id != OPT_REASON && o->id != OPT_TEXT)
    return "the value is empty";
  return NULL;
}

/* ---- parsing ------------------------------------------------------------ */

/* The name of operand number `have` (0-based) in cmd's usage: the words
** outside [...] and (...) groups that are neither options nor their
** placeholders ("--out PATH NAME" -> NAME). The last operand when there
** are fewer. */
static void missing_operand(const cli_cmd *cmd, int have, char *out, size_t n) {
  const char *p = cmd->args;
  int depth = 0, k = 0, after_opt = 0;
  snprintf(out, n, "%s", cmd->args);
  while (*p) {
    const char *w = p;
    size_t len;
    while (*p && *p != ' ')
      p++;
    len = (size_t)(p - w);
    if (depth == 0 && (*w == '[' || *w == '(')) {
      for (const char *q = w; q < p; q++)
        depth += (*q == '[' || *q == '(') - (*q == ']' || *q == ')');
    } else if (depth > 0) {
      for (const char *q = w; q < p; q++)
        depth += (*q == '[' || *q == '(') - (*q == ']' || *q == ')');
    } else if (*w == '-') {
      after_opt = 1;
    } else if (after_opt) {
      after_opt = 0;
    } else {
      snprintf(out, n, "%.*s", (int)len, w);
      if (k++ == have)
        return;
    }
    while (*p == ' ')
      p++;
  }
}

int cli_parse(cli *c, const cli_cmd *cmd, int argc, char **argv) {
  char problem[256] = "";
  int only_pos = 0;

  c->cmd = cmd;
  c->pos = calloc((size_t)argc + 1, sizeof *c->pos);
  c->pairs = calloc((size_t)argc + 1, sizeof *c->pairs);
  if (!c->pos || !c->pairs)
    return cli_error(c, CLI_EXIT_ERROR, NULL, "out of memory");
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    const cli_opt *o;
    const char *val = NULL, *bad;
    char shown[64];

    /* "-" alone and "-1" (a negative number: no option is a digit) are
    ** arguments, so the command can say what is wrong with the value */
    if (only_pos || a[0] != '-' || a[1] == 0 ||
        (a[1] >= '0' && a[1] <= '9')) {
      c->pos[c->npos++] = argv[i];
      continue;
    }
    if (strcmp(a, "--") == 0) {
      only_pos = 1;
      continue;
    }
    if (a[1] == '-') { /* --name, --name=value, --name value */
      const char *eq = strchr(a + 2, '=');
      size_t n = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
      o = find_long(cmd, a + 2, n);
      snprintf(shown, sizeof shown, "--%.*s", (int)(n < 40 ? n : 40), a + 2);
      if (o && eq) {
        if (!o->arg) {
          if (!*problem)
            snprintf(problem, sizeof problem, "option '%s' takes no value",
                     shown);
          continue;
        }
        val = eq + 1;
      }
    } else { /* -x, -x value, -xVALUE */
      o = find_short(cmd, a[1]);
      snprintf(shown, sizeof shown, "-%c", a[1]);
      if (o && a[2]) {
        if (!o->arg)
          o = NULL; /* no bundling of flags */
        else
          val = a + 2;
      }
      if (!o)
        snprintf(shown, sizeof shown, "%.40s", a);
    }
    if (!o) {
      if (!*problem)
        snprintf(problem, sizeof problem, "unknown option '%s'", shown);
      continue;
    }
    if (o->arg && !val) {
      if (i + 1 >= argc) {
        if (!*problem)
          snprintf(problem, sizeof problem, "option '%s' needs a value (%s)",
                   shown, o->arg);
        continue;
      }
      val = argv[++i];
    }
    if ((bad = apply(c, o, val)) != NULL && !*problem)
      snprintf(problem, sizeof problem, "option '%s': %s", shown, bad);
  }

  if (!c->meta) {
    const char *env = getenv("CHAMELEON_META");
    c->meta = env && *env ? env : DEFAULT_META;
  }
  if (c->help)
    return CLI_EXIT_OK; /* --help wins over any other problem */
  if (*problem)
    return cli_usage_error(c, "%s", problem);
  if (c->npos < cmd->min_args) {
    char word[64];
    missing_operand(cmd, c->npos, word, sizeof word);
    return cli_usage_error(c, "missing argument %s", word);
  }
  if (cmd->max_args >= 0 && c->npos > cmd->max_args)
    return cli_usage_error(c, "unexpected argument '%s'",
                           c->pos[cmd->max_args]);
  return CLI_EXIT_OK;
}

int cli_set_clock(cli *c) {
  const char *env = getenv("CHAMELEON_NOW");
  long long ms;
  int bad;
  /* --now was checked against the clock's range when it was parsed */
  if (c->now_given) {
    chm_clock_set_virtual((int64_t)c->now);
  } else if (env && *env) {
    if ((bad = parse_int(env, CHM_CLOCK_MIN_MS, CHM_CLOCK_MAX_MS, &ms)) == -1)
      return cli_usage_error(c,
                             "CHAMELEON_NOW='%.40s' is not a number of "
                             "milliseconds since the epoch",
                             env);
    if (bad)
      return cli_usage_error(
          c, "CHAMELEON_NOW=%s",
          ms_problem(env, bad, "a time", CHM_CLOCK_MIN_MS, CHM_CLOCK_MAX_MS,
                     "milliseconds since the epoch (years 1970 to 9999)"));
    chm_clock_set_virtual((int64_t)ms);
  }
  return CLI_EXIT_OK;
}

/* ---- usage and help ----------------------------------------------------- */

void cli_usage(const cli_cmd *cmd, FILE *f) {
  /* Wrap at 79 columns between bracketed groups, continuation lines
  ** aligned under the first argument. */
  int indent = (int)strlen("usage: chameleon ") + (int)strlen(cmd->name) + 1;
  int col = indent, depth = 0;
  const char *p = cmd->args, *word = p;
  fprintf(f, "usage: chameleon %s", cmd->name);
  for (;; p++) {
    if (*p == '[')
      depth++;
    else if (*p == ']')
      depth--;
    if ((*p == ' ' && depth == 0) || *p == 0) {
      int n = (int)(p - word);
      if (n > 0) {
        if (col > indent && col + 1 + n > 79) {
          fprintf(f, "\n%*s", indent - 1, "");
          col = indent - 1;
        }
        fprintf(f, " %.*s", n, word);
        col += 1 + n;
      }
      word = p + 1;
    }
    if (*p == 0)
      break;
  }
  fputc('\n', f);
}

static void print_option(const cli_opt *o, FILE *f) {
  char left[64];
  if (o->shrt && o->lng)
    snprintf(left, sizeof left, "-%c, --%s%s%s", o->shrt, o->lng,
             o->arg ? " " : "", o->arg ? o->arg : "");
  else if (o->lng)
    snprintf(left, sizeof left, "    --%s%s%s", o->lng, o->arg ? " " : "",
             o->arg ? o->arg : "");
  else
    snprintf(left, sizeof left, "-%c%s%s", o->shrt, o->arg ? " " : "",
             o->arg ? o->arg : "");
  if (strlen(left) > 20)
    fprintf(f, "  %s\n  %-20s  %s\n", left, "", o->help);
  else
    fprintf(f, "  %-20s  %s\n", left, o->help);
}

void cli_help(const cli_cmd *cmd, FILE *f) {
  int has_help = 0;
  cli_usage(cmd, f);
  fprintf(f, "\n%s\n", cmd->description);
  fputs("\nOptions:\n", f);
  for (const cli_opt *o = cmd->opts; o && o->id; o++) {
    print_option(o, f);
    has_help |= o->id == OPT_HELP;
  }
  if (!has_help)
    print_option(&help_opt, f);
  for (const cli_opt *o = cmd->opts; o && o->id; o++)
    if (o->id == OPT_META) {
      fputs("\nThe meta-store is $CHAMELEON_META when set, else "
            "./chameleon-meta.db.\n",
            f);
      break;
    }
  fprintf(f, "\nExample:\n%s\n", cmd->example);
}

int cli_usage_error(cli *c, const char *fmt, ...) {
  va_list ap;
  const char *name = c->cmd ? c->cmd->name : NULL;
  fputs("chameleon: ", stderr);
  if (name)
    fprintf(stderr, "%s: ", name);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  if (c->cmd) {
    cli_usage(c->cmd, stderr);
    fprintf(stderr, "Run 'chameleon %s --help' for details.\n", name);
  } else {
    fputs("Run 'chameleon help' for the list of commands.\n", stderr);
  }
  if (!c->status)
    c->status = CLI_EXIT_USAGE;
  return CLI_EXIT_USAGE;
}
