// The check macro of the torch-free C++ tests: counts checks and failures, prints each
// failure; main() returns `failures != 0`.
#pragma once

#include <cstdio>

static int failures = 0, checks = 0;
#define EXPECT(cond)                                              \
  do {                                                            \
    ++checks;                                                     \
    if (!(cond)) {                                                \
      ++failures;                                                 \
      std::printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
    }                                                             \
  } while (0)
