/*
 * flag.c -- the paper's canonical example: a persistent global toggled
 * inside a transaction.  Needs only mnemosyne.h and gcc -fgnu-tm:
 *
 *   gcc -fgnu-tm -o flag flag.c
 *   ./flag                                   # 1 1 1 ... (volatile)
 *   LD_PRELOAD=libmnemo-preload.so ./flag    # 1 0 1 0 ... across runs
 */
#include <stdio.h>

#include "mnemosyne.h"

MNEMO_PERSISTENT int flag;

int main(void)
{
	__transaction_atomic {
		flag = !flag;
	}
	printf("%d\n", flag);
	return 0;
}
