/*
 * rt_addr.c - address parsing, the listen check and the connect probe
 * (see rt_addr.h).
 *
 * The listen check binds a throw-away socket: the errno of that bind() is
 * the cause gRPC would hide. The probe is a libuv connection attempt: a
 * name lookup (uv_getaddrinfo), then uv_tcp_connect to each address in
 * turn (or uv_pipe_connect), under one timer. It keeps one reference per
 * open handle and per lookup in flight, and frees itself when the last
 * one is gone; the callback runs once, from the first outcome.
 */
#include "rt_addr.h"

#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static void say(char *why, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(char *why, size_t len, const char *fmt, ...) {
  if (len == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, len, fmt, ap);
  va_end(ap);
}

/* ------------------------------------------------------------- parse */

static int parse_port(const char *s, int *port, char *why, size_t len) {
  size_t n = strlen(s);
  if (n == 0) {
    say(why, len, "missing port: expected host:port or unix:/path");
    return UV_EINVAL;
  }
  if (strspn(s, "0123456789") != n) {
    say(why, len, "port '%s' is not a number", s);
    return UV_EINVAL;
  }
  if (n > 5 || atoi(s) > 65535) {
    say(why, len, "port %s is out of range (0-65535)", s);
    return UV_EINVAL;
  }
  *port = atoi(s);
  return 0;
}

int rt_addr_parse(const char *addr, rt_addr_t *out, char *why, size_t len) {
  if (len > 0)
    why[0] = '\0';
  memset(out, 0, sizeof(*out));
  if (addr == NULL || *addr == '\0') {
    say(why, len, "empty address: expected host:port or unix:/path");
    return UV_EINVAL;
  }
  if (strncmp(addr, "unix:", 5) == 0) {
    const char *path = addr + 5;
    if (strncmp(path, "//", 2) == 0) {
      if (path[2] != '/') {
        say(why, len, "expected unix:/path or unix:///path");
        return UV_EINVAL;
      }
      path += 2;
    }
    if (*path == '\0') {
      say(why, len, "empty unix socket path");
      return UV_EINVAL;
    }
    if (strlen(path) >= sizeof(out->path)) {
      say(why, len, "unix socket path longer than %zu bytes",
          sizeof(out->path) - 1);
      return UV_ENAMETOOLONG;
    }
    out->is_unix = 1;
    snprintf(out->path, sizeof(out->path), "%s", path);
    return 0;
  }
  const char *host = addr, *host_end, *port;
  if (*addr == '[') {
    host = addr + 1;
    host_end = strchr(host, ']');
    if (host_end == NULL || host_end[1] != ':') {
      say(why, len, "expected [address]:port");
      return UV_EINVAL;
    }
    port = host_end + 2;
  } else {
    host_end = strrchr(addr, ':');
    if (host_end == NULL) {
      say(why, len, "missing port: expected host:port or unix:/path");
      return UV_EINVAL;
    }
    if (memchr(addr, ':', (size_t)(host_end - addr)) != NULL) {
      say(why, len, "%s",
          strstr(addr, "://") != NULL
              ? "expected host:port or unix:/path"
              : "an IPv6 address needs brackets: [address]:port");
      return UV_EINVAL;
    }
    port = host_end + 1;
  }
  if ((size_t)(host_end - host) >= sizeof(out->host)) {
    say(why, len, "host name longer than %zu bytes", sizeof(out->host) - 1);
    return UV_EINVAL;
  }
  int err = parse_port(port, &out->port, why, len);
  if (err != 0)
    return err;
  memcpy(out->host, host, (size_t)(host_end - host));
  out->host[host_end - host] = '\0';
  return 0;
}

/* ------------------------------------------------------ listen check */

/* The directory part of `path`, for messages. */
static void dir_of(const char *path, char *dir, size_t len) {
  const char *slash = strrchr(path, '/');
  if (slash == NULL)
    snprintf(dir, len, ".");
  else if (slash == path)
    snprintf(dir, len, "/");
  else
    snprintf(dir, len, "%.*s", (int)(slash - path), path);
}

static int check_unix(const rt_addr_t *a, char *why, size_t len) {
  struct stat st;
  if (lstat(a->path, &st) == 0) {
    if (S_ISSOCK(st.st_mode))
      return 0; /* a stale socket: the server replaces it */
    say(why, len, "%s exists and is not a socket", a->path);
    return UV_EEXIST;
  }
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0) {
    int e = errno;
    say(why, len, "cannot create a unix socket: %s", strerror(e));
    return -e;
  }
  struct sockaddr_un sun;
  memset(&sun, 0, sizeof(sun));
  sun.sun_family = AF_UNIX;
  memcpy(sun.sun_path, a->path, strlen(a->path) + 1);
  int rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
  int e = errno;
  close(fd);
  if (rc == 0) {
    unlink(a->path);
    return 0;
  }
  char dir[sizeof(a->path)];
  dir_of(a->path, dir, sizeof(dir));
  switch (e) {
  case ENOENT:
    say(why, len, "directory %s does not exist", dir);
    break;
  case ENOTDIR:
    say(why, len, "%s: a component of the path is not a directory", dir);
    break;
  case EACCES:
    say(why, len, "permission denied to create a socket in %s", dir);
    break;
  default:
    say(why, len, "cannot create %s: %s", a->path, strerror(e));
  }
  return -e;
}

static int check_tcp(const rt_addr_t *a, char *why, size_t len) {
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  char port[8];
  snprintf(port, sizeof(port), "%d", a->port);
  int g = getaddrinfo(a->host[0] ? a->host : NULL, port, &hints, &res);
  if (g != 0) {
    say(why, len, "cannot resolve %s: %s", a->host, gai_strerror(g));
    return g == EAI_NONAME ? UV_EAI_NONAME : UV_EAI_FAIL;
  }
  int first = 0;
  for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0) {
      first = first ? first : errno;
      continue;
    }
    int one = 1; /* as gRPC does, so that TIME_WAIT does not count */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    int rc = bind(fd, ai->ai_addr, ai->ai_addrlen);
    int e = errno;
    close(fd);
    if (rc == 0) {
      freeaddrinfo(res);
      return 0; /* gRPC listens if any of the addresses binds */
    }
    first = first ? first : e;
  }
  freeaddrinfo(res);
  const char *host = a->host[0] ? a->host : "*";
  switch (first) {
  case EADDRNOTAVAIL:
    say(why, len, "%s is not an address of this host", host);
    break;
  case EADDRINUSE:
    say(why, len, "port %d is already in use on %s", a->port, host);
    break;
  case EACCES:
    say(why, len, "permission denied to listen on port %d", a->port);
    break;
  default:
    say(why, len, "cannot bind %s:%d: %s", host, a->port, strerror(first));
  }
  return first ? -first : UV_EINVAL;
}

int rt_addr_check_listen(const char *addr, char *why, size_t len) {
  rt_addr_t a;
  int err = rt_addr_parse(addr, &a, why, len);
  if (err != 0)
    return err;
  return a.is_unix ? check_unix(&a, why, len) : check_tcp(&a, why, len);
}

/* ------------------------------------------------------------- probe */

typedef struct probe_s {
  rt_addr_t a;
  int timeout_ms;
  rt_probe_cb cb;
  void *data;
  uv_timer_t timer;
  uv_getaddrinfo_t gai;
  union {
    uv_handle_t handle;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } h;
  uv_connect_t conn;
  struct addrinfo *res, *next; /* addresses to try, for TCP */
  int refs;                    /* open handles and the lookup in flight */
  int stream_open;             /* h is initialised and not closing */
  int gai_busy;
  int reported;
  int err; /* the error to report (parse) or the first connect error */
  char why[384];
} probe_t;

static void probe_unref(probe_t *p) {
  if (--p->refs > 0)
    return;
  if (p->res != NULL)
    uv_freeaddrinfo(p->res);
  free(p);
}

static void on_probe_closed(uv_handle_t *h) {
  probe_unref(h->data);
}

static void probe_close_stream(probe_t *p, uv_close_cb cb) {
  if (p->stream_open) {
    p->stream_open = 0;
    uv_close(&p->h.handle, cb);
  }
}

/* Reports `err` (with p->why) once, then releases everything. */
static void probe_report(probe_t *p, int err) {
  if (p->reported)
    return;
  p->reported = 1;
  p->cb(err, err ? p->why : "", p->data);
  uv_close((uv_handle_t *)&p->timer, on_probe_closed);
  probe_close_stream(p, on_probe_closed);
  if (p->gai_busy)
    uv_cancel((uv_req_t *)&p->gai);
}

static void probe_fail(probe_t *p, int err) {
  if (err == UV_ENOENT && p->a.is_unix)
    say(p->why, sizeof(p->why), "no such socket file");
  else if (err == UV_ECONNREFUSED)
    say(p->why, sizeof(p->why), "connection refused");
  else
    say(p->why, sizeof(p->why), "cannot connect: %s", uv_strerror(err));
  probe_report(p, err);
}

static void connect_next(probe_t *p);

static void on_stream_closed_retry(uv_handle_t *h) {
  probe_t *p = h->data;
  if (!p->reported)
    connect_next(p);
  probe_unref(p);
}

static void on_connect(uv_connect_t *req, int status) {
  probe_t *p = req->data;
  if (p->reported)
    return; /* the close that follows the report cancelled it */
  if (status == 0) {
    probe_report(p, 0);
    return;
  }
  if (p->err == 0)
    p->err = status;
  if (!p->a.is_unix && p->next != NULL)
    probe_close_stream(p, on_stream_closed_retry);
  else
    probe_fail(p, p->err);
}

static void connect_next(probe_t *p) {
  uv_loop_t *loop = p->timer.loop;
  struct addrinfo *ai = p->next;
  p->next = ai->ai_next;
  int err = uv_tcp_init(loop, &p->h.tcp);
  if (err != 0) {
    probe_fail(p, err);
    return;
  }
  p->h.handle.data = p;
  p->stream_open = 1;
  p->refs++;
  err = uv_tcp_connect(&p->conn, &p->h.tcp, ai->ai_addr, on_connect);
  if (err != 0)
    on_connect(&p->conn, err);
}

static void on_resolved(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res) {
  probe_t *p = req->data;
  p->gai_busy = 0;
  if (p->reported) {
    if (res != NULL)
      uv_freeaddrinfo(res);
  } else if (status != 0) {
    say(p->why, sizeof(p->why), "cannot resolve %s: %s", p->a.host,
        uv_strerror(status));
    probe_report(p, status);
  } else if (res == NULL) {
    say(p->why, sizeof(p->why), "cannot resolve %s: no address", p->a.host);
    probe_report(p, UV_EAI_NONAME);
  } else {
    p->res = p->next = res;
    connect_next(p);
  }
  probe_unref(p);
}

static void on_probe_timer(uv_timer_t *t) {
  probe_t *p = t->data;
  if (p->err != 0) {
    probe_report(p, p->err); /* a parse error, reported asynchronously */
    return;
  }
  say(p->why, sizeof(p->why), "no answer within %d ms", p->timeout_ms);
  probe_report(p, UV_ETIMEDOUT);
}

int rt_probe(rt_t *rt, const char *target, int timeout_ms, rt_probe_cb cb,
             void *data) {
  if (rt == NULL || target == NULL || cb == NULL || timeout_ms <= 0)
    return UV_EINVAL;
  probe_t *p = calloc(1, sizeof(*p));
  if (p == NULL)
    return UV_ENOMEM;
  uv_loop_t *loop = rt_loop(rt);
  p->cb = cb;
  p->data = data;
  p->timeout_ms = timeout_ms;
  p->gai.data = p;
  p->conn.data = p;
  int err = uv_timer_init(loop, &p->timer);
  if (err != 0) {
    free(p);
    return err;
  }
  p->timer.data = p;
  p->refs = 1;
  char why[256];
  int perr = rt_addr_parse(target, &p->a, why, sizeof(why));
  if (perr == 0 && !p->a.is_unix && p->a.host[0] == '\0') {
    perr = UV_EINVAL;
    snprintf(why, sizeof(why), "missing host: expected host:port");
  }
  if (perr != 0) {
    p->err = perr;
    say(p->why, sizeof(p->why), "bad address: %s", why);
    uv_timer_start(&p->timer, on_probe_timer, 0, 0);
    return 0;
  }
  uv_timer_start(&p->timer, on_probe_timer, (uint64_t)timeout_ms, 0);
  if (p->a.is_unix) {
    err = uv_pipe_init(loop, &p->h.pipe, 0);
    if (err == 0) {
      p->h.handle.data = p;
      p->stream_open = 1;
      p->refs++;
      uv_pipe_connect(&p->conn, &p->h.pipe, p->a.path, on_connect);
    }
  } else {
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    char port[8];
    snprintf(port, sizeof(port), "%d", p->a.port);
    err = uv_getaddrinfo(loop, &p->gai, on_resolved, p->a.host, port, &hints);
    if (err == 0) {
      p->gai_busy = 1;
      p->refs++;
    }
  }
  if (err != 0) {
    /* Nothing is in flight but the timer: close it; no callback. */
    p->reported = 1;
    uv_close((uv_handle_t *)&p->timer, on_probe_closed);
    return err;
  }
  return 0;
}
