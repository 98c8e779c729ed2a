/*
 * sp_cloud.h - what the four C sample plugins share about the sample cloud:
 * the command-line options they add to the SDK's, the checks on a request
 * (resource id, extra["project"], the cloud directory), the paths of a
 * resource and of its restored copy, the restored-id rule and small file
 * helpers (read, atomic write, SHA-256, directory listing).
 *
 * The layout is described in docs/sample-cloud.md:
 *   <cloud>/projects/<project>/{project.json, servers/, volumes/, images/,
 *                               networks/}
 * Everything here may be called from any thread unless it takes a
 * smaug_activity_t, in which case the rules of smaug/activity.h apply.
 */
#ifndef SP_CLOUD_H
#define SP_CLOUD_H

#include <limits.h>
#include <smaug/plugin.h>
#include <stddef.h>

/* Options every sample plugin adds to the SDK's. */
typedef struct {
  const char *cloud;    /* --cloud DIR / SMAUG_CLOUD; NULL or "": unset */
  const char *work_dir; /* --work-dir DIR / SMAUG_WORK_DIR; default TMPDIR */
  /* --delay-ms N / SMAUG_SAMPLE_DELAY_MS: the delay_ms parameter of a
   * request without one (sp_delayed); NULL: none */
  const char *delay_ms;
  /* --bank-root DIR / SMAUG_BANK_ROOT: the only directory bank URIs may
   * name (the directory itself or anything under it, after symlinks and
   * ".." are resolved); NULL or "": none, and every bank URI is refused */
  const char *bank_root;
} sp_opts_t;

/* The options of every sample plugin, written by smaug_plugin_main() into
 * `sp_opts`: put SP_OPTIONS in the plugin definition and &sp_opts in each
 * type's `data`. */
extern sp_opts_t sp_opts;
extern const smaug_option_def_t sp_options[];
#define SP_N_OPTIONS 4
#define SP_OPTIONS   .options = sp_options, .n_options = SP_N_OPTIONS

/* Gives sp_opts its defaults (work folder TMPDIR, else /tmp) and raises
 * the libuv thread pool to 8 threads unless UV_THREADPOOL_SIZE is set, so
 * that long copies do not starve the SDK's polls. Main thread, before
 * smaug_plugin_main(). */
void sp_opts_init(void);

/* 0 if `id` matches [A-Za-z0-9][A-Za-z0-9._-]{0,127}, else SMAUG_EINVAL. */
int sp_check_id(const char *id);

/* Writes "<id>-r<first 8 hex digits of op_id>" (hex digits taken in order,
 * lower-cased) to `buf`. Returns 0, or SMAUG_EINVAL when op_id has fewer
 * than 8 hex digits or the result is not a valid id or does not fit. */
int sp_restored_id(const char *id, const char *op_id, char *buf, size_t len);

/* Checks that the file:// bank URI `uri` names opts->bank_root or a
 * directory under it. The URI's path is resolved as the kernel would open
 * it: the part that exists goes through realpath() (symlinks, "." and
 * ".."), the part that does not exist yet is appended as written (empty
 * and "." segments dropped; a ".." there is refused, since its meaning
 * would depend on what is created later). Without a bank root every URI
 * is refused: the plugin then cannot write anywhere it was not told to.
 * Returns 0; SMAUG_EPERM with a message in `why` naming the URI when it
 * is refused; SMAUG_EINVAL when `uri` is not "file:///..." or a path is
 * too long. Any thread. The check is made when a request arrives: a
 * symlink swapped in afterwards by someone who can write under the root
 * is not caught (the root is trusted to its owner). */
int sp_bank_check(const sp_opts_t *opts, const char *uri, char *why,
                  size_t len);

/* A checked activity request with the paths the work needs. */
typedef struct {
  const char *id;          /* resource id (owned by the activity) */
  const char *project;     /* extra["project"] ("" for delete) */
  char dir[PATH_MAX];      /* <cloud>/projects/<project>/<kind> */
  char path[PATH_MAX];     /* dir/<id><ext> */
  char new_id[160];        /* restore: the restored id */
  char new_path[PATH_MAX]; /* restore: dir/<new_id><ext> */
  char found[130];         /* the project, when it was looked up */
} sp_req_t;

/* Checks `act` and fills `r`: the resource id must be valid; for protect
 * and restore extra["project"] must be a valid id (the project resource
 * itself may leave it out; without it the one project of the cloud that
 * holds the resource is used) and a cloud directory must be configured;
 * restore also needs a restored id; every operation needs a file:// bank_uri
 * under the plugin's bank root (sp_bank_check: PERMISSION_DENIED
 * otherwise) and a bank_section. `kind` is the cloud folder
 * ("volumes", ...; "" for the project folder itself) and `ext` the file
 * extension (".raw", ...). On failure it fails `act` with a message naming
 * the field (INVALID_ARGUMENT, or FAILED_PRECONDITION without a cloud) and
 * returns the error; on success returns 0. Loop thread. */
int sp_req_init(sp_req_t *r, smaug_activity_t *act, const sp_opts_t *opts,
                const char *kind, const char *ext);

/* Builds <cloud>/projects/<project>/<kind>/<id><ext> (kind "" leaves the
 * folder level out). Returns 0 or SMAUG_EINVAL when it does not fit. */
int sp_cloud_path(const sp_opts_t *opts, const char *project, const char *kind,
                  const char *id, const char *ext, char *buf, size_t len);

/* Finds the project holding <kind>/<id><ext> (ids are unique within their
 * type across the cloud), for resources sent without extra["project"].
 * Returns `buf` holding the project id when exactly one project holds it,
 * else NULL. Any thread. */
const char *sp_find_project(const sp_opts_t *opts, const char *kind,
                            const char *id, const char *ext, char *buf,
                            size_t len);

/* A ListDependents request, checked: the id, the cloud, and the project
 * (extra["project"], the resource itself for kind "", else looked up).
 * Fills r->id, r->project, r->dir and r->path like sp_req_init. On
 * failure fails `deps` with a message (smaug_dependents_fail) and returns
 * the error. Loop thread. */
int sp_deps_init(sp_req_t *r, smaug_dependents_t *deps, const sp_opts_t *opts,
                 const char *kind, const char *ext);

/* Adds child (type, id) to `deps` with extra["project"] = project.
 * Returns 0 or the SDK's error. */
int sp_deps_add(smaug_dependents_t *deps, const char *type, const char *id,
                const char *project);

/* Reads a whole file of at most `max` bytes into a new NUL-terminated
 * buffer (*buf, released with free(); *len without the NUL), written only
 * on success. Returns 0, SMAUG_EINVAL (larger than max) or -errno. */
int sp_read_file(const char *path, size_t max, char **buf, size_t *len);

/* Writes `len` bytes to `path` so that readers see the old file or the
 * whole new one: temporary file in the same folder, fsync, rename, fsync
 * of the folder. Creates the folder if needed. Returns 0 or -errno. */
int sp_write_atomic(const char *path, const void *buf, size_t len);

/* Lowercase hex SHA-256 of `len` bytes into out[65]. Returns 0 or
 * SMAUG_ENOMEM. */
int sp_sha256_hex(const void *buf, size_t len, char out[65]);

/* Sorted names of the regular files in `dir` that end in `ext`, with the
 * extension removed and only valid ids kept, as a NULL-terminated array
 * released with sp_names_free(). A missing folder lists as empty. Returns
 * 0, SMAUG_ENOMEM or -errno. */
int sp_list_ids(const char *dir, const char *ext, char ***names, size_t *n);

/* NULL is a no-op. */
void sp_names_free(char **names);

/* Removes what killed restores left in the folder of `dest` (the file a
 * restore is about to write): the bank's partial copies
 * "<name>.<pid>.<hex>.restore" whose process <pid> no longer exists. A
 * restore that fails removes its own; only a killed plugin leaves one, and
 * the restore replayed or restarted after it writes the same folder, so
 * calling this before writing leaves nothing behind. Files of live
 * processes (this one included) are kept. Each removal is logged on `act`.
 * Returns 0 (a missing folder is clean), SMAUG_EINVAL or -errno. Any
 * thread while `act` is alive. */
int sp_clean_restore_temps(const smaug_activity_t *act, const char *dest);

/* snprintf for messages, where truncation is acceptable. */
void sp_msg(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Maps an errno-style code from the file system to the SDK code an
 * activity should fail with (ENOENT stays NOT_FOUND, ENOSPC stays
 * RESOURCE_EXHAUSTED, EACCES stays PERMISSION_DENIED, the rest become
 * SMAUG_EIO). */
int sp_fs_err(int err);

#endif
