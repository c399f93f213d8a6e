//! Activations: parameter-free ones, the parameterised ones (slope, alpha,
//! beta, dim) and PReLU, the one with a trainable weight.

use tch::{Device, Kind, Tensor};

use super::{check_kind, param, positive, Module, Parameter};
use crate::tensor::{require_float, shape_str, SharedTensor};
use crate::{shim, Error, Result};

/// Elementwise activations without parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Relu,
    Sigmoid,
    Tanh,
    Silu,
    Mish,
    Selu,
    Hardswish,
    Hardsigmoid,
}

impl Module for Activation {
    fn name(&self) -> &str {
        match self {
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Silu => "silu",
            Activation::Mish => "mish",
            Activation::Selu => "selu",
            Activation::Hardswish => "hardswish",
            Activation::Hardsigmoid => "hardsigmoid",
        }
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        require_float(x, &format!("{} input", self.name()))?;
        Ok(match self {
            Activation::Relu => x.f_relu()?,
            Activation::Sigmoid => x.f_sigmoid()?,
            Activation::Tanh => x.f_tanh()?,
            Activation::Silu => x.f_silu()?,
            Activation::Mish => x.f_mish()?,
            Activation::Selu => x.f_selu()?,
            Activation::Hardswish => x.f_hardswish()?,
            Activation::Hardsigmoid => x.f_hardsigmoid()?,
        })
    }
}

/// GELU's two forms, as torch's `approximate` argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GeluApprox {
    /// The exact erf form (`approximate="none"`), floDl's default.
    None,
    /// The tanh approximation (`approximate="tanh"`).
    Tanh,
}

/// GELU (floDl name `gelu`).
#[derive(Clone, Copy, Debug)]
pub struct Gelu {
    pub approximate: GeluApprox,
}

impl Module for Gelu {
    fn name(&self) -> &str {
        "gelu"
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        require_float(x, "GELU input")?;
        let a = match self.approximate {
            GeluApprox::None => "none",
            GeluApprox::Tanh => "tanh",
        };
        Ok(x.f_gelu(a)?)
    }
}

/// LeakyReLU(negative_slope) (floDl name `leaky_relu`).
#[derive(Clone, Copy, Debug)]
pub struct LeakyRelu {
    pub slope: f64,
}

impl Module for LeakyRelu {
    fn name(&self) -> &str {
        "leaky_relu"
    }
    fn describe(&self) -> String {
        format!("LeakyReLU({})", self.slope)
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        require_float(x, "LeakyReLU input")?;
        shim::leaky_relu(x, self.slope)
    }
}

/// ELU(alpha) (floDl name `elu`).
#[derive(Clone, Copy, Debug)]
pub struct Elu {
    pub alpha: f64,
}

impl Module for Elu {
    fn name(&self) -> &str {
        "elu"
    }
    fn describe(&self) -> String {
        format!("ELU({})", self.alpha)
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        require_float(x, "ELU input")?;
        shim::elu(x, self.alpha)
    }
}

/// Softplus(beta, threshold): log(1 + e^(βx))/β, linear above the threshold.
#[derive(Clone, Copy, Debug)]
pub struct Softplus {
    pub beta: f64,
    pub threshold: f64,
}

impl Module for Softplus {
    fn name(&self) -> &str {
        "softplus"
    }
    fn describe(&self) -> String {
        format!("Softplus(beta={}, threshold={})", self.beta, self.threshold)
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        require_float(x, "Softplus input")?;
        shim::softplus(x, self.beta, self.threshold)
    }
}

fn check_softmax_dim(m: &dyn Module, x: &Tensor, dim: i64) -> Result<()> {
    require_float(x, &format!("{} input", m.describe()))?;
    let n = x.dim() as i64;
    if dim < -n.max(1) || dim >= n.max(1) {
        return Err(Error::Shape(format!(
            "{}: dim {dim} is out of range for an input of shape {}",
            m.describe(),
            shape_str(x)
        )));
    }
    Ok(())
}

/// Softmax over `dim` (floDl name `softmax`).
#[derive(Clone, Copy, Debug)]
pub struct Softmax {
    pub dim: i64,
}

impl Module for Softmax {
    fn name(&self) -> &str {
        "softmax"
    }
    fn describe(&self) -> String {
        format!("Softmax(dim={})", self.dim)
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        check_softmax_dim(self, x, self.dim)?;
        Ok(x.f_softmax(self.dim, None::<Kind>)?)
    }
}

/// LogSoftmax over `dim` (floDl name `log_softmax`).
#[derive(Clone, Copy, Debug)]
pub struct LogSoftmax {
    pub dim: i64,
}

impl Module for LogSoftmax {
    fn name(&self) -> &str {
        "log_softmax"
    }
    fn describe(&self) -> String {
        format!("LogSoftmax(dim={})", self.dim)
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        check_softmax_dim(self, x, self.dim)?;
        Ok(x.f_log_softmax(self.dim, None::<Kind>)?)
    }
}

/// PReLU with `n` learned slopes (1, or one per channel at dimension 1).
pub struct PRelu {
    n: i64,
    weight: SharedTensor,
}

impl PRelu {
    /// weight [n] filled with `init` (floDl and torch: 0.25).
    pub fn new(n: i64, init: f64, device: Device) -> Result<Self> {
        positive("PReLU", "num_parameters", n)?;
        let w = Tensor::f_full([n], init, (Kind::Float, device))?;
        Ok(PRelu {
            n,
            weight: SharedTensor::new(super::init::into_param(w)?),
        })
    }
    pub fn weight(&self) -> Tensor {
        self.weight.handle()
    }
}

impl Module for PRelu {
    fn name(&self) -> &str {
        "prelu"
    }
    fn describe(&self) -> String {
        format!("PReLU({})", self.n)
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        require_float(x, "PReLU input")?;
        let w = self.weight.handle();
        check_kind(self, x, &w)?;
        if self.n > 1 && (x.dim() < 2 || x.size()[1] != self.n) {
            return Err(Error::Shape(format!(
                "{}: expected {} channels at dimension 1, got shape {}",
                self.describe(),
                self.n,
                shape_str(x)
            )));
        }
        Ok(x.f_prelu(&w)?)
    }
    fn parameters(&self) -> Vec<Parameter> {
        vec![param("weight", &self.weight)]
    }
}
