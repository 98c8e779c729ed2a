/*
 * tls.c - smaugd's transport security (tls.h): the API listener's
 * credentials and listen policy, the plugin channels' chooser, reload.
 */
#include "tls.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_addr.h"
#include "rt_log.h"

struct tls_s {
  rt_t *rt;
  rt_creds_t *api;    /* NULL: plaintext */
  rt_creds_t *plugin; /* NULL: plaintext */
  int insecure;
  int plugin_insecure;
};

int tls_is_loopback(const char *addr) {
  rt_addr_t a;
  if (addr == NULL || rt_addr_parse(addr, &a, NULL, 0) != 0 || a.is_unix)
    return 0;
  if (strcmp(a.host, "localhost") == 0)
    return 1;
  struct in_addr v4;
  struct in6_addr v6;
  if (inet_pton(AF_INET, a.host, &v4) == 1)
    return (ntohl(v4.s_addr) >> 24) == 127;
  if (inet_pton(AF_INET6, a.host, &v6) == 1)
    return IN6_IS_ADDR_LOOPBACK(&v6);
  return 0;
}

static int is_unix(const char *addr) {
  return strncmp(addr, "unix:", 5) == 0;
}

/* The plugin policy of tls.h, as the runtime's channel chooser. */
static int choose(const char *target, rt_creds_t **creds, char *why,
                  size_t why_len, void *data) {
  tls_t *t = data;
  *creds = NULL;
  if (is_unix(target))
    return 0;
  int loopback = tls_is_loopback(target);
  if (t->plugin != NULL) {
    if (!(loopback && t->plugin_insecure))
      *creds = t->plugin;
    return 0;
  }
  if (loopback || t->plugin_insecure)
    return 0;
  snprintf(why, why_len,
           "plaintext to a plugin on another host is refused: give smaugd "
           "--plugin-tls-ca, --plugin-tls-cert and --plugin-tls-key, use a "
           "unix socket, or pass --plugin-insecure");
  return UV_EPERM;
}

static int creds_err(const char *what, int err, const char *cause, char *why,
                     size_t why_len) {
  char copy[512];
  snprintf(copy, sizeof(copy), "%s", cause[0] ? cause : uv_strerror(err));
  snprintf(why, why_len, "%s: %s", what, copy);
  return err;
}

int tls_new(rt_t *rt, const tls_settings_t *s, tls_t **out, char *why,
            size_t why_len) {
  char cause[512] = "";
  int err;
  if (why_len > 0)
    why[0] = '\0';
  if ((s->cert == NULL) != (s->key == NULL)) {
    snprintf(why, why_len, "--tls-cert and --tls-key go together");
    return UV_EINVAL;
  }
  if (s->client_ca != NULL && s->cert == NULL) {
    snprintf(why, why_len, "--tls-client-ca needs --tls-cert and --tls-key");
    return UV_EINVAL;
  }
  if ((s->plugin_cert == NULL) != (s->plugin_key == NULL) ||
      (s->plugin_cert != NULL && s->plugin_ca == NULL)) {
    snprintf(why, why_len,
             "--plugin-tls-cert and --plugin-tls-key go together, with "
             "--plugin-tls-ca");
    return UV_EINVAL;
  }
  tls_t *t = calloc(1, sizeof(*t));
  if (t == NULL)
    return UV_ENOMEM;
  t->rt = rt;
  t->insecure = s->insecure;
  t->plugin_insecure = s->plugin_insecure;
  if (s->cert != NULL) {
    rt_tls_files_t f = {.cert = s->cert, .key = s->key, .ca = s->client_ca};
    if ((err = rt_creds_tls_server(&f, &t->api, cause, sizeof(cause))) != 0) {
      tls_free(t);
      return creds_err("--tls-cert/--tls-key", err, cause, why, why_len);
    }
  }
  if (s->plugin_ca != NULL) {
    rt_tls_files_t f = {
        .ca = s->plugin_ca, .cert = s->plugin_cert, .key = s->plugin_key};
    if ((err = rt_creds_tls_client(&f, &t->plugin, cause, sizeof(cause))) !=
        0) {
      tls_free(t);
      return creds_err("--plugin-tls-*", err, cause, why, why_len);
    }
  }
  if (s->plugin_insecure)
    rt_log(RT_LOG_WARN, "smaugd",
           "--plugin-insecure: plugins may be reached in plaintext; anyone "
           "who can reach one can drive it",
           "plugin_tls=%s", t->plugin != NULL ? "on" : "off");
  rt_set_channel_creds(rt, choose, t);
  *out = t;
  return 0;
}

int tls_check_listen(tls_t *t, const char *listen, tls_auth_t auth, char *why,
                     size_t why_len) {
  if (why_len > 0)
    why[0] = '\0';
  /* A malformed address is left to the listener, which names what is
   * wrong with it. */
  rt_addr_t a;
  int tls_on = t->api != NULL;
  int auth_missing = auth == TLS_AUTH_OFF;
  if (rt_addr_parse(listen, &a, NULL, 0) != 0 || a.is_unix ||
      tls_is_loopback(listen) || (tls_on && !auth_missing))
    return 0;
  /* The real cause first when the address cannot be served at all (not
   * on this host, in use): a plain bind, closed at once, never listens. */
  int err = rt_addr_check_listen(listen, why, why_len);
  if (err != 0)
    return err;
  if (!t->insecure) {
    snprintf(why, why_len,
             "refusing to serve %s without %s: it is not a loopback "
             "address; give %s, listen on 127.0.0.1 or a unix socket, or "
             "pass --insecure",
             listen, !tls_on ? "TLS" : "authentication",
             !tls_on ? "--tls-cert and --tls-key" : "--auth-tokens");
    return UV_EPERM;
  }
  rt_log(RT_LOG_WARN, "smaugd",
         "--insecure: serving a network address without TLS and "
         "authentication; anyone who can reach it controls smaugd",
         "addr=%s tls=%s", listen, tls_on ? "on" : "off");
  return 0;
}

rt_creds_t *tls_api_creds(tls_t *t) {
  return t->api;
}

static int reload_one(rt_creds_t *c, const char *what) {
  if (c == NULL)
    return 0;
  char why[512];
  int err = rt_creds_reload(c, why, sizeof(why));
  if (err != 0)
    rt_log(RT_LOG_ERROR, "smaugd",
           "certificates not reloaded; the previous ones stay in use",
           "which=%s error=\"%s\"", what, why[0] ? why : uv_strerror(err));
  else
    rt_log(RT_LOG_INFO, "smaugd", "certificates reloaded", "which=%s", what);
  return err;
}

int tls_reload(tls_t *t) {
  int a = reload_one(t->api, "api");
  int b = reload_one(t->plugin, "plugins");
  return a != 0 ? a : b;
}

void tls_free(tls_t *t) {
  if (t == NULL)
    return;
  rt_set_channel_creds(t->rt, NULL, NULL);
  rt_creds_release(t->api);
  rt_creds_release(t->plugin);
  free(t);
}
