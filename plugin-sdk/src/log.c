/*
 * log.c - the public logging calls (smaug/log.h) on top of the runtime's
 * structured logger, so plugin lines look like smaugd's and carry the
 * operation and resource of the activity they belong to.
 */
#include "rt_log.h"
#include "sdk.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static rt_log_level_t to_rt(smaug_log_level_t level) {
  switch (level) {
  case SMAUG_LOG_DEBUG:
    return RT_LOG_DEBUG;
  case SMAUG_LOG_INFO:
    return RT_LOG_INFO;
  case SMAUG_LOG_WARN:
    return RT_LOG_WARN;
  default:
    return RT_LOG_ERROR;
  }
}

void smaug_log(smaug_log_level_t level, const char *fmt, ...) {
  if (to_rt(level) < rt_log_get_level())
    return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  rt_log(to_rt(level), "plugin", msg, NULL);
}

void smaug_activity_log(const smaug_activity_t *act, smaug_log_level_t level,
                        const char *fmt, ...) {
  if (to_rt(level) < rt_log_get_level())
    return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  static const char *const ops[] = {"?", "protect", "restore", "delete"};
  smaug_op_t op = smaug_activity_op(act);
  rt_log(to_rt(level), "plugin", msg, "op=%s kind=%s type=%s id=%s activity=%s",
         smaug_activity_operation_id(act),
         ops[op >= SMAUG_OP_PROTECT && op <= SMAUG_OP_DELETE ? op : 0],
         smaug_activity_type(act), smaug_activity_resource_id(act),
         smaug_activity_kind(act) == SMAUG_SYNC ? "sync" : "parallel");
}

void smaug_log_set_level(smaug_log_level_t level) {
  rt_log_set_level(to_rt(level));
}

int sdk_log_parse(const char *name, smaug_log_level_t *out) {
  rt_log_level_t l;
  if (rt_log_parse_level(name, &l) != 0)
    return SMAUG_EINVAL;
  *out = (smaug_log_level_t)l;
  return 0;
}
