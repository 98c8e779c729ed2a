/*
 * test_bank.c - the file:// bank helpers (plugin-sdk/src/bank.c): objects
 * round-trip, keys cannot leave the section, writes replace atomically and
 * leave no temporary files, listings are sorted.
 */
#include "sdk.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[256];
static char uri[300];
static smaug_bank_t *bank;

static void setup(void) {
  snprintf(root, sizeof(root), "/tmp/smaug-bank-test-XXXXXX");
  cr_assert_not_null(mkdtemp(root));
  snprintf(uri, sizeof(uri), "file://%s", root);
  cr_assert_eq(smaug_bank_open(uri, "cp/type/id", &bank), 0);
}

static void teardown(void) {
  cr_assert_eq(smaug_bank_delete_all(bank), 0);
  smaug_bank_free(bank);
  char path[300];
  snprintf(path, sizeof(path), "%s/cp/type", root);
  rmdir(path);
  snprintf(path, sizeof(path), "%s/cp", root);
  rmdir(path);
  cr_assert_eq(rmdir(root), 0, "the bank root is not empty");
}

TestSuite(bank, .init = setup, .fini = teardown, .timeout = 10);

Test(bank, put_then_get_round_trips) {
  cr_assert_eq(smaug_bank_put(bank, "a/b.bin", "hello", 5), 0);
  void *buf;
  size_t len;
  cr_assert_eq(smaug_bank_get(bank, "a/b.bin", &buf, &len), 0);
  cr_assert_eq(len, 5);
  cr_assert_str_eq(buf, "hello"); /* NUL-terminated */
  free(buf);
}

Test(bank, get_of_a_missing_object_is_enoent) {
  void *buf = NULL;
  size_t len = 0;
  cr_assert_eq(smaug_bank_get(bank, "nope", &buf, &len), SMAUG_ENOENT);
  cr_assert_null(buf);
}

Test(bank, keys_that_leave_the_section_are_rejected) {
  const char *bad[] = {"../x",  "a/../../x", "/etc/passwd", "a//b",
                       "a/./b", "",          "sp ace",      "semi;colon",
                       "a/",    ".tmp.x",    "\x01"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    cr_assert_eq(smaug_bank_check_key(bad[i]), SMAUG_EINVAL, "%s", bad[i]);
    cr_assert_eq(smaug_bank_put(bank, bad[i], "x", 1), SMAUG_EINVAL, "%s",
                 bad[i]);
  }
  cr_assert_eq(smaug_bank_check_key("dir/file-1_2.v3"), 0);
}

Test(bank, open_rejects_bad_uris_and_sections) {
  smaug_bank_t *b = NULL;
  cr_assert_eq(smaug_bank_open("file://relative", "s", &b), SMAUG_EINVAL);
  cr_assert_eq(smaug_bank_open("s3://bucket", "s", &b), SMAUG_ENOSYS);
  cr_assert_eq(smaug_bank_open(uri, "../up", &b), SMAUG_EINVAL);
  cr_assert_eq(smaug_bank_open(uri, "/abs", &b), SMAUG_EINVAL);
  cr_assert_null(b);
}

Test(bank, put_replaces_atomically_and_leaves_no_temporary_file) {
  cr_assert_eq(smaug_bank_put(bank, "obj", "one", 3), 0);
  char path[400];
  snprintf(path, sizeof(path), "%s/obj", smaug_bank_dir(bank));
  struct stat a, b;
  cr_assert_eq(stat(path, &a), 0);
  cr_assert_eq(smaug_bank_put(bank, "obj", "second", 6), 0);
  cr_assert_eq(stat(path, &b), 0);
  cr_assert_neq(a.st_ino, b.st_ino, "not replaced by rename");
  cr_assert_eq(b.st_size, 6);
  char **keys;
  size_t n;
  cr_assert_eq(smaug_bank_list(bank, NULL, &keys, &n), 0);
  cr_assert_eq(n, 1);
  cr_assert_str_eq(keys[0], "obj");
  smaug_bank_list_free(keys);
}

Test(bank, list_is_sorted_and_filtered_by_prefix) {
  cr_assert_eq(smaug_bank_put(bank, "b", "1", 1), 0);
  cr_assert_eq(smaug_bank_put(bank, "a/2", "1", 1), 0);
  cr_assert_eq(smaug_bank_put(bank, "a/1", "1", 1), 0);
  char **keys;
  size_t n;
  cr_assert_eq(smaug_bank_list(bank, "", &keys, &n), 0);
  cr_assert_eq(n, 3);
  cr_assert_str_eq(keys[0], "a/1");
  cr_assert_str_eq(keys[1], "a/2");
  cr_assert_str_eq(keys[2], "b");
  cr_assert_null(keys[3]);
  smaug_bank_list_free(keys);
  cr_assert_eq(smaug_bank_list(bank, "a/", &keys, &n), 0);
  cr_assert_eq(n, 2);
  smaug_bank_list_free(keys);
}

Test(bank, an_absent_section_lists_empty) {
  char **keys;
  size_t n = 9;
  cr_assert_eq(smaug_bank_list(bank, NULL, &keys, &n), 0);
  cr_assert_eq(n, 0);
  cr_assert_null(keys[0]);
  smaug_bank_list_free(keys);
}

Test(bank, delete_removes_one_object) {
  cr_assert_eq(smaug_bank_put(bank, "x", "1", 1), 0);
  cr_assert_eq(smaug_bank_delete(bank, "x"), 0);
  cr_assert_eq(smaug_bank_delete(bank, "x"), SMAUG_ENOENT);
}

Test(bank, delete_all_removes_the_section) {
  cr_assert_eq(smaug_bank_put(bank, "d/e/f", "1", 1), 0);
  cr_assert_eq(smaug_bank_delete_all(bank), 0);
  struct stat st;
  cr_assert_neq(stat(smaug_bank_dir(bank), &st), 0);
  cr_assert_eq(smaug_bank_delete_all(bank), 0, "absent is not an error");
}
