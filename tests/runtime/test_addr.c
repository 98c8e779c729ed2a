/*
 * test_addr.c - addresses (rt_addr.h): parsing, the listen check that
 * names the real cause, the mode of a server's unix socket, and the
 * connect probe against a refused port, a missing socket file, a bad
 * address and a live server.
 *
 * Servers and sockets are on 127.0.0.1 or in a temporary directory.
 */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rt_addr.h"

/* ------------------------------------------------------------- parse */

Test(addr, parses_every_form) {
  rt_addr_t a;
  char why[128];
  cr_assert_eq(rt_addr_parse("127.0.0.1:7420", &a, why, sizeof(why)), 0);
  cr_assert(!a.is_unix);
  cr_assert_str_eq(a.host, "127.0.0.1");
  cr_assert_eq(a.port, 7420);
  cr_assert_eq(rt_addr_parse("[::1]:0", &a, why, sizeof(why)), 0);
  cr_assert_str_eq(a.host, "::1");
  cr_assert_eq(a.port, 0);
  cr_assert_eq(rt_addr_parse(":65535", &a, why, sizeof(why)), 0);
  cr_assert_str_eq(a.host, "");
  cr_assert_eq(a.port, 65535);
  cr_assert_eq(rt_addr_parse("localhost:80", &a, why, sizeof(why)), 0);
  cr_assert_str_eq(a.host, "localhost");
  cr_assert_eq(rt_addr_parse("unix:/run/smaug.sock", &a, why, sizeof(why)), 0);
  cr_assert(a.is_unix);
  cr_assert_str_eq(a.path, "/run/smaug.sock");
  cr_assert_eq(rt_addr_parse("unix:///run/s.sock", &a, why, sizeof(why)), 0);
  cr_assert_str_eq(a.path, "/run/s.sock");
  cr_assert_eq(rt_addr_parse("unix:rel.sock", &a, why, sizeof(why)), 0);
  cr_assert_str_eq(a.path, "rel.sock");
}

Test(addr, refuses_malformed_addresses_with_a_reason) {
  static const struct {
    const char *addr, *why;
  } bad[] = {
      {":99999", "port 99999 is out of range (0-65535)"},
      {"127.0.0.1:65536", "port 65536 is out of range (0-65535)"},
      {"h:0000070000", "port 0000070000 is out of range (0-65535)"},
      {"127.0.0.1:http", "port 'http' is not a number"},
      {"127.0.0.1:-1", "port '-1' is not a number"},
      {"127.0.0.1:", "missing port: expected host:port or unix:/path"},
      {"localhost", "missing port: expected host:port or unix:/path"},
      {"", "empty address: expected host:port or unix:/path"},
      {"::1:80", "an IPv6 address needs brackets: [address]:port"},
      {"[::1]80", "expected [address]:port"},
      {"[::1", "expected [address]:port"},
      {"dns:///h:80", "expected host:port or unix:/path"},
      {"unix:", "empty unix socket path"},
      {"unix://host/x", "expected unix:/path or unix:///path"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    rt_addr_t a;
    char why[128];
    cr_assert_eq(rt_addr_parse(bad[i].addr, &a, why, sizeof(why)), UV_EINVAL,
                 "%s", bad[i].addr);
    cr_assert_str_eq(why, bad[i].why, "%s", bad[i].addr);
  }
  char path[200] = "unix:/";
  memset(path + 6, 'x', 150);
  path[156] = '\0';
  rt_addr_t a;
  char why[128];
  cr_assert_eq(rt_addr_parse(path, &a, why, sizeof(why)), UV_ENAMETOOLONG);
  cr_assert_str_eq(why, "unix socket path longer than 107 bytes");
  cr_assert_eq(rt_addr_parse(NULL, &a, NULL, 0), UV_EINVAL);
}

/* ------------------------------------------------------ listen check */

static char dir[64];

static void mkdir_tmp(void) {
  strcpy(dir, "/tmp/smaug-addr-XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
}

static void rm_tmp(void) {
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
  cr_assert_eq(system(cmd), 0);
}

Test(addr, listen_check_names_the_cause, .init = mkdir_tmp, .fini = rm_tmp) {
  char why[256];
  cr_assert_eq(rt_addr_check_listen(":99999", why, sizeof(why)), UV_EINVAL);
  cr_assert_str_eq(why, "port 99999 is out of range (0-65535)");

  cr_assert_eq(
      rt_addr_check_listen("unix:/nonexistent/dir/sock", why, sizeof(why)),
      UV_ENOENT);
  cr_assert_str_eq(why, "directory /nonexistent/dir does not exist");

  cr_assert_eq(rt_addr_check_listen("1.2.3.4:0", why, sizeof(why)),
               UV_EADDRNOTAVAIL);
  cr_assert_str_eq(why, "1.2.3.4 is not an address of this host");

  /* A regular file where the socket should go is not replaced. */
  char addr[200], file[128];
  snprintf(file, sizeof(file), "%s/plain", dir);
  FILE *f = fopen(file, "w");
  cr_assert_not_null(f);
  fclose(f);
  snprintf(addr, sizeof(addr), "unix:%s", file);
  cr_assert_eq(rt_addr_check_listen(addr, why, sizeof(why)), UV_EEXIST);
  cr_assert(strstr(why, "exists and is not a socket") != NULL, "%s", why);

  /* A file used as a directory. */
  snprintf(addr, sizeof(addr), "unix:%s/sock", file);
  cr_assert_eq(rt_addr_check_listen(addr, why, sizeof(why)), UV_ENOTDIR);
  cr_assert(strstr(why, "not a directory") != NULL, "%s", why);

  /* A port in use (listening, without SO_REUSEADDR sharing it). */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
  cr_assert_eq(listen(fd, 1), 0);
  socklen_t sl = sizeof(sin);
  cr_assert_eq(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sin.sin_port));
  cr_assert_eq(rt_addr_check_listen(addr, why, sizeof(why)), UV_EADDRINUSE);
  snprintf(file, sizeof(file), "port %d is already in use on 127.0.0.1",
           ntohs(sin.sin_port));
  cr_assert_str_eq(why, file);
  close(fd);

  /* What works leaves nothing behind. */
  cr_assert_eq(rt_addr_check_listen("127.0.0.1:0", why, sizeof(why)), 0);
  snprintf(addr, sizeof(addr), "unix:%s/ok.sock", dir);
  cr_assert_eq(rt_addr_check_listen(addr, why, sizeof(why)), 0);
  struct stat st;
  cr_assert_neq(stat(addr + 5, &st), 0, "the check left its socket file");
}

/* A directory the caller cannot write to: as root, the check runs in a
 * child that has dropped to nobody, since root passes permission bits. */
Test(addr, permission_denied_is_named, .init = mkdir_tmp, .fini = rm_tmp) {
  char sub[128], addr[160];
  snprintf(sub, sizeof(sub), "%s/ro", dir);
  cr_assert_eq(mkdir(sub, 0555), 0);
  cr_assert_eq(chmod(dir, 0755), 0);
  snprintf(addr, sizeof(addr), "unix:%s/sock", sub);
  int pipefd[2];
  cr_assert_eq(pipe(pipefd), 0);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
      _exit(3);
    char why[256];
    int err = rt_addr_check_listen(addr, why, sizeof(why));
    dprintf(pipefd[1], "%d %s", err, why);
    _exit(0);
  }
  close(pipefd[1]);
  char out[300] = "";
  ssize_t n = read(pipefd[0], out, sizeof(out) - 1);
  close(pipefd[0]);
  int status;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed");
  cr_assert_gt(n, 0);
  out[n] = '\0';
  char want[300];
  snprintf(want, sizeof(want), "%d permission denied to create a socket in %s",
           UV_EACCES, sub);
  cr_assert_str_eq(out, want);
  chmod(sub, 0700);
}

/* -------------------------------------------------- server socket mode */

static void on_stopped(rt_server_t *srv, void *data) {
  *(int *)data = 1;
}

Test(addr, server_socket_is_0660_whatever_the_umask, .init = mkdir_tmp,
     .fini = rm_tmp) {
  uv_loop_t loop;
  rt_t *rt;
  rt_server_t *srv;
  cr_assert_eq(uv_loop_init(&loop), 0);
  cr_assert_eq(rt_new(&loop, &rt), 0);
  cr_assert_eq(rt_server_new(rt, NULL, &srv), 0);
  char addr[128], why[256];
  snprintf(addr, sizeof(addr), "unix:%s/s.sock", dir);
  mode_t old = umask(0);
  int err = rt_server_listen_ex(srv, addr, NULL, why, sizeof(why));
  mode_t during = umask(old);
  cr_assert_eq(err, 0, "%s", why);
  cr_assert_eq(during, 0, "the umask was not restored");
  struct stat st;
  cr_assert_eq(stat(addr + 5, &st), 0);
  cr_assert(S_ISSOCK(st.st_mode));
  cr_assert_eq(st.st_mode & 0117, 0, "mode %o", st.st_mode & 07777);

  /* The failures come back with their cause too. */
  cr_assert_eq(rt_server_listen_ex(srv, "unix:/nonexistent/dir/sock", NULL, why,
                                   sizeof(why)),
               UV_ENOENT);
  cr_assert_str_eq(why, "directory /nonexistent/dir does not exist");
  cr_assert_eq(rt_server_listen(srv, "1.2.3.4:0", NULL), UV_EADDRNOTAVAIL);

  /* gRPC wants a server with listeners started before it is stopped. */
  cr_assert_eq(rt_server_start(srv), 0);
  int stopped = 0;
  cr_assert_eq(rt_server_shutdown(srv, on_stopped, &stopped), 0);
  cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  cr_assert(stopped);
  rt_server_free(srv);
  rt_free(rt);
  cr_assert_eq(uv_loop_close(&loop), 0);
}

/* ------------------------------------------------------------- probe */

typedef struct {
  int calls;
  int err;
  char why[256];
} probe_result_t;

static void on_probe(int err, const char *why, void *data) {
  probe_result_t *r = data;
  r->calls++;
  r->err = err;
  snprintf(r->why, sizeof(r->why), "%s", why);
}

/* Probes `target` on a fresh loop and runtime; returns the result. */
static probe_result_t probe(const char *target) {
  uv_loop_t loop;
  rt_t *rt;
  probe_result_t r = {0};
  cr_assert_eq(uv_loop_init(&loop), 0);
  cr_assert_eq(rt_new(&loop, &rt), 0);
  cr_assert_eq(rt_probe(rt, target, 2000, on_probe, &r), 0);
  cr_assert_eq(r.calls, 0, "the callback ran inside rt_probe");
  cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  rt_free(rt);
  cr_assert_eq(uv_loop_close(&loop), 0, "a probe handle was left open");
  cr_assert_eq(r.calls, 1);
  return r;
}

/* A TCP socket bound on 127.0.0.1 and listening or not; returns the fd. */
static int tcp_socket(int listening, int *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
  if (listening)
    cr_assert_eq(listen(fd, 4), 0);
  socklen_t sl = sizeof(sin);
  cr_assert_eq(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
  *port = ntohs(sin.sin_port);
  return fd;
}

Test(addr, probe_names_why_it_cannot_connect, .init = mkdir_tmp,
     .fini = rm_tmp) {
  int port;
  char target[160];
  /* Bound but not listening: the kernel refuses, and nobody else can take
   * the port meanwhile. */
  int fd = tcp_socket(0, &port);
  snprintf(target, sizeof(target), "127.0.0.1:%d", port);
  probe_result_t r = probe(target);
  cr_assert_eq(r.err, UV_ECONNREFUSED, "%s", r.why);
  cr_assert_str_eq(r.why, "connection refused");
  close(fd);

  snprintf(target, sizeof(target), "unix:%s/missing.sock", dir);
  r = probe(target);
  cr_assert_eq(r.err, UV_ENOENT, "%s", r.why);
  cr_assert_str_eq(r.why, "no such socket file");

  r = probe("no port here");
  cr_assert_eq(r.err, UV_EINVAL);
  cr_assert_str_eq(r.why, "bad address: missing port: expected host:port or "
                          "unix:/path");
  r = probe(":80");
  cr_assert_eq(r.err, UV_EINVAL);
  cr_assert_str_eq(r.why, "bad address: missing host: expected host:port");
  r = probe("127.0.0.1:99999");
  cr_assert_eq(r.err, UV_EINVAL);
  cr_assert_str_eq(r.why, "bad address: port 99999 is out of range (0-65535)");

  r = probe("name.invalid:80"); /* RFC 2606: never resolves */
  cr_assert(r.err == UV_EAI_NONAME || r.err == UV_EAI_AGAIN ||
                r.err == UV_EAI_FAIL,
            "%d %s", r.err, r.why);
  cr_assert(strncmp(r.why, "cannot resolve name.invalid: ", 29) == 0, "%s",
            r.why);
}

Test(addr, probe_succeeds_on_a_listener, .init = mkdir_tmp, .fini = rm_tmp) {
  int port;
  char target[160];
  int fd = tcp_socket(1, &port);
  snprintf(target, sizeof(target), "127.0.0.1:%d", port);
  probe_result_t r = probe(target);
  cr_assert_eq(r.err, 0, "%s", r.why);
  cr_assert_str_eq(r.why, "");
  /* "localhost" may resolve to ::1 first: the probe tries each address. */
  snprintf(target, sizeof(target), "localhost:%d", port);
  r = probe(target);
  cr_assert_eq(r.err, 0, "%s", r.why);
  close(fd);
}
