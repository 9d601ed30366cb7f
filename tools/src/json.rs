//! Rendering stored record payloads (self-describing MessagePack) as JSON, without knowing
//! their Rust type.

use anyhow::Context;
use kho::record::Record;

/// A payload as a JSON value.
pub fn payload_to_json(payload: &[u8]) -> anyhow::Result<serde_json::Value> {
    rmp_serde::from_slice(payload).context("payload is not valid MessagePack")
}

/// A record (location, owner and payload) as a JSON object.
pub fn record_to_json(r: &Record) -> anyhow::Result<serde_json::Value> {
    Ok(serde_json::json!({
        "collection": &*r.collection,
        "pk": String::from_utf8_lossy(&r.pk),
        "national_id": r.id.as_str(),
        "payload": payload_to_json(&r.payload)?,
    }))
}
