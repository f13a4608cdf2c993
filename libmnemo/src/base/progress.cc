/*
 * progress.cc -- the process's progress hook (mnemo_progress_set) and the
 * meters that call it.  The hook and its argument change together under
 * one mutex, so a report never pairs one hook with another's argument; a
 * report takes the mutex only to copy them (at most kReports + 2 times a
 * stage), and `g_set` lets a meter skip even that when no hook is set.
 */
#include <atomic>
#include <mutex>

#include "base/export.h"
#include "base/progress.h"
#include "mnemosyne.h"

namespace mnemo::progress {
namespace {

std::mutex g_mu;
mnemo_progress_fn g_fn; /* guarded by g_mu */
void *g_arg;            /* guarded by g_mu */
std::atomic<bool> g_set{false};

constexpr uint64_t kReports = 64;

/* Call the hook, if one is set; whether one was. */
bool call(const char *stage, uint64_t done, uint64_t total)
{
	if (!g_set.load(std::memory_order_acquire))
		return false;
	mnemo_progress_fn fn;
	void *arg;
	{
		std::lock_guard<std::mutex> g(g_mu);
		fn = g_fn;
		arg = g_arg;
	}
	if (fn)
		fn(stage, done, total, arg);
	return fn != nullptr;
}

} // namespace

meter::meter(const char *stage, uint64_t total)
	: stage_(stage), total_(total), next_(0),
	  step_(total / kReports ? total / kReports : 1)
{
	report();
}

void meter::report()
{
	uint64_t d = done_ < total_ ? done_ : total_;
	/* with no hook, stop counting towards reports for this stage */
	next_ = call(stage_, d, total_) ? done_ + step_ : ~(uint64_t)0;
}

void meter::finish()
{
	if (finished_)
		return;
	finished_ = true;
	done_ = total_;
	call(stage_, total_, total_);
}

} // namespace mnemo::progress

MNEMO_API void mnemo_progress_set(mnemo_progress_fn fn, void *arg)
{
	using namespace mnemo::progress;
	std::lock_guard<std::mutex> g(g_mu);
	g_fn = fn;
	g_arg = arg;
	g_set.store(fn != nullptr, std::memory_order_release);
}
