/*
 * api_scope.c - tenant scoping of the Orchestrator service (see
 * api_scope.h).
 */
#include "api_scope.h"

#include <stdlib.h>
#include <string.h>

#include "api_valid.h"

api_scope_t api_scope(store_t *store, const auth_t *auth) {
  if (auth == NULL)
    return (api_scope_t){store, STORE_TENANT_DEFAULT, 1};
  const auth_ctx_t *c = auth_current(auth);
  if (c == NULL)
    return (api_scope_t){store, "", 0};
  return (api_scope_t){store, c->tenant, c->role == AUTH_ROLE_ADMIN};
}

int api_scope_sees(const api_scope_t *s, const char *tenant) {
  return s->all || (*s->tenant && strcmp(s->tenant, store_tenant(tenant)) == 0);
}

int api_scope_fail(const api_scope_t *s, rt_call_t *call, store_kind_t kind,
                   const char *id) {
  static const char *const what[] = {
      [STORE_PLAN] = "plan",
      [STORE_CHECKPOINT] = "checkpoint",
      [STORE_RESTORE] = "restore",
      [STORE_OPERATION] = "operation",
  };
  if (s->all)
    return 0;
  char *tenant = NULL;
  int err = store_tenant_get(s->store, kind, id, &tenant);
  if (err == 0 && !api_scope_sees(s, tenant))
    err = UV_ENOENT;
  free(tenant);
  if (err)
    api_fail_lookup(call, what[kind], id, err);
  return err != 0;
}

int api_scope_list(const api_scope_t *s, rt_call_t *call, const char *want,
                   const char **out) {
  char msg[512];
  if (want == NULL || *want == '\0') {
    want = NULL;
  } else if (valid_key("tenant", want, msg, sizeof(msg)) != GRPC_STATUS_OK) {
    /* The tenants of tokens follow the same pattern (auth.h). */
    rt_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "%s", msg);
    return 1;
  }
  if (s->all)
    *out = want ? want : "";
  else if ((want && strcmp(want, s->tenant) != 0) || *s->tenant == '\0')
    *out = NULL;
  else
    *out = s->tenant;
  return 0;
}
