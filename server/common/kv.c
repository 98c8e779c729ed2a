/*
 * kv.c - sorted-array string map (see kv.h).
 */
#include "kv.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

void kv_init(kv_t *kv) {
  kv->items = NULL;
  kv->n = 0;
  kv->cap = 0;
}

void kv_free(kv_t *kv) {
  if (kv == NULL)
    return;
  for (size_t i = 0; i < kv->n; i++) {
    free(kv->items[i].key);
    free(kv->items[i].val);
  }
  free(kv->items);
  kv_init(kv);
}

/* Index of `key`, or -(insertion point) - 1 when absent. */
static long kv__find(const kv_t *kv, const char *key) {
  size_t lo = 0, hi = kv->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(kv->items[mid].key, key);
    if (c == 0)
      return (long)mid;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return -(long)lo - 1;
}

int kv_set(kv_t *kv, const char *key, const char *val) {
  long at = kv__find(kv, key);
  char *v = strdup(val);
  if (v == NULL)
    return UV_ENOMEM;
  if (at >= 0) {
    free(kv->items[at].val);
    kv->items[at].val = v;
    return 0;
  }
  char *k = strdup(key);
  if (k == NULL) {
    free(v);
    return UV_ENOMEM;
  }
  if (kv->n == kv->cap) {
    size_t cap = kv->cap ? kv->cap * 2 : 4;
    kv_pair_t *items = realloc(kv->items, cap * sizeof(*items));
    if (items == NULL) {
      free(k);
      free(v);
      return UV_ENOMEM;
    }
    kv->items = items;
    kv->cap = cap;
  }
  size_t pos = (size_t)(-at - 1);
  memmove(&kv->items[pos + 1], &kv->items[pos],
          (kv->n - pos) * sizeof(kv->items[0]));
  kv->items[pos].key = k;
  kv->items[pos].val = v;
  kv->n++;
  return 0;
}

const char *kv_get(const kv_t *kv, const char *key) {
  if (kv == NULL || kv->n == 0)
    return NULL;
  long at = kv__find(kv, key);
  return at >= 0 ? kv->items[at].val : NULL;
}

int kv_del(kv_t *kv, const char *key) {
  long at = kv__find(kv, key);
  if (at < 0)
    return UV_ENOENT;
  free(kv->items[at].key);
  free(kv->items[at].val);
  memmove(&kv->items[at], &kv->items[at + 1],
          (kv->n - (size_t)at - 1) * sizeof(kv->items[0]));
  kv->n--;
  return 0;
}

int kv_copy(kv_t *dst, const kv_t *src) {
  kv_t tmp;
  kv_init(&tmp);
  size_t n = kv_count(src);
  if (n > 0) {
    tmp.items = malloc(n * sizeof(tmp.items[0]));
    if (tmp.items == NULL)
      return UV_ENOMEM;
    tmp.cap = n;
    for (size_t i = 0; i < n; i++) {
      tmp.items[i].key = strdup(src->items[i].key);
      tmp.items[i].val = strdup(src->items[i].val);
      tmp.n++;
      if (tmp.items[i].key == NULL || tmp.items[i].val == NULL) {
        kv_free(&tmp);
        return UV_ENOMEM;
      }
    }
  }
  kv_free(dst);
  *dst = tmp;
  return 0;
}

int kv_equal(const kv_t *a, const kv_t *b) {
  size_t n = kv_count(a);
  if (n != kv_count(b))
    return 0;
  for (size_t i = 0; i < n; i++)
    if (strcmp(a->items[i].key, b->items[i].key) != 0 ||
        strcmp(a->items[i].val, b->items[i].val) != 0)
      return 0;
  return 1;
}

size_t kv_count(const kv_t *kv) {
  return kv == NULL ? 0 : kv->n;
}
