/*
 * hold_plugin.c - a plugin for the process-level tests: protect of
 * "t.hold" starts a job in Parallel that runs until it is cancelled (or
 * 30 s pass), so a SIGTERM always finds work in flight. It declares one
 * option of its own, --tag, for the --help test.
 */
#include <smaug/plugin.h>
#include <unistd.h>

static const char *tag = "";

static int hold(smaug_job_t *job, void *data) {
  for (int i = 0; i < 30000 && !smaug_job_is_cancelled(job); i++)
    usleep(1000);
  smaug_log(SMAUG_LOG_INFO, "job ended cancelled=%d",
            smaug_job_is_cancelled(job));
  return smaug_job_is_cancelled(job) ? SMAUG_ECANCELED : 0;
}

static void start_hold(smaug_activity_t *act, void *data) {
  smaug_log(SMAUG_LOG_DEBUG, "hold tag=%s", tag);
  int err = smaug_job_start(act, hold, NULL, NULL);
  if (err != 0)
    smaug_activity_fail(act, err, "cannot start");
  else
    smaug_activity_complete(act, NULL);
}

static const smaug_type_def_t types[] = {{.size = sizeof(smaug_type_def_t),
                                          .type = "t.hold",
                                          .protect = {.parallel = start_hold}}};
static const smaug_option_def_t options[] = {
    {.size = sizeof(smaug_option_def_t),
     .name = "--tag",
     .env = "SMAUG_HOLD_TAG",
     .help = "a label, logged by each activity",
     .value = &tag}};
static const smaug_plugin_def_t def = {.size = sizeof(smaug_plugin_def_t),
                                       .name = "hold",
                                       .version = "1",
                                       .types = types,
                                       .n_types = 1,
                                       .options = options,
                                       .n_options = 1};

int main(int argc, char **argv) {
  return smaug_plugin_main(argc, argv, &def);
}
