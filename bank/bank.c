/*
 * bank.c - the public bank API: opening a bank, putting and getting
 * objects, listing, verifying, deleting sections and collecting garbage.
 *
 * The per-chunk work runs through bank_pool; chunks and manifests are
 * bank_chunk and bank_manifest. Concurrency between processes rests on one
 * advisory lock file, <root>/lock: every put holds it shared from before
 * its first chunk-existence check until its manifest is renamed into
 * place, and GC holds it exclusive from its first manifest read to its
 * last unlink. So GC never sees a put half-way: a chunk a put decided to
 * reuse cannot be swept before that put's manifest exists. Reads (get,
 * verify, list) need no lock, because a chunk is only ever removed once no
 * manifest names it.
 */
#define _GNU_SOURCE
#include "bank.h"

#include "bank_chunk.h"
#include "bank_fs.h"
#include "bank_manifest.h"
#include "bank_pool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#define LOCK_FILE     "lock"
#define RESTORE_BLOCK 4096 /* granularity of holes in restored files */
#define NO_MANIFEST   "not in the bank (no manifest)"
#define NO_FILE       "not in the bank (no such file)"

/* snprintf for messages, where truncation is acceptable. */
static void say(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(char *buf, size_t size, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, size, fmt, ap);
  va_end(ap);
}

struct bank_s {
  int root_fd;
  int threads;
  int sync;
  int level;
};

/* ---- names and paths ---------------------------------------------------- */

static int check_component(const char *s, size_t n) {
  if (n == 0 || n > BANK_NAME_MAX)
    return UV_EINVAL;
  char c = s[0];
  if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
        (c >= '0' && c <= '9')))
    return UV_EINVAL;
  for (size_t i = 1; i < n; i++) {
    c = s[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
          (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
      return UV_EINVAL;
  }
  return 0;
}

int bank_check_section(const char *section) {
  if (section == NULL)
    return UV_EINVAL;
  size_t len = strlen(section);
  if (len == 0 || len > BANK_SECTION_MAX)
    return UV_EINVAL;
  const char *p = section;
  for (;;) {
    const char *slash = strchr(p, '/');
    size_t n = slash != NULL ? (size_t)(slash - p) : strlen(p);
    if (check_component(p, n) != 0)
      return UV_EINVAL;
    if (slash == NULL)
      return 0;
    p = slash + 1;
  }
}

int bank_check_object(const char *object) {
  if (object == NULL)
    return UV_EINVAL;
  return check_component(object, strlen(object));
}

static int check_names(const char *section, const char *object,
                       bank_err_t *err) {
  if (bank_check_section(section) != 0)
    return bank_fail(err, UV_EINVAL, "invalid bank section \"%.100s\"",
                     section != NULL ? section : "(null)");
  if (bank_check_object(object) != 0)
    return bank_fail(err, UV_EINVAL, "invalid object name \"%.100s\"",
                     object != NULL ? object : "(null)");
  return 0;
}

static void manifest_path(const char *section, const char *object, char *out,
                          size_t size) {
  snprintf(out, size, "manifests/%s/%s" BANK_MANIFEST_SUFFIX, section, object);
}

/* ---- open, close, settings ---------------------------------------------- */

int bank_open(const char *uri, bank_t **out, bank_err_t *err) {
  return bank_open_ex(uri, 0, out, err);
}

/* Creates the layout under the root open at `fd`. The 256 fan-out
 * directories are made once here, so that storing a chunk never needs a
 * mkdir. */
static int create_layout(int fd) {
  char dir[16];
  int rc = 0;
  for (int i = 0; i < 256 && rc == 0; i++) {
    snprintf(dir, sizeof(dir), "chunks/%02x", i);
    rc = bank_fs_mkdirs(fd, dir);
  }
  if (rc == 0)
    rc = bank_fs_mkdirs(fd, "manifests");
  if (rc == 0) {
    int lfd = openat(fd, LOCK_FILE, O_RDONLY | O_CREAT | O_CLOEXEC,
                     BANK_FS_FILE_MODE);
    if (lfd < 0)
      rc = -errno;
    else
      close(lfd);
  }
  return rc;
}

/* The root closes the whole bank to other users: a root this user owns
 * that is open to its group or others (a bank made before, or a folder
 * made by hand) is narrowed to 0700. A root owned by someone else is left
 * as its owner set it. */
static int restrict_root(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0)
    return -errno;
  if (st.st_uid != geteuid() || (st.st_mode & 0077) == 0)
    return 0;
  return fchmod(fd, st.st_mode & 0700) != 0 ? -errno : 0;
}

static int check_layout(int fd) {
  struct stat st;
  if (fstatat(fd, "chunks", &st, 0) != 0 || !S_ISDIR(st.st_mode) ||
      fstatat(fd, "manifests", &st, 0) != 0 || !S_ISDIR(st.st_mode))
    return UV_ENOENT;
  return 0;
}

int bank_open_ex(const char *uri, unsigned flags, bank_t **out,
                 bank_err_t *err) {
  if (uri == NULL || out == NULL || (flags & ~BANK_OPEN_EXISTING) != 0)
    return bank_fail(err, UV_EINVAL, "no bank URI");
  const char *path = uri;
  if (strncmp(uri, "file://", 7) == 0) {
    path = uri + 7;
    if (strncmp(path, "localhost/", 10) == 0)
      path += 9;
  }
  if (path[0] != '/' || strpbrk(path, "?#%") != NULL)
    return bank_fail(err, UV_EINVAL,
                     "unsupported bank URI \"%.200s\" (want file:///path)",
                     uri);
  int existing = (flags & BANK_OPEN_EXISTING) != 0;
  int rc = existing ? 0 : bank_fs_mkdirs(AT_FDCWD, path);
  if (rc != 0)
    return bank_fail(err, rc, "cannot create bank %.200s: %s", path,
                     uv_strerror(rc));
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    rc = -errno;
    return bank_fail(err, rc, "cannot open bank %.200s: %s", path,
                     uv_strerror(rc));
  }
  rc = existing ? check_layout(fd) : restrict_root(fd);
  if (rc == 0 && !existing)
    rc = create_layout(fd);
  bank_t *bank = rc == 0 ? calloc(1, sizeof(*bank)) : NULL;
  if (rc == 0 && bank == NULL)
    rc = UV_ENOMEM;
  if (rc != 0) {
    close(fd);
    if (existing && rc == UV_ENOENT)
      return bank_fail(err, rc, "no bank at %.200s", path);
    return bank_fail(err, rc, "cannot set up bank %.200s: %s", path,
                     uv_strerror(rc));
  }
  bank->root_fd = fd;
  bank->threads = 2;
  bank->sync = 1;
  bank->level = 1;
  *out = bank;
  return 0;
}

void bank_close(bank_t *bank) {
  if (bank == NULL)
    return;
  close(bank->root_fd);
  free(bank);
}

int bank_set_threads(bank_t *bank, int threads) {
  if (threads < 1 || threads > 16)
    return UV_EINVAL;
  bank->threads = threads;
  return 0;
}

void bank_set_sync(bank_t *bank, int on) {
  bank->sync = on != 0;
}

int bank_set_level(bank_t *bank, int level) {
  if (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel())
    return UV_EINVAL;
  bank->level = level;
  return 0;
}

/* ---- the bank lock ------------------------------------------------------ */

static int is_cancelled(const bank_io_t *io) {
  return io != NULL && io->cancel != NULL && atomic_load(io->cancel) != 0;
}

/* Takes the bank lock (shared or exclusive) on a new open file description,
 * so that threads of one process exclude each other like processes do.
 * Returns the fd to pass to unlock_bank. */
static int lock_bank(bank_t *bank, int op, const bank_io_t *io, int *out) {
  int fd = openat(bank->root_fd, LOCK_FILE, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  if (flock(fd, op | LOCK_NB) == 0) {
    *out = fd;
    return 0;
  }
  if (errno != EWOULDBLOCK) {
    int rc = -errno;
    close(fd);
    return rc;
  }
  if (io != NULL && io->lock_wait != NULL)
    io->lock_wait(io->data);
  for (;;) {
    /* Without a cancel flag, block; with one, poll so that cancellation
     * is noticed while waiting. */
    int rc = flock(fd, io != NULL && io->cancel != NULL ? op | LOCK_NB : op);
    if (rc == 0)
      break;
    if (errno != EINTR && errno != EWOULDBLOCK) {
      rc = -errno;
      close(fd);
      return rc;
    }
    if (is_cancelled(io)) {
      close(fd);
      return UV_ECANCELED;
    }
    if (errno == EWOULDBLOCK) {
      struct timespec ts = {0, 10 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
  }
  *out = fd;
  return 0;
}

static void unlock_bank(int fd) {
  close(fd); /* closing the description releases the flock */
}

/* ---- put ---------------------------------------------------------------- */

typedef struct {
  uint8_t hash[BANK_HASH_LEN];
  uint32_t len;
  uint8_t stored; /* 0: all zero, not stored */
} put_result_t;

typedef struct {
  bank_t *bank;
  int fd;             /* source file, or -1 */
  const uint8_t *mem; /* source bytes when fd < 0 */
  uint64_t size;
  uint32_t cs;
  uint64_t *index; /* item -> chunk number */
  put_result_t *res;
  atomic_uint_fast64_t new_chunks, new_bytes, zero_bytes, data_bytes;
} put_job_t;

static int put_item(void *arg, bank_worker_t *w, size_t item, uint64_t *bytes,
                    char *why, size_t why_size) {
  put_job_t *job = arg;
  uint64_t off = job->index[item] * job->cs;
  size_t len = (size_t)(job->size - off < job->cs ? job->size - off : job->cs);
  const uint8_t *data;
  if (job->fd >= 0) {
    size_t got = 0;
    int rc = bank_fs_pread_all(job->fd, w->raw, len, off, &got);
    if (rc != 0) {
      say(why, why_size, "read error at offset %llu: %s",
          (unsigned long long)off, uv_strerror(rc));
      return rc;
    }
    if (got != len) {
      say(why, why_size,
          "short read at offset %llu (the file shrank while being read)",
          (unsigned long long)off);
      return UV_EIO;
    }
    data = w->raw;
  } else {
    data = job->mem + off;
  }
  put_result_t *r = &job->res[item];
  r->len = (uint32_t)len;
  *bytes = len;
  atomic_fetch_add(&job->data_bytes, len);
  if (bank_is_zero(data, len)) {
    atomic_fetch_add(&job->zero_bytes, len);
    return 0;
  }
  int rc = bank_chunk_hash(w, data, len, r->hash);
  if (rc != 0) {
    say(why, why_size, "cannot hash the chunk at offset %llu",
        (unsigned long long)off);
    return rc;
  }
  uint64_t written = 0;
  char reason[160];
  rc = bank_chunk_store(job->bank->root_fd, w, job->bank->level, r->hash, data,
                        len, &written, reason, sizeof(reason));
  if (rc != 0) {
    char hex[BANK_HEX_LEN + 1];
    bank_hex(r->hash, hex);
    say(why, why_size, "chunk %s at offset %llu: %s", hex,
        (unsigned long long)off, reason);
    return rc;
  }
  r->stored = 1;
  if (written > 0) {
    atomic_fetch_add(&job->new_chunks, 1);
    atomic_fetch_add(&job->new_bytes, written);
  }
  return 0;
}

/* Lists the chunk numbers that overlap data (not holes) in `fd`. Without
 * SEEK_DATA support (or for memory), every chunk. */
static int data_chunks(int fd, uint64_t size, uint32_t cs, uint64_t **out,
                       size_t *n) {
  uint64_t nchunks = (size + cs - 1) / cs;
  uint64_t *index = malloc((nchunks > 0 ? nchunks : 1) * sizeof(*index));
  if (index == NULL)
    return UV_ENOMEM;
  size_t count = 0;
  int all = fd < 0;
  uint64_t off = 0;
  while (!all && off < size) {
    off_t d = lseek(fd, (off_t)off, SEEK_DATA);
    if (d < 0) {
      if (errno == ENXIO)
        break; /* only a hole is left */
      all = 1;
      break;
    }
    off_t h = lseek(fd, d, SEEK_HOLE);
    if (h < 0 || (uint64_t)h > size)
      h = (off_t)size;
    if (h <= d) {
      all = 1;
      break;
    }
    for (uint64_t c = (uint64_t)d / cs; c <= ((uint64_t)h - 1) / cs; c++)
      if (count == 0 || index[count - 1] < c)
        index[count++] = c;
    off = (uint64_t)h;
  }
  if (all)
    for (count = 0; count < nchunks; count++)
      index[count] = count;
  *out = index;
  *n = count;
  return 0;
}

/* Stores `size` bytes from `fd` (or from `mem` when fd < 0). */
static int put_common(bank_t *bank, const char *section, const char *object,
                      int fd, const void *mem, uint64_t size,
                      const bank_io_t *io, bank_put_stats_t *stats,
                      bank_err_t *err) {
  const char *what = "object";
  put_job_t job;
  memset(&job, 0, sizeof(job));
  job.bank = bank;
  job.fd = fd;
  job.mem = mem;
  job.size = size;
  job.cs = BANK_CHUNK_SIZE;
  bank_manifest_t m = {.size = size, .chunk_size = job.cs};
  char *text = NULL;
  size_t n = 0, text_len = 0, failed = SIZE_MAX;
  int lock_fd = -1;
  char why[256] = "";

  int rc = data_chunks(fd, size, job.cs, &job.index, &n);
  if (rc == 0 && (job.res = calloc(n > 0 ? n : 1, sizeof(*job.res))) == NULL)
    rc = UV_ENOMEM;
  if (rc != 0) {
    bank_fail(err, rc, "%s %s/%s: %s", what, section, object, uv_strerror(rc));
    goto out;
  }
  rc = lock_bank(bank, LOCK_SH, io, &lock_fd);
  if (rc != 0) {
    bank_fail(err, rc, "%s %s/%s: cannot lock the bank: %s", what, section,
              object, uv_strerror(rc));
    goto out;
  }
  size_t buf = size < job.cs ? (size_t)size : job.cs;
  rc = bank_pool_run(n, bank->threads, buf > 0 ? buf : 1, size, io, put_item,
                     &job, &failed, why, sizeof(why));
  if (rc == UV_ECANCELED) {
    bank_fail(err, rc, "%s %s/%s: cancelled", what, section, object);
    goto out;
  }
  if (rc != 0) {
    bank_fail(err, rc, "%s %s/%s: %s", what, section, object, why);
    goto out;
  }
  /* The manifest lists the stored chunks in offset order. */
  if ((m.chunks = calloc(n > 0 ? n : 1, sizeof(*m.chunks))) == NULL) {
    rc = bank_fail(err, UV_ENOMEM, "%s %s/%s: out of memory", what, section,
                   object);
    goto out;
  }
  for (size_t i = 0; i < n; i++) {
    if (!job.res[i].stored)
      continue;
    bank_mchunk_t *c = &m.chunks[m.n++];
    c->offset = job.index[i] * job.cs;
    c->length = job.res[i].len;
    memcpy(c->hash, job.res[i].hash, BANK_HASH_LEN);
  }
  rc = bank_manifest_encode(&m, object, &text, &text_len);
  char path[BANK_SECTION_MAX + BANK_NAME_MAX + 64];
  snprintf(path, sizeof(path), "manifests/%s", section);
  if (rc == 0)
    rc = bank_fs_mkdirs(bank->root_fd, path);
  /* Chunks must be durable before a manifest names them; one syncfs is
   * far cheaper than an fsync per chunk file. It runs even when this put
   * wrote no chunk, because a reused chunk may have been written a moment
   * ago by a concurrent put that has not synced yet. */
  if (rc == 0 && bank->sync && m.n > 0 && syncfs(bank->root_fd) != 0)
    rc = -errno;
  manifest_path(section, object, path, sizeof(path));
  if (rc == 0)
    rc = bank_fs_write_atomic(bank->root_fd, path, text, text_len, bank->sync);
  if (rc != 0) {
    bank_fail(err, rc, "%s %s/%s: cannot write the manifest: %s", what, section,
              object, uv_strerror(rc));
    goto out;
  }
  if (stats != NULL) {
    uint64_t read = atomic_load(&job.data_bytes);
    stats->size = size;
    stats->data_bytes = read;
    stats->zero_bytes = size - read + atomic_load(&job.zero_bytes);
    stats->chunks = m.n;
    stats->new_chunks = atomic_load(&job.new_chunks);
    stats->new_bytes = atomic_load(&job.new_bytes) + text_len;
  }
out:
  if (lock_fd >= 0)
    unlock_bank(lock_fd);
  free(text);
  bank_manifest_free(&m);
  free(job.res);
  free(job.index);
  return rc;
}

int bank_put_file(bank_t *bank, const char *section, const char *object,
                  const char *path, const bank_io_t *io,
                  bank_put_stats_t *stats, bank_err_t *err) {
  int rc = check_names(section, object, err);
  if (rc != 0)
    return rc;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    rc = -errno;
    return bank_fail(err, rc, "object %s/%s: cannot open %.100s: %s", section,
                     object, path, uv_strerror(rc));
  }
  struct stat st;
  off_t end = 0;
  if (fstat(fd, &st) != 0)
    rc = -errno;
  else if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
    rc = UV_EINVAL;
  else if ((end = lseek(fd, 0, SEEK_END)) < 0)
    rc = -errno;
  if (rc != 0) {
    close(fd);
    return bank_fail(err, rc, "object %s/%s: cannot store %.100s: %s", section,
                     object, path,
                     rc == UV_EINVAL ? "not a regular file or block device"
                                     : uv_strerror(rc));
  }
  rc = put_common(bank, section, object, fd, NULL, (uint64_t)end, io, stats,
                  err);
  close(fd);
  return rc;
}

int bank_put_bytes(bank_t *bank, const char *section, const char *object,
                   const void *buf, size_t len, bank_put_stats_t *stats,
                   bank_err_t *err) {
  int rc = check_names(section, object, err);
  if (rc != 0)
    return rc;
  if (buf == NULL && len > 0)
    return bank_fail(err, UV_EINVAL, "object %s/%s: no data", section, object);
  return put_common(bank, section, object, -1, buf, len, NULL, stats, err);
}

/* ---- get ---------------------------------------------------------------- */

typedef struct {
  bank_t *bank;
  const bank_manifest_t *m;
  int fd;       /* destination file, or -1 */
  uint8_t *mem; /* destination buffer when fd < 0 (zeroed) */
  atomic_uint_fast64_t written;
} get_job_t;

/* Writes the non-zero RESTORE_BLOCK-sized runs of buf; the zero ones stay
 * holes of the pre-sized file. */
static int write_sparse(int fd, const uint8_t *buf, size_t len, uint64_t off,
                        uint64_t *written) {
  size_t i = 0;
  while (i < len) {
    size_t b = len - i < RESTORE_BLOCK ? len - i : RESTORE_BLOCK;
    if (bank_is_zero(buf + i, b)) {
      i += b;
      continue;
    }
    size_t start = i;
    while (i < len) {
      b = len - i < RESTORE_BLOCK ? len - i : RESTORE_BLOCK;
      if (bank_is_zero(buf + i, b))
        break;
      i += b;
    }
    int rc = bank_fs_pwrite_all(fd, buf + start, i - start, off + start);
    if (rc != 0)
      return rc;
    *written += i - start;
  }
  return 0;
}

static void chunk_failure(const bank_mchunk_t *c, const char *reason, char *why,
                          size_t why_size) {
  char hex[BANK_HEX_LEN + 1];
  bank_hex(c->hash, hex);
  say(why, why_size, "chunk %s at offset %llu: %s", hex,
      (unsigned long long)c->offset, reason);
}

static int get_item(void *arg, bank_worker_t *w, size_t item, uint64_t *bytes,
                    char *why, size_t why_size) {
  get_job_t *job = arg;
  const bank_mchunk_t *c = &job->m->chunks[item];
  char reason[160];
  int rc = bank_chunk_load(job->bank->root_fd, w, c->hash, c->length, reason,
                           sizeof(reason));
  if (rc != 0) {
    chunk_failure(c, reason, why, why_size);
    return rc;
  }
  uint64_t written = 0;
  if (job->fd >= 0) {
    rc = write_sparse(job->fd, w->raw, c->length, c->offset, &written);
    if (rc != 0) {
      say(reason, sizeof(reason), "cannot write: %s", uv_strerror(rc));
      chunk_failure(c, reason, why, why_size);
      return rc;
    }
  } else {
    memcpy(job->mem + c->offset, w->raw, c->length);
    written = c->length;
  }
  atomic_fetch_add(&job->written, written);
  *bytes = c->length;
  return 0;
}

/* Reads the manifest file of section/object (names already checked) into
 * a new buffer (*text, free()). UV_ENOENT when there is none. */
static int read_manifest(bank_t *bank, const char *section, const char *object,
                         char **text, size_t *len, bank_err_t *err) {
  char path[BANK_SECTION_MAX + BANK_NAME_MAX + 64];
  manifest_path(section, object, path, sizeof(path));
  int rc = bank_fs_read_all(bank->root_fd, path, BANK_MANIFEST_MAX, text, len);
  if (rc == UV_ENOENT || rc == UV_ENOTDIR)
    return bank_fail(err, UV_ENOENT, "object %s/%s: " NO_MANIFEST, section,
                     object);
  if (rc != 0)
    return bank_fail(err, rc, "object %s/%s: cannot read the manifest: %s",
                     section, object, uv_strerror(rc));
  return 0;
}

/* Reads and checks the manifest of section/object into *m. */
static int load_manifest(bank_t *bank, const char *section, const char *object,
                         bank_manifest_t *m, bank_err_t *err) {
  char why[160];
  char *text = NULL;
  size_t len = 0;
  int rc = read_manifest(bank, section, object, &text, &len, err);
  if (rc != 0)
    return rc;
  rc = bank_manifest_decode(text, len, m, why, sizeof(why));
  free(text);
  if (rc != 0)
    return bank_fail(err, rc, "object %s/%s: %s", section, object, why);
  return 0;
}

static int run_get(bank_t *bank, const char *section, const char *object,
                   const bank_manifest_t *m, get_job_t *job,
                   const bank_io_t *io, bank_err_t *err) {
  uint32_t buf = 1;
  for (size_t i = 0; i < m->n; i++)
    if (m->chunks[i].length > buf)
      buf = m->chunks[i].length;
  char why[256] = "";
  size_t failed = SIZE_MAX;
  int rc = bank_pool_run(m->n, bank->threads, buf, m->size, io, get_item, job,
                         &failed, why, sizeof(why));
  if (rc == UV_ECANCELED)
    return bank_fail(err, rc, "object %s/%s: cancelled", section, object);
  if (rc != 0)
    return bank_fail(err, rc, "object %s/%s: %s", section, object, why);
  return 0;
}

int bank_get_file(bank_t *bank, const char *section, const char *object,
                  const char *dest_path, const bank_io_t *io,
                  bank_get_stats_t *stats, bank_err_t *err) {
  int rc = check_names(section, object, err);
  if (rc != 0)
    return rc;
  bank_manifest_t m = {0};
  if ((rc = load_manifest(bank, section, object, &m, err)) != 0)
    return rc;
  char tmp[PATH_MAX];
  int fd = -1, n = snprintf(tmp, sizeof(tmp), "%s.%ld.%lx.restore", dest_path,
                            (long)getpid(), (unsigned long)pthread_self());
  if (n < 0 || (size_t)n >= sizeof(tmp)) {
    rc = bank_fail(err, UV_ENAMETOOLONG, "object %s/%s: destination too long",
                   section, object);
    goto out;
  }
  fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || ftruncate(fd, (off_t)m.size) != 0) {
    rc = -errno;
    bank_fail(err, rc, "object %s/%s: cannot create %.100s: %s", section,
              object, tmp, uv_strerror(rc));
    goto out;
  }
  get_job_t job = {.bank = bank, .m = &m, .fd = fd};
  atomic_init(&job.written, 0);
  if ((rc = run_get(bank, section, object, &m, &job, io, err)) != 0)
    goto out;
  if (bank->sync && fsync(fd) != 0)
    rc = -errno;
  if (close(fd) != 0 && rc == 0)
    rc = -errno;
  fd = -1;
  if (rc == 0 && rename(tmp, dest_path) != 0)
    rc = -errno;
  if (rc == 0 && bank->sync) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", dest_path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
      slash[1] = '\0';
    else if (slash != NULL)
      *slash = '\0';
    rc = bank_fs_sync_dir(AT_FDCWD, slash != NULL ? dir : ".");
  }
  if (rc != 0) {
    bank_fail(err, rc, "object %s/%s: cannot finish %.100s: %s", section,
              object, dest_path, uv_strerror(rc));
    goto out;
  }
  if (stats != NULL) {
    stats->size = m.size;
    stats->chunks = m.n;
    stats->written_bytes = atomic_load(&job.written);
  }
out:
  if (fd >= 0)
    close(fd);
  if (rc != 0)
    unlink(tmp);
  bank_manifest_free(&m);
  return rc;
}

int bank_get_bytes(bank_t *bank, const char *section, const char *object,
                   size_t max, void **out, size_t *len, bank_err_t *err) {
  int rc = check_names(section, object, err);
  if (rc != 0)
    return rc;
  bank_manifest_t m = {0};
  if ((rc = load_manifest(bank, section, object, &m, err)) != 0)
    return rc;
  uint8_t *buf = NULL;
  if (m.size > max || m.size >= SIZE_MAX) {
    rc =
        bank_fail(err, UV_E2BIG, "object %s/%s: %llu bytes, over the %zu limit",
                  section, object, (unsigned long long)m.size, max);
    goto out;
  }
  if ((buf = calloc(1, (size_t)m.size + 1)) == NULL) {
    rc = bank_fail(err, UV_ENOMEM, "object %s/%s: out of memory", section,
                   object);
    goto out;
  }
  get_job_t job = {.bank = bank, .m = &m, .fd = -1, .mem = buf};
  atomic_init(&job.written, 0);
  if ((rc = run_get(bank, section, object, &m, &job, NULL, err)) != 0)
    goto out;
  *out = buf;
  *len = (size_t)m.size;
  buf = NULL;
out:
  free(buf);
  bank_manifest_free(&m);
  return rc;
}

/* ---- walking the manifests ---------------------------------------------- */

/* Called for every regular file under the walked directory: `dirfd` is its
 * directory, `section` its section ("" at the top), `name` its file name.
 * A nonzero return stops the walk and is returned by it. */
typedef int (*walk_fn)(void *data, int dirfd, const char *section,
                       const char *name);

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Walks the directory open at `fd` (closed here) in name order, so that
 * reports come out in a stable order. `section` is a PATH_MAX buffer. */
static int walk_dir(int fd, char *section, walk_fn fn, void *data) {
  DIR *d = fdopendir(fd);
  if (d == NULL) {
    int rc = -errno;
    close(fd);
    return rc;
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  int rc = 0;
  struct dirent *e;
  while ((errno = 0, e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 32;
      char **grown = realloc(names, cap * sizeof(*names));
      if (grown == NULL) {
        rc = UV_ENOMEM;
        goto out;
      }
      names = grown;
    }
    if ((names[n] = strdup(e->d_name)) == NULL) {
      rc = UV_ENOMEM;
      goto out;
    }
    n++;
  }
  if (errno != 0) {
    rc = -errno;
    goto out;
  }
  if (n > 0)
    qsort(names, n, sizeof(*names), cmp_str);
  size_t base = strlen(section);
  for (size_t i = 0; i < n && rc == 0; i++) {
    struct stat st;
    if (fstatat(dirfd(d), names[i], &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno != ENOENT) /* removed meanwhile: skip */
        rc = -errno;
      continue;
    }
    if (S_ISREG(st.st_mode)) {
      rc = fn(data, dirfd(d), section, names[i]);
    } else if (S_ISDIR(st.st_mode)) {
      if (base + strlen(names[i]) + 2 >= PATH_MAX) {
        rc = UV_ENAMETOOLONG;
        break;
      }
      snprintf(section + base, PATH_MAX - base, "%s%s", base ? "/" : "",
               names[i]);
      int sub = openat(dirfd(d), names[i],
                       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub >= 0)
        rc = walk_dir(sub, section, fn, data);
      else if (errno != ENOENT)
        rc = -errno;
      section[base] = '\0';
    }
  }
out:
  for (size_t i = 0; i < n; i++)
    free(names[i]);
  free(names);
  closedir(d);
  return rc;
}

/* Walks manifests/<prefix> ("" for all). A missing prefix walks nothing. */
static int walk_manifests(bank_t *bank, const char *prefix, walk_fn fn,
                          void *data) {
  char path[PATH_MAX], section[PATH_MAX];
  snprintf(path, sizeof(path), "manifests%s%s", prefix[0] ? "/" : "", prefix);
  snprintf(section, sizeof(section), "%s", prefix);
  int fd = openat(bank->root_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
  return walk_dir(fd, section, fn, data);
}

/* If `name` is "<object>.manifest.json" with a valid object, copies the
 * object into `object` (BANK_NAME_MAX + 1 bytes) and returns 1. */
static int manifest_object(const char *name, char *object) {
  size_t n = strlen(name), s = strlen(BANK_MANIFEST_SUFFIX);
  if (n <= s || n - s > BANK_NAME_MAX ||
      strcmp(name + n - s, BANK_MANIFEST_SUFFIX) != 0)
    return 0;
  memcpy(object, name, n - s);
  object[n - s] = '\0';
  return bank_check_object(object) == 0;
}

/* ---- list --------------------------------------------------------------- */

int bank_list(bank_t *bank, const char *section,
              int (*cb)(void *data, const char *object), void *data,
              bank_err_t *err) {
  if (bank_check_section(section) != 0)
    return bank_fail(err, UV_EINVAL, "invalid bank section \"%.100s\"",
                     section != NULL ? section : "(null)");
  char path[PATH_MAX], object[BANK_NAME_MAX + 1];
  snprintf(path, sizeof(path), "manifests/%s", section);
  int fd = openat(bank->root_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR)
      return 0;
    int rc = -errno;
    return bank_fail(err, rc, "section %s: %s", section, uv_strerror(rc));
  }
  DIR *d = fdopendir(fd);
  if (d == NULL) {
    int rc = -errno;
    close(fd);
    return bank_fail(err, rc, "section %s: %s", section, uv_strerror(rc));
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  int rc = 0;
  struct dirent *e;
  while (rc == 0 && (e = readdir(d)) != NULL) {
    if (!manifest_object(e->d_name, object))
      continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 32;
      char **grown = realloc(names, cap * sizeof(*names));
      if (grown == NULL) {
        rc = UV_ENOMEM;
        break;
      }
      names = grown;
    }
    if ((names[n] = strdup(object)) == NULL)
      rc = UV_ENOMEM;
    else
      n++;
  }
  closedir(d);
  if (rc == 0 && n > 0)
    qsort(names, n, sizeof(*names), cmp_str);
  for (size_t i = 0; i < n && rc == 0; i++)
    rc = cb(data, names[i]);
  for (size_t i = 0; i < n; i++)
    free(names[i]);
  free(names);
  if (rc == UV_ENOMEM)
    return bank_fail(err, rc, "section %s: out of memory", section);
  return rc;
}

/* ---- presence ----------------------------------------------------------- */

int bank_manifest_digest(bank_t *bank, const char *section, const char *object,
                         char hex[65], bank_err_t *err) {
  int rc = check_names(section, object, err);
  if (rc != 0)
    return rc;
  char *text = NULL;
  size_t len = 0;
  uint8_t md[BANK_HASH_LEN];
  if ((rc = read_manifest(bank, section, object, &text, &len, err)) != 0)
    return rc;
  rc = bank_sha256(text, len, md);
  free(text);
  if (rc != 0)
    return bank_fail(err, rc, "object %s/%s: hashing the manifest failed",
                     section, object);
  bank_hex(md, hex);
  return 0;
}

typedef struct {
  bank_t *bank;
  const char *section;
  const char *want; /* NULL: any manifest will do */
  bank_err_t *err;
  char other[BANK_NAME_MAX + 1]; /* the first manifest that did not match */
  char other_hex[65];
} find_t;

/* bank_list callback: 1 (stop) at the first manifest that matches. */
static int find_one(void *data, const char *object) {
  find_t *f = data;
  char got[65];
  if (f->want == NULL)
    return 1;
  int rc = bank_manifest_digest(f->bank, f->section, object, got, f->err);
  if (rc == UV_ENOENT) /* removed since the listing */
    return 0;
  if (rc != 0)
    return rc;
  if (strcmp(got, f->want) == 0)
    return 1;
  if (f->other[0] == '\0') {
    snprintf(f->other, sizeof f->other, "%s", object);
    memcpy(f->other_hex, got, sizeof f->other_hex);
  }
  return 0;
}

int bank_find_manifest(bank_t *bank, const char *section, const char *object,
                       const char *manifest_sha256, bank_err_t *err) {
  if (object == NULL) {
    find_t f = {bank, section, manifest_sha256, err, "", ""};
    int rc = bank_list(bank, section, find_one, &f, err);
    if (rc == 1)
      return 0;
    if (rc != 0)
      return rc;
    if (f.other[0] != '\0')
      return bank_fail(err, BANK_ECORRUPT,
                       "object %s/%s: manifest sha256 %s, the checkpoint "
                       "recorded %.64s",
                       section, f.other, f.other_hex, manifest_sha256);
    return bank_fail(err, UV_ENOENT, "section %s: " NO_MANIFEST, section);
  }
  int rc = check_names(section, object, err);
  if (rc != 0)
    return rc;
  if (manifest_sha256 == NULL) {
    char path[BANK_SECTION_MAX + BANK_NAME_MAX + 64];
    struct stat st;
    manifest_path(section, object, path, sizeof(path));
    if (fstatat(bank->root_fd, path, &st, 0) == 0)
      return 0;
    rc = -errno;
    if (rc == UV_ENOENT || rc == UV_ENOTDIR)
      return bank_fail(err, UV_ENOENT, "object %s/%s: " NO_MANIFEST, section,
                       object);
    return bank_fail(err, rc, "object %s/%s: %s", section, object,
                     uv_strerror(rc));
  }
  char got[65];
  if ((rc = bank_manifest_digest(bank, section, object, got, err)) != 0)
    return rc;
  if (strcmp(got, manifest_sha256) != 0)
    return bank_fail(err, BANK_ECORRUPT,
                     "object %s/%s: manifest sha256 %s, the checkpoint "
                     "recorded %.64s",
                     section, object, got, manifest_sha256);
  return 0;
}

/* Hashes the open file `fd` to the end into `hex`. */
static int file_digest(int fd, char hex[65]) {
  static const size_t buf_size = 1u << 16;
  uint8_t md[BANK_HASH_LEN];
  unsigned int n = 0;
  int rc = UV_EIO;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  uint8_t *buf = malloc(buf_size);
  if (ctx == NULL || buf == NULL) {
    rc = UV_ENOMEM;
    goto out;
  }
  if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
    goto out;
  for (;;) {
    ssize_t got = read(fd, buf, buf_size);
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0) {
      rc = -errno;
      goto out;
    }
    if (got == 0)
      break;
    if (EVP_DigestUpdate(ctx, buf, (size_t)got) != 1)
      goto out;
  }
  if (EVP_DigestFinal_ex(ctx, md, &n) != 1 || n != BANK_HASH_LEN)
    goto out;
  bank_hex(md, hex);
  rc = 0;
out:
  free(buf);
  EVP_MD_CTX_free(ctx);
  return rc;
}

int bank_find_file(bank_t *bank, const char *section, const char *object,
                   const char *file_sha256, bank_err_t *err) {
  int rc = check_names(section, object, err);
  if (rc != 0)
    return rc;
  char path[BANK_SECTION_MAX + BANK_NAME_MAX + 8];
  snprintf(path, sizeof path, "%s/%s", section, object);
  int fd = openat(bank->root_fd, path,
                  O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  struct stat st;
  if (fd < 0) {
    rc = -errno;
    if (rc == UV_ENOENT || rc == UV_ENOTDIR || rc == UV_ELOOP)
      return bank_fail(err, UV_ENOENT, "file %s: " NO_FILE, path);
    return bank_fail(err, rc, "file %s: %s", path, uv_strerror(rc));
  }
  if (fstat(fd, &st) != 0) {
    rc = -errno;
    close(fd);
    return bank_fail(err, rc, "file %s: %s", path, uv_strerror(rc));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return bank_fail(err, UV_ENOENT, "file %s: " NO_FILE, path);
  }
  char got[65];
  rc = file_sha256 != NULL ? file_digest(fd, got) : 0;
  close(fd);
  if (rc != 0)
    return bank_fail(err, rc, "file %s: reading it: %s", path, uv_strerror(rc));
  if (file_sha256 != NULL && strcmp(got, file_sha256) != 0)
    return bank_fail(err, BANK_ECORRUPT,
                     "file %s: sha256 %s, the checkpoint recorded %.64s", path,
                     got, file_sha256);
  return 0;
}

/* ---- verify ------------------------------------------------------------- */

typedef struct {
  char *section;
  char object[BANK_NAME_MAX + 1];
  bank_manifest_t m;
  char why[160]; /* set when the manifest itself is bad */
  int bad;
} ventry_t;

typedef struct {
  bank_t *bank;
  ventry_t *list;
  size_t n, cap;
} vlist_t;

static int collect_entry(void *data, int dirfd, const char *section,
                         const char *name) {
  vlist_t *vl = data;
  char object[BANK_NAME_MAX + 1];
  if (name[0] == '.' || !manifest_object(name, object))
    return 0;
  if (vl->n == vl->cap) {
    size_t cap = vl->cap ? vl->cap * 2 : 32;
    ventry_t *grown = realloc(vl->list, cap * sizeof(*grown));
    if (grown == NULL)
      return UV_ENOMEM;
    vl->list = grown;
    vl->cap = cap;
  }
  ventry_t *v = &vl->list[vl->n];
  memset(v, 0, sizeof(*v));
  if ((v->section = strdup(section)) == NULL)
    return UV_ENOMEM;
  snprintf(v->object, sizeof(v->object), "%s", object);
  vl->n++;
  char *text = NULL;
  size_t len = 0;
  int rc = bank_fs_read_all(dirfd, name, BANK_MANIFEST_MAX, &text, &len);
  if (rc == UV_ENOMEM)
    return rc;
  if (rc != 0) {
    say(v->why, sizeof(v->why), "cannot read the manifest: %s",
        uv_strerror(rc));
    v->bad = rc;
    return 0;
  }
  rc = bank_manifest_decode(text, len, &v->m, v->why, sizeof(v->why));
  free(text);
  if (rc == UV_ENOMEM)
    return rc;
  v->bad = rc;
  return 0;
}

typedef struct {
  size_t item;
  int rc;
  char why[256];
} vproblem_t;

typedef struct {
  bank_t *bank;
  const bank_manifest_t *m;
  pthread_mutex_t mu;
  vproblem_t *problems;
  size_t n, cap;
  int oom;
} vjob_t;

static int verify_item(void *arg, bank_worker_t *w, size_t item,
                       uint64_t *bytes, char *why, size_t why_size) {
  vjob_t *job = arg;
  const bank_mchunk_t *c = &job->m->chunks[item];
  char reason[160];
  *bytes = c->length;
  int rc = bank_chunk_load(job->bank->root_fd, w, c->hash, c->length, reason,
                           sizeof(reason));
  if (rc == 0)
    return 0;
  /* Record and go on: verify reports every bad chunk. */
  pthread_mutex_lock(&job->mu);
  if (job->n == job->cap) {
    size_t cap = job->cap ? job->cap * 2 : 8;
    vproblem_t *grown = realloc(job->problems, cap * sizeof(*grown));
    if (grown == NULL) {
      job->oom = 1;
      pthread_mutex_unlock(&job->mu);
      return UV_ENOMEM;
    }
    job->problems = grown;
    job->cap = cap;
  }
  vproblem_t *p = &job->problems[job->n++];
  p->item = item;
  p->rc = rc;
  chunk_failure(c, reason, p->why, sizeof(p->why));
  pthread_mutex_unlock(&job->mu);
  (void)why;
  (void)why_size;
  return 0;
}

static int cmp_problem(const void *a, const void *b) {
  const vproblem_t *x = a, *y = b;
  return x->item < y->item ? -1 : x->item > y->item;
}

typedef struct {
  const bank_io_t *io;
  uint64_t base, total;
} vprogress_t;

static void verify_progress(void *data, uint64_t done, uint64_t total) {
  vprogress_t *vp = data;
  (void)total;
  vp->io->progress(vp->io->data, vp->base + done, vp->total);
}

typedef struct {
  bank_problem_cb cb;
  void *data;
  bank_verify_report_t *report;
  bank_err_t *err;
} vsink_t;

static void problem(vsink_t *sink, const char *section, const char *object,
                    int code, const char *what) {
  char msg[256];
  say(msg, sizeof(msg), "object %s/%s: %s", section, object, what);
  if (sink->report->bad_chunks == 0 && sink->report->bad_objects == 0)
    bank_fail(sink->err, code == BANK_ECORRUPT ? BANK_ECORRUPT : code, "%s",
              msg);
  if (sink->cb != NULL)
    sink->cb(sink->data, section, object, msg);
}

int bank_verify(bank_t *bank, const char *section_prefix, const bank_io_t *io,
                bank_problem_cb on_problem, void *problem_data,
                bank_verify_report_t *report, bank_err_t *err) {
  if (section_prefix == NULL ||
      (section_prefix[0] != '\0' && bank_check_section(section_prefix) != 0))
    return bank_fail(err, UV_EINVAL, "invalid bank section \"%.100s\"",
                     section_prefix != NULL ? section_prefix : "(null)");
  vlist_t vl = {.bank = bank};
  bank_verify_report_t rep = {0};
  vsink_t sink = {on_problem, problem_data, &rep, err};
  int rc = walk_manifests(bank, section_prefix, collect_entry, &vl);
  if (rc != 0) {
    bank_fail(err, rc, "cannot list manifests under \"%s\": %s", section_prefix,
              uv_strerror(rc));
    goto out;
  }
  uint64_t total = 0;
  for (size_t i = 0; i < vl.n; i++)
    for (size_t j = 0; j < vl.list[i].m.n; j++)
      total += vl.list[i].m.chunks[j].length;
  vprogress_t vp = {io, 0, total};
  bank_io_t wrapped = {0};
  if (io != NULL) {
    wrapped.cancel = io->cancel;
    if (io->progress != NULL) {
      wrapped.progress = verify_progress;
      wrapped.data = &vp;
    }
  }
  for (size_t i = 0; i < vl.n && rc == 0; i++) {
    ventry_t *v = &vl.list[i];
    rep.objects++;
    if (v->bad) {
      problem(&sink, v->section, v->object, v->bad, v->why);
      rep.bad_objects++;
      continue;
    }
    vjob_t job = {.bank = bank, .m = &v->m};
    pthread_mutex_init(&job.mu, NULL);
    uint32_t buf = 1;
    for (size_t j = 0; j < v->m.n; j++)
      if (v->m.chunks[j].length > buf)
        buf = v->m.chunks[j].length;
    char why[256];
    size_t failed;
    rc = bank_pool_run(v->m.n, bank->threads, buf, total, &wrapped, verify_item,
                       &job, &failed, why, sizeof(why));
    if (rc == 0) {
      if (job.n > 0)
        qsort(job.problems, job.n, sizeof(*job.problems), cmp_problem);
      for (size_t j = 0; j < job.n; j++) {
        problem(&sink, v->section, v->object, job.problems[j].rc,
                job.problems[j].why);
        rep.bad_chunks++;
      }
      if (job.n > 0)
        rep.bad_objects++;
      rep.chunks += v->m.n;
      for (size_t j = 0; j < v->m.n; j++)
        vp.base += v->m.chunks[j].length;
    }
    free(job.problems);
    pthread_mutex_destroy(&job.mu);
    if (rc == UV_ECANCELED)
      bank_fail(err, rc, "verify cancelled");
    else if (rc != 0)
      bank_fail(err, rc, "object %s/%s: %s", v->section, v->object,
                uv_strerror(rc));
  }
  if (rc == 0) {
    rep.bytes = vp.base;
    *report = rep;
    if (rep.bad_objects > 0)
      rc = BANK_ECORRUPT;
  }
out:
  for (size_t i = 0; i < vl.n; i++) {
    free(vl.list[i].section);
    bank_manifest_free(&vl.list[i].m);
  }
  free(vl.list);
  return rc;
}

/* ---- delete ------------------------------------------------------------- */

int bank_delete_section(bank_t *bank, const char *section, bank_err_t *err) {
  if (bank_check_section(section) != 0)
    return bank_fail(err, UV_EINVAL, "invalid bank section \"%.100s\"",
                     section != NULL ? section : "(null)");
  char path[PATH_MAX];
  snprintf(path, sizeof(path), "manifests/%s", section);
  int rc = bank_fs_remove_tree(bank->root_fd, path);
  if (rc != 0)
    return bank_fail(err, rc, "section %s: cannot delete: %s", section,
                     uv_strerror(rc));
  /* Tidy the now-empty parents; a non-empty one simply stays. */
  char *slash;
  while ((slash = strrchr(path, '/')) != NULL &&
         strcmp(path, "manifests") != 0) {
    *slash = '\0';
    if (strcmp(path, "manifests") == 0 ||
        unlinkat(bank->root_fd, path, AT_REMOVEDIR) != 0)
      break;
  }
  if (bank->sync)
    bank_fs_sync_dir(bank->root_fd, "manifests"); /* best effort */
  return 0;
}

/* ---- gc ----------------------------------------------------------------- */

typedef struct {
  uint8_t (*hashes)[BANK_HASH_LEN];
  size_t n, cap;
  bank_gc_stats_t st;
  char why[256];
} mark_t;

static int mark_manifest(void *data, int dirfd, const char *section,
                         const char *name) {
  mark_t *mk = data;
  char object[BANK_NAME_MAX + 1];
  if (name[0] == '.') {
    /* A temporary manifest: with the lock held exclusive no put is
     * running, so it is the leftover of an interrupted one. */
    if (unlinkat(dirfd, name, 0) == 0)
      mk->st.temps_removed++;
    return 0;
  }
  if (!manifest_object(name, object))
    return 0;
  char *text = NULL;
  size_t len = 0;
  bank_manifest_t m = {0};
  char why[160];
  int rc = bank_fs_read_all(dirfd, name, BANK_MANIFEST_MAX, &text, &len);
  if (rc == 0)
    rc = bank_manifest_decode(text, len, &m, why, sizeof(why));
  else
    say(why, sizeof(why), "cannot read the manifest: %s", uv_strerror(rc));
  free(text);
  if (rc != 0) {
    say(mk->why, sizeof(mk->why), "object %s/%s: %s", section, object, why);
    return rc == UV_ENOMEM ? rc : BANK_ECORRUPT;
  }
  mk->st.manifests++;
  if (mk->n + m.n > mk->cap) {
    size_t cap = mk->cap ? mk->cap : 1024;
    while (cap < mk->n + m.n)
      cap *= 2;
    void *grown = realloc(mk->hashes, cap * BANK_HASH_LEN);
    if (grown == NULL) {
      bank_manifest_free(&m);
      return UV_ENOMEM;
    }
    mk->hashes = grown;
    mk->cap = cap;
  }
  for (size_t i = 0; i < m.n; i++)
    memcpy(mk->hashes[mk->n++], m.chunks[i].hash, BANK_HASH_LEN);
  bank_manifest_free(&m);
  return 0;
}

static int cmp_hash(const void *a, const void *b) {
  return memcmp(a, b, BANK_HASH_LEN);
}

/* Removes the unreferenced chunks (and temporary files) of one fan-out
 * directory. */
static int sweep_dir(bank_t *bank, int i, mark_t *mk) {
  char path[16];
  snprintf(path, sizeof(path), "chunks/%02x", i);
  int fd = openat(bank->root_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT ? 0 : -errno;
  DIR *d = fdopendir(fd);
  if (d == NULL) {
    int rc = -errno;
    close(fd);
    return rc;
  }
  int rc = 0;
  struct dirent *e;
  while ((errno = 0, e = readdir(d)) != NULL) {
    uint8_t hash[BANK_HASH_LEN];
    struct stat st;
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    if (e->d_name[0] == '.') {
      if (unlinkat(dirfd(d), e->d_name, 0) == 0)
        mk->st.temps_removed++;
      continue;
    }
    if (bank_unhex(e->d_name, hash) != 0)
      continue; /* not ours: leave it */
    if (mk->n > 0 &&
        bsearch(hash, mk->hashes, mk->n, BANK_HASH_LEN, cmp_hash) != NULL) {
      mk->st.chunks_kept++;
      continue;
    }
    if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
      continue;
    if (unlinkat(dirfd(d), e->d_name, 0) != 0) {
      rc = -errno;
      break;
    }
    mk->st.chunks_freed++;
    mk->st.bytes_freed += (uint64_t)st.st_size;
  }
  if (rc == 0 && e == NULL && errno != 0)
    rc = -errno;
  closedir(d);
  return rc;
}

int bank_gc(bank_t *bank, const bank_io_t *io, bank_gc_stats_t *stats,
            bank_err_t *err) {
  mark_t mk;
  memset(&mk, 0, sizeof(mk));
  int lock_fd = -1;
  int rc = lock_bank(bank, LOCK_EX, io, &lock_fd);
  if (rc != 0) {
    bank_fail(err, rc, "gc: cannot lock the bank: %s", uv_strerror(rc));
    goto out;
  }
  rc = walk_manifests(bank, "", mark_manifest, &mk);
  if (rc != 0) {
    if (mk.why[0] != '\0')
      bank_fail(err, rc, "gc: %s; nothing removed", mk.why);
    else
      bank_fail(err, rc, "gc: cannot read the manifests: %s; nothing removed",
                uv_strerror(rc));
    goto out;
  }
  if (mk.n > 0)
    qsort(mk.hashes, mk.n, BANK_HASH_LEN, cmp_hash);
  for (int i = 0; i < 256 && rc == 0; i++) {
    if (is_cancelled(io))
      rc = UV_ECANCELED;
    else
      rc = sweep_dir(bank, i, &mk);
  }
  if (rc != 0) {
    bank_fail(err, rc, "gc: %s", uv_strerror(rc));
    goto out;
  }
  if (stats != NULL)
    *stats = mk.st;
out:
  if (lock_fd >= 0)
    unlock_bank(lock_fd);
  free(mk.hashes);
  return rc;
}

/* ---- stats -------------------------------------------------------------- */

static int count_manifest(void *data, int dirfd, const char *section,
                          const char *name) {
  bank_stats_t *st = data;
  char object[BANK_NAME_MAX + 1];
  struct stat sb;
  if (name[0] == '.' || !manifest_object(name, object) ||
      fstatat(dirfd, name, &sb, 0) != 0)
    return 0;
  st->manifests++;
  st->manifest_bytes += (uint64_t)sb.st_size;
  return 0;
}

int bank_stats(bank_t *bank, bank_stats_t *stats, bank_err_t *err) {
  bank_stats_t st = {0};
  for (int i = 0; i < 256; i++) {
    char path[16];
    snprintf(path, sizeof(path), "chunks/%02x", i);
    int fd = openat(bank->root_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
      continue;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
      close(fd);
      continue;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      uint8_t hash[BANK_HASH_LEN];
      struct stat sb;
      if (bank_unhex(e->d_name, hash) != 0 ||
          fstatat(dirfd(d), e->d_name, &sb, 0) != 0)
        continue;
      st.chunks++;
      st.chunk_bytes += (uint64_t)sb.st_size;
    }
    closedir(d);
  }
  int rc = walk_manifests(bank, "", count_manifest, &st);
  if (rc != 0)
    return bank_fail(err, rc, "cannot count manifests: %s", uv_strerror(rc));
  *stats = st;
  return 0;
}
