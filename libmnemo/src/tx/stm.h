/*
 * stm.h -- the transaction engine shared by the three ways in (the C API in
 * api/tx.cc, the C++ wrappers over it, and the GCC TM ABI in tx/itm.cc).
 *
 * Concurrency control is TinySTM-like: a global version clock and a table
 * of versioned stripe locks; writes lock their stripe at encounter time and
 * are buffered in the write set (lazy versioning); reads are validated
 * against the snapshot version rv, which is extended when possible.  The
 * clock follows TL2's GV5: a commit takes wv = clock + 1 without moving
 * it, and a transaction that meets a newer stripe moves it (extend()).
 * Durability is a redo log: at commit the transaction's writes inside its
 * pool become one record of the thread's log (txlog.cc), which is durable
 * after one fence; only then are they written in place and the locks
 * released, so no other transaction ever reads a value that a crash could
 * take back.
 *
 * Lock word: bit 0 set = locked, and the rest is the owner's desc address;
 * clear = version << 1, the wv of the last commit that wrote the stripe.
 */
#ifndef MNEMO_TX_STM_H
#define MNEMO_TX_STM_H

#include <atomic>
#include <csetjmp>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "scm/scm.h"
#include "tx/wset.h"

struct mnemo_pool;

namespace mnemo::tx {

/* How a conflict gets back to the start of the transaction. */
enum class mode {
	plain, /* return -EAGAIN from every later call */
	frame, /* longjmp to the MNEMO_TX block's jmp_buf */
	itm,   /* return again from _ITM_beginTransaction */
};

/* Registers saved by _ITM_beginTransaction (itm_x86_64.S). */
struct itm_jmpbuf {
	uint64_t cfa, rbx, rbp, r12, r13, r14, r15, rip;
};

struct read_entry {
	uint32_t stripe;
	uint64_t version;
};

struct lock_entry {
	uint32_t stripe;
	uint64_t word; /* the unlocked word before we took it */
};

struct undo_entry { /* _ITM_L*: bytes restored on abort */
	void *addr;
	size_t len;
	size_t off; /* into undo_bytes */
};

inline constexpr uint64_t kIdle = ~0ull;

/* ---- durable bits: how heap operations join a transaction ----
 * The heap (a layer above) gives the transaction one bit_op per block
 * whose durable allocation bit changes at commit.  The commit record
 * names the bit's word (entry kind kTxHeapSet/kTxHeapClear, layout.h);
 * once the record is durable, the commit calls apply(), and an abort
 * calls unreserve().  tx knows the word and the bit; the rest is the
 * heap's, behind `page`. */
struct bit_op {
	void *page;   /* the heap's page descriptor: opaque here */
	unsigned bit; /* block index in the page */
	bool set;     /* allocation (true) or free */
	bool fresh;   /* allocated and freed by this transaction: no durable
		       * change; the block is reused only after truncation,
		       * as the record may hold writes into it */
};

struct bit_hooks {
	uint64_t *(*word)(const bit_op &o); /* the durable word of o's bit */
	void (*apply)(const bit_op &o, uint64_t wv); /* commit, in place */
	void (*unreserve)(const bit_op &o);          /* abort */
	/* Recovery: whether addr is a bitmap word of p (a record naming
	 * anything else as a heap entry is corrupt). */
	bool (*word_ok)(mnemo_pool *p, uint64_t addr);
	/* Open: hand add() every range of p that records must not name
	 * (the heap's headers). */
	void (*protected_ranges)(mnemo_pool *p,
				 void (*add)(void *, uint64_t, uint64_t),
				 void *arg);
};

/* Install the heap's hooks: before every pool_attach (api/pool.cc), each
 * time with the same table.  Every use needs an attached pool, so it
 * follows the first store. */
void set_bit_hooks(const bit_hooks *h);
extern std::atomic<const bit_hooks *> g_bit_hooks;
inline const bit_hooks *hooks()
{
	return g_bit_hooks.load(std::memory_order_acquire);
}

/* A growable array of words whose new words are not zeroed: the commit
 * record is rebuilt at every commit, every word of it written once. */
class word_buf {
public:
	word_buf() = default;
	word_buf(const word_buf &) = delete;
	word_buf &operator=(const word_buf &) = delete;
	~word_buf() { delete[] p_; }
	uint64_t *data() { return p_; }
	const uint64_t *data() const { return p_; }
	size_t size() const { return n_; }
	uint64_t &operator[](size_t i) { return p_[i]; }
	uint64_t operator[](size_t i) const { return p_[i]; }
	void clear() { n_ = 0; }
	/* k more words, their values unspecified: the first of them. */
	uint64_t *grow(size_t k)
	{
		if (n_ + k > cap_)
			realloc_to(n_ + k);
		uint64_t *w = p_ + n_;
		n_ += k;
		return w;
	}
	void push_back(uint64_t w) { *grow(1) = w; }

private:
	void realloc_to(size_t need)
	{
		size_t c = cap_ * 2 > need ? cap_ * 2 : need < 64 ? 64 : need;
		uint64_t *q = new uint64_t[c]; /* default-initialised */
		if (n_)
			__builtin_memcpy(q, p_, n_ * 8);
		delete[] p_;
		p_ = q;
		cap_ = c;
	}
	uint64_t *p_ = nullptr;
	size_t n_ = 0, cap_ = 0;
};

struct tx_desc {
	int depth = 0;
	mode m = mode::plain;
	int status = 0; /* plain mode: the code of the failure, 0 if none */
	bool irrevocable = false;
	uint64_t rv = 0;
	/* A clock value this thread has seen (its last rv, or wv - 1): the
	 * next transaction starts from it instead of reading the clock,
	 * whose line another thread may have just written.  Any clock value
	 * once read is a valid snapshot (not wv, which the clock may not
	 * reach yet); a read of a newer stripe extends it (extend()). */
	uint64_t seen = 0;
	std::jmp_buf *jb = nullptr; /* frame mode */
	itm_jmpbuf ijb{};           /* itm mode */

	wset ws;
	std::vector<read_entry> rs;
	std::vector<lock_entry> locks;
	std::vector<undo_entry> undo;
	std::vector<char> undo_bytes;
	std::vector<void *> allocs, frees;
	std::vector<bit_op> hops; /* durable heap bits changed at commit */
	/* Plain stores into blocks this transaction allocated (the heap's
	 * zeroing or copying, the program's own, flushed with mnemo_flush)
	 * must be durable before the record, which an early write-back can
	 * make durable before the commit's own fence: a transaction that
	 * allocated fences once before writing its record (the guarantee of
	 * mnemo_heap_alloc(3), which the C++ containers build on). */
	bool fence_first = false;
	/* Strict mode: OS pages of blocks this transaction allocated, which
	 * the SIGSEGV handler made writable for the program's plain stores
	 * into them (a constructor's, api/strict.cc); read-only again when
	 * the transaction ends (clear).  Written by this thread only. */
	static constexpr unsigned kStrictPages = 64;
	uintptr_t strict_pages[kStrictPages];
	unsigned strict_npages = 0;
	word_buf rec; /* commit record under construction */
	std::vector<const wentry *> sorted; /* durable entries, by address */
	/* The record's entries as built: the bytes its commit writes in
	 * place, which a truncation pass writes back. */
	std::vector<scm::piece> ranges;
	struct action {
		void (*fn)(void *);
		void *arg;
	};
	std::vector<action> on_commit, on_undo; /* _ITM_addUser*Action */

	/* The pool the durable writes go to (fixed by the first one). */
	mnemo_pool *pool = nullptr;
	uintptr_t pool_lo = 0, pool_hi = 0;
	/* The last window classify() looked up, kept across transactions:
	 * its owner while the registry has not moved from hint_gen. */
	mnemo_pool *hint_pool = nullptr;
	uintptr_t hint_lo = 0, hint_hi = 0;
	uint64_t hint_gen = 0;
	/* txlog.cc's cache: the log this thread owns in the pool whose
	 * state has id log_pool_id, and the ring words in use after the last
	 * append. */
	uint64_t log_pool_id = 0;
	void *log_slot = nullptr;
	size_t log_used = 0;

	/* wv of the commit between taking the clock and releasing its locks
	 * (kIdle otherwise): truncation keeps every record from it on. */
	std::atomic<uint64_t> busy{kIdle};
	/* Frame mode: why the last longjmp left the block. */
	int jump_err = 0;
	bool jumped = false;
	unsigned retries = 0;
	/* The stripe whose lock made the last attempt fail, and the word
	 * it held then (contended_word 0: none); see note_conflict(). */
	uint32_t contended = 0;
	uint64_t contended_word = 0;
	uint64_t commits = 0, aborts = 0;
	uint64_t seed;
};

/* This thread's counts of locked read-modify-write instructions (stripe
 * locks, the publication of busy, moves of the clock, log locks: see
 * counted_guard) and of writes to cache lines other threads' commits
 * write too (the clock when it moves, stripe-lock lines, the pool's settle
 * flag): MNEMO_STAT_TX_ATOMICS and MNEMO_STAT_TX_SHARED_LINES.  Counted
 * where they happen.  (The pass also takes log locks that are the owners'
 * own lines: counted as atomics, not as shared lines.) */
extern __thread uint64_t tl_atomics __attribute__((tls_model("initial-exec")));
extern __thread uint64_t tl_shared_lines
	__attribute__((tls_model("initial-exec")));

/* refs.cc: strict mode's count of durable words that point into
 * volatile memory (MNEMO_STAT_STRICT_REFS), and the check at commit that
 * reports them (pre: d's pool is strict, its write set still full). */
extern __thread uint64_t tl_strict_refs
	__attribute__((tls_model("initial-exec")));
void check_refs(tx_desc *d);
/* Make d's strict_pages read-only again, and forget them. */
void strict_close_pages(tx_desc *d);

/* Locked instructions of one lock and unlock of M: 2 for std::mutex,
 * M::kAtomics where M says. */
template <class M> constexpr int atomics_of()
{
	if constexpr (requires { M::kAtomics; })
		return M::kAtomics;
	else
		return 2;
}

/* A lock_guard that counts its mutex's locked instructions in
 * tl_atomics. */
template <class M> class counted_guard {
public:
	explicit counted_guard(M &m) : m_(m)
	{
		m_.lock();
		tl_atomics += atomics_of<M>();
	}
	~counted_guard() { m_.unlock(); }
	counted_guard(const counted_guard &) = delete;
	counted_guard &operator=(const counted_guard &) = delete;

private:
	M &m_;
};

/* The calling thread's descriptor, if self() created it: nullptr means no
 * transaction is open.  (__thread: no dynamic initialisation, so no TLS
 * wrapper call; initial-exec: no __tls_get_addr call from the .so.) */
extern __thread tx_desc *tl_desc __attribute__((tls_model("initial-exec")));
inline tx_desc *self_if() { return tl_desc; }
/* Create the calling thread's descriptor. */
tx_desc *self_create();
/* The calling thread's descriptor (created on first use): every API call
 * starts here, so the common case is one TLS load. */
inline tx_desc *self()
{
	tx_desc *d = tl_desc;
	return d ? d : self_create();
}

/* Begin (or join) a transaction.  `jb` is the frame's jmp_buf (frame mode)
 * or nullptr. */
int begin(tx_desc *d, mode m, std::jmp_buf *jb);
/* Commit the outermost level; inner levels only count down. */
int commit(tx_desc *d);
/* Explicit abort: roll back everything, depth 0 (longjmps in frame and
 * itm modes). */
void user_abort(tx_desc *d);

/* For a commit whose record (built, not yet appended) does not fit its
 * log: a wv above every record the log holds, which the commit may share
 * (take_wv), so that passes can empty the log while this commit is busy
 * (txlog.cc, "Room for a record").  Moves the clock, validates again and
 * sets busy and the record's wv: 0, or -EAGAIN (locks still held). */
int retake_wv(tx_desc *d);

/* A failure inside the transaction: plain mode remembers `err` and rolls
 * back (returns err); frame and itm modes restart or leave (no return). */
int fail_tx(tx_desc *d, int err);

/* Accesses; return 0 or a negative code (already passed to fail_tx). */
int load(tx_desc *d, void *dst, const void *src, size_t n);
int store(tx_desc *d, void *dst, const void *src, size_t n);
int set(tx_desc *d, void *dst, int c, size_t n);
/* load() of N bytes (1, 2, 4 or 8) for the value forms, with a fast path
 * for the commonest case (stm.cc). */
template <size_t N> int load_value(tx_desc *d, void *dst, const void *src);

/* A transactional free of the block [p, p+n): lock its stripes as a write
 * would, so that the commit moves their versions to its wv and a reader
 * that still holds a pointer into the block fails instead of reading
 * what the block's next owner writes with plain stores (opacity; see
 * stm.cc).  0, or -EAGAIN on conflict (not yet passed to fail_tx). */
int lock_block(tx_desc *d, const void *p, size_t n);

/* Switch to serial-irrevocable mode: every other transaction waits. */
int go_irrevocable(tx_desc *d);

/* Report a failure that cannot be returned (itm mode) and abort. */
[[noreturn]] void fatal(int err);

/* itm.cc: return again from the outermost _ITM_beginTransaction, to run
 * the (already rolled back) transaction again, or to skip it. */
[[noreturn]] void itm_retry(tx_desc *d);
[[noreturn]] void itm_cancel(tx_desc *d);

/* The transaction's durable writes go to pool p (a heap operation):
 * 0, or -EXDEV if they already go elsewhere.  Does not fail the tx. */
int heap_pool(tx_desc *d, mnemo_pool *p);

/* Tracking of volatile allocations made inside the transaction. */
void *tx_malloc(tx_desc *d, size_t n);
void tx_free(tx_desc *d, void *p);
/* _ITM_L*: save [p, p+n) so that an abort restores it. */
void log_undo(tx_desc *d, const void *p, size_t n);

} // namespace mnemo::tx

#endif
