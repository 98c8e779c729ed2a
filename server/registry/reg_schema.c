/*
 * reg_schema.c - JSON Schema subset validation of string-map parameters
 * (see reg_schema.h). Values are converted by their declared type into a
 * jansson object, which is then walked against the schema.
 */
#include "reg_schema.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

struct reg_schema_s {
  json_t *root;
};

int reg_schema_parse(const char *text, reg_schema_t **out, char *err,
                     size_t errlen) {
  if (text == NULL || *text == '\0') {
    *out = NULL;
    return 0;
  }
  json_error_t je;
  json_t *root = json_loads(text, 0, &je);
  if (root == NULL || !json_is_object(root)) {
    if (err && errlen)
      snprintf(err, errlen, "schema is not a JSON object%s%s", root ? "" : ": ",
               root ? "" : je.text);
    json_decref(root);
    return UV_EINVAL;
  }
  reg_schema_t *s = malloc(sizeof(*s));
  if (s == NULL) {
    json_decref(root);
    return UV_ENOMEM;
  }
  s->root = root;
  *out = s;
  return 0;
}

void reg_schema_free(reg_schema_t *s) {
  if (s == NULL)
    return;
  json_decref(s->root);
  free(s);
}

static const char *type_of(const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_OBJECT:
    return "object";
  case JSON_ARRAY:
    return "array";
  case JSON_STRING:
    return "string";
  case JSON_INTEGER:
    return "integer";
  case JSON_REAL:
    return "number";
  case JSON_TRUE:
  case JSON_FALSE:
    return "boolean";
  default:
    return "null";
  }
}

static int type_matches(const char *want, const json_t *v) {
  const char *have = type_of(v);
  if (strcmp(want, have) == 0)
    return 1;
  if (strcmp(want, "number") == 0 && json_is_integer(v))
    return 1;
  /* 3.0 is an integer in JSON Schema. */
  if (strcmp(want, "integer") == 0 && json_is_real(v)) {
    double d = json_real_value(v);
    return d == floor(d);
  }
  return 0;
}

static size_t utf8_len(const char *s) {
  size_t n = 0;
  for (; *s; s++)
    if (((unsigned char)*s & 0xc0) != 0x80)
      n++;
  return n;
}

static int fail(char *err, size_t errlen, const char *path, const char *fmt,
                const char *arg) {
  if (err && errlen) {
    int k = snprintf(err, errlen, "%s: ", path);
    if (k >= 0 && (size_t)k < errlen)
      snprintf(err + k, errlen - (size_t)k, fmt, arg);
  }
  return UV_EINVAL;
}

static int check(const json_t *schema, const json_t *v, const char *path,
                 int check_required, char *err, size_t errlen);

static int check_type(const json_t *schema, const json_t *v, const char *path,
                      char *err, size_t errlen) {
  const json_t *t = json_object_get(schema, "type");
  if (t == NULL)
    return 0;
  if (json_is_string(t)) {
    if (!type_matches(json_string_value(t), v))
      return fail(err, errlen, path, "must be of type %s",
                  json_string_value(t));
    return 0;
  }
  if (json_is_array(t)) {
    size_t i;
    json_t *e;
    json_array_foreach(t, i, e) {
      if (json_is_string(e) && type_matches(json_string_value(e), v))
        return 0;
    }
    return fail(err, errlen, path, "has the wrong type (%s)", type_of(v));
  }
  return 0;
}

static int check_number(const json_t *schema, const json_t *v, const char *path,
                        char *err, size_t errlen) {
  if (!json_is_number(v))
    return 0;
  double d = json_number_value(v);
  const json_t *k;
  char buf[64];
  if ((k = json_object_get(schema, "minimum")) && json_is_number(k) &&
      d < json_number_value(k)) {
    snprintf(buf, sizeof(buf), "%g", json_number_value(k));
    return fail(err, errlen, path, "must be at least %s", buf);
  }
  if ((k = json_object_get(schema, "maximum")) && json_is_number(k) &&
      d > json_number_value(k)) {
    snprintf(buf, sizeof(buf), "%g", json_number_value(k));
    return fail(err, errlen, path, "must be at most %s", buf);
  }
  if ((k = json_object_get(schema, "exclusiveMinimum")) && json_is_number(k) &&
      d <= json_number_value(k)) {
    snprintf(buf, sizeof(buf), "%g", json_number_value(k));
    return fail(err, errlen, path, "must be greater than %s", buf);
  }
  if ((k = json_object_get(schema, "exclusiveMaximum")) && json_is_number(k) &&
      d >= json_number_value(k)) {
    snprintf(buf, sizeof(buf), "%g", json_number_value(k));
    return fail(err, errlen, path, "must be less than %s", buf);
  }
  return 0;
}

static int check_string(const json_t *schema, const json_t *v, const char *path,
                        char *err, size_t errlen) {
  if (!json_is_string(v))
    return 0;
  size_t n = utf8_len(json_string_value(v));
  const json_t *k;
  char buf[32];
  if ((k = json_object_get(schema, "minLength")) && json_is_integer(k) &&
      (json_int_t)n < json_integer_value(k)) {
    snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(k));
    return fail(err, errlen, path, "must be at least %s characters long", buf);
  }
  if ((k = json_object_get(schema, "maxLength")) && json_is_integer(k) &&
      (json_int_t)n > json_integer_value(k)) {
    snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(k));
    return fail(err, errlen, path, "must be at most %s characters long", buf);
  }
  return 0;
}

static int check_object(const json_t *schema, const json_t *v, const char *path,
                        int check_required, char *err, size_t errlen) {
  if (!json_is_object(v))
    return 0;
  const json_t *props = json_object_get(schema, "properties");
  const json_t *addl = json_object_get(schema, "additionalProperties");
  const json_t *req = json_object_get(schema, "required");
  char sub[512];
  const char *key;
  json_t *val;
  int rc;
  json_object_foreach((json_t *)v, key, val) {
    snprintf(sub, sizeof(sub), "%s.%s", path, key);
    const json_t *ps = props ? json_object_get(props, key) : NULL;
    if (ps != NULL) {
      if ((rc = check(ps, val, sub, 1, err, errlen)) != 0)
        return rc;
    } else if (json_is_false(addl)) {
      return fail(err, errlen, sub, "is not an allowed parameter%s", "");
    } else if (json_is_object(addl)) {
      if ((rc = check(addl, val, sub, 1, err, errlen)) != 0)
        return rc;
    }
  }
  if (check_required && json_is_array(req)) {
    size_t i;
    json_t *e;
    json_array_foreach(req, i, e) {
      if (json_is_string(e) && !json_object_get(v, json_string_value(e))) {
        snprintf(sub, sizeof(sub), "%s.%s", path, json_string_value(e));
        return fail(err, errlen, sub, "is required%s", "");
      }
    }
  }
  return 0;
}

static int check(const json_t *schema, const json_t *v, const char *path,
                 int check_required, char *err, size_t errlen) {
  if (!json_is_object(schema))
    return 0; /* `true` or malformed: accept */
  int rc;
  if ((rc = check_type(schema, v, path, err, errlen)) != 0)
    return rc;
  const json_t *en = json_object_get(schema, "enum");
  if (json_is_array(en)) {
    size_t i;
    json_t *e;
    int found = 0;
    json_array_foreach(en, i, e) {
      if (json_equal(e, (json_t *)v) ||
          (json_is_number(e) && json_is_number(v) &&
           json_number_value(e) == json_number_value(v)))
        found = 1;
    }
    if (!found)
      return fail(err, errlen, path, "is not one of the allowed values%s", "");
  }
  if ((rc = check_number(schema, v, path, err, errlen)) != 0 ||
      (rc = check_string(schema, v, path, err, errlen)) != 0 ||
      (rc = check_object(schema, v, path, check_required, err, errlen)) != 0)
    return rc;
  return 0;
}

/* The declared type of property `key`, or NULL (kept as a string). With a
 * type list, the first non-string type wins, so "5" becomes 5 for
 * ["integer","string"]. */
static const char *declared_type(const json_t *schema, const char *key) {
  const json_t *props = json_object_get(schema, "properties");
  const json_t *ps = props ? json_object_get(props, key) : NULL;
  if (ps == NULL)
    ps = json_object_get(schema, "additionalProperties");
  const json_t *t = json_is_object(ps) ? json_object_get(ps, "type") : NULL;
  if (json_is_string(t))
    return json_string_value(t);
  if (json_is_array(t)) {
    size_t i;
    json_t *e;
    json_array_foreach(t, i, e) {
      if (json_is_string(e) && strcmp(json_string_value(e), "string") != 0)
        return json_string_value(e);
    }
  }
  return NULL;
}

/* Converts `s` to the JSON value of `type`; NULL when it does not parse.
 * Numbers are JSON numbers: no leading space or '+', no hexadecimal, which
 * strtoll and strtod would take but a plugin's parser may not. */
static json_t *convert(const char *type, const char *s) {
  if (type == NULL || strcmp(type, "string") == 0)
    return json_string(s);
  if ((strcmp(type, "integer") == 0 || strcmp(type, "number") == 0) &&
      (!isdigit((unsigned char)(s[0] == '-' ? s[1] : s[0])) ||
       strpbrk(s, "xX") != NULL))
    return NULL;
  if (strcmp(type, "integer") == 0) {
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno)
      return NULL;
    return json_integer(n);
  }
  if (strcmp(type, "number") == 0) {
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || errno || !isfinite(d))
      return NULL;
    return json_real(d);
  }
  if (strcmp(type, "boolean") == 0) {
    if (strcmp(s, "true") == 0)
      return json_true();
    if (strcmp(s, "false") == 0)
      return json_false();
    return NULL;
  }
  if (strcmp(type, "null") == 0)
    return strcmp(s, "null") == 0 ? json_null() : NULL;
  /* object, array: JSON text */
  return json_loads(s, JSON_DECODE_ANY, NULL);
}

int reg_schema_check(const reg_schema_t *s, const char *prefix,
                     const char *const *keys, const char *const *vals, size_t n,
                     int check_required, char *err, size_t errlen) {
  if (s == NULL)
    return 0;
  if (prefix == NULL)
    prefix = "parameters";
  json_t *obj = json_object();
  if (obj == NULL)
    return UV_ENOMEM;
  int rc = 0;
  char path[512];
  for (size_t i = 0; i < n && rc == 0; i++) {
    const char *type = declared_type(s->root, keys[i]);
    json_t *v = convert(type, vals[i]);
    if (v == NULL) {
      snprintf(path, sizeof(path), "%s.%s", prefix, keys[i]);
      rc = fail(err, errlen, path, "must be of type %s", type);
      break;
    }
    /* jansson refuses a key that is not UTF-8 (it has taken `v`). */
    if (json_object_set_new(obj, keys[i], v) != 0)
      rc = fail(err, errlen, prefix, "has a parameter name that is not %s",
                "valid UTF-8");
  }
  if (rc == 0)
    rc = check(s->root, obj, prefix, check_required, err, errlen);
  json_decref(obj);
  return rc;
}
