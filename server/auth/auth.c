/*
 * auth.c - bearer tokens, roles and the permission check of smaugd's API
 * (see auth.h for the contract and the token file format).
 *
 * The pure part (the token table is in auth_table.c) hashes and generates
 * tokens with OpenSSL, and decides one call from its authorization
 * header. The daemon part holds the current table, re-reads the file on
 * SIGHUP, and guards a service by wrapping its dispatch function, so that
 * the decision is made once, before any handler, for every method.
 */
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bank.h"
#include "bank_chunk.h"
#include "bank_fs.h"
#include "rt_creds.h"
#include "rt_log.h"

/* --------------------------------------------------------------- roles */

static const struct {
  const char *name;
  auth_role_t role;
} roles[] = {
#define AUTH_ROLE_GEN(NAME, name, what) {name, AUTH_ROLE_##NAME},
    AUTH_ROLE_MAP(AUTH_ROLE_GEN)
#undef AUTH_ROLE_GEN
};

const char *auth_role_name(auth_role_t role) {
  if (role == AUTH_ROLE_OPEN)
    return "open";
  for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
    if (roles[i].role == role)
      return roles[i].name;
  return "?";
}

int auth_role_parse(const char *s, auth_role_t *out) {
  for (size_t i = 0; s != NULL && i < sizeof(roles) / sizeof(roles[0]); i++)
    if (strcmp(s, roles[i].name) == 0) {
      *out = roles[i].role;
      return 0;
    }
  return UV_EINVAL;
}

/* --------------------------------------------------- permission table */

enum { AUTH_KIND_READ = 0, AUTH_KIND_WRITE = 1 };

static const struct {
  const char *path;
  auth_role_t least;
  int kind;
} permissions[] = {
#define AUTH_PERMISSION_GEN(path, role, kind)                                  \
  {path, AUTH_ROLE_##role, AUTH_KIND_##kind},
    AUTH_PERMISSION_MAP(AUTH_PERMISSION_GEN)
#undef AUTH_PERMISSION_GEN
};

int auth_method_role(const char *path, auth_role_t *out) {
  for (size_t i = 0;
       path != NULL && i < sizeof(permissions) / sizeof(permissions[0]); i++)
    if (strcmp(path, permissions[i].path) == 0) {
      *out = permissions[i].least;
      return 0;
    }
  return UV_ENOENT;
}

int auth_method_writes(const char *path) {
  for (size_t i = 0;
       path != NULL && i < sizeof(permissions) / sizeof(permissions[0]); i++)
    if (strcmp(path, permissions[i].path) == 0)
      return permissions[i].kind == AUTH_KIND_WRITE;
  return 0;
}

/* -------------------------------------------------------------- tokens */

int auth_token_new(char *out, size_t out_len, uint8_t hash[AUTH_HASH_BYTES]) {
  uint8_t raw[AUTH_TOKEN_BYTES];
  /* base64 of 32 bytes: 44 characters, the last one '=' padding. */
  unsigned char b64[4 * ((AUTH_TOKEN_BYTES + 2) / 3) + 1];
  const size_t plen = sizeof(AUTH_TOKEN_PREFIX) - 1;
  if (out_len <= AUTH_TOKEN_LEN)
    return UV_EINVAL;
  if (RAND_bytes(raw, sizeof(raw)) != 1)
    return UV_EIO;
  int n = EVP_EncodeBlock(b64, raw, sizeof(raw));
  OPENSSL_cleanse(raw, sizeof(raw));
  while (n > 0 && b64[n - 1] == '=')
    n--;
  memcpy(out, AUTH_TOKEN_PREFIX, plen);
  for (int i = 0; i < n; i++)
    out[plen + (size_t)i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
  out[plen + (size_t)n] = '\0';
  OPENSSL_cleanse(b64, sizeof(b64));
  auth_token_hash(out, plen + (size_t)n, hash);
  return 0;
}

void auth_token_hash(const void *token, size_t len,
                     uint8_t hash[AUTH_HASH_BYTES]) {
  SHA256(token, len, hash);
}

void auth_hash_format(const uint8_t hash[AUTH_HASH_BYTES], char *out,
                      size_t out_len) {
  char hex[BANK_HEX_LEN + 1];
  bank_hex(hash, hex);
  snprintf(out, out_len, "%s%s", AUTH_HASH_PREFIX, hex);
}

/* ------------------------------------------------ checking one request */

/* The bearer token in the header value [v, v + n), or NULL when the value
 * is not "Bearer", spaces and one token of visible ASCII. */
static const char *bearer_token(const char *v, size_t n, size_t *tok_len) {
  static const char scheme[] = "Bearer";
  const size_t sl = sizeof(scheme) - 1;
  if (n <= sl || strncasecmp(v, scheme, sl) != 0 || v[sl] != ' ')
    return NULL;
  size_t i = sl;
  while (i < n && v[i] == ' ')
    i++;
  size_t len = n - i;
  if (len == 0 || len > AUTH_MAX_TOKEN_BYTES)
    return NULL;
  for (size_t j = i; j < n; j++)
    if ((unsigned char)v[j] < 0x21 || (unsigned char)v[j] > 0x7e)
      return NULL;
  *tok_len = len;
  return v + i;
}

grpc_status_code auth_decide(const auth_table_t *t, const char *path, size_t n,
                             const char *value, size_t len,
                             const char *const *ids, size_t n_ids,
                             auth_ctx_t *ctx, char *msg, size_t msg_len) {
  auth_role_t need;
  uint8_t hash[AUTH_HASH_BYTES];
  const char *tok, *method = path ? strrchr(path, '/') : NULL;
  size_t tok_len = 0;
  method = method ? method + 1 : "?";
  memset(ctx, 0, sizeof(*ctx));
  snprintf(msg, msg_len, "%s", "");
  if (auth_method_role(path, &need) != 0) {
    snprintf(msg, msg_len, "%s is not in the permission table", method);
    return GRPC_STATUS_PERMISSION_DENIED;
  }
  if (need == AUTH_ROLE_OPEN)
    return GRPC_STATUS_OK;
  const auth_token_t *e = NULL;
  if (n == 0 && (e = auth_table_by_cert(t, ids, n_ids)) != NULL)
    goto found;
  if (n == 0) {
    snprintf(msg, msg_len,
             "%s needs a token: send 'authorization: Bearer <token>'", method);
    return GRPC_STATUS_UNAUTHENTICATED;
  }
  if (n > 1) {
    snprintf(msg, msg_len, "more than one authorization header");
    return GRPC_STATUS_UNAUTHENTICATED;
  }
  if ((tok = bearer_token(value, len, &tok_len)) == NULL) {
    snprintf(msg, msg_len,
             "malformed authorization header: expected 'Bearer <token>'");
    return GRPC_STATUS_UNAUTHENTICATED;
  }
  auth_token_hash(tok, tok_len, hash);
  if ((e = auth_table_by_hash(t, hash)) == NULL) {
    snprintf(msg, msg_len, "unknown or revoked token");
    return GRPC_STATUS_UNAUTHENTICATED;
  }
found:
  memcpy(ctx->name, e->name, sizeof(ctx->name));
  memcpy(ctx->tenant, e->tenant, sizeof(ctx->tenant));
  ctx->role = e->role;
  if (e->role < need) {
    snprintf(msg, msg_len, "%s %s has the role %s; %s needs %s",
             e->cert[0] ? "certificate" : "token", e->name,
             auth_role_name(e->role), method, auth_role_name(need));
    return GRPC_STATUS_PERMISSION_DENIED;
  }
  return GRPC_STATUS_OK;
}

/* ---------------------------------------------------------- the daemon */

/* One guarded service: registered with `svc` (dispatch = guard_dispatch)
 * and itself as `impl`. */
typedef struct auth_guard_s {
  rt_service_t svc;
  const rt_service_t *inner;
  const void *impl;
  auth_t *auth; /* NULL: no authentication, audit only */
  auth_audit_fn audit;
  void *audit_data;
  struct auth_guard_s *next; /* in auth->guards, when auth owns it */
} guard_t;

struct auth_s {
  uv_signal_t sighup;
  char *path;
  auth_table_t *table;
  const auth_ctx_t *current; /* during a guarded dispatch */
  guard_t *guards;
  int closing;
};

static void on_sighup(uv_signal_t *s, int signum) {
  char why[512];
  (void)signum;
  auth_reload(s->data, why, sizeof(why));
}

int auth_new(uv_loop_t *loop, const char *path, auth_t **out, char *why,
             size_t why_len) {
  auth_t *a = calloc(1, sizeof(*a));
  int rc;
  if (a == NULL || (a->path = strdup(path)) == NULL) {
    free(a);
    snprintf(why, why_len, "out of memory");
    return UV_ENOMEM;
  }
  if ((rc = auth_table_load(path, &a->table, NULL, NULL, why, why_len)) != 0 ||
      (rc = uv_signal_init(loop, &a->sighup)) != 0) {
    if (rc != 0 && a->table != NULL)
      snprintf(why, why_len, "SIGHUP: %s", uv_strerror(rc));
    auth_table_free(a->table);
    free(a->path);
    free(a);
    return rc;
  }
  a->sighup.data = a;
  if ((rc = uv_signal_start(&a->sighup, on_sighup, SIGHUP)) != 0) {
    /* The handle is initialised: it must be closed on the loop. */
    snprintf(why, why_len, "SIGHUP: %s", uv_strerror(rc));
    auth_close(a);
    uv_run(loop, UV_RUN_NOWAIT);
    auth_free(a);
    return rc;
  }
  rt_log(RT_LOG_INFO, "auth", "tokens loaded", "file=%s tokens=%zu", path,
         a->table->n);
  *out = a;
  return 0;
}

int auth_reload(auth_t *a, char *why, size_t why_len) {
  auth_table_t *t = NULL;
  int rc = auth_table_load(a->path, &t, NULL, NULL, why, why_len);
  if (rc != 0) {
    rt_log(RT_LOG_ERROR, "auth", "tokens not reloaded; keeping the previous",
           "file=%s tokens=%zu error=\"%s\"", a->path, a->table->n, why);
    return rc;
  }
  auth_table_free(a->table);
  a->table = t;
  rt_log(RT_LOG_INFO, "auth", "tokens loaded", "file=%s tokens=%zu", a->path,
         t->n);
  return 0;
}

/* The call's authorization header: `*n` of them, the first in
 * `*value` (`*len` bytes). A value rt_call_metadata cannot give (one
 * holding a NUL) counts as one that is not "Bearer <token>". */
static void call_authorization(rt_call_t *call, const char **value, size_t *len,
                               size_t *n) {
  *n = rt_call_metadata_count(call, "authorization");
  *value = rt_call_metadata(call, "authorization");
  if (*value == NULL)
    *value = "\x01";
  *len = strlen(*value);
}

/* The common name and subject alternative names of the call's client
 * certificate, when mTLS verified one: up to `max` into `ids`. */
static size_t call_cert_ids(rt_call_t *call, const char **ids, size_t max) {
  const rt_peer_t *p = rt_call_peer(call);
  size_t n = 0;
  if (!p->authenticated)
    return 0;
  if (p->common_name != NULL && n < max)
    ids[n++] = p->common_name;
  for (size_t i = 0; i < p->n_sans && n < max; i++)
    ids[n++] = p->sans[i];
  return n;
}

/* ------------------------------------------------------------ the audit */

#define AUDIT_VALUE_MAX   128
#define AUDIT_OBJECTS_MAX 1024

/* Appends " key=value" (or key='value') to `out` unless it is there. */
static void objects_add(char *out, size_t len, const char *prefix,
                        const char *key, const char *value) {
  char v[AUDIT_VALUE_MAX + 1], item[AUDIT_VALUE_MAX * 2 + 8];
  size_t n = strlen(value), used = strlen(out);
  if (n > AUDIT_VALUE_MAX) {
    n = AUDIT_VALUE_MAX;
    while (n > 0 && ((unsigned char)value[n] & 0xc0) == 0x80)
      n--; /* not inside a UTF-8 character */
  }
  int space = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)value[i];
    v[i] = c < 0x20 || c == 0x7f || c == '"' || c == '\'' || c == '\\'
               ? '?'
               : (char)c;
    space |= c == ' ';
  }
  v[n] = '\0';
  int k = snprintf(item, sizeof(item), space ? "%s%s='%s'" : "%s%s=%s", prefix,
                   key, v);
  if (k < 0 || (size_t)k >= sizeof(item))
    return;
  /* Already there, as a whole item? */
  for (const char *p = out; (p = strstr(p, item)) != NULL; p++)
    if ((p == out || p[-1] == ' ') && (p[k] == '\0' || p[k] == ' '))
      return;
  if (used + (used > 0) + (size_t)k + 1 > len)
    return; /* full: the field is left out whole */
  snprintf(out + used, len - used, "%s%s", used > 0 ? " " : "", item);
}

static int names_object(const char *name) {
  size_t n = strlen(name);
  return strcmp(name, "id") == 0 || strcmp(name, "name") == 0 ||
         strcmp(name, "address") == 0 || strcmp(name, "identity") == 0 ||
         (n > 3 && strcmp(name + n - 3, "_id") == 0);
}

static void objects_of(const ProtobufCMessage *m, const char *prefix, int depth,
                       char *out, size_t len) {
  const ProtobufCMessageDescriptor *d = m->descriptor;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    const void *at = (const char *)m + f->offset;
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
      continue;
    if (f->type == PROTOBUF_C_TYPE_STRING) {
      const char *v = *(const char *const *)at;
      if (v != NULL && *v != '\0' && names_object(f->name))
        objects_add(out, len, prefix, f->name, v);
    } else if (f->type == PROTOBUF_C_TYPE_BOOL) {
      if (*(const protobuf_c_boolean *)at)
        objects_add(out, len, prefix, f->name, "true");
    } else if (f->type == PROTOBUF_C_TYPE_MESSAGE && depth == 0) {
      const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)at;
      char p[64];
      snprintf(p, sizeof(p), "%s.", f->name);
      if (sub != NULL)
        objects_of(sub, p, 1, out, len);
    }
  }
}

void auth_audit_objects(const ProtobufCMessage *m, char *out, size_t len) {
  if (len == 0)
    return;
  if (memchr(out, '\0', len) == NULL)
    out[0] = '\0';
  if (m != NULL && m->descriptor != NULL)
    objects_of(m, "", 0, out, len);
}

/* An audited call in flight: what the record needs once it ends. */
typedef struct audit_call_s {
  const guard_t *g;
  auth_ctx_t ctx;
  char who[AUTH_MAX_CERT_BYTES + 1];
  char objects[AUDIT_OBJECTS_MAX];
} audit_call_t;

/* Tells the guard's sink about `call`, which ended with `code`. */
static void audit_emit(const audit_call_t *ac, rt_call_t *call,
                       grpc_status_code code, const char *message) {
  const rt_peer_t *p = rt_call_peer(call);
  const char *m = rt_call_method(call)->name;
  char peer[AUTH_MAX_CERT_BYTES + 300];
  if (p->authenticated && p->subject != NULL)
    snprintf(peer, sizeof(peer), "%s cert=%s", p->address, p->subject);
  else
    snprintf(peer, sizeof(peer), "%s", p->address);
  auth_audit_rec_t rec = {.who = ac->who,
                          .role = ac->ctx.role != AUTH_ROLE_OPEN
                                      ? auth_role_name(ac->ctx.role)
                                      : "",
                          .tenant = ac->ctx.tenant,
                          .method = m,
                          .objects = ac->objects,
                          .code = code,
                          .message = message ? message : "",
                          .peer = peer};
  ac->g->audit(&rec, ac->g->audit_data);
}

static void audit_finished(rt_call_t *call, grpc_status_code code,
                           const char *message, const ProtobufCMessage *final,
                           void *data) {
  audit_call_t *ac = data;
  auth_audit_objects(final, ac->objects, sizeof(ac->objects));
  audit_emit(ac, call, code, message);
  free(ac);
}

/* The audit record of a WRITE call about to be decided or dispatched,
 * or NULL when it is not audited (or there is no memory: logged). */
static audit_call_t *audit_begin(const guard_t *g, rt_call_t *call,
                                 const ProtobufCMessage *req) {
  if (g->audit == NULL || !auth_method_writes(rt_call_method(call)->path))
    return NULL;
  audit_call_t *ac = calloc(1, sizeof(*ac));
  if (ac == NULL) {
    rt_log(RT_LOG_ERROR, "audit", "out of memory: call not audited",
           "method=%s", rt_call_method(call)->path);
    return NULL;
  }
  ac->g = g;
  auth_audit_objects(req, ac->objects, sizeof(ac->objects));
  return ac;
}

/* Who the record names, once the call was decided. */
static void audit_who(audit_call_t *ac, rt_call_t *call, const auth_t *a,
                      const auth_ctx_t *ctx) {
  const rt_peer_t *p = rt_call_peer(call);
  ac->ctx = *ctx;
  if (ctx->name[0] != '\0')
    snprintf(ac->who, sizeof(ac->who), "%s", ctx->name);
  else if (a != NULL)
    snprintf(ac->who, sizeof(ac->who), "unauthenticated");
  else if (p->authenticated && p->subject != NULL)
    snprintf(ac->who, sizeof(ac->who), "%s", p->subject);
  else
    snprintf(ac->who, sizeof(ac->who), "anonymous");
}

static void guard_dispatch(rt_call_t *call, const ProtobufCMessage *req,
                           const void *impl, size_t method_index, void *data) {
  const guard_t *g = impl;
  auth_t *a = g->auth;
  const char *value, *ids[16];
  size_t len, n, n_ids = 0;
  auth_ctx_t ctx;
  char msg[300];
  const char *path = rt_call_method(call)->path;
  grpc_status_code code = GRPC_STATUS_OK;
  memset(&ctx, 0, sizeof(ctx));
  if (a != NULL) {
    call_authorization(call, &value, &len, &n);
    if (n == 0)
      n_ids = call_cert_ids(call, ids, sizeof(ids) / sizeof(ids[0]));
    code = auth_decide(a->table, path, n, value, len, ids, n_ids, &ctx, msg,
                       sizeof(msg));
  }
  audit_call_t *ac = audit_begin(g, call, req);
  if (ac != NULL)
    audit_who(ac, call, a, &ctx);
  if (code != GRPC_STATUS_OK) {
    rt_log(RT_LOG_INFO, "auth", "call refused",
           "method=%s status=%s name=%s error=\"%s\"", path,
           rt_status_name(code), ctx.name[0] ? ctx.name : "-", msg);
    if (ac != NULL) {
      audit_emit(ac, call, code, msg);
      free(ac);
    }
    rt_call_fail(call, code, "%s", msg);
    return;
  }
  if (ac != NULL)
    rt_call_on_finish(call, audit_finished, ac);
  if (a == NULL) {
    g->inner->dispatch(call, req, g->impl, method_index, data);
    return;
  }
  const auth_ctx_t *outer = a->current;
  a->current = &ctx;
  g->inner->dispatch(call, req, g->impl, method_index, data);
  a->current = outer;
}

/* Refuses a service with a method the permission table does not know. */
static int check_table(const rt_service_t *svc) {
  auth_role_t role;
  if (svc == NULL)
    return UV_EINVAL;
  for (size_t i = 0; i < svc->n_methods; i++)
    if (auth_method_role(svc->methods[i].path, &role) != 0) {
      rt_log(RT_LOG_ERROR, "auth", "method not in the permission table",
             "method=%s", svc->methods[i].path);
      return UV_EINVAL;
    }
  return 0;
}

int auth_guard_service(auth_t *a, rt_server_t *srv, const rt_service_t *svc,
                       const void *impl, void *data, auth_audit_fn audit,
                       void *audit_data, auth_guard_t **out) {
  int rc = check_table(svc);
  if (rc != 0)
    return rc;
  guard_t *g = calloc(1, sizeof(*g));
  if (g == NULL)
    return UV_ENOMEM;
  g->svc = *svc;
  g->svc.dispatch = guard_dispatch;
  g->inner = svc;
  g->impl = impl;
  g->auth = a;
  g->audit = audit;
  g->audit_data = audit_data;
  if ((rc = rt_server_add_service(srv, &g->svc, g, data)) != 0) {
    free(g);
    return rc;
  }
  *out = g;
  return 0;
}

void auth_guard_free(auth_guard_t *g) {
  free(g);
}

int auth_register_service(auth_t *a, rt_server_t *srv, const rt_service_t *svc,
                          const void *impl, void *data) {
  guard_t *g;
  int rc = check_table(svc);
  if (rc != 0 || a == NULL)
    return rc != 0 ? rc : rt_server_add_service(srv, svc, impl, data);
  if ((rc = auth_guard_service(a, srv, svc, impl, data, NULL, NULL, &g)) != 0)
    return rc;
  g->next = a->guards;
  a->guards = g;
  return 0;
}

const auth_ctx_t *auth_current(const auth_t *a) {
  return a != NULL ? a->current : NULL;
}

void auth_close(auth_t *a) {
  if (a == NULL || a->closing)
    return;
  a->closing = 1;
  uv_close((uv_handle_t *)&a->sighup, NULL);
}

void auth_free(auth_t *a) {
  if (a == NULL)
    return;
  while (a->guards != NULL) {
    guard_t *g = a->guards;
    a->guards = g->next;
    free(g);
  }
  auth_table_free(a->table);
  free(a->path);
  free(a);
}
