// How the direct driver's phases path splits a group's output channels into items
// (item_columns, an internal header): whole column tiles of the cell kernel where the C target
// allows, never more items than the target asks for.
#include <gtest/gtest.h>

#include <cstdint>

#include "kernels/direct.hpp"

namespace {

using tconv::kernels::direct::item_columns;

TEST(DirectItems, WholeTilesWhereTheTargetAllows) {
  // DCGAN 512->256 at batch 1: 21 columns fit the target on one thread, 10 on each of two.
  // Evened out they would be 20 (tiles 6, 6, 6, 2) and 10 (5, 5).
  EXPECT_EQ(item_columns(256, 21, 6), 24);
  EXPECT_EQ(item_columns(256, 10, 6), 12);
  // 64 channels per group, 42 allowed: two items, the first of six whole tiles.
  EXPECT_EQ(item_columns(64, 42, 6), 36);
}

TEST(DirectItems, EvenItemsWhereWholeTilesWouldPassTheTargetByAFifth) {
  EXPECT_EQ(item_columns(256, 7, 6), 7);    // 12 would be 1.7x the target
  EXPECT_EQ(item_columns(256, 9, 6), 9);    // 12 > 9 + 1
  EXPECT_EQ(item_columns(20, 4, 6), 4);     // no wider than a tile: evened only
  EXPECT_EQ(item_columns(256, 21, 0), 20);  // no cell kernel
  EXPECT_EQ(item_columns(5, 64, 6), 5);     // every channel in one item
}

TEST(DirectItems, EveryChoiceCoversTheGroupWithinTheTarget) {
  for (std::int64_t cout = 1; cout <= 300; ++cout)
    for (std::int64_t most = 1; most <= cout + 8; ++most)
      for (std::int64_t tile : {0, 4, 6, 8}) {
        const std::int64_t unit = item_columns(cout, most, tile);
        ASSERT_GE(unit, 1) << cout << " " << most << " " << tile;
        ASSERT_LE(unit, cout) << cout << " " << most << " " << tile;
        ASSERT_LE(unit, most + most / 5) << cout << " " << most << " " << tile;
        // Never more items than the fewest of at most `most` channels.
        ASSERT_LE((cout + unit - 1) / unit, (cout + most - 1) / most)
            << cout << " " << most << " " << tile;
      }
}

}  // namespace
