#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| popgate_fuzz::citizen_record(data));
