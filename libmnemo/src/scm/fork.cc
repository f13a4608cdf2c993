/*
 * fork.cc -- what a fork child gets of every pool: a snapshot.
 *
 * A pool's window and its aliases are MAP_SHARED mappings of the pool file,
 * which fork() shares with the child: the child would read the parent's
 * later stores, and its own stores would reach the pool.  A MAP_PRIVATE
 * mapping of the file is no better, as pages the child has not written
 * still show the page cache, which the parent keeps changing.  So:
 *
 *   prepare  (the forking thread, just before fork) copies the mapped part
 *            of every shared window and alias into new anonymous memory;
 *   child    moves each copy over its window or alias (mremap: no second
 *            copy) and replaces its pool descriptors by /dev/null, so that
 *            no mapping or descriptor of the child refers to the pool file
 *            and the pool's lock stays with the parent alone;
 *   parent   unmaps its reference to the copies: the pages are the child's.
 *
 * The child's memory is then what the parent's was when prepare ran, as
 * for every other page of a fork.  The cost is one memcpy of the mapped
 * part of each open pool per fork (header, tables, regions, heap segments).
 * Windows that are private already (the sim backend's cache view, a fork
 * child's own snapshot) are copied on write by the kernel: nothing to do.
 *
 * Other threads of the parent keep running during the copy.  A store they
 * make meanwhile may or may not be in the child's copy, as a store racing
 * with fork() may or may not be; unlike fork(), the copy is not one instant.
 * fork() in the parent's atfork order: handlers registered after libmnemo
 * (the program's) run their prepare before this one, so mutexes they take
 * are taken in the copy too.
 *
 * If no memory can be had for a copy, the child maps the file privately: a
 * view that may show the parent's later stores in pages it has not written.
 * fork() without atfork handlers (vfork, posix_spawn, clone with CLONE_VM,
 * _Fork) shares the window with a child that only execs, or must not write.
 */
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/error.h"
#include "scm/scm.h"

namespace mnemo::scm {

int device::map(uint64_t off, size_t len)
{
	std::lock_guard<std::mutex> g(map_mu);
	if (snapshot_)
		return fail(EROFS, "cannot map more of a pool in a fork child: "
			    "its pools are private snapshots");
	int rc = map_range(off, len);
	if (rc == 0 && mirror_ && (rc = map_at(mirror_ + off, off, len)))
		unmap_range(off, len);
	if (rc == 0)
		mapped_[off] = len;
	return rc;
}

int device::unmap(uint64_t off, size_t len)
{
	std::lock_guard<std::mutex> g(map_mu);
	int rc = unmap_range(off, len);
	if (rc == 0 && mirror_)
		rc = unreserve_to_none(mirror_ + off, len);
	if (rc == 0)
		mapped_.erase(off);
	return rc;
}

namespace {

/* Copy [src, src+n) to dst; a long run's pages are faulted in with one
 * call rather than one trap each (page faults are much of a fork's cost
 * in a VM), a short one's are not worth the system call. */
void copy_run(char *dst, const char *src, size_t n)
{
#ifdef MADV_POPULATE_WRITE
	if (n >= 16 * kOsPage)
		madvise(dst, n, MADV_POPULATE_WRITE); /* may fail (< 5.14) */
#endif
	memcpy(dst, src, n);
}

} // namespace

char *snap_copy(const char *p, size_t n)
{
	void *c = mmap(nullptr, n, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (c == MAP_FAILED)
		return nullptr;
	copy_run((char *)c, p, n);
	return (char *)c;
}

bool snap_move(char *copy, char *dst, size_t n)
{
	if (mremap(copy, n, n, MREMAP_MAYMOVE | MREMAP_FIXED, dst) == dst)
		return true;
	munmap(copy, n);
	return false;
}

void device::set_holes(hole_fn f, void *ctx)
{
	std::lock_guard<std::mutex> g(map_mu);
	holes_ = f;
	holes_ctx_ = ctx;
}

/* Copy the mapped range [off, off+len) of the window into snap_, skipping
 * the grains the hole function calls empty. */
void device::snap_range(uint64_t off, size_t len)
{
	uint64_t end = off + len, run = off;
	for (uint64_t c = off; c < end;) {
		uint64_t next = (c | (kHoleGrain - 1)) + 1;
		next = next < end ? next : end;
		bool hole = holes_ && next - c == kHoleGrain &&
			    holes_(holes_ctx_, base_ + c);
		if (hole && c > run)
			copy_run(snap_ + (run - snap_lo_), base_ + run, c - run);
		c = next;
		if (hole)
			run = c;
	}
	if (end > run)
		copy_run(snap_ + (run - snap_lo_), base_ + run, end - run);
}

/* One anonymous mapping spans [first mapped byte, last mapped byte), so
 * the child moves it with one call; gaps and holes read as zeros there.
 * pre: map_mu held. */
bool device::snap_prepare()
{
	if (!shared_window() || mapped_.empty())
		return true;
	snap_lo_ = mapped_.begin()->first;
	snap_len_ = mapped_.rbegin()->first + mapped_.rbegin()->second -
		    snap_lo_;
	snap_ = (char *)mmap(nullptr, snap_len_, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (snap_ == MAP_FAILED) {
		snap_ = nullptr;
		return false;
	}
	for (const auto &m : mapped_)
		snap_range(m.first, m.second);
	return true;
}

void device::snap_parent()
{
	if (snap_)
		munmap(snap_, snap_len_);
	snap_ = nullptr;
}

void device::remap_file_private(void *p, size_t n, uint64_t off)
{
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd_);
	int fd = open(proc, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || mmap(p, n, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_FIXED, fd, (off_t)off) != p)
		mprotect(p, n, PROT_NONE); /* never write the pool */
	if (fd >= 0)
		close(fd);
}

void device::snap_child()
{
	if (shared_window()) {
		if (!snap_ || !snap_move(snap_, base_ + snap_lo_, snap_len_))
			for (const auto &m : mapped_)
				remap_file_private(base_ + m.first, m.second,
						   m.first);
	}
	snap_ = nullptr;
	snapshot_ = true;
	/* The copy is writable and private: the child is not checked, and
	 * its mirror, still the file's, must go before anything writes. */
	if (mirror_)
		strict_forget(this, true);
}

namespace {

/* The open windows, as prepare saw them (registry locked until then). */
device *g_fork_windows[kMaxWindows];
int g_fork_n;

void prepare()
{
	g_fork_n = windows_lock(g_fork_windows, kMaxWindows);
	for (int i = 0; i < g_fork_n; i++) {
		g_fork_windows[i]->map_mu.lock();
		g_fork_windows[i]->snap_prepare();
	}
	alias_snap_prepare();
}

void parent()
{
	alias_snap_parent();
	for (int i = 0; i < g_fork_n; i++) {
		g_fork_windows[i]->snap_parent();
		g_fork_windows[i]->map_mu.unlock();
	}
	windows_unlock();
}

/* No descriptor of the child may keep the pool's open file description
 * (and with it the lock) alive: /dev/null takes the numbers, which stay
 * the pools' own until they close. */
void drop_pool_fds()
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int i = 0; i < g_fork_n && null >= 0; i++)
		if (g_fork_windows[i]->fd() >= 0)
			dup3(null, g_fork_windows[i]->fd(), O_CLOEXEC);
	if (null >= 0)
		close(null);
}

void child()
{
	alias_snap_child();
	for (int i = 0; i < g_fork_n; i++) {
		g_fork_windows[i]->snap_child();
		g_fork_windows[i]->map_mu.unlock();
	}
	drop_pool_fds();
	windows_unlock();
}

__attribute__((constructor)) void register_fork_handlers()
{
	pthread_atfork(prepare, parent, child);
}

} // namespace
} // namespace mnemo::scm
