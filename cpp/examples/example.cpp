// A DCGAN-style upsampling layer, ConvTranspose2d(8, 4, kernel_size=4, stride=2, padding=1),
// on a 1x8x5x5 input: prints the shape arithmetic, runs the layer and checks one output
// element against the scatter definition.
#include <cmath>
#include <cstdio>
#include <tconv/tconv.hpp>
#include <vector>

int main() {
  tconv::LayerSpec spec;
  spec.rank = 2;
  spec.stride = {2, 2};
  spec.dilation = {1, 1};
  spec.pad_lo = {1, 1};
  spec.pad_hi = {1, 1};

  const std::vector<std::int64_t> x_shape{1, 8, 5, 5}, w_shape{8, 4, 4, 4};
  tconv::Geometry g = tconv::resolve_geometry(x_shape, w_shape, spec);
  std::printf("output length per dim: (%lld - 1) * 2 + 4 - 1 - 1 = %lld\n", 5LL,
              static_cast<long long>(g.output[0]));

  std::vector<float> x(8 * 5 * 5), w(8 * 4 * 4 * 4), bias(4, 0.5f);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 7) - 3.0f;
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i % 5) * 0.25f - 0.5f;
  std::vector<std::int64_t> y_shape = g.output_shape();
  std::vector<float> y(static_cast<std::size_t>(tconv::checked_product(y_shape, "y")));
  tconv::conv_transpose(g, x.data(), {}, w.data(), {}, bias.data(), y.data(), {});

  // y[0, 1, 3, 4] by the definition: sum over ci and taps with i*2 + k - 1 == o.
  double expect = 0.5;
  for (int ci = 0; ci < 8; ++ci)
    for (int i = 0; i < 5; ++i)
      for (int j = 0; j < 5; ++j)
        for (int kh = 0; kh < 4; ++kh)
          for (int kw = 0; kw < 4; ++kw)
            if (i * 2 + kh - 1 == 3 && j * 2 + kw - 1 == 4)
              expect += static_cast<double>(x[(ci * 5 + i) * 5 + j]) *
                        static_cast<double>(w[((ci * 4 + 1) * 4 + kh) * 4 + kw]);
  const float got = y[(1 * 10 + 3) * 10 + 4];
  std::printf("y shape (%lld, %lld, %lld, %lld); y[0,1,3,4] = %g (expected %g)\n",
              static_cast<long long>(y_shape[0]), static_cast<long long>(y_shape[1]),
              static_cast<long long>(y_shape[2]), static_cast<long long>(y_shape[3]), got, expect);
  if (std::fabs(got - expect) > 1e-4) return 1;

  // Errors come back as exceptions, or as values through try_resolve_geometry.
  spec.output_padding = std::vector<std::int64_t>{2, 2};
  auto r = tconv::try_resolve_geometry(x_shape, w_shape, spec);
  std::printf("output_padding=2: %s\n", r.ok() ? "accepted?!" : r.error().c_str());
  return r.ok() ? 1 : 0;
}
