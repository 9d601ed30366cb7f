//! Rendering stored record payloads (self-describing MessagePack) as JSON, without knowing
//! their Rust type.

use anyhow::Context;
use kho::record::Record;

use crate::fmt::Bytes;

/// A payload as a JSON value.
pub fn payload_to_json(payload: &[u8]) -> anyhow::Result<serde_json::Value> {
    rmp_serde::from_slice(payload).context("payload is not valid MessagePack")
}

/// A record (location, owner and payload) as a JSON object, the primary key shown as `b`
/// says. A payload that does not decode is `null`, with `payload_error` saying why and
/// `payload_hex` holding its bytes.
pub fn record_json(b: Bytes, r: &Record) -> serde_json::Value {
    let mut v = serde_json::json!({
        "collection": &*r.collection,
        "pk": b.show(&r.pk),
        "national_id": r.id.as_str(),
    });
    match payload_to_json(&r.payload) {
        Ok(p) => v["payload"] = p,
        Err(e) => {
            v["payload"] = serde_json::Value::Null;
            v["payload_error"] = format!("{e:#}").into();
            v["payload_hex"] = crate::fmt::hex(&r.payload).into();
        }
    }
    v
}
