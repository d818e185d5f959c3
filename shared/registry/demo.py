"""The demo county shipped with the product: 岳阳县 (county 430621, Hunan) with its 15 real
townships, generated villages and the units a county has reporting.

The files in shared/data/demo/ are the divisions extract (in the published format) and the
villages and units generated from it by `rollcall registry generate --within 430621`; a test
checks that the generator still gives exactly these files.
"""

from pathlib import Path

from shared.registry.importer import Batch, read

DEMO_DIR = Path(__file__).parent.parent / "data" / "demo"
PROVINCE = ("43", "湖南省")
CITY = ("4306", "岳阳市")
COUNTY = ("430621", "岳阳县")
TOWNS = [
    ("430621100", "荣家湾镇"), ("430621104", "黄沙街镇"), ("430621105", "新墙镇"),
    ("430621106", "柏祥镇"), ("430621107", "筻口镇"), ("430621108", "公田镇"),
    ("430621109", "毛田镇"), ("430621110", "月田镇"), ("430621111", "张谷英镇"),
    ("430621112", "新开镇"), ("430621113", "步仙镇"), ("430621114", "杨林街镇"),
    ("430621202", "中洲乡"), ("430621203", "长湖乡"), ("430621500", "东洞庭湖管理处"),
]


def batch() -> Batch:
    """The demo read as an import; a problem in the shipped files is a bug."""
    read_batch = read([DEMO_DIR])
    if read_batch.problems:
        raise ValueError("the shipped demo does not import: "
                         + "; ".join(map(str, read_batch.problems[:5])))
    return read_batch


def nodes() -> list[tuple[str, str]]:
    """(code, name) of every demo node, parents before children."""
    return [(n.code, n.name) for n in batch().nodes]


def units() -> list[dict]:
    return [{"code": u.code, "name": u.name, "unit_type": u.unit_type, "sector": u.sector,
             "node": u.node} for u in batch().units]
