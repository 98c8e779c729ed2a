/*
 * api_scope.h - tenants in the Orchestrator service: who sees which plan,
 * checkpoint, restore and operation.
 *
 * Every plan, checkpoint, restore and operation belongs to one tenant
 * (store.h). A call's scope comes from its caller (auth_current): an
 * operator or viewer sees its own tenant only, an admin every tenant.
 * Without --auth-tokens there is no caller: the scope is tenant
 * STORE_TENANT_DEFAULT with every tenant visible, which is how smaugd
 * behaved before tenants. New plans go to the caller's tenant; a
 * checkpoint goes to its plan's, a restore and a delete to their
 * checkpoint's (the operations core copies the tenant from the object an
 * operation works on), so no operation crosses tenants.
 *
 * An object outside the scope is answered exactly as a missing one:
 * NOT_FOUND "<what> <id> not found" (api_fail_lookup), so that its
 * existence does not leak. Events, results and flows are reached through
 * their operation, checkpoint, restore or plan, and checked on it.
 *
 * Thread: the loop thread, inside a handler (the scope borrows the
 * caller's identity, valid until the handler returns).
 */
#ifndef SMAUG_API_SCOPE_H
#define SMAUG_API_SCOPE_H

#include "auth.h"
#include "rt.h"
#include "store.h"

typedef struct api_scope_s {
  store_t *store;     /* where the checks read */
  const char *tenant; /* the caller's tenant: where its new plans go */
  int all;            /* 1: sees every tenant */
} api_scope_t;

/* The scope of the call whose handler runs now; `auth` NULL: no
 * --auth-tokens (see above). With `auth` but no caller, which a guarded
 * handler never has, the scope sees nothing. */
api_scope_t api_scope(store_t *store, const auth_t *auth);

/* 1 when `s` sees an object of `tenant` (NULL or "": the default). */
int api_scope_sees(const api_scope_t *s, const char *tenant);

/* Fails `call` unless `s` sees the object `id` of `kind`: NOT_FOUND as for
 * a missing id ("plan <id> not found") when it is missing or in another
 * tenant, INTERNAL when the store fails. It reads the tenant column only
 * (store_tenant_get). Returns 1 if it failed the call, 0 if the caller may
 * go on (the call untouched). An all-tenant scope passes without a read:
 * the handler's own lookup answers for a missing id. */
int api_scope_fail(const api_scope_t *s, rt_call_t *call, store_kind_t kind,
                   const char *id);

/* The tenant a list of `s` filters on, given the request's optional
 * `want` (NULL or ""), into `*out`: for an all-tenant scope `want` ("":
 * every tenant); for another, its own tenant, or NULL when `want` names
 * another tenant (the list is then empty). A `want` that does not match
 * VALID_ID_PATTERN, as tenants do (auth.h), fails `call` with
 * INVALID_ARGUMENT "tenant: ..." and returns 1 (*out
 * untouched); else returns 0. */
int api_scope_list(const api_scope_t *s, rt_call_t *call, const char *want,
                   const char **out);

#endif /* SMAUG_API_SCOPE_H */
