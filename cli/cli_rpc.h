/*
 * cli_rpc.h - blocking calls over the RPC runtime, for a short-lived client.
 *
 * The `smaug` client makes a few calls and exits, so it runs the libuv
 * loop only while a call is in flight: cli_rpc_unary and cli_rpc_stream
 * start a call with rt_client_call_start and turn the loop until it ends.
 * Other handles the caller puts on cli_rpc_loop() (timers, signal
 * watchers) run during those turns. Everything happens on the calling
 * thread.
 */
#ifndef SMAUG_CLI_RPC_H
#define SMAUG_CLI_RPC_H

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>
#include <stdint.h>
#include <uv.h>

#include "rt.h"

/* Exit codes of the `smaug` program. */
enum {
  CLI_EXIT_OK = 0,
  CLI_EXIT_FAILED = 1,      /* the operation or the request failed */
  CLI_EXIT_USAGE = 2,       /* bad command line or input file */
  CLI_EXIT_UNREACHABLE = 3, /* the server could not be reached */
};

typedef struct cli_rpc_s cli_rpc_t;

/* How the client proves who it is and checks the server: TLS when `tls_ca`
 * or `tls_cert` is set (the CA the server's certificate must chain to,
 * NULL: the system's roots; a client certificate and key for mTLS), and a
 * bearer token sent as "authorization: Bearer TOKEN" with every call. The
 * strings are borrowed and must outlive every cli_rpc_t. */
typedef struct cli_rpc_security_s {
  const char *tls_ca;
  const char *tls_cert;
  const char *tls_key;
  const char *token; /* printable ASCII; never printed */
} cli_rpc_security_t;

/* Sets the security of every later cli_rpc_new (NULL: plaintext, no
 * token). The program sets it once, from its options. */
void cli_rpc_set_security(const cli_rpc_security_t *sec);

/* Creates a loop, the runtime and a channel to `target` ("host:port" or
 * "unix:/path") with the security set above. `*out` is owned by the
 * caller; release with cli_rpc_free. Returns 0 or a negative UV_E* code;
 * cli_rpc_why() then says why when it is about the TLS files. */
int cli_rpc_new(const char *target, cli_rpc_t **out);

/* Why the last cli_rpc_new failed, when it knows more than its code ("" if
 * not). */
const char *cli_rpc_why(void);

/* Releases the channel and the runtime and closes the loop. No call may be
 * in flight. Handles the caller added to the loop must be closed first.
 * NULL is a no-op. */
void cli_rpc_free(cli_rpc_t *r);

/* The loop the calls run on, for the caller's own handles. */
uv_loop_t *cli_rpc_loop(cli_rpc_t *r);

/* Makes a unary call with a deadline of `timeout_ms` (0: none) and waits
 * for it. On GRPC_STATUS_OK, `*resp` receives the response, owned by the
 * caller (free with protobuf_c_message_free_unpacked(*resp, NULL)).
 * Returns the call's status; its message is kept for cli_rpc_message. A
 * call that cannot start returns GRPC_STATUS_INTERNAL. */
grpc_status_code cli_rpc_unary(cli_rpc_t *r, const rt_method_t *method,
                               const ProtobufCMessage *req, int64_t timeout_ms,
                               ProtobufCMessage **resp);

/* Called for each message of a stream. `msg` lives until it returns. */
typedef void (*cli_rpc_msg_cb)(const ProtobufCMessage *msg, void *data);

/* Makes a server-streaming call and waits for its end, calling `on_msg`
 * for every message. Returns the status, as cli_rpc_unary. */
grpc_status_code cli_rpc_stream(cli_rpc_t *r, const rt_method_t *method,
                                const ProtobufCMessage *req, int64_t timeout_ms,
                                cli_rpc_msg_cb on_msg, void *data);

/* Cancels the call in flight, if any; it then ends with CANCELLED. Safe
 * to call from any callback running on the loop. */
void cli_rpc_cancel(cli_rpc_t *r);

/* The status message of the last call that ended ("" if none). Valid until
 * the next call. */
const char *cli_rpc_message(const cli_rpc_t *r);

/* Maps a failed call's status to an exit code: CLI_EXIT_UNREACHABLE when
 * the server itself could not be reached or did not answer in time (the
 * transport's UNAVAILABLE, or DEADLINE_EXCEEDED), else CLI_EXIT_FAILED.
 * An UNAVAILABLE that smaugd sends on purpose (a plugin is down) names the
 * plugin and counts as a failed operation. */
int cli_rpc_exit_code(grpc_status_code code, const char *message);

#endif /* SMAUG_CLI_RPC_H */
