//! `status`, `ps`, `logs`, `scale`, `run`, `exec`, `rm`.

use crate::cli::{LogsArgs, StackArgs};
use crate::exit;

pub fn status(_stack: &StackArgs, _json: bool) -> u8 {
    super::fail(exit::FAILED, "`berth status` is not implemented yet", None)
}
pub fn ps(_stack: &StackArgs, _service: Option<&str>, _json: bool) -> u8 {
    super::fail(exit::FAILED, "`berth ps` is not implemented yet", None)
}
pub fn logs(_stack: &StackArgs, _args: &LogsArgs) -> u8 {
    super::fail(exit::FAILED, "`berth logs` is not implemented yet", None)
}
pub fn scale(_stack: &StackArgs, _targets: &[String]) -> u8 {
    super::fail(exit::FAILED, "`berth scale` is not implemented yet", None)
}
pub fn run(_stack: &StackArgs, _service: &str, _command: &[String]) -> u8 {
    super::fail(exit::FAILED, "`berth run` is not implemented yet", None)
}
pub fn exec(_stack: &StackArgs, _service: &str, _command: &[String]) -> u8 {
    super::fail(exit::FAILED, "`berth exec` is not implemented yet", None)
}
pub fn rm(_stack: &StackArgs, _volumes: bool, _yes: bool) -> u8 {
    super::fail(exit::FAILED, "`berth rm` is not implemented yet", None)
}
