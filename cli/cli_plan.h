/*
 * cli_plan.h - plan files: the JSON a user writes for `smaug plan create`.
 *
 *   { "name": "web",
 *     "resources": [{"type": "smaug.project", "id": "proj-1",
 *                    "name": "Project 1", "extra": {}}],
 *     "edges": [{"parent": "smaug.server#srv-1",
 *                "child": "smaug.volume#vol-1"}],
 *     "parameters": {"smaug.volume": {"compress": "true"}} }
 *
 * The file is parsed with jansson. A malformed file is reported with its
 * line and column; a well-formed one that does not fit the format is
 * reported with the JSON path of the offending value, and an unknown key is
 * an error that names the key. The same module builds the parameter sets of
 * `smaug restore -p`, and prints a plan back in the file format so that
 * `plan show -o json` output can be fed to `plan create -f`.
 *
 * Messages built here are allocated with malloc throughout, so one
 * protobuf_c_message_free_unpacked(msg, NULL) releases them.
 */
#ifndef SMAUG_CLI_PLAN_H
#define SMAUG_CLI_PLAN_H

#include <jansson.h>
#include <stddef.h>

#include "smaug/v1/orchestrator.pb-c.h"

/* Parses a plan file held in `text` (`len` bytes). `source` names it in
 * error messages ("plan.json"). On success `*out` is a new plan owned by
 * the caller (free with protobuf_c_message_free_unpacked). On failure
 * returns UV_EINVAL with a message in err[0..errlen) such as
 * "plan.json:3:14: ..." or "plan.json: resources[0]: unknown key \"idd\"",
 * or UV_ENOMEM; `*out` is untouched. */
int cli_plan_parse(const char *text, size_t len, const char *source,
                   Smaug__V1__Plan **out, char *err, size_t errlen);

/* Reads and parses the plan file `path` ("-" is standard input). Errors as
 * cli_plan_parse, plus the negated errno of a failed read (message in
 * `err`). */
int cli_plan_load(const char *path, Smaug__V1__Plan **out, char *err,
                  size_t errlen);

/* Converts the "parameters" object of a plan file (`json`, only read) into
 * `*out`, a new ParameterSet owned by the caller. `where` prefixes error
 * messages. Returns 0, UV_EINVAL (message in err) or UV_ENOMEM. */
int cli_plan_parse_parameters(const json_t *json, const char *where,
                              Smaug__V1__ParameterSet **out, char *err,
                              size_t errlen);

/* Sets parameter `key` = `value` in the entry `target` (a type or
 * "type#id") of `ps`, adding the entry if needed and replacing an existing
 * value. Strings are copied. Returns 0 or UV_ENOMEM (`ps` unchanged). */
int cli_plan_set_parameter(Smaug__V1__ParameterSet *ps, const char *target,
                           const char *key, const char *value);

/* Returns the plan in plan-file form, plus "id", "created_at_ms" and
 * "updated_at_ms" (which cli_plan_parse accepts and ignores). New
 * reference, or NULL if memory ran out. */
json_t *cli_plan_to_json(const Smaug__V1__Plan *plan);

/* Returns the ParameterSet as the plan file's "parameters" object. */
json_t *cli_plan_parameters_to_json(const Smaug__V1__ParameterSet *ps);

/* Splits "type#id" into its parts, copied to malloc'd strings. Returns 0,
 * UV_EINVAL when the '#' or either side is missing, or UV_ENOMEM. */
int cli_plan_split_ref(const char *ref, char **type, char **id);

#endif /* SMAUG_CLI_PLAN_H */
