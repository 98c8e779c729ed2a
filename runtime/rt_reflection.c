/*
 * rt_reflection.c - server reflection v1 and v1alpha (rt_reflection.h).
 *
 * The embedded FileDescriptorSet is walked once at the wire level: each
 * file's serialized FileDescriptorProto is kept as the exact bytes protoc
 * wrote (served as is, so nothing is renamed or lost), and is also
 * unpacked to index its symbols. Symbols live in one array sorted by name
 * and are found with bsearch; files are few and searched linearly.
 *
 * Answers are built as v1 messages and then packed and unpacked as the
 * caller's response descriptor: v1alpha is wire-identical, so one
 * implementation serves both. The extra copy costs microseconds per
 * request, and reflection is a debugging path.
 */
#include "rt_reflection.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/reflection/v1/reflection.smaug.h"
#include "grpc/reflection/v1alpha/reflection.smaug.h"
#include "rt_log.h"
#include "smaug_descriptor_set.h"

typedef Google__Protobuf__FileDescriptorProto file_proto_t;
typedef Google__Protobuf__DescriptorProto msg_proto_t;
typedef Google__Protobuf__EnumDescriptorProto enum_proto_t;
typedef Grpc__Reflection__V1__ServerReflectionRequest req_t;
typedef Grpc__Reflection__V1__ServerReflectionResponse resp_t;

typedef struct {
  const uint8_t *bytes; /* into smaug_descriptor_set */
  size_t len;
  file_proto_t *fd;
  size_t *deps; /* indices into files[] of the resolvable imports */
  size_t n_deps;
} file_t;

typedef struct {
  char *name;
  size_t file;
  int is_message;
} sym_t;

struct rt_reflection_s {
  file_t *files;
  size_t n_files;
  sym_t *syms; /* sorted by name, unique */
  size_t n_syms, cap_syms;
  char **services; /* for list_services, in order of addition */
  size_t n_services;
};

struct rt_reflection_stream_s {
  rt_reflection_t *r;
  unsigned char *sent; /* per file: already sent on this stream */
};

/* Services every rt server has (rt_server_new registers them). */
static const char *const builtin_services[] = {
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
};

/* ------------------------------------------------------------ indexing */

/* Reads a base-128 varint at *pos; returns 0 or UV_EPROTO. */
static int read_varint(const uint8_t *p, size_t len, size_t *pos,
                       uint64_t *out) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (*pos >= len)
      return UV_EPROTO;
    uint8_t b = p[(*pos)++];
    v |= (uint64_t)(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      *out = v;
      return 0;
    }
  }
  return UV_EPROTO;
}

/* Adds `scope.name` (or `name` if scope is empty) for file `file`. */
static int sym_add(rt_reflection_t *r, const char *scope, const char *name,
                   size_t file, int is_message) {
  if (r->n_syms == r->cap_syms) {
    size_t cap = r->cap_syms ? 2 * r->cap_syms : 256;
    sym_t *p = realloc(r->syms, cap * sizeof(*p));
    if (p == NULL)
      return UV_ENOMEM;
    r->syms = p;
    r->cap_syms = cap;
  }
  size_t ls = scope != NULL ? strlen(scope) : 0, ln = strlen(name);
  char *full = malloc(ls + ln + 2);
  if (full == NULL)
    return UV_ENOMEM;
  if (ls > 0) {
    memcpy(full, scope, ls);
    full[ls] = '.';
    memcpy(full + ls + 1, name, ln + 1);
  } else {
    memcpy(full, name, ln + 1);
  }
  r->syms[r->n_syms++] = (sym_t){full, file, is_message};
  return 0;
}

/* Enum values are scoped like siblings of their enum, as in protoc. */
static int index_enum(rt_reflection_t *r, const char *scope,
                      const enum_proto_t *e, size_t file) {
  int rc = sym_add(r, scope, e->name, file, 0);
  for (size_t i = 0; rc == 0 && i < e->n_value; i++)
    rc = sym_add(r, scope, e->value[i]->name, file, 0);
  return rc;
}

static int index_message(rt_reflection_t *r, const char *scope,
                         const msg_proto_t *m, size_t file) {
  int rc = sym_add(r, scope, m->name, file, 1);
  if (rc != 0)
    return rc;
  const char *self = r->syms[r->n_syms - 1].name;
  for (size_t i = 0; rc == 0 && i < m->n_field; i++)
    rc = sym_add(r, self, m->field[i]->name, file, 0);
  for (size_t i = 0; rc == 0 && i < m->n_nested_type; i++)
    rc = index_message(r, self, m->nested_type[i], file);
  for (size_t i = 0; rc == 0 && i < m->n_enum_type; i++)
    rc = index_enum(r, self, m->enum_type[i], file);
  return rc;
}

static int index_file(rt_reflection_t *r, size_t idx) {
  const file_proto_t *fd = r->files[idx].fd;
  const char *pkg = fd->package != NULL ? fd->package : "";
  int rc = 0;
  if (*pkg != '\0')
    rc = sym_add(r, NULL, pkg, idx, 0);
  for (size_t i = 0; rc == 0 && i < fd->n_message_type; i++)
    rc = index_message(r, pkg, fd->message_type[i], idx);
  for (size_t i = 0; rc == 0 && i < fd->n_enum_type; i++)
    rc = index_enum(r, pkg, fd->enum_type[i], idx);
  for (size_t i = 0; rc == 0 && i < fd->n_service; i++) {
    const Google__Protobuf__ServiceDescriptorProto *s = fd->service[i];
    rc = sym_add(r, pkg, s->name, idx, 0);
    if (rc != 0)
      break;
    const char *svc = r->syms[r->n_syms - 1].name;
    for (size_t j = 0; rc == 0 && j < s->n_method; j++)
      rc = sym_add(r, svc, s->method[j]->name, idx, 0);
  }
  return rc;
}

/* Orders by name, then by file, so that the first file wins a shared name
 * (a package declared by several files). */
static int sym_cmp(const void *a, const void *b) {
  const sym_t *x = a, *y = b;
  int c = strcmp(x->name, y->name);
  if (c != 0)
    return c;
  return x->file < y->file ? -1 : x->file > y->file;
}

static void sort_unique_syms(rt_reflection_t *r) {
  if (r->n_syms == 0)
    return;
  qsort(r->syms, r->n_syms, sizeof(*r->syms), sym_cmp);
  size_t out = 1;
  for (size_t i = 1; i < r->n_syms; i++) {
    if (strcmp(r->syms[i].name, r->syms[out - 1].name) == 0)
      free(r->syms[i].name);
    else
      r->syms[out++] = r->syms[i];
  }
  r->n_syms = out;
}

static int sym_name_cmp(const void *key, const void *elem) {
  return strcmp(key, ((const sym_t *)elem)->name);
}

static const sym_t *sym_find(const rt_reflection_t *r, const char *name) {
  return bsearch(name, r->syms, r->n_syms, sizeof(*r->syms), sym_name_cmp);
}

static ssize_t file_find(const rt_reflection_t *r, const char *name) {
  for (size_t i = 0; i < r->n_files; i++)
    if (strcmp(r->files[i].fd->name, name) == 0)
      return (ssize_t)i;
  return -1;
}

/* Splits the set into files (field 1 of FileDescriptorSet), unpacks each
 * and resolves its imports. Returns 0, UV_ENOMEM or UV_EPROTO. */
static int load_files(rt_reflection_t *r, const uint8_t *p, size_t len) {
  size_t pos = 0, cap = 0;
  while (pos < len) {
    uint64_t tag, n;
    if (read_varint(p, len, &pos, &tag) != 0)
      return UV_EPROTO;
    switch (tag & 7) {
    case 0:
      if (read_varint(p, len, &pos, &n) != 0)
        return UV_EPROTO;
      continue;
    case 1:
      n = 8;
      break;
    case 5:
      n = 4;
      break;
    case 2:
      if (read_varint(p, len, &pos, &n) != 0)
        return UV_EPROTO;
      break;
    default:
      return UV_EPROTO;
    }
    if (n > len - pos)
      return UV_EPROTO;
    if (tag == ((1 << 3) | 2)) {
      if (r->n_files == cap) {
        cap = cap ? 2 * cap : 16;
        file_t *f = realloc(r->files, cap * sizeof(*f));
        if (f == NULL)
          return UV_ENOMEM;
        r->files = f;
      }
      file_t *f = &r->files[r->n_files];
      memset(f, 0, sizeof(*f));
      f->bytes = p + pos;
      f->len = (size_t)n;
      f->fd = google__protobuf__file_descriptor_proto__unpack(NULL, f->len,
                                                              f->bytes);
      if (f->fd == NULL)
        return UV_EPROTO;
      r->n_files++;
      if (f->fd->name == NULL)
        return UV_EPROTO;
    }
    pos += (size_t)n;
  }
  for (size_t i = 0; i < r->n_files; i++) {
    file_t *f = &r->files[i];
    if (f->fd->n_dependency == 0)
      continue;
    f->deps = calloc(f->fd->n_dependency, sizeof(*f->deps));
    if (f->deps == NULL)
      return UV_ENOMEM;
    for (size_t j = 0; j < f->fd->n_dependency; j++) {
      ssize_t d = file_find(r, f->fd->dependency[j]);
      if (d >= 0)
        f->deps[f->n_deps++] = (size_t)d;
      else /* protoc --include_imports makes this a build bug */
        rt_log(RT_LOG_WARN, "reflection", "import missing from descriptor set",
               "file=%s import=%s", f->fd->name, f->fd->dependency[j]);
    }
  }
  return 0;
}

/* ------------------------------------------------------------- answers */

static void free_index(rt_reflection_t *r) {
  for (size_t i = 0; i < r->n_files; i++) {
    google__protobuf__file_descriptor_proto__free_unpacked(r->files[i].fd,
                                                           NULL);
    free(r->files[i].deps);
  }
  free(r->files);
  for (size_t i = 0; i < r->n_syms; i++)
    free(r->syms[i].name);
  free(r->syms);
  for (size_t i = 0; i < r->n_services; i++)
    free(r->services[i]);
  free(r->services);
}

int rt_reflection_stream_new(rt_reflection_t *r, rt_reflection_stream_t **out) {
  if (r == NULL || out == NULL)
    return UV_EINVAL;
  rt_reflection_stream_t *s = calloc(1, sizeof(*s));
  if (s == NULL)
    return UV_ENOMEM;
  s->sent = calloc(r->n_files ? r->n_files : 1, 1);
  if (s->sent == NULL) {
    free(s);
    return UV_ENOMEM;
  }
  s->r = r;
  *out = s;
  return 0;
}

void rt_reflection_stream_free(rt_reflection_stream_t *s) {
  if (s == NULL)
    return;
  free(s->sent);
  free(s);
}

/* Appends file `i` and, depth first, its imports not yet sent on the stream
 * nor already in `list`. `mark` flags what is in `list`. */
static void collect_file(const rt_reflection_stream_t *s, size_t i,
                         size_t *list, size_t *n, unsigned char *mark) {
  mark[i] = 1;
  list[(*n)++] = i;
  const file_t *f = &s->r->files[i];
  for (size_t j = 0; j < f->n_deps; j++) {
    size_t d = f->deps[j];
    if (!mark[d] && !s->sent[d])
      collect_file(s, d, list, n, mark);
  }
}

/* The parts of one v1 response that need storage while it is packed. */
typedef struct {
  resp_t resp;
  Grpc__Reflection__V1__FileDescriptorResponse files;
  Grpc__Reflection__V1__ListServiceResponse list;
  Grpc__Reflection__V1__ExtensionNumberResponse ext;
  Grpc__Reflection__V1__ErrorResponse err;
  char err_msg[512];
  ProtobufCBinaryData *blobs;
  size_t *order; /* files in blobs[], marked sent on success */
  unsigned char *mark;
  Grpc__Reflection__V1__ServiceResponse *svcs;
  Grpc__Reflection__V1__ServiceResponse **svc_ptrs;
} answer_t;

static void answer_error(answer_t *a, grpc_status_code code, const char *fmt,
                         ...) __attribute__((format(printf, 3, 4)));
static void answer_error(answer_t *a, grpc_status_code code, const char *fmt,
                         ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(a->err_msg, sizeof(a->err_msg), fmt, ap);
  va_end(ap);
  a->err.error_code = (int32_t)code;
  a->err.error_message = a->err_msg;
  a->resp.message_response_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
  a->resp.error_response = &a->err;
}

static int answer_files(answer_t *a, const rt_reflection_stream_t *s,
                        size_t first) {
  size_t nf = s->r->n_files, n = 0;
  a->order = malloc(nf * sizeof(*a->order));
  a->mark = calloc(nf, 1);
  a->blobs = malloc(nf * sizeof(*a->blobs));
  if (a->order == NULL || a->mark == NULL || a->blobs == NULL)
    return UV_ENOMEM;
  collect_file(s, first, a->order, &n, a->mark);
  for (size_t i = 0; i < n; i++) {
    const file_t *f = &s->r->files[a->order[i]];
    a->blobs[i].data = (uint8_t *)f->bytes;
    a->blobs[i].len = f->len;
  }
  a->files.n_file_descriptor_proto = n;
  a->files.file_descriptor_proto = a->blobs;
  a->resp.message_response_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
  a->resp.file_descriptor_response = &a->files;
  return 0;
}

static int answer_list(answer_t *a, const rt_reflection_t *r) {
  a->svcs = calloc(r->n_services, sizeof(*a->svcs));
  a->svc_ptrs = calloc(r->n_services, sizeof(*a->svc_ptrs));
  if (a->svcs == NULL || a->svc_ptrs == NULL)
    return UV_ENOMEM;
  for (size_t i = 0; i < r->n_services; i++) {
    grpc__reflection__v1__service_response__init(&a->svcs[i]);
    a->svcs[i].name = r->services[i];
    a->svc_ptrs[i] = &a->svcs[i];
  }
  a->list.n_service = r->n_services;
  a->list.service = a->svc_ptrs;
  a->resp.message_response_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
  a->resp.list_services_response = &a->list;
  return 0;
}

/* Fills a->resp for `req`. Returns 0 or UV_ENOMEM. */
static int answer_build(answer_t *a, const rt_reflection_stream_t *s,
                        const req_t *req) {
  const rt_reflection_t *r = s->r;
  const sym_t *sym;
  ssize_t fi;
  const char *name;

  switch (req->message_request_case) {
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
    return answer_list(a, r);
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
    name = req->file_by_filename != NULL ? req->file_by_filename : "";
    fi = file_find(r, name);
    if (fi < 0) {
      answer_error(a, GRPC_STATUS_NOT_FOUND, "file not found: %s", name);
      return 0;
    }
    return answer_files(a, s, (size_t)fi);
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
    name =
        req->file_containing_symbol != NULL ? req->file_containing_symbol : "";
    sym = sym_find(r, name);
    if (sym == NULL) {
      answer_error(a, GRPC_STATUS_NOT_FOUND, "symbol not found: %s", name);
      return 0;
    }
    return answer_files(a, s, sym->file);
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION: {
    const Grpc__Reflection__V1__ExtensionRequest *e =
        req->file_containing_extension;
    answer_error(a, GRPC_STATUS_NOT_FOUND, "extension not found: %s(%d)",
                 e != NULL && e->containing_type ? e->containing_type : "",
                 e != NULL ? (int)e->extension_number : 0);
    return 0;
  }
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
    name = req->all_extension_numbers_of_type != NULL
               ? req->all_extension_numbers_of_type
               : "";
    sym = sym_find(r, name);
    if (sym == NULL || !sym->is_message) {
      answer_error(a, GRPC_STATUS_NOT_FOUND, "message type not found: %s",
                   name);
      return 0;
    }
    /* A known message: no file here declares extensions of it. */
    a->ext.base_type_name = sym->name;
    a->resp.message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE;
    a->resp.all_extension_numbers_response = &a->ext;
    return 0;
  default:
    answer_error(a, GRPC_STATUS_INVALID_ARGUMENT, "empty reflection request");
    return 0;
  }
}

int rt_reflection_answer(rt_reflection_stream_t *s, const ProtobufCMessage *req,
                         const ProtobufCMessageDescriptor *resp_desc,
                         ProtobufCMessage **out) {
  if (s == NULL || req == NULL || out == NULL ||
      (resp_desc !=
           &grpc__reflection__v1__server_reflection_response__descriptor &&
       resp_desc !=
           &grpc__reflection__v1alpha__server_reflection_response__descriptor))
    return UV_EINVAL;

  int rc = 0;
  req_t *owned_req = NULL; /* a v1alpha request re-read as v1 */
  uint8_t *wire = NULL;
  const req_t *v1req;
  answer_t a;
  memset(&a, 0, sizeof(a));

  if (req->descriptor ==
      &grpc__reflection__v1__server_reflection_request__descriptor) {
    v1req = (const req_t *)req;
  } else if (
      req->descriptor ==
      &grpc__reflection__v1alpha__server_reflection_request__descriptor) {
    size_t n = protobuf_c_message_get_packed_size(req);
    wire = malloc(n ? n : 1);
    if (wire == NULL)
      return UV_ENOMEM;
    protobuf_c_message_pack(req, wire);
    owned_req =
        grpc__reflection__v1__server_reflection_request__unpack(NULL, n, wire);
    free(wire);
    wire = NULL;
    if (owned_req == NULL)
      return UV_ENOMEM; /* the bytes were just packed: only malloc fails */
    v1req = owned_req;
  } else {
    return UV_EINVAL;
  }

  grpc__reflection__v1__server_reflection_response__init(&a.resp);
  grpc__reflection__v1__file_descriptor_response__init(&a.files);
  grpc__reflection__v1__list_service_response__init(&a.list);
  grpc__reflection__v1__extension_number_response__init(&a.ext);
  grpc__reflection__v1__error_response__init(&a.err);
  a.resp.valid_host = v1req->host != NULL ? v1req->host : "";
  a.resp.original_request = (req_t *)v1req; /* only read by pack */

  rc = answer_build(&a, s, v1req);
  if (rc != 0)
    goto done;

  size_t n = protobuf_c_message_get_packed_size(&a.resp.base);
  wire = malloc(n ? n : 1);
  if (wire == NULL) {
    rc = UV_ENOMEM;
    goto done;
  }
  protobuf_c_message_pack(&a.resp.base, wire);
  ProtobufCMessage *m = protobuf_c_message_unpack(resp_desc, NULL, n, wire);
  if (m == NULL) {
    rc = UV_ENOMEM;
    goto done;
  }
  for (size_t i = 0; i < a.files.n_file_descriptor_proto; i++)
    s->sent[a.order[i]] = 1;
  *out = m;

done:
  free(wire);
  free(a.blobs);
  free(a.order);
  free(a.mark);
  free(a.svcs);
  free(a.svc_ptrs);
  if (owned_req != NULL)
    grpc__reflection__v1__server_reflection_request__free_unpacked(owned_req,
                                                                   NULL);
  return rc;
}

/* ------------------------------------------------------ the gRPC side */

/* One ServerReflectionInfo call: read a request, send its answer, repeat
 * until the client half-closes or cancels. The runtime never runs a read
 * callback after the call is finished, so whichever of end-of-stream and
 * cancel comes first frees the connection. */
typedef struct {
  rt_call_t *call;
  rt_reflection_stream_t *stream;
} conn_t;

static void conn_end(conn_t *c, grpc_status_code code, const char *msg) {
  rt_call_t *call = c->call;
  rt_reflection_stream_free(c->stream);
  free(c);
  rt_call_finish(call, code, msg, NULL);
}

static void on_conn_cancel(rt_call_t *call, void *data) {
  (void)call;
  conn_end(data, GRPC_STATUS_CANCELLED, "reflection: cancelled");
}

static void on_conn_read(rt_call_t *call, const ProtobufCMessage *msg,
                         void *data) {
  conn_t *c = data;
  if (msg == NULL) {
    conn_end(c, GRPC_STATUS_OK, NULL);
    return;
  }
  ProtobufCMessage *resp = NULL;
  int rc =
      rt_reflection_answer(c->stream, msg, rt_call_method(call)->output, &resp);
  if (rc == 0) {
    rc = rt_call_send(call, resp);
    protobuf_c_message_free_unpacked(resp, NULL);
  }
  if (rc == UV_ECANCELED)
    return; /* on_conn_cancel ends it */
  if (rc == 0)
    rc = rt_call_read(call, on_conn_read, c);
  if (rc != 0) {
    rt_log(RT_LOG_WARN, "reflection", "stream failed", "err=%s",
           uv_err_name(rc));
    conn_end(c, GRPC_STATUS_INTERNAL, "reflection: cannot answer");
  }
}

static void reflection_info(rt_call_t *call, void *data) {
  rt_reflection_t *r = data;
  conn_t *c = calloc(1, sizeof(*c));
  int rc = c != NULL ? rt_reflection_stream_new(r, &c->stream) : UV_ENOMEM;
  if (rc == 0) {
    c->call = call;
    rc = rt_call_read(call, on_conn_read, c);
    if (rc == 0) {
      rt_call_on_cancel(call, on_conn_cancel, c);
      return;
    }
    rt_reflection_stream_free(c->stream);
  }
  free(c);
  rt_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
               "reflection: cannot start the stream: %s", uv_strerror(rc));
}

static const grpc_reflection_v1_server_reflection_handlers_t v1_handlers = {
    .server_reflection_info = reflection_info,
};
static const grpc_reflection_v1alpha_server_reflection_handlers_t
    v1alpha_handlers = {
        .server_reflection_info = reflection_info,
};

/* ----------------------------------------------------------- lifetime */

int rt_reflection_new(rt_server_t *srv, rt_reflection_t **out) {
  if (out == NULL)
    return UV_EINVAL;
  rt_reflection_t *r = calloc(1, sizeof(*r));
  if (r == NULL)
    return UV_ENOMEM;
  int rc = load_files(r, smaug_descriptor_set, smaug_descriptor_set_len);
  for (size_t i = 0; rc == 0 && i < r->n_files; i++)
    rc = index_file(r, i);
  if (rc != 0)
    goto fail;
  sort_unique_syms(r);
  for (size_t i = 0;
       rc == 0 && i < sizeof(builtin_services) / sizeof(builtin_services[0]);
       i++)
    rc = rt_reflection_add_service(r, builtin_services[i]);
  if (rc != 0)
    goto fail;
  if (srv != NULL) {
    rc = grpc_reflection_v1_server_reflection_register(srv, &v1_handlers, r);
    if (rc == 0)
      rc = grpc_reflection_v1alpha_server_reflection_register(
          srv, &v1alpha_handlers, r);
    if (rc != 0)
      goto fail;
  }
  *out = r;
  return 0;

fail:
  if (rc == UV_EPROTO)
    rt_log(RT_LOG_ERROR, "reflection", "embedded descriptor set is corrupt",
           NULL);
  free_index(r);
  free(r);
  return rc;
}

int rt_reflection_add_service(rt_reflection_t *r, const char *full_name) {
  if (r == NULL || full_name == NULL || *full_name == '\0')
    return UV_EINVAL;
  for (size_t i = 0; i < r->n_services; i++)
    if (strcmp(r->services[i], full_name) == 0)
      return 0;
  char *name = strdup(full_name);
  if (name == NULL)
    return UV_ENOMEM;
  char **p = realloc(r->services, (r->n_services + 1) * sizeof(*p));
  if (p == NULL) {
    free(name);
    return UV_ENOMEM;
  }
  r->services = p;
  r->services[r->n_services++] = name;
  return 0;
}

void rt_reflection_free(rt_reflection_t *r) {
  if (r == NULL)
    return;
  free_index(r);
  free(r);
}
