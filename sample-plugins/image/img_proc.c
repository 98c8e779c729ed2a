/*
 * img_proc.c - a child process under a private libuv loop, polled
 * (img_proc.h).
 */
#include "img_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

struct img_proc_s {
  uv_loop_t loop;
  uv_process_t proc;
  int exited;
  int64_t status;
  int term_signal;
  char *err_path;
  char name[64];
};

static void on_child_exit(uv_process_t *h, int64_t status, int term_signal) {
  img_proc_t *p = h->data;
  p->exited = 1;
  p->status = status;
  p->term_signal = term_signal;
}

int img_proc_start(char *const argv[], const char *err_path, img_proc_t **out) {
  img_proc_t *p = calloc(1, sizeof(*p));
  if (p == NULL)
    return UV_ENOMEM;
  if ((p->err_path = strdup(err_path)) == NULL) {
    free(p);
    return UV_ENOMEM;
  }
  snprintf(p->name, sizeof(p->name), "%s", argv[0]);
  int err = uv_loop_init(&p->loop);
  if (err != 0) {
    free(p->err_path);
    free(p);
    return err;
  }
  int efd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (efd < 0) {
    err = uv_translate_sys_error(errno);
    goto fail;
  }
  uv_stdio_container_t stdio[3] = {
      {.flags = UV_IGNORE}, {.flags = UV_IGNORE}, {.flags = UV_INHERIT_FD}};
  stdio[2].data.fd = efd;
  uv_process_options_t o = {.exit_cb = on_child_exit,
                            .file = argv[0],
                            .args = (char **)argv,
                            .stdio_count = 3,
                            .stdio = stdio};
  p->proc.data = p;
  err = uv_spawn(&p->loop, &p->proc, &o);
  close(efd);
  if (err != 0) {
    /* The handle must be closed even when the spawn failed. */
    uv_close((uv_handle_t *)&p->proc, NULL);
    goto fail;
  }
  *out = p;
  return 0;
fail:
  uv_run(&p->loop, UV_RUN_DEFAULT);
  uv_loop_close(&p->loop);
  unlink(p->err_path);
  free(p->err_path);
  free(p);
  return err;
}

int img_proc_poll(img_proc_t *p, char *msg, size_t msglen) {
  if (!p->exited)
    uv_run(&p->loop, UV_RUN_NOWAIT);
  if (!p->exited)
    return 0;
  if (p->status == 0 && p->term_signal == 0)
    return 1;
  char line[200] = "";
  FILE *f = fopen(p->err_path, "r");
  if (f != NULL) {
    if (fgets(line, sizeof(line), f) == NULL)
      line[0] = '\0';
    fclose(f);
    line[strcspn(line, "\n")] = '\0';
  }
  if (p->term_signal != 0)
    snprintf(msg, msglen, "%s was killed by signal %d%s%s", p->name,
             p->term_signal, line[0] ? ": " : "", line);
  else
    snprintf(msg, msglen, "%s exited with status %lld%s%s", p->name,
             (long long)p->status, line[0] ? ": " : "", line);
  return UV_EIO;
}

void img_proc_free(img_proc_t *p) {
  if (p == NULL)
    return;
  if (!p->exited) {
    uv_process_kill(&p->proc, SIGKILL);
    while (!p->exited) /* the exit arrives as soon as the kill lands */
      uv_run(&p->loop, UV_RUN_ONCE);
  }
  uv_close((uv_handle_t *)&p->proc, NULL);
  uv_run(&p->loop, UV_RUN_DEFAULT);
  uv_loop_close(&p->loop);
  unlink(p->err_path);
  free(p->err_path);
  free(p);
}
