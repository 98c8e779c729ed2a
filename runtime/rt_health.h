/*
 * rt_health.h - the standard grpc.health.v1.Health service for every smaug
 * server (smaugd and every plugin), so that load balancers, orchestrators
 * and `buf curl` / `grpcurl` can probe it without smaug's protos.
 *
 * rt_server_new() creates one per server; nothing else needs to call
 * rt_health_new(). All functions run on the loop thread.
 */
#ifndef SMAUG_RT_HEALTH_H
#define SMAUG_RT_HEALTH_H

#include "rt.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rt_health_s rt_health_t;

/* Registers grpc.health.v1.Health (Check and Watch) on `srv`, which must
 * not be started yet. The whole server ("") starts SERVING; other services
 * are unknown until rt_health_set() names them. On success `*out` is owned
 * by the caller and must outlive the server: free it with rt_health_free()
 * after the server's shutdown callback. Returns 0, UV_EINVAL or UV_ENOMEM
 * or the error of the registration; `*out` is untouched on error. */
int rt_health_new(rt_server_t *srv, rt_health_t **out);

/* Sets the status of `service` ("" or NULL: the whole server), adding it
 * if it is new, and sends the new status to every Watch stream of that
 * service if it changed. After rt_health_shutdown() this does nothing.
 * Running out of memory for a new service is logged and leaves it unknown. */
void rt_health_set(rt_health_t *h, const char *service, int serving);

/* Sets every service NOT_SERVING, sends that to every Watch stream, then
 * ends each of them with OK. Later Checks answer NOT_SERVING; later
 * Watches get NOT_SERVING (or SERVICE_UNKNOWN) and end at once. Call it
 * when a graceful server shutdown begins. Idempotent. */
void rt_health_shutdown(rt_health_t *h);

/* Frees `h`. Every Watch stream must be over: after rt_health_shutdown() or
 * after the server's shutdown callback (asserted). NULL is a no-op. */
void rt_health_free(rt_health_t *h);

#ifdef __cplusplus
}
#endif
#endif /* SMAUG_RT_HEALTH_H */
