/*
 * discovery.h - builds the validated resource graph of an operation: from
 * a plan (its roots, expanded through the plugins' ListDependents unless
 * the plan lists its edges) or from a checkpoint's stored graph. The
 * conversions of a graph back to the protocol's resources and edges are
 * in disc_proto.h, included here.
 *
 * A build is asynchronous: disc_build() returns 0 and calls its callback
 * exactly once, later, never from inside the call; or it returns an error
 * and never calls it. Everything a plugin answers is checked like user
 * input (valid.h) before it becomes a node. The ListDependents calls run
 * under the same limits as the activities: the shared limiter's slot per
 * call (limiter.h) and at most 16 in flight per build.
 *
 * Ownership: the inputs are copied; the graph handed to the callback is
 * the callee's.
 *
 * Thread: the loop thread of `rt`.
 */
#ifndef SMAUG_DISCOVERY_H
#define SMAUG_DISCOVERY_H

#include <grpc/grpc.h>

#include "disc_proto.h"
#include "graph.h"
#include "limiter.h"
#include "registry.h"
#include "rt.h"
#include "smaug/v1/orchestrator.pb-c.h"

/* Ends a build. On success `code` is OK, `failed` is NULL and the callee
 * owns the validated `g` (release with graph_free). Otherwise `msg` (valid
 * during the call) says why: INVALID_ARGUMENT (bad graph: duplicate,
 * cycle, unknown type), UNAVAILABLE (a plugin needed for discovery is
 * down), FAILED_PRECONDITION (a plugin answered ListDependents with
 * resources that break the limits of valid.h), or the plugin's own
 * status; the messages name the plugin. `g` is then what was built so far
 * (not validated; NULL if nothing was), still owned by the callee, and
 * `failed[i]` (valid during the call) the reason why node i failed, or
 * NULL for a node that did not fail itself (it was never listed, or was
 * fine). `failed` itself is NULL when the graph is empty or out of
 * memory. */
typedef void (*disc_cb)(graph_t *g, grpc_status_code code, const char *msg,
                        const char *const *failed, void *data);

/* Builds a graph from `resources` and `edges`. With `discover` and no
 * edges, each node is expanded with its plugin's ListDependents, called
 * with the parameters merged from `params` (may be NULL); the calls run
 * under the activities' limits (16 in flight, and a slot of `lim`, the
 * limiter shared with the operations, for each: each plugin's and type's
 * max_concurrency; NULL: the build's own limiter), the rest wait their
 * turn. `lim` and `reg` must outlive the build. The inputs are copied;
 * they need not outlive the call. Returns 0 and calls `cb` once later,
 * never from inside the call; or UV_ENOMEM and never calls it. */
int disc_build(rt_t *rt, reg_t *reg, lim_t *lim,
               Smaug__V1__Resource *const *resources, size_t n_resources,
               Smaug__V1__ResourceEdge *const *edges, size_t n_edges,
               const Smaug__V1__ParameterSet *params, int discover, disc_cb cb,
               void *data);

#endif /* SMAUG_DISCOVERY_H */
