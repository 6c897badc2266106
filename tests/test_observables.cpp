// HistogramGeometry::slot(): which bin a walker lands in, against the definition of the layout
// (bins x fastest, one "outside" slot, -1 for walkers that are not eligible), at bin centres, bin
// edges, the range ends and non-finite coordinates.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "sgdwalk/observables.hpp"

namespace sgdwalk::testing {
namespace {

template <class T>
class HistogramSlot : public ::testing::Test {};
using Precisions = ::testing::Types<float, double>;
TYPED_TEST_SUITE(HistogramSlot, Precisions);

// 8 bins on [-2, 2) (width 1/2, exact in both precisions), band y in [1, 3].
template <class T>
HistogramGeometry<T> band_geometry() {
  HistogramGeometry<T> g;
  g.kind = HistogramKind::x_in_band;
  g.x_bins = 8;
  g.x_lo = T(-2);
  g.x_inv_width = T(2);
  g.band_lo = T(1);
  g.band_hi = T(3);
  return g;
}

// 4 x-bins on [0, 4) and 3 y-bins on [-3, 3) (width 2).
template <class T>
HistogramGeometry<T> xy_geometry() {
  HistogramGeometry<T> g;
  g.kind = HistogramKind::xy;
  g.x_bins = 4;
  g.y_bins = 3;
  g.x_lo = T(0);
  g.x_inv_width = T(1);
  g.y_lo = T(-3);
  g.y_inv_width = T(0.5);
  return g;
}

TYPED_TEST(HistogramSlot, BandHistogramBinsCentresAndEdges) {
  using T = TypeParam;
  const auto g = band_geometry<T>();
  for (int bin = 0; bin < 8; ++bin) {
    const T left_edge = T(-2) + T(bin) * T(0.5);
    EXPECT_EQ(g.slot(left_edge, T(2)), bin) << "left edge of bin " << bin;
    EXPECT_EQ(g.slot(left_edge + T(0.25), T(2)), bin) << "centre of bin " << bin;
  }
  EXPECT_EQ(g.slot(T(2), T(2)), 8) << "the upper end is outside (half-open range)";
  EXPECT_EQ(g.slot(std::nextafter(T(-2), T(-3)), T(2)), 8);
  // Just below the upper end (not the next float down: x − x_lo rounds up to the end there).
  EXPECT_EQ(g.slot(T(2) - T(1) / T(1024), T(2)), 7);
  // The band is inclusive at both ends.
  EXPECT_EQ(g.slot(T(0), T(1)), 4);
  EXPECT_EQ(g.slot(T(0), T(3)), 4);
  EXPECT_EQ(g.slot(T(0), std::nextafter(T(1), T(0))), -1);
  EXPECT_EQ(g.slot(T(0), std::nextafter(T(3), T(4))), -1);
}

TYPED_TEST(HistogramSlot, BandHistogramNonFiniteAndHugeCoordinates) {
  using T = TypeParam;
  const auto g = band_geometry<T>();
  const T inf = std::numeric_limits<T>::infinity();
  const T nan = std::numeric_limits<T>::quiet_NaN();
  const T huge = std::numeric_limits<T>::max();
  EXPECT_EQ(g.slot(nan, T(2)), 8) << "eligible (y in band) but not in any bin";
  EXPECT_EQ(g.slot(inf, T(2)), 8);
  EXPECT_EQ(g.slot(-inf, T(2)), 8);
  EXPECT_EQ(g.slot(huge, T(2)), 8);
  EXPECT_EQ(g.slot(-huge, T(2)), 8);
  EXPECT_EQ(g.slot(T(0), nan), -1) << "NaN progress is in no band";
  EXPECT_EQ(g.slot(T(0), inf), -1);
}

TYPED_TEST(HistogramSlot, XyHistogramLayoutIsXFastest) {
  using T = TypeParam;
  const auto g = xy_geometry<T>();
  for (int ybin = 0; ybin < 3; ++ybin) {
    for (int xbin = 0; xbin < 4; ++xbin) {
      const T x = T(xbin) + T(0.5);
      const T y = T(-3) + T(2) * T(ybin) + T(1);
      EXPECT_EQ(g.slot(x, y), ybin * 4 + xbin) << "x bin " << xbin << ", y bin " << ybin;
      EXPECT_EQ(g.slot(T(xbin), T(-3) + T(2) * T(ybin)), ybin * 4 + xbin) << "lower corner";
    }
  }
}

TYPED_TEST(HistogramSlot, XyHistogramOutsideSlot) {
  using T = TypeParam;
  const auto g = xy_geometry<T>();
  const T nan = std::numeric_limits<T>::quiet_NaN();
  const T inf = std::numeric_limits<T>::infinity();
  const int outside = 12;
  EXPECT_EQ(g.slot(T(4), T(0)), outside);
  EXPECT_EQ(g.slot(T(-1), T(0)), outside);
  EXPECT_EQ(g.slot(T(1), T(3)), outside);
  EXPECT_EQ(g.slot(T(1), T(-4)), outside);
  EXPECT_EQ(g.slot(nan, T(0)), outside) << "every walker is eligible in an xy histogram";
  EXPECT_EQ(g.slot(T(1), nan), outside);
  EXPECT_EQ(g.slot(inf, -inf), outside);
  EXPECT_EQ(g.slot(std::numeric_limits<T>::max(), T(0)), outside);
}

}  // namespace
}  // namespace sgdwalk::testing
