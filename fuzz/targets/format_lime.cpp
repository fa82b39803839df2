// The lime opener on any input (see format_opener.hpp).
#include "format_opener.hpp"

VMI_FUZZ_OPENER(open_lime)
