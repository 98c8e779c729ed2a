/*
 * cli_args.c - the `smaug` option parser (see cli_args.h). Options and
 * positionals may be interleaved, as in "plan show ID -o json".
 */
#include "cli_args.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static const cli_opt_t *find_long(const cli_opt_t *t, const char *name,
                                  size_t len) {
  for (; t->name != NULL; t++)
    if (strlen(t->name) == len && strncmp(t->name, name, len) == 0)
      return t;
  return NULL;
}

static const cli_opt_t *find_short(const cli_opt_t *t, char c) {
  for (; t->name != NULL; t++)
    if (t->short_name != 0 && t->short_name == c)
      return t;
  return NULL;
}

int cli_args_parse(int argc, char **argv, const cli_opt_t *table,
                   cli_args_t *out, char *err, size_t errlen) {
  cli_args_t a = {0};
  int rc = 0;
  size_t cap = argc > 0 ? (size_t)argc : 1;
  a.opts = calloc(cap, sizeof(*a.opts));
  a.pos = calloc(cap, sizeof(*a.pos));
  if (a.opts == NULL || a.pos == NULL) {
    rc = UV_ENOMEM;
    goto fail;
  }
  int only_pos = 0;
  for (int i = 0; i < argc; i++) {
    const char *w = argv[i];
    if (only_pos || w[0] != '-' || w[1] == '\0') {
      a.pos[a.n_pos++] = w;
      continue;
    }
    if (strcmp(w, "--") == 0) {
      only_pos = 1;
      continue;
    }
    const cli_opt_t *o;
    const char *inline_val = NULL;
    if (w[1] == '-') {
      const char *name = w + 2;
      const char *eq = strchr(name, '=');
      size_t len = eq ? (size_t)(eq - name) : strlen(name);
      o = find_long(table, name, len);
      if (o == NULL) {
        snprintf(err, errlen, "unknown option --%.*s", (int)len, name);
        rc = UV_EINVAL;
        goto fail;
      }
      if (eq != NULL) {
        if (!o->has_value) {
          snprintf(err, errlen, "option --%s takes no value", o->name);
          rc = UV_EINVAL;
          goto fail;
        }
        inline_val = eq + 1;
      }
    } else {
      o = find_short(table, w[1]);
      if (o == NULL) {
        snprintf(err, errlen, "unknown option -%c", w[1]);
        rc = UV_EINVAL;
        goto fail;
      }
      if (w[2] != '\0') {
        if (!o->has_value) {
          snprintf(err, errlen, "option -%c takes no value", w[1]);
          rc = UV_EINVAL;
          goto fail;
        }
        inline_val = w + 2; /* "-pkey=value" */
      }
    }
    const char *val = NULL;
    if (o->has_value) {
      if (inline_val != NULL) {
        val = inline_val;
      } else if (i + 1 < argc) {
        val = argv[++i];
      } else {
        snprintf(err, errlen, "option --%s needs a value", o->name);
        rc = UV_EINVAL;
        goto fail;
      }
    }
    a.opts[a.n_opts].opt = o;
    a.opts[a.n_opts].value = val;
    a.n_opts++;
  }
  *out = a;
  return 0;
fail:
  if (rc == UV_ENOMEM)
    snprintf(err, errlen, "out of memory");
  cli_args_free(&a);
  *out = (cli_args_t){0};
  return rc;
}

void cli_args_free(cli_args_t *a) {
  if (a == NULL)
    return;
  free(a->opts);
  free(a->pos);
  *a = (cli_args_t){0};
}

const char *cli_args_get(const cli_args_t *a, const char *name) {
  const char *v = NULL;
  for (size_t i = 0; i < a->n_opts; i++)
    if (strcmp(a->opts[i].opt->name, name) == 0)
      v = a->opts[i].value;
  return v;
}

size_t cli_args_count(const cli_args_t *a, const char *name) {
  size_t n = 0;
  for (size_t i = 0; i < a->n_opts; i++)
    if (strcmp(a->opts[i].opt->name, name) == 0)
      n++;
  return n;
}
