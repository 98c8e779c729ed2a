/*
 * cli_pbjson.c - descriptor-driven protobuf-c to JSON (see cli_pbjson.h).
 * Base64 for bytes fields comes from OpenSSL.
 */
#include "cli_pbjson.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* protobuf-c keeps no map_entry flag: a map field is a repeated message
 * whose type is named "...Entry" with fields key = 1 and value = 2. */
static int is_map_entry(const ProtobufCMessageDescriptor *d) {
  size_t n = strlen(d->name);
  return n > 5 && strcmp(d->name + n - 5, "Entry") == 0 && d->n_fields == 2 &&
         d->fields[0].id == 1 && d->fields[1].id == 2 &&
         strcmp(d->fields[0].name, "key") == 0 &&
         strcmp(d->fields[1].name, "value") == 0;
}

static json_t *scalar_to_json(const ProtobufCFieldDescriptor *f,
                              const void *p) {
  switch (f->type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
    return json_integer(*(const int32_t *)p);
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
    return json_integer(*(const uint32_t *)p);
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
    return json_integer(*(const int64_t *)p);
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    return json_integer((json_int_t) * (const uint64_t *)p);
  case PROTOBUF_C_TYPE_FLOAT:
    return json_real(*(const float *)p);
  case PROTOBUF_C_TYPE_DOUBLE:
    return json_real(*(const double *)p);
  case PROTOBUF_C_TYPE_BOOL:
    return json_boolean(*(const protobuf_c_boolean *)p);
  case PROTOBUF_C_TYPE_ENUM: {
    const ProtobufCEnumDescriptor *ed = f->descriptor;
    int v = *(const int *)p;
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(ed, v);
    return ev ? json_string(ev->name) : json_integer(v);
  }
  case PROTOBUF_C_TYPE_STRING: {
    const char *s = *(char *const *)p;
    return json_string(s ? s : "");
  }
  case PROTOBUF_C_TYPE_BYTES: {
    const ProtobufCBinaryData *b = p;
    if (b->len > (size_t)INT32_MAX / 2)
      return NULL;
    char *enc = malloc(4 * ((b->len + 2) / 3) + 1);
    if (enc == NULL)
      return NULL;
    EVP_EncodeBlock((unsigned char *)enc, b->data, (int)b->len);
    json_t *j = json_string(enc);
    free(enc);
    return j;
  }
  case PROTOBUF_C_TYPE_MESSAGE: {
    const ProtobufCMessage *m = *(ProtobufCMessage *const *)p;
    return m ? cli_pbjson_from_message(m) : json_null();
  }
  }
  return NULL;
}

static size_t elem_size(const ProtobufCFieldDescriptor *f) {
  switch (f->type) {
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    return 8;
  case PROTOBUF_C_TYPE_DOUBLE:
    return sizeof(double);
  case PROTOBUF_C_TYPE_BOOL:
    return sizeof(protobuf_c_boolean);
  case PROTOBUF_C_TYPE_ENUM:
    return sizeof(int);
  case PROTOBUF_C_TYPE_STRING:
    return sizeof(char *);
  case PROTOBUF_C_TYPE_BYTES:
    return sizeof(ProtobufCBinaryData);
  case PROTOBUF_C_TYPE_MESSAGE:
    return sizeof(ProtobufCMessage *);
  default:
    return 4;
  }
}

/* Converts a map field: its entries become one JSON object. A key that is
 * not a string (int keys) is printed as its decimal text. */
static json_t *map_to_json(const ProtobufCFieldDescriptor *f, size_t n,
                           ProtobufCMessage *const *entries) {
  const ProtobufCMessageDescriptor *ed = f->descriptor;
  json_t *obj = json_object();
  if (obj == NULL)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    const char *base = (const char *)entries[i];
    const ProtobufCFieldDescriptor *kf = &ed->fields[0];
    const ProtobufCFieldDescriptor *vf = &ed->fields[1];
    json_t *k = scalar_to_json(kf, base + kf->offset);
    json_t *v = scalar_to_json(vf, base + vf->offset);
    char num[32];
    const char *key = NULL;
    if (json_is_string(k)) {
      key = json_string_value(k);
    } else if (json_is_integer(k)) {
      snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(k));
      key = num;
    } else if (json_is_boolean(k)) {
      key = json_is_true(k) ? "true" : "false";
    }
    /* json_object_set_new takes `v`, even when it fails. */
    int bad = key == NULL || v == NULL;
    if (bad)
      json_decref(v);
    else
      bad = json_object_set_new(obj, key, v) != 0;
    json_decref(k);
    if (bad) {
      json_decref(obj);
      return NULL;
    }
  }
  return obj;
}

json_t *cli_pbjson_from_message(const ProtobufCMessage *msg) {
  const ProtobufCMessageDescriptor *d = msg->descriptor;
  const char *base = (const char *)msg;
  json_t *obj = json_object();
  if (obj == NULL)
    return NULL;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    const void *p = base + f->offset;
    json_t *v = NULL;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t n = *(const size_t *)(base + f->quantifier_offset);
      const char *arr = *(char *const *)p;
      if (f->type == PROTOBUF_C_TYPE_MESSAGE && is_map_entry(f->descriptor)) {
        v = map_to_json(f, n, (ProtobufCMessage *const *)arr);
      } else {
        v = json_array();
        for (size_t k = 0; v != NULL && k < n; k++) {
          json_t *e = scalar_to_json(f, arr + k * elem_size(f));
          if (e == NULL || json_array_append_new(v, e)) {
            json_decref(v);
            v = NULL;
          }
        }
      }
    } else {
      if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t which = *(const uint32_t *)(base + f->quantifier_offset);
        if (which != f->id)
          continue;
      } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL &&
                 f->type != PROTOBUF_C_TYPE_MESSAGE &&
                 f->type != PROTOBUF_C_TYPE_STRING) {
        if (!*(const protobuf_c_boolean *)(base + f->quantifier_offset))
          continue;
      }
      v = scalar_to_json(f, p);
    }
    if (v == NULL || json_object_set_new(obj, f->name, v)) {
      json_decref(obj);
      return NULL;
    }
  }
  return obj;
}

const char *cli_pbjson_enum_short(const ProtobufCEnumDescriptor *ed, int value,
                                  char *buf, size_t len) {
  const ProtobufCEnumValue *ev =
      protobuf_c_enum_descriptor_get_value(ed, value);
  if (len == 0)
    return buf;
  if (ev == NULL) {
    snprintf(buf, len, "%d", value);
    return buf;
  }
  /* The common prefix is the upper-snake form of the enum's short name:
   * CheckpointStatus -> "CHECKPOINT_STATUS_". */
  char prefix[128];
  size_t pn = 0;
  for (const char *s = ed->short_name; *s && pn + 2 < sizeof(prefix); s++) {
    if (isupper((unsigned char)*s) && s != ed->short_name)
      prefix[pn++] = '_';
    prefix[pn++] = (char)toupper((unsigned char)*s);
  }
  prefix[pn++] = '_';
  prefix[pn] = '\0';
  const char *name = ev->name;
  if (strncmp(name, prefix, pn) == 0 && name[pn] != '\0')
    name += pn;
  size_t i = 0;
  for (; name[i] && i + 1 < len; i++)
    buf[i] = name[i] == '_' ? '-' : (char)tolower((unsigned char)name[i]);
  buf[i] = '\0';
  return buf;
}
