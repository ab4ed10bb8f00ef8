// The sidecar of the shipped code task set (datasets/data/code/code_meta.jsonl, docs/code_tasks.md):
// one {"task_id", "family", "category", "params"} object per line. Used to split benchmark scores by
// family and by test category (seen / heldout_constant / heldout_composition).
#pragma once

#include <filesystem>
#include <map>
#include <string>

namespace spikefm {

struct CodeTaskMeta {
  std::string family;
  std::string category;  // "train", "seen", "heldout_constant" or "heldout_composition"
};

// task_id → meta. Throws spikefm::Error naming the file and 1-based line on malformed JSON or a
// missing/non-string task_id, family or category; blank lines are allowed.
std::map<std::string, CodeTaskMeta> load_code_meta(const std::filesystem::path& path);

}  // namespace spikefm
