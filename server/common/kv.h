/*
 * kv.h - a small string map for metadata, resource extras and parameters.
 *
 * A kv_t is a sorted array of owned (key, value) string pairs. Maps in
 * smaug are small (a handful of entries), so binary search over one array
 * beats a hash table in both memory and speed, and iteration comes out in
 * key order, which keeps exports and comparisons deterministic.
 *
 * A kv_t is a value type: embed it, kv_init() it (or zero it), and release
 * its contents with kv_free(). Not thread-safe; each map belongs to the
 * thread that owns the structure embedding it. Errors: 0 or UV_ENOMEM.
 */
#ifndef SMAUG_KV_H
#define SMAUG_KV_H

#include <stddef.h>

typedef struct kv_pair_s {
  char *key;
  char *val;
} kv_pair_t;

typedef struct kv_s {
  kv_pair_t *items; /* sorted by key (strcmp), owned */
  size_t n;
  size_t cap;
} kv_t;

/* Makes `kv` empty. Equivalent to zero-filling it. */
void kv_init(kv_t *kv);

/* Frees every key and value and the array; `kv` is empty afterwards and may
 * be reused. NULL is a no-op. */
void kv_free(kv_t *kv);

/* Sets `key` to `val` (both copied), replacing an existing value. On
 * UV_ENOMEM the map is unchanged. */
int kv_set(kv_t *kv, const char *key, const char *val);

/* The value of `key`, or NULL. Owned by the map; valid until the key is set
 * or removed or the map is freed. NULL `kv` yields NULL. */
const char *kv_get(const kv_t *kv, const char *key);

/* Removes `key`; returns 0, or UV_ENOENT when it was absent. */
int kv_del(kv_t *kv, const char *key);

/* Replaces the contents of `dst` with a deep copy of `src` (NULL copies as
 * empty). On UV_ENOMEM `dst` is unchanged. */
int kv_copy(kv_t *dst, const kv_t *src);

/* 1 when both maps hold the same pairs, else 0. NULL equals empty. */
int kv_equal(const kv_t *a, const kv_t *b);

/* Number of pairs; NULL has 0. */
size_t kv_count(const kv_t *kv);

#endif /* SMAUG_KV_H */
