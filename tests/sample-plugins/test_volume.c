/*
 * test_volume.c - smaug-plugin-volume driven directly: protect, restore
 * and delete through the chunk store, NOT_FOUND naming the path, a
 * corrupt chunk failing the restore, Sync without its Parallel, and the
 * temporary files of a killed restore removed by the next one.
 */
#include "spt_fixture.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static spt_t *w;
static void setup(void) {
  w = spt_new("--volume-mib 4 --image-kib 64");
}
static void teardown(void) {
  spt_free(w);
}

TestSuite(volume, .init = setup, .fini = teardown, .timeout = 120);

static const spt_res_t vol1 = {"smaug.volume", "p1-vol-1"};

static void protect(const char *ckpt, spt_result_t *out) {
  spt_call_t c = {
      .kind = 1, .op_id = "aaaa0001-protect", .ckpt = ckpt, .res = vol1};
  cr_assert_eq(spt_pair(w, &c, out), GRPC_STATUS_OK, "protect: %s", out->msg);
}

static grpc_status_code restore(const char *ckpt, const spt_result_t *saved,
                                spt_result_t *out) {
  spt_call_t c = {.kind = 2,
                  .activity = 2,
                  .op_id = "deadbeef-restore",
                  .ckpt = ckpt,
                  .res = vol1,
                  .saved = saved};
  return spt_call(w, &c, out);
}

Test(volume, restore_gives_the_same_bytes_under_the_new_id) {
  spt_result_t p, r;
  protect("c1", &p);
  cr_assert_str_eq(spt_meta(&p, "size"), "4194304");
  cr_assert(spt_meta(&p, "manifest_sha256") != NULL);
  cr_assert_eq(restore("c1", &p, &r), GRPC_STATUS_OK, "%s", r.msg);
  cr_assert_str_eq(r.restored_id, "p1-vol-1-rdeadbeef");
  spt_assert_same_copy(w, "volumes", "p1-vol-1", "p1-vol-1-rdeadbeef", ".raw");
}

Test(volume, missing_volume_is_not_found_naming_the_path) {
  spt_assert_missing_named(w, "smaug.volume", "volumes", ".raw");
}

Test(volume, corrupt_chunk_fails_the_restore_naming_the_chunk) {
  spt_result_t p, r;
  protect("c1", &p);
  char path[600];
  snprintf(
      path, sizeof(path),
      "%s/manifests/checkpoints/c1/smaug.volume/p1-vol-1/data.manifest.json",
      spt_bank_dir(w));
  json_t *m = json_load_file(path, 0, NULL);
  cr_assert(m != NULL, "no manifest at %s", path);
  const char *sha = json_string_value(json_object_get(
      json_array_get(json_object_get(m, "chunks"), 0), "sha256"));
  cr_assert(sha != NULL);
  char chunk[700];
  snprintf(chunk, sizeof(chunk), "%s/chunks/%.2s/%s", spt_bank_dir(w), sha,
           sha);
  FILE *f = fopen(chunk, "r+b");
  cr_assert(f != NULL, "no chunk file %s", chunk);
  struct stat st;
  cr_assert(stat(chunk, &st) == 0);
  fseek(f, st.st_size / 2, SEEK_SET);
  fputs("corrupted!", f);
  fclose(f);
  cr_assert_neq(restore("c1", &p, &r), GRPC_STATUS_OK);
  cr_assert(strstr(r.msg, sha) != NULL, "message does not name the chunk: %s",
            r.msg);
  spt_path(w, "volumes", "p1-vol-1-rdeadbeef", ".raw", path, sizeof(path));
  cr_assert(stat(path, &st) != 0, "a partial volume was left at %s", path);
  json_decref(m);
}

Test(volume, delete_removes_the_section_and_its_chunks) {
  spt_result_t p, d;
  protect("c1", &p);
  cr_assert_gt(spt_bank_chunks(w), 0);
  spt_call_t c = {.kind = 3,
                  .activity = 2,
                  .op_id = "bbbb0001-delete",
                  .ckpt = "c1",
                  .res = vol1,
                  .saved = &p};
  cr_assert_eq(spt_call(w, &c, &d), GRPC_STATUS_OK, "%s", d.msg);
  cr_assert_eq(spt_bank_chunks(w), 0);
  char dir[600];
  struct stat st;
  snprintf(dir, sizeof(dir), "%s/manifests/checkpoints/c1", spt_bank_dir(w));
  cr_assert(stat(dir, &st) != 0, "%s is still there", dir);
}

Test(volume, sync_without_its_parallel_copies_anyway) {
  spt_call_t c = {.kind = 1,
                  .activity = 2,
                  .op_id = "aaaa0002-protect",
                  .ckpt = "c2",
                  .res = vol1};
  spt_result_t r;
  cr_assert_eq(spt_call(w, &c, &r), GRPC_STATUS_OK, "%s", r.msg);
  cr_assert_str_eq(spt_meta(&r, "size"), "4194304");
}

Test(volume, restore_needs_a_hex_operation_id) {
  spt_result_t p, r;
  protect("c1", &p);
  spt_call_t c = {.kind = 2,
                  .activity = 2,
                  .op_id = "restore-op",
                  .ckpt = "c1",
                  .res = vol1,
                  .saved = &p};
  cr_assert_eq(spt_call(w, &c, &r), GRPC_STATUS_INVALID_ARGUMENT);
  cr_assert(strstr(r.msg, "operation.id") != NULL, "%s", r.msg);
}

/* The pid of a process that has exited (and been reaped). */
static pid_t dead_pid(void) {
  pid_t pid = fork();
  cr_assert(pid >= 0);
  if (pid == 0)
    _exit(0);
  cr_assert_eq(waitpid(pid, NULL, 0), pid);
  return pid;
}

static void plant(const char *path) {
  FILE *f = fopen(path, "wb");
  cr_assert(f != NULL, "%s", path);
  fputs("partial copy", f);
  fclose(f);
}

static int exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

Test(volume, a_restore_removes_what_a_killed_restore_left) {
  spt_result_t p, r;
  protect("c1", &p);
  /* What the bank's copy leaves when the plugin is killed mid-restore:
   * "<dest>.<pid>.<thread>.restore", here from a process that is gone,
   * for this restore's destination and for another volume's. A live
   * process's file (this test's) may still be written: it stays. */
  char dest[600], dead1[700], dead2[700], live[700];
  pid_t gone = dead_pid();
  spt_path(w, "volumes", "p1-vol-1-rdeadbeef", ".raw", dest, sizeof(dest));
  snprintf(dead1, sizeof(dead1), "%s.%ld.7f3a2b1c.restore", dest, (long)gone);
  spt_path(w, "volumes", "p1-vol-2-r01234567", ".raw.", dest, sizeof(dest));
  snprintf(dead2, sizeof(dead2), "%s%ld.1.restore", dest, (long)gone);
  spt_path(w, "volumes", "p1-vol-3-r01234567", ".raw.", dest, sizeof(dest));
  snprintf(live, sizeof(live), "%s%ld.1.restore", dest, (long)getpid());
  plant(dead1);
  plant(dead2);
  plant(live);
  cr_assert_eq(restore("c1", &p, &r), GRPC_STATUS_OK, "%s", r.msg);
  spt_assert_same_copy(w, "volumes", "p1-vol-1", "p1-vol-1-rdeadbeef", ".raw");
  cr_assert(!exists(dead1), "%s is still there", dead1);
  cr_assert(!exists(dead2), "%s is still there", dead2);
  cr_assert(exists(live), "%s of a live process was removed", live);
  /* Nothing else of the restore is left behind. */
  char dir[600], cmd[800];
  spt_path(w, "volumes", "", "", dir, sizeof(dir));
  unlink(live);
  snprintf(cmd, sizeof(cmd),
           "test -z \"$(find '%s' -name '*.restore' -o -name '.*tmp*')\"", dir);
  cr_assert_eq(system(cmd), 0, "temporary files left in %s", dir);
}
