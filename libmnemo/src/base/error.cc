/*
 * error.cc -- thread-local error messages.
 */
#include "base/error.h"

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "base/export.h"
#include "mnemosyne.h"

namespace {
/* Messages are bounded; a longer one is cut, never overflowed. */
__attribute__((tls_model("global-dynamic"))) thread_local char tl_msg[512] =
	"no error";
} // namespace

namespace mnemo {

int fail(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(tl_msg, sizeof(tl_msg), fmt, ap);
	va_end(ap);
	return -err;
}

int fail_sys(const char *what, const char *path)
{
	int err = errno;
	return fail(err, "%s %s: %s", what, path, strerror(err));
}

void fail_context(const char *fmt, ...)
{
	size_t used = strlen(tl_msg);
	if (used + 3 >= sizeof(tl_msg))
		return;
	char ctx[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ctx, sizeof(ctx), fmt, ap);
	va_end(ap);
	snprintf(tl_msg + used, sizeof(tl_msg) - used, ": %s", ctx);
}

} // namespace mnemo

MNEMO_API const char *mnemo_errormsg(void)
{
	return tl_msg;
}
