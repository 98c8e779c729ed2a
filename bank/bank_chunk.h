/*
 * bank_chunk.h - chunks of the bank (internal).
 *
 * A chunk is up to a manifest's chunk size of raw bytes, named by the
 * SHA-256 of those bytes and stored as one zstd frame (which records the
 * raw length) at chunks/<first two hex digits>/<64 hex digits>. This
 * module hashes, compresses, stores, loads and verifies chunks. A
 * bank_worker_t holds one thread's buffers and codec contexts, so that the
 * hot path allocates nothing; each worker is used by one thread at a time.
 */
#ifndef SMAUG_BANK_CHUNK_H
#define SMAUG_BANK_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#define BANK_HASH_LEN 32
#define BANK_HEX_LEN  64

typedef struct {
  void *cctx;      /* ZSTD_CCtx */
  void *dctx;      /* ZSTD_DCtx */
  void *md;        /* EVP_MD_CTX */
  uint8_t *raw;    /* chunk_size bytes */
  uint8_t *packed; /* ZSTD_compressBound(chunk_size) bytes */
  size_t chunk_size;
  size_t packed_size;
} bank_worker_t;

/* Allocates the buffers and contexts for chunks of up to `chunk_size`
 * bytes. On failure (UV_ENOMEM) nothing stays allocated. */
int bank_worker_init(bank_worker_t *w, size_t chunk_size);

/* Frees what bank_worker_init allocated; safe on a zeroed struct. */
void bank_worker_free(bank_worker_t *w);

/* SHA-256 of `len` bytes into `out`. */
int bank_chunk_hash(bank_worker_t *w, const void *buf, size_t len,
                    uint8_t out[BANK_HASH_LEN]);

/* One-shot SHA-256 of `len` bytes at `buf` (no worker needed, for small
 * documents such as manifests). Returns 0 or UV_EIO. */
int bank_sha256(const void *buf, size_t len, uint8_t out[BANK_HASH_LEN]);

/* True when all `len` bytes are zero (len 0 counts as zero). */
int bank_is_zero(const void *buf, size_t len);

/* Lowercase hex of a hash, NUL-terminated (out: BANK_HEX_LEN + 1 bytes). */
void bank_hex(const uint8_t hash[BANK_HASH_LEN], char *out);

/* Parses exactly 64 lowercase hex digits. Returns 0 or UV_EINVAL. */
int bank_unhex(const char *hex, uint8_t out[BANK_HASH_LEN]);

/* Relative path "chunks/aa/<hex>" of a chunk (out: at least 80 bytes). */
void bank_chunk_path(const uint8_t hash[BANK_HASH_LEN], char *out);

/* Stores `len` raw bytes (w->raw may be passed) whose hash is `hash`,
 * unless a chunk of that name already exists. The chunk file is written
 * under a temporary name and renamed into place, so a reader never sees a
 * partial chunk. *written is the number of bytes added to the bank (0 when
 * the chunk existed). On failure `why` (may be NULL) says what failed. */
int bank_chunk_store(int root_fd, bank_worker_t *w, int level,
                     const uint8_t hash[BANK_HASH_LEN], const void *raw,
                     size_t len, uint64_t *written, char *why, size_t why_size);

/* Loads the chunk `hash` into w->raw and checks that it decompresses to
 * exactly `len` bytes whose SHA-256 is `hash`. Returns 0, BANK_ECORRUPT
 * (missing, truncated, not zstd, wrong length or wrong hash: `why` says
 * which) or an OS error. */
int bank_chunk_load(int root_fd, bank_worker_t *w,
                    const uint8_t hash[BANK_HASH_LEN], size_t len, char *why,
                    size_t why_size);

#endif
