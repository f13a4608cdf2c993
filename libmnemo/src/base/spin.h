/*
 * spin.h -- a mutex for short critical sections that are rarely contended:
 * one locked instruction to take it, none to release it (a release store),
 * where std::mutex costs a locked instruction each way.  A waiter spins a
 * little, then yields: a holder may be preempted, or hold the lock for a
 * long stretch of work (a truncation pass flushing thousands of lines).
 */
#ifndef MNEMO_BASE_SPIN_H
#define MNEMO_BASE_SPIN_H

#include <atomic>
#include <sched.h>

namespace mnemo {

class spin_mutex {
public:
	/* Locked instructions per lock and unlock (for counting). */
	static constexpr int kAtomics = 1;

	void lock()
	{
		for (unsigned n = 0; held_.exchange(true, std::memory_order_acquire);
		     n++)
			while (held_.load(std::memory_order_relaxed)) {
				if (n++ < 64)
					__builtin_ia32_pause();
				else
					sched_yield();
			}
	}
	bool try_lock()
	{
		return !held_.load(std::memory_order_relaxed) &&
		       !held_.exchange(true, std::memory_order_acquire);
	}
	void unlock() { held_.store(false, std::memory_order_release); }

private:
	std::atomic<bool> held_{false};
};

} // namespace mnemo

#endif
