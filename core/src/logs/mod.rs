//! Request-log line parsers (uWSGI default request log, gunicorn access log).
