/*
 * tls.h - smaugd's transport security: the credentials its API listens
 * with, the refusal to serve a network address in plaintext, the
 * credentials and policy of its channels to plugins, and the reload of
 * both on SIGHUP. It builds on the runtime's credentials (rt_creds.h) and
 * holds no gRPC types of its own.
 *
 * The API (--listen):
 *   - with --tls-cert and --tls-key it serves TLS; with --tls-client-ca as
 *     well every client must present a certificate from that CA (mTLS);
 *   - on a TCP address that is not loopback (0.0.0.0, [::], a routable
 *     address or a host name other than localhost) it refuses to serve
 *     without TLS and authentication, unless --insecure, which is then
 *     logged as a warning. A unix socket is always allowed (its mode is the
 *     access check).
 * Plugins (the channels smaugd dials):
 *   - unix:/path: plaintext, always allowed;
 *   - with --plugin-tls-ca, --plugin-tls-cert and --plugin-tls-key, a TCP
 *     plugin is dialled with mutual TLS, so a plaintext plugin cannot be
 *     registered; --plugin-insecure lets plugins on loopback addresses be
 *     dialled in plaintext still;
 *   - without them, plaintext to a loopback plugin is allowed and to any
 *     other host refused unless --plugin-insecure.
 * Every function runs on the loop thread.
 */
#ifndef SMAUG_SERVER_TLS_H
#define SMAUG_SERVER_TLS_H

#include <stddef.h>

#include "rt_creds.h"

/* The settings, as parsed from flags and environment (strings borrowed). */
typedef struct tls_settings_s {
  const char *cert;        /* --tls-cert */
  const char *key;         /* --tls-key */
  const char *client_ca;   /* --tls-client-ca */
  int insecure;            /* --insecure */
  const char *plugin_ca;   /* --plugin-tls-ca */
  const char *plugin_cert; /* --plugin-tls-cert */
  const char *plugin_key;  /* --plugin-tls-key */
  int plugin_insecure;     /* --plugin-insecure */
} tls_settings_t;

/* Whether the API authenticates its callers, for the listen refusal. */
typedef enum {
  /* No authentication exists in this build: TLS alone is asked for. */
  TLS_AUTH_NOT_AVAILABLE = 0,
  TLS_AUTH_OFF, /* it exists and is off: TLS and it are asked for */
  TLS_AUTH_ON
} tls_auth_t;

typedef struct tls_s tls_t;

/* Loads the API's and the plugins' credentials and installs the plugin
 * policy as `rt`'s channel chooser. Returns 0 with `*out` owned by the
 * caller (tls_free); or UV_EINVAL (flags that go together given alone, a
 * bad file), UV_EPERM (a private key readable by others), another negative
 * errno of a file, or UV_ENOMEM; `why` holds the sentence to print. Logs
 * the warning of --plugin-insecure. */
int tls_new(rt_t *rt, const tls_settings_t *s, tls_t **out, char *why,
            size_t why_len);

/* Checks `listen` against the policy above before anything listens on it:
 * 0 to go on (after logging the warning of --insecure where it was
 * needed); UV_EPERM when refused; or, for an address that could not be
 * served anyway, the listener's own error (rt_addr_check_listen: a bind
 * of a plain socket, closed at once without listening). `why` says why.
 * A malformed address passes: the listener names what is wrong with it. */
int tls_check_listen(tls_t *t, const char *listen, tls_auth_t auth, char *why,
                     size_t why_len);

/* The API listener's credentials (borrowed), or NULL for plaintext. */
rt_creds_t *tls_api_creds(tls_t *t);

/* Re-reads every certificate and key (SIGHUP): new connections get the new
 * ones, open calls go on. Logs the outcome; on an error the old files stay
 * in use. Returns 0 or the first error. */
int tls_reload(tls_t *t);

/* 1 when `addr` ("host:port") names a loopback address: 127.0.0.0/8, ::1
 * or "localhost". 0 for anything else, unix sockets included. */
int tls_is_loopback(const char *addr);

/* Uninstalls the chooser and frees `t`. NULL is a no-op. */
void tls_free(tls_t *t);

#endif /* SMAUG_SERVER_TLS_H */
