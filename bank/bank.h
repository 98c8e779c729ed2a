/*
 * bank.h - the bank: a content-addressed, deduplicating chunk store.
 *
 * Plugins keep backup data here. A file (a volume, an image) or a small
 * byte string (a descriptor) is cut into fixed-size chunks; each chunk is
 * named by its SHA-256 and stored once, zstd-compressed, under
 * <root>/chunks/<aa>/<sha256hex>. Each stored object gets a manifest,
 * <root>/manifests/<section>/<object>.manifest.json, listing its non-zero
 * chunks. Holes and all-zero chunks are never stored, and a chunk that is
 * already in the bank is not written again, so protecting unchanged data a
 * second time costs only a new manifest. docs/bank.md describes the on-disk
 * format for readers in other languages.
 *
 * Every call is blocking and meant for a worker thread (for example a job on
 * the libuv thread pool); put, get and verify spread the hashing and the
 * compression over a few threads of their own (bank_set_threads). Calls on
 * one bank_t are thread-safe as long as they name distinct objects; several
 * processes may share one bank directory.
 *
 * Errors: 0 or a negative libuv error code (UV_E*). OS errors pass through
 * as UV_E* (-errno). Damaged data (a chunk whose hash does not match, a
 * missing chunk, a manifest that fails its own checksum) is BANK_ECORRUPT.
 * Calls that take a bank_err_t fill it on failure with a message naming
 * the object and, where there is one, the chunk.
 */
#ifndef SMAUG_BANK_STORE_H
#define SMAUG_BANK_STORE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Stored data does not match its hash, or a referenced chunk or manifest is
 * missing or malformed. */
#define BANK_ECORRUPT UV_EILSEQ

/* Size of the chunks new objects are cut into (manifests record their own
 * chunk size, so readers must not assume this value). */
#define BANK_CHUNK_SIZE (1u << 20)

/* Longest accepted section, and longest accepted object name. */
#define BANK_SECTION_MAX 1024
#define BANK_NAME_MAX    128

typedef struct bank_s bank_t;

/* Filled by a failing call: the same code it returned, and one line that
 * says what failed, e.g.
 *   "object checkpoints/c1/smaug.volume/v1/data: chunk 9f86...0a08 at offset
 *    1048576: hash mismatch (stored data is corrupt)". */
typedef struct {
  int code;
  char msg[256];
} bank_err_t;

/* Progress of a put, get or verify: `done` of `total` bytes. */
typedef void (*bank_progress_cb)(void *data, uint64_t done, uint64_t total);

/* Called once when a call finds the bank lock held and is about to wait
 * for it (a put waiting for a running GC, or a GC waiting for running
 * puts). */
typedef void (*bank_wait_cb)(void *data);

/* Optional per-call hooks. Every field may be NULL. The callbacks run on
 * the calling thread, never concurrently with each other. */
typedef struct {
  bank_progress_cb progress;
  bank_wait_cb lock_wait;
  void *data; /* handed back to the callbacks */
  /* Set to nonzero (from any thread) to abort the call: it stops after the
   * chunks in flight and returns UV_ECANCELED, leaving no manifest and no
   * restored file behind. Chunks already written stay until the next GC. */
  const atomic_int *cancel;
} bank_io_t;

typedef struct {
  uint64_t size;       /* logical size of the object */
  uint64_t data_bytes; /* bytes read from outside holes */
  uint64_t zero_bytes; /* bytes in holes and all-zero chunks: not stored */
  uint64_t chunks;     /* chunks the manifest references */
  uint64_t new_chunks; /* chunks this call added to the bank */
  uint64_t new_bytes;  /* bytes this call added (new chunks + manifest) */
} bank_put_stats_t;

typedef struct {
  uint64_t size;          /* logical size of the restored object */
  uint64_t chunks;        /* chunks read and verified */
  uint64_t written_bytes; /* bytes written (zero blocks are left as holes) */
} bank_get_stats_t;

typedef struct {
  uint64_t objects;     /* manifests checked */
  uint64_t chunks;      /* chunk references checked */
  uint64_t bytes;       /* logical bytes covered by the checked chunks */
  uint64_t bad_objects; /* objects with at least one problem */
  uint64_t bad_chunks;  /* chunk references that failed */
} bank_verify_report_t;

/* One problem found by bank_verify: `msg` names the object and the chunk. */
typedef void (*bank_problem_cb)(void *data, const char *section,
                                const char *object, const char *msg);

typedef struct {
  uint64_t manifests;     /* manifests read (the live set) */
  uint64_t chunks_kept;   /* chunks some manifest references */
  uint64_t chunks_freed;  /* unreferenced chunks removed */
  uint64_t bytes_freed;   /* their size on disk (file sizes) */
  uint64_t temps_removed; /* leftovers of interrupted writes removed */
} bank_gc_stats_t;

typedef struct {
  uint64_t chunks;         /* chunk files */
  uint64_t chunk_bytes;    /* their total size */
  uint64_t manifests;      /* manifest files */
  uint64_t manifest_bytes; /* their total size */
} bank_stats_t;

/* Opens (creating it if needed) the bank at `uri`: "file:///abs/path" or an
 * absolute path. Creates the chunk and manifest directories and the lock
 * file. The bank is private to its owner: directories 0700, files 0600,
 * and a root this user owns that is open to others is narrowed to 0700.
 * On success *out owns the bank; release it with bank_close.
 * Errors: UV_EINVAL (bad URI or unsupported scheme), OS errors. Any
 * thread. */
int bank_open(const char *uri, bank_t **out, bank_err_t *err);

/* bank_open_ex flag: open an existing bank only, creating nothing (for
 * readers such as verify, and for read-only mounts). A directory without
 * the bank layout fails with UV_ENOENT. Puts and GC on a bank opened this
 * way need the layout to be complete (a bank_open creates it). */
#define BANK_OPEN_EXISTING 1u

/* bank_open with flags (0 or BANK_OPEN_EXISTING). */
int bank_open_ex(const char *uri, unsigned flags, bank_t **out,
                 bank_err_t *err);

/* Releases a bank. NULL is a no-op. No call may be running on it. */
void bank_close(bank_t *bank);

/* Worker threads per put, get or verify (1..16; default 2). Call right
 * after bank_open, before other calls. Returns 0 or UV_EINVAL. */
int bank_set_threads(bank_t *bank, int threads);

/* Durability (default on): fsync chunks (one syncfs per put), manifests,
 * restored files and their directories. Off is for tests and benchmarks
 * that measure the data path alone. */
void bank_set_sync(bank_t *bank, int on);

/* zstd level for new chunks (default 1; negative levels are faster).
 * Returns 0 or UV_EINVAL if zstd rejects the level. */
int bank_set_level(bank_t *bank, int level);

/* Checks a section: '/'-separated components, each matching
 * [A-Za-z0-9][A-Za-z0-9._-]{0,127}, at most BANK_SECTION_MAX bytes. This
 * rules out "..", absolute paths, empty components and odd characters.
 * Returns 0 or UV_EINVAL. */
int bank_check_section(const char *section);

/* Checks an object name: one component as above. Returns 0 or UV_EINVAL. */
int bank_check_object(const char *object);

/* Stores the regular file (or block device) at `path` as `object` in
 * `section`, replacing an object of that name atomically once every chunk
 * is stored. Holes (found with SEEK_DATA/SEEK_HOLE) are not read; all-zero
 * chunks and chunks already in the bank are not written. Holds the bank
 * lock shared for its whole duration, so a GC never runs during a put.
 * `io` and `stats` may be NULL; *stats is written on success only.
 * Errors: UV_EINVAL (names), UV_ECANCELED, UV_EIO (the file shrank while
 * being read), OS errors. */
int bank_put_file(bank_t *bank, const char *section, const char *object,
                  const char *path, const bank_io_t *io,
                  bank_put_stats_t *stats, bank_err_t *err);

/* Restores `object` of `section` to `dest_path`: written to a temporary
 * file in the same directory, sparse (zero blocks are left as holes), then
 * renamed over dest_path. Every chunk is verified against its SHA-256
 * first; on any mismatch nothing is renamed and BANK_ECORRUPT is returned
 * with the object and chunk in err. Errors: UV_ENOENT (no such object),
 * BANK_ECORRUPT, UV_ECANCELED, OS errors. */
int bank_get_file(bank_t *bank, const char *section, const char *object,
                  const char *dest_path, const bank_io_t *io,
                  bank_get_stats_t *stats, bank_err_t *err);

/* Stores `len` bytes at `buf` as `object` in `section` (for descriptors and
 * other small data; large data should use bank_put_file). Same semantics
 * and errors as bank_put_file. `buf` may be NULL when len is 0. */
int bank_put_bytes(bank_t *bank, const char *section, const char *object,
                   const void *buf, size_t len, bank_put_stats_t *stats,
                   bank_err_t *err);

/* Reads `object` of `section` into a new buffer, verified like
 * bank_get_file. On success *out (NUL-terminated for convenience, so it is
 * len+1 bytes) is owned by the caller, freed with free(). Objects larger
 * than `max` bytes fail with UV_E2BIG. Errors: as bank_get_file. */
int bank_get_bytes(bank_t *bank, const char *section, const char *object,
                   size_t max, void **out, size_t *len, bank_err_t *err);

/* Calls `cb` with the name of every object stored directly in `section`
 * (not in sub-sections), in name order. A missing section lists nothing.
 * Returns 0, UV_EINVAL, an OS error, or the first nonzero value cb
 * returns (which stops the listing). */
int bank_list(bank_t *bank, const char *section,
              int (*cb)(void *data, const char *object), void *data,
              bank_err_t *err);

/* The lowercase hex SHA-256 of the manifest file of `object` in `section`
 * (the whole file, as stored): the digest a plugin records in a
 * checkpoint's metadata as `manifest_sha256` (see docs/bank.md, "What a
 * checkpoint must hold"). Reads the manifest only, never chunk data.
 * Errors: UV_EINVAL (names), UV_ENOENT (no such object), OS errors. */
int bank_manifest_digest(bank_t *bank, const char *section, const char *object,
                         char hex[65], bank_err_t *err);

/* Checks that an object a checkpoint recorded is present, without reading
 * chunk data. With `object`, that object of `section` must have a
 * manifest; with `object` NULL, the section must hold at least one
 * manifest directly (not in sub-sections). When `manifest_sha256` is not
 * NULL the manifest must also have that digest (bank_manifest_digest; with
 * `object` NULL, one of the section's manifests must), which reads the
 * manifests; otherwise the check is a stat or a directory listing. Returns
 * 0 when present, UV_ENOENT when missing and BANK_ECORRUPT when present
 * with another digest (err names the section, the object and the digest
 * in both cases), UV_EINVAL (names), or an OS error. */
int bank_find_manifest(bank_t *bank, const char *section, const char *object,
                       const char *manifest_sha256, bank_err_t *err);

/* Checks a plain file that a plugin keeps in a section outside the chunk
 * store (docs/bank.md, "What a checkpoint must hold", `object_sha256`):
 * <root>/<section>/<object> must be a regular file (not a symbolic link).
 * When `file_sha256` is not NULL its contents must also have that SHA-256
 * (lowercase hex), which reads the whole file; otherwise the check is an
 * open and a stat. Returns 0 when present, UV_ENOENT when missing and
 * BANK_ECORRUPT when present with another digest (err names the file and
 * both digests), UV_EINVAL (names: the same rules as for manifests), or an
 * OS error. */
int bank_find_file(bank_t *bank, const char *section, const char *object,
                   const char *file_sha256, bank_err_t *err);

/* Verifies every object under `section_prefix` ("" for the whole bank),
 * without restoring: each manifest's own checksum, then every chunk read,
 * decompressed and hashed. It does not stop at the first problem: each one
 * goes to `on_problem` (may be NULL) on the calling thread, and is counted
 * in *report. Returns 0 when everything verified, BANK_ECORRUPT when any
 * problem was found (err then holds the first one), or UV_EINVAL,
 * UV_ECANCELED or an OS error; *report is written on 0 and BANK_ECORRUPT. */
int bank_verify(bank_t *bank, const char *section_prefix, const bank_io_t *io,
                bank_problem_cb on_problem, void *problem_data,
                bank_verify_report_t *report, bank_err_t *err);

/* Removes every manifest in `section` and its sub-sections, then its empty
 * parent directories. Chunks stay until bank_gc. A missing section is not
 * an error (deletes are retried). Errors: UV_EINVAL, OS errors. */
int bank_delete_section(bank_t *bank, const char *section, bank_err_t *err);

/* Removes every chunk that no manifest references, and the leftovers of
 * interrupted writes. Holds the bank lock exclusive, so it waits for
 * running puts (in any process) and puts wait for it; `io->lock_wait` is
 * called if it has to wait. A manifest that cannot be read stops the GC
 * with BANK_ECORRUPT before anything is removed. `io` and `stats` may be
 * NULL. Errors: BANK_ECORRUPT, UV_ECANCELED, OS errors. */
int bank_gc(bank_t *bank, const bank_io_t *io, bank_gc_stats_t *stats,
            bank_err_t *err);

/* Counts the chunk and manifest files and their sizes. */
int bank_stats(bank_t *bank, bank_stats_t *stats, bank_err_t *err);

#endif
