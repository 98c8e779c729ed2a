/*
 * plugins_ops.h - the plugins as the operations core sees them: the real
 * ops_plugins_t table (server/ops/ops_plugins.h), over the registry
 * (registry.h), graph building with discovery (discovery.h) and the
 * activity runner (runner.h). It is the only gRPC side of the seam: the
 * core holds the table and a plugins_ops_t as its data, and never sees a
 * gRPC type.
 *
 * Contract: the table's, in ops_plugins.h (its `build` returns an error
 * and never calls back, or returns 0 and calls back exactly once, later).
 * Failures are reported as the registry, discovery and the runner report
 * them.
 *
 * Ownership: a plugins_ops_t borrows everything it holds; the caller owns
 * it (it may be embedded) and keeps it and the runtime, registry and
 * limiter alive as long as the core.
 *
 * Thread: the loop thread of `rt`.
 */
#ifndef SMAUG_PLUGINS_OPS_H
#define SMAUG_PLUGINS_OPS_H

#include "limiter.h"
#include "ops_plugins.h"
#include "registry.h"
#include "rt.h"

typedef struct plugins_ops_s {
  rt_t *rt;   /* the plugins' channels and the loop */
  reg_t *reg; /* the plugins */
  lim_t *lim; /* the limiter shared by operations and discovery */
  ops_available_cb available; /* the one listener, or NULL */
  void *available_data;
} plugins_ops_t;

/* Sets up `p` over `rt`, `reg` and `lim` (borrowed), with no listener. */
void plugins_ops_init(plugins_ops_t *p, rt_t *rt, reg_t *reg, lim_t *lim);

/* The table (static storage, never NULL); its data is a plugins_ops_t. */
const ops_plugins_t *plugins_ops(void);

#endif /* SMAUG_PLUGINS_OPS_H */
