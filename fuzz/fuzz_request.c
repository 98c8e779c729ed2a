/*
 * fuzz_request.c - request validation (server/api/api_valid.c) on requests
 * decoded with protobuf-c from the input, as smaugd's handlers see them.
 *
 * Input: one byte choosing the request (CreatePlan, UpdatePlan, Restore,
 * Protect), then its wire bytes. The registry is replaced (linker --wrap)
 * by two types: t.a with protect and restore schemas, t.b without.
 * Property: every refusal comes with a message.
 */
#include <grpc/grpc.h>

#include "api_valid.h"
#include "fuzz.h"

/* ------------------------------------------------------ the fake registry */

static const char *const types[] = {"t.a", "t.b"};
static const char *const options_text[] = {
    "{\"type\":\"object\",\"properties\":{"
    "\"level\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":9},"
    "\"mode\":{\"enum\":[\"fast\",\"slow\"]},"
    "\"name\":{\"type\":\"string\",\"maxLength\":8}},"
    "\"required\":[\"level\"],\"additionalProperties\":false}",
    NULL};
static const char *const restore_text[] = {
    "{\"type\":\"object\",\"properties\":{"
    "\"target\":{\"type\":\"string\",\"minLength\":1}},"
    "\"additionalProperties\":{\"type\":\"boolean\"}}",
    NULL};
static reg_schema_t *options[2], *restores[2];
static Smaug__V1__ResourceTypeInfo infos[2];
static char plugin_token; /* stands for the plugin: only compared to NULL */

static int type_index(const char *type) {
  for (int i = 0; i < 2; i++)
    if (type != NULL && strcmp(type, types[i]) == 0)
      return i;
  return -1;
}

static void registry_init(void) {
  static int done;
  if (done)
    return;
  done = 1;
  for (int i = 0; i < 2; i++) {
    char err[256];
    smaug__v1__resource_type_info__init(&infos[i]);
    infos[i].type = (char *)types[i];
    FUZZ_CHECK(
        reg_schema_parse(options_text[i], &options[i], err, sizeof(err)) == 0);
    FUZZ_CHECK(
        reg_schema_parse(restore_text[i], &restores[i], err, sizeof(err)) == 0);
  }
}

reg_plugin_t *__wrap_reg_find_type(const reg_t *reg, const char *type,
                                   const Smaug__V1__ResourceTypeInfo **ti);
reg_plugin_t *__wrap_reg_find_type(const reg_t *reg, const char *type,
                                   const Smaug__V1__ResourceTypeInfo **ti) {
  int i = type_index(type);
  if (i < 0)
    return NULL;
  if (ti)
    *ti = &infos[i];
  return (reg_plugin_t *)&plugin_token;
}

const reg_schema_t *__wrap_reg_options_schema(const reg_t *reg,
                                              const char *type);
const reg_schema_t *__wrap_reg_options_schema(const reg_t *reg,
                                              const char *type) {
  int i = type_index(type);
  return i < 0 ? NULL : options[i];
}

const reg_schema_t *__wrap_reg_restore_schema(const reg_t *reg,
                                              const char *type);
const reg_schema_t *__wrap_reg_restore_schema(const reg_t *reg,
                                              const char *type) {
  int i = type_index(type);
  return i < 0 ? NULL : restores[i];
}

/* ---------------------------------------------------------------- target */

static grpc_status_code check(int kind, const ProtobufCMessage *msg, char *err,
                              size_t len) {
  const reg_t *reg = (const reg_t *)&plugin_token;
  grpc_status_code rc;
  switch (kind) {
  case 0:
    return api_check_plan(
        reg, ((const Smaug__V1__CreatePlanRequest *)msg)->plan, err, len);
  case 1: {
    const Smaug__V1__UpdatePlanRequest *r = (const void *)msg;
    if (r->plan == NULL)
      return GRPC_STATUS_OK; /* the handler refuses this before checking */
    if ((rc = valid_id("plan.id", r->plan->id, err, len)))
      return rc;
    return api_check_plan(reg, r->plan, err, len);
  }
  case 2: {
    const Smaug__V1__RestoreRequest *r = (const void *)msg;
    /* The checkpoint's resources: one of each type. */
    Smaug__V1__Resource res[2], *rp[2];
    for (int i = 0; i < 2; i++) {
      smaug__v1__resource__init(&res[i]);
      res[i].type = (char *)types[i];
      res[i].id = "r1";
      rp[i] = &res[i];
    }
    if ((rc = valid_id("checkpoint_id", r->checkpoint_id, err, len)))
      return rc;
    return api_check_params(reg, r->parameters, rp, 2, 1, "parameters", err,
                            len);
  }
  default:
    return valid_id(
        "plan_id", ((const Smaug__V1__ProtectRequest *)msg)->plan_id, err, len);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const ProtobufCMessageDescriptor *const kinds[] = {
      &smaug__v1__create_plan_request__descriptor,
      &smaug__v1__update_plan_request__descriptor,
      &smaug__v1__restore_request__descriptor,
      &smaug__v1__protect_request__descriptor};
  if (size < 1)
    return 0;
  registry_init();
  int kind = data[0] % 4;
  ProtobufCMessage *msg =
      protobuf_c_message_unpack(kinds[kind], NULL, size - 1, data + 1);
  if (msg == NULL)
    return 0;
  char err[1024] = "";
  grpc_status_code rc = check(kind, msg, err, sizeof(err));
  FUZZ_CHECK(rc == GRPC_STATUS_OK || err[0] != '\0');
  protobuf_c_message_free_unpacked(msg, NULL);
  return 0;
}
