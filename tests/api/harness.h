/*
 * harness.h - process and RPC helpers for smaugd's integration tests:
 * start smaugd and fake plugins on ephemeral ports or unix sockets, parse
 * their "msg=listening addr=" line, and make blocking Orchestrator calls
 * through the runtime on a private loop.
 */
#ifndef SMAUG_TEST_HARNESS_H
#define SMAUG_TEST_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

#include "rt.h"
#include "smaug/v1/orchestrator.pb-c.h"
#include "smaug/v1/orchestrator.smaug.h"

typedef struct client_s client_t;

typedef struct proc_s {
  pid_t pid;
  char log[512];
  char addr[512];
} proc_t;

/* A fresh temporary directory; removed by tmpdir_remove(). */
void tmpdir_make(char *buf, size_t len);
void tmpdir_remove(const char *dir);

/* Starts argv[0] with stdout and stderr appended to `log`, and waits (up
 * to 15 s) for its listening line. Returns 0 and fills p->addr. */
int proc_start(proc_t *p, const char *log, char *const argv[]);
/* Sends `sig`, waits for the exit; returns the wait status. */
int proc_stop(proc_t *p, int sig);
/* Starts the fake plugin "fake" in `dir` with `plugin_args`, then smaugd
 * with it registered, and connects *cl to smaugd once the plugin is
 * serving there. Returns 0, or -1 naming the failed step in `why`. */
int procs_start_all(const char *dir, const char *const *plugin_args,
                    proc_t *plug, proc_t *smaugd, client_t **cl, char *why,
                    size_t len);

/* Stops smaugd with SIGTERM, then each of the NULL-terminated `plugins`,
 * frees *cl (set to NULL) and removes `dir`. Returns smaugd's wait status,
 * or 0 when it was not running. */
int procs_stop_all(client_t **cl, proc_t *smaugd, proc_t *const *plugins,
                   const char *dir);

/* Counts lines of p->log containing `needle`. */
int proc_log_count(const proc_t *p, const char *needle);

/* Starts smaugd on 127.0.0.1:0 (or `listen` if non-NULL) with the given
 * data dir and extra arguments (NULL-terminated). */
int smaugd_start(proc_t *p, const char *dir, const char *listen,
                 const char *const *extra);

/* Starts the fake plugin with extra arguments; its log goes to
 * <dir>/<name>.log. */
int plugin_start(proc_t *p, const char *dir, const char *name,
                 const char *const *extra);

client_t *client_new(const char *addr);
void client_free(client_t *c);

/* A blocking call of Orchestrator method `index`. Returns the gRPC status
 * code; `msg` receives the status message. Every response message is
 * appended to *resps (caller frees with resps_free); resps may be NULL. */
int client_call(client_t *c, size_t index, const ProtobufCMessage *req,
                ProtobufCMessage ***resps, size_t *n, char *msg, size_t len);
void resps_free(ProtobufCMessage **r, size_t n);

/* Unary helper: the single response or NULL; `code` receives the status. */
ProtobufCMessage *client_unary(client_t *c, size_t index,
                               const ProtobufCMessage *req, int *code,
                               char *msg, size_t len);

/* WatchOperation from `after`; events in *evs (free with resps_free on the
 * WatchOperationResponse array). Returns the status code. */
int client_watch(client_t *c, const char *op_id, uint64_t after,
                 Smaug__V1__WatchOperationResponse ***evs, size_t *n);

/* Like client_watch but gives up after `ms` (the status is then
 * DEADLINE_EXCEEDED and *evs holds what arrived). */
int client_watch_for(client_t *c, const char *op_id, uint64_t after, int ms,
                     Smaug__V1__WatchOperationResponse ***evs, size_t *n);

/* Decides on the events received so far (`evs[0..n)`, borrowed) whether
 * client_watch_until stops: nonzero to stop. */
typedef int (*client_until_fn)(Smaug__V1__WatchOperationResponse *const *evs,
                               size_t n, void *data);

/* Watches `op_id` from the start until `until` returns nonzero (the call is
 * then cancelled at once), the stream ends, or `ms` pass. Every event
 * streamed is committed, so what `until` sees is what a restart keeps.
 * Returns 1 when `until` held, 0 otherwise; *evs and *n as for
 * client_watch. */
int client_watch_until(client_t *c, const char *op_id, client_until_fn until,
                       void *data, int ms,
                       Smaug__V1__WatchOperationResponse ***evs, size_t *n);

/* Watches until the end; returns the final status name (static copy) or
 * "" when the stream ended without one. */
const char *client_wait(client_t *c, const char *op_id);

/* Polls ListPlugins (up to 15 s) until `n` plugins are registered and
 * serving. Returns 0, or -1 on timeout. */
int client_wait_plugins(client_t *c, size_t n);

/* CreatePlan of the `n` roots `rp` with parameters `ps` (may be NULL).
 * Returns the status code; on success the plan id (up to 63 chars) is
 * written to `id`, which must hold 64 bytes. */
int client_create_plan(client_t *c, const char *name, Smaug__V1__Resource **rp,
                       size_t n, Smaug__V1__ParameterSet *ps, char *id,
                       char *msg, size_t len);

/* Protect of `plan_id`. Returns the status code; on success the checkpoint
 * and operation ids are written to `cp_id` and `op_id` (64 bytes each). */
int client_protect(client_t *c, const char *plan_id, char *cp_id, char *op_id,
                   char *msg, size_t len);

/* Restore of checkpoint `cp` with parameters `ps` (may be NULL), or
 * DeleteCheckpoint of `cp`, watched to the end. Returns the final status
 * (static copy, as client_wait), or "" with the error in `msg`. */
const char *client_restore_wait(client_t *c, const char *cp,
                                Smaug__V1__ParameterSet *ps, char *msg,
                                size_t len);
const char *client_delete_wait(client_t *c, const char *cp, char *msg,
                               size_t len);

/* GetCheckpoint of `id`: the checkpoint (caller frees with
 * protobuf_c_message_free_unpacked) or NULL; `code` receives the status. */
Smaug__V1__Checkpoint *client_get_checkpoint(client_t *c, const char *id,
                                             int *code, char *msg, size_t len);

/* The result for resource `id` among `rs`, or NULL. Borrowed from `rs`. */
const Smaug__V1__ResourceResult *
result_find(Smaug__V1__ResourceResult *const *rs, size_t n, const char *id);

/* A resource for a request, with an optional "children" extra
 * ("type/id;type/id", what the fake plugin lists as dependents). The
 * strings are borrowed. */
typedef struct res_s {
  Smaug__V1__Resource r;
  Smaug__V1__Resource__ExtraEntry e;
  Smaug__V1__Resource__ExtraEntry *ep;
} res_t;

void res_init(res_t *x, const char *type, const char *id, const char *children);

/* client_create_plan() of the `n` (at most 64) resources of `rs`. */
int client_create_plan_of(client_t *c, const char *name, res_t *rs, size_t n,
                          Smaug__V1__ParameterSet *ps, char *id, char *msg,
                          size_t len);

/* Registers a plugin; returns the status code. */
int client_register(client_t *c, const char *addr, int replace, char *msg,
                    size_t len);

#endif /* SMAUG_TEST_HARNESS_H */
