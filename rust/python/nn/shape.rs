//! Shape layers (pixel shuffle, upsample, fold/unfold, flatten, padding)
//! over `crate::nn::shape`.

use super::prelude::*;

layer!(
    /// PixelShuffle(upscale_factor): [N, C·r², H, W] → [N, C, H·r, W·r].
    PyPixelShuffle,
    "PixelShuffle",
    (upscale_factor),
    |upscale_factor: i64| nn::PixelShuffle::new(upscale_factor, false).py()?
);

layer!(
    /// PixelUnshuffle(downscale_factor): the inverse of PixelShuffle.
    PyPixelUnshuffle,
    "PixelUnshuffle",
    (downscale_factor),
    |downscale_factor: i64| nn::PixelShuffle::new(downscale_factor, true).py()?
);

layer!(
    /// Upsample(size=None, scale_factor=None, mode="nearest", align_corners=False).
    PyUpsample,
    "Upsample",
    (
        size = None,
        scale_factor = None,
        mode = "nearest",
        align_corners = None
    ),
    |size: Option<&Bound<'_, PyAny>>,
     scale_factor: Option<&Bound<'_, PyAny>>,
     mode: &str,
     align_corners: Option<bool>| {
        let mode = match mode {
            "nearest" => nn::UpsampleMode::Nearest,
            "bilinear" => nn::UpsampleMode::Bilinear,
            "bicubic" => nn::UpsampleMode::Bicubic,
            m => {
                return Err(raise(
                    Exc::Config,
                    format!("Upsample: mode must be 'nearest', 'bilinear' or 'bicubic', got '{m}'"),
                ))
            }
        };
        let size = size.map(|s| pair(s, "size")).transpose()?;
        let scale = match scale_factor {
            None => None,
            Some(f) => Some(if let Ok(v) = f.extract::<f64>() {
                [v, v]
            } else {
                let v: Vec<f64> = f.extract().map_err(|_| {
                    raise(
                        Exc::InputType,
                        format!("scale_factor: expected a float or 2 floats, got {f}"),
                    )
                })?;
                if v.len() != 2 {
                    return Err(raise(
                        Exc::InputType,
                        format!("scale_factor: expected 2 floats, got {}", v.len()),
                    ));
                }
                [v[0], v[1]]
            }),
        };
        nn::Upsample::new(size, scale, mode, align_corners.unwrap_or(false)).py()?
    }
);

fn window(
    kernel_size: &Bound<'_, PyAny>,
    dilation: &Bound<'_, PyAny>,
    padding: &Bound<'_, PyAny>,
    stride: &Bound<'_, PyAny>,
) -> PyResult<nn::Window> {
    Ok(nn::Window {
        kernel: pair(kernel_size, "kernel_size")?,
        dilation: pair(dilation, "dilation")?,
        padding: pair(padding, "padding")?,
        stride: pair(stride, "stride")?,
    })
}

layer!(
    /// Unfold(kernel_size, dilation=1, padding=0, stride=1): sliding blocks.
    PyUnfold,
    "Unfold",
    (kernel_size, dilation = None, padding = None, stride = None),
    |py: Python<'_>,
     kernel_size: &Bound<'_, PyAny>,
     dilation: Option<&Bound<'_, PyAny>>,
     padding: Option<&Bound<'_, PyAny>>,
     stride: Option<&Bound<'_, PyAny>>| {
        let one = 1i64.into_pyobject(py)?.into_any();
        let zero = 0i64.into_pyobject(py)?.into_any();
        let w = window(
            kernel_size,
            dilation.unwrap_or(&one),
            padding.unwrap_or(&zero),
            stride.unwrap_or(&one),
        )?;
        nn::Unfold::new(w).py()?
    }
);

layer!(
    /// Fold(output_size, kernel_size, dilation=1, padding=0, stride=1): sums blocks back.
    PyFold,
    "Fold",
    (
        output_size,
        kernel_size,
        dilation = None,
        padding = None,
        stride = None
    ),
    |py: Python<'_>,
     output_size: &Bound<'_, PyAny>,
     kernel_size: &Bound<'_, PyAny>,
     dilation: Option<&Bound<'_, PyAny>>,
     padding: Option<&Bound<'_, PyAny>>,
     stride: Option<&Bound<'_, PyAny>>| {
        let one = 1i64.into_pyobject(py)?.into_any();
        let zero = 0i64.into_pyobject(py)?.into_any();
        let w = window(
            kernel_size,
            dilation.unwrap_or(&one),
            padding.unwrap_or(&zero),
            stride.unwrap_or(&one),
        )?;
        nn::Fold::new(pair(output_size, "output_size")?, w).py()?
    }
);

layer!(
    /// Flatten(start_dim=1, end_dim=-1).
    PyFlatten,
    "Flatten",
    (start_dim = 1, end_dim = -1),
    |start_dim: i64, end_dim: i64| nn::Flatten::new(start_dim, end_dim)
);

fn pad4(ob: &Bound<'_, PyAny>) -> PyResult<[i64; 4]> {
    let v = ints(ob, 4, "padding")?;
    Ok([v[0], v[1], v[2], v[3]])
}

layer!(
    /// ZeroPad2d(padding): int or (left, right, top, bottom).
    PyZeroPad2d, "ZeroPad2d", (padding), |padding: &Bound<
    '_,
    PyAny,
>| nn::Pad2d::new(
    nn::PadMode::Zero,
    pad4(padding)?
)
.py()?);

layer!(
    /// ReflectionPad2d(padding): int or (left, right, top, bottom).
    PyReflectionPad2d,
    "ReflectionPad2d",
    (padding),
    |padding: &Bound<'_, PyAny>| nn::Pad2d::new(nn::PadMode::Reflection, pad4(padding)?).py()?
);

layer!(
    /// Select(dim, index): x.select(dim, index) as a node; negative dim and
    /// index count from the end.
    PySelect,
    "Select",
    (dim, index),
    |dim: i64, index: i64| nn::Select::new(dim, index)
);

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySelect>()?;
    m.add_class::<PyPixelShuffle>()?;
    m.add_class::<PyPixelUnshuffle>()?;
    m.add_class::<PyUpsample>()?;
    m.add_class::<PyUnfold>()?;
    m.add_class::<PyFold>()?;
    m.add_class::<PyFlatten>()?;
    m.add_class::<PyZeroPad2d>()?;
    m.add_class::<PyReflectionPad2d>()?;
    Ok(())
}
