#include "foundry/train/model_parallel_checkpoint.h"

#include <cstring>

#include "foundry/train/finalize_grads.h"

namespace foundry {

namespace {
enum Kind : int64_t { kParam = 0, kBuffer = 1 };

// One owned tensor: what it is, where its blocks sit in the full tensor, and its data
// (value, then exp_avg and exp_avg_sq for parameters when the optimizer travels).
struct Item {
  int64_t kind = kParam;
  std::string name;
  ParamSpec spec;  // shape, global_shape, blocks
  Tensor data;     // (numel x 1 or 3) f32
};

std::vector<int64_t> encode(const Item& it) {
  const ParamSpec& s = it.spec;
  std::vector<int64_t> m{it.kind, static_cast<int64_t>(it.name.size()), s.shape.ndim()};
  m.insert(m.end(), s.shape.begin(), s.shape.end());
  m.push_back(s.global_shape.ndim());
  m.insert(m.end(), s.global_shape.begin(), s.global_shape.end());
  m.push_back(static_cast<int64_t>(s.blocks.size()));
  for (const ShardBlock& b : s.blocks) {
    m.insert(m.end(), b.local_offset.begin(), b.local_offset.end());
    m.insert(m.end(), b.global_offset.begin(), b.global_offset.end());
    m.insert(m.end(), b.extent.begin(), b.extent.end());
  }
  return m;
}

Item decode(const std::vector<int64_t>& m, size_t& name_len) {
  Item it;
  size_t at = 0;
  it.kind = m[at++];
  name_len = static_cast<size_t>(m[at++]);
  const int nd = static_cast<int>(m[at++]);
  for (int d = 0; d < nd; ++d) it.spec.shape.push_back(m[at++]);
  const int gnd = static_cast<int>(m[at++]);
  for (int d = 0; d < gnd; ++d) it.spec.global_shape.push_back(m[at++]);
  const int64_t nb = m[at++];
  for (int64_t b = 0; b < nb; ++b) {
    ShardBlock blk;
    for (auto* v : {&blk.local_offset, &blk.global_offset, &blk.extent})
      for (int d = 0; d < nd; ++d) v->push_back(m[at++]);
    it.spec.blocks.push_back(std::move(blk));
  }
  return it;
}

std::vector<Item> owned_items(const GPTModel& model, const AdamW* opt) {
  const ModelParallel& mp = model.parallel();
  const ParamTable& table = model.params();
  std::vector<Item> out;
  for (int i = 0; i < table.size(); ++i) {
    if (!owns_for_grad_norm(model, i)) continue;
    const ParamSpec& s = table.spec(i);
    const int64_t n = s.shape.numel();
    Item it{.kind = kParam, .name = s.name, .spec = s, .data = Tensor::empty({n * (opt ? 3 : 1)})};
    const float* v = table.param(i).value.ptr<float>();
    std::copy(v, v + n, it.data.ptr<float>());
    if (opt) {
      std::copy(opt->exp_avg(i).ptr<float>(), opt->exp_avg(i).ptr<float>() + n, it.data.ptr<float>() + n);
      std::copy(opt->exp_avg_sq(i).ptr<float>(), opt->exp_avg_sq(i).ptr<float>() + n, it.data.ptr<float>() + 2 * n);
    }
    out.push_back(std::move(it));
  }
  const bool buffer_owner = (!mp.dp || mp.dp->rank() == 0) && (!mp.tp || mp.tp->rank() == 0);
  for (int b = 0; buffer_owner && b < table.num_buffers(); ++b) {
    const Tensor& t = table.buffer(b);
    out.push_back({.kind = kBuffer, .name = table.buffer_name(b), .spec = {.shape = t.shape()}, .data = t.clone()});
  }
  return out;
}

void apply(const Item& it, GPTModel& full, AdamW* opt) {
  ParamTable& table = full.params();
  const int64_t n = it.spec.shape.numel();
  if (it.kind == kBuffer) {
    for (int b = 0; b < table.num_buffers(); ++b)
      if (table.buffer_name(b) == it.name) {
        table.buffer(b).copy_from(it.data);
        return;
      }
    FOUNDRY_FAIL("gather_full_model: no buffer '{}' in the full model", it.name);
  }
  const Param& p = table.at(it.name);
  ParamSpec spec = it.spec;
  spec.name = it.name;
  copy_shard_to_full(spec, it.data.view().slice(0, n).reshape(spec.shape), p.value);
  if (opt) {
    copy_shard_to_full(spec, it.data.view().slice(n, 2 * n).reshape(spec.shape), opt->exp_avg(p.index));
    copy_shard_to_full(spec, it.data.view().slice(2 * n, 3 * n).reshape(spec.shape), opt->exp_avg_sq(p.index));
  }
}
}  // namespace

FullModelState gather_full_model(const GPTModel& model, const AdamW* optimizer) {
  Communicator* all = model.parallel().all;
  const int rank = all ? all->rank() : 0, size = all ? all->size() : 1;
  std::vector<Item> mine = owned_items(model, optimizer);
  FullModelState out;
  if (rank != 0) {
    all->send(Tensor::from<int64_t>({1}, std::vector<int64_t>{static_cast<int64_t>(mine.size())}), 0, 901);
    for (const Item& it : mine) {
      const std::vector<int64_t> meta = encode(it);
      all->send(Tensor::from<int64_t>({1}, std::vector<int64_t>{static_cast<int64_t>(meta.size())}), 0, 902);
      all->send(Tensor::from<int64_t>({static_cast<int64_t>(meta.size())}, meta), 0, 903);
      Tensor name = Tensor::empty({static_cast<int64_t>(it.name.size())}, DType::u8);
      std::memcpy(name.data(), it.name.data(), it.name.size());
      all->send(name, 0, 904);
      all->send(it.data, 0, 905);
    }
    return out;
  }
  out.model = std::make_unique<GPTModel>(model.config(), 0);
  if (optimizer) {
    out.optimizer = std::make_unique<AdamW>(out.model->params(), optimizer->config());
    out.optimizer->set_steps(optimizer->steps());
  }
  for (const Item& it : mine) apply(it, *out.model, out.optimizer.get());
  for (int r = 1; r < size; ++r) {
    Tensor count = Tensor::empty({1}, DType::i64);
    all->recv(count, r, 901);
    for (int64_t k = 0; k < count.ptr<int64_t>()[0]; ++k) {
      Tensor len = Tensor::empty({1}, DType::i64);
      all->recv(len, r, 902);
      Tensor meta = Tensor::empty({len.ptr<int64_t>()[0]}, DType::i64);
      all->recv(meta, r, 903);
      size_t name_len = 0;
      Item it = decode(std::vector<int64_t>(meta.ptr<int64_t>(), meta.ptr<int64_t>() + meta.numel()), name_len);
      Tensor name = Tensor::empty({static_cast<int64_t>(name_len)}, DType::u8);
      all->recv(name, r, 904);
      it.name.assign(static_cast<const char*>(name.data()), name_len);
      const int64_t n = it.spec.shape.numel();
      it.data = Tensor::empty({n * (it.kind == kParam && optimizer ? 3 : 1)});
      all->recv(it.data, r, 905);
      apply(it, *out.model, out.optimizer.get());
    }
  }
  return out;
}

}  // namespace foundry
