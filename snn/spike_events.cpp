#include "snn/spike_events.h"

#include <limits>
#include <string>

#include "common/error.h"

namespace spikefm::snn {

namespace {
const char* const kWhat = "spike events";
}

SpikeEvents SpikeEvents::from_dense(const int8_t* spikes, int rows, int width) {
  if (rows < 0 || width < 0) {
    throw Error(kWhat, "rows and width must be >= 0 (got rows " + std::to_string(rows) + ", width " +
                           std::to_string(width) + ")");
  }
  const int64_t total = static_cast<int64_t>(rows) * width;
  int64_t nnz = 0;
  for (int64_t k = 0; k < total; ++k) nnz += spikes[k] != 0;
  if (nnz > std::numeric_limits<int32_t>::max()) {
    throw Error(kWhat, "more than 2^31 - 1 events in one batch (" + std::to_string(nnz) + ")",
                "split the batch into fewer rows");
  }

  SpikeEvents ev;
  ev.rows = rows;
  ev.width = width;
  ev.row_ptr.resize(static_cast<size_t>(rows) + 1);
  ev.index.resize(static_cast<size_t>(nnz));
  ev.value.resize(static_cast<size_t>(nnz));
  int32_t k = 0;
  ev.row_ptr[0] = 0;
  for (int r = 0; r < rows; ++r) {
    const int8_t* row = spikes + static_cast<int64_t>(r) * width;  // (W)
    for (int i = 0; i < width; ++i) {
      if (row[i] != 0) {
        ev.index[k] = i;
        ev.value[k] = row[i];
        ++k;
      }
    }
    ev.row_ptr[r + 1] = k;
  }
  return ev;
}

SpikeEvents SpikeEvents::from_dense(
    const Eigen::Matrix<int8_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>& spikes) {
  return from_dense(spikes.data(), static_cast<int>(spikes.rows()), static_cast<int>(spikes.cols()));
}

Eigen::Matrix<int8_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> SpikeEvents::to_dense() const {
  validate();
  Eigen::Matrix<int8_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> dense =
      Eigen::Matrix<int8_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>::Zero(rows, width);  // (R, W)
  for (int r = 0; r < rows; ++r) {
    for (int32_t k = row_ptr[r]; k < row_ptr[r + 1]; ++k) dense(r, index[k]) = value[k];
  }
  return dense;
}

void SpikeEvents::validate() const {
  if (rows < 0) throw Error(kWhat, "rows must be >= 0 (got " + std::to_string(rows) + ")");
  if (width < 0) throw Error(kWhat, "width must be >= 0 (got " + std::to_string(width) + ")");
  if (row_ptr.size() != static_cast<size_t>(rows) + 1) {
    throw Error(kWhat, "row_ptr must have rows + 1 = " + std::to_string(rows + 1) + " entries (got " +
                           std::to_string(row_ptr.size()) + ")");
  }
  if (row_ptr[0] != 0) throw Error(kWhat, "row_ptr[0] must be 0 (got " + std::to_string(row_ptr[0]) + ")");
  for (int r = 0; r < rows; ++r) {
    if (row_ptr[r + 1] < row_ptr[r]) {
      throw Error(kWhat, "row_ptr must be non-decreasing (row_ptr[" + std::to_string(r + 1) + "] = " +
                             std::to_string(row_ptr[r + 1]) + " < row_ptr[" + std::to_string(r) +
                             "] = " + std::to_string(row_ptr[r]) + ")");
    }
  }
  if (static_cast<size_t>(row_ptr[rows]) != index.size() || index.size() != value.size()) {
    throw Error(kWhat, "row_ptr[rows] (" + std::to_string(row_ptr[rows]) + "), index size (" +
                           std::to_string(index.size()) + ") and value size (" +
                           std::to_string(value.size()) + ") must be equal");
  }
  for (size_t k = 0; k < index.size(); ++k) {
    if (index[k] < 0 || index[k] >= width) {
      throw Error(kWhat, "index[" + std::to_string(k) + "] must be in [0, width = " +
                             std::to_string(width) + ") (got " + std::to_string(index[k]) + ")");
    }
    if (value[k] == 0) throw Error(kWhat, "value[" + std::to_string(k) + "] must be nonzero (got 0)");
  }
}

}  // namespace spikefm::snn
