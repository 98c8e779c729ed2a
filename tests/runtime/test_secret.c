/*
 * test_secret.c - the mode check of secret files (rt_secret.h): owner-only
 * files pass; a group- or world-readable or -writable one is refused with
 * a message that says so and names the file; a directory, a missing file
 * and a symlink to a readable file are refused too.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "rt_secret.h"

static char dir[64];

static void mkdir_tmp(void) {
  snprintf(dir, sizeof(dir), "/tmp/smaug-secret-XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
}

static void rm_tmp(void) {
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
  cr_assert_eq(system(cmd), 0);
}

/* A file `name` in the test folder with mode `mode`; its path in `path`. */
static void make_file(const char *name, mode_t mode, char *path, size_t len) {
  snprintf(path, len, "%s/%s", dir, name);
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
  cr_assert(fd >= 0);
  cr_assert_eq(write(fd, "k\n", 2), 2);
  close(fd);
  cr_assert_eq(chmod(path, mode), 0);
}

Test(secret, owner_only_files_pass, .init = mkdir_tmp, .fini = rm_tmp) {
  char path[128], why[256] = "untouched";
  mode_t ok[] = {0600, 0400, 0700, 0200};
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
    char name[16];
    snprintf(name, sizeof(name), "k%zu", i);
    make_file(name, ok[i], path, sizeof(path));
    cr_assert_eq(rt_secret_file_check(path, "key file", why, sizeof(why)), 0,
                 "mode %04o", (unsigned)ok[i]);
  }
  cr_assert_str_eq(why, "untouched");
}

Test(secret, group_or_world_readable_is_refused_and_said, .init = mkdir_tmp,
     .fini = rm_tmp) {
  char path[128], why[512];
  mode_t bad[] = {0640, 0604, 0644, 0440};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char name[16], want[32];
    snprintf(name, sizeof(name), "k%zu", i);
    make_file(name, bad[i], path, sizeof(path));
    cr_assert_eq(rt_secret_file_check(path, "key file", why, sizeof(why)),
                 UV_EPERM);
    cr_assert(strstr(why, "group- or world-readable") != NULL, "%s", why);
    cr_assert(strstr(why, path) != NULL, "%s", why);
    cr_assert(strncmp(why, "key file ", 9) == 0, "%s", why);
    snprintf(want, sizeof(want), "mode %04o", (unsigned)bad[i]);
    cr_assert(strstr(why, want) != NULL, "%s", why);
  }
}

Test(secret, group_writable_is_refused_and_said, .init = mkdir_tmp,
     .fini = rm_tmp) {
  char path[128], why[512];
  make_file("k", 0620, path, sizeof(path));
  cr_assert_eq(rt_secret_file_check(path, NULL, why, sizeof(why)), UV_EPERM);
  cr_assert(strstr(why, "secret file") != NULL, "%s", why);
  cr_assert(strstr(why, "group- or world-writable") != NULL, "%s", why);
}

Test(secret, symlink_is_judged_by_its_target, .init = mkdir_tmp,
     .fini = rm_tmp) {
  char path[128], link[160], why[512];
  make_file("k", 0644, path, sizeof(path));
  snprintf(link, sizeof(link), "%s/link", dir);
  cr_assert_eq(symlink(path, link), 0);
  cr_assert_eq(rt_secret_file_check(link, "token file", why, sizeof(why)),
               UV_EPERM);
  cr_assert(strstr(why, "token file") != NULL, "%s", why);
}

Test(secret, missing_directory_and_null_are_refused, .init = mkdir_tmp,
     .fini = rm_tmp) {
  char path[128], why[512];
  snprintf(path, sizeof(path), "%s/none", dir);
  cr_assert_eq(rt_secret_file_check(path, "key file", why, sizeof(why)),
               UV_ENOENT);
  cr_assert(strstr(why, path) != NULL, "%s", why);
  cr_assert_eq(rt_secret_file_check(dir, "key file", why, sizeof(why)),
               UV_EINVAL);
  cr_assert(strstr(why, "not a regular file") != NULL, "%s", why);
  cr_assert_eq(rt_secret_file_check(NULL, "key file", NULL, 0), UV_EINVAL);
}

Test(secret, fd_check_judges_the_open_file, .init = mkdir_tmp, .fini = rm_tmp) {
  char path[128], why[512];
  make_file("k", 0600, path, sizeof(path));
  int fd = open(path, O_RDONLY);
  cr_assert(fd >= 0);
  cr_assert_eq(rt_secret_fd_check(fd, path, "key file", why, sizeof(why)), 0);
  cr_assert_eq(fchmod(fd, 0644), 0);
  cr_assert_eq(rt_secret_fd_check(fd, path, "key file", why, sizeof(why)),
               UV_EPERM);
  cr_assert(strstr(why, "group- or world-readable") != NULL, "%s", why);
  close(fd);
  cr_assert_eq(rt_secret_fd_check(-1, NULL, NULL, why, sizeof(why)), UV_EBADF);
}
