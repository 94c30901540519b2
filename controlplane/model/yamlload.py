"""PyYAML's safe loader with a faster construction step: the same Python objects, the same errors.

libyaml (``CSafeLoader``) parses and composes nodes in C, but PyYAML still resolves each scalar's tag and
constructs every object in Python, through a general machinery (a generator per collection, a state
table per document, a constructor lookup per node): for `awan plan` on a 10,000-document file, about a
second. Here:

- a scalar's implicit tag is resolved once per distinct (text, style) (``Resolver.resolve`` depends on
  nothing else while no path resolver is set, and SafeLoader sets none);
- a document made only of plain maps, lists and scalars (any manifest or policy) is built by one tight
  recursive function: strings as they are, other scalars by SafeConstructor's own constructor for the tag,
  each distinct immutable scalar once; an anchor used twice gives the same object, as with PyYAML;
- anything else (merge keys ``<<``, an explicit collection tag such as ``!!set`` or ``!!omap``, an unknown
  tag, an unhashable key, an alias inside itself) sends the whole document to SafeConstructor unchanged,
  so its result and its error (with the line and column of the fault) are PyYAML's own.

tests/controlplane/model/test_yaml_loader.py compares the two on many documents, tricky ones included.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Hashable
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_Base: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)   # libyaml's parser where PyYAML was built with it

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_KEY_TAGS = frozenset({"tag:yaml.org,2002:merge", "tag:yaml.org,2002:value"})   # flatten_mapping's business
# results that may be shared between equal scalars: nothing can change them
_IMMUTABLE = frozenset({int, float, bool, type(None), str, bytes, datetime.datetime, datetime.date})
_MISSING = object()


class _Slow(Exception):
    """This document needs SafeConstructor's full machinery."""


class FastSafeLoader(_Base):  # type: ignore[misc]   # PyYAML is untyped
    """``yaml.load_all(text, Loader=FastSafeLoader)`` gives what ``Loader=yaml.CSafeLoader`` gives."""

    def __init__(self, stream: str | bytes) -> None:
        super().__init__(stream)
        self._tags: dict[tuple[str, Any], str] = {}
        self._scalars: dict[tuple[str, str], Any] = {}

    def resolve(self, kind: type[Node], value: Any, implicit: Any) -> str:
        if kind is ScalarNode and not self.yaml_path_resolvers:
            tags = self._tags
            key = (value, implicit)
            tag = tags.get(key)
            if tag is None:
                tag = tags[key] = super().resolve(kind, value, implicit)
            return tag
        return str(super().resolve(kind, value, implicit))

    def construct_document(self, node: Node) -> Any:
        try:
            return self._build(node, {}, set())
        except _Slow:
            return super().construct_document(node)

    def _build(self, node: Node, done: dict[int, Any], open_: set[int]) -> Any:
        cls = type(node)
        tag = node.tag
        if cls is ScalarNode:
            if tag == _STR:
                return node.value
            key = (tag, node.value)
            got = self._scalars.get(key, _MISSING)
            if got is _MISSING:
                make: Callable[[Any, Node], Any] | None = self.yaml_constructors.get(tag)
                if make is None:
                    raise _Slow
                got = make(self, node)
                if type(got) in _IMMUTABLE:
                    self._scalars[key] = got
            return got
        nid = id(node)
        got = done.get(nid, _MISSING)
        if got is not _MISSING:
            return got                      # an alias: the same object, as PyYAML gives
        if nid in open_:
            raise _Slow                     # an alias inside itself: PyYAML builds the cycle
        open_.add(nid)
        if cls is MappingNode and tag == _MAP:
            out: Any = {}
            for k, v in node.value:
                # a plain string key or value (most of a manifest) is taken here, without a call
                if type(k) is ScalarNode and k.tag == _STR:
                    key_obj = k.value
                else:
                    if k.tag in _KEY_TAGS:
                        raise _Slow
                    key_obj = self._build(k, done, open_)
                    if not isinstance(key_obj, Hashable):
                        raise _Slow         # PyYAML's "found unhashable key", with its marks
                out[key_obj] = v.value if type(v) is ScalarNode and v.tag == _STR else self._build(v, done, open_)
        elif cls is SequenceNode and tag == _SEQ:
            out = [self._build(v, done, open_) for v in node.value]
        else:
            raise _Slow
        open_.discard(nid)
        done[nid] = out
        return out
