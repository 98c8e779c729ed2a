/*
 * bank_manifest.h - manifests of the bank (internal).
 *
 * A manifest describes one stored object: its logical size, the chunk size
 * it was cut with, and the list of its non-zero chunks in offset order
 * (regions not listed are zero or holes). It is a JSON document (jansson)
 * that carries the SHA-256 of its own canonical form, so a damaged
 * manifest is detected rather than trusted; docs/bank.md gives the format.
 */
#ifndef SMAUG_BANK_MANIFEST_H
#define SMAUG_BANK_MANIFEST_H

#include "bank_chunk.h"

#include <stddef.h>
#include <stdint.h>

/* The file name suffix of manifests: <object>.manifest.json. */
#define BANK_MANIFEST_SUFFIX ".manifest.json"

/* Largest manifest file accepted (about 4 TiB of 1 MiB chunks). */
#define BANK_MANIFEST_MAX ((size_t)1 << 30)

typedef struct {
  uint64_t offset;
  uint32_t length;
  uint8_t hash[BANK_HASH_LEN];
} bank_mchunk_t;

typedef struct {
  uint64_t size;
  uint32_t chunk_size;
  size_t n;              /* entries in chunks */
  bank_mchunk_t *chunks; /* owned; sorted by offset, non-overlapping */
} bank_manifest_t;

/* Frees m->chunks; safe on a zeroed manifest. */
void bank_manifest_free(bank_manifest_t *m);

/* Serialises `m` for `object` into a new NUL-terminated string owned by
 * the caller (free()). Returns 0 or UV_ENOMEM. */
int bank_manifest_encode(const bank_manifest_t *m, const char *object,
                         char **out, size_t *len);

/* Parses and checks a manifest document: its checksum, and that its chunks
 * are sorted, inside the object and no longer than the chunk size. On
 * success *m owns a new chunk list. Returns 0 or BANK_ECORRUPT with the
 * reason in `why`. */
int bank_manifest_decode(const char *buf, size_t len, bank_manifest_t *m,
                         char *why, size_t why_size);

#endif
