/*
 * main.c - smaugd: settings, start-up and shutdown of the orchestrator.
 *
 * Settings come from built-in defaults, then the JSON --config file, then
 * SMAUG_* environment variables, then flags (each later source wins; plugin
 * addresses from every source are all registered). smaugd opens the store,
 * serves health, reflection and smaug.v1.Orchestrator, registers the
 * configured plugins, resumes the operations a previous run left running,
 * and stops cleanly on SIGTERM or SIGINT. SIGHUP re-reads the certificates
 * and keys (tls.h) without dropping calls, and the token file (auth.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "auth.h"
#include "registry.h"
#include "rt.h"
#include "rt_log.h"
#include "store.h"
#include "tls.h"
#include "token_cmd.h"

typedef struct settings_s {
  char *listen;
  char *data_dir;
  char *bank;
  char *log_level;
  char *auth_tokens; /* token file; NULL: no authentication */
  char **plugins;
  size_t n_plugins;
  long max_operations;
  long max_message_bytes;
  long call_timeout_ms;
  long heartbeat_ms;
  int64_t event_retention_ms; /* 0: keep events forever */
  int64_t retry_budget_ms;    /* 0: not retried */
  /* Transport security (tls.h). */
  char *tls_cert, *tls_key, *tls_client_ca;
  char *plugin_tls_ca, *plugin_tls_cert, *plugin_tls_key;
  int insecure, plugin_insecure;
} settings_t;

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

static int add_plugin(settings_t *s, const char *addr) {
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
    err = add_plugin(s, t);
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
        err = add_plugin(s, json_string_value(e));
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

static int parse_settings(settings_t *s, int argc, char **argv) {
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
      err = add_plugin(s, optarg);
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

static void settings_free(settings_t *s) {
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
static int default_bank(settings_t *s) {
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

/* Takes the data directory's lock (an fcntl write lock on
 * <dir>/smaug.lock, which also holds the owner's pid), creating `dir` if
 * needed, so that two smaugd never share one store. Returns the open lock
 * file, kept until exit, or -1 after printing why: the directory is in use
 * (naming the holder's pid) or the lock file cannot be opened. */
static int lock_data_dir(const char *dir) {
  char path[PATH_MAX];
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    fprintf(stderr, "smaugd: cannot create data directory %s: %s\n", dir,
            strerror(errno));
    return -1;
  }
  /* The store holds every plan and checkpoint: the directory is private.
   * One made before, or by hand, and open to others is narrowed. */
  struct stat st;
  if (stat(dir, &st) == 0 && st.st_uid == geteuid() &&
      (st.st_mode & 0077) != 0) {
    if (chmod(dir, st.st_mode & 0700) != 0) {
      fprintf(stderr, "smaugd: cannot make data directory %s private: %s\n",
              dir, strerror(errno));
      return -1;
    }
    fprintf(stderr, "smaugd: data directory %s was mode %04o, now %04o\n", dir,
            (unsigned)(st.st_mode & 07777), (unsigned)(st.st_mode & 0700));
  }
  snprintf(path, sizeof(path), "%s/smaug.lock", dir);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    fprintf(stderr, "smaugd: cannot open lock file %s: %s\n", path,
            strerror(errno));
    return -1;
  }
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
  if (fcntl(fd, F_SETLK, &fl) != 0) {
    int e = errno;
    struct flock who = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (e == EACCES || e == EAGAIN) {
      long pid = fcntl(fd, F_GETLK, &who) == 0 && who.l_type != F_UNLCK
                     ? (long)who.l_pid
                     : -1;
      fprintf(stderr,
              "smaugd: data directory %s is in use by another smaugd "
              "(pid %ld holds %s); stop it or choose another --data-dir\n",
              dir, pid, path);
    } else {
      fprintf(stderr, "smaugd: cannot lock %s: %s\n", path, strerror(e));
    }
    close(fd);
    return -1;
  }
  char pid[32];
  int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n)
    fprintf(stderr, "smaugd: warning: cannot write the pid to %s: %s\n", path,
            strerror(errno));
  return fd;
}

/* Size of `<dir>/<name>` in bytes, or -1 when it does not exist. */
static off_t file_size(const char *dir, const char *name) {
  char path[PATH_MAX];
  struct stat st;
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  return stat(path, &st) == 0 ? st.st_size : -1;
}

/* A zero-length smaug.db is what a crash during creation, a full disk or a
 * careless copy leaves. It is only accepted (as a new, empty store, with a
 * warning) when nothing else of a store is beside it; with a non-empty
 * write-ahead log or bank, starting empty would lose or orphan their data,
 * so smaugd refuses. Returns 0 to go on, -1 after printing why not. */
static int check_empty_db(const char *dir) {
  if (file_size(dir, "smaug.db") != 0)
    return 0;
  char bank[PATH_MAX];
  snprintf(bank, sizeof(bank), "%s/bank", dir);
  int bank_used = 0;
  uv_fs_t req;
  uv_dirent_t ent;
  if (uv_fs_scandir(NULL, &req, bank, 0, NULL) > 0)
    bank_used = uv_fs_scandir_next(&req, &ent) == 0;
  uv_fs_req_cleanup(&req);
  if (file_size(dir, "smaug.db-wal") > 0 || bank_used) {
    fprintf(stderr,
            "smaugd: %s/smaug.db is empty (0 bytes) but %s holds other data "
            "(%s); refusing to start with an empty store. Restore smaug.db "
            "from a backup, or move the data directory aside to start "
            "anew\n",
            dir, dir, bank_used ? "bank/" : "smaug.db-wal");
    return -1;
  }
  rt_log(RT_LOG_WARN, "smaugd", "store file is empty; starting a new store",
         "file=%s/smaug.db", dir);
  return 0;
}

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
  if ((err = parse_settings(&d.set, argc, argv)) != 0) {
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
  if ((d.lock_fd = lock_data_dir(d.set.data_dir)) < 0 ||
      check_empty_db(d.set.data_dir) != 0) {
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
  if ((err = default_bank(&d.set)) != 0)
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
      if (!dup && add_plugin(&d.set, stored[i]) != 0)
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
