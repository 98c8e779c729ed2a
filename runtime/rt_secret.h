/*
 * rt_secret.h - the check every secret file passes before it is read: a
 * private key, a token file. A secret that its group or other users can
 * read (or write) is refused with a message that says so, instead of being
 * used: whoever can read the key can be the server, whoever can write it
 * can replace it. Shared by smaugd, the CLI, the plugin SDK and
 * smaug-plugin-check, so that they all refuse the same files with the same
 * words.
 */
#ifndef SMAUG_RT_SECRET_H
#define SMAUG_RT_SECRET_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Checks that `path` (a symlink is followed, as when the file is opened)
 * is a regular file that only its owner may read or write: mode 0600,
 * 0400 or stricter. Returns 0; UV_EPERM when the file is group- or
 * world-readable or -writable, with `errbuf` saying so, for example
 * "key file /etc/k.pem is group- or world-readable (mode 0640): a secret
 * must be readable by its owner only (chmod 600 /etc/k.pem)"; UV_EINVAL
 * (not a regular file, NULL path) or the stat() error (-errno), with
 * `errbuf` naming the file. `what` names the secret in the message ("key
 * file", "token file"; NULL: "secret file"). `errbuf` (may be NULL when
 * `len` is 0) is written only on failure. Any thread. */
int rt_secret_file_check(const char *path, const char *what, char *errbuf,
                         size_t len);

/* The same check on the file open at `fd` (fstat: no window between the
 * check and the read); `path` only names it in the message. */
int rt_secret_fd_check(int fd, const char *path, const char *what, char *errbuf,
                       size_t len);

#ifdef __cplusplus
}
#endif
#endif
