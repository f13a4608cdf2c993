/*
 * flush.cc -- cache-flush instructions picked at run time, per-thread
 * counters of flushed lines and fences, and the SCM latency emulator.
 */
#include <cpuid.h>
#include <emmintrin.h>
#include <ctime>
#include <cstdint>

#include "scm/scm.h"

#include "base/config.h"

namespace mnemo::scm {
namespace {

enum class insn { clwb, clflushopt, clflush };

/* CPUID leaf 7: EBX bit 24 = CLWB, bit 23 = CLFLUSHOPT (Intel SDM vol. 2). */
insn detect()
{
	unsigned a, b, c, d;
	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
		return insn::clflush;
	if (b & (1u << 24))
		return insn::clwb;
	if (b & (1u << 23))
		return insn::clflushopt;
	return insn::clflush;
}

/* Set once before main (constructor); read-only afterwards. */
insn g_insn = insn::clflush;
__attribute__((constructor)) void init_insn() { g_insn = detect(); }

/* Latency emulator settings; relaxed atomics, changed rarely. */
unsigned g_flush_ns, g_fence_ns;

/* initial-exec: hot paths; small, so it fits the static TLS surplus even
 * when libmnemo is dlopened */
__attribute__((tls_model("initial-exec"))) thread_local uint64_t tl_lines, tl_fences;

void spin_ns(uint64_t ns)
{
	timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		__builtin_ia32_pause();
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((uint64_t)(t.tv_sec - t0.tv_sec) * 1000000000ull +
			 (uint64_t)(t.tv_nsec - t0.tv_nsec) <
		 ns);
}

/* Write back the lines [a, e), a line-aligned; the instruction is chosen
 * once, not per line. */
inline void lines_flush(const char *a, const char *e)
{
	switch (g_insn) {
	case insn::clwb:
		for (; a < e; a += kLine)
			asm volatile("clwb %0" : "+m"(*(volatile char *)a));
		break;
	case insn::clflushopt:
		for (; a < e; a += kLine)
			asm volatile("clflushopt %0" : "+m"(*(volatile char *)a));
		break;
	case insn::clflush:
		for (; a < e; a += kLine)
			asm volatile("clflush %0" : "+m"(*(volatile char *)a));
		break;
	}
}

size_t lines_of(const void *p, size_t n)
{
	if (n == 0)
		return 0;
	uintptr_t a = (uintptr_t)p & ~(kLine - 1);
	uintptr_t e = (uintptr_t)p + n;
	return (e - a + kLine - 1) / kLine;
}

} // namespace

void account_flush(const void *p, size_t n)
{
	size_t lines = lines_of(p, n);
	tl_lines += lines;
	unsigned ns = __atomic_load_n(&g_flush_ns, __ATOMIC_RELAXED);
	if (ns && lines)
		spin_ns((uint64_t)ns * lines);
}

void cpu_flush(const void *p, size_t n)
{
	if (n == 0)
		return;
	lines_flush((const char *)((uintptr_t)p & ~(kLine - 1)),
		    (const char *)p + n);
	account_flush(p, n);
}

void cpu_flush_all(const piece *v, size_t k)
{
	size_t lines = 0;
	for (size_t i = 0; i < k; i++) {
		if (v[i].n == 0)
			continue;
		uintptr_t a = (uintptr_t)v[i].p & ~(kLine - 1);
		lines_flush((const char *)a, (const char *)v[i].p + v[i].n);
		lines += lines_of(v[i].p, v[i].n);
	}
	tl_lines += lines;
	unsigned ns = __atomic_load_n(&g_flush_ns, __ATOMIC_RELAXED);
	if (ns && lines)
		spin_ns((uint64_t)ns * lines);
}

namespace {

/* n words from s to d (8-aligned) with non-temporal stores: 16 bytes at a
 * time (SSE2 movntdq, every x86-64 has it) once d is 16-aligned, a word
 * at a time (movnti) before and after.  Returns d past the last word. */
long long *stream_words(long long *d, const char *s, size_t n)
{
	for (; n && ((uintptr_t)d & 15); n--, s += 8) {
		long long w;
		__builtin_memcpy(&w, s, 8);
		__builtin_ia32_movnti64(d++, w);
	}
	for (; n >= 8; n -= 8, s += 64, d += 8) { /* a line per iteration */
		const __m128i *q = (const __m128i *)s;
		__m128i a0 = _mm_loadu_si128(q), a1 = _mm_loadu_si128(q + 1);
		__m128i a2 = _mm_loadu_si128(q + 2), a3 = _mm_loadu_si128(q + 3);
		_mm_stream_si128((__m128i *)d, a0);
		_mm_stream_si128((__m128i *)d + 1, a1);
		_mm_stream_si128((__m128i *)d + 2, a2);
		_mm_stream_si128((__m128i *)d + 3, a3);
	}
	for (; n >= 2; n -= 2, s += 16, d += 2)
		_mm_stream_si128((__m128i *)d, _mm_loadu_si128((const __m128i *)s));
	if (n) {
		long long w;
		__builtin_memcpy(&w, s, 8);
		__builtin_ia32_movnti64(d++, w);
	}
	return d;
}

} // namespace

/* Up to this many bytes, stream() stores and writes back with clwb or
 * clflushopt: `bench/kv_mnemo` records of 1-2 lines commit 15% faster
 * that way than with movnti (partly filled write-combining buffers are
 * costly), and movnti wins from about 8 lines on (1 KiB values: 7%). */
constexpr size_t kSmallStream = 512;

void nt_stream(void *dst, const piece *v, unsigned k)
{
	size_t total = 0;
	for (unsigned i = 0; i < k; i++)
		total += v[i].n;
	if (total <= kSmallStream && g_insn != insn::clflush) {
		/* Pieces are words (records): copied a word at a time, no
		 * call to memcpy. */
		char *c = (char *)dst;
		for (unsigned i = 0; i < k; i++) {
			const char *s = (const char *)v[i].p;
			size_t b = 0;
			for (; b + 32 <= v[i].n; b += 32)
				__builtin_memcpy(c + b, s + b, 32);
			for (; b < v[i].n; b += 8)
				__builtin_memcpy(c + b, s + b, 8);
			c += v[i].n;
		}
		cpu_flush(dst, total);
		return;
	}
	auto *d = (long long *)dst;
	for (unsigned i = 0; i < k; i++)
		d = stream_words(d, (const char *)v[i].p, v[i].n / 8);
	account_flush(dst, (size_t)((char *)d - (char *)dst));
}

void account_fence()
{
	tl_fences++;
	unsigned ns = __atomic_load_n(&g_fence_ns, __ATOMIC_RELAXED);
	if (ns)
		spin_ns(ns);
}

const char *flush_instruction()
{
	switch (g_insn) {
	case insn::clwb:
		return "clwb";
	case insn::clflushopt:
		return "clflushopt";
	default:
		return "clflush";
	}
}

void emul_set(unsigned flush_ns, unsigned fence_ns)
{
	__atomic_store_n(&g_flush_ns, flush_ns, __ATOMIC_RELAXED);
	__atomic_store_n(&g_fence_ns, fence_ns, __ATOMIC_RELAXED);
}

namespace {

/* The latency emulator is configured once at load; mnemo_emul_set()
 * changes it later. */
__attribute__((constructor)) void emul_from_env()
{
	emul_set(config_ns("MNEMO_EMUL_FLUSH_NS"),
		 config_ns("MNEMO_EMUL_FENCE_NS"));
}

} // namespace

uint64_t stat_get(unsigned which)
{
	return which == 0 ? tl_lines : which == 1 ? tl_fences : 0;
}

void stat_reset()
{
	tl_lines = tl_fences = 0;
}

} // namespace mnemo::scm
