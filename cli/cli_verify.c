/*
 * cli_verify.c - `smaug checkpoint verify ID`, the hook for bank-side
 * verification of a checkpoint.
 *
 * Verifying means reading every chunk a checkpoint references in its bank
 * and checking its hash, which needs the bank's reader. That belongs with
 * the bank and its sample plugins; this file is where it plugs in. The
 * dispatch table in cli_cmd.c already routes "checkpoint verify" here, with
 * ctx->args holding the positional ID and the global options.
 */
#include <stdio.h>

#include "cli_cmd.h"
#include "cli_rpc.h"

int cli_cmd_checkpoint_verify(cli_ctx_t *ctx) {
  fprintf(ctx->err, "smaug: checkpoint verify: not available in this build\n");
  return CLI_EXIT_FAILED;
}
