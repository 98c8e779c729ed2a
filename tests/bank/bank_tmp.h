/*
 * bank_tmp.h - the bank suites' fixture: each test gets a fresh bank in a
 * temporary directory (`dir`; the bank is `bank_dir` = <dir>/bank, opened
 * as `bank` without fsyncs), removed with everything in it after the test.
 * Included once by a suite, which passes bank_tmp_setup and
 * bank_tmp_teardown to TestSuite.
 */
#ifndef SMAUG_TESTS_BANK_TMP_H
#define SMAUG_TESTS_BANK_TMP_H

#include "bank.h"

#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

static char dir[256];
static char bank_dir[300];
static bank_t *bank;

static void bank_tmp_setup(void) {
  snprintf(dir, sizeof(dir), "/tmp/smaug-bank-test-XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
  snprintf(bank_dir, sizeof(bank_dir), "%s/bank", dir);
  char uri[400];
  snprintf(uri, sizeof(uri), "file://%s", bank_dir);
  bank_err_t err = {0};
  cr_assert_eq(bank_open(uri, &bank, &err), 0, "%s", err.msg);
  bank_set_sync(bank, 0);
}

static int bank_tmp_rm_one(const char *path, const struct stat *st, int flag,
                           struct FTW *ftw) {
  return remove(path);
}

static void bank_tmp_teardown(void) {
  bank_close(bank);
  bank = NULL;
  nftw(dir, bank_tmp_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
