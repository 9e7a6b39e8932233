// Shape arithmetic: every function of tconv/shape.hpp, against formulas written here from the
// frameworks' documentation (PyTorch ConvTranspose docs, Keras' deconv_output_length), and
// every error path of resolve_geometry with the words its message must carry.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <tconv/tconv.hpp>
#include <vector>

using tconv::DataFormat;
using tconv::Geometry;
using tconv::LayerSpec;
using tconv::PadMode;
using tconv::ShapeError;
using tconv::SizeOverflowError;
using V = std::vector<std::int64_t>;

namespace {

constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();

LayerSpec spec_of(int rank, std::int64_t stride = 1, std::int64_t pad = 0,
                  std::int64_t dilation = 1) {
  LayerSpec s;
  s.rank = rank;
  s.stride.assign(static_cast<std::size_t>(rank), stride);
  s.dilation.assign(static_cast<std::size_t>(rank), dilation);
  s.pad_lo.assign(static_cast<std::size_t>(rank), pad);
  s.pad_hi.assign(static_cast<std::size_t>(rank), pad);
  return s;
}

::testing::AssertionResult contains_all(const std::string& message,
                                        const std::vector<std::string>& words) {
  for (const auto& w : words)
    if (message.find(w) == std::string::npos)
      return ::testing::AssertionFailure() << "message lacks \"" << w << "\": " << message;
  return ::testing::AssertionSuccess();
}

// resolve_geometry must throw ShapeError carrying `words`, and try_resolve_geometry must
// return the very same message as a value.
void expect_shape_error(const V& x, const V& w, const LayerSpec& spec,
                        const std::vector<std::string>& words) {
  std::string thrown;
  try {
    tconv::resolve_geometry(x, w, spec);
    ADD_FAILURE() << "resolve_geometry accepted an invalid layer";
    return;
  } catch (const ShapeError& e) {
    thrown = e.what();
  }
  EXPECT_TRUE(contains_all(thrown, words));
  auto r = tconv::try_resolve_geometry(x, w, spec);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), thrown);
  EXPECT_THROW(r.value(), ShapeError);
}

void expect_overflow(const V& x, const V& w, const LayerSpec& spec, const std::string& word) {
  std::string thrown;
  try {
    tconv::resolve_geometry(x, w, spec);
    ADD_FAILURE() << "resolve_geometry accepted an overflowing layer";
    return;
  } catch (const SizeOverflowError& e) {
    thrown = e.what();
  }
  EXPECT_TRUE(contains_all(thrown, {word, "overflows a 64-bit integer"}));
  auto r = tconv::try_resolve_geometry(x, w, spec);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), thrown);
}

// Keras 3 deconv_output_length (keras/src/utils/conv_utils.py), written out independently.
std::int64_t keras_reference(std::int64_t input, bool same, std::int64_t kernel,
                             std::int64_t stride, std::int64_t dilation,
                             std::optional<std::int64_t> op) {
  const std::int64_t k = kernel + (kernel - 1) * (dilation - 1);
  if (!op) return same ? input * stride : input * stride + std::max<std::int64_t>(k - stride, 0);
  const std::int64_t pad = same ? k / 2 : 0;
  return (input - 1) * stride + k - 2 * pad + *op;
}

}  // namespace

// ---- checked arithmetic ----------------------------------------------------------------------

TEST(Checked, MulAndAddInRange) {
  EXPECT_EQ(tconv::checked_mul(6, 7, "a"), 42);
  EXPECT_EQ(tconv::checked_mul(-6, 7, "a"), -42);
  EXPECT_EQ(tconv::checked_mul(kMax, 1, "a"), kMax);
  EXPECT_EQ(tconv::checked_mul(kMin, 1, "a"), kMin);
  EXPECT_EQ(tconv::checked_mul(std::int64_t{1} << 31, std::int64_t{1} << 31, "a"),
            std::int64_t{1} << 62);
  EXPECT_EQ(tconv::checked_add(kMax - 1, 1, "a"), kMax);
  EXPECT_EQ(tconv::checked_add(kMin, kMax, "a"), -1);
}

TEST(Checked, MulOverflowNamesWhat) {
  for (auto [a, b] : {std::pair<std::int64_t, std::int64_t>{kMax, 2},
                      {kMin, -1},
                      {std::int64_t{1} << 32, std::int64_t{1} << 31},
                      {-(kMax / 2) - 2, 2}}) {
    try {
      tconv::checked_mul(a, b, "the widget count");
      ADD_FAILURE() << a << " * " << b << " did not overflow";
    } catch (const SizeOverflowError& e) {
      EXPECT_TRUE(contains_all(e.what(), {"the widget count", "overflows a 64-bit integer",
                                          std::to_string(a), std::to_string(b)}));
    }
  }
}

TEST(Checked, AddOverflowNamesWhat) {
  EXPECT_THROW(tconv::checked_add(kMax, 1, "s"), SizeOverflowError);
  EXPECT_THROW(tconv::checked_add(kMin, -1, "s"), SizeOverflowError);
  try {
    tconv::checked_add(kMax, kMax, "the total");
    ADD_FAILURE();
  } catch (const SizeOverflowError& e) {
    EXPECT_TRUE(contains_all(e.what(), {"the total", "overflows", "+"}));
  }
  // SizeOverflowError is an overflow_error, so callers can catch it generically.
  EXPECT_THROW(tconv::checked_add(kMax, 1, "s"), std::overflow_error);
}

TEST(Checked, Product) {
  EXPECT_EQ(tconv::checked_product({}, "p"), 1);
  EXPECT_EQ(tconv::checked_product({2, 3, 7}, "p"), 42);
  EXPECT_EQ(tconv::checked_product({5, 0, kMax}, "p"), 0);
  EXPECT_THROW(tconv::checked_product({std::int64_t{1} << 40, std::int64_t{1} << 30}, "p"),
               SizeOverflowError);
  // The product overflows only at its last factor.
  EXPECT_THROW(tconv::checked_product({3037000499, 3037000499, 2}, "p"), SizeOverflowError);
}

// ---- one dimension ---------------------------------------------------------------------------

TEST(OneDim, EffectiveKernel) {
  EXPECT_EQ(tconv::effective_kernel(1, 1), 1);
  EXPECT_EQ(tconv::effective_kernel(3, 1), 3);
  EXPECT_EQ(tconv::effective_kernel(3, 2), 5);
  EXPECT_EQ(tconv::effective_kernel(4, 3), 10);
  EXPECT_EQ(tconv::effective_kernel(1, kMax), 1);  // a single tap has no span to dilate
  EXPECT_THROW(tconv::effective_kernel(3, kMax), SizeOverflowError);
  EXPECT_THROW(tconv::effective_kernel(kMax, 2), SizeOverflowError);
}

TEST(OneDim, TransposedLengthMatchesPyTorchFormula) {
  // PyTorch docs: (in - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1
  for (std::int64_t in = 1; in <= 6; ++in)
    for (std::int64_t k = 1; k <= 5; ++k)
      for (std::int64_t s = 1; s <= 4; ++s)
        for (std::int64_t d = 1; d <= 3; ++d)
          for (std::int64_t p = 0; p <= 2; ++p)
            for (std::int64_t op = 0; op < std::max(s, d); ++op)
              ASSERT_EQ(tconv::transposed_length(in, k, s, d, p, p, op),
                        (in - 1) * s - 2 * p + d * (k - 1) + op + 1)
                  << in << " " << k << " " << s << " " << d << " " << p << " " << op;
}

TEST(OneDim, TransposedLengthAsymmetricAndNonPositive) {
  EXPECT_EQ(tconv::transposed_length(5, 3, 2, 1, 0, 2, 0), 9);  // 11 cells, 2 cropped at the end
  EXPECT_EQ(tconv::transposed_length(5, 3, 2, 1, 2, 0, 1), 10);
  EXPECT_EQ(tconv::transposed_length(1, 1, 1, 1, 1, 0, 0), 0);   // may be zero...
  EXPECT_EQ(tconv::transposed_length(1, 1, 1, 1, 2, 3, 0), -4);  // ...or negative, unchecked
}

TEST(OneDim, TransposedLengthOverflow) {
  EXPECT_THROW(tconv::transposed_length(kMax, 1, 2, 1, 0, 0, 0), SizeOverflowError);
  EXPECT_THROW(tconv::transposed_length(3, 1, kMax, 1, 0, 0, 0), SizeOverflowError);
  EXPECT_THROW(tconv::transposed_length(2, 2, kMax, 1, 0, 0, 0), SizeOverflowError);
  EXPECT_THROW(tconv::transposed_length(1, 1, 1, 1, 0, 0, kMax), SizeOverflowError);
  EXPECT_THROW(tconv::transposed_length(1, 1, 1, 1, kMin + 1, 0, 0), SizeOverflowError);
  // The largest representable result is still exact.
  EXPECT_EQ(tconv::transposed_length(2, 1, kMax - 1, 1, 0, 0, 0), kMax);
}

TEST(OneDim, ConvLengthIsFloorDivision) {
  for (std::int64_t in = 1; in <= 12; ++in)
    for (std::int64_t k = 1; k <= 5; ++k)
      for (std::int64_t s = 1; s <= 4; ++s)
        for (std::int64_t d = 1; d <= 3; ++d)
          for (std::int64_t lo = 0; lo <= 2; ++lo)
            for (std::int64_t hi = 0; hi <= 2; ++hi) {
              // Count the window positions directly.
              std::int64_t count = 0;
              const std::int64_t span = d * (k - 1) + 1;
              for (std::int64_t start = 0; start + span <= in + lo + hi; start += s) ++count;
              const std::int64_t got = tconv::conv_length(in, k, s, d, lo, hi);
              if (count > 0)
                ASSERT_EQ(got, count);
              else
                ASSERT_LE(got, 0);
            }
  EXPECT_EQ(tconv::conv_length(1, 5, 2, 1, 0, 0), -1);  // floor(-4 / 2) + 1
  EXPECT_EQ(tconv::conv_length(1, 5, 3, 1, 0, 0), -1);  // floor(-4 / 3) + 1, not trunc
  EXPECT_EQ(tconv::conv_length(2, 5, 3, 1, 0, 0), 0);
  EXPECT_THROW(tconv::conv_length(kMax, 1, 1, 1, 1, 0), SizeOverflowError);
  EXPECT_THROW(tconv::conv_length(1, 3, 1, kMax, 0, 0), SizeOverflowError);
}

TEST(OneDim, KerasLengthMatchesDeconvOutputLength) {
  for (std::int64_t in = 1; in <= 7; ++in)
    for (std::int64_t k = 1; k <= 5; ++k)
      for (std::int64_t s = 1; s <= 4; ++s)
        for (std::int64_t d = 1; d <= 3; ++d)
          for (bool same : {false, true})
            for (std::int64_t op = -1; op < s; ++op) {
              std::optional<std::int64_t> o;
              if (op >= 0) o = op;
              const PadMode mode = same ? PadMode::same : PadMode::valid;
              const std::int64_t want = keras_reference(in, same, k, s, d, o);
              ASSERT_EQ(tconv::keras_length(in, mode, k, s, d, o), want)
                  << "in=" << in << " k=" << k << " s=" << s << " d=" << d << " same=" << same
                  << " op=" << op;
              const tconv::DimPadding p = tconv::resolve_keras_padding(mode, k, s, d, o);
              ASSERT_GE(p.pad_lo, 0);
              ASSERT_GE(p.pad_hi, 0);
              ASSERT_GE(p.output_padding, 0);
              ASSERT_EQ(tconv::transposed_length(in, k, s, d, p.pad_lo, p.pad_hi, p.output_padding),
                        want);
            }
}

TEST(OneDim, KerasCasesFromPractice) {
  // Conv2DTranspose(3, 3, strides=2, padding="same", output_padding=1) on 5x5 gives 10x10, and
  // output_padding=0 on 6x6 gives 11x11 (not the 11 and 12 an often-quoted article claims).
  EXPECT_EQ(tconv::keras_length(5, PadMode::same, 3, 2, 1, 1), 10);
  EXPECT_EQ(tconv::keras_length(6, PadMode::same, 3, 2, 1, 0), 11);
  EXPECT_EQ(tconv::keras_length(5, PadMode::same, 3, 2, 1, std::nullopt), 10);
  EXPECT_EQ(tconv::keras_length(5, PadMode::valid, 3, 2, 1, std::nullopt), 11);
  // TensorFlow's split of "same": the odd cropped cell goes to the end.
  const tconv::DimPadding p = tconv::resolve_keras_padding(PadMode::same, 4, 2, 1, std::nullopt);
  EXPECT_EQ(p.pad_lo, 1);
  EXPECT_EQ(p.pad_hi, 1);
  const tconv::DimPadding q = tconv::resolve_keras_padding(PadMode::same, 3, 2, 1, std::nullopt);
  EXPECT_EQ(q.pad_lo, 0);
  EXPECT_EQ(q.pad_hi, 1);
  EXPECT_EQ(q.output_padding, 0);
}

// ---- Geometry --------------------------------------------------------------------------------

TEST(Geometry, ShapesChannelsFirst) {
  LayerSpec s = spec_of(2, 2, 1);
  s.groups = 2;
  s.output_padding = V{1, 0};
  const Geometry g = tconv::resolve_geometry({3, 4, 5, 6}, {4, 3, 3, 2}, s);
  EXPECT_EQ(g.rank, 2);
  EXPECT_EQ(g.batch, 3);
  EXPECT_EQ(g.in_channels, 4);
  EXPECT_EQ(g.out_channels, 6);
  EXPECT_EQ(g.groups, 2);
  EXPECT_EQ(g.output, (V{10, 10}));  // 4*2+3-2+1, 5*2+2-2+0
  EXPECT_EQ(g.input_shape(), (V{3, 4, 5, 6}));
  EXPECT_EQ(g.weight_shape(), (V{4, 3, 3, 2}));
  EXPECT_EQ(g.output_shape(), (V{3, 6, 10, 10}));
  EXPECT_EQ(g.pad_lo, (V{1, 1}));
  EXPECT_EQ(g.output_padding, (V{1, 0}));
  EXPECT_DOUBLE_EQ(g.flops(), 2.0 * 3 * 4 * 3 * (5 * 6) * (3 * 2));
}

TEST(Geometry, ShapesChannelsLast) {
  LayerSpec s = spec_of(3, 1);
  s.stride = {1, 2, 3};
  s.data_format = DataFormat::channels_last;
  const Geometry g = tconv::resolve_geometry({2, 3, 4, 5, 7}, {2, 2, 2, 5, 7}, s);
  EXPECT_EQ(g.in_channels, 7);
  EXPECT_EQ(g.out_channels, 5);
  EXPECT_EQ(g.output, (V{4, 8, 14}));
  EXPECT_EQ(g.input_shape(), (V{2, 3, 4, 5, 7}));
  EXPECT_EQ(g.weight_shape(), (V{2, 2, 2, 5, 7}));
  EXPECT_EQ(g.output_shape(), (V{2, 4, 8, 14, 5}));
}

TEST(Geometry, KerasSameAndValid) {
  LayerSpec s = spec_of(2, 2);
  s.pad_mode = PadMode::same;
  s.pad_lo.clear();  // ignored for same/valid
  s.pad_hi.clear();
  s.data_format = DataFormat::channels_last;
  s.output_padding = V{1, 1};
  EXPECT_EQ(tconv::resolve_geometry({1, 5, 5, 8}, {3, 3, 4, 8}, s).output, (V{10, 10}));
  s.output_padding = V{0, 0};
  EXPECT_EQ(tconv::resolve_geometry({1, 6, 6, 8}, {3, 3, 4, 8}, s).output, (V{11, 11}));
  s.output_padding.reset();
  EXPECT_EQ(tconv::resolve_geometry({1, 5, 5, 8}, {3, 3, 4, 8}, s).output, (V{10, 10}));
  s.pad_mode = PadMode::valid;
  EXPECT_EQ(tconv::resolve_geometry({1, 5, 5, 8}, {3, 3, 4, 8}, s).output, (V{11, 11}));
}

TEST(Geometry, EmptyBatchAndChannelsAreAllowed) {
  const LayerSpec s = spec_of(1, 2);
  EXPECT_EQ(tconv::resolve_geometry({0, 3, 5}, {3, 2, 3}, s).output_shape(), (V{0, 2, 11}));
  EXPECT_EQ(tconv::resolve_geometry({2, 0, 5}, {0, 2, 3}, s).output_shape(), (V{2, 2, 11}));
  EXPECT_EQ(tconv::resolve_geometry({2, 3, 5}, {3, 0, 3}, s).output_shape(), (V{2, 0, 11}));
}

TEST(Geometry, DepthwiseAndHighRank) {
  LayerSpec s = spec_of(1);
  s.groups = 6;
  EXPECT_EQ(tconv::resolve_geometry({1, 6, 4}, {6, 1, 3}, s).out_channels, 6);
  // Any rank >= 1 is accepted.
  const Geometry g = tconv::resolve_geometry({1, 1, 2, 2, 2, 2}, {1, 1, 2, 2, 2, 2}, spec_of(4));
  EXPECT_EQ(g.output, (V{3, 3, 3, 3}));
}

// ---- every error path of resolve_geometry ----------------------------------------------------

TEST(ResolveErrors, Rank) {
  expect_shape_error({1, 2}, {2, 2}, spec_of(0), {"at least one spatial dimension", "rank 2"});
  expect_shape_error({1, 2, 5}, {2, 2, 3}, spec_of(2), {"weight must have rank 4", "(2, 2, 3)"});
  expect_shape_error({2, 5}, {2, 2, 3}, spec_of(1),
                     {"x must have rank 3", "(N, C_in, *spatial)", "got shape (2, 5)"});
  LayerSpec cl = spec_of(1);
  cl.data_format = DataFormat::channels_last;
  expect_shape_error({2, 5}, {3, 2, 2}, cl, {"x must have rank 3", "(N, *spatial, C_in)"});
  expect_shape_error({1, 2, 5}, {2, 2}, cl,
                     {"weight must have rank 3", "(*kernel, C_out/groups, C_in)"});
}

TEST(ResolveErrors, ParameterLengths) {
  LayerSpec s = spec_of(2);
  s.stride = {1};
  expect_shape_error({1, 2, 5, 5}, {2, 2, 3, 3}, s,
                     {"stride must have one value per spatial dimension (2)", "got 1 values (1,)"});
  s = spec_of(2);
  s.dilation = {1, 1, 1};
  expect_shape_error({1, 2, 5, 5}, {2, 2, 3, 3}, s, {"dilation must have one value", "got 3"});
  s = spec_of(2);
  s.pad_lo = {1};
  expect_shape_error({1, 2, 5, 5}, {2, 2, 3, 3}, s, {"padding must have one value"});
  s = spec_of(2);
  s.pad_hi = {};
  expect_shape_error({1, 2, 5, 5}, {2, 2, 3, 3}, s, {"padding must have one value", "got 0"});
  s = spec_of(2);
  s.output_padding = V{0};
  expect_shape_error({1, 2, 5, 5}, {2, 2, 3, 3}, s, {"output_padding must have one value"});
}

TEST(ResolveErrors, NegativeSizes) {
  expect_shape_error({1, 2, -5}, {2, 2, 3}, spec_of(1), {"x has a negative size", "(1, 2, -5)"});
  expect_shape_error({-1, 2, 5}, {2, 2, 3}, spec_of(1), {"x has a negative size"});
  expect_shape_error({1, 2, 5}, {2, -2, 3}, spec_of(1),
                     {"weight has a negative size", "(2, -2, 3)"});
}

TEST(ResolveErrors, Groups) {
  LayerSpec s = spec_of(1);
  s.groups = 0;
  expect_shape_error({1, 2, 5}, {2, 2, 3}, s, {"groups must be a positive integer", "got 0"});
  s.groups = -3;
  expect_shape_error({1, 2, 5}, {2, 2, 3}, s, {"groups must be a positive integer", "-3"});
  s.groups = 4;
  expect_shape_error({1, 6, 5}, {6, 2, 3}, s, {"in_channels (6) must be divisible by groups (4)"});
}

TEST(ResolveErrors, ChannelMismatchWithHints) {
  expect_shape_error(
      {1, 4, 5}, {3, 2, 3}, spec_of(1),
      {"x has 4 input channels but the weight expects 3", "the weight's C_in axis must equal"});
  // channels_first layer given a channels_last-looking x.
  expect_shape_error(
      {1, 5, 3}, {3, 2, 3}, spec_of(1),
      {"x has 5 input channels", "x looks channels_last", "data_format=\"channels_last\""});
  LayerSpec cl = spec_of(1);
  cl.data_format = DataFormat::channels_last;
  expect_shape_error(
      {1, 3, 5}, {3, 2, 3}, cl,
      {"x has 5 input channels", "x looks channels_first", "data_format=\"channels_first\""});
}

TEST(ResolveErrors, KernelStrideDilationInput) {
  expect_shape_error({1, 2, 5, 5}, {2, 2, 3, 0}, spec_of(2),
                     {"kernel size must be at least 1", "got 0", "spatial dimension 1 (width)"});
  expect_shape_error({1, 2, 5, 5, 5}, {2, 2, 0, 3, 3}, spec_of(3),
                     {"kernel size must be at least 1", "spatial dimension 0 (depth)"});
  expect_shape_error({1, 2, 5}, {2, 2, 3}, spec_of(1, 0),
                     {"stride must be a positive integer", "got 0", "stride=1"});
  expect_shape_error({1, 2, 5}, {2, 2, 3}, spec_of(1, -2), {"stride must be a positive", "-2"});
  expect_shape_error({1, 2, 5}, {2, 2, 3}, spec_of(1, 1, 0, 0),
                     {"dilation must be a positive integer", "got 0", "dilation=1"});
  expect_shape_error(
      {1, 2, 5, 0}, {2, 2, 3, 3}, spec_of(2),
      {"x must have at least one element along every spatial dimension", "got size 0", "width"});
}

TEST(ResolveErrors, Padding) {
  LayerSpec s = spec_of(2);
  s.pad_lo = {0, -1};
  expect_shape_error({1, 2, 5, 5}, {2, 2, 3, 3}, s,
                     {"padding must be non-negative", "(-1, 0)", "output_padding instead"});
  // Padding that crops everything: 5 + 3 - 1 = 7 cells, 4 + 4 cropped.
  expect_shape_error({1, 2, 5}, {2, 2, 3}, spec_of(1, 1, 4),
                     {"the output would have size -1", "uncropped result has 7 cells",
                      "crops 4 + 4", "at most 3 per side"});
  expect_shape_error({1, 2, 1}, {2, 2, 1}, spec_of(1, 1, 1), {"the output would have size -1"});
}

TEST(ResolveErrors, OutputPaddingRange) {
  LayerSpec s = spec_of(1, 2);
  s.output_padding = V{2};
  expect_shape_error({1, 2, 5}, {2, 2, 3}, s,
                     {"output_padding must be smaller than either stride or dilation",
                      "output_padding=2 with stride=2 and dilation=1", "[0, 1]", "add 1"});
  s.output_padding = V{-1};
  expect_shape_error({1, 2, 5}, {2, 2, 3}, s, {"output_padding must be smaller", "(and >= 0)"});
  // dilation raises PyTorch's limit.
  s = spec_of(1, 1, 0, 3);
  s.output_padding = V{2};
  EXPECT_EQ(tconv::resolve_geometry({1, 2, 5}, {2, 2, 3}, s).output, (V{13}));
  // Keras' rule is output_padding < stride, whatever the dilation.
  s.pad_mode = PadMode::same;
  s.output_padding = V{1};
  expect_shape_error({1, 2, 5}, {2, 2, 3}, s,
                     {"output_padding must be smaller than the stride with padding=\"same\"",
                      "output_padding=1 with stride=1", "output_padding=None"});
  s.pad_mode = PadMode::valid;
  expect_shape_error({1, 2, 5}, {2, 2, 3}, s, {"padding=\"valid\"", "Keras' rule"});
}

TEST(ResolveErrors, OverflowIsCheckedNotWrapped) {
  // Huge sizes: every product is checked before anything would be allocated.
  const std::int64_t big = std::int64_t{1} << 40;
  expect_overflow({big, 1, big}, {1, 1, 1}, spec_of(1), "the number of elements of x");
  expect_overflow({1, 1, std::int64_t{1} << 61}, {1, 1, 1}, spec_of(1), "the byte size of x");
  expect_overflow({1, 1, 4}, {1, big, big}, spec_of(1), "the number of elements of weight");
  expect_overflow({1, 1, big}, {1, 1, 1}, spec_of(1, big), "the transposed convolution output");
  expect_overflow({1, 1, 2}, {1, 1, 1}, spec_of(1, kMax), "output length");
  expect_overflow({1, 1, 2}, {1, 1, 3}, spec_of(1, 1, 0, kMax), "dilation");
  expect_overflow({1, 1, big}, {1, big, 2}, spec_of(1, 1 << 20),
                  "the number of elements of the output");
  LayerSpec s = spec_of(1);
  s.groups = std::int64_t{1} << 62;
  expect_overflow({1, std::int64_t{1} << 62, 2}, {std::int64_t{1} << 62, 4, 1}, s, "out_channels");
}

// ---- output_padding_for_size -----------------------------------------------------------------

TEST(OutputSize, ReachableSizes) {
  const LayerSpec s = spec_of(2, 2, 1);  // x 5 -> 9 or 10
  EXPECT_EQ(tconv::output_padding_for_size({1, 2, 5, 5}, {2, 2, 3, 3}, s, {10, 9}), (V{1, 0}));
  EXPECT_EQ(tconv::output_padding_for_size({1, 2, 5, 5}, {2, 2, 3, 3}, s, {1, 2, 9, 10}),
            (V{0, 1}));
  LayerSpec cl = s;
  cl.data_format = DataFormat::channels_last;
  EXPECT_EQ(tconv::output_padding_for_size({1, 5, 5, 2}, {3, 3, 2, 2}, cl, {1, 10, 10, 2}),
            (V{1, 1}));
  // Stride 3 reaches three sizes.
  EXPECT_EQ(tconv::output_padding_for_size({1, 1, 4}, {1, 1, 3}, spec_of(1, 3), {14}), (V{2}));
}

TEST(OutputSize, Errors) {
  const LayerSpec s = spec_of(2, 2, 1);
  try {
    tconv::output_padding_for_size({1, 2, 5, 5}, {2, 2, 3, 3}, s, {11, 9});
    ADD_FAILURE();
  } catch (const ShapeError& e) {
    EXPECT_TRUE(contains_all(e.what(), {"requested an output size of (11, 9)",
                                        "valid sizes range from (9, 9) to (10, 10)"}));
  }
  EXPECT_THROW(tconv::output_padding_for_size({1, 2, 5, 5}, {2, 2, 3, 3}, s, {8, 9}), ShapeError);
  try {
    tconv::output_padding_for_size({1, 2, 5, 5}, {2, 2, 3, 3}, s, {10});
    ADD_FAILURE();
  } catch (const ShapeError& e) {
    EXPECT_TRUE(contains_all(e.what(), {"output_size must give 2 spatial sizes", "(10,)"}));
  }
  // The layer itself is validated first.
  EXPECT_THROW(tconv::output_padding_for_size({1, 3, 5, 5}, {2, 2, 3, 3}, s, {10, 10}), ShapeError);
}

TEST(ResultType, ValueAndError) {
  auto ok = tconv::Result<int>::success(7);
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(ok.value(), 7);
  EXPECT_TRUE(ok.error().empty());
  auto bad = tconv::Result<int>::failure("nope");
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.error(), "nope");
  try {
    (void)bad.value();
    ADD_FAILURE();
  } catch (const ShapeError& e) {
    EXPECT_STREQ(e.what(), "nope");
  }
  auto good = tconv::try_resolve_geometry({1, 2, 5}, {2, 3, 3}, spec_of(1, 2));
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(good.value().output, (V{11}));
}

TEST(Version, MacrosMatchString) {
  const std::string v = std::to_string(TCONV_VERSION_MAJOR) + "." +
                        std::to_string(TCONV_VERSION_MINOR) + "." +
                        std::to_string(TCONV_VERSION_PATCH);
  EXPECT_EQ(v, tconv::version);
}
