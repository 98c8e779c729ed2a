/*
 * store.c - the store's front (see store.h): checks arguments, then
 * dispatches every call through the backend's table.
 *
 * Only what every backend shares lives here: argument checks, so that a
 * backend never sees a NULL it must not, and the frees of what reads
 * return. Nothing here knows which backend runs.
 */
#include "store.h"

#include <stdlib.h>

/* An id a record is keyed by: not NULL, not empty. */
static int store__bad_id(const char *id) {
  return id == NULL || *id == '\0';
}

const char *store_tenant(const char *tenant) {
  return tenant && *tenant ? tenant : STORE_TENANT_DEFAULT;
}

int store_tenant_get(store_t *st, store_kind_t kind, const char *id,
                     char **out) {
  if (id == NULL || out == NULL || kind < STORE_PLAN || kind > STORE_OPERATION)
    return UV_EINVAL;
  return st->be->tenant_get(st, kind, id, out);
}

int store_open(uv_loop_t *loop, const char *dir, store_t **out) {
  if (loop == NULL || dir == NULL || *dir == '\0' || out == NULL)
    return UV_EINVAL;
  return store_sqlite.open(loop, dir, out);
}

void store_close(store_t *st) {
  if (st != NULL)
    st->be->close(st);
}

const char *store_errmsg(const store_t *st) {
  return st ? st->be->errmsg(st) : "no store";
}

int store_schema_version(store_t *st) {
  return st->be->schema_version(st);
}

int store_commit(store_t *st, store_commit_cb cb, void *data) {
  if (cb == NULL)
    return UV_EINVAL;
  return st->be->commit(st, cb, data);
}

int store_flush(store_t *st) {
  return st->be->flush(st);
}

int store_in_batch(const store_t *st) {
  return st->be->in_batch(st);
}

int store_batch(store_t *st) {
  (void)st;
  return 0;
}

void store_msgs_free(void *msgs, size_t n) {
  ProtobufCMessage **m = msgs;
  if (m == NULL)
    return;
  for (size_t i = 0; i < n; i++)
    protobuf_c_message_free_unpacked(m[i], NULL);
  free(m);
}

/* ------------------------------------------------------------- plans */

int store_plan_put(store_t *st, const Smaug__V1__Plan *plan) {
  if (plan == NULL || store__bad_id(plan->id))
    return UV_EINVAL;
  return st->be->plan_put(st, plan);
}

int store_plan_get(store_t *st, const char *id, Smaug__V1__Plan **out) {
  if (id == NULL || out == NULL)
    return UV_EINVAL;
  return st->be->plan_get(st, id, out);
}

int store_plan_delete(store_t *st, const char *id) {
  if (id == NULL)
    return UV_EINVAL;
  return st->be->plan_delete(st, id);
}

int store_plan_list(store_t *st, const char *tenant, uint64_t after,
                    uint32_t limit, Smaug__V1__Plan ***out, size_t *n,
                    uint64_t *next) {
  if (out == NULL || n == NULL)
    return UV_EINVAL;
  return st->be->plan_list(st, tenant ? tenant : "", after, limit, out, n,
                           next);
}

/* ------------------------------------------------------- checkpoints */

int store_checkpoint_put(store_t *st, const Smaug__V1__Checkpoint *cp) {
  if (cp == NULL || store__bad_id(cp->id))
    return UV_EINVAL;
  return st->be->checkpoint_put(st, cp);
}

int store_checkpoint_get(store_t *st, const char *id,
                         Smaug__V1__Checkpoint **out) {
  if (id == NULL || out == NULL)
    return UV_EINVAL;
  return st->be->checkpoint_get(st, id, out);
}

int store_checkpoint_head(store_t *st, const char *id, int *status,
                          char **delete_op) {
  if (id == NULL || status == NULL || delete_op == NULL)
    return UV_EINVAL;
  return st->be->checkpoint_head(st, id, status, delete_op);
}

int store_checkpoint_set_status(store_t *st, const char *id, int status,
                                int64_t finished_at_ms, const char *reason) {
  if (store__bad_id(id))
    return UV_EINVAL;
  return st->be->checkpoint_set_status(st, id, status, finished_at_ms,
                                       reason ? reason : "");
}

int store_checkpoint_list(store_t *st, const store_cp_filter_t *f,
                          uint64_t before, uint32_t limit,
                          Smaug__V1__Checkpoint ***out, size_t *n,
                          uint64_t *next) {
  static const store_cp_filter_t none = {0};
  if (out == NULL || n == NULL)
    return UV_EINVAL;
  return st->be->checkpoint_list(st, f ? f : &none, before, limit, out, n,
                                 next);
}

/* ---------------------------------------------------------- restores */

int store_restore_put(store_t *st, const Smaug__V1__Restore *r) {
  if (r == NULL || store__bad_id(r->id))
    return UV_EINVAL;
  return st->be->restore_put(st, r);
}

int store_restore_get(store_t *st, const char *id, Smaug__V1__Restore **out) {
  if (id == NULL || out == NULL)
    return UV_EINVAL;
  return st->be->restore_get(st, id, out);
}

int store_restore_set_status(store_t *st, const char *id, int status,
                             int64_t finished_at_ms, const char *reason) {
  if (store__bad_id(id))
    return UV_EINVAL;
  return st->be->restore_set_status(st, id, status, finished_at_ms,
                                    reason ? reason : "");
}

int store_restore_list(store_t *st, const char *checkpoint_id,
                       const char *tenant, uint64_t before, uint32_t limit,
                       Smaug__V1__Restore ***out, size_t *n, uint64_t *next) {
  if (out == NULL || n == NULL)
    return UV_EINVAL;
  return st->be->restore_list(st, checkpoint_id, tenant ? tenant : "", before,
                              limit, out, n, next);
}

/* -------------------------------------------------------- operations */

int store_op_put(store_t *st, const store_op_t *op) {
  if (op == NULL || store__bad_id(op->id))
    return UV_EINVAL;
  return st->be->op_put(st, op);
}

int store_op_get(store_t *st, const char *id, store_op_t **out) {
  if (id == NULL || out == NULL)
    return UV_EINVAL;
  return st->be->op_get(st, id, out);
}

int store_op_list_running(store_t *st, store_op_t ***out, size_t *n) {
  if (out == NULL || n == NULL)
    return UV_EINVAL;
  return st->be->op_list_running(st, out, n);
}

int store_op_set_running(store_t *st, const char *id, int running) {
  if (id == NULL)
    return UV_EINVAL;
  return st->be->op_set_running(st, id, running);
}

void store_op_free(store_op_t *op) {
  if (op == NULL)
    return;
  free(op->id);
  free(op->target_id);
  free(op->checkpoint_id);
  free(op->params);
  free(op->tenant);
  free(op);
}

void store_ops_free(store_op_t **ops, size_t n) {
  if (ops == NULL)
    return;
  for (size_t i = 0; i < n; i++)
    store_op_free(ops[i]);
  free(ops);
}

/* ------------------------------------------------- per-resource results */

int store_result_put(store_t *st, const char *op_id,
                     const Smaug__V1__ResourceResult *res) {
  if (op_id == NULL || res == NULL || res->resource == NULL)
    return UV_EINVAL;
  return st->be->result_put(st, op_id, res);
}

int store_result_list(store_t *st, const char *op_id,
                      Smaug__V1__ResourceResult ***out, size_t *n) {
  if (op_id == NULL || out == NULL || n == NULL)
    return UV_EINVAL;
  return st->be->result_list(st, op_id, out, n);
}

int store_result_page(store_t *st, const char *op_id, const char *after_type,
                      const char *after_id, uint32_t limit,
                      Smaug__V1__ResourceResult ***out, size_t *n) {
  if (op_id == NULL || limit == 0 || out == NULL || n == NULL)
    return UV_EINVAL;
  return st->be->result_page(st, op_id, after_type, after_id, limit, out, n);
}

int store_result_count(store_t *st, const char *op_id, uint64_t *out) {
  if (op_id == NULL || out == NULL)
    return UV_EINVAL;
  return st->be->result_count(st, op_id, out);
}

/* ------------------------------------------------------ task outputs */

int store_task_put(store_t *st, const char *op_id, const store_task_t *t) {
  if (op_id == NULL || t == NULL || t->type == NULL || t->id == NULL ||
      (t->activity != 1 && t->activity != 2) || (t->payload == NULL && t->len))
    return UV_EINVAL;
  return st->be->task_put(st, op_id, t);
}

int store_task_each(store_t *st, const char *op_id, store_task_cb cb,
                    void *data) {
  if (op_id == NULL || cb == NULL)
    return UV_EINVAL;
  return st->be->task_each(st, op_id, cb, data);
}

/* ------------------------------------------------------------ events */

int store_event_append(store_t *st, const Smaug__V1__OperationEvent *ev) {
  if (ev == NULL || ev->operation_id == NULL || ev->sequence == 0)
    return UV_EINVAL;
  return st->be->event_append(st, ev);
}

int store_event_list(store_t *st, const char *op_id, uint64_t after,
                     uint32_t limit, Smaug__V1__OperationEvent ***out,
                     size_t *n) {
  if (op_id == NULL || out == NULL || n == NULL)
    return UV_EINVAL;
  return st->be->event_list(st, op_id, after, limit, out, n);
}

int store_event_prune(store_t *st, int64_t before_ms, uint32_t limit,
                      uint32_t *deleted) {
  if (deleted == NULL)
    return UV_EINVAL;
  return st->be->event_prune(st, before_ms, limit, deleted);
}

int store_event_last_seq(store_t *st, const char *op_id, uint64_t *out) {
  if (op_id == NULL || out == NULL)
    return UV_EINVAL;
  return st->be->event_last_seq(st, op_id, out);
}

/* ----------------------------------------------------------- plugins */

int store_plugins_set(store_t *st, const char *const *addrs, size_t n,
                      int64_t now_ms) {
  if (addrs == NULL && n)
    return UV_EINVAL;
  for (size_t i = 0; i < n; i++)
    if (addrs[i] == NULL)
      return UV_EINVAL;
  return st->be->plugins_set(st, addrs, n, now_ms);
}

int store_plugins_list(store_t *st, char ***out, size_t *n) {
  if (out == NULL || n == NULL)
    return UV_EINVAL;
  return st->be->plugins_list(st, out, n);
}

void store_strs_free(char **strs, size_t n) {
  if (strs == NULL)
    return;
  for (size_t i = 0; i < n; i++)
    free(strs[i]);
  free(strs);
}

/* ------------------------------------------------------------- audit */

int store_audit_append(store_t *st, const Smaug__V1__AuditEvent *ev) {
  if (ev == NULL || ev->who == NULL || ev->method == NULL)
    return UV_EINVAL;
  return st->be->audit_append(st, ev);
}

int store_audit_list(store_t *st, const store_audit_filter_t *f,
                     uint64_t before, uint32_t limit,
                     Smaug__V1__AuditEvent ***out, size_t *n, uint64_t *next) {
  if (f == NULL || out == NULL || n == NULL)
    return UV_EINVAL;
  return st->be->audit_list(st, f, before, limit, out, n, next);
}

int store_audit_prune(store_t *st, int64_t before_ms, uint64_t keep,
                      uint32_t limit, uint32_t *deleted) {
  if (deleted == NULL)
    return UV_EINVAL;
  return st->be->audit_prune(st, before_ms, keep, limit, deleted);
}

/* ------------------------------------------- plugin identities of checkpoints
 */

int store_cp_identity_put(store_t *st, const char *checkpoint_id,
                          const char *type, const char *identity) {
  if (checkpoint_id == NULL || *checkpoint_id == '\0' || type == NULL ||
      *type == '\0' || identity == NULL)
    return UV_EINVAL;
  return st->be->cp_identity_put(st, checkpoint_id, type, identity);
}

int store_cp_identity_list(store_t *st, const char *checkpoint_id,
                           char ***types, char ***identities, size_t *n) {
  if (checkpoint_id == NULL || types == NULL || identities == NULL || n == NULL)
    return UV_EINVAL;
  return st->be->cp_identity_list(st, checkpoint_id, types, identities, n);
}
