/*
 * valid.c - the limits and checks on single values that cross smaugd's
 * wire (see valid.h): users' requests and plugins' answers alike.
 */
#include "valid.h"

#include <stdio.h>
#include <string.h>

#include "bank.h"
#include "rt_wire.h"

int valid_utf8(const char *s) {
  return s == NULL ||
         rt_utf8_check((const uint8_t *)s, strlen(s), NULL, NULL) == 0;
}

grpc_status_code valid_str(const char *field, const char *s, int required,
                           size_t max, char *msg, size_t len) {
  if (s == NULL || *s == '\0') {
    if (!required)
      return GRPC_STATUS_OK;
    snprintf(msg, len, "%s: required", field);
    return GRPC_STATUS_INVALID_ARGUMENT;
  }
  if (!valid_utf8(s)) {
    snprintf(msg, len, "%s: invalid UTF-8", field);
    return GRPC_STATUS_INVALID_ARGUMENT;
  }
  size_t n = strlen(s);
  if (n > max) {
    snprintf(msg, len, "%s: %zu bytes, more than the limit of %zu", field, n,
             max);
    return GRPC_STATUS_INVALID_ARGUMENT;
  }
  return GRPC_STATUS_OK;
}

grpc_status_code valid_text(const char *field, const char *s, size_t max,
                            char *msg, size_t len) {
  return valid_str(field, s, 0, max, msg, len);
}

const char *valid_quote(const char *s, char *buf, size_t len) {
  static const char hex[] = "0123456789abcdef";
  size_t k = 0, shown = 0;
  if (len < 8) {
    if (len)
      buf[0] = '\0';
    return buf;
  }
  buf[k++] = '"';
  for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
    if (shown >= 64 || k + 8 > len) {
      memcpy(buf + k, "...", 3);
      k += 3;
      break;
    }
    if (*p == '"' || *p == '\\') {
      buf[k++] = '\\';
      buf[k++] = (char)*p;
    } else if (*p >= 0x20 && *p < 0x7f) {
      buf[k++] = (char)*p;
    } else {
      buf[k++] = '\\';
      buf[k++] = 'x';
      buf[k++] = hex[*p >> 4];
      buf[k++] = hex[*p & 15];
    }
    shown++;
  }
  buf[k++] = '"';
  buf[k] = '\0';
  return buf;
}

grpc_status_code valid_key(const char *field, const char *s, char *msg,
                           size_t len) {
  grpc_status_code rc = valid_str(field, s, 1, VALID_MAX_ID_BYTES, msg, len);
  if (rc)
    return rc;
  if (bank_check_object(s) != 0) {
    char q[300];
    snprintf(msg, len, "%s: %s does not match %s", field,
             valid_quote(s, q, sizeof(q)), VALID_ID_PATTERN);
    return GRPC_STATUS_INVALID_ARGUMENT;
  }
  return GRPC_STATUS_OK;
}

grpc_status_code valid_kv(const char *field, const kv_t *kv, size_t n_raw,
                          char *msg, size_t len) {
  grpc_status_code rc;
  if (n_raw > VALID_MAX_MAP_ENTRIES) {
    snprintf(msg, len, "%s: %zu entries, more than the limit of %d", field,
             n_raw, VALID_MAX_MAP_ENTRIES);
    return GRPC_STATUS_INVALID_ARGUMENT;
  }
  for (size_t i = 0; kv && i < kv->n; i++) {
    char f[400];
    char q[300];
    snprintf(f, sizeof(f), "%s[%s]", field,
             valid_quote(kv->items[i].key, q, sizeof(q)));
    if ((rc = valid_str(f, kv->items[i].key, 1, VALID_MAX_KEY_BYTES, msg,
                        len)) ||
        (rc = valid_str(f, kv->items[i].val, 0, VALID_MAX_VALUE_BYTES, msg,
                        len)))
      return rc;
  }
  return GRPC_STATUS_OK;
}

grpc_status_code valid_resource(const char *field, const Smaug__V1__Resource *r,
                                char *msg, size_t len) {
  char f[400];
  grpc_status_code rc;
  if (r == NULL) {
    snprintf(msg, len, "%s: required", field);
    return GRPC_STATUS_INVALID_ARGUMENT;
  }
  snprintf(f, sizeof(f), "%s.type", field);
  if ((rc = valid_key(f, r->type, msg, len)))
    return rc;
  snprintf(f, sizeof(f), "%s.id", field);
  if ((rc = valid_key(f, r->id, msg, len)))
    return rc;
  snprintf(f, sizeof(f), "%s.name", field);
  if ((rc = valid_str(f, r->name, 0, VALID_MAX_NAME_BYTES, msg, len)))
    return rc;
  if (r->n_extra > VALID_MAX_MAP_ENTRIES) {
    snprintf(msg, len, "%s.extra: %zu entries, more than the limit of %d",
             field, r->n_extra, VALID_MAX_MAP_ENTRIES);
    return GRPC_STATUS_INVALID_ARGUMENT;
  }
  snprintf(f, sizeof(f), "%s.extra", field);
  for (size_t j = 0; j < r->n_extra; j++)
    if ((rc = valid_str(f, r->extra[j]->key, 1, VALID_MAX_KEY_BYTES, msg,
                        len)) ||
        (rc = valid_str(f, r->extra[j]->value, 0, VALID_MAX_VALUE_BYTES, msg,
                        len)))
      return rc;
  return GRPC_STATUS_OK;
}

grpc_status_code valid_id(const char *field, const char *id, char *msg,
                          size_t len) {
  return valid_str(field, id, 1, VALID_MAX_KEY_BYTES, msg, len);
}

int valid_params_merge(const Smaug__V1__ParameterSet *ps, const char *type,
                       const char *id, kv_t *out) {
  if (ps == NULL)
    return 0;
  char key[2 * VALID_MAX_KEY_BYTES + 2];
  snprintf(key, sizeof(key), "%s#%s", type, id);
  for (int pass = 0; pass < 2; pass++) {
    const char *want = pass == 0 ? type : key;
    for (size_t i = 0; i < ps->n_entries; i++) {
      const Smaug__V1__ParameterSet__EntriesEntry *e = ps->entries[i];
      if (e->value == NULL || strcmp(e->key, want) != 0)
        continue;
      for (size_t j = 0; j < e->value->n_values; j++) {
        int err =
            kv_set(out, e->value->values[j]->key, e->value->values[j]->value);
        if (err)
          return err;
      }
    }
  }
  return 0;
}
