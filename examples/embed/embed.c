/*
** embed.c — a C host embedding libchameleon, built against the installed
** library through pkg-config (see Makefile and docs/embedding.md).
**
** It creates a meta-store in a fresh temporary directory, imports the
** workflow invoice.lua, instantiates it, registers the C skill "vat" that
** the workflow's `price` step calls, starts four invoices with
** chm_genesis, lets chm_run move them, and prints each invoice's final
** status and computed VAT. Exit status 0 only when every invoice ended as
** expected (three FINALIZED with the right VAT, one FAILED because the
** skill knows no rate for its country); 1 otherwise. The temporary
** directory is removed on every path.
**
** Usage: embed [workflow.lua]   (default: invoice.lua)
*/
#define _POSIX_C_SOURCE 200809L

#include <chameleon.h>

#include <dirent.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ===================================================================== */
/* Reading the engine's JSON                                              */
/* ===================================================================== */

/*
** The engine hands JSON text in and out (docs/json.md). These few helpers
** pick members out of it and are enough for this program; a larger host
** would use a JSON library.
*/

/* ws(p) -> p past any JSON whitespace. */
static const char *ws(const char *p) {
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
    p++;
  return p;
}

/* skip_value(p) -> the first byte after the JSON value that starts at p
** (a string, number, literal, object or array). */
static const char *skip_value(const char *p) {
  int depth = 0;
  do {
    if (*p == '"') {
      for (p++; *p != '\0' && *p != '"'; p++)
        if (*p == '\\' && p[1] != '\0')
          p++;
    } else if (*p == '{' || *p == '[') {
      depth++;
    } else if (*p == '}' || *p == ']') {
      depth--;
    } else if (depth == 0) {
      while (*p != '\0' && strchr(",:}] \t\n\r", *p) == NULL)
        p++;
      return p;
    }
    if (*p != '\0')
      p++;
  } while (*p != '\0' && depth > 0);
  return p;
}

/* member(obj, key) -> the value of member `key` of the JSON object at obj,
** or NULL when obj is NULL, not an object, or has no such member. The
** result points into obj. */
static const char *member(const char *obj, const char *key) {
  size_t n = strlen(key);
  if (obj == NULL || *(obj = ws(obj)) != '{')
    return NULL;
  for (obj = ws(obj + 1); *obj == '"'; obj = ws(obj)) {
    const char *name = obj + 1, *value = ws(skip_value(obj));
    if (*value != ':')
      return NULL;
    value = ws(value + 1);
    if (strncmp(name, key, n) == 0 && name[n] == '"')
      return value;
    obj = ws(skip_value(value));
    if (*obj == ',')
      obj++;
  }
  return NULL;
}

/* string(v, buf, size) -> 1 and the string in buf when the JSON value at
** v is a string without escapes shorter than size bytes, else 0. v may be
** NULL. */
static int string(const char *v, char *buf, size_t size) {
  const char *end;
  if (v == NULL || *v != '"')
    return 0;
  end = skip_value(v) - 1;
  if (end <= v || *end != '"' || (size_t)(end - v - 1) >= size ||
      memchr(v + 1, '\\', (size_t)(end - v - 1)) != NULL)
    return 0;
  memcpy(buf, v + 1, (size_t)(end - v - 1));
  buf[end - v - 1] = '\0';
  return 1;
}

/* integer(v, &out) -> 1 and *out when the JSON value at v is an integer,
** else 0. v may be NULL. */
static int integer(const char *v, long long *out) {
  char *end;
  if (v == NULL || (*v != '-' && (*v < '0' || *v > '9')))
    return 0;
  *out = strtoll(v, &end, 10);
  return end != v && strchr(",}]", *ws(end)) != NULL; /* "" matches NUL */
}

/* ===================================================================== */
/* The "vat" skill                                                        */
/* ===================================================================== */

/* One country's VAT rate in basis points (1900 = 19 %). */
typedef struct vat_rate {
  const char *country; /* ISO 3166 alpha-2 code */
  int rate_bp;         /* rate in basis points */
} vat_rate;

/* The skill's user data: the rate table and a call counter. */
typedef struct vat_table {
  const vat_rate *rates; /* n entries */
  size_t n;
  int calls; /* how many times the engine called the skill */
} vat_table;

/* xprintf(fmt, ...) -> a malloc'ed formatted string, or NULL when out of
** memory. Skills hand results and errors to the engine this way: the
** engine releases them with free(). */
static char *xprintf(const char *fmt, ...) {
  va_list ap;
  char *s;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || (s = malloc((size_t)n + 1)) == NULL)
    return NULL;
  va_start(ap, fmt);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return s;
}

/* vat_cb(ud, args, &result, &error): the skill behind ctx.skills.vat. The
** step calls it with {country = "DE", net_cents = 10000}; args is that
** table's canonical JSON, {"country":"DE","net_cents":10000}. On success
** returns 0 with *result = {"rate_bp":1900,"vat_cents":1900} (VAT rounded
** half up to the cent); for an unknown country or bad arguments returns 1
** with *error set. Both strings are malloc'ed; the engine frees them. A
** skill runs inside chm_run on the calling thread and must not call the
** library on the same handle. */
static int vat_cb(void *ud, const char *args, char **result, char **error) {
  vat_table *table = ud;
  char country[8];
  long long net;
  size_t i;
  table->calls++;
  if (!string(member(args, "country"), country, sizeof country) ||
      !integer(member(args, "net_cents"), &net) || net < 0 ||
      net > LLONG_MAX / 10000) {
    *error =
        xprintf("expected {country = code, net_cents = cents}, got %s", args);
    return 1;
  }
  for (i = 0; i < table->n; i++)
    if (strcmp(country, table->rates[i].country) == 0) {
      long long rate = table->rates[i].rate_bp;
      *result = xprintf("{\"rate_bp\":%lld,\"vat_cents\":%lld}", rate,
                        (net * rate + 5000) / 10000);
      return *result == NULL;
    }
  *error = xprintf("no VAT rate for country '%s'", country);
  return 1;
}

/* ===================================================================== */
/* The invoices                                                           */
/* ===================================================================== */

/* One invoice and what the workflow should make of it. */
typedef struct invoice {
  const char *number;   /* attribute "invoice" */
  const char *country;  /* attribute "country" */
  long long net_cents;  /* attribute "net_cents" */
  const char *expected; /* final status */
  long long vat_cents;  /* expected vat_cents; -1 when none */
  const char *reason;   /* expected in failure_reason; NULL when none */
} invoice;

static const vat_rate RATES[] = {{"DE", 1900}, {"FR", 2000}, {"IT", 2200}};

static const invoice INVOICES[] = {
    {"INV-001", "DE", 10000, "FINALIZED", 1900, NULL},
    {"INV-002", "FR", 12345, "FINALIZED", 2469, NULL},
    {"INV-003", "IT", 8000, "FINALIZED", 1760, NULL},
    {"INV-004", "XX", 5000, "FAILED", -1, "no VAT rate for country 'XX'"},
};

#define N_INVOICES (sizeof INVOICES / sizeof INVOICES[0])

/* The engine's clock for this run: 2026-01-01T00:00:00Z. */
#define CLOCK_START 1767225600000LL

/* ===================================================================== */
/* Setting up                                                             */
/* ===================================================================== */

#define PATH_LEN 4096 /* room for a file name */

/* path_in(buf, dir, name) -> 1 with buf = "dir/name", or 0 when that does
** not fit in PATH_LEN bytes. */
static int path_in(char buf[PATH_LEN], const char *dir, const char *name) {
  int n = snprintf(buf, PATH_LEN, "%s/%s", dir, name);
  return n > 0 && n < PATH_LEN;
}

/* report(rc, what, detail): print the code's name, its static message and
** the handle's detailed message to stderr. */
static void report(int rc, const char *what, const char *detail) {
  fprintf(stderr, "embed: %s: %s (%s): %s\n", what, chm_errname(rc),
          chm_errstr(rc), detail);
}

/* open_instance(dir, workflow, &inst): create the meta-store dir/meta.db,
** import the workflow file, instantiate it as dir/invoice.db and open that
** instance. The meta-store is closed before returning: the instance is
** air-gapped. On CHM_OK the caller closes *inst; on failure *inst is NULL
** and the error has been reported. */
static int open_instance(const char *dir, const char *workflow,
                         chm_instance **inst) {
  char meta_path[PATH_LEN], inst_path[PATH_LEN], name[64] = "?", *out = NULL;
  long long version = 0;
  chm_meta *meta = NULL;
  int rc;
  *inst = NULL;
  if (!path_in(meta_path, dir, "meta.db") ||
      !path_in(inst_path, dir, "invoice.db")) {
    report(CHM_MISUSE, "paths", "the temporary directory's name is too long");
    return CHM_MISUSE;
  }

  if ((rc = chm_meta_open(meta_path, &meta)) != CHM_OK) {
    report(rc, "open meta-store", meta ? chm_meta_errmsg(meta) : meta_path);
    goto done;
  }
  if ((rc = chm_meta_import(meta, workflow, &out)) != CHM_OK) {
    report(rc, "import", chm_meta_errmsg(meta));
    goto done;
  }
  string(member(out, "name"), name, sizeof name);
  integer(member(out, "version"), &version);
  printf("imported %s version %lld\n", name, version);
  chm_free(out);
  rc = chm_meta_instantiate(meta, name, 0, inst_path, "embed", &out);
  if (rc != CHM_OK) {
    report(rc, "instantiate", chm_meta_errmsg(meta));
    goto done;
  }
  chm_free(out); /* {"instance_id", ...}: the id differs on every run */
  if ((rc = chm_instance_open(inst_path, inst)) != CHM_OK) {
    report(rc, "open instance", *inst ? chm_instance_errmsg(*inst) : inst_path);
    chm_instance_close(*inst);
    *inst = NULL;
  }
done:
  chm_meta_close(meta); /* NULL-safe */
  return rc;
}

/* remove_dir(dir): delete the files in dir (the stores and their -wal and
** -shm companions), then dir itself. Errors are ignored: it is cleanup. */
static void remove_dir(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char path[PATH_LEN];
  while (d != NULL && (e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
        path_in(path, dir, e->d_name))
      unlink(path);
  if (d != NULL)
    closedir(d);
  rmdir(dir);
}

/* ===================================================================== */
/* Running the invoices                                                   */
/* ===================================================================== */

/* money(buf, cents) -> buf holding cents as "123.45", or "-" when < 0. */
static const char *money(char buf[32], long long cents) {
  if (cents < 0)
    return "-";
  snprintf(buf, 32, "%lld.%02lld", cents / 100, cents % 100);
  return buf;
}

/* check(inst, id, inv) -> 1 when token `id` ended as `inv` expects, else
** 0. Prints one line: invoice, country, net, VAT, gross, final status;
** then the failure reason, if the token has one. */
static int check(chm_instance *inst, const char *id, const invoice *inv) {
  char *json = NULL, status[32] = "?", reason[512] = "", net[32], vat[32],
       gross[32];
  const char *attrs;
  long long vat_cents = -1, gross_cents = -1, booked_at = -1;
  int rc, ok;
  if ((rc = chm_token_get(inst, id, &json)) != CHM_OK) {
    report(rc, "token_get", chm_instance_errmsg(inst));
    return 0;
  }
  string(member(json, "status"), status, sizeof status);
  string(member(json, "failure_reason"), reason, sizeof reason);
  attrs = member(json, "attributes");
  integer(member(attrs, "vat_cents"), &vat_cents);
  integer(member(attrs, "gross_cents"), &gross_cents);
  integer(member(attrs, "booked_at"), &booked_at);
  chm_free(json);

  ok = strcmp(status, inv->expected) == 0 && vat_cents == inv->vat_cents;
  if (ok && vat_cents >= 0) /* booked: gross adds up, stamped by the clock */
    ok = gross_cents == inv->net_cents + vat_cents && booked_at == CLOCK_START;
  if (ok && inv->reason != NULL)
    ok = strstr(reason, inv->reason) != NULL;
  printf("%s  %s  net %7s  vat %6s  gross %7s  %s%s\n", inv->number,
         inv->country, money(net, inv->net_cents), money(vat, vat_cents),
         money(gross, gross_cents), status, ok ? "" : "  (unexpected)");
  if (*reason != '\0')
    printf("  reason: %s\n", reason);
  return ok;
}

/* run_invoices(inst, table) -> the number of invoices that ended as
** expected. Registers the skill with `table` as its user data (which must
** outlive every later chm_run on inst), starts every invoice, runs the
** engine once. */
static size_t run_invoices(chm_instance *inst, vat_table *table) {
  char *ids[N_INVOICES] = {NULL}, *out = NULL;
  size_t i, good = 0;
  int rc;

  rc = chm_register_skill(inst, "vat", vat_cb, table);
  if (rc != CHM_OK) {
    report(rc, "register_skill", chm_instance_errmsg(inst));
    return 0;
  }
  for (i = 0; i < N_INVOICES; i++) {
    char attrs[256];
    snprintf(attrs, sizeof attrs,
             "{\"invoice\": \"%s\", \"country\": \"%s\", \"net_cents\": %lld}",
             INVOICES[i].number, INVOICES[i].country, INVOICES[i].net_cents);
    rc = chm_genesis(inst, NULL, attrs, NULL, &ids[i]);
    if (rc != CHM_OK) {
      report(rc, "genesis", chm_instance_errmsg(inst));
      goto done;
    }
  }
  if ((rc = chm_run(inst, NULL, &out)) != CHM_OK) {
    report(rc, "run", chm_instance_errmsg(inst));
    goto done;
  }
  printf("run: %s\n", out);
  chm_free(out);
  for (i = 0; i < N_INVOICES; i++)
    good += (size_t)check(inst, ids[i], &INVOICES[i]);
  printf("vat skill called %d times\n", table->calls);
done:
  for (i = 0; i < N_INVOICES; i++)
    chm_free(ids[i]);
  return good;
}

/* ===================================================================== */
/* main                                                                   */
/* ===================================================================== */

int main(int argc, char **argv) {
  const char *workflow = argc > 1 ? argv[1] : "invoice.lua";
  const char *tmp = getenv("TMPDIR");
  char dir[PATH_LEN];
  vat_table table = {RATES, sizeof RATES / sizeof RATES[0], 0};
  chm_instance *inst = NULL;
  size_t good = 0;

  if (!path_in(dir, tmp && *tmp ? tmp : "/tmp", "chameleon-embed-XXXXXX")) {
    fprintf(stderr, "embed: TMPDIR is too long\n");
    return 1;
  }
  if (mkdtemp(dir) == NULL) {
    perror("embed: mkdtemp");
    return 1;
  }
  /* A virtual clock makes every timestamp of the run reproducible. */
  chm_clock_set_virtual(CLOCK_START);
  printf("libchameleon %s\n", chm_version());

  if (open_instance(dir, workflow, &inst) == CHM_OK)
    good = run_invoices(inst, &table);
  chm_instance_close(inst);
  remove_dir(dir);

  printf("%zu of %zu invoices as expected\n", good, N_INVOICES);
  return good == N_INVOICES ? 0 : 1;
}
