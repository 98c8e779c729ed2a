/*
 * cli_cmd.c - the subcommands of `smaug` (see cli_cmd.h, docs/cli.md).
 *
 * Each subcommand builds its request, makes its calls through cli_rpc and
 * prints either a human table or, with -o json, the response as JSON
 * (cli_pbjson). Plans print in plan-file form (cli_plan) in both cases so
 * that what `plan show -o json` prints can be given to `plan create -f`.
 */
#include "cli_cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli_pbjson.h"
#include "cli_plan.h"
#include "cli_rpc.h"
#include "cli_watch.h"
#include "grpc/health/v1/health.smaug.h"
#include "rt_addr.h"
#include "smaug/v1/orchestrator.smaug.h"

#define DEFAULT_SERVER     "127.0.0.1:7420"
#define DEFAULT_TIMEOUT_MS 10000
#define PAGE_SIZE          100

/* ------------------------------------------------------------ helpers */

static int usage_error(cli_ctx_t *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int usage_error(cli_ctx_t *ctx, const char *fmt, ...) {
  va_list ap;
  fputs("smaug: ", ctx->err);
  va_start(ap, fmt);
  vfprintf(ctx->err, fmt, ap);
  va_end(ap);
  fputs(" (see smaug --help)\n", ctx->err);
  return CLI_EXIT_USAGE;
}

static int out_of_memory(cli_ctx_t *ctx) {
  fprintf(ctx->err, "smaug: out of memory\n");
  return CLI_EXIT_FAILED;
}

static int open_rpc(cli_ctx_t *ctx, const char *target, cli_rpc_t **out) {
  int rc = cli_rpc_new(target, out);
  if (rc != 0) {
    const char *why = cli_rpc_why();
    fprintf(ctx->err, "smaug: %s: %s\n", target,
            why[0] != '\0' ? why : uv_strerror(rc));
    return rc == UV_EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_UNREACHABLE;
  }
  return CLI_EXIT_OK;
}

/* Makes one Orchestrator call; prints the failure and returns the exit
 * code. On success `*resp` is owned by the caller. */
static int unary(cli_ctx_t *ctx, cli_rpc_t *r, const rt_method_t *m,
                 const ProtobufCMessage *req, ProtobufCMessage **resp) {
  grpc_status_code code = cli_rpc_unary(r, m, req, ctx->timeout_ms, resp);
  if (code == GRPC_STATUS_OK)
    return CLI_EXIT_OK;
  const char *msg = cli_rpc_message(r);
  fprintf(ctx->err, "smaug: %s: %s: %s\n", m->name, rt_status_name(code), msg);
  int rc = cli_rpc_exit_code(code, msg);
  if (rc == CLI_EXIT_UNREACHABLE)
    fprintf(ctx->err, "smaug: server %s is unreachable\n", ctx->server);
  return rc;
}

#define ORCH(idx) (&smaug_v1_orchestrator_methods[SMAUG_V1_ORCHESTRATOR_##idx])

/* Prints `j` (consumed) as indented JSON. */
static int print_json(cli_ctx_t *ctx, json_t *j) {
  if (j == NULL)
    return out_of_memory(ctx);
  int rc = json_dumpf(j, ctx->out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  json_decref(j);
  fputc('\n', ctx->out);
  return rc == 0 ? CLI_EXIT_OK : out_of_memory(ctx);
}

static int print_msg_json(cli_ctx_t *ctx, const ProtobufCMessage *m) {
  return print_json(ctx, cli_pbjson_from_message(m));
}

static const char *fmt_time(int64_t ms, char *buf, size_t len) {
  if (ms <= 0) {
    snprintf(buf, len, "-");
    return buf;
  }
  time_t s = (time_t)(ms / 1000);
  struct tm tm;
  localtime_r(&s, &tm);
  strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

static const char *enum_short(const ProtobufCEnumDescriptor *ed, int v,
                              char *buf, size_t len) {
  return cli_pbjson_enum_short(ed, v, buf, len);
}

/* A text table: rows of copied cells, printed with aligned columns. */
typedef struct {
  size_t cols, rows, cap;
  char **cells;
  int nomem;
} table_t;

static void table_row(table_t *t, ...) {
  if (t->rows == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 16;
    char **c = realloc(t->cells, cap * t->cols * sizeof(*c));
    if (c == NULL) {
      t->nomem = 1;
      return;
    }
    t->cells = c;
    t->cap = cap;
  }
  va_list ap;
  va_start(ap, t);
  for (size_t i = 0; i < t->cols; i++) {
    const char *s = va_arg(ap, const char *);
    char *d = strdup(s ? s : "");
    if (d == NULL)
      t->nomem = 1;
    t->cells[t->rows * t->cols + i] = d;
  }
  va_end(ap);
  t->rows++;
}

static void table_print(table_t *t, FILE *out) {
  size_t w[16] = {0};
  for (size_t r = 0; r < t->rows; r++)
    for (size_t c = 0; c < t->cols && c < 16; c++) {
      const char *s = t->cells[r * t->cols + c];
      size_t n = s ? strlen(s) : 0;
      if (n > w[c])
        w[c] = n;
    }
  for (size_t r = 0; r < t->rows; r++) {
    for (size_t c = 0; c < t->cols; c++) {
      const char *s = t->cells[r * t->cols + c];
      if (c + 1 == t->cols)
        fprintf(out, "%s\n", s ? s : "");
      else
        fprintf(out, "%-*s  ", (int)w[c], s ? s : "");
    }
  }
}

static void table_free(table_t *t) {
  for (size_t i = 0; i < t->rows * t->cols; i++)
    free(t->cells[i]);
  free(t->cells);
}

/* One List* command: the request, where its paging fields are, and how a
 * response page becomes JSON items or table rows. */
typedef struct {
  const rt_method_t *method;
  ProtobufCMessage *req;
  uint32_t *page_size;
  char **page_token;
  /* Adds the page's items to `arr` (--json) or else to `t`; returns the
   * response's next_page_token (borrowed from `m`). */
  const char *(*rows)(const ProtobufCMessage *m, json_t *arr, table_t *t);
  const char *key; /* the JSON object's member for the items */
  table_t table;   /* holds the header row already */
  size_t limit;    /* at most this many items; 0: every page */
} list_t;

/* Fetches every page of `l` and prints the items as one JSON object or one
 * table. Frees l->table. Returns the exit code. */
static int list_all(cli_ctx_t *ctx, list_t *l) {
  cli_rpc_t *r;
  int rc = open_rpc(ctx, ctx->server, &r);
  if (rc) {
    table_free(&l->table);
    return rc;
  }
  json_t *arr = ctx->json ? json_array() : NULL;
  char *token = NULL;
  size_t seen = 0; /* items so far */
  do {
    size_t left = l->limit ? l->limit - seen : PAGE_SIZE;
    *l->page_size = left < PAGE_SIZE ? (uint32_t)left : PAGE_SIZE;
    *l->page_token = token ? token : "";
    ProtobufCMessage *m = NULL;
    if ((rc = unary(ctx, r, l->method, l->req, &m)))
      break;
    const char *next = l->rows(m, arr, &l->table);
    free(token);
    token = next[0] ? strdup(next) : NULL;
    protobuf_c_message_free_unpacked(m, NULL);
    seen = arr ? json_array_size(arr) : l->table.rows - 1; /* the header */
  } while (token != NULL && (l->limit == 0 || seen < l->limit));
  free(token);
  if (rc == 0) {
    if (ctx->json)
      rc = print_json(ctx, json_pack("{s:O}", l->key, arr));
    else
      table_print(&l->table, ctx->out);
  }
  json_decref(arr);
  table_free(&l->table);
  cli_rpc_free(r);
  return rc;
}

static const char *ref(const Smaug__V1__Resource *r, char *buf, size_t len) {
  snprintf(buf, len, "%s#%s", r ? r->type : "?", r ? r->id : "?");
  return buf;
}

static int watch_opts_run(cli_ctx_t *ctx, cli_rpc_t *r, const char *op,
                          const Smaug__V1__GetFlowRequest *flow) {
  cli_watch_opts_t o = {.out = ctx->out,
                        .tty = ctx->tty,
                        .width = ctx->width,
                        .json = ctx->json,
                        .timeout_ms = ctx->timeout_ms,
                        .flow = flow};
  return cli_watch_run(r, op, &o);
}

/* ------------------------------------------------------------ plugins */

static int cmd_plugin_list(cli_ctx_t *ctx) {
  cli_rpc_t *r;
  int rc = open_rpc(ctx, ctx->server, &r);
  if (rc)
    return rc;
  Smaug__V1__ListPluginsRequest req = SMAUG__V1__LIST_PLUGINS_REQUEST__INIT;
  ProtobufCMessage *m = NULL;
  if ((rc = unary(ctx, r, ORCH(LIST_PLUGINS), &req.base, &m)))
    goto done;
  if (ctx->json) {
    rc = print_msg_json(ctx, m);
    goto done;
  }
  const Smaug__V1__ListPluginsResponse *resp = (void *)m;
  table_t t = {.cols = 6};
  table_row(&t, "NAME", "VERSION", "ADDRESS", "HEALTH", "TYPES", "IDENTITY");
  for (size_t i = 0; i < resp->n_plugins; i++) {
    const Smaug__V1__Plugin *p = resp->plugins[i];
    char types[1024] = "", health[64];
    const Smaug__V1__GetPluginInfoResponse *info = p->info;
    for (size_t k = 0; info && k < info->n_types; k++) {
      size_t n = strlen(types);
      snprintf(types + n, sizeof(types) - n, "%s%s", k ? "," : "",
               info->types[k]->type);
    }
    enum_short(&smaug__v1__plugin_health__descriptor, p->health, health,
               sizeof(health));
    if (p->health_reason[0]) {
      size_t n = strlen(health);
      snprintf(health + n, sizeof(health) - n, " (%s)", p->health_reason);
    }
    table_row(&t, info ? info->name : "?", info ? info->version : "?",
              p->address, health, types, p->identity);
  }
  table_print(&t, ctx->out);
  rc = t.nomem ? out_of_memory(ctx) : CLI_EXIT_OK;
  table_free(&t);
done:
  if (m)
    protobuf_c_message_free_unpacked(m, NULL);
  cli_rpc_free(r);
  return rc;
}

static int cmd_plugin_register(cli_ctx_t *ctx) {
  cli_rpc_t *r;
  int rc = open_rpc(ctx, ctx->server, &r);
  if (rc)
    return rc;
  Smaug__V1__RegisterPluginRequest req =
      SMAUG__V1__REGISTER_PLUGIN_REQUEST__INIT;
  req.address = (char *)ctx->args->pos[0];
  req.replace = cli_args_count(ctx->args, "replace") > 0;
  ProtobufCMessage *m = NULL;
  if ((rc = unary(ctx, r, ORCH(REGISTER_PLUGIN), &req.base, &m)))
    goto done;
  if (ctx->json) {
    rc = print_msg_json(ctx, m);
  } else {
    const Smaug__V1__RegisterPluginResponse *resp = (void *)m;
    const Smaug__V1__GetPluginInfoResponse *info =
        resp->plugin ? resp->plugin->info : NULL;
    fprintf(ctx->out, "registered %s %s at %s\n", info ? info->name : "?",
            info ? info->version : "?", req.address);
  }
done:
  if (m)
    protobuf_c_message_free_unpacked(m, NULL);
  cli_rpc_free(r);
  return rc;
}

static int cmd_plugin_unregister(cli_ctx_t *ctx) {
  cli_rpc_t *r;
  int rc = open_rpc(ctx, ctx->server, &r);
  if (rc)
    return rc;
  Smaug__V1__UnregisterPluginRequest req =
      SMAUG__V1__UNREGISTER_PLUGIN_REQUEST__INIT;
  req.name = (char *)ctx->args->pos[0];
  ProtobufCMessage *m = NULL;
  if ((rc = unary(ctx, r, ORCH(UNREGISTER_PLUGIN), &req.base, &m)) == 0) {
    if (ctx->json)
      rc = print_msg_json(ctx, m);
    else
      fprintf(ctx->out, "unregistered %s\n", req.name);
    protobuf_c_message_free_unpacked(m, NULL);
  }
  cli_rpc_free(r);
  return rc;
}

/* -------------------------------------------------------------- plans */

static void print_plan(cli_ctx_t *ctx, const Smaug__V1__Plan *p) {
  char t1[32], t2[32], b[512];
  fprintf(ctx->out, "id:       %s\nname:     %s\ncreated:  %s\nupdated:  %s\n",
          p->id, p->name, fmt_time(p->created_at_ms, t1, sizeof(t1)),
          fmt_time(p->updated_at_ms, t2, sizeof(t2)));
  fprintf(ctx->out, "resources:\n");
  table_t t = {.cols = 3};
  for (size_t i = 0; i < p->n_resources; i++)
    table_row(&t, "  ", ref(p->resources[i], b, sizeof(b)),
              p->resources[i]->name);
  table_print(&t, ctx->out);
  table_free(&t);
  if (p->n_edges > 0) {
    fprintf(ctx->out, "edges:\n");
    for (size_t i = 0; i < p->n_edges; i++) {
      const Smaug__V1__ResourceEdge *e = p->edges[i];
      fprintf(ctx->out, "   %s#%s -> %s#%s\n", e->parent_type, e->parent_id,
              e->child_type, e->child_id);
    }
  }
  const Smaug__V1__ParameterSet *ps = p->parameters;
  if (ps != NULL && ps->n_entries > 0) {
    fprintf(ctx->out, "parameters:\n");
    for (size_t i = 0; i < ps->n_entries; i++) {
      fprintf(ctx->out, "   %s:", ps->entries[i]->key);
      const Smaug__V1__Parameters *v = ps->entries[i]->value;
      for (size_t k = 0; v && k < v->n_values; k++)
        fprintf(ctx->out, " %s=%s", v->values[k]->key, v->values[k]->value);
      fputc('\n', ctx->out);
    }
  }
}

static int cmd_plan_create(cli_ctx_t *ctx) {
  const char *file = cli_args_get(ctx->args, "file");
  if (file == NULL)
    return usage_error(ctx, "plan create: -f FILE is required");
  char err[512];
  Smaug__V1__Plan *plan;
  int rc = cli_plan_load(file, &plan, err, sizeof(err));
  if (rc == UV_ENOMEM)
    return out_of_memory(ctx);
  if (rc != 0) {
    fprintf(ctx->err, "smaug: %s\n", err);
    return CLI_EXIT_USAGE;
  }
  cli_rpc_t *r;
  if ((rc = open_rpc(ctx, ctx->server, &r))) {
    protobuf_c_message_free_unpacked(&plan->base, NULL);
    return rc;
  }
  Smaug__V1__CreatePlanRequest req = SMAUG__V1__CREATE_PLAN_REQUEST__INIT;
  req.plan = plan;
  ProtobufCMessage *m = NULL;
  if ((rc = unary(ctx, r, ORCH(CREATE_PLAN), &req.base, &m)) == 0) {
    const Smaug__V1__CreatePlanResponse *resp = (void *)m;
    if (ctx->json)
      rc = print_json(ctx, resp->plan ? cli_plan_to_json(resp->plan)
                                      : json_object());
    else
      fprintf(ctx->out, "%s\n", resp->plan ? resp->plan->id : "");
    protobuf_c_message_free_unpacked(m, NULL);
  }
  protobuf_c_message_free_unpacked(&plan->base, NULL);
  cli_rpc_free(r);
  return rc;
}

static const char *plan_rows(const ProtobufCMessage *m, json_t *arr,
                             table_t *t) {
  const Smaug__V1__ListPlansResponse *resp = (const void *)m;
  for (size_t i = 0; i < resp->n_plans; i++) {
    const Smaug__V1__Plan *p = resp->plans[i];
    char n[32], c[32];
    snprintf(n, sizeof(n), "%zu", p->n_resources);
    if (arr != NULL)
      json_array_append_new(arr, cli_plan_to_json(p));
    else
      table_row(t, p->id, p->name, n, fmt_time(p->created_at_ms, c, sizeof(c)));
  }
  return resp->next_page_token;
}

static int cmd_plan_list(cli_ctx_t *ctx) {
  Smaug__V1__ListPlansRequest req = SMAUG__V1__LIST_PLANS_REQUEST__INIT;
  list_t l = {.method = ORCH(LIST_PLANS),
              .req = &req.base,
              .page_size = &req.page_size,
              .page_token = &req.page_token,
              .rows = plan_rows,
              .key = "plans",
              .table = {.cols = 4}};
  table_row(&l.table, "ID", "NAME", "RESOURCES", "CREATED");
  return list_all(ctx, &l);
}

static int cmd_plan_show(cli_ctx_t *ctx) {
  cli_rpc_t *r;
  int rc = open_rpc(ctx, ctx->server, &r);
  if (rc)
    return rc;
  Smaug__V1__GetPlanRequest req = SMAUG__V1__GET_PLAN_REQUEST__INIT;
  req.id = (char *)ctx->args->pos[0];
  ProtobufCMessage *m = NULL;
  if ((rc = unary(ctx, r, ORCH(GET_PLAN), &req.base, &m)) == 0) {
    const Smaug__V1__GetPlanResponse *resp = (void *)m;
    if (resp->plan == NULL)
      rc = CLI_EXIT_FAILED;
    else if (ctx->json)
      rc = print_json(ctx, cli_plan_to_json(resp->plan));
    else
      print_plan(ctx, resp->plan);
    protobuf_c_message_free_unpacked(m, NULL);
  }
  cli_rpc_free(r);
  return rc;
}

static int cmd_plan_delete(cli_ctx_t *ctx) {
  cli_rpc_t *r;
  int rc = open_rpc(ctx, ctx->server, &r);
  if (rc)
    return rc;
  Smaug__V1__DeletePlanRequest req = SMAUG__V1__DELETE_PLAN_REQUEST__INIT;
  req.id = (char *)ctx->args->pos[0];
  ProtobufCMessage *m = NULL;
  if ((rc = unary(ctx, r, ORCH(DELETE_PLAN), &req.base, &m)) == 0) {
    if (ctx->json)
      rc = print_msg_json(ctx, m);
    else
      fprintf(ctx->out, "deleted plan %s\n", req.id);
    protobuf_c_message_free_unpacked(m, NULL);
  }
  cli_rpc_free(r);
  return rc;
}

/* ---------------------------------------------------------- operations */

/* Prints the response of an operation start; in JSON mode as one compact
 * line, so that a following --wait stream is valid JSON Lines. */
static int print_started(cli_ctx_t *ctx, const ProtobufCMessage *m,
                         const char *kind, const char *id, const char *op) {
  if (ctx->json) {
    json_t *j = cli_pbjson_from_message(m);
    if (j == NULL)
      return out_of_memory(ctx);
    json_dumpf(j, ctx->out, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    fputc('\n', ctx->out);
  } else {
    if (kind != NULL)
      fprintf(ctx->out, "%-10s  %s\n", kind, id);
    fprintf(ctx->out, "%-10s  %s\n", "operation", op);
  }
  fflush(ctx->out);
  return CLI_EXIT_OK;
}

static int cmd_protect(cli_ctx_t *ctx) {
  cli_rpc_t *r;
  int rc = open_rpc(ctx, ctx->server, &r);
  if (rc)
    return rc;
  Smaug__V1__ProtectRequest req = SMAUG__V1__PROTECT_REQUEST__INIT;
  req.plan_id = (char *)ctx->args->pos[0];
  req.fail_fast = cli_args_count(ctx->args, "fail-fast") > 0;
  ProtobufCMessage *m = NULL;
  if ((rc = unary(ctx, r, ORCH(PROTECT), &req.base, &m)))
    goto done;
  const Smaug__V1__ProtectResponse *resp = (void *)m;
  rc = print_started(ctx, m, "checkpoint", resp->checkpoint_id,
                     resp->operation_id);
  if (rc == 0 && cli_args_count(ctx->args, "wait")) {
    Smaug__V1__GetFlowRequest flow = SMAUG__V1__GET_FLOW_REQUEST__INIT;
    flow.checkpoint_id = resp->checkpoint_id;
    flow.kind = SMAUG__V1__OPERATION_KIND__OPERATION_KIND_PROTECT;
    rc = watch_opts_run(ctx, r, resp->operation_id, &flow);
  }
  protobuf_c_message_free_unpacked(m, NULL);
done:
  cli_rpc_free(r);
  return rc;
}

/* Splits "[target:]key=value". Pointers are into a copy in `*buf`. */
static int split_param(const char *s, char **buf, const char **target,
                       const char **key, const char **value) {
  const char *eq = strchr(s, '=');
  if (eq == NULL || eq == s)
    return UV_EINVAL;
  if ((*buf = strdup(s)) == NULL)
    return UV_ENOMEM;
  char *b = *buf;
  b[eq - s] = '\0';
  *value = b + (eq - s) + 1;
  char *colon = strchr(b, ':');
  *target = NULL;
  if (colon != NULL) {
    *colon = '\0';
    *target = b;
    b = colon + 1;
  }
  *key = b;
  if (**key == '\0' || (*target != NULL && **target == '\0')) {
    free(*buf);
    *buf = NULL;
    return UV_EINVAL;
  }
  return 0;
}

/* Builds the restore parameters from --params-file and the -p options. A
 * -p without a target applies to every resource type of the checkpoint,
 * which is fetched for that. */
static int restore_params(cli_ctx_t *ctx, cli_rpc_t *r, const char *ckp,
                          Smaug__V1__ParameterSet **out) {
  Smaug__V1__ParameterSet *ps = NULL;
  ProtobufCMessage *cm = NULL;
  int rc = 0;
  const char *file = cli_args_get(ctx->args, "params-file");
  if (file != NULL) {
    json_error_t je;
    json_t *j = json_load_file(file, JSON_REJECT_DUPLICATES, &je);
    if (j == NULL) {
      fprintf(ctx->err, "smaug: %s:%d:%d: %s\n", file, je.line, je.column,
              je.text);
      return CLI_EXIT_USAGE;
    }
    char err[512];
    rc = cli_plan_parse_parameters(j, file, &ps, err, sizeof(err));
    json_decref(j);
    if (rc != 0) {
      fprintf(ctx->err, "smaug: %s\n", err);
      return rc == UV_ENOMEM ? CLI_EXIT_FAILED : CLI_EXIT_USAGE;
    }
  } else {
    if ((ps = malloc(sizeof(*ps))) == NULL)
      return out_of_memory(ctx);
    smaug__v1__parameter_set__init(ps);
  }
  for (size_t i = 0; i < ctx->args->n_opts && rc == 0; i++) {
    if (strcmp(ctx->args->opts[i].opt->name, "param") != 0)
      continue;
    const char *s = ctx->args->opts[i].value, *target, *key, *value;
    char *buf = NULL;
    int e = split_param(s, &buf, &target, &key, &value);
    if (e == UV_EINVAL) {
      rc = usage_error(ctx, "-p %s: expected [TYPE[#ID]:]KEY=VALUE", s);
      break;
    }
    if (e != 0) {
      rc = out_of_memory(ctx);
      break;
    }
    if (target != NULL) {
      if (cli_plan_set_parameter(ps, target, key, value))
        rc = out_of_memory(ctx);
    } else {
      if (cm == NULL) {
        Smaug__V1__GetCheckpointRequest g =
            SMAUG__V1__GET_CHECKPOINT_REQUEST__INIT;
        g.id = (char *)ckp;
        rc = unary(ctx, r, ORCH(GET_CHECKPOINT), &g.base, &cm);
        /* A graph too large for one message is left out: the results
         * name the same resources. */
        Smaug__V1__GetCheckpointResponse *gc = (void *)cm;
        if (rc == 0 && gc->checkpoint && gc->graph_omitted)
          rc = cli_results_complete(ctx, r, ckp, NULL, 1,
                                    &gc->checkpoint->results,
                                    &gc->checkpoint->n_results);
      }
      const Smaug__V1__Checkpoint *c =
          rc == 0 ? ((Smaug__V1__GetCheckpointResponse *)cm)->checkpoint : NULL;
      for (size_t k = 0; rc == 0 && c && k < c->n_resources + c->n_results;
           k++) {
        const Smaug__V1__Resource *res =
            k < c->n_resources ? c->resources[k]
                               : c->results[k - c->n_resources]->resource;
        if (res && cli_plan_set_parameter(ps, res->type, key, value))
          rc = out_of_memory(ctx);
      }
    }
    free(buf);
  }
  if (cm != NULL)
    protobuf_c_message_free_unpacked(cm, NULL);
  if (rc != 0) {
    protobuf_c_message_free_unpacked(&ps->base, NULL);
    return rc;
  }
  *out = ps;
  return 0;
}

int cli_results_complete(cli_ctx_t *ctx, cli_rpc_t *r,
                         const char *checkpoint_id, const char *restore_id,
                         int truncated, Smaug__V1__ResourceResult ***res,
                         size_t *n) {
  if (!truncated)
    return CLI_EXIT_OK;
  Smaug__V1__ListResourceResultsRequest req =
      SMAUG__V1__LIST_RESOURCE_RESULTS_REQUEST__INIT;
  req.checkpoint_id = (char *)(checkpoint_id ? checkpoint_id : "");
  req.restore_id = (char *)(restore_id ? restore_id : "");
  Smaug__V1__ResourceResult **all = NULL;
  size_t n_all = 0, cap = 0;
  char *token = NULL;
  int rc;
  do {
    req.page_token = token ? token : ""; /* page_size 0: the server's */
    ProtobufCMessage *m = NULL;
    if ((rc = unary(ctx, r, ORCH(LIST_RESOURCE_RESULTS), &req.base, &m)))
      break;
    Smaug__V1__ListResourceResultsResponse *p = (void *)m;
    free(token);
    token = p->next_page_token[0] ? strdup(p->next_page_token) : NULL;
    if (p->next_page_token[0] && token == NULL)
      rc = out_of_memory(ctx);
    if (token != NULL && p->n_results == 0) {
      /* A page that neither ends nor advances would never end. */
      fprintf(ctx->err, "smaug: ListResourceResults: an empty page\n");
      rc = CLI_EXIT_FAILED;
    }
    if (n_all + p->n_results > cap) {
      size_t nc = cap ? cap * 2 : 1024;
      while (nc < n_all + p->n_results)
        nc *= 2;
      void *a = realloc(all, nc * sizeof(*all));
      if (a == NULL) {
        protobuf_c_message_free_unpacked(m, NULL);
        rc = out_of_memory(ctx);
        break;
      }
      all = a;
      cap = nc;
    }
    /* The results move to `all`; the page frees only its array. */
    if (p->n_results > 0)
      memcpy(all + n_all, p->results, p->n_results * sizeof(*all));
    n_all += p->n_results;
    p->n_results = 0;
    protobuf_c_message_free_unpacked(m, NULL);
  } while (rc == 0 && token != NULL);
  free(token);
  if (rc != 0) {
    for (size_t i = 0; i < n_all; i++)
      protobuf_c_message_free_unpacked(&all[i]->base, NULL);
    free(all);
    return rc;
  }
  for (size_t i = 0; i < *n; i++)
    protobuf_c_message_free_unpacked(&(*res)[i]->base, NULL);
  free(*res);
  *res = all;
  *n = n_all;
  return CLI_EXIT_OK;
}

static void print_results(cli_ctx_t *ctx, size_t n,
                          Smaug__V1__ResourceResult *const *res, int restored) {
  table_t t = {.cols = 5};
  table_row(&t, "RESOURCE", "STATUS", restored ? "RESTORED-ID" : "FINISHED",
            "METADATA", "REASON");
  for (size_t i = 0; i < n; i++) {
    char b[512], st[32], fin[32], md[32];
    enum_short(&smaug__v1__task_status__descriptor, res[i]->status, st,
               sizeof(st));
    snprintf(md, sizeof(md), "%zu keys", res[i]->n_metadata);
    table_row(&t, ref(res[i]->resource, b, sizeof(b)), st,
              restored ? res[i]->restored_id
                       : fmt_time(res[i]->finished_at_ms, fin, sizeof(fin)),
              md, res[i]->reason);
  }
  table_print(&t, ctx->out);
  table_free(&t);
}

static int cmd_restore_show(cli_ctx_t *ctx) {
  cli_rpc_t *r;
  int rc = open_rpc(ctx, ctx->server, &r);
  if (rc)
    return rc;
  Smaug__V1__GetRestoreRequest req = SMAUG__V1__GET_RESTORE_REQUEST__INIT;
  req.id = (char *)ctx->args->pos[0];
  ProtobufCMessage *m = NULL;
  if ((rc = unary(ctx, r, ORCH(GET_RESTORE), &req.base, &m)))
    goto done;
  Smaug__V1__GetRestoreResponse *gr = (void *)m;
  Smaug__V1__Restore *x = gr->restore;
  if (x != NULL &&
      (rc = cli_results_complete(ctx, r, NULL, x->id, gr->results_truncated,
                                 &x->results, &x->n_results)) != 0) {
    protobuf_c_message_free_unpacked(m, NULL);
    goto done;
  }
  gr->results_truncated = 0;
  if (ctx->json || x == NULL) {
    rc = print_msg_json(ctx, m);
  } else {
    char st[32], t1[32], t2[32];
    fprintf(ctx->out,
            "id:         %s\ncheckpoint: %s\nstatus:     %s\n"
            "operation:  %s\ncreated:    %s\nfinished:   %s\n",
            x->id, x->checkpoint_id,
            enum_short(&smaug__v1__restore_status__descriptor, x->status, st,
                       sizeof(st)),
            x->operation_id, fmt_time(x->created_at_ms, t1, sizeof(t1)),
            fmt_time(x->finished_at_ms, t2, sizeof(t2)));
    if (x->reason[0])
      fprintf(ctx->out, "reason:     %s\n", x->reason);
    fputc('\n', ctx->out);
    print_results(ctx, x->n_results, x->results, 1);
  }
  protobuf_c_message_free_unpacked(m, NULL);
done:
  cli_rpc_free(r);
  return rc;
}

static int cmd_restore(cli_ctx_t *ctx) {
  cli_rpc_t *r;
  int rc = open_rpc(ctx, ctx->server, &r);
  if (rc)
    return rc;
  Smaug__V1__RestoreRequest req = SMAUG__V1__RESTORE_REQUEST__INIT;
  req.checkpoint_id = (char *)ctx->args->pos[0];
  req.fail_fast = cli_args_count(ctx->args, "fail-fast") > 0;
  req.force = cli_args_count(ctx->args, "force") > 0;
  ProtobufCMessage *m = NULL;
  if ((rc = restore_params(ctx, r, req.checkpoint_id, &req.parameters)))
    goto done;
  if ((rc = unary(ctx, r, ORCH(RESTORE), &req.base, &m)))
    goto done;
  const Smaug__V1__RestoreResponse *resp = (void *)m;
  rc = print_started(ctx, m, "restore", resp->restore_id, resp->operation_id);
  if (rc == 0 && cli_args_count(ctx->args, "wait")) {
    Smaug__V1__GetFlowRequest flow = SMAUG__V1__GET_FLOW_REQUEST__INIT;
    flow.checkpoint_id = req.checkpoint_id;
    flow.kind = SMAUG__V1__OPERATION_KIND__OPERATION_KIND_RESTORE;
    rc = watch_opts_run(ctx, r, resp->operation_id, &flow);
    if (rc == CLI_EXIT_OK || rc == CLI_EXIT_FAILED) {
      /* Show where each resource was restored to. */
      Smaug__V1__GetRestoreRequest g = SMAUG__V1__GET_RESTORE_REQUEST__INIT;
      g.id = resp->restore_id;
      ProtobufCMessage *gm = NULL;
      if (unary(ctx, r, ORCH(GET_RESTORE), &g.base, &gm) == 0) {
        Smaug__V1__GetRestoreResponse *gr = (void *)gm;
        Smaug__V1__Restore *rs = gr->restore;
        if (rs != NULL &&
            cli_results_complete(ctx, r, NULL, rs->id, gr->results_truncated,
                                 &rs->results, &rs->n_results) == 0)
          gr->results_truncated = 0;
        if (ctx->json) {
          json_t *j = cli_pbjson_from_message(gm);
          if (j != NULL)
            json_dumpf(j, ctx->out, JSON_COMPACT | JSON_PRESERVE_ORDER);
          json_decref(j);
          fputc('\n', ctx->out);
        } else if (rs != NULL) {
          fputc('\n', ctx->out);
          print_results(ctx, rs->n_results, rs->results, 1);
        }
        protobuf_c_message_free_unpacked(gm, NULL);
      }
    }
  }
done:
  if (m)
    protobuf_c_message_free_unpacked(m, NULL);
  if (req.parameters)
    protobuf_c_message_free_unpacked(&req.parameters->base, NULL);
  cli_rpc_free(r);
  return rc;
}

static int cmd_watch(cli_ctx_t *ctx) {
  cli_rpc_t *r;
  int rc = open_rpc(ctx, ctx->server, &r);
  if (rc)
    return rc;
  rc = watch_opts_run(ctx, r, ctx->args->pos[0], NULL);
  cli_rpc_free(r);
  return rc;
}

static int cmd_cancel(cli_ctx_t *ctx) {
  cli_rpc_t *r;
  int rc = open_rpc(ctx, ctx->server, &r);
  if (rc)
    return rc;
  Smaug__V1__CancelOperationRequest req =
      SMAUG__V1__CANCEL_OPERATION_REQUEST__INIT;
  req.operation_id = (char *)ctx->args->pos[0];
  req.reason = "cancelled from the command line";
  ProtobufCMessage *m = NULL;
  if ((rc = unary(ctx, r, ORCH(CANCEL_OPERATION), &req.base, &m)) == 0) {
    const Smaug__V1__CancelOperationResponse *resp = (void *)m;
    if (ctx->json)
      rc = print_msg_json(ctx, m);
    else
      fprintf(ctx->out, "cancelling %s (%u tasks)\n", req.operation_id,
              resp->cancelled);
    protobuf_c_message_free_unpacked(m, NULL);
  }
  cli_rpc_free(r);
  return rc;
}

/* --------------------------------------------------------- checkpoints */

static const ProtobufCEnumValue *find_enum(const ProtobufCEnumDescriptor *ed,
                                           const char *name) {
  char buf[64];
  for (unsigned i = 0; i < ed->n_values; i++) {
    if (strcasecmp(ed->values[i].name, name) == 0 ||
        strcmp(enum_short(ed, ed->values[i].value, buf, sizeof(buf)), name) ==
            0)
      return &ed->values[i];
  }
  return NULL;
}

static const char *checkpoint_rows(const ProtobufCMessage *m, json_t *arr,
                                   table_t *t) {
  const Smaug__V1__ListCheckpointsResponse *resp = (const void *)m;
  for (size_t i = 0; i < resp->n_checkpoints; i++) {
    const Smaug__V1__Checkpoint *c = resp->checkpoints[i];
    char st[32], t1[32], t2[32], n[32];
    if (arr != NULL) {
      json_array_append_new(arr, cli_pbjson_from_message(&c->base));
      continue;
    }
    snprintf(n, sizeof(n), "%zu", c->n_resources);
    table_row(t, c->id, c->plan_id,
              enum_short(&smaug__v1__checkpoint_status__descriptor, c->status,
                         st, sizeof(st)),
              fmt_time(c->created_at_ms, t1, sizeof(t1)),
              fmt_time(c->finished_at_ms, t2, sizeof(t2)), n);
  }
  return resp->next_page_token;
}

static int cmd_checkpoint_list(cli_ctx_t *ctx) {
  Smaug__V1__ListCheckpointsRequest req =
      SMAUG__V1__LIST_CHECKPOINTS_REQUEST__INIT;
  const char *plan = cli_args_get(ctx->args, "plan");
  const char *status = cli_args_get(ctx->args, "status");
  if (plan != NULL)
    req.plan_id = (char *)plan;
  if (status != NULL) {
    const ProtobufCEnumValue *v =
        find_enum(&smaug__v1__checkpoint_status__descriptor, status);
    if (v == NULL || v->value == 0)
      return usage_error(ctx, "checkpoint list: unknown status \"%s\"", status);
    req.status = v->value;
  }
  list_t l = {.method = ORCH(LIST_CHECKPOINTS),
              .req = &req.base,
              .page_size = &req.page_size,
              .page_token = &req.page_token,
              .rows = checkpoint_rows,
              .key = "checkpoints",
              .table = {.cols = 6}};
  table_row(&l.table, "ID", "PLAN", "STATUS", "CREATED", "FINISHED",
            "RESOURCES");
  return list_all(ctx, &l);
}

static int cmd_checkpoint_show(cli_ctx_t *ctx) {
  cli_rpc_t *r;
  int rc = open_rpc(ctx, ctx->server, &r);
  if (rc)
    return rc;
  Smaug__V1__GetCheckpointRequest req = SMAUG__V1__GET_CHECKPOINT_REQUEST__INIT;
  req.id = (char *)ctx->args->pos[0];
  ProtobufCMessage *m = NULL;
  if ((rc = unary(ctx, r, ORCH(GET_CHECKPOINT), &req.base, &m)))
    goto done;
  Smaug__V1__GetCheckpointResponse *gc = (void *)m;
  Smaug__V1__Checkpoint *c = gc->checkpoint;
  if (c != NULL &&
      (rc = cli_results_complete(ctx, r, c->id, NULL, gc->results_truncated,
                                 &c->results, &c->n_results)) != 0) {
    protobuf_c_message_free_unpacked(m, NULL);
    goto done;
  }
  gc->results_truncated = 0;
  if (ctx->json || c == NULL) {
    rc = print_msg_json(ctx, m);
  } else {
    char st[32], t1[32], t2[32];
    fprintf(ctx->out,
            "id:         %s\nplan:       %s\nstatus:     %s\n"
            "operation:  %s\ncreated:    %s\nfinished:   %s\nbank:       %s\n",
            c->id, c->plan_id,
            enum_short(&smaug__v1__checkpoint_status__descriptor, c->status, st,
                       sizeof(st)),
            c->operation_id, fmt_time(c->created_at_ms, t1, sizeof(t1)),
            fmt_time(c->finished_at_ms, t2, sizeof(t2)), c->bank_uri);
    for (size_t i = 0; i < c->n_plugin_identities; i++)
      fprintf(ctx->out, "%-12s%s saved by %s\n",
              i ? "" : "plugins:", c->plugin_identities[i]->key,
              c->plugin_identities[i]->value);
    if (c->reason[0])
      fprintf(ctx->out, "reason:     %s\n", c->reason);
    fputc('\n', ctx->out);
    print_results(ctx, c->n_results, c->results, 0);
  }
  protobuf_c_message_free_unpacked(m, NULL);
done:
  cli_rpc_free(r);
  return rc;
}

static int cmd_checkpoint_delete(cli_ctx_t *ctx) {
  cli_rpc_t *r;
  int rc = open_rpc(ctx, ctx->server, &r);
  if (rc)
    return rc;
  Smaug__V1__DeleteCheckpointRequest req =
      SMAUG__V1__DELETE_CHECKPOINT_REQUEST__INIT;
  req.id = (char *)ctx->args->pos[0];
  req.force = cli_args_count(ctx->args, "force") > 0;
  ProtobufCMessage *m = NULL;
  if ((rc = unary(ctx, r, ORCH(DELETE_CHECKPOINT), &req.base, &m)))
    goto done;
  const Smaug__V1__DeleteCheckpointResponse *resp = (void *)m;
  rc = print_started(ctx, m, NULL, NULL, resp->operation_id);
  if (rc == 0 && cli_args_count(ctx->args, "wait")) {
    Smaug__V1__GetFlowRequest flow = SMAUG__V1__GET_FLOW_REQUEST__INIT;
    flow.checkpoint_id = req.id;
    flow.kind = SMAUG__V1__OPERATION_KIND__OPERATION_KIND_DELETE;
    rc = watch_opts_run(ctx, r, resp->operation_id, &flow);
  }
  protobuf_c_message_free_unpacked(m, NULL);
done:
  cli_rpc_free(r);
  return rc;
}

/* --------------------------------------------------------------- flow */

/* DOT for a flow, for servers that leave GetFlowResponse.dot empty: blue
 * P->S edges, red child->parent edges, dashed no-op tasks. */
static void print_dot(cli_ctx_t *ctx, const Smaug__V1__GetFlowResponse *f) {
  fprintf(ctx->out, "digraph flow {\n  rankdir=LR;\n  node [shape=box];\n");
  for (size_t i = 0; i < f->n_nodes; i++)
    fprintf(ctx->out, "  \"%s\"%s;\n", f->nodes[i]->id,
            f->nodes[i]->noop ? " [style=dashed]" : "");
  for (size_t i = 0; i < f->n_edges; i++)
    fprintf(ctx->out, "  \"%s\" -> \"%s\" [color=%s];\n", f->edges[i]->from,
            f->edges[i]->to,
            f->edges[i]->kind ==
                    SMAUG__V1__FLOW_EDGE_KIND__FLOW_EDGE_KIND_CHILD_TO_PARENT
                ? "red"
                : "blue");
  fprintf(ctx->out, "}\n");
}

static int cmd_flow(cli_ctx_t *ctx) {
  const char *id = ctx->args->pos[0];
  const char *kind = cli_args_get(ctx->args, "kind");
  Smaug__V1__GetFlowRequest req = SMAUG__V1__GET_FLOW_REQUEST__INIT;
  if (strncmp(id, "pln-", 4) == 0)
    req.plan_id = (char *)id;
  else if (strncmp(id, "ckp-", 4) == 0)
    req.checkpoint_id = (char *)id;
  else
    return usage_error(ctx,
                       "flow: \"%s\" is neither a plan (pln-) nor a "
                       "checkpoint (ckp-) id",
                       id);
  req.kind = SMAUG__V1__OPERATION_KIND__OPERATION_KIND_PROTECT;
  if (kind != NULL) {
    const ProtobufCEnumValue *v =
        find_enum(&smaug__v1__operation_kind__descriptor, kind);
    if (v == NULL || v->value == 0)
      return usage_error(ctx, "flow: unknown kind \"%s\"", kind);
    req.kind = v->value;
  }
  cli_rpc_t *r;
  int rc = open_rpc(ctx, ctx->server, &r);
  if (rc)
    return rc;
  ProtobufCMessage *m = NULL;
  if ((rc = unary(ctx, r, ORCH(GET_FLOW), &req.base, &m)))
    goto done;
  const Smaug__V1__GetFlowResponse *f = (void *)m;
  if (cli_args_count(ctx->args, "dot")) {
    if (f->dot[0])
      fputs(f->dot, ctx->out);
    else
      print_dot(ctx, f);
  } else if (ctx->json) {
    rc = print_msg_json(ctx, m);
  } else {
    table_t t = {.cols = 3};
    table_row(&t, "TASK", "ACTIVITY", "NOOP");
    for (size_t i = 0; i < f->n_nodes; i++) {
      char a[32];
      table_row(&t, f->nodes[i]->id,
                enum_short(&smaug__v1__activity__descriptor,
                           f->nodes[i]->activity, a, sizeof(a)),
                f->nodes[i]->noop ? "noop" : "");
    }
    table_print(&t, ctx->out);
    table_free(&t);
    fprintf(ctx->out, "\nEDGES\n");
    for (size_t i = 0; i < f->n_edges; i++) {
      char k[48];
      fprintf(ctx->out, "%s -> %s  (%s)\n", f->edges[i]->from, f->edges[i]->to,
              enum_short(&smaug__v1__flow_edge_kind__descriptor,
                         f->edges[i]->kind, k, sizeof(k)));
    }
  }
  protobuf_c_message_free_unpacked(m, NULL);
done:
  cli_rpc_free(r);
  return rc;
}

/* -------------------------------------------------------------- audit */

static const char *audit_rows(const ProtobufCMessage *m, json_t *arr,
                              table_t *t) {
  const Smaug__V1__ListAuditEventsResponse *resp = (const void *)m;
  for (size_t i = 0; i < resp->n_events; i++) {
    const Smaug__V1__AuditEvent *e = resp->events[i];
    char tm[32];
    if (arr != NULL) {
      json_array_append_new(arr, cli_pbjson_from_message(&e->base));
      continue;
    }
    table_row(t, fmt_time(e->time_ms, tm, sizeof(tm)), e->who,
              e->tenant[0] ? e->tenant : "-", e->method, e->objects, e->code,
              e->message);
  }
  return resp->next_page_token;
}

/* --since: Unix time in ms, or an age ("90s", "30m", "12h", "7d") before
 * now. Returns 0 and sets *out, or UV_EINVAL. */
static int parse_since(const char *s, int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (end == s || v < 0 || errno == ERANGE || s[0] < '0' || s[0] > '9')
    return UV_EINVAL;
  if (*end == '\0') {
    *out = v;
    return 0;
  }
  long long unit = strcmp(end, "s") == 0   ? 1000LL
                   : strcmp(end, "m") == 0 ? 60000LL
                   : strcmp(end, "h") == 0 ? 3600000LL
                   : strcmp(end, "d") == 0 ? 86400000LL
                                           : 0;
  struct timespec ts;
  if (unit == 0 || v > INT64_MAX / unit / 2 ||
      clock_gettime(CLOCK_REALTIME, &ts) != 0)
    return UV_EINVAL;
  int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  *out = now > v * unit ? now - v * unit : 0;
  return 0;
}

static int cmd_audit_list(cli_ctx_t *ctx) {
  Smaug__V1__ListAuditEventsRequest req =
      SMAUG__V1__LIST_AUDIT_EVENTS_REQUEST__INIT;
  const char *who = cli_args_get(ctx->args, "who");
  const char *method = cli_args_get(ctx->args, "method");
  const char *since = cli_args_get(ctx->args, "since");
  const char *limit = cli_args_get(ctx->args, "limit");
  size_t lim = 0;
  if (who != NULL)
    req.who = (char *)who;
  if (method != NULL)
    req.method = (char *)method;
  if (since != NULL && parse_since(since, &req.since_ms) != 0)
    return usage_error(ctx, "audit list: --since: expected Unix ms or an age "
                            "such as 30m, 12h, 7d");
  if (limit != NULL) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(limit, &end, 10);
    if (*end != '\0' || v == 0 || errno == ERANGE || limit[0] < '0' ||
        limit[0] > '9' || v > 1000000)
      return usage_error(ctx, "audit list: --limit: expected 1 to 1000000");
    lim = (size_t)v;
  }
  list_t l = {.method = ORCH(LIST_AUDIT_EVENTS),
              .req = &req.base,
              .page_size = &req.page_size,
              .page_token = &req.page_token,
              .rows = audit_rows,
              .key = "events",
              .table = {.cols = 7},
              .limit = lim};
  table_row(&l.table, "TIME", "WHO", "TENANT", "METHOD", "OBJECTS", "STATUS",
            "MESSAGE");
  return list_all(ctx, &l);
}

/* ------------------------------------------------------------- health */

static int cmd_health(cli_ctx_t *ctx) {
  const char *addr = ctx->args->n_pos ? ctx->args->pos[0] : ctx->server;
  const char *service = cli_args_get(ctx->args, "service");
  cli_rpc_t *r;
  int rc = open_rpc(ctx, addr, &r);
  if (rc)
    return rc;
  Grpc__Health__V1__HealthCheckRequest req =
      GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  req.service = (char *)(service ? service : "");
  const rt_method_t *m =
      &grpc_health_v1_health_methods[GRPC_HEALTH_V1_HEALTH_CHECK];
  ProtobufCMessage *resp = NULL;
  grpc_status_code code =
      cli_rpc_unary(r, m, &req.base, ctx->timeout_ms, &resp);
  if (code != GRPC_STATUS_OK) {
    const char *msg = cli_rpc_message(r);
    rc = cli_rpc_exit_code(code, msg);
    if (code == GRPC_STATUS_UNAVAILABLE)
      rc = CLI_EXIT_UNREACHABLE; /* health has no plugin-level meaning */
    fprintf(ctx->err, "smaug: health %s: %s: %s\n", addr, rt_status_name(code),
            msg);
    if (ctx->json)
      print_json(ctx, json_pack("{s:s, s:s, s:s}", "address", addr, "status",
                                rt_status_name(code), "message", msg));
    goto done;
  }
  const Grpc__Health__V1__HealthCheckResponse *h = (void *)resp;
  const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
      &grpc__health__v1__health_check_response__serving_status__descriptor,
      h->status);
  const char *name = v ? v->name : "UNKNOWN";
  if (ctx->json)
    print_json(ctx, json_pack("{s:s, s:s}", "address", addr, "status", name));
  else
    fprintf(ctx->out, "%s\n", name);
  rc = h->status ==
               GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
           ? CLI_EXIT_OK
           : CLI_EXIT_FAILED;
  protobuf_c_message_free_unpacked(resp, NULL);
done:
  cli_rpc_free(r);
  return rc;
}

/* ------------------------------------------------------------ dispatch */

static const cli_opt_t global_opts[] = {
    {"server", 's', 1}, {"output", 'o', 1},   {"timeout", 0, 1},
    {"tls-ca", 0, 1},   {"tls-cert", 0, 1},   {"tls-key", 0, 1},
    {"token", 0, 1},    {"token-file", 0, 1}, {"help", 'h', 0},
    {NULL, 0, 0}};

static const cli_opt_t no_opts[] = {{NULL, 0, 0}};
static const cli_opt_t register_opts[] = {{"replace", 0, 0}, {NULL, 0, 0}};
static const cli_opt_t file_opts[] = {{"file", 'f', 1}, {NULL, 0, 0}};
static const cli_opt_t protect_opts[] = {
    {"wait", 'w', 0}, {"fail-fast", 0, 0}, {NULL, 0, 0}};
static const cli_opt_t restore_opts[] = {
    {"wait", 'w', 0},      {"fail-fast", 0, 0}, {"param", 'p', 1},
    {"params-file", 0, 1}, {"force", 0, 0},     {NULL, 0, 0}};
static const cli_opt_t delete_opts[] = {
    {"wait", 'w', 0}, {"force", 0, 0}, {NULL, 0, 0}};
static const cli_opt_t audit_opts[] = {{"who", 0, 1},
                                       {"method", 0, 1},
                                       {"since", 0, 1},
                                       {"limit", 0, 1},
                                       {NULL, 0, 0}};
static const cli_opt_t ckp_list_opts[] = {
    {"plan", 0, 1}, {"status", 0, 1}, {NULL, 0, 0}};
static const cli_opt_t flow_opts[] = {
    {"dot", 0, 0}, {"kind", 0, 1}, {NULL, 0, 0}};
static const cli_opt_t health_opts[] = {{"service", 0, 1}, {NULL, 0, 0}};

typedef struct {
  const char *noun;
  const char *verb; /* NULL: a one-word command */
  cli_cmd_fn fn;
  const cli_opt_t *opts;
  size_t min_pos, max_pos;
  const char *usage; /* arguments after the command words */
  const char *help;
} cmd_t;

static const cmd_t commands[] = {
    {"plugin", "list", cmd_plugin_list, no_opts, 0, 0, "",
     "list registered plugins and their health"},
    {"plugin", "register", cmd_plugin_register, register_opts, 1, 1,
     "ADDR [--replace]", "register the plugin serving at ADDR"},
    {"plugin", "unregister", cmd_plugin_unregister, no_opts, 1, 1, "NAME",
     "remove a plugin"},
    {"plan", "create", cmd_plan_create, file_opts, 0, 0, "-f FILE",
     "create a plan from a JSON plan file (- for stdin)"},
    {"plan", "list", cmd_plan_list, no_opts, 0, 0, "", "list plans"},
    {"plan", "show", cmd_plan_show, no_opts, 1, 1, "PLAN", "show a plan"},
    {"plan", "delete", cmd_plan_delete, no_opts, 1, 1, "PLAN",
     "delete a plan (its checkpoints stay)"},
    {"protect", NULL, cmd_protect, protect_opts, 1, 1,
     "PLAN [--wait] [--fail-fast]", "take a checkpoint of a plan"},
    {"checkpoint", "list", cmd_checkpoint_list, ckp_list_opts, 0, 0,
     "[--plan PLAN] [--status STATUS]", "list checkpoints, newest first"},
    {"checkpoint", "show", cmd_checkpoint_show, no_opts, 1, 1, "CHECKPOINT",
     "show a checkpoint and its per-resource results"},
    {"checkpoint", "delete", cmd_checkpoint_delete, delete_opts, 1, 1,
     "CHECKPOINT [--wait] [--force]",
     "delete a checkpoint's data (--force: even if a type's plugin is not "
     "the one that saved it)"},
    /* Bank-side verification: implemented in cli_verify.c. */
    {"checkpoint", "verify", cli_cmd_checkpoint_verify, no_opts, 1, 1,
     "CHECKPOINT", "verify a checkpoint's data in its bank"},
    /* Before the one-word "restore CHECKPOINT": the first match wins. */
    {"restore", "show", cmd_restore_show, no_opts, 1, 1, "RESTORE",
     "show a restore and the restored ids"},
    {"restore", NULL, cmd_restore, restore_opts, 1, 1,
     "CHECKPOINT [-p [TYPE[#ID]:]KEY=VALUE]... [--params-file FILE] [--wait] "
     "[--force]",
     "restore a checkpoint (--force: even if a type's plugin is not the one "
     "that saved it)"},
    {"watch", NULL, cmd_watch, no_opts, 1, 1, "OPERATION",
     "follow an operation until it ends"},
    {"cancel", NULL, cmd_cancel, no_opts, 1, 1, "OPERATION",
     "cancel a running operation"},
    {"flow", NULL, cmd_flow, flow_opts, 1, 1,
     "PLAN|CHECKPOINT [--dot] [--kind protect|restore|delete]",
     "show the task DAG (--dot: Graphviz)"},
    {"health", NULL, cmd_health, health_opts, 0, 1, "[ADDR] [--service NAME]",
     "check grpc.health.v1 on any smaug server; exit 0 if SERVING"},
    {"audit", "list", cmd_audit_list, audit_opts, 0, 0,
     "[--who NAME] [--method METHOD] [--since TIME] [--limit N]",
     "list audited calls, newest first (admin); TIME: Unix ms, or an age "
     "such as 90s, 30m, 12h, 7d"},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void print_usage(FILE *f) {
  fprintf(f, "usage: smaug [--server ADDR] [-o table|json] [--timeout MS] "
             "COMMAND ...\n\ncommands:\n");
  for (size_t i = 0; i < N_COMMANDS; i++) {
    const cmd_t *c = &commands[i];
    char words[160];
    snprintf(words, sizeof(words), "%s%s%s %s", c->noun, c->verb ? " " : "",
             c->verb ? c->verb : "", c->usage);
    if (strlen(words) > 40)
      fprintf(f, "  %s\n  %-40s %s\n", words, "", c->help);
    else
      fprintf(f, "  %-40s %s\n", words, c->help);
  }
  fprintf(f,
          "\nThe server is --server, else $SMAUG_SERVER, else %s.\n"
          "TLS: --tls-ca FILE ($SMAUG_TLS_CA) trusts that CA; --tls-cert "
          "FILE and\n--tls-key FILE ($SMAUG_TLS_CERT, $SMAUG_TLS_KEY) present "
          "a client certificate.\nToken: $SMAUG_TOKEN, or --token-file FILE "
          "($SMAUG_TOKEN_FILE, mode 0600),\nor --token TOKEN (seen by other "
          "local users in the process list); sent\nas \"authorization: "
          "Bearer ...\" and never printed.\n"
          "Exit codes: 0 success, 1 failed, 2 usage error, 3 server "
          "unreachable.\n",
          DEFAULT_SERVER);
}

static void print_cmd_usage(FILE *f, const cmd_t *c) {
  fprintf(f, "usage: smaug %s%s%s %s\n  %s\n", c->noun, c->verb ? " " : "",
          c->verb ? c->verb : "", c->usage, c->help);
}

/* Number of words a global option at argv[i] takes (1 or 2), 0 if it is
 * not a global option. */
static int global_words(const char *w) {
  for (const cli_opt_t *o = global_opts; o->name; o++) {
    size_t n = strlen(o->name);
    if (w[0] == '-' && w[1] == '-' && strncmp(w + 2, o->name, n) == 0) {
      if (w[2 + n] == '=')
        return 1;
      if (w[2 + n] == '\0')
        return o->has_value ? 2 : 1;
    }
    if (o->short_name && w[0] == '-' && w[1] == o->short_name)
      return o->has_value && w[2] == '\0' ? 2 : 1;
  }
  return 0;
}

/* `--NAME`, else the environment variable `env`, else NULL. */
static const char *opt_or_env(const cli_args_t *a, const char *name,
                              const char *env) {
  const char *v = cli_args_get(a, name);
  if (v == NULL)
    v = getenv(env);
  return v != NULL && *v != '\0' ? v : NULL;
}

/* Reads the token in `path` into `buf` without a trailing newline. The file
 * must be a regular file that its group and others cannot read. The token
 * itself is never printed. */
static int read_token_file(cli_ctx_t *ctx, const char *path, char *buf,
                           size_t len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    int e = errno;
    if (fd >= 0)
      close(fd);
    return usage_error(ctx, "--token-file %s: %s", path, strerror(e));
  }
  if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
    close(fd);
    return usage_error(ctx, "--token-file %s: %s", path,
                       !S_ISREG(st.st_mode)
                           ? "not a regular file"
                           : "readable by its group or others; chmod 600 it");
  }
  ssize_t n = read(fd, buf, len - 1);
  close(fd);
  if (n < 0)
    return usage_error(ctx, "--token-file %s: %s", path, strerror(errno));
  buf[n] = '\0';
  buf[strcspn(buf, "\r\n")] = '\0';
  if (buf[0] == '\0')
    return usage_error(ctx, "--token-file %s: empty", path);
  return 0;
}

/* TLS files and the token, from options or the environment. */
static int setup_security(cli_ctx_t *ctx, const cli_args_t *a) {
  static char token_buf[4096];
  static cli_rpc_security_t sec;
  sec.tls_ca = opt_or_env(a, "tls-ca", "SMAUG_TLS_CA");
  sec.tls_cert = opt_or_env(a, "tls-cert", "SMAUG_TLS_CERT");
  sec.tls_key = opt_or_env(a, "tls-key", "SMAUG_TLS_KEY");
  if ((sec.tls_cert == NULL) != (sec.tls_key == NULL))
    return usage_error(ctx, "--tls-cert and --tls-key go together");
  const char *token = cli_args_get(a, "token");
  const char *file = cli_args_get(a, "token-file");
  if (token != NULL && file != NULL)
    return usage_error(ctx, "--token and --token-file: give one");
  if (token == NULL && file == NULL) {
    token = getenv("SMAUG_TOKEN");
    if (token == NULL || *token == '\0') {
      token = NULL;
      file = getenv("SMAUG_TOKEN_FILE");
      if (file != NULL && *file == '\0')
        file = NULL;
    }
  }
  if (file != NULL) {
    int rc = read_token_file(ctx, file, token_buf, sizeof(token_buf));
    if (rc != 0)
      return rc;
    token = token_buf;
  }
  sec.token = token;
  cli_rpc_set_security(&sec);
  return 0;
}

static int setup_globals(cli_ctx_t *ctx, const cli_args_t *a) {
  const char *s = cli_args_get(a, "server");
  if (s == NULL)
    s = getenv("SMAUG_SERVER");
  ctx->server = s && *s ? s : DEFAULT_SERVER;
  /* gRPC would wrap a port above 65535 and connect elsewhere. */
  rt_addr_t addr;
  char why[256];
  if (rt_addr_parse(ctx->server, &addr, why, sizeof(why)) != 0)
    return usage_error(ctx, "server address %s: %s", ctx->server, why);
  if (!addr.is_unix && addr.host[0] == '\0')
    return usage_error(ctx, "server address %s: missing host", ctx->server);
  const char *o = cli_args_get(a, "output");
  if (o != NULL) {
    if (strcmp(o, "json") == 0)
      ctx->json = 1;
    else if (strcmp(o, "table") != 0)
      return usage_error(ctx, "--output must be table or json, not \"%s\"", o);
  }
  const char *t = cli_args_get(a, "timeout");
  ctx->timeout_ms = DEFAULT_TIMEOUT_MS;
  if (t != NULL) {
    char *end;
    errno = 0;
    long long v = strtoll(t, &end, 10);
    if (errno || end == t || *end || v <= 0)
      return usage_error(ctx, "--timeout takes milliseconds > 0, not \"%s\"",
                         t);
    ctx->timeout_ms = v;
  }
  return setup_security(ctx, a);
}

int cli_cmd_main(int argc, char **argv) {
  cli_ctx_t ctx = {.out = stdout, .err = stderr};
  ctx.tty = isatty(STDOUT_FILENO);
  struct winsize ws;
  if (ctx.tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0)
    ctx.width = ws.ws_col;

  /* Global options may come before the command words. */
  int i = 1;
  while (i < argc && argv[i][0] == '-' && argv[i][1] != '\0') {
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      print_usage(stdout);
      return CLI_EXIT_OK;
    }
    int n = global_words(argv[i]);
    if (n == 0)
      return usage_error(&ctx, "unknown option %s", argv[i]);
    i += n;
  }
  if (i >= argc) {
    print_usage(stderr);
    return CLI_EXIT_USAGE;
  }
  const char *noun = argv[i];
  if (strcmp(noun, "help") == 0) {
    print_usage(stdout);
    return CLI_EXIT_OK;
  }
  const cmd_t *cmd = NULL;
  int has_noun = 0;
  int verb_at = i + 1;
  for (size_t k = 0; k < N_COMMANDS; k++) {
    const cmd_t *c = &commands[k];
    if (strcmp(c->noun, noun) != 0)
      continue;
    has_noun = 1;
    if (c->verb == NULL ||
        (verb_at < argc && strcmp(c->verb, argv[verb_at]) == 0)) {
      cmd = c;
      break;
    }
  }
  if (!has_noun)
    return usage_error(&ctx, "unknown command \"%s\"", noun);
  if (cmd == NULL) {
    if (verb_at < argc)
      usage_error(&ctx, "unknown command \"%s %s\"", noun, argv[verb_at]);
    else
      usage_error(&ctx, "\"%s\" needs a subcommand", noun);
    for (size_t k = 0; k < N_COMMANDS; k++)
      if (strcmp(commands[k].noun, noun) == 0)
        print_cmd_usage(stderr, &commands[k]);
    return CLI_EXIT_USAGE;
  }

  /* The words left: globals before the command, and all after it. */
  int first_rest = cmd->verb ? verb_at + 1 : i + 1;
  char **words = calloc((size_t)argc + 1, sizeof(*words));
  if (words == NULL)
    return out_of_memory(&ctx);
  int nw = 0;
  for (int k = 1; k < i; k++)
    words[nw++] = argv[k];
  for (int k = first_rest; k < argc; k++)
    words[nw++] = argv[k];
  cli_opt_t table[24];
  size_t nt = 0;
  for (const cli_opt_t *o = global_opts; o->name; o++)
    table[nt++] = *o;
  for (const cli_opt_t *o = cmd->opts; o->name && nt + 1 < 24; o++)
    table[nt++] = *o;
  table[nt] = (cli_opt_t){0};

  cli_args_t args;
  char err[256];
  int rc = cli_args_parse(nw, words, table, &args, err, sizeof(err));
  if (rc != 0) {
    rc = rc == UV_ENOMEM ? out_of_memory(&ctx)
                         : usage_error(&ctx, "%s %s: %s", cmd->noun,
                                       cmd->verb ? cmd->verb : "", err);
    free(words);
    return rc;
  }
  /* Options point into `table`; it outlives the command. */
  ctx.args = &args;
  if (cli_args_count(&args, "help")) {
    print_cmd_usage(stdout, cmd);
    rc = CLI_EXIT_OK;
  } else if (args.n_pos < cmd->min_pos || args.n_pos > cmd->max_pos) {
    usage_error(&ctx, "wrong number of arguments");
    print_cmd_usage(stderr, cmd);
    rc = CLI_EXIT_USAGE;
  } else if ((rc = setup_globals(&ctx, &args)) == 0) {
    rc = cmd->fn(&ctx);
  }
  fflush(stdout);
  cli_args_free(&args);
  free(words);
  return rc;
}
