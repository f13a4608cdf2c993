#!/bin/sh
# The transaction test suite again in strict mode (MNEMO_CHECK=strict): the
# library's own writes to user data (write-back, replay, undo, store64,
# shadow update, heap zeroing and copying, region zeroing) must all go
# through the mirror, so any that does not faults, and the test crashes.
# The C++ containers too: their constructors' plain stores into blocks the
# running transaction allocated are allowed, and an unordered_map's rehash
# relinks through mnemo_write.
# Left out, because strict mode refuses the sim backend they run on: the
# crash tests (tx_crash, and every test named crash_*); and the tests of
# mnemo::allocator, whose standard containers store plainly (documented).
set -eu
MNEMO_CHECK=strict
export MNEMO_CHECK
rc=0
for t in tx_unit tx_itm_unit tx_cxx_unit tx_space_unit tx_kill persist_unit \
	containers_unit containers_string_unit containers_map_unit \
	containers_umap_unit; do
	if ! tests/$t --filter '!(*/crash_*|*/allocator_*)' \
	    >"tests/tx_strict-$t.log" 2>&1; then
		echo "FAIL: $t under MNEMO_CHECK=strict:"
		tail -n 30 "tests/tx_strict-$t.log"
		rc=1
	fi
done
exit $rc
