#![no_main]
//! The JSON-lines form: any bytes given to its inverse (`jsonform::decode`) never panic, and
//! any bytes given to the transform come back exactly (`decode(encode(x)) == x`). The input is
//! also cut in two at its first `0x1E` byte, a record and the frame it is coded against: coding
//! the record's form against the frame's (`jsonform::against`) comes back through
//! `jsonform::resolve`, and `resolve` of any bytes against any frame never panics.

use libfuzzer_sys::fuzz_target;
use sigmalang::jsonform;

fn form_of(x: &[u8]) -> Vec<u8> {
    let mut form = Vec::new();
    jsonform::encode(x, &mut form);
    let mut back = Vec::new();
    jsonform::decode(&form, &mut back).expect("a form the encoder made decodes");
    assert!(back == x, "the form does not give back the record");
    form
}

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    let _ = jsonform::decode(data, &mut out);
    form_of(data);
    let (record, frame) = match data.iter().position(|&b| b == 0x1E) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &data[..0]),
    };
    let (form, frame_form) = (form_of(record), form_of(frame));
    let mut coded = Vec::new();
    if jsonform::against(&form, &frame_form, &mut coded) {
        jsonform::resolve(&mut coded, Some(&frame_form)).expect("resolves against its frame");
        assert!(coded == form, "against then resolve does not give back the form");
    }
    let mut raw = record.to_vec();
    let _ = jsonform::resolve(&mut raw, Some(frame));
    let mut raw = record.to_vec();
    let _ = jsonform::resolve(&mut raw, None);
});
