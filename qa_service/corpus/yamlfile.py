"""Reading human-edited YAML files: duplicate keys refused, every error names the file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from qa_service.errors import QaError

# Anchors and aliases may repeat a part of a file (a shared source, say), but a few nested aliases
# can stand for billions of values ("billion laughs"): past this many, a file is refused.
MAX_EXPANDED_VALUES = 1_000_000

# libyaml's parser when PyYAML was built with it (the usual wheels are): ~15x faster on big corpora.
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _LineLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """A safe loader that refuses duplicate keys (plain YAML silently keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be a plain value, not a list or mapping", key_node.start_mark
                ) from None
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


def read_yaml(path: Path, error: type[QaError]) -> tuple[Any, yaml.Node | None]:
    """The file's data and its node tree (for line numbers); problems raise ``error`` naming file:line."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror}") from None
    try:
        loader = _LineLoader(text)
        try:  # one pass: the node tree (for line numbers), then the data built from it
            root = loader.get_single_node()
            if "*" in text:  # no alias without one: most files skip the walk
                _refuse_alias_bombs(root)
            return (loader.construct_document(root) if root is not None else None), root
        finally:
            loader.dispose()
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (NUL, say), before parsing
        line = text.count("\n", 0, exc.position) + 1
        raise error(f"{path}:{line}: invalid YAML: the character {chr(exc.character)!r} is not allowed") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"{where}: invalid YAML: {problem}") from None


def _refuse_alias_bombs(root: yaml.Node | None) -> None:
    """Raise when the document, its aliases written out, holds over MAX_EXPANDED_VALUES values.

    The composed tree shares one node per anchor, so each node's written-out size is counted once,
    children first (no recursion: deep nesting is legal and must not hit Python's limit)."""
    size: dict[int, int] = {}
    opened: set[int] = set()  # nodes whose children are being counted: meeting one again is a loop
    stack: list[tuple[yaml.Node, bool]] = [(root, False)] if root is not None else []
    while stack:
        node, children_done = stack.pop()
        if id(node) in size:
            continue
        if not children_done and id(node) in opened:
            raise yaml.constructor.ConstructorError(
                None, None, "an alias here refers to the value that contains it", node.start_mark
            )
        if isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            size[id(node)] = 1
            continue
        if children_done:
            total = 1 + sum(size[id(child)] for child in children)
            if total > MAX_EXPANDED_VALUES:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"anchors and aliases here stand for over {MAX_EXPANDED_VALUES:,} values; write the repeated"
                    " part out instead",
                    node.start_mark,
                )
            size[id(node)] = total
        else:
            opened.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in size)


def sequence_lines(root: yaml.Node | None, key: str) -> list[int]:
    """1-based line of each item of the top-level list ``key`` (empty when there is none)."""
    if not isinstance(root, yaml.MappingNode):
        return []
    for key_node, value_node in root.value:
        if getattr(key_node, "value", None) == key and isinstance(value_node, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value_node.value]
    return []
