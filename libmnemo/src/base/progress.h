/*
 * progress.h -- reports of a long pool operation to the hook the program
 * set with mnemo_progress_set (mnemosyne.h).  A meter is one stage: it
 * reports 0 of total when made, then about every 1/64 of the total (the
 * work between two reports stays small and the hook cheap), and done ==
 * total once at finish().  With no hook set, add() is one compare.
 */
#ifndef MNEMO_BASE_PROGRESS_H
#define MNEMO_BASE_PROGRESS_H

#include <cstdint>

namespace mnemo::progress {

class meter {
public:
	meter(const char *stage, uint64_t total);
	~meter() { finish(); }
	meter(const meter &) = delete;
	meter &operator=(const meter &) = delete;

	/* n more units done; done never passes total (the excess is the
	 * caller's overestimate and is dropped) */
	void add(uint64_t n)
	{
		done_ += n;
		if (done_ >= next_)
			report();
	}
	/* the last report: done == total (once; the destructor calls it) */
	void finish();

private:
	void report();
	const char *stage_;
	uint64_t total_, done_ = 0, next_, step_;
	bool finished_ = false;
};

} // namespace mnemo::progress

#endif
