//! The autocast guard: torch.autocast's enter/exit over this thread's
//! autocast state.

use tch::Kind;

use crate::shim;
use crate::tensor::kind_str;
use crate::{Error, Result};

/// Device types autocast knows here (the `c10::DeviceType` codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AutocastDevice {
    Cpu,
    Cuda,
}

impl AutocastDevice {
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "cpu" => Ok(AutocastDevice::Cpu),
            "cuda" => Ok(AutocastDevice::Cuda),
            _ => Err(Error::Value(format!(
                "autocast: device_type must be 'cpu' or 'cuda', got '{name}'"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            AutocastDevice::Cpu => "cpu",
            AutocastDevice::Cuda => "cuda",
        }
    }

    /// CUDA when one is usable, else the CPU.
    pub fn default_here() -> Self {
        if tch::Cuda::is_available() {
            AutocastDevice::Cuda
        } else {
            AutocastDevice::Cpu
        }
    }

    fn code(self) -> i32 {
        match self {
            AutocastDevice::Cpu => 0,
            AutocastDevice::Cuda => 1,
        }
    }
}

/// c10::ScalarType codes of the dtypes autocast can run in.
fn scalar_type(k: Kind) -> Option<i32> {
    match k {
        Kind::Half => Some(5),
        Kind::Float => Some(6),
        Kind::Double => Some(7),
        Kind::BFloat16 => Some(15),
        _ => None,
    }
}

fn kind_from_scalar_type(c: i32) -> Option<Kind> {
    match c {
        5 => Some(Kind::Half),
        6 => Some(Kind::Float),
        7 => Some(Kind::Double),
        15 => Some(Kind::BFloat16),
        _ => None,
    }
}

/// `dtype` if autocast can run in it (float16, bfloat16): the one check, for
/// the guard and every binding that takes an amp dtype.
pub fn amp_dtype(dtype: Kind, what: &str) -> Result<Kind> {
    match dtype {
        Kind::Half | Kind::BFloat16 => Ok(dtype),
        _ => Err(Error::Value(format!(
            "{what}: dtype must be float16 or bfloat16, got {}",
            kind_str(dtype)
        ))),
    }
}

/// Whether training in `dtype` needs loss scaling: float16's range loses
/// small gradients, bfloat16 has float32's.
pub fn needs_scaler(dtype: Kind) -> bool {
    dtype == Kind::Half
}

/// Whether autocast is on for `device` in this thread.
pub fn is_autocast_enabled(device: AutocastDevice) -> Result<bool> {
    Ok(shim::autocast_get(device.code())?.0)
}

/// The dtype autocast runs in for `device` in this thread.
pub fn autocast_dtype(device: AutocastDevice) -> Result<Kind> {
    let code = shim::autocast_get(device.code())?.1;
    kind_from_scalar_type(code)
        .ok_or_else(|| Error::DType(format!("autocast: unexpected dtype code {code}")))
}

/// RAII autocast region, as `torch.autocast.__enter__/__exit__`: saves this
/// thread's flag and dtype for the device type, sets them, increments the
/// nesting; on drop decrements it (clearing the cast cache at depth 0) and
/// restores what was saved. Autocast state is thread-local: drop the guard
/// on the thread that made it.
pub struct AutocastGuard {
    device: AutocastDevice,
    prev_enabled: bool,
    prev_dtype: i32,
}

impl AutocastGuard {
    /// Enables autocast in `dtype` (float16 or bfloat16) for `device`;
    /// `enabled = false` makes a region with autocast off (nested opt-out).
    pub fn new(device: AutocastDevice, dtype: Kind, enabled: bool) -> Result<Self> {
        amp_dtype(dtype, "autocast")?;
        if device == AutocastDevice::Cuda && !tch::Cuda::is_available() {
            return Err(Error::Value(
                "autocast: device_type 'cuda' but CUDA is not available".into(),
            ));
        }
        let code = scalar_type(dtype).ok_or_else(|| {
            Error::DType(format!("autocast: unsupported dtype {}", kind_str(dtype)))
        })?;
        let (prev_enabled, prev_dtype) = shim::autocast_get(device.code())?;
        shim::autocast_set(device.code(), enabled, code)?;
        if let Err(e) = shim::autocast_increment_nesting() {
            let _ = shim::autocast_set(device.code(), prev_enabled, prev_dtype);
            return Err(e);
        }
        Ok(AutocastGuard {
            device,
            prev_enabled,
            prev_dtype,
        })
    }

    pub fn device(&self) -> AutocastDevice {
        self.device
    }
}

impl Drop for AutocastGuard {
    fn drop(&mut self) {
        // Errors cannot propagate from drop; these calls only touch
        // thread-local flags and do not fail in practice.
        if let Ok(0) = shim::autocast_decrement_nesting() {
            let _ = shim::autocast_clear_cache();
        }
        let _ = shim::autocast_set(self.device.code(), self.prev_enabled, self.prev_dtype);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Tensor};

    #[test]
    fn autocast_guard_restores() {
        let dev = AutocastDevice::Cpu;
        let before = is_autocast_enabled(dev).unwrap();
        let dtype_before = autocast_dtype(dev).unwrap();
        {
            let _g = AutocastGuard::new(dev, Kind::Half, true).unwrap();
            assert!(is_autocast_enabled(dev).unwrap());
            assert_eq!(autocast_dtype(dev).unwrap(), Kind::Half);
            {
                let _off = AutocastGuard::new(dev, Kind::BFloat16, false).unwrap();
                assert!(!is_autocast_enabled(dev).unwrap());
            }
            assert_eq!(autocast_dtype(dev).unwrap(), Kind::Half);
            assert!(is_autocast_enabled(dev).unwrap());
        }
        assert_eq!(is_autocast_enabled(dev).unwrap(), before);
        assert_eq!(autocast_dtype(dev).unwrap(), dtype_before);
        assert!(AutocastGuard::new(dev, Kind::Float, true).is_err());
    }

    #[test]
    fn autocast_mm_runs_in_bf16() {
        let a = Tensor::ones([2, 2], (Kind::Float, Device::Cpu));
        let y = {
            let _g = AutocastGuard::new(AutocastDevice::Cpu, Kind::BFloat16, true).unwrap();
            a.mm(&a)
        };
        assert_eq!(y.kind(), Kind::BFloat16);
        assert_eq!(a.mm(&a).kind(), Kind::Float);
    }
}
