//! The JSON of `session_station::hl7`'s message views, as `GET /api/sessions/{id}`
//! documents it: the tool's own format, so that a library rename never changes it.

use serde_json::{Value, json};
use session_station::hl7::{self, MessageView};

/// Every message of a session, parsed, as JSON.
pub(crate) fn messages(texts: &[String]) -> Vec<Value> {
    hl7::messages(texts).iter().map(message).collect()
}

fn message(view: &MessageView) -> Value {
    let summary = &view.summary;
    json!({
        "index": view.index,
        "raw": view.raw,
        "error": view.error,
        "messageType": view.message_type,
        "controlId": view.control_id,
        "summary": {
            "patientId": summary.patient_id,
            "patientName": summary.patient_name,
            "sampleId": summary.sample_id,
            "results": summary.results.iter().map(|r| json!({
                "test": r.test,
                "value": r.value,
                "units": r.units,
                "referenceRange": r.reference_range,
                "flag": r.flag,
                "status": r.status,
            })).collect::<Vec<_>>(),
        },
        "segments": view.segments.iter().map(|s| json!({
            "name": s.name,
            "fields": s.fields.iter().map(|f| json!({
                "number": f.number,
                "name": f.name,
                "value": f.value,
                "repetitions": f.repetitions,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}
