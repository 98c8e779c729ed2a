/*
 * rt_wire.c - the string check on serialized messages (see rt_wire.h).
 *
 * The walk reads tags and lengths only: varints and fixed fields are
 * skipped, length-delimited fields are looked up in the descriptor and
 * checked (string) or walked (message). The field path is built only when
 * a string is refused: each level keeps a frame on the stack (its field,
 * where its message starts, where the field's tag is), and the index of a
 * repeated field is found then by counting its earlier occurrences.
 */
#include "rt_wire.h"

#include <stdio.h>
#include <string.h>
#include <uv.h>

int rt_utf8_check(const uint8_t *s, size_t n, size_t *bad_at, int *is_nul) {
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i];
    if (c == 0) {
      if (bad_at != NULL)
        *bad_at = i;
      if (is_nul != NULL)
        *is_nul = 1;
      return UV_EILSEQ;
    }
    if (c < 0x80) {
      i++;
      continue;
    }
    /* Bounds of the second byte, which rule out overlong forms (E0, F0),
     * surrogates (ED) and code points above U+10FFFF (F4). */
    size_t more;
    unsigned lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
      more = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      more = 2;
      if (c == 0xe0)
        lo = 0xa0;
      else if (c == 0xed)
        hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      more = 3;
      if (c == 0xf0)
        lo = 0x90;
      else if (c == 0xf4)
        hi = 0x8f;
    } else {
      more = 0; /* a continuation byte, C0, C1 or F5..FF */
    }
    int ok = more > 0 && n - i > more && s[i + 1] >= lo && s[i + 1] <= hi;
    for (size_t k = 2; ok && k <= more; k++)
      ok = s[i + k] >= 0x80 && s[i + k] <= 0xbf;
    if (!ok) {
      if (bad_at != NULL)
        *bad_at = i;
      if (is_nul != NULL)
        *is_nul = 0;
      return UV_EILSEQ;
    }
    i += more + 1;
  }
  return 0;
}

void rt_utf8_repair(char *s) {
  if (s == NULL)
    return;
  size_t n = strlen(s), off = 0, bad;
  while (off < n &&
         rt_utf8_check((const uint8_t *)s + off, n - off, &bad, NULL) != 0) {
    s[off + bad] = '?';
    off += bad + 1;
  }
}

/* ---------------------------------------------------------------- walk */

/* One level of the walk: the field of the parent that holds this message
 * (NULL at the top), and where to count repeated occurrences from. */
typedef struct frame_s {
  const struct frame_s *parent;
  const ProtobufCFieldDescriptor *field; /* in the parent */
  const uint8_t *parent_start;           /* the parent message's bytes */
  const uint8_t *tag_at;                 /* this field's tag in them */
} frame_t;

/* Reads a varint of at most 10 bytes; 0 on success. */
static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out) {
  uint64_t v = 0;
  for (unsigned shift = 0; shift < 70 && *p < end; shift += 7) {
    uint8_t b = *(*p)++;
    v |= (uint64_t)(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      *out = v;
      return 0;
    }
  }
  return -1;
}

/* Skips the field of wire type `wt` at `*p`; for length-delimited ones,
 * sets `*body` and `*body_len`. 0 on success, -1 if malformed. */
static int skip_field(const uint8_t **p, const uint8_t *end, unsigned wt,
                      const uint8_t **body, size_t *body_len) {
  uint64_t v;
  switch (wt) {
  case 0:
    return read_varint(p, end, &v);
  case 1:
  case 5: {
    size_t n = wt == 1 ? 8 : 4;
    if ((size_t)(end - *p) < n)
      return -1;
    *p += n;
    return 0;
  }
  case 2:
    if (read_varint(p, end, &v) != 0 || v > (uint64_t)(end - *p))
      return -1;
    *body = *p;
    *body_len = (size_t)v;
    *p += v;
    return 0;
  default:
    return -1; /* groups (3, 4) are refused by protobuf-c too; 6, 7 bad */
  }
}

/* Index of the occurrence at `tag_at` of field `number` among the fields
 * of the message starting at `start` (which was already walked whole up to
 * `tag_at`, so it parses). */
static size_t occurrence(const uint8_t *start, const uint8_t *tag_at,
                         uint32_t number) {
  size_t count = 0;
  const uint8_t *p = start;
  while (p < tag_at) {
    uint64_t tag;
    const uint8_t *body;
    size_t body_len;
    if (read_varint(&p, tag_at, &tag) != 0 ||
        skip_field(&p, tag_at, (unsigned)(tag & 7), &body, &body_len) != 0)
      break;
    if ((tag >> 3) == number)
      count++;
  }
  return count;
}

/* Appends printf output to buf at *pos, truncating at `len`. */
static void append(char *buf, size_t len, size_t *pos, const char *fmt,
                   const char *s, size_t i) {
  if (*pos + 1 >= len)
    return;
  int n = snprintf(buf + *pos, len - *pos, fmt, s, i);
  if (n > 0)
    *pos += (size_t)n < len - *pos ? (size_t)n : len - *pos - 1;
}

/* Writes the path of `f` (the field holding a bad string or a message on
 * the way to it) below frame `fr`. */
static void format_path(const frame_t *fr, const ProtobufCFieldDescriptor *f,
                        const uint8_t *start, const uint8_t *tag_at, char *buf,
                        size_t len, size_t *pos) {
  if (fr->field != NULL) {
    format_path(fr->parent, fr->field, fr->parent_start, fr->tag_at, buf, len,
                pos);
    append(buf, len, pos, "%s", ".", 0);
  }
  if (f->label == PROTOBUF_C_LABEL_REPEATED)
    append(buf, len, pos, "%s[%zu]", f->name, occurrence(start, tag_at, f->id));
  else
    append(buf, len, pos, "%s", f->name, 0);
}

typedef struct {
  char *why;
  size_t why_len;
} walk_t;

static int walk(walk_t *w, const ProtobufCMessageDescriptor *d,
                const frame_t *fr, const uint8_t *start, const uint8_t *end,
                int depth) {
  if (depth > RT_WIRE_MAX_DEPTH)
    return UV_EINVAL;
  const uint8_t *p = start;
  while (p < end) {
    const uint8_t *tag_at = p;
    uint64_t tag;
    if (read_varint(&p, end, &tag) != 0)
      return UV_EINVAL;
    uint64_t number = tag >> 3;
    if (number == 0 || number > 0x1fffffff)
      return UV_EINVAL;
    const uint8_t *body = NULL;
    size_t body_len = 0;
    if (skip_field(&p, end, (unsigned)(tag & 7), &body, &body_len) != 0)
      return UV_EINVAL;
    if (body == NULL)
      continue;
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(d, (unsigned)number);
    if (f == NULL)
      continue;
    if (f->type == PROTOBUF_C_TYPE_STRING) {
      size_t bad;
      int nul;
      if (rt_utf8_check(body, body_len, &bad, &nul) == 0)
        continue;
      if (w->why_len > 0) {
        size_t pos = 0;
        w->why[0] = '\0';
        format_path(fr, f, start, tag_at, w->why, w->why_len, &pos);
        append(w->why, w->why_len, &pos,
               nul ? "%s: embedded NUL at byte %zu"
                   : "%s: invalid UTF-8 at byte %zu",
               "", bad);
      }
      return UV_EILSEQ;
    }
    if (f->type == PROTOBUF_C_TYPE_MESSAGE && f->descriptor != NULL) {
      frame_t sub = {fr, f, start, tag_at};
      int err = walk(w, f->descriptor, &sub, body, body + body_len, depth + 1);
      if (err != 0)
        return err;
    }
  }
  return 0;
}

int rt_wire_check(const ProtobufCMessageDescriptor *desc, const uint8_t *data,
                  size_t len, char *why, size_t why_len) {
  if (why_len > 0)
    why[0] = '\0';
  if (desc == NULL || (data == NULL && len > 0))
    return UV_EINVAL;
  if (len == 0)
    return 0; /* the empty message; also keeps NULL + 0 out of the walk */
  walk_t w = {why, why_len};
  frame_t top = {NULL, NULL, NULL, NULL};
  int err = walk(&w, desc, &top, data, data + len, 0);
  if (err == UV_EINVAL && why_len > 0)
    snprintf(why, why_len, "malformed %s", desc->name);
  return err;
}
