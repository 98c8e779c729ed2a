/*
 * api_valid.h - request checks shared by the Orchestrator handlers: plans
 * and parameter sets against the plugins' schemas, and the answers for
 * bad ids and failed lookups. The checks of single values (ids, names,
 * UTF-8) and their limits, which apply to what plugins answer as well, are
 * in valid.h.
 *
 * Every check writes a message that starts with the offending field, e.g.
 * "plan.resources[2].id: required", and returns the gRPC status to answer
 * with (GRPC_STATUS_OK when the input is fine).
 *
 * Thread: the loop thread (reads the registry).
 */
#ifndef SMAUG_API_VALID_H
#define SMAUG_API_VALID_H

#include <grpc/grpc.h>
#include <stddef.h>

#include "kv.h"
#include "registry.h"
#include "rt.h"
#include "smaug/v1/orchestrator.pb-c.h"
#include "valid.h"

/* Fails `call` when `id` (named `field`) is not a valid object id, with
 * valid_id's status and message. Returns 1 if it failed the call, 0 if
 * the id is fine (the call is then untouched). */
int api_fail_bad_id(rt_call_t *call, const char *field, const char *id);

/* Fails `call` after a store lookup of `what` `id` returned `err`:
 * NOT_FOUND "<what> <id> not found" for UV_ENOENT, else INTERNAL with the
 * error's text. */
void api_fail_lookup(rt_call_t *call, const char *what, const char *id,
                     int err);

/* Fails `call` with INTERNAL "store: <error>" for store error `err`. */
void api_fail_store(rt_call_t *call, int err);

/* Checks a plan for CreatePlan/UpdatePlan: name, resources (required,
 * unique, known types), edges (endpoints listed, no cycle) and parameters
 * (known types, plugin schemas). */
grpc_status_code api_check_plan(const reg_t *reg, const Smaug__V1__Plan *plan,
                                char *msg, size_t len);

/* Checks parameters for the resources of a graph: keys, UTF-8, then each
 * entry and each resource's merged parameters against the type's protect
 * (restore == 0) or restore (restore == 1) schema. `field` prefixes the
 * message ("plan.parameters"). `resources` may be NULL. */
grpc_status_code api_check_params(const reg_t *reg,
                                  const Smaug__V1__ParameterSet *ps,
                                  Smaug__V1__Resource *const *resources,
                                  size_t n_resources, int restore,
                                  const char *field, char *msg, size_t len);

#endif /* SMAUG_API_VALID_H */
