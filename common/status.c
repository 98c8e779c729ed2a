/*
 * status.c - gRPC status names from the one table in status.h.
 */
#include "status.h"

#include <stddef.h>
#include <string.h>

static const char *const names[] = {
#define STATUS_NAME(code, name) [code] = #name,
    STATUS_MAP(STATUS_NAME)
#undef STATUS_NAME
};

const char *status_name(int code) {
  if (code >= 0 && (size_t)code < sizeof(names) / sizeof(names[0]))
    return names[code];
  return "UNKNOWN";
}

int status_code(const char *name) {
  if (name == NULL)
    return -1;
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    if (strcmp(names[i], name) == 0)
      return (int)i;
  return -1;
}
