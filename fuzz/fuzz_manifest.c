/*
 * fuzz_manifest.c - the bank's manifest parser (bank/bank_manifest.c).
 *
 * The input is decoded as it is, which mostly exercises the JSON and
 * checksum checks. When it is a JSON object, the target then replaces its
 * "sha256" with the right checksum and decodes that too, so the checks
 * behind the checksum (format, sizes, chunk list) see fuzzed values.
 * Properties: a refusal has a reason; an accepted manifest encodes and
 * decodes back to the same manifest.
 */
#include <jansson.h>
#include <openssl/evp.h>

#include "bank.h"
#include "bank_manifest.h"
#include "fuzz.h"

/* Decodes buf; on success checks the encode/decode round trip. */
static void decode_and_check(const char *buf, size_t len) {
  bank_manifest_t m = {0}, back = {0};
  char why[256] = "";
  int rc = bank_manifest_decode(buf, len, &m, why, sizeof(why));
  if (rc != 0) {
    FUZZ_CHECK(rc == UV_ENOMEM ||
               (rc == BANK_ECORRUPT && why[0] != '\0' && m.chunks == NULL));
    return;
  }
  char *text;
  size_t tlen;
  FUZZ_CHECK(bank_manifest_encode(&m, "object", &text, &tlen) == 0);
  FUZZ_CHECK(bank_manifest_decode(text, tlen, &back, why, sizeof(why)) == 0);
  FUZZ_CHECK(back.size == m.size && back.chunk_size == m.chunk_size &&
             back.n == m.n);
  FUZZ_CHECK(m.n == 0 ||
             memcmp(back.chunks, m.chunks, m.n * sizeof(*m.chunks)) == 0);
  free(text);
  bank_manifest_free(&back);
  bank_manifest_free(&m);
}

/* The input as a JSON object with its checksum made right, or NULL. */
static char *with_checksum(const uint8_t *data, size_t size, size_t *len) {
  json_t *doc = json_loadb((const char *)data, size, 0, NULL);
  if (doc == NULL || !json_is_object(doc)) {
    json_decref(doc);
    return NULL;
  }
  json_object_del(doc, "sha256");
  char *body = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
  char *text = NULL;
  if (body != NULL) {
    uint8_t md[BANK_HASH_LEN];
    char hex[BANK_HEX_LEN + 1];
    unsigned int n = 0;
    FUZZ_CHECK(EVP_Digest(body, strlen(body), md, &n, EVP_sha256(), NULL));
    bank_hex(md, hex);
    if (json_object_set_new(doc, "sha256", json_string(hex)) == 0)
      text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    free(body);
  }
  json_decref(doc);
  if (text != NULL)
    *len = strlen(text);
  return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  decode_and_check((const char *)data, size);
  size_t len;
  char *fixed = with_checksum(data, size, &len);
  if (fixed != NULL) {
    decode_and_check(fixed, len);
    free(fixed);
  }
  return 0;
}
