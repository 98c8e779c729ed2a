/*
 * sp_store.c - the bank calls of the sample plugins (see sp_store.h). The
 * only file of the samples that includes bank.h.
 */
#define _GNU_SOURCE
#include "sp_store.h"

#include "bank.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void set_msg(char *msg, size_t msglen, const bank_err_t *e, int code,
                    const char *what) {
  if (msg == NULL || msglen == 0)
    return;
  if (e->msg[0] != '\0')
    snprintf(msg, msglen, "bank: %s", e->msg);
  else
    snprintf(msg, msglen, "bank: %s: %s", what, uv_strerror(code));
}

static int open_bank(const char *uri, bank_t **out, char *msg, size_t msglen) {
  bank_err_t e = {0};
  int err = bank_open(uri, out, &e);
  if (err != 0)
    set_msg(msg, msglen, &e, err, uri);
  return err;
}

/* The manifest file of an object, by the layout documented in bank.h. */
static int manifest_path(const char *uri, const char *section,
                         const char *object, char *buf, size_t len) {
  const char *root = uri;
  if (strncmp(root, "file://", 7) == 0) {
    root += 7;
    if (strncmp(root, "localhost/", 10) == 0)
      root += 9;
  }
  if (root[0] != '/')
    return UV_EINVAL;
  int n = snprintf(buf, len, "%s/manifests/%s/%s.manifest.json", root, section,
                   object);
  return n < 0 || (size_t)n >= len ? UV_ENAMETOOLONG : 0;
}

static int manifest_sha256(const char *uri, const char *section,
                           const char *object, char out[65]) {
  char path[PATH_MAX];
  int err = manifest_path(uri, section, object, path, sizeof(path));
  if (err != 0)
    return err;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
    EVP_MD_CTX_free(ctx);
    close(fd);
    return UV_ENOMEM;
  }
  char buf[16384];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0)
    EVP_DigestUpdate(ctx, buf, (size_t)n);
  err = n < 0 ? -errno : 0;
  unsigned char md[32];
  unsigned int mdlen = 0;
  if (err == 0 && EVP_DigestFinal_ex(ctx, md, &mdlen) != 1)
    err = UV_EIO;
  EVP_MD_CTX_free(ctx);
  close(fd);
  for (unsigned i = 0; err == 0 && i < 32; i++)
    snprintf(out + 2 * i, 3, "%02x", md[i]);
  return err;
}

static void fill_info(sp_put_info_t *info, const bank_put_stats_t *st) {
  info->size = st->size;
  info->chunks = st->chunks;
  info->new_chunks = st->new_chunks;
  info->new_bytes = st->new_bytes;
  info->zero_bytes = st->zero_bytes;
}

static void to_bank_io(const sp_io_t *io, bank_io_t *b) {
  memset(b, 0, sizeof(*b));
  if (io == NULL)
    return;
  b->progress = io->progress;
  b->data = io->data;
  b->cancel = io->cancel;
}

static int finish_put(const char *uri, const char *section, const char *object,
                      const bank_put_stats_t *st, sp_put_info_t *info,
                      char *msg, size_t msglen) {
  sp_put_info_t out = {0};
  fill_info(&out, st);
  int err = manifest_sha256(uri, section, object, out.manifest_sha256);
  if (err != 0) {
    if (msg != NULL)
      snprintf(msg, msglen, "bank: reading the manifest of %s/%s: %s", section,
               object, uv_strerror(err));
    return err;
  }
  if (info != NULL)
    *info = out;
  return 0;
}

int sp_store_put_file(const char *uri, const char *section, const char *object,
                      const char *path, const sp_io_t *io, sp_put_info_t *info,
                      char *msg, size_t msglen) {
  bank_t *bank = NULL;
  int err = open_bank(uri, &bank, msg, msglen);
  if (err != 0)
    return err;
  bank_io_t bio;
  to_bank_io(io, &bio);
  bank_put_stats_t st;
  bank_err_t e = {0};
  err = bank_put_file(bank, section, object, path, &bio, &st, &e);
  bank_close(bank);
  if (err != 0) {
    set_msg(msg, msglen, &e, err, path);
    return err;
  }
  return finish_put(uri, section, object, &st, info, msg, msglen);
}

int sp_store_put_bytes(const char *uri, const char *section, const char *object,
                       const void *buf, size_t len, sp_put_info_t *info,
                       char *msg, size_t msglen) {
  bank_t *bank = NULL;
  int err = open_bank(uri, &bank, msg, msglen);
  if (err != 0)
    return err;
  bank_put_stats_t st;
  bank_err_t e = {0};
  err = bank_put_bytes(bank, section, object, buf, len, &st, &e);
  bank_close(bank);
  if (err != 0) {
    set_msg(msg, msglen, &e, err, object);
    return err;
  }
  return finish_put(uri, section, object, &st, info, msg, msglen);
}

static int check_manifest(const char *uri, const char *section,
                          const char *object, const char *want, char *msg,
                          size_t msglen) {
  if (want == NULL || want[0] == '\0')
    return 0;
  char got[65];
  int err = manifest_sha256(uri, section, object, got);
  if (err == UV_ENOENT) {
    if (msg != NULL)
      snprintf(msg, msglen, "bank: object %s/%s: no manifest", section, object);
    return err;
  }
  if (err != 0) {
    if (msg != NULL)
      snprintf(msg, msglen, "bank: reading the manifest of %s/%s: %s", section,
               object, uv_strerror(err));
    return err;
  }
  if (strcmp(got, want) != 0) {
    if (msg != NULL)
      snprintf(msg, msglen,
               "bank: object %s/%s: manifest sha256 %s, the checkpoint "
               "recorded %s",
               section, object, got, want);
    return BANK_ECORRUPT;
  }
  return 0;
}

int sp_store_get_file(const char *uri, const char *section, const char *object,
                      const char *dest, const char *want_manifest,
                      const sp_io_t *io, uint64_t *size, char *msg,
                      size_t msglen) {
  int err = check_manifest(uri, section, object, want_manifest, msg, msglen);
  if (err != 0)
    return err;
  bank_t *bank = NULL;
  if ((err = open_bank(uri, &bank, msg, msglen)) != 0)
    return err;
  bank_io_t bio;
  to_bank_io(io, &bio);
  bank_get_stats_t st;
  bank_err_t e = {0};
  err = bank_get_file(bank, section, object, dest, &bio, &st, &e);
  bank_close(bank);
  if (err != 0) {
    set_msg(msg, msglen, &e, err, object);
    return err;
  }
  if (size != NULL)
    *size = st.size;
  return 0;
}

int sp_store_get_bytes(const char *uri, const char *section, const char *object,
                       size_t max, char **out, size_t *len, char *msg,
                       size_t msglen) {
  bank_t *bank = NULL;
  int err = open_bank(uri, &bank, msg, msglen);
  if (err != 0)
    return err;
  void *buf = NULL;
  size_t n = 0;
  bank_err_t e = {0};
  err = bank_get_bytes(bank, section, object, max, &buf, &n, &e);
  bank_close(bank);
  if (err != 0) {
    set_msg(msg, msglen, &e, err, object);
    return err;
  }
  *out = buf;
  *len = n;
  return 0;
}

int sp_store_delete(const char *uri, const char *section, int gc,
                    uint64_t *freed, char *msg, size_t msglen) {
  bank_t *bank = NULL;
  int err = open_bank(uri, &bank, msg, msglen);
  if (err != 0)
    return err;
  bank_err_t e = {0};
  bank_gc_stats_t st = {0};
  err = bank_delete_section(bank, section, &e);
  if (err == 0 && gc)
    err = bank_gc(bank, NULL, &st, &e);
  bank_close(bank);
  if (err != 0) {
    set_msg(msg, msglen, &e, err, section);
    return err;
  }
  if (freed != NULL)
    *freed = st.bytes_freed;
  return 0;
}
