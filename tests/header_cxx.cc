// The public header stands alone in C++ (compile-only check).
#include <mnemosyne.h>

int main()
{
	return mnemo_errormsg() == nullptr;
}
