/*
 * rawl.h -- the raw word log (RAWL) for the layers above: the calls the
 * transaction logs build on, besides the public mnemo_rawl_* ones.
 */
#ifndef MNEMO_RAWL_H
#define MNEMO_RAWL_H

#include <cstddef>
#include <cstdint>
#include <string>

#include "mnemosyne.h"

namespace mnemo {

/* rawl.cc: open (creating if needed) the RAWL in region `rname`. */
int rawl_open_internal(mnemo_pool *pool, const std::string &rname,
		       size_t capacity, mnemo_rawl **logp);
/* The region a log occupies: [*lo, *hi). */
void rawl_range(const mnemo_rawl *l, uint64_t *lo, uint64_t *hi);
/* mnemo_rawl_append without its fence: the record (and any WRAP before
 * it) is written, counted and on its way to SCM; the caller's next
 * scm::fence() is its persist point, so the caller may drop a lock first.
 * Until then a crash may or may not keep it. */
int rawl_put(mnemo_rawl *l, const uint64_t *words, size_t n);
/* rawl_put in two steps, for a log shared with a truncating thread:
 * rawl_reserve (under the lock that serialises truncation) takes room for
 * a record of n words at the tail and counts it; rawl_write writes it
 * there (without that lock: it touches nothing truncation reads or
 * changes, but the record must not be truncated before it is written).
 * The record is then as after rawl_put. */
struct rawl_slot {
	uint64_t idx, seq; /* ring index and sequence number */
};
int rawl_reserve(mnemo_rawl *l, size_t n, rawl_slot *at);
void rawl_write(const mnemo_rawl *l, const rawl_slot &at,
		const uint64_t *words, size_t n);
/* Where the last record put ends: the position and sequence number a
 * head just past it would have (for rawl_truncate_to). */
void rawl_end(const mnemo_rawl *l, uint64_t *pos, uint64_t *seq);
/* Ring words in use: records, their headers and sums, and skipped words
 * at the ring's end. */
uint64_t rawl_used(const mnemo_rawl *l);
/* mnemo_rawl_truncate(l, n) for a caller that knows where the n-th
 * record ends (from rawl_end after putting it): the ring is not read. */
int rawl_truncate_to(mnemo_rawl *l, uint64_t pos, uint64_t seq, size_t n);

} // namespace mnemo

#endif
