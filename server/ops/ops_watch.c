/*
 * ops_watch.c - the watchers of operations (see ops.h): each committed
 * event goes to every watcher of its operation through the watcher's sink.
 *
 * Memory stays bounded whatever the sinks do: each holds at most
 * OPS_WATCH_QUEUE messages queued. A watcher that falls behind is not
 * buffered for: it is refilled from the store, a page at a time, as its
 * sink drains. A watcher that asked for batches (max_batch) has at most
 * one message queued, of up to OPS_WATCH_BATCH_MAX events: what is
 * committed when its previous message has been taken goes out together,
 * so a busy operation costs it one message per send, not one per event.
 */
#include "ops_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_log.h"

static void watcher_unlink(ops_watcher_t *w) {
  for (ops_watcher_t **pp = &w->ops->watchers; *pp; pp = &(*pp)->next)
    if (*pp == w) {
      *pp = w->next;
      break;
    }
  if (w->op)
    w->op->n_watchers--;
}

/* Ends the sink (queued messages are still delivered) and frees `w`. */
void ops_watcher_end(ops_watcher_t *w, int err, const char *msg) {
  watcher_unlink(w);
  w->sink->end(w->sink_data, err, msg);
  free(w);
}

void ops_watchers_end_all(ops_t *ops, int err, const char *msg) {
  while (ops->watchers)
    ops_watcher_end(ops->watchers, err, msg);
}

void ops_watchers_adopt(ops_t *ops, op_t *op) {
  for (ops_watcher_t *w = ops->watchers; w; w = w->next)
    if (w->op == NULL && w->end == 0 && strcmp(w->op_id, op->id) == 0) {
      w->op = op;
      op->n_watchers++;
    }
}

/* How many more events `w`'s sink may take now: what OPS_WATCH_QUEUE
 * leaves of one message per event, or for a batched watcher a whole batch
 * once its previous message has been taken. */
_Static_assert(OPS_WATCH_BATCH_MAX <= OPS_WATCH_QUEUE,
               "a batch counts against the queue bound");
static uint32_t watcher_room(const ops_watcher_t *w) {
  size_t queued = w->sink->queued(w->sink_data);
  if (w->batch)
    return queued ? 0 : w->batch;
  return queued >= OPS_WATCH_QUEUE ? 0 : (uint32_t)(OPS_WATCH_QUEUE - queued);
}

/* Queues the `n` events `evs` (in order, at most watcher_room()) on the
 * sink: one message each, or one message for all of a batched watcher. */
static void watcher_send(ops_watcher_t *w, Smaug__V1__OperationEvent **evs,
                         size_t n) {
  if (n == 0)
    return;
  if (w->batch)
    w->sink->send(w->sink_data, evs, n);
  else
    for (size_t i = 0; i < n; i++)
      w->sink->send(w->sink_data, &evs[i], 1);
  w->last = evs[n - 1]->sequence;
}

/* Refills a lagging watcher from the store, as far as watcher_room() lets
 * it and no further than `bound`, and ends it once its final event is
 * queued. Returns 1 when `w` was ended (and freed). */
static int watcher_pump(ops_watcher_t *w) {
  ops_t *ops = w->ops;
  while (w->behind) {
    uint32_t room = watcher_room(w);
    if (room == 0)
      break;
    Smaug__V1__OperationEvent **evs;
    size_t n = 0, i = 0;
    int err = store_event_list(ops->store, w->op_id, w->last, room, &evs, &n);
    if (err) {
      char msg[256];
      snprintf(msg, sizeof(msg), "store: %s: %s", uv_strerror(err),
               store_errmsg(ops->store));
      ops_watcher_end(w, OPS_EINTERNAL, msg);
      return 1;
    }
    while (i < n && evs[i]->sequence <= w->bound)
      i++;
    watcher_send(w, evs, i);
    store_msgs_free(evs, n);
    if (i < room)
      w->behind = 0; /* caught up with what is committed */
  }
  if (w->end && w->last >= w->end) {
    ops_watcher_end(w, 0, NULL);
    return 1;
  }
  return 0;
}

void ops_watch_sent(ops_watcher_t *w) {
  size_t low = w->batch ? 0 : OPS_WATCH_LOW;
  if (w->behind && w->sink->queued(w->sink_data) <= low)
    watcher_pump(w);
}

void ops_watch_cancel(ops_watcher_t *w) {
  rt_log(RT_LOG_DEBUG, "api", "watch cancelled", "op=%s sent=%" PRIu64,
         w->op_id, w->last);
  ops_watcher_end(w, OPS_ECANCELED, "cancelled");
}

/* Nothing uncommitted is ever streamed. A watcher whose sink is full is
 * marked behind and refilled from the store later, so nothing is buffered
 * for it here. Once the final event is committed, the watchers stop
 * following the op: they read the rest from the store, and the op can be
 * freed. */
void ops_deliver(op_t *op, int drop) {
  ops_t *ops = op->ops;
  for (ops_watcher_t *w = ops->watchers, *wn; w && !drop; w = wn) {
    wn = w->next;
    if (w->op != op)
      continue;
    if (!w->behind) {
      Smaug__V1__OperationEvent *evs[OPS_WATCH_QUEUE];
      uint32_t room = watcher_room(w), n = 0;
      for (ops_pend_t *p = op->pend_head; p && p->seq <= op->committed_seq;
           p = p->next) {
        if (p->seq <= w->last)
          continue;
        if (n == room) {
          /* A batched watcher waits for its message to be taken, as it
           * does for every batch of a busy operation: not worth a log. */
          w->behind = 1;
          if (!w->batch)
            rt_log(RT_LOG_DEBUG, "api", "watch waits for the client",
                   "op=%s sent=%" PRIu64, w->op_id, w->last);
          break;
        }
        evs[n] = smaug__v1__operation_event__unpack(NULL, p->len, p->data);
        if (evs[n] == NULL) {
          w->behind = 1; /* read it back from the store */
          break;
        }
        n++;
      }
      watcher_send(w, evs, n);
      for (uint32_t i = 0; i < n; i++)
        protobuf_c_message_free_unpacked(&evs[i]->base, NULL);
    }
    w->bound = op->committed_seq;
    if (op->finished && !op->final_retry) {
      w->end = op->final_seq;
      w->op = NULL;
      op->n_watchers--;
    }
    if (w->last < w->bound)
      w->behind = 1; /* something it was not sent */
    watcher_pump(w);
  }
  /* What a later commit has still to take stays, unless it was lost. */
  while (op->pend_head && (drop || op->pend_head->seq <= op->committed_seq)) {
    ops_pend_t *p = op->pend_head;
    op->pend_head = p->next;
    free(p);
  }
  if (op->pend_head == NULL)
    op->pend_tail = NULL;
}

int ops_watch(ops_t *ops, const char *op_id, uint64_t after, uint32_t max_batch,
              const ops_sink_t *sink, void *sink_data, ops_watcher_t **out) {
  if (out)
    *out = NULL;
  if (ops == NULL || op_id == NULL || sink == NULL)
    return UV_EINVAL;
  char msg[256];
  if (ops->closing) {
    sink->end(sink_data, OPS_EUNAVAIL, "smaugd is stopping");
    return 0;
  }
  ops_flush(ops);
  store_op_t *sop;
  uint64_t stored = 0;
  int err = store_op_get(ops->store, op_id, &sop);
  if (err) {
    if (err == UV_ENOENT)
      snprintf(msg, sizeof(msg), "operation %s not found", op_id);
    else
      snprintf(msg, sizeof(msg), "operation %s %s", op_id, uv_strerror(err));
    sink->end(sink_data, err == UV_ENOENT ? OPS_ENOTFOUND : OPS_EINTERNAL, msg);
    return 0;
  }
  int running = sop->running;
  store_op_free(sop);
  if ((err = store_event_last_seq(ops->store, op_id, &stored))) {
    snprintf(msg, sizeof(msg), "store: %s", uv_strerror(err));
    sink->end(sink_data, OPS_EINTERNAL, msg);
    return 0;
  }
  op_t *op = op_find(ops, op_id);
  if (op == NULL && running)
    for (op_t *d = ops->dead; d; d = d->next)
      if (d->final_retry && strcmp(d->id, op_id) == 0)
        op = d; /* its final status waits for the disk: follow it */
  if (running && op == NULL && ops->recovered) {
    snprintf(msg, sizeof(msg),
             "operation %s is running in the store but not here", op_id);
    sink->end(sink_data, OPS_EINTERNAL, msg);
    return 0;
  }
  int replay = !running || (op && op->finished && !op->final_retry);
  if (replay && after >= stored) {
    sink->end(sink_data, 0, NULL);
    return 0;
  }
  ops_watcher_t *w = calloc(1, sizeof(*w));
  if (w == NULL) {
    sink->end(sink_data, OPS_ENOMEM, "out of memory");
    return 0;
  }
  w->ops = ops;
  w->sink = sink;
  w->sink_data = sink_data;
  w->last = after;
  w->bound = stored;
  w->behind = 1;
  w->batch = max_batch < OPS_WATCH_BATCH_MAX ? max_batch : OPS_WATCH_BATCH_MAX;
  snprintf(w->op_id, sizeof(w->op_id), "%s", op_id);
  if (replay) {
    w->end = stored;
  } else if (op) {
    /* Before recovery the watcher is parked (op NULL) until recovery. */
    w->op = op;
    op->n_watchers++;
  }
  w->next = ops->watchers;
  ops->watchers = w;
  if (watcher_pump(w) != 0)
    return 0; /* ended and freed */
  if (w->behind)
    rt_log(RT_LOG_DEBUG, "api", "watch waits for the client",
           "op=%s sent=%" PRIu64, w->op_id, w->last);
  if (out)
    *out = w;
  return 0;
}
