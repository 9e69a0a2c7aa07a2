/*
** instance.c — the chm_instance handle: one air-gapped instance store.
** Opening never creates (instantiation does) and never reads the
** meta-store. Describe and re-validation are trusted Lua
** (lua/instance.lua) over the instance's own tables.
*/
#include <stdlib.h>

#include "chm_int.h"
#include "core.h"

struct chm_instance {
  chm__core core; /* store, sandbox, last message */
};

int chm_instance_open(const char *path, chm_instance **out) {
  chm_instance *inst;
  if (out == NULL) return CHM_MISUSE;
  *out = inst = calloc(1, sizeof *inst);
  if (inst == NULL) return CHM_NOMEM;
  return chm__core_open(&inst->core, path, CHM__INSTANCE, 0);
}

int chm_instance_close(chm_instance *inst) {
  if (inst == NULL) return CHM_OK;
  chm__core_close(&inst->core);
  free(inst);
  return CHM_OK;
}

chm__core *chm__instance_core(chm_instance *inst) {
  return inst == NULL ? NULL : &inst->core;
}

const char *chm_instance_errmsg(const chm_instance *inst) {
  return inst == NULL ? "no handle (out of memory?)"
                      : chm__core_errmsg(&inst->core);
}

#define CHECK(i, cond)                                                    \
  do {                                                                    \
    if ((i) == NULL || (i)->core.L == NULL) return CHM_MISUSE;            \
    if (!(cond))                                                          \
      return chm__core_seterr(&(i)->core, CHM_MISUSE,                     \
                              "%s: missing argument", __func__);          \
  } while (0)

int chm_instance_describe(chm_instance *inst, char **json) {
  CHECK(inst, json != NULL);
  return chm__core_invoke(&inst->core, "instance", "describe", 0, NULL, json);
}

int chm_instance_dot(chm_instance *inst, char **text) {
  CHECK(inst, text != NULL);
  return chm__core_invoke(&inst->core, "instance", "dot", 0, NULL, text);
}

int chm_instance_validate(chm_instance *inst, char **report) {
  CHECK(inst, 1);
  return chm__core_invoke(&inst->core, "instance", "validate", 0, NULL, report);
}

int chm_instance_query(chm_instance *inst, const char *sql, char **json) {
  CHECK(inst, sql != NULL && json != NULL);
  return chm__core_query(&inst->core, sql, json);
}

int chm_instance_guide(chm_instance *inst, const char *table, char **json) {
  if (json != NULL) *json = NULL;
  CHECK(inst, json != NULL);
  return chm__core_guide(&inst->core, table, json);
}

int chm_instance_eval(chm_instance *inst, const char *source,
                      const chm_limits *limits, char **json) {
  CHECK(inst, source != NULL && json != NULL);
  return chm__core_eval(&inst->core, source, limits, json);
}

int chm_instance_repl(chm_instance *inst, const char *chunk, char **out) {
  if (out != NULL) *out = NULL;
  CHECK(inst, chunk != NULL && out != NULL);
  return chm__repl(&inst->core, inst, "eval", chunk, out);
}

void chm_instance_repl_output(chm_instance *inst, chm_write_fn fn, void *ud) {
  if (inst == NULL) return;
  inst->core.out_fn = fn;
  inst->core.out_ud = fn != NULL ? ud : NULL;
}

int chm_instance_repl_names(chm_instance *inst, char **json) {
  if (json != NULL) *json = NULL;
  CHECK(inst, json != NULL);
  return chm__repl(&inst->core, inst, "names", NULL, json);
}

void chm_instance_interrupt(chm_instance *inst) {
  if (inst != NULL) chm__sandbox_interrupt(inst->core.L);
}
