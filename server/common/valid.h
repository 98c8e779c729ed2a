/*
 * valid.h - the limits and checks on single values that cross smaugd's
 * wire: ids, names, texts, string maps and resources, whether a user sent
 * them in a request or a plugin in an answer (ListDependents, activity
 * streams), so that nothing is stored or passed on unchecked. Also the one
 * rule that merges a parameter set for one resource.
 *
 * Every check writes a message that starts with the offending field, e.g.
 * "plan.resources[2].id: required", into `msg` (`len` bytes, always
 * terminated) and returns the gRPC status to answer with: GRPC_STATUS_OK
 * when the value is fine (`msg` is then untouched), otherwise
 * INVALID_ARGUMENT. `field` and the values are only read during the call.
 *
 * Thread: any; no state.
 */
#ifndef SMAUG_VALID_H
#define SMAUG_VALID_H

#include <grpc/status.h>
#include <stddef.h>

#include "kv.h"
#include "smaug/v1/orchestrator.pb-c.h"

#define VALID_MAX_NAME_BYTES    255    /* plan, resource and plugin names */
#define VALID_MAX_KEY_BYTES     255    /* parameter, extra and metadata keys */
#define VALID_MAX_VALUE_BYTES   65536  /* parameter, extra, metadata values */
#define VALID_MAX_MESSAGE_BYTES 4096   /* messages and progress from plugins */
#define VALID_MAX_MAP_ENTRIES   1024   /* extra, metadata: entries per map */
#define VALID_MAX_DEPENDENTS    10000  /* resources per ListDependents answer */
#define VALID_MAX_PLAN_ENTRIES  100000 /* resources, edges, params per plan */

/* Resource types and ids, wherever they come from (plans, restore
 * parameters, ListDependents, restored ids): one bank section component,
 * so that "checkpoints/<checkpoint>/<type>/<id>" is always a safe relative
 * path. Checked by bank_check_object(). */
#define VALID_ID_PATTERN   "[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
#define VALID_MAX_ID_BYTES 128

/* 1 when `s` is well-formed UTF-8 (no overlongs, surrogates or values
 * beyond U+10FFFF). NULL counts as valid (empty). */
int valid_utf8(const char *s);

/* Checks a string field: at most `max` bytes of UTF-8; NULL or "" is
 * refused ("<field>: required") when `required`, fine otherwise. */
grpc_status_code valid_str(const char *field, const char *s, int required,
                           size_t max, char *msg, size_t len);

/* Checks an optional string: valid_str() with `required` 0. */
grpc_status_code valid_text(const char *field, const char *s, size_t max,
                            char *msg, size_t len);

/* Checks a required object id: valid_str() with VALID_MAX_KEY_BYTES. */
grpc_status_code valid_id(const char *field, const char *id, char *msg,
                          size_t len);

/* Checks a resource type or id against VALID_ID_PATTERN (the message quotes
 * the bad value escaped and truncated). */
grpc_status_code valid_key(const char *field, const char *s, char *msg,
                           size_t len);

/* Checks a resource given by a user or a plugin: required; type and id
 * (pattern), name and extra (UTF-8, lengths, VALID_MAX_MAP_ENTRIES). */
grpc_status_code valid_resource(const char *field, const Smaug__V1__Resource *r,
                                char *msg, size_t len);

/* Checks a string map built from a message (metadata, extra): at most
 * VALID_MAX_MAP_ENTRIES entries (`n_raw`: the count before duplicates were
 * merged), keys required and bounded, values bounded, UTF-8. `kv` may be
 * NULL (empty). */
grpc_status_code valid_kv(const char *field, const kv_t *kv, size_t n_raw,
                          char *msg, size_t len);

/* Writes `s` into buf quoted for a message: printable ASCII as is, '"' and
 * '\\' escaped, any other byte as \xNN, cut to about 64 bytes with "..."
 * Returns buf. NULL is written as "". A `len` under 8 writes "" (or
 * nothing when 0). */
const char *valid_quote(const char *s, char *buf, size_t len);

/* Merges the parameters of resource (type, id) into `out`: first the
 * entry for `type`, then the one for "type#id", which wins key by key.
 * `ps` may be NULL (nothing to merge). `out` must be empty or
 * initialised; returns 0, or UV_ENOMEM with a partial merge in `out`. */
int valid_params_merge(const Smaug__V1__ParameterSet *ps, const char *type,
                       const char *id, kv_t *out);

#endif /* SMAUG_VALID_H */
