/*
 * auth_table.c - the token table of smaugd's API (see auth.h for the
 * contract and the token file format): parsing the file into a table
 * sorted by name and by hash, loading it with the secret-file checks,
 * and the lookups by name, hash and certificate identity.
 */
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bank.h"
#include "bank_chunk.h"
#include "bank_fs.h"
#include "rt_creds.h"
#include "rt_log.h"

/* Copies the field [p, p + n) into `out` (AUTH_MAX_ID_BYTES + 1 bytes)
 * when it is a valid name or tenant. */
static int copy_id(const char *p, size_t n, char *out) {
  if (n == 0 || n > AUTH_MAX_ID_BYTES)
    return UV_EINVAL;
  memcpy(out, p, n);
  out[n] = '\0';
  return bank_check_object(out);
}

static int parse_hash(const char *p, size_t n, uint8_t hash[AUTH_HASH_BYTES]) {
  const size_t plen = sizeof(AUTH_HASH_PREFIX) - 1;
  char hex[BANK_HEX_LEN + 1];
  if (n != plen + BANK_HEX_LEN || memcmp(p, AUTH_HASH_PREFIX, plen) != 0)
    return UV_EINVAL;
  memcpy(hex, p + plen, BANK_HEX_LEN);
  hex[BANK_HEX_LEN] = '\0';
  return bank_unhex(hex, hash);
}

/* Parses one token line [p, end) (no newline) into `tok`. */
static int parse_line(const char *p, const char *end, auth_token_t *tok,
                      char *why, size_t why_len) {
  const char *f[5];
  size_t fl[5], nf = 0;
  char role[16];
  while (p < end && nf < 5) {
    while (p < end && (*p == ' ' || *p == '\t'))
      p++;
    if (p == end)
      break;
    f[nf] = p;
    while (p < end && *p != ' ' && *p != '\t')
      p++;
    fl[nf] = (size_t)(p - f[nf]);
    nf++;
  }
  if (nf != 4) {
    snprintf(why, why_len, "%s fields, not the 4 of NAME ROLE TENANT HASH",
             nf < 4 ? "too few" : "too many");
    return UV_EINVAL;
  }
  if (copy_id(f[0], fl[0], tok->name) != 0) {
    snprintf(why, why_len, "the name does not match %s", AUTH_ID_PATTERN);
    return UV_EINVAL;
  }
  if (fl[1] >= sizeof(role) || (memcpy(role, f[1], fl[1]), role[fl[1]] = '\0',
                                auth_role_parse(role, &tok->role) != 0)) {
    snprintf(why, why_len, "the role is not admin, operator or viewer");
    return UV_EINVAL;
  }
  if (copy_id(f[2], fl[2], tok->tenant) != 0) {
    snprintf(why, why_len, "the tenant does not match %s", AUTH_ID_PATTERN);
    return UV_EINVAL;
  }
  const size_t cl = sizeof(AUTH_CERT_PREFIX) - 1;
  if (fl[3] > cl && memcmp(f[3], AUTH_CERT_PREFIX, cl) == 0) {
    if (fl[3] - cl > AUTH_MAX_CERT_BYTES) {
      snprintf(why, why_len, "the cert: identity is longer than %d bytes",
               AUTH_MAX_CERT_BYTES);
      return UV_EINVAL;
    }
    memcpy(tok->cert, f[3] + cl, fl[3] - cl);
    tok->cert[fl[3] - cl] = '\0';
    for (const char *c = tok->cert; *c; c++)
      if ((unsigned char)*c < 0x21 || (unsigned char)*c > 0x7e) {
        snprintf(why, why_len, "the cert: identity is not visible ASCII");
        return UV_EINVAL;
      }
  } else if (parse_hash(f[3], fl[3], tok->hash) != 0) {
    snprintf(why, why_len,
             "the last field is not sha256: and 64 lowercase hex digits, "
             "nor cert: and an identity");
    return UV_EINVAL;
  }
  return 0;
}

/* qsort orders: by name, or by hash, then by line. */
static int by_name(const void *a, const void *b) {
  const auth_token_t *x = *(auth_token_t *const *)a;
  const auth_token_t *y = *(auth_token_t *const *)b;
  int c = strcmp(x->name, y->name);
  return c ? c : (x->line > y->line) - (x->line < y->line);
}

static int by_hash(const void *a, const void *b) {
  const auth_token_t *x = *(auth_token_t *const *)a;
  const auth_token_t *y = *(auth_token_t *const *)b;
  int c = strcmp(x->cert, y->cert);
  c = c ? c : memcmp(x->hash, y->hash, AUTH_HASH_BYTES);
  return c ? c : (x->line > y->line) - (x->line < y->line);
}

/* Refuses a name, a hash or a cert: identity that is in `t` twice,
 * naming both lines; then
 * copies the hashes into one array for auth_table_by_hash. Sorting keeps
 * a large file from costing the loop time in the square of its size. */
static int check_unique(auth_table_t *t, char *why, size_t why_len) {
  const auth_token_t **v = malloc((t->n ? t->n : 1) * sizeof(*v));
  int rc = 0;
  if (v == NULL ||
      (t->hashes = malloc((t->n ? t->n : 1) * sizeof(*t->hashes))) == NULL) {
    free(v);
    snprintf(why, why_len, "out of memory");
    return UV_ENOMEM;
  }
  for (size_t i = 0; i < t->n; i++) {
    v[i] = &t->tokens[i];
    memcpy(t->hashes[i], t->tokens[i].hash, AUTH_HASH_BYTES);
  }
  qsort(v, t->n, sizeof(*v), by_name);
  for (size_t i = 1; i < t->n && rc == 0; i++)
    if (strcmp(v[i - 1]->name, v[i]->name) == 0) {
      snprintf(why, why_len, "line %u: the name %s is already on line %u",
               v[i]->line, v[i]->name, v[i - 1]->line);
      rc = UV_EINVAL;
    }
  qsort(v, t->n, sizeof(*v), by_hash);
  for (size_t i = 1; i < t->n && rc == 0; i++)
    if (strcmp(v[i - 1]->cert, v[i]->cert) == 0 &&
        memcmp(v[i - 1]->hash, v[i]->hash, AUTH_HASH_BYTES) == 0) {
      snprintf(why, why_len, "line %u: the same %s as line %u", v[i]->line,
               v[i]->cert[0] ? "cert: identity" : "hash", v[i - 1]->line);
      rc = UV_EINVAL;
    }
  free(v);
  return rc;
}

int auth_table_parse(const char *text, size_t len, auth_table_t **out,
                     char *why, size_t why_len) {
  auth_table_t *t = calloc(1, sizeof(*t));
  size_t cap = 0;
  unsigned line = 0;
  char what[160];
  int rc = 0;
  if (why_len > 0)
    why[0] = '\0';
  if (t == NULL)
    return UV_ENOMEM;
  for (const char *p = text, *end = text + len; p < end && rc == 0;) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *e = nl ? nl : end, *s = p;
    p = nl ? nl + 1 : end;
    line++;
    if (e > s && e[-1] == '\r')
      e--;
    while (s < e && (*s == ' ' || *s == '\t'))
      s++;
    if (memchr(s, '\0', (size_t)(e - s)) != NULL) {
      snprintf(why, why_len, "line %u: a NUL byte", line);
      rc = UV_EINVAL;
      break;
    }
    if (s == e || *s == '#')
      continue;
    if (t->n == cap) {
      size_t ncap = cap ? 2 * cap : 8;
      auth_token_t *nt = realloc(t->tokens, ncap * sizeof(*nt));
      if (nt == NULL) {
        rc = UV_ENOMEM;
        break;
      }
      t->tokens = nt;
      cap = ncap;
    }
    auth_token_t *tok = &t->tokens[t->n];
    memset(tok, 0, sizeof(*tok));
    tok->line = line;
    if ((rc = parse_line(s, e, tok, what, sizeof(what))) != 0) {
      snprintf(why, why_len, "line %u: %s", line, what);
      break;
    }
    t->n++;
  }
  if (rc == 0)
    rc = check_unique(t, why, why_len);
  if (rc != 0) {
    auth_table_free(t);
    return rc;
  }
  *out = t;
  return 0;
}

int auth_table_load(const char *path, auth_table_t **out, char **text_out,
                    size_t *len_out, char *why, size_t why_len) {
  struct stat st;
  char *text = NULL, what[200];
  size_t got = 0;
  auth_table_t *t = NULL;
  int rc = 0, fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    rc = -errno;
    snprintf(why, why_len, "cannot open %s: %s", path, strerror(errno));
    return rc;
  }
  if (fstat(fd, &st) != 0) {
    rc = -errno;
    snprintf(why, why_len, "cannot stat %s: %s", path, strerror(errno));
    goto out;
  }
  if (!S_ISREG(st.st_mode)) {
    rc = UV_EINVAL;
    snprintf(why, why_len, "%s is not a regular file", path);
    goto out;
  }
  if (st.st_mode & 077) {
    rc = UV_EPERM;
    snprintf(why, why_len,
             "%s is readable or writable by group or others (mode %04o); a "
             "token file must be 0600 or stricter: chmod 600 %s",
             path, (unsigned)(st.st_mode & 07777), path);
    goto out;
  }
  if (st.st_size > AUTH_MAX_FILE_BYTES) {
    rc = UV_E2BIG;
    snprintf(why, why_len, "%s is larger than %d bytes", path,
             AUTH_MAX_FILE_BYTES);
    goto out;
  }
  if ((text = malloc((size_t)st.st_size + 1)) == NULL) {
    rc = UV_ENOMEM;
    snprintf(why, why_len, "out of memory");
    goto out;
  }
  if ((rc = bank_fs_pread_all(fd, text, (size_t)st.st_size, 0, &got)) != 0) {
    snprintf(why, why_len, "cannot read %s: %s", path, uv_strerror(rc));
    goto out;
  }
  text[got] = '\0';
  if ((rc = auth_table_parse(text, got, &t, what, sizeof(what))) != 0) {
    snprintf(why, why_len, "%s %s", path, what);
    goto out;
  }
  *out = t;
  if (text_out != NULL) {
    *text_out = text;
    text = NULL;
  }
  if (len_out != NULL)
    *len_out = got;
out:
  free(text);
  close(fd);
  return rc;
}

const auth_token_t *auth_table_by_name(const auth_table_t *t,
                                       const char *name) {
  for (size_t i = 0; t != NULL && name != NULL && i < t->n; i++)
    if (strcmp(t->tokens[i].name, name) == 0)
      return &t->tokens[i];
  return NULL;
}

const auth_token_t *auth_table_by_hash(const auth_table_t *t,
                                       const uint8_t hash[AUTH_HASH_BYTES]) {
  const auth_token_t *found = NULL;
  /* Every entry is compared, and none stops early. A cert: line has no
   * token, whatever its (zero) hash. */
  for (size_t i = 0; t != NULL && i < t->n; i++)
    if (CRYPTO_memcmp(t->hashes[i], hash, AUTH_HASH_BYTES) == 0 &&
        t->tokens[i].cert[0] == '\0')
      found = &t->tokens[i];
  return found;
}

const auth_token_t *auth_table_by_cert(const auth_table_t *t,
                                       const char *const *ids, size_t n) {
  for (size_t i = 0; t != NULL && i < t->n; i++)
    for (size_t j = 0; t->tokens[i].cert[0] && j < n; j++)
      if (ids[j] != NULL && strcmp(t->tokens[i].cert, ids[j]) == 0)
        return &t->tokens[i];
  return NULL;
}

void auth_table_free(auth_table_t *t) {
  if (t == NULL)
    return;
  free(t->tokens);
  free(t->hashes);
  free(t);
}
