/*
 * test_status.c - the one gRPC status table (common/status.h) and the
 * names the runtime, the executor and the SDK take from it.
 */
#include <criterion/criterion.h>
#include <grpc/status.h>

#include "rt.h"
#include "status.h"

/* Every code of gRPC's own enum has the name gRPC gives it, and the name
 * leads back to the code. */
Test(status, table_matches_grpc_and_round_trips, .timeout = 5) {
  static const struct {
    grpc_status_code code;
    const char *name;
  } want[] = {{GRPC_STATUS_OK, "OK"},
              {GRPC_STATUS_CANCELLED, "CANCELLED"},
              {GRPC_STATUS_UNKNOWN, "UNKNOWN"},
              {GRPC_STATUS_INVALID_ARGUMENT, "INVALID_ARGUMENT"},
              {GRPC_STATUS_DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED"},
              {GRPC_STATUS_NOT_FOUND, "NOT_FOUND"},
              {GRPC_STATUS_ALREADY_EXISTS, "ALREADY_EXISTS"},
              {GRPC_STATUS_PERMISSION_DENIED, "PERMISSION_DENIED"},
              {GRPC_STATUS_RESOURCE_EXHAUSTED, "RESOURCE_EXHAUSTED"},
              {GRPC_STATUS_FAILED_PRECONDITION, "FAILED_PRECONDITION"},
              {GRPC_STATUS_ABORTED, "ABORTED"},
              {GRPC_STATUS_OUT_OF_RANGE, "OUT_OF_RANGE"},
              {GRPC_STATUS_UNIMPLEMENTED, "UNIMPLEMENTED"},
              {GRPC_STATUS_INTERNAL, "INTERNAL"},
              {GRPC_STATUS_UNAVAILABLE, "UNAVAILABLE"},
              {GRPC_STATUS_DATA_LOSS, "DATA_LOSS"},
              {GRPC_STATUS_UNAUTHENTICATED, "UNAUTHENTICATED"}};
  for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
    cr_assert_str_eq(rt_status_name(want[i].code), want[i].name);
    cr_assert_str_eq(status_name((int)want[i].code), want[i].name);
    cr_assert_eq(status_code(want[i].name), (int)want[i].code);
  }
}

Test(status, outside_the_table, .timeout = 5) {
  cr_assert_str_eq(status_name(-1), "UNKNOWN");
  cr_assert_str_eq(status_name(17), "UNKNOWN");
  cr_assert_str_eq(rt_status_name((grpc_status_code)1000), "UNKNOWN");
  cr_assert_eq(status_code(NULL), -1);
  cr_assert_eq(status_code(""), -1);
  cr_assert_eq(status_code("not_found"), -1); /* names are exact */
}
