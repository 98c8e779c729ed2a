/*
 * disc_proto.h - a resource graph in the protocol's terms: a node as a
 * smaug.v1.Resource, a validated graph as a checkpoint's resources and
 * edges. Plain C (graph.h and the generated messages, no gRPC), so that
 * the operations core, the runner and the API share one conversion.
 *
 * Ownership: the results borrow the graph's strings and allocate only the
 * arrays, released by their _free. Thread: any.
 */
#ifndef SMAUG_DISC_PROTO_H
#define SMAUG_DISC_PROTO_H

#include "graph.h"
#include "smaug/v1/orchestrator.pb-c.h"

/* Fills cp->resources and cp->edges from the validated graph `g`; the
 * arrays and strings are malloc'd and released by disc_proto_free(). 0 or
 * UV_ENOMEM (nothing is left allocated then). */
int disc_to_proto(const graph_t *g, Smaug__V1__Checkpoint *cp);

/* Releases what disc_to_proto() put into `cp` and clears those fields. */
void disc_proto_free(Smaug__V1__Checkpoint *cp);

/* Fills `out` (initialised first) with node `n`; the strings borrow from
 * the node (which must outlive `out`), and `out->extra` is released by
 * disc_resource_free(). 0 or UV_ENOMEM. */
int disc_resource_of(const graph_node_t *n, Smaug__V1__Resource *out);

/* Releases `r->extra` as filled by disc_resource_of(). */
void disc_resource_free(Smaug__V1__Resource *r);

#endif /* SMAUG_DISC_PROTO_H */
