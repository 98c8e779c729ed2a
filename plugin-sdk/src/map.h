/*
 * map.h - a small string-keyed hash table for the SDK's in-memory indexes
 * (activities by idempotency key, resources by operation/type/id).
 *
 * Keys are copied; values are borrowed. Not thread-safe: the loop thread
 * owns every map.
 */
#ifndef SMAUG_SDK_MAP_H
#define SMAUG_SDK_MAP_H

#include <stddef.h>

typedef struct map_node_s map_node_t;

typedef struct map_s {
  map_node_t **buckets;
  size_t n_buckets;
  size_t count;
} map_t;

/* Initializes an empty map. No allocation until the first put. */
void map_init(map_t *m);

/* Frees the nodes and keys, not the values. */
void map_close(map_t *m);

/* The value of `key`, or NULL. */
void *map_get(const map_t *m, const char *key);

/* Sets `key` to `val` (non-NULL), replacing any old value. Returns 0 or
 * -ENOMEM (the map is then unchanged). */
int map_put(map_t *m, const char *key, void *val);

/* Removes `key`; returns its value or NULL. */
void *map_del(map_t *m, const char *key);

/* Calls `fn` for every entry. `fn` may delete the entry it is given (and
 * only that one). */
void map_each(map_t *m, void (*fn)(const char *key, void *val, void *arg),
              void *arg);

#endif
