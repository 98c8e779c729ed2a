/*
 * api_ident.h - plugin identities pinned to checkpoints.
 *
 * A registered plugin has an identity (reg_plugin_identity: its
 * certificate's subject, its unix socket's path and owner, or its
 * unverified TCP address). When a protect starts, the identity of the
 * plugin of every registered type is stored with the checkpoint
 * (store_cp_identity_put). A restore or a delete of that checkpoint is
 * refused with FAILED_PRECONDITION while the plugin of one of its
 * resources' types has another identity, so a plugin that took a type
 * over (a replacement registered since) is never handed data another
 * plugin saved, unless the request says `force`; the override is logged,
 * and the call's audit record shows force=true.
 *
 * Thread: the loop thread. Reads see committed state only (store.h).
 */
#ifndef SMAUG_API_IDENT_H
#define SMAUG_API_IDENT_H

#include <grpc/grpc.h>
#include <stddef.h>

#include "registry.h"
#include "rt.h"
#include "store.h"

/* Queues, for checkpoint `checkpoint_id`, the identity of the current
 * plugin of every registered type, and asks for a commit (a failure is
 * logged). Returns 0 or the store's error (logged too). */
int api_ident_record(store_t *st, const reg_t *reg, const char *checkpoint_id);

/* Compares the identities stored for checkpoint `checkpoint_id` with the
 * current plugins of the types its resources have. Returns
 * GRPC_STATUS_OK when they match, when the checkpoint has none stored, or
 * when a type has no plugin or the checkpoint does not exist (the
 * operation reports those itself); FAILED_PRECONDITION with `msg` naming
 * the checkpoint, the type and both identities when one differs and
 * `force` is 0 (with `force` 1 the difference is logged and OK
 * returned); INTERNAL when the store cannot be read. `msg` is always
 * NUL-terminated. */
grpc_status_code api_ident_check(store_t *st, const reg_t *reg,
                                 const char *checkpoint_id, int force,
                                 char *msg, size_t len);

/* api_ident_check, and on a refusal fails `call` with its status and
 * message. Returns 1 if it failed the call, 0 if the caller may go on
 * (the call untouched). Call it only once the caller is known to see the
 * checkpoint: the message names its plugins. */
int api_ident_refused(store_t *st, const reg_t *reg, rt_call_t *call,
                      const char *checkpoint_id, int force);

/* Fills `cp->plugin_identities` (which must be empty) from the store.
 * `cp` is an unpacked message of protobuf-c's default allocator: the
 * entries are malloc'd and freed with it. Returns 0, UV_ENOMEM or the
 * store's error (`cp` then unchanged). */
int api_ident_fill(store_t *st, Smaug__V1__Checkpoint *cp);

#endif /* SMAUG_API_IDENT_H */
