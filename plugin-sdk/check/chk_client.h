/*
 * chk_client.h - a small client for the plugin protocol, used by
 * smaug-plugin-check and by the SDK's tests.
 *
 * Calls are started on a runtime (rt.h) and waited for by running its
 * loop, so a test can drive a plugin that lives on the same loop. Results
 * are copied out of the runtime's messages into plain structs that the
 * caller owns. The reflection listing is the exception: it is a blocking
 * bidi call on its own channel and completion queue (the runtime's client
 * has no bidi streams), so it must not target a server on the same loop.
 */
#ifndef SMAUG_CHK_CLIENT_H
#define SMAUG_CHK_CLIENT_H

#include "rt.h"
#include "rt_creds.h"
#include "smaug/v1/plugin.pb-c.h"

#include <stddef.h>
#include <stdint.h>

typedef struct chk_s {
  rt_t *rt;
  uv_loop_t *loop;
  rt_channel_t *ch;
  uv_loop_t own_loop;
  int owns_rt;
  rt_creds_t *creds; /* a reference, or NULL: plaintext */
} chk_t;

/* Opens a client to `target` on its own loop and runtime. Returns 0 or a
 * negative UV_E* code. Release with chk_close(). */
int chk_open(chk_t *c, const char *target);

/* chk_open over client credentials `creds` (rt_creds.h; NULL: plaintext),
 * of which the client takes its own reference. */
int chk_open_creds(chk_t *c, const char *target, rt_creds_t *creds);

/* Opens a client on an existing runtime (same loop as a test's server). */
int chk_open_on(chk_t *c, rt_t *rt, const char *target);

/* Releases the channel, and the runtime and loop if chk_open made them. */
void chk_close(chk_t *c);

/* An activity request, in plain strings. Unset strings count as "". */
#define CHK_MAX_KV 16
typedef struct chk_req_s {
  const char *op_id;
  int op_kind; /* 1 protect, 2 restore, 3 delete */
  const char *checkpoint_id;
  const char *type;
  const char *id;
  const char *bank_uri;
  const char *section;
  const char *key; /* idempotency key */
  int sync;        /* 0 Parallel, 1 Sync */
  const void *state;
  size_t state_len;
  size_t n_params;
  const char *param_k[CHK_MAX_KV], *param_v[CHK_MAX_KV];
  size_t n_saved;
  const char *saved_k[CHK_MAX_KV], *saved_v[CHK_MAX_KV];
} chk_req_t;

#define CHK_MAX_PROGRESS_LOG 256

/* The outcome of one activity call, owned by the caller. */
typedef struct chk_act_s {
  int done;
  grpc_status_code code;
  char *message;
  int has_result;
  int n_results; /* more than 1 is a protocol error */
  uint8_t *state;
  size_t state_len;
  size_t n_meta;
  char **meta_k, **meta_v;
  char *restored_id;
  size_t n_progress;
  int monotonic; /* progress `done` never decreased */
  uint64_t last_done;
  /* Each progress message as "done/total unit message", in arrival order
   * (the first CHK_MAX_PROGRESS_LOG of them). */
  char **progress_log;
  size_t n_progress_log;
  rt_client_call_t *call;
} chk_act_t;

/* Starts a ParallelActivity or SyncActivity call. `timeout_ms` 0: none.
 * `out` must stay put until out->done; release with chk_act_clear(). */
int chk_act_start(chk_t *c, const chk_req_t *req, int64_t timeout_ms,
                  chk_act_t *out);

/* Cancels a started call; out->done becomes 1 later. */
void chk_act_cancel(chk_act_t *a);

/* Frees what `a` holds (not `a`). */
void chk_act_clear(chk_act_t *a);

/* The value of metadata `key` in a Sync result, or NULL. */
const char *chk_act_meta(const chk_act_t *a, const char *key);

/* Runs the loop until *flag is nonzero. */
void chk_wait(chk_t *c, const int *flag);

/* Starts and waits for one activity call. */
int chk_act_run(chk_t *c, const chk_req_t *req, int64_t timeout_ms,
                chk_act_t *out);

/* GetPluginInfo. On success `*out` is a copy released with
 * smaug__v1__get_plugin_info_response__free_unpacked(). `*code` gets the
 * status. Returns 0 or a UV_E* code from starting the call. */
int chk_info(chk_t *c, Smaug__V1__GetPluginInfoResponse **out,
             grpc_status_code *code, int64_t timeout_ms);

/* grpc.health.v1.Health/Check of `service`; `*serving` gets the status
 * enum value. */
int chk_health(chk_t *c, const char *service, int *serving,
               grpc_status_code *code);

/* CancelOperation; `*cancelled` gets the plugin's count. */
int chk_cancel_op(chk_t *c, const char *op_id, unsigned *cancelled,
                  grpc_status_code *code);

/* Lists services through grpc.reflection.v1 (blocking, own channel, over
 * `creds`: client credentials, or NULL for plaintext). The names go to a
 * NULL-terminated array released with chk_strv_free(). Returns 0, UV_EIO
 * with `*why` set, or UV_ENOMEM. */
int chk_reflection_list(const char *target, rt_creds_t *creds,
                        int64_t timeout_ms, char ***out, const char **why);
void chk_strv_free(char **v);

#endif
