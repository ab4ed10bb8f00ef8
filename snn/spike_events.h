// SpikeEvents: the nonzero spikes of one timestep for a batch of rows, in CSR form.
//
// What it is
//   A dense spike matrix spikes: (R, W) int8, row-major (R = B * T rows: samples x tokens flattened, W = width of the
//   layer input), with almost all entries 0, stored as its list of nonzero entries per row:
//
//     events of row r:  k in [row_ptr[r], row_ptr[r+1])  ->  (r, index[k], value[k])
//
//   value[k] is the spike value (-1/+1 for ST-BIF, 1 for IF, -B..B for bursts); the event stands for
//   value[k] * theta[index[k]] at the input of the next layer. Within a row, events are in increasing
//   index order when built by from_dense().
//
// Invariants (checked by validate(); from_dense() guarantees them)
//   rows >= 0, width >= 0, row_ptr.size() == rows + 1, row_ptr[0] == 0, row_ptr non-decreasing,
//   row_ptr[rows] == index.size() == value.size(), 0 <= index[k] < width, value[k] != 0.
#pragma once

#include <Eigen/Core>

#include <cstdint>
#include <vector>

namespace spikefm::snn {

struct SpikeEvents {
  int rows = 0;                  // R
  int width = 0;                 // W, the layer's input width
  std::vector<int32_t> row_ptr;  // (R + 1), offsets into index/value
  std::vector<int32_t> index;    // (E), input position of each event, in [0, W)
  std::vector<int8_t> value;     // (E), spike value of each event, nonzero

  // Number of events E.
  int64_t size() const { return static_cast<int64_t>(index.size()); }

  // spikes: (rows, width) int8, row-major; zeros are skipped.
  static SpikeEvents from_dense(const int8_t* spikes, int rows, int width);
  // Same from an Eigen row-major matrix (R, W).
  static SpikeEvents from_dense(
      const Eigen::Matrix<int8_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>& spikes);

  // Rebuilds the dense matrix: (rows, width) int8, row-major.
  Eigen::Matrix<int8_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> to_dense() const;

  // Throws spikefm::Error naming the first violated invariant (see the header comment).
  void validate() const;
};

}  // namespace spikefm::snn
