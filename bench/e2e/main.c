/*
 * main.c - smaug-bench-e2e: end-to-end protect throughput of smaugd.
 *
 * It starts a no-op plugin (this same binary with --serve-plugin, written
 * directly on the runtime: every activity answers its result at once) and
 * smaugd on 127.0.0.1 with a fresh data directory, then:
 *   1. measures the floor: empty unary RPCs (health Check) to the plugin,
 *      64 in flight, for about two seconds;
 *   2. creates a plan of N resources (a tree with fan-out 16, listed with
 *      its edges, so no discovery) and protects it, watching the operation
 *      to its end; every P and S task is a real RPC;
 *   3. reads smaugd's peak RSS (VmHWM) before stopping it.
 * Last line:
 *   RESULT resources=N tasks=T wall_ms=X tasks_per_s=Y rpc_floor_per_s=Z
 *          ratio=R peak_rss_kib=M
 */
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "grpc/health/v1/health.smaug.h"
#include "rt.h"
#include "rt_log.h"
#include "smaug/v1/orchestrator.smaug.h"
#include "smaug/v1/plugin.smaug.h"

/* ------------------------------------------------------ no-op plugin */

static void p_info(rt_call_t *call, const Smaug__V1__GetPluginInfoRequest *req,
                   void *data) {
  Smaug__V1__OperationSupport os[3], *osp[3];
  for (int k = 0; k < 3; k++) {
    smaug__v1__operation_support__init(&os[k]);
    os[k].kind = (Smaug__V1__OperationKind)(k + 1);
    os[k].parallel = os[k].sync = 1;
    osp[k] = &os[k];
  }
  Smaug__V1__ResourceTypeInfo ti = SMAUG__V1__RESOURCE_TYPE_INFO__INIT,
                              *tp = &ti;
  ti.type = "b.node";
  ti.n_operations = 3;
  ti.operations = osp;
  Smaug__V1__GetPluginInfoResponse r =
      SMAUG__V1__GET_PLUGIN_INFO_RESPONSE__INIT;
  r.name = "bench-noop";
  r.version = "1";
  r.protocol_major = 1;
  r.n_types = 1;
  r.types = &tp;
  rt_call_reply(call, &r.base);
}

static void p_parallel(rt_call_t *call, const Smaug__V1__ActivityRequest *req,
                       void *data) {
  Smaug__V1__ParallelResult res = SMAUG__V1__PARALLEL_RESULT__INIT;
  Smaug__V1__ParallelActivityResponse r =
      SMAUG__V1__PARALLEL_ACTIVITY_RESPONSE__INIT;
  r.event_case = SMAUG__V1__PARALLEL_ACTIVITY_RESPONSE__EVENT_RESULT;
  r.result = &res;
  rt_call_finish(call, GRPC_STATUS_OK, NULL, &r.base);
}

static void p_sync(rt_call_t *call, const Smaug__V1__ActivityRequest *req,
                   void *data) {
  Smaug__V1__SyncResult res = SMAUG__V1__SYNC_RESULT__INIT;
  Smaug__V1__SyncActivityResponse r = SMAUG__V1__SYNC_ACTIVITY_RESPONSE__INIT;
  r.event_case = SMAUG__V1__SYNC_ACTIVITY_RESPONSE__EVENT_RESULT;
  r.result = &res;
  rt_call_finish(call, GRPC_STATUS_OK, NULL, &r.base);
}

static void p_stopped(rt_server_t *srv, void *data) {}

static int serve_plugin(void) {
  static const smaug_v1_protection_plugin_handlers_t h = {
      .get_plugin_info = p_info,
      .parallel_activity = p_parallel,
      .sync_activity = p_sync};
  uv_loop_t *loop = uv_default_loop();
  rt_t *rt;
  rt_server_t *srv;
  int port;
  if (rt_new(loop, &rt) || rt_server_new(rt, NULL, &srv) ||
      smaug_v1_protection_plugin_register(srv, &h, NULL) ||
      rt_server_listen(srv, "127.0.0.1:0", &port) || rt_server_start(srv) ||
      rt_server_stop_on_signals(srv, p_stopped, NULL))
    return 1;
  rt_log(RT_LOG_INFO, "bench", "listening", "addr=127.0.0.1:%d", port);
  uv_run(loop, UV_RUN_DEFAULT);
  rt_server_free(srv);
  rt_free(rt);
  return 0;
}

/* ------------------------------------------------------------ process */

typedef struct proc_s {
  pid_t pid;
  char addr[128];
} proc_t;

static int spawn(proc_t *p, const char *log, char *const argv[]) {
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    dup2(fd, 1);
    close(fd);
    execv(argv[0], argv);
    _exit(127);
  }
  p->pid = pid;
  for (int i = 0; i < 2000; i++) {
    FILE *f = fopen(log, "r");
    char line[1024];
    while (f && fgets(line, sizeof(line), f)) {
      const char *m = strstr(line, "msg=listening addr=");
      if (m) {
        m += strlen("msg=listening addr=");
        snprintf(p->addr, sizeof(p->addr), "%.*s", (int)strcspn(m, " \n"), m);
        fclose(f);
        return 0;
      }
    }
    if (f)
      fclose(f);
    usleep(5000);
  }
  return -1;
}

static long peak_rss_kib(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  long kib = -1;
  while (f && fgets(line, sizeof(line), f))
    if (strncmp(line, "VmHWM:", 6) == 0)
      kib = strtol(line + 6, NULL, 10);
  if (f)
    fclose(f);
  return kib;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------ client */

static uv_loop_t loop;
static rt_t *rt;

typedef struct call_s {
  int done;
  int code;
  char msg[512];
  ProtobufCMessage *last;
  uint8_t *buf; /* the last message, packed: unpacked once at the end */
  size_t len;
  uint64_t n_msgs;
  const ProtobufCMessageDescriptor *out;
} call_t;

static void c_msg(rt_client_call_t *c, const ProtobufCMessage *m, void *data) {
  call_t *w = data;
  w->n_msgs++;
  if (w->out == NULL)
    return;
  size_t len = protobuf_c_message_get_packed_size(m);
  if (len > w->len || w->buf == NULL) {
    free(w->buf);
    w->buf = malloc(len ? len : 1);
  }
  w->len = len;
  protobuf_c_message_pack(m, w->buf);
}

static void c_done(rt_client_call_t *c, grpc_status_code code, const char *m,
                   void *data) {
  call_t *w = data;
  w->done = 1;
  w->code = code;
  snprintf(w->msg, sizeof(w->msg), "%s", m ? m : "");
}

static int call(rt_channel_t *ch, size_t idx, const ProtobufCMessage *req,
                call_t *w, int keep) {
  const rt_method_t *m = &smaug_v1_orchestrator_methods[idx];
  memset(w, 0, sizeof(*w));
  w->out = keep ? m->output : NULL;
  rt_call_opts_t o = {.timeout_ms = 3600000, .max_message_bytes = 256 << 20};
  if (rt_client_call_start(ch, m, req, &o, c_msg, c_done, w, NULL))
    return -1;
  while (!w->done)
    uv_run(&loop, UV_RUN_ONCE);
  if (w->buf) {
    w->last = protobuf_c_message_unpack(w->out, NULL, w->len, w->buf);
    free(w->buf);
    w->buf = NULL;
  }
  return w->code;
}

/* The floor: health Check calls with 64 in flight for ~2 s. */
typedef struct floor_s {
  rt_channel_t *ch;
  uint64_t done;
  int in_flight;
  double until;
} floor_t;

static void floor_start(floor_t *f);

static void floor_msg(rt_client_call_t *c, const ProtobufCMessage *m,
                      void *data) {}

static void floor_done(rt_client_call_t *c, grpc_status_code code,
                       const char *m, void *data) {
  floor_t *f = data;
  f->in_flight--;
  f->done += code == GRPC_STATUS_OK;
  if (now_s() < f->until)
    floor_start(f);
}

static void floor_start(floor_t *f) {
  Grpc__Health__V1__HealthCheckRequest req =
      GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  if (grpc_health_v1_health_check(f->ch, &req, NULL, floor_msg, floor_done, f,
                                  NULL) == 0)
    f->in_flight++;
}

static double measure_floor(const char *addr) {
  floor_t f = {0};
  rt_channel_get(rt, addr, &f.ch);
  /* warm up */
  f.until = now_s() + 0.3;
  for (int i = 0; i < 64; i++)
    floor_start(&f);
  while (f.in_flight)
    uv_run(&loop, UV_RUN_ONCE);
  f.done = 0;
  double t0 = now_s();
  f.until = t0 + 2.0;
  for (int i = 0; i < 64; i++)
    floor_start(&f);
  while (f.in_flight)
    uv_run(&loop, UV_RUN_ONCE);
  double rate = (double)f.done / (now_s() - t0);
  rt_channel_release(f.ch);
  return rate;
}

int main(int argc, char **argv) {
  static const struct option opts[] = {
      {"resources", required_argument, NULL, 'n'},
      {"serve-plugin", no_argument, NULL, 'p'},
      {"smaugd", required_argument, NULL, 's'},
      {"keep", no_argument, NULL, 'k'},
      {"stream", no_argument, NULL, 'S'},
      {NULL, 0, NULL, 0}};
  long n = 1000;
  int keep = 0, stream = 0;
  const char *smaugd = NULL;
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 'n':
      n = strtol(optarg, NULL, 10);
      break;
    case 'p':
      return serve_plugin();
    case 's':
      smaugd = optarg;
      break;
    case 'k':
      keep = 1;
      break;
    case 'S':
      stream = 1;
      break;
    default:
      fprintf(stderr, "usage: smaug-bench-e2e [--resources N] [--smaugd PATH] "
                      "[--keep] [--stream]\n");
      return 2;
    }
  }
  if (n < 1 || n > 1000000)
    return 2;
  char self[4096], sd[4200];
  ssize_t k = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (k <= 0)
    return 1;
  self[k] = '\0';
  if (smaugd == NULL) {
    snprintf(sd, sizeof(sd), "%.*s/smaugd", (int)(strrchr(self, '/') - self),
             self);
    smaugd = sd;
  }
  char dir[] = "/tmp/smaug-bench-e2e-XXXXXX";
  if (mkdtemp(dir) == NULL)
    return 1;
  char plog[128], slog[128], data[128];
  snprintf(plog, sizeof(plog), "%s/plugin.log", dir);
  snprintf(slog, sizeof(slog), "%s/smaugd.log", dir);
  snprintf(data, sizeof(data), "%s/data", dir);

  proc_t plug = {0}, sm = {0};
  char *pargv[] = {self, "--serve-plugin", NULL};
  if (spawn(&plug, plog, pargv) != 0) {
    fprintf(stderr, "bench: plugin did not start (%s)\n", plog);
    return 1;
  }
  char *sargv[] = {(char *)smaugd, "--listen", "127.0.0.1:0", "--data-dir",
                   data,           "--plugin", plug.addr,     NULL};
  if (spawn(&sm, slog, sargv) != 0) {
    fprintf(stderr, "bench: smaugd did not start (%s)\n", slog);
    kill(plug.pid, SIGTERM);
    return 1;
  }

  uv_loop_init(&loop);
  rt_new(&loop, &rt);
  double floor = measure_floor(plug.addr);

  rt_channel_t *ch;
  rt_channel_get(rt, sm.addr, &ch);
  call_t w;
  Smaug__V1__ListPluginsRequest lp = SMAUG__V1__LIST_PLUGINS_REQUEST__INIT;
  for (int i = 0; i < 500; i++) {
    call(ch, SMAUG_V1_ORCHESTRATOR_LIST_PLUGINS, &lp.base, &w, 1);
    size_t np =
        w.last ? ((Smaug__V1__ListPluginsResponse *)w.last)->n_plugins : 0;
    if (w.last)
      protobuf_c_message_free_unpacked(w.last, NULL);
    if (np)
      break;
    usleep(10000);
  }

  /* The plan: node 0 is the root; node i's parent is (i - 1) / 16. */
  Smaug__V1__Resource *res = calloc((size_t)n, sizeof(*res));
  Smaug__V1__Resource **rp = calloc((size_t)n, sizeof(*rp));
  Smaug__V1__ResourceEdge *ed = calloc((size_t)n, sizeof(*ed));
  Smaug__V1__ResourceEdge **ep = calloc((size_t)n, sizeof(*ep));
  char(*ids)[16] = calloc((size_t)n, 16);
  for (long i = 0; i < n; i++) {
    snprintf(ids[i], 16, "n%ld", i);
    smaug__v1__resource__init(&res[i]);
    res[i].type = "b.node";
    res[i].id = ids[i];
    rp[i] = &res[i];
  }
  for (long i = 1; i < n; i++) {
    smaug__v1__resource_edge__init(&ed[i - 1]);
    ed[i - 1].parent_type = ed[i - 1].child_type = "b.node";
    ed[i - 1].parent_id = ids[(i - 1) / 16];
    ed[i - 1].child_id = ids[i];
    ep[i - 1] = &ed[i - 1];
  }
  Smaug__V1__Plan plan = SMAUG__V1__PLAN__INIT;
  plan.name = "bench";
  plan.n_resources = (size_t)n;
  plan.resources = rp;
  plan.n_edges = (size_t)n - 1;
  plan.edges = ep;
  Smaug__V1__CreatePlanRequest cp = SMAUG__V1__CREATE_PLAN_REQUEST__INIT;
  cp.plan = &plan;
  int rc = 1;
  if (call(ch, SMAUG_V1_ORCHESTRATOR_CREATE_PLAN, &cp.base, &w, 1) != 0) {
    fprintf(stderr, "bench: CreatePlan: %s\n", w.msg);
    goto out;
  }
  Smaug__V1__CreatePlanResponse *cr = (void *)w.last;
  char plan_id[64];
  snprintf(plan_id, sizeof(plan_id), "%s", cr->plan->id);
  protobuf_c_message_free_unpacked(w.last, NULL);

  double t0 = now_s();
  Smaug__V1__ProtectRequest pr = SMAUG__V1__PROTECT_REQUEST__INIT;
  pr.plan_id = plan_id;
  if (call(ch, SMAUG_V1_ORCHESTRATOR_PROTECT, &pr.base, &w, 1) != 0) {
    fprintf(stderr, "bench: Protect: %s\n", w.msg);
    goto out;
  }
  Smaug__V1__ProtectResponse *resp = (void *)w.last;
  Smaug__V1__WatchOperationRequest wr =
      SMAUG__V1__WATCH_OPERATION_REQUEST__INIT;
  char op_id[64], cp_id[64];
  snprintf(op_id, sizeof(op_id), "%s", resp->operation_id);
  snprintf(cp_id, sizeof(cp_id), "%s", resp->checkpoint_id);
  protobuf_c_message_free_unpacked(w.last, NULL);
  wr.operation_id = op_id;
  /* With --stream every event comes to this client; otherwise the watch
   * starts past any sequence, so it only waits for the end. */
  wr.after_sequence = stream ? 0 : UINT64_MAX - 1;
  call(ch, SMAUG_V1_ORCHESTRATOR_WATCH_OPERATION, &wr.base, &w, 1);
  double wall = now_s() - t0;
  uint64_t events = w.n_msgs;
  if (w.last)
    protobuf_c_message_free_unpacked(w.last, NULL);
  Smaug__V1__GetCheckpointRequest gq = SMAUG__V1__GET_CHECKPOINT_REQUEST__INIT;
  gq.id = cp_id;
  call(ch, SMAUG_V1_ORCHESTRATOR_GET_CHECKPOINT, &gq.base, &w, 1);
  Smaug__V1__GetCheckpointResponse *gr = (void *)w.last;
  const char *final =
      gr && gr->checkpoint->status ==
                  SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_AVAILABLE
          ? "available"
          : "not-available";
  if (strcmp(final, "available") != 0)
    fprintf(stderr, "bench: protect ended %s: %s\n", final,
            gr ? gr->checkpoint->reason : w.msg);
  else
    rc = 0;
  long tasks = 2 * n;
  double tps = (double)tasks / wall;
  long rss = peak_rss_kib(sm.pid);
  printf("events_streamed=%llu final=%s\n", (unsigned long long)events, final);
  printf("RESULT resources=%ld tasks=%ld wall_ms=%.0f tasks_per_s=%.0f "
         "rpc_floor_per_s=%.0f ratio=%.2f peak_rss_kib=%ld\n",
         n, tasks, wall * 1000, tps, floor, tps / floor, rss);
  if (w.last)
    protobuf_c_message_free_unpacked(w.last, NULL);
out:
  rt_channel_release(ch);
  rt_free(rt);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  kill(sm.pid, SIGTERM);
  waitpid(sm.pid, NULL, 0);
  kill(plug.pid, SIGTERM);
  waitpid(plug.pid, NULL, 0);
  if (!keep) {
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
      fprintf(stderr, "bench: cannot remove %s\n", dir);
  } else {
    fprintf(stderr, "bench: kept %s\n", dir);
  }
  free(res);
  free(rp);
  free(ed);
  free(ep);
  free(ids);
  return rc;
}
