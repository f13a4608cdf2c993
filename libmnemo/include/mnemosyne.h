/*
 * mnemosyne.h -- the C ABI of libmnemo, lightweight persistent memory.
 *
 * Conventions (every function below follows them):
 *  - The one error rule: a function that can fail says so by its return
 *    type.  int: 0 (or a count, where documented) on success, a negative
 *    errno-style code (-EINVAL, -ENOSPC, ...) on failure.  A pointer: NULL
 *    with errno set.  Either way mnemo_errormsg() then describes the
 *    calling thread's last failure in words.  The exceptions, which
 *    mnemosyne(7) lists under ERRORS, are calls that cannot report that
 *    way: pfree (void: errno, the message, and a line on stderr), the
 *    transactional value forms mnemo_tx_get and mnemo_tx_set (the
 *    transaction's status: mnemo_tx_status, and its commit returns it),
 *    the foreach calls (return the callback's nonzero value as it is),
 *    queries (sizes, counts, names, mnemo_tx_depth) that answer 0, NULL
 *    or "none" for a NULL handle or a pointer that is not a block, and
 *    mnemo_tx_status, which returns a transaction's code without failing.
 *  - Constructors take a T ** and fill it; destructors take a T ** and set it
 *    to NULL.
 *  - Nothing here aborts on bad input.
 *
 * See mnemosyne(7) for the model and the MNEMO_* environment variables, and
 * mnemosyne-format(5) for the on-media format.
 */
#ifndef MNEMOSYNE_H
#define MNEMOSYNE_H 1

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MNEMO_VERSION_MAJOR 0
#define MNEMO_VERSION_MINOR 1

/* Place a global in the mnemo_persistent section.  Under the interposer
 * (LD_PRELOAD=libmnemo-preload.so, see libmnemo-preload(7)) the section is
 * bound to a region of the pool, so the variable keeps its value across
 * runs; without it the variable is an ordinary (volatile) global.  A
 * program needs only this header, no link against libmnemo. */
#define MNEMO_PERSISTENT __attribute__((section("mnemo_persistent")))

typedef struct mnemo_pool mnemo_pool;
typedef struct mnemo_rawl mnemo_rawl;

/* ---- errors ------------------------------------------------------------ */

/* Message for the calling thread's last failure; never NULL. */
const char *mnemo_errormsg(void);

/* ---- pools ------------------------------------------------------------- */

/* Flags for mnemo_pool_create() and mnemo_pool_open(): MNEMO_CREATE, one
 * backend and one durability.  A field left 0 is chosen by $MNEMO_BACKEND
 * or $MNEMO_DURABILITY (see mnemosyne(7)), else as described; a bit
 * outside these fields, or a value no backend has, is -EINVAL. */
#define MNEMO_CREATE           0x0001u /* open: create the pool if missing */
#define MNEMO_BACKEND_AUTO     0x0000u /* dax if the file supports MAP_SYNC, else file */
#define MNEMO_BACKEND_FILE     0x0010u /* any regular file */
#define MNEMO_BACKEND_DAX      0x0020u /* file on a DAX filesystem (MAP_SYNC) */
#define MNEMO_BACKEND_SIM      0x0030u /* power-failure simulation, for tests */
#define MNEMO_BACKEND_KMOD     0x0040u /* /dev/mnemo (mnemo.ko, see mnemo.ko(4)) */
#define MNEMO_BACKEND_MASK     0x00f0u
/* Durability of the file backend (the others are power-safe by nature). */
#define MNEMO_DURABILITY_DEFAULT 0x0000u /* process */
#define MNEMO_DURABILITY_POWER   0x0100u /* msync at every fence */
#define MNEMO_DURABILITY_PROCESS 0x0200u /* survives the process, not power loss */
#define MNEMO_DURABILITY_PMEM    0x0300u /* CPU cache flushes, as on pmem */
#define MNEMO_DURABILITY_MASK    0x0f00u
/* mnemo_pool_open: read the pool file and never write it.  It is opened
 * read-only and mapped privately, so recovery and every later store stay
 * in this process (for inspection: mnemoctl check).  The file backend
 * only; the pool cannot grow. */
#define MNEMO_PRIVATE          0x1000u
/* mnemo_pool_open: strict mode, as MNEMO_CHECK=strict (see mnemosyne(7)):
 * the pool's user data is read-only to the program, so a plain store to
 * it (one that bypasses the library) faults and is reported; commits
 * report stored pointers into volatile memory.  File and dax backends. */
#define MNEMO_CHECK_STRICT     0x2000u
/* Exit status of a process crashed by MNEMO_SIM_CRASH_AT (sim backend). */
#define MNEMO_SIM_CRASH_EXIT   86

#define MNEMO_POOL_MIN_SIZE    ((size_t)1 << 20)
#define MNEMO_POOL_MAX_SIZE    ((size_t)1 << 44) /* 16 TiB */

/*
 * Create a pool file of `size` bytes (fully allocated now), mode 0600,
 * mapped at `addr` (NULL: the library picks a free, stable address) and open
 * it.  Fails with -EEXIST if `path` exists.
 */
int mnemo_pool_create(const char *path, size_t size, void *addr,
                      unsigned flags, mnemo_pool **poolp);

/*
 * Open an existing pool, recovering it if the last user crashed.  `path`
 * NULL means $MNEMO_POOL, else the default pool (see mnemosyne(7)).  With
 * MNEMO_CREATE a missing pool is created with $MNEMO_POOL_SIZE bytes
 * (default 64 MiB).
 */
int mnemo_pool_open(const char *path, unsigned flags, mnemo_pool **poolp);

/* Unmap and unlock the pool; *poolp becomes NULL. */
int mnemo_pool_close(mnemo_pool **poolp);

/* Remove a pool file; fails with -EBUSY if any process has it open. */
int mnemo_pool_delete(const char *path);

/* Path of the default pool as the next mnemo_pool_open(NULL) would use. */
const char *mnemo_pool_default_path(void);

/* Address of byte 0 of the pool, its current size (it grows on demand),
 * its growth limit (addresses [base, base + max) are the pool's while it
 * is open), and its backend's name. */
void *mnemo_pool_base(const mnemo_pool *pool);
size_t mnemo_pool_size(const mnemo_pool *pool);
size_t mnemo_pool_max(const mnemo_pool *pool);
const char *mnemo_pool_backend(const mnemo_pool *pool);

/* What mnemo_pool_info() reports.  Like mnemo_heap_stats, it grows by
 * appending fields: pass sizeof(struct mnemo_pool_info). */
struct mnemo_pool_info {
	uint32_t format_major; /* on-media format of the pool */
	uint32_t format_minor;
	uint8_t uuid[16];      /* random at creation */
	uint64_t base;         /* mnemo_pool_base() */
	uint64_t size;         /* mnemo_pool_size() */
	uint64_t max;          /* mnemo_pool_max(): the growth limit */
	uint64_t align;        /* region sizes are multiples of it */
	uint64_t region_bytes; /* bytes of live regions (libmnemo's included) */
	uint32_t region_slots; /* size of the region table */
	uint32_t regions;      /* live regions (libmnemo's included) */
	uint32_t root_slots;   /* size of the named-root table */
	uint32_t roots;        /* bound roots */
	uint64_t create_time;  /* seconds since the epoch */
};
/* Fill *info (size: sizeof(*info)); -EINVAL if size is smaller than
 * version 0.1's struct. */
int mnemo_pool_info(mnemo_pool *pool, struct mnemo_pool_info *info,
		    size_t size);

/* ---- regions ----------------------------------------------------------- */

#define MNEMO_NAME_MAX 63 /* longest region, root or log name, in bytes */

/*
 * Create a zero-filled region of `size` bytes (rounded up to the page size)
 * and map it; its address never changes across runs.  `name` may be NULL;
 * a non-NULL name must be unique and can be looked up again with
 * mnemo_region_find().  -ENOSPC when the pool has no room.
 */
int mnemo_region_create(mnemo_pool *pool, const char *name, size_t size,
                        void **addrp);

/* Find a named region: its address and size. -ENOENT if there is none. */
int mnemo_region_find(mnemo_pool *pool, const char *name, void **addrp,
                      size_t *sizep);

/* mnemo_region_foreach: list libmnemo's own regions too (heap segments,
 * transaction logs: names starting with "mnemo."). */
#define MNEMO_FOREACH_ALL 1u
typedef int (*mnemo_region_cb)(const char *name, void *addr, size_t size,
			       void *arg);
/* Call cb for each region, by address ("" names an anonymous one); a
 * nonzero return stops the walk and is returned as it is.  The list is
 * taken before the first call, so cb may call the library. */
int mnemo_region_foreach(mnemo_pool *pool, unsigned flags, mnemo_region_cb cb,
			 void *arg);
/* Delete the region starting at `addr`; its pages become inaccessible.
 * -EBUSY while an alias maps any of its pages. */
int mnemo_region_delete(mnemo_pool *pool, void *addr);

/*
 * Map the pages [addr, addr+len) of a region a second time at `at`
 * (page aligned; whatever is mapped there is replaced: the caller owns
 * that range).  Stores through the alias are stores to the region;
 * transactions, mnemo_flush(), mnemo_persist() and mnemo_store64() treat
 * an alias address as the region address it maps.  The interposer binds
 * ELF `mnemo_persistent` sections this way.  At close the alias becomes a
 * private copy.  -EEXIST if it overlaps another alias.
 */
int mnemo_region_alias(mnemo_pool *pool, void *addr, size_t len, void *at);
/* Forget the alias starting at `at`; the caller then unmaps or replaces
 * that memory (stores to it are no longer logged).  -ENOENT if none. */
int mnemo_region_unalias(mnemo_pool *pool, void *at);

/*
 * The paper's calls, on the default pool (opened on first use with
 * MNEMO_CREATE).  pmap: `addr` must be NULL, prot PROT_READ|PROT_WRITE,
 * flags 0; returns the new region or NULL with errno set.  punmap deletes
 * the region at `addr` whose size is `length`.
 */
void *pmap(void *addr, size_t length, int prot, int flags);
int punmap(void *addr, size_t length);

/* The default pool (opened on first use), or NULL with errno set. */
mnemo_pool *mnemo_default_pool(void);

/* ---- named roots -------------------------------------------------------- */

/* Durably bind `name` to `ptr` (atomically replacing an earlier binding). */
int mnemo_root_set(mnemo_pool *pool, const char *name, void *ptr);
/* Look `name` up; -ENOENT if unbound. */
int mnemo_root_get(mnemo_pool *pool, const char *name, void **ptrp);
/* Durably remove the binding of `name`. */
int mnemo_root_delete(mnemo_pool *pool, const char *name);
typedef int (*mnemo_root_cb)(const char *name, void *ptr, void *arg);
/* Call cb for each bound root, as mnemo_region_foreach does. */
int mnemo_root_foreach(mnemo_pool *pool, mnemo_root_cb cb, void *arg);

/* ---- persistence primitives --------------------------------------------- */

/* Write back the cache lines of [addr, addr+len) (no ordering). */
void mnemo_flush(const void *addr, size_t len);
/* Wait until every line this thread flushed is durable. */
void mnemo_fence(void);
/* mnemo_flush() then mnemo_fence(). */
void mnemo_persist(const void *addr, size_t len);
/* Copy len bytes from src to dst (in a pool) as memcpy does, but through
 * the library, which strict mode (MNEMO_CHECK=strict) allows; neither
 * logged nor flushed: for memory no committed state reads (a spare link,
 * a copy not yet published).  Follow with mnemo_flush or mnemo_persist. */
void mnemo_write(void *dst, const void *src, size_t len);

/*
 * Store `value` at `dst` atomically (all 8 bytes or none reach persistence)
 * and persist it.  -EINVAL unless dst is 8-byte aligned.
 */
int mnemo_store64(uint64_t *dst, uint64_t value);

/*
 * Shadow update: copy `len` bytes of `src` into `spare`, persist them, then
 * atomically point *slot at `spare` and persist *slot.  After a crash *slot
 * points at either the old copy or the complete new one.  The caller then
 * owns the old copy as the next spare.  -EINVAL if slot is misaligned or
 * spare overlaps src.
 */
int mnemo_shadow_update(void **slot, void *spare, const void *src,
                        size_t len);

/* ---- raw word log (RAWL) ------------------------------------------------ */

/*
 * A circular append-only log of 64-bit words, kept in its own named region
 * (name "rawl:<name>").  One writer at a time: give each thread its own log.
 * Each append is one record and costs exactly one fence; after a crash the
 * log holds every record whose append returned, in order, plus possibly the
 * record being appended at the crash, complete or not at all.
 */
/* `capacity` (in words) is used only when the log is created; the ring
 * fills the page-rounded region.  The handle points into the pool: close
 * it before closing the pool or deleting its region. */
int mnemo_rawl_open(mnemo_pool *pool, const char *name, size_t capacity,
                    mnemo_rawl **logp);
int mnemo_rawl_append(mnemo_rawl *log, const uint64_t *words, size_t n);

typedef int (*mnemo_rawl_cb)(const uint64_t *words, size_t n, void *arg);
/* Call cb for each record, oldest first; a nonzero return stops the walk
 * and is returned. */
int mnemo_rawl_foreach(mnemo_rawl *log, mnemo_rawl_cb cb, void *arg);
/* Drop the oldest `nrecords` records (SIZE_MAX: all). */
int mnemo_rawl_truncate(mnemo_rawl *log, size_t nrecords);
/* Records in the log and free payload words for the next append. */
size_t mnemo_rawl_count(const mnemo_rawl *log);
size_t mnemo_rawl_space(const mnemo_rawl *log);
int mnemo_rawl_close(mnemo_rawl **logp);

/* ---- durable memory transactions ---------------------------------------- */

/*
 * A transaction moves memory from one consistent state to the next: after a
 * crash, the next mnemo_pool_open() replays every transaction whose commit
 * returned (in commit order) and none that did not.  Transactions of
 * different threads are isolated (per-stripe versioned locks); a
 * transaction nested in another joins it (flattening).
 *
 * Every access inside a transaction goes through the calls below (or the
 * C++ wrappers in mnemosyne.hpp, or gcc -fgnu-tm).  Writes to an open pool
 * are durable; writes to other memory are isolated and undone on abort but
 * not logged.  The durable writes of one transaction must all fall in one
 * pool (-EXDEV otherwise).
 *
 * Two modes:
 *  - the block form MNEMO_TX(rc) { ... }: a conflict restarts the block
 *    (longjmp); rc gets 0 on commit or a negative code.  Do not leave the
 *    block with break, return or goto: call mnemo_tx_abort() instead.
 *    Locals changed in the block and read after a restart must be volatile.
 *  - mnemo_tx_begin() ... mnemo_tx_commit(): every call returns its error;
 *    after a failure the transaction is rolled back, later calls fail with
 *    the same code (value forms do nothing and return 0), and commit
 *    returns it.  -EAGAIN means "conflict, run it again".
 */

int mnemo_tx_begin(void);
int mnemo_tx_commit(void);
/* Roll the whole (flattened) transaction back.  In the block form this
 * leaves the outermost block with rc == -ECANCELED and does not return. */
void mnemo_tx_abort(void);
/* Nesting depth of the calling thread's transaction (0: none). */
int mnemo_tx_depth(void);
/* 0 while the transaction is healthy, else the code commit will return. */
int mnemo_tx_status(void);

/* Logged range accesses: [dst, dst+n) reads see the transaction's writes. */
int mnemo_tx_load(void *dst, const void *src, size_t n);
int mnemo_tx_store(void *dst, const void *src, size_t n);
int mnemo_tx_memset(void *dst, int c, size_t n);

/* Value forms (natural alignment not required). */
uint8_t mnemo_tx_get8(const uint8_t *p);
uint16_t mnemo_tx_get16(const uint16_t *p);
uint32_t mnemo_tx_get32(const uint32_t *p);
uint64_t mnemo_tx_get64(const uint64_t *p);
void mnemo_tx_set8(uint8_t *p, uint8_t v);
void mnemo_tx_set16(uint16_t *p, uint16_t v);
void mnemo_tx_set32(uint32_t *p, uint32_t v);
void mnemo_tx_set64(uint64_t *p, uint64_t v);

/* Volatile allocation that the transaction owns: an abort frees it; a
 * free takes effect at commit.  Outside a transaction: malloc/free. */
void *mnemo_tx_malloc(size_t size);
void mnemo_tx_free(void *ptr);

/* Write back and truncate every transaction log of `pool` (done
 * automatically as logs fill, at mnemo_region_delete and at close). */
int mnemo_tx_drain(mnemo_pool *pool);

/* Statistics of the calling thread since mnemo_stat_reset() are in
 * mnemo_stat_get(MNEMO_STAT_TX_*). */

/* The block form.  struct mnemo_tx_frame is private to these macros. */
struct mnemo_tx_frame {
	jmp_buf jb;
	int state;
	int outer;
};
int mnemo_tx_frame_step(struct mnemo_tx_frame *f, int *rc);

#define MNEMO_TX(rc)                                                        \
	for (struct mnemo_tx_frame mnemo_tx_f_ = {.state = 0};              \
	     mnemo_tx_frame_step(&mnemo_tx_f_, &(rc));)                     \
		if (setjmp(mnemo_tx_f_.jb) != 0) {                          \
		} else

/* ---- the persistent heap -------------------------------------------------- */

/*
 * Blocks in a pool that stay allocated across runs, at the same address.
 * pmalloc and friends use the default pool (mnemo_default_pool());
 * mnemo_heap_alloc names one.  pfree, prealloc and pmalloc_usable_size
 * find the pool from the address.
 *
 * Outside a transaction an allocation is durable when the call returns
 * (one fence); a free is durable at the calling thread's next fence.  A
 * block that is allocated but not yet reachable when the process crashes
 * is a leak; the next open reclaims it (see MNEMO_HEAP_GC in
 * mnemosyne(7)).  Inside a transaction an allocation becomes durable only
 * if the transaction commits, and a free takes effect at commit.
 *
 * Errors: NULL with errno ENOMEM (heap full; mnemo_errormsg() says why) or
 * EINVAL.  pfree of something that is not an allocated block (double free,
 * interior or foreign pointer) changes nothing, sets errno to EINVAL and
 * reports the error on stderr (MNEMO_HEAP_ABORT=1 aborts instead, for
 * debugging).
 */
void *pmalloc(size_t size);
void *pcalloc(size_t nmemb, size_t size);
void *prealloc(void *ptr, size_t size);
void *paligned_alloc(size_t alignment, size_t size);
void pfree(void *ptr);
size_t pmalloc_usable_size(void *ptr);

#define MNEMO_HEAP_ZERO 1u /* mnemo_heap_alloc: zero the block */
/* mnemo_heap_alloc, mnemo_heap_free: act at once even inside a
 * transaction of the calling thread (an abort does not undo it). */
#define MNEMO_HEAP_NOTX 2u

/* Allocate from pool's heap; align is 0 or a power of two up to 64 KiB. */
void *mnemo_heap_alloc(mnemo_pool *pool, size_t size, size_t align,
		       unsigned flags);
/* Free a block (as pfree) with flags 0 or MNEMO_HEAP_NOTX; 0, or a
 * negative code (-EINVAL: not an allocated block). */
int mnemo_heap_free(void *ptr, unsigned flags);
/* Allocate and store the block's address in *dst atomically: after a
 * crash either *dst holds the block and it is allocated, or neither.  dst
 * must be persistent memory of the pool the block comes from. */
int mnemo_heap_alloc_to(void **dst, size_t size, unsigned flags);
/* Free *src and store NULL in it, atomically in the same sense. */
int mnemo_heap_free_from(void **src);

/* Statistics grow by appending fields: the caller passes the size of the
 * struct it was compiled with, and the library fills what both know
 * (fields past `size` are the caller's; fields it does not know are 0). */
struct mnemo_heap_stats {
	uint64_t heap_bytes;   /* bytes of heap segments in the pool */
	uint64_t page_bytes;   /* bytes of pages holding live blocks */
	uint64_t live_bytes;   /* bytes of allocated blocks (usable sizes) */
	uint64_t live_blocks;  /* allocated blocks */
	uint64_t large_blocks; /* of which larger than 32 KiB */
	double fragmentation;  /* 1 - live_bytes / page_bytes (0 if empty) */
	uint64_t reclaimed_blocks; /* freed by the collection at open */
	uint64_t reclaimed_bytes;
	uint64_t recovery_ns;  /* time the heap took to open */
	int collected;         /* 1 if the collection ran at open */
};
/* A snapshot of pool's heap (exact when no other thread allocates);
 * size is sizeof(*st).  -EINVAL if size is smaller than version 0.1's. */
int mnemo_heap_stats(mnemo_pool *pool, struct mnemo_heap_stats *st,
		     size_t size);
/* One size class of the heap's small blocks. */
struct mnemo_heap_class {
	uint64_t block_size;
	uint64_t blocks; /* allocated */
	uint64_t pages;  /* pages of this class */
};
/* The heap's size classes, smallest first, into out[0 .. n-1] (fewer if
 * there are fewer); returns how many classes there are (out may then be
 * NULL with n 0), or a negative code. */
int mnemo_heap_classes(mnemo_pool *pool, struct mnemo_heap_class *out,
		       size_t n);
/* Check the heap's durable and volatile state against each other; 0, or
 * -EUCLEAN with a description.  Call it with no allocation in flight. */
int mnemo_heap_check(mnemo_pool *pool);
/* The same check, reporting every problem: fn gets the offset in the pool
 * file of the heap page at fault and what is wrong with it.  Returns the
 * number of problems (0: healthy), or a negative code. */
typedef void (*mnemo_check_fn)(uint64_t offset, const char *what,
			       void *arg);
int mnemo_heap_check_each(mnemo_pool *pool, mnemo_check_fn fn, void *arg);

/* Progress of the long operations on a pool: the collection of leaked
 * blocks (at an open after a crash, or always with MNEMO_HEAP_GC=always),
 * and mnemo_heap_check.  fn is called by the thread doing the work, with
 * the stage ("mark": bytes scanned, "sweep": heap pages, "check": heap
 * pages), the units done and the stage's total: first with done 0, then
 * about every 1/64 of the total, last with done == total.  fn NULL
 * removes the hook.  One hook per process; fn must not call libmnemo. */
typedef void (*mnemo_progress_fn)(const char *stage, uint64_t done,
				  uint64_t total, void *arg);
void mnemo_progress_set(mnemo_progress_fn fn, void *arg);

/* ---- statistics and SCM emulation ---------------------------------------- */

enum mnemo_stat {
	MNEMO_STAT_FLUSHED_LINES = 0, /* cache lines flushed by this thread */
	MNEMO_STAT_FENCES = 1,        /* fences issued by this thread */
	MNEMO_STAT_TX_COMMITS = 2,    /* transactions committed */
	MNEMO_STAT_TX_ABORTS = 3,     /* conflicts that rolled one back */
	MNEMO_STAT_TX_ATOMICS = 4,    /* locked instructions of the engine */
	MNEMO_STAT_TX_SHARED_LINES = 5, /* writes to lines commits share */
	MNEMO_STAT_STRICT_REFS = 6,   /* strict mode: volatile pointers stored */
	MNEMO_STAT_NR
};

/* Counter of the calling thread; 0 for an unknown stat. */
uint64_t mnemo_stat_get(enum mnemo_stat stat);
/* Zero the calling thread's counters. */
void mnemo_stat_reset(void);

/* Extra latency charged per flushed line and per fence, in nanoseconds
 * (the SCM latency emulator; both 0 by default). */
void mnemo_emul_set(unsigned flush_ns, unsigned fence_ns);

/* Name of the flush instruction in use: "clwb", "clflushopt" or "clflush". */
const char *mnemo_flush_instruction(void);

#ifdef __cplusplus
}
#endif

#endif /* MNEMOSYNE_H */
