/*
 * fuzz_schema.c - the JSON Schema subset (server/registry/reg_schema.c):
 * parse a schema a plugin announces, then check parameters against it.
 *
 * Input: one byte of flags (bit 0: check `required`), the schema text up
 * to the first newline, then one "key=value" parameter per line. Property:
 * a refusal, of the schema or of the parameters, comes with a message.
 */
#include <uv.h>

#include "fuzz.h"
#include "reg_schema.h"

#define MAX_PARAMS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  int check_required = data[0] & 1;
  char *text = fuzz_str(data + 1, size - 1);
  char *params = strchr(text, '\n');
  if (params != NULL)
    *params++ = '\0';
  char err[512] = "";
  reg_schema_t *schema = NULL;
  int rc = reg_schema_parse(text, &schema, err, sizeof(err));
  if (rc != 0) {
    FUZZ_CHECK(rc == UV_EINVAL && err[0] != '\0' && schema == NULL);
    free(text);
    return 0;
  }
  const char *keys[MAX_PARAMS], *vals[MAX_PARAMS];
  size_t n = 0;
  for (char *line = params; line != NULL && n < MAX_PARAMS;) {
    char *next = strchr(line, '\n');
    if (next != NULL)
      *next++ = '\0';
    char *eq = strchr(line, '=');
    if (eq != NULL) {
      *eq = '\0';
      keys[n] = line;
      vals[n++] = eq + 1;
    }
    line = next;
  }
  err[0] = '\0';
  rc = reg_schema_check(schema, "p", keys, vals, n, check_required, err,
                        sizeof(err));
  FUZZ_CHECK(rc == 0 || (rc == UV_EINVAL && err[0] != '\0'));
  reg_schema_free(schema);
  free(text);
  return 0;
}
