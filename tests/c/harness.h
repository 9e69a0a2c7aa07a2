/*
** harness.h — the typed assertions shared by the C tests (libuv's
** test-list style): each TEST is a void function; a failing ASSERT prints
** file, line and both values, sets test_failed and returns from the
** function it is in. Each test file keeps its own TEST_LIST and main,
** which print one line per test and, last, "N passed, N failed".
*/
#ifndef CHM_TEST_HARNESS_H
#define CHM_TEST_HARNESS_H

#include <stdio.h>
#include <string.h>

static int test_failed; /* set by a failing ASSERT in the current test */

#define FAIL_AT(...)                                                           \
  do {                                                                         \
    printf("  %s:%d: ", __FILE__, __LINE__);                                   \
    printf(__VA_ARGS__);                                                       \
    putchar('\n');                                                             \
    test_failed = 1;                                                           \
    return;                                                                    \
  } while (0)

#define ASSERT_TRUE(c)                                                         \
  do {                                                                         \
    if (!(c))                                                                  \
      FAIL_AT("ASSERT_TRUE(%s)", #c);                                          \
  } while (0)

#define ASSERT_INT_EQ(a, b)                                                    \
  do {                                                                         \
    long long a_ = (long long)(a), b_ = (long long)(b);                        \
    if (a_ != b_)                                                              \
      FAIL_AT("ASSERT_INT_EQ(%s, %s): %lld != %lld", #a, #b, a_, b_);          \
  } while (0)

#define ASSERT_STR_EQ(a, b)                                                    \
  do {                                                                         \
    const char *a_ = (a), *b_ = (b);                                           \
    if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0)                       \
      FAIL_AT("ASSERT_STR_EQ(%s, %s)\n    got      %s\n    expected %s", #a,   \
              #b, a_ ? a_ : "(NULL)", b_ ? b_ : "(NULL)");                     \
  } while (0)

#define ASSERT_CONTAINS(hay, needle)                                           \
  do {                                                                         \
    const char *h_ = (hay), *n_ = (needle);                                    \
    if (h_ == NULL || strstr(h_, n_) == NULL)                                  \
      FAIL_AT("ASSERT_CONTAINS(%s, %s)\n    in    %s\n    no    %s", #hay,     \
              #needle, h_ ? h_ : "(NULL)", n_);                                \
  } while (0)

/* One test of a TEST_LIST. */
typedef struct harness_test {
  const char *name;
  void (*fn)(void);
} harness_test;

/* harness_run(tests, n, argc, argv, after_each) -> number failed: runs
** every test (or only the one named by argv[1]), calling after_each after
** each, prints "ok"/"FAIL" per test and, last, "N passed, N failed". */
static inline int harness_run(const harness_test *tests, size_t n, int argc,
                              char **argv, void (*after_each)(void)) {
  int passed = 0, failed = 0;
  size_t i;
  for (i = 0; i < n; i++) {
    if (argc > 1 && strcmp(argv[1], tests[i].name) != 0)
      continue;
    test_failed = 0;
    tests[i].fn();
    after_each();
    printf("%s %s\n", test_failed ? "FAIL" : "ok  ", tests[i].name);
    if (test_failed)
      failed++;
    else
      passed++;
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed;
}

#endif /* CHM_TEST_HARNESS_H */
