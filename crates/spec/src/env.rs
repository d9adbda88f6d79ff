//! Environment for interpolation: the process environment, `--env-file`s and `.env`.
//! (Owned by the interpolation work; see `interpolate.rs`.)
