// gemm_peak_gflops: the measured GEMM roof of a device (ops/gemm.h).
#include "foundry/backend/cpu/gemm.h"
#include "foundry/ops/gemm.h"

namespace foundry {

double gemm_peak_gflops(DType dtype, Device device, double seconds) {
  FOUNDRY_CHECK(dtype == DType::f32 || dtype == DType::bf16,
                "gemm_peak_gflops: dtype {} (expected f32 or bf16)", dtype_name(dtype));
  FOUNDRY_CHECK(device.is_cpu(), "gemm_peak_gflops: device {} not supported in this build", device.str());
  return cpu::measure_peak_gflops(dtype, seconds);
}

}  // namespace foundry
