/*
 * devices_none.c -- `mnemoctl devices` in a build without libndctl
 * (configure found no libndctl or libdaxctl): says so (devices.h).
 */
#include <stdio.h>

#include "devices.h"

int devices_list(void)
{
	fprintf(stderr, "mnemoctl devices: built without libndctl (apt-get "
		"install libndctl-dev libdaxctl-dev, then run configure "
		"again)\n");
	return 2;
}
