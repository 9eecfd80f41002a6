// Model vs parallel layout: the divisibility rules Megatron-Core asserts when it builds a model on
// a mesh (TransformerConfig.__post_init__, MoELayer, ColumnParallelLinear / RowParallelLinear,
// megatron/training/arguments.py). Lives in train/ because comm/ (the Mesh) is below models/.
//   model.num_attention_heads    % TP == 0    (heads split over the tp group)
//   model.num_query_groups       % TP == 0    (GQA KV heads split over the tp group)
//   model.ffn_hidden_size        % TP == 0    (dense MLP, column/row parallel; only if a layer is dense)
//   model.moe_shared_expert_intermediate_size % TP == 0 (shared experts run on the attention tp group)
//   model.num_moe_experts        % EP == 0    (E / EP local experts per rank)
//   model.moe_ffn_hidden_size    % ETP == 0   (expert GEMMs split over the expt_tp group)
//   model.num_layers % (PP * max(VPP, 1)) == 0 (Megatron's even split over pipeline stages and virtual
//                                               chunks), or with decoder_first/last_pipeline_num_layers
//                                               the rest divisible by the other stages
//                                               (models/gpt pipeline_stage_layers)
//   MoE with EP > 1 and TP > 1 needs parallel.sequence_parallel (Megatron's TransformerConfig)
//   train.seq_length % (2 * CP) == 0 when CP > 1 (load-balanced context-parallel chunks), and
//   (seq_length / CP) % TP == 0 with sequence parallelism.
// The vocabulary need not divide by TP: the vocab-parallel embedding pads it (padded_vocab_size).
#pragma once

#include <cstdint>

#include "foundry/comm/mesh.h"
#include "foundry/models/gpt/gpt_model.h"

namespace foundry {

// Throws foundry::Error naming the model.* / parallel.* keys and their values. `model` resolved
// (resolve_gpt_config).
void check_model_parallel(const GPTConfig& model, const MeshLayout& layout);
// Throws foundry::Error naming train.seq_length and the parallel.* keys.
void check_sequence_parallel(int64_t seq_length, const MeshLayout& layout);

// What foundry trains today: data, tensor (+ sequence), expert (+ expert tensor) and pipeline
// (+ virtual stages) parallelism; context parallelism is refused naming parallel.context_parallel_size.
void check_parallelism_implemented(const MeshLayout& layout);

// Megatron's _vocab_size_with_padding: the vocabulary rounded up to a multiple of
// make_vocab_size_divisible_by * TP (Megatron's default make_vocab_size_divisible_by is 128).
int64_t padded_vocab_size(int64_t vocab_size, int64_t make_vocab_size_divisible_by, int64_t tp);

}  // namespace foundry

namespace foundry {

// The model's view of a mesh (GPTModel's ModelParallel): its tp / ep / etp / pp groups, the
// pipeline rank and chunks, and the reduction groups of a training step. The mesh outlives it.
// moe_token_dispatcher_type "": the model config's.
ModelParallel model_parallel_of(const Mesh& mesh, const std::string& moe_token_dispatcher_type = "");

}  // namespace foundry
