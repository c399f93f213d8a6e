//! Safe Rust wrappers over the C++ shim: ATen's multi-tensor (`_foreach_*`),
//! fused optimizer and AMP kernels, which tch does not expose.
//!
//! Every function takes `tch::Tensor` slices, checks list lengths (ATen would
//! index out of bounds otherwise) and turns a C++ exception into `Error::Torch`.
//! One table (`shim!` below) declares each C entry point with its safe
//! wrapper; the few whose arguments do not fit its shapes (the fused
//! kernels' structs, out-parameters) are declared there `raw` and wrapped by hand.

use std::ffi::{c_char, CStr};

use tch::Tensor;

use crate::{Error, Result};

pub mod cuda_graph;
pub mod dist;
pub mod recompute;

type Handle = *mut torch_sys::C_tensor;

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

/// `None` lengths (arguments that are not lists) are not checked.
fn same_len(op: &str, n: usize, lists: &[(&str, Option<usize>)]) -> Result<()> {
    for (name, len) in lists {
        match len {
            Some(len) if *len != n => {
                return Err(Error::Value(format!(
                    "{op}: list '{name}' has {len} tensors, expected {n}"
                )))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Wraps tensors returned by the shim (heap-allocated `at::Tensor`s).
fn take_outputs(out: Vec<Handle>) -> Vec<Tensor> {
    // SAFETY: on success the shim filled every slot with a fresh `new at::Tensor`.
    out.into_iter()
        .map(|h| unsafe { Tensor::from_ptr(h) })
        .collect()
}

/// A Rust argument as the shim takes it (its C type is written in the table,
/// `=> Handle`, where it differs); a slice also has a length to check.
trait CArg {
    type C;
    fn c(&self) -> Self::C;
    fn len(&self) -> Option<usize> {
        None
    }
}

macro_rules! plain_c_arg {
    ($($t:ty),*) => {$(
        impl CArg for $t {
            type C = $t;
            fn c(&self) -> $t {
                *self
            }
        }
    )*};
}
plain_c_arg!(f64, i64, i32);

impl CArg for bool {
    type C = i32;
    fn c(&self) -> i32 {
        i32::from(*self)
    }
}

impl CArg for &Tensor {
    type C = Handle;
    fn c(&self) -> Handle {
        self.as_ptr() as Handle
    }
}

impl CArg for Option<&Tensor> {
    type C = Handle;
    fn c(&self) -> Handle {
        opt_handle(*self)
    }
}

impl CArg for &[f64] {
    type C = *const f64;
    fn c(&self) -> *const f64 {
        self.as_ptr()
    }
    fn len(&self) -> Option<usize> {
        Some(<[f64]>::len(self))
    }
}

/// The C type of an argument: the one written after `=>`, else its Rust type.
macro_rules! c_ty {
    ($c:ty, $rust:ty) => {
        $c
    };
    (, $rust:ty) => {
        $rust
    };
}

/// The table's shapes, each one C signature convention:
/// - `in_place`: tensor lists (the first, then named ones of the same
///   length), `n`, then the other arguments; an empty list does nothing.
/// - `outputs`: the same, then one new tensor per input written to `out`.
/// - `tensor`: the arguments, then one new tensor written to `out`.
/// - `call`: the arguments only.
/// - `raw`: the declaration only (wrapped by hand below).
macro_rules! shim {
    () => {};
    ($(#[$doc:meta])* in_place fn $name:ident($first:ident $(, $list:ident $lname:literal)*
        $(; $($arg:ident: $aty:ty $(=> $cty:ty)?),+)?) = $ffi:ident($op:literal); $($rest:tt)*) => {
        extern "C" {
            fn $ffi(first: *const Handle $(, $list: *const Handle)*, n: usize
                $($(, $arg: c_ty!($($cty)?, $aty))+)?) -> *mut c_char;
        }
        $(#[$doc])*
        pub fn $name($first: &[&Tensor] $(, $list: &[&Tensor])* $($(, $arg: $aty)+)?) -> Result<()> {
            let n = $first.len();
            same_len($op, n, &[$(($lname, Some($list.len())),)* $($((stringify!($arg), CArg::len(&$arg)),)+)?])?;
            if n == 0 {
                return Ok(());
            }
            let first = handles_ref($first);
            $(let $list = handles_ref($list);)*
            // SAFETY: every list holds n live handles; the shim catches C++ exceptions.
            check($op, unsafe { $ffi(first.as_ptr() $(, $list.as_ptr())*, n $($(, CArg::c(&$arg))+)?) })
        }
        shim!($($rest)*);
    };
    ($(#[$doc:meta])* outputs fn $name:ident($first:ident $(, $list:ident $lname:literal)*
        $(; $($arg:ident: $aty:ty $(=> $cty:ty)?),+)?) = $ffi:ident($op:literal); $($rest:tt)*) => {
        extern "C" {
            fn $ffi(first: *const Handle $(, $list: *const Handle)*, n: usize
                $($(, $arg: c_ty!($($cty)?, $aty))+)?, out: *mut Handle) -> *mut c_char;
        }
        $(#[$doc])*
        pub fn $name($first: &[&Tensor] $(, $list: &[&Tensor])* $($(, $arg: $aty)+)?) -> Result<Vec<Tensor>> {
            let n = $first.len();
            same_len($op, n, &[$(($lname, Some($list.len())),)*])?;
            if n == 0 {
                return Ok(Vec::new());
            }
            let first = handles_ref($first);
            $(let $list = handles_ref($list);)*
            let mut out: Vec<Handle> = vec![std::ptr::null_mut(); n];
            // SAFETY: every list holds n live handles and `out` n slots.
            check($op, unsafe {
                $ffi(first.as_ptr() $(, $list.as_ptr())*, n $($(, CArg::c(&$arg))+)?, out.as_mut_ptr())
            })?;
            Ok(take_outputs(out))
        }
        shim!($($rest)*);
    };
    ($(#[$doc:meta])* tensor fn $name:ident($($arg:ident: $aty:ty $(=> $cty:ty)?),+)
        = $ffi:ident($op:literal); $($rest:tt)*) => {
        extern "C" {
            fn $ffi($($arg: c_ty!($($cty)?, $aty),)+ out: *mut Handle) -> *mut c_char;
        }
        $(#[$doc])*
        pub fn $name($($arg: $aty),+) -> Result<Tensor> {
            let mut out: Handle = std::ptr::null_mut();
            // SAFETY: live handles; on success the shim wrote a fresh `new at::Tensor`.
            check($op, unsafe { $ffi($(CArg::c(&$arg),)+ &mut out) })?;
            Ok(unsafe { Tensor::from_ptr(out) })
        }
        shim!($($rest)*);
    };
    ($(#[$doc:meta])* call fn $name:ident($($arg:ident: $aty:ty $(=> $cty:ty)?),*)
        = $ffi:ident($op:literal); $($rest:tt)*) => {
        extern "C" {
            fn $ffi($($arg: c_ty!($($cty)?, $aty)),*) -> *mut c_char;
        }
        $(#[$doc])*
        pub fn $name($($arg: $aty),*) -> Result<()> {
            // SAFETY: live handles; the shim catches C++ exceptions.
            check($op, unsafe { $ffi($(CArg::c(&$arg)),*) })
        }
        shim!($($rest)*);
    };
    (raw fn $ffi:ident($($arg:ident: $cty:ty),*) $(-> $ret:ty)?; $($rest:tt)*) => {
        extern "C" {
            fn $ffi($($arg: $cty),*) $(-> $ret)?;
        }
        shim!($($rest)*);
    };
}

shim! {
    raw fn ft_free_error(err: *mut c_char);
    raw fn ft_is_same(a: Handle, b: Handle) -> i32;
    raw fn ft_assign(dst: Handle, src: Handle);
    raw fn ft_device_str(t: Handle, buf: *mut c_char, cap: usize);
    raw fn ft_cpu_any_nonfinite(ts: *const Handle, n: usize, out: *mut i32) -> *mut c_char;
    raw fn ft_autocast_get(device_type: i32, enabled: *mut i32, dtype: *mut i32) -> *mut c_char;
    raw fn ft_autocast_increment_nesting(depth: *mut i32) -> *mut c_char;
    raw fn ft_autocast_decrement_nesting(depth: *mut i32) -> *mut c_char;

    /// Resets every tensor's `.grad` to None (undefined): `zero_grad(set_to_none=True)`.
    in_place fn grads_set_to_none(tensors) = ft_grads_set_to_none("zero_grad");

    /// `torch.linalg.vector_norm(t, ord)` over all elements (tch lacks it).
    tensor fn vector_norm(t: &Tensor => Handle, ord: f64) = ft_vector_norm("linalg_vector_norm");
    /// `torch.nn.functional.elu(t, alpha)`.
    tensor fn elu(t: &Tensor => Handle, alpha: f64) = ft_elu("elu");
    /// `torch.nn.functional.leaky_relu(t, slope)`.
    tensor fn leaky_relu(t: &Tensor => Handle, slope: f64) = ft_leaky_relu("leaky_relu");
    /// `torch.nn.functional.linear(x, weight, bias)`. A 2-D plain CPU input with
    /// a bias records one autograd node instead of addmm's and the transpose's,
    /// with the same ATen calls and values; everything else goes to ATen.
    tensor fn linear(x: &Tensor => Handle, weight: &Tensor => Handle, bias: Option<&Tensor> => Handle)
        = ft_linear("linear");
    /// `torch.nn.functional.softplus(t, beta, threshold)`.
    tensor fn softplus(t: &Tensor => Handle, beta: f64, threshold: f64) = ft_softplus("softplus");

    /// `torch._foreach_norm(tensors, ord)`: one 0-dim tensor per input.
    outputs fn foreach_norm(tensors; ord: f64) = ft_foreach_norm("_foreach_norm");
    /// `torch._foreach_sqrt(tensors)`.
    outputs fn foreach_sqrt(tensors) = ft_foreach_sqrt("_foreach_sqrt");
    /// `torch._foreach_mul(tensors, scalar)` (out of place).
    outputs fn foreach_mul_scalar(tensors; scalar: f64) = ft_foreach_mul_scalar("_foreach_mul");
    /// `torch._foreach_abs(tensors)`.
    outputs fn foreach_abs(tensors) = ft_foreach_abs("_foreach_abs");
    /// `torch._foreach_neg(tensors)`.
    outputs fn foreach_neg(tensors) = ft_foreach_neg("_foreach_neg");
    /// `torch._foreach_add(a, b, alpha=alpha)` (out of place).
    outputs fn foreach_add_list(a, b "other"; alpha: f64) = ft_foreach_add_list("_foreach_add");
    /// `torch._foreach_addcmul(s, t1, t2, value)` (out of place).
    outputs fn foreach_addcmul(s, t1 "tensor1", t2 "tensor2"; value: f64)
        = ft_foreach_addcmul("_foreach_addcmul");

    /// In place: `t *= scalar` for every tensor.
    in_place fn foreach_mul_scalar_(tensors; scalar: f64) = ft_foreach_mul_scalar_("_foreach_mul_");
    /// In place: `t *= other` for every tensor, `other` a (0-dim) tensor; no host sync.
    in_place fn foreach_mul_tensor_(tensors; other: &Tensor => Handle)
        = ft_foreach_mul_tensor_("_foreach_mul_");
    /// In place: `t += scalar`.
    in_place fn foreach_add_scalar_(tensors; scalar: f64) = ft_foreach_add_scalar_("_foreach_add_");
    /// In place: `t /= scalar`.
    in_place fn foreach_div_scalar_(tensors; scalar: f64) = ft_foreach_div_scalar_("_foreach_div_");
    /// In place: zero every tensor.
    in_place fn foreach_zero_(tensors) = ft_foreach_zero_("_foreach_zero_");
    /// In place: `t = sqrt(t)`.
    in_place fn foreach_sqrt_(tensors) = ft_foreach_sqrt_("_foreach_sqrt_");
    /// In place: `t = 1 / t`.
    in_place fn foreach_reciprocal_(tensors) = ft_foreach_reciprocal_("_foreach_reciprocal_");
    /// In place: `t = max(t, scalar)` (`torch._foreach_clamp_min_`).
    in_place fn foreach_clamp_min_(tensors; scalar: f64) = ft_foreach_clamp_min_("_foreach_clamp_min_");
    /// In place: `t = min(t, scalar)` (`torch._foreach_clamp_max_`).
    in_place fn foreach_clamp_max_(tensors; scalar: f64) = ft_foreach_clamp_max_("_foreach_clamp_max_");
    /// In place: `a += alpha * b` pairwise.
    in_place fn foreach_add_list_(a, b "other"; alpha: f64) = ft_foreach_add_list_("_foreach_add_");
    /// In place: `a /= b` pairwise.
    in_place fn foreach_div_list_(a, b "other") = ft_foreach_div_list_("_foreach_div_");
    /// In place: `a_i = max(a_i, b_i)` elementwise.
    in_place fn foreach_maximum_(a, b "other") = ft_foreach_maximum_("_foreach_maximum_");
    /// In place: `a_i *= b_i` pairwise.
    in_place fn foreach_mul_list_(a, b "other") = ft_foreach_mul_list_("_foreach_mul_");
    /// In place: `s = s + weight * (end - s)` pairwise.
    in_place fn foreach_lerp_(s, ends "tensors1"; weight: f64) = ft_foreach_lerp_("_foreach_lerp_");
    /// In place: `s += value * t1 * t2` pairwise.
    in_place fn foreach_addcmul_(s, t1 "tensor1", t2 "tensor2"; value: f64)
        = ft_foreach_addcmul_("_foreach_addcmul_");
    /// In place: `s += value * t1 / t2` pairwise.
    in_place fn foreach_addcdiv_(s, t1 "tensor1", t2 "tensor2"; value: f64)
        = ft_foreach_addcdiv_("_foreach_addcdiv_");
    /// In place: `t_i /= scalars_i`.
    in_place fn foreach_div_scalarlist_(tensors; scalars: &[f64] => *const f64)
        = ft_foreach_div_scalarlist_("_foreach_div_");
    /// In place: `t_i *= scalars_i`.
    in_place fn foreach_mul_scalarlist_(tensors; scalars: &[f64] => *const f64)
        = ft_foreach_mul_scalarlist_("_foreach_mul_");
    /// In place: `t_i += scalars_i`.
    in_place fn foreach_add_scalarlist_(tensors; scalars: &[f64] => *const f64)
        = ft_foreach_add_scalarlist_("_foreach_add_");
    /// In place: `s_i += scalars_i * t1_i / t2_i`.
    in_place fn foreach_addcdiv_scalarlist_(s, t1 "tensor1", t2 "tensor2"; scalars: &[f64] => *const f64)
        = ft_foreach_addcdiv_scalarlist_("_foreach_addcdiv_");

    /// `torch._amp_foreach_non_finite_check_and_unscale_`: grads *= inv_scale, and
    /// found_inf (a 1-element float tensor) is set to 1 if any value is inf/nan.
    in_place fn amp_non_finite_check_and_unscale_(grads; found_inf: &Tensor => Handle, inv_scale: &Tensor => Handle)
        = ft_amp_foreach_non_finite_check_and_unscale_("_amp_foreach_non_finite_check_and_unscale_");
    /// `torch._amp_update_scale_`: grows or backs off `scale` in place, on device.
    call fn amp_update_scale_(
        scale: &Tensor => Handle,
        growth_tracker: &Tensor => Handle,
        found_inf: &Tensor => Handle,
        growth_factor: f64,
        backoff_factor: f64,
        growth_interval: i64
    ) = ft_amp_update_scale_("_amp_update_scale_");
    /// `t += v` for one-element CPU float32/float64 tensors (step counters),
    /// written directly instead of through a dispatched `_foreach_add_`.
    in_place fn cpu_scalars_add_(ts; v: f64) = ft_cpu_scalars_add_("step-counter add");

    /// Sets this thread's autocast flag and dtype for a device type.
    call fn autocast_set(device_type: i32, enabled: bool => i32, dtype: i32) = ft_autocast_set("autocast");
    /// Drops autocast's cache of casted weights.
    call fn autocast_clear_cache() = ft_autocast_clear_cache("autocast");

    raw fn ft_fused_adam_(
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
        lr_t: Handle
    ) -> *mut c_char;
    raw fn ft_fused_sgd_(
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
        lr_t: Handle
    ) -> *mut c_char;
    raw fn ft_fused_adagrad_(
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
        lr_t: Handle
    ) -> *mut c_char;
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

/// This thread's autocast state for a device type (a `c10::DeviceType`
/// code): (enabled, dtype as a `c10::ScalarType` code).
pub fn autocast_get(device_type: i32) -> Result<(bool, i32)> {
    let (mut enabled, mut dtype) = (0i32, 0i32);
    check("autocast", unsafe {
        ft_autocast_get(device_type, &mut enabled, &mut dtype)
    })?;
    Ok((enabled != 0, dtype))
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
            ("grads", Some(l.grads.len())),
            ("exp_avgs", Some(l.exp_avgs.len())),
            ("exp_avg_sqs", Some(l.exp_avg_sqs.len())),
            ("state_steps", Some(l.state_steps.len())),
        ],
    )?;
    same_len(
        "_fused_adam_",
        n_max,
        &[("max_exp_avg_sqs", Some(l.max_exp_avg_sqs.len()))],
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
    same_len("_fused_sgd_", n, &[("grads", Some(grads.len()))])?;
    if !momentum_buffers.is_empty() {
        same_len(
            "_fused_sgd_",
            n,
            &[("momentum_buffer_list", Some(momentum_buffers.len()))],
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
            ("grads", Some(grads.len())),
            ("state_sums", Some(state_sums.len())),
            ("state_steps", Some(state_steps.len())),
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
