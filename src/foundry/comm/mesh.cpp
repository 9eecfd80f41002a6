// The parallel Mesh (Megatron-Core parallel_state.py); see mesh.h for the formulas.
#include "foundry/comm/mesh.h"

#include <algorithm>
#include <cctype>
#include <utility>

#include "foundry/core/check.h"

namespace foundry {

namespace {

std::vector<std::string> split_dash(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t end = s.find('-', start);
    out.push_back(s.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

// Megatron's decompose: idx[i] = (index / stride[i]) % shape[i], stride = prefix products of shape.
std::vector<int> decompose(int index, const std::vector<int>& shape) {
  std::vector<int> idx(shape.size());
  int stride = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    idx[i] = (index / stride) % shape[i];
    stride *= shape[i];
  }
  return idx;
}

const char* const kDims[] = {"tp", "cp", "ep", "dp", "pp"};

}  // namespace

const char* mesh_group_name(MeshGroup g) {
  switch (g) {
    case MeshGroup::tp: return "tp";
    case MeshGroup::cp: return "cp";
    case MeshGroup::dp: return "dp";
    case MeshGroup::dp_cp: return "dp_cp";
    case MeshGroup::tp_cp: return "tp_cp";
    case MeshGroup::tp_dp_cp: return "tp_dp_cp";
    case MeshGroup::tp_dp: return "tp_dp";
    case MeshGroup::pp: return "pp";
    case MeshGroup::mp: return "mp";
    case MeshGroup::embd: return "embd";
    case MeshGroup::pos_embd: return "pos_embd";
    case MeshGroup::ep: return "ep";
    case MeshGroup::expt_tp: return "expt_tp";
    case MeshGroup::expt_dp: return "expt_dp";
    case MeshGroup::tp_ep: return "tp_ep";
    case MeshGroup::tp_ep_pp: return "tp_ep_pp";
  }
  return "?";
}

std::vector<std::vector<int>> masked_orthogonal_rank_groups(const std::vector<int>& sizes,
                                                           const std::vector<bool>& mask) {
  FOUNDRY_CHECK(sizes.size() == mask.size(), "masked_orthogonal_rank_groups: {} sizes but {} mask entries",
                sizes.size(), mask.size());
  std::vector<int> masked_shape, unmasked_shape, masked_stride, unmasked_stride;
  int stride = 1;  // global stride: prefix product of sizes
  for (size_t i = 0; i < sizes.size(); ++i) {
    FOUNDRY_CHECK(sizes[i] >= 1, "masked_orthogonal_rank_groups: size {} of dim {}", sizes[i], i);
    (mask[i] ? masked_shape : unmasked_shape).push_back(sizes[i]);
    (mask[i] ? masked_stride : unmasked_stride).push_back(stride);
    stride *= sizes[i];
  }
  const int world = stride;
  int group_size = 1;
  for (int s : masked_shape) group_size *= s;
  const int num_groups = world / group_size;

  std::vector<std::vector<int>> groups(num_groups, std::vector<int>(group_size));
  for (int g = 0; g < num_groups; ++g) {
    const std::vector<int> gidx = decompose(g, unmasked_shape);
    int base = 0;
    for (size_t i = 0; i < gidx.size(); ++i) base += gidx[i] * unmasked_stride[i];
    for (int r = 0; r < group_size; ++r) {
      const std::vector<int> ridx = decompose(r, masked_shape);
      int rank = base;
      for (size_t i = 0; i < ridx.size(); ++i) rank += ridx[i] * masked_stride[i];
      groups[g][r] = rank;
    }
  }
  return groups;
}

// ---- RankGenerator ---------------------------------------------------------------------------

RankGenerator::RankGenerator(int tp, int ep, int dp, int pp, int cp, const std::string& order,
                             const char* which) {
  FOUNDRY_CHECK(ep == 1 || cp == 1,
                "mesh: the {} rank generator has EP {} and CP {}; one of them must be 1 (Megatron: CP "
                "only in the attention generator, EP only in the expert one)", which, ep, cp);
  const std::pair<const char*, int> name_to_size[] = {{"tp", tp}, {"pp", pp}, {"dp", dp}, {"ep", ep}, {"cp", cp}};
  auto size_of = [&](const std::string& name) {
    for (const auto& [n, s] : name_to_size)
      if (name == n) return s;
    return -1;
  };

  std::string lower = order;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const std::string& token : split_dash(lower)) {
    FOUNDRY_CHECK(size_of(token) >= 0,
                  "parallel.order '{}' is malformed: '{}' is not one of tp, cp, ep, dp, pp (expected "
                  "distinct names joined by '-', e.g. 'tp-cp-ep-dp-pp')", order, token);
    FOUNDRY_CHECK(std::find(dims_.begin(), dims_.end(), token) == dims_.end(),
                  "parallel.order '{}' is malformed: '{}' appears twice", order, token);
    dims_.push_back(token);
  }
  for (const auto& [name, size] : name_to_size) {
    if (std::find(dims_.begin(), dims_.end(), name) != dims_.end()) continue;
    FOUNDRY_CHECK(size == 1, "parallel.order '{}' lacks '{}' but the {} generator's {} size is {}", order,
                  name, which, name, size);
    dims_.push_back(name);  // Megatron: order = order + "-" + name
  }
  world_size_ = 1;
  for (const std::string& d : dims_) {
    sizes_.push_back(size_of(d));
    world_size_ *= sizes_.back();
  }
}

std::vector<std::vector<int>> RankGenerator::get_ranks(const std::string& token) const {
  std::vector<bool> mask(dims_.size(), false);
  for (const std::string& t : split_dash(token)) {
    auto it = std::find(dims_.begin(), dims_.end(), t);
    FOUNDRY_CHECK(it != dims_.end(), "RankGenerator::get_ranks: unknown dim '{}' in '{}'", t, token);
    mask[it - dims_.begin()] = true;
  }
  return masked_orthogonal_rank_groups(sizes_, mask);
}

int RankGenerator::index(int rank, const std::string& dim) const {
  auto it = std::find(dims_.begin(), dims_.end(), dim);
  FOUNDRY_CHECK(it != dims_.end(), "RankGenerator::index: unknown dim '{}'", dim);
  return decompose(rank, sizes_)[it - dims_.begin()];
}

// ---- MeshLayout ------------------------------------------------------------------------------

MeshLayout::MeshLayout(const ParallelConfig& cfg, int world_size) : cfg_(cfg), world_(world_size) {
  FOUNDRY_CHECK(world_size >= 1, "mesh: world size {} must be >= 1", world_size);
  auto size = [&](int64_t v, const char* key, int64_t min) {
    FOUNDRY_CHECK(v >= min, "parallel.{} is {}; it must be >= {}", key, v, min);
    FOUNDRY_CHECK(v <= world_size, "parallel.{} ({}) is larger than the world size ({})", key, v, world_size);
    return static_cast<int>(v);
  };
  tp_ = size(cfg.tensor_model_parallel_size, "tensor_model_parallel_size", 1);
  cp_ = size(cfg.context_parallel_size, "context_parallel_size", 1);
  pp_ = size(cfg.pipeline_model_parallel_size, "pipeline_model_parallel_size", 1);
  ep_ = size(cfg.expert_model_parallel_size, "expert_model_parallel_size", 1);
  etp_ = cfg.expert_tensor_parallel_size == 0
             ? tp_
             : size(cfg.expert_tensor_parallel_size, "expert_tensor_parallel_size (0 = tensor_model_parallel_size)", 1);
  FOUNDRY_CHECK(cfg.virtual_pipeline_model_parallel_size >= 0,
                "parallel.virtual_pipeline_model_parallel_size is {}; it must be >= 0 (0 = no interleaving)",
                cfg.virtual_pipeline_model_parallel_size);
  FOUNDRY_CHECK(cfg.virtual_pipeline_model_parallel_size < (int64_t{1} << 30),
                "parallel.virtual_pipeline_model_parallel_size ({}) is too large",
                cfg.virtual_pipeline_model_parallel_size);
  vpp_ = static_cast<int>(cfg.virtual_pipeline_model_parallel_size);
  order_ = cfg.order;

  const int64_t model = int64_t{tp_} * cp_ * pp_;
  FOUNDRY_CHECK(world_ % model == 0,
                "parallel: the world size {} is not divisible by tensor_model_parallel_size ({}) x "
                "context_parallel_size ({}) x pipeline_model_parallel_size ({}) = {}",
                world_, tp_, cp_, pp_, model);
  dp_ = static_cast<int>(world_ / model);
  FOUNDRY_CHECK(vpp_ == 0 || pp_ > 1,
                "parallel.virtual_pipeline_model_parallel_size ({}) needs pipeline_model_parallel_size > 1 "
                "(it is {}): the interleaved schedule splits each pipeline stage", vpp_, pp_);
  const int64_t expert_model = int64_t{etp_} * ep_ * pp_;
  FOUNDRY_CHECK(world_ % expert_model == 0,
                "parallel: the world size {} is not divisible by expert_tensor_parallel_size ({}) x "
                "expert_model_parallel_size ({}) x pipeline_model_parallel_size ({}) = {}",
                world_, etp_, ep_, pp_, expert_model);
  edp_ = static_cast<int>(world_ / expert_model);
  sequence_parallel_ = cfg.sequence_parallel && tp_ > 1;

  attn_ = RankGenerator(tp_, 1, dp_, pp_, cp_, order_, "attention");
  expt_ = RankGenerator(etp_, ep_, edp_, pp_, 1, order_, "expert");
  std::string lower = order_;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const bool ends_in_pp = lower.size() >= 2 && lower.compare(lower.size() - 2, 2, "pp") == 0;
  FOUNDRY_CHECK(ends_in_pp || pp_ == 1 || edp_ == dp_,
                "parallel.order '{}' does not end in 'pp' and pipeline_model_parallel_size is {}, so the "
                "expert data-parallel size world/(ETP*EP*PP) = {} must equal the attention one "
                "world/(TP*CP*PP) = {} (Megatron)", order_, pp_, edp_, dp_);

  auto set = [&](MeshGroup g, std::vector<std::vector<int>> groups) { groups_[idx(g)] = std::move(groups); };
  set(MeshGroup::tp, attn_.get_ranks("tp"));
  set(MeshGroup::cp, attn_.get_ranks("cp"));
  set(MeshGroup::dp, attn_.get_ranks("dp"));
  set(MeshGroup::dp_cp, attn_.get_ranks("dp-cp"));
  set(MeshGroup::tp_cp, attn_.get_ranks("tp-cp"));
  set(MeshGroup::tp_dp_cp, attn_.get_ranks("tp-dp-cp"));
  set(MeshGroup::tp_dp, attn_.get_ranks("tp-dp"));
  set(MeshGroup::pp, attn_.get_ranks("pp"));
  set(MeshGroup::mp, attn_.get_ranks("tp-pp"));
  set(MeshGroup::ep, expt_.get_ranks("ep"));
  set(MeshGroup::expt_tp, expt_.get_ranks("tp"));
  set(MeshGroup::expt_dp, expt_.get_ranks("dp"));
  set(MeshGroup::tp_ep, expt_.get_ranks("tp-ep"));
  set(MeshGroup::tp_ep_pp, expt_.get_ranks("tp-ep-pp"));
  const auto& pp_groups = groups(MeshGroup::pp);
  FOUNDRY_CHECK(pp_groups == expt_.get_ranks("pp"),
                "parallel: the attention and expert pipeline groups differ under order '{}' (Megatron "
                "requires them equal)", order_);
  // Megatron's default_embedding_ranks / default_position_embedding_ranks.
  std::vector<std::vector<int>> embd, pos_embd;
  for (const auto& p : pp_groups) {
    embd.push_back(p.size() == 1 ? std::vector<int>{p.front()} : std::vector<int>{p.front(), p.back()});
    pos_embd.push_back({p.front()});
  }
  set(MeshGroup::embd, std::move(embd));
  set(MeshGroup::pos_embd, std::move(pos_embd));

  for (MeshGroup g : kAllMeshGroups) {
    auto& where = where_[idx(g)];
    where.assign(world_, Where{});
    const auto& gs = groups_[idx(g)];
    for (int gi = 0; gi < static_cast<int>(gs.size()); ++gi)
      for (int pos = 0; pos < static_cast<int>(gs[gi].size()); ++pos) {
        const int r = gs[gi][pos];
        FOUNDRY_CHECK(r >= 0 && r < world_ && where[r].group < 0, "mesh: rank {} placed twice in the {} groups",
                      r, mesh_group_name(g));
        where[r] = Where{gi, pos};
      }
  }
}

int MeshLayout::check_rank(int rank) const {
  FOUNDRY_CHECK(rank >= 0 && rank < world_, "mesh: rank {} outside the world of {}", rank, world_);
  return rank;
}

int MeshLayout::group_index(MeshGroup g, int rank) const {
  const Where& w = where_[idx(g)][check_rank(rank)];
  FOUNDRY_CHECK(w.group >= 0, "mesh: rank {} is in no {} group (a middle pipeline stage)", rank, mesh_group_name(g));
  return w.group;
}

int MeshLayout::rank_in_group(MeshGroup g, int rank) const {
  group_index(g, rank);
  return where_[idx(g)][rank].pos;
}

const std::vector<int>& MeshLayout::group_ranks(MeshGroup g, int rank) const {
  return groups_[idx(g)][group_index(g, rank)];
}

int MeshLayout::group_size(MeshGroup g) const { return static_cast<int>(groups_[idx(g)].front().size()); }

MeshCoord MeshLayout::coord(int rank) const {
  check_rank(rank);
  MeshCoord c;
  c.tp = attn_.index(rank, "tp");
  c.cp = attn_.index(rank, "cp");
  c.dp = attn_.index(rank, "dp");
  c.pp = attn_.index(rank, "pp");
  c.etp = expt_.index(rank, "tp");
  c.ep = expt_.index(rank, "ep");
  c.edp = expt_.index(rank, "dp");
  return c;
}

// ---- Mesh ------------------------------------------------------------------------------------

Mesh::Mesh(const ParallelConfig& cfg, Communicator& world) : Mesh(MeshLayout(cfg, world.size()), world) {}

Mesh::Mesh(MeshLayout layout, Communicator& world)
    : layout_(std::move(layout)), world_(&world), rank_(world.rank()) {
  FOUNDRY_CHECK(world.size() == layout_.world_size(),
                "mesh: the communicator '{}' has {} ranks but the layout was built for {}", world.name(),
                world.size(), layout_.world_size());
  for (MeshGroup g : kAllMeshGroups) {
    const bool member = layout_.is_member(g, rank_);
    // Non-members (middle pipeline stages, embedding groups only) each get a group of their own.
    const int num_groups = static_cast<int>(layout_.groups(g).size());
    const int color = member ? layout_.group_index(g, rank_) : num_groups + rank_;
    const int key = member ? layout_.rank_in_group(g, rank_) : 0;
    auto comm = world.split(color, key, mesh_group_name(g));
    const int want_size = member ? static_cast<int>(layout_.group_ranks(g, rank_).size()) : 1;
    FOUNDRY_CHECK(comm && comm->size() == want_size && comm->rank() == key,
                  "mesh: split of the {} group gave rank {} of {} on world rank {}; the layout says {} of {}",
                  mesh_group_name(g), comm ? comm->rank() : -1, comm ? comm->size() : -1, rank_, key, want_size);
    comms_[static_cast<int>(g)] = std::move(comm);
  }
}

}  // namespace foundry
