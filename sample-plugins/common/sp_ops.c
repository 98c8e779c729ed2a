/*
 * sp_ops.c - the delete Sync and descriptor saving shared by the sample
 * plugins (sp_ops.h). The bank work runs in SDK jobs.
 */
#include "sp_ops.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static int gc_wanted(const smaug_activity_t *act) {
  const char *v = smaug_activity_param(act, "gc");
  return v == NULL || (strcmp(v, "false") != 0 && strcmp(v, "0") != 0);
}

static int delete_work(smaug_job_t *job, void *data) {
  smaug_activity_t *act = smaug_job_activity(job);
  char msg[256] = "", num[32];
  uint64_t freed = 0;
  int err = sp_store_delete(smaug_activity_bank_uri(act),
                            smaug_activity_bank_section(act), gc_wanted(act),
                            &freed, msg, sizeof(msg));
  if (err != 0) {
    smaug_job_set_message(job, "%s", msg);
    return sp_fs_err(err);
  }
  smaug_bank_t *bank = NULL;
  if ((err = smaug_activity_bank(act, &bank)) == 0)
    err = smaug_bank_delete_all(bank);
  if (err != 0) {
    smaug_job_set_message(job, "removing the receipts of %s: %s",
                          smaug_activity_bank_section(act),
                          smaug_strerror(err));
    return sp_fs_err(err);
  }
  snprintf(num, sizeof(num), "%" PRIu64, freed);
  return smaug_job_set_metadata(job, "freed_bytes", num);
}

void sp_delete_sync(smaug_activity_t *act, void *data) {
  sp_req_t r;
  if (sp_req_init(&r, act, data, "", "") != 0 ||
      sp_delayed(act, sp_delete_sync, data))
    return;
  smaug_activity_progress(act, 0, 1, NULL, "deleting");
  int err = smaug_job_start(act, delete_work, NULL, NULL);
  if (err != 0) {
    smaug_activity_fail(act, err, "cannot start the delete: %s",
                        smaug_strerror(err));
    return;
  }
  smaug_activity_complete(act, "deleted"); /* held until the job ends */
}

typedef struct {
  char *path, *id, *object;
} save_t;

static void save_free(save_t *s) {
  free(s->path);
  free(s->id);
  free(s->object);
  free(s);
}

static int save_work(smaug_job_t *job, void *data) {
  save_t *s = data;
  smaug_activity_t *act = smaug_job_activity(job);
  char *buf = NULL, msg[256] = "";
  size_t len = 0;
  int err = sp_read_file(s->path, SP_MAX_DESCRIPTOR, &buf, &len);
  if (err != 0) {
    smaug_job_set_message(job, "%s: %s", s->path,
                          err == SMAUG_EINVAL ? "not a regular file of at most "
                                                "1 MiB"
                                              : smaug_strerror(err));
    return err == SMAUG_EINVAL ? SMAUG_EBUSY : sp_fs_err(err);
  }
  json_error_t je;
  json_t *doc = json_loadb(buf, len, 0, &je);
  const char *got = json_string_value(json_object_get(doc, "id"));
  if (!json_is_object(doc)) {
    smaug_job_set_message(job, "%s is not a JSON object: %s", s->path, je.text);
    err = SMAUG_EBUSY;
  } else if (s->id != NULL && (got == NULL || strcmp(got, s->id) != 0)) {
    smaug_job_set_message(job, "%s has id '%s', not '%s'", s->path,
                          got != NULL ? got : "", s->id);
    err = SMAUG_EBUSY;
  }
  json_decref(doc);
  sp_put_info_t info;
  char sha[65], num[32];
  if (err == 0 &&
      (err = sp_store_put_bytes(smaug_activity_bank_uri(act),
                                smaug_activity_bank_section(act), s->object,
                                buf, len, &info, msg, sizeof(msg))) != 0) {
    smaug_job_set_message(job, "%s", msg);
    err = sp_fs_err(err);
  }
  if (err == 0 && (err = sp_receipt_put(act, s->object, &info)) != 0)
    smaug_job_set_message(job, "writing the receipt of %s: %s", s->object,
                          smaug_strerror(err));
  if (err == 0 && (err = sp_sha256_hex(buf, len, sha)) == 0) {
    snprintf(num, sizeof(num), "%zu", len);
    if ((err = smaug_job_set_metadata(job, "sha256", sha)) == 0 &&
        (err = smaug_job_set_metadata(job, "bytes", num)) == 0)
      err =
          smaug_job_set_metadata(job, "manifest_sha256", info.manifest_sha256);
  }
  free(buf);
  return err;
}

static void save_done(smaug_job_t *job, int status, void *data) {
  save_free(data);
}

int sp_save_small_start(smaug_activity_t *act, const char *path, const char *id,
                        const char *object) {
  save_t *s = calloc(1, sizeof(*s));
  if (s == NULL)
    return SMAUG_ENOMEM;
  s->path = strdup(path);
  s->id = id != NULL ? strdup(id) : NULL;
  s->object = strdup(object);
  if (s->path == NULL || s->object == NULL || (id != NULL && s->id == NULL)) {
    save_free(s);
    return SMAUG_ENOMEM;
  }
  int err = smaug_job_start(act, save_work, save_done, s);
  if (err != 0)
    save_free(s);
  return err;
}

int sp_receipt_put(smaug_activity_t *act, const char *object,
                   const sp_put_info_t *info) {
  smaug_bank_t *bank = NULL;
  char key[160];
  int err = smaug_activity_bank(act, &bank);
  if (err != 0)
    return err;
  if (snprintf(key, sizeof(key), "%s.json", object) >= (int)sizeof(key))
    return SMAUG_EINVAL;
  json_t *doc =
      json_pack("{s:s, s:I, s:I, s:I, s:s}", "object", object, "size",
                (json_int_t)info->size, "chunks", (json_int_t)info->chunks,
                "stored_bytes", (json_int_t)info->new_bytes, "manifest_sha256",
                info->manifest_sha256);
  char *text = doc != NULL ? json_dumps(doc, JSON_SORT_KEYS) : NULL;
  json_decref(doc);
  if (text == NULL)
    return SMAUG_ENOMEM;
  err = smaug_bank_put(bank, key, text, strlen(text));
  free(text);
  return err;
}

typedef struct {
  smaug_activity_cb self;
  void *data;
  uint64_t until_ns;
  uint64_t next_beat_ns; /* status calls of one poll never overlap */
} delay_t;

static const char delay_done_mark = 0; /* activity data: delay is over */

/* Thread pool: done yet? Meanwhile a heartbeat every 100 ms. */
static int delay_status(smaug_job_t *job, void *data) {
  delay_t *d = data;
  uint64_t now = uv_hrtime();
  if (now >= d->until_ns)
    return 1;
  if (now >= d->next_beat_ns) {
    d->next_beat_ns = now + 100 * 1000000ull;
    smaug_job_progress(job, 0, 0, NULL, "waiting (delay_ms)");
  }
  return 0;
}

static void delay_done(smaug_job_t *job, int status, void *data) {
  delay_t *d = data;
  smaug_activity_t *act = smaug_job_activity(job);
  smaug_activity_cb self = d->self;
  void *udata = d->data;
  free(d);
  if (status != 0) {
    const char *msg = smaug_job_message(job);
    smaug_activity_fail(act, status, "%s",
                        msg[0] ? msg : smaug_strerror(status));
    return;
  }
  smaug_activity_set_data(act, (void *)&delay_done_mark);
  self(act, udata);
}

int sp_delayed(smaug_activity_t *act, smaug_activity_cb self, void *data) {
  const char *v = smaug_activity_param(act, "delay_ms");
  if (v == NULL && sp_opts.delay_ms != NULL && sp_opts.delay_ms[0] != '\0')
    v = sp_opts.delay_ms;
  if (v == NULL || smaug_activity_data(act) == &delay_done_mark)
    return 0;
  char *end;
  errno = 0;
  unsigned long long ms = strtoull(v, &end, 10);
  if (v[0] < '0' || v[0] > '9' || *end != '\0' || errno != 0 ||
      ms > SP_MAX_DELAY_MS) {
    smaug_activity_fail(act, SMAUG_EINVAL,
                        "parameters[delay_ms]: '%s' is not a number of "
                        "milliseconds up to %d",
                        v, SP_MAX_DELAY_MS);
    return 1;
  }
  if (ms == 0)
    return 0;
  delay_t *d = calloc(1, sizeof(*d));
  if (d == NULL) {
    smaug_activity_fail(act, SMAUG_ENOMEM, "out of memory");
    return 1;
  }
  d->self = self;
  d->data = data;
  d->until_ns = uv_hrtime() + ms * 1000000ull;
  smaug_poll_opts_t po = {
      .size = sizeof(po), .interval_ms = 20, .timeout_ms = ms + 60000};
  int err = smaug_poll_start(act, &po, delay_status, delay_done, d);
  if (err != 0) {
    free(d);
    smaug_activity_fail(act, err, "cannot wait: %s", smaug_strerror(err));
  }
  return 1;
}

void sp_restore_end(smaug_job_t *job, int status, const char *restored_id) {
  smaug_activity_t *act = smaug_job_activity(job);
  if (status != 0)
    smaug_activity_fail(act, status, "%s", smaug_job_message(job));
  else if (smaug_activity_set_restored_id(act, restored_id) != 0)
    smaug_activity_fail(act, SMAUG_ENOMEM, "out of memory");
  else
    smaug_activity_complete(act, "restored");
}

/* The restore of sp_restore_in_job: the request and the work. */
typedef struct {
  sp_req_t r;
  smaug_job_work_cb work;
} restore_job_t;

static int restore_job_work(smaug_job_t *job, void *data) {
  restore_job_t *rj = data;
  return rj->work(job, &rj->r);
}

static void restore_job_done(smaug_job_t *job, int status, void *data) {
  restore_job_t *rj = data;
  /* A project is a folder, not copied: it keeps its id. */
  sp_restore_end(job, status, rj->r.new_id[0] ? rj->r.new_id : rj->r.id);
  free(rj);
}

void sp_restore_in_job(smaug_activity_t *act, const sp_opts_t *opts,
                       const char *kind, const char *ext,
                       smaug_job_work_cb work) {
  restore_job_t *rj = calloc(1, sizeof(*rj));
  if (rj == NULL) {
    smaug_activity_fail(act, SMAUG_ENOMEM, "out of memory");
    return;
  }
  rj->work = work;
  if (sp_req_init(&rj->r, act, opts, kind, ext) != 0) {
    free(rj);
    return;
  }
  if (kind[0] == '\0')
    rj->r.new_id[0] = '\0';
  int err = smaug_job_start(act, restore_job_work, restore_job_done, rj);
  if (err != 0) {
    free(rj);
    smaug_activity_fail(act, err, "cannot start the restore: %s",
                        smaug_strerror(err));
  }
}
