#![no_main]
//! The JSON-lines form: any bytes given to its inverse (`jsonform::decode`) never panic, and
//! any bytes given to the transform come back exactly (`decode(encode(x)) == x`).

use libfuzzer_sys::fuzz_target;
use sigmalang::jsonform;

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    let _ = jsonform::decode(data, &mut out);
    let mut form = Vec::new();
    jsonform::encode(data, &mut form);
    let mut back = Vec::new();
    jsonform::decode(&form, &mut back).expect("a form the encoder made decodes");
    assert!(back == data, "the form does not give back the record");
});
