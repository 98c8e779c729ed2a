/*
 * bench_bank.c - smaug-bench-bank: protects a generated volume set into a
 * file:// bank and restores it, and times cp and sha256sum on the same
 * files in the same run, so the numbers compare on one machine state.
 *
 * The set (default 2 GiB in 8 volumes) mixes, per 1 MiB region: random
 * data, compressible text, explicitly written zeros, sparse holes, and
 * copies of earlier random regions (duplicates across volumes). All rates
 * are logical bytes (holes included) per second, MB = 10^6 bytes. The
 * last line is
 *   RESULT bytes=N protect_mb_s=X restore_mb_s=Y cp_mb_s=Z
 *          sha256sum_mb_s=W ratio=R incremental_ms=I
 * where ratio = protect_mb_s / min(cp_mb_s, sha256sum_mb_s).
 */
#define _GNU_SOURCE
#include "bank.h"

#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MiB (1024u * 1024u)

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint64_t next_u64(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static void fill_random(uint8_t *buf, size_t len) {
  for (size_t i = 0; i + 8 <= len; i += 8) {
    uint64_t v = next_u64();
    memcpy(buf + i, &v, 8);
  }
}

static void fill_text(uint8_t *buf, size_t len) {
  static const char *words[] = {"volume ",  "server ",  "checkpoint ", "bank ",
                                "restore ", "protect ", "chunk ",      "\n"};
  size_t i = 0;
  while (i < len) {
    const char *w = words[next_u64() % 8];
    for (; *w != '\0' && i < len; w++)
      buf[i++] = (uint8_t)*w;
  }
}

static int die(const char *what) {
  perror(what);
  exit(1);
}

/* Writes `nvol` volumes of `vol_size` bytes into `dir`. */
static void generate(const char *dir, int nvol, uint64_t vol_size) {
  uint8_t *buf = malloc(MiB);
  /* A pool of random regions that later regions duplicate. */
  enum { POOL = 32 };
  uint8_t *pool = malloc((size_t)POOL * MiB);
  fill_random(pool, (size_t)POOL * MiB);
  for (int v = 0; v < nvol; v++) {
    char path[4400];
    snprintf(path, sizeof(path), "%s/vol-%d.raw", dir, v);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ftruncate(fd, (off_t)vol_size) != 0)
      die(path);
    for (uint64_t off = 0; off < vol_size; off += MiB) {
      unsigned kind = (unsigned)(next_u64() % 100);
      const uint8_t *src = buf;
      if (kind < 40) {
        fill_random(buf, MiB); /* 40% random */
      } else if (kind < 55) {
        fill_text(buf, MiB); /* 15% compressible */
      } else if (kind < 70) {
        memset(buf, 0, MiB); /* 15% written zeros */
      } else if (kind < 90) {
        continue; /* 20% holes */
      } else {
        src = pool + (next_u64() % POOL) * MiB; /* 10% duplicates */
      }
      if (pwrite(fd, src, MiB, (off_t)off) != (ssize_t)MiB)
        die("pwrite");
    }
    close(fd);
  }
  free(pool);
  free(buf);
}

static double run(const char *cmd) {
  double t0 = now();
  if (system(cmd) != 0) {
    fprintf(stderr, "failed: %s\n", cmd);
    exit(1);
  }
  return now() - t0;
}

static int same_file(const char *a, const char *b) {
  FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
  static uint8_t ba[1 << 20], bb[1 << 20];
  int same = fa != NULL && fb != NULL;
  while (same) {
    size_t na = fread(ba, 1, sizeof(ba), fa), nb = fread(bb, 1, sizeof(bb), fb);
    same = na == nb && memcmp(ba, bb, na) == 0;
    if (na == 0)
      break;
  }
  if (fa)
    fclose(fa);
  if (fb)
    fclose(fb);
  return same;
}

static void check(int rc, const bank_err_t *err) {
  if (rc != 0) {
    fprintf(stderr, "bank error %s: %s\n", uv_err_name(rc), err->msg);
    exit(1);
  }
}

static void usage(void) {
  fprintf(stderr,
          "usage: smaug-bench-bank [--dir DIR] [--size BYTES] [--volumes N]\n"
          "                        [--threads N] [--level L] [--no-sync]\n"
          "                        [--keep]\n"
          "  --dir      work directory (default: a new /tmp/smaug-bench-*)\n"
          "  --size     total logical size of the set (default 2 GiB)\n"
          "  --volumes  number of volumes (default 8)\n"
          "  --threads  bank threads per call (default 2)\n"
          "  --level    zstd level (default 1)\n"
          "  --no-sync  skip fsync/syncfs (the default is durable)\n"
          "  --keep     keep the work directory\n");
  exit(2);
}

int main(int argc, char **argv) {
  uint64_t total = 2048ull * MiB;
  int nvol = 8, threads = 2, level = 1, durable = 1, keep = 0;
  char dir[4096] = "";
  static const struct option opts[] = {
      {"dir", required_argument, NULL, 'd'},
      {"size", required_argument, NULL, 's'},
      {"volumes", required_argument, NULL, 'v'},
      {"threads", required_argument, NULL, 't'},
      {"level", required_argument, NULL, 'l'},
      {"no-sync", no_argument, NULL, 'n'},
      {"keep", no_argument, NULL, 'k'},
      {NULL, 0, NULL, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 'd':
      snprintf(dir, sizeof(dir), "%s", optarg);
      break;
    case 's':
      total = strtoull(optarg, NULL, 0);
      break;
    case 'v':
      nvol = atoi(optarg);
      break;
    case 't':
      threads = atoi(optarg);
      break;
    case 'l':
      level = atoi(optarg);
      break;
    case 'n':
      durable = 0;
      break;
    case 'k':
      keep = 1;
      break;
    default:
      usage();
    }
  }
  if (nvol < 1 || total < (uint64_t)nvol * MiB)
    usage();
  if (dir[0] == '\0') {
    snprintf(dir, sizeof(dir), "/tmp/smaug-bench-bank-XXXXXX");
    if (mkdtemp(dir) == NULL)
      die("mkdtemp");
  } else if (mkdir(dir, 0755) != 0) {
    die(dir);
  }
  uint64_t vol_size = total / (uint64_t)nvol / MiB * MiB;
  uint64_t bytes = vol_size * (uint64_t)nvol;
  char src[4200], cpdst[4200], rdst[4200], cmd[17000], uri[4300];
  snprintf(src, sizeof(src), "%s/src", dir);
  snprintf(cpdst, sizeof(cpdst), "%s/cp", dir);
  snprintf(rdst, sizeof(rdst), "%s/restore", dir);
  if (mkdir(src, 0755) != 0 || mkdir(rdst, 0755) != 0)
    die("mkdir");
  printf("generating %d volumes of %llu MiB in %s\n", nvol,
         (unsigned long long)(vol_size / MiB), src);
  fflush(stdout);
  generate(src, nvol, vol_size);
  /* Flush the generated data now, so that no step pays for its writeback. */
  sync();

  snprintf(cmd, sizeof(cmd), "sha256sum %s/*.raw >/dev/null", src);
  double t_sha = run(cmd);
  snprintf(cmd, sizeof(cmd), "cp -r %s %s", src, cpdst);
  double t_cp = run(cmd);
  sync();

  snprintf(uri, sizeof(uri), "file://%s/bank", dir);
  bank_t *bank;
  bank_err_t err = {0};
  check(bank_open(uri, &bank, &err), &err);
  check(bank_set_threads(bank, threads), &err);
  check(bank_set_level(bank, level), &err);
  bank_set_sync(bank, durable);

  bank_put_stats_t st, sum = {0};
  double t0 = now();
  for (int v = 0; v < nvol; v++) {
    char path[4400], object[32];
    snprintf(path, sizeof(path), "%s/vol-%d.raw", src, v);
    snprintf(object, sizeof(object), "vol-%d", v);
    check(bank_put_file(bank, "checkpoints/c1/smaug.volume", object, path, NULL,
                        &st, &err),
          &err);
    sum.data_bytes += st.data_bytes;
    sum.zero_bytes += st.zero_bytes;
    sum.new_chunks += st.new_chunks;
    sum.new_bytes += st.new_bytes;
    sum.chunks += st.chunks;
  }
  double t_put = now() - t0;

  t0 = now();
  uint64_t inc_new = 0;
  for (int v = 0; v < nvol; v++) {
    char path[4400], object[32];
    snprintf(path, sizeof(path), "%s/vol-%d.raw", src, v);
    snprintf(object, sizeof(object), "vol-%d", v);
    check(bank_put_file(bank, "checkpoints/c2/smaug.volume", object, path, NULL,
                        &st, &err),
          &err);
    inc_new += st.new_bytes;
  }
  double t_inc = now() - t0;

  t0 = now();
  for (int v = 0; v < nvol; v++) {
    char path[4400], object[32];
    snprintf(path, sizeof(path), "%s/vol-%d.raw", rdst, v);
    snprintf(object, sizeof(object), "vol-%d", v);
    check(bank_get_file(bank, "checkpoints/c1/smaug.volume", object, path, NULL,
                        NULL, &err),
          &err);
  }
  double t_get = now() - t0;

  int identical = 1;
  for (int v = 0; v < nvol && identical; v++) {
    char a[4400], b[4400];
    snprintf(a, sizeof(a), "%s/vol-%d.raw", src, v);
    snprintf(b, sizeof(b), "%s/vol-%d.raw", rdst, v);
    identical = same_file(a, b);
  }
  bank_stats_t bs;
  check(bank_stats(bank, &bs, &err), &err);
  bank_close(bank);

  double mb = (double)bytes / 1e6;
  double put_rate = mb / t_put, get_rate = mb / t_get;
  double cp_rate = mb / t_cp, sha_rate = mb / t_sha;
  double slower = cp_rate < sha_rate ? cp_rate : sha_rate;
  printf("threads=%d level=%d sync=%d\n", threads, level, durable);
  printf("data read %.0f MB, zero/holes skipped %.0f MB, %llu chunks "
         "referenced, %llu stored, bank %.0f MB (chunks) + %.2f MB "
         "(manifests)\n",
         (double)sum.data_bytes / 1e6, (double)sum.zero_bytes / 1e6,
         (unsigned long long)sum.chunks, (unsigned long long)bs.chunks,
         (double)bs.chunk_bytes / 1e6, (double)bs.manifest_bytes / 1e6);
  printf("incremental protect: %.0f ms, %llu new bytes (%.4f%% of the "
         "first)\n",
         t_inc * 1e3, (unsigned long long)inc_new,
         100.0 * (double)inc_new / (double)sum.new_bytes);
  printf("restored files identical: %s\n", identical ? "yes" : "NO");
  if (!keep) {
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    run(cmd);
  }
  printf("RESULT bytes=%llu protect_mb_s=%.0f restore_mb_s=%.0f cp_mb_s=%.0f "
         "sha256sum_mb_s=%.0f ratio=%.2f incremental_ms=%.0f\n",
         (unsigned long long)bytes, put_rate, get_rate, cp_rate, sha_rate,
         put_rate / slower, t_inc * 1e3);
  return identical ? 0 : 1;
}
