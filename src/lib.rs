//! authwire: browser auth for chat and agent front ends, in Rust compiled to WebAssembly.
//!
//! - [`core`]: pure state machines (session, refresh policy, wire formats), tested natively.
//! - `web` (wasm only): the browser shell: timers, fetch, DOM wake-up listeners.
//! - `js` (wasm only): the `#[wasm_bindgen]` classes JavaScript sees (`AuthSession`).
#![deny(missing_docs)]
// A match arm no value reaches is a bug here (the lite build's no-op arms must follow the full
// build's guarded ones): an error in every build, the tests' included.
#![deny(unreachable_patterns)]
// The lite build (no `full` feature) leaves code unreachable behind a constant; the full build
// warns as usual.
#![cfg_attr(not(feature = "full"), allow(dead_code, unused_imports))]

pub mod core;

/// The allocator: talc (dlmalloc-style, with boundary tags and bins, so freed blocks coalesce and
/// the heap stays flat over long sessions), smaller than std's dlmalloc in the wasm.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

#[cfg(target_arch = "wasm32")]
pub mod js;
#[cfg(target_arch = "wasm32")]
pub mod web;

#[cfg(target_arch = "wasm32")]
pub use js::auth::AuthSession;
#[cfg(target_arch = "wasm32")]
pub use js::chat::ChatSocket;
