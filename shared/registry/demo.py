"""A small built-in demo hierarchy: 岳阳县 (county 430621, Hunan) with its 15 real townships,
three generated villages each, and the units a county would have reporting."""

from shared.registry.unit_types import unit_types

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
VILLAGE_NAMES = ["东山村", "西湖村", "南岭村"]
VILLAGE_UNITS = [("VC", "village_committee", "村委会"), ("CL", "village_clinic", "卫生室")]
TOWN_UNITS = [("HC", "township_health_centre", "卫生院"), ("PS", "primary_school", "中心小学")]
COUNTY_UNITS = [("HOSP", "hospital", "岳阳县人民医院"), ("MS1", "middle_school", "岳阳县第一中学")]


def nodes() -> list[tuple[str, str]]:
    out = [PROVINCE, CITY, COUNTY, *TOWNS]
    for town, _ in TOWNS:
        out += [(f"{town}{i:03d}", name) for i, name in enumerate(VILLAGE_NAMES, 1)]
    return out


def units() -> list[dict]:
    types = unit_types()

    def unit(code: str, name: str, unit_type: str, node: str) -> dict:
        return {"code": code, "name": name, "unit_type": unit_type,
                "sector": types[unit_type].sector, "node": node}

    out = [unit(f"{COUNTY[0]}-{s}", name, t, COUNTY[0]) for s, t, name in COUNTY_UNITS]
    for town, town_name in TOWNS:
        out += [unit(f"{town}-{s}", town_name + name, t, town) for s, t, name in TOWN_UNITS]
        for i, village_name in enumerate(VILLAGE_NAMES, 1):
            village = f"{town}{i:03d}"
            out += [unit(f"{village}-{s}", town_name + village_name + name, t, village)
                    for s, t, name in VILLAGE_UNITS]
    return out
