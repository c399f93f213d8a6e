//! Mixed precision, by job: the gradient scaler (`scaler.rs`, equal to
//! `torch.amp.GradScaler` step by step), the unscale/found-inf pass it shares
//! with the engine (`unscale.rs`), the autocast guard (`autocast.rs`) and
//! in-place parameter casting (`cast.rs`).

mod autocast;
mod cast;
mod scaler;
mod unscale;

pub use autocast::{
    amp_dtype, autocast_dtype, is_autocast_enabled, needs_scaler, AutocastDevice, AutocastGuard,
};
pub use cast::cast_parameters;
pub use scaler::{
    step_checked, GradScaler, ScalerConfig, ScalerState, StepPath, NO_CUDA_WARNING, PARAMS_KEY,
};
pub use unscale::{all_params, unscale_grads};
