/*
 * img_proc.h - a child process that is started, then polled: the
 * "asynchronous external step" of smaug-plugin-image (zstd compressing or
 * decompressing an image).
 *
 * The child runs under a private libuv loop owned by the img_proc_t, so
 * that it can be polled from whichever thread-pool thread runs the SDK's
 * poll status function, without touching the plugin's loop. Calls on one
 * img_proc_t must not overlap (the SDK runs one status call of a poll at a
 * time); different img_proc_t are independent.
 */
#ifndef IMG_PROC_H
#define IMG_PROC_H

#include <stddef.h>

typedef struct img_proc_s img_proc_t;

/* Starts argv[0] (looked up in PATH) with `argv` (NULL-terminated, copied
 * by libuv), stdin and stdout closed and stderr written to `err_path`
 * (for the failure message). Returns 0 or a negative errno (the program
 * is missing: -ENOENT); `*out` is released with img_proc_free(). */
int img_proc_start(char *const argv[], const char *err_path, img_proc_t **out);

/* 0 while the child runs, 1 once it exited with status 0, or -EIO when it
 * failed; the message then says how (exit status or signal, and the first
 * line it wrote to stderr). */
int img_proc_poll(img_proc_t *p, char *msg, size_t msglen);

/* Kills the child if it still runs (SIGKILL), reaps it, removes the
 * stderr file and frees everything. NULL is a no-op. */
void img_proc_free(img_proc_t *p);

#endif
