/*
 * smaug-plugin-volume - the protection plugin for smaug.volume, the raw
 * (possibly sparse) volume files of the sample cloud.
 *
 * A volume copy is heavy, so it follows the "high resource demand" pattern
 * of the design: protect's Parallel enqueues the copy on the bounded queue
 * "copy" (limit 2; --queue copy=N or SMAUG_QUEUE_COPY) and returns at
 * once; Sync completes at once and the SDK holds its answer until the
 * copy has ended, while the copy reports the bytes copied as progress
 * (smaug_job_progress) that reaches the orchestrator on that Sync. The
 * copy goes through the bank's chunk store as object "data" of the
 * resource's section, so holes and zero blocks cost nothing and unchanged
 * chunks are stored once. Restore's Sync writes the volume back under the
 * restored id (every chunk verified, temp file then rename), through the
 * same queue. Delete removes the section and collects unused chunks.
 */
#include "bank_fs.h"
#include "sp_cloud.h"
#include "sp_ops.h"
#include "sp_store.h"
#include "sp_task.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <smaug/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#define TYPE   "smaug.volume"
#define OBJECT "data"
#define QUEUE  "copy"

/* One copy into or out of the bank, run as a queued job. Parallel also
 * registers `task` (sp_task.h), so that protect's Sync knows the copy is
 * already under way in this process. */
typedef struct {
  sp_task_t *task;
  smaug_job_t *job;
  smaug_op_t op;
  uint64_t deadline_ns;    /* timeout_ms */
  uint64_t next_report_ns; /* progress at most every 100 ms */
  int timed_out;
  char path[PATH_MAX]; /* protect: the volume; restore: the destination */
} copy_t;

static const char schema[] =
    "{\n"
    "  \"$schema\": \"https://json-schema.org/draft/2020-12/schema\",\n"
    "  \"title\": \"smaug.volume parameters\",\n"
    "  \"type\": \"object\",\n"
    "  \"properties\": {\n"
    "    \"timeout_ms\": {\"type\": \"integer\", \"minimum\": 1,\n"
    "      \"description\": \"How long the copy may take. Default "
    "3600000.\"},\n" SP_SCHEMA_COMMON_PROPS "  }\n"
    "}\n";

/* The copy's thread: bank progress goes on to the Sync that waits. */
static void on_bank_progress(void *data, uint64_t done, uint64_t total) {
  copy_t *c = data;
  uint64_t now = uv_hrtime();
  if (now >= c->next_report_ns || done == total) {
    c->next_report_ns = now + 100 * 1000000ull;
    smaug_job_progress(c->job, done, total, "bytes", "copying");
  }
  if (now >= c->deadline_ns && !c->timed_out) {
    c->timed_out = 1;
    sp_task_cancel(c->task);
  }
  if (smaug_job_is_cancelled(c->job))
    sp_task_cancel(c->task);
}

static int set_num(smaug_job_t *job, const char *key, uint64_t v) {
  char num[32];
  snprintf(num, sizeof(num), "%" PRIu64, v);
  return smaug_job_set_metadata(job, key, num);
}

static int protect_copy(smaug_job_t *job, copy_t *c, const sp_io_t *io,
                        char *msg, size_t msglen) {
  smaug_activity_t *act = smaug_job_activity(job);
  sp_put_info_t info;
  int err = sp_store_put_file(smaug_activity_bank_uri(act),
                              smaug_activity_bank_section(act), OBJECT, c->path,
                              io, &info, msg, msglen);
  if (err != 0)
    return err;
  if ((err = sp_receipt_put(act, OBJECT, &info)) != 0) {
    sp_msg(msg, msglen, "writing the receipt of %s: %s", OBJECT,
           smaug_strerror(err));
    return err;
  }
  if ((err = set_num(job, "size", info.size)) != 0 ||
      (err = set_num(job, "chunks", info.chunks)) != 0 ||
      (err = set_num(job, "new_chunks", info.new_chunks)) != 0 ||
      (err = set_num(job, "stored_bytes", info.new_bytes)) != 0 ||
      (err = set_num(job, "zero_bytes", info.zero_bytes)) != 0)
    return err;
  return smaug_job_set_metadata(job, "manifest_sha256", info.manifest_sha256);
}

static int restore_copy(smaug_job_t *job, copy_t *c, const sp_io_t *io,
                        char *msg, size_t msglen) {
  smaug_activity_t *act = smaug_job_activity(job);
  int err = bank_fs_mkdirs_for(AT_FDCWD, c->path);
  if (err != 0) {
    sp_msg(msg, msglen, "%s: %s", c->path, smaug_strerror(err));
    return err;
  }
  /* A copy a killed run of this restore left (the restored id is the
   * same on a replay) goes first. Not fatal: the copy below does not
   * need it gone. */
  if ((err = sp_clean_restore_temps(act, c->path)) != 0)
    smaug_activity_log(act, SMAUG_LOG_WARN,
                       "cannot remove old temporary files next to %s: %s",
                       c->path, smaug_strerror(err));
  uint64_t size = 0;
  err = sp_store_get_file(smaug_activity_bank_uri(act),
                          smaug_activity_bank_section(act), OBJECT, c->path,
                          smaug_activity_saved(act, "manifest_sha256"), io,
                          &size, msg, msglen);
  if (err != 0)
    return err;
  const char *want = smaug_activity_saved(act, "size");
  char got[32];
  snprintf(got, sizeof(got), "%" PRIu64, size);
  if (want != NULL && strcmp(want, got) != 0) {
    sp_msg(msg, msglen, "restored %s has %s bytes, the checkpoint recorded %s",
           c->path, got, want);
    return SMAUG_EIO;
  }
  return set_num(job, "size", size);
}

static int copy_work(smaug_job_t *job, void *data) {
  copy_t *c = data;
  c->job = job;
  char msg[256] = "";
  int err = SMAUG_ECANCELED;
  sp_io_t io = {.progress = on_bank_progress,
                .data = c,
                .cancel = sp_task_cancel_flag(c->task)};
  if (!smaug_job_is_cancelled(job))
    err = c->op == SMAUG_OP_PROTECT
              ? protect_copy(job, c, &io, msg, sizeof(msg))
              : restore_copy(job, c, &io, msg, sizeof(msg));
  if (err != 0)
    err = sp_fs_err(err);
  if (err != 0 && c->timed_out) {
    err = SMAUG_ETIMEDOUT;
    sp_msg(msg, sizeof(msg), "copying %s: timeout_ms passed", c->path);
  }
  if (err != 0) {
    if (msg[0] == '\0')
      snprintf(msg, sizeof(msg), "%s", smaug_strerror(err));
    smaug_job_set_message(job, "%s", msg);
  }
  return err;
}

static void copy_done(smaug_job_t *job, int status, void *data) {
  copy_t *c = data;
  sp_task_unref(c->task);
  free(c);
}

/* Enqueues a copy of `path` for `act`; `*out` gets a task reference. */
static uint64_t timeout_ms(const smaug_activity_t *act) {
  const char *v = smaug_activity_param(act, "timeout_ms");
  char *end;
  unsigned long long n = v != NULL ? strtoull(v, &end, 10) : 0;
  return v != NULL && *end == '\0' && n > 0 && n < UINT64_MAX / 2000000
             ? n
             : 3600000;
}

static int copy_start(smaug_activity_t *act, const char *path,
                      sp_task_t **out) {
  copy_t *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return SMAUG_ENOMEM;
  int err = sp_task_new(&c->task);
  if (err != 0) {
    free(c);
    return err;
  }
  c->op = smaug_activity_op(act);
  c->deadline_ns = uv_hrtime() + timeout_ms(act) * 1000000ull;
  snprintf(c->path, sizeof(c->path), "%s", path);
  sp_task_t *t = c->task;
  sp_task_ref(t);
  if ((err = smaug_job_enqueue(act, QUEUE, copy_work, copy_done, c)) != 0) {
    sp_task_unref(t);
    sp_task_unref(c->task);
    free(c);
    return err;
  }
  *out = t;
  return 0;
}

static int check_source(smaug_activity_t *act, const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) {
    int err = sp_fs_err(-errno);
    smaug_activity_fail(act, err, "volume %s: %s", path, strerror(errno));
    return err;
  }
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
    smaug_activity_fail(act, SMAUG_EBUSY, "volume %s is not a file", path);
    return SMAUG_EBUSY;
  }
  smaug_activity_progress(act, 0, (uint64_t)st.st_size, "bytes", "queued");
  return 0;
}

static void protect_parallel(smaug_activity_t *act, void *data) {
  if (sp_delayed(act, protect_parallel, data))
    return;
  sp_req_t r;
  char key[1024];
  sp_task_t *t = NULL;
  if (sp_req_init(&r, act, data, "volumes", ".raw") != 0 ||
      check_source(act, r.path) != 0)
    return;
  int err = sp_task_key(act, key, sizeof(key));
  if (err == 0)
    err = copy_start(act, r.path, &t);
  if (err == 0) {
    err = sp_task_register(key, t);
    sp_task_unref(t);
  }
  if (err != 0) {
    smaug_activity_fail(act, err, "cannot queue the copy of %s: %s", r.path,
                        smaug_strerror(err));
    return;
  }
  smaug_activity_complete(act, "copy queued");
}

static void protect_sync(smaug_activity_t *act, void *data) {
  if (sp_delayed(act, protect_sync, data))
    return;
  sp_req_t r;
  char key[1024];
  if (sp_req_init(&r, act, data, "volumes", ".raw") != 0)
    return;
  sp_task_t *t = NULL;
  if (sp_task_key(act, key, sizeof(key)) == 0)
    t = sp_task_take(key);
  if (t == NULL) {
    /* Parallel ran in an earlier process (or its key was forgotten after a
     * cancel): copy again; chunks already stored are not written twice. */
    if (check_source(act, r.path) != 0)
      return;
    int err = copy_start(act, r.path, &t);
    if (err != 0) {
      smaug_activity_fail(act, err, "cannot queue the copy of %s: %s", r.path,
                          smaug_strerror(err));
      return;
    }
  }
  sp_task_unref(t);
  /* Answered once the copy has ended, with its metadata or its error. */
  smaug_activity_complete(act, "stored");
}

static void restore_sync(smaug_activity_t *act, void *data) {
  if (sp_delayed(act, restore_sync, data))
    return;
  sp_req_t r;
  if (sp_req_init(&r, act, data, "volumes", ".raw") != 0)
    return;
  sp_task_t *t = NULL;
  int err = copy_start(act, r.new_path, &t);
  if (err == 0)
    err = smaug_activity_set_restored_id(act, r.new_id);
  sp_task_unref(t);
  if (err != 0) {
    smaug_activity_fail(act, err, "cannot queue the restore of %s: %s",
                        r.new_path, smaug_strerror(err));
    return;
  }
  smaug_activity_complete(act, "restored"); /* held until the copy ends */
}

static const smaug_type_def_t types[] = {{
    .size = sizeof(smaug_type_def_t),
    .type = TYPE,
    .protect = {.parallel = protect_parallel, .sync = protect_sync},
    .restore = {.sync = restore_sync},
    .remove = {.sync = sp_delete_sync},
    .options_schema = schema,
    .restore_schema = schema,
    .data = &sp_opts,
}};

static const smaug_queue_def_t queues[] = {{.name = QUEUE, .limit = 2}};

static const smaug_plugin_def_t def = {
    .size = sizeof(def),
    .name = "smaug-plugin-volume",
    .version = "0.1.0",
    .types = types,
    .n_types = 1,
    .queues = queues,
    .n_queues = 1,
    SP_OPTIONS, /* --cloud, --work-dir */
};

int main(int argc, char **argv) {
  sp_opts_init();
  return smaug_plugin_main(argc, argv, &def);
}
