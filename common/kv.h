/*
 * kv.h - the one string map of smaug: metadata, resource extras and
 * parameters in the server, metadata and the in-memory indexes of the
 * plugin SDK (activities by idempotency key, resources, cancelled
 * operations).
 *
 * A kv_t is a dense array of (key, value) pairs, so callers iterate it as
 * `items[0..n)`. Up to KV_SMALL pairs it is only that array, scanned with
 * a stored hash in front of each strcmp: metadata maps are a handful of
 * entries and cost no more than a plain array. Past KV_SMALL an
 * open-addressing index (linear probing, load at most 1/2) is added, so an
 * index of 100k activities stays O(1) per lookup, insert and delete.
 *
 * Order: pairs iterate in insertion order, except that kv_del moves the
 * last pair into the freed place. Both are deterministic; no caller may
 * assume key order (protobuf maps have none either).
 *
 * Values: a map made with kv_init (or zero-filled) owns copies of string
 * values (kv_set, kv_get); one made with kv_init_borrowed holds borrowed
 * pointers (kv_put, kv_ptr) that it never frees. Keys are always copied.
 * Mixing the two on one map is a caller bug (asserted).
 *
 * A kv_t is a value type: embed it and release its contents with
 * kv_free(). Not thread-safe; a map belongs to the thread that owns the
 * structure embedding it. Errors: 0, UV_EINVAL (NULL map, key or value),
 * UV_ENOMEM (the map is then unchanged) or UV_ENOENT.
 *
 * Built into the static library smaug_common, linked into the server, the
 * CLI and libsmaug-plugin.so; the SDK's export map keeps it out of the
 * plugin ABI.
 */
#ifndef SMAUG_KV_H
#define SMAUG_KV_H

#include <stddef.h>
#include <stdint.h>

/* Pairs kept without a hash index. */
#define KV_SMALL 8

typedef struct kv_pair_s {
  char *key; /* owned */
  char *val; /* owned string, or a borrowed pointer (kv_init_borrowed) */
  uint64_t hash;
} kv_pair_t;

typedef struct kv_s {
  kv_pair_t *items; /* dense, `n` used of `cap` */
  size_t n;
  size_t cap;
  uint32_t *slots; /* NULL up to KV_SMALL pairs; else position + 1, 0 free */
  size_t n_slots;  /* power of two */
  int borrows;     /* values are borrowed pointers */
} kv_t;

/* Makes `kv` an empty map of owned strings. Equivalent to zero-filling. */
void kv_init(kv_t *kv);

/* Makes `kv` an empty map of borrowed pointers (kv_put, kv_ptr). */
void kv_init_borrowed(kv_t *kv);

/* Frees every key, every owned value, the array and the index; `kv` is an
 * empty map of the same kind afterwards and may be reused. Borrowed values
 * are left to their owner. NULL is a no-op. */
void kv_free(kv_t *kv);

/* Sets `key` to a copy of `val`, replacing (and freeing) an existing value.
 * UV_EINVAL for a NULL argument; on UV_ENOMEM the map is unchanged. An
 * owned-strings map only. */
int kv_set(kv_t *kv, const char *key, const char *val);

/* The value of `key`, or NULL. Owned by the map; valid until the key is set
 * or removed or the map is freed. NULL `kv` or `key` yields NULL. */
const char *kv_get(const kv_t *kv, const char *key);

/* Sets `key` to the borrowed pointer `val` (not NULL), replacing an
 * existing one. UV_EINVAL for a NULL argument; on UV_ENOMEM the map is
 * unchanged. A borrowed map only. */
int kv_put(kv_t *kv, const char *key, void *val);

/* The pointer stored under `key`, or NULL. NULL `kv` or `key` yields
 * NULL. A borrowed map only. */
void *kv_ptr(const kv_t *kv, const char *key);

/* Removes `key` (freeing an owned value); the last pair takes its place.
 * Returns 0, or UV_ENOENT when it was absent (or `kv`/`key` is NULL).
 * Pointers to pairs are invalidated; pointers to owned values of other
 * keys stay valid. */
int kv_del(kv_t *kv, const char *key);

/* Calls `fn` for every pair, last first. `fn` may kv_del the key it is
 * given, and no other; it must not add keys. NULL `kv` is a no-op. */
void kv_each(kv_t *kv, void (*fn)(const char *key, void *val, void *arg),
             void *arg);

/* Replaces the contents of `dst` with a copy of `src` of the same kind
 * (keys and owned values copied, borrowed pointers shared); NULL copies as
 * empty. On UV_ENOMEM `dst` is unchanged. */
int kv_copy(kv_t *dst, const kv_t *src);

/* 1 when both maps hold the same keys with equal values (strings compared
 * for owned maps, pointers for borrowed ones), in any order, else 0. NULL
 * equals empty. */
int kv_equal(const kv_t *a, const kv_t *b);

/* Number of pairs; NULL has 0. */
size_t kv_count(const kv_t *kv);

#endif /* SMAUG_KV_H */
