/*
 * pool.cc -- opening and closing pools: the sequence that ties the pool
 * layer, the transaction logs and the heap together (creation, checks and
 * mapping are pool/pool.cc's).
 */
#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/config.h"
#include "api/api.h"
#include "base/error.h"
#include "base/export.h"
#include "heap/heap.h"
#include "mnemosyne.h"
#include "pool/pool.h"
#include "tx/txlog.h"

using namespace mnemo;

namespace {

/* What an open pool owns above the pool layer goes first: the heap and
 * the transaction state name the pool's memory. */
void pool_free(mnemo_pool *p)
{
	if (p->dev) /* no lookup may find the pool any more */
		scm::set_owner(p->dev.get(), nullptr);
	if (p->heap)
		heap::destroy(p->heap);
	if (p->tx)
		tx::pool_state_free(p->tx);
	delete p;
}

/* The layers attach bottom-up: the pool's file, tables and regions;
 * the transaction logs, replaying what committed; then the heap, which
 * reads heap bits the replay may have changed. */
int attach(mnemo_pool *p, unsigned flags)
{
	uint64_t raise = 0;
	tx::set_bit_hooks(&heap::kTxHooks); /* replay may name heap bits */
	int rc = pool_load(p, flags, &raise);
	if (rc == 0 && p->dev->strict())
		strict_handler_install(); /* before replay writes user data */
	if (rc == 0)
		rc = tx::pool_attach(p);
	if (rc == 0)
		rc = heap::attach(p);
	if (rc == 0 && raise && !p->priv) /* the window may be smaller */
		rc = pool_raise_max(p, std::min(raise, p->max));
	return rc;
}

int open_path(const char *path, unsigned flags, mnemo_pool **poolp)
{
	auto *p = new mnemo_pool;
	p->path = path;
	int mode = flags & MNEMO_PRIVATE ? O_RDONLY : O_RDWR;
	p->fd = open(path, mode | O_CLOEXEC);
	int rc = p->fd < 0 ? fail_sys("cannot open pool", path) : 0;
	if (rc == 0)
		rc = attach(p, flags);
	if (rc) {
		pool_free(p);
		return rc;
	}
	*poolp = p;
	return 0;
}

int mkdir_parents(const char *path)
{
	char buf[PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *s = strchr(buf + 1, '/'); s; s = strchr(s + 1, '/')) {
		*s = '\0';
		if (mkdir(buf, 0700) != 0 && errno != EEXIST)
			return fail_sys("cannot create directory", buf);
		*s = '/';
	}
	return 0;
}

int create_default(const char *path)
{
	uint64_t size;
	int rc = default_pool_size(&size);
	if (rc == 0 && (size < MNEMO_POOL_MIN_SIZE || size > MNEMO_POOL_MAX_SIZE))
		rc = fail(EINVAL, "MNEMO_POOL_SIZE=%llu is outside the pool size "
			  "range [%zu, %llu]", (unsigned long long)size,
			  MNEMO_POOL_MIN_SIZE, (unsigned long long)MNEMO_POOL_MAX_SIZE);
	if (rc == 0)
		rc = mkdir_parents(path);
	if (rc == 0)
		rc = pool_create_file(path, window_of(size), 0);
	return rc == -EEXIST ? 0 : rc; /* lost a race: open theirs */
}

__attribute__((tls_model("global-dynamic"))) thread_local char
	tl_default_path[PATH_MAX];

} // namespace

MNEMO_API const char *mnemo_pool_default_path(void)
{
	const char *env = getenv("MNEMO_POOL");
	if (env && *env)
		return env;
	const char *xdg = getenv("XDG_DATA_HOME");
	const char *home = getenv("HOME");
	if (xdg && *xdg)
		snprintf(tl_default_path, sizeof(tl_default_path),
			 "%s/mnemosyne/default.pool", xdg);
	else
		snprintf(tl_default_path, sizeof(tl_default_path),
			 "%s/.local/share/mnemosyne/default.pool",
			 home && *home ? home : "/tmp");
	return tl_default_path;
}

MNEMO_API int mnemo_pool_create(const char *path, size_t size, void *addr,
				unsigned flags, mnemo_pool **poolp)
{
	if (!path || !*path || !poolp)
		return fail(EINVAL, "mnemo_pool_create: path and poolp are "
			    "required");
	int rc = scm::check_flags(flags);
	if (rc)
		return rc;
	if (flags & MNEMO_PRIVATE)
		return fail(EINVAL, "mnemo_pool_create: MNEMO_PRIVATE opens an "
			    "existing pool only");
	if (size < MNEMO_POOL_MIN_SIZE)
		return fail(EINVAL, "pool size %zu is below the minimum of %zu "
			    "bytes", size, MNEMO_POOL_MIN_SIZE);
	if (size > MNEMO_POOL_MAX_SIZE)
		return fail(EINVAL, "pool size %zu is above the maximum of %llu "
			    "bytes", size, (unsigned long long)MNEMO_POOL_MAX_SIZE);
	uint64_t sz = window_of(size);
	rc = addr ? addr_check((uint64_t)addr, sz) : 0;
	if (rc == 0)
		rc = pool_create_file(path, sz, (uint64_t)addr);
	if (rc)
		return rc;
	rc = open_path(path, flags & ~MNEMO_CREATE, poolp);
	/* e.g. its address is taken: it holds no data yet.  EBUSY means another
	 * process opened it meanwhile: it is theirs now. */
	if (rc && rc != -EBUSY)
		unlink(path);
	return rc;
}

MNEMO_API int mnemo_pool_open(const char *path, unsigned flags, mnemo_pool **poolp)
{
	if (!poolp)
		return fail(EINVAL, "mnemo_pool_open: poolp is NULL");
	int rc = scm::check_flags(flags);
	if (rc)
		return rc;
	if (!path)
		path = mnemo_pool_default_path();
	if ((flags & MNEMO_CREATE) && access(path, F_OK) != 0 &&
	    errno == ENOENT && (rc = create_default(path)))
		return rc;
	return open_path(path, flags, poolp);
}

MNEMO_API int mnemo_pool_close(mnemo_pool **poolp)
{
	if (!poolp || !*poolp)
		return fail(EINVAL, "mnemo_pool_close: no pool");
	default_pool_forget(*poolp);
	int rc = tx::pool_detach(*poolp);
	heap::detach(*poolp); /* after the logs are empty */
	pool_free(*poolp);
	*poolp = nullptr;
	int err = scm::take_io_error();
	if (err)
		return fail(err, "an msync of the pool failed: %s",
			    strerror(err));
	return rc;
}

