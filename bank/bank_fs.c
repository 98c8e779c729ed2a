/*
 * bank_fs.c - file-system helpers of the bank: atomic writes, whole-file
 * reads, recursive removal, all relative to the bank's root directory fd
 * so that a validated relative path can never escape the bank.
 */
#define _GNU_SOURCE
#include "bank_fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int bank_fail(bank_err_t *err, int code, const char *fmt, ...) {
  if (err != NULL) {
    va_list ap;
    va_start(ap, fmt);
    err->code = code;
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
  }
  return code;
}

int bank_fs_mkdirs(int dirfd, const char *rel) {
  char path[PATH_MAX];
  size_t n = strlen(rel);
  if (n == 0 || n >= sizeof(path))
    return UV_EINVAL;
  memcpy(path, rel, n + 1);
  /* Try the whole path first: the common case is that it exists. */
  if (mkdirat(dirfd, path, BANK_FS_DIR_MODE) == 0 || errno == EEXIST)
    return 0;
  if (errno != ENOENT)
    return -errno;
  for (char *p = path + 1; *p != '\0'; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdirat(dirfd, path, BANK_FS_DIR_MODE) != 0 && errno != EEXIST)
      return -errno;
    *p = '/';
  }
  if (mkdirat(dirfd, path, BANK_FS_DIR_MODE) != 0 && errno != EEXIST)
    return -errno;
  return 0;
}

/* Splits `rel` into its directory ("." if none, "/" for a top-level
 * absolute path) and its base name. */
static int split_path(const char *rel, char *dir, size_t dir_size,
                      const char **base) {
  const char *slash = strrchr(rel, '/');
  if (slash == NULL) {
    snprintf(dir, dir_size, ".");
    *base = rel;
    return 0;
  }
  size_t n = slash == rel ? 1 : (size_t)(slash - rel);
  if (n >= dir_size)
    return UV_ENAMETOOLONG;
  memcpy(dir, rel, n);
  dir[n] = '\0';
  *base = slash + 1;
  return 0;
}

int bank_fs_mkdirs_for(int dirfd, const char *rel) {
  char dir[PATH_MAX];
  const char *base;
  int rc = split_path(rel, dir, sizeof(dir), &base);
  if (rc != 0 || strchr(rel, '/') == NULL)
    return rc;
  return bank_fs_mkdirs(dirfd, dir);
}

int bank_fs_write_atomic(int dirfd, const char *rel, const void *buf,
                         size_t len, int sync) {
  char dir[PATH_MAX], tmp[PATH_MAX];
  const char *base;
  int rc = split_path(rel, dir, sizeof(dir), &base);
  if (rc != 0)
    return rc;
  /* A hidden name (leading '.') that no valid object or chunk can have;
   * pid and thread make it unique among concurrent writers. */
  int n = snprintf(tmp, sizeof(tmp), "%s/.%s.%ld.%lx.tmp", dir, base,
                   (long)getpid(), (unsigned long)pthread_self());
  if (n < 0 || (size_t)n >= sizeof(tmp))
    return UV_ENAMETOOLONG;
  int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                  BANK_FS_FILE_MODE);
  if (fd < 0)
    return -errno;
  rc = bank_fs_pwrite_all(fd, buf, len, 0);
  if (rc == 0 && sync && fsync(fd) != 0)
    rc = -errno;
  if (close(fd) != 0 && rc == 0)
    rc = -errno;
  if (rc == 0 && renameat(dirfd, tmp, dirfd, rel) != 0)
    rc = -errno;
  if (rc != 0) {
    unlinkat(dirfd, tmp, 0);
    return rc;
  }
  return sync ? bank_fs_sync_dir(dirfd, dir) : 0;
}

int bank_fs_read_all(int dirfd, const char *rel, size_t max, char **out,
                     size_t *len) {
  int fd = openat(dirfd, rel, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  struct stat st;
  int rc = 0;
  char *buf = NULL;
  size_t got = 0;
  if (fstat(fd, &st) != 0) {
    rc = -errno;
    goto out;
  }
  if (!S_ISREG(st.st_mode)) {
    rc = UV_EINVAL;
    goto out;
  }
  if ((uint64_t)st.st_size > max) {
    rc = UV_E2BIG;
    goto out;
  }
  buf = malloc((size_t)st.st_size + 1);
  if (buf == NULL) {
    rc = UV_ENOMEM;
    goto out;
  }
  rc = bank_fs_pread_all(fd, buf, (size_t)st.st_size, 0, &got);
  if (rc != 0)
    goto out;
  buf[got] = '\0';
  *out = buf;
  *len = got;
  buf = NULL;
out:
  free(buf);
  close(fd);
  return rc;
}

int bank_fs_pwrite_all(int fd, const void *buf, size_t len, uint64_t off) {
  const char *p = buf;
  while (len > 0) {
    ssize_t n = pwrite(fd, p, len, (off_t)off);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    p += n;
    len -= (size_t)n;
    off += (uint64_t)n;
  }
  return 0;
}

int bank_fs_pread_all(int fd, void *buf, size_t len, uint64_t off,
                      size_t *got) {
  char *p = buf;
  size_t done = 0;
  while (done < len) {
    ssize_t n = pread(fd, p + done, len - done, (off_t)(off + done));
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    if (n == 0)
      break;
    done += (size_t)n;
  }
  *got = done;
  return 0;
}

/* Empties the directory open at `fd` (which this function closes). */
static int remove_contents(int fd) {
  DIR *d = fdopendir(fd);
  if (d == NULL) {
    int rc = -errno;
    close(fd);
    return rc;
  }
  int rc = 0;
  struct dirent *e;
  while (rc == 0 && (errno = 0, e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    if (unlinkat(dirfd(d), e->d_name, 0) == 0 || errno == ENOENT)
      continue;
    if (errno != EISDIR && errno != EPERM) {
      rc = -errno;
      break;
    }
    rc = bank_fs_remove_tree(dirfd(d), e->d_name);
  }
  if (rc == 0 && errno != 0 && e == NULL)
    rc = -errno;
  closedir(d);
  return rc;
}

int bank_fs_remove_tree(int dirfd, const char *rel) {
  if (unlinkat(dirfd, rel, 0) == 0 || errno == ENOENT)
    return 0;
  if (errno != EISDIR && errno != EPERM)
    return -errno;
  int fd = openat(dirfd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT ? 0 : -errno;
  int rc = remove_contents(fd);
  if (rc != 0)
    return rc;
  if (unlinkat(dirfd, rel, AT_REMOVEDIR) != 0 && errno != ENOENT)
    return -errno;
  return 0;
}

int bank_fs_sync_dir(int dirfd, const char *rel) {
  int fd = openat(dirfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  int rc = fsync(fd) != 0 ? -errno : 0;
  close(fd);
  return rc;
}
