// Thin, checked access to HDF5 files (HDF5 C API underneath; no HDF5 types leak out).
//
// Every dataset written here is chunked with a Fletcher-32 checksum and the file uses the HDF5 1.10
// format, whose metadata carries checksums too; a bit flipped anywhere in a tensor or its header is
// detected on read instead of silently changing a weight. Every failure is a spikefm::Error that names
// the file and the path inside it.
//
// Shapes are row-major, outermost dimension first, as numpy/h5py show them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace spikefm {

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& shape);  // "(192, 64)"
int64_t shape_numel(const Shape& shape);

enum class H5Class { floating, integer, string, other };

struct H5DatasetInfo {
  H5Class cls = H5Class::other;
  int bytes = 0;  // element size in bytes (0 for variable-length strings)
  Shape shape;
};

class H5File {
 public:
  // A new file (truncates an existing one). Use with AtomicFile: create at temp_path(), close, commit.
  static H5File create(const std::filesystem::path& path);
  // An existing file, read-only. A missing, truncated or non-HDF5 file throws.
  static H5File open(const std::filesystem::path& path);
  // An existing file, read-write (edits in place: not atomic; for tools and tests).
  static H5File open_rw(const std::filesystem::path& path);

  H5File(H5File&& other) noexcept;
  H5File& operator=(H5File&& other) noexcept;
  H5File(const H5File&) = delete;
  H5File& operator=(const H5File&) = delete;
  ~H5File();

  void close();  // flushes and releases; further use throws
  const std::string& filename() const { return name_; }

  // --- structure ---
  bool exists(const std::string& path) const;  // true for any link (group or dataset); "/" exists
  bool is_group(const std::string& path) const;
  bool is_dataset(const std::string& path) const;
  std::vector<std::string> children(const std::string& group) const;  // member names, sorted
  void create_group(const std::string& path);  // intermediate groups are created too
  void remove(const std::string& path);        // unlinks a group or dataset

  // --- datasets (intermediate groups are created) ---
  void write(const std::string& path, const float* data, const Shape& shape);
  void write(const std::string& path, const double* data, const Shape& shape);
  void write(const std::string& path, const int8_t* data, const Shape& shape);
  void write(const std::string& path, const uint8_t* data, const Shape& shape);
  void write(const std::string& path, const int32_t* data, const Shape& shape);
  void write(const std::string& path, const int64_t* data, const Shape& shape);
  // Variable-length UTF-8 strings; shape {} writes a scalar (exactly one string).
  void write_strings(const std::string& path, const std::vector<std::string>& values, const Shape& shape);

  // gzip level (1-9) for the datasets written after this call; 0 = none (the default).
  void set_deflate(int level) { deflate_ = level; }

  H5DatasetInfo info(const std::string& path) const;

  // Reads a whole dataset converted to T. The stored class (float vs integer) must match T's;
  // `shape_out`, when given, receives the stored shape.
  template <typename T>
  std::vector<T> read(const std::string& path, Shape* shape_out = nullptr) const;
  // As read(), but the stored shape must equal `expected`; the error names both shapes.
  template <typename T>
  std::vector<T> read_exact(const std::string& path, const Shape& expected) const;
  // Variable-length or fixed-length strings (padding stripped).
  std::vector<std::string> read_strings(const std::string& path, Shape* shape_out = nullptr) const;

  // --- scalar attributes on a group or dataset ---
  void set_attr(const std::string& obj, const std::string& name, int64_t value);
  void set_attr(const std::string& obj, const std::string& name, double value);
  void set_attr(const std::string& obj, const std::string& name, const std::string& value);
  bool has_attr(const std::string& obj, const std::string& name) const;
  int64_t attr_int(const std::string& obj, const std::string& name) const;
  double attr_double(const std::string& obj, const std::string& name) const;
  std::string attr_string(const std::string& obj, const std::string& name) const;

 private:
  H5File(int64_t id, std::string name) : id_(id), name_(std::move(name)) {}
  static H5File open_mode(const std::filesystem::path& path, bool writable);
  std::string where(const std::string& path) const;  // "file.h5:/path"
  void write_raw(const std::string& path, int64_t mem_type, int64_t file_type, const void* data,
                 const Shape& shape);
  void read_raw(const std::string& path, int64_t mem_type, void* out, size_t n) const;

  int64_t id_ = -1;  // hid_t
  std::string name_;
  int deflate_ = 0;
};

extern template std::vector<float> H5File::read<float>(const std::string&, Shape*) const;
extern template std::vector<double> H5File::read<double>(const std::string&, Shape*) const;
extern template std::vector<int8_t> H5File::read<int8_t>(const std::string&, Shape*) const;
extern template std::vector<uint8_t> H5File::read<uint8_t>(const std::string&, Shape*) const;
extern template std::vector<int32_t> H5File::read<int32_t>(const std::string&, Shape*) const;
extern template std::vector<int64_t> H5File::read<int64_t>(const std::string&, Shape*) const;
extern template std::vector<float> H5File::read_exact<float>(const std::string&, const Shape&) const;
extern template std::vector<double> H5File::read_exact<double>(const std::string&, const Shape&) const;
extern template std::vector<int8_t> H5File::read_exact<int8_t>(const std::string&, const Shape&) const;
extern template std::vector<uint8_t> H5File::read_exact<uint8_t>(const std::string&, const Shape&) const;
extern template std::vector<int32_t> H5File::read_exact<int32_t>(const std::string&, const Shape&) const;
extern template std::vector<int64_t> H5File::read_exact<int64_t>(const std::string&, const Shape&) const;

}  // namespace spikefm
