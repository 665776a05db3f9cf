//! A CSR as finalize receives it (after base64url decoding), and a
//! certificate as revokeCert receives it: parse, verify, extract. No panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = site_encrypt_ca::fuzzing::check_csr(data);
    let _ = site_encrypt_ca::fuzzing::cert_facts(data);
});
