/*
 * fuzz.h - what the fuzz targets share: the libFuzzer entry point each of
 * them defines, and a helper that turns the input into a C string.
 *
 * Every fuzz_<name>.c is linked twice: with libFuzzer (SMAUG_FUZZ, clang,
 * `make fuzz`), and with replay.c into a CTest test that runs it over
 * fuzz/corpus/<name>/ in the ordinary and sanitizer builds, so that every
 * input kept there (seeds and the inputs of crashes once fixed) is checked
 * by `make test` too. A target aborts (FUZZ_CHECK) when a property it
 * checks does not hold, which both drivers report as a failure.
 */
#ifndef SMAUG_FUZZ_H
#define SMAUG_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Aborts naming the property when `cond` is false; unlike assert() it also
 * holds in release builds, where the replay tests run. */
#define FUZZ_CHECK(cond)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__,      \
              #cond);                                                          \
      abort();                                                                 \
    }                                                                          \
  } while (0)

/* Runs one input. Returns 0; failures abort. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A NUL-terminated copy of data[0..size) (cut at an embedded NUL, as a C
 * API would see it), owned by the caller (free()). Aborts when memory runs
 * out: that is not what is being tested. */
static inline char *fuzz_str(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (s == NULL)
    abort();
  memcpy(s, data, size);
  s[size] = '\0';
  return s;
}

#endif /* SMAUG_FUZZ_H */
