/*
 * status.h - the one table of gRPC status codes and their names.
 *
 * The codes are fixed by the gRPC protocol (doc/statuscodes.md), so the
 * table needs no gRPC header: the runtime names grpc_status_code values
 * with it (rt_status_name), the executor names the plain-int codes it keeps
 * (exec_code_name), and the SDK turns the status name of an error row
 * (smaug/error.h) back into a code. Built into smaug_common; any thread.
 */
#ifndef SMAUG_STATUS_H
#define SMAUG_STATUS_H

/* X(numeric code, name), in code order. */
#define STATUS_MAP(X)                                                          \
  X(0, OK)                                                                     \
  X(1, CANCELLED)                                                              \
  X(2, UNKNOWN)                                                                \
  X(3, INVALID_ARGUMENT)                                                       \
  X(4, DEADLINE_EXCEEDED)                                                      \
  X(5, NOT_FOUND)                                                              \
  X(6, ALREADY_EXISTS)                                                         \
  X(7, PERMISSION_DENIED)                                                      \
  X(8, RESOURCE_EXHAUSTED)                                                     \
  X(9, FAILED_PRECONDITION)                                                    \
  X(10, ABORTED)                                                               \
  X(11, OUT_OF_RANGE)                                                          \
  X(12, UNIMPLEMENTED)                                                         \
  X(13, INTERNAL)                                                              \
  X(14, UNAVAILABLE)                                                           \
  X(15, DATA_LOSS)                                                             \
  X(16, UNAUTHENTICATED)

/* "NOT_FOUND" for 5, ...; "UNKNOWN" for a code outside the table, which is
 * how gRPC itself treats one. Static string. */
const char *status_name(int code);

/* The code named `name` ("NOT_FOUND" -> 5); -1 for NULL or a name outside
 * the table. */
int status_code(const char *name);

#endif /* SMAUG_STATUS_H */
