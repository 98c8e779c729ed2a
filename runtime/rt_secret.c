/*
 * rt_secret.c - the mode check of secret files (rt_secret.h).
 */
#include "rt_secret.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

/* Judges the mode of the file `st` describes. */
static int judge(const struct stat *st, const char *path, const char *what,
                 char *errbuf, size_t len) {
  if (!S_ISREG(st->st_mode)) {
    if (len > 0)
      snprintf(errbuf, len, "%s %s is not a regular file", what, path);
    return UV_EINVAL;
  }
  unsigned mode = (unsigned)(st->st_mode & 07777);
  if ((mode & 0077) == 0)
    return 0;
  if (len > 0)
    snprintf(errbuf, len,
             "%s %s is group- or world-%s (mode %04o): a secret must be "
             "readable by its owner only (chmod 600 %s)",
             what, path, (mode & 0044) != 0 ? "readable" : "writable", mode,
             path);
  return UV_EPERM;
}

int rt_secret_file_check(const char *path, const char *what, char *errbuf,
                         size_t len) {
  struct stat st;
  if (what == NULL)
    what = "secret file";
  if (path == NULL || path[0] == '\0') {
    if (len > 0)
      snprintf(errbuf, len, "%s: no path given", what);
    return UV_EINVAL;
  }
  if (stat(path, &st) != 0) {
    int err = -errno;
    if (len > 0)
      snprintf(errbuf, len, "%s %s: %s", what, path, uv_strerror(err));
    return err;
  }
  return judge(&st, path, what, errbuf, len);
}

int rt_secret_fd_check(int fd, const char *path, const char *what, char *errbuf,
                       size_t len) {
  struct stat st;
  if (what == NULL)
    what = "secret file";
  if (path == NULL)
    path = "(unnamed)";
  if (fstat(fd, &st) != 0) {
    int err = -errno;
    if (len > 0)
      snprintf(errbuf, len, "%s %s: %s", what, path, uv_strerror(err));
    return err;
  }
  return judge(&st, path, what, errbuf, len);
}
