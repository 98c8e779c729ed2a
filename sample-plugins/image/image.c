/*
 * smaug-plugin-image - the protection plugin for smaug.image, the image
 * files of the sample cloud.
 *
 * Images are stored compressed by an external program, which makes this
 * the sample of the "asynchronous step, started then polled" pattern:
 * protect's Parallel starts `zstd` in a child process writing a compressed
 * copy into the work folder and returns; Sync polls the child (the SDK's
 * poll helper, with a timeout; the status function sends a heartbeat each
 * second with smaug_job_progress) until it has exited, then
 * stores the compressed copy in the bank as object "image.zst" in a job.
 * Restore's Sync fetches that object (every chunk verified), runs
 * `zstd -d` the same way, and renames the result to images/<restored
 * id>.img. Delete removes the section and collects unused chunks.
 */
#include "bank_fs.h"
#include "img_proc.h"
#include "sp_cloud.h"
#include "sp_ops.h"
#include "sp_store.h"
#include "sp_task.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <smaug/plugin.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#define TYPE   "smaug.image"
#define OBJECT "image.zst"
#define ZSTD   "zstd"

static const char schema[] =
    "{\n"
    "  \"$schema\": \"https://json-schema.org/draft/2020-12/schema\",\n"
    "  \"title\": \"smaug.image parameters\",\n"
    "  \"type\": \"object\",\n"
    "  \"properties\": {\n"
    "    \"level\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": 19,\n"
    "      \"description\": \"zstd compression level. Default 1.\"},\n"
    "    \"timeout_ms\": {\"type\": \"integer\", \"minimum\": 1,\n"
    "      \"description\": \"How long zstd may run. Default 600000.\"},\n"
    "    " SP_SCHEMA_COMMON_PROPS "  }\n"
    "}\n";

/* A child process and the files it works on. */
typedef struct {
  img_proc_t *proc;
  char src[PATH_MAX];    /* protect: the image; restore: the fetched copy */
  char out[PATH_MAX];    /* what zstd writes */
  char err[PATH_MAX];    /* its stderr */
  uint64_t size;         /* protect: size of the image */
  int keep_out;          /* restore: `out` was renamed into place */
  uint64_t next_beat_ns; /* status calls of one poll never overlap */
} child_t;

static void child_free(void *data) {
  child_t *c = data;
  img_proc_free(c->proc);
  if (!c->keep_out)
    unlink(c->out);
  free(c);
}

static uint64_t param_u64(const smaug_activity_t *act, const char *key,
                          uint64_t def, uint64_t max) {
  const char *v = smaug_activity_param(act, key);
  char *end;
  unsigned long long n = v != NULL ? strtoull(v, &end, 10) : 0;
  return v != NULL && *end == '\0' && n > 0 && n <= max ? n : def;
}

/* How zstd is polled: every 50 ms, up to timeout_ms. */
static smaug_poll_opts_t poll_opts(const smaug_activity_t *act) {
  smaug_poll_opts_t po = {
      .size = sizeof(po),
      .interval_ms = 50,
      .timeout_ms = param_u64(act, "timeout_ms", 600000, UINT64_MAX / 2000000)};
  return po;
}

/* Starts zstd on `c` (compress, or decompress when `decompress`). */
static int child_start(const smaug_activity_t *act, child_t *c,
                       int decompress) {
  char level[8];
  snprintf(level, sizeof(level), "-%" PRIu64, param_u64(act, "level", 1, 19));
  char *argv[] = {ZSTD, "-q",   "-f",   decompress ? "-d" : level,
                  "-o", c->out, c->src, NULL};
  return img_proc_start(argv, c->err, &c->proc);
}

/* Protect: a task whose user data is a running compression of `path`. */
static int compress_start(smaug_activity_t *act, const char *path,
                          sp_task_t **out) {
  static atomic_uint seq;
  struct stat st;
  if (stat(path, &st) != 0) {
    int err = sp_fs_err(-errno);
    smaug_activity_fail(act, err, "image %s: %s", path, strerror(errno));
    return err;
  }
  child_t *c = calloc(1, sizeof(*c));
  sp_task_t *t = NULL;
  int err = c == NULL ? SMAUG_ENOMEM : sp_task_new(&t);
  if (err != 0) {
    free(c);
    smaug_activity_fail(act, err, "out of memory");
    return err;
  }
  unsigned n = atomic_fetch_add(&seq, 1);
  c->size = (uint64_t)st.st_size;
  sp_msg(c->src, sizeof(c->src), "%s", path);
  sp_msg(c->out, sizeof(c->out), "%s/smaug-image-%d-%u.zst", sp_opts.work_dir,
         (int)getpid(), n);
  sp_msg(c->err, sizeof(c->err), "%s/smaug-image-%d-%u.err", sp_opts.work_dir,
         (int)getpid(), n);
  if ((err = child_start(act, c, 0)) != 0) {
    free(c);
    sp_task_unref(t);
    smaug_activity_fail(act, sp_fs_err(err), "cannot start %s: %s", ZSTD,
                        smaug_strerror(err));
    return sp_fs_err(err);
  }
  sp_task_set_user(t, c, child_free);
  smaug_activity_progress(act, 0, c->size, "bytes", "compressing");
  *out = t;
  return 0;
}

static void protect_parallel(smaug_activity_t *act, void *data) {
  if (sp_delayed(act, protect_parallel, data))
    return;
  sp_req_t r;
  char key[1024];
  sp_task_t *t = NULL;
  if (sp_req_init(&r, act, data, "images", ".img") != 0 ||
      compress_start(act, r.path, &t) != 0)
    return;
  int err = sp_task_key(act, key, sizeof(key));
  if (err == 0)
    err = sp_task_register(key, t);
  sp_task_unref(t);
  if (err != 0) {
    smaug_activity_fail(act, err, "cannot register the compression: %s",
                        smaug_strerror(err));
    return;
  }
  smaug_activity_complete(act, "compressing");
}

/* Poll status (thread pool): has zstd exited? A heartbeat each second
 * while it runs. */
static int child_status(smaug_job_t *job, void *data) {
  child_t *c = data;
  char msg[256] = "";
  int r = img_proc_poll(c->proc, msg, sizeof(msg));
  if (r < 0)
    smaug_job_set_message(job, "%s", msg);
  uint64_t now = uv_hrtime();
  if (r == 0 && now >= c->next_beat_ns) {
    c->next_beat_ns = now + 1000 * 1000000ull;
    smaug_job_progress(job, 0, 0, NULL, "running " ZSTD);
  }
  return r < 0 ? SMAUG_EIO : r;
}

static int task_status(smaug_job_t *job, void *data) {
  return child_status(job, sp_task_user(data));
}

static int set_num(smaug_job_t *job, const char *key, uint64_t v) {
  char num[32];
  snprintf(num, sizeof(num), "%" PRIu64, v);
  return smaug_job_set_metadata(job, key, num);
}

static int store_work(smaug_job_t *job, void *data) {
  child_t *c = sp_task_user(data);
  smaug_activity_t *act = smaug_job_activity(job);
  sp_put_info_t info;
  char msg[256] = "";
  int err = sp_store_put_file(smaug_activity_bank_uri(act),
                              smaug_activity_bank_section(act), OBJECT, c->out,
                              NULL, &info, msg, sizeof(msg));
  if (err != 0) {
    smaug_job_set_message(job, "%s", msg);
    return sp_fs_err(err);
  }
  if ((err = sp_receipt_put(act, OBJECT, &info)) != 0) {
    smaug_job_set_message(job, "writing the receipt of %s: %s", OBJECT,
                          smaug_strerror(err));
    return err;
  }
  if ((err = set_num(job, "size", c->size)) != 0 ||
      (err = set_num(job, "compressed_bytes", info.size)) != 0 ||
      (err = set_num(job, "chunks", info.chunks)) != 0 ||
      (err = set_num(job, "stored_bytes", info.new_bytes)) != 0)
    return err;
  return smaug_job_set_metadata(job, "manifest_sha256", info.manifest_sha256);
}

static void store_done(smaug_job_t *job, int status, void *data) {
  sp_task_unref(data);
}

static void compressed(smaug_job_t *job, int status, void *data) {
  sp_task_t *t = data;
  smaug_activity_t *act = smaug_job_activity(job);
  const char *msg = smaug_job_message(job);
  if (status != 0) {
    sp_task_unref(t);
    smaug_activity_fail(act, status, "compressing: %s",
                        msg[0] ? msg : smaug_strerror(status));
    return;
  }
  int err = smaug_job_start(act, store_work, store_done, t);
  if (err != 0) {
    sp_task_unref(t);
    smaug_activity_fail(act, err, "cannot start storing: %s",
                        smaug_strerror(err));
    return;
  }
  smaug_activity_complete(act, "stored"); /* held until the job ends */
}

static void protect_sync(smaug_activity_t *act, void *data) {
  if (sp_delayed(act, protect_sync, data))
    return;
  sp_req_t r;
  char key[1024];
  if (sp_req_init(&r, act, data, "images", ".img") != 0)
    return;
  sp_task_t *t = NULL;
  if (sp_task_key(act, key, sizeof(key)) == 0)
    t = sp_task_take(key);
  /* Parallel ran in an earlier process: compress again. */
  if (t == NULL && compress_start(act, r.path, &t) != 0)
    return;
  smaug_poll_opts_t po = poll_opts(act);
  int err = smaug_poll_start(act, &po, task_status, compressed, t);
  if (err != 0) {
    sp_task_unref(t);
    smaug_activity_fail(act, err, "cannot poll %s: %s", ZSTD,
                        smaug_strerror(err));
  }
}

/* ---------------------------------------------------------- restore */

typedef struct {
  sp_req_t r;
  child_t *c;
} restore_t;

static void restore_free(restore_t *rs) {
  if (rs->c != NULL) {
    unlink(rs->c->src);
    child_free(rs->c);
  }
  free(rs);
}

static int fetch_work(smaug_job_t *job, void *data) {
  restore_t *rs = data;
  smaug_activity_t *act = smaug_job_activity(job);
  char msg[256] = "";
  int err = bank_fs_mkdirs_for(AT_FDCWD, rs->c->src);
  /* What a killed run of this restore left goes first (not fatal). */
  int cerr = err == 0 ? sp_clean_restore_temps(act, rs->c->src) : 0;
  if (cerr != 0)
    smaug_activity_log(act, SMAUG_LOG_WARN,
                       "cannot remove old temporary files next to %s: %s",
                       rs->c->src, smaug_strerror(cerr));
  if (err == 0)
    err = sp_store_get_file(
        smaug_activity_bank_uri(act), smaug_activity_bank_section(act), OBJECT,
        rs->c->src, smaug_activity_saved(act, "manifest_sha256"), NULL, NULL,
        msg, sizeof(msg));
  if (err != 0) {
    smaug_job_set_message(job, "%s", msg[0] ? msg : smaug_strerror(err));
    return sp_fs_err(err);
  }
  return 0;
}

/* Checks the decompressed size, then renames it into place. */
static int finish_work(smaug_job_t *job, void *data) {
  restore_t *rs = data;
  smaug_activity_t *act = smaug_job_activity(job);
  struct stat st;
  int err = 0;
  int fd = open(rs->c->out, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || fstat(fd, &st) != 0 || fsync(fd) != 0)
    err = -errno;
  if (fd >= 0)
    close(fd);
  if (err != 0) {
    smaug_job_set_message(job, "%s: %s", rs->c->out, strerror(-err));
    return sp_fs_err(err);
  }
  const char *want = smaug_activity_saved(act, "size");
  char got[32];
  snprintf(got, sizeof(got), "%" PRIu64, (uint64_t)st.st_size);
  if (want != NULL && strcmp(want, got) != 0) {
    smaug_job_set_message(job,
                          "restored image has %s bytes, the checkpoint "
                          "recorded %s",
                          got, want);
    return SMAUG_EIO;
  }
  if (rename(rs->c->out, rs->r.new_path) != 0) {
    err = -errno;
    smaug_job_set_message(job, "renaming to %s: %s", rs->r.new_path,
                          strerror(errno));
    return sp_fs_err(err);
  }
  rs->c->keep_out = 1;
  return smaug_job_set_metadata(job, "size", got);
}

static void finish_done(smaug_job_t *job, int status, void *data) {
  restore_t *rs = data;
  sp_restore_end(job, status, rs->r.new_id);
  restore_free(rs);
}

static void decompressed(smaug_job_t *job, int status, void *data) {
  restore_t *rs = data;
  smaug_activity_t *act = smaug_job_activity(job);
  const char *msg = smaug_job_message(job);
  int err = status;
  if (err == 0 &&
      (err = smaug_job_start(act, finish_work, finish_done, rs)) == 0)
    return;
  smaug_activity_fail(act, err, "decompressing: %s",
                      msg[0] ? msg : smaug_strerror(err));
  restore_free(rs);
}

static int restore_poll(smaug_job_t *job, void *data) {
  restore_t *rs = data;
  return child_status(job, rs->c);
}

static void fetch_done(smaug_job_t *job, int status, void *data) {
  restore_t *rs = data;
  smaug_activity_t *act = smaug_job_activity(job);
  int err = status;
  if (err != 0) {
    smaug_activity_fail(act, err, "%s", smaug_job_message(job));
    restore_free(rs);
    return;
  }
  if ((err = child_start(act, rs->c, 1)) != 0) {
    smaug_activity_fail(act, sp_fs_err(err), "cannot start %s: %s", ZSTD,
                        smaug_strerror(err));
    restore_free(rs);
    return;
  }
  smaug_poll_opts_t po = poll_opts(act);
  if ((err = smaug_poll_start(act, &po, restore_poll, decompressed, rs)) != 0) {
    smaug_activity_fail(act, err, "cannot poll %s: %s", ZSTD,
                        smaug_strerror(err));
    restore_free(rs);
  }
}

static void restore_sync(smaug_activity_t *act, void *data) {
  if (sp_delayed(act, restore_sync, data))
    return;
  restore_t *rs = calloc(1, sizeof(*rs));
  child_t *c = calloc(1, sizeof(*c));
  if (rs == NULL || c == NULL) {
    free(rs);
    free(c);
    smaug_activity_fail(act, SMAUG_ENOMEM, "out of memory");
    return;
  }
  rs->c = c;
  if (sp_req_init(&rs->r, act, data, "images", ".img") != 0) {
    restore_free(rs);
    return;
  }
  sp_msg(c->src, sizeof(c->src), "%s/.%s.zst.tmp", rs->r.dir, rs->r.new_id);
  sp_msg(c->out, sizeof(c->out), "%s/.%s.img.tmp", rs->r.dir, rs->r.new_id);
  sp_msg(c->err, sizeof(c->err), "%s/.%s.err.tmp", rs->r.dir, rs->r.new_id);
  int err = smaug_job_start(act, fetch_work, fetch_done, rs);
  if (err != 0) {
    restore_free(rs);
    smaug_activity_fail(act, err, "cannot start the restore: %s",
                        smaug_strerror(err));
  }
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

static const smaug_plugin_def_t def = {
    .size = sizeof(def),
    .name = "smaug-plugin-image",
    .version = "0.1.0",
    .types = types,
    .n_types = 1,
    SP_OPTIONS, /* --cloud, --work-dir */
};

int main(int argc, char **argv) {
  sp_opts_init();
  return smaug_plugin_main(argc, argv, &def);
}
