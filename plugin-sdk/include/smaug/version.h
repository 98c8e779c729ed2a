/*
 * smaug/version.h - the version of libsmaug-plugin.
 *
 * Releases with the same major number are ABI-compatible; the shared
 * library's SONAME carries the major number (libsmaug-plugin.so.0). Compare
 * the compile-time macros with smaug_version() to detect a plugin built
 * against a newer header than the library it runs with.
 */
#ifndef SMAUG_VERSION_H
#define SMAUG_VERSION_H

#define SMAUG_VERSION_MAJOR 0
#define SMAUG_VERSION_MINOR 2
#define SMAUG_VERSION_PATCH 0

/* (major << 16) | (minor << 8) | patch, for numeric comparison. */
#define SMAUG_VERSION_HEX                                                      \
  ((SMAUG_VERSION_MAJOR << 16) | (SMAUG_VERSION_MINOR << 8) |                  \
   SMAUG_VERSION_PATCH)

/* The smaug.v1 protocol version the SDK speaks in GetPluginInfo. */
#define SMAUG_PROTOCOL_MAJOR 1
#define SMAUG_PROTOCOL_MINOR 0

#ifdef __cplusplus
extern "C" {
#endif

/* Returns SMAUG_VERSION_HEX of the library actually loaded. Any thread. */
unsigned smaug_version(void);

/* Returns "MAJOR.MINOR.PATCH" of the library actually loaded. Static
 * string. Any thread. */
const char *smaug_version_string(void);

#ifdef __cplusplus
}
#endif
#endif /* SMAUG_VERSION_H */
