/*
 * limiter.h - the concurrency limits of the plugins, shared by every
 * operation and by discovery.
 *
 * A plugin announces a max_concurrency for itself and one per resource
 * type (0: no limit). smaugd holds one limiter for all of them: every call
 * to a plugin, whatever operation or graph build makes it, takes a slot
 * under the (plugin, type) key of the call first and gives it back when
 * the call ends, so that the sum of all calls to a plugin never exceeds
 * its announced limits.
 *
 * A caller that finds no free slot waits in the plugin's FIFO of waiters
 * (one FIFO per plugin, across its types). A slot that frees is granted to
 * the first waiter whose type has room; the waiter leaves the FIFO with
 * the slot held for it and its callback runs. A waiter stands for one
 * client (an operation's ready queue of one type, a build's list calls of
 * one type), not for one call: after a grant the client takes the slot,
 * and when it still has calls to make and no room it joins the FIFO again
 * at its tail. The waiters of one group (the queues of one operation)
 * hold at most one place in a plugin's FIFO while the plugin is full: the
 * others try again when the group's place is granted. So concurrent
 * operations take turns, one slot each, in the order they started
 * waiting, however many types they have; and a newcomer never takes a
 * free slot while a waiter of the same key is ahead of it.
 *
 * Usage:
 *   lim_key_t *k = lim_key(lim, "p", 2, "t.volume", 0);
 *   lim_waiter_init(&w, k, on_grant, me, my_operation);
 *   while (have_work() && lim_take(&w)) start_call();   // then, per call:
 *   lim_release(k);                                      // when it ends
 *   lim_waiter_stop(&w);                                 // done or cancelled
 *
 * Ownership: keys belong to the limiter and live until lim_free(); a
 * waiter is the caller's (usually embedded in its own state) and must be
 * stopped with lim_waiter_stop() before its memory goes.
 *
 * Thread: the loop thread, for every function and every callback. The
 * grant callback runs from inside lim_release(), lim_key() or
 * lim_waiter_stop() of another client; it may call any function here
 * (a nested release only counts; the outer call hands the slot on).
 */
#ifndef SMAUG_LIMITER_H
#define SMAUG_LIMITER_H

typedef struct lim_s lim_t;
typedef struct lim_key_s lim_key_t;
typedef struct lim_waiter_s lim_waiter_t;

/* A slot was granted to `w` (it is held for it: take it with lim_take()). */
typedef void (*lim_grant_cb)(lim_waiter_t *w, void *data);

/* One client's place in a plugin's FIFO. The fields are private; the
 * struct is public only so that it can be embedded. */
struct lim_waiter_s {
  lim_waiter_t *prev, *next;
  lim_key_t *key;
  lim_grant_cb cb;
  void *data;
  const void *group;
  unsigned held; /* slots granted and not taken yet */
  unsigned queued;
};

/* A new limiter in `*out`; released with lim_free(). 0 or UV_ENOMEM. */
int lim_new(lim_t **out);

/* Releases the limiter and its keys. No waiter may still be queued or
 * hold slots. NULL is a no-op. */
void lim_free(lim_t *lim);

/* The key of calls to `plugin` (NULL: no plugin serves the type; only the
 * type limit applies) for resource type `type`, created on first use.
 * `plugin_max` and `type_max` are the limits the plugin announces now
 * (0: none); they replace earlier ones, and a raised limit grants slots to
 * waiters at once. NULL on out-of-memory. */
lim_key_t *lim_key(lim_t *lim, const char *plugin, unsigned plugin_max,
                   const char *type, unsigned type_max);

/* The plugin name of `k` (NULL when none) and its type. Owned by `k`. */
const char *lim_key_plugin(const lim_key_t *k);
const char *lim_key_type(const lim_key_t *k);

/* Calls in flight (slots taken or held) under `k`, and under its plugin
 * across all its types. */
unsigned lim_key_in_flight(const lim_key_t *k);
unsigned lim_plugin_in_flight(const lim_key_t *k);

/* Prepares `w` to wait for slots of `k`; `cb` (not NULL) runs on each
 * grant with `data`. `group` (may be NULL: none) names the client's
 * owner, whose waiters share one place in a full plugin's FIFO. `w` must
 * not be queued. */
void lim_waiter_init(lim_waiter_t *w, lim_key_t *k, lim_grant_cb cb, void *data,
                     const void *group);

/* Takes one slot of w's key for a call: a slot granted to `w` earlier, or
 * a free one when no waiter of the same key is ahead. Returns 1; the
 * caller makes its call and lim_release()s the slot when it ends.
 * Otherwise returns 0 and `w` is queued (once) at the tail of the FIFO,
 * its callback to run when a slot is granted; except when the plugin is
 * full and a waiter of w's group is queued already: then `w` is not
 * queued, and its client tries again when that waiter is granted. */
int lim_take(lim_waiter_t *w);

/* Gives back a slot taken with lim_take() under `k`, and grants the free
 * slots to the waiters, first come first served. */
void lim_release(lim_key_t *k);

/* Takes `w` out of the FIFO and gives back the slots granted to it and
 * not taken: the client has nothing left to start, or was cancelled. Safe
 * on an idle waiter. */
void lim_waiter_stop(lim_waiter_t *w);

#endif /* SMAUG_LIMITER_H */
