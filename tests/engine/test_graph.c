/*
 * test_graph.c - resource graph: dedup, validation errors, expansion.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "graph.h"

static uint32_t add(graph_t *g, const char *type, const char *id) {
  uint32_t i;
  char err[256];
  cr_assert_eq(
      graph_add_node(g, type, id, id, NULL, &i, NULL, err, sizeof(err)), 0,
      "%s", err);
  return i;
}

Test(graph, shared_child_is_one_node_with_two_parents, .timeout = 5) {
  graph_t *g;
  cr_assert_eq(graph_new(&g), 0);
  uint32_t s1 = add(g, "smaug.server", "s1");
  uint32_t s2 = add(g, "smaug.server", "s2");
  uint32_t i1 = add(g, "smaug.image", "i1");
  int added = -1;
  uint32_t again;
  cr_assert_eq(
      graph_add_node(g, "smaug.image", "i1", "", NULL, &again, &added, NULL, 0),
      0);
  cr_assert_eq(again, i1);
  cr_assert_eq(added, 0);
  cr_assert_eq(graph_add_edge(g, s1, i1), 0);
  cr_assert_eq(graph_add_edge(g, s2, i1), 0);
  cr_assert_eq(graph_add_edge(g, s2, i1), 0); /* repeated edge merges */
  cr_assert_eq(graph_validate(g, NULL, NULL, NULL, 0), 0);
  cr_assert_eq(graph_count(g), 3);
  uint32_t np, nc;
  const uint32_t *p = graph_parents(g, i1, &np);
  cr_assert_eq(np, 2);
  cr_assert_eq(p[0], s1);
  cr_assert_eq(p[1], s2);
  graph_children(g, s2, &nc);
  cr_assert_eq(nc, 1);
  cr_assert_eq(graph_node(g, s1)->type, graph_node(g, s2)->type,
               "types are interned");
  graph_free(g);
}

Test(graph, cycle_error_names_the_whole_cycle, .timeout = 5) {
  graph_t *g;
  graph_new(&g);
  uint32_t p = add(g, "smaug.project", "p");
  uint32_t a = add(g, "smaug.server", "a");
  uint32_t b = add(g, "smaug.volume", "b");
  uint32_t c = add(g, "smaug.server", "c");
  graph_add_edge(g, p, a);
  graph_add_edge(g, a, b);
  graph_add_edge(g, b, c);
  graph_add_edge(g, c, a);
  char err[256];
  cr_assert_eq(graph_validate(g, NULL, NULL, err, sizeof(err)), GRAPH_ECYCLE);
  cr_assert_str_eq(err, "cycle: smaug.server#a -> smaug.volume#b -> "
                        "smaug.server#c -> smaug.server#a");
  cr_assert_not(graph_is_valid(g));
  graph_free(g);
}

Test(graph, self_edge_is_a_cycle, .timeout = 5) {
  graph_t *g;
  graph_new(&g);
  uint32_t a = add(g, "t", "a");
  graph_add_edge(g, a, a);
  char err[128];
  cr_assert_eq(graph_validate(g, NULL, NULL, err, sizeof(err)), GRAPH_ECYCLE);
  cr_assert_str_eq(err, "cycle: t#a -> t#a");
  graph_free(g);
}

Test(graph, deep_chain_validates_without_recursion, .timeout = 10) {
  graph_t *g;
  graph_new(&g);
  char id[32];
  uint32_t prev = 0;
  for (int i = 0; i < 200000; i++) {
    snprintf(id, sizeof(id), "n%d", i);
    uint32_t cur = add(g, "t", id);
    if (i > 0)
      cr_assert_eq(graph_add_edge(g, prev, cur), 0);
    prev = cur;
  }
  cr_assert_eq(graph_validate(g, NULL, NULL, NULL, 0), 0);
  graph_free(g);
}

Test(graph, conflicting_duplicate_names_the_resource, .timeout = 5) {
  graph_t *g;
  graph_new(&g);
  kv_t x;
  kv_init(&x);
  kv_set(&x, "path", "/a");
  char err[256];
  cr_assert_eq(graph_add_node(g, "smaug.volume", "v1", "data", &x, NULL, NULL,
                              err, sizeof(err)),
               0);
  cr_assert_eq(graph_add_node(g, "smaug.volume", "v1", "data", &x, NULL, NULL,
                              err, sizeof(err)),
               0, "identical data is a duplicate, not a conflict");
  kv_set(&x, "path", "/b");
  cr_assert_eq(graph_add_node(g, "smaug.volume", "v1", "data", &x, NULL, NULL,
                              err, sizeof(err)),
               GRAPH_ECONFLICT);
  cr_assert(strstr(err, "smaug.volume#v1") != NULL, "%s", err);
  cr_assert_eq(graph_add_node(g, "smaug.volume", "v1", "other", NULL, NULL,
                              NULL, err, sizeof(err)),
               GRAPH_ECONFLICT);
  cr_assert_eq(graph_count(g), 1);
  kv_free(&x);
  graph_free(g);
}

static int only_servers(void *data, const char *type) {
  (void)data;
  return strcmp(type, "smaug.server") == 0;
}

Test(graph, bare_reference_takes_later_data, .timeout = 5) {
  graph_t *g;
  graph_new(&g);
  kv_t x;
  kv_init(&x);
  kv_set(&x, "path", "/a");
  uint32_t a, b;
  cr_assert_eq(graph_add_node(g, "t", "v", NULL, NULL, &a, NULL, NULL, 0), 0);
  cr_assert_eq(graph_add_node(g, "t", "v", "vol", &x, &b, NULL, NULL, 0), 0);
  cr_assert_eq(a, b);
  cr_assert_str_eq(graph_node(g, a)->name, "vol");
  cr_assert_str_eq(kv_get(&graph_node(g, a)->extra, "path"), "/a");
  kv_free(&x);
  graph_free(g);
}

Test(graph, type_without_plugin_names_a_resource, .timeout = 5) {
  graph_t *g;
  graph_new(&g);
  uint32_t s = add(g, "smaug.server", "s1");
  uint32_t v = add(g, "smaug.volume", "v9");
  graph_add_edge(g, s, v);
  char err[256];
  cr_assert_eq(graph_validate(g, only_servers, NULL, err, sizeof(err)),
               GRAPH_ENOPLUGIN);
  cr_assert_str_eq(err, "no plugin for resource type: smaug.volume#v9");
  graph_free(g);
}

Test(graph, empty_plan_is_rejected, .timeout = 5) {
  graph_t *g;
  graph_new(&g);
  char err[128];
  cr_assert_eq(graph_validate(g, NULL, NULL, err, sizeof(err)), GRAPH_EEMPTY);
  cr_assert_str_eq(err, "the plan has no resources");
  graph_free(g);
}

Test(graph, oversized_graph_names_the_limit, .timeout = 5) {
  graph_t *g;
  graph_new(&g);
  graph_set_max_nodes(g, 2);
  add(g, "t", "a");
  add(g, "t", "b");
  char err[256];
  cr_assert_eq(
      graph_add_node(g, "t", "c", NULL, NULL, NULL, NULL, err, sizeof(err)),
      GRAPH_ETOOBIG);
  cr_assert(strstr(err, "t#c") && strstr(err, "limit of 2"), "%s", err);
  graph_free(g);
}

Test(graph, edge_to_unknown_resource_is_enoent, .timeout = 5) {
  graph_t *g;
  graph_new(&g);
  add(g, "t", "a");
  char err[256];
  cr_assert_eq(graph_add_edge_by_key(g, "t", "a", "t", "zz", err, sizeof(err)),
               UV_ENOENT);
  cr_assert(strstr(err, "t#zz") != NULL, "%s", err);
  graph_free(g);
}

/* --------------------------------------------------------- expansion */

/* A lister whose answers are held until the test releases them, so that
 * the number of calls in flight can be observed. Children of "t#x" are
 * "t#x0".."t#x<fanout-1>" while the id is shorter than `depth`. */
typedef struct pending_s {
  uint32_t index;
  char id[32];
  graph_list_done_cb done;
  void *done_data;
} pending_t;

typedef struct fake_lister_s {
  pending_t q[64];
  int n;
  int inflight;
  int max_inflight;
  int calls;
  int fanout;
  size_t depth;
  const char *fail_id; /* answer this one with UV_EIO */
} fake_lister_t;

static int fake_list(void *data, uint32_t index, const graph_node_t *node,
                     graph_list_done_cb done, void *done_data) {
  fake_lister_t *f = data;
  cr_assert_lt(f->n, 64);
  pending_t *p = &f->q[f->n++];
  p->index = index;
  snprintf(p->id, sizeof(p->id), "%s", node->id);
  p->done = done;
  p->done_data = done_data;
  f->calls++;
  if (++f->inflight > f->max_inflight)
    f->max_inflight = f->inflight;
  return 0;
}

/* Answers the oldest pending call. */
static void fake_release(fake_lister_t *f) {
  pending_t p = f->q[0];
  memmove(&f->q[0], &f->q[1], (size_t)(f->n - 1) * sizeof(f->q[0]));
  f->n--;
  f->inflight--;
  if (f->fail_id && strcmp(p.id, f->fail_id) == 0) {
    p.done(p.done_data, UV_EIO, NULL, 0, "backend down");
    return;
  }
  graph_child_t kids[8];
  char ids[8][48];
  size_t n = 0;
  if (strlen(p.id) < f->depth)
    for (int k = 0; k < f->fanout; k++, n++) {
      snprintf(ids[n], sizeof(ids[n]), "%s%d", p.id, k);
      kids[n] = (graph_child_t){"t", ids[n], NULL, NULL};
    }
  /* Every "t" node also has the shared child "u#shared". */
  if (strcmp(p.id, "shared") != 0)
    kids[n++] = (graph_child_t){"u", "shared", NULL, NULL};
  p.done(p.done_data, 0, kids, n, NULL);
}

typedef struct expand_result_s {
  int calls;
  int status;
  char err[256];
} expand_result_t;

static void on_expanded(graph_t *g, int status, const char *errmsg,
                        void *data) {
  expand_result_t *r = data;
  r->calls++;
  r->status = status;
  snprintf(r->err, sizeof(r->err), "%s", errmsg ? errmsg : "");
}

Test(graph_expand, lists_every_node_once_under_the_limit, .timeout = 5) {
  graph_t *g;
  graph_new(&g);
  add(g, "t", "r");
  fake_lister_t f = {.fanout = 3, .depth = 3};
  graph_lister_t lister = {fake_list, &f};
  expand_result_t res = {0};
  cr_assert_eq(graph_expand(g, &lister, 2, on_expanded, &res), 0);
  while (f.n > 0)
    fake_release(&f);
  cr_assert_eq(res.calls, 1);
  cr_assert_eq(res.status, 0);
  /* r, 3 children, 9 grandchildren, plus the shared node. */
  cr_assert_eq(graph_count(g), 1 + 3 + 9 + 1);
  cr_assert_eq(f.calls, 14, "each node listed once");
  cr_assert_eq(f.max_inflight, 2);
  cr_assert_eq(graph_validate(g, NULL, NULL, NULL, 0), 0);
  uint32_t np;
  graph_parents(g, (uint32_t)graph_find(g, "u", "shared"), &np);
  cr_assert_eq(np, 13);
  graph_free(g);
}

Test(graph_expand, lister_error_stops_and_reports_the_node, .timeout = 5) {
  graph_t *g;
  graph_new(&g);
  add(g, "t", "r");
  fake_lister_t f = {.fanout = 2, .depth = 3, .fail_id = "r1"};
  graph_lister_t lister = {fake_list, &f};
  expand_result_t res = {0};
  cr_assert_eq(graph_expand(g, &lister, 0, on_expanded, &res), 0);
  while (f.n > 0)
    fake_release(&f);
  cr_assert_eq(res.calls, 1);
  cr_assert_eq(res.status, UV_EIO);
  cr_assert_str_eq(res.err, "listing dependents of t#r1 failed: backend down");
  graph_free(g);
}

Test(graph_expand, size_limit_applies_during_expansion, .timeout = 5) {
  graph_t *g;
  graph_new(&g);
  graph_set_max_nodes(g, 5);
  add(g, "t", "r");
  fake_lister_t f = {.fanout = 3, .depth = 3};
  graph_lister_t lister = {fake_list, &f};
  expand_result_t res = {0};
  cr_assert_eq(graph_expand(g, &lister, 0, on_expanded, &res), 0);
  while (f.n > 0)
    fake_release(&f);
  cr_assert_eq(res.status, GRAPH_ETOOBIG);
  cr_assert(strstr(res.err, "limit of 5") != NULL, "%s", res.err);
  graph_free(g);
}

static int sync_list(void *data, uint32_t index, const graph_node_t *node,
                     graph_list_done_cb done, void *done_data) {
  int *calls = data;
  (*calls)++;
  done(done_data, 0, NULL, 0, NULL);
  return 0;
}

Test(graph_expand, synchronous_lister_and_nothing_left, .timeout = 5) {
  graph_t *g;
  graph_new(&g);
  add(g, "t", "a");
  add(g, "t", "b");
  int calls = 0;
  graph_lister_t lister = {sync_list, &calls};
  expand_result_t res = {0};
  cr_assert_eq(graph_expand(g, &lister, 1, on_expanded, &res), 0);
  cr_assert_eq(res.calls, 1);
  cr_assert_eq(calls, 2);
  cr_assert_eq(graph_expand(g, &lister, 1, on_expanded, &res), UV_EALREADY);
  cr_assert_eq(res.calls, 1);
  graph_free(g);
}
