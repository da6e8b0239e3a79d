"""examples/prometheus: the recording rules and alerts pass `promtool check
rules`, their unit tests pass `promtool test rules`, and the unit tests bite:
with an alert made unable to fire, or made to fire on everything, the tests
fail naming that alert. So every alert has a case where it must fire and a
case where it must not.
"""
import re
import shutil
import subprocess

import pytest

from harness import ROOT, require_binary

EXAMPLE = ROOT / "examples" / "prometheus"
RULES = EXAMPLE / "rules"
TESTS = EXAMPLE / "tests"
# rules file -> number of rules promtool must find in it
RULE_FILES = {"uwsgi-red-recording.yml": 20, "uwsgi-red-slo-alerts.yml": 4, "uwsgi-alerts.yml": 5,
              "uwsgi-saturation.yml": 7}
# unit-test file -> the alert rules file it covers
TEST_FILES = {"uwsgi-red-slo.test.yml": "uwsgi-red-slo-alerts.yml", "uwsgi-alerts.test.yml": "uwsgi-alerts.yml",
              "uwsgi-saturation.test.yml": "uwsgi-saturation.yml"}
# An expression that fires for every series the alert's input has, with the
# labels the real alert would carry.
FIRES_ON_EVERYTHING = {
    "UwsgiRedErrorBudgetFastBurn": "service:uwsgi_red_error_ratio:rate5m >= 0",
    "UwsgiRedErrorBudgetSlowBurn": "service:uwsgi_red_error_ratio:rate5m >= 0",
    "UwsgiRedLatencyBudgetFastBurn": "service:uwsgi_red_slow_ratio:rate5m >= 0",
    "UwsgiRedLatencyBudgetSlowBurn": "service:uwsgi_red_slow_ratio:rate5m >= 0",
    "UwsgiStatsTargetDown": "uwsgi_up >= 0",
    "UwsgiListenQueueGrowing": "uwsgi_listen_queue_length >= 0",
    "UwsgiListenQueueOverflow": "uwsgi_listen_queue_errors >= 0",
    "UwsgiAllWorkersBusy": "sum by (job, instance, target) (uwsgi_worker_busy) >= 0",
    "UwsgiRespawnStorm": "sum by (job, instance, target) (uwsgi_worker_respawn_count_total) >= 0",
    "UwsgiQueueTimeHigh": "upstream:uwsgi_red_queue_seconds:mean5m >= 0",
}
ALERT_BLOCK = re.compile(r"(  - alert: (\w+)\n)    expr: .*?(?=\n    labels:)", re.S)


def promtool():
    return require_binary("promtool", "apt-get install prometheus")


def run(*args, cwd=None):
    r = subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=300, cwd=cwd)
    return r.returncode, r.stdout + r.stderr


def alerts_in(rules_file):
    return [m.group(2) for m in ALERT_BLOCK.finditer((RULES / rules_file).read_text())]


def test_every_alert_is_listed_here():
    found = sorted(a for f in TEST_FILES.values() for a in alerts_in(f))
    assert found == sorted(FIRES_ON_EVERYTHING)
    # uwsgi-saturation.yml: 6 recording rules and 1 alert
    assert len(found) == RULE_FILES["uwsgi-red-slo-alerts.yml"] + RULE_FILES["uwsgi-alerts.yml"] + 1


@pytest.mark.parametrize("rules_file,count", sorted(RULE_FILES.items()))
def test_promtool_check_rules(rules_file, count):
    rc, out = run("check", "rules", str(RULES / rules_file))
    assert rc == 0, out
    assert f"SUCCESS: {count} rules found" in out, out


def test_promtool_check_config_loads_every_rules_file():
    rc, out = run("check", "config", str(EXAMPLE / "prometheus.yml"))
    assert rc == 0, out
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in out, out


@pytest.mark.parametrize("test_file", sorted(TEST_FILES))
def test_promtool_unit_tests_pass(test_file):
    rc, out = run("test", "rules", str(TESTS / test_file))
    print(out)
    assert rc == 0, out
    assert "SUCCESS" in out and "FAILED" not in out, out


def mutated_copy(tmp_path, rules_file, make_expr):
    """rules/ and tests/ copied to tmp_path with every alert's expr in
    rules_file replaced by make_expr(alertname)."""
    shutil.copytree(RULES, tmp_path / "rules")
    shutil.copytree(TESTS, tmp_path / "tests")
    path = tmp_path / "rules" / rules_file
    text, n = ALERT_BLOCK.subn(lambda m: f"{m.group(1)}    expr: {make_expr(m.group(2))}", path.read_text())
    assert n == len(alerts_in(rules_file)) > 0
    path.write_text(text)
    return tmp_path / "tests"


def failing_alerts(out):
    """Alert names of the failed checks in promtool's report."""
    return set(re.findall(r"alertname: (\w+), time:", out))


@pytest.mark.parametrize("test_file", sorted(TEST_FILES))
def test_every_alert_has_a_case_where_it_fires(tmp_path, test_file):
    rules_file = TEST_FILES[test_file]
    tests = mutated_copy(tmp_path, rules_file, lambda name: "vector(1) > 2")
    rc, out = run("test", "rules", str(tests / test_file))
    assert rc != 0, out
    assert failing_alerts(out) == set(alerts_in(rules_file)), out


@pytest.mark.parametrize("test_file", sorted(TEST_FILES))
def test_every_alert_has_a_case_where_it_must_not_fire(tmp_path, test_file):
    rules_file = TEST_FILES[test_file]
    tests = mutated_copy(tmp_path, rules_file, lambda name: FIRES_ON_EVERYTHING[name])
    rc, out = run("test", "rules", str(tests / test_file))
    assert rc != 0, out
    assert failing_alerts(out) == set(alerts_in(rules_file)), out
