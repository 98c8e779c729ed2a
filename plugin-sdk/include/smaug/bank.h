/*
 * smaug/bank.h - put, get and list objects in a resource's section of a
 * file:// bank.
 *
 * A bank is where backup data lives; the request names the bank (bank_uri,
 * for example "file:///var/lib/smaug/bank") and the resource's section of
 * it (a relative path). These helpers keep a plugin inside its section:
 * keys are relative paths of segments made of [A-Za-z0-9._-] (no empty,
 * "." or ".." segment, no leading '/', at most 512 bytes). Writes are
 * atomic: a temporary file in the same directory, fsync, rename, then an
 * fsync of the directory, so a reader sees either the old or the new
 * object, never a torn one. What the helpers create is private to the
 * plugin's user: directories 0700, objects 0600.
 *
 * The functions block on disk I/O: call them from a job's work function
 * (smaug/job.h), not from the loop. A smaug_bank_t is immutable once open
 * and may be used from several threads at once.
 */
#ifndef SMAUG_BANK_H
#define SMAUG_BANK_H

#include <smaug/activity.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct smaug_bank_s smaug_bank_t;

/* Opens the section `section` of the bank at `uri` (only "file://" URIs).
 * The section directory is created on the first put. Returns 0,
 * SMAUG_EINVAL (bad URI or section), SMAUG_ENOSYS (another scheme) or
 * SMAUG_ENOMEM; `*out` is written only on success and released with
 * smaug_bank_free(). */
int smaug_bank_open(const char *uri, const char *section, smaug_bank_t **out);

/* NULL is a no-op. */
void smaug_bank_free(smaug_bank_t *bank);

/* The bank of an activity's request, opened when the activity started and
 * owned by the context (do not free it). Any thread while the activity is
 * alive, so jobs may use it concurrently. Returns the errors of
 * smaug_bank_open (SMAUG_EINVAL when the request names no bank). */
int smaug_activity_bank(smaug_activity_t *act, smaug_bank_t **out);

/* The absolute directory of the section. Owned by the bank. */
const char *smaug_bank_dir(const smaug_bank_t *bank);

/* 0 if `key` is a valid object key, else SMAUG_EINVAL. */
int smaug_bank_check_key(const char *key);

/* Writes `len` bytes as object `key`, atomically replacing any old one.
 * Returns 0, SMAUG_EINVAL (bad key) or a negative errno from the file
 * system. */
int smaug_bank_put(smaug_bank_t *bank, const char *key, const void *buf,
                   size_t len);

/* Reads object `key` into a new buffer: `*buf` (released with free()) and
 * `*len`, written only on success. A NUL byte follows the data, so text
 * can be used as a string. Returns 0, SMAUG_EINVAL, SMAUG_ENOENT or a
 * negative errno. */
int smaug_bank_get(smaug_bank_t *bank, const char *key, void **buf,
                   size_t *len);

/* Lists the keys under `prefix` ("" or NULL: all), sorted bytewise, in a
 * NULL-terminated array released with smaug_bank_list_free(). `*n` (may be
 * NULL) receives the count. An absent section lists as empty. Temporary
 * files of unfinished writes are not listed. */
int smaug_bank_list(smaug_bank_t *bank, const char *prefix, char ***keys,
                    size_t *n);
void smaug_bank_list_free(char **keys); /* NULL is a no-op */

/* Removes object `key`; SMAUG_ENOENT if it does not exist. */
int smaug_bank_delete(smaug_bank_t *bank, const char *key);

/* Removes every object of the section and the section directory itself.
 * An absent section is not an error. */
int smaug_bank_delete_all(smaug_bank_t *bank);

#ifdef __cplusplus
}
#endif
#endif /* SMAUG_BANK_H */
