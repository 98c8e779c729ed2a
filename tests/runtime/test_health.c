/*
 * test_health.c - grpc.health.v1.Health as every rt server serves it:
 * Check per service, NOT_FOUND for unknown ones, status changes seen by
 * Check and streamed by Watch, and Watch streams ended by shutdown.
 *
 * Each test owns a loop, a runtime and a server on 127.0.0.1 port 0 with
 * the runtime's test service registered, and calls it through the
 * generated health client stubs. Watch tests record the statuses they
 * receive and check the trace; the test's last event shuts the server
 * down, so uv_run returns once everything is released and the test ends
 * with uv_loop_close() == 0.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "grpc/health/v1/health.smaug.h"
#include "rt.h"
#include "testsvc.smaug.h"

#define SERVING GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
#define NOT_SERVING                                                            \
  GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING
#define SERVICE_UNKNOWN                                                        \
  GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN

typedef struct fx_s fx_t;
/* Called for every status a Watch receives; may act on the server. */
typedef void (*on_status_fn)(fx_t *f, int status);

struct fx_s {
  uv_loop_t loop;
  rt_t *rt;
  rt_server_t *srv;
  rt_channel_t *ch;
  int stopped;
  int shut;
  /* recorded by the client callbacks */
  int trace[16];
  int n_trace;
  int dones;
  grpc_status_code code;
  char message[256];
  rt_client_call_t *cc;
  on_status_fn on_status;
};

static fx_t fx;
static const rttest_test_handlers_t no_handlers; /* all UNIMPLEMENTED */

static void on_stopped(rt_server_t *srv, void *data) {
  fx_t *f = data;
  f->stopped++;
}

static void fx_shutdown(fx_t *f) {
  if (f->shut)
    return;
  f->shut = 1;
  rt_channel_release(f->ch);
  f->ch = NULL;
  cr_assert_eq(rt_server_shutdown(f->srv, on_stopped, f), 0);
}

static void setup(void) {
  memset(&fx, 0, sizeof(fx));
  cr_assert_eq(uv_loop_init(&fx.loop), 0);
  cr_assert_eq(rt_new(&fx.loop, &fx.rt), 0);
  cr_assert_eq(rt_server_new(fx.rt, NULL, &fx.srv), 0);
  cr_assert_eq(rttest_test_register(fx.srv, &no_handlers, &fx), 0);
  int port = 0;
  cr_assert_eq(rt_server_listen(fx.srv, "127.0.0.1:0", &port), 0);
  cr_assert_gt(port, 0);
  cr_assert_eq(rt_server_start(fx.srv), 0);
  char target[64];
  snprintf(target, sizeof(target), "127.0.0.1:%d", port);
  cr_assert_eq(rt_channel_get(fx.rt, target, &fx.ch), 0);
}

/* Runs until the server has stopped and everything is released. */
static void fx_run(fx_t *f) {
  cr_assert_eq(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  cr_assert_eq(f->stopped, 1, "the server did not stop");
  rt_server_free(f->srv);
  f->srv = NULL;
  rt_free(f->rt);
  f->rt = NULL;
  cr_assert_eq(uv_loop_close(&f->loop), 0);
}

TestSuite(health, .init = setup, .timeout = 20);

/* ------------------------------------------------------------- Check */

static void on_check_msg(rt_client_call_t *call, const ProtobufCMessage *msg,
                         void *data) {
  fx_t *f = data;
  const Grpc__Health__V1__HealthCheckResponse *r = (const void *)msg;
  if (f->n_trace < 16)
    f->trace[f->n_trace++] = r->status;
}

static void on_done(rt_client_call_t *call, grpc_status_code code,
                    const char *message, void *data) {
  fx_t *f = data;
  f->dones++;
  f->code = code;
  snprintf(f->message, sizeof(f->message), "%s", message ? message : "");
  fx_shutdown(f);
}

static void check(fx_t *f, const char *service) {
  Grpc__Health__V1__HealthCheckRequest req =
      GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  req.service = (char *)service;
  rt_call_opts_t opts = {.timeout_ms = 5000};
  cr_assert_eq(grpc_health_v1_health_check(f->ch, &req, &opts, on_check_msg,
                                           on_done, f, NULL),
               0);
  fx_run(f);
  cr_assert_eq(f->dones, 1);
}

Test(health, check_whole_server_is_serving) {
  check(&fx, "");
  cr_expect_eq(fx.code, GRPC_STATUS_OK, "%s", fx.message);
  cr_assert_eq(fx.n_trace, 1);
  cr_expect_eq(fx.trace[0], SERVING);
}

Test(health, check_registered_service_is_serving) {
  check(&fx, "rttest.Test");
  cr_expect_eq(fx.code, GRPC_STATUS_OK, "%s", fx.message);
  cr_assert_eq(fx.n_trace, 1);
  cr_expect_eq(fx.trace[0], SERVING);
}

Test(health, check_unknown_service_is_not_found) {
  check(&fx, "no.such.Service");
  cr_expect_eq(fx.code, GRPC_STATUS_NOT_FOUND);
  cr_expect(strstr(fx.message, "no.such.Service") != NULL, "%s", fx.message);
  cr_expect_eq(fx.n_trace, 0);
}

Test(health, check_sees_not_serving) {
  rt_server_set_serving(fx.srv, "rttest.Test", 0);
  check(&fx, "rttest.Test");
  cr_expect_eq(fx.code, GRPC_STATUS_OK, "%s", fx.message);
  cr_assert_eq(fx.n_trace, 1);
  cr_expect_eq(fx.trace[0], NOT_SERVING);
}

Test(health, check_sees_whole_server_not_serving) {
  rt_server_set_serving(fx.srv, "", 0);
  check(&fx, "");
  cr_assert_eq(fx.n_trace, 1);
  cr_expect_eq(fx.trace[0], NOT_SERVING);
}

/* ------------------------------------------------------------- Watch */

static void on_watch_msg(rt_client_call_t *call, const ProtobufCMessage *msg,
                         void *data) {
  fx_t *f = data;
  const Grpc__Health__V1__HealthCheckResponse *r = (const void *)msg;
  if (f->n_trace < 16)
    f->trace[f->n_trace++] = r->status;
  f->on_status(f, r->status);
}

static void watch(fx_t *f, const char *service, on_status_fn on_status) {
  Grpc__Health__V1__HealthCheckRequest req =
      GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  req.service = (char *)service;
  f->on_status = on_status;
  cr_assert_eq(grpc_health_v1_health_watch(f->ch, &req, NULL, on_watch_msg,
                                           on_done, f, &f->cc),
               0);
  fx_run(f);
  cr_assert_eq(f->dones, 1);
}

/* SERVING -> set NOT_SERVING twice -> set SERVING -> cancel. */
static void flip_then_cancel(fx_t *f, int status) {
  if (f->n_trace == 1) {
    rt_server_set_serving(f->srv, "rttest.Test", 0);
    rt_server_set_serving(f->srv, "rttest.Test", 0);   /* no change */
    rt_server_set_serving(f->srv, "other.Service", 0); /* not watched */
  } else if (f->n_trace == 2) {
    rt_server_set_serving(f->srv, "rttest.Test", 1);
  } else {
    rt_client_call_cancel(f->cc);
  }
}

Test(health, watch_streams_each_change_once) {
  watch(&fx, "rttest.Test", flip_then_cancel);
  cr_expect_eq(fx.code, GRPC_STATUS_CANCELLED);
  cr_assert_eq(fx.n_trace, 3);
  cr_expect_eq(fx.trace[0], SERVING);
  cr_expect_eq(fx.trace[1], NOT_SERVING);
  cr_expect_eq(fx.trace[2], SERVING);
}

static void add_later_then_cancel(fx_t *f, int status) {
  if (f->n_trace == 1)
    rt_server_set_serving(f->srv, "later.Service", 1);
  else
    rt_client_call_cancel(f->cc);
}

Test(health, watch_unknown_service_streams_service_unknown) {
  watch(&fx, "later.Service", add_later_then_cancel);
  cr_assert_eq(fx.n_trace, 2);
  cr_expect_eq(fx.trace[0], SERVICE_UNKNOWN);
  cr_expect_eq(fx.trace[1], SERVING);
}

static void shutdown_on_first(fx_t *f, int status) {
  if (f->n_trace == 1)
    fx_shutdown(f);
}

Test(health, watch_ends_ok_on_server_shutdown) {
  watch(&fx, "", shutdown_on_first);
  cr_expect_eq(fx.code, GRPC_STATUS_OK, "%s: %s", rt_status_name(fx.code),
               fx.message);
  cr_assert_eq(fx.n_trace, 2);
  cr_expect_eq(fx.trace[0], SERVING);
  cr_expect_eq(fx.trace[1], NOT_SERVING);
}
