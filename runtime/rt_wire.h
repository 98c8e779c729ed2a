/*
 * rt_wire.h - the string check that the runtime applies to every message
 * it decodes, before any handler or callback sees it.
 *
 * protobuf-c cuts a string at an embedded NUL (it hands out C strings)
 * and does not check UTF-8. rt_wire_check walks the serialized bytes with
 * the message's descriptor, into sub-messages, repeated fields and map
 * entries, and refuses a `string` field that holds a NUL byte or is not
 * well-formed UTF-8 (no overlong forms, no surrogates, nothing above
 * U+10FFFF). Fields the descriptor does not know and `bytes` fields are
 * not looked at. Pure functions of their arguments, safe on any thread
 * and on any input (a fuzz target).
 */
#ifndef SMAUG_RT_WIRE_H
#define SMAUG_RT_WIRE_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Sub-messages nested deeper than this are refused as malformed. */
#define RT_WIRE_MAX_DEPTH 100

/* Checks that `s[0..n)` is well-formed UTF-8 without NUL. Returns 0, or
 * UV_EILSEQ with `*bad_at` (may be NULL) set to the offset of the first
 * byte of the offending sequence and `*is_nul` (may be NULL) to 1 when it
 * is a NUL byte. `s` may be NULL when `n` is 0. */
int rt_utf8_check(const uint8_t *s, size_t n, size_t *bad_at, int *is_nul);

/* Makes the NUL-terminated `s` valid UTF-8 in place: each byte that starts
 * an ill-formed sequence becomes '?'. For text built with a bounded
 * snprintf, which may cut a character in two, or holding a peer's status
 * message, before it is stored or sent. NULL is a no-op. */
void rt_utf8_repair(char *s);

/* Walks `data[0..len)`, a serialized message of type `desc`. Returns 0 when
 * every string field is clean; UV_EILSEQ for a bad string, with `why`
 * set to "<path>: embedded NUL at byte N" or "<path>: invalid UTF-8 at
 * byte N", where <path> names the field from the top message down
 * ("plan.resources[2].id", "result.metadata[0].value"; map entries are
 * indexed like repeated fields); UV_EINVAL when the bytes are not a
 * well-formed message, with `why` set to "malformed <type>". `why` (may
 * be NULL when `why_len` is 0) is always NUL-terminated and truncated to
 * `why_len`. */
int rt_wire_check(const ProtobufCMessageDescriptor *desc, const uint8_t *data,
                  size_t len, char *why, size_t why_len);

#ifdef __cplusplus
}
#endif
#endif /* SMAUG_RT_WIRE_H */
