/*
 * pmem2_lib.cc -- libpmem2 loaded on first use (pmem2_lib.h).
 *
 * dlmopen(LM_ID_BASE) is dlopen into the main namespace; it is called
 * rather than dlopen because the interposer wraps dlopen (to bind the
 * persistent sections of what a program loads) and libmnemo may open the
 * interposer's own pool before the wrapper is ready.  libpmem2 has no
 * such section.
 */
#include <cerrno>
#include <dlfcn.h>
#include <mutex>

#include "base/error.h"
#include "scm/pmem2_lib.h"

namespace mnemo::scm {
namespace {

constexpr char kSoname[] = "libpmem2.so.1";

pmem2_lib g_lib;
const pmem2_lib *g_loaded;
int g_err; /* the first failure, repeated to every caller */
char g_why[256];
std::once_flag g_once;

template <class F> bool sym(void *h, F *fn, const char *name)
{
	*fn = (F)dlsym(h, name);
	return *fn != nullptr;
}

void load()
{
	void *h = dlmopen(LM_ID_BASE, kSoname, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *e = dlerror();
		snprintf(g_why, sizeof(g_why), "%s", e ? e : kSoname);
		g_err = ENOTSUP;
		return;
	}
	bool ok = true;
#define MNEMO_PMEM2_SYM(f) ok = ok && sym(h, &g_lib.f, "pmem2_" #f)
	MNEMO_PMEM2_SYM(config_new);
	MNEMO_PMEM2_SYM(config_delete);
	MNEMO_PMEM2_SYM(config_set_required_store_granularity);
	MNEMO_PMEM2_SYM(config_set_offset);
	MNEMO_PMEM2_SYM(config_set_length);
	MNEMO_PMEM2_SYM(config_set_vm_reservation);
	MNEMO_PMEM2_SYM(map_new);
	MNEMO_PMEM2_SYM(map_delete);
	MNEMO_PMEM2_SYM(map_get_size);
	MNEMO_PMEM2_SYM(map_get_store_granularity);
	MNEMO_PMEM2_SYM(source_from_fd);
	MNEMO_PMEM2_SYM(source_get_fd);
	MNEMO_PMEM2_SYM(source_delete);
	MNEMO_PMEM2_SYM(vm_reservation_new);
	MNEMO_PMEM2_SYM(vm_reservation_delete);
	MNEMO_PMEM2_SYM(vm_reservation_get_address);
	MNEMO_PMEM2_SYM(vm_reservation_get_size);
	MNEMO_PMEM2_SYM(errormsg);
#undef MNEMO_PMEM2_SYM
	if (!ok) {
		snprintf(g_why, sizeof(g_why), "%s lacks an entry point the "
			 "dax backend needs (libpmem2 1.9 or later required)",
			 kSoname);
		g_err = ENOTSUP;
		dlclose(h);
		return;
	}
	g_loaded = &g_lib;
}

} // namespace

int load_pmem2(const pmem2_lib **lib)
{
	std::call_once(g_once, load);
	*lib = g_loaded;
	return g_loaded ? 0
			: fail(g_err, "dax backend: cannot load libpmem2: %s",
			       g_why);
}

} // namespace mnemo::scm
