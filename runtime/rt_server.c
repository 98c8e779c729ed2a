/*
 * rt_server.c - the server half of the runtime: registered services,
 * listeners, the requests kept pending for incoming calls, and graceful
 * shutdown. A matched call is handed to rt_call.c (rt__call_start), which
 * owns it from then on.
 *
 * Every method of every service is registered with gRPC (so the payload
 * of unary and server-streaming calls arrives with the call), and one
 * request is kept pending per method. A generic request is also kept
 * pending so that a call to an unknown method gets UNIMPLEMENTED at once
 * rather than hanging until its deadline.
 */
#include <assert.h>
#include <errno.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rt_addr.h"
#include "rt_health.h"
#include "rt_internal.h"
#include "rt_reflection.h"

#define RT_DEFAULT_MAX_MESSAGE (4 * 1024 * 1024)
#define RT_DEFAULT_GRACE_MS    5000
/* Requests kept pending per method: with one, a burst of calls waits for
 * the loop to re-request between each; a few let gRPC match them at once. */
#define RT_SLOTS 4

typedef struct rt_entry_s rt_entry_t;
typedef struct rt_slot_s rt_slot_t;

/* One registered service. */
struct rt_entry_s {
  const rt_service_t *svc;
  const void *impl;
  void *data;
  void **handles;   /* grpc_server_register_method results, per method */
  rt_slot_t *slots; /* RT_SLOTS pending requests per method */
};

/* A pending grpc_server_request_(registered_)call. */
struct rt_slot_s {
  rt_tag_t tag;
  rt_server_t *srv;
  rt_entry_t *entry; /* NULL: the generic (unknown method) slot */
  size_t method;
  grpc_call *call;
  gpr_timespec deadline;
  grpc_metadata_array md;
  grpc_byte_buffer *payload;
  grpc_call_details details; /* generic slot only */
};

/* The answer to a call of an unknown method. */
typedef struct {
  rt_tag_t tag;
  rt_server_t *srv;
  grpc_call *call;
  int cancelled;
  grpc_slice details;
} rt_unknown_t;

struct rt_server_s {
  rt_t *rt;
  grpc_server *server;
  int max_message;
  int grace_ms;
  rt_entry_t *entries;
  size_t n_entries;
  rt_slot_t generic;

  int n_calls;   /* live rt_call_t and rt_unknown_t */
  int n_slots;   /* requests pending in gRPC */
  int n_handles; /* uv handles not yet closed */
  unsigned started : 1;
  unsigned shutting_down : 1;
  unsigned shutdown_tag_done : 1;
  unsigned stopped : 1;
  unsigned signals_on : 1;

  rt_tag_t shutdown_tag;
  uv_timer_t grace;
  uv_signal_t sigint, sigterm;
  rt_server_stopped_cb stopped_cb;
  void *stopped_data;
  rt_server_stopped_cb signal_cb;
  void *signal_data;
  rt_health_t *health;
  rt_reflection_t *reflection;
  rt_listener_t **listeners; /* TLS listeners' fetcher state */
  size_t n_listeners;
};

static void server_maybe_stopped(rt_server_t *srv);
/* --------------------------------------------------- incoming calls */

static void slot_request(rt_slot_t *s);

static void call_gone(void *owner) {
  rt_server_t *srv = owner;
  srv->n_calls--;
  server_maybe_stopped(srv);
}

static void call_start(rt_slot_t *s) {
  rt_server_t *srv = s->srv;
  rt_entry_t *e = s->entry;
  rt_call_start_t st = {
      .rt = srv->rt,
      .call = s->call,
      .svc = e->svc,
      .impl = e->impl,
      .data = e->data,
      .method = s->method,
      .deadline = s->deadline,
      .payload = s->payload,
      .md = &s->md,
      .gone = call_gone,
      .owner = srv,
  };
  s->payload = NULL;
  srv->n_calls++;
  if (rt__call_start(&st) != 0)
    srv->n_calls--;
}

static void on_unknown_done(rt_tag_t *tag, int ok) {
  rt_unknown_t *u = (rt_unknown_t *)tag;
  rt_server_t *srv = u->srv;
  grpc_call_unref(u->call);
  grpc_slice_unref(u->details);
  free(u);
  srv->n_calls--;
  server_maybe_stopped(srv);
}

static void unknown_start(rt_slot_t *s) {
  rt_server_t *srv = s->srv;
  rt_unknown_t *u = calloc(1, sizeof(*u));
  if (u == NULL) {
    grpc_call_cancel(s->call, NULL);
    grpc_call_unref(s->call);
    return;
  }
  u->tag.fn = on_unknown_done;
  u->srv = srv;
  u->call = s->call;
  char *method = grpc_slice_to_c_string(s->details.method);
  char buf[512];
  snprintf(buf, sizeof(buf), "unknown method %s", method);
  gpr_free(method);
  u->details = grpc_slice_from_copied_string(buf);
  srv->n_calls++;
  grpc_op ops[3];
  memset(ops, 0, sizeof(ops));
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[1].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  ops[1].data.recv_close_on_server.cancelled = &u->cancelled;
  ops[2].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[2].data.send_status_from_server.status = GRPC_STATUS_UNIMPLEMENTED;
  ops[2].data.send_status_from_server.status_details = &u->details;
  if (grpc_call_start_batch(u->call, ops, 3, &u->tag, NULL) != GRPC_CALL_OK)
    rt__defer(srv->rt, &u->tag, 0);
}

static void on_slot(rt_tag_t *tag, int ok) {
  rt_slot_t *s = (rt_slot_t *)tag;
  rt_server_t *srv = s->srv;
  srv->n_slots--;
  /* Take the call out of the slot and re-arm the slot first, so that gRPC
   * can match the next call while this one runs. */
  rt_slot_t got = *s; /* takes the metadata array too */
  s->call = NULL;
  s->payload = NULL;
  memset(&s->md, 0, sizeof(s->md));
  if (ok && !srv->shutting_down)
    slot_request(s);
  if (ok && got.call != NULL) {
    if (got.entry != NULL)
      call_start(&got);
    else
      unknown_start(&got);
  } else if (got.payload != NULL) {
    grpc_byte_buffer_destroy(got.payload);
  }
  grpc_metadata_array_destroy(&got.md); /* empty if the call took it */
  if (got.entry == NULL)
    grpc_call_details_destroy(&got.details);
  server_maybe_stopped(srv);
}

static void slot_request(rt_slot_t *s) {
  rt_server_t *srv = s->srv;
  grpc_completion_queue *cq = rt__cq(srv->rt);
  grpc_metadata_array_init(&s->md);
  grpc_call_error e;
  if (s->entry != NULL) {
    const rt_method_t *m = &s->entry->svc->methods[s->method];
    int reads_first = m->kind == RT_UNARY || m->kind == RT_SERVER_STREAMING;
    e = grpc_server_request_registered_call(
        srv->server, s->entry->handles[s->method], &s->call, &s->deadline,
        &s->md, reads_first ? &s->payload : NULL, cq, cq, &s->tag);
  } else {
    grpc_call_details_init(&s->details);
    e = grpc_server_request_call(srv->server, &s->call, &s->details, &s->md, cq,
                                 cq, &s->tag);
  }
  srv->n_slots++;
  if (e != GRPC_CALL_OK)
    rt__defer(srv->rt, &s->tag, 0);
}

/* ------------------------------------------------------------- server */

int rt_server_new(rt_t *rt, const rt_server_opts_t *opts, rt_server_t **out) {
  if (rt == NULL || out == NULL)
    return UV_EINVAL;
  if (opts != NULL && opts->size < sizeof(*opts))
    return UV_EINVAL;
  rt_server_t *srv = calloc(1, sizeof(*srv));
  if (srv == NULL)
    return UV_ENOMEM;
  srv->rt = rt;
  srv->max_message = RT_DEFAULT_MAX_MESSAGE;
  srv->grace_ms = RT_DEFAULT_GRACE_MS;
  if (opts != NULL && opts->max_message_bytes > 0)
    srv->max_message = opts->max_message_bytes;
  if (opts != NULL && opts->shutdown_grace_ms > 0)
    srv->grace_ms = opts->shutdown_grace_ms;

  grpc_arg args[3];
  args[0].type = GRPC_ARG_INTEGER;
  args[0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
  args[0].value.integer = srv->max_message;
  args[1].type = GRPC_ARG_INTEGER;
  args[1].key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
  args[1].value.integer = srv->max_message;
  /* gRPC turns SO_REUSEPORT on by default, so a second server on a busy
   * port would bind "successfully" and share its traffic. */
  args[2].type = GRPC_ARG_INTEGER;
  args[2].key = GRPC_ARG_ALLOW_REUSEPORT;
  args[2].value.integer = 0;
  grpc_channel_args ca = {3, args};
  srv->server = grpc_server_create(&ca, NULL);
  if (srv->server == NULL) {
    free(srv);
    return UV_ENOMEM;
  }
  grpc_server_register_completion_queue(srv->server, rt__cq(rt), NULL);
  srv->generic.tag.fn = on_slot;
  srv->generic.srv = srv;
  srv->shutdown_tag.fn = NULL;
  rt__count_server(rt, 1);

  int err = rt_health_new(srv, &srv->health);
  if (err != 0)
    goto fail;
  err = rt_reflection_new(srv, &srv->reflection);
  if (err != 0)
    goto fail;
  *out = srv;
  return 0;

fail:
  rt_health_free(srv->health);
  for (size_t i = 0; i < srv->n_entries; i++) {
    free(srv->entries[i].handles);
    free(srv->entries[i].slots);
  }
  free(srv->entries);
  grpc_server_destroy(srv->server);
  rt__count_server(rt, -1);
  free(srv);
  return err;
}

int rt_server_add_service(rt_server_t *srv, const rt_service_t *svc,
                          const void *impl, void *data) {
  if (srv == NULL || svc == NULL || impl == NULL || svc->dispatch == NULL)
    return UV_EINVAL;
  if (srv->started || srv->shutting_down)
    return UV_EBUSY;
  for (size_t i = 0; i < srv->n_entries; i++)
    if (strcmp(srv->entries[i].svc->name, svc->name) == 0)
      return UV_EEXIST;
  rt_entry_t *entries =
      realloc(srv->entries, (srv->n_entries + 1) * sizeof(*entries));
  if (entries == NULL)
    return UV_ENOMEM;
  srv->entries = entries;
  rt_entry_t *e = &entries[srv->n_entries];
  memset(e, 0, sizeof(*e));
  e->handles = calloc(svc->n_methods ? svc->n_methods : 1, sizeof(void *));
  e->slots = calloc((svc->n_methods ? svc->n_methods : 1) * RT_SLOTS,
                    sizeof(rt_slot_t));
  if (e->handles == NULL || e->slots == NULL) {
    free(e->handles);
    free(e->slots);
    return UV_ENOMEM;
  }
  e->svc = svc;
  e->impl = impl;
  e->data = data;
  for (size_t i = 0; i < svc->n_methods; i++) {
    const rt_method_t *m = &svc->methods[i];
    int reads_first = m->kind == RT_UNARY || m->kind == RT_SERVER_STREAMING;
    /* The path strings are static (generated), so they outlive gRPC. */
    e->handles[i] = grpc_server_register_method(
        srv->server, m->path, NULL,
        reads_first ? GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER
                    : GRPC_SRM_PAYLOAD_NONE,
        0);
    if (e->handles[i] == NULL) {
      /* Another service already owns this path. Methods registered so far
       * stay with gRPC but are never requested, so they are harmless. */
      free(e->handles);
      free(e->slots);
      return UV_EEXIST;
    }
  }
  /* Health and reflection register themselves before `reflection` is set;
   * it lists those on its own. */
  if (srv->reflection != NULL) {
    int err = rt_reflection_add_service(srv->reflection, svc->name);
    if (err != 0) {
      free(e->handles);
      free(e->slots);
      return err;
    }
  }
  srv->n_entries++;
  /* Entries moved: re-point the slots. */
  for (size_t i = 0; i < srv->n_entries; i++)
    for (size_t j = 0; j < srv->entries[i].svc->n_methods * RT_SLOTS; j++)
      srv->entries[i].slots[j].entry = &srv->entries[i];
  return 0;
}

int rt_server_listen(rt_server_t *srv, const char *addr, int *port_out) {
  return rt_server_listen_ex(srv, addr, port_out, NULL, 0);
}

int rt_server_listen_ex(rt_server_t *srv, const char *addr, int *port_out,
                        char *why, size_t why_len) {
  return rt_server_listen_creds(srv, addr, NULL, port_out, why, why_len);
}

int rt_server_listen_creds(rt_server_t *srv, const char *addr,
                           rt_creds_t *creds_in, int *port_out, char *why,
                           size_t why_len) {
  if (why_len > 0)
    why[0] = '\0';
  if (srv == NULL || addr == NULL)
    return UV_EINVAL;
  if (srv->started || srv->shutting_down)
    return UV_EBUSY;
  /* gRPC reports every failure as "address already in use": find the
   * real cause with a plain socket first. */
  int err = rt_addr_check_listen(addr, why, why_len);
  if (err != 0)
    return err;
  rt_addr_t a;
  rt_addr_parse(addr, &a, NULL, 0);
  if (a.is_unix) {
    struct stat st;
    if (stat(a.path, &st) == 0 && unlink(a.path) != 0) {
      int e = -errno;
      snprintf(why, why_len, "cannot replace %s: %s", a.path, uv_strerror(e));
      return e;
    }
  }
  rt_listener_t **ls =
      realloc(srv->listeners, (srv->n_listeners + 1) * sizeof(*ls));
  if (ls == NULL)
    return UV_ENOMEM;
  srv->listeners = ls;
  grpc_server_credentials *creds;
  rt_listener_t *l;
  err = rt__creds_server(creds_in, &creds, &l);
  if (err != 0) {
    snprintf(why, why_len, "cannot listen on %s: %s", addr,
             err == UV_EINVAL ? "client credentials given to a listener"
                              : uv_strerror(err));
    return err;
  }
  /* gRPC may call the fetcher until the server is destroyed. */
  if (l != NULL)
    srv->listeners[srv->n_listeners++] = l;
  /* The socket file gets its mode from the umask: keep it to 0660. */
  mode_t old_mask = a.is_unix ? umask(0117) : 0;
  int port = grpc_server_add_http2_port(srv->server, addr, creds);
  if (a.is_unix)
    umask(old_mask);
  grpc_server_credentials_release(creds);
  if (port <= 0) {
    snprintf(why, why_len, "cannot listen on %s", addr);
    return UV_EADDRINUSE;
  }
  if (a.is_unix) {
    struct stat st;
    if (stat(a.path, &st) != 0 ||
        ((st.st_mode & 0117) != 0 && chmod(a.path, st.st_mode & 0660) != 0)) {
      int e = -errno;
      snprintf(why, why_len, "cannot restrict the mode of %s: %s", a.path,
               uv_strerror(e));
      return e;
    }
  }
  if (port_out != NULL)
    *port_out = a.is_unix ? 0 : port;
  return 0;
}

int rt_server_start(rt_server_t *srv) {
  if (srv == NULL)
    return UV_EINVAL;
  if (srv->started || srv->shutting_down)
    return UV_EBUSY;
  grpc_server_start(srv->server);
  srv->started = 1;
  rt__hold(srv->rt);
  for (size_t i = 0; i < srv->n_entries; i++) {
    rt_entry_t *e = &srv->entries[i];
    for (size_t j = 0; j < e->svc->n_methods * RT_SLOTS; j++) {
      e->slots[j].tag.fn = on_slot;
      e->slots[j].srv = srv;
      e->slots[j].entry = e;
      e->slots[j].method = j / RT_SLOTS;
      slot_request(&e->slots[j]);
    }
  }
  slot_request(&srv->generic);
  rt_health_set(srv->health, "", 1);
  for (size_t i = 0; i < srv->n_entries; i++)
    rt_health_set(srv->health, srv->entries[i].svc->name, 1);
  return 0;
}

void rt_server_set_serving(rt_server_t *srv, const char *service, int serving) {
  if (srv != NULL && srv->health != NULL)
    rt_health_set(srv->health, service ? service : "", serving);
}

static void on_handle_closed(uv_handle_t *h) {
  rt_server_t *srv = h->data;
  srv->n_handles--;
  server_maybe_stopped(srv);
}

static void close_signals(rt_server_t *srv) {
  if (!srv->signals_on)
    return;
  srv->signals_on = 0;
  uv_close((uv_handle_t *)&srv->sigint, on_handle_closed);
  uv_close((uv_handle_t *)&srv->sigterm, on_handle_closed);
}

static void server_maybe_stopped(rt_server_t *srv) {
  if (!srv->shutting_down || srv->stopped)
    return;
  if (srv->started && !srv->shutdown_tag_done)
    return;
  if (srv->n_calls > 0 || srv->n_slots > 0)
    return;
  if (!uv_is_closing((uv_handle_t *)&srv->grace)) {
    uv_close((uv_handle_t *)&srv->grace, on_handle_closed);
    return; /* back here once it is closed */
  }
  if (srv->n_handles > 0)
    return;
  srv->stopped = 1;
  if (srv->started)
    rt__unhold(srv->rt);
  if (srv->stopped_cb != NULL)
    srv->stopped_cb(srv, srv->stopped_data);
}

static void on_shutdown_tag(rt_tag_t *tag, int ok) {
  rt_server_t *srv =
      (rt_server_t *)((char *)tag - offsetof(rt_server_t, shutdown_tag));
  srv->shutdown_tag_done = 1;
  uv_timer_stop(&srv->grace);
  server_maybe_stopped(srv);
}

static void on_grace(uv_timer_t *t) {
  rt_server_t *srv = t->data;
  if (srv->started) {
    grpc_server_cancel_all_calls(srv->server);
  } else {
    server_maybe_stopped(srv);
  }
}

int rt_server_shutdown(rt_server_t *srv, rt_server_stopped_cb cb, void *data) {
  if (srv == NULL)
    return UV_EINVAL;
  if (srv->shutting_down)
    return UV_EALREADY;
  int err = uv_timer_init(rt_loop(srv->rt), &srv->grace);
  if (err != 0)
    return err;
  srv->grace.data = srv;
  srv->n_handles++;
  srv->shutting_down = 1;
  srv->stopped_cb = cb;
  srv->stopped_data = data;
  close_signals(srv);
  /* Ends Watch streams now rather than after the grace period. */
  rt_health_shutdown(srv->health);
  if (srv->started) {
    srv->shutdown_tag.fn = on_shutdown_tag;
    grpc_server_shutdown_and_notify(srv->server, rt__cq(srv->rt),
                                    &srv->shutdown_tag);
    uv_timer_start(&srv->grace, on_grace, (uint64_t)srv->grace_ms, 0);
  } else {
    /* Never started: nothing in flight; report on the next iteration. */
    uv_timer_start(&srv->grace, on_grace, 0, 0);
  }
  return 0;
}

void rt_server_free(rt_server_t *srv) {
  if (srv == NULL)
    return;
  assert((srv->stopped || !srv->shutting_down) &&
         "rt_server_free: before the shutdown callback");
  assert(!srv->started || srv->stopped);
  rt_reflection_free(srv->reflection);
  rt_health_free(srv->health);
  grpc_server_destroy(srv->server);
  for (size_t i = 0; i < srv->n_listeners; i++)
    rt__listener_free(srv->listeners[i]);
  free(srv->listeners);
  for (size_t i = 0; i < srv->n_entries; i++) {
    free(srv->entries[i].handles);
    free(srv->entries[i].slots);
  }
  free(srv->entries);
  rt__count_server(srv->rt, -1);
  free(srv);
}

static void on_signal(uv_signal_t *h, int signum) {
  rt_server_t *srv = h->data;
  if (srv->shutting_down)
    return;
  rt_server_shutdown(srv, srv->signal_cb, srv->signal_data);
}

int rt_server_stop_on_signals(rt_server_t *srv, rt_server_stopped_cb cb,
                              void *data) {
  if (srv == NULL)
    return UV_EINVAL;
  if (srv->signals_on || srv->shutting_down)
    return UV_EBUSY;
  uv_loop_t *loop = rt_loop(srv->rt);
  int err = uv_signal_init(loop, &srv->sigint);
  if (err != 0)
    return err;
  err = uv_signal_init(loop, &srv->sigterm);
  if (err != 0) {
    srv->n_handles++;
    srv->sigint.data = srv;
    uv_close((uv_handle_t *)&srv->sigint, on_handle_closed);
    return err;
  }
  srv->sigint.data = srv;
  srv->sigterm.data = srv;
  srv->n_handles += 2;
  srv->signals_on = 1;
  srv->signal_cb = cb;
  srv->signal_data = data;
  if ((err = uv_signal_start(&srv->sigint, on_signal, SIGINT)) != 0 ||
      (err = uv_signal_start(&srv->sigterm, on_signal, SIGTERM)) != 0) {
    close_signals(srv);
    return err;
  }
  /* Signal handles must not keep the loop alive by themselves. */
  uv_unref((uv_handle_t *)&srv->sigint);
  uv_unref((uv_handle_t *)&srv->sigterm);
  return 0;
}
