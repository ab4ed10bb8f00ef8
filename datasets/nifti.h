// Reader for single-file NIfTI-1 images (.nii, and .nii.gz gzip-compressed): the MR, fMRI and CT
// volumes that neuroimaging tools (FSL, SPM, AFNI, FreeSurfer, nibabel, dcm2niix) write, read without
// any NIfTI library or libtorch.
//
// File layout (nifti1.h, NIfTI Data Format Working Group, 2004): a 348-byte header, a 4-byte
// extension flag, optional extensions, then the voxels from vox_offset to the end. Fields read (the
// rest is ignored):
//
//   offset  type        field        what
//   0       int32       sizeof_hdr   348; its byte order is the file's (a 540 here is NIfTI-2)
//   40      int16[8]    dim          dim[0] = number of dimensions used (1..7), dim[1..] = sizes;
//                                    nx, ny, nz, nt = dim[1..4] (1 where unused), dim[5..7] must be 1
//   70      int16       datatype     type code of a voxel (table below)
//   72      int16       bitpix       bits per voxel; must match the datatype
//   76      float32[8]  pixdim       pixdim[1..4] = voxel size along x, y, z, t (pixdim[0] is qfac)
//   108     float32     vox_offset   byte offset of the voxels; a whole number >= 352
//   112     float32     scl_slope    value = stored * scl_slope + scl_inter when scl_slope != 0
//   116     float32     scl_inter
//   123     uint8       xyzt_units   spatial unit in bits 0-2 (1 m, 2 mm, 3 um), temporal in bits 3-5
//                                    (8 s, 16 ms, 24 us); 0 = unknown
//   148     char[80]    descrip      free text, NUL-terminated
//   252     int16       qform_code   0..4: how the quaternion transform is to be read (not applied here)
//   254     int16       sform_code   0..4: the same for the affine srow_x/y/z (not applied here)
//   344     char[4]     magic        "n+1\0" single file (read); "ni1\0" is the .hdr of an .hdr/.img
//                                    pair (refused: convert to .nii)
//
// Voxels: nx * ny * nz * nt values of bitpix / 8 bytes each in the header's byte order, x fastest,
// then y, z, t. Datatypes read (anything else, e.g. complex, RGB, int64, float128, is refused naming
// the code):
//   2 uint8   4 int16   8 int32   16 float32   64 float64   256 int8   512 uint16   768 uint32
// Each value is converted to double, scaled by scl_slope / scl_inter when scl_slope != 0 (0 means
// "no scaling", per nifti1.h), and stored as float (int32 / uint32 values beyond 2^24 round).
//
// gzip: detected by the magic bytes 1f 8b (not by the file name); one or more members back to back,
// each CRC-checked by zlib. The header is inflated first, and only vox_offset + the voxel bytes it
// announces are kept; the rest of the stream is inflated (and counted against the limit) only to check
// it. Trailing bytes after the voxels are allowed, fewer bytes than announced are refused.
//
// Every error is a spikefm::Error naming the file and the header field, its offset or the byte offset:
// truncation, wrong sizeof_hdr or magic, NIfTI-2, a dimension out of range, an unsupported datatype,
// bitpix != the datatype's, vox_offset < 352, non-finite pixdim / scl_slope / scl_inter, NaN or Inf
// in float voxels, a scaled value beyond the float range, short voxel data, a damaged gzip stream, more
// than kNiftiMaxBytes of (decompressed) file. No byte outside the file is ever read.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace spikefm {

// Largest (decompressed) file accepted, 1 GiB: a 256^3 x 16-frame int16 series fits; checked against
// the header before the voxels are allocated, and while inflating, to refuse a gzip bomb.
inline constexpr int64_t kNiftiMaxBytes = int64_t{1} << 30;

struct NiftiVolume {
  std::array<int64_t, 4> dim{};         // nx, ny, nz, nt (1 for an unused dimension; nt = 1 for 3-D)
  std::array<double, 4> pixdim{};       // voxel size along x, y, z in mm and t in s (pixdim[1..4] converted
                                        // by xyzt_units; as stored when the unit is unknown); 0 when unused
  int xyzt_units = 0;                   // as stored
  int datatype = 0;                     // NIfTI code as stored (table above)
  double scl_slope = 1, scl_inter = 0;  // as stored; slope 0 means "no scaling" (data not scaled)
  bool big_endian = false;              // the file's byte order (from sizeof_hdr)
  int qform_code = 0, sform_code = 0;
  std::string descrip;  // up to the first NUL
  // data: (nt, nz, ny, nx), x fastest (the file's order); stored * scl_slope + scl_inter
  std::vector<float> data;

  int64_t voxels() const { return dim[0] * dim[1] * dim[2]; }  // nx * ny * nz (one volume)
  float at(int64_t x, int64_t y, int64_t z, int64_t t = 0) const {
    return data[static_cast<size_t>(((t * dim[2] + z) * dim[1] + y) * dim[0] + x)];
  }
};

// Reads one .nii or .nii.gz file as documented above. Throws spikefm::Error naming the file and the
// header field or offset of the problem.
NiftiVolume read_nifti(const std::filesystem::path& path);

// $SPIKEFM_MR_PATH when set and non-empty, else a real MR volume: nibabel's example4d.nii.gz (Debian
// package python3-nibabel), a 128 x 96 x 24 x 2 brain EPI series, int16, gzip'd.
std::filesystem::path default_nifti_mr_path();

}  // namespace spikefm
