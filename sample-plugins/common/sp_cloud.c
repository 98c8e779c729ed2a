/*
 * sp_cloud.c - the sample cloud as the C sample plugins see it: options,
 * request checks, paths, the restored-id rule and small file helpers.
 * See sp_cloud.h.
 */
#define _GNU_SOURCE
#include "sp_cloud.h"

#include "bank_fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ID_OK                                                                  \
  "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"

sp_opts_t sp_opts;

const smaug_option_def_t sp_options[SP_N_OPTIONS] = {
    {.size = sizeof(smaug_option_def_t),
     .name = "--cloud",
     .env = "SMAUG_CLOUD",
     .help = "the sample cloud's root",
     .value = &sp_opts.cloud},
    {.size = sizeof(smaug_option_def_t),
     .name = "--work-dir",
     .env = "SMAUG_WORK_DIR",
     .help = "temporary files (default TMPDIR or /tmp)",
     .value = &sp_opts.work_dir},
    {.size = sizeof(smaug_option_def_t),
     .name = "--delay-ms",
     .env = "SMAUG_SAMPLE_DELAY_MS",
     .help = "delay_ms of requests without that parameter (default 0)",
     .value = &sp_opts.delay_ms},
    {.size = sizeof(smaug_option_def_t),
     .name = "--bank-root",
     .env = "SMAUG_BANK_ROOT",
     .help = "the only directory bank URIs may name (default: none, every "
             "bank URI is refused)",
     .value = &sp_opts.bank_root},
};

void sp_opts_init(void) {
  const char *tmp = getenv("TMPDIR");
  sp_opts.work_dir = tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp";
  /* Copies hold a pool thread for their whole length; the SDK's polls and
   * short jobs need threads of their own meanwhile. */
  setenv("UV_THREADPOOL_SIZE", "8", 0);
}

static int have_cloud(const sp_opts_t *opts) {
  return opts->cloud != NULL && opts->cloud[0] != '\0';
}

int sp_check_id(const char *id) {
  size_t n = id != NULL ? strlen(id) : 0;
  if (n == 0 || n > 128 || id[0] == '.' || id[0] == '_' || id[0] == '-' ||
      strspn(id, ID_OK) != n)
    return SMAUG_EINVAL;
  return 0;
}

int sp_restored_id(const char *id, const char *op_id, char *buf, size_t len) {
  char hex[9];
  size_t h = 0;
  for (const char *c = op_id; *c != '\0' && h < 8; c++) {
    if ((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f'))
      hex[h++] = *c;
    else if (*c >= 'A' && *c <= 'F')
      hex[h++] = (char)(*c - 'A' + 'a');
  }
  if (h < 8)
    return SMAUG_EINVAL;
  hex[8] = '\0';
  int n = snprintf(buf, len, "%s-r%s", id, hex);
  if (n < 0 || (size_t)n >= len || sp_check_id(buf) != 0)
    return SMAUG_EINVAL;
  return 0;
}

int sp_cloud_path(const sp_opts_t *opts, const char *project, const char *kind,
                  const char *id, const char *ext, char *buf, size_t len) {
  int n = snprintf(buf, len, "%s/projects/%s%s%s/%s%s", opts->cloud, project,
                   kind[0] != '\0' ? "/" : "", kind, id, ext);
  return n < 0 || (size_t)n >= len ? SMAUG_EINVAL : 0;
}

/* Ids are unique within their type across the cloud, so a resource that
 * comes without extra["project"] (a plan written by hand) is looked up.
 * Returns the project id (in `buf`) when exactly one project holds it. */
const char *sp_find_project(const sp_opts_t *opts, const char *kind,
                            const char *id, const char *ext, char *buf,
                            size_t len) {
  char dir[PATH_MAX], path[PATH_MAX];
  snprintf(dir, sizeof(dir), "%s/projects", opts->cloud);
  DIR *d = opendir(dir);
  if (d == NULL)
    return NULL;
  int found = 0;
  struct dirent *e;
  struct stat st;
  while ((e = readdir(d)) != NULL) {
    if (sp_check_id(e->d_name) != 0 ||
        sp_cloud_path(opts, e->d_name, kind, id, ext, path, sizeof(path)) !=
            0 ||
        stat(path, &st) != 0)
      continue;
    if (found++ == 0)
      sp_msg(buf, len, "%s", e->d_name);
  }
  closedir(d);
  return found == 1 ? buf : NULL;
}

/* Appends "/seg" (`n` bytes) to the path in `buf` ("/" stays a single
 * slash). Returns 0 or SMAUG_EINVAL when it does not fit. */
static int path_append(char *buf, size_t len, const char *seg, size_t n) {
  size_t l = strlen(buf);
  if (l == 1)
    l = 0; /* "/" + "seg" is "/seg" */
  if (l + 1 + n + 1 > len)
    return SMAUG_EINVAL;
  buf[l] = '/';
  memcpy(buf + l + 1, seg, n);
  buf[l + 1 + n] = '\0';
  return 0;
}

/* The canonical form of `path` into out[PATH_MAX], segment by segment:
 * `out` always holds a real path while the segments exist, so a symlink
 * or ".." in the next one is resolved against real directories. A
 * relative `path` is taken from the working directory. Returns 0,
 * SMAUG_EPERM (a ".." below a missing directory), SMAUG_EINVAL (too long)
 * or -errno (a segment that is not a directory, a loop, no access). */
static int resolve_path(const char *path, char out[PATH_MAX]) {
  char next[PATH_MAX], real[PATH_MAX];
  int missing = 0;
  if (path[0] == '/')
    snprintf(out, PATH_MAX, "/");
  else if (getcwd(out, PATH_MAX) == NULL)
    return -errno;
  for (const char *s = path; *s != '\0';) {
    size_t n = strcspn(s, "/");
    const char *seg = s;
    s += n + (s[n] == '/');
    if (n == 0 || (n == 1 && seg[0] == '.'))
      continue;
    int dotdot = n == 2 && seg[0] == '.' && seg[1] == '.';
    if (missing) {
      if (dotdot)
        return SMAUG_EPERM;
      if (path_append(out, PATH_MAX, seg, n) != 0)
        return SMAUG_EINVAL;
      continue;
    }
    snprintf(next, sizeof(next), "%s", out);
    if (path_append(next, sizeof(next), seg, n) != 0)
      return SMAUG_EINVAL;
    if (realpath(next, real) != NULL) {
      snprintf(out, PATH_MAX, "%s", real);
    } else if (errno == ENOENT) {
      missing = 1; /* created later, by the bank, as a directory */
      snprintf(out, PATH_MAX, "%s", next);
    } else {
      return -errno;
    }
  }
  return 0;
}

int sp_bank_check(const sp_opts_t *opts, const char *uri, char *why,
                  size_t len) {
  char root[PATH_MAX], bank[PATH_MAX];
  if (strncmp(uri, "file:///", 8) != 0) {
    sp_msg(why, len, "bank_uri: '%s' is not a local file:/// URI", uri);
    return SMAUG_EINVAL;
  }
  if (opts->bank_root == NULL || opts->bank_root[0] == '\0') {
    sp_msg(why, len,
           "bank_uri '%s' is refused: no bank root is configured (start the "
           "plugin with --bank-root DIR or SMAUG_BANK_ROOT)",
           uri);
    return SMAUG_EPERM;
  }
  int err = resolve_path(opts->bank_root, root);
  if (err != 0) {
    sp_msg(why, len, "bank_uri '%s' is refused: --bank-root %s: %s", uri,
           opts->bank_root, smaug_strerror(err));
    return SMAUG_EPERM;
  }
  if ((err = resolve_path(uri + 7, bank)) != 0) {
    sp_msg(why, len, "bank_uri '%s' is outside --bank-root %s (%s)", uri,
           opts->bank_root,
           err == SMAUG_EPERM ? "'..' below a directory that does not exist"
                              : smaug_strerror(err));
    return SMAUG_EPERM;
  }
  size_t rl = strcmp(root, "/") == 0 ? 0 : strlen(root);
  if (strncmp(bank, root, rl) == 0 && (bank[rl] == '\0' || bank[rl] == '/'))
    return 0;
  sp_msg(why, len, "bank_uri '%s' is outside --bank-root %s (it is %s)", uri,
         opts->bank_root, bank);
  return SMAUG_EPERM;
}

int sp_req_init(sp_req_t *r, smaug_activity_t *act, const sp_opts_t *opts,
                const char *kind, const char *ext) {
  smaug_op_t op = smaug_activity_op(act);
  memset(r, 0, sizeof(*r));
  r->id = smaug_activity_resource_id(act);
  r->project = "";
  if (sp_check_id(r->id) != 0) {
    smaug_activity_fail(act, SMAUG_EINVAL,
                        "resource.id: '%s' is not a valid id", r->id);
    return SMAUG_EINVAL;
  }
  const char *uri = smaug_activity_bank_uri(act);
  if (uri[0] == '\0') {
    smaug_activity_fail(act, SMAUG_EINVAL, "bank_uri is required");
    return SMAUG_EINVAL;
  }
  char why[PATH_MAX + 256];
  int err = sp_bank_check(opts, uri, why, sizeof(why));
  if (err != 0) {
    smaug_activity_fail(act, err, "%s", why);
    return err;
  }
  if (smaug_activity_bank_section(act)[0] == '\0') {
    smaug_activity_fail(act, SMAUG_EINVAL, "bank_section is required");
    return SMAUG_EINVAL;
  }
  if (op == SMAUG_OP_DELETE)
    return 0;
  const char *project = smaug_activity_extra(act, "project");
  if (project == NULL && kind[0] == '\0')
    project = r->id; /* the project resource names itself */
  if (project == NULL && have_cloud(opts))
    project =
        sp_find_project(opts, kind, r->id, ext, r->found, sizeof(r->found));
  if (project == NULL) {
    smaug_activity_fail(act, SMAUG_EINVAL,
                        "resource.extra[project] is required (no single "
                        "project of the cloud holds %s/%s%s)",
                        kind, r->id, ext);
    return SMAUG_EINVAL;
  }
  if (sp_check_id(project) != 0) {
    smaug_activity_fail(act, SMAUG_EINVAL,
                        "resource.extra[project]: '%s' is not a valid id",
                        project);
    return SMAUG_EINVAL;
  }
  r->project = project;
  if (!have_cloud(opts)) {
    smaug_activity_fail(act, SMAUG_EBUSY,
                        "no cloud directory: start the plugin with --cloud "
                        "DIR or SMAUG_CLOUD");
    return SMAUG_EBUSY;
  }
  int n = kind[0] != '\0'
              ? snprintf(r->dir, sizeof(r->dir), "%s/projects/%s/%s",
                         opts->cloud, project, kind)
              : snprintf(r->dir, sizeof(r->dir), "%s/projects/%s", opts->cloud,
                         project);
  if (n < 0 || (size_t)n >= sizeof(r->dir) ||
      snprintf(r->path, sizeof(r->path), "%s/%s%s", r->dir, r->id, ext) >=
          (int)sizeof(r->path)) {
    smaug_activity_fail(act, SMAUG_EINVAL, "--cloud: path too long");
    return SMAUG_EINVAL;
  }
  if (op != SMAUG_OP_RESTORE)
    return 0;
  if (sp_restored_id(r->id, smaug_activity_operation_id(act), r->new_id,
                     sizeof(r->new_id)) != 0) {
    smaug_activity_fail(act, SMAUG_EINVAL,
                        "operation.id: '%s' does not give a restored id for "
                        "'%s' (8 hex digits needed, at most 128 bytes)",
                        smaug_activity_operation_id(act), r->id);
    return SMAUG_EINVAL;
  }
  if (snprintf(r->new_path, sizeof(r->new_path), "%s/%s%s", r->dir, r->new_id,
               ext) >= (int)sizeof(r->new_path)) {
    smaug_activity_fail(act, SMAUG_EINVAL, "--cloud: path too long");
    return SMAUG_EINVAL;
  }
  return 0;
}

int sp_deps_init(sp_req_t *r, smaug_dependents_t *deps, const sp_opts_t *opts,
                 const char *kind, const char *ext) {
  memset(r, 0, sizeof(*r));
  r->id = smaug_dependents_id(deps);
  const char *project = smaug_dependents_extra(deps, "project");
  if (sp_check_id(r->id) != 0)
    return smaug_dependents_fail(deps, SMAUG_EINVAL,
                                 "resource.id: '%s' is not a valid id", r->id);
  if (project != NULL && sp_check_id(project) != 0)
    return smaug_dependents_fail(
        deps, SMAUG_EINVAL, "resource.extra[project]: '%s' is not a valid id",
        project);
  if (!have_cloud(opts))
    return smaug_dependents_fail(deps, SMAUG_EBUSY,
                                 "no cloud directory: start the plugin with "
                                 "--cloud DIR or SMAUG_CLOUD");
  if (project == NULL && kind[0] == '\0')
    project = r->id;
  if (project == NULL)
    project =
        sp_find_project(opts, kind, r->id, ext, r->found, sizeof(r->found));
  if (project == NULL)
    return smaug_dependents_fail(deps, SMAUG_ENOENT,
                                 "%s/%s%s: no extra[project] and no single "
                                 "project of the cloud holds it",
                                 kind, r->id, ext);
  r->project = project;
  int n = snprintf(r->dir, sizeof(r->dir), "%s/projects/%s%s%s", opts->cloud,
                   project, kind[0] != '\0' ? "/" : "", kind);
  if (n < 0 || (size_t)n >= sizeof(r->dir) ||
      snprintf(r->path, sizeof(r->path), "%s/%s%s", r->dir, r->id, ext) >=
          (int)sizeof(r->path))
    return smaug_dependents_fail(deps, SMAUG_EINVAL, "--cloud: path too long");
  return 0;
}

int sp_deps_add(smaug_dependents_t *deps, const char *type, const char *id,
                const char *project) {
  int err = smaug_dependents_add(deps, type, id, NULL);
  return err != 0 ? err : smaug_dependents_set_extra(deps, "project", project);
}

int sp_read_file(const char *path, size_t max, char **buf, size_t *len) {
  int err = bank_fs_read_all(AT_FDCWD, path, max, buf, len);
  return err == UV_E2BIG ? SMAUG_EINVAL : err;
}

int sp_write_atomic(const char *path, const void *buf, size_t len) {
  int err = bank_fs_mkdirs_for(AT_FDCWD, path);
  return err != 0 ? err : bank_fs_write_atomic(AT_FDCWD, path, buf, len, 1);
}

int sp_sha256_hex(const void *buf, size_t len, char out[65]) {
  unsigned char md[32];
  unsigned int mdlen = 0;
  if (EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
    return SMAUG_ENOMEM;
  for (int i = 0; i < 32; i++)
    snprintf(out + 2 * i, 3, "%02x", md[i]);
  return 0;
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

void sp_names_free(char **names) {
  if (names == NULL)
    return;
  for (char **p = names; *p != NULL; p++)
    free(*p);
  free(names);
}

int sp_list_ids(const char *dir, const char *ext, char ***names, size_t *n) {
  size_t cnt = 0, cap = 8, el = strlen(ext);
  char **v = calloc(cap + 1, sizeof(*v));
  if (v == NULL)
    return SMAUG_ENOMEM;
  DIR *d = opendir(dir);
  if (d == NULL) {
    if (errno == ENOENT)
      goto done;
    int err = -errno;
    free(v);
    return err;
  }
  struct dirent *e;
  int err = 0;
  while (err == 0 && (e = readdir(d)) != NULL) {
    size_t nl = strlen(e->d_name);
    if (nl <= el || strcmp(e->d_name + nl - el, ext) != 0)
      continue;
    if (e->d_type != DT_REG && e->d_type != DT_UNKNOWN)
      continue;
    char *id = strndup(e->d_name, nl - el);
    if (id == NULL) {
      err = SMAUG_ENOMEM;
      break;
    }
    if (sp_check_id(id) != 0) {
      free(id);
      continue;
    }
    if (cnt == cap) {
      char **nv = realloc(v, (cap * 2 + 1) * sizeof(*v));
      if (nv == NULL) {
        free(id);
        err = SMAUG_ENOMEM;
        break;
      }
      v = nv;
      cap *= 2;
    }
    v[cnt++] = id;
    v[cnt] = NULL;
  }
  closedir(d);
  if (err != 0) {
    sp_names_free(v);
    return err;
  }
  qsort(v, cnt, sizeof(*v), cmp_names);
done:
  v[cnt] = NULL;
  *names = v;
  if (n != NULL)
    *n = cnt;
  return 0;
}

/* The pid in "<name>.<pid>.<hex>.restore", or 0 when `name` is not one. */
static long restore_temp_pid(const char *name) {
  static const char sfx[] = ".restore";
  size_t n = strlen(name), sl = sizeof(sfx) - 1;
  if (n <= sl || strcmp(name + n - sl, sfx) != 0)
    return 0;
  const char *end = name + n - sl, *hex = end;
  while (hex > name && hex[-1] != '.')
    hex--;
  if (hex == end || hex == name ||
      strspn(hex, "0123456789abcdef") != (size_t)(end - hex))
    return 0;
  const char *pid = hex - 1;
  while (pid > name && pid[-1] != '.')
    pid--;
  if (pid == hex - 1 || pid == name)
    return 0;
  long v = 0;
  for (const char *c = pid; c < hex - 1; c++) {
    if (*c < '0' || *c > '9' || v > 100000000)
      return 0;
    v = v * 10 + (*c - '0');
  }
  return v;
}

int sp_clean_restore_temps(const smaug_activity_t *act, const char *dest) {
  char dir[PATH_MAX];
  if (snprintf(dir, sizeof(dir), "%s", dest) >= (int)sizeof(dir))
    return SMAUG_EINVAL;
  char *slash = strrchr(dir, '/');
  if (slash == dir)
    slash[1] = '\0';
  else if (slash != NULL)
    *slash = '\0';
  else
    snprintf(dir, sizeof(dir), ".");
  DIR *d = opendir(dir);
  if (d == NULL)
    return errno == ENOENT ? 0 : -errno;
  struct dirent *e;
  int err = 0;
  while ((e = readdir(d)) != NULL) {
    long pid = restore_temp_pid(e->d_name);
    if (pid <= 0 || (e->d_type != DT_REG && e->d_type != DT_UNKNOWN))
      continue;
    /* A live process may still be writing it (ours included). */
    if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
      continue;
    if (unlinkat(dirfd(d), e->d_name, 0) == 0) {
      smaug_activity_log(act, SMAUG_LOG_INFO,
                         "removed %s/%s, left by a killed restore", dir,
                         e->d_name);
    } else if (errno != ENOENT && err == 0) {
      err = -errno;
    }
  }
  closedir(d);
  return err;
}

int sp_fs_err(int err) {
  switch (err) {
  case SMAUG_ENOENT:
  case SMAUG_ENOSPC:
  case SMAUG_EACCES:
  case SMAUG_EPERM:
  case SMAUG_ENOMEM:
  case SMAUG_EINVAL:
  case SMAUG_ECANCELED:
    return err;
  case -EDQUOT:
    return SMAUG_ENOSPC;
  default:
    return SMAUG_EIO;
  }
}

void sp_msg(char *buf, size_t len, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, len, fmt, ap);
  va_end(ap);
}
