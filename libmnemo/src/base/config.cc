/*
 * config.cc -- MNEMO_* environment variables that are not tied to one
 * backend (those are parsed in scm/).  All are listed in mnemosyne(7).
 */
#include "base/config.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "base/error.h"

namespace mnemo {

int parse_size(const char *var, const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	int shift = 0;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default: break;
	}
	if (errno || end == s || *end || *s == '-' || (v << shift >> shift) != v)
		return fail(EINVAL, "%s=%s: expected a size such as 4096, 64M "
			    "or 2G", var, s);
	*out = (uint64_t)v << shift;
	return 0;
}

int default_pool_size(uint64_t *out)
{
	const char *s = getenv("MNEMO_POOL_SIZE");
	*out = 64ull << 20;
	return s && *s ? parse_size("MNEMO_POOL_SIZE", s, out) : 0;
}

unsigned config_ns(const char *var)
{
	const char *s = getenv(var);
	if (!s || !*s)
		return 0;
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (*end || v > 100000000ul || *s == '-') {
		fprintf(stderr, "mnemosyne: ignoring %s=%s (expected "
			"nanoseconds, at most 1e8)\n", var, s);
		return 0;
	}
	return (unsigned)v;
}

} // namespace mnemo
