/* The public header stands alone in C (compile-only check). */
#include <mnemosyne.h>

MNEMO_PERSISTENT int header_c_persistent;

int main(void)
{
	return mnemo_errormsg() == 0;
}
