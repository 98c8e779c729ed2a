/*
 * example.c - a complete smaug plugin written with libsmaug-plugin.
 *
 * It protects "example.blob" resources: synthetic data derived from the
 * resource id, `chunks` chunks of `chunk_kb` KiB each (parameters). Protect
 * writes the chunks into the bank section from background jobs on a
 * bounded queue, started in Parallel; the SDK holds Sync until they are
 * all written. Restore reads them back and checks them; delete removes the
 * section. Build it out of tree with:
 *
 *   cc example.c $(pkg-config --cflags --libs smaug-plugin)
 */
#include <smaug/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  unsigned index, kb, delay_ms;
} chunk_t;

static unsigned param(smaug_activity_t *act, const char *key, unsigned def) {
  const char *v = smaug_activity_param(act, key);
  return v != NULL ? (unsigned)strtoul(v, NULL, 10) : def;
}

/* Deterministic content, so restore can check what it reads. */
static void fill(smaug_activity_t *act, unsigned index, char *buf, size_t n) {
  const char *id = smaug_activity_resource_id(act);
  for (size_t i = 0; i < n; i++)
    buf[i] = (char)(id[i % strlen(id)] + index + i / 7);
}

static int write_chunk(smaug_job_t *job, void *data) {
  chunk_t *c = data;
  smaug_activity_t *act = smaug_job_activity(job);
  smaug_bank_t *bank;
  int err = smaug_activity_bank(act, &bank);
  if (err != 0)
    return err;
  if (c->delay_ms > 0)
    usleep(c->delay_ms * 1000u); /* stands for a slow copy */
  if (smaug_job_is_cancelled(job))
    return SMAUG_ECANCELED;
  size_t n = (size_t)c->kb * 1024;
  char key[32], *buf = malloc(n);
  if (buf == NULL)
    return SMAUG_ENOMEM;
  fill(act, c->index, buf, n);
  snprintf(key, sizeof(key), "chunk-%04u", c->index);
  err = smaug_bank_put(bank, key, buf, n);
  free(buf);
  if (err != 0)
    smaug_job_set_message(job, "writing %s: %s", key, smaug_strerror(err));
  else /* shown on the Sync that waits for this job; also a heartbeat */
    smaug_job_progress(job, n, n, "bytes", key);
  return err;
}

static void chunk_done(smaug_job_t *job, int status, void *data) {
  free(data);
}

static void protect_parallel(smaug_activity_t *act, void *data) {
  unsigned n = param(act, "chunks", 4);
  for (unsigned i = 0; i < n; i++) {
    chunk_t *c = malloc(sizeof(*c));
    if (c == NULL) {
      smaug_activity_fail(act, SMAUG_ENOMEM, "out of memory");
      return;
    }
    *c = (chunk_t){i, param(act, "chunk_kb", 16), param(act, "delay_ms", 40)};
    int err = smaug_job_enqueue(act, "io", write_chunk, chunk_done, c);
    if (err != 0) {
      free(c);
      smaug_activity_fail(act, err, "cannot queue chunk %u", i);
      return;
    }
  }
  char state[32];
  snprintf(state, sizeof(state), "%u", n);
  smaug_activity_set_state(act, state, strlen(state));
  smaug_activity_complete(act, "chunks queued");
}

static void protect_sync(smaug_activity_t *act, void *data) {
  size_t len;
  const char *state = smaug_activity_state(act, &len);
  char chunks[32];
  snprintf(chunks, sizeof(chunks), "%.*s", (int)len, state ? state : "");
  smaug_activity_set_metadata(act, "chunks", chunks);
  smaug_activity_complete(act, NULL); /* answered once the chunks are in */
}

static int check_chunks(smaug_job_t *job, void *data) {
  smaug_activity_t *act = smaug_job_activity(job);
  const char *saved = smaug_activity_saved(act, "chunks");
  unsigned n = saved != NULL ? (unsigned)strtoul(saved, NULL, 10) : 0;
  smaug_bank_t *bank;
  int err = smaug_activity_bank(act, &bank);
  for (unsigned i = 0; err == 0 && i < n && !smaug_job_is_cancelled(job); i++) {
    char key[32];
    void *buf;
    size_t len;
    snprintf(key, sizeof(key), "chunk-%04u", i);
    if ((err = smaug_bank_get(bank, key, &buf, &len)) != 0) {
      smaug_job_set_message(job, "%s: %s", key, smaug_strerror(err));
      break;
    }
    char *want = malloc(len ? len : 1);
    if (want != NULL)
      fill(act, i, want, len);
    if (want == NULL || memcmp(want, buf, len) != 0) {
      smaug_job_set_message(job, "%s does not match", key);
      err = SMAUG_EIO;
    }
    free(want);
    free(buf);
  }
  return smaug_job_is_cancelled(job) ? SMAUG_ECANCELED : err;
}

static void restore_sync(smaug_activity_t *act, void *data) {
  char id[256];
  snprintf(id, sizeof(id), "%s-restored", smaug_activity_resource_id(act));
  smaug_activity_set_restored_id(act, id);
  int err = smaug_job_start(act, check_chunks, NULL, NULL);
  if (err != 0)
    smaug_activity_fail(act, err, "cannot start the check");
  else
    smaug_activity_complete(act, NULL);
}

static int remove_section(smaug_job_t *job, void *data) {
  smaug_bank_t *bank;
  int err = smaug_activity_bank(smaug_job_activity(job), &bank);
  return err != 0 ? err : smaug_bank_delete_all(bank);
}

static void delete_sync(smaug_activity_t *act, void *data) {
  int err = smaug_job_start(act, remove_section, NULL, NULL);
  if (err != 0)
    smaug_activity_fail(act, err, "cannot start the delete");
  else
    smaug_activity_complete(act, NULL);
}

static const smaug_type_def_t types[] = {{
    .size = sizeof(smaug_type_def_t),
    .type = "example.blob",
    .protect = {.parallel = protect_parallel, .sync = protect_sync},
    .restore = {.sync = restore_sync},
    .remove = {.sync = delete_sync},
    .options_schema = "{\"type\":\"object\",\"properties\":{"
                      "\"chunks\":{\"type\":\"string\"},"
                      "\"chunk_kb\":{\"type\":\"string\"},"
                      "\"delay_ms\":{\"type\":\"string\"}}}",
}};

static const smaug_queue_def_t queues[] = {{"io", 2}};

static const smaug_plugin_def_t plugin = {
    .size = sizeof(smaug_plugin_def_t),
    .name = "smaug-plugin-example",
    .version = "0.1.0",
    .types = types,
    .n_types = 1,
    .queues = queues,
    .n_queues = 1,
};

int main(int argc, char **argv) {
  return smaug_plugin_main(argc, argv, &plugin);
}
