/*
 * reg_schema.h - the JSON Schema subset that plugins use to describe their
 * parameters, checked with jansson.
 *
 * Supported keywords: type (object, string, integer, number, boolean,
 * array, null, or an array of those), properties, required, enum, minimum,
 * maximum, exclusiveMinimum, exclusiveMaximum, minLength, maxLength (in
 * code points), additionalProperties (false or a schema). Unknown keywords
 * are ignored, as JSON Schema asks.
 *
 * Parameters are string maps, so a value is first converted to the type
 * its property declares ("42" for an integer, "true" for a boolean, JSON
 * text for an object or array), then validated.
 *
 * Thread: any; a schema is immutable after parsing.
 */
#ifndef SMAUG_REG_SCHEMA_H
#define SMAUG_REG_SCHEMA_H

#include <stddef.h>

typedef struct reg_schema_s reg_schema_t;

/* Parses schema text. Empty or NULL text yields a NULL schema, which
 * accepts everything. UV_EINVAL (with a message in err) for text that is
 * not a JSON object. `*out` is released with reg_schema_free(). */
int reg_schema_parse(const char *text, reg_schema_t **out, char *err,
                     size_t errlen);

/* NULL is a no-op. */
void reg_schema_free(reg_schema_t *s);

/* Validates the string map (keys[i] -> vals[i]) against `s` (NULL accepts
 * all). `required` is checked only when `check_required` is non-zero (a
 * per-type entry may leave it to the per-resource one). Returns 0, or
 * UV_EINVAL with "<prefix>.<key>: <reason>" in err. */
int reg_schema_check(const reg_schema_t *s, const char *prefix,
                     const char *const *keys, const char *const *vals, size_t n,
                     int check_required, char *err, size_t errlen);

#endif /* SMAUG_REG_SCHEMA_H */
