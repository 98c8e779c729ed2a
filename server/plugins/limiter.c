/*
 * limiter.c - the shared plugin concurrency limiter (see limiter.h).
 *
 * A few short lists: the plugins (each with its in-flight count, its limit
 * and its FIFO of waiters, linked through the waiters themselves) and the
 * (plugin, type) keys (each with its own count, limit and the number of
 * its waiters in the FIFO). Slots held for a waiter count as in flight.
 * Granting runs in one loop guarded against re-entry: a release from
 * inside a grant callback only marks its plugin, and the outer loop grants
 * its slot once the callback returns, so grants never recurse.
 */
#include "limiter.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

typedef struct lim_plugin_s lim_plugin_t;

struct lim_plugin_s {
  lim_plugin_t *next;
  char *name; /* NULL: the types no plugin serves */
  unsigned max, inflight;
  lim_waiter_t *head, *tail;
  int dirty; /* a slot may be grantable */
};

struct lim_key_s {
  lim_key_t *next;
  lim_t *lim;
  lim_plugin_t *pl;
  char *type;
  unsigned max, inflight;
  unsigned waiting; /* this key's waiters in pl's FIFO */
};

struct lim_s {
  lim_plugin_t *plugins;
  lim_key_t *keys;
  int granting;
};

int lim_new(lim_t **out) {
  *out = calloc(1, sizeof(**out));
  return *out ? 0 : UV_ENOMEM;
}

void lim_free(lim_t *lim) {
  if (lim == NULL)
    return;
  for (lim_key_t *k = lim->keys, *next; k; k = next) {
    next = k->next;
    free(k->type);
    free(k);
  }
  for (lim_plugin_t *p = lim->plugins, *next; p; p = next) {
    next = p->next;
    free(p->name);
    free(p);
  }
  free(lim);
}

static int lim__same(const char *a, const char *b) {
  return a == b || (a && b && strcmp(a, b) == 0);
}

static int lim__room(const lim_key_t *k) {
  return (k->max == 0 || k->inflight < k->max) &&
         (k->pl->max == 0 || k->pl->inflight < k->pl->max);
}

static void lim__unlink(lim_waiter_t *w) {
  lim_plugin_t *pl = w->key->pl;
  if (w->prev)
    w->prev->next = w->next;
  else
    pl->head = w->next;
  if (w->next)
    w->next->prev = w->prev;
  else
    pl->tail = w->prev;
  w->prev = w->next = NULL;
  w->queued = 0;
  w->key->waiting--;
}

/* Grants one slot of `pl` to its first waiter whose key has room.
 * Returns 1 if it did (the callback ran), 0 if no waiter can have one. */
static int lim__grant_one(lim_plugin_t *pl) {
  if (pl->max && pl->inflight >= pl->max)
    return 0;
  for (lim_waiter_t *w = pl->head; w; w = w->next) {
    lim_key_t *k = w->key;
    if (!lim__room(k))
      continue;
    lim__unlink(w);
    k->inflight++;
    pl->inflight++;
    w->held++;
    w->cb(w, w->data);
    return 1;
  }
  return 0;
}

/* Hands the free slots of `pl` (and of any plugin marked meanwhile) to
 * their waiters. */
static void lim__grant(lim_t *lim, lim_plugin_t *pl) {
  pl->dirty = 1;
  if (lim->granting)
    return;
  lim->granting = 1;
  int again;
  do {
    again = 0;
    for (lim_plugin_t *p = lim->plugins; p; p = p->next)
      if (p->dirty) {
        p->dirty = 0;
        again = 1;
        while (lim__grant_one(p))
          ;
      }
  } while (again);
  lim->granting = 0;
}

lim_key_t *lim_key(lim_t *lim, const char *plugin, unsigned plugin_max,
                   const char *type, unsigned type_max) {
  if (lim == NULL || type == NULL)
    return NULL;
  lim_key_t *k = lim->keys;
  while (k && !(lim__same(k->pl->name, plugin) && strcmp(k->type, type) == 0))
    k = k->next;
  if (k == NULL) {
    lim_plugin_t *pl = lim->plugins;
    while (pl && !lim__same(pl->name, plugin))
      pl = pl->next;
    if (pl == NULL) {
      if ((pl = calloc(1, sizeof(*pl))) == NULL)
        return NULL;
      if (plugin && (pl->name = strdup(plugin)) == NULL) {
        free(pl);
        return NULL;
      }
      pl->next = lim->plugins;
      lim->plugins = pl;
    }
    if ((k = calloc(1, sizeof(*k))) == NULL ||
        (k->type = strdup(type)) == NULL) {
      free(k);
      return NULL;
    }
    k->lim = lim;
    k->pl = pl;
    k->next = lim->keys;
    lim->keys = k;
  }
  /* The types no plugin serves have no plugin-wide limit. */
  k->pl->max = plugin ? plugin_max : 0;
  k->max = type_max;
  if (k->pl->head)
    lim__grant(lim, k->pl);
  return k;
}

const char *lim_key_plugin(const lim_key_t *k) {
  return k->pl->name;
}

const char *lim_key_type(const lim_key_t *k) {
  return k->type;
}

unsigned lim_key_in_flight(const lim_key_t *k) {
  return k->inflight;
}

unsigned lim_plugin_in_flight(const lim_key_t *k) {
  return k->pl->inflight;
}

void lim_waiter_init(lim_waiter_t *w, lim_key_t *k, lim_grant_cb cb, void *data,
                     const void *group) {
  memset(w, 0, sizeof(*w));
  w->key = k;
  w->cb = cb;
  w->data = data;
  w->group = group;
}

/* Whether a waiter of `group` holds a place in the FIFO of `pl`. */
static int lim__group_queued(const lim_plugin_t *pl, const void *group) {
  for (const lim_waiter_t *q = pl->head; q; q = q->next)
    if (q->group == group)
      return 1;
  return 0;
}

int lim_take(lim_waiter_t *w) {
  lim_key_t *k = w->key;
  if (w->held) {
    w->held--;
    return 1;
  }
  if (k->waiting == 0 && lim__room(k)) {
    k->inflight++;
    k->pl->inflight++;
    return 1;
  }
  lim_plugin_t *pl = k->pl;
  if (!w->queued && !(w->group && pl->max && pl->inflight >= pl->max &&
                      lim__group_queued(pl, w->group))) {
    w->prev = pl->tail;
    w->next = NULL;
    if (pl->tail)
      pl->tail->next = w;
    else
      pl->head = w;
    pl->tail = w;
    w->queued = 1;
    k->waiting++;
  }
  return 0;
}

void lim_release(lim_key_t *k) {
  k->inflight--;
  k->pl->inflight--;
  if (k->pl->head)
    lim__grant(k->lim, k->pl);
}

void lim_waiter_stop(lim_waiter_t *w) {
  lim_key_t *k = w->key;
  if (k == NULL)
    return;
  if (w->queued)
    lim__unlink(w);
  if (w->held) {
    k->inflight -= w->held;
    k->pl->inflight -= w->held;
    w->held = 0;
    if (k->pl->head)
      lim__grant(k->lim, k->pl);
  }
}
