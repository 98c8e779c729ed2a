/*
 * check.c - smaug-plugin-check, a conformance checker for protection
 * plugins in any language, in the spirit of csi-sanity.
 *
 *   smaug-plugin-check ADDR [--type T] [--resource-id ID] [--param k=v]...
 *                      [--bank file:///dir] [--settle-ms N] [--deadline-ms N]
 *                      [--outside-bank file:///dir]
 *                      [--tls-ca FILE [--tls-cert FILE --tls-key FILE]]
 *                      [--tls-server-name NAME]
 *
 * With --tls-ca it speaks TLS, trusting that CA, and with --tls-cert and
 * --tls-key presents that client certificate (a plugin started with
 * --tls-client-ca refuses callers without one).
 * With --outside-bank (a bank the plugin's --bank-root does not cover),
 * it also checks that the plugin refuses that bank, and a ".." escape
 * from --bank to it, with PERMISSION_DENIED naming the URI, and creates
 * nothing there.
 *
 * It talks to the plugin only through the protocol and a file:// bank it
 * controls. What it cannot see through the protocol (whether Sync waited
 * for background work, whether a replay redid work) it sees in the bank:
 * the plugin writes its protect data into the resource's section, so the
 * section must be complete and unchanging once Sync has returned, and a
 * replay must leave every object untouched (same inode, mtime and
 * content). docs/writing-a-plugin.md states this contract for authors.
 * Prints one line per check, then "N passed, N failed"; exits 1 on any
 * failure, 2 on a bad command line.
 */
#include "chk_client.h"

#include <ftw.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct {
  chk_t c;
  const char *target;
  const char *type;
  char *type_owned; /* the type chosen from GetPluginInfo */
  const char *rid;
  char bank_uri[1100];
  char bank_dir[1024];
  const char *outside; /* --outside-bank; NULL: not checked */
  rt_creds_t *creds;   /* --tls-*; NULL: plaintext */
  int own_bank;
  size_t n_params;
  const char *pk[CHK_MAX_KV], *pv[CHK_MAX_KV];
  int settle_ms;
  int deadline_ms;
  int passed, failed;
  int progress_ok;
  char run[64];
  int ops[4][2]; /* [kind][parallel, sync] supported */
} ctx_t;

static void result(ctx_t *x, int ok, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void result(ctx_t *x, int ok, const char *name, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  printf("%s %s: %s\n", ok ? "PASS" : "FAIL", name, msg);
  fflush(stdout);
  if (ok)
    x->passed++;
  else
    x->failed++;
}

static void skip(const char *name, const char *why) {
  printf("SKIP %s: %s\n", name, why);
  fflush(stdout);
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------ snapshot */

typedef struct {
  char path[512];
  long long size;
  long long mtime_ns;
  unsigned long long ino;
  unsigned long long sum; /* FNV-1a of the content */
} obj_t;

typedef struct {
  obj_t *v;
  size_t n;
} snap_t;

static snap_t *g_snap;
static size_t g_root_len;

static unsigned long long file_sum(const char *path) {
  FILE *f = fopen(path, "rb");
  unsigned long long h = 1469598103934665603ull;
  if (f == NULL)
    return 0;
  int ch;
  while ((ch = fgetc(f)) != EOF) {
    h ^= (unsigned char)ch;
    h *= 1099511628211ull;
  }
  fclose(f);
  return h;
}

static int snap_visit(const char *path, const struct stat *st, int flag,
                      struct FTW *ftw) {
  if (flag != FTW_F || !S_ISREG(st->st_mode))
    return 0;
  obj_t *nv = realloc(g_snap->v, (g_snap->n + 1) * sizeof(*nv));
  if (nv == NULL)
    return 1;
  g_snap->v = nv;
  obj_t *o = &nv[g_snap->n++];
  snprintf(o->path, sizeof(o->path), "%s", path + g_root_len);
  o->size = (long long)st->st_size;
  o->mtime_ns =
      (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
  o->ino = (unsigned long long)st->st_ino;
  o->sum = file_sum(path);
  return 0;
}

static int cmp_obj(const void *a, const void *b) {
  return strcmp(((const obj_t *)a)->path, ((const obj_t *)b)->path);
}

/* Objects of the section (regular files, recursively), sorted. */
static void snap_take(ctx_t *x, const char *section, snap_t *s) {
  char dir[2048];
  snprintf(dir, sizeof(dir), "%s/%s", x->bank_dir, section);
  s->v = NULL;
  s->n = 0;
  g_snap = s;
  g_root_len = strlen(dir);
  nftw(dir, snap_visit, 16, FTW_PHYS);
  if (s->n > 1)
    qsort(s->v, s->n, sizeof(obj_t), cmp_obj);
}

/* NULL when equal, else a description of the first difference. */
static const char *snap_diff(const snap_t *a, const snap_t *b, char *buf,
                             size_t len) {
  size_t i = 0, j = 0;
  while (i < a->n || j < b->n) {
    int c = i == a->n ? 1 : j == b->n ? -1 : strcmp(a->v[i].path, b->v[j].path);
    if (c < 0) {
      snprintf(buf, len, "%s disappeared", a->v[i].path);
      return buf;
    }
    if (c > 0) {
      snprintf(buf, len, "%s appeared", b->v[j].path);
      return buf;
    }
    const obj_t *o = &a->v[i], *p = &b->v[j];
    if (o->size != p->size || o->sum != p->sum) {
      snprintf(buf, len, "%s changed content", o->path);
      return buf;
    }
    if (o->ino != p->ino || o->mtime_ns != p->mtime_ns) {
      snprintf(buf, len, "%s was rewritten", o->path);
      return buf;
    }
    i++;
    j++;
  }
  return NULL;
}

static void snap_free(snap_t *s) {
  free(s->v);
  s->v = NULL;
  s->n = 0;
}

/* ------------------------------------------------------------ requests */

static void req_init(ctx_t *x, chk_req_t *r, const char *op, int kind,
                     const char *cp, const char *section, int sync,
                     char *keybuf, size_t keylen) {
  memset(r, 0, sizeof(*r));
  r->op_id = op;
  r->op_kind = kind;
  r->checkpoint_id = cp;
  r->type = x->type;
  r->id = x->rid;
  r->bank_uri = x->bank_uri;
  r->section = section;
  r->sync = sync;
  snprintf(keybuf, keylen, "%s/%s/%s/%s", op, x->type, x->rid,
           sync ? "sync" : "parallel");
  r->key = keybuf;
  r->n_params = x->n_params;
  for (size_t i = 0; i < x->n_params; i++) {
    r->param_k[i] = x->pk[i];
    r->param_v[i] = x->pv[i];
  }
}

static void note_progress(ctx_t *x, const chk_act_t *a) {
  if (!a->monotonic)
    x->progress_ok = 0;
}

/* Parallel (when the type has one) then Sync with Parallel's state. */
typedef struct {
  chk_act_t par, sync;
  int has_par;
} pair_t;

static int run_pair(ctx_t *x, const char *op, int kind, const char *cp,
                    const char *section, size_t n_saved, const char **sk,
                    const char **sv, pair_t *out, const char **why) {
  char key[1024];
  chk_req_t r;
  memset(out, 0, sizeof(*out));
  out->has_par = x->ops[kind][0];
  if (out->has_par) {
    req_init(x, &r, op, kind, cp, section, 0, key, sizeof(key));
    if (chk_act_run(&x->c, &r, 60000, &out->par) != 0) {
      *why = "cannot start ParallelActivity";
      return -1;
    }
    note_progress(x, &out->par);
    if (out->par.code != GRPC_STATUS_OK) {
      *why = out->par.message;
      return -1;
    }
  }
  req_init(x, &r, op, kind, cp, section, 1, key, sizeof(key));
  if (out->has_par) {
    r.state = out->par.state;
    r.state_len = out->par.state_len;
  }
  r.n_saved = n_saved;
  for (size_t i = 0; i < n_saved; i++) {
    r.saved_k[i] = sk[i];
    r.saved_v[i] = sv[i];
  }
  if (chk_act_run(&x->c, &r, 60000, &out->sync) != 0) {
    *why = "cannot start SyncActivity";
    return -1;
  }
  note_progress(x, &out->sync);
  if (out->sync.code != GRPC_STATUS_OK) {
    *why = out->sync.message;
    return -1;
  }
  if (!out->sync.has_result || out->sync.n_results != 1 ||
      (out->has_par && (!out->par.has_result || out->par.n_results != 1))) {
    *why = "a stream did not end with exactly one result";
    return -1;
  }
  return 0;
}

static void pair_clear(pair_t *p) {
  chk_act_clear(&p->par);
  chk_act_clear(&p->sync);
}

static int same_sync(const chk_act_t *a, const chk_act_t *b) {
  if (a->n_meta != b->n_meta || strcmp(a->restored_id ? a->restored_id : "",
                                       b->restored_id ? b->restored_id : ""))
    return 0;
  for (size_t i = 0; i < a->n_meta; i++) {
    const char *v = chk_act_meta(b, a->meta_k[i]);
    if (v == NULL || strcmp(v, a->meta_v[i]) != 0)
      return 0;
  }
  return 1;
}

static int same_par(const chk_act_t *a, const chk_act_t *b) {
  return a->state_len == b->state_len &&
         (a->state_len == 0 || memcmp(a->state, b->state, a->state_len) == 0);
}

/* Replays both calls of a finished pair with the same keys. */
static void check_replay(ctx_t *x, const char *name, const char *op, int kind,
                         const char *cp, const char *section,
                         const pair_t *first, size_t n_saved, const char **sk,
                         const char **sv) {
  snap_t before, after;
  snap_take(x, section, &before);
  pair_t again;
  const char *why = NULL;
  char diff[700];
  if (run_pair(x, op, kind, cp, section, n_saved, sk, sv, &again, &why) != 0)
    result(x, 0, name, "replay failed: %s", why);
  else if (first->has_par && !same_par(&first->par, &again.par))
    result(x, 0, name, "replayed Parallel returned a different state");
  else if (!same_sync(&first->sync, &again.sync))
    result(x, 0, name, "replayed Sync returned a different result");
  else {
    sleep_ms(x->settle_ms);
    snap_take(x, section, &after);
    const char *d = snap_diff(&before, &after, diff, sizeof(diff));
    if (d != NULL)
      result(x, 0, name, "the replay redid work: %s", d);
    else
      result(x, 1, name, "same result, bank section untouched");
    snap_free(&after);
  }
  pair_clear(&again);
  snap_free(&before);
}

/* --------------------------------------------------------------- checks */

static int check_info(ctx_t *x) {
  Smaug__V1__GetPluginInfoResponse *info = NULL;
  grpc_status_code code;
  if (chk_info(&x->c, &info, &code, 10000) != 0 || info == NULL) {
    result(x, 0, "info", "GetPluginInfo failed (status %s)",
           rt_status_name(code));
    return -1;
  }
  const char *bad = NULL;
  if (info->name[0] == '\0')
    bad = "empty name";
  else if (info->version[0] == '\0')
    bad = "empty version";
  else if (info->protocol_major != 1)
    bad = "protocol_major is not 1";
  else if (info->n_types == 0)
    bad = "no resource types";
  const Smaug__V1__ResourceTypeInfo *mine = NULL;
  for (size_t i = 0; bad == NULL && i < info->n_types; i++) {
    const Smaug__V1__ResourceTypeInfo *t = info->types[i];
    if (t->type[0] == '\0')
      bad = "a type has no name";
    for (size_t j = 0; bad == NULL && j < i; j++)
      if (strcmp(info->types[j]->type, t->type) == 0)
        bad = "a type is listed twice";
    const char *schemas[] = {t->options_schema, t->restore_schema};
    for (int k = 0; bad == NULL && k < 2; k++) {
      if (schemas[k][0] == '\0')
        continue;
      json_t *j = json_loads(schemas[k], 0, NULL);
      if (j == NULL || !json_is_object(j))
        bad = "a schema is not a JSON object";
      json_decref(j);
    }
    int seen[4] = {0};
    for (size_t k = 0; bad == NULL && k < t->n_operations; k++) {
      const Smaug__V1__OperationSupport *o = t->operations[k];
      if (o->kind < 1 || o->kind > 3)
        bad = "an operation has an unknown kind";
      else if (seen[o->kind]++)
        bad = "an operation is listed twice";
      else if (!o->parallel && !o->sync)
        bad = "an operation lists no activity";
    }
    if (bad == NULL &&
        (x->type != NULL ? strcmp(t->type, x->type) == 0 : mine == NULL))
      mine = t;
  }
  if (bad == NULL && mine == NULL)
    bad = "the --type is not among the plugin's types";
  if (bad == NULL) {
    x->type = x->type_owned = strdup(mine->type);
    for (size_t k = 0; k < mine->n_operations; k++) {
      x->ops[mine->operations[k]->kind][0] = mine->operations[k]->parallel;
      x->ops[mine->operations[k]->kind][1] = mine->operations[k]->sync;
    }
    if (!x->ops[1][0] && !x->ops[1][1])
      bad = "the type does not support protect";
  }
  if (bad != NULL)
    result(x, 0, "info", "%s", bad);
  else
    result(x, 1, "info", "%s %s, %zu type(s); checking %s", info->name,
           info->version, info->n_types, x->type);
  smaug__v1__get_plugin_info_response__free_unpacked(info, NULL);
  return bad == NULL ? 0 : -1;
}

static void check_health(ctx_t *x) {
  const char *svcs[] = {"", "smaug.v1.ProtectionPlugin"};
  for (int i = 0; i < 2; i++) {
    int serving = 0;
    grpc_status_code code = GRPC_STATUS_UNKNOWN;
    if (chk_health(&x->c, svcs[i], &serving, &code) != 0 ||
        code != GRPC_STATUS_OK || serving != 1) {
      result(x, 0, "health", "Check(\"%s\"): status %s, serving=%d", svcs[i],
             rt_status_name(code), serving);
      return;
    }
  }
  result(x, 1, "health", "SERVING for the server and the plugin service");
}

static void check_reflection(ctx_t *x) {
  char **svcs = NULL;
  const char *why = "";
  if (chk_reflection_list(x->target, x->creds, 10000, &svcs, &why) != 0) {
    result(x, 0, "reflection", "list_services: %s", why);
    return;
  }
  int found = 0;
  for (char **s = svcs; *s != NULL; s++)
    found |= strcmp(*s, "smaug.v1.ProtectionPlugin") == 0;
  chk_strv_free(svcs);
  result(x, found, "reflection",
         found ? "lists smaug.v1.ProtectionPlugin"
               : "smaug.v1.ProtectionPlugin is not listed");
}

static void check_bad_request(ctx_t *x) {
  char key[1024];
  chk_req_t r;
  chk_act_t a;
  const char *what[] = {"no operation id", "no resource id"};
  for (int i = 0; i < 2; i++) {
    req_init(x, &r, i == 0 ? "" : "chk-bad", 1, "cp", "bad/section",
             !x->ops[1][0], key, sizeof(key));
    if (i == 1)
      r.id = "";
    if (chk_act_run(&x->c, &r, 10000, &a) != 0 ||
        a.code != GRPC_STATUS_INVALID_ARGUMENT) {
      result(x, 0, "bad-request", "%s: got %s, want INVALID_ARGUMENT", what[i],
             rt_status_name(a.code));
      chk_act_clear(&a);
      return;
    }
    chk_act_clear(&a);
  }
  result(x, 1, "bad-request",
         "INVALID_ARGUMENT for a missing operation id "
         "and a missing resource id");
}

static void op_name(ctx_t *x, char *buf, size_t len, const char *what) {
  snprintf(buf, len, "%s-%s", x->run, what);
}

static void section_of(ctx_t *x, char *buf, size_t len, const char *cp) {
  snprintf(buf, len, "checkpoints/%s/%s/%s", cp, x->type, x->rid);
}

static void check_flow(ctx_t *x) {
  char op[128], cp[128], sec[512], diff[700];
  op_name(x, cp, sizeof(cp), "cp");
  section_of(x, sec, sizeof(sec), cp);
  op_name(x, op, sizeof(op), "protect");
  pair_t prot;
  const char *why = NULL;
  if (run_pair(x, op, 1, cp, sec, 0, NULL, NULL, &prot, &why) != 0) {
    result(x, 0, "protect", "%s", why);
    pair_clear(&prot);
    return;
  }
  result(x, 1, "protect", "Parallel then Sync with the state handed over");

  /* Sync must have waited: the section is complete now and stays so. */
  snap_t s1, s2;
  snap_take(x, sec, &s1);
  sleep_ms(x->settle_ms);
  snap_take(x, sec, &s2);
  const char *d = snap_diff(&s1, &s2, diff, sizeof(diff));
  if (d != NULL)
    result(x, 0, "protect-waits",
           "the bank section changed after Sync returned: %s", d);
  else if (s1.n == 0)
    result(x, 0, "protect-waits",
           "the bank section is empty after Sync (the plugin must write its "
           "data there)");
  else
    result(x, 1, "protect-waits", "%zu object(s), unchanged %d ms after Sync",
           s1.n, x->settle_ms);
  snap_free(&s1);
  snap_free(&s2);

  check_replay(x, "protect-replay", op, 1, cp, sec, &prot, 0, NULL, NULL);

  /* Saved metadata for restore and delete, as the orchestrator would. */
  const char *sk[CHK_MAX_KV], *sv[CHK_MAX_KV];
  size_t ns = 0;
  for (size_t i = 0; i < prot.sync.n_meta && ns < CHK_MAX_KV; i++, ns++) {
    sk[ns] = prot.sync.meta_k[i];
    sv[ns] = prot.sync.meta_v[i];
  }
  const char *names[] = {NULL, NULL, "restore", "delete"};
  for (int kind = 2; kind <= 3; kind++) {
    char rname[64];
    if (!x->ops[kind][0] && !x->ops[kind][1]) {
      skip(names[kind], "not supported by the type");
      continue;
    }
    op_name(x, op, sizeof(op), names[kind]);
    pair_t p;
    if (run_pair(x, op, kind, cp, sec, ns, sk, sv, &p, &why) != 0) {
      result(x, 0, names[kind], "%s", why);
      pair_clear(&p);
      continue;
    }
    if (kind == 3) {
      snap_take(x, sec, &s1);
      if (s1.n != 0)
        result(x, 0, "delete", "%zu object(s) left in the section after Sync",
               s1.n);
      else
        result(x, 1, "delete", "the section is empty after Sync");
      snap_free(&s1);
    } else {
      result(x, 1, "restore", "restored_id \"%s\"", p.sync.restored_id);
    }
    snprintf(rname, sizeof(rname), "%s-replay", names[kind]);
    check_replay(x, rname, op, kind, cp, sec, &p, ns, sk, sv);
    pair_clear(&p);
  }
  pair_clear(&prot);
}

/* Two Parallel calls with one key at once must share one activity. */
static void check_join(ctx_t *x) {
  if (!x->ops[1][0]) {
    skip("protect-join", "the type has no ParallelActivity for protect");
    return;
  }
  char op[128], cp[128], sec[512], key[1024], diff[700];
  op_name(x, op, sizeof(op), "join");
  op_name(x, cp, sizeof(cp), "cp-join");
  section_of(x, sec, sizeof(sec), cp);
  chk_req_t r;
  chk_act_t a, b, s;
  req_init(x, &r, op, 1, cp, sec, 0, key, sizeof(key));
  if (chk_act_start(&x->c, &r, 60000, &a) != 0 ||
      chk_act_start(&x->c, &r, 60000, &b) != 0) {
    result(x, 0, "protect-join", "cannot start the calls");
    return;
  }
  chk_wait(&x->c, &a.done);
  chk_wait(&x->c, &b.done);
  note_progress(x, &a);
  note_progress(x, &b);
  if (a.code != GRPC_STATUS_OK || b.code != GRPC_STATUS_OK)
    result(x, 0, "protect-join", "concurrent calls failed: %s / %s",
           rt_status_name(a.code), rt_status_name(b.code));
  else if (!same_par(&a, &b))
    result(x, 0, "protect-join", "concurrent calls returned different states");
  else {
    req_init(x, &r, op, 1, cp, sec, 1, key, sizeof(key));
    r.state = a.state;
    r.state_len = a.state_len;
    chk_act_run(&x->c, &r, 60000, &s);
    note_progress(x, &s);
    snap_t s1, s2;
    snap_take(x, sec, &s1);
    sleep_ms(x->settle_ms);
    snap_take(x, sec, &s2);
    const char *d = snap_diff(&s1, &s2, diff, sizeof(diff));
    if (s.code != GRPC_STATUS_OK)
      result(x, 0, "protect-join", "Sync after the joined calls: %s",
             s.message);
    else if (d != NULL)
      result(x, 0, "protect-join", "work continued after Sync: %s", d);
    else
      result(x, 1, "protect-join", "both calls got the same result");
    snap_free(&s1);
    snap_free(&s2);
    chk_act_clear(&s);
  }
  chk_act_clear(&a);
  chk_act_clear(&b);
}

/* Leaves a Sync in flight and ends its call with `how`: 0
 * CancelOperation, then checks the work stopped; 1 a short deadline, then
 * checks the work went on: a replay of the Sync (same key) is answered
 * once the work is done, as the orchestrator's retry or its replay after
 * a restart would be. */
static void check_stop(ctx_t *x, int how) {
  const char *name = how == 0 ? "cancel" : "deadline";
  char op[128], cp[128], sec[512], key[1024], diff[700], leak[64];
  snprintf(leak, sizeof(leak), "%s",
           how == 0 ? "cancel-no-leak" : "deadline-replay");
  op_name(x, op, sizeof(op), name);
  op_name(x, cp, sizeof(cp), how == 0 ? "cp-cancel" : "cp-deadline");
  section_of(x, sec, sizeof(sec), cp);
  chk_req_t r;
  chk_act_t par = {0}, s = {0};
  if (x->ops[1][0]) {
    req_init(x, &r, op, 1, cp, sec, 0, key, sizeof(key));
    if (chk_act_run(&x->c, &r, 60000, &par) != 0 ||
        par.code != GRPC_STATUS_OK) {
      result(x, 0, name, "Parallel failed: %s", par.message);
      chk_act_clear(&par);
      return;
    }
  }
  req_init(x, &r, op, 1, cp, sec, 1, key, sizeof(key));
  r.state = par.state;
  r.state_len = par.state_len;
  unsigned n = 0;
  grpc_status_code cc = GRPC_STATUS_OK;
  if (chk_act_start(&x->c, &r, how == 1 ? x->deadline_ms : 60000, &s) != 0) {
    result(x, 0, name, "cannot start Sync");
    chk_act_clear(&par);
    return;
  }
  if (how == 0) {
    /* Either order is fine: a Sync arriving after the cancel must also
     * end in CANCELLED. */
    if (chk_cancel_op(&x->c, op, &n, &cc) != 0 || cc != GRPC_STATUS_OK) {
      result(x, 0, name, "CancelOperation failed: %s", rt_status_name(cc));
      chk_act_cancel(&s);
    }
  }
  chk_wait(&x->c, &s.done);
  grpc_status_code want =
      how == 0 ? GRPC_STATUS_CANCELLED : GRPC_STATUS_DEADLINE_EXCEEDED;
  if (how == 0 && cc != GRPC_STATUS_OK) {
    /* reported above */
  } else if (s.code == want)
    result(x, 1, name, "Sync ended in %s", rt_status_name(want));
  else if (s.code == GRPC_STATUS_OK)
    result(x, 0, name,
           "Sync completed before it could be stopped (use --param to make "
           "the work take longer than %d ms)",
           x->deadline_ms);
  else
    result(x, 0, name, "Sync ended in %s, want %s", rt_status_name(s.code),
           rt_status_name(want));
  snap_t s1, s2;
  if (how == 1) {
    /* The call ended, the work did not: the replay joins it. */
    chk_act_t again = {0};
    if (chk_act_run(&x->c, &r, 60000, &again) != 0)
      result(x, 0, leak, "cannot replay Sync");
    else if (again.code != GRPC_STATUS_OK)
      result(x, 0, leak, "the replay after the deadline ended in %s: %s",
             rt_status_name(again.code), again.message);
    else {
      snap_take(x, sec, &s1);
      sleep_ms(x->settle_ms);
      snap_take(x, sec, &s2);
      const char *d = snap_diff(&s1, &s2, diff, sizeof(diff));
      if (d != NULL)
        result(x, 0, leak, "the section changed after the replay returned: %s",
               d);
      else if (s1.n == 0)
        result(x, 0, leak, "the section is empty after the replay returned");
      else
        result(x, 1, leak,
               "the replay after the deadline returned the finished work");
      snap_free(&s1);
      snap_free(&s2);
    }
    chk_act_clear(&again);
    (void)chk_cancel_op(&x->c, op, &n, &cc); /* clean up */
    chk_act_clear(&par);
    chk_act_clear(&s);
    return;
  }
  /* Whatever was running must stop: give it a moment to notice, then the
   * section must not change any more. */
  sleep_ms(100);
  snap_take(x, sec, &s1);
  sleep_ms(x->settle_ms);
  snap_take(x, sec, &s2);
  const char *d = snap_diff(&s1, &s2, diff, sizeof(diff));
  if (d != NULL)
    result(x, 0, leak, "work went on after the call ended: %s", d);
  else
    result(x, 1, leak, "nothing changed in the section after the call ended");
  snap_free(&s1);
  snap_free(&s2);
  chk_act_clear(&par);
  chk_act_clear(&s);
}

/* One protect activity (Parallel when the type has one) of operation
 * `what` with bank `uri` must fail PERMISSION_DENIED naming `uri`, and
 * leave `path` absent. */
static int refused(ctx_t *x, const char *what, const char *uri,
                   const char *path, const char **why, char *buf, size_t len) {
  char op[128], cp[128], sec[512], key[1024];
  op_name(x, op, sizeof(op), what);
  op_name(x, cp, sizeof(cp), "cp-outside");
  section_of(x, sec, sizeof(sec), cp);
  chk_req_t r;
  chk_act_t a = {0};
  req_init(x, &r, op, 1, cp, sec, !x->ops[1][0], key, sizeof(key));
  r.bank_uri = uri;
  struct stat st;
  int ok = 0;
  if (chk_act_run(&x->c, &r, 60000, &a) != 0)
    *why = "cannot start the call";
  else if (a.code != GRPC_STATUS_PERMISSION_DENIED) {
    snprintf(buf, len, "%s: got %s (%s), want PERMISSION_DENIED", uri,
             rt_status_name(a.code), a.message ? a.message : "");
    *why = buf;
  } else if (a.message == NULL || strstr(a.message, uri) == NULL) {
    snprintf(buf, len, "%s: the message does not name the URI: %s", uri,
             a.message ? a.message : "");
    *why = buf;
  } else if (lstat(path, &st) == 0) {
    snprintf(buf, len, "%s: refused, but %s was created", uri, path);
    *why = buf;
  } else {
    ok = 1;
  }
  chk_act_clear(&a);
  return ok;
}

/* The bank root: --outside-bank as given, then reached from --bank
 * through "..". */
static void check_bank_root(ctx_t *x) {
  if (x->outside == NULL) {
    skip("bank-root", "no --outside-bank given");
    return;
  }
  const char *path = x->outside + 7, *why = NULL;
  char dotdot[4096], buf[1024];
  int n = snprintf(dotdot, sizeof(dotdot), "%s", x->bank_uri);
  for (const char *c = x->bank_dir; *c != '\0'; c++)
    if (*c == '/' && n > 0 && (size_t)n < sizeof(dotdot))
      n += snprintf(dotdot + n, sizeof(dotdot) - (size_t)n, "/..");
  if (n > 0 && (size_t)n < sizeof(dotdot))
    snprintf(dotdot + n, sizeof(dotdot) - (size_t)n, "%s", path);
  struct stat st;
  if (lstat(path, &st) == 0) {
    result(x, 0, "bank-root", "--outside-bank %s must not exist yet", path);
    return;
  }
  if (refused(x, "outside", x->outside, path, &why, buf, sizeof(buf)) &&
      refused(x, "outside-dotdot", dotdot, path, &why, buf, sizeof(buf)))
    result(x, 1, "bank-root",
           "PERMISSION_DENIED naming the URI for a bank outside the root "
           "and a '..' escape, nothing created");
  else
    result(x, 0, "bank-root", "%s", why);
}

/* ------------------------------------------------------------------ main */

static int rm_visit(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw) {
  return remove(path) != 0 ? 0 : 0;
}

static int usage(void) {
  fprintf(stderr,
          "usage: smaug-plugin-check ADDR [--type T] [--resource-id ID]\n"
          "         [--param k=v]... [--bank file:///dir] [--settle-ms N]\n"
          "         [--deadline-ms N] [--outside-bank file:///dir]\n"
          "         [--tls-ca FILE [--tls-cert FILE --tls-key FILE]]\n"
          "         [--tls-server-name NAME]\n");
  return 2;
}

int main(int argc, char **argv) {
  ctx_t x;
  memset(&x, 0, sizeof(x));
  x.rid = "smaug-check-1";
  x.settle_ms = 300;
  x.deadline_ms = 20;
  x.progress_ok = 1;
  const char *bank = NULL;
  rt_tls_files_t tls = {0};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (a[0] != '-') {
      if (x.target != NULL)
        return usage();
      x.target = a;
      continue;
    }
    if (v == NULL)
      return usage();
    i++;
    if (strcmp(a, "--type") == 0)
      x.type = v;
    else if (strcmp(a, "--resource-id") == 0)
      x.rid = v;
    else if (strcmp(a, "--bank") == 0)
      bank = v;
    else if (strcmp(a, "--outside-bank") == 0)
      x.outside = v;
    else if (strcmp(a, "--tls-ca") == 0)
      tls.ca = v;
    else if (strcmp(a, "--tls-cert") == 0)
      tls.cert = v;
    else if (strcmp(a, "--tls-key") == 0)
      tls.key = v;
    else if (strcmp(a, "--tls-server-name") == 0)
      tls.server_name = v;
    else if (strcmp(a, "--settle-ms") == 0)
      x.settle_ms = atoi(v);
    else if (strcmp(a, "--deadline-ms") == 0)
      x.deadline_ms = atoi(v) > 0 ? atoi(v) : 20;
    else if (strcmp(a, "--param") == 0) {
      const char *eq = strchr(v, '=');
      if (eq == NULL || x.n_params == CHK_MAX_KV)
        return usage();
      x.pk[x.n_params] = strndup(v, (size_t)(eq - v));
      x.pv[x.n_params++] = eq + 1;
    } else
      return usage();
  }
  if (x.target == NULL)
    return usage();
  if (x.outside != NULL && strncmp(x.outside, "file:///", 8) != 0) {
    fprintf(stderr, "--outside-bank must be a file:/// URI\n");
    return 2;
  }
  if (tls.ca != NULL || tls.cert != NULL || tls.key != NULL) {
    char why[1024];
    if (tls.ca == NULL) {
      fprintf(stderr, "--tls-cert and --tls-key need --tls-ca\n");
      return 2;
    }
    if (rt_creds_tls_client(&tls, &x.creds, why, sizeof(why)) != 0) {
      fprintf(stderr, "smaug-plugin-check: %s\n", why);
      return 2;
    }
  }
  if (bank != NULL) {
    if (strncmp(bank, "file:///", 8) != 0) {
      fprintf(stderr, "--bank must be a file:// URI the checker can read\n");
      return 2;
    }
    snprintf(x.bank_dir, sizeof(x.bank_dir), "%s", bank + 7);
  } else {
    const char *tmp = getenv("TMPDIR");
    snprintf(x.bank_dir, sizeof(x.bank_dir), "%s/smaug-check-XXXXXX",
             tmp != NULL ? tmp : "/tmp");
    if (mkdtemp(x.bank_dir) == NULL) {
      perror("mkdtemp");
      return 1;
    }
    x.own_bank = 1;
  }
  snprintf(x.bank_uri, sizeof(x.bank_uri), "file://%s", x.bank_dir);
  snprintf(x.run, sizeof(x.run), "chk%ld-%ld", (long)getpid(),
           (long)time(NULL));
  if (chk_open_creds(&x.c, x.target, x.creds) != 0) {
    fprintf(stderr, "cannot open a channel to %s\n", x.target);
    return 1;
  }
  if (check_info(&x) == 0) {
    check_health(&x);
    check_reflection(&x);
    check_bad_request(&x);
    check_flow(&x);
    check_bank_root(&x);
    check_join(&x);
    check_stop(&x, 0);
    check_stop(&x, 1);
    result(&x, x.progress_ok, "progress",
           x.progress_ok ? "done never decreased within a call"
                         : "a call's progress went backwards");
  } else {
    check_health(&x);
    check_reflection(&x);
  }
  chk_close(&x.c);
  rt_creds_release(x.creds);
  if (x.own_bank)
    nftw(x.bank_dir, rm_visit, 16, FTW_DEPTH | FTW_PHYS);
  printf("%d passed, %d failed\n", x.passed, x.failed);
  free(x.type_owned);
  for (size_t i = 0; i < x.n_params; i++)
    free((char *)x.pk[i]);
  return x.failed > 0 ? 1 : 0;
}
