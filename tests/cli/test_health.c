/*
 * test_health.c - `smaug health` and the unreachable-server exit code,
 * against a runtime server in this process. The smaug binary runs as a
 * child process on the test's own loop (uv_spawn), so the server keeps
 * answering while the client runs, with no threads and no sleeps.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

typedef struct {
  uv_loop_t loop;
  rt_t *rt;
  rt_server_t *srv;
  int port;
  int stopped;
  /* The child. */
  uv_process_t proc;
  uv_pipe_t out;
  char buf[4096];
  size_t len;
  int exited, out_closed;
  int64_t status;
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

static void on_stopped(rt_server_t *srv, void *data) {
  fx.stopped = 1;
}

static void teardown(void) {
  cr_assert_eq(rt_server_shutdown(fx.srv, on_stopped, NULL), 0);
  while (!fx.stopped)
    uv_run(&fx.loop, UV_RUN_ONCE);
  rt_server_free(fx.srv);
  rt_free(fx.rt);
  uv_run(&fx.loop, UV_RUN_DEFAULT);
  cr_assert_eq(uv_loop_close(&fx.loop), 0);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  b->base = fx.buf + fx.len;
  b->len = sizeof(fx.buf) - 1 - fx.len;
}

static void on_closed(uv_handle_t *h) {
  if (h == (uv_handle_t *)&fx.out)
    fx.out_closed = 1;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  if (n > 0)
    fx.len += (size_t)n;
  else if (n < 0)
    uv_close((uv_handle_t *)s, on_closed);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig) {
  fx.status = status;
  fx.exited = 1;
  uv_close((uv_handle_t *)p, NULL);
}

/* Runs the smaug binary with `args` (NULL-terminated) and returns its exit
 * status; its stdout is in fx.buf. */
static int64_t run_smaug(const char *const *args) {
  char *argv[16];
  int n = 0;
  argv[n++] = SMAUG_BIN;
  for (; *args && n < 15; args++)
    argv[n++] = (char *)*args;
  argv[n] = NULL;
  cr_assert_eq(uv_pipe_init(&fx.loop, &fx.out, 0), 0);
  uv_stdio_container_t stdio[3] = {{.flags = UV_IGNORE},
                                   {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE,
                                    .data.stream = (uv_stream_t *)&fx.out},
                                   {.flags = UV_INHERIT_FD, .data.fd = 2}};
  uv_process_options_t o = {.file = SMAUG_BIN,
                            .args = argv,
                            .exit_cb = on_exit_cb,
                            .stdio_count = 3,
                            .stdio = stdio};
  cr_assert_eq(uv_spawn(&fx.loop, &fx.proc, &o), 0);
  cr_assert_eq(uv_read_start((uv_stream_t *)&fx.out, on_alloc, on_read), 0);
  while (!fx.exited || !fx.out_closed)
    uv_run(&fx.loop, UV_RUN_ONCE);
  fx.buf[fx.len] = '\0';
  return fx.status;
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
  cr_assert_str_eq(fx.buf, "SERVING\n");
}

Test(health, not_serving_server_exits_1, .timeout = 20) {
  char a[32];
  rt_server_set_serving(fx.srv, "", 0);
  const char *args[] = {"health", addr(a, fx.port), NULL};
  cr_assert_eq(run_smaug(args), 1);
  cr_assert_str_eq(fx.buf, "NOT_SERVING\n");
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
  json_t *j = json_loads(fx.buf, 0, &e);
  cr_assert_not_null(j, "%s: %s", e.text, fx.buf);
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
