/*
 * version.c - the library's own version, for comparison with the
 * SMAUG_VERSION_* macros a plugin was compiled with (smaug/version.h).
 */
#include "smaug/version.h"

#define STR2(x) #x
#define STR(x)  STR2(x)

unsigned smaug_version(void) {
  return SMAUG_VERSION_HEX;
}

const char *smaug_version_string(void) {
  return STR(SMAUG_VERSION_MAJOR) "." STR(SMAUG_VERSION_MINOR) "." STR(
      SMAUG_VERSION_PATCH);
}
