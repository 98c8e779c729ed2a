/*
 * cli_cmd.h - the subcommands of `smaug` and their dispatch.
 *
 * cli_cmd_main is the whole program: it finds the subcommand, parses its
 * options together with the global ones (--server, --output, --timeout),
 * makes the calls and returns the exit code (CLI_EXIT_* of cli_rpc.h).
 * Each subcommand is one function with the cli_cmd_fn signature, listed in
 * one table in cli_cmd.c; adding a subcommand is adding a row there.
 */
#ifndef SMAUG_CLI_CMD_H
#define SMAUG_CLI_CMD_H

#include <stdint.h>
#include <stdio.h>

#include "cli_args.h"
#include "cli_rpc.h"
#include "smaug/v1/orchestrator.pb-c.h"

/* What every subcommand gets. */
typedef struct cli_ctx_s {
  const char *server;     /* --server, $SMAUG_SERVER, or 127.0.0.1:7420 */
  int json;               /* -o json */
  int64_t timeout_ms;     /* deadline of each unary call */
  int tty;                /* stdout is a terminal */
  int width;              /* its width in columns, 0 when not a terminal */
  FILE *out;              /* results */
  FILE *err;              /* diagnostics */
  const cli_args_t *args; /* this subcommand's options and positionals */
} cli_ctx_t;

/* A subcommand. Returns an exit code. */
typedef int (*cli_cmd_fn)(cli_ctx_t *ctx);

/* Runs `smaug` with argv (argv[0] is the program name) and returns the exit
 * code. Writes results to stdout and diagnostics to stderr. Runs on the
 * calling thread; creates and destroys its own loop and runtime. */
int cli_cmd_main(int argc, char **argv);

/* Completes the per-resource results of a GetCheckpoint or GetRestore
 * answer on `r`: when `truncated` (results_truncated was set), fetches every
 * page of ListResourceResults for `checkpoint_id` or `restore_id` (the
 * other one NULL) and replaces *res and *n, which the answer owns, with all
 * of them (the old ones are freed; the answer still frees the new ones).
 * Otherwise changes nothing. Prints a failure to ctx->err and returns an
 * exit code; on failure *res and *n are unchanged. */
int cli_results_complete(cli_ctx_t *ctx, cli_rpc_t *r,
                         const char *checkpoint_id, const char *restore_id,
                         int truncated, Smaug__V1__ResourceResult ***res,
                         size_t *n);

/* `smaug checkpoint verify ID`: checks a checkpoint's data in the bank.
 * Defined in cli_verify.c, which the bank tooling fills in; until then it
 * reports that verification is unavailable and returns CLI_EXIT_FAILED. */
int cli_cmd_checkpoint_verify(cli_ctx_t *ctx);

#endif /* SMAUG_CLI_CMD_H */
