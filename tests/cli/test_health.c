/*
 * test_health.c - `smaug health` and the unreachable-server exit code,
 * against a runtime server in this process. The smaug binary runs as a
 * child process on the test's own loop (spawn.h).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"
#include "spawn.h"

typedef struct {
  uv_loop_t loop;
  rt_t *rt;
  rt_server_t *srv;
  int port;
  spawn_result_t res;
} fx_t;

static fx_t fx;

static void setup(void) {
  memset(&fx, 0, sizeof(fx));
  cr_assert_eq(uv_loop_init(&fx.loop), 0);
  cr_assert_eq(rt_new(&fx.loop, &fx.rt), 0);
  cr_assert_eq(rt_server_new(fx.rt, NULL, &fx.srv), 0);
  cr_assert_eq(rt_server_listen(fx.srv, "127.0.0.1:0", &fx.port), 0);
  cr_assert_eq(rt_server_start(fx.srv), 0);
}

static void teardown(void) {
  cr_assert_eq(spawn_server_close(&fx.loop, fx.rt, fx.srv), 0);
}

/* Runs the smaug binary with `args`; returns its exit status. Its stdout
 * is in fx.res.out. */
static int64_t run_smaug(const char *const *args) {
  cr_assert_eq(spawn_smaug(&fx.loop, SMAUG_BIN, args, &fx.res), 0);
  return fx.res.status;
}

static const char *addr(char *b, int port) {
  sprintf(b, "127.0.0.1:%d", port);
  return b;
}

TestSuite(health, .init = setup, .fini = teardown);

Test(health, serving_server_exits_0, .timeout = 20) {
  char a[32];
  const char *args[] = {"health", addr(a, fx.port), NULL};
  cr_assert_eq(run_smaug(args), 0);
  cr_assert_str_eq(fx.res.out, "SERVING\n");
}

Test(health, not_serving_server_exits_1, .timeout = 20) {
  char a[32];
  rt_server_set_serving(fx.srv, "", 0);
  const char *args[] = {"health", addr(a, fx.port), NULL};
  cr_assert_eq(run_smaug(args), 1);
  cr_assert_str_eq(fx.res.out, "NOT_SERVING\n");
}

Test(health, unknown_service_exits_1, .timeout = 20) {
  char a[32];
  const char *args[] = {"health", addr(a, fx.port), "--service", "no.Such",
                        NULL};
  cr_assert_eq(run_smaug(args), 1);
}

Test(health, json_output_parses, .timeout = 20) {
  char a[32];
  const char *args[] = {"-o", "json", "health", addr(a, fx.port), NULL};
  cr_assert_eq(run_smaug(args), 0);
  json_error_t e;
  json_t *j = json_loads(fx.res.out, 0, &e);
  cr_assert_not_null(j, "%s: %s", e.text, fx.res.out);
  cr_assert_str_eq(json_string_value(json_object_get(j, "status")), "SERVING");
  cr_assert_str_eq(json_string_value(json_object_get(j, "address")), a);
  json_decref(j);
}

/* A port that was just free: bind it, note it, close it. */
static int closed_port(void) {
  uv_tcp_t t;
  struct sockaddr_in sa;
  struct sockaddr_storage got;
  int len = sizeof(got);
  cr_assert_eq(uv_tcp_init(&fx.loop, &t), 0);
  uv_ip4_addr("127.0.0.1", 0, &sa);
  cr_assert_eq(uv_tcp_bind(&t, (struct sockaddr *)&sa, 0), 0);
  cr_assert_eq(uv_tcp_getsockname(&t, (struct sockaddr *)&got, &len), 0);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&fx.loop, UV_RUN_NOWAIT);
  return ntohs(((struct sockaddr_in *)&got)->sin_port);
}

Test(health, closed_port_exits_3, .timeout = 20) {
  char a[32];
  const char *args[] = {"health", addr(a, closed_port()), "--timeout", "2000",
                        NULL};
  cr_assert_eq(run_smaug(args), 3);
}

Test(health, orchestrator_call_to_closed_port_exits_3, .timeout = 20) {
  char a[32];
  const char *args[] = {
      "--server", addr(a, closed_port()), "--timeout", "2000", "plan", "list",
      NULL};
  cr_assert_eq(run_smaug(args), 3);
}

Test(health, server_without_orchestrator_exits_1, .timeout = 20) {
  /* Reachable, but it answers UNIMPLEMENTED: a failed request, not 3. */
  char a[32];
  const char *args[] = {"--server", addr(a, fx.port), "plan", "list", NULL};
  cr_assert_eq(run_smaug(args), 1);
}
