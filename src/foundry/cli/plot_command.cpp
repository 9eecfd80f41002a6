// foundry plot RUN_DIR [--output FILE.svg] [--no-png] [--from-step N]: draws RUN_DIR/metrics.jsonl
// (loss, learning rate, throughput vs step; MoE runs add router losses and an expert-load heatmap)
// to an SVG, and a PNG beside it when a converter is on PATH.
// foundry plot RUN_A RUN_B [...] [--label A_NAME --label B_NAME ...] [--from-step N] --output
// FILE.svg: one SVG comparing the runs (loss, learning rate, throughput; a series per run).
#include "foundry/cli/commands.h"
#include "foundry/train/plot.h"

namespace foundry::cli {

void add_plot_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("plot", "Draw a run's loss, learning rate and throughput curves, and expert load for "
                                         "MoE runs, or compare several runs (SVG, and PNG)");
  auto runs = std::make_shared<std::vector<std::string>>();
  auto labels = std::make_shared<std::vector<std::string>>();
  auto output = std::make_shared<std::string>();
  auto from_step = std::make_shared<int64_t>(kNoFromStep);
  auto no_png = std::make_shared<bool>(false);
  cmd->add_option("run_dir", *runs,
                  "Run directory holding metrics.jsonl (or the metrics file itself); two or more: compare them")
      ->required();
  cmd->add_option("-o,--output", *output,
                  "SVG file to write (one run: default metrics.svg beside metrics.jsonl; required to compare runs)");
  cmd->add_option("--label", *labels, "Legend name of a compared run, once per run in order (default: its directory name)")
      ->allow_extra_args(false);
  cmd->add_option("--from-step", *from_step, "Draw only steps >= N (e.g. a continuation from its start)");
  cmd->add_flag("--no-png", *no_png, "Write only the SVG");
  cmd->callback([runs, labels, output, from_step, no_png] {
    const PlotRunsResult r = plot_runs(*runs, *labels, *output, !*no_png, *from_step);
    for (size_t i = 0; i < r.metrics_paths.size(); ++i) {
      if (r.labels[i].empty())
        std::printf("plot: %zu records from %s\n", r.records[i], r.metrics_paths[i].c_str());
      else
        std::printf("plot: %s: %zu records from %s\n", r.labels[i].c_str(), r.records[i], r.metrics_paths[i].c_str());
    }
    std::printf("plot: wrote %s\n", r.svg_path.c_str());
    if (r.png.written)
      std::printf("plot: wrote %s (with %s)\n", r.png_path.c_str(), r.png.tool.c_str());
    else if (!*no_png)
      std::printf("plot: no PNG: %s\n", r.png.note.c_str());
  });
}

}  // namespace foundry::cli
