// The `spikefm` command line: one file per subcommand, each registering itself on the app.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

#include "common/json.h"

namespace spikefm {
struct SimulateReport;
}

namespace spikefm::cli {

// A registered subcommand runs this after parsing; returns the process exit code.
using Action = std::function<int()>;

Action add_train(CLI::App& app);
Action add_eval(CLI::App& app);
Action add_generate(CLI::App& app);
Action add_convert(CLI::App& app);
Action add_simulate(CLI::App& app);
Action add_energy(CLI::App& app);
Action add_compress(CLI::App& app);
Action add_bench(CLI::App& app);
Action add_finetune(CLI::App& app);

// The run-level figures of a simulation as JSON (simulate --json; energy --json embeds them).
Json simulate_summary_json(const SimulateReport& r);

}  // namespace spikefm::cli
