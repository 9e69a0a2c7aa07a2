/*
** errors.c — status codes and their static messages, generated from
** CHM_STATUS_MAP in chameleon.h, plus the library version and chm_free.
** Detailed per-handle messages live in core.c.
*/
#include <stdlib.h>

#include "chm_int.h"

static const char *const status_msg[] = {
#define XX(name, msg) msg,
    CHM_STATUS_MAP(XX)
#undef XX
};

static const char *const status_name[] = {
#define XX(name, msg) #name,
    CHM_STATUS_MAP(XX)
#undef XX
};

const char *chm_errstr(int rc) {
  if (rc < 0 || rc >= CHM__STATUS_COUNT) return "unknown status";
  return status_msg[rc];
}

const char *chm_errname(int rc) {
  if (rc < 0 || rc >= CHM__STATUS_COUNT) return "UNKNOWN";
  return status_name[rc];
}

const char *chm_version(void) { return CHM_VERSION; }

void chm_free(void *p) { free(p); }
