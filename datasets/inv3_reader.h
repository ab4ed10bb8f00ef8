// Reader for InVesalius 3 project files (.inv3): the real head CT volume shipped in the Debian
// package invesalius-examples (/usr/share/doc/invesalius-examples/examples/Cranium.inv3).
//
// An .inv3 file is a gzip-compressed tar archive (written by Python's tarfile) holding one folder:
//
//   member         what                                                        read here
//   main.plist     XML property list of the project                            yes
//   matrix.dat     the volume: raw C-order array, no header (a numpy memmap)   yes
//   mask_N.plist/.dat, surface_N.plist/.vtp, measurements.plist                ignored
//
// main.plist keys used (the rest is ignored):
//   matrix/dtype      string        "int16" (the only dtype accepted: InVesalius stores CT as int16 HU)
//   matrix/filename   string        member name of the volume, beside main.plist ("matrix.dat")
//   matrix/shape      3 integers    (depth, rows, cols) = (z, y, x), outermost first
//   spacing           3 numbers     voxel size in mm in InVesalius's (x, y, z) order — note the reversal
//   modality          string        e.g. "CT" (optional)
//   scalar_range      2 numbers     (min, max) HU of the volume (optional; checked against the data)
//   format_version    integer       1 for Cranium.inv3 (optional; not interpreted)
// Byte order: the plist does not state it. matrix.dat is numpy's native order on the writing machine;
// every platform InVesalius ships on is little-endian, so it is read little-endian. When scalar_range
// is present the data's min and max must lie inside it, which a byte-swapped volume fails.
//
// Why no library: libarchive and libplist are in Debian, but the subset needed is small (ustar/GNU
// tar headers, six XML plist element kinds), and writing it lets every size be bounded before
// anything is allocated and every error name the archive member and the rule it broke (not gzip,
// truncated tar, bad header checksum, missing member, size != shape x dtype, unknown dtype).
// zlib, already a dependency, does the inflating.
//
// Supported here:
//   gzip   one or more members back to back (zlib checks each CRC-32 and length trailer)
//   tar    ustar, GNU (typeflag 'L' long names, base-256 sizes) and pax ('x' headers: "path" only);
//          regular files ('0' or NUL) are indexed, directories and other entries skipped; the header
//          checksum of every entry is verified; the archive may end with or without its zero blocks
//   plist  <dict> <key> <string> <integer> <real> <array> <true/> <false/>, empty forms (<dict/>),
//          comments, the <?xml?> prolog and <!DOCTYPE>; entities &amp; &lt; &gt; &quot; &apos;
//          &#N; &#xN;. Any other element (<data>, <date>) is refused with its name and line.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace spikefm {

// Largest decompressed archive accepted (4 GiB): far above a head CT (Cranium.inv3 is 44 MB
// uncompressed), small enough to refuse a gzip bomb before it fills memory.
inline constexpr int64_t kInv3MaxArchiveBytes = int64_t{1} << 32;

struct CtVolume {
  int64_t depth = 0, rows = 0, cols = 0;  // voxels along z, y, x
  std::array<double, 3> spacing_mm{};     // voxel size (z, y, x) in mm
  std::vector<int16_t> hu;                // (depth, rows, cols), row-major, Hounsfield units
  std::string modality;                   // plist "modality" ("CT"), empty when absent

  int16_t at(int64_t z, int64_t y, int64_t x) const { return hu[static_cast<size_t>((z * rows + y) * cols + x)]; }
};

// Reads the volume of an .inv3 project. Throws spikefm::Error naming the file, the member and the
// rule on every failure listed above.
CtVolume load_inv3(const std::filesystem::path& path);

// $SPIKEFM_CT_PATH when set and non-empty, else the Debian path of Cranium.inv3 above.
std::filesystem::path default_inv3_path();

}  // namespace spikefm
