//! Pooling over `crate::nn::pooling`.

use super::prelude::*;

macro_rules! maxpool_class {
    ($py:ident, $name:literal, $dims:expr) => {
        #[doc = concat!($name, "(kernel_size, stride=None (= kernel_size), padding=0, dilation=1, ceil_mode=False)")]
        #[pyclass(name = $name, module = "ferrotorch._core", extends = PyModuleBase, frozen)]
        pub struct $py;

        #[pymethods]
        impl $py {
            #[new]
            #[pyo3(signature = (kernel_size, stride = None, padding = None, dilation = None, ceil_mode = false))]
            fn new(
                kernel_size: &Bound<'_, PyAny>,
                stride: Option<&Bound<'_, PyAny>>,
                padding: Option<&Bound<'_, PyAny>>,
                dilation: Option<&Bound<'_, PyAny>>,
                ceil_mode: bool,
            ) -> PyResult<PyClassInitializer<Self>> {
                let k = ints(kernel_size, $dims, "kernel_size")?;
                let s = stride.map(|s| ints(s, $dims, "stride")).transpose()?.unwrap_or_else(|| k.clone());
                let p = padding.map(|p| ints(p, $dims, "padding")).transpose()?.unwrap_or(vec![0; $dims]);
                let d = dilation.map(|d| ints(d, $dims, "dilation")).transpose()?.unwrap_or(vec![1; $dims]);
                let m = nn::MaxPool::new($dims, k, s, p, d, ceil_mode).py()?;
                Ok(base(Arc::new(m)).add_subclass($py))
            }
        }
    };
}

macro_rules! avgpool_class {
    ($py:ident, $name:literal, $dims:expr) => {
        #[doc = concat!($name, "(kernel_size, stride=None (= kernel_size), padding=0, ceil_mode=False, count_include_pad=True)")]
        #[pyclass(name = $name, module = "ferrotorch._core", extends = PyModuleBase, frozen)]
        pub struct $py;

        #[pymethods]
        impl $py {
            #[new]
            #[pyo3(signature = (kernel_size, stride = None, padding = None, ceil_mode = false, count_include_pad = true))]
            fn new(
                kernel_size: &Bound<'_, PyAny>,
                stride: Option<&Bound<'_, PyAny>>,
                padding: Option<&Bound<'_, PyAny>>,
                ceil_mode: bool,
                count_include_pad: bool,
            ) -> PyResult<PyClassInitializer<Self>> {
                let k = ints(kernel_size, $dims, "kernel_size")?;
                let s = stride.map(|s| ints(s, $dims, "stride")).transpose()?.unwrap_or_else(|| k.clone());
                let p = padding.map(|p| ints(p, $dims, "padding")).transpose()?.unwrap_or(vec![0; $dims]);
                let m = nn::AvgPool::new($dims, k, s, p, ceil_mode, count_include_pad).py()?;
                Ok(base(Arc::new(m)).add_subclass($py))
            }
        }
    };
}

maxpool_class!(PyMaxPool1d, "MaxPool1d", 1);
maxpool_class!(PyMaxPool2d, "MaxPool2d", 2);
avgpool_class!(PyAvgPool1d, "AvgPool1d", 1);
avgpool_class!(PyAvgPool2d, "AvgPool2d", 2);

layer!(
    /// AdaptiveAvgPool2d(output_size): int or (h, w).
    PyAdaptiveAvgPool2d,
    "AdaptiveAvgPool2d",
    (output_size),
    |output_size: &Bound<'_, PyAny>| nn::AdaptivePool2d::new(
        false,
        pair(output_size, "output_size")?
    )
    .py()?
);

layer!(
    /// AdaptiveMaxPool2d(output_size): int or (h, w).
    PyAdaptiveMaxPool2d,
    "AdaptiveMaxPool2d",
    (output_size),
    |output_size: &Bound<'_, PyAny>| nn::AdaptivePool2d::new(
        true,
        pair(output_size, "output_size")?
    )
    .py()?
);

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyMaxPool1d>()?;
    m.add_class::<PyMaxPool2d>()?;
    m.add_class::<PyAvgPool1d>()?;
    m.add_class::<PyAvgPool2d>()?;
    m.add_class::<PyAdaptiveAvgPool2d>()?;
    m.add_class::<PyAdaptiveMaxPool2d>()?;
    Ok(())
}
