//! The parser never panics, its tree is well formed, and its leaves spell the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let tree = sigmalang::parse(data);
    if let Err(e) = tree.check() {
        panic!("tree check failed: {e}");
    }
    assert_eq!(tree.flatten(), data);
});
