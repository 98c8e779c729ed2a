/*
 * api.h - the smaug.v1.Orchestrator service of smaugd.
 *
 * The API module owns what users see: it validates requests, keeps plans,
 * checkpoints, restores and events in the store, runs operations through
 * the engine (graph, DAG, executor) with plugin calls made over gRPC, lets
 * clients watch operations, and on start-up resumes or fails operations a
 * previous run left unfinished.
 *
 * Thread: the loop thread of `rt`. Errors: 0 or a negative UV_E* code.
 */
#ifndef SMAUG_API_H
#define SMAUG_API_H

#include "auth.h"
#include "ops.h"
#include "registry.h"
#include "rt.h"
#include "store.h"

typedef struct api_s api_t;

typedef struct api_config_s {
  const char *bank_uri;    /* where plugins write; copied */
  int max_operations;      /* operations run at once; more queue. 0: 16 */
  int max_message_bytes;   /* the server's limit, for messages we send */
  int64_t call_timeout_ms; /* deadline of each plugin call; 0: 1 hour */
  uint32_t heartbeat_ms;   /* silence limit of a plugin call; 0: none */
  /* Events of finished operations are kept this long; 0: forever. */
  int64_t event_retention_ms;
  int64_t retry_budget_ms; /* transient failures retried this long; 0: 30 s;
                              negative: not retried */
  auth_t *auth;            /* decides every call first (borrowed); NULL: none */
  /* Audit records are kept this long; 0: API_AUDIT_RETENTION_MS (90
   * days, api_audit.h); negative: forever. */
  int64_t audit_retention_ms;
} api_config_t;

/* Creates the service and registers it on `srv` (before rt_server_start).
 * `store` and `reg` are borrowed and must outlive the API. Release with
 * api_close() then, once the loop has stopped, api_free(). */
int api_new(rt_t *rt, rt_server_t *srv, store_t *store, reg_t *reg,
            const api_config_t *cfg, api_t **out);

/* Called when a start-up registration ends; err is 0 on success, `msg`
 * (may be NULL) says why it failed. */
typedef void (*api_plugin_cb)(int err, const char *addr, const char *msg,
                              void *data);

/* Registers a plugin from the configuration (like the RegisterPlugin RPC).
 * Returns 0 and calls `cb` once later, or an error and never calls it. */
int api_register_plugin(api_t *api, const char *addr, int replace,
                        api_plugin_cb cb, void *data);

/* The operations core the service runs its operations on (ops.h), for
 * callers that start or watch operations without gRPC. Owned by the API;
 * valid until api_free(). */
ops_t *api_ops(api_t *api);

/* Resumes, or marks failed with the reason, every operation the store
 * still lists as running. Call once, after the configured plugins were
 * registered. */
void api_recover(api_t *api);

/* Stops: ends watch streams, cancels plugin calls in flight without
 * recording their outcome (running operations stay running in the store,
 * so the next start resumes them), flushes the store. Idempotent. */
void api_close(api_t *api);

/* Frees the API after api_close() once the loop has run its callbacks.
 * NULL is a no-op. */
void api_free(api_t *api);

#endif /* SMAUG_API_H */
