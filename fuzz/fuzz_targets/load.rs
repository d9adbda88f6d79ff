//! Fuzzes the whole loader: parse → interpolate → validate → load → merge, on one or two
//! documents. The loader must never panic; it may only return diagnostics.
#![no_main]

use berth_spec::env::Env;
use libfuzzer_sys::fuzz_target;
use std::path::{Path, PathBuf};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // A NUL byte splits the input into a base file and an override file (multi-file merge).
    let docs: Vec<(PathBuf, String)> = text
        .splitn(2, '\0')
        .enumerate()
        .map(|(i, t)| (PathBuf::from(format!("/fuzz/f{i}.yml")), t.to_string()))
        .collect();
    let env = Env::from_pairs([("HOME".to_string(), "/home/f".to_string()), ("A".to_string(), "1".to_string())]);
    let _ = berth_spec::load::load_documents(&docs, Path::new("/fuzz"), &env);
});
