/*
 * api_audit.c - the audit log's sink and the checks of ListAuditEvents
 * (see api_audit.h).
 */
#include "api_audit.h"

#include <stdio.h>
#include <string.h>

#include "ops.h"
#include "rt_log.h"
#include "valid.h"

static void on_committed(store_t *st, int status, void *data) {
  (void)data;
  if (status != 0)
    rt_log(RT_LOG_ERROR, "audit", "audit records not stored", "error=\"%s\"",
           store_errmsg(st));
}

/* Every API_AUDIT_PRUNE_EVERY records, the oldest past the retention go. */
static void prune(api_audit_t *aa, int64_t now) {
  int64_t keep = aa->retention_ms ? aa->retention_ms : API_AUDIT_RETENTION_MS;
  uint32_t deleted = 0;
  if (keep < 0 || aa->records++ % API_AUDIT_PRUNE_EVERY != 0)
    return;
  int err = store_audit_prune(aa->store, now - keep, API_AUDIT_MAX_RECORDS,
                              API_AUDIT_PRUNE_BATCH, &deleted);
  if (err)
    rt_log(RT_LOG_ERROR, "audit", "audit pruning failed", "error=\"%s\"",
           uv_strerror(err));
  else if (deleted)
    rt_log(RT_LOG_INFO, "audit", "audit records pruned", "count=%u", deleted);
}

void api_audit_record(const auth_audit_rec_t *rec, void *data) {
  api_audit_t *aa = data;
  int64_t now = ops_now_ms();
  rt_log(rec->code == GRPC_STATUS_OK ? RT_LOG_INFO : RT_LOG_WARN, "audit",
         "call",
         "who=\"%s\" role=%s tenant=%s method=%s objects=\"%s\" "
         "status=%s error=\"%s\" peer=\"%s\"",
         rec->who, rec->role[0] ? rec->role : "-",
         rec->tenant[0] ? rec->tenant : "-", rec->method, rec->objects,
         rt_status_name(rec->code), rec->message, rec->peer);
  Smaug__V1__AuditEvent ev = SMAUG__V1__AUDIT_EVENT__INIT;
  ev.time_ms = now;
  ev.who = (char *)rec->who;
  ev.role = (char *)rec->role;
  ev.tenant = (char *)rec->tenant;
  ev.method = (char *)rec->method;
  ev.objects = (char *)rec->objects;
  ev.code = (char *)rt_status_name(rec->code);
  ev.message = (char *)rec->message;
  ev.peer = (char *)rec->peer;
  prune(aa, now);
  int err = store_audit_append(aa->store, &ev);
  if (err == 0)
    err = store_commit(aa->store, on_committed, NULL);
  if (err)
    rt_log(RT_LOG_ERROR, "audit", "audit record not stored",
           "method=%s error=\"%s\"", rec->method, uv_strerror(err));
}

grpc_status_code
api_audit_check_filter(const rt_service_t *svc,
                       const Smaug__V1__ListAuditEventsRequest *req, char *msg,
                       size_t len) {
  grpc_status_code rc =
      valid_text("who", req->who, AUTH_MAX_CERT_BYTES, msg, len);
  if (rc)
    return rc;
  for (const char *p = req->who; p && *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f) {
      snprintf(msg, len, "who: control character at byte %zu",
               (size_t)(p - req->who));
      return GRPC_STATUS_INVALID_ARGUMENT;
    }
  if (req->method != NULL && *req->method != '\0') {
    size_t i = 0;
    while (i < svc->n_methods && strcmp(svc->methods[i].name, req->method))
      i++;
    if (i == svc->n_methods) {
      snprintf(msg, len, "method: not a method of %s (e.g. Restore)",
               svc->name);
      return GRPC_STATUS_INVALID_ARGUMENT;
    }
  }
  if (req->since_ms < 0) {
    snprintf(msg, len, "since_ms: must not be negative");
    return GRPC_STATUS_INVALID_ARGUMENT;
  }
  return GRPC_STATUS_OK;
}
