/*
 * export.h -- how an exported function is marked.  The library is built
 * with -fvisibility=hidden and a version script (libmnemo.sym): a symbol
 * is public only if it is defined with MNEMO_API and listed there.
 */
#ifndef MNEMO_EXPORT_H
#define MNEMO_EXPORT_H

#define MNEMO_API extern "C" __attribute__((visibility("default")))

#endif
