// The parallel Mesh: every rank group of Megatron-Core's parallel_state.initialize_model_parallel,
// with Parallel Folding (separate attention and expert rank generators over one world).
// Source: megatron/core/parallel_state.py (RankGenerator, generate_masked_orthogonal_rank_groups,
// initialize_model_parallel, default_embedding_ranks); shared/reference/megatron_moe.md §3.
//
// Sizes (the `parallel:` keys; TP = tensor_model_parallel_size, CP = context_parallel_size,
// PP = pipeline_model_parallel_size, EP = expert_model_parallel_size, ETP =
// expert_tensor_parallel_size, 0 meaning TP as in Megatron):
//   DP  = world / (TP * CP * PP)            attention data parallel
//   EDP = world / (ETP * EP * PP)           expert data parallel
// Two rank generators, both over the order string (default "tp-cp-ep-dp-pp", first = fastest):
//   attention  sizes {tp: TP, cp: CP, ep: 1,  dp: DP,  pp: PP}
//   experts    sizes {tp: ETP, cp: 1, ep: EP, dp: EDP, pp: PP}
// A rank's coordinate: rank = sum_i idx_i * stride_i, stride_i = product of the sizes before dim i
// (so idx_i = (rank / stride_i) % size_i). A group of token "a-b" varies the dims a and b and fixes
// the others; group g's members are listed in increasing rank order, which is also the order of
// their position in the group (Megatron's get_ranks; the dims a, b are enumerated fastest first).
// Group kinds (Megatron's token, generator; what uses it: megatron_moe.md §3):
//   tp      "tp"        attn   column/row-parallel linears, shared experts
//   cp      "cp"        attn   context-parallel attention
//   dp      "dp"        attn   data parallel without CP
//   dp_cp   "dp-cp"     attn   gradient reduction / distributed optimizer (DP with CP)
//   tp_cp   "tp-cp"     attn   router aux / z-loss statistics
//   tp_dp_cp "tp-dp-cp" attn   global aux loss, expert-bias counts, fp8 amax
//   tp_dp   "tp-dp"     attn   fp8 amax without CP
//   pp      "pp"        attn   pipeline send/recv (identical in the expert generator: checked)
//   mp      "tp-pp"     attn   model parallel (grad-norm reduction)
//   embd    first and last rank of each pp group (one rank when PP = 1): tied embeddings
//   pos_embd            first rank of each pp group
//   ep      "ep"        expert token dispatch all-to-all
//   expt_tp "tp"        expert expert-tensor-parallel GEMM shards
//   expt_dp "dp"        expert expert gradient reduction / dist-opt shard (EDP)
//   tp_ep   "tp-ep"     expert allgather dispatcher, per-expert count gathering (ETP * EP)
//   tp_ep_pp "tp-ep-pp" expert  expert model-parallel domain (Megatron groups dist-opt instances by it)
// Checks (Megatron's asserts; errors name the parallel.* key and the numbers): sizes >= 1; world
// divisible by TP*CP*PP and by ETP*EP*PP; the order string a '-' list of distinct tokens among
// tp, cp, ep, dp, pp that names every dim of size > 1 (missing size-1 dims are appended); when the
// order does not end in "pp" and PP > 1, EDP == DP; the two generators' pp groups equal;
// virtual_pipeline_model_parallel_size > 0 needs PP > 1.
// sequence_parallel is Megatron's flag; with TP = 1 it has no effect (Megatron's arguments.py turns
// it off with a warning), so MeshLayout::sequence_parallel() is cfg.sequence_parallel && TP > 1.
// Model-vs-layout checks (heads % TP, E % EP, layers % PP*VPP, ...) live in train/parallel_checks.h
// (comm/ is below models/ and must not see GPTConfig).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "foundry/comm/communicator.h"

namespace foundry {

struct ParallelConfig {  // the `parallel:` section; names as Megatron's arguments
  int64_t tensor_model_parallel_size = 1;
  int64_t context_parallel_size = 1;
  int64_t expert_model_parallel_size = 1;
  int64_t expert_tensor_parallel_size = 0;           // 0: tensor_model_parallel_size
  int64_t pipeline_model_parallel_size = 1;
  int64_t virtual_pipeline_model_parallel_size = 0;  // 0: no interleaving
  // Uneven pipeline stages (Megatron's --decoder-first/last-pipeline-num-layers): the first / last
  // stage's layer count, the other stages share the rest evenly. 0: even split.
  int64_t decoder_first_pipeline_num_layers = 0;
  int64_t decoder_last_pipeline_num_layers = 0;
  bool sequence_parallel = false;
  std::string order = "tp-cp-ep-dp-pp";
};

enum class MeshGroup {
  tp, cp, dp, dp_cp, tp_cp, tp_dp_cp, tp_dp, pp, mp, embd, pos_embd,  // attention generator
  ep, expt_tp, expt_dp, tp_ep, tp_ep_pp,                            // expert generator
};
inline constexpr int kNumMeshGroups = 16;
inline constexpr std::array<MeshGroup, kNumMeshGroups> kAllMeshGroups = {
    MeshGroup::tp,    MeshGroup::cp,       MeshGroup::dp,      MeshGroup::dp_cp,
    MeshGroup::tp_cp, MeshGroup::tp_dp_cp, MeshGroup::tp_dp,   MeshGroup::pp,
    MeshGroup::mp,    MeshGroup::embd,     MeshGroup::pos_embd, MeshGroup::ep,
    MeshGroup::expt_tp, MeshGroup::expt_dp, MeshGroup::tp_ep,  MeshGroup::tp_ep_pp};
const char* mesh_group_name(MeshGroup g);  // "tp", "dp_cp", "expt_dp", ... (the communicator names)

// A rank's position along every dim (Megatron's get_*_rank()).
struct MeshCoord {
  int tp = 0, cp = 0, dp = 0, pp = 0;  // attention generator
  int etp = 0, ep = 0, edp = 0;        // expert generator (its pp equals pp)
};

// Megatron's generate_masked_orthogonal_rank_groups: `sizes` ordered fastest first; the groups vary
// the dims where mask is true. Returns world / prod(masked sizes) groups, group g fixing the
// unmasked dims at decompose(g, unmasked sizes), members in increasing rank order.
std::vector<std::vector<int>> masked_orthogonal_rank_groups(const std::vector<int>& sizes,
                                                           const std::vector<bool>& mask);

// Megatron's RankGenerator: dims in the order string (size-1 dims missing from it appended).
class RankGenerator {
 public:
  RankGenerator() = default;  // an empty generator (world 1, no dims)
  // `which` names the generator in errors ("attention" / "expert").
  RankGenerator(int tp, int ep, int dp, int pp, int cp, const std::string& order, const char* which);
  int world_size() const { return world_size_; }
  const std::vector<std::string>& dims() const { return dims_; }  // e.g. {tp, cp, ep, dp, pp}
  const std::vector<int>& sizes() const { return sizes_; }
  // token "tp", "tp-dp-cp", ... (dims in any order) -> every group of that kind.
  std::vector<std::vector<int>> get_ranks(const std::string& token) const;
  int index(int rank, const std::string& dim) const;  // rank's coordinate along dim

 private:
  std::vector<std::string> dims_;
  std::vector<int> sizes_;
  int world_size_ = 1;
};

// Pure topology: no communication. Every group of every kind, for any rank.
class MeshLayout {
 public:
  MeshLayout(const ParallelConfig& cfg, int world_size);

  int world_size() const { return world_; }
  int tp() const { return tp_; }
  int cp() const { return cp_; }
  int dp() const { return dp_; }
  int pp() const { return pp_; }
  int vpp() const { return vpp_; }  // 0: no interleaving
  int ep() const { return ep_; }
  int etp() const { return etp_; }
  int edp() const { return edp_; }
  bool sequence_parallel() const { return sequence_parallel_; }  // cfg flag and TP > 1
  const std::string& order() const { return order_; }
  const ParallelConfig& config() const { return cfg_; }
  const RankGenerator& attention() const { return attn_; }
  const RankGenerator& expert() const { return expt_; }

  // Every group of kind g (Megatron's order of creation), members in increasing rank order.
  const std::vector<std::vector<int>>& groups(MeshGroup g) const { return groups_[idx(g)]; }
  // Whether `rank` is in a group of kind g (false only for embd / pos_embd on middle pp stages).
  bool is_member(MeshGroup g, int rank) const { return where_[idx(g)][check_rank(rank)].group >= 0; }
  int group_index(MeshGroup g, int rank) const;  // index into groups(g); throws if not a member
  int rank_in_group(MeshGroup g, int rank) const;  // position in its group; throws if not a member
  const std::vector<int>& group_ranks(MeshGroup g, int rank) const;
  int group_size(MeshGroup g) const;  // size of every group of kind g (embd: 1 or 2)
  MeshCoord coord(int rank) const;

 private:
  struct Where { int group = -1, pos = -1; };
  static int idx(MeshGroup g) { return static_cast<int>(g); }
  int check_rank(int rank) const;

  ParallelConfig cfg_;
  int world_, tp_, cp_, dp_, pp_, vpp_, ep_, etp_, edp_;
  bool sequence_parallel_;
  std::string order_;
  RankGenerator attn_, expt_;
  std::array<std::vector<std::vector<int>>, kNumMeshGroups> groups_;
  std::array<std::vector<Where>, kNumMeshGroups> where_;  // [kind][rank]
};

// A MeshLayout bound to a world communicator: one split per group kind (every rank of `world`
// calls them in kAllMeshGroups order; color = the group's index, key = the rank's position in
// it), owning the resulting communicators. A rank outside every embd / pos_embd group (a middle
// pipeline stage) gets a group of its own there (a unique color), so embd() always exists; ask
// in_embedding_group() before using it. `world` must outlive the Mesh.
class Mesh {
 public:
  Mesh(const ParallelConfig& cfg, Communicator& world);
  Mesh(MeshLayout layout, Communicator& world);

  const MeshLayout& layout() const { return layout_; }
  int rank() const { return rank_; }  // in the world
  MeshCoord coord() const { return layout_.coord(rank_); }
  Communicator& world() const { return *world_; }
  Communicator& group(MeshGroup g) const { return *comms_[static_cast<int>(g)]; }

  Communicator& tp() const { return group(MeshGroup::tp); }
  Communicator& cp() const { return group(MeshGroup::cp); }
  Communicator& dp() const { return group(MeshGroup::dp); }
  Communicator& dp_cp() const { return group(MeshGroup::dp_cp); }
  Communicator& tp_cp() const { return group(MeshGroup::tp_cp); }
  Communicator& tp_dp_cp() const { return group(MeshGroup::tp_dp_cp); }
  Communicator& tp_dp() const { return group(MeshGroup::tp_dp); }
  Communicator& pp() const { return group(MeshGroup::pp); }
  Communicator& mp() const { return group(MeshGroup::mp); }
  Communicator& embd() const { return group(MeshGroup::embd); }
  Communicator& pos_embd() const { return group(MeshGroup::pos_embd); }
  Communicator& ep() const { return group(MeshGroup::ep); }
  Communicator& expt_tp() const { return group(MeshGroup::expt_tp); }
  Communicator& expt_dp() const { return group(MeshGroup::expt_dp); }
  Communicator& tp_ep() const { return group(MeshGroup::tp_ep); }
  Communicator& tp_ep_pp() const { return group(MeshGroup::tp_ep_pp); }
  bool in_embedding_group() const { return layout_.is_member(MeshGroup::embd, rank_); }
  bool in_position_embedding_group() const { return layout_.is_member(MeshGroup::pos_embd, rank_); }

 private:
  MeshLayout layout_;
  Communicator* world_;
  int rank_;
  std::array<std::unique_ptr<Communicator>, kNumMeshGroups> comms_;
};

}  // namespace foundry
