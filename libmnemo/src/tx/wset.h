/*
 * wset.h -- a transaction's write set: buffered 64-byte chunks (one per
 * stripe lock, a cache line), found by address in O(1) so that reads see
 * the transaction's own writes.  Chunks keep ranges cheap: a 1 KiB store
 * is 16 or 17 entries, not 128 words.
 *
 * Invariants: each aligned chunk address appears at most once; `mask` has a
 * bit per byte of `val` the transaction wrote (bit i = byte i); the index
 * is an open-addressing table of entry numbers, at most half full, whose
 * slots are valid only if their generation equals gen_ (clearing is O(1)).
 */
#ifndef MNEMO_TX_WSET_H
#define MNEMO_TX_WSET_H

#include <cstdint>
#include <vector>

namespace mnemo::tx {

inline constexpr size_t kChunk = 64;
inline constexpr uint64_t kFullMask = ~0ull;

/* The mask bits of bytes [off, off+n) of a chunk; pre: off + n <= kChunk. */
inline uint64_t byte_mask(size_t off, size_t n)
{
	return n >= 64 ? kFullMask : (((uint64_t)1 << n) - 1) << off;
}

/* memcpy of at most kChunk bytes, inlined: the engine copies a chunk or
 * less at a time (reads, buffered writes, records, write-back), where a
 * call to memcpy costs more than the copy.  Two possibly overlapping
 * moves of the largest power of two <= n cover every n. */
inline void copy_small(void *dst, const void *src, size_t n)
{
	char *d = (char *)dst;
	const char *s = (const char *)src;
	if (n >= 32) {
		if (n == 64) {
			__builtin_memcpy(d, s, 64);
			return;
		}
		__builtin_memcpy(d, s, 32);
		__builtin_memcpy(d + n - 32, s + n - 32, 32);
	} else if (n >= 16) {
		__builtin_memcpy(d, s, 16);
		__builtin_memcpy(d + n - 16, s + n - 16, 16);
	} else if (n >= 8) {
		__builtin_memcpy(d, s, 8);
		__builtin_memcpy(d + n - 8, s + n - 8, 8);
	} else if (n >= 4) {
		__builtin_memcpy(d, s, 4);
		__builtin_memcpy(d + n - 4, s + n - 4, 4);
	} else {
		for (size_t i = 0; i < n; i++)
			d[i] = s[i];
	}
}

/* 128 bytes: entries are found by shifts, not multiplies.  Padded, not
 * over-aligned: with alignas(128) the vector allocates with aligned new,
 * and LeakSanitizer reported the write set's block as leaked at exit
 * (examples/tm_bank, ASan build). */
struct wentry {
	/* Members are set by wset::insert; val is written before it is
	 * read (mask says which bytes), so it is left uninitialised. */
	wentry() noexcept {}
	char val[kChunk];
	uint64_t addr;  /* kChunk-aligned */
	uint64_t mask;
	bool durable;   /* inside the transaction's pool: logged */
	char pad[128 - kChunk - 17];
};
static_assert(sizeof(wentry) == 128, "entries are found by shifts");

class wset {
public:
	bool empty() const { return n_ == 0; }
	size_t size() const { return n_; }
	/* The entries, in insertion order. */
	struct view {
		wentry *b, *e;
		wentry *begin() const { return b; }
		wentry *end() const { return e; }
	};
	view entries() { return {e_.data(), e_.data() + n_}; }

	wentry *find(uint64_t addr)
	{
		if (n_ == 0)
			return nullptr;
		for (size_t i = hash(addr);; i = (i + 1) & mask_) {
			const bucket &s = idx_[i];
			if (s.gen != gen_)
				return nullptr;
			if (e_[s.entry].addr == addr)
				return &e_[s.entry];
		}
	}

	/* The entry of `addr`, created (mask 0) if absent.  Small enough to
	 * inline (a kilobyte's store is 16 or 17 of these): the rare paths
	 * are calls. */
	[[gnu::always_inline]] wentry *insert(uint64_t addr, bool durable)
	{
		if ((n_ + 1) * 2 > mask_ + 1) [[unlikely]]
			grow();
		size_t i = hash(addr);
		for (;; i = (i + 1) & mask_) {
			bucket &s = idx_[i];
			if (s.gen != gen_)
				break;
			if (e_[s.entry].addr == addr)
				return &e_[s.entry];
		}
		idx_[i] = {gen_, n_};
		if (n_ == e_.size()) [[unlikely]] /* clear() keeps storage */
			more();
		wentry &e = e_[n_++];
		e.addr = addr;
		e.mask = 0;
		e.durable = durable;
		return &e;
	}

	void clear()
	{
		n_ = 0;
		if (++gen_ == 0) { /* wrapped: old slots could look valid */
			for (bucket &s : idx_)
				s.gen = 0;
			gen_ = 1;
		}
	}

private:
	struct bucket {
		uint32_t gen, entry;
	};

	size_t hash(uint64_t addr) const
	{
		return (size_t)(((addr / kChunk) * 0x9e3779b97f4a7c15ull) >>
				(64 - bits_));
	}

	[[gnu::noinline]] void more() { e_.emplace_back(); }

	[[gnu::noinline]] void grow()
	{
		bits_ = bits_ == 0 ? 6 : bits_ + 1;
		idx_.assign((size_t)1 << bits_, bucket{0, 0});
		mask_ = idx_.size() - 1;
		gen_ = 1;
		for (uint32_t k = 0; k < n_; k++) {
			size_t i = hash(e_[k].addr);
			while (idx_[i].gen == gen_)
				i = (i + 1) & mask_;
			idx_[i] = {gen_, k};
		}
	}

	/* e_[0, n_) are the entries; e_ beyond n_ is storage for later
	 * transactions (wentry needs no destruction). */
	std::vector<wentry> e_;
	uint32_t n_ = 0;
	std::vector<bucket> idx_;
	size_t mask_ = ~(size_t)0; /* idx_.size() - 1; (n_ + 1) * 2 > 0 */
	uint32_t gen_ = 1;
	unsigned bits_ = 0;
};

} // namespace mnemo::tx

#endif
