/*
 * test_plan.c - plan files (cli_plan): parsing, error positions, unknown
 * keys, parameters and printing back.
 */
#include <criterion/criterion.h>
#include <string.h>
#include <uv.h>

#include "cli_plan.h"

static const char *good =
    "{ \"name\": \"web\",\n"
    "  \"resources\": [{\"type\": \"smaug.project\", \"id\": \"proj-1\",\n"
    "                  \"name\": \"Project 1\", \"extra\": {\"k\": \"v\"}}],\n"
    "  \"edges\": [{\"parent\": \"smaug.server#srv-1\",\n"
    "             \"child\": \"smaug.volume#vol-1\"}],\n"
    "  \"parameters\": {\"smaug.volume\": {\"compress\": \"true\"},\n"
    "                 \"smaug.volume#vol-1\": {\"compress\": \"false\"}} }\n";

static int parse(const char *text, Smaug__V1__Plan **p, char *err) {
  return cli_plan_parse(text, strlen(text), "plan.json", p, err, 256);
}

Test(plan, parses_the_documented_example, .timeout = 5) {
  Smaug__V1__Plan *p;
  char err[256];
  cr_assert_eq(parse(good, &p, err), 0, "%s", err);
  cr_assert_str_eq(p->name, "web");
  cr_assert_eq(p->n_resources, 1);
  cr_assert_str_eq(p->resources[0]->type, "smaug.project");
  cr_assert_str_eq(p->resources[0]->id, "proj-1");
  cr_assert_str_eq(p->resources[0]->name, "Project 1");
  cr_assert_eq(p->resources[0]->n_extra, 1);
  cr_assert_str_eq(p->resources[0]->extra[0]->value, "v");
  cr_assert_eq(p->n_edges, 1);
  cr_assert_str_eq(p->edges[0]->parent_type, "smaug.server");
  cr_assert_str_eq(p->edges[0]->parent_id, "srv-1");
  cr_assert_str_eq(p->edges[0]->child_type, "smaug.volume");
  cr_assert_str_eq(p->edges[0]->child_id, "vol-1");
  cr_assert_eq(p->parameters->n_entries, 2);
  cr_assert_str_eq(p->parameters->entries[1]->key, "smaug.volume#vol-1");
  cr_assert_str_eq(p->parameters->entries[1]->value->values[0]->value, "false");
  protobuf_c_message_free_unpacked(&p->base, NULL);
}

Test(plan, malformed_json_reports_line_and_column, .timeout = 5) {
  Smaug__V1__Plan *p = NULL;
  char err[256];
  /* The missing comma is on line 3, where "resources" starts. */
  const char *bad = "{\n  \"name\": \"web\"\n  \"resources\": []\n}\n";
  cr_assert_eq(parse(bad, &p, err), UV_EINVAL);
  cr_assert_null(p);
  cr_assert(strncmp(err, "plan.json:3:", 12) == 0, "got: %s", err);
}

Test(plan, unknown_top_level_key_is_named, .timeout = 5) {
  Smaug__V1__Plan *p;
  char err[256];
  cr_assert_eq(parse("{\"name\":\"x\",\"resource\":[]}", &p, err), UV_EINVAL);
  cr_assert_str_eq(err, "plan.json: plan: unknown key \"resource\"");
}

Test(plan, unknown_resource_key_is_named_with_its_path, .timeout = 5) {
  Smaug__V1__Plan *p;
  char err[256];
  const char *t =
      "{\"name\":\"x\",\"resources\":[{\"type\":\"a\",\"id\":\"1\"},"
      "{\"type\":\"a\",\"id\":\"2\",\"idd\":\"3\"}]}";
  cr_assert_eq(parse(t, &p, err), UV_EINVAL);
  cr_assert_str_eq(err, "plan.json: resources[1]: unknown key \"idd\"");
}

Test(plan, edge_without_hash_is_rejected, .timeout = 5) {
  Smaug__V1__Plan *p;
  char err[256];
  const char *t =
      "{\"name\":\"x\",\"resources\":[{\"type\":\"a\",\"id\":\"1\"}],"
      "\"edges\":[{\"parent\":\"a\",\"child\":\"b#2\"}]}";
  cr_assert_eq(parse(t, &p, err), UV_EINVAL);
  cr_assert(strstr(err, "edges[0].parent: expected \"type#id\"") != NULL,
            "got: %s", err);
}

Test(plan, wrong_value_type_is_reported, .timeout = 5) {
  Smaug__V1__Plan *p;
  char err[256];
  const char *t = "{\"name\":\"x\",\"resources\":[{\"type\":\"a\",\"id\":7}]}";
  cr_assert_eq(parse(t, &p, err), UV_EINVAL);
  cr_assert_str_eq(err, "plan.json: resources[0].id: expected a string");
}

Test(plan, empty_resources_is_rejected, .timeout = 5) {
  Smaug__V1__Plan *p;
  char err[256];
  cr_assert_eq(parse("{\"name\":\"x\",\"resources\":[]}", &p, err), UV_EINVAL);
  cr_assert(strstr(err, "non-empty array") != NULL, "got: %s", err);
}

Test(plan, non_string_parameter_is_reported, .timeout = 5) {
  Smaug__V1__Plan *p;
  char err[256];
  const char *t =
      "{\"name\":\"x\",\"resources\":[{\"type\":\"a\",\"id\":\"1\"}],"
      "\"parameters\":{\"a\":{\"n\":1}}}";
  cr_assert_eq(parse(t, &p, err), UV_EINVAL);
  cr_assert(strstr(err, "parameters[\"a\"].n: expected a string") != NULL,
            "got: %s", err);
}

Test(plan, printed_plan_parses_back_the_same, .timeout = 5) {
  Smaug__V1__Plan *p, *q;
  char err[256];
  cr_assert_eq(parse(good, &p, err), 0);
  json_t *j = cli_plan_to_json(p);
  cr_assert_not_null(j);
  char *text = json_dumps(j, 0);
  cr_assert_eq(parse(text, &q, err), 0, "%s", err);
  size_t n1 = protobuf_c_message_get_packed_size(&p->base);
  size_t n2 = protobuf_c_message_get_packed_size(&q->base);
  cr_assert_eq(n1, n2);
  uint8_t b1[1024], b2[1024];
  cr_assert_lt(n1, sizeof(b1));
  protobuf_c_message_pack(&p->base, b1);
  protobuf_c_message_pack(&q->base, b2);
  cr_assert_eq(memcmp(b1, b2, n1), 0);
  free(text);
  json_decref(j);
  protobuf_c_message_free_unpacked(&p->base, NULL);
  protobuf_c_message_free_unpacked(&q->base, NULL);
}

Test(plan, set_parameter_adds_and_replaces, .timeout = 5) {
  Smaug__V1__ParameterSet *ps = malloc(sizeof(*ps));
  smaug__v1__parameter_set__init(ps);
  cr_assert_eq(cli_plan_set_parameter(ps, "smaug.volume", "a", "1"), 0);
  cr_assert_eq(cli_plan_set_parameter(ps, "smaug.volume", "b", "2"), 0);
  cr_assert_eq(cli_plan_set_parameter(ps, "smaug.volume", "a", "3"), 0);
  cr_assert_eq(cli_plan_set_parameter(ps, "smaug.server#s1", "a", "4"), 0);
  json_t *j = cli_plan_parameters_to_json(ps);
  char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
  cr_assert_str_eq(
      s, "{\"smaug.server#s1\":{\"a\":\"4\"},\"smaug.volume\":{\"a\":\"3\","
         "\"b\":\"2\"}}");
  free(s);
  json_decref(j);
  protobuf_c_message_free_unpacked(&ps->base, NULL);
}
