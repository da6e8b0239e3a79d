"""Checked rendering of example configs.

Tests, benches and the demo run the files users copy, with only ports and
paths changed. A substitution whose original text is no longer in the
example (someone edited it) must fail loudly, not leave the example's
default port in place and test something else: every substitution states
how many times its original text occurs, and a different count is an error.
"""
import re
from pathlib import Path

from .paths import ROOT


class RenderError(ValueError):
    """An example no longer contains what a substitution expects."""


class Sub:
    """Replace `old` (a literal string or a compiled regex) with `new` (a
    string, taken literally even for a regex, or a function of the match).
    count: how many times `old` must occur; None means "at least once" (for
    things like uWSGI's %d whose number is the example's business)."""

    def __init__(self, old, new, count=1):
        self.old, self.new, self.count = old, new, count

    def __repr__(self):
        old = self.old.pattern if isinstance(self.old, re.Pattern) else self.old
        return f"Sub({old!r}, count={self.count})"

    def found(self, text):
        if isinstance(self.old, re.Pattern):
            return len(self.old.findall(text))
        return text.count(self.old)

    def apply(self, text, source):
        n = self.found(text)
        if n == 0 or (self.count is not None and n != self.count):
            want = "at least once" if self.count is None else f"{self.count} time(s)"
            old = self.old.pattern if isinstance(self.old, re.Pattern) else self.old
            raise RenderError(f"{source}: expected {old!r} {want}, found {n} time(s); "
                              "the example changed; update the substitution with it")
        if isinstance(self.old, re.Pattern):
            new = self.new if callable(self.new) else (lambda _m, s=self.new: s)
            return self.old.sub(new, text)
        return text.replace(self.old, self.new)


def _subs(substitutions):
    if isinstance(substitutions, dict):
        substitutions = list(substitutions.items())
    out = []
    for s in substitutions:
        if isinstance(s, Sub):
            out.append(s)
        elif len(s) == 2:
            out.append(Sub(s[0], s[1]))
        elif len(s) == 3:
            out.append(Sub(*s))
        else:
            raise TypeError(f"substitution must be Sub, (old, new) or (old, new, count): {s!r}")
    return out


def render(example, substitutions=()):
    """Text of `example` (a Path, a string naming a file relative to the
    repository, or else the text itself) after applying every substitution in
    order. substitutions: Sub objects, (old, new[, count]) tuples, or a dict
    {old: new} (each exactly once)."""
    path = None
    if isinstance(example, Path):
        path = example if example.is_absolute() else ROOT / example
    elif "\n" not in example and len(example) < 4096 and (ROOT / example).is_file():
        path = ROOT / example
    if path is not None:
        text, source = path.read_text(), str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    else:
        text, source = example, "<text>"
    for s in _subs(substitutions):
        text = s.apply(text, source)
    return text


def render_to(path, example, substitutions=()):
    """render() and write the result to `path`; returns the path."""
    path = Path(path)
    path.write_text(render(example, substitutions))
    return path
