/*
 * rt_health.c - grpc.health.v1.Health on the smaug runtime (rt_health.h).
 *
 * The state is a short list of (service, status) pairs, searched linearly:
 * a server has a handful of services. Each Watch stream is a node on a
 * list; a status change walks the list and sends to the streams of that
 * service whose last sent status differs, so a client sees every change
 * once and no repeats. A stream leaves the list when it ends: on shutdown
 * (finished OK) or when the client cancels (rt_call_on_cancel).
 */
#include "rt_health.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/health/v1/health.smaug.h"
#include "rt_log.h"

typedef Grpc__Health__V1__HealthCheckResponse__ServingStatus status_t;

#define ST_SERVING                                                             \
  GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
#define ST_NOT_SERVING                                                         \
  GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING
#define ST_UNKNOWN                                                             \
  GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN

typedef struct entry_s {
  char *service;
  status_t status;
} entry_t;

typedef struct watch_s watch_t;
struct watch_s {
  rt_health_t *h;
  rt_call_t *call;
  char *service;
  status_t last_sent;
  watch_t *prev, *next;
};

struct rt_health_s {
  entry_t *entries;
  size_t n_entries, cap_entries;
  watch_t *watches; /* streams not yet finished */
  int shut_down;
};

static entry_t *health_find(rt_health_t *h, const char *service) {
  for (size_t i = 0; i < h->n_entries; i++)
    if (strcmp(h->entries[i].service, service) == 0)
      return &h->entries[i];
  return NULL;
}

/* Returns the entry for `service`, adding it NOT_SERVING if new; NULL when
 * out of memory. */
static entry_t *health_upsert(rt_health_t *h, const char *service) {
  entry_t *e = health_find(h, service);
  if (e != NULL)
    return e;
  if (h->n_entries == h->cap_entries) {
    size_t cap = h->cap_entries ? 2 * h->cap_entries : 8;
    entry_t *p = realloc(h->entries, cap * sizeof(*p));
    if (p == NULL)
      return NULL;
    h->entries = p;
    h->cap_entries = cap;
  }
  char *name = strdup(service);
  if (name == NULL)
    return NULL;
  e = &h->entries[h->n_entries++];
  e->service = name;
  e->status = ST_NOT_SERVING;
  return e;
}

static status_t health_status(rt_health_t *h, const char *service) {
  entry_t *e = health_find(h, service);
  return e != NULL ? e->status : ST_UNKNOWN;
}

static void watch_unlink(watch_t *w) {
  if (w->prev != NULL)
    w->prev->next = w->next;
  else
    w->h->watches = w->next;
  if (w->next != NULL)
    w->next->prev = w->prev;
  w->prev = w->next = NULL;
}

/* Ends the stream and frees `w`. */
static void watch_finish(watch_t *w, grpc_status_code code, const char *msg) {
  rt_call_t *call = w->call;
  watch_unlink(w);
  free(w->service);
  free(w);
  rt_call_finish(call, code, msg, NULL);
}

/* Sends `status` unless the client already has it. A send that fails
 * because the call was cancelled is left to the cancel callback; any other
 * failure ends the stream with INTERNAL. Returns 0 or the error. */
static int watch_send(watch_t *w, status_t status) {
  if (status == w->last_sent)
    return 0;
  Grpc__Health__V1__HealthCheckResponse resp =
      GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
  resp.status = status;
  int rc = rt_call_send(w->call, &resp.base);
  if (rc == 0) {
    w->last_sent = status;
  } else if (rc != UV_ECANCELED) {
    rt_log(RT_LOG_WARN, "health", "watch send failed", "service=\"%s\" err=%s",
           w->service, uv_err_name(rc));
    watch_finish(w, GRPC_STATUS_INTERNAL, "health: cannot send the status");
  }
  return rc;
}

static void on_watch_cancel(rt_call_t *call, void *data) {
  watch_t *w = data;
  (void)call;
  watch_finish(w, GRPC_STATUS_CANCELLED, "health: watch cancelled");
}

static void health_check(rt_call_t *call,
                         const Grpc__Health__V1__HealthCheckRequest *req,
                         void *data) {
  rt_health_t *h = data;
  const char *service = req->service != NULL ? req->service : "";
  entry_t *e = health_find(h, service);
  if (e == NULL) {
    rt_call_fail(call, GRPC_STATUS_NOT_FOUND, "unknown service \"%s\"",
                 service);
    return;
  }
  Grpc__Health__V1__HealthCheckResponse resp =
      GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
  resp.status = e->status;
  rt_call_reply(call, &resp.base);
}

static void health_watch(rt_call_t *call,
                         const Grpc__Health__V1__HealthCheckRequest *req,
                         void *data) {
  rt_health_t *h = data;
  const char *service = req->service != NULL ? req->service : "";
  watch_t *w = calloc(1, sizeof(*w));
  char *name = strdup(service);
  if (w == NULL || name == NULL) {
    free(w);
    free(name);
    rt_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "health: out of memory");
    return;
  }
  w->h = h;
  w->call = call;
  w->service = name;
  w->last_sent = (status_t)-1; /* nothing sent yet */
  w->next = h->watches;
  if (h->watches != NULL)
    h->watches->prev = w;
  h->watches = w;

  int rc = watch_send(w, health_status(h, service));
  if (rc == UV_ECANCELED) {
    watch_finish(w, GRPC_STATUS_CANCELLED, "health: watch cancelled");
    return;
  }
  if (rc != 0)
    return; /* watch_send ended the stream */
  if (h->shut_down) {
    watch_finish(w, GRPC_STATUS_OK, NULL);
    return;
  }
  rt_call_on_cancel(call, on_watch_cancel, w);
}

static const grpc_health_v1_health_handlers_t health_handlers = {
    .check = health_check,
    .watch = health_watch,
};

int rt_health_new(rt_server_t *srv, rt_health_t **out) {
  if (srv == NULL || out == NULL)
    return UV_EINVAL;
  rt_health_t *h = calloc(1, sizeof(*h));
  if (h == NULL)
    return UV_ENOMEM;
  entry_t *all = health_upsert(h, "");
  if (all == NULL) {
    free(h);
    return UV_ENOMEM;
  }
  all->status = ST_SERVING;
  int rc = grpc_health_v1_health_register(srv, &health_handlers, h);
  if (rc != 0) {
    rt_health_free(h);
    return rc;
  }
  *out = h;
  return 0;
}

void rt_health_set(rt_health_t *h, const char *service, int serving) {
  if (h == NULL || h->shut_down)
    return;
  if (service == NULL)
    service = "";
  entry_t *e = health_upsert(h, service);
  if (e == NULL) {
    rt_log(RT_LOG_ERROR, "health", "out of memory", "service=\"%s\"", service);
    return;
  }
  e->status = serving ? ST_SERVING : ST_NOT_SERVING;
  watch_t *next;
  for (watch_t *w = h->watches; w != NULL; w = next) {
    next = w->next; /* watch_send may free w */
    if (strcmp(w->service, service) == 0)
      (void)watch_send(w, e->status); /* failures end that stream only */
  }
}

void rt_health_shutdown(rt_health_t *h) {
  if (h == NULL || h->shut_down)
    return;
  for (size_t i = 0; i < h->n_entries; i++)
    h->entries[i].status = ST_NOT_SERVING;
  h->shut_down = 1;
  while (h->watches != NULL) {
    watch_t *w = h->watches;
    /* A failed send has already ended the stream and unlinked `w`; a
     * cancelled one is still ours to finish. */
    int rc = watch_send(w, health_status(h, w->service));
    if (rc == 0 || rc == UV_ECANCELED)
      watch_finish(w, GRPC_STATUS_OK, NULL);
  }
}

void rt_health_free(rt_health_t *h) {
  if (h == NULL)
    return;
  assert(h->watches == NULL && "rt_health_free with live Watch streams");
  for (size_t i = 0; i < h->n_entries; i++)
    free(h->entries[i].service);
  free(h->entries);
  free(h);
}
