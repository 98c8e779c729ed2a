/*
 * fake_plugin.c - smaug-cli-test-plugin: the smallest protection plugin
 * the CLI's end-to-end test needs. It declares smaug.server and
 * smaug.volume, and answers each ParallelActivity and SyncActivity with
 * one progress update and a result, at once. It listens on 127.0.0.1 port
 * 0, prints "port=N" on stdout, and stops on SIGTERM/SIGINT or by itself
 * after two minutes.
 */
#include <stdio.h>
#include <stdlib.h>

#include "rt.h"
#include "smaug/v1/plugin.smaug.h"

#define LIFETIME_MS (120 * 1000)

static rt_server_t *srv;
static uv_timer_t lifetime;
static int stopped;

static void get_plugin_info(rt_call_t *call,
                            const Smaug__V1__GetPluginInfoRequest *req,
                            void *data) {
  Smaug__V1__OperationSupport prot = SMAUG__V1__OPERATION_SUPPORT__INIT;
  prot.kind = SMAUG__V1__OPERATION_KIND__OPERATION_KIND_PROTECT;
  prot.parallel = prot.sync = 1;
  Smaug__V1__OperationSupport *ops[] = {&prot};
  Smaug__V1__ResourceTypeInfo t1 = SMAUG__V1__RESOURCE_TYPE_INFO__INIT, t2;
  t1.type = "smaug.server";
  t1.n_operations = 1;
  t1.operations = ops;
  t2 = t1;
  t2.type = "smaug.volume";
  Smaug__V1__ResourceTypeInfo *types[] = {&t1, &t2};
  Smaug__V1__GetPluginInfoResponse resp =
      SMAUG__V1__GET_PLUGIN_INFO_RESPONSE__INIT;
  resp.name = "cli-test";
  resp.version = "1.0.0";
  resp.protocol_major = SMAUG__V1__PROTOCOL_VERSION__PROTOCOL_VERSION_1;
  resp.n_types = 2;
  resp.types = types;
  rt_call_reply(call, &resp.base);
}

static void send_progress(rt_call_t *call, int sync) {
  Smaug__V1__Progress p = SMAUG__V1__PROGRESS__INIT;
  p.done = 1;
  p.total = 2;
  p.unit = "steps";
  if (sync) {
    Smaug__V1__SyncActivityResponse r = SMAUG__V1__SYNC_ACTIVITY_RESPONSE__INIT;
    r.event_case = SMAUG__V1__SYNC_ACTIVITY_RESPONSE__EVENT_PROGRESS;
    r.progress = &p;
    rt_call_send(call, &r.base);
  } else {
    Smaug__V1__ParallelActivityResponse r =
        SMAUG__V1__PARALLEL_ACTIVITY_RESPONSE__INIT;
    r.event_case = SMAUG__V1__PARALLEL_ACTIVITY_RESPONSE__EVENT_PROGRESS;
    r.progress = &p;
    rt_call_send(call, &r.base);
  }
}

static void parallel_activity(rt_call_t *call,
                              const Smaug__V1__ActivityRequest *req,
                              void *data) {
  send_progress(call, 0);
  Smaug__V1__ParallelResult res = SMAUG__V1__PARALLEL_RESULT__INIT;
  Smaug__V1__ParallelActivityResponse r =
      SMAUG__V1__PARALLEL_ACTIVITY_RESPONSE__INIT;
  r.event_case = SMAUG__V1__PARALLEL_ACTIVITY_RESPONSE__EVENT_RESULT;
  r.result = &res;
  rt_call_finish(call, GRPC_STATUS_OK, NULL, &r.base);
}

static void sync_activity(rt_call_t *call,
                          const Smaug__V1__ActivityRequest *req, void *data) {
  send_progress(call, 1);
  Smaug__V1__SyncResult__MetadataEntry md =
      SMAUG__V1__SYNC_RESULT__METADATA_ENTRY__INIT;
  md.key = "seen";
  md.value = "yes";
  Smaug__V1__SyncResult__MetadataEntry *mds[] = {&md};
  Smaug__V1__SyncResult res = SMAUG__V1__SYNC_RESULT__INIT;
  res.n_metadata = 1;
  res.metadata = mds;
  Smaug__V1__SyncActivityResponse r = SMAUG__V1__SYNC_ACTIVITY_RESPONSE__INIT;
  r.event_case = SMAUG__V1__SYNC_ACTIVITY_RESPONSE__EVENT_RESULT;
  r.result = &res;
  rt_call_finish(call, GRPC_STATUS_OK, NULL, &r.base);
}

static void cancel_operation(rt_call_t *call,
                             const Smaug__V1__CancelOperationRequest *req,
                             void *data) {
  Smaug__V1__CancelOperationResponse r =
      SMAUG__V1__CANCEL_OPERATION_RESPONSE__INIT;
  rt_call_reply(call, &r.base);
}

static const smaug_v1_protection_plugin_handlers_t handlers = {
    .get_plugin_info = get_plugin_info,
    .parallel_activity = parallel_activity,
    .sync_activity = sync_activity,
    .cancel_operation = cancel_operation,
};

static void on_stopped(rt_server_t *s, void *data) {
  stopped = 1;
  uv_close((uv_handle_t *)&lifetime, NULL);
}

static void on_lifetime(uv_timer_t *t) {
  rt_server_shutdown(srv, on_stopped, NULL);
}

int main(void) {
  uv_loop_t loop;
  rt_t *rt;
  int port, rc;
  if ((rc = uv_loop_init(&loop)) || (rc = rt_new(&loop, &rt)) ||
      (rc = rt_server_new(rt, NULL, &srv)) ||
      (rc = smaug_v1_protection_plugin_register(srv, &handlers, NULL)) ||
      (rc = rt_server_listen(srv, "127.0.0.1:0", &port)) ||
      (rc = rt_server_start(srv)) ||
      (rc = rt_server_stop_on_signals(srv, on_stopped, NULL))) {
    fprintf(stderr, "smaug-cli-test-plugin: %s\n", uv_strerror(rc));
    return 1;
  }
  uv_timer_init(&loop, &lifetime);
  uv_timer_start(&lifetime, on_lifetime, LIFETIME_MS, 0);
  printf("port=%d\n", port);
  fflush(stdout);
  while (!stopped)
    uv_run(&loop, UV_RUN_ONCE);
  rt_server_free(srv);
  rt_free(rt);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return 0;
}
