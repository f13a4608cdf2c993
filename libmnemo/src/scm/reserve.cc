/*
 * reserve.cc -- reserving a pool's address window without ever replacing
 * an existing mapping (MAP_FIXED_NOREPLACE), and naming the occupant when
 * the window is taken.
 */
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <sys/mman.h>

#include "base/error.h"
#include "scm/scm.h"

namespace mnemo::scm {
namespace {

constexpr int kReserveFlags =
	MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;

/* Describe the first mapping of /proc/self/maps overlapping [lo, hi). */
void describe_occupant(uintptr_t lo, uintptr_t hi, char *buf, size_t len)
{
	snprintf(buf, len, "an existing mapping");
	FILE *f = fopen("/proc/self/maps", "re");
	if (!f)
		return;
	char line[512];
	while (fgets(line, sizeof(line), f)) {
		uintptr_t a, b;
		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &a, &b) != 2)
			continue;
		if (a < hi && b > lo) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(buf, len, "[%s]", line);
			break;
		}
	}
	fclose(f);
}

} // namespace

int reserve(void *base, size_t len)
{
	void *p = mmap(base, len, PROT_NONE, kReserveFlags | MAP_FIXED_NOREPLACE,
		       -1, 0);
	if (p == base)
		return 0;
	int err = p == MAP_FAILED ? errno : EEXIST;
	if (p != MAP_FAILED) /* a kernel without MAP_FIXED_NOREPLACE */
		munmap(p, len);
	if (err != EEXIST)
		return fail(err, "cannot reserve %zu bytes at %p: %s", len, base,
			    strerror(err));
	char who[600];
	describe_occupant((uintptr_t)base, (uintptr_t)base + len, who,
			  sizeof(who));
	return fail(EADDRINUSE,
		    "address clash: the pool must be mapped at %p-%p but %s "
		    "already occupies part of it",
		    base, (char *)base + len, who);
}

int unreserve_to_none(void *p, size_t len)
{
	if (mmap(p, len, PROT_NONE, kReserveFlags | MAP_FIXED, -1, 0) == p)
		return 0;
	return fail(errno, "cannot release mapping at %p: %s", p,
		    strerror(errno));
}

} // namespace mnemo::scm
