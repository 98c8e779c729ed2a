/*
 * test_project.c - smaug-plugin-project driven directly: its dependents
 * are everything in the project folder, its Parallel is a no-op
 * (UNIMPLEMENTED), and restore re-creates a missing project.json.
 */
#include "spt_fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static spt_t *w;
static void setup(void) {
  w = spt_new("--volume-mib 1 --image-kib 16");
}
static void teardown(void) {
  spt_free(w);
}

TestSuite(project, .init = setup, .fini = teardown, .timeout = 120);

static const spt_res_t proj = {"smaug.project", "proj-1"};

static size_t count(const spt_res_t *d, size_t n, const char *type) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    k += strcmp(d[i].type, type) == 0;
  return k;
}

Test(project, dependents_are_every_resource_of_the_folder) {
  spt_res_t deps[32];
  size_t n = 0;
  cr_assert_eq(spt_list(w, proj, deps, 32, &n), GRPC_STATUS_OK);
  cr_assert_eq(n, 11);
  cr_assert_eq(count(deps, n, "smaug.server"), 3);
  cr_assert_eq(count(deps, n, "smaug.volume"), 5);
  cr_assert_eq(count(deps, n, "smaug.image"), 2);
  cr_assert_eq(count(deps, n, "smaug.network"), 1);
}

Test(project, parallel_is_not_implemented) {
  spt_call_t c = {.kind = 1,
                  .activity = 1,
                  .op_id = "aaaa0001-protect",
                  .ckpt = "c1",
                  .res = proj};
  spt_result_t r;
  cr_assert_eq(spt_call(w, &c, &r), GRPC_STATUS_UNIMPLEMENTED);
}

Test(project, restore_recreates_a_missing_project_json) {
  char path[512];
  snprintf(path, sizeof(path), "%s/projects/proj-1/project.json", spt_cloud(w));
  char *before = spt_read(path);
  cr_assert(before != NULL);
  spt_call_t c = {.kind = 1,
                  .activity = 2,
                  .op_id = "aaaa0001-protect",
                  .ckpt = "c1",
                  .res = proj};
  spt_result_t p, r;
  cr_assert_eq(spt_call(w, &c, &p), GRPC_STATUS_OK, "%s", p.msg);
  cr_assert(unlink(path) == 0);
  spt_call_t rc = {.kind = 2,
                   .activity = 2,
                   .op_id = "deadbeef-restore",
                   .ckpt = "c1",
                   .res = proj,
                   .saved = &p};
  cr_assert_eq(spt_call(w, &rc, &r), GRPC_STATUS_OK, "%s", r.msg);
  cr_assert_str_eq(r.restored_id, "proj-1");
  char *after = spt_read(path);
  cr_assert(after != NULL);
  cr_assert_str_eq(after, before);
  free(before);
  free(after);
}
