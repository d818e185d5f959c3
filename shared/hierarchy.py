"""Administrative hierarchy by statistical division code.

A code extends its parent's: province 43 → city 4306 → county 430621 → town 430621108 →
village 430621108001. So every ancestor of a node is a prefix of its code, and the level is
the code's length.
"""

from enum import IntEnum
from functools import lru_cache


class Level(IntEnum):
    PROVINCE = 1
    CITY = 2
    COUNTY = 3
    TOWN = 4
    VILLAGE = 5


CODE_LENGTHS = {Level.PROVINCE: 2, Level.CITY: 4, Level.COUNTY: 6, Level.TOWN: 9, Level.VILLAGE: 12}
LEVEL_BY_LENGTH = {length: level for level, length in CODE_LENGTHS.items()}
# NATS tokens may not be empty: a unit run by a town or county has no village token.
NO_NODE = "_"


def level_of(code: str) -> Level:
    """The level of a division code; ValueError when it is not a valid code."""
    if not code.isdigit() or len(code) not in LEVEL_BY_LENGTH:
        raise ValueError(f"not a division code: {code!r} (2, 4, 6, 9 or 12 digits)")
    return LEVEL_BY_LENGTH[len(code)]


# Cached: the per-report paths ask these of the same few thousand nodes again and again.
@lru_cache(maxsize=1 << 17)
def ancestors(code: str) -> tuple[str, ...]:
    """The node itself and every node above it, top-down (province first)."""
    level = level_of(code)
    return tuple(code[: CODE_LENGTHS[lvl]] for lvl in Level if lvl <= level)


def parent_of(code: str) -> str | None:
    level = level_of(code)
    return None if level == Level.PROVINCE else code[: CODE_LENGTHS[Level(level - 1)]]


@lru_cache(maxsize=1 << 17)
def subject_tokens(node: str) -> str:
    """`<county>.<town>.<village>` for a node at county level or below."""
    level = level_of(node)
    if level < Level.COUNTY:
        raise ValueError(f"reporting units belong to a county or below, not {node!r}")
    tokens = [node[: CODE_LENGTHS[lvl]] if lvl <= level else NO_NODE
              for lvl in (Level.COUNTY, Level.TOWN, Level.VILLAGE)]
    return ".".join(tokens)
