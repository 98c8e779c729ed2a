/*
 * protoc-gen-smaug - the protoc plugin that generates typed service code
 * for the smaug RPC runtime (rt.h).
 *
 * protoc-c describes services without their streaming flags, so it cannot
 * tell a unary method from a streaming one. This plugin reads protoc's
 * CodeGeneratorRequest (decoded with protobuf-c) and, for every file that
 * declares a service, writes <file>.smaug.h and <file>.smaug.c with:
 *   - the method table (rt_method_t) and an index enum per service;
 *   - a typed handler table and a dispatch switch that calls each member
 *     with its own request type (no casts between function types);
 *   - a register function and client stubs for unary and server-streaming
 *     methods.
 * Names follow protoc-c: messages are FullNameToC ("Smaug__V1__Foo") and
 * descriptors FullNameToLower ("smaug__v1__foo__descriptor").
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/compiler/plugin.pb-c.h"
#include "google/protobuf/descriptor.pb-c.h"

typedef Google__Protobuf__FileDescriptorProto file_t;
typedef Google__Protobuf__DescriptorProto msg_t;
typedef Google__Protobuf__ServiceDescriptorProto svc_t;
typedef Google__Protobuf__MethodDescriptorProto method_t;

/* A growable string. Allocation failure ends the process: this is a
 * short-lived build tool. */
typedef struct {
  char *p;
  size_t len, cap;
} buf_t;

static void die(const char *what) {
  fprintf(stderr, "protoc-gen-smaug: %s\n", what);
  exit(1);
}

static void buf_grow(buf_t *b, size_t need) {
  if (b->len + need + 1 <= b->cap)
    return;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + need + 1)
    cap *= 2;
  char *p = realloc(b->p, cap);
  if (p == NULL)
    die("out of memory");
  b->p = p;
  b->cap = cap;
}

static void buf_printf(buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void buf_printf(buf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0)
    die("format error");
  buf_grow(b, (size_t)n);
  va_start(ap, fmt);
  vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

static void buf_putc(buf_t *b, char c) {
  buf_grow(b, 1);
  b->p[b->len++] = c;
  b->p[b->len] = '\0';
}

/* Returns the NUL-terminated contents; the buffer is reset. */
static char *buf_take(buf_t *b) {
  if (b->p == NULL)
    buf_grow(b, 0), b->p[0] = '\0';
  char *s = b->p;
  memset(b, 0, sizeof(*b));
  return s;
}

/* protoc-c's CamelToLower: "GetPluginInfo" -> "get_plugin_info"; a run of
 * capitals gets no inner underscores. */
static void camel_to_lower(buf_t *b, const char *s, size_t n) {
  int was_upper = 1;
  for (size_t i = 0; i < n; i++) {
    int up = isupper((unsigned char)s[i]) != 0;
    if (up && !was_upper)
      buf_putc(b, '_');
    buf_putc(b, up ? (char)tolower((unsigned char)s[i]) : s[i]);
    was_upper = up;
  }
}

/* protoc-c's ToCamel: "v1" -> "V1", "foo_bar" -> "FooBar". */
static void to_camel(buf_t *b, const char *s, size_t n) {
  int next_upper = 1;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '_') {
      next_upper = 1;
    } else if (next_upper) {
      buf_putc(b, (char)toupper((unsigned char)s[i]));
      next_upper = 0;
    } else {
      buf_putc(b, s[i]);
    }
  }
}

/* Applies `piece` to every dot-separated part of `full` (leading dot
 * ignored), joined with "__". */
static char *map_full_name(const char *full,
                           void (*piece)(buf_t *, const char *, size_t)) {
  buf_t b = {0};
  const char *s = full;
  while (*s) {
    const char *dot = strchr(s, '.');
    size_t n = dot ? (size_t)(dot - s) : strlen(s);
    if (n > 0) {
      if (b.len > 0)
        buf_printf(&b, "__");
      piece(&b, s, n);
    }
    s += n + (dot ? 1 : 0);
  }
  return buf_take(&b);
}

static char *c_type_name(const char *full) {
  return map_full_name(full, to_camel);
}

static char *c_lower_name(const char *full) {
  return map_full_name(full, camel_to_lower);
}

static char *lower(const char *s) {
  buf_t b = {0};
  camel_to_lower(&b, s, strlen(s));
  return buf_take(&b);
}

static char *upper(const char *s) {
  char *u = strdup(s);
  if (u == NULL)
    die("out of memory");
  for (char *p = u; *p; p++)
    *p = (char)toupper((unsigned char)*p);
  return u;
}

/* "smaug.v1" -> "smaug_v1"; "" stays "". */
static char *pkg_prefix(const char *pkg) {
  char *p = strdup(pkg ? pkg : "");
  if (p == NULL)
    die("out of memory");
  for (char *q = p; *q; q++)
    if (*q == '.')
      *q = '_';
  return p;
}

static const char *method_kind(const method_t *m) {
  int cs = m->has_client_streaming && m->client_streaming;
  int ss = m->has_server_streaming && m->server_streaming;
  if (cs && ss)
    return "RT_BIDI_STREAMING";
  if (cs)
    return "RT_CLIENT_STREAMING";
  if (ss)
    return "RT_SERVER_STREAMING";
  return "RT_UNARY";
}

static int reads_first_message(const method_t *m) {
  return !(m->has_client_streaming && m->client_streaming);
}

/* "smaug/v1/plugin.proto" -> "smaug/v1/plugin" */
static char *file_stem(const char *name) {
  char *s = strdup(name);
  if (s == NULL)
    die("out of memory");
  size_t n = strlen(s);
  if (n > 6 && strcmp(s + n - 6, ".proto") == 0)
    s[n - 6] = '\0';
  return s;
}

/* "smaug/v1/plugin" -> "SMAUG_V1_PLUGIN_SMAUG_H" */
static char *guard_name(const char *stem) {
  buf_t b = {0};
  for (const char *p = stem; *p; p++)
    buf_putc(&b, isalnum((unsigned char)*p) ? (char)toupper((unsigned char)*p)
                                            : '_');
  buf_printf(&b, "_SMAUG_H");
  return buf_take(&b);
}

/* Names shared by every piece of one service's output. */
typedef struct {
  const svc_t *svc;
  char *full;   /* "smaug.v1.ProtectionPlugin" */
  char *prefix; /* "smaug_v1_protection_plugin" */
  char *upper;  /* "SMAUG_V1_PROTECTION_PLUGIN" */
} names_t;

static void names_init(names_t *n, const file_t *f, const svc_t *svc) {
  buf_t b = {0};
  char *pkg = pkg_prefix(f->package);
  char *svc_lower = lower(svc->name);
  n->svc = svc;
  if (f->package && *f->package)
    buf_printf(&b, "%s.%s", f->package, svc->name);
  else
    buf_printf(&b, "%s", svc->name);
  n->full = buf_take(&b);
  buf_printf(&b, "%s%s%s", pkg, *pkg ? "_" : "", svc_lower);
  n->prefix = buf_take(&b);
  n->upper = upper(n->prefix);
  free(pkg);
  free(svc_lower);
}

static void names_free(names_t *n) {
  free(n->full);
  free(n->prefix);
  free(n->upper);
}

static void gen_header_service(buf_t *h, const names_t *n) {
  const svc_t *svc = n->svc;
  buf_printf(h, "/* ---- service %s */\n\n", n->full);
  buf_printf(h, "enum {\n");
  for (size_t i = 0; i < svc->n_method; i++) {
    char *mu = lower(svc->method[i]->name);
    char *mU = upper(mu);
    buf_printf(h, "  %s_%s = %zu,\n", n->upper, mU, i);
    free(mu);
    free(mU);
  }
  buf_printf(h, "  %s_N_METHODS = %zu\n};\n\n", n->upper, svc->n_method);
  buf_printf(h, "extern const rt_method_t %s_methods[%zu];\n", n->prefix,
             svc->n_method);
  buf_printf(h, "extern const rt_service_t %s_service;\n\n", n->prefix);

  buf_printf(h,
             "/* Handlers of %s. A NULL member answers UNIMPLEMENTED. Each\n"
             " * handler owns `call` and ends it once with rt_call_finish().\n"
             " * Client- and bidi-streaming handlers read with "
             "rt_call_read(). */\n",
             n->full);
  buf_printf(h, "typedef struct %s_handlers_s {\n", n->prefix);
  for (size_t i = 0; i < svc->n_method; i++) {
    const method_t *m = svc->method[i];
    char *ml = lower(m->name);
    if (reads_first_message(m)) {
      char *in = c_type_name(m->input_type);
      buf_printf(h,
                 "  void (*%s)(rt_call_t *call, const %s *req, void *data);\n",
                 ml, in);
      free(in);
    } else {
      buf_printf(h, "  void (*%s)(rt_call_t *call, void *data);\n", ml);
    }
    free(ml);
  }
  buf_printf(h, "} %s_handlers_t;\n\n", n->prefix);

  buf_printf(h,
             "/* Registers %s on `srv` before rt_server_start. `h` and `data`\n"
             " * must outlive the server. Returns 0 or a negative UV_E* code. "
             "*/\n",
             n->full);
  buf_printf(h,
             "int %s_register(rt_server_t *srv, const %s_handlers_t *h,\n"
             "    void *data);\n\n",
             n->prefix, n->prefix);

  for (size_t i = 0; i < svc->n_method; i++) {
    const method_t *m = svc->method[i];
    if (!reads_first_message(m))
      continue;
    char *ml = lower(m->name);
    char *in = c_type_name(m->input_type);
    char *out = c_type_name(m->output_type);
    buf_printf(h,
               "/* Calls %s/%s (see rt_client_call_start); on_msg receives\n"
               " * each %s as a ProtobufCMessage. */\n",
               n->full, m->name, out);
    buf_printf(h,
               "int %s_%s(rt_channel_t *ch, const %s *req,\n"
               "    const rt_call_opts_t *opts, rt_client_msg_cb on_msg,\n"
               "    rt_client_done_cb on_done, void *data, "
               "rt_client_call_t **out);\n\n",
               n->prefix, ml, in);
    free(ml);
    free(in);
    free(out);
  }
}

static void gen_source_service(buf_t *c, const names_t *n) {
  const svc_t *svc = n->svc;
  buf_printf(c, "/* ---- service %s */\n\n", n->full);
  buf_printf(c, "const rt_method_t %s_methods[%zu] = {\n", n->prefix,
             svc->n_method);
  for (size_t i = 0; i < svc->n_method; i++) {
    const method_t *m = svc->method[i];
    char *in = c_lower_name(m->input_type);
    char *out = c_lower_name(m->output_type);
    buf_printf(c,
               "  {\"/%s/%s\", \"%s\", %s,\n"
               "   &%s__descriptor,\n"
               "   &%s__descriptor},\n",
               n->full, m->name, m->name, method_kind(m), in, out);
    free(in);
    free(out);
  }
  buf_printf(c, "};\n\n");

  buf_printf(c,
             "static void %s_dispatch(rt_call_t *call, const ProtobufCMessage "
             "*req,\n"
             "    const void *impl, size_t method_index, void *data) {\n"
             "  const %s_handlers_t *h = impl;\n"
             "  switch (method_index) {\n",
             n->prefix, n->prefix);
  for (size_t i = 0; i < svc->n_method; i++) {
    const method_t *m = svc->method[i];
    char *ml = lower(m->name);
    char *mU = upper(ml);
    buf_printf(c, "  case %s_%s:\n    if (h->%s != NULL) {\n", n->upper, mU,
               ml);
    if (reads_first_message(m)) {
      char *in = c_type_name(m->input_type);
      buf_printf(c, "      h->%s(call, (const %s *)req, data);\n", ml, in);
      free(in);
    } else {
      buf_printf(c, "      h->%s(call, data);\n", ml);
    }
    buf_printf(c, "      return;\n    }\n    break;\n");
    free(ml);
    free(mU);
  }
  buf_printf(c, "  default:\n    break;\n  }\n"
                "  (void)req;\n"
                "  rt_call_fail(call, GRPC_STATUS_UNIMPLEMENTED,\n"
                "               \"method %%s is not implemented\",\n"
                "               rt_call_method(call)->path);\n}\n\n");

  buf_printf(c,
             "const rt_service_t %s_service = {\"%s\", %zu, %s_methods,\n"
             "                                 %s_dispatch};\n\n",
             n->prefix, n->full, svc->n_method, n->prefix, n->prefix);

  buf_printf(c,
             "int %s_register(rt_server_t *srv, const %s_handlers_t *h,\n"
             "    void *data) {\n"
             "  return rt_server_add_service(srv, &%s_service, h, data);\n"
             "}\n\n",
             n->prefix, n->prefix, n->prefix);

  for (size_t i = 0; i < svc->n_method; i++) {
    const method_t *m = svc->method[i];
    if (!reads_first_message(m))
      continue;
    char *ml = lower(m->name);
    char *mU = upper(ml);
    char *in = c_type_name(m->input_type);
    buf_printf(c,
               "int %s_%s(rt_channel_t *ch, const %s *req,\n"
               "    const rt_call_opts_t *opts, rt_client_msg_cb on_msg,\n"
               "    rt_client_done_cb on_done, void *data, "
               "rt_client_call_t **out) {\n"
               "  return rt_client_call_start(ch, &%s_methods[%s_%s],\n"
               "      req != NULL ? &req->base : NULL, opts, on_msg, on_done, "
               "data, out);\n"
               "}\n\n",
               n->prefix, ml, in, n->prefix, n->upper, mU);
    free(ml);
    free(mU);
    free(in);
  }
}

static Google__Protobuf__Compiler__CodeGeneratorResponse__File *
new_out_file(const char *name, char *content) {
  Google__Protobuf__Compiler__CodeGeneratorResponse__File *f =
      malloc(sizeof(*f));
  if (f == NULL)
    die("out of memory");
  google__protobuf__compiler__code_generator_response__file__init(f);
  f->name = strdup(name);
  if (f->name == NULL)
    die("out of memory");
  f->content = content;
  return f;
}

static const file_t *
find_file(const Google__Protobuf__Compiler__CodeGeneratorRequest *req,
          const char *name) {
  for (size_t i = 0; i < req->n_proto_file; i++)
    if (strcmp(req->proto_file[i]->name, name) == 0)
      return req->proto_file[i];
  return NULL;
}

/* Returns a message if a method's lower_snake name would collide with a
 * name generated for its service, NULL if all is well. */
static char *check_names(const file_t *f) {
  static const char *const reserved[] = {
      "register", "service", "methods", "dispatch", "handlers_t", "handlers_s"};
  for (size_t i = 0; i < f->n_service; i++) {
    const svc_t *svc = f->service[i];
    for (size_t j = 0; j < svc->n_method; j++) {
      char *ml = lower(svc->method[j]->name);
      for (size_t k = 0; k < sizeof(reserved) / sizeof(reserved[0]); k++) {
        if (strcmp(ml, reserved[k]) == 0) {
          buf_t b = {0};
          buf_printf(&b, "%s: method %s.%s collides with a generated name",
                     f->name, svc->name, svc->method[j]->name);
          free(ml);
          return buf_take(&b);
        }
      }
      free(ml);
    }
  }
  return NULL;
}

/* Appends <stem>.smaug.h and .smaug.c for `f` to `out` (room for two). */
static size_t
gen_file(const file_t *f,
         Google__Protobuf__Compiler__CodeGeneratorResponse__File **out) {
  if (f->n_service == 0)
    return 0;
  char *stem = file_stem(f->name);
  char *guard = guard_name(stem);
  buf_t h = {0}, c = {0};
  names_t *names = calloc(f->n_service, sizeof(*names));
  if (names == NULL)
    die("out of memory");
  for (size_t i = 0; i < f->n_service; i++)
    names_init(&names[i], f, f->service[i]);

  buf_printf(&h,
             "/* %s.smaug.h - generated by protoc-gen-smaug from %s.\n"
             " * Typed services for the smaug RPC runtime. Do not edit. */\n"
             "#ifndef %s\n#define %s\n\n"
             "#include \"%s.pb-c.h\"\n#include \"rt.h\"\n\n"
             "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n",
             stem, f->name, guard, guard, stem);
  for (size_t i = 0; i < f->n_service; i++)
    gen_header_service(&h, &names[i]);
  buf_printf(&h, "#ifdef __cplusplus\n}\n#endif\n#endif /* %s */\n", guard);

  buf_printf(&c,
             "/* %s.smaug.c - generated by protoc-gen-smaug from %s.\n"
             " * Do not edit. */\n"
             "#include \"%s.smaug.h\"\n\n",
             stem, f->name, stem);
  for (size_t i = 0; i < f->n_service; i++)
    gen_source_service(&c, &names[i]);

  buf_t name = {0};
  buf_printf(&name, "%s.smaug.h", stem);
  out[0] = new_out_file(name.p, buf_take(&h));
  free(name.p);
  memset(&name, 0, sizeof(name));
  buf_printf(&name, "%s.smaug.c", stem);
  out[1] = new_out_file(name.p, buf_take(&c));
  free(name.p);

  for (size_t i = 0; i < f->n_service; i++)
    names_free(&names[i]);
  free(names);
  free(guard);
  free(stem);
  return 2;
}

static unsigned char *read_all(FILE *in, size_t *len) {
  size_t cap = 65536, n = 0;
  unsigned char *p = malloc(cap);
  if (p == NULL)
    die("out of memory");
  for (;;) {
    if (n == cap) {
      cap *= 2;
      unsigned char *q = realloc(p, cap);
      if (q == NULL)
        die("out of memory");
      p = q;
    }
    size_t r = fread(p + n, 1, cap - n, in);
    n += r;
    if (r == 0) {
      if (ferror(in))
        die("cannot read the request");
      break;
    }
  }
  *len = n;
  return p;
}

int main(void) {
  size_t len;
  unsigned char *raw = read_all(stdin, &len);
  Google__Protobuf__Compiler__CodeGeneratorRequest *req =
      google__protobuf__compiler__code_generator_request__unpack(NULL, len,
                                                                 raw);
  free(raw);
  if (req == NULL)
    die("malformed CodeGeneratorRequest");

  Google__Protobuf__Compiler__CodeGeneratorResponse resp =
      GOOGLE__PROTOBUF__COMPILER__CODE_GENERATOR_RESPONSE__INIT;
  resp.has_supported_features = 1;
  resp.supported_features =
      GOOGLE__PROTOBUF__COMPILER__CODE_GENERATOR_RESPONSE__FEATURE__FEATURE_PROTO3_OPTIONAL;
  resp.file = calloc(2 * req->n_file_to_generate + 1, sizeof(*resp.file));
  if (resp.file == NULL)
    die("out of memory");
  for (size_t i = 0; i < req->n_file_to_generate; i++) {
    const file_t *f = find_file(req, req->file_to_generate[i]);
    if (f == NULL)
      die("file to generate is missing from the request");
    resp.error = check_names(f);
    if (resp.error != NULL)
      break;
    resp.n_file += gen_file(f, resp.file + resp.n_file);
  }

  size_t out_len =
      google__protobuf__compiler__code_generator_response__get_packed_size(
          &resp);
  unsigned char *out = malloc(out_len ? out_len : 1);
  if (out == NULL)
    die("out of memory");
  google__protobuf__compiler__code_generator_response__pack(&resp, out);
  if (fwrite(out, 1, out_len, stdout) != out_len || fflush(stdout) != 0)
    die("cannot write the response");

  free(out);
  for (size_t i = 0; i < resp.n_file; i++) {
    free(resp.file[i]->name);
    free(resp.file[i]->content);
    free(resp.file[i]);
  }
  free(resp.file);
  free(resp.error);
  google__protobuf__compiler__code_generator_request__free_unpacked(req, NULL);
  return 0;
}
