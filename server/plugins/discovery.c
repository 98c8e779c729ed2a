/*
 * discovery.c - graph building with discovery through the plugins (see
 * discovery.h). Discovery is graph_expand() with a lister that calls each
 * node's plugin's ListDependents; a type whose plugin does not list
 * dependents has no children. The lister schedules the calls itself under
 * the same limits as activities: at most LIST_PARALLEL in flight for the
 * build, and a slot of the shared plugin limiter (limiter.h: the plugin's
 * and the type's max_concurrency, counted across every operation and every
 * build) for each call. A call over a limit waits in its type's queue,
 * which waits its turn in the limiter, and starts when the limiter grants
 * the queue a slot; the types take turns, so one saturated plugin does not
 * hold back the others. graph_expand()
 * itself runs without a limit, as every call it makes is either started or
 * queued here.
 *
 * A plugin's answer is checked like user input before the graph sees it
 * (valid_resource: type and id patterns, lengths, counts), so that no
 * bad id ever becomes a node. A failed or refused answer fails the build
 * and is recorded as the reason of the node that was listed, naming the
 * plugin.
 */
#include "discovery.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_wire.h"
#include "smaug/v1/plugin.smaug.h"
#include "valid.h"

#define LIST_TIMEOUT_MS 30000
#define LIST_PARALLEL   16

typedef struct list_call_s list_call_t;

/* The ListDependents calls of one resource type within a build: the FIFO
 * of calls waiting for a slot, and its place in the limiter. */
typedef struct list_type_s {
  const Smaug__V1__ResourceTypeInfo *ti; /* owned by the plugin */
  reg_plugin_t *p;
  struct build_s *b;
  lim_waiter_t wait;
  list_call_t *head, *tail;
} list_type_t;

typedef struct build_s {
  rt_t *rt;
  reg_t *reg;
  graph_t *g;
  Smaug__V1__ParameterSet *params; /* own unpacked copy, may be NULL */
  disc_cb cb;
  void *data;
  uv_timer_t timer; /* delivers results of builds without discovery */
  grpc_status_code code;
  char msg[512];
  lim_t *lim;     /* the shared limiter, or own_lim */
  lim_t *own_lim; /* without a shared one: the build's own */
  list_type_t **types;
  size_t n_types;
  unsigned running; /* ListDependents calls in flight */
  size_t turn;      /* the type that is asked first for its next call */
  int pumping;      /* inside pump() or a done callback: finish later */
  int expanded;     /* graph_expand ended; finish once not pumping */
  char **failed;    /* per node index: why it failed, or NULL */
  size_t n_failed;
} build_t;

struct list_call_s {
  build_t *b;
  list_call_t *next; /* in its type's queue while waiting */
  size_t type;       /* index in build_t.types */
  uint32_t index;    /* the node */
  graph_list_done_cb done;
  void *done_data;
  Smaug__V1__ListDependentsResponse *resp;
  char name[300];
};

static int kv_of_extra(const Smaug__V1__Resource *r, kv_t *kv) {
  kv_init(kv);
  for (size_t i = 0; i < r->n_extra; i++) {
    int err = kv_set(kv, r->extra[i]->key, r->extra[i]->value);
    if (err) {
      kv_free(kv);
      return err;
    }
  }
  return 0;
}

static void build_free(build_t *b) {
  /* The queues are empty here: graph_expand ends only once every call it
   * made was answered. */
  for (size_t i = 0; i < b->n_failed; i++)
    free(b->failed[i]);
  free(b->failed);
  for (size_t i = 0; i < b->n_types; i++) {
    lim_waiter_stop(&b->types[i]->wait);
    free(b->types[i]);
  }
  free(b->types);
  lim_free(b->own_lim);
  graph_free(b->g);
  if (b->params)
    protobuf_c_message_free_unpacked(&b->params->base, NULL);
  free(b);
}

static void set_error(build_t *b, grpc_status_code code, const char *msg) {
  if (b->code != GRPC_STATUS_OK)
    return; /* keep the first */
  b->code = code;
  snprintf(b->msg, sizeof(b->msg), "%s", msg);
}

static int has_plugin(void *data, const char *type) {
  return reg_find_type(data, type, NULL) != NULL;
}

/* Makes room for a reason per node below `n`. 0 or UV_ENOMEM. */
static int failed_grow(build_t *b, size_t n) {
  if (n <= b->n_failed)
    return 0;
  char **f = realloc(b->failed, n * sizeof(*f));
  if (f == NULL)
    return UV_ENOMEM;
  memset(f + b->n_failed, 0, (n - b->n_failed) * sizeof(*f));
  b->failed = f;
  b->n_failed = n;
  return 0;
}

/* Records why node `index` failed (the first reason is kept). Out of
 * memory only loses the reason: the build fails all the same. */
static void node_failed(build_t *b, uint32_t index, const char *reason) {
  if (failed_grow(b, (size_t)index + 1) == 0 && b->failed[index] == NULL)
    b->failed[index] = strdup(reason);
}

/* Fails the build and node `index` with the same message. */
static void fail_node(build_t *b, uint32_t index, grpc_status_code code,
                      const char *msg) {
  set_error(b, code, msg);
  node_failed(b, index, msg);
}

/* Validates and hands the graph over; frees the build. */
static void finish(build_t *b) {
  if (b->code == GRPC_STATUS_OK) {
    char err[400];
    int rc = graph_validate(b->g, has_plugin, b->reg, err, sizeof(err));
    if (rc == GRAPH_ECYCLE) {
      snprintf(b->msg, sizeof(b->msg), "resource graph has a cycle: %s", err);
      b->code = GRPC_STATUS_INVALID_ARGUMENT;
    } else if (rc) {
      /* A stored plan or checkpoint whose type lost its plugin
       * (UnregisterPlugin) is a valid request in the wrong state. */
      snprintf(b->msg, sizeof(b->msg), "resource graph: %s", err);
      b->code = rc == UV_ENOMEM         ? GRPC_STATUS_RESOURCE_EXHAUSTED
                : rc == GRAPH_ENOPLUGIN ? GRPC_STATUS_FAILED_PRECONDITION
                                        : GRPC_STATUS_INVALID_ARGUMENT;
    }
  }
  graph_t *g = b->g;
  b->g = NULL;
  if (b->code == GRPC_STATUS_OK) {
    b->cb(g, GRPC_STATUS_OK, "", NULL, b->data);
  } else {
    int room = failed_grow(b, g ? graph_count(g) : 0) == 0;
    b->cb(g, b->code, b->msg, room ? (const char *const *)b->failed : NULL,
          b->data);
  }
  build_free(b);
}

static void timer_closed(uv_handle_t *h) {
  finish(h->data);
}

static void timer_fired(uv_timer_t *t) {
  uv_close((uv_handle_t *)t, timer_closed);
}

static void pump(build_t *b);

static void list_msg(rt_client_call_t *call, const ProtobufCMessage *msg,
                     void *data) {
  list_call_t *lc = data;
  size_t n = protobuf_c_message_get_packed_size(msg);
  uint8_t *buf = malloc(n ? n : 1);
  if (buf == NULL)
    return;
  protobuf_c_message_pack(msg, buf);
  if (lc->resp)
    protobuf_c_message_free_unpacked(&lc->resp->base, NULL);
  lc->resp = smaug__v1__list_dependents_response__unpack(NULL, n, buf);
  free(buf);
}

/* Checks the dependents of a ListDependents answer like user input.
 * Returns OK, or FAILED_PRECONDITION with a message naming the field and
 * the bad value. */
static grpc_status_code
check_dependents(const Smaug__V1__ListDependentsResponse *resp, char *msg,
                 size_t len) {
  if (resp->n_dependents > VALID_MAX_DEPENDENTS) {
    snprintf(msg, len, "dependents: %zu resources, more than the limit of %d",
             resp->n_dependents, VALID_MAX_DEPENDENTS);
    return GRPC_STATUS_FAILED_PRECONDITION;
  }
  for (size_t i = 0; i < resp->n_dependents; i++) {
    char f[64];
    snprintf(f, sizeof(f), "dependents[%zu]", i);
    if (valid_resource(f, resp->dependents[i], msg, len))
      return GRPC_STATUS_FAILED_PRECONDITION;
  }
  return GRPC_STATUS_OK;
}

/* Hands the answer of `lc` to the graph. The graph may add nodes (and call
 * the lister) or end the expansion from inside. */
static void list_answer(list_call_t *lc, grpc_status_code code,
                        const char *message) {
  build_t *b = lc->b;
  const reg_plugin_t *p = b->types[lc->type]->p;
  char msg[1024], why[512];
  grpc_status_code rc = code;
  if (code != GRPC_STATUS_OK || lc->resp == NULL) {
    snprintf(why, sizeof(why), "%s: %s", rt_status_name(code),
             message ? message : "");
    rc = code == GRPC_STATUS_OK                  ? GRPC_STATUS_INTERNAL
         : code == GRPC_STATUS_DEADLINE_EXCEEDED ? GRPC_STATUS_UNAVAILABLE
                                                 : code;
  } else {
    rc = check_dependents(lc->resp, why, sizeof(why));
  }
  if (rc != GRPC_STATUS_OK) {
    snprintf(msg, sizeof(msg),
             "ListDependents of %s failed: plugin %s (%s): %s", lc->name,
             reg_plugin_name(p), reg_plugin_address(p), why);
    rt_utf8_repair(msg); /* the plugin's message, maybe cut */
    fail_node(b, lc->index, rc, msg);
    lc->done(lc->done_data, UV_EIO, NULL, 0, msg);
    return;
  }
  size_t n = lc->resp->n_dependents;
  graph_child_t *kids = calloc(n ? n : 1, sizeof(*kids));
  kv_t *extras = calloc(n ? n : 1, sizeof(*extras));
  int err = kids && extras ? 0 : UV_ENOMEM;
  size_t made = 0;
  for (; made < n && err == 0; made++) {
    const Smaug__V1__Resource *r = lc->resp->dependents[made];
    if ((err = kv_of_extra(r, &extras[made])) != 0)
      break;
    kids[made] = (graph_child_t){r->type, r->id, r->name, &extras[made]};
  }
  if (err) {
    set_error(b, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    lc->done(lc->done_data, err, NULL, 0, "out of memory");
  } else {
    lc->done(lc->done_data, 0, kids, n, NULL);
  }
  for (size_t i = 0; i < made && extras; i++)
    kv_free(&extras[i]);
  free(kids);
  free(extras);
}

static void list_done(rt_client_call_t *call, grpc_status_code code,
                      const char *message, void *data) {
  list_call_t *lc = data;
  build_t *b = lc->b;
  list_type_t *t = b->types[lc->type];
  b->running--;
  /* Hold finish() back while the graph runs its callbacks: the freed slot
   * is handed on by pump() below, which then finishes if it was the end. */
  int outer = b->pumping;
  b->pumping = 1;
  list_answer(lc, code, message);
  lim_release(t->wait.key);
  b->pumping = outer;
  if (lc->resp)
    protobuf_c_message_free_unpacked(&lc->resp->base, NULL);
  free(lc);
  if (!outer)
    pump(b);
}

/* Starts the RPC of `lc` for node lc->index. Returns 0 (list_done runs
 * later) or an error (it never runs). */
static int list_start(build_t *b, list_call_t *lc) {
  const graph_node_t *node = graph_node(b->g, lc->index);
  reg_plugin_t *p = b->types[lc->type]->p;
  kv_t merged;
  kv_init(&merged);
  int err = valid_params_merge(b->params, node->type, node->id, &merged);
  Smaug__V1__Resource res = SMAUG__V1__RESOURCE__INIT;
  Smaug__V1__Resource__ExtraEntry *ex = calloc(node->extra.n + 1, sizeof(*ex));
  Smaug__V1__Resource__ExtraEntry **exp =
      calloc(node->extra.n + 1, sizeof(*exp));
  Smaug__V1__ListDependentsRequest__ParametersEntry *pe =
      calloc(merged.n + 1, sizeof(*pe));
  Smaug__V1__ListDependentsRequest__ParametersEntry **pep =
      calloc(merged.n + 1, sizeof(*pep));
  if (err == 0 && (!ex || !exp || !pe || !pep))
    err = UV_ENOMEM;
  if (err == 0) {
    res.type = (char *)node->type;
    res.id = node->id;
    res.name = node->name;
    for (size_t i = 0; i < node->extra.n; i++) {
      smaug__v1__resource__extra_entry__init(&ex[i]);
      ex[i].key = node->extra.items[i].key;
      ex[i].value = node->extra.items[i].val;
      exp[i] = &ex[i];
    }
    res.n_extra = node->extra.n;
    res.extra = exp;
    Smaug__V1__ListDependentsRequest req =
        SMAUG__V1__LIST_DEPENDENTS_REQUEST__INIT;
    req.resource = &res;
    for (size_t i = 0; i < merged.n; i++) {
      smaug__v1__list_dependents_request__parameters_entry__init(&pe[i]);
      pe[i].key = merged.items[i].key;
      pe[i].value = merged.items[i].val;
      pep[i] = &pe[i];
    }
    req.n_parameters = merged.n;
    req.parameters = pep;
    rt_call_opts_t o = {.timeout_ms = LIST_TIMEOUT_MS};
    err = smaug_v1_protection_plugin_list_dependents(
        reg_plugin_channel(p), &req, &o, list_msg, list_done, lc, NULL);
  }
  kv_free(&merged);
  free(ex);
  free(exp);
  free(pe);
  free(pep);
  return err;
}

/* Takes the next call to start off its queue: after an error any waiting
 * call (to be failed); otherwise the first one, taking the types in turn,
 * for which the limiter gives a slot (taken here). NULL if none. */
static list_call_t *next_call(build_t *b) {
  int failing = b->code != GRPC_STATUS_OK;
  if (!failing && b->running >= LIST_PARALLEL)
    return NULL;
  for (size_t k = 0; k < b->n_types; k++) {
    size_t i = (b->turn + k) % b->n_types;
    list_type_t *t = b->types[i];
    if (t->head == NULL)
      continue;
    if (!failing && !lim_take(&t->wait))
      continue;
    list_call_t *lc = t->head;
    t->head = lc->next;
    if (t->head == NULL)
      t->tail = NULL;
    lc->next = NULL;
    b->turn = (i + 1) % b->n_types;
    return lc;
  }
  return NULL;
}

/* Starts the waiting calls that the limits allow, or fails them all once
 * the build has an error. Then finishes the build if the expansion ended
 * meanwhile. Reentrant calls return at once; the outer loop sees their
 * work. */
static void pump(build_t *b) {
  if (b->pumping)
    return;
  b->pumping = 1;
  list_call_t *lc;
  while ((lc = next_call(b)) != NULL) {
    list_type_t *t = b->types[lc->type];
    char msg[512];
    int err;
    if (b->code != GRPC_STATUS_OK) {
      snprintf(msg, sizeof(msg),
               "ListDependents of %s not started: an earlier call failed",
               lc->name);
      err = UV_ECANCELED;
    } else {
      b->running++;
      if ((err = list_start(b, lc)) == 0)
        continue;
      b->running--;
      lim_release(t->wait.key);
      snprintf(msg, sizeof(msg), "ListDependents of %s failed to start: %s",
               lc->name, uv_strerror(err));
      fail_node(b, lc->index,
                err == UV_ENOMEM ? GRPC_STATUS_RESOURCE_EXHAUSTED
                                 : GRPC_STATUS_INTERNAL,
                msg);
    }
    lc->done(lc->done_data, err, NULL, 0, msg);
    free(lc);
  }
  /* A queue with nothing left to start gives back what it was granted. */
  for (size_t i = 0; i < b->n_types; i++)
    if (b->types[i]->head == NULL)
      lim_waiter_stop(&b->types[i]->wait);
  b->pumping = 0;
  if (b->expanded)
    finish(b);
}

/* The limiter granted a slot to the queue of type `data`. */
static void granted(lim_waiter_t *w, void *data) {
  list_type_t *t = data;
  pump(t->b);
}

/* The slot of (p, ti) in b->types, added on first use with its limiter
 * key (the limits p announces now); -1: no memory. */
static long type_slot(build_t *b, reg_plugin_t *p,
                      const Smaug__V1__ResourceTypeInfo *ti) {
  for (size_t i = 0; i < b->n_types; i++)
    if (b->types[i]->ti == ti)
      return (long)i;
  lim_key_t *k =
      lim_key(b->lim, reg_plugin_name(p), reg_plugin_info(p)->max_concurrency,
              ti->type, ti->max_concurrency);
  list_type_t **ts = realloc(b->types, (b->n_types + 1) * sizeof(*b->types));
  if (ts != NULL)
    b->types = ts;
  list_type_t *t = k && ts ? calloc(1, sizeof(*t)) : NULL;
  if (t == NULL)
    return -1;
  t->ti = ti;
  t->p = p;
  t->b = b;
  lim_waiter_init(&t->wait, k, granted, t, b);
  b->types[b->n_types] = t;
  return (long)b->n_types++;
}

static int lister(void *data, uint32_t index, const graph_node_t *node,
                  graph_list_done_cb done, void *done_data) {
  build_t *b = data;
  const Smaug__V1__ResourceTypeInfo *ti;
  char msg[512];
  reg_plugin_t *p = reg_find_type(b->reg, node->type, &ti);
  if (p == NULL) {
    snprintf(msg, sizeof(msg), "no plugin provides resource type %s (%s#%s)",
             node->type, node->type, node->id);
    fail_node(b, index, GRPC_STATUS_FAILED_PRECONDITION, msg);
    done(done_data, GRAPH_ENOPLUGIN, NULL, 0, msg);
    return 0;
  }
  if (!ti->lists_dependents) {
    done(done_data, 0, NULL, 0, NULL);
    return 0;
  }
  if (!reg_plugin_available(p)) {
    snprintf(msg, sizeof(msg), "plugin %s (%s) is unavailable: %s",
             reg_plugin_name(p), reg_plugin_address(p), reg_plugin_reason(p));
    fail_node(b, index, GRPC_STATUS_UNAVAILABLE, msg);
    done(done_data, UV_ECONNREFUSED, NULL, 0, msg);
    return 0;
  }
  long slot = type_slot(b, p, ti);
  list_call_t *lc = slot < 0 ? NULL : calloc(1, sizeof(*lc));
  if (lc == NULL)
    return UV_ENOMEM;
  lc->b = b;
  lc->type = (size_t)slot;
  lc->index = index;
  lc->done = done;
  lc->done_data = done_data;
  snprintf(lc->name, sizeof(lc->name), "%s#%s", node->type, node->id);
  list_type_t *t = b->types[lc->type];
  if (t->tail)
    t->tail->next = lc;
  else
    t->head = lc;
  t->tail = lc;
  pump(b);
  return 0;
}

static void expanded(graph_t *g, int status, const char *errmsg, void *data) {
  build_t *b = data;
  if (status && b->code == GRPC_STATUS_OK)
    set_error(b,
              status == GRAPH_ENOPLUGIN ? GRPC_STATUS_FAILED_PRECONDITION
              : status == GRAPH_ETOOBIG || status == GRAPH_ECONFLICT
                  ? GRPC_STATUS_INVALID_ARGUMENT
                  : GRPC_STATUS_INTERNAL,
              errmsg ? errmsg : uv_strerror(status));
  b->expanded = 1;
  if (!b->pumping)
    finish(b);
}

int disc_build(rt_t *rt, reg_t *reg, lim_t *lim,
               Smaug__V1__Resource *const *resources, size_t n_resources,
               Smaug__V1__ResourceEdge *const *edges, size_t n_edges,
               const Smaug__V1__ParameterSet *params, int discover, disc_cb cb,
               void *data) {
  build_t *b = calloc(1, sizeof(*b));
  if (b == NULL)
    return UV_ENOMEM;
  if (lim == NULL && lim_new(&b->own_lim) != 0) {
    free(b);
    return UV_ENOMEM;
  }
  b->lim = lim ? lim : b->own_lim;
  b->rt = rt;
  b->reg = reg;
  b->cb = cb;
  b->data = data;
  if (graph_new(&b->g) != 0) {
    build_free(b); /* the build's own limiter too */
    return UV_ENOMEM;
  }
  if (params) {
    size_t n = protobuf_c_message_get_packed_size(&params->base);
    uint8_t *buf = malloc(n ? n : 1);
    if (buf == NULL) {
      build_free(b);
      return UV_ENOMEM;
    }
    protobuf_c_message_pack(&params->base, buf);
    b->params = smaug__v1__parameter_set__unpack(NULL, n, buf);
    free(buf);
    if (b->params == NULL) {
      build_free(b);
      return UV_ENOMEM;
    }
  }
  char err[400];
  for (size_t i = 0; i < n_resources && b->code == GRPC_STATUS_OK; i++) {
    const Smaug__V1__Resource *r = resources[i];
    /* Plans are checked when stored; this also covers what an older
     * version stored, so that no bad id reaches a bank section. */
    char f[64], msg[512];
    snprintf(f, sizeof(f), "resources[%zu]", i);
    if (valid_resource(f, r, msg, sizeof(msg)) != GRPC_STATUS_OK) {
      set_error(b, GRPC_STATUS_INVALID_ARGUMENT, msg);
      break;
    }
    kv_t extra;
    if (kv_of_extra(r, &extra) != 0) {
      build_free(b);
      return UV_ENOMEM;
    }
    int rc = graph_add_node(b->g, r->type, r->id, r->name, &extra, NULL, NULL,
                            err, sizeof(err));
    kv_free(&extra);
    if (rc == UV_ENOMEM) {
      build_free(b);
      return UV_ENOMEM;
    }
    if (rc)
      set_error(b, GRPC_STATUS_INVALID_ARGUMENT, err);
  }
  for (size_t i = 0; i < n_edges && b->code == GRPC_STATUS_OK; i++) {
    const Smaug__V1__ResourceEdge *e = edges[i];
    int rc =
        graph_add_edge_by_key(b->g, e->parent_type, e->parent_id, e->child_type,
                              e->child_id, err, sizeof(err));
    if (rc)
      set_error(b, GRPC_STATUS_INVALID_ARGUMENT, err);
  }
  if (b->code == GRPC_STATUS_OK && discover && n_edges == 0 &&
      n_resources > 0) {
    graph_lister_t l = {lister, b};
    int rc = graph_expand(b->g, &l, 0, expanded, b);
    if (rc == 0)
      return 0;
    set_error(b, GRPC_STATUS_INVALID_ARGUMENT, uv_strerror(rc));
  }
  /* No discovery: deliver from the next loop iteration. */
  uv_timer_init(rt_loop(rt), &b->timer);
  b->timer.data = b;
  uv_timer_start(&b->timer, timer_fired, 0, 0);
  return 0;
}
