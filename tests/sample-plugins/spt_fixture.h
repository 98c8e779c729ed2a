/*
 * spt_fixture.h - a sample cloud, a file:// bank and the four C sample
 * plugins running as real processes, with blocking helpers that drive them
 * through the generated client stubs. Each Criterion test builds its own
 * world in a fresh temporary folder (plugins listen on unix sockets there)
 * and tears it down, so tests run in parallel safely.
 */
#ifndef SPT_FIXTURE_H
#define SPT_FIXTURE_H

#include <grpc/grpc.h>
#include <stddef.h>
#include <stdint.h>

#define SPT_MAX_META 16

typedef struct spt_s spt_t;

/* The outcome of one activity call (or of a P+S pair). */
typedef struct {
  grpc_status_code code;
  char msg[512];
  uint8_t state[1024];
  size_t state_len;
  size_t n_meta;
  char meta_k[SPT_MAX_META][64];
  char meta_v[SPT_MAX_META][256];
  char restored_id[256];
  unsigned n_progress;
} spt_result_t;

/* A resource of the graph. */
typedef struct {
  const char *type, *id;
} spt_res_t;

/* A child result handed to a Sync. */
typedef struct {
  const char *type, *id, *restored_id;
} spt_child_t;

/* Creates the world: runs smaug-cloud-gen with `gen_args` (extra
 * arguments, may be NULL) and starts the project, server, volume and image
 * plugins. Asserts on failure. */
spt_t *spt_new(const char *gen_args);

/* Stops the plugins (SIGTERM; each must exit with status 0, asserted) and
 * removes the folder. */
void spt_free(spt_t *w);

const char *spt_cloud(const spt_t *w);    /* the cloud root */
const char *spt_bank_dir(const spt_t *w); /* the bank root */
const char *spt_bank_uri(const spt_t *w); /* file:// URI of it */

/* Writes <cloud>/projects/proj-1/<kind>/<id><ext> into `buf`. */
void spt_path(const spt_t *w, const char *kind, const char *id, const char *ext,
              char *buf, size_t len);

/* The plugin name ("project", ...) serving a type ("smaug.volume"). */
const char *spt_plugin_of(const char *type);

/* One activity call. `kind` 1..3 (protect, restore, delete), `activity` 1
 * (Parallel) or 2 (Sync). `params` is "k=v,k=v" or NULL. `saved`
 * supplies saved_metadata (restore, delete), `state` the Parallel state.
 * Returns the result's code. */
typedef struct {
  int kind;
  int activity;
  const char *op_id;
  const char *ckpt;
  spt_res_t res;
  const char *params;
  const spt_result_t *saved;
  const uint8_t *state;
  size_t state_len;
  const spt_child_t *children;
  size_t n_children;
} spt_call_t;
grpc_status_code spt_call(spt_t *w, const spt_call_t *c, spt_result_t *out);

/* Parallel (an UNIMPLEMENTED one counts as a no-op), then Sync with its
 * state. The Sync result (or the failing Parallel's) goes to *out. */
grpc_status_code spt_pair(spt_t *w, const spt_call_t *c, spt_result_t *out);

/* ListDependents of (type, id) with extra project=proj-1; fills up to
 * `max` children (strings owned by the fixture until the next call).
 * Returns the status code; *n receives the count. */
grpc_status_code spt_list(spt_t *w, spt_res_t res, spt_res_t *out, size_t max,
                          size_t *n);

/* The status message of the last spt_list (a failure's reason). */
const char *spt_list_message(const spt_t *w);

/* Asserts that protect's Parallel of (type, "nope") fails NOT_FOUND with
 * a message naming <cloud>/projects/proj-1/<kind>/nope<ext>. */
void spt_assert_missing_named(spt_t *w, const char *type, const char *kind,
                              const char *ext);

/* Asserts that <kind>/<new_id><ext> has the bytes of <kind>/<id><ext>. */
void spt_assert_same_copy(const spt_t *w, const char *kind, const char *id,
                          const char *new_id, const char *ext);

/* CancelOperation on one plugin; returns the number of activities and jobs
 * told to stop, or -1 on error. */
int spt_cancel(spt_t *w, const char *plugin, const char *op_id);

/* Value of a metadata key, or NULL. */
const char *spt_meta(const spt_result_t *r, const char *key);

/* Total size of the regular files under the bank. */
uint64_t spt_bank_bytes(const spt_t *w);

/* Number of chunk files in the bank. */
uint64_t spt_bank_chunks(const spt_t *w);

/* 1 when the two files have the same bytes. */
int spt_same_file(const char *a, const char *b);

/* Reads a whole small file into a new string (free()), NULL if missing. */
char *spt_read(const char *path);

#endif
