// Positional arguments shared by train and bench: an optional recipe path followed by
// section.key=value overrides (an argument with '=' is an override).
#pragma once

#include <string>
#include <vector>

#include "foundry/train/config.h"

namespace foundry::cli {

inline RunConfig load_recipe(const std::vector<std::string>& args, std::string* recipe_name) {
  std::string path;
  std::vector<std::string> overrides;
  for (const auto& a : args) {
    if (a.find('=') != std::string::npos) overrides.push_back(a);
    else if (path.empty()) path = a;
    else FOUNDRY_FAIL("unexpected argument '{}' (one recipe, then section.key=value overrides)", a);
  }
  if (recipe_name) *recipe_name = path.empty() ? "default" : path;
  return path.empty() ? RunConfig::parse(default_recipe_yaml(), "<built-in default recipe>", overrides)
                      : RunConfig::load(path, overrides);
}

}  // namespace foundry::cli
