// Weight quantizers (RTN, GPTQ), code packing and the error measures of ann_ref/weight_quant.h.
//
// Rounding conventions (fixed here so that a reader of the stored file reconstructs Ŵ exactly):
//   - q = round-half-to-even(w / s) (std::nearbyint, as torch.round in the GPTQ reference code).
//   - fp16 scales: s = max|w| / qmax is computed in double and rounded once, to nearest even, to an
//     IEEE binary16 value (own conversion, no dependency). s > 65504 (the largest half) is an error,
//     not a clamp. Below 2^-14 the half is subnormal (absolute step 2^-24), so the scale keeps only
//     its absolute precision there; a non-zero group whose scale would round to 0 gets the smallest
//     half 2^-24 instead (fp32: the smallest float), so s = 0 only for an all-zero group. Its codes
//     are then 0 except where |w| >= 2^-25.
#include "ann_ref/weight_quant.h"

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#include "common/error.h"

namespace spikefm {

namespace {

using MatrixXdCol = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
using MatrixXfRow = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

constexpr double kHalfMax = 65504.0;  // largest finite IEEE binary16

std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

std::string at(int64_t row, int64_t col) {
  return "(row " + std::to_string(row) + ", col " + std::to_string(col) + ")";
}

int qmax_of(int bits) { return (1 << (bits - 1)) - 1; }

int scale_bits(ScaleType t) { return t == ScaleType::fp16 ? 16 : 32; }

void check_bits(const std::string& what, int bits) {
  if (bits != 8 && bits != 4 && bits != 2)
    throw Error(what, "bits must be 8, 4 or 2 (got " + std::to_string(bits) + ")",
                "choose one of the supported integer widths");
}

void check_dim(const std::string& what, const char* name, int64_t v) {
  if (v <= 0)
    throw Error(what, std::string(name) + " must be > 0 (got " + std::to_string(v) + ")",
                "pass the matrix shape");
}

// Round-to-nearest-even conversion double → IEEE binary16 bits (infinity on overflow).
uint16_t half_bits(double x) {
  const uint16_t sign = std::signbit(x) ? 0x8000 : 0;
  const double a = std::fabs(x);
  if (std::isnan(a)) return sign | 0x7e00;
  if (a == 0) return sign;
  if (a < 0x1p-14) {
    // Subnormal range, units of 2^-24: the scaling is exact, so nearbyint is the only rounding.
    // m = 1024 is the smallest normal, whose bit pattern is the same integer.
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(std::nearbyint(a * 0x1p24)));
  }
  int e = 0;
  std::frexp(a, &e);  // a in [2^(e-1), 2^e)
  int exp2 = e - 1;
  double m = std::nearbyint(std::ldexp(a, 10 - exp2));  // 11-bit significand in [1024, 2048]
  if (m == 2048) {
    m = 1024;
    ++exp2;
  }
  if (exp2 > 15) return sign | 0x7c00;
  return static_cast<uint16_t>(sign | ((exp2 + 15) << 10) | (static_cast<int>(m) - 1024));
}

float half_to_float(uint16_t h) {
  const int exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  float v;
  if (exp == 0) {
    v = std::ldexp(static_cast<float>(mant), -24);
  } else if (exp == 31) {
    v = mant ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  } else {
    v = std::ldexp(static_cast<float>(1024 + mant), exp - 25);
  }
  return (h & 0x8000) ? -v : v;
}

// The stored scale of a group with largest magnitude `absmax` (finite, >= 0).
float stored_scale(const std::string& what, double absmax, int qmax, ScaleType type, int row, int group) {
  if (absmax == 0) return 0.0f;
  const double s = absmax / qmax;
  if (type == ScaleType::fp32) {
    const float f = static_cast<float>(s);
    if (!std::isfinite(f))
      throw Error(what, "scale of row " + std::to_string(row) + ", group " + std::to_string(group) + " is " +
                            num(s) + ", beyond the float range", "check the weights");
    return f > 0 ? f : std::numeric_limits<float>::denorm_min();
  }
  if (s > kHalfMax)
    throw Error(what,
                "scale of row " + std::to_string(row) + ", group " + std::to_string(group) + " is " + num(s) +
                    ", above the largest fp16 value 65504, so it cannot be stored as fp16",
                "use fp32 scales (QuantSpec.scale = fp32) or rescale the layer");
  const float h = half_to_float(half_bits(s));
  return h > 0 ? h : 0x1p-24f;
}

int quantize_value(double w, float s, int qmax) {
  if (s == 0) return 0;
  const double q = std::nearbyint(w / static_cast<double>(s));
  return static_cast<int>(std::clamp(q, -static_cast<double>(qmax), static_cast<double>(qmax)));
}

void check_finite_weights(const std::string& what, const float* w, int rows, int cols) {
  if (w == nullptr) throw Error(what, "weight pointer is null", "pass a (rows, cols) matrix");
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) {
      const float v = w[static_cast<int64_t>(r) * cols + c];
      if (!std::isfinite(v))
        throw Error(what, "weight at " + at(r, c) + " is " + num(v),
                    "fix the layer before quantizing (a NaN/Inf weight usually means training diverged)");
    }
}

void check_finite_inputs(const std::string& what, const float* x, int64_t n, int cols) {
  if (x == nullptr) throw Error(what, "input pointer is null", "pass an (n, cols) matrix");
  for (int64_t k = 0; k < n; ++k)
    for (int c = 0; c < cols; ++c) {
      const float v = x[k * cols + c];
      if (!std::isfinite(v))
        throw Error(what, "input x at " + at(k, c) + " is " + num(v), "fix the calibration inputs");
    }
}

QuantizedMatrix make_result(int rows, int cols, const QuantSpec& spec) {
  QuantizedMatrix m;
  m.rows = rows;
  m.cols = cols;
  m.spec = spec;
  m.scales.assign(static_cast<size_t>(rows) * m.groups_per_row(), 0.0f);
  return m;
}

// Code `col` of a packed row: little-end first, two's complement.
int get_code(const uint8_t* row_bytes, int col, int bits) {
  const int per_byte = 8 / bits, shift = (col % per_byte) * bits, mask = (1 << bits) - 1;
  int v = (row_bytes[col / per_byte] >> shift) & mask;
  if (v & (1 << (bits - 1))) v -= 1 << bits;
  return v;
}

void check_consistent(const std::string& what, const QuantizedMatrix& q) {
  check_dim(what, "rows", q.rows);
  check_dim(what, "cols", q.cols);
  q.spec.validate(q.cols);
  const size_t packed = static_cast<size_t>(q.rows) * q.bytes_per_row();
  const size_t scales = static_cast<size_t>(q.rows) * q.groups_per_row();
  if (q.packed.size() != packed)
    throw Error(what, "packed has " + std::to_string(q.packed.size()) + " bytes, expected rows x bytes_per_row = " +
                          std::to_string(packed), "rebuild the QuantizedMatrix with quantize_rtn/quantize_gptq");
  if (q.scales.size() != scales)
    throw Error(what, "scales has " + std::to_string(q.scales.size()) + " values, expected rows x groups_per_row = " +
                          std::to_string(scales), "rebuild the QuantizedMatrix with quantize_rtn/quantize_gptq");
}

}  // namespace

// ---- QuantSpec / QuantizedMatrix ---------------------------------------------------------------------

void QuantSpec::validate(int cols) const {
  const std::string what = "quantization spec";
  check_bits(what, bits);
  check_dim(what, "cols", cols);
  if (group < 0) throw Error(what, "group must be >= 0 (got " + std::to_string(group) + ")", "use 0 for per-channel");
  if (group > cols)
    throw Error(what, "group must be <= cols = " + std::to_string(cols) + " (got " + std::to_string(group) + ")",
                "use 0 for one group per row");
  if (scale != ScaleType::fp16 && scale != ScaleType::fp32)
    throw Error(what, "scale must be fp16 or fp32 (got " + std::to_string(static_cast<int>(scale)) + ")");
}

int QuantizedMatrix::groups_per_row() const { return spec.group == 0 ? 1 : (cols + spec.group - 1) / spec.group; }

int QuantizedMatrix::group_size() const { return spec.group == 0 ? cols : spec.group; }

int QuantizedMatrix::bytes_per_row() const {
  return static_cast<int>((static_cast<int64_t>(cols) * spec.bits + 7) / 8);
}

int QuantizedMatrix::q(int row, int col) const {
  if (row < 0 || row >= rows || col < 0 || col >= cols)
    throw Error("QuantizedMatrix::q", "index " + at(row, col) + " is outside the (" + std::to_string(rows) + ", " +
                                          std::to_string(cols) + ") matrix");
  check_bits("QuantizedMatrix::q", spec.bits);
  const size_t need = static_cast<size_t>(rows) * bytes_per_row();
  if (packed.size() != need)
    throw Error("QuantizedMatrix::q", "packed has " + std::to_string(packed.size()) + " bytes, expected " +
                                          std::to_string(need));
  return get_code(packed.data() + static_cast<size_t>(row) * bytes_per_row(), col, spec.bits);
}

std::vector<float> QuantizedMatrix::dequantize() const {
  check_consistent("dequantizing", *this);
  const std::vector<int8_t> codes = unpack_codes(packed, rows, cols, spec.bits);
  const int G = groups_per_row(), gs = group_size();
  std::vector<float> out(static_cast<size_t>(rows) * cols);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) {
      const size_t i = static_cast<size_t>(r) * cols + c;
      out[i] = scales[static_cast<size_t>(r) * G + c / gs] * static_cast<float>(codes[i]);
    }
  return out;
}

double QuantizedMatrix::effective_bits() const {
  check_consistent("effective_bits", *this);
  const double weights = static_cast<double>(rows) * cols;
  const double scale_count = static_cast<double>(rows) * groups_per_row();
  return (weights * spec.bits + scale_count * scale_bits(spec.scale)) / weights;
}

int64_t QuantizedMatrix::storage_bytes() const {
  check_consistent("storage_bytes", *this);
  return static_cast<int64_t>(rows) * bytes_per_row() +
         static_cast<int64_t>(rows) * groups_per_row() * (scale_bits(spec.scale) / 8);
}

// ---- packing -----------------------------------------------------------------------------------------

std::vector<uint8_t> pack_codes(const std::vector<int8_t>& codes, int rows, int cols, int bits) {
  const std::string what = "packing codes";
  check_bits(what, bits);
  check_dim(what, "rows", rows);
  check_dim(what, "cols", cols);
  if (codes.size() != static_cast<size_t>(rows) * cols)
    throw Error(what, "codes has " + std::to_string(codes.size()) + " values, expected rows x cols = " +
                          std::to_string(static_cast<int64_t>(rows) * cols));
  const int qmax = qmax_of(bits), per_byte = 8 / bits, mask = (1 << bits) - 1;
  const int64_t bpr = (static_cast<int64_t>(cols) * bits + 7) / 8;
  std::vector<uint8_t> out(static_cast<size_t>(rows * bpr), 0);
  for (int r = 0; r < rows; ++r) {
    uint8_t* row_bytes = out.data() + r * bpr;
    for (int c = 0; c < cols; ++c) {
      const int v = codes[static_cast<size_t>(r) * cols + c];
      if (v < -qmax || v > qmax)
        throw Error(what, "code at " + at(r, c) + " is " + std::to_string(v) + ", outside [-" +
                              std::to_string(qmax) + ", " + std::to_string(qmax) + "] for int" + std::to_string(bits),
                    "clip codes to the symmetric range before packing");
      row_bytes[c / per_byte] |= static_cast<uint8_t>((v & mask) << ((c % per_byte) * bits));
    }
  }
  return out;
}

std::vector<int8_t> unpack_codes(const std::vector<uint8_t>& packed, int rows, int cols, int bits) {
  const std::string what = "unpacking codes";
  check_bits(what, bits);
  check_dim(what, "rows", rows);
  check_dim(what, "cols", cols);
  const int64_t bpr = (static_cast<int64_t>(cols) * bits + 7) / 8;
  if (packed.size() != static_cast<size_t>(rows * bpr))
    throw Error(what, "packed has " + std::to_string(packed.size()) + " bytes, expected rows x " +
                          std::to_string(bpr) + " = " + std::to_string(rows * bpr));
  const int qmax = qmax_of(bits);
  std::vector<int8_t> out(static_cast<size_t>(rows) * cols);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) {
      const int v = get_code(packed.data() + r * bpr, c, bits);
      if (v < -qmax)  // -2^(b-1) is a valid two's complement pattern but never written
        throw Error(what, "code at " + at(r, c) + " is " + std::to_string(v) + ", outside the symmetric range",
                    "the packed data is corrupt or was written with another format");
      out[static_cast<size_t>(r) * cols + c] = static_cast<int8_t>(v);
    }
  return out;
}

// ---- RTN ---------------------------------------------------------------------------------------------

QuantizedMatrix quantize_rtn(const float* w, int rows, int cols, const QuantSpec& spec) {
  const std::string what = "quantize_rtn";
  check_dim(what, "rows", rows);
  check_dim(what, "cols", cols);
  spec.validate(cols);
  check_finite_weights(what, w, rows, cols);
  QuantizedMatrix m = make_result(rows, cols, spec);
  const int qmax = qmax_of(spec.bits), G = m.groups_per_row(), gs = m.group_size();
  std::vector<int8_t> codes(static_cast<size_t>(rows) * cols);
  for (int r = 0; r < rows; ++r) {
    const float* wr = w + static_cast<int64_t>(r) * cols;
    for (int g = 0; g < G; ++g) {
      const int c0 = g * gs, c1 = std::min(cols, c0 + gs);
      double absmax = 0;
      for (int c = c0; c < c1; ++c) absmax = std::max(absmax, std::fabs(static_cast<double>(wr[c])));
      const float s = stored_scale(what, absmax, qmax, spec.scale, r, g);
      m.scales[static_cast<size_t>(r) * G + g] = s;
      for (int c = c0; c < c1; ++c)
        codes[static_cast<size_t>(r) * cols + c] = static_cast<int8_t>(quantize_value(wr[c], s, qmax));
    }
  }
  m.packed = pack_codes(codes, rows, cols, spec.bits);
  return m;
}

// ---- GPTQ --------------------------------------------------------------------------------------------
//
// Algorithm (Frantar et al. 2023, Alg. 1, without act-order):
//   dead inputs (H_ii = 0): H_ii = 1, W[:, i] = 0
//   H += λ I,  λ = damp · mean(diag H)
//   U = upper Cholesky factor of H⁻¹ (H⁻¹ = Uᵀ U)
//   for i = 0 .. cols-1:
//     if i starts a group: s[:, g] from max |W[:, group]| of the current (already updated) W
//     Ŵ[:, i] = s · q(W[:, i]);  err = (W[:, i] − Ŵ[:, i]) / U_ii;  W[:, j>i] −= err · U_ij
// The update is done lazily in blocks of kBlock columns (as the reference code): within a block the
// rank-1 updates touch only the block, and the block's errors are applied to the columns right of it in
// one matrix product. A group that starts inside a block but extends beyond it gets its scale from the
// exact current weights (the pending update of those columns is computed for the max only).
//
// Complexity: O(cols³) for the two Cholesky factorisations and the inverse, O(rows · cols²) for the
// updates; memory O(cols² + rows · cols) doubles.
QuantizedMatrix quantize_gptq(const float* w, int rows, int cols, const std::vector<double>& hessian,
                              const QuantSpec& spec, double damp) {
  const std::string what = "quantize_gptq";
  check_dim(what, "rows", rows);
  check_dim(what, "cols", cols);
  spec.validate(cols);
  check_finite_weights(what, w, rows, cols);
  if (!std::isfinite(damp) || damp < 0)
    throw Error(what, "damp must be finite and >= 0 (got " + num(damp) + ")", "the usual value is 0.01");
  const size_t hsize = static_cast<size_t>(cols) * cols;
  if (hessian.size() != hsize)
    throw Error(what, "hessian has " + std::to_string(hessian.size()) + " values, expected cols x cols = " +
                          std::to_string(cols) + " x " + std::to_string(cols),
                "compute it with input_hessian on inputs with cols features");
  double max_diag = 0;
  for (int i = 0; i < cols; ++i) {
    for (int j = 0; j < cols; ++j) {
      const double v = hessian[static_cast<size_t>(i) * cols + j];
      if (!std::isfinite(v)) throw Error(what, "hessian at " + at(i, j) + " is " + num(v), "fix the calibration inputs");
    }
    const double d = hessian[static_cast<size_t>(i) * cols + i];
    if (d < 0)
      throw Error(what, "hessian diagonal at " + at(i, i) + " is " + num(d) + " < 0, so it is not positive semi-definite",
                  "compute it with input_hessian");
    max_diag = std::max(max_diag, d);
  }
  for (int i = 0; i < cols; ++i)
    for (int j = i + 1; j < cols; ++j) {
      const double a = hessian[static_cast<size_t>(i) * cols + j], b = hessian[static_cast<size_t>(j) * cols + i];
      if (std::fabs(a - b) > 1e-6 * max_diag)
        throw Error(what, "hessian is not symmetric at " + at(i, j) + ": " + num(a) + " vs " + num(b),
                    "compute it with input_hessian");
    }

  // W: (rows, cols), column-major so that a column is contiguous.
  MatrixXdCol W = Eigen::Map<const MatrixXfRow>(w, rows, cols).cast<double>();
  // H: (cols, cols)
  MatrixXdCol H = Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
      hessian.data(), cols, cols);
  for (int i = 0; i < cols; ++i)
    if (H(i, i) == 0) {
      H(i, i) = 1;
      W.col(i).setZero();
    }
  const double lambda = damp * H.diagonal().mean();
  H.diagonal().array() += lambda;
  Eigen::LLT<MatrixXdCol> llt(H);
  if (llt.info() != Eigen::Success)
    throw Error(what, "hessian + damp·mean(diag)·I is not positive definite (damp = " + num(damp) + ")",
                "increase damp or use more calibration inputs");
  const MatrixXdCol Hinv = llt.solve(MatrixXdCol::Identity(cols, cols));
  Eigen::LLT<MatrixXdCol> llt_inv(Hinv);
  if (llt_inv.info() != Eigen::Success)
    throw Error(what, "the inverse Hessian is numerically not positive definite (damp = " + num(damp) + ")",
                "increase damp");
  const MatrixXdCol U = llt_inv.matrixU();  // (cols, cols), upper triangular

  QuantizedMatrix m = make_result(rows, cols, spec);
  const int qmax = qmax_of(spec.bits), G = m.groups_per_row(), gs = m.group_size();
  std::vector<int8_t> codes(static_cast<size_t>(rows) * cols);
  std::vector<float> s(rows, 0.0f);  // the current group's scale per row
  constexpr int kBlock = 128;
  MatrixXdCol err(rows, kBlock);  // (rows, block): scaled errors of the block's columns
  for (int i1 = 0; i1 < cols; i1 += kBlock) {
    const int i2 = std::min(cols, i1 + kBlock);
    for (int i = i1; i < i2; ++i) {
      if (i % gs == 0) {
        const int g = i / gs, gend = std::min(cols, i + gs);
        Eigen::VectorXd absmax = W.middleCols(i, std::min(gend, i2) - i).cwiseAbs().rowwise().maxCoeff();
        if (gend > i2) {  // columns beyond the block still lack this block's updates so far
          const MatrixXdCol beyond =
              W.middleCols(i2, gend - i2) - err.leftCols(i - i1) * U.block(i1, i2, i - i1, gend - i2);
          absmax = absmax.cwiseMax(beyond.cwiseAbs().rowwise().maxCoeff());
        }
        for (int r = 0; r < rows; ++r) {
          if (!std::isfinite(absmax(r)))
            throw Error(what, "updated weights of row " + std::to_string(r) + " became non-finite",
                        "increase damp");
          s[r] = stored_scale(what, absmax(r), qmax, spec.scale, r, g);
          m.scales[static_cast<size_t>(r) * G + g] = s[r];
        }
      }
      const double d = U(i, i);
      for (int r = 0; r < rows; ++r) {
        const double wv = W(r, i);
        const int q = quantize_value(wv, s[r], qmax);
        codes[static_cast<size_t>(r) * cols + i] = static_cast<int8_t>(q);
        err(r, i - i1) = (wv - static_cast<double>(s[r]) * q) / d;
      }
      if (i + 1 < i2) W.middleCols(i + 1, i2 - i - 1).noalias() -= err.col(i - i1) * U.block(i, i + 1, 1, i2 - i - 1);
    }
    if (i2 < cols)
      W.rightCols(cols - i2).noalias() -= err.leftCols(i2 - i1) * U.block(i1, i2, i2 - i1, cols - i2);
  }
  m.packed = pack_codes(codes, rows, cols, spec.bits);
  return m;
}

// ---- Hessian and output error ------------------------------------------------------------------------

std::vector<double> input_hessian(const float* x, int64_t n, int cols) {
  const std::string what = "input_hessian";
  check_dim(what, "n", n);
  check_dim(what, "cols", cols);
  check_finite_inputs(what, x, n, cols);
  MatrixXdCol H = MatrixXdCol::Zero(cols, cols);
  constexpr int64_t kChunk = 4096;  // rows of x converted to double at a time
  for (int64_t k0 = 0; k0 < n; k0 += kChunk) {
    const int64_t k = std::min(kChunk, n - k0);
    const MatrixXdCol xd = Eigen::Map<const MatrixXfRow>(x + k0 * cols, k, cols).cast<double>();  // (k, cols)
    H.selfadjointView<Eigen::Lower>().rankUpdate(xd.transpose());
  }
  for (int j = 0; j < cols; ++j)  // mirror the lower triangle: exactly symmetric
    for (int i = 0; i < j; ++i) H(i, j) = H(j, i);
  H *= 2.0 / static_cast<double>(n);
  return std::vector<double>(H.data(), H.data() + H.size());  // symmetric: column-major = row-major
}

// 0/0 (W xᵀ = 0 and no error) → 0; an error on inputs where W xᵀ = 0 → +infinity.
double output_nmse(const float* w, const QuantizedMatrix& q, const float* x, int64_t n) {
  const std::string what = "output_nmse";
  check_consistent(what, q);
  check_dim(what, "n", n);
  check_finite_weights(what, w, q.rows, q.cols);
  check_finite_inputs(what, x, n, q.cols);
  const std::vector<float> wq = q.dequantize();
  const MatrixXdCol W = Eigen::Map<const MatrixXfRow>(w, q.rows, q.cols).cast<double>();  // (rows, cols)
  const MatrixXdCol D = W - Eigen::Map<const MatrixXfRow>(wq.data(), q.rows, q.cols).cast<double>();
  double num_sq = 0, den_sq = 0;
  constexpr int64_t kChunk = 4096;
  for (int64_t k0 = 0; k0 < n; k0 += kChunk) {
    const int64_t k = std::min(kChunk, n - k0);
    const MatrixXdCol xt = Eigen::Map<const MatrixXfRow>(x + k0 * q.cols, k, q.cols).cast<double>().transpose();
    num_sq += (D * xt).squaredNorm();  // (rows, k)
    den_sq += (W * xt).squaredNorm();
  }
  if (num_sq == 0) return 0.0;
  if (den_sq == 0) return std::numeric_limits<double>::infinity();
  return num_sq / den_sq;
}

}  // namespace spikefm
