/*
 * token_cmd.c - `smaugd token add|list|revoke`: the only writer of token
 * files.
 *
 * add prints a new token once, on stdout, and keeps only its hash; list
 * shows names, roles, tenants and a short fingerprint of each hash;
 * revoke removes a name. A change is made under an exclusive flock of the
 * file and written atomically (a temporary file, fsync, rename, fsync of
 * the directory), so a concurrent add is never lost and smaugd, which
 * re-reads the file on SIGHUP, never sees half of one. The process runs
 * with umask 077, so every file it creates is 0600 from the start; an
 * existing file open to group or others is refused, as smaugd refuses it.
 */
#include "token_cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "bank_fs.h"
#include "valid.h"

#define FILE_HEADER                                                            \
  "# smaug API tokens, one a line: NAME ROLE TENANT sha256:<hex> for a\n"      \
  "# token (only its hash is kept), or cert:<identity> for a client\n"         \
  "# certificate whose common name or a SAN is <identity>. Change with\n"      \
  "# `smaugd token add|revoke`; smaugd re-reads this file on SIGHUP.\n"

static void usage(FILE *f) {
  fprintf(f,
          "usage: smaugd token add --tokens-file FILE --name NAME --role ROLE"
          " [--tenant TENANT]\n"
          "                        [--cert IDENTITY]\n"
          "       smaugd token list --tokens-file FILE\n"
          "       smaugd token revoke --tokens-file FILE --name NAME\n"
          "  --tokens-file FILE  the token file (default: $SMAUG_AUTH_TOKENS)\n"
          "  --name NAME         %s\n"
          "  --role ROLE         admin, operator or viewer\n"
          "  --tenant TENANT     the token's tenant (default: default)\n"
          "  --cert IDENTITY     no token: give the role to a client "
          "certificate (mTLS)\n"
          "                      whose common name or a SAN is IDENTITY\n"
          "add prints the new token once on stdout and keeps only its hash;\n"
          "the file is created 0600. Send smaugd SIGHUP to apply a change.\n",
          VALID_ID_PATTERN);
}

typedef struct args_s {
  const char *file, *name, *role, *tenant, *cert;
} args_t;

/* Opens `path` for a change and takes an exclusive flock of it, created
 * (0600, by the umask) when `create`. A writer replaces the file by
 * rename, so a lock taken on the file it replaced is dropped and taken
 * again on the new one. Returns the fd, or -1 after printing why. */
static int lock_file(const char *path, int create) {
  for (int tries = 0; tries < 100; tries++) {
    struct stat a, b;
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY | (create ? O_CREAT : 0),
                  0600);
    if (fd < 0) {
      fprintf(stderr, "smaugd token: cannot open %s: %s\n", path,
              strerror(errno));
      return -1;
    }
    if (flock(fd, LOCK_EX) != 0 || fstat(fd, &a) != 0) {
      fprintf(stderr, "smaugd token: cannot lock %s: %s\n", path,
              strerror(errno));
      close(fd);
      return -1;
    }
    if (stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
      return fd;
    close(fd);
  }
  fprintf(stderr, "smaugd token: %s keeps changing; try again\n", path);
  return -1;
}

/* Loads the locked file: the table and its text, or prints why not. */
static int load(const char *path, auth_table_t **t, char **text, size_t *len) {
  char why[600];
  if (auth_table_load(path, t, text, len, why, sizeof(why)) != 0) {
    fprintf(stderr, "smaugd token: %s\n", why);
    return -1;
  }
  return 0;
}

/* Replaces `path` with `len` bytes of `text`, atomically and durably. */
static int store(const char *path, const char *text, size_t len) {
  int rc = bank_fs_write_atomic(AT_FDCWD, path, text, len, 1);
  if (rc != 0)
    fprintf(stderr, "smaugd token: cannot write %s: %s\n", path,
            uv_strerror(rc));
  return rc;
}

static int check_id(const char *flag, const char *v) {
  char msg[400];
  if (v == NULL) {
    fprintf(stderr, "smaugd token: %s is required\n", flag);
    return -1;
  }
  if (valid_key(flag, v, msg, sizeof(msg)) != GRPC_STATUS_OK) {
    fprintf(stderr, "smaugd token: %s\n", msg);
    return -1;
  }
  return 0;
}

static int cmd_add(const args_t *a) {
  auth_role_t role;
  auth_table_t *t = NULL;
  char *text = NULL, *out = NULL, cred[AUTH_MAX_CERT_BYTES + 80];
  char token[AUTH_TOKEN_LEN + 1];
  uint8_t hash[AUTH_HASH_BYTES];
  size_t len = 0;
  int rc = 1, fd;
  const char *tenant = a->tenant ? a->tenant : "default";
  if (check_id("--name", a->name) != 0 || check_id("--tenant", tenant) != 0)
    return 2;
  if (a->role == NULL || auth_role_parse(a->role, &role) != 0) {
    fprintf(stderr, "smaugd token: --role must be admin, operator or viewer\n");
    return 2;
  }
  if (a->cert != NULL) {
    /* The parser is the judge of a valid identity. */
    char line[AUTH_MAX_CERT_BYTES + 80], why[200];
    auth_table_t *one = NULL;
    snprintf(line, sizeof(line), "x viewer x %s%s", AUTH_CERT_PREFIX, a->cert);
    if (strlen(a->cert) > AUTH_MAX_CERT_BYTES ||
        auth_table_parse(line, strlen(line), &one, why, sizeof(why)) != 0) {
      fprintf(stderr,
              "smaugd token: --cert: 1 to %d characters of visible ASCII, "
              "without spaces\n",
              AUTH_MAX_CERT_BYTES);
      return 2;
    }
    auth_table_free(one);
  }
  if ((fd = lock_file(a->file, 1)) < 0)
    return 1;
  if (load(a->file, &t, &text, &len) != 0)
    goto out;
  if (auth_table_by_name(t, a->name) != NULL) {
    fprintf(stderr,
            "smaugd token: a token named %s is already in %s; revoke it "
            "first\n",
            a->name, a->file);
    goto out;
  }
  if (a->cert != NULL && auth_table_by_cert(t, &a->cert, 1) != NULL) {
    fprintf(stderr,
            "smaugd token: the certificate %s is already in %s; revoke it "
            "first\n",
            a->cert, a->file);
    goto out;
  }
  if (a->cert != NULL) {
    snprintf(cred, sizeof(cred), "%s%s", AUTH_CERT_PREFIX, a->cert);
  } else if (auth_token_new(token, sizeof(token), hash) == 0) {
    auth_hash_format(hash, cred, sizeof(cred));
  } else {
    fprintf(stderr, "smaugd token: no randomness from OpenSSL\n");
    goto out;
  }
  size_t cap =
      len + sizeof(FILE_HEADER) + sizeof(cred) + 2 * AUTH_MAX_ID_BYTES + 100;
  if ((out = malloc(cap)) == NULL) {
    fprintf(stderr, "smaugd token: out of memory\n");
    goto out;
  }
  size_t n = 0;
  if (t->n == 0 && strstr(text, "# smaug API tokens") == NULL)
    n += (size_t)snprintf(out + n, cap - n, "%s", FILE_HEADER);
  memcpy(out + n, text, len);
  n += len;
  if (n > 0 && out[n - 1] != '\n')
    out[n++] = '\n';
  n += (size_t)snprintf(out + n, cap - n, "%s %s %s %s\n", a->name,
                        auth_role_name(role), tenant, cred);
  if (store(a->file, out, n) != 0)
    goto out;
  rc = 0;
  if (a->cert != NULL) {
    fprintf(stderr,
            "smaugd token: added %s (role %s, tenant %s) for the client "
            "certificate %s to %s; send smaugd SIGHUP to apply.\n",
            a->name, auth_role_name(role), tenant, a->cert, a->file);
    goto out;
  }
  /* The token exists once the file holds its hash: only now is it shown. */
  printf("%s\n", token);
  fflush(stdout);
  fprintf(stderr,
          "smaugd token: added %s (role %s, tenant %s) to %s. The token is "
          "shown only this once; send smaugd SIGHUP to apply.\n",
          a->name, auth_role_name(role), tenant, a->file);
out:
  memset(token, 0, sizeof(token));
  free(out);
  free(text);
  auth_table_free(t);
  close(fd);
  return rc;
}

static int cmd_list(const args_t *a) {
  auth_table_t *t = NULL;
  char hex[80];
  if (load(a->file, &t, NULL, NULL) != 0)
    return 1;
  printf("%-24s %-9s %-24s %s\n", "NAME", "ROLE", "TENANT", "CREDENTIAL");
  for (size_t i = 0; i < t->n; i++) {
    const auth_token_t *e = &t->tokens[i];
    auth_hash_format(e->hash, hex, sizeof(hex));
    /* A fingerprint: "sha256:" and the first 8 hex digits. */
    hex[sizeof(AUTH_HASH_PREFIX) - 1 + 8] = '\0';
    printf("%-24s %-9s %-24s %s%s\n", e->name, auth_role_name(e->role),
           e->tenant, e->cert[0] ? AUTH_CERT_PREFIX : "",
           e->cert[0] ? e->cert : hex);
  }
  auth_table_free(t);
  return 0;
}

static int cmd_revoke(const args_t *a) {
  auth_table_t *t = NULL;
  char *text = NULL, *out = NULL;
  size_t len = 0, n = 0;
  int rc = 1, fd;
  if (a->name == NULL) {
    fprintf(stderr, "smaugd token: --name is required\n");
    return 2;
  }
  if ((fd = lock_file(a->file, 0)) < 0)
    return 1;
  if (load(a->file, &t, &text, &len) != 0)
    goto out;
  const auth_token_t *e = auth_table_by_name(t, a->name);
  if (e == NULL) {
    fprintf(stderr, "smaugd token: no token named %s in %s\n", a->name,
            a->file);
    goto out;
  }
  if ((out = malloc(len + 1)) == NULL) {
    fprintf(stderr, "smaugd token: out of memory\n");
    goto out;
  }
  /* Every line but the revoked one, byte for byte. */
  unsigned line = 0;
  for (const char *p = text, *end = text + len; p < end;) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *next = nl ? nl + 1 : end;
    if (++line != e->line) {
      memcpy(out + n, p, (size_t)(next - p));
      n += (size_t)(next - p);
    }
    p = next;
  }
  if (store(a->file, out, n) != 0)
    goto out;
  fprintf(stderr,
          "smaugd token: revoked %s in %s; send smaugd SIGHUP to apply.\n",
          a->name, a->file);
  rc = 0;
out:
  free(out);
  free(text);
  auth_table_free(t);
  close(fd);
  return rc;
}

int token_cmd_main(int argc, char **argv) {
  static const struct option opts[] = {
      {"tokens-file", required_argument, NULL, 'f'},
      {"name", required_argument, NULL, 'n'},
      {"role", required_argument, NULL, 'r'},
      {"tenant", required_argument, NULL, 't'},
      {"cert", required_argument, NULL, 'c'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  args_t a = {.file = getenv("SMAUG_AUTH_TOKENS")};
  int c;
  if (argc < 2 || strcmp(argv[1], "--help") == 0) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const char *sub = argv[1];
  optind = 1;
  while ((c = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
    switch (c) {
    case 'f':
      a.file = optarg;
      break;
    case 'n':
      a.name = optarg;
      break;
    case 'r':
      a.role = optarg;
      break;
    case 't':
      a.tenant = optarg;
      break;
    case 'c':
      a.cert = optarg;
      break;
    case 'h':
      usage(stdout);
      return 0;
    default:
      usage(stderr);
      return 2;
    }
  }
  if (optind < argc - 1) {
    fprintf(stderr, "smaugd token: unexpected argument '%s'\n",
            argv[1 + optind]);
    return 2;
  }
  if (a.file == NULL || *a.file == '\0') {
    fprintf(stderr, "smaugd token: --tokens-file (or SMAUG_AUTH_TOKENS) is "
                    "required\n");
    return 2;
  }
  umask(077);
  if (strcmp(sub, "add") == 0)
    return cmd_add(&a);
  if (strcmp(sub, "list") == 0)
    return cmd_list(&a);
  if (strcmp(sub, "revoke") == 0)
    return cmd_revoke(&a);
  fprintf(stderr, "smaugd token: unknown subcommand '%s'\n", sub);
  usage(stderr);
  return 2;
}
