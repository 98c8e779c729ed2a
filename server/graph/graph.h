/*
 * graph.h - the resource graph: what an operation protects or restores.
 *
 * Nodes are resources keyed by (type, id), with a name and an extra map.
 * An edge says "parent depends on child" (a server on its volumes). A child
 * reached from several parents is one node with several parents, so a
 * shared image is protected once. Types are interned: every node of a type
 * points at the same string, and each type has a small index that the DAG
 * and the executor use to look up limits and capabilities.
 *
 * A graph is built explicitly (graph_add_node, graph_add_edge) from a plan
 * that lists it, and/or grown from the plan's roots by graph_expand(),
 * which asks an asynchronous lister (the plugins' ListDependents) for each
 * node's children, several at a time. graph_validate() then checks it and
 * freezes it: after that the children/parents arrays (CSR) are available
 * and the graph is read-only.
 *
 * Errors: 0 or a negative libuv code. Functions that can fail on bad input
 * take `char *err, size_t errlen` (either may be NULL/0) and write there a
 * NUL-terminated message naming the offending resources, truncated to fit.
 *   GRAPH_ECYCLE    the graph has a cycle; the message is the whole cycle
 *                   "t#a -> t#b -> t#a"
 *   GRAPH_ECONFLICT one (type, id) given twice with different name/extra
 *   GRAPH_ENOPLUGIN a type no registered plugin handles
 *   GRAPH_EEMPTY    no resources at all
 *   GRAPH_ETOOBIG   more nodes than the configured limit
 *   UV_ENOENT       an edge names a resource that is not in the graph
 *   UV_ENOMEM       out of memory
 *
 * Threading: none inside. A graph belongs to the thread that uses it (the
 * loop thread in smaugd); lister callbacks must arrive on that thread.
 */
#ifndef SMAUG_GRAPH_H
#define SMAUG_GRAPH_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "kv.h"

#define GRAPH_ECYCLE    UV_ELOOP
#define GRAPH_ECONFLICT UV_EEXIST
#define GRAPH_ENOPLUGIN UV_ENOTSUP
#define GRAPH_EEMPTY    UV_EINVAL
#define GRAPH_ETOOBIG   UV_E2BIG

/* Default for graph_set_max_nodes(). */
#define GRAPH_DEFAULT_MAX_NODES 1000000u

typedef struct graph_s graph_t;

/* One resource. Strings are owned by the graph. `type` is interned: the
 * same pointer for every node of one type. `name` is never NULL ("" when
 * absent). */
typedef struct graph_node_s {
  const char *type;
  char *id;
  char *name;
  kv_t extra;
  uint32_t type_index; /* 0 .. graph_type_count()-1 */
} graph_node_t;

/* Creates an empty graph. `*out` is released with graph_free(). */
int graph_new(graph_t **out);

/* Frees the graph and every string in it. NULL is a no-op. Must not be
 * called while an expansion is running. */
void graph_free(graph_t *g);

/* Limits the number of nodes; adding past it fails with GRAPH_ETOOBIG.
 * Default GRAPH_DEFAULT_MAX_NODES. */
void graph_set_max_nodes(graph_t *g, uint32_t max_nodes);

/* Adds resource (type, id) with `name` (NULL: "") and `extra` (NULL:
 * empty; copied). When the key already exists the existing node is
 * returned if the data agree: the same name and extra, or either mention
 * is a bare reference (empty name and extra; a bare node takes the data of
 * a later full mention). Otherwise GRAPH_ECONFLICT. `*index_out` (may be NULL)
 * receives the node index, and
 * `*added_out` (may be NULL) 1 when the node is new. Empty type or id is
 * UV_EINVAL. Fails with UV_EBUSY once the graph is validated. */
int graph_add_node(graph_t *g, const char *type, const char *id,
                   const char *name, const kv_t *extra, uint32_t *index_out,
                   int *added_out, char *err, size_t errlen);

/* Adds the edge "parent depends on child". Repeated edges are merged at
 * validation. Self-edges are kept so that validation reports them as a
 * cycle. UV_EINVAL for an index out of range; UV_EBUSY once validated. */
int graph_add_edge(graph_t *g, uint32_t parent, uint32_t child);

/* graph_add_edge() by keys, for plans that list edges: UV_ENOENT (naming
 * the missing resource) when either end is not a node. */
int graph_add_edge_by_key(graph_t *g, const char *parent_type,
                          const char *parent_id, const char *child_type,
                          const char *child_id, char *err, size_t errlen);

/* Index of (type, id), or -1. */
int64_t graph_find(const graph_t *g, const char *type, const char *id);

uint32_t graph_count(const graph_t *g);

/* Node `i` (< graph_count). The pointer is invalidated by the next
 * graph_add_node (the array may move); stable once validated. */
const graph_node_t *graph_node(const graph_t *g, uint32_t i);

uint32_t graph_type_count(const graph_t *g);

/* Interned name of type index `t`. */
const char *graph_type_name(const graph_t *g, uint32_t t);

/* 1 once graph_validate() succeeded. */
int graph_is_valid(const graph_t *g);

/* Children and parents of node `i`, deduplicated, as arrays of node
 * indices owned by the graph; `*n` receives their length. Only after a
 * successful graph_validate() (asserted). */
const uint32_t *graph_children(const graph_t *g, uint32_t i, uint32_t *n);
const uint32_t *graph_parents(const graph_t *g, uint32_t i, uint32_t *n);

/* Tells whether some registered plugin handles `type`: non-zero if yes. */
typedef int (*graph_has_plugin_cb)(void *data, const char *type);

/* Checks the graph and freezes it. In order: empty (GRAPH_EEMPTY), types
 * without plugin (GRAPH_ENOPLUGIN, naming the first resource of each such
 * type; skipped when `has_plugin` is NULL), cycles (GRAPH_ECYCLE, naming
 * one whole cycle). Iterative, so depth is not limited by the C stack. On
 * failure the graph is unchanged and may be fixed and validated again. */
int graph_validate(graph_t *g, graph_has_plugin_cb has_plugin, void *data,
                   char *err, size_t errlen);

/* ------------------------------------------------------------ expansion */

/* One child as reported by a lister. Strings are read during the callback
 * only. */
typedef struct graph_child_s {
  const char *type;
  const char *id;
  const char *name;  /* may be NULL */
  const kv_t *extra; /* may be NULL */
} graph_child_t;

/* Reports the children of the node a lister was asked about. `status` is 0
 * or a negative code, with `errmsg` (may be NULL) saying why. Must be
 * called exactly once per successful list() call, on the graph's thread. */
typedef void (*graph_list_done_cb)(void *done_data, int status,
                                   const graph_child_t *children, size_t n,
                                   const char *errmsg);

/* The asynchronous source of children (ListDependents through the
 * registry). `list` starts listing `node` (valid only during the call; copy
 * what you need: it dies when `done` runs) and returns 0, then calls `done`
 * later, exactly once; a lister with nothing to ask may call `done` at once
 * from inside `list`. A negative return means `done` will never be called. */
typedef struct graph_lister_s {
  int (*list)(void *data, uint32_t index, const graph_node_t *node,
              graph_list_done_cb done, void *done_data);
  void *data;
} graph_lister_t;

/* Called once when an expansion ends: 0, or the first error with its
 * message (valid during the call). */
typedef void (*graph_expand_cb)(graph_t *g, int status, const char *errmsg,
                                void *data);

/* Expands every node not yet expanded (initially: the plan's roots and any
 * listed nodes) by asking `lister` for its children, at most `limit` calls
 * at once (0: no limit). Children are added with graph_add_node rules
 * (dedup, conflict, size limit) and become nodes to expand in turn; each
 * node is listed once. On the first error no new call starts; `cb` runs
 * when the calls in flight have ended. Returns GRAPH_EEMPTY for an empty
 * graph, UV_EALREADY when every node was already listed, UV_EBUSY if
 * validated or already expanding, and then `cb` is
 * never called; otherwise `cb` runs exactly once, from a lister's done
 * callback (so inside graph_expand only if the lister answers at once).
 * `lister` is copied. */
int graph_expand(graph_t *g, const graph_lister_t *lister, unsigned limit,
                 graph_expand_cb cb, void *data);

#endif /* SMAUG_GRAPH_H */
