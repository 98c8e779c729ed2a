/*
 * test_pbjson.c - protobuf-c to JSON (cli_pbjson) for `-o json`.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "cli_pbjson.h"
#include "smaug/v1/orchestrator.pb-c.h"

Test(pbjson, checkpoint_fields_enums_maps_and_int64, .timeout = 5) {
  Smaug__V1__ResourceResult__MetadataEntry md =
      SMAUG__V1__RESOURCE_RESULT__METADATA_ENTRY__INIT;
  md.key = "size";
  md.value = "42";
  Smaug__V1__ResourceResult__MetadataEntry *mds[] = {&md};
  Smaug__V1__ResourceResult rr = SMAUG__V1__RESOURCE_RESULT__INIT;
  rr.status = SMAUG__V1__TASK_STATUS__TASK_STATUS_DONE;
  rr.n_metadata = 1;
  rr.metadata = mds;
  Smaug__V1__ResourceResult *rrs[] = {&rr};
  Smaug__V1__Checkpoint c = SMAUG__V1__CHECKPOINT__INIT;
  c.id = "ckp-1";
  c.status = SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_AVAILABLE;
  c.created_at_ms = 1700000000123LL;
  c.n_results = 1;
  c.results = rrs;
  json_t *j = cli_pbjson_from_message(&c.base);
  cr_assert_not_null(j);
  cr_assert_str_eq(json_string_value(json_object_get(j, "id")), "ckp-1");
  cr_assert_str_eq(json_string_value(json_object_get(j, "status")),
                   "CHECKPOINT_STATUS_AVAILABLE");
  cr_assert_eq(json_integer_value(json_object_get(j, "created_at_ms")),
               1700000000123LL);
  cr_assert_str_eq(json_string_value(json_object_get(j, "reason")), "");
  json_t *r0 = json_array_get(json_object_get(j, "results"), 0);
  cr_assert(json_is_null(json_object_get(r0, "resource")));
  cr_assert_str_eq(json_string_value(json_object_get(
                       json_object_get(r0, "metadata"), "size")),
                   "42");
  json_decref(j);
}

Test(pbjson, enum_short_names, .timeout = 5) {
  char b[32];
  cr_assert_str_eq(
      cli_pbjson_enum_short(
          &smaug__v1__checkpoint_status__descriptor,
          SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_ERROR_DELETING, b,
          sizeof(b)),
      "error-deleting");
  cr_assert_str_eq(cli_pbjson_enum_short(&smaug__v1__task_status__descriptor,
                                         99, b, sizeof(b)),
                   "99");
}
