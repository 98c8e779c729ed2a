/*
 * bank_chunk.c - hashing (OpenSSL EVP SHA-256), compression (zstd) and
 * storage of single chunks. Chunk files are immutable once renamed into
 * place; a chunk's name is its content's hash, so rewriting one that a
 * concurrent writer just stored is harmless.
 */
#define _GNU_SOURCE
#include "bank_chunk.h"

#include "bank.h"
#include "bank_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

int bank_worker_init(bank_worker_t *w, size_t chunk_size) {
  memset(w, 0, sizeof(*w));
  w->chunk_size = chunk_size;
  w->packed_size = ZSTD_compressBound(chunk_size);
  w->cctx = ZSTD_createCCtx();
  w->dctx = ZSTD_createDCtx();
  w->md = EVP_MD_CTX_new();
  w->raw = malloc(chunk_size);
  w->packed = malloc(w->packed_size);
  if (w->cctx == NULL || w->dctx == NULL || w->md == NULL || w->raw == NULL ||
      w->packed == NULL) {
    bank_worker_free(w);
    return UV_ENOMEM;
  }
  return 0;
}

void bank_worker_free(bank_worker_t *w) {
  ZSTD_freeCCtx(w->cctx);
  ZSTD_freeDCtx(w->dctx);
  EVP_MD_CTX_free(w->md);
  free(w->raw);
  free(w->packed);
  memset(w, 0, sizeof(*w));
}

int bank_chunk_hash(bank_worker_t *w, const void *buf, size_t len,
                    uint8_t out[BANK_HASH_LEN]) {
  unsigned int n = 0;
  if (EVP_DigestInit_ex(w->md, EVP_sha256(), NULL) != 1 ||
      EVP_DigestUpdate(w->md, buf, len) != 1 ||
      EVP_DigestFinal_ex(w->md, out, &n) != 1 || n != BANK_HASH_LEN)
    return UV_EIO;
  return 0;
}

int bank_sha256(const void *buf, size_t len, uint8_t out[BANK_HASH_LEN]) {
  unsigned int n = 0;
  if (EVP_Digest(buf, len, out, &n, EVP_sha256(), NULL) != 1 ||
      n != BANK_HASH_LEN)
    return UV_EIO;
  return 0;
}

int bank_is_zero(const void *buf, size_t len) {
  const uint8_t *p = buf;
  size_t head = len < 16 ? len : 16;
  for (size_t i = 0; i < head; i++)
    if (p[i] != 0)
      return 0;
  /* The first 16 bytes are zero, so p == p+16 over the rest means every
   * byte is zero; memcmp is vectorised, a byte loop is not. */
  return len <= 16 || memcmp(p, p + 16, len - 16) == 0;
}

void bank_hex(const uint8_t hash[BANK_HASH_LEN], char *out) {
  static const char digits[] = "0123456789abcdef";
  for (int i = 0; i < BANK_HASH_LEN; i++) {
    out[2 * i] = digits[hash[i] >> 4];
    out[2 * i + 1] = digits[hash[i] & 15];
  }
  out[BANK_HEX_LEN] = '\0';
}

static int hex_digit(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

int bank_unhex(const char *hex, uint8_t out[BANK_HASH_LEN]) {
  if (strlen(hex) != BANK_HEX_LEN)
    return UV_EINVAL;
  for (int i = 0; i < BANK_HASH_LEN; i++) {
    int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return UV_EINVAL;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return 0;
}

void bank_chunk_path(const uint8_t hash[BANK_HASH_LEN], char *out) {
  char hex[BANK_HEX_LEN + 1];
  bank_hex(hash, hex);
  snprintf(out, 80, "chunks/%.2s/%s", hex, hex);
}

static void say(char *why, size_t why_size, const char *fmt, const char *a) {
  if (why != NULL && why_size > 0)
    snprintf(why, why_size, fmt, a);
}

int bank_chunk_store(int root_fd, bank_worker_t *w, int level,
                     const uint8_t hash[BANK_HASH_LEN], const void *raw,
                     size_t len, uint64_t *written, char *why,
                     size_t why_size) {
  char path[80];
  bank_chunk_path(hash, path);
  *written = 0;
  /* An empty chunk file is what a power loss before writeback can leave
   * behind (a put that died before its syncfs); it is rewritten, not
   * trusted. A valid frame is never empty. */
  struct stat st;
  if (fstatat(root_fd, path, &st, 0) == 0) {
    if (st.st_size > 0)
      return 0;
  } else if (errno != ENOENT) {
    int rc = -errno;
    say(why, why_size, "cannot check for the chunk: %s", uv_strerror(rc));
    return rc;
  }
  size_t n =
      ZSTD_compressCCtx(w->cctx, w->packed, w->packed_size, raw, len, level);
  if (ZSTD_isError(n)) {
    say(why, why_size, "zstd: %s", ZSTD_getErrorName(n));
    return UV_EIO;
  }
  int rc = bank_fs_write_atomic(root_fd, path, w->packed, n, 0);
  if (rc != 0) {
    say(why, why_size, "cannot write the chunk: %s", uv_strerror(rc));
    return rc;
  }
  *written = n;
  return 0;
}

int bank_chunk_load(int root_fd, bank_worker_t *w,
                    const uint8_t hash[BANK_HASH_LEN], size_t len, char *why,
                    size_t why_size) {
  char path[80];
  bank_chunk_path(hash, path);
  if (len > w->chunk_size) {
    say(why, why_size, "length larger than the chunk size%s", "");
    return BANK_ECORRUPT;
  }
  int fd = openat(root_fd, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int rc = -errno;
    if (rc == UV_ENOENT) {
      say(why, why_size, "missing from the bank%s", "");
      return BANK_ECORRUPT;
    }
    say(why, why_size, "cannot open: %s", uv_strerror(rc));
    return rc;
  }
  /* Read one byte more than any valid frame can be, to catch trailing
   * garbage without a separate fstat. */
  size_t got = 0;
  int rc = bank_fs_pread_all(fd, w->packed, w->packed_size, 0, &got);
  if (rc == 0 && got == w->packed_size) {
    char extra;
    size_t more = 0;
    rc = bank_fs_pread_all(fd, &extra, 1, got, &more);
    if (rc == 0 && more != 0) {
      close(fd);
      say(why, why_size, "file too large (stored data is corrupt)%s", "");
      return BANK_ECORRUPT;
    }
  }
  close(fd);
  if (rc != 0) {
    say(why, why_size, "cannot read: %s", uv_strerror(rc));
    return rc;
  }
  unsigned long long size = ZSTD_getFrameContentSize(w->packed, got);
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN) {
    say(why, why_size, "not a zstd frame (stored data is corrupt)%s", "");
    return BANK_ECORRUPT;
  }
  if (size != len) {
    say(why, why_size, "wrong raw length (stored data is corrupt)%s", "");
    return BANK_ECORRUPT;
  }
  size_t n =
      ZSTD_decompressDCtx(w->dctx, w->raw, w->chunk_size, w->packed, got);
  if (ZSTD_isError(n) || n != len) {
    say(why, why_size, "cannot decompress (stored data is corrupt): %s",
        ZSTD_isError(n) ? ZSTD_getErrorName(n) : "length mismatch");
    return BANK_ECORRUPT;
  }
  uint8_t actual[BANK_HASH_LEN];
  rc = bank_chunk_hash(w, w->raw, len, actual);
  if (rc != 0) {
    say(why, why_size, "cannot hash%s", "");
    return rc;
  }
  if (memcmp(actual, hash, BANK_HASH_LEN) != 0) {
    say(why, why_size, "hash mismatch (stored data is corrupt)%s", "");
    return BANK_ECORRUPT;
  }
  return 0;
}
