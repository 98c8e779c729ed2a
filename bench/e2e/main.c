/*
 * main.c - smaug-bench-e2e: end-to-end protect throughput of smaugd.
 *
 * It starts a no-op plugin (smaug-bench-noop-plugin, built with the SDK;
 * or, with --raw-plugin, this same binary with --serve-plugin, written
 * directly on the runtime) and smaugd on 127.0.0.1 with a fresh data
 * directory, then:
 *   1. measures the floor: empty unary RPCs (grpc.health.v1.Health/Check)
 *      from this process to the plugin, one at a time and with as many in
 *      flight as smaugd's engine keeps per operation;
 *   2. creates a plan of N resources (a tree of the given fan-out, listed
 *      with its edges, so no discovery) and protects it, timing Protect to
 *      the OPERATION_FINISHED event of WatchOperation; every P and S task
 *      is a real RPC to the plugin. The watch takes only the final event,
 *      or with --stream all of them, up to --max-batch per message;
 *   3. reads smaugd's peak RSS (VmHWM), stops both processes with SIGTERM
 *      and checks that they exit 0.
 * Last line:
 *   RESULT resources=N tasks=T wall_ms=X tasks_per_s=Y rpc_floor_per_s=Z
 *          ratio=R peak_rss_kib=M
 * The floor compared against is the concurrent one (see bench/README.md).
 */
#define _GNU_SOURCE /* nftw */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli_rpc.h"
#include "grpc/health/v1/health.smaug.h"
#include "rt.h"
#include "rt_log.h"
#include "smaug/v1/orchestrator.smaug.h"
#include "smaug/v1/plugin.smaug.h"

/* smaugd's engine keeps at most this many plugin calls in flight per
 * operation (server/api/api_op.c, exec_opts_t.max_in_flight); the default
 * width of the concurrent floor. */
#define ENGINE_IN_FLIGHT 512
/* WatchOperation events per task of a successful run without progress:
 * QUEUED, STARTED, DONE. Used to ask only for the final event. */
#define EVENTS_PER_TASK 3
/* Events per WatchOperation message asked for (max_batch) by default;
 * smaugd's cap. 0 asks for one event per message. */
#define WATCH_MAX_BATCH 64
/* The plan travels in one message; smaugd is started with this limit. */
#define MAX_MESSAGE_BYTES (256 << 20)
#define MAX_RESOURCES     100000
#define CALL_TIMEOUT_MS   3600000

/* ---------------------------------------------- raw no-op plugin */

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

/* The plugin without the SDK: no idempotency bookkeeping, so comparing
 * the two shows what the SDK costs per call. */
static int serve_raw_plugin(void) {
  static const smaug_v1_protection_plugin_handlers_t h = {
      .get_plugin_info = p_info,
      .parallel_activity = p_parallel,
      .sync_activity = p_sync};
  uv_loop_t *loop = uv_default_loop();
  rt_t *rt = NULL;
  rt_server_t *srv = NULL;
  int port, err;
  if ((err = rt_new(loop, &rt)) != 0 ||
      (err = rt_server_new(rt, NULL, &srv)) != 0 ||
      (err = smaug_v1_protection_plugin_register(srv, &h, NULL)) != 0 ||
      (err = rt_server_listen(srv, "127.0.0.1:0", &port)) != 0 ||
      (err = rt_server_start(srv)) != 0 ||
      (err = rt_server_stop_on_signals(srv, p_stopped, NULL)) != 0) {
    fprintf(stderr, "bench: raw plugin: %s\n", uv_strerror(err));
    return 1; /* the bench sees the exit and reports it */
  }
  rt_log(RT_LOG_INFO, "bench", "listening", "addr=127.0.0.1:%d", port);
  uv_run(loop, UV_RUN_DEFAULT);
  rt_server_free(srv);
  rt_free(rt);
  return 0;
}

/* ------------------------------------------------------------ process */

typedef struct proc_s {
  uv_process_t h;
  const char *name;
  char log[PATH_MAX];
  char addr[128]; /* from the `msg=listening addr=` log line */
  int started, exited, term_signal;
  int64_t exit_status;
} proc_t;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void proc_exited(uv_process_t *h, int64_t status, int sig) {
  proc_t *p = h->data;
  p->exited = 1;
  p->exit_status = status;
  p->term_signal = sig;
  uv_close((uv_handle_t *)h, NULL);
}

/* Looks for the listening line in the process's log. */
static int proc_find_addr(proc_t *p) {
  FILE *f = fopen(p->log, "r");
  char line[1024];
  int found = 0;
  while (f && !found && fgets(line, sizeof(line), f)) {
    const char *m = strstr(line, "msg=listening addr=");
    if (m) {
      m += strlen("msg=listening addr=");
      snprintf(p->addr, sizeof(p->addr), "%.*s", (int)strcspn(m, " \n"), m);
      found = 1;
    }
  }
  if (f)
    fclose(f);
  return found;
}

/* Starts argv with stdout and stderr in p->log and waits up to 10 s for it
 * to log its address. Returns 0 or a UV_E* code. */
static int proc_start(uv_loop_t *loop, proc_t *p, char **argv) {
  int fd = open(p->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return -errno;
  uv_stdio_container_t io[3] = {{.flags = UV_IGNORE},
                                {.flags = UV_INHERIT_FD, .data.fd = fd},
                                {.flags = UV_INHERIT_FD, .data.fd = fd}};
  uv_process_options_t o = {.file = argv[0],
                            .args = argv,
                            .exit_cb = proc_exited,
                            .stdio_count = 3,
                            .stdio = io};
  p->h.data = p;
  int err = uv_spawn(loop, &p->h, &o);
  close(fd);
  if (err != 0) {
    uv_close((uv_handle_t *)&p->h, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return err;
  }
  p->started = 1;
  for (double until = now_s() + 10; now_s() < until && !p->exited;) {
    if (proc_find_addr(p))
      return 0;
    uv_run(loop, UV_RUN_NOWAIT);
    usleep(5000);
  }
  return p->exited ? UV_ESRCH : UV_ETIMEDOUT;
}

/* Sends SIGTERM and waits up to 30 s for the exit (then SIGKILL). Returns
 * 0 if the process exited with status 0, -1 otherwise (reported). */
static int proc_stop(uv_loop_t *loop, proc_t *p) {
  if (!p->started)
    return 0;
  if (!p->exited && uv_process_kill(&p->h, SIGTERM) != 0)
    uv_run(loop, UV_RUN_NOWAIT); /* it is gone: collect the exit */
  for (double until = now_s() + 30; !p->exited && now_s() < until;) {
    uv_run(loop, UV_RUN_NOWAIT);
    usleep(2000);
  }
  if (!p->exited) {
    fprintf(stderr, "bench: %s ignored SIGTERM for 30 s; killing it\n",
            p->name);
    uv_process_kill(&p->h, SIGKILL);
    while (!p->exited)
      uv_run(loop, UV_RUN_ONCE);
    uv_run(loop, UV_RUN_NOWAIT);
    return -1;
  }
  uv_run(loop, UV_RUN_NOWAIT); /* the close callback */
  if (p->term_signal != 0 || p->exit_status != 0) {
    fprintf(stderr, "bench: %s exited with status %lld, signal %d (log %s)\n",
            p->name, (long long)p->exit_status, p->term_signal, p->log);
    return -1;
  }
  return 0;
}

static long peak_rss_kib(const proc_t *p) {
  char path[64], line[256];
  snprintf(path, sizeof(path), "/proc/%d/status", p->h.pid);
  FILE *f = fopen(path, "r");
  long kib = -1;
  while (f && fgets(line, sizeof(line), f))
    if (strncmp(line, "VmHWM:", 6) == 0)
      kib = strtol(line + 6, NULL, 10);
  if (f)
    fclose(f);
  return kib;
}

/* User plus system CPU time of the process so far, in ms; -1 if unknown. */
static double cpu_ms(const proc_t *p) {
  char path[64], buf[1024];
  snprintf(path, sizeof(path), "/proc/%d/stat", p->h.pid);
  FILE *f = fopen(path, "r");
  size_t len = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
  if (f)
    fclose(f);
  buf[len] = '\0';
  /* Fields 14 and 15 (utime, stime) follow the parenthesised name. */
  char *s = strrchr(buf, ')');
  unsigned long ut, st;
  if (s == NULL ||
      sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
             &st) != 2)
    return -1;
  return (double)(ut + st) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw) {
  return remove(path);
}

/* -------------------------------------------------------------- floor */

/* Health/Check calls kept `width` in flight until `until`. */
typedef struct floor_s {
  rt_channel_t *ch;
  uint64_t ok, failed;
  int in_flight, width;
  double until;
} floor_t;

static void floor_issue(floor_t *f);

static void floor_msg(rt_client_call_t *c, const ProtobufCMessage *m,
                      void *data) {}

static void floor_done(rt_client_call_t *c, grpc_status_code code,
                       const char *m, void *data) {
  floor_t *f = data;
  f->in_flight--;
  if (code == GRPC_STATUS_OK)
    f->ok++;
  else
    f->failed++;
  if (now_s() < f->until)
    floor_issue(f);
}

static void floor_issue(floor_t *f) {
  Grpc__Health__V1__HealthCheckRequest req =
      GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  rt_call_opts_t o = {.timeout_ms = 10000};
  if (grpc_health_v1_health_check(f->ch, &req, &o, floor_msg, floor_done, f,
                                  NULL) == 0)
    f->in_flight++;
  else
    f->failed++;
}

/* Keeps `width` calls in flight for `seconds`; returns calls/s, or -1 if
 * any call failed. */
static double floor_run(uv_loop_t *loop, rt_channel_t *ch, int width,
                        double seconds) {
  floor_t f = {.ch = ch, .width = width};
  double t0 = now_s();
  f.until = t0 + seconds;
  for (int i = 0; i < width; i++)
    floor_issue(&f);
  while (f.in_flight)
    uv_run(loop, UV_RUN_ONCE);
  return f.failed ? -1 : (double)f.ok / (now_s() - t0);
}

/* Measures both floors on a runtime of its own, on `loop`. */
static int measure_floor(uv_loop_t *loop, const char *addr, int width,
                         double seconds, double *seq, double *conc) {
  rt_t *rt;
  rt_channel_t *ch;
  int err = rt_new(loop, &rt);
  if (err != 0)
    return err;
  if ((err = rt_channel_get(rt, addr, &ch)) != 0) {
    rt_free(rt);
    return err;
  }
  /* Warm-up: connection, HTTP/2 windows, allocator. */
  double w = floor_run(loop, ch, width, 0.3);
  double s = w < 0 ? -1 : floor_run(loop, ch, 1, seconds);
  double c = s < 0 ? -1 : floor_run(loop, ch, width, seconds);
  rt_channel_release(ch);
  rt_free(rt);
  if (c < 0)
    return UV_EIO;
  *seq = s;
  *conc = c;
  return 0;
}

/* ------------------------------------------------------- orchestrator */

typedef struct watch_s {
  char op_id[128]; /* the protect's operation, for a later `smaug watch` */
  uint64_t n_msgs, n_events, last_seq;
  int finished; /* the last message was OPERATION_FINISHED */
  char final_status[64];
  double t_finished;
  double protect_s; /* the Protect call alone */
} watch_t;

static void on_one_event(watch_t *w, const Smaug__V1__OperationEvent *ev) {
  w->n_events++;
  w->finished = 0;
  w->last_seq = ev->sequence;
  if (ev->kind == SMAUG__V1__EVENT_KIND__EVENT_KIND_OPERATION_FINISHED) {
    w->finished = 1;
    w->t_finished = now_s();
    snprintf(w->final_status, sizeof(w->final_status), "%s", ev->final_status);
  }
}

/* One message: one event in `event`, or a batch in `events`. */
static void on_event(const ProtobufCMessage *m, void *data) {
  const Smaug__V1__WatchOperationResponse *r = (const void *)m;
  watch_t *w = data;
  w->n_msgs++;
  w->finished = 0;
  if (r->event != NULL)
    on_one_event(w, r->event);
  for (size_t i = 0; i < r->n_events; i++)
    on_one_event(w, r->events[i]);
}

/* Waits until smaugd lists a plugin (its handshake is asynchronous). */
static int wait_for_plugin(cli_rpc_t *c) {
  Smaug__V1__ListPluginsRequest req = SMAUG__V1__LIST_PLUGINS_REQUEST__INIT;
  for (double until = now_s() + 10; now_s() < until; usleep(10000)) {
    ProtobufCMessage *resp;
    if (cli_rpc_unary(
            c,
            &smaug_v1_orchestrator_methods[SMAUG_V1_ORCHESTRATOR_LIST_PLUGINS],
            &req.base, 10000, &resp) != GRPC_STATUS_OK)
      continue;
    size_t n = ((Smaug__V1__ListPluginsResponse *)resp)->n_plugins;
    protobuf_c_message_free_unpacked(resp, NULL);
    if (n > 0)
      return 0;
  }
  return UV_ETIMEDOUT;
}

/* The plan: node 0 is the root, node i's parent is (i - 1) / fanout.
 * Stores the plan id in `id`. */
static int create_plan(cli_rpc_t *c, long n, long fanout, char *id,
                       size_t id_size, int *depth) {
  int rc = UV_ENOMEM;
  Smaug__V1__Resource *res = calloc((size_t)n, sizeof(*res));
  Smaug__V1__Resource **rp = calloc((size_t)n, sizeof(*rp));
  Smaug__V1__ResourceEdge *ed = calloc((size_t)n, sizeof(*ed));
  Smaug__V1__ResourceEdge **ep = calloc((size_t)n, sizeof(*ep));
  char(*ids)[24] = calloc((size_t)n, 24);
  if (!res || !rp || !ed || !ep || !ids)
    goto out;
  for (long i = 0; i < n; i++) {
    snprintf(ids[i], 24, "n%ld", i);
    smaug__v1__resource__init(&res[i]);
    res[i].type = "b.node";
    res[i].id = ids[i];
    rp[i] = &res[i];
  }
  for (long i = 1; i < n; i++) {
    smaug__v1__resource_edge__init(&ed[i - 1]);
    ed[i - 1].parent_type = ed[i - 1].child_type = "b.node";
    ed[i - 1].parent_id = ids[(i - 1) / fanout];
    ed[i - 1].child_id = ids[i];
    ep[i - 1] = &ed[i - 1];
  }
  *depth = 0; /* levels below the root, from the deepest node */
  for (long i = n - 1; i > 0; i = (i - 1) / fanout)
    (*depth)++;
  Smaug__V1__Plan plan = SMAUG__V1__PLAN__INIT;
  plan.name = "bench";
  plan.n_resources = (size_t)n;
  plan.resources = rp;
  plan.n_edges = (size_t)n - 1;
  plan.edges = ep;
  Smaug__V1__CreatePlanRequest req = SMAUG__V1__CREATE_PLAN_REQUEST__INIT;
  req.plan = &plan;
  ProtobufCMessage *resp;
  if (cli_rpc_unary(
          c, &smaug_v1_orchestrator_methods[SMAUG_V1_ORCHESTRATOR_CREATE_PLAN],
          &req.base, CALL_TIMEOUT_MS, &resp) != GRPC_STATUS_OK) {
    fprintf(stderr, "bench: CreatePlan: %s\n", cli_rpc_message(c));
    rc = UV_EIO;
    goto out;
  }
  snprintf(id, id_size, "%s",
           ((Smaug__V1__CreatePlanResponse *)resp)->plan->id);
  protobuf_c_message_free_unpacked(resp, NULL);
  rc = 0;
out:
  free(res);
  free(rp);
  free(ed);
  free(ep);
  free(ids);
  return rc;
}

/* Protects the plan and watches the operation to its end: only the final
 * event unless `stream`, up to `max_batch` events per message (0: one).
 * Sets *wall to Protect -> OPERATION_FINISHED. */
static int protect(cli_rpc_t *c, const char *plan_id, long tasks, int stream,
                   uint32_t max_batch, watch_t *w, double *wall) {
  Smaug__V1__ProtectRequest pr = SMAUG__V1__PROTECT_REQUEST__INIT;
  pr.plan_id = (char *)plan_id;
  ProtobufCMessage *resp;
  double t0 = now_s();
  if (cli_rpc_unary(
          c, &smaug_v1_orchestrator_methods[SMAUG_V1_ORCHESTRATOR_PROTECT],
          &pr.base, CALL_TIMEOUT_MS, &resp) != GRPC_STATUS_OK) {
    fprintf(stderr, "bench: Protect: %s\n", cli_rpc_message(c));
    return UV_EIO;
  }
  double t_protect = now_s() - t0;
  Smaug__V1__ProtectResponse *p = (void *)resp;
  char op_id[128], cp_id[128];
  snprintf(op_id, sizeof(op_id), "%s", p->operation_id);
  snprintf(cp_id, sizeof(cp_id), "%s", p->checkpoint_id);
  protobuf_c_message_free_unpacked(resp, NULL);

  Smaug__V1__WatchOperationRequest wr =
      SMAUG__V1__WATCH_OPERATION_REQUEST__INIT;
  wr.operation_id = op_id;
  wr.after_sequence = stream ? 0 : (uint64_t)tasks * EVENTS_PER_TASK;
  wr.max_batch = max_batch;
  memset(w, 0, sizeof(*w));
  snprintf(w->op_id, sizeof(w->op_id), "%s", op_id);
  w->protect_s = t_protect;
  grpc_status_code code = cli_rpc_stream(
      c, &smaug_v1_orchestrator_methods[SMAUG_V1_ORCHESTRATOR_WATCH_OPERATION],
      &wr.base, CALL_TIMEOUT_MS, on_event, w);
  double t_end = now_s();
  if (code != GRPC_STATUS_OK) {
    fprintf(stderr, "bench: WatchOperation: %s\n", cli_rpc_message(c));
    return UV_EIO;
  }
  if (!w->finished) {
    /* Fewer events than a clean run makes: some task did not complete. */
    fprintf(stderr,
            "bench: watch ended without OPERATION_FINISHED after "
            "sequence %llu\n",
            (unsigned long long)wr.after_sequence);
    *wall = t_end - t0;
  } else {
    *wall = w->t_finished - t0;
  }
  /* The final event carries the checkpoint's status. GetCheckpoint, whose
   * answer holds the whole graph, is only asked for the reason of a
   * failure. */
  if (w->finished && strcmp(w->final_status, "available") == 0)
    return 0;
  Smaug__V1__GetCheckpointRequest gq = SMAUG__V1__GET_CHECKPOINT_REQUEST__INIT;
  gq.id = cp_id;
  if (cli_rpc_unary(
          c,
          &smaug_v1_orchestrator_methods[SMAUG_V1_ORCHESTRATOR_GET_CHECKPOINT],
          &gq.base, CALL_TIMEOUT_MS, &resp) != GRPC_STATUS_OK) {
    fprintf(stderr, "bench: checkpoint %s ended %s; GetCheckpoint: %s\n", cp_id,
            w->finished ? w->final_status : "(unknown)", cli_rpc_message(c));
    return UV_EIO;
  }
  const Smaug__V1__Checkpoint *ck =
      ((Smaug__V1__GetCheckpointResponse *)resp)->checkpoint;
  fprintf(stderr, "bench: checkpoint %s ended %s: %s\n", cp_id,
          w->finished ? w->final_status : "(unknown)",
          ck && ck->reason && *ck->reason ? ck->reason : "(no reason)");
  protobuf_c_message_free_unpacked(resp, NULL);
  return UV_EIO;
}

/* --------------------------------------------------------------- main */

static void start_failed(const char *path, int err, const char *log) {
  if (err == UV_ESRCH || err == UV_ETIMEDOUT)
    fprintf(stderr, "bench: %s %s (log %s)\n", path,
            err == UV_ESRCH ? "exited before it logged its address"
                            : "logged no address within 10 s",
            log);
  else
    fprintf(stderr, "bench: cannot start %s: %s\n", path, uv_strerror(err));
}

static int usage(FILE *to, int status) {
  fprintf(to,
          "usage: smaug-bench-e2e [--resources N] [--fanout F] [--stream]\n"
          "                       [--floor-ms MS] [--floor-in-flight N]\n"
          "                       [--max-batch N] [--warmup N] [--raw-plugin]\n"
          "                       [--keep] [--smaugd PATH] [--plugin PATH]\n"
          "  --resources N  resources in the plan, 1..%d (default 1000)\n"
          "  --fanout F     children per resource (default 16)\n"
          "  --stream       watch every event, not only the end\n"
          "  --max-batch N  events per watch message asked for (default %d;\n"
          "                 0: one per message, as clients before batching)\n"
          "  --floor-ms MS  length of each floor measurement (default 2000)\n"
          "  --floor-in-flight N  calls in flight in the concurrent floor\n"
          "                 (default %d, the engine's limit per operation)\n"
          "  --warmup N     protect a plan of N resources first (default 0)\n"
          "  --raw-plugin   plugin written on the runtime instead of the SDK\n"
          "  --keep         keep the temporary directory (data and logs)\n",
          MAX_RESOURCES, WATCH_MAX_BATCH, ENGINE_IN_FLIGHT);
  return status;
}

int main(int argc, char **argv) {
  static const struct option opts[] = {
      {"resources", required_argument, NULL, 'n'},
      {"fanout", required_argument, NULL, 'f'},
      {"floor-ms", required_argument, NULL, 'F'},
      {"smaugd", required_argument, NULL, 's'},
      {"plugin", required_argument, NULL, 'P'},
      {"raw-plugin", no_argument, NULL, 'r'},
      {"serve-plugin", no_argument, NULL, 'p'},
      {"keep", no_argument, NULL, 'k'},
      {"stream", no_argument, NULL, 'S'},
      {"max-batch", required_argument, NULL, 'b'},
      {"warmup", required_argument, NULL, 'w'},
      {"floor-in-flight", required_argument, NULL, 'i'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  long n = 1000, fanout = 16, floor_ms = 2000, warmup = 0,
       width = ENGINE_IN_FLIGHT, max_batch = WATCH_MAX_BATCH;
  int keep = 0, stream = 0, raw = 0, c;
  const char *smaugd = NULL, *plugin = NULL;
  char *end;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 'n':
      n = strtol(optarg, &end, 10);
      if (*end || n < 1 || n > MAX_RESOURCES)
        return usage(stderr, 2);
      break;
    case 'f':
      fanout = strtol(optarg, &end, 10);
      if (*end || fanout < 1 || fanout > 1000000)
        return usage(stderr, 2);
      break;
    case 'F':
      floor_ms = strtol(optarg, &end, 10);
      if (*end || floor_ms < 100 || floor_ms > 600000)
        return usage(stderr, 2);
      break;
    case 'w':
      warmup = strtol(optarg, &end, 10);
      if (*end || warmup < 0 || warmup > MAX_RESOURCES)
        return usage(stderr, 2);
      break;
    case 'i':
      width = strtol(optarg, &end, 10);
      if (*end || width < 1 || width > 100000)
        return usage(stderr, 2);
      break;
    case 'b':
      max_batch = strtol(optarg, &end, 10);
      if (*end || max_batch < 0 || max_batch > UINT32_MAX)
        return usage(stderr, 2);
      break;
    case 's':
      smaugd = optarg;
      break;
    case 'P':
      plugin = optarg;
      break;
    case 'r':
      raw = 1;
      break;
    case 'p':
      return serve_raw_plugin();
    case 'k':
      keep = 1;
      break;
    case 'S':
      stream = 1;
      break;
    case 'h':
      return usage(stdout, 0);
    default:
      return usage(stderr, 2);
    }
  }
  if (optind != argc)
    return usage(stderr, 2);

  /* The other binaries sit next to this one. */
  char self[PATH_MAX], sd[PATH_MAX + 16], pl[PATH_MAX + 32];
  ssize_t k = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (k <= 0)
    return 1;
  self[k] = '\0';
  int dirlen = (int)(strrchr(self, '/') - self);
  if (smaugd == NULL) {
    snprintf(sd, sizeof(sd), "%.*s/smaugd", dirlen, self);
    smaugd = sd;
  }
  if (plugin == NULL) {
    snprintf(pl, sizeof(pl), "%.*s/smaug-bench-noop-plugin", dirlen, self);
    plugin = raw ? self : pl;
  }

  char dir[] = "/tmp/smaug-bench-e2e-XXXXXX";
  if (mkdtemp(dir) == NULL) {
    perror("bench: mkdtemp");
    return 1;
  }
  char data[sizeof(dir) + 8], maxmsg[16];
  snprintf(data, sizeof(data), "%s/data", dir);
  snprintf(maxmsg, sizeof(maxmsg), "%d", MAX_MESSAGE_BYTES);

  uv_loop_t procs; /* child processes only */
  int rc = 1, err;
  if ((err = uv_loop_init(&procs)) != 0) {
    fprintf(stderr, "bench: %s\n", uv_strerror(err));
    return 1;
  }
  proc_t plug = {.name = "plugin"}, sm = {.name = "smaugd"};
  snprintf(plug.log, sizeof(plug.log), "%s/plugin.log", dir);
  snprintf(sm.log, sizeof(sm.log), "%s/smaugd.log", dir);
  cli_rpc_t *cli = NULL;
  double floor_seq = 0, floor_conc = 0, wall = 0;
  long rss = -1;
  watch_t w = {0};
  int depth = 0, measured = 0;
  double sm_cpu = 0, pl_cpu = 0;

  char *pargv_sdk[] = {(char *)plugin, "--listen", "127.0.0.1:0",
                       "--exit-with-parent", NULL};
  char *pargv_raw[] = {(char *)plugin, "--serve-plugin", NULL};
  if ((err = proc_start(&procs, &plug, raw ? pargv_raw : pargv_sdk)) != 0) {
    start_failed(plugin, err, plug.log);
    goto out;
  }
  char *sargv[] = {
      (char *)smaugd, "--listen", "127.0.0.1:0",         "--data-dir", data,
      "--plugin",     plug.addr,  "--max-message-bytes", maxmsg,       NULL};
  if ((err = proc_start(&procs, &sm, sargv)) != 0) {
    start_failed(smaugd, err, sm.log);
    goto out;
  }
  if ((err = cli_rpc_new(sm.addr, &cli)) != 0) {
    fprintf(stderr, "bench: client: %s\n", uv_strerror(err));
    goto out;
  }
  cli_rpc_set_max_message(cli, MAX_MESSAGE_BYTES); /* CreatePlan's answer */
  if ((err = wait_for_plugin(cli)) != 0) {
    fprintf(stderr, "bench: smaugd lists no plugin after 10 s (log %s)\n",
            sm.log);
    goto out;
  }
  if ((err = measure_floor(cli_rpc_loop(cli), plug.addr, (int)width,
                           (double)floor_ms / 1000, &floor_seq, &floor_conc)) !=
      0) {
    fprintf(stderr, "bench: floor: %s\n", uv_strerror(err));
    goto out;
  }
  char plan_id[128];
  if (warmup > 0) {
    /* A first protect: smaugd's channel, SQLite pages and allocator reach
     * their steady state, as the floor's warm-up does for the transport. */
    if (create_plan(cli, warmup, fanout, plan_id, sizeof(plan_id), &depth) ||
        protect(cli, plan_id, 2 * warmup, 0, 0, &w, &wall) != 0)
      goto out;
  }
  if (create_plan(cli, n, fanout, plan_id, sizeof(plan_id), &depth) != 0)
    goto out;
  sm_cpu = cpu_ms(&sm);
  pl_cpu = cpu_ms(&plug);
  measured =
      protect(cli, plan_id, 2 * n, stream, (uint32_t)max_batch, &w, &wall) == 0;
  rss = peak_rss_kib(&sm);
  sm_cpu = cpu_ms(&sm) - sm_cpu;
  pl_cpu = cpu_ms(&plug) - pl_cpu;
  rc = measured ? 0 : 1;
out:
  cli_rpc_free(cli);
  if (proc_stop(&procs, &sm) != 0)
    rc = 1;
  if (proc_stop(&procs, &plug) != 0)
    rc = 1;
  uv_run(&procs, UV_RUN_NOWAIT);
  if (uv_loop_close(&procs) != 0)
    fprintf(stderr, "bench: process loop still has handles\n");
  if (keep || rc != 0)
    fprintf(stderr, "bench: kept %s\n", dir); /* logs, for a failed run */
  else if (nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
    fprintf(stderr, "bench: cannot remove %s: %s\n", dir, strerror(errno));
  if (!measured)
    return 1;
  long tasks = 2 * n;
  double tps = (double)tasks / wall;
  printf("plugin=%s depth=%d fanout=%ld warmup=%ld operation=%s "
         "events_received=%llu messages=%llu max_batch=%ld final=%s "
         "protect_call_ms=%.1f cpu_ms_during_protect: smaugd=%.0f "
         "plugin=%.0f\n",
         raw ? "raw" : "sdk", depth, fanout, warmup, w.op_id,
         (unsigned long long)w.n_events, (unsigned long long)w.n_msgs,
         max_batch, w.final_status, w.protect_s * 1000, sm_cpu, pl_cpu);
  printf("floor: seq_per_s=%.0f conc%d_per_s=%.0f (compared: conc%d)\n",
         floor_seq, (int)width, floor_conc, (int)width);
  printf("RESULT resources=%ld tasks=%ld wall_ms=%.0f tasks_per_s=%.0f "
         "rpc_floor_per_s=%.0f ratio=%.2f peak_rss_kib=%ld\n",
         n, tasks, wall * 1000, tps, floor_conc, tps / floor_conc, rss);
  return rc; /* 1 if a process did not exit cleanly */
}
