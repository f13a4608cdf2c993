/*
 * addr.cc -- where pools live in the virtual address space.
 *
 * Pools are mapped in [kLow, kHigh), far from the usual places of
 * executables (a PIE is loaded at 0x555555554000 plus up to 1 TiB of
 * randomisation, its brk heap right after), shared libraries (top down
 * from about 0x7fxxxxxxxxxx), and above the AddressSanitizer shadow (which
 * ends below 0x10007fff8000 on x86-64).  A pool's window spans its growth
 * limit, which may be tens of GiB.  A new
 * pool gets the first free 1 GiB-aligned slot at or after a position derived
 * from its UUID, so that pools created by different processes rarely collide
 * when opened together; the chosen base is then fixed in the header forever.
 */
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <sys/mman.h>

#include "base/error.h"
#include "base/hash.h"
#include "pool/pool.h"

namespace mnemo {
namespace {

constexpr uint64_t kLow = 0x200000000000ull;  /* 32 TiB */
constexpr uint64_t kHigh = 0x500000000000ull; /* 80 TiB */
constexpr uint64_t kUserTop = 0x7ff000000000ull;
constexpr uint64_t kSlotAlign = 1ull << 30;
constexpr int kProbes = 256;

bool free_now(uint64_t base, uint64_t len)
{
	void *p = mmap((void *)base, len, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
			       MAP_FIXED_NOREPLACE,
		       -1, 0);
	if (p == MAP_FAILED)
		return false;
	munmap(p, len);
	return p == (void *)base;
}

} // namespace

uint64_t window_of(uint64_t size)
{
	return (size + scm::kOsPage - 1) & ~(scm::kOsPage - 1);
}

int addr_check(uint64_t base, uint64_t size)
{
	if (base % scm::kOsPage || base < (1ull << 32) || size > kUserTop ||
	    base > kUserTop - size)
		return fail(EINVAL, "pool address %#llx (size %llu) is not a "
			    "page-aligned user-space range above 4 GiB",
			    (unsigned long long)base, (unsigned long long)size);
	return 0;
}

int addr_pick(const uint8_t uuid[16], uint64_t size, uint64_t *base)
{
	uint64_t span = (size + kSlotAlign - 1) & ~(kSlotAlign - 1);
	if (span >= kHigh - kLow)
		return fail(EINVAL, "pool size %llu is too large",
			    (unsigned long long)size);
	uint64_t nslots = (kHigh - kLow - span) / kSlotAlign + 1;
	uint64_t first = hash64(uuid, 16, 0) % nslots;
	for (int i = 0; i < kProbes; i++) {
		uint64_t cand = kLow + ((first + (uint64_t)i) % nslots) *
					       kSlotAlign;
		if (free_now(cand, window_of(size))) {
			*base = cand;
			return 0;
		}
	}
	return fail(EADDRINUSE, "no free address range for a pool of %llu "
		    "bytes", (unsigned long long)size);
}

uint64_t addr_room(uint64_t base, uint64_t want)
{
	FILE *f = fopen("/proc/self/maps", "re");
	if (!f)
		return want;
	char line[512];
	uint64_t room = want;
	while (fgets(line, sizeof(line), f)) {
		uintptr_t a, b;
		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &a, &b) != 2)
			continue;
		if (b > base && a < base + room)
			room = a > base ? a - base : 0;
	}
	fclose(f);
	return room & ~(uint64_t)(scm::kOsPage - 1);
}

} // namespace mnemo
