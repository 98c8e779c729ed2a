/*
 * datadir.h - smaugd's data directory guards, run before the store opens:
 * one smaugd per directory (a lock file), a private directory, and no
 * silent fresh start over an empty store file that has data beside it.
 *
 * Errors: each function prints why on stderr and returns -1. Thread: the
 * main thread, before the loop runs.
 */
#ifndef SMAUG_DATADIR_H
#define SMAUG_DATADIR_H

/* Takes the data directory's lock (an fcntl write lock on
 * <dir>/smaug.lock, which also holds the owner's pid), creating `dir` if
 * needed and narrowing its mode to 0700, so that two smaugd never share
 * one store. Returns the open lock file, kept until exit, or -1 after
 * printing why: the directory is in use (naming the holder's pid) or the
 * lock file cannot be opened. */
int datadir_lock(const char *dir);

/* A zero-length smaug.db is what a crash during creation, a full disk or a
 * careless copy leaves. It is only accepted (as a new, empty store, with a
 * warning) when nothing else of a store is beside it; with a non-empty
 * write-ahead log or bank, starting empty would lose or orphan their data,
 * so smaugd refuses. Returns 0 to go on, -1 after printing why not. */
int datadir_check_store(const char *dir);

#endif /* SMAUG_DATADIR_H */
