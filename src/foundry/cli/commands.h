// Subcommands of the foundry command. Each registers itself on the CLI11 app and runs from its
// callback; errors propagate as foundry::Error to main().
#pragma once

#include <CLI/CLI.hpp>

namespace foundry::cli {

void add_train_command(CLI::App& app);  // foundry train [RECIPE] [section.key=value ...]
void add_bench_command(CLI::App& app);  // foundry bench step RECIPE [section.key=value ...]
void add_bench_comm_command(CLI::App& bench);  // foundry bench comm RECIPE (a subcommand of bench)
void add_info_command(CLI::App& app);   // foundry info
void add_preprocess_command(CLI::App& app);  // foundry preprocess --input FILES --tokenizer T --output-prefix P
void add_plot_command(CLI::App& app);   // foundry plot RUN_DIR [--output FILE.svg]
void add_tokenizer_command(CLI::App& app);  // foundry tokenizer encode|decode|train|info

void add_eval_command(CLI::App& app);      // foundry eval CKPT --data PREFIX_OR_TEXT
void add_generate_command(CLI::App& app);  // foundry generate CKPT --prompt TEXT
void add_upcycle_command(CLI::App& app);   // foundry upcycle DENSE_CKPT --num-experts N --topk T --out MOE_ROOT
void add_curate_command(CLI::App& app);   // foundry curate --detect-only VIDEO... [-o FILE.json]
void add_convert_command(CLI::App& app);   // foundry convert --from-hf DIR --to ROOT | --from CKPT --to-hf DIR

}  // namespace foundry::cli
