/*
 * runner.h - the executor's activity runner over gRPC: each P or S task of
 * an operation becomes a ParallelActivity or SyncActivity call to the
 * plugin that serves the resource's type, and cancellation becomes a gRPC
 * cancel plus CancelOperation on every plugin.
 *
 * This is the real exec_runner_t (exec.h): the operations hand
 * runner_rpc() and a runner_ctx_t to exec_op_new(), and the executor calls
 * it; nothing else calls the runner directly. Its contract is the
 * executor's: `start` returns 0 and the activity ends exactly once with
 * exec_activity_complete() or exec_activity_fail(): from inside `start`
 * when the call cannot be made (no plugin, plugin unavailable, a bad bank
 * section), otherwise later from a gRPC completion on the loop; or `start`
 * returns a negative code (UV_ENOMEM) and the activity ends neither way.
 *
 * How an activity fails (the code and the reason of its task):
 *   - FAILED_PRECONDITION: no plugin serves the resource's type;
 *   - UNAVAILABLE: that plugin is down (its reason is in the message);
 *   - the plugin's own status, with its message (UTF-8 repaired);
 *   - INTERNAL: the plugin broke the protocol: an answer over the receive
 *     limit, a field over a limit of valid.h, a second result in one
 *     stream, a stream that ends OK without a result, or a restore that
 *     names no restored id;
 *   - INTERNAL, too, for a bank section that cannot be built (a caller
 *     bug: the parts are checked before);
 *   - CANCELLED: the executor cancelled the activity.
 * Every message about a call names the plugin and its address.
 *
 * Concurrency limits are the executor's job (its limiter, limiter.h): the
 * runner starts every call it is asked to.
 *
 * Thread: the loop thread of the rt_t the registry's channels belong to.
 */
#ifndef SMAUG_RUNNER_H
#define SMAUG_RUNNER_H

#include <stddef.h>
#include <stdint.h>

#include "exec.h"
#include "registry.h"
#include "smaug/v1/orchestrator.pb-c.h"

/* What every call of one operation shares; the `rdata` of the runner.
 * Everything is borrowed and must outlive the operation (until its done
 * callback has run). */
typedef struct runner_ctx_s {
  reg_t *reg;                /* the plugins; read on every start */
  const char *bank_uri;      /* sent as is */
  const char *checkpoint_id; /* one bank section component (valid.h) */
  /* Parameters, merged per resource by valid_params_merge(): first `params`
   * (the plan's, as the checkpoint was protected with), then `overrides`
   * (a restore's own), which win key by key. Either may be NULL. */
  const Smaug__V1__ParameterSet *params;
  const Smaug__V1__ParameterSet *overrides;
  int64_t timeout_ms;        /* per call; 0: none */
  const int *stopping;       /* non-zero: smaugd stops; plugins keep their work
                              * (no CancelOperation). May be NULL. */
  const char *cancel_reason; /* sent with CancelOperation; NULL or "": ours */
} runner_ctx_t;

/* The runner (static storage, never NULL); pass a runner_ctx_t as
 * `rdata`. */
const exec_runner_t *runner_rpc(void);

/* Writes "checkpoints/<checkpoint>/<type>/<id>" into buf, the one place a
 * bank section is built. Each part must be one bank section component
 * (VALID_ID_PATTERN); anything else is a caller bug (asserted) and returns
 * UV_EINVAL without writing. Otherwise returns what snprintf returns (a
 * result >= len means the section was cut). Any thread. */
int runner_bank_section(const char *checkpoint_id, const char *type,
                        const char *id, char *buf, size_t len);

#endif /* SMAUG_RUNNER_H */
