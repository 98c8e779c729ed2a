/*
 * kv.c - the string map (see kv.h): a dense pair array, plus a linear
 * probing index of positions once it holds more than KV_SMALL pairs.
 * Deleting moves the last pair into the hole and removes the index slot
 * by backward shifting, so there are never tombstones.
 */
#include "kv.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* FNV-1a, 64 bits. */
static uint64_t kv__hash(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s != '\0'; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ull;
  }
  return h;
}

void kv_init(kv_t *kv) {
  memset(kv, 0, sizeof(*kv));
}

void kv_init_borrowed(kv_t *kv) {
  kv_init(kv);
  kv->borrows = 1;
}

void kv_free(kv_t *kv) {
  if (kv == NULL)
    return;
  for (size_t i = 0; i < kv->n; i++) {
    free(kv->items[i].key);
    if (!kv->borrows)
      free(kv->items[i].val);
  }
  free(kv->items);
  free(kv->slots);
  int borrows = kv->borrows;
  kv_init(kv);
  kv->borrows = borrows;
}

/* The slot holding position `pos` (hash `h`); the index must exist. */
static size_t kv__slot_of(const kv_t *kv, uint64_t h, size_t pos) {
  size_t mask = kv->n_slots - 1;
  size_t s = (size_t)h & mask;
  while (kv->slots[s] != pos + 1)
    s = (s + 1) & mask;
  return s;
}

/* Position of `key` (hash `h`), or -1. */
static long kv__find(const kv_t *kv, const char *key, uint64_t h) {
  if (kv->slots == NULL) {
    for (size_t i = 0; i < kv->n; i++)
      if (kv->items[i].hash == h && strcmp(kv->items[i].key, key) == 0)
        return (long)i;
    return -1;
  }
  size_t mask = kv->n_slots - 1;
  for (size_t s = (size_t)h & mask; kv->slots[s] != 0; s = (s + 1) & mask) {
    const kv_pair_t *p = &kv->items[kv->slots[s] - 1];
    if (p->hash == h && strcmp(p->key, key) == 0)
      return (long)(kv->slots[s] - 1);
  }
  return -1;
}

static void kv__index_add(uint32_t *slots, size_t n_slots, uint64_t h,
                          size_t pos) {
  size_t mask = n_slots - 1;
  size_t s = (size_t)h & mask;
  while (slots[s] != 0)
    s = (s + 1) & mask;
  slots[s] = (uint32_t)(pos + 1);
}

/* Makes room for one more pair: the array and, past KV_SMALL, an index
 * with load at most 1/2. On UV_ENOMEM nothing observable changed. */
static int kv__reserve(kv_t *kv) {
  if (kv->n >= UINT32_MAX - 1)
    return UV_ENOMEM;
  if (kv->n == kv->cap) {
    size_t cap = kv->cap ? kv->cap * 2 : 4;
    kv_pair_t *items = realloc(kv->items, cap * sizeof(*items));
    if (items == NULL)
      return UV_ENOMEM;
    kv->items = items;
    kv->cap = cap;
  }
  size_t want = kv->n + 1;
  if (want <= KV_SMALL || want * 2 <= kv->n_slots)
    return 0;
  size_t n_slots = kv->n_slots ? kv->n_slots * 2 : 4 * KV_SMALL;
  while (want * 2 > n_slots)
    n_slots *= 2;
  uint32_t *slots = calloc(n_slots, sizeof(*slots));
  if (slots == NULL)
    return UV_ENOMEM;
  for (size_t i = 0; i < kv->n; i++)
    kv__index_add(slots, n_slots, kv->items[i].hash, i);
  free(kv->slots);
  kv->slots = slots;
  kv->n_slots = n_slots;
  return 0;
}

/* Adds a pair that is known to be absent, taking ownership of `key` and
 * `val`. kv__reserve must have succeeded. */
static void kv__append(kv_t *kv, char *key, char *val, uint64_t h) {
  kv->items[kv->n] = (kv_pair_t){key, val, h};
  if (kv->slots != NULL)
    kv__index_add(kv->slots, kv->n_slots, h, kv->n);
  kv->n++;
}

/* Sets `key` to `val` (already copied when the map owns values). */
static int kv__store(kv_t *kv, const char *key, char *val) {
  uint64_t h = kv__hash(key);
  long at = kv__find(kv, key, h);
  if (at >= 0) {
    if (!kv->borrows)
      free(kv->items[at].val);
    kv->items[at].val = val;
    return 0;
  }
  char *k = strdup(key);
  if (k == NULL || kv__reserve(kv) != 0) {
    free(k);
    return UV_ENOMEM;
  }
  kv__append(kv, k, val, h);
  return 0;
}

int kv_set(kv_t *kv, const char *key, const char *val) {
  if (kv == NULL || key == NULL || val == NULL)
    return UV_EINVAL;
  assert(!kv->borrows && "kv_set on a borrowed map");
  char *v = strdup(val);
  if (v == NULL)
    return UV_ENOMEM;
  int err = kv__store(kv, key, v);
  if (err != 0)
    free(v);
  return err;
}

int kv_put(kv_t *kv, const char *key, void *val) {
  if (kv == NULL || key == NULL || val == NULL)
    return UV_EINVAL;
  assert(kv->borrows && "kv_put on a map of owned strings");
  return kv__store(kv, key, val);
}

const char *kv_get(const kv_t *kv, const char *key) {
  if (kv == NULL || key == NULL || kv->n == 0)
    return NULL;
  assert(!kv->borrows && "kv_get on a borrowed map");
  long at = kv__find(kv, key, kv__hash(key));
  return at >= 0 ? kv->items[at].val : NULL;
}

void *kv_ptr(const kv_t *kv, const char *key) {
  if (kv == NULL || key == NULL || kv->n == 0)
    return NULL;
  assert(kv->borrows && "kv_ptr on a map of owned strings");
  long at = kv__find(kv, key, kv__hash(key));
  return at >= 0 ? kv->items[at].val : NULL;
}

/* Empties slot `s` and shifts the rest of its probe run back. */
static void kv__index_del(kv_t *kv, size_t s) {
  size_t mask = kv->n_slots - 1;
  size_t hole = s;
  for (size_t j = (s + 1) & mask; kv->slots[j] != 0; j = (j + 1) & mask) {
    size_t home = (size_t)kv->items[kv->slots[j] - 1].hash & mask;
    /* The entry at j may fill the hole unless its home lies cyclically
     * in (hole, j]. */
    int stays =
        hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (!stays) {
      kv->slots[hole] = kv->slots[j];
      hole = j;
    }
  }
  kv->slots[hole] = 0;
}

int kv_del(kv_t *kv, const char *key) {
  if (kv == NULL || key == NULL)
    return UV_ENOENT;
  uint64_t h = kv__hash(key);
  long found = kv__find(kv, key, h);
  if (found < 0)
    return UV_ENOENT;
  size_t at = (size_t)found, last = kv->n - 1;
  kv_pair_t gone = kv->items[at];
  if (kv->slots != NULL) {
    kv__index_del(kv, kv__slot_of(kv, h, at));
    if (at != last)
      kv->slots[kv__slot_of(kv, kv->items[last].hash, last)] =
          (uint32_t)(at + 1);
  }
  kv->items[at] = kv->items[last];
  kv->n--;
  free(gone.key);
  if (!kv->borrows)
    free(gone.val);
  return 0;
}

void kv_each(kv_t *kv, void (*fn)(const char *key, void *val, void *arg),
             void *arg) {
  if (kv == NULL)
    return;
  /* Last first: deleting pair i moves an already visited pair into i. */
  for (size_t i = kv->n; i-- > 0;)
    fn(kv->items[i].key, kv->items[i].val, arg);
}

int kv_copy(kv_t *dst, const kv_t *src) {
  kv_t tmp;
  kv_init(&tmp);
  tmp.borrows = src != NULL ? src->borrows : dst->borrows;
  for (size_t i = 0; i < kv_count(src); i++) {
    const kv_pair_t *p = &src->items[i];
    char *k = strdup(p->key);
    char *v = tmp.borrows ? p->val : strdup(p->val);
    if (k == NULL || v == NULL || kv__reserve(&tmp) != 0) {
      free(k);
      if (!tmp.borrows)
        free(v);
      kv_free(&tmp);
      return UV_ENOMEM;
    }
    kv__append(&tmp, k, v, p->hash);
  }
  kv_free(dst);
  *dst = tmp;
  return 0;
}

int kv_equal(const kv_t *a, const kv_t *b) {
  size_t n = kv_count(a);
  if (n != kv_count(b))
    return 0;
  for (size_t i = 0; i < n; i++) {
    const kv_pair_t *p = &a->items[i];
    long at = kv__find(b, p->key, p->hash);
    if (at < 0)
      return 0;
    const char *v = b->items[at].val;
    if (a->borrows ? v != p->val : strcmp(v, p->val) != 0)
      return 0;
  }
  return 1;
}

size_t kv_count(const kv_t *kv) {
  return kv == NULL ? 0 : kv->n;
}
