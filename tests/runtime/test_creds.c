/*
 * test_creds.c - transport security in the runtime (rt_creds.h): TLS and
 * mutual TLS listeners and channels with real certificates made by
 * tls_certs.sh (openssl) in a temporary directory; the peer identity and
 * request headers a handler sees; the refusals (plaintext client, wrong CA,
 * expired certificate, missing client certificate, a key readable by
 * others, a key of another certificate); channel caching per credentials;
 * a reload that fails keeps the old files.
 *
 * The certificates are made once per run, in a directory named after the
 * runner's pid (each test is a child of it), and removed by a hook after
 * the last test; a test that changes a file works on a copy.
 *
 * Each call test runs a server on 127.0.0.1 port 0 with one Echo handler
 * that answers with what it saw, makes one client call, and stops the
 * server when the call is done.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rt_creds.h"
#include "testsvc.smaug.h"

#ifndef TLS_CERTS_SH
#error "TLS_CERTS_SH: the path of tls_certs.sh"
#endif

static char dir[64];
static char path_buf[8][512];
static int path_i;

/* DIR/name, in a rotating buffer. */
static const char *P(const char *name) {
  char *b = path_buf[path_i++ % 8];
  snprintf(b, 512, "%s/%s", dir, name);
  return b;
}

static void certs_make(void) {
  snprintf(dir, sizeof(dir), "/tmp/smaug-creds-%d", (int)getppid());
  struct stat st;
  char ok[128];
  snprintf(ok, sizeof(ok), "%s/done", dir);
  if (stat(ok, &st) == 0)
    return;
  char cmd[1024];
  snprintf(cmd, sizeof(cmd),
           "rm -rf %s && mkdir -m 700 %s && sh %s %s && touch %s", dir, dir,
           TLS_CERTS_SH, dir, ok);
  cr_assert_eq(system(cmd), 0, "tls_certs.sh failed");
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats) {
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf /tmp/smaug-creds-%d", (int)getpid());
  if (system(cmd) != 0)
    fprintf(stderr, "cannot remove the test certificates\n");
}

TestSuite(creds, .init = certs_make);

/* ------------------------------------------------------------ fixture */

typedef struct {
  uv_loop_t loop;
  rt_t *rt;
  rt_server_t *srv;
  rt_channel_t *ch;
  int stopped;
  int handled;
  grpc_status_code code;
  char message[512];
  char seen[1024]; /* what the handler saw */
} fx_t;

static fx_t fx;

static void h_echo(rt_call_t *call, const Rttest__EchoRequest *req,
                   void *data) {
  fx_t *f = data;
  f->handled++;
  const rt_peer_t *p = rt_call_peer(call);
  const char *auth = rt_call_metadata(call, "authorization");
  const char *extra = rt_call_metadata(call, "x-extra");
  snprintf(f->seen, sizeof(f->seen),
           "tls=%d auth=%d unix=%d subject=%s cn=%s san=%s n_sans=%zu "
           "authorization=%s x-extra=%s bin=%s",
           p->tls, p->authenticated, p->is_unix, p->subject ? p->subject : "-",
           p->common_name ? p->common_name : "-",
           p->n_sans > 0 ? p->sans[0] : "-", p->n_sans, auth ? auth : "-",
           extra ? extra : "-",
           rt_call_metadata(call, "x-data-bin") ? "yes" : "-");
  cr_assert_not_null(p->address);
  Rttest__EchoReply r = RTTEST__ECHO_REPLY__INIT;
  r.text = req->text;
  rt_call_reply(call, &r.base);
}

static const rttest_test_handlers_t handlers = {.echo = h_echo};

static void on_stopped(rt_server_t *srv, void *data) {
  ((fx_t *)data)->stopped = 1;
}

static void on_msg(rt_client_call_t *call, const ProtobufCMessage *msg,
                   void *data) {}

static void on_done(rt_client_call_t *call, grpc_status_code code,
                    const char *message, void *data) {
  fx_t *f = data;
  f->code = code;
  snprintf(f->message, sizeof(f->message), "%s", message ? message : "");
  rt_channel_release(f->ch);
  f->ch = NULL;
  cr_assert_eq(rt_server_shutdown(f->srv, on_stopped, f), 0);
}

/* Serves Echo with `server` credentials, calls it once through a channel
 * with `client` credentials (NULL: insecure), and runs the loop until the
 * server stops. The result is in fx.code, fx.message and fx.seen. */
static void call_once(rt_creds_t *server, rt_creds_t *client) {
  memset(&fx, 0, sizeof(fx));
  cr_assert_eq(uv_loop_init(&fx.loop), 0);
  cr_assert_eq(rt_new(&fx.loop, &fx.rt), 0);
  cr_assert_eq(rt_server_new(fx.rt, NULL, &fx.srv), 0);
  cr_assert_eq(rttest_test_register(fx.srv, &handlers, &fx), 0);
  char why[256];
  int port = 0;
  cr_assert_eq(rt_server_listen_creds(fx.srv, "127.0.0.1:0", server, &port, why,
                                      sizeof(why)),
               0, "%s", why);
  cr_assert_eq(rt_server_start(fx.srv), 0);
  char target[64];
  snprintf(target, sizeof(target), "127.0.0.1:%d", port);
  cr_assert_eq(rt_channel_get_creds(fx.rt, target, client, &fx.ch), 0);
  rt_metadata_t md[] = {{"x-extra", "from-opts"}};
  rt_call_opts_t o = {.timeout_ms = 10000, .metadata = md, .n_metadata = 1};
  Rttest__EchoRequest req = RTTEST__ECHO_REQUEST__INIT;
  req.text = "hi";
  cr_assert_eq(rttest_test_echo(fx.ch, &req, &o, on_msg, on_done, &fx, NULL),
               0);
  cr_assert_eq(uv_run(&fx.loop, UV_RUN_DEFAULT), 0);
  cr_assert_eq(fx.stopped, 1);
  rt_server_free(fx.srv);
  rt_free(fx.rt);
  cr_assert_eq(uv_loop_close(&fx.loop), 0);
}

static rt_creds_t *server_creds(const char *cert, const char *key,
                                const char *client_ca) {
  rt_tls_files_t f = {
      .cert = P(cert), .key = P(key), .ca = client_ca ? P(client_ca) : NULL};
  rt_creds_t *c = NULL;
  char why[512];
  cr_assert_eq(rt_creds_tls_server(&f, &c, why, sizeof(why)), 0, "%s", why);
  return c;
}

static rt_creds_t *client_creds(const char *ca, const char *cert,
                                const char *key) {
  rt_tls_files_t f = {
      .ca = P(ca), .cert = cert ? P(cert) : NULL, .key = key ? P(key) : NULL};
  rt_creds_t *c = NULL;
  char why[512];
  cr_assert_eq(rt_creds_tls_client(&f, &c, why, sizeof(why)), 0, "%s", why);
  return c;
}

/* -------------------------------------------------------------- calls */

Test(creds, tls_call_carries_the_headers) {
  rt_creds_t *s = server_creds("server.pem", "server.key", NULL);
  rt_creds_t *c = client_creds("ca.pem", NULL, NULL);
  cr_assert_eq(rt_creds_add_metadata(c, "authorization", "Bearer t0k"), 0);
  call_once(s, c);
  cr_assert_eq(fx.code, GRPC_STATUS_OK, "%s", fx.message);
  cr_assert_str_eq(fx.seen, "tls=1 auth=0 unix=0 subject=- cn=- san=- n_sans=0 "
                            "authorization=Bearer t0k x-extra=from-opts bin=-");
  /* Frozen once a channel used it. */
  cr_assert_eq(rt_creds_add_metadata(c, "x-late", "v"), UV_EINVAL);
  rt_creds_release(s);
  rt_creds_release(c);
}

Test(creds, mtls_gives_the_client_identity) {
  rt_creds_t *s = server_creds("server.pem", "server.key", "ca.pem");
  cr_assert(rt_creds_requires_client_cert(s));
  rt_creds_t *c = client_creds("ca.pem", "client.pem", "client.key");
  call_once(s, c);
  cr_assert_eq(fx.code, GRPC_STATUS_OK, "%s", fx.message);
  cr_assert(strstr(fx.seen, "tls=1 auth=1 unix=0 ") != NULL, "%s", fx.seen);
  cr_assert(strstr(fx.seen, "CN=smaug-client") != NULL, "%s", fx.seen);
  cr_assert(strstr(fx.seen, "cn=smaug-client ") != NULL, "%s", fx.seen);
  cr_assert(strstr(fx.seen, "san=spiffe://smaug/client n_sans=1") != NULL, "%s",
            fx.seen);
  rt_creds_release(s);
  rt_creds_release(c);
}

/* Serves with `s` and calls with `c` (both released here): the call must
 * fail UNAVAILABLE (the TLS handshake) without reaching the handler. */
static void expect_refused(rt_creds_t *s, rt_creds_t *c) {
  call_once(s, c);
  cr_assert_eq(fx.code, GRPC_STATUS_UNAVAILABLE, "%d %s", fx.code, fx.message);
  cr_assert_eq(fx.handled, 0);
  rt_creds_release(s);
  rt_creds_release(c);
}

Test(creds, mtls_refuses_a_client_without_a_certificate) {
  expect_refused(server_creds("server.pem", "server.key", "ca.pem"),
                 client_creds("ca.pem", NULL, NULL));
}

Test(creds, mtls_refuses_a_certificate_of_another_ca) {
  expect_refused(
      server_creds("server.pem", "server.key", "ca.pem"),
      client_creds("ca.pem", "other-client.pem", "other-client.key"));
}

Test(creds, a_plaintext_client_fails_on_a_tls_listener) {
  expect_refused(server_creds("server.pem", "server.key", NULL), NULL);
}

Test(creds, a_client_trusting_another_ca_fails) {
  expect_refused(server_creds("server.pem", "server.key", NULL),
                 client_creds("other-ca.pem", NULL, NULL));
}

Test(creds, an_expired_server_certificate_is_refused) {
  expect_refused(server_creds("expired.pem", "expired.key", NULL),
                 client_creds("ca.pem", NULL, NULL));
}

Test(creds, plaintext_over_a_unix_socket_is_unix_and_not_tls) {
  memset(&fx, 0, sizeof(fx));
  cr_assert_eq(uv_loop_init(&fx.loop), 0);
  cr_assert_eq(rt_new(&fx.loop, &fx.rt), 0);
  cr_assert_eq(rt_server_new(fx.rt, NULL, &fx.srv), 0);
  cr_assert_eq(rttest_test_register(fx.srv, &handlers, &fx), 0);
  char addr[600];
  snprintf(addr, sizeof(addr), "unix:%s", P("rt.sock"));
  cr_assert_eq(rt_server_listen_creds(fx.srv, addr, NULL, NULL, NULL, 0), 0);
  cr_assert_eq(rt_server_start(fx.srv), 0);
  rt_creds_t *c;
  cr_assert_eq(rt_creds_insecure(&c), 0);
  cr_assert_eq(rt_creds_add_metadata(c, "authorization", "Bearer u"), 0);
  cr_assert_eq(rt_channel_get_creds(fx.rt, addr, c, &fx.ch), 0);
  Rttest__EchoRequest req = RTTEST__ECHO_REQUEST__INIT;
  rt_call_opts_t o = {.timeout_ms = 10000};
  cr_assert_eq(rttest_test_echo(fx.ch, &req, &o, on_msg, on_done, &fx, NULL),
               0);
  cr_assert_eq(uv_run(&fx.loop, UV_RUN_DEFAULT), 0);
  rt_server_free(fx.srv);
  rt_free(fx.rt);
  cr_assert_eq(uv_loop_close(&fx.loop), 0);
  rt_creds_release(c);
  cr_assert_eq(fx.code, GRPC_STATUS_OK, "%s", fx.message);
  cr_assert(strstr(fx.seen, "tls=0 auth=0 unix=1 ") != NULL, "%s", fx.seen);
  cr_assert(strstr(fx.seen, "authorization=Bearer u ") != NULL, "%s", fx.seen);
}

/* ------------------------------------------------------- refused files */

Test(creds, a_key_readable_by_others_is_refused) {
  char cmd[1200];
  snprintf(cmd, sizeof(cmd), "cp %s %s && chmod 644 %s", P("server.key"),
           P("open.key"), P("open.key"));
  cr_assert_eq(system(cmd), 0);
  rt_tls_files_t f = {.cert = P("server.pem"), .key = P("open.key")};
  rt_creds_t *c = NULL;
  char why[512];
  cr_assert_eq(rt_creds_tls_server(&f, &c, why, sizeof(why)), UV_EPERM);
  cr_assert_null(c);
  cr_assert(strstr(why, "readable by its group or others (mode 0644)") != NULL,
            "%s", why);
}

Test(creds, a_key_of_another_certificate_is_refused) {
  rt_tls_files_t f = {.cert = P("server.pem"), .key = P("client.key")};
  rt_creds_t *c = NULL;
  char why[512];
  cr_assert_eq(rt_creds_tls_server(&f, &c, why, sizeof(why)), UV_EINVAL);
  cr_assert(strstr(why, "is not the key of the certificate") != NULL, "%s",
            why);
  f.key = P("missing.key");
  cr_assert_eq(rt_creds_tls_server(&f, &c, why, sizeof(why)), UV_ENOENT);
  cr_assert(strstr(why, "missing.key") != NULL, "%s", why);
  f.cert = NULL;
  cr_assert_eq(rt_creds_tls_server(&f, &c, why, sizeof(why)), UV_EINVAL);
  rt_tls_files_t g = {.ca = P("client.key")};
  cr_assert_eq(rt_creds_tls_client(&g, &c, why, sizeof(why)), UV_EINVAL);
  cr_assert(strstr(why, "no certificate") != NULL, "%s", why);
}

Test(creds, a_failed_reload_keeps_the_old_files) {
  char cmd[1200];
  snprintf(cmd, sizeof(cmd), "cp %s %s && cp -p %s %s", P("server.pem"),
           P("live.pem"), P("server.key"), P("live.key"));
  cr_assert_eq(system(cmd), 0);
  rt_creds_t *s = server_creds("live.pem", "live.key", NULL);
  /* The certificate of another key: refused, the old pair stays. */
  snprintf(cmd, sizeof(cmd), "cp %s %s", P("client.pem"), P("live.pem"));
  cr_assert_eq(system(cmd), 0);
  char why[512];
  cr_assert_eq(rt_creds_reload(s, why, sizeof(why)), UV_EINVAL);
  rt_creds_t *c = client_creds("ca.pem", NULL, NULL);
  call_once(s, c);
  cr_assert_eq(fx.code, GRPC_STATUS_OK, "%s", fx.message);
  rt_creds_release(s);
  rt_creds_release(c);
}

/* ------------------------------------------------------------ channels */

static int refuse(const char *target, rt_creds_t **creds, char *why,
                  size_t why_len, void *data) {
  if (strncmp(target, "unix:", 5) == 0) {
    *creds = NULL;
    return 0;
  }
  if (data != NULL) {
    *creds = data;
    return 0;
  }
  snprintf(why, why_len, "plaintext to %s is refused", target);
  return UV_EPERM;
}

Test(creds, channels_are_shared_per_target_and_credentials) {
  uv_loop_t loop;
  rt_t *rt;
  cr_assert_eq(uv_loop_init(&loop), 0);
  cr_assert_eq(rt_new(&loop, &rt), 0);
  rt_creds_t *a = client_creds("ca.pem", NULL, NULL);
  rt_creds_t *b = client_creds("ca.pem", "client.pem", "client.key");
  rt_channel_t *a1, *a2, *b1, *a3, *n1;
  cr_assert_eq(rt_channel_get_creds(rt, "127.0.0.1:1", a, &a1), 0);
  cr_assert_eq(rt_channel_get_creds(rt, "127.0.0.1:1", a, &a2), 0);
  cr_assert_eq(rt_channel_get_creds(rt, "127.0.0.1:1", b, &b1), 0);
  cr_assert_eq(a1, a2);
  cr_assert_neq(a1, b1);
  /* A reload: later callers get a channel with the new files. */
  char why[256];
  cr_assert_eq(rt_creds_reload(a, why, sizeof(why)), 0, "%s", why);
  cr_assert_eq(rt_channel_get_creds(rt, "127.0.0.1:1", a, &a3), 0);
  cr_assert_neq(a1, a3);
  /* Server credentials are not for channels. */
  rt_creds_t *s = server_creds("server.pem", "server.key", NULL);
  cr_assert_eq(rt_channel_get_creds(rt, "127.0.0.1:1", s, &n1), UV_EINVAL);
  rt_creds_release(s);
  /* The chooser: refused with its reason, or its credentials. */
  rt_set_channel_creds(rt, refuse, NULL);
  cr_assert_eq(rt_channel_get(rt, "10.1.2.3:7", &n1), UV_EPERM);
  cr_assert_str_eq(rt_channel_refusal(rt),
                   "plaintext to 10.1.2.3:7 is refused");
  cr_assert_eq(rt_channel_get(rt, "unix:/nonexistent", &n1), 0);
  cr_assert_str_eq(rt_channel_refusal(rt), "");
  rt_channel_release(n1);
  rt_set_channel_creds(rt, refuse, b);
  cr_assert_eq(rt_channel_get(rt, "127.0.0.1:1", &n1), 0);
  cr_assert_eq(n1, b1);
  rt_channel_release(n1);
  rt_channel_release(a1);
  rt_channel_release(a2);
  rt_channel_release(a3);
  rt_channel_release(b1);
  rt_creds_release(a);
  rt_creds_release(b);
  rt_free(rt);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(uv_loop_close(&loop), 0);
}
