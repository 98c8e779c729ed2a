/*
 * datadir.c - the data directory guards of smaugd (see datadir.h): its
 * lock file and mode, and the check of an empty store file.
 */
#include "datadir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "rt_log.h"

/* See datadir.h. */
int datadir_lock(const char *dir) {
  char path[PATH_MAX];
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    fprintf(stderr, "smaugd: cannot create data directory %s: %s\n", dir,
            strerror(errno));
    return -1;
  }
  /* The store holds every plan and checkpoint: the directory is private.
   * One made before, or by hand, and open to others is narrowed. */
  struct stat st;
  if (stat(dir, &st) == 0 && st.st_uid == geteuid() &&
      (st.st_mode & 0077) != 0) {
    if (chmod(dir, st.st_mode & 0700) != 0) {
      fprintf(stderr, "smaugd: cannot make data directory %s private: %s\n",
              dir, strerror(errno));
      return -1;
    }
    fprintf(stderr, "smaugd: data directory %s was mode %04o, now %04o\n", dir,
            (unsigned)(st.st_mode & 07777), (unsigned)(st.st_mode & 0700));
  }
  snprintf(path, sizeof(path), "%s/smaug.lock", dir);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    fprintf(stderr, "smaugd: cannot open lock file %s: %s\n", path,
            strerror(errno));
    return -1;
  }
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
  if (fcntl(fd, F_SETLK, &fl) != 0) {
    int e = errno;
    struct flock who = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (e == EACCES || e == EAGAIN) {
      long pid = fcntl(fd, F_GETLK, &who) == 0 && who.l_type != F_UNLCK
                     ? (long)who.l_pid
                     : -1;
      fprintf(stderr,
              "smaugd: data directory %s is in use by another smaugd "
              "(pid %ld holds %s); stop it or choose another --data-dir\n",
              dir, pid, path);
    } else {
      fprintf(stderr, "smaugd: cannot lock %s: %s\n", path, strerror(e));
    }
    close(fd);
    return -1;
  }
  char pid[32];
  int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n)
    fprintf(stderr, "smaugd: warning: cannot write the pid to %s: %s\n", path,
            strerror(errno));
  return fd;
}

/* Size of `<dir>/<name>` in bytes, or -1 when it does not exist. */
static off_t file_size(const char *dir, const char *name) {
  char path[PATH_MAX];
  struct stat st;
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  return stat(path, &st) == 0 ? st.st_size : -1;
}

/* See datadir.h. */
int datadir_check_store(const char *dir) {
  if (file_size(dir, "smaug.db") != 0)
    return 0;
  char bank[PATH_MAX];
  snprintf(bank, sizeof(bank), "%s/bank", dir);
  int bank_used = 0;
  uv_fs_t req;
  uv_dirent_t ent;
  if (uv_fs_scandir(NULL, &req, bank, 0, NULL) > 0)
    bank_used = uv_fs_scandir_next(&req, &ent) == 0;
  uv_fs_req_cleanup(&req);
  if (file_size(dir, "smaug.db-wal") > 0 || bank_used) {
    fprintf(stderr,
            "smaugd: %s/smaug.db is empty (0 bytes) but %s holds other data "
            "(%s); refusing to start with an empty store. Restore smaug.db "
            "from a backup, or move the data directory aside to start "
            "anew\n",
            dir, dir, bank_used ? "bank/" : "smaug.db-wal");
    return -1;
  }
  rt_log(RT_LOG_WARN, "smaugd", "store file is empty; starting a new store",
         "file=%s/smaug.db", dir);
  return 0;
}
