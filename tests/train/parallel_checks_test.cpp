// Tests of train/parallel_checks: every model-vs-layout rule names its model.* / parallel.* keys.
#include "foundry/train/parallel_checks.h"

#include <gtest/gtest.h>

#include "foundry/core/check.h"

namespace foundry {
namespace {

std::string error_of(const GPTConfig& m, const ParallelConfig& p, int world) {
  try {
    check_model_parallel(resolve_gpt_config(m), MeshLayout(p, world));
  } catch (const Error& e) {
    return e.message();
  }
  return "(no error)";
}

void expect_error(const GPTConfig& m, const ParallelConfig& p, int world, std::initializer_list<const char*> parts) {
  const std::string msg = error_of(m, p, world);
  for (const char* s : parts) EXPECT_NE(msg.find(s), std::string::npos) << "'" << s << "' not in: " << msg;
}

GPTConfig moe() {
  GPTConfig m;
  m.num_layers = 4;
  m.num_attention_heads = 4;
  m.hidden_size = 64;
  m.num_moe_experts = 8;
  m.moe_ffn_hidden_size = 32;
  return m;
}

TEST(ParallelChecks, ValidLayoutsPass) {
  EXPECT_EQ(error_of(moe(), {}, 1), "(no error)");
  EXPECT_EQ(error_of(moe(), {.tensor_model_parallel_size = 2, .expert_model_parallel_size = 2, .sequence_parallel = true}, 8),
            "(no error)");
  EXPECT_EQ(error_of(moe(), {.expert_model_parallel_size = 8, .pipeline_model_parallel_size = 2,
                             .virtual_pipeline_model_parallel_size = 2}, 16), "(no error)");
  GPTConfig dense;  // defaults: 2 layers, 4 heads, ffn 256
  EXPECT_EQ(error_of(dense, {.tensor_model_parallel_size = 4}, 4), "(no error)");
}

TEST(ParallelChecks, Errors) {
  GPTConfig m = moe();
  m.num_attention_heads = 6;
  m.hidden_size = 48;
  expect_error(m, {.tensor_model_parallel_size = 4}, 4,
               {"model.num_attention_heads (6)", "parallel.tensor_model_parallel_size (4)"});
  m = moe();
  m.num_query_groups = 2;
  expect_error(m, {.tensor_model_parallel_size = 4}, 4, {"model.num_query_groups (2)", "tensor_model_parallel_size (4)"});
  expect_error(moe(), {.expert_model_parallel_size = 3}, 3,
               {"model.num_moe_experts (8)", "parallel.expert_model_parallel_size (3)"});
  expect_error(GPTConfig{}, {.expert_model_parallel_size = 2}, 2,
               {"parallel.expert_model_parallel_size (2) > 1 needs an MoE model"});
  m = moe();
  m.moe_ffn_hidden_size = 30;
  expect_error(m, {.tensor_model_parallel_size = 4, .sequence_parallel = true}, 4,
               {"model.moe_ffn_hidden_size (30)", "parallel.expert_tensor_parallel_size (4"});
  m = moe();
  m.moe_shared_expert_intermediate_size = 30;
  expect_error(m, {.tensor_model_parallel_size = 4, .expert_tensor_parallel_size = 1}, 4,
               {"model.moe_shared_expert_intermediate_size (30)", "tensor_model_parallel_size (4)"});
  m = moe();
  m.moe_layer_freq = 2;  // layers 1 and 3 dense
  m.ffn_hidden_size = 90;
  expect_error(m, {.tensor_model_parallel_size = 4, .expert_tensor_parallel_size = 1}, 4,
               {"model.ffn_hidden_size (90)", "tensor_model_parallel_size (4)"});
  expect_error(moe(), {.tensor_model_parallel_size = 2, .expert_model_parallel_size = 2}, 4,
               {"parallel.sequence_parallel=true", "expert_model_parallel_size (2)", "tensor_model_parallel_size (2)"});
  expect_error(moe(), {.pipeline_model_parallel_size = 3}, 3,
               {"model.num_layers (4)", "pipeline_model_parallel_size (3)", "decoder_first/last_pipeline_num_layers"});
  expect_error(moe(), {.pipeline_model_parallel_size = 2, .virtual_pipeline_model_parallel_size = 4}, 2,
               {"model.num_layers (4)", "virtual_pipeline_model_parallel_size (4)"});
  // Uneven stages: 4 layers over 3 stages with 2 on the first; 1 + 1 left for the other two.
  EXPECT_EQ(error_of(moe(), {.pipeline_model_parallel_size = 3, .decoder_first_pipeline_num_layers = 2}, 3),
            "(no error)");
  expect_error(moe(), {.pipeline_model_parallel_size = 3, .decoder_last_pipeline_num_layers = 1}, 3,
               {"model.num_layers (4)", "leaves 3 layers", "2 pipeline stages"});
  expect_error(moe(), {.pipeline_model_parallel_size = 2, .virtual_pipeline_model_parallel_size = 2,
                       .decoder_first_pipeline_num_layers = 1}, 2, {"virtual pipeline stages are not supported yet"});
}

TEST(ParallelChecks, UnevenPipelineStages) {  // Megatron's get_num_layers_to_build
  EXPECT_EQ(pipeline_stage_layers(8, 4, 1), (std::vector<int64_t>{2, 2, 2, 2}));
  EXPECT_EQ(pipeline_stage_layers(8, 2, 2), (std::vector<int64_t>{2, 2, 2, 2}));
  EXPECT_EQ(pipeline_stage_layers(7, 3, 1, 1), (std::vector<int64_t>{1, 3, 3}));
  EXPECT_EQ(pipeline_stage_layers(7, 3, 1, 0, 3), (std::vector<int64_t>{2, 2, 3}));
  EXPECT_EQ(pipeline_stage_layers(10, 4, 1, 1, 3), (std::vector<int64_t>{1, 3, 3, 3}));
  EXPECT_EQ(pipeline_stage_layers(4, 2, 1, 1, 3), (std::vector<int64_t>{1, 3}));
  EXPECT_THROW(pipeline_stage_layers(5, 2, 1, 1, 3), Error);
}

TEST(ParallelChecks, SequenceLength) {
  const MeshLayout cp2({.context_parallel_size = 2}, 2);
  check_sequence_parallel(64, cp2);
  try {
    check_sequence_parallel(66, cp2);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("train.seq_length (66)"), std::string::npos) << e.message();
    EXPECT_NE(e.message().find("context_parallel_size (2) = 4"), std::string::npos) << e.message();
  }
  const MeshLayout sp({.tensor_model_parallel_size = 4, .context_parallel_size = 2, .sequence_parallel = true}, 8);
  check_sequence_parallel(32, sp);
  try {
    check_sequence_parallel(36, sp);  // 36 / 2 = 18, not divisible by 4
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("parallel.sequence_parallel=true"), std::string::npos) << e.message();
  }
  // TP 1: sequence_parallel has no effect (Megatron turns it off).
  check_sequence_parallel(7, MeshLayout({.sequence_parallel = true}, 1));
}

TEST(ParallelChecks, PaddedVocabSize) {
  EXPECT_EQ(padded_vocab_size(50257, 128, 1), 50304);  // GPT-2 under Megatron
  EXPECT_EQ(padded_vocab_size(50257, 128, 2), 50432);
  EXPECT_EQ(padded_vocab_size(256, 128, 2), 256);
  EXPECT_EQ(padded_vocab_size(257, 1, 4), 260);
}

}  // namespace
}  // namespace foundry
