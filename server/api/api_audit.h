/*
 * api_audit.h - the audit log of smaugd's API: the sink of the audited
 * guard (auth_guard_service) that keeps each call of a WRITE method in
 * the store and in the structured log, and the checks of
 * ListAuditEvents' filters.
 *
 * Durability: a record is queued when the call ends and joins the next
 * group commit (store.h), so a crash right after a call can lose its
 * record from the store, never from the log line, which is written at
 * once. ListAuditEvents flushes before it reads.
 *
 * Retention: records older than `retention_ms`, and the oldest beyond
 * the newest API_AUDIT_MAX_RECORDS, are pruned, a batch of
 * API_AUDIT_PRUNE_BATCH at a time, on every API_AUDIT_PRUNE_EVERY-th
 * record (and on the first), so a flood of refused calls cannot grow the
 * table without bound.
 *
 * Thread: the loop thread.
 */
#ifndef SMAUG_API_AUDIT_H
#define SMAUG_API_AUDIT_H

#include <grpc/grpc.h>
#include <stdint.h>

#include "auth.h"
#include "store.h"

#define API_AUDIT_RETENTION_MS (90LL * 86400000) /* default: 90 days */
#define API_AUDIT_MAX_RECORDS  1000000 /* and never more than this many */
#define API_AUDIT_PRUNE_EVERY  256
#define API_AUDIT_PRUNE_BATCH  1000

typedef struct api_audit_s {
  store_t *store;       /* borrowed */
  int64_t retention_ms; /* 0: API_AUDIT_RETENTION_MS; negative: forever */
  uint64_t records;     /* records written, for the pruning cadence */
} api_audit_t;

/* The auth_audit_fn of the API: `data` is an api_audit_t. Writes one
 * "audit" log line and queues the record with a commit; a store failure
 * is logged (the call's outcome does not change). */
void api_audit_record(const auth_audit_rec_t *rec, void *data);

/* Checks ListAuditEvents' filters: `who` at most AUTH_MAX_CERT_BYTES of
 * UTF-8 without control characters, `method` empty or the name of a
 * method of `svc`, `since_ms` not negative. Returns GRPC_STATUS_OK or
 * INVALID_ARGUMENT with `msg` naming the field (never echoing a bad
 * value). */
grpc_status_code
api_audit_check_filter(const rt_service_t *svc,
                       const Smaug__V1__ListAuditEventsRequest *req, char *msg,
                       size_t len);

#endif /* SMAUG_API_AUDIT_H */
