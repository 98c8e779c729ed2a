/*
 * test_args.c - the option parser of the `smaug` client (cli_args).
 */
#include <criterion/criterion.h>
#include <string.h>
#include <uv.h>

#include "cli_args.h"

static const cli_opt_t table[] = {
    {"file", 'f', 1}, {"wait", 'w', 0}, {"param", 'p', 1}, {NULL, 0, 0}};

static int parse(cli_args_t *a, char *err, int argc, char **argv) {
  return cli_args_parse(argc, argv, table, a, err, 128);
}

Test(args, long_short_and_inline_values, .timeout = 5) {
  char *argv[] = {"--file", "a.json", "-fb.json", "--file=c.json", "-w"};
  cli_args_t a;
  char err[128];
  cr_assert_eq(parse(&a, err, 5, argv), 0);
  cr_assert_eq(a.n_opts, 4);
  cr_assert_eq(cli_args_count(&a, "file"), 3);
  cr_assert_str_eq(cli_args_get(&a, "file"), "c.json"); /* last one wins */
  cr_assert_str_eq(a.opts[1].value, "b.json");
  cr_assert_eq(cli_args_count(&a, "wait"), 1);
  cli_args_free(&a);
}

Test(args, positionals_interleave_with_options, .timeout = 5) {
  char *argv[] = {"ID", "-w", "-", "--", "--file"};
  cli_args_t a;
  char err[128];
  cr_assert_eq(parse(&a, err, 5, argv), 0);
  cr_assert_eq(a.n_pos, 3);
  cr_assert_str_eq(a.pos[0], "ID");
  cr_assert_str_eq(a.pos[1], "-");
  cr_assert_str_eq(a.pos[2], "--file"); /* after "--" */
  cr_assert_eq(cli_args_count(&a, "file"), 0);
  cli_args_free(&a);
}

Test(args, repeated_option_keeps_order, .timeout = 5) {
  char *argv[] = {"-p", "a=1", "--param", "b=2"};
  cli_args_t a;
  char err[128];
  cr_assert_eq(parse(&a, err, 4, argv), 0);
  cr_assert_eq(cli_args_count(&a, "param"), 2);
  cr_assert_str_eq(a.opts[0].value, "a=1");
  cr_assert_str_eq(a.opts[1].value, "b=2");
  cli_args_free(&a);
}

Test(args, unknown_long_option_is_named, .timeout = 5) {
  char *argv[] = {"--nope=1"};
  cli_args_t a;
  char err[128];
  cr_assert_eq(parse(&a, err, 1, argv), UV_EINVAL);
  cr_assert_str_eq(err, "unknown option --nope");
  cr_assert_eq(a.n_opts + a.n_pos, 0);
}

Test(args, unknown_short_option_is_named, .timeout = 5) {
  char *argv[] = {"-x"};
  cli_args_t a;
  char err[128];
  cr_assert_eq(parse(&a, err, 1, argv), UV_EINVAL);
  cr_assert_str_eq(err, "unknown option -x");
}

Test(args, missing_value_is_an_error, .timeout = 5) {
  char *argv[] = {"ID", "--file"};
  cli_args_t a;
  char err[128];
  cr_assert_eq(parse(&a, err, 2, argv), UV_EINVAL);
  cr_assert_str_eq(err, "option --file needs a value");
}

Test(args, value_on_a_flag_is_an_error, .timeout = 5) {
  char *argv[] = {"--wait=yes"};
  cli_args_t a;
  char err[128];
  cr_assert_eq(parse(&a, err, 1, argv), UV_EINVAL);
  cr_assert_str_eq(err, "option --wait takes no value");
}
