/*
 * test_reflection.c - the reflection module answered in process, through
 * rt_reflection_answer(): the service list, files by name and by symbol
 * with their dependencies sent once per stream, v1alpha, and NOT_FOUND.
 * A real client (buf curl) drives it over gRPC in e2e_buf_curl.sh.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"
#include "rt_reflection.h"

typedef Grpc__Reflection__V1__ServerReflectionRequest req_t;
typedef Grpc__Reflection__V1__ServerReflectionResponse resp_t;

static rt_reflection_t *refl;
static rt_reflection_stream_t *stream;

static void setup(void) {
  cr_assert_eq(rt_reflection_new(NULL, &refl), 0);
  cr_assert_eq(rt_reflection_stream_new(refl, &stream), 0);
}

static void teardown(void) {
  rt_reflection_stream_free(stream);
  rt_reflection_free(refl);
}

TestSuite(reflection, .init = setup, .fini = teardown, .timeout = 10);

static resp_t *ask(const req_t *req) {
  ProtobufCMessage *out = NULL;
  cr_assert_eq(
      rt_reflection_answer(
          stream, &req->base,
          &grpc__reflection__v1__server_reflection_response__descriptor, &out),
      0);
  cr_assert_not_null(out);
  return (resp_t *)out;
}

static resp_t *ask_symbol(const char *symbol) {
  req_t req = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
  req.message_request_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
  req.file_containing_symbol = (char *)symbol;
  return ask(&req);
}

/* The names of the files in a file_descriptor_response, in order. */
static size_t file_names(const resp_t *resp, char names[][64], size_t max) {
  cr_assert_eq(
      resp->message_response_case,
      GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE);
  const Grpc__Reflection__V1__FileDescriptorResponse *f =
      resp->file_descriptor_response;
  cr_assert_leq(f->n_file_descriptor_proto, max);
  for (size_t i = 0; i < f->n_file_descriptor_proto; i++) {
    Google__Protobuf__FileDescriptorProto *fd =
        google__protobuf__file_descriptor_proto__unpack(
            NULL, f->file_descriptor_proto[i].len,
            f->file_descriptor_proto[i].data);
    cr_assert_not_null(fd, "file %zu does not parse", i);
    snprintf(names[i], 64, "%s", fd->name);
    google__protobuf__file_descriptor_proto__free_unpacked(fd, NULL);
  }
  return f->n_file_descriptor_proto;
}

static size_t count_name(char names[][64], size_t n, const char *name) {
  size_t c = 0;
  for (size_t i = 0; i < n; i++)
    c += strcmp(names[i], name) == 0;
  return c;
}

Test(reflection, list_services_names_builtin_and_added_services) {
  cr_assert_eq(rt_reflection_add_service(refl, "smaug.v1.ProtectionPlugin"), 0);
  cr_assert_eq(rt_reflection_add_service(refl, "smaug.v1.ProtectionPlugin"), 0);
  req_t req = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
  req.message_request_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES;
  req.list_services = "";
  resp_t *resp = ask(&req);
  cr_assert_eq(
      resp->message_response_case,
      GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE);
  const char *want[] = {
      "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
      "grpc.reflection.v1alpha.ServerReflection", "smaug.v1.ProtectionPlugin"};
  cr_assert_eq(resp->list_services_response->n_service, 4);
  for (size_t i = 0; i < 4; i++)
    cr_expect_str_eq(resp->list_services_response->service[i]->name, want[i]);
  protobuf_c_message_free_unpacked(&resp->base, NULL);
}

Test(reflection, symbol_sends_file_then_dependencies_once) {
  resp_t *resp = ask_symbol("smaug.v1.ProtectionPlugin");
  char names[16][64];
  size_t n = file_names(resp, names, 16);
  cr_assert_geq(n, 2);
  cr_expect_str_eq(names[0], "smaug/v1/plugin.proto");
  cr_expect_eq(count_name(names, n, "smaug/v1/types.proto"), 1);
  cr_expect_eq(count_name(names, n, "smaug/v1/plugin.proto"), 1);
  protobuf_c_message_free_unpacked(&resp->base, NULL);
}

Test(reflection, dependencies_already_sent_are_not_sent_again) {
  resp_t *first = ask_symbol("smaug.v1.ProtectionPlugin");
  protobuf_c_message_free_unpacked(&first->base, NULL);
  /* orchestrator.proto imports plugin.proto and types.proto, both sent. */
  resp_t *resp = ask_symbol("smaug.v1.Orchestrator");
  char names[16][64];
  size_t n = file_names(resp, names, 16);
  cr_expect_str_eq(names[0], "smaug/v1/orchestrator.proto");
  cr_expect_eq(count_name(names, n, "smaug/v1/types.proto"), 0);
  cr_expect_eq(count_name(names, n, "smaug/v1/plugin.proto"), 0);
  protobuf_c_message_free_unpacked(&resp->base, NULL);
}

Test(reflection, method_and_nested_symbols_resolve_to_their_file) {
  resp_t *resp = ask_symbol("smaug.v1.ProtectionPlugin.GetPluginInfo");
  char names[16][64];
  file_names(resp, names, 16);
  cr_expect_str_eq(names[0], "smaug/v1/plugin.proto");
  protobuf_c_message_free_unpacked(&resp->base, NULL);

  resp = ask_symbol("grpc.health.v1.HealthCheckResponse.ServingStatus");
  file_names(resp, names, 16);
  cr_expect_str_eq(names[0], "grpc/health/v1/health.proto");
  protobuf_c_message_free_unpacked(&resp->base, NULL);
}

Test(reflection, file_by_filename_returns_that_file) {
  req_t req = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
  req.message_request_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME;
  req.file_by_filename = "grpc/health/v1/health.proto";
  resp_t *resp = ask(&req);
  char names[16][64];
  size_t n = file_names(resp, names, 16);
  cr_expect_eq(n, 1);
  cr_expect_str_eq(names[0], "grpc/health/v1/health.proto");
  protobuf_c_message_free_unpacked(&resp->base, NULL);
}

Test(reflection, map_entries_keep_protoc_names) {
  resp_t *resp = ask_symbol("smaug.v1.ProtectionPlugin");
  const ProtobufCBinaryData *b =
      &resp->file_descriptor_response->file_descriptor_proto[0];
  Google__Protobuf__FileDescriptorProto *fd =
      google__protobuf__file_descriptor_proto__unpack(NULL, b->len, b->data);
  cr_assert_not_null(fd);
  size_t entries = 0;
  for (size_t i = 0; i < fd->n_message_type; i++) {
    const Google__Protobuf__DescriptorProto *m = fd->message_type[i];
    for (size_t j = 0; j < m->n_nested_type; j++) {
      const Google__Protobuf__DescriptorProto *nested = m->nested_type[j];
      if (nested->options == NULL || !nested->options->has_map_entry ||
          !nested->options->map_entry)
        continue;
      entries++;
      size_t len = strlen(nested->name);
      cr_expect(len > 5 && strcmp(nested->name + len - 5, "Entry") == 0,
                "map entry named %s", nested->name);
    }
  }
  cr_expect_gt(entries, 0, "plugin.proto declares maps");
  google__protobuf__file_descriptor_proto__free_unpacked(fd, NULL);
  protobuf_c_message_free_unpacked(&resp->base, NULL);
}

Test(reflection, unknown_symbol_is_not_found_and_named) {
  resp_t *resp = ask_symbol("smaug.v1.NoSuchThing");
  cr_assert_eq(
      resp->message_response_case,
      GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE);
  cr_expect_eq(resp->error_response->error_code, 5 /* NOT_FOUND */);
  cr_expect(strstr(resp->error_response->error_message,
                   "smaug.v1.NoSuchThing") != NULL,
            "message: %s", resp->error_response->error_message);
  protobuf_c_message_free_unpacked(&resp->base, NULL);
}

Test(reflection, failed_lookup_marks_nothing_sent) {
  resp_t *miss = ask_symbol("smaug.v1.NoSuchThing");
  protobuf_c_message_free_unpacked(&miss->base, NULL);
  resp_t *resp = ask_symbol("smaug.v1.ProtectionPlugin");
  char names[16][64];
  size_t n = file_names(resp, names, 16);
  cr_expect_eq(count_name(names, n, "smaug/v1/types.proto"), 1);
  protobuf_c_message_free_unpacked(&resp->base, NULL);
}

Test(reflection, extension_lookups_are_not_found) {
  Grpc__Reflection__V1__ExtensionRequest ext =
      GRPC__REFLECTION__V1__EXTENSION_REQUEST__INIT;
  ext.containing_type = "smaug.v1.Resource";
  ext.extension_number = 100;
  req_t req = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
  req.message_request_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION;
  req.file_containing_extension = &ext;
  resp_t *resp = ask(&req);
  cr_assert_eq(
      resp->message_response_case,
      GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE);
  cr_expect_eq(resp->error_response->error_code, 5);
  protobuf_c_message_free_unpacked(&resp->base, NULL);

  req.message_request_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE;
  req.all_extension_numbers_of_type = "smaug.v1.NoSuchType";
  resp = ask(&req);
  cr_assert_eq(
      resp->message_response_case,
      GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE);
  cr_expect_eq(resp->error_response->error_code, 5);
  protobuf_c_message_free_unpacked(&resp->base, NULL);
}

Test(reflection, answer_echoes_host_and_request) {
  req_t req = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
  req.host = "example:1";
  req.message_request_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
  req.file_containing_symbol = "grpc.health.v1.Health";
  resp_t *resp = ask(&req);
  cr_expect_str_eq(resp->valid_host, "example:1");
  cr_assert_not_null(resp->original_request);
  cr_expect_str_eq(resp->original_request->file_containing_symbol,
                   "grpc.health.v1.Health");
  protobuf_c_message_free_unpacked(&resp->base, NULL);
}

Test(reflection, v1alpha_request_gets_v1alpha_answer) {
  Grpc__Reflection__V1alpha__ServerReflectionRequest req =
      GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__INIT;
  req.message_request_case =
      GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
  req.file_containing_symbol = "smaug.v1.ProtectionPlugin";
  ProtobufCMessage *out = NULL;
  cr_assert_eq(
      rt_reflection_answer(
          stream, &req.base,
          &grpc__reflection__v1alpha__server_reflection_response__descriptor,
          &out),
      0);
  cr_assert_eq(
      out->descriptor,
      &grpc__reflection__v1alpha__server_reflection_response__descriptor);
  Grpc__Reflection__V1alpha__ServerReflectionResponse *resp = (void *)out;
  cr_assert_eq(
      resp->message_response_case,
      GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE);
  cr_expect_geq(resp->file_descriptor_response->n_file_descriptor_proto, 2);
  cr_expect_str_eq(resp->original_request->file_containing_symbol,
                   "smaug.v1.ProtectionPlugin");
  protobuf_c_message_free_unpacked(out, NULL);
}

Test(reflection, wrong_descriptor_is_rejected) {
  Grpc__Reflection__V1__ErrorResponse not_a_request =
      GRPC__REFLECTION__V1__ERROR_RESPONSE__INIT;
  ProtobufCMessage *out = NULL;
  cr_expect_eq(
      rt_reflection_answer(
          stream, &not_a_request.base,
          &grpc__reflection__v1__server_reflection_response__descriptor, &out),
      UV_EINVAL);
  cr_expect_null(out);
}
