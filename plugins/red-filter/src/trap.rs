//! Test-only (cargo feature `test-trap`, never in a shipped module): a
//! request carrying the header [`HEADER`] traps the VM in its
//! request-headers callback, so host tests can show what the host does
//! with a failed VM (Envoy's `failure_policy`) and that counting resumes.

use crate::props;

pub const HEADER: &str = "x-uwsgi-red-test-trap";

pub fn on_request_headers() {
    if props::request_header_bytes(HEADER).is_some() {
        #[cfg(target_arch = "wasm32")]
        core::arch::wasm32::unreachable();
    }
}
