/*
 * auth.h - who may call smaugd's API: bearer tokens, roles and the
 * permission table.
 *
 * This header is the contract of authentication and authorisation. With
 * `--auth-tokens FILE` every call of smaug.v1.Orchestrator must carry
 * `authorization: Bearer <token>`; the token is looked up in FILE, which
 * gives it a name, a role and a tenant, and the method's least role (the
 * table below) decides. The check runs in one place, before any handler:
 * auth_register_service() wraps a service's dispatch, so no handler runs
 * for a call that was refused.
 *
 * Tokens. `smaugd token add` draws 32 bytes with OpenSSL's RAND_bytes and
 * prints them once as "smaug_" followed by 43 base64url characters (no
 * padding); the prefix lets secret scanners and people recognise one. The
 * file keeps only the token's SHA-256. A plain hash is enough here: slow
 * or salted schemes (PBKDF2, bcrypt, argon2) protect low-entropy passwords
 * against guessing, but a 256-bit random token cannot be guessed, so its
 * hash is as hard to invert as the token is to find, and no two tokens
 * share a hash for a salt to hide. An HMAC with a server key would only
 * help if the key were kept apart from the file, which smaugd does not
 * do. A presented token is hashed and compared with every entry with
 * CRYPTO_memcmp, so the time taken does not depend on how much of a hash
 * matched; the cost is linear in the tokens (about 3 us a call with 100
 * tokens, 45 us with 1,000, on a 2-core test machine).
 *
 * The token file: UTF-8 text, one token a line, fields separated by
 * spaces or tabs:
 *
 *     # comment (and blank lines) are ignored
 *     NAME ROLE TENANT sha256:<64 lowercase hex digits>
 *     NAME ROLE TENANT cert:<identity>
 *
 * NAME and TENANT match VALID_ID_PATTERN of api_valid.h (AUTH_ID_PATTERN
 * below), ROLE is admin, operator or viewer, names are unique and so are
 * hashes. A `cert:` line gives the role and tenant to a client
 * certificate instead of a token: a caller that sends no authorization
 * header and whose certificate was verified by smaugd's --tls-client-ca
 * (mTLS) is that line when the certificate's common name or one of its
 * subject alternative names equals <identity> (visible ASCII, up to
 * AUTH_MAX_CERT_BYTES; identities are unique). A bearer token, when one
 * is sent, decides alone. The file is a secret like a key:
 * it must be a regular file that neither the group nor others may read or
 * write (0600 or stricter), or it is refused with a message that says so.
 * `smaugd token` rewrites it atomically (temporary file, fsync, rename,
 * fsync of the directory) under an flock of the file; smaugd re-reads it
 * on SIGHUP, and a file that does not load keeps the previous tokens.
 *
 * Health and reflection are open: load balancers and probes check health
 * without a credential, and reflection only describes the schema, which
 * is public (proto/). Both run outside the Orchestrator service, so a
 * token neither helps nor hurts them; their entries below say so.
 *
 * Thread: the loop thread, except the pure functions (roles, table,
 * tokens), which keep no state and may run on any thread.
 */
#ifndef SMAUG_AUTH_H
#define SMAUG_AUTH_H

#include <grpc/grpc.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "rt.h"

/* ------------------------------------------------------------- roles */

/* X(NAME, name, what it may do). In increasing order of power: each role
 * may do what the ones before it may. */
#define AUTH_ROLE_MAP(X)                                                       \
  X(VIEWER, "viewer", "read-only in its own tenant")                           \
  X(OPERATOR, "operator",                                                      \
    "plans, protect, restore, delete and cancel in its own tenant")            \
  X(ADMIN, "admin", "plugins, every tenant, audit")

typedef enum {
  AUTH_ROLE_OPEN = 0, /* a method anyone may call, without a token */
#define AUTH_ROLE_GEN(NAME, name, what) AUTH_ROLE_##NAME,
  AUTH_ROLE_MAP(AUTH_ROLE_GEN)
#undef AUTH_ROLE_GEN
} auth_role_t;

/* "viewer", "operator", "admin"; "open" for AUTH_ROLE_OPEN and "?" for a
 * value outside the enum. Static string. */
const char *auth_role_name(auth_role_t role);

/* Parses a role name (exact, lower case; "open" is not a role a token can
 * have). Returns 0, or UV_EINVAL and leaves *out alone. */
int auth_role_parse(const char *s, auth_role_t *out);

/* --------------------------------------------------- permission table */

/* X(method path, least role, kind). Every method smaugd serves has a line;
 * a service whose methods are not all here is refused by
 * auth_register_service, so a new RPC cannot be served unguarded. The
 * kind is WRITE for a method that changes something (it is audited, see
 * auth_guard_service) and READ for one that does not. */
#define AUTH_PERMISSION_MAP(X)                                                 \
  X("/smaug.v1.Orchestrator/RegisterPlugin", ADMIN, WRITE)                     \
  X("/smaug.v1.Orchestrator/ListPlugins", VIEWER, READ)                        \
  X("/smaug.v1.Orchestrator/UnregisterPlugin", ADMIN, WRITE)                   \
  X("/smaug.v1.Orchestrator/CreatePlan", OPERATOR, WRITE)                      \
  X("/smaug.v1.Orchestrator/GetPlan", VIEWER, READ)                            \
  X("/smaug.v1.Orchestrator/ListPlans", VIEWER, READ)                          \
  X("/smaug.v1.Orchestrator/UpdatePlan", OPERATOR, WRITE)                      \
  X("/smaug.v1.Orchestrator/DeletePlan", OPERATOR, WRITE)                      \
  X("/smaug.v1.Orchestrator/Protect", OPERATOR, WRITE)                         \
  X("/smaug.v1.Orchestrator/GetCheckpoint", VIEWER, READ)                      \
  X("/smaug.v1.Orchestrator/ListResourceResults", VIEWER, READ)                \
  X("/smaug.v1.Orchestrator/ListCheckpoints", VIEWER, READ)                    \
  X("/smaug.v1.Orchestrator/DeleteCheckpoint", OPERATOR, WRITE)                \
  X("/smaug.v1.Orchestrator/Restore", OPERATOR, WRITE)                         \
  X("/smaug.v1.Orchestrator/GetRestore", VIEWER, READ)                         \
  X("/smaug.v1.Orchestrator/ListRestores", VIEWER, READ)                       \
  X("/smaug.v1.Orchestrator/WatchOperation", VIEWER, READ)                     \
  X("/smaug.v1.Orchestrator/CancelOperation", OPERATOR, WRITE)                 \
  X("/smaug.v1.Orchestrator/GetFlow", VIEWER, READ)                            \
  X("/smaug.v1.Orchestrator/ListAuditEvents", ADMIN, READ)                     \
  X("/grpc.health.v1.Health/Check", OPEN, READ)                                \
  X("/grpc.health.v1.Health/Watch", OPEN, READ)                                \
  X("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", OPEN, READ)   \
  X("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", OPEN,    \
    READ)

/* The least role that may call `path` ("/pkg.Service/Method"). Returns 0,
 * or UV_ENOENT when the table has no line for it (*out untouched). */
int auth_method_role(const char *path, auth_role_t *out);

/* 1 when `path` is a WRITE method of the table, else 0 (READ, or not in
 * the table). Pure. */
int auth_method_writes(const char *path);

/* ------------------------------------------------------------- tokens */

#define AUTH_TOKEN_PREFIX    "smaug_"
#define AUTH_TOKEN_BYTES     32 /* random bytes in a token */
#define AUTH_TOKEN_LEN       (sizeof(AUTH_TOKEN_PREFIX) - 1 + 43)
#define AUTH_HASH_BYTES      32 /* SHA-256 */
#define AUTH_HASH_PREFIX     "sha256:"
#define AUTH_MAX_ID_BYTES    128 /* name, tenant: VALID_MAX_ID_BYTES */
#define AUTH_ID_PATTERN      "[A-Za-z0-9][A-Za-z0-9._-]{0,127}" /* the same */
#define AUTH_MAX_TOKEN_BYTES 1024 /* longer bearer values are refused */
#define AUTH_MAX_CERT_BYTES  255  /* a cert: identity */
#define AUTH_CERT_PREFIX     "cert:"
#define AUTH_MAX_FILE_BYTES  (4 << 20)

/* Makes a new token: AUTH_TOKEN_BYTES from RAND_bytes, written to `out`
 * (AUTH_TOKEN_LEN characters and a NUL; `out_len` must be larger than
 * AUTH_TOKEN_LEN), and its hash. Returns 0, UV_EINVAL for a short
 * buffer, or UV_EIO when OpenSSL has no randomness. */
int auth_token_new(char *out, size_t out_len, uint8_t hash[AUTH_HASH_BYTES]);

/* SHA-256 of the `len` bytes at `token` (any bytes). */
void auth_token_hash(const void *token, size_t len,
                     uint8_t hash[AUTH_HASH_BYTES]);

/* One line of the token file. */
typedef struct auth_token_s {
  char name[AUTH_MAX_ID_BYTES + 1];
  char tenant[AUTH_MAX_ID_BYTES + 1];
  auth_role_t role;
  uint8_t hash[AUTH_HASH_BYTES];      /* a token's; zero for a cert: line */
  char cert[AUTH_MAX_CERT_BYTES + 1]; /* a cert: identity; "" for a token */
  unsigned line;                      /* 1-based line in the file */
} auth_token_t;

typedef struct auth_table_s {
  auth_token_t *tokens; /* in file order */
  size_t n;
  uint8_t (*hashes)[AUTH_HASH_BYTES]; /* tokens[i].hash, packed for lookup */
} auth_table_t;

/* Parses the text of a token file (`len` bytes, need not end in NUL).
 * On success `*out` is a new table owned by the caller (auth_table_free);
 * an empty file gives an empty table. On failure returns UV_EINVAL and
 * writes to `why` (always NUL-terminated) the line number and what is
 * wrong with it (never a hash), and *out is untouched. UV_ENOMEM too. */
int auth_table_parse(const char *text, size_t len, auth_table_t **out,
                     char *why, size_t why_len);

/* Reads and parses `path`. Refuses, with the reason in `why`: a missing
 * file (UV_ENOENT), one that is not a regular file (UV_EINVAL), one that
 * the group or others may read or write (UV_EPERM: "FILE is readable or
 * writable by group or others (mode 0644); a token file must be 0600 or
 * stricter: chmod 600 FILE"), one over
 * AUTH_MAX_FILE_BYTES (UV_E2BIG) and one that does not parse. `*text_out`
 * (may be NULL) receives the file's text, NUL-terminated, owned by the
 * caller (free()); `*len_out` (may be NULL) its length. Outputs are
 * written only on success. */
int auth_table_load(const char *path, auth_table_t **out, char **text_out,
                    size_t *len_out, char *why, size_t why_len);

/* The entry named `name`, or NULL. The pointer lives as long as `t`. */
const auth_token_t *auth_table_by_name(const auth_table_t *t, const char *name);

/* The entry whose hash is `hash`, comparing with every entry in constant
 * time; NULL when none. */
const auth_token_t *auth_table_by_hash(const auth_table_t *t,
                                       const uint8_t hash[AUTH_HASH_BYTES]);

/* The first cert: entry whose identity equals one of the `n` strings in
 * `ids` (a certificate's common name and names), or NULL. */
const auth_token_t *auth_table_by_cert(const auth_table_t *t,
                                       const char *const *ids, size_t n);

/* NULL is a no-op. */
void auth_table_free(auth_table_t *t);

/* Writes "sha256:<64 hex>" and a NUL to `out` (at least 72 bytes). */
void auth_hash_format(const uint8_t hash[AUTH_HASH_BYTES], char *out,
                      size_t out_len);

/* ------------------------------------------------ checking one request */

/* Who made a call. A self-contained copy: it stays valid after a reload. */
typedef struct auth_ctx_s {
  char name[AUTH_MAX_ID_BYTES + 1];   /* the token's name */
  char tenant[AUTH_MAX_ID_BYTES + 1]; /* the token's tenant */
  auth_role_t role;
} auth_ctx_t;

/* Decides a call of `path` against `t` given how many authorization
 * headers it carries (`n`) and the first one's value (`value`, `len`
 * bytes, any bytes, need not end in NUL; read only when n is 1), and
 * the identities of its verified client certificate (`ids`, `n_ids`;
 * none without mTLS), which count only when there is no header.
 * Returns:
 *  - GRPC_STATUS_OK, and fills `*ctx` when a token was given and found,
 *    or with no header a certificate identity matched a cert: line, or
 *    zeroes it for an open method;
 *  - GRPC_STATUS_UNAUTHENTICATED with neither, with more than one header,
 *    with a value that is not "Bearer <token>" (RFC 6750: the scheme
 *    in any case, spaces, then one token of printable ASCII without
 *    spaces, up to AUTH_MAX_TOKEN_BYTES), or with a token not in `t`;
 *  - GRPC_STATUS_PERMISSION_DENIED when the token's role is below the
 *    method's, or the method is not in the table (fail closed).
 * `msg` (always NUL-terminated) says why for the client; it never holds
 * any part of the header value. Pure: any thread. */
grpc_status_code auth_decide(const auth_table_t *t, const char *path, size_t n,
                             const char *value, size_t len,
                             const char *const *ids, size_t n_ids,
                             auth_ctx_t *ctx, char *msg, size_t msg_len);

/* ------------------------------------------------------------ the daemon */

typedef struct auth_s auth_t;

/* Loads the token file at `path` (auth_table_load) and starts watching
 * SIGHUP on `loop`, which re-reads it (auth_reload). On failure returns
 * the error with the reason in `why` and `*out` is untouched. `*out` is
 * owned by the caller: auth_close() once the loop is stopping, then
 * auth_free() after the loop has run the close. */
int auth_new(uv_loop_t *loop, const char *path, auth_t **out, char *why,
             size_t why_len);

/* Re-reads the token file. On success the new tokens apply to every call
 * that starts from now on, and it logs how many there are. On failure
 * the previous tokens stay and the reason is logged and returned in
 * `why`. */
int auth_reload(auth_t *a, char *why, size_t why_len);

/* Registers `svc` on `srv` (rt_server_add_service) with every call
 * decided by auth_decide before `svc`'s dispatch runs; a refused call is
 * answered with the status and message and never reaches a handler.
 * `a` NULL registers `svc` unguarded (no --auth-tokens). Either way every
 * method of `svc` must be in AUTH_PERMISSION_MAP, or UV_EINVAL (logged,
 * naming the method). `impl` and `data` are handed to `svc`'s dispatch
 * unchanged and must outlive the server; so must `a`. */
int auth_register_service(auth_t *a, rt_server_t *srv, const rt_service_t *svc,
                          const void *impl, void *data);

/* ------------------------------------------------------------ the audit */

/* One call of a WRITE method, as it ended: answered by its handler, or
 * refused by the check before any handler ran (the sink runs as it ends,
 * so the sink's clock is the call's end). Every string lives until the
 * sink returns, and none is NULL. */
typedef struct auth_audit_rec_s {
  const char *who;       /* the token's (or cert: line's) name; with no
                            credential accepted "unauthenticated"; without
                            --auth-tokens the client certificate's subject
                            when mTLS verified one, else "anonymous" */
  const char *role;      /* "admin", "operator", "viewer"; "" when unknown */
  const char *tenant;    /* "" when unknown */
  const char *method;    /* the method's name: "Restore" */
  const char *objects;   /* auth_audit_objects() of the request and of the
                            response, if any */
  grpc_status_code code; /* what the client was sent */
  const char *message;   /* its status message; "" on success */
  const char *peer;      /* the connection, and " cert=<subject>" when the
                            client presented a verified certificate */
} auth_audit_rec_t;

/* Receives each audited call on the loop thread, from inside the
 * rt_call_finish that ends it (rt_call_on_finish), or from inside the
 * dispatch that refused it. */
typedef void (*auth_audit_fn)(const auth_audit_rec_t *rec, void *data);

/* Writes to `out` (`len` bytes, always NUL-terminated, cut at a field
 * when full) after what it holds already, the objects a message names,
 * as space-separated "field=value": its non-empty singular string fields
 * called id, name, address or identity or ending in _id, its true bool
 * fields (replace=true, force=true), and the same in its singular message
 * fields one level down ("plan.id=pln-1"). Values are cut at 128 bytes
 * (on a UTF-8 boundary), control characters, quotes and backslashes
 * become '?', and a value holding a space is in single quotes
 * (identity='unix:/run/p.sock uid=0'). A "field=value"
 * already in `out` is not repeated. Pure: any thread. */
void auth_audit_objects(const ProtobufCMessage *m, char *out, size_t len);

typedef struct auth_guard_s auth_guard_t;

/* Like auth_register_service, and every call of a WRITE method of `svc`
 * is also told to `audit` (may be NULL: none) with `audit_data`: a call
 * the check refused at once, and an accepted one when it ends, with its
 * status. `a` NULL means no authentication: every call is accepted and
 * audited with who "anonymous" (or the client certificate's subject).
 * `*out` is owned by the caller, released with auth_guard_free() once
 * no call can reach it any more: after the server's shutdown callback
 * ran (or when it never started), like the service's `data`; `a`,
 * `impl`, `data` and `audit_data` live as long. Returns 0, UV_EINVAL (a method
 * not in the table, logged), UV_ENOMEM, or rt_server_add_service's error. */
int auth_guard_service(auth_t *a, rt_server_t *srv, const rt_service_t *svc,
                       const void *impl, void *data, auth_audit_fn audit,
                       void *audit_data, auth_guard_t **out);

/* NULL is a no-op. */
void auth_guard_free(auth_guard_t *g);

/* Who made the call whose handler is running now, for the tenant and
 * audit checks: valid only until that handler returns (copy it to keep
 * it). NULL when `a` is NULL or outside a guarded dispatch. */
const auth_ctx_t *auth_current(const auth_t *a);

/* Stops watching SIGHUP. Idempotent; NULL is a no-op. */
void auth_close(auth_t *a);

/* Frees `a` after auth_close() once the loop has run the close callback.
 * NULL is a no-op. */
void auth_free(auth_t *a);

#endif /* SMAUG_AUTH_H */
