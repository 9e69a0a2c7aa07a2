/*
** clock.c — the engine's one clock source. Real time by default; a
** virtual clock (set by tests, replay and simulation) replaces it for the
** whole process, within CHM_CLOCK_MIN_MS..CHM_CLOCK_MAX_MS (years
** 1970..9999). Deadlines use a separate monotonic counter that the
** virtual clock never touches. The virtual clock is one C11 atomic int64
** (INT64_MIN while the real clock is in use), so the chm_clock_* functions
** may be called from any thread, concurrently with each other and with
** engine calls on any handle: each read sees one whole value that some
** call stored, never a torn one.
*/
#include <stdatomic.h>
#include <time.h>

#include "chm_int.h"

#define REAL_CLOCK INT64_MIN /* the virtual reading meaning "none installed" */

/* The virtual clock's reading in ms since the epoch, or REAL_CLOCK. */
static _Atomic int64_t virtual_ms = REAL_CLOCK;

int64_t chm__now_ms(void) {
  struct timespec ts;
  int64_t v = atomic_load(&virtual_ms);
  if (v != REAL_CLOCK) return v;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t chm__mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* in_range(ms) -> 1 when ms is a reading the stores can hold. */
static int in_range(int64_t ms) {
  return ms >= CHM_CLOCK_MIN_MS && ms <= CHM_CLOCK_MAX_MS;
}

int chm_clock_set_virtual(int64_t ms) {
  /* the range keeps clear of INT64_MIN, the "real clock" mark */
  if (!in_range(ms)) return CHM_MISUSE;
  atomic_store(&virtual_ms, ms);
  return CHM_OK;
}

int chm_clock_advance(int64_t ms) {
  int64_t v = atomic_load(&virtual_ms);
  /* compare-and-swap: an advance racing with set_real or set_virtual
  ** either applies to the value it read or retries; it never resurrects
  ** a virtual clock that was just removed. The range test comes before
  ** the sum (v is in range, so v + ms cannot overflow once ms is bounded
  ** by the width of the range). */
  while (v != REAL_CLOCK) {
    if (ms > CHM_CLOCK_MAX_MS - CHM_CLOCK_MIN_MS ||
        ms < CHM_CLOCK_MIN_MS - CHM_CLOCK_MAX_MS || !in_range(v + ms))
      return CHM_MISUSE;
    if (atomic_compare_exchange_weak(&virtual_ms, &v, v + ms)) break;
  }
  return CHM_OK;
}

void chm_clock_set_real(void) { atomic_store(&virtual_ms, REAL_CLOCK); }

int chm_clock_is_virtual(void) {
  return atomic_load(&virtual_ms) != REAL_CLOCK;
}

int64_t chm_clock_now(void) { return chm__now_ms(); }
