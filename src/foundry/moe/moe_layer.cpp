#include "foundry/moe/moe_layer.h"

#include "foundry/moe/allgather_dispatcher.h"
#include "foundry/moe/alltoall_dispatcher.h"
#include "foundry/ops/elementwise.h"
#include "foundry/ops/moe_rows.h"

namespace foundry {

namespace {

int64_t ep_size(const MoELayer::Config& c) { return c.ep ? c.ep->size() : 1; }
int64_t etp_size(const MoELayer::Config& c) { return c.etp ? c.etp->size() : 1; }

std::unique_ptr<TokenDispatcher> make_dispatcher(const MoELayer::Config& c) {
  FOUNDRY_CHECK(c.token_dispatcher_type == "alltoall" || c.token_dispatcher_type == "allgather",
                "MoELayer: moe_token_dispatcher_type '{}' is not one of alltoall, allgather", c.token_dispatcher_type);
  if (ep_size(c) > 1 && c.token_dispatcher_type == "allgather")
    return std::make_unique<AllGatherTokenDispatcher>(*c.ep, c.router.num_experts);
  if (ep_size(c) > 1) return std::make_unique<AllToAllTokenDispatcher>(*c.ep, c.router.num_experts);
  return std::make_unique<LocalTokenDispatcher>();
}

int64_t local_experts(const MoELayer::Config& c) {
  FOUNDRY_CHECK(c.router.num_experts % ep_size(c) == 0,
                "MoELayer: num_moe_experts {} must be divisible by the expert-parallel size {}", c.router.num_experts,
                ep_size(c));
  return c.router.num_experts / ep_size(c);
}

int64_t local_ffn(const MoELayer::Config& c) {
  FOUNDRY_CHECK(c.moe_ffn_hidden_size % etp_size(c) == 0,
                "MoELayer: moe_ffn_hidden_size {} must be divisible by the expert-tensor-parallel ('{}') size {}",
                c.moe_ffn_hidden_size, c.etp ? c.etp->name() : "etp", etp_size(c));
  return c.moe_ffn_hidden_size / etp_size(c);
}

}  // namespace

MoELayer::MoELayer(Config c)
    : cfg(c),
      router(c.router),
      experts({.hidden = c.router.hidden, .ffn = local_ffn(c), .num_experts = local_experts(c),
               .compute = c.compute, .init_std = c.init_std, .output_init_std = c.output_init_std,
               .ep_rank = c.ep ? c.ep->rank() : 0, .ep_size = static_cast<int>(ep_size(c)),
               .etp_rank = c.etp ? c.etp->rank() : 0, .etp_size = static_cast<int>(etp_size(c))}),
      dispatcher(make_dispatcher(c)) {
  if (etp_size(c) > 1) etp.emplace(*c.etp, local_experts(c));
  if (c.shared_expert_ffn > 0)
    shared_experts.emplace(SharedExperts::Config{.hidden = c.router.hidden, .ffn = c.shared_expert_ffn,
                                                 .gate = c.shared_expert_gate, .compute = c.compute,
                                                 .init_std = c.init_std,
                                                 .output_init_std = c.output_init_std});
  FOUNDRY_CHECK(c.shared_expert_ffn > 0 || !c.shared_expert_gate,
                "MoELayer: moe_shared_expert_gate needs moe_shared_expert_intermediate_size > 0");
}

void MoELayer::register_params(ParamTable& table, const std::string& name) {
  router.register_params(table, name + ".router");
  experts.register_params(table, name + ".experts");
  if (shared_experts) shared_experts->register_params(table, name + ".shared_experts");
}

Tensor MoELayer::forward(Context& ctx, const Tensor& x, int64_t seq_length, Saved& s) {
  s.routing = router.forward(ctx, x, s.router, seq_length);
  Dispatched d = dispatcher->dispatch(ctx, x, s.routing.routing_map, s.routing.probs);
  s.handle = d.handle;
  Tensor rows;
  if (etp) {  // every row of the etp group through this rank's F/Q slice, partial outputs summed back
    s.etp = etp->plan(ctx, d.handle.tokens_per_expert);
    const Tensor x_all = etp->gather(ctx, d.rows, s.etp);  // (N_etp, H)
    const Tensor p_all = etp->gather(ctx, d.probs.reshape({d.probs.numel(), 1}), s.etp);
    const Tensor y_all = experts.forward(ctx, x_all, p_all.reshape({p_all.numel()}), s.etp.tokens_per_expert,
                                         s.experts);
    rows = etp->scatter(ctx, y_all, s.etp);  // (N, H)
  } else {
    rows = experts.forward(ctx, d.rows, d.probs, d.handle.tokens_per_expert, s.experts);
  }
  Tensor y = dispatcher->combine(ctx, rows, s.handle);  // (T, H)
  if (shared_experts) add_forward({.a = y, .b = shared_experts->forward(ctx, x, s.shared), .out = y});
  return y;
}

Tensor MoELayer::forward(Context& ctx, const Tensor& x, const SequenceLayout& seq, State& s) {
  int64_t seq_length = 0;  // 0: the router treats all rows as one sequence
  if (!seq.cu_seqlens.defined()) {
    seq_length = x.size(0) / seq.batch;
  } else if (ctx.training) {  // the losses are computed in training forwards only
    for (const std::string& type : cfg.router.load_balancing_type)
      FOUNDRY_CHECK(type != "seq_aux_loss",
                    "MoELayer: seq_aux_loss needs equal-length sequences; packed sequences are not supported");
  }
  return forward(ctx, x, seq_length, static_cast<Saved&>(s));
}

Tensor MoELayer::backward(Context& ctx, const Tensor& dy, const Saved& s, float aux_grad_scale) {
  const Tensor d_rows = dispatcher->combine_backward(ctx, dy, s.handle);  // (N, H)
  GroupedExperts::Grads g;
  if (etp) {  // the adjoint of gather -> experts -> scatter
    g = experts.backward(ctx, etp->gather(ctx, d_rows, s.etp), s.experts);
    g.dx = etp->scatter(ctx, g.dx, s.etp);  // (N, H): sum over etp of the slices' input gradients
    g.dprobs = etp->scatter(ctx, g.dprobs.reshape({g.dprobs.numel(), 1}), s.etp);
    g.dprobs = g.dprobs.reshape({g.dprobs.numel()});
  } else {
    g = experts.backward(ctx, d_rows, s.experts);
  }
  Tensor dx = dispatcher->dispatch_backward(ctx, g.dx, s.handle);  // (T, H)
  const Tensor dprobs = dispatcher->probs_backward(ctx, g.dprobs, s.handle);  // (T, E)
  router.backward(ctx, dprobs, s.router, aux_grad_scale, dx);  // dx += the router's input gradient
  if (shared_experts) add_backward({.dout = shared_experts->backward(ctx, dy, s.shared), .da = dx});
  return dx;
}

}  // namespace foundry
