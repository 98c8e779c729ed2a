/*
 * sp_ops.h - activity steps that several sample plugins share: the delete
 * Sync of every type (remove the section's manifests, then collect the
 * chunks no checkpoint references), saving a small descriptor file
 * (project.json, a server's JSON) into the resource's section, a restore
 * that is one job, and the delay_ms parameter.
 */
#ifndef SP_OPS_H
#define SP_OPS_H

#include "sp_cloud.h"
#include "sp_store.h"

#include <smaug/plugin.h>

/* Largest descriptor the samples accept. */
#define SP_MAX_DESCRIPTOR (1u << 20)

/* The delete Sync of every sample type; `data` is the plugin's sp_opts_t.
 * Removes the resource's section from the bank in a job, then runs the
 * bank's GC unless the parameter gc is "false" or "0". Metadata:
 * freed_bytes. Usable directly as smaug_type_def_t.remove.sync. */
void sp_delete_sync(smaug_activity_t *act, void *data);

/* Starts a job that reads the file at `path` (at most SP_MAX_DESCRIPTOR
 * bytes, a JSON object whose "id" is `id` when `id` is not NULL) and
 * stores it as `object` of the activity's section. The job adds metadata
 * sha256, bytes and manifest_sha256 to the resource's Sync result, and
 * fails NOT_FOUND naming the path when the file is missing. Returns 0 or
 * the errors of smaug_job_start (the job then never runs). `path`, `id`
 * and `object` are copied. Loop thread. */
int sp_save_small_start(smaug_activity_t *act, const char *path, const char *id,
                        const char *object);

/* The JSON Schema properties every sample type accepts (delay_ms, gc),
 * for building a type's options and restore schemas. */
#define SP_SCHEMA_COMMON_PROPS                                                 \
  "    \"delay_ms\": {\"type\": \"integer\", \"minimum\": 0, "                 \
  "\"maximum\": 600000,\n"                                                     \
  "      \"description\": \"Extra time an activity takes, with progress "      \
  "every 100 ms. Default 0.\"},\n"                                             \
  "    \"gc\": {\"type\": \"string\", \"enum\": [\"true\", \"false\"],\n"      \
  "      \"description\": \"Delete only: collect unused chunks. Default "      \
  "true.\"}\n"

/* Longest accepted delay_ms parameter. */
#define SP_MAX_DELAY_MS 600000

/* The delay_ms parameter (0 to SP_MAX_DELAY_MS; without it, the plugin's
 * --delay-ms) makes an activity slower, with progress every 100 ms (sent
 * by an SDK poll with smaug_job_progress): for trying deadlines,
 * heartbeats, cancellation and crash recovery.
 * Call first thing in an activity callback `self`: returns 0 when there is
 * nothing to wait for (go on), or 1 when the activity was taken over: it
 * waits, then calls self(act, data) again (this time returning 0), or
 * fails it (bad parameter, cancelled). Loop thread. */
int sp_delayed(smaug_activity_t *act, smaug_activity_cb self, void *data);

/* A restore Sync whose work is one job: checks the request with
 * sp_req_init(act, opts, kind, ext), then runs `work` on the thread pool
 * with the checked sp_req_t as its data. When the job succeeds the
 * activity completes with the restored id r->new_id (for the project
 * itself, kind "", the project's own id: a project is a folder, not a
 * copy); when it fails, the activity fails with the job's message. Loop
 * thread; ends `act` (now or later) in every case. */
void sp_restore_in_job(smaug_activity_t *act, const sp_opts_t *opts,
                       const char *kind, const char *ext,
                       smaug_job_work_cb work);

/* From a job's done callback: fails the job's activity with the job's
 * status and message, or sets `restored_id` and completes it. */
void sp_restore_end(smaug_job_t *job, int status, const char *restored_id);

/* Writes the receipt of a stored object: "<object>.json" in the section's
 * own folder of the bank (<bank>/<section>/), with the object's name,
 * size, chunk count and manifest digest, so that a reader sees what a
 * checkpoint holds without knowing the chunk store's layout. From a job's
 * work function. Returns 0 or a SMAUG_E* code. */
int sp_receipt_put(smaug_activity_t *act, const char *object,
                   const sp_put_info_t *info);

#endif
