//! The JS side of option reading: [`JsObj`] lets the core's readers (`core::options`) look into
//! JS objects. Every decision stays in the core; this only classifies values.

use js_sys::{Function, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::fetch::Source;
use super::{aw_href, aw_is_array, aw_url, error, get, raw};
use crate::core::error::Code;
use crate::core::options::{Field, Obj, OptionError, SourceSpec};
use crate::core::url::{self, Parsed};

/// A JS object seen through the core's [`Obj`] trait.
pub struct JsObj(pub JsValue);

/// Classifies a JS value: a `URL` object is read as its `href` (as `fetch` and `WebSocket` read
/// it); an array or another object can be looked into; anything else is a [`Raw`].
pub fn field(v: JsValue) -> Field<JsObj> {
    if v.dyn_ref::<web_sys::Url>().is_some() {
        aw_href(&v).map_or(Field::Threw, |href| Field::Value(crate::core::session::Raw::Str(href)))
    } else if aw_is_array(&v) {
        Field::List(JsObj(v))
    } else if v.is_object() {
        Field::Object(JsObj(v))
    } else {
        Field::Value(raw(&v))
    }
}

impl Obj for JsObj {
    fn field(&self, key: &str) -> Field<JsObj> {
        // Unlike `get`, a throwing getter (or proxy trap) is reported, so the core names the field.
        match Reflect::get(&self.0, &JsValue::from_str(key)) {
            Ok(v) => field(v),
            Err(_) => Field::Threw,
        }
    }

    /// URL options are read by the browser's `URL`: what the core judges is the browser's own
    /// reading, and the wasm carries no URL parser.
    fn read_url(text: &str) -> Result<Parsed, Code> {
        browser_url(text)
    }
}

/// `text` as the browser's `URL` reads it (alone, with no base URL), judged by the core.
pub fn browser_url(text: &str) -> Result<Parsed, Code> {
    let a = aw_url(text).ok_or(Code::InvalidUrl)?;
    let s = |i| a.get(i).as_string().unwrap_or_default();
    url::from_browser(&s(0), a.get(1).is_truthy(), &s(2), &s(3), s(4))
}

/// The JS error for a refused option (`invalid_options`, `invalid_url` or `insecure_url`).
pub fn option_error(e: &OptionError) -> JsValue {
    error(e.code, &e.message)
}

/// The shell's token source for a checked spec; a callback source takes `options.refresh.fn`.
pub fn source(spec: SourceSpec, options: &JsValue) -> Result<Source, JsValue> {
    let callback = match spec {
        // The core saw a function there; a getter answering differently the second time is refused.
        SourceSpec::Callback => match get(&get(options, "refresh"), "fn").dyn_into::<Function>() {
            Ok(f) => Some(f),
            Err(v) => {
                return Err(option_error(&OptionError::new(
                    Code::InvalidOptions,
                    "refresh.fn".into(),
                    crate::core::text::cat(&[
                        "options.refresh.fn must be a function returning a session, got ",
                        raw(&v).type_name(),
                    ]),
                )))
            }
        },
        _ => None,
    };
    Ok(Source { spec, callback })
}
