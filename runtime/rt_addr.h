/*
 * rt_addr.h - addresses as the runtime takes them ("host:port",
 * "[v6]:port", ":port", "unix:/path", "unix:///path"), checked with the
 * operating system before gRPC sees them.
 *
 * gRPC core reports every failure to bind as "address already in use" and
 * every failure to connect as a deadline. These functions ask the system
 * directly (a plain bind() of the same address, a plain connect() with a
 * short timeout) so that the error names the real cause: a port out of
 * range, a missing directory, an address that is not on this host, a
 * refused connection, a name that does not resolve.
 */
#ifndef SMAUG_RT_ADDR_H
#define SMAUG_RT_ADDR_H

#include <stddef.h>

#include "rt.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rt_addr_s {
  int is_unix;
  char path[108]; /* unix: the socket path (fits sockaddr_un) */
  char host[256]; /* TCP: without brackets; "" for every interface */
  int port;       /* TCP: 0..65535 */
} rt_addr_t;

/* Parses `addr`. Returns 0, or UV_EINVAL with `why` set to what is wrong
 * ("port 99999 is out of range (0-65535)", "expected host:port or
 * unix:/path"). `why` (may be NULL when why_len is 0) is always
 * NUL-terminated. */
int rt_addr_parse(const char *addr, rt_addr_t *out, char *why, size_t why_len);

/* Checks that a server could listen on `addr`: parses it, then binds a
 * plain socket of the same family to it and closes it again (a unix socket
 * file it creates is removed). Returns 0 or a negative errno-style code
 * with `why` set to a sentence naming the cause. Blocking (name lookup);
 * for start-up. */
int rt_addr_check_listen(const char *addr, char *why, size_t why_len);

/* Called once with 0, or a negative errno-style code and the cause in
 * `why`, without the target ("connection refused", "no such socket file",
 * "bad address: ...", "cannot resolve HOST: ..."), valid until the
 * callback returns. UV_ETIMEDOUT means the peer
 * neither accepted nor refused within the timeout. */
typedef void (*rt_probe_cb)(int err, const char *why, void *data);

/* Connects a plain socket to `target` ("host:port" or "unix:/path") on the
 * loop, with `timeout_ms` for the name lookup and the connection together,
 * then closes it, and calls `cb`. A malformed target is reported through
 * `cb` as UV_EINVAL. Returns 0 (cb runs later, exactly once) or an error
 * (UV_ENOMEM, UV_EINVAL for NULL arguments; cb never runs). */
int rt_probe(rt_t *rt, const char *target, int timeout_ms, rt_probe_cb cb,
             void *data);

#ifdef __cplusplus
}
#endif
#endif /* SMAUG_RT_ADDR_H */
