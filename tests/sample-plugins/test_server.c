/*
 * test_server.c - smaug-plugin-server driven directly: its dependents are
 * its volumes and image; restore re-creates the descriptor against the
 * children's restored ids; an unknown server is NOT_FOUND.
 */
#include "spt_fixture.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static spt_t *w;
static void setup(void) {
  w = spt_new("--volume-mib 1 --image-kib 16");
}
static void teardown(void) {
  spt_free(w);
}

TestSuite(server, .init = setup, .fini = teardown, .timeout = 120);

static const spt_res_t srv1 = {"smaug.server", "p1-srv-1"};

Test(server, dependents_are_its_volumes_and_image) {
  spt_res_t deps[16];
  size_t n = 0;
  cr_assert_eq(spt_list(w, srv1, deps, 16, &n), GRPC_STATUS_OK);
  /* cloud-gen: p1-srv-1 has p1-vol-1, p1-vol-4 and the shared p1-vol-1 is
   * also on p1-srv-2; its image is p1-img-1. */
  char path[512];
  spt_path(w, "servers", "p1-srv-1", ".json", path, sizeof(path));
  json_t *doc = json_load_file(path, 0, NULL);
  cr_assert(doc != NULL);
  size_t nv = json_array_size(json_object_get(doc, "volumes"));
  cr_assert_eq(n, nv + 1);
  for (size_t i = 0; i < nv; i++) {
    cr_assert_str_eq(deps[i].type, "smaug.volume");
    cr_assert_str_eq(deps[i].id, json_string_value(json_array_get(
                                     json_object_get(doc, "volumes"), i)));
  }
  cr_assert_str_eq(deps[nv].type, "smaug.image");
  cr_assert_str_eq(deps[nv].id,
                   json_string_value(json_object_get(doc, "image")));
  json_decref(doc);
}

Test(server, unknown_server_is_not_found_naming_the_path) {
  spt_res_t deps[4];
  size_t n = 0;
  cr_assert_eq(spt_list(w, (spt_res_t){"smaug.server", "nope"}, deps, 4, &n),
               GRPC_STATUS_NOT_FOUND);
  cr_assert(strstr(spt_list_message(w), "/projects/proj-1/servers/nope.json") !=
                NULL,
            "%s", spt_list_message(w));
}

Test(server, restore_points_at_the_restored_children) {
  spt_call_t c = {
      .kind = 1, .op_id = "aaaa0001-protect", .ckpt = "c1", .res = srv1};
  spt_result_t p, r;
  cr_assert_eq(spt_pair(w, &c, &p), GRPC_STATUS_OK, "%s", p.msg);
  cr_assert(spt_meta(&p, "sha256") != NULL);
  spt_child_t kids[] = {{"smaug.volume", "p1-vol-1", "p1-vol-1-rdeadbeef"},
                        {"smaug.volume", "p1-vol-4", "p1-vol-4-rdeadbeef"},
                        {"smaug.image", "p1-img-1", "p1-img-1-rdeadbeef"}};
  spt_call_t rc = {.kind = 2,
                   .activity = 2,
                   .op_id = "deadbeef-restore",
                   .ckpt = "c1",
                   .res = srv1,
                   .saved = &p,
                   .children = kids,
                   .n_children = 3};
  cr_assert_eq(spt_call(w, &rc, &r), GRPC_STATUS_OK, "%s", r.msg);
  cr_assert_str_eq(r.restored_id, "p1-srv-1-rdeadbeef");
  char path[512];
  spt_path(w, "servers", "p1-srv-1-rdeadbeef", ".json", path, sizeof(path));
  json_t *doc = json_load_file(path, 0, NULL);
  cr_assert(doc != NULL, "no restored descriptor at %s", path);
  cr_assert_str_eq(json_string_value(json_object_get(doc, "id")),
                   "p1-srv-1-rdeadbeef");
  json_t *vols = json_object_get(doc, "volumes");
  cr_assert_str_eq(json_string_value(json_array_get(vols, 0)),
                   "p1-vol-1-rdeadbeef");
  cr_assert_str_eq(json_string_value(json_array_get(vols, 1)),
                   "p1-vol-4-rdeadbeef");
  cr_assert_str_eq(json_string_value(json_object_get(doc, "image")),
                   "p1-img-1-rdeadbeef");
  /* no network child: the original network is kept */
  cr_assert_str_eq(json_string_value(json_object_get(doc, "network")),
                   "p1-net-1");
  json_decref(doc);
}

Test(server, restore_points_at_a_restored_network_child) {
  spt_call_t c = {
      .kind = 1, .op_id = "aaaa0001-protect", .ckpt = "c1", .res = srv1};
  spt_result_t p, r;
  cr_assert_eq(spt_pair(w, &c, &p), GRPC_STATUS_OK, "%s", p.msg);
  spt_child_t kids[] = {{"smaug.volume", "p1-vol-1", "p1-vol-1-rdeadbeef"},
                        {"smaug.volume", "p1-vol-4", "p1-vol-4-rdeadbeef"},
                        {"smaug.image", "p1-img-1", "p1-img-1-rdeadbeef"},
                        {"smaug.network", "p1-net-1", "p1-net-1-rdeadbeef"}};
  spt_call_t rc = {.kind = 2,
                   .activity = 2,
                   .op_id = "deadbeef-restore",
                   .ckpt = "c1",
                   .res = srv1,
                   .saved = &p,
                   .children = kids,
                   .n_children = 4};
  cr_assert_eq(spt_call(w, &rc, &r), GRPC_STATUS_OK, "%s", r.msg);
  char path[512];
  spt_path(w, "servers", "p1-srv-1-rdeadbeef", ".json", path, sizeof(path));
  json_t *doc = json_load_file(path, 0, NULL);
  cr_assert(doc != NULL);
  cr_assert_str_eq(json_string_value(json_object_get(doc, "network")),
                   "p1-net-1-rdeadbeef");
  json_decref(doc);
}
