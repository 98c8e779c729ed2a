/*
 * registry.c - registered plugins, their handshake and health polling (see
 * registry.h). Each plugin owns one channel and one repeating timer; a
 * health check is a unary grpc.health.v1.Health/Check with a deadline equal
 * to the polling interval, so at most one is in flight per plugin. A check
 * can also be asked for at once (reg_plugin_check_now), and a plugin found
 * serving again is announced to one listener (reg_on_available).
 */
#include "registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bank.h"
#include "grpc/health/v1/health.smaug.h"
#include "rt_addr.h"
#include "rt_creds.h"
#include "rt_log.h"
#include "smaug/v1/plugin.smaug.h"

#define REG_INFO_TIMEOUT_MS 5000
/* A plain connect() first, so an unreachable address fails with its cause
 * at once rather than as the handshake's deadline. */
#define REG_PROBE_TIMEOUT_MS 2000

/* Limits on GetPluginInfo. Names and types are one bank section component
 * ([A-Za-z0-9][A-Za-z0-9._-]{0,127}, bank_check_object), like the resource
 * ids of valid.h. */
#define REG_MAX_VERSION_BYTES 255
#define REG_MAX_TYPES         1000
#define REG_MAX_SCHEMA_BYTES  65536
#define REG_MAX_OPERATIONS    16
#define REG_NAME_RULE                                                          \
  "1 to 128 bytes of [A-Za-z0-9._-], first a letter or digit"
/* Polling interval while a plugin is unavailable (or the normal interval,
 * if shorter): a restarted plugin is seen serving within about this long,
 * and the retries waiting for it go at once. */
#define REG_RECHECK_MS 200
/* A plugin identity: a prefix and a certificate subject, or a path. */
#define REG_IDENTITY_MAX 1200

struct reg_plugin_s {
  reg_t *reg;
  char *address;
  char *identity;                         /* reg_plugin_identity */
  Smaug__V1__GetPluginInfoResponse *info; /* unpacked copy, owned */
  reg_schema_t **options;                 /* per info->types[i] */
  reg_schema_t **restore;
  rt_channel_t *ch;
  uv_timer_t timer;
  rt_client_call_t *check; /* health check in flight */
  int available;
  int retired;
  int closed;
  char reason[256];
};

typedef struct reg_pending_s {
  reg_t *reg;
  char *address;
  int replace;
  int take_over; /* may retire a plugin of another identity */
  char identity[REG_IDENTITY_MAX];
  reg_add_cb cb;
  void *data;
  rt_channel_t *ch;
  rt_client_call_t *call;
  Smaug__V1__GetPluginInfoResponse *info;
  struct reg_pending_s *next;
} reg_pending_t;

struct reg_s {
  rt_t *rt;
  int interval_ms;
  int closing;
  reg_plugin_t **cur; /* current plugins, registration order */
  size_t n_cur;
  reg_plugin_t **all; /* current and retired, freed by reg_free */
  size_t n_all;
  reg_pending_t *pending;
  reg_available_cb on_available;
  void *available_data;
};

int reg_new(rt_t *rt, reg_t **out) {
  reg_t *reg = calloc(1, sizeof(*reg));
  if (reg == NULL)
    return UV_ENOMEM;
  reg->rt = rt;
  reg->interval_ms = 1000;
  *out = reg;
  return 0;
}

void reg_set_health_interval(reg_t *reg, int ms) {
  reg->interval_ms = ms > 0 ? ms : 1000;
  for (size_t i = 0; i < reg->n_cur; i++)
    uv_timer_set_repeat(&reg->cur[i]->timer, (uint64_t)reg->interval_ms);
}

static void plugin_timer_closed(uv_handle_t *h) {
  reg_plugin_t *p = h->data;
  p->closed = 1;
}

void reg_close(reg_t *reg) {
  if (reg == NULL || reg->closing)
    return;
  reg->closing = 1;
  for (reg_pending_t *q = reg->pending; q; q = q->next)
    if (q->call)
      rt_client_call_cancel(q->call);
  for (size_t i = 0; i < reg->n_all; i++) {
    reg_plugin_t *p = reg->all[i];
    if (p->check)
      rt_client_call_cancel(p->check);
    uv_close((uv_handle_t *)&p->timer, plugin_timer_closed);
  }
}

static void plugin_free(reg_plugin_t *p) {
  if (p->info) {
    for (size_t i = 0; i < p->info->n_types; i++) {
      reg_schema_free(p->options ? p->options[i] : NULL);
      reg_schema_free(p->restore ? p->restore[i] : NULL);
    }
    protobuf_c_message_free_unpacked(&p->info->base, NULL);
  }
  free(p->options);
  free(p->restore);
  rt_channel_release(p->ch);
  free(p->address);
  free(p->identity);
  free(p);
}

void reg_free(reg_t *reg) {
  if (reg == NULL)
    return;
  for (size_t i = 0; i < reg->n_all; i++)
    plugin_free(reg->all[i]);
  free(reg->all);
  free(reg->cur);
  free(reg);
}

/* --------------------------------------------------------------- health */

static void health_tick(uv_timer_t *t);

/* Polls `p` every `ms` from now on. */
static void poll_every(reg_plugin_t *p, int ms) {
  if (!p->closed && !p->retired && !p->reg->closing)
    uv_timer_start(&p->timer, health_tick, (uint64_t)ms, (uint64_t)ms);
}

static void check_msg(rt_client_call_t *call, const ProtobufCMessage *msg,
                      void *data) {
  reg_plugin_t *p = data;
  const Grpc__Health__V1__HealthCheckResponse *r = (const void *)msg;
  if (r->status ==
      GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING) {
    int was = p->available;
    if (!was)
      rt_log(RT_LOG_INFO, "registry", "plugin available", "plugin=%s addr=%s",
             reg_plugin_name(p), p->address);
    p->available = 1;
    p->reason[0] = '\0';
    if (!was)
      poll_every(p, p->reg->interval_ms);
    if (!was && p->reg->on_available != NULL && !p->retired)
      p->reg->on_available(p, p->reg->available_data);
  } else {
    reg_plugin_set_unavailable(p, "health check: NOT_SERVING");
  }
}

static void check_done(rt_client_call_t *call, grpc_status_code code,
                       const char *message, void *data) {
  reg_plugin_t *p = data;
  p->check = NULL;
  if (code != GRPC_STATUS_OK && !p->reg->closing) {
    char why[200];
    snprintf(why, sizeof(why), "health check: %s: %s", rt_status_name(code),
             message ? message : "");
    reg_plugin_set_unavailable(p, why);
  }
}

static void health_tick(uv_timer_t *t) {
  reg_plugin_t *p = t->data;
  if (p->check || p->retired || p->reg->closing)
    return;
  Grpc__Health__V1__HealthCheckRequest req =
      GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  rt_call_opts_t o = {.timeout_ms = p->reg->interval_ms};
  int err = grpc_health_v1_health_check(p->ch, &req, &o, check_msg, check_done,
                                        p, &p->check);
  if (err) {
    p->check = NULL;
    reg_plugin_set_unavailable(p, uv_strerror(err));
  }
}

void reg_plugin_check_now(reg_plugin_t *p) {
  if (p != NULL && !p->closed)
    health_tick(&p->timer);
}

void reg_on_available(reg_t *reg, reg_available_cb cb, void *data) {
  reg->on_available = cb;
  reg->available_data = data;
}

void reg_plugin_set_unavailable(reg_plugin_t *p, const char *reason) {
  if (p->available) {
    rt_log(RT_LOG_WARN, "registry", "plugin unavailable",
           "plugin=%s addr=%s reason=\"%s\"", reg_plugin_name(p), p->address,
           reason);
    poll_every(p, p->reg->interval_ms < REG_RECHECK_MS ? p->reg->interval_ms
                                                       : REG_RECHECK_MS);
  }
  p->available = 0;
  snprintf(p->reason, sizeof(p->reason), "%s", reason ? reason : "");
}

/* ---------------------------------------------------------- registration */

static int list_add(reg_plugin_t ***arr, size_t *n, reg_plugin_t *p) {
  reg_plugin_t **a = realloc(*arr, (*n + 1) * sizeof(*a));
  if (a == NULL)
    return UV_ENOMEM;
  a[(*n)++] = p;
  *arr = a;
  return 0;
}

static void retire(reg_t *reg, size_t i) {
  reg_plugin_t *p = reg->cur[i];
  p->retired = 1;
  uv_timer_stop(&p->timer);
  memmove(&reg->cur[i], &reg->cur[i + 1],
          (reg->n_cur - i - 1) * sizeof(reg->cur[0]));
  reg->n_cur--;
  rt_log(RT_LOG_INFO, "registry", "plugin removed", "plugin=%s addr=%s",
         reg_plugin_name(p), p->address);
}

static void pending_unlink(reg_t *reg, reg_pending_t *q) {
  for (reg_pending_t **pp = &reg->pending; *pp; pp = &(*pp)->next)
    if (*pp == q) {
      *pp = q->next;
      break;
    }
}

static void pending_end(reg_pending_t *q, grpc_status_code code,
                        const char *msg, reg_plugin_t *p) {
  reg_t *reg = q->reg;
  pending_unlink(reg, q);
  q->cb(reg, code, msg, p, q->data);
  if (q->info)
    protobuf_c_message_free_unpacked(&q->info->base, NULL);
  rt_channel_release(q->ch);
  free(q->address);
  free(q);
}

static void info_msg(rt_client_call_t *call, const ProtobufCMessage *msg,
                     void *data) {
  reg_pending_t *q = data;
  /* The message lives only during this callback: keep a copy (without
   * memory, the call ends as one without a response). */
  ProtobufCMessage *copy;
  if (rt_msg_copy(msg, &copy) != 0)
    return;
  if (q->info)
    protobuf_c_message_free_unpacked(&q->info->base, NULL);
  q->info = (Smaug__V1__GetPluginInfoResponse *)copy;
}

static int claims_overlap(const reg_plugin_t *a,
                          const Smaug__V1__GetPluginInfoResponse *b);

/* Checks the plugin info; on error writes a message and returns a status. */
static grpc_status_code check_info(reg_t *reg, reg_pending_t *q, char *msg,
                                   size_t len, reg_plugin_t *p) {
  const Smaug__V1__GetPluginInfoResponse *info = p->info;
  /* Bounds first: every message below names the plugin. */
  if (bank_check_object(info->name) != 0) {
    snprintf(msg, len,
             "plugin at %s: GetPluginInfo.name (%zu bytes): must be %s",
             q->address, strlen(info->name), REG_NAME_RULE);
    return GRPC_STATUS_INVALID_ARGUMENT;
  }
  if (strlen(info->version) > REG_MAX_VERSION_BYTES ||
      info->n_types > REG_MAX_TYPES) {
    snprintf(msg, len, "plugin %s at %s: GetPluginInfo.%s over its limit (%d)",
             info->name, q->address,
             info->n_types > REG_MAX_TYPES ? "types" : "version",
             info->n_types > REG_MAX_TYPES ? REG_MAX_TYPES
                                           : REG_MAX_VERSION_BYTES);
    return GRPC_STATUS_INVALID_ARGUMENT;
  }
  for (size_t i = 0; i < info->n_types; i++) {
    const Smaug__V1__ResourceTypeInfo *t = info->types[i];
    if (bank_check_object(t->type) != 0 ||
        t->n_operations > REG_MAX_OPERATIONS ||
        strlen(t->options_schema) > REG_MAX_SCHEMA_BYTES ||
        strlen(t->restore_schema) > REG_MAX_SCHEMA_BYTES) {
      snprintf(msg, len,
               "plugin %s at %s: GetPluginInfo.types[%zu]: type must be %s, "
               "schemas at most %d bytes, operations at most %d",
               info->name, q->address, i, REG_NAME_RULE, REG_MAX_SCHEMA_BYTES,
               REG_MAX_OPERATIONS);
      return GRPC_STATUS_INVALID_ARGUMENT;
    }
    for (size_t j = 0; j < t->n_operations; j++) {
      int kind = (int)t->operations[j]->kind;
      if (kind < SMAUG__V1__OPERATION_KIND__OPERATION_KIND_PROTECT ||
          kind > SMAUG__V1__OPERATION_KIND__OPERATION_KIND_DELETE) {
        snprintf(msg, len,
                 "plugin %s at %s: GetPluginInfo.types[%zu].operations[%zu]"
                 ".kind: unknown operation kind %d",
                 info->name, q->address, i, j, kind);
        return GRPC_STATUS_INVALID_ARGUMENT;
      }
    }
  }
  if (info->protocol_major != SMAUG__V1__PROTOCOL_VERSION__PROTOCOL_VERSION_1) {
    snprintf(msg, len,
             "plugin %s at %s speaks protocol major version %u; smaugd "
             "speaks %d",
             info->name, q->address, info->protocol_major,
             SMAUG__V1__PROTOCOL_VERSION__PROTOCOL_VERSION_1);
    return GRPC_STATUS_FAILED_PRECONDITION;
  }
  if (info->name == NULL || *info->name == '\0') {
    snprintf(msg, len, "plugin at %s: GetPluginInfo.name is empty", q->address);
    return GRPC_STATUS_INVALID_ARGUMENT;
  }
  if (info->n_types == 0) {
    snprintf(msg, len, "plugin %s at %s declares no resource types", info->name,
             q->address);
    return GRPC_STATUS_INVALID_ARGUMENT;
  }
  p->options = calloc(info->n_types, sizeof(*p->options));
  p->restore = calloc(info->n_types, sizeof(*p->restore));
  if (!p->options || !p->restore) {
    snprintf(msg, len, "out of memory");
    return GRPC_STATUS_RESOURCE_EXHAUSTED;
  }
  for (size_t i = 0; i < info->n_types; i++) {
    const Smaug__V1__ResourceTypeInfo *t = info->types[i];
    char err[200];
    if (t->type == NULL || *t->type == '\0') {
      snprintf(msg, len, "plugin %s: types[%zu].type is empty", info->name, i);
      return GRPC_STATUS_INVALID_ARGUMENT;
    }
    for (size_t j = 0; j < i; j++)
      if (strcmp(info->types[j]->type, t->type) == 0) {
        snprintf(msg, len, "plugin %s declares type %s twice", info->name,
                 t->type);
        return GRPC_STATUS_INVALID_ARGUMENT;
      }
    if (reg_schema_parse(t->options_schema, &p->options[i], err, sizeof(err)) !=
        0) {
      snprintf(msg, len, "plugin %s: type %s: options_schema: %s", info->name,
               t->type, err);
      return GRPC_STATUS_INVALID_ARGUMENT;
    }
    if (reg_schema_parse(t->restore_schema, &p->restore[i], err, sizeof(err)) !=
        0) {
      snprintf(msg, len, "plugin %s: type %s: restore_schema: %s", info->name,
               t->type, err);
      return GRPC_STATUS_INVALID_ARGUMENT;
    }
  }
  /* Conflicts: another plugin with the same name or one of our types. A
   * re-registration of the same name at the same address is an update. */
  for (size_t i = 0; i < reg->n_cur; i++) {
    const reg_plugin_t *o = reg->cur[i];
    int same = strcmp(reg_plugin_name(o), info->name) == 0;
    if (same && strcmp(o->address, q->address) == 0 &&
        strcmp(o->identity, q->identity) == 0)
      continue;
    if (q->replace && !q->take_over && claims_overlap(o, info) &&
        strcmp(o->identity, q->identity) != 0) {
      snprintf(msg, len,
               "plugin %s (identity '%s') would take over from plugin %s "
               "(identity '%s'): replacing a plugin of another identity "
               "needs admin",
               info->name, q->identity, reg_plugin_name(o), o->identity);
      return GRPC_STATUS_PERMISSION_DENIED;
    }
    if (same && !q->replace) {
      snprintf(msg, len,
               "a plugin named %s is already registered at %s (use replace)",
               info->name, o->address);
      return GRPC_STATUS_ALREADY_EXISTS;
    }
    for (size_t k = 0; k < info->n_types && !q->replace; k++)
      for (size_t j = 0; j < o->info->n_types; j++)
        if (strcmp(o->info->types[j]->type, info->types[k]->type) == 0) {
          snprintf(msg, len,
                   "resource type %s is already provided by plugin %s at %s "
                   "(use replace)",
                   info->types[k]->type, reg_plugin_name(o), o->address);
          return GRPC_STATUS_ALREADY_EXISTS;
        }
  }
  return GRPC_STATUS_OK;
}

static int claims_overlap(const reg_plugin_t *a,
                          const Smaug__V1__GetPluginInfoResponse *b) {
  if (strcmp(reg_plugin_name(a), b->name) == 0)
    return 1;
  for (size_t i = 0; i < a->info->n_types; i++)
    for (size_t j = 0; j < b->n_types; j++)
      if (strcmp(a->info->types[i]->type, b->types[j]->type) == 0)
        return 1;
  return 0;
}

/* The identity of the plugin that answered `call` (reg_plugin_identity). */
static void identify(reg_pending_t *q, rt_client_call_t *call) {
  char subject[REG_IDENTITY_MAX - 8];
  struct stat st;
  if (rt_client_call_peer_subject(call, subject, sizeof(subject)) == 0)
    snprintf(q->identity, sizeof(q->identity), "cert:%s", subject);
  else if (strncmp(q->address, "unix:", 5) == 0 &&
           stat(q->address + 5, &st) == 0)
    snprintf(q->identity, sizeof(q->identity), "%s uid=%u", q->address,
             (unsigned)st.st_uid);
  else if (strncmp(q->address, "unix:", 5) == 0)
    snprintf(q->identity, sizeof(q->identity), "%s uid=?", q->address);
  else
    snprintf(q->identity, sizeof(q->identity), "tcp:%s (unverified)",
             q->address);
}

static void info_done(rt_client_call_t *call, grpc_status_code code,
                      const char *message, void *data) {
  reg_pending_t *q = data;
  reg_t *reg = q->reg;
  char msg[3 * REG_IDENTITY_MAX];
  q->call = NULL;
  identify(q, call);
  if (code != GRPC_STATUS_OK || q->info == NULL) {
    snprintf(msg, sizeof(msg), "plugin at %s: GetPluginInfo failed: %s: %s",
             q->address, rt_status_name(code), message ? message : "");
    pending_end(q,
                code == GRPC_STATUS_OK ? GRPC_STATUS_INTERNAL
                : code == GRPC_STATUS_DEADLINE_EXCEEDED ||
                        code == GRPC_STATUS_CANCELLED
                    ? GRPC_STATUS_UNAVAILABLE
                    : code,
                msg, NULL);
    return;
  }
  reg_plugin_t *p = calloc(1, sizeof(*p));
  if (p == NULL) {
    pending_end(q, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
    return;
  }
  p->reg = reg;
  p->info = q->info;
  q->info = NULL;
  grpc_status_code rc = check_info(reg, q, msg, sizeof(msg), p);
  if (rc == GRPC_STATUS_OK && reg->closing) {
    rc = GRPC_STATUS_UNAVAILABLE;
    snprintf(msg, sizeof(msg), "smaugd is stopping");
  }
  if (rc == GRPC_STATUS_OK && ((p->address = strdup(q->address)) == NULL ||
                               (p->identity = strdup(q->identity)) == NULL)) {
    rc = GRPC_STATUS_RESOURCE_EXHAUSTED;
    snprintf(msg, sizeof(msg), "out of memory");
  }
  if (rc == GRPC_STATUS_OK && (list_add(&reg->all, &reg->n_all, p) != 0 ||
                               list_add(&reg->cur, &reg->n_cur, p) != 0)) {
    /* Keep `all` consistent: a plugin in `all` is freed by reg_free. */
    if (reg->n_all && reg->all[reg->n_all - 1] == p)
      reg->n_all--;
    rc = GRPC_STATUS_RESOURCE_EXHAUSTED;
    snprintf(msg, sizeof(msg), "out of memory");
  }
  if (rc != GRPC_STATUS_OK) {
    rt_log(RT_LOG_WARN, "registry", "plugin refused", "addr=%s reason=\"%s\"",
           q->address, msg);
    plugin_free(p);
    pending_end(q, rc, msg, NULL);
    return;
  }
  /* Retire what it replaces (everything but itself, the last entry). */
  for (size_t i = 0; i + 1 < reg->n_cur;) {
    const reg_plugin_t *o = reg->cur[i];
    if (!claims_overlap(o, p->info)) {
      i++;
      continue;
    }
    if (strcmp(o->identity, p->identity) != 0)
      rt_log(RT_LOG_WARN, "registry", "plugin replaced by another identity",
             "plugin=%s identity=\"%s\" by=%s by_identity=\"%s\"",
             reg_plugin_name(o), o->identity, p->info->name, p->identity);
    retire(reg, i);
  }
  p->ch = q->ch;
  q->ch = NULL;
  p->available = 1;
  uv_timer_init(rt_loop(reg->rt), &p->timer);
  p->timer.data = p;
  uv_timer_start(&p->timer, health_tick, (uint64_t)reg->interval_ms,
                 (uint64_t)reg->interval_ms);
  rt_log(RT_LOG_INFO, "registry", "plugin registered",
         "plugin=%s version=%s addr=%s types=%zu identity=\"%s\"",
         p->info->name, p->info->version, p->address, p->info->n_types,
         p->identity);
  pending_end(q, GRPC_STATUS_OK, "", p);
}

/* The probe answered: a plugin that cannot even be connected to is
 * refused now, with the cause; otherwise (connected, or too slow to tell)
 * the handshake follows. */
static void on_probed(int err, const char *why, void *data) {
  reg_pending_t *q = data;
  reg_t *reg = q->reg;
  char msg[512];
  if (reg->closing) {
    pending_end(q, GRPC_STATUS_UNAVAILABLE, "smaugd is stopping", NULL);
    return;
  }
  if (err != 0 && err != UV_ETIMEDOUT) {
    snprintf(msg, sizeof(msg), "plugin at %s: %s", q->address, why);
    pending_end(q,
                err == UV_EINVAL || err == UV_ENAMETOOLONG
                    ? GRPC_STATUS_INVALID_ARGUMENT
                    : GRPC_STATUS_UNAVAILABLE,
                msg, NULL);
    return;
  }
  err = rt_channel_get(reg->rt, q->address, &q->ch);
  if (err == 0) {
    Smaug__V1__GetPluginInfoRequest req =
        SMAUG__V1__GET_PLUGIN_INFO_REQUEST__INIT;
    req.protocol_major = SMAUG__V1__PROTOCOL_VERSION__PROTOCOL_VERSION_1;
    rt_call_opts_t o = {.timeout_ms = REG_INFO_TIMEOUT_MS, .wait_for_ready = 1};
    err = smaug_v1_protection_plugin_get_plugin_info(q->ch, &req, &o, info_msg,
                                                     info_done, q, &q->call);
  }
  if (err == UV_EPERM) { /* smaugd's transport policy refused it */
    snprintf(msg, sizeof(msg), "plugin at %s: %s", q->address,
             rt_channel_refusal(reg->rt));
    pending_end(q, GRPC_STATUS_FAILED_PRECONDITION, msg, NULL);
  } else if (err != 0) {
    snprintf(msg, sizeof(msg), "plugin at %s: %s", q->address,
             uv_strerror(err));
    pending_end(q, GRPC_STATUS_INTERNAL, msg, NULL);
  }
}

int reg_add(reg_t *reg, const char *addr, int replace, reg_add_cb cb,
            void *data) {
  return reg_add_ex(reg, addr, replace, 1, cb, data);
}

int reg_add_ex(reg_t *reg, const char *addr, int replace, int take_over,
               reg_add_cb cb, void *data) {
  if (addr == NULL || *addr == '\0' || cb == NULL)
    return UV_EINVAL;
  if (reg->closing)
    return UV_ECANCELED;
  reg_pending_t *q = calloc(1, sizeof(*q));
  if (q == NULL || (q->address = strdup(addr)) == NULL) {
    free(q);
    return UV_ENOMEM;
  }
  q->reg = reg;
  q->replace = replace;
  q->take_over = take_over;
  q->cb = cb;
  q->data = data;
  int err = rt_probe(reg->rt, addr, REG_PROBE_TIMEOUT_MS, on_probed, q);
  if (err) {
    free(q->address);
    free(q);
    return err;
  }
  q->next = reg->pending;
  reg->pending = q;
  return 0;
}

int reg_remove(reg_t *reg, const char *name) {
  for (size_t i = 0; i < reg->n_cur; i++)
    if (strcmp(reg_plugin_name(reg->cur[i]), name) == 0) {
      retire(reg, i);
      return 0;
    }
  return UV_ENOENT;
}

/* --------------------------------------------------------------- lookups */

size_t reg_count(const reg_t *reg) {
  return reg->n_cur;
}

reg_plugin_t *reg_at(const reg_t *reg, size_t i) {
  return i < reg->n_cur ? reg->cur[i] : NULL;
}

static reg_plugin_t *find_type(const reg_t *reg, const char *type,
                               size_t *index) {
  for (size_t i = 0; i < reg->n_cur; i++) {
    const Smaug__V1__GetPluginInfoResponse *info = reg->cur[i]->info;
    for (size_t j = 0; j < info->n_types; j++)
      if (strcmp(info->types[j]->type, type) == 0) {
        *index = j;
        return reg->cur[i];
      }
  }
  return NULL;
}

reg_plugin_t *reg_find_type(const reg_t *reg, const char *type,
                            const Smaug__V1__ResourceTypeInfo **ti) {
  size_t j;
  reg_plugin_t *p = find_type(reg, type, &j);
  if (p && ti)
    *ti = p->info->types[j];
  return p;
}

int reg_resolve(const reg_t *reg, const char *type, reg_plugin_t **p,
                const Smaug__V1__ResourceTypeInfo **ti, char *msg, size_t len) {
  *p = reg_find_type(reg, type, ti);
  if (*p == NULL) {
    if (msg)
      snprintf(msg, len, "no plugin provides resource type %s", type);
    return UV_ENOENT;
  }
  if (!(*p)->available) {
    if (msg)
      snprintf(msg, len, "plugin %s (%s) is unavailable: %s",
               reg_plugin_name(*p), reg_plugin_address(*p), (*p)->reason);
    return UV_EAGAIN;
  }
  return 0;
}

const reg_schema_t *reg_options_schema(const reg_t *reg, const char *type) {
  size_t j;
  reg_plugin_t *p = find_type(reg, type, &j);
  return p ? p->options[j] : NULL;
}

const reg_schema_t *reg_restore_schema(const reg_t *reg, const char *type) {
  size_t j;
  reg_plugin_t *p = find_type(reg, type, &j);
  return p ? p->restore[j] : NULL;
}

const char *reg_plugin_name(const reg_plugin_t *p) {
  return p->info->name;
}

const char *reg_plugin_address(const reg_plugin_t *p) {
  return p->address;
}

const char *reg_plugin_identity(const reg_plugin_t *p) {
  return p->identity;
}

const Smaug__V1__GetPluginInfoResponse *reg_plugin_info(const reg_plugin_t *p) {
  return p->info;
}

rt_channel_t *reg_plugin_channel(const reg_plugin_t *p) {
  return p->ch;
}

int reg_plugin_available(const reg_plugin_t *p) {
  return p->available;
}

const char *reg_plugin_reason(const reg_plugin_t *p) {
  return p->reason;
}

int reg_plugin_retired(const reg_plugin_t *p) {
  return p->retired;
}

int reg_type_supports(const Smaug__V1__ResourceTypeInfo *ti, int kind,
                      int *parallel, int *sync) {
  for (size_t i = 0; i < ti->n_operations; i++)
    if ((int)ti->operations[i]->kind == kind) {
      *parallel = ti->operations[i]->parallel;
      *sync = ti->operations[i]->sync;
      return 0;
    }
  *parallel = *sync = 0;
  return UV_ENOTSUP;
}
