#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| popgate_fuzz::verify_request(data));
