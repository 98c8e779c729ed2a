/*
 * bank_saved.h - a checkpoint's catalogue checked against its bank.
 *
 * smaugd's store says, per resource, what a protect saved: the result's
 * status and the metadata its SyncActivity returned. A plugin that keeps a
 * resource's data in the chunk store records each object's manifest digest
 * there (docs/bank.md, "What a checkpoint must hold"):
 *   manifest_sha256           one object: the resource's section
 *                             (checkpoints/<checkpoint>/<type>/<id>) holds a
 *                             manifest with this digest;
 *   manifest_sha256.<object>  that object of the section has a manifest
 *                             with this digest (several objects);
 *   object_sha256.<name>      a plugin that keeps a plain file instead:
 *                             <bank root>/<section>/<name> is a regular
 *                             file whose contents have this SHA-256.
 * Every resource whose protect ended DONE and whose metadata has such keys
 * is checked; other resources claim nothing in the bank. This is
 * the rule `smaug checkpoint verify` applies before it reads the chunks,
 * and the check smaugd runs before a restore starts (presence only).
 * Object names follow bank_check_object (no "..", no '/'); a key naming
 * anything else is reported as a problem, never followed.
 *
 * Blocking file-system calls, like the rest of the bank: a few stats (or
 * manifest and plain-file reads with BANK_SAVED_DIGEST) per resource, never
 * chunk data.
 */
#ifndef SMAUG_BANK_SAVED_H
#define SMAUG_BANK_SAVED_H

#include <stddef.h>

#include "bank.h"
#include "smaug/v1/orchestrator.pb-c.h"

/* The metadata key (and the prefix of the per-object keys) of the rule. */
#define BANK_SAVED_KEY "manifest_sha256"

/* The prefix of the plain-file keys (`object_sha256.<name>`). */
#define BANK_SAVED_FILE_KEY "object_sha256"

/* bank_saved_check flag: also compare each manifest's and each plain
 * file's digest (reads them). Without it only their presence is checked. */
#define BANK_SAVED_DIGEST 1u

/* One missing (or replaced) object: the resource, its section, the object
 * (NULL when the metadata does not name it) and one line saying what is
 * wrong. Pointers are valid during the call only. */
typedef void (*bank_missing_cb)(void *data, const char *type, const char *id,
                                const char *section, const char *object,
                                const char *msg);

/* Checks every object the results of checkpoint `checkpoint_id` claim (the
 * rule above) in `bank`; a NULL bank stands for one that does not exist
 * (bank_open_ex with BANK_OPEN_EXISTING failed with UV_ENOENT), where every
 * claimed object is missing. Each problem goes to `cb` (may be NULL) and is
 * counted in *missing (may be NULL; written on 0 and UV_ENOENT). Results
 * with a NULL resource are skipped. Returns 0 when everything claimed is
 * present, UV_ENOENT when something is missing or replaced (err holds the
 * first problem), or an OS error reading the bank (err says which). */
int bank_saved_check(bank_t *bank, const char *checkpoint_id,
                     Smaug__V1__ResourceResult *const *results, size_t n,
                     unsigned flags, bank_missing_cb cb, void *data,
                     size_t *missing, bank_err_t *err);

#endif
