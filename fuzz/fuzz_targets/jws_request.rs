//! A request body as the CA receives it: parse, check the URL, verify with the
//! embedded key. Nothing may panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use site_encrypt_proto::ParsedJws;

fuzz_target!(|data: &[u8]| {
    if let Ok(jws) = ParsedJws::parse_request(data) {
        let _ = jws.check_url("https://ca.test/acme/new-order");
        if let Some(jwk) = &jws.header().jwk {
            let _ = jwk.thumbprint();
            let _ = jws.verify(jwk);
        }
        let _ = jws.json::<serde_json::Value>("payload");
    }
});
