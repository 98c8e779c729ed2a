/*
 * bank_fs.h - file-system helpers of the bank (internal).
 *
 * Everything the bank writes goes through here: paths relative to the
 * bank's root directory fd, directory creation, atomic replacement of a
 * file (temporary file in the same directory, optional fsync, rename,
 * optional fsync of the directory), whole-file reads and recursive
 * removal. Also the error helper that fills a bank_err_t. Functions are
 * thread-safe (they keep no state) and return 0 or a negative UV_E* code.
 *
 * It is its own library (smaug_bank_fs, libc and pthreads only) because
 * the sample plugins and smaug-cloud-gen write their small files with the
 * same helpers; with AT_FDCWD as `dirfd` the paths are ordinary paths.
 */
#ifndef SMAUG_BANK_FS_H
#define SMAUG_BANK_FS_H

#include "bank.h"

#include <stddef.h>
#include <stdint.h>

/* Records `code` and a printf-style message in `err` (may be NULL) and
 * returns `code`, so that failures read `return bank_fail(err, rc, ...)`. */
int bank_fail(bank_err_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A bank holds every byte of its users' data: what it creates is private
 * to its owner. Directories and files of the sample cloud made with these
 * helpers get the same modes. */
#define BANK_FS_DIR_MODE  0700
#define BANK_FS_FILE_MODE 0600

/* Creates directory `rel` (relative to `dirfd`) and its missing parents,
 * mode BANK_FS_DIR_MODE. An existing directory is not an error (its mode
 * is left alone). */
int bank_fs_mkdirs(int dirfd, const char *rel);

/* Creates the directory that holds `rel` (relative to `dirfd`) and its
 * missing parents, as bank_fs_mkdirs. Nothing to do without a '/'. */
int bank_fs_mkdirs_for(int dirfd, const char *rel);

/* Writes `len` bytes to `rel` (relative to `dirfd`, whose parent directory
 * must exist), mode BANK_FS_FILE_MODE, atomically: a hidden temporary file next
 * to it, fsync if `sync`, rename over `rel`, then fsync of the directory if
 * `sync`. On failure the temporary file is removed and `rel` is untouched. */
int bank_fs_write_atomic(int dirfd, const char *rel, const void *buf,
                         size_t len, int sync);

/* Reads the whole regular file `rel` (relative to `dirfd`) into a new
 * buffer of *len bytes plus a NUL, owned by the caller (free()). Files
 * larger than `max` fail with UV_E2BIG. */
int bank_fs_read_all(int dirfd, const char *rel, size_t max, char **out,
                     size_t *len);

/* Writes all of `len` bytes at `off` (pwrite loop). */
int bank_fs_pwrite_all(int fd, const void *buf, size_t len, uint64_t off);

/* Reads up to `len` bytes at `off` (pread loop); *got is what was read,
 * short only at end of file. */
int bank_fs_pread_all(int fd, void *buf, size_t len, uint64_t off, size_t *got);

/* Removes `rel` (relative to `dirfd`) and, if it is a directory,
 * everything below it. A missing `rel` is not an error. */
int bank_fs_remove_tree(int dirfd, const char *rel);

/* fsyncs the directory `rel` relative to `dirfd` ("." for dirfd itself). */
int bank_fs_sync_dir(int dirfd, const char *rel);

#endif
