/*
 * api_int.h - what the files of the Orchestrator service share inside
 * server/api/: the service object. Not a contract for other folders.
 * Thread: the loop thread.
 */
#ifndef SMAUG_API_INT_H
#define SMAUG_API_INT_H

#include "api.h"
#include "api_audit.h"
#include "api_results.h"
#include "plugins_ops.h"

/* The service; owned by api_new()/api_free(). */
struct api_s {
  rt_t *rt;
  rt_server_t *srv;
  store_t *store;
  reg_t *reg;
  lim_t *lim; /* the plugins' limits, shared by operations and flows */
  plugins_ops_t plugins; /* the plugins as the operations core sees them */
  ops_t *ops;
  api_results_t results; /* GetCheckpoint, GetRestore, ListResourceResults */
  auth_t *auth;          /* borrowed; NULL without --auth-tokens */
  auth_guard_t *guard;   /* the service's check and audit */
  api_audit_t audit;     /* the audit log's sink */
  int max_message_bytes;
  int closing;
};

/* GetFlow (api_flow.c). */
void api_h_get_flow(rt_call_t *call, const Smaug__V1__GetFlowRequest *req,
                    void *data);

#endif /* SMAUG_API_INT_H */
