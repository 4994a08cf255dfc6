// Only a header: the function lives in libFuzzer, linked by -sanitize=fuzzer.
#include "CFuzzerDriver.h"
