/*
 * main.c - the `smaug` command-line client; see cli_cmd.h and docs/cli.md.
 */
#include "cli_cmd.h"

int main(int argc, char **argv) {
  return cli_cmd_main(argc, argv);
}
