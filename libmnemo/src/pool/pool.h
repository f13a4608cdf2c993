/*
 * pool.h -- the in-memory state of an open pool.
 *
 * Invariants of an open mnemo_pool:
 *  - the calling process holds an exclusive flock on `fd` (one opener);
 *  - [base, base + max) is reserved (the window); [0, data_off) and every
 *    live region's extent are mapped read-write, everything else is
 *    inaccessible;
 *  - size is the current grow record's (layout.h): the file holds at least
 *    size bytes; size only grows, under `mu`, up to max;
 *  - `extents` lists exactly the live region slots, sorted by offset,
 *    non-overlapping, each inside [data_off, size);
 *  - next_gen is larger than the gen of every live slot.
 * `mu` guards the tables, `extents` and next_gen.
 */
#ifndef MNEMO_POOL_H
#define MNEMO_POOL_H

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "layout.h"
#include "scm/scm.h"

/* The layers above hang their per-pool state here (api/pool.cc attaches
 * and frees it); to the pool layer it is opaque. */
namespace mnemo::tx {
struct pool_state;
} // namespace mnemo::tx
namespace mnemo::heap {
struct heap;
} // namespace mnemo::heap

struct mnemo_pool {
	struct extent {
		uint64_t offset, size;
		uint32_t slot; /* index in the region table */
	};

	std::string path;
	int fd = -1;
	std::unique_ptr<mnemo::scm::device> dev;
	mnemo::layout::pool_header hdr; /* validated copy, as opened */
	char *base = nullptr;
	std::atomic<uint64_t> size{0}; /* current size (grows) */
	uint64_t max = 0;              /* growth limit = window size */
	bool can_grow = false;         /* format 5 (a 4.0 pool cannot) */
	bool priv = false; /* MNEMO_PRIVATE: the file is never written */
	/* Under mu: every byte of [zero_above, size) is durably zero and in
	 * no extent (space grown since open), so a region created there
	 * needs no zeroing.  The size at open, then raised past each new
	 * extent. */
	uint64_t zero_above = 0;
	std::mutex mu;
	std::vector<extent> extents;
	uint64_t next_gen = 1;
	mnemo::tx::pool_state *tx = nullptr; /* transaction logs (tx/) */
	/* tx/: what settle()'s inline test (txlog.h) reads: set by the
	 * first commit after a settle (before its record may be live),
	 * cleared by settle.  A flag, not the last wv: committers write it
	 * once, not at every commit, so threads committing in one pool do
	 * not pass its cache line back and forth. */
	std::atomic<bool> tx_dirty{false};
	mnemo::heap::heap *heap = nullptr;   /* persistent heap (heap/) */

	mnemo::layout::slot *regions() const
	{
		return (mnemo::layout::slot *)(base + hdr.region_off);
	}
	mnemo::layout::slot *roots() const
	{
		return (mnemo::layout::slot *)(base + hdr.root_off);
	}
	~mnemo_pool();
};

namespace mnemo {

/* pool.cc: a new pool file of `size` bytes at address `base` (0: one is
 * picked), made durable under a temporary name and renamed into place. */
int pool_create_file(const char *path, uint64_t size, uint64_t base);
/* Lock, check and map the pool whose file p->fd is open; the tables are
 * loaded and every region mapped.  *raise: a growth limit to record
 * once the layers above have attached (0: none).  On failure p holds
 * what was opened; the caller frees it. */
int pool_load(mnemo_pool *p, unsigned flags, uint64_t *raise);

/* header.cc: build and validate the header. */
/* A new header: size at creation, growth limit max, base address. */
void header_init(layout::pool_header *h, uint64_t size, uint64_t max,
		 uint64_t base);
/* Validate a header read from a file of file_size bytes. */
int header_check(const layout::pool_header *h, uint64_t file_size,
		 const char *path);
void header_seal(layout::pool_header *h);
/* The current size and growth limit of a checked header. */
int header_sizes(const layout::pool_header *h, const char *path,
		 uint64_t *size, uint64_t *max);
/* The current grow record, or nullptr if neither is valid. */
const layout::grow_rec *grow_current(const layout::pool_header *h);
uint64_t grow_checksum(const layout::grow_rec *g);

/* table.cc: load and validate both tables at open (read-only). */
int tables_load(mnemo_pool *pool);

/* slot.cc: atomic publication of table slots. */
uint64_t slot_checksum(const layout::slot *s);
void slot_publish(layout::slot *dst, const layout::slot &body);
void slot_retire(layout::slot *s);
int name_check(const char *name, bool allow_empty);
bool slot_name_is(const layout::slot *s, const char *name);

/* region.cc */
int regions_map_all(mnemo_pool *pool);
/* Whether a region of this name holds the program's data (neither
 * library-owned nor a RAWL): what strict mode makes read-only. */
bool name_user_data(const char *name);

/* Library-owned regions (names starting with layout::kReservedPrefix,
 * with or without the RAWL prefix): the public calls refuse them. */
bool name_reserved(const char *name);
/* -EINVAL with a message if `name` (of a `kind`: "region", "log") is
 * reserved, else 0. */
int reserved_check(const char *kind, const char *name);
int region_create_internal(mnemo_pool *pool, const char *name, size_t size,
			   void **addrp, size_t *sizep);
int region_find_internal(mnemo_pool *pool, const char *name, void **addrp,
			 size_t *sizep);
/* Delete the user region starting at addr; size 0 accepts any size.
 * pre: no transaction record names its bytes (tx::drain). */
int region_delete_internal(mnemo_pool *pool, void *addr, size_t size);
/* grow.cc: make the pool at least `end` bytes (growing it by a
 * geometric step), or fail with a message naming the limit that stops
 * it.  pre: pool->mu held. */
int pool_grow(mnemo_pool *pool, uint64_t end);
/* The error pool_grow gives when the pool cannot reach `end` bytes. */
int pool_cannot_grow(mnemo_pool *pool, uint64_t end);
/* The growth limit for a new pool of `size` bytes in the directory of
 * fd: $MNEMO_POOL_MAX, else the smaller of kDefaultMax and what the file
 * system has room for. */
int pool_default_max(int fd, uint64_t size, uint64_t *max);
/* Record a larger growth limit, at most the window (max); a limit not
 * larger than the recorded one is left as it is. */
int pool_raise_max(mnemo_pool *pool, uint64_t max);
/* Cut a file longer than the pool back to its size (a crash during
 * growth), at open. */
int pool_trim(mnemo_pool *pool, uint64_t file_size);

/* addr.cc: choice of a pool's base address. */
int addr_pick(const uint8_t uuid[16], uint64_t size, uint64_t *base);
int addr_check(uint64_t base, uint64_t size);
uint64_t window_of(uint64_t size);
/* How much of [base, base + want) is free from base on (page multiple;
 * 0 if base itself is taken). */
uint64_t addr_room(uint64_t base, uint64_t want);

} // namespace mnemo

#endif
