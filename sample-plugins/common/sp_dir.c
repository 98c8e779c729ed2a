/*
 * sp_dir.c - mkdir -p for the sample plugins and smaug-cloud-gen
 * (sp_dir.h).
 */
#include "sp_dir.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* Creates every prefix of `tmp` (edited in place, restored). */
static int mkdir_all(char *tmp) {
  for (char *p = tmp + 1; *p != '\0'; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    int err = mkdir(tmp, 0755) != 0 && errno != EEXIST ? -errno : 0;
    *p = '/';
    if (err != 0)
      return err;
  }
  if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
    return -errno;
  return 0;
}

int sp_mkdir_p(const char *path) {
  char tmp[PATH_MAX];
  if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
    return -ENAMETOOLONG;
  return mkdir_all(tmp);
}

int sp_mkdir_parent(const char *path) {
  char tmp[PATH_MAX];
  if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
    return -ENAMETOOLONG;
  char *slash = strrchr(tmp, '/');
  if (slash == NULL || slash == tmp)
    return 0;
  *slash = '\0';
  return mkdir_all(tmp);
}
