/*
 * token_cmd.h - `smaugd token`: add, list and revoke API tokens in a
 * token file (the format is in auth.h).
 */
#ifndef SMAUG_TOKEN_CMD_H
#define SMAUG_TOKEN_CMD_H

/* Runs `smaugd token SUBCOMMAND ...`; argv[0] is "token". Prints results
 * to stdout (the new token, once, for add) and errors to stderr. Returns
 * the process exit status: 0, 1 on failure, 2 on a usage error. Not for a
 * process that serves: it sets the umask to 077. */
int token_cmd_main(int argc, char **argv);

#endif /* SMAUG_TOKEN_CMD_H */
