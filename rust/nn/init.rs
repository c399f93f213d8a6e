//! Parameter initialisation, drawn from torch's global generator so that
//! `manual_seed` makes it reproducible. floDl is the oracle here: every
//! function below does floDl's arithmetic step for step (an f32 `rand` or
//! `randn` draw, then a multiply by an f64 scalar, then an add), so a seeded
//! ferrotorch layer starts from floDl's exact bits. torch.nn's own
//! `uniform_(lo, hi)` rounds differently and lands 1–2 ulp away.

use tch::{Device, Kind, Tensor};

use crate::{Error, Result};

fn positive_fan(what: &str, name: &str, fan: i64) -> Result<()> {
    if fan <= 0 {
        return Err(Error::Value(format!(
            "{what}: {name} must be positive, got {fan}"
        )));
    }
    Ok(())
}

/// `rand(shape)·scale + shift`: floDl's form of every uniform draw.
fn scaled_rand(shape: &[i64], scale: f64, shift: f64, device: Device) -> Result<Tensor> {
    let t = Tensor::f_rand(shape, (Kind::Float, device))?;
    Ok(t.f_mul_scalar(scale)?.f_add_scalar(shift)?)
}

/// `randn(shape)·std`: floDl's zero-mean normal draws (no add, which would
/// turn a drawn -0.0 into +0.0).
fn scaled_randn(shape: &[i64], std: f64, device: Device) -> Result<Tensor> {
    let t = Tensor::f_randn(shape, (Kind::Float, device))?;
    Ok(t.f_mul_scalar(std)?)
}

/// U(±bound) as floDl draws it: rand·2b − b.
fn symmetric(shape: &[i64], bound: f64, device: Device) -> Result<Tensor> {
    scaled_rand(shape, 2.0 * bound, -bound, device)
}

/// U(lo, hi) of the given shape, f32, as a fresh leaf without grad:
/// rand·(hi−lo) + lo.
pub fn uniform(shape: &[i64], lo: f64, hi: f64, device: Device) -> Result<Tensor> {
    if hi < lo {
        return Err(Error::Value(format!(
            "uniform: low {lo} is above high {hi}"
        )));
    }
    scaled_rand(shape, hi - lo, lo, device)
}

/// Kaiming-uniform: bound = √3·gain/√fan_in, gain = √(2/(1+a²)), in that
/// order of f64 operations (floDl's). With a = √5 the bound is 1/√fan_in
/// (Linear's and Conv's default).
pub fn kaiming_uniform(shape: &[i64], fan_in: i64, a: f64, device: Device) -> Result<Tensor> {
    positive_fan("kaiming_uniform", "fan_in", fan_in)?;
    let gain = (2.0 / (1.0 + a * a)).sqrt();
    let std = gain / (fan_in as f64).sqrt();
    symmetric(shape, 3f64.sqrt() * std, device)
}

/// U(±1/√fan_in): the bias init of Linear and Conv, and every RNN cell
/// tensor (fan_in = hidden size).
pub fn uniform_bias(shape: &[i64], fan_in: i64, device: Device) -> Result<Tensor> {
    positive_fan("uniform_bias", "fan_in", fan_in)?;
    symmetric(shape, 1.0 / (fan_in as f64).sqrt(), device)
}

/// N(mean, std²) of the given shape, f32: randn·std + mean.
pub fn normal(shape: &[i64], mean: f64, std: f64, device: Device) -> Result<Tensor> {
    if std.is_nan() || std < 0.0 {
        return Err(Error::Value(format!(
            "normal: std must be non-negative, got {std}"
        )));
    }
    Ok(scaled_randn(shape, std, device)?.f_add_scalar(mean)?)
}

/// Kaiming-normal: randn·std, std = √(2/(1+a²))/√fan_in.
pub fn kaiming_normal(shape: &[i64], fan_in: i64, a: f64, device: Device) -> Result<Tensor> {
    positive_fan("kaiming_normal", "fan_in", fan_in)?;
    let gain = (2.0 / (1.0 + a * a)).sqrt();
    scaled_randn(shape, gain / (fan_in as f64).sqrt(), device)
}

/// Xavier-uniform: U(±gain·√(6/(fan_in+fan_out))) (floDl has no gain; 1.0
/// leaves its bound's bits unchanged).
pub fn xavier_uniform(
    shape: &[i64],
    fan_in: i64,
    fan_out: i64,
    gain: f64,
    device: Device,
) -> Result<Tensor> {
    positive_fan("xavier_uniform", "fan_in", fan_in)?;
    positive_fan("xavier_uniform", "fan_out", fan_out)?;
    let b = gain * (6.0 / (fan_in + fan_out) as f64).sqrt();
    symmetric(shape, b, device)
}

/// Xavier-normal: randn·gain·√(2/(fan_in+fan_out)).
pub fn xavier_normal(
    shape: &[i64],
    fan_in: i64,
    fan_out: i64,
    gain: f64,
    device: Device,
) -> Result<Tensor> {
    positive_fan("xavier_normal", "fan_in", fan_in)?;
    positive_fan("xavier_normal", "fan_out", fan_out)?;
    let std = gain * (2.0 / (fan_in + fan_out) as f64).sqrt();
    scaled_randn(shape, std, device)
}

/// A (semi-)orthogonal matrix [rows, cols·…] scaled by `gain`, by torch's
/// algorithm (QR of a normal matrix, signs fixed by diag(R)), so a seeded
/// call equals `torch.nn.init.orthogonal_`. floDl uses Gram–Schmidt; both
/// give Haar-distributed matrices.
pub fn orthogonal(shape: &[i64], gain: f64, device: Device) -> Result<Tensor> {
    if shape.len() < 2 || shape.iter().any(|&d| d <= 0) {
        return Err(Error::Value(format!(
            "orthogonal: shape needs at least 2 positive dimensions, got {shape:?}"
        )));
    }
    let rows = shape[0];
    let cols: i64 = shape[1..].iter().product();
    let flat = Tensor::f_randn([rows, cols], (Kind::Float, device))?;
    let flat = if rows < cols {
        flat.f_transpose(0, 1)?
    } else {
        flat
    };
    let (q, r) = Tensor::f_linalg_qr(&flat, "reduced")?;
    let d = r.f_diagonal(0, 0, 1)?.f_sign()?;
    let q = q.f_mul(&d)?;
    let q = if rows < cols { q.f_transpose(0, 1)? } else { q };
    Ok(q.f_contiguous()?.f_reshape(shape)?.f_mul_scalar(gain)?)
}

/// Truncated normal on [mean+a·std, mean+b·std] (floDl's bounds, in units of
/// std). Drawn by torch's inverse-CDF method, a true truncation (floDl clamps
/// a normal draw, which piles mass on the bounds; PyTorch's numerics win).
pub fn trunc_normal(
    shape: &[i64],
    mean: f64,
    std: f64,
    a: f64,
    b: f64,
    device: Device,
) -> Result<Tensor> {
    if std.is_nan() || std <= 0.0 || a.is_nan() || b.is_nan() || a >= b {
        return Err(Error::Value(format!(
            "trunc_normal: need std > 0 and a < b, got std={std}, a={a}, b={b}"
        )));
    }
    let cdf = |x: f64| -> Result<f64> { Ok((1.0 + erf(x / 2f64.sqrt())?) / 2.0) };
    let (l, u) = (cdf(a)?, cdf(b)?);
    // torch's own uniform_ here: this function follows torch.nn.init.
    let mut t = Tensor::f_empty(shape, (Kind::Float, device))?;
    let _ = t.f_uniform_(2.0 * l - 1.0, 2.0 * u - 1.0)?;
    let _ = t.f_erfinv_()?;
    let _ = t.f_mul_scalar_(std * 2f64.sqrt())?;
    let _ = t.f_add_scalar_(mean)?;
    let _ = t.f_clamp_(mean + a * std, mean + b * std)?;
    Ok(t)
}

/// The C library's erf (as Python's math.erf, which torch uses here), via
/// libtorch on a double: Rust's std has none.
fn erf(x: f64) -> Result<f64> {
    Ok(Tensor::f_from_slice(&[x])?.f_erf()?.f_double_value(&[0])?)
}

/// Marks an initialised tensor as a trainable leaf.
pub fn into_param(t: Tensor) -> Result<Tensor> {
    let mut t = t;
    Ok(t.f_requires_grad_(true)?)
}
