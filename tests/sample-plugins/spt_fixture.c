/*
 * spt_fixture.c - the world of the sample-plugin tests (spt_fixture.h):
 * processes started with libuv, calls made with the runtime's client on
 * the test's own loop and waited for by running that loop.
 */
#define _XOPEN_SOURCE 700
#include "spt_fixture.h"

#include "rt.h"
#include "smaug/v1/plugin.pb-c.h"
#include "smaug/v1/plugin.smaug.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define N_PLUGINS 4
static const char *const plugin_names[N_PLUGINS] = {"project", "server",
                                                    "volume", "image"};

typedef struct {
  uv_process_t proc;
  int exited;
  int64_t status;
  int term_signal;
  char addr[512];
} proc_t;

struct spt_s {
  uv_loop_t loop;
  rt_t *rt;
  char dir[256], cloud[300], bank[300], bank_uri[320];
  proc_t plugins[N_PLUGINS];
  rt_channel_t *ch[N_PLUGINS];
  spt_res_t listed[64];
  char listed_buf[64][2][160];
  char list_msg[512]; /* status message of the last ListDependents */
};

static void on_exit_cb(uv_process_t *h, int64_t status, int term_signal) {
  proc_t *p = h->data;
  p->exited = 1;
  p->status = status;
  p->term_signal = term_signal;
}

static void spawn(spt_t *w, proc_t *p, char **argv, const char *log) {
  int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  cr_assert(fd >= 0, "cannot open %s", log);
  uv_stdio_container_t stdio[3] = {
      {.flags = UV_IGNORE}, {.flags = UV_INHERIT_FD}, {.flags = UV_INHERIT_FD}};
  stdio[1].data.fd = fd;
  stdio[2].data.fd = fd;
  /* A session of its own: a test runner cleaning up another test's
   * process group must not signal it (--exit-with-parent still ties it to
   * this process). */
  uv_process_options_t o = {.exit_cb = on_exit_cb,
                            .file = argv[0],
                            .args = argv,
                            .flags = UV_PROCESS_DETACHED,
                            .stdio_count = 3,
                            .stdio = stdio};
  p->proc.data = p;
  int err = uv_spawn(&w->loop, &p->proc, &o);
  close(fd);
  cr_assert(err == 0, "cannot start %s: %s", argv[0], uv_strerror(err));
}

static void on_closed(uv_handle_t *h) {
  ((proc_t *)h->data)->exited = 2;
}

/* Waits for the exit, then for the handle's close (the proc_t may live on
 * the caller's stack). */
static void wait_exit(spt_t *w, proc_t *p) {
  while (!p->exited)
    uv_run(&w->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&p->proc, on_closed);
  while (p->exited != 2)
    uv_run(&w->loop, UV_RUN_ONCE);
}

static const rt_call_opts_t call_opts = {.timeout_ms = 120000,
                                         .wait_for_ready = 1};

typedef struct {
  int done;
  grpc_status_code code;
  char msg[256];
} info_t;

static void on_info_msg(rt_client_call_t *call, const ProtobufCMessage *m,
                        void *data) {}

static void on_info_done(rt_client_call_t *call, grpc_status_code code,
                         const char *message, void *data) {
  info_t *in = data;
  in->done = 1;
  in->code = code;
  snprintf(in->msg, sizeof(in->msg), "%s", message ? message : "");
}

spt_t *spt_new(const char *gen_args) {
  spt_t *w = calloc(1, sizeof(*w));
  cr_assert(w != NULL);
  snprintf(w->dir, sizeof(w->dir), "/tmp/spt-XXXXXX");
  cr_assert(mkdtemp(w->dir) != NULL);
  snprintf(w->cloud, sizeof(w->cloud), "%s/cloud", w->dir);
  snprintf(w->bank, sizeof(w->bank), "%s/bank", w->dir);
  snprintf(w->bank_uri, sizeof(w->bank_uri), "file://%s", w->bank);
  cr_assert(uv_loop_init(&w->loop) == 0);
  cr_assert(rt_new(&w->loop, &w->rt) == 0);

  char *argv[32], log[400], gen[] = SPT_BIN_DIR "/smaug-cloud-gen";
  char args[512] = "";
  int n = 0;
  argv[n++] = gen;
  argv[n++] = "--dir";
  argv[n++] = w->cloud;
  if (gen_args != NULL) {
    snprintf(args, sizeof(args), "%s", gen_args);
    for (char *t = strtok(args, " "); t != NULL && n < 30;
         t = strtok(NULL, " "))
      argv[n++] = t;
  }
  argv[n] = NULL;
  proc_t gp = {0};
  snprintf(log, sizeof(log), "%s/cloud-gen.log", w->dir);
  spawn(w, &gp, argv, log);
  wait_exit(w, &gp);
  cr_assert(gp.status == 0, "smaug-cloud-gen failed, see %s", log);

  for (int i = 0; i < N_PLUGINS; i++) {
    proc_t *p = &w->plugins[i];
    char bin[300], listen[600];
    snprintf(bin, sizeof(bin), "%s/smaug-plugin-%s", SPT_BIN_DIR,
             plugin_names[i]);
    snprintf(p->addr, sizeof(p->addr), "unix:%s/%s.sock", w->dir,
             plugin_names[i]);
    snprintf(listen, sizeof(listen), "%s", p->addr);
    char *pargv[] = {bin,      "--listen",           listen, "--cloud",
                     w->cloud, "--work-dir",         w->dir, "--bank-root",
                     w->bank,  "--exit-with-parent", NULL};
    snprintf(log, sizeof(log), "%s/%s.log", w->dir, plugin_names[i]);
    spawn(w, p, pargv, log);
    cr_assert(rt_channel_get(w->rt, p->addr, &w->ch[i]) == 0);
  }
  /* Every plugin answers before the test starts, so that a stop at the end
   * never lands before a plugin's signal handlers are in place. */
  for (int i = 0; i < N_PLUGINS; i++) {
    Smaug__V1__GetPluginInfoRequest req =
        SMAUG__V1__GET_PLUGIN_INFO_REQUEST__INIT;
    req.protocol_major = 1;
    info_t in = {0};
    cr_assert(smaug_v1_protection_plugin_get_plugin_info(
                  w->ch[i], &req, &call_opts, on_info_msg, on_info_done, &in,
                  NULL) == 0);
    while (!in.done)
      uv_run(&w->loop, UV_RUN_ONCE);
    cr_assert_eq(in.code, GRPC_STATUS_OK, "smaug-plugin-%s: GetPluginInfo: %s",
                 plugin_names[i], in.msg);
  }
  return w;
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *f) {
  return remove(path);
}

void spt_free(spt_t *w) {
  for (int i = 0; i < N_PLUGINS; i++) {
    rt_channel_release(w->ch[i]);
    if (!w->plugins[i].exited)
      uv_process_kill(&w->plugins[i].proc, SIGTERM);
  }
  for (int i = 0; i < N_PLUGINS; i++) {
    wait_exit(w, &w->plugins[i]);
    cr_expect(w->plugins[i].status == 0 && w->plugins[i].term_signal == 0,
              "smaug-plugin-%s exited with %lld (signal %d)", plugin_names[i],
              (long long)w->plugins[i].status, w->plugins[i].term_signal);
  }
  rt_free(w->rt);
  uv_run(&w->loop, UV_RUN_DEFAULT);
  cr_expect(uv_loop_close(&w->loop) == 0);
  if (getenv("SPT_KEEP") == NULL)
    nftw(w->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  free(w);
}

const char *spt_cloud(const spt_t *w) {
  return w->cloud;
}
const char *spt_bank_dir(const spt_t *w) {
  return w->bank;
}
const char *spt_bank_uri(const spt_t *w) {
  return w->bank_uri;
}

void spt_path(const spt_t *w, const char *kind, const char *id, const char *ext,
              char *buf, size_t len) {
  snprintf(buf, len, "%s/projects/proj-1/%s/%s%s", w->cloud, kind, id, ext);
}

const char *spt_plugin_of(const char *type) {
  const char *dot = strchr(type, '.');
  return dot != NULL ? dot + 1 : type;
}

static rt_channel_t *channel(spt_t *w, const char *plugin) {
  for (int i = 0; i < N_PLUGINS; i++)
    if (strcmp(plugin_names[i], plugin) == 0)
      return w->ch[i];
  cr_assert_fail("no plugin %s", plugin);
  return NULL;
}

/* ------------------------------------------------------------ calls */

typedef struct {
  int done;
  spt_result_t *out;
} pending_t;

static void copy_meta(spt_result_t *out, size_t n, char **k, char **v) {
  for (size_t i = 0; i < n && out->n_meta < SPT_MAX_META; i++) {
    snprintf(out->meta_k[out->n_meta], sizeof(out->meta_k[0]), "%s", k[i]);
    snprintf(out->meta_v[out->n_meta], sizeof(out->meta_v[0]), "%s", v[i]);
    out->n_meta++;
  }
}

static void on_msg(rt_client_call_t *call, const ProtobufCMessage *m,
                   void *data) {
  pending_t *p = data;
  spt_result_t *out = p->out;
  if (m->descriptor == &smaug__v1__parallel_activity_response__descriptor) {
    const Smaug__V1__ParallelActivityResponse *r = (const void *)m;
    if (r->event_case == SMAUG__V1__PARALLEL_ACTIVITY_RESPONSE__EVENT_PROGRESS)
      out->n_progress++;
    else if (r->event_case ==
             SMAUG__V1__PARALLEL_ACTIVITY_RESPONSE__EVENT_RESULT) {
      size_t n = r->result->state.len;
      cr_assert(n <= sizeof(out->state));
      if (n > 0)
        memcpy(out->state, r->result->state.data, n);
      out->state_len = n;
    }
  } else if (m->descriptor == &smaug__v1__sync_activity_response__descriptor) {
    const Smaug__V1__SyncActivityResponse *r = (const void *)m;
    if (r->event_case == SMAUG__V1__SYNC_ACTIVITY_RESPONSE__EVENT_PROGRESS)
      out->n_progress++;
    else if (r->event_case == SMAUG__V1__SYNC_ACTIVITY_RESPONSE__EVENT_RESULT) {
      const Smaug__V1__SyncResult *s = r->result;
      snprintf(out->restored_id, sizeof(out->restored_id), "%s",
               s->restored_id);
      for (size_t i = 0; i < s->n_metadata; i++)
        copy_meta(out, 1, &s->metadata[i]->key, &s->metadata[i]->value);
    }
  }
}

static void on_done(rt_client_call_t *call, grpc_status_code code,
                    const char *message, void *data) {
  pending_t *p = data;
  p->done = 1;
  if (p->out != NULL) {
    p->out->code = code;
    snprintf(p->out->msg, sizeof(p->out->msg), "%s", message ? message : "");
  }
}

static void wait_done(spt_t *w, pending_t *p) {
  while (!p->done)
    uv_run(&w->loop, UV_RUN_ONCE);
}

grpc_status_code spt_call(spt_t *w, const spt_call_t *c, spt_result_t *out) {
  memset(out, 0, sizeof(*out));
  Smaug__V1__OperationRef op = SMAUG__V1__OPERATION_REF__INIT;
  op.id = (char *)c->op_id;
  op.kind = (Smaug__V1__OperationKind)c->kind;
  op.checkpoint_id = (char *)c->ckpt;
  Smaug__V1__Resource res = SMAUG__V1__RESOURCE__INIT;
  res.type = (char *)c->res.type;
  res.id = (char *)c->res.id;
  Smaug__V1__Resource__ExtraEntry proj = SMAUG__V1__RESOURCE__EXTRA_ENTRY__INIT;
  Smaug__V1__Resource__ExtraEntry *extra[] = {&proj};
  proj.key = "project";
  proj.value = "proj-1";
  res.n_extra = 1;
  res.extra = extra;

  Smaug__V1__ActivityRequest req = SMAUG__V1__ACTIVITY_REQUEST__INIT;
  req.operation = &op;
  req.resource = &res;
  char section[512], key[600];
  snprintf(section, sizeof(section), "checkpoints/%s/%s/%s", c->ckpt,
           c->res.type, c->res.id);
  snprintf(key, sizeof(key), "%s/%s/%s/%s", c->op_id, c->res.type, c->res.id,
           c->activity == 1 ? "parallel" : "sync");
  req.bank_uri = w->bank_uri;
  req.bank_section = section;
  req.attempt = 1;
  req.idempotency_key = key;
  req.activity = (Smaug__V1__Activity)c->activity;
  req.state.data = (uint8_t *)c->state;
  req.state.len = c->state_len;

  /* parameters "k=v,k=v" */
  char pbuf[512] = "";
  Smaug__V1__ActivityRequest__ParametersEntry pe[8], *pp[8];
  size_t np = 0;
  if (c->params != NULL) {
    snprintf(pbuf, sizeof(pbuf), "%s", c->params);
    char *save = NULL;
    for (char *t = strtok_r(pbuf, ",", &save); t != NULL && np < 8;
         t = strtok_r(NULL, ",", &save)) {
      char *eq = strchr(t, '=');
      cr_assert(eq != NULL);
      *eq = '\0';
      smaug__v1__activity_request__parameters_entry__init(&pe[np]);
      pe[np].key = t;
      pe[np].value = eq + 1;
      pp[np] = &pe[np];
      np++;
    }
  }
  req.n_parameters = np;
  req.parameters = pp;

  Smaug__V1__ActivityRequest__SavedMetadataEntry se[SPT_MAX_META],
      *sp[SPT_MAX_META];
  size_t ns = 0;
  for (size_t i = 0; c->saved != NULL && i < c->saved->n_meta; i++) {
    smaug__v1__activity_request__saved_metadata_entry__init(&se[ns]);
    se[ns].key = (char *)c->saved->meta_k[i];
    se[ns].value = (char *)c->saved->meta_v[i];
    sp[ns] = &se[ns];
    ns++;
  }
  req.n_saved_metadata = ns;
  req.saved_metadata = sp;

  Smaug__V1__ChildResult cr[16], *crp[16];
  Smaug__V1__Resource cres[16];
  cr_assert(c->n_children <= 16);
  for (size_t i = 0; i < c->n_children; i++) {
    smaug__v1__child_result__init(&cr[i]);
    smaug__v1__resource__init(&cres[i]);
    cres[i].type = (char *)c->children[i].type;
    cres[i].id = (char *)c->children[i].id;
    cr[i].resource = &cres[i];
    cr[i].restored_id =
        (char *)(c->children[i].restored_id ? c->children[i].restored_id : "");
    crp[i] = &cr[i];
  }
  req.n_children = c->n_children;
  req.children = crp;

  pending_t p = {.out = out};
  rt_channel_t *ch = channel(w, spt_plugin_of(c->res.type));
  int err = c->activity == 1
                ? smaug_v1_protection_plugin_parallel_activity(
                      ch, &req, &call_opts, on_msg, on_done, &p, NULL)
                : smaug_v1_protection_plugin_sync_activity(
                      ch, &req, &call_opts, on_msg, on_done, &p, NULL);
  cr_assert(err == 0);
  wait_done(w, &p);
  return out->code;
}

grpc_status_code spt_pair(spt_t *w, const spt_call_t *c, spt_result_t *out) {
  spt_call_t pc = *c;
  pc.activity = 1;
  spt_result_t pr;
  grpc_status_code code = spt_call(w, &pc, &pr);
  if (code != GRPC_STATUS_OK && code != GRPC_STATUS_UNIMPLEMENTED) {
    *out = pr;
    return code;
  }
  spt_call_t sc = *c;
  sc.activity = 2;
  sc.state = pr.state;
  sc.state_len = code == GRPC_STATUS_OK ? pr.state_len : 0;
  return spt_call(w, &sc, out);
}

typedef struct {
  int done;
  grpc_status_code code;
  spt_t *w;
  size_t n, max;
  spt_res_t *out;
  uint32_t cancelled;
} list_t;

static void on_list_msg(rt_client_call_t *call, const ProtobufCMessage *m,
                        void *data) {
  list_t *l = data;
  if (m->descriptor == &smaug__v1__cancel_operation_response__descriptor) {
    l->cancelled = ((const Smaug__V1__CancelOperationResponse *)m)->cancelled;
    return;
  }
  const Smaug__V1__ListDependentsResponse *r = (const void *)m;
  for (size_t i = 0; i < r->n_dependents && l->n < l->max && l->n < 64; i++) {
    const Smaug__V1__Resource *d = r->dependents[i];
    snprintf(l->w->listed_buf[l->n][0], 160, "%s", d->type);
    snprintf(l->w->listed_buf[l->n][1], 160, "%s", d->id);
    int has_project = 0;
    for (size_t k = 0; k < d->n_extra; k++)
      has_project |= strcmp(d->extra[k]->key, "project") == 0 &&
                     strcmp(d->extra[k]->value, "proj-1") == 0;
    cr_expect(has_project, "dependent %s lacks extra[project]", d->id);
    l->out[l->n].type = l->w->listed_buf[l->n][0];
    l->out[l->n].id = l->w->listed_buf[l->n][1];
    l->n++;
  }
}

static void on_list_done(rt_client_call_t *call, grpc_status_code code,
                         const char *message, void *data) {
  list_t *l = data;
  l->done = 1;
  l->code = code;
  snprintf(l->w->list_msg, sizeof(l->w->list_msg), "%s",
           message != NULL ? message : "");
}

grpc_status_code spt_list(spt_t *w, spt_res_t res, spt_res_t *out, size_t max,
                          size_t *n) {
  Smaug__V1__Resource r = SMAUG__V1__RESOURCE__INIT;
  r.type = (char *)res.type;
  r.id = (char *)res.id;
  Smaug__V1__Resource__ExtraEntry proj = SMAUG__V1__RESOURCE__EXTRA_ENTRY__INIT;
  Smaug__V1__Resource__ExtraEntry *extra[] = {&proj};
  proj.key = "project";
  proj.value = "proj-1";
  r.n_extra = 1;
  r.extra = extra;
  Smaug__V1__ListDependentsRequest req =
      SMAUG__V1__LIST_DEPENDENTS_REQUEST__INIT;
  req.resource = &r;
  list_t l = {.w = w, .max = max, .out = out};
  cr_assert(smaug_v1_protection_plugin_list_dependents(
                channel(w, spt_plugin_of(res.type)), &req, &call_opts,
                on_list_msg, on_list_done, &l, NULL) == 0);
  while (!l.done)
    uv_run(&w->loop, UV_RUN_ONCE);
  *n = l.n;
  return l.code;
}

int spt_cancel(spt_t *w, const char *plugin, const char *op_id) {
  Smaug__V1__CancelOperationRequest req =
      SMAUG__V1__CANCEL_OPERATION_REQUEST__INIT;
  req.operation_id = (char *)op_id;
  list_t l = {.w = w};
  cr_assert(smaug_v1_protection_plugin_cancel_operation(
                channel(w, plugin), &req, &call_opts, on_list_msg, on_list_done,
                &l, NULL) == 0);
  while (!l.done)
    uv_run(&w->loop, UV_RUN_ONCE);
  return l.code == GRPC_STATUS_OK ? (int)l.cancelled : -1;
}

const char *spt_meta(const spt_result_t *r, const char *key) {
  for (size_t i = 0; i < r->n_meta; i++)
    if (strcmp(r->meta_k[i], key) == 0)
      return r->meta_v[i];
  return NULL;
}

/* ------------------------------------------------------------ files */

static uint64_t walk_bytes, walk_files;
static int walk_one(const char *path, const struct stat *st, int flag,
                    struct FTW *f) {
  if (flag == FTW_F) {
    walk_bytes += (uint64_t)st->st_size;
    walk_files++;
  }
  return 0;
}

uint64_t spt_bank_bytes(const spt_t *w) {
  walk_bytes = walk_files = 0;
  nftw(w->bank, walk_one, 16, FTW_PHYS);
  return walk_bytes;
}

uint64_t spt_bank_chunks(const spt_t *w) {
  char dir[400];
  snprintf(dir, sizeof(dir), "%s/chunks", w->bank);
  walk_bytes = walk_files = 0;
  nftw(dir, walk_one, 16, FTW_PHYS);
  return walk_files;
}

int spt_same_file(const char *a, const char *b) {
  FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
  int same = fa != NULL && fb != NULL;
  while (same) {
    char ba[65536], bb[65536];
    size_t na = fread(ba, 1, sizeof(ba), fa), nb = fread(bb, 1, sizeof(bb), fb);
    if (na != nb || memcmp(ba, bb, na) != 0)
      same = 0;
    if (na == 0)
      break;
  }
  if (fa != NULL)
    fclose(fa);
  if (fb != NULL)
    fclose(fb);
  return same;
}

char *spt_read(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return NULL;
  char *buf = calloc(1, 1 << 20);
  size_t n = fread(buf, 1, (1 << 20) - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

const char *spt_list_message(const spt_t *w) {
  return w->list_msg;
}

void spt_assert_missing_named(spt_t *w, const char *type, const char *kind,
                              const char *ext) {
  spt_call_t c = {.kind = 1,
                  .activity = 1,
                  .op_id = "aaaa0001-protect",
                  .ckpt = "c1",
                  .res = {type, "nope"}};
  spt_result_t r;
  char want[160];
  cr_assert_eq(spt_call(w, &c, &r), GRPC_STATUS_NOT_FOUND);
  snprintf(want, sizeof(want), "/projects/proj-1/%s/nope%s", kind, ext);
  cr_assert(strstr(r.msg, want) != NULL, "%s", r.msg);
}

void spt_assert_same_copy(const spt_t *w, const char *kind, const char *id,
                          const char *new_id, const char *ext) {
  char a[512], b[512];
  spt_path(w, kind, id, ext, a, sizeof(a));
  spt_path(w, kind, new_id, ext, b, sizeof(b));
  cr_assert(spt_same_file(a, b), "%s differs from %s", b, a);
}
