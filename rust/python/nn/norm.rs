//! RMSNorm, BatchNorm, GroupNorm and InstanceNorm over `crate::nn::norm`.

use super::prelude::*;

layer!(
    /// RMSNorm(size, eps=1e-5): x/√(mean(x²)+eps)·weight over the last dim.
    PyRmsNorm,
    "RMSNorm",
    (size, eps = 1e-5, device = None),
    |size: i64, eps: f64, device: Option<&str>| nn::RmsNorm::new(size, eps, device_arg(device)?)
        .py()?
);

layer!(
    /// BatchNorm over [N, C] or [N, C, L] (torch's BatchNorm1d).
    PyBatchNorm,
    "BatchNorm",
    (num_features, eps = 1e-5, momentum = 0.1, device = None),
    |num_features: i64, eps: f64, momentum: f64, device: Option<&str>| nn::BatchNorm::new(
        num_features,
        false,
        eps,
        momentum,
        device_arg(device)?
    )
    .py()?
);

layer!(
    /// BatchNorm2d over [N, C, H, W].
    PyBatchNorm2d,
    "BatchNorm2d",
    (num_features, eps = 1e-5, momentum = 0.1, device = None),
    |num_features: i64, eps: f64, momentum: f64, device: Option<&str>| nn::BatchNorm::new(
        num_features,
        true,
        eps,
        momentum,
        device_arg(device)?
    )
    .py()?
);

layer!(
    /// GroupNorm(num_groups, num_channels, eps=1e-5, affine=True).
    PyGroupNorm,
    "GroupNorm",
    (
        num_groups,
        num_channels,
        eps = 1e-5,
        affine = true,
        device = None
    ),
    |num_groups: i64, num_channels: i64, eps: f64, affine: bool, device: Option<&str>| {
        nn::GroupNorm::new(num_groups, num_channels, eps, affine, device_arg(device)?).py()?
    }
);

layer!(
    /// InstanceNorm(num_features, affine=False, eps=1e-5): input statistics always.
    PyInstanceNorm,
    "InstanceNorm",
    (num_features, affine = false, eps = 1e-5, device = None),
    |num_features: i64, affine: bool, eps: f64, device: Option<&str>| nn::InstanceNorm::new(
        num_features,
        affine,
        eps,
        device_arg(device)?
    )
    .py()?
);

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyRmsNorm>()?;
    m.add_class::<PyBatchNorm>()?;
    m.add_class::<PyBatchNorm2d>()?;
    m.add_class::<PyGroupNorm>()?;
    m.add_class::<PyInstanceNorm>()?;
    Ok(())
}
