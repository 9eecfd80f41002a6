// Checkpoint save / load / discovery; layout and atomic protocol in checkpoint.h.
#include "foundry/checkpoint/checkpoint.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "foundry/checkpoint/durable_io.h"
#include "foundry/checkpoint/safetensors.h"

namespace foundry {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr const char* kModelBase = "model";
constexpr const char* kOptimizerFile = "optimizer.safetensors";
constexpr const char* kTrainerStateFile = "trainer_state.json";
constexpr const char* kTokenizerDir = "tokenizer";
constexpr const char* kTmpPrefix = ".tmp-";  // .tmp-iter_0000100-<pid>: a save in progress
constexpr const char* kDelPrefix = ".del-";  // .del-iter_0000100-<pid>: a checkpoint being removed

// The step of an "iter_0000100" name, or -1.
int64_t parse_iter_name(const std::string& name) {
  if (name.size() < 12 || name.rfind("iter_", 0) != 0) return -1;
  int64_t step = 0;
  for (size_t i = 5; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9' || step > (INT64_MAX - 9) / 10) return -1;
    step = step * 10 + (name[i] - '0');
  }
  return step;
}

// The pid after the last '-' of a temporary name, or -1.
int64_t temp_owner_pid(const std::string& name) {
  const size_t dash = name.rfind('-');
  if (dash == std::string::npos || dash + 1 >= name.size() || name.size() - dash > 11) return -1;
  int64_t pid = 0;
  for (size_t i = dash + 1; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return -1;
    pid = pid * 10 + (name[i] - '0');
  }
  return pid;
}

// Removes temporaries left by crashed saves: ours from an earlier failed call, or those of a
// process that no longer exists (a concurrent saver's live temporaries are left alone).
void remove_stale_temporaries(const fs::path& root) {
  std::vector<fs::path> stale;
  std::error_code ec;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const bool temp = name.rfind(kTmpPrefix, 0) == 0 || name.rfind(kDelPrefix, 0) == 0 ||
                      name.rfind(std::string(kLatestCheckpointFile) + ".tmp-", 0) == 0;
    if (!temp) continue;
    const int64_t pid = temp_owner_pid(name);
    if (pid == ::getpid() || !process_alive(pid)) stale.push_back(it->path());
  }
  for (const fs::path& p : stale) fs::remove_all(p, ec);
}

// Moves a checkpoint directory out of sight (one atomic rename), then deletes it.
void remove_checkpoint_dir(const fs::path& dir) {
  const fs::path hidden =
      dir.parent_path() / fmt::format("{}{}-{}", kDelPrefix, dir.filename().string(), ::getpid());
  std::error_code ec;
  fs::rename(dir, hidden, ec);
  FOUNDRY_CHECK(!ec, "cannot remove old checkpoint '{}': {}", dir.string(), ec.message());
  fs::remove_all(hidden, ec);
  FOUNDRY_CHECK(!ec, "cannot remove old checkpoint '{}': {}", dir.string(), ec.message());
}

// Removes the temporary directory unless the save committed it.
struct TempDirGuard {
  fs::path dir;
  bool committed = false;
  ~TempDirGuard() {
    if (committed) return;
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

std::vector<NamedTensor> parameter_tensors(const ParamTable& params) {
  std::vector<NamedTensor> out;
  for (int i = 0; i < params.size(); ++i) out.push_back({params.spec(i).name, params.param(i).value.view()});
  for (int i = 0; i < params.num_buffers(); ++i) out.push_back({params.buffer_name(i), params.buffer(i).view()});
  return out;
}

void save_optimizer(const AdamW& opt, const ParamTable& params, const std::string& path) {
  FOUNDRY_CHECK(opt.size() == params.size(),
                "save_checkpoint: the optimizer holds state for {} parameters, the table has {}", opt.size(),
                params.size());
  std::vector<NamedTensor> tensors;
  for (int i = 0; i < params.size(); ++i) {
    const std::string& name = params.spec(i).name;
    FOUNDRY_CHECK(opt.exp_avg(i).shape() == params.spec(i).shape,
                  "save_checkpoint: optimizer state for '{}' has shape {}, the parameter {}", name,
                  opt.exp_avg(i).shape().str(), params.spec(i).shape.str());
    tensors.push_back({"exp_avg." + name, opt.exp_avg(i).view()});
    tensors.push_back({"exp_avg_sq." + name, opt.exp_avg_sq(i).view()});
  }
  const AdamW::Config& c = opt.config();
  save_safetensors(path, tensors,
                   {{"format", "pt"}, {"optimizer", "AdamW"}, {"step", std::to_string(opt.steps())},
                    {"beta1", fmt::format("{}", c.beta1)}, {"beta2", fmt::format("{}", c.beta2)},
                    {"eps", fmt::format("{}", c.eps)}, {"weight_decay", fmt::format("{}", c.weight_decay)}});
}

bool is_checkpoint_dir(const fs::path& dir) {
  std::error_code ec;
  return fs::is_directory(dir, ec) && fs::is_regular_file(dir / kTrainerStateFile, ec);
}

std::string human_bytes(int64_t b) {
  if (b < 1024) return fmt::format("{} B", b);
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b) / 1024;
  int u = 0;
  while (v >= 1024 && u < 3) v /= 1024, ++u;
  return fmt::format("{:.2f} {}", v, units[u]);
}

}  // namespace

std::string checkpoint_dir_name(int64_t step) {
  FOUNDRY_CHECK(step >= 0, "checkpoint step must be non-negative, got {}", step);
  return fmt::format("iter_{:07d}", step);
}

std::string save_checkpoint(const CheckpointContents& c, const std::string& root_dir, int keep_last) {
  FOUNDRY_CHECK(c.params != nullptr && c.params->allocated(), "save_checkpoint: no allocated parameter table");
  FOUNDRY_CHECK(keep_last >= 0, "save_checkpoint: keep_last must be >= 0, got {}", keep_last);
  FOUNDRY_CHECK(c.trainer_state.is_object(), "save_checkpoint: trainer_state must be a JSON object, got {}",
                c.trainer_state.type_name());
  const std::string name = checkpoint_dir_name(c.step);
  json state = c.trainer_state;
  if (state.contains("step"))
    FOUNDRY_CHECK(state["step"] == c.step, "save_checkpoint: trainer_state step {} differs from the step {}",
                  state["step"].dump(), c.step);
  state["step"] = c.step;

  const fs::path root(root_dir);
  std::error_code ec;
  fs::create_directories(root, ec);
  FOUNDRY_CHECK(!ec, "cannot create checkpoint directory '{}': {}", root.string(), ec.message());
  remove_stale_temporaries(root);

  // 1. Write everything into the temporary directory.
  TempDirGuard tmp{root / fmt::format("{}{}-{}", kTmpPrefix, name, ::getpid())};
  fs::remove_all(tmp.dir, ec);
  fs::create_directory(tmp.dir, ec);
  FOUNDRY_CHECK(!ec, "cannot create '{}': {}", tmp.dir.string(), ec.message());
  const std::vector<NamedTensor> params = parameter_tensors(*c.params);
  save_sharded(tmp.dir.string(), params, c.max_shard_bytes, {{"format", "pt"}}, kModelBase);
  if (c.optimizer) save_optimizer(*c.optimizer, *c.params, (tmp.dir / kOptimizerFile).string());
  write_file_atomic((tmp.dir / kTrainerStateFile).string(), state.dump(2) + "\n");
  if (c.save_tokenizer) {
    const fs::path tok = tmp.dir / kTokenizerDir;
    fs::create_directory(tok, ec);
    FOUNDRY_CHECK(!ec, "cannot create '{}': {}", tok.string(), ec.message());
    c.save_tokenizer(tok.string());
  }
  if (c.save_extra) c.save_extra(tmp.dir.string());
  fsync_tree(tmp.dir.string());

  // 2. Publish: rename into place (moving a previous save of the same step aside first).
  const fs::path final_dir = root / name;
  fs::path displaced;
  if (fs::exists(final_dir)) {
    displaced = root / fmt::format("{}{}-{}", kDelPrefix, name, ::getpid());
    fs::remove_all(displaced, ec);
    fs::rename(final_dir, displaced, ec);
    FOUNDRY_CHECK(!ec, "cannot move the previous '{}' aside: {}", final_dir.string(), ec.message());
  }
  fs::rename(tmp.dir, final_dir, ec);
  FOUNDRY_CHECK(!ec, "cannot rename '{}' to '{}': {}", tmp.dir.string(), final_dir.string(), ec.message());
  tmp.committed = true;
  fsync_path(root.string());

  // 3. Advertise it (Megatron's tracker holds the bare iteration number).
  write_file_atomic((root / kLatestCheckpointFile).string(), std::to_string(c.step));

  // 4. Retention.
  if (!displaced.empty()) fs::remove_all(displaced, ec);
  if (keep_last > 0) {
    std::vector<CheckpointRef> all = list_checkpoints(root.string());
    std::sort(all.begin(), all.end(), [](const CheckpointRef& a, const CheckpointRef& b) { return a.step > b.step; });
    int kept = 1;  // the new checkpoint
    for (const CheckpointRef& ref : all) {
      if (ref.step == c.step) continue;
      if (kept < keep_last) {
        ++kept;
        continue;
      }
      remove_checkpoint_dir(ref.dir);
    }
  }
  return final_dir.string();
}

std::vector<CheckpointRef> list_checkpoints(const std::string& root) {
  std::vector<CheckpointRef> out;
  std::error_code ec;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    const int64_t step = parse_iter_name(it->path().filename().string());
    if (step >= 0 && is_checkpoint_dir(it->path())) out.push_back({step, it->path().string()});
  }
  std::sort(out.begin(), out.end(), [](const CheckpointRef& a, const CheckpointRef& b) { return a.step < b.step; });
  return out;
}

std::optional<std::string> latest_checkpoint(const std::string& root) {
  const fs::path tracker = fs::path(root) / kLatestCheckpointFile;
  std::error_code ec;
  if (fs::is_regular_file(tracker, ec)) {
    std::string text = read_small_file(tracker.string(), 4096);
    text.erase(text.find_last_not_of(" \t\r\n") + 1);
    text.erase(0, text.find_first_not_of(" \t\r\n"));
    fs::path named;  // Megatron writes the bare iteration number, or "release"
    if (text == "release")
      named = fs::path(root) / "release";
    else if (!text.empty() && text.size() <= 18 && text.find_first_not_of("0123456789") == std::string::npos)
      named = fs::path(root) / checkpoint_dir_name(std::stoll(text));
    if (!named.empty() && is_checkpoint_dir(named)) return named.string();
  }
  const std::vector<CheckpointRef> all = list_checkpoints(root);
  if (all.empty()) return std::nullopt;
  return all.back().dir;
}

std::string resolve_checkpoint(const std::string& path) {
  std::error_code ec;
  FOUNDRY_CHECK(fs::exists(path, ec), "checkpoint '{}' does not exist", path);
  if (is_checkpoint_dir(path)) return path;
  FOUNDRY_CHECK(fs::is_directory(path, ec), "'{}' is not a checkpoint directory", path);
  const std::optional<std::string> latest = latest_checkpoint(path);
  FOUNDRY_CHECK(latest.has_value(), "'{}' is neither a checkpoint ({} missing) nor a directory of checkpoints",
                path, kTrainerStateFile);
  return *latest;
}

bool has_optimizer_state(const std::string& dir) {
  std::error_code ec;
  return fs::is_regular_file(fs::path(dir) / kOptimizerFile, ec);
}

json read_trainer_state(const std::string& dir) {
  const std::string path = (fs::path(dir) / kTrainerStateFile).string();
  json state;
  try {
    state = json::parse(read_small_file(path));
  } catch (const json::exception& e) {
    FOUNDRY_FAIL("'{}' is not valid JSON: {}", path, e.what());
  }
  FOUNDRY_CHECK(state.is_object() && state.contains("step") && state["step"].is_number_integer() &&
                    state["step"].get<int64_t>() >= 0,
                "'{}' has no non-negative integer \"step\"", path);
  return state;
}

namespace {
// Reads the full tensor `name` and keeps spec's blocks of it (the whole tensor when not sharded).
template <class File>
void read_shard(const File& file, const std::string& name, const ParamSpec& spec, Tensor& local) {
  if (!spec.sharded()) {
    file.read_into(name, local);
    return;
  }
  Tensor full = Tensor::empty(spec.global_shape, DType::f32);
  file.read_into(name, full);
  copy_full_to_shard(spec, full, local);
}
}  // namespace

LoadedCheckpoint load_checkpoint(const std::string& path, ParamTable& params, AdamW* optimizer, bool partial_model) {
  FOUNDRY_CHECK(params.allocated(), "load_checkpoint: the parameter table is not allocated");
  LoadedCheckpoint out;
  out.dir = resolve_checkpoint(path);
  out.trainer_state = read_trainer_state(out.dir);
  out.step = out.trainer_state["step"].get<int64_t>();
  const std::string& dir = out.dir;

  // Validate everything before touching the model.
  const ShardedSafetensors model(dir, kModelBase);
  for (int i = 0; i < params.size(); ++i) {
    const ParamSpec& s = params.spec(i);
    FOUNDRY_CHECK(model.contains(s.name), "checkpoint '{}' has no parameter '{}'", dir, s.name);
    const SafetensorsEntry& e = model.entry(s.name);
    FOUNDRY_CHECK(e.dtype == s.dtype && e.shape == s.full_shape(),
                  "checkpoint '{}': parameter '{}' is {} {}, the model expects {} {}", dir, s.name, e.dtype_name,
                  e.shape.str(), safetensors_dtype(s.dtype), s.full_shape().str());
  }
  for (int i = 0; i < params.num_buffers(); ++i) {
    const std::string& name = params.buffer_name(i);
    FOUNDRY_CHECK(model.contains(name), "checkpoint '{}' has no buffer '{}'", dir, name);
    const SafetensorsEntry& e = model.entry(name);
    FOUNDRY_CHECK(e.dtype == DType::f32 && e.shape == params.buffer(i).shape(),
                  "checkpoint '{}': buffer '{}' is {} {}, the model expects F32 {}", dir, name, e.dtype_name,
                  e.shape.str(), params.buffer(i).shape().str());
  }
  for (const std::string& name : model.names()) {
    if (partial_model) break;  // a pipeline stage holds some of the parameters
    bool known = false;
    for (int i = 0; i < params.size() && !known; ++i) known = params.spec(i).name == name;
    for (int i = 0; i < params.num_buffers() && !known; ++i) known = params.buffer_name(i) == name;
    FOUNDRY_CHECK(known, "checkpoint '{}' has parameter '{}', which the model does not have", dir, name);
  }
  std::optional<SafetensorsFile> opt;
  int64_t opt_steps = 0;
  if (optimizer) {
    FOUNDRY_CHECK(optimizer->size() == params.size(), "load_checkpoint: the optimizer is not over this table");
    const fs::path opt_path = fs::path(dir) / kOptimizerFile;
    FOUNDRY_CHECK(fs::exists(opt_path), "checkpoint '{}' has no optimizer state ({})", dir, kOptimizerFile);
    opt.emplace(opt_path.string());
    for (int i = 0; i < params.size(); ++i) {
      const ParamSpec& s = params.spec(i);
      for (const std::string& key : {"exp_avg." + s.name, "exp_avg_sq." + s.name}) {
        FOUNDRY_CHECK(opt->contains(key), "'{}' has no optimizer state '{}'", opt->path(), key);
        const SafetensorsEntry& e = opt->entry(key);
        FOUNDRY_CHECK(e.dtype == DType::f32 && e.shape == s.full_shape(),
                      "'{}': optimizer state '{}' is {} {}, expected F32 {}", opt->path(), key, e.dtype_name,
                      e.shape.str(), s.full_shape().str());
      }
    }
    FOUNDRY_CHECK(partial_model || opt->entries().size() == 2 * static_cast<size_t>(params.size()),
                  "'{}' holds {} tensors, expected exp_avg and exp_avg_sq for each of the {} parameters",
                  opt->path(), opt->entries().size(), params.size());
    const auto it = opt->metadata().find("step");
    const std::string steps = it == opt->metadata().end() ? "" : it->second;
    FOUNDRY_CHECK(!steps.empty() && steps.size() <= 18 && steps.find_first_not_of("0123456789") == std::string::npos,
                  "'{}': metadata \"step\" is missing or not a non-negative integer ('{}')", opt->path(), steps);
    opt_steps = std::stoll(steps);
  }

  // Copy.
  for (int i = 0; i < params.size(); ++i) read_shard(model, params.spec(i).name, params.spec(i), params.param(i).value);
  for (int i = 0; i < params.num_buffers(); ++i) model.read_into(params.buffer_name(i), params.buffer(i));
  if (optimizer) {
    for (int i = 0; i < params.size(); ++i) {
      read_shard(*opt, "exp_avg." + params.spec(i).name, params.spec(i), optimizer->exp_avg(i));
      read_shard(*opt, "exp_avg_sq." + params.spec(i).name, params.spec(i), optimizer->exp_avg_sq(i));
    }
    optimizer->set_steps(opt_steps);
  }
  std::error_code ec;
  const fs::path tok = fs::path(dir) / kTokenizerDir;
  if (fs::is_directory(tok, ec) && !fs::is_empty(tok, ec)) out.tokenizer_dir = tok.string();
  return out;
}

std::string describe_checkpoint(const std::string& path) {
  std::string s;
  std::error_code ec;
  if (!is_checkpoint_dir(path) && fs::is_directory(path, ec)) {
    const std::vector<CheckpointRef> all = list_checkpoints(path);
    std::string steps;
    for (const CheckpointRef& r : all) steps += fmt::format("{}{}", steps.empty() ? "" : ", ", r.step);
    s += fmt::format("checkpoint root  {} ({} checkpoint{}: steps {})\n", path, all.size(),
                     all.size() == 1 ? "" : "s", steps.empty() ? "none" : steps);
  }
  const std::string dir = resolve_checkpoint(path);
  const json state = read_trainer_state(dir);
  s += fmt::format("checkpoint       {}\n", dir);
  s += fmt::format("step             {}\n", state["step"].get<int64_t>());
  for (const auto& [key, value] : state.items()) {
    if (key == "config" || key == "step") continue;
    std::string v = value.dump();
    if (key == "hf" && value.is_object() && value.contains("architecture") && value.contains("torch_dtype"))
      v = fmt::format("imported {} ({}) from {}", value["architecture"].get<std::string>(),
                      value["torch_dtype"].get<std::string>(), value.value("source", std::string("?")));
    else if (v.size() > 100) v = value.is_structured() ? fmt::format("({} entries)", value.size()) : v.substr(0, 97) + "...";
    s += fmt::format("{:<16} {}\n", key, v);
  }

  const ShardedSafetensors model(dir, kModelBase);
  int64_t values = 0;
  for (const std::string& name : model.names()) values += model.entry(name).shape.numel();
  std::string files;
  for (const SafetensorsFile& f : model.files())
    files += fmt::format("{}{}", files.empty() ? "" : ", ", fs::path(f.path()).filename().string());
  if (model.files().size() > 3)
    files = fmt::format("{} shards + {}", model.files().size(), shard_index_name(kModelBase));
  s += fmt::format("parameters       {} tensors, {} values, {} in {}\n", model.names().size(), values,
                   human_bytes(model.total_size()), files);

  const fs::path opt_path = fs::path(dir) / kOptimizerFile;
  if (fs::exists(opt_path)) {
    const SafetensorsFile opt(opt_path.string());
    const auto it = opt.metadata().find("step");
    s += fmt::format("optimizer        {} step {}, {} tensors, {}\n",
                     opt.metadata().count("optimizer") ? opt.metadata().at("optimizer") : "?",
                     it == opt.metadata().end() ? "?" : it->second, opt.entries().size(),
                     human_bytes(opt.data_bytes()));
  } else {
    s += "optimizer        none\n";
  }
  const fs::path tok = fs::path(dir) / kTokenizerDir;
  int tok_files = 0;
  if (fs::is_directory(tok, ec))
    for (const auto& e : fs::recursive_directory_iterator(tok, ec)) tok_files += e.is_regular_file() ? 1 : 0;
  s += tok_files > 0 ? fmt::format("tokenizer        {}/ ({} file{})\n", kTokenizerDir, tok_files, tok_files == 1 ? "" : "s")
                     : std::string("tokenizer        none\n");

  if (state.contains("config") && state["config"].is_string()) {
    constexpr int kLines = 12;
    const std::string cfg = state["config"].get<std::string>();
    s += "config (excerpt)\n";
    size_t pos = 0;
    int lines = 0;
    while (pos < cfg.size() && lines < kLines) {
      const size_t nl = std::min(cfg.find('\n', pos), cfg.size());
      s += "  " + cfg.substr(pos, nl - pos) + "\n";
      pos = nl + 1;
      ++lines;
    }
    if (pos < cfg.size()) s += "  ...\n";
  }
  return s;
}

}  // namespace foundry
