/*
** uuid.c — RFC 9562 version-7 UUIDs: 48 bits of Unix milliseconds, then
** 12 bits of a per-millisecond counter (so ids made in the same
** millisecond still sort in creation order), then 62 random bits from the
** kernel (getrandom; libuuid's generator if that fails — libuuid reseeds
** on every call, which made it the costliest part of an id). Time comes
** from the real clock, not the virtual one, so ids never repeat across
** virtual-time rewinds.
*/
#include <pthread.h>
#include <stdio.h>
#include <sys/random.h>
#include <time.h>

#include <uuid/uuid.h>

#include "chm_int.h"

static int64_t last_ms = -1; /* millisecond of the previous id */
static unsigned counter = 0; /* ids made in last_ms so far */
static pthread_mutex_t order_lock = PTHREAD_MUTEX_INITIALIZER; /* guards both */

void chm__uuid7(char out[37]) {
  unsigned char b[16];
  struct timespec ts;
  int64_t ms;
  if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) uuid_generate_random(b);
  clock_gettime(CLOCK_REALTIME, &ts);
  ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  pthread_mutex_lock(&order_lock); /* handles on other threads share the order */
  if (ms <= last_ms) {
    ms = last_ms; /* clock went back or same ms: keep order */
    if (++counter > 0xfff) { /* counter exhausted: borrow the next ms */
      ms = ++last_ms;
      counter = 0;
    }
  } else {
    counter = 0;
  }
  last_ms = ms;
  b[6] = (unsigned char)(0x70 | ((counter >> 8) & 0x0f));
  b[7] = (unsigned char)(counter & 0xff);
  pthread_mutex_unlock(&order_lock);
  b[0] = (unsigned char)(ms >> 40);
  b[1] = (unsigned char)(ms >> 32);
  b[2] = (unsigned char)(ms >> 24);
  b[3] = (unsigned char)(ms >> 16);
  b[4] = (unsigned char)(ms >> 8);
  b[5] = (unsigned char)ms;
  b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));
  snprintf(out, 37,
           "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
           b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
           b[11], b[12], b[13], b[14], b[15]);
}
