//! ferrotorch: floDl-style model building and training on libtorch.
//!
//! The core knows nothing of Python: `python/` (behind the `python` feature)
//! converts arguments and maps [`Error`] to Python exceptions, nothing more.

pub mod amp;
pub mod checkpoint;
pub mod clip;
pub mod data;
pub mod datasets;
pub mod dist;
pub mod grad_checkpoint;
pub mod graph;
pub mod loss;
pub mod metrics;
pub mod nn;
pub mod optim;
pub mod sched;
pub mod shim;
pub mod substitute;
pub mod tensor;
pub mod train;

#[cfg(feature = "python")]
mod python;

/// The torch release this crate is built and tested against (tch 0.24).
pub const TORCH_VERSION: &str = "2.11.0";

/// Every failure the core reports. Each variant maps to one Python exception
/// class (`ferrotorch.errors`); messages name the node, tag, path or argument.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad hyperparameter, name or option (Python: ConfigError, a ValueError).
    #[error("{0}")]
    Value(String),
    /// Tensor shapes that do not fit (ShapeError, a ValueError).
    #[error("{0}")]
    Shape(String),
    /// A tensor of the wrong dtype (DTypeError, a TypeError).
    #[error("{0}")]
    DType(String),
    /// An invalid graph: build errors, bad wiring (GraphError, a ValueError).
    #[error("{0}")]
    Graph(String),
    /// An unknown tag, path or name (TagError, a KeyError).
    #[error("{0}")]
    Key(String),
    /// A failure reported by libtorch itself (TorchError, a RuntimeError).
    #[error("{0}")]
    Torch(String),
    /// User code called back from the core (a Python node or loss) failed.
    /// The error carries what it raised (`cause`, opaque to the core), so
    /// the bindings re-raise that exception itself and no other.
    #[error("{message}")]
    External { message: String, cause: Cause },
    /// A checkpoint file that is truncated, corrupt or does not fit the model
    /// (CheckpointError, a ValueError); the message names the file.
    #[error("{0}")]
    Checkpoint(String),
    /// An operating-system failure on a file: missing, no permission, disk
    /// full (FileError, an OSError); the message names the file.
    #[error("{0}")]
    Io(String),
    /// Training cannot go on: a non-finite loss or gradient, named by step
    /// and batch, with nothing updated (TrainingError, a RuntimeError).
    #[error("{0}")]
    Training(String),
    /// An index past the end of a dimension or sequence (OutOfRangeError,
    /// an IndexError); the message names the index and the size.
    #[error("{0}")]
    OutOfRange(String),
    /// A tensor on the wrong device for a node or parameter (DeviceError, a
    /// ValueError); the message names the node and both devices.
    #[error("{0}")]
    Device(String),
    /// ferrotorch's own state is broken (a lock poisoned by an earlier
    /// panic, optimizer state that should exist, an internal call out of
    /// order): a bug in ferrotorch, not in the caller's code or data
    /// (InternalError, a RuntimeError).
    #[error("{0}")]
    Internal(String),
}

/// What a failed callback raised, carried through the core unread: the
/// bindings put their language's exception in and take it back out where
/// the error leaves the core.
pub struct Cause(Option<Box<dyn std::any::Any + Send + Sync>>);

impl Cause {
    pub fn new<T: std::any::Any + Send + Sync>(payload: T) -> Self {
        Cause(Some(Box::new(payload)))
    }

    /// No payload: the message is all there is.
    pub fn none() -> Self {
        Cause(None)
    }

    /// The payload, if it is a `T`.
    pub fn take<T: std::any::Any>(self) -> Option<T> {
        self.0?.downcast::<T>().ok().map(|b| *b)
    }
}

impl std::fmt::Debug for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Cause(..)"
        } else {
            "Cause(none)"
        })
    }
}

impl Error {
    /// Prefixes the message with where it happened, keeping the variant.
    pub fn context(self, at: &str) -> Error {
        let wrap = |m: String| format!("{at}: {m}");
        match self {
            Error::Value(m) => Error::Value(wrap(m)),
            Error::Shape(m) => Error::Shape(wrap(m)),
            Error::DType(m) => Error::DType(wrap(m)),
            Error::Graph(m) => Error::Graph(wrap(m)),
            Error::Key(m) => Error::Key(wrap(m)),
            Error::Torch(m) => Error::Torch(wrap(m)),
            Error::External { message, cause } => Error::External {
                message: wrap(message),
                cause,
            },
            Error::Checkpoint(m) => Error::Checkpoint(wrap(m)),
            Error::Io(m) => Error::Io(wrap(m)),
            Error::Training(m) => Error::Training(wrap(m)),
            Error::Device(m) => Error::Device(wrap(m)),
            Error::OutOfRange(m) => Error::OutOfRange(wrap(m)),
            Error::Internal(m) => Error::Internal(wrap(m)),
        }
    }
}

impl From<tch::TchError> for Error {
    fn from(e: tch::TchError) -> Self {
        // tch's messages carry a C++ backtrace after the first lines; keep the gist.
        let msg = e.to_string();
        let short: Vec<&str> = msg
            .lines()
            .take_while(|l| !l.starts_with("Exception raised from"))
            .collect();
        Error::Torch(short.join("\n"))
    }
}

pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_keeps_the_variant_and_an_external_error_its_cause() {
        let e = Error::External {
            message: "loss raised".into(),
            cause: Cause::new(7u32),
        }
        .context("node 'a'");
        let Error::External { message, cause } = e else {
            panic!("variant changed");
        };
        assert_eq!(message, "node 'a': loss raised");
        assert_eq!(cause.take::<u32>(), Some(7));
        assert!(matches!(
            Error::Internal("x".into()).context("at"),
            Error::Internal(m) if m == "at: x"
        ));
        assert_eq!(Cause::new(1u8).take::<u32>(), None);
        assert_eq!(Cause::none().take::<u8>(), None);
    }
}
