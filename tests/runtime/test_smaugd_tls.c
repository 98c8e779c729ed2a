/*
 * test_smaugd_tls.c - smaugd's transport policy (server/tls.h) without a
 * daemon: which listen addresses count as loopback, the listen refusal with
 * and without TLS, --insecure and the authentication hook, and the
 * credentials each plugin address is dialled with (through the runtime's
 * channel chooser: a refused plugin address fails rt_channel_get with
 * UV_EPERM and a reason). No channel here connects anywhere.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tls.h"

static char dir[64];

static void certs(void) {
  snprintf(dir, sizeof(dir), "/tmp/smaug-tlspol-%d", (int)getpid());
  char cmd[512];
  snprintf(cmd, sizeof(cmd), "rm -rf %s && mkdir -m 700 %s && sh %s %s", dir,
           dir, TLS_CERTS_SH, dir);
  cr_assert_eq(system(cmd), 0);
}

static void certs_rm(void) {
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
  cr_assert_eq(system(cmd), 0);
}

static char *P(const char *name) {
  static char b[4][256];
  static int i;
  char *s = b[i++ % 4];
  snprintf(s, 256, "%s/%s", dir, name);
  return s;
}

Test(smaugd_tls, loopback_addresses) {
  cr_assert(tls_is_loopback("127.0.0.1:7420"));
  cr_assert(tls_is_loopback("127.8.9.1:1"));
  cr_assert(tls_is_loopback("[::1]:7420"));
  cr_assert(tls_is_loopback("localhost:7420"));
  cr_assert(!tls_is_loopback("0.0.0.0:7420"));
  cr_assert(!tls_is_loopback("[::]:7420"));
  cr_assert(!tls_is_loopback(":7420"));
  cr_assert(!tls_is_loopback("10.1.2.3:7420"));
  cr_assert(!tls_is_loopback("smaug.example:7420"));
  cr_assert(!tls_is_loopback("unix:/tmp/x.sock"));
  cr_assert(!tls_is_loopback("garbage"));
}

typedef struct {
  uv_loop_t loop;
  rt_t *rt;
  tls_t *tls;
} fx_t;

static void fx_new(fx_t *f, const tls_settings_t *s) {
  cr_assert_eq(uv_loop_init(&f->loop), 0);
  cr_assert_eq(rt_new(&f->loop, &f->rt), 0);
  char why[512];
  cr_assert_eq(tls_new(f->rt, s, &f->tls, why, sizeof(why)), 0, "%s", why);
}

static void fx_free(fx_t *f) {
  tls_free(f->tls);
  rt_free(f->rt);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  cr_assert_eq(uv_loop_close(&f->loop), 0);
}

/* 0 when a channel to `target` may be made; the error otherwise. */
static int dial(fx_t *f, const char *target) {
  rt_channel_t *ch = NULL;
  int err = rt_channel_get(f->rt, target, &ch);
  rt_channel_release(ch);
  return err;
}

Test(smaugd_tls, listen_refused_without_tls_unless_insecure) {
  fx_t f;
  tls_settings_t s = {0};
  fx_new(&f, &s);
  char why[512];
  cr_assert_eq(tls_check_listen(f.tls, "127.0.0.1:0", TLS_AUTH_NOT_AVAILABLE,
                                why, sizeof(why)),
               0);
  cr_assert_eq(tls_check_listen(f.tls, "unix:/tmp/x.sock",
                                TLS_AUTH_NOT_AVAILABLE, why, sizeof(why)),
               0);
  cr_assert_eq(tls_check_listen(f.tls, "0.0.0.0:0", TLS_AUTH_NOT_AVAILABLE, why,
                                sizeof(why)),
               UV_EPERM);
  cr_assert(strstr(why, "refusing to serve 0.0.0.0:0 without TLS") != NULL,
            "%s", why);
  /* An address that is not on this host: its own error wins. */
  cr_assert_eq(tls_check_listen(f.tls, "192.0.2.7:0", TLS_AUTH_NOT_AVAILABLE,
                                why, sizeof(why)),
               UV_EADDRNOTAVAIL, "%s", why);
  fx_free(&f);

  s.insecure = 1;
  fx_new(&f, &s);
  cr_assert_eq(tls_check_listen(f.tls, "0.0.0.0:0", TLS_AUTH_NOT_AVAILABLE, why,
                                sizeof(why)),
               0);
  fx_free(&f);
}

Test(smaugd_tls, listen_with_tls_needs_auth_once_it_exists, .init = certs,
     .fini = certs_rm) {
  fx_t f;
  tls_settings_t s = {.cert = P("server.pem"), .key = P("server.key")};
  fx_new(&f, &s);
  char why[512];
  cr_assert_not_null(tls_api_creds(f.tls));
  cr_assert_eq(tls_check_listen(f.tls, "0.0.0.0:0", TLS_AUTH_NOT_AVAILABLE, why,
                                sizeof(why)),
               0);
  cr_assert_eq(
      tls_check_listen(f.tls, "0.0.0.0:0", TLS_AUTH_ON, why, sizeof(why)), 0);
  cr_assert_eq(
      tls_check_listen(f.tls, "0.0.0.0:0", TLS_AUTH_OFF, why, sizeof(why)),
      UV_EPERM);
  cr_assert(strstr(why, "without authentication") != NULL, "%s", why);
  fx_free(&f);
}

Test(smaugd_tls, plaintext_plugins) {
  fx_t f;
  tls_settings_t s = {0};
  fx_new(&f, &s);
  cr_assert_eq(dial(&f, "127.0.0.1:7501"), 0);
  cr_assert_eq(dial(&f, "unix:/run/smaug/volume.sock"), 0);
  cr_assert_eq(dial(&f, "plugin-volume:7433"), UV_EPERM);
  cr_assert(strstr(rt_channel_refusal(f.rt),
                   "plaintext to a plugin on another host is refused") != NULL,
            "%s", rt_channel_refusal(f.rt));
  cr_assert_eq(dial(&f, "10.0.0.5:7433"), UV_EPERM);
  fx_free(&f);

  s.plugin_insecure = 1;
  fx_new(&f, &s);
  cr_assert_eq(dial(&f, "plugin-volume:7433"), 0);
  fx_free(&f);
}

Test(smaugd_tls, mtls_plugins, .init = certs, .fini = certs_rm) {
  fx_t f;
  tls_settings_t s = {.plugin_ca = P("ca.pem"),
                      .plugin_cert = P("client.pem"),
                      .plugin_key = P("client.key")};
  fx_new(&f, &s);
  rt_creds_t *c;
  cr_assert_eq(rt_creds_insecure(&c), 0);
  rt_channel_t *plain, *got;
  /* A channel with mTLS is not the plaintext one to the same target. */
  cr_assert_eq(rt_channel_get_creds(f.rt, "plugin-volume:7433", c, &plain), 0);
  cr_assert_eq(rt_channel_get(f.rt, "plugin-volume:7433", &got), 0);
  cr_assert_neq(plain, got);
  rt_channel_release(got);
  cr_assert_eq(rt_channel_get(f.rt, "127.0.0.1:7433", &got), 0);
  rt_channel_release(got);
  rt_channel_release(plain);
  rt_creds_release(c);
  cr_assert_eq(dial(&f, "unix:/run/smaug/volume.sock"), 0);
  fx_free(&f);

  char why[512];
  tls_settings_t bad = {.plugin_cert = P("client.pem"),
                        .plugin_key = P("client.key")};
  tls_t *t = NULL;
  uv_loop_t loop;
  rt_t *rt;
  cr_assert_eq(uv_loop_init(&loop), 0);
  cr_assert_eq(rt_new(&loop, &rt), 0);
  cr_assert_eq(tls_new(rt, &bad, &t, why, sizeof(why)), UV_EINVAL);
  cr_assert(strstr(why, "--plugin-tls-ca") != NULL, "%s", why);
  tls_settings_t half = {.cert = P("server.pem")};
  cr_assert_eq(tls_new(rt, &half, &t, why, sizeof(why)), UV_EINVAL);
  cr_assert_str_eq(why, "--tls-cert and --tls-key go together");
  rt_free(rt);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(uv_loop_close(&loop), 0);
}
