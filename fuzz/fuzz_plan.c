/*
 * fuzz_plan.c - the plan file parser (cli/cli_plan.c) on arbitrary bytes.
 *
 * Properties: a refused file gets a message; an accepted one prints back
 * (cli_plan_to_json) as a file that parses again to the same plan, which is
 * the promise behind `plan show -o json | plan create -f -`.
 */
#include <uv.h>

#include "cli_plan.h"
#include "fuzz.h"

/* The plan's file form, as compact text with sorted keys (malloc'd). */
static char *plan_text(const Smaug__V1__Plan *plan) {
  json_t *j = cli_plan_to_json(plan);
  FUZZ_CHECK(j != NULL);
  char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(j);
  FUZZ_CHECK(text != NULL);
  return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  Smaug__V1__Plan *plan = NULL, *again = NULL;
  char err[512] = "";
  int rc = cli_plan_parse((const char *)data, size, "fuzz.json", &plan, err,
                          sizeof(err));
  if (rc != 0) {
    FUZZ_CHECK(rc == UV_EINVAL && err[0] != '\0' && plan == NULL);
    return 0;
  }
  char *text = plan_text(plan);
  rc = cli_plan_parse(text, strlen(text), "again.json", &again, err,
                      sizeof(err));
  if (rc != 0)
    fprintf(stderr, "printed plan refused: %s\n%s\n", err, text);
  FUZZ_CHECK(rc == 0);
  char *text2 = plan_text(again);
  FUZZ_CHECK(strcmp(text, text2) == 0);
  free(text2);
  free(text);
  protobuf_c_message_free_unpacked(&again->base, NULL);
  protobuf_c_message_free_unpacked(&plan->base, NULL);
  return 0;
}
