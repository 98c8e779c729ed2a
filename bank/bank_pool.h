/*
 * bank_pool.h - runs a bank call's per-chunk work on a few threads
 * (internal).
 *
 * Put, get and verify all do the same thing per chunk index: CPU-heavy
 * work (SHA-256, zstd) plus a little I/O, with no ordering between chunks.
 * bank_pool_run hands the indices out to the calling thread and up to
 * threads-1 short-lived pthreads, each with its own bank_worker_t, stops
 * everyone at the first failure or on cancellation, and reports progress
 * on the calling thread. A pool is one call's; nothing outlives it.
 */
#ifndef SMAUG_BANK_POOL_H
#define SMAUG_BANK_POOL_H

#include "bank.h"
#include "bank_chunk.h"

#include <stddef.h>
#include <stdint.h>

/* Does item `item` of `job` with the worker `w` (owned by the current
 * thread). Adds the bytes it covered to *bytes (for progress). Returns 0
 * or an error, with the reason in `why`. Called concurrently for distinct
 * items. */
typedef int (*bank_pool_fn)(void *job, bank_worker_t *w, size_t item,
                            uint64_t *bytes, char *why, size_t why_size);

/* Runs fn for items 0..nitems-1 on min(threads, nitems) threads, each with
 * a worker sized for `buf_size`-byte chunks. `total` is the byte total
 * reported to io->progress. Returns 0 when every item succeeded,
 * UV_ECANCELED if io->cancel was set, or else the error of the
 * lowest-numbered failed item: *failed is that item (SIZE_MAX if the
 * failure was not an item's, e.g. UV_ENOMEM) and `why` its reason. */
int bank_pool_run(size_t nitems, int threads, size_t buf_size, uint64_t total,
                  const bank_io_t *io, bank_pool_fn fn, void *job,
                  size_t *failed, char *why, size_t why_size);

#endif
