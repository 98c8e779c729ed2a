/*
 * main.c - smaugd: start-up and shutdown of the orchestrator.
 *
 * With its settings (settings.h) and its data directory locked and checked
 * (datadir.h), smaugd opens the store,
 * serves health, reflection and smaug.v1.Orchestrator, registers the
 * configured plugins, resumes the operations a previous run left running,
 * and stops cleanly on SIGTERM or SIGINT. SIGHUP re-reads the certificates
 * and keys (tls.h) without dropping calls, and the token file (auth.h).
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "auth.h"
#include "datadir.h"
#include "registry.h"
#include "rt.h"
#include "rt_log.h"
#include "settings.h"
#include "store.h"
#include "tls.h"
#include "token_cmd.h"

typedef struct daemon_s {
  rt_t *rt;
  rt_server_t *srv;
  store_t *store;
  reg_t *reg;
  api_t *api;
  auth_t *auth; /* NULL without --auth-tokens */
  settings_t set;
  size_t pending_plugins;
  uint64_t started_ms; /* loop time at start, for the plugins' grace */
  int stopping;        /* a stop signal came */
  uv_signal_t sig[2];  /* end watch streams at once on SIGTERM/SIGINT */
  uv_signal_t sighup;  /* re-reads certificates and keys */
  tls_t *tls;
  int lock_fd; /* holds the data directory's lock; -1: none */
} daemon_t;

static void sig_closed(uv_handle_t *h) {}

static void on_stopped(rt_server_t *srv, void *data) {
  daemon_t *d = data;
  rt_log(RT_LOG_INFO, "smaugd", "stopped", NULL);
  api_close(d->api);
  auth_close(d->auth);
  reg_close(d->reg);
  for (int i = 0; i < 2; i++)
    if (!uv_is_closing((uv_handle_t *)&d->sig[i]))
      uv_close((uv_handle_t *)&d->sig[i], sig_closed);
  if (!uv_is_closing((uv_handle_t *)&d->sighup))
    uv_close((uv_handle_t *)&d->sighup, sig_closed);
}

/* SIGHUP: new connections get the new certificates and keys; open
 * connections and calls go on with the old ones. */
static void on_sighup(uv_signal_t *s, int signum) {
  daemon_t *d = s->data;
  rt_log(RT_LOG_INFO, "smaugd", "reloading", "signal=%d", signum);
  tls_reload(d->tls);
}

/* Runs next to the runtime's own handlers: ending the watch streams and
 * the operations first lets the server's graceful stop finish at once
 * instead of waiting out its grace period for open streams. */
static void on_signal(uv_signal_t *s, int signum) {
  daemon_t *d = s->data;
  rt_log(RT_LOG_INFO, "smaugd", "stopping", "signal=%d", signum);
  d->stopping = 1;
  api_close(d->api);
  for (int i = 0; i < 2; i++)
    if (!uv_is_closing((uv_handle_t *)&d->sig[i]))
      uv_close((uv_handle_t *)&d->sig[i], sig_closed);
}

/* A plugin named at start may still be starting (a container or a service
 * started beside smaugd): one that cannot be connected to yet is tried
 * again every PLUGIN_RETRY_MS for PLUGIN_GRACE_MS before it is given up. */
#define PLUGIN_GRACE_MS 5000
#define PLUGIN_RETRY_MS 250

typedef struct plugin_retry_s {
  uv_timer_t timer;
  daemon_t *d;
  char *addr;
} plugin_retry_t;

static void on_plugin(int err, const char *addr, const char *msg, void *data);

static void plugin_retry_closed(uv_handle_t *h) {
  plugin_retry_t *r = h->data;
  free(r->addr);
  free(r);
}

static void plugin_done(daemon_t *d) {
  if (--d->pending_plugins == 0 && d->api)
    api_recover(d->api);
}

static void plugin_retry_fire(uv_timer_t *t) {
  plugin_retry_t *r = t->data;
  daemon_t *d = r->d;
  if (d->stopping) {
    plugin_done(d);
  } else if (api_register_plugin(d->api, r->addr, 1, on_plugin, d) != 0) {
    rt_log(RT_LOG_WARN, "smaugd", "plugin not registered", "addr=%s", r->addr);
    plugin_done(d);
  }
  uv_close((uv_handle_t *)t, plugin_retry_closed);
}

static void on_plugin(int err, const char *addr, const char *msg, void *data) {
  daemon_t *d = data;
  uv_loop_t *loop = rt_loop(d->rt);
  if (err == UV_ECONNREFUSED && !d->stopping &&
      uv_now(loop) - d->started_ms < PLUGIN_GRACE_MS) {
    plugin_retry_t *r = calloc(1, sizeof(*r));
    if (r != NULL && (r->addr = strdup(addr)) != NULL) {
      r->d = d;
      uv_timer_init(loop, &r->timer);
      r->timer.data = r;
      uv_timer_start(&r->timer, plugin_retry_fire, PLUGIN_RETRY_MS, 0);
      rt_log(RT_LOG_DEBUG, "smaugd", "plugin not reachable yet",
             "addr=%s error=\"%s\"", addr, msg ? msg : uv_strerror(err));
      return;
    }
    free(r);
  }
  if (err)
    rt_log(RT_LOG_WARN, "smaugd", "plugin not registered",
           "addr=%s error=\"%s\"", addr, msg ? msg : uv_strerror(err));
  plugin_done(d);
}

int main(int argc, char **argv) {
  daemon_t d = {.lock_fd = -1};
  rt_log_level_t level;
  int err, port = 0;

  if (argc > 1 && strcmp(argv[1], "token") == 0)
    return token_cmd_main(argc - 1, argv + 1);
  if ((err = settings_parse(&d.set, argc, argv)) != 0) {
    settings_free(&d.set);
    return 2;
  }
  if (rt_log_parse_level(d.set.log_level, &level) != 0) {
    fprintf(stderr, "smaugd: invalid log level '%s'\n", d.set.log_level);
    settings_free(&d.set);
    return 2;
  }
  rt_log_set_level(level);

  uv_loop_t *loop = uv_default_loop();
  if ((d.lock_fd = datadir_lock(d.set.data_dir)) < 0 ||
      datadir_check_store(d.set.data_dir) != 0) {
    if (d.lock_fd >= 0)
      close(d.lock_fd);
    settings_free(&d.set);
    return 1;
  }
  if ((err = store_open(loop, d.set.data_dir, &d.store)) != 0) {
    if (err == UV_EFTYPE)
      fprintf(stderr,
              "smaugd: %s/smaug.db is not a valid SQLite database or is "
              "corrupt. Stop here: move it (with smaug.db-wal and "
              "smaug.db-shm) aside and restore it from a backup; remove it "
              "only to start with an empty store\n",
              d.set.data_dir);
    rt_log(RT_LOG_ERROR, "smaugd", "cannot open store", "dir=%s error=\"%s\"",
           d.set.data_dir, uv_strerror(err));
    close(d.lock_fd);
    settings_free(&d.set);
    return 1;
  }
  if ((err = settings_default_bank(&d.set)) != 0)
    goto fail_store;
  if ((err = rt_new(loop, &d.rt)) != 0)
    goto fail_store;
  /* Credentials, before anything listens or dials a plugin. */
  tls_settings_t ts = {.cert = d.set.tls_cert,
                       .key = d.set.tls_key,
                       .client_ca = d.set.tls_client_ca,
                       .insecure = d.set.insecure,
                       .plugin_ca = d.set.plugin_tls_ca,
                       .plugin_cert = d.set.plugin_tls_cert,
                       .plugin_key = d.set.plugin_tls_key,
                       .plugin_insecure = d.set.plugin_insecure};
  char why[512];
  if ((err = tls_new(d.rt, &ts, &d.tls, why, sizeof(why))) != 0) {
    fprintf(stderr, "smaugd: %s\n", why[0] ? why : uv_strerror(err));
    rt_log(RT_LOG_ERROR, "smaugd", "cannot start", "error=\"%s\"",
           why[0] ? why : uv_strerror(err));
    goto fail_rt;
  }
  if (d.set.auth_tokens &&
      (err = auth_new(loop, d.set.auth_tokens, &d.auth, why, sizeof(why)))) {
    rt_log(RT_LOG_ERROR, "smaugd", "cannot load the token file", "error=\"%s\"",
           why);
    goto fail_rt;
  }

  rt_server_opts_t so = {.size = sizeof(so),
                         .max_message_bytes = (int)d.set.max_message_bytes};
  if ((err = rt_server_new(d.rt, &so, &d.srv)) != 0)
    goto fail_rt;
  if ((err = reg_new(d.rt, &d.reg)) != 0)
    goto fail_srv;
  api_config_t ac = {.bank_uri = d.set.bank,
                     .max_operations = (int)d.set.max_operations,
                     .max_message_bytes = (int)d.set.max_message_bytes,
                     .call_timeout_ms = d.set.call_timeout_ms,
                     .heartbeat_ms = (uint32_t)d.set.heartbeat_ms,
                     .event_retention_ms = d.set.event_retention_ms,
                     /* api: 0 is its default, negative: not retried */
                     .retry_budget_ms = d.set.retry_budget_ms > 0
                                            ? d.set.retry_budget_ms
                                            : -1};
  ac.auth = d.auth;
  if ((err = api_new(d.rt, d.srv, d.store, d.reg, &ac, &d.api)) != 0)
    goto fail_reg;
  /* A network address needs TLS and authentication, or --insecure. */
  tls_auth_t auth = d.auth ? TLS_AUTH_ON : TLS_AUTH_OFF;
  if ((err = tls_check_listen(d.tls, d.set.listen, auth, why, sizeof(why))) !=
          0 ||
      (err = rt_server_listen_creds(d.srv, d.set.listen, tls_api_creds(d.tls),
                                    &port, why, sizeof(why))) != 0) {
    rt_log(RT_LOG_ERROR, "smaugd", "cannot listen", "addr=%s error=\"%s\"",
           d.set.listen, why[0] ? why : uv_strerror(err));
    goto fail_api;
  }
  if ((err = rt_server_start(d.srv)) != 0)
    goto fail_api;
  if ((err = rt_server_stop_on_signals(d.srv, on_stopped, &d)) != 0)
    goto fail_api;
  for (int i = 0; i < 2; i++) {
    uv_signal_init(loop, &d.sig[i]);
    d.sig[i].data = &d;
    uv_signal_start(&d.sig[i], on_signal, i ? SIGINT : SIGTERM);
  }
  uv_signal_init(loop, &d.sighup);
  d.sighup.data = &d;
  uv_signal_start(&d.sighup, on_sighup, SIGHUP);
  uv_unref((uv_handle_t *)&d.sighup);

  if (strncmp(d.set.listen, "unix:", 5) == 0) {
    rt_log(RT_LOG_INFO, "smaugd", "listening", "addr=%s tls=%s", d.set.listen,
           tls_api_creds(d.tls) ? "on" : "off");
  } else {
    char host[256];
    const char *colon = strrchr(d.set.listen, ':');
    size_t hl = colon ? (size_t)(colon - d.set.listen) : 0;
    if (hl >= sizeof(host))
      hl = sizeof(host) - 1;
    memcpy(host, d.set.listen, hl);
    host[hl] = '\0';
    rt_log(RT_LOG_INFO, "smaugd", "listening", "addr=%s:%d tls=%s", host, port,
           tls_api_creds(d.tls) == NULL                          ? "off"
           : rt_creds_requires_client_cert(tls_api_creds(d.tls)) ? "mtls"
                                                                 : "on");
  }
  rt_log(RT_LOG_INFO, "smaugd", "started",
         "data_dir=%s bank=%s max_operations=%ld", d.set.data_dir, d.set.bank,
         d.set.max_operations);

  /* Plugins registered through the API in an earlier run come back too. */
  char **stored = NULL;
  size_t n_stored = 0;
  if (store_plugins_list(d.store, &stored, &n_stored) == 0)
    for (size_t i = 0; i < n_stored; i++) {
      int dup = 0;
      for (size_t j = 0; j < d.set.n_plugins; j++)
        dup |= strcmp(d.set.plugins[j], stored[i]) == 0;
      if (!dup && settings_add_plugin(&d.set, stored[i]) != 0)
        break;
    }
  store_strs_free(stored, n_stored);

  /* Recovery waits for the plugins, so that an operation whose plugins are
   * back is resumed rather than failed. */
  d.pending_plugins = d.set.n_plugins;
  d.started_ms = uv_now(loop);
  for (size_t i = 0; i < d.set.n_plugins; i++) {
    if (api_register_plugin(d.api, d.set.plugins[i], 1, on_plugin, &d) != 0) {
      d.pending_plugins--;
      rt_log(RT_LOG_WARN, "smaugd", "plugin not registered", "addr=%s",
             d.set.plugins[i]);
    }
  }
  if (d.pending_plugins == 0)
    api_recover(d.api);

  uv_run(loop, UV_RUN_DEFAULT);

  api_free(d.api);
  reg_free(d.reg);
  rt_server_free(d.srv);
  auth_free(d.auth); /* after the server, which holds its guarded services */
  tls_free(d.tls);
  rt_free(d.rt);
  store_close(d.store);
  close(d.lock_fd);
  settings_free(&d.set);
  uv_loop_close(loop);
  return 0;

fail_api:
  api_free(d.api);
fail_reg:
  reg_free(d.reg);
fail_srv:
  rt_server_free(d.srv);
fail_rt:
  auth_close(d.auth);
  uv_run(loop, UV_RUN_NOWAIT);
  auth_free(d.auth);
  tls_free(d.tls);
  rt_free(d.rt);
fail_store:
  rt_log(RT_LOG_ERROR, "smaugd", "start-up failed", "error=\"%s\"",
         uv_strerror(err));
  store_close(d.store);
  close(d.lock_fd);
  settings_free(&d.set);
  return 1;
}
