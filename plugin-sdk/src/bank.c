/*
 * bank.c - objects in a resource's section of a file:// bank
 * (smaug/bank.h). Keys are validated before any path is built, so a key
 * can never leave the section; writes go through a temporary file, fsync
 * and rename, so readers never see a torn object.
 */
#include "sdk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_MAX    512
#define TMP_PREFIX ".tmp."

struct smaug_bank_s {
  char *dir; /* root + "/" + section */
};

static int valid_path(const char *key, size_t max) {
  size_t len = strlen(key);
  if (len == 0 || len > max || key[0] == '/')
    return 0;
  const char *seg = key;
  for (const char *c = key;; c++) {
    if (*c == '/' || *c == '\0') {
      size_t n = (size_t)(c - seg);
      if (n == 0 || (n == 1 && seg[0] == '.') ||
          (n == 2 && seg[0] == '.' && seg[1] == '.'))
        return 0;
      if (*c == '\0')
        return 1;
      seg = c + 1;
      continue;
    }
    int ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
             (*c >= '0' && *c <= '9') || *c == '.' || *c == '_' || *c == '-';
    if (!ok)
      return 0;
  }
}

int smaug_bank_check_key(const char *key) {
  if (key == NULL || !valid_path(key, KEY_MAX))
    return SMAUG_EINVAL;
  /* Temporary files are hidden from listings; keep keys out of their way. */
  const char *base = strrchr(key, '/');
  base = base != NULL ? base + 1 : key;
  if (strncmp(base, TMP_PREFIX, strlen(TMP_PREFIX)) == 0)
    return SMAUG_EINVAL;
  return 0;
}

int smaug_bank_open(const char *uri, const char *section, smaug_bank_t **out) {
  if (uri == NULL || section == NULL || out == NULL)
    return SMAUG_EINVAL;
  if (strncmp(uri, "file://", 7) != 0)
    return strstr(uri, "://") != NULL ? SMAUG_ENOSYS : SMAUG_EINVAL;
  const char *root = uri + 7;
  if (root[0] != '/' || !valid_path(section, 4096))
    return SMAUG_EINVAL;
  size_t rl = strlen(root);
  while (rl > 1 && root[rl - 1] == '/')
    rl--;
  smaug_bank_t *b = calloc(1, sizeof(*b));
  if (b == NULL)
    return SMAUG_ENOMEM;
  size_t n = rl + 1 + strlen(section) + 1;
  b->dir = malloc(n);
  if (b->dir == NULL) {
    free(b);
    return SMAUG_ENOMEM;
  }
  snprintf(b->dir, n, "%.*s/%s", (int)rl, root, section);
  *out = b;
  return 0;
}

void smaug_bank_free(smaug_bank_t *bank) {
  if (bank == NULL)
    return;
  free(bank->dir);
  free(bank);
}

const char *smaug_bank_dir(const smaug_bank_t *bank) {
  return bank->dir;
}

static char *join(const char *a, const char *b) {
  size_t n = strlen(a) + 1 + strlen(b) + 1;
  char *s = malloc(n);
  if (s != NULL)
    snprintf(s, n, "%s/%s", a, b);
  return s;
}

/* mkdir -p of every directory above `path`'s last component. */
static int mkdirs_for(char *path) {
  for (char *c = path + 1; *c != '\0'; c++) {
    if (*c != '/')
      continue;
    *c = '\0';
    int r = mkdir(path, 0700);
    int e = errno;
    *c = '/';
    if (r != 0 && e != EEXIST)
      return -e;
  }
  return 0;
}

static int fsync_dir(const char *path) {
  char *d = strdup(path);
  if (d == NULL)
    return SMAUG_ENOMEM;
  char *slash = strrchr(d, '/');
  if (slash != NULL && slash != d)
    *slash = '\0';
  int fd = open(d, O_RDONLY | O_DIRECTORY);
  free(d);
  if (fd < 0)
    return -errno;
  int r = fsync(fd) != 0 ? -errno : 0;
  close(fd);
  return r;
}

int smaug_bank_put(smaug_bank_t *bank, const char *key, const void *buf,
                   size_t len) {
  int err = smaug_bank_check_key(key);
  if (err != 0)
    return err;
  char *path = join(bank->dir, key);
  if (path == NULL)
    return SMAUG_ENOMEM;
  char *tmp = NULL;
  int fd = -1;
  if ((err = mkdirs_for(path)) != 0)
    goto out;
  /* The temporary name sits next to the object so rename is atomic. */
  char *slash = strrchr(path, '/');
  size_t tl = strlen(path) + 64;
  if ((tmp = malloc(tl)) == NULL) {
    err = SMAUG_ENOMEM;
    goto out;
  }
  snprintf(tmp, tl, "%.*s/" TMP_PREFIX "%s.XXXXXX", (int)(slash - path), path,
           slash + 1);
  if ((fd = mkstemp(tmp)) < 0) {
    err = -errno;
    goto out;
  }
  const char *p = buf;
  for (size_t off = 0; off < len;) {
    ssize_t w = write(fd, p + off, len - off);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      err = -errno;
      goto out_unlink;
    }
    off += (size_t)w;
  }
  if (fchmod(fd, 0600) != 0 || fsync(fd) != 0) {
    err = -errno;
    goto out_unlink;
  }
  if (close(fd) != 0) {
    fd = -1;
    err = -errno;
    goto out_unlink;
  }
  fd = -1;
  if (rename(tmp, path) != 0) {
    err = -errno;
    goto out_unlink;
  }
  err = fsync_dir(path);
  goto out;
out_unlink:
  unlink(tmp);
out:
  if (fd >= 0)
    close(fd);
  free(tmp);
  free(path);
  return err;
}

int smaug_bank_get(smaug_bank_t *bank, const char *key, void **buf,
                   size_t *len) {
  int err = smaug_bank_check_key(key);
  if (err != 0)
    return err;
  char *path = join(bank->dir, key);
  if (path == NULL)
    return SMAUG_ENOMEM;
  int fd = open(path, O_RDONLY);
  free(path);
  if (fd < 0)
    return -errno;
  struct stat st;
  char *data = NULL;
  if (fstat(fd, &st) != 0) {
    err = -errno;
    goto out;
  }
  if (!S_ISREG(st.st_mode)) {
    err = SMAUG_ENOENT;
    goto out;
  }
  size_t size = (size_t)st.st_size;
  if ((data = malloc(size + 1)) == NULL) {
    err = SMAUG_ENOMEM;
    goto out;
  }
  size_t got = 0;
  while (got < size) {
    ssize_t r = read(fd, data + got, size - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      err = r < 0 ? -errno : SMAUG_EIO;
      goto out;
    }
    got += (size_t)r;
  }
  data[size] = '\0';
  *buf = data;
  *len = size;
  data = NULL;
out:
  free(data);
  close(fd);
  return err;
}

typedef struct {
  char **v;
  size_t n, cap;
} strvec_t;

static int vec_push(strvec_t *v, char *s) {
  if (v->n + 1 >= v->cap) {
    size_t cap = v->cap ? v->cap * 2 : 16;
    char **nv = realloc(v->v, cap * sizeof(*nv));
    if (nv == NULL)
      return SMAUG_ENOMEM;
    v->v = nv;
    v->cap = cap;
  }
  v->v[v->n++] = s;
  v->v[v->n] = NULL;
  return 0;
}

/* Appends the regular files under dir/rel to `v` as keys. */
static int walk(const char *dir, const char *rel, strvec_t *v) {
  char *path = rel[0] != '\0' ? join(dir, rel) : strdup(dir);
  if (path == NULL)
    return SMAUG_ENOMEM;
  DIR *d = opendir(path);
  free(path);
  if (d == NULL)
    return errno == ENOENT && rel[0] == '\0' ? 0 : -errno;
  int err = 0;
  struct dirent *e;
  while (err == 0 && (e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.' &&
        (e->d_name[1] == '\0' || strcmp(e->d_name, "..") == 0 ||
         strncmp(e->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0))
      continue;
    char *k = rel[0] != '\0' ? join(rel, e->d_name) : strdup(e->d_name);
    if (k == NULL) {
      err = SMAUG_ENOMEM;
      break;
    }
    char *full = join(dir, k);
    struct stat st;
    if (full == NULL) {
      free(k);
      err = SMAUG_ENOMEM;
      break;
    }
    if (lstat(full, &st) != 0) {
      err = errno == ENOENT ? 0 : -errno; /* removed meanwhile */
      free(k);
    } else if (S_ISDIR(st.st_mode)) {
      err = walk(dir, k, v);
      free(k);
    } else if (S_ISREG(st.st_mode)) {
      if ((err = vec_push(v, k)) != 0)
        free(k);
    } else {
      free(k);
    }
    free(full);
  }
  closedir(d);
  return err;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int smaug_bank_list(smaug_bank_t *bank, const char *prefix, char ***keys,
                    size_t *n) {
  strvec_t v = {0};
  int err = walk(bank->dir, "", &v);
  if (err == 0 && v.v == NULL)
    err = vec_push(&v, NULL) == 0 ? 0 : SMAUG_ENOMEM, v.n = 0;
  if (err != 0) {
    for (size_t i = 0; i < v.n; i++)
      free(v.v[i]);
    free(v.v);
    return err;
  }
  size_t pl = prefix != NULL ? strlen(prefix) : 0, w = 0;
  for (size_t i = 0; i < v.n; i++) {
    if (pl == 0 || strncmp(v.v[i], prefix, pl) == 0)
      v.v[w++] = v.v[i];
    else
      free(v.v[i]);
  }
  v.v[w] = NULL;
  qsort(v.v, w, sizeof(char *), cmp_str);
  *keys = v.v;
  if (n != NULL)
    *n = w;
  return 0;
}

void smaug_bank_list_free(char **keys) {
  if (keys == NULL)
    return;
  for (char **k = keys; *k != NULL; k++)
    free(*k);
  free(keys);
}

int smaug_bank_delete(smaug_bank_t *bank, const char *key) {
  int err = smaug_bank_check_key(key);
  if (err != 0)
    return err;
  char *path = join(bank->dir, key);
  if (path == NULL)
    return SMAUG_ENOMEM;
  err = unlink(path) != 0 ? -errno : 0;
  free(path);
  return err;
}

static int rm_tree(const char *path) {
  DIR *d = opendir(path);
  if (d == NULL)
    return errno == ENOENT ? 0 : -errno;
  int err = 0;
  struct dirent *e;
  while (err == 0 && (e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    char *full = join(path, e->d_name);
    if (full == NULL) {
      err = SMAUG_ENOMEM;
      break;
    }
    struct stat st;
    if (lstat(full, &st) == 0 && S_ISDIR(st.st_mode))
      err = rm_tree(full);
    else if (unlink(full) != 0 && errno != ENOENT)
      err = -errno;
    free(full);
  }
  closedir(d);
  if (err == 0 && rmdir(path) != 0 && errno != ENOENT)
    err = -errno;
  return err;
}

int smaug_bank_delete_all(smaug_bank_t *bank) {
  return rm_tree(bank->dir);
}
