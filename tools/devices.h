/*
 * devices.h -- `mnemoctl devices`: the persistent-memory devices the kernel
 * knows.  One implementation per build, chosen by configure:
 * devices_ndctl.c (libndctl and libdaxctl) or devices_none.c (without).
 */
#ifndef MNEMOCTL_DEVICES_H
#define MNEMOCTL_DEVICES_H

/* Print the device table on stdout, or a line saying there is none.
 * Returns the exit status: 0; 1 if the system failed (why, on stderr);
 * 2 if mnemoctl was built without libndctl (said on stderr). */
int devices_list(void);

#endif
