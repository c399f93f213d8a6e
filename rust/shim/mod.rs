//! Safe Rust wrappers over the C++ shim: ATen's multi-tensor (`_foreach_*`),
//! fused optimizer and AMP kernels, which tch does not expose.
//!
//! Every function takes `tch::Tensor` slices, checks list lengths (ATen would
//! index out of bounds otherwise) and turns a C++ exception into `Error::Torch`.

use std::ffi::{c_char, CStr};

use tch::Tensor;

use crate::{Error, Result};

pub mod cuda_graph;
pub mod dist;
pub mod recompute;

type Handle = *mut torch_sys::C_tensor;

extern "C" {
    fn ft_free_error(err: *mut c_char);
    fn ft_grads_set_to_none(s: *const Handle, n: usize) -> *mut c_char;
    fn ft_is_same(a: Handle, b: Handle) -> i32;
    fn ft_assign(dst: Handle, src: Handle);
    fn ft_device_str(t: Handle, buf: *mut c_char, cap: usize);
    fn ft_vector_norm(s: Handle, ord: f64, out: *mut Handle) -> *mut c_char;
    fn ft_elu(s: Handle, alpha: f64, out: *mut Handle) -> *mut c_char;
    fn ft_leaky_relu(s: Handle, slope: f64, out: *mut Handle) -> *mut c_char;
    fn ft_linear(x: Handle, w: Handle, b: Handle, out: *mut Handle) -> *mut c_char;
    fn ft_softplus(s: Handle, beta: f64, threshold: f64, out: *mut Handle) -> *mut c_char;
    fn ft_foreach_norm(s: *const Handle, n: usize, ord: f64, out: *mut Handle) -> *mut c_char;
    fn ft_foreach_mul_scalar_(s: *const Handle, n: usize, v: f64) -> *mut c_char;
    fn ft_foreach_mul_tensor_(s: *const Handle, n: usize, other: Handle) -> *mut c_char;
    fn ft_foreach_add_scalar_(s: *const Handle, n: usize, v: f64) -> *mut c_char;
    fn ft_foreach_add_list_(s: *const Handle, o: *const Handle, n: usize, a: f64) -> *mut c_char;
    fn ft_foreach_addcmul_(
        s: *const Handle,
        t1: *const Handle,
        t2: *const Handle,
        n: usize,
        v: f64,
    ) -> *mut c_char;
    fn ft_foreach_addcdiv_(
        s: *const Handle,
        t1: *const Handle,
        t2: *const Handle,
        n: usize,
        v: f64,
    ) -> *mut c_char;
    fn ft_foreach_lerp_(s: *const Handle, e: *const Handle, n: usize, w: f64) -> *mut c_char;
    fn ft_foreach_sqrt(s: *const Handle, n: usize, out: *mut Handle) -> *mut c_char;
    fn ft_foreach_div_scalar_(s: *const Handle, n: usize, v: f64) -> *mut c_char;
    fn ft_foreach_div_list_(s: *const Handle, o: *const Handle, n: usize) -> *mut c_char;
    fn ft_foreach_zero_(s: *const Handle, n: usize) -> *mut c_char;
    fn ft_foreach_div_scalarlist_(s: *const Handle, v: *const f64, n: usize) -> *mut c_char;
    fn ft_foreach_mul_scalarlist_(s: *const Handle, v: *const f64, n: usize) -> *mut c_char;
    fn ft_foreach_add_scalarlist_(s: *const Handle, v: *const f64, n: usize) -> *mut c_char;
    fn ft_foreach_addcdiv_scalarlist_(
        s: *const Handle,
        t1: *const Handle,
        t2: *const Handle,
        v: *const f64,
        n: usize,
    ) -> *mut c_char;
    fn ft_foreach_maximum_(s: *const Handle, o: *const Handle, n: usize) -> *mut c_char;
    fn ft_foreach_mul_list_(s: *const Handle, o: *const Handle, n: usize) -> *mut c_char;
    fn ft_foreach_abs(s: *const Handle, n: usize, out: *mut Handle) -> *mut c_char;
    fn ft_foreach_add_list(
        s: *const Handle,
        o: *const Handle,
        n: usize,
        a: f64,
        out: *mut Handle,
    ) -> *mut c_char;
    fn ft_foreach_addcmul(
        s: *const Handle,
        t1: *const Handle,
        t2: *const Handle,
        n: usize,
        v: f64,
        out: *mut Handle,
    ) -> *mut c_char;
    fn ft_foreach_sqrt_(s: *const Handle, n: usize) -> *mut c_char;
    fn ft_foreach_reciprocal_(s: *const Handle, n: usize) -> *mut c_char;
    fn ft_foreach_mul_scalar(s: *const Handle, n: usize, v: f64, out: *mut Handle) -> *mut c_char;
    fn ft_foreach_neg(s: *const Handle, n: usize, out: *mut Handle) -> *mut c_char;
    fn ft_fused_adam_(
        decoupled: i32,
        params: *const Handle,
        grads: *const Handle,
        exp_avgs: *const Handle,
        exp_avg_sqs: *const Handle,
        max_exp_avg_sqs: *const Handle,
        n_max: usize,
        state_steps: *const Handle,
        n: usize,
        lr: f64,
        beta1: f64,
        beta2: f64,
        weight_decay: f64,
        eps: f64,
        amsgrad: i32,
        maximize: i32,
        grad_scale: Handle,
        found_inf: Handle,
        lr_t: Handle,
    ) -> *mut c_char;
    fn ft_fused_sgd_(
        params: *const Handle,
        grads: *const Handle,
        momentum_buffers: *const Handle,
        n_buf: usize,
        n: usize,
        weight_decay: f64,
        momentum: f64,
        lr: f64,
        dampening: f64,
        nesterov: i32,
        maximize: i32,
        is_first_step: i32,
        grad_scale: Handle,
        found_inf: Handle,
        lr_t: Handle,
    ) -> *mut c_char;
    fn ft_fused_adagrad_(
        params: *const Handle,
        grads: *const Handle,
        state_sums: *const Handle,
        state_steps: *const Handle,
        n: usize,
        lr: f64,
        lr_decay: f64,
        weight_decay: f64,
        eps: f64,
        maximize: i32,
        grad_scale: Handle,
        found_inf: Handle,
        lr_t: Handle,
    ) -> *mut c_char;
    fn ft_amp_foreach_non_finite_check_and_unscale_(
        grads: *const Handle,
        n: usize,
        found_inf: Handle,
        inv_scale: Handle,
    ) -> *mut c_char;
    fn ft_cpu_any_nonfinite(ts: *const Handle, n: usize, out: *mut i32) -> *mut c_char;
    fn ft_cpu_scalars_add_(ts: *const Handle, n: usize, v: f64) -> *mut c_char;
    fn ft_amp_update_scale_(
        scale: Handle,
        growth_tracker: Handle,
        found_inf: Handle,
        growth_factor: f64,
        backoff_factor: f64,
        growth_interval: i64,
    ) -> *mut c_char;
    fn ft_foreach_clamp_min_(s: *const Handle, n: usize, v: f64) -> *mut c_char;
    fn ft_foreach_clamp_max_(s: *const Handle, n: usize, v: f64) -> *mut c_char;
    fn ft_autocast_get(device_type: i32, enabled: *mut i32, dtype: *mut i32) -> *mut c_char;
    fn ft_autocast_set(device_type: i32, enabled: i32, dtype: i32) -> *mut c_char;
    fn ft_autocast_increment_nesting(depth: *mut i32) -> *mut c_char;
    fn ft_autocast_decrement_nesting(depth: *mut i32) -> *mut c_char;
    fn ft_autocast_clear_cache() -> *mut c_char;
}

/// Turns the shim's return value into a Result, freeing the message.
fn check(op: &str, err: *mut c_char) -> Result<()> {
    if err.is_null() {
        return Ok(());
    }
    // SAFETY: non-null returns are NUL-terminated strings malloc'd by the shim.
    let msg = unsafe { CStr::from_ptr(err) }
        .to_string_lossy()
        .into_owned();
    unsafe { ft_free_error(err) };
    Err(Error::Torch(format!("{op}: {msg}")))
}

fn handles(ts: &[Tensor]) -> Vec<Handle> {
    ts.iter().map(|t| t.as_ptr() as Handle).collect()
}

fn handles_ref(ts: &[&Tensor]) -> Vec<Handle> {
    ts.iter().map(|t| t.as_ptr() as Handle).collect()
}

fn opt_handle(t: Option<&Tensor>) -> Handle {
    t.map_or(std::ptr::null_mut(), |t| t.as_ptr() as Handle)
}

fn same_len(op: &str, n: usize, lists: &[(&str, usize)]) -> Result<()> {
    for (name, len) in lists {
        if *len != n {
            return Err(Error::Value(format!(
                "{op}: list '{name}' has {len} tensors, expected {n}"
            )));
        }
    }
    Ok(())
}

/// Runs an in-place op over one list (nothing to do for an empty list):
/// `f(handles, len)` calls the shim.
fn in_place(
    op: &str,
    ts: &[&Tensor],
    f: impl FnOnce(*const Handle, usize) -> *mut c_char,
) -> Result<()> {
    if ts.is_empty() {
        return Ok(());
    }
    let hs = handles_ref(ts);
    check(op, f(hs.as_ptr(), hs.len()))
}

/// Runs an out-of-place op over one list: `f(handles, len, out)` fills one
/// new tensor per input.
fn outputs(
    op: &str,
    ts: &[&Tensor],
    f: impl FnOnce(*const Handle, usize, *mut Handle) -> *mut c_char,
) -> Result<Vec<Tensor>> {
    if ts.is_empty() {
        return Ok(Vec::new());
    }
    let hs = handles_ref(ts);
    let mut out: Vec<Handle> = vec![std::ptr::null_mut(); hs.len()];
    check(op, f(hs.as_ptr(), hs.len(), out.as_mut_ptr()))?;
    Ok(take_outputs(out))
}

/// Wraps tensors returned by the shim (heap-allocated `at::Tensor`s).
fn take_outputs(out: Vec<Handle>) -> Vec<Tensor> {
    // SAFETY: on success the shim filled every slot with a fresh `new at::Tensor`.
    out.into_iter()
        .map(|h| unsafe { Tensor::from_ptr(h) })
        .collect()
}

/// True when both handles point at the same tensor (not merely equal data).
pub fn is_same(a: &Tensor, b: &Tensor) -> bool {
    // SAFETY: both are live tensors; is_same only compares impl pointers.
    unsafe { ft_is_same(a.as_ptr() as Handle, b.as_ptr() as Handle) != 0 }
}

/// Makes the C++ handle behind `dst` point at `src`'s tensor (an undefined
/// tensor when `src` is one); `dst`'s Rust value is untouched, so shared
/// references to it stay valid and see the new tensor.
pub fn assign(dst: &Tensor, src: &Tensor) {
    // SAFETY: both are live handles; at::Tensor's copy assignment only moves
    // an intrusive pointer (no exception, no reallocation of `dst`).
    unsafe { ft_assign(dst.as_ptr() as Handle, src.as_ptr() as Handle) }
}

/// The tensor's device as torch names it (`cpu`, `cuda:0`, `meta`).
pub fn device_str(t: &Tensor) -> String {
    let mut buf = [0 as c_char; 64];
    // SAFETY: a live tensor; the shim writes at most 64 bytes, NUL included.
    unsafe { ft_device_str(t.as_ptr() as Handle, buf.as_mut_ptr(), buf.len()) };
    // SAFETY: NUL-terminated by the shim.
    unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// Resets every tensor's `.grad` to None (undefined): `zero_grad(set_to_none=True)`.
pub fn grads_set_to_none(tensors: &[&Tensor]) -> Result<()> {
    let hs = handles_ref(tensors);
    check("zero_grad", unsafe {
        ft_grads_set_to_none(hs.as_ptr(), hs.len())
    })
}

/// `torch.linalg.vector_norm(t, ord)` over all elements (tch lacks it).
pub fn vector_norm(t: &Tensor, ord: f64) -> Result<Tensor> {
    let mut out: Handle = std::ptr::null_mut();
    check("linalg_vector_norm", unsafe {
        ft_vector_norm(t.as_ptr() as Handle, ord, &mut out)
    })?;
    Ok(unsafe { Tensor::from_ptr(out) })
}

/// `torch.nn.functional.elu(t, alpha)`.
pub fn elu(t: &Tensor, alpha: f64) -> Result<Tensor> {
    let mut out: Handle = std::ptr::null_mut();
    check("elu", unsafe {
        ft_elu(t.as_ptr() as Handle, alpha, &mut out)
    })?;
    Ok(unsafe { Tensor::from_ptr(out) })
}

/// `torch.nn.functional.leaky_relu(t, slope)`.
pub fn leaky_relu(t: &Tensor, slope: f64) -> Result<Tensor> {
    let mut out: Handle = std::ptr::null_mut();
    check("leaky_relu", unsafe {
        ft_leaky_relu(t.as_ptr() as Handle, slope, &mut out)
    })?;
    Ok(unsafe { Tensor::from_ptr(out) })
}

/// `torch.nn.functional.linear(x, weight, bias)`. A 2-D plain CPU input with
/// a bias records one autograd node instead of addmm's and the transpose's,
/// with the same ATen calls and values; everything else goes to ATen.
pub fn linear(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let mut out: Handle = std::ptr::null_mut();
    let b = bias.map_or(std::ptr::null_mut(), |b| b.as_ptr() as Handle);
    check("linear", unsafe {
        ft_linear(x.as_ptr() as Handle, weight.as_ptr() as Handle, b, &mut out)
    })?;
    Ok(unsafe { Tensor::from_ptr(out) })
}

/// `torch.nn.functional.softplus(t, beta, threshold)`.
pub fn softplus(t: &Tensor, beta: f64, threshold: f64) -> Result<Tensor> {
    let mut out: Handle = std::ptr::null_mut();
    check("softplus", unsafe {
        ft_softplus(t.as_ptr() as Handle, beta, threshold, &mut out)
    })?;
    Ok(unsafe { Tensor::from_ptr(out) })
}

/// `torch._foreach_norm(tensors, ord)`: one 0-dim tensor per input.
pub fn foreach_norm(tensors: &[&Tensor], ord: f64) -> Result<Vec<Tensor>> {
    outputs("_foreach_norm", tensors, |p, n, o| unsafe {
        ft_foreach_norm(p, n, ord, o)
    })
}

/// `torch._foreach_sqrt(tensors)`.
pub fn foreach_sqrt(tensors: &[&Tensor]) -> Result<Vec<Tensor>> {
    outputs("_foreach_sqrt", tensors, |p, n, o| unsafe {
        ft_foreach_sqrt(p, n, o)
    })
}

/// In place: `t *= scalar` for every tensor.
pub fn foreach_mul_scalar_(tensors: &[&Tensor], scalar: f64) -> Result<()> {
    in_place("_foreach_mul_", tensors, |p, n| unsafe {
        ft_foreach_mul_scalar_(p, n, scalar)
    })
}

/// In place: `t *= other` for every tensor, `other` a (0-dim) tensor; no host sync.
pub fn foreach_mul_tensor_(tensors: &[&Tensor], other: &Tensor) -> Result<()> {
    in_place("_foreach_mul_", tensors, |p, n| unsafe {
        ft_foreach_mul_tensor_(p, n, other.as_ptr() as Handle)
    })
}

/// In place: `t += scalar`.
pub fn foreach_add_scalar_(tensors: &[&Tensor], scalar: f64) -> Result<()> {
    in_place("_foreach_add_", tensors, |p, n| unsafe {
        ft_foreach_add_scalar_(p, n, scalar)
    })
}

/// In place: `a += alpha * b` pairwise.
pub fn foreach_add_list_(a: &[&Tensor], b: &[&Tensor], alpha: f64) -> Result<()> {
    same_len("_foreach_add_", a.len(), &[("other", b.len())])?;
    if a.is_empty() {
        return Ok(());
    }
    let (ha, hb) = (handles_ref(a), handles_ref(b));
    check("_foreach_add_", unsafe {
        ft_foreach_add_list_(ha.as_ptr(), hb.as_ptr(), ha.len(), alpha)
    })
}

/// In place: `s += value * t1 * t2` pairwise.
pub fn foreach_addcmul_(s: &[&Tensor], t1: &[&Tensor], t2: &[&Tensor], value: f64) -> Result<()> {
    same_len(
        "_foreach_addcmul_",
        s.len(),
        &[("tensor1", t1.len()), ("tensor2", t2.len())],
    )?;
    if s.is_empty() {
        return Ok(());
    }
    let (hs, h1, h2) = (handles_ref(s), handles_ref(t1), handles_ref(t2));
    check("_foreach_addcmul_", unsafe {
        ft_foreach_addcmul_(hs.as_ptr(), h1.as_ptr(), h2.as_ptr(), hs.len(), value)
    })
}

/// In place: `s += value * t1 / t2` pairwise.
pub fn foreach_addcdiv_(s: &[&Tensor], t1: &[&Tensor], t2: &[&Tensor], value: f64) -> Result<()> {
    same_len(
        "_foreach_addcdiv_",
        s.len(),
        &[("tensor1", t1.len()), ("tensor2", t2.len())],
    )?;
    if s.is_empty() {
        return Ok(());
    }
    let (hs, h1, h2) = (handles_ref(s), handles_ref(t1), handles_ref(t2));
    check("_foreach_addcdiv_", unsafe {
        ft_foreach_addcdiv_(hs.as_ptr(), h1.as_ptr(), h2.as_ptr(), hs.len(), value)
    })
}

/// In place: `s = s + weight * (end - s)` pairwise.
pub fn foreach_lerp_(s: &[&Tensor], ends: &[&Tensor], weight: f64) -> Result<()> {
    same_len("_foreach_lerp_", s.len(), &[("tensors1", ends.len())])?;
    if s.is_empty() {
        return Ok(());
    }
    let (hs, he) = (handles_ref(s), handles_ref(ends));
    check("_foreach_lerp_", unsafe {
        ft_foreach_lerp_(hs.as_ptr(), he.as_ptr(), hs.len(), weight)
    })
}

/// In place: `t /= scalar`.
pub fn foreach_div_scalar_(tensors: &[&Tensor], scalar: f64) -> Result<()> {
    in_place("_foreach_div_", tensors, |p, n| unsafe {
        ft_foreach_div_scalar_(p, n, scalar)
    })
}

/// In place: `a /= b` pairwise.
pub fn foreach_div_list_(a: &[&Tensor], b: &[&Tensor]) -> Result<()> {
    same_len("_foreach_div_", a.len(), &[("other", b.len())])?;
    if a.is_empty() {
        return Ok(());
    }
    let (ha, hb) = (handles_ref(a), handles_ref(b));
    check("_foreach_div_", unsafe {
        ft_foreach_div_list_(ha.as_ptr(), hb.as_ptr(), ha.len())
    })
}

/// In place: zero every tensor.
pub fn foreach_zero_(tensors: &[&Tensor]) -> Result<()> {
    in_place("_foreach_zero_", tensors, |p, n| unsafe {
        ft_foreach_zero_(p, n)
    })
}

/// In place: `t_i /= scalars_i`.
pub fn foreach_div_scalarlist_(tensors: &[&Tensor], scalars: &[f64]) -> Result<()> {
    same_len(
        "_foreach_div_",
        tensors.len(),
        &[("scalars", scalars.len())],
    )?;
    in_place("_foreach_div_", tensors, |p, n| unsafe {
        ft_foreach_div_scalarlist_(p, scalars.as_ptr(), n)
    })
}

/// In place: `t_i *= scalars_i`.
pub fn foreach_mul_scalarlist_(tensors: &[&Tensor], scalars: &[f64]) -> Result<()> {
    same_len(
        "_foreach_mul_",
        tensors.len(),
        &[("scalars", scalars.len())],
    )?;
    in_place("_foreach_mul_", tensors, |p, n| unsafe {
        ft_foreach_mul_scalarlist_(p, scalars.as_ptr(), n)
    })
}

/// In place: `t_i += scalars_i`.
pub fn foreach_add_scalarlist_(tensors: &[&Tensor], scalars: &[f64]) -> Result<()> {
    same_len(
        "_foreach_add_",
        tensors.len(),
        &[("scalars", scalars.len())],
    )?;
    in_place("_foreach_add_", tensors, |p, n| unsafe {
        ft_foreach_add_scalarlist_(p, scalars.as_ptr(), n)
    })
}

/// In place: `s_i += scalars_i * t1_i / t2_i`.
pub fn foreach_addcdiv_scalarlist_(
    s: &[&Tensor],
    t1: &[&Tensor],
    t2: &[&Tensor],
    scalars: &[f64],
) -> Result<()> {
    same_len(
        "_foreach_addcdiv_",
        s.len(),
        &[
            ("tensor1", t1.len()),
            ("tensor2", t2.len()),
            ("scalars", scalars.len()),
        ],
    )?;
    if s.is_empty() {
        return Ok(());
    }
    let (hs, h1, h2) = (handles_ref(s), handles_ref(t1), handles_ref(t2));
    check("_foreach_addcdiv_", unsafe {
        ft_foreach_addcdiv_scalarlist_(
            hs.as_ptr(),
            h1.as_ptr(),
            h2.as_ptr(),
            scalars.as_ptr(),
            hs.len(),
        )
    })
}

/// In place: `a_i = max(a_i, b_i)` elementwise.
pub fn foreach_maximum_(a: &[&Tensor], b: &[&Tensor]) -> Result<()> {
    same_len("_foreach_maximum_", a.len(), &[("other", b.len())])?;
    if a.is_empty() {
        return Ok(());
    }
    let (ha, hb) = (handles_ref(a), handles_ref(b));
    check("_foreach_maximum_", unsafe {
        ft_foreach_maximum_(ha.as_ptr(), hb.as_ptr(), ha.len())
    })
}

/// In place: `a_i *= b_i` pairwise.
pub fn foreach_mul_list_(a: &[&Tensor], b: &[&Tensor]) -> Result<()> {
    same_len("_foreach_mul_", a.len(), &[("other", b.len())])?;
    if a.is_empty() {
        return Ok(());
    }
    let (ha, hb) = (handles_ref(a), handles_ref(b));
    check("_foreach_mul_", unsafe {
        ft_foreach_mul_list_(ha.as_ptr(), hb.as_ptr(), ha.len())
    })
}

/// `torch._foreach_add(a, b, alpha=alpha)` (out of place).
pub fn foreach_add_list(a: &[&Tensor], b: &[&Tensor], alpha: f64) -> Result<Vec<Tensor>> {
    same_len("_foreach_add", a.len(), &[("other", b.len())])?;
    if a.is_empty() {
        return Ok(Vec::new());
    }
    let (ha, hb) = (handles_ref(a), handles_ref(b));
    let mut out: Vec<Handle> = vec![std::ptr::null_mut(); ha.len()];
    check("_foreach_add", unsafe {
        ft_foreach_add_list(ha.as_ptr(), hb.as_ptr(), ha.len(), alpha, out.as_mut_ptr())
    })?;
    Ok(take_outputs(out))
}

/// `torch._foreach_addcmul(s, t1, t2, value)` (out of place).
pub fn foreach_addcmul(
    s: &[&Tensor],
    t1: &[&Tensor],
    t2: &[&Tensor],
    value: f64,
) -> Result<Vec<Tensor>> {
    same_len(
        "_foreach_addcmul",
        s.len(),
        &[("tensor1", t1.len()), ("tensor2", t2.len())],
    )?;
    if s.is_empty() {
        return Ok(Vec::new());
    }
    let (hs, h1, h2) = (handles_ref(s), handles_ref(t1), handles_ref(t2));
    let mut out: Vec<Handle> = vec![std::ptr::null_mut(); hs.len()];
    check("_foreach_addcmul", unsafe {
        ft_foreach_addcmul(
            hs.as_ptr(),
            h1.as_ptr(),
            h2.as_ptr(),
            hs.len(),
            value,
            out.as_mut_ptr(),
        )
    })?;
    Ok(take_outputs(out))
}

/// In place: `t = sqrt(t)`.
pub fn foreach_sqrt_(tensors: &[&Tensor]) -> Result<()> {
    in_place("_foreach_sqrt_", tensors, |p, n| unsafe {
        ft_foreach_sqrt_(p, n)
    })
}

/// In place: `t = 1 / t`.
pub fn foreach_reciprocal_(tensors: &[&Tensor]) -> Result<()> {
    in_place("_foreach_reciprocal_", tensors, |p, n| unsafe {
        ft_foreach_reciprocal_(p, n)
    })
}

/// `torch._foreach_mul(tensors, scalar)` (out of place).
pub fn foreach_mul_scalar(tensors: &[&Tensor], scalar: f64) -> Result<Vec<Tensor>> {
    outputs("_foreach_mul", tensors, |p, n, o| unsafe {
        ft_foreach_mul_scalar(p, n, scalar, o)
    })
}

/// `torch._foreach_abs(tensors)`.
pub fn foreach_abs(tensors: &[&Tensor]) -> Result<Vec<Tensor>> {
    outputs("_foreach_abs", tensors, |p, n, o| unsafe {
        ft_foreach_abs(p, n, o)
    })
}

/// `torch._foreach_neg(tensors)`.
pub fn foreach_neg(tensors: &[&Tensor]) -> Result<Vec<Tensor>> {
    outputs("_foreach_neg", tensors, |p, n, o| unsafe {
        ft_foreach_neg(p, n, o)
    })
}

/// Tensor lists for the fused Adam kernels; all of length n except
/// `max_exp_avg_sqs`, which is empty unless amsgrad.
pub struct AdamLists<'a> {
    pub params: &'a [Tensor],
    pub grads: &'a [Tensor],
    pub exp_avgs: &'a [Tensor],
    pub exp_avg_sqs: &'a [Tensor],
    pub max_exp_avg_sqs: &'a [Tensor],
    pub state_steps: &'a [Tensor],
}

/// Hyperparameters of one fused Adam(W) call.
#[derive(Clone, Copy, Debug)]
pub struct AdamHyper {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub weight_decay: f64,
    pub eps: f64,
    pub amsgrad: bool,
    pub maximize: bool,
    /// true: `_fused_adamw_` (decoupled decay); false: `_fused_adam_` (L2 decay).
    pub decoupled: bool,
}

/// `torch._fused_adam_` / `torch._fused_adamw_`: one kernel launch for the whole
/// list. The kernel reads `state_steps` (already incremented by the caller).
pub fn fused_adam_(
    l: &AdamLists,
    h: AdamHyper,
    grad_scale: Option<&Tensor>,
    found_inf: Option<&Tensor>,
    lr_t: Option<&Tensor>,
) -> Result<()> {
    let n = l.params.len();
    let n_max = if h.amsgrad { n } else { 0 };
    same_len(
        "_fused_adam_",
        n,
        &[
            ("grads", l.grads.len()),
            ("exp_avgs", l.exp_avgs.len()),
            ("exp_avg_sqs", l.exp_avg_sqs.len()),
            ("state_steps", l.state_steps.len()),
        ],
    )?;
    same_len(
        "_fused_adam_",
        n_max,
        &[("max_exp_avg_sqs", l.max_exp_avg_sqs.len())],
    )?;
    if n == 0 {
        return Ok(());
    }
    let (p, g, m, v, vm, s) = (
        handles(l.params),
        handles(l.grads),
        handles(l.exp_avgs),
        handles(l.exp_avg_sqs),
        handles(l.max_exp_avg_sqs),
        handles(l.state_steps),
    );
    let op = if h.decoupled {
        "_fused_adamw_"
    } else {
        "_fused_adam_"
    };
    check(op, unsafe {
        ft_fused_adam_(
            h.decoupled as i32,
            p.as_ptr(),
            g.as_ptr(),
            m.as_ptr(),
            v.as_ptr(),
            vm.as_ptr(),
            n_max,
            s.as_ptr(),
            n,
            h.lr,
            h.beta1,
            h.beta2,
            h.weight_decay,
            h.eps,
            h.amsgrad as i32,
            h.maximize as i32,
            opt_handle(grad_scale),
            opt_handle(found_inf),
            opt_handle(lr_t),
        )
    })
}

/// Hyperparameters of one fused SGD call.
#[derive(Clone, Copy, Debug)]
pub struct SgdHyper {
    pub lr: f64,
    pub momentum: f64,
    pub dampening: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
    pub maximize: bool,
    pub is_first_step: bool,
}

/// `torch._fused_sgd_`. `momentum_buffers` is empty when momentum is 0.
pub fn fused_sgd_(
    params: &[Tensor],
    grads: &[Tensor],
    momentum_buffers: &[Tensor],
    h: SgdHyper,
    grad_scale: Option<&Tensor>,
    found_inf: Option<&Tensor>,
    lr_t: Option<&Tensor>,
) -> Result<()> {
    let n = params.len();
    same_len("_fused_sgd_", n, &[("grads", grads.len())])?;
    if !momentum_buffers.is_empty() {
        same_len(
            "_fused_sgd_",
            n,
            &[("momentum_buffer_list", momentum_buffers.len())],
        )?;
    }
    if n == 0 {
        return Ok(());
    }
    let (p, g, b) = (handles(params), handles(grads), handles(momentum_buffers));
    check("_fused_sgd_", unsafe {
        ft_fused_sgd_(
            p.as_ptr(),
            g.as_ptr(),
            b.as_ptr(),
            b.len(),
            n,
            h.weight_decay,
            h.momentum,
            h.lr,
            h.dampening,
            h.nesterov as i32,
            h.maximize as i32,
            h.is_first_step as i32,
            opt_handle(grad_scale),
            opt_handle(found_inf),
            opt_handle(lr_t),
        )
    })
}

/// Hyperparameters of one fused Adagrad call.
#[derive(Clone, Copy, Debug)]
pub struct AdagradHyper {
    pub lr: f64,
    pub lr_decay: f64,
    pub weight_decay: f64,
    pub eps: f64,
    pub maximize: bool,
}

/// `torch._fused_adagrad_`.
#[allow(clippy::too_many_arguments)] // ATen's own argument list
pub fn fused_adagrad_(
    params: &[Tensor],
    grads: &[Tensor],
    state_sums: &[Tensor],
    state_steps: &[Tensor],
    h: AdagradHyper,
    grad_scale: Option<&Tensor>,
    found_inf: Option<&Tensor>,
    lr_t: Option<&Tensor>,
) -> Result<()> {
    let n = params.len();
    same_len(
        "_fused_adagrad_",
        n,
        &[
            ("grads", grads.len()),
            ("state_sums", state_sums.len()),
            ("state_steps", state_steps.len()),
        ],
    )?;
    if n == 0 {
        return Ok(());
    }
    let (p, g, s, st) = (
        handles(params),
        handles(grads),
        handles(state_sums),
        handles(state_steps),
    );
    check("_fused_adagrad_", unsafe {
        ft_fused_adagrad_(
            p.as_ptr(),
            g.as_ptr(),
            s.as_ptr(),
            st.as_ptr(),
            n,
            h.lr,
            h.lr_decay,
            h.weight_decay,
            h.eps,
            h.maximize as i32,
            opt_handle(grad_scale),
            opt_handle(found_inf),
            opt_handle(lr_t),
        )
    })
}

/// `torch._amp_foreach_non_finite_check_and_unscale_`: grads *= inv_scale, and
/// found_inf (a 1-element float tensor) is set to 1 if any value is inf/nan.
pub fn amp_non_finite_check_and_unscale_(
    grads: &[&Tensor],
    found_inf: &Tensor,
    inv_scale: &Tensor,
) -> Result<()> {
    if grads.is_empty() {
        return Ok(());
    }
    let hs = handles_ref(grads);
    check("_amp_foreach_non_finite_check_and_unscale_", unsafe {
        ft_amp_foreach_non_finite_check_and_unscale_(
            hs.as_ptr(),
            hs.len(),
            found_inf.as_ptr() as Handle,
            inv_scale.as_ptr() as Handle,
        )
    })
}

/// Whether any of `ts` (CPU tensors) holds an inf or NaN: contiguous
/// float32/float64 by a read-only host scan (no kernel, no write pass), the
/// rest (strided, sparse, other dtypes) by ATen's `isfinite`.
pub fn cpu_any_nonfinite(ts: &[&Tensor]) -> Result<bool> {
    let hs = handles_ref(ts);
    let mut out: i32 = 0;
    check("non-finite scan", unsafe {
        ft_cpu_any_nonfinite(hs.as_ptr(), hs.len(), &mut out)
    })?;
    Ok(out != 0)
}

/// `t += v` for one-element CPU float32/float64 tensors (step counters),
/// written directly instead of through a dispatched `_foreach_add_`.
pub fn cpu_scalars_add_(ts: &[&Tensor], v: f64) -> Result<()> {
    let hs = handles_ref(ts);
    check("step-counter add", unsafe {
        ft_cpu_scalars_add_(hs.as_ptr(), hs.len(), v)
    })
}

/// `torch._amp_update_scale_`: grows or backs off `scale` in place, on device.
pub fn amp_update_scale_(
    scale: &Tensor,
    growth_tracker: &Tensor,
    found_inf: &Tensor,
    growth_factor: f64,
    backoff_factor: f64,
    growth_interval: i64,
) -> Result<()> {
    check("_amp_update_scale_", unsafe {
        ft_amp_update_scale_(
            scale.as_ptr() as Handle,
            growth_tracker.as_ptr() as Handle,
            found_inf.as_ptr() as Handle,
            growth_factor,
            backoff_factor,
            growth_interval,
        )
    })
}

/// In place: `t = max(t, scalar)` (`torch._foreach_clamp_min_`).
pub fn foreach_clamp_min_(tensors: &[&Tensor], scalar: f64) -> Result<()> {
    in_place("_foreach_clamp_min_", tensors, |p, n| unsafe {
        ft_foreach_clamp_min_(p, n, scalar)
    })
}

/// In place: `t = min(t, scalar)` (`torch._foreach_clamp_max_`).
pub fn foreach_clamp_max_(tensors: &[&Tensor], scalar: f64) -> Result<()> {
    in_place("_foreach_clamp_max_", tensors, |p, n| unsafe {
        ft_foreach_clamp_max_(p, n, scalar)
    })
}

/// This thread's autocast state for a device type (a `c10::DeviceType`
/// code): (enabled, dtype as a `c10::ScalarType` code).
pub fn autocast_get(device_type: i32) -> Result<(bool, i32)> {
    let (mut enabled, mut dtype) = (0i32, 0i32);
    check("autocast", unsafe {
        ft_autocast_get(device_type, &mut enabled, &mut dtype)
    })?;
    Ok((enabled != 0, dtype))
}

/// Sets this thread's autocast flag and dtype for a device type.
pub fn autocast_set(device_type: i32, enabled: bool, dtype: i32) -> Result<()> {
    check("autocast", unsafe {
        ft_autocast_set(device_type, i32::from(enabled), dtype)
    })
}

/// `at::autocast::increment_nesting()`: the new depth.
pub fn autocast_increment_nesting() -> Result<i32> {
    let mut depth = 0i32;
    check("autocast", unsafe {
        ft_autocast_increment_nesting(&mut depth)
    })?;
    Ok(depth)
}

/// `at::autocast::decrement_nesting()`: the new depth.
pub fn autocast_decrement_nesting() -> Result<i32> {
    let mut depth = 0i32;
    check("autocast", unsafe {
        ft_autocast_decrement_nesting(&mut depth)
    })?;
    Ok(depth)
}

/// Drops autocast's cache of casted weights.
pub fn autocast_clear_cache() -> Result<()> {
    check("autocast", unsafe { ft_autocast_clear_cache() })
}
