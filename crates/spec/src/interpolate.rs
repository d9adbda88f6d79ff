//! `${VAR}` interpolation exactly as docker/cli's `template` and `interpolation` packages do it.
