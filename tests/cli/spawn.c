/*
 * spawn.c - running the smaug binary on a test's loop (see spawn.h).
 */
#include "spawn.h"

#include <string.h>

typedef struct {
  spawn_result_t *res;
  uv_process_t proc;
  uv_pipe_t out, err;
  int exited, open_pipes;
} run_t;

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  run_t *r = h->data;
  if (h == (uv_handle_t *)&r->out) {
    b->base = r->res->out + r->res->out_len;
    b->len = sizeof(r->res->out) - 1 - r->res->out_len;
  } else {
    b->base = r->res->err + r->res->err_len;
    b->len = sizeof(r->res->err) - 1 - r->res->err_len;
  }
}

static void on_closed(uv_handle_t *h) {
  run_t *r = h->data;
  r->open_pipes--;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  run_t *r = s->data;
  if (n > 0) {
    if (s == (uv_stream_t *)&r->out)
      r->res->out_len += (size_t)n;
    else
      r->res->err_len += (size_t)n;
  } else if (n < 0) {
    uv_close((uv_handle_t *)s, on_closed);
  }
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig) {
  run_t *r = p->data;
  r->res->status = sig ? 128 + sig : status;
  r->exited = 1;
  uv_close((uv_handle_t *)p, NULL);
}

int spawn_smaug(uv_loop_t *loop, const char *bin, const char *const *args,
                spawn_result_t *res) {
  run_t r = {.res = res};
  char *argv[32];
  int n = 0, rc;
  memset(res, 0, sizeof(*res));
  argv[n++] = (char *)bin;
  for (; *args && n < 31; args++)
    argv[n++] = (char *)*args;
  argv[n] = NULL;
  uv_pipe_init(loop, &r.out, 0);
  uv_pipe_init(loop, &r.err, 0);
  r.out.data = r.err.data = r.proc.data = &r;
  uv_stdio_container_t stdio[3] = {{.flags = UV_IGNORE},
                                   {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE,
                                    .data.stream = (uv_stream_t *)&r.out},
                                   {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE,
                                    .data.stream = (uv_stream_t *)&r.err}};
  uv_process_options_t o = {.file = bin,
                            .args = argv,
                            .exit_cb = on_exit_cb,
                            .stdio_count = 3,
                            .stdio = stdio};
  r.open_pipes = 2;
  if ((rc = uv_spawn(loop, &r.proc, &o)) != 0) {
    uv_close((uv_handle_t *)&r.out, on_closed);
    uv_close((uv_handle_t *)&r.err, on_closed);
    uv_close((uv_handle_t *)&r.proc, NULL);
    while (r.open_pipes > 0)
      uv_run(loop, UV_RUN_ONCE);
    return rc;
  }
  uv_read_start((uv_stream_t *)&r.out, on_alloc, on_read);
  uv_read_start((uv_stream_t *)&r.err, on_alloc, on_read);
  while (!r.exited || r.open_pipes > 0)
    uv_run(loop, UV_RUN_ONCE);
  res->out[res->out_len] = '\0';
  res->err[res->err_len] = '\0';
  return 0;
}

static void on_server_stopped(rt_server_t *srv, void *data) {
  (void)srv;
  *(int *)data = 1;
}

int spawn_server_close(uv_loop_t *loop, rt_t *rt, rt_server_t *srv) {
  int stopped = 0;
  int err = rt_server_shutdown(srv, on_server_stopped, &stopped);
  if (err)
    return err;
  while (!stopped)
    uv_run(loop, UV_RUN_ONCE);
  rt_server_free(srv);
  rt_free(rt);
  uv_run(loop, UV_RUN_DEFAULT);
  return uv_loop_close(loop);
}
