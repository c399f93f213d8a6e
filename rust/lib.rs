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
    /// User code called back from the core (a Python node or loss) failed;
    /// the bindings keep the original exception and re-raise it.
    #[error("{0}")]
    External(String),
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
    /// A tensor on the wrong device for a node or parameter (DeviceError, a
    /// ValueError); the message names the node and both devices.
    #[error("{0}")]
    Device(String),
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
            Error::External(m) => Error::External(wrap(m)),
            Error::Checkpoint(m) => Error::Checkpoint(wrap(m)),
            Error::Io(m) => Error::Io(wrap(m)),
            Error::Training(m) => Error::Training(wrap(m)),
            Error::Device(m) => Error::Device(wrap(m)),
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
