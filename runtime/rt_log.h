/*
 * rt_log.h - structured logging for every smaug program.
 *
 * One line per record on stderr:
 *   2026-01-02T03:04:05.678Z level=info comp=server msg="listening" addr=...
 * gRPC's own gpr_log is routed here (component "grpc"). Thread-safe: a
 * record is formatted into one buffer and written with one write(2).
 */
#ifndef SMAUG_RT_LOG_H
#define SMAUG_RT_LOG_H

typedef enum {
  RT_LOG_DEBUG = 0,
  RT_LOG_INFO = 1,
  RT_LOG_WARN = 2,
  RT_LOG_ERROR = 3
} rt_log_level_t;

/* Sets the lowest level written. The default is RT_LOG_INFO, or the value
 * of SMAUG_LOG_LEVEL when it parses (read once, on first use; an invalid
 * value is logged and ignored). Any thread. */
void rt_log_set_level(rt_log_level_t level);
rt_log_level_t rt_log_get_level(void);

/* Parses "debug", "info", "warn" or "error". Returns 0 or UV_EINVAL. */
int rt_log_parse_level(const char *name, rt_log_level_t *out);

/* Writes one record. `kv_fmt` is printf-style "key=value key=value" text
 * appended after msg; it may be NULL. */
void rt_log(rt_log_level_t level, const char *component, const char *msg,
            const char *kv_fmt, ...) __attribute__((format(printf, 4, 5)));

/* Routes gRPC's gpr_log through rt_log as component "grpc" (gRPC's DEBUG,
 * INFO and ERROR become debug, info and error; the source file and line
 * follow as src=file:line). gRPC still filters by its own GRPC_VERBOSITY
 * first. Process-wide; call once before grpc_init (rt_new does). */
void rt_log_route_grpc(void);

#endif
