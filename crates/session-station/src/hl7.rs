//! HL7 v2 messages read for a person: each message parsed (by `hl7kit`) into segments,
//! fields, repetitions and components, the fields of the common segments named, and a
//! summary of patient, sample and results. A message that does not parse is kept raw
//! with the reason.

// None of these types has `Debug`: they hold message text, names and results (patient
// data), which never reach a log or a panic message.

/// One message of a session, parsed.
#[non_exhaustive]
pub struct MessageView {
    /// Its position among the session's messages (from 0).
    pub index: usize,
    /// Its text as sent.
    pub raw: String,
    /// Why it could not be parsed; then `segments` is empty.
    pub error: Option<String>,
    /// MSH-9 (`ORU^R01`).
    pub message_type: Option<String>,
    /// MSH-10.
    pub control_id: Option<String>,
    /// What a technician looks for first.
    pub summary: Summary,
    /// Every segment, in order.
    pub segments: Vec<SegmentView>,
}

/// Patient, sample and results at a glance.
#[derive(Default)]
#[non_exhaustive]
pub struct Summary {
    /// PID-3 (first repetition, first component).
    pub patient_id: Option<String>,
    /// PID-5, components joined by spaces.
    pub patient_name: Option<String>,
    /// The sample: OBR-3 (filler order number), else OBR-2, else SPM-2.
    pub sample_id: Option<String>,
    /// One per OBX.
    pub results: Vec<ResultView>,
}

/// One OBX at a glance.
#[non_exhaustive]
pub struct ResultView {
    /// OBX-3: code and text (`GLU Glucose`).
    pub test: String,
    /// OBX-5.
    pub value: String,
    /// OBX-6.
    pub units: String,
    /// OBX-7.
    pub reference_range: String,
    /// OBX-8 (`H`, `L`, `N`...).
    pub flag: String,
    /// OBX-11 (`F` final...).
    pub status: String,
}

/// One segment.
#[non_exhaustive]
pub struct SegmentView {
    /// `MSH`, `PID`...
    pub name: String,
    /// Its fields, numbered as the standard numbers them (MSH-1 is the separator).
    pub fields: Vec<FieldView>,
}

/// One field.
#[non_exhaustive]
pub struct FieldView {
    /// Its number (`9` in `MSH-9`).
    pub number: usize,
    /// Its name in HL7 v2.5, for the common segments.
    pub name: Option<&'static str>,
    /// Its text, escape sequences decoded.
    pub value: String,
    /// Each repetition's components, decoded (one repetition, one component for a
    /// plain value).
    pub repetitions: Vec<Vec<String>>,
}

/// Parses every message.
pub fn messages(texts: &[String]) -> Vec<MessageView> {
    texts
        .iter()
        .enumerate()
        .map(|(index, text)| message(index, text))
        .collect()
}

fn message(index: usize, text: &str) -> MessageView {
    let parsed = hl7kit::Message::parse(text);
    let msg = match parsed {
        Ok(msg) => msg,
        Err(e) => {
            return MessageView {
                index,
                raw: text.to_owned(),
                error: Some(e.to_string()),
                message_type: None,
                control_id: None,
                summary: Summary::default(),
                segments: Vec::new(),
            };
        }
    };
    let get = |path: &str| {
        msg.get_decoded(path)
            .map(|v| v.into_owned())
            .filter(|v| !v.is_empty())
    };
    let segments = segments(&msg);
    let results = results(&msg);
    let patient_name = msg.segment("PID").and_then(|pid| pid.field(5)).and_then(|f| {
        let name: Vec<String> = f
            .repetition(1)?
            .components()
            .map(|c| c.decoded().into_owned())
            .filter(|c| !c.is_empty())
            .collect();
        (!name.is_empty()).then(|| name.join(" "))
    });
    MessageView {
        index,
        raw: text.to_owned(),
        error: None,
        message_type: get("MSH-9"),
        control_id: get("MSH-10"),
        summary: Summary {
            patient_id: get("PID-3.1"),
            patient_name,
            sample_id: get("OBR-3.1")
                .or_else(|| get("OBR-2.1"))
                .or_else(|| get("SPM-2.1")),
            results,
        },
        segments,
    }
}

/// Every segment, its non-empty fields named and decoded.
fn segments(msg: &hl7kit::Message) -> Vec<SegmentView> {
    msg.segments()
        .map(|segment| SegmentView {
            name: segment.name().to_owned(),
            fields: segment
                .fields()
                .filter(|f| !f.is_empty())
                .map(|f| FieldView {
                    number: f.number(),
                    name: field_name(segment.name(), f.number()),
                    value: f.decoded().into_owned(),
                    repetitions: if segment.name() == "MSH" && f.number() <= 2 {
                        // The separators themselves: never split.
                        vec![vec![f.value().to_owned()]]
                    } else {
                        f.repetitions()
                            .map(|r| r.components().map(|c| c.decoded().into_owned()).collect())
                            .collect()
                    },
                })
                .collect(),
        })
        .collect()
}

/// Each OBX at a glance.
fn results(msg: &hl7kit::Message) -> Vec<ResultView> {
    msg.segments_named("OBX")
        .map(|obx| {
            let field = |n: usize| obx.field(n).map(|f| f.decoded().into_owned()).unwrap_or_default();
            let test = obx
                .field(3)
                .map(|f| {
                    f.repetition(1)
                        .map(|r| {
                            r.components()
                                .map(|c| c.decoded().into_owned())
                                .take(2)
                                .filter(|c| !c.is_empty())
                                .collect::<Vec<_>>()
                                .join(" ")
                        })
                        .unwrap_or_default()
                })
                .unwrap_or_default();
            ResultView {
                test,
                value: field(5),
                units: field(6),
                reference_range: field(7),
                flag: field(8),
                status: field(11),
            }
        })
        .collect()
}

/// The names HL7 v2.5 gives the fields of the segments a lab sees most, from field 1.
const FIELD_NAMES: &[(&str, &[&str])] = &[
    (
        "MSH",
        &[
            "Field separator",
            "Encoding characters",
            "Sending application",
            "Sending facility",
            "Receiving application",
            "Receiving facility",
            "Date/time of message",
            "Security",
            "Message type",
            "Message control ID",
            "Processing ID",
            "Version ID",
            "Sequence number",
            "Continuation pointer",
            "Accept acknowledgment type",
            "Application acknowledgment type",
            "Country code",
            "Character set",
            "Principal language of message",
        ],
    ),
    (
        "PID",
        &[
            "Set ID",
            "Patient ID (external)",
            "Patient identifier list",
            "Alternate patient ID",
            "Patient name",
            "Mother's maiden name",
            "Date/time of birth",
            "Administrative sex",
            "Patient alias",
            "Race",
            "Patient address",
            "County code",
            "Phone number (home)",
            "Phone number (business)",
            "Primary language",
            "Marital status",
            "Religion",
            "Patient account number",
            "SSN number",
            "Driver's license number",
        ],
    ),
    (
        "PV1",
        &[
            "Set ID",
            "Patient class",
            "Assigned patient location",
            "Admission type",
            "Preadmit number",
            "Prior patient location",
            "Attending doctor",
            "Referring doctor",
            "Consulting doctor",
            "Hospital service",
            "Temporary location",
            "Preadmit test indicator",
            "Re-admission indicator",
            "Admit source",
            "Ambulatory status",
            "VIP indicator",
            "Admitting doctor",
            "Patient type",
            "Visit number",
        ],
    ),
    (
        "ORC",
        &[
            "Order control",
            "Placer order number",
            "Filler order number",
            "Placer group number",
            "Order status",
            "Response flag",
            "Quantity/timing",
            "Parent order",
            "Date/time of transaction",
            "Entered by",
            "Verified by",
            "Ordering provider",
            "Enterer's location",
            "Call back phone number",
            "Order effective date/time",
        ],
    ),
    (
        "OBR",
        &[
            "Set ID",
            "Placer order number",
            "Filler order number (sample)",
            "Universal service identifier",
            "Priority",
            "Requested date/time",
            "Observation date/time",
            "Observation end date/time",
            "Collection volume",
            "Collector identifier",
            "Specimen action code",
            "Danger code",
            "Relevant clinical information",
            "Specimen received date/time",
            "Specimen source",
            "Ordering provider",
            "Order callback phone number",
            "Placer field 1",
            "Placer field 2",
            "Filler field 1",
            "Filler field 2",
            "Results report/status change",
            "Charge to practice",
            "Diagnostic service section ID",
            "Result status",
        ],
    ),
    (
        "OBX",
        &[
            "Set ID",
            "Value type",
            "Observation identifier (test)",
            "Observation sub-ID",
            "Observation value",
            "Units",
            "Reference range",
            "Abnormal flags",
            "Probability",
            "Nature of abnormal test",
            "Observation result status",
            "Effective date of reference range",
            "User defined access checks",
            "Date/time of the observation",
            "Producer's ID",
            "Responsible observer",
            "Observation method",
            "Equipment instance identifier",
            "Date/time of the analysis",
        ],
    ),
    ("NTE", &["Set ID", "Source of comment", "Comment", "Comment type"]),
    (
        "MSA",
        &[
            "Acknowledgment code",
            "Message control ID",
            "Text message",
            "Expected sequence number",
            "Delayed acknowledgment type",
            "Error condition",
        ],
    ),
];

/// The name HL7 v2.5 gives field `n` of `segment`, for the segments a lab sees most.
pub fn field_name(segment: &str, n: usize) -> Option<&'static str> {
    let (_, names) = FIELD_NAMES.iter().find(|(name, _)| *name == segment)?;
    names.get(n.checked_sub(1)?).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORU: &str = "MSH|^~\\&|ANALYZER|LAB|LIS|HOSP|20261204120000||ORU^R01|C1|P|2.5\r\
        PID|1||PAT-7^^^HOSP||DOE^JANE^Q\r\
        OBR|1|PL-1|S-100|GLU^Glucose\r\
        OBX|1|NM|GLU^Glucose^LN||7.9|mmol/L|3.9-5.8|H|||F\r\
        NTE|1||fasting \\T\\ repeated";

    #[test]
    fn a_result_message_reads_with_names_and_a_summary() {
        let view = &messages(&[ORU.to_owned()])[0];
        assert_eq!(view.error, None);
        assert_eq!(view.message_type.as_deref(), Some("ORU^R01"));
        assert_eq!(view.control_id.as_deref(), Some("C1"));
        assert_eq!(view.summary.patient_id.as_deref(), Some("PAT-7"));
        assert_eq!(view.summary.patient_name.as_deref(), Some("DOE JANE Q"));
        assert_eq!(view.summary.sample_id.as_deref(), Some("S-100"));
        let r = &view.summary.results[0];
        assert_eq!(
            (
                &*r.test,
                &*r.value,
                &*r.units,
                &*r.reference_range,
                &*r.flag,
                &*r.status
            ),
            ("GLU Glucose", "7.9", "mmol/L", "3.9-5.8", "H", "F")
        );
        let names: Vec<&str> = view.segments.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["MSH", "PID", "OBR", "OBX", "NTE"]);
        let msh9 = view.segments[0].fields.iter().find(|f| f.number == 9).unwrap();
        assert_eq!(
            (msh9.name, &msh9.repetitions),
            (
                Some("Message type"),
                &vec![vec!["ORU".to_owned(), "R01".to_owned()]]
            )
        );
        let msh2 = view.segments[0].fields.iter().find(|f| f.number == 2).unwrap();
        assert_eq!(
            msh2.repetitions,
            vec![vec!["^~\\&".to_owned()]],
            "the separators are never split"
        );
        // Escapes decode: \T\ is the subcomponent separator.
        let nte = &view.segments[4]
            .fields
            .iter()
            .find(|f| f.number == 3)
            .unwrap()
            .value;
        assert_eq!(nte, "fasting & repeated");
    }

    #[test]
    fn a_message_that_does_not_parse_is_shown_raw_with_the_reason() {
        for bad in ["", "PID|1||X", "MSH", "\u{0}\u{1}garbage"] {
            let view = &messages(&[bad.to_owned()])[0];
            assert!(view.error.is_some(), "{bad:?}");
            assert_eq!(view.raw, bad);
            assert!(view.segments.is_empty());
        }
        assert_eq!(field_name("ZZZ", 1), None);
        assert_eq!(field_name("OBX", 0), None);
        assert_eq!(field_name("OBX", 5), Some("Observation value"));
    }
}
