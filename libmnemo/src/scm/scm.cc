/*
 * scm.cc -- backend selection, the registry of open windows, and the
 * address-dispatched flush and the fence every persist point goes through.
 */
#include "scm/scm.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unistd.h>

#include "base/error.h"
#include "mnemosyne.h"
#include "scm/backends.h"

namespace mnemo::scm {
namespace {

/*
 * Registry of open windows.  Invariant: a slot with a device names a live
 * device, [lo, hi) is its window, and no two slots' windows overlap.
 * Writers hold g_reg_mu; readers (every flush, every address a
 * transaction classifies) scan lock-free with acquire loads of the
 * slot's own words, never of the device: a window is unregistered before
 * its device is destroyed, and a lookup racing with the close of the
 * pool it finds is a caller bug.  lo and hi are written before dev, and
 * dev is cleared before them, so a reader that sees dev sees its bounds.
 */
struct window_slot {
	std::atomic<device *> dev{nullptr};
	std::atomic<uintptr_t> lo{0}, hi{0};
	std::atomic<mnemo_pool *> owner{nullptr};
};
window_slot g_windows[kMaxWindows];
std::mutex g_reg_mu;

constexpr auto kAcq = std::memory_order_acquire;
constexpr auto kRel = std::memory_order_release;

/* The slot whose window holds a, or nullptr. */
window_slot *slot_of(uintptr_t a)
{
	for (window_slot &w : g_windows) {
		uintptr_t lo = w.lo.load(kAcq), hi = w.hi.load(kAcq);
		if (a - lo < hi - lo && w.dev.load(kAcq))
			return &w;
	}
	return nullptr;
}

device *find_window(const void *p)
{
	window_slot *w = slot_of((uintptr_t)p);
	return w ? w->dev.load(kAcq) : nullptr;
}

/* The MNEMO_BACKEND_* value named s, or a message. */
int parse_backend(const char *s, unsigned *b)
{
	static const struct {
		const char *name;
		unsigned flag;
	} names[] = {{"auto", MNEMO_BACKEND_AUTO}, {"file", MNEMO_BACKEND_FILE},
		     {"dax", MNEMO_BACKEND_DAX},   {"sim", MNEMO_BACKEND_SIM},
		     {"kmod", MNEMO_BACKEND_KMOD}};
	for (const auto &n : names) {
		if (strcmp(s, n.name) == 0) {
			*b = n.flag;
			return 0;
		}
	}
	return fail(EINVAL, "MNEMO_BACKEND=%s: expected auto, file, dax, sim "
		    "or kmod", s);
}

/* The MNEMO_DURABILITY_* value named s, or a message. */
int parse_durability(const char *s, unsigned *d)
{
	*d = !strcmp(s, "process") ? MNEMO_DURABILITY_PROCESS
	     : !strcmp(s, "power") ? MNEMO_DURABILITY_POWER
	     : !strcmp(s, "pmem")  ? MNEMO_DURABILITY_PMEM
				   : ~0u;
	if (*d != ~0u)
		return 0;
	return fail(EINVAL, "MNEMO_DURABILITY=%s: expected process, power or "
		    "pmem", s);
}

/* A field of flags, or the environment's choice where it is 0. */
int field_or_env(unsigned v, const char *var,
		 int (*parse)(const char *, unsigned *), unsigned *out)
{
	const char *env = getenv(var);
	*out = v;
	return v == 0 && env && *env ? parse(env, out) : 0;
}

} // namespace

bool register_window(device *d)
{
	std::lock_guard<std::mutex> g(g_reg_mu);
	for (window_slot &w : g_windows) {
		if (w.dev.load())
			continue;
		w.owner.store(nullptr, kRel);
		w.lo.store((uintptr_t)d->base(), kRel);
		w.hi.store((uintptr_t)d->base() + d->window(), kRel);
		w.dev.store(d, kRel);
		return true;
	}
	return false;
}

void unregister_window(device *d)
{
	alias_forget_device(d);
	strict_forget(d);
	std::lock_guard<std::mutex> g(g_reg_mu);
	for (window_slot &w : g_windows)
		if (w.dev.load() == d) {
			w.dev.store(nullptr, kRel);
			w.owner.store(nullptr, kRel);
			w.hi.store(0, kRel);
			w.lo.store(0, kRel);
		}
}

void set_owner(device *d, mnemo_pool *p)
{
	std::lock_guard<std::mutex> g(g_reg_mu);
	for (window_slot &w : g_windows)
		if (w.dev.load() == d)
			w.owner.store(p, kRel);
}

mnemo_pool *owner_of(uintptr_t a, uintptr_t *lo, uintptr_t *hi)
{
	window_slot *w = slot_of(a);
	mnemo_pool *p = w ? w->owner.load(kAcq) : nullptr;
	if (p) {
		*lo = w->lo.load(kAcq);
		*hi = w->hi.load(kAcq);
	}
	return p;
}

void each_owner(void (*f)(void *ctx, mnemo_pool *p), void *ctx)
{
	std::lock_guard<std::mutex> g(g_reg_mu);
	for (window_slot &w : g_windows)
		if (mnemo_pool *p = w.owner.load())
			f(ctx, p);
}

int owners(mnemo_pool **out, int max)
{
	int n = 0;
	for (window_slot &w : g_windows) {
		mnemo_pool *p = w.owner.load(kAcq);
		if (p && n < max)
			out[n++] = p;
	}
	return n;
}

int windows_lock(device **out, int max)
{
	g_reg_mu.lock();
	int n = 0;
	for (window_slot &w : g_windows)
		if (device *d = w.dev.load(); d && n < max)
			out[n++] = d;
	return n;
}

void windows_unlock()
{
	g_reg_mu.unlock();
}

int check_flags(unsigned flags)
{
	constexpr unsigned known = MNEMO_CREATE | MNEMO_BACKEND_MASK |
				   MNEMO_DURABILITY_MASK | MNEMO_PRIVATE |
				   MNEMO_CHECK_STRICT;
	unsigned b = flags & MNEMO_BACKEND_MASK;
	unsigned d = flags & MNEMO_DURABILITY_MASK;
	if (flags & ~known)
		return fail(EINVAL, "unknown pool flags 0x%x", flags & ~known);
	if ((flags & MNEMO_PRIVATE) &&
	    ((b && b != MNEMO_BACKEND_FILE) ||
	     (d && d != MNEMO_DURABILITY_PROCESS) || (flags & MNEMO_CREATE)))
		return fail(EINVAL, "MNEMO_PRIVATE opens an existing pool with "
			    "the file backend and process durability only");
	if ((flags & MNEMO_PRIVATE) && (flags & MNEMO_CHECK_STRICT))
		return fail(EINVAL, "MNEMO_CHECK_STRICT cannot check a private "
			    "open (MNEMO_PRIVATE): its stores never reach the "
			    "pool");
	if ((flags & MNEMO_BACKEND_MASK) > MNEMO_BACKEND_KMOD ||
	    (flags & MNEMO_DURABILITY_MASK) > MNEMO_DURABILITY_PMEM)
		return fail(EINVAL, "pool flags 0x%x name no backend or "
			    "durability", flags);
	return 0;
}

int config_from(unsigned flags, config *cfg, bool *autodetect)
{
	unsigned b = MNEMO_BACKEND_FILE, d = MNEMO_DURABILITY_PROCESS;
	cfg->priv = flags & MNEMO_PRIVATE;
	cfg->strict = false;
	/* The environment does not change a private open (not even a bad
	 * value in it: mnemoctl check must still look at the pool). */
	int rc = cfg->priv ? 0
			   : field_or_env(flags & MNEMO_BACKEND_MASK,
					  "MNEMO_BACKEND", parse_backend, &b);
	if (rc == 0 && !cfg->priv)
		rc = field_or_env(flags & MNEMO_DURABILITY_MASK,
				  "MNEMO_DURABILITY", parse_durability, &d);
	if (rc == 0 && !cfg->priv)
		rc = check_from_env(&cfg->strict);
	if (rc)
		return rc;
	cfg->strict |= (flags & MNEMO_CHECK_STRICT) != 0;
	cfg->power = d == MNEMO_DURABILITY_POWER;
	cfg->pmem = d == MNEMO_DURABILITY_PMEM;
	*autodetect = b == MNEMO_BACKEND_AUTO;
	cfg->backend = b == MNEMO_BACKEND_KMOD	? kind::kmod
		       : b == MNEMO_BACKEND_DAX ? kind::dax
		       : b == MNEMO_BACKEND_SIM ? kind::sim
						: kind::file;
	return 0;
}

int open_device(int fd, const config &cfg, void *base, size_t window,
		std::unique_ptr<device> *out)
{
	int rc;
	switch (cfg.backend) {
	case kind::dax:
		rc = open_dax(fd, base, window, out);
		break;
	case kind::sim:
		rc = open_sim(fd, base, window, out);
		break;
	case kind::kmod:
		rc = open_kmod(fd, base, window, out);
		if (rc == -ENODEV) /* no /dev/mnemo: the file backend */
			rc = open_file(fd, cfg, base, window, out);
		break;
	default:
		rc = open_file(fd, cfg, base, window, out);
		break;
	}
	if (rc == 0 && !register_window(out->get())) {
		out->reset();
		return fail(EMFILE, "too many pools open in this process (max %d)",
			    kMaxWindows);
	}
	if (rc == 0 && cfg.strict && (rc = (*out)->strict_init()) != 0)
		out->reset();
	return rc;
}

void device::stream(void *dst, const piece *v, unsigned k)
{
	char *d = (char *)dst;
	for (unsigned i = 0; i < k; i++) {
		if (v[i].n) /* p may be null then */
			memcpy(d, v[i].p, v[i].n);
		d += v[i].n;
	}
	flush(dst, (size_t)(d - (char *)dst));
}

void flush(const void *p, size_t n)
{
	device *d = find_window(p);
	if (!d && canon((uintptr_t)p) != (uintptr_t)p) { /* aliases lie */
		p = (const void *)canon((uintptr_t)p);      /* outside windows */
		d = find_window(p);
	}
	if (d)
		d->flush(p, n);
	else
		cpu_flush(p, n);
}

namespace {
/* The line flush_later() holds back until this thread's next fence. */
__attribute__((tls_model("initial-exec"))) thread_local const void *tl_later;
} // namespace

void flush_later(const void *p)
{
	const void *prev = tl_later;
	if (prev && ((uintptr_t)prev ^ (uintptr_t)p) >= kLine)
		flush(prev, 1);
	tl_later = p;
}

void fence()
{
	if (const void *l = tl_later) {
		tl_later = nullptr;
		/* Only while its pool is open: a close makes it durable. */
		if (device *d = find_window(l))
			d->flush(l, 1);
	}
	account_fence();
	__builtin_ia32_sfence();
	file_drain_thread();
	sim_drain_thread();
}

} // namespace mnemo::scm
