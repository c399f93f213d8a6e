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

char *ft_foreach_div_scalarlist_(ft_tensor *self, const double *scalars, size_t n) {
  FT_GUARD(at::_foreach_div_(list(self, n), scalars_of(scalars, n)))
}

char *ft_foreach_mul_scalarlist_(ft_tensor *self, const double *scalars, size_t n) {
  FT_GUARD(at::_foreach_mul_(list(self, n), scalars_of(scalars, n)))
}

char *ft_foreach_add_scalarlist_(ft_tensor *self, const double *scalars, size_t n) {
  FT_GUARD(at::_foreach_add_(list(self, n), scalars_of(scalars, n)))
}

char *ft_foreach_addcdiv_scalarlist_(ft_tensor *self, ft_tensor *t1, ft_tensor *t2,
                                     const double *scalars, size_t n) {
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
                     ft_tensor grad_scale, ft_tensor found_inf) {
  FT_GUARD({
    auto p = list(params, n);
    auto g = list(grads, n);
    auto m = list(exp_avgs, n);
    auto v = list(exp_avg_sqs, n);
    auto vmax = list(max_exp_avg_sqs, n_max);
    auto s = list(state_steps, n);
    if (decoupled) {
      at::_fused_adamw_(p, g, m, v, vmax, s, lr, beta1, beta2, weight_decay, eps, amsgrad != 0,
                        maximize != 0, opt(grad_scale), opt(found_inf));
    } else {
      at::_fused_adam_(p, g, m, v, vmax, s, lr, beta1, beta2, weight_decay, eps, amsgrad != 0,
                       maximize != 0, opt(grad_scale), opt(found_inf));
    }
  })
}

char *ft_fused_sgd_(ft_tensor *params, ft_tensor *grads, ft_tensor *momentum_buffers,
                    size_t n_buf, size_t n, double weight_decay, double momentum, double lr,
                    double dampening, int nesterov, int maximize, int is_first_step,
                    ft_tensor grad_scale, ft_tensor found_inf) {
  FT_GUARD(at::_fused_sgd_(list(params, n), list(grads, n), list(momentum_buffers, n_buf),
                           weight_decay, momentum, lr, dampening, nesterov != 0, maximize != 0,
                           is_first_step != 0, opt(grad_scale), opt(found_inf)))
}

char *ft_fused_adagrad_(ft_tensor *params, ft_tensor *grads, ft_tensor *state_sums,
                        ft_tensor *state_steps, size_t n, double lr, double lr_decay,
                        double weight_decay, double eps, int maximize, ft_tensor grad_scale,
                        ft_tensor found_inf) {
  FT_GUARD(at::_fused_adagrad_(list(params, n), list(grads, n), list(state_sums, n),
                               list(state_steps, n), lr, lr_decay, weight_decay, eps,
                               maximize != 0, opt(grad_scale), opt(found_inf)))
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
