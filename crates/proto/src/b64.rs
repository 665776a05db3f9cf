//! base64url without padding (RFC 7515 §2), the only base64 flavour ACME uses.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::Error;

/// Encodes bytes as base64url without padding.
pub fn encode(data: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// Decodes base64url without padding; `what` names the field in the error.
pub fn decode(data: &str, what: &'static str) -> Result<Vec<u8>, Error> {
    URL_SAFE_NO_PAD
        .decode(data)
        .map_err(|_| Error::Base64(what))
}
