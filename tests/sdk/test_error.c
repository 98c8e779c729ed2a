/*
 * test_error.c - the error table (plugin-sdk/src/error.c) and the version
 * calls (version.c).
 */
#include "sdk.h"
#include "status.h"

#include <criterion/criterion.h>
#include <string.h>

Test(error, codes_are_negative_errno_values, .timeout = 5) {
  cr_assert_eq(SMAUG_EINVAL, -EINVAL);
  cr_assert_eq(SMAUG_ECANCELED, UV_ECANCELED);
  cr_assert_eq(SMAUG_ETIMEDOUT, UV_ETIMEDOUT);
}

Test(error, each_code_has_a_name_a_message_and_a_status, .timeout = 5) {
  cr_assert_str_eq(smaug_err_name(SMAUG_ENOENT), "SMAUG_ENOENT");
  cr_assert_str_eq(smaug_strerror(SMAUG_ENOENT), "not found");
  cr_assert_str_eq(smaug_err_status(SMAUG_ENOENT), "NOT_FOUND");
  cr_assert_str_eq(smaug_err_status(SMAUG_EAGAIN), "UNAVAILABLE");
  cr_assert_str_eq(smaug_err_status(0), "OK");
  cr_assert_eq(sdk_err_to_status(SMAUG_ECONNABORTED), GRPC_STATUS_ABORTED);
  cr_assert_eq(sdk_err_to_status(SMAUG_ETIMEDOUT),
               GRPC_STATUS_DEADLINE_EXCEEDED);
}

/* Every row of smaug/error.h names a status of the one gRPC status table,
 * and is answered with exactly that code. */
Test(error, every_row_names_a_grpc_status, .timeout = 5) {
#define CHECK_ROW(name, val, status, msg)                                      \
  cr_assert_geq(status_code(status), 0, "%s: %s", #name, status);              \
  cr_assert_eq((int)sdk_err_to_status(-(val)), status_code(status), "%s",      \
               #name);                                                         \
  cr_assert_str_eq(rt_status_name(sdk_err_to_status(-(val))), status);
  SMAUG_ERRNO_MAP(CHECK_ROW)
#undef CHECK_ROW
}

Test(error, unknown_codes_are_internal, .timeout = 5) {
  cr_assert_str_eq(smaug_err_name(-EXDEV), "SMAUG_EUNKNOWN");
  cr_assert_str_eq(smaug_err_status(-EXDEV), "INTERNAL");
  cr_assert_eq(sdk_err_to_status(-EXDEV), GRPC_STATUS_INTERNAL);
  cr_assert_str_eq(smaug_strerror(-EXDEV), strerror(EXDEV));
}

Test(error, the_library_reports_the_header_version, .timeout = 5) {
  cr_assert_eq(smaug_version(), SMAUG_VERSION_HEX);
  cr_assert_str_eq(smaug_version_string(), "0.2.0");
}
