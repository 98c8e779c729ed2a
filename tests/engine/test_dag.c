/*
 * test_dag.c - DAG construction from the seed example, and its exports.
 *
 * The seed example is project p1 -> server s1 -> {volume v1, volume v2,
 * image i1}, protected with this capability set (a realistic one):
 *   smaug.project  P no-op  S yes  (records the project from its children)
 *   smaug.server   P yes    S yes  (config snapshot; then binds children)
 *   smaug.volume   P yes    S no-op (copies data in P, nothing to finish)
 *   smaug.image    P no-op  S yes  (one quick synchronous upload)
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "dag.h"
#include "engine_fixture.h"

static int seed_caps(void *data, const char *type, dag_op_t op,
                     dag_activity_t act) {
  (void)data;
  cr_assert_eq(op, DAG_OP_PROTECT);
  if (strcmp(type, "smaug.project") == 0)
    return act == DAG_SYNC;
  if (strcmp(type, "smaug.volume") == 0)
    return act == DAG_PARALLEL;
  if (strcmp(type, "smaug.image") == 0)
    return act == DAG_SYNC;
  return 1;
}

Test(dag, seed_example_tasks_and_edges, .timeout = 5) {
  graph_t *g = fx_seed_graph();
  dag_t *d;
  cr_assert_eq(dag_new(g, DAG_OP_PROTECT, seed_caps, NULL, &d), 0);
  dag_export_t x;
  cr_assert_eq(dag_export(d, &x), 0);

  const char *ids[] = {"P:smaug.project#p1", "S:smaug.project#p1",
                       "P:smaug.server#s1",  "S:smaug.server#s1",
                       "P:smaug.volume#v1",  "S:smaug.volume#v1",
                       "P:smaug.volume#v2",  "S:smaug.volume#v2",
                       "P:smaug.image#i1",   "S:smaug.image#i1"};
  const int noop[] = {1, 0, 0, 0, 0, 1, 0, 1, 1, 0};
  cr_assert_eq(x.n_nodes, 10);
  for (int t = 0; t < 10; t++) {
    cr_assert_str_eq(x.nodes[t].id, ids[t]);
    cr_assert_eq(x.nodes[t].noop, noop[t], "%s", ids[t]);
    cr_assert_eq(dag_task_noop(d, (uint32_t)t), noop[t]);
  }
  /* 5 blue edges (P->S) and 4 red edges (S child -> S parent). */
  struct {
    const char *from, *to;
    dag_edge_kind_t kind;
  } want[] = {
      {"P:smaug.project#p1", "S:smaug.project#p1", DAG_EDGE_PARALLEL_TO_SYNC},
      {"S:smaug.server#s1", "S:smaug.project#p1", DAG_EDGE_CHILD_TO_PARENT},
      {"P:smaug.server#s1", "S:smaug.server#s1", DAG_EDGE_PARALLEL_TO_SYNC},
      {"S:smaug.volume#v1", "S:smaug.server#s1", DAG_EDGE_CHILD_TO_PARENT},
      {"S:smaug.volume#v2", "S:smaug.server#s1", DAG_EDGE_CHILD_TO_PARENT},
      {"S:smaug.image#i1", "S:smaug.server#s1", DAG_EDGE_CHILD_TO_PARENT},
      {"P:smaug.volume#v1", "S:smaug.volume#v1", DAG_EDGE_PARALLEL_TO_SYNC},
      {"P:smaug.volume#v2", "S:smaug.volume#v2", DAG_EDGE_PARALLEL_TO_SYNC},
      {"P:smaug.image#i1", "S:smaug.image#i1", DAG_EDGE_PARALLEL_TO_SYNC},
  };
  cr_assert_eq(x.n_edges, 9);
  for (int e = 0; e < 9; e++) {
    cr_assert_str_eq(x.nodes[x.edges[e].from].id, want[e].from, "edge %d", e);
    cr_assert_str_eq(x.nodes[x.edges[e].to].id, want[e].to, "edge %d", e);
    cr_assert_eq(x.edges[e].kind, want[e].kind, "edge %d", e);
  }
  cr_assert_eq(dag_task_ndeps(d, dag_task(1, DAG_SYNC)), 4);
  cr_assert_eq(dag_task_ndeps(d, dag_task(1, DAG_PARALLEL)), 0);
  dag_export_free(&x);
  dag_free(d);
  graph_free(g);
}

Test(dag, seed_example_dot, .timeout = 5) {
  graph_t *g = fx_seed_graph();
  dag_t *d;
  cr_assert_eq(dag_new(g, DAG_OP_PROTECT, seed_caps, NULL, &d), 0);
  char *dot;
  cr_assert_eq(dag_to_dot(d, &dot), 0);
  const char *want =
      "digraph flow {\n"
      "  rankdir=LR;\n"
      "  node [shape=box];\n"
      "  \"P:smaug.project#p1\" [style=dashed];\n"
      "  \"S:smaug.project#p1\";\n"
      "  \"P:smaug.server#s1\";\n"
      "  \"S:smaug.server#s1\";\n"
      "  \"P:smaug.volume#v1\";\n"
      "  \"S:smaug.volume#v1\" [style=dashed];\n"
      "  \"P:smaug.volume#v2\";\n"
      "  \"S:smaug.volume#v2\" [style=dashed];\n"
      "  \"P:smaug.image#i1\" [style=dashed];\n"
      "  \"S:smaug.image#i1\";\n"
      "  \"P:smaug.project#p1\" -> \"S:smaug.project#p1\" [color=blue];\n"
      "  \"S:smaug.server#s1\" -> \"S:smaug.project#p1\" [color=red];\n"
      "  \"P:smaug.server#s1\" -> \"S:smaug.server#s1\" [color=blue];\n"
      "  \"S:smaug.volume#v1\" -> \"S:smaug.server#s1\" [color=red];\n"
      "  \"S:smaug.volume#v2\" -> \"S:smaug.server#s1\" [color=red];\n"
      "  \"S:smaug.image#i1\" -> \"S:smaug.server#s1\" [color=red];\n"
      "  \"P:smaug.volume#v1\" -> \"S:smaug.volume#v1\" [color=blue];\n"
      "  \"P:smaug.volume#v2\" -> \"S:smaug.volume#v2\" [color=blue];\n"
      "  \"P:smaug.image#i1\" -> \"S:smaug.image#i1\" [color=blue];\n"
      "}\n";
  cr_assert_str_eq(dot, want);
  free(dot);
  dag_free(d);
  graph_free(g);
}

Test(dag, dot_escapes_quotes_in_ids, .timeout = 5) {
  graph_t *g;
  graph_new(&g);
  graph_add_node(g, "t", "a\"b", NULL, NULL, NULL, NULL, NULL, 0);
  graph_validate(g, NULL, NULL, NULL, 0);
  dag_t *d;
  cr_assert_eq(dag_new(g, DAG_OP_RESTORE, NULL, NULL, &d), 0);
  char *dot;
  cr_assert_eq(dag_to_dot(d, &dot), 0);
  cr_assert(strstr(dot, "\"P:t#a\\\"b\" -> \"S:t#a\\\"b\" [color=blue]"), "%s",
            dot);
  free(dot);
  dag_free(d);
  graph_free(g);
}

Test(dag, unvalidated_graph_is_einval, .timeout = 5) {
  graph_t *g;
  graph_new(&g);
  graph_add_node(g, "t", "a", NULL, NULL, NULL, NULL, NULL, 0);
  dag_t *d;
  cr_assert_eq(dag_new(g, DAG_OP_PROTECT, NULL, NULL, &d), UV_EINVAL);
  graph_free(g);
}

/* Every id dag_task_id() writes parses back to its own task, an id with
 * '#' and ':' in it included. */
Test(dag, task_parse_round_trips, .timeout = 5) {
  graph_t *g;
  graph_new(&g);
  graph_add_node(g, "t", "a#b:c", NULL, NULL, NULL, NULL, NULL, 0);
  graph_add_node(g, "u.v", "x", NULL, NULL, NULL, NULL, NULL, 0);
  cr_assert_eq(graph_validate(g, NULL, NULL, NULL, 0), 0);
  dag_t *d;
  cr_assert_eq(dag_new(g, DAG_OP_PROTECT, NULL, NULL, &d), 0);
  for (uint32_t t = 0; t < dag_task_count(d); t++) {
    char id[64];
    dag_task_id(d, t, id, sizeof(id));
    uint32_t got = 99;
    cr_assert_eq(dag_task_parse(d, id, &got), 0, "%s", id);
    cr_expect_eq(got, t, "%s", id);
  }
  uint32_t got;
  cr_expect_eq(dag_task_find(d, DAG_SYNC, "u.v", "x", &got), 0);
  cr_expect_eq(got, 3);
  dag_free(d);
  graph_free(g);
}

/* Malformed ids are UV_EINVAL, well-formed ones naming nothing in the
 * graph UV_ENOENT; `*out` is untouched on failure. An id far longer than
 * any buffer is read, never copied into a fixed one. */
Test(dag, task_parse_refuses_hostile_ids, .timeout = 5) {
  graph_t *g;
  graph_new(&g);
  graph_add_node(g, "t", "a", NULL, NULL, NULL, NULL, NULL, 0);
  cr_assert_eq(graph_validate(g, NULL, NULL, NULL, 0), 0);
  dag_t *d;
  cr_assert_eq(dag_new(g, DAG_OP_PROTECT, NULL, NULL, &d), 0);
  const char *bad[] = {"",       "P",        "P:",    "P:t",  "P:t#",
                       "P:#a",   "X:t#a",    "p:t#a", "Pt#a", "P;t#a",
                       "PS:t#a", "\xff:t#a", "S#t:a"};
  uint32_t got = 77;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    cr_expect_eq(dag_task_parse(d, bad[i], &got), UV_EINVAL, "\"%s\"", bad[i]);
  cr_expect_eq(dag_task_parse(d, NULL, &got), UV_EINVAL);
  cr_expect_eq(dag_task_parse(d, "S:t#b", &got), UV_ENOENT);
  cr_expect_eq(dag_task_parse(d, "S:t#a#", &got), UV_ENOENT);
  cr_expect_eq(dag_task_parse(d, "S:tt#a", &got), UV_ENOENT);
  cr_expect_eq(dag_task_find(d, (dag_activity_t)3, "t", "a", &got), UV_EINVAL);
  size_t n = 1 << 20;
  char *huge = malloc(n + 1);
  cr_assert_not_null(huge);
  memset(huge, 't', n);
  huge[0] = 'P';
  huge[1] = ':';
  huge[n / 2] = '#';
  huge[n] = '\0';
  cr_expect_eq(dag_task_parse(d, huge, &got), UV_ENOENT);
  free(huge);
  cr_expect_eq(got, 77);
  cr_expect_eq(dag_task_parse(d, "S:t#a", &got), 0);
  cr_expect_eq(got, 1);
  dag_free(d);
  graph_free(g);
}
