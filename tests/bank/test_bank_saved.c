/*
 * test_bank_saved.c - what a checkpoint records, checked against the bank:
 * bank_manifest_digest and bank_find_manifest (present, missing, replaced,
 * with and without an object name and a digest), and bank_saved_check on
 * hand-built results (the rule of docs/bank.md "What a checkpoint must
 * hold": DONE resources only, `manifest_sha256` and
 * `manifest_sha256.<object>`, presence-only mode, hostile names), and the
 * plain-file form: bank_find_file and `object_sha256.<name>`. Each test
 * gets its own bank in a temporary directory.
 */
#define _GNU_SOURCE
#include "bank.h"
#include "bank_saved.h"
#include "bank_tmp.h"

#include <criterion/criterion.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CKP "ckp-1"

TestSuite(bank_saved, .init = bank_tmp_setup, .fini = bank_tmp_teardown,
          .timeout = 30);

/* ---- helpers ------------------------------------------------------------ */

static void put(const char *section, const char *object, const char *text) {
  bank_err_t err = {0};
  cr_assert_eq(
      bank_put_bytes(bank, section, object, text, strlen(text), NULL, &err), 0,
      "%s", err.msg);
}

static void manifest_file(const char *section, const char *object, char *out,
                          size_t len) {
  snprintf(out, len, "%s/manifests/%s/%s.manifest.json", bank_dir, section,
           object);
}

/* The SHA-256 of the manifest file, computed here independently. */
static void file_sha256(const char *path, char hex[65]) {
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "%s", path);
  unsigned char buf[65536], md[32];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  unsigned int mdlen = 0;
  cr_assert_eq(EVP_Digest(buf, n, md, &mdlen, EVP_sha256(), NULL), 1);
  for (int i = 0; i < 32; i++)
    snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

/* Writes a plain file <bank>/<section>/<name>, as the network plugin does,
 * and returns the SHA-256 of `text` in hex. */
static void plain(const char *section, const char *name, const char *text,
                  char hex[65]) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", bank_dir, section);
  for (char *p = path + strlen(bank_dir) + 1; *p; p++)
    if (*p == '/') {
      *p = '\0';
      mkdir(path, 0755);
      *p = '/';
    }
  mkdir(path, 0755);
  snprintf(path, sizeof path, "%s/%s/%s", bank_dir, section, name);
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f, "%s", path);
  cr_assert_eq(fwrite(text, 1, strlen(text), f), strlen(text));
  cr_assert_eq(fclose(f), 0);
  file_sha256(path, hex);
}

static void digest(const char *section, const char *object, char hex[65]) {
  bank_err_t err = {0};
  cr_assert_eq(bank_manifest_digest(bank, section, object, hex, &err), 0, "%s",
               err.msg);
}

static void move_away(const char *section, const char *object) {
  char path[1024], to[1100];
  manifest_file(section, object, path, sizeof path);
  snprintf(to, sizeof to, "%s/moved", dir);
  cr_assert_eq(rename(path, to), 0, "%s", path);
}

/* A result built by hand, as smaugd's store would give it. */
typedef struct {
  Smaug__V1__ResourceResult res;
  Smaug__V1__Resource r;
  Smaug__V1__ResourceResult__MetadataEntry e[4];
  Smaug__V1__ResourceResult__MetadataEntry *ep[4];
} result_t;

static void result(result_t *x, const char *type, const char *id, int status,
                   const char *k1, const char *v1, const char *k2,
                   const char *v2) {
  memset(x, 0, sizeof(*x));
  smaug__v1__resource_result__init(&x->res);
  smaug__v1__resource__init(&x->r);
  x->r.type = (char *)type;
  x->r.id = (char *)id;
  x->res.resource = &x->r;
  x->res.status = status;
  const char *kv[][2] = {{k1, v1}, {k2, v2}};
  for (int i = 0; i < 2; i++) {
    if (kv[i][0] == NULL)
      continue;
    smaug__v1__resource_result__metadata_entry__init(&x->e[i]);
    x->e[i].key = (char *)kv[i][0];
    x->e[i].value = (char *)kv[i][1];
    x->ep[x->res.n_metadata++] = &x->e[i];
  }
  x->res.metadata = x->ep;
}

#define DONE   SMAUG__V1__TASK_STATUS__TASK_STATUS_DONE
#define FAILED SMAUG__V1__TASK_STATUS__TASK_STATUS_FAILED

typedef struct {
  int n;
  char what[8][400];
} seen_t;

static void on_missing(void *data, const char *type, const char *id,
                       const char *section, const char *object,
                       const char *msg) {
  seen_t *s = data;
  cr_assert_lt(s->n, 8);
  snprintf(s->what[s->n++], sizeof s->what[0], "%s#%s|%s|%s|%s", type, id,
           section, object ? object : "-", msg);
}

/* ---- bank_manifest_digest, bank_find_manifest ---------------------------- */

Test(bank_saved, digest_is_the_manifest_files_sha256) {
  const char *sec = "checkpoints/" CKP "/smaug.volume/v1";
  put(sec, "data", "hello");
  char path[1024], want[65], got[65];
  manifest_file(sec, "data", path, sizeof path);
  file_sha256(path, want);
  digest(sec, "data", got);
  cr_assert_str_eq(got, want);
  bank_err_t err = {0};
  cr_assert_eq(bank_manifest_digest(bank, sec, "nope", got, &err), UV_ENOENT);
  cr_assert_not_null(strstr(err.msg, "nope"), "%s", err.msg);
  cr_assert_eq(bank_manifest_digest(bank, "../x", "data", got, &err),
               UV_EINVAL);
}

Test(bank_saved, find_by_object) {
  const char *sec = "checkpoints/" CKP "/smaug.volume/v1";
  put(sec, "data", "one");
  char hex[65];
  digest(sec, "data", hex);
  bank_err_t err = {0};
  cr_assert_eq(bank_find_manifest(bank, sec, "data", NULL, &err), 0);
  cr_assert_eq(bank_find_manifest(bank, sec, "data", hex, &err), 0);
  /* Another object's digest: present, but not what was recorded. */
  put("checkpoints/" CKP "/smaug.volume/v2", "data", "two");
  char other[65];
  digest("checkpoints/" CKP "/smaug.volume/v2", "data", other);
  cr_assert_eq(bank_find_manifest(bank, sec, "data", other, &err),
               BANK_ECORRUPT);
  cr_assert_not_null(strstr(err.msg, other), "%s", err.msg);
  cr_assert_not_null(strstr(err.msg, hex), "%s", err.msg);
  /* Moved away: missing, with or without a digest. */
  move_away(sec, "data");
  cr_assert_eq(bank_find_manifest(bank, sec, "data", NULL, &err), UV_ENOENT);
  cr_assert_not_null(strstr(err.msg, sec), "%s", err.msg);
  cr_assert_not_null(strstr(err.msg, "/data: not in the bank (no manifest)"),
                     "%s", err.msg);
  cr_assert_eq(bank_find_manifest(bank, sec, "data", hex, &err), UV_ENOENT);
  /* A section that never existed, and hostile names. */
  cr_assert_eq(bank_find_manifest(bank, "checkpoints/none", "data", NULL, &err),
               UV_ENOENT);
  cr_assert_eq(bank_find_manifest(bank, "a/../b", "data", NULL, &err),
               UV_EINVAL);
  cr_assert_eq(bank_find_manifest(bank, sec, "../data", NULL, &err), UV_EINVAL);
}

Test(bank_saved, find_any_in_section) {
  const char *sec = "checkpoints/" CKP "/smaug.image/i1";
  bank_err_t err = {0};
  cr_assert_eq(bank_find_manifest(bank, sec, NULL, NULL, &err), UV_ENOENT);
  cr_assert_not_null(strstr(err.msg, sec), "%s", err.msg);
  put(sec, "a", "first");
  put(sec, "b", "second");
  /* A manifest in a sub-section does not count for its parent. */
  put("checkpoints/" CKP "/smaug.image/i2/sub", "c", "third");
  char a[65], b[65], c[65];
  digest(sec, "a", a);
  digest(sec, "b", b);
  digest("checkpoints/" CKP "/smaug.image/i2/sub", "c", c);
  cr_assert_eq(bank_find_manifest(bank, sec, NULL, NULL, &err), 0);
  cr_assert_eq(bank_find_manifest(bank, sec, NULL, a, &err), 0);
  cr_assert_eq(bank_find_manifest(bank, sec, NULL, b, &err), 0);
  cr_assert_eq(bank_find_manifest(bank, sec, NULL, c, &err), BANK_ECORRUPT);
  cr_assert_not_null(strstr(err.msg, c), "%s", err.msg);
  cr_assert_eq(bank_find_manifest(bank, "checkpoints/" CKP "/smaug.image/i2",
                                  NULL, NULL, &err),
               UV_ENOENT);
  move_away(sec, "b");
  cr_assert_eq(bank_find_manifest(bank, sec, NULL, b, &err), BANK_ECORRUPT);
  move_away(sec, "a");
  cr_assert_eq(bank_find_manifest(bank, sec, NULL, a, &err), UV_ENOENT);
}

/* ---- bank_saved_check ---------------------------------------------------- */

Test(bank_saved, catalogue_all_present) {
  put("checkpoints/" CKP "/smaug.volume/v1", "data", "v1");
  put("checkpoints/" CKP "/smaug.server/s1", "server.json", "{}");
  put("checkpoints/" CKP "/x.multi/m1", "one", "1");
  put("checkpoints/" CKP "/x.multi/m1", "two", "2");
  char v1[65], s1[65], m1[65], m2[65];
  digest("checkpoints/" CKP "/smaug.volume/v1", "data", v1);
  digest("checkpoints/" CKP "/smaug.server/s1", "server.json", s1);
  digest("checkpoints/" CKP "/x.multi/m1", "one", m1);
  digest("checkpoints/" CKP "/x.multi/m1", "two", m2);
  result_t r[4];
  result(&r[0], "smaug.volume", "v1", DONE, "size", "2", "manifest_sha256", v1);
  result(&r[1], "smaug.server", "s1", DONE, "manifest_sha256", s1, NULL, NULL);
  result(&r[2], "x.multi", "m1", DONE, "manifest_sha256.one", m1,
         "manifest_sha256.two", m2);
  /* Claims nothing in the chunk store (like a plugin keeping a plain
   * file): not checked. */
  result(&r[3], "smaug.network", "n1", DONE, "sha256", "abc", NULL, NULL);
  Smaug__V1__ResourceResult *rs[] = {&r[0].res, &r[1].res, &r[2].res,
                                     &r[3].res};
  seen_t seen = {0};
  size_t missing = 99;
  bank_err_t err = {0};
  for (unsigned flags = 0; flags <= BANK_SAVED_DIGEST; flags++) {
    cr_assert_eq(bank_saved_check(bank, CKP, rs, 4, flags, on_missing, &seen,
                                  &missing, &err),
                 0, "%s", err.msg);
    cr_assert_eq(missing, 0);
    cr_assert_eq(seen.n, 0);
  }
}

Test(bank_saved, catalogue_names_each_missing_object) {
  put("checkpoints/" CKP "/smaug.volume/v1", "data", "v1");
  put("checkpoints/" CKP "/smaug.volume/v2", "data", "v2");
  put("checkpoints/" CKP "/x.multi/m1", "one", "1");
  put("checkpoints/" CKP "/x.multi/m1", "two", "2");
  char v1[65], v2[65], m1[65], m2[65];
  digest("checkpoints/" CKP "/smaug.volume/v1", "data", v1);
  digest("checkpoints/" CKP "/smaug.volume/v2", "data", v2);
  digest("checkpoints/" CKP "/x.multi/m1", "one", m1);
  digest("checkpoints/" CKP "/x.multi/m1", "two", m2);
  move_away("checkpoints/" CKP "/smaug.volume/v2", "data");
  move_away("checkpoints/" CKP "/x.multi/m1", "two");
  result_t r[5];
  result(&r[0], "smaug.volume", "v1", DONE, "manifest_sha256", v1, NULL, NULL);
  result(&r[1], "smaug.volume", "v2", DONE, "manifest_sha256", v2, NULL, NULL);
  result(&r[2], "x.multi", "m1", DONE, "manifest_sha256.one", m1,
         "manifest_sha256.two", m2);
  /* A failed resource saved nothing: its claim is not checked. */
  result(&r[3], "smaug.volume", "v3", FAILED, "manifest_sha256", v1, NULL,
         NULL);
  /* Never protected at all, but recorded as DONE. */
  result(&r[4], "smaug.image", "i1", DONE, "manifest_sha256", v1, NULL, NULL);
  Smaug__V1__ResourceResult *rs[] = {&r[0].res, &r[1].res, &r[2].res, &r[3].res,
                                     &r[4].res};
  for (unsigned flags = 0; flags <= BANK_SAVED_DIGEST; flags++) {
    seen_t seen = {0};
    size_t missing = 0;
    bank_err_t err = {0};
    cr_assert_eq(bank_saved_check(bank, CKP, rs, 5, flags, on_missing, &seen,
                                  &missing, &err),
                 UV_ENOENT);
    cr_assert_eq(missing, 3);
    cr_assert_eq(seen.n, 3);
    cr_assert_str_eq(seen.what[0],
                     "smaug.volume#v2|checkpoints/" CKP
                     "/smaug.volume/v2|-|section checkpoints/" CKP
                     "/smaug.volume/v2: not in the bank (no manifest)");
    cr_assert_str_eq(seen.what[1],
                     "x.multi#m1|checkpoints/" CKP
                     "/x.multi/m1|two|object checkpoints/" CKP
                     "/x.multi/m1/two: not in the bank (no manifest)");
    cr_assert_not_null(strstr(seen.what[2], "smaug.image#i1|"), "%s",
                       seen.what[2]);
    /* err holds the first one, with the resource. */
    cr_assert_not_null(strstr(err.msg, "smaug.volume#v2: "), "%s", err.msg);
  }
}

Test(bank_saved, digest_mode_catches_a_replaced_object) {
  put("checkpoints/" CKP "/smaug.volume/v1", "data", "v1");
  put("checkpoints/" CKP "/smaug.volume/v2", "data", "v2");
  char v2[65];
  digest("checkpoints/" CKP "/smaug.volume/v2", "data", v2);
  result_t r;
  /* v1's record names v2's manifest: present, but not what was saved. */
  result(&r, "smaug.volume", "v1", DONE, "manifest_sha256", v2, NULL, NULL);
  Smaug__V1__ResourceResult *rs[] = {&r.res};
  seen_t seen = {0};
  size_t missing = 0;
  cr_assert_eq(
      bank_saved_check(bank, CKP, rs, 1, 0, on_missing, &seen, &missing, NULL),
      0);
  cr_assert_eq(bank_saved_check(bank, CKP, rs, 1, BANK_SAVED_DIGEST, on_missing,
                                &seen, &missing, NULL),
               UV_ENOENT);
  cr_assert_eq(missing, 1);
  cr_assert_not_null(strstr(seen.what[0], "the checkpoint recorded"), "%s",
                     seen.what[0]);
}

Test(bank_saved, hostile_names_are_reported_not_followed) {
  /* Something outside any section that a hostile id could point at. */
  put("elsewhere", "data", "x");
  result_t r[3];
  result(&r[0], "smaug.volume", "../../../elsewhere", DONE, "manifest_sha256",
         "00", NULL, NULL);
  result(&r[1], "smaug.volume", "v1", DONE, "manifest_sha256.../x", "00", NULL,
         NULL);
  result(&r[2], "smaug.volume", "v2", DONE, "manifest_sha256.", "00", NULL,
         NULL);
  Smaug__V1__ResourceResult *rs[] = {&r[0].res, &r[1].res, &r[2].res};
  seen_t seen = {0};
  size_t missing = 0;
  cr_assert_eq(
      bank_saved_check(bank, CKP, rs, 3, 0, on_missing, &seen, &missing, NULL),
      UV_ENOENT);
  cr_assert_eq(missing, 3);
  cr_assert_not_null(strstr(seen.what[0], "no valid bank section"), "%s",
                     seen.what[0]);
  cr_assert_not_null(strstr(seen.what[1], "invalid object"), "%s",
                     seen.what[1]);
  cr_assert_not_null(strstr(seen.what[2], "invalid object"), "%s",
                     seen.what[2]);
}

Test(bank_saved, null_resource_and_empty_list) {
  Smaug__V1__ResourceResult res;
  smaug__v1__resource_result__init(&res);
  res.status = DONE;
  Smaug__V1__ResourceResult *rs[] = {&res};
  size_t missing = 7;
  cr_assert_eq(bank_saved_check(bank, CKP, rs, 1, BANK_SAVED_DIGEST, NULL, NULL,
                                &missing, NULL),
               0);
  cr_assert_eq(missing, 0);
  cr_assert_eq(bank_saved_check(bank, CKP, NULL, 0, 0, NULL, NULL, NULL, NULL),
               0);
}

Test(bank_saved, a_bank_that_does_not_exist_holds_nothing) {
  result_t r[2];
  result(&r[0], "smaug.volume", "v1", DONE, "manifest_sha256", "00", NULL,
         NULL);
  result(&r[1], "x.plain", "p1", DONE, "sha256", "00", NULL, NULL);
  Smaug__V1__ResourceResult *rs[] = {&r[0].res, &r[1].res};
  seen_t seen = {0};
  size_t missing = 0;
  /* Nothing claimed: nothing to miss, with or without a bank. */
  cr_assert_eq(bank_saved_check(NULL, CKP, rs + 1, 1, 0, on_missing, &seen,
                                &missing, NULL),
               0);
  cr_assert_eq(bank_saved_check(NULL, CKP, rs, 2, BANK_SAVED_DIGEST, on_missing,
                                &seen, &missing, NULL),
               UV_ENOENT);
  cr_assert_eq(missing, 1);
  cr_assert_not_null(strstr(seen.what[0], "smaug.volume#v1|"), "%s",
                     seen.what[0]);
  cr_assert_not_null(strstr(seen.what[0], "no data at all"), "%s",
                     seen.what[0]);
}

/* ---- plain files: bank_find_file, `object_sha256.<name>` ---------------- */

Test(bank_saved, find_file) {
  const char *sec = "checkpoints/" CKP "/smaug.network/n1";
  char hex[65], other[65];
  plain(sec, "network.json", "{\"id\": \"n1\"}", hex);
  plain("checkpoints/" CKP "/smaug.network/n2", "network.json", "{}", other);
  bank_err_t err = {0};
  cr_assert_eq(bank_find_file(bank, sec, "network.json", NULL, &err), 0, "%s",
               err.msg);
  cr_assert_eq(bank_find_file(bank, sec, "network.json", hex, &err), 0, "%s",
               err.msg);
  /* Present, with other contents. */
  cr_assert_eq(bank_find_file(bank, sec, "network.json", other, &err),
               BANK_ECORRUPT);
  cr_assert_not_null(strstr(err.msg, other), "%s", err.msg);
  cr_assert_not_null(strstr(err.msg, hex), "%s", err.msg);
  /* A directory or a symbolic link is not the file that was saved. */
  cr_assert_eq(bank_find_file(bank, "checkpoints/" CKP "/smaug.network", "n1",
                              NULL, &err),
               UV_ENOENT);
  char path[1024], target[1024];
  snprintf(path, sizeof path, "%s/%s/link.json", bank_dir, sec);
  snprintf(target, sizeof target, "%s/%s/network.json", bank_dir, sec);
  cr_assert_eq(symlink(target, path), 0);
  cr_assert_eq(bank_find_file(bank, sec, "link.json", NULL, &err), UV_ENOENT);
  cr_assert_not_null(strstr(err.msg, "link.json: not in the bank"), "%s",
                     err.msg);
  /* Removed: missing, with or without a digest. */
  cr_assert_eq(unlink(target), 0);
  cr_assert_eq(bank_find_file(bank, sec, "network.json", NULL, &err),
               UV_ENOENT);
  cr_assert_str_eq(err.msg, "file checkpoints/" CKP
                            "/smaug.network/n1/network.json: not in the bank "
                            "(no such file)");
  cr_assert_eq(bank_find_file(bank, sec, "network.json", hex, &err), UV_ENOENT);
  /* Hostile names are refused, not followed. */
  plain("elsewhere", "x", "x", other);
  cr_assert_eq(bank_find_file(bank, sec, "../../../../elsewhere/x", NULL, &err),
               UV_EINVAL);
  cr_assert_eq(bank_find_file(bank, sec, "..", NULL, &err), UV_EINVAL);
  cr_assert_eq(bank_find_file(bank, "a/../elsewhere", "x", NULL, &err),
               UV_EINVAL);
  cr_assert_eq(bank_find_file(bank, "/elsewhere", "x", NULL, &err), UV_EINVAL);
  cr_assert_eq(bank_find_file(bank, sec, NULL, NULL, &err), UV_EINVAL);
}

Test(bank_saved, catalogue_checks_plain_files) {
  const char *sec1 = "checkpoints/" CKP "/smaug.network/n1";
  const char *sec2 = "checkpoints/" CKP "/smaug.network/n2";
  char n1[65], n2[65], v1[65];
  plain(sec1, "network.json", "one", n1);
  plain(sec2, "network.json", "two", n2);
  put("checkpoints/" CKP "/smaug.volume/v1", "data", "v1");
  digest("checkpoints/" CKP "/smaug.volume/v1", "data", v1);
  result_t r[4];
  result(&r[0], "smaug.network", "n1", DONE, "sha256", n1,
         "object_sha256.network.json", n1);
  result(&r[1], "smaug.network", "n2", DONE, "object_sha256.network.json", n2,
         NULL, NULL);
  result(&r[2], "smaug.volume", "v1", DONE, "manifest_sha256", v1, NULL, NULL);
  /* A failed resource saved nothing: not checked. */
  result(&r[3], "smaug.network", "n3", FAILED, "object_sha256.network.json", n1,
         NULL, NULL);
  Smaug__V1__ResourceResult *rs[] = {&r[0].res, &r[1].res, &r[2].res,
                                     &r[3].res};
  for (unsigned flags = 0; flags <= BANK_SAVED_DIGEST; flags++) {
    seen_t seen = {0};
    size_t missing = 99;
    bank_err_t err = {0};
    cr_assert_eq(bank_saved_check(bank, CKP, rs, 4, flags, on_missing, &seen,
                                  &missing, &err),
                 0, "%s", err.msg);
    cr_assert_eq(missing, 0);
  }
  /* n2's file removed: named, in both modes, with its object. */
  char path[1024];
  snprintf(path, sizeof path, "%s/%s/network.json", bank_dir, sec2);
  cr_assert_eq(unlink(path), 0);
  for (unsigned flags = 0; flags <= BANK_SAVED_DIGEST; flags++) {
    seen_t seen = {0};
    size_t missing = 0;
    bank_err_t err = {0};
    cr_assert_eq(bank_saved_check(bank, CKP, rs, 4, flags, on_missing, &seen,
                                  &missing, &err),
                 UV_ENOENT);
    cr_assert_eq(missing, 1);
    cr_assert_str_eq(seen.what[0], "smaug.network#n2|checkpoints/" CKP
                                   "/smaug.network/n2|network.json|file "
                                   "checkpoints/" CKP
                                   "/smaug.network/n2/network.json: not in "
                                   "the bank (no such file)");
    cr_assert_not_null(strstr(err.msg, "smaug.network#n2: "), "%s", err.msg);
  }
  /* n1's file replaced: only the digest mode sees it. */
  plain(sec1, "network.json", "changed", n2);
  seen_t seen = {0};
  size_t missing = 0;
  Smaug__V1__ResourceResult *one[] = {&r[0].res};
  cr_assert_eq(
      bank_saved_check(bank, CKP, one, 1, 0, on_missing, &seen, &missing, NULL),
      0);
  cr_assert_eq(bank_saved_check(bank, CKP, one, 1, BANK_SAVED_DIGEST,
                                on_missing, &seen, &missing, NULL),
               UV_ENOENT);
  cr_assert_eq(missing, 1);
  cr_assert_not_null(strstr(seen.what[0], "the checkpoint recorded"), "%s",
                     seen.what[0]);
  /* No bank at all: the claim is missing. */
  seen.n = 0;
  cr_assert_eq(
      bank_saved_check(NULL, CKP, one, 1, 0, on_missing, &seen, &missing, NULL),
      UV_ENOENT);
  cr_assert_not_null(strstr(seen.what[0], "no data at all"), "%s",
                     seen.what[0]);
}

Test(bank_saved, plain_file_keys_with_hostile_names_are_reported) {
  char x[65];
  plain("elsewhere", "x", "x", x);
  plain("checkpoints/" CKP "/smaug.network/n1", "network.json", "n", x);
  result_t r[5];
  result(&r[0], "smaug.network", "n1", DONE,
         "object_sha256.../../../../elsewhere/x", x, NULL, NULL);
  result(&r[1], "smaug.network", "n1", DONE, "object_sha256...", x, NULL, NULL);
  result(&r[2], "smaug.network", "n1", DONE, "object_sha256.", x, NULL, NULL);
  /* The section alone is a directory, not a saved file. */
  result(&r[3], "smaug.network", "n1", DONE, "object_sha256", x, NULL, NULL);
  result(&r[4], "smaug.network", "../../../elsewhere", DONE, "object_sha256.x",
         x, NULL, NULL);
  Smaug__V1__ResourceResult *rs[] = {&r[0].res, &r[1].res, &r[2].res, &r[3].res,
                                     &r[4].res};
  for (unsigned flags = 0; flags <= BANK_SAVED_DIGEST; flags++) {
    seen_t seen = {0};
    size_t missing = 0;
    cr_assert_eq(bank_saved_check(bank, CKP, rs, 5, flags, on_missing, &seen,
                                  &missing, NULL),
                 UV_ENOENT);
    cr_assert_eq(missing, 5);
    for (int i = 0; i < 4; i++)
      cr_assert_not_null(strstr(seen.what[i], "invalid object"), "%s",
                         seen.what[i]);
    cr_assert_not_null(strstr(seen.what[4], "no valid bank section"), "%s",
                       seen.what[4]);
  }
}
