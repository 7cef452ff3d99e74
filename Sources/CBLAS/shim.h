// OpenBLAS's CBLAS interface (Debian: libopenblas-dev installs it as /usr/include/x86_64-linux-gnu/cblas.h).
#include <cblas.h>
