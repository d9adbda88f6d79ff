//! Validation of a document against the compose file format of its `version` (3.0–3.13).
