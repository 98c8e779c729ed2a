/*
 * cli_watch.c - following an operation's events (see cli_watch.h).
 */
#include "cli_watch.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli_pbjson.h"
#include "cli_progress.h"
#include "smaug/v1/orchestrator.smaug.h"

#define REDRAW_MS      200
#define RESUME_TRIES   5
#define RESUME_WAIT_MS 500
#define MAX_ROWS       12
/* Events per WatchOperation message asked for (max_batch): smaugd's cap.
 * A smaugd that predates batching ignores it and sends one per message. */
#define MAX_BATCH 64

typedef struct {
  const cli_watch_opts_t *o;
  cli_rpc_t *rpc;
  cli_progress_t prog;
  size_t drawn; /* lines of the live block now on screen */
  int interrupted;
  int nomem;
  uv_timer_t timer;
  uv_signal_t sigint;
} watch_t;

static int64_t now_ms(void) {
  uv_timeval64_t tv;
  if (uv_gettimeofday(&tv) != 0)
    return 0;
  return tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void redraw(watch_t *w) {
  char *s = cli_progress_render(&w->prog, w->o->width, MAX_ROWS, now_ms());
  if (s == NULL)
    return;
  /* Up over the previous block, clear to the end of the screen, draw. */
  if (w->drawn > 0)
    fprintf(w->o->out, "\r\x1b[%zuA\x1b[J", w->drawn);
  fputs(s, w->o->out);
  fflush(w->o->out);
  w->drawn = 0;
  for (const char *c = s; *c; c++)
    w->drawn += *c == '\n';
  free(s);
}

/* Plain output: 1 if a progress line for this event's task is due (at
 * most one a second per task, and always the last one). */
static int progress_due(watch_t *w, const Smaug__V1__OperationEvent *ev) {
  if (ev->resource == NULL)
    return 1;
  if (ev->progress != NULL && ev->progress->total > 0 &&
      ev->progress->done >= ev->progress->total)
    return 1;
  char id[512];
  cli_task_t *t =
      cli_progress_find(&w->prog, cli_progress_task_id(ev, id, sizeof(id)));
  if (t == NULL)
    return 1;
  if (t->line_ms != 0 && ev->time_ms - t->line_ms < 1000)
    return 0;
  t->line_ms = ev->time_ms;
  return 1;
}

static void on_one_event(watch_t *w, const Smaug__V1__OperationEvent *ev) {
  if (ev->sequence != 0 && ev->sequence <= w->prog.last_sequence)
    return; /* repeated after a resume */
  if (cli_progress_apply(&w->prog, ev) != 0)
    w->nomem = 1;
  if (w->o->json) {
    /* One string and one write: json_dumpf writes token by token. */
    json_t *j = cli_pbjson_from_message(&ev->base);
    char *line = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (line == NULL)
      w->nomem = 1;
    else
      fputs(line, w->o->out);
    free(line);
    json_decref(j);
    fputc('\n', w->o->out);
  } else if (!w->o->tty) {
    if (ev->kind == SMAUG__V1__EVENT_KIND__EVENT_KIND_PROGRESS &&
        !progress_due(w, ev))
      return;
    char *line = cli_progress_event_line(ev);
    if (line != NULL)
      fputs(line, w->o->out);
    free(line);
  }
}

/* One message of the stream: an event in `event`, or a batch in `events`. */
static void on_event(const ProtobufCMessage *msg, void *data) {
  watch_t *w = data;
  const Smaug__V1__WatchOperationResponse *resp =
      (const Smaug__V1__WatchOperationResponse *)msg;
  if (resp->event != NULL)
    on_one_event(w, resp->event);
  for (size_t i = 0; i < resp->n_events; i++)
    on_one_event(w, resp->events[i]);
  if (w->o->json || !w->o->tty)
    fflush(w->o->out); /* once a message: up to 64 events */
}

static void on_timer(uv_timer_t *t) {
  redraw(t->data);
}

static void on_sigint(uv_signal_t *s, int signum) {
  watch_t *w = s->data;
  w->interrupted = 1;
  cli_rpc_cancel(w->rpc);
}

static void expect_flow(watch_t *w) {
  ProtobufCMessage *resp = NULL;
  const rt_method_t *m =
      &smaug_v1_orchestrator_methods[SMAUG_V1_ORCHESTRATOR_GET_FLOW];
  if (cli_rpc_unary(w->rpc, m, &w->o->flow->base, w->o->timeout_ms, &resp) !=
      GRPC_STATUS_OK)
    return; /* the total then grows as tasks report */
  const Smaug__V1__GetFlowResponse *f =
      (const Smaug__V1__GetFlowResponse *)resp;
  for (size_t i = 0; i < f->n_nodes; i++)
    if (cli_progress_expect(&w->prog, f->nodes[i]->id) == UV_ENOMEM)
      w->nomem = 1;
  protobuf_c_message_free_unpacked(resp, NULL);
}

int cli_watch_run(cli_rpc_t *r, const char *operation_id,
                  const cli_watch_opts_t *o) {
  watch_t w = {.o = o, .rpc = r};
  uv_loop_t *loop = cli_rpc_loop(r);
  int rc = CLI_EXIT_FAILED;
  cli_progress_init(&w.prog);
  if (o->flow != NULL)
    expect_flow(&w);

  uv_signal_init(loop, &w.sigint);
  w.sigint.data = &w;
  uv_signal_start(&w.sigint, on_sigint, SIGINT);
  uv_timer_init(loop, &w.timer);
  w.timer.data = &w;
  if (o->tty && !o->json) {
    fputs("\x1b[?25l", o->out); /* hide the cursor while drawing */
    redraw(&w);
    uv_timer_start(&w.timer, on_timer, REDRAW_MS, REDRAW_MS);
  }

  grpc_status_code code = GRPC_STATUS_OK;
  for (int tries = 0; !w.prog.finished && !w.interrupted;) {
    Smaug__V1__WatchOperationRequest req =
        SMAUG__V1__WATCH_OPERATION_REQUEST__INIT;
    req.operation_id = (char *)operation_id;
    req.after_sequence = w.prog.last_sequence;
    req.max_batch = MAX_BATCH;
    uint64_t before = w.prog.last_sequence;
    code = cli_rpc_stream(
        r,
        &smaug_v1_orchestrator_methods[SMAUG_V1_ORCHESTRATOR_WATCH_OPERATION],
        &req.base, 0, on_event, &w);
    if (w.prog.finished || w.interrupted)
      break;
    if (code != GRPC_STATUS_UNAVAILABLE)
      break; /* ended without the final event, or a permanent error */
    if (w.prog.last_sequence > before)
      tries = 0; /* it made progress: the server is there */
    if (++tries > RESUME_TRIES)
      break;
    uv_sleep(RESUME_WAIT_MS);
  }

  uv_timer_stop(&w.timer);
  uv_signal_stop(&w.sigint);
  if (o->tty && !o->json) {
    redraw(&w);
    fputs("\x1b[?25h", o->out);
  }
  if (w.interrupted) {
    fprintf(stderr,
            "smaug: detached; operation %s keeps running (smaug watch %s)\n",
            operation_id, operation_id);
    rc = 130;
  } else if (w.prog.finished) {
    rc = cli_progress_succeeded(&w.prog) ? CLI_EXIT_OK : CLI_EXIT_FAILED;
  } else if (code == GRPC_STATUS_OK) {
    fprintf(stderr, "smaug: watch %s: the stream ended before the operation\n",
            operation_id);
  } else {
    fprintf(stderr, "smaug: watch %s: %s: %s\n", operation_id,
            rt_status_name(code), cli_rpc_message(r));
    rc = cli_rpc_exit_code(code, cli_rpc_message(r));
  }
  if (!o->json && !w.interrupted) {
    char *s = cli_progress_summary(&w.prog);
    if (s != NULL) {
      fputs(o->tty ? "\n" : "", o->out);
      fputs(s, o->out);
    }
    free(s);
  }
  if (w.nomem)
    fprintf(stderr, "smaug: out of memory; the display may be incomplete\n");
  fflush(o->out);

  uv_close((uv_handle_t *)&w.timer, NULL);
  uv_close((uv_handle_t *)&w.sigint, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  cli_progress_close(&w.prog);
  return rc;
}
