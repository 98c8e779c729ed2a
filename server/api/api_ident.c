/*
 * api_ident.c - plugin identities pinned to checkpoints (see api_ident.h):
 * recorded when a protect starts, checked before a restore or a delete,
 * shown in GetCheckpoint.
 */
#include "api_ident.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_log.h"

static void on_recorded(store_t *st, int status, void *data) {
  (void)data;
  if (status != 0)
    rt_log(RT_LOG_ERROR, "api", "plugin identities not stored", "error=\"%s\"",
           store_errmsg(st));
}

int api_ident_record(store_t *st, const reg_t *reg, const char *checkpoint_id) {
  int err = 0;
  for (size_t i = 0; err == 0 && i < reg_count(reg); i++) {
    const reg_plugin_t *p = reg_at(reg, i);
    const Smaug__V1__GetPluginInfoResponse *info = reg_plugin_info(p);
    for (size_t j = 0; err == 0 && j < info->n_types; j++)
      err = store_cp_identity_put(st, checkpoint_id, info->types[j]->type,
                                  reg_plugin_identity(p));
  }
  if (err == 0)
    err = store_commit(st, on_recorded, NULL);
  if (err != 0)
    rt_log(RT_LOG_ERROR, "api", "plugin identities not stored",
           "checkpoint=%s error=\"%s\"", checkpoint_id, uv_strerror(err));
  return err;
}

/* 1 when one of the `n` resources has type `type`. */
static int has_type(Smaug__V1__Resource *const *res, size_t n,
                    const char *type) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(res[i]->type, type) == 0)
      return 1;
  return 0;
}

grpc_status_code api_ident_check(store_t *st, const reg_t *reg,
                                 const char *checkpoint_id, int force,
                                 char *msg, size_t len) {
  Smaug__V1__Checkpoint *cp;
  char **types = NULL, **ids = NULL;
  size_t n = 0;
  grpc_status_code code = GRPC_STATUS_OK;
  snprintf(msg, len, "%s", "");
  if (store_checkpoint_get(st, checkpoint_id, &cp) != 0)
    return GRPC_STATUS_OK; /* the operation says NOT_FOUND */
  int err = store_cp_identity_list(st, checkpoint_id, &types, &ids, &n);
  if (err != 0) {
    snprintf(msg, len, "checkpoint %s: reading its plugin identities: %s",
             checkpoint_id, uv_strerror(err));
    protobuf_c_message_free_unpacked(&cp->base, NULL);
    return GRPC_STATUS_INTERNAL;
  }
  for (size_t i = 0; i < n && code == GRPC_STATUS_OK; i++) {
    const reg_plugin_t *p = reg_find_type(reg, types[i], NULL);
    if (p == NULL || !has_type(cp->resources, cp->n_resources, types[i]) ||
        strcmp(reg_plugin_identity(p), ids[i]) == 0)
      continue;
    if (force) {
      rt_log(RT_LOG_WARN, "api", "plugin identity check overridden (force)",
             "checkpoint=%s type=%s saved_by=\"%s\" plugin=%s now=\"%s\"",
             checkpoint_id, types[i], ids[i], reg_plugin_name(p),
             reg_plugin_identity(p));
      continue;
    }
    snprintf(msg, len,
             "checkpoint %s: resource type %s was saved by plugin identity "
             "'%s', but its plugin %s now has identity '%s'; set force to "
             "use it anyway",
             checkpoint_id, types[i], ids[i], reg_plugin_name(p),
             reg_plugin_identity(p));
    code = GRPC_STATUS_FAILED_PRECONDITION;
  }
  store_strs_free(types, n);
  store_strs_free(ids, n);
  protobuf_c_message_free_unpacked(&cp->base, NULL);
  return code;
}

int api_ident_refused(store_t *st, const reg_t *reg, rt_call_t *call,
                      const char *checkpoint_id, int force) {
  char msg[4096];
  grpc_status_code code =
      api_ident_check(st, reg, checkpoint_id, force, msg, sizeof(msg));
  if (code == GRPC_STATUS_OK)
    return 0;
  rt_call_fail(call, code, "%s", msg);
  return 1;
}

int api_ident_fill(store_t *st, Smaug__V1__Checkpoint *cp) {
  char **types = NULL, **ids = NULL;
  size_t n = 0;
  int err = store_cp_identity_list(st, cp->id, &types, &ids, &n);
  if (err != 0 || n == 0)
    return err;
  Smaug__V1__Checkpoint__PluginIdentitiesEntry **es = calloc(n, sizeof(*es));
  for (size_t i = 0; es != NULL && i < n; i++) {
    if ((es[i] = malloc(sizeof(*es[i]))) == NULL) {
      while (i > 0)
        free(es[--i]);
      free(es);
      es = NULL;
      break;
    }
    smaug__v1__checkpoint__plugin_identities_entry__init(es[i]);
    es[i]->key = types[i]; /* the strings move to the entries */
    es[i]->value = ids[i];
  }
  if (es == NULL) {
    store_strs_free(types, n);
    store_strs_free(ids, n);
    return UV_ENOMEM;
  }
  free(types);
  free(ids);
  cp->plugin_identities = es;
  cp->n_plugin_identities = n;
  return 0;
}
