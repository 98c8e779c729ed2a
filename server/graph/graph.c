/*
 * graph.c - resource graph storage, validation and expansion (see graph.h).
 *
 * Nodes live in one array; an open-addressing table (linear probing, power
 * of two size, at most half full) maps (type index, id) to a node index.
 * Edges are collected as (parent, child) pairs and, at validation, sorted,
 * deduplicated and turned into two CSR arrays (children and parents).
 */
#include "graph.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct graph_edge_s {
  uint32_t parent;
  uint32_t child;
} graph_edge_t;

typedef struct graph_exp_s graph_exp_t;

struct graph_s {
  graph_node_t *nodes;
  uint32_t n;
  uint32_t cap;
  uint32_t max_nodes;
  uint8_t *expanded; /* per node: already listed */

  uint32_t *slots; /* node index + 1; 0 is empty */
  uint32_t nslots;

  char **types;
  uint32_t ntypes;
  uint32_t captypes;

  graph_edge_t *edges;
  size_t nedges;
  size_t capedges;

  /* CSR, built by graph_validate. */
  uint32_t *child_off; /* n + 1 */
  uint32_t *child_idx;
  uint32_t *parent_off; /* n + 1 */
  uint32_t *parent_idx;
  int valid;

  graph_exp_t *exp;
};

static void graph__err(char *err, size_t errlen, const char *fmt, ...) {
  if (err == NULL || errlen == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

static uint32_t graph__hash(uint32_t type_index, const char *id) {
  uint32_t h = 2166136261u ^ (type_index * 0x9e3779b1u);
  for (const unsigned char *p = (const unsigned char *)id; *p; p++)
    h = (h ^ *p) * 16777619u;
  return h;
}

int graph_new(graph_t **out) {
  graph_t *g = calloc(1, sizeof(*g));
  if (g == NULL)
    return UV_ENOMEM;
  g->max_nodes = GRAPH_DEFAULT_MAX_NODES;
  *out = g;
  return 0;
}

void graph_free(graph_t *g) {
  if (g == NULL)
    return;
  assert(g->exp == NULL);
  for (uint32_t i = 0; i < g->n; i++) {
    free(g->nodes[i].id);
    free(g->nodes[i].name);
    kv_free(&g->nodes[i].extra);
  }
  for (uint32_t t = 0; t < g->ntypes; t++)
    free(g->types[t]);
  free(g->types);
  free(g->nodes);
  free(g->expanded);
  free(g->slots);
  free(g->edges);
  free(g->child_off);
  free(g->child_idx);
  free(g->parent_off);
  free(g->parent_idx);
  free(g);
}

void graph_set_max_nodes(graph_t *g, uint32_t max_nodes) {
  g->max_nodes = max_nodes;
}

/* Type index of `type`, or -1. Types are few, so a linear scan is fine. */
static int64_t graph__type_find(const graph_t *g, const char *type) {
  for (uint32_t t = 0; t < g->ntypes; t++)
    if (strcmp(g->types[t], type) == 0)
      return t;
  return -1;
}

static int graph__type_intern(graph_t *g, const char *type, uint32_t *out) {
  int64_t t = graph__type_find(g, type);
  if (t >= 0) {
    *out = (uint32_t)t;
    return 0;
  }
  if (g->ntypes == g->captypes) {
    uint32_t cap = g->captypes ? g->captypes * 2 : 4;
    char **types = realloc(g->types, cap * sizeof(*types));
    if (types == NULL)
      return UV_ENOMEM;
    g->types = types;
    g->captypes = cap;
  }
  char *s = strdup(type);
  if (s == NULL)
    return UV_ENOMEM;
  g->types[g->ntypes] = s;
  *out = g->ntypes++;
  return 0;
}

static int64_t graph__lookup(const graph_t *g, uint32_t type_index,
                             const char *id) {
  if (g->nslots == 0)
    return -1;
  uint32_t mask = g->nslots - 1;
  for (uint32_t s = graph__hash(type_index, id) & mask;; s = (s + 1) & mask) {
    uint32_t v = g->slots[s];
    if (v == 0)
      return -1;
    const graph_node_t *nd = &g->nodes[v - 1];
    if (nd->type_index == type_index && strcmp(nd->id, id) == 0)
      return v - 1;
  }
}

static void graph__slot_put(uint32_t *slots, uint32_t nslots, uint32_t h,
                            uint32_t index) {
  uint32_t mask = nslots - 1;
  uint32_t s = h & mask;
  while (slots[s] != 0)
    s = (s + 1) & mask;
  slots[s] = index + 1;
}

/* Keeps the table at most half full. */
static int graph__reserve(graph_t *g) {
  if (g->n == g->cap) {
    uint32_t cap = g->cap ? g->cap * 2 : 16;
    graph_node_t *nodes = realloc(g->nodes, cap * sizeof(*nodes));
    if (nodes == NULL)
      return UV_ENOMEM;
    g->nodes = nodes;
    uint8_t *exp = realloc(g->expanded, cap);
    if (exp == NULL)
      return UV_ENOMEM;
    g->expanded = exp;
    g->cap = cap;
  }
  if ((uint64_t)(g->n + 1) * 2 > g->nslots) {
    uint32_t nslots = g->nslots ? g->nslots * 2 : 32;
    uint32_t *slots = calloc(nslots, sizeof(*slots));
    if (slots == NULL)
      return UV_ENOMEM;
    for (uint32_t i = 0; i < g->n; i++)
      graph__slot_put(slots, nslots,
                      graph__hash(g->nodes[i].type_index, g->nodes[i].id), i);
    free(g->slots);
    g->slots = slots;
    g->nslots = nslots;
  }
  return 0;
}

int graph_add_node(graph_t *g, const char *type, const char *id,
                   const char *name, const kv_t *extra, uint32_t *index_out,
                   int *added_out, char *err, size_t errlen) {
  if (g->valid)
    return UV_EBUSY;
  if (type == NULL || id == NULL || type[0] == '\0' || id[0] == '\0') {
    graph__err(err, errlen, "resource with empty type or id (%s#%s)",
               type ? type : "", id ? id : "");
    return UV_EINVAL;
  }
  if (name == NULL)
    name = "";
  int64_t t = graph__type_find(g, type);
  int64_t found = t >= 0 ? graph__lookup(g, (uint32_t)t, id) : -1;
  if (found >= 0) {
    graph_node_t *nd = &g->nodes[found];
    int bare = name[0] == '\0' && kv_count(extra) == 0;
    int was_bare = nd->name[0] == '\0' && kv_count(&nd->extra) == 0;
    if (!bare && was_bare) { /* a bare reference gets its data now */
      char *nm = strdup(name);
      if (nm == NULL || kv_copy(&nd->extra, extra) != 0) {
        free(nm);
        return UV_ENOMEM;
      }
      free(nd->name);
      nd->name = nm;
    } else if (!bare &&
               (strcmp(nd->name, name) != 0 || !kv_equal(&nd->extra, extra))) {
      graph__err(err, errlen,
                 "resource %s#%s given twice with conflicting data "
                 "(name \"%s\" vs \"%s\")",
                 type, id, nd->name, name);
      return GRAPH_ECONFLICT;
    }
    if (index_out)
      *index_out = (uint32_t)found;
    if (added_out)
      *added_out = 0;
    return 0;
  }
  if (g->n >= g->max_nodes) {
    graph__err(err, errlen,
               "graph too large: adding %s#%s exceeds the limit of %u "
               "resources",
               type, id, g->max_nodes);
    return GRAPH_ETOOBIG;
  }
  uint32_t ti;
  int rc = graph__type_intern(g, type, &ti);
  if (rc == 0)
    rc = graph__reserve(g);
  if (rc != 0)
    return rc;
  graph_node_t nd;
  nd.type = g->types[ti];
  nd.type_index = ti;
  nd.id = strdup(id);
  nd.name = strdup(name);
  kv_init(&nd.extra);
  if (nd.id == NULL || nd.name == NULL || kv_copy(&nd.extra, extra) != 0) {
    free(nd.id);
    free(nd.name);
    return UV_ENOMEM;
  }
  uint32_t index = g->n++;
  g->nodes[index] = nd;
  g->expanded[index] = 0;
  graph__slot_put(g->slots, g->nslots, graph__hash(ti, id), index);
  if (index_out)
    *index_out = index;
  if (added_out)
    *added_out = 1;
  return 0;
}

int graph_add_edge(graph_t *g, uint32_t parent, uint32_t child) {
  if (g->valid)
    return UV_EBUSY;
  if (parent >= g->n || child >= g->n)
    return UV_EINVAL;
  if (g->nedges == g->capedges) {
    size_t cap = g->capedges ? g->capedges * 2 : 16;
    graph_edge_t *e = realloc(g->edges, cap * sizeof(*e));
    if (e == NULL)
      return UV_ENOMEM;
    g->edges = e;
    g->capedges = cap;
  }
  g->edges[g->nedges].parent = parent;
  g->edges[g->nedges].child = child;
  g->nedges++;
  return 0;
}

int graph_add_edge_by_key(graph_t *g, const char *parent_type,
                          const char *parent_id, const char *child_type,
                          const char *child_id, char *err, size_t errlen) {
  int64_t p = graph_find(g, parent_type, parent_id);
  int64_t c = graph_find(g, child_type, child_id);
  if (p < 0 || c < 0) {
    graph__err(err, errlen, "edge %s#%s -> %s#%s names unknown resource %s#%s",
               parent_type, parent_id, child_type, child_id,
               p < 0 ? parent_type : child_type, p < 0 ? parent_id : child_id);
    return UV_ENOENT;
  }
  return graph_add_edge(g, (uint32_t)p, (uint32_t)c);
}

int64_t graph_find(const graph_t *g, const char *type, const char *id) {
  int64_t t = graph__type_find(g, type);
  return t < 0 ? -1 : graph__lookup(g, (uint32_t)t, id);
}

uint32_t graph_count(const graph_t *g) {
  return g->n;
}

const graph_node_t *graph_node(const graph_t *g, uint32_t i) {
  assert(i < g->n);
  return &g->nodes[i];
}

uint32_t graph_type_count(const graph_t *g) {
  return g->ntypes;
}

const char *graph_type_name(const graph_t *g, uint32_t t) {
  assert(t < g->ntypes);
  return g->types[t];
}

int graph_is_valid(const graph_t *g) {
  return g->valid;
}

const uint32_t *graph_children(const graph_t *g, uint32_t i, uint32_t *n) {
  assert(g->valid && i < g->n);
  *n = g->child_off[i + 1] - g->child_off[i];
  return g->child_idx + g->child_off[i];
}

const uint32_t *graph_parents(const graph_t *g, uint32_t i, uint32_t *n) {
  assert(g->valid && i < g->n);
  *n = g->parent_off[i + 1] - g->parent_off[i];
  return g->parent_idx + g->parent_off[i];
}

/* ----------------------------------------------------------- validation */

static int graph__edge_cmp(const void *a, const void *b) {
  const graph_edge_t *x = a, *y = b;
  if (x->parent != y->parent)
    return x->parent < y->parent ? -1 : 1;
  if (x->child != y->child)
    return x->child < y->child ? -1 : 1;
  return 0;
}

/* Appends "type#id" to err at *pos, keeping it NUL-terminated. */
static void graph__append(char *err, size_t errlen, size_t *pos,
                          const char *sep, const graph_node_t *nd) {
  if (err == NULL || *pos + 1 >= errlen)
    return;
  int w = snprintf(err + *pos, errlen - *pos, "%s%s#%s", sep, nd->type, nd->id);
  if (w > 0)
    *pos += (size_t)w < errlen - *pos ? (size_t)w : errlen - *pos - 1;
}

/* Iterative three-colour DFS over children. On a back edge, writes the
 * cycle (from the re-entered node round to itself) and returns
 * GRAPH_ECYCLE. */
static int graph__find_cycle(const graph_t *g, const uint32_t *off,
                             const uint32_t *idx, char *err, size_t errlen) {
  uint32_t n = g->n;
  uint8_t *color = calloc(n ? n : 1, 1);
  uint32_t *stack = malloc((n ? n : 1) * sizeof(*stack));
  uint32_t *cursor = malloc((n ? n : 1) * sizeof(*cursor));
  int rc = 0;
  if (color == NULL || stack == NULL || cursor == NULL) {
    rc = UV_ENOMEM;
    goto out;
  }
  for (uint32_t root = 0; root < n && rc == 0; root++) {
    if (color[root] != 0)
      continue;
    uint32_t depth = 0;
    stack[depth] = root;
    cursor[depth] = off[root];
    color[root] = 1;
    depth++;
    while (depth > 0 && rc == 0) {
      uint32_t v = stack[depth - 1];
      if (cursor[depth - 1] == off[v + 1]) {
        color[v] = 2;
        depth--;
        continue;
      }
      uint32_t c = idx[cursor[depth - 1]++];
      if (color[c] == 0) {
        color[c] = 1;
        stack[depth] = c;
        cursor[depth] = off[c];
        depth++;
      } else if (color[c] == 1) {
        uint32_t from = depth - 1;
        while (stack[from] != c)
          from--;
        size_t pos = 0;
        graph__err(err, errlen, "cycle: ");
        if (err != NULL && errlen > 0)
          pos = strlen(err);
        for (uint32_t k = from; k < depth; k++)
          graph__append(err, errlen, &pos, k == from ? "" : " -> ",
                        &g->nodes[stack[k]]);
        graph__append(err, errlen, &pos, " -> ", &g->nodes[c]);
        rc = GRAPH_ECYCLE;
      }
    }
  }
out:
  free(color);
  free(stack);
  free(cursor);
  return rc;
}

int graph_validate(graph_t *g, graph_has_plugin_cb has_plugin, void *data,
                   char *err, size_t errlen) {
  if (g->valid)
    return 0;
  if (g->n == 0) {
    graph__err(err, errlen, "the plan has no resources");
    return GRAPH_EEMPTY;
  }
  if (has_plugin != NULL) {
    size_t pos = 0;
    int missing = 0;
    for (uint32_t t = 0; t < g->ntypes; t++) {
      if (has_plugin(data, g->types[t]))
        continue;
      /* Name the first resource of this type. */
      for (uint32_t i = 0; i < g->n; i++) {
        if (g->nodes[i].type_index != t)
          continue;
        if (!missing) {
          graph__err(err, errlen, "no plugin for resource type: ");
          if (err != NULL && errlen > 0)
            pos = strlen(err);
        }
        graph__append(err, errlen, &pos, missing ? ", " : "", &g->nodes[i]);
        missing = 1;
        break;
      }
    }
    if (missing)
      return GRAPH_ENOPLUGIN;
  }

  /* Sort and deduplicate edges, then build both CSR arrays. */
  if (g->nedges > 1)
    qsort(g->edges, g->nedges, sizeof(*g->edges), graph__edge_cmp);
  size_t m = 0;
  for (size_t i = 0; i < g->nedges; i++)
    if (m == 0 || graph__edge_cmp(&g->edges[m - 1], &g->edges[i]) != 0)
      g->edges[m++] = g->edges[i];
  g->nedges = m;

  uint32_t *coff = calloc(g->n + 1, sizeof(*coff));
  uint32_t *poff = calloc(g->n + 1, sizeof(*poff));
  uint32_t *cidx = malloc((m ? m : 1) * sizeof(*cidx));
  uint32_t *pidx = malloc((m ? m : 1) * sizeof(*pidx));
  int rc = 0;
  if (coff == NULL || poff == NULL || cidx == NULL || pidx == NULL) {
    rc = UV_ENOMEM;
    goto fail;
  }
  for (size_t i = 0; i < m; i++) {
    coff[g->edges[i].parent + 1]++;
    poff[g->edges[i].child + 1]++;
  }
  for (uint32_t i = 0; i < g->n; i++) {
    coff[i + 1] += coff[i];
    poff[i + 1] += poff[i];
  }
  for (size_t i = 0; i < m; i++) /* edges sorted by parent: in order */
    cidx[i] = g->edges[i].child;
  {
    uint32_t *fill = malloc(g->n * sizeof(*fill));
    if (fill == NULL) {
      rc = UV_ENOMEM;
      goto fail;
    }
    memcpy(fill, poff, g->n * sizeof(*fill));
    for (size_t i = 0; i < m; i++)
      pidx[fill[g->edges[i].child]++] = g->edges[i].parent;
    free(fill);
  }
  rc = graph__find_cycle(g, coff, cidx, err, errlen);
  if (rc != 0)
    goto fail;
  g->child_off = coff;
  g->child_idx = cidx;
  g->parent_off = poff;
  g->parent_idx = pidx;
  free(g->edges);
  g->edges = NULL;
  g->nedges = g->capedges = 0;
  g->valid = 1;
  return 0;
fail:
  free(coff);
  free(poff);
  free(cidx);
  free(pidx);
  return rc;
}

/* ------------------------------------------------------------ expansion */

struct graph_exp_s {
  graph_t *g;
  graph_lister_t lister;
  unsigned limit;
  unsigned inflight;
  uint32_t cursor; /* nodes below it were listed or skipped */
  int pumping;
  int status;
  char errmsg[512];
  graph_expand_cb cb;
  void *data;
};

typedef struct graph_list_req_s {
  graph_exp_t *exp;
  uint32_t index;
} graph_list_req_t;

static void graph__exp_pump(graph_exp_t *x);

static void graph__exp_fail(graph_exp_t *x, int status) {
  if (x->status == 0)
    x->status = status;
}

static void graph__list_done(void *done_data, int status,
                             const graph_child_t *children, size_t n,
                             const char *errmsg) {
  graph_list_req_t *req = done_data;
  graph_exp_t *x = req->exp;
  graph_t *g = x->g;
  uint32_t parent = req->index;
  free(req);
  x->inflight--;
  if (status != 0) {
    if (x->status == 0) {
      const graph_node_t *nd = &g->nodes[parent];
      snprintf(x->errmsg, sizeof(x->errmsg),
               "listing dependents of %s#%s failed: %s", nd->type, nd->id,
               errmsg && errmsg[0] ? errmsg : uv_strerror(status));
    }
    graph__exp_fail(x, status);
  }
  for (size_t i = 0; i < n && status == 0 && x->status == 0; i++) {
    uint32_t c;
    int rc = graph_add_node(g, children[i].type, children[i].id,
                            children[i].name, children[i].extra, &c, NULL,
                            x->errmsg, sizeof(x->errmsg));
    if (rc == 0)
      rc = graph_add_edge(g, parent, c);
    if (rc != 0) {
      if (rc == UV_ENOMEM)
        snprintf(x->errmsg, sizeof(x->errmsg), "out of memory");
      graph__exp_fail(x, rc);
    }
  }
  graph__exp_pump(x);
}

static void graph__exp_pump(graph_exp_t *x) {
  if (x->pumping)
    return;
  x->pumping = 1;
  graph_t *g = x->g;
  while (x->status == 0 && x->cursor < g->n &&
         (x->limit == 0 || x->inflight < x->limit)) {
    uint32_t i = x->cursor++;
    if (g->expanded[i])
      continue;
    g->expanded[i] = 1;
    graph_list_req_t *req = malloc(sizeof(*req));
    if (req == NULL) {
      snprintf(x->errmsg, sizeof(x->errmsg), "out of memory");
      graph__exp_fail(x, UV_ENOMEM);
      break;
    }
    req->exp = x;
    req->index = i;
    x->inflight++;
    int rc =
        x->lister.list(x->lister.data, i, &g->nodes[i], graph__list_done, req);
    if (rc != 0) {
      x->inflight--;
      free(req);
      if (x->status == 0)
        snprintf(x->errmsg, sizeof(x->errmsg),
                 "listing dependents of %s#%s failed: %s", g->nodes[i].type,
                 g->nodes[i].id, uv_strerror(rc));
      graph__exp_fail(x, rc);
    }
  }
  x->pumping = 0;
  if (x->inflight == 0 && (x->status != 0 || x->cursor >= g->n)) {
    g->exp = NULL;
    x->cb(g, x->status, x->status ? x->errmsg : NULL, x->data);
    free(x);
  }
}

int graph_expand(graph_t *g, const graph_lister_t *lister, unsigned limit,
                 graph_expand_cb cb, void *data) {
  if (g->valid || g->exp != NULL)
    return UV_EBUSY;
  if (g->n == 0)
    return GRAPH_EEMPTY;
  uint32_t todo = 0;
  while (todo < g->n && g->expanded[todo])
    todo++;
  if (todo == g->n)
    return UV_EALREADY;
  graph_exp_t *x = calloc(1, sizeof(*x));
  if (x == NULL)
    return UV_ENOMEM;
  x->g = g;
  x->lister = *lister;
  x->limit = limit;
  x->cb = cb;
  x->data = data;
  x->cursor = todo;
  g->exp = x;
  graph__exp_pump(x);
  return 0;
}
