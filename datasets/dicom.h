// Reader for single-image DICOM files (DICOM PS3.10 "Part 10" files, PS3.5 data encoding): the CT,
// MR, CR, DX... slices that scanners and PACS export, read without any DICOM library or libtorch.
//
// File layout (PS3.10 section 7.1):
//
//   offset  bytes  what
//   0       128    preamble (any content, usually zeros)
//   128     4      "DICM"
//   132     ...    file meta information: group 0002 elements, always explicit VR little endian;
//                  (0002,0010) TransferSyntaxUID says how the rest is encoded
//   ...     ...    the data set: elements in the transfer syntax, the pixels in (7FE0,0010)
//
// One element (PS3.5 section 7.1): tag (group, element: two uint16 LE), then
//   explicit VR, short form   VR (2 chars) + uint16 length          (AE AS AT CS DA DS DT FL FD IS LO
//                                                                    LT PN SH SL SS ST TM UI UL US)
//   explicit VR, long form    VR (2 chars) + 2 reserved + uint32    (OB OD OF OL OV OW SQ SV UC UN UR
//                             length                                 UT UV)
//   implicit VR               uint32 length (the VR comes from the data dictionary)
// then `length` bytes of value. Length 0xFFFFFFFF is "undefined": allowed for SQ (and UN, whose
// content is then an implicit VR little endian sequence, PS3.5 6.2.2): items (FFFE,E000) follow up to
// a sequence delimiter (FFFE,E0DD); an item of undefined length ends at an item delimiter (FFFE,E00D).
// Item and delimiter tags never carry a VR, even in explicit VR. Sequences are walked (not just
// skipped) when their length is undefined, to find where they end; attributes inside sequence items
// (e.g. the Rows of an icon image) are never taken for the image's own.
//
// Transfer syntaxes:
//   1.2.840.10008.1.2      Implicit VR Little Endian   read
//   1.2.840.10008.1.2.1    Explicit VR Little Endian   read
//   anything else          refused, naming the UID: Explicit VR Big Endian (1.2.840.10008.1.2.2),
//                          Deflated (1.2.840.10008.1.2.1.99), every encapsulated / compressed one
//                          (JPEG 1.2.840.10008.1.2.4.*, RLE 1.2.840.10008.1.2.5, ...)
//
// Image Pixel module attributes read (top level of the data set; all are required (Type 1) except
// where a default is given):
//   (0028,0002) SamplesPerPixel           US  must be 1 (colour images are refused)
//   (0028,0004) PhotometricInterpretation CS  MONOCHROME1 or MONOCHROME2 (PALETTE COLOR etc. refused)
//   (0028,0008) NumberOfFrames            IS  default 1
//   (0028,0010) Rows, (0028,0011) Columns US  > 0
//   (0028,0100) BitsAllocated             US  8 or 16 (1 and 32 are refused)
//   (0028,0101) BitsStored, (0028,0102) HighBit  US  1 <= BitsStored <= HighBit + 1 <= BitsAllocated
//   (0028,0103) PixelRepresentation       US  0 unsigned, 1 two's complement
//   (7FE0,0010) PixelData                 OB/OW  frames x rows x cols x BitsAllocated/8 bytes; one
//                                             more byte (the even-length padding) is accepted
// Optional: (0008,0060) Modality CS, (0028,0030) PixelSpacing DS (2 values, mm), (0028,1050)
// WindowCenter / (0028,1051) WindowWidth DS (the first value when several), (0028,1052)
// RescaleIntercept DS (default 0), (0028,1053) RescaleSlope DS (default 1).
//
// Pixel values: each stored word (uint8/uint16, little endian) holds the sample in bits
// [HighBit - BitsStored + 1, HighBit]; those bits are extracted, sign-extended when
// PixelRepresentation = 1, and mapped by the modality rescale
//   value = stored * RescaleSlope + RescaleIntercept      (computed in double, stored as float)
// For CT this is Hounsfield units. MONOCHROME1 (high = dark) is reported, not inverted.
//
// Every error is a spikefm::Error naming the file and the tag (gggg,eeee) or byte offset: no "DICM"
// magic, truncation anywhere (tag header, value, item, pixel data), a length running past the end of
// the file, a missing required attribute, a value of the wrong VR or size, an unsupported transfer
// syntax or pixel layout, pixel data whose length does not match the header. No byte outside the file
// is ever read.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace spikefm {

struct DicomImage {
  int64_t frames = 1, rows = 0, cols = 0;  // NumberOfFrames, Rows, Columns
  int samples_per_pixel = 1;               // always 1 (other values are refused)
  int bits_allocated = 0;                  // 8 or 16: bits per stored word
  int bits_stored = 0, high_bit = 0;       // the sample's bits inside a word
  bool is_signed = false;                  // PixelRepresentation 1 (two's complement)
  double rescale_slope = 1.0, rescale_intercept = 0.0;
  std::string modality;             // (0008,0060), e.g. "CT", "MR"; empty when absent
  std::string photometric;          // "MONOCHROME1" or "MONOCHROME2"
  std::string transfer_syntax_uid;  // (0002,0010)
  std::optional<std::array<double, 2>> pixel_spacing_mm;  // (row spacing, column spacing) in mm
  std::optional<double> window_center, window_width;      // first value of (0028,1050) / (0028,1051)
  // pixels: (frames, rows, cols), row-major; stored * rescale_slope + rescale_intercept
  std::vector<float> pixels;

  float at(int64_t frame, int64_t y, int64_t x) const {
    return pixels[static_cast<size_t>((frame * rows + y) * cols + x)];
  }
};

// Reads one DICOM Part 10 file as documented above. Throws spikefm::Error naming the file and the
// tag or offset of the problem.
DicomImage read_dicom(const std::filesystem::path& path);

}  // namespace spikefm
