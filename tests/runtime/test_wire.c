/*
 * test_wire.c - the string check on serialized messages (rt_wire.h):
 * the UTF-8 rules one by one, field paths through sub-messages, repeated
 * fields, map entries and oneofs, the fields it must leave alone (bytes,
 * unknown), malformed input, nesting limits and truncated reasons.
 *
 * Messages are written byte by byte with the helpers below, since
 * protobuf-c cannot pack a string with a NUL in it.
 */
#include <criterion/criterion.h>
#include <string.h>
#include <uv.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "rt_wire.h"
#include "smaug/v1/orchestrator.pb-c.h"
#include "smaug/v1/plugin.pb-c.h"
#include "testsvc.pb-c.h"

/* ------------------------------------------------------------- writer */

typedef struct {
  uint8_t b[8192];
  size_t n;
} buf_t;

static void put_varint(buf_t *w, uint64_t v) {
  do {
    cr_assert_lt(w->n, sizeof(w->b));
    uint8_t byte = v & 0x7f;
    v >>= 7;
    w->b[w->n++] = byte | (v ? 0x80 : 0);
  } while (v);
}

static void put_bytes(buf_t *w, const void *p, size_t n) {
  cr_assert_leq(w->n + n, sizeof(w->b));
  memcpy(w->b + w->n, p, n);
  w->n += n;
}

/* A length-delimited field: tag, length, body. */
static void put_len(buf_t *w, uint32_t field, const void *p, size_t n) {
  put_varint(w, (uint64_t)field << 3 | 2);
  put_varint(w, n);
  put_bytes(w, p, n);
}

static void put_msg(buf_t *w, uint32_t field, const buf_t *sub) {
  put_len(w, field, sub->b, sub->n);
}

static void put_int(buf_t *w, uint32_t field, uint64_t v) {
  put_varint(w, (uint64_t)field << 3);
  put_varint(w, v);
}

static int check(const ProtobufCMessageDescriptor *d, const buf_t *w, char *why,
                 size_t len) {
  return rt_wire_check(d, w->b, w->n, why, len);
}

/* A Resource {type, id} as bytes. */
static void resource(buf_t *r, const char *type, const void *id,
                     size_t id_len) {
  memset(r, 0, sizeof(*r));
  put_len(r, 1, type, strlen(type));
  put_len(r, 2, id, id_len);
}

/* ----------------------------------------------------------- UTF-8 */

typedef struct {
  const char *s;
  size_t n;
  size_t bad_at;
} utf8_case_t;

#define U(lit, at)                                                             \
  { lit, sizeof(lit) - 1, at }

Test(wire, utf8_accepts_well_formed) {
  static const utf8_case_t good[] = {
      U("", 0),
      U("plain ascii ~\x7f", 0),
      U("\xc2\x80", 0),         /* U+0080, smallest 2 bytes */
      U("\xdf\xbf", 0),         /* U+07FF */
      U("\xe0\xa0\x80", 0),     /* U+0800, smallest 3 bytes */
      U("\xed\x9f\xbf", 0),     /* U+D7FF, below the surrogates */
      U("\xee\x80\x80", 0),     /* U+E000, above them */
      U("\xef\xbf\xbf", 0),     /* U+FFFF */
      U("\xf0\x90\x80\x80", 0), /* U+10000, smallest 4 bytes */
      U("\xf4\x8f\xbf\xbf", 0), /* U+10FFFF, the largest */
      U("d\xc3\xa9j\xc3\xa0 vu \xe2\x82\xac \xf0\x9f\x90\x89", 0),
  };
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
    cr_assert_eq(
        rt_utf8_check((const uint8_t *)good[i].s, good[i].n, NULL, NULL), 0,
        "case %zu", i);
  cr_assert_eq(rt_utf8_check(NULL, 0, NULL, NULL), 0);
}

Test(wire, utf8_refuses_each_bad_form) {
  static const utf8_case_t bad[] = {
      U("\x80", 0),              /* lone continuation byte */
      U("ab\xbf", 2),            /* continuation after ASCII */
      U("\xc0\xaf", 0),          /* overlong '/' */
      U("\xc0\x80", 0),          /* overlong NUL */
      U("\xc1\xbf", 0),          /* overlong U+007F */
      U("\xe0\x80\xaf", 0),      /* overlong 3 bytes */
      U("\xe0\x9f\xbf", 0),      /* overlong U+07FF */
      U("\xed\xa0\x80", 0),      /* U+D800, a surrogate */
      U("\xed\xbf\xbf", 0),      /* U+DFFF */
      U("\xf0\x80\x80\xaf", 0),  /* overlong 4 bytes */
      U("\xf0\x8f\xbf\xbf", 0),  /* overlong U+FFFF */
      U("\xf4\x90\x80\x80", 0),  /* U+110000 */
      U("\xf5\x80\x80\x80", 0),  /* lead byte past F4 */
      U("\xff", 0),              /* never valid */
      U("\xfe", 0),              /* never valid */
      U("ok\xe2\x82", 2),        /* truncated at the end */
      U("ok\xf0\x9f\x90", 2),    /* truncated 4-byte form */
      U("x\xe2\x28\xa1", 1),     /* bad second byte */
      U("x\xe2\x82\x28", 1),     /* bad third byte */
      U("x\xf0\x9f\x90\x28", 1), /* bad fourth byte */
      U("\xc3\xa9\xc3", 2),      /* good, then truncated */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    size_t at = 99;
    int nul = 7;
    cr_assert_eq(rt_utf8_check((const uint8_t *)bad[i].s, bad[i].n, &at, &nul),
                 UV_EILSEQ, "case %zu", i);
    cr_assert_eq(at, bad[i].bad_at, "case %zu: at %zu", i, at);
    cr_assert_eq(nul, 0, "case %zu", i);
  }
}

Test(wire, utf8_refuses_nul_anywhere) {
  size_t at;
  int nul;
  cr_assert_eq(rt_utf8_check((const uint8_t *)"\0", 1, &at, &nul), UV_EILSEQ);
  cr_assert_eq(at, 0);
  cr_assert_eq(nul, 1);
  cr_assert_eq(rt_utf8_check((const uint8_t *)"a\xc3\xa9\0b", 5, &at, &nul),
               UV_EILSEQ);
  cr_assert_eq(at, 3);
  cr_assert_eq(nul, 1);
}

/* ------------------------------------------------------------- walks */

Test(wire, clean_message_packed_by_protobuf_c_passes) {
  Smaug__V1__Resource r = SMAUG__V1__RESOURCE__INIT;
  r.type = "smaug.volume";
  r.id = "vol-\xc3\xa9t\xc3\xa9";
  Smaug__V1__Resource *rs[] = {&r, &r};
  Smaug__V1__Plan plan = SMAUG__V1__PLAN__INIT;
  plan.name = "nightly \xf0\x9f\x90\x89";
  plan.n_resources = 2;
  plan.resources = rs;
  Smaug__V1__CreatePlanRequest req = SMAUG__V1__CREATE_PLAN_REQUEST__INIT;
  req.plan = &plan;
  buf_t w = {.n = protobuf_c_message_get_packed_size(&req.base)};
  cr_assert_leq(w.n, sizeof(w.b));
  protobuf_c_message_pack(&req.base, w.b);
  char why[128] = "untouched";
  cr_assert_eq(
      check(&smaug__v1__create_plan_request__descriptor, &w, why, sizeof(why)),
      0);
  cr_assert_str_eq(why, "");
}

Test(wire, empty_message_passes) {
  char why[64];
  cr_assert_eq(rt_wire_check(&smaug__v1__create_plan_request__descriptor, NULL,
                             0, why, sizeof(why)),
               0);
}

static void plan_with_name(buf_t *w, const void *name, size_t n) {
  buf_t plan = {0};
  put_len(&plan, 2, name, n);
  memset(w, 0, sizeof(*w));
  put_msg(w, 1, &plan);
}

Test(wire, a_bad_nested_string_names_the_field) {
  static const struct {
    const char *name;
    size_t n;
    const char *why;
  } cases[] = {
      {"a\0b", 3, "plan.name: embedded NUL at byte 1"},
      {"\xc0\xaf", 2, "plan.name: invalid UTF-8 at byte 0"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    buf_t w;
    plan_with_name(&w, cases[i].name, cases[i].n);
    char why[128];
    cr_assert_eq(check(&smaug__v1__create_plan_request__descriptor, &w, why,
                       sizeof(why)),
                 UV_EILSEQ);
    cr_assert_str_eq(why, cases[i].why);
  }
}

Test(wire, repeated_fields_are_indexed) {
  buf_t r0, r1, r2, plan = {0}, w = {0};
  resource(&r0, "t", "a", 1);
  resource(&r1, "t", "b", 1);
  resource(&r2, "t", "x\xed\xa0\x80", 4);
  put_msg(&plan, 3, &r0);
  put_len(&plan, 2, "name", 4); /* another field between the elements */
  put_msg(&plan, 3, &r1);
  put_msg(&plan, 3, &r2);
  put_msg(&w, 1, &plan);
  char why[128];
  cr_assert_eq(
      check(&smaug__v1__create_plan_request__descriptor, &w, why, sizeof(why)),
      UV_EILSEQ);
  cr_assert_str_eq(why, "plan.resources[2].id: invalid UTF-8 at byte 1");
}

Test(wire, map_keys_and_values_are_checked) {
  /* Resource.extra is map<string, string>: entries {1: key, 2: value}. */
  buf_t e0 = {0}, e1 = {0}, r, w = {0};
  put_len(&e0, 1, "path", 4);
  put_len(&e0, 2, "/ok", 3);
  put_len(&e1, 1, "k", 1);
  put_len(&e1, 2, "v\0", 2);
  resource(&r, "t", "id", 2);
  put_msg(&r, 4, &e0);
  put_msg(&r, 4, &e1);
  buf_t plan = {0};
  put_msg(&plan, 3, &r);
  put_msg(&w, 1, &plan);
  char why[128];
  cr_assert_eq(
      check(&smaug__v1__create_plan_request__descriptor, &w, why, sizeof(why)),
      UV_EILSEQ);
  cr_assert_str_eq(why,
                   "plan.resources[0].extra[1].value: embedded NUL at byte 1");

  /* A bad key. */
  buf_t e2 = {0};
  put_len(&e2, 1, "\xf5", 1);
  resource(&r, "t", "id", 2);
  put_msg(&r, 4, &e2);
  memset(&plan, 0, sizeof(plan));
  put_msg(&plan, 3, &r);
  memset(&w, 0, sizeof(w));
  put_msg(&w, 1, &plan);
  cr_assert_eq(
      check(&smaug__v1__create_plan_request__descriptor, &w, why, sizeof(why)),
      UV_EILSEQ);
  cr_assert_str_eq(why, "plan.resources[0].extra[0].key: invalid UTF-8 at "
                        "byte 0");
}

Test(wire, a_plugin_result_in_a_oneof) {
  /* SyncActivityResponse { result = 2: SyncResult { metadata = 1 } } */
  buf_t entry = {0}, result = {0}, w = {0};
  put_len(&entry, 1, "size", 4);
  put_len(&entry, 2, "12\xc3", 3);
  put_msg(&result, 1, &entry);
  put_len(&result, 3, "done", 4);
  put_msg(&w, 2, &result);
  char why[128];
  cr_assert_eq(check(&smaug__v1__sync_activity_response__descriptor, &w, why,
                     sizeof(why)),
               UV_EILSEQ);
  cr_assert_str_eq(why, "result.metadata[0].value: invalid UTF-8 at byte 2");
}

Test(wire, bytes_and_unknown_fields_are_left_alone) {
  buf_t w = {0};
  put_len(&w, 1, "fine", 4);
  put_len(&w, 3, "\0\xff\xc0", 3);  /* blob: bytes */
  put_int(&w, 4, 12);               /* reply_bytes: varint */
  put_len(&w, 99, "\0\xc0\xaf", 3); /* unknown */
  uint8_t fixed[] = {(7 << 3) | 1, 1, 2, 3, 4, 5, 6, 7, 8,
                     (8 << 3) | 5, 1, 2, 3, 4};
  put_bytes(&w, fixed, sizeof(fixed)); /* unknown fixed64 and fixed32 */
  char why[64];
  cr_assert_eq(check(&rttest__echo_request__descriptor, &w, why, sizeof(why)),
               0);
  cr_assert_str_eq(why, "");
}

Test(wire, malformed_input_is_refused_without_reading_past_the_end) {
  static const struct {
    uint8_t b[8];
    size_t n;
  } bad[] = {
      {{0x0a, 0x05, 'a'}, 3},  /* length past the end */
      {{0x0a}, 1},             /* tag without its length */
      {{0x08}, 1},             /* varint key without value */
      {{0x08, 0x80, 0x80}, 3}, /* unterminated varint */
      {{0x0b, 0x0c}, 2},       /* group start and end */
      {{0x0e, 0x00}, 2},       /* wire type 6 */
      {{0x0f, 0x00}, 2},       /* wire type 7 */
      {{0x02, 0x00}, 2},       /* field number 0 */
      {{0x39, 1, 2, 3}, 4},    /* fixed64 cut short */
      {{0x3d, 1, 2}, 3},       /* fixed32 cut short */
      {{0xf8, 0xff, 0xff, 0xff, 0xff, 0x0f, 0}, 7}, /* number too large */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char why[64];
    cr_assert_eq(rt_wire_check(&rttest__echo_request__descriptor, bad[i].b,
                               bad[i].n, why, sizeof(why)),
                 UV_EINVAL, "case %zu", i);
    cr_assert_str_eq(why, "malformed rttest.EchoRequest", "case %zu", i);
  }
  /* The same inside a sub-message. */
  buf_t w = {0};
  uint8_t junk[] = {0x12, 0x09, 'x'};
  put_len(&w, 1, junk, sizeof(junk));
  char why[64];
  cr_assert_eq(
      check(&smaug__v1__create_plan_request__descriptor, &w, why, sizeof(why)),
      UV_EINVAL);
  cr_assert_str_eq(why, "malformed smaug.v1.CreatePlanRequest");
}

/* DescriptorProto.nested_type (3) is a DescriptorProto: `depth` levels of
 * nesting, the innermost with `name` (1). */
static void nested(buf_t *w, int depth, const void *name, size_t n) {
  static buf_t a, b;
  memset(&a, 0, sizeof(a));
  put_len(&a, 1, name, n);
  for (int i = 0; i < depth; i++) {
    memset(&b, 0, sizeof(b));
    put_msg(&b, 3, &a);
    a = b;
  }
  *w = a;
}

Test(wire, deep_paths_and_the_depth_limit) {
  static buf_t w;
  char why[512];
  nested(&w, 3, "ok", 2);
  cr_assert_eq(
      check(&google__protobuf__descriptor_proto__descriptor, &w, why, 512), 0);
  nested(&w, 3, "\0", 1);
  cr_assert_eq(
      check(&google__protobuf__descriptor_proto__descriptor, &w, why, 512),
      UV_EILSEQ);
  cr_assert_str_eq(why, "nested_type[0].nested_type[0].nested_type[0].name: "
                        "embedded NUL at byte 0");

  nested(&w, RT_WIRE_MAX_DEPTH, "ok", 2);
  cr_assert_eq(
      check(&google__protobuf__descriptor_proto__descriptor, &w, why, 512), 0);
  nested(&w, RT_WIRE_MAX_DEPTH + 1, "ok", 2);
  cr_assert_eq(
      check(&google__protobuf__descriptor_proto__descriptor, &w, why, 512),
      UV_EINVAL);
  cr_assert_str_eq(why, "malformed google.protobuf.DescriptorProto");
}

Test(wire, a_long_reason_is_truncated_and_terminated) {
  static buf_t w;
  nested(&w, 60, "\0", 1);
  char why[40];
  memset(why, 'Z', sizeof(why));
  cr_assert_eq(check(&google__protobuf__descriptor_proto__descriptor, &w, why,
                     sizeof(why)),
               UV_EILSEQ);
  cr_assert_eq(strlen(why), sizeof(why) - 1);
  cr_assert(strncmp(why, "nested_type[0].nested_type[0]", 29) == 0, "%s", why);
  /* No room at all: nothing is written, the answer is the same. */
  cr_assert_eq(rt_wire_check(&google__protobuf__descriptor_proto__descriptor,
                             w.b, w.n, NULL, 0),
               UV_EILSEQ);
}
