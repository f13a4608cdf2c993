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

/*
 * The checksum of RAWL records (which hold whole transactions, up to
 * megabytes): four independent lanes, so the multiplies of consecutive
 * words overlap instead of forming one dependent chain.  Same guarantees as
 * hash64: word j of each 32-byte block feeds lane j with its position.
 * hash64_wide_of hashes the nwords words word(0), word(1), ... as if they
 * were contiguous (the RAWL hashes a header and a caller's buffer without
 * copying them together); hash64_wide hashes n bytes (a multiple of 8).
 */
template <class W>
inline uint64_t hash64_wide_of(W &&word, size_t nwords, uint64_t seed)
{
	const size_t n = nwords * 8;
	uint64_t h[4]; /* distinct lanes; the first word's mix spreads them */
	for (int j = 0; j < 4; j++)
		h[j] = seed + (uint64_t)(j + 1) * 0x9e3779b97f4a7c15ull;
	size_t i = 0;
	for (; i + 32 <= n; i += 32)
		for (int j = 0; j < 4; j++) {
			uint64_t w = word(i / 8 + j);
			h[j] = mix64(h[j] ^ w ^ ((i + 8 * j) * 0xc2b2ae3d27d4eb4full));
		}
	for (int j = 0; i < n; i += 8, j++) {
		uint64_t w = word(i / 8);
		h[j] = mix64(h[j] ^ w ^ (i * 0xc2b2ae3d27d4eb4full));
	}
	/* Lanes enter rotated by different amounts: swapping two lanes'
	 * states changes the result. */
	uint64_t r = n * 0x9e3779b97f4a7c15ull ^ h[0] ^
		     (h[1] << 17 | h[1] >> 47) ^ (h[2] << 31 | h[2] >> 33) ^
		     (h[3] << 47 | h[3] >> 17);
	return mix64(r);
}

inline uint64_t hash64_wide(const void *p, size_t n, uint64_t seed)
{
	const unsigned char *b = static_cast<const unsigned char *>(p);
	return hash64_wide_of([b](size_t k) {
		uint64_t w;
		memcpy(&w, b + 8 * k, 8);
		return w;
	}, n / 8, seed);
}

/*
 * The record checksum of format 6 and later (sum.cc): the same guarantees
 * as hash64_wide at a fraction of its cost.  w[0..n) are the words hashed;
 * sum64_portable is the same function without vector instructions (tests
 * compare the two).
 */
uint64_t sum64(const uint64_t *w, size_t n, uint64_t seed);
uint64_t sum64_portable(const uint64_t *w, size_t n, uint64_t seed);

} // namespace mnemo

#endif
