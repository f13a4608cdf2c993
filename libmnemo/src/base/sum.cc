/*
 * sum.cc -- sum64, the record checksum of format 6 (see hash.h): one
 * multiply per word in eight independent lanes, so that a record of a
 * kilobyte costs tens of nanoseconds, not hundreds (hash64_wide chains two
 * multiplies per word in four lanes).  AVX2 processes a 64-byte block in a
 * few instructions; the scalar code computes the same function.
 *
 * Per word w at position i (lane j = i % 8, block b = i / 8):
 *   x = w ^ key_j(b),  key_j(b) = (seed ^ (j+1)*kP3) + b*kP2
 *   acc_j   += lo32(x) * hi32(x)     (position-dependent)
 *   acc_j^1 += w                     (a change of w always reaches it)
 * and the lanes are merged pairwise by 64x64->128 multiplies folded to 64
 * bits, then mixed (mix64).  The length and seed enter both ends.
 */
#include <immintrin.h>

#include "base/hash.h"

namespace mnemo {
namespace {

constexpr uint64_t kP1 = 0x9e3779b185ebca87ull;
constexpr uint64_t kP2 = 0xc2b2ae3d27d4eb4full;
constexpr uint64_t kP3 = 0x165667b19e3779f9ull;

struct lanes {
	uint64_t acc[8], key[8];
};

void start(lanes *s, uint64_t seed)
{
	for (int j = 0; j < 8; j++) {
		s->acc[j] = seed + (uint64_t)(j + 1) * kP1;
		s->key[j] = seed ^ (uint64_t)(j + 1) * kP3;
	}
}

/* One word into lane j. */
inline void word(lanes *s, int j, uint64_t w)
{
	uint64_t x = w ^ s->key[j];
	s->acc[j] += (x & 0xffffffffull) * (x >> 32);
	s->acc[j ^ 1] += w;
}

/* Whole blocks from w, then the tail: n words in all. */
void scalar_words(lanes *s, const uint64_t *w, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8)
		for (int j = 0; j < 8; j++) {
			word(s, j, w[i + j]);
			s->key[j] += kP2;
		}
	for (int j = 0; i < n; i++, j++)
		word(s, j, w[i]);
}

uint64_t fold(uint64_t a, uint64_t b)
{
	unsigned __int128 p = (unsigned __int128)a * b;
	return (uint64_t)p ^ (uint64_t)(p >> 64);
}

uint64_t finish(const lanes *s, size_t n, uint64_t seed)
{
	uint64_t h = seed ^ (uint64_t)n * kP1;
	for (int j = 0; j < 8; j += 2)
		h += fold(s->acc[j] ^ (kP2 + (uint64_t)j),
			  s->acc[j + 1] ^ (kP3 + (uint64_t)j));
	return mix64(h);
}

uint64_t sum_scalar(const uint64_t *w, size_t n, uint64_t seed)
{
	lanes s;
	start(&s, seed);
	scalar_words(&s, w, n);
	return finish(&s, n, seed);
}

/* The blocks with AVX2 (two vectors of four lanes), the tail as above.
 * _mm256_mul_epu32 multiplies the low 32 bits of each 64-bit lane; the
 * shuffle 0x4e swaps the words of each 128-bit half: lanes 1,0,3,2. */
__attribute__((target("avx2"))) uint64_t sum_avx2(const uint64_t *w,
						  size_t n, uint64_t seed)
{
	lanes s;
	start(&s, seed);
	__m256i a0 = _mm256_loadu_si256((const __m256i *)s.acc);
	__m256i a1 = _mm256_loadu_si256((const __m256i *)(s.acc + 4));
	__m256i k0 = _mm256_loadu_si256((const __m256i *)s.key);
	__m256i k1 = _mm256_loadu_si256((const __m256i *)(s.key + 4));
	const __m256i step = _mm256_set1_epi64x((long long)kP2);
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m256i w0 = _mm256_loadu_si256((const __m256i *)(w + i));
		__m256i w1 = _mm256_loadu_si256((const __m256i *)(w + i + 4));
		__m256i x0 = _mm256_xor_si256(w0, k0);
		__m256i x1 = _mm256_xor_si256(w1, k1);
		a0 = _mm256_add_epi64(a0, _mm256_mul_epu32(
					  x0, _mm256_srli_epi64(x0, 32)));
		a1 = _mm256_add_epi64(a1, _mm256_mul_epu32(
					  x1, _mm256_srli_epi64(x1, 32)));
		a0 = _mm256_add_epi64(a0, _mm256_shuffle_epi32(w0, 0x4e));
		a1 = _mm256_add_epi64(a1, _mm256_shuffle_epi32(w1, 0x4e));
		k0 = _mm256_add_epi64(k0, step);
		k1 = _mm256_add_epi64(k1, step);
	}
	_mm256_storeu_si256((__m256i *)s.acc, a0);
	_mm256_storeu_si256((__m256i *)(s.acc + 4), a1);
	_mm256_storeu_si256((__m256i *)s.key, k0);
	_mm256_storeu_si256((__m256i *)(s.key + 4), k1);
	/* The caller's code is SSE (legacy-encoded): leaving the upper
	 * halves dirty makes every later SSE instruction pay a merge with
	 * them (measured: the record's copy into the log, 90 cycles after
	 * this and 280 without it).  GCC inserts no vzeroupper here, as
	 * the function goes on calling functions of its own. */
	_mm256_zeroupper();
	scalar_words(&s, w + i, n - i);
	return finish(&s, n, seed);
}

/* Set before main (a constructor), read-only afterwards. */
bool g_avx2;
__attribute__((constructor)) void detect()
{
	__builtin_cpu_init();
	g_avx2 = __builtin_cpu_supports("avx2");
}

} // namespace

uint64_t sum64(const uint64_t *w, size_t n, uint64_t seed)
{
	return g_avx2 ? sum_avx2(w, n, seed) : sum_scalar(w, n, seed);
}

uint64_t sum64_portable(const uint64_t *w, size_t n, uint64_t seed)
{
	return sum_scalar(w, n, seed);
}

} // namespace mnemo
