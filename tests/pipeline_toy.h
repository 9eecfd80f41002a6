// A toy model for the pipeline-schedule tests (tests/train/pipeline_schedule_test.cpp,
// tests/dist/pipeline_schedule_test.cpp): a chain of S dense stages
//   y_s = tanh(x_s W_s),  x_0 = input(m),  x_{s+1} = y_s,  W_s (H, H) seeded by the global stage s,
//   loss = sum over microbatches m of 0.5 ||y_{S-1} - target(m)||^2,
// microbatch m having rows(m) = 1 + (5 m) % 4 rows (activation shapes differ between microbatches).
// The per-stage math is one function used by both the pipeline chunks and the sequential reference,
// and every stage accumulates its weight gradient over microbatches in increasing m in both, so the
// pipeline must reproduce the reference bit for bit (fp32).
#pragma once

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include "foundry/train/pipeline_schedule.h"
#include "testing.h"

namespace foundry::testing {

constexpr int64_t kToyH = 6;

inline int64_t toy_rows(int m) { return 1 + (5 * m) % 4; }
inline Shape toy_shape(int m) { return {toy_rows(m), kToyH}; }
inline Tensor toy_weight(int s) { return randn({kToyH, kToyH}, 500 + static_cast<uint64_t>(s), 0.6f); }
// `data_seed` lets independent pipeline replicas use different data.
inline Tensor toy_input(int m, int data_seed) { return randn(toy_shape(m), 1000 + 97 * data_seed + m); }
inline Tensor toy_target(int m, int data_seed) { return randn(toy_shape(m), 3000 + 97 * data_seed + m, 0.5f); }

// y = tanh(x W): x (T, H), W (H, H) -> y (T, H).
inline Tensor toy_forward(const Tensor& x, const Tensor& w) {
  const int64_t T = x.size(0), H = kToyH;
  Tensor y = Tensor::empty({T, H});
  const float *xp = x.ptr<float>(), *wp = w.ptr<float>();
  float* yp = y.ptr<float>();
  for (int64_t t = 0; t < T; ++t)
    for (int64_t j = 0; j < H; ++j) {
      float acc = 0;
      for (int64_t i = 0; i < H; ++i) acc += xp[t * H + i] * wp[i * H + j];
      yp[t * H + j] = std::tanh(acc);
    }
  return y;
}

// g = dy (1 - y^2); dW += x^T g (accumulates); returns dx = g W^T.
inline Tensor toy_backward(const Tensor& x, const Tensor& y, const Tensor& w, const Tensor& dy, Tensor& dw) {
  const int64_t T = x.size(0), H = kToyH;
  std::vector<float> g(static_cast<size_t>(T * H));
  for (int64_t k = 0; k < T * H; ++k) g[k] = dy.ptr<float>()[k] * (1 - y.ptr<float>()[k] * y.ptr<float>()[k]);
  const float *xp = x.ptr<float>(), *wp = w.ptr<float>();
  float* dwp = dw.ptr<float>();
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < H; ++i)
      for (int64_t j = 0; j < H; ++j) dwp[i * H + j] += xp[t * H + i] * g[t * H + j];
  Tensor dx = Tensor::empty({T, H});
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < H; ++i) {
      float acc = 0;
      for (int64_t j = 0; j < H; ++j) acc += g[t * H + j] * wp[i * H + j];
      dx.ptr<float>()[t * H + i] = acc;
    }
  return dx;
}

// 0.5 ||y - t||^2 (accumulated in double) and its gradient y - t.
inline double toy_loss(const Tensor& y, const Tensor& t) {
  double l = 0;
  for (int64_t k = 0; k < y.numel(); ++k) {
    const double d = y.ptr<float>()[k] - t.ptr<float>()[k];
    l += 0.5 * d * d;
  }
  return l;
}
inline Tensor toy_loss_grad(const Tensor& y, const Tensor& t) {
  Tensor g = Tensor::empty(y.shape());
  for (int64_t k = 0; k < y.numel(); ++k) g.ptr<float>()[k] = y.ptr<float>()[k] - t.ptr<float>()[k];
  return g;
}

// Microbatches in flight on one rank (forwarded, not yet backwarded), over all its chunks.
struct InFlight {
  int now = 0, peak = 0;
};

// Global stage s of S as a pipeline chunk.
struct ToyStage final : PipelineChunk {
  ToyStage(int s_, int S_, int data_seed_, InFlight* in_flight_)
      : s(s_), S(S_), data_seed(data_seed_), in_flight(in_flight_), w(toy_weight(s_)),
        dw(Tensor::zeros({kToyH, kToyH})) {}

  Tensor forward(int m, const Tensor& input) override {
    EXPECT_EQ(saved.count(m), 0u) << "stage " << s << " forward of microbatch " << m << " twice";
    Tensor x = s == 0 ? toy_input(m, data_seed) : input;
    EXPECT_EQ(input.defined(), s > 0) << "stage " << s;
    EXPECT_EQ(x.shape(), toy_shape(m)) << "stage " << s << " microbatch " << m;
    Tensor y = toy_forward(x, w);
    saved[m] = {x, y};
    in_flight->peak = std::max(in_flight->peak, ++in_flight->now);
    if (s < S - 1) return y;
    loss += toy_loss(y, toy_target(m, data_seed));
    return {};
  }

  Tensor backward(int m, const Tensor& doutput) override {
    auto it = saved.find(m);
    EXPECT_NE(it, saved.end()) << "stage " << s << " backward of microbatch " << m << " before its forward";
    if (it == saved.end()) return Tensor::zeros(toy_shape(m));
    const auto [x, y] = it->second;
    saved.erase(it);
    --in_flight->now;
    EXPECT_EQ(doutput.defined(), s < S - 1) << "stage " << s;
    const Tensor dy = s == S - 1 ? toy_loss_grad(y, toy_target(m, data_seed)) : doutput;
    return toy_backward(x, y, w, dy, dw);
  }

  int s, S, data_seed;
  InFlight* in_flight;
  Tensor w, dw;
  double loss = 0;
  std::map<int, std::pair<Tensor, Tensor>> saved;  // m -> (x, y)
};

struct ToyReference {
  double loss = 0;
  std::vector<Tensor> dw;  // per global stage
};

// The whole chain in one process: microbatch by microbatch, forward through every stage, then
// backward through every stage.
inline ToyReference toy_sequential(int S, int M, int data_seed) {
  ToyReference ref;
  std::vector<Tensor> w;
  for (int s = 0; s < S; ++s) {
    w.push_back(toy_weight(s));
    ref.dw.push_back(Tensor::zeros({kToyH, kToyH}));
  }
  for (int m = 0; m < M; ++m) {
    std::vector<Tensor> xs{toy_input(m, data_seed)}, ys;
    for (int s = 0; s < S; ++s) {
      ys.push_back(toy_forward(xs.back(), w[s]));
      xs.push_back(ys.back());
    }
    const Tensor t = toy_target(m, data_seed);
    ref.loss += toy_loss(ys.back(), t);
    Tensor d = toy_loss_grad(ys.back(), t);
    for (int s = S - 1; s >= 0; --s) d = toy_backward(xs[s], ys[s], w[s], d, ref.dw[s]);
  }
  return ref;
}

}  // namespace foundry::testing
