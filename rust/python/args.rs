//! Typed extraction inside a binding's body, for arguments of methods and of
//! classes users construct directly from the extension, where pyo3's own
//! extraction errors would reach the user untranslated (see `boundary.rs`
//! for the calls that are translated). Counts are read as signed integers
//! and validated, so a negative one is a `ConfigError` naming the argument.

use pyo3::prelude::*;
use pyo3::types::PyBool;

use super::errors::{raise, Exc};

fn shown(ob: &Bound<'_, PyAny>) -> String {
    let r = ob
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "<unprintable>".into());
    r.chars().take(80).collect()
}

/// `ob` as `T`; a wrong type is an `InputTypeError` naming `what` (the
/// callable, "DataLoader.epoch()"), the argument and the value.
pub fn extract<'py, T: FromPyObject<'py>>(
    ob: &Bound<'py, PyAny>,
    what: &str,
    name: &str,
    expected: &str,
) -> PyResult<T> {
    ob.extract().map_err(|_| {
        raise(
            Exc::InputType,
            format!(
                "{what}: argument '{name}' must be {expected}, got {} {}",
                ob.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default(),
                shown(ob)
            ),
        )
    })
}

/// A count or index: an int (not a bool) from 0 to 2**64 - 1; otherwise an
/// `InputTypeError` (wrong type) or `ConfigError` (out of range) naming the
/// argument and the value.
pub fn count(ob: &Bound<'_, PyAny>, what: &str, name: &str) -> PyResult<u64> {
    not_bool(ob, what, name)?;
    let v: i128 = extract(ob, what, name, "an integer").or_else(|e| {
        // An int beyond i128: out of range, not of the wrong type.
        if ob.is_instance_of::<pyo3::types::PyInt>() {
            Ok(i128::MAX)
        } else {
            Err(e)
        }
    })?;
    u64::try_from(v).map_err(|_| {
        let rule = if v < 0 {
            "a non-negative integer"
        } else {
            "an integer below 2**64"
        };
        raise(
            Exc::Config,
            format!(
                "{what}: argument '{name}' must be {rule}, got {}",
                shown(ob)
            ),
        )
    })
}

/// A signed integer (not a bool); its range is the core's to check.
pub fn int(ob: &Bound<'_, PyAny>, what: &str, name: &str) -> PyResult<i64> {
    not_bool(ob, what, name)?;
    extract(ob, what, name, "an integer")
}

/// A bool is an int to Python, never a count.
fn not_bool(ob: &Bound<'_, PyAny>, what: &str, name: &str) -> PyResult<()> {
    if ob.is_instance_of::<PyBool>() {
        return Err(raise(
            Exc::InputType,
            format!(
                "{what}: argument '{name}' must be an integer, got bool {}",
                shown(ob)
            ),
        ));
    }
    Ok(())
}

/// A real number (an int, a float, anything with `__float__`).
pub fn float(ob: &Bound<'_, PyAny>, what: &str, name: &str) -> PyResult<f64> {
    extract(ob, what, name, "a number")
}
