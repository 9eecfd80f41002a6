// The shape every foundry YAML config shares: a map of sections, each a map of key: value
// (`model:`, `train:` for recipes; `detect:`, `split:` for curation). for_each_yaml_key visits
// every key in document order; errors name the source: YAML syntax (with its line), a document
// or section that is not a map, and an unknown section (with the closest known one).
// parse_yaml_assignment reads one command-line override, `section.key=value` (NeMo/Hydra habit).
#pragma once

#include <yaml-cpp/yaml.h>

#include <functional>
#include <string>

#include "foundry/core/check.h"
#include "foundry/core/did_you_mean.h"

namespace foundry {

// sections: a map keyed by the known section names. shape: how the error describes a valid
// document, e.g. "a recipe is a map of sections (model:, train:)".
template <class Sections>
void for_each_yaml_key(const std::string& text, const std::string& source, const Sections& sections,
                       const std::string& shape,
                       const std::function<void(const std::string& section, const std::string& key,
                                                const YAML::Node& value)>& visit) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    FOUNDRY_FAIL("{}: YAML error at line {}: {}", source, e.mark.line + 1, e.msg);
  }
  if (!root || root.IsNull()) return;
  FOUNDRY_CHECK(root.IsMap(), "{}: {}", source, shape);
  for (const auto& section : root) {
    const std::string name = section.first.as<std::string>();
    FOUNDRY_CHECK(sections.count(name), "{}: unknown config section '{}'{}", source, name,
                  did_you_mean(name, sections));
    FOUNDRY_CHECK(section.second.IsMap() || section.second.IsNull(), "{}: section '{}' must be a map", source, name);
    if (section.second.IsNull()) continue;
    for (const auto& kv : section.second) visit(name, kv.first.as<std::string>(), kv.second);
  }
}

struct YamlAssignment {
  std::string section, key;
  YAML::Node value;  // the text after '=', parsed as YAML
};

inline YamlAssignment parse_yaml_assignment(const std::string& assignment) {
  const auto eq = assignment.find('=');
  const auto dot = assignment.find('.');
  FOUNDRY_CHECK(eq != std::string::npos && dot != std::string::npos && dot < eq,
                "override '{}' is not of the form section.key=value", assignment);
  YamlAssignment a{assignment.substr(0, dot), assignment.substr(dot + 1, eq - dot - 1), {}};
  try {
    a.value = YAML::Load(assignment.substr(eq + 1));
  } catch (const YAML::Exception& e) {
    FOUNDRY_FAIL("override '{}': value is not valid YAML ({})", assignment, e.msg);
  }
  return a;
}

}  // namespace foundry
