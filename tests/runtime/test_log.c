/*
 * test_log.c - rt_log: the record format, level filtering, level parsing,
 * SMAUG_LOG_LEVEL, gRPC routing and whole lines under concurrent writers.
 * Each test redirects stderr into a pipe and reads back what was written.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <grpc/grpc.h>
#include <grpc/support/log.h>
#include <limits.h>
#include <pthread.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "rt_log.h"

static int pipe_rd = -1;
static int saved_stderr = -1;

/* Sends stderr into a non-blocking pipe. */
static void capture(void) {
  int fds[2];
  cr_assert_eq(pipe(fds), 0);
  cr_assert_eq(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
  saved_stderr = dup(STDERR_FILENO);
  cr_assert_geq(saved_stderr, 0);
  cr_assert_geq(dup2(fds[1], STDERR_FILENO), 0);
  close(fds[1]);
  pipe_rd = fds[0];
}

static void restore(void) {
  if (saved_stderr >= 0) {
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    saved_stderr = -1;
  }
  if (pipe_rd >= 0) {
    close(pipe_rd);
    pipe_rd = -1;
  }
}

/* Everything written so far, NUL-terminated, into buf. */
static size_t drain(char *buf, size_t cap) {
  size_t n = 0;
  for (;;) {
    ssize_t r = read(pipe_rd, buf + n, cap - 1 - n);
    if (r <= 0)
      break;
    n += (size_t)r;
  }
  buf[n] = '\0';
  return n;
}

static void expect_match(const char *text, const char *pattern) {
  regex_t re;
  cr_assert_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
  int rc = regexec(&re, text, 0, NULL, 0);
  regfree(&re);
  cr_expect_eq(rc, 0, "\"%s\" does not match /%s/", text, pattern);
}

#define STAMP                                                                  \
  "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "

TestSuite(log, .init = capture, .fini = restore, .timeout = 10);

Test(log, record_has_time_level_component_msg_and_fields) {
  rt_log(RT_LOG_INFO, "server", "listening", "addr=%s:%d", "127.0.0.1", 5);
  char buf[1024];
  drain(buf, sizeof(buf));
  expect_match(buf, STAMP "level=info comp=server msg=listening "
                          "addr=127\\.0\\.0\\.1:5\n$");
}

Test(log, msg_with_spaces_or_quotes_is_quoted_and_escaped) {
  rt_log(RT_LOG_WARN, "exec", "plugin said \"no\"", NULL);
  char buf[1024];
  drain(buf, sizeof(buf));
  expect_match(buf, STAMP "level=warn comp=exec msg=\"plugin said "
                          "\\\\\"no\\\\\"\"\n$");
}

Test(log, empty_msg_is_quoted) {
  rt_log(RT_LOG_ERROR, "x", "", NULL);
  char buf[1024];
  drain(buf, sizeof(buf));
  expect_match(buf, STAMP "level=error comp=x msg=\"\"\n$");
}

Test(log, newlines_never_split_a_record) {
  rt_log(RT_LOG_INFO, "t", "two\nlines", "err=%s", "a\nb");
  char buf[1024];
  size_t n = drain(buf, sizeof(buf));
  cr_assert_gt(n, 0);
  cr_expect_eq(strchr(buf, '\n'), buf + n - 1, "one line: %s", buf);
  cr_expect(strstr(buf, "two\\nlines") != NULL, "%s", buf);
  cr_expect(strstr(buf, "err=a\\nb") != NULL, "%s", buf);
}

Test(log, records_below_the_level_are_dropped) {
  rt_log_set_level(RT_LOG_WARN);
  cr_expect_eq(rt_log_get_level(), RT_LOG_WARN);
  rt_log(RT_LOG_DEBUG, "t", "d", NULL);
  rt_log(RT_LOG_INFO, "t", "i", NULL);
  rt_log(RT_LOG_WARN, "t", "w", NULL);
  rt_log(RT_LOG_ERROR, "t", "e", NULL);
  char buf[1024];
  drain(buf, sizeof(buf));
  expect_match(buf, STAMP "level=warn comp=t msg=w\n"
                          "[^\n]+level=error comp=t msg=e\n$");
}

Test(log, debug_level_lets_everything_through) {
  rt_log_set_level(RT_LOG_DEBUG);
  rt_log(RT_LOG_DEBUG, "t", "d", NULL);
  char buf[1024];
  drain(buf, sizeof(buf));
  expect_match(buf, STAMP "level=debug comp=t msg=d\n$");
}

Test(log, parse_level_accepts_the_four_names) {
  const char *names[] = {"debug", "info", "warn", "error"};
  for (int i = 0; i < 4; i++) {
    rt_log_level_t lvl = (rt_log_level_t)-1;
    cr_expect_eq(rt_log_parse_level(names[i], &lvl), 0, "%s", names[i]);
    cr_expect_eq((int)lvl, i, "%s", names[i]);
  }
}

Test(log, parse_level_rejects_unknown_and_null) {
  rt_log_level_t lvl = RT_LOG_ERROR;
  cr_expect_eq(rt_log_parse_level("verbose", &lvl), UV_EINVAL);
  cr_expect_eq(rt_log_parse_level("", &lvl), UV_EINVAL);
  cr_expect_eq(rt_log_parse_level(NULL, &lvl), UV_EINVAL);
  cr_expect_eq(rt_log_parse_level("info", NULL), UV_EINVAL);
  cr_expect_eq(lvl, RT_LOG_ERROR, "untouched on error");
}

/* Each test runs in its own process, so the variable is read here first. */
Test(log, env_variable_sets_the_initial_level) {
  setenv("SMAUG_LOG_LEVEL", "error", 1);
  cr_expect_eq(rt_log_get_level(), RT_LOG_ERROR);
  rt_log(RT_LOG_WARN, "t", "hidden", NULL);
  char buf[256];
  cr_expect_eq(drain(buf, sizeof(buf)), 0, "got: %s", buf);
}

Test(log, invalid_env_variable_is_reported_and_ignored) {
  setenv("SMAUG_LOG_LEVEL", "loud", 1);
  cr_expect_eq(rt_log_get_level(), RT_LOG_INFO);
  char buf[1024];
  drain(buf, sizeof(buf));
  expect_match(buf, STAMP "level=warn comp=log msg=\"ignoring invalid "
                          "SMAUG_LOG_LEVEL\" value=loud\n$");
}

Test(log, long_records_are_cut_to_one_atomic_write) {
  static char big[3 * PIPE_BUF];
  memset(big, 'x', sizeof(big) - 1);
  rt_log(RT_LOG_INFO, "t", "big", "v=%s", big);
  static char buf[4 * PIPE_BUF];
  size_t n = drain(buf, sizeof(buf));
  cr_expect_leq(n, PIPE_BUF);
  cr_expect_gt(n, PIPE_BUF / 2);
  cr_expect_str_eq(buf + n - 4, "...\n");
}

Test(log, grpc_lines_come_out_as_component_grpc) {
  rt_log_route_grpc();
  grpc_init(); /* gpr_log is silent before the first init */
  gpr_log(__FILE__, 42, GPR_LOG_SEVERITY_ERROR, "boom %d", 7);
  grpc_shutdown();
  char buf[1024];
  drain(buf, sizeof(buf));
  expect_match(buf, STAMP "level=error comp=grpc msg=\"boom 7\" "
                          "src=test_log\\.c:42\n$");
}

#define WRITERS 4
#define RECORDS 100

static void *writer(void *arg) {
  int id = (int)(intptr_t)arg;
  for (int i = 0; i < RECORDS; i++)
    rt_log(RT_LOG_INFO, "w", "record", "writer=%d seq=%d pad=%s", id, i,
           "0123456789012345678901234567890123456789");
  return NULL;
}

/* Records from concurrent threads arrive whole: every line of the trace
 * parses, and each writer's sequence is complete and in order. */
Test(log, concurrent_records_never_interleave) {
  pthread_t t[WRITERS];
  for (int i = 0; i < WRITERS; i++)
    cr_assert_eq(pthread_create(&t[i], NULL, writer, (void *)(intptr_t)i), 0);
  for (int i = 0; i < WRITERS; i++)
    pthread_join(t[i], NULL);
  static char buf[65536];
  drain(buf, sizeof(buf));
  int next[WRITERS] = {0};
  int lines = 0;
  for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line != NULL;
       line = strtok_r(NULL, "\n", &save)) {
    int id, seq;
    const char *kv = strstr(line, " level=info comp=w msg=record writer=");
    cr_assert_not_null(kv, "torn line: %s", line);
    cr_assert_eq(
        sscanf(kv, " level=info comp=w msg=record writer=%d seq=%d", &id, &seq),
        2, "%s", line);
    cr_assert(id >= 0 && id < WRITERS);
    cr_expect_eq(seq, next[id], "writer %d out of order", id);
    next[id] = seq + 1;
    lines++;
  }
  cr_expect_eq(lines, WRITERS * RECORDS);
}
