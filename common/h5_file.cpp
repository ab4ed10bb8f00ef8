#include "common/h5_file.h"

#include <hdf5.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "common/error.h"

namespace spikefm {

static_assert(sizeof(hid_t) == sizeof(int64_t), "hid_t is stored as int64_t");

std::string shape_str(const Shape& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) s += ",";
  return s + ")";
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

namespace {

// HDF5 prints its error stack to stderr by default; we report our own errors instead.
struct SilenceHdf5 {
  SilenceHdf5() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }
};
void silence() { static SilenceHdf5 once; }

// Closes an HDF5 handle of any kind when it goes out of scope.
class Handle {
 public:
  explicit Handle(hid_t id = -1) : id_(id) {}
  ~Handle() {
    if (id_ >= 0) H5Idec_ref(id_);
  }
  Handle(Handle&& o) noexcept : id_(o.id_) { o.id_ = -1; }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle& operator=(Handle&&) = delete;
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  hid_t id_;
};

std::vector<hsize_t> to_dims(const Shape& shape) { return {shape.begin(), shape.end()}; }

hid_t make_space(const Shape& shape) {
  if (shape.empty()) return H5Screate(H5S_SCALAR);
  auto dims = to_dims(shape);
  return H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
}

Shape space_shape(hid_t space) {
  int rank = H5Sget_simple_extent_ndims(space);
  if (rank < 0) return {};
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  return {dims.begin(), dims.end()};
}

hid_t vlen_utf8_type() {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

H5Class class_of(hid_t type) {
  switch (H5Tget_class(type)) {
    case H5T_FLOAT: return H5Class::floating;
    case H5T_INTEGER: return H5Class::integer;
    case H5T_STRING: return H5Class::string;
    default: return H5Class::other;
  }
}

const char* class_name(H5Class c) {
  switch (c) {
    case H5Class::floating: return "float";
    case H5Class::integer: return "integer";
    case H5Class::string: return "string";
    default: return "other";
  }
}

template <typename T>
hid_t mem_type_of() {
  if constexpr (std::is_same_v<T, float>) return H5T_NATIVE_FLOAT;
  if constexpr (std::is_same_v<T, double>) return H5T_NATIVE_DOUBLE;
  if constexpr (std::is_same_v<T, int8_t>) return H5T_NATIVE_INT8;
  if constexpr (std::is_same_v<T, uint8_t>) return H5T_NATIVE_UINT8;
  if constexpr (std::is_same_v<T, int32_t>) return H5T_NATIVE_INT32;
  if constexpr (std::is_same_v<T, int64_t>) return H5T_NATIVE_INT64;
}

template <typename T>
H5Class class_of_t() {
  return std::is_floating_point_v<T> ? H5Class::floating : H5Class::integer;
}

const char* kCorruptHint = "the file is truncated or corrupted; re-create it";

}  // namespace

// ---------------------------------------------------------------------------------------------------

H5File H5File::create(const std::filesystem::path& path) {
  silence();
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS));
  // 1.10 format: checksummed superblock and object headers.
  H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V110, H5F_LIBVER_LATEST);
  hid_t id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get());
  if (id < 0) throw Error("creating HDF5 file " + path.string(), "HDF5 could not create it",
                          "check that the directory exists and is writable");
  return H5File(id, path.string());
}

H5File H5File::open(const std::filesystem::path& path) { return open_mode(path, false); }
H5File H5File::open_rw(const std::filesystem::path& path) { return open_mode(path, true); }

H5File H5File::open_mode(const std::filesystem::path& path, bool writable) {
  silence();
  if (!std::filesystem::exists(path)) {
    throw Error("opening " + path.string(), "no such file", "check the path");
  }
  if (!std::filesystem::is_regular_file(path)) {
    throw Error("opening " + path.string(), "not a regular file", "pass an HDF5 file");
  }
  htri_t is = H5Fis_hdf5(path.c_str());
  if (is <= 0) {
    throw Error("opening " + path.string(), "not an HDF5 file (no HDF5 signature found)",
                "pass a file written by spikefm or another HDF5 writer");
  }
  hid_t id = H5Fopen(path.c_str(), writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, H5P_DEFAULT);
  if (id < 0) throw Error("opening " + path.string(), "HDF5 cannot read it", kCorruptHint);
  return H5File(id, path.string());
}

H5File::H5File(H5File&& other) noexcept : id_(other.id_), name_(std::move(other.name_)), deflate_(other.deflate_) {
  other.id_ = -1;
}

H5File& H5File::operator=(H5File&& other) noexcept {
  if (this != &other) {
    close();
    id_ = other.id_;
    name_ = std::move(other.name_);
    deflate_ = other.deflate_;
    other.id_ = -1;
  }
  return *this;
}

H5File::~H5File() {
  if (id_ >= 0) H5Fclose(id_);
}

void H5File::close() {
  if (id_ >= 0) {
    herr_t rc = H5Fclose(id_);
    id_ = -1;
    if (rc < 0) throw Error("closing " + name_, "HDF5 failed to flush the file");
  }
}

std::string H5File::where(const std::string& path) const { return name_ + ":" + path; }

bool H5File::exists(const std::string& path) const {
  if (path == "/" || path.empty()) return true;
  // H5Lexists fails (rather than returning false) when an intermediate group is missing.
  size_t pos = 0;
  while (true) {
    pos = path.find('/', pos + 1);
    std::string prefix = path.substr(0, pos);
    if (!prefix.empty() && prefix != "/") {
      if (H5Lexists(id_, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    }
    if (pos == std::string::npos) return true;
  }
}

bool H5File::is_group(const std::string& path) const {
  if (!exists(path)) return false;
  H5O_info_t info;
  if (H5Oget_info_by_name2(id_, path.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0) return false;
  return info.type == H5O_TYPE_GROUP;
}

bool H5File::is_dataset(const std::string& path) const {
  if (!exists(path)) return false;
  H5O_info_t info;
  if (H5Oget_info_by_name2(id_, path.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0) return false;
  return info.type == H5O_TYPE_DATASET;
}

std::vector<std::string> H5File::children(const std::string& group) const {
  if (!is_group(group)) throw Error("listing " + where(group), "no such group", kCorruptHint);
  Handle g(H5Gopen2(id_, group.c_str(), H5P_DEFAULT));
  if (!g.ok()) throw Error("listing " + where(group), "cannot open group", kCorruptHint);
  std::vector<std::string> names;
  auto cb = [](hid_t, const char* name, const H5L_info_t*, void* out) -> herr_t {
    static_cast<std::vector<std::string>*>(out)->emplace_back(name);
    return 0;
  };
  if (H5Literate(g.get(), H5_INDEX_NAME, H5_ITER_INC, nullptr, cb, &names) < 0) {
    throw Error("listing " + where(group), "cannot iterate members", kCorruptHint);
  }
  std::sort(names.begin(), names.end());
  return names;
}

void H5File::create_group(const std::string& path) {
  if (is_group(path)) return;
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE));
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  Handle g(H5Gcreate2(id_, path.c_str(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT));
  if (!g.ok()) throw Error("creating group " + where(path), "HDF5 refused");
}

void H5File::remove(const std::string& path) {
  if (!exists(path)) throw Error("removing " + where(path), "no such object");
  if (H5Ldelete(id_, path.c_str(), H5P_DEFAULT) < 0) throw Error("removing " + where(path), "HDF5 refused");
}

void H5File::write_raw(const std::string& path, int64_t mem_type, int64_t file_type, const void* data,
                       const Shape& shape) {
  for (int64_t d : shape) {
    if (d < 0) throw Error("writing " + where(path), "negative dimension in " + shape_str(shape));
  }
  Handle space(make_space(shape));
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE));
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  Handle dcpl(H5Pcreate(H5P_DATASET_CREATE));
  if (!shape.empty() && shape_numel(shape) > 0) {
    // Chunks of at most ~1 MiB along the outermost dimension, each with a Fletcher-32 checksum.
    auto chunk = to_dims(shape);
    size_t elem = H5Tget_size(mem_type);
    hsize_t inner = 1;
    for (size_t i = 1; i < chunk.size(); ++i) inner *= chunk[i];
    hsize_t rows = std::max<hsize_t>(1, (1u << 20) / std::max<hsize_t>(1, inner * elem));
    chunk[0] = std::min(chunk[0], rows);
    H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data());
    if (deflate_ > 0) {
      H5Pset_shuffle(dcpl.get());
      H5Pset_deflate(dcpl.get(), static_cast<unsigned>(deflate_));
    }
    H5Pset_fletcher32(dcpl.get());
  }
  Handle ds(H5Dcreate2(id_, path.c_str(), file_type, space.get(), lcpl.get(), dcpl.get(), H5P_DEFAULT));
  if (!ds.ok()) throw Error("writing " + where(path), "cannot create dataset (does it exist already?)");
  if (shape_numel(shape) > 0 &&
      H5Dwrite(ds.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
    throw Error("writing " + where(path), "HDF5 write failed");
  }
}

void H5File::write(const std::string& p, const float* d, const Shape& s) {
  write_raw(p, H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, d, s);
}
void H5File::write(const std::string& p, const double* d, const Shape& s) {
  write_raw(p, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, d, s);
}
void H5File::write(const std::string& p, const int8_t* d, const Shape& s) {
  write_raw(p, H5T_NATIVE_INT8, H5T_STD_I8LE, d, s);
}
void H5File::write(const std::string& p, const uint8_t* d, const Shape& s) {
  write_raw(p, H5T_NATIVE_UINT8, H5T_STD_U8LE, d, s);
}
void H5File::write(const std::string& p, const int32_t* d, const Shape& s) {
  write_raw(p, H5T_NATIVE_INT32, H5T_STD_I32LE, d, s);
}
void H5File::write(const std::string& p, const int64_t* d, const Shape& s) {
  write_raw(p, H5T_NATIVE_INT64, H5T_STD_I64LE, d, s);
}

void H5File::write_strings(const std::string& path, const std::vector<std::string>& values,
                           const Shape& shape) {
  if (static_cast<int64_t>(values.size()) != shape_numel(shape)) {
    throw Error("writing " + where(path), std::to_string(values.size()) + " strings do not fill shape " +
                                              shape_str(shape));
  }
  std::vector<const char*> ptrs;
  ptrs.reserve(values.size());
  for (const auto& v : values) ptrs.push_back(v.c_str());
  Handle type(vlen_utf8_type());
  Handle space(make_space(shape));
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE));
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  Handle ds(H5Dcreate2(id_, path.c_str(), type.get(), space.get(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT));
  if (!ds.ok()) throw Error("writing " + where(path), "cannot create dataset (does it exist already?)");
  if (!values.empty() && H5Dwrite(ds.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0) {
    throw Error("writing " + where(path), "HDF5 write failed");
  }
}

H5DatasetInfo H5File::info(const std::string& path) const {
  if (!is_dataset(path)) throw Error("reading " + where(path), "no such dataset", kCorruptHint);
  Handle ds(H5Dopen2(id_, path.c_str(), H5P_DEFAULT));
  if (!ds.ok()) throw Error("reading " + where(path), "cannot open dataset", kCorruptHint);
  Handle type(H5Dget_type(ds.get()));
  Handle space(H5Dget_space(ds.get()));
  if (!type.ok() || !space.ok()) throw Error("reading " + where(path), "unreadable header", kCorruptHint);
  H5DatasetInfo out;
  out.cls = class_of(type.get());
  out.bytes = (out.cls == H5Class::string && H5Tis_variable_str(type.get()) > 0)
                  ? 0
                  : static_cast<int>(H5Tget_size(type.get()));
  out.shape = space_shape(space.get());
  return out;
}

void H5File::read_raw(const std::string& path, int64_t mem_type, void* out, size_t n) const {
  Handle ds(H5Dopen2(id_, path.c_str(), H5P_DEFAULT));
  if (!ds.ok()) throw Error("reading " + where(path), "cannot open dataset", kCorruptHint);
  if (n > 0 && H5Dread(ds.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0) {
    throw Error("reading " + where(path), "data failed its checksum or could not be read", kCorruptHint);
  }
}

template <typename T>
std::vector<T> H5File::read(const std::string& path, Shape* shape_out) const {
  H5DatasetInfo di = info(path);
  if (di.cls != class_of_t<T>()) {
    throw Error("reading " + where(path),
                std::string("stored as ") + class_name(di.cls) + ", expected " + class_name(class_of_t<T>()),
                kCorruptHint);
  }
  std::vector<T> data(static_cast<size_t>(shape_numel(di.shape)));
  read_raw(path, mem_type_of<T>(), data.data(), data.size());
  if (shape_out) *shape_out = di.shape;
  return data;
}

template <typename T>
std::vector<T> H5File::read_exact(const std::string& path, const Shape& expected) const {
  H5DatasetInfo di = info(path);
  if (di.shape != expected) {
    throw Error("reading " + where(path),
                "shape " + shape_str(di.shape) + " does not match the expected " + shape_str(expected),
                "the file does not belong to this model configuration");
  }
  return read<T>(path);
}

std::vector<std::string> H5File::read_strings(const std::string& path, Shape* shape_out) const {
  H5DatasetInfo di = info(path);
  if (di.cls != H5Class::string) {
    throw Error("reading " + where(path), std::string("stored as ") + class_name(di.cls) + ", expected string");
  }
  size_t n = static_cast<size_t>(shape_numel(di.shape));
  std::vector<std::string> out;
  out.reserve(n);
  Handle ds(H5Dopen2(id_, path.c_str(), H5P_DEFAULT));
  Handle ftype(H5Dget_type(ds.get()));
  if (H5Tis_variable_str(ftype.get()) > 0) {
    Handle mtype(vlen_utf8_type());
    std::vector<char*> ptrs(n, nullptr);
    if (n > 0 && H5Dread(ds.get(), mtype.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0) {
      throw Error("reading " + where(path), "string data could not be read", kCorruptHint);
    }
    for (char* p : ptrs) out.emplace_back(p ? p : "");
    if (n > 0) {
      Handle space(H5Dget_space(ds.get()));
      H5Dvlen_reclaim(mtype.get(), space.get(), H5P_DEFAULT, ptrs.data());
    }
  } else {
    size_t len = H5Tget_size(ftype.get());
    Handle mtype(H5Tcopy(H5T_C_S1));
    H5Tset_size(mtype.get(), len);
    H5Tset_strpad(mtype.get(), H5T_STR_NULLPAD);  // NULLTERM would drop the last char of a full-width string
    std::vector<char> buf(n * len);
    if (n > 0 && H5Dread(ds.get(), mtype.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) < 0) {
      throw Error("reading " + where(path), "string data could not be read", kCorruptHint);
    }
    for (size_t i = 0; i < n; ++i) {
      std::string s(buf.data() + i * len, len);
      size_t end = s.find_last_not_of(std::string("\0 ", 2));
      s.erase(end == std::string::npos ? 0 : end + 1);
      out.push_back(std::move(s));
    }
  }
  if (shape_out) *shape_out = di.shape;
  return out;
}

// --- attributes ---------------------------------------------------------------------------------------

namespace {

void write_attr(hid_t file, const std::string& where, const std::string& obj, const std::string& name,
                hid_t type, const void* value) {
  if (H5Aexists_by_name(file, obj.c_str(), name.c_str(), H5P_DEFAULT) > 0) {
    H5Adelete_by_name(file, obj.c_str(), name.c_str(), H5P_DEFAULT);
  }
  Handle space(H5Screate(H5S_SCALAR));
  Handle attr(H5Acreate_by_name(file, obj.c_str(), name.c_str(), type, space.get(), H5P_DEFAULT,
                                H5P_DEFAULT, H5P_DEFAULT));
  if (!attr.ok() || H5Awrite(attr.get(), type, value) < 0) {
    throw Error("writing attribute '" + name + "' of " + where, "HDF5 refused (does the object exist?)");
  }
}

}  // namespace

void H5File::set_attr(const std::string& obj, const std::string& name, int64_t value) {
  write_attr(id_, where(obj), obj, name, H5T_NATIVE_INT64, &value);
}
void H5File::set_attr(const std::string& obj, const std::string& name, double value) {
  write_attr(id_, where(obj), obj, name, H5T_NATIVE_DOUBLE, &value);
}
void H5File::set_attr(const std::string& obj, const std::string& name, const std::string& value) {
  Handle type(vlen_utf8_type());
  const char* p = value.c_str();
  write_attr(id_, where(obj), obj, name, type.get(), &p);
}

bool H5File::has_attr(const std::string& obj, const std::string& name) const {
  if (!exists(obj)) return false;
  return H5Aexists_by_name(id_, obj.c_str(), name.c_str(), H5P_DEFAULT) > 0;
}

namespace {

Handle open_attr(hid_t file, const std::string& where, const std::string& obj, const std::string& name,
                 H5Class want) {
  if (H5Aexists_by_name(file, obj.c_str(), name.c_str(), H5P_DEFAULT) <= 0) {
    throw Error("reading attribute '" + name + "' of " + where, "missing", kCorruptHint);
  }
  Handle attr(H5Aopen_by_name(file, obj.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT));
  Handle type(H5Aget_type(attr.get()));
  Handle space(H5Aget_space(attr.get()));
  if (!attr.ok() || !type.ok() || H5Sget_simple_extent_npoints(space.get()) != 1) {
    throw Error("reading attribute '" + name + "' of " + where, "not a readable scalar", kCorruptHint);
  }
  if (class_of(type.get()) != want) {
    throw Error("reading attribute '" + name + "' of " + where,
                std::string("stored as ") + class_name(class_of(type.get())) + ", expected " + class_name(want));
  }
  return attr;
}

}  // namespace

int64_t H5File::attr_int(const std::string& obj, const std::string& name) const {
  Handle a = open_attr(id_, where(obj), obj, name, H5Class::integer);
  int64_t v = 0;
  if (H5Aread(a.get(), H5T_NATIVE_INT64, &v) < 0) throw Error("reading attribute '" + name + "' of " + where(obj), "read failed");
  return v;
}

double H5File::attr_double(const std::string& obj, const std::string& name) const {
  Handle a = open_attr(id_, where(obj), obj, name, H5Class::floating);
  double v = 0;
  if (H5Aread(a.get(), H5T_NATIVE_DOUBLE, &v) < 0) throw Error("reading attribute '" + name + "' of " + where(obj), "read failed");
  return v;
}

std::string H5File::attr_string(const std::string& obj, const std::string& name) const {
  Handle a = open_attr(id_, where(obj), obj, name, H5Class::string);
  Handle ftype(H5Aget_type(a.get()));
  if (H5Tis_variable_str(ftype.get()) > 0) {
    Handle mtype(vlen_utf8_type());
    char* p = nullptr;
    if (H5Aread(a.get(), mtype.get(), &p) < 0) throw Error("reading attribute '" + name + "' of " + where(obj), "read failed");
    std::string s = p ? p : "";
    H5free_memory(p);
    return s;
  }
  size_t len = H5Tget_size(ftype.get());
  std::string s(len, '\0');
  Handle mtype(H5Tcopy(H5T_C_S1));
  H5Tset_size(mtype.get(), len);
  H5Tset_strpad(mtype.get(), H5T_STR_NULLPAD);
  if (H5Aread(a.get(), mtype.get(), s.data()) < 0) throw Error("reading attribute '" + name + "' of " + where(obj), "read failed");
  s.erase(s.find_last_not_of(std::string("\0 ", 2)) + 1);
  return s;
}

template std::vector<float> H5File::read<float>(const std::string&, Shape*) const;
template std::vector<double> H5File::read<double>(const std::string&, Shape*) const;
template std::vector<int8_t> H5File::read<int8_t>(const std::string&, Shape*) const;
template std::vector<uint8_t> H5File::read<uint8_t>(const std::string&, Shape*) const;
template std::vector<int32_t> H5File::read<int32_t>(const std::string&, Shape*) const;
template std::vector<int64_t> H5File::read<int64_t>(const std::string&, Shape*) const;
template std::vector<float> H5File::read_exact<float>(const std::string&, const Shape&) const;
template std::vector<double> H5File::read_exact<double>(const std::string&, const Shape&) const;
template std::vector<int8_t> H5File::read_exact<int8_t>(const std::string&, const Shape&) const;
template std::vector<uint8_t> H5File::read_exact<uint8_t>(const std::string&, const Shape&) const;
template std::vector<int32_t> H5File::read_exact<int32_t>(const std::string&, const Shape&) const;
template std::vector<int64_t> H5File::read_exact<int64_t>(const std::string&, const Shape&) const;

}  // namespace spikefm
