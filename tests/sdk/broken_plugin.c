/*
 * broken_plugin.c - a plugin written directly on the runtime, without the
 * SDK, that breaks one rule of the protocol on purpose, so the tests can
 * show that smaug-plugin-check catches it:
 *
 *   --mode nowait  Parallel starts the copy in the background and Sync
 *                  answers at once, without waiting for it;
 *   --mode redo    every call does the copy again, replays included.
 *
 * It protects "broken.blob" by writing 4 objects into the bank section.
 */
#include "rt.h"
#include "rt_log.h"
#include "smaug/plugin.h"
#include "smaug/v1/plugin.smaug.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int redo;

typedef struct {
  uv_work_t w;
  char uri[1024], section[512];
} copy_t;

static void copy_objects(const char *uri, const char *section, int delay_ms) {
  smaug_bank_t *bank;
  if (smaug_bank_open(uri, section, &bank) != 0)
    return;
  for (int i = 0; i < 4; i++) {
    char key[16];
    snprintf(key, sizeof(key), "obj-%d", i);
    usleep((unsigned)delay_ms * 1000u);
    smaug_bank_put(bank, key, "data", 4);
  }
  smaug_bank_free(bank);
}

static void copy_work(uv_work_t *w) {
  copy_t *c = w->data;
  copy_objects(c->uri, c->section, 60);
}

static void copy_after(uv_work_t *w, int status) {
  free(w->data);
}

static void on_info(rt_call_t *call, const Smaug__V1__GetPluginInfoRequest *req,
                    void *data) {
  Smaug__V1__OperationSupport op = SMAUG__V1__OPERATION_SUPPORT__INIT;
  op.kind = SMAUG__V1__OPERATION_KIND__OPERATION_KIND_PROTECT;
  op.parallel = op.sync = 1;
  Smaug__V1__OperationSupport *ops[] = {&op};
  Smaug__V1__ResourceTypeInfo t = SMAUG__V1__RESOURCE_TYPE_INFO__INIT;
  t.type = "broken.blob";
  t.n_operations = 1;
  t.operations = ops;
  Smaug__V1__ResourceTypeInfo *types[] = {&t};
  Smaug__V1__GetPluginInfoResponse r =
      SMAUG__V1__GET_PLUGIN_INFO_RESPONSE__INIT;
  r.name = redo ? "broken-redo" : "broken-nowait";
  r.version = "1";
  r.protocol_major = 1;
  r.n_types = 1;
  r.types = types;
  rt_call_reply(call, &r.base);
}

static int bad_request(rt_call_t *call, const Smaug__V1__ActivityRequest *req) {
  if (req->operation == NULL || req->operation->id[0] == '\0' ||
      req->resource == NULL || req->resource->id[0] == '\0') {
    rt_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "missing fields");
    return 1;
  }
  return 0;
}

static void on_parallel(rt_call_t *call, const Smaug__V1__ActivityRequest *req,
                        void *data) {
  if (bad_request(call, req))
    return;
  if (redo) {
    copy_objects(req->bank_uri, req->bank_section, 0);
  } else {
    copy_t *c = calloc(1, sizeof(*c));
    snprintf(c->uri, sizeof(c->uri), "%s", req->bank_uri);
    snprintf(c->section, sizeof(c->section), "%s", req->bank_section);
    c->w.data = c;
    uv_queue_work(rt_loop(data), &c->w, copy_work, copy_after);
  }
  Smaug__V1__ParallelResult res = SMAUG__V1__PARALLEL_RESULT__INIT;
  res.state.data = (uint8_t *)"4";
  res.state.len = 1;
  Smaug__V1__ParallelActivityResponse m =
      SMAUG__V1__PARALLEL_ACTIVITY_RESPONSE__INIT;
  m.event_case = SMAUG__V1__PARALLEL_ACTIVITY_RESPONSE__EVENT_RESULT;
  m.result = &res;
  rt_call_finish(call, GRPC_STATUS_OK, NULL, &m.base);
}

static void on_sync(rt_call_t *call, const Smaug__V1__ActivityRequest *req,
                    void *data) {
  if (bad_request(call, req))
    return;
  Smaug__V1__SyncResult res = SMAUG__V1__SYNC_RESULT__INIT;
  Smaug__V1__SyncActivityResponse m = SMAUG__V1__SYNC_ACTIVITY_RESPONSE__INIT;
  m.event_case = SMAUG__V1__SYNC_ACTIVITY_RESPONSE__EVENT_RESULT;
  m.result = &res;
  rt_call_finish(call, GRPC_STATUS_OK, NULL, &m.base);
}

static void on_cancel_op(rt_call_t *call,
                         const Smaug__V1__CancelOperationRequest *req,
                         void *data) {
  Smaug__V1__CancelOperationResponse r =
      SMAUG__V1__CANCEL_OPERATION_RESPONSE__INIT;
  rt_call_reply(call, &r.base);
}

static void on_stopped(rt_server_t *srv, void *data) {
  *(int *)data = 1;
}

int main(int argc, char **argv) {
  const char *listen = "127.0.0.1:0";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--mode") == 0)
      redo = strcmp(argv[i + 1], "redo") == 0;
    else if (strcmp(argv[i], "--listen") == 0)
      listen = argv[i + 1];
  }
  uv_loop_t loop;
  uv_loop_init(&loop);
  rt_t *rt;
  rt_server_t *srv;
  int port = 0, stopped = 0;
  if (rt_new(&loop, &rt) != 0 || rt_server_new(rt, NULL, &srv) != 0)
    return 1;
  static smaug_v1_protection_plugin_handlers_t h = {
      .get_plugin_info = on_info,
      .parallel_activity = on_parallel,
      .sync_activity = on_sync,
      .cancel_operation = on_cancel_op};
  if (smaug_v1_protection_plugin_register(srv, &h, rt) != 0 ||
      rt_server_listen(srv, listen, &port) != 0 || rt_server_start(srv) != 0)
    return 1;
  rt_log(RT_LOG_INFO, "plugin", "listening", "addr=127.0.0.1:%d", port);
  rt_server_stop_on_signals(srv, on_stopped, &stopped);
  while (!stopped)
    uv_run(&loop, UV_RUN_ONCE);
  rt_server_free(srv);
  rt_free(rt);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return 0;
}
