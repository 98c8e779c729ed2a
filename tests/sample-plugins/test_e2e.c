/*
 * test_e2e.c - protect, restore and delete of a whole generated cloud
 * (shared volume included) through the four plugins, run in DAG order as
 * the orchestrator would: every Parallel first, then the Syncs children
 * before parents (volumes and images, then servers, then the project).
 * Checks the restored bytes and references, that a corrupt chunk fails
 * only its resource, that re-protecting an unchanged cloud adds under 1%
 * to the bank, and that delete frees unreferenced chunks and keeps shared
 * ones.
 */
#include "spt_fixture.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static spt_t *w;
static void setup(void) {
  w = spt_new("--volume-mib 4 --image-kib 256");
}
static void teardown(void) {
  spt_free(w);
}

TestSuite(e2e, .init = setup, .fini = teardown, .timeout = 300);

#define MAXR 16

/* The graph as discovered, minus the network (its plugin is the Python
 * one, tested elsewhere), with every resource's results. */
typedef struct {
  size_t n;
  spt_res_t res[MAXR];
  int level[MAXR]; /* 0 volume/image, 1 server, 2 project */
  spt_result_t protect[MAXR], last[MAXR];
  grpc_status_code code[MAXR];
} graph_t;

static int level_of(const char *type) {
  if (strcmp(type, "smaug.server") == 0)
    return 1;
  if (strcmp(type, "smaug.project") == 0)
    return 2;
  return 0;
}

static void discover(graph_t *g) {
  spt_res_t deps[32];
  size_t n = 0;
  cr_assert_eq(
      spt_list(w, (spt_res_t){"smaug.project", "proj-1"}, deps, 32, &n),
      GRPC_STATUS_OK);
  static char ids[MAXR][2][64];
  g->n = 0;
  for (size_t i = 0; i < n; i++) {
    if (strcmp(deps[i].type, "smaug.network") == 0)
      continue;
    cr_assert_lt(g->n, MAXR - 1);
    snprintf(ids[g->n][0], 64, "%s", deps[i].type);
    snprintf(ids[g->n][1], 64, "%s", deps[i].id);
    g->res[g->n] = (spt_res_t){ids[g->n][0], ids[g->n][1]};
    g->level[g->n] = level_of(deps[i].type);
    g->n++;
  }
  g->res[g->n] = (spt_res_t){"smaug.project", "proj-1"};
  g->level[g->n] = 2;
  g->n++;
}

/* The children of server `id` with their restored ids from `g`. */
static size_t server_children(const graph_t *g, const char *id,
                              spt_child_t *kids) {
  spt_res_t deps[16];
  size_t n = 0, k = 0;
  cr_assert_eq(spt_list(w, (spt_res_t){"smaug.server", id}, deps, 16, &n),
               GRPC_STATUS_OK);
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < g->n; j++)
      if (strcmp(g->res[j].type, deps[i].type) == 0 &&
          strcmp(g->res[j].id, deps[i].id) == 0) {
        kids[k++] =
            (spt_child_t){g->res[j].type, g->res[j].id, g->last[j].restored_id};
      }
  return k;
}

/* Runs one operation over the graph; a resource whose child failed is
 * skipped (code UNKNOWN), as the orchestrator does. */
static void run(graph_t *g, int kind, const char *op, const char *ckpt) {
  spt_result_t state[MAXR];
  int has_p[MAXR] = {0};
  for (size_t i = 0; i < g->n; i++) {
    spt_call_t c = {.kind = kind,
                    .activity = 1,
                    .op_id = op,
                    .ckpt = ckpt,
                    .res = g->res[i],
                    .saved = &g->protect[i]};
    grpc_status_code code = spt_call(w, &c, &state[i]);
    cr_assert(code == GRPC_STATUS_OK || code == GRPC_STATUS_UNIMPLEMENTED,
              "P %s: %s", g->res[i].id, state[i].msg);
    has_p[i] = code == GRPC_STATUS_OK;
  }
  for (int level = 0; level <= 2; level++) {
    for (size_t i = 0; i < g->n; i++) {
      if (g->level[i] != level)
        continue;
      spt_child_t kids[16];
      size_t nk = 0;
      int skipped = 0;
      if (level == 1 && kind == 2) {
        nk = server_children(g, g->res[i].id, kids);
        for (size_t k = 0; k < nk; k++)
          skipped |= kids[k].restored_id[0] == '\0';
      }
      if (skipped) {
        g->code[i] = GRPC_STATUS_UNKNOWN;
        continue;
      }
      spt_call_t c = {.kind = kind,
                      .activity = 2,
                      .op_id = op,
                      .ckpt = ckpt,
                      .res = g->res[i],
                      .saved = &g->protect[i],
                      .state = has_p[i] ? state[i].state : NULL,
                      .state_len = has_p[i] ? state[i].state_len : 0,
                      .children = kids,
                      .n_children = nk};
      g->code[i] = spt_call(w, &c, &g->last[i]);
    }
  }
  if (kind == 1)
    memcpy(g->protect, g->last, sizeof(g->protect));
}

static void expect_all_ok(const graph_t *g, const char *what) {
  for (size_t i = 0; i < g->n; i++)
    cr_assert_eq(g->code[i], GRPC_STATUS_OK, "%s %s: %s", what, g->res[i].id,
                 g->last[i].msg);
}

static const char *ext_of(const char *type, const char **kind) {
  if (strcmp(type, "smaug.volume") == 0) {
    *kind = "volumes";
    return ".raw";
  }
  if (strcmp(type, "smaug.image") == 0) {
    *kind = "images";
    return ".img";
  }
  *kind = "servers";
  return ".json";
}

Test(e2e, restore_recreates_data_and_references) {
  graph_t g;
  discover(&g);
  run(&g, 1, "aaaa0001-protect", "c1");
  expect_all_ok(&g, "protect");
  run(&g, 2, "deadbeef-restore", "c1");
  expect_all_ok(&g, "restore");
  for (size_t i = 0; i < g.n; i++) {
    const char *type = g.res[i].type, *kind;
    char want[200];
    if (strcmp(type, "smaug.project") == 0) {
      cr_assert_str_eq(g.last[i].restored_id, "proj-1");
      continue;
    }
    snprintf(want, sizeof(want), "%s-rdeadbeef", g.res[i].id);
    cr_assert_str_eq(g.last[i].restored_id, want);
    const char *ext = ext_of(type, &kind);
    char a[512], b[512];
    spt_path(w, kind, g.res[i].id, ext, a, sizeof(a));
    spt_path(w, kind, want, ext, b, sizeof(b));
    if (strcmp(type, "smaug.server") != 0) {
      cr_assert(spt_same_file(a, b), "%s differs from %s", b, a);
      continue;
    }
    /* Servers: same descriptor, with every volume and the image renamed
     * to their restored ids (a shared volume gets one restored copy). */
    json_t *orig = json_load_file(a, 0, NULL),
           *rest = json_load_file(b, 0, NULL);
    cr_assert(orig != NULL && rest != NULL);
    json_t *ov = json_object_get(orig, "volumes"),
           *rv = json_object_get(rest, "volumes");
    cr_assert_eq(json_array_size(ov), json_array_size(rv));
    for (size_t k = 0; k < json_array_size(ov); k++) {
      char r[200];
      snprintf(r, sizeof(r), "%s-rdeadbeef",
               json_string_value(json_array_get(ov, k)));
      cr_assert_str_eq(json_string_value(json_array_get(rv, k)), r);
    }
    char img[200];
    snprintf(img, sizeof(img), "%s-rdeadbeef",
             json_string_value(json_object_get(orig, "image")));
    cr_assert_str_eq(json_string_value(json_object_get(rest, "image")), img);
    json_decref(orig);
    json_decref(rest);
  }
  run(&g, 3, "bbbb0001-delete", "c1");
  expect_all_ok(&g, "delete");
  cr_assert_eq(spt_bank_chunks(w), 0,
               "chunks left after deleting the only "
               "checkpoint");
}

Test(e2e, corrupt_chunk_fails_only_its_resource) {
  graph_t g;
  discover(&g);
  run(&g, 1, "aaaa0001-protect", "c1");
  expect_all_ok(&g, "protect");
  /* Damage the first chunk of p1-vol-2 (only on p1-srv-2). */
  char path[600];
  snprintf(
      path, sizeof(path),
      "%s/manifests/checkpoints/c1/smaug.volume/p1-vol-2/data.manifest.json",
      spt_bank_dir(w));
  json_t *m = json_load_file(path, 0, NULL);
  cr_assert(m != NULL);
  char sha[65];
  snprintf(sha, sizeof(sha), "%s",
           json_string_value(json_object_get(
               json_array_get(json_object_get(m, "chunks"), 0), "sha256")));
  json_decref(m);
  snprintf(path, sizeof(path), "%s/chunks/%.2s/%s", spt_bank_dir(w), sha, sha);
  int fd = open(path, O_WRONLY);
  cr_assert(fd >= 0);
  cr_assert_eq(pwrite(fd, "XXXXXXXXXXXXXXXX", 16, 64), 16);
  close(fd);

  run(&g, 2, "deadbeef-restore", "c1");
  for (size_t i = 0; i < g.n; i++) {
    const char *id = g.res[i].id;
    if (strcmp(id, "p1-vol-2") == 0) {
      cr_assert_neq(g.code[i], GRPC_STATUS_OK);
      cr_assert(strstr(g.last[i].msg, sha) != NULL,
                "reason does not name the chunk: %s", g.last[i].msg);
    } else if (strcmp(id, "p1-srv-2") == 0) {
      cr_assert_eq(g.code[i], GRPC_STATUS_UNKNOWN, "server was not skipped");
    } else {
      cr_assert_eq(g.code[i], GRPC_STATUS_OK, "%s: %s", id, g.last[i].msg);
    }
  }
}

Test(e2e, second_protect_of_an_unchanged_cloud_adds_under_1_percent) {
  graph_t g;
  discover(&g);
  run(&g, 1, "aaaa0001-protect", "c1");
  expect_all_ok(&g, "protect");
  uint64_t first = spt_bank_bytes(w);
  run(&g, 1, "aaaa0002-protect", "c2");
  expect_all_ok(&g, "second protect");
  uint64_t second = spt_bank_bytes(w);
  cr_log_info("bank: %llu bytes after c1, %llu after c2 (+%.3f%%)",
              (unsigned long long)first, (unsigned long long)second,
              100.0 * (double)(second - first) / (double)first);
  cr_assert_lt((second - first) * 100, first, "grew by %llu of %llu bytes",
               (unsigned long long)(second - first), (unsigned long long)first);
}

Test(e2e, delete_frees_unreferenced_chunks_and_keeps_shared_ones) {
  graph_t g;
  discover(&g);
  run(&g, 1, "aaaa0001-protect", "c1");
  expect_all_ok(&g, "protect c1");
  /* Change the first MiB of p1-vol-1: c2 shares every other chunk. */
  char vol[512];
  spt_path(w, "volumes", "p1-vol-1", ".raw", vol, sizeof(vol));
  int fd = open(vol, O_WRONLY);
  cr_assert(fd >= 0);
  char *buf = malloc(1 << 20);
  for (int i = 0; i < 1 << 20; i++)
    buf[i] = (char)(i * 7 + 3);
  cr_assert_eq(pwrite(fd, buf, 1 << 20, 0), 1 << 20);
  close(fd);
  free(buf);
  graph_t g2 = g;
  run(&g2, 1, "aaaa0002-protect", "c2");
  expect_all_ok(&g2, "protect c2");
  uint64_t before = spt_bank_chunks(w);

  run(&g, 3, "bbbb0001-delete", "c1");
  expect_all_ok(&g, "delete c1");
  uint64_t after = spt_bank_chunks(w);
  cr_assert_lt(after, before, "no chunk was freed");
  cr_assert_gt(after, 0);

  /* c2 still restores completely: the shared chunks were kept. */
  run(&g2, 2, "deadbeef-restore", "c2");
  expect_all_ok(&g2, "restore c2");
  char restored[512];
  spt_path(w, "volumes", "p1-vol-1-rdeadbeef", ".raw", restored,
           sizeof(restored));
  cr_assert(spt_same_file(vol, restored));
}
