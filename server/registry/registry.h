/*
 * registry.h - the protection plugins smaugd knows, and their health.
 *
 * A plugin is registered by address ("host:port" or "unix:/path"). The
 * registry calls its GetPluginInfo, refuses a protocol major version other
 * than PROTOCOL_VERSION_1, compiles its parameter schemas, and refuses a
 * resource type that another plugin already claims unless the caller asks
 * to replace that plugin. Each plugin is then polled with the gRPC health
 * service; a plugin that stops answering is kept but marked unavailable
 * with the reason, and becomes available again when it answers.
 *
 * Plugins are never freed while smaugd runs: a removed or replaced plugin
 * is retired, so a reg_plugin_t pointer held by a running operation stays
 * valid until reg_free(). Lookups only return current plugins.
 *
 * Thread: the loop thread of `rt`. Errors: 0 or a negative UV_E* code.
 */
#ifndef SMAUG_REGISTRY_H
#define SMAUG_REGISTRY_H

#include <grpc/grpc.h>
#include <stddef.h>

#include "reg_schema.h"
#include "rt.h"
#include "smaug/v1/plugin.pb-c.h"

typedef struct reg_s reg_t;
typedef struct reg_plugin_s reg_plugin_t;

/* Creates an empty registry on `rt`'s loop. Release with reg_close(), then
 * run the loop until it ends, then reg_free(). */
int reg_new(rt_t *rt, reg_t **out);

/* Polling interval of the health checks (default 1000 ms); also the
 * deadline of each check. For tests. */
void reg_set_health_interval(reg_t *reg, int ms);

/* Stops health checks and cancels calls in flight; their handles close on
 * the loop. Idempotent. */
void reg_close(reg_t *reg);

/* Frees every plugin, current or retired, and releases their channels.
 * Only after reg_close() and once the loop has run its close callbacks.
 * NULL is a no-op. */
void reg_free(reg_t *reg);

/* Ends a registration. On success `code` is GRPC_STATUS_OK and `p` is the
 * new plugin; otherwise `p` is NULL and `msg` says why (valid during the
 * call): INVALID_ARGUMENT (bad address or plugin info), UNAVAILABLE (not
 * reachable), FAILED_PRECONDITION (protocol major mismatch),
 * ALREADY_EXISTS (a type or name already claimed; see `replace`). */
typedef void (*reg_add_cb)(reg_t *reg, grpc_status_code code, const char *msg,
                           reg_plugin_t *p, void *data);

/* Registers the plugin at `addr`. With `replace`, plugins that claim one
 * of its types or its name are retired in its favour. Returns 0 and calls
 * `cb` once later, or an error (UV_EINVAL for an empty address) and never
 * calls it. */
int reg_add(reg_t *reg, const char *addr, int replace, reg_add_cb cb,
            void *data);

/* reg_add, and with `take_over` 0 a replacement is refused with
 * PERMISSION_DENIED when a plugin it would retire has another identity
 * (reg_plugin_identity): only a caller allowed to hand a type to someone
 * else (an admin) passes 1. reg_add() is reg_add_ex(..., take_over 1). A
 * replacement that changes a type's identity is logged as a warning with
 * both identities. */
int reg_add_ex(reg_t *reg, const char *addr, int replace, int take_over,
               reg_add_cb cb, void *data);

/* Retires the plugin named `name`; UV_ENOENT if there is none. */
int reg_remove(reg_t *reg, const char *name);

/* Number of current plugins and the i-th (NULL past the end), in
 * registration order. The pointer stays valid until reg_free(). */
size_t reg_count(const reg_t *reg);
reg_plugin_t *reg_at(const reg_t *reg, size_t i);

/* The current plugin that handles `type`, or NULL. `*ti` (may be NULL)
 * receives its ResourceTypeInfo, owned by the plugin. */
reg_plugin_t *reg_find_type(const reg_t *reg, const char *type,
                            const Smaug__V1__ResourceTypeInfo **ti);

/* Finds the plugin for `type` and checks that it is available: the one
 * place that says "no plugin" and "unavailable" the same way for every
 * caller. Returns 0 with `*p` (and `*ti`, may be NULL) set; UV_ENOENT
 * when no current plugin handles the type (`*p` NULL, msg "no plugin
 * provides resource type <type>"); or UV_EAGAIN when its plugin is
 * unavailable (`*p` and `*ti` still set, msg "plugin <name> (<address>)
 * is unavailable: <reason>"). `msg` (len bytes) may be NULL. */
int reg_resolve(const reg_t *reg, const char *type, reg_plugin_t **p,
                const Smaug__V1__ResourceTypeInfo **ti, char *msg, size_t len);

/* Compiled schemas of `type` for protect options or restore parameters;
 * NULL when the type is unknown or its schema is empty (accept all). */
const reg_schema_t *reg_options_schema(const reg_t *reg, const char *type);
const reg_schema_t *reg_restore_schema(const reg_t *reg, const char *type);

/* Accessors. Strings and messages are owned by the plugin and live until
 * reg_free(). */
const char *reg_plugin_name(const reg_plugin_t *p);
const char *reg_plugin_address(const reg_plugin_t *p);
/* Who the plugin is, as seen when it registered: "cert:<subject>" when its
 * channel is TLS (the subject of the certificate it presented, verified
 * against the plugins' CA), "unix:<path> uid=<owner of the socket file>"
 * for a unix socket, "tcp:<address> (unverified)" for plaintext TCP. Two
 * registrations are the same plugin when their identities are equal. */
const char *reg_plugin_identity(const reg_plugin_t *p);
const Smaug__V1__GetPluginInfoResponse *reg_plugin_info(const reg_plugin_t *p);
/* The plugin's channel; owned by the plugin, valid until reg_free(). */
rt_channel_t *reg_plugin_channel(const reg_plugin_t *p);
/* 1 while the health checks succeed (the initial state after register). */
int reg_plugin_available(const reg_plugin_t *p);
/* Why it is unavailable; "" when available. */
const char *reg_plugin_reason(const reg_plugin_t *p);
/* 0 while current, 1 once removed or replaced. */
int reg_plugin_retired(const reg_plugin_t *p);

/* Marks `p` unavailable with `reason` (copied) until the next successful
 * health check; used when an activity call finds the plugin gone. */
void reg_plugin_set_unavailable(reg_plugin_t *p, const char *reason);

/* Checks `p`'s health now instead of at its next poll (unless a check is
 * in flight, or the plugin is retired or the registry closing): an
 * activity call found the plugin unreachable, and retries wait for it to
 * serve again. Loop thread. */
void reg_plugin_check_now(reg_plugin_t *p);

/* Called on the loop thread when a health check finds a plugin serving
 * again after it was unavailable. */
typedef void (*reg_available_cb)(reg_plugin_t *p, void *data);

/* Sets the one listener of plugins becoming available (NULL: none). */
void reg_on_available(reg_t *reg, reg_available_cb cb, void *data);

/* Support for `kind` of `type` in the plugin info: *parallel and *sync
 * are set to 1 when the activity is implemented. Returns 0, or UV_ENOTSUP
 * when the type does not list the operation at all. */
int reg_type_supports(const Smaug__V1__ResourceTypeInfo *ti, int kind,
                      int *parallel, int *sync);

#endif /* SMAUG_REGISTRY_H */
