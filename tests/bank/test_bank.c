/*
 * test_bank.c - the bank suite: round trips (random, sparse and zero data,
 * holes preserved), deduplication, corruption detection on get and verify,
 * delete + GC, GC against a concurrent put (ordered through the bank lock
 * and its wait hook, never by sleeping), cancellation and name validation.
 * Each test gets its own bank in a temporary directory.
 */
#define _GNU_SOURCE
#include "bank.h"
#include "bank_tmp.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#define MiB (1024 * 1024)

TestSuite(bank, .init = bank_tmp_setup, .fini = bank_tmp_teardown,
          .timeout = 60);

/* ---- helpers ------------------------------------------------------------ */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static void fill_random(uint8_t *buf, size_t len, uint64_t seed) {
  rng_state = seed * 2654435761u + 1;
  for (size_t i = 0; i < len; i++) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    buf[i] = (uint8_t)rng_state;
  }
}

static char *path_in(const char *name) {
  static char paths[8][400];
  static int next;
  char *p = paths[next++ % 8];
  snprintf(p, 400, "%s/%s", dir, name);
  return p;
}

/* Writes `len` random bytes (from `seed`) at `off` of `path`, creating the
 * file at `size` bytes (holes elsewhere). */
static void write_region(const char *path, uint64_t size, uint64_t off,
                         size_t len, uint64_t seed) {
  int fd = open(path, O_WRONLY | O_CREAT, 0644);
  cr_assert_geq(fd, 0);
  cr_assert_eq(ftruncate(fd, (off_t)size), 0);
  uint8_t *buf = malloc(len);
  fill_random(buf, len, seed);
  cr_assert_eq(pwrite(fd, buf, len, (off_t)off), (ssize_t)len);
  free(buf);
  close(fd);
}

static void write_bytes(const char *path, uint64_t off, const void *buf,
                        size_t len) {
  int fd = open(path, O_WRONLY | O_CREAT, 0644);
  cr_assert_geq(fd, 0);
  cr_assert_eq(pwrite(fd, buf, len, (off_t)off), (ssize_t)len);
  close(fd);
}

static void assert_same_file(const char *a, const char *b) {
  FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
  cr_assert_not_null(fa);
  cr_assert_not_null(fb);
  static uint8_t ba[65536], bb[65536];
  for (;;) {
    size_t na = fread(ba, 1, sizeof(ba), fa), nb = fread(bb, 1, sizeof(bb), fb);
    cr_assert_eq(na, nb, "sizes differ");
    cr_assert_eq(memcmp(ba, bb, na), 0, "contents differ");
    if (na == 0)
      break;
  }
  fclose(fa);
  fclose(fb);
}

static void put_file(const char *section, const char *object, const char *path,
                     bank_put_stats_t *st) {
  bank_err_t err = {0};
  cr_assert_eq(bank_put_file(bank, section, object, path, NULL, st, &err), 0,
               "%s", err.msg);
}

/* The hex hash of chunk `i` of an object, read from its manifest. */
static void chunk_hex(const char *section, const char *object, size_t i,
                      char *hex) {
  char path[600];
  snprintf(path, sizeof(path), "%s/manifests/%s/%s.manifest.json", bank_dir,
           section, object);
  json_error_t jerr;
  json_t *doc = json_load_file(path, 0, &jerr);
  cr_assert_not_null(doc, "%s", jerr.text);
  json_t *c = json_array_get(json_object_get(doc, "chunks"), i);
  const char *s = json_string_value(json_object_get(c, "sha256"));
  cr_assert_not_null(s);
  snprintf(hex, 65, "%s", s);
  json_decref(doc);
}

static void chunk_file(const char *hex, char *out) {
  snprintf(out, 600, "%s/chunks/%.2s/%s", bank_dir, hex, hex);
}

static int exists(const char *path) {
  return access(path, F_OK) == 0;
}

static uint64_t bank_bytes(void) {
  bank_stats_t st;
  bank_err_t err = {0};
  cr_assert_eq(bank_stats(bank, &st, &err), 0, "%s", err.msg);
  return st.chunk_bytes + st.manifest_bytes;
}

/* ---- round trips -------------------------------------------------------- */

Test(bank, roundtrip_random_sparse_and_zero_data_with_holes_kept) {
  const char *src = path_in("src"), *dst = path_in("dst");
  uint64_t size = 12 * MiB + 12345;
  write_region(src, size, 0, 3 * MiB + 100, 1);  /* data, unaligned end */
  write_region(src, size, 8 * MiB, 2 * MiB, 2);  /* data after a hole */
  write_region(src, size, size - 5000, 5000, 3); /* short last chunk */
  static uint8_t zeros[MiB];
  write_bytes(src, 5 * MiB, zeros, MiB); /* allocated but all zero */
  bank_put_stats_t st;
  put_file("checkpoints/c1/smaug.volume/v1", "data", src, &st);
  cr_assert_eq(st.size, size);
  cr_assert_eq(st.chunks, 4 + 2 + 1, "only non-zero chunks are stored");

  bank_err_t err = {0};
  bank_get_stats_t gs;
  cr_assert_eq(bank_get_file(bank, "checkpoints/c1/smaug.volume/v1", "data",
                             dst, NULL, &gs, &err),
               0, "%s", err.msg);
  assert_same_file(src, dst);
  cr_assert_eq(gs.size, size);
  /* The hole between 4 MiB and 8 MiB is still a hole. */
  int fd = open(dst, O_RDONLY);
  off_t next = lseek(fd, 4 * MiB, SEEK_DATA);
  close(fd);
  cr_assert_geq(next, 8 * MiB, "restored file is not sparse (data at %lld)",
                (long long)next);
}

Test(bank, roundtrip_of_an_all_hole_file_stores_no_chunk) {
  const char *src = path_in("src"), *dst = path_in("dst");
  int fd = open(src, O_WRONLY | O_CREAT, 0644);
  cr_assert_eq(ftruncate(fd, 64 * MiB), 0);
  close(fd);
  bank_put_stats_t st;
  put_file("s", "empty", src, &st);
  cr_assert_eq(st.chunks, 0);
  cr_assert_eq(st.data_bytes, 0, "holes are not read");
  cr_assert_eq(st.zero_bytes, 64 * MiB);
  bank_err_t err = {0};
  cr_assert_eq(bank_get_file(bank, "s", "empty", dst, NULL, NULL, &err), 0,
               "%s", err.msg);
  struct stat sb;
  cr_assert_eq(stat(dst, &sb), 0);
  cr_assert_eq(sb.st_size, 64 * MiB);
  cr_assert_eq(sb.st_blocks, 0);
}

Test(bank, put_and_get_bytes_roundtrip) {
  const char *text = "{\"id\":\"srv-1\",\"volumes\":[\"v1\"]}";
  bank_err_t err = {0};
  cr_assert_eq(bank_put_bytes(bank, "s/a", "server.json", text, strlen(text),
                              NULL, &err),
               0, "%s", err.msg);
  void *out = NULL;
  size_t len = 0;
  cr_assert_eq(
      bank_get_bytes(bank, "s/a", "server.json", 1 << 20, &out, &len, &err), 0,
      "%s", err.msg);
  cr_assert_eq(len, strlen(text));
  cr_assert_str_eq(out, text);
  free(out);
}

Test(bank, empty_object_roundtrips) {
  bank_err_t err = {0};
  bank_put_stats_t st;
  cr_assert_eq(bank_put_bytes(bank, "s", "empty", NULL, 0, &st, &err), 0, "%s",
               err.msg);
  cr_assert_eq(st.chunks, 0);
  void *out = NULL;
  size_t len = 1;
  cr_assert_eq(bank_get_bytes(bank, "s", "empty", 10, &out, &len, &err), 0,
               "%s", err.msg);
  cr_assert_eq(len, 0);
  free(out);
}

Test(bank, get_bytes_refuses_objects_over_the_limit) {
  bank_err_t err = {0};
  cr_assert_eq(bank_put_bytes(bank, "s", "o", "0123456789", 10, NULL, &err), 0);
  void *out = NULL;
  size_t len = 0;
  cr_assert_eq(bank_get_bytes(bank, "s", "o", 9, &out, &len, &err), UV_E2BIG);
  cr_assert_null(out);
}

Test(bank, get_of_a_missing_object_is_enoent) {
  bank_err_t err = {0};
  cr_assert_eq(
      bank_get_file(bank, "s", "nothing", path_in("x"), NULL, NULL, &err),
      UV_ENOENT);
  cr_assert_eq(err.code, UV_ENOENT);
  cr_assert_not_null(strstr(err.msg, "s/nothing"), "%s", err.msg);
  cr_assert(!exists(path_in("x")));
}

static int append(void *data, const char *object) {
  strcat(data, object);
  strcat(data, ",");
  return 0;
}

Test(bank, list_names_the_objects_of_a_section_in_order) {
  bank_err_t err = {0};
  cr_assert_eq(bank_put_bytes(bank, "s", "b", "1", 1, NULL, &err), 0);
  cr_assert_eq(bank_put_bytes(bank, "s", "a", "2", 1, NULL, &err), 0);
  cr_assert_eq(bank_put_bytes(bank, "s/sub", "c", "3", 1, NULL, &err), 0);
  char got[64] = "";
  cr_assert_eq(bank_list(bank, "s", append, got, &err), 0);
  cr_assert_str_eq(got, "a,b,");
}

/* ---- deduplication ------------------------------------------------------ */

Test(bank, second_protect_of_unchanged_data_adds_under_one_percent) {
  const char *src = path_in("src");
  write_region(src, 16 * MiB, 0, 10 * MiB, 7);
  put_file("checkpoints/c1/smaug.volume/v1", "data", src, NULL);
  uint64_t before = bank_bytes();
  bank_put_stats_t st;
  put_file("checkpoints/c2/smaug.volume/v1", "data", src, &st);
  uint64_t after = bank_bytes();
  cr_assert_eq(st.new_chunks, 0);
  cr_assert_lt((after - before) * 100, before, "grew by %llu bytes on %llu",
               (unsigned long long)(after - before),
               (unsigned long long)before);
}

Test(bank, objects_sharing_content_share_chunks) {
  const char *a = path_in("a"), *b = path_in("b");
  write_region(a, 4 * MiB, 0, 4 * MiB, 11);
  write_region(b, 4 * MiB, 0, 4 * MiB, 11);   /* same content ... */
  write_region(b, 4 * MiB, 3 * MiB, MiB, 12); /* ... but the last chunk */
  bank_put_stats_t sa, sb;
  put_file("s1", "a", a, &sa);
  put_file("s2", "b", b, &sb);
  cr_assert_eq(sa.new_chunks, 4);
  cr_assert_eq(sb.chunks, 4);
  cr_assert_eq(sb.new_chunks, 1, "only the differing chunk is new");
}

/* ---- corruption --------------------------------------------------------- */

/* Replaces a chunk file with a well-formed zstd frame of the right length
 * whose content does not match the hash. */
static void forge_chunk(const char *hex, size_t len) {
  char path[600];
  chunk_file(hex, path);
  uint8_t *raw = calloc(1, len);
  raw[0] = 1;
  size_t cap = ZSTD_compressBound(len);
  uint8_t *z = malloc(cap);
  size_t n = ZSTD_compress(z, cap, raw, len, 1);
  cr_assert(!ZSTD_isError(n));
  FILE *f = fopen(path, "wb");
  cr_assert_eq(fwrite(z, 1, n, f), n);
  fclose(f);
  free(raw);
  free(z);
}

Test(bank, corrupted_chunk_fails_get_naming_chunk_and_object) {
  const char *src = path_in("src"), *dst = path_in("dst");
  write_region(src, 3 * MiB, 0, 3 * MiB, 21);
  put_file("checkpoints/c1/smaug.volume/v1", "data", src, NULL);
  char hex[65];
  chunk_hex("checkpoints/c1/smaug.volume/v1", "data", 1, hex);
  forge_chunk(hex, MiB);
  bank_err_t err = {0};
  int rc = bank_get_file(bank, "checkpoints/c1/smaug.volume/v1", "data", dst,
                         NULL, NULL, &err);
  cr_assert_eq(rc, BANK_ECORRUPT);
  cr_assert_not_null(strstr(err.msg, hex), "%s", err.msg);
  cr_assert_not_null(strstr(err.msg, "checkpoints/c1/smaug.volume/v1/data"),
                     "%s", err.msg);
  cr_assert_not_null(strstr(err.msg, "hash mismatch"), "%s", err.msg);
  cr_assert(!exists(dst), "no partial restore is left behind");
}

Test(bank, garbled_chunk_file_fails_get) {
  const char *src = path_in("src");
  write_region(src, 2 * MiB, 0, 2 * MiB, 22);
  put_file("s", "o", src, NULL);
  char hex[65], path[600];
  chunk_hex("s", "o", 0, hex);
  chunk_file(hex, path);
  int fd = open(path, O_RDWR);
  uint8_t byte;
  cr_assert_eq(pread(fd, &byte, 1, 100), 1);
  byte ^= 0xff;
  cr_assert_eq(pwrite(fd, &byte, 1, 100), 1);
  close(fd);
  bank_err_t err = {0};
  cr_assert_eq(bank_get_file(bank, "s", "o", path_in("d"), NULL, NULL, &err),
               BANK_ECORRUPT);
  cr_assert_not_null(strstr(err.msg, hex), "%s", err.msg);
}

Test(bank, missing_chunk_fails_get) {
  const char *src = path_in("src");
  write_region(src, MiB, 0, MiB, 23);
  put_file("s", "o", src, NULL);
  char hex[65], path[600];
  chunk_hex("s", "o", 0, hex);
  chunk_file(hex, path);
  cr_assert_eq(unlink(path), 0);
  bank_err_t err = {0};
  cr_assert_eq(bank_get_file(bank, "s", "o", path_in("d"), NULL, NULL, &err),
               BANK_ECORRUPT);
  cr_assert_not_null(strstr(err.msg, "missing"), "%s", err.msg);
}

Test(bank, empty_chunk_file_left_by_a_crash_is_rewritten) {
  const char *src = path_in("src");
  write_region(src, MiB, 0, MiB, 24);
  put_file("s1", "o", src, NULL);
  char hex[65], path[600];
  chunk_hex("s1", "o", 0, hex);
  chunk_file(hex, path);
  cr_assert_eq(truncate(path, 0), 0);
  bank_put_stats_t st;
  put_file("s2", "o", src, &st);
  cr_assert_eq(st.new_chunks, 1);
  bank_err_t err = {0};
  cr_assert_eq(bank_get_file(bank, "s2", "o", path_in("d"), NULL, NULL, &err),
               0, "%s", err.msg);
  assert_same_file(src, path_in("d"));
}

Test(bank, corrupted_manifest_is_detected) {
  bank_err_t err = {0};
  cr_assert_eq(bank_put_bytes(bank, "s", "o", "hello", 5, NULL, &err), 0);
  char path[600];
  snprintf(path, sizeof(path), "%s/manifests/s/o.manifest.json", bank_dir);
  json_t *doc = json_load_file(path, 0, NULL);
  json_object_set_new(doc, "size", json_integer(6));
  cr_assert_eq(json_dump_file(doc, path, JSON_COMPACT), 0);
  json_decref(doc);
  void *out = NULL;
  size_t len;
  cr_assert_eq(bank_get_bytes(bank, "s", "o", 100, &out, &len, &err),
               BANK_ECORRUPT);
  cr_assert_not_null(strstr(err.msg, "checksum"), "%s", err.msg);
}

typedef struct {
  int calls;
  char first[256];
} problems_t;

static void on_problem(void *data, const char *section, const char *object,
                       const char *msg) {
  problems_t *p = data;
  if (p->calls++ == 0)
    snprintf(p->first, sizeof(p->first), "%s", msg);
}

Test(bank, verify_finds_a_corrupted_chunk_without_restoring) {
  const char *src = path_in("src"), *other = path_in("other");
  write_region(src, 3 * MiB, 0, 3 * MiB, 31);
  write_region(other, 2 * MiB, 0, 2 * MiB, 32);
  put_file("checkpoints/c1/smaug.volume/v1", "data", src, NULL);
  put_file("checkpoints/c1/smaug.volume/v2", "data", other, NULL);
  char hex[65];
  chunk_hex("checkpoints/c1/smaug.volume/v1", "data", 2, hex);
  forge_chunk(hex, MiB);

  problems_t p = {0};
  bank_verify_report_t rep;
  bank_err_t err = {0};
  int rc =
      bank_verify(bank, "checkpoints/c1", NULL, on_problem, &p, &rep, &err);
  cr_assert_eq(rc, BANK_ECORRUPT);
  cr_assert_eq(rep.objects, 2);
  cr_assert_eq(rep.chunks, 5);
  cr_assert_eq(rep.bad_objects, 1);
  cr_assert_eq(rep.bad_chunks, 1);
  cr_assert_eq(p.calls, 1);
  cr_assert_not_null(strstr(p.first, hex), "%s", p.first);
  cr_assert_not_null(strstr(p.first, "smaug.volume/v1/data"), "%s", p.first);
  cr_assert_not_null(strstr(err.msg, hex), "%s", err.msg);

  /* The healthy object alone verifies. */
  cr_assert_eq(bank_verify(bank, "checkpoints/c1/smaug.volume/v2", NULL, NULL,
                           NULL, &rep, &err),
               0, "%s", err.msg);
  cr_assert_eq(rep.objects, 1);
  cr_assert_eq(rep.bytes, 2 * MiB);
}

/* ---- delete and gc ------------------------------------------------------ */

Test(bank, delete_and_gc_free_unreferenced_and_keep_shared_chunks) {
  const char *a = path_in("a"), *b = path_in("b");
  write_region(a, 3 * MiB, 0, 3 * MiB, 41); /* a0 a1 s */
  write_region(a, 3 * MiB, 2 * MiB, MiB, 40);
  write_region(b, 2 * MiB, 0, MiB, 40); /* s b1 */
  write_region(b, 2 * MiB, MiB, MiB, 42);
  put_file("checkpoints/c1/t/a", "data", a, NULL);
  put_file("checkpoints/c2/t/b", "data", b, NULL);
  char a0[65], a1[65], s[65], b1[65], path[600];
  chunk_hex("checkpoints/c1/t/a", "data", 0, a0);
  chunk_hex("checkpoints/c1/t/a", "data", 1, a1);
  chunk_hex("checkpoints/c1/t/a", "data", 2, s);
  chunk_hex("checkpoints/c2/t/b", "data", 1, b1);

  bank_err_t err = {0};
  cr_assert_eq(bank_delete_section(bank, "checkpoints/c1", &err), 0, "%s",
               err.msg);
  bank_gc_stats_t gs;
  cr_assert_eq(bank_gc(bank, NULL, &gs, &err), 0, "%s", err.msg);
  cr_assert_eq(gs.chunks_freed, 2);
  cr_assert_eq(gs.chunks_kept, 2);
  cr_assert_gt(gs.bytes_freed, 2 * MiB);
  chunk_file(a0, path);
  cr_assert(!exists(path));
  chunk_file(a1, path);
  cr_assert(!exists(path));
  chunk_file(s, path);
  cr_assert(exists(path), "the shared chunk stays");
  chunk_file(b1, path);
  cr_assert(exists(path));
  cr_assert_eq(bank_get_file(bank, "checkpoints/c2/t/b", "data", path_in("r"),
                             NULL, NULL, &err),
               0, "%s", err.msg);
  assert_same_file(b, path_in("r"));
}

Test(bank, delete_of_a_missing_section_succeeds) {
  bank_err_t err = {0};
  cr_assert_eq(bank_delete_section(bank, "checkpoints/none", &err), 0);
}

Test(bank, gc_refuses_to_run_on_a_damaged_manifest) {
  const char *a = path_in("a");
  write_region(a, MiB, 0, MiB, 51);
  put_file("s1", "a", a, NULL);
  bank_err_t err = {0};
  cr_assert_eq(bank_put_bytes(bank, "s2", "junk", "x", 1, NULL, &err), 0);
  char path[600];
  snprintf(path, sizeof(path), "%s/manifests/s2/junk.manifest.json", bank_dir);
  write_bytes(path, 0, "X", 1);
  bank_stats_t before, after;
  cr_assert_eq(bank_stats(bank, &before, &err), 0);
  cr_assert_eq(bank_gc(bank, NULL, NULL, &err), BANK_ECORRUPT);
  cr_assert_not_null(strstr(err.msg, "s2/junk"), "%s", err.msg);
  cr_assert_eq(bank_stats(bank, &after, &err), 0);
  cr_assert_eq(after.chunks, before.chunks, "nothing removed");
}

/* A put that reuses unreferenced chunks while a GC wants to run: the put
 * holds the lock shared, the GC's wait hook proves it is blocked, and the
 * put's chunks all survive the GC that runs after it. */
typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int gc_waiting;
  int gc_started;
  int gc_rc;
  bank_gc_stats_t gc_stats;
  pthread_t gc_thread;
} race_t;

static void gc_waits(void *data) {
  race_t *r = data;
  pthread_mutex_lock(&r->mu);
  r->gc_waiting = 1;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

static void *gc_main(void *data) {
  race_t *r = data;
  bank_io_t io = {.lock_wait = gc_waits, .data = r};
  bank_err_t err = {0};
  r->gc_rc = bank_gc(bank, &io, &r->gc_stats, &err);
  return NULL;
}

static void put_progress(void *data, uint64_t done, uint64_t total) {
  race_t *r = data;
  if (r->gc_started)
    return;
  r->gc_started = 1;
  cr_assert_eq(pthread_create(&r->gc_thread, NULL, gc_main, r), 0);
  pthread_mutex_lock(&r->mu);
  while (!r->gc_waiting)
    pthread_cond_wait(&r->cv, &r->mu);
  pthread_mutex_unlock(&r->mu);
}

Test(bank, gc_during_a_put_keeps_every_chunk_the_put_references) {
  const char *src = path_in("src");
  write_region(src, 4 * MiB, 0, 4 * MiB, 61);
  put_file("checkpoints/c1/t/v", "data", src, NULL);
  bank_err_t err = {0};
  cr_assert_eq(bank_delete_section(bank, "checkpoints/c1", &err), 0);
  /* Every chunk of src is now unreferenced, and the next put reuses them. */
  race_t r = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
  bank_io_t io = {.progress = put_progress, .data = &r};
  bank_put_stats_t st;
  cr_assert_eq(
      bank_put_file(bank, "checkpoints/c2/t/v", "data", src, &io, &st, &err), 0,
      "%s", err.msg);
  cr_assert_eq(st.new_chunks, 0, "the put reused the existing chunks");
  cr_assert(r.gc_started);
  pthread_join(r.gc_thread, NULL);
  cr_assert_eq(r.gc_rc, 0);
  cr_assert_eq(r.gc_stats.chunks_freed, 0);
  cr_assert_eq(r.gc_stats.chunks_kept, 4);
  bank_verify_report_t rep;
  cr_assert_eq(bank_verify(bank, "", NULL, NULL, NULL, &rep, &err), 0, "%s",
               err.msg);
  cr_assert_eq(rep.chunks, 4);
}

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int waiting;
  int rc;
  const char *src;
} blocked_put_t;

static void put_waits(void *data) {
  blocked_put_t *b = data;
  pthread_mutex_lock(&b->mu);
  b->waiting = 1;
  pthread_cond_broadcast(&b->cv);
  pthread_mutex_unlock(&b->mu);
}

static void *put_main(void *data) {
  blocked_put_t *b = data;
  bank_io_t io = {.lock_wait = put_waits, .data = b};
  bank_err_t err = {0};
  b->rc = bank_put_file(bank, "s", "o", b->src, &io, NULL, &err);
  return NULL;
}

Test(bank, put_waits_while_a_gc_holds_the_lock) {
  const char *src = path_in("src");
  write_region(src, MiB, 0, MiB, 71);
  /* Hold the lock the way a GC in another process would. */
  char lock[600];
  snprintf(lock, sizeof(lock), "%s/lock", bank_dir);
  int fd = open(lock, O_RDONLY);
  cr_assert_eq(flock(fd, LOCK_EX), 0);
  blocked_put_t b = {.mu = PTHREAD_MUTEX_INITIALIZER,
                     .cv = PTHREAD_COND_INITIALIZER,
                     .src = src};
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, put_main, &b), 0);
  pthread_mutex_lock(&b.mu);
  while (!b.waiting)
    pthread_cond_wait(&b.cv, &b.mu);
  pthread_mutex_unlock(&b.mu);
  bank_stats_t st;
  bank_err_t err = {0};
  cr_assert_eq(bank_stats(bank, &st, &err), 0);
  cr_assert_eq(st.chunks, 0, "nothing stored while the lock is held");
  close(fd);
  pthread_join(t, NULL);
  cr_assert_eq(b.rc, 0);
  cr_assert_eq(bank_stats(bank, &st, &err), 0);
  cr_assert_eq(st.chunks, 1);
  cr_assert_eq(st.manifests, 1);
}

/* ---- cancellation and progress ------------------------------------------ */

static void cancel_now(void *data, uint64_t done, uint64_t total) {
  atomic_store((atomic_int *)data, 1);
}

Test(bank, cancelled_put_returns_ecanceled_and_leaves_no_manifest) {
  const char *src = path_in("src");
  write_region(src, 8 * MiB, 0, 8 * MiB, 81);
  atomic_int cancel = 0;
  bank_io_t io = {.progress = cancel_now, .data = &cancel, .cancel = &cancel};
  bank_err_t err = {0};
  cr_assert_eq(bank_put_file(bank, "s", "o", src, &io, NULL, &err),
               UV_ECANCELED);
  cr_assert_not_null(strstr(err.msg, "cancelled"), "%s", err.msg);
  bank_stats_t st;
  cr_assert_eq(bank_stats(bank, &st, &err), 0);
  cr_assert_eq(st.manifests, 0);
  cr_assert_lt(st.chunks, 8, "stopped before the end");
}

typedef struct {
  uint64_t last, total;
  int calls, backwards;
} progress_t;

static void record_progress(void *data, uint64_t done, uint64_t total) {
  progress_t *p = data;
  if (done < p->last)
    p->backwards = 1;
  p->last = done;
  p->total = total;
  p->calls++;
}

Test(bank, progress_rises_to_the_total) {
  const char *src = path_in("src");
  write_region(src, 6 * MiB, 0, 6 * MiB, 91);
  progress_t p = {0};
  bank_io_t io = {.progress = record_progress, .data = &p};
  bank_err_t err = {0};
  cr_assert_eq(bank_put_file(bank, "s", "o", src, &io, NULL, &err), 0);
  cr_assert_gt(p.calls, 0);
  cr_assert_eq(p.backwards, 0);
  cr_assert_eq(p.last, 6 * MiB);
  cr_assert_eq(p.total, 6 * MiB);
}

Test(bank, durable_mode_roundtrips) {
  bank_set_sync(bank, 1);
  const char *src = path_in("src");
  write_region(src, 2 * MiB, MiB, MiB, 95);
  put_file("s", "o", src, NULL);
  bank_err_t err = {0};
  cr_assert_eq(bank_get_file(bank, "s", "o", path_in("d"), NULL, NULL, &err), 0,
               "%s", err.msg);
  assert_same_file(src, path_in("d"));
}

/* ---- names -------------------------------------------------------------- */

Test(bank, section_and_object_names_are_validated) {
  cr_assert_eq(bank_check_section("checkpoints/c-1/smaug.volume/v_1"), 0);
  const char *bad_sections[] = {"",   "/abs",    "a/../b", "..",  "a//b",
                                "a/", ".hidden", "a/.b",   "a b", "a\\b",
                                "é",  "a/*",     NULL};
  for (int i = 0; bad_sections[i] != NULL; i++)
    cr_assert_eq(bank_check_section(bad_sections[i]), UV_EINVAL, "%s",
                 bad_sections[i]);
  cr_assert_eq(bank_check_object("disk.raw"), 0);
  const char *bad_objects[] = {"", "a/b", "..", ".x", "x y", "x;y", NULL};
  for (int i = 0; bad_objects[i] != NULL; i++)
    cr_assert_eq(bank_check_object(bad_objects[i]), UV_EINVAL, "%s",
                 bad_objects[i]);
  char long_name[BANK_NAME_MAX + 2];
  memset(long_name, 'a', sizeof(long_name) - 1);
  long_name[sizeof(long_name) - 1] = '\0';
  cr_assert_eq(bank_check_object(long_name), UV_EINVAL);
}

Test(bank, calls_reject_bad_names_before_touching_the_bank) {
  bank_err_t err = {0};
  cr_assert_eq(bank_put_bytes(bank, "../escape", "o", "x", 1, NULL, &err),
               UV_EINVAL);
  cr_assert_not_null(strstr(err.msg, "invalid"), "%s", err.msg);
  cr_assert_eq(bank_put_bytes(bank, "s", "../o", "x", 1, NULL, &err),
               UV_EINVAL);
  cr_assert_eq(bank_delete_section(bank, "/etc", &err), UV_EINVAL);
  cr_assert_eq(
      bank_get_file(bank, "s/../..", "o", path_in("d"), NULL, NULL, &err),
      UV_EINVAL);
  char escaped[600];
  snprintf(escaped, sizeof(escaped), "%s/escape", dir);
  cr_assert(!exists(escaped));
}

Test(bank, open_existing_creates_nothing) {
  char path[400], uri[420];
  snprintf(path, sizeof(path), "%s/none", dir);
  snprintf(uri, sizeof(uri), "file://%s", path);
  bank_t *b = NULL;
  bank_err_t err = {0};
  cr_assert_eq(bank_open_ex(uri, BANK_OPEN_EXISTING, &b, &err), UV_ENOENT);
  cr_assert(!exists(path));
  cr_assert_eq(mkdir(path, 0755), 0);
  cr_assert_eq(bank_open_ex(uri, BANK_OPEN_EXISTING, &b, &err), UV_ENOENT,
               "an empty directory is not a bank");
  snprintf(uri, sizeof(uri), "file://%s", bank_dir);
  cr_assert_eq(bank_open_ex(uri, BANK_OPEN_EXISTING, &b, &err), 0, "%s",
               err.msg);
  bank_close(b);
}

Test(bank, open_rejects_other_schemes) {
  bank_t *b = NULL;
  bank_err_t err = {0};
  cr_assert_eq(bank_open("s3://bucket/x", &b, &err), UV_EINVAL);
  cr_assert_eq(bank_open("relative/path", &b, &err), UV_EINVAL);
  cr_assert_null(b);
}

/* ---- modes -------------------------------------------------------------- */

static int mode_bad; /* first entry found open to the group or others */
static char mode_bad_path[400];

static int mode_visit(const char *path, const struct stat *st, int flag,
                      struct FTW *ftw) {
  mode_t want = S_ISDIR(st->st_mode) ? 0700 : 0600;
  if (!mode_bad && (st->st_mode & 07777) != want) {
    mode_bad = (int)(st->st_mode & 07777);
    snprintf(mode_bad_path, sizeof(mode_bad_path), "%s", path);
  }
  return 0;
}

Test(bank, everything_is_private_whatever_the_umask) {
  mode_t old = umask(0);
  char uri[400];
  snprintf(uri, sizeof(uri), "file://%s/private", dir);
  bank_t *b = NULL;
  bank_err_t err = {0};
  int rc = bank_open(uri, &b, &err);
  umask(old);
  cr_assert_eq(rc, 0, "%s", err.msg);
  umask(0);
  rc = bank_put_bytes(b, "checkpoints/c1/t/r", "o", "0123456789", 10, NULL,
                      &err);
  umask(old);
  cr_assert_eq(rc, 0, "%s", err.msg);
  bank_close(b);
  mode_bad = 0;
  nftw(path_in("private"), mode_visit, 16, FTW_PHYS);
  cr_assert_eq(mode_bad, 0, "%s has mode %04o, want 0700 (dir) or 0600",
               mode_bad_path, (unsigned)mode_bad);
}

Test(bank, a_root_open_to_others_is_narrowed) {
  char *root = path_in("loose"), uri[400];
  cr_assert_eq(mkdir(root, 0755), 0);
  cr_assert_eq(chmod(root, 0755), 0);
  snprintf(uri, sizeof(uri), "file://%s", root);
  bank_t *b = NULL;
  bank_err_t err = {0};
  cr_assert_eq(bank_open(uri, &b, &err), 0, "%s", err.msg);
  bank_close(b);
  struct stat st;
  cr_assert_eq(stat(root, &st), 0);
  cr_assert_eq(st.st_mode & 07777, 0700, "mode %04o",
               (unsigned)(st.st_mode & 07777));
}
