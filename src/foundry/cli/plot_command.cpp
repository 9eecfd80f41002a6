// foundry plot RUN_DIR [--output FILE.svg] [--no-png]: draws RUN_DIR/metrics.jsonl (loss, learning
// rate, throughput vs step; MoE runs add router losses and an expert-load heatmap) to an SVG, and a
// PNG beside it when a converter is on PATH.
#include "foundry/cli/commands.h"
#include "foundry/train/plot.h"

namespace foundry::cli {

void add_plot_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("plot", "Draw a run's loss, learning rate and throughput curves, and expert load for MoE runs (SVG, and PNG)");
  auto run = std::make_shared<std::string>();
  auto output = std::make_shared<std::string>();
  auto no_png = std::make_shared<bool>(false);
  cmd->add_option("run_dir", *run, "Run directory holding metrics.jsonl (or the metrics file itself)")->required();
  cmd->add_option("-o,--output", *output, "SVG file to write (default: metrics.svg beside metrics.jsonl)");
  cmd->add_flag("--no-png", *no_png, "Write only the SVG");
  cmd->callback([run, output, no_png] {
    const PlotResult r = plot_run(*run, *output, !*no_png);
    std::printf("plot: %zu records from %s\n", r.records, r.metrics_path.c_str());
    std::printf("plot: wrote %s\n", r.svg_path.c_str());
    if (r.png.written)
      std::printf("plot: wrote %s (with %s)\n", r.png_path.c_str(), r.png.tool.c_str());
    else if (!*no_png)
      std::printf("plot: no PNG: %s\n", r.png.note.c_str());
  });
}

}  // namespace foundry::cli
