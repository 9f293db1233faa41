#![no_main]
//! The JSON-lines form: any bytes given to its inverse (`jsonform::decode`) never panic, and
//! any bytes given to the transform come back exactly (`decode(encode(x)) == x`). The input is
//! also cut in two at its first `0x1E` byte, a record and the frame it is coded against: coding
//! the record's form against the frame's, or against no frame (`jsonform::against`: `^`, `~`,
//! `=` values), comes back through `jsonform::resolve_all`, a form as `encode` makes it
//! resolves to itself, and `resolve` and `resolve_all` of any bytes against any frame never
//! panic.

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
    for against in [Some(&frame_form[..]), None] {
        let mut coded = Vec::new();
        if jsonform::against(&form, against, &mut coded) {
            jsonform::resolve_all(&mut coded, against).expect("resolves against its frame");
            assert!(coded == form, "against then resolve does not give back the form");
        }
    }
    let mut same = form.clone();
    jsonform::resolve_all(&mut same, Some(&frame_form)).expect("a plain form resolves");
    assert!(same == form, "a form as encode makes it holds no tokens");
    for resolve in [jsonform::resolve, jsonform::resolve_all] {
        let mut raw = record.to_vec();
        let _ = resolve(&mut raw, Some(frame));
        let mut raw = record.to_vec();
        let _ = resolve(&mut raw, None);
    }
});
