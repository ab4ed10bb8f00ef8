// Weight quantizers for compression (issue: mixed-precision quantization). Torch-free: weights are
// plain row-major float matrices W (out, in) — the layout of every QLinear in ann_ref/mfm.h.
//
// Symmetric integer quantization per output row and group of `group` consecutive input columns
// (group = 0: one group per row = per output channel):
//   s_g = max_{i in g} |W[o, i]| / qmax,   qmax = 2^(b-1) - 1        (int8: 127, int4: 7, int2: 1)
//   q[o, i] = clip(round(W[o, i] / s_g), -qmax, qmax),   Ŵ[o, i] = s_g · q[o, i]
// Scales are stored as fp16 or fp32 (an fp16 scale is rounded to fp16 *before* q is computed, so Ŵ is
// exactly what a reader of the stored file reconstructs). An all-zero group has s_g = 0 and q = 0.
//
// Methods
//   RTN   round to nearest, each weight on its own.
//   GPTQ  Frantar et al., "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained
//         Transformers", ICLR 2023: columns are quantized in order and the rounding error of each is
//         spread over the not-yet-quantized columns with the inverse Hessian H = 2/n Σ x xᵀ of the
//         layer's calibration inputs, minimising ||(W − Ŵ) X||² rather than ||W − Ŵ||². Dampening
//         λ = damp · mean(diag H) is added to the diagonal; a group's scale is fixed when the method
//         reaches its first column (from the already-updated weights).
//
// Storage: q packed little-end first — int8 one per byte, int4 two per byte (column 2k in the low
// nibble), int2 four per byte (column 4k in the lowest two bits); two's complement; each row padded to
// whole bytes. Effective bits per weight = (rows · cols · b + scales · scale bits) / (rows · cols).
#pragma once

#include <cstdint>
#include <vector>

namespace spikefm {

enum class ScaleType { fp16, fp32 };

struct QuantSpec {
  int bits = 8;                      // 8, 4 or 2
  int group = 0;                     // columns per group; 0 = the whole row (per output channel)
  ScaleType scale = ScaleType::fp16;
  void validate(int cols) const;     // throws spikefm::Error naming the field and the rule
};

struct QuantizedMatrix {
  int rows = 0, cols = 0;
  QuantSpec spec;
  std::vector<uint8_t> packed;  // rows × bytes_per_row()
  std::vector<float> scales;    // rows × groups_per_row(), row-major (fp16 values held exactly in float)

  int groups_per_row() const;   // ceil(cols / group) (1 when group = 0)
  int group_size() const;       // spec.group, or cols when 0
  int bytes_per_row() const;    // ceil(cols · bits / 8)
  int q(int row, int col) const;                 // the integer code
  std::vector<float> dequantize() const;         // Ŵ (rows, cols)
  double effective_bits() const;                 // incl. scales
  int64_t storage_bytes() const;                 // packed + scales
};

// Packs/unpacks codes (rows, cols) in [-qmax, qmax]; throws on out-of-range codes.
std::vector<uint8_t> pack_codes(const std::vector<int8_t>& codes, int rows, int cols, int bits);
std::vector<int8_t> unpack_codes(const std::vector<uint8_t>& packed, int rows, int cols, int bits);

// W: (rows, cols) row-major. NaN/Inf weights → spikefm::Error naming the (row, col).
QuantizedMatrix quantize_rtn(const float* w, int rows, int cols, const QuantSpec& spec);
// hessian: (cols, cols), symmetric positive semi-definite (from input_hessian).
QuantizedMatrix quantize_gptq(const float* w, int rows, int cols, const std::vector<double>& hessian,
                              const QuantSpec& spec, double damp = 0.01);
// H = 2/n · Σ_k x_k x_kᵀ for calibration inputs x: (n, cols) row-major.
std::vector<double> input_hessian(const float* x, int64_t n, int cols);

// Output error of a quantized layer on inputs x (n, cols): ||(W − Ŵ) xᵀ||² / ||W xᵀ||².
double output_nmse(const float* w, const QuantizedMatrix& q, const float* x, int64_t n);

}  // namespace spikefm
