/*
 * cli_verify.c - `smaug checkpoint verify ID`: checks a checkpoint's data
 * in its bank without restoring it.
 *
 * smaugd stays out of the data path, so verification runs here, next to
 * the bank: the client asks smaugd for the checkpoint (its bank URI and its
 * per-resource results), then checks two things. First, that every object
 * the catalogue says was saved is in the bank: each resource whose protect
 * ended DONE and whose metadata records a manifest or plain-file digest
 * must have that manifest or file in its section, with that digest
 * (bank_saved.h), so data that is gone is named
 * even though nothing is left to read. Second, every manifest under the
 * checkpoint's section (`checkpoints/<id>`) and every chunk they reference
 * is read, decompressed and checked against its SHA-256. Every problem is
 * printed, not only the first. The bank must be reachable from where the
 * client runs (a file:// bank on this machine, or the same volume mounted).
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "bank.h"
#include "bank_saved.h"
#include "cli_cmd.h"
#include "cli_rpc.h"
#include "smaug/v1/orchestrator.smaug.h"

typedef struct {
  cli_ctx_t *ctx;
  json_t *problems; /* -o json: collected; otherwise printed at once */
  json_t *missing;  /* -o json: collected; otherwise printed at once */
} verify_state_t;

static void on_missing(void *data, const char *type, const char *id,
                       const char *section, const char *object,
                       const char *msg) {
  verify_state_t *st = data;
  if (st->missing != NULL)
    json_array_append_new(st->missing,
                          json_pack("{s:s, s:s, s:s, s:s?, s:s}", "type", type,
                                    "id", id, "section", section, "object",
                                    object, "problem", msg));
  else
    fprintf(st->ctx->out, "MISSING  %s#%s: %s\n", type, id, msg);
}

static void on_problem(void *data, const char *section, const char *object,
                       const char *msg) {
  verify_state_t *st = data;
  if (st->problems != NULL)
    json_array_append_new(st->problems,
                          json_pack("{s:s, s:s, s:s}", "section", section,
                                    "object", object, "problem", msg));
  else
    fprintf(st->ctx->out, "CORRUPT  %s/%s: %s\n", section, object, msg);
}

/* Fetches the checkpoint (with its bank URI and all its results, paged
 * through ListResourceResults when GetCheckpoint carries only the first)
 * into *out, owned by the caller (protobuf_c_message_free_unpacked);
 * returns an exit code. */
static int checkpoint_get(cli_ctx_t *ctx, const char *id,
                          Smaug__V1__GetCheckpointResponse **out) {
  cli_rpc_t *r;
  int rc = cli_rpc_new(ctx->server, &r);
  if (rc != 0) {
    fprintf(ctx->err, "smaug: %s: %s\n", ctx->server, uv_strerror(rc));
    return rc == UV_EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_UNREACHABLE;
  }
  Smaug__V1__GetCheckpointRequest req = SMAUG__V1__GET_CHECKPOINT_REQUEST__INIT;
  req.id = (char *)id;
  ProtobufCMessage *m = NULL;
  grpc_status_code code = cli_rpc_unary(
      r, &smaug_v1_orchestrator_methods[SMAUG_V1_ORCHESTRATOR_GET_CHECKPOINT],
      &req.base, ctx->timeout_ms, &m);
  if (code != GRPC_STATUS_OK) {
    fprintf(ctx->err, "smaug: GetCheckpoint: %s: %s\n", rt_status_name(code),
            cli_rpc_message(r));
    rc = cli_rpc_exit_code(code, cli_rpc_message(r));
  } else {
    const Smaug__V1__Checkpoint *c =
        ((Smaug__V1__GetCheckpointResponse *)m)->checkpoint;
    if (c == NULL || c->bank_uri == NULL || c->bank_uri[0] == '\0') {
      fprintf(ctx->err, "smaug: checkpoint %s has no bank\n", id);
      rc = CLI_EXIT_FAILED;
      protobuf_c_message_free_unpacked(m, NULL);
    } else {
      Smaug__V1__GetCheckpointResponse *gc = (void *)m;
      Smaug__V1__Checkpoint *cp = gc->checkpoint;
      rc = cli_results_complete(ctx, r, id, NULL, gc->results_truncated,
                                &cp->results, &cp->n_results);
      if (rc == CLI_EXIT_OK)
        *out = gc;
      else
        protobuf_c_message_free_unpacked(m, NULL);
    }
  }
  cli_rpc_free(r);
  return rc;
}

int cli_cmd_checkpoint_verify(cli_ctx_t *ctx) {
  const char *id = ctx->args->pos[0];
  char section[BANK_SECTION_MAX + 1];
  /* The id becomes one path component of the bank section. */
  if (bank_check_object(id) != 0 ||
      snprintf(section, sizeof section, "checkpoints/%s", id) >=
          (int)sizeof section) {
    fprintf(ctx->err, "smaug: checkpoint verify: invalid checkpoint id '%s'\n",
            id);
    return CLI_EXIT_USAGE;
  }
  Smaug__V1__GetCheckpointResponse *resp = NULL;
  int rc = checkpoint_get(ctx, id, &resp);
  if (rc != CLI_EXIT_OK)
    return rc;
  const Smaug__V1__Checkpoint *c = resp->checkpoint;
  const char *uri = c->bank_uri;

  bank_t *bank = NULL;
  bank_err_t err = {0};
  verify_state_t st = {ctx, ctx->json ? json_array() : NULL,
                       ctx->json ? json_array() : NULL};
  bank_verify_report_t rep = {0};
  size_t missing = 0;
  int vrc = bank_open_ex(uri, BANK_OPEN_EXISTING, &bank, &err);
  if (vrc == 0 || vrc == UV_ENOENT) { /* no bank: nothing claimed is there */
    /* What the catalogue says was saved must be there at all... */
    vrc = bank_saved_check(bank, id, c->results, c->n_results,
                           BANK_SAVED_DIGEST, on_missing, &st, &missing, &err);
    if (vrc == UV_ENOENT)
      vrc = 0;
  }
  if (vrc == 0 && bank != NULL) /* ... and what is there must be intact. */
    vrc = bank_verify(bank, section, NULL, on_problem, &st, &rep, &err);
  int ok = vrc == 0 && missing == 0;
  if (vrc != 0 && vrc != BANK_ECORRUPT) {
    fprintf(ctx->err, "smaug: checkpoint verify: %s: %s\n", uri,
            err.msg[0] ? err.msg : uv_strerror(vrc));
    rc = CLI_EXIT_FAILED;
  } else if (ctx->json) {
    json_t *j = json_pack(
        "{s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:O, s:O}", "checkpoint",
        id, "bank", uri, "ok", ok, "objects", (json_int_t)rep.objects, "chunks",
        (json_int_t)rep.chunks, "bytes", (json_int_t)rep.bytes, "bad_objects",
        (json_int_t)rep.bad_objects, "bad_chunks", (json_int_t)rep.bad_chunks,
        "missing_objects", (json_int_t)missing, "problems", st.problems,
        "missing", st.missing);
    if (j != NULL) {
      json_dumpf(j, ctx->out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
      fputc('\n', ctx->out);
      json_decref(j);
    }
    rc = ok ? CLI_EXIT_OK : CLI_EXIT_FAILED;
  } else {
    if (rep.objects == 0)
      fprintf(ctx->out, "checkpoint %s: no objects in %s/%s\n", id, uri,
              section);
    fprintf(ctx->out,
            "checkpoint %s: %llu objects, %llu chunks, %llu bytes checked: "
            "%s\n",
            id, (unsigned long long)rep.objects, (unsigned long long)rep.chunks,
            (unsigned long long)rep.bytes,
            ok         ? "OK"
            : vrc != 0 ? "CORRUPT"
                       : "MISSING DATA");
    if (missing != 0)
      fprintf(ctx->out,
              "%zu objects the checkpoint records are missing from the "
              "bank\n",
              missing);
    if (vrc != 0)
      fprintf(ctx->out, "%llu objects and %llu chunks failed\n",
              (unsigned long long)rep.bad_objects,
              (unsigned long long)rep.bad_chunks);
    rc = ok ? CLI_EXIT_OK : CLI_EXIT_FAILED;
  }
  json_decref(st.problems);
  json_decref(st.missing);
  bank_close(bank);
  protobuf_c_message_free_unpacked(&resp->base, NULL);
  return rc;
}
