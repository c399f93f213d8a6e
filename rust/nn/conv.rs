//! Convolutions and transposed convolutions in 1, 2 and 3 dimensions, one
//! type over `at::convolution` (floDl names conv1d/2d/3d, conv_t1d/2d,
//! conv_transpose3d).

use tch::{Device, Tensor};

use super::{check_dim, check_input, check_kind, init, param, positive, Module, Parameter};
use crate::tensor::SharedTensor;
use crate::{Error, Result};

/// Hyperparameters of a convolution; every list has `dims` entries.
#[derive(Clone, Debug)]
pub struct ConvOptions {
    pub kernel: Vec<i64>,
    pub stride: Vec<i64>,
    pub padding: Vec<i64>,
    pub dilation: Vec<i64>,
    /// Transposed only: extra size added to one side of the output.
    pub output_padding: Vec<i64>,
    pub groups: i64,
    pub bias: bool,
}

pub struct Conv {
    dims: usize,
    transposed: bool,
    in_channels: i64,
    out_channels: i64,
    opts: ConvOptions,
    weight: SharedTensor,
    bias: Option<SharedTensor>,
}

impl Conv {
    /// Weight ~ kaiming_uniform(a=√5) = U(±1/√fan_in), bias ~ U(±1/√fan_in),
    /// drawn weight first. fan_in = in/groups·∏k (conv) as torch; floDl
    /// uses in·∏k for transposed convs, where torch uses out/groups·∏k.
    pub fn new(
        dims: usize,
        transposed: bool,
        in_channels: i64,
        out_channels: i64,
        opts: ConvOptions,
        device: Device,
    ) -> Result<Self> {
        let what = conv_title(dims, transposed);
        positive(&what, "in_channels", in_channels)?;
        positive(&what, "out_channels", out_channels)?;
        positive(&what, "groups", opts.groups)?;
        let lists = [
            ("kernel_size", &opts.kernel, 1),
            ("stride", &opts.stride, 1),
            ("padding", &opts.padding, 0),
            ("dilation", &opts.dilation, 1),
            ("output_padding", &opts.output_padding, 0),
        ];
        for (name, v, min) in lists {
            if v.len() != dims || v.iter().any(|&e| e < min) {
                return Err(Error::Value(format!(
                    "{what}: {name} must be {dims} value(s) >= {min}, got {v:?}"
                )));
            }
        }
        if in_channels % opts.groups != 0 || out_channels % opts.groups != 0 {
            return Err(Error::Value(format!(
                "{what}: in_channels ({in_channels}) and out_channels ({out_channels}) must be divisible by groups ({})",
                opts.groups
            )));
        }
        if !transposed && opts.output_padding.iter().any(|&p| p != 0) {
            return Err(Error::Value(format!(
                "{what}: output_padding applies to transposed convolutions only"
            )));
        }
        for i in 0..dims {
            let op = opts.output_padding[i];
            if op != 0 && op >= opts.stride[i] && op >= opts.dilation[i] {
                return Err(Error::Value(format!(
                    "{what}: output_padding {:?} must be smaller than stride {:?} or dilation {:?}",
                    opts.output_padding, opts.stride, opts.dilation
                )));
            }
        }
        let k: i64 = opts.kernel.iter().product();
        let mut shape = if transposed {
            vec![in_channels, out_channels / opts.groups]
        } else {
            vec![out_channels, in_channels / opts.groups]
        };
        shape.extend(&opts.kernel);
        let fan_in = if transposed {
            in_channels * k
        } else {
            in_channels / opts.groups * k
        };
        let w = init::kaiming_uniform(&shape, fan_in, 5f64.sqrt(), device)?;
        let b = if opts.bias {
            Some(init::uniform_bias(&[out_channels], fan_in, device)?)
        } else {
            None
        };
        Ok(Conv {
            dims,
            transposed,
            in_channels,
            out_channels,
            opts,
            weight: SharedTensor::new(init::into_param(w)?),
            bias: b.map(init::into_param).transpose()?.map(SharedTensor::new),
        })
    }

    pub fn weight(&self) -> Tensor {
        self.weight.handle()
    }
    pub fn bias(&self) -> Option<Tensor> {
        self.bias.as_ref().map(|b| b.handle())
    }
    pub fn options(&self) -> &ConvOptions {
        &self.opts
    }
}

fn conv_title(dims: usize, transposed: bool) -> String {
    if transposed {
        format!("ConvTranspose{dims}d")
    } else {
        format!("Conv{dims}d")
    }
}

impl Module for Conv {
    fn name(&self) -> &str {
        match (self.transposed, self.dims) {
            (false, 1) => "conv1d",
            (false, 2) => "conv2d",
            (false, _) => "conv3d",
            (true, 1) => "conv_t1d",
            (true, 2) => "conv_t2d",
            (true, _) => "conv_transpose3d",
        }
    }

    fn describe(&self) -> String {
        format!(
            "{}({}, {}, kernel_size={:?})",
            conv_title(self.dims, self.transposed),
            self.in_channels,
            self.out_channels,
            self.opts.kernel
        )
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let layout = ["[N, C, L]", "[N, C, H, W]", "[N, C, D, H, W]"][self.dims - 1];
        check_input(self, x, &[self.dims + 2], layout)?;
        check_dim(self, x, 1, self.in_channels, "input channels")?;
        let (w, b) = (
            self.weight.handle(),
            self.bias.as_ref().map(SharedTensor::handle),
        );
        check_kind(self, x, &w)?;
        let o = &self.opts;
        Ok(x.f_convolution(
            &w,
            b.as_ref(),
            o.stride.as_slice(),
            o.padding.as_slice(),
            o.dilation.as_slice(),
            self.transposed,
            o.output_padding.as_slice(),
            o.groups,
        )?)
    }

    fn parameters(&self) -> Vec<Parameter> {
        let mut v = vec![param("weight", &self.weight)];
        if let Some(b) = &self.bias {
            v.push(param("bias", b));
        }
        v
    }
}
