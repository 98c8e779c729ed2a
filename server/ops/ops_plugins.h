/*
 * ops_plugins.h - what the operations core needs from the plugins, as a
 * plain-C table: the seam between the core (server/ops/) and the code that
 * talks gRPC to the plugins (server/plugins/), as exec_runner_t (exec.h)
 * is the seam between the executor and the activity runner.
 *
 * The core asks through it whether a type has an available plugin, which
 * activities and limits a type's plugin announces, for the graph of an
 * operation (built with discovery for a protect), and for the activity
 * runner of one operation; it hears through it when a plugin serves again.
 * The real table, over the registry, discovery and the runner, is
 * plugins_ops() (server/plugins/plugins_ops.h); a test may hand the core
 * its own. Nothing here names a gRPC type: codes are gRPC status codes as
 * plain ints (EXEC_CODE_*, status_name() of common/status.h).
 *
 * Contract of `build`, the one asynchronous entry: it returns 0 and calls
 * its callback exactly once, later, never from inside the call; or it
 * returns a negative libuv code and never calls it.
 *
 * Ownership: `data` (the table's first argument everywhere) is the
 * implementation's and outlives the core. Inputs are borrowed for the
 * call unless said otherwise; strings handed to a callback are borrowed
 * for the callback.
 *
 * Thread: every function and callback runs on the core's loop thread.
 */
#ifndef SMAUG_OPS_PLUGINS_H
#define SMAUG_OPS_PLUGINS_H

#include <stddef.h>
#include <stdint.h>

#include "dag.h"
#include "exec.h"
#include "graph.h"
#include "smaug/v1/orchestrator.pb-c.h"

/* Ends a graph build. On success `code` is 0 (OK), `failed` is NULL and
 * the callee owns the validated `g` (release with graph_free). Otherwise
 * `code` is a gRPC status code (INVALID_ARGUMENT: a bad graph;
 * UNAVAILABLE: a plugin needed for discovery is down; FAILED_PRECONDITION:
 * a plugin's answer broke a limit; or the plugin's own status) and `msg`
 * says why, naming the plugin; `g` is what was built so far (not
 * validated, may be NULL), still the callee's, and `failed[i]` (may be
 * NULL, as may `failed`) the reason node i failed. */
typedef void (*ops_built_cb)(graph_t *g, int code, const char *msg,
                             const char *const *failed, void *data);

/* A plugin serves again after it was unavailable; `plugin` is its name. */
typedef void (*ops_available_cb)(const char *plugin, void *data);

/* What every plugin call of one operation shares. Everything is borrowed
 * and outlives the runner context made from it. */
typedef struct ops_calls_s {
  const char *bank_uri;      /* sent as is */
  const char *checkpoint_id; /* one bank section component (valid.h) */
  /* Merged per resource: first `params` (the plan's, as the checkpoint was
   * protected with), then `overrides` (a restore's own), which win key by
   * key. Either may be NULL. */
  const Smaug__V1__ParameterSet *params;
  const Smaug__V1__ParameterSet *overrides;
  int64_t timeout_ms;        /* per call; 0: none */
  const int *stopping;       /* non-zero: smaugd stops; plugins keep their
                              * work (no CancelOperation). May be NULL. */
  const char *cancel_reason; /* read when the operation is cancelled; NULL
                              * or "": the default reason */
} ops_calls_t;

typedef struct ops_plugins_s {
  /* Finds the plugin of `type` and checks that it is available: 0;
   * UV_ENOENT when no plugin serves the type; another negative code when
   * its plugin is unavailable. The reason is written into why (len bytes)
   * on failure. */
  int (*resolve)(void *data, const char *type, char *why, size_t len);
  /* dag_new()'s question: does the type's plugin implement the activity?
   * Non-zero also for a type without a plugin (the call is made, and the
   * runner fails it with why). */
  dag_implemented_cb implemented;
  /* exec_opts_t's limits: the plugin name and the limits it announces for
   * the type (name NULL and limits 0 without a plugin). */
  exec_limits_cb limits;
  /* A call to the plugin serving `type` failed UNAVAILABLE: check its
   * health now, so that `available` is heard as soon as it serves again. */
  void (*recheck)(void *data, const char *type);
  /* Sets the one listener of plugins serving again (cb NULL: none). */
  void (*on_available)(void *data, ops_available_cb cb, void *cb_data);
  /* Builds the graph of `resources` and `edges`: with `discover` and no
   * edges, expanded through the plugins' ListDependents with `params`
   * (may be NULL), under the shared limiter. The inputs are copied.
   * Returns 0 and calls `cb` once later; or a negative code (UV_ENOMEM)
   * and never calls it. */
  int (*build)(void *data, Smaug__V1__Resource *const *resources,
               size_t n_resources, Smaug__V1__ResourceEdge *const *edges,
               size_t n_edges, const Smaug__V1__ParameterSet *params,
               int discover, ops_built_cb cb, void *cb_data);
  /* The activity runner of one operation: `*runner` (static, never freed)
   * and its `*rdata` for exec_op_new(), made from `calls` (copied; its
   * pointers stay borrowed). Returns 0, or UV_ENOMEM with nothing set.
   * `*rdata` is released with runner_free() once the executor was freed. */
  int (*runner_new)(void *data, const ops_calls_t *calls,
                    const exec_runner_t **runner, void **rdata);
  /* Releases a runner_new() context. NULL is a no-op. */
  void (*runner_free)(void *data, void *rdata);
} ops_plugins_t;

#endif /* SMAUG_OPS_PLUGINS_H */
