/*
 * harness.c - the in-process plugin + client fixture of the SDK suites
 * (harness.h).
 */
#include "harness.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

void h_start(h_t *h, const smaug_plugin_def_t *def, const char *const *args) {
  memset(h, 0, sizeof(*h));
  cr_assert_eq(uv_loop_init(&h->loop), 0);
  cr_assert_eq(rt_new(&h->loop, &h->rt), 0);
  char *argv[32] = {"plugin", "--listen", "127.0.0.1:0"};
  int argc = 3;
  for (size_t i = 0; args != NULL && args[i] != NULL && argc < 31; i++)
    argv[argc++] = (char *)args[i];
  cr_assert_eq(sdk_plugin_new(h->rt, def, argc, argv, &h->p), 0);
  cr_assert_eq(sdk_plugin_start(h->p, &h->port), 0);
  cr_assert_gt(h->port, 0);
  char target[64];
  snprintf(target, sizeof(target), "127.0.0.1:%d", h->port);
  cr_assert_eq(chk_open_on(&h->c, h->rt, target), 0);
}

static void on_stopped(smaug_plugin_t *p, void *data) {
  h_t *h = data;
  h->stopped = 1;
}

void h_stop(h_t *h) {
  chk_close(&h->c);
  sdk_plugin_stop(h->p, on_stopped, h);
  h_wait(h, &h->stopped);
  sdk_plugin_free(h->p);
  rt_free(h->rt);
  uv_run(&h->loop, UV_RUN_DEFAULT);
  cr_assert_eq(uv_loop_close(&h->loop), 0, "handles left open");
}

void h_wait(h_t *h, const volatile int *flag) {
  while (!*flag)
    uv_run(&h->loop, UV_RUN_ONCE);
}

void h_req(chk_req_t *r, const char *op, const char *type, const char *id,
           int sync) {
  static char keys[8][256];
  static int next;
  char *key = keys[next++ % 8];
  memset(r, 0, sizeof(*r));
  r->op_id = op;
  r->op_kind = 1;
  r->checkpoint_id = "cp";
  r->type = type;
  r->id = id;
  r->bank_uri = "file:///nonexistent";
  r->section = "s";
  r->sync = sync;
  snprintf(key, 256, "%s/%s/%s/%s", op, type, id, sync ? "sync" : "parallel");
  r->key = key;
}

static pthread_mutex_t tr_mu = PTHREAD_MUTEX_INITIALIZER;
static char tr_ev[4096][48];
static int tr_n;

void trace_reset(void) {
  pthread_mutex_lock(&tr_mu);
  tr_n = 0;
  pthread_mutex_unlock(&tr_mu);
}

void trace_add(const char *ev) {
  pthread_mutex_lock(&tr_mu);
  if (tr_n < 4096)
    snprintf(tr_ev[tr_n++], sizeof(tr_ev[0]), "%s", ev);
  pthread_mutex_unlock(&tr_mu);
}

int trace_pos(const char *ev) {
  int pos = -1;
  pthread_mutex_lock(&tr_mu);
  for (int i = 0; i < tr_n && pos < 0; i++)
    if (strcmp(tr_ev[i], ev) == 0)
      pos = i;
  pthread_mutex_unlock(&tr_mu);
  return pos;
}

int trace_count(const char *ev) {
  int n = 0;
  pthread_mutex_lock(&tr_mu);
  for (int i = 0; i < tr_n; i++)
    n += strcmp(tr_ev[i], ev) == 0;
  pthread_mutex_unlock(&tr_mu);
  return n;
}
