//! The nested JWS of key change (§7.3.5) and external account binding (§7.3.4).
#![no_main]

use libfuzzer_sys::fuzz_target;
use site_encrypt_proto::*;

fuzz_target!(|data: &[u8]| {
    let old = Jwk::Ec { crv: Curve::P256, x: "AAAA".into(), y: "AAAA".into() };
    let _ = verify_key_change(data, "https://ca.test/kc", "https://ca.test/acct/1", &old);
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = verify_eab(&v, "https://ca.test/na", &old, |_| Some(b"key".to_vec()));
    }
});
