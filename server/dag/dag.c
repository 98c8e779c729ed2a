/*
 * dag.c - task DAG construction and export (see dag.h).
 */
#include "dag.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

struct dag_s {
  const graph_t *g;
  dag_op_t op;
  uint8_t *noop; /* per task */
};

int dag_new(const graph_t *g, dag_op_t op, dag_implemented_cb implemented,
            void *data, dag_t **out) {
  if (g == NULL || !graph_is_valid(g) || op < DAG_OP_PROTECT ||
      op > DAG_OP_DELETE)
    return UV_EINVAL;
  uint32_t nt = graph_type_count(g);
  uint32_t n = graph_count(g);
  dag_t *d = calloc(1, sizeof(*d));
  uint8_t *noop = malloc((size_t)n * 2);
  uint8_t *type_noop = calloc(nt ? nt * 2 : 1, 1);
  if (d == NULL || noop == NULL || type_noop == NULL) {
    free(d);
    free(noop);
    free(type_noop);
    return UV_ENOMEM;
  }
  /* Ask once per type and activity, then spread over the tasks. */
  for (uint32_t t = 0; t < nt && implemented != NULL; t++) {
    const char *type = graph_type_name(g, t);
    type_noop[t * 2] = !implemented(data, type, op, DAG_PARALLEL);
    type_noop[t * 2 + 1] = !implemented(data, type, op, DAG_SYNC);
  }
  for (uint32_t i = 0; i < n; i++) {
    uint32_t t = graph_node(g, i)->type_index;
    noop[i * 2] = type_noop[t * 2];
    noop[i * 2 + 1] = type_noop[t * 2 + 1];
  }
  free(type_noop);
  d->g = g;
  d->op = op;
  d->noop = noop;
  *out = d;
  return 0;
}

void dag_free(dag_t *d) {
  if (d == NULL)
    return;
  free(d->noop);
  free(d);
}

const graph_t *dag_graph(const dag_t *d) {
  return d->g;
}

dag_op_t dag_op(const dag_t *d) {
  return d->op;
}

uint32_t dag_task_count(const dag_t *d) {
  return graph_count(d->g) * 2;
}

int dag_task_noop(const dag_t *d, uint32_t t) {
  return d->noop[t];
}

uint32_t dag_task_ndeps(const dag_t *d, uint32_t t) {
  if (dag_task_activity(t) == DAG_PARALLEL)
    return 0;
  uint32_t nc;
  graph_children(d->g, dag_task_node(t), &nc);
  return 1 + nc;
}

int dag_task_id(const dag_t *d, uint32_t t, char *buf, size_t len) {
  const graph_node_t *nd = graph_node(d->g, dag_task_node(t));
  return snprintf(buf, len, "%c:%s#%s",
                  dag_task_activity(t) == DAG_PARALLEL ? 'P' : 'S', nd->type,
                  nd->id);
}

int dag_task_find(const dag_t *d, dag_activity_t act, const char *type,
                  const char *id, uint32_t *out) {
  if (d == NULL || type == NULL || id == NULL || out == NULL ||
      (act != DAG_PARALLEL && act != DAG_SYNC))
    return UV_EINVAL;
  int64_t node = graph_find(d->g, type, id);
  if (node < 0)
    return UV_ENOENT;
  *out = dag_task((uint32_t)node, act);
  return 0;
}

int dag_task_parse(const dag_t *d, const char *task_id, uint32_t *out) {
  if (d == NULL || task_id == NULL || out == NULL)
    return UV_EINVAL;
  dag_activity_t act;
  if (task_id[0] == 'P')
    act = DAG_PARALLEL;
  else if (task_id[0] == 'S')
    act = DAG_SYNC;
  else
    return UV_EINVAL;
  if (task_id[1] != ':')
    return UV_EINVAL;
  const char *type = task_id + 2, *hash = strchr(type, '#');
  if (hash == NULL || hash == type || hash[1] == '\0')
    return UV_EINVAL;
  char *t = strndup(type, (size_t)(hash - type));
  if (t == NULL)
    return UV_ENOMEM;
  int err = dag_task_find(d, act, t, hash + 1, out);
  free(t);
  return err;
}

/* ---------------------------------------------------------------- DOT */

typedef struct dag_buf_s {
  char *p;
  size_t len;
  size_t cap;
  int err;
} dag_buf_t;

static void dag__put(dag_buf_t *b, const char *s, size_t n) {
  if (b->err)
    return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (b->len + n + 1 > cap)
      cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) {
      b->err = UV_ENOMEM;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void dag__puts(dag_buf_t *b, const char *s) {
  dag__put(b, s, strlen(s));
}

/* A quoted DOT id for task t, escaping '"' and '\'. */
static void dag__put_task(dag_buf_t *b, const dag_t *d, uint32_t t) {
  const graph_node_t *nd = graph_node(d->g, dag_task_node(t));
  dag__puts(b, dag_task_activity(t) == DAG_PARALLEL ? "\"P:" : "\"S:");
  const char *parts[3] = {nd->type, "#", nd->id};
  for (int k = 0; k < 3; k++)
    for (const char *s = parts[k]; *s; s++) {
      if (*s == '"' || *s == '\\')
        dag__put(b, "\\", 1);
      dag__put(b, s, 1);
    }
  dag__put(b, "\"", 1);
}

int dag_to_dot(const dag_t *d, char **out) {
  dag_buf_t b = {0};
  uint32_t n = graph_count(d->g);
  dag__puts(&b, "digraph flow {\n  rankdir=LR;\n  node [shape=box];\n");
  for (uint32_t t = 0; t < n * 2; t++) {
    dag__puts(&b, "  ");
    dag__put_task(&b, d, t);
    dag__puts(&b, d->noop[t] ? " [style=dashed];\n" : ";\n");
  }
  for (uint32_t i = 0; i < n; i++) {
    dag__puts(&b, "  ");
    dag__put_task(&b, d, dag_task(i, DAG_PARALLEL));
    dag__puts(&b, " -> ");
    dag__put_task(&b, d, dag_task(i, DAG_SYNC));
    dag__puts(&b, " [color=blue];\n");
    uint32_t nc;
    const uint32_t *c = graph_children(d->g, i, &nc);
    for (uint32_t k = 0; k < nc; k++) {
      dag__puts(&b, "  ");
      dag__put_task(&b, d, dag_task(c[k], DAG_SYNC));
      dag__puts(&b, " -> ");
      dag__put_task(&b, d, dag_task(i, DAG_SYNC));
      dag__puts(&b, " [color=red];\n");
    }
  }
  dag__puts(&b, "}\n");
  if (b.err) {
    free(b.p);
    return b.err;
  }
  *out = b.p;
  return 0;
}

/* -------------------------------------------------------------- export */

int dag_export(const dag_t *d, dag_export_t *out) {
  uint32_t n = graph_count(d->g);
  size_t ne = n;
  for (uint32_t i = 0; i < n; i++) {
    uint32_t nc;
    graph_children(d->g, i, &nc);
    ne += nc;
  }
  dag_export_t x = {0};
  x.nodes = calloc((size_t)n * 2, sizeof(*x.nodes));
  x.edges = malloc(ne * sizeof(*x.edges));
  if (x.nodes == NULL || x.edges == NULL)
    goto nomem;
  for (uint32_t t = 0; t < n * 2; t++) {
    int len = dag_task_id(d, t, NULL, 0);
    char *id = malloc((size_t)len + 1);
    if (id == NULL)
      goto nomem;
    dag_task_id(d, t, id, (size_t)len + 1);
    x.nodes[t].id = id;
    x.nodes[t].node = dag_task_node(t);
    x.nodes[t].activity = dag_task_activity(t);
    x.nodes[t].noop = d->noop[t];
    x.n_nodes++;
  }
  for (uint32_t i = 0; i < n; i++) {
    x.edges[x.n_edges++] =
        (dag_xedge_t){dag_task(i, DAG_PARALLEL), dag_task(i, DAG_SYNC),
                      DAG_EDGE_PARALLEL_TO_SYNC};
    uint32_t nc;
    const uint32_t *c = graph_children(d->g, i, &nc);
    for (uint32_t k = 0; k < nc; k++)
      x.edges[x.n_edges++] =
          (dag_xedge_t){dag_task(c[k], DAG_SYNC), dag_task(i, DAG_SYNC),
                        DAG_EDGE_CHILD_TO_PARENT};
  }
  *out = x;
  return 0;
nomem:
  dag_export_free(&x);
  return UV_ENOMEM;
}

void dag_export_free(dag_export_t *x) {
  if (x == NULL)
    return;
  for (size_t i = 0; i < x->n_nodes; i++)
    free(x->nodes[i].id);
  free(x->nodes);
  free(x->edges);
  memset(x, 0, sizeof(*x));
}
