/*
 * cli_progress.h - what `smaug watch` and `--wait` show about a running
 * operation.
 *
 * A cli_progress_t folds the operation's events (WatchOperation) into one
 * record per task ("P:type#id" / "S:type#id"). Rendering is a set of pure
 * functions from that state to a string, so the output is unit-tested
 * byte for byte and the caller decides where it goes:
 *   - cli_progress_render: the live block for a terminal: a bar with tasks
 *     done/total, running and failed, then one line per running task with
 *     its own progress;
 *   - cli_progress_event_line: one plain line per event, for pipes and logs;
 *   - cli_progress_summary: the table printed when the operation ends.
 * Nothing here does I/O or reads a clock.
 */
#ifndef SMAUG_CLI_PROGRESS_H
#define SMAUG_CLI_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

#include "smaug/v1/orchestrator.pb-c.h"

typedef enum {
  CLI_TASK_PENDING = 0,
  CLI_TASK_QUEUED,
  CLI_TASK_RUNNING,
  CLI_TASK_DONE,
  CLI_TASK_FAILED,
  CLI_TASK_SKIPPED,
  CLI_TASK_CANCELLED
} cli_task_state_t;

/* One task as last reported. Strings are owned by the progress state. */
typedef struct cli_task_s {
  char *id;       /* "P:smaug.volume#vol-1" */
  char *resource; /* "smaug.volume#vol-1" */
  char activity;  /* 'P' or 'S' */
  cli_task_state_t state;
  uint32_t attempt;
  uint64_t done, total; /* last progress; total 0 when unknown */
  char *unit;           /* may be NULL */
  char *message;        /* last progress message or failure reason; NULL */
  int64_t started_ms, finished_ms; /* 0 when not yet */
  size_t seq;                      /* its index in cli_progress_t.tasks */
  int64_t line_ms; /* the caller's: when it last printed a progress line */
} cli_task_t;

/* The tasks are found by id through a search tree (tsearch), so applying
 * an event costs O(log n) and an operation of 100,000s of tasks is
 * followed as fast as its events arrive. */
typedef struct cli_progress_s {
  cli_task_t **tasks; /* in order of first appearance; each owned */
  size_t n_tasks, cap;
  void *index;                           /* tsearch tree of the tasks, by id */
  size_t counts[CLI_TASK_CANCELLED + 1]; /* tasks in each state */
  uint64_t last_sequence;                /* for resuming a broken watch */
  int64_t first_ms;                      /* time of the first event, 0 before */
  int finished;                          /* OPERATION_FINISHED was seen */
  char *final_status;  /* "available", "fail", ...; NULL before */
  char *final_message; /* NULL or the server's summary */
} cli_progress_t;

/* Initialises an empty state (caller-allocated). */
void cli_progress_init(cli_progress_t *p);

/* Releases everything the state owns. NULL-safe. */
void cli_progress_close(cli_progress_t *p);

/* Registers a task known in advance (from GetFlow), as pending, so that the
 * total is right before every task has reported. `task_id` is
 * "P:type#id" or "S:type#id". A known id is left as is. Returns 0,
 * UV_EINVAL for a malformed id, or UV_ENOMEM. */
int cli_progress_expect(cli_progress_t *p, const char *task_id);

/* Applies one event. Events with a sequence number at or below the last
 * applied one are ignored (a resumed stream may repeat them). Returns 0 or
 * UV_ENOMEM (the state stays consistent). */
int cli_progress_apply(cli_progress_t *p, const Smaug__V1__OperationEvent *ev);

/* The task `task_id` ("P:type#id"), or NULL if no event named it. */
cli_task_t *cli_progress_find(const cli_progress_t *p, const char *task_id);

/* The id cli_progress_apply gives the task of `ev` ("P:type#id", cut to
 * `len`), or "" when the event names no resource. Returns buf. */
char *cli_progress_task_id(const Smaug__V1__OperationEvent *ev, char *buf,
                           size_t len);

/* Counts tasks in each state; `counts` has CLI_TASK_CANCELLED + 1 slots. */
void cli_progress_count(const cli_progress_t *p, size_t *counts);

/* Returns 1 when the operation finished with a success status
 * ("available", "success" or "deleted"), else 0. */
int cli_progress_succeeded(const cli_progress_t *p);

/* Renders the live terminal block: the header line, then at most
 * `max_rows` lines for running tasks (and a "... N more" line), each line
 * cut to `width` columns and ended with '\n'. `now_ms` (Unix ms) gives the
 * elapsed time. Returns a malloc'd string, or NULL if memory ran out. */
char *cli_progress_render(const cli_progress_t *p, int width, size_t max_rows,
                          int64_t now_ms);

/* Returns one plain line (ending in '\n') describing `ev`, e.g.
 * "12:00:03 done      S smaug.volume#vol-1", or NULL if memory ran out.
 * Times are printed in UTC. */
char *cli_progress_event_line(const Smaug__V1__OperationEvent *ev);

/* Returns the end-of-operation table: one row per resource with the state
 * of its two tasks, the time it took and the reason of a failure, then the
 * totals. NULL if memory ran out. */
char *cli_progress_summary(const cli_progress_t *p);

/* Short name of a state: "pending", "running", "done", ... */
const char *cli_task_state_name(cli_task_state_t s);

#endif /* SMAUG_CLI_PROGRESS_H */
