/*
 * sp_task.c - background work handed from Parallel to Sync (sp_task.h).
 * The registry is a short list: a plugin has at most a few hundred
 * resources between their Parallel and their Sync.
 */
#define _GNU_SOURCE
#include "sp_task.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define STALE_NS (3600ull * 1000 * 1000 * 1000)

struct sp_task_s {
  atomic_int refs;
  atomic_int cancel;
  void *user;
  void (*cleanup)(void *user);
};

typedef struct entry_s {
  struct entry_s *next;
  char *key;
  sp_task_t *task;
  uint64_t since;
} entry_t;

static entry_t *registry; /* loop thread only */

int sp_task_new(sp_task_t **out) {
  sp_task_t *t = calloc(1, sizeof(*t));
  if (t == NULL)
    return SMAUG_ENOMEM;
  atomic_init(&t->refs, 1);
  atomic_init(&t->cancel, 0);
  *out = t;
  return 0;
}

void sp_task_ref(sp_task_t *t) {
  if (t != NULL)
    atomic_fetch_add(&t->refs, 1);
}

void sp_task_unref(sp_task_t *t) {
  if (t == NULL || atomic_fetch_sub(&t->refs, 1) != 1)
    return;
  if (t->cleanup != NULL)
    t->cleanup(t->user);
  free(t);
}

void sp_task_set_user(sp_task_t *t, void *user, void (*cleanup)(void *user)) {
  t->user = user;
  t->cleanup = cleanup;
}

void *sp_task_user(const sp_task_t *t) {
  return t->user;
}

void sp_task_cancel(sp_task_t *t) {
  atomic_store(&t->cancel, 1);
}

const atomic_int *sp_task_cancel_flag(const sp_task_t *t) {
  return &t->cancel;
}

int sp_task_key(const smaug_activity_t *act, char *buf, size_t len) {
  int n = snprintf(buf, len, "%s\x1f%s\x1f%s", smaug_activity_operation_id(act),
                   smaug_activity_type(act), smaug_activity_resource_id(act));
  return n < 0 || (size_t)n >= len ? SMAUG_EINVAL : 0;
}

static void drop(entry_t *e) {
  free(e->key);
  sp_task_unref(e->task);
  free(e);
}

int sp_task_register(const char *key, sp_task_t *t) {
  uint64_t now = uv_hrtime();
  for (entry_t **pp = &registry; *pp != NULL;) {
    entry_t *e = *pp;
    if (now - e->since > STALE_NS) {
      *pp = e->next;
      sp_task_cancel(e->task);
      drop(e);
      continue;
    }
    if (strcmp(e->key, key) == 0)
      return SMAUG_EEXIST;
    pp = &e->next;
  }
  entry_t *e = calloc(1, sizeof(*e));
  if (e == NULL || (e->key = strdup(key)) == NULL) {
    free(e);
    return SMAUG_ENOMEM;
  }
  sp_task_ref(t);
  e->task = t;
  e->since = now;
  e->next = registry;
  registry = e;
  return 0;
}

sp_task_t *sp_task_take(const char *key) {
  for (entry_t **pp = &registry; *pp != NULL; pp = &(*pp)->next) {
    entry_t *e = *pp;
    if (strcmp(e->key, key) != 0)
      continue;
    *pp = e->next;
    sp_task_t *t = e->task;
    free(e->key);
    free(e);
    return t;
  }
  return NULL;
}
