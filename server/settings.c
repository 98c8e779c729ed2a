/*
 * settings.c - smaugd's settings from defaults, the JSON config file, the
 * environment and the flags (see settings.h), with the usage text that
 * lists them.
 */
#include "settings.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static void usage(FILE *f) {
  fprintf(f, "usage: smaugd [options]\n"
             "  --listen ADDR            host:port or unix:/path "
             "(SMAUG_LISTEN; default 127.0.0.1:7420)\n"
             "  --data-dir DIR           state directory (SMAUG_DATA_DIR; "
             "default ./smaug-data)\n"
             "  --bank URI               bank URI (SMAUG_BANK; default "
             "file://<data-dir>/bank)\n"
             "  --plugin ADDR            register a plugin; repeatable "
             "(SMAUG_PLUGINS, comma-separated)\n"
             "  --config FILE            JSON: listen, data_dir, bank, "
             "plugins[], log_level, limits{}\n"
             "  --log-level LEVEL        debug|info|warn|error "
             "(SMAUG_LOG_LEVEL)\n"
             "  --auth-tokens FILE       require bearer tokens from this "
             "file, re-read on\n"
             "                           SIGHUP (SMAUG_AUTH_TOKENS; see "
             "`smaugd token --help`)\n"
             "  --max-operations N       operations run at once; the rest "
             "queue (default 16)\n"
             "  --max-message-bytes N    gRPC message size limit (default "
             "4194304)\n"
             "  --call-timeout-ms N      deadline of each plugin call "
             "(default 3600000)\n"
             "  --heartbeat-ms N         fail a plugin call silent this long "
             "(default 60000; 0: off)\n"
             "  --event-retention AGE    keep finished operations' events "
             "this long:\n"
             "                           N[s|m|h|d], 0 keeps them forever "
             "(SMAUG_EVENT_RETENTION;\n"
             "                           default 30d)\n"
             "  --retry-budget DURATION  how long a task's plugin calls are "
             "retried after\n"
             "                           UNAVAILABLE, e.g. 500ms, 30s, 2m "
             "(SMAUG_RETRY_BUDGET;\n"
             "                           default 30s; 0: not retried)\n"
             "  --tls-cert FILE          serve TLS with this certificate "
             "chain (SMAUG_TLS_CERT)\n"
             "  --tls-key FILE           and its private key, mode 0600 "
             "(SMAUG_TLS_KEY)\n"
             "  --tls-client-ca FILE     require client certificates from "
             "this CA (mTLS;\n"
             "                           SMAUG_TLS_CLIENT_CA)\n"
             "  --insecure               serve a non-loopback address "
             "without TLS and\n"
             "                           authentication (SMAUG_INSECURE=1)\n"
             "  --plugin-tls-ca FILE     dial TCP plugins with mTLS: the "
             "plugins' CA\n"
             "                           (SMAUG_PLUGIN_TLS_CA)\n"
             "  --plugin-tls-cert FILE   smaugd's client certificate "
             "(SMAUG_PLUGIN_TLS_CERT)\n"
             "  --plugin-tls-key FILE    its private key "
             "(SMAUG_PLUGIN_TLS_KEY)\n"
             "  --plugin-insecure        allow plaintext plugins where they "
             "are refused\n"
             "                           (SMAUG_PLUGIN_INSECURE=1)\n"
             "  SIGHUP re-reads the certificates, keys and token file; open\n"
             "  calls go on.\n"
             "  --help\n"
             "       smaugd token add|list|revoke ...   manage the token "
             "file\n");
}

static int set_str(char **dst, const char *v) {
  char *c = strdup(v);
  if (c == NULL)
    return UV_ENOMEM;
  free(*dst);
  *dst = c;
  return 0;
}

int settings_add_plugin(settings_t *s, const char *addr) {
  if (*addr == '\0')
    return 0;
  char **p = realloc(s->plugins, (s->n_plugins + 1) * sizeof(*p));
  if (p == NULL)
    return UV_ENOMEM;
  s->plugins = p;
  if ((p[s->n_plugins] = strdup(addr)) == NULL)
    return UV_ENOMEM;
  s->n_plugins++;
  return 0;
}

static int add_plugin_list(settings_t *s, const char *csv) {
  char *copy = strdup(csv), *save = NULL;
  if (copy == NULL)
    return UV_ENOMEM;
  int err = 0;
  for (char *t = strtok_r(copy, ",", &save); t && !err;
       t = strtok_r(NULL, ",", &save))
    err = settings_add_plugin(s, t);
  free(copy);
  return err;
}

/* An on/off environment variable: 1/true/yes or 0/false/no. */
static int parse_bool(const char *what, const char *v, int *out) {
  if (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || strcmp(v, "yes") == 0)
    *out = 1;
  else if (strcmp(v, "0") == 0 || strcmp(v, "false") == 0 ||
           strcmp(v, "no") == 0)
    *out = 0;
  else {
    fprintf(stderr, "smaugd: %s: expected 1 or 0, not '%s'\n", what, v);
    return UV_EINVAL;
  }
  return 0;
}

static int parse_long(const char *what, const char *v, long min, long *out) {
  char *end;
  errno = 0;
  long n = strtol(v, &end, 10);
  if (errno || *v == '\0' || *end != '\0' || n < min) {
    fprintf(stderr, "smaugd: %s: invalid value '%s'\n", what, v);
    return UV_EINVAL;
  }
  *out = n;
  return 0;
}

/* A duration: a whole number followed by ms, s, m, h or d. A bare number
 * counts in `bare_unit_ms` (0: only "0" may stand alone). Refused past
 * `max_ms`. */
static int parse_duration_ms(const char *what, const char *v,
                             int64_t bare_unit_ms, int64_t max_ms,
                             int64_t *out) {
  static const struct {
    const char *unit;
    int64_t ms;
  } units[] = {
      {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
  char *end;
  errno = 0;
  long long n = strtoll(v, &end, 10);
  int64_t mul = 0;
  if (*end == '\0')
    mul = bare_unit_ms ? bare_unit_ms : (n == 0);
  for (size_t i = 0; i < sizeof(units) / sizeof(units[0]) && mul == 0; i++)
    if (strcmp(end, units[i].unit) == 0)
      mul = units[i].ms;
  if (errno || end == v || v[0] == '-' || v[0] == '+' || mul == 0 ||
      n > max_ms / mul) {
    fprintf(stderr,
            "smaugd: %s: invalid duration '%s' (a whole number with ms, s, "
            "m, h or d, e.g. 30s)\n",
            what, v);
    return UV_EINVAL;
  }
  *out = (int64_t)n * mul;
  return 0;
}

static int load_config(settings_t *s, const char *path) {
  json_error_t jerr;
  json_t *root = json_load_file(path, 0, &jerr);
  if (root == NULL) {
    fprintf(stderr, "smaugd: --config %s: %s (line %d)\n", path, jerr.text,
            jerr.line);
    return UV_EINVAL;
  }
  int err = 0;
  const char *str;
  json_t *v, *lim;
  if (!json_is_object(root)) {
    fprintf(stderr, "smaugd: --config %s: not a JSON object\n", path);
    err = UV_EINVAL;
    goto out;
  }
  if ((str = json_string_value(json_object_get(root, "listen"))))
    err = err ? err : set_str(&s->listen, str);
  if ((str = json_string_value(json_object_get(root, "data_dir"))))
    err = err ? err : set_str(&s->data_dir, str);
  if ((str = json_string_value(json_object_get(root, "bank"))))
    err = err ? err : set_str(&s->bank, str);
  if ((str = json_string_value(json_object_get(root, "log_level"))))
    err = err ? err : set_str(&s->log_level, str);
  if ((v = json_object_get(root, "plugins")) != NULL) {
    size_t i;
    json_t *e;
    if (!json_is_array(v)) {
      fprintf(stderr, "smaugd: --config %s: plugins must be an array\n", path);
      err = UV_EINVAL;
      goto out;
    }
    json_array_foreach(v, i, e) {
      if (!json_is_string(e)) {
        fprintf(stderr, "smaugd: --config %s: plugins[%zu] not a string\n",
                path, i);
        err = UV_EINVAL;
        goto out;
      }
      if (!err)
        err = settings_add_plugin(s, json_string_value(e));
    }
  }
  if ((lim = json_object_get(root, "limits")) != NULL) {
    if ((v = json_object_get(lim, "max_operations")) && json_is_integer(v))
      s->max_operations = (long)json_integer_value(v);
    if ((v = json_object_get(lim, "max_message_bytes")) && json_is_integer(v))
      s->max_message_bytes = (long)json_integer_value(v);
    if ((v = json_object_get(lim, "call_timeout_ms")) && json_is_integer(v))
      s->call_timeout_ms = (long)json_integer_value(v);
    if ((v = json_object_get(lim, "heartbeat_ms")) && json_is_integer(v))
      s->heartbeat_ms = (long)json_integer_value(v);
    if ((v = json_object_get(lim, "retry_budget_ms")) && json_is_integer(v))
      s->retry_budget_ms = json_integer_value(v);
  }
out:
  json_decref(root);
  return err;
}

enum {
  OPT_LISTEN = 1000,
  OPT_DATA_DIR,
  OPT_BANK,
  OPT_PLUGIN,
  OPT_CONFIG,
  OPT_LOG_LEVEL,
  OPT_MAX_OPS,
  OPT_MAX_MSG,
  OPT_CALL_TIMEOUT,
  OPT_HEARTBEAT,
  OPT_EVENT_RETENTION,
  OPT_RETRY_BUDGET,
  OPT_AUTH_TOKENS,
  OPT_TLS_CERT,
  OPT_TLS_KEY,
  OPT_TLS_CLIENT_CA,
  OPT_INSECURE,
  OPT_PLUGIN_TLS_CA,
  OPT_PLUGIN_TLS_CERT,
  OPT_PLUGIN_TLS_KEY,
  OPT_PLUGIN_INSECURE,
  OPT_HELP
};

int settings_parse(settings_t *s, int argc, char **argv) {
  static const struct option opts[] = {
      {"listen", required_argument, NULL, OPT_LISTEN},
      {"data-dir", required_argument, NULL, OPT_DATA_DIR},
      {"bank", required_argument, NULL, OPT_BANK},
      {"plugin", required_argument, NULL, OPT_PLUGIN},
      {"config", required_argument, NULL, OPT_CONFIG},
      {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
      {"max-operations", required_argument, NULL, OPT_MAX_OPS},
      {"max-message-bytes", required_argument, NULL, OPT_MAX_MSG},
      {"call-timeout-ms", required_argument, NULL, OPT_CALL_TIMEOUT},
      {"heartbeat-ms", required_argument, NULL, OPT_HEARTBEAT},
      {"event-retention", required_argument, NULL, OPT_EVENT_RETENTION},
      {"retry-budget", required_argument, NULL, OPT_RETRY_BUDGET},
      {"auth-tokens", required_argument, NULL, OPT_AUTH_TOKENS},
      {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
      {"tls-key", required_argument, NULL, OPT_TLS_KEY},
      {"tls-client-ca", required_argument, NULL, OPT_TLS_CLIENT_CA},
      {"insecure", no_argument, NULL, OPT_INSECURE},
      {"plugin-tls-ca", required_argument, NULL, OPT_PLUGIN_TLS_CA},
      {"plugin-tls-cert", required_argument, NULL, OPT_PLUGIN_TLS_CERT},
      {"plugin-tls-key", required_argument, NULL, OPT_PLUGIN_TLS_KEY},
      {"plugin-insecure", no_argument, NULL, OPT_PLUGIN_INSECURE},
      {"help", no_argument, NULL, OPT_HELP},
      {NULL, 0, NULL, 0}};
  int err = 0, c;
  const char *env;

  if ((err = set_str(&s->listen, "127.0.0.1:7420")) != 0 ||
      (err = set_str(&s->data_dir, "./smaug-data")) != 0 ||
      (err = set_str(&s->log_level, "info")) != 0)
    return err;
  s->max_operations = 16;
  s->max_message_bytes = 4 * 1024 * 1024;
  s->call_timeout_ms = 3600000;
  /* Progress messages are the heartbeat: the SDK sends one every 5 s and
   * the Python sample every second, so a minute of silence means hung. */
  s->heartbeat_ms = 60000;
  s->event_retention_ms = 30LL * 86400000;
  /* A plugin restart takes seconds; 30 s of retries rides it out. */
  s->retry_budget_ms = 30000;

  /* The config file is read first so that env and flags override it. */
  for (int i = 1; i < argc; i++) {
    const char *path = NULL;
    if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
      path = argv[i + 1];
    else if (strncmp(argv[i], "--config=", 9) == 0)
      path = argv[i] + 9;
    if (path && (err = load_config(s, path)) != 0)
      return err;
  }
  if ((env = getenv("SMAUG_LISTEN")) && *env)
    err = err ? err : set_str(&s->listen, env);
  if ((env = getenv("SMAUG_DATA_DIR")) && *env)
    err = err ? err : set_str(&s->data_dir, env);
  if ((env = getenv("SMAUG_BANK")) && *env)
    err = err ? err : set_str(&s->bank, env);
  if ((env = getenv("SMAUG_LOG_LEVEL")) && *env)
    err = err ? err : set_str(&s->log_level, env);
  if ((env = getenv("SMAUG_AUTH_TOKENS")) && *env)
    err = err ? err : set_str(&s->auth_tokens, env);
  if ((env = getenv("SMAUG_PLUGINS")) && *env)
    err = err ? err : add_plugin_list(s, env);
  if ((env = getenv("SMAUG_EVENT_RETENTION")) && *env)
    err = err ? err
              : parse_duration_ms("SMAUG_EVENT_RETENTION", env, 86400000,
                                  INT64_MAX, &s->event_retention_ms);
  if ((env = getenv("SMAUG_RETRY_BUDGET")) && *env)
    err = err ? err
              : parse_duration_ms("SMAUG_RETRY_BUDGET", env, 0, UINT32_MAX,
                                  &s->retry_budget_ms);
  if ((env = getenv("SMAUG_TLS_CERT")) && *env)
    err = err ? err : set_str(&s->tls_cert, env);
  if ((env = getenv("SMAUG_TLS_KEY")) && *env)
    err = err ? err : set_str(&s->tls_key, env);
  if ((env = getenv("SMAUG_TLS_CLIENT_CA")) && *env)
    err = err ? err : set_str(&s->tls_client_ca, env);
  if ((env = getenv("SMAUG_INSECURE")) && *env)
    err = err ? err : parse_bool("SMAUG_INSECURE", env, &s->insecure);
  if ((env = getenv("SMAUG_PLUGIN_TLS_CA")) && *env)
    err = err ? err : set_str(&s->plugin_tls_ca, env);
  if ((env = getenv("SMAUG_PLUGIN_TLS_CERT")) && *env)
    err = err ? err : set_str(&s->plugin_tls_cert, env);
  if ((env = getenv("SMAUG_PLUGIN_TLS_KEY")) && *env)
    err = err ? err : set_str(&s->plugin_tls_key, env);
  if ((env = getenv("SMAUG_PLUGIN_INSECURE")) && *env)
    err = err ? err
              : parse_bool("SMAUG_PLUGIN_INSECURE", env, &s->plugin_insecure);
  if (err)
    return err;

  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1 && !err) {
    switch (c) {
    case OPT_LISTEN:
      err = set_str(&s->listen, optarg);
      break;
    case OPT_DATA_DIR:
      err = set_str(&s->data_dir, optarg);
      break;
    case OPT_BANK:
      err = set_str(&s->bank, optarg);
      break;
    case OPT_PLUGIN:
      err = settings_add_plugin(s, optarg);
      break;
    case OPT_CONFIG:
      break; /* already read */
    case OPT_LOG_LEVEL:
      err = set_str(&s->log_level, optarg);
      break;
    case OPT_MAX_OPS:
      err = parse_long("--max-operations", optarg, 1, &s->max_operations);
      break;
    case OPT_MAX_MSG:
      err = parse_long("--max-message-bytes", optarg, 1024,
                       &s->max_message_bytes);
      break;
    case OPT_CALL_TIMEOUT:
      err = parse_long("--call-timeout-ms", optarg, 1, &s->call_timeout_ms);
      break;
    case OPT_HEARTBEAT:
      err = parse_long("--heartbeat-ms", optarg, 0, &s->heartbeat_ms);
      break;
    case OPT_EVENT_RETENTION:
      err = parse_duration_ms("--event-retention", optarg, 86400000, INT64_MAX,
                              &s->event_retention_ms);
      break;
    case OPT_RETRY_BUDGET:
      err = parse_duration_ms("--retry-budget", optarg, 0, UINT32_MAX,
                              &s->retry_budget_ms);
      break;
    case OPT_AUTH_TOKENS:
      err = set_str(&s->auth_tokens, optarg);
      break;
    case OPT_TLS_CERT:
      err = set_str(&s->tls_cert, optarg);
      break;
    case OPT_TLS_KEY:
      err = set_str(&s->tls_key, optarg);
      break;
    case OPT_TLS_CLIENT_CA:
      err = set_str(&s->tls_client_ca, optarg);
      break;
    case OPT_INSECURE:
      s->insecure = 1;
      break;
    case OPT_PLUGIN_TLS_CA:
      err = set_str(&s->plugin_tls_ca, optarg);
      break;
    case OPT_PLUGIN_TLS_CERT:
      err = set_str(&s->plugin_tls_cert, optarg);
      break;
    case OPT_PLUGIN_TLS_KEY:
      err = set_str(&s->plugin_tls_key, optarg);
      break;
    case OPT_PLUGIN_INSECURE:
      s->plugin_insecure = 1;
      break;
    case OPT_HELP:
      usage(stdout);
      exit(0);
    default:
      usage(stderr);
      return UV_EINVAL;
    }
  }
  if (err == 0 && optind < argc) {
    fprintf(stderr, "smaugd: unexpected argument '%s'\n", argv[optind]);
    return UV_EINVAL;
  }
  if (err == 0 && (s->max_operations < 1 || s->max_message_bytes < 1024 ||
                   s->max_message_bytes > INT_MAX || s->call_timeout_ms < 1 ||
                   s->call_timeout_ms > UINT32_MAX || s->heartbeat_ms < 0 ||
                   s->heartbeat_ms > UINT32_MAX || s->retry_budget_ms < 0 ||
                   s->retry_budget_ms > UINT32_MAX)) {
    fprintf(stderr, "smaugd: limits out of range\n");
    return UV_EINVAL;
  }
  return err;
}

void settings_free(settings_t *s) {
  free(s->listen);
  free(s->data_dir);
  free(s->bank);
  free(s->log_level);
  free(s->auth_tokens);
  for (size_t i = 0; i < s->n_plugins; i++)
    free(s->plugins[i]);
  free(s->plugins);
  free(s->tls_cert);
  free(s->tls_key);
  free(s->tls_client_ca);
  free(s->plugin_tls_ca);
  free(s->plugin_tls_cert);
  free(s->plugin_tls_key);
}

/* The default bank is a directory under the data dir, as an absolute URI so
 * that plugins started from another directory find it. */
int settings_default_bank(settings_t *s) {
  if (s->bank)
    return 0;
  char real[PATH_MAX];
  if (realpath(s->data_dir, real) == NULL)
    return -errno;
  size_t n = strlen(real) + sizeof("file:///bank");
  if ((s->bank = malloc(n)) == NULL)
    return UV_ENOMEM;
  snprintf(s->bank, n, "file://%s/bank", real);
  return 0;
}
