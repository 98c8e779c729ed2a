/*
 * test_bank_manifest.c - the bank_manifest suite: manifests round-trip
 * through JSON, and decoding rejects tampered or inconsistent documents.
 */
#include "bank.h"
#include "bank_manifest.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

TestSuite(bank_manifest, .timeout = 10);

static bank_mchunk_t two[2] = {
    {.offset = 0, .length = 1048576, .hash = {1, 2, 3}},
    {.offset = 3145728, .length = 100, .hash = {0xff, 0xee}},
};

static char *encode(const bank_manifest_t *m) {
  char *text = NULL;
  size_t len = 0;
  cr_assert_eq(bank_manifest_encode(m, "disk", &text, &len), 0);
  cr_assert_eq(strlen(text), len);
  return text;
}

Test(bank_manifest, roundtrip_keeps_every_field) {
  bank_manifest_t m = {
      .size = 3145828, .chunk_size = 1048576, .n = 2, .chunks = two};
  char *text = encode(&m);
  bank_manifest_t out = {0};
  char why[128];
  cr_assert_eq(bank_manifest_decode(text, strlen(text), &out, why, sizeof(why)),
               0, "%s", why);
  cr_assert_eq(out.size, m.size);
  cr_assert_eq(out.chunk_size, m.chunk_size);
  cr_assert_eq(out.n, 2);
  cr_assert_eq(memcmp(out.chunks, two, sizeof(two)), 0);
  bank_manifest_free(&out);
  free(text);
}

Test(bank_manifest, tampered_document_fails_its_checksum) {
  bank_manifest_t m = {
      .size = 3145828, .chunk_size = 1048576, .n = 2, .chunks = two};
  char *text = encode(&m);
  char *p = strstr(text, "\"offset\":3145728");
  cr_assert_not_null(p);
  p[10] = '2'; /* offset 2145728 */
  bank_manifest_t out = {0};
  char why[128];
  cr_assert_eq(bank_manifest_decode(text, strlen(text), &out, why, sizeof(why)),
               BANK_ECORRUPT);
  cr_assert_not_null(strstr(why, "checksum"), "%s", why);
  free(text);
}

Test(bank_manifest, overlapping_chunks_are_rejected) {
  bank_mchunk_t overlap[2] = {two[0], two[1]};
  overlap[1].offset = 1000;
  bank_manifest_t m = {
      .size = 3145828, .chunk_size = 1048576, .n = 2, .chunks = overlap};
  char *text = encode(&m);
  bank_manifest_t out = {0};
  char why[128];
  cr_assert_eq(bank_manifest_decode(text, strlen(text), &out, why, sizeof(why)),
               BANK_ECORRUPT);
  cr_assert_not_null(strstr(why, "chunk entry"), "%s", why);
  free(text);
}

Test(bank_manifest, chunk_past_the_end_is_rejected) {
  bank_manifest_t m = {
      .size = 3145800, .chunk_size = 1048576, .n = 2, .chunks = two};
  char *text = encode(&m);
  bank_manifest_t out = {0};
  char why[128];
  cr_assert_eq(bank_manifest_decode(text, strlen(text), &out, why, sizeof(why)),
               BANK_ECORRUPT);
  free(text);
}

Test(bank_manifest, non_json_is_rejected) {
  bank_manifest_t out = {0};
  char why[128];
  cr_assert_eq(bank_manifest_decode("{\"size\":", 8, &out, why, sizeof(why)),
               BANK_ECORRUPT);
  cr_assert_null(out.chunks);
}
