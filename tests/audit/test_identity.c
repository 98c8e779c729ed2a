/*
 * test_identity.c - Criterion suite for plugin identities in the registry
 * (registry.h: reg_plugin_identity, reg_add_ex), against real fake-plugin
 * processes: a unix-socket plugin is its path and owner, a plaintext TCP
 * one its unverified address; a replacement by another identity is
 * refused without take_over, and allowed with it or for the same
 * identity.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "harness.h"
#include "registry.h"

TestSuite(identity, .timeout = 60);

typedef struct {
  uv_loop_t loop;
  rt_t *rt;
  reg_t *reg;
  int done;
  grpc_status_code code;
  char msg[4096];
  reg_plugin_t *p;
} fx_t;

static void on_added(reg_t *reg, grpc_status_code code, const char *msg,
                     reg_plugin_t *p, void *data) {
  fx_t *f = data;
  (void)reg;
  f->done = 1;
  f->code = code;
  snprintf(f->msg, sizeof(f->msg), "%s", msg ? msg : "");
  f->p = p;
}

/* Registers `addr` and runs the loop until the registry answers. */
static grpc_status_code add(fx_t *f, const char *addr, int replace,
                            int take_over) {
  f->done = 0;
  f->p = NULL;
  cr_assert_eq(reg_add_ex(f->reg, addr, replace, take_over, on_added, f), 0);
  while (!f->done)
    uv_run(&f->loop, UV_RUN_ONCE);
  return f->code;
}

Test(identity, pinned_by_socket_and_replaced_only_with_take_over) {
  char dir[64], a_addr[128], b_addr[128], want_a[200], want_b[200];
  tmpdir_make(dir, sizeof(dir));
  snprintf(a_addr, sizeof(a_addr), "unix:%s/a.sock", dir);
  snprintf(b_addr, sizeof(b_addr), "unix:%s/b.sock", dir);
  snprintf(want_a, sizeof(want_a), "%s uid=%u", a_addr, (unsigned)getuid());
  snprintf(want_b, sizeof(want_b), "%s uid=%u", b_addr, (unsigned)getuid());
  const char *a_args[] = {"--listen", a_addr, "--types", "t.vol", NULL};
  const char *b_args[] = {"--listen", b_addr, "--types", "t.vol", NULL};
  const char *c_args[] = {"--listen", "127.0.0.1:0", "--types", "t.tcp", NULL};
  proc_t a, b, c;
  cr_assert_eq(plugin_start(&a, dir, "fa", a_args), 0);
  cr_assert_eq(plugin_start(&b, dir, "fb", b_args), 0);
  cr_assert_eq(plugin_start(&c, dir, "fc", c_args), 0);

  fx_t f;
  memset(&f, 0, sizeof(f));
  cr_assert_eq(uv_loop_init(&f.loop), 0);
  cr_assert_eq(rt_new(&f.loop, &f.rt), 0);
  cr_assert_eq(reg_new(f.rt, &f.reg), 0);

  cr_assert_eq(add(&f, a_addr, 0, 0), GRPC_STATUS_OK, "%s", f.msg);
  cr_assert_str_eq(reg_plugin_identity(f.p), want_a);
  /* Another identity for t.vol: refused without take_over, named. */
  cr_assert_eq(add(&f, b_addr, 1, 0), GRPC_STATUS_PERMISSION_DENIED, "%s",
               f.msg);
  cr_assert_not_null(strstr(f.msg, want_a), "%s", f.msg);
  cr_assert_not_null(strstr(f.msg, want_b), "%s", f.msg);
  cr_assert_not_null(strstr(f.msg, "needs admin"), "%s", f.msg);
  cr_assert_str_eq(reg_plugin_identity(reg_find_type(f.reg, "t.vol", NULL)),
                   want_a);
  /* Without replace it is the old conflict. */
  cr_assert_eq(add(&f, b_addr, 0, 0), GRPC_STATUS_ALREADY_EXISTS, "%s", f.msg);
  /* The same identity again is an update, take_over or not. */
  cr_assert_eq(add(&f, a_addr, 1, 0), GRPC_STATUS_OK, "%s", f.msg);
  cr_assert_eq(reg_count(f.reg), 1);
  /* With take_over the type changes hands. */
  cr_assert_eq(add(&f, b_addr, 1, 1), GRPC_STATUS_OK, "%s", f.msg);
  cr_assert_eq(reg_count(f.reg), 1);
  cr_assert_str_eq(reg_plugin_identity(reg_find_type(f.reg, "t.vol", NULL)),
                   want_b);
  /* Plaintext TCP: the address, unverified. */
  cr_assert_eq(add(&f, c.addr, 0, 0), GRPC_STATUS_OK, "%s", f.msg);
  char want_c[600];
  snprintf(want_c, sizeof(want_c), "tcp:%s (unverified)", c.addr);
  cr_assert_str_eq(reg_plugin_identity(f.p), want_c);

  reg_close(f.reg);
  uv_run(&f.loop, UV_RUN_DEFAULT);
  reg_free(f.reg);
  rt_free(f.rt);
  cr_assert_eq(uv_loop_close(&f.loop), 0);
  proc_stop(&a, SIGTERM);
  proc_stop(&b, SIGTERM);
  proc_stop(&c, SIGTERM);
  tmpdir_remove(dir);
}
