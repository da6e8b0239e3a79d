//! What comes off the stats socket: either the bare JSON (raw mode: the
//! master writes and closes) or an `--stats-http` reply (`HTTP/1.0 200 OK`,
//! no Content-Length, body until EOF). Both are accepted; callers need not
//! know how the server was configured.

use super::error::StatsError;

/// The JSON body inside `reply`, with an HTTP head (if any) checked and stripped.
pub fn body(reply: &[u8]) -> Result<&[u8], StatsError> {
    let start = reply
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(reply.len());
    let rest = reply.get(start..).unwrap_or_default();
    if rest.is_empty() {
        return Err(StatsError::Empty);
    }
    if !rest.starts_with(b"HTTP/") {
        return Ok(rest);
    }
    let (head, body) = split_head(rest)?;
    let head = std::str::from_utf8(head).map_err(|_| StatsError::BadHttp {
        message: "head is not UTF-8".into(),
    })?;
    let mut lines = head.split('\n').map(|l| l.trim_end_matches('\r'));
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| StatsError::BadHttp {
            message: format!("bad status line {status_line:?}"),
        })?;
    if status != 200 {
        return Err(StatsError::HttpStatus { status });
    }
    let mut content_length = None;
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                content_length = v.trim().parse::<usize>().ok();
            }
        }
    }
    let body = match content_length {
        // A short body is left as is: the JSON decoder reports it as truncated.
        Some(n) => body.get(..n).unwrap_or(body),
        _ => body,
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(StatsError::Empty);
    }
    Ok(body)
}

fn split_head(reply: &[u8]) -> Result<(&[u8], &[u8]), StatsError> {
    for sep in [&b"\r\n\r\n"[..], &b"\n\n"[..]] {
        if let Some(i) = find(reply, sep) {
            let (head, rest) = reply.split_at_checked(i).unwrap_or((reply, &[]));
            return Ok((head, rest.get(sep.len()..).unwrap_or_default()));
        }
    }
    Err(StatsError::BadHttp {
        message: "no end of HTTP head".into(),
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_and_http() {
        assert_eq!(body(b" {\"a\":1}").unwrap(), b"{\"a\":1}");
        assert_eq!(
            body(b"HTTP/1.0 200 OK\r\nConnection: close\r\n\r\n{}").unwrap(),
            b"{}"
        );
        assert_eq!(
            body(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}xx").unwrap(),
            b"{}"
        );
        assert_eq!(body(b"HTTP/1.1 200 OK\n\n{}").unwrap(), b"{}");
    }

    #[test]
    fn errors() {
        assert_eq!(body(b"").unwrap_err(), StatsError::Empty);
        assert_eq!(
            body(b"HTTP/1.0 200 OK\r\n\r\n").unwrap_err(),
            StatsError::Empty
        );
        assert_eq!(
            body(b"HTTP/1.1 503 Busy\r\n\r\n{}").unwrap_err(),
            StatsError::HttpStatus { status: 503 }
        );
        assert_eq!(
            body(b"HTTP/1.1 200 OK\r\nX: y").unwrap_err().reason(),
            "bad_http"
        );
        assert_eq!(
            body(b"HTTP/1.1 abc\r\n\r\n{}").unwrap_err().reason(),
            "bad_http"
        );
    }
}
