#include "foundry/core/threads.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#include "foundry/core/check.h"

namespace foundry {

int num_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

void set_num_threads(int n) {
  FOUNDRY_CHECK(n >= 1, "set_num_threads: {} threads requested", n);
#ifdef _OPENMP
  omp_set_num_threads(n);
#endif
}

}  // namespace foundry
