//! The WIT `logs` interface: access-log lines parsed into request records.

use uwsgi_red_core::logs::{self, LogFormat, RequestRecord as CoreRecord};

use crate::bindings::exports::uwsgi_red::core::logs as wlogs;
use crate::Component;

fn record(r: &CoreRecord<'_>) -> wlogs::RequestRecord {
    let own = |s: Option<&str>| s.map(str::to_string);
    wlogs::RequestRecord {
        format: match r.format {
            LogFormat::Uwsgi => wlogs::LogFormat::Uwsgi,
            LogFormat::Gunicorn => wlogs::LogFormat::Gunicorn,
            LogFormat::GunicornWithMillis => wlogs::LogFormat::GunicornMillis,
        },
        method: r.method.to_string(),
        target: r.target.to_string(),
        path: r.path.to_string(),
        query: own(r.query),
        protocol: own(r.protocol),
        status: r.status,
        duration_us: r.duration_us,
        response_bytes: r.response_bytes,
        remote_addr: r.remote_addr.to_string(),
        remote_user: own(r.remote_user),
        referer: own(r.referer),
        user_agent: own(r.user_agent),
        time: r.time.to_string(),
        time_unix_nanos: r.time_unix_nanos,
        pid: r.pid,
        worker_requests: r.worker_requests,
        total_requests: r.total_requests,
        core: r.core,
        app: r.app,
        vars: r.vars,
        vars_bytes: r.vars_bytes,
        headers: r.headers,
        headers_bytes: r.headers_bytes,
        switches: r.switches,
    }
}

impl wlogs::Guest for Component {
    fn parse_line(line: String) -> Option<wlogs::RequestRecord> {
        logs::parse_line(&line).as_ref().map(record)
    }
}
