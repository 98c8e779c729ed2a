/*
 * harness.h - runs a plugin built with the SDK and a protocol client on
 * one loop inside a test process, and records traces of what happened on
 * which thread, so ordering is checked on the record, not with sleeps.
 */
#ifndef SMAUG_TEST_SDK_HARNESS_H
#define SMAUG_TEST_SDK_HARNESS_H

#include "chk_client.h"
#include "sdk.h"

typedef struct {
  uv_loop_t loop;
  rt_t *rt;
  smaug_plugin_t *p;
  chk_t c;
  int port;
  int stopped;
} h_t;

/* Starts `def` on 127.0.0.1:0 with extra options `args` (NULL-terminated,
 * may be NULL) and connects a client. Asserts on failure. */
void h_start(h_t *h, const smaug_plugin_def_t *def, const char *const *args);

/* Stops everything and asserts the loop closes with no handle left. */
void h_stop(h_t *h);

/* Runs the loop until *flag is nonzero. */
void h_wait(h_t *h, const volatile int *flag);

/* Fills a protect request for (op, type, id) with a key of its own. */
void h_req(chk_req_t *r, const char *op, const char *type, const char *id,
           int sync);

/* Trace: append an event name (thread-safe), find its position. */
void trace_reset(void);
void trace_add(const char *ev);
int trace_pos(const char *ev); /* -1 if absent */
int trace_count(const char *ev);

#endif
