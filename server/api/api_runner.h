/*
 * api_runner.h - the executor's activity runner over gRPC: each P or S
 * task becomes a ParallelActivity or SyncActivity call to the plugin that
 * serves the resource's type, and cancellation becomes a gRPC cancel plus
 * CancelOperation on every plugin.
 *
 * Thread: the loop thread.
 */
#ifndef SMAUG_API_RUNNER_H
#define SMAUG_API_RUNNER_H

#include "exec.h"
#include "registry.h"
#include "smaug/v1/orchestrator.pb-c.h"

/* What every call of one operation shares; the `rdata` of the runner.
 * Everything is borrowed and must outlive the operation. */
typedef struct api_runner_ctx_s {
  reg_t *reg;
  const char *bank_uri;
  const char *checkpoint_id;
  /* Parameters, merged per resource by api_params_merge(): first `params`
   * (the plan's, as the checkpoint was protected with), then `overrides`
   * (a restore's own), which win key by key. Either may be NULL. */
  const Smaug__V1__ParameterSet *params;
  const Smaug__V1__ParameterSet *overrides;
  int64_t timeout_ms;  /* per call; 0: none */
  const int *stopping; /* non-zero: smaugd stops; plugins keep their work */
  const char *cancel_reason; /* sent with CancelOperation; NULL or "": ours */
} api_runner_ctx_t;

/* The runner (static storage); pass a api_runner_ctx_t as `rdata`. */
const exec_runner_t *api_runner(void);

/* "checkpoints/<checkpoint>/<type>/<id>" into buf, the one place a bank
 * section is built. Each part must be one bank section component
 * (API_ID_PATTERN); anything else is a caller bug (asserted) and returns
 * UV_EINVAL without writing. Otherwise like snprintf. */
int api_bank_section(const char *checkpoint_id, const char *type,
                     const char *id, char *buf, size_t len);

#endif /* SMAUG_API_RUNNER_H */
