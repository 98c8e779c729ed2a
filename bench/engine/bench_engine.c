/*
 * bench_engine.c - smaug-bench-engine: cost of the task-flow engine.
 *
 * Builds a resource tree (project -> servers -> volumes -> ...; `--depth`
 * levels, `--fanout` children per node), turns it into the task DAG and
 * runs it with an in-process runner on one libuv loop, as smaugd would.
 *
 * Without --sleep-ms the runner is a no-op: it completes every call on the
 * next loop turn (in batches), so the figures are the engine's own cost:
 * graph + DAG build time, run time, per-task overhead and peak RSS. With
 * --sleep-ms each call sleeps that long on a libuv timer (checked against
 * real time, so never shorter), and the makespan is compared with the critical
 * path (the longest chain of activities, (depth + 1) * sleep for a tree).
 *
 * Each mode prints a table and ends with one machine-readable RESULT line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#include "exec.h"

typedef struct bench_s {
  uv_loop_t loop;
  uint32_t resources, depth, fanout, sleep_ms;
  /* no-op runner: calls to complete on the next turn */
  exec_activity_t **batch;
  size_t nbatch, capbatch;
  uv_idle_t idle;
  uint64_t events;
  int done;
  uint64_t t_end;
} bench_t;

static double ms_f(uint64_t t0, uint64_t t1) {
  return (double)(t1 - t0) / 1e6;
}

static long peak_rss_kib(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss; /* KiB on Linux */
}

static long cur_rss_kib(void) {
  long pages = 0, rss = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f != NULL) {
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
      rss = 0;
    fclose(f);
  }
  return rss * 4;
}

/* ------------------------------------------------------------ runners */

static void noop_flush(uv_idle_t *idle) {
  bench_t *b = idle->data;
  /* Completing may start more calls, which land in a fresh batch. */
  exec_activity_t **cur = b->batch;
  size_t n = b->nbatch;
  b->batch = NULL;
  b->nbatch = b->capbatch = 0;
  for (size_t i = 0; i < n; i++)
    exec_activity_complete(cur[i], NULL);
  free(cur);
  if (b->nbatch == 0)
    uv_idle_stop(idle);
}

static int noop_start(void *rdata, exec_activity_t *a) {
  bench_t *b = rdata;
  if (b->nbatch == b->capbatch) {
    size_t cap = b->capbatch ? b->capbatch * 2 : 1024;
    exec_activity_t **p = realloc(b->batch, cap * sizeof(*p));
    if (p == NULL)
      return UV_ENOMEM;
    b->batch = p;
    b->capbatch = cap;
  }
  b->batch[b->nbatch++] = a;
  if (!uv_is_active((uv_handle_t *)&b->idle))
    uv_idle_start(&b->idle, noop_flush);
  return 0;
}

typedef struct sleep_call_s {
  uv_timer_t timer;
  exec_activity_t *a;
  uint64_t due_ns; /* real time */
} sleep_call_t;

static void sleep_closed(uv_handle_t *h) {
  free(h->data);
}

static void sleep_fire(uv_timer_t *t) {
  sleep_call_t *c = t->data;
  uint64_t now = uv_hrtime();
  if (now < c->due_ns) {
    /* libuv timers have 1 ms resolution against a cached loop time, so a
     * sleep is a timer for the whole milliseconds minus one, then loop
     * turns until the real due time: precise to a few microseconds. */
    uint64_t rest_ms = (c->due_ns - now) / 1000000;
    uv_timer_start(t, sleep_fire, rest_ms > 1 ? rest_ms - 1 : 0, 0);
    return;
  }
  exec_activity_complete(c->a, NULL);
  uv_close((uv_handle_t *)t, sleep_closed);
}

static int sleep_start(void *rdata, exec_activity_t *a) {
  bench_t *b = rdata;
  sleep_call_t *c = malloc(sizeof(*c));
  if (c == NULL)
    return UV_ENOMEM;
  c->a = a;
  /* The call starts now, not when the loop turn began: a timer counts from
   * the loop's cached time, and the loop sleeps until the first timer
   * against that same clock, so without this a call started late in a
   * long turn (the executor dispatching a whole level) would wake up that
   * much late. */
  uv_update_time(&b->loop);
  c->due_ns = uv_hrtime() + (uint64_t)b->sleep_ms * 1000000;
  uv_timer_init(&b->loop, &c->timer);
  c->timer.data = c;
  uv_timer_start(&c->timer, sleep_fire, b->sleep_ms > 1 ? b->sleep_ms - 1 : 0,
                 0);
  return 0;
}

static void count_event(const exec_event_t *ev, void *data) {
  bench_t *b = data;
  b->events++;
}

static void on_done(exec_op_t *op, exec_outcome_t outcome, void *data) {
  bench_t *b = data;
  b->t_end = uv_hrtime();
  b->done = outcome == EXEC_SUCCEEDED ? 1 : -1;
}

/* ------------------------------------------------------------- graph */

/* A tree of `n` nodes in `depth` levels whose sizes grow by `fanout`.
 * Children always have larger indices than their parent. */
static int build_graph(const bench_t *b, graph_t **out) {
  static const char *types[] = {"smaug.project", "smaug.server", "smaug.volume",
                                "smaug.block"};
  uint32_t n = b->resources, depth = b->depth ? b->depth : 1;
  if (depth > n)
    depth = n;
  uint32_t *size = calloc(depth, sizeof(*size));
  double w = 1, total = 0;
  for (uint32_t k = 0; k < depth; k++, w *= b->fanout)
    total += w;
  uint32_t sum = 0;
  w = 1;
  for (uint32_t k = 0; k < depth; k++, w *= b->fanout) {
    size[k] = (uint32_t)((double)n * w / total);
    if (size[k] == 0)
      size[k] = 1;
    sum += size[k];
  }
  size[depth - 1] += n - sum; /* rounding goes to the leaves */
  graph_t *g;
  int rc = graph_new(&g);
  if (rc != 0)
    return rc;
  graph_set_max_nodes(g, n);
  char id[24];
  uint32_t idx = 0, prev_start = 0, prev_size = 0;
  for (uint32_t k = 0; k < depth && rc == 0; k++) {
    uint32_t start = idx;
    for (uint32_t i = 0; i < size[k] && rc == 0; i++, idx++) {
      snprintf(id, sizeof(id), "r%u", idx);
      uint32_t node;
      rc = graph_add_node(g, types[k < 3 ? k : 3], id, NULL, NULL, &node, NULL,
                          NULL, 0);
      if (rc == 0 && k > 0)
        rc = graph_add_edge(g, prev_start + i % prev_size, node);
    }
    prev_start = start;
    prev_size = size[k];
  }
  free(size);
  char err[256];
  if (rc == 0)
    rc = graph_validate(g, NULL, NULL, err, sizeof(err));
  if (rc != 0) {
    fprintf(stderr, "graph: %s\n", uv_strerror(rc));
    graph_free(g);
    return rc;
  }
  *out = g;
  return 0;
}

/* Longest chain of calls, each costing `cost` ms (no-op tasks cost 0). */
static uint64_t critical_path(const dag_t *d, uint32_t cost) {
  const graph_t *g = dag_graph(d);
  uint32_t n = graph_count(g);
  uint64_t *fin = calloc(n, sizeof(*fin)), best = 0;
  for (uint32_t i = n; i-- > 0;) { /* children come after parents */
    uint64_t p = dag_task_noop(d, dag_task(i, DAG_PARALLEL)) ? 0 : cost;
    uint64_t start = p;
    uint32_t nc;
    const uint32_t *c = graph_children(g, i, &nc);
    for (uint32_t k = 0; k < nc; k++)
      if (fin[c[k]] > start)
        start = fin[c[k]];
    fin[i] = start + (dag_task_noop(d, dag_task(i, DAG_SYNC)) ? 0 : cost);
    if (fin[i] > best)
      best = fin[i];
  }
  free(fin);
  return best;
}

static void usage(void) {
  fprintf(stderr, "usage: smaug-bench-engine [--resources N] [--depth D] "
                  "[--fanout F] [--sleep-ms MS]\n");
  exit(2);
}

int main(int argc, char **argv) {
  bench_t b;
  memset(&b, 0, sizeof(b));
  b.resources = 100000;
  b.depth = 3;
  b.fanout = 10;
  for (int i = 1; i < argc; i++) {
    if (i + 1 >= argc)
      usage();
    long v = strtol(argv[i + 1], NULL, 10);
    if (v < 0)
      usage();
    if (strcmp(argv[i], "--resources") == 0)
      b.resources = (uint32_t)v;
    else if (strcmp(argv[i], "--depth") == 0)
      b.depth = (uint32_t)v;
    else if (strcmp(argv[i], "--fanout") == 0)
      b.fanout = (uint32_t)v;
    else if (strcmp(argv[i], "--sleep-ms") == 0)
      b.sleep_ms = (uint32_t)v;
    else
      usage();
    i++;
  }
  if (b.resources == 0 || b.fanout == 0)
    usage();

  long rss0 = cur_rss_kib();
  uv_loop_init(&b.loop);
  uv_idle_init(&b.loop, &b.idle);
  b.idle.data = &b;

  uint64_t t0 = uv_hrtime();
  graph_t *g;
  dag_t *d;
  if (build_graph(&b, &g) != 0 ||
      dag_new(g, DAG_OP_PROTECT, NULL, NULL, &d) != 0)
    return 1;
  uint64_t t1 = uv_hrtime();

  exec_runner_t runner = {b.sleep_ms ? sleep_start : noop_start, NULL, NULL};
  exec_op_t *op;
  int rc = exec_op_new(&b.loop, d, "bench", NULL, &runner, &b, &op);
  if (rc == 0) {
    exec_op_set_event_cb(op, count_event, &b);
    rc = exec_op_start(op, on_done, &b);
  }
  if (rc != 0) {
    fprintf(stderr, "exec: %s\n", uv_strerror(rc));
    return 1;
  }
  uv_run(&b.loop, UV_RUN_DEFAULT);
  if (b.done != 1) {
    fprintf(stderr, "run did not succeed\n");
    return 1;
  }
  uint64_t t2 = b.t_end;
  long peak = peak_rss_kib();
  uint32_t tasks = dag_task_count(d);

  exec_op_free(op);
  uv_close((uv_handle_t *)&b.idle, NULL);
  uv_run(&b.loop, UV_RUN_DEFAULT);
  uv_loop_close(&b.loop);
  uint64_t cp = critical_path(d, b.sleep_ms);
  dag_free(d);
  graph_free(g);
  free(b.batch);

  double build = ms_f(t0, t1), run = ms_f(t1, t2);
  printf("%-28s %12s\n", "figure", "value");
  printf("%-28s %12u\n", "resources", b.resources);
  printf("%-28s %12u\n", "tasks", tasks);
  printf("%-28s %12u\n", "depth", b.depth);
  printf("%-28s %12llu\n", "events", (unsigned long long)b.events);
  if (b.sleep_ms == 0) {
    double per = run * 1000.0 / tasks;
    double bytes = (double)(peak - rss0) * 1024.0 / tasks;
    printf("%-28s %12.1f\n", "build ms (graph+dag)", build);
    printf("%-28s %12.1f\n", "run ms", run);
    printf("%-28s %12.1f\n", "total ms", build + run);
    printf("%-28s %12.3f\n", "overhead us/task", per);
    printf("%-28s %12ld\n", "peak RSS KiB", peak);
    printf("%-28s %12.0f\n", "peak bytes/task (over base)", bytes);
    printf("RESULT resources=%u tasks=%u build_ms=%.1f run_ms=%.1f "
           "overhead_us_per_task=%.3f peak_rss_kib=%ld\n",
           b.resources, tasks, build, run, per, peak);
  } else {
    printf("%-28s %12u\n", "sleep ms per activity", b.sleep_ms);
    printf("%-28s %12.1f\n", "makespan ms", run);
    printf("%-28s %12llu\n", "critical path ms", (unsigned long long)cp);
    printf("%-28s %12.3f\n", "ratio", run / (double)cp);
    printf("RESULT resources=%u tasks=%u makespan_ms=%.1f "
           "critical_path_ms=%llu ratio=%.3f\n",
           b.resources, tasks, run, (unsigned long long)cp, run / (double)cp);
  }
  return 0;
}
