// mnemosyne_map.hpp stands alone (compile-only check, with -pedantic):
// every kind of key and value instantiated.
#include <mnemosyne_map.hpp>

struct big {
	char b[1024];
};
template class mnemo::map<int, int>;
template class mnemo::map<uint64_t, mnemo::string>;
template class mnemo::map<mnemo::string, uint64_t>;
template class mnemo::map<mnemo::string, mnemo::string>;
template class mnemo::map<uint64_t, big, std::greater<uint64_t>>;

int main()
{
	return mnemo::zero_is_empty<mnemo::map<int, int>>::value ? 0 : 1;
}
