/*
 * harness.c - see harness.h. Binaries come from the build tree through the
 * SMAUGD_PATH and FAKE_PLUGIN_PATH definitions.
 */
#include "harness.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct client_s {
  uv_loop_t loop;
  rt_t *rt;
  rt_channel_t *ch;
};

void tmpdir_make(char *buf, size_t len) {
  snprintf(buf, len, "/tmp/smaug-api-XXXXXX");
  if (mkdtemp(buf) == NULL)
    abort();
}

void tmpdir_remove(const char *dir) {
  char cmd[600];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "cannot remove %s\n", dir);
}

static int read_addr(const char *log, char *addr, size_t len) {
  FILE *f = fopen(log, "r");
  if (f == NULL)
    return -1;
  char line[2048];
  int found = -1;
  while (fgets(line, sizeof(line), f)) {
    const char *m = strstr(line, "msg=listening addr=");
    if (m == NULL)
      continue;
    m += strlen("msg=listening addr=");
    size_t k = strcspn(m, " \n");
    if (k >= len)
      k = len - 1;
    memcpy(addr, m, k);
    addr[k] = '\0';
    found = 0; /* keep the last one: a restarted process appends */
  }
  fclose(f);
  return found;
}

int proc_start(proc_t *p, const char *log, char *const argv[]) {
  snprintf(p->log, sizeof(p->log), "%s", log);
  /* Lines from an earlier run of the same log are not this start. */
  FILE *t = fopen(log, "a");
  if (t) {
    fprintf(t, "---- start\n");
    fclose(t);
  }
  long before = 0;
  FILE *f = fopen(log, "r");
  if (f) {
    fseek(f, 0, SEEK_END);
    before = ftell(f);
    fclose(f);
  }
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    /* Its own process group: signals meant for a test runner's group do
     * not reach it, and it never outlives the test by accident of one. */
    setpgid(0, 0);
    /* A test that crashes must not leave its servers running. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = open(log, O_WRONLY | O_APPEND | O_CREAT, 0600);
    dup2(fd, 1);
    dup2(fd, 2);
    close(fd);
    execv(argv[0], argv);
    _exit(127);
  }
  p->pid = pid;
  for (int i = 0; i < 1500; i++) {
    f = fopen(log, "r");
    if (f) {
      fseek(f, before, SEEK_SET);
      char line[2048];
      while (fgets(line, sizeof(line), f))
        if (strstr(line, "msg=listening addr=")) {
          fclose(f);
          return read_addr(log, p->addr, sizeof(p->addr));
        }
      fclose(f);
    }
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid) {
      p->pid = 0;
      return -1;
    }
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  return -1;
}

int proc_stop(proc_t *p, int sig) {
  int st = -1;
  if (p->pid <= 0)
    return -1;
  kill(p->pid, sig);
  waitpid(p->pid, &st, 0);
  p->pid = 0;
  return st;
}

int procs_start_all(const char *dir, const char *const *plugin_args,
                    proc_t *plug, proc_t *smaugd, client_t **cl, char *why,
                    size_t len) {
  if (plugin_start(plug, dir, "fake", plugin_args) != 0) {
    snprintf(why, len, "plugin start");
    return -1;
  }
  const char *sa[] = {"--plugin", plug->addr, NULL};
  if (smaugd_start(smaugd, dir, NULL, sa) != 0) {
    snprintf(why, len, "smaugd start");
    return -1;
  }
  if ((*cl = client_new(smaugd->addr)) == NULL ||
      client_wait_plugins(*cl, 1) != 0) {
    snprintf(why, len, "plugin not registered");
    return -1;
  }
  return 0;
}

int procs_stop_all(client_t **cl, proc_t *smaugd, proc_t *const *plugins,
                   const char *dir) {
  client_free(*cl);
  *cl = NULL;
  int st = smaugd->pid ? proc_stop(smaugd, SIGTERM) : 0;
  for (size_t i = 0; plugins && plugins[i]; i++)
    proc_stop(plugins[i], SIGTERM);
  tmpdir_remove(dir);
  return st;
}

void res_init(res_t *x, const char *type, const char *id,
              const char *children) {
  smaug__v1__resource__init(&x->r);
  x->r.type = (char *)type;
  x->r.id = (char *)id;
  if (children) {
    smaug__v1__resource__extra_entry__init(&x->e);
    x->e.key = "children";
    x->e.value = (char *)children;
    x->ep = &x->e;
    x->r.n_extra = 1;
    x->r.extra = &x->ep;
  }
}

int client_create_plan_of(client_t *c, const char *name, res_t *rs, size_t n,
                          Smaug__V1__ParameterSet *ps, char *id, char *msg,
                          size_t len) {
  Smaug__V1__Resource *rp[64];
  for (size_t i = 0; i < n && i < 64; i++)
    rp[i] = &rs[i].r;
  return client_create_plan(c, name, rp, n < 64 ? n : 64, ps, id, msg, len);
}

int proc_log_count(const proc_t *p, const char *needle) {
  FILE *f = fopen(p->log, "r");
  if (f == NULL)
    return 0;
  char line[4096];
  int n = 0;
  while (fgets(line, sizeof(line), f))
    n += strstr(line, needle) != NULL;
  fclose(f);
  return n;
}

int smaugd_start(proc_t *p, const char *dir, const char *listen,
                 const char *const *extra) {
  char data[600], log[600];
  snprintf(data, sizeof(data), "%s/data", dir);
  snprintf(log, sizeof(log), "%s/smaugd.log", dir);
  const char *argv[64] = {SMAUGD_PATH, "--listen",
                          listen ? listen : "127.0.0.1:0", "--data-dir", data};
  size_t n = 5;
  for (size_t i = 0; extra && extra[i] && n < 62; i++)
    argv[n++] = extra[i];
  argv[n] = NULL;
  return proc_start(p, log, (char *const *)argv);
}

int plugin_start(proc_t *p, const char *dir, const char *name,
                 const char *const *extra) {
  char log[600];
  snprintf(log, sizeof(log), "%s/%s.log", dir, name);
  const char *argv[64] = {FAKE_PLUGIN_PATH, "--name", name};
  size_t n = 3;
  for (size_t i = 0; extra && extra[i] && n < 62; i++)
    argv[n++] = extra[i];
  argv[n] = NULL;
  return proc_start(p, log, (char *const *)argv);
}

client_t *client_new(const char *addr) {
  client_t *c = calloc(1, sizeof(*c));
  uv_loop_init(&c->loop);
  if (rt_new(&c->loop, &c->rt) != 0 || rt_channel_get(c->rt, addr, &c->ch)) {
    free(c);
    return NULL;
  }
  return c;
}

void client_free(client_t *c) {
  if (c == NULL)
    return;
  rt_channel_release(c->ch);
  rt_free(c->rt);
  uv_run(&c->loop, UV_RUN_DEFAULT);
  uv_loop_close(&c->loop);
  free(c);
}

typedef struct wait_s {
  int done;
  int code;
  char msg[1024];
  ProtobufCMessage **resps;
  size_t n;
  const ProtobufCMessageDescriptor *out;
  client_until_fn until; /* may be NULL */
  void *until_data;
  int met;
} wait_t;

static void on_msg(rt_client_call_t *call, const ProtobufCMessage *msg,
                   void *data) {
  wait_t *w = data;
  ProtobufCMessage *copy = NULL;
  if (rt_msg_copy(msg, &copy) != 0)
    abort(); /* out of memory: the test cannot go on */
  w->resps = realloc(w->resps, (w->n + 1) * sizeof(*w->resps));
  w->resps[w->n++] = copy;
  if (w->until && !w->met &&
      w->until((Smaug__V1__WatchOperationResponse *const *)w->resps, w->n,
               w->until_data)) {
    w->met = 1;
    rt_client_call_cancel(call);
  }
}

static void on_done(rt_client_call_t *call, grpc_status_code code,
                    const char *message, void *data) {
  wait_t *w = data;
  w->done = 1;
  w->code = code;
  snprintf(w->msg, sizeof(w->msg), "%s", message ? message : "");
}

static int call_wait(client_t *c, size_t index, const ProtobufCMessage *req,
                     wait_t *w, int64_t timeout_ms) {
  const rt_method_t *m = &smaug_v1_orchestrator_methods[index];
  w->out = m->output;
  rt_call_opts_t o = {.timeout_ms = timeout_ms, .max_message_bytes = 64 << 20};
  if (rt_client_call_start(c->ch, m, req, &o, on_msg, on_done, w, NULL))
    return -1;
  while (!w->done)
    uv_run(&c->loop, UV_RUN_ONCE);
  return 0;
}

static int call_timed(client_t *c, size_t index, const ProtobufCMessage *req,
                      ProtobufCMessage ***resps, size_t *n, char *msg,
                      size_t len, int64_t timeout_ms) {
  wait_t w = {0};
  if (call_wait(c, index, req, &w, timeout_ms))
    return -1;
  if (msg)
    snprintf(msg, len, "%s", w.msg);
  if (resps) {
    *resps = w.resps;
    *n = w.n;
  } else {
    resps_free(w.resps, w.n);
  }
  return w.code;
}

int client_call(client_t *c, size_t index, const ProtobufCMessage *req,
                ProtobufCMessage ***resps, size_t *n, char *msg, size_t len) {
  return call_timed(c, index, req, resps, n, msg, len, 120000);
}

int client_watch_for(client_t *c, const char *op_id, uint64_t after, int ms,
                     Smaug__V1__WatchOperationResponse ***evs, size_t *n) {
  Smaug__V1__WatchOperationRequest req =
      SMAUG__V1__WATCH_OPERATION_REQUEST__INIT;
  req.operation_id = (char *)op_id;
  req.after_sequence = after;
  return call_timed(c, SMAUG_V1_ORCHESTRATOR_WATCH_OPERATION, &req.base,
                    (ProtobufCMessage ***)evs, n, NULL, 0, ms);
}

int client_watch_until(client_t *c, const char *op_id, client_until_fn until,
                       void *data, int ms,
                       Smaug__V1__WatchOperationResponse ***evs, size_t *n) {
  Smaug__V1__WatchOperationRequest req =
      SMAUG__V1__WATCH_OPERATION_REQUEST__INIT;
  req.operation_id = (char *)op_id;
  wait_t w = {.until = until, .until_data = data};
  if (call_wait(c, SMAUG_V1_ORCHESTRATOR_WATCH_OPERATION, &req.base, &w, ms))
    return 0;
  *evs = (Smaug__V1__WatchOperationResponse **)w.resps;
  *n = w.n;
  return w.met;
}

void resps_free(ProtobufCMessage **r, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (r[i])
      protobuf_c_message_free_unpacked(r[i], NULL);
  free(r);
}

ProtobufCMessage *client_unary(client_t *c, size_t index,
                               const ProtobufCMessage *req, int *code,
                               char *msg, size_t len) {
  ProtobufCMessage **r = NULL;
  size_t n = 0;
  *code = client_call(c, index, req, &r, &n, msg, len);
  ProtobufCMessage *one = n ? r[0] : NULL;
  for (size_t i = 1; i < n; i++)
    protobuf_c_message_free_unpacked(r[i], NULL);
  free(r);
  return one;
}

int client_watch(client_t *c, const char *op_id, uint64_t after,
                 Smaug__V1__WatchOperationResponse ***evs, size_t *n) {
  Smaug__V1__WatchOperationRequest req =
      SMAUG__V1__WATCH_OPERATION_REQUEST__INIT;
  req.operation_id = (char *)op_id;
  req.after_sequence = after;
  return client_call(c, SMAUG_V1_ORCHESTRATOR_WATCH_OPERATION, &req.base,
                     (ProtobufCMessage ***)evs, n, NULL, 0);
}

const char *client_wait(client_t *c, const char *op_id) {
  static char final[64];
  Smaug__V1__WatchOperationResponse **evs;
  size_t n;
  final[0] = '\0';
  if (client_watch(c, op_id, 0, &evs, &n) == 0 && n > 0 &&
      evs[n - 1]->event->final_status)
    snprintf(final, sizeof(final), "%s", evs[n - 1]->event->final_status);
  resps_free((ProtobufCMessage **)evs, n);
  return final;
}

int client_create_plan(client_t *c, const char *name, Smaug__V1__Resource **rp,
                       size_t n, Smaug__V1__ParameterSet *ps, char *id,
                       char *msg, size_t len) {
  Smaug__V1__Plan plan = SMAUG__V1__PLAN__INIT;
  plan.name = (char *)name;
  plan.n_resources = n;
  plan.resources = rp;
  plan.parameters = ps;
  Smaug__V1__CreatePlanRequest req = SMAUG__V1__CREATE_PLAN_REQUEST__INIT;
  req.plan = &plan;
  int code;
  Smaug__V1__CreatePlanResponse *r = (void *)client_unary(
      c, SMAUG_V1_ORCHESTRATOR_CREATE_PLAN, &req.base, &code, msg, len);
  if (r) {
    snprintf(id, 64, "%s", r->plan->id);
    protobuf_c_message_free_unpacked(&r->base, NULL);
  }
  return code;
}

int client_protect(client_t *c, const char *plan_id, char *cp_id, char *op_id,
                   char *msg, size_t len) {
  Smaug__V1__ProtectRequest req = SMAUG__V1__PROTECT_REQUEST__INIT;
  req.plan_id = (char *)plan_id;
  int code;
  Smaug__V1__ProtectResponse *r = (void *)client_unary(
      c, SMAUG_V1_ORCHESTRATOR_PROTECT, &req.base, &code, msg, len);
  if (r) {
    snprintf(cp_id, 64, "%s", r->checkpoint_id);
    snprintf(op_id, 64, "%s", r->operation_id);
    protobuf_c_message_free_unpacked(&r->base, NULL);
  }
  return code;
}

const char *client_restore_wait(client_t *c, const char *cp,
                                Smaug__V1__ParameterSet *ps, char *msg,
                                size_t len) {
  Smaug__V1__RestoreRequest req = SMAUG__V1__RESTORE_REQUEST__INIT;
  req.checkpoint_id = (char *)cp;
  req.parameters = ps;
  int code;
  Smaug__V1__RestoreResponse *r = (void *)client_unary(
      c, SMAUG_V1_ORCHESTRATOR_RESTORE, &req.base, &code, msg, len);
  if (r == NULL)
    return "";
  const char *final = client_wait(c, r->operation_id);
  protobuf_c_message_free_unpacked(&r->base, NULL);
  return final;
}

const char *client_delete_wait(client_t *c, const char *cp, char *msg,
                               size_t len) {
  Smaug__V1__DeleteCheckpointRequest req =
      SMAUG__V1__DELETE_CHECKPOINT_REQUEST__INIT;
  req.id = (char *)cp;
  int code;
  Smaug__V1__DeleteCheckpointResponse *r = (void *)client_unary(
      c, SMAUG_V1_ORCHESTRATOR_DELETE_CHECKPOINT, &req.base, &code, msg, len);
  if (r == NULL)
    return "";
  const char *final = client_wait(c, r->operation_id);
  protobuf_c_message_free_unpacked(&r->base, NULL);
  return final;
}

Smaug__V1__Checkpoint *client_get_checkpoint(client_t *c, const char *id,
                                             int *code, char *msg, size_t len) {
  Smaug__V1__GetCheckpointRequest req = SMAUG__V1__GET_CHECKPOINT_REQUEST__INIT;
  req.id = (char *)id;
  Smaug__V1__GetCheckpointResponse *r = (void *)client_unary(
      c, SMAUG_V1_ORCHESTRATOR_GET_CHECKPOINT, &req.base, code, msg, len);
  if (r == NULL)
    return NULL;
  Smaug__V1__Checkpoint *cp = r->checkpoint;
  r->checkpoint = NULL;
  protobuf_c_message_free_unpacked(&r->base, NULL);
  return cp;
}

const Smaug__V1__ResourceResult *
result_find(Smaug__V1__ResourceResult *const *rs, size_t n, const char *id) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(rs[i]->resource->id, id) == 0)
      return rs[i];
  return NULL;
}

int client_register(client_t *c, const char *addr, int replace, char *msg,
                    size_t len) {
  Smaug__V1__RegisterPluginRequest req =
      SMAUG__V1__REGISTER_PLUGIN_REQUEST__INIT;
  req.address = (char *)addr;
  req.replace = replace;
  return client_call(c, SMAUG_V1_ORCHESTRATOR_REGISTER_PLUGIN, &req.base, NULL,
                     NULL, msg, len);
}

int client_wait_plugins(client_t *c, size_t n) {
  Smaug__V1__ListPluginsRequest req = SMAUG__V1__LIST_PLUGINS_REQUEST__INIT;
  for (int i = 0; i < 1500; i++) {
    int code;
    Smaug__V1__ListPluginsResponse *r = (void *)client_unary(
        c, SMAUG_V1_ORCHESTRATOR_LIST_PLUGINS, &req.base, &code, NULL, 0);
    size_t serving = 0;
    for (size_t k = 0; r && k < r->n_plugins; k++)
      serving += r->plugins[k]->health ==
                 SMAUG__V1__PLUGIN_HEALTH__PLUGIN_HEALTH_SERVING;
    if (r)
      protobuf_c_message_free_unpacked(&r->base, NULL);
    if (serving >= n)
      return 0;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  return -1;
}
