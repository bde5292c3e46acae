//! The `#[wasm_bindgen]` exports: the classes and types JavaScript sees.

pub mod auth;
pub mod chat;
pub mod types;
