// Atomic file output: write to a temporary file beside the target, fsync it, rename it over the
// target, fsync the directory. A run killed at any point leaves either the old file or the complete
// new one, never a partial file.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace spikefm {

// A temporary path beside `target` that becomes `target` on commit(). Writers that need a file name
// (HDF5) create their file at temp_path(), close it, then call commit(). Destroying an uncommitted
// AtomicFile removes the temporary file.
class AtomicFile {
 public:
  explicit AtomicFile(std::filesystem::path target);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  const std::filesystem::path& temp_path() const { return temp_; }
  const std::filesystem::path& target() const { return target_; }

  // fsync(temp) → rename(temp, target) → fsync(directory). Throws spikefm::Error on failure.
  void commit();

 private:
  std::filesystem::path target_;
  std::filesystem::path temp_;
  bool committed_ = false;
};

// Writes `data` to `target` atomically.
void write_file_atomic(const std::filesystem::path& target, std::string_view data);

}  // namespace spikefm
