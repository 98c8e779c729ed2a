/*
 * smaug-cloud-gen - creates a sample cloud for the sample plugins.
 *
 * The layout is documented in docs/sample-cloud.md. Volumes are sparse raw
 * files mixing random data, written zero blocks and holes, so that the
 * bank's zero and hole handling is exercised; the content is a function of
 * --seed, so two runs with the same arguments give byte-identical clouds.
 */
#define _GNU_SOURCE
#include "bank_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLOCK (1024 * 1024)

typedef struct {
  const char *dir;
  int projects, servers, volumes, images, networks, shared;
  long volume_mib, image_kib;
  uint64_t seed;
} opts_t;

static uint64_t rng_next(uint64_t *s) {
  /* xorshift64*: fast, deterministic; not for anything secret. */
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545F4914F6CDD1DULL;
}

static void rng_fill(uint64_t *s, unsigned char *buf, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v = rng_next(s);
    memcpy(buf + i, &v, 8);
  }
  for (; i < n; i++)
    buf[i] = (unsigned char)rng_next(s);
}

static int write_json(const char *path, json_t *doc) {
  int rc = json_dump_file(doc, path, JSON_INDENT(2) | JSON_SORT_KEYS);
  json_decref(doc);
  if (rc != 0) {
    fprintf(stderr, "smaug-cloud-gen: cannot write %s\n", path);
    return -EIO;
  }
  return 0;
}

/* Writes `size` bytes: per 1 MiB block, 5 in 8 random, 2 in 8 holes, 1 in 8
 * written zeros. The last block may be partial. */
static int write_volume(const char *path, long size, uint64_t *rng) {
  unsigned char *buf = malloc(BLOCK);
  if (buf == NULL)
    return -ENOMEM;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    free(buf);
    return -errno;
  }
  int rc = 0;
  for (long off = 0; off < size && rc == 0; off += BLOCK) {
    size_t n = (size_t)(size - off < BLOCK ? size - off : BLOCK);
    unsigned kind = (unsigned)(rng_next(rng) % 8);
    if (kind < 2)
      continue; /* hole */
    if (kind == 2)
      memset(buf, 0, n);
    else
      rng_fill(rng, buf, n);
    if (pwrite(fd, buf, n, off) != (ssize_t)n)
      rc = -errno;
  }
  if (rc == 0 && ftruncate(fd, size) != 0)
    rc = -errno;
  if (close(fd) != 0 && rc == 0)
    rc = -errno;
  free(buf);
  return rc;
}

static int write_image(const char *path, long size, uint64_t *rng) {
  unsigned char *buf = malloc((size_t)size);
  if (buf == NULL)
    return -ENOMEM;
  /* Text-like content, so that compression has something to do. */
  static const char words[] = "smaug protects the hoard of every server ";
  for (long i = 0; i < size; i++)
    buf[i] = (rng_next(rng) % 16 == 0) ? (unsigned char)rng_next(rng)
                                       : (unsigned char)words[i % 41];
  FILE *f = fopen(path, "wb");
  int rc = 0;
  if (f == NULL)
    rc = -errno;
  else {
    if (fwrite(buf, 1, (size_t)size, f) != (size_t)size)
      rc = -EIO;
    if (fclose(f) != 0 && rc == 0)
      rc = -errno;
  }
  free(buf);
  return rc;
}

static int gen_project(const opts_t *o, int p, uint64_t *rng) {
  char root[4096], path[4200], pid[64];
  snprintf(pid, sizeof pid, "proj-%d", p + 1);
  snprintf(root, sizeof root, "%s/projects/%s", o->dir, pid);
  const char *sub[] = {"servers", "volumes", "images", "networks"};
  for (int i = 0; i < 4; i++) {
    snprintf(path, sizeof path, "%s/%s", root, sub[i]);
    int rc = bank_fs_mkdirs(AT_FDCWD, path);
    if (rc < 0)
      return rc;
  }
  snprintf(path, sizeof path, "%s/project.json", root);
  int rc = write_json(path, json_pack("{s:s, s:s}", "id", pid, "name", pid));
  for (int n = 0; rc == 0 && n < o->networks; n++) {
    char id[64], cidr[32];
    snprintf(id, sizeof id, "p%d-net-%d", p + 1, n + 1);
    snprintf(cidr, sizeof cidr, "10.%d.%d.0/24", p % 256, n % 256);
    snprintf(path, sizeof path, "%s/networks/%s.json", root, id);
    rc = write_json(
        path, json_pack("{s:s, s:s, s:s}", "id", id, "name", id, "cidr", cidr));
  }
  for (int v = 0; rc == 0 && v < o->volumes; v++) {
    snprintf(path, sizeof path, "%s/volumes/p%d-vol-%d.raw", root, p + 1,
             v + 1);
    rc = write_volume(path, o->volume_mib * BLOCK, rng);
  }
  for (int i = 0; rc == 0 && i < o->images; i++) {
    snprintf(path, sizeof path, "%s/images/p%d-img-%d.img", root, p + 1, i + 1);
    rc = write_image(path, o->image_kib * 1024, rng);
  }
  for (int s = 0; rc == 0 && s < o->servers; s++) {
    char id[64], ref[64];
    snprintf(id, sizeof id, "p%d-srv-%d", p + 1, s + 1);
    json_t *vols = json_array();
    /* Volumes are dealt round-robin; the first `shared` volumes are also
     * attached to the next server, so they have two parents. */
    for (int v = 0; v < o->volumes; v++) {
      int owner = v % o->servers;
      int shared_with = (v < o->shared) ? (owner + 1) % o->servers : -1;
      if (owner == s || shared_with == s) {
        snprintf(ref, sizeof ref, "p%d-vol-%d", p + 1, v + 1);
        json_array_append_new(vols, json_string(ref));
      }
    }
    json_t *doc =
        json_pack("{s:s, s:s, s:o}", "id", id, "name", id, "volumes", vols);
    if (o->images > 0) {
      snprintf(ref, sizeof ref, "p%d-img-%d", p + 1, s % o->images + 1);
      json_object_set_new(doc, "image", json_string(ref));
    }
    if (o->networks > 0) {
      snprintf(ref, sizeof ref, "p%d-net-%d", p + 1, s % o->networks + 1);
      json_object_set_new(doc, "network", json_string(ref));
    }
    snprintf(path, sizeof path, "%s/servers/%s.json", root, id);
    rc = write_json(path, doc);
  }
  return rc;
}

static void usage(FILE *f) {
  fprintf(
      f, "usage: smaug-cloud-gen --dir DIR [--projects N] [--servers N]\n"
         "         [--volumes N] [--images N] [--networks N] [--shared N]\n"
         "         [--volume-mib N] [--image-kib N] [--seed N]\n"
         "Creates a sample cloud (docs/sample-cloud.md). Defaults: 1 project,\n"
         "3 servers, 5 volumes (1 shared), 2 images, 1 network, 16 MiB\n"
         "volumes, 512 KiB images, seed 1.\n");
}

static int parse_long(const char *name, const char *s, long min, long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < min) {
    fprintf(stderr,
            "smaug-cloud-gen: %s: expected an integer >= %ld, got '%s'\n", name,
            min, s);
    return -1;
  }
  *out = v;
  return 0;
}

int main(int argc, char **argv) {
  opts_t o = {NULL, 1, 3, 5, 2, 1, 1, 16, 512, 1};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      return 0;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "smaug-cloud-gen: %s needs a value\n", a);
      usage(stderr);
      return 2;
    }
    const char *v = argv[++i];
    long n = 0;
    struct {
      const char *name;
      int *ival;
      long *lval;
      long min;
    } num[] = {{"--projects", &o.projects, NULL, 1},
               {"--servers", &o.servers, NULL, 1},
               {"--volumes", &o.volumes, NULL, 0},
               {"--images", &o.images, NULL, 0},
               {"--networks", &o.networks, NULL, 0},
               {"--shared", &o.shared, NULL, 0},
               {"--volume-mib", NULL, &o.volume_mib, 1},
               {"--image-kib", NULL, &o.image_kib, 1}};
    int matched = 0;
    if (strcmp(a, "--dir") == 0) {
      o.dir = v;
      matched = 1;
    } else if (strcmp(a, "--seed") == 0) {
      if (parse_long(a, v, 0, &n) != 0)
        return 2;
      o.seed = (uint64_t)n;
      matched = 1;
    }
    for (size_t k = 0; !matched && k < sizeof num / sizeof num[0]; k++) {
      if (strcmp(a, num[k].name) != 0)
        continue;
      if (parse_long(a, v, num[k].min, &n) != 0)
        return 2;
      if (num[k].ival)
        *num[k].ival = (int)n;
      else
        *num[k].lval = n;
      matched = 1;
    }
    if (!matched) {
      fprintf(stderr, "smaug-cloud-gen: unknown option %s\n", a);
      usage(stderr);
      return 2;
    }
  }
  if (o.dir == NULL) {
    fprintf(stderr, "smaug-cloud-gen: --dir is required\n");
    usage(stderr);
    return 2;
  }
  if (o.shared > o.volumes)
    o.shared = o.volumes;
  if (o.servers < 2)
    o.shared = 0; /* sharing needs two servers */
  uint64_t rng = o.seed * 0x9E3779B97F4A7C15ULL + 1;
  for (int p = 0; p < o.projects; p++) {
    int rc = gen_project(&o, p, &rng);
    if (rc < 0) {
      fprintf(stderr, "smaug-cloud-gen: %s\n", strerror(-rc));
      return 1;
    }
  }
  printf("cloud %s: %d project(s), each %d servers, %d volumes (%d shared), "
         "%d images, %d networks\n",
         o.dir, o.projects, o.servers, o.volumes, o.shared, o.images,
         o.networks);
  return 0;
}
