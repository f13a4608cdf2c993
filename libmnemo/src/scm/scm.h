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

#include <cstddef>
#include <cstdint>
#include <memory>

namespace mnemo::scm {

inline constexpr size_t kLine = 64;
inline constexpr size_t kPage = 4096;

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
};

/* Read MNEMO_BACKEND / MNEMO_DURABILITY into cfg where `flags` (the
 * MNEMO_BACKEND_* bits) leave the choice open; *autodetect means "dax if
 * the file supports MAP_SYNC, else file" (open_dax fails with ENODEV on a
 * file that does not).  Returns 0 or a negative code with a message. */
int config_from(unsigned flags, config *cfg, bool *autodetect);

class device {
public:
	virtual ~device() = default;
	/* pre: off and len are page multiples, [off, off+len) lies inside the
	 * window and is not mapped.  Maps the file range at base + off. */
	virtual int map(uint64_t off, size_t len) = 0;
	/* pre: [off, off+len) was mapped by map().  Leaves it reserved and
	 * inaccessible. */
	virtual int unmap(uint64_t off, size_t len) = 0;
	/* Write back the lines of [p, p+n); pre: inside this device's window. */
	virtual void flush(const void *p, size_t n) = 0;
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
	/* In a fork child: make every page of the window a private copy, so
	 * that nothing the child writes reaches the pool file. */
	virtual void make_private();

	char *base() const { return base_; }
	size_t window() const { return window_; }
	int fd() const { return fd_; }

protected:
	char *base_ = nullptr;
	size_t window_ = 0;
	int fd_ = -1;       /* the pool file (owned by the pool) */
	int map_flags_ = 0; /* extra mmap flags of shared mappings */
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
/* device::stream by non-temporal stores (movnti), counted and charged. */
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

/* ---- registry of open windows (scm.cc) ---- */
bool register_window(device *d); /* false: table full */
void unregister_window(device *d);

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
/* fork child: every window and alias private, pool locks released. */
void make_all_private(device **windows, int n);

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

/* ---- reservation helpers (reserve.cc) ---- */
/* Reserve [base, base+len) inaccessible, refusing to replace anything. */
int reserve(void *base, size_t len);
/* Turn [p, p+len) back into inaccessible reserved space. */
int unreserve_to_none(void *p, size_t len);

} // namespace mnemo::scm

#endif
