//! Every case of `cases::all` through the component under wasmtime must give
//! exactly the native result.

use uwsgi_red_wasmtime_host::cases;
use uwsgi_red_wasmtime_host::native;
use uwsgi_red_wasmtime_host::wasm::Host;

#[test]
fn component_matches_native_core_on_every_vector() {
    let mut host = Host::load().unwrap_or_else(|e| panic!("{e}"));
    let dir = cases::vectors_dir();
    let all = cases::all(&dir);
    let mut mismatches = Vec::new();
    for c in &all {
        let want = native::run(&dir, c);
        let got = host
            .run(&dir, c)
            .unwrap_or_else(|e| panic!("{}: wasmtime error: {e:?}", c.id));
        if got != want {
            mismatches.push(format!("{}\n  native:    {want}\n  component: {got}", c.id));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} cases differ:\n{}",
        mismatches.len(),
        all.len(),
        mismatches.join("\n")
    );
    println!("{} cases equal", all.len());
}

#[test]
fn encode_head_round_trips_the_captured_packets() {
    let mut host = Host::load().unwrap_or_else(|e| panic!("{e}"));
    let dir = cases::vectors_dir();
    let mut n = 0;
    for f in cases::vector_files(&dir)
        .iter()
        .filter(|f| f.starts_with("pkt_") && f.ends_with(".bin"))
    {
        let bytes = cases::read(&dir, f);
        let (m1, m2, vars) = cases::packet_vars(&bytes);
        let head = host
            .api
            .uwsgi_red_core_uwsgi()
            .call_encode_head(&mut host.store, m1, m2, &vars)
            .unwrap();
        let head = head.unwrap_or_else(|e| panic!("{f}: {e:?}"));
        assert_eq!(
            head[..],
            bytes[..head.len()],
            "{f}: re-encoded head differs from the capture"
        );
        n += 1;
    }
    assert_eq!(n, 10);
}
