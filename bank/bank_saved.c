/*
 * bank_saved.c - a checkpoint's catalogue checked against its bank (see
 * bank_saved.h): walks the per-resource results, and asks the bank for
 * each manifest or plain file their metadata names.
 */
#include "bank_saved.h"

#include <stdio.h>
#include <string.h>

typedef struct {
  bank_missing_cb cb;
  void *data;
  size_t missing;
  bank_err_t first;
} saved_state_t;

static void report(saved_state_t *st, const Smaug__V1__Resource *r,
                   const char *section, const char *object, int code,
                   const char *msg) {
  if (st->missing++ == 0) {
    st->first.code = code;
    snprintf(st->first.msg, sizeof st->first.msg, "%s#%s: %s", r->type, r->id,
             msg);
  }
  if (st->cb != NULL)
    st->cb(st->data, r->type, r->id, section, object, msg);
}

/* What a metadata key claims: nothing (0), a manifest (1) or a plain
 * file (2); *object is the object it names (NULL: none named). */
static int claim_of(const char *key, const char **object) {
  static const struct {
    const char *prefix;
    int kind;
  } claims[] = {{BANK_SAVED_KEY, 1}, {BANK_SAVED_FILE_KEY, 2}};
  for (size_t i = 0; i < sizeof claims / sizeof claims[0]; i++) {
    size_t kl = strlen(claims[i].prefix);
    if (strncmp(key, claims[i].prefix, kl) != 0)
      continue;
    if (key[kl] == '\0')
      *object = NULL;
    else if (key[kl] == '.')
      *object = key + kl + 1;
    else
      continue;
    return claims[i].kind;
  }
  return 0;
}

/* Checks one metadata entry of resource `r`; returns 0 (checked, or not a
 * claim) or an OS error, described in *err. */
static int check_entry(bank_t *bank, const Smaug__V1__Resource *r,
                       const char *section, const char *key, const char *value,
                       unsigned flags, saved_state_t *st, bank_err_t *err) {
  const char *object;
  int kind = claim_of(key, &object);
  if (kind == 0)
    return 0;
  bank_err_t e = {0};
  /* A plain file is always named: the section itself is a directory. */
  if ((object != NULL && bank_check_object(object) != 0) ||
      (kind == 2 && object == NULL)) {
    report(st, r, section, object, UV_EINVAL,
           "metadata names an invalid object");
    return 0;
  }
  if (bank == NULL) {
    report(st, r, section, object, UV_ENOENT,
           "not in the bank: the bank has no data at all");
    return 0;
  }
  const char *want = (flags & BANK_SAVED_DIGEST) ? value : NULL;
  int rc = kind == 1 ? bank_find_manifest(bank, section, object, want, &e)
                     : bank_find_file(bank, section, object, want, &e);
  if (rc == UV_ENOENT || rc == BANK_ECORRUPT)
    report(st, r, section, object, UV_ENOENT, e.msg);
  else if (rc != 0 && err != NULL)
    snprintf(err->msg, sizeof err->msg, "%.60s#%.60s: %.120s", r->type, r->id,
             e.msg);
  return rc == UV_ENOENT || rc == BANK_ECORRUPT ? 0 : rc;
}

int bank_saved_check(bank_t *bank, const char *checkpoint_id,
                     Smaug__V1__ResourceResult *const *results, size_t n,
                     unsigned flags, bank_missing_cb cb, void *data,
                     size_t *missing, bank_err_t *err) {
  saved_state_t st = {cb, data, 0, {0}};
  char section[BANK_SECTION_MAX + 1];
  for (size_t i = 0; i < n; i++) {
    const Smaug__V1__ResourceResult *res = results[i];
    const Smaug__V1__Resource *r = res->resource;
    if (r == NULL || r->type == NULL || r->id == NULL ||
        res->status != SMAUG__V1__TASK_STATUS__TASK_STATUS_DONE)
      continue;
    int bad = snprintf(section, sizeof section, "checkpoints/%s/%s/%s",
                       checkpoint_id, r->type, r->id) >= (int)sizeof section ||
              bank_check_section(section) != 0;
    for (size_t j = 0; j < res->n_metadata; j++) {
      const Smaug__V1__ResourceResult__MetadataEntry *m = res->metadata[j];
      const char *object;
      if (m == NULL || m->key == NULL || m->value == NULL ||
          claim_of(m->key, &object) == 0)
        continue;
      if (bad) { /* the claim cannot be in any valid section */
        report(&st, r, "", NULL, UV_EINVAL,
               "no valid bank section for this resource");
        break;
      }
      int rc = check_entry(bank, r, section, m->key, m->value, flags, &st, err);
      if (rc != 0) {
        if (err != NULL)
          err->code = rc;
        return rc;
      }
    }
  }
  if (missing != NULL)
    *missing = st.missing;
  if (st.missing == 0)
    return 0;
  if (err != NULL)
    *err = st.first;
  return UV_ENOENT;
}
