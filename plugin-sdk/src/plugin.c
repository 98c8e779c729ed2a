/*
 * plugin.c - the plugin process: definition checks, options, the gRPC
 * server, GetPluginInfo (derived from the type table), ListDependents,
 * CancelOperation, graceful stop and the parent-death watch
 * (smaug/plugin.h). The activity RPCs themselves live in activity.c.
 */
#include "rt_creds.h"
#include "rt_log.h"
#include "rt_secret.h"
#include "sdk.h"

#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#define DEFAULT_LISTEN       "127.0.0.1:0"
#define DEFAULT_GRACE_MS     5000
#define DEFAULT_TTL_MS       3600000
#define DEFAULT_HEARTBEAT_MS 5000

/* ------------------------------------------------------------ options */

static int parse_int(const char *s, long long min, long long *out) {
  char *end;
  long long v = strtoll(s, &end, 10);
  if (s[0] == '\0' || *end != '\0' || v < min)
    return SMAUG_EINVAL;
  *out = v;
  return 0;
}

sdk_queue_t *sdk_plugin_queue(smaug_plugin_t *p, const char *name) {
  return sdk_queue_find(p->queues, p->n_queues, name);
}

/* "NAME=N" from --queue. */
static int queue_flag(smaug_plugin_t *p, const char *arg) {
  const char *eq = strchr(arg, '=');
  if (eq == NULL)
    return SMAUG_EINVAL;
  char name[128];
  size_t n = (size_t)(eq - arg);
  if (n == 0 || n >= sizeof(name))
    return SMAUG_EINVAL;
  memcpy(name, arg, n);
  name[n] = '\0';
  sdk_queue_t *q = sdk_plugin_queue(p, name);
  long long v;
  if (q == NULL || parse_int(eq + 1, 1, &v) != 0 || v > 100000)
    return SMAUG_EINVAL;
  q->limit = (unsigned)v;
  return 0;
}

/* SMAUG_QUEUE_<NAME>, the name upper-cased with '-' as '_'. */
static int queue_env(sdk_queue_t *q) {
  char var[160] = "SMAUG_QUEUE_";
  size_t o = strlen(var);
  for (const char *c = q->name; *c != '\0' && o + 1 < sizeof(var); c++)
    var[o++] = *c == '-' ? '_' : (*c >= 'a' && *c <= 'z') ? *c - 32 : *c;
  var[o] = '\0';
  const char *v = getenv(var);
  long long n;
  if (v == NULL)
    return 0;
  if (parse_int(v, 1, &n) != 0 || n > 100000) {
    rt_log(RT_LOG_ERROR, "plugin", "bad queue limit", "var=%s value=%s", var,
           v);
    return SMAUG_EINVAL;
  }
  q->limit = (unsigned)n;
  return 0;
}

static const char sdk_usage[] =
    "options: --listen ADDR  --log-level LEVEL  --grace-ms N\n"
    "         --exit-with-parent  --queue NAME=N  --result-ttl-ms N\n"
    "         --heartbeat-ms N  --tls-cert FILE  --tls-key FILE\n"
    "         --tls-client-ca FILE  --help\n";

static const char *const sdk_options[] = {
    "--listen",  "--log-level",     "--grace-ms",     "--exit-with-parent",
    "--queue",   "--result-ttl-ms", "--heartbeat-ms", "--tls-cert",
    "--tls-key", "--tls-client-ca", "--help",         "-h"};

/* Option `i` of the definition in the current layout (the array's stride
 * is the size the plugin was compiled with). */
static smaug_option_def_t option_at(const smaug_plugin_def_t *def, size_t i) {
  smaug_option_def_t o = {0};
  size_t stride = def->options[0].size;
  memcpy(&o, (const char *)def->options + i * stride,
         stride < sizeof(o) ? stride : sizeof(o));
  return o;
}

static void print_options(FILE *f, const smaug_plugin_def_t *def) {
  fputs(sdk_usage, f);
  for (size_t i = 0; i < def->n_options; i++) {
    smaug_option_def_t o = option_at(def, i);
    if (o.env != NULL)
      fprintf(f, "  %s VALUE (or %s)\n", o.name, o.env);
    else
      fprintf(f, "  %s VALUE\n", o.name);
    if (o.help != NULL)
      fprintf(f, "      %s\n", o.help);
  }
}

static int usage(smaug_plugin_t *p, const char *why) {
  rt_log(RT_LOG_ERROR, "plugin", "bad command line", "reason=\"%s\"", why);
  print_options(stderr, &p->def);
  return SMAUG_EINVAL;
}

/* The TLS options go together (an empty variable counts as unset), and
 * the key must be private to its owner (rt_secret.h). */
static int tls_check(smaug_plugin_t *p) {
  const char **v[] = {&p->tls_cert, &p->tls_key, &p->tls_client_ca};
  for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
    if (*v[i] != NULL && (*v[i])[0] == '\0')
      *v[i] = NULL;
  if ((p->tls_cert == NULL) != (p->tls_key == NULL))
    return usage(p, "--tls-cert and --tls-key go together");
  if (p->tls_client_ca != NULL && p->tls_cert == NULL)
    return usage(p, "--tls-client-ca needs --tls-cert and --tls-key");
  char why[PATH_MAX + 160];
  if (p->tls_key != NULL &&
      rt_secret_file_check(p->tls_key, "key file", why, sizeof(why)) != 0)
    return usage(p, why);
  return 0;
}

static int parse_args(smaug_plugin_t *p, int argc, char **argv) {
  const char *env;
  smaug_log_level_t lvl;
  long long v;
  if ((env = getenv("SMAUG_PLUGIN_LOG_LEVEL")) != NULL &&
      sdk_log_parse(env, &lvl) == 0)
    smaug_log_set_level(lvl);
  if ((env = getenv("SMAUG_PLUGIN_GRACE_MS")) != NULL &&
      parse_int(env, 0, &v) == 0)
    p->grace_ms = (int)v;
  if ((env = getenv("SMAUG_PLUGIN_RESULT_TTL_MS")) != NULL &&
      parse_int(env, 1, &v) == 0)
    p->result_ttl_ms = v;
  if ((env = getenv("SMAUG_PLUGIN_HEARTBEAT_MS")) != NULL &&
      parse_int(env, 1, &v) == 0 && v <= 3600000)
    p->heartbeat_ms = (int)v;
  if ((env = getenv("SMAUG_PLUGIN_EXIT_WITH_PARENT")) != NULL)
    p->exit_with_parent = strcmp(env, "1") == 0;
  for (size_t i = 0; i < p->n_queues; i++)
    if (queue_env(&p->queues[i]) != 0)
      return SMAUG_EINVAL;
  const char *listen = getenv("SMAUG_PLUGIN_LISTEN");
  p->tls_cert = getenv("SMAUG_PLUGIN_TLS_CERT");
  p->tls_key = getenv("SMAUG_PLUGIN_TLS_KEY");
  p->tls_client_ca = getenv("SMAUG_PLUGIN_TLS_CLIENT_CA");
  for (size_t k = 0; k < p->def.n_options; k++) {
    const char *e = p->options[k].env;
    if (e != NULL && (env = getenv(e)) != NULL && env[0] != '\0')
      p->option_values[k] = env;
  }

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *val = NULL;
    char opt[64];
    const char *eq = strchr(a, '=');
    if (strncmp(a, "--", 2) != 0)
      return usage(p, "unexpected argument");
    size_t ol = eq != NULL ? (size_t)(eq - a) : strlen(a);
    if (ol >= sizeof(opt))
      return usage(p, "unknown option");
    memcpy(opt, a, ol);
    opt[ol] = '\0';
    if (strcmp(opt, "--exit-with-parent") == 0) {
      p->exit_with_parent = 1;
      continue;
    }
    if (eq != NULL)
      val = eq + 1;
    else if (i + 1 < argc)
      val = argv[++i];
    else
      return usage(p, "option needs a value");
    if (strcmp(opt, "--listen") == 0) {
      listen = val;
    } else if (strcmp(opt, "--log-level") == 0) {
      if (sdk_log_parse(val, &lvl) != 0)
        return usage(p, "--log-level: debug, info, warn or error");
      smaug_log_set_level(lvl);
    } else if (strcmp(opt, "--grace-ms") == 0) {
      if (parse_int(val, 0, &v) != 0 || v > 3600000)
        return usage(p, "--grace-ms: a number of milliseconds");
      p->grace_ms = (int)v;
    } else if (strcmp(opt, "--result-ttl-ms") == 0) {
      if (parse_int(val, 1, &v) != 0)
        return usage(p, "--result-ttl-ms: a number of milliseconds");
      p->result_ttl_ms = v;
    } else if (strcmp(opt, "--heartbeat-ms") == 0) {
      if (parse_int(val, 1, &v) != 0 || v > 3600000)
        return usage(p, "--heartbeat-ms: a number of milliseconds");
      p->heartbeat_ms = (int)v;
    } else if (strcmp(opt, "--queue") == 0) {
      if (queue_flag(p, val) != 0)
        return usage(p, "--queue: NAME=N for a declared queue, N >= 1");
    } else if (strcmp(opt, "--tls-cert") == 0) {
      p->tls_cert = val;
    } else if (strcmp(opt, "--tls-key") == 0) {
      p->tls_key = val;
    } else if (strcmp(opt, "--tls-client-ca") == 0) {
      p->tls_client_ca = val;
    } else {
      size_t k = 0;
      while (k < p->def.n_options && strcmp(opt, p->options[k].name) != 0)
        k++;
      if (k == p->def.n_options)
        return usage(p, "unknown option");
      p->option_values[k] = val;
    }
  }
  int err = tls_check(p);
  if (err != 0)
    return err;
  /* Only a command line that parsed writes the plugin's variables. */
  for (size_t k = 0; k < p->def.n_options; k++)
    if (p->option_values[k] != NULL)
      *p->options[k].value = p->option_values[k];
  if ((p->listen = strdup(listen != NULL ? listen : DEFAULT_LISTEN)) == NULL)
    return SMAUG_ENOMEM;
  return 0;
}

/* ------------------------------------------------------------- info */

static void info_free(Smaug__V1__GetPluginInfoResponse *info) {
  if (info == NULL)
    return;
  for (size_t i = 0; i < info->n_types; i++) {
    Smaug__V1__ResourceTypeInfo *t = info->types[i];
    for (size_t j = 0; j < t->n_operations; j++)
      free(t->operations[j]);
    free(t->operations);
    free(t);
  }
  free(info->types);
  free(info);
}

/* GetPluginInfo is derived from the table, so nothing is declared twice.
 * Strings point into the definition, which outlives the plugin. */
static int info_build(smaug_plugin_t *p) {
  Smaug__V1__GetPluginInfoResponse *info = calloc(1, sizeof(*info));
  if (info == NULL)
    return SMAUG_ENOMEM;
  smaug__v1__get_plugin_info_response__init(info);
  info->name = (char *)p->def.name;
  info->version = (char *)p->def.version;
  info->protocol_major = SMAUG_PROTOCOL_MAJOR;
  info->protocol_minor = SMAUG_PROTOCOL_MINOR;
  info->max_concurrency = p->def.max_concurrency;
  if ((info->types = calloc(p->def.n_types, sizeof(*info->types))) == NULL)
    goto nomem;
  for (size_t i = 0; i < p->def.n_types; i++) {
    const smaug_type_def_t *td = &p->types[i];
    Smaug__V1__ResourceTypeInfo *t = calloc(1, sizeof(*t));
    if (t == NULL)
      goto nomem;
    smaug__v1__resource_type_info__init(t);
    info->types[info->n_types++] = t;
    t->type = (char *)td->type;
    t->options_schema = (char *)(td->options_schema ? td->options_schema : "");
    t->restore_schema = (char *)(td->restore_schema ? td->restore_schema : "");
    t->max_concurrency = td->max_concurrency;
    t->lists_dependents = td->list_dependents != NULL;
    if ((t->operations = calloc(3, sizeof(*t->operations))) == NULL)
      goto nomem;
    const smaug_op_def_t *ops[] = {&td->protect, &td->restore, &td->remove};
    for (int k = 0; k < 3; k++) {
      if (ops[k]->parallel == NULL && ops[k]->sync == NULL)
        continue;
      Smaug__V1__OperationSupport *o = calloc(1, sizeof(*o));
      if (o == NULL)
        goto nomem;
      smaug__v1__operation_support__init(o);
      o->kind = (Smaug__V1__OperationKind)(k + 1);
      o->parallel = ops[k]->parallel != NULL;
      o->sync = 1; /* explicit, or the SDK's wait for Parallel's jobs */
      t->operations[t->n_operations++] = o;
    }
  }
  p->info = info;
  return 0;
nomem:
  info_free(info);
  return SMAUG_ENOMEM;
}

/* ---------------------------------------------------------- handlers */

static void on_info(rt_call_t *call, const Smaug__V1__GetPluginInfoRequest *req,
                    void *data) {
  smaug_plugin_t *p = data;
  /* 0 is an unset field: a caller that does not say which protocol it
   * speaks is refused like one that speaks another. */
  if (req->protocol_major == 0) {
    rt_call_fail(call, GRPC_STATUS_FAILED_PRECONDITION,
                 "protocol_major is missing (0); this plugin speaks %d",
                 SMAUG_PROTOCOL_MAJOR);
    return;
  }
  if (req->protocol_major != SMAUG_PROTOCOL_MAJOR) {
    rt_call_fail(call, GRPC_STATUS_FAILED_PRECONDITION,
                 "protocol_major %u is not supported; this plugin speaks %d",
                 req->protocol_major, SMAUG_PROTOCOL_MAJOR);
    return;
  }
  rt_call_reply(call, &p->info->base);
}

struct smaug_dependents_s {
  const Smaug__V1__ListDependentsRequest *req;
  Smaug__V1__ListDependentsResponse resp;
  int failed; /* smaug_dependents_fail was called */
  int err;
  char msg[1024];
};

int smaug_dependents_fail(smaug_dependents_t *deps, int err, const char *fmt,
                          ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(deps->msg, sizeof(deps->msg), fmt, ap);
  va_end(ap);
  deps->failed = 1;
  deps->err = err;
  return err;
}

const char *smaug_dependents_type(const smaug_dependents_t *deps) {
  return deps->req->resource->type;
}

const char *smaug_dependents_id(const smaug_dependents_t *deps) {
  return deps->req->resource->id;
}

const char *smaug_dependents_extra(const smaug_dependents_t *deps,
                                   const char *key) {
  const Smaug__V1__Resource *r = deps->req->resource;
  for (size_t i = 0; i < r->n_extra; i++)
    if (strcmp(r->extra[i]->key, key) == 0)
      return r->extra[i]->value;
  return NULL;
}

const char *smaug_dependents_param(const smaug_dependents_t *deps,
                                   const char *key) {
  for (size_t i = 0; i < deps->req->n_parameters; i++)
    if (strcmp(deps->req->parameters[i]->key, key) == 0)
      return deps->req->parameters[i]->value;
  return NULL;
}

static void resource_free(Smaug__V1__Resource *r) {
  if (r == NULL)
    return;
  for (size_t i = 0; i < r->n_extra; i++) {
    free(r->extra[i]->key);
    free(r->extra[i]->value);
    free(r->extra[i]);
  }
  free(r->extra);
  free(r->type);
  free(r->id);
  if (r->name != protobuf_c_empty_string)
    free(r->name);
  free(r);
}

int smaug_dependents_add(smaug_dependents_t *deps, const char *type,
                         const char *id, const char *name) {
  if (type == NULL || id == NULL || type[0] == '\0' || id[0] == '\0')
    return SMAUG_EINVAL;
  Smaug__V1__ListDependentsResponse *resp = &deps->resp;
  Smaug__V1__Resource **v =
      realloc(resp->dependents, (resp->n_dependents + 1) * sizeof(*v));
  if (v == NULL)
    return SMAUG_ENOMEM;
  resp->dependents = v;
  Smaug__V1__Resource *r = calloc(1, sizeof(*r));
  if (r == NULL)
    return SMAUG_ENOMEM;
  smaug__v1__resource__init(r);
  r->type = strdup(type);
  r->id = strdup(id);
  if (name != NULL)
    r->name = strdup(name);
  if (r->type == NULL || r->id == NULL || r->name == NULL) {
    resource_free(r);
    return SMAUG_ENOMEM;
  }
  v[resp->n_dependents++] = r;
  return 0;
}

int smaug_dependents_set_extra(smaug_dependents_t *deps, const char *key,
                               const char *value) {
  Smaug__V1__ListDependentsResponse *resp = &deps->resp;
  if (resp->n_dependents == 0 || key == NULL || value == NULL)
    return SMAUG_EINVAL;
  Smaug__V1__Resource *r = resp->dependents[resp->n_dependents - 1];
  Smaug__V1__Resource__ExtraEntry **v =
      realloc(r->extra, (r->n_extra + 1) * sizeof(*v));
  if (v == NULL)
    return SMAUG_ENOMEM;
  r->extra = v;
  Smaug__V1__Resource__ExtraEntry *e = calloc(1, sizeof(*e));
  if (e == NULL)
    return SMAUG_ENOMEM;
  smaug__v1__resource__extra_entry__init(e);
  e->key = strdup(key);
  e->value = strdup(value);
  if (e->key == NULL || e->value == NULL) {
    free(e->key);
    free(e->value);
    free(e);
    return SMAUG_ENOMEM;
  }
  v[r->n_extra++] = e;
  return 0;
}

static void on_list_dependents(rt_call_t *call,
                               const Smaug__V1__ListDependentsRequest *req,
                               void *data) {
  smaug_plugin_t *p = data;
  if (req->resource == NULL || req->resource->type[0] == '\0' ||
      req->resource->id[0] == '\0') {
    rt_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
                 "resource.type and resource.id are required");
    return;
  }
  const smaug_type_def_t *t = NULL;
  for (size_t i = 0; i < p->def.n_types && t == NULL; i++)
    if (strcmp(p->types[i].type, req->resource->type) == 0)
      t = &p->types[i];
  if (t == NULL) {
    rt_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "unknown resource type %s",
                 req->resource->type);
    return;
  }
  if (t->list_dependents == NULL) {
    rt_call_fail(call, GRPC_STATUS_UNIMPLEMENTED, "%s does not list dependents",
                 t->type);
    return;
  }
  smaug_dependents_t d = {.req = req};
  smaug__v1__list_dependents_response__init(&d.resp);
  int err = t->list_dependents(&d, t->data);
  if (d.failed)
    rt_call_fail(call,
                 d.err == 0 ? GRPC_STATUS_UNKNOWN : sdk_err_to_status(d.err),
                 "%s", d.msg);
  else if (err != 0)
    rt_call_fail(call, sdk_err_to_status(err), "%s", smaug_strerror(err));
  else
    rt_call_reply(call, &d.resp.base);
  for (size_t i = 0; i < d.resp.n_dependents; i++)
    resource_free(d.resp.dependents[i]);
  free(d.resp.dependents);
}

static void on_cancel_operation(rt_call_t *call,
                                const Smaug__V1__CancelOperationRequest *req,
                                void *data) {
  smaug_plugin_t *p = data;
  if (req->operation_id[0] == '\0') {
    rt_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
                 "operation_id is required");
    return;
  }
  Smaug__V1__CancelOperationResponse resp =
      SMAUG__V1__CANCEL_OPERATION_RESPONSE__INIT;
  resp.cancelled = sdk_activity_cancel_op(p, req->operation_id);
  rt_log(RT_LOG_INFO, "plugin", "operation cancelled",
         "op=%s cancelled=%u reason=\"%s\"", req->operation_id, resp.cancelled,
         req->reason);
  rt_call_reply(call, &resp.base);
}

/* ------------------------------------------------------- definition */

/* A declared option needs a "--name" that fits the parser's buffer, is
 * not one of the SDK's and is not declared twice, and a place to write. */
static int check_options(const smaug_plugin_def_t *def) {
  if (def->n_options == 0)
    return 0;
  if (def->options == NULL ||
      def->options[0].size <
          offsetof(smaug_option_def_t, value) + sizeof(def->options[0].value))
    return SMAUG_EINVAL;
  for (size_t i = 0; i < def->n_options; i++) {
    smaug_option_def_t o = option_at(def, i);
    if (o.name == NULL || strncmp(o.name, "--", 2) != 0 || strlen(o.name) < 3 ||
        strlen(o.name) >= 64 || strchr(o.name, '=') != NULL || o.value == NULL)
      return SMAUG_EINVAL;
    for (size_t k = 0; k < sizeof(sdk_options) / sizeof(sdk_options[0]); k++)
      if (strcmp(o.name, sdk_options[k]) == 0)
        return SMAUG_EINVAL;
    for (size_t k = 0; k < i; k++)
      if (strcmp(o.name, option_at(def, k).name) == 0)
        return SMAUG_EINVAL;
  }
  return 0;
}

static int check_def(const smaug_plugin_def_t *def) {
  if (def == NULL || def->size < offsetof(smaug_plugin_def_t, queues) ||
      def->name == NULL || def->name[0] == '\0' || def->version == NULL ||
      def->types == NULL || def->n_types == 0 ||
      def->types[0].size < offsetof(smaug_type_def_t, list_dependents))
    return SMAUG_EINVAL;
  return 0;
}

/* A schema is published as text: it must at least be a JSON object. */
static int schema_ok(const char *type, const char *schema) {
  if (schema == NULL || schema[0] == '\0')
    return 1;
  json_error_t e;
  json_t *j = json_loads(schema, 0, &e);
  int ok = j != NULL && json_is_object(j);
  json_decref(j);
  if (!ok)
    rt_log(RT_LOG_ERROR, "plugin", "schema is not a JSON object",
           "type=%s line=%d error=\"%s\"", type, e.line, e.text);
  return ok;
}

static void on_timer_closed(uv_handle_t *h) {
  smaug_plugin_t *p = h->data;
  if (--p->timers_open > 0)
    return;
  sdk_activity_sweep(p, 1);
  if (p->on_stopped != NULL)
    p->on_stopped(p, p->on_stopped_data);
}

static void on_sweep(uv_timer_t *t) {
  sdk_activity_sweep(t->data, 0);
}

static void on_heartbeat(uv_timer_t *t) {
  sdk_activity_heartbeat(t->data);
}

static void on_progress_async(uv_async_t *a) {
  smaug_plugin_t *p = a->data;
  sdk_job_flush_progress(&p->jobs);
}

static void on_parent_check(uv_timer_t *t) {
  smaug_plugin_t *p = t->data;
  if ((int)getppid() != p->parent_pid) {
    rt_log(RT_LOG_WARN, "plugin", "parent exited, stopping", "parent=%d",
           p->parent_pid);
    sdk_plugin_stop(p, NULL, NULL);
  }
}

static void jobs_drained(void *data);

int sdk_plugin_new(rt_t *rt, const smaug_plugin_def_t *def, int argc,
                   char **argv, smaug_plugin_t **out) {
  int err = check_def(def);
  if (err != 0) {
    rt_log(RT_LOG_ERROR, "plugin", "invalid plugin definition", NULL);
    return err;
  }
  smaug_plugin_t *p = calloc(1, sizeof(*p));
  if (p == NULL)
    return SMAUG_ENOMEM;
  p->rt = rt;
  p->loop = rt_loop(rt);
  memcpy(&p->def, def, def->size < sizeof(p->def) ? def->size : sizeof(p->def));
  if ((err = check_options(&p->def)) != 0) {
    rt_log(RT_LOG_ERROR, "plugin", "invalid plugin options", NULL);
    free(p);
    return err;
  }
  p->grace_ms = DEFAULT_GRACE_MS;
  p->result_ttl_ms = DEFAULT_TTL_MS;
  p->heartbeat_ms = DEFAULT_HEARTBEAT_MS;
  kv_init_borrowed(&p->acts);
  kv_init_borrowed(&p->res);
  kv_init_borrowed(&p->cancelled_ops);
  sdk_jobs_init(&p->jobs, p->loop, &p->progress_async, &sdk_activity_job_hooks,
                jobs_drained, p);
  err = SMAUG_ENOMEM;
  p->types = calloc(def->n_types, sizeof(*p->types));
  p->type_inflight = calloc(def->n_types, sizeof(*p->type_inflight));
  if (p->types == NULL || p->type_inflight == NULL)
    goto fail;
  if (p->def.n_options > 0) {
    p->options = calloc(p->def.n_options, sizeof(*p->options));
    p->option_values = calloc(p->def.n_options, sizeof(*p->option_values));
    if (p->options == NULL || p->option_values == NULL)
      goto fail;
    for (size_t i = 0; i < p->def.n_options; i++)
      p->options[i] = option_at(&p->def, i);
  }
  /* Copy each type into the current layout: the array's stride is the
   * size the plugin was compiled with. */
  size_t stride = def->types[0].size;
  for (size_t i = 0; i < def->n_types; i++) {
    const void *src = (const char *)def->types + i * stride;
    memcpy(&p->types[i], src,
           stride < sizeof(p->types[i]) ? stride : sizeof(p->types[i]));
    p->types[i].size = sizeof(p->types[i]);
    err = SMAUG_EINVAL;
    if (p->types[i].type == NULL || p->types[i].type[0] == '\0')
      goto fail;
    for (size_t k = 0; k < i; k++)
      if (strcmp(p->types[k].type, p->types[i].type) == 0)
        goto fail;
    if (!schema_ok(p->types[i].type, p->types[i].options_schema) ||
        !schema_ok(p->types[i].type, p->types[i].restore_schema))
      goto fail;
  }
  if (p->def.n_queues > 0) {
    err = SMAUG_ENOMEM;
    if ((p->queues = calloc(p->def.n_queues, sizeof(*p->queues))) == NULL)
      goto fail;
    for (size_t i = 0; i < p->def.n_queues; i++) {
      const smaug_queue_def_t *qd = &p->def.queues[i];
      err = SMAUG_EINVAL;
      if (qd->name == NULL || qd->name[0] == '\0' ||
          strspn(qd->name,
                 "abcdefghijklmnopqrstuvwxyz"
                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != strlen(qd->name))
        goto fail;
      err = SMAUG_ENOMEM;
      if ((p->queues[i].name = strdup(qd->name)) == NULL)
        goto fail;
      p->queues[i].limit = qd->limit ? qd->limit : 1;
      p->n_queues++;
    }
  }
  if ((err = parse_args(p, argc, argv)) != 0 || (err = info_build(p)) != 0)
    goto fail;
  rt_server_opts_t so = {.size = sizeof(so), .shutdown_grace_ms = p->grace_ms};
  if (so.shutdown_grace_ms == 0)
    so.shutdown_grace_ms = 1; /* 0 would mean the runtime's default */
  if ((err = rt_server_new(rt, &so, &p->srv)) != 0)
    goto fail;
  p->handlers.get_plugin_info = on_info;
  p->handlers.list_dependents = on_list_dependents;
  p->handlers.parallel_activity = sdk_activity_rpc;
  p->handlers.sync_activity = sdk_activity_rpc;
  p->handlers.cancel_operation = on_cancel_operation;
  if ((err = smaug_v1_protection_plugin_register(p->srv, &p->handlers, p)) != 0)
    goto fail;
  *out = p;
  return 0;
fail:
  if (p->srv != NULL) {
    /* Never started: nothing is in flight, free it directly. */
    rt_server_free(p->srv);
    p->srv = NULL;
  }
  sdk_plugin_free(p);
  return err;
}

/* Listens on p->listen: TLS when --tls-cert was given (mutual TLS with
 * --tls-client-ca: gRPC then refuses every caller whose certificate does
 * not chain to that CA), else plaintext. */
static int listen_on(smaug_plugin_t *p, int *bound, char *why, size_t len) {
  rt_creds_t *creds = NULL;
  why[0] = '\0';
  if (p->tls_cert != NULL) {
    rt_tls_files_t f = {
        .cert = p->tls_cert, .key = p->tls_key, .ca = p->tls_client_ca};
    int err = rt_creds_tls_server(&f, &creds, why, len);
    if (err != 0)
      return err;
  }
  int err = rt_server_listen_creds(p->srv, p->listen, creds, bound, why, len);
  rt_creds_release(creds); /* the server holds its own reference */
  return err;
}

static const char *tls_mode(const smaug_plugin_t *p) {
  return p->tls_client_ca != NULL ? "mtls"
         : p->tls_cert != NULL    ? "tls"
                                  : "none";
}

int sdk_plugin_start(smaug_plugin_t *p, int *port) {
  int bound = 0;
  char why[512];
  int err = listen_on(p, &bound, why, sizeof(why));
  if (err != 0) {
    rt_log(RT_LOG_ERROR, "plugin", "cannot listen", "addr=%s error=\"%s\"",
           p->listen, why[0] ? why : uv_strerror(err));
    return err;
  }
  if ((err = rt_server_start(p->srv)) != 0)
    return err;
  p->port = bound;
  uv_timer_init(p->loop, &p->sweep);
  p->sweep.data = p;
  p->timers_open++;
  uint64_t every =
      p->result_ttl_ms < 60000 ? (uint64_t)p->result_ttl_ms : 60000;
  uv_timer_start(&p->sweep, on_sweep, every, every);
  uv_unref((uv_handle_t *)&p->sweep);
  uv_timer_init(p->loop, &p->heartbeat);
  p->heartbeat.data = p;
  p->timers_open++;
  uv_timer_start(&p->heartbeat, on_heartbeat, (uint64_t)p->heartbeat_ms,
                 (uint64_t)p->heartbeat_ms);
  uv_unref((uv_handle_t *)&p->heartbeat);
  if ((err = uv_async_init(p->loop, &p->progress_async, on_progress_async)) !=
      0)
    return err; /* the timers are closed by the stop that follows */
  p->progress_async.data = p;
  p->async_open = 1;
  p->timers_open++;
  uv_unref((uv_handle_t *)&p->progress_async);
  if (p->exit_with_parent) {
    p->parent_pid = (int)getppid();
    /* The signal covers the common case; the poll covers a parent thread
     * that exits while the parent lives on, and the race before prctl. */
    (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
    uv_timer_init(p->loop, &p->parent);
    p->parent.data = p;
    p->timers_open++;
    uv_timer_start(&p->parent, on_parent_check, 0, 500);
    uv_unref((uv_handle_t *)&p->parent);
  }
  if (strncmp(p->listen, "unix:", 5) == 0) {
    rt_log(RT_LOG_INFO, "plugin", "listening",
           "addr=%s plugin=%s version=%s tls=%s", p->listen, p->def.name,
           p->def.version, tls_mode(p));
  } else {
    const char *colon = strrchr(p->listen, ':');
    int hl = colon != NULL ? (int)(colon - p->listen) : (int)strlen(p->listen);
    rt_log(RT_LOG_INFO, "plugin", "listening",
           "addr=%.*s:%d plugin=%s version=%s tls=%s", hl, p->listen, bound,
           p->def.name, p->def.version, tls_mode(p));
  }
  if (port != NULL)
    *port = bound;
  return 0;
}

/* The last step of a stop: close our timers, then report. */
static void stop_finish(smaug_plugin_t *p) {
  if (p->timers_open == 0) {
    p->timers_open = 1; /* the callback's decrement reaches 0 */
    on_timer_closed(&(uv_handle_t){.data = p});
    return;
  }
  uv_close((uv_handle_t *)&p->sweep, on_timer_closed);
  uv_close((uv_handle_t *)&p->heartbeat, on_timer_closed);
  if (p->async_open)
    uv_close((uv_handle_t *)&p->progress_async, on_timer_closed);
  if (p->exit_with_parent)
    uv_close((uv_handle_t *)&p->parent, on_timer_closed);
}

/* The job layer's `drained` callback: the last live job has ended. */
static void jobs_drained(void *data) {
  smaug_plugin_t *p = data;
  if (p->stopping == 2)
    stop_finish(p);
}

static void on_server_stopped(rt_server_t *srv, void *data) {
  smaug_plugin_t *p = data;
  /* Calls are gone; anything still running in the background stops. */
  p->stopping = 2;
  sdk_activity_cancel_all(p);
  rt_log(RT_LOG_INFO, "plugin", "server stopped", "jobs=%u",
         sdk_jobs_live(&p->jobs));
  if (sdk_jobs_live(&p->jobs) == 0)
    stop_finish(p);
}

void sdk_plugin_stop(smaug_plugin_t *p,
                     void (*cb)(smaug_plugin_t *p, void *data), void *data) {
  if (p->stopping)
    return;
  p->stopping = 1;
  if (cb != NULL) {
    p->on_stopped = cb;
    p->on_stopped_data = data;
  }
  rt_log(RT_LOG_INFO, "plugin", "stopping", "grace_ms=%d inflight=%u jobs=%u",
         p->grace_ms, p->inflight, sdk_jobs_live(&p->jobs));
  rt_server_set_serving(p->srv, "", 0);
  if (rt_server_shutdown(p->srv, on_server_stopped, p) != 0)
    on_server_stopped(p->srv, p);
}

void sdk_plugin_free(smaug_plugin_t *p) {
  if (p == NULL)
    return;
  rt_server_free(p->srv);
  sdk_activity_sweep(p, 1);
  kv_free(&p->acts);
  kv_free(&p->res);
  kv_free(&p->cancelled_ops);
  info_free(p->info);
  for (size_t i = 0; i < p->n_queues; i++)
    free(p->queues[i].name);
  free(p->queues);
  free(p->types);
  free(p->type_inflight);
  free(p->options);
  free(p->option_values);
  free(p->listen);
  free(p);
}

/* -------------------------------------------------------------- main */

typedef struct {
  smaug_plugin_t *p;
  uv_signal_t sig[2];
} main_ctx_t;

static void on_signal(uv_signal_t *s, int signum) {
  main_ctx_t *m = s->data;
  rt_log(RT_LOG_INFO, "plugin", "signal", "signal=%d", signum);
  sdk_plugin_stop(m->p, NULL, NULL);
}

static void on_main_stopped(smaug_plugin_t *p, void *data) {
  main_ctx_t *m = data;
  for (int i = 0; i < 2; i++)
    uv_close((uv_handle_t *)&m->sig[i], NULL);
}

/* --help anywhere on the command line: the options, then exit 0. */
static int help_wanted(int argc, char **argv, const smaug_plugin_def_t *def) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") != 0 && strcmp(argv[i], "-h") != 0)
      continue;
    smaug_plugin_def_t d = {0};
    if (check_def(def) != 0)
      return 0; /* sdk_plugin_new reports the definition */
    memcpy(&d, def, def->size < sizeof(d) ? def->size : sizeof(d));
    if (check_options(&d) != 0)
      return 0;
    printf("%s %s\nusage: %s [options]\n", d.name, d.version, argv[0]);
    print_options(stdout, &d);
    return 1;
  }
  return 0;
}

int smaug_plugin_main(int argc, char **argv, const smaug_plugin_def_t *def) {
  if (help_wanted(argc, argv, def))
    return 0;
  uv_loop_t loop;
  rt_t *rt = NULL;
  main_ctx_t m = {0};
  int rc = 1;
  if (uv_loop_init(&loop) != 0)
    return 1;
  if (rt_new(&loop, &rt) != 0)
    goto out_loop;
  int err = sdk_plugin_new(rt, def, argc, argv, &m.p);
  if (err != 0) {
    rc = err == SMAUG_EINVAL ? 2 : 1;
    goto out_rt;
  }
  m.p->on_stopped = on_main_stopped;
  m.p->on_stopped_data = &m;
  /* Handlers first: a SIGTERM right after the listening line is graceful. */
  int sigs[2] = {SIGTERM, SIGINT};
  for (int i = 0; i < 2; i++) {
    uv_signal_init(&loop, &m.sig[i]);
    m.sig[i].data = &m;
    uv_signal_start(&m.sig[i], on_signal, sigs[i]);
  }
  if (sdk_plugin_start(m.p, NULL) != 0) {
    /* Stop the never-started server the normal way; rc stays 1. */
    sdk_plugin_stop(m.p, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    goto out_plugin;
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  rc = 0;
  rt_log(RT_LOG_INFO, "plugin", "stopped", NULL);
out_plugin:
  sdk_plugin_free(m.p);
out_rt:
  rt_free(rt);
out_loop:
  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0)
    rt_log(RT_LOG_WARN, "plugin", "loop has open handles at exit", NULL);
  return rc;
}
