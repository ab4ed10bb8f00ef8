#include <gtest/gtest.h>

#include "common/error.h"

using spikefm::Error;

TEST(Error, ComposesWhatWhyAndFix) {
  Error e("reading m.h5:/params/w", "shape (3,) does not match (4,)", "re-train");
  EXPECT_STREQ(e.what(), "reading m.h5:/params/w: shape (3,) does not match (4,) (re-train)");
}

TEST(Error, OmitsEmptyFix) {
  EXPECT_STREQ(Error("opening x", "no such file").what(), "opening x: no such file");
}

TEST(Error, ContextIsPrepended) {
  Error e = Error("a", "b").with_context("loading c");
  EXPECT_STREQ(e.what(), "loading c: a: b");
}
