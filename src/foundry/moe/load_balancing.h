// Megatron-Core's MoE load-balancing and z losses (megatron/core/transformer/moe/moe_utils.py:
// compute_routing_scores_for_aux_loss, switch_load_balancing_loss_func,
// get_tokens_per_expert_and_token_count, z_loss_func; router.py _apply_{aux,seq_aux,global_aux}_loss,
// padding_mask included); a rank's part of a group loss through switch_load_balancing_loss with the
// group's counts (Router's tp_cp / tp_dp_cp). Formulas in shared/reference/megatron_moe.md
// §2.4-2.5. Each loss returns its value and, when `grad` is given, adds its gradient (w.r.t. the aux
// scores or the logits) into it. Everything is f64.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace foundry::moe {

enum class ScoreFunction { softmax, sigmoid, sqrtsoftplus };
ScoreFunction parse_score_function(const std::string& name);  // throws naming the valid ones

// f(z) for sigmoid / sqrtsoftplus (softmax is row-wise, see softmax_row) and df/dz.
double score_value(ScoreFunction fn, double z);
double score_derivative(ScoreFunction fn, double z, double f);
void softmax_row(const double* z, int64_t n, double* out);

// Top-k of v[0..n) (descending, ties to the lower index); `allowed` (n bytes) may exclude entries.
void topk_indices(const double* v, int64_t n, int64_t k, int64_t* out, const uint8_t* allowed = nullptr);

// Scores the aux losses use and their plain top-k map (no groups, bias or capacity):
// softmax: s = softmax(logits); sigmoid/sqrtsoftplus: s = f(logits) / (sum_e f(logits) + 1e-20).
// With `padding` (T bytes, 1 = padding token) the padding rows of s and map are zero.
struct AuxScores {
  int64_t tokens = 0, experts = 0, topk = 0;
  int64_t valid_tokens = 0;     // tokens that are not padding
  ScoreFunction fn = ScoreFunction::softmax;
  std::vector<double> s;        // (T, E)
  std::vector<uint8_t> map;     // (T, E) plain top-k of s
  std::vector<double> counts;   // (E) map.sum(0)
  std::vector<uint8_t> padding; // (T) 1 = padding token; empty when none
};
AuxScores aux_scores(const double* logits, int64_t tokens, int64_t experts, int64_t topk, ScoreFunction fn,
                     const uint8_t* padding = nullptr);
// dlogits += ds (T, E) pulled back through the aux score function.
void aux_scores_backward(const double* logits, const AuxScores& a, const double* ds, double* dlogits);

// switch_load_balancing_loss_func: coeff * E / (k * T^2) * sum_e (sum_t s[t,e]) * n[e].
// Padding rows have s = 0 and no counts; the token count T is get_tokens_per_expert_and_token_count's:
// map.sum() / k = valid tokens (all tokens without padding). Each loss is 0 when no token is valid
// (Megatron divides by zero there).
// switch_load_balancing_loss_func itself, with the counts n (E) and the token count T given (the
// group's, for a rank holding part of the tokens: Router's tp_cp / tp_dp_cp); 0 when T is 0.
double switch_load_balancing_loss(const AuxScores& a, double coeff, const std::vector<double>& n,
                                  double total_tokens, double* ds);
// aux_loss:        n = counts, T = valid tokens.
double aux_loss(const AuxScores& a, double coeff, double* ds);
// seq_aux_loss: tokens are B sequences of seq_length (batch-major, t = b * S + s); each sequence's
// loss uses its own counts and T = valid tokens / B (= S without padding; with padding the mean
// valid length, the same T for every sequence, as Megatron's (S, B*E) reshape with topk = k * B
// gives); the result is the mean over the B sequences (fully padded ones included).
double seq_aux_loss(const AuxScores& a, double coeff, int64_t seq_length, double* ds);
// global_aux_loss: n = running mean of counts over the micro-batches of this global batch
// (`avg_counts`, the caller accumulates the padding-free counts), T = this micro-batch's valid tokens.
double global_aux_loss(const AuxScores& a, double coeff, const std::vector<double>& avg_counts, double* ds);

// z_loss_func: coeff * mean over valid t of logsumexp_e(logits[t,:])^2 (padding rows excluded,
// divided by max(valid, 1)); dlogits += its gradient.
double z_loss(const double* logits, int64_t tokens, int64_t experts, double coeff, double* dlogits,
              const uint8_t* padding = nullptr);

}  // namespace foundry::moe
