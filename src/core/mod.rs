//! The pure core: no web-sys, no js-sys, no clock. Every decision of the SDK lives here and is
//! tested natively with `cargo test`; the browser shell in `web` only performs the actions.

pub mod auth_machine;
pub mod error;
pub mod json;
pub mod options;
pub mod origins;
pub mod policy;
pub mod protocol;
pub mod session;
pub mod socket_machine;
pub mod source;
pub mod tabs;
pub mod text;
pub mod token;
pub mod url;
