/*
 * smaug/error.h - error codes of libsmaug-plugin and their gRPC meaning.
 *
 * Every SDK function that can fail returns 0 or a negative SMAUG_E* code.
 * The codes are negative errno values, so an error from the OS or from
 * libuv (-errno) passes through unchanged. When an activity fails with a
 * code, the SDK answers the call with the gRPC status in the table below;
 * the orchestrator retries the transient ones (UNAVAILABLE,
 * RESOURCE_EXHAUSTED, ABORTED) and fails the resource on the others.
 */
#ifndef SMAUG_ERROR_H
#define SMAUG_ERROR_H

#include <errno.h>

/* X(name, errno value, gRPC status name, message) */
#define SMAUG_ERRNO_MAP(X)                                                     \
  X(EINVAL, EINVAL, "INVALID_ARGUMENT", "invalid argument")                    \
  X(ENOENT, ENOENT, "NOT_FOUND", "not found")                                  \
  X(EEXIST, EEXIST, "ALREADY_EXISTS", "already exists")                        \
  X(EPERM, EPERM, "PERMISSION_DENIED", "permission denied")                    \
  X(EACCES, EACCES, "PERMISSION_DENIED", "access denied")                      \
  X(EBUSY, EBUSY, "FAILED_PRECONDITION", "resource busy or in wrong state")    \
  X(EAGAIN, EAGAIN, "UNAVAILABLE", "temporarily unavailable")                  \
  X(ENOSPC, ENOSPC, "RESOURCE_EXHAUSTED", "no space left")                     \
  X(ENOMEM, ENOMEM, "RESOURCE_EXHAUSTED", "out of memory")                     \
  X(ECANCELED, ECANCELED, "CANCELLED", "cancelled")                            \
  X(ETIMEDOUT, ETIMEDOUT, "DEADLINE_EXCEEDED", "timed out")                    \
  X(ENOSYS, ENOSYS, "UNIMPLEMENTED", "not implemented")                        \
  X(ECONNABORTED, ECONNABORTED, "ABORTED", "aborted, may be retried")          \
  X(EIO, EIO, "INTERNAL", "input/output error")

enum {
#define SMAUG_ERRNO_GEN(name, val, status, msg) SMAUG_##name = -(val),
  SMAUG_ERRNO_MAP(SMAUG_ERRNO_GEN)
#undef SMAUG_ERRNO_GEN
};

#ifdef __cplusplus
extern "C" {
#endif

/* "invalid argument", ... for a SMAUG_E* code; strerror() text for other
 * negative errno values. Static string. Any thread. */
const char *smaug_strerror(int err);

/* "SMAUG_EINVAL", ...; "SMAUG_EUNKNOWN" for codes outside the table.
 * Static string. Any thread. */
const char *smaug_err_name(int err);

/* The gRPC status name an activity that fails with `err` is answered with,
 * for example "INVALID_ARGUMENT"; "INTERNAL" for codes outside the table,
 * "OK" for 0. Static string. Any thread. */
const char *smaug_err_status(int err);

#ifdef __cplusplus
}
#endif
#endif /* SMAUG_ERROR_H */
