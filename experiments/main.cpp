// spikefm: train, evaluate, compress, convert and simulate multimodal foundation models as spiking
// networks. Errors print `spikefm: error: <what>: <why> (<fix>)` and exit non-zero.
#include <cstdio>
#include <exception>
#include <map>

#include "common/error.h"
#include "experiments/cli.h"

int main(int argc, char** argv) {
  CLI::App app{"spikefm: convert multimodal foundation models into spiking networks and measure what it buys"};
  app.name("spikefm");
  app.require_subcommand(1);
  app.set_version_flag("--version", "spikefm 0.1.0");
  std::map<CLI::App*, spikefm::cli::Action> actions;
  auto add = [&](spikefm::cli::Action (*reg)(CLI::App&)) {
    size_t before = app.get_subcommands({}).size();
    spikefm::cli::Action a = reg(app);
    actions[app.get_subcommands({})[before]] = std::move(a);
  };
  add(spikefm::cli::add_train);
  add(spikefm::cli::add_eval);
  add(spikefm::cli::add_generate);
  add(spikefm::cli::add_convert);
  add(spikefm::cli::add_simulate);
  add(spikefm::cli::add_energy);
  add(spikefm::cli::add_compress);
  add(spikefm::cli::add_bench);
  add(spikefm::cli::add_finetune);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "spikefm: error: %s (see spikefm --help)\n", e.what());
    return 2;
  }
  try {
    for (auto* sub : app.get_subcommands()) return actions.at(sub)();
  } catch (const spikefm::Error& e) {
    std::fprintf(stderr, "spikefm: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "spikefm: error: internal: %s (please report this)\n", e.what());
    return 3;
  }
  return 0;
}
