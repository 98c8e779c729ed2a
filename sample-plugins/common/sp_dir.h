/*
 * sp_dir.h - creating folders, shared by the sample plugins and
 * smaug-cloud-gen (which needs nothing else from the plugins' common code,
 * so this module depends on libc only).
 */
#ifndef SP_DIR_H
#define SP_DIR_H

/* Creates the folder `path` and its missing parents (mode 0755); existing
 * ones are fine. Returns 0 or -errno (-ENAMETOOLONG beyond PATH_MAX). Any
 * thread. */
int sp_mkdir_p(const char *path);

/* Creates the folder that holds `path`, and its parents. Returns 0 or
 * -errno. Any thread. */
int sp_mkdir_parent(const char *path);

#endif
