/*
 * api_valid.h - request checks shared by the Orchestrator handlers: ids,
 * names, UTF-8, plans and parameter sets against the plugins' schemas.
 * The same checks and limits apply to what plugins answer (ListDependents,
 * activity streams), so that nothing a plugin sends is stored or passed on
 * unchecked.
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

#define API_MAX_NAME_BYTES    255   /* plan, resource and plugin names */
#define API_MAX_KEY_BYTES     255   /* parameter, extra and metadata keys */
#define API_MAX_VALUE_BYTES   65536 /* parameter, extra and metadata values */
#define API_MAX_MESSAGE_BYTES 4096  /* messages and progress from plugins */
#define API_MAX_MAP_ENTRIES   1024  /* extra, metadata: entries per map */
#define API_MAX_DEPENDENTS    10000 /* resources in one ListDependents answer */
#define API_MAX_PLAN_ENTRIES  100000

/* Resource types and ids, wherever they come from (plans, restore
 * parameters, ListDependents, restored ids): one bank section component,
 * so that "checkpoints/<checkpoint>/<type>/<id>" is always a safe relative
 * path. Checked by bank_check_object(). */
#define API_ID_PATTERN   "[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
#define API_MAX_ID_BYTES 128

/* 1 when `s` is well-formed UTF-8 (no overlongs, surrogates or values
 * beyond U+10FFFF). NULL counts as valid (empty). */
int api_utf8_valid(const char *s);

/* Checks a resource type or id against API_ID_PATTERN (`field` names it in
 * the message, which quotes the bad value escaped and truncated). */
grpc_status_code api_check_key(const char *field, const char *s, char *msg,
                               size_t len);

/* Checks a resource given by a user or a plugin: type and id (pattern),
 * name and extra (UTF-8, lengths, API_MAX_MAP_ENTRIES). */
grpc_status_code api_check_resource(const char *field,
                                    const Smaug__V1__Resource *r, char *msg,
                                    size_t len);

/* Checks a string map built from a message (metadata, extra): at most
 * API_MAX_MAP_ENTRIES entries (`n_raw`: the count before duplicates were
 * merged), keys required and bounded, values bounded, UTF-8. */
grpc_status_code api_check_kv(const char *field, const kv_t *kv, size_t n_raw,
                              char *msg, size_t len);

/* Checks an optional string: at most `max` bytes of UTF-8. */
grpc_status_code api_check_text(const char *field, const char *s, size_t max,
                                char *msg, size_t len);

/* Writes `s` into buf quoted for a message: printable ASCII as is, '"' and
 * '\\' escaped, any other byte as \xNN, cut to about 64 bytes with "..."
 * Returns buf. NULL is written as "". */
const char *api_quote(const char *s, char *buf, size_t len);

/* Checks a required object id (`field` names it in the message). */
grpc_status_code api_check_id(const char *field, const char *id, char *msg,
                              size_t len);

/* Fails `call` when `id` (named `field`) is not a valid object id, with
 * api_check_id's status and message. Returns 1 if it failed the call, 0 if
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

/* Merges the parameters of resource (type, id): first the entry for
 * `type`, then the one for "type#id", which wins. `out` must be empty or
 * initialised; on error (UV_ENOMEM) it may hold a partial merge. */
int api_params_merge(const Smaug__V1__ParameterSet *ps, const char *type,
                     const char *id, kv_t *out);

#endif /* SMAUG_API_VALID_H */
