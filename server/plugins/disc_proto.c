/*
 * disc_proto.c - a resource graph in the protocol's terms (see
 * disc_proto.h): nodes as Resources, the whole graph as a checkpoint's
 * resources and edges.
 */
#include "disc_proto.h"

#include <stdlib.h>
#include <uv.h>

int disc_resource_of(const graph_node_t *n, Smaug__V1__Resource *out) {
  smaug__v1__resource__init(out);
  out->type = (char *)n->type;
  out->id = n->id;
  out->name = n->name;
  if (n->extra.n == 0)
    return 0;
  /* One block: the pointer array followed by the entries. */
  size_t k = n->extra.n;
  void *blk =
      malloc(k * (sizeof(void *) + sizeof(Smaug__V1__Resource__ExtraEntry)));
  if (blk == NULL)
    return UV_ENOMEM;
  Smaug__V1__Resource__ExtraEntry **ptrs = blk;
  Smaug__V1__Resource__ExtraEntry *ents = (void *)(ptrs + k);
  for (size_t j = 0; j < k; j++) {
    smaug__v1__resource__extra_entry__init(&ents[j]);
    ents[j].key = n->extra.items[j].key;
    ents[j].value = n->extra.items[j].val;
    ptrs[j] = &ents[j];
  }
  out->n_extra = k;
  out->extra = ptrs;
  return 0;
}

void disc_resource_free(Smaug__V1__Resource *r) {
  if (r == NULL)
    return;
  free(r->extra);
  r->extra = NULL;
  r->n_extra = 0;
}

int disc_to_proto(const graph_t *g, Smaug__V1__Checkpoint *cp) {
  uint32_t n = graph_count(g), ne = 0;
  for (uint32_t i = 0; i < n; i++) {
    uint32_t k;
    graph_children(g, i, &k);
    ne += k;
  }
  Smaug__V1__Resource *rs = calloc(n ? n : 1, sizeof(*rs));
  Smaug__V1__Resource **rp = calloc(n ? n : 1, sizeof(*rp));
  Smaug__V1__ResourceEdge *es = calloc(ne ? ne : 1, sizeof(*es));
  Smaug__V1__ResourceEdge **ep = calloc(ne ? ne : 1, sizeof(*ep));
  int err = rs && rp && es && ep ? 0 : UV_ENOMEM;
  uint32_t made = 0, e = 0;
  for (; made < n && err == 0; made++) {
    if ((err = disc_resource_of(graph_node(g, made), &rs[made])) != 0)
      break;
    rp[made] = &rs[made];
    uint32_t k;
    const uint32_t *kids = graph_children(g, made, &k);
    for (uint32_t j = 0; j < k; j++, e++) {
      const graph_node_t *c = graph_node(g, kids[j]);
      smaug__v1__resource_edge__init(&es[e]);
      es[e].parent_type = (char *)rs[made].type;
      es[e].parent_id = rs[made].id;
      es[e].child_type = (char *)c->type;
      es[e].child_id = c->id;
      ep[e] = &es[e];
    }
  }
  if (err) {
    for (uint32_t i = 0; i < made; i++)
      disc_resource_free(&rs[i]);
    free(rs);
    free(rp);
    free(es);
    free(ep);
    return err;
  }
  if (ne == 0) { /* keep the free rule simple: no empty blocks */
    free(es);
    free(ep);
    ep = NULL;
  }
  if (n == 0) {
    free(rs);
    free(rp);
    rp = NULL;
  }
  cp->n_resources = n;
  cp->resources = rp;
  cp->n_edges = ne;
  cp->edges = ep;
  return 0;
}

void disc_proto_free(Smaug__V1__Checkpoint *cp) {
  if (cp->resources) {
    /* rp[0] is the start of the resource block allocated above. */
    Smaug__V1__Resource *rs = cp->n_resources ? cp->resources[0] : NULL;
    for (size_t i = 0; i < cp->n_resources; i++)
      disc_resource_free(cp->resources[i]);
    free(rs);
    free(cp->resources);
  }
  if (cp->edges) {
    free(cp->n_edges ? cp->edges[0] : NULL);
    free(cp->edges);
  }
  cp->resources = NULL;
  cp->n_resources = 0;
  cp->edges = NULL;
  cp->n_edges = 0;
}
