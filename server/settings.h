/*
 * settings.h - smaugd's settings: what it listens on, where it keeps its
 * state, its bank, the plugins it registers, its limits, and its transport
 * security and authentication files.
 *
 * They come from built-in defaults, then the JSON --config file, then
 * SMAUG_* environment variables, then flags; each later source wins, and
 * plugin addresses from every source are all registered.
 *
 * Errors: a problem with a setting is printed on stderr, naming the flag,
 * variable or key, and returned as a negative libuv code. Ownership: the
 * strings of a settings_t are malloc'd and released by settings_free().
 * Thread: the main thread, before the loop runs.
 */
#ifndef SMAUG_SETTINGS_H
#define SMAUG_SETTINGS_H

#include <stddef.h>
#include <stdint.h>

typedef struct settings_s {
  char *listen;
  char *data_dir;
  char *bank;
  char *log_level;
  char *auth_tokens; /* token file; NULL: no authentication */
  char **plugins;
  size_t n_plugins;
  long max_operations;
  long max_message_bytes;
  long call_timeout_ms;
  long heartbeat_ms;
  int64_t event_retention_ms; /* 0: keep events forever */
  int64_t retry_budget_ms;    /* 0: not retried */
  /* Transport security (tls.h). */
  char *tls_cert, *tls_key, *tls_client_ca;
  char *plugin_tls_ca, *plugin_tls_cert, *plugin_tls_key;
  int insecure, plugin_insecure;
} settings_t;

/* Fills `s` (zeroed by the caller) from the defaults, the --config file,
 * the environment and the flags in argv. Returns 0, or a negative code
 * after printing why on stderr (usage too for an unknown flag); --help
 * prints the usage on stdout and exits the process with 0. `s` is
 * released with settings_free() in every case. */
int settings_parse(settings_t *s, int argc, char **argv);

/* Appends plugin address `addr` (copied; "" is ignored). 0 or UV_ENOMEM. */
int settings_add_plugin(settings_t *s, const char *addr);

/* Sets s->bank, when no source set it, to the absolute file:// URI of
 * <data_dir>/bank, so that plugins started elsewhere find it. Returns 0,
 * UV_ENOMEM, or a negative errno when the data directory cannot be
 * resolved. */
int settings_default_bank(settings_t *s);

/* Releases the strings of `s`. */
void settings_free(settings_t *s);

#endif /* SMAUG_SETTINGS_H */
