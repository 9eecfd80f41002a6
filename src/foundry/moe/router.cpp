#include "foundry/moe/router.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "foundry/ops/elementwise.h"
#include "foundry/ops/gemm.h"

namespace foundry {

using moe::ScoreFunction;

namespace {
// counts (E) and the valid token count summed over `group` (null or size 1: unchanged); one f32
// all-reduce (the counts are integers, exact below 2^24).
void reduce_counts(Communicator* group, std::vector<double>& counts, double& tokens) {
  if (!group || group->size() == 1) return;
  const size_t E = counts.size();
  Tensor buf = Tensor::empty({static_cast<int64_t>(E) + 1});
  float* b = buf.ptr<float>();
  for (size_t e = 0; e < E; ++e) b[e] = static_cast<float>(counts[e]);
  b[E] = static_cast<float>(tokens);
  group->all_reduce(buf);
  for (size_t e = 0; e < E; ++e) counts[e] = b[e];
  tokens = b[E];
}
}  // namespace

void RouterConfig::validate() const {
  FOUNDRY_CHECK(hidden > 0 && num_experts > 0, "Router: hidden {} and num_experts {} must be positive", hidden,
                num_experts);
  FOUNDRY_CHECK(topk >= 1 && topk <= num_experts, "Router: topk {} must be in [1, num_experts = {}]", topk,
                num_experts);
  const ScoreFunction fn = moe::parse_score_function(score_function);
  FOUNDRY_CHECK(!(fn == ScoreFunction::softmax && !pre_softmax && topk == 1),
                "Router: softmax after top-k with topk 1 gives probability 1 (set pre_softmax)");
  FOUNDRY_CHECK(!(pre_softmax && fn != ScoreFunction::softmax), "Router: pre_softmax needs score_function softmax, got {}",
                score_function);
  FOUNDRY_CHECK((num_groups == 0) == (group_topk == 0), "Router: num_groups {} and group_topk {} must both be set",
                num_groups, group_topk);
  if (num_groups > 0) {
    FOUNDRY_CHECK(num_experts % num_groups == 0, "Router: num_experts {} not divisible by num_groups {}", num_experts,
                  num_groups);
    FOUNDRY_CHECK(group_topk <= num_groups, "Router: group_topk {} > num_groups {}", group_topk, num_groups);
    FOUNDRY_CHECK(topk % group_topk == 0 && topk / group_topk <= num_experts / num_groups,
                  "Router: topk {} must be a multiple of group_topk {} with topk/group_topk <= experts per group {}",
                  topk, group_topk, num_experts / num_groups);
  }
  FOUNDRY_CHECK(topk_scaling_factor >= 0.f, "Router: topk_scaling_factor {} < 0", topk_scaling_factor);
  FOUNDRY_CHECK(!enable_expert_bias || fn != ScoreFunction::softmax,
                "Router: enable_expert_bias needs score_function sigmoid or sqrtsoftplus, got {}", score_function);
  FOUNDRY_CHECK(aux_loss_coeff.size() == 1 || aux_loss_coeff.size() == load_balancing_type.size(),
                "Router: {} aux_loss_coeff values for {} load_balancing_type entries", aux_loss_coeff.size(),
                load_balancing_type.size());
  for (const std::string& t : load_balancing_type)
    FOUNDRY_CHECK(t == "aux_loss" || t == "seq_aux_loss" || t == "global_aux_loss" || t == "none",
                  "Router: load_balancing_type '{}' (expected aux_loss, seq_aux_loss, global_aux_loss or none)", t);
  for (const std::string& t : load_balancing_type)
    FOUNDRY_CHECK(t != "seq_aux_loss" || !tp_cp || tp_cp->size() == 1,
                  "Router: seq_aux_loss with a tp_cp group of size {} ('{}') is not implemented", tp_cp ? tp_cp->size() : 1,
                  tp_cp ? tp_cp->name() : "");
  FOUNDRY_CHECK(z_loss_coeff >= 0.f, "Router: z_loss_coeff {} < 0", z_loss_coeff);
  FOUNDRY_CHECK(input_jitter_eps >= 0.f && input_jitter_eps < 1.f, "Router: input_jitter_eps {} must be in [0, 1)",
                input_jitter_eps);
  FOUNDRY_CHECK(capacity_factor >= 0.f, "Router: capacity_factor {} < 0", capacity_factor);
  FOUNDRY_CHECK(drop_policy == "probs" || drop_policy == "position",
                "Router: drop_policy '{}' (expected probs or position)", drop_policy);
  FOUNDRY_CHECK(!pad_to_capacity || capacity_factor > 0.f, "Router: pad_to_capacity needs a capacity_factor");
}

Router::Router(RouterConfig c) : cfg(std::move(c)) {
  cfg.validate();
  expert_bias = Tensor::zeros({cfg.num_experts});
  local_tokens_per_expert = Tensor::zeros({cfg.num_experts});
  global_tokens_per_expert.assign(static_cast<size_t>(cfg.num_experts), 0.0);
}

void Router::register_params(ParamTable& table, const std::string& name) {
  // Under sequence parallelism (tp_cp given) each rank's gradient covers its tokens only: summed over tp.
  table.add(weight, {.name = name + ".weight", .shape = {cfg.num_experts, cfg.hidden}, .init = cfg.init,
                     .tp_grad_sum = cfg.tp_cp != nullptr && cfg.tp_cp->size() > 1});
  if (cfg.enable_expert_bias) table.add_buffer(name + ".expert_bias", expert_bias);  // saved in checkpoints
}

Tensor router_jitter_noise(Philox& rng, int64_t tokens, int64_t hidden, float eps) {
  FOUNDRY_CHECK(tokens >= 0 && hidden > 0 && eps >= 0.f && eps < 1.f,
                "router_jitter_noise: (T, H) = ({}, {}), input_jitter_eps {} (expected eps in [0, 1))", tokens,
                hidden, eps);
  Tensor noise = Tensor::empty({tokens, hidden});
  rng.uniform_(noise, 1.f - eps, 1.f + eps);
  return noise;
}

int64_t Router::capacity(int64_t tokens) const {
  return static_cast<int64_t>(std::ceil(static_cast<double>(tokens * cfg.topk) / static_cast<double>(cfg.num_experts) *
                                        static_cast<double>(cfg.capacity_factor)));
}

Router::Output Router::forward(Context& ctx, const Tensor& x, Saved& s, int64_t seq_length,
                               const Tensor& padding_mask) {
  const int64_t E = cfg.num_experts, H = cfg.hidden, k = cfg.topk;
  FOUNDRY_CHECK(x.ndim() == 2 && x.size(1) == H && x.dtype() == DType::f32,
                "Router: input {} (expected f32 (T, {}))", x.str(), H);
  FOUNDRY_CHECK(weight.defined(), "Router: parameters not registered/allocated");
  const int64_t T = x.size(0);
  const ScoreFunction fn = moe::parse_score_function(cfg.score_function);
  const uint8_t* pad = nullptr;
  if (padding_mask.defined()) {
    check_shape("Router", "padding_mask", padding_mask, {T});
    check_dtype("Router", "padding_mask", padding_mask, DType::u8);
    pad = padding_mask.ptr<uint8_t>();
  }

  // Input jitter (training only): x_j = x * noise, kept with the noise for backward.
  s.x = x;
  s.jitter = Tensor();
  if (ctx.training && cfg.input_jitter_eps > 0.f) {
    s.jitter = router_jitter_noise(ctx.rng, T, H, cfg.input_jitter_eps);
    s.x = Tensor::empty({T, H});
    const float* xi = x.ptr<float>();
    const float* ni = s.jitter.ptr<float>();
    float* xo = s.x.ptr<float>();
    for (int64_t i = 0; i < T * H; ++i) xo[i] = xi[i] * ni[i];
  }

  Tensor logits32 = Tensor::empty({T, E});
  gemm({.a = s.x, .b = weight.value, .c = logits32, .trans_b = true});
  s.logits.assign(logits32.ptr<float>(), logits32.ptr<float>() + T * E);
  s.idx.assign(static_cast<size_t>(T * k), 0);
  s.kept.assign(static_cast<size_t>(T * k), 1);
  s.dlogits_aux.assign(static_cast<size_t>(T * E), 0.0);

  // Top-k routing.
  std::vector<double> probs(static_cast<size_t>(T * E), 0.0);
  std::vector<uint8_t> map(static_cast<size_t>(T * E), 0);
  const float* bias = expert_bias.ptr<float>();
  std::vector<double> score(static_cast<size_t>(E)), sel(static_cast<size_t>(E)), p(static_cast<size_t>(k));
  const int64_t G = cfg.num_groups, Eg = G > 0 ? E / G : E;
  std::vector<double> group_score(static_cast<size_t>(std::max<int64_t>(G, 1)));
  std::vector<int64_t> tmp(static_cast<size_t>(E)), groups(static_cast<size_t>(std::max<int64_t>(G, 1)));
  std::vector<uint8_t> allowed(static_cast<size_t>(E));
  for (int64_t t = 0; t < T; ++t) {
    const double* z = s.logits.data() + t * E;
    int64_t* idx = s.idx.data() + t * k;
    if (fn == ScoreFunction::softmax) {
      if (cfg.pre_softmax) moe::softmax_row(z, E, score.data());
      else std::copy(z, z + E, score.begin());
      sel = score;  // softmax: top-k on the (pre-softmax probabilities or) logits
    } else {
      for (int64_t e = 0; e < E; ++e) {
        score[e] = moe::score_value(fn, z[e]);
        sel[e] = cfg.enable_expert_bias ? score[e] + static_cast<double>(bias[e]) : score[e];
      }
    }
    if (G > 0) {  // group_limited_topk: group score = sum of its top (k / group_topk) selection scores
      const int64_t per = k / cfg.group_topk;
      for (int64_t g = 0; g < G; ++g) {
        moe::topk_indices(sel.data() + g * Eg, Eg, per, tmp.data());
        group_score[g] = 0;
        for (int64_t j = 0; j < per; ++j) group_score[g] += sel[g * Eg + tmp[j]];
      }
      moe::topk_indices(group_score.data(), G, cfg.group_topk, groups.data());
      std::fill(allowed.begin(), allowed.end(), 0);
      for (int64_t j = 0; j < cfg.group_topk; ++j)
        std::fill(allowed.begin() + groups[j] * Eg, allowed.begin() + (groups[j] + 1) * Eg, 1);
      moe::topk_indices(sel.data(), E, k, idx, allowed.data());
    } else {
      moe::topk_indices(sel.data(), E, k, idx);
    }
    if (fn == ScoreFunction::softmax && !cfg.pre_softmax) {
      std::vector<double> v(static_cast<size_t>(k));
      for (int64_t j = 0; j < k; ++j) v[j] = z[idx[j]];
      moe::softmax_row(v.data(), k, p.data());
    } else {
      double sum = 0;
      for (int64_t j = 0; j < k; ++j) sum += p[j] = score[idx[j]];
      if (fn != ScoreFunction::softmax && k > 1)
        for (int64_t j = 0; j < k; ++j) p[j] /= sum + 1e-20;
    }
    const double scale = cfg.topk_scaling_factor != 0.f ? static_cast<double>(cfg.topk_scaling_factor) : 1.0;
    for (int64_t j = 0; j < k; ++j) {
      probs[static_cast<size_t>(t * E + idx[j])] = p[j] * scale;
      map[static_cast<size_t>(t * E + idx[j])] = 1;
    }
  }

  // Capacity: keep[t, e] per expert, then map = keep (padding) or map & keep; probs *= map.
  if (cfg.capacity_factor > 0.f) {
    const int64_t C = capacity(T);
    std::vector<uint8_t> keep(static_cast<size_t>(T * E), 0);
    if (C >= T) {
      std::fill(keep.begin(), keep.end(), 1);
    } else {
      std::vector<double> key(static_cast<size_t>(T));
      std::vector<int64_t> order(static_cast<size_t>(T));
      for (int64_t e = 0; e < E; ++e) {
        for (int64_t t = 0; t < T; ++t)
          key[t] = cfg.drop_policy == "probs" ? probs[static_cast<size_t>(t * E + e)]
                                              : static_cast<double>(map[static_cast<size_t>(t * E + e)]) * (T + 1) +
                                                    static_cast<double>(T - t);
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return key[a] > key[b]; });
        for (int64_t j = 0; j < C; ++j) keep[static_cast<size_t>(order[j] * E + e)] = 1;
      }
    }
    for (int64_t t = 0; t < T; ++t)
      for (int64_t j = 0; j < k; ++j) s.kept[static_cast<size_t>(t * k + j)] = keep[static_cast<size_t>(t * E + s.idx[t * k + j])];
    for (size_t i = 0; i < keep.size(); ++i) {
      map[i] = cfg.pad_to_capacity ? keep[i] : static_cast<uint8_t>(map[i] & keep[i]);
      if (!map[i] || !keep[i]) probs[i] = 0.0;
    }
  }

  Output out;
  out.probs = Tensor::empty({T, E});
  out.routing_map = Tensor::empty({T, E}, DType::u8);
  out.tokens_per_expert = Tensor::zeros({E}, DType::i64);
  float* po = out.probs.ptr<float>();
  uint8_t* mo = out.routing_map.ptr<uint8_t>();
  int64_t* n = out.tokens_per_expert.ptr<int64_t>();
  for (int64_t i = 0; i < T * E; ++i) {
    po[i] = static_cast<float>(probs[static_cast<size_t>(i)]);
    mo[i] = map[static_cast<size_t>(i)];
    n[i % E] += map[static_cast<size_t>(i)];
  }

  if (ctx.training) {
    if (cfg.enable_expert_bias) {
      float* c = local_tokens_per_expert.ptr<float>();
      for (int64_t t = 0; t < T; ++t)
        if (!pad || !pad[t])
          for (int64_t e = 0; e < E; ++e) c[e] += static_cast<float>(mo[t * E + e]);
    }
    bool any_lb = false;
    for (const std::string& t : cfg.load_balancing_type) any_lb |= t != "none";
    if (any_lb) {
      const moe::AuxScores a = moe::aux_scores(s.logits.data(), T, E, k, fn, pad);
      std::vector<double> ds(static_cast<size_t>(T * E), 0.0);
      for (size_t i = 0; i < cfg.load_balancing_type.size(); ++i) {
        const std::string& type = cfg.load_balancing_type[i];
        const double coeff = cfg.aux_loss_coeff.size() == 1 ? cfg.aux_loss_coeff[0] : cfg.aux_loss_coeff[i];
        if (type == "aux_loss") {  // n and T over tp_cp
          std::vector<double> n = a.counts;
          double tokens = static_cast<double>(a.valid_tokens);
          reduce_counts(cfg.tp_cp, n, tokens);
          out.aux_loss += moe::switch_load_balancing_loss(a, coeff, n, tokens, ds.data());
        } else if (type == "seq_aux_loss") {
          const int64_t S = seq_length > 0 ? seq_length : T;
          FOUNDRY_CHECK(T % S == 0, "Router: seq_aux_loss: {} tokens are not whole sequences of seq_length {}", T, S);
          out.aux_loss += moe::seq_aux_loss(a, coeff, S, ds.data());
        } else if (type == "global_aux_loss") {  // this forward's n and T over tp_dp_cp
          std::vector<double> n = a.counts;
          double tokens = static_cast<double>(a.valid_tokens);
          reduce_counts(cfg.tp_dp_cp, n, tokens);
          for (int64_t e = 0; e < E; ++e) global_tokens_per_expert[e] += n[e];
          ++global_aux_steps;
          std::vector<double> avg(static_cast<size_t>(E));
          for (int64_t e = 0; e < E; ++e) avg[e] = global_tokens_per_expert[e] / static_cast<double>(global_aux_steps);
          out.aux_loss += moe::switch_load_balancing_loss(a, coeff, avg, tokens, ds.data());
        }
      }
      moe::aux_scores_backward(s.logits.data(), a, ds.data(), s.dlogits_aux.data());
    }
    if (cfg.z_loss_coeff > 0.f) {  // Megatron: moe_z_loss_coeff / tp_cp size
      const double z_coeff = static_cast<double>(cfg.z_loss_coeff) / (cfg.tp_cp ? cfg.tp_cp->size() : 1);
      out.z_loss = moe::z_loss(s.logits.data(), T, E, z_coeff, s.dlogits_aux.data(), pad);
    }
  }
  return out;
}

Tensor Router::backward(Context& ctx, const Tensor& dprobs, const Saved& s, float aux_grad_scale,
                        const Tensor& dx_accumulate) {
  const int64_t E = cfg.num_experts, H = cfg.hidden, k = cfg.topk;
  FOUNDRY_CHECK(s.x.defined(), "Router::backward: no saved forward");
  const int64_t T = s.x.size(0);
  check_shape("Router::backward", "dprobs", dprobs, {T, E});
  check_dtype("Router::backward", "dprobs", dprobs, DType::f32);
  if (dx_accumulate.defined()) {
    check_shape("Router::backward", "dx_accumulate", dx_accumulate, {T, H});
    check_dtype("Router::backward", "dx_accumulate", dx_accumulate, DType::f32);
  }
  const ScoreFunction fn = moe::parse_score_function(cfg.score_function);
  const float* gp = dprobs.ptr<float>();
  const double scale = cfg.topk_scaling_factor != 0.f ? static_cast<double>(cfg.topk_scaling_factor) : 1.0;

  Tensor dlogits = Tensor::empty({T, E});
  float* dl = dlogits.ptr<float>();
  std::vector<double> dz(static_cast<size_t>(E)), g(static_cast<size_t>(k)), q(static_cast<size_t>(k)),
      sm(static_cast<size_t>(E)), p(static_cast<size_t>(k));
  for (int64_t t = 0; t < T; ++t) {
    const double* z = s.logits.data() + t * E;
    const int64_t* idx = s.idx.data() + t * k;
    for (int64_t e = 0; e < E; ++e) dz[e] = static_cast<double>(aux_grad_scale) * s.dlogits_aux[t * E + e];
    for (int64_t j = 0; j < k; ++j)
      g[j] = s.kept[t * k + j] ? static_cast<double>(gp[t * E + idx[j]]) * scale : 0.0;
    if (fn == ScoreFunction::softmax && !cfg.pre_softmax) {  // p = softmax(z[idx])
      for (int64_t j = 0; j < k; ++j) q[j] = z[idx[j]];
      moe::softmax_row(q.data(), k, p.data());
      double gp_sum = 0;
      for (int64_t j = 0; j < k; ++j) gp_sum += g[j] * p[j];
      for (int64_t j = 0; j < k; ++j) dz[idx[j]] += p[j] * (g[j] - gp_sum);
    } else if (fn == ScoreFunction::softmax) {  // p = softmax(z)[idx]
      moe::softmax_row(z, E, sm.data());
      double gs = 0;
      for (int64_t j = 0; j < k; ++j) gs += g[j] * sm[idx[j]];
      for (int64_t e = 0; e < E; ++e) dz[e] -= sm[e] * gs;
      for (int64_t j = 0; j < k; ++j) dz[idx[j]] += sm[idx[j]] * g[j];
    } else {  // p = q / (sum q + 1e-20) (k > 1), q = f(z[idx])
      double sum = 0;
      for (int64_t j = 0; j < k; ++j) sum += q[j] = moe::score_value(fn, z[idx[j]]);
      const double D = sum + 1e-20;
      double gq = 0;
      for (int64_t j = 0; j < k; ++j) gq += g[j] * q[j];
      for (int64_t j = 0; j < k; ++j) {
        const double dq = k > 1 ? g[j] / D - gq / (D * D) : g[j];
        dz[idx[j]] += dq * moe::score_derivative(fn, z[idx[j]], q[j]);
      }
    }
    for (int64_t e = 0; e < E; ++e) dl[t * E + e] = static_cast<float>(dz[e]);
  }
  Tensor dx;
  if (dx_accumulate.defined() && !s.jitter.defined()) {
    dx = dx_accumulate;
    gemm({.a = dlogits, .b = weight.value, .c = dx, .beta = 1.f});
  } else {
    dx = Tensor::empty({T, H});
    gemm({.a = dlogits, .b = weight.value, .c = dx});
    if (s.jitter.defined()) {  // d(x * noise)/dx = noise
      float* d = dx.ptr<float>();
      const float* ni = s.jitter.ptr<float>();
      for (int64_t i = 0; i < T * H; ++i) d[i] *= ni[i];
    }
    if (dx_accumulate.defined()) {
      add_backward({.dout = dx, .da = dx_accumulate});
      dx = dx_accumulate;
    }
  }
  gemm({.a = dlogits, .b = s.x, .c = weight.grad, .trans_a = true, .beta = 1.f});
  return dx;
}

void Router::update_expert_bias() {
  if (!cfg.enable_expert_bias) return;
  const int64_t E = cfg.num_experts;
  float* c = local_tokens_per_expert.ptr<float>();
  float* b = expert_bias.ptr<float>();
  float mean = 0;
  for (int64_t e = 0; e < E; ++e) mean += c[e];
  mean /= static_cast<float>(E);
  for (int64_t e = 0; e < E; ++e) {
    const float off = mean - c[e];
    b[e] += cfg.bias_update_rate * static_cast<float>((off > 0) - (off < 0));
    c[e] = 0.f;
  }
}

void Router::reset_global_aux() {
  std::fill(global_tokens_per_expert.begin(), global_tokens_per_expert.end(), 0.0);
  global_aux_steps = 0;
}

}  // namespace foundry
