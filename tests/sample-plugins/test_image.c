/*
 * test_image.c - smaug-plugin-image driven directly: a compressed copy
 * made by a polled zstd child, restored to the same bytes; NOT_FOUND
 * naming the path; a failing child fails the Sync with its exit status.
 */
#include "spt_fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static spt_t *w;
static void setup(void) {
  w = spt_new("--volume-mib 1 --image-kib 256");
}
static void teardown(void) {
  spt_free(w);
}

TestSuite(image, .init = setup, .fini = teardown, .timeout = 120);

static const spt_res_t img1 = {"smaug.image", "p1-img-1"};

Test(image, protect_compresses_and_restore_gives_the_same_bytes) {
  spt_call_t c = {
      .kind = 1, .op_id = "aaaa0001-protect", .ckpt = "c1", .res = img1};
  spt_result_t p, r;
  cr_assert_eq(spt_pair(w, &c, &p), GRPC_STATUS_OK, "%s", p.msg);
  cr_assert_str_eq(spt_meta(&p, "size"), "262144");
  cr_assert_lt(strtoull(spt_meta(&p, "compressed_bytes"), NULL, 10), 262144);
  spt_call_t rc = {.kind = 2,
                   .activity = 2,
                   .op_id = "deadbeef-restore",
                   .ckpt = "c1",
                   .res = img1,
                   .saved = &p};
  cr_assert_eq(spt_call(w, &rc, &r), GRPC_STATUS_OK, "%s", r.msg);
  cr_assert_str_eq(r.restored_id, "p1-img-1-rdeadbeef");
  spt_assert_same_copy(w, "images", "p1-img-1", "p1-img-1-rdeadbeef", ".img");
}

Test(image, missing_image_is_not_found_naming_the_path) {
  spt_assert_missing_named(w, "smaug.image", "images", ".img");
}

Test(image, failing_child_fails_the_sync_with_its_status) {
  char path[512];
  spt_path(w, "images", "dir-img", ".img", path, sizeof(path));
  cr_assert(mkdir(path, 0755) == 0); /* zstd refuses a directory */
  spt_call_t c = {.kind = 1,
                  .op_id = "aaaa0001-protect",
                  .ckpt = "c1",
                  .res = {"smaug.image", "dir-img"}};
  spt_result_t r;
  grpc_status_code code = spt_pair(w, &c, &r);
  cr_assert_neq(code, GRPC_STATUS_OK);
  cr_assert(strstr(r.msg, "zstd") != NULL, "%s", r.msg);
}

Test(image, restore_of_a_missing_checkpoint_is_not_found) {
  spt_call_t c = {.kind = 2,
                  .activity = 2,
                  .op_id = "deadbeef-restore",
                  .ckpt = "never",
                  .res = img1};
  spt_result_t r;
  cr_assert_eq(spt_call(w, &c, &r), GRPC_STATUS_NOT_FOUND, "%s", r.msg);
}
