/*
 * rt_log.c - structured one-line log records on stderr (see rt_log.h).
 *
 * A record is formatted into one stack buffer of PIPE_BUF bytes and written
 * with one write(2), so concurrent records from several threads never
 * interleave, even when stderr is a pipe read by a supervisor. Longer
 * records are cut and end in "...". The level is one atomic int: it is read
 * without a lock on every call, and set from SMAUG_LOG_LEVEL on first use.
 */
#include "rt_log.h"

#include <errno.h>
#include <grpc/support/log.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define LOG_LINE_MAX PIPE_BUF

static atomic_int log_level = RT_LOG_INFO;
static pthread_once_t log_env_once = PTHREAD_ONCE_INIT;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

static void log_write(rt_log_level_t level, const char *component,
                      const char *msg, const char *kv_fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Applies SMAUG_LOG_LEVEL once. An invalid value is reported and ignored. */
static void log_env_init(void) {
  const char *env = getenv("SMAUG_LOG_LEVEL");
  rt_log_level_t lvl;
  if (env == NULL || *env == '\0')
    return;
  if (rt_log_parse_level(env, &lvl) == 0)
    atomic_store(&log_level, (int)lvl);
  else
    log_write(RT_LOG_WARN, "log", "ignoring invalid SMAUG_LOG_LEVEL",
              "value=%s", env); /* not rt_log: we are inside pthread_once */
}

void rt_log_set_level(rt_log_level_t level) {
  pthread_once(&log_env_once, log_env_init);
  if (level < RT_LOG_DEBUG)
    level = RT_LOG_DEBUG;
  if (level > RT_LOG_ERROR)
    level = RT_LOG_ERROR;
  atomic_store(&log_level, (int)level);
}

rt_log_level_t rt_log_get_level(void) {
  pthread_once(&log_env_once, log_env_init);
  return (rt_log_level_t)atomic_load(&log_level);
}

int rt_log_parse_level(const char *name, rt_log_level_t *out) {
  if (name == NULL || out == NULL)
    return UV_EINVAL;
  for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
    if (strcasecmp(name, level_names[i]) == 0) {
      *out = (rt_log_level_t)i;
      return 0;
    }
  }
  if (strcasecmp(name, "warning") == 0) {
    *out = RT_LOG_WARN;
    return 0;
  }
  return UV_EINVAL;
}

/* A bounded output cursor: appends never overrun, `full` records a cut. */
typedef struct {
  char *p;
  size_t len, cap;
  int full;
} line_t;

static void line_putc(line_t *l, char c) {
  if (l->len + 1 < l->cap)
    l->p[l->len++] = c;
  else
    l->full = 1;
}

static void line_puts(line_t *l, const char *s) {
  while (*s)
    line_putc(l, *s++);
}

/* Appends `s` with newlines, tabs and other control bytes escaped, so that a
 * record always stays on one line. Quotes and backslashes are escaped only
 * inside a quoted value. */
static void line_put_escaped(line_t *l, const char *s, int quoted) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '\n') {
      line_puts(l, "\\n");
    } else if (c == '\r') {
      line_puts(l, "\\r");
    } else if (c == '\t') {
      line_puts(l, "\\t");
    } else if (c < 0x20 || c == 0x7f) {
      char hex[8];
      snprintf(hex, sizeof(hex), "\\x%02x", c);
      line_puts(l, hex);
    } else if (quoted && (c == '"' || c == '\\')) {
      line_putc(l, '\\');
      line_putc(l, (char)c);
    } else {
      line_putc(l, (char)c);
    }
  }
}

/* A value needs quotes when a reader splitting on spaces and '=' would
 * misread it. */
static int needs_quotes(const char *s) {
  if (*s == '\0')
    return 1;
  for (; *s; s++)
    if (*s == ' ' || *s == '"' || *s == '=' || (unsigned char)*s < 0x20)
      return 1;
  return 0;
}

/* Writes all of buf, retrying on EINTR and short writes. Errors are
 * dropped: there is nowhere left to report a failure to write the log. */
static void write_all(const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(STDERR_FILENO, buf, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return;
    }
    buf += n;
    len -= (size_t)n;
  }
}

/* Formats and writes one record; `kv_fmt`/`ap` may be NULL. */
static void log_vwrite(rt_log_level_t level, const char *component,
                       const char *msg, const char *kv_fmt, va_list ap) {
  char buf[LOG_LINE_MAX];
  line_t l = {buf, 0, sizeof(buf) - 4, 0}; /* room for "...\n" */
  struct timespec ts;
  struct tm tm;
  char stamp[40];

  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(stamp + n, sizeof(stamp) - n, ".%03ldZ", ts.tv_nsec / 1000000L);
  line_puts(&l, stamp);

  line_puts(&l, " level=");
  line_puts(&l, level_names[level]);
  line_puts(&l, " comp=");
  line_put_escaped(&l, component != NULL && *component ? component : "-", 0);
  line_puts(&l, " msg=");
  if (msg == NULL)
    msg = "";
  if (needs_quotes(msg)) {
    line_putc(&l, '"');
    line_put_escaped(&l, msg, 1);
    line_putc(&l, '"');
  } else {
    line_put_escaped(&l, msg, 0);
  }

  if (kv_fmt != NULL && *kv_fmt != '\0') {
    char kv[LOG_LINE_MAX];
    int k = vsnprintf(kv, sizeof(kv), kv_fmt, ap);
    if (k > 0) {
      line_putc(&l, ' ');
      line_put_escaped(&l, kv, 0);
      if ((size_t)k >= sizeof(kv))
        l.full = 1;
    }
  }

  if (l.full) {
    memcpy(buf + l.len, "...", 3);
    l.len += 3;
  }
  buf[l.len++] = '\n';
  write_all(buf, l.len);
}

/* Writes a record whatever the level. */
static void log_write(rt_log_level_t level, const char *component,
                      const char *msg, const char *kv_fmt, ...) {
  va_list ap;
  va_start(ap, kv_fmt);
  log_vwrite(level, component, msg, kv_fmt, ap);
  va_end(ap);
}

void rt_log(rt_log_level_t level, const char *component, const char *msg,
            const char *kv_fmt, ...) {
  if (level < RT_LOG_DEBUG || level > RT_LOG_ERROR)
    level = RT_LOG_ERROR;
  if ((int)level < (int)rt_log_get_level())
    return;
  va_list ap;
  va_start(ap, kv_fmt);
  log_vwrite(level, component, msg, kv_fmt, ap);
  va_end(ap);
}

/* gpr_log sink: gRPC's message becomes msg, its source location src=. */
static void log_from_grpc(gpr_log_func_args *args) {
  rt_log_level_t level = RT_LOG_ERROR;
  if (args->severity == GPR_LOG_SEVERITY_DEBUG)
    level = RT_LOG_DEBUG;
  else if (args->severity == GPR_LOG_SEVERITY_INFO)
    level = RT_LOG_INFO;
  const char *file = args->file != NULL ? args->file : "?";
  const char *slash = strrchr(file, '/');
  rt_log(level, "grpc", args->message, "src=%s:%d",
         slash != NULL ? slash + 1 : file, args->line);
}

void rt_log_route_grpc(void) {
  gpr_set_log_function(log_from_grpc);
}
