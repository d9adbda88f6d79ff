//! `deploy`, `rollback`, `releases`.

use crate::cli::{DeployArgs, RollbackArgs, StackArgs};
use crate::exit;

pub fn deploy(_stack: &StackArgs, _args: &DeployArgs) -> u8 {
    super::fail(exit::FAILED, "`berth deploy` is not implemented yet", None)
}

pub fn rollback(_stack: &StackArgs, _args: &RollbackArgs) -> u8 {
    super::fail(exit::FAILED, "`berth rollback` is not implemented yet", None)
}

pub fn releases(_stack: &StackArgs, _json: bool) -> u8 {
    super::fail(exit::FAILED, "`berth releases` is not implemented yet", None)
}
