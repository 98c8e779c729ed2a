/*
 * replay.c - a main() for the fuzz targets without libFuzzer: runs
 * LLVMFuzzerTestOneInput once on every file of the folders (or files)
 * given, so that each corpus is a regression test in CTest.
 *
 *   fuzz-replay-<name> DIR_OR_FILE...
 *
 * Exits 0 after running at least one input, 1 when no input was found (a
 * replay of nothing cannot fail, so it does not pass either), 2 when a
 * file cannot be read; a failed property aborts.
 */
#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Runs the target on the file at `path`; returns 0, or -1 if unreadable. */
static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return -1;
  uint8_t *buf = NULL;
  size_t len = 0, cap = 0, n;
  do {
    if (len == cap) {
      cap = cap ? 2 * cap : 4096;
      uint8_t *nb = realloc(buf, cap);
      if (nb == NULL)
        abort();
      buf = nb;
    }
    n = fread(buf + len, 1, cap - len, f);
    len += n;
  } while (n > 0);
  int bad = ferror(f);
  fclose(f);
  if (!bad)
    LLVMFuzzerTestOneInput(buf, len);
  free(buf);
  return bad ? -1 : 0;
}

int main(int argc, char **argv) {
  size_t runs = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) != 0) {
      perror(argv[i]);
      return 2;
    }
    if (!S_ISDIR(st.st_mode)) {
      if (run_file(argv[i]) != 0) {
        perror(argv[i]);
        return 2;
      }
      runs++;
      continue;
    }
    DIR *d = opendir(argv[i]);
    if (d == NULL) {
      perror(argv[i]);
      return 2;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (e->d_name[0] == '.')
        continue;
      char path[4096];
      snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
      if (run_file(path) != 0) {
        perror(path);
        closedir(d);
        return 2;
      }
      runs++;
    }
    closedir(d);
  }
  printf("%zu inputs ran\n", runs);
  return runs > 0 ? 0 : 1;
}
