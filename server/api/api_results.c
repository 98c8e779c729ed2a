/*
 * api_results.c - GetCheckpoint, GetRestore and ListResourceResults (see
 * api_results.h): per-resource results read a bounded page at a time.
 */
#include "api_results.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_ident.h"
#include "api_valid.h"

/* Room kept for the status, headers and framing, as the list handlers. */
#define API_RESULTS_SLACK 1024

/* Where the results of one request come from. */
typedef struct src_s {
  const char *owner;   /* results stored under this id */
  const char *deleted; /* NULL, or the delete run whose outcome wins */
} src_t;

/* A checkpoint's results: the protect's, with the delete run's status,
 * reason and times once one started (`delete_op`, the delete operation,
 * owns its results; it is the checkpoint's operation_id from then on). */
static src_t checkpoint_src(const char *id, int status, const char *delete_op) {
  int del =
      status == SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_DELETING ||
      status == SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_DELETED ||
      status == SMAUG__V1__CHECKPOINT_STATUS__CHECKPOINT_STATUS_ERROR_DELETING;
  src_t s = {.owner = id};
  if (del && delete_op && *delete_op)
    s.deleted = delete_op;
  return s;
}

static int key_cmp(const Smaug__V1__Resource *a, const Smaug__V1__Resource *b) {
  int c = strcmp(a->type, b->type);
  return c ? c : strcmp(a->id, b->id);
}

/* Takes the delete outcome of `ds` into `rs`; both ordered by (type, id). */
static void merge_deleted(Smaug__V1__ResourceResult **rs, size_t n,
                          Smaug__V1__ResourceResult **ds, size_t nd) {
  for (size_t i = 0, j = 0; i < n && j < nd;) {
    int c = key_cmp(rs[i]->resource, ds[j]->resource);
    if (c < 0) {
      i++;
    } else if (c > 0) {
      j++;
    } else {
      char *t = rs[i]->reason; /* swapped: both arrays free their own */
      rs[i]->reason = ds[j]->reason;
      ds[j]->reason = t;
      rs[i]->status = ds[j]->status;
      rs[i]->started_at_ms = ds[j]->started_at_ms;
      rs[i]->finished_at_ms = ds[j]->finished_at_ms;
      i++;
      j++;
    }
  }
}

/* Reads at most `limit` results of `src` after (at, ai) into *out (release
 * with store_msgs_free); *more is 1 when others follow. */
static int page_read(store_t *st, const src_t *src, const char *at,
                     const char *ai, uint32_t limit,
                     Smaug__V1__ResourceResult ***out, size_t *n, int *more) {
  Smaug__V1__ResourceResult **rs;
  size_t k;
  int err = store_result_page(st, src->owner, at, ai, limit + 1, &rs, &k);
  if (err)
    return err;
  *more = k > limit;
  if (*more) {
    protobuf_c_message_free_unpacked(&rs[limit]->base, NULL);
    k = limit;
  }
  if (src->deleted != NULL && k > 0) {
    /* The delete run covers the checkpoint's resources or fewer, so its
     * first k after the same key reach at least as far as this page. */
    Smaug__V1__ResourceResult **ds;
    size_t nd;
    if ((err = store_result_page(st, src->deleted, at, ai, (uint32_t)k, &ds,
                                 &nd)) != 0) {
      store_msgs_free(rs, k);
      return err;
    }
    merge_deleted(rs, k, ds, nd);
    store_msgs_free(ds, nd);
  }
  *out = rs;
  *n = k;
  return 0;
}

/* Bytes a length-delimited field of `len` bytes takes: tag, length, data. */
static size_t field_bytes(size_t len) {
  size_t b = 2;
  for (size_t v = len; v >= 128; v >>= 7)
    b++;
  return b + len;
}

/* How many of the first results fit in `room` bytes of a message. */
static size_t fit(Smaug__V1__ResourceResult *const *rs, size_t n, size_t room) {
  size_t used = 0;
  for (size_t i = 0; i < n; i++) {
    used += field_bytes(protobuf_c_message_get_packed_size(&rs[i]->base));
    if (used > room)
      return i;
  }
  return n;
}

static size_t room_for(const api_results_t *ar, const ProtobufCMessage *m) {
  size_t max = (size_t)ar->max_message_bytes,
         used = protobuf_c_message_get_packed_size(m) + API_RESULTS_SLACK;
  return used < max ? max - used : 0;
}

/* The first results of `src`, as many as API_RESULTS_INLINE and `room`
 * allow. *truncated and *total describe what was left out. */
static int inline_results(const api_results_t *ar, const src_t *src,
                          size_t room, Smaug__V1__ResourceResult ***out,
                          size_t *n, size_t *sent, uint64_t *total,
                          int *truncated) {
  int more, err = store_result_count(ar->store, src->owner, total);
  if (err == 0)
    err = page_read(ar->store, src, "", "", API_RESULTS_INLINE, out, n, &more);
  if (err)
    return err;
  *sent = fit(*out, *n, room);
  *truncated = more || *sent < *n;
  return 0;
}

void api_results_get_checkpoint(api_results_t *ar, const api_scope_t *sc,
                                rt_call_t *call,
                                const Smaug__V1__GetCheckpointRequest *req) {
  if (api_fail_bad_id(call, "id", req->id) ||
      api_scope_fail(sc, call, STORE_CHECKPOINT, req->id))
    return;
  ops_flush(ar->ops);
  Smaug__V1__Checkpoint *cp;
  int err = store_checkpoint_get(ar->store, req->id, &cp);
  if (err) {
    api_fail_lookup(call, "checkpoint", req->id, err);
    return;
  }
  if ((err = api_ident_fill(ar->store, cp)) != 0) {
    protobuf_c_message_free_unpacked(&cp->base, NULL);
    api_fail_store(call, err);
    return;
  }
  Smaug__V1__GetCheckpointResponse resp =
      SMAUG__V1__GET_CHECKPOINT_RESPONSE__INIT;
  resp.checkpoint = cp;
  resp.results_truncated = 1; /* counted in the room, as if set */
  resp.results_total = UINT64_MAX;
  resp.graph_omitted = 1;
  if (room_for(ar, &resp.base) == 0) {
    /* The graph alone does not fit: the results still name every
     * resource. The arrays go with the checkpoint. */
    for (size_t i = 0; i < cp->n_resources; i++)
      protobuf_c_message_free_unpacked(&cp->resources[i]->base, NULL);
    for (size_t i = 0; i < cp->n_edges; i++)
      protobuf_c_message_free_unpacked(&cp->edges[i]->base, NULL);
    cp->n_resources = cp->n_edges = 0;
  } else {
    resp.graph_omitted = 0;
  }
  src_t src = checkpoint_src(cp->id, cp->status, cp->operation_id);
  Smaug__V1__ResourceResult **rs = NULL;
  size_t n = 0, sent = 0;
  int truncated;
  if ((err = inline_results(ar, &src, room_for(ar, &resp.base), &rs, &n, &sent,
                            &resp.results_total, &truncated)) != 0) {
    protobuf_c_message_free_unpacked(&cp->base, NULL);
    api_fail_store(call, err);
    return;
  }
  resp.results_truncated = truncated;
  cp->n_results = sent;
  cp->results = rs;
  rt_call_reply(call, &resp.base);
  cp->n_results = 0;
  cp->results = NULL;
  store_msgs_free(rs, n);
  protobuf_c_message_free_unpacked(&cp->base, NULL);
}

void api_results_get_restore(api_results_t *ar, const api_scope_t *sc,
                             rt_call_t *call,
                             const Smaug__V1__GetRestoreRequest *req) {
  if (api_fail_bad_id(call, "id", req->id) ||
      api_scope_fail(sc, call, STORE_RESTORE, req->id))
    return;
  ops_flush(ar->ops);
  Smaug__V1__Restore *r;
  int err = store_restore_get(ar->store, req->id, &r);
  if (err) {
    api_fail_lookup(call, "restore", req->id, err);
    return;
  }
  Smaug__V1__GetRestoreResponse resp = SMAUG__V1__GET_RESTORE_RESPONSE__INIT;
  resp.restore = r;
  resp.results_truncated = 1;
  resp.results_total = UINT64_MAX;
  src_t src = {.owner = r->id};
  Smaug__V1__ResourceResult **rs = NULL;
  size_t n = 0, sent = 0;
  int truncated;
  if ((err = inline_results(ar, &src, room_for(ar, &resp.base), &rs, &n, &sent,
                            &resp.results_total, &truncated)) != 0) {
    protobuf_c_message_free_unpacked(&r->base, NULL);
    api_fail_store(call, err);
    return;
  }
  resp.results_truncated = truncated;
  r->n_results = sent;
  r->results = rs;
  rt_call_reply(call, &resp.base);
  r->n_results = 0;
  r->results = NULL;
  store_msgs_free(rs, n);
  protobuf_c_message_free_unpacked(&r->base, NULL);
}

/* ---------------------------------------------------- ListResourceResults */

/* A page token is "type#id" of the last result sent: both parts follow
 * VALID_ID_PATTERN, so '#' cannot occur in either. Fails `call` and returns
 * -1 for anything else; "" starts from the first result. */
static int token_parse(rt_call_t *call, const char *tok, char *type, char *id) {
  type[0] = id[0] = '\0';
  if (tok == NULL || *tok == '\0')
    return 0;
  const char *hash = strchr(tok, '#');
  char msg[256], q[96];
  size_t tl = hash ? (size_t)(hash - tok) : 0;
  if (hash != NULL && tl <= VALID_MAX_ID_BYTES &&
      strlen(hash + 1) <= VALID_MAX_ID_BYTES) {
    memcpy(type, tok, tl);
    type[tl] = '\0';
    strcpy(id, hash + 1);
    if (valid_key("page_token", type, msg, sizeof(msg)) == GRPC_STATUS_OK &&
        valid_key("page_token", id, msg, sizeof(msg)) == GRPC_STATUS_OK)
      return 0;
  }
  rt_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
               "page_token: invalid token %s", valid_quote(tok, q, sizeof(q)));
  return -1;
}

/* Finds whose results `req` asks for, without unpacking a checkpoint's
 * graph (that would cost every page as much as GetCheckpoint). On success
 * *src points into the request, *keep (release with
 * protobuf_c_message_free_unpacked), *del (free) or *op (store_op_free);
 * on failure `call` is failed and -1 returned. */
static int find_src(api_results_t *ar, const api_scope_t *sc, rt_call_t *call,
                    const Smaug__V1__ListResourceResultsRequest *req,
                    src_t *src, ProtobufCMessage **keep, char **del,
                    store_op_t **op) {
  const char *names[3] = {"checkpoint_id", "restore_id", "operation_id"};
  const char *ids[3] = {req->checkpoint_id, req->restore_id, req->operation_id};
  int which = -1, count = 0;
  for (int i = 0; i < 3; i++)
    if (ids[i] != NULL && *ids[i] != '\0') {
      which = i;
      count++;
    }
  if (count != 1) {
    rt_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
                 "checkpoint_id, restore_id, operation_id: exactly one is "
                 "required");
    return -1;
  }
  static const store_kind_t kinds[3] = {STORE_CHECKPOINT, STORE_RESTORE,
                                        STORE_OPERATION};
  if (api_fail_bad_id(call, names[which], ids[which]) ||
      api_scope_fail(sc, call, kinds[which], ids[which]))
    return -1;
  int err;
  if (which == 0) {
    int status;
    if ((err = store_checkpoint_head(ar->store, ids[0], &status, del)) == 0)
      *src = checkpoint_src(ids[0], status, *del);
  } else if (which == 1) {
    Smaug__V1__Restore *r;
    if ((err = store_restore_get(ar->store, ids[1], &r)) == 0) {
      src->owner = r->id;
      *keep = &r->base;
    }
  } else if ((err = store_op_get(ar->store, ids[2], op)) == 0) {
    /* A protect's results belong to its checkpoint, a restore's to the
     * restore, a delete's to the operation itself. */
    src->owner = (*op)->kind == SMAUG__V1__OPERATION_KIND__OPERATION_KIND_DELETE
                     ? (*op)->id
                     : (*op)->target_id;
  }
  if (err) {
    static const char *const what[3] = {"checkpoint", "restore", "operation"};
    api_fail_lookup(call, what[which], ids[which], err);
    return -1;
  }
  return 0;
}

void api_results_list(api_results_t *ar, const api_scope_t *sc, rt_call_t *call,
                      const Smaug__V1__ListResourceResultsRequest *req) {
  char at[VALID_MAX_ID_BYTES + 1], ai[VALID_MAX_ID_BYTES + 1];
  if (req->page_size > API_RESULTS_PAGE_MAX) {
    rt_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
                 "page_size: %u is over the maximum of %u", req->page_size,
                 API_RESULTS_PAGE_MAX);
    return;
  }
  if (token_parse(call, req->page_token, at, ai))
    return;
  ops_flush(ar->ops);
  src_t src = {0};
  ProtobufCMessage *keep = NULL;
  char *del = NULL;
  store_op_t *op = NULL;
  if (find_src(ar, sc, call, req, &src, &keep, &del, &op))
    return;
  uint32_t limit = req->page_size ? req->page_size : API_RESULTS_PAGE_DEFAULT;
  Smaug__V1__ResourceResult **rs = NULL;
  size_t n = 0;
  int more;
  int err = page_read(ar->store, &src, at, ai, limit, &rs, &n, &more);
  if (err) {
    api_fail_store(call, err);
    goto out;
  }
  char tok[2 * VALID_MAX_ID_BYTES + 2] = "";
  Smaug__V1__ListResourceResultsResponse resp =
      SMAUG__V1__LIST_RESOURCE_RESULTS_RESPONSE__INIT;
  resp.next_page_token = tok;
  size_t room = room_for(ar, &resp.base);
  size_t sent = fit(rs, n, room > sizeof(tok) ? room - sizeof(tok) : 0);
  if (sent == 0 && n > 0)
    sent = 1; /* one result over the limit fails the call, never loops */
  if (more || sent < n)
    snprintf(tok, sizeof(tok), "%s#%s", rs[sent - 1]->resource->type,
             rs[sent - 1]->resource->id);
  resp.n_results = sent;
  resp.results = rs;
  rt_call_reply(call, &resp.base);
  store_msgs_free(rs, n);
out:
  if (keep != NULL)
    protobuf_c_message_free_unpacked(keep, NULL);
  free(del);
  store_op_free(op);
}
