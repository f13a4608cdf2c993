/*
 * hash.h -- the 64-bit checksum of every on-media checksum field.
 *
 * Not cryptographic.  Requirements it meets: any change to any one 8-byte
 * word (a torn write at the hardware's atomicity) changes the result with
 * probability 1 - 2^-64, and word order matters (position is mixed in).
 */
#ifndef MNEMO_HASH_H
#define MNEMO_HASH_H

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace mnemo {

inline uint64_t mix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

/* pre: n is a multiple of 8. */
inline uint64_t hash64(const void *p, size_t n, uint64_t seed)
{
	const unsigned char *b = static_cast<const unsigned char *>(p);
	uint64_t h = mix64(seed ^ (n * 0x9e3779b97f4a7c15ull));
	for (size_t i = 0; i < n; i += 8) {
		uint64_t w;
		memcpy(&w, b + i, 8);
		h = mix64(h ^ w ^ (i * 0x9e3779b97f4a7c15ull)) + i;
	}
	return mix64(h);
}

} // namespace mnemo

#endif
