/*
 * sp_store.h - the sample plugins' door to the bank (bank/bank.h): store a
 * file or a small byte string in a resource's bank section, restore it
 * with every chunk verified, delete a section and collect the chunks no
 * checkpoint needs any more.
 *
 * It exists so that the plugins never include bank.h next to the SDK's
 * headers, and so that the bank's messages reach the activity's status
 * unchanged: a corrupt chunk fails with a message naming the object and
 * the chunk. Every call opens the bank at `uri` ("file:///abs/path"),
 * blocks on disk I/O and is meant for an SDK job's work function; calls
 * are thread-safe. Errors are 0 or a negative errno-style code that the
 * SDK maps to a gRPC status (ENOENT -> NOT_FOUND; a corrupt chunk, EILSEQ,
 * -> INTERNAL); `msg` (may be NULL) receives one line on failure.
 */
#ifndef SP_STORE_H
#define SP_STORE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Per-call hooks; every field may be NULL. Callbacks run on the calling
 * thread. */
typedef struct {
  /* `done` of `total` bytes so far. */
  void (*progress)(void *data, uint64_t done, uint64_t total);
  void *data;
  /* Set to nonzero from any thread to stop the call with -ECANCELED. */
  const atomic_int *cancel;
} sp_io_t;

/* What a put stored. */
typedef struct {
  uint64_t size;            /* logical size of the object */
  uint64_t chunks;          /* chunks its manifest references */
  uint64_t new_chunks;      /* chunks this put added to the bank */
  uint64_t new_bytes;       /* bytes this put added (chunks and manifest) */
  uint64_t zero_bytes;      /* bytes in holes and zero chunks, not stored */
  char manifest_sha256[65]; /* digest of the object's manifest file */
} sp_put_info_t;

/* Stores the file at `path` as `object` of `section`. `io` may be NULL.
 * `*info` is written on success only. */
int sp_store_put_file(const char *uri, const char *section, const char *object,
                      const char *path, const sp_io_t *io, sp_put_info_t *info,
                      char *msg, size_t msglen);

/* Stores `len` bytes as `object` of `section`. */
int sp_store_put_bytes(const char *uri, const char *section, const char *object,
                       const void *buf, size_t len, sp_put_info_t *info,
                       char *msg, size_t msglen);

/* Restores `object` of `section` to `dest` (a temporary file in the same
 * folder, renamed over `dest` once every chunk verified). When
 * `want_manifest` is a non-empty digest, the object's manifest must still
 * have it (else -EILSEQ: the checkpoint's data was replaced). `*size`
 * (may be NULL) receives the restored size. */
int sp_store_get_file(const char *uri, const char *section, const char *object,
                      const char *dest, const char *want_manifest,
                      const sp_io_t *io, uint64_t *size, char *msg,
                      size_t msglen);

/* Reads `object` of `section` (at most `max` bytes) into a new
 * NUL-terminated buffer released with free(). Verified like get_file. */
int sp_store_get_bytes(const char *uri, const char *section, const char *object,
                       size_t max, char **out, size_t *len, char *msg,
                       size_t msglen);

/* Removes the manifests of `section`, then (when `gc`) every chunk no
 * manifest references any more. `*freed` (may be NULL) receives the chunk
 * bytes freed. Deleting a missing section succeeds. */
int sp_store_delete(const char *uri, const char *section, int gc,
                    uint64_t *freed, char *msg, size_t msglen);

#endif
