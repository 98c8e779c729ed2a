/*
 * map.c - chained hash table with FNV-1a hashing, doubled when the load
 * factor passes 1. Small and private to the SDK; see map.h.
 */
#include "map.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct map_node_s {
  map_node_t *next;
  void *val;
  uint64_t hash;
  char key[];
};

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s != '\0'; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ull;
  }
  return h;
}

void map_init(map_t *m) {
  memset(m, 0, sizeof(*m));
}

void map_close(map_t *m) {
  for (size_t i = 0; i < m->n_buckets; i++) {
    map_node_t *n = m->buckets[i];
    while (n != NULL) {
      map_node_t *next = n->next;
      free(n);
      n = next;
    }
  }
  free(m->buckets);
  memset(m, 0, sizeof(*m));
}

static map_node_t **find(const map_t *m, const char *key, uint64_t h) {
  if (m->n_buckets == 0)
    return NULL;
  map_node_t **pp = &m->buckets[h % m->n_buckets];
  for (; *pp != NULL; pp = &(*pp)->next)
    if ((*pp)->hash == h && strcmp((*pp)->key, key) == 0)
      return pp;
  return NULL;
}

void *map_get(const map_t *m, const char *key) {
  map_node_t **pp = find(m, key, hash_str(key));
  return pp != NULL ? (*pp)->val : NULL;
}

static int grow(map_t *m) {
  size_t nb = m->n_buckets ? m->n_buckets * 2 : 64;
  map_node_t **b = calloc(nb, sizeof(*b));
  if (b == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < m->n_buckets; i++) {
    map_node_t *n = m->buckets[i];
    while (n != NULL) {
      map_node_t *next = n->next;
      n->next = b[n->hash % nb];
      b[n->hash % nb] = n;
      n = next;
    }
  }
  free(m->buckets);
  m->buckets = b;
  m->n_buckets = nb;
  return 0;
}

int map_put(map_t *m, const char *key, void *val) {
  uint64_t h = hash_str(key);
  map_node_t **pp = find(m, key, h);
  if (pp != NULL) {
    (*pp)->val = val;
    return 0;
  }
  if (m->count >= m->n_buckets && grow(m) != 0)
    return -ENOMEM;
  size_t len = strlen(key);
  map_node_t *n = malloc(sizeof(*n) + len + 1);
  if (n == NULL)
    return -ENOMEM;
  memcpy(n->key, key, len + 1);
  n->hash = h;
  n->val = val;
  n->next = m->buckets[h % m->n_buckets];
  m->buckets[h % m->n_buckets] = n;
  m->count++;
  return 0;
}

void *map_del(map_t *m, const char *key) {
  map_node_t **pp = find(m, key, hash_str(key));
  if (pp == NULL)
    return NULL;
  map_node_t *n = *pp;
  void *val = n->val;
  *pp = n->next;
  free(n);
  m->count--;
  return val;
}

void map_each(map_t *m, void (*fn)(const char *key, void *val, void *arg),
              void *arg) {
  for (size_t i = 0; i < m->n_buckets; i++) {
    map_node_t *n = m->buckets[i];
    while (n != NULL) {
      map_node_t *next = n->next; /* `fn` may free `n` */
      fn(n->key, n->val, arg);
      n = next;
    }
  }
}
