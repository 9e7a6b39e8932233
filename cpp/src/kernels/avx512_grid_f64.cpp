// AVX-512F grid kernel for double (avx512_grid.hpp).
//
// Built with -mavx512f -mavx2 -mfma for this file only; internal linkage except the entry
// point and no standard-library templates, for the same reason as avx2_gemm.cpp.
#include "kernels/avx512_grid.hpp"

namespace tconv::kernels::avx512 {

bool grid_f64(const GridCall<double>& g) { return grid_gemm<F64, false>(g); }
bool grid_f64_folded(const GridCall<double>& g) { return grid_gemm<F64, true>(g); }

}  // namespace tconv::kernels::avx512

#undef TCONV_LOAD
#undef TCONV_PIN
#undef TCONV_LOAD_VECTORS
#undef TCONV_MASK_CASES
#undef TCONV_ACC24
#undef TCONV_TILE_ACC_DECL
#undef TCONV_TILE_ACCUMULATORS
#undef TCONV_TILE_ACC_SPILL
#undef TCONV_TILE_STORE
