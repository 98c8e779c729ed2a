/*
 * test_schema.c - Criterion suite for the JSON Schema subset that checks
 * plugin parameters (server/registry/reg_schema).
 */
#include <criterion/criterion.h>
#include <string.h>
#include <uv.h>

#include "reg_schema.h"

static const char *SCHEMA =
    "{\"type\":\"object\",\"additionalProperties\":false,"
    "\"required\":[\"mode\"],\"properties\":{"
    "\"mode\":{\"type\":\"string\",\"enum\":[\"full\",\"incr\"]},"
    "\"level\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":9},"
    "\"ratio\":{\"type\":\"number\",\"exclusiveMaximum\":1},"
    "\"label\":{\"type\":\"string\",\"minLength\":2,\"maxLength\":4},"
    "\"verify\":{\"type\":\"boolean\"}}}";

static reg_schema_t *s;
static char err[256];

static void setup(void) {
  cr_assert_eq(reg_schema_parse(SCHEMA, &s, err, sizeof(err)), 0, "%s", err);
}

static void teardown(void) {
  reg_schema_free(s);
}

TestSuite(schema, .init = setup, .fini = teardown, .timeout = 10);

static int check1(const char *k, const char *v, int required) {
  const char *keys[2] = {"mode", k}, *vals[2] = {"full", v};
  err[0] = '\0';
  return reg_schema_check(s, "p", keys, vals, k ? 2 : 1, required, err,
                          sizeof(err));
}

Test(schema, accepts_valid_values) {
  cr_expect_eq(check1("level", "5", 1), 0, "%s", err);
  cr_expect_eq(check1("ratio", "0.5", 1), 0, "%s", err);
  cr_expect_eq(check1("label", "\xc3\xa9t\xc3\xa9", 1), 0, "%s", err);
  cr_expect_eq(check1("verify", "true", 1), 0, "%s", err);
}

Test(schema, integer_conversion_and_bounds) {
  cr_expect_eq(check1("level", "five", 1), UV_EINVAL);
  cr_expect(strstr(err, "p.level") && strstr(err, "integer"), "%s", err);
  cr_expect_eq(check1("level", "10", 1), UV_EINVAL);
  cr_expect(strstr(err, "at most 9") != NULL, "%s", err);
  cr_expect_eq(check1("level", "0", 1), UV_EINVAL);
}

Test(schema, exclusive_maximum) {
  cr_expect_eq(check1("ratio", "1", 1), UV_EINVAL);
  cr_expect(strstr(err, "p.ratio") != NULL, "%s", err);
}

Test(schema, string_length_counts_code_points) {
  cr_expect_eq(check1("label", "a", 1), UV_EINVAL);
  cr_expect_eq(check1("label", "abcde", 1), UV_EINVAL);
  cr_expect(strstr(err, "at most 4") != NULL, "%s", err);
}

Test(schema, enum_and_boolean) {
  const char *keys[1] = {"mode"}, *vals[1] = {"other"};
  cr_expect_eq(reg_schema_check(s, "p", keys, vals, 1, 1, err, sizeof(err)),
               UV_EINVAL);
  cr_expect(strstr(err, "p.mode") != NULL, "%s", err);
  cr_expect_eq(check1("verify", "yes", 1), UV_EINVAL);
}

Test(schema, additional_properties_false) {
  cr_expect_eq(check1("colour", "red", 1), UV_EINVAL);
  cr_expect(strstr(err, "p.colour") && strstr(err, "not an allowed"), "%s",
            err);
}

Test(schema, required_only_when_asked) {
  const char *keys[1] = {"level"}, *vals[1] = {"3"};
  cr_expect_eq(reg_schema_check(s, "p", keys, vals, 1, 0, err, sizeof(err)), 0);
  cr_expect_eq(reg_schema_check(s, "p", keys, vals, 1, 1, err, sizeof(err)),
               UV_EINVAL);
  cr_expect(strstr(err, "p.mode") && strstr(err, "required"), "%s", err);
}

Test(schema, empty_schema_accepts_all_and_bad_text_refused) {
  reg_schema_t *none = (void *)1;
  cr_assert_eq(reg_schema_parse("", &none, err, sizeof(err)), 0);
  cr_assert_null(none);
  const char *keys[1] = {"x"}, *vals[1] = {"y"};
  cr_expect_eq(reg_schema_check(NULL, "p", keys, vals, 1, 1, err, sizeof(err)),
               0);
  reg_schema_t *bad = NULL;
  cr_expect_eq(reg_schema_parse("[1,2]", &bad, err, sizeof(err)), UV_EINVAL);
  cr_expect_eq(reg_schema_parse("{", &bad, err, sizeof(err)), UV_EINVAL);
  cr_expect_null(bad);
}
