//! The uwsgi wire protocol (request heads, response status). Filled in by the protocol work.
