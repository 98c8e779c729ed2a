/*
 * cli_watch.h - following an operation to its end: `smaug watch` and the
 * `--wait` of protect, restore and checkpoint delete.
 *
 * The events of WatchOperation feed a cli_progress_t. On a terminal the
 * live block of cli_progress_render is redrawn in place; otherwise each
 * event is printed as one plain line (progress lines at most once a second
 * per task). At the end comes the summary table. With JSON output each
 * event is one JSON object per line, and nothing else is printed. A broken
 * stream is resumed after the last event seen; Ctrl-C detaches without
 * cancelling the operation.
 */
#ifndef SMAUG_CLI_WATCH_H
#define SMAUG_CLI_WATCH_H

#include <stdint.h>
#include <stdio.h>

#include "cli_rpc.h"
#include "smaug/v1/orchestrator.pb-c.h"

typedef struct cli_watch_opts_s {
  FILE *out;          /* where output goes; required */
  int tty;            /* draw the live block (out is a terminal) */
  int width;          /* terminal columns; 0: no limit */
  int json;           /* JSON Lines output */
  int64_t timeout_ms; /* deadline of the GetFlow call */
  /* If set, GetFlow is asked for the operation's tasks first so that the
   * total is known from the start; its failure is not an error. */
  const Smaug__V1__GetFlowRequest *flow;
} cli_watch_opts_t;

/* Watches operation `operation_id` on `r` until it finishes. Returns the
 * exit code: CLI_EXIT_OK when it finished with a success status,
 * CLI_EXIT_FAILED when it finished otherwise (or the server failed the
 * watch), CLI_EXIT_UNREACHABLE when the server was lost, and 130 when
 * interrupted by SIGINT. Errors go to stderr. Runs the loop of `r`. */
int cli_watch_run(cli_rpc_t *r, const char *operation_id,
                  const cli_watch_opts_t *opts);

#endif /* SMAUG_CLI_WATCH_H */
