/*
 * api_results.h - reads of per-resource results: GetCheckpoint and
 * GetRestore, which carry the first results of their object, and
 * ListResourceResults, which pages through all of them.
 *
 * A 100,000-resource operation has results far larger than one gRPC
 * message, so no answer holds more than a bounded page: GetCheckpoint and
 * GetRestore hold at most API_RESULTS_INLINE results and say whether there
 * are more (results_truncated, results_total); ListResourceResults pages
 * in (type, id) order with a token that names the last resource sent.
 * Every page is cut to what fits in the server's message limit. Results
 * are read from the store one page at a time, never all at once.
 *
 * The handlers end `call` themselves. Thread: the loop thread.
 */
#ifndef SMAUG_API_RESULTS_H
#define SMAUG_API_RESULTS_H

#include "api_op.h"
#include "rt.h"
#include "smaug/v1/orchestrator.pb-c.h"
#include "store.h"

#define API_RESULTS_INLINE       1000 /* in GetCheckpoint and GetRestore */
#define API_RESULTS_PAGE_DEFAULT 500  /* ListResourceResults, page_size 0 */
#define API_RESULTS_PAGE_MAX     5000 /* larger page_size: INVALID_ARGUMENT */

/* What the handlers read through; borrowed, owned by the api_t. */
typedef struct api_results_s {
  store_t *store;
  ops_t *ops;            /* flushed before a read */
  int max_message_bytes; /* the server's send limit */
} api_results_t;

/* Each first checks that `sc` sees the object the request names
 * (api_scope_fail). */
void api_results_get_checkpoint(api_results_t *ar, const api_scope_t *sc,
                                rt_call_t *call,
                                const Smaug__V1__GetCheckpointRequest *req);
void api_results_get_restore(api_results_t *ar, const api_scope_t *sc,
                             rt_call_t *call,
                             const Smaug__V1__GetRestoreRequest *req);
void api_results_list(api_results_t *ar, const api_scope_t *sc, rt_call_t *call,
                      const Smaug__V1__ListResourceResultsRequest *req);

#endif /* SMAUG_API_RESULTS_H */
