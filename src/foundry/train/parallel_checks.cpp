// Model vs parallel layout checks (Megatron-Core); see parallel_checks.h.
#include "foundry/train/parallel_checks.h"

#include <algorithm>

#include "foundry/core/check.h"

namespace foundry {

void check_model_parallel(const GPTConfig& m, const MeshLayout& l) {
  const int64_t tp = l.tp(), ep = l.ep(), etp = l.etp(), pp = l.pp(), vpp = l.vpp();
  FOUNDRY_CHECK(m.num_attention_heads % tp == 0,
                "model.num_attention_heads ({}) is not divisible by parallel.tensor_model_parallel_size ({})",
                m.num_attention_heads, tp);
  FOUNDRY_CHECK(m.num_query_groups % tp == 0,
                "model.num_query_groups ({}) is not divisible by parallel.tensor_model_parallel_size ({})",
                m.num_query_groups, tp);
  bool any_dense = false, any_moe = false;
  for (int64_t i = 0; i < m.num_layers; ++i) (m.is_moe_layer(i) ? any_moe : any_dense) = true;
  FOUNDRY_CHECK(!any_dense || m.ffn_hidden_size % tp == 0,
                "model.ffn_hidden_size ({}) is not divisible by parallel.tensor_model_parallel_size ({})",
                m.ffn_hidden_size, tp);
  FOUNDRY_CHECK(ep == 1 || m.num_moe_experts > 0,
                "parallel.expert_model_parallel_size ({}) > 1 needs an MoE model (model.num_moe_experts > 0)", ep);
  FOUNDRY_CHECK(m.num_moe_experts % ep == 0,
                "model.num_moe_experts ({}) is not divisible by parallel.expert_model_parallel_size ({})",
                m.num_moe_experts, ep);
  if (any_moe) {
    FOUNDRY_CHECK(m.moe_ffn_hidden_size % etp == 0,
                  "model.moe_ffn_hidden_size ({}) is not divisible by parallel.expert_tensor_parallel_size ({}; "
                  "0 in the recipe means tensor_model_parallel_size)", m.moe_ffn_hidden_size, etp);
    FOUNDRY_CHECK(m.moe_shared_expert_intermediate_size % tp == 0,
                  "model.moe_shared_expert_intermediate_size ({}) is not divisible by "
                  "parallel.tensor_model_parallel_size ({})", m.moe_shared_expert_intermediate_size, tp);
    FOUNDRY_CHECK(!(ep > 1 && tp > 1) || l.sequence_parallel(),
                  "parallel.expert_model_parallel_size ({}) and parallel.tensor_model_parallel_size ({}) are "
                  "both > 1, which needs parallel.sequence_parallel=true (Megatron)", ep, tp);
  }
  pipeline_stage_layers(m.num_layers, static_cast<int>(pp), static_cast<int>(std::max<int64_t>(vpp, 1)),
                        l.config().decoder_first_pipeline_num_layers, l.config().decoder_last_pipeline_num_layers);
}

void check_sequence_parallel(int64_t seq_length, const MeshLayout& l) {
  const int64_t cp = l.cp(), tp = l.tp();
  FOUNDRY_CHECK(cp == 1 || seq_length % (2 * cp) == 0,
                "train.seq_length ({}) is not divisible by 2 x parallel.context_parallel_size ({}) = {} "
                "(load-balanced context-parallel chunks)", seq_length, cp, 2 * cp);
  FOUNDRY_CHECK(!l.sequence_parallel() || (seq_length / cp) % tp == 0,
                "train.seq_length ({}) / parallel.context_parallel_size ({}) is not divisible by "
                "parallel.tensor_model_parallel_size ({}) with parallel.sequence_parallel=true",
                seq_length, cp, tp);
}

int64_t padded_vocab_size(int64_t vocab_size, int64_t make_vocab_size_divisible_by, int64_t tp) {
  FOUNDRY_CHECK(vocab_size >= 1 && make_vocab_size_divisible_by >= 1 && tp >= 1,
                "padded_vocab_size: vocab {}, make_vocab_size_divisible_by {}, tp {}", vocab_size,
                make_vocab_size_divisible_by, tp);
  const int64_t multiple = make_vocab_size_divisible_by * tp;
  return (vocab_size + multiple - 1) / multiple * multiple;
}

void check_parallelism_implemented(const MeshLayout& layout) {
  FOUNDRY_CHECK(layout.cp() <= 1, "parallel.context_parallel_size = {}: not implemented yet (leave it at 1)",
                layout.cp());
}

}  // namespace foundry

namespace foundry {

ModelParallel model_parallel_of(const Mesh& mesh, const std::string& moe_token_dispatcher_type) {
  const MeshLayout& layout = mesh.layout();
  ModelParallel mp;
  mp.tp = &mesh.tp();
  mp.sequence_parallel = layout.sequence_parallel();
  mp.ep = &mesh.ep();
  mp.etp = &mesh.expt_tp();
  mp.moe_token_dispatcher_type = moe_token_dispatcher_type;
  mp.pp_rank = mesh.pp().rank();
  mp.pp_size = mesh.pp().size();
  mp.virtual_stages = std::max(layout.vpp(), 1);
  mp.first_stage_layers = layout.config().decoder_first_pipeline_num_layers;
  mp.last_stage_layers = layout.config().decoder_last_pipeline_num_layers;
  mp.dp = &mesh.dp_cp();
  mp.expt_dp = &mesh.expt_dp();
  mp.tp_dp_cp = &mesh.tp_dp_cp();
  mp.pp = &mesh.pp();
  mp.all = &mesh.world();
  mp.embd = mesh.in_embedding_group() ? &mesh.embd() : nullptr;
  return mp;
}

}  // namespace foundry
