//! The two ways core turns a stats reply into a Prometheus page, as text,
//! for the tests that require them to agree byte for byte: the owned path
//! (`decode` + `map_document` + `encode_text`, what the CLI runs) and the fast
//! path (`scrape`, what the uwsgi-stats plugin runs).

use uwsgi_red_core::stats::families::{
    encode_text, map_document, scrape_families, MapOptions, ScrapeStatus,
};
use uwsgi_red_core::stats::{decode, scrape, StatsError, DEFAULT_MAX_DOCUMENT_BYTES};

pub fn owned_text(reply: &[u8], opts: &MapOptions) -> Result<String, StatsError> {
    let d = decode(reply)?;
    let status = ScrapeStatus {
        up: true,
        repairs: d.repairs as u64,
        document_bytes: d.body_bytes as u64,
    };
    let mut fams = scrape_families("app1", &status);
    fams.extend(map_document(&d.document, "app1", opts));
    Ok(encode_text(&fams))
}

pub fn fast_text(reply: &[u8], opts: &MapOptions) -> Result<String, StatsError> {
    scrape(reply, "app1", opts, DEFAULT_MAX_DOCUMENT_BYTES).map(|s| s.text)
}
