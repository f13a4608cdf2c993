/*
 * config.h -- parsing of MNEMO_* environment values.
 */
#ifndef MNEMO_CONFIG_H
#define MNEMO_CONFIG_H

#include <cstdint>

namespace mnemo {

/* "4096", "64K", "64M", "2G" (powers of 1024).  0 or -EINVAL + message. */
int parse_size(const char *var, const char *s, uint64_t *out);

/* Size for a pool created by mnemo_pool_open(MNEMO_CREATE). */
int default_pool_size(uint64_t *out);

/* A latency in nanoseconds from $var: 0 if unset, or (with a warning
 * on stderr) if it is not a number up to 1e8. */
unsigned config_ns(const char *var);

} // namespace mnemo

#endif
