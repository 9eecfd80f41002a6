// foundry bench comm RECIPE [overrides] [--steps N]: the bytes each collective moves per training
// step of the recipe's parallel layout (run it under mpirun), counted by a CountingCommunicator
// around the world (and, through its split, around every Mesh group), next to the analytic
// formula for the layout. Payload bytes per step and rank as counted (comm/counting_communicator.h:
// all_reduce / broadcast / send / recv the tensor, reduce_scatter(_v) the input, all_gather(_v) the
// output, all_to_all_v what this rank sends); all_reduce_sum of a double is an all_gather of 8
// bytes per rank of its group (n = the group's size below).
//
// Data parallelism only (TP = EP = ETP = PP = 1), one group ("world"), per collective:
//   replicated (DDP):  all_reduce  = the gradient buffer, 4 x sum over parameters of numel
//                      (each rounded up to 64 bytes: the arena layout), once per step
//   ZeRO-1:            reduce_scatter = all_gather = 4 x DP x S, S = the shard (the arena padded
//                      to a multiple of DP, 16-element aligned), once per step each
//   scalars:           all_reduce_sum: valid tokens, loss, tokens, per MoE layer its aux and z loss
//                      (ZeRO-1: the gradient norm's sum of squares too); per MoE layer an i64
//                      all_reduce of E + 2 routing counts, and with the expert bias an f32 all_reduce
//                      of E counts
//
// Model parallelism (the Mesh of parallel.*, GPTModel(cfg, seed, model_parallel_of(mesh)),
// train_step with the replicated AdamW): per (group, collective). Notation: H hidden, E experts,
// k top-k, T = micro_batch_size x seq_length tokens per microbatch, M microbatches per rank
// (global / DP), TP / EP / ETP / PP / VPP / DP / EDP the layout, Tl = T / TP with sequence
// parallelism (SP) else T (the tokens a rank's layers and routers see), L this rank's decoder
// layers (num_layers / PP), D of them dense, Lm = L - D MoE; f = the first stage holds the
// embedding (0/1), l = the last stage holds the output layer and loss (0/1). Per step:
//   tp (TP > 1), per microbatch x M (nn/parallel_attention.cpp, parallel_mlp.cpp -> parallel_linear.cpp,
//   vocab_parallel.cpp; the MoE layers' experts and shared experts see the rank's own Tl tokens):
//     SP:     all_gather = reduce_scatter = (2 L + 2 D + f + l) calls of 4 T H bytes: around attention
//             (forward input all-gather, output reduce-scatter; backward the same), around the dense
//             MLP (fc1 / fc2), the embedding (forward reduce-scatter, backward all-gather) and the
//             output layer (forward all-gather, backward reduce-scatter)
//     no SP:  all_reduce (2 L + 2 D + f + l) calls of 4 T H bytes (attention / MLP output forward,
//             input gradient backward; embedding forward, output layer backward)
//     l:      vocab-parallel cross-entropy: all_reduce of the row max (4 T) and of [sum exp; target
//             logit] (8 T): 2 calls, 12 T bytes
//     SP, Lm: the router's aux_loss counts over tp_cp (= tp here): all_reduce 4 (E + 1) per MoE layer
//     once per step (train/finalize_grads.cpp): all_reduce of the tp_grad_sum parameters, 4 x
//             (SP: 2 H per layer + H final norm (l) + E H router + 3 H Fs (+ H gate) shared experts
//             per MoE layer; both: 2 x head_dim per layer with qk_layernorm)
//   ep (EP > 1), per MoE layer, per microbatch x M (moe/alltoall_dispatcher.cpp, allgather_dispatcher.cpp):
//     alltoall:  all_to_all_v 7 calls: the E i64 counts (8 E) and, N = the rows this rank sends,
//                rows (4 N H) and probs (4 N) forward, rows back (4 N H); backward rows (2 x 4 N H)
//                and probs (4 N): 8 E + 16 N H + 8 N. With model.moe_expert_capacity_factor and
//                model.moe_pad_expert_input_to_capacity every expert gets exactly C = min(ceil(Tl k / E
//                x cf), Tl) rows from every rank (moe/router.cpp): N = E C (the payload includes the
//                rank's own E/EP x C rows; bus bytes count the (E - E/EP) C rows sent to others).
//                Dropless: N depends on the routing, analytic null.
//     allgather: all_gather 5 calls (forward: 8 EP counts, x 4 EP Tl H, routing map EP Tl E u8,
//                probs 4 EP Tl E; backward: the output gradient 4 EP Tl H) and reduce_scatter 3 calls
//                (combine 4 EP Tl H; backward: x 4 EP Tl H, probs 4 EP Tl E): independent of the routing
//   expt_tp (ETP > 1), per MoE layer, per microbatch x M (moe/expert_tensor_parallel.cpp), El = E / EP,
//     n_q rows on etp rank q: El x EP x C with padding to capacity, Tl k dropless without EP
//     (every selection is a row), else routing-dependent (null); N = sum_q n_q (ETP n when equal):
//     all_gather 1 call of 8 ETP El (counts); all_gather_v 3 calls, reduce_scatter_v 3 calls (per
//     rank counts n_q, no padding), each 2 x 4 N H + 4 N (rows and probs forward / row gradients
//     and dx, dprobs backward)
//   tp_dp_cp (size g > 1), per MoE layer: the step's routing statistics (train_step.cpp): all_reduce
//     8 (E + 2) and 2 all_gathers of 8 g; with the expert bias an all_reduce of 4 E; with
//     global_aux_loss an all_reduce of 4 (E + 1) per microbatch
//   pp (PP > 1), per step (train/pipeline_schedule.cpp): send = recv = M x (chunks whose global
//     stage is not the last + chunks whose stage is not the first) messages of 4 Tl H bytes (the
//     activation forward, its gradient backward, per stage boundary; interleaved: per chunk
//     boundary); all_gather 8 PP (the last stage's loss on every stage)
//   embd (tied embeddings, PP > 1, first and last stage): all_reduce of the word embedding's
//     gradient, 4 (V / TP) H
//   dp_cp: all_gather 8 DP (valid tokens); DP > 1: 2 more (loss, tokens) and all_reduce of the dense
//     gradients = ParamTable::grad_buffer(dense) (4 x numel of this rank's dense shards, each
//     rounded up to 16 elements)
//   expt_dp (EDP > 1): all_reduce of grad_buffer(expert)
//   world (> 1 rank): all_gather 8 x ranks (the gradient norm's sum of squares)
// Groups with no formula entry must not be used. Prints one JSON line on rank 0 with, per group and
// collective: calls, payload and ring bus bytes per step and rank, the analytic calls and bytes
// (bytes null where the routing decides them) and whether they agree; matches_analytic is true
// only when every entry with a formula agrees on every rank (a rank that disagrees prints its own
// line on stderr). Per rank: rank 0's numbers are printed (pipeline stages differ).
#include <algorithm>
#include <cmath>
#include <set>

#include <nlohmann/json.hpp>

#include "foundry/cli/commands.h"
#include "foundry/cli/recipe_args.h"
#include "foundry/comm/counting_communicator.h"
#include "foundry/comm/mesh.h"
#include "foundry/train/parallel_checks.h"
#include "foundry/train/synthetic_data.h"
#include "foundry/train/train_step.h"

namespace foundry::cli {

namespace {

// Data parallelism only: the world's collectives (the output of the first version of this command).
void run_data_parallel(const RunConfig& cfg, const std::string& recipe, int steps) {
  const TrainConfig& t = cfg.train;
  CountingCommunicator dp(world());
  const int64_t n = dp.size();
  const int64_t global_mb = t.global_batch_size == 0 ? n : t.global_batch_size / t.micro_batch_size;
  FOUNDRY_CHECK(global_mb % n == 0, "bench comm: train.global_batch_size {} is not a multiple of {} x {} ranks",
                t.global_batch_size, t.micro_batch_size, n);
  GPTModel model(cfg.model, t.seed);
  const AdamW::Config adam{.lr = t.lr, .beta1 = t.adam_beta1, .beta2 = t.adam_beta2, .eps = t.adam_eps,
                           .weight_decay = t.weight_decay};
  std::unique_ptr<AdamW> replicated;
  std::unique_ptr<DistributedAdamW> zero;
  if (t.use_distributed_optimizer) zero = std::make_unique<DistributedAdamW>(model.params(), adam, dp);
  else replicated = std::make_unique<AdamW>(model.params(), adam);
  Context ctx;
  for (int i = 0; i < steps + 1; ++i) {
    if (i == 1) dp.reset();  // the first step is a warm-up (and builds nothing extra)
    std::vector<Batch> mine;
    for (int64_t m = 0; m < global_mb; ++m)
      if (m % n == dp.rank())
        mine.push_back(synthetic_batch(t.micro_batch_size, t.seq_length, cfg.model.vocab_size, t.seed, i * global_mb + m));
    if (zero) train_step(ctx, model, *zero, mine, t.lr, t.clip_grad, dp);
    else train_step(ctx, model, *replicated, mine, t.lr, t.clip_grad, &dp);
  }
  // The analytic bytes per step for this layout.
  std::map<std::string, double> analytic;
  const double grad_bytes = static_cast<double>(model.params().grad_buffer().nbytes());
  if (n > 1) {
    if (zero) {
      analytic["reduce_scatter"] = 4.0 * static_cast<double>(n * zero->shard_size());
      analytic["all_gather"] = 4.0 * static_cast<double>(n * zero->shard_size());
    } else {
      analytic["all_reduce"] = grad_bytes;
    }
    const int64_t E = cfg.model.num_moe_experts;
    const double moe_layers = static_cast<double>(model.moe_layers().size());
    // all_reduce_sum scalars (ZeRO-1 adds the gradient norm's sum of squares).
    analytic["all_gather"] += 8.0 * static_cast<double>(n) * (3 + 2 * moe_layers + (zero ? 1 : 0));
    analytic["all_reduce"] += moe_layers * 8.0 * static_cast<double>(E + 2);
    if (cfg.model.moe_router_enable_expert_bias) analytic["all_reduce"] += moe_layers * 4.0 * static_cast<double>(E);
  }
  nlohmann::json out = {{"recipe", recipe},
                        {"ranks", n},
                        {"optimizer", zero ? "distributed (ZeRO-1)" : "replicated"},
                        {"parameters", model.params().numel()},
                        {"gradient_buffer_bytes", grad_bytes},
                        {"steps", steps}};
  bool all_match = true;
  for (const auto& [name, tally] : dp.tally()) {
    const double per_step = tally.bytes / steps;
    const double expect = analytic.count(name) ? analytic[name] : 0.0;
    const bool match = std::abs(per_step - expect) <= 1e-9 * std::max(1.0, expect);
    all_match = all_match && match;
    out["collectives"][name] = {{"calls_per_step", static_cast<double>(tally.calls) / steps},
                                {"bytes_per_step", per_step},
                                {"bus_bytes_per_step", tally.bus_bytes / steps},
                                {"analytic_bytes_per_step", expect},
                                {"matches", match}};
  }
  for (const auto& [name, bytes] : analytic)
    if (!dp.tally().count(name) && bytes > 0) all_match = false;
  out["matches_analytic"] = all_match;
  if (dp.rank() == 0) std::puts(out.dump().c_str());
}


// The analytic calls and bytes per step of one (group, collective); bytes unknown when the routing
// decides them.
struct Expect {
  double calls = 0, bytes = 0;
  bool bytes_known = true;
};
using Expected = std::map<std::string, std::map<std::string, Expect>>;

void expect(Expected& e, const std::string& group, const std::string& collective, double calls, double bytes) {
  Expect& x = e[group][collective];
  x.calls += calls;
  x.bytes += bytes;
}
void expect_unknown_bytes(Expected& e, const std::string& group, const std::string& collective, double calls) {
  Expect& x = e[group][collective];
  x.calls += calls;
  x.bytes_known = false;
}

bool has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

// The formulas of the file header for this rank of the layout.
Expected model_parallel_formula(const GPTConfig& c, const TrainConfig& t, const Mesh& mesh, const GPTModel& model,
                                int64_t M) {
  const MeshLayout& lay = mesh.layout();
  const double H = static_cast<double>(c.hidden_size), E = static_cast<double>(c.num_moe_experts);
  const double k = static_cast<double>(c.moe_router_topk);
  const int64_t tp = lay.tp(), ep = lay.ep(), etp = lay.etp(), pp = lay.pp();
  const bool sp = lay.sequence_parallel();
  const int64_t T = t.micro_batch_size * t.seq_length, Tl = sp ? T / tp : T;
  const double Tf = static_cast<double>(T), Tlf = static_cast<double>(Tl), Mf = static_cast<double>(M);
  const int64_t L = c.num_layers / pp;
  const double Lm = static_cast<double>(model.moe_layers().size()), D = static_cast<double>(L) - Lm;
  const double f = model.is_first_stage(0) ? 1 : 0, l = model.is_last_stage(model.num_chunks() - 1) ? 1 : 0;
  const bool padded = c.moe_expert_capacity_factor > 0.f && c.moe_pad_expert_input_to_capacity;
  // Rows per expert from each rank with padding to capacity (Router::capacity of the Tl tokens).
  const double C = std::min(std::ceil(Tlf * k / E * static_cast<double>(c.moe_expert_capacity_factor)), Tlf);
  Expected e;
  // tp
  if (tp > 1) {
    const double around = 2 * static_cast<double>(L) + 2 * D + f + l;
    if (sp) {
      expect(e, "tp", "all_gather", Mf * around, Mf * around * 4 * Tf * H);
      expect(e, "tp", "reduce_scatter", Mf * around, Mf * around * 4 * Tf * H);
    } else {
      expect(e, "tp", "all_reduce", Mf * around, Mf * around * 4 * Tf * H);
    }
    if (l > 0) expect(e, "tp", "all_reduce", Mf * 2, Mf * 12 * Tf);
    if (sp && has(c.moe_router_load_balancing_type, "aux_loss"))
      expect(e, "tp", "all_reduce", Mf * Lm, Mf * Lm * 4 * (E + 1));
    const double head_dim = static_cast<double>(c.kv_channels);
    double sum = c.qk_layernorm ? static_cast<double>(L) * 2 * head_dim : 0;
    if (sp) {
      const double Fs = static_cast<double>(c.moe_shared_expert_intermediate_size);
      sum += static_cast<double>(L) * 2 * H + l * H + Lm * (E * H + 3 * H * Fs + (c.moe_shared_expert_gate ? H : 0));
    }
    if (sum > 0) expect(e, "tp", "all_reduce", 1, 4 * sum);
  }
  // ep
  if (ep > 1 && Lm > 0) {
    const double P = static_cast<double>(ep);
    if (c.moe_token_dispatcher_type == "allgather") {
      expect(e, "ep", "all_gather", Mf * Lm * 5, Mf * Lm * (8 * P + 8 * P * Tlf * H + 5 * P * Tlf * E));
      expect(e, "ep", "reduce_scatter", Mf * Lm * 3, Mf * Lm * (8 * P * Tlf * H + 4 * P * Tlf * E));
    } else if (padded) {
      const double N = E * C;
      expect(e, "ep", "all_to_all_v", Mf * Lm * 7, Mf * Lm * (8 * E + 16 * N * H + 8 * N));
    } else {
      expect_unknown_bytes(e, "ep", "all_to_all_v", Mf * Lm * 7);
    }
  }
  // expt_tp
  if (etp > 1 && Lm > 0) {
    const double Q = static_cast<double>(etp), El = E / static_cast<double>(ep);
    expect(e, "expt_tp", "all_gather", Mf * Lm, Mf * Lm * 8 * Q * El);
    // Rows per etp rank: padded, C from each of the EP ranks for each local expert; dropless without
    // EP, every one of the Tl k selections is a row.
    const bool dropless = c.moe_expert_capacity_factor == 0.f;
    if (padded || (dropless && ep == 1)) {
      const double N = Q * (padded ? El * static_cast<double>(ep) * C : Tlf * k);  // rows of the etp group
      expect(e, "expt_tp", "all_gather_v", Mf * Lm * 3, Mf * Lm * (2 * 4 * N * H + 4 * N));
      expect(e, "expt_tp", "reduce_scatter_v", Mf * Lm * 3, Mf * Lm * (2 * 4 * N * H + 4 * N));
    } else {
      expect_unknown_bytes(e, "expt_tp", "all_gather_v", Mf * Lm * 3);
      expect_unknown_bytes(e, "expt_tp", "reduce_scatter_v", Mf * Lm * 3);
    }
  }
  // tp_dp_cp
  const double g = mesh.tp_dp_cp().size();
  if (g > 1 && Lm > 0) {
    expect(e, "tp_dp_cp", "all_reduce", Lm, Lm * 8 * (E + 2));
    expect(e, "tp_dp_cp", "all_gather", 2 * Lm, 2 * Lm * 8 * g);
    if (c.moe_router_enable_expert_bias) expect(e, "tp_dp_cp", "all_reduce", Lm, Lm * 4 * E);
    if (has(c.moe_router_load_balancing_type, "global_aux_loss"))
      expect(e, "tp_dp_cp", "all_reduce", Mf * Lm, Mf * Lm * 4 * (E + 1));
  }
  // pp
  if (pp > 1 || model.num_chunks() > 1) {
    const int S = static_cast<int>(pp) * model.num_chunks();
    double messages = 0;
    for (int v = 0; v < model.num_chunks(); ++v) {
      const int stage = v * static_cast<int>(pp) + mesh.pp().rank();
      messages += (stage < S - 1 ? 1 : 0) + (stage > 0 ? 1 : 0);
    }
    expect(e, "pp", "send", Mf * messages, Mf * messages * 4 * Tlf * H);
    expect(e, "pp", "recv", Mf * messages, Mf * messages * 4 * Tlf * H);
    expect(e, "pp", "all_gather", 1, 8 * static_cast<double>(pp));
  }
  // embd
  if (c.share_embeddings_and_output_weights && pp > 1 && mesh.in_embedding_group())
    expect(e, "embd", "all_reduce", 1, 4 * static_cast<double>(c.vocab_size / tp) * H);
  // dp_cp, expt_dp, world
  const double dp = mesh.dp_cp().size();
  expect(e, "dp_cp", "all_gather", 1, 8 * dp);
  if (dp > 1) {
    expect(e, "dp_cp", "all_gather", 2, 2 * 8 * dp);
    const TensorView dense = model.params().grad_buffer(ParamTable::Kind::dense);
    if (dense.numel() > 0) expect(e, "dp_cp", "all_reduce", 1, static_cast<double>(dense.nbytes()));
  }
  const TensorView expert = model.params().grad_buffer(ParamTable::Kind::expert);
  if (mesh.expt_dp().size() > 1 && expert.numel() > 0)
    expect(e, "expt_dp", "all_reduce", 1, static_cast<double>(expert.nbytes()));
  const double n = mesh.world().size();
  if (n > 1) expect(e, "world", "all_gather", 1, 8 * n);
  return e;
}

// Tensor / sequence / expert / pipeline parallelism: the Mesh over a counting world.
void run_model_parallel(const RunConfig& cfg, const std::string& recipe, const MeshLayout& layout, int steps) {
  const TrainConfig& t = cfg.train;
  FOUNDRY_CHECK(!t.use_distributed_optimizer, "bench comm: train.use_distributed_optimizer (ZeRO-1) is implemented "
                "for data parallelism only, not with tensor / expert / pipeline parallelism (set it to false)");
  const GPTConfig resolved = resolve_gpt_config(cfg.model);
  check_parallelism_implemented(layout);
  check_model_parallel(resolved, layout);
  check_sequence_parallel(t.seq_length, layout);
  CountingCommunicator counting(world());
  const Mesh mesh(layout, counting);
  const int64_t DP = mesh.dp_cp().size(), dp_rank = mesh.dp_cp().rank();
  const int64_t global_mb = t.global_batch_size == 0 ? DP : t.global_batch_size / t.micro_batch_size;
  FOUNDRY_CHECK(global_mb % DP == 0, "bench comm: train.global_batch_size {} is not a multiple of {} x {} "
                "data-parallel ranks", t.global_batch_size, t.micro_batch_size, DP);
  GPTModel model(cfg.model, t.seed, model_parallel_of(mesh));
  AdamW optimizer(model.params(), {.lr = t.lr, .beta1 = t.adam_beta1, .beta2 = t.adam_beta2, .eps = t.adam_eps,
                                   .weight_decay = t.weight_decay});
  Context ctx;
  for (int i = 0; i < steps + 1; ++i) {
    if (i == 1) counting.reset();  // the first step is a warm-up
    std::vector<Batch> mine;
    for (int64_t m = 0; m < global_mb; ++m)
      if (m % DP == dp_rank)
        mine.push_back(synthetic_batch(t.micro_batch_size, t.seq_length, cfg.model.vocab_size, t.seed, i * global_mb + m));
    train_step(ctx, model, optimizer, mine, t.lr, t.clip_grad, nullptr);
  }
  const Expected expected = model_parallel_formula(resolved, t, mesh, model, global_mb / DP);
  nlohmann::json out = {{"recipe", recipe},
                        {"ranks", counting.size()},
                        {"layout", {{"tp", layout.tp()}, {"sequence_parallel", layout.sequence_parallel()},
                                    {"ep", layout.ep()}, {"etp", layout.etp()}, {"pp", layout.pp()},
                                    {"vpp", layout.vpp()}, {"dp", layout.dp()}, {"edp", layout.edp()}}},
                        {"moe_token_dispatcher_type", resolved.moe_token_dispatcher_type},
                        {"padded_to_capacity", resolved.moe_expert_capacity_factor > 0.f &&
                                                   resolved.moe_pad_expert_input_to_capacity},
                        {"rank", counting.rank()},
                        {"rank_parameters", model.params().numel()},
                        {"microbatches_per_rank", global_mb / DP},
                        {"tokens_per_microbatch", t.micro_batch_size * t.seq_length},
                        {"steps", steps}};
  bool match = true;
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& [group, tally] : counting.groups())
    for (const auto& [name, c] : tally) {
      seen.insert({group, name});
      const double calls = static_cast<double>(c.calls) / steps, bytes = c.bytes / steps;
      nlohmann::json j = {{"calls_per_step", calls}, {"bytes_per_step", bytes}, {"bus_bytes_per_step", c.bus_bytes / steps}};
      const auto g = expected.find(group);
      const Expect* x = nullptr;
      if (g != expected.end() && g->second.count(name)) x = &g->second.at(name);
      if (!x) {  // a collective the layout's formula does not have
        j["analytic_calls_per_step"] = 0;
        j["analytic_bytes_per_step"] = 0;
        j["matches"] = false;
        match = false;
      } else {
        const bool ok = std::abs(calls - x->calls) < 1e-9 &&
                        (!x->bytes_known || std::abs(bytes - x->bytes) <= 1e-9 * std::max(1.0, x->bytes));
        j["analytic_calls_per_step"] = x->calls;
        j["analytic_bytes_per_step"] = x->bytes_known ? nlohmann::json(x->bytes) : nlohmann::json(nullptr);
        j["matches"] = ok;
        match = match && ok;
      }
      out["groups"][group][name] = j;
    }
  for (const auto& [group, collectives] : expected)  // formula entries that never ran
    for (const auto& [name, x] : collectives)
      if (!seen.count({group, name}) && (x.calls > 0 || x.bytes > 0)) {
        out["groups"][group][name] = {{"calls_per_step", 0}, {"bytes_per_step", 0}, {"analytic_calls_per_step", x.calls},
                                      {"analytic_bytes_per_step", x.bytes_known ? nlohmann::json(x.bytes) : nlohmann::json(nullptr)},
                                      {"matches", false}};
        match = false;
      }
  // Every rank's verdict (over the uncounted world: the counts are final).
  Communicator& w = world();
  Tensor mine = Tensor::full({1}, match ? 1.f : 0.f), all = Tensor::empty({w.size()});
  w.all_gather(mine, all);
  std::vector<int> bad;
  for (int r = 0; r < w.size(); ++r)
    if (all.ptr<float>()[r] != 1.f) bad.push_back(r);
  out["mismatched_ranks"] = bad;
  out["matches_analytic"] = bad.empty();
  if (!match && w.rank() != 0) std::fprintf(stderr, "bench comm: rank %d disagrees: %s\n", w.rank(), out.dump().c_str());
  if (w.rank() == 0) std::puts(out.dump().c_str());
}

void run_bench_comm(const std::vector<std::string>& args, int steps) {
  FOUNDRY_CHECK(steps > 0, "bench comm: --steps must be > 0");
  std::string recipe;
  const RunConfig cfg = load_recipe(args, &recipe);
  const MeshLayout layout(cfg.parallel, world().size());  // the parallel.* sizes against the world
  const bool splits = layout.tp() > 1 || layout.ep() > 1 || layout.etp() > 1 || layout.pp() > 1 || layout.cp() > 1;
  if (splits) run_model_parallel(cfg, recipe, layout, steps);
  else run_data_parallel(cfg, recipe, steps);
}

}  // namespace

void add_bench_comm_command(CLI::App& bench) {
  auto* cmd = bench.add_subcommand("comm", "Bytes moved per step by each collective vs the layout's formula "
                                           "(run under mpirun); prints one JSON line");
  auto args = std::make_shared<std::vector<std::string>>();
  auto steps = std::make_shared<int>(2);
  cmd->add_option("recipe_and_overrides", *args, "RECIPE.yaml then section.key=value overrides")->required();
  cmd->add_option("--steps", *steps, "Counted steps (after one warm-up step)");
  cmd->callback([args, steps] { run_bench_comm(*args, *steps); });
}

}  // namespace foundry::cli
