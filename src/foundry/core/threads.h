// Thread settings: the number of OpenMP threads every CPU op uses (defaults to OMP_NUM_THREADS
// or the number of cores). oneDNN follows the same OpenMP setting.
#pragma once

namespace foundry {

int num_threads();
void set_num_threads(int n);

}  // namespace foundry
