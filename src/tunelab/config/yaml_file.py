"""Read an experiment file's YAML with the line of every key, bounded in size before it is built.

YAML anchors let a few hundred bytes describe billions of values ("billion laughs"); the node
graph is counted as if every alias were expanded, and a file past `MAX_YAML_NODES` is refused
before anything walks or copies it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tunelab.errors import ConfigError

MAX_YAML_NODES = 100_000  # an experiment file has hundreds of values; this is far past any real one


def read_yaml(path: Path) -> tuple[dict[str, Any], dict[tuple[str, ...], int]]:
    """The file's top-level mapping and the 1-based line of every key path.

    Raises:
        ConfigError: missing or unreadable file, invalid YAML, too many values once aliases
            expand, duplicate keys, or a top level that is not a mapping.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"experiment file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read experiment file {path}: {exc}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        size = expanded_size(node, {})
        if size > MAX_YAML_NODES:
            raise ConfigError(
                f"invalid YAML: the file expands to more than {MAX_YAML_NODES:,} values "
                "(anchors and aliases nested too deeply); write the values out",
                source=str(path),
            )
        data = yaml.SafeLoader(text).get_single_data() if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ConfigError(f"invalid YAML: {problem}", source=where) from None
    except RecursionError:
        raise ConfigError("invalid YAML: nested too deeply", source=str(path)) from None
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise ConfigError(f"the top level must be a mapping of sections, got {type(data).__name__}", source=str(path))
    lines: dict[tuple[str, ...], int] = {}
    try:
        collect_lines(node, (), lines)
    except ConfigError as exc:
        raise ConfigError(exc.message, key=exc.key, source=str(path)) from None
    return data, lines


def expanded_size(node: yaml.Node | None, memo: dict[int, int]) -> int:
    """Nodes the document holds once every alias is expanded; each shared node is counted once
    per use but visited once (memo by identity), so the count itself stays cheap."""
    if node is None:
        return 0
    known = memo.get(id(node))
    if known is not None:
        return known
    size = 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            size += expanded_size(key_node, memo) + expanded_size(value_node, memo)
    elif isinstance(node, yaml.SequenceNode):
        size += sum(expanded_size(item, memo) for item in node.value)
    memo[id(node)] = size
    return size


def collect_lines(node: yaml.Node | None, prefix: tuple[str, ...], out: dict[tuple[str, ...], int]) -> None:
    """Record the line of every key path below `node`; a key written twice is an error."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if str(key_node.value) in seen:
                dotted = ".".join((*prefix, str(key_node.value)))
                raise ConfigError(f"duplicate key (line {key_node.start_mark.line + 1}); write it once", key=dotted)
            seen.add(str(key_node.value))
            key = (*prefix, str(key_node.value))
            out[key] = key_node.start_mark.line + 1
            collect_lines(value_node, key, out)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            key = (*prefix, str(index))
            out[key] = item.start_mark.line + 1
            collect_lines(item, key, out)
