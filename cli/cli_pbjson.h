/*
 * cli_pbjson.h - protobuf-c messages to JSON, for `smaug -o json`.
 *
 * The conversion walks the protobuf-c descriptors, so every response of
 * the Orchestrator API prints without per-message code. The mapping is
 * proto3 JSON with proto field names (snake_case), except that 64-bit
 * integers are JSON numbers rather than strings so that scripts can
 * compare them directly. Enums print as their value names
 * ("CHECKPOINT_STATUS_AVAILABLE"), maps as objects, bytes as base64, unset
 * message fields as null, and scalars always, even at their default.
 */
#ifndef SMAUG_CLI_PBJSON_H
#define SMAUG_CLI_PBJSON_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

/* Returns a new JSON object for `msg` (a new reference owned by the
 * caller), or NULL if memory ran out. `msg` is only read. */
json_t *cli_pbjson_from_message(const ProtobufCMessage *msg);

/* Returns the short, lower-case name of an enum value: the value name with
 * the enum's common prefix removed, '_' turned into '-', e.g.
 * CHECKPOINT_STATUS_ERROR_DELETING -> "error-deleting". Writes at most
 * `len` bytes (NUL included) to `buf` and returns `buf`. Unknown values
 * print as their number. */
const char *cli_pbjson_enum_short(const ProtobufCEnumDescriptor *ed, int value,
                                  char *buf, size_t len);

#endif /* SMAUG_CLI_PBJSON_H */
