#include "foundry/train/finalize_grads.h"

#include <cmath>

#include "foundry/ops/optim.h"

namespace foundry {

namespace {
int rank_in(const Communicator* c) { return c ? c->rank() : 0; }
bool split_over(const ParamSpec& s, const std::string& group) {
  // shard_group: "tp", "ep", "etp", "ep_etp", ...
  const std::string& g = s.shard_group;
  for (size_t at = g.find(group); at != std::string::npos; at = g.find(group, at + 1)) {
    const bool starts = at == 0 || g[at - 1] == '_';
    const bool ends = at + group.size() == g.size() || g[at + group.size()] == '_';
    if (starts && ends) return true;
  }
  return false;
}
}  // namespace

bool counts_in_sharded_grad_norm(const GPTModel& model, int i) {
  const ModelParallel& mp = model.parallel();
  const ParamSpec& s = model.params().spec(i);
  if (model.holds_shared_embedding_copy() && i == model.shared_embedding_param()) return false;  // counted once
  if (s.expert_local) return split_over(s, "etp") || rank_in(mp.etp) == 0;
  return split_over(s, "tp") || rank_in(mp.tp) == 0;
}

bool owns_for_grad_norm(const GPTModel& model, int i) {
  const ModelParallel& mp = model.parallel();
  Communicator* dp = model.params().spec(i).expert_local && mp.expt_dp ? mp.expt_dp : mp.dp;
  return rank_in(dp) == 0 && counts_in_sharded_grad_norm(model, i);
}

void sum_model_parallel_grads(GPTModel& model) {
  const ModelParallel& mp = model.parallel();
  ParamTable& table = model.params();
  // 1. tp_grad_sum parameters: packed, one all-reduce over tp.
  if (mp.tp_size() > 1) {
    std::vector<int> sum;
    int64_t n = 0;
    for (int i = 0; i < table.size(); ++i)
      if (table.spec(i).tp_grad_sum) sum.push_back(i), n += table.spec(i).shape.numel();
    if (n > 0) {
      Tensor packed = Tensor::empty({n});
      int64_t at = 0;
      for (int i : sum) {
        const Tensor& g = table.param(i).grad;
        std::copy(g.ptr<float>(), g.ptr<float>() + g.numel(), packed.ptr<float>() + at);
        at += g.numel();
      }
      mp.tp->all_reduce(packed);
      at = 0;
      for (int i : sum) {
        const Tensor& g = table.param(i).grad;
        std::copy(packed.ptr<float>() + at, packed.ptr<float>() + at + g.numel(), g.ptr<float>());
        at += g.numel();
      }
    }
  }
  // Tied embeddings over pipeline stages: the first and last stage sum the shared weight's gradient.
  if (model.shared_embedding_param() >= 0 && mp.embd && mp.embd->size() > 1)
    mp.embd->all_reduce(table.param(model.shared_embedding_param()).grad);
}

GradClip finalize_model_grads(GPTModel& model, double max_norm, bool data_parallel_reduced) {
  const ModelParallel& mp = model.parallel();
  ParamTable& table = model.params();
  sum_model_parallel_grads(model);
  // 2. data-parallel sums: dense over dp, experts over expt_dp.
  const TensorView dense = table.grad_buffer(ParamTable::Kind::dense);
  const TensorView expert = table.grad_buffer(ParamTable::Kind::expert);
  Communicator* edp = mp.expt_dp ? mp.expt_dp : mp.dp;
  if (!data_parallel_reduced && mp.dp && mp.dp->size() > 1 && dense.numel() > 0) mp.dp->all_reduce(dense);
  if (!data_parallel_reduced && edp && edp->size() > 1 && expert.numel() > 0) edp->all_reduce(expert);
  // 3. the global norm, each element once.
  std::vector<TensorView> owned;
  for (int i = 0; i < table.size(); ++i)
    if (owns_for_grad_norm(model, i)) owned.push_back(table.param(i).grad.view());
  const double local = owned.empty() ? 0.0 : global_grad_norm(owned);
  double sq = local * local;
  if (mp.all && mp.all->size() > 1) sq = mp.all->all_reduce_sum(sq);
  GradClip c;
  c.norm = std::sqrt(sq);
  c.coefficient = max_norm > 0 ? clip_coefficient(c.norm, max_norm) : 1.f;
  return c;
}

}  // namespace foundry
