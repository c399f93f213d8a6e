//! Dropout variants over `crate::nn::dropout`.

use super::prelude::*;

macro_rules! dropout_class {
    ($py:ident, $name:literal, $kind:expr) => {
        #[doc = concat!($name, "(p=0.5): identity in eval mode or when p = 0.")]
        #[pyclass(name = $name, module = "ferrotorch._core", extends = PyModuleBase, frozen)]
        pub struct $py;

        #[pymethods]
        impl $py {
            #[new]
            #[pyo3(signature = (p = 0.5))]
            fn new(p: f64) -> PyResult<PyClassInitializer<Self>> {
                Ok(base(Arc::new(nn::Dropout::new($kind, p).py()?)).add_subclass($py))
            }
        }
    };
}

dropout_class!(PyDropout, "Dropout", DropoutKind::Plain);
dropout_class!(PyDropout2d, "Dropout2d", DropoutKind::Channel2d);
dropout_class!(PyAlphaDropout, "AlphaDropout", DropoutKind::Alpha);

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyDropout>()?;
    m.add_class::<PyDropout2d>()?;
    m.add_class::<PyAlphaDropout>()?;
    Ok(())
}
