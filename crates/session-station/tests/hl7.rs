//! HL7 messages read for a person: what a technician looks for first, the sample's id
//! from wherever the message keeps it, empty fields left out, separators never split.

use session_station::hl7::{field_name, messages};

#[test]
fn the_sample_id_comes_from_obr_3_then_obr_2_then_spm_2() {
    let texts = [
        "MSH|^~\\&|A|L|||20261204||ORU^R01|1|P|2.5\rOBR|1|PL-1|FI-2\rSPM|1|SP-3",
        "MSH|^~\\&|A|L|||20261204||ORU^R01|2|P|2.5\rOBR|1|PL-1\rSPM|1|SP-3",
        "MSH|^~\\&|A|L|||20261204||ORU^R01|3|P|2.5\rSPM|1|SP-3^X",
        "MSH|^~\\&|A|L|||20261204||ORU^R01|4|P|2.5\rPID|1",
    ]
    .map(str::to_owned);
    let samples: Vec<Option<String>> = messages(&texts)
        .iter()
        .map(|m| m.summary.sample_id.clone())
        .collect();
    assert_eq!(
        samples,
        [
            Some("FI-2".into()),
            Some("PL-1".into()),
            Some("SP-3".into()),
            None
        ]
    );
}

#[test]
fn empty_fields_are_left_out_and_a_name_of_no_parts_is_no_name() {
    let text = "MSH|^~\\&|A|L|||20261204||ORU^R01|C9|P|2.5\rPID|1||P-1||^^\rOBX|1|NM|^Glucose^LN||5.1";
    let view = &messages(&[text.to_owned()])[0];
    assert_eq!(view.summary.patient_name, None);
    assert_eq!(view.summary.patient_id.as_deref(), Some("P-1"));
    let pid = &view.segments[1];
    let numbers: Vec<usize> = pid.fields.iter().map(|f| f.number).collect();
    assert_eq!(numbers, [1, 3, 5], "fields 2 and 4 are empty");
    assert_eq!(pid.fields[2].name, Some("Patient name"));
    // A test with no code reads by its text alone; only code and text are shown.
    assert_eq!(view.summary.results[0].test, "Glucose");
    let coded = "MSH|^~\\&|A|L|||20261204||ORU^R01|C9|P|2.5\rOBX|1|NM|GLU^Glucose^LN^extra||5.1";
    assert_eq!(
        messages(&[coded.to_owned()])[0].summary.results[0].test,
        "GLU Glucose"
    );
}

#[test]
fn msh_1_and_2_are_the_separators_themselves_and_msh_3_splits() {
    let text = "MSH|^~\\&|APP^FAC|L|||20261204||ORU^R01|C9|P|2.5";
    let view = &messages(&[text.to_owned()])[0];
    let msh = &view.segments[0];
    let field = |n: usize| msh.fields.iter().find(|f| f.number == n).unwrap();
    assert_eq!(field(1).repetitions, vec![vec!["|".to_owned()]]);
    assert_eq!(field(2).repetitions, vec![vec!["^~\\&".to_owned()]]);
    assert_eq!(
        field(3).repetitions,
        vec![vec!["APP".to_owned(), "FAC".to_owned()]]
    );
    assert_eq!(view.index, 0);
    // Only MSH's: field 2 of any other segment splits as any field does.
    let pid = "MSH|^~\\&|A|L|||20261204||ORU^R01|C9|P|2.5\rPID|1|EXT^ID~ALT";
    let view = &messages(&[pid.to_owned()])[0];
    let pid2 = view.segments[1].fields.iter().find(|f| f.number == 2).unwrap();
    assert_eq!(
        pid2.repetitions,
        vec![vec!["EXT".to_owned(), "ID".to_owned()], vec!["ALT".to_owned()]]
    );
    let two = messages(&[text.to_owned(), text.to_owned()]);
    assert_eq!(two[1].index, 1);
}

#[test]
fn every_named_segment_names_its_fields_from_one_and_no_further() {
    for (segment, count, last) in [
        ("MSH", 19, "Principal language of message"),
        ("PID", 20, "Driver's license number"),
        ("PV1", 19, "Visit number"),
        ("ORC", 15, "Order effective date/time"),
        ("OBR", 25, "Result status"),
        ("OBX", 19, "Date/time of the analysis"),
        ("NTE", 4, "Comment type"),
        ("MSA", 6, "Error condition"),
    ] {
        assert_eq!(field_name(segment, count), Some(last), "{segment}-{count}");
        assert_eq!(field_name(segment, count + 1), None, "{segment}-{}", count + 1);
        assert!(field_name(segment, 1).is_some());
    }
    assert_eq!(field_name("MSH", 1), Some("Field separator"));
}
