/*
** clock.c — the engine's one clock source. Real time by default; a
** virtual clock (set by tests, replay and simulation) replaces it for the
** whole process. Deadlines use a separate monotonic counter that the
** virtual clock never touches.
*/
#include <time.h>

#include "chm_int.h"

static int virtual_on = 0;     /* 1 while a virtual clock is installed */
static int64_t virtual_ms = 0; /* its current reading, ms since epoch */

int64_t chm__now_ms(void) {
  struct timespec ts;
  if (virtual_on) return virtual_ms;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t chm__mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void chm_clock_set_virtual(int64_t ms) {
  virtual_on = 1;
  virtual_ms = ms;
}

void chm_clock_advance(int64_t ms) {
  if (virtual_on) virtual_ms += ms;
}

void chm_clock_set_real(void) { virtual_on = 0; }

int chm_clock_is_virtual(void) { return virtual_on; }

int64_t chm_clock_now(void) { return chm__now_ms(); }
