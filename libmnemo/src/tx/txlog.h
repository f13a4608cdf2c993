/*
 * txlog.h -- the durable side of transactions: per-thread redo logs in each
 * pool, log truncation and recovery.  Which addresses are durable (in a
 * pool) the registry of windows says (scm::owner_of).  Format in layout.h
 * ("Durable transactions").
 */
#ifndef MNEMO_TX_TXLOG_H
#define MNEMO_TX_TXLOG_H

#include <atomic>
#include <cstdint>

#include "pool/pool.h"
#include "tx/stm.h"

namespace mnemo::tx {

/* The version clock.  Commits read it and take wv = clock + 1 (several
 * may take the same one); aborts, passes and settles move it.  Every
 * stripe version, and every wv taken, is at most the clock + 1. */
extern std::atomic<uint64_t> g_clock;
/* Move the clock on by one; the new value (every wv taken before is at
 * most it).  Passes, settles and retake_wv. */
uint64_t clock_step();
/* Raise the clock to v if it is below (extend(): a stripe's version). */
void clock_at_least(uint64_t v);

/* Called by pool open (after the regions are mapped): replay committed
 * transactions, then make the pool's memory transactional. */
int pool_attach(mnemo_pool *p);
/* Called by pool close: write everything back and release the logs. */
int pool_detach(mnemo_pool *p);
/* Free what pool_attach left in p->tx, after a failed attach. */
void pool_state_free(pool_state *ps);
/* Write back and truncate every log of p. */
int drain(mnemo_pool *p);

/* Transactions must not write [lo, hi) of p (library metadata). */
void protect(mnemo_pool *p, uint64_t lo, uint64_t hi);
/* Create the pool's first transaction log (and the metadata region) if
 * it has none, so that space taken later for good (heap segments, which
 * are never returned) cannot starve every thread's commits; see
 * heap::grow().  0, or the creation's code with a message naming it. */
int reserve_log(mnemo_pool *p);
/* Every record with wv <= the result is durable in place. */
uint64_t floor_of(mnemo_pool *p);

/* Before a non-transactional persist point: make every committed record
 * of the pool (holding addr; of every pool) dead, so that replay cannot
 * roll back a plain store made after the commit to bytes it wrote. */
inline void settle(mnemo_pool *p);
/* Retire every record with wv <= target (waits for commits under way;
 * call it holding no library lock). */
void settle_to(mnemo_pool *p, uint64_t target);
void settle_at(const void *addr);
void settle_all();

/* Whether [a, a+n) may be written durably (not library metadata). */
bool writable(mnemo_pool *p, uintptr_t a, size_t n);

/* Make d->rec (built by the engine) durable in d's log of d->pool: one
 * fence.  A record that does not fit runs passes, waits for commits of
 * other threads under way and then rewinds the log (txlog.cc, "Room for
 * a record"): only a record above the limit of mnemo_tx_begin(3) fails,
 * with ENOSPC. */
int log_commit(tx_desc *d);
/* After write-back: truncation when the log is half full. */
void log_done(tx_desc *d);

void desc_register(tx_desc *d);
/* Wait until no descriptor but d is between taking wv and releasing its
 * locks. */
void wait_others_idle(tx_desc *d);
void desc_unregister(tx_desc *d); /* thread exit: also frees its logs */

/* Whether settle() has nothing to do: no commit in p since the last
 * settle, so no record of p can be live. */
inline bool settled(mnemo_pool *p)
{
	return !p->tx_dirty.load();
}

/* Retire every record of p that may be live (txlog.cc). */
void settle_now(mnemo_pool *p);

/* pfree's path: one load while nothing committed since the last one. */
inline void settle(mnemo_pool *p)
{
	if (!settled(p))
		settle_now(p);
}

} // namespace mnemo::tx

#endif
