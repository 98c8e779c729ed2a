/*
 * smaug/plugin.h - write a smaug protection plugin in C.
 *
 * A plugin is a table of resource types. For each type and each operation
 * (protect, restore, delete) it gives optional `parallel` and `sync`
 * callbacks, an optional `list_dependents` callback, the JSON schemas of
 * its parameters and its limits. The SDK derives GetPluginInfo from that
 * table, serves the smaug.v1.ProtectionPlugin gRPC service with health and
 * reflection, handles idempotency keys (a replayed call joins the running
 * activity or returns its stored result), cancellation, background jobs
 * that Sync waits for (smaug/job.h), bank helpers (smaug/bank.h), logging
 * (smaug/log.h) and a graceful SIGTERM. A whole plugin is:
 *
 *   static const smaug_type_def_t types[] = {{
 *       .size = sizeof(smaug_type_def_t), .type = "example.thing",
 *       .protect = {.parallel = start_copy, .sync = finish_copy}}};
 *   static const smaug_plugin_def_t def = {
 *       .size = sizeof(def), .name = "example", .version = "1.0.0",
 *       .types = types, .n_types = 1};
 *   int main(int argc, char **argv) {
 *     return smaug_plugin_main(argc, argv, &def);
 *   }
 *
 * Structs the plugin fills in start with their own size; the SDK reads only
 * the fields that fit in that size, so a plugin built against an older
 * header keeps working with a newer library.
 *
 * Build: cc plugin.c $(pkg-config --cflags --libs smaug-plugin)
 */
#ifndef SMAUG_PLUGIN_H
#define SMAUG_PLUGIN_H

#include <smaug/activity.h>
#include <smaug/bank.h>
#include <smaug/error.h>
#include <smaug/job.h>
#include <smaug/log.h>
#include <smaug/version.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------- list_dependents */

typedef struct smaug_dependents_s smaug_dependents_t;

/* Lists the direct children of a resource with smaug_dependents_add(),
 * synchronously on the loop. Returns 0 or a SMAUG_E* code (SMAUG_ENOENT
 * for an unknown resource); give the caller a message that says why with
 * smaug_dependents_fail(). */
typedef int (*smaug_list_dependents_cb)(smaug_dependents_t *deps, void *data);

/* The resource whose children are asked for. Owned by `deps`. */
const char *smaug_dependents_type(const smaug_dependents_t *deps);
const char *smaug_dependents_id(const smaug_dependents_t *deps);
/* The resource's extra attribute or merged parameter; NULL if absent. */
const char *smaug_dependents_extra(const smaug_dependents_t *deps,
                                   const char *key);
const char *smaug_dependents_param(const smaug_dependents_t *deps,
                                   const char *key);

/* Adds a child; `name` may be NULL. Strings are copied. Returns 0,
 * SMAUG_EINVAL (empty type or id) or SMAUG_ENOMEM. */
int smaug_dependents_add(smaug_dependents_t *deps, const char *type,
                         const char *id, const char *name);

/* Sets an extra attribute on the child added last (for example a path the
 * child's plugin wants to see again). Returns 0, SMAUG_EINVAL (no child
 * yet) or SMAUG_ENOMEM. */
int smaug_dependents_set_extra(smaug_dependents_t *deps, const char *key,
                               const char *value);

/* Fails the listing with `err` (a SMAUG_E* code, mapped to a gRPC status
 * as for activities) and a printf-style message for the caller, for
 * example the path that was not found. Returns `err`, so a callback can
 * end with `return smaug_dependents_fail(deps, SMAUG_ENOENT, ...)`. The
 * failure stands whatever the callback then returns, and children added
 * before are dropped; a second call replaces the first. The message is
 * copied (truncated to 1023 bytes). */
int smaug_dependents_fail(smaug_dependents_t *deps, int err, const char *fmt,
                          ...) __attribute__((format(printf, 3, 4)));

/* -------------------------------------------------------- definition */

/* The activities implemented for one operation; NULL: not implemented.
 * A type that implements `parallel` but not `sync` still gets a Sync from
 * the SDK, which waits for the jobs `parallel` started and returns their
 * metadata. */
typedef struct smaug_op_def_s {
  smaug_activity_cb parallel;
  smaug_activity_cb sync;
} smaug_op_def_t;

/* One resource type. */
typedef struct smaug_type_def_s {
  size_t size;      /* sizeof(smaug_type_def_t) */
  const char *type; /* for example "smaug.volume"; required */
  smaug_op_def_t protect;
  smaug_op_def_t restore;
  smaug_op_def_t remove; /* the delete operation */
  smaug_list_dependents_cb list_dependents;
  const char *options_schema; /* JSON Schema text; NULL: any */
  const char *restore_schema; /* JSON Schema text; NULL: any */
  unsigned max_concurrency;   /* activity calls in flight; 0: no limit */
  void *data;                 /* handed to this type's callbacks */
} smaug_type_def_t;

/* A named bounded queue for smaug_job_enqueue(). */
typedef struct smaug_queue_def_s {
  const char *name; /* [A-Za-z0-9_-]+ */
  unsigned limit;   /* default limit, at least 1 */
} smaug_queue_def_t;

/* A command-line option of the plugin's own, parsed by
 * smaug_plugin_main() next to the SDK's. It always takes a value:
 * `--name VALUE` or `--name=VALUE`. When the option is absent, the
 * environment variable `env` is read (an empty variable counts as unset);
 * when both are absent, `*value` keeps what the plugin put there, which
 * is how a default is given. */
typedef struct smaug_option_def_s {
  size_t size;        /* sizeof(smaug_option_def_t) */
  const char *name;   /* with its dashes, for example "--cloud"; required */
  const char *env;    /* for example "SMAUG_CLOUD"; NULL: none */
  const char *help;   /* one line for --help; may be NULL */
  const char **value; /* receives a pointer into argv or the environment */
} smaug_option_def_t;

typedef struct smaug_plugin_def_s {
  size_t size;                   /* sizeof(smaug_plugin_def_t) */
  const char *name;              /* for example "smaug-plugin-volume" */
  const char *version;           /* free-form, semantic versioning advised */
  const smaug_type_def_t *types; /* array; its stride is types[0].size */
  size_t n_types;
  const smaug_queue_def_t *queues; /* may be NULL */
  size_t n_queues;
  unsigned max_concurrency; /* over all types; 0: no limit */
  /* Options of the plugin's own (since 0.2); the array's stride is
   * options[0].size. A name that is one of the SDK's options, or given
   * twice, makes the definition invalid. */
  const smaug_option_def_t *options; /* may be NULL */
  size_t n_options;
} smaug_plugin_def_t;

/* ---------------------------------------------------------------- run */

/* Parses the command line, serves the plugin until SIGTERM or SIGINT, and
 * returns the process exit status (0 after a clean shutdown, 2 for a bad
 * command line or definition, 1 for other start-up errors). Options, each
 * also read from an environment variable when the option is absent:
 *
 *   --listen ADDR       SMAUG_PLUGIN_LISTEN       "host:port" or "unix:/path"
 *                                                 (default 127.0.0.1:0)
 *   --log-level LEVEL   SMAUG_PLUGIN_LOG_LEVEL    debug|info|warn|error
 *   --grace-ms N        SMAUG_PLUGIN_GRACE_MS     on SIGTERM, in-flight work
 *                                                 gets N ms, then is
 *                                                 cancelled (default 5000)
 *   --exit-with-parent  SMAUG_PLUGIN_EXIT_WITH_PARENT=1
 *                                                 stop when the parent dies
 *   --queue NAME=N      SMAUG_QUEUE_<NAME>=N      a queue's limit (NAME
 *                                                 upper-cased, '-' as '_')
 *   --result-ttl-ms N   SMAUG_PLUGIN_RESULT_TTL_MS how long finished results
 *                                                 are kept for replays
 *                                                 (default 3600000)
 *   --heartbeat-ms N    SMAUG_PLUGIN_HEARTBEAT_MS  while a call runs, its
 *                                                 last progress is re-sent
 *                                                 this often (default 5000);
 *                                                 a Sync held for jobs
 *                                                 reports them as progress
 *   --tls-cert FILE     SMAUG_PLUGIN_TLS_CERT     serve TLS with this PEM
 *   --tls-key FILE      SMAUG_PLUGIN_TLS_KEY      certificate chain and key
 *                                                 (both or neither; the key
 *                                                 must be 0600 or stricter,
 *                                                 else the start fails
 *                                                 saying so)
 *   --tls-client-ca FILE SMAUG_PLUGIN_TLS_CLIENT_CA
 *                                                 require a client
 *                                                 certificate that chains to
 *                                                 this CA: only the
 *                                                 orchestrator holding one
 *                                                 can drive the plugin
 *   --help, -h                                    prints the options (the
 *                                                 SDK's and the plugin's
 *                                                 own) and returns 0
 *
 * Once serving it logs `msg=listening addr=HOST:PORT` (or the unix path).
 * Call it from the main thread; it blocks. */
int smaug_plugin_main(int argc, char **argv, const smaug_plugin_def_t *def);

#ifdef __cplusplus
}
#endif
#endif /* SMAUG_PLUGIN_H */
