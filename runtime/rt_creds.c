/*
 * rt_creds.c - credentials (rt_creds.h): reading and checking the PEM files
 * with OpenSSL, and turning them into gRPC core's server and channel
 * credentials.
 *
 * Server TLS credentials never hand gRPC a fixed certificate: each
 * listener gets its own grpc_server_credentials built on a certificate
 * config fetcher, which gRPC calls on its own threads at every new
 * handshake. The fetcher answers NEW (with a fresh config) when the
 * credentials' generation moved since that listener last fetched, else
 * UNCHANGED. The PEM strings and the generation are therefore guarded by a
 * mutex; everything else is loop-thread only.
 */
#include "rt_creds.h"

#include <errno.h>
#include <fcntl.h>
#include <grpc/grpc_security.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rt_internal.h"

/* A PEM file larger than this is not a certificate chain or a key. */
#define RT_PEM_MAX (1024 * 1024)

typedef enum { CREDS_INSECURE, CREDS_SERVER, CREDS_CLIENT } creds_kind_t;

struct rt_creds_s {
  int refs;
  creds_kind_t kind;
  char *cert_path, *key_path, *ca_path, *server_name;

  uv_mutex_t mu; /* guards the three PEMs and gen (the fetcher's threads) */
  char *pem_cert, *pem_key, *pem_ca;
  unsigned gen;

  grpc_channel_credentials *chan; /* client: made from the current PEMs */
  size_t n_md;
  char **md; /* key, value, key, value... */
  int used;  /* a channel was made: metadata is frozen */
};

/* One TLS listener: what its fetcher last handed to gRPC. */
struct rt_listener_s {
  rt_creds_t *creds;
  unsigned fetched_gen;
  int fetched;
};

static void set_why(char *why, size_t why_len, const char *fmt, const char *a,
                    const char *b) {
  if (why_len > 0)
    snprintf(why, why_len, fmt, a, b);
}

/* OpenSSL's last error as text, for a message. */
static const char *ssl_error(char *buf, size_t len) {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0)
    return "not PEM";
  ERR_error_string_n(e, buf, len);
  return buf;
}

/* Reads `path` into a new NUL-terminated string. A private key (`secret`)
 * must not be readable by group or others. */
static int read_pem(const char *path, int secret, char **out, char *why,
                    size_t why_len) {
  *out = NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = -errno;
    set_why(why, why_len, "cannot read %s: %s", path, uv_strerror(e));
    return e;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    set_why(why, why_len, "%s is not a regular file%s", path, "");
    return UV_EINVAL;
  }
  if (secret && (st.st_mode & 077) != 0) {
    close(fd);
    char mode[16];
    snprintf(mode, sizeof(mode), "%04o", (unsigned)(st.st_mode & 07777));
    set_why(why, why_len,
            "%s is readable by its group or others (mode %s): a private key "
            "must be mode 0600 or stricter",
            path, mode);
    return UV_EPERM;
  }
  if (st.st_size <= 0 || st.st_size > RT_PEM_MAX) {
    close(fd);
    set_why(why, why_len, "%s: %s", path,
            st.st_size <= 0 ? "empty file" : "too large for a PEM file");
    return UV_EINVAL;
  }
  char *buf = malloc((size_t)st.st_size + 1);
  if (buf == NULL) {
    close(fd);
    return UV_ENOMEM;
  }
  size_t got = 0;
  while (got < (size_t)st.st_size) {
    ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      int e = n < 0 ? -errno : UV_EIO;
      close(fd);
      free(buf);
      set_why(why, why_len, "cannot read %s: %s", path, uv_strerror(e));
      return e;
    }
    got += (size_t)n;
  }
  close(fd);
  buf[got] = '\0';
  *out = buf;
  return 0;
}

/* The first certificate of a PEM string, or NULL. */
static X509 *pem_cert(const char *pem) {
  BIO *bio = BIO_new_mem_buf(pem, -1);
  if (bio == NULL)
    return NULL;
  X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
  BIO_free(bio);
  return x;
}

/* Checks the PEM strings: a certificate in `cert` and `ca`, a key in `key`
 * that belongs to `cert`. */
static int check_pems(const rt_creds_t *c, const char *cert, const char *key,
                      const char *ca, char *why, size_t why_len) {
  char err[256];
  if (ca != NULL) {
    X509 *x = pem_cert(ca);
    if (x == NULL) {
      set_why(why, why_len, "%s: no certificate in it (%s)", c->ca_path,
              ssl_error(err, sizeof(err)));
      return UV_EINVAL;
    }
    X509_free(x);
  }
  if (cert == NULL)
    return 0;
  X509 *x = pem_cert(cert);
  if (x == NULL) {
    set_why(why, why_len, "%s: no certificate in it (%s)", c->cert_path,
            ssl_error(err, sizeof(err)));
    return UV_EINVAL;
  }
  BIO *bio = BIO_new_mem_buf(key, -1);
  EVP_PKEY *pk =
      bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
  BIO_free(bio);
  int rc = 0;
  if (pk == NULL) {
    set_why(why, why_len, "%s: no private key in it (%s)", c->key_path,
            ssl_error(err, sizeof(err)));
    rc = UV_EINVAL;
  } else if (X509_check_private_key(x, pk) != 1) {
    ERR_clear_error();
    set_why(why, why_len, "%s is not the key of the certificate in %s",
            c->key_path, c->cert_path);
    rc = UV_EINVAL;
  }
  EVP_PKEY_free(pk);
  X509_free(x);
  return rc;
}

/* Reads and checks every file of `c`; on success swaps the new PEMs in
 * and moves the generation on. */
static int load(rt_creds_t *c, char *why, size_t why_len) {
  char *cert = NULL, *key = NULL, *ca = NULL;
  int err = 0;
  if (c->cert_path != NULL &&
      ((err = read_pem(c->cert_path, 0, &cert, why, why_len)) != 0 ||
       (err = read_pem(c->key_path, 1, &key, why, why_len)) != 0))
    goto out;
  if (c->ca_path != NULL &&
      (err = read_pem(c->ca_path, 0, &ca, why, why_len)) != 0)
    goto out;
  if ((err = check_pems(c, cert, key, ca, why, why_len)) != 0)
    goto out;
  grpc_channel_credentials *chan = NULL;
  if (c->kind == CREDS_CLIENT) {
    grpc_ssl_pem_key_cert_pair pair = {key, cert};
    chan = grpc_ssl_credentials_create(ca, cert != NULL ? &pair : NULL, NULL,
                                       NULL);
    if (chan == NULL) {
      set_why(why, why_len, "gRPC refused the TLS files%s%s", "", "");
      err = UV_EINVAL;
      goto out;
    }
    if (c->chan != NULL)
      grpc_channel_credentials_release(c->chan);
    c->chan = chan;
  }
  uv_mutex_lock(&c->mu);
  char *old_cert = c->pem_cert, *old_key = c->pem_key, *old_ca = c->pem_ca;
  c->pem_cert = cert;
  c->pem_key = key;
  c->pem_ca = ca;
  c->gen++;
  uv_mutex_unlock(&c->mu);
  cert = old_cert;
  key = old_key;
  ca = old_ca;
out:
  free(cert);
  if (key != NULL)
    memset(key, 0, strlen(key));
  free(key);
  free(ca);
  return err;
}

static int creds_new(creds_kind_t kind, rt_creds_t **out) {
  rt_creds_t *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return UV_ENOMEM;
  if (uv_mutex_init(&c->mu) != 0) {
    free(c);
    return UV_ENOMEM;
  }
  c->refs = 1;
  c->kind = kind;
  *out = c;
  return 0;
}

static int dup_path(const char *s, char **out) {
  *out = NULL;
  if (s == NULL)
    return 0;
  *out = strdup(s);
  return *out == NULL ? UV_ENOMEM : 0;
}

static int creds_tls(creds_kind_t kind, const rt_tls_files_t *f,
                     rt_creds_t **out, char *why, size_t why_len) {
  if (why_len > 0)
    why[0] = '\0';
  if (f == NULL || out == NULL)
    return UV_EINVAL;
  if ((f->cert == NULL) != (f->key == NULL) ||
      (kind == CREDS_SERVER && f->cert == NULL)) {
    set_why(why, why_len, "%s",
            kind == CREDS_SERVER
                ? "TLS needs both a certificate and its key"
                : "a client certificate needs its key, and a key its "
                  "certificate",
            "");
    return UV_EINVAL;
  }
  rt_creds_t *c;
  int err = creds_new(kind, &c);
  if (err != 0)
    return err;
  if ((err = dup_path(f->cert, &c->cert_path)) != 0 ||
      (err = dup_path(f->key, &c->key_path)) != 0 ||
      (err = dup_path(f->ca, &c->ca_path)) != 0 ||
      (err = dup_path(kind == CREDS_CLIENT ? f->server_name : NULL,
                      &c->server_name)) != 0 ||
      (err = load(c, why, why_len)) != 0) {
    rt_creds_release(c);
    return err;
  }
  *out = c;
  return 0;
}

int rt_creds_insecure(rt_creds_t **out) {
  if (out == NULL)
    return UV_EINVAL;
  return creds_new(CREDS_INSECURE, out);
}

int rt_creds_tls_server(const rt_tls_files_t *f, rt_creds_t **out, char *why,
                        size_t why_len) {
  return creds_tls(CREDS_SERVER, f, out, why, why_len);
}

int rt_creds_tls_client(const rt_tls_files_t *f, rt_creds_t **out, char *why,
                        size_t why_len) {
  return creds_tls(CREDS_CLIENT, f, out, why, why_len);
}

int rt_creds_reload(rt_creds_t *c, char *why, size_t why_len) {
  if (why_len > 0)
    why[0] = '\0';
  if (c == NULL)
    return UV_EINVAL;
  if (c->kind == CREDS_INSECURE)
    return 0;
  return load(c, why, why_len);
}

int rt_creds_is_tls(const rt_creds_t *c) {
  return c != NULL && c->kind != CREDS_INSECURE;
}

int rt_creds_requires_client_cert(const rt_creds_t *c) {
  return c != NULL && c->kind == CREDS_SERVER && c->ca_path != NULL;
}

/* A gRPC header name: lowercase letters, digits, '-', '_', '.'; not a
 * reserved one. A value: printable ASCII. */
static int md_ok(const char *key, const char *value) {
  if (*key == '\0' || *key == ':' || strncmp(key, "grpc-", 5) == 0)
    return 0;
  for (const char *p = key; *p != '\0'; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
          *p == '_' || *p == '.'))
      return 0;
  for (const char *p = value; *p != '\0'; p++)
    if (*p < 0x20 || *p > 0x7e)
      return 0;
  return 1;
}

int rt_creds_add_metadata(rt_creds_t *c, const char *key, const char *value) {
  if (c == NULL || key == NULL || value == NULL || c->used ||
      !md_ok(key, value))
    return UV_EINVAL;
  char **md = realloc(c->md, (c->n_md + 1) * 2 * sizeof(*md));
  if (md == NULL)
    return UV_ENOMEM;
  c->md = md;
  md[c->n_md * 2] = strdup(key);
  md[c->n_md * 2 + 1] = strdup(value);
  if (md[c->n_md * 2] == NULL || md[c->n_md * 2 + 1] == NULL) {
    free(md[c->n_md * 2]);
    free(md[c->n_md * 2 + 1]);
    return UV_ENOMEM;
  }
  c->n_md++;
  return 0;
}

rt_creds_t *rt_creds_ref(rt_creds_t *c) {
  if (c != NULL)
    c->refs++;
  return c;
}

void rt_creds_release(rt_creds_t *c) {
  if (c == NULL || --c->refs > 0)
    return;
  if (c->chan != NULL)
    grpc_channel_credentials_release(c->chan);
  for (size_t i = 0; i < c->n_md * 2; i++) {
    memset(c->md[i], 0, strlen(c->md[i])); /* a token, often */
    free(c->md[i]);
  }
  free(c->md);
  free(c->cert_path);
  free(c->key_path);
  free(c->ca_path);
  free(c->server_name);
  free(c->pem_cert);
  if (c->pem_key != NULL)
    memset(c->pem_key, 0, strlen(c->pem_key));
  free(c->pem_key);
  free(c->pem_ca);
  uv_mutex_destroy(&c->mu);
  free(c);
}

/* ------------------------------------------------ runtime-internal side */

static grpc_ssl_certificate_config_reload_status
fetch(void *user_data, grpc_ssl_server_certificate_config **config) {
  rt_listener_t *l = user_data;
  rt_creds_t *c = l->creds;
  grpc_ssl_certificate_config_reload_status st =
      GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;
  uv_mutex_lock(&c->mu);
  if (!l->fetched || l->fetched_gen != c->gen) {
    grpc_ssl_pem_key_cert_pair pair = {c->pem_key, c->pem_cert};
    /* gRPC 1.51 asserts that a fetched config has client roots even when
     * no client certificate is requested; then they are never used (no
     * CertificateRequest is sent), so the server's own chain stands in.
     * The strings are copied. */
    const char *roots = c->pem_ca != NULL ? c->pem_ca : c->pem_cert;
    *config = grpc_ssl_server_certificate_config_create(roots, &pair, 1);
    if (*config != NULL) {
      l->fetched = 1;
      l->fetched_gen = c->gen;
      st = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
    } else {
      st = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_FAIL;
    }
  }
  uv_mutex_unlock(&c->mu);
  return st;
}

int rt__creds_server(rt_creds_t *c, grpc_server_credentials **out,
                     rt_listener_t **listener) {
  *out = NULL;
  *listener = NULL;
  if (c == NULL || c->kind == CREDS_INSECURE) {
    *out = grpc_insecure_server_credentials_create();
    return *out == NULL ? UV_ENOMEM : 0;
  }
  if (c->kind != CREDS_SERVER)
    return UV_EINVAL;
  rt_listener_t *l = calloc(1, sizeof(*l));
  if (l == NULL)
    return UV_ENOMEM;
  l->creds = rt_creds_ref(c);
  grpc_ssl_server_credentials_options *o =
      grpc_ssl_server_credentials_create_options_using_config_fetcher(
          c->ca_path != NULL
              ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
              : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
          fetch, l);
  grpc_server_credentials *sc =
      o != NULL ? grpc_ssl_server_credentials_create_with_options(o) : NULL;
  if (sc == NULL) {
    rt__listener_free(l);
    return UV_ENOMEM;
  }
  *out = sc;
  *listener = l;
  return 0;
}

void rt__listener_free(rt_listener_t *l) {
  if (l == NULL)
    return;
  rt_creds_release(l->creds);
  free(l);
}

grpc_channel_credentials *rt__creds_channel(rt_creds_t *c) {
  if (c == NULL || c->kind != CREDS_CLIENT)
    return NULL;
  c->used = 1;
  return c->chan;
}

const char *rt__creds_server_name(const rt_creds_t *c) {
  return c != NULL ? c->server_name : NULL;
}

unsigned rt__creds_gen(const rt_creds_t *c) {
  return c != NULL ? c->gen : 0;
}

size_t rt__creds_metadata(rt_creds_t *c, const char *const **md) {
  if (c == NULL) {
    *md = NULL;
    return 0;
  }
  c->used = 1;
  *md = (const char *const *)c->md;
  return c->n_md;
}
