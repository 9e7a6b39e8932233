// Bad input through the C++ operator: every check documented in tconv/conv_transpose.hpp
// throws the documented type with a message naming the problem, and y is left untouched.
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <tconv/tconv.hpp>
#include <vector>

using tconv::Geometry;
using tconv::LayerSpec;
using tconv::ShapeError;
using tconv::SizeOverflowError;
using V = std::vector<std::int64_t>;

namespace {

constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
constexpr float kSentinel = -7.0f;

// ConvTranspose2d(3, 2, 3, stride=2, padding=1) on (2, 3, 5, 5): y is (2, 2, 9, 9).
struct Fixture {
  Geometry g;
  std::vector<float> x, w, bias, y;
  Fixture() {
    LayerSpec s;
    s.rank = 2;
    s.stride = {2, 2};
    s.dilation = {1, 1};
    s.pad_lo = s.pad_hi = {1, 1};
    g = tconv::resolve_geometry({2, 3, 5, 5}, {3, 2, 3, 3}, s);
    x.assign(2 * 3 * 5 * 5, 1.0f);
    w.assign(3 * 2 * 3 * 3, 0.5f);
    bias.assign(2, 0.25f);
    y.assign(2 * 2 * 9 * 9, kSentinel);
  }
  void run() { run(g); }
  void run(const Geometry& geo, const V& xs = {}, const V& ws = {}, const V& ys = {}) {
    tconv::conv_transpose(geo, x.data(), xs, w.data(), ws, bias.data(), y.data(), ys);
  }
  bool y_untouched() const {
    for (float v : y)
      if (v != kSentinel) return false;
    return true;
  }
};

template <class E>
void expect_refused(const std::function<void(Fixture&)>& edit_and_run,
                    const std::vector<std::string>& words) {
  Fixture f;
  try {
    edit_and_run(f);
    ADD_FAILURE() << "the call was accepted";
  } catch (const E& e) {
    const std::string m = e.what();
    for (const auto& w : words)
      EXPECT_NE(m.find(w), std::string::npos) << "lacks \"" << w << "\": " << m;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
  EXPECT_TRUE(f.y_untouched()) << "y was written before the call was refused";
}

}  // namespace

TEST(Validate, TheFixtureItselfRuns) {
  Fixture f;
  f.run();
  // Centre pixel (4, 4) of the 9x9 output receives x(2, 2) through tap (1, 1) only... and
  // through no other tap: 2i + k - 1 == 4 has the single solution i = 2, k = 1.
  EXPECT_FLOAT_EQ(f.y[4 * 9 + 4], 0.25f + 3 * 1.0f * 0.5f);
  EXPECT_FALSE(f.y_untouched());
}

TEST(Validate, InconsistentGeometry) {
  using F = Fixture;
  expect_refused<ShapeError>(
      [](F& f) {
        f.g.output[1] = 10;
        f.run();
      },
      {"inconsistent Geometry", "spatial dimension 1", "output is 10", "give 9",
       "resolve_geometry"});
  expect_refused<ShapeError>(
      [](F& f) {
        f.g.rank = 3;
        f.run();
      },
      {"inconsistent Geometry", "input has 2 values", "rank is 3"});
  expect_refused<ShapeError>(
      [](F& f) {
        f.g.rank = 0;
        f.run();
      },
      {"rank must be at least 1"});
  expect_refused<ShapeError>(
      [](F& f) {
        f.g.kernel.pop_back();
        f.run();
      },
      {"kernel has 1 values"});
  expect_refused<ShapeError>(
      [](F& f) {
        f.g.output_padding.clear();
        f.run();
      },
      {"output_padding has 0 values"});
  expect_refused<ShapeError>(
      [](F& f) {
        f.g.stride[0] = 0;
        f.run();
      },
      {"spatial dimension 0", "stride 0"});
  expect_refused<ShapeError>(
      [](F& f) {
        f.g.dilation[1] = -1;
        f.run();
      },
      {"dilation -1"});
  expect_refused<ShapeError>(
      [](F& f) {
        f.g.kernel[1] = 0;
        f.run();
      },
      {"kernel 0"});
  expect_refused<ShapeError>(
      [](F& f) {
        f.g.input[0] = 0;
        f.run();
      },
      {"input 0"});
  expect_refused<ShapeError>(
      [](F& f) {
        f.g.pad_lo[0] = -1;
        f.run();
      },
      {"pad_lo -1"});
  expect_refused<ShapeError>(
      [](F& f) {
        f.g.output_padding[0] = -1;
        f.run();
      },
      {"output_padding -1"});
  // A consistent edit of pads and output is fine; an inconsistent one is not.
  expect_refused<ShapeError>(
      [](F& f) {
        f.g.pad_hi[0] = 0;
        f.run();
      },
      {"output is 9", "give 10"});
  expect_refused<ShapeError>(
      [](F& f) {
        f.g.groups = 0;
        f.run();
      },
      {"groups (0)"});
  expect_refused<ShapeError>(
      [](F& f) {
        f.g.groups = 2;
        f.run();
      },
      {"groups (2)", "in_channels (3)"});
  expect_refused<ShapeError>(
      [](F& f) {
        f.g.out_channels = 3;
        f.g.in_channels = 2;
        f.g.groups = 2;
        f.run();
      },
      {"out_channels (3)"});
  expect_refused<ShapeError>(
      [](F& f) {
        f.g.batch = -1;
        f.run();
      },
      {"must be >= 0", "-1"});
  expect_refused<ShapeError>(
      [](F& f) {
        f.g.data_format = static_cast<tconv::DataFormat>(7);
        f.run();
      },
      {"data_format", "neither channels_first nor channels_last"});
}

TEST(Validate, ConsistentHandEditsRun) {
  Fixture f;
  f.g.pad_hi = {0, 0};
  f.g.output = {10, 10};
  f.y.assign(2 * 2 * 10 * 10, kSentinel);
  f.run();
  EXPECT_FALSE(f.y_untouched());
}

TEST(Validate, SizesThatOverflow) {
  expect_refused<SizeOverflowError>(
      [](Fixture& f) {
        const std::int64_t big = std::int64_t{1} << 40;
        f.g.input = {big, big};
        for (int d = 0; d < 2; ++d) f.g.output[d] = (big - 1) * 2 + 3 - 2;
        f.run();
      },
      {"x", "overflows a 64-bit integer"});
  expect_refused<SizeOverflowError>([](Fixture& f) { f.run(f.g, {kMax, 25, 5, 1}); },
                                    {"the memory span of x", "overflows"});
  expect_refused<SizeOverflowError>([](Fixture& f) { f.run(f.g, {}, {}, {kMax / 2, 81, 9, 1}); },
                                    {"the memory span of y"});
}

TEST(Validate, StrideVectors) {
  expect_refused<std::invalid_argument>(
      [](Fixture& f) { f.run(f.g, {25, 5, 1}); },
      {"x_strides must have one entry per axis", "(2, 3, 5, 5)", "got 3 entries", "empty vector"});
  expect_refused<std::invalid_argument>([](Fixture& f) { f.run(f.g, {}, {1, 1, 1, 1, 1}); },
                                        {"weight_strides", "got 5 entries"});
  expect_refused<std::invalid_argument>([](Fixture& f) { f.run(f.g, {}, {}, {1}); },
                                        {"y_strides", "got 1 entries"});
  expect_refused<std::invalid_argument>(
      [](Fixture& f) { f.run(f.g, {-(std::int64_t{1} << 60), 25, 5, 1}); },
      {"x's strides reach outside the address space", "element strides"});
}

TEST(Validate, NullPointers) {
  expect_refused<std::invalid_argument>(
      [](Fixture& f) {
        tconv::conv_transpose(f.g, static_cast<const float*>(nullptr), {}, f.w.data(), {}, nullptr,
                              f.y.data(), {});
      },
      {"x is a null pointer", "150 elements", "(2, 3, 5, 5)"});
  expect_refused<std::invalid_argument>(
      [](Fixture& f) {
        tconv::conv_transpose(f.g, f.x.data(), {}, static_cast<const float*>(nullptr), {}, nullptr,
                              f.y.data(), {});
      },
      {"weight is a null pointer", "54 elements"});
  expect_refused<std::invalid_argument>(
      [](Fixture& f) {
        tconv::conv_transpose(f.g, f.x.data(), {}, f.w.data(), {}, nullptr,
                              static_cast<float*>(nullptr), {});
      },
      {"y is a null pointer", "324 elements"});
  // A null bias means "no bias".
  Fixture f;
  tconv::conv_transpose(f.g, f.x.data(), {}, f.w.data(), {}, nullptr, f.y.data(), {});
  EXPECT_FLOAT_EQ(f.y[4 * 9 + 4], 1.5f);
}

TEST(Validate, OutputElementsMustNotShareMemory) {
  expect_refused<std::invalid_argument>([](Fixture& f) { f.run(f.g, {}, {}, {0, 81, 9, 1}); },
                                        {"y_strides (0, 81, 9, 1)", "share memory"});
  expect_refused<std::invalid_argument>([](Fixture& f) { f.run(f.g, {}, {}, {162, 81, 1, 1}); },
                                        {"share memory"});
  expect_refused<std::invalid_argument>([](Fixture& f) { f.run(f.g, {}, {}, {162, 81, 9, 2}); },
                                        {"share memory"});
  // Transposed and gapped layouts are fine.
  Fixture f;
  f.y.assign(2 * 2 * 9 * 18, kSentinel);
  f.run(f.g, {}, {}, {2, 1, 72, 8});  // channels, then batch innermost; a gap along W
  EXPECT_FALSE(f.y_untouched());
}

TEST(Validate, OutputMustNotOverlapInputs) {
  expect_refused<std::invalid_argument>(
      [](Fixture& f) {
        // y written over x's own buffer.
        tconv::conv_transpose(f.g, f.y.data() + 10, {}, f.w.data(), {}, nullptr, f.y.data(), {});
      },
      {"y overlaps x", "separate buffer"});
  expect_refused<std::invalid_argument>(
      [](Fixture& f) {
        tconv::conv_transpose(f.g, f.x.data(), {}, f.y.data() + 300, {}, nullptr, f.y.data(), {});
      },
      {"y overlaps weight"});
  expect_refused<std::invalid_argument>(
      [](Fixture& f) {
        tconv::conv_transpose(f.g, f.x.data(), {}, f.w.data(), {}, f.y.data() + 323, f.y.data(),
                              {});
      },
      {"y overlaps bias"});
  // Adjacent, non-overlapping parts of one allocation are fine.
  std::vector<float> arena(150 + 324, 1.0f);
  Fixture f;
  tconv::conv_transpose(f.g, arena.data(), {}, f.w.data(), {}, nullptr, arena.data() + 150, {});
  EXPECT_FLOAT_EQ(arena[150 + 4 * 9 + 4], 1.5f);
}

TEST(Validate, DoubleEntryPointIsCheckedToo) {
  Fixture f;
  f.g.output[0] = 3;
  std::vector<double> x(150), w(54), y(324, -7.0);
  EXPECT_THROW(tconv::conv_transpose(f.g, x.data(), {}, w.data(), {}, nullptr, y.data(), {}),
               ShapeError);
  for (double v : y) ASSERT_EQ(v, -7.0);
}
