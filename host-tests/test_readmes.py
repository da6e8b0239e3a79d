"""Every example README, run as written: its ```sh blocks are executed and
its ```text blocks ("what you should see") are asserted.

The convention the READMEs follow (examples/README.md says it for writers):

- Every ```sh block of examples/*/README.md runs, in order, from the
  repository root, one line per command, with a plain system PATH (so the
  README itself must say how `envoy`, `uwsgi`, ... are found: `. dist/env.sh`).
  Lines that set variables (`X=...`, `export`, `. file`) carry over to the
  later lines. A failing command fails the test.
- A command ending in `&` is started in the background (its own process
  group, stopped by PID at the end). Its trailing comment names what it
  listens on as `:PORT` (`# listener :10000, admin :9901`); the next line
  runs once those ports accept connections.
- `./build.sh ...` lines are not run (the suite runs after the build); the
  `dist/...` paths in their comment must exist.
- A ```text block after a ```sh block (with only prose between) lists lines
  the block's output must contain, each a whole line; `...` inside a line
  matches anything. The block's last command is a query, repeated for up to
  30 s until every line is there (stats flushes, scrape intervals).
- `<!-- readme-test: ports P1 P2 ... -->` (once per README) lists the ports
  the test replaces by free ones, in the commands, the expected lines and
  the example's files; `tmp /some/dir` in the same comment is replaced by
  a fresh directory. Every declared port must occur (checked), so a stale
  declaration fails too.
- `<!-- readme-test: skip REASON -->` right before a ```sh block leaves it
  out (a reason is required); a README with no ```sh block at all must say
  `<!-- readme-test: none REASON -->`.

The commands run in a shadow of the checkout: a temporary directory whose
entries link to the checkout's, except `examples/<this example>` and every
other example whose files a run command names (`examples/demo/envoy.yaml`),
which are copies with the ports substituted. So relative paths
(`dist/x.wasm`, `%d` in uWSGI ini files, Prometheus rule files) resolve as
in the checkout, and nothing a command writes lands in it.
"""
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from harness import Proc, free_port, wait_port
from harness.paths import ROOT
from harness.render import RenderError

EXAMPLES = sorted(p.parent.name for p in (ROOT / "examples").glob("*/README.md"))
# The index must list every example.
INDEX = ROOT / "examples" / "README.md"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
FENCE = re.compile(r"^```([a-z]*)\s*$")
DIRECTIVE = re.compile(r"<!--\s*readme-test:\s*(\w+)\s*(.*?)\s*-->")
ASSIGNMENT = re.compile(r"^(export\s+)?[A-Za-z_][A-Za-z0-9_]*=|^(\.|source)\s")
# Where a port is an address in a config file (not a bucket bound or a size).
ADDRESS = r"(?:127\.0\.0\.1:|localhost:|0\.0\.0\.0:|port_value: |listen )"
QUERY_RETRY_S = 30.0


class Block:
    def __init__(self, kind, lines, skip=None):
        self.kind, self.lines, self.skip = kind, lines, skip
        self.expect = None  # the ```text block that follows, if any


def parse(text):
    """(blocks, directives) of a README: fenced blocks in order, each
    ```sh block with the ```text block that follows it."""
    blocks, directives, pending_skip = [], [], None
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        for m in DIRECTIVE.finditer(lines[i]):
            directives.append((m.group(1), m.group(2)))
            if m.group(1) == "skip":
                assert m.group(2), "readme-test: skip needs a reason"
                pending_skip = m.group(2)
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        kind, body = m.group(1), []
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        i += 1
        block = Block(kind, body, pending_skip if kind == "sh" else None)
        if kind == "sh":
            pending_skip = None
        if kind == "text" and blocks and blocks[-1].kind == "sh" and blocks[-1].expect is None:
            blocks[-1].expect = body
        blocks.append(block)
    return blocks, directives


def commands(lines):
    """Lines joined over `\\` continuations, blank and comment-only lines dropped."""
    out, cur = [], ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            cur += line.rstrip()[:-1] + " "
            continue
        cur += line
        if cur.strip() and not cur.strip().startswith("#"):
            out.append(cur.strip())
        cur = ""
    return out


def split_comment(cmd):
    """(command, trailing comment) for a line whose comment starts with ` # `."""
    m = re.search(r"\s#\s(.*)$", cmd)
    if m and cmd.count("'", 0, m.start()) % 2 == 0 and cmd.count('"', 0, m.start()) % 2 == 0:
        return cmd[:m.start()].rstrip(), m.group(1)
    return cmd, ""


def expected_regex(line):
    parts = [re.escape(p) for p in line.split("...")]
    return re.compile(".*".join(parts))


class Shadow:
    """The checkout seen through links, with the examples a README uses rendered."""

    def __init__(self, example, ports, tmp_dirs, others=()):
        # World-traversable: nginx started as root serves from worker
        # processes running as nobody.
        self.root = Path(tempfile.mkdtemp(prefix=f"readme-{example}-"))
        os.chmod(self.root, 0o755)
        for entry in ROOT.iterdir():
            if entry.name not in ("examples", ".git"):
                (self.root / entry.name).symlink_to(entry)
        (self.root / "examples").mkdir()
        rendered = {example, *others}
        for entry in (ROOT / "examples").iterdir():
            if entry.name not in rendered:
                (self.root / "examples" / entry.name).symlink_to(entry)
        self.found = {p: 0 for p in ports}
        self.ports = ports
        self.tmp_dirs = {old: self.root / ("tmp" + re.sub(r"[^A-Za-z0-9]+", "-", old)) for old in tmp_dirs}
        for name in sorted(rendered):
            shutil.copytree(ROOT / "examples" / name, self.root / "examples" / name)
            for f in (self.root / "examples" / name).rglob("*"):
                if f.is_file() and f.suffix != ".md":
                    try:
                        text = f.read_text()
                    except UnicodeDecodeError:
                        continue
                    f.write_text(self.sub_config(text))

    def sub_config(self, text):
        for old, new in self.tmp_dirs.items():
            text = text.replace(old, str(new))
        for old, new in self.ports.items():
            pat = re.compile(rf"({ADDRESS}){old}(?![0-9])")
            self.found[old] += len(pat.findall(text))
            text = pat.sub(lambda m, n=new: f"{m.group(1)}{n}", text)
        return text

    def sub_text(self, text):
        for old, new in self.tmp_dirs.items():
            text = text.replace(old, str(new))
        for old, new in self.ports.items():
            pat = re.compile(rf"(?<![0-9]){old}(?![0-9])")
            self.found[old] += len(pat.findall(text))
            text = pat.sub(str(new), text)
        return text

    def check_ports_used(self, readme):
        unused = [p for p, n in self.found.items() if n == 0]
        if unused:
            raise RenderError(f"{readme}: readme-test ports {unused} occur in no command and no file")

    def remove(self):
        shutil.rmtree(self.root, ignore_errors=True)


class Runner:
    def __init__(self, example, shadow, logdir):
        self.example, self.shadow, self.logdir = example, shadow, logdir
        self.prelude, self.procs = [], []
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
        self.env["PATH"] = SYSTEM_PATH
        self.env.pop("UWSGI_RED_DIST", None)

    def script(self, cmd):
        return "set -e\n" + "\n".join(self.prelude + [cmd])

    def foreground(self, cmd, check=True):
        p = subprocess.run(["bash", "-c", self.script(cmd)], cwd=self.shadow.root, env=self.env,
                           capture_output=True, timeout=120)
        out = p.stdout.decode(errors="replace")
        if out and not out.endswith("\n"):
            out += "\n"  # `curl` of a body without a newline: the next output starts a line
        failed = (f"{self.example}: `{cmd}` exited {p.returncode}\nstdout:\n{out[-3000:]}\n"
                  f"stderr:\n{p.stderr.decode(errors='replace')[-3000:]}\n{self.logs()}")
        if check:
            assert p.returncode == 0, failed
        return out, (failed if p.returncode else None)

    def background(self, cmd, comment):
        body = cmd[:-1].rstrip()
        name = f"bg{len(self.procs)}-{re.sub(r'[^A-Za-z0-9]+', '-', body.split()[0])[:20]}"
        simple = not re.search(r"[;&|()]", body)
        proc = Proc(name, ["bash", "-c", self.script(("exec " if simple else "") + body)], self.logdir,
                    env=self.env, cwd=self.shadow.root)
        self.procs.append(proc)
        ports = [int(p) for p in re.findall(r":(\d{2,5})\b", comment)]
        assert ports, f"{self.example}: background command `{cmd}` names no `:PORT` in its comment"
        for port in ports:
            wait_port(port, timeout=60, proc=proc)

    def run_block(self, block):
        outputs = []
        cmds = [split_comment(self.shadow.sub_text(raw)) for raw in commands(block.lines)]
        query = None
        if block.expect is not None:
            assert cmds and not cmds[-1][0].endswith("&") and not cmds[-1][0].startswith("./build.sh"), (
                f"{self.example}: a block with expected output must end with a query command")
            query = cmds.pop()[0]
        for cmd, comment in cmds:
            if cmd.startswith("./build.sh"):
                for art in re.findall(r"dist/[\w./-]+", comment):
                    assert (ROOT / art).exists(), f"{self.example}: `{cmd}` should have made {art}"
                continue
            if cmd.endswith("&") and not cmd.endswith("&&"):
                self.background(cmd, comment)
                continue
            outputs.append(self.foreground(cmd)[0])
            if ASSIGNMENT.match(cmd):
                self.prelude.append(cmd)
        if query is None:
            return
        want = [self.shadow.sub_text(line) for line in block.expect if line.strip()]
        deadline = time.monotonic() + QUERY_RETRY_S
        while True:
            # The query may fail or miss lines until a flush or scrape: it
            # is repeated; what counts is the last answer before the deadline.
            out, failed = self.foreground(query, check=False)
            have = "".join(outputs + [out]).splitlines()
            missing = [w for w in want if not any(expected_regex(w).fullmatch(h) for h in have)]
            if (not missing and not failed) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert not failed, failed
        assert not missing, (f"{self.example}: README says the output has\n  " + "\n  ".join(missing) +
                             "\nbut it was:\n" + "\n".join(have[-80:]) + "\n" + self.logs())

    def logs(self):
        return "\n".join(f"--- {p.name}:\n{p.tail(15)}" for p in self.procs)

    def stop(self):
        for p in reversed(self.procs):
            p.stop()


def test_every_example_has_a_readme_listed_in_the_index():
    have = {p.name for p in (ROOT / "examples").iterdir() if p.is_dir()}
    assert have == set(EXAMPLES), f"examples without README.md: {sorted(have - set(EXAMPLES))}"
    index = INDEX.read_text()
    unlisted = [e for e in EXAMPLES if f"]({e}/README.md)" not in index]
    assert not unlisted, f"examples/README.md does not list {unlisted}"


@pytest.mark.parametrize("example", EXAMPLES)
def test_readme_runs_as_written(example, tmp_path):
    readme = ROOT / "examples" / example / "README.md"
    blocks, directives = parse(readme.read_text())
    runnable = [b for b in blocks if b.kind == "sh" and b.skip is None]
    kinds = {k for k, _ in directives}
    assert kinds <= {"ports", "skip", "none"}, f"{readme}: unknown readme-test directive in {kinds}"
    if not any(b.kind == "sh" for b in blocks):
        assert "none" in kinds and dict(directives)["none"], (
            f"{readme}: no ```sh block and no `<!-- readme-test: none REASON -->`")
        return
    if not runnable:
        return  # every block skipped, each with its reason (checked by parse)
    ports, tmp_dirs = {}, []
    for kind, arg in directives:
        if kind != "ports":
            continue
        words = arg.split()
        i = 0
        while i < len(words):
            if words[i] == "tmp":
                tmp_dirs.append(words[i + 1])
                i += 2
            else:
                ports[int(words[i])] = free_port()
                i += 1
    # Another example's files a command uses (one Envoy config shared by
    # several READMEs) get the same free ports as this README's.
    others = {m for b in runnable for line in commands(b.lines)
              for m in re.findall(r"examples/([\w-]+)/", line) if m != example and (ROOT / "examples" / m).is_dir()}
    shadow = Shadow(example, ports, tmp_dirs, others)
    runner = Runner(example, shadow, tmp_path)
    try:
        for block in runnable:
            runner.run_block(block)
        shadow.check_ports_used(readme)
    finally:
        runner.stop()
        shadow.remove()
