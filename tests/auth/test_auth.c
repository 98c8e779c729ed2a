/*
 * test_auth.c - Criterion suite for server/auth: roles, the permission
 * table against every method smaugd serves, token generation and hashing,
 * the token file parser and loader (modes, hostile lines), the decision
 * for one call (missing, repeated, malformed, hostile and wrong-role
 * credentials) and the reload that keeps the old tokens on a bad file.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "api_valid.h"
#include "auth.h"
#include "smaug/v1/orchestrator.smaug.h"

TestSuite(auth, .timeout = 20);

#define HASH_A                                                                 \
  "sha256:"                                                                    \
  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HASH_B                                                                 \
  "sha256:"                                                                    \
  "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

/* ---- roles and the table */

Test(auth, roles_parse_and_order) {
  auth_role_t r;
  cr_assert_eq(auth_role_parse("viewer", &r), 0);
  cr_assert_eq(r, AUTH_ROLE_VIEWER);
  cr_assert_eq(auth_role_parse("operator", &r), 0);
  cr_assert_eq(r, AUTH_ROLE_OPERATOR);
  cr_assert_eq(auth_role_parse("admin", &r), 0);
  cr_assert_eq(r, AUTH_ROLE_ADMIN);
  cr_assert_eq(auth_role_parse("open", &r), UV_EINVAL);
  cr_assert_eq(auth_role_parse("Admin", &r), UV_EINVAL);
  cr_assert_eq(auth_role_parse("", &r), UV_EINVAL);
  cr_assert_eq(auth_role_parse(NULL, &r), UV_EINVAL);
  cr_assert(AUTH_ROLE_OPEN < AUTH_ROLE_VIEWER &&
            AUTH_ROLE_VIEWER < AUTH_ROLE_OPERATOR &&
            AUTH_ROLE_OPERATOR < AUTH_ROLE_ADMIN);
  cr_assert_str_eq(auth_role_name(AUTH_ROLE_ADMIN), "admin");
  cr_assert_str_eq(auth_role_name(AUTH_ROLE_OPEN), "open");
  cr_assert_str_eq(auth_role_name((auth_role_t)42), "?");
}

Test(auth, table_covers_every_orchestrator_method) {
  for (size_t i = 0; i < SMAUG_V1_ORCHESTRATOR_N_METHODS; i++) {
    auth_role_t r = AUTH_ROLE_OPEN;
    const char *path = smaug_v1_orchestrator_methods[i].path;
    cr_assert_eq(auth_method_role(path, &r), 0, "%s has no line", path);
    cr_assert_neq(r, AUTH_ROLE_OPEN, "%s is open", path);
  }
  auth_role_t r;
  cr_assert_eq(auth_method_role("/grpc.health.v1.Health/Check", &r), 0);
  cr_assert_eq(r, AUTH_ROLE_OPEN);
  cr_assert_eq(
      auth_method_role(
          "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", &r),
      0);
  cr_assert_eq(r, AUTH_ROLE_OPEN);
  cr_assert_eq(auth_method_role("/smaug.v1.Orchestrator/Nope", &r), UV_ENOENT);
  cr_assert_eq(auth_method_role(NULL, &r), UV_ENOENT);
}

/* The roles: plugins are admin's; protect, restore, delete and
 * cancel are operator's; reads are the viewer's. */
Test(auth, table_matches_the_roles) {
  static const struct {
    const char *m;
    auth_role_t r;
  } want[] = {
      {"RegisterPlugin", AUTH_ROLE_ADMIN},
      {"UnregisterPlugin", AUTH_ROLE_ADMIN},
      {"ListPlugins", AUTH_ROLE_VIEWER},
      {"DeleteCheckpoint", AUTH_ROLE_OPERATOR},
      {"Protect", AUTH_ROLE_OPERATOR},
      {"Restore", AUTH_ROLE_OPERATOR},
      {"CancelOperation", AUTH_ROLE_OPERATOR},
      {"CreatePlan", AUTH_ROLE_OPERATOR},
      {"GetCheckpoint", AUTH_ROLE_VIEWER},
      {"WatchOperation", AUTH_ROLE_VIEWER},
  };
  for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
    char path[128];
    auth_role_t r;
    snprintf(path, sizeof(path), "/smaug.v1.Orchestrator/%s", want[i].m);
    cr_assert_eq(auth_method_role(path, &r), 0);
    cr_assert_eq(r, want[i].r, "%s", path);
  }
}

/* A method that reads (Get*, List*, Watch*) is READ, every other one
 * changes something and is audited: a new RPC cannot slip past. */
Test(auth, table_marks_what_changes) {
  for (size_t i = 0; i < SMAUG_V1_ORCHESTRATOR_N_METHODS; i++) {
    const rt_method_t *m = &smaug_v1_orchestrator_methods[i];
    int reads = strncmp(m->name, "Get", 3) == 0 ||
                strncmp(m->name, "List", 4) == 0 ||
                strncmp(m->name, "Watch", 5) == 0;
    cr_assert_eq(auth_method_writes(m->path), !reads, "%s", m->path);
  }
  cr_assert_eq(auth_method_writes("/smaug.v1.Orchestrator/Restore"), 1);
  cr_assert_eq(auth_method_writes("/grpc.health.v1.Health/Check"), 0);
  cr_assert_eq(auth_method_writes("/smaug.v1.Orchestrator/Drop"), 0);
  cr_assert_eq(auth_method_writes(NULL), 0);
  auth_role_t r;
  cr_assert_eq(auth_method_role("/smaug.v1.Orchestrator/ListAuditEvents", &r),
               0);
  cr_assert_eq(r, AUTH_ROLE_ADMIN);
}

/* The objects of a request and of its answer, for the audit log. */
Test(auth, audit_objects) {
  char out[256] = "";
  Smaug__V1__RestoreRequest rr = SMAUG__V1__RESTORE_REQUEST__INIT;
  rr.checkpoint_id = "ckp-1";
  rr.force = 1;
  auth_audit_objects(&rr.base, out, sizeof(out));
  cr_assert_str_eq(out, "checkpoint_id=ckp-1 force=true");
  /* The answer adds its ids; what is there already is not repeated. */
  Smaug__V1__RestoreResponse resp = SMAUG__V1__RESTORE_RESPONSE__INIT;
  resp.restore_id = "rst-2";
  resp.operation_id = "op-3";
  auth_audit_objects(&resp.base, out, sizeof(out));
  auth_audit_objects(&rr.base, out, sizeof(out));
  cr_assert_str_eq(out, "checkpoint_id=ckp-1 force=true restore_id=rst-2 "
                        "operation_id=op-3");
  /* One level into messages; other fields (maps, repeated, numbers, false
   * bools, empty strings) are left out. */
  Smaug__V1__Plugin pl = SMAUG__V1__PLUGIN__INIT;
  pl.address = "unix:/run/p.sock";
  pl.identity = "unix:/run/p.sock uid=0";
  pl.health_reason = "down";
  Smaug__V1__RegisterPluginResponse reg =
      SMAUG__V1__REGISTER_PLUGIN_RESPONSE__INIT;
  reg.plugin = &pl;
  out[0] = '\0';
  auth_audit_objects(&reg.base, out, sizeof(out));
  cr_assert_str_eq(out, "plugin.address=unix:/run/p.sock "
                        "plugin.identity='unix:/run/p.sock uid=0'");
  /* Hostile values: control characters and quotes become '?', long
   * values are cut on a UTF-8 boundary. */
  Smaug__V1__UnregisterPluginRequest u =
      SMAUG__V1__UNREGISTER_PLUGIN_REQUEST__INIT;
  u.name = "a\nb\"c'd\\e\x7f";
  out[0] = '\0';
  auth_audit_objects(&u.base, out, sizeof(out));
  cr_assert_str_eq(out, "name=a?b?c?d?e?");
  char big[300];
  memset(big, 'x', sizeof(big));
  memcpy(big + 126, "\xc3\xa9", 2); /* an e-acute, bytes 126 and 127 */
  big[299] = '\0';
  u.name = big;
  out[0] = '\0';
  auth_audit_objects(&u.base, out, sizeof(out));
  cr_assert_eq(strlen(out), 5 + 128, "%s", out);
  memset(big, 'x', sizeof(big) - 1);
  memcpy(big + 127, "\xc3\xa9", 2); /* the cut would split it: it moves back */
  out[0] = '\0';
  auth_audit_objects(&u.base, out, sizeof(out));
  cr_assert_eq(strlen(out), 5 + 127, "%s", out);
  /* Full: a field that does not fit is left out whole. */
  char small[16] = "";
  rr.checkpoint_id = "ckp-0123456789";
  auth_audit_objects(&rr.base, small, sizeof(small));
  cr_assert_str_eq(small, "force=true");
  auth_audit_objects(NULL, small, sizeof(small));
  cr_assert_str_eq(small, "force=true");
}

static void nop_dispatch(rt_call_t *call, const ProtobufCMessage *req,
                         const void *impl, size_t i, void *data) {
  (void)call, (void)req, (void)impl, (void)i, (void)data;
}

/* A service with a method the table does not know is not served. */
Test(auth, register_refuses_a_method_not_in_the_table) {
  static const rt_method_t methods[] = {
      {"/smaug.v1.Orchestrator/GetPlan", "GetPlan", RT_UNARY, NULL, NULL},
      {"/smaug.v1.Orchestrator/Drop", "Drop", RT_UNARY, NULL, NULL}};
  static const rt_service_t svc = {"smaug.v1.Orchestrator", 2, methods,
                                   nop_dispatch};
  int impl = 0;
  cr_assert_eq(auth_register_service(NULL, NULL, &svc, &impl, NULL), UV_EINVAL);
}

/* Token names and tenants are API ids. */
Test(auth, id_pattern_is_the_api_s) {
  cr_assert_str_eq(AUTH_ID_PATTERN, VALID_ID_PATTERN);
  cr_assert_eq(AUTH_MAX_ID_BYTES, VALID_MAX_ID_BYTES);
}

/* ---- tokens */

Test(auth, token_new_format_and_hash) {
  char a[AUTH_TOKEN_LEN + 1], b[AUTH_TOKEN_LEN + 1];
  uint8_t ha[AUTH_HASH_BYTES], hb[AUTH_HASH_BYTES], h[AUTH_HASH_BYTES];
  cr_assert_eq(auth_token_new(a, sizeof(a), ha), 0);
  cr_assert_eq(auth_token_new(b, sizeof(b), hb), 0);
  cr_assert_eq(strlen(a), AUTH_TOKEN_LEN);
  cr_assert_eq(strncmp(a, AUTH_TOKEN_PREFIX, strlen(AUTH_TOKEN_PREFIX)), 0);
  for (const char *p = a + strlen(AUTH_TOKEN_PREFIX); *p; p++)
    cr_assert(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                     "0123456789-_",
                     *p) != NULL,
              "%c is not base64url", *p);
  cr_assert_str_neq(a, b);
  auth_token_hash(a, strlen(a), h);
  cr_assert_eq(memcmp(h, ha, sizeof(h)), 0);
  cr_assert_neq(memcmp(ha, hb, sizeof(ha)), 0);
  cr_assert_eq(auth_token_new(a, AUTH_TOKEN_LEN, ha), UV_EINVAL);
  /* SHA-256("abc"), the FIPS 180-2 example. */
  char hex[80];
  auth_token_hash("abc", 3, h);
  auth_hash_format(h, hex, sizeof(hex));
  cr_assert_str_eq(hex, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396"
                        "177a9cb410ff61f20015ad");
}

/* ---- the file */

static auth_table_t *parse_ok(const char *text) {
  auth_table_t *t = NULL;
  char why[256];
  cr_assert_eq(auth_table_parse(text, strlen(text), &t, why, sizeof(why)), 0,
               "%s", why);
  return t;
}

static void parse_bad(const char *text, const char *want) {
  auth_table_t *t = NULL;
  char why[256];
  cr_assert_eq(auth_table_parse(text, strlen(text), &t, why, sizeof(why)),
               UV_EINVAL, "accepted: %s", text);
  cr_assert_null(t);
  cr_assert(strstr(why, want) != NULL, "'%s' lacks '%s'", why, want);
  cr_assert(strstr(why, "aaaaaaaa") == NULL && strstr(why, "bbbbbbbb") == NULL,
            "a hash in '%s'", why);
}

Test(auth, parse_good_file) {
  auth_table_t *t = parse_ok("# tokens\n\n  \t\n"
                             "alice admin default " HASH_A "\n"
                             "\tbob  viewer\tacme " HASH_B "\r\n"
                             "# end");
  cr_assert_eq(t->n, 2);
  cr_assert_str_eq(t->tokens[0].name, "alice");
  cr_assert_eq(t->tokens[0].role, AUTH_ROLE_ADMIN);
  cr_assert_str_eq(t->tokens[0].tenant, "default");
  cr_assert_eq(t->tokens[0].line, 4);
  cr_assert_str_eq(t->tokens[1].name, "bob");
  cr_assert_eq(t->tokens[1].role, AUTH_ROLE_VIEWER);
  cr_assert_str_eq(t->tokens[1].tenant, "acme");
  cr_assert_eq(t->tokens[1].line, 5);
  cr_assert_eq(t->tokens[1].hash[31], 0xbb);
  cr_assert_eq(auth_table_by_name(t, "bob"), &t->tokens[1]);
  cr_assert_null(auth_table_by_name(t, "carol"));
  uint8_t h[AUTH_HASH_BYTES];
  memset(h, 0xaa, sizeof(h));
  cr_assert_eq(auth_table_by_hash(t, h), &t->tokens[0]);
  h[31] = 0xab;
  cr_assert_null(auth_table_by_hash(t, h));
  auth_table_free(t);
  t = parse_ok("");
  cr_assert_eq(t->n, 0);
  auth_table_free(t);
  auth_table_free(NULL);
}

Test(auth, parse_bad_lines) {
  parse_bad("alice admin " HASH_A "\n", "line 1: too few fields");
  parse_bad("#\nalice admin default " HASH_A " x\n", "line 2: too many");
  parse_bad("alice root default " HASH_A "\n", "the role");
  parse_bad("alice open default " HASH_A "\n", "the role");
  parse_bad("al/ice admin default " HASH_A "\n", "the name");
  parse_bad(".alice admin default " HASH_A "\n", "the name");
  parse_bad("alice admin ../x " HASH_A "\n", "the tenant");
  parse_bad("alice admin default sha256:aaaa\n", "the last field");
  parse_bad("alice admin default md5:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            "aaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
            "the last field");
  parse_bad(
      "alice admin default sha256:"
      "zzaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
      "the last field");
  parse_bad("alice admin default " HASH_A "\nalice viewer x " HASH_B "\n",
            "line 2: the name alice is already on line 1");
  parse_bad("alice admin default " HASH_A "\nbob viewer x " HASH_A "\n",
            "line 2: the same hash as line 1");
  /* Non-UTF-8 and NUL bytes in a name. */
  static const char nul[] = "al\0ce admin default " HASH_A "\n";
  auth_table_t *t = NULL;
  char why[256];
  cr_assert_eq(auth_table_parse(nul, sizeof(nul) - 1, &t, why, sizeof(why)),
               UV_EINVAL);
  cr_assert_str_eq(why, "line 1: a NUL byte");
  parse_bad("al\xff\xfe admin default " HASH_A "\n", "the name");
  char big[300];
  memset(big, 'n', 129);
  snprintf(big + 129, sizeof(big) - 129, " admin default %s\n", HASH_A);
  parse_bad(big, "the name");
}

static char dir[64];

static void mkdir_tmp(void) {
  snprintf(dir, sizeof(dir), "/tmp/smaug-auth-XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
}

static void rm_tmp(void) {
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
  cr_assert_eq(system(cmd), 0);
}

static void write_file(const char *path, const char *text, mode_t mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  cr_assert(fd >= 0);
  cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  cr_assert_eq(fchmod(fd, mode), 0);
  close(fd);
}

Test(auth, load_refuses_open_modes_and_odd_files, .init = mkdir_tmp,
     .fini = rm_tmp) {
  char path[128], why[512], *text = NULL;
  size_t len = 0;
  auth_table_t *t = NULL;
  snprintf(path, sizeof(path), "%s/tokens", dir);
  write_file(path, "alice admin default " HASH_A "\n", 0600);
  cr_assert_eq(auth_table_load(path, &t, &text, &len, why, sizeof(why)), 0,
               "%s", why);
  cr_assert_eq(t->n, 1);
  cr_assert_eq(len, strlen(text));
  auth_table_free(t);
  free(text);
  static const mode_t bad[] = {0640, 0604, 0620, 0602, 0610, 0644};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    cr_assert_eq(chmod(path, bad[i]), 0);
    t = NULL;
    cr_assert_eq(auth_table_load(path, &t, NULL, NULL, why, sizeof(why)),
                 UV_EPERM, "mode %o", bad[i]);
    cr_assert_null(t);
    cr_assert(strstr(why, "group or others") && strstr(why, "chmod 600"), "%s",
              why);
  }
  cr_assert_eq(chmod(path, 0400), 0);
  cr_assert_eq(auth_table_load(path, &t, NULL, NULL, why, sizeof(why)), 0);
  auth_table_free(t);
  t = NULL;
  snprintf(path, sizeof(path), "%s/missing", dir);
  cr_assert_eq(auth_table_load(path, &t, NULL, NULL, why, sizeof(why)),
               UV_ENOENT);
  cr_assert_eq(auth_table_load(dir, &t, NULL, NULL, why, sizeof(why)),
               UV_EINVAL);
  cr_assert(strstr(why, "not a regular file"), "%s", why);
  snprintf(path, sizeof(path), "%s/broken", dir);
  write_file(path, "alice admin\n", 0600);
  cr_assert_eq(auth_table_load(path, &t, NULL, NULL, why, sizeof(why)),
               UV_EINVAL);
  cr_assert(strstr(why, "broken line 1: too few fields"), "%s", why);
  cr_assert_null(t);
}

/* ---- one call */

#define DELETE_CKP "/smaug.v1.Orchestrator/DeleteCheckpoint"
#define REGISTER   "/smaug.v1.Orchestrator/RegisterPlugin"
#define GET_PLAN   "/smaug.v1.Orchestrator/GetPlan"

/* A table of three tokens, one of each role; their clear text in tok[]. */
static char tok[3][AUTH_TOKEN_LEN + 1];

static auth_table_t *three_roles(void) {
  static const char *who[3][2] = {
      {"vic", "viewer"}, {"olga", "operator"}, {"ada", "admin"}};
  char text[1024], hex[80];
  size_t n = 0;
  for (int i = 0; i < 3; i++) {
    uint8_t h[AUTH_HASH_BYTES];
    cr_assert_eq(auth_token_new(tok[i], sizeof(tok[i]), h), 0);
    auth_hash_format(h, hex, sizeof(hex));
    n += (size_t)snprintf(text + n, sizeof(text) - n, "%s %s t%d %s\n",
                          who[i][0], who[i][1], i, hex);
  }
  return parse_ok(text);
}

static grpc_status_code decide1(const auth_table_t *t, const char *path,
                                const char *v, size_t len, auth_ctx_t *ctx,
                                char *msg) {
  return auth_decide(t, path, 1, v, len, NULL, 0, ctx, msg, 300);
}

static grpc_status_code bearer(const auth_table_t *t, const char *path,
                               const char *token, auth_ctx_t *ctx) {
  char v[2048], msg[300];
  snprintf(v, sizeof(v), "Bearer %s", token);
  grpc_status_code c = decide1(t, path, v, strlen(v), ctx, msg);
  cr_assert(strstr(msg, token) == NULL || *token == '\0', "echoed: %s", msg);
  return c;
}

Test(auth, decide_by_role) {
  auth_table_t *t = three_roles();
  auth_ctx_t ctx;
  char msg[300];
  cr_assert_eq(bearer(t, GET_PLAN, tok[0], &ctx), GRPC_STATUS_OK);
  cr_assert_str_eq(ctx.name, "vic");
  cr_assert_str_eq(ctx.tenant, "t0");
  cr_assert_eq(ctx.role, AUTH_ROLE_VIEWER);
  cr_assert_eq(bearer(t, DELETE_CKP, tok[0], &ctx),
               GRPC_STATUS_PERMISSION_DENIED);
  cr_assert_eq(bearer(t, DELETE_CKP, tok[1], &ctx), GRPC_STATUS_OK);
  cr_assert_eq(bearer(t, REGISTER, tok[1], &ctx),
               GRPC_STATUS_PERMISSION_DENIED);
  cr_assert_str_eq(ctx.name, "olga");
  cr_assert_eq(bearer(t, REGISTER, tok[2], &ctx), GRPC_STATUS_OK);
  cr_assert_eq(ctx.role, AUTH_ROLE_ADMIN);
  /* The scheme in any case, several spaces. */
  char v[200];
  snprintf(v, sizeof(v), "bEARER   %s", tok[2]);
  cr_assert_eq(decide1(t, REGISTER, v, strlen(v), &ctx, msg), GRPC_STATUS_OK);
  /* The message names the role, never the token. */
  snprintf(v, sizeof(v), "Bearer %s", tok[0]);
  cr_assert_eq(decide1(t, DELETE_CKP, v, strlen(v), &ctx, msg),
               GRPC_STATUS_PERMISSION_DENIED);
  cr_assert_str_eq(msg, "token vic has the role viewer; DeleteCheckpoint "
                        "needs operator");
  /* Not in the table: refused whoever asks. */
  cr_assert_eq(bearer(t, "/smaug.v1.Orchestrator/Drop", tok[2], &ctx),
               GRPC_STATUS_PERMISSION_DENIED);
  /* Open methods need nothing. */
  cr_assert_eq(auth_decide(t, "/grpc.health.v1.Health/Check", 0, NULL, 0, NULL,
                           0, &ctx, msg, sizeof(msg)),
               GRPC_STATUS_OK);
  cr_assert_str_eq(ctx.name, "");
  auth_table_free(t);
}

Test(auth, decide_hostile_credentials) {
  auth_table_t *t = three_roles();
  auth_ctx_t ctx;
  char msg[300];
  /* None. */
  cr_assert_eq(
      auth_decide(t, GET_PLAN, 0, NULL, 0, NULL, 0, &ctx, msg, sizeof(msg)),
      GRPC_STATUS_UNAUTHENTICATED);
  cr_assert(strstr(msg, "needs a token"), "%s", msg);
  /* Two headers, even when the first is valid. */
  char v0[200];
  snprintf(v0, sizeof(v0), "Bearer %s", tok[2]);
  cr_assert_eq(auth_decide(t, GET_PLAN, 2, v0, strlen(v0), NULL, 0, &ctx, msg,
                           sizeof(msg)),
               GRPC_STATUS_UNAUTHENTICATED);
  cr_assert(strstr(msg, "more than one"), "%s", msg);
  /* Malformed values. */
  static const char *bad[] = {"",
                              "Bearer",
                              "Bearer ",
                              "Bearer    ",
                              "Bearer\tx",
                              "Basic YWxhZGRpbjpvcGVu",
                              "Bearerx smaug_x",
                              " Bearer smaug_x",
                              "Bearer a b",
                              "Bearer smaug_\x7f"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    cr_assert_eq(decide1(t, GET_PLAN, bad[i], strlen(bad[i]), &ctx, msg),
                 GRPC_STATUS_UNAUTHENTICATED, "'%s'", bad[i]);
    cr_assert(strstr(msg, "malformed"), "%s", msg);
  }
  /* Non-UTF-8 bytes, and a NUL inside the value. */
  static const char bytes[] = "Bearer smaug_\xff\xfe\x80";
  cr_assert_eq(decide1(t, GET_PLAN, bytes, sizeof(bytes) - 1, &ctx, msg),
               GRPC_STATUS_UNAUTHENTICATED);
  char withnul[200];
  int n = snprintf(withnul, sizeof(withnul), "Bearer %s", tok[2]);
  withnul[n - 3] = '\0';
  cr_assert_eq(decide1(t, GET_PLAN, withnul, (size_t)n, &ctx, msg),
               GRPC_STATUS_UNAUTHENTICATED);
  /* A valid token with a byte more, less, or changed. */
  char v[200];
  snprintf(v, sizeof(v), "Bearer %sx", tok[2]);
  cr_assert_eq(decide1(t, GET_PLAN, v, strlen(v), &ctx, msg),
               GRPC_STATUS_UNAUTHENTICATED);
  cr_assert_str_eq(msg, "unknown or revoked token");
  cr_assert_eq(decide1(t, GET_PLAN, v, strlen(v) - 2, &ctx, msg),
               GRPC_STATUS_UNAUTHENTICATED);
  /* Huge: at the limit it is looked up, past it refused unread. */
  size_t big = 7 + AUTH_MAX_TOKEN_BYTES + 1;
  char *h = malloc(big + 1);
  memcpy(h, "Bearer ", 7);
  memset(h + 7, 'A', big - 7);
  h[big] = '\0';
  cr_assert_eq(decide1(t, GET_PLAN, h, big, &ctx, msg),
               GRPC_STATUS_UNAUTHENTICATED);
  cr_assert(strstr(msg, "malformed"), "%s", msg);
  cr_assert_eq(decide1(t, GET_PLAN, h, big - 1, &ctx, msg),
               GRPC_STATUS_UNAUTHENTICATED);
  cr_assert_str_eq(msg, "unknown or revoked token");
  free(h);
  /* No table at all (nothing loaded) knows no token. */
  cr_assert_eq(bearer(NULL, GET_PLAN, tok[2], &ctx),
               GRPC_STATUS_UNAUTHENTICATED);
  auth_table_free(t);
}

/* cert: lines: a verified client certificate's CN or SAN, when no
 * header is sent; never a token. */
Test(auth, cert_lines) {
  auth_table_t *t = parse_ok("svc operator acme cert:spiffe://smaug/client\n"
                             "mon viewer acme cert:monitor\n"
                             "ada admin default " HASH_A "\n");
  cr_assert_str_eq(t->tokens[0].cert, "spiffe://smaug/client");
  cr_assert_str_eq(t->tokens[2].cert, "");
  auth_ctx_t ctx;
  char msg[300];
  const char *ids[] = {"smaug-client", "spiffe://smaug/client"};
  cr_assert_eq(
      auth_decide(t, DELETE_CKP, 0, NULL, 0, ids, 2, &ctx, msg, sizeof(msg)),
      GRPC_STATUS_OK, "%s", msg);
  cr_assert_str_eq(ctx.name, "svc");
  cr_assert_str_eq(ctx.tenant, "acme");
  cr_assert_eq(ctx.role, AUTH_ROLE_OPERATOR);
  const char *mon[] = {"monitor"};
  cr_assert_eq(
      auth_decide(t, DELETE_CKP, 0, NULL, 0, mon, 1, &ctx, msg, sizeof(msg)),
      GRPC_STATUS_PERMISSION_DENIED);
  cr_assert_str_eq(msg, "certificate mon has the role viewer; "
                        "DeleteCheckpoint needs operator");
  const char *other[] = {"intruder", "spiffe://smaug/clientx"};
  cr_assert_eq(
      auth_decide(t, GET_PLAN, 0, NULL, 0, other, 2, &ctx, msg, sizeof(msg)),
      GRPC_STATUS_UNAUTHENTICATED);
  /* A header decides alone, even beside a known certificate. */
  cr_assert_eq(auth_decide(t, GET_PLAN, 1, "Bearer x", 8, ids, 2, &ctx, msg,
                           sizeof(msg)),
               GRPC_STATUS_UNAUTHENTICATED);
  /* A cert: line has no token, not even one whose hash is its zeros. */
  uint8_t zero[AUTH_HASH_BYTES] = {0};
  cr_assert_null(auth_table_by_hash(t, zero));
  auth_table_free(t);
  parse_bad("a viewer x cert:id\nb viewer y cert:id\n",
            "line 2: the same cert: identity as line 1");
  parse_bad("a viewer x cert:\n", "the last field");
  parse_bad("a viewer x cert:\xc3\xa9\n", "not visible ASCII");
  char big[400];
  int n = snprintf(big, sizeof(big), "a viewer x cert:");
  memset(big + n, 'c', 256);
  big[n + 256] = '\0';
  parse_bad(big, "longer than 255 bytes");
}

/* ---- the daemon side */

Test(auth, reload_keeps_the_old_tokens_on_a_bad_file, .init = mkdir_tmp,
     .fini = rm_tmp) {
  uv_loop_t loop;
  auth_t *a = NULL;
  char path[128], why[512];
  snprintf(path, sizeof(path), "%s/tokens", dir);
  cr_assert_eq(uv_loop_init(&loop), 0);
  cr_assert_eq(auth_new(&loop, path, &a, why, sizeof(why)), UV_ENOENT);
  cr_assert_null(a);
  write_file(path, "alice admin default " HASH_A "\n", 0644);
  cr_assert_eq(auth_new(&loop, path, &a, why, sizeof(why)), UV_EPERM);
  cr_assert_null(a);
  cr_assert_eq(chmod(path, 0600), 0);
  cr_assert_eq(auth_new(&loop, path, &a, why, sizeof(why)), 0, "%s", why);
  cr_assert_null(auth_current(a));
  write_file(path, "alice admin\n", 0600);
  cr_assert_eq(auth_reload(a, why, sizeof(why)), UV_EINVAL);
  cr_assert(strstr(why, "line 1"), "%s", why);
  write_file(path, "bob viewer default " HASH_B "\n", 0600);
  cr_assert_eq(auth_reload(a, why, sizeof(why)), 0, "%s", why);
  auth_close(a);
  auth_close(a);
  cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  auth_free(a);
  auth_free(NULL);
  cr_assert_eq(uv_loop_close(&loop), 0);
}
