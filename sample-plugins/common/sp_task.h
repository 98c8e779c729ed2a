/*
 * sp_task.h - hand-off of background work from a resource's Parallel to
 * its Sync within one plugin process.
 *
 * Parallel starts the work (a queued copy, a child process) and registers
 * an sp_task_t under the key of the resource in the operation; Sync takes
 * it back with sp_task_take() and waits for it (the SDK holds a Sync for
 * the resource's jobs; a child process is polled). Nothing about the task
 * travels through the orchestrator: when Sync finds no task (the plugin
 * restarted in between), it starts the work afresh, which the bank makes
 * cheap.
 *
 * A task is reference-counted (atomically: worker threads hold
 * references). The registry is touched only on the loop thread; the
 * cancel flag works from any thread.
 */
#ifndef SP_TASK_H
#define SP_TASK_H

#include <smaug/plugin.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sp_task_s sp_task_t;

/* Creates a running task with one reference for the caller. Returns 0 or
 * SMAUG_ENOMEM; *out is written on success only. */
int sp_task_new(sp_task_t **out);

/* Reference counting; the last unref frees the task and runs the user
 * cleanup (sp_task_set_user). NULL is a no-op. Any thread. */
void sp_task_ref(sp_task_t *t);
void sp_task_unref(sp_task_t *t);

/* Attaches a pointer that lives as long as the task (for example a child
 * process); `cleanup` (may be NULL) runs on the last unref. Set it before
 * the task is shared. */
void sp_task_set_user(sp_task_t *t, void *user, void (*cleanup)(void *user));
void *sp_task_user(const sp_task_t *t);

/* Asks the work to stop; the flag can be handed to the bank (sp_io_t). */
void sp_task_cancel(sp_task_t *t);
const atomic_int *sp_task_cancel_flag(const sp_task_t *t);

/* The registry key of an activity's resource in its operation. Returns 0
 * or SMAUG_EINVAL when it does not fit. */
int sp_task_key(const smaug_activity_t *act, char *buf, size_t len);

/* Registers `t` under `key`, taking a new reference. A task registered
 * more than an hour ago and never taken is cancelled and dropped here, so
 * operations cancelled between Parallel and Sync do not accumulate.
 * Returns 0, SMAUG_EEXIST or SMAUG_ENOMEM. Loop thread. */
int sp_task_register(const char *key, sp_task_t *t);

/* Removes the task registered under `key` and returns it with the
 * registry's reference (the caller unrefs it), or NULL. Loop thread. */
sp_task_t *sp_task_take(const char *key);

#endif
