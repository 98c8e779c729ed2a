/*
 * cli_args.h - a small declarative option parser for the `smaug` client.
 *
 * Every subcommand describes its options in a table of cli_opt_t and gets
 * back the options in the order given plus the positional arguments. The
 * parser is pure (no globals, no printing, no exit), unlike getopt, so the
 * usage errors it reports are unit-tested and each subcommand can be parsed
 * independently.
 */
#ifndef SMAUG_CLI_ARGS_H
#define SMAUG_CLI_ARGS_H

#include <stddef.h>

/* One option. A NULL `name` ends a table. */
typedef struct cli_opt_s {
  const char *name; /* long name without "--", e.g. "wait" */
  char short_name;  /* 'f', or 0 for none */
  int has_value;    /* takes an argument: "--file x", "--file=x", "-f x" */
} cli_opt_t;

/* One parsed option occurrence; `value` points into argv (NULL for a flag).
 */
typedef struct cli_optval_s {
  const cli_opt_t *opt;
  const char *value;
} cli_optval_t;

/* The result of a parse. Arrays are allocated by cli_args_parse and freed
 * with cli_args_free; the strings they point to are argv's. */
typedef struct cli_args_s {
  cli_optval_t *opts;
  size_t n_opts;
  const char **pos;
  size_t n_pos;
} cli_args_t;

/* Parses argv[0..argc) (argv[0] is NOT skipped: pass the words after the
 * subcommand). "--" ends option parsing; a lone "-" is a positional.
 * Returns 0, UV_EINVAL for a usage error (an unknown option, a missing or
 * unexpected value), with a one-line reason written to err[0..errlen), or
 * UV_ENOMEM. On error `*out` is left empty and owns nothing. */
int cli_args_parse(int argc, char **argv, const cli_opt_t *table,
                   cli_args_t *out, char *err, size_t errlen);

/* Frees the arrays of a parse; the struct is left empty. NULL-safe. */
void cli_args_free(cli_args_t *a);

/* Returns the last value given for option `name` (NULL if absent or a
 * flag). */
const char *cli_args_get(const cli_args_t *a, const char *name);

/* Returns how many times option `name` was given. */
size_t cli_args_count(const cli_args_t *a, const char *name);

#endif /* SMAUG_CLI_ARGS_H */
