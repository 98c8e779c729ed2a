/*
 * spawn.h - test helpers: runs the smaug binary as a child process on the
 * test's own loop, so that a server on the same loop keeps answering while
 * the client runs (no threads, no sleeps), and closes that server and loop.
 */
#ifndef SMAUG_TESTS_CLI_SPAWN_H
#define SMAUG_TESTS_CLI_SPAWN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "rt.h"

/* Output of one run; `out` is NUL-terminated stdout (truncated at 64 KiB),
 * `err` the same for stderr. */
typedef struct {
  int64_t status;
  char out[65536];
  size_t out_len;
  char err[16384];
  size_t err_len;
} spawn_result_t;

/* Runs SMAUG_BIN with `args` (NULL-terminated, without argv[0]) on `loop`
 * and turns the loop until the child has exited and both pipes closed.
 * Returns 0 or a negative UV_E* code from uv_spawn. */
int spawn_smaug(uv_loop_t *loop, const char *bin, const char *const *args,
                spawn_result_t *res);

/* Shuts `srv` down, turns `loop` until it has stopped, frees `srv` and
 * `rt`, drains `loop` and closes it. Returns 0, or the failing
 * rt_server_shutdown or uv_loop_close code (then nothing after it ran). */
int spawn_server_close(uv_loop_t *loop, rt_t *rt, rt_server_t *srv);

#endif
