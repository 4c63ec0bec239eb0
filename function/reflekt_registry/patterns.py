"""Finds the regexes in a schema that can backtrack catastrophically (ReDoS) on text a client controls."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

# fastjsonschema runs `pattern` and `patternProperties` with Python's backtracking `re` on strings and property
# names that clients control, so a pattern whose matcher can try exponentially many ways to split the same text
# lets one event occupy the function until it times out. The check below is a heuristic over re's own parse of the
# pattern; it finds the classic exponential shapes and says nothing about polynomial ones (such as `\d+\d+x`).
from re import _constants as _sre  # re's own parser: the registry supports Python 3.11 and later
from re import _parser as _sre_parse

# Keywords whose values are data (an enum's members, a default), never schemas, so a "pattern" inside is no regex.
_DATA_KEYWORDS = frozenset({"enum", "const", "default", "examples"})
# Keywords that map names to subschemas: a property may be called "pattern" without being one.
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "definitions", "$defs", "dependencies"})
# Characters are modelled as Latin-1 code points plus one stand-in (256) for everything above.
_OTHER = 256
_ANY_CHAR = frozenset(range(_OTHER + 1))
_REPEATS = (_sre.MAX_REPEAT, _sre.MIN_REPEAT)  # POSSESSIVE_REPEAT never backtracks, so it is left out
# A group repeated at most this often multiplies the ways to match by a bounded factor (as in IPv4's `(...\.){3}`),
# which is polynomial; the exponential blow-up needs a repetition count that grows with the input.
_FEW_REPEATS = 10


def dangerous_patterns(document: Any) -> list[str]:
    """The regexes of a schema (in `pattern` and `patternProperties`) that can backtrack exponentially: a repeated
    group holding another variable-length repetition with nothing disjoint to separate their matches, as in
    `(a+)+`, `(a*)*`, `(.*)*` or `(\\w+\\s?)*`, or holding alternatives that match the same text, as in `(a|a)*`."""
    found: list[str] = []
    try:
        for pattern in _schema_patterns(document):
            if pattern not in found and _is_dangerous(pattern):
                found.append(pattern)
    except RecursionError:  # a schema nested past the walk's depth is checked as far as it goes
        pass
    return found


def _schema_patterns(node: Any) -> Iterator[str]:
    if isinstance(node, list):
        for item in node:
            yield from _schema_patterns(item)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key == "pattern" and isinstance(value, str):
            yield value
        elif key in _SCHEMA_MAPS and isinstance(value, dict):
            if key == "patternProperties":
                yield from (name for name in value if isinstance(name, str))
            for subschema in value.values():
                yield from _schema_patterns(subschema)
        elif key not in _DATA_KEYWORDS:
            yield from _schema_patterns(value)


def _is_dangerous(pattern: str) -> bool:
    try:
        return _has_ambiguous_repeat(list(_sre_parse.parse(pattern)))
    except Exception:  # not a regex re can read: compiling the schema reports that, with a better message
        return False


def _children(op: Any, av: Any) -> list[list[Any]]:
    if op in _REPEATS or op is _sre.POSSESSIVE_REPEAT:
        return [list(av[2])]
    if op is _sre.SUBPATTERN:
        return [list(av[3])]
    if op is _sre.BRANCH:
        return [list(alt) for alt in av[1]]
    if op in (_sre.ASSERT, _sre.ASSERT_NOT):
        return [list(av[1])]
    if op is _sre.ATOMIC_GROUP:
        return [list(av)]
    if op is _sre.GROUPREF_EXISTS:
        return [list(av[1])] + ([list(av[2])] if av[2] else [])
    return []


def _has_ambiguous_repeat(items: list[Any]) -> bool:
    for op, av in items:
        if op in _REPEATS and av[1] > _FEW_REPEATS and _ambiguous_body(list(av[2])):
            return True
        if any(_has_ambiguous_repeat(child) for child in _children(op, av)):
            return True
    return False


def _ambiguous_body(body: list[Any]) -> bool:
    """Whether one iteration's text can be matched, or split across iterations, in more than one way."""
    for chars, separators in _inner_repeats(body, []):
        if not any(separator.isdisjoint(chars) for separator in separators):
            return True
    return _overlapping_branch(body)


def _inner_repeats(items: list[Any], separators: list[frozenset[int]]) -> Iterator[tuple[frozenset[int], list[frozenset[int]]]]:
    """Each variable-length repetition inside a repeated body, with the characters of every element that must
    match alongside it; one of those disjoint from the repetition's own characters pins where each match ends."""
    for i, (op, av) in enumerate(items):
        around = separators + [_chars([item]) for j, item in enumerate(items) if j != i and not _nullable(item)]
        if op in _REPEATS and av[1] > max(av[0], 1):
            yield _chars(list(av[2])), around
        if op is not _sre.ATOMIC_GROUP:
            for child in _children(op, av):
                yield from _inner_repeats(child, around)


def _overlapping_branch(items: list[Any], around: frozenset[int] = frozenset()) -> bool:
    """Whether a choice inside a repeated body can match the same text two ways: both alternatives empty (re
    factors `(a|a)` into `a(?:|)`), alike in start and characters (`(a|ab|b)`), or one empty and the other made of
    characters the rest of the body matches anyway (re factors `(a|aa)` into `a(?:|a)`)."""
    for i, (op, av) in enumerate(items):
        here = around.union(*(_chars([item]) for j, item in enumerate(items) if j != i))
        if op is _sre.BRANCH:
            alternatives = [list(alt) for alt in av[1]]
            for k, first in enumerate(alternatives):
                for second in alternatives[k + 1:]:
                    if _same_text_two_ways(first, second, here):
                        return True
        if op is not _sre.ATOMIC_GROUP and any(_overlapping_branch(child, here) for child in _children(op, av)):
            return True
    return False


def _same_text_two_ways(first: list[Any], second: list[Any], around: frozenset[int]) -> bool:
    empty_first, empty_second = (all(_nullable(item) for item in alt) for alt in (first, second))
    if empty_first and empty_second:
        return True
    a, b = _chars(first), _chars(second)
    if _first_chars(first) & _first_chars(second) and (a <= b or b <= a):
        return True
    return bool(around) and ((empty_first and b <= around) or (empty_second and a <= around))


def _nullable(item: Any) -> bool:
    op, av = item
    if op in (_sre.LITERAL, _sre.NOT_LITERAL, _sre.ANY, _sre.IN):
        return False
    if op in _REPEATS or op is _sre.POSSESSIVE_REPEAT:
        return av[0] == 0 or all(_nullable(i) for i in av[2])
    if op is _sre.BRANCH:
        return any(all(_nullable(i) for i in alt) for alt in av[1])
    if op in (_sre.SUBPATTERN, _sre.ATOMIC_GROUP):
        return all(_nullable(i) for i in _children(op, av)[0])
    return True  # anchors and lookarounds consume nothing; a backreference may be empty


def _first_chars(items: list[Any]) -> frozenset[int]:
    out: set[int] = set()
    for op, av in items:
        children = _children(op, av)
        if op in (_sre.ASSERT, _sre.ASSERT_NOT):
            continue
        out |= _chars([(op, av)]) if not children else frozenset().union(*(_first_chars(c) for c in children))
        if not _nullable((op, av)):
            break
    return frozenset(out)


def _chars(items: list[Any]) -> frozenset[int]:
    """Every character the items can consume (a superset, which keeps the check on the cautious side)."""
    out: set[int] = set()
    for op, av in items:
        if op is _sre.LITERAL:
            out.add(min(av, _OTHER))
        elif op is _sre.NOT_LITERAL or op is _sre.ANY or op is _sre.GROUPREF:
            out |= _ANY_CHAR
        elif op is _sre.IN:
            out |= _class_chars(av)
        elif op not in (_sre.ASSERT, _sre.ASSERT_NOT):
            for child in _children(op, av):
                out |= _chars(child)
    return frozenset(out)


_CATEGORY_REGEX = {
    _sre.CATEGORY_DIGIT: r"\d", _sre.CATEGORY_NOT_DIGIT: r"\D", _sre.CATEGORY_SPACE: r"\s",
    _sre.CATEGORY_NOT_SPACE: r"\S", _sre.CATEGORY_WORD: r"\w", _sre.CATEGORY_NOT_WORD: r"\W",
}


def _class_chars(members: list[Any]) -> frozenset[int]:
    out: set[int] = set()
    negate = False
    for op, av in members:
        if op is _sre.NEGATE:
            negate = True
        elif op is _sre.LITERAL:
            out.add(min(av, _OTHER))
        elif op is _sre.RANGE:
            out |= set(range(min(av[0], _OTHER), min(av[1], _OTHER - 1) + 1))
            if av[1] >= _OTHER:
                out.add(_OTHER)
        elif op is _sre.CATEGORY and av in _CATEGORY_REGEX:
            regex = re.compile(_CATEGORY_REGEX[av])
            out |= {c for c in range(_OTHER) if regex.fullmatch(chr(c))} | {_OTHER}
        else:  # a category re reads from the locale: assume it can match anything
            out |= _ANY_CHAR
    return frozenset(_ANY_CHAR - out | {_OTHER}) if negate else frozenset(out)
