// Scaffolding shared by the file-reader tests (DICOM, NIfTI, ...): a fresh directory per test to
// write hand-made files into, and the message of the spikefm::Error a reader throws.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

#include "common/error.h"

namespace spikefm::test {

// Each test gets dir_ (named after the process and the test, removed afterwards) and write(), which
// stores bytes as a file in it.
class ReaderFileTest : public ::testing::Test {
 public:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           ("spikefm_reader_" + std::to_string(::getpid()) + "_" + info->name() + "_" +
            std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::filesystem::path write(const std::string& name, const std::vector<uint8_t>& b) {
    const std::filesystem::path p = dir_ / name;
    std::ofstream f(p, std::ios::binary);
    f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    EXPECT_TRUE(f.good()) << p;
    return p;
  }
  std::filesystem::path dir_;
};

// The message of the spikefm::Error that read(p) throws, or "" (with a test failure) when it throws
// another exception or nothing.
template <typename Read>
std::string reader_error(Read&& read, const std::filesystem::path& p) {
  try {
    read(p);
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << p << ": threw a non-spikefm exception: " << e.what();
    return "";
  }
  ADD_FAILURE() << p << ": read without an error";
  return "";
}

}  // namespace spikefm::test

#define EXPECT_HAS(haystack, needle)                               \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) \
      << "message: " << (haystack) << "\nmissing: " << (needle)
