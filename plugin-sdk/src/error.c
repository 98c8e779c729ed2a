/*
 * error.c - the SDK's error table (smaug/error.h): names, messages and the
 * gRPC status each code is answered with. The one place where SMAUG_E*
 * codes become gRPC statuses; status names become codes through the one
 * status table (common/status.h).
 */
#include "sdk.h"
#include "status.h"

#include <string.h>

typedef struct {
  int code;
  const char *name;
  const char *status;
  const char *msg;
} err_row_t;

static const err_row_t rows[] = {
#define ROW(name, val, status, msg) {-(val), "SMAUG_" #name, status, msg},
    SMAUG_ERRNO_MAP(ROW)
#undef ROW
};

static const err_row_t *lookup(int err) {
  for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
    if (rows[i].code == err)
      return &rows[i];
  return NULL;
}

const char *smaug_strerror(int err) {
  if (err == 0)
    return "success";
  const err_row_t *r = lookup(err);
  if (r != NULL)
    return r->msg;
  return err < 0 ? strerror(-err) : "unknown error";
}

const char *smaug_err_name(int err) {
  const err_row_t *r = lookup(err);
  return r != NULL ? r->name : "SMAUG_EUNKNOWN";
}

const char *smaug_err_status(int err) {
  if (err == 0)
    return "OK";
  const err_row_t *r = lookup(err);
  return r != NULL ? r->status : "INTERNAL";
}

grpc_status_code sdk_err_to_status(int err) {
  int code = status_code(smaug_err_status(err));
  return code < 0 ? GRPC_STATUS_INTERNAL : (grpc_status_code)code;
}
