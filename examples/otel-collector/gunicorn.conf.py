# gunicorn configuration for queue time from the access log (uwsgi-red).
#   gunicorn -c examples/otel-collector/gunicorn.conf.py --access-logfile FILE ... app:application
#
# gunicorn has no log atom for the request start below a second: %(t)s is the
# time the line is logged (after the response), in whole seconds. So the start
# is taken here, in the pre_request hook (called right before gunicorn starts
# its own request clock for %(D)s), in microseconds since the epoch, and handed
# to the access log as a request header. It is appended last, and gunicorn's
# log keeps the last value of a header, so a client cannot set it. The app sees
# it too, as HTTP_X_UWSGI_RED_TMICROS.
import time


def pre_request(worker, req):
    req.headers.append(("X-UWSGI-RED-TMICROS", str(time.time_ns() // 1000)))


# The Collector example's format (%(D)s, microseconds) followed by the same
# two fields as uWSGI's documented log-format.
access_log_format = (
    '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(D)s'
    " tmicros=%({x-uwsgi-red-tmicros}i)s x_request_start=%({x-request-start}i)s"
)
