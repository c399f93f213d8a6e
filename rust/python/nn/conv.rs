//! Convolutions over `crate::nn::conv`.

use super::prelude::*;

/// Builds a (transposed) convolution from torch-style arguments.
#[allow(clippy::too_many_arguments)]
fn conv(
    dims: usize,
    transposed: bool,
    in_channels: i64,
    out_channels: i64,
    kernel_size: &Bound<'_, PyAny>,
    stride: &Bound<'_, PyAny>,
    padding: &Bound<'_, PyAny>,
    output_padding: &Bound<'_, PyAny>,
    dilation: &Bound<'_, PyAny>,
    groups: i64,
    bias: bool,
    device: Option<&str>,
) -> PyResult<Arc<nn::Conv>> {
    let opts = nn::ConvOptions {
        kernel: ints(kernel_size, dims, "kernel_size")?,
        stride: ints(stride, dims, "stride")?,
        padding: ints(padding, dims, "padding")?,
        dilation: ints(dilation, dims, "dilation")?,
        output_padding: ints(output_padding, dims, "output_padding")?,
        groups,
        bias,
    };
    Ok(Arc::new(
        nn::Conv::new(
            dims,
            transposed,
            in_channels,
            out_channels,
            opts,
            device_arg(device)?,
        )
        .py()?,
    ))
}

macro_rules! conv_class {
    ($py:ident, $name:literal, $dims:expr) => {
        #[doc = concat!($name, "(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True)")]
        #[pyclass(name = $name, module = "ferrotorch._core", extends = PyModuleBase, frozen)]
        pub struct $py;

        #[pymethods]
        impl $py {
            #[new]
            #[pyo3(signature = (in_channels, out_channels, kernel_size, stride = None, padding = None, dilation = None, groups = 1, bias = true, device = None))]
            #[allow(clippy::too_many_arguments)]
            fn new(
                py: Python<'_>,
                in_channels: i64,
                out_channels: i64,
                kernel_size: &Bound<'_, PyAny>,
                stride: Option<&Bound<'_, PyAny>>,
                padding: Option<&Bound<'_, PyAny>>,
                dilation: Option<&Bound<'_, PyAny>>,
                groups: i64,
                bias: bool,
                device: Option<&str>,
            ) -> PyResult<PyClassInitializer<Self>> {
                let one = 1i64.into_pyobject(py)?.into_any();
                let zero = 0i64.into_pyobject(py)?.into_any();
                let m = conv(
                    $dims,
                    false,
                    in_channels,
                    out_channels,
                    kernel_size,
                    stride.unwrap_or(&one),
                    padding.unwrap_or(&zero),
                    &zero,
                    dilation.unwrap_or(&one),
                    groups,
                    bias,
                    device,
                )?;
                Ok(base(m).add_subclass($py))
            }
        }
    };
}

macro_rules! conv_t_class {
    ($py:ident, $name:literal, $dims:expr) => {
        #[doc = concat!($name, "(in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1, bias=True, dilation=1)")]
        #[pyclass(name = $name, module = "ferrotorch._core", extends = PyModuleBase, frozen)]
        pub struct $py;

        #[pymethods]
        impl $py {
            #[new]
            #[pyo3(signature = (in_channels, out_channels, kernel_size, stride = None, padding = None, output_padding = None, groups = 1, bias = true, dilation = None, device = None))]
            #[allow(clippy::too_many_arguments)]
            fn new(
                py: Python<'_>,
                in_channels: i64,
                out_channels: i64,
                kernel_size: &Bound<'_, PyAny>,
                stride: Option<&Bound<'_, PyAny>>,
                padding: Option<&Bound<'_, PyAny>>,
                output_padding: Option<&Bound<'_, PyAny>>,
                groups: i64,
                bias: bool,
                dilation: Option<&Bound<'_, PyAny>>,
                device: Option<&str>,
            ) -> PyResult<PyClassInitializer<Self>> {
                let one = 1i64.into_pyobject(py)?.into_any();
                let zero = 0i64.into_pyobject(py)?.into_any();
                let m = conv(
                    $dims,
                    true,
                    in_channels,
                    out_channels,
                    kernel_size,
                    stride.unwrap_or(&one),
                    padding.unwrap_or(&zero),
                    output_padding.unwrap_or(&zero),
                    dilation.unwrap_or(&one),
                    groups,
                    bias,
                    device,
                )?;
                Ok(base(m).add_subclass($py))
            }
        }
    };
}

conv_class!(PyConv1d, "Conv1d", 1);
conv_class!(PyConv2d, "Conv2d", 2);
conv_class!(PyConv3d, "Conv3d", 3);
conv_t_class!(PyConvTranspose1d, "ConvTranspose1d", 1);
conv_t_class!(PyConvTranspose2d, "ConvTranspose2d", 2);
conv_t_class!(PyConvTranspose3d, "ConvTranspose3d", 3);

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyConv1d>()?;
    m.add_class::<PyConv2d>()?;
    m.add_class::<PyConv3d>()?;
    m.add_class::<PyConvTranspose1d>()?;
    m.add_class::<PyConvTranspose2d>()?;
    m.add_class::<PyConvTranspose3d>()?;
    Ok(())
}
