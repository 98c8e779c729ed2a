/*
 * fake_plugin.c - a scriptable protection plugin for smaugd's integration
 * tests, written directly on the runtime (no SDK), so that the tests see
 * exactly what goes over the wire.
 *
 * Flags:
 *   --listen ADDR           host:port (0: ephemeral) or unix:/path
 *   --name NAME             plugin name (default fake)
 *   --types T1,T2           resource types served (P and S for all ops)
 *   --no-parallel TYPE      TYPE does not implement ParallelActivity
 *   --lists-dependents      children come from the resource's extra
 *                           "children" = "type/id;type/id"
 *   --delay-ms N            every activity takes N ms (progress every 50)
 *   --progress-burst N      sends N progress messages every 50 ms instead
 *                           of one (a plugin that floods progress)
 *   --fail-id ID            activities of resource ID fail with INTERNAL
 *   --trace FILE            appends "<P|S> <idempotency key> <attempt>"
 *                           per call, flushed at once
 *   --protocol-major N      announced protocol major version
 *   --options-schema JSON   protect parameter schema of every type
 *   --restore-schema JSON   restore parameter schema of every type
 *   --max-concurrency N     announced plugin-wide max_concurrency
 *   --type-max-concurrency N  announced max_concurrency of every type
 *   --list-delay-ms N       ListDependents answers after N ms
 *   --list-fail-id ID       ListDependents of resource ID fails with
 *                           INTERNAL
 *   --list-trace FILE       appends "L+ <in flight>" when a ListDependents
 *                           call arrives and "L- <in flight>" when it is
 *                           answered, flushed at once
 *   --call-trace FILE       appends "+ <in flight> <A|L>" when an activity
 *                           (A) or ListDependents (L) call arrives and
 *                           "- <in flight>" when it ends, counting both
 *                           kinds together, flushed at once
 *   --request-trace FILE    appends, flushed at once, per activity call
 *                           "A <P|S> <protect|restore|delete> <type>#<id>
 *                           <bank_section> <k=v,k=v|->" (parameters sorted
 *                           by key) and per CancelOperation
 *                           "C <operation id> <reason>"
 *   --restored-id ID        Sync results carry restored_id ID
 *   --two-results           activities send their result twice
 *   --progress-bytes N      progress messages are N bytes long
 *   --metadata-count N      Sync results carry N more metadata entries
 *   --name-bytes N          the plugin name is N bytes ("nnn...")
 * It logs "msg=listening addr=..." like smaugd and stops on SIGTERM.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"
#include "rt_log.h"
#include "smaug/v1/plugin.smaug.h"

typedef struct fake_s {
  rt_server_t *srv;
  const char *name;
  char **types;
  size_t n_types;
  const char *no_parallel;
  int lists_dependents;
  int delay_ms;
  int progress_burst;
  const char *fail_id;
  FILE *trace;
  unsigned protocol_major;
  const char *options_schema;
  const char *restore_schema;
  unsigned max_concurrency;
  unsigned type_max_concurrency;
  int list_delay_ms;
  const char *list_fail_id;
  FILE *list_trace;
  unsigned list_inflight;
  FILE *call_trace;
  unsigned call_inflight; /* activities and ListDependents */
  FILE *request_trace;
  const char *restored_id;
  int two_results;
  char *progress_text;
  int metadata_count;
} fake_t;

static fake_t F = {.name = "fake", .protocol_major = 1};
static uv_loop_t *loop;

/* One activity call in progress. */
typedef struct act_s {
  rt_call_t *call;
  uv_timer_t timer;
  int sync;
  int left_ms;
  uint64_t done;
  char *id;
  char *type;
  char *state_in; /* S: the state it received */
  char *op_id;
  size_t n_children;
  int saved_ok; /* restore/delete: saved_metadata came from our protect */
  int ended;
} act_t;

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void act_closed(uv_handle_t *h) {
  act_t *a = h->data;
  free(a->id);
  free(a->type);
  free(a->state_in);
  free(a->op_id);
  free(a);
}

/* Counts a call in ('+', with its kind) or out ('-') for --call-trace. */
static void call_trace(char sign, char kind) {
  F.call_inflight += sign == '+' ? 1 : -1;
  if (F.call_trace) {
    if (sign == '+')
      fprintf(F.call_trace, "+ %u %c\n", F.call_inflight, kind);
    else
      fprintf(F.call_trace, "- %u\n", F.call_inflight);
    fflush(F.call_trace);
  }
}

static void act_end(act_t *a) {
  a->ended = 1;
  call_trace('-', 'A');
  uv_timer_stop(&a->timer);
  uv_close((uv_handle_t *)&a->timer, act_closed);
}

static void act_finish(act_t *a) {
  if (F.fail_id && strcmp(a->id, F.fail_id) == 0) {
    rt_call_fail(a->call, GRPC_STATUS_INTERNAL, "injected failure for %s",
                 a->id);
    act_end(a);
    return;
  }
  if (!a->sync) {
    char state[300];
    snprintf(state, sizeof(state), "state:%s", a->id);
    Smaug__V1__ParallelResult r = SMAUG__V1__PARALLEL_RESULT__INIT;
    r.state.data = (uint8_t *)state;
    r.state.len = strlen(state);
    Smaug__V1__ParallelActivityResponse resp =
        SMAUG__V1__PARALLEL_ACTIVITY_RESPONSE__INIT;
    resp.event_case = SMAUG__V1__PARALLEL_ACTIVITY_RESPONSE__EVENT_RESULT;
    resp.result = &r;
    if (F.two_results)
      rt_call_send(a->call, &resp.base);
    rt_call_finish(a->call, GRPC_STATUS_OK, NULL, &resp.base);
  } else {
    char want[300], kids[32], restored[300];
    snprintf(want, sizeof(want), "state:%s", a->id);
    snprintf(kids, sizeof(kids), "%zu", a->n_children);
    snprintf(restored, sizeof(restored), "%s-r", a->id);
    size_t nm = 4 + (size_t)F.metadata_count;
    Smaug__V1__SyncResult__MetadataEntry *m = calloc(nm, sizeof(*m));
    Smaug__V1__SyncResult__MetadataEntry **mp = calloc(nm, sizeof(*mp));
    char(*extra)[24] = calloc(nm, sizeof(*extra));
    const char *keys[4] = {"plugin", "state_ok", "children", "saved_ok"};
    const char *vals[4] = {
        F.name, a->state_in && strcmp(a->state_in, want) == 0 ? "1" : "0", kids,
        a->saved_ok ? "1" : "0"};
    for (size_t i = 0; i < nm; i++) {
      smaug__v1__sync_result__metadata_entry__init(&m[i]);
      snprintf(extra[i], sizeof(extra[i]), "k%zu", i);
      m[i].key = i < 4 ? (char *)keys[i] : extra[i];
      m[i].value = i < 4 ? (char *)vals[i] : "v";
      mp[i] = &m[i];
    }
    Smaug__V1__SyncResult r = SMAUG__V1__SYNC_RESULT__INIT;
    r.n_metadata = nm;
    r.metadata = mp;
    r.restored_id = F.restored_id ? (char *)F.restored_id : restored;
    Smaug__V1__SyncActivityResponse resp =
        SMAUG__V1__SYNC_ACTIVITY_RESPONSE__INIT;
    resp.event_case = SMAUG__V1__SYNC_ACTIVITY_RESPONSE__EVENT_RESULT;
    resp.result = &r;
    if (F.two_results)
      rt_call_send(a->call, &resp.base);
    rt_call_finish(a->call, GRPC_STATUS_OK, NULL, &resp.base);
    free(m);
    free(mp);
    free(extra);
  }
  act_end(a);
}

static void act_tick(uv_timer_t *t) {
  act_t *a = t->data;
  if (a->left_ms <= 0) {
    act_finish(a);
    return;
  }
  for (int i = 0; i < (F.progress_burst > 0 ? F.progress_burst : 1); i++) {
    Smaug__V1__Progress pr = SMAUG__V1__PROGRESS__INIT;
    pr.done = ++a->done;
    pr.unit = "ticks";
    pr.message = F.progress_text;
    if (a->sync) {
      Smaug__V1__SyncActivityResponse r =
          SMAUG__V1__SYNC_ACTIVITY_RESPONSE__INIT;
      r.event_case = SMAUG__V1__SYNC_ACTIVITY_RESPONSE__EVENT_PROGRESS;
      r.progress = &pr;
      rt_call_send(a->call, &r.base);
    } else {
      Smaug__V1__ParallelActivityResponse r =
          SMAUG__V1__PARALLEL_ACTIVITY_RESPONSE__INIT;
      r.event_case = SMAUG__V1__PARALLEL_ACTIVITY_RESPONSE__EVENT_PROGRESS;
      r.progress = &pr;
      rt_call_send(a->call, &r.base);
    }
  }
  int step = a->left_ms < 50 ? a->left_ms : 50;
  a->left_ms -= step;
  uv_timer_start(&a->timer, act_tick, (uint64_t)step, 0);
}

static void act_cancelled(rt_call_t *call, void *data) {
  act_t *a = data;
  if (a->ended)
    return;
  rt_call_finish(call, GRPC_STATUS_CANCELLED, "cancelled", NULL);
  act_end(a);
}

static void activity(rt_call_t *call, const Smaug__V1__ActivityRequest *req,
                     int sync) {
  if (req->resource == NULL || req->operation == NULL) {
    rt_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "resource: required");
    return;
  }
  if (F.trace) {
    fprintf(F.trace, "%c %s %u\n", sync ? 'S' : 'P', req->idempotency_key,
            req->attempt);
    fflush(F.trace);
  }
  if (F.request_trace) {
    static const char *kinds[] = {"unspecified", "protect", "restore",
                                  "delete"};
    unsigned k = (unsigned)req->operation->kind;
    fprintf(F.request_trace, "A %c %s %s#%s %s ", sync ? 'S' : 'P',
            k < 4 ? kinds[k] : "unknown", req->resource->type,
            req->resource->id, req->bank_section);
    /* Sorted by key, so that a test compares one string. */
    size_t n = req->n_parameters;
    char **keys = calloc(n + 1, sizeof(*keys));
    for (size_t i = 0; i < n; i++)
      keys[i] = req->parameters[i]->key;
    qsort(keys, n, sizeof(*keys), cmp_str);
    for (size_t i = 0; i < n; i++)
      for (size_t j = 0; j < n; j++)
        if (req->parameters[j]->key == keys[i])
          fprintf(F.request_trace, "%s%s=%s", i ? "," : "", keys[i],
                  req->parameters[j]->value);
    fprintf(F.request_trace, "%s\n", n ? "" : "-");
    fflush(F.request_trace);
    free(keys);
  }
  act_t *a = calloc(1, sizeof(*a));
  call_trace('+', 'A');
  a->call = call;
  a->sync = sync;
  a->left_ms = F.delay_ms;
  a->id = strdup(req->resource->id);
  a->type = strdup(req->resource->type);
  a->op_id = strdup(req->operation->id);
  a->n_children = req->n_children;
  for (size_t i = 0; i < req->n_saved_metadata; i++)
    if (strcmp(req->saved_metadata[i]->key, "plugin") == 0 &&
        strcmp(req->saved_metadata[i]->value, F.name) == 0)
      a->saved_ok = 1;
  if (sync && req->state.len) {
    a->state_in = malloc(req->state.len + 1);
    memcpy(a->state_in, req->state.data, req->state.len);
    a->state_in[req->state.len] = '\0';
  }
  uv_timer_init(loop, &a->timer);
  a->timer.data = a;
  rt_call_on_cancel(call, act_cancelled, a);
  uv_timer_start(&a->timer, act_tick, 0, 0);
}

static void h_parallel(rt_call_t *call, const Smaug__V1__ActivityRequest *req,
                       void *data) {
  activity(call, req, 0);
}

static void h_sync(rt_call_t *call, const Smaug__V1__ActivityRequest *req,
                   void *data) {
  activity(call, req, 1);
}

static void h_info(rt_call_t *call, const Smaug__V1__GetPluginInfoRequest *req,
                   void *data) {
  Smaug__V1__ResourceTypeInfo *ti = calloc(F.n_types, sizeof(*ti));
  Smaug__V1__ResourceTypeInfo **tp = calloc(F.n_types, sizeof(*tp));
  Smaug__V1__OperationSupport *all[64][3];
  for (size_t i = 0; i < F.n_types && i < 64; i++) {
    smaug__v1__resource_type_info__init(&ti[i]);
    ti[i].type = F.types[i];
    int np = F.no_parallel && strcmp(F.no_parallel, F.types[i]) == 0;
    for (int k = 0; k < 3; k++) {
      Smaug__V1__OperationSupport *o = malloc(sizeof(*o));
      smaug__v1__operation_support__init(o);
      o->kind = (Smaug__V1__OperationKind)(k + 1);
      o->parallel = !np;
      o->sync = 1;
      all[i][k] = o;
    }
    ti[i].n_operations = 3;
    ti[i].operations = all[i];
    ti[i].lists_dependents = F.lists_dependents;
    ti[i].max_concurrency = F.type_max_concurrency;
    ti[i].options_schema = (char *)(F.options_schema ? F.options_schema : "");
    ti[i].restore_schema = (char *)(F.restore_schema ? F.restore_schema : "");
    tp[i] = &ti[i];
  }
  Smaug__V1__GetPluginInfoResponse resp =
      SMAUG__V1__GET_PLUGIN_INFO_RESPONSE__INIT;
  resp.name = (char *)F.name;
  resp.version = "0.0.1";
  resp.protocol_major = F.protocol_major;
  resp.n_types = F.n_types;
  resp.types = tp;
  resp.max_concurrency = F.max_concurrency;
  rt_call_reply(call, &resp.base);
  for (size_t i = 0; i < F.n_types && i < 64; i++)
    for (int k = 0; k < 3; k++)
      free(all[i][k]);
  free(ti);
  free(tp);
}

static void list_trace(char sign) {
  if (F.list_trace) {
    fprintf(F.list_trace, "L%c %u\n", sign, F.list_inflight);
    fflush(F.list_trace);
  }
}

/* One ListDependents call, answered after --list-delay-ms. */
typedef struct lst_s {
  rt_call_t *call;
  uv_timer_t timer;
  char *spec; /* the resource's "children" extra */
  char *id;
  int ended;
} lst_t;

static void lst_closed(uv_handle_t *h) {
  lst_t *l = h->data;
  free(l->spec);
  free(l->id);
  free(l);
}

static void lst_end(lst_t *l) {
  l->ended = 1;
  F.list_inflight--;
  list_trace('-');
  call_trace('-', 'L');
  uv_timer_stop(&l->timer);
  uv_close((uv_handle_t *)&l->timer, lst_closed);
}

static void lst_answer(uv_timer_t *t) {
  lst_t *l = t->data;
  if (F.list_fail_id && strcmp(l->id, F.list_fail_id) == 0) {
    rt_call_fail(l->call, GRPC_STATUS_INTERNAL, "injected failure for %s",
                 l->id);
    lst_end(l);
    return;
  }
  Smaug__V1__Resource kids[64], *kp[64];
  char *copy = strdup(l->spec), *save = NULL;
  size_t n = 0;
  for (char *tok = strtok_r(copy, ";", &save); tok && n < 64;
       tok = strtok_r(NULL, ";", &save)) {
    char *slash = strchr(tok, '/');
    if (slash == NULL)
      continue;
    *slash = '\0';
    smaug__v1__resource__init(&kids[n]);
    kids[n].type = tok;
    kids[n].id = slash + 1;
    kp[n] = &kids[n];
    n++;
  }
  Smaug__V1__ListDependentsResponse resp =
      SMAUG__V1__LIST_DEPENDENTS_RESPONSE__INIT;
  resp.n_dependents = n;
  resp.dependents = kp;
  rt_call_reply(l->call, &resp.base);
  free(copy);
  lst_end(l);
}

static void lst_cancelled(rt_call_t *call, void *data) {
  lst_t *l = data;
  if (l->ended)
    return;
  rt_call_finish(call, GRPC_STATUS_CANCELLED, "cancelled", NULL);
  lst_end(l);
}

static void h_list(rt_call_t *call, const Smaug__V1__ListDependentsRequest *req,
                   void *data) {
  const char *spec = NULL;
  for (size_t i = 0; req->resource && i < req->resource->n_extra; i++)
    if (strcmp(req->resource->extra[i]->key, "children") == 0)
      spec = req->resource->extra[i]->value;
  lst_t *l = calloc(1, sizeof(*l));
  l->call = call;
  l->spec = strdup(spec ? spec : "");
  l->id = strdup(req->resource && req->resource->id ? req->resource->id : "");
  F.list_inflight++;
  list_trace('+');
  call_trace('+', 'L');
  uv_timer_init(loop, &l->timer);
  l->timer.data = l;
  if (F.list_delay_ms == 0) {
    lst_answer(&l->timer); /* at once, as without the flag */
    return;
  }
  rt_call_on_cancel(call, lst_cancelled, l);
  uv_timer_start(&l->timer, lst_answer, (uint64_t)F.list_delay_ms, 0);
}

static void h_cancel(rt_call_t *call,
                     const Smaug__V1__CancelOperationRequest *req, void *data) {
  if (F.request_trace) {
    fprintf(F.request_trace, "C %s %s\n", req->operation_id, req->reason);
    fflush(F.request_trace);
  }
  Smaug__V1__CancelOperationResponse resp =
      SMAUG__V1__CANCEL_OPERATION_RESPONSE__INIT;
  rt_call_reply(call, &resp.base);
}

static const smaug_v1_protection_plugin_handlers_t handlers = {
    .get_plugin_info = h_info,
    .list_dependents = h_list,
    .parallel_activity = h_parallel,
    .sync_activity = h_sync,
    .cancel_operation = h_cancel,
};

static void stopped(rt_server_t *srv, void *data) {}

int main(int argc, char **argv) {
  static const struct option opts[] = {
      {"listen", required_argument, NULL, 'l'},
      {"name", required_argument, NULL, 'n'},
      {"types", required_argument, NULL, 't'},
      {"no-parallel", required_argument, NULL, 'N'},
      {"lists-dependents", no_argument, NULL, 'd'},
      {"delay-ms", required_argument, NULL, 'D'},
      {"progress-burst", required_argument, NULL, 'U'},
      {"fail-id", required_argument, NULL, 'f'},
      {"trace", required_argument, NULL, 'T'},
      {"protocol-major", required_argument, NULL, 'p'},
      {"options-schema", required_argument, NULL, 'o'},
      {"restore-schema", required_argument, NULL, 'r'},
      {"max-concurrency", required_argument, NULL, 'm'},
      {"type-max-concurrency", required_argument, NULL, 'M'},
      {"list-delay-ms", required_argument, NULL, 'L'},
      {"list-trace", required_argument, NULL, 'R'},
      {"call-trace", required_argument, NULL, 'X'},
      {"list-fail-id", required_argument, NULL, 'F'},
      {"request-trace", required_argument, NULL, 'Q'},
      {"restored-id", required_argument, NULL, 'I'},
      {"two-results", no_argument, NULL, '2'},
      {"progress-bytes", required_argument, NULL, 'B'},
      {"metadata-count", required_argument, NULL, 'K'},
      {"name-bytes", required_argument, NULL, 'Z'},
      {NULL, 0, NULL, 0}};
  const char *listen = "127.0.0.1:0";
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 'l':
      listen = optarg;
      break;
    case 'n':
      F.name = optarg;
      break;
    case 't': {
      char *save = NULL, *copy = strdup(optarg);
      for (char *t = strtok_r(copy, ",", &save); t;
           t = strtok_r(NULL, ",", &save)) {
        F.types = realloc(F.types, (F.n_types + 1) * sizeof(*F.types));
        F.types[F.n_types++] = strdup(t);
      }
      free(copy);
      break;
    }
    case 'N':
      F.no_parallel = optarg;
      break;
    case 'd':
      F.lists_dependents = 1;
      break;
    case 'D':
      F.delay_ms = atoi(optarg);
      break;
    case 'U':
      F.progress_burst = atoi(optarg);
      break;
    case 'f':
      F.fail_id = optarg;
      break;
    case 'T':
      F.trace = fopen(optarg, "a");
      break;
    case 'p':
      F.protocol_major = (unsigned)atoi(optarg);
      break;
    case 'o':
      F.options_schema = optarg;
      break;
    case 'r':
      F.restore_schema = optarg;
      break;
    case 'm':
      F.max_concurrency = (unsigned)atoi(optarg);
      break;
    case 'M':
      F.type_max_concurrency = (unsigned)atoi(optarg);
      break;
    case 'L':
      F.list_delay_ms = atoi(optarg);
      break;
    case 'F':
      F.list_fail_id = optarg;
      break;
    case 'R':
      F.list_trace = fopen(optarg, "a");
      break;
    case 'X':
      F.call_trace = fopen(optarg, "a");
      break;
    case 'Q':
      F.request_trace = fopen(optarg, "a");
      break;
    case 'I':
      F.restored_id = optarg;
      break;
    case '2':
      F.two_results = 1;
      break;
    case 'B': {
      size_t n = (size_t)atol(optarg);
      F.progress_text = malloc(n + 1);
      memset(F.progress_text, 'p', n);
      F.progress_text[n] = '\0';
      break;
    }
    case 'K':
      F.metadata_count = atoi(optarg);
      break;
    case 'Z': {
      size_t n = (size_t)atol(optarg);
      char *name = malloc(n + 1);
      memset(name, 'n', n);
      name[n] = '\0';
      F.name = name;
      break;
    }
    default:
      return 2;
    }
  }
  loop = uv_default_loop();
  rt_t *rt;
  int port = 0;
  if (rt_new(loop, &rt) || rt_server_new(rt, NULL, &F.srv) ||
      smaug_v1_protection_plugin_register(F.srv, &handlers, NULL) ||
      rt_server_listen(F.srv, listen, &port) || rt_server_start(F.srv) ||
      rt_server_stop_on_signals(F.srv, stopped, NULL)) {
    fprintf(stderr, "fake plugin: cannot start on %s\n", listen);
    return 1;
  }
  if (strncmp(listen, "unix:", 5) == 0)
    rt_log(RT_LOG_INFO, "fake", "listening", "addr=%s", listen);
  else
    rt_log(RT_LOG_INFO, "fake", "listening", "addr=127.0.0.1:%d", port);
  uv_run(loop, UV_RUN_DEFAULT);
  rt_server_free(F.srv);
  rt_free(rt);
  for (size_t i = 0; i < F.n_types; i++)
    free(F.types[i]);
  free(F.types);
  if (F.trace)
    fclose(F.trace);
  if (F.list_trace)
    fclose(F.list_trace);
  if (F.request_trace)
    fclose(F.request_trace);
  free(F.progress_text);
  return 0;
}
