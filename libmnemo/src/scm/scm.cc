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

std::atomic<uint64_t> g_windows_gen{0};
namespace {

/*
 * Registry of open windows.  Invariant: a slot with a device names a live
 * device, [lo, hi) is its window, no two slots' windows overlap, and
 * delta is 0, or the offset of the window's strict-mode mirror
 * (strict.cc).  Writers hold g_reg_mu; readers (every flush, every
 * address a transaction classifies, the strict SIGSEGV handler) scan
 * lock-free.  Each slot is a seqlock: a writer makes seq odd, changes
 * the words, makes it even again; a reader takes the words it read only
 * if seq was even and unchanged around them, so it never mixes a slot's
 * old bounds with the bounds of the pool that reuses it.  A window is
 * unregistered before its device is destroyed, and a lookup racing with
 * the close of the pool it finds is a caller bug.
 */
struct window_slot {
	std::atomic<unsigned> seq{0};
	std::atomic<device *> dev{nullptr};
	std::atomic<uintptr_t> lo{0}, hi{0};
	std::atomic<mnemo_pool *> owner{nullptr};
	std::atomic<intptr_t> delta{0};
};
window_slot g_windows[kMaxWindows];
std::mutex g_reg_mu;

/* A registry change under g_reg_mu: the slot's words, then the move. */
void moved()
{
	g_windows_gen.fetch_add(1, std::memory_order_release);
}

constexpr auto kAcq = std::memory_order_acquire;
constexpr auto kRel = std::memory_order_release;
constexpr auto kRlx = std::memory_order_relaxed;

/* What a reader takes from a slot. */
struct window_view {
	device *dev;
	uintptr_t lo, hi;
	mnemo_pool *owner;
	intptr_t delta;
};

/* A consistent copy of w.  Writers only store words under g_reg_mu, so
 * an odd seq ends soon; no writer runs in a signal handler. */
window_view read_slot(const window_slot &w)
{
	for (;;) {
		unsigned s1 = w.seq.load(kAcq);
		if (s1 & 1) {
			__builtin_ia32_pause();
			continue;
		}
		window_view v{w.dev.load(kRlx), w.lo.load(kRlx),
			      w.hi.load(kRlx), w.owner.load(kRlx),
			      w.delta.load(kRlx)};
		std::atomic_thread_fence(kAcq);
		if (w.seq.load(kRlx) == s1)
			return v;
	}
}

/* The writer's side of a slot's seqlock.  pre: g_reg_mu held (or the
 * only thread: a fork child). */
class slot_write {
public:
	explicit slot_write(window_slot &w) : w_(w)
	{
		w_.seq.store(w_.seq.load(kRlx) + 1, kRlx);
		std::atomic_thread_fence(kRel);
	}
	~slot_write() { w_.seq.store(w_.seq.load(kRlx) + 1, kRel); }
	slot_write(const slot_write &) = delete;
	slot_write &operator=(const slot_write &) = delete;

private:
	window_slot &w_;
};

/* The window holding a: true and *v, or false. */
bool find(uintptr_t a, window_view *v)
{
	for (const window_slot &w : g_windows) {
		if (!w.dev.load(kAcq)) /* a hint; read_slot decides */
			continue;
		*v = read_slot(w);
		if (v->dev && a - v->lo < v->hi - v->lo)
			return true;
	}
	return false;
}

/* The slot of d.  pre: g_reg_mu held (or the only thread). */
window_slot *slot_of_device(const device *d)
{
	for (window_slot &w : g_windows)
		if (w.dev.load(kRlx) == d)
			return &w;
	return nullptr;
}

device *find_window(const void *p)
{
	window_view v;
	return find((uintptr_t)p, &v) ? v.dev : nullptr;
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
		slot_write sw(w);
		w.owner.store(nullptr, kRlx);
		w.delta.store(0, kRlx);
		w.lo.store((uintptr_t)d->base(), kRlx);
		w.hi.store((uintptr_t)d->base() + d->window(), kRlx);
		w.dev.store(d, kRlx);
		moved();
		return true;
	}
	return false;
}

void unregister_window(device *d)
{
	alias_forget_device(d);
	strict_forget(d);
	std::lock_guard<std::mutex> g(g_reg_mu);
	if (window_slot *w = slot_of_device(d)) {
		slot_write sw(*w);
		w->dev.store(nullptr, kRlx);
		w->owner.store(nullptr, kRlx);
		w->hi.store(0, kRlx);
		w->lo.store(0, kRlx);
		moved();
	}
}

void set_owner(device *d, mnemo_pool *p)
{
	std::lock_guard<std::mutex> g(g_reg_mu);
	if (window_slot *w = slot_of_device(d)) {
		slot_write sw(*w);
		w->owner.store(p, kRlx);
		moved();
	}
}

bool set_mirror(device *d, intptr_t delta, bool locked)
{
	std::unique_lock<std::mutex> g(g_reg_mu, std::defer_lock);
	if (!locked)
		g.lock();
	window_slot *w = slot_of_device(d);
	if (!w)
		return false;
	slot_write sw(*w);
	w->delta.store(delta, kRlx);
	return true;
}

mnemo_pool *owner_of(uintptr_t a, uintptr_t *lo, uintptr_t *hi)
{
	window_view v;
	if (!find(a, &v) || !v.owner)
		return nullptr;
	*lo = v.lo;
	*hi = v.hi;
	return v.owner;
}

char *wr_slow(char *p)
{
	window_view v;
	return find((uintptr_t)p, &v) ? p + v.delta : p;
}

device *strict_device_of(uintptr_t a)
{
	window_view v;
	return find(a, &v) && v.delta ? v.dev : nullptr;
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

void device::flush_all(const piece *v, size_t k)
{
	for (size_t i = 0; i < k; i++)
		flush(v[i].p, v[i].n);
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
