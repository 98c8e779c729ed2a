/*
 * rt_creds.h - transport security for the runtime: credentials for
 * listeners and channels (insecure, TLS, mutual TLS; unix sockets), the
 * metadata and authenticated identity of a server-side call's peer, and
 * metadata sent with outgoing calls.
 *
 * Everything is built on gRPC core's own credentials (grpc_security.h) and
 * OpenSSL; nothing here does cryptography itself.
 *
 * Credentials (rt_creds_t) come in three kinds:
 *   - insecure: plaintext HTTP/2. On a unix socket that is the intended
 *     transport (the socket's mode is the access check, see
 *     rt_server_listen_ex); on TCP it is for loopback and tests.
 *   - TLS server: a certificate chain and key; with a client CA, every
 *     client must present a certificate that chains to it (mutual TLS,
 *     gRPC's REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY), otherwise
 *     no client certificate is asked for.
 *   - TLS client: the CA that the server's certificate must chain to
 *     (NULL: the system's roots), and optionally a certificate and key
 *     presented to the server (mutual TLS).
 * Files are read when the credentials are made and again by
 * rt_creds_reload(); a private key file that its group or others can read
 * is refused, with a message that says so.
 *
 * Reload: a server listening with TLS credentials asks them for the current
 * certificate at every new TLS handshake (gRPC's server certificate config
 * fetcher), so after rt_creds_reload() new connections see the new
 * certificate while connections and calls already open go on untouched.
 * Client credentials bump a generation on reload: channels made afterwards
 * use the new files, channels already open keep theirs until released.
 *
 * Threads: every function here runs on the loop thread, like rt.h, except
 * where it says otherwise. Errors: 0 or a negative UV_E* code, with a
 * sentence in `why` (always NUL-terminated; may be NULL when why_len is 0)
 * where the function takes one.
 */
#ifndef SMAUG_RT_CREDS_H
#define SMAUG_RT_CREDS_H

#include "rt.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --------------------------------------------------------- credentials */

typedef struct rt_creds_s rt_creds_t;

/* PEM files for rt_creds_tls_server / rt_creds_tls_client. The paths are
 * copied. */
typedef struct rt_tls_files_s {
  const char *cert; /* certificate chain; a client's is optional (mTLS) */
  const char *key;  /* its private key: mode 0600 or stricter */
  const char *ca;   /* server: the client CA, which turns on mTLS (may be
                       NULL); client: the roots the server must chain to
                       (NULL: the system's roots) */
  const char *server_name; /* client only: the name the server certificate
                              must carry instead of the target's host (may
                              be NULL) */
} rt_tls_files_t;

/* Plaintext credentials. `*out` is owned by the caller (rt_creds_release).
 * Returns 0 or UV_ENOMEM. */
int rt_creds_insecure(rt_creds_t **out);

/* Server TLS credentials from `f->cert` and `f->key` (both required) and,
 * for mutual TLS, `f->ca`. The files are read and checked now (readable,
 * PEM, the key matches the certificate, the key's mode). Returns 0;
 * UV_EINVAL (bad PEM, key and certificate do not match, a missing
 * argument), UV_EPERM (key readable by group or others), the errno of a
 * file that cannot be read, or UV_ENOMEM. */
int rt_creds_tls_server(const rt_tls_files_t *f, rt_creds_t **out, char *why,
                        size_t why_len);

/* Client TLS credentials: `f->ca` (may be NULL), and `f->cert` with
 * `f->key` (both or neither). Same checks and errors as above. */
int rt_creds_tls_client(const rt_tls_files_t *f, rt_creds_t **out, char *why,
                        size_t why_len);

/* Re-reads the files of TLS credentials. On success listeners serve the new
 * certificate (and trust the new client CA) from their next handshake and
 * channels made from now on use the new files; on error nothing changes
 * and the old files stay in use. Insecure credentials: 0, nothing to do. */
int rt_creds_reload(rt_creds_t *c, char *why, size_t why_len);

/* 1 for TLS credentials, 0 for insecure ones. */
int rt_creds_is_tls(const rt_creds_t *c);

/* 1 for server credentials that require a client certificate (mTLS). */
int rt_creds_requires_client_cert(const rt_creds_t *c);

/* Adds `key: value` to the initial metadata of every call made on channels
 * from these credentials (for example "authorization", "Bearer ..."). The
 * key must be a lowercase gRPC header name, the value printable ASCII; both
 * are copied. Only before the first channel is made from `c`. Returns 0,
 * UV_EINVAL or UV_ENOMEM. */
int rt_creds_add_metadata(rt_creds_t *c, const char *key, const char *value);

/* Reference counting: listeners and channels hold their own reference.
 * rt_creds_release(NULL) is a no-op. */
rt_creds_t *rt_creds_ref(rt_creds_t *c);
void rt_creds_release(rt_creds_t *c);

/* ----------------------------------------------------------- listeners */

/* rt_server_listen_ex with credentials; `creds` NULL means insecure. The
 * server holds a reference to `creds` until rt_server_free. */
int rt_server_listen_creds(rt_server_t *srv, const char *addr,
                           rt_creds_t *creds, int *port_out, char *why,
                           size_t why_len);

/* ------------------------------------------------------------ channels */

/* The shared channel for (`target`, `creds`), created on first use: two
 * callers with the same target and the same credentials object (at the
 * same reload generation) share one connection. `creds` NULL means the
 * runtime's default (rt_set_channel_creds). Reference counted like
 * rt_channel_get. Errors: as rt_channel_get, or the chooser's. */
int rt_channel_get_creds(rt_t *rt, const char *target, rt_creds_t *creds,
                         rt_channel_t **out);

/* Decides the credentials of a channel to `target` that was asked for
 * without any (rt_channel_get, or NULL creds above). Sets `*creds` to a
 * borrowed pointer (the runtime takes its own reference) or NULL for
 * insecure, and returns 0; or refuses the target with a negative UV_E*
 * code (UV_EPERM for a policy refusal) and a sentence in `why`. */
typedef int (*rt_channel_creds_fn)(const char *target, rt_creds_t **creds,
                                   char *why, size_t why_len, void *data);

/* Installs the chooser for channels asked for without credentials. `fn`
 * NULL: insecure (the default). `data` must outlive `rt`. */
void rt_set_channel_creds(rt_t *rt, rt_channel_creds_fn fn, void *data);

/* The last refusal of the chooser on this runtime ("" if none): what
 * rt_channel_get's UV_EPERM meant. Valid until the next channel request. */
const char *rt_channel_refusal(rt_t *rt);

/* ------------------------------------------------- server-side call peer */

/* The first value of request header `key` (lowercase, e.g. "authorization")
 * as sent by the client, or NULL if absent, binary ("-bin") or holding a
 * NUL. The string is owned by the call and lives until the call is freed
 * (after rt_call_finish the handler must not touch it, like the call). */
const char *rt_call_metadata(rt_call_t *call, const char *key);

/* How many request headers named `key` the client sent (any value), so
 * that a header that must be single, like authorization, can refuse a
 * repeated one. */
size_t rt_call_metadata_count(const rt_call_t *call, const char *key);

/* Who is on the other end of a server-side call. */
typedef struct rt_peer_s {
  const char *address; /* "ipv4:127.0.0.1:40312", "unix:/path", ... */
  int is_unix;         /* the call came over a unix socket */
  int tls;             /* the connection is TLS */
  int authenticated;   /* the client presented a certificate that chained
                          to the listener's client CA (mTLS) */
  /* Of the client certificate, when authenticated; else NULL / 0. */
  const char *subject;     /* "CN=smaugd,O=smaug" (RFC 2253) */
  const char *common_name; /* "smaugd" */
  const char *const *sans; /* subject alternative names (DNS, URI, IP,
                              email), `n_sans` of them */
  size_t n_sans;
} rt_peer_t;

/* The peer of `call`, read from gRPC's auth context on first use. Owned by
 * the call; lives until it is freed. Never NULL (an allocation failure
 * gives an unauthenticated peer with address "unknown"). */
const rt_peer_t *rt_call_peer(rt_call_t *call);

/* ------------------------------------------------- client-side call peer */

/* Writes to `out` (`len` bytes, always NUL-terminated when len > 0, cut
 * if longer) the subject (RFC 2253, "CN=plugin,O=smaug"; the common name
 * when the subject is missing) of the certificate the server of `call`
 * presented, which gRPC verified against the channel's CA. Only from
 * inside the call's on_msg or on_done callback. Returns 0, or UV_ENOENT
 * when the call's connection is not TLS or carries no certificate name
 * (`out` is then ""). */
int rt_client_call_peer_subject(rt_client_call_t *call, char *out, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* SMAUG_RT_CREDS_H */
