// A program that uses tconv the way a downstream project would: only <tconv/...> headers and
// the tconv::tconv target. Built by both consumer projects and by a bare compiler command.
#include <cmath>
#include <cstdio>
#include <tconv/tconv.hpp>
#include <vector>

namespace {

int failures = 0;

void check(bool ok, const char* what) {
  if (!ok) {
    std::printf("FAILED: %s\n", what);
    ++failures;
  }
}

}  // namespace

int main() {
  // ConvTranspose1d(1, 1, kernel_size=2, stride=2) on x = (1, 2, 3), weight (1, 10), bias 0.5:
  // each input value lands at 2i and 2i + 1.
  tconv::LayerSpec s1;
  s1.rank = 1;
  s1.stride = {2};
  s1.dilation = {1};
  s1.pad_lo = s1.pad_hi = {0};
  const std::vector<float> x1{1, 2, 3}, w1{1, 10}, b1{0.5f};
  const tconv::Geometry g1 = tconv::resolve_geometry({1, 1, 3}, {1, 1, 2}, s1);
  check(g1.output_shape() == std::vector<std::int64_t>{1, 1, 6}, "1-D output shape");
  std::vector<float> y1(6);
  tconv::conv_transpose(g1, x1.data(), {}, w1.data(), {}, b1.data(), y1.data(), {});
  const std::vector<float> want1{1.5f, 10.5f, 2.5f, 20.5f, 3.5f, 30.5f};
  check(y1 == want1, "1-D values");

  // A channels_last 2-D layer with padding "same" (Keras): 5x5 -> 10x10, against the scatter
  // definition evaluated here. TensorFlow's "same" for kernel 3, stride 2 crops nothing at the
  // start and one cell at the end of the 11-cell full result.
  tconv::LayerSpec s2;
  s2.rank = 2;
  s2.stride = {2, 2};
  s2.dilation = {1, 1};
  s2.pad_mode = tconv::PadMode::same;
  s2.data_format = tconv::DataFormat::channels_last;
  const tconv::Geometry g2 = tconv::resolve_geometry({1, 5, 5, 3}, {3, 3, 2, 3}, s2);
  check(g2.output == std::vector<std::int64_t>{10, 10}, "Keras same output size");
  std::vector<double> x2(5 * 5 * 3), w2(3 * 3 * 2 * 3), y2(10 * 10 * 2, -1.0);
  for (std::size_t i = 0; i < x2.size(); ++i) x2[i] = std::sin(0.7 * static_cast<double>(i));
  for (std::size_t i = 0; i < w2.size(); ++i) w2[i] = std::cos(1.3 * static_cast<double>(i));
  tconv::conv_transpose(g2, x2.data(), {}, w2.data(), {}, nullptr, y2.data(), {});
  std::vector<double> ref(y2.size(), 0.0);
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 5; ++j)
      for (int kh = 0; kh < 3; ++kh)
        for (int kw = 0; kw < 3; ++kw) {
          const long oh = i * 2 + kh, ow = j * 2 + kw;
          if (oh < 0 || oh >= 10 || ow < 0 || ow >= 10) continue;
          for (int co = 0; co < 2; ++co)
            for (int ci = 0; ci < 3; ++ci)
              ref[(oh * 10 + ow) * 2 + co] +=
                  x2[(i * 5 + j) * 3 + ci] * w2[((kh * 3 + kw) * 2 + co) * 3 + ci];
        }
  double err = 0;
  for (std::size_t i = 0; i < y2.size(); ++i) err = std::fmax(err, std::fabs(y2[i] - ref[i]));
  check(err < 1e-12, "2-D channels_last values");

  // The plan gives the same numbers.
  tconv::ConvTransposePlan<double> plan({3, 3, 2, 3}, w2.data(), {}, nullptr, s2);
  std::vector<double> y3(y2.size());
  plan.run(plan.geometry({1, 5, 5, 3}), x2.data(), {}, y3.data(), {});
  check(y3 == y2, "plan matches the functional call");

  // Errors as values and as exceptions, with the same message.
  s1.output_padding = std::vector<std::int64_t>{2};
  auto r = tconv::try_resolve_geometry({1, 1, 3}, {1, 1, 2}, s1);
  check(!r.ok(), "output_padding=2 with stride 2 is refused");
  try {
    tconv::resolve_geometry({1, 1, 3}, {1, 1, 2}, s1);
    check(false, "resolve_geometry throws");
  } catch (const tconv::ShapeError& e) {
    check(r.error() == e.what(), "same message both ways");
  }

  std::printf("tconv %s consumer: %s\n", tconv::version, failures ? "FAILED" : "ok");
  return failures ? 1 : 0;
}
