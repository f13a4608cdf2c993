/*
 * error.h -- the thread-local error message behind mnemo_errormsg().
 */
#ifndef MNEMO_ERROR_H
#define MNEMO_ERROR_H

namespace mnemo {

/* Record a message for this thread and return -err (err > 0).  Every public
 * failure path goes through here exactly once, so the message always
 * describes the latest failure. */
int fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* fail(errno, "<what> <path>: <strerror(errno)>"). */
int fail_sys(const char *what, const char *path);

/* Append ": <context>" to the current message (for callers that add where). */
void fail_context(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

} // namespace mnemo

#endif
