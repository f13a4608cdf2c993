/*
 * scm.h -- the SCM access layer: the only code that touches mmap, libpmem2
 * and cache-flush instructions.
 *
 * A `device` is one opened pool file mapped inside one reserved window of
 * virtual address space [base, base + window).  Backends (one file each):
 *
 *   scm_file.cc  any regular file; durability "process" (ordered stores in
 *                the page cache survive a process crash) or "power" (every
 *                fence msyncs the pages flushed since the last fence).
 *   scm_dax.cc   DAX file through libpmem2 with MAP_SYNC; flush + fence.
 *   scm_sim.cc   power-failure simulation for tests: only lines flushed and
 *                then fenced reach the file; a crash drops (or tears at 8-byte
 *                granularity) everything else.
 *   scm_kmod.cc  a region of the kernel module mnemo.ko backed by the file
 *                (MNEMO_BACKEND=kmod; the file backend without /dev/mnemo).
 *
 * Flushes and fences are counted per thread and charged the emulated SCM
 * latency (flush.cc).  mnemo::scm::fence() is the one persist point of the
 * whole library: every durable ordering goes through it.
 */
#ifndef MNEMO_SCM_H
#define MNEMO_SCM_H

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

struct mnemo_pool; /* the public handle (mnemosyne.h): opaque here */

namespace mnemo::scm {

inline constexpr size_t kLine = 64;
inline constexpr size_t kOsPage = 4096;
inline constexpr size_t kHoleGrain = kOsPage; /* device::set_holes */

enum class kind { file, dax, sim, kmod };

/* Bytes to write one after another (device::stream). */
struct piece {
	const void *p;
	size_t n;
};

struct config {
	kind backend = kind::file;
	bool power = false; /* file backend: durability=power */
	bool pmem = false;  /* file backend: durability=pmem (CPU flushes) */
	bool priv = false;  /* file backend: MAP_PRIVATE (MNEMO_PRIVATE) */
	bool strict = false; /* MNEMO_CHECK=strict: a mirror (strict.cc) */
};

/* Read the backend and durability fields of the open flags into cfg,
 * and MNEMO_BACKEND / MNEMO_DURABILITY where a field is 0; *autodetect
 * means "dax if the file supports MAP_SYNC, else file" (open_dax fails
 * with ENODEV on a file that does not).  0, or -EINVAL with a message
 * (a malformed variable).  pre: check_flags(flags) passed (the public
 * open and create calls check them before touching any file). */
int config_from(unsigned flags, config *cfg, bool *autodetect);
/* 0 if flags has no bit outside MNEMO_CREATE, the backend and the
 * durability fields and each field names something, else -EINVAL with a
 * message.  Checked before a pool call touches any file. */
int check_flags(unsigned flags);

class device {
public:
	virtual ~device() = default;
	/* pre: off and len are page multiples, [off, off+len) lies inside the
	 * window and is not mapped.  Maps the file range at base + off (the
	 * backend's map_range) and records it for fork snapshots. */
	int map(uint64_t off, size_t len);
	/* pre: [off, off+len) was mapped by map().  Leaves it reserved and
	 * inaccessible. */
	int unmap(uint64_t off, size_t len);
	/* Write back the lines of [p, p+n); pre: inside this device's window. */
	virtual void flush(const void *p, size_t n) = 0;
	/* flush() of each of the k pieces (a truncation pass's ranges).  The
	 * default calls flush(); backends whose flush() is cpu_flush() make
	 * it cpu_flush_all(): one call, one count and charge for them all. */
	virtual void flush_all(const piece *v, size_t k);
	/* Write the k pieces one after another from dst and start their
	 * write-back, which the next fence() completes; pre: inside this
	 * window, dst 8-aligned, every piece a multiple of 8 bytes.  The
	 * default is memcpy then flush().  Where the CPU's flushes make lines
	 * durable, non-temporal stores instead: they neither read the lines
	 * nor keep them in the cache, and a write to a line whose clwb is
	 * still in flight (a log's next record) would wait for it.  Counted
	 * as flushed lines, like flush(). */
	virtual void stream(void *dst, const piece *v, unsigned k);
	virtual const char *name() const = 0;
	/* pre: at and len page aligned, [off, off+len) inside the file.  Map
	 * the file range a second time at `at`, replacing what is mapped
	 * there, with the same durability as the window (alias.cc). */
	virtual int map_at(void *at, uint64_t off, size_t len);
	/* The pool file has grown to size bytes (pre: within the window, the
	 * file extended).  0, or a failure (the pool then keeps its size). */
	virtual int grow(uint64_t size) { (void)size; return 0; }
	/* Whether the pool must survive power loss (dax, kmod, file with
	 * durability=power), so file metadata (a new size) needs fdatasync;
	 * else what the page cache survives is enough. */
	virtual bool power_safe() const { return true; }

	/* ---- strict mode (strict.cc) ---- */
	/* Whether a second MAP_SHARED mapping of the file (map_at) sees and
	 * makes the same bytes as the window: false where the window is
	 * private (sim's cache view, MNEMO_PRIVATE) or not the file's
	 * (kmod's pages). */
	virtual bool can_mirror() const { return false; }
	/* Reserve the mirror and register it (pre: nothing mapped yet):
	 * from now on map() maps each range in the mirror too, writable.
	 * -EINVAL with a message if the backend cannot have one. */
	int strict_init();
	/* Make [p, p+n) read-only in the window (pre: page aligned, mapped);
	 * nothing without a mirror.  The library writes it through wr(). */
	int protect(void *p, size_t n);
	bool strict() const { return mirror_ != nullptr; }

	/* ---- fork (fork.cc) ---- */
	/* Whether fork() would share the window with the child (a MAP_SHARED
	 * mapping); false where the kernel copies it on write already (the
	 * sim backend's cache view, a fork child's snapshot). */
	virtual bool shared_window() const { return !snapshot_; }
	/* prepare: copy the mapped part of the window into anonymous memory
	 * (snap_); false if that memory cannot be had. */
	bool snap_prepare();
	/* parent: drop the parent's reference to the copy. */
	void snap_parent();
	/* child: move the copy over the window (or, if there is none, map the
	 * file privately: a view, not a snapshot), and never write the pool
	 * file again. */
	virtual void snap_child();
	/* The layer that knows which pages hold no data (the heap) tells
	 * fork what it need not copy: f(ctx, p) is true if the kHoleGrain
	 * bytes at p (kHoleGrain-aligned) hold nothing a child may read.  f
	 * runs in fork's prepare with map_mu held: it takes no lock. */
	using hole_fn = bool (*)(void *ctx, const char *p);
	void set_holes(hole_fn f, void *ctx);
	/* Whether this is a fork child's snapshot: nothing reaches the file,
	 * and map() fails. */
	bool snapshot() const { return snapshot_; }
	/* The fallback of snap_child: [p, p+n) mapped privately from file
	 * offset off through a new description of the file, which holds no
	 * lock (flock belongs to a description, and a mapping keeps its
	 * description alive); inaccessible if even that fails. */
	void remap_file_private(void *p, size_t n, uint64_t off);

	char *base() const { return base_; }
	size_t window() const { return window_; }
	int fd() const { return fd_; }
	/* Guards mapped_; fork's prepare holds it until the child and parent
	 * handlers release it, so the copy sees a stable set of ranges. */
	std::mutex map_mu;

protected:
	virtual int map_range(uint64_t off, size_t len) = 0;
	void snap_range(uint64_t off, size_t len);
	virtual int unmap_range(uint64_t off, size_t len) = 0;

	char *base_ = nullptr;
	size_t window_ = 0;
	int fd_ = -1;       /* the pool file (owned by the pool) */
	int map_flags_ = 0; /* extra mmap flags of shared mappings */
	std::map<uint64_t, size_t> mapped_; /* window ranges, by offset */
	bool snapshot_ = false;
	hole_fn holes_ = nullptr; /* under map_mu */
	void *holes_ctx_ = nullptr;
	char *snap_ = nullptr; /* prepare's copy of [snap_lo_, +snap_len_) */
	uint64_t snap_lo_ = 0, snap_len_ = 0;
	/* Strict mode: [mirror_, +window_) maps the file writable wherever
	 * the window maps it (map() and unmap() keep them equal); nullptr
	 * otherwise, and in a fork child (whose window is a private copy). */
	char *mirror_ = nullptr;
	friend void strict_forget(device *d, bool child);
};

/*
 * Open a device on `fd` (which the caller keeps open and owns) and reserve
 * [base, base+window).  -EADDRINUSE with a message naming the occupant if any
 * page of the window is already mapped.  The device registers itself so that
 * flush() finds it by address; destroying it unmaps the whole window.
 */
int open_device(int fd, const config &cfg, void *base, size_t window,
		std::unique_ptr<device> *out);

/* Flush [p, p+n) through the device whose window holds p, or with the CPU's
 * flush instruction if none does. */
void flush(const void *p, size_t n);

/* Persist point: order and make durable every line this thread flushed. */
void fence();
/* Flush the line of p at this thread's next fence() (one line is held;
 * holding another flushes the first unless they share a line).  Lets
 * updates to one line by consecutive operations share one flush. */
void flush_later(const void *p);

inline void persist(const void *p, size_t n)
{
	flush(p, n);
	fence();
}

/* Atomic 8-byte store (pre: p 8-aligned).  Not yet flushed. */
inline void store64(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/* ---- flush.cc: instructions, counters, latency emulation ---- */

/* CPU flush of the lines of [p, p+n), counted and charged. */
void cpu_flush(const void *p, size_t n);
/* cpu_flush() of each of the k pieces, counted and charged once. */
void cpu_flush_all(const piece *v, size_t k);
/* device::stream for CPU-flushed memory: non-temporal stores (movnti), or
 * plain stores and line write-backs for short pieces (see flush.cc);
 * counted and charged. */
void nt_stream(void *dst, const piece *v, unsigned k);
/* Count and charge n lines without touching the CPU caches (backends whose
 * durability does not come from cache flushes). */
void account_flush(const void *p, size_t n);
const char *flush_instruction();
void emul_set(unsigned flush_ns, unsigned fence_ns);
/* Calling thread's counters: 0 flushed lines, 1 fences. */
uint64_t stat_get(unsigned which);
void stat_reset();
/* Charge one fence (counter + emulated latency); called by fence(). */
void account_fence();

/* ---- per-thread drain hooks of the backends, run by fence() ---- */
void file_drain_thread();
void sim_drain_thread();

/* Latest msync error of any pool since the last call (0 if none); file
 * backend, durability=power.  Process-wide: a close may report the error of
 * another pool's msync. */
int take_io_error();

/* ---- registry of open windows (scm.cc) ----
 * The one map from an address to its pool: every layer that asks "which
 * pool holds this byte" (flushes, transactions, the heap) asks here. */
inline constexpr int kMaxWindows = 64; /* pools open in one process */
bool register_window(device *d); /* false: table full */
void unregister_window(device *d);
/* Name the pool that owns d's window (nullptr: none).  A window without
 * an owner is found by flushes only: tx sets the owner once the pool's
 * memory may be written transactionally (tx attach), and it is cleared
 * before the pool's state above the pool layer is freed. */
void set_owner(device *d, mnemo_pool *p);
/* Strict mode: the offset of d's mirror from its window (0: none); false
 * if d has no window.  locked: the caller is a fork child, whose registry
 * lock was taken before the fork (see windows_lock). */
bool set_mirror(device *d, intptr_t delta, bool locked = false);
/* The owner of the window holding a, or nullptr; [*lo, *hi) the window. */
mnemo_pool *owner_of(uintptr_t a, uintptr_t *lo, uintptr_t *hi);
/* Moves on at every change of the registry (a window or an owner comes or
 * goes): an answer of owner_of() stays true while this has not moved
 * since before the lookup. */
extern std::atomic<uint64_t> g_windows_gen;
inline uint64_t windows_gen()
{
	return g_windows_gen.load(std::memory_order_acquire);
}
/* f(ctx, p) for the owner of every window, the registry locked: no pool
 * is opened or closed meanwhile.  f must not open or close one. */
void each_owner(void (*f)(void *ctx, mnemo_pool *p), void *ctx);
/* The owners of the open windows (at most max) into out, without the
 * lock, as flushes read it.  pre: none of them closes meanwhile. */
int owners(mnemo_pool **out, int max);
/* fork.cc: lock the registry and list the open windows (at most max);
 * windows_unlock() releases it. */
int windows_lock(device **out, int max);
void windows_unlock();

/* ---- aliases (alias.cc): second mappings of pool pages ---- */
/* Map [off, off+len) of d's file at `at` too, and register the alias so
 * that canon() translates its addresses.  -ENOSPC when the table is full. */
int alias_map(device *d, void *at, uint64_t off, size_t len);
/* Forget the alias starting at `at` (the caller unmaps or reuses it).
 * -ENOENT if there is none. */
int alias_forget(void *at);
/* Whether an alias maps any of the file bytes [off, off+len) of d. */
bool alias_into(const device *d, uint64_t off, size_t len);
/* Forget every alias into d's window (close). */
void alias_forget_device(const device *d);
/* fork (fork.cc): prepare copies each alias of a shared window
 * (alias_snap_prepare, with the alias table locked until parent or child),
 * the child moves the copies in place (alias_snap_child). */
void alias_snap_prepare();
/* fork.cc: [p, p+n) copied into new anonymous memory (nullptr if there is
 * none to be had), and such a copy moved over dst (false if it could not
 * be: the copy is then unmapped). */
char *snap_copy(const char *p, size_t n);
bool snap_move(char *copy, char *dst, size_t n);
void alias_snap_parent();
void alias_snap_child();

extern int g_naliases; /* registered aliases; read without a lock */
uintptr_t canon_slow(uintptr_t a);
/* The window address that `a` aliases, or `a` itself.  Transactions,
 * flushes and settling use it, so a store through an alias is logged and
 * flushed as a store to the region. */
inline uintptr_t canon(uintptr_t a)
{
	return __atomic_load_n(&g_naliases, __ATOMIC_ACQUIRE) ? canon_slow(a)
							      : a;
}

/* ---- strict mode (strict.cc): MNEMO_CHECK=strict ----
 * A strict pool's user data pages (user regions, heap block pages) are
 * read-only in its window, so a plain store from the program faults;
 * the library writes them through the device's mirror.  Every library
 * store to user data goes to wr(p), never to p; flushes and accounting
 * keep the window address (one file, MAP_SHARED: the same lines). */
extern int g_nstrict; /* strict windows open; read without a lock */
char *wr_slow(char *p);
/* The mirror address of window address p of a strict pool, else p. */
template <class T> inline T *wr(T *p)
{
	if (__builtin_expect(!__atomic_load_n(&g_nstrict, __ATOMIC_RELAXED),
			     1))
		return p;
	return (T *)wr_slow((char *)p);
}
/* Forget d's mirror (close; a fork child, which takes no lock): unmapped
 * and no longer translated. */
void strict_forget(device *d, bool child = false);
/* The strict device whose window holds a, or nullptr.  Lock-free and
 * async-signal-safe (the SIGSEGV handler uses it). */
device *strict_device_of(uintptr_t a);
/* One OS page of a strict window read-only (ro) or writable again;
 * whether mprotect did it (ENOMEM: too many mappings).
 * Async-signal-safe (mprotect only).  pre: p page aligned, mapped. */
bool page_protect(void *p, bool ro);
/* The parse of $MNEMO_CHECK: off (default) or strict; -EINVAL with a
 * message for anything else. */
int check_from_env(bool *strict);

/* ---- reservation helpers (reserve.cc) ---- */
/* Reserve [base, base+len) inaccessible, refusing to replace anything. */
int reserve(void *base, size_t len);
/* Turn [p, p+len) back into inaccessible reserved space. */
int unreserve_to_none(void *p, size_t len);

} // namespace mnemo::scm

#endif
