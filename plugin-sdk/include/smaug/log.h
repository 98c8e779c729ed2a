/*
 * smaug/log.h - structured logs for plugins.
 *
 * Records go to stderr, one line each, in the same format as smaugd:
 *   2026-01-02T03:04:05.678Z level=info comp=plugin msg="..." op=... ...
 * smaug_activity_log() tags the record with the operation, resource type,
 * resource id and activity, so a plugin's lines can be joined with the
 * orchestrator's. The level threshold comes from --log-level or
 * SMAUG_PLUGIN_LOG_LEVEL. Thread-safe.
 */
#ifndef SMAUG_LOG_H
#define SMAUG_LOG_H

#include <smaug/activity.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  SMAUG_LOG_DEBUG = 0,
  SMAUG_LOG_INFO = 1,
  SMAUG_LOG_WARN = 2,
  SMAUG_LOG_ERROR = 3
} smaug_log_level_t;

/* Writes one record with a printf-style message. */
void smaug_log(smaug_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Writes one record tagged with `act`'s operation, type, id and activity.
 * Any thread while `act` is alive. */
void smaug_activity_log(const smaug_activity_t *act, smaug_log_level_t level,
                        const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets the lowest level written. */
void smaug_log_set_level(smaug_log_level_t level);

#ifdef __cplusplus
}
#endif
#endif /* SMAUG_LOG_H */
