/*
 * api_op.h - the gRPC face of the operations core (server/ops/ops.h):
 * Protect, Restore, DeleteCheckpoint, CancelOperation and WatchOperation.
 * Each handler decodes and checks the request, calls the ops_* function,
 * and answers with the gRPC status that the core's error means
 * (ops_err_status) and its message. A WatchOperation stream is an ops
 * watcher whose sink sends on the call and tells the core when gRPC has
 * sent a message, so that the core's queue bound is the stream's.
 *
 * The handlers end `call` themselves, now or later.
 * Thread: the loop thread.
 */
#ifndef SMAUG_API_OP_H
#define SMAUG_API_OP_H

#include "api_scope.h"
#include "ops.h"
#include "registry.h"
#include "rt.h"
#include "smaug/v1/orchestrator.pb-c.h"
#include "store.h"

/* Each handler first checks that `sc` sees the plan, checkpoint or
 * operation the request names (api_scope_fail): one of another tenant is
 * NOT_FOUND, as a missing one. Once the checkpoint exists, the identity of
 * each type's plugin is stored with it (api_ident_record). */
void api_ops_protect(ops_t *ops, const api_scope_t *sc, const reg_t *reg,
                     rt_call_t *call, const Smaug__V1__ProtectRequest *req);
/* `reg` checks the restore parameters against the plugins' schemas. A
 * restore or a delete is refused while a type of the checkpoint has a
 * plugin of another identity than the one that saved it, unless `force`
 * (api_ident_refused, read from the scope's store); that check runs after
 * the tenant check, so it never names another tenant's plugins. */
void api_ops_restore(ops_t *ops, const api_scope_t *sc, reg_t *reg,
                     rt_call_t *call, const Smaug__V1__RestoreRequest *req);
void api_ops_delete_checkpoint(ops_t *ops, const api_scope_t *sc,
                               const reg_t *reg, rt_call_t *call,
                               const Smaug__V1__DeleteCheckpointRequest *req);
void api_ops_cancel(ops_t *ops, const api_scope_t *sc, rt_call_t *call,
                    const Smaug__V1__CancelOperationRequest *req);
void api_ops_watch(ops_t *ops, const api_scope_t *sc, rt_call_t *call,
                   const Smaug__V1__WatchOperationRequest *req);

#endif /* SMAUG_API_OP_H */
