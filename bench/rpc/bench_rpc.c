/*
 * bench_rpc.c - the cost of one RPC through the runtime: empty unary calls
 * from a client to a server on the same loop, over 127.0.0.1.
 *
 * Phase 1 runs calls one after another (each started from the previous
 * one's done callback) and records each call's latency; phase 2 keeps 64
 * calls in flight. Prints one line:
 *   RESULT calls=N seq_per_s=X conc64_per_s=Y p50_us=Z
 * Usage: smaug-bench-rpc [calls]   (default 20000 per phase)
 */
#include <stdio.h>
#include <stdlib.h>

#include "benchsvc.smaug.h"
#include "rt.h"

#define IN_FLIGHT 64

typedef struct {
  uv_loop_t loop;
  rt_t *rt;
  rt_server_t *srv;
  rt_channel_t *ch;
  int total;    /* calls per phase */
  int started;  /* calls started in this phase */
  int finished; /* calls finished in this phase */
  int failed;
  uint64_t call_start;
  uint64_t *lat; /* phase 1 latencies, ns */
  uint64_t t0, t1;
} bench_t;

static void h_ping(rt_call_t *call, const Rtbench__Empty *req, void *data) {
  Rtbench__Empty r = RTBENCH__EMPTY__INIT;
  rt_call_reply(call, &r.base);
}

static const rtbench_bench_handlers_t handlers = {.ping = h_ping};

static void on_msg(rt_client_call_t *call, const ProtobufCMessage *msg,
                   void *data) {}

static void start_seq(bench_t *b);
static void start_conc(bench_t *b);

static void on_seq_done(rt_client_call_t *call, grpc_status_code code,
                        const char *message, void *data) {
  bench_t *b = data;
  if (code != GRPC_STATUS_OK)
    b->failed++;
  b->lat[b->finished++] = uv_hrtime() - b->call_start;
  if (b->finished < b->total)
    start_seq(b);
  else
    b->t1 = uv_hrtime();
}

static void start_seq(bench_t *b) {
  Rtbench__Empty req = RTBENCH__EMPTY__INIT;
  b->call_start = uv_hrtime();
  b->started++;
  if (rtbench_bench_ping(b->ch, &req, NULL, on_msg, on_seq_done, b, NULL) != 0)
    abort();
}

static void on_conc_done(rt_client_call_t *call, grpc_status_code code,
                         const char *message, void *data) {
  bench_t *b = data;
  if (code != GRPC_STATUS_OK)
    b->failed++;
  b->finished++;
  if (b->started < b->total)
    start_conc(b);
  else if (b->finished == b->total)
    b->t1 = uv_hrtime();
}

static void start_conc(bench_t *b) {
  Rtbench__Empty req = RTBENCH__EMPTY__INIT;
  b->started++;
  if (rtbench_bench_ping(b->ch, &req, NULL, on_msg, on_conc_done, b, NULL) != 0)
    abort();
}

static void on_stopped(rt_server_t *srv, void *data) {}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Runs the loop until the phase's last call is done. */
static void run_phase(bench_t *b) {
  while (b->finished < b->total)
    uv_run(&b->loop, UV_RUN_ONCE);
}

int main(int argc, char **argv) {
  bench_t b = {0};
  b.total = argc > 1 ? atoi(argv[1]) : 20000;
  if (b.total < IN_FLIGHT)
    b.total = IN_FLIGHT;
  b.lat = calloc((size_t)b.total, sizeof(*b.lat));
  int port = 0;
  char target[64];
  if (b.lat == NULL || uv_loop_init(&b.loop) != 0 ||
      rt_new(&b.loop, &b.rt) != 0 || rt_server_new(b.rt, NULL, &b.srv) != 0 ||
      rtbench_bench_register(b.srv, &handlers, &b) != 0 ||
      rt_server_listen(b.srv, "127.0.0.1:0", &port) != 0 ||
      rt_server_start(b.srv) != 0) {
    fprintf(stderr, "smaug-bench-rpc: cannot start the server\n");
    return 1;
  }
  snprintf(target, sizeof(target), "127.0.0.1:%d", port);
  if (rt_channel_get(b.rt, target, &b.ch) != 0)
    return 1;

  /* Warm-up: connect and fill caches. */
  int total = b.total;
  b.total = 200;
  b.t0 = uv_hrtime();
  start_seq(&b);
  run_phase(&b);

  b.total = total;
  b.started = b.finished = 0;
  b.t0 = uv_hrtime();
  start_seq(&b);
  run_phase(&b);
  double seq = b.total / ((double)(b.t1 - b.t0) / 1e9);
  qsort(b.lat, (size_t)b.total, sizeof(*b.lat), cmp_u64);
  double p50 = (double)b.lat[b.total / 2] / 1e3;

  b.started = b.finished = 0;
  b.t0 = uv_hrtime();
  for (int i = 0; i < IN_FLIGHT; i++)
    start_conc(&b);
  run_phase(&b);
  double conc = b.total / ((double)(b.t1 - b.t0) / 1e9);

  rt_channel_release(b.ch);
  rt_server_shutdown(b.srv, on_stopped, &b);
  uv_run(&b.loop, UV_RUN_DEFAULT);
  rt_server_free(b.srv);
  rt_free(b.rt);
  uv_loop_close(&b.loop);
  free(b.lat);
  printf("RESULT calls=%d seq_per_s=%.0f conc64_per_s=%.0f p50_us=%.1f\n",
         b.total, seq, conc, p50);
  return b.failed != 0;
}
