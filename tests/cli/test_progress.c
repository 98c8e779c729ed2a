/*
 * test_progress.c - operation progress state and its renderings
 * (cli_progress): the live block, plain event lines and the summary.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_progress.h"

#define T0 1700000000000LL /* 2023-11-14T22:13:20Z */

typedef struct {
  Smaug__V1__OperationEvent ev;
  Smaug__V1__Resource res;
  Smaug__V1__Progress prog;
} event_t;

static uint64_t seq;

/* Fills `e` as event `kind` of task `act` on smaug.volume#`id`. */
static const Smaug__V1__OperationEvent *mk(event_t *e,
                                           Smaug__V1__EventKind kind, char act,
                                           const char *id, int64_t t_ms) {
  smaug__v1__operation_event__init(&e->ev);
  smaug__v1__resource__init(&e->res);
  e->res.type = "smaug.volume";
  e->res.id = (char *)id;
  e->ev.sequence = ++seq;
  e->ev.kind = kind;
  e->ev.resource = &e->res;
  e->ev.activity = act == 'S' ? SMAUG__V1__ACTIVITY__ACTIVITY_SYNC
                              : SMAUG__V1__ACTIVITY__ACTIVITY_PARALLEL;
  e->ev.attempt = 1;
  e->ev.time_ms = T0 + t_ms;
  return &e->ev;
}

static const Smaug__V1__OperationEvent *
mk_progress(event_t *e, char act, const char *id, uint64_t done, uint64_t total,
            const char *msg) {
  mk(e, SMAUG__V1__EVENT_KIND__EVENT_KIND_PROGRESS, act, id, 1500);
  smaug__v1__progress__init(&e->prog);
  e->prog.done = done;
  e->prog.total = total;
  e->prog.unit = "MiB";
  e->prog.message = (char *)msg;
  e->ev.progress = &e->prog;
  return &e->ev;
}

static void apply(cli_progress_t *p, const Smaug__V1__OperationEvent *ev) {
  cr_assert_eq(cli_progress_apply(p, ev), 0);
}

/* Two volumes: v1 fully done, v2's P running at 40%, v3's P failed. */
static void scenario(cli_progress_t *p) {
  event_t e;
  seq = 0;
  cli_progress_init(p);
  apply(p, mk(&e, SMAUG__V1__EVENT_KIND__EVENT_KIND_STARTED, 'P', "v1", 0));
  apply(p, mk(&e, SMAUG__V1__EVENT_KIND__EVENT_KIND_DONE, 'P', "v1", 1000));
  apply(p, mk(&e, SMAUG__V1__EVENT_KIND__EVENT_KIND_STARTED, 'S', "v1", 1000));
  apply(p, mk(&e, SMAUG__V1__EVENT_KIND__EVENT_KIND_DONE, 'S', "v1", 2200));
  apply(p, mk(&e, SMAUG__V1__EVENT_KIND__EVENT_KIND_STARTED, 'P', "v2", 100));
  apply(p, mk_progress(&e, 'P', "v2", 40, 100, "copying"));
  mk(&e, SMAUG__V1__EVENT_KIND__EVENT_KIND_FAILED, 'P', "v3", 300);
  e.ev.message = "disk gone";
  apply(p, &e.ev);
  cr_assert_eq(cli_progress_expect(p, "S:smaug.volume#v2"), 0);
  cr_assert_eq(cli_progress_expect(p, "S:smaug.volume#v3"), 0);
}

Test(progress, render_shows_totals_and_running_tasks, .timeout = 5) {
  cli_progress_t p;
  scenario(&p);
  char *s = cli_progress_render(&p, 100, 10, T0 + 65000);
  cr_assert_not_null(s);
  cr_assert_str_eq(s, "[############------------] 3/6 tasks  1 running  "
                      "1 failed  1:05\n"
                      "  P smaug.volume#v2  [####------]  40%  40/100 MiB  "
                      "copying\n");
  free(s);
  cli_progress_close(&p);
}

Test(progress, render_cuts_lines_to_the_width, .timeout = 5) {
  cli_progress_t p;
  scenario(&p);
  char *s = cli_progress_render(&p, 30, 10, T0);
  cr_assert_not_null(s);
  for (char *line = s, *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1)
    cr_assert_leq(nl - line, 30);
  cr_assert_str_eq(s, "[#####-----] 3/6 tasks  1 runn\n"
                      "  P smaug.volume#v2  [####----\n");
  free(s);
  cli_progress_close(&p);
}

Test(progress, render_limits_rows_and_counts_the_rest, .timeout = 5) {
  cli_progress_t p;
  event_t e;
  seq = 0;
  cli_progress_init(&p);
  const char *ids[] = {"a", "b", "c"};
  for (int i = 0; i < 3; i++)
    apply(&p,
          mk(&e, SMAUG__V1__EVENT_KIND__EVENT_KIND_STARTED, 'P', ids[i], 0));
  char *s = cli_progress_render(&p, 0, 1, T0);
  cr_assert_str_eq(s, "[------------------------] 0/3 tasks  3 running  "
                      "0 failed  0:00\n"
                      "  P smaug.volume#a\n"
                      "  ... 2 more running\n");
  free(s);
  cli_progress_close(&p);
}

Test(progress, repeated_sequence_numbers_are_ignored, .timeout = 5) {
  cli_progress_t p;
  scenario(&p);
  event_t e;
  mk(&e, SMAUG__V1__EVENT_KIND__EVENT_KIND_DONE, 'P', "v2", 5000);
  e.ev.sequence = 3; /* a resumed stream replays an old event */
  apply(&p, &e.ev);
  size_t c[CLI_TASK_CANCELLED + 1];
  cli_progress_count(&p, c);
  cr_assert_eq(c[CLI_TASK_RUNNING], 1);
  cr_assert_eq(c[CLI_TASK_DONE], 2);
  cli_progress_close(&p);
}

Test(progress, finished_event_sets_the_outcome, .timeout = 5) {
  cli_progress_t p;
  scenario(&p);
  event_t e;
  mk(&e, SMAUG__V1__EVENT_KIND__EVENT_KIND_OPERATION_FINISHED, 'P', "-", 3000);
  e.ev.resource = NULL;
  e.ev.final_status = "error";
  e.ev.message = "1 resource failed";
  cr_assert_eq(cli_progress_succeeded(&p), 0);
  apply(&p, &e.ev);
  cr_assert(p.finished);
  cr_assert_eq(cli_progress_succeeded(&p), 0);
  free(p.final_status);
  p.final_status = strdup("available");
  cr_assert_eq(cli_progress_succeeded(&p), 1);
  cli_progress_close(&p);
}

Test(progress, event_lines_are_plain_text, .timeout = 5) {
  event_t e;
  seq = 0;
  char *s =
      cli_progress_event_line(mk_progress(&e, 'S', "v9", 5, 10, "half way"));
  cr_assert_str_eq(s, "22:13:21.500 progress  S smaug.volume#v9 5/10 MiB "
                      "half way\n");
  free(s);
  mk(&e, SMAUG__V1__EVENT_KIND__EVENT_KIND_RETRIED, 'P', "v9", 20);
  e.ev.attempt = 2;
  e.ev.message = "UNAVAILABLE";
  s = cli_progress_event_line(&e.ev);
  cr_assert_str_eq(s, "22:13:20.020 retried   P smaug.volume#v9 (attempt 2): "
                      "UNAVAILABLE\n");
  free(s);
}

Test(progress, summary_has_one_row_per_resource, .timeout = 5) {
  cli_progress_t p;
  scenario(&p);
  char *s = cli_progress_summary(&p);
  cr_assert_str_eq(
      s, "RESOURCE         PARALLEL   SYNC       TIME     REASON\n"
         "smaug.volume#v1  done       done       2.2s\n"
         "smaug.volume#v2  running    pending    -\n"
         "smaug.volume#v3  failed     pending    -        disk gone\n"
         "6 tasks: 2 done, 1 failed, 0 skipped, 0 cancelled, 3 unfinished\n");
  free(s);
  cli_progress_close(&p);
}

/* A resource whose S task reports before its P task still gets one row,
 * where its first task appeared, and tasks are found again by id. */
Test(progress, summary_row_follows_the_first_task_of_a_resource, .timeout = 5) {
  cli_progress_t p;
  event_t e;
  seq = 0;
  cli_progress_init(&p);
  apply(&p, mk(&e, SMAUG__V1__EVENT_KIND__EVENT_KIND_QUEUED, 'S', "b", 0));
  apply(&p, mk(&e, SMAUG__V1__EVENT_KIND__EVENT_KIND_DONE, 'P', "a", 10));
  apply(&p, mk(&e, SMAUG__V1__EVENT_KIND__EVENT_KIND_DONE, 'P', "b", 20));
  cr_assert_not_null(cli_progress_find(&p, "P:smaug.volume#b"));
  cr_assert_null(cli_progress_find(&p, "S:smaug.volume#a"));
  char *s = cli_progress_summary(&p);
  cr_assert_str_eq(s, "RESOURCE        PARALLEL   SYNC       TIME     REASON\n"
                      "smaug.volume#b  done       queued     -\n"
                      "smaug.volume#a  done       -          -\n"
                      "3 tasks: 2 done, 0 failed, 0 skipped, 0 cancelled, 1 "
                      "unfinished\n");
  free(s);
  cli_progress_close(&p);
}

/* 400,000 events of 200,000 tasks, then the summary: every step finds its
 * task without a scan of the others (that was quadratic: minutes), so
 * this takes well under a second. The timeout bounds the complexity, not
 * the speed. */
Test(progress, follows_400k_events_without_quadratic_cost, .timeout = 30) {
  enum { N = 100000 }; /* resources: 2 tasks, 2 events each */
  cli_progress_t p;
  event_t e;
  char id[32];
  seq = 0;
  cli_progress_init(&p);
  for (int round = 0; round < 2; round++)
    for (int act = 0; act < 2; act++)
      for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "r%06d", (i * 7919) % N);
        apply(&p, mk(&e,
                     round ? SMAUG__V1__EVENT_KIND__EVENT_KIND_DONE
                           : SMAUG__V1__EVENT_KIND__EVENT_KIND_STARTED,
                     act ? 'S' : 'P', id, round));
      }
  size_t c[CLI_TASK_CANCELLED + 1];
  cli_progress_count(&p, c);
  cr_assert_eq(p.n_tasks, 2 * N);
  cr_assert_eq(c[CLI_TASK_DONE], 2 * N);
  char *s = cli_progress_summary(&p);
  cr_assert_not_null(s);
  size_t lines = 0;
  for (const char *q = s; *q; q++)
    lines += *q == '\n';
  cr_assert_eq(lines, N + 2); /* header, one per resource, totals */
  free(s);
  cli_progress_close(&p);
}
