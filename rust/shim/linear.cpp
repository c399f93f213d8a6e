// Linear (2-D input, with bias) on plain CPU tensors as one autograd node.
//
// at::linear records two nodes for this case: TBackward0 for weight.t() and
// AddmmBackward0. Each node the autograd engine runs costs it a thread-local
// state swap and its bookkeeping, more than a small transpose is worth. This
// node makes exactly the ATen calls those two make, so values are identical:
// the forward is at::addmm(bias, x, weight.t()); the backward is
// AddmmBackward0's mm_mat1_backward / mm_mat2_backward in the form each picks
// from the layouts (for a row-major x and weight: grad.mm(weight), and
// grad.t().mm(x) as TBackward0 hands it on); the bias receives the
// [batch, out] gradient, which the engine sums to [out] as it does for addmm.
// It saves what AddmmBackward0 saves: x only when the weight needs a
// gradient, the weight only when x does.
//
// Anything else (other ranks, no bias, non-contiguous, CUDA, transforms,
// dispatch modes, autocast, forward-mode AD) calls at::linear as before.
#include <ATen/ATen.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/autograd/saved_variable.h>

#include <array>

#include "guard.h"
#include "plain.h"
#include "shim.h"

namespace {

using torch::autograd::SavedVariable;
using torch::autograd::variable_list;

bool native_ok(const at::Tensor &x, const at::Tensor &w, const at::Tensor &b) {
  return x.dim() == 2 && w.dim() == 2 && b.defined() && b.dim() == 1 && x.is_contiguous() &&
         w.is_contiguous() && x.scalar_type() == w.scalar_type() &&
         b.scalar_type() == w.scalar_type() && at::isFloatingType(w.scalar_type()) &&
         ft_shim::plain_dispatch_state() && ft_shim::plain_cpu_tensor(x) &&
         ft_shim::plain_cpu_tensor(w) && ft_shim::plain_cpu_tensor(b);
}

// Next edges in order: x, weight, bias.
struct LinearBackward : public torch::autograd::Node {
  SavedVariable x_;
  SavedVariable weight_;
  std::array<int64_t, 2> x_sizes_{}, x_strides_{}, w_sizes_{}, w_strides_{};

  std::string name() const override { return "ferrotorch::LinearBackward"; }

  variable_list apply(variable_list &&grads) override {
    const at::Tensor &g = grads[0];
    variable_list out(3);
    if (!g.defined()) return out;
    auto self = shared_from_this();
    // Under create_graph these mm calls record their own nodes, as
    // AddmmBackward0's do, so higher-order gradients keep working.
    // mm_mat1_backward / mm_mat2_backward pick their form from the saved
    // layouts (mat1 = x, mat2 = weight.t()); the same choice here keeps the
    // same GEMM, hence the same bits.
    if (should_compute_output(0)) {
      at::Tensor w = weight_.unpack(self);
      bool x_col_major = x_strides_[0] == 1 && x_strides_[1] == x_sizes_[0];
      out[0] = x_col_major ? w.t().mm(g.t()).t() : g.mm(w);
    }
    if (should_compute_output(1)) {
      at::Tensor x = x_.unpack(self);
      // weight.t() column-major: grad.t().mm(x).t(), which TBackward0 turns
      // back into grad.t().mm(x); else x.t().mm(grad), transposed.
      bool wt_col_major = w_strides_[1] == 1 && w_strides_[0] == w_sizes_[1];
      out[1] = wt_col_major ? g.t().mm(x) : x.t().mm(g).t();
    }
    // The engine reduces this to the bias's shape (at::sum_to), as for addmm.
    if (should_compute_output(2)) out[2] = g;
    return out;
  }

  void release_variables() override {
    x_.reset_data();
    weight_.reset_data();
  }
};

at::Tensor forward_values(const at::Tensor &x, const at::Tensor &w, const at::Tensor &b) {
  at::AutoDispatchBelowADInplaceOrView below_autograd;
  return at::addmm(b, x, w.t());
}

at::Tensor linear(const at::Tensor &x, const at::Tensor &w, const at::Tensor &b) {
  if (!native_ok(x, w, b)) return at::linear(x, w, b.defined() ? std::optional(b) : std::nullopt);
  bool grad = c10::GradMode::is_enabled() &&
              (x.requires_grad() || w.requires_grad() || b.requires_grad());
  if (!grad) return forward_values(x, w, b);
  auto node = std::shared_ptr<LinearBackward>(new LinearBackward(), torch::autograd::deleteNode);
  node->set_next_edges(torch::autograd::collect_next_edges(x, w, b));
  if (node->should_compute_output(1)) node->x_ = SavedVariable(x, /*is_output=*/false);
  if (node->should_compute_output(0)) node->weight_ = SavedVariable(w, /*is_output=*/false);
  node->x_sizes_ = {x.size(0), x.size(1)};
  node->x_strides_ = {x.stride(0), x.stride(1)};
  node->w_sizes_ = {w.size(0), w.size(1)};
  node->w_strides_ = {w.stride(0), w.stride(1)};
  at::Tensor out = forward_values(x, w, b);
  torch::autograd::set_history(out, node);
  return out;
}

}  // namespace

extern "C" {

char *ft_linear(ft_tensor x, ft_tensor weight, ft_tensor bias, ft_tensor *out) {
  FT_GUARD(*out = new at::Tensor(linear(*x, *weight, bias ? *bias : at::Tensor())))
}

}  // extern "C"
