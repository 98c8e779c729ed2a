/*
 * cli_plan.c - plan files to Smaug__V1__Plan and back (see cli_plan.h).
 *
 * Parsing builds the message directly, field by field, checking each JSON
 * value's type; every allocation goes through malloc so that a half-built
 * message is released by protobuf_c_message_free_unpacked on any error.
 */
#include "cli_plan.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* Fails with UV_EINVAL and a formatted message. */
static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return UV_EINVAL;
}

static int nomem(char *err, size_t errlen) {
  snprintf(err, errlen, "out of memory");
  return UV_ENOMEM;
}

/* Every key of `obj` must be in the NULL-terminated `allowed`. */
static int check_keys(const json_t *obj, const char *const *allowed,
                      const char *src, const char *where, char *err,
                      size_t errlen) {
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)obj, key, v) {
    const char *const *a = allowed;
    while (*a != NULL && strcmp(*a, key) != 0)
      a++;
    if (*a == NULL)
      return fail(err, errlen, "%s: %s: unknown key \"%s\"", src, where, key);
  }
  return 0;
}

/* Copies the string at `obj[key]` into `*dst` (replacing an empty default).
 * A missing key is an error when `required`. */
static int get_string(const json_t *obj, const char *key, int required,
                      char **dst, const char *src, const char *where, char *err,
                      size_t errlen) {
  json_t *v = json_object_get(obj, key);
  if (v == NULL) {
    if (required)
      return fail(err, errlen, "%s: %s: missing \"%s\"", src, where, key);
    return 0;
  }
  if (!json_is_string(v))
    return fail(err, errlen, "%s: %s.%s: expected a string", src, where, key);
  char *s = strdup(json_string_value(v));
  if (s == NULL)
    return nomem(err, errlen);
  *dst = s;
  return 0;
}

/* Fills a map<string,string> (an array of protobuf-c entries) from a JSON
 * object of strings. `entry_init` initialises one entry. */
typedef struct {
  ProtobufCMessage base;
  char *key;
  char *value;
} str_entry_t;

static int parse_str_map(const json_t *obj, const char *src, const char *where,
                         void (*entry_init)(void *), size_t entry_size,
                         size_t *n_out, void ***arr_out, char *err,
                         size_t errlen) {
  if (!json_is_object(obj))
    return fail(err, errlen, "%s: %s: expected an object", src, where);
  size_t n = json_object_size(obj);
  if (n == 0)
    return 0;
  void **arr = calloc(n, sizeof(*arr));
  if (arr == NULL)
    return nomem(err, errlen);
  *arr_out = arr;
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)obj, key, v) {
    if (!json_is_string(v))
      return fail(err, errlen, "%s: %s.%s: expected a string", src, where, key);
    str_entry_t *e = malloc(entry_size);
    if (e == NULL)
      return nomem(err, errlen);
    entry_init(e);
    arr[(*n_out)++] = e;
    if ((e->key = strdup(key)) == NULL ||
        (e->value = strdup(json_string_value(v))) == NULL)
      return nomem(err, errlen);
  }
  return 0;
}

static void extra_entry_init(void *e) {
  smaug__v1__resource__extra_entry__init(e);
}

static void values_entry_init(void *e) {
  smaug__v1__parameters__values_entry__init(e);
}

static int parse_resource(const json_t *j, Smaug__V1__Resource *r,
                          const char *src, const char *where, char *err,
                          size_t errlen) {
  static const char *const keys[] = {"type", "id", "name", "extra", NULL};
  int rc;
  if (!json_is_object(j))
    return fail(err, errlen, "%s: %s: expected an object", src, where);
  if ((rc = check_keys(j, keys, src, where, err, errlen)) ||
      (rc = get_string(j, "type", 1, &r->type, src, where, err, errlen)) ||
      (rc = get_string(j, "id", 1, &r->id, src, where, err, errlen)) ||
      (rc = get_string(j, "name", 0, &r->name, src, where, err, errlen)))
    return rc;
  if (r->type[0] == '\0' || r->id[0] == '\0')
    return fail(err, errlen, "%s: %s: \"type\" and \"id\" must not be empty",
                src, where);
  json_t *extra = json_object_get(j, "extra");
  if (extra != NULL) {
    char w[96];
    snprintf(w, sizeof(w), "%s.extra", where);
    rc = parse_str_map(extra, src, w, extra_entry_init,
                       sizeof(Smaug__V1__Resource__ExtraEntry), &r->n_extra,
                       (void ***)&r->extra, err, errlen);
  }
  return rc;
}

int cli_plan_split_ref(const char *ref, char **type, char **id) {
  const char *hash = strchr(ref, '#');
  if (hash == NULL || hash == ref || hash[1] == '\0')
    return UV_EINVAL;
  char *t = strndup(ref, (size_t)(hash - ref));
  char *i = strdup(hash + 1);
  if (t == NULL || i == NULL) {
    free(t);
    free(i);
    return UV_ENOMEM;
  }
  *type = t;
  *id = i;
  return 0;
}

static int parse_ref(const json_t *j, const char *key, char **type, char **id,
                     const char *src, const char *where, char *err,
                     size_t errlen) {
  json_t *v = json_object_get(j, key);
  if (v == NULL)
    return fail(err, errlen, "%s: %s: missing \"%s\"", src, where, key);
  if (!json_is_string(v))
    return fail(err, errlen, "%s: %s.%s: expected a string", src, where, key);
  int rc = cli_plan_split_ref(json_string_value(v), type, id);
  if (rc == UV_ENOMEM)
    return nomem(err, errlen);
  if (rc != 0)
    return fail(err, errlen, "%s: %s.%s: expected \"type#id\", got \"%s\"", src,
                where, key, json_string_value(v));
  return 0;
}

static int parse_edge(const json_t *j, Smaug__V1__ResourceEdge *e,
                      const char *src, const char *where, char *err,
                      size_t errlen) {
  static const char *const keys[] = {"parent", "child", NULL};
  int rc;
  if (!json_is_object(j))
    return fail(err, errlen, "%s: %s: expected an object", src, where);
  if ((rc = check_keys(j, keys, src, where, err, errlen)) ||
      (rc = parse_ref(j, "parent", &e->parent_type, &e->parent_id, src, where,
                      err, errlen)) ||
      (rc = parse_ref(j, "child", &e->child_type, &e->child_id, src, where, err,
                      errlen)))
    return rc;
  return 0;
}

int cli_plan_parse_parameters(const json_t *json, const char *where,
                              Smaug__V1__ParameterSet **out, char *err,
                              size_t errlen) {
  Smaug__V1__ParameterSet *ps = malloc(sizeof(*ps));
  int rc = 0;
  if (ps == NULL)
    return nomem(err, errlen);
  smaug__v1__parameter_set__init(ps);
  if (!json_is_object(json)) {
    rc = fail(err, errlen, "%s: expected an object", where);
    goto done;
  }
  size_t n = json_object_size(json);
  if (n > 0 && (ps->entries = calloc(n, sizeof(*ps->entries))) == NULL) {
    rc = nomem(err, errlen);
    goto done;
  }
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)json, key, v) {
    Smaug__V1__ParameterSet__EntriesEntry *e = malloc(sizeof(*e));
    Smaug__V1__Parameters *p = malloc(sizeof(*p));
    if (e == NULL || p == NULL) {
      free(e);
      free(p);
      rc = nomem(err, errlen);
      goto done;
    }
    smaug__v1__parameter_set__entries_entry__init(e);
    smaug__v1__parameters__init(p);
    e->value = p;
    ps->entries[ps->n_entries++] = e;
    if ((e->key = strdup(key)) == NULL) {
      rc = nomem(err, errlen);
      goto done;
    }
    if (key[0] == '\0' || key[0] == '#' || key[strlen(key) - 1] == '#') {
      rc = fail(err, errlen, "%s: \"%s\": expected a type or \"type#id\"",
                where, key);
      goto done;
    }
    char w[160];
    snprintf(w, sizeof(w), "parameters[\"%s\"]", key);
    /* parse_str_map formats "src: where"; here `where` is the source. */
    rc = parse_str_map(v, where, w, values_entry_init,
                       sizeof(Smaug__V1__Parameters__ValuesEntry), &p->n_values,
                       (void ***)&p->values, err, errlen);
    if (rc != 0)
      goto done;
  }
done:
  if (rc != 0) {
    protobuf_c_message_free_unpacked(&ps->base, NULL);
    return rc;
  }
  *out = ps;
  return 0;
}

int cli_plan_parse(const char *text, size_t len, const char *source,
                   Smaug__V1__Plan **out, char *err, size_t errlen) {
  static const char *const keys[] = {
      "name", "resources",     "edges",         "parameters",
      "id",   "created_at_ms", "updated_at_ms", NULL};
  json_error_t jerr;
  json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
  if (root == NULL)
    return fail(err, errlen, "%s:%d:%d: %s", source, jerr.line, jerr.column,
                jerr.text);
  int rc;
  Smaug__V1__Plan *plan = malloc(sizeof(*plan));
  if (plan == NULL) {
    json_decref(root);
    return nomem(err, errlen);
  }
  smaug__v1__plan__init(plan);
  if (!json_is_object(root)) {
    rc = fail(err, errlen, "%s: expected a JSON object at the top", source);
    goto done;
  }
  if ((rc = check_keys(root, keys, source, "plan", err, errlen)) ||
      (rc = get_string(root, "name", 1, &plan->name, source, "plan", err,
                       errlen)))
    goto done;

  json_t *res = json_object_get(root, "resources");
  if (res == NULL || !json_is_array(res) || json_array_size(res) == 0) {
    rc = fail(err, errlen, "%s: plan.resources: expected a non-empty array",
              source);
    goto done;
  }
  plan->resources = calloc(json_array_size(res), sizeof(*plan->resources));
  if (plan->resources == NULL) {
    rc = nomem(err, errlen);
    goto done;
  }
  size_t i;
  json_t *v;
  json_array_foreach(res, i, v) {
    Smaug__V1__Resource *r = malloc(sizeof(*r));
    if (r == NULL) {
      rc = nomem(err, errlen);
      goto done;
    }
    smaug__v1__resource__init(r);
    plan->resources[plan->n_resources++] = r;
    char w[48];
    snprintf(w, sizeof(w), "resources[%zu]", i);
    if ((rc = parse_resource(v, r, source, w, err, errlen)))
      goto done;
  }

  json_t *edges = json_object_get(root, "edges");
  if (edges != NULL) {
    if (!json_is_array(edges)) {
      rc = fail(err, errlen, "%s: plan.edges: expected an array", source);
      goto done;
    }
    size_t n = json_array_size(edges);
    if (n > 0 && (plan->edges = calloc(n, sizeof(*plan->edges))) == NULL) {
      rc = nomem(err, errlen);
      goto done;
    }
    json_array_foreach(edges, i, v) {
      Smaug__V1__ResourceEdge *e = malloc(sizeof(*e));
      if (e == NULL) {
        rc = nomem(err, errlen);
        goto done;
      }
      smaug__v1__resource_edge__init(e);
      plan->edges[plan->n_edges++] = e;
      char w[48];
      snprintf(w, sizeof(w), "edges[%zu]", i);
      if ((rc = parse_edge(v, e, source, w, err, errlen)))
        goto done;
    }
  }

  json_t *params = json_object_get(root, "parameters");
  if (params != NULL) {
    char w[256];
    snprintf(w, sizeof(w), "%s: plan.parameters", source);
    if (!json_is_object(params)) {
      rc = fail(err, errlen, "%s: expected an object", w);
      goto done;
    }
    if ((rc = cli_plan_parse_parameters(params, source, &plan->parameters, err,
                                        errlen)))
      goto done;
  }
done:
  json_decref(root);
  if (rc != 0) {
    protobuf_c_message_free_unpacked(&plan->base, NULL);
    return rc;
  }
  *out = plan;
  return 0;
}

int cli_plan_load(const char *path, Smaug__V1__Plan **out, char *err,
                  size_t errlen) {
  FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
  if (f == NULL) {
    int e = errno;
    snprintf(err, errlen, "%s: %s", path, strerror(e));
    return -e;
  }
  char *buf = NULL;
  size_t len = 0, cap = 0;
  int rc = 0;
  for (;;) {
    if (len == cap) {
      size_t ncap = cap ? cap * 2 : 4096;
      char *nb = realloc(buf, ncap);
      if (nb == NULL) {
        rc = nomem(err, errlen);
        goto done;
      }
      buf = nb;
      cap = ncap;
    }
    size_t n = fread(buf + len, 1, cap - len, f);
    len += n;
    if (n == 0) {
      if (ferror(f)) {
        rc = -EIO;
        snprintf(err, errlen, "%s: read error", path);
      }
      break;
    }
  }
  if (rc == 0)
    rc = cli_plan_parse(buf ? buf : "", len,
                        strcmp(path, "-") == 0 ? "<stdin>" : path, out, err,
                        errlen);
done:
  free(buf);
  if (f != stdin)
    fclose(f);
  return rc;
}

int cli_plan_set_parameter(Smaug__V1__ParameterSet *ps, const char *target,
                           const char *key, const char *value) {
  Smaug__V1__ParameterSet__EntriesEntry *entry = NULL;
  for (size_t i = 0; i < ps->n_entries; i++)
    if (strcmp(ps->entries[i]->key, target) == 0)
      entry = ps->entries[i];
  char *v = strdup(value);
  if (v == NULL)
    return UV_ENOMEM;
  if (entry != NULL && entry->value != NULL) {
    Smaug__V1__Parameters *p = entry->value;
    for (size_t i = 0; i < p->n_values; i++)
      if (strcmp(p->values[i]->key, key) == 0) {
        free(p->values[i]->value);
        p->values[i]->value = v;
        return 0;
      }
  }
  /* Allocate everything first, so that a failure changes nothing. */
  Smaug__V1__Parameters__ValuesEntry *ve = malloc(sizeof(*ve));
  char *k = strdup(key);
  Smaug__V1__ParameterSet__EntriesEntry *ne = NULL;
  Smaug__V1__Parameters *np = NULL;
  char *t = NULL;
  void *grown_entries = NULL;
  if (entry == NULL) {
    ne = malloc(sizeof(*ne));
    np = malloc(sizeof(*np));
    t = strdup(target);
    grown_entries =
        realloc(ps->entries, (ps->n_entries + 1) * sizeof(*ps->entries));
    if (grown_entries != NULL)
      ps->entries = grown_entries;
  }
  Smaug__V1__Parameters *p = entry ? entry->value : np;
  void *grown_values = NULL;
  if (p != NULL) {
    size_t n = entry ? p->n_values : 0;
    grown_values = realloc(entry ? p->values : NULL, (n + 1) * sizeof(*ve));
  }
  if (ve == NULL || k == NULL || p == NULL || grown_values == NULL ||
      (entry == NULL && (ne == NULL || t == NULL || grown_entries == NULL))) {
    if (entry == NULL)
      free(grown_values);
    else if (grown_values != NULL)
      p->values = grown_values;
    free(ve);
    free(k);
    free(v);
    free(ne);
    free(np);
    free(t);
    return UV_ENOMEM;
  }
  if (entry == NULL) {
    smaug__v1__parameter_set__entries_entry__init(ne);
    smaug__v1__parameters__init(np);
    ne->key = t;
    ne->value = np;
    ps->entries[ps->n_entries++] = ne;
  }
  p->values = grown_values;
  smaug__v1__parameters__values_entry__init(ve);
  ve->key = k;
  ve->value = v;
  p->values[p->n_values++] = ve;
  return 0;
}

static json_t *str_map_json(size_t n, str_entry_t *const *e) {
  json_t *o = json_object();
  for (size_t i = 0; o != NULL && i < n; i++)
    if (json_object_set_new(o, e[i]->key, json_string(e[i]->value))) {
      json_decref(o);
      o = NULL;
    }
  return o;
}

json_t *cli_plan_parameters_to_json(const Smaug__V1__ParameterSet *ps) {
  json_t *o = json_object();
  for (size_t i = 0; ps != NULL && o != NULL && i < ps->n_entries; i++) {
    const Smaug__V1__Parameters *p = ps->entries[i]->value;
    json_t *v = p ? str_map_json(p->n_values, (str_entry_t *const *)p->values)
                  : json_object();
    if (v == NULL || json_object_set_new(o, ps->entries[i]->key, v)) {
      json_decref(o);
      o = NULL;
    }
  }
  return o;
}

json_t *cli_plan_to_json(const Smaug__V1__Plan *plan) {
  json_t *res = json_array(), *edges = json_array();
  json_t *params = cli_plan_parameters_to_json(plan->parameters);
  int bad = res == NULL || edges == NULL || params == NULL;
  for (size_t i = 0; !bad && i < plan->n_resources; i++) {
    const Smaug__V1__Resource *r = plan->resources[i];
    bad = json_array_append_new(
        res,
        json_pack("{s:s, s:s, s:s, s:o*}", "type", r->type, "id", r->id, "name",
                  r->name, "extra",
                  str_map_json(r->n_extra, (str_entry_t *const *)r->extra)));
  }
  for (size_t i = 0; !bad && i < plan->n_edges; i++) {
    const Smaug__V1__ResourceEdge *e = plan->edges[i];
    bad = json_array_append_new(
        edges,
        json_pack("{s:s++, s:s++}", "parent", e->parent_type, "#", e->parent_id,
                  "child", e->child_type, "#", e->child_id));
  }
  if (bad) {
    json_decref(res);
    json_decref(edges);
    json_decref(params);
    return NULL;
  }
  return json_pack("{s:s, s:s, s:o, s:o, s:o, s:I, s:I}", "id", plan->id,
                   "name", plan->name, "resources", res, "edges", edges,
                   "parameters", params, "created_at_ms",
                   (json_int_t)plan->created_at_ms, "updated_at_ms",
                   (json_int_t)plan->updated_at_ms);
}
