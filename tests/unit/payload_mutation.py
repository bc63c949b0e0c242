"""Random edits of an OCPP payload for the property tests of the fast validators
(test_ocpp_fastcheck, test_ocpp_fastbuild, test_ocpp_onepass): each round replaces, deletes
or adds one value somewhere in the payload."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st


def paths(node: Any, prefix: tuple = ()):
    """Every path (tuple of keys and indexes) in a JSON value, the root's () first."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from paths(value, prefix + (index,))


def mutate(data: Any, payload: Any, odd_values: st.SearchStrategy, new_keys: st.SearchStrategy,
           rounds: tuple[int, int] = (1, 3), repeat_items: bool = False) -> None:
    """Edit ``payload`` in place for between ``rounds`` rounds (fewer once nothing is left):
    a value replaced by one of ``odd_values``, deleted, or one added (under a key of
    ``new_keys`` in an object; appended to an array, there a copy of its first item when
    ``repeat_items`` and a drawn boolean say so)."""
    for _ in range(data.draw(st.integers(*rounds))):
        found = [p for p in paths(payload) if p]
        if not found:
            break
        path = data.draw(st.sampled_from(found))
        parent = payload
        for part in path[:-1]:
            parent = parent[part]
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = copy.deepcopy(data.draw(odd_values))
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[data.draw(new_keys)] = copy.deepcopy(data.draw(odd_values))
        elif repeat_items and parent and data.draw(st.booleans()):
            parent.append(copy.deepcopy(parent[0]))
        else:
            parent.append(copy.deepcopy(data.draw(odd_values)))
