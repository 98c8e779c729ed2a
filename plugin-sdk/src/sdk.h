/*
 * sdk.h - the SDK's internal types and the calls between its modules.
 *
 * The modules form a one-way stack; each calls only the ones below it:
 *
 *   plugin.c    the process: options, server, signals, GetPluginInfo,
 *               ListDependents, CancelOperation; owns struct smaug_plugin_s
 *   activity.c  the activity contexts, their idempotency index and the
 *               resources' records; starts jobs for its activities
 *   job.c       jobs, polls and queues (sdk_job.h); reports back through
 *               hooks, never by calling up
 *   bank.c, log.c, error.c   the file:// bank, logging glue, error table
 *
 * activity.c reads the settings of struct smaug_plugin_s and owns the
 * fields marked "activity.c" (its index and counters); it calls nothing in
 * plugin.c. Everything runs on the loop thread unless a comment says
 * otherwise. Never included by a public header.
 */
#ifndef SMAUG_SDK_H
#define SMAUG_SDK_H

#include "kv.h"
#include "rt.h"
#include "rt_log.h"
#include "sdk_job.h"
#include "smaug/plugin.h"
#include "smaug/v1/plugin.pb-c.h"
#include "smaug/v1/plugin.smaug.h"

#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

typedef struct smaug_plugin_s smaug_plugin_t;

/* Everything a plugin has started for one resource in one operation. */
typedef struct sdk_res_s {
  char *key;                  /* "op\x1ftype\x1fid" */
  unsigned pending;           /* jobs and polls not finished */
  unsigned started, finished; /* cumulative, for Sync's progress */
  int err;                    /* first failure, 0 if none */
  char *err_msg;
  kv_t meta;                  /* metadata set by jobs */
  smaug_activity_t **waiters; /* completed Syncs held for the jobs */
  size_t n_waiters;
  smaug_activity_t **syncs; /* open Syncs (running or held): job progress */
  size_t n_syncs;
  int refs; /* activities pointing here */
} sdk_res_t;

struct smaug_plugin_s {
  uv_loop_t *loop;
  rt_t *rt;
  rt_server_t *srv;
  smaug_v1_protection_plugin_handlers_t handlers;
  /* the definition, copied into the current struct layout */
  smaug_plugin_def_t def;
  smaug_type_def_t *types;
  smaug_option_def_t *options; /* def.n_options of them */
  const char **option_values;  /* parsed, written out once all parsed */
  sdk_queue_t *queues;
  size_t n_queues;
  Smaug__V1__GetPluginInfoResponse *info; /* built once */
  /* settings */
  char *listen;
  /* --tls-cert, --tls-key, --tls-client-ca: pointers into argv or the
   * environment; NULL: not given (plaintext without a certificate) */
  const char *tls_cert, *tls_key, *tls_client_ca;
  int grace_ms;
  int exit_with_parent;
  int64_t result_ttl_ms;
  int heartbeat_ms;
  /* state */
  /* activity.c */
  kv_t acts;               /* idempotency key -> smaug_activity_t */
  kv_t res;                /* sdk_res_t.key -> sdk_res_t */
  kv_t cancelled_ops;      /* operation id -> uint64_t *when (owned) */
  unsigned *type_inflight; /* per type, activities not yet answered */
  unsigned inflight;
  sdk_jobs_t jobs; /* every live job and poll (job.c) */
  int stopping;
  int port;
  uv_timer_t sweep;
  uv_timer_t parent;
  uv_timer_t heartbeat;
  uv_async_t progress_async; /* jobs' progress is waiting */
  int async_open;
  int parent_pid;
  void (*on_stopped)(struct smaug_plugin_s *p, void *data);
  void *on_stopped_data;
  int timers_open;
};

/* ------------------------------------------------------ plugin.c */

/* Creates a plugin on an existing runtime (tests share one loop between a
 * plugin and its clients). Parses `argc/argv` (argv[0] is skipped; may be
 * 0/NULL) and the environment. Returns 0, SMAUG_EINVAL (bad option or
 * definition) or SMAUG_ENOMEM; `*out` is released with sdk_plugin_free()
 * after the stop callback ran. */
int sdk_plugin_new(rt_t *rt, const smaug_plugin_def_t *def, int argc,
                   char **argv, smaug_plugin_t **out);

/* Binds, starts serving and logs the listening address. `*port` (may be
 * NULL) receives the TCP port, 0 for unix sockets. */
int sdk_plugin_start(smaug_plugin_t *p, int *port);

/* Graceful stop: the server stops taking calls, in-flight calls get the
 * grace period, then every activity, job and poll is cancelled; `cb` runs
 * once nothing is left. Safe to call twice (the second call is ignored). */
void sdk_plugin_stop(smaug_plugin_t *p,
                     void (*cb)(smaug_plugin_t *p, void *data), void *data);

/* NULL is a no-op; only after the stop callback. */
void sdk_plugin_free(smaug_plugin_t *p);

/* The queue named `name`, or NULL (sdk_queue_find over the plugin's
 * queues). */
sdk_queue_t *sdk_plugin_queue(smaug_plugin_t *p, const char *name);

/* ---------------------------------------------------- activity.c */

/* Handlers of the two activity RPCs. */
void sdk_activity_rpc(rt_call_t *call, const Smaug__V1__ActivityRequest *req,
                      void *data);

/* Cancels every activity of operation `op_id` and the jobs of its
 * resources; returns how many activities and jobs were told to stop. */
unsigned sdk_activity_cancel_op(smaug_plugin_t *p, const char *op_id);

/* Cancels everything (shutdown). */
void sdk_activity_cancel_all(smaug_plugin_t *p);

/* Re-sends the last progress of every answered-to-be activity, so callers
 * see a heartbeat during long work; a Sync held for jobs reports them. */
void sdk_activity_heartbeat(smaug_plugin_t *p);

/* Drops finished results older than the TTL (all of them if `all`), and
 * resources nothing refers to. */
void sdk_activity_sweep(smaug_plugin_t *p, int all);

/* The hooks activity.c gives the job layer (sdk_jobs_init): a job's
 * progress goes to its activity and the open Syncs of its resource; its
 * end is counted on the resource (status, message and metadata recorded
 * there) and releases a Sync held for the jobs. */
extern const sdk_job_hooks_t sdk_activity_job_hooks;

/* --------------------------------------------------------- error.c */

/* The gRPC status for a SMAUG_E* code. */
grpc_status_code sdk_err_to_status(int err);

/* --------------------------------------------------------- log.c */

/* Converts between the public and the runtime's levels. */
int sdk_log_parse(const char *name, smaug_log_level_t *out);

#endif
