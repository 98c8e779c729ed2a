/*
 * bank_manifest.c - JSON encoding and decoding of manifests with jansson.
 * The checksum is the SHA-256 of the document without its "sha256" member,
 * serialised compact with sorted keys; the file itself is written in that
 * same form plus the "sha256" member.
 */
#include "bank_manifest.h"

#include "bank.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FORMAT     "smaug-bank-manifest/1"
#define DUMP_FLAGS (JSON_COMPACT | JSON_SORT_KEYS)

void bank_manifest_free(bank_manifest_t *m) {
  free(m->chunks);
  memset(m, 0, sizeof(*m));
}

/* Hex SHA-256 of the canonical form of `doc` (which must lack "sha256"). */
static int body_hash(json_t *doc, char hex[BANK_HEX_LEN + 1]) {
  char *body = json_dumps(doc, DUMP_FLAGS);
  if (body == NULL)
    return UV_ENOMEM;
  uint8_t md[BANK_HASH_LEN];
  unsigned int n = 0;
  int ok = EVP_Digest(body, strlen(body), md, &n, EVP_sha256(), NULL);
  free(body);
  if (ok != 1 || n != BANK_HASH_LEN)
    return UV_EIO;
  bank_hex(md, hex);
  return 0;
}

int bank_manifest_encode(const bank_manifest_t *m, const char *object,
                         char **out, size_t *len) {
  int rc = UV_ENOMEM;
  json_t *doc = json_object(), *chunks = json_array();
  if (doc == NULL || chunks == NULL)
    goto fail;
  for (size_t i = 0; i < m->n; i++) {
    char hex[BANK_HEX_LEN + 1];
    bank_hex(m->chunks[i].hash, hex);
    json_t *c =
        json_pack("{s:I,s:I,s:s}", "offset", (json_int_t)m->chunks[i].offset,
                  "length", (json_int_t)m->chunks[i].length, "sha256", hex);
    if (c == NULL || json_array_append_new(chunks, c) != 0)
      goto fail;
  }
  if (json_object_set_new(doc, "format", json_string(FORMAT)) != 0 ||
      json_object_set_new(doc, "object", json_string(object)) != 0 ||
      json_object_set_new(doc, "size", json_integer((json_int_t)m->size)) ||
      json_object_set_new(doc, "chunk_size",
                          json_integer((json_int_t)m->chunk_size)) != 0 ||
      json_object_set(doc, "chunks", chunks) != 0)
    goto fail;
  char hex[BANK_HEX_LEN + 1];
  if ((rc = body_hash(doc, hex)) != 0)
    goto fail;
  rc = UV_ENOMEM;
  if (json_object_set_new(doc, "sha256", json_string(hex)) != 0)
    goto fail;
  char *text = json_dumps(doc, DUMP_FLAGS);
  if (text == NULL)
    goto fail;
  *out = text;
  *len = strlen(text);
  rc = 0;
fail:
  json_decref(chunks);
  json_decref(doc);
  return rc;
}

static int corrupt(char *why, size_t why_size, const char *what) {
  snprintf(why, why_size, "manifest %s", what);
  return BANK_ECORRUPT;
}

int bank_manifest_decode(const char *buf, size_t len, bank_manifest_t *m,
                         char *why, size_t why_size) {
  json_error_t jerr;
  json_t *doc = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
  bank_mchunk_t *list = NULL;
  int rc;
  if (doc == NULL || !json_is_object(doc)) {
    rc = corrupt(why, why_size, "is not valid JSON (corrupt)");
    goto out;
  }
  const char *want = json_string_value(json_object_get(doc, "sha256"));
  char stored[BANK_HEX_LEN + 1], actual[BANK_HEX_LEN + 1];
  if (want == NULL || strlen(want) != BANK_HEX_LEN) {
    rc = corrupt(why, why_size, "has no checksum (corrupt)");
    goto out;
  }
  memcpy(stored, want, sizeof(stored));
  json_object_del(doc, "sha256");
  if ((rc = body_hash(doc, actual)) != 0)
    goto out;
  if (strcmp(stored, actual) != 0) {
    rc = corrupt(why, why_size, "checksum mismatch (corrupt)");
    goto out;
  }
  json_t *size = json_object_get(doc, "size");
  json_t *csize = json_object_get(doc, "chunk_size");
  json_t *chunks = json_object_get(doc, "chunks");
  const char *format = json_string_value(json_object_get(doc, "format"));
  if (format == NULL || strcmp(format, FORMAT) != 0) {
    rc = corrupt(why, why_size, "has an unknown format");
    goto out;
  }
  if (!json_is_integer(size) || json_integer_value(size) < 0 ||
      !json_is_integer(csize) || json_integer_value(csize) <= 0 ||
      json_integer_value(csize) > (1 << 30) || !json_is_array(chunks)) {
    rc = corrupt(why, why_size, "has bad size fields");
    goto out;
  }
  size_t n = json_array_size(chunks);
  uint64_t total = (uint64_t)json_integer_value(size);
  uint32_t cs = (uint32_t)json_integer_value(csize);
  if (n > 0 && (list = calloc(n, sizeof(*list))) == NULL) {
    rc = UV_ENOMEM;
    goto out;
  }
  uint64_t end = 0;
  for (size_t i = 0; i < n; i++) {
    json_t *c = json_array_get(chunks, i);
    json_int_t off = -1, length = -1;
    const char *hex = NULL;
    if (json_unpack(c, "{s:I,s:I,s:s}", "offset", &off, "length", &length,
                    "sha256", &hex) != 0 ||
        off < 0 || length <= 0 || (uint64_t)length > cs ||
        (uint64_t)off < end || (uint64_t)off > total ||
        (uint64_t)length > total - (uint64_t)off ||
        bank_unhex(hex, list[i].hash) != 0) {
      rc = corrupt(why, why_size, "has a bad chunk entry");
      goto out;
    }
    list[i].offset = (uint64_t)off;
    list[i].length = (uint32_t)length;
    end = (uint64_t)off + (uint64_t)length;
  }
  m->size = total;
  m->chunk_size = cs;
  m->n = n;
  m->chunks = list;
  list = NULL;
  rc = 0;
out:
  free(list);
  json_decref(doc);
  return rc;
}
