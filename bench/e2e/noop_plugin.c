/*
 * noop_plugin.c - smaug-bench-noop-plugin: the plugin smaug-bench-e2e
 * protects against, written with the SDK like any other plugin.
 *
 * It declares one type, "b.node", with both protect activities
 * implemented, so every task of a protect is a real ParallelActivity or
 * SyncActivity call; each completes at once in its callback, without jobs
 * or bank access. What remains is the per-call cost of smaugd, the SDK
 * (idempotency keys, result bookkeeping) and the transport. Command line:
 * that of smaug_plugin_main() (smaug/plugin.h).
 */
#include <smaug/plugin.h>

static void protect_parallel(smaug_activity_t *act, void *data) {
  smaug_activity_complete(act, NULL);
}

static void protect_sync(smaug_activity_t *act, void *data) {
  smaug_activity_complete(act, NULL);
}

static const smaug_type_def_t types[] = {{
    .size = sizeof(smaug_type_def_t),
    .type = "b.node",
    .protect = {.parallel = protect_parallel, .sync = protect_sync},
}};

static const smaug_plugin_def_t plugin = {
    .size = sizeof(smaug_plugin_def_t),
    .name = "smaug-bench-noop-plugin",
    .version = "1",
    .types = types,
    .n_types = 1,
};

int main(int argc, char **argv) {
  return smaug_plugin_main(argc, argv, &plugin);
}
