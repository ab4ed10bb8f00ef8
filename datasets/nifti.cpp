#include "datasets/nifti.h"

#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <memory>
#include <type_traits>

#include "common/error.h"
#include "common/file_bytes.h"

namespace spikefm {

namespace {

constexpr size_t kHeaderBytes = 348;  // sizeof_hdr of NIfTI-1
constexpr int32_t kNifti2HeaderBytes = 540;
constexpr size_t kMinVoxOffset = 352;  // header + the 4-byte extension flag
constexpr auto kMaxBytes = static_cast<uint64_t>(kNiftiMaxBytes);

// Header offsets (nifti1.h).
constexpr size_t kDimOffset = 40, kDatatypeOffset = 70, kBitpixOffset = 72, kPixdimOffset = 76, kVoxOffsetOffset = 108,
                 kSlopeOffset = 112, kInterOffset = 116, kUnitsOffset = 123, kDescripOffset = 148, kDescripBytes = 80,
                 kQformOffset = 252, kSformOffset = 254, kMagicOffset = 344;

constexpr const char* kDamagedHint = "the file is damaged or incomplete: copy or export it again";
constexpr const char* kResaveHint =
    "re-save it as NIfTI-1, e.g. python3 -c \"import nibabel as nb; "
    "nb.save(nb.Nifti1Image.from_image(nb.load('in.nii')), 'out.nii')\"";

struct DataType {
  int code;
  const char* name;
  int bits;
};
constexpr DataType kReadable[] = {{2, "uint8", 8},     {4, "int16", 16}, {8, "int32", 32},    {16, "float32", 32},
                                  {64, "float64", 64}, {256, "int8", 8}, {512, "uint16", 16}, {768, "uint32", 32}};

const DataType* find_readable(int code) {
  for (const auto& t : kReadable) {
    if (t.code == code) return &t;
  }
  return nullptr;
}

// nifti1.h names of the codes this reader refuses.
const char* refused_name(int code) {
  switch (code) {
    case 0:
      return "DT_UNKNOWN";
    case 1:
      return "binary";
    case 32:
      return "complex64";
    case 128:
      return "RGB24";
    case 1024:
      return "int64";
    case 1280:
      return "uint64";
    case 1536:
      return "float128";
    case 1792:
      return "complex128";
    case 2048:
      return "complex256";
    case 2304:
      return "RGBA32";
    default:
      return "not a NIfTI-1 datatype code";
  }
}

std::string readable_list() {
  std::string s;
  for (const auto& t : kReadable) s += (s.empty() ? "" : ", ") + std::to_string(t.code) + " " + t.name;
  return s;
}

std::string field(const char* name, size_t offset) {
  return std::string("header field ") + name + " (offset " + std::to_string(offset) + ")";
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

// "n+1\0" -> n+1\0, other bytes as \xNN.
std::string escaped(const uint8_t* p, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    if (p[i] == 0) {
      s += "\\0";
    } else if (p[i] >= 0x20 && p[i] < 0x7f) {
      s += static_cast<char>(p[i]);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", p[i]);
      s += buf;
    }
  }
  return s;
}

// One value of type T at p, stored in the given byte order.
template <typename T>
T load(const uint8_t* p, bool big) {
  using U = std::conditional_t<
      sizeof(T) == 1, uint8_t,
      std::conditional_t<sizeof(T) == 2, uint16_t, std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>>>;
  constexpr size_t n = sizeof(T);
  U u = 0;
  for (size_t i = 0; i < n; ++i) u = static_cast<U>(u | (static_cast<U>(p[i]) << (8 * (big ? n - 1 - i : i))));
  return std::bit_cast<T>(u);
}

// ---- gzip --------------------------------------------------------------------------------------------

// Inflates one or more gzip members back to back, on demand. Zero padding after the last member is
// tolerated (as gzip does); anything else must be another member.
class Gunzip {
 public:
  Gunzip(const std::vector<uint8_t>& in, std::string what) : in_(in), what_(std::move(what)) {
    // 16 + MAX_WBITS: gzip wrapper expected; zlib checks the header and each CRC-32 / length trailer.
    if (inflateInit2(&zs_, 16 + MAX_WBITS) != Z_OK)
      throw Error(what_, "zlib could not be initialised (out of memory?)");
  }
  ~Gunzip() { inflateEnd(&zs_); }
  Gunzip(const Gunzip&) = delete;
  Gunzip& operator=(const Gunzip&) = delete;

  // Appends inflated bytes to `out` until it holds `target` bytes or the stream ends. Grows `out`
  // step by step, so a header that announces more than the stream holds allocates little.
  void read_to(std::vector<uint8_t>& out, size_t target) {
    while (out.size() < target && !done_) {
      const size_t have = out.size();
      const size_t step = std::min(target - have, std::max<size_t>(have, size_t{1} << 20));
      out.resize(have + step);
      const size_t got = inflate_into(out.data() + have, step);
      out.resize(have + got);
    }
  }

  // Inflates the rest of the stream into a scratch buffer; returns the total inflated size. Throws
  // when it passes kNiftiMaxBytes.
  uint64_t finish() {
    std::vector<uint8_t> scratch(size_t{1} << 16);
    while (!done_) {
      inflate_into(scratch.data(), scratch.size());
      if (produced_ > kMaxBytes) {
        throw Error(what_, "the gzip stream inflates to more than the limit of " + std::to_string(kMaxBytes) +
                               " bytes (a gzip bomb, or a file too large for this reader)");
      }
    }
    return produced_;
  }

 private:
  // Inflates up to n bytes into dst; fewer only at the end of the stream (then done_ is set).
  size_t inflate_into(uint8_t* dst, size_t n) {
    constexpr size_t kStep = size_t{1} << 30;  // zlib counts in uInt
    size_t got = 0;
    while (got < n && !done_) {
      zs_.next_in = const_cast<Bytef*>(in_.data() + in_pos_);
      zs_.avail_in = static_cast<uInt>(std::min(in_.size() - in_pos_, kStep));
      zs_.next_out = dst + got;
      zs_.avail_out = static_cast<uInt>(std::min(n - got, kStep));
      const uInt avail_in = zs_.avail_in, avail_out = zs_.avail_out;
      const int ret = inflate(&zs_, Z_NO_FLUSH);
      in_pos_ += avail_in - zs_.avail_in;
      got += avail_out - zs_.avail_out;
      produced_ += avail_out - zs_.avail_out;
      if (ret == Z_STREAM_END) {
        const auto rest = in_.begin() + static_cast<std::ptrdiff_t>(in_pos_);
        if (std::all_of(rest, in_.end(), [](uint8_t b) { return b == 0; })) {
          done_ = true;
        } else {
          inflateReset(&zs_);  // another member follows
        }
        continue;
      }
      if (ret == Z_OK) continue;
      if (ret == Z_BUF_ERROR && in_pos_ == in_.size()) {
        throw Error(what_,
                    "truncated gzip: the compressed data ends (at byte " + std::to_string(in_pos_) +
                        ") before the end of the gzip stream, after " + std::to_string(produced_) + " inflated bytes",
                    kDamagedHint);
      }
      const std::string why = zs_.msg ? zs_.msg : "zlib error " + std::to_string(ret);
      throw Error(what_, "corrupt gzip stream near compressed byte " + std::to_string(in_pos_) + ": " + why,
                  kDamagedHint);
    }
    return got;
  }

  const std::vector<uint8_t>& in_;
  std::string what_;
  z_stream zs_{};
  size_t in_pos_ = 0;
  uint64_t produced_ = 0;
  bool done_ = false;
};

// ---- header --------------------------------------------------------------------------------------------

// Bounds-checked reads of the header at the start of `b` (whose size is checked to be >= 348 first).
struct Header {
  const std::vector<uint8_t>& b;
  bool big;
  int16_t i16(size_t off) const { return load<int16_t>(b.data() + off, big); }
  float f32(size_t off) const { return load<float>(b.data() + off, big); }
};

template <typename T>
void convert(const uint8_t* p, bool big, double slope, double inter, NiftiVolume& vol, const std::string& what,
             uint64_t vox_offset) {
  const auto& d = vol.dim;
  for (size_t i = 0; i < vol.data.size(); ++i) {
    const double v = static_cast<double>(load<T>(p + i * sizeof(T), big));
    const double scaled = v * slope + inter;
    const auto f = static_cast<float>(scaled);
    if (!std::isfinite(f)) {
      const auto idx = static_cast<int64_t>(i);
      const std::string where = "voxel (x, y, z, t) = (" + std::to_string(idx % d[0]) + ", " +
                                std::to_string(idx / d[0] % d[1]) + ", " + std::to_string(idx / (d[0] * d[1]) % d[2]) +
                                ", " + std::to_string(idx / (d[0] * d[1] * d[2])) + ") at byte " +
                                std::to_string(vox_offset + i * sizeof(T));
      if (!std::isfinite(v)) {
        throw Error(what, where + " is " + num(v) + ": NaN and Inf voxels are not accepted",
                    "replace them (e.g. by 0) before saving, e.g. with fslmaths in -nan out");
      }
      throw Error(what,
                  where + " holds " + num(v) + ", which scaled by scl_slope " + num(slope) + " and scl_inter " +
                      num(inter) + " is " + num(scaled) + ", outside the float range",
                  kDamagedHint);
    }
    vol.data[i] = f;
  }
}

double spatial_unit_mm(int units) {
  switch (units & 0x07) {
    case 1:
      return 1000.0;  // meter
    case 3:
      return 1e-3;  // micron
    default:
      return 1.0;  // mm, or unknown
  }
}

double temporal_unit_s(int units) {
  switch (units & 0x38) {
    case 16:
      return 1e-3;  // msec
    case 24:
      return 1e-6;  // usec
    default:
      return 1.0;  // sec, or unknown
  }
}

}  // namespace

std::filesystem::path default_nifti_mr_path() {
  const char* env = std::getenv("SPIKEFM_MR_PATH");
  if (env != nullptr && *env != '\0') return env;
  return "/usr/lib/python3/dist-packages/nibabel/tests/data/example4d.nii.gz";
}

NiftiVolume read_nifti(const std::filesystem::path& path) {
  const std::string what = "reading NIfTI file " + path.string();
  std::vector<uint8_t> raw =
      read_file_bytes(path, kMaxBytes, what, "check the path (a single-file NIfTI-1 image, .nii or .nii.gz)");
  const bool gzipped = raw.size() >= 2 && raw[0] == 0x1f && raw[1] == 0x8b;
  const std::string file_kind = gzipped ? "the decompressed file" : "the file";

  // bytes: the (inflated) file, at least its first `need` bytes once those are known.
  std::vector<uint8_t> bytes;
  std::unique_ptr<Gunzip> gz;
  if (gzipped) {
    gz = std::make_unique<Gunzip>(raw, what);
    gz->read_to(bytes, kMinVoxOffset);
  } else {
    bytes = std::move(raw);
  }

  // sizeof_hdr decides the byte order.
  if (bytes.size() < 4) {
    throw Error(what,
                "truncated: " + file_kind + " holds " + std::to_string(bytes.size()) +
                    " bytes, too few for sizeof_hdr (offset 0)",
                kDamagedHint);
  }
  const int32_t size_le = load<int32_t>(bytes.data(), false), size_be = load<int32_t>(bytes.data(), true);
  if (size_le == kNifti2HeaderBytes || size_be == kNifti2HeaderBytes) {
    throw Error(what,
                field("sizeof_hdr", 0) + " is 540: a NIfTI-2 file, which this reader does not read (NIfTI-1 only)",
                kResaveHint);
  }
  if (size_le != static_cast<int32_t>(kHeaderBytes) && size_be != static_cast<int32_t>(kHeaderBytes)) {
    throw Error(what,
                field("sizeof_hdr", 0) + " is " + std::to_string(size_le) + " read little-endian and " +
                    std::to_string(size_be) + " read big-endian, not 348: not a NIfTI-1 file",
                "pass a single-file NIfTI-1 image (.nii or .nii.gz)");
  }
  NiftiVolume vol;
  vol.big_endian = size_be == static_cast<int32_t>(kHeaderBytes);
  if (bytes.size() < kHeaderBytes) {
    throw Error(what,
                "truncated header: " + file_kind + " holds " + std::to_string(bytes.size()) +
                    " bytes, the NIfTI-1 header needs 348",
                kDamagedHint);
  }
  const Header h{bytes, vol.big_endian};

  const uint8_t* magic = bytes.data() + kMagicOffset;
  if (std::equal(magic, magic + 4, "ni1")) {  // the 4 bytes include the terminating NUL
    throw Error(what,
                field("magic", kMagicOffset) +
                    " is \"ni1\\0\": the header of a two-file NIfTI-1 pair (.hdr + .img), which this reader does "
                    "not read",
                "convert the pair to a single .nii, e.g. python3 -c \"import nibabel as nb; "
                "nb.save(nb.load('in.hdr'), 'out.nii')\"");
  }
  if (!std::equal(magic, magic + 4, "n+1")) {
    throw Error(what,
                field("magic", kMagicOffset) + " is \"" + escaped(magic, 4) +
                    "\", not \"n+1\\0\": not a single-file NIfTI-1 image (an Analyze 7.5 header, or damage)",
                "pass a single-file NIfTI-1 image (.nii or .nii.gz)");
  }

  // dim: dim[0] dimensions used, 1..4 read, 5..7 must be 1.
  const int ndim = h.i16(kDimOffset);
  if (ndim < 1 || ndim > 7) {
    throw Error(
        what,
        field("dim", kDimOffset) + ": dim[0] = " + std::to_string(ndim) + ", the number of dimensions, must be in 1..7",
        kDamagedHint);
  }
  vol.dim = {1, 1, 1, 1};
  for (int i = 1; i <= ndim; ++i) {
    const int d = h.i16(kDimOffset + 2 * static_cast<size_t>(i));
    if (d < 1) {
      throw Error(what,
                  field("dim", kDimOffset) + ": dim[" + std::to_string(i) + "] = " + std::to_string(d) +
                      ", a size must be >= 1",
                  kDamagedHint);
    }
    if (i > 4 && d != 1) {
      throw Error(what,
                  field("dim", kDimOffset) + ": dim[" + std::to_string(i) + "] = " + std::to_string(d) +
                      "; only up to 4-D volumes (x, y, z, t) are read, dims 5..7 must be 1",
                  "split the extra dimension into separate files first");
    }
    if (i <= 4) vol.dim[static_cast<size_t>(i - 1)] = d;
  }

  vol.datatype = h.i16(kDatatypeOffset);
  const DataType* type = find_readable(vol.datatype);
  if (!type) {
    throw Error(what,
                field("datatype", kDatatypeOffset) + " is " + std::to_string(vol.datatype) + " (" +
                    refused_name(vol.datatype) + "), which is not read (read: " + readable_list() + ")",
                "convert the image to a scalar type, e.g. fslmaths in out -odt float");
  }
  const int bitpix = h.i16(kBitpixOffset);
  if (bitpix != type->bits) {
    throw Error(what,
                field("bitpix", kBitpixOffset) + " is " + std::to_string(bitpix) + " but datatype " +
                    std::to_string(type->code) + " (" + type->name + ") has " + std::to_string(type->bits) + " bits",
                kDamagedHint);
  }

  vol.xyzt_units = bytes[kUnitsOffset];
  for (int i = 1; i <= 4; ++i) {
    if (i > ndim) continue;  // pixdim of an unused dimension stays 0
    const float p = h.f32(kPixdimOffset + 4 * static_cast<size_t>(i));
    if (!std::isfinite(p)) {
      throw Error(what, field("pixdim", kPixdimOffset) + ": pixdim[" + std::to_string(i) + "] is " + num(p),
                  kDamagedHint);
    }
    vol.pixdim[static_cast<size_t>(i - 1)] =
        static_cast<double>(p) * (i == 4 ? temporal_unit_s(vol.xyzt_units) : spatial_unit_mm(vol.xyzt_units));
  }

  const float vox = h.f32(kVoxOffsetOffset);
  if (!(vox >= static_cast<float>(kMinVoxOffset)) || vox > static_cast<float>(kMaxBytes) || vox != std::floor(vox)) {
    throw Error(what,
                field("vox_offset", kVoxOffsetOffset) + " is " + num(vox) +
                    ", must be a whole number >= 352 (the header and the extension flag come first)",
                kDamagedHint);
  }
  const auto vox_offset = static_cast<uint64_t>(vox);

  const float slope = h.f32(kSlopeOffset), inter = h.f32(kInterOffset);
  if (!std::isfinite(slope) || !std::isfinite(inter)) {
    const bool bad_slope = !std::isfinite(slope);
    throw Error(what,
                field(bad_slope ? "scl_slope" : "scl_inter", bad_slope ? kSlopeOffset : kInterOffset) + " is " +
                    num(bad_slope ? slope : inter) + ", must be finite",
                "set scl_slope 0 (no scaling) or the intended scale, e.g. with nibabel's set_slope_inter");
  }
  vol.scl_slope = slope;
  vol.scl_inter = inter;
  vol.descrip.assign(reinterpret_cast<const char*>(bytes.data() + kDescripOffset),
                     std::find(bytes.begin() + kDescripOffset, bytes.begin() + kDescripOffset + kDescripBytes, 0) -
                         (bytes.begin() + kDescripOffset));
  vol.qform_code = h.i16(kQformOffset);
  vol.sform_code = h.i16(kSformOffset);

  // Size: four dims < 2^15 each, so the products fit uint64 without overflow.
  const uint64_t count = static_cast<uint64_t>(vol.dim[0] * vol.dim[1] * vol.dim[2] * vol.dim[3]);
  const uint64_t data_bytes = count * static_cast<uint64_t>(type->bits / 8);
  const std::string shape = std::to_string(vol.dim[0]) + " x " + std::to_string(vol.dim[1]) + " x " +
                            std::to_string(vol.dim[2]) + " x " + std::to_string(vol.dim[3]) + " x " + type->name;
  if (data_bytes > kMaxBytes - vox_offset) {
    throw Error(what,
                field("dim", kDimOffset) + ": " + shape + " = " + std::to_string(data_bytes) +
                    " bytes from vox_offset " + std::to_string(vox_offset) + " pass the limit of " +
                    std::to_string(kMaxBytes) + " bytes",
                "the header is damaged, or the image is too large for this reader");
  }
  const uint64_t need = vox_offset + data_bytes;
  uint64_t total = bytes.size();
  if (gz) {
    gz->read_to(bytes, static_cast<size_t>(need));
    total = gz->finish();  // checks the rest of the stream (CRC, length) and the size limit
  }
  if (total < need) {
    throw Error(what,
                "short voxel data: dim " + shape + " needs " + std::to_string(data_bytes) + " bytes from vox_offset " +
                    std::to_string(vox_offset) + " (" + std::to_string(need) + " in all), but " + file_kind +
                    " holds " + std::to_string(total) + " bytes (" +
                    std::to_string(total > vox_offset ? total - vox_offset : 0) + " after vox_offset)",
                kDamagedHint);
  }

  vol.data.resize(static_cast<size_t>(count));
  // slope 0: no scaling (nifti1.h).
  const double s = vol.scl_slope != 0 ? vol.scl_slope : 1.0, c = vol.scl_slope != 0 ? vol.scl_inter : 0.0;
  const uint8_t* p = bytes.data() + vox_offset;
  switch (type->code) {
    case 2:
      convert<uint8_t>(p, vol.big_endian, s, c, vol, what, vox_offset);
      break;
    case 4:
      convert<int16_t>(p, vol.big_endian, s, c, vol, what, vox_offset);
      break;
    case 8:
      convert<int32_t>(p, vol.big_endian, s, c, vol, what, vox_offset);
      break;
    case 16:
      convert<float>(p, vol.big_endian, s, c, vol, what, vox_offset);
      break;
    case 64:
      convert<double>(p, vol.big_endian, s, c, vol, what, vox_offset);
      break;
    case 256:
      convert<int8_t>(p, vol.big_endian, s, c, vol, what, vox_offset);
      break;
    case 512:
      convert<uint16_t>(p, vol.big_endian, s, c, vol, what, vox_offset);
      break;
    case 768:
      convert<uint32_t>(p, vol.big_endian, s, c, vol, what, vox_offset);
      break;
    default:
      break;  // unreachable: refused above
  }
  return vol;
}

}  // namespace spikefm
