#include "common/json.h"

#include "common/atomic_file.h"

namespace spikefm {

void write_json_file(const std::filesystem::path& path, const Json& value) {
  write_file_atomic(path, value.dump(2) + "\n");
}

}  // namespace spikefm
