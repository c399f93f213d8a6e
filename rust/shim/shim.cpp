// See shim.h. Every entry point catches every C++ exception: none may unwind
// into Rust (that would abort the process, or worse, reach Python).
#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "guard.h"
#include "shim.h"

namespace {

std::vector<at::Tensor> list(ft_tensor *ts, size_t n) {
  std::vector<at::Tensor> v;
  v.reserve(n);
  for (size_t i = 0; i < n; ++i) v.push_back(*ts[i]);
  return v;
}

std::optional<at::Tensor> opt(ft_tensor t) {
  if (t == nullptr) return std::nullopt;
  return *t;
}

void write_out(const std::vector<at::Tensor> &res, ft_tensor *out) {
  for (size_t i = 0; i < res.size(); ++i) out[i] = new at::Tensor(res[i]);
}

// Host scan for inf/NaN in CPU gradients, read-only. A float is non-finite
// exactly when its exponent bits are all ones; adding one exponent step then
// carries into the sign bit, and an integer OR over the whole tensor
// vectorises (no per-tensor TensorIterator, no write pass as the AMP unscale
// kernel makes).

// may_alias: reading a float's bits through an integer type is defined.
typedef uint32_t __attribute__((__may_alias__)) Bits32;
typedef uint64_t __attribute__((__may_alias__)) Bits64;

// One clone per vector width, picked at load time (GCC target_clones).
__attribute__((target_clones("avx512f", "avx2", "default")))
bool nonfinite_f32(const Bits32 *u, int64_t n) {
  uint32_t acc = 0;
  for (int64_t i = 0; i < n; ++i) acc |= (u[i] & 0x7f800000u) + 0x00800000u;
  return (acc & 0x80000000u) != 0;
}

__attribute__((target_clones("avx512f", "avx2", "default")))
bool nonfinite_f64(const Bits64 *u, int64_t n) {
  uint64_t acc = 0;
  for (int64_t i = 0; i < n; ++i)
    acc |= (u[i] & 0x7ff0000000000000ull) + 0x0010000000000000ull;
  return (acc & 0x8000000000000000ull) != 0;
}

bool any_nonfinite(ft_tensor *ts, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const at::Tensor &t = *ts[i];
    TORCH_CHECK(t.device().is_cpu(), "the host non-finite check takes CPU tensors");
    const bool dense = t.layout() == at::kStrided && t.is_contiguous();
    bool bad;
    if (dense && t.scalar_type() == at::kFloat) {
      bad = nonfinite_f32(static_cast<const Bits32 *>(t.const_data_ptr()), t.numel());
    } else if (dense && t.scalar_type() == at::kDouble) {
      bad = nonfinite_f64(static_cast<const Bits64 *>(t.const_data_ptr()), t.numel());
    } else {
      // Strided, sparse or other dtypes: ATen's own check (CPU: no sync).
      const at::Tensor v = t.is_sparse() ? t._values() : t;
      bad = !at::isfinite(v).all().item<bool>();
    }
    if (bad) return true;
  }
  return false;
}

void cpu_scalars_add(ft_tensor *ts, size_t n, double v) {
  for (size_t i = 0; i < n; ++i) {
    at::Tensor &t = *ts[i];
    TORCH_CHECK(t.device().is_cpu() && t.numel() == 1 && t.is_contiguous(),
                "the direct step-counter add takes one-element CPU tensors");
    if (t.scalar_type() == at::kFloat) {
      float *p = t.mutable_data_ptr<float>();
      *p = *p + static_cast<float>(v);
    } else if (t.scalar_type() == at::kDouble) {
      double *p = t.mutable_data_ptr<double>();
      *p = *p + v;
    } else {
      TORCH_CHECK(false, "the direct step-counter add takes float32 or float64, got ",
                  t.scalar_type());
    }
    t.unsafeGetTensorImpl()->bump_version();
  }
}

}  // namespace

extern "C" {

void ft_free_error(char *err) {
  if (err != ft_shim::kNoMemory) std::free(err);
}

int ft_is_same(ft_tensor a, ft_tensor b) { return a->is_same(*b) ? 1 : 0; }

// Copying a handle only moves an intrusive pointer: it cannot throw.
void ft_assign(ft_tensor dst, ft_tensor src) { *dst = *src; }

void ft_device_str(ft_tensor t, char *buf, size_t cap) {
  if (cap == 0) return;
  std::string s;
  try {
    s = t->device().str();
  } catch (...) {
    s = "unknown";
  }
  size_t n = std::min(s.size(), cap - 1);
  std::memcpy(buf, s.data(), n);
  buf[n] = '\0';
}

char *ft_grads_set_to_none(ft_tensor *self, size_t n) {
  FT_GUARD(for (size_t i = 0; i < n; ++i) self[i]->mutable_grad().reset())
}

char *ft_vector_norm(ft_tensor self, double ord, ft_tensor *out) {
  FT_GUARD(*out = new at::Tensor(at::linalg_vector_norm(*self, ord)))
}

char *ft_foreach_norm(ft_tensor *self, size_t n, double ord, ft_tensor *out) {
  FT_GUARD(write_out(at::_foreach_norm(list(self, n), ord), out))
}

char *ft_foreach_mul_scalar_(ft_tensor *self, size_t n, double scalar) {
  FT_GUARD(at::_foreach_mul_(list(self, n), scalar))
}

char *ft_foreach_mul_tensor_(ft_tensor *self, size_t n, ft_tensor other) {
  FT_GUARD(at::_foreach_mul_(list(self, n), *other))
}

char *ft_foreach_add_scalar_(ft_tensor *self, size_t n, double scalar) {
  FT_GUARD(at::_foreach_add_(list(self, n), scalar))
}

char *ft_foreach_add_list_(ft_tensor *self, ft_tensor *other, size_t n, double alpha) {
  FT_GUARD(at::_foreach_add_(list(self, n), list(other, n), alpha))
}

char *ft_foreach_addcmul_(ft_tensor *self, ft_tensor *t1, ft_tensor *t2, size_t n, double value) {
  FT_GUARD(at::_foreach_addcmul_(list(self, n), list(t1, n), list(t2, n), value))
}

char *ft_foreach_addcdiv_(ft_tensor *self, ft_tensor *t1, ft_tensor *t2, size_t n, double value) {
  FT_GUARD(at::_foreach_addcdiv_(list(self, n), list(t1, n), list(t2, n), value))
}

char *ft_foreach_lerp_(ft_tensor *self, ft_tensor *ends, size_t n, double weight) {
  FT_GUARD(at::_foreach_lerp_(list(self, n), list(ends, n), weight))
}

char *ft_foreach_sqrt(ft_tensor *self, size_t n, ft_tensor *out) {
  FT_GUARD(write_out(at::_foreach_sqrt(list(self, n)), out))
}

char *ft_foreach_div_scalar_(ft_tensor *self, size_t n, double scalar) {
  FT_GUARD(at::_foreach_div_(list(self, n), scalar))
}

char *ft_foreach_div_list_(ft_tensor *self, ft_tensor *other, size_t n) {
  FT_GUARD(at::_foreach_div_(list(self, n), list(other, n)))
}

char *ft_foreach_zero_(ft_tensor *self, size_t n) { FT_GUARD(at::_foreach_zero_(list(self, n))) }

static std::vector<at::Scalar> scalars_of(const double *v, size_t n) {
  return std::vector<at::Scalar>(v, v + n);
}

char *ft_foreach_div_scalarlist_(ft_tensor *self, size_t n, const double *scalars) {
  FT_GUARD(at::_foreach_div_(list(self, n), scalars_of(scalars, n)))
}

char *ft_foreach_mul_scalarlist_(ft_tensor *self, size_t n, const double *scalars) {
  FT_GUARD(at::_foreach_mul_(list(self, n), scalars_of(scalars, n)))
}

char *ft_foreach_add_scalarlist_(ft_tensor *self, size_t n, const double *scalars) {
  FT_GUARD(at::_foreach_add_(list(self, n), scalars_of(scalars, n)))
}

char *ft_foreach_addcdiv_scalarlist_(ft_tensor *self, ft_tensor *t1, ft_tensor *t2, size_t n,
                                     const double *scalars) {
  FT_GUARD(at::_foreach_addcdiv_(list(self, n), list(t1, n), list(t2, n), scalars_of(scalars, n)))
}

char *ft_foreach_maximum_(ft_tensor *self, ft_tensor *other, size_t n) {
  FT_GUARD(at::_foreach_maximum_(list(self, n), list(other, n)))
}

char *ft_foreach_mul_list_(ft_tensor *self, ft_tensor *other, size_t n) {
  FT_GUARD(at::_foreach_mul_(list(self, n), list(other, n)))
}

char *ft_foreach_add_list(ft_tensor *self, ft_tensor *other, size_t n, double alpha, ft_tensor *out) {
  FT_GUARD(write_out(at::_foreach_add(list(self, n), list(other, n), alpha), out))
}

char *ft_foreach_addcmul(ft_tensor *self, ft_tensor *t1, ft_tensor *t2, size_t n, double value,
                         ft_tensor *out) {
  FT_GUARD(write_out(at::_foreach_addcmul(list(self, n), list(t1, n), list(t2, n), value), out))
}

char *ft_foreach_sqrt_(ft_tensor *self, size_t n) { FT_GUARD(at::_foreach_sqrt_(list(self, n))) }

char *ft_foreach_reciprocal_(ft_tensor *self, size_t n) {
  FT_GUARD(at::_foreach_reciprocal_(list(self, n)))
}

char *ft_foreach_mul_scalar(ft_tensor *self, size_t n, double scalar, ft_tensor *out) {
  FT_GUARD(write_out(at::_foreach_mul(list(self, n), scalar), out))
}

char *ft_foreach_abs(ft_tensor *self, size_t n, ft_tensor *out) {
  FT_GUARD(write_out(at::_foreach_abs(list(self, n)), out))
}

char *ft_foreach_neg(ft_tensor *self, size_t n, ft_tensor *out) {
  FT_GUARD(write_out(at::_foreach_neg(list(self, n)), out))
}

char *ft_fused_adam_(int decoupled, ft_tensor *params, ft_tensor *grads, ft_tensor *exp_avgs,
                     ft_tensor *exp_avg_sqs, ft_tensor *max_exp_avg_sqs, size_t n_max,
                     ft_tensor *state_steps, size_t n, double lr, double beta1, double beta2,
                     double weight_decay, double eps, int amsgrad, int maximize,
                     ft_tensor grad_scale, ft_tensor found_inf, ft_tensor lr_t) {
  FT_GUARD({
    auto p = list(params, n);
    auto g = list(grads, n);
    auto m = list(exp_avgs, n);
    auto v = list(exp_avg_sqs, n);
    auto vmax = list(max_exp_avg_sqs, n_max);
    auto s = list(state_steps, n);
    bool ams = amsgrad != 0;
    bool maxi = maximize != 0;
    // lr_t (a device tensor, the capturable path) overrides lr.
    if (decoupled && lr_t != nullptr) {
      at::_fused_adamw_(p, g, m, v, vmax, s, *lr_t, beta1, beta2, weight_decay, eps, ams, maxi,
                        opt(grad_scale), opt(found_inf));
    } else if (decoupled) {
      at::_fused_adamw_(p, g, m, v, vmax, s, lr, beta1, beta2, weight_decay, eps, ams, maxi,
                        opt(grad_scale), opt(found_inf));
    } else if (lr_t != nullptr) {
      at::_fused_adam_(p, g, m, v, vmax, s, *lr_t, beta1, beta2, weight_decay, eps, ams, maxi,
                       opt(grad_scale), opt(found_inf));
    } else {
      at::_fused_adam_(p, g, m, v, vmax, s, lr, beta1, beta2, weight_decay, eps, ams, maxi,
                       opt(grad_scale), opt(found_inf));
    }
  })
}

char *ft_fused_sgd_(ft_tensor *params, ft_tensor *grads, ft_tensor *momentum_buffers,
                    size_t n_buf, size_t n, double weight_decay, double momentum, double lr,
                    double dampening, int nesterov, int maximize, int is_first_step,
                    ft_tensor grad_scale, ft_tensor found_inf, ft_tensor lr_t) {
  FT_GUARD({
    auto p = list(params, n);
    auto g = list(grads, n);
    auto b = list(momentum_buffers, n_buf);
    if (lr_t != nullptr) {
      at::_fused_sgd_(p, g, b, weight_decay, momentum, *lr_t, dampening, nesterov != 0,
                      maximize != 0, is_first_step != 0, opt(grad_scale), opt(found_inf));
    } else {
      at::_fused_sgd_(p, g, b, weight_decay, momentum, lr, dampening, nesterov != 0,
                      maximize != 0, is_first_step != 0, opt(grad_scale), opt(found_inf));
    }
  })
}

char *ft_fused_adagrad_(ft_tensor *params, ft_tensor *grads, ft_tensor *state_sums,
                        ft_tensor *state_steps, size_t n, double lr, double lr_decay,
                        double weight_decay, double eps, int maximize, ft_tensor grad_scale,
                        ft_tensor found_inf, ft_tensor lr_t) {
  FT_GUARD({
    auto p = list(params, n);
    auto g = list(grads, n);
    auto ss = list(state_sums, n);
    auto st = list(state_steps, n);
    if (lr_t != nullptr) {
      at::_fused_adagrad_(p, g, ss, st, *lr_t, lr_decay, weight_decay, eps, maximize != 0,
                          opt(grad_scale), opt(found_inf));
    } else {
      at::_fused_adagrad_(p, g, ss, st, lr, lr_decay, weight_decay, eps, maximize != 0,
                          opt(grad_scale), opt(found_inf));
    }
  })
}

char *ft_amp_foreach_non_finite_check_and_unscale_(ft_tensor *grads, size_t n,
                                                   ft_tensor found_inf, ft_tensor inv_scale) {
  FT_GUARD(at::_amp_foreach_non_finite_check_and_unscale_(list(grads, n), *found_inf, *inv_scale))
}

char *ft_amp_update_scale_(ft_tensor scale, ft_tensor growth_tracker, ft_tensor found_inf,
                           double growth_factor, double backoff_factor, int64_t growth_interval) {
  FT_GUARD(at::_amp_update_scale_(*scale, *growth_tracker, *found_inf, growth_factor,
                                  backoff_factor, growth_interval))
}

char *ft_cpu_any_nonfinite(ft_tensor *ts, size_t n, int32_t *out) {
  FT_GUARD(*out = any_nonfinite(ts, n) ? 1 : 0)
}

// The optimizers' CPU step counters (0-dim float tensors): += v in place,
// written directly. A dispatched `_foreach_add_` costs more than the fused
// update's bookkeeping for a handful of scalars.
char *ft_cpu_scalars_add_(ft_tensor *ts, size_t n, double v) {
  FT_GUARD(cpu_scalars_add(ts, n, v))
}

char *ft_foreach_clamp_min_(ft_tensor *self, size_t n, double scalar) {
  FT_GUARD(at::_foreach_clamp_min_(list(self, n), scalar))
}

char *ft_foreach_clamp_max_(ft_tensor *self, size_t n, double scalar) {
  FT_GUARD(at::_foreach_clamp_max_(list(self, n), scalar))
}

// Autocast state is thread-local in ATen; device_type is a c10::DeviceType
// code and dtype a c10::ScalarType code.
char *ft_autocast_get(int device_type, int *enabled, int *dtype) {
  FT_GUARD({
    auto dt = static_cast<c10::DeviceType>(device_type);
    *enabled = at::autocast::is_autocast_enabled(dt) ? 1 : 0;
    *dtype = static_cast<int>(at::autocast::get_autocast_dtype(dt));
  })
}

char *ft_autocast_set(int device_type, int enabled, int dtype) {
  FT_GUARD({
    auto dt = static_cast<c10::DeviceType>(device_type);
    at::autocast::set_autocast_enabled(dt, enabled != 0);
    at::autocast::set_autocast_dtype(dt, static_cast<c10::ScalarType>(dtype));
  })
}

char *ft_autocast_increment_nesting(int *depth) {
  FT_GUARD(*depth = at::autocast::increment_nesting())
}

char *ft_autocast_decrement_nesting(int *depth) {
  FT_GUARD(*depth = at::autocast::decrement_nesting())
}

char *ft_autocast_clear_cache() { FT_GUARD(at::autocast::clear_cache()) }

// Parameterised activations: tch binds these without their scalar arguments.
char *ft_elu(ft_tensor self, double alpha, ft_tensor *out) {
  FT_GUARD(*out = new at::Tensor(at::elu(*self, alpha)))
}

char *ft_leaky_relu(ft_tensor self, double slope, ft_tensor *out) {
  FT_GUARD(*out = new at::Tensor(at::leaky_relu(*self, slope)))
}

char *ft_softplus(ft_tensor self, double beta, double threshold, ft_tensor *out) {
  FT_GUARD(*out = new at::Tensor(at::softplus(*self, beta, threshold)))
}

}  // extern "C"

// ---------------------------------------------------------------------------
// Gradient checkpointing: a custom autograd Function that keeps only its
// inputs, runs a caller-supplied closure under no-grad, and in backward re-runs
// the closure with grad enabled (same RNG and autocast state as the forward)
// and backpropagates through the recomputed graph. The closure is an opaque
// C callback; the shim knows nothing of what it runs (Rust modules, or a
// binding that calls Python).
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/SequenceNumber.h>
#include <ATen/record_function.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/autograd/functions/accumulate_grad.h>
#include <torch/csrc/autograd/graph_task.h>

#include <mutex>
#include <stdexcept>
#include <unordered_set>
#include <utility>

struct ft_sink {
  std::vector<at::Tensor> tensors;
  std::string error;
  bool failed = false;
};

namespace ft_ckpt {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct Autocast {
  c10::DeviceType device;
  bool enabled;
  at::ScalarType dtype;
};

// One checkpointed call: the closure (dropped with the last reference, that
// is when the autograd graph holding it is freed) and the forward's context.
struct Closure : torch::CustomClassHolder {
  ft_recompute_fn fn = nullptr;
  ft_drop_fn drop = nullptr;
  void *ctx = nullptr;
  size_t n_user = 0;
  bool preserve_rng = true;
  at::Tensor cpu_rng;
  std::vector<std::pair<c10::Device, at::Tensor>> device_rng;
  std::vector<Autocast> autocast;
  ~Closure() override {
    if (drop != nullptr) drop(ctx);
  }
};

variable_list call(const Closure &c, const variable_list &inputs) {
  std::vector<ft_tensor> hs;
  hs.reserve(inputs.size());
  for (const auto &t : inputs) hs.push_back(const_cast<at::Tensor *>(&t));
  ft_sink sink;
  int rc = c.fn(c.ctx, hs.data(), hs.size(), &sink);
  if (rc != 0 || sink.failed) {
    throw std::runtime_error(sink.error.empty() ? "grad_checkpoint: the function failed"
                                                : sink.error);
  }
  return std::move(sink.tensors);
}

std::vector<c10::Device> accelerator_devices(const variable_list &ts) {
  std::vector<c10::Device> out;
  for (const auto &t : ts) {
    if (!t.defined() || t.device().is_cpu() || t.device().is_meta()) continue;
    auto d = t.device();
    if (std::find(out.begin(), out.end(), d) == out.end()) out.push_back(d);
  }
  return out;
}

at::Tensor get_rng(at::Generator gen) {
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}

void set_rng(at::Generator gen, const at::Tensor &state) {
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

// Sets the forward's RNG states for the recompute and puts the caller's back
// afterwards, so backward leaves the generators as if nothing had rerun.
class RngFork {
 public:
  explicit RngFork(const Closure &c) : active_(c.preserve_rng) {
    if (!active_) return;
    saved_cpu_ = get_rng(at::detail::getDefaultCPUGenerator());
    for (const auto &[d, _] : c.device_rng)
      saved_dev_.emplace_back(d, get_rng(at::globalContext().defaultGenerator(d)));
    set_rng(at::detail::getDefaultCPUGenerator(), c.cpu_rng);
    for (const auto &[d, s] : c.device_rng) set_rng(at::globalContext().defaultGenerator(d), s);
  }
  ~RngFork() {
    if (!active_) return;
    try {
      set_rng(at::detail::getDefaultCPUGenerator(), saved_cpu_);
      for (const auto &[d, s] : saved_dev_) set_rng(at::globalContext().defaultGenerator(d), s);
    } catch (...) {
      // A destructor must not throw; the states were read from these same
      // generators, so setting them back cannot fail in practice.
    }
  }
  RngFork(const RngFork &) = delete;
  RngFork &operator=(const RngFork &) = delete;

 private:
  bool active_;
  at::Tensor saved_cpu_;
  std::vector<std::pair<c10::Device, at::Tensor>> saved_dev_;
};

const c10::DeviceType kAutocastDevices[] = {c10::DeviceType::CPU, c10::DeviceType::CUDA};

std::vector<Autocast> autocast_now() {
  std::vector<Autocast> out;
  for (auto d : kAutocastDevices)
    out.push_back({d, at::autocast::is_autocast_enabled(d), at::autocast::get_autocast_dtype(d)});
  return out;
}

void autocast_set(const std::vector<Autocast> &s) {
  for (const auto &a : s) {
    at::autocast::set_autocast_enabled(a.device, a.enabled);
    at::autocast::set_autocast_dtype(a.device, a.dtype);
  }
}

// The forward's autocast state for the recompute (backward threads do not
// inherit it), the previous one back afterwards.
class AutocastScope {
 public:
  explicit AutocastScope(const std::vector<Autocast> &s) : prev_(autocast_now()) {
    autocast_set(s);
  }
  ~AutocastScope() { autocast_set(prev_); }
  AutocastScope(const AutocastScope &) = delete;
  AutocastScope &operator=(const AutocastScope &) = delete;

 private:
  std::vector<Autocast> prev_;
};

// Leaves requiring grad that the recomputed outputs reach but that are not
// declared inputs or parameters (a tensor the closure captured): their
// gradient is accumulated directly, as torch's reentrant checkpoint does. A
// captured non-leaf from outside cannot be handled that way: it is an error.
std::vector<at::Tensor> undeclared_leaves(const variable_list &ys, const variable_list &targets,
                                          uint64_t thread, uint64_t first_seq) {
  std::unordered_set<const torch::autograd::Node *> stop;
  for (const auto &t : targets)
    stop.insert(torch::autograd::impl::gradient_edge(t).function.get());
  std::unordered_set<const torch::autograd::Node *> seen;
  std::vector<torch::autograd::Node *> todo;
  for (const auto &y : ys)
    if (y.grad_fn()) todo.push_back(y.grad_fn().get());
  std::vector<at::Tensor> out;
  while (!todo.empty()) {
    auto *n = todo.back();
    todo.pop_back();
    if (n == nullptr || !seen.insert(n).second || stop.count(n) != 0) continue;
    if (auto *acc = dynamic_cast<torch::autograd::AccumulateGrad *>(n)) {
      out.push_back(acc->variable);
      continue;
    }
    if (n->thread_id() != thread || n->sequence_nr() < first_seq) {
      throw std::runtime_error(
          "grad_checkpoint: the function uses a tensor that requires grad, was computed "
          "outside it and is not one of its inputs (node " +
          n->name() + "); pass it as an input");
    }
    for (const auto &e : n->next_edges()) todo.push_back(e.function.get());
  }
  return out;
}

struct GradCheckpoint : public torch::autograd::Function<GradCheckpoint> {
  static variable_list forward(AutogradContext *ctx, at::TensorList inputs,
                               const c10::intrusive_ptr<torch::CustomClassHolder> &holder) {
    auto &c = static_cast<Closure &>(*holder);
    variable_list user(inputs.begin(), inputs.begin() + static_cast<std::ptrdiff_t>(c.n_user));
    variable_list outs = call(c, user);
    for (const auto &o : outs)
      if (!at::isFloatingType(o.scalar_type()) && !at::isComplexType(o.scalar_type()))
        ctx->mark_non_differentiable({o});
    ctx->save_for_backward(inputs.vec());
    ctx->saved_data["closure"] = c10::IValue::make_capsule(holder);
    return outs;
  }

  static variable_list backward(AutogradContext *ctx, variable_list grad_out) {
    auto holder = ctx->saved_data["closure"].toCapsule();
    const auto &c = static_cast<const Closure &>(*holder);
    variable_list saved = ctx->get_saved_variables();
    const size_t n = saved.size();
    // Grad mode is on in backward only under create_graph (double backward):
    // then the recompute reads the real inputs, so the gradients it returns
    // are connected to them; otherwise detached copies keep it self-contained.
    const bool create = at::GradMode::is_enabled();
    variable_list user;
    user.reserve(c.n_user);
    for (size_t i = 0; i < c.n_user; ++i) {
      if (create) {
        user.push_back(saved[i]);
        continue;
      }
      auto d = saved[i].detach();
      d.set_requires_grad(saved[i].requires_grad());
      user.push_back(d);
    }
    const uint64_t thread = at::RecordFunction::currentThreadId();
    const uint64_t first_seq = at::sequence_number::peek();
    variable_list outs;
    {
      RngFork rng(c);
      AutocastScope cast(c.autocast);
      at::AutoGradMode grad(true);
      outs = call(c, user);
    }
    if (outs.size() != grad_out.size()) {
      throw std::runtime_error("grad_checkpoint: the recompute returned " +
                               std::to_string(outs.size()) + " outputs, the forward " +
                               std::to_string(grad_out.size()));
    }
    variable_list ys, gs;
    for (size_t i = 0; i < outs.size(); ++i) {
      if (outs[i].requires_grad() && grad_out[i].defined()) {
        ys.push_back(outs[i]);
        gs.push_back(grad_out[i]);
      }
    }
    variable_list targets;
    std::vector<size_t> where;
    for (size_t i = 0; i < n; ++i) {
      const at::Tensor &t = i < c.n_user ? user[i] : saved[i];
      if (t.requires_grad()) {
        targets.push_back(t);
        where.push_back(i);
      }
    }
    variable_list result(n + 1);  // + the closure argument (no gradient)
    if (ys.empty()) return result;
    auto extra = undeclared_leaves(ys, targets, thread, first_seq);
    // A plain backward (no `inputs=`, not autograd.grad) accumulates every
    // leaf anyway: let the recompute's backward accumulate the parameters as
    // it goes (one weight gradient alive at a time, as torch's checkpoint)
    // instead of returning them all at once through this node. Only the
    // detached inputs' gradients are handed back.
    const auto *exec = torch::autograd::get_current_graph_task_exec_info();
    const bool plain = !create && (exec == nullptr || exec->empty()) &&
                       std::all_of(targets.begin(), targets.end(),
                                   [](const at::Tensor &t) { return t.is_leaf(); });
    if (plain) {
      torch::autograd::backward(ys, gs, std::nullopt, create);
      for (size_t k = 0; k < where.size(); ++k)
        if (where[k] < c.n_user) result[where[k]] = targets[k].grad();
      return result;
    }
    variable_list all = targets;
    all.insert(all.end(), extra.begin(), extra.end());
    if (all.empty()) return result;
    auto grads = torch::autograd::grad(ys, all, gs, std::nullopt, create, /*allow_unused=*/true);
    for (size_t k = 0; k < where.size(); ++k) result[where[k]] = grads[k];
    for (size_t k = 0; k < extra.size(); ++k) {
      const auto &g = grads[targets.size() + k];
      if (!g.defined()) continue;
      auto &dst = extra[k].mutable_grad();
      dst = dst.defined() ? dst + g : g;
    }
    return result;
  }
};

}  // namespace ft_ckpt

extern "C" {

ft_sink *ft_sink_new() { return new (std::nothrow) ft_sink(); }

void ft_sink_free(ft_sink *s) { delete s; }

int ft_sink_push(ft_sink *s, ft_tensor t) {
  try {
    s->tensors.push_back(*t);
    return 0;
  } catch (...) {
    return 1;
  }
}

void ft_sink_fail(ft_sink *s, const char *msg) {
  s->failed = true;
  try {
    s->error = msg;
  } catch (...) {
  }
}

size_t ft_sink_len(const ft_sink *s) { return s->tensors.size(); }

ft_tensor ft_sink_take(ft_sink *s, size_t i) {
  try {
    return new at::Tensor(std::move(s->tensors.at(i)));
  } catch (...) {
    return nullptr;
  }
}

char *ft_grad_checkpoint(ft_recompute_fn fn, ft_drop_fn drop, void *ctx, ft_tensor *inputs,
                         size_t n_inputs, size_t n_user, int preserve_rng, ft_sink *out) {
  // From here the shim owns ctx: the Closure drops it exactly once.
  c10::intrusive_ptr<ft_ckpt::Closure> c;
  try {
    c = c10::make_intrusive<ft_ckpt::Closure>();
  } catch (...) {
    drop(ctx);
    return ft_shim::dup_message("grad_checkpoint: out of memory");
  }
  c->fn = fn;
  c->drop = drop;
  c->ctx = ctx;
  FT_GUARD({
    TORCH_CHECK(n_user <= n_inputs, "grad_checkpoint: more user inputs than inputs");
    c->n_user = n_user;
    c->preserve_rng = preserve_rng != 0;
    auto all = list(inputs, n_inputs);
    bool track = at::GradMode::is_enabled() &&
                 std::any_of(all.begin(), all.end(), [](const at::Tensor &t) {
                   return t.defined() && t.requires_grad();
                 });
    if (!track) {
      // Nothing to differentiate: a plain call keeps nothing either.
      std::vector<at::Tensor> user(all.begin(),
                                   all.begin() + static_cast<std::ptrdiff_t>(n_user));
      out->tensors = ft_ckpt::call(*c, user);
    } else {
      if (c->preserve_rng) {
        c->cpu_rng = ft_ckpt::get_rng(at::detail::getDefaultCPUGenerator());
        for (const auto &d : ft_ckpt::accelerator_devices(all))
          c->device_rng.emplace_back(d, ft_ckpt::get_rng(at::globalContext().defaultGenerator(d)));
      }
      c->autocast = ft_ckpt::autocast_now();
      c10::intrusive_ptr<torch::CustomClassHolder> holder = c;
      out->tensors = ft_ckpt::GradCheckpoint::apply(at::TensorList(all), holder);
    }
  })
}

}  // extern "C"
