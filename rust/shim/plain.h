// Whether the shim may replace ATen's op-by-op recording for a tensor with
// its own autograd node: a plain dense CPU tensor, outside anything that must
// see the ATen ops themselves (tensor subclasses, functorch wrappers, dispatch
// modes, autocast, forward-mode AD).
#pragma once
#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>

namespace ft_shim {

// The thread's side: no dispatch mode or functorch transform (they add keys
// to the thread's included set) and no CPU autocast.
inline bool plain_dispatch_state() {
  if (!(c10::impl::tls_local_dispatch_key_set().included_ - c10::default_included_set).empty())
    return false;
  return !at::autocast::is_autocast_enabled(c10::DeviceType::CPU);
}

// The tensor's side: dense CPU, no subclass or wrapper keys, no tangent.
inline bool plain_cpu_tensor(const at::Tensor &t) {
  if (!t.defined() || t.layout() != at::kStrided) return false;
  auto keys = t.key_set() - c10::autograd_dispatch_keyset - c10::autocast_dispatch_keyset -
              c10::DispatchKeySet(c10::DispatchKey::ADInplaceOrView);
  if (keys != c10::DispatchKeySet(c10::DispatchKey::CPU)) return false;
  return !t._fw_grad(/*level=*/0).defined();
}

}  // namespace ft_shim
