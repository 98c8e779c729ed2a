/*
 * test_codegen.c - protoc-gen-smaug's output for tests/runtime/testsvc.proto
 * and for the protocol: method tables, kinds, paths, descriptors, the
 * index enum, and dispatch of a NULL member.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "grpc/reflection/v1alpha/reflection.smaug.h"
#include "smaug/v1/plugin.smaug.h"
#include "testsvc.smaug.h"

Test(codegen, method_table_follows_the_proto, .timeout = 10) {
  cr_assert_eq(RTTEST_TEST_N_METHODS, 5);
  cr_assert_eq(rttest_test_service.n_methods, 5);
  cr_assert_eq(rttest_test_service.methods, rttest_test_methods);
  cr_assert_str_eq(rttest_test_service.name, "rttest.Test");
  const rt_method_t *m = rttest_test_methods;
  cr_assert_str_eq(m[RTTEST_TEST_ECHO].path, "/rttest.Test/Echo");
  cr_assert_str_eq(m[RTTEST_TEST_ECHO].name, "Echo");
  cr_assert_str_eq(m[RTTEST_TEST_MISSING].path, "/rttest.Test/Missing");
}

Test(codegen, kinds_come_from_streaming_flags, .timeout = 10) {
  const rt_method_t *m = rttest_test_methods;
  cr_assert_eq(m[RTTEST_TEST_ECHO].kind, RT_UNARY);
  cr_assert_eq(m[RTTEST_TEST_COUNT].kind, RT_SERVER_STREAMING);
  cr_assert_eq(m[RTTEST_TEST_SUM].kind, RT_CLIENT_STREAMING);
  cr_assert_eq(m[RTTEST_TEST_CHAT].kind, RT_BIDI_STREAMING);
}

Test(codegen, descriptors_match_protoc_c, .timeout = 10) {
  const rt_method_t *m = rttest_test_methods;
  cr_assert_eq(m[RTTEST_TEST_COUNT].input, &rttest__count_request__descriptor);
  cr_assert_eq(m[RTTEST_TEST_COUNT].output, &rttest__count_reply__descriptor);
  cr_assert_eq(m[RTTEST_TEST_SUM].input, &rttest__num__descriptor);
}

Test(codegen, protocol_services_are_generated, .timeout = 10) {
  cr_assert_eq(SMAUG_V1_PROTECTION_PLUGIN_N_METHODS, 5);
  const rt_method_t *m = smaug_v1_protection_plugin_methods;
  cr_assert_str_eq(m[SMAUG_V1_PROTECTION_PLUGIN_GET_PLUGIN_INFO].path,
                   "/smaug.v1.ProtectionPlugin/GetPluginInfo");
  cr_assert_eq(m[SMAUG_V1_PROTECTION_PLUGIN_PARALLEL_ACTIVITY].kind,
               RT_SERVER_STREAMING);
  cr_assert_eq(m[SMAUG_V1_PROTECTION_PLUGIN_PARALLEL_ACTIVITY].output,
               &smaug__v1__parallel_activity_response__descriptor);
  cr_assert_str_eq(grpc_reflection_v1alpha_server_reflection_service.name,
                   "grpc.reflection.v1alpha.ServerReflection");
  cr_assert_eq(grpc_reflection_v1alpha_server_reflection_methods[0].kind,
               RT_BIDI_STREAMING);
}
