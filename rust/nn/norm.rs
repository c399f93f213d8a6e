//! Normalisation layers: BatchNorm (1-d and 2-d), GroupNorm, InstanceNorm,
//! RMSNorm. Affine weights start at 1, biases at 0.

use tch::{Device, Kind, Tensor};

use super::{
    check_dim, check_input, check_kind, init, param, positive, Module, Parameter, TrainFlag,
};
use crate::tensor::{shape_str, SharedTensor};
use crate::{Error, Result};

fn ones(n: i64, device: Device) -> Result<SharedTensor> {
    Ok(SharedTensor::new(init::into_param(Tensor::f_ones(
        [n],
        (Kind::Float, device),
    )?)?))
}

fn zeros(n: i64, device: Device) -> Result<SharedTensor> {
    Ok(SharedTensor::new(init::into_param(Tensor::f_zeros(
        [n],
        (Kind::Float, device),
    )?)?))
}

fn check_eps(what: &str, eps: f64) -> Result<()> {
    if eps.is_nan() || eps <= 0.0 {
        return Err(Error::Value(format!(
            "{what}: eps must be positive, got {eps}"
        )));
    }
    Ok(())
}

/// Batch normalisation with running statistics (floDl names `batchnorm`
/// for [N, C] / [N, C, L] inputs, `batchnorm2d` for [N, C, H, W]).
pub struct BatchNorm {
    two_d: bool,
    channels: i64,
    eps: f64,
    momentum: f64,
    weight: SharedTensor,
    bias: SharedTensor,
    running_mean: SharedTensor,
    running_var: SharedTensor,
    training: TrainFlag,
}

impl BatchNorm {
    /// Running mean 0 and variance 1, updated in training with `momentum`
    /// (the unbiased batch variance, as torch).
    pub fn new(
        channels: i64,
        two_d: bool,
        eps: f64,
        momentum: f64,
        device: Device,
    ) -> Result<Self> {
        let what = if two_d { "BatchNorm2d" } else { "BatchNorm" };
        positive(what, "num_features", channels)?;
        check_eps(what, eps)?;
        if !(0.0..=1.0).contains(&momentum) {
            return Err(Error::Value(format!(
                "{what}: momentum must be in [0, 1], got {momentum}"
            )));
        }
        let opts = (Kind::Float, device);
        Ok(BatchNorm {
            two_d,
            channels,
            eps,
            momentum,
            weight: ones(channels, device)?,
            bias: zeros(channels, device)?,
            running_mean: SharedTensor::new(Tensor::f_zeros([channels], opts)?),
            running_var: SharedTensor::new(Tensor::f_ones([channels], opts)?),
            training: TrainFlag::default(),
        })
    }
    pub fn weight(&self) -> Tensor {
        self.weight.handle()
    }
    pub fn bias(&self) -> Tensor {
        self.bias.handle()
    }
    pub fn running_mean(&self) -> Tensor {
        self.running_mean.handle()
    }
    pub fn running_var(&self) -> Tensor {
        self.running_var.handle()
    }
    pub fn training(&self) -> bool {
        self.training.get()
    }
}

impl Module for BatchNorm {
    fn name(&self) -> &str {
        if self.two_d {
            "batchnorm2d"
        } else {
            "batchnorm"
        }
    }
    fn describe(&self) -> String {
        let t = if self.two_d {
            "BatchNorm2d"
        } else {
            "BatchNorm"
        };
        format!("{t}({})", self.channels)
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let size = if self.two_d {
            check_input(self, x, &[4], "[N, C, H, W]")?
        } else {
            check_input(self, x, &[2, 3], "[N, C] or [N, C, L]")?
        };
        check_dim(self, x, 1, self.channels, "channels")?;
        let w = self.weight.handle();
        check_kind(self, x, &w)?;
        let training = self.training.get();
        if training && size[0] < 2 {
            return Err(Error::Shape(format!(
                "{}: training needs a batch of at least 2 samples, got shape {} (call eval() for single samples)",
                self.describe(),
                shape_str(x)
            )));
        }
        Ok(x.f_batch_norm(
            Some(&w),
            Some(&self.bias.handle()),
            Some(&self.running_mean.handle()),
            Some(&self.running_var.handle()),
            training,
            self.momentum,
            self.eps,
            true,
        )?)
    }
    fn parameters(&self) -> Vec<Parameter> {
        vec![param("weight", &self.weight), param("bias", &self.bias)]
    }
    fn buffers(&self) -> Vec<Parameter> {
        vec![
            param("running_mean", &self.running_mean),
            param("running_var", &self.running_var),
        ]
    }
    fn set_training(&self, on: bool) -> Result<()> {
        self.training.set(on);
        Ok(())
    }
    fn training_mode(&self) -> Option<bool> {
        Some(self.training.get())
    }
}

/// GroupNorm(groups, channels) over [N, C, *] (floDl name `groupnorm`).
pub struct GroupNorm {
    groups: i64,
    channels: i64,
    eps: f64,
    affine: Option<(SharedTensor, SharedTensor)>,
}

impl GroupNorm {
    pub fn new(groups: i64, channels: i64, eps: f64, affine: bool, device: Device) -> Result<Self> {
        positive("GroupNorm", "num_groups", groups)?;
        positive("GroupNorm", "num_channels", channels)?;
        check_eps("GroupNorm", eps)?;
        if channels % groups != 0 {
            return Err(Error::Value(format!(
                "GroupNorm: num_channels ({channels}) must be divisible by num_groups ({groups})"
            )));
        }
        let affine = if affine {
            Some((ones(channels, device)?, zeros(channels, device)?))
        } else {
            None
        };
        Ok(GroupNorm {
            groups,
            channels,
            eps,
            affine,
        })
    }
    pub fn weight(&self) -> Option<Tensor> {
        self.affine.as_ref().map(|(w, _)| w.handle())
    }
    pub fn bias(&self) -> Option<Tensor> {
        self.affine.as_ref().map(|(_, b)| b.handle())
    }
}

impl Module for GroupNorm {
    fn name(&self) -> &str {
        "groupnorm"
    }
    fn describe(&self) -> String {
        format!("GroupNorm({}, {})", self.groups, self.channels)
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        check_input(self, x, &[2, 3, 4, 5], "[N, C, *]")?;
        check_dim(self, x, 1, self.channels, "channels")?;
        let (w, b) = match &self.affine {
            Some((w, b)) => (Some(w.handle()), Some(b.handle())),
            None => (None, None),
        };
        if let Some(w) = &w {
            check_kind(self, x, w)?;
        }
        Ok(x.f_group_norm(self.groups, w.as_ref(), b.as_ref(), self.eps, true)?)
    }
    fn parameters(&self) -> Vec<Parameter> {
        match &self.affine {
            Some((w, b)) => vec![param("weight", w), param("bias", b)],
            None => Vec::new(),
        }
    }
}

/// InstanceNorm(C, affine): per-sample, per-channel statistics of the
/// input, always (no running buffers; floDl name `instance_norm`).
pub struct InstanceNorm {
    channels: i64,
    eps: f64,
    affine: Option<(SharedTensor, SharedTensor)>,
}

impl InstanceNorm {
    pub fn new(channels: i64, affine: bool, eps: f64, device: Device) -> Result<Self> {
        positive("InstanceNorm", "num_features", channels)?;
        check_eps("InstanceNorm", eps)?;
        let affine = if affine {
            Some((ones(channels, device)?, zeros(channels, device)?))
        } else {
            None
        };
        Ok(InstanceNorm {
            channels,
            eps,
            affine,
        })
    }
    pub fn weight(&self) -> Option<Tensor> {
        self.affine.as_ref().map(|(w, _)| w.handle())
    }
    pub fn bias(&self) -> Option<Tensor> {
        self.affine.as_ref().map(|(_, b)| b.handle())
    }
}

impl Module for InstanceNorm {
    fn name(&self) -> &str {
        "instance_norm"
    }
    fn describe(&self) -> String {
        format!("InstanceNorm({})", self.channels)
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        check_input(self, x, &[3, 4, 5], "[N, C, *spatial]")?;
        check_dim(self, x, 1, self.channels, "channels")?;
        let (w, b) = match &self.affine {
            Some((w, b)) => (Some(w.handle()), Some(b.handle())),
            None => (None, None),
        };
        if let Some(w) = &w {
            check_kind(self, x, w)?;
        }
        Ok(x.f_instance_norm(
            w.as_ref(),
            b.as_ref(),
            None::<&Tensor>,
            None::<&Tensor>,
            true,
            0.1,
            self.eps,
            true,
        )?)
    }
    fn parameters(&self) -> Vec<Parameter> {
        match &self.affine {
            Some((w, b)) => vec![param("weight", w), param("bias", b)],
            None => Vec::new(),
        }
    }
}

/// RMSNorm over the last dimension: x/√(mean(x²)+eps)·weight (floDl name `rmsnorm`).
pub struct RmsNorm {
    size: i64,
    eps: f64,
    weight: SharedTensor,
}

impl RmsNorm {
    pub fn new(size: i64, eps: f64, device: Device) -> Result<Self> {
        positive("RMSNorm", "size", size)?;
        check_eps("RMSNorm", eps)?;
        Ok(RmsNorm {
            size,
            eps,
            weight: ones(size, device)?,
        })
    }
    pub fn weight(&self) -> Tensor {
        self.weight.handle()
    }
    pub fn eps(&self) -> f64 {
        self.eps
    }
}

impl Module for RmsNorm {
    fn name(&self) -> &str {
        "rmsnorm"
    }
    fn describe(&self) -> String {
        format!("RMSNorm({})", self.size)
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let size = check_input(self, x, &[1, 2, 3, 4, 5, 6], "[..., size]")?;
        if size.last() != Some(&self.size) {
            return Err(Error::Shape(format!(
                "{}: expected input of shape [..., {}], got {}",
                self.describe(),
                self.size,
                shape_str(x)
            )));
        }
        let w = self.weight.handle();
        check_kind(self, x, &w)?;
        Ok(x.f_rms_norm([self.size], Some(&w), self.eps)?)
    }
    fn parameters(&self) -> Vec<Parameter> {
        vec![param("weight", &self.weight)]
    }
}
