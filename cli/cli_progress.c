/*
 * cli_progress.c - operation progress state and its text renderings (see
 * cli_progress.h). Text is built with open_memstream, so the renderers are
 * plain fprintf code with no I/O of their own.
 */
#define _GNU_SOURCE /* tdestroy */
#include "cli_progress.h"

#include <search.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

static const char *const state_names[] = {
    "pending", "queued", "running", "done", "failed", "skipped", "cancelled"};

const char *cli_task_state_name(cli_task_state_t s) {
  return (unsigned)s <= CLI_TASK_CANCELLED ? state_names[s] : "?";
}

void cli_progress_init(cli_progress_t *p) {
  memset(p, 0, sizeof(*p));
}

static void task_free(cli_task_t *t) {
  if (t == NULL)
    return;
  free(t->id);
  free(t->resource);
  free(t->unit);
  free(t->message);
  free(t);
}

static void no_free(void *node) {
  (void)node; /* the tasks array owns the tasks */
}

void cli_progress_close(cli_progress_t *p) {
  if (p == NULL)
    return;
  tdestroy(p->index, no_free);
  for (size_t i = 0; i < p->n_tasks; i++)
    task_free(p->tasks[i]);
  free(p->tasks);
  free(p->final_status);
  free(p->final_message);
  memset(p, 0, sizeof(*p));
}

/* Replaces *dst with a copy of src ("" counts as none). */
static int set_str(char **dst, const char *src) {
  char *s = NULL;
  if (src != NULL && src[0] != '\0' && (s = strdup(src)) == NULL)
    return UV_ENOMEM;
  free(*dst);
  *dst = s;
  return 0;
}

static int task_cmp(const void *a, const void *b) {
  return strcmp(((const cli_task_t *)a)->id, ((const cli_task_t *)b)->id);
}

cli_task_t *cli_progress_find(const cli_progress_t *p, const char *id) {
  cli_task_t key = {.id = (char *)id};
  void *const *node = tfind(&key, &p->index, task_cmp);
  return node ? *node : NULL;
}

static void set_state(cli_progress_t *p, cli_task_t *t, cli_task_state_t s) {
  p->counts[t->state]--;
  p->counts[s]++;
  t->state = s;
}

/* Finds or adds the task `id`; NULL only if memory ran out. */
static cli_task_t *get_task(cli_progress_t *p, const char *id) {
  cli_task_t *t = cli_progress_find(p, id);
  if (t != NULL)
    return t;
  if (p->n_tasks == p->cap) {
    size_t cap = p->cap ? p->cap * 2 : 16;
    cli_task_t **nt = realloc(p->tasks, cap * sizeof(*nt));
    if (nt == NULL)
      return NULL;
    p->tasks = nt;
    p->cap = cap;
  }
  if ((t = calloc(1, sizeof(*t))) == NULL)
    return NULL;
  t->activity = id[0];
  t->id = strdup(id);
  t->resource = strdup(id + 2);
  t->seq = p->n_tasks;
  if (t->id == NULL || t->resource == NULL ||
      tsearch(t, &p->index, task_cmp) == NULL) {
    task_free(t);
    return NULL;
  }
  p->tasks[p->n_tasks++] = t;
  p->counts[CLI_TASK_PENDING]++;
  return t;
}

int cli_progress_expect(cli_progress_t *p, const char *task_id) {
  if ((task_id[0] != 'P' && task_id[0] != 'S') || task_id[1] != ':' ||
      task_id[2] == '\0')
    return UV_EINVAL;
  return get_task(p, task_id) ? 0 : UV_ENOMEM;
}

char *cli_progress_task_id(const Smaug__V1__OperationEvent *ev, char *buf,
                           size_t len) {
  if (ev->resource == NULL)
    buf[0] = '\0';
  else
    snprintf(buf, len, "%c:%s#%s",
             ev->activity == SMAUG__V1__ACTIVITY__ACTIVITY_SYNC ? 'S' : 'P',
             ev->resource->type, ev->resource->id);
  return buf;
}

int cli_progress_apply(cli_progress_t *p, const Smaug__V1__OperationEvent *ev) {
  if (ev->sequence != 0 && ev->sequence <= p->last_sequence)
    return 0;
  if (p->first_ms == 0)
    p->first_ms = ev->time_ms;
  if (ev->kind == SMAUG__V1__EVENT_KIND__EVENT_KIND_OPERATION_FINISHED) {
    if (set_str(&p->final_status, ev->final_status) ||
        set_str(&p->final_message, ev->message))
      return UV_ENOMEM;
    p->finished = 1;
    p->last_sequence = ev->sequence;
    return 0;
  }
  if (ev->resource == NULL) {
    p->last_sequence = ev->sequence;
    return 0;
  }
  char id[512];
  cli_task_t *t = get_task(p, cli_progress_task_id(ev, id, sizeof(id)));
  if (t == NULL)
    return UV_ENOMEM;
  if (ev->attempt > 0)
    t->attempt = ev->attempt;
  int rc = 0;
  switch (ev->kind) {
  case SMAUG__V1__EVENT_KIND__EVENT_KIND_QUEUED:
    set_state(p, t, CLI_TASK_QUEUED);
    break;
  case SMAUG__V1__EVENT_KIND__EVENT_KIND_STARTED:
    set_state(p, t, CLI_TASK_RUNNING);
    if (t->started_ms == 0)
      t->started_ms = ev->time_ms;
    break;
  case SMAUG__V1__EVENT_KIND__EVENT_KIND_PROGRESS:
    set_state(p, t, CLI_TASK_RUNNING);
    if (t->started_ms == 0)
      t->started_ms = ev->time_ms;
    if (ev->progress != NULL) {
      t->done = ev->progress->done;
      t->total = ev->progress->total;
      rc = set_str(&t->unit, ev->progress->unit);
      if (rc == 0)
        rc = set_str(&t->message, ev->progress->message);
    }
    break;
  case SMAUG__V1__EVENT_KIND__EVENT_KIND_RETRIED:
    set_state(p, t, CLI_TASK_RUNNING);
    rc = set_str(&t->message, ev->message);
    break;
  case SMAUG__V1__EVENT_KIND__EVENT_KIND_DONE:
    set_state(p, t, CLI_TASK_DONE);
    t->finished_ms = ev->time_ms;
    if (t->total > 0)
      t->done = t->total;
    break;
  case SMAUG__V1__EVENT_KIND__EVENT_KIND_FAILED:
  case SMAUG__V1__EVENT_KIND__EVENT_KIND_SKIPPED:
  case SMAUG__V1__EVENT_KIND__EVENT_KIND_CANCELLED:
    set_state(p, t,
              ev->kind == SMAUG__V1__EVENT_KIND__EVENT_KIND_FAILED
                  ? CLI_TASK_FAILED
              : ev->kind == SMAUG__V1__EVENT_KIND__EVENT_KIND_SKIPPED
                  ? CLI_TASK_SKIPPED
                  : CLI_TASK_CANCELLED);
    t->finished_ms = ev->time_ms;
    rc = set_str(&t->message, ev->message);
    break;
  default:
    break;
  }
  if (rc == 0)
    p->last_sequence = ev->sequence;
  return rc;
}

void cli_progress_count(const cli_progress_t *p, size_t *counts) {
  memcpy(counts, p->counts, sizeof(p->counts));
}

int cli_progress_succeeded(const cli_progress_t *p) {
  const char *s = p->final_status;
  return p->finished && s != NULL &&
         (strcmp(s, "available") == 0 || strcmp(s, "success") == 0 ||
          strcmp(s, "deleted") == 0);
}

/* Closes the memstream and returns its buffer, or NULL after an error.
 * `*buf` is only final after fclose, hence the pointer. */
static char *finish(FILE *f, char **buf) {
  int bad = ferror(f);
  if (fclose(f) != 0 || bad) {
    free(*buf);
    return NULL;
  }
  return *buf;
}

/* One line of the live block, built in place and cut to the terminal
 * width when written; longer text is truncated silently. */
typedef struct {
  char b[512];
  size_t n;
} line_t;

static void lprintf(line_t *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void lprintf(line_t *l, const char *fmt, ...) {
  if (l->n + 1 >= sizeof(l->b))
    return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(l->b + l->n, sizeof(l->b) - l->n, fmt, ap);
  va_end(ap);
  if (n > 0)
    l->n +=
        (size_t)n < sizeof(l->b) - l->n ? (size_t)n : sizeof(l->b) - l->n - 1;
}

static void lbar(line_t *l, uint64_t done, uint64_t total, int cells) {
  int full = total ? (int)((double)done / (double)total * cells) : 0;
  if (full > cells)
    full = cells;
  lprintf(l, "[");
  for (int i = 0; i < cells; i++)
    lprintf(l, "%c", i < full ? '#' : '-');
  lprintf(l, "]");
}

static void lelapsed(line_t *l, int64_t ms) {
  if (ms < 0)
    ms = 0;
  long long s = (long long)(ms / 1000);
  if (s >= 3600)
    lprintf(l, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
  else
    lprintf(l, "%lld:%02lld", s / 60, s % 60);
}

/* Writes the line cut to `width` columns (0: no limit), then '\n'. */
static void put_line(FILE *out, const line_t *l, int width) {
  size_t len = l->n;
  if (width > 0 && len > (size_t)width)
    len = (size_t)width;
  fwrite(l->b, 1, len, out);
  fputc('\n', out);
}

char *cli_progress_render(const cli_progress_t *p, int width, size_t max_rows,
                          int64_t now_ms) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (f == NULL)
    return NULL;
  size_t c[CLI_TASK_CANCELLED + 1];
  cli_progress_count(p, c);
  size_t ended = c[CLI_TASK_DONE] + c[CLI_TASK_FAILED] + c[CLI_TASK_SKIPPED] +
                 c[CLI_TASK_CANCELLED];
  line_t l = {.n = 0};
  lbar(&l, ended, p->n_tasks, width == 0 || width >= 60 ? 24 : 10);
  lprintf(&l, " %zu/%zu tasks  %zu running  %zu failed", ended, p->n_tasks,
          c[CLI_TASK_RUNNING], c[CLI_TASK_FAILED]);
  if (c[CLI_TASK_SKIPPED])
    lprintf(&l, "  %zu skipped", c[CLI_TASK_SKIPPED]);
  lprintf(&l, "  ");
  lelapsed(&l, p->first_ms ? now_ms - p->first_ms : 0);
  if (p->finished)
    lprintf(&l, "  %s", p->final_status ? p->final_status : "finished");
  put_line(f, &l, width);
  size_t shown = 0;
  for (size_t i = 0; i < p->n_tasks && c[CLI_TASK_RUNNING] > 0; i++) {
    const cli_task_t *t = p->tasks[i];
    if (t->state != CLI_TASK_RUNNING)
      continue;
    l.n = 0;
    if (shown == max_rows) {
      lprintf(&l, "  ... %zu more running", c[CLI_TASK_RUNNING] - shown);
      put_line(f, &l, width);
      break;
    }
    shown++;
    lprintf(&l, "  %c %s", t->activity, t->resource);
    if (t->total > 0) {
      lprintf(&l, "  ");
      lbar(&l, t->done, t->total, 10);
      lprintf(&l, " %3d%%  %llu/%llu",
              (int)(t->done >= t->total ? 100 : t->done * 100 / t->total),
              (unsigned long long)t->done, (unsigned long long)t->total);
    } else if (t->done > 0) {
      lprintf(&l, "  %llu", (unsigned long long)t->done);
    }
    if ((t->total > 0 || t->done > 0) && t->unit)
      lprintf(&l, " %s", t->unit);
    if (t->attempt > 1)
      lprintf(&l, "  (attempt %u)", t->attempt);
    if (t->message)
      lprintf(&l, "  %s", t->message);
    put_line(f, &l, width);
  }
  return finish(f, &buf);
}

static void put_clock(FILE *f, int64_t ms) {
  time_t s = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&s, &tm);
  fprintf(f, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec,
          (int)(ms % 1000));
}

char *cli_progress_event_line(const Smaug__V1__OperationEvent *ev) {
  static const char *const kinds[] = {
      "?",    "queued", "started", "progress",  "retried",
      "done", "failed", "skipped", "cancelled", "finished"};
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (f == NULL)
    return NULL;
  unsigned k = (unsigned)ev->kind < sizeof(kinds) / sizeof(kinds[0])
                   ? (unsigned)ev->kind
                   : 0;
  put_clock(f, ev->time_ms);
  fprintf(f, " %-9s", kinds[k]);
  if (ev->kind == SMAUG__V1__EVENT_KIND__EVENT_KIND_OPERATION_FINISHED) {
    fprintf(f, " %s", ev->final_status);
  } else if (ev->resource != NULL) {
    fprintf(f, " %c %s#%s",
            ev->activity == SMAUG__V1__ACTIVITY__ACTIVITY_SYNC ? 'S' : 'P',
            ev->resource->type, ev->resource->id);
  }
  if (ev->kind == SMAUG__V1__EVENT_KIND__EVENT_KIND_PROGRESS &&
      ev->progress != NULL) {
    const Smaug__V1__Progress *pr = ev->progress;
    fprintf(f, " %llu", (unsigned long long)pr->done);
    if (pr->total > 0)
      fprintf(f, "/%llu", (unsigned long long)pr->total);
    if (pr->unit[0])
      fprintf(f, " %s", pr->unit);
    if (pr->message[0])
      fprintf(f, " %s", pr->message);
  }
  if (ev->kind == SMAUG__V1__EVENT_KIND__EVENT_KIND_RETRIED)
    fprintf(f, " (attempt %u)", ev->attempt);
  if (ev->kind != SMAUG__V1__EVENT_KIND__EVENT_KIND_PROGRESS &&
      ev->message[0] != '\0')
    fprintf(f, ": %s", ev->message);
  fputc('\n', f);
  return finish(f, &buf);
}

static void put_duration(FILE *f, int64_t ms) {
  if (ms < 1000)
    fprintf(f, "%lldms", (long long)ms);
  else if (ms < 60000)
    fprintf(f, "%.1fs", (double)ms / 1000.0);
  else
    fprintf(f, "%lldm%02llds", (long long)(ms / 60000),
            (long long)(ms / 1000 % 60));
}

char *cli_progress_summary(const cli_progress_t *p) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (f == NULL)
    return NULL;
  int w = (int)strlen("RESOURCE");
  for (size_t i = 0; i < p->n_tasks; i++) {
    int n = (int)strlen(p->tasks[i]->resource);
    if (n > w)
      w = n;
  }
  fprintf(f, "%-*s  %-9s  %-9s  %-7s  %s\n", w, "RESOURCE", "PARALLEL", "SYNC",
          "TIME", "REASON");
  for (size_t i = 0; i < p->n_tasks; i++) {
    /* One row per resource, where its first task appeared. */
    const cli_task_t *cur = p->tasks[i], *pt = cur, *st = cur;
    char other[512];
    snprintf(other, sizeof(other), "%c:%s", cur->activity == 'P' ? 'S' : 'P',
             cur->resource);
    const cli_task_t *o = cli_progress_find(p, other);
    if (o != NULL && o->seq < cur->seq)
      continue;
    if (cur->activity == 'P')
      st = o;
    else
      pt = o;
    int64_t start = 0, end = 0;
    const char *reason = NULL;
    const cli_task_t *both[2] = {pt, st};
    for (int k = 0; k < 2; k++) {
      const cli_task_t *t = both[k];
      if (t == NULL)
        continue;
      if (t->started_ms && (start == 0 || t->started_ms < start))
        start = t->started_ms;
      if (t->finished_ms > end)
        end = t->finished_ms;
      if (reason == NULL && t->message && t->state >= CLI_TASK_FAILED)
        reason = t->message;
    }
    fprintf(f, "%-*s  %-9s  %-9s  ", w, cur->resource,
            pt ? cli_task_state_name(pt->state) : "-",
            st ? cli_task_state_name(st->state) : "-");
    char *d = NULL;
    size_t dl = 0;
    FILE *df = open_memstream(&d, &dl);
    if (df == NULL)
      goto nomem;
    if (start && end >= start)
      put_duration(df, end - start);
    else
      fputc('-', df);
    if (fclose(df) != 0)
      goto nomem;
    if (reason != NULL)
      fprintf(f, "%-7s  %s\n", d, reason);
    else
      fprintf(f, "%s\n", d);
    free(d);
  }
  size_t c[CLI_TASK_CANCELLED + 1];
  cli_progress_count(p, c);
  fprintf(f, "%zu tasks: %zu done, %zu failed, %zu skipped, %zu cancelled",
          p->n_tasks, c[CLI_TASK_DONE], c[CLI_TASK_FAILED], c[CLI_TASK_SKIPPED],
          c[CLI_TASK_CANCELLED]);
  if (c[CLI_TASK_PENDING] + c[CLI_TASK_QUEUED] + c[CLI_TASK_RUNNING])
    fprintf(f, ", %zu unfinished",
            c[CLI_TASK_PENDING] + c[CLI_TASK_QUEUED] + c[CLI_TASK_RUNNING]);
  fputc('\n', f);
  if (p->finished) {
    fprintf(f, "operation %s", p->final_status ? p->final_status : "finished");
    if (p->final_message)
      fprintf(f, ": %s", p->final_message);
    fputc('\n', f);
  }
  return finish(f, &buf);
nomem:
  fclose(f);
  free(buf);
  return NULL;
}
